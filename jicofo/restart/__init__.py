"""Keeping conferences across a restart or crash of the focus: see docs/restart.md."""
