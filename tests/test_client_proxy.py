"""Conference requests through a client-proxy component, as in a stock Jitsi Meet install: clients
address `focus.<domain>`, a Prosody component running our contrib/prosody/mod_client_proxy.lua
that relays to an online session of `focus@auth.<domain>` from `focus.<domain>/<client JID>`;
the focus (`jicofo.xmpp.client.client-proxy`) decodes the real sender and answers the proxy,
which relays the answer back (docs/jicofo.md #10)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from xml.etree.ElementTree import Element

import pytest
import trio

from jicofo.config.model import ConfigError, JicofoConfig
from jicofo.focus import client_proxy_jid, request_sender
from jicofo.sim.participant import ParticipantOptions, SimulatedParticipant
from jicofo.testing.prosody import ProsodyInstance, client_proxy_plugin_dir, start_prosody
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.testing.tcp_proxy import TcpProxy
from jicofo.testing.waiting import wait_until
from jicofo.xmlns.conference_iq import ConferenceAnswer, ConferenceRequest
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.xml import element

from .conftest import _LOG_TAIL
from .xmpp_helpers import connected, settings_for

PROXY = JID.parse("focus.meet.test")
NS_TEST = "urn:example:proxied"
FOCUS_NS = "{http://jitsi.org/protocol/focus}"


# ----- decoding the sender (pure) ----------------------------------------------------------------


def test_a_proxied_sender_is_the_resource() -> None:
    sender = request_sender("focus.meet.test/a1b2@meet.test/Ab-Cd", PROXY)
    assert sender == JID.parse("a1b2@meet.test/Ab-Cd")
    # The domain comparison is on the normalised JID.
    assert request_sender("FOCUS.meet.test/a1b2@meet.test/x", PROXY) == JID.parse("a1b2@meet.test/x")


def test_senders_not_on_the_proxy_domain_are_themselves() -> None:
    assert request_sender("a1b2@meet.test/x", PROXY) == JID.parse("a1b2@meet.test/x")
    assert request_sender("other.meet.test/a1b2@meet.test/x", PROXY) == JID.parse(
        "other.meet.test/a1b2@meet.test/x")
    # No proxy configured: nothing is decoded, whoever sends.
    assert request_sender("focus.meet.test/a1b2@meet.test/x", None) == JID.parse(
        "focus.meet.test/a1b2@meet.test/x")
    # The proxy's own address, without a resource: nothing encoded (as upstream).
    assert request_sender("focus.meet.test", PROXY) == PROXY
    assert request_sender(None, PROXY) is None


@pytest.mark.parametrize("resource", ["@meet.test", "a b@meet.test", "x@", "a1b2@/res"])
def test_an_invalid_proxied_sender_is_a_bad_request(resource: str) -> None:
    with pytest.raises(StanzaError) as refused:
        request_sender(f"focus.meet.test/{resource}", PROXY)
    assert refused.value.condition == "bad-request"


def test_client_proxy_setting() -> None:
    assert client_proxy_jid(None) is None and client_proxy_jid("") is None
    assert client_proxy_jid("focus.meet.example.com") == JID.parse("focus.meet.example.com")
    for bad in ("focus@meet.example.com", "focus.meet.example.com/r", "a b"):
        with pytest.raises(ConfigError, match="client-proxy"):
            client_proxy_jid(bad)


# ----- the Prosody module -------------------------------------------------------------------------


@pytest.fixture
async def prosody(request: pytest.FixtureRequest) -> AsyncIterator[ProsodyInstance]:
    """This module's Prosody: focus.meet.test is the client-proxy component."""
    async with start_prosody(client_proxy=True) as instance:
        try:
            yield instance
        finally:
            request.node.stash[_LOG_TAIL] = instance.log_tail(60)


@asynccontextmanager
async def target(prosody: ProsodyInstance, resource: str) -> AsyncIterator[tuple[XMPPClient, list[str]]]:
    """A session of the focus account that announces itself to the proxy and answers test IQs,
    recording their `from`; `<fail/>` in the payload makes it answer not-allowed."""
    seen: list[str] = []

    async def answer(iq: Element) -> Element:
        seen.append(iq.get("from", ""))
        if list(iq)[0].find(f"{{{NS_TEST}}}fail") is not None:
            raise StanzaError("not-allowed", "as asked")
        return element(f"{{{NS_TEST}}}query", {"by": resource})

    client = XMPPClient(settings_for(prosody, "focus", resource=resource), name=resource)
    client.add_iq_handler(f"{{{NS_TEST}}}query", answer)
    client.announce_presence(PROXY)
    async with connected_client(client):
        await proxy_knows(client)
        yield client, seen


