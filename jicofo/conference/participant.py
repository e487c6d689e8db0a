"""One conference member and its Jingle session, served by one task from its own inbox.

The participant task does, in order, whatever arrives in its inbox: an invite (choose a bridge,
allocate on it, send session-initiate), the member's Jingle requests (session-accept, source
changes, transport-info, terminate, session-info), a re-invite after a bridge failure, or a
terminate ordered by the conference. Remote-source signaling runs beside it: when the others'
sources change the participant is marked dirty and a small loop sends one source-remove and one
source-add bringing the member from what it was told to what it should know.
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol
from xml.etree.ElementTree import Element

import trio

from jicofo.bridge.colibri import Allocation, ColibriFailure, ColibriSession, EndpointRequest
from jicofo.config.model import ReinviteMethod
from jicofo.logs import log_context
from jicofo.model.sources import (
    BRIDGE_OWNER,
    ConferenceSourceMap,
    EndpointSourceSet,
    MediaType,
    SourceValidationError,
    diff,
)
from jicofo.model.sources_jingle import source_contents, sources_from_contents
from jicofo.model.sources_json import decode_json, encode_json
from jicofo.xmlns.ice_udp import IceUdpTransport
from jicofo.xmlns.jingle import (
    Action,
    BridgeSession,
    JingleContent,
    JingleIQ,
    Reason,
    RtpDescription,
    unknown_session,
)
from jicofo.xmlns.presence_ext import MemberPresence
from jicofo.xmpp.containment import contain_stanza
from jicofo.xmpp.errors import IQTimeout, NotConnected, StanzaError, StanzaTooLarge, XMPPError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import Occupant

from .offer import (
    FEATURE_AUDIO,
    FEATURE_SCTP,
    FEATURE_VIDEO,
    OfferOptions,
    audio_description,
    build_offer,
    video_description,
)
from .sources import sources_for_receiver, validate_add, validate_remove

if TYPE_CHECKING:
    from jicofo.stats import FocusStats
    from jicofo.xmlns.jingle import StartMuted

    from .services import ConferenceServices
    from .sources import SourceLimits

log = logging.getLogger(__name__)

FEATURE_SSRC_REWRITING = "http://jitsi.org/ssrc-rewriting-1"
# What we assume a member supports when its features cannot be discovered: a browser client
# without the optional extras. Choosing audio+video+data keeps a call usable.
DEFAULT_FEATURES = frozenset({FEATURE_AUDIO, FEATURE_VIDEO, FEATURE_SCTP})
INBOX_SIZE = 500
_OLD_SIDS_KEPT = 8


class SessionState(enum.Enum):
    PENDING = "pending"  # session-initiate sent, waiting for session-accept
    ACTIVE = "active"
    ENDED = "ended"


@dataclass
class JingleSession:
    sid: str
    colibri: ColibriSession
    options: OfferOptions
    state: SessionState = SessionState.PENDING
    ice_generation: int = 0  # of the last in-place ICE restart relayed to the client


# ----- inbox messages -------------------------------------------------------------------------


@dataclass(frozen=True)
class Invite:
    reason: str = "invite"


@dataclass(frozen=True)
class Reinvite:
    """Move the member: end its session (telling the client) and invite it again."""

    reason: str


@dataclass(frozen=True)
class JingleRequest:
    iq: Element


@dataclass(frozen=True)
class Terminate:
    """End the session (e.g. the single-participant timeout); the member stays in the room."""

    condition: str
    text: str


@dataclass(frozen=True)
class IceRestartAnswer:
    """The bridge's answer to an in-place ICE restart asked for session `sid` on `colibri`: its
    ICE transport (None: refused), or the failure of the request."""

    sid: str
    colibri: ColibriSession
    transport: IceUdpTransport | None
    failure: ColibriFailure | None = None


InboxMessage = Invite | Reinvite | JingleRequest | Terminate | IceRestartAnswer


class ConferenceHost(Protocol):
    """What a participant may ask of its conference (conference.py provides it; the participant
    never sees the rest): the shared services, the conference's source map and limits, its
    bridges, and where to report what changed."""

    services: ConferenceServices
    room_jid: JID
    sources: ConferenceSourceMap
    source_limits: SourceLimits

    @property
    def stats(self) -> FocusStats: ...

    def member_count(self) -> int: ...

    def has_member(self, endpoint_id: str) -> bool: ...

    async def colibri_session_for(self, participant: Participant) -> ColibriSession | None: ...

    def endpoint_released(self, participant: Participant, session: ColibriSession) -> None: ...

    def colibri_failed(self, session: ColibriSession, failure: ColibriFailure,
                       endpoint_id: str | None = None) -> None: ...

    def force_mute_flags(self, nick: str) -> tuple[bool, bool]: ...

    def start_muted_for(self, participant: Participant) -> StartMuted | None: ...

    def add_sources(self, participant: Participant, sources: EndpointSourceSet) -> None: ...

    def remove_sources(self, participant: Participant, sources: EndpointSourceSet) -> None: ...

    def persist(self, participant: Participant | None = None) -> None: ...


class RateLimiter:
    """Restart requests: at least `min_interval` apart and at most `max_requests` per `interval`."""

    def __init__(self, min_interval: float, max_requests: int, interval: float) -> None:
        self.min_interval = min_interval
        self.max_requests = max_requests
        self.interval = interval
        self._times: deque[float] = deque()

    def accept(self, now: float) -> bool:
        while self._times and now - self._times[0] > self.interval:
            self._times.popleft()
        if self._times and now - self._times[-1] < self.min_interval:
            return False
        if len(self._times) >= self.max_requests:
            return False
        self._times.append(now)
        return True


class Participant:
    def __init__(self, conference: ConferenceHost, occupant: Occupant) -> None:
        self.conference = conference
        self.endpoint_id = occupant.nick
        self.occupant = occupant
        self.occupant_jid: JID = conference.room_jid.with_resource(occupant.nick)
        self.presence = MemberPresence.from_element(occupant.presence)
        self.features: frozenset[str] | None = None
        self.session: JingleSession | None = None
        self.colibri: ColibriSession | None = None
        self.allocation: Allocation | None = None
        self.signaled = ConferenceSourceMap()
        self.waiting_for_bridge = False
        # Being moved to another bridge: its session is about to be replaced, and the new offer
        # carries everything, so source-add/remove for the old one would be wasted traffic.
        self.moving = False
        self.invited = False  # an invite was asked for (and not since ended by a terminate)
        self.joined_at = time.time()
        cfg = conference.services.config.conference.restart_request_rate_limits
        self.restart_limiter = RateLimiter(cfg.min_interval, cfg.max_requests, cfg.interval)
        # Upstream limits in-place ICE restarts separately, with the same settings.
        self.ice_restart_limiter = RateLimiter(cfg.min_interval, cfg.max_requests, cfg.interval)
        self._nursery: trio.Nursery | None = None
        self._old_sids: deque[str] = deque(maxlen=_OLD_SIDS_KEPT)
        self._send, self._inbox = trio.open_memory_channel[InboxMessage](INBOX_SIZE)
        self._sources_dirty = trio.Event()
        self.cancel_scope = trio.CancelScope()
        self.done = trio.Event()

    def __repr__(self) -> str:
        return f"<Participant {self.endpoint_id} in {self.conference.room_jid}>"

    @property
    def sources(self) -> EndpointSourceSet:
        return self.conference.sources.get(self.endpoint_id)

    @property
    def has_media_session(self) -> bool:
        return self.session is not None and self.session.state is not SessionState.ENDED

    # ----- called by the conference (synchronous; never blocks) ------------------------------

    def post(self, message: InboxMessage) -> bool:
        try:
            self._send.send_nowait(message)
            return True
        except trio.WouldBlock:
            log.error("%s: inbox full, dropping %s", self, type(message).__name__)
        except trio.ClosedResourceError:
            pass
        return False

    def sources_changed(self) -> None:
        self._sources_dirty.set()

    def update_presence(self, occupant: Occupant) -> None:
        self.occupant = occupant
        self.presence = MemberPresence.from_element(occupant.presence)

    # ----- the task ---------------------------------------------------------------------------

    async def run(self) -> None:
        with self.cancel_scope, log_context(endpoint=self.endpoint_id):
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._signal_sources_loop)
                    async for message in self._inbox:
                        await self._handle(message)
                        # Not kept while waiting for the next one: the last request's parsed
                        # stanza (a session-accept is ~35 KB of elements) would stay alive.
                        del message
            finally:
                self.done.set()

    async def _handle(self, message: InboxMessage) -> None:
        try:
            if isinstance(message, Invite):
                await self._invite(message.reason)
            elif isinstance(message, Reinvite):
                await self._reinvite(message.reason)
            elif isinstance(message, JingleRequest):
                await self._on_jingle(message.iq)
            elif isinstance(message, Terminate):
                await self.terminate(message.condition, message.text, send=True)
            elif isinstance(message, IceRestartAnswer):
                await self._ice_restart_answered(message)
        except NotConnected as exc:
            log.warning("%s: XMPP connection down while handling %s: %s",
                        self, type(message).__name__, exc)

    # ----- invite -----------------------------------------------------------------------------

    async def _discover_features(self) -> frozenset[str]:
        if self.features is not None:
            return self.features
        services = self.conference.services
        caps = self.occupant.presence.find("{http://jabber.org/protocol/caps}c")
        try:
            info = await services.client.query_disco_info(
                self.occupant_jid, caps, timeout=services.request_timeout
            )
            self.features = frozenset(info.features)
        except XMPPError as exc:
            log.info("%s: feature discovery failed (%s); assuming a basic client", self, exc)
            self.features = DEFAULT_FEATURES
        return self.features

    def _offer_options(self, features: frozenset[str]) -> OfferOptions:
        cfg = self.conference.services.config
        return OfferOptions.from_features(
            features,
            sctp_enabled=self.conference.services.sctp_enabled,
            json_sources_enabled=cfg.conference.use_json_encoded_sources,
        )

    def uses_ssrc_rewriting(self) -> bool:
        return (
            self.conference.services.config.conference.use_ssrc_rewriting
            and self.features is not None
            and FEATURE_SSRC_REWRITING in self.features
        )

    async def _invite(self, reason: str) -> None:
        if self.has_media_session:
            return
        self.invited = True
        features = await self._discover_features()
        options = self._offer_options(features)
        if not await self._allocate(options):
            return
        await self._send_offer(options, secrets.token_hex(8), reason, Action.SESSION_INITIATE)

    async def _allocate(self, options: OfferOptions) -> bool:
        """Choose a bridge and allocate this member's endpoint there (self.colibri/allocation)."""
        conference = self.conference
        colibri = await conference.colibri_session_for(self)
        if colibri is None:
            self.waiting_for_bridge = True
            log.warning("%s: no bridge available; waiting for one", self)
            return False
        self.waiting_for_bridge = False
        force_audio, force_video = conference.force_mute_flags(self.endpoint_id)
        request = EndpointRequest(
            endpoint_id=self.endpoint_id,
            stats_id=self.presence.stats_id,
            medias=self._medias(options),
            sctp=options.sctp,
            sources=self.sources,
            ssrc_rewriting=self.uses_ssrc_rewriting(),
            # A/V moderation: a member that may not unmute starts force-muted on the bridge.
            force_mute_audio=force_audio,
            force_mute_video=force_video,
        )
        try:
            allocation = await colibri.allocate(request)
        except ColibriFailure as exc:
            log.warning("%s: allocation on %s failed: %s", self, colibri.bridge.nickname, exc)
            conference.colibri_failed(colibri, exc, self.endpoint_id)
            return False
        except trio.Cancelled:
            # The member left while its endpoint was being allocated (the session expires it):
            # the last one out of a bridge releases that bridge.
            conference.endpoint_released(self, colibri)
            raise
        if self.cancel_scope.cancel_called or not conference.has_member(self.endpoint_id):
            colibri.expire_endpoint(self.endpoint_id)
            conference.endpoint_released(self, colibri)
            return False
        self.colibri = colibri
        self.allocation = allocation
        return True

    def _medias(self, options: OfferOptions) -> tuple[RtpDescription, ...]:
        offer_config = self.conference.services.offer_config
        medias = []
        if options.audio:
            medias.append(audio_description(offer_config, options))
        if options.video:
            medias.append(video_description(offer_config, options))
        return tuple(medias)

    async def _send_offer(self, options: OfferOptions, sid: str, reason: str, action: Action) -> None:
        """session-initiate (or transport-replace on the current sid) with the allocation's
        transport and the sources this member should see."""
        conference = self.conference
        colibri, allocation = self.colibri, self.allocation
        assert colibri is not None and allocation is not None
        replacing = action is Action.TRANSPORT_REPLACE
        self.moving = False
        # A replaced transport keeps the session's accepted sources: it stays active.
        self.session = JingleSession(sid, colibri, options,
                                     SessionState.ACTIVE if replacing else SessionState.PENDING)
        signaled = self._desired_sources(options)
        log.info("%s: %s on bridge %s (%s), sid %s", self, action, colibri.bridge.nickname, reason, sid)
        conference.stats.jingle_sent(str(action))
        client = conference.services.client
        try:
            while True:
                offer = build_offer(
                    conference.services.offer_config,
                    options,
                    allocation.transport,
                    signaled,
                    sid=sid,
                    initiator=str(client.jid) if client.jid else None,
                    sctp_port=allocation.sctp_port or 5000,
                    bridge_session=BridgeSession(colibri.id, colibri.bridge.region),
                    start_muted=conference.start_muted_for(self) if not replacing else None,
                    action=action,
                )
                self.signaled = signaled
                conference.persist(self)
                try:
                    await client.request(client.iq("set", self.occupant_jid, offer.to_element()),
                                         timeout=conference.services.request_timeout)
                    break
                except StanzaTooLarge:
                    # Over the server's stanza limit (a very large conference): offer half the
                    # others' sources; the rest follow as source-adds once the session is up.
                    smaller = _first_half(signaled)
                    if smaller is None:
                        raise
                    log.info("%s: %s too large with %d endpoints' sources; offering %d", self,
                             action, len(signaled), len(smaller))
                    signaled = smaller
            if replacing:
                self._sources_dirty.set()
        except IQTimeout:
            log.info("%s: no answer to %s; treating it as delivered", self, action)
        except StanzaTooLarge as exc:  # even without the others' sources: nothing to offer
            log.error("%s: %s not sent: %s", self, action, exc)
            await self.terminate("general-error", "offer too large", send=False)
            self.invited = False
        except StanzaError as exc:
            log.warning("%s: %s refused: %s", self, action, exc)
            await self.terminate("general-error", "jingle session failed", send=True)
            self.invited = False
            if replacing:
                # A move must not strand the member: offer a new session instead (a refused
                # session-initiate is not retried, as upstream).
                self.post(Invite(f"{reason}; transport-replace refused"))

    def _desired_sources(self, options: OfferOptions | None = None) -> ConferenceSourceMap:
        """What this member should know: the bridge's feedback sources and the others' sources,
        filtered for what it receives."""
        options = options or (self.session.options if self.session else None)
        media_types = []
        if options is None or options.audio:
            media_types.append(MediaType.AUDIO)
        if options is None or options.video:
            media_types.append(MediaType.VIDEO)
        desired = sources_for_receiver(
            self.conference.sources,
            self.endpoint_id,
            media_types=media_types,
            strip_simulcast=self.conference.services.config.conference.strip_simulcast,
            ssrc_rewriting=self.uses_ssrc_rewriting(),
        )
        if self.allocation is not None and self.allocation.feedback_sources:
            desired.add(BRIDGE_OWNER, self.allocation.feedback_sources.only(media_types))
        return desired

    async def _reinvite(self, reason: str) -> None:
        log.info("%s: re-inviting (%s)", self, reason)
        method = self.conference.services.config.conference.reinvite_method
        session = self.session
        if method is ReinviteMethod.REPLACE_TRANSPORT and session is not None \
                and session.state is SessionState.ACTIVE:
            await self._replace_transport(session, reason)
            return
        await self.terminate("success", "moving", send=True, keep_invited=True)
        await self._invite(reason)

    async def _replace_transport(self, session: JingleSession, reason: str) -> None:
        """`reinvite-method = ReplaceTransport`: a new endpoint (on the bridge chosen now) and a
        transport-replace on the same session. The member's sources stay as they are for the
        others; the new bridge gets them with the allocation (and relays mirror them)."""
        if self.colibri is not None:
            self.colibri.expire_endpoint(self.endpoint_id)
            self.conference.endpoint_released(self, self.colibri)
        self.colibri = None
        self.allocation = None
        if not await self._allocate(session.options):
            # No new transport to give: end the session properly and invite again from scratch
            # (that waits for a bridge if none can be used now).
            await self.terminate("success", "moving", send=True, keep_invited=True)
            self.post(Invite(f"{reason}; the transport could not be replaced"))
            return
        await self._send_offer(session.options, session.sid, reason, Action.TRANSPORT_REPLACE)

    async def terminate(
        self, condition: str, text: str, *, send: bool, keep_invited: bool = False
    ) -> None:
        """End the Jingle session: optionally tell the client, drop the member's sources (the
        others get a source-remove), expire its endpoint on the bridge."""
        session = self.session
        if session is not None and session.state is not SessionState.ENDED:
            session.state = SessionState.ENDED
            self._old_sids.append(session.sid)
            if send:
                jingle = JingleIQ(Action.SESSION_TERMINATE, session.sid, reason=Reason(condition, text))
                self.conference.stats.jingle_sent("session-terminate")
                await self._send_quietly(jingle)
        self.session = None
        self.signaled = ConferenceSourceMap()
        if not keep_invited:
            self.invited = False
        self.conference.remove_sources(self, self.sources)
        if self.colibri is not None:
            self.colibri.expire_endpoint(self.endpoint_id)
            self.conference.endpoint_released(self, self.colibri)
        self.colibri = None
        self.allocation = None
        self.conference.persist(self)

    # ----- incoming Jingle --------------------------------------------------------------------

    async def _on_jingle(self, iq: Element) -> None:
        client = self.conference.services.client
        try:
            # Whatever goes wrong with one Jingle IQ refuses it alone (containment.py); a lost
            # connection is for _handle to report.
            with contain_stanza(iq, "Jingle IQ", keep=(NotConnected,)):
                payload = await self._process_jingle(iq)
        except StanzaError as err:
            await client.reply_error(iq, err)
            return
        await client.reply(iq, payload)

    async def _process_jingle(self, iq: Element) -> Element | None:
        body = iq.find("{urn:xmpp:jingle:1}jingle")
        assert body is not None  # the router only hands us Jingle IQs
        try:
            jingle = JingleIQ.from_element(body)
        except ValueError as exc:
            action = body.get("action", "")
            if action and action not in {a.value for a in Action} | {"addsource", "removesource"}:
                raise StanzaError("feature-not-implemented", f"unsupported action {action}") from None
            raise StanzaError("bad-request", str(exc)) from None
        self.conference.stats.jingle_received(str(jingle.action))
        session = self.session
        if session is None or jingle.sid != session.sid:
            if jingle.sid in self._old_sids:
                raise StanzaError("gone", "the session has ended")
            raise StanzaError("bad-request", f"unknown session {jingle.sid}", app_element=unknown_session())
        if session.state is SessionState.ENDED:
            raise StanzaError("gone", "the session has ended")
        handler = {
            Action.SESSION_ACCEPT: self._on_session_accept,
            Action.TRANSPORT_ACCEPT: self._on_transport_accept,
            Action.TRANSPORT_REJECT: self._on_transport_reject,
            Action.TRANSPORT_INFO: self._on_transport_info,
            Action.SOURCE_ADD: self._on_source_add,
            Action.SOURCE_REMOVE: self._on_source_remove,
            Action.SESSION_TERMINATE: self._on_session_terminate,
            Action.SESSION_INFO: self._on_session_info,
        }.get(jingle.action)
        if handler is None:
            raise StanzaError("feature-not-implemented", f"unsupported action {jingle.action}")
        await handler(session, jingle)
        return None

    def _sources_in(self, jingle: JingleIQ) -> EndpointSourceSet:
        try:
            if jingle.json_message:
                decoded = decode_json(jingle.json_message)
                return decoded.get(self.endpoint_id)
            return sources_from_contents(jingle.contents)
        except SourceValidationError:
            raise
        except ValueError as exc:
            raise SourceValidationError("bad-request", str(exc)) from None

    def _already_have(self, jingle: JingleIQ) -> bool:
        """Every source `jingle` carries is already this member's (a stanza redelivered after
        the focus restarted: handling it again would refuse the member's own sources)."""
        try:
            offered = self._sources_in(jingle)
        except SourceValidationError:
            return False
        own = self.sources.ssrcs
        return all(s.ssrc in own for s in offered.sources)

    @staticmethod
    def _transport_in(jingle: JingleIQ) -> IceUdpTransport | None:
        for content in jingle.contents:
            if content.transport is not None:
                return content.transport
        return None

    @staticmethod
    def _initial_last_n_in(jingle: JingleIQ) -> int | None:
        """lib-jitsi-meet puts `<initial-last-n>` in the video content of its answer."""
        for content in jingle.contents:
            video = content.name == "video" or (
                content.description is not None and content.description.media == "video")
            if video and content.initial_last_n is not None:
                return content.initial_last_n
        return None

    async def _on_session_accept(self, session: JingleSession, jingle: JingleIQ) -> None:
        if session.state is not SessionState.PENDING:
            if session.state is SessionState.ACTIVE and self._already_have(jingle):
                return  # redelivered after a restart of the focus: already handled
            raise StanzaError("bad-request", "session already accepted")
        try:
            accepted = self._sources_in(jingle)
            added = validate_add(self.conference.sources, self.endpoint_id, accepted,
                                 self.conference.source_limits)
        except SourceValidationError as err:
            session.state = SessionState.ENDED
            self._old_sids.append(session.sid)
            log.warning("%s: session-accept refused: %s", self, err)
            raise StanzaError(err.condition, str(err)) from None
        session.state = SessionState.ACTIVE
        transport = self._transport_in(jingle)
        if transport is not None and not transport.rtcp_mux:
            transport = replace(transport, rtcp_mux=True)
        self.conference.add_sources(self, added)
        session.colibri.update_endpoint(self.endpoint_id, transport=transport, sources=self.sources,
                                        initial_last_n=self._initial_last_n_in(jingle))
        self.conference.persist(self)
        log.info("%s: session accepted with %d source(s)", self, len(added.sources))
        # Anything that changed while the offer was out goes now.
        self._sources_dirty.set()

    async def _on_transport_accept(self, session: JingleSession, jingle: JingleIQ) -> None:
        """The answer to a transport-replace: processed like a session-accept (upstream does
        the same). Its sources are the member's complete set; those not known yet are validated
        and added, and the bridge gets the client's transport with the full set."""
        try:
            offered = self._sources_in(jingle)
            known = self.sources.ssrcs  # already accepted: not added again (groups: validate_add)
            fresh = EndpointSourceSet(tuple(s for s in offered.sources if s.ssrc not in known),
                                      offered.groups)
            added = validate_add(self.conference.sources, self.endpoint_id, fresh,
                                 self.conference.source_limits)
        except SourceValidationError as err:
            log.warning("%s: transport-accept refused: %s", self, err)
            raise StanzaError(err.condition, str(err)) from None
        transport = self._transport_in(jingle)
        if transport is not None and not transport.rtcp_mux:
            transport = replace(transport, rtcp_mux=True)
        if added:
            self.conference.add_sources(self, added)
        session.state = SessionState.ACTIVE
        session.colibri.update_endpoint(self.endpoint_id, transport=transport, sources=self.sources,
                                        initial_last_n=self._initial_last_n_in(jingle))
        self.conference.persist(self)
        log.info("%s: transport accepted (%d new source(s))", self, len(added.sources))
        self._sources_dirty.set()

    async def _on_transport_reject(self, session: JingleSession, jingle: JingleIQ) -> None:
        # Upstream only logs it: the session stays as it is.
        log.info("%s: the client rejected the transport on bridge %s", self, session.colibri.bridge.nickname)

    async def _on_transport_info(self, session: JingleSession, jingle: JingleIQ) -> None:
        transport = self._transport_in(jingle)
        if transport is None:
            raise StanzaError("bad-request", "no transport")
        if session.state is not SessionState.ACTIVE:
            log.info("%s: transport-info before session-accept; forwarding it anyway", self)
        session.colibri.update_endpoint(self.endpoint_id, transport=transport)

    async def _on_source_add(self, session: JingleSession, jingle: JingleIQ) -> None:
        try:
            wanted = self._sources_in(jingle)
            if not wanted or self._already_have(jingle):
                return  # nothing, or redelivered after a restart of the focus
            added = validate_add(self.conference.sources, self.endpoint_id, wanted,
                                 self.conference.source_limits)
        except SourceValidationError as err:
            raise StanzaError(err.condition, str(err)) from None
        self.conference.add_sources(self, added)
        self.conference.persist(self)
        session.colibri.update_endpoint(self.endpoint_id, sources=self.sources)

    async def _on_source_remove(self, session: JingleSession, jingle: JingleIQ) -> None:
        try:
            unwanted = self._sources_in(jingle)
            own = self.sources.ssrcs
            if not unwanted or not any(s.ssrc in own for s in unwanted.sources):
                return  # nothing, or redelivered after a restart of the focus
            removed = validate_remove(self.conference.sources, self.endpoint_id, unwanted)
        except SourceValidationError as err:
            raise StanzaError(err.condition, str(err)) from None
        self.conference.remove_sources(self, removed)
        self.conference.persist(self)
        session.colibri.update_endpoint(self.endpoint_id, sources=self.sources)

    async def _on_session_terminate(self, session: JingleSession, jingle: JingleIQ) -> None:
        restart = jingle.bridge_session is not None and jingle.bridge_session.restart
        if restart:
            assert jingle.bridge_session is not None
            if jingle.bridge_session.id != session.colibri.id:
                raise StanzaError("item-not-found", "unknown bridge session")
            self.conference.services.brewery_note_restart(session.colibri.bridge)
            self.conference.stats.participants_restart_requested += 1
            await self.terminate("success", "restart requested", send=False, keep_invited=True)
            if not self.restart_limiter.accept(trio.current_time()):
                self.invited = False
                log.warning("%s: restart request refused by the rate limit", self)
                raise StanzaError("resource-constraint", "rate-limited")
            log.info("%s: client asked for a restart", self)
            self.post(Invite("client restart request"))
            return
        log.info("%s: client ended its session (%s)", self,
                 jingle.reason.condition if jingle.reason else "no reason")
        await self.terminate("success", "terminated by the client", send=False)

    async def _on_session_info(self, session: JingleSession, jingle: JingleIQ) -> None:
        if jingle.bridge_session is not None and jingle.bridge_session.ice_restart:
            self._on_ice_restart_request(session, jingle.bridge_session)
            return
        if jingle.ice_state != "failed" or jingle.bridge_session is None:
            return
        if jingle.bridge_session.id != session.colibri.id:
            log.info("%s: ICE failure report for an old bridge session; ignored", self)
            return
        self.conference.services.brewery_note_restart(session.colibri.bridge)
        self.conference.stats.participants_ice_failed += 1
        log.info("%s: client reports ICE failure on %s", self, session.colibri.bridge.nickname)
        self.post(Reinvite("ICE failed"))

    # ----- in-place ICE restart ----------------------------------------------------------------

    def _on_ice_restart_request(self, session: JingleSession, bridge_session: BridgeSession) -> None:
        """session-info with `<bridge-session ice-restart='true'>` (docs/client.md §3.7), checked
        in upstream's order. Accepted, it is answered `result` at once; the bridge's answer comes
        back through the inbox (_ice_restart_answered)."""
        if not self.conference.services.config.conference.enable_ice_restart:
            raise StanzaError("feature-not-implemented", "in-place ICE restart is disabled")
        if not self.ice_restart_limiter.accept(trio.current_time()):
            log.warning("%s: ICE restart request refused by the rate limit", self)
            raise StanzaError("resource-constraint", "rate-limited")
        if bridge_session.id != session.colibri.id:
            raise StanzaError("item-not-found", "unknown bridge session")
        assert self._nursery is not None
        self.conference.stats.ice_restarts_requested += 1
        log.info("%s: client asks for an in-place ICE restart on %s", self, session.colibri.bridge.nickname)
        self._nursery.start_soon(self._restart_ice, session.sid, session.colibri)

    async def _restart_ice(self, sid: str, colibri: ColibriSession) -> None:
        """Beside the inbox loop, so that the member's other Jingle work goes on meanwhile."""
        failure: ColibriFailure | None = None
        transport: IceUdpTransport | None = None
        # The request has its own deadline once sent; this one also bounds its wait in the queue.
        with trio.move_on_after(2 * self.conference.services.colibri_timeout) as waited:
            try:
                transport = await colibri.restart_ice(self.endpoint_id, self.presence.stats_id)
            except ColibriFailure as exc:
                failure = exc
        if waited.cancelled_caught:
            failure = ColibriFailure("ICE restart not answered in time", session_lost=False)
        self.post(IceRestartAnswer(sid, colibri, transport, failure))

    async def _ice_restart_answered(self, answer: IceRestartAnswer) -> None:
        """Relay the bridge's new credentials in a transport-info; fall back to a re-invite
        when the bridge refused or the request failed (docs/jicofo.md #39)."""
        stats = self.conference.stats
        session = self.session
        if session is None or session.sid != answer.sid or session.state is SessionState.ENDED \
                or session.colibri is not answer.colibri:
            log.info("%s: ICE restart answer for a session that is gone; ignored", self)
            return
        bridge = answer.colibri.bridge.nickname
        if answer.failure is not None:
            stats.ice_restarts_failed += 1
            log.warning("%s: ICE restart on %s failed: %s", self, bridge, answer.failure)
            failure = answer.failure
            # The conference moves the member when the bridge lost it (or the whole session);
            # otherwise the member gets a new session here rather than waiting for its client.
            self.conference.colibri_failed(answer.colibri, failure, self.endpoint_id)
            if not (failure.session_lost or failure.unknown_endpoint):
                self.post(Reinvite("ICE restart failed"))
            return
        transport = answer.transport
        if transport is None:
            stats.ice_restarts_failed += 1
            log.info("%s: bridge %s refused the ICE restart; re-inviting", self, bridge)
            self.post(Reinvite("ICE restart refused by the bridge"))
            return
        generation = transport.ice_generation
        if generation is None:
            stats.ice_restarts_not_needed += 1
            log.info("%s: bridge %s kept its ICE session; nothing to relay", self, bridge)
            return
        if generation <= session.ice_generation:
            log.info("%s: ICE restart answer of generation %d after %d; dropped", self, generation,
                     session.ice_generation)
            return
        session.ice_generation = generation
        options = session.options
        name = "audio" if options.audio else "video" if options.video else "data"
        jingle = JingleIQ(Action.TRANSPORT_INFO, session.sid,
                          contents=(JingleContent(name, "initiator", None, transport=transport),))
        stats.jingle_sent(str(Action.TRANSPORT_INFO))
        await self._send_quietly(jingle)
        stats.ice_restarts_relayed += 1
        log.info("%s: ICE restart on %s relayed (generation %d)", self, bridge, generation)

    # ----- remote-source signaling ------------------------------------------------------------

    async def _signal_sources_loop(self) -> None:
        while True:
            await self._sources_dirty.wait()
            delay = self.conference.services.config.conference.source_signaling_delay(
                self.conference.member_count()
            )
            if delay > 0:
                await trio.sleep(delay)
            self._sources_dirty = trio.Event()
            await self._flush_sources()

    async def _flush_sources(self) -> None:
        session = self.session
        if session is None or session.state is not SessionState.ACTIVE or self.moving:
            return  # queued: sent once the session is accepted (or with the new offer)
        desired = self._desired_sources()
        change = diff(self.signaled, desired)
        self.signaled = desired
        if change.remove or change.add:
            self.conference.persist(self)
        for action, sources in ((Action.SOURCE_REMOVE, change.remove), (Action.SOURCE_ADD, change.add)):
            if sources:
                await self._signal(session, action, sources)

    async def _signal(self, session: JingleSession, action: Action,
                      sources: ConferenceSourceMap) -> None:
        """One source-add / source-remove; split by endpoint while it is over the server's
        stanza limit."""
        if session.options.json_sources:
            jingle = JingleIQ(action, session.sid, json_message=encode_json(sources))
        else:
            jingle = JingleIQ(action, session.sid, contents=source_contents(sources))
        try:
            await self._send_quietly(jingle)
        except StanzaTooLarge as exc:
            first = _first_half(sources)
            if first is None:
                log.error("%s: %s not sent: %s", self, action, exc)
                return
            await self._signal(session, action, first)
            await self._signal(session, action, sources.difference(first))
            return
        self.conference.stats.jingle_sent(str(action))

    def forget_sources_of(self, owner: str) -> None:
        """A member left: clients learn that from presence, so nothing is sent; we only stop
        counting its sources as signaled."""
        if owner in self.signaled:
            self.signaled.remove_endpoint(owner)

    async def _send_quietly(self, jingle: JingleIQ) -> None:
        """Fire and forget (upstream does not wait for these answers either)."""
        client = self.conference.services.client
        try:
            await client.send(client.iq("set", self.occupant_jid, jingle.to_element()))
        except NotConnected as exc:
            log.info("%s: %s not sent: %s", self, jingle.action, exc)


def _first_half(sources: ConferenceSourceMap) -> ConferenceSourceMap | None:
    """The first half of the endpoints (the bridge's feedback sources stay in it), or None when
    there is nothing left to split."""
    owners = list(sources)
    if len(owners) < 2:
        return None
    owners.sort(key=lambda owner: owner != BRIDGE_OWNER)
    return ConferenceSourceMap({owner: sources.get(owner) for owner in owners[: len(owners) // 2]})
