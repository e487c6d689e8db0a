"""Recording, live streaming and their failures end to end: a real Prosody, our focus, simulated
bridges, simulated participants and `jicofo-jibri-sim` instances. Everything asserted is what
crosses the wire: the answers members get, the focus's presence they see, the IQs the Jibris
receive (their request logs)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from xml.etree.ElementTree import Element

import pytest
import trio

from jicofo.app import FocusApp
from jicofo.http.client import get_json, post_json, request
from jicofo.sim.participant import SimulatedParticipant
from jicofo.testing.gateways import Jibris, jibri_brewery, simulated_jibris
from jicofo.testing.prosody import ProsodyInstance, missing_prosody_message, prosody_available, start_prosody
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom
from jicofo.xmpp.xml import element, qn

from .test_focus_e2e import participants, room_of, wait_bridges
from .test_mute import moderator_ready
from .xmpp_helpers import connected, settings_for

NS_JIBRI = "http://jitsi.org/protocol/jibri"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def jibri_config(prosody: ProsodyInstance, jibris: Jibris | None, **extra: Any) -> dict[str, Any]:
    config = {
        "jicofo.jibri.brewery-jid": jibris.brewery if jibris else jibri_brewery(prosody),
        "jicofo.xmpp.trusted-domains": [prosody.auth_domain],
    }
    config.update(extra)
    return config


@asynccontextmanager
async def stack(prosody: ProsodyInstance, jibri_count: int, room: str, members: int = 2,
                extra: dict[str, Any] | None = None,
                ) -> AsyncIterator[tuple[FocusApp, Jibris, list[SimulatedParticipant]]]:
    async with simulated_bridges(prosody, 1), simulated_jibris(prosody, max(jibri_count, 1)) as jibris:
        if jibri_count == 0:
            for jibri in jibris.jibris:
                await jibri.stop()
        extra = dict(extra or {})
        if extra.get("jicofo.rest.port") == "free":  # chosen late: the port may not stay free long
            extra["jicofo.rest.port"] = free_port()
        config = focus_config(prosody, jibri_config(prosody, jibris, **extra))
        async with running_focus(config) as app:
            await wait_bridges(app)
            detector = app.jibri.services.recorders if app.jibri else None
            assert detector is not None
            await wait_until(lambda: detector.count() == jibri_count, 10, "the jibris")
            async with participants(prosody, room, members) as people:
                await moderator_ready(app, room, people)
                yield app, jibris, people


async def ask(person: SimulatedParticipant, **attrs: str) -> Element:
    """A `<jibri>` IQ from `person` to the focus's occupant JID; the answer's payload (or an
    empty `<jibri>` for an empty result). StanzaError for an error answer."""
    iq = person.client.iq("set", person.focus_muc_jid, element(qn(NS_JIBRI, "jibri"), attrs))
    answer = await person.client.request(iq, timeout=20)
    payload = answer.find(qn(NS_JIBRI, "jibri"))
    return payload if payload is not None else element(qn(NS_JIBRI, "jibri"))


async def refused(person: SimulatedParticipant, **attrs: str) -> str:
    with pytest.raises(StanzaError) as caught:
        await ask(person, **attrs)
    return caught.value.condition


def focus_status(person: SimulatedParticipant) -> dict[str, str] | None:
    """The `<jibri-recording-status>` in the focus's presence, as this member sees it."""
    assert person.room is not None
    focus = person.room.occupants.get("focus")
    status = focus.presence.find(qn(NS_JIBRI, "jibri-recording-status")) if focus else None
    return dict(status.attrib) if status is not None else None


async def wait_status(person: SimulatedParticipant, status: str, **attrs: str) -> dict[str, str]:
    def matches() -> bool:
        seen = focus_status(person)
        return seen is not None and seen.get("status") == status and all(
            seen.get(k) == v for k, v in attrs.items())
    await wait_until(matches, 15, f"recording status {status} {attrs}")
    seen = focus_status(person)
    assert seen is not None
    return seen


async def jibri_log(jibris: Jibris, nick: str) -> list[dict[str, Any]]:
    result = await get_json("127.0.0.1", jibris.http_port, f"/jibris/{nick}/requests")
    assert isinstance(result, list)
    return [r for r in result if "action" in r]


