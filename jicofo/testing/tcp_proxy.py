"""A loopback TCP proxy that can cut its connections on cue: a network break, for tests and for
the stress runner's "drop the focus's XMPP connection" fault."""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Callable

import trio

log = logging.getLogger(__name__)

# SO_LINGER on with a zero timeout: close() sends RST instead of FIN.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


# A tap sees every chunk forwarded: (connection number from 1, "up" = towards the target or
# "down" = back to the client, the bytes). It is called synchronously and must not block.
Tap = Callable[[int, str, bytes], None]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target`. `cut()` breaks every open connection abruptly
    (RST, no stream close); while `refusing`, new connections are closed as soon as accepted.
    An optional `tap` sees what crosses, for tests that assert on the wire."""

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1",
                 tap: Tap | None = None) -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.tap = tap
        self.port = 0
        self.refusing = False
        self.connections_accepted = 0
        self._scopes: set[trio.CancelScope] = set()
        self._streams: set[trio.SocketStream] = set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=self.listen_host)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started()
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    def cut(self) -> int:
        """Break every open connection with a reset. Returns how many were cut."""
        count = len(self._scopes)
        for stream in list(self._streams):
            try:
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
            except OSError:
                pass
        for scope in list(self._scopes):
            scope.cancel()
        return count

    async def _handle(self, client: trio.SocketStream) -> None:
        self.connections_accepted += 1
        number = self.connections_accepted
        if self.refusing:
            await client.aclose()
            return
        try:
            upstream = await trio.open_tcp_stream(*self.target)
        except OSError as exc:
            log.info("proxy: cannot reach %s:%s: %s", *self.target, exc)
            await client.aclose()
            return
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            self._streams.update((client, upstream))
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, client, upstream, nursery.cancel_scope,
                                       self._tap_for(number, "up"))
                    nursery.start_soon(self._pump, upstream, client, nursery.cancel_scope,
                                       self._tap_for(number, "down"))
            finally:
                self._scopes.discard(scope)
                self._streams.difference_update((client, upstream))
        for stream in (client, upstream):
            with trio.CancelScope(shield=True):
                try:
                    await stream.aclose()
                except (trio.BrokenResourceError, OSError):
                    pass

    def _tap_for(self, number: int, direction: str) -> Callable[[bytes], None] | None:
        tap = self.tap
        if tap is None:
            return None
        return lambda data: tap(number, direction, data)

    @staticmethod
    async def _pump(src: trio.SocketStream, dst: trio.SocketStream, done: trio.CancelScope,
                    tap: Callable[[bytes], None] | None) -> None:
        try:
            while data := await src.receive_some(65536):
                if tap is not None:
                    tap(data)
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        done.cancel()
