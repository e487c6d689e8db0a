"""The XMPP client against a real Prosody: logins, IQs, errors, keepalive, stream management."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from xml.etree.ElementTree import Element

import pytest
import trio

from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.tcp_proxy import TcpProxy
from jicofo.xmpp.client import XMPPClient, XMPPComponent
from jicofo.xmpp.connection import NegotiationError
from jicofo.xmpp.errors import AuthenticationError, IQTimeout, StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.settings import ComponentSettings, TlsMode
from jicofo.xmpp.transport import TlsSettings, TransportError
from jicofo.xmpp.xml import element

from .xmpp_helpers import FAST, connected, running, settings_for, settings_for_domain

NS_TEST = "urn:example:test"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "PLAIN"])
@pytest.mark.parametrize("tls", [TlsMode.STARTTLS, TlsMode.DISABLED])
async def test_login_with_password(prosody: ProsodyInstance, mechanism: str, tls: TlsMode) -> None:
    settings = settings_for(prosody, "focus", tls=tls, sasl_mechanisms=(mechanism,),
                            resource="focus-test")
    async with connected(settings) as client:
        assert client.jid == JID.parse(f"focus@{prosody.auth_domain}/focus-test")
        assert client.connected
        # A server round trip proves the session is usable.
        await client.request(client.iq("get", prosody.auth_domain,
                                       element("{urn:xmpp:ping}ping")))


async def test_scram_preferred_over_plain(prosody: ProsodyInstance, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="jicofo.xmpp.connection")
    async with connected(settings_for(prosody, "jvb")):
        pass
    assert "authenticated with SCRAM-SHA-1" in caplog.text


async def test_anonymous_login(prosody: ProsodyInstance) -> None:
    async with connected(settings_for(prosody)) as client:
        assert client.jid is not None
        assert client.jid.domain == prosody.domain
        assert client.jid.local  # the server picked a random local part


async def test_wrong_password_is_a_clear_error(prosody: ProsodyInstance) -> None:
    secret = "definitely-wrong-password"
    settings = settings_for(prosody, "focus", password=secret)
    with pytest.raises(AuthenticationError) as info:
        async with connected(settings):
            pass
    assert info.value.condition == "not-authorized"
    assert secret not in str(info.value)
    assert secret not in repr(settings)


async def test_starttls_verifies_the_certificate_by_default(prosody: ProsodyInstance) -> None:
    # Without our test CA, the self-signed certificate must be refused...
    settings = settings_for(prosody, "focus", tls=TlsMode.STARTTLS, tls_settings=TlsSettings())
    with pytest.raises(TransportError, match="certificate verify failed"):
        async with connected(settings):
            pass
    # ...unless verification is switched off on purpose.
    relaxed = dataclasses.replace(settings, tls_settings=TlsSettings(verify=False))
    async with connected(relaxed) as client:
        assert client.connected


async def test_plain_refused_without_tls_unless_allowed(prosody: ProsodyInstance) -> None:
    settings = settings_for(prosody, "focus", sasl_mechanisms=("PLAIN",),
                            allow_plain_without_tls=False)
    with pytest.raises(AuthenticationError, match="no-usable-mechanism"):
        async with connected(settings):
            pass


@pytest.mark.parametrize("user", [None, "focus"])
async def test_websocket_login(prosody: ProsodyInstance, user: str | None) -> None:
    settings = settings_for(prosody, user, websocket_url=prosody.websocket_url)
    async with connected(settings) as client:
        assert client.jid is not None
        assert client.jid.domain == (prosody.auth_domain if user else prosody.domain)
        result = await client.request(
            client.iq("get", client.jid.domain, element("{urn:xmpp:ping}ping"))
        )
        assert result.get("type") == "result"


async def test_component_handshake_and_wrong_secret(prosody: ProsodyInstance) -> None:
    good = ComponentSettings(domain=prosody.component_jid, secret=prosody.component_secret,
                             host=prosody.ip, port=prosody.component_port, timeouts=FAST)
    component = XMPPComponent(good)

    async def answer(iq: Element) -> Element:
        return element(f"{{{NS_TEST}}}pong")

    component.add_iq_handler(f"{{{NS_TEST}}}query", answer)
    async with running(component):
        # A client reaches the component through the server, and the answer comes back.
        async with connected(settings_for(prosody)) as guest:
            result = await guest.request(
                guest.iq("get", prosody.component_jid, element(f"{{{NS_TEST}}}query"))
            )
            assert result.find(f"{{{NS_TEST}}}pong") is not None
            assert result.get("from") == prosody.component_jid
            # And the component can query the guest (client and component share the IQ API).
            assert guest.jid is not None
            pong = await component.request(
                component.iq("get", guest.jid, element("{urn:xmpp:ping}ping"))
            )
            assert pong.get("type") == "result"

    bad = dataclasses.replace(good, secret="not-the-secret")
    with pytest.raises(AuthenticationError) as info:
        async with running(XMPPComponent(bad)):
            pass
    assert info.value.condition == "not-authorized"
    assert "not-the-secret" not in str(info.value)


async def test_iq_round_trip_errors_and_timeout(prosody: ProsodyInstance) -> None:
    async with connected(settings_for(prosody, "focus", resource="a")) as a, \
            connected(settings_for(prosody)) as b:
        slow_release = trio.Event()

        async def echo(iq: Element) -> Element:
            payload = list(iq)[0]
            return element(f"{{{NS_TEST}}}echo", {"v": payload.get("v", "")})

        async def refuse(iq: Element) -> None:
            raise StanzaError("not-allowed", "no thanks")

        async def slow(iq: Element) -> None:
            await slow_release.wait()

        b.add_iq_handler(f"{{{NS_TEST}}}query", echo)
        b.add_iq_handler(f"{{{NS_TEST}}}refuse", refuse)
        b.add_iq_handler(f"{{{NS_TEST}}}slow", slow)
        assert b.jid is not None

        result = await a.request(a.iq("get", b.jid, element(f"{{{NS_TEST}}}query", {"v": "42"})))
        echoed = result.find(f"{{{NS_TEST}}}echo")
        assert echoed is not None and echoed.get("v") == "42"
        assert result.get("from") == str(b.jid)

        with pytest.raises(StanzaError) as refused:
            await a.request(a.iq("set", b.jid, element(f"{{{NS_TEST}}}refuse")))
        assert (refused.value.condition, refused.value.text) == ("not-allowed", "no thanks")

        with pytest.raises(StanzaError) as unknown:
            await a.request(a.iq("get", b.jid, element("{urn:example:nobody}query")))
        assert unknown.value.condition == "service-unavailable"

        with pytest.raises(StanzaError) as wrong_type:
            await a.request(a.iq("set", b.jid, element("{urn:xmpp:ping}ping")))
        assert wrong_type.value.condition == "feature-not-implemented"

        with pytest.raises(IQTimeout):
            await a.request(a.iq("get", b.jid, element(f"{{{NS_TEST}}}slow")), timeout=0.3)
        slow_release.set()
        # The late answer is dropped quietly and the connection still works.
        await trio.sleep(0.1)
        result = await a.request(a.iq("get", b.jid, element(f"{{{NS_TEST}}}query", {"v": "7"})))
        assert result.find(f"{{{NS_TEST}}}echo") is not None


async def test_keepalive_pings_keep_the_session(prosody: ProsodyInstance) -> None:
    timeouts = dataclasses.replace(FAST, ping_interval=0.1, ping_timeout=2)
    async with connected(settings_for(prosody, "focus", timeouts=timeouts)) as client:
        await trio.sleep(0.5)
        assert client.sessions == 1


async def test_disco_info_and_caps(prosody: ProsodyInstance) -> None:
    async with connected(settings_for(prosody, "focus", resource="r")) as a, \
            connected(settings_for(prosody)) as b:
        b.features.add("urn:example:feature")
        assert b.jid is not None
        info = await a.query_disco_info(b.jid, b.caps())
        assert "urn:example:feature" in info.features
        caps = b.caps()
        # The second lookup is answered from the verified cache.
        assert a.caps_cache.get(caps.get("hash", ""), caps.get("ver", "")) == info


async def test_stream_management_resumes_after_a_cut(prosody: ProsodyInstance) -> None:
    proxy = TcpProxy(prosody.ip, prosody.c2s_port)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        a_settings = settings_for(prosody, "focus", host="127.0.0.1", port=proxy.port,
                                  resource="resumer")
        received_by_a: list[str] = []
        received_by_b: list[str] = []
        a = XMPPClient(a_settings, name="a")
        a.set_default_handlers(message=lambda m: received_by_a.append(_body(m)))
        async with connected(settings_for(prosody), name="b") as b:
            b.set_default_handlers(message=lambda m: received_by_b.append(_body(m)))
            await nursery.start(a.run)
            assert a.sm is not None and a.sm.resumable
            assert a.jid is not None and b.jid is not None

            await b.send(_message(b, a.jid, "before"))
            await _wait_for(lambda: received_by_a == ["before"])

            proxy.refusing = True
            proxy.cut()
            await _wait_for(lambda: not a.connected)
            # Both directions during the break: Prosody holds what b sends, a queues its own.
            await b.send(_message(b, a.jid, "during-to-a"))
            await a.send(_message(a, b.jid, "during-from-a"))
            proxy.refusing = False

            await _wait_for(lambda: a.connected and a.sessions == 2)
            await _wait_for(lambda: "during-to-a" in received_by_a)
            await _wait_for(lambda: "during-from-a" in received_by_b)
            assert received_by_a == ["before", "during-to-a"]
            assert received_by_b == ["during-from-a"]
            assert a.jid == JID.parse(f"focus@{prosody.auth_domain}/resumer")
            await a.aclose()
        nursery.cancel_scope.cancel()


async def test_starttls_required_when_not_switched_off() -> None:
    # A server that offers no STARTTLS is refused unless TLS is switched off explicitly.
    async def fake_server(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        await stream.send_all(
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            b"xmlns:stream='http://etherx.jabber.org/streams' id='x' from='plain.test' "
            b"version='1.0'><stream:features><mechanisms "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
            b"</mechanisms></stream:features>"
        )
        await trio.sleep(5)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, fake_server, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        settings = dataclasses.replace(
            settings_for_domain("plain.test"), host="127.0.0.1", port=port, tls=TlsMode.STARTTLS
        )
        with pytest.raises(NegotiationError, match="does not offer STARTTLS"):
            async with connected(settings):
                pass
        nursery.cancel_scope.cancel()


def _message(client: XMPPClient, to: JID, body: str) -> Element:
    return client.stanza("message", {"to": str(to), "type": "chat"},
                         element("{jabber:client}body", text=body))


def _body(message: Element) -> str:  # type: ignore[valid-type]
    body = message.find("{jabber:client}body")
    return body.text if body is not None and body.text else ""


async def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


async def test_iq_router_sees_requests_in_arrival_order(prosody: ProsodyInstance) -> None:
    async with connected(settings_for(prosody, "focus", resource="a")) as a, \
            connected(settings_for(prosody)) as b:
        seen: list[str] = []
        queue_send, queue_receive = trio.open_memory_channel[Element](100)
        b.add_iq_router(f"{{{NS_TEST}}}ordered", lambda iq: (seen.append(list(iq)[0].get("n", "")),
                                                            queue_send.send_nowait(iq)))

        async def answer_in_order() -> None:
            async for iq in queue_receive:
                await b.reply(iq)

        assert b.jid is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_in_order)
            # Sent back to back without waiting: the router must see them in wire order.
            for n in range(50):
                await a.send(a.iq("set", b.jid, element(f"{{{NS_TEST}}}ordered", {"n": str(n)})))
            await _wait_for(lambda: len(seen) == 50)
            nursery.cancel_scope.cancel()
        assert seen == [str(n) for n in range(50)]


async def test_websocket_protocol_violation_sends_error_and_close_as_separate_frames() -> None:
    import trio_websocket

    frames_from_client: list[str] = []
    done = trio.Event()

    async def fake_server(ws_request: trio_websocket.WebSocketRequest) -> None:
        ws = await ws_request.accept(subprotocol="xmpp")
        await ws.get_message()  # the client's <open/>
        await ws.send_message("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='s1' "
                              "from='bad.test' version='1.0'/>")
        await ws.send_message("<message xmlns='jabber:client'><unclosed></message>")
        try:
            while len(frames_from_client) < 2:
                frames_from_client.append(str(await ws.get_message()))
        except trio_websocket.ConnectionClosed:
            pass
        done.set()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(trio_websocket.serve_websocket, fake_server,
                                             "127.0.0.1", 0, ssl_context=None))
        port = server.port
        settings = dataclasses.replace(settings_for_domain("bad.test"),
                                       websocket_url=f"ws://127.0.0.1:{port}/xmpp-websocket")
        # A broken peer is a network failure to the client: it keeps retrying (with backoff),
        # so watch the first attempt and stop it.
        nursery.start_soon(XMPPClient(settings).run)
        with trio.fail_after(5):
            await done.wait()
        nursery.cancel_scope.cancel()
    assert frames_from_client[0].startswith("<stream:error")
    assert "not-well-formed" in frames_from_client[0]
    assert frames_from_client[1].startswith("<close")


def test_error_texts_on_the_wire_are_bounded() -> None:
    from jicofo.xmpp.errors import MAX_ERROR_TEXT, NS_STANZAS

    err = StanzaError("bad-request", "SSRC '" + "9" * 10_000 + "' is not canonical").to_element()
    text = err.find(f"{{{NS_STANZAS}}}text")
    assert text is not None and text.text is not None
    assert len(text.text) == MAX_ERROR_TEXT + 1 and text.text.startswith("SSRC '999")


def test_what_a_sender_controls_is_logged_short() -> None:
    from jicofo.xmpp.client import _loggable

    assert _loggable("abc") == "'abc'"
    assert _loggable(None) == "-"
    long = _loggable("a" * 100_000)
    assert len(long) < 100 and long.endswith("…'")
    assert _loggable("x\n\x00y") == "'x\\n\\x00y'"  # no line breaks or controls in a log line
