"""Bridges failing under live conferences, end to end: a real Prosody, our focus (in-process), simulated
bridges (in-process, and as a `jicofo-bridge-sim` child process where one must really die) and
simulated lib-jitsi-meet participants.

What is asserted crossed the wire:
- the offers the participants received: a moved participant's new session-initiate names, in its
  bridge-session and its ICE transport (ufrag, candidate addresses), the bridge it was moved to;
- the sources they were sent (and those the new bridge was given);
- the bridges' request logs and Colibri2 state;
- every stanza the focus sent, recorded by a TCP proxy between the focus and Prosody and parsed
  with the focus's own stream parser. That recording is the honest witness for "nothing more went
  to the dead bridge": a killed bridge's log dies with it, and a bridge that left the brewery never
  sees what is still sent to its old occupant JID (Prosody answers for it).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
import trio

from jicofo.app import FocusApp
from jicofo.bridge.brewery import BridgeFailed, HealthState
from jicofo.bridge.model import Bridge
from jicofo.conference.conference import Conference
from jicofo.http.client import get_json, post_json
from jicofo.sim.bridge import SimulatedBridge
from jicofo.sim.participant import SimulatedParticipant
from jicofo.stress.local import start_bridge_sim, terminate
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.testing.tcp_proxy import TcpProxy
from jicofo.testing.waiting import wait_until, wait_until_async
from jicofo.testing.wire import Mark, WireRecorder
from jicofo.xmpp.jid import JID
from jicofo.xmpp.xml import serialize

from .test_focus_e2e import no_errors, participants, room_of

DEADLINE = 20.0  # generous: the suite runs beside others on two cores
HEALTH_EVERY_SECOND = {"jicofo.bridge.health-checks.interval": "1 second"}


# ----- the stack -------------------------------------------------------------------------------


@asynccontextmanager
async def focus_on_the_wire(
    prosody: ProsodyInstance, extra: dict[str, Any] | None = None
) -> AsyncIterator[tuple[FocusApp, WireRecorder]]:
    """Our focus, its XMPP client connection (rooms, Jingle, the brewery and Colibri2) going
    through a proxy that records both directions."""
    wire = WireRecorder()
    proxy = TcpProxy(prosody.ip, prosody.c2s_port, tap=wire)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        config = focus_config(prosody, {"jicofo.xmpp.client.hostname": "127.0.0.1",
                                        "jicofo.xmpp.client.port": proxy.port, **(extra or {})})
        async with running_focus(config) as app:
            yield app, wire
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def bridge_process(
    prosody: ProsodyInstance, workdir: Path, prefix: str
) -> AsyncIterator[tuple[trio.Process, int]]:
    """One simulated bridge in a `jicofo-bridge-sim` child process: the process and the port of
    its control API."""
    process, port = await start_bridge_sim(
        host=prosody.ip, port=prosody.c2s_port, domain=prosody.auth_domain, tls=False,
        brewery=prosody.brewery_jid, count=1, password=prosody.jvb_password, workdir=workdir,
        extra_args=("--nickname-prefix", prefix, "--stats-interval", "1"),
    )
    try:
        yield process, port
    finally:
        await terminate(process, "jicofo-bridge-sim", grace=5)


# ----- looking -----------------------------------------------------------------------------------


def known_bridge(app: FocusApp, nick: str) -> Bridge | None:
    assert app.brewery is not None
    return next((b for b in app.brewery.bridges.values() if b.nickname == nick), None)


async def wait_for_bridge(app: FocusApp, nick: str) -> Bridge:
    """The focus's view of bridge `nick`, once its presence said it is usable (drain=false)."""
    def ready() -> bool:
        bridge = known_bridge(app, nick)
        return bridge is not None and not bridge.drain and bridge.is_operational(trio.current_time())

    await wait_until(ready, DEADLINE, f"bridge {nick} in the brewery")
    bridge = known_bridge(app, nick)
    assert bridge is not None
    return bridge


def conference_of(app: FocusApp, room: str) -> Conference:
    return app.focus.conferences[JID.parse(room)]


def bridges_of(conference: Conference) -> list[str]:
    return [b.nickname for b in conference.colibri_sessions]


