"""One Jibri session: a recording, a live stream or a SIP call (upstream's JibriSession,
docs/jicofo.md §2.11), kept alive across Jibri instances.

States: None (not started) → PENDING → ON → OFF, OFF carrying a failure reason when it failed.

* `start()` selects an instance (none: `AllBusy` when some instance is in the brewery,
  `NotAvailable` when none is), sends it `start` and waits (reply timeout) for `pending`. A
  timeout (after which `stop` is sent to it, in case it starts late), an error, `off`+`busy` or any
  other status marks that instance failed (the detector skips it for a minute) and tries another,
  `num-retries` times at most (-1: no limit); then `InternalError`. The pending timeout is armed
  with each attempt.
* Status IQs from the current instance (`handle_status`; from any other instance they are
  ignored): `on` publishes ON; `off` without failure publishes OFF and ends the session; a failure
  with `should_retry` and retries left starts on another instance without publishing anything
  unless that fails, in which case the original failure is published; any other failure is
  published and ends the session. The instance that failed is skipped for a minute (ours: upstream
  may retry on the same one while its presence still says idle).
* The instance leaving the brewery, or the pending timeout (after sending it `stop`), count as
  `off`/`error` with `should_retry`.
* `stop(initiator)` sends `stop` without waiting for an answer, publishes OFF at once with the
  stopper as initiator, and ends the session; nothing that arrives later changes it.

Everything the session publishes goes through `on_state(session, status, failure)`. The session's
background work (retries, the pending timer, stop IQs) runs in the nursery it is given: the
conference's, so it ends with the conference."""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from jicofo.xmlns.jibri import Action, FailureReason, JibriIQ, JibriParseError, RecordingMode, Status
from jicofo.xmpp.errors import IQTimeout, XMPPError
from jicofo.xmpp.jid import JID

from .detector import JibriDetector

log = logging.getLogger(__name__)


class SessionKind(enum.Enum):
    RECORDING = "recording"
    LIVE_STREAMING = "live_streaming"
    SIP_CALL = "sip_call"


class StartError(Exception):
    condition = "internal-server-error"
    text = "internal server error"

    def __init__(self) -> None:
        super().__init__(self.text)


class AllBusy(StartError):
    condition = "resource-constraint"
    text = "all Jibris are busy"


class NotAvailable(StartError):
    condition = "service-unavailable"
    text = "no Jibris available"


class InternalError(StartError):
    pass


class JibriLink(Protocol):
    """How a session talks to Jibri instances (an XMPP connection in the focus, a fake in tests)."""

    async def start(self, jibri: JID, request: JibriIQ, timeout: float) -> JibriIQ:
        """Send `start`; the answer's payload, or raise XMPPError / JibriParseError."""
        ...

    def stop(self, jibri: JID, session_id: str) -> None:
        """Send `stop` without waiting for an answer."""
        ...


@dataclass(frozen=True, slots=True)
class StartParams:
    room: JID
    initiator: JID
    stream_id: str | None = None
    youtube_broadcast_id: str | None = None
    sip_address: str | None = None
    display_name: str | None = None
    app_data: str | None = None
    rtcstats_enabled: bool = True


StateCallback = Callable[["JibriSession", Status, FailureReason | None], None]


