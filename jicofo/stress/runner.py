"""Runs a scenario: simulated participants join conferences at the join rate, hold, churn and
share screens; faults are injected on cue; a monitor prints progress, samples the processes and
ends the load phase early when a ramp's stop condition trips; then everyone leaves (bounded) and
the report is computed from the participants' timestamped event logs.

Every loop is bounded: joins by the scenario's plan, the load phase by its duration, the
teardown by TEARDOWN_TIMEOUT; every wait on the network has a deadline.
"""

from __future__ import annotations

import math
import os
import random
import secrets
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import trio

from jicofo.http.client import get_json, post_json
from jicofo.sim.participant import (
    ParticipantError,
    ParticipantOptions,
    ParticipantTimeout,
    ParticipantTimeouts,
    SimulatedParticipant,
    SourceRejected,
)
from jicofo.tasks import single_cause
from jicofo.xmpp.errors import StanzaError, XMPPError

from .dials import DialLoad
from .local import Shard, Target
from .recordings import RecordingLoad
from .report import ProcWatch, breakdown, percentile, summarize
from .scenario import FOCUS_FAULTS, Scenario

TEARDOWN_TIMEOUT = 30.0  # everyone leaves within this, or is cut off
SCRIPT_TIMEOUT = 10.0  # one scripted action (screen share on/off)
HTTP_TIMEOUT = 10.0
LEAK_GRACE_CHECKS = 5  # bridge conferences still orphaned after this many seconds are leaks
LIVE_WINDOW = 10.0  # seconds of joins the live p99 (progress, ramp stop) looks at
MAX_EVENTS = 2000  # per participant event log


@dataclass(eq=False)
class StressConference:
    """One room the runner fills with simulated participants (not the focus's Conference)."""

    index: int
    room: str
    size: int
    members: set[Slot] = field(default_factory=set)  # in the room
    two_members_at: float | None = None  # when it last reached two members (the focus invites then)

    async def moderator_in_session(self) -> SimulatedParticipant:
        """A member in session with the moderator role, once there is one (for requests only a
        moderator may make: recordings, dial-outs)."""
        while True:
            slot = next((s for s in list(self.members)
                         if s.state == "in-session" and s.person.is_moderator), None)
            if slot is not None:
                return slot.person
            await trio.sleep(0.1)


@dataclass(eq=False)
class Slot:
    """One participant instance (a rejoin after churn is a new slot, as a page reload is)."""

    conference: StressConference
    person: SimulatedParticipant
    started: float
    state: str = "joining"  # joining, in-session, failed, left
    failure: str | None = None
    joined_at: float | None = None
    session_at: float | None = None
    join_to_si: float | None = None  # join (or the second member's arrival) -> session-initiate
    left_at: float | None = None
    desktop: str | None = None  # the screen share's source name while sharing
    busy: bool = False
    wake: trio.Event = field(default_factory=trio.Event)  # leave now (or the run ended by itself)
    joining_scope: trio.CancelScope | None = None
    focus_left_at: float | None = None  # the focus left the room: the page reloads
    reload_of: Slot | None = None  # the page load before this one
    reloaded_as: Slot | None = None  # the page load after this one

    def leave_now(self) -> None:
        """Leave: at once when still joining, else after the current step."""
        self.wake.set()
        if self.joining_scope is not None:
            self.joining_scope.cancel()


@dataclass
class FaultRecord:
    fault: str
    kind: str
    applied_at: float  # trio clock
    applied_at_s: float  # since the start of the load phase
    bridge: str | None = None
    affected: dict[str, str | None] = field(default_factory=dict)  # endpoint id -> sid at the fault
    expects_reinvite: bool = False
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # kill-focus: the participants in session elsewhere (other shards), who should notice nothing.
    bystanders: dict[str, str | None] = field(default_factory=dict)