def sent_to(wire: WireRecorder, bridge: Bridge, *, since: Mark | None = None) -> list[Element]:
    """Every stanza the focus sent addressed to `bridge`'s occupant JID."""
    return [s for s in wire.stanzas("up", since=since) if s.get("to") == str(bridge.jid)]


async def sessions_of(people: Sequence[SimulatedParticipant]) -> dict[str, str]:
    """Each one's accepted session id."""
    return {p.endpoint_id or "": (await p.wait_for_session(DEADLINE)).sid for p in people}


async def sources_exchanged(people: Sequence[SimulatedParticipant]) -> None:
    """Each one has been sent the others' sources (in its current session: the participant
    forgets remote sources when a session ends), and only SSRCs the others really send."""
    for person in people:
        for other in people:
            if other is not person:
                assert other.endpoint_id is not None and other.local is not None
                got = await person.wait_for_remote_sources(other.endpoint_id, DEADLINE)
                assert {s.ssrc for s in got.sources} <= other.local.ssrcs()


def untouched(people: Sequence[SimulatedParticipant], sessions: dict[str, str]) -> None:
    """Still in the session they had, never asked to leave it."""
    for person in people:
        assert person.session is not None and person.session.sid == sessions[person.endpoint_id or ""]
        assert person.sessions_accepted == 1, person.endpoint_id
        assert person.events_of("session-terminate", "in") == [], person.endpoint_id


async def moved_to(
    people: Sequence[SimulatedParticipant], before: dict[str, str], conference: Conference,
    survivor: SimulatedBridge,
) -> None:
    """Every one of `people` got a new session-initiate whose bridge-session is the conference's
    session on `survivor` and whose ICE transport is the one `survivor` allocated for it; the
    others' sources were signaled again in the new sessions, and `survivor` was given each one's
    sources."""
    for person in people:
        await person.wait_for_session(DEADLINE, other_than=before[person.endpoint_id or ""])
    assert bridges_of(conference) == [survivor.nickname]
    (colibri,) = conference.colibri_sessions.values()
    assert conference.meeting_id is not None
    on_bridge = survivor.engine.conferences[conference.meeting_id].endpoints
    engine = survivor.engine
    for person in people:
        session = person.session
        assert session is not None and session.bridge_session is not None
        assert session.bridge_session.id == colibri.id
        transports = [c.transport for c in session.offer.contents if c.transport is not None]
        assert transports, "the offer carries the bridge's transport"
        assert {t.ufrag for t in transports} == {on_bridge[person.endpoint_id or ""].ufrag}
        addresses = {c.ip for t in transports for c in t.candidates}
        assert addresses and addresses <= set(engine.candidate_addresses)
    await sources_exchanged(people)

    def bridge_has_sources() -> bool:
        state = engine.dump()["conferences"].get(conference.meeting_id, {}).get("endpoints", {})
        return all(
            person.endpoint_id in state and person.local is not None
            and {ssrc for s in state[person.endpoint_id]["sources"] for ssrc in s["ssrcs"]}
            == person.local.ssrcs()
            for person in people
        )

    await wait_until(bridge_has_sources, DEADLINE, f"the sources on {survivor.nickname}")


def allocations_after(bridge: SimulatedBridge, moment: float) -> list[dict[str, Any]]:
    return [e for e in bridge.requests if e["kind"] == "allocate" and e["time"] > moment]


