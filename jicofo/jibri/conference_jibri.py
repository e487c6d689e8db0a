"""A conference's Jibri requests (upstream's BaseJibri, JibriRecorder, JibriSipGateway): at most one
recording or live stream, any number of SIP calls (keyed by SIP address), and what the focus
publishes about them in the room.

Member requests (`<jibri action=…>` from an occupant JID, in arrival order per conference):

* recording/streaming when there is no `sipaddress`, SIP otherwise; the kind must have a
  brewery configured, and the sender must be a member (else `item-not-found`, as upstream when no
  conference accepts the IQ); a member that is not a moderator is refused `not-allowed`
  (`forbidden` when its role is unknown);
* `start`: `unexpected-request` if a session of that kind (that SIP address) exists; streaming
  needs a stream id and a file recording must not have one (`bad-request`); then the session
  starts (session.py): `resource-constraint` all busy, `service-unavailable` none connected,
  `internal-server-error` when every attempt failed; otherwise the answer carries the session id;
* `stop`: `item-not-found` without such a session; else the session stops (OFF published) and the
  answer is an empty result; no action: `bad-request`.

Presence: `<jibri-recording-status status session_id recording_mode initiator failure_reason>`
(initiator: the starter for ON, the stopper for OFF) and one `<jibri-sip-call-state>` per SIP
address (the last `SIP_STATES_KEPT` ended ones stay, so a client sees how a call ended)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import trio

from jicofo.config.model import JibriConfig
from jicofo.xmlns.jibri import (
    Action,
    FailureReason,
    JibriIQ,
    RecordingMode,
    Status,
    recording_status,
    sip_call_state,
)
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID

from .detector import JibriDetector
from .session import AllBusy, JibriLink, JibriSession, NotAvailable, SessionKind, StartError, StartParams
from .stats import JibriStats

log = logging.getLogger(__name__)

SIP_STATES_KEPT = 8


@dataclass
class JibriServices:
    """What every conference's Jibri handling shares; built by the app."""

    config: JibriConfig
    reply_timeout: float
    link: JibriLink
    recorders: JibriDetector | None = None
    sip: JibriDetector | None = None
    stats: JibriStats = field(default_factory=JibriStats)