async def control(jibris: Jibris, nick: str, path: str, body: Any = None) -> Any:
    return await post_json("127.0.0.1", jibris.http_port, f"/jibris/{nick}/{path}", body)


async def test_a_moderator_records_to_a_file_and_stops(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "rec")
    async with stack(prosody, 1, room) as (app, jibris, (mod, guest)):
        mod_jid = str(JID.parse(room).with_resource(mod.endpoint_id or ""))
        # A member who is not a moderator is refused, and no Jibri hears of it.
        assert await refused(guest, action="start", recording_mode="file") == "not-allowed"
        assert await jibri_log(jibris, "jibri-1") == []
        # Validation as upstream: file takes no stream id; stop without a session.
        assert await refused(mod, action="start", recording_mode="file", streamid="k") == "bad-request"
        assert await refused(mod, action="stop") == "item-not-found"
        assert await refused(mod) == "bad-request"
        # Hostile sizes: refused, and the error does not carry the value back.
        with pytest.raises(StanzaError) as caught:
            await ask(mod, action="start", recording_mode="stream", streamid="x" * 5000)
        assert caught.value.condition == "bad-request" and "xxxx" not in str(caught.value)
        assert focus_status(mod) is None

        answer = await ask(mod, action="start", recording_mode="file", app_data='{"a":1}')
        session_id = answer.get("session_id")
        assert session_id
        [start] = await jibri_log(jibris, "jibri-1")
        assert (start["action"], start["recording_mode"], start["session_id"], start["room"],
                start["app_data"], start["streamid"], start["rtcstats_enabled"]) == \
            ("start", "file", session_id, room, '{"a":1}', None, "false")  # as the members asked
        on = await wait_status(guest, "on", session_id=session_id)
        assert (on["recording_mode"], on["initiator"]) == ("file", mod_jid)
        assert "failure_reason" not in on
        # The recorder joined the room; on a trusted domain it is a Jibri: never made owner.
        conference = app.focus.conferences[JID.parse(room)]
        await wait_until(lambda: any(n.startswith("jibri-1") for n in conference.participants), 10,
                         "the recorder in the room")
        # A second start: unexpected-request.
        assert await refused(mod, action="start", recording_mode="file") == "unexpected-request"
        # Stop: an empty result, OFF published at once with the stopper, stop sent to the Jibri.
        answer = await ask(mod, action="stop")
        assert answer.attrib == {}
        off = await wait_status(guest, "off", session_id=session_id)
        assert off["initiator"] == mod_jid and "failure_reason" not in off
        await wait_until(lambda: len(jibris.by_nick("jibri-1").requests) >= 3, 10, "stop at the jibri")
        stops = [r for r in await jibri_log(jibris, "jibri-1") if r["action"] == "stop"]
        assert [s["session_id"] for s in stops] == [session_id]
        assert app.jibri is not None and app.jibri.services.stats.failures == {}


async def test_live_streaming_needs_a_stream_id(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "stream")
    async with stack(prosody, 1, room) as (app, jibris, (mod, guest)):
        assert await refused(mod, action="start", recording_mode="stream") == "bad-request"
        answer = await ask(mod, action="start", recording_mode="stream", streamid="rtmp://x/key",
                           you_tube_broadcast_id="b1")
        [start] = await jibri_log(jibris, "jibri-1")
        assert (start["recording_mode"], start["streamid"], start["you_tube_broadcast_id"]) == \
            ("stream", "rtmp://x/key", "b1")
        on = await wait_status(guest, "on", session_id=answer.get("session_id") or "")
        assert on["recording_mode"] == "stream"
        # The Jibri ends the stream itself: OFF, no failure, no initiator.
        await control(jibris, "jibri-1", "finish")
        off = await wait_status(guest, "off")
        assert "failure_reason" not in off and "initiator" not in off