# ----- a bridge that dies ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["killed", "left"])
async def test_a_dead_bridge_has_its_participants_moved_and_is_sent_nothing_more(
    prosody: ProsodyInstance, tmp_path: Path, how: str,
) -> None:
    """A bridge process is SIGKILLed (Prosody sees its connection drop and tells the brewery), or
    the bridge leaves the brewery cleanly (an unavailable presence; its process lives on). Every
    participant that was on it gets a new session-initiate on the surviving bridge, the sources are
    signaled again, a conference on the survivor is left alone, and the focus sends the dead bridge
    nothing at all from then on: neither allocations nor an expire of the lost conference.

    How "nothing" is observed: the focus's XMPP connection goes through a recording proxy. Before
    the bridge goes, the test waits until the recording and the bridge's own request log agree
    (every request the focus sent it arrived and was answered), and marks the recording there;
    health checks are spaced an hour apart so that none is due in the instant between the death
    and the focus hearing of it. Anything addressed to the bridge after the mark would have been
    sent after it died."""
    room, bystanders_room = room_of(prosody, "doomed"), room_of(prosody, "bystanders")
    extra = {"jicofo.bridge.health-checks.interval": "1 hour",
             # keeps the load correction (not the bridges' own stress) deciding where the
             # second conference goes, whatever the machine's speed
             "jicofo.bridge.participant-rampup-interval": "10 minutes"}
    async with bridge_process(prosody, tmp_path, "jvb-doomed-") as (process, control), \
            focus_on_the_wire(prosody, extra) as (app, wire):
        doomed = await wait_for_bridge(app, "jvb-doomed-1")
        async with participants(prosody, room, 3) as people:
            before = await sessions_of(people)
            conference = conference_of(app, room)
            assert bridges_of(conference) == [doomed.nickname]
            await sources_exchanged(people)
            async with simulated_bridges(prosody, 1, prefix="jvb-live-") as sims:
                (live,) = sims.bridges
                await wait_for_bridge(app, live.nickname)
                async with participants(prosody, bystanders_room, 2, first=3) as bystanders:
                    theirs = await sessions_of(bystanders)
                    assert bridges_of(conference_of(app, bystanders_room)) == [live.nickname]
                    await sources_exchanged(bystanders)

                    async def settled() -> bool:
                        log = await get_json("127.0.0.1", control, "/requests")
                        return len(log) == len(sent_to(wire, doomed)) and all(
                            e["response"] is not None or e["error"] is not None for e in log)

                    await wait_until_async(settled, DEADLINE, "the doomed bridge's log to match the wire")
                    assert len(sent_to(wire, doomed)) >= 3, "the recording sees the allocations"
                    mark = wire.mark()
                    if how == "killed":
                        process.send_signal(signal.SIGKILL)
                        await process.wait()
                    else:
                        await post_json("127.0.0.1", control, "/leave", {})
                    await wait_until(lambda: doomed.removed, DEADLINE, "the focus to drop the bridge")

                    await moved_to(people, before, conference, live)
                    untouched(bystanders, theirs)
                    no_errors(people + bystanders)
                    assert [serialize(s) for s in sent_to(wire, doomed, since=mark)] == []


async def test_a_participant_being_allocated_when_the_bridge_goes_is_invited_elsewhere(
    prosody: ProsodyInstance,
) -> None:
    """The bridge leaves while a newcomer's allocation on it is unanswered: the newcomer is invited
    on the surviving bridge with the others, rather than waiting for an answer that cannot come."""
    room = room_of(prosody)
    async with simulated_bridges(prosody, 2) as sims, running_focus(focus_config(prosody)) as app:
        for sim in sims.bridges:
            await wait_for_bridge(app, sim.nickname)
        async with participants(prosody, room, 2) as people:
            before = await sessions_of(people)
            conference = conference_of(app, room)
            (bridge,) = conference.colibri_sessions
            going = sims.by_nick(bridge.nickname)
            (staying,) = (b for b in sims.bridges if b is not going)
            await post_json("127.0.0.1", sims.http_port, f"/bridges/{going.nickname}/faults",
                            {"silent": ["allocate"]})
            async with participants(prosody, room, 1, first=2) as (late,):
                await wait_until(lambda: any(e["kind"] == "allocate" and late.endpoint_id in e["request"]
                                             for e in going.requests), DEADLINE, "the newcomer's allocation")
                await post_json("127.0.0.1", sims.http_port, f"/bridges/{going.nickname}/leave", {})
                await moved_to([*people, late], {**before, late.endpoint_id or "": ""}, conference, staying)
                assert late.sessions_accepted == 1
                no_errors([*people, late])


