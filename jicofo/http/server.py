"""A small HTTP/1.1 server on h11 and trio: one task per connection, keep-alive, explicit limits.

Shared by the focus's REST API and the simulators' control APIs. Handlers take a `Request` and
return a `Response`; routing is by method and path pattern (`/debug/conference/{room}`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11
import trio

log = logging.getLogger(__name__)

SERVER_NAME = b"jicofo-trio"
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


class HttpError(Exception):
    """Raise from a handler to answer with `status` and a plain-text message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"the body is not valid JSON: {exc}") from exc

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass(frozen=True, slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(obj, indent=None).encode(), "application/json")

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode())


Handler = Callable[[Request], Awaitable[Response]]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        self._routes.append((method.upper(), re.compile(regex), handler))

    def get(self, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add("GET", pattern, fn)
            return fn

        return deco

    def post(self, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add("POST", pattern, fn)
            return fn

        return deco

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed = False
        for route_method, regex, handler in self._routes:
            match = regex.match(path)
            if match is None:
                continue
            if route_method == method or (method == "HEAD" and route_method == "GET"):
                return handler, {k: unquote(v) for k, v in match.groupdict().items()}
            allowed = True
        if allowed:
            raise HttpError(405, "method not allowed")
        raise HttpError(404, "not found")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 1024 * 1024
    request_timeout: float = 10.0  # to receive one whole request once it has started
    idle_timeout: float = 30.0  # keep-alive wait for the next request
    max_connections: int = 256


class HttpServer:
    def __init__(self, router: Router, *, host: str = "127.0.0.1", port: int = 0,
                 limits: HttpLimits = HttpLimits(), name: str = "http") -> None:
        self.router = router
        self.host = host
        self.port = port
        self.limits = limits
        self.name = name
        self._slots = trio.Semaphore(limits.max_connections)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled. `task_status.started(port)` gives the bound port."""
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        self.port = listeners[0].socket.getsockname()[1]
        log.info("%s: listening on %s:%d", self.name, self.host, self.port)
        async with trio.open_nursery() as nursery:
            task_status.started(self.port)
            await trio.serve_listeners(self._connection, listeners, handler_nursery=nursery)

    async def _connection(self, stream: trio.SocketStream) -> None:
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await _close(stream)
            return
        try:
            await self._serve_connection(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self._slots.release()
            await _close(stream)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        while True:
            try:
                with trio.fail_after(self.limits.idle_timeout):
                    event = await _next_event(conn, stream)
                if isinstance(event, h11.ConnectionClosed):
                    return
                assert isinstance(event, h11.Request)
                header_bytes = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
                if header_bytes > self.limits.max_header_bytes:
                    raise HttpError(431, "request headers too large")
                with trio.fail_after(self.limits.request_timeout):
                    body = await self._read_body(conn, stream, event)
                response = await self._respond(event, body)
            except trio.TooSlowError:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE) and conn.their_state != h11.IDLE:
                    await _send_response(conn, stream, Response.text("request timeout\n", 408),
                                         close=True, head=False)
                return
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    status = exc.error_status_hint
                    await _send_response(conn, stream, Response.text(f"bad request: {exc}\n", status),
                                         close=True, head=False)
                return
            except HttpError as exc:
                await _send_response(conn, stream, Response.text(exc.message + "\n", exc.status),
                                     close=True, head=False)
                return
            await _send_response(conn, stream, response, close=False, head=event.method == b"HEAD")
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _read_body(self, conn: h11.Connection, stream: trio.SocketStream,
                         request: h11.Request) -> bytes:
        for name, value in request.headers:
            if name == b"content-length" and int(value) > self.limits.max_body_bytes:
                raise HttpError(413, f"request body larger than {self.limits.max_body_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await _next_event(conn, stream)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.limits.max_body_bytes:
                    raise HttpError(413, f"request body larger than {self.limits.max_body_bytes} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                raise h11.RemoteProtocolError("connection closed in the middle of a request")

    async def _respond(self, request: h11.Request, body: bytes) -> Response:
        target = request.target.decode("ascii", "replace")
        parts = urlsplit(target)
        method = request.method.decode("ascii", "replace").upper()
        try:
            handler, params = self.router.resolve(method, parts.path)
            req = Request(
                method=method,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers},
                body=body,
                params=params,
            )
            return await handler(req)
        except HttpError as exc:
            return Response.text(exc.message + "\n", exc.status)
        except Exception:
            log.exception("%s: %s %s failed", self.name, method, parts.path)
            return Response.text("internal server error\n", 500)


async def _next_event(conn: h11.Connection, stream: trio.SocketStream) -> Any:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            conn.receive_data(data)
            continue
        return event


async def _send_response(conn: h11.Connection, stream: trio.SocketStream, response: Response,
                         *, close: bool, head: bool) -> None:
    headers = [
        ("server", SERVER_NAME.decode()),
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        *response.headers,
    ]
    if close:
        headers.append(("connection", "close"))
    try:
        reason = _REASONS.get(response.status, b"")
        await stream.send_all(
            conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
        )
        if not head and response.body:
            await stream.send_all(conn.send(h11.Data(data=response.body)))
        await stream.send_all(conn.send(h11.EndOfMessage()))
    except h11.LocalProtocolError:
        pass


async def _close(stream: trio.SocketStream) -> None:
    with trio.CancelScope(shield=True):
        try:
            await stream.aclose()
        except (trio.BrokenResourceError, OSError):
            pass