async def test_no_jibri_and_all_busy(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "nojibri")
    async with stack(prosody, 0, room) as (app, jibris, (mod, _guest)):
        assert await refused(mod, action="start", recording_mode="file") == "service-unavailable"
    room2 = room_of(prosody, "busyjibri")
    async with stack(prosody, 1, room2) as (app, jibris, (mod, guest)):
        await control(jibris, "jibri-1", "health", {"healthy": False})
        detector = app.jibri.services.recorders if app.jibri else None
        assert detector is not None
        await wait_until(lambda: detector.available_count() == 0, 10, "the jibri unhealthy")
        assert await refused(mod, action="start", recording_mode="file") == "resource-constraint"
        assert await jibri_log(jibris, "jibri-1") == []
        assert focus_status(guest) is None
        assert app.jibri is not None and app.jibri.services.stats.no_instance_failures == 1


async def test_failures_move_to_another_jibri(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "retry")
    async with stack(prosody, 2, room, extra={"jicofo.jibri.pending-timeout": "2 seconds",
                                              "jicofo.rest.port": "free"}) \
            as (app, jibris, (mod, guest)):
        assert app.rest_port is not None
        stats = await get_json("127.0.0.1", app.rest_port, "/stats")
        assert stats["jibri_detector"] == {"count": 2, "available": 2}
        assert "jigasi_detector" not in stats and "sip_jibri_detector" not in stats
        first, second = jibris.jibris

        async def started_on() -> tuple[str, str]:
            answer = await ask(mod, action="start", recording_mode="file")
            sid = answer.get("session_id") or ""
            await wait_status(guest, "on", session_id=sid)
            busy = [j.nickname for j in jibris.jibris if j.session is not None]
            assert len(busy) == 1
            return sid, busy[0]

        # 1. The Jibri in use fails and asks for a retry: the same session moves to the other one,
        #    and the members never see it stop.
        sid, nick = await started_on()
        other = second.nickname if nick == first.nickname else first.nickname
        debug = await get_json("127.0.0.1", app.rest_port, "/debug")
        assert sorted(debug["jibri_detector"]["instances"]) == ["jibri-1", "jibri-2"]
        debug = await get_json("127.0.0.1", app.rest_port, f"/debug/conference/{room}")
        [session] = debug["jibri"]["sessions"]
        assert (session["session_id"], session["status"], session["jibri"].rsplit("/", 1)[1]) == \
            (sid, "on", nick)
        seen: list[dict[str, str] | None] = []
        async with trio.open_nursery() as watch:
            async def record() -> None:
                while True:
                    seen.append(focus_status(guest))
                    await trio.sleep(0.01)
            watch.start_soon(record)
            await control(jibris, nick, "fail", {"should_retry": True})
            await wait_until(lambda: jibris.by_nick(other).session is not None
                             and jibris.by_nick(other).session.status == "on", 15, "moved")  # type: ignore[union-attr]
            await trio.sleep(0.3)
            watch.cancel_scope.cancel()
        assert all(s is not None and s["status"] == "on" for s in seen), seen
        moved = [r for r in await jibri_log(jibris, other) if r["action"] == "start"]
        assert [m["session_id"] for m in moved] == [sid]
        # 2. A failure without retry is published as it is.
        await control(jibris, other, "fail", {"should_retry": False})
        off = await wait_status(guest, "off", session_id=sid)
        assert off["failure_reason"] == "error"
        # What /stats and /metrics say: one recording failed, none active.
        stats = await get_json("127.0.0.1", app.rest_port, "/stats")
        assert (stats["jibri"]["total_recording_failures"], stats["jibri"]["recording_active"]) == (1, 0)
        _, metrics = await request("127.0.0.1", app.rest_port, "GET", "/metrics")
        assert "jitsi_jicofo_jibri_recording_failures_total 1.0" in metrics.decode()

        # 3. A Jibri that crashes mid-recording: the session moves on.
        for j in jibris.jibris:
            j.requests.clear()
        sid, nick = await started_on()
        other = second.nickname if nick == first.nickname else first.nickname
        await control(jibris, nick, "crash")
        await wait_until(lambda: any(r.get("action") == "start" and r["session_id"] == sid
                                     for r in jibris.by_nick(other).requests), 20, "restarted")
        await wait_until(lambda: (s := jibris.by_nick(other).session) is not None and s.status == "on",
                         15, "on at the other jibri")
        await wait_status(guest, "on", session_id=sid)
        with trio.fail_after(10):
            while (await get_json("127.0.0.1", app.rest_port, "/stats"))["jibri"]["recording_active"] != 1:
                await trio.sleep(0.05)
        assert (await get_json("127.0.0.1", app.rest_port, "/stats"))["jibri_detector"]["count"] == 1
        await ask(mod, action="stop")
        await wait_status(guest, "off", session_id=sid)


