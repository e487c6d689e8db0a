"""Hostile content through a real Prosody, against our focus and a simulated bridge, while other
members and another conference go on: a SourceInfo nested 5,000 levels, a non-canonical SSRC, a
stanza whose handling fails, and a conference request for a room in a foreign domain."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
import trio

from jicofo.app import FocusApp
from jicofo.conference import participant as participant_module
from jicofo.http.server import HttpServer
from jicofo.rest import build_router
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.xmlns.jingle import Action, JingleContent, JingleIQ, RtpDescription
from jicofo.xmlns.presence_ext import MemberPresence
from jicofo.xmlns.ssma import SourceElement
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.xml import element

from .test_focus_call import Client, member
from .test_rest import http

SSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.05)
    assert condition(), what


async def wait_for_bridge(app: FocusApp) -> None:
    await wait_until(lambda: bool(app.brewery and app.brewery.operational_bridges()), "a bridge")


async def start_call(first: Client, second: Client, room: str, base: int) -> tuple[JingleIQ, JingleIQ]:
    """Both members in `room` with accepted sessions, each seeing the other's sources."""
    for client in (first, second):
        assert (await client.conference(room)).ready
        await client.join(room)
    offers = (await first.wait_for(Action.SESSION_INITIATE), await second.wait_for(Action.SESSION_INITIATE))
    await first.accept(offers[0], base)
    await second.accept(offers[1], base + 100)
    assert base in _ssrcs(await second.wait_for(Action.SOURCE_ADD))
    assert base + 100 in _ssrcs(await first.wait_for(Action.SOURCE_ADD))
    return offers


def _ssrcs(jingle: JingleIQ) -> set[int]:
    return {s.ssrc for c in jingle.contents if c.description for s in c.description.sources}


def source_add(sid: str, ssrc: int, name: str) -> JingleIQ:
    return JingleIQ(Action.SOURCE_ADD, sid, contents=(JingleContent("video", description=RtpDescription(
        media="video", sources=(SourceElement(ssrc, name=name, msid=f"{name} t", video_type="desktop"),))),))


async def send_jingle(client: Client, payload: object) -> None:
    assert client.room is not None
    await client.xmpp.request(client.xmpp.iq("set", client.room.jid.with_resource("focus"), payload))  # type: ignore[arg-type]


async def set_presence(client: Client, stats_id: str, *extra: object) -> None:
    assert client.room is not None
    await client.room.set_presence([element("{jabber:client}stats-id", text=stats_id), *extra])  # type: ignore[list-item]


async def test_deep_source_info_and_bad_ssrc_refused_alone(prosody: ProsodyInstance) -> None:
    room_a, room_b = f"bounds-a@{prosody.muc_domain}", f"bounds-b@{prosody.muc_domain}"
    async with simulated_bridges(prosody, 1), running_focus(focus_config(prosody)) as app:
        await wait_for_bridge(app)
        async with member(prosody, "a1a1a1a1") as ana, member(prosody, "b2b2b2b2") as bo, \
                member(prosody, "c3c3c3c3") as cy, member(prosody, "d4d4d4d4") as di:
            _, offer_bo = await start_call(ana, bo, room_a, 1000)
            _, offer_di = await start_call(cy, di, room_b, 3000)
            conference = app.focus.conferences[JID.parse(room_a)]
            other = app.focus.conferences[JID.parse(room_b)]

            # Ana's presence carries a SourceInfo nested 5,000 levels (and a new stats-id, to
            # know when the focus has handled it).
            deep = '{"a1a1a1a1-a0":' * 5000 + "{}" + "}" * 5000
            await set_presence(ana, "ana-stats-2", element("{jabber:client}SourceInfo", text=deep))
            await wait_until(lambda: conference.participants["a1a1a1a1"].presence.stats_id == "ana-stats-2",
                             "the focus read Ana's new presence")
            assert conference.participants["a1a1a1a1"].presence.source_info is None  # the extension only
            assert not conference.stopped.is_set()
            assert app.focus.conferences[conference.room_jid] is conference

            # A source-add with ssrc=" 12 " is refused; nothing else changes.
            bad = source_add(offer_bo.sid, 12, "b2b2b2b2-v1").to_element()
            bad.find(f".//{{{SSMA}}}source").set("ssrc", " 12 ")  # type: ignore[union-attr]
            with pytest.raises(StanzaError) as refused:
                await send_jingle(bo, bad)
            assert refused.value.condition == "bad-request"

            # The conference goes on: Bo's next source reaches Ana (and only that one).
            await send_jingle(bo, source_add(offer_bo.sid, 1200, "b2b2b2b2-v1").to_element())
            assert _ssrcs(await ana.wait_for(Action.SOURCE_ADD, count=2)) == {1200}
            assert set(conference.participants) == {"a1a1a1a1", "b2b2b2b2"}
            # So does the other conference.
            await send_jingle(di, source_add(offer_di.sid, 3200, "d4d4d4d4-v1").to_element())
            assert _ssrcs(await cy.wait_for(Action.SOURCE_ADD, count=2)) == {3200}
            assert not other.stopped.is_set()


