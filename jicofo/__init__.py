"""A conference focus for Jitsi Meet, on trio."""

__version__ = "0.1.0"
