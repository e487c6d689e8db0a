"""Dial-out and transcription through Jigasi (docs/jicofo.md §1.9 rows 81-82, §7.22): the
Jigasi brewery and the forwarding of members' Rayo dial requests."""
