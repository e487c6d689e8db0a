"""Byte transports under an XMPP stream: TCP (with STARTTLS), direct TLS, and RFC 7395 WebSocket.

A transport moves opaque chunks. For TCP a chunk is whatever the socket returned; for WebSocket a
chunk is exactly one text frame, which is what the framed stream core expects.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

import trio
import trio_websocket

from .errors import XMPPError
from .stream import Framing

log = logging.getLogger(__name__)

RECEIVE_CHUNK = 65536


class TransportError(XMPPError):
    """The transport could not be opened or broke."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """How to verify the server's certificate. Verification is on unless switched off explicitly."""

    verify: bool = True
    ca_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


class Transport:
    """The interface the connection code uses; see the concrete classes below."""

    framing: Framing = Framing.TCP
    tls_active: bool = False
    can_starttls: bool = False

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def receive(self) -> bytes:
        """The next chunk; b'' once the peer has closed."""
        raise NotImplementedError

    async def starttls(self, tls: TlsSettings, server_hostname: str) -> None:
        raise TransportError("this transport cannot start TLS")

    async def aclose(self) -> None:
        raise NotImplementedError


class TcpTransport(Transport):
    def __init__(self, stream: trio.abc.Stream, *, tls_active: bool = False) -> None:
        self._stream = stream
        self.tls_active = tls_active
        self.can_starttls = not tls_active

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        direct_tls: TlsSettings | None = None,
        server_hostname: str | None = None,
    ) -> TcpTransport:
        try:
            sock = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise TransportError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        if direct_tls is None:
            return cls(sock)
        transport = cls(sock)
        await transport.starttls(direct_tls, server_hostname or host)
        return transport

    async def send(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise TransportError(f"send failed: {exc}") from exc

    async def receive(self) -> bytes:
        try:
            data = await self._stream.receive_some(RECEIVE_CHUNK)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise TransportError(f"receive failed: {exc}") from exc
        return data if isinstance(data, bytes) else bytes(data)

    async def starttls(self, tls: TlsSettings, server_hostname: str) -> None:
        if self.tls_active:
            raise TransportError("TLS is already active")
        ssl_stream = trio.SSLStream(self._stream, tls.context(), server_hostname=server_hostname)
        try:
            await ssl_stream.do_handshake()
        except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
            cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
            raise TransportError(
                f"TLS handshake with {server_hostname} failed: {cause}",
                permanent=isinstance(cause, ssl.SSLCertVerificationError),
            ) from exc
        self._stream = ssl_stream
        self.tls_active = True
        self.can_starttls = False

    async def aclose(self) -> None:
        with trio.move_on_after(1) as scope:
            scope.shield = True
            try:
                await self._stream.aclose()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass


class WebSocketTransport(Transport):
    """XMPP over WebSocket (RFC 7395): one stanza per text frame, subprotocol `xmpp`."""

    framing = Framing.WEBSOCKET

    def __init__(self, ws: trio_websocket.WebSocketConnection, *, secure: bool) -> None:
        self._ws = ws
        self.tls_active = secure

    @classmethod
    async def connect(
        cls,
        nursery: trio.Nursery,
        url: str,
        *,
        tls: TlsSettings,
        connect_timeout: float,
        max_frame_bytes: int,
    ) -> WebSocketTransport:
        secure = url.startswith("wss://")
        if not (secure or url.startswith("ws://")):
            raise TransportError(f"not a WebSocket URL: {url!r}")
        try:
            with trio.fail_after(connect_timeout):
                ws = await trio_websocket.connect_websocket_url(
                    nursery,
                    url,
                    ssl_context=tls.context() if secure else None,
                    subprotocols=["xmpp"],
                    message_queue_size=64,
                    max_message_size=max_frame_bytes,
                )
        except (OSError, trio_websocket.HandshakeError, trio.TooSlowError) as exc:
            raise TransportError(f"WebSocket connection to {url} failed: {exc}") from exc
        if ws.subprotocol != "xmpp":
            await ws.aclose()
            raise TransportError(f"{url} did not accept the 'xmpp' WebSocket subprotocol")
        return cls(ws, secure=secure)

    async def send(self, data: bytes) -> None:
        try:
            await self._ws.send_message(data.decode("utf-8"))
        except trio_websocket.ConnectionClosed as exc:
            raise TransportError(f"WebSocket closed: {exc.reason}") from exc

    async def receive(self) -> bytes:
        try:
            message = await self._ws.get_message()
        except trio_websocket.ConnectionClosed:
            return b""
        if isinstance(message, bytes):
            # RFC 7395 §3.2: XMPP frames are text; a binary frame is a protocol error we surface
            # to the stream core as bytes it will reject.
            return message
        return message.encode("utf-8")

    async def aclose(self) -> None:
        with trio.move_on_after(1) as scope:
            scope.shield = True
            await self._ws.aclose()
