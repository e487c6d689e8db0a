"""One conference: its MUC room, its members, their sources, its Colibri2 sessions, its timers.

`Conference.run` is the conference's nursery. Its children: the room task (member presence →
participants), one task per participant (its Jingle session, see participant.py), one task per
bridge in use (its Colibri2 session, see jicofo/bridge/colibri.py) and the timers. Anything that
goes wrong inside ends this conference alone: the registry logs it and the others carry on.

State is only changed by synchronous code between awaits, so the tasks never see it half-updated.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

import trio

from jicofo.bridge.brewery import (
    BridgeEvent,
)
from jicofo.bridge.colibri import ColibriFailure, ColibriSession
from jicofo.jibri.conference_jibri import ConferenceJibri
from jicofo.logs import log_context
from jicofo.model.sources import ConferenceSourceMap, EndpointSourceSet
from jicofo.xmlns.breakout import is_switch_room, main_room_of
from jicofo.xmlns.component_message import AvModerationMessage, RoomMetadata, RoomMetadataMessage
from jicofo.xmlns.jingle import StartMuted
from jicofo.xmlns.mute import MuteIQ
from jicofo.xmlns.presence_ext import (
    BRIDGE_COUNT,
    SUPPORT_TERMINATE_RESTART,
    ConferenceProperties,
    Versions,
    bridge_not_available,
    etherpad,
)
from jicofo.xmpp.containment import contain_stanza
from jicofo.xmpp.errors import NotConnected, XMPPError
from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.muc import (
    MessageReceived,
    MucRoom,
    Occupant,
    OccupantChanged,
    OccupantJoined,
    OccupantLeft,
    Rejoined,
    RoomEvent,
    SelfChanged,
    SelfLeft,
    event_stanza,
)

from .av_moderation import AvModerationState
from .bridges import ConferenceBridges
from .cascade import Cascade
from .gateways import FEATURE_JIBRI, FEATURE_JIGASI, is_gateway_member
from .metadata_wait import presets_enabled, wait_for_metadata
from .mute import (
    AvModeration,
    MuteDecision,
    MuteMember,
    MuteResult,
    decide_mute,
    start_muted_flags,
)
from .participant import Invite, JingleRequest, Participant, Reinvite, Terminate
from .roles import RoleStrategy, role_strategy
from .services import ConferenceServices
from .sources import SourceLimits

if TYPE_CHECKING:
    from jicofo.bridge.model import Bridge
    from jicofo.stats import FocusStats

log = logging.getLogger(__name__)

FOCUS_NICK = "focus"
MEETING_ID_FIELD = "muc#roominfo_meetingId"
CLEANUP_TIMEOUT = 3.0
# Members whose presence says they are a gateway, not a person: they do not count towards
# min-participants or auto-owner, as upstream.
FEATURE_AUDIO_MUTE = "http://jitsi.org/protocol/audio-mute"  # a Jigasi that can be force-muted


class ConferenceStopped(Exception):
    """The conference ended (reason in the message); raised to end its nursery."""


class Conference:
    def __init__(
        self,
        services: ConferenceServices,
        room_jid: JID,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        self.services = services
        self.room_jid = room_jid.bare
        self.properties = dict(properties or {})
        self.meeting_id: str | None = None
        self.participants: dict[str, Participant] = {}
        self.sources = ConferenceSourceMap()
        # The bridge side: Colibri2 sessions and their lifecycle, selection, cascade, moves.
        self.bridges = ConferenceBridges(self, str(self.room_jid), self.properties)
        conf = services.config.conference
        self.source_limits = SourceLimits(conf.max_ssrcs_per_user, conf.max_ssrc_groups_per_user)
        self.room: MucRoom | None = None
        self.joined = trio.Event()
        self.stopped = trio.Event()
        self.stop_reason: str | None = None
        self.created_at = time.time()
        self._nursery: trio.Nursery | None = None
        self._ever_had_member = False
        self._single_timer: trio.CancelScope | None = None
        self._start_timer: trio.CancelScope | None = None
        # A/V moderation (per-media enabled flag and whitelists) from the av_moderation
        # component's messages; `av_moderation` is what the mute decisions ask (a plug-in point).
        self.av_state = AvModerationState(str(self.room_jid), exempt=self._av_exempt)
        self.av_moderation: AvModeration = self.av_state
        # The room_metadata component's latest metadata for this room (None: none received).
        self.room_metadata: RoomMetadata | None = None
        self.room_metadata_received = trio.Event()
        # Whether a room_metadata component is known (the focus sets it): without one, joining
        # does not wait for metadata that cannot come.
        self.room_metadata_component: bool = False
        # The number of participants invited when each member was first invited (itself
        # included): what start muted counts, as upstream.
        self._invite_positions: dict[str, int] = {}
        # conference.shared-document.use-random-name: a name nobody can guess from the room's.
        self.shared_document_name = uuid.uuid4().hex \
            if services.config.conference.shared_document_use_random_name else room_jid.local or ""
        # Breakout rooms (docs/jicofo.md §1.8 row 76): set by the registry for a room on the
        # breakout MUC; `main_room` from the room's info form. `has_breakout_rooms` (also set by
        # the registry) keeps a main conference alive while any of its breakout rooms runs.
        self.breakout = False
        self.main_room: JID | None = None
        self.has_breakout_rooms: Callable[[], bool] = lambda: False
        # Who is made owner (roles.py): authenticated members, or auto-owner, or nobody.
        self.roles: RoleStrategy | None = None
        # Set for a conference rebuilt from the restart store: `run` resumes it instead of joining.
        self.resume: Callable[[Conference, trio.Nursery], Awaitable[None]] | None = None
        # Recording, streaming and SIP calls through Jibri (jicofo/jibri/), while running.
        self.jibri: ConferenceJibri | None = None

    def __repr__(self) -> str:
        return f"<Conference {self.room_jid}>"

    @property
    def stats(self) -> FocusStats:
        return self.services.stats

    @property
    def colibri_sessions(self) -> dict[Bridge, ColibriSession]:
        """The Colibri2 session in use on each bridge (bridges.py)."""
        return self.bridges.sessions

    @property
    def cascade(self) -> Cascade:
        return self.bridges.cascade

    # ----- lifecycle --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Join the room, then serve the conference until it stops. `task_status.started()` once
        the room is joined and configured (the conference request may then answer ready)."""
        with log_context(room=self.room_jid):
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    self.bridges.nursery = nursery
                    if self.services.jibri is not None:
                        rtcstats = self.properties.get("rtcstatsEnabled", "true").lower() != "false"
                        self.jibri = ConferenceJibri(self.services.jibri, self.room_jid, nursery,
                                                     presence_changed=self._presence_changed,
                                                     rtcstats_enabled=rtcstats)
                    if self.resume is not None:
                        await self.resume(self, nursery)
                    else:
                        await self._join()
                        self.persist()
                    # Tasks inherit the context they are started from: everything from here on
                    # logs with the room and its meeting id.
                    with log_context(meeting_id=self.meeting_id):
                        self.joined.set()
                        task_status.started()
                        nursery.start_soon(self._room_loop)
                        self.rearm_start_timeout()
            except* ConferenceStopped as group:
                if self.stop_reason is None:
                    self.stop_reason = str(group.exceptions[0])
            finally:
                self._nursery = None
                self.bridges.nursery = None
                with trio.CancelScope(shield=True):
                    await self._cleanup()
                if self.services.state_hook is not None:
                    self.services.state_hook.conference_gone(self)
                self.stopped.set()

    def persist(self, participant: Participant | None = None) -> None:
        """The restart store's hook: this conference (and `participant`) changed."""
        if self.services.state_hook is not None:
            self.services.state_hook.changed(self, participant)

    def stop(self, reason: str) -> None:
        """End the conference (from any task of the process)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        log.info("conference %s: stopping: %s", self.room_jid, reason)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _join(self) -> None:
        services = self.services
        room = MucRoom(services.client, self.room_jid, FOCUS_NICK,
                       presence_extensions=[services.client.caps()])
        self.room = room
        with trio.fail_after(services.request_timeout * 2):
            joined = await room.join(timeout=services.request_timeout)
            if joined.affiliation != "owner":
                raise ConferenceStopped(f"the focus is {joined.affiliation} in the room, not owner")
            # Make the room non-anonymous (this also unlocks a newly created room).
            form = await room.configure({"muc#roomconfig_whois": "anyone"})
            self.meeting_id = await self._read_meeting_id(room)
        self.roles = role_strategy(self)
        if presets_enabled(form):
            await self._wait_for_room_metadata()
        log.info("conference %s: joined (meeting id %s, %s)", self.room_jid, self.meeting_id,
                 "created" if joined.created else "existing room")
        await self._publish_presence()

    async def _wait_for_room_metadata(self) -> None:
        """Conference presets are enabled for the room: wait (bounded) for its metadata before
        counting as joined, as upstream (metadata_wait.py)."""
        timeout = self.services.config.conference.room_metadata_timeout
        if not self.room_metadata_component:
            log.warning("conference %s: conference presets are enabled but no room_metadata "
                        "component is known; not waiting for metadata", self.room_jid)
            return
        log.info("conference %s: conference presets are enabled; waiting up to %g s for the "
                 "room metadata", self.room_jid, timeout)
        if await wait_for_metadata(self.room_metadata_received, timeout):
            log.info("conference %s: room metadata received", self.room_jid)
        else:
            log.warning("conference %s: no room metadata within %g s; going on without",
                        self.room_jid, timeout)

    async def _read_meeting_id(self, room: MucRoom) -> str:
        try:
            info = await room.room_info()
        except XMPPError as exc:
            log.info("conference %s: no room info (%s); using a local meeting id", self.room_jid, exc)
            info = {}
        self.main_room = main_room_of(info) if self.breakout else None
        values = info.get(MEETING_ID_FIELD) or []
        return values[0] if values and values[0] else str(uuid.uuid4())

    def _presence_extensions(self) -> list[Element]:
        services = self.services
        properties = {SUPPORT_TERMINATE_RESTART: "true"}
        if self.colibri_sessions:
            properties[BRIDGE_COUNT] = str(len(self.colibri_sessions))
        extensions = [
            services.client.caps(),
            etherpad(self.shared_document_name),
            Versions({"focus": services.version}).to_element(),
            ConferenceProperties(properties).to_element(),
        ]
        if self.bridges.bridge_not_available:
            extensions.append(bridge_not_available())
        if self.jibri is not None:
            extensions.extend(self.jibri.presence_extensions())
        return extensions

    async def _publish_presence(self) -> None:
        if self.room is None or not self.room.joined:
            return
        try:
            await self.room.set_presence(self._presence_extensions())
        except NotConnected as exc:
            log.info("conference %s: presence not sent: %s", self.room_jid, exc)

    def _presence_changed(self) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self._publish_presence)

    def presence_changed(self) -> None:
        """Publish the focus presence again (what it says changed)."""
        self._presence_changed()

    async def _cleanup(self) -> None:
        """Expire the bridge conferences and leave the room, within a bounded time. Sessions
        that were being let go (their expire queued, their task cancelled with the conference)
        are expired here too."""
        if self.jibri is not None:
            self.jibri.shutdown()
        sessions = self.bridges.to_expire()
        brewery = self.services.brewery
        if sessions and brewery is not None and not brewery.joined:
            # A new XMPP session (one that did not resume) is rejoining the brewery: until it is
            # back, Prosody refuses our IQs to the bridges (not-acceptable), so the expires wait.
            with trio.move_on_after(self.services.colibri_timeout):
                await brewery.wait_joined()
        with trio.move_on_after(CLEANUP_TIMEOUT):
            for session in sessions:
                try:
                    await session.expire_conference()
                except (XMPPError, ColibriFailure) as exc:
                    log.info("conference %s: expiring on %s failed: %s",
                             self.room_jid, session.bridge.nickname, exc)
            self.colibri_sessions.clear()
            if self.room is not None:
                try:
                    await self.room.leave()
                except XMPPError as exc:
                    log.info("conference %s: leaving the room failed: %s", self.room_jid, exc)
        for session in sessions:  # also those whose expire did not get through in time
            session.bridge_endpoint_removed()
        log.info("conference %s: stopped (%s)", self.room_jid, self.stop_reason or "done")

    # ----- timers -------------------------------------------------------------------------------

    def rearm_start_timeout(self) -> None:
        """(Re)start the initial timeout: the conference stops if nobody joins in time."""
        if self._nursery is None or self._ever_had_member:
            return
        self._arm_start_timeout()

    def _arm_start_timeout(self) -> None:
        assert self._nursery is not None
        if self._start_timer is not None:
            self._start_timer.cancel()
        self._start_timer = trio.CancelScope()
        self._nursery.start_soon(self._start_timeout, self._start_timer)

    async def _start_timeout(self, scope: trio.CancelScope) -> None:
        with scope:
            while True:
                await trio.sleep(self.services.config.conference.initial_timeout)
                if self.participants:
                    return
                if not self.has_breakout_rooms():
                    self.stop("nobody joined within the initial timeout")
                    return

    def _check_single_participant(self) -> None:
        invited = [p for p in self.participants.values() if p.invited]
        if len(invited) == 1 and self._nursery is not None:
            if self._single_timer is None:
                self._single_timer = trio.CancelScope()
                self._nursery.start_soon(self._single_participant_timeout, self._single_timer)
        elif self._single_timer is not None:
            self._single_timer.cancel()
            self._single_timer = None

    async def _single_participant_timeout(self, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(self.services.config.conference.single_participant_timeout)
            self._single_timer = None
            invited = [p for p in self.participants.values() if p.invited]
            if len(invited) == 1:
                log.info("conference %s: %s alone for too long; ending its session",
                         self.room_jid, invited[0].endpoint_id)
                invited[0].post(Terminate("expired", "Idle session timeout"))

    # ----- members ------------------------------------------------------------------------------

    async def _room_loop(self) -> None:
        assert self.room is not None
        async for event in self.room.events:
            # A presence or message that cannot be handled is ignored (containment.py).
            with contain_stanza(event_stanza(event), type(event).__name__, keep=(ConferenceStopped,)):
                self._on_room_event(event)
            if self.stop_reason is not None:
                return
        self.stop("the room's event stream closed")

    def _on_room_event(self, event: RoomEvent) -> None:
        if isinstance(event, OccupantJoined):
            self._member_joined(event.occupant)
        elif isinstance(event, OccupantChanged):
            participant = self.participants.get(event.occupant.nick)
            if participant is not None:
                participant.update_presence(event.occupant)
                occupant = event.occupant
                if self.av_state.active and (occupant.role, occupant.affiliation) != \
                        (event.old_role, event.old_affiliation):
                    # A new moderator is exempt from A/V moderation (a demoted one no longer).
                    change = self._apply_force_mute(participant)
                    if change is not None:
                        log.info("conference %s: bridge force-mute changed for %s (now %s, %s)",
                                 self.room_jid, change, occupant.role, occupant.affiliation)
            if event.old_affiliation == "owner" and event.occupant.affiliation != "owner":
                self._ensure_owner()
        elif isinstance(event, OccupantLeft):
            self._member_left(event.occupant, "kicked" if event.kicked else event.reason or "left")
        elif isinstance(event, SelfChanged):
            if event.affiliation != "owner":
                self.stop(f"the focus lost ownership of the room ({event.affiliation})")
        elif isinstance(event, SelfLeft):
            self.stop(f"the focus is out of the room: {event.reason}")
        elif isinstance(event, Rejoined | MessageReceived):
            pass

    def _is_gateway(self, occupant: Occupant) -> bool:
        participant = self.participants.get(occupant.nick)
        features = participant.presence.features if participant is not None else frozenset()
        return is_gateway_member(occupant, features, self.services.config.xmpp.trusted_domains) is not None

    def jibri_requester(self, nick: str | None) -> tuple[bool, bool | None]:
        """For a Jibri request from occupant `nick`: (a member?, a moderator? None: role unknown)."""
        participant = self.participants.get(nick) if nick is not None else None
        if participant is None:
            return False, None
        occupant = participant.occupant
        return True, occupant.role == "moderator" or occupant.affiliation in ("owner", "admin")

    def _member_joined(self, occupant: Occupant) -> None:
        if occupant.nick in self.participants:
            return
        assert self._nursery is not None
        participant = Participant(self, occupant)
        self.participants[occupant.nick] = participant
        self._ever_had_member = True
        self.stats.participants += 1
        if self._start_timer is not None:
            self._start_timer.cancel()
            self._start_timer = None
        log.info("conference %s: %s joined (%d member(s))", self.room_jid, occupant.nick,
                 len(self.participants))
        self._nursery.start_soon(participant.run)
        self._ensure_owner()
        min_participants = self.services.config.conference.min_participants
        if len(self.participants) >= min_participants:
            for member in self.participants.values():
                if not member.invited:
                    member.invited = True
                    if member.endpoint_id not in self._invite_positions:
                        self._invite_positions[member.endpoint_id] = len(self._invite_positions) + 1
                    member.post(Invite())
        self._check_single_participant()

    def _member_left(self, occupant: Occupant, reason: str) -> None:
        participant = self.participants.pop(occupant.nick, None)
        if participant is None:
            return
        self._invite_positions.pop(occupant.nick, None)
        log.info("conference %s: %s left (%s)", self.room_jid, occupant.nick, reason)
        participant.cancel_scope.cancel()
        self.sources.remove_endpoint(participant.endpoint_id)
        for other in self.participants.values():
            other.forget_sources_of(participant.endpoint_id)
        if participant.colibri is not None:
            participant.colibri.expire_endpoint(participant.endpoint_id)
            self.endpoint_released(participant, participant.colibri)
        if self.services.state_hook is not None:
            self.services.state_hook.member_gone(self, participant.endpoint_id)
        if not self.participants:
            if is_switch_room(occupant.presence) or self.has_breakout_rooms():
                # Members moving to (or between) breakout rooms: wait for them, as upstream.
                log.info("conference %s: the last member left for a breakout room; waiting",
                         self.room_jid)
                if self._nursery is not None:
                    self._arm_start_timeout()
                return
            self.stop("the last member left")
            return
        if occupant.affiliation == "owner":
            self._ensure_owner()
        self._check_single_participant()

    def has_member(self, endpoint_id: str) -> bool:
        return endpoint_id in self.participants

    def member_count(self) -> int:
        return len(self.participants)

    def member_authenticated(self, jid: JID) -> None:
        """A real JID authenticated (a conference request with a session): with authentication
        on, a member already here with that JID becomes owner."""
        if any(p.occupant.jid == jid for p in self.participants.values()):
            self._ensure_owner()

    def breakout_ended(self) -> None:
        """One of this main conference's breakout conferences ended: stop if nobody is left
        here and no other breakout room remains (upstream's maybeStop)."""
        if not self.participants and not self.has_breakout_rooms() and self._ever_had_member:
            self.stop("the last breakout room ended and nobody is in the main room")

    def _ensure_owner(self) -> None:
        """Whoever the role strategy (roles.py) says is made owner."""
        if self.roles is not None and self.room is not None:
            for participant in self.roles.owners_to_grant(list(self.participants.values())):
                assert self._nursery is not None
                self._nursery.start_soon(self._grant_owner, participant)

    def auto_owner_candidate(self) -> Participant | None:
        """Auto-owner: the earliest eligible member when no eligible member is owner."""
        candidates = [p for p in self.participants.values() if not self._is_gateway(p.occupant)]
        if any(p.occupant.affiliation == "owner" for p in candidates):
            return None
        for participant in sorted(candidates, key=lambda p: p.joined_at):
            if participant.occupant.jid is not None:
                return participant
        return None

    async def _grant_owner(self, participant: Participant) -> None:
        assert self.room is not None and participant.occupant.jid is not None
        try:
            await self.room.set_affiliation(participant.occupant.jid.bare, "owner")
            log.info("conference %s: %s is now owner", self.room_jid, participant.endpoint_id)
        except XMPPError as exc:
            log.warning("conference %s: granting owner to %s failed: %s",
                        self.room_jid, participant.endpoint_id, exc)

    def start_muted_for(self, participant: Participant) -> StartMuted | None:
        """Start-muted flags for the offer (`<startmuted>` only when one is set): participants
        invited beyond the conference request's startAudioMuted / startVideoMuted counts (or the
        sender limits) start muted (docs/jicofo.md §1.5 row 42)."""
        position = self._invite_positions.get(participant.endpoint_id, len(self.participants))
        conf = self.services.config.conference
        audio, video = start_muted_flags(
            position, _limit(self.properties.get("startAudioMuted")),
            _limit(self.properties.get("startVideoMuted")),
            conf.max_audio_senders, conf.max_video_senders,
        )
        # Room metadata's startMuted adds to the request's counts (upstream: either one mutes),
        # and so does A/V moderation that does not let this member unmute (row 42).
        metadata = self.room_metadata
        forced_audio, forced_video = self.force_mute_flags(participant.endpoint_id)
        audio = audio or forced_audio or (metadata is not None and metadata.start_muted_audio)
        video = video or forced_video or (metadata is not None and metadata.start_muted_video)
        return StartMuted(audio, video) if audio or video else None

    # ----- A/V moderation and room metadata (component messages) --------------------------------

    def _av_exempt(self, nick: str) -> bool:
        member = self._mute_member(nick)
        return member is not None and (member.moderator or member.never_force_muted)

    def force_mute_flags(self, nick: str) -> tuple[bool, bool]:
        """(audio, video) force-mute flags A/V moderation wants on the bridge for `nick`: audio
        when it may not unmute audio, video when it may unmute neither video nor desktop."""
        av = self.av_moderation
        return (not av.allowed_to_unmute(nick, "audio"),
                not av.allowed_to_unmute(nick, "video") and not av.allowed_to_unmute(nick, "desktop"))

    def handle_av_moderation(self, message: AvModerationMessage) -> None:
        """An av_moderation component message for this room: update the state, then bring every
        member's force-mute flags on the bridge in line (only changes are sent); members force-
        muted because a media type was just enabled are told, with the actor, as upstream."""
        change = self.av_state.apply(message)
        log.info("conference %s: A/V moderation %s by %s: %s", self.room_jid,
                 "updated" if change.changed else "unchanged", message.actor or "the component",
                 self.av_state.summary())
        if not change.changed:
            return
        self.persist()
        forced = self._apply_force_mutes()
        actor = _jid_or_none(message.actor)
        for media in change.enabled:
            for participant in self.participants.values():
                if participant.occupant_jid is None:
                    continue
                if not self.av_moderation.allowed_to_unmute(participant.endpoint_id, media):
                    self._notify_muted(participant, media, actor)
        if forced:
            log.info("conference %s: bridge force-mute changed for %s", self.room_jid,
                     ", ".join(forced))

    def _apply_force_mutes(self) -> list[str]:
        changed = []
        for participant in self.participants.values():
            change = self._apply_force_mute(participant)
            if change is not None:
                changed.append(change)
        return changed

    def _apply_force_mute(self, participant: Participant) -> str | None:
        """Bring one member's bridge force-mute flags in line with A/V moderation; what changed."""
        colibri = participant.colibri
        if colibri is None:
            return None
        audio, video = self.force_mute_flags(participant.endpoint_id)
        sent_audio = colibri.set_force_mute(participant.endpoint_id, "audio", audio)
        sent_video = colibri.set_force_mute(participant.endpoint_id, "video", video)
        if not (sent_audio or sent_video):
            return None
        return f"{participant.endpoint_id} (audio={audio}, video={video})"

    def _notify_muted(self, participant: Participant, media: str, actor: JID | None) -> None:
        if self._nursery is None:
            return
        client = self.services.client
        iq = client.iq("set", participant.occupant_jid, MuteIQ(media, True, actor=actor).to_element())

        async def send() -> None:
            try:
                await client.send(iq)  # the client never answers it (docs/client.md §4.1)
            except NotConnected as exc:
                log.info("conference %s: mute notice to %s not sent: %s", self.room_jid,
                         participant.endpoint_id, exc)

        self._nursery.start_soon(send)

    def handle_room_metadata(self, message: RoomMetadataMessage) -> None:
        """A room_metadata component message for this room: kept whole (the latest wins); its
        startMuted applies to members invited from now on, the rest waits for the features
        that use it (visitors, transcription)."""
        self.room_metadata = message.metadata
        self.room_metadata_received.set()
        metadata = message.metadata
        log.info("conference %s: room metadata (startMuted audio=%s video=%s, %s moderator(s), "
                 "%s participant(s) listed, visitorsEnabled=%s, participantsSoftLimit=%s)",
                 self.room_jid, metadata.start_muted_audio, metadata.start_muted_video,
                 "no" if metadata.moderators is None else len(metadata.moderators),
                 "no" if metadata.participants is None else len(metadata.participants),
                 metadata.visitors_enabled, metadata.participants_soft_limit)

    # ----- mute requests ------------------------------------------------------------------------

    def _mute_member(self, nick: str | None) -> MuteMember | None:
        participant = self.participants.get(nick) if nick is not None else None
        if participant is None:
            return None
        occupant = participant.occupant
        features = participant.presence.features
        gateway = is_gateway_member(occupant, features, self.services.config.xmpp.trusted_domains)
        return MuteMember(
            nick=participant.endpoint_id,
            moderator=occupant.role == "moderator" or occupant.affiliation in ("owner", "admin"),
            visitor=occupant.role == "visitor",
            jibri=gateway == FEATURE_JIBRI,
            jigasi=gateway == FEATURE_JIGASI,
            audio_mute_support=participant.features is not None
            and FEATURE_AUDIO_MUTE in participant.features,
        )

    def handle_mute(self, muter: str | None, target: JID, mute: bool, media: str) -> MuteDecision:
        """A member (`muter`, its nick) asks to (un)mute `target` (an occupant JID). Decides
        (mute.py) and, on success, sets the target's force-mute state on its bridge."""
        target_nick = target.resource if target.bare == self.room_jid else None
        decision = decide_mute(self._mute_member(muter), self._mute_member(target_nick), mute, media,
                               self.av_moderation)
        what = f"{'mute' if mute else 'unmute'} {media} of {target_nick or target}"
        if decision.result is not MuteResult.SUCCESS:
            log.info("conference %s: %s asked to %s: %s (%s)", self.room_jid, muter, what,
                     decision.result.value, decision.reason)
            return decision
        participant = self.participants[target_nick or ""]
        sent = False
        if participant.colibri is not None and decision.bridge_media is not None:
            sent = participant.colibri.set_force_mute(participant.endpoint_id, decision.bridge_media,
                                                      decision.bridge_force_mute)
        log.info("conference %s: %s asked to %s: done (bridge force-mute %s=%s%s)", self.room_jid,
                 muter, what, decision.bridge_media, decision.bridge_force_mute,
                 ", sent" if sent else ", unchanged")
        return decision

    # ----- Jingle routing -----------------------------------------------------------------------

    def route_jingle(self, nick: str, iq: Element) -> bool:
        participant = self.participants.get(nick)
        if participant is None:
            return False
        return participant.post(JingleRequest(iq))

    # ----- sources --------------------------------------------------------------------------------

    def add_sources(self, participant: Participant, sources: EndpointSourceSet) -> None:
        if not sources:
            return
        self.sources.add(participant.endpoint_id, sources)
        self._sources_changed(participant.endpoint_id)

    def remove_sources(self, participant: Participant, sources: EndpointSourceSet) -> None:
        if not sources:
            return
        self.sources.remove(participant.endpoint_id, sources)
        self._sources_changed(participant.endpoint_id)

    def _sources_changed(self, owner: str) -> None:
        for other in self.participants.values():
            if other.endpoint_id != owner:
                other.sources_changed()

    # ----- bridges (bridges.py) ----------------------------------------------------------------

    async def colibri_session_for(self, participant: Participant) -> ColibriSession | None:
        """The Colibri2 session on the bridge chosen for `participant`, started if new; None when
        no bridge can be used (the focus presence then says bridgeNotAvailable)."""
        return await self.bridges.session_for(participant)

    def endpoint_released(self, participant: Participant, session: ColibriSession) -> None:
        """A participant's endpoint left `session`; the last one out expires the conference there."""
        self.bridges.endpoint_released(participant, session)

    def colibri_failed(self, session: ColibriSession, failure: ColibriFailure,
                       endpoint_id: str | None = None) -> None:
        """A Colibri2 request failed: the bridge side decides what moves."""
        self.bridges.failed(session, failure, endpoint_id)

    def bridge_event(self, event: BridgeEvent) -> None:
        """From the brewery (synchronous): see ConferenceBridges.bridge_event."""
        self.bridges.bridge_event(event)

    # ----- moving endpoints (move-endpoints API, load redistribution) --------------------------

    def endpoints_on(self, bridge: Bridge) -> list[str]:
        return self.bridges.endpoints_on(bridge)

    def move_endpoint(self, endpoint_id: str, bridge: Bridge | None = None) -> bool:
        """Re-invite one member (with the configured re-invite method) so that bridge selection
        runs again for it; False when it has no endpoint (on `bridge`, if given). Where it lands
        is the strategy's choice, as upstream: without cascading, a conference stays on its
        bridge unless the whole conference moves."""
        participant = self.participants.get(endpoint_id)
        if participant is None or participant.colibri is None:
            return False
        if bridge is not None and participant.colibri.bridge is not bridge:
            return False
        self.stats.participants_moved += 1
        return participant.post(Reinvite(f"moved off {participant.colibri.bridge.nickname} by request"))

    # ----- introspection --------------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {
            "room": str(self.room_jid),
            "meeting_id": self.meeting_id,
            "participants": {
                p.endpoint_id: {
                    "bridge": p.colibri.bridge.nickname if p.colibri else None,
                    "session": p.session.state.value if p.session else None,
                    "sources": len(p.sources.sources),
                }
                for p in self.participants.values()
            },
            "bridges": [s.bridge.nickname for s in self.colibri_sessions.values()],
            "cascade": self.cascade.to_json(),
            "bridge_not_available": self.bridges.bridge_not_available,
            "av_moderation": self.av_state.to_json(),
            "room_metadata": self.room_metadata.to_json() if self.room_metadata is not None else None,
            "jibri": self.jibri.to_json() if self.jibri is not None else None,
        }


def _jid_or_none(value: str | None) -> JID | None:
    if value is None:
        return None
    try:
        return JID.parse(value)
    except InvalidJID:
        return None


def _limit(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None