async def test_an_allocation_timeout_moves_the_conference_with_its_newcomers(
    prosody: ProsodyInstance,
) -> None:
    """A bridge stops answering allocations: the first newcomer's allocation times out, the bridge
    is no longer used, and the whole conference moves to the other bridge, with both newcomers
    (the second one's allocation, sent right behind the first, went unanswered too)."""
    room = room_of(prosody)
    config = focus_config(prosody, {"jicofo.xmpp.service.reply-timeout": "2 seconds"})  # Colibri2's
    async with simulated_bridges(prosody, 2) as sims, running_focus(config) as app:
        for sim in sims.bridges:
            await wait_for_bridge(app, sim.nickname)
        async with participants(prosody, room, 2) as people:
            before = await sessions_of(people)
            conference = conference_of(app, room)
            (bridge,) = conference.colibri_sessions
            stuck = sims.by_nick(bridge.nickname)
            (working,) = (b for b in sims.bridges if b is not stuck)
            await post_json("127.0.0.1", sims.http_port, f"/bridges/{stuck.nickname}/faults",
                            {"silent": ["allocate"]})
            async with participants(prosody, room, 2, first=2) as newcomers:
                await moved_to([*people, *newcomers],
                               {**before, **{p.endpoint_id or "": "" for p in newcomers}},
                               conference, working)
                assert not bridge.is_operational(trio.current_time())
                for person in newcomers:
                    assert person.sessions_accepted == 1
                no_errors([*people, *newcomers])
                await wait_until(lambda: conference.meeting_id not in stuck.engine.conferences, DEADLINE,
                                 "the conference expired on the bridge that timed out")


# ----- health checks -----------------------------------------------------------------------------


async def test_a_health_check_error_moves_the_participants(prosody: ProsodyInstance) -> None:
    """A health check answered with internal-server-error: the bridge is failed, every participant
    on it is moved to the other bridge, and the failed bridge (alive, and still in the brewery) is
    told to drop the conference and is given nothing new."""
    room = room_of(prosody)
    async with simulated_bridges(prosody, 2) as sims, \
            running_focus(focus_config(prosody, HEALTH_EVERY_SECOND)) as app:
        for bridge in sims.bridges:
            await wait_for_bridge(app, bridge.nickname)
        async with participants(prosody, room, 3) as people:
            before = await sessions_of(people)
            conference = conference_of(app, room)
            (bridge,) = conference.colibri_sessions
            sick = sims.by_nick(bridge.nickname)
            (well,) = (b for b in sims.bridges if b is not sick)
            await sources_exchanged(people)

            await post_json("127.0.0.1", sims.http_port, f"/bridges/{sick.nickname}/faults",
                            {"error": {"condition": "internal-server-error", "kinds": ["health"]}})
            await moved_to(people, before, conference, well)
            no_errors(people)

            failed = [e for e in sick.requests if e["kind"] == "health" and e["error"] is not None]
            assert failed and failed[0]["error"]["condition"] == "internal-server-error"
            assert allocations_after(sick, failed[0]["time"]) == []
            assert app.brewery is not None
            assert app.brewery.health(bridge) is HealthState.FAILED
            assert not bridge.is_operational(trio.current_time())
            await wait_until(lambda: conference.meeting_id not in sick.engine.conferences, DEADLINE,
                             "the conference expired on the failed bridge")


async def test_a_single_health_check_timeout_moves_nobody(
    prosody: ProsodyInstance, caplog: pytest.LogCaptureFixture,
) -> None:
    """One health check goes unanswered and the retry passes: nothing happens. (Then two in a row:
    the bridge is no longer operational, but still nobody is moved: the bridge may only be cut
    off from the focus, not from its participants.)"""
    caplog.set_level(logging.INFO, logger="jicofo.bridge.brewery")
    room = room_of(prosody)
    config = focus_config(prosody, {**HEALTH_EVERY_SECOND,
                                    "jicofo.bridge.health-checks.retry-delay": "1 second",
                                    # the health check's deadline
                                    "jicofo.xmpp.client.reply-timeout": "2 seconds"})
    async with simulated_bridges(prosody, 2) as sims, running_focus(config) as app:
        assert app.brewery is not None
        brewery = app.brewery
        for sim in sims.bridges:
            await wait_for_bridge(app, sim.nickname)
        async with participants(prosody, room, 2) as people:
            before = await sessions_of(people)
            await sources_exchanged(people)
            conference = conference_of(app, room)
            ((bridge, colibri),) = conference.colibri_sessions.items()
            quiet = sims.by_nick(bridge.nickname)

            def checks() -> int:
                return sum(1 for e in quiet.requests if e["kind"] == "health")

            # One check unanswered. The fault is set on the bridge object itself, between two
            # awaits, so the count and the silence start together; it is lifted as soon as that
            # check arrives, long before the focus's retry (deadline + retry delay later).
            unanswered = checks()
            quiet.faults.silent = {"health"}
            await wait_until(lambda: checks() > unanswered, DEADLINE, "a health check")
            quiet.faults.silent = set()
            # The retry, then the next regular check: by then the retry's verdict is in.
            await wait_until(lambda: checks() >= unanswered + 3, DEADLINE, "the retry and the next check")
            assert any(f"{quiet.nickname}: health check timed out; retrying" in r.getMessage()
                       for r in caplog.records)
            assert brewery.health(bridge) is HealthState.OK
            assert bridge.is_operational(trio.current_time())
            assert conference.colibri_sessions == {bridge: colibri}
            untouched(people, before)

            # Two in a row.
            quiet.faults.silent = {"health"}
            await wait_until(lambda: brewery.health(bridge) is HealthState.TIMED_OUT, DEADLINE,
                             "the bridge to time out")
            assert not bridge.is_operational(trio.current_time())
            # Moving would have dropped the session at once, with the verdict.
            assert conference.colibri_sessions == {bridge: colibri}
            assert {p.colibri for p in conference.participants.values()} == {colibri}
            untouched(people, before)
            no_errors(people)


