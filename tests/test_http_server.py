"""The h11 server over real loopback HTTP: routing, JSON, errors, limits, keep-alive."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from jicofo.http.server import HttpError, HttpLimits, HttpServer, Request, Response, Router


def _router() -> Router:
    router = Router()

    @router.get("/hello/{name}")
    async def hello(req: Request) -> Response:
        return Response.json({"hello": req.params["name"], "q": req.arg("q")})

    @router.post("/echo")
    async def echo(req: Request) -> Response:
        return Response.json({"got": req.json()})

    @router.get("/teapot")
    async def teapot(req: Request) -> Response:
        raise HttpError(418, "short and stout")

    @router.get("/boom")
    async def boom(req: Request) -> Response:
        raise RuntimeError("secret internals")

    return router


@asynccontextmanager
async def _server(limits: HttpLimits | None = None) -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(HttpServer(_router(), limits=limits or HttpLimits()).serve)
        yield port
        nursery.cancel_scope.cancel()


async def _exchange(port: int, raw: bytes, *, read_until_close: bool = True) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(raw)
        chunks = []
        with trio.move_on_after(3):
            while data := await stream.receive_some(65536):
                chunks.append(data)
                if not read_until_close:
                    break
        return b"".join(chunks)


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _body(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[1]


async def test_routes_json_and_errors() -> None:
    async with _server() as port:
        raw = await _exchange(port, b"GET /hello/w%20x?q=1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        assert _status(raw) == 200
        assert json.loads(_body(raw)) == {"hello": "w x", "q": "1"}
        assert b"application/json" in raw

        body = b'{"a": [1, 2]}'
        raw = await _exchange(port, b"POST /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
                              b"content-length: %d\r\n\r\n%s" % (len(body), body))
        assert json.loads(_body(raw)) == {"got": {"a": [1, 2]}}

        raw = await _exchange(port, b"POST /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
                              b"content-length: 3\r\n\r\n{{{")
        assert _status(raw) == 400 and b"not valid JSON" in _body(raw)

        for path, status in [(b"/nope", 404), (b"/teapot", 418), (b"/boom", 500)]:
            raw = await _exchange(port, b"GET %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n" % path)
            assert _status(raw) == status
        assert b"secret internals" not in raw
        raw = await _exchange(port, b"DELETE /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        assert _status(raw) == 405


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with _server() as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            for i in range(3):
                await stream.send_all(b"GET /hello/n%d HTTP/1.1\r\nhost: x\r\n\r\n" % i)
                data = b""
                with trio.fail_after(3):
                    while b'"q": null}' not in data:
                        data += await stream.receive_some(65536)
                assert b'"hello": "n%d"' % i in data


async def test_malformed_and_oversized_requests_do_not_affect_others() -> None:
    async with _server(HttpLimits(max_body_bytes=1000, max_header_bytes=2000)) as port:
        healthy = await trio.open_tcp_stream("127.0.0.1", port)
        async with healthy:
            raw = await _exchange(port, b"THIS IS NOT HTTP\r\n\r\n")
            assert _status(raw) == 400
            raw = await _exchange(port, b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n")
            assert _status(raw) == 413
            raw = await _exchange(port, b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 5000 + b"\r\n\r\n")
            assert _status(raw) in (400, 431)
            # The connection opened before all that still works.
            await healthy.send_all(b"GET /hello/ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            data = b""
            with trio.fail_after(3):
                while chunk := await healthy.receive_some(65536):
                    data += chunk
            assert _status(data) == 200


async def test_a_slow_request_times_out() -> None:
    async with _server(HttpLimits(request_timeout=0.3, idle_timeout=0.3)) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc")
            data = b""
            with trio.fail_after(3):
                while chunk := await stream.receive_some(65536):
                    data += chunk
            assert _status(data) == 408
