"""Issue 14 end to end: the focus process is killed (SIGKILL) or asked for a keep-conferences exit
(SIGUSR1) and started again about 1 s later; the new process takes the conferences back.

A real Prosody with smacks_hibernation_time 60 (as docker-jitsi-meet), the focus as a child
process (`python -m jicofo.cli`, its own state file), a simulated bridge and simulated lib-jitsi-meet
participants in this process. What is asserted crossed the wire or is the bridge's own state: no
participant saw the focus leave; a source-add sent while the focus was down is answered and reaches
the others; a participant joining afterwards gets a session on the same bridge conference with
everyone's sources; the bridge holds one conference, created once, with no duplicate endpoint; and
/stats counts the conference again.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from jicofo.http.client import get_json
from jicofo.sim.participant import FOCUS_LEFT, ParticipantOptions, SimulatedParticipant
from jicofo.stress.local import focus_config_text, free_port
from jicofo.testing.prosody import ProsodyInstance, prosody_available, start_prosody
from jicofo.testing.sessions import end_session
from jicofo.testing.stack import focus_overrides, simulated_bridges
from jicofo.testing.waiting import wait_until, wait_until_async
from jicofo.xmpp.settings import Timeouts

from .test_bridge_failures import sources_exchanged
from .test_focus_e2e import room_of
from .xmpp_helpers import settings_for

pytestmark = [pytest.mark.skipif(not prosody_available(), reason="needs prosody"), pytest.mark.prosody]

DEADLINE = 20.0
HIBERNATION = 60
# lib-jitsi-meet waits this long for a Jingle answer; the focus is down for part of it.
PARTICIPANT_TIMEOUTS = Timeouts(connect=5, negotiation=5, request=15, ping_interval=0, close=1)


class FocusProcess:
    """`python -m jicofo.cli` on a config file, with the restart store on, restartable."""

    def __init__(self, prosody: ProsodyInstance, workdir: Path, extra: dict[str, Any] | None = None
                 ) -> None:
        self.prosody = prosody
        self.workdir = workdir
        self.rest_port = free_port()
        self.state_file = workdir / "state.sqlite3"
        overrides = focus_overrides(prosody)
        overrides.update({
            "jicofo.rest.port": self.rest_port, "jicofo.rest.host": "127.0.0.1",
            "jicofo.restart.enabled": True, "jicofo.restart.state-file": str(self.state_file),
            "jicofo.restart.max-age": f"{HIBERNATION} seconds",
            "jicofo.restart.heartbeat-interval": "500 ms",
        })
        overrides.update(extra or {})
        self.config = workdir / "jicofo.conf"
        self.config.write_text(focus_config_text(overrides))
        self.process: trio.Process | None = None
        self.starts = 0

    @property
    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("focus*.log")))

    async def start(self) -> None:
        self.starts += 1
        env = {**os.environ, "JICOFO_AUTH_PASSWORD": self.prosody.focus_password,
               "JICOFO_SECRET": self.prosody.component_secret}
        with open(self.workdir / f"focus{self.starts}.log", "wb") as stderr:  # noqa: ASYNC230
            self.process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "jicofo.cli", "--config", str(self.config),
                 "--log-level", "INFO"], env=env, stdout=subprocess.DEVNULL, stderr=stderr)

    async def stats(self) -> dict[str, Any] | None:
        try:
            with trio.fail_after(2):
                result = await get_json("127.0.0.1", self.rest_port, "/stats")
        except (OSError, trio.TooSlowError, ValueError):
            return None
        return result if isinstance(result, dict) else None

    async def wait_serving(self) -> None:
        async def up() -> bool:
            return await self.stats() is not None

        deadline = trio.current_time() + DEADLINE
        while not await up():
            assert self.process is not None and self.process.returncode is None, self.log[-3000:]
            assert trio.current_time() < deadline, "the focus did not come up\n" + self.log[-3000:]
            await trio.sleep(0.1)

    async def signal_and_wait(self, signum: int) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        with trio.fail_after(10):
            return await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(10):
                await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()


@asynccontextmanager
async def stack(tmp_path: Path, bridges: int = 1) -> AsyncIterator[tuple[ProsodyInstance, Any, FocusProcess]]:
    async with start_prosody(smacks_hibernation_time=HIBERNATION) as prosody, \
            simulated_bridges(prosody, bridges) as sims:
        focus = FocusProcess(prosody, tmp_path)
        try:
            await focus.start()
            await focus.wait_serving()
            yield prosody, sims, focus
        finally:
            with trio.CancelScope(shield=True):
                await focus.stop()


def person(prosody: ProsodyInstance, room: str, nick: str, seed: int) -> SimulatedParticipant:
    xmpp = dataclasses.replace(settings_for(prosody), timeouts=PARTICIPANT_TIMEOUTS)
    return SimulatedParticipant(ParticipantOptions(xmpp=xmpp, room=room, nick=nick, seed=seed))


def focus_left(people: list[SimulatedParticipant]) -> list[str]:
    return [p.endpoint_id or "?" for p in people if p.events_of("focus-left")]


async def _restart_keeps_the_conference(tmp_path: Path, how: str, members: int,
                                        twice: bool = False) -> None:
    async with stack(tmp_path) as (prosody, sims, focus), trio.open_nursery() as nursery:
        engine = sims.bridges[0].engine
        room = room_of(prosody, f"restart-{how}-{members}")
        people = [person(prosody, room, f"{n}0aa00{n}", n) for n in range(members)]
        for p in people:
            await nursery.start(p.run)
        sids = {}
        for p in people:
            session = await p.wait_for_session(DEADLINE)
            sids[p.endpoint_id] = session.sid
        await sources_exchanged(people)
        assert len(engine.conferences) == 1
        (meeting_id,) = engine.conferences
        created_before = engine.total_conferences_created

        # Down: killed outright, or asked to exit keeping the conferences.
        if how == "kill":
            await focus.signal_and_wait(signal.SIGKILL)
        else:
            assert await focus.signal_and_wait(signal.SIGUSR1) == 75
        added: dict[str, str] = {}

        async def share_screen() -> None:
            added["name"] = await people[0].add_source("desktop")  # raises if refused

        nursery.start_soon(share_screen)
        await trio.sleep(1.0)
        await focus.start()
        await focus.wait_serving()

        # The source-add sent while the focus was down was answered and reached the others.
        await wait_until(lambda: "name" in added, DEADLINE, "the source-add answered")
        first = people[0].local.sources[added["name"]].ssrcs[0]
        for other in people[1:]:
            await other.wait_for(
                lambda other=other: first in {
                    s.ssrc for s in other.remote.get(people[0].endpoint_id or "").sources},
                DEADLINE, "the shared screen's source")

        # A later joiner: a session on the same bridge conference, with everyone's sources.
        late = person(prosody, room, f"{members}0aa00{members}", members)
        await nursery.start(late.run)
        await late.wait_for_session(DEADLINE)
        everyone = [*people, late]
        await sources_exchanged(everyone)
        assert list(engine.conferences) == [meeting_id]
        assert engine.total_conferences_created == created_before
        endpoints = engine.conferences[meeting_id].endpoints
        assert sorted(endpoints) == sorted(p.endpoint_id for p in everyone)

        # Nobody noticed: no focus leave, the same Jingle session, no refused IQ.
        assert focus_left(everyone) == []
        for p in people:
            assert p.session is not None and p.session.sid == sids[p.endpoint_id]
            assert p.sessions_accepted == 1
            assert p.error_count == 0, p.events_of("error")
        stats = await focus.stats()
        assert stats is not None and stats["conferences"] == 1
        assert stats["participants"] == members + 1
        assert "resuming" in focus.log and "session resumed" in focus.log

        if twice:
            # The resumed process journals on: a second kill is taken back the same way.
            await focus.signal_and_wait(signal.SIGKILL)
            await trio.sleep(1.0)
            await focus.start()
            await focus.wait_serving()
            later = person(prosody, room, f"{members + 1}0aa00{members + 1}", members + 1)
            await nursery.start(later.run)
            await later.wait_for_session(DEADLINE)
            await sources_exchanged([*everyone, later])
            assert list(engine.conferences) == [meeting_id]
            assert engine.total_conferences_created == created_before
            assert focus_left([*everyone, later]) == []
            assert all(p.sessions_accepted == 1 for p in everyone)
            assert sorted(engine.conferences[meeting_id].endpoints) == \
                sorted(p.endpoint_id for p in [*everyone, later])

            # A member leaves while the focus is down: its endpoint goes from the bridge, and the
            # one who stays is told nothing more (the room told it; its session goes on).
            stayer, leaver = everyone[0], everyone[1]
            await focus.signal_and_wait(signal.SIGKILL)
            await leaver.leave()
            await trio.sleep(1.0)
            await focus.start()
            await focus.wait_serving()
            await wait_until(lambda: leaver.endpoint_id not in engine.conferences[meeting_id].endpoints,
                             DEADLINE, "the leaver's endpoint expired")
            assert "1 left meanwhile" in focus.log
            assert stayer.session is not None and stayer.session.sid == sids[stayer.endpoint_id]
            assert focus_left([stayer, later]) == []

        # The restored conference is the focus's own: an orderly stop expires it on the bridge.
        assert await focus.signal_and_wait(signal.SIGTERM) == 0
        await wait_until(lambda: not engine.conferences, DEADLINE, "the conference expired")
        nursery.cancel_scope.cancel()


async def test_sigkill_with_two_members_keeps_the_conference(tmp_path: Path) -> None:
    await _restart_keeps_the_conference(tmp_path, "kill", 2)


async def test_sigkill_with_three_members_keeps_the_conference_twice(tmp_path: Path) -> None:
    await _restart_keeps_the_conference(tmp_path, "kill", 3, twice=True)


async def test_planned_restart_keeps_the_conference(tmp_path: Path) -> None:
    await _restart_keeps_the_conference(tmp_path, "usr1", 2)


async def test_a_stale_store_is_discarded_and_its_bridge_conference_expired(tmp_path: Path) -> None:
    async with stack(tmp_path) as (prosody, sims, focus), trio.open_nursery() as nursery:
        engine = sims.bridges[0].engine
        room = room_of(prosody, "stale")
        people = [person(prosody, room, f"{n}0bb00{n}", n) for n in range(2)]
        for p in people:
            await nursery.start(p.run)
        for p in people:
            await p.wait_for_session(DEADLINE)
        (meeting_id,) = engine.conferences
        await focus.signal_and_wait(signal.SIGKILL)
        # As if the focus had stayed down past the window: the heartbeat is much older.
        with sqlite3.connect(focus.state_file) as db:
            db.execute("UPDATE meta SET value=? WHERE key='written_at'",
                       (repr(time.time() - 10 * HIBERNATION),))
        await focus.start()
        await focus.wait_serving()
        await wait_until(lambda: meeting_id not in engine.conferences, DEADLINE,
                         "the old conference expired on the bridge")
        stats = await focus.stats()
        assert stats is not None and stats["conferences"] == 0
        assert "discarded" in focus.log
        nursery.cancel_scope.cancel()


async def test_a_refused_resumption_falls_back_to_a_clean_start(tmp_path: Path) -> None:
    """The hibernated session is gone when the new process comes (as after a Prosody restart):
    the restored conference is stopped, its bridge conference expired, the clients see the focus
    leave (and would reload); the new focus serves."""
    async with stack(tmp_path) as (prosody, sims, focus), trio.open_nursery() as nursery:
        engine = sims.bridges[0].engine
        room = room_of(prosody, "refused")
        people = [person(prosody, room, f"{n}0cc00{n}", n) for n in range(2)]
        for p in people:
            await nursery.start(p.run)
        for p in people:
            await p.wait_for_session(DEADLINE)
        (meeting_id,) = engine.conferences
        await focus.signal_and_wait(signal.SIGKILL)
        # Someone logs in with the focus's full JID: Prosody closes the hibernated session.
        await end_session(settings_for(prosody, "focus", resource="focus"))
        await focus.start()
        await focus.wait_serving()
        for p in people:
            event = await p.wait_for_event("conference-failed", DEADLINE)
            assert event.detail == FOCUS_LEFT
        await wait_until(lambda: meeting_id not in engine.conferences, DEADLINE,
                         "the old conference expired on the bridge")

        async def no_conference() -> bool:
            stats = await focus.stats()
            return stats is not None and stats["conferences"] == 0

        # The bridge conference is expired while the stopped conference is being let go.
        await wait_until_async(no_conference, DEADLINE, "/stats without the stopped conference")
        assert "session established" in focus.log
        nursery.cancel_scope.cancel()


async def test_a_member_being_invited_at_the_kill_gets_its_session(tmp_path: Path) -> None:
    """Killed right when the focus's offer reaches a joining member: whether its session-accept
    reached the old process or waits in Prosody's queue, the new process finishes the session on
    the same bridge conference, once."""
    async with stack(tmp_path) as (prosody, sims, focus), trio.open_nursery() as nursery:
        engine = sims.bridges[0].engine
        room = room_of(prosody, "inviting")
        people = [person(prosody, room, f"{n}0dd00{n}", n) for n in range(2)]
        for p in people:
            await nursery.start(p.run)
        for p in people:
            await p.wait_for_session(DEADLINE)
        (meeting_id,) = engine.conferences
        joiner = person(prosody, room, "20dd002", 2)
        await nursery.start(joiner.run)
        await joiner.wait_for(lambda: joiner.first("session-initiate", "in") is not None, DEADLINE,
                              "the offer")
        await focus.signal_and_wait(signal.SIGKILL)
        await trio.sleep(1.0)
        await focus.start()
        await focus.wait_serving()
        await joiner.wait_for_session(DEADLINE)
        everyone = [*people, joiner]
        await sources_exchanged(everyone)
        assert joiner.sessions_accepted == 1 and joiner.error_count == 0, joiner.events_of("error")
        assert list(engine.conferences) == [meeting_id]
        assert sorted(engine.conferences[meeting_id].endpoints) == sorted(
            p.endpoint_id for p in everyone)
        assert focus_left(everyone) == []
        nursery.cancel_scope.cancel()


async def test_a_conference_record_that_cannot_be_used_is_left_and_expired(tmp_path: Path) -> None:
    """A record from another version (or damaged): that conference is not taken back; the resumed
    session leaves its room (the clients reload) and its bridge conference is expired."""
    async with stack(tmp_path) as (prosody, sims, focus), trio.open_nursery() as nursery:
        engine = sims.bridges[0].engine
        room = room_of(prosody, "unusable")
        people = [person(prosody, room, f"{n}0ee00{n}", n) for n in range(2)]
        for p in people:
            await nursery.start(p.run)
        for p in people:
            await p.wait_for_session(DEADLINE)
        (meeting_id,) = engine.conferences
        await focus.signal_and_wait(signal.SIGKILL)
        with sqlite3.connect(focus.state_file) as db:
            (value,) = db.execute("SELECT value FROM records WHERE kind='conference'").fetchone()
            db.execute("UPDATE records SET value=? WHERE kind='conference'",
                       (value.replace('"format":1', '"format":99'),))
        await focus.start()
        await focus.wait_serving()
        for p in people:
            event = await p.wait_for_event("conference-failed", DEADLINE)
            assert event.detail == FOCUS_LEFT
        await wait_until(lambda: meeting_id not in engine.conferences, DEADLINE,
                         "the old conference expired on the bridge")
        assert "cannot be restored" in focus.log and "session resumed" in focus.log
        nursery.cancel_scope.cancel()


async def test_sigterm_still_leaves_everything_and_clears_the_store(tmp_path: Path) -> None:
    async with stack(tmp_path) as (prosody, sims, focus), trio.open_nursery() as nursery:
        engine = sims.bridges[0].engine
        room = room_of(prosody, "sigterm")
        people = [person(prosody, room, f"{n}0ff00{n}", n) for n in range(2)]
        for p in people:
            await nursery.start(p.run)
        for p in people:
            await p.wait_for_session(DEADLINE)
        assert await focus.signal_and_wait(signal.SIGTERM) == 0
        for p in people:
            event = await p.wait_for_event("conference-failed", DEADLINE)
            assert event.detail == FOCUS_LEFT
        assert engine.conferences == {}
        with sqlite3.connect(focus.state_file) as db:
            assert db.execute("SELECT count(*) FROM records").fetchone() == (0,)
            assert db.execute("SELECT count(*) FROM meta WHERE key='written_at'").fetchone() == (0,)
        nursery.cancel_scope.cancel()


async def test_a_cascaded_conference_keeps_its_relays(tmp_path: Path) -> None:
    """Octo: a conference on two bridges (one per region) linked by relays. After the kill and
    the new start no relay is created again, and a member who joins afterwards is mirrored into
    the relay on the other bridge."""
    from .test_cascade import CASCADE, mirrored_endpoints, regions, relays_on

    async with start_prosody(smacks_hibernation_time=HIBERNATION) as prosody, \
            regions(prosody, "eu", "us") as sims, trio.open_nursery() as nursery:
        focus = FocusProcess(prosody, tmp_path, CASCADE)
        try:
            await focus.start()
            await focus.wait_serving()
            room = room_of(prosody, "cascade")

            def member(n: int, region: str) -> SimulatedParticipant:
                xmpp = dataclasses.replace(settings_for(prosody), timeouts=PARTICIPANT_TIMEOUTS)
                return SimulatedParticipant(ParticipantOptions(
                    xmpp=xmpp, room=room, nick=f"{n}0ab00{n}", seed=n, region=region))

            europeans = [member(0, "eu"), member(1, "eu")]
            for p in europeans:
                await nursery.start(p.run)
            for p in europeans:
                await p.wait_for_session(DEADLINE)
            american = member(2, "us")
            await nursery.start(american.run)
            await american.wait_for_session(DEADLINE)
            await sources_exchanged([*europeans, american])

            async def linked() -> bool:
                eu, us = await relays_on(sims["eu"]), await relays_on(sims["us"])
                return mirrored_endpoints(eu, "relay-us-1") == {american.endpoint_id} and \
                    mirrored_endpoints(us, "relay-eu-1") == {p.endpoint_id for p in europeans}

            deadline = trio.current_time() + DEADLINE
            while not await linked():
                assert trio.current_time() < deadline, "the relays were not set up"
                await trio.sleep(0.1)

            await focus.signal_and_wait(signal.SIGKILL)
            await trio.sleep(1.0)
            await focus.start()
            await focus.wait_serving()

            second = member(3, "us")
            await nursery.start(second.run)
            await second.wait_for_session(DEADLINE)
            everyone = [*europeans, american, second]
            await sources_exchanged(everyone)
            eu, us = await relays_on(sims["eu"]), await relays_on(sims["us"])
            assert [kind for kind, _, _ in eu].count("relay-create") == 1
            assert [kind for kind, _, _ in us].count("relay-create") == 1
            assert mirrored_endpoints(eu, "relay-us-1") == {american.endpoint_id, second.endpoint_id}
            assert mirrored_endpoints(us, "relay-eu-1") == {p.endpoint_id for p in europeans}
            assert focus_left(everyone) == []
            assert all(p.sessions_accepted == 1 for p in everyone)
        finally:
            with trio.CancelScope(shield=True):
                await focus.stop()
        nursery.cancel_scope.cancel()
