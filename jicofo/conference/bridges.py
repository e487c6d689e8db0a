"""A conference's bridge side: its Colibri2 sessions (one per bridge in use) and their lifecycle,
bridge selection for a member, the cascade between the bridges, and moving members off a bridge
that fails, leaves or is dropped.

Each session the conference ever started on a bridge is one `_Use` with one explicit phase:

    ACTIVE ──(last endpoint gone)──────────────▶ DRAINING ──(its task ends)──▶ released
       │                                            the conference expire is queued last
       └──(bridge failed / left / moved off)──▶ EXPIRING ──(expire answered)──▶ released
                                                    its task is cancelled, the expire sent beside

(The session's own view, what is created on its bridge and whether it still takes requests, is
`ColibriSession.state` in jicofo/bridge/colibri.py; leaving ACTIVE closes it.)
Members are only allocated through ACTIVE sessions (`sessions`, one per bridge). A new session
on a bridge whose previous one is still DRAINING or EXPIRING waits (bounded, once) for that one
to be released: a create sent before the expire would be refused (conference_already_exists).
When the conference stops, every session whose conference is still created on its bridge
(ACTIVE, or let go before its expire went out) is expired.

Everything here is synchronous between awaits, called from the conference's tasks.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import trio

from jicofo.bridge.brewery import (
    BridgeAdded,
    BridgeEvent,
    BridgeFailed,
    BridgeRecovered,
    BridgeRemoved,
    BridgeShuttingDown,
)
from jicofo.bridge.colibri import ColibriFailure, ColibriSession, RelayEndpoint
from jicofo.bridge.selector import RecentAdditions
from jicofo.config.model import ReinviteMethod
from jicofo.logs import log_context
from jicofo.xmlns.jingle import RtpDescription
from jicofo.xmpp.errors import XMPPError

from .cascade import Cascade
from .offer import OfferOptions, audio_description, video_description
from .participant import Invite, Participant, Reinvite

if TYPE_CHECKING:
    from jicofo.bridge.model import Bridge

    from .services import ConferenceServices
    from .sources import EndpointSourceSet

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    ACTIVE = "active"  # in use: members are allocated through it
    DRAINING = "draining"  # no member left: the conference expire goes out behind its queue
    EXPIRING = "expiring"  # dropped: its task cancelled, the conference expire sent beside it


@dataclass(eq=False)
class _Use:
    session: ColibriSession
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    phase: Phase = Phase.ACTIVE
    released: trio.Event | None = None  # DRAINING / EXPIRING: set once nothing more goes out
    waited: bool = False  # a new session on the bridge waited for this one (only ever once)

    def blocks(self) -> bool:
        """A new session on this bridge must wait for this one."""
        return self.phase is not Phase.ACTIVE and not self.waited and self.released is not None \
            and not self.released.is_set()


class BridgeHost(Protocol):
    """What the bridge side needs of its conference."""

    services: ConferenceServices
    meeting_id: str | None
    participants: dict[str, Participant]

    def persist(self, participant: Participant | None = None) -> None: ...

    def presence_changed(self) -> None: ...

    def remove_sources(self, participant: Participant, sources: EndpointSourceSet) -> None: ...


class ConferenceBridges:
    def __init__(self, host: BridgeHost, room: str, properties: Mapping[str, str]) -> None:
        self._host = host
        self.services = services = host.services
        self.room = room
        self._rtcstats = properties.get("rtcstatsEnabled", "true").lower() != "false"
        self.sessions: dict[Bridge, ColibriSession] = {}  # the ACTIVE ones, one per bridge
        self._uses: dict[ColibriSession, _Use] = {}
        self._recently_added = RecentAdditions(services.config.bridge.max_bridge_participants_interval)
        self.cascade = Cascade(
            room=room, medias=self._relay_medias, sctp=services.config.octo.sctp_datachannels,
            endpoint_info=self._relay_endpoint_info,
        )
        self.nursery: trio.Nursery | None = None  # the conference's, while it runs
        self.bridge_not_available = False

    # ----- choosing a bridge and its session ----------------------------------------------------

    async def session_for(self, participant: Participant) -> ColibriSession | None:
        """The Colibri2 session on the bridge chosen for `participant`, started if new; None when
        no bridge can be used (the focus presence then says bridgeNotAvailable)."""
        services = self.services
        bridge = self._select(participant)
        if bridge is None:
            return None
        session = self.sessions.get(bridge)
        previous = self._blocking(bridge)
        if session is None and previous is not None:
            assert previous.released is not None
            # The previous session there is still expiring the conference: a create sent before
            # that would be refused (conference_already_exists). Others asking meanwhile wait on
            # the same event.
            with trio.move_on_after(services.colibri_timeout):
                await previous.released.wait()
            # The bridge may have failed, or another session started, meanwhile: choose again
            # (without waiting twice).
            bridge = self._select(participant)
            if bridge is None:
                return None
            session = self.sessions.get(bridge)
            if bridge is previous.session.bridge:
                previous.waited = True
        self._recently_added.added(bridge, trio.current_time())
        if session is None:
            session = self._new_session(bridge)
            use = self.adopt(session)
            assert self.nursery is not None
            await self.nursery.start(self.run_session, use)
            log.info("conference %s: using bridge %s (session %s)", self.room, bridge.nickname,
                     session.id)
            self._host.persist()
            self._host.presence_changed()
        return session

    def _blocking(self, bridge: Bridge) -> _Use | None:
        return next((u for u in reversed(self._uses.values())
                     if u.session.bridge is bridge and u.blocks()), None)

    def _new_session(self, bridge: Bridge) -> ColibriSession:
        services = self.services
        return ColibriSession(
            services.colibri_client, bridge, meeting_id=self._host.meeting_id or str(uuid.uuid4()),
            room_name=self.room, timeout=services.colibri_timeout, rtcstats_enabled=self._rtcstats,
            on_failure=self.failed, observer=self.cascade,
        )

    def new_restored_session(self, bridge: Bridge, meeting_id: str) -> ColibriSession:
        """A session rebuilt from the restart store (the caller fills in its state, then adopts it)."""
        services = self.services
        return ColibriSession(
            services.colibri_client, bridge, meeting_id=meeting_id, room_name=self.room,
            timeout=services.colibri_timeout, rtcstats_enabled=self._rtcstats,
            on_failure=self.failed, observer=self.cascade,
        )

    def adopt(self, session: ColibriSession) -> _Use:
        """Make `session` the ACTIVE one on its bridge (its task is started with run_session)."""
        self.sessions[session.bridge] = session
        use = self._uses[session] = _Use(session)
        return use

    async def start_adopted(self, nursery: trio.Nursery) -> None:
        """Start the tasks of the sessions adopted before the conference ran (a restored one)."""
        for session in list(self.sessions.values()):
            use = self._uses.get(session) or self.adopt(session)
            await nursery.start(self.run_session, use)

    async def run_session(self, use: _Use, *,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with use.scope, log_context(bridge=use.session.bridge.nickname):
            await use.session.run(task_status=task_status)

    def _select(self, participant: Participant) -> Bridge | None:
        """The bridge for `participant` now (synchronous: the state cannot change under it);
        None, with bridgeNotAvailable in presence, when none can be used."""
        services = self.services
        in_use = {
            bridge: sum(1 for p in self._host.participants.values() if p.colibri is session)
            for bridge, session in self.sessions.items()
        }
        now = trio.current_time()
        bridge = services.selector.select(
            services.bridges(), in_use, participant.presence.region or services.config.local_region,
            conference_id=self.room, recently_added=self._recently_added.counts(now),
        )
        if bridge is not None and self.sessions and bridge not in self.sessions \
                and not self._multi_bridge_possible(bridge):
            stale = [s for b, s in self.sessions.items()
                     if b.removed or b.shutting_down or not b.is_operational(now)]
            if len(stale) == len(self.sessions):
                # Upstream stays stuck here (its issue #1050); we move the whole conference.
                for session in stale:
                    self.move_off(session, f"bridge {session.bridge.nickname} is not usable",
                                  cancel=True)
        if bridge is None or (self.sessions and bridge not in self.sessions
                              and not self._multi_bridge_possible(bridge)):
            if bridge is not None:
                log.warning("conference %s: selected %s but the conference is on %s and cascading "
                            "is not available", self.room, bridge.nickname,
                            ", ".join(b.nickname for b in self.sessions))
            self._set_bridge_not_available(True)
            return None
        self._set_bridge_not_available(False)
        return bridge

    def _multi_bridge_possible(self, bridge: Bridge) -> bool:
        """A conference spans several bridges only with Octo enabled and relay ids on all of
        them (as upstream); otherwise it stays on one bridge and moves wholesale when that fails."""
        if not self.services.config.octo.enabled or bridge.relay_id is None:
            return False
        return all(b.relay_id is not None for b in self.sessions)

    def _set_bridge_not_available(self, value: bool) -> None:
        if value != self.bridge_not_available:
            self.bridge_not_available = value
            self._host.presence_changed()

    def _relay_medias(self) -> tuple[RtpDescription, ...]:
        """What relays carry: every codec and header extension an offer can have."""
        everything = OfferOptions(opus_red=True)
        offer_config = self.services.offer_config
        return (audio_description(offer_config, everything), video_description(offer_config, everything))

    def _relay_endpoint_info(self, endpoint_id: str) -> RelayEndpoint | None:
        participant = self._host.participants.get(endpoint_id)
        if participant is None:
            return None
        return RelayEndpoint(endpoint_id, participant.presence.stats_id, participant.sources,
                             participant.uses_ssrc_rewriting())

    # ----- letting sessions go ------------------------------------------------------------------

    def endpoint_released(self, participant: Participant, session: ColibriSession) -> None:
        """A participant's endpoint left `session`; the last one out expires the conference there."""
        if session.endpoints or self.sessions.get(session.bridge) is not session:
            return
        log.info("conference %s: no endpoints left on %s; expiring there", self.room,
                 session.bridge.nickname)
        session.expire_when_idle()
        self._let_go(session, Phase.DRAINING)

    def _let_go(self, session: ColibriSession, phase: Phase) -> list[Participant]:
        """Stop using `session`: DRAINING lets its task send what is queued, the conference expire
        last; EXPIRING cancels its task (its requests in flight end; the caller sends the expire
        beside it). Returns the members that were on it."""
        if self.sessions.get(session.bridge) is session:
            del self.sessions[session.bridge]
        session.close()  # retired: it takes no more requests (a draining one already is)
        self.cascade.leave(session)
        use = self._uses.get(session)
        if use is None:
            use = self._uses[session] = _Use(session)
        if use.phase is Phase.ACTIVE:
            use.phase = phase
            if phase is Phase.EXPIRING:
                use.scope.cancel()
            else:
                use.released = session.finished
        # Sessions long gone (released, nothing left to expire) are forgotten.
        for old, other in list(self._uses.items()):
            if other.phase is not Phase.ACTIVE and not old.created and not other.blocks() \
                    and other is not use:
                del self._uses[old]
        moved = [p for p in self._host.participants.values() if p.colibri is session]
        self._host.persist()
        self._host.presence_changed()
        return moved

    def to_expire(self) -> list[ColibriSession]:
        """The sessions whose conference is (or may still be) created on their bridge."""
        active = list(self.sessions.values())
        return active + [u.session for u in self._uses.values()
                         if u.phase is not Phase.ACTIVE and u.session.created
                         and u.session not in active]

    def clear(self) -> None:
        self.sessions.clear()

    # ----- failures and moves -------------------------------------------------------------------

    def failed(self, session: ColibriSession, failure: ColibriFailure,
               endpoint_id: str | None = None) -> None:
        """A Colibri2 request failed (docs/jicofo.md §2.10). Decide what moves."""
        participants = self._host.participants
        if session.retired:
            # Already dropped (and its participants moved): only a member whose allocation
            # was lost with it still needs an invite. A timeout (of the conference expire sent
            # after the last member left, say) still marks the bridge: it did not answer.
            if failure.timed_out and failure.mark_bridge is not None \
                    and session.bridge.is_operational(trio.current_time()):
                self._mark_bridge(session.bridge, failure.mark_bridge, str(failure))
            if endpoint_id in participants:
                participant = participants[endpoint_id]
                if not participant.has_media_session:
                    participant.post(Invite(f"bridge {session.bridge.nickname} was dropped"))
            return
        self.services.stats.bridge_allocation_failures += 1
        if failure.mark_bridge is not None:
            self._mark_bridge(session.bridge, failure.mark_bridge, str(failure))
        if failure.unknown_endpoint and endpoint_id is None:
            endpoint_id = failure.endpoint_id
        if not failure.session_lost:
            if failure.unknown_endpoint and endpoint_id in participants:
                participants[endpoint_id].post(Reinvite("the bridge lost the endpoint"))
            return
        self.move_off(session, f"bridge {session.bridge.nickname} failed: {failure}",
                      cancel=True, extra=endpoint_id)

    def _mark_bridge(self, bridge: Bridge, how: str, reason: str) -> None:
        now = trio.current_time()
        if how == "graceful":
            bridge.graceful_shutdown = True
        elif how == "failed":
            if self.services.brewery is not None:
                self.services.brewery.mark_failed(bridge, reason, move_participants=False)
            else:
                bridge.mark_failed(now)
        log.warning("conference %s: bridge %s marked %s: %s", self.room, bridge.nickname, how,
                    reason)

    def move_off(self, session: ColibriSession, reason: str, *, cancel: bool,
                 extra: str | None = None) -> None:
        moved = self._let_go(session, Phase.EXPIRING if cancel else Phase.DRAINING)
        restart = self.services.config.conference.reinvite_method is ReinviteMethod.RESTART_JINGLE
        for participant in moved:
            participant.colibri = None
            participant.moving = True
            if restart:
                # Their sessions end: drop their sources now, all at once, so that no new offer
                # to one of them still carries another's old sources (and then a source-remove).
                self._host.remove_sources(participant, participant.sources)
        log.warning("conference %s: %s; re-inviting %d participant(s)", self.room, reason,
                    len(moved))
        for participant in moved:
            self.services.stats.participants_moved += 1
            if not participant.post(Reinvite(reason)):
                participant.moving = False
        participants = self._host.participants
        if extra is not None and extra in participants:
            participant = participants[extra]
            if participant not in moved and not participant.has_media_session:
                participant.post(Invite(reason))
        if cancel and self.nursery is not None:
            use = self._uses[session]
            use.released = trio.Event()
            self.nursery.start_soon(self._expire_quietly, session, use.released)

    async def _expire_quietly(self, session: ColibriSession, expired: trio.Event) -> None:
        """Best effort: tell a failed bridge to drop the conference (it may be gone)."""
        try:
            with trio.move_on_after(self.services.colibri_timeout):
                try:
                    await session.expire_conference()
                except (XMPPError, ColibriFailure) as exc:
                    log.info("conference %s: expire on %s failed: %s", self.room,
                             session.bridge.nickname, exc)
        finally:
            expired.set()

    def bridge_event(self, event: BridgeEvent) -> None:
        """From the brewery (synchronous): move participants off bridges that went away, invite
        the waiting ones when a bridge appears."""
        if self.nursery is None:
            return
        if isinstance(event, BridgeRemoved | BridgeFailed | BridgeShuttingDown):
            session = self.sessions.get(event.bridge)
            if session is not None:
                what = (f"failed ({event.reason})" if isinstance(event, BridgeFailed) else
                        {BridgeRemoved: "left the brewery",
                         BridgeShuttingDown: "is shutting down"}[type(event)])
                self.move_off(session, f"bridge {event.bridge.nickname} {what}", cancel=True)
        elif isinstance(event, BridgeAdded | BridgeRecovered):
            waiting = [p for p in self._host.participants.values() if p.waiting_for_bridge]
            for participant in waiting:
                participant.post(Invite(f"bridge {event.bridge.nickname} is available"))

    def endpoints_on(self, bridge: Bridge) -> list[str]:
        return [p.endpoint_id for p in self._host.participants.values()
                if p.colibri is not None and p.colibri.bridge is bridge]
