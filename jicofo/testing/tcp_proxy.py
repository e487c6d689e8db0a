"""A loopback TCP proxy that can cut its connections on cue: a network break, for tests and for
the stress runner's "drop the focus's XMPP connection" fault."""

from __future__ import annotations

import logging
import socket
import struct

import trio

log = logging.getLogger(__name__)

# SO_LINGER on with a zero timeout: close() sends RST instead of FIN.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target`. `cut()` breaks every open connection abruptly
    (RST, no stream close); while `refusing`, new connections are closed as soon as accepted."""

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
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
                    nursery.start_soon(self._pump, client, upstream, nursery.cancel_scope)
                    nursery.start_soon(self._pump, upstream, client, nursery.cancel_scope)
            finally:
                self._scopes.discard(scope)
                self._streams.difference_update((client, upstream))
        for stream in (client, upstream):
            with trio.CancelScope(shield=True):
                try:
                    await stream.aclose()
                except (trio.BrokenResourceError, OSError):
                    pass

    @staticmethod
    async def _pump(src: trio.SocketStream, dst: trio.SocketStream, done: trio.CancelScope) -> None:
        try:
            while data := await src.receive_some(65536):
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        done.cancel()
