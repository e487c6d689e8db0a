"""Running a set of simulators from the command line: their control API, each simulator, the one
stdout line the local stack reads (`... control API on http://HOST:PORT/`), and an orderly stop on
SIGTERM or SIGINT. Shared by jicofo-bridge-sim, jicofo-jibri-sim and jicofo-jigasi-sim."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Protocol

import trio

from jicofo.http.server import HttpServer, Router


class Simulator(Protocol):
    async def run(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...

    async def stop(self) -> None: ...


async def serve_until_signal(prog: str, simulators: Sequence[Simulator], router: Router, *,
                             host: str, port: int, what: str) -> None:
    """Serve `router` on host:port, run every simulator, print the control-API line (`what` says
    what runs, e.g. "2 bridge(s) in the brewery"), and stop them all at SIGTERM / SIGINT."""
    async with trio.open_nursery() as nursery:
        server = HttpServer(router, host=host, port=port, name=f"{prog} control")
        bound = await nursery.start(server.serve)
        for simulator in simulators:
            await nursery.start(simulator.run)
        print(f"{prog}: {what}; control API on http://{host}:{bound}/", flush=True)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                break
        for simulator in simulators:
            await simulator.stop()
        nursery.cancel_scope.cancel()
