"""The focus's HTTP API (upstream Jicofo's routes and JSON shapes) and its metrics."""

from .api import build_router, serve_rest

__all__ = ["build_router", "serve_rest"]
