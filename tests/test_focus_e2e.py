"""End to end: Prosody, our focus, simulated bridges and simulated lib-jitsi-meet participants.
Everything asserted here crossed the wire: what the participants received, what the bridges
were asked (their request logs), what the focus put in its presence."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from defusedxml.ElementTree import fromstring

from jicofo.app import FocusApp
from jicofo.http.client import get_json, post_json
from jicofo.sim.participant import ParticipantOptions, SimulatedParticipant
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import Bridges, focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until
from jicofo.xmlns.conference_iq import ConferenceRequest
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom

from .xmpp_helpers import connected, settings_for

FOCUS = "{http://jitsi.org/protocol/focus}"


def room_of(prosody: ProsodyInstance, name: str = "standup") -> str:
    return f"{name}@{prosody.muc_domain}"


@asynccontextmanager
async def participants(
    prosody: ProsodyInstance, room: str, count: int, *, first: int = 0, **options: Any
) -> AsyncIterator[list[SimulatedParticipant]]:
    people = [
        SimulatedParticipant(ParticipantOptions(xmpp=settings_for(prosody), room=room,
                                                nick=f"{n:02x}a1b2c3", seed=n, **options))
        for n in range(first, first + count)
    ]
    async with trio.open_nursery() as nursery:
        for person in people:
            await nursery.start(person.run)
        yield people
        for person in people:
            if person.state not in ("left", "failed"):
                with trio.move_on_after(5):
                    await person.leave()
        nursery.cancel_scope.cancel()


async def wait_bridges(app: FocusApp, count: int = 1) -> None:
    await wait_until(lambda: app.brewery is not None
                     and len(app.brewery.operational_bridges()) >= count, 10, "the bridges")


async def bridge_log(sims: Bridges, nick: str | None = None) -> list[dict[str, Any]]:
    path = f"/bridges/{nick}/requests" if nick else "/requests"
    result = await get_json("127.0.0.1", sims.http_port, path)
    assert isinstance(result, list)
    return result


def no_errors(people: list[SimulatedParticipant]) -> None:
    for person in people:
        assert person.errors == [], (person.endpoint_id, person.errors)


async def test_a_call_of_three_everyone_sees_everyone(prosody: ProsodyInstance) -> None:
    room = room_of(prosody)
    async with simulated_bridges(prosody, 1) as sims, running_focus(focus_config(prosody)) as app:
        await wait_bridges(app)
        async with participants(prosody, room, 2) as people:
            # A client that reads XML sources and one that reads the compact JSON.
            async with participants(prosody, room, 1, first=2, json_sources=False) as late:
                everyone = people + late
                for person in everyone:
                    await person.wait_for_session(10)
                for person in everyone:
                    for other in everyone:
                        if other is not person:
                            await person.wait_for_remote_sources(other.endpoint_id, 10)
                no_errors(everyone)
                # Simulcast is stripped for receivers: one video SSRC (and its RTX) per sender.
                sources = everyone[0].remote_sources_of(everyone[1].endpoint_id)
                assert len([s for s in sources.sources if s.media_type == "video"]) == 2
                log = await bridge_log(sims)
                allocations = [e for e in log if e["kind"] == "allocate"]
                assert len(allocations) == 3
                assert "create='true'" in allocations[0]["request"] or \
                       'create="true"' in allocations[0]["request"]
                conference = app.focus.conferences[JID.parse(room)]
                assert set(conference.participants) == {p.endpoint_id for p in everyone}


async def test_screen_share_and_leaving_are_relayed_and_the_bridge_is_released(
    prosody: ProsodyInstance,
) -> None:
    room = room_of(prosody)
    async with simulated_bridges(prosody, 1) as sims, running_focus(focus_config(prosody)) as app:
        await wait_bridges(app)
        async with participants(prosody, room, 3) as (ana, bo, cy):
            for person in (ana, bo, cy):
                await person.wait_for_session(10)
            await bo.wait_for_remote_sources(ana.endpoint_id, 10)
            before = len(bo.remote_sources_of(ana.endpoint_id).sources)
            name = await ana.add_source("desktop")
            await bo.wait_for(lambda: len(bo.remote_sources_of(ana.endpoint_id).sources) > before, 10,
                              "the screen share")
            await ana.remove_source(name)
            await bo.wait_for(lambda: len(bo.remote_sources_of(ana.endpoint_id).sources) == before, 10,
                              "the screen share to stop")
            await cy.leave()
            with trio.fail_after(10):
                while not any(e["kind"] == "expire" and cy.endpoint_id in e["request"]
                              for e in await bridge_log(sims)):
                    await trio.sleep(0.05)
            no_errors([ana, bo])
            await ana.leave()
            await bo.leave()
        # The last member left: the conference expired on the bridge and the focus left the room.
        with trio.fail_after(10):
            while JID.parse(room) in app.focus.conferences:
                await trio.sleep(0.05)
        # The conference itself (not only the endpoints) was expired, and nothing is left there.
        log = await bridge_log(sims)
        last = fromstring(log[-1]["request"])
        assert last.get("expire") == "true" and len(last) == 0, log[-1]["request"]
        state = await get_json("127.0.0.1", sims.http_port, "/bridges/jvb-sim-1/state")
        assert state["conferences"] in ({}, []), state["conferences"]


async def test_no_bridge_then_one_appears(prosody: ProsodyInstance) -> None:
    room = room_of(prosody)
    async with running_focus(focus_config(prosody)) as app, \
            participants(prosody, room, 2) as people, \
            connected(settings_for(prosody)) as observer:
        watcher = MucRoom(observer, JID.parse(room), "observer")
        await watcher.join()
        with trio.fail_after(10):
            while True:
                focus = watcher.occupants.get("focus")
                if focus is not None and focus.presence.find(f"{FOCUS}bridgeNotAvailable") is not None:
                    break
                await watcher.events.receive()
        async with simulated_bridges(prosody, 1):
            await wait_bridges(app)
            for person in people:
                await person.wait_for_session(10)
            with trio.fail_after(10):
                while watcher.occupants["focus"].presence.find(f"{FOCUS}bridgeNotAvailable") is not None:
                    await watcher.events.receive()
            no_errors(people)


async def test_a_bridge_that_leaves_has_its_participants_moved(prosody: ProsodyInstance) -> None:
    room = room_of(prosody)
    async with simulated_bridges(prosody, 2) as sims, running_focus(focus_config(prosody)) as app:
        await wait_bridges(app, 2)
        async with participants(prosody, room, 2) as people:
            first = [await p.wait_for_session(10) for p in people]
            conference = app.focus.conferences[JID.parse(room)]
            (used,) = conference.colibri_sessions
            for person in people:
                other = next(p for p in people if p is not person)
                await person.wait_for_remote_sources(other.endpoint_id, 10)
            left_at = time.time()
            since = {person.endpoint_id: person.last_seq for person in people}
            await post_json("127.0.0.1", sims.http_port, f"/bridges/{used.nickname}/leave", {})
            for person, session in zip(people, first, strict=True):
                moved = await person.wait_for_session(15, other_than=session.sid)
                assert moved.bridge_session is not None
                assert moved.bridge_session.id != session.bridge_session.id  # type: ignore[union-attr]
            (now_used,) = conference.colibri_sessions
            assert now_used is not used
            for person in people:
                other = next(p for p in people if p is not person)
                await person.wait_for_remote_sources(other.endpoint_id, 10)
            # Everyone moved together: the new offers carry the sources, and nobody is sent a
            # source-remove for a member that moves with it.
            for person in people:
                removes = [e for e in person.events_of("source-remove", "in")
                           if e.seq > since[person.endpoint_id]]
                assert removes == [], (person.endpoint_id, removes)
            # No participant was allocated on the departed bridge after it left. (An update
            # already on its way when the bridge left may still arrive; that is not a new use.)
            gone = await bridge_log(sims, used.nickname)
            assert any(e["kind"] == "allocate" for e in gone), "the departed bridge's log is readable"
            assert [e for e in gone if e["kind"] == "allocate" and e["time"] > left_at] == []


async def test_a_client_restart_request_gets_a_new_session(prosody: ProsodyInstance) -> None:
    room = room_of(prosody)
    async with simulated_bridges(prosody, 1), running_focus(focus_config(prosody)) as app:
        await wait_bridges(app)
        async with participants(prosody, room, 2) as (ana, bo):
            first = await ana.wait_for_session(10)
            await bo.wait_for_session(10)
            assert await ana.request_restart()
            second = await ana.wait_for_session(10, other_than=first.sid)
            assert second.sid != first.sid
            await bo.wait_for_remote_sources(ana.endpoint_id, 10)
            no_errors([ana, bo])


async def test_conference_requests_answer_ready_and_refuse_bad_rooms(prosody: ProsodyInstance) -> None:
    async with running_focus(focus_config(prosody)), connected(settings_for(prosody)) as client:
        async def ask(to: str, room: str) -> object:
            request = ConferenceRequest(room=room).to_element()
            return await client.request(client.iq("set", to, request), timeout=10)

        # Through the component, and directly to the focus's own JID.
        for to in ("focus.meet.test", f"focus@{prosody.auth_domain}/focus"):
            answer = await ask(to, room_of(prosody, "fresh"))
            body = answer.find(f"{FOCUS}conference")  # type: ignore[attr-defined]
            assert body is not None and body.get("ready") == "true"
            assert body.get("focusjid") == f"focus@{prosody.auth_domain}"
        for bad in ("no-at-sign", "@conference.meet.test", "a b@conference.meet.test"):
            with pytest.raises(StanzaError) as refused:
                await ask("focus.meet.test", bad)
            assert refused.value.condition == "bad-request"
        no_room = client.iq("set", "focus.meet.test")
        no_room.append(ConferenceRequest(room="x").to_element())
        del no_room[0].attrib["room"]
        with pytest.raises(StanzaError) as missing:
            await client.request(no_room, timeout=10)
        assert missing.value.condition == "bad-request"
        assert "room" in (missing.value.text or "")
