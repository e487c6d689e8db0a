"""Recording, live streaming and SIP calls through Jibri (docs/jicofo.md §1.9 rows 78-80,
§2.11): the detectors of the Jibri and SIP-Jibri breweries, the session state machine, and each
conference's recorder and SIP gateway."""