@asynccontextmanager
async def connected_client(client: XMPPClient) -> AsyncIterator[XMPPClient]:
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        try:
            yield client
        finally:
            await client.aclose()
            nursery.cancel_scope.cancel()


async def proxy_knows(client: XMPPClient) -> None:
    """A ping to the proxy, answered after it has read our presence (one stream, in order)."""
    await client.request(client.iq("get", PROXY, element("{urn:xmpp:ping}ping")))


async def ask(client: XMPPClient, *, fail: bool = False) -> Element:
    query = element(f"{{{NS_TEST}}}query", None, *([element(f"{{{NS_TEST}}}fail")] if fail else []))
    return await client.request(client.iq("get", PROXY, query))


async def test_requests_are_relayed_with_the_sender_in_the_resource(prosody: ProsodyInstance) -> None:
    async with target(prosody, "focus") as (_, seen), connected(settings_for(prosody)) as guest:
        result = await ask(guest)
        assert result.get("from") == "focus.meet.test"
        assert result.get("to") == str(guest.jid)
        assert result.find(f"{{{NS_TEST}}}query").get("by") == "focus"  # type: ignore[union-attr]
        assert seen == [f"focus.meet.test/{guest.jid}"]
        # Errors come back the same way.
        with pytest.raises(StanzaError) as refused:
            await ask(guest, fail=True)
        assert refused.value.condition == "not-allowed" and refused.value.text == "as asked"


async def test_no_target_online_is_an_error_not_silence(prosody: ProsodyInstance) -> None:
    async with connected(settings_for(prosody)) as guest:
        with trio.fail_after(5):
            with pytest.raises(StanzaError) as refused:
                await ask(guest)
        assert refused.value.condition == "service-unavailable"
        # A session of the focus account that sent no presence to the proxy is not a target,
        # and neither is a guest that did.
        async with connected(settings_for(prosody, "focus", resource="silent")):
            await guest.send(guest.stanza("presence", {"to": str(PROXY)}))
            with pytest.raises(StanzaError) as refused:
                await ask(guest)
            assert refused.value.condition == "service-unavailable"
        async with target(prosody, "focus"):
            await ask(guest)
        # It left, and the server tells the proxy. (A request that raced its close is bounced
        # by the server, and that error is relayed too.)
        with trio.fail_after(5):
            while True:
                with pytest.raises(StanzaError) as refused:
                    await ask(guest)
                if refused.value.condition == "service-unavailable":
                    break
                assert refused.value.condition == "recipient-unavailable"
                await trio.sleep(0.05)


async def test_the_latest_announced_session_gets_the_requests(prosody: ProsodyInstance) -> None:
    async with connected(settings_for(prosody)) as guest, \
            target(prosody, "old") as (old, old_seen):
        gone: list[str] = []
        old.set_default_handlers(presence=lambda p: gone.append(p.get("from", ""))
                                 if p.get("type") == "unavailable" else None)
        async with target(prosody, "new") as (_, new_seen):
            await ask(guest)
            assert (len(old_seen), len(new_seen)) == (0, 1)
        # The server tells the proxy in the same breath as the account's other sessions.
        await wait_until(lambda: "focus@auth.meet.test/new" in gone, 5, "new's unavailable presence")
        await ask(guest)
        assert (len(old_seen), len(new_seen)) == (1, 1)


@pytest.mark.prosody
async def test_a_new_session_announces_itself_again() -> None:
    # A break longer than the hibernation time: the client cannot resume and starts a new
    # session, and the proxy only learns about it from the presence that session sends.
    async with start_prosody(client_proxy=True, smacks_hibernation_time=0) as prosody, \
            trio.open_nursery() as nursery:
        cutter = TcpProxy(prosody.ip, prosody.c2s_port)
        await nursery.start(cutter.run)
        focus = XMPPClient(settings_for(prosody, "focus", host="127.0.0.1", port=cutter.port,
                                        resource="focus"), name="focus")
        seen: list[str] = []

        async def answer(iq: Element) -> None:
            seen.append(iq.get("from", ""))

        focus.add_iq_handler(f"{{{NS_TEST}}}query", answer)
        focus.announce_presence(PROXY)
        resumed: list[bool] = []
        focus.on_session(resumed.append)
        async with connected_client(focus), connected(settings_for(prosody)) as guest:
            await proxy_knows(focus)
            await ask(guest)
            cutter.refusing = True
            cutter.cut()
            await wait_until(lambda: not focus.connected, 5, "the break")
            # Prosody checks hibernation once a second: with 0 s it forgets the session after ~1 s.
            await trio.sleep(2)
            cutter.refusing = False
            await wait_until(lambda: focus.sessions == 2 and focus.connected, 10, "a new session")
            await proxy_knows(focus)
            await ask(guest)
            assert len(seen) == 2
            assert resumed == [False, False]
        nursery.cancel_scope.cancel()