async def test_busy_answers_and_the_pending_timeout(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "pending")
    async with stack(prosody, 2, room, extra={"jicofo.jibri.pending-timeout": "2 seconds"}) \
            as (app, jibris, (mod, guest)):
        # Every Jibri answers busy: each is tried (and marked failed), then none is left to select:
        # resource-constraint, as upstream (internal-server-error only once num-retries is spent).
        for j in jibris.jibris:
            await control(jibris, j.nickname, "faults", {"start": "busy"})
        assert await refused(mod, action="start", recording_mode="file") == "resource-constraint"
        assert [len(await jibri_log(jibris, j.nickname)) for j in jibris.jibris] == [1, 1]
        assert focus_status(guest) is None
        # Failed instances wait a minute before being chosen again: none is selectable now.
        assert await refused(mod, action="start", recording_mode="file") == "resource-constraint"
        detector = app.jibri.services.recorders if app.jibri else None
        assert detector is not None
        for instance in detector.instances.values():  # (what a minute would do)
            instance.last_failed = float("-inf")
        # One Jibri stays pending forever: after the pending timeout it gets stop, and the
        # session starts on the other one.
        for j in jibris.jibris:
            j.requests.clear()
        await control(jibris, "jibri-1", "faults", {"start": "pending"})
        await control(jibris, "jibri-2", "faults", {"start": "pending"})
        await trio.sleep(0.25)  # and the 200 ms reselection guard
        answer = await ask(mod, action="start", recording_mode="file")
        sid = answer.get("session_id") or ""
        [stuck] = [j for j in jibris.jibris if j.requests]
        other = next(j for j in jibris.jibris if j is not stuck)
        await control(jibris, other.nickname, "faults", {"start": "ok"})
        await wait_until(lambda: any(r.get("action") == "stop" for r in stuck.requests), 10,
                         "stop to the stuck jibri")
        await wait_status(guest, "on", session_id=sid)
        assert [r["session_id"] for r in other.requests if r.get("action") == "start"] == [sid]


def sip_states(person: SimulatedParticipant) -> dict[str, dict[str, str]]:
    assert person.room is not None
    focus = person.room.occupants.get("focus")
    if focus is None:
        return {}
    found = focus.presence.findall(qn("http://jitsi.org/protocol/jibri/call_state", "jibri-sip-call-state"))
    return {el.get("sipaddress") or "": dict(el.attrib) for el in found}