# ----- graceful shutdown, shutting down, drain ---------------------------------------------------


async def test_graceful_shutdown_takes_no_new_conference_and_keeps_the_existing_ones(
    prosody: ProsodyInstance,
) -> None:
    room, fresh_room = room_of(prosody), room_of(prosody, "fresh")
    async with simulated_bridges(prosody, 2) as sims, running_focus(focus_config(prosody)) as app:
        for sim in sims.bridges:
            await wait_for_bridge(app, sim.nickname)
        async with participants(prosody, room, 2) as people:
            before = await sessions_of(people)
            conference = conference_of(app, room)
            ((bridge, colibri),) = conference.colibri_sessions.items()
            going = sims.by_nick(bridge.nickname)
            (staying,) = (b for b in sims.bridges if b is not going)

            await post_json("127.0.0.1", sims.http_port, f"/bridges/{going.nickname}/colibri/shutdown",
                            {"graceful-shutdown": True})
            await wait_until(lambda: bridge.graceful_shutdown, DEADLINE, "the graceful-shutdown presence")

            async with participants(prosody, fresh_room, 2, first=2) as newcomers:
                await sessions_of(newcomers)
                fresh = conference_of(app, fresh_room)
                assert bridges_of(fresh) == [staying.nickname]
                # Not even tried there (a create would have been refused with graceful_shutdown).
                assert [e for e in going.requests if e["meeting_id"] == fresh.meeting_id] == []

                # The existing conference stays, and a newcomer joins it there.
                async with participants(prosody, room, 1, first=4) as (late,):
                    await late.wait_for_session(DEADLINE)
                    assert conference.colibri_sessions == {bridge: colibri}
                    assert late.session is not None and late.session.bridge_session is not None
                    assert late.session.bridge_session.id == colibri.id
                    assert conference.meeting_id is not None
                    assert late.endpoint_id in going.engine.conferences[conference.meeting_id].endpoints
                    await sources_exchanged([*people, late])
                    untouched(people, before)
                    no_errors([*people, late, *newcomers])


async def test_a_create_refused_for_graceful_shutdown_goes_to_another_bridge(
    prosody: ProsodyInstance,
) -> None:
    """The focus has not heard yet that the bridge it prefers is in graceful shutdown (its presence
    lags): the bridge refuses the new conference with graceful_shutdown, and the conference goes to
    the other bridge at once."""
    room = room_of(prosody)
    async with simulated_bridges(prosody, 1, prefix="jvb-idle-") as idle_sims, \
            simulated_bridges(prosody, 1, "--stress", "0.3", prefix="jvb-busy-") as busy_sims, \
            running_focus(focus_config(prosody)) as app:
        (idle,), (busy,) = idle_sims.bridges, busy_sims.bridges
        idle_bridge = await wait_for_bridge(app, idle.nickname)
        busy_bridge = await wait_for_bridge(app, busy.nickname)
        await wait_until(lambda: busy_bridge.stress == 0.3, DEADLINE, "the busy bridge's stress")
        await post_json("127.0.0.1", idle_sims.http_port, "/faults", {"presence_frozen": True})
        await post_json("127.0.0.1", idle_sims.http_port, "/colibri/shutdown", {"graceful-shutdown": True})
        async with participants(prosody, room, 2) as people:
            await sessions_of(people)
            conference = conference_of(app, room)
            assert bridges_of(conference) == [busy.nickname]
            refused = [e for e in idle.requests if e["kind"] == "allocate"]
            assert refused and all(e["error"] is not None for e in refused)
            assert refused[0]["error"]["reason"] == "graceful_shutdown"
            assert idle_bridge.graceful_shutdown  # from the error: the presence never said so
            assert idle_bridge.is_operational(trio.current_time())
            await sources_exchanged(people)
            for person in people:
                assert person.sessions_accepted == 1
            no_errors(people)