@pytest.mark.prosody
async def test_a_reloaded_proxy_still_knows_who_is_online() -> None:
    # After `module:reload`, the module finds the sessions that had announced themselves.
    shell = ('modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "smacks"; "bosh"; '
             '"websocket"; "admin_shell"; "admin_socket" }')
    async with start_prosody(client_proxy=True, extra_config=shell) as prosody, \
            target(prosody, "focus") as (_, seen), connected(settings_for(prosody)) as guest:
        reload = await trio.run_process(
            ["prosodyctl", "--config", str(prosody.config_file), "shell",
             f"module:reload('client_proxy', '{PROXY}')"],
            capture_stdout=True, capture_stderr=True, check=False)
        assert reload.returncode == 0, reload.stdout + reload.stderr
        await ask(guest)
        assert seen == [f"focus.meet.test/{guest.jid}"]


@pytest.mark.prosody
async def test_harness_extra_components_and_plugin_paths() -> None:
    # The harness's general hooks: a second proxy on another host, for the bridge account.
    extra = 'Component "relay.meet.test" "client_proxy"\n\ttarget_address = "jvb@auth.meet.test"'
    async with start_prosody(plugin_paths=[client_proxy_plugin_dir()],
                             extra_components=extra) as prosody, \
            connected(settings_for(prosody)) as guest:
        assert prosody.client_proxy_jid is None
        with pytest.raises(StanzaError) as refused:
            await guest.request(guest.iq("get", "relay.meet.test", element(f"{{{NS_TEST}}}query")))
        assert refused.value.condition == "service-unavailable"
        assert "relay.meet.test is not available" in (refused.value.text or "")


# ----- the focus behind the proxy, end to end -------------------------------------------------------


def proxied_focus_config(prosody: ProsodyInstance) -> JicofoConfig:
    return focus_config(prosody, {"jicofo.xmpp.client.client-proxy": prosody.client_proxy_jid},
                        component=False)


async def test_a_call_through_the_client_proxy(
    prosody: ProsodyInstance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jicofo.focus")
    room = f"proxied@{prosody.muc_domain}"
    async with simulated_bridges(prosody, 1), \
            running_focus(proxied_focus_config(prosody)) as app:
        assert app.focus.client_proxy == PROXY
        await wait_until(lambda: app.brewery is not None and bool(app.brewery.operational_bridges()),
                         10, "the bridge")
        await proxy_knows(app.client)
        # A hand-made request first: what crosses the wire.
        async with connected(settings_for(prosody)) as guest:
            request = ConferenceRequest(room=room, properties={"rtcstatsEnabled": "false"})
            result = await guest.request(guest.iq("set", "focus.meet.test", request.to_element()),
                                         timeout=15)
            assert result.get("from") == "focus.meet.test"
            answer = ConferenceAnswer.from_element(result.find(f"{FOCUS_NS}conference"))  # type: ignore[arg-type]
            assert answer.ready and answer.room == room
            assert answer.focus_jid == f"focus@{prosody.auth_domain}"
            # The focus saw the real sender, not the proxy.
            assert f"conference request for {room} from {guest.jid}: ready=True" in caplog.text
            # A sender the proxy could not have encoded is refused.
            forged = guest.iq("set", None, request.to_element())
            forged.set("from", "focus.meet.test/@bad")
            with pytest.raises(StanzaError) as refused:
                await app.focus.handle_conference_iq(forged)
            assert refused.value.condition == "bad-request"
        # Simulated lib-jitsi-meet clients with their default hosts.focus: focus.meet.test.
        people = [
            SimulatedParticipant(ParticipantOptions(xmpp=settings_for(prosody), room=room,
                                                    nick=f"{n:02x}c0ffee", seed=n))
            for n in range(2)
        ]
        assert people[0].options.focus_address == "focus.meet.test"
        async with trio.open_nursery() as nursery:
            for person in people:
                await nursery.start(person.run)
            for person in people:
                await person.wait_for_session(10)
                assert person.conference_answer is not None
                assert person.conference_answer.focus_jid == f"focus@{prosody.auth_domain}"
            await people[0].wait_for_remote_sources(people[1].endpoint_id, 10)  # type: ignore[arg-type]
            for person in people:
                assert person.errors == [], person.errors
                with trio.move_on_after(5):
                    await person.leave()
            nursery.cancel_scope.cancel()