class ConferenceJibri:
    def __init__(self, services: JibriServices, room: JID, nursery: trio.Nursery, *,
                 presence_changed: Callable[[], None], rtcstats_enabled: bool = True) -> None:
        self.services = services
        self.room = room.bare
        self.nursery = nursery
        self.presence_changed = presence_changed
        self.rtcstats_enabled = rtcstats_enabled
        self.recording: JibriSession | None = None
        self.sip_sessions: dict[str, JibriSession] = {}
        self._recording_status: Element | None = None
        self._sip_states: dict[str, Element] = {}
        self._lock = trio.Lock()  # member requests one at a time, as upstream's queue

    # ----- what the focus shows -----------------------------------------------------------------

    def presence_extensions(self) -> list[Element]:
        extensions = [self._recording_status] if self._recording_status is not None else []
        return extensions + list(self._sip_states.values())

    def sessions(self) -> list[JibriSession]:
        return ([self.recording] if self.recording is not None else []) + list(self.sip_sessions.values())

    def session_of(self, jibri: JID) -> JibriSession | None:
        """The live session whose current instance is `jibri` (status IQs from it)."""
        return next((s for s in self.sessions() if s.current == jibri and not s.ended), None)

    # ----- requests -----------------------------------------------------------------------------

    async def handle_member_request(self, sender: JID, request: JibriIQ, *, member: bool,
                                    moderator: bool | None) -> JibriIQ | None:
        """Answer a member's request: the result payload (None: empty), or raise StanzaError."""
        sip = request.sip_address is not None
        detector = self.services.sip if sip else self.services.recorders
        if detector is None or not member:
            raise StanzaError("item-not-found", None)
        if moderator is None:
            raise StanzaError("forbidden", None)
        if not moderator:
            log.info("conference %s: jibri request from %s refused: not a moderator", self.room,
                     sender.resource)
            raise StanzaError("not-allowed", None)
        async with self._lock:
            session = self.sip_sessions.get(request.sip_address or "") if sip else self.recording
            if request.action is Action.START:
                if session is not None:
                    raise StanzaError("unexpected-request", "Recording or live streaming is already enabled"
                                      if not sip else "a call to this SIP address is already on")
                return await self._start(sender, request, detector)
            if request.action is Action.STOP:
                if session is None:
                    raise StanzaError("item-not-found", "Unknown session")
                session.stop(sender)
                return None
            raise StanzaError("bad-request", "undefined action")

    async def _start(self, sender: JID, request: JibriIQ, detector: JibriDetector) -> JibriIQ:
        sip = request.sip_address is not None
        if not sip:
            if request.stream_id is None and request.recording_mode is not RecordingMode.FILE:
                raise StanzaError("bad-request", "Stream ID is empty or undefined")
            if request.stream_id is not None and request.recording_mode is RecordingMode.FILE:
                raise StanzaError("bad-request", "Stream ID is provided for a FILE recording.")
        params = StartParams(
            room=self.room, initiator=sender, stream_id=None if sip else request.stream_id,
            youtube_broadcast_id=request.youtube_broadcast_id, sip_address=request.sip_address,
            display_name=request.display_name, app_data=request.app_data,
            rtcstats_enabled=self.rtcstats_enabled,
        )
        config = self.services.config
        session = JibriSession(
            params, str(uuid.uuid4()), detector=detector, link=self.services.link, nursery=self.nursery,
            on_state=self._session_state, pending_timeout=config.pending_timeout,
            num_retries=config.num_retries, reply_timeout=self.services.reply_timeout,
        )
        if sip:
            assert request.sip_address is not None
            self.sip_sessions[request.sip_address] = session
        else:
            self.recording = session
        stats = self.services.stats
        try:
            await session.start()
        except StartError as exc:
            self._forget(session)
            stats.session_failed(session.kind)
            if isinstance(exc, AllBusy | NotAvailable):
                stats.no_instance_failures += 1
            log.info("conference %s: %s for %s refused: %s", self.room, session.kind.value,
                     sender.resource, exc.text)
            raise StanzaError(exc.condition, exc.text) from None
        log.info("conference %s: %s session %s started by %s", self.room, session.kind.value,
                 session.session_id, sender.resource)
        return JibriIQ(session_id=session.session_id)

    def handle_jibri_status(self, session: JibriSession, jibri: JID, update: JibriIQ) -> None:
        session.handle_status(jibri, update)

    # ----- session state -> presence ------------------------------------------------------------

    def _session_state(self, session: JibriSession, status: Status, failure: FailureReason | None) -> None:
        if failure is not None:
            self.services.stats.session_failed(session.kind)
        if session.kind is SessionKind.SIP_CALL:
            address = session.params.sip_address or ""
            if self.sip_sessions.get(address) is not session:
                return
            self._sip_states.pop(address, None)
            self._sip_states[address] = sip_call_state(status, address, session.session_id, failure)
            if status is Status.OFF:
                del self.sip_sessions[address]
                ended = [a for a in self._sip_states if a not in self.sip_sessions]
                for old in ended[:-SIP_STATES_KEPT]:
                    del self._sip_states[old]
        else:
            if self.recording is not session:
                return
            initiator = session.params.initiator if status is Status.ON else session.terminator
            self._recording_status = recording_status(
                status, session.session_id, mode=session.mode,
                initiator=str(initiator) if initiator is not None else None, failure=failure)
            if status is Status.OFF:
                self.recording = None
        log.info("conference %s: %s %s: %s%s", self.room, session.kind.value, session.session_id,
                 status.value, f" ({failure.value})" if failure else "")
        self.presence_changed()

    def _forget(self, session: JibriSession) -> None:
        if self.recording is session:
            self.recording = None
        address = session.params.sip_address
        if address is not None and self.sip_sessions.get(address) is session:
            del self.sip_sessions[address]

    def to_json(self) -> dict[str, object]:
        return {
            "sessions": [{"session_id": s.session_id, "kind": s.kind.value,
                          "status": s.status.value if s.status else None,
                          "jibri": str(s.current) if s.current else None, "retries": s.retries,
                          "sip_address": s.params.sip_address}
                         for s in self.sessions()],
        }

    def shutdown(self) -> None:
        """The conference ends: every session stops (nothing more is published)."""
        sessions = self.sessions()
        self.recording = None
        self.sip_sessions.clear()
        for session in sessions:
            session.stop(None)
