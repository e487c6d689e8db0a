"""End to end on a secure-domain Prosody (hosts log in with passwords on meet.test, guests are
anonymous on guest.meet.test): what the focus answers to conference, login-url and logout
requests, over XMPP and over HTTP, and who it makes owner. Everything asserted crossed the wire."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from jicofo.app import FocusApp
from jicofo.http.client import request as http_request
from jicofo.http.server import HttpServer
from jicofo.rest import build_router
from jicofo.sim.participant import ParticipantOptions, SimulatedParticipant
from jicofo.testing.prosody import ProsodyInstance, start_prosody
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until
from jicofo.xmlns.auth_iq import LOGIN_URL, LoginUrlRequest, LogoutRequest, login_url_of
from jicofo.xmlns.conference_iq import CONFERENCE, ConferenceAnswer, ConferenceRequest
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom

from .test_auth import jwt
from .xmpp_helpers import connected, settings_for

pytestmark = pytest.mark.prosody  # every test here starts a Prosody

HOST_PASSWORD = "host-secret-1"
COMPONENT = "focus.meet.test"
SESSION_INVALID = "{http://jitsi.org/protocol/focus}session-invalid"


@pytest.fixture
async def secure(request: pytest.FixtureRequest) -> AsyncIterator[ProsodyInstance]:
    async with start_prosody(secure_domain=True, extra_users=[
        ("alice", "meet.test", HOST_PASSWORD), ("bob", "meet.test", HOST_PASSWORD),
    ]) as instance:
        yield instance


def auth_config(prosody: ProsodyInstance, kind: str = "XMPP", **extra: Any) -> Any:
    return focus_config(prosody, {
        "jicofo.authentication.enabled": True,
        "jicofo.authentication.type": kind,
        "jicofo.authentication.login-url": prosody.domain,
        **extra,
    })


def host_settings(prosody: ProsodyInstance, user: str = "alice") -> Any:
    return dataclasses.replace(settings_for(prosody), domain=prosody.domain, username=user,
                               password=HOST_PASSWORD)


def guest_settings(prosody: ProsodyInstance) -> Any:
    return dataclasses.replace(settings_for(prosody), domain=prosody.guest_domain)


def room_of(prosody: ProsodyInstance, name: str) -> str:
    return f"{name}@{prosody.muc_domain}"


async def ask(client: XMPPClient, room: str, **attrs: Any) -> ConferenceAnswer:
    iq = client.iq("set", COMPONENT, ConferenceRequest(room=room, **attrs).to_element())
    result = await client.request(iq, timeout=10)
    payload = result.find(CONFERENCE)
    assert payload is not None
    return ConferenceAnswer.from_element(payload)


async def refused(client: XMPPClient, room: str, **attrs: Any) -> StanzaError:
    with pytest.raises(StanzaError) as caught:
        await ask(client, room, **attrs)
    return caught.value


@asynccontextmanager
async def person(prosody: ProsodyInstance, settings: Any, room: str, nick: str,
                 **options: Any) -> AsyncIterator[SimulatedParticipant]:
    options.setdefault("focus", COMPONENT)  # config.js hosts.focus, whatever the login domain
    sim = SimulatedParticipant(ParticipantOptions(xmpp=settings, room=room, nick=nick, **options))
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run)
        try:
            yield sim
        finally:
            with trio.move_on_after(5):
                await sim.leave()
            nursery.cancel_scope.cancel()


def affiliation_seen_by(sim: SimulatedParticipant, nick: str) -> str | None:
    assert sim.room is not None
    occupant = sim.room.occupants.get(nick)
    return occupant.affiliation if occupant is not None else None


async def test_guest_refused_host_opens_then_guest_joins_and_roles(secure: ProsodyInstance) -> None:
    room = room_of(secure, "secured")
    async with simulated_bridges(secure, 1), running_focus(auth_config(secure)) as app, \
            connected(host_settings(secure, "bob")) as bob:
        async with connected(guest_settings(secure)) as guest:
            error = await refused(guest, room, machine_uid="guest-machine")
            assert error.condition == "not-authorized" and error.text == "not authorized user domain"
            assert JID.parse(room) not in app.focus.conferences
        # A host opens the room (and does not join it)...
        opened = await ask(bob, room, machine_uid="bob-machine")
        assert opened.ready and opened.identity == f"bob@{secure.domain}" and opened.session_id
        assert opened.properties["authentication"] == "true"
        assert opened.properties["externalAuth"] == "false"
        assert "sipGatewayEnabled" not in opened.properties
        # ...a guest joins first (auto-owner would make it owner), then another host.
        async with person(secure, guest_settings(secure), room, "b2b2b2b2") as guest_sim:
            guest_answer = guest_sim.conference_answer
            assert guest_answer is not None and guest_answer.ready
            assert guest_answer.identity is None and guest_answer.session_id is None
            async with person(secure, host_settings(secure), room, "a1a1a1a1",
                              machine_uid="alice-machine") as alice:
                answer = alice.conference_answer
                assert answer is not None and answer.ready
                assert answer.identity == f"alice@{secure.domain}" and answer.session_id
                # Both get a Jingle session from the focus.
                await guest_sim.wait_for_session(15)
                await alice.wait_for_session(15)
                # The host is made owner, as the guest sees in the room; the guest is not.
                await guest_sim.wait_for(lambda: affiliation_seen_by(guest_sim, "a1a1a1a1")
                                         == "owner", 10, "the host's owner affiliation")
                await trio.sleep(0.5)
                assert affiliation_seen_by(alice, "b2b2b2b2") not in ("owner", "admin")
                assert guest_sim.errors == [] and alice.errors == []


async def test_sessions_bogus_stolen_missing_uid_and_reuse(secure: ProsodyInstance) -> None:
    room = room_of(secure, "sessions")
    async with running_focus(auth_config(secure)), \
            connected(host_settings(secure)) as alice, connected(guest_settings(secure)) as guest:
        # A host without machine-uid cannot be given a session.
        missing = await refused(alice, room)
        assert missing.condition == "not-acceptable" and "machine-uid" in (missing.text or "")
        answer = await ask(alice, room, machine_uid="alice-machine")
        assert answer.session_id and answer.identity == f"alice@{secure.domain}"
        bogus = await refused(guest, room, machine_uid="x", session_id="someinvalidsessionid")
        assert bogus.condition == "not-acceptable"
        assert bogus.app_element is not None and bogus.app_element.tag == SESSION_INVALID
        assert "someinvalidsessionid" not in (bogus.text or "")
        stolen = await refused(guest, room, machine_uid="guest-machine",
                               session_id=answer.session_id)
        assert stolen.condition == "not-acceptable" and stolen.app_element is None
        no_uid = await refused(guest, room, session_id=answer.session_id)
        assert no_uid.condition == "not-acceptable"
        # The same machine, now as a guest (after the login popup), may open a new room.
        again = await ask(guest, room_of(secure, "another"), machine_uid="alice-machine",
                          session_id=answer.session_id)
        assert again.ready and again.identity == f"alice@{secure.domain}"
        assert again.session_id == answer.session_id
        # A guest joining an existing room is no problem.
        plain = await ask(guest, room, machine_uid="guest-machine")
        assert plain.ready and plain.session_id is None


async def test_session_lifetime_expires(secure: ProsodyInstance) -> None:
    config = auth_config(secure, **{"jicofo.authentication.authentication-lifetime": "1 second"})
    async with running_focus(config), connected(host_settings(secure)) as alice, \
            connected(guest_settings(secure)) as guest:
        answer = await ask(alice, room_of(secure, "short"), machine_uid="m1")
        assert answer.session_id
        await trio.sleep(1.3)
        expired = await refused(guest, room_of(secure, "short2"), machine_uid="m1",
                                session_id=answer.session_id)
        assert expired.app_element is not None and expired.app_element.tag == SESSION_INVALID


async def test_login_url_and_logout(secure: ProsodyInstance) -> None:
    room = room_of(secure, "loginroom")
    async with running_focus(auth_config(secure)), connected(host_settings(secure)) as alice, \
            connected(guest_settings(secure)) as guest:
        login = LoginUrlRequest(room=room, machine_uid="m1", popup=False).to_element()
        result = await guest.request(guest.iq("get", COMPONENT, login), timeout=10)
        payload = result.find(LOGIN_URL)
        assert payload is not None
        assert payload.get("url") == ".%2Floginroom%3Flogin%3Dtrue"
        assert login_url_of(payload) == "./loginroom?login=true"
        with pytest.raises(StanzaError) as no_uid:
            await guest.request(guest.iq("get", COMPONENT, LoginUrlRequest(
                room=room, machine_uid=None, popup=True).to_element()), timeout=10)
        assert no_uid.value.condition == "bad-request"

        answer = await ask(alice, room, machine_uid="m1")
        logout = LogoutRequest(answer.session_id).to_element()
        done = await alice.request(alice.iq("set", COMPONENT, logout), timeout=10)
        assert done.find("{http://jitsi.org/protocol/focus}logout") is not None
        # The session is gone: presenting it now is refused, and so is a second logout.
        gone = await refused(guest, room, machine_uid="m1", session_id=answer.session_id)
        assert gone.app_element is not None and gone.app_element.tag == SESSION_INVALID
        with pytest.raises(StanzaError) as twice:
            await alice.request(alice.iq("set", COMPONENT, logout), timeout=10)
        assert twice.value.condition == "not-acceptable"
        assert twice.value.app_element is not None


async def test_login_url_is_none_for_jwt_and_the_iqs_are_absent_without_auth(
        secure: ProsodyInstance) -> None:
    login = LoginUrlRequest(room=room_of(secure, "r"), machine_uid="m1", popup=False).to_element()
    async with running_focus(auth_config(secure, "JWT")), \
            connected(guest_settings(secure)) as guest:
        result = await guest.request(guest.iq("get", COMPONENT, login), timeout=10)
        payload = result.find(LOGIN_URL)
        assert payload is not None and payload.get("url") is None
    async with running_focus(focus_config(secure)), connected(guest_settings(secure)) as guest:
        with pytest.raises(StanzaError) as absent:
            await guest.request(guest.iq("get", COMPONENT, login), timeout=10)
        assert absent.value.condition in ("service-unavailable", "feature-not-implemented")
        # Without authentication nobody is refused and nothing claims authentication.
        answer = await ask(guest, room_of(secure, "open"), machine_uid="m")
        assert answer.ready and answer.properties["authentication"] == "false"
        assert "externalAuth" not in answer.properties


async def test_jwt_token_host_authenticates_and_guests_do_not(secure: ProsodyInstance) -> None:
    room = room_of(secure, "tokenroom")
    token = jwt({"context": {"user": {"id": "u-1"}, "group": "g-1"}, "room": "*"})
    async with running_focus(auth_config(secure, "JWT")) as app, \
            connected(host_settings(secure)) as alice, connected(guest_settings(secure)) as guest:
        # A guest's token is not something Prosody validated: still a guest.
        error = await refused(guest, room, machine_uid="g", token=token)
        assert error.condition == "not-authorized"
        answer = await ask(alice, room, machine_uid="a", token=token)
        assert answer.ready and answer.identity == f"alice@{secure.domain}"
        assert answer.properties["externalAuth"] == "true"
        assert app.services.auth is not None
        session = app.services.auth.sessions.get(answer.session_id)
        assert session is not None and session.claims == {"user_id": "u-1", "group": "g-1"}


async def http(port: int, body: Any) -> tuple[int, bytes]:
    return await http_request("127.0.0.1", port, "POST", "/conference-request/v1", body)


@asynccontextmanager
async def rest(app: FocusApp) -> AsyncIterator[int]:
    server = HttpServer(build_router(app), host="127.0.0.1", port=0, name="rest")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve)
        try:
            yield port
        finally:
            nursery.cancel_scope.cancel()


async def test_http_conference_request_makes_the_same_decisions(secure: ProsodyInstance) -> None:
    room = room_of(secure, "httpsecure")
    async with running_focus(auth_config(secure)) as app, rest(app) as port, \
            connected(host_settings(secure)) as alice:
        # No JID over HTTP: nobody is authenticated by domain, so a new room is refused.
        status, body = await http(port, {"room": room, "machineUid": "m1"})
        assert status == 403
        answer = await ask(alice, room_of(secure, "first"), machine_uid="m1")
        status, body = await http(port, {"room": room, "machineUid": "m1",
                                         "sessionId": "bogus-session"})
        assert status == 400 and b"invalid-session" in body and b"bogus" not in body
        status, body = await http(port, {"room": room, "machineUid": "other",
                                         "sessionId": answer.session_id})
        assert status == 400 and b"invalid-session" in body
        # With the session of the host's machine, the room is opened.
        status, body = await http(port, {"room": room, "machineUid": "m1",
                                         "sessionId": answer.session_id})
        assert status == 200
        reply = json.loads(body)
        assert reply["ready"] is True and reply["sessionId"] == answer.session_id
        assert reply["identity"] == f"alice@{secure.domain}"
        assert reply["properties"]["authentication"] == "true"
        # Now that the room exists, anyone may ask for it.
        status, body = await http(port, {"room": room})
        assert status == 200 and "sessionId" not in json.loads(body)
        await wait_until(lambda: JID.parse(room) in app.focus.conferences, 5, "the conference")
        status, body = await http_request("127.0.0.1", port, "GET", "/debug")
        handler = json.loads(body)["conference_iq_handler"]
        assert handler["auth_authority"] == "XMPPDomainAuthAuthority"
        assert handler["jigasi_enabled"] is False and handler["auth_sessions"] == 1




async def test_a_member_who_authenticates_later_becomes_owner(secure: ProsodyInstance) -> None:
    """Upstream's on-the-fly upgrade: a guest in the room logs in (in a popup, as the host's
    machine) and asks again with the session: the focus makes it owner."""
    room = room_of(secure, "upgrade")
    async with running_focus(auth_config(secure)) as app, \
            connected(host_settings(secure)) as alice, connected(guest_settings(secure)) as guest:
        answer = await ask(alice, room, machine_uid="shared-machine")
        member = MucRoom(guest, JID.parse(room), "c3c3c3c3")
        await member.join(timeout=5)
        conference = app.focus.conferences[JID.parse(room)]

        def affiliation() -> str | None:
            participant = conference.participants.get("c3c3c3c3")
            return participant.occupant.affiliation if participant is not None else None

        await wait_until(lambda: affiliation() is not None, 10, "the member")
        await trio.sleep(0.3)
        assert affiliation() == "none"
        again = await ask(guest, room, machine_uid="shared-machine", session_id=answer.session_id)
        assert again.identity == f"alice@{secure.domain}"
        await wait_until(lambda: affiliation() == "owner", 10, "the owner grant")


async def test_through_the_client_proxy_the_real_sender_is_authenticated() -> None:
    async with start_prosody(secure_domain=True, client_proxy=True,
                             extra_users=[("alice", "meet.test", HOST_PASSWORD)]) as prosody:
        config = focus_config(prosody, {
            "jicofo.authentication.enabled": True, "jicofo.authentication.type": "XMPP",
            "jicofo.authentication.login-url": prosody.domain,
            "jicofo.xmpp.client.client-proxy": prosody.component_jid,
        }, component=False)
        async with running_focus(config), connected(host_settings(prosody)) as alice, \
                connected(guest_settings(prosody)) as guest:
            room = room_of(prosody, "proxied")
            error = await refused(guest, room, machine_uid="g")
            assert error.condition == "not-authorized"
            answer = await ask(alice, room, machine_uid="a")
            assert answer.ready and answer.identity == f"alice@{prosody.domain}"


async def test_the_health_check_is_not_refused_by_authentication(secure: ProsodyInstance) -> None:
    config = auth_config(secure, **{"jicofo.health.enabled": True,
                                    "jicofo.health.interval": "300 ms"})
    async with simulated_bridges(secure, 1), running_focus(config) as app:
        assert app.health is not None
        await wait_until(lambda: app.health is not None and app.health.healthy, 15, "healthy")