async def test_a_bridge_shutting_down_has_its_participants_moved(prosody: ProsodyInstance) -> None:
    room = room_of(prosody)
    async with simulated_bridges(prosody, 2) as sims, running_focus(focus_config(prosody)) as app:
        for sim in sims.bridges:
            await wait_for_bridge(app, sim.nickname)
        async with participants(prosody, room, 3) as people:
            before = await sessions_of(people)
            await sources_exchanged(people)
            conference = conference_of(app, room)
            (bridge,) = conference.colibri_sessions
            going = sims.by_nick(bridge.nickname)
            (staying,) = (b for b in sims.bridges if b is not going)

            await post_json("127.0.0.1", sims.http_port, f"/bridges/{going.nickname}/colibri/shutdown",
                            {"graceful-shutdown": False})
            await wait_until(lambda: bridge.shutting_down, DEADLINE, "the shutting-down presence")
            shutting_down_at = time.time()
            await moved_to(people, before, conference, staying)
            no_errors(people)
            assert allocations_after(going, shutting_down_at) == []
            await wait_until(lambda: conference.meeting_id not in going.engine.conferences, DEADLINE,
                             "the conference expired on the bridge shutting down")


async def test_a_draining_bridge_is_avoided_while_another_exists(prosody: ProsodyInstance) -> None:
    """Drain outweighs load: with the idle bridge draining, a new conference goes to the busy
    one. Drain is only a preference: with both draining, the idle one is used again. Nothing is
    moved by it."""
    first_room, second_room = room_of(prosody, "first"), room_of(prosody, "second")
    async with simulated_bridges(prosody, 1, prefix="jvb-idle-") as idle_sims, \
            simulated_bridges(prosody, 1, "--stress", "0.5", prefix="jvb-busy-") as busy_sims, \
            running_focus(focus_config(prosody)) as app:
        (idle,), (busy,) = idle_sims.bridges, busy_sims.bridges
        idle_bridge = await wait_for_bridge(app, idle.nickname)
        busy_bridge = await wait_for_bridge(app, busy.nickname)
        await wait_until(lambda: busy_bridge.stress == 0.5, DEADLINE, "the busy bridge's stress")

        await post_json("127.0.0.1", idle_sims.http_port, "/colibri/drain/enable", {})
        await wait_until(lambda: idle_bridge.drain, DEADLINE, "the drain presence")
        async with participants(prosody, first_room, 2) as first:
            first_sessions = await sessions_of(first)
            first_conference = conference_of(app, first_room)
            assert bridges_of(first_conference) == [busy.nickname]

            await post_json("127.0.0.1", busy_sims.http_port, "/colibri/drain/enable", {})
            await wait_until(lambda: busy_bridge.drain, DEADLINE, "the second drain presence")
            async with participants(prosody, second_room, 2, first=2) as second:
                await sessions_of(second)
                assert bridges_of(conference_of(app, second_room)) == [idle.nickname]
                await sources_exchanged(first)
                await sources_exchanged(second)
                assert bridges_of(first_conference) == [busy.nickname]
                untouched(first, first_sessions)
                no_errors(first + second)


# ----- a bridge that answers nothing (issue 13) --------------------------------------------------

