"""Simulators that stand in for real components (videobridges) in tests and stress runs."""