async def test_a_failing_handler_refuses_that_stanza_only(
    prosody: ProsodyInstance, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """A fault in the focus's own handling (injected here: a presence parser and a source
    validator that raise on a marker) refuses that stanza and keeps the conference."""
    caplog.set_level(logging.WARNING, logger="jicofo.xmpp.containment")
    read_presence = MemberPresence.from_element
    validate_add = participant_module.validate_add

    def failing_presence(cls: type, presence: object) -> MemberPresence:
        if presence.find("{urn:test}boom") is not None:  # type: ignore[attr-defined]
            raise RuntimeError("presence parser failed")
        return read_presence(presence)  # type: ignore[arg-type]

    def failing_validate(current: object, owner: str, wanted: object, limits: object) -> object:
        if any(s.ssrc == 666 for s in wanted.sources):  # type: ignore[attr-defined]
            raise RuntimeError("validator failed")
        return validate_add(current, owner, wanted, limits)  # type: ignore[arg-type]

    monkeypatch.setattr(MemberPresence, "from_element", classmethod(failing_presence))
    monkeypatch.setattr(participant_module, "validate_add", failing_validate)
    room = f"faults@{prosody.muc_domain}"
    async with simulated_bridges(prosody, 1), running_focus(focus_config(prosody)) as app:
        await wait_for_bridge(app)
        async with member(prosody, "a1a1a1a1") as ana, member(prosody, "b2b2b2b2") as bo:
            _, offer_bo = await start_call(ana, bo, room, 1000)
            conference = app.focus.conferences[JID.parse(room)]

            await set_presence(ana, "ana-stats-2", element("{urn:test}boom"))
            await wait_until(lambda: any("RuntimeError" in r.getMessage() for r in caplog.records),
                             "the guard logged the failure")
            [line] = [r.getMessage() for r in caplog.records if "presence parser failed" in r.getMessage()]
            assert f"{room}/a1a1a1a1" in line and "ignored" in line
            await set_presence(ana, "ana-stats-3")
            await wait_until(lambda: conference.participants["a1a1a1a1"].presence.stats_id == "ana-stats-3",
                             "the next presence is read")

            with pytest.raises(StanzaError) as refused:
                await send_jingle(bo, source_add(offer_bo.sid, 666, "b2b2b2b2-v1").to_element())
            assert refused.value.condition == "internal-server-error"
            assert "validator failed" not in (refused.value.text or "")  # no internals in the reply

            await send_jingle(bo, source_add(offer_bo.sid, 1200, "b2b2b2b2-v1").to_element())
            assert _ssrcs(await ana.wait_for(Action.SOURCE_ADD, count=2)) == {1200}
            assert not conference.stopped.is_set()
            assert app.focus.conferences[conference.room_jid] is conference
            assert set(conference.participants) == {"a1a1a1a1", "b2b2b2b2"}


async def test_conference_request_for_a_foreign_room_not_allowed(
    prosody: ProsodyInstance, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="jicofo.xmpp.packets")  # every stanza in and out
    async with simulated_bridges(prosody, 1), running_focus(focus_config(prosody)) as app:
        await wait_for_bridge(app)
        server = HttpServer(build_router(app), host="127.0.0.1", port=0, name="rest")
        async with trio.open_nursery() as nursery, member(prosody, "a1a1a1a1") as ana:
            port = await nursery.start(server.serve)
            created = app.services.stats.conferences_created
            with pytest.raises(StanzaError) as refused:
                await ana.conference("x@evil.example")
            assert refused.value.condition == "not-allowed"
            status, _, body = await http(port, "POST", "/conference-request/v1", {"room": "x@evil.example"})
            assert status == 400 and b"conference MUC" in body  # upstream: 400 for all but not-authorized

            # A room on the conference MUC is joined (so the log below shows joins when they happen).
            good = f"fine@{prosody.muc_domain}"
            assert (await ana.conference(good)).ready
            web = f"web@{prosody.muc_domain}"
            status, _, body = await http(port, "POST", "/conference-request/v1", {"room": web})
            assert status == 200 and json.loads(body)["ready"] is True
            assert app.services.stats.conferences_created == created + 2
            assert set(map(str, app.focus.conferences)) == {good, web}
            sent = [r.getMessage() for r in caplog.records
                    if r.name == "jicofo.xmpp.packets" and "SENT PKT" in r.getMessage()]
            assert any(f"{good}/focus" in line for line in sent)
            assert not any("evil.example/" in line for line in sent), "the focus sent presence to the room"
            nursery.cancel_scope.cancel()