# Short deadlines so that these run in seconds: health checks every second with a 2 s deadline and
# a 1 s retry delay, Colibri2 requests with a 2 s deadline, a bridge failed after 6 s of silence
# (longer than a check and its retry both timing out: 2 + 1 + 2 s).
SILENCE_TIMEOUT = 6.0
QUICK_DEADLINES = {
    **HEALTH_EVERY_SECOND,
    "jicofo.bridge.health-checks.retry-delay": "1 second",
    "jicofo.bridge.health-checks.silence-timeout": f"{SILENCE_TIMEOUT:g} seconds",
    "jicofo.xmpp.client.reply-timeout": "2 seconds",  # the health checks' deadline
    "jicofo.xmpp.service.reply-timeout": "2 seconds",  # Colibri2's
}


@dataclass
class TwoOnOne:
    app: FocusApp
    first: SimulatedBridge  # both conferences are on it
    first_control: int  # its control API's port
    second: SimulatedBridge
    calls: list[tuple[Conference, list[SimulatedParticipant], dict[str, str]]]  # + session ids


@asynccontextmanager
async def two_conferences_on_one_bridge(
    prosody: ProsodyInstance, extra: dict[str, Any],
) -> AsyncIterator[TwoOnOne]:
    """Two conferences of two on one bridge (the only one when they start), then a second bridge
    in the brewery to move to."""
    rooms = [room_of(prosody, "alpha"), room_of(prosody, "beta")]
    async with simulated_bridges(prosody, 1, prefix="jvb-first-") as firsts, \
            running_focus(focus_config(prosody, extra)) as app:
        (first,) = firsts.bridges
        await wait_for_bridge(app, first.nickname)
        async with participants(prosody, rooms[0], 2) as alpha, \
                participants(prosody, rooms[1], 2, first=2) as beta:
            calls = []
            for room, people in zip(rooms, (alpha, beta), strict=True):
                before = await sessions_of(people)
                await sources_exchanged(people)
                conference = conference_of(app, room)
                assert bridges_of(conference) == [first.nickname]
                calls.append((conference, people, before))
            async with simulated_bridges(prosody, 1, prefix="jvb-second-") as seconds:
                (second,) = seconds.bridges
                await wait_for_bridge(app, second.nickname)
                yield TwoOnOne(app, first, firsts.http_port, second, calls)


def health_answers(bridge: SimulatedBridge, since: float) -> int:
    return sum(1 for e in bridge.requests if e["kind"] == "health" and e["time"] > since
               and (e["response"] is not None or e["error"] is not None))


async def test_a_colibri2_update_that_times_out_moves_the_conference(prosody: ProsodyInstance) -> None:
    """The bridge stops answering Colibri2 (its health checks still pass). The next update (a
    participant starts a screen share) times out: the bridge is marked (no new allocations) and
    that conference's participants are re-invited on the other bridge. The other conference on
    the bridge has sent nothing since and is left alone: the bridge still answers its health
    checks, so it is not failed (see the next test for one that answers nothing)."""
    async with two_conferences_on_one_bridge(prosody, QUICK_DEADLINES) as setup:
        app, first, second, calls = setup.app, setup.first, setup.second, setup.calls
        assert app.brewery is not None
        (conference, people, before), (bystanders, theirs, their_sessions) = calls
        (bridge,) = conference.colibri_sessions
        first.faults.silent = {"colibri"}
        silent_at = time.time()
        started = trio.current_time()
        await people[0].add_source("desktop")
        await wait_until(lambda: any(e["kind"] == "update" and e["time"] > silent_at for e in first.requests),
                         DEADLINE, "the update to reach the silent bridge")

        await moved_to(people, before, conference, second)
        moved_after = min(e.time for p in people for e in p.events_of("session-terminate", "in"))
        print(f"\nColibri2-silent bridge: conference moved {moved_after - started:.2f} s after the "
              f"update (Colibri2 deadline 2 s)")
        assert not bridge.is_operational(trio.current_time())
        no_errors(people)

        # The bridge kept answering health checks all along, so nobody else was moved.
        await wait_until(lambda: health_answers(first, silent_at) >= 3, DEADLINE, "health checks")
        assert app.brewery.health(bridge) is HealthState.OK
        assert bridges_of(bystanders) == [first.nickname]
        untouched(theirs, their_sessions)
        no_errors(theirs)


