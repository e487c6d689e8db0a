"""The test Prosody harness: what it serves, and that it cleans up after itself."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from xml.etree.ElementTree import Element, XMLPullParser, fromstring

import pytest
import trio
from trio_websocket import open_websocket_url

import jicofo.testing.prosody as prosody_module
from jicofo.testing.prosody import (
    ProsodyInstance,
    ProsodyNotInstalled,
    ProsodyStartError,
    prosody_available,
    start_prosody,
)

pytestmark = pytest.mark.prosody  # every test here starts a Prosody

NS_STREAM = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_COMPONENT = "jabber:component:accept"


def stream_header(to: str, ns: str = "jabber:client", version: bool = True) -> bytes:
    return (
        f"<?xml version='1.0'?><stream:stream to='{to}' xmlns='{ns}' xmlns:stream='{NS_STREAM}'"
        + (" version='1.0'>" if version else ">")
    ).encode()


class XmlReader:
    """Reads one XML stream from a trio stream, a top-level element at a time."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.parser = XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.root: Element | None = None

    async def next(self) -> Element:
        """The stream root on first call (attributes only), then each complete child."""
        with trio.fail_after(5):
            while True:
                for event, elem in self.parser.read_events():
                    if event == "start":
                        self.depth += 1
                        if self.depth == 1:
                            self.root = elem
                            return elem
                    else:
                        self.depth -= 1
                        if self.depth == 1:
                            return elem
                data = await self.stream.receive_some(65536)
                assert data, "server closed the stream"
                self.parser.feed(data)


def mechanisms(features: Element) -> set[str]:
    path = f"{{{NS_SASL}}}mechanisms/{{{NS_SASL}}}mechanism"
    return {m.text or "" for m in features.iterfind(path)}


@pytest.mark.parametrize(
    ("domain", "offered", "absent"),
    [
        ("meet.test", {"ANONYMOUS"}, {"PLAIN", "SCRAM-SHA-1"}),
        ("auth.meet.test", {"SCRAM-SHA-1", "PLAIN"}, {"ANONYMOUS"}),
    ],
)
async def test_c2s_offers_starttls_and_sasl(
    prosody: ProsodyInstance, domain: str, offered: set[str], absent: set[str]
) -> None:
    async with await trio.open_tcp_stream(prosody.ip, prosody.c2s_port) as stream:
        await stream.send_all(stream_header(domain))
        reader = XmlReader(stream)
        root = await reader.next()
        assert root.tag == f"{{{NS_STREAM}}}stream"
        assert root.get("from") == domain
        features = await reader.next()
        assert features.tag == f"{{{NS_STREAM}}}features"
        starttls = features.find(f"{{{NS_TLS}}}starttls")
        assert starttls is not None
        assert starttls.find(f"{{{NS_TLS}}}required") is None
        assert offered <= mechanisms(features)
        assert not absent & mechanisms(features)


async def test_starttls_verifies_against_ca_file(prosody: ProsodyInstance) -> None:
    context = ssl.create_default_context(cafile=str(prosody.ca_file))
    async with await trio.open_tcp_stream(prosody.ip, prosody.c2s_port) as tcp:
        await tcp.send_all(stream_header(prosody.auth_domain))
        reader = XmlReader(tcp)
        await reader.next()
        await reader.next()
        await tcp.send_all(f"<starttls xmlns='{NS_TLS}'/>".encode())
        assert (await reader.next()).tag == f"{{{NS_TLS}}}proceed"
        tls = trio.SSLStream(tcp, context, server_hostname=prosody.auth_domain)
        with trio.fail_after(5):
            await tls.do_handshake()
        await tls.send_all(stream_header(prosody.auth_domain))
        reader = XmlReader(tls)
        await reader.next()
        features = await reader.next()
        assert features.find(f"{{{NS_TLS}}}starttls") is None
        assert {"SCRAM-SHA-1", "PLAIN"} <= mechanisms(features)