class JibriSession:
    def __init__(
        self,
        params: StartParams,
        session_id: str,
        *,
        detector: JibriDetector,
        link: JibriLink,
        nursery: trio.Nursery,
        on_state: StateCallback,
        pending_timeout: float,
        num_retries: int,
        reply_timeout: float,
    ) -> None:
        self.params = params
        self.session_id = session_id
        self.detector = detector
        self.link = link
        self.nursery = nursery
        self.on_state = on_state
        self.pending_timeout = pending_timeout
        self.num_retries = num_retries
        self.reply_timeout = reply_timeout
        self.status: Status | None = None
        self.current: JID | None = None  # the instance in use (or being started)
        self.retries = 0
        self.terminator: JID | None = None
        self.ended = False
        self.instances_used: list[JID] = []
        self._pending_scope: trio.CancelScope | None = None
        self._attempt_scope: trio.CancelScope | None = None

    def __repr__(self) -> str:
        return f"<JibriSession {self.kind.value} {self.session_id} on {self.current}>"

    @property
    def kind(self) -> SessionKind:
        if self.params.sip_address:
            return SessionKind.SIP_CALL
        return SessionKind.LIVE_STREAMING if self.params.stream_id else SessionKind.RECORDING

    @property
    def mode(self) -> RecordingMode | None:
        if self.params.sip_address:
            return None
        return RecordingMode.STREAM if self.params.stream_id else RecordingMode.FILE

    @property
    def active(self) -> bool:
        return self.status is Status.ON and not self.ended

    # ----- starting ----------------------------------------------------------------------------

    async def start(self) -> None:
        """The first start (for the member's request). Raises StartError."""
        self.detector.add_offline_listener(self._instance_offline)
        try:
            with trio.CancelScope() as scope:
                self._attempt_scope = scope
                await self._start_attempts()
        except StartError:
            self._cleanup()
            raise
        finally:
            self._attempt_scope = None
        if scope.cancelled_caught and not self.ended:
            self._cleanup()
        if self.ended:  # stopped while starting
            raise InternalError()

    def _retries_exceeded(self) -> bool:
        return self.num_retries >= 0 and self.retries >= self.num_retries

    def _start_iq(self) -> JibriIQ:
        p = self.params
        return JibriIQ(
            # As upstream, a SIP call's start says recording_mode="file" too.
            action=Action.START, recording_mode=RecordingMode.STREAM if p.stream_id else RecordingMode.FILE,
            stream_id=p.stream_id,
            youtube_broadcast_id=p.youtube_broadcast_id if p.stream_id else None,
            sip_address=p.sip_address, display_name=p.display_name, session_id=self.session_id,
            app_data=p.app_data, room=str(p.room), rtcstats_enabled=p.rtcstats_enabled,
        )

    async def _start_attempts(self) -> None:
        while True:
            jid = self.detector.select()
            if jid is None:
                if self.detector.any_connected():
                    log.info("jibri session %s: all %s instances busy", self.session_id, self.detector.kind)
                    raise AllBusy()
                log.info("jibri session %s: no %s instance connected", self.session_id, self.detector.kind)
                raise NotAvailable()
            self.current = jid
            self.instances_used.append(jid)
            self._arm_pending_timeout()
            log.info("jibri session %s: starting %s on %s", self.session_id, self.kind.value, jid.resource)
            problem = await self._send_start(jid)
            if problem is None:
                self._handle(jid, Status.PENDING, None, None)
                return
            log.warning("jibri session %s: %s %s: %s", self.session_id, self.detector.kind,
                        jid.resource, problem)
            self._cancel_pending_timeout()
            self.detector.instance_failed(jid)
            self.current = None
            if self._retries_exceeded():
                raise InternalError()
            self.retries += 1

    async def _send_start(self, jid: JID) -> str | None:
        """None when the instance answered `pending`, else what went wrong."""
        try:
            answer = await self.link.start(jid, self._start_iq(), self.reply_timeout)
        except IQTimeout:
            self.link.stop(jid, self.session_id)  # in case it starts after all
            return "start timed out (stop sent)"
        except (XMPPError, JibriParseError) as exc:
            return f"start failed: {exc}"
        if answer.status is Status.OFF and answer.failure_reason is FailureReason.BUSY:
            return "busy"
        if answer.status is not Status.PENDING:
            return f"unexpected answer to start: status {answer.status and answer.status.value}"
        return None

    # ----- pending timeout ---------------------------------------------------------------------

    def _arm_pending_timeout(self) -> None:
        self._cancel_pending_timeout()
        if self.pending_timeout > 0:
            scope = self._pending_scope = trio.CancelScope()
            self._spawn(self._pending_timer, scope)

    def _cancel_pending_timeout(self) -> None:
        if self._pending_scope is not None:
            self._pending_scope.cancel()
            self._pending_scope = None

    async def _pending_timer(self, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(self.pending_timeout)
            if scope is self._pending_scope:
                self._pending_scope = None
            if self.ended or self.current is None or self.status not in (None, Status.PENDING):
                return
            jid = self.current
            log.warning("jibri session %s: %s %s still pending after %.0f s: stopping it",
                        self.session_id, self.detector.kind, jid.resource, self.pending_timeout)
            self.link.stop(jid, self.session_id)
            if self._attempt_scope is not None:
                # Still waiting for its answer to start: give up on it, try another one.
                self._attempt_scope.cancel()
            self._handle(jid, Status.OFF, FailureReason.ERROR, True)

    # ----- updates from the Jibri --------------------------------------------------------------

    def handle_status(self, jibri: JID, update: JibriIQ) -> None:
        """A `<jibri status=…>` IQ from `jibri` (already known to be this session's)."""
        if update.status is None:
            log.warning("jibri session %s: status IQ from %s without a status", self.session_id,
                        jibri.resource)
            return
        self._handle(jibri, update.status, update.failure_reason, update.should_retry)

    def _instance_offline(self, jid: JID) -> None:
        if jid == self.current and not self.ended:
            log.warning("jibri session %s: %s %s left the brewery", self.session_id, self.detector.kind,
                        jid.resource)
            self._handle(jid, Status.OFF, FailureReason.ERROR, True)

    def _handle(self, jibri: JID, status: Status, failure: FailureReason | None,
                should_retry: bool | None) -> None:
        if self.ended or self.current is None:
            log.info("jibri session %s: status %s from %s after the session ended: ignored",
                     self.session_id, status.value, jibri.resource)
            return
        if jibri != self.current:
            log.info("jibri session %s: status %s from %s, not the current instance: ignored",
                     self.session_id, status.value, jibri.resource)
            return
        self.status = status
        if status is not Status.PENDING:
            self._cancel_pending_timeout()
        if failure is not None:
            if should_retry and not self._retries_exceeded():
                # Ours: the failed instance is skipped for a minute, so the retry goes elsewhere
                # (upstream may pick the same one again while its presence still says idle).
                self.detector.instance_failed(jibri)
                self.retries += 1
                log.info("jibri session %s: %s failed (%s); retrying on another instance (retry %d)",
                         self.session_id, jibri.resource, failure.value, self.retries)
                self.current = None
                if not self._spawn(self._retry, status, failure):
                    self._publish(status, failure)
                    self._cleanup()
                return
            log.info("jibri session %s: %s failed (%s)%s", self.session_id, jibri.resource, failure.value,
                     "" if should_retry else ", no retry asked" if should_retry is False
                     else ", should_retry not set: no retry")
            self._publish(status, failure)
            self._cleanup()
        elif status is Status.OFF:
            log.info("jibri session %s: ended by %s", self.session_id, jibri.resource)
            self._publish(Status.OFF, None)
            self._cleanup()
        elif status is Status.ON:
            log.info("jibri session %s: on (%s)", self.session_id, jibri.resource)
            self._publish(Status.ON, None)

    async def _retry(self, status: Status, failure: FailureReason) -> None:
        if self.ended:
            return
        try:
            with trio.CancelScope() as scope:
                self._attempt_scope = scope
                await self._start_attempts()
        except StartError as exc:
            log.warning("jibri session %s: no other instance could take over (%s): failed",
                        self.session_id, exc)
            if not self.ended:
                self._publish(status, failure)
                self._cleanup()
        finally:
            self._attempt_scope = None

    # ----- stopping ----------------------------------------------------------------------------

    def stop(self, initiator: JID | None) -> None:
        if self.ended:
            return
        self.terminator = initiator
        jid = self.current
        if self._attempt_scope is not None:
            self._attempt_scope.cancel()
        if jid is not None:
            log.info("jibri session %s: stopping (%s)", self.session_id,
                     f"asked by {initiator.resource}" if initiator is not None else "conference ended")
            self.link.stop(jid, self.session_id)
        self._publish(Status.OFF, None)
        self._cleanup()

    def _spawn(self, fn: Callable[..., Awaitable[None]], *args: object) -> bool:
        """Background work in the conference's nursery; False once it has closed (the conference
        is ending: nothing more to do for this session)."""
        try:
            self.nursery.start_soon(fn, *args)
        except RuntimeError:
            log.info("jibri session %s: the conference is ending", self.session_id)
            return False
        return True

    def _publish(self, status: Status, failure: FailureReason | None) -> None:
        try:
            self.on_state(self, status, failure)
        except Exception:
            log.exception("jibri session %s: state listener failed", self.session_id)

    def _cleanup(self) -> None:
        self.ended = True
        self.current = None
        self._cancel_pending_timeout()
        self.detector.remove_offline_listener(self._instance_offline)
