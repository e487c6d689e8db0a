"""Bridges: the brewery (discovery and health checks), the bridge model and bridge selection."""