class Progress:
    """A live line on a terminal (rewritten in place), plain periodic lines otherwise."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, every: float = 5.0,
                 quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every
        self.quiet = quiet
        self._last = -math.inf

    def update(self, elapsed: float, line: str) -> None:
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self.stream.flush()
        elif elapsed - self._last >= self.every:
            self._last = elapsed
            self.stream.write(line + "\n")
            self.stream.flush()

    def done(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()

    def say(self, line: str) -> None:
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r\x1b[2K")
        self.stream.write(line + "\n")
        self.stream.flush()


class Runner:
    def __init__(self, scenario: Scenario, target: Target, progress: Progress | None = None) -> None:
        self.sc = scenario
        self.target = target
        self.progress = progress or Progress(quiet=True)
        self.rng = random.Random(scenario.seed)
        self.run_id = secrets.token_hex(3)
        self.conferences = [
            StressConference(i, f"{scenario.room_prefix}-{self.run_id}-{i}@{target.muc_domain}",
                       self.rng.randint(*scenario.participants))
            for i in range(scenario.conferences)
        ]
        self.slots: list[Slot] = []
        self.by_endpoint: dict[str, Slot] = {}
        self.live: deque[tuple[float, float]] = deque()  # (time, start -> session-initiate)
        self.runner_errors: list[str] = []
        self.faults: list[FaultRecord] = []
        self.completed = self.failed = 0
        self.churn_left = self.churn_rejoined = 0
        self.reloads = 0
        self.bridge_leaks: dict[str, Any] | None = None
        self.source_done = self.source_failed = 0
        self.ice_outcomes: dict[str, int] = {"restarted": 0, "refused": 0, "timeout": 0, "session-closed": 0}
        self.ice_fallbacks = 0
        self.ice_latencies: list[float] = []
        self.mutes_done = self.mutes_refused = self.mutes_failed = 0
        self.mute_latency: list[float] = []  # mute IQ -> result
        self.mute_notified: list[float] = []  # mute IQ -> the target's mute-request
        self.unmute_latency: list[float] = []  # self-unmute IQ -> result
        self.peak_participants = self.peak_conferences = 0
        self.stop_reason: str | None = None
        self.t0 = 0.0
        self.load_end = 0.0
        self.wall_start = 0.0
        self.focus_stats: dict[str, Any] | None = None
        self.focus_traffic_start: dict[str, int] | None = None
        self.shards: list[dict[str, Any]] | None = None
        self._shard_snapshots: dict[int, dict[str, Any]] = {}  # before a kill-focus
        self.watches = [ProcWatch(name, pid) for name, pid in (target.pids or {}).items()]
        self.watches.append(ProcWatch("load generator", os.getpid()))
        self._load_done = trio.Event()
        self._active = 0  # participant tasks running
        self._all_left = trio.Event()  # set whenever _active drops to zero
        self._counter = 0
        self._nursery: trio.Nursery | None = None
        self.recordings = RecordingLoad(self) if scenario.recordings else None
        self.dials = DialLoad(self) if scenario.dials else None

    # ----- the run --------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        self.t0 = trio.current_time()
        self.wall_start = time.time()
        for watch in self.watches:
            watch.begin()
        start_stats = await self._get_focus_stats()
        if start_stats is not None:
            self.focus_traffic_start = start_stats.get("xmpp_traffic")
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            async with trio.open_nursery() as load:
                load.start_soon(self._schedule_joins)
                load.start_soon(self._monitor)
                if self.sc.churn > 0:
                    load.start_soon(self._churn)
                if self.sc.source_changes > 0:
                    load.start_soon(self._mixed_in, self.sc.source_changes, self._toggle_share)
                if self.sc.ice_restarts_per_minute > 0:
                    load.start_soon(self._mixed_in, self.sc.ice_restarts_per_minute, self._restart_ice)
                if self.sc.mutes_per_minute > 0:
                    load.start_soon(self._mutes)
                if self.sc.faults:
                    load.start_soon(self._inject_faults)
                if self.recordings is not None:
                    load.start_soon(self.recordings.run)
                if self.dials is not None:
                    load.start_soon(self.dials.run)
                with trio.move_on_after(self.sc.duration):
                    await self._load_done.wait()
                self._load_done.set()
                load.cancel_scope.cancel()
            self.load_end = trio.current_time()
            self.progress.done()
            await self._fetch_focus_stats()
            self.shards = await self._shards_report()
            if self.recordings is not None:
                await self.recordings.finish()
            orphaned = await self._orphaned_bridge_conferences()
            self.progress.say(f"load phase over after {self.load_end - self.t0:.1f} s; everyone leaves")
            for slot in self.slots:
                slot.leave_now()
            with trio.move_on_after(TEARDOWN_TIMEOUT):
                while self._active:
                    await self._all_left.wait()
            nursery.cancel_scope.cancel()
        await trio.sleep(1.0)  # let the focus finish expiring what the leaves started
        for watch in self.watches:
            watch.sample()
        if orphaned is not None:
            left = await self._orphaned_bridge_conferences()
            self.bridge_leaks = {"orphaned_at_load_end": len(orphaned), "left_at_end": len(left or {}),
                                 "leaked_meeting_ids": sorted(orphaned)[:20]}
        return self.report()

    def elapsed(self) -> float:
        return trio.current_time() - self.t0

    def _stop(self, reason: str) -> None:
        if self.stop_reason is None and not self._load_done.is_set():
            self.stop_reason = reason
            self.progress.say(f"stopping the load: {reason}")
        self._load_done.set()

    async def _schedule_joins(self) -> None:
        plan = [c for c in self.conferences for _ in range(c.size)]
        for i, conference in enumerate(plan):
            await trio.sleep_until(self.t0 + i / self.sc.join_rate)
            self._start_participant(conference)
        # Everyone planned has started; the load phase goes on (holding) until the duration.

    def _start_participant(self, conference: StressConference, reload_of: Slot | None = None) -> None:
        assert self._nursery is not None
        if self._load_done.is_set():
            return
        self._counter += 1
        nick = f"{self.rng.getrandbits(16):04x}{self._counter:04x}"[-8:]
        while nick in self.by_endpoint:
            nick = f"{self.rng.getrandbits(32):08x}"
        options = ParticipantOptions(
            xmpp=self.target.settings_for(conference.room), room=conference.room, focus=self.target.focus,
            nick=nick, seed=self.rng.getrandbits(32), max_events=MAX_EVENTS,
            json_sources=self._counter % 2 == 0,  # half read XML sources, half the compact JSON
            timeouts=ParticipantTimeouts(conference=self.sc.session_timeout, join=15.0, accept=15.0,
                                         request=15.0),
        )
        person = SimulatedParticipant(options, name=f"participant {nick}")
        slot = Slot(conference, person, trio.current_time(), reload_of=reload_of)
        if reload_of is not None:
            reload_of.reloaded_as = slot
        self.slots.append(slot)
        self.by_endpoint[nick] = slot
        self._nursery.start_soon(self._participant, slot)

    async def _participant(self, slot: Slot) -> None:
        person = slot.person
        conference = slot.conference
        self._active += 1
        self._all_left = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                got_session = False
                with trio.CancelScope() as scope:  # leave_now() cancels the join
                    slot.joining_scope = scope
                    await nursery.start(self._run_person, slot)
                    nursery.start_soon(self._watch_focus_left, slot)
                    slot.joined_at = trio.current_time()
                    conference.members.add(slot)
                    if len(conference.members) == 2:
                        conference.two_members_at = slot.joined_at
                    try:
                        await person.wait_for_session(self.sc.session_timeout)
                        got_session = True
                    except ParticipantTimeout:
                        self._fail(slot, f"no accepted session within {self.sc.session_timeout:g} s")
                slot.joining_scope = None
                if got_session and slot.focus_left_at is None:
                    self._session_up(slot)
                    await slot.wake.wait()
                await person.leave()
                nursery.cancel_scope.cancel()  # the watcher
        except Exception as exc:  # one participant's failure never ends the run
            cause = single_cause(exc)
            if isinstance(cause, ParticipantError):
                self._fail(slot, str(cause))
            else:
                self._fail(slot, f"{type(cause).__name__}: {cause}")
                self.runner_errors.append(f"participant task: {type(cause).__name__}: {cause}")
        finally:
            conference.members.discard(slot)
            if len(conference.members) < 2:
                conference.two_members_at = None
            if slot.state in ("joining", "in-session"):
                slot.state = "left"
            slot.left_at = trio.current_time()
            if slot.focus_left_at is not None and self._nursery is not None:
                self._nursery.start_soon(self._reload, slot)
            self._active -= 1
            if not self._active:
                self._all_left.set()

    async def _watch_focus_left(self, slot: Slot) -> None:
        """lib-jitsi-meet fails the conference when the focus leaves the room
        (conference.focusLeft); the web app leaves it and reloads the page."""
        person = slot.person
        try:
            await person.wait_for(lambda: person.first("conference-failed") is not None,
                                  self.sc.duration + TEARDOWN_TIMEOUT, "the focus to leave")
        except ParticipantTimeout:
            return
        if slot.wake.is_set():
            return  # leaving anyway
        slot.focus_left_at = trio.current_time()
        if not any(f.kind in ("drop-focus-connection", "kill-focus", "restart-focus")
                   and f.applied_at <= slot.focus_left_at
                   and (f.kind != "kill-focus" or person.endpoint_id not in f.bystanders)
                   for f in self.faults):
            self.runner_errors.append("the focus left the room without a fault that explains it")
        slot.leave_now()

    async def _reload(self, slot: Slot) -> None:
        """The page reload after conference.focusLeft: a new participant (new connection, new
        endpoint id) asks for the conference and joins, as the page does after its delay."""
        await trio.sleep(self.rng.uniform(*self.sc.reload_delay))
        if not self._load_done.is_set():
            self.reloads += 1
            self._start_participant(slot.conference, reload_of=slot)

    async def _run_person(self, slot: Slot, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            await slot.person.run(task_status=task_status)
        finally:
            if slot.person.conference_failed and slot.state == "in-session" and not slot.wake.is_set():
                self.runner_errors.append(f"dropped from the conference: {slot.person.conference_failed}")
            slot.wake.set()

    def _fail(self, slot: Slot, reason: str) -> None:
        if slot.state == "failed":
            return
        if slot.state == "in-session":
            self.completed -= 1
        slot.state = "failed"
        slot.failure = reason
        self.failed += 1

    def _session_up(self, slot: Slot) -> None:
        now = trio.current_time()
        person = slot.person
        slot.state = "in-session"
        slot.session_at = now
        self.completed += 1
        initiate = person.first("session-initiate", "in")
        join = person.first("join", "out")
        if initiate is not None and join is not None:
            start = join.time
            two = slot.conference.two_members_at
            if two is not None and two <= initiate.time:
                start = max(start, two)
            slot.join_to_si = max(0.0, initiate.time - start)
            self.live.append((now, initiate.time - slot.started))

    # ----- churn and screen shares ---------------------------------------------------------------

    def _pick(self) -> Slot | None:
        candidates = [s for s in self.slots[-5000:] if s.state == "in-session" and not s.busy
                      and not s.wake.is_set()]
        return self.rng.choice(candidates) if candidates else None

    async def _churn(self) -> None:
        interval = 60.0 / self.sc.churn
        while not self._load_done.is_set():
            await trio.sleep(interval * self.rng.uniform(0.5, 1.5))
            slot = self._pick()
            if slot is None:
                continue
            slot.leave_now()
            self.churn_left += 1
            assert self._nursery is not None
            self._nursery.start_soon(self._rejoin, slot.conference)

    async def _rejoin(self, conference: StressConference) -> None:
        await trio.sleep(self.rng.uniform(0.5, 2.0))  # a page reload
        if not self._load_done.is_set():
            self.churn_rejoined += 1
            self._start_participant(conference)

    async def _mixed_in(self, per_minute: float, act: Callable[[Slot], Awaitable[None]]) -> None:
        """About `per_minute` times a minute, `act` on a random idle participant in session."""
        interval = 60.0 / per_minute
        assert self._nursery is not None
        while not self._load_done.is_set():
            await trio.sleep(interval * self.rng.uniform(0.5, 1.5))
            slot = self._pick()
            if slot is not None:
                slot.busy = True
                self._nursery.start_soon(act, slot)

    async def _toggle_share(self, slot: Slot) -> None:
        person = slot.person
        try:
            with trio.fail_after(SCRIPT_TIMEOUT):
                if slot.desktop is None:
                    slot.desktop = await person.add_source("desktop")
                else:
                    name, slot.desktop = slot.desktop, None
                    await person.remove_source(name)
            self.source_done += 1
        except SourceRejected as exc:
            self.source_failed += 1
            self.runner_errors.append(f"screen share refused: {exc.error.condition}")
        except trio.TooSlowError:
            self.source_failed += 1
            self.runner_errors.append(f"screen share toggle took over {SCRIPT_TIMEOUT:g} s")
        except (ParticipantError, XMPPError):
            pass  # left or lost its session meanwhile: not a focus problem
        finally:
            slot.busy = False

    async def _restart_ice(self, slot: Slot) -> None:
        """What lib-jitsi-meet does on an ICE failure with in-place restarts on: ask for one; on
        an error, or without new credentials in time, fall back to a session restart."""
        person = slot.person
        try:
            with trio.fail_after(SCRIPT_TIMEOUT + person.options.timeouts.ice_restart):
                asked = trio.current_time()
                result = await person.request_ice_restart()
                self.ice_outcomes[result.outcome] = self.ice_outcomes.get(result.outcome, 0) + 1
                if result.ok:
                    got = person.last("ice-restart-credentials")
                    if got is not None and got.time >= asked:
                        self.ice_latencies.append(got.time - asked)
                elif result.outcome in ("refused", "timeout"):
                    if result.error is not None and result.error.condition != "resource-constraint":
                        self.runner_errors.append(f"ICE restart refused: {result.error.condition}")
                    self.ice_fallbacks += 1
                    await person.request_restart(ice_failed=True)
        except trio.TooSlowError:
            self.runner_errors.append("ICE restart script took too long")
        except (ParticipantError, XMPPError):
            pass  # left or lost its session meanwhile: not a focus problem
        finally:
            slot.busy = False
    async def _mutes(self) -> None:
        """A moderator (auto-owner makes one per conference) mutes another member's audio; the
        target, told by the focus, mutes itself and later unmutes itself by a self-unmute IQ."""
        interval = 60.0 / self.sc.mutes_per_minute
        assert self._nursery is not None
        while not self._load_done.is_set():
            await trio.sleep(interval * self.rng.uniform(0.5, 1.5))
            pair = self._pick_mute()
            if pair is not None:
                for slot in pair:
                    slot.busy = True
                self._nursery.start_soon(self._mute, *pair)

    def _pick_mute(self) -> tuple[Slot, Slot] | None:
        moderators = [s for s in self.slots[-5000:] if s.state == "in-session" and not s.busy
                      and not s.wake.is_set() and s.person.is_moderator]
        self.rng.shuffle(moderators)
        for muter in moderators:
            targets = [s for s in muter.conference.members if s is not muter and s.state == "in-session"
                       and not s.busy and not s.wake.is_set()]
            if targets:
                return muter, self.rng.choice(targets)
        return None

    async def _mute(self, muter: Slot, target: Slot) -> None:
        nick = target.person.endpoint_id
        try:
            with trio.fail_after(SCRIPT_TIMEOUT):
                since = target.person.last_seq
                start = trio.current_time()
                await muter.person.request_mute(nick, "audio")
                self.mute_latency.append(trio.current_time() - start)
                told = await target.person.wait_for_event("mute-request", SCRIPT_TIMEOUT,
                                                          direction="in", since=since)
                self.mute_notified.append(told.time - start)
                start = trio.current_time()
                await target.person.request_mute(None, "audio", False)
                self.unmute_latency.append(trio.current_time() - start)
            self.mutes_done += 1
        except StanzaError as exc:
            self.mutes_refused += 1
            if exc.condition != "not-allowed":  # (a role change can make a refusal legitimate)
                self.runner_errors.append(f"mute refused: {exc.condition}")
        except (trio.TooSlowError, ParticipantTimeout):
            self.mutes_failed += 1
            self.runner_errors.append(f"mute and self-unmute took over {SCRIPT_TIMEOUT:g} s")
        except (ParticipantError, XMPPError):
            pass  # left or lost its session meanwhile: not a focus problem
        finally:
            muter.busy = target.busy = False

    # ----- faults -----------------------------------------------------------------------------------

    async def _inject_faults(self) -> None:
        for fault in sorted(self.sc.faults, key=lambda f: f.at):
            await trio.sleep_until(self.t0 + fault.at)
            if self._load_done.is_set():
                return
            now = trio.current_time()
            record = FaultRecord(str(fault), fault.kind, now, now - self.t0)
            self.faults.append(record)
            try:
                with trio.fail_after(HTTP_TIMEOUT * 2):
                    await self._apply(fault.kind, fault.target, record)
            except (OSError, RuntimeError, ValueError, KeyError, trio.TooSlowError) as exc:
                record.error = f"{type(exc).__name__}: {exc}"
                self.runner_errors.append(f"fault {fault} not applied: {record.error}")
            where = f" on {record.bridge}" if record.bridge else ""
            if "jibri" in record.detail:
                where = f" on {record.detail['jibri']} ({len(record.detail['sessions_on_it'])} session(s))"
            outcome = (f" -- FAILED: {record.error}" if record.error
                       else f": {len(record.affected)} participant(s) affected")
            self.progress.say(f"[{record.applied_at_s:6.1f}s] fault {fault}{where}{outcome}")

    async def _apply(self, kind: str, target: str | None, record: FaultRecord) -> None:
        if kind == "cut-focus-connection":
            proxy = self.target.focus_proxy
            if proxy is None:
                raise RuntimeError("cut-focus-connection needs --local (the focus behind our proxy)")
            record.affected = self._in_session_sids()
            record.detail["connections_cut"] = proxy.cut()
            return
        if kind == "kill-focus":
            shard = self._shard(target)
            self._shard_snapshots[shard.number] = await self._shard_entry(shard)
            rooms = await self._rooms_of(shard)
            record.detail["shard"] = shard.number
            in_session = self._in_session_sids()
            record.affected = {ep: sid for ep, sid in in_session.items()
                               if self.by_endpoint[ep].conference.room in rooms}
            record.bystanders = {ep: sid for ep, sid in in_session.items() if ep not in record.affected}
            record.detail["rooms_on_shard"] = len(rooms)
            shard.kill_focus()
            return
        if kind == "kill-jibri":
            if self.recordings is None:
                raise RuntimeError("kill-jibri needs recordings in the scenario")
            await self.recordings.kill(target, record)
            return
        if kind == "drop-focus-connection":
            end = self.target.end_focus_session
            if end is None:
                raise RuntimeError("drop-focus-connection needs --local (the focus's account)")
            record.affected = self._in_session_sids()
            await end()
            return
        if kind == "restart-focus":
            restart = self.target.restart_focus
            if restart is None:
                raise RuntimeError("restart-focus needs --local (the focus as our child process)")
            record.affected = self._in_session_sids()
            record.detail["served_again_after_ms"] = round(await restart() * 1000, 1)
            return
        api = self.target.bridge_api
        if api is None:
            raise RuntimeError("bridge faults need our simulated bridges (--local, or --bridges and "
                               "--brewery)")
        host, port = api
        nick = target or await self._busiest_bridge(host, port)
        record.bridge = nick
        state = await get_json(host, port, f"/bridges/{nick}/state")
        on_bridge = {ep for conf in state["conferences"].values() for ep in conf["endpoints"]}
        record.affected = {ep: sid for ep, sid in self._in_session_sids().items() if ep in on_bridge}
        if kind == "kill-bridge":
            # Dead: answers nothing any more, publishes nothing, and is gone from the brewery.
            await post_json(host, port, f"/bridges/{nick}/faults",
                            {"silent": ["all"], "presence_frozen": True})
            await post_json(host, port, f"/bridges/{nick}/leave", {})
            record.expects_reinvite = True
        elif kind == "unhealthy-bridge":
            await post_json(host, port, f"/bridges/{nick}/health", {"healthy": False})
            record.expects_reinvite = True
        elif kind == "graceful-bridge":
            await post_json(host, port, f"/bridges/{nick}/colibri/shutdown", {"graceful-shutdown": True})
        else:  # pragma: no cover - the scenario parser allows no other kind
            raise ValueError(kind)

    def _shard(self, target: str | None) -> Shard:
        shards = self.target.shards
        if not shards:
            raise RuntimeError("kill-focus needs --local (the focus as our child process)")
        wanted = (target or "1").removeprefix("shard")
        for shard in shards:
            if str(shard.number) == wanted:
                return shard
        raise ValueError(f"no shard {target!r} (there are {len(shards)})")

    async def _rooms_of(self, shard: Shard) -> set[str]:
        """The rooms that shard's focus has a conference for (its /debug/conferences)."""
        rooms = await get_json(*shard.focus_rest, "/debug/conferences")
        return {str(room) for room in rooms}

    async def _shard_entry(self, shard: Shard) -> dict[str, Any]:
        """What one shard's focus serves now: our rooms, and its endpoints on each bridge."""
        ours = {c.room for c in self.conferences}
        with trio.fail_after(HTTP_TIMEOUT):
            rooms = await self._rooms_of(shard) & ours
            metrics = await get_json(*shard.focus_rest, "/metrics", headers={"Accept": "application/json"})
        prefix = 'jitsi_jicofo_bridge_endpoints{jvb="'
        return {"shard": shard.number, "rooms": sorted(rooms),
                "bridge_endpoints": {name[len(prefix):-2]: int(value)
                                     for name, value in sorted(metrics.items())
                                     if name.startswith(prefix) and value}}

    async def _shards_report(self) -> list[dict[str, Any]] | None:
        """At the end of the load, for each shard: the rooms its focus serves and the bridges it
        has endpoints on (for a shard whose focus was killed: as they were just before), and how
        many of our rooms more than one shard served (should be none)."""
        if len(self.target.shards) < 2:
            return None
        out: list[dict[str, Any]] = []
        for shard in self.target.shards:
            alive = shard.focus_process.returncode is None
            try:
                entry = await self._shard_entry(shard) if alive else dict(self._shard_snapshots[shard.number])
            except (OSError, RuntimeError, ValueError, KeyError, trio.TooSlowError) as exc:
                entry = {"shard": shard.number, "error": f"{type(exc).__name__}: {exc}"}
            entry["focus_alive"] = alive
            out.append(entry)
        seen: dict[str, int] = {}
        for entry in out:
            for room in entry.get("rooms", ()):
                seen[room] = seen.get(room, 0) + 1
        shared = sum(1 for n in seen.values() if n > 1)
        for entry in out:
            entry["rooms"] = len(entry.get("rooms", ()))
            entry["rooms_also_on_another_shard"] = shared
        return out

    async def _orphaned_bridge_conferences(self) -> dict[str, str] | None:
        """Conferences on our simulated bridges that no live participant is in (meeting id ->
        bridge): what the focus leaked. Those still orphaned after a grace period (expires in
        flight) count. None without access to the bridges."""
        api = self.target.bridge_api
        if api is None:
            return None
        orphans: dict[str, str] = {}
        try:
            with trio.fail_after(HTTP_TIMEOUT * 2):
                for _ in range(LEAK_GRACE_CHECKS):
                    live = {s.person.endpoint_id for s in self.slots
                            if s.state == "in-session" and s.left_at is None}
                    orphans = {}
                    for bridge in await get_json(*api, "/sim/bridges"):
                        state = await get_json(*api, f"/bridges/{bridge['nickname']}/state")
                        for meeting_id, conference in state["conferences"].items():
                            if not live & set(conference["endpoints"]):
                                orphans[meeting_id] = bridge["nickname"]
                    if not orphans:
                        break
                    await trio.sleep(1.0)
        except (OSError, RuntimeError, ValueError, KeyError, trio.TooSlowError) as exc:
            self.runner_errors.append(f"bridge state not read: {type(exc).__name__}: {exc}")
            return None
        return orphans

    def _in_session_sids(self) -> dict[str, str | None]:
        return {s.person.endpoint_id: (s.person.session.sid if s.person.session else None)
                for s in self.slots if s.state == "in-session" and s.person.endpoint_id}

    async def _busiest_bridge(self, host: str, port: int) -> str:
        bridges = await get_json(host, port, "/sim/bridges")
        best, most = None, -1
        for bridge in bridges:
            if not bridge["in_brewery"]:
                continue
            state = await get_json(host, port, f"/bridges/{bridge['nickname']}/state")
            count = sum(len(c["endpoints"]) for c in state["conferences"].values())
            if count > most:
                best, most = bridge["nickname"], count
        if best is None:
            raise RuntimeError("no simulated bridge left in the brewery")
        return best

    # ----- monitoring -----------------------------------------------------------------------------

    def errors_so_far(self) -> int:
        return sum(s.person.error_count for s in self.slots) + self.failed + len(self.runner_errors)

    def live_p99(self) -> float | None:
        now = trio.current_time()
        while self.live and self.live[0][0] < now - LIVE_WINDOW:
            self.live.popleft()
        # Joins still waiting count with their age so far: a stalled focus shows up too.
        waiting = [now - s.started for s in self.slots[-2000:] if s.state == "joining"]
        samples = sorted([v for _, v in self.live] + [w for w in waiting if w > 1.0])
        return percentile(samples, 99) if len(samples) >= 5 else None

    async def _monitor(self) -> None:
        last_completed, last_time = 0, self.t0
        while True:
            await trio.sleep(1.0)
            for watch in self.watches:
                watch.sample()
            now = trio.current_time()
            in_session = sum(1 for s in self.slots if s.state == "in-session")
            joining = sum(1 for s in self.slots if s.state == "joining")
            active = sum(1 for c in self.conferences if c.members)
            self.peak_participants = max(self.peak_participants, in_session)
            self.peak_conferences = max(self.peak_conferences, active)
            rate = (self.completed - last_completed) / max(now - last_time, 1e-6)
            last_completed, last_time = self.completed, now
            errors = self.errors_so_far()
            p99 = self.live_p99()
            elapsed = now - self.t0
            self.progress.update(elapsed, (
                f"[{elapsed:6.1f}s] conferences {active}/{len(self.conferences)} | in session {in_session}"
                f" (+{joining} joining) | joins {self.completed}/{len(self.slots)} failed {self.failed}"
                f" | errors {errors} | {rate:5.1f} joins/s | p99 join "
                f"{'-' if p99 is None else f'{p99 * 1000:.0f} ms'}"
            ))
            if self.sc.stop_errors is not None and errors >= self.sc.stop_errors:
                self._stop(f"{errors} errors (limit {self.sc.stop_errors}) at {in_session} participants")
            elif self.sc.stop_p99 is not None and p99 is not None and p99 > self.sc.stop_p99:
                self._stop(f"p99 join time {p99 * 1000:.0f} ms over {self.sc.stop_p99 * 1000:.0f} ms "
                           f"at {in_session} participants")

    async def _get_focus_stats(self) -> dict[str, Any] | None:
        if self.target.focus_rest is None:
            return None
        try:
            with trio.fail_after(HTTP_TIMEOUT):
                stats = await get_json(*self.target.focus_rest, "/stats")
        except (OSError, RuntimeError, ValueError, trio.TooSlowError):
            return None
        return stats if isinstance(stats, dict) else None

    async def _fetch_focus_stats(self) -> None:
        stats = await self._get_focus_stats()
        if stats is None:
            return
        keys = ("conferences", "participants", "largest_conference", "total_conferences_created",
                "total_participants", "bridge_failures", "participant_notifications", "bridge_selector",
                "conference_requests", "conference_requests_errors", "xmpp_traffic")
        self.focus_stats = {k: stats[k] for k in keys if k in stats}

    # ----- the report -------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        conf_ready: list[float] = []
        for slot in self.slots:
            request = slot.person.first("conference-request", "out")
            ready = slot.person.first("conference-ready", "in")
            if request is not None and ready is not None and ready.time >= request.time:
                conf_ready.append(ready.time - request.time)
        accept_seen, share_seen = self._source_latencies()
        whole = [s.person.first("session-initiate", "in").time - s.started  # type: ignore[union-attr]
                 for s in self.slots if s.join_to_si is not None]
        participant_errors = [e for s in self.slots for e in s.person.errors]
        join_failures = [f"join failed: {s.failure}" for s in self.slots if s.state == "failed"]
        joins = len(self.slots)
        elapsed = self.load_end - self.t0
        peak = self.peak_participants
        processes = {w.name: w.to_json(self.completed, peak) for w in self.watches}
        return {
            "scenario": self.sc.to_json(),
            "target": self.target.description,
            "started_at": self.wall_start,
            "elapsed_s": round(elapsed, 2),
            "stopped_early": self.stop_reason,
            "joins": {"attempted": joins, "completed": self.completed, "failed": self.failed,
                      "pending": sum(1 for s in self.slots if s.state == "joining"
                                     or (s.state == "left" and s.session_at is None and s.failure is None))},
            "join_rate_achieved": self._join_rate(),
            "peak_participants": peak,
            "peak_conferences": self.peak_conferences,
            "churn": {"left": self.churn_left, "rejoined": self.churn_rejoined},
            "reloads": self.reloads,
            "bridge_leaks": self.bridge_leaks,
            "source_changes": {"done": self.source_done, "failed": self.source_failed},
            "ice_restarts": {"requested": sum(self.ice_outcomes.values()),
                             "restarted": self.ice_outcomes["restarted"],
                             "refused": self.ice_outcomes["refused"],
                             "timeout": self.ice_outcomes["timeout"],
                             "session_closed": self.ice_outcomes["session-closed"],
                             "fallback": self.ice_fallbacks},
            "mutes": {"done": self.mutes_done, "refused": self.mutes_refused, "failed": self.mutes_failed},
            "latency": {
                "conference_iq_to_ready": summarize(conf_ready),
                "join_to_session_initiate": summarize(s.join_to_si for s in self.slots
                                                      if s.join_to_si is not None),
                "start_to_session_initiate": summarize(whole),
                "session_accept_to_sources_seen": summarize(accept_seen),
                "source_add_to_seen": summarize(share_seen),
                "ice_restart_to_new_credentials": summarize(self.ice_latencies),
                "mute_to_result": summarize(self.mute_latency),
                "mute_to_target_notified": summarize(self.mute_notified),
                "self_unmute_to_result": summarize(self.unmute_latency),
            },
            "faults": [self._fault_report(f) for f in self.faults],
            "errors": {
                "total": len(participant_errors) + len(join_failures) + len(self.runner_errors),
                "participant": len(participant_errors),
                "join_failures": len(join_failures),
                "runner": len(self.runner_errors),
                "breakdown": breakdown(participant_errors + join_failures + self.runner_errors),
            },
            "processes": processes,
            "focus_stats": self.focus_stats,
            "focus_traffic": self._focus_traffic(),
            "shards": self.shards,
            **({"recordings": self.recordings.report(self.t0)} if self.recordings is not None else {}),
            **({"dials": self.dials.report()} if self.dials is not None else {}),
        }

    def _focus_traffic(self) -> dict[str, Any] | None:
        """What the focus sent and received over XMPP during the load phase, in total and per
        completed join (from its /stats before and after; None when it has no REST address)."""
        end = (self.focus_stats or {}).get("xmpp_traffic")
        start = self.focus_traffic_start
        if not isinstance(end, dict) or not isinstance(start, dict):
            return None
        totals = {key: int(end.get(key, 0)) - int(start.get(key, 0)) for key in end}
        if len(self.target.shards) > 1:  # the first shard's focus only: no per-join figure
            return {"total": totals, "per_join": None, "shard": 1}
        per_join = ({key: round(value / self.completed, 1) for key, value in totals.items()}
                    if self.completed else None)
        return {"total": totals, "per_join": per_join}

    def _join_rate(self) -> float:
        """Completed joins per second, over the span from the start to the last one."""
        times = [s.session_at for s in self.slots if s.session_at is not None]
        if not times:
            return 0.0
        span = max(times) - self.t0
        return round(len(times) / span, 2) if span > 0 else 0.0

    def _fault_report(self, record: FaultRecord) -> dict[str, Any]:
        latencies: list[float] = []
        not_reinvited: list[str] = []
        left_first = 0
        for endpoint, old_sid in record.affected.items():
            slot = self.by_endpoint.get(endpoint)
            if slot is None:
                continue
            when = next((e.time for e in slot.person.events
                         if e.kind == "session-initiate" and e.direction == "in"
                         and e.time >= record.applied_at and e.sid != old_sid), None)
            if when is not None:
                latencies.append(when - record.applied_at)
            elif slot.left_at is not None and slot.left_at < self.load_end:
                left_first += 1
            else:
                not_reinvited.append(endpoint)
        out: dict[str, Any] = {
            "fault": record.fault,
            "kind": record.kind,
            "applied_at_s": round(record.applied_at_s, 2),
            "bridge": record.bridge,
            "affected": len(record.affected),
            "expects_reinvite": record.expects_reinvite,
            "reinvited": len(latencies),
            "not_reinvited": len(not_reinvited),
            "left_before_reinvite": left_first,
            "reinvite": summarize(latencies),
            "first_reinvite_ms": round(min(latencies) * 1000, 1) if latencies else None,
            "reinvite_spread_ms": round((max(latencies) - min(latencies)) * 1000, 1) if latencies else None,
            "error": record.error,
            **record.detail,
        }
        if not_reinvited:
            out["not_reinvited_endpoints"] = not_reinvited[:20]
        if record.kind in FOCUS_FAULTS:
            out["reload"] = self._reload_report(record)
        if record.kind == "kill-focus":
            out["bystanders"] = len(record.bystanders)
            out["bystanders_noticed"] = sum(1 for ep in record.bystanders if self._noticed(ep, record))
        if record.kind == "restart-focus":
            out["noticed"] = self._noticed_report(record)
        return out

    @staticmethod
    def _lost_session(person: SimulatedParticipant, record: FaultRecord, old_sid: str | None) -> bool:
        """The focus ended or replaced the participant's Jingle session after the fault."""
        return any(e.time >= record.applied_at and e.direction == "in" and (
            e.kind == "session-terminate" or (e.kind == "session-initiate" and e.sid != old_sid))
            for e in person.events)

    def _noticed(self, endpoint: str, record: FaultRecord) -> bool:
        """kill-focus, for a participant of another shard: whether it saw anything (the focus
        leaving its room, its session ended or replaced)."""
        slot = self.by_endpoint.get(endpoint)
        if slot is None:
            return False
        if slot.focus_left_at is not None and slot.focus_left_at >= record.applied_at:
            return True
        return self._lost_session(slot.person, record, record.bystanders.get(endpoint))

    def _noticed_report(self, record: FaultRecord) -> dict[str, Any]:
        """restart-focus: of the participants in session at the kill, those that noticed: saw the
        focus leave, lost their Jingle session (a terminate or a new offer), or had an IQ refused."""
        left = lost = refused = 0
        noticed: list[str] = []
        for endpoint, old_sid in record.affected.items():
            slot = self.by_endpoint.get(endpoint)
            if slot is None:
                continue
            person = slot.person
            saw_leave = any(e.kind == "focus-left" and e.time >= record.applied_at
                            for e in person.events)
            lost_session = self._lost_session(person, record, old_sid)
            had_refusal = any(e.kind == "error-answer" and e.time >= record.applied_at
                              for e in person.events)
            left += saw_leave
            lost += lost_session
            refused += had_refusal
            if saw_leave or lost_session or had_refusal:
                noticed.append(endpoint)
        return {"participants": len(record.affected), "noticed": len(noticed),
                "saw_focus_leave": left, "lost_session": lost, "iq_refused": refused,
                "noticed_endpoints": noticed[:20]}

    def _reload_report(self, record: FaultRecord) -> dict[str, Any]:
        """For the participants in session at the fault: how many pages reloaded, how many are
        back in session (their latest page load), and when (from the fault)."""
        reloaded = back = 0
        back_after: list[float] = []
        for endpoint in record.affected:
            slot = self.by_endpoint.get(endpoint)
            if slot is None:
                continue
            if slot.focus_left_at is None:
                back += 1  # never lost its session (e.g. it resumed)
                continue
            reloaded += 1
            while slot.reloaded_as is not None:
                slot = slot.reloaded_as
            if slot.session_at is not None and slot.reload_of is not None:
                back += 1
                back_after.append(slot.session_at - record.applied_at)
        return {
            "reloaded": reloaded,
            "back_in_session": back,
            "not_back": len(record.affected) - back,
            "back_after": summarize(back_after),
            "last_back_ms": round(max(back_after) * 1000, 1) if back_after else None,
        }

    def _source_latencies(self) -> tuple[list[float], list[float]]:
        """session-accept -> the others receive the new sources (by source-add), and the same for
        a later source-add (screen share). Only receivers whose session began before the change
        count: later ones get the sources in their offer."""
        accept_seen: list[float] = []
        share_seen: list[float] = []
        by_conference: dict[int, list[Slot]] = {}
        for slot in self.slots:
            by_conference.setdefault(slot.conference.index, []).append(slot)
        for members in by_conference.values():
            received = {id(s): _received(s) for s in members}
            initiates = {id(s): [e.time for e in s.person.events if e.kind == "session-initiate"
                                 and e.direction == "in"] for s in members}
            for sender in members:
                endpoint = sender.person.endpoint_id
                if endpoint is None:
                    continue
                for event in sender.person.events:
                    if event.direction != "out" or event.kind not in ("session-accept", "source-add"):
                        continue
                    bucket = accept_seen if event.kind == "session-accept" else share_seen
                    for other in members:
                        if other is sender:
                            continue
                        latency = _first_after(received[id(other)], initiates[id(other)], endpoint,
                                               event.time)
                        if latency is not None:
                            bucket.append(latency)
        return accept_seen, share_seen


def _received(slot: Slot) -> list[tuple[float, set[str]]]:
    """(time, owners) of every source-add the slot's participant applied."""
    out = []
    for event in slot.person.events:
        if event.kind == "remote-sources" and event.detail.startswith("+source-add"):
            owners = {part.split(":", 1)[0].strip() for part in event.detail[len("+source-add"):].split(",")
                      if ":" in part}
            out.append((event.time, owners))
    return out


def _first_after(received: list[tuple[float, set[str]]], initiates: list[float], owner: str,
                 since: float) -> float | None:
    # The receiver must have had a session before the change and kept it until the sources came.
    before = [t for t in initiates if t <= since]
    if not before:
        return None
    for when, owners in received:
        if when >= since and owner in owners:
            if any(since < t <= when for t in initiates):
                return None
            return when - since
    return None

