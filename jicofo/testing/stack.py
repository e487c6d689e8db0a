"""The local stack on a test Prosody: our focus (in-process) and simulated bridges, wired together.
Used by the end-to-end tests, the demo and `jicofo-stress --local`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from jicofo.app import FocusApp, build_app, serve
from jicofo.config.load import load_config
from jicofo.config.model import JicofoConfig
from jicofo.http.server import HttpServer
from jicofo.sim.bridge import SimulatedBridge
from jicofo.sim.bridge_cli import build_parser, make_bridges, resolve_options
from jicofo.sim.bridge_control import build_router
from jicofo.testing.focus_settings import focus_overrides
from jicofo.testing.prosody import ProsodyInstance


def focus_config(prosody: ProsodyInstance, extra: Mapping[str, Any] | None = None,
                 *, component: bool = True) -> JicofoConfig:
    overrides = focus_overrides(prosody, component=component)
    overrides.update(extra or {})
    return load_config(None, overrides, env={})


@dataclass
class Bridges:
    bridges: list[SimulatedBridge]
    http_port: int

    def by_nick(self, nick: str) -> SimulatedBridge:
        return next(b for b in self.bridges if b.nickname == nick)


@asynccontextmanager
async def simulated_bridges(
    prosody: ProsodyInstance, count: int = 1, *extra_args: str, prefix: str = "jvb-sim-",
) -> AsyncIterator[Bridges]:
    args = build_parser().parse_args([
        "--host", prosody.ip, "--port", str(prosody.c2s_port), "--domain", prosody.auth_domain,
        "--tls", "off", "--brewery", prosody.brewery_jid, "--bridges", str(count),
        "--nickname-prefix", prefix, "--stats-interval", "1", *extra_args,
    ])
    opts = resolve_options(args, {"JVB_PASSWORD": prosody.jvb_password})
    bridges = make_bridges(opts)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(HttpServer(build_router(bridges)).serve)
        for bridge in bridges:
            await nursery.start(bridge.run)
        try:
            yield Bridges(bridges, port)
        finally:
            with trio.CancelScope(shield=True):
                for bridge in bridges:
                    await bridge.stop()
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def running_focus(config: JicofoConfig) -> AsyncIterator[FocusApp]:
    """Our focus, in-process, until the block ends (then stopped in order)."""
    app = build_app(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, app)
        try:
            yield app
        finally:
            # serve() returns once the conferences are stopped and the connections closed.
            app.request_stop("end of the block")
