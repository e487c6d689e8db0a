"""The XMPP stream layer: knows XMPP, knows nothing of Jitsi."""
