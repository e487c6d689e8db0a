"""A minimal HTTP/1.1 client on h11 for loopback control APIs (tests, the stress runner)."""

from __future__ import annotations

import json
from typing import Any

import h11
import trio


async def request(
    host: str, port: int, method: str, path: str, body: Any = None, *, timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request on a fresh connection; returns (status, body). `body` is sent as JSON."""
    extra_headers = list((headers or {}).items())
    payload = b"" if body is None else json.dumps(body).encode()
    sent = [("host", f"{host}:{port}"), ("connection", "close"),
            ("content-length", str(len(payload))), *extra_headers]
    if body is not None:
        sent.append(("content-type", "application/json"))
    conn = h11.Connection(h11.CLIENT)
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            await stream.send_all(conn.send(h11.Request(method=method, target=path, headers=sent)))
            if payload:
                await stream.send_all(conn.send(h11.Data(data=payload)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
            status = 0
            chunks: list[bytes] = []
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return status, b"".join(chunks)


async def get_json(host: str, port: int, path: str, *, headers: dict[str, str] | None = None) -> Any:
    status, body = await request(host, port, "GET", path, headers=headers)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}: {body[:200]!r}")
    return json.loads(body)


async def post_json(host: str, port: int, path: str, body: Any = None) -> Any:
    status, data = await request(host, port, "POST", path, body if body is not None else {})
    if status != 200:
        raise RuntimeError(f"POST {path}: HTTP {status}: {data[:200]!r}")
    return json.loads(data)
