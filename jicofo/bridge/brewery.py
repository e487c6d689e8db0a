"""The bridge brewery: bridges found in a MUC room, and their health checks (docs/jicofo.md #45-#46, #56-#59).

    brewery = Brewery(client, JID.parse("jvbbrewery@internal.auth.example.com"), config.bridge)
    brewery.add_listener(on_bridge_event)      # BridgeAdded / BridgeRemoved / BridgeFailed / ...
    await nursery.start(brewery.run)           # returns once the room is joined

Discovery. The focus joins the brewery room. Every occupant whose presence carries
`<stats xmlns='http://jitsi.org/protocol/colibri'>` is a bridge, keyed by its occupant JID; other
occupants (other focuses, a bridge that has only sent its bare join) are ignored. Each later
presence updates the bridge's stats; an occupant that leaves (or is kicked) is removed. A bridge's
`shutting_down` turning true fires `BridgeShuttingDown` (every conference moves its participants).

Joining. `run` joins with the reply timeout as deadline and retries on failure after that same
timeout, doubling up to `JOIN_RETRY_MAX` seconds (one warning on attempts 1, 2, 4, 8, ...).
`task_status.started()` is called after the first successful join, so `nursery.start(brewery.run)`
waits for the room; use `start_soon` not to wait.

Losing the room (kicked, room destroyed, or a new XMPP session that could not resume). Upstream
drops every bridge then (and every conference moves its participants). Here the bridges are kept
while the focus rejoins, and once back in the room only those that are no longer there (or no
longer send stats) are removed: a focus reconnect does not move participants off healthy bridges.
Occupants leaving while the focus is out of the room are settled by that comparison too. If the
rejoin takes longer than `rejoin_grace` (default: three reply timeouts), every bridge is removed
(`BridgeRemoved`), as upstream does at once, and the focus keeps trying to rejoin.

Health checks (JvbDoctor), one task per bridge in the brewery's nursery, started when the bridge
is added and cancelled when it is removed. Every `health-checks.interval` (first one an interval
after the bridge appears) an IQ-get `<healthcheck xmlns='http://jitsi.org/protocol/healthcheck'/>`
goes to the bridge's occupant JID with the reply timeout as deadline:

- result: passed, `mark_healthy` (operational again once `failure-reset-threshold` has passed
  since the last failure; `BridgeRecovered` when that happens);
- error internal-server-error / service-unavailable: failed, `mark_failed` and `BridgeFailed` (its
  participants must move), once per failure episode;
- timeout: one retry after `retry-delay`; a second timeout makes the bridge non-operational without
  any event (nobody is moved: the bridge may only be cut off from us); `health(bridge)` tells
  `HealthState.TIMED_OUT` from `FAILED`;
- any other error is only logged (once per distinct condition).

Silence (ours, issue 13; `health-checks.silence-timeout`, silence.py): a bridge that answers
nothing at all, neither a health check nor any conference's Colibri2 request, for that long after
one of them timed out is failed (`BridgeFailed`: every conference moves off it), as if a health
check had been answered with an error. Any answer resets the clock, so a slow bridge, or one whose
health checks alone time out, is never failed this way. A failed bridge whose checks then time
out stays FAILED (no second failure episode). The watch runs with health checks off too.

No check is sent, and a timeout does not count, while our own connection is down or we are out of
the room: that says nothing about the bridge. With `use-presence` no IQ is sent: each interval, no
stats presence for `presence-timeout` counts as timed out, `healthy=false` as failed, otherwise
passed. With `health-checks.enabled` false (or an interval ≤ 0) there are no checks at all (and,
as upstream, a bridge that `mark_failed` made non-operational is never marked healthy again).

Listeners are synchronous callbacks, called in registration order from the brewery's task; they
must not block (hand the event to an inbox). An exception in one is logged and does not stop the
others. Leaving `run` (cancellation) leaves the room (shielded, bounded) and stops the health
checks; it emits no events.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from jicofo.config.model import BridgeConfig
from jicofo.xmlns.colibri_stats import NS_COLIBRI, BridgeStats
from jicofo.xmpp.client import BaseXMPPConnection
from jicofo.xmpp.containment import contain_stanza
from jicofo.xmpp.errors import IQTimeout, NotConnected, StanzaError, XMPPError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import (
    MucRoom,
    Occupant,
    OccupantChanged,
    OccupantJoined,
    OccupantLeft,
    Rejoined,
    SelfLeft,
)
from jicofo.xmpp.xml import element

from .model import Bridge
from .silence import ask, watch_silence

log = logging.getLogger(__name__)

NS_HEALTHCHECK = "http://jitsi.org/protocol/healthcheck"

JOIN_RETRY_MAX = 60.0
FAILURE_CONDITIONS = frozenset({"internal-server-error", "service-unavailable"})


# ----- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BridgeAdded:
    bridge: Bridge


@dataclass(frozen=True)
class BridgeRemoved:
    """The bridge left the brewery (or was gone when the focus got back into the room)."""

    bridge: Bridge


@dataclass(frozen=True)
class BridgeShuttingDown:
    bridge: Bridge


@dataclass(frozen=True)
class BridgeFailed:
    """Hard failure (health check error, or `mark_failed(move_participants=True)`): every
    conference must move its participants off this bridge."""

    bridge: Bridge
    reason: str


@dataclass(frozen=True)
class BridgeRecovered:
    """The bridge is operational again after having been marked failed or timed out."""

    bridge: Bridge


BridgeEvent = BridgeAdded | BridgeRemoved | BridgeShuttingDown | BridgeFailed | BridgeRecovered
BridgeListener = Callable[[BridgeEvent], None]


class HealthState(enum.Enum):
    OK = "ok"
    TIMED_OUT = "timed-out"  # non-operational, nobody moved
    FAILED = "failed"  # non-operational, participants moved


@dataclass
class _Watch:
    scope: trio.CancelScope | None = None  # the health-check task
    state: HealthState = HealthState.OK
    operational: bool = True  # as last reported (BridgeRecovered fires when this turns true)
    last_error: str | None = None


# ----- the brewery -------------------------------------------------------------------------------


class Brewery:
    def __init__(
        self,
        client: BaseXMPPConnection,
        brewery_jid: JID,
        config: BridgeConfig,
        *,
        nickname: str = "focus",
        clock: Callable[[], float] = trio.current_time,
        request_timeout: float | None = None,
        rejoin_grace: float | None = None,
    ) -> None:
        self.client = client
        self.jid = brewery_jid.bare
        self.config = config
        self.nickname = nickname
        self.clock = clock
        self.request_timeout = request_timeout if request_timeout is not None else client.timeouts.request
        self.rejoin_grace = rejoin_grace if rejoin_grace is not None else 3 * self.request_timeout
        self.bridges: dict[JID, Bridge] = {}
        self._listeners: list[BridgeListener] = []
        self._watches: dict[Bridge, _Watch] = {}
        self._nursery: trio.Nursery | None = None
        self._room: MucRoom | None = None
        self._joined_now = trio.Event()  # set (and replaced) at each successful join
        self._adopted: set[Bridge] = set()  # from the restart store, no presence seen yet

    # ----- public API ----------------------------------------------------------------------------

    @property
    def joined(self) -> bool:
        return self._room is not None and self._room.joined

    async def wait_joined(self) -> None:
        """Until the focus is in the brewery room. Out of it (a new XMPP session is rejoining),
        the server refuses IQs to the bridges' occupant JIDs, Colibri2 expires included."""
        while not self.joined:
            await self._joined_now.wait()

    def adopt(self, jid: JID) -> Bridge:
        """A bridge a conference restored from the restart store uses, known before its
        presence: kept if it is in the brewery when the focus is back in, removed otherwise."""
        bridge = self.bridges.get(jid)
        if bridge is None:
            bridge = self.bridges[jid] = Bridge(jid, self.config)
            self._watches[bridge] = _Watch()
            self._adopted.add(bridge)
        return bridge

    def add_listener(self, callback: BridgeListener) -> None:
        self._listeners.append(callback)

    def remove_listener(self, callback: BridgeListener) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def operational_bridges(self) -> list[Bridge]:
        """Bridges operational now (including those in graceful shutdown or shutting down)."""
        now = self.clock()
        return [b for b in self.bridges.values() if b.is_operational(now)]

    def health(self, bridge: Bridge) -> HealthState:
        watch = self._watches.get(bridge)
        return watch.state if watch is not None else HealthState.OK

    def mark_failed(self, bridge: Bridge, reason: str, move_participants: bool) -> None:
        """For the Colibri layer: the bridge failed a request (timeout, unexpected error). It
        becomes non-operational; with `move_participants`, `BridgeFailed` tells every conference
        to move off it (once per failure episode)."""
        watch = self._watches.get(bridge)
        if watch is None or bridge.removed:
            return
        bridge.mark_failed(self.clock())
        if move_participants:
            self._verdict(bridge, HealthState.FAILED, reason)
        else:
            if watch.operational:
                log.warning("bridge %s: not operational: %s", bridge.nickname, reason)
            watch.operational = False

    def to_json(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "brewery": str(self.jid),
            "joined": self.joined,
            "bridges": {
                b.nickname: {**b.to_json(now), "health": self.health(b).value,
                             "silent-for": round(b.silence.silent_for(now), 3)}
                for b in self.bridges.values()
            },
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        room = MucRoom(self.client, self.jid, self.nickname)
        self._room = room
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._join(room)
                if self._adopted:
                    self._settle(room)
                task_status.started()
                await self._consume(room)
                nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True), trio.move_on_after(self.client.timeouts.close):
                try:
                    await room.leave()
                except XMPPError as exc:
                    log.info("brewery %s: leaving: %s", self.jid, exc)

    # ----- the room ------------------------------------------------------------------------------

    async def _join(self, room: MucRoom) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await room.join(timeout=self.request_timeout)
            except XMPPError as exc:
                delay = min(self.request_timeout * 2 ** min(attempt - 1, 10),
                            max(JOIN_RETRY_MAX, self.request_timeout))
                level = logging.WARNING if attempt & (attempt - 1) == 0 else logging.DEBUG
                log.log(level, "brewery %s: join failed (attempt %d): %s; retrying in %.1f s",
                        self.jid, attempt, exc, delay)
                await trio.sleep(delay)
                continue
            if result.created:
                try:
                    await room.configure()
                except XMPPError as exc:
                    log.warning("brewery %s: created but could not configure it: %s", self.jid, exc)
            log.info("brewery %s: joined as %s", self.jid, room.nick)
            self._joined_now.set()
            self._joined_now = trio.Event()
            return

    async def _consume(self, room: MucRoom) -> None:
        async for event in room.events:
            if isinstance(event, OccupantJoined | OccupantChanged):
                # A bridge presence that cannot be read is ignored (containment.py).
                with contain_stanza(event.occupant.presence, "bridge presence"):
                    self._on_presence(event.occupant)
            elif isinstance(event, OccupantLeft):
                # Out of the room, leaves are settled by comparing once back in.
                if room.joined:
                    bridge = self.bridges.get(self.jid.with_resource(event.occupant.nick))
                    if bridge is not None:
                        self._remove(bridge, "kicked" if event.kicked else "left the brewery")
            elif isinstance(event, SelfLeft):
                log.warning("brewery %s: out of the room (%s); rejoining, keeping %d bridges meanwhile",
                            self.jid, event.reason, len(self.bridges))
                # A kicked room keeps its occupant list; only fresh presences must count.
                room.occupants.clear()
                with trio.move_on_after(self.rejoin_grace) as grace:
                    await self._join(room)
                if grace.cancelled_caught:
                    for bridge in list(self.bridges.values()):
                        self._remove(bridge, "the focus could not get back into the brewery")
                    await self._join(room)
                self._settle(room)
            elif isinstance(event, Rejoined):
                self._settle(room)

    def _settle(self, room: MucRoom) -> None:
        """Back in the room: remove the bridges that are no longer in it. The presences that
        came with the join are queued as events and update the others."""
        for bridge in list(self.bridges.values()):
            occupant = room.occupants.get(bridge.nickname)
            if occupant is None or occupant.presence.find(f"{{{NS_COLIBRI}}}stats") is None:
                self._remove(bridge, "gone while the focus was out of the room")

    def _on_presence(self, occupant: Occupant) -> None:
        stats_el = occupant.presence.find(f"{{{NS_COLIBRI}}}stats")
        if stats_el is None:
            return
        stats = BridgeStats.from_element(stats_el)
        now = self.clock()
        jid = self.jid.with_resource(occupant.nick)
        bridge = self.bridges.get(jid)
        if bridge is not None and bridge in self._adopted:
            # Restored: now with its presence, it is watched and announced like a new one.
            self._adopted.discard(bridge)
            del self.bridges[jid]
            self._watches.pop(bridge, None)
            self._add(jid, stats, now, bridge)
            return
        if bridge is None:
            self._add(jid, stats, now)
            return
        was_shutting_down = bridge.shutting_down
        changed = bridge.update_stats(stats, now)
        if changed:
            log.info("bridge %s: %s", bridge.nickname,
                     ", ".join(f"{name}={getattr(bridge, name)}" for name in sorted(changed)))
        if bridge.shutting_down and not was_shutting_down:
            log.info("bridge %s: shutting down", bridge.nickname)
            self._emit(BridgeShuttingDown(bridge))

    def _add(self, jid: JID, stats: BridgeStats, now: float, bridge: Bridge | None = None) -> None:
        bridge = bridge if bridge is not None else Bridge(jid, self.config)
        bridge.update_stats(stats, now)
        self.bridges[jid] = bridge
        watch = self._watches[bridge] = _Watch()
        log.info("bridge %s added: version=%s region=%s relay=%s stress=%.3f drain=%s "
                 "graceful_shutdown=%s shutting_down=%s", bridge.nickname, bridge.full_version,
                 bridge.region, bridge.relay_id, bridge.stress, bridge.drain, bridge.graceful_shutdown,
                 bridge.shutting_down)
        checks = self.config.health_checks
        health = checks.enabled and checks.interval > 0
        if (health or checks.silence_timeout > 0) and self._nursery is not None:
            watch.scope = trio.CancelScope()
            self._nursery.start_soon(self._watch_bridge, bridge, watch.scope, health)
        self._emit(BridgeAdded(bridge))

    def _remove(self, bridge: Bridge, reason: str) -> None:
        if self.bridges.get(bridge.jid) is not bridge:
            return
        del self.bridges[bridge.jid]
        self._adopted.discard(bridge)
        bridge.removed = True
        watch = self._watches.pop(bridge, None)
        if watch is not None and watch.scope is not None:
            watch.scope.cancel()
        expected = bridge.graceful_shutdown or bridge.shutting_down
        log.log(logging.INFO if expected else logging.WARNING, "bridge %s removed (%s)%s",
                bridge.nickname, reason, "" if expected else ": lost without a shutdown announcement")
        self._emit(BridgeRemoved(bridge))

    def _emit(self, event: BridgeEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("brewery listener %r failed on %s", listener, type(event).__name__)

    # ----- health --------------------------------------------------------------------------------

    async def _watch_bridge(self, bridge: Bridge, scope: trio.CancelScope, health: bool) -> None:
        """The bridge's health checks and its silence watch, until it is removed."""
        silence_timeout = self.config.health_checks.silence_timeout
        with scope:
            async with trio.open_nursery() as nursery:
                if health:
                    nursery.start_soon(self._health_loop, bridge)
                if silence_timeout > 0:
                    nursery.start_soon(functools.partial(
                        watch_silence, bridge, silence_timeout,
                        lambda seconds: self._silent(bridge, seconds), can_judge=self._can_check))

    def _silent(self, bridge: Bridge, seconds: float) -> None:
        self._verdict(bridge, HealthState.FAILED,
                      f"answered nothing (Colibri2 or health check) for {seconds:.1f} s")

    async def _health_loop(self, bridge: Bridge) -> None:
        checks = self.config.health_checks
        while True:
            await trio.sleep(checks.interval)
            if not self._can_check():
                continue
            if checks.use_presence:
                self._presence_verdict(bridge)
            else:
                await self._check(bridge)

    def _presence_verdict(self, bridge: Bridge) -> None:
        now = self.clock()
        timeout = self.config.health_checks.presence_timeout
        if bridge.last_presence is None or now - bridge.last_presence > timeout:
            self._verdict(bridge, HealthState.TIMED_OUT, f"no presence for {timeout:g} s")
        elif not bridge.healthy:
            self._verdict(bridge, HealthState.FAILED, "presence says unhealthy")
        else:
            self._verdict(bridge, HealthState.OK)

    def _can_check(self) -> bool:
        return self.client.connected and self.joined

    async def _check(self, bridge: Bridge) -> None:
        for attempt in (1, 2):
            if not self._can_check():
                return
            iq = self.client.iq("get", bridge.jid, element(f"{{{NS_HEALTHCHECK}}}healthcheck"))
            try:
                await ask(self.client, bridge, iq, timeout=self.request_timeout)
            except IQTimeout:
                if not self._can_check():
                    return
                if attempt == 1:
                    delay = self.config.health_checks.retry_delay
                    log.info("bridge %s: health check timed out; retrying in %.1f s", bridge.nickname, delay)
                    await trio.sleep(delay)
                    continue
                self._verdict(bridge, HealthState.TIMED_OUT, "health check timed out twice")
            except StanzaError as exc:
                if exc.condition in FAILURE_CONDITIONS:
                    self._verdict(bridge, HealthState.FAILED, f"health check failed: {exc}")
                else:
                    self._odd_answer(bridge, f"health check error {exc}")
            except NotConnected:
                return
            except XMPPError as exc:
                self._odd_answer(bridge, f"health check: {exc}")
            else:
                self._verdict(bridge, HealthState.OK)
            return

    def _odd_answer(self, bridge: Bridge, what: str) -> None:
        watch = self._watches.get(bridge)
        if watch is None:
            return
        if what != watch.last_error:
            log.warning("bridge %s: %s (ignored)", bridge.nickname, what)
        watch.last_error = what

    def _verdict(self, bridge: Bridge, state: HealthState, reason: str = "") -> None:
        watch = self._watches.get(bridge)
        if watch is None or bridge.removed:
            return
        now = self.clock()
        previous, watch.state = watch.state, state
        watch.last_error = None
        if state is HealthState.OK:
            bridge.mark_healthy(now)
            if previous is not HealthState.OK:
                log.info("bridge %s: health check passed", bridge.nickname)
            operational = bridge.is_operational(now)
            recovered = operational and not watch.operational
            watch.operational = operational
            if recovered:
                log.info("bridge %s: operational again", bridge.nickname)
                self._emit(BridgeRecovered(bridge))
            return
        bridge.mark_failed(now)
        watch.operational = False
        if state is HealthState.TIMED_OUT and previous is HealthState.FAILED:
            # Still failed: a failed bridge whose checks now time out (a silent one, typically)
            # is not downgraded, so that its next silence verdict is not a new failure.
            watch.state = state = HealthState.FAILED
        if state is previous:
            return
        if state is HealthState.TIMED_OUT:
            log.warning("bridge %s: not operational, nobody moved: %s", bridge.nickname, reason)
        else:
            log.warning("bridge %s: failed, moving its participants: %s", bridge.nickname, reason)
            self._emit(BridgeFailed(bridge, reason))