async def test_user_registered_while_running_can_log_in(prosody: ProsodyInstance) -> None:
    await prosody.register("alice", prosody.auth_domain, "s3cret")
    async with await trio.open_tcp_stream(prosody.ip, prosody.c2s_port) as stream:
        await stream.send_all(stream_header(prosody.auth_domain))
        reader = XmlReader(stream)
        await reader.next()
        await reader.next()
        token = base64.b64encode(b"\0alice\0s3cret").decode()
        await stream.send_all(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>".encode())
        assert (await reader.next()).tag == f"{{{NS_SASL}}}success"


async def test_component_port_accepts_the_secret(prosody: ProsodyInstance) -> None:
    async with await trio.open_tcp_stream(prosody.ip, prosody.component_port) as stream:
        await stream.send_all(stream_header(prosody.component_jid, NS_COMPONENT, version=False))
        reader = XmlReader(stream)
        root = await reader.next()
        assert root.tag == f"{{{NS_STREAM}}}stream"
        assert root.get("from") == prosody.component_jid
        stream_id = root.get("id")
        assert stream_id
        digest = hashlib.sha1((stream_id + prosody.component_secret).encode()).hexdigest()
        await stream.send_all(f"<handshake>{digest}</handshake>".encode())
        assert (await reader.next()).tag == f"{{{NS_COMPONENT}}}handshake"


async def test_websocket_answers_rfc7395_open(prosody: ProsodyInstance) -> None:
    async with open_websocket_url(
        prosody.websocket_url, subprotocols=["xmpp"], connect_timeout=5, disconnect_timeout=2
    ) as ws:
        assert ws.subprotocol == "xmpp"
        await ws.send_message(f'<open xmlns="{NS_FRAMING}" to="{prosody.domain}" version="1.0"/>')
        with trio.fail_after(5):
            opened = await ws.get_message()
            features = await ws.get_message()
        open_element = fromstring(opened)
        assert open_element.tag == f"{{{NS_FRAMING}}}open"
        assert open_element.get("from") == prosody.domain
        assert open_element.get("version") == "1.0"
        assert open_element.get("id")
        features_element = fromstring(features)
        assert features_element.tag == f"{{{NS_STREAM}}}features"
        assert "ANONYMOUS" in mechanisms(features_element)
        await ws.send_message(f'<close xmlns="{NS_FRAMING}"/>')
        with trio.fail_after(5):
            assert fromstring(await ws.get_message()).tag == f"{{{NS_FRAMING}}}close"


async def test_bosh_creates_a_session(prosody: ProsodyInstance) -> None:
    body = (
        f"<body xmlns='http://jabber.org/protocol/httpbind' rid='1000' to='{prosody.domain}' "
        "wait='1' hold='1' ver='1.6' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>"
    ).encode()
    request = (
        f"POST /http-bind HTTP/1.1\r\nHost: {prosody.ip}:{prosody.http_port}\r\n"
        f"Content-Type: text/xml; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    assert prosody.bosh_url == f"http://{prosody.ip}:{prosody.http_port}/http-bind"
    async with await trio.open_tcp_stream(prosody.ip, prosody.http_port) as stream:
        await stream.send_all(request)
        reply = b""
        with trio.fail_after(5):
            while b"</body>" not in reply and b"/>" not in reply.partition(b"\r\n\r\n")[2]:
                data = await stream.receive_some(65536)
                assert data
                reply += data
    assert reply.startswith(b"HTTP/1.1 200")
    assert b"sid=" in reply


def leftover(pid: int, base: Path) -> list[str]:
    problems = []
    if base.exists():
        problems.append(f"{base} still exists")
    try:
        os.kill(pid, 0)
        problems.append(f"process {pid} still exists")
    except ProcessLookupError:
        pass
    return problems


async def test_two_instances_at_once_then_nothing_left() -> None:
    seen: list[ProsodyInstance] = []
    both_up = trio.Event()
    release = trio.Event()

    async def run_one() -> None:
        async with start_prosody() as instance:
            seen.append(instance)
            if len(seen) == 2:
                both_up.set()
            await release.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_one)
        nursery.start_soon(run_one)
        with trio.fail_after(15):
            await both_up.wait()
        a, b = seen
        assert a.base != b.base
        assert {a.c2s_port, a.http_port, a.component_port}.isdisjoint(
            {b.c2s_port, b.http_port, b.component_port}
        )
        assert a.pid != b.pid and a.running and b.running
        assert a.component_secret != b.component_secret
        assert a.focus_password != b.focus_password
        for instance in (a, b):
            async with await trio.open_tcp_stream(instance.ip, instance.c2s_port) as stream:
                await stream.send_all(stream_header(instance.domain))
                reader = XmlReader(stream)
                await reader.next()
                assert (await reader.next()).tag == f"{{{NS_STREAM}}}features"
        release.set()

    for instance in seen:
        assert not instance.running
        assert leftover(instance.pid, instance.base) == []


async def test_teardown_with_an_open_session_is_bounded() -> None:
    async with start_prosody() as instance:
        stream = await trio.open_tcp_stream(instance.ip, instance.c2s_port)
        await stream.send_all(stream_header(instance.domain))
        reader = XmlReader(stream)
        await reader.next()
        await reader.next()
        started = time.monotonic()
    # Prosody waits about c2s_close_timeout for the client; SIGKILL comes after 2 s at most.
    assert time.monotonic() - started < 4
    await stream.aclose()
    assert leftover(instance.pid, instance.base) == []


async def test_cancelled_while_running_still_cleans_up() -> None:
    with trio.move_on_after(30) as scope:
        async with start_prosody() as instance:
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert leftover(instance.pid, instance.base) == []


def temp_dirs() -> set[Path]:
    found = Path(tempfile.gettempdir()).glob("jicofo-prosody-*")
    return {p for p in found if not p.name.startswith("jicofo-prosody-cert-")}


@pytest.fixture
def fake_prosody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Installs a shell script as a `prosody` that comes earlier on PATH than the real one;
    prosodyctl and openssl stay real."""
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    def install(body: str) -> None:
        script = tmp_path / "prosody"
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)

    return install


def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Temp dirs of this test go to a private place: other suites on the machine make their
    own meanwhile, so comparing the shared temp dir would be a race."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))


async def test_early_exit_is_a_clear_error_with_its_output(
    fake_prosody: Callable[[str], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_prosody("echo 'boom: cannot start' >&2; exit 3")
    private_tempdir(tmp_path, monkeypatch)
    with pytest.raises(ProsodyStartError) as info:
        async with start_prosody():
            pytest.fail("should not start")
    message = str(info.value)
    assert "exited with code 3" in message
    assert "boom: cannot start" in message
    assert temp_dirs() == set()


async def test_a_hang_is_bounded_and_killed(
    fake_prosody: Callable[[str], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a root Prosody without run_as_root does: it never serves and never exits.
    pid_file = tmp_path / "pid"
    fake_prosody(f"echo $$ > {pid_file}; exec sleep 600")
    private_tempdir(tmp_path, monkeypatch)
    started = time.monotonic()
    with pytest.raises(ProsodyStartError, match="not ready within 0.5 s"):
        async with start_prosody(ready_timeout=0.5, stop_grace=0.5):
            pass
    assert time.monotonic() - started < 3
    assert temp_dirs() == set()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


async def test_a_config_error_is_reported() -> None:
    with pytest.raises(ProsodyStartError, match="syntax error"):
        async with start_prosody(extra_config="this is not lua ="):
            pass


async def test_missing_prosody_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not prosody_available()
    with pytest.raises(ProsodyNotInstalled, match="contrib/dev.sh"):
        async with start_prosody():
            pass


async def test_a_port_taken_before_prosody_binds_it_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_free_ports = prosody_module._free_ports
    calls = 0

    def first_c2s_port_taken(ip: str, count: int) -> list[int]:
        nonlocal calls
        calls += 1
        ports = real_free_ports(ip, count)
        return [squatter.getsockname()[1], *ports[1:]] if calls == 1 else ports

    # A listener that accepts and never answers: the worst kind of squatter.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        monkeypatch.setattr(prosody_module, "_free_ports", first_c2s_port_taken)
        async with start_prosody() as instance:
            assert calls == 2
            assert instance.c2s_port != squatter.getsockname()[1]
            async with await trio.open_tcp_stream(instance.ip, instance.c2s_port) as stream:
                await stream.send_all(stream_header(instance.domain))
                reader = XmlReader(stream)
                await reader.next()
                assert (await reader.next()).tag == f"{{{NS_STREAM}}}features"


async def test_only_loopback_addresses() -> None:
    with pytest.raises(ValueError, match="loopback"):
        async with start_prosody(ip="192.0.2.1"):
            pass