async def test_a_bridge_that_answers_nothing_has_every_conference_moved(prosody: ProsodyInstance) -> None:
    """The bridge hangs: it stays in the brewery (its presence is still there) but answers no
    health check and no Colibri2 request, and no conference sends it anything. Once it has
    answered nothing for the silence timeout it is failed and both conferences on it move to the
    other bridge; not before (the first unanswered check goes out after the hang)."""
    async with two_conferences_on_one_bridge(prosody, QUICK_DEADLINES) as setup:
        app, first, second, calls = setup.app, setup.first, setup.second, setup.calls
        assert app.brewery is not None
        brewery = app.brewery
        (bridge,) = calls[0][0].colibri_sessions
        failed_at: list[float] = []
        brewery.add_listener(lambda e: failed_at.append(trio.current_time())
                             if isinstance(e, BridgeFailed) and e.bridge is bridge else None)
        hung_at_wall = time.time()
        hung_at = trio.current_time()
        await post_json("127.0.0.1", setup.first_control, f"/bridges/{first.nickname}/faults",
                        {"hung": True})
        for conference, people, before in calls:
            await moved_to(people, before, conference, second)
            no_errors(people)
        assert bridge.jid in brewery.bridges and not bridge.removed, "it never left the brewery"
        assert brewery.health(bridge) is HealthState.FAILED
        assert len(failed_at) == 1
        first_unanswered = min(e["time"] for e in first.requests
                               if e["kind"] == "health" and e["time"] > hung_at_wall)
        moved = min(e.time for _, people, _ in calls for p in people
                    for e in p.events_of("session-terminate", "in"))
        print(f"\nhung bridge: failed {failed_at[0] - hung_at:.2f} s after the hang "
              f"({failed_at[0] - hung_at - (first_unanswered - hung_at_wall):.2f} s after the first "
              f"unanswered health check), first participant moved {moved - hung_at:.2f} s after the hang "
              f"(silence-timeout {SILENCE_TIMEOUT:g} s)")
        assert failed_at[0] - hung_at >= SILENCE_TIMEOUT
        # Nothing was allocated there after the hang.
        assert [e for e in first.requests if e["kind"] == "allocate" and e["time"] > hung_at_wall] == []


@pytest.mark.parametrize("how", ["slow", "health-silent"])
async def test_a_slow_bridge_keeps_its_participants(prosody: ProsodyInstance, how: str) -> None:
    """"slow": every answer, Colibri2 and health, comes 1.2 s late (within the 2 s deadlines).
    "health-silent": its health checks go unanswered (so it takes no new conference) but the
    conference's Colibri2 updates, one every 1.5 s, are answered. Either way the bridge answers
    something within every silence window: for twice the silence timeout nobody is moved."""
    async with two_conferences_on_one_bridge(prosody, QUICK_DEADLINES) as setup:
        app, first, calls = setup.app, setup.first, setup.calls
        assert app.brewery is not None
        (conference, people, before), (_, theirs, their_sessions) = calls
        ((bridge, colibri),) = conference.colibri_sessions.items()
        if how == "slow":
            first.faults.latency = {"all": (1.2, 1.2)}
        else:
            first.faults.silent = {"health"}
        since = time.time()
        end = trio.current_time() + 2 * SILENCE_TIMEOUT
        updates = 0
        while trio.current_time() < end:
            # One update at a time: the bridge handles a conference's requests in order, so
            # faster traffic would queue up behind the latency until it times out.
            name = await people[0].add_source("desktop")
            await trio.sleep(1.5)
            await people[0].remove_source(name)
            await trio.sleep(1.5)
            updates += 2

        def answered() -> int:
            return sum(1 for e in first.requests if e["kind"] == "update" and e["time"] > since
                       and e["response"] is not None)

        await wait_until(lambda: answered() >= updates, DEADLINE, "the updates' answers")
        if how == "slow":
            assert health_answers(first, since) >= 3
            assert app.brewery.health(bridge) is HealthState.OK
            assert bridge.is_operational(trio.current_time())
        else:
            assert app.brewery.health(bridge) is HealthState.TIMED_OUT  # no new conferences
        assert conference.colibri_sessions == {bridge: colibri}
        untouched(people, before)
        untouched(theirs, their_sessions)
        no_errors(people + theirs)