async def test_a_sip_call_through_jibri(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "sipcall")
    async with simulated_bridges(prosody, 1), simulated_jibris(prosody, 2, sip=True) as jibris:
        config = focus_config(prosody, {"jicofo.jibri-sip.brewery-jid": jibris.brewery,
                                        "jicofo.xmpp.trusted-domains": [prosody.auth_domain]})
        async with running_focus(config) as app:
            await wait_bridges(app)
            detector = app.jibri.services.sip if app.jibri else None
            assert detector is not None and app.jibri is not None and app.jibri.services.recorders is None
            await wait_until(lambda: detector.count() == 2, 10, "the SIP jibris")
            async with participants(prosody, room, 2) as people:
                mod, guest = people
                await moderator_ready(app, room, people)
                # Recording is not configured here: no conference takes it (item-not-found).
                assert await refused(mod, action="start", recording_mode="file") == "item-not-found"
                assert await refused(guest, action="start", sipaddress="sip:a@x") == "not-allowed"
                answer = await ask(mod, action="start", sipaddress="sip:a@x", displayname="Room A")
                sid = answer.get("session_id") or ""
                assert sid
                await wait_until(lambda: sip_states(guest).get("sip:a@x", {}).get("state") == "on", 15,
                                 "call a on")
                assert sip_states(guest)["sip:a@x"]["session_id"] == sid
                [start] = [r for j in jibris.jibris for r in j.requests if r.get("action") == "start"]
                assert (start["sipaddress"], start["displayname"], start["session_id"], start["room"]) == \
                    ("sip:a@x", "Room A", sid, room)
                # A second address in parallel; the same address again is refused.
                await trio.sleep(0.25)
                await ask(mod, action="start", sipaddress="sip:b@x")
                await wait_until(lambda: sip_states(guest).get("sip:b@x", {}).get("state") == "on", 15,
                                 "call b on")
                assert await refused(mod, action="start", sipaddress="sip:a@x") == "unexpected-request"
                assert all(j.session is not None for j in jibris.jibris)
                # Stopping one (by its address) leaves the other on.
                await ask(mod, action="stop", sipaddress="sip:a@x")
                await wait_until(lambda: sip_states(guest)["sip:a@x"]["state"] == "off", 15, "a off")
                assert sip_states(guest)["sip:b@x"]["state"] == "on"
                assert await refused(mod, action="stop", sipaddress="sip:a@x") == "item-not-found"
                # The conference ends: its remaining call is stopped at its Jibri.
                conference = app.focus.conferences[JID.parse(room)]
                # (OFF is published at once; the stop reaches a's Jibri just after.)
                await wait_until(lambda: sum(j.session is not None for j in jibris.jibris) == 1, 10,
                                 "a stopped at its jibri")
                [b_session] = [j.session for j in jibris.jibris if j.session is not None]
                conference.stop("test: the conference ends")
                await wait_until(lambda: all(j.session is None for j in jibris.jibris), 10,
                                 "the call stopped at its jibri")
                stops = [r["session_id"] for j in jibris.jibris for r in j.requests
                         if r.get("action") == "stop"]
                assert b_session is not None and sorted(stops) == sorted([sid, b_session.session_id])


RECORDER_HOST = 'VirtualHost "recorder.meet.test"\n    authentication = "internal_hashed"\n'


@pytest.mark.prosody
@pytest.mark.prosody
async def test_only_members_on_trusted_domains_count_as_jibri() -> None:
    """A Prosody with a recorder host, trusted alone: the recorder (which joins on its own login
    there, as a real Jibri) is never force-muted; a guest who only claims the Jibri feature is."""
    if not prosody_available():
        pytest.fail(missing_prosody_message(), pytrace=False)
    async with start_prosody(extra_components=RECORDER_HOST) as prosody:
        room = room_of(prosody, "trust")
        async with simulated_bridges(prosody, 1), \
                simulated_jibris(prosody, 1, call_domain="recorder.meet.test") as jibris:
            config = focus_config(prosody, {"jicofo.jibri.brewery-jid": jibris.brewery,
                                            "jicofo.xmpp.trusted-domains": ["recorder.meet.test"]})
            async with running_focus(config) as app:
                await wait_bridges(app)
                async with participants(prosody, room, 2) as people:
                    mod, _guest = people
                    await moderator_ready(app, room, people)
                    await ask(mod, action="start", recording_mode="file")
                    await wait_status(mod, "on")
                    conference = app.focus.conferences[JID.parse(room)]
                    await wait_until(lambda: any(n.startswith("jibri-1") for n in conference.participants),
                                     10, "the recorder in the room")
                    recorder = next(n for n in conference.participants if n.startswith("jibri-1"))
                    real = conference.participants[recorder].occupant.jid
                    assert real is not None and real.domain == "recorder.meet.test"
                    # A guest (anonymous on meet.test) whose presence claims the Jibri feature.
                    async with connected(settings_for(prosody)) as xmpp:
                        claimer = MucRoom(xmpp, JID.parse(room), "claimer1", presence_extensions=[
                            element(qn("jabber:client", "features"), None,
                                    element(qn("jabber:client", "feature"), {"var": NS_JIBRI}))])
                        await claimer.join()
                        await wait_until(lambda: "claimer1" in conference.participants, 10, "claimer")
                        with pytest.raises(StanzaError) as caught:
                            await mod.request_mute(recorder, "audio")
                        assert caught.value.condition == "not-allowed"
                        await mod.request_mute("claimer1", "audio")  # an ordinary member: muted
                        await claimer.leave()
