"""Typed data both the bridge and the conference layers work on, below both: the media source
model (`sources`) and its two wire encodings, compact JSON (`sources_json`) and Jingle's SSMA
elements (`sources_jingle`). No I/O and no policy: what a participant may signal is decided in
`jicofo.conference.sources`."""
