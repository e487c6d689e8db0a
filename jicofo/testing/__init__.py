"""Test and demo support: a throw-away Prosody, and helpers shared by tests and tools."""
