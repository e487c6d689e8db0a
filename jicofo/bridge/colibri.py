"""One conference's Colibri2 session with one bridge.

A `ColibriSession` owns a FIFO of requests for its (conference, bridge) pair and one task that
sends them in order, without waiting for the previous answer (up to `MAX_IN_FLIGHT` unanswered),
each answer awaited under the configured deadline. The bridge sees this conference's requests in
order and handles them in order; a burst (a whole conference moving onto the bridge) costs about
one round trip instead of one per request.
Allocations are awaited by the participant that asked; updates and expiries are fire-and-forget,
their failures reported to the conference through `on_failure`.

When the bridge fails, the conference cancels the session task's scope: every request in flight
ends there, and the conference re-invites the participants that were on it elsewhere.

How errors are read follows docs/jicofo.md §2.10, except that a request of any kind that
times out fails the session and marks the bridge (upstream ignores timed-out background
requests). `ColibriFailure` says whether the bridge lost the conference (`session_lost`: move
everyone), whether the bridge must be marked (`mark_bridge`: "failed" = non-operational,
"graceful" = in graceful shutdown), and whether only one endpoint is unknown to the bridge
(`unknown_endpoint`: re-invite that one). Every request goes through `silence.ask`, so that a
bridge that answers nothing at all is failed for every conference (brewery.py).
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import trio

from jicofo.bridge.model import Bridge
from jicofo.bridge.silence import ask
from jicofo.model.sources import EndpointSourceSet, MediaType, Source, SsrcGroup
from jicofo.xmlns import colibri2 as c2
from jicofo.xmlns.ice_udp import IceUdpTransport
from jicofo.xmlns.jingle import RtpDescription
from jicofo.xmlns.ssma import SourceElement, SsrcGroupElement
from jicofo.xmpp.client import BaseXMPPConnection
from jicofo.xmpp.containment import contain_stanza
from jicofo.xmpp.errors import IQTimeout, NotConnected, StanzaError

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
# Requests of one conference to one bridge sent before the first of them is answered. They go
# out in order on one XMPP connection and the bridge handles a conference's requests in order
# (upstream sends without waiting at all); the window only bounds what a slow bridge can owe us.
MAX_IN_FLIGHT = 16


class BridgeConference(enum.Enum):
    """Where a session's conference stands on its bridge, and whether the session still takes
    requests: one state instead of separate created / expired flags.

        NONE ──allocate──▶ CREATED ──expire_when_idle──▶ CLOSING ──expire written──▶ CLOSED
    A create that fails goes back to NONE; expire_when_idle with nothing created goes to CLOSED,
    and so does close (the conference dropped the session) with nothing created, else CLOSING;
    expire_conference (sent directly) goes to NONE or CLOSED; an expire lost with the XMPP
    session goes back to CREATED or CLOSING (the conference is still there to expire)."""

    NONE = "none"  # nothing created on the bridge; requests are taken
    CREATED = "created"  # created there (the create went out or is queued); requests are taken
    CLOSING = "closing"  # created there; its expire is queued last and nothing more is taken
    CLOSED = "closed"  # nothing there, and nothing more is taken

    @property
    def created(self) -> bool:
        return self in (BridgeConference.CREATED, BridgeConference.CLOSING)

    @property
    def closed(self) -> bool:
        return self in (BridgeConference.CLOSING, BridgeConference.CLOSED)

    def with_created(self, created: bool) -> BridgeConference:
        if self.closed:
            return BridgeConference.CLOSING if created else BridgeConference.CLOSED
        return BridgeConference.CREATED if created else BridgeConference.NONE


class ColibriFailure(Exception):
    def __init__(
        self,
        text: str,
        *,
        session_lost: bool,
        mark_bridge: str | None = None,
        unknown_endpoint: bool = False,
        endpoint_id: str | None = None,
        reason: str | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(text)
        self.timed_out = timed_out  # no answer at all (not an error answer)
        self.reason = reason  # the Colibri2 error reason, when the bridge gave one
        self.session_lost = session_lost
        self.mark_bridge = mark_bridge
        self.unknown_endpoint = unknown_endpoint
        self.endpoint_id = endpoint_id


def _conference_exists(failure: ColibriFailure) -> bool:
    return failure.reason == "conference_already_exists"


def classify_error(err: StanzaError, *, allocation: bool) -> ColibriFailure:
    """Map a bridge's error answer onto what the conference must do (docs/jicofo.md §2.10 tables)."""
    info = c2.colibri2_error(err)
    reason = str(info.reason) if info is not None else None
    condition = err.condition
    text = f"{condition}" + (f" ({reason})" if reason else "") + (f": {err.text}" if err.text else "")
    if condition == "bad-request":
        # Upstream neither retries nor moves (it would loop on a request the bridge rejects).
        return ColibriFailure(text, session_lost=False)
    if condition == "item-not-found":
        if reason == "unknown_endpoint" and not allocation:
            return ColibriFailure(text, session_lost=False, unknown_endpoint=True)
        return ColibriFailure(text, session_lost=reason == "conference_not_found" or not allocation)
    if condition == "conflict":
        return ColibriFailure(text, session_lost=True, reason=reason)
    if condition == "service-unavailable" and reason == "graceful_shutdown":
        return ColibriFailure(text, session_lost=True, mark_bridge="graceful")
    return ColibriFailure(text, session_lost=True, mark_bridge="failed")


@dataclass(frozen=True)
class EndpointRequest:
    endpoint_id: str
    stats_id: str | None
    medias: tuple[RtpDescription, ...]
    sctp: bool
    sources: EndpointSourceSet
    ssrc_rewriting: bool = False
    force_mute_audio: bool = False
    force_mute_video: bool = False


@dataclass(frozen=True)
class Allocation:
    transport: IceUdpTransport
    sctp_port: int | None
    feedback_sources: EndpointSourceSet


@dataclass(eq=False)  # identity: requests are kept in a set while in flight
class _Request:
    payload: c2.ConferenceModify
    kind: str
    endpoint_id: str | None = None
    done: trio.Event | None = None
    result: c2.ConferenceModified | None = None
    error: ColibriFailure | None = None
    on_result: Callable[[c2.ConferenceModified], None] | None = None


class EndpointObserver(Protocol):
    """Told about a session's endpoint changes (the conference mirrors them into relays)."""

    def endpoint_allocated(self, session: ColibriSession, endpoint_id: str) -> None: ...

    def endpoint_sources(self, session: ColibriSession, endpoint_id: str,
                         sources: EndpointSourceSet) -> None: ...

    def endpoint_expired(self, session: ColibriSession, endpoint_id: str) -> None: ...


@dataclass(frozen=True)
class RelayEndpoint:
    """An endpoint as the far side of a relay sees it (upstream sends no media or transport)."""

    endpoint_id: str
    stats_id: str | None
    sources: EndpointSourceSet
    ssrc_rewriting: bool = False


class ColibriSession:
    def __init__(
        self,
        client: BaseXMPPConnection,
        bridge: Bridge,
        *,
        meeting_id: str,
        room_name: str,
        timeout: float,
        rtcstats_enabled: bool = True,
        on_failure: Callable[[ColibriSession, ColibriFailure, str | None], None] | None = None,
        observer: EndpointObserver | None = None,
    ) -> None:
        self.client = client
        self.bridge = bridge
        self.id = str(uuid.uuid4())  # the bridge-session id clients see
        self.meeting_id = meeting_id
        self.room_name = room_name
        self.timeout = timeout
        self.rtcstats_enabled = rtcstats_enabled
        self.on_failure = on_failure
        self.observer = observer
        self.endpoints: set[str] = set()
        self.feedback_sources: EndpointSourceSet | None = None
        # Each endpoint's force-mute flags as last sent (upstream's ParticipantInfo audioMuted /
        # videoMuted): set optimistically, and only a change is sent.
        self.force_muted: dict[str, c2.ForceMute] = {}
        self.state = BridgeConference.NONE  # the first allocation carries the create
        self._window = trio.Semaphore(MAX_IN_FLIGHT)
        self._in_flight: set[_Request] = set()
        self.finished = trio.Event()  # the task is over: nothing more will be sent
        self._send, self._queue = trio.open_memory_channel[_Request](QUEUE_SIZE)

    def __repr__(self) -> str:
        return f"<ColibriSession {self.id} on {self.bridge.nickname}>"

    @property
    def relay_id(self) -> str | None:
        return self.bridge.relay_id

    @property
    def created(self) -> bool:
        """The conference was created on the bridge and no conference expire has gone out."""
        return self.state.created

    # ----- the task -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                # Ends when the queue is closed (expire_when_idle) and drained, and the requests
                # in flight are answered, so the conference expire queued last still goes out.
                async for request in self._queue:
                    self._in_flight.add(request)  # before waiting: _abandon must see it
                    await self._window.acquire()
                    await nursery.start(self._send_and_process, request)
        finally:
            self.finished.set()
            self._abandon()

    async def _send_and_process(
        self, request: _Request, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Send one request, report `started` as soon as it is written (so the next one goes
        out behind it, in order), then wait for its answer."""
        started = False

        def sent() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        try:
            await self._process(request, sent)
            self._in_flight.discard(request)
        finally:
            self._window.release()
            sent()

    def _abandon(self) -> None:
        """The task is over (cancelled when the conference dropped this bridge, or done after
        the expire): every allocation still waiting, in flight or queued, fails now as a lost
        session, so that its participant is invited elsewhere instead of waiting for good."""
        self._send.close()
        pending = list(self._in_flight)
        self._in_flight.clear()
        while True:
            try:
                pending.append(self._queue.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        for request in pending:
            if request.done is not None and not request.done.is_set():
                request.error = ColibriFailure("the bridge session has ended", session_lost=True)
                request.done.set()

    async def _process(self, request: _Request, sent: Callable[[], None]) -> None:
        iq = self.client.iq("get", self.bridge.jid, request.payload.to_element())
        payload = request.payload
        conference_expire = payload.expire and not payload.endpoints and not payload.relays

        def written() -> None:
            if conference_expire:
                # The queued conference expire is out: nothing left there.
                self.state = self.state.with_created(False)
            sent()

        try:
            answer = await ask(self.client, self.bridge, iq, timeout=self.timeout, on_sent=written)
            body = answer.find(c2.CONFERENCE_MODIFIED)
            if body is None:
                raise ColibriFailure("the answer is not a conference-modified", session_lost=False,
                                     mark_bridge="failed")
            try:
                # An answer that cannot be read is a malformed answer (containment.py).
                with contain_stanza(answer, "Colibri2 answer"):
                    request.result = c2.ConferenceModified.from_element(body)
            except ValueError as exc:
                raise ColibriFailure(f"malformed conference-modified: {exc}", session_lost=False,
                                     mark_bridge="failed") from None
        except IQTimeout:
            # Any request that times out, an allocation as much as an update, relay change or
            # expire, means the bridge did not answer: it is marked and the conference moves off
            # it. (Upstream ignores timed-out background requests, docs/jicofo.md §2.10, and relies on health
            # checks, which move nobody on a timeout: a hung bridge kept its conferences.)
            request.error = ColibriFailure(f"{request.kind} timed out", session_lost=True,
                                           mark_bridge="failed", timed_out=True)
        except NotConnected as exc:
            request.error = ColibriFailure(f"{request.kind} not sent: {exc}", session_lost=False)
            if conference_expire:
                # Lost with an XMPP session that did not resume: the bridge may still have the
                # conference, so the conference's cleanup expires it again.
                self.state = self.state.with_created(True)
        except StanzaError as err:
            request.error = classify_error(err, allocation=request.kind == "allocate")
            if request.error.unknown_endpoint:
                request.error.endpoint_id = request.endpoint_id
        except ColibriFailure as failure:
            request.error = failure
        if request.error is None and request.on_result is not None and request.result is not None:
            try:
                request.on_result(request.result)
            except ColibriFailure as failure:
                request.error = failure
        if request.done is not None:
            request.done.set()
            return
        if request.error is not None:
            log.warning("%s: %s for %s failed: %s", self, request.kind,
                        request.endpoint_id or "the conference", request.error)
            if request.kind in ("expire", "relay-expire") and not request.error.timed_out:
                return  # nothing to recover: it was going away
            if self.on_failure is not None:
                self.on_failure(self, request.error, request.endpoint_id)

    def _enqueue(self, request: _Request) -> None:
        try:
            self._send.send_nowait(request)
        except trio.WouldBlock:
            request.error = ColibriFailure("colibri queue full", session_lost=False)
            if request.done is not None:
                request.done.set()
            else:
                log.error("%s: queue full; dropping %s", self, request.kind)
        except trio.ClosedResourceError:
            request.error = ColibriFailure("the bridge session has ended", session_lost=True)
            if request.done is not None:
                request.done.set()

    # ----- operations ---------------------------------------------------------------------------

    async def allocate(self, endpoint: EndpointRequest) -> Allocation:
        """Allocate an endpoint (creating the conference with the first one). Raises ColibriFailure."""
        create = not self.state.created
        self.state = self.state.with_created(True)
        self.endpoints.add(endpoint.endpoint_id)
        self.force_muted[endpoint.endpoint_id] = c2.ForceMute(endpoint.force_mute_audio,
                                                              endpoint.force_mute_video)
        capabilities = [c2.CAPABILITY_SOURCE_NAMES]
        if endpoint.ssrc_rewriting:
            capabilities.append(c2.CAPABILITY_SSRC_REWRITING)
        payload = c2.ConferenceModify(
            meeting_id=self.meeting_id,
            name=self.room_name if create else None,
            create=create,
            rtcstats_enabled=None if self.rtcstats_enabled or not create else False,
            endpoints=(
                c2.Endpoint(
                    id=endpoint.endpoint_id,
                    create=True,
                    stats_id=endpoint.stats_id,
                    medias=tuple(c2.Media.from_description(d) for d in endpoint.medias),
                    transport=c2.Transport(
                        ice_controlling=True, sctp=c2.Sctp() if endpoint.sctp else None
                    ),
                    sources=_sources_to_colibri(endpoint.endpoint_id, endpoint.sources),
                    capabilities=tuple(capabilities),
                    force_mute=(
                        c2.ForceMute(endpoint.force_mute_audio, endpoint.force_mute_video)
                        if endpoint.force_mute_audio or endpoint.force_mute_video else None
                    ),
                ),
            ),
        )
        request = _Request(payload, "allocate", endpoint.endpoint_id, done=trio.Event())
        self._enqueue(request)
        try:
            await request.done.wait()  # type: ignore[union-attr]
        except trio.Cancelled:
            # The member is gone, but the request may already be on its way: expire the endpoint
            # behind it (the queue keeps the order).
            if endpoint.endpoint_id in self.endpoints:
                self.endpoints.discard(endpoint.endpoint_id)
                self._enqueue(_Request(c2.ConferenceModify(
                    meeting_id=self.meeting_id,
                    endpoints=(c2.Endpoint(id=endpoint.endpoint_id, expire=True),)), "expire"))
            raise
        if request.error is None and (self.finished.is_set() or self.retired):
            # Answered, but the conference dropped this session meanwhile: nothing may join it.
            request.error = ColibriFailure("the bridge session has ended", session_lost=True)
        if request.error is not None:
            self.endpoints.discard(endpoint.endpoint_id)
            if create and not self.finished.is_set() and not _conference_exists(request.error):
                # (an abandoned create may have reached the bridge; one refused because the
                # conference already exists there leaves one to expire)
                self.state = self.state.with_created(False)
            raise request.error
        assert request.result is not None
        answered = request.result.endpoint(endpoint.endpoint_id)
        if answered is None or answered.transport is None or answered.transport.ice is None:
            self.endpoints.discard(endpoint.endpoint_id)
            raise ColibriFailure("no transport for the endpoint in the answer", session_lost=False)
        sctp_port = answered.transport.sctp.port if answered.transport.sctp is not None else None
        if endpoint.sctp and sctp_port is None:
            self.endpoints.discard(endpoint.endpoint_id)
            raise ColibriFailure("SCTP was requested but the answer has none", session_lost=False)
        if self.feedback_sources is None and request.result.sources is not None:
            self.feedback_sources = _sources_from_colibri(request.result.sources)
        self.bridge.endpoint_added(trio.current_time())
        if self.observer is not None:
            self.observer.endpoint_allocated(self, endpoint.endpoint_id)
        return Allocation(answered.transport.ice, sctp_port,
                          self.feedback_sources or EndpointSourceSet((), ()))

    def update_endpoint(
        self,
        endpoint_id: str,
        *,
        transport: IceUdpTransport | None = None,
        sources: EndpointSourceSet | None = None,
        initial_last_n: int | None = None,
    ) -> None:
        if endpoint_id not in self.endpoints:
            return
        payload = c2.ConferenceModify(
            meeting_id=self.meeting_id,
            endpoints=(
                c2.Endpoint(
                    id=endpoint_id,
                    transport=c2.Transport(ice=transport) if transport is not None else None,
                    sources=_sources_to_colibri(endpoint_id, sources) if sources is not None else None,
                    initial_last_n=initial_last_n,
                ),
            ),
        )
        self._enqueue(_Request(payload, "update", endpoint_id))
        if sources is not None and self.observer is not None:
            self.observer.endpoint_sources(self, endpoint_id, sources)

    async def restart_ice(self, endpoint_id: str, stats_id: str | None) -> IceUdpTransport | None:
        """Ask the bridge to restart the endpoint's ICE in place (request G of docs/jvb.md
        §2.3: `<transport ice-restart='true'/>`) and wait for the answer, queued in order behind
        this conference's other requests. Returns the bridge's ICE transport (new credentials
        tagged with `ice_generation`, or the current one without a generation when there was
        nothing to restart), or None when the bridge refused (a bare endpoint). Raises
        ColibriFailure on an error or no answer (the caller reports it to the conference)."""
        if endpoint_id not in self.endpoints:
            raise ColibriFailure(f"no endpoint {endpoint_id} on this bridge", session_lost=False)
        payload = c2.ConferenceModify(
            meeting_id=self.meeting_id,
            endpoints=(c2.Endpoint(id=endpoint_id, stats_id=stats_id,
                                   transport=c2.Transport(ice_restart=True)),),
        )
        request = _Request(payload, "ice-restart", endpoint_id, done=trio.Event())
        self._enqueue(request)
        await request.done.wait()  # type: ignore[union-attr]
        if request.error is not None:
            raise request.error
        assert request.result is not None
        answered = request.result.endpoint(endpoint_id)
        if answered is None or answered.transport is None:
            return None
        return answered.transport.ice
    def set_force_mute(self, endpoint_id: str, media: str, value: bool) -> bool:
        """Set one force-mute flag (`media` audio or video) of an endpoint; the endpoint's
        `<force-mute>` goes to the bridge only when the flag changes (as upstream). Returns
        whether a request was queued."""
        current = self.force_muted.get(endpoint_id)
        if endpoint_id not in self.endpoints or current is None:
            return False
        wanted = replace(current, audio=value) if media == "audio" else replace(current, video=value)
        if wanted == current:
            return False
        self.force_muted[endpoint_id] = wanted
        payload = c2.ConferenceModify(
            meeting_id=self.meeting_id,
            endpoints=(c2.Endpoint(id=endpoint_id, force_mute=wanted),),
        )
        self._enqueue(_Request(payload, "force-mute", endpoint_id))
        return True

    def expire_endpoint(self, endpoint_id: str) -> None:
        if endpoint_id not in self.endpoints:
            return
        self.endpoints.discard(endpoint_id)
        self.force_muted.pop(endpoint_id, None)
        self.bridge.endpoint_removed()
        payload = c2.ConferenceModify(
            meeting_id=self.meeting_id, endpoints=(c2.Endpoint(id=endpoint_id, expire=True),),
        )
        self._enqueue(_Request(payload, "expire", endpoint_id))
        if self.observer is not None:
            self.observer.endpoint_expired(self, endpoint_id)

    # ----- relays (Octo) ------------------------------------------------------------------------

    def create_relay(
        self,
        relay_id: str,
        *,
        initiator: bool,
        mesh_id: str,
        medias: tuple[RtpDescription, ...],
        sctp: bool,
        endpoints: tuple[RelayEndpoint, ...],
        on_transport: Callable[[IceUdpTransport], None],
    ) -> None:
        """Open a relay to the bridge whose relay id is `relay_id` (request J of docs/jvb.md
        §2.3). The initiator side controls ICE, gets a port of its own and is the SCTP client.
        `on_transport` receives this bridge's relay transport from the answer, for the other side."""
        transport = c2.Transport(
            ice_controlling=initiator,
            use_unique_port=initiator,
            sctp=c2.Sctp(role="client" if initiator else "server") if sctp else None,
        )
        relay = c2.Relay(
            id=relay_id, create=True, mesh_id=mesh_id,
            medias=tuple(c2.Media.from_description(d) for d in medias),
            transport=transport,
            endpoints=tuple(_relay_endpoint(e, create=True) for e in endpoints),
        )

        def answered(result: c2.ConferenceModified) -> None:
            answer = result.relay(relay_id)
            if answer is None or answer.transport is None or answer.transport.ice is None:
                raise ColibriFailure(f"no transport in the answer for relay {relay_id}",
                                     session_lost=True)
            on_transport(answer.transport.ice)

        self._enqueue(_Request(c2.ConferenceModify(meeting_id=self.meeting_id, relays=(relay,)),
                               "relay-create", on_result=answered))

    def set_relay_transport(self, relay_id: str, ice: IceUdpTransport) -> None:
        """Give this bridge the other side's relay transport (request K)."""
        relay = c2.Relay(id=relay_id, transport=c2.Transport(ice=ice))
        self._enqueue(_Request(c2.ConferenceModify(meeting_id=self.meeting_id, relays=(relay,)),
                               "relay-transport"))

    def relay_endpoint_added(self, relay_id: str, endpoint: RelayEndpoint) -> None:
        self._relay_endpoints(relay_id, _relay_endpoint(endpoint, create=True))

    def relay_endpoint_sources(self, relay_id: str, endpoint_id: str, sources: EndpointSourceSet) -> None:
        self._relay_endpoints(relay_id, c2.Endpoint(
            id=endpoint_id, sources=_sources_to_colibri(endpoint_id, sources)))

    def relay_endpoint_expired(self, relay_id: str, endpoint_id: str) -> None:
        self._relay_endpoints(relay_id, c2.Endpoint(id=endpoint_id, expire=True))

    def _relay_endpoints(self, relay_id: str, endpoint: c2.Endpoint) -> None:
        relay = c2.Relay(id=relay_id, endpoints=(endpoint,))
        self._enqueue(_Request(c2.ConferenceModify(meeting_id=self.meeting_id, relays=(relay,)),
                               "relay-update"))

    def expire_relay(self, relay_id: str) -> None:
        """The bridge behind `relay_id` left the conference (request N)."""
        if self.state.closed:
            return
        relay = c2.Relay(id=relay_id, expire=True)
        self._enqueue(_Request(c2.ConferenceModify(meeting_id=self.meeting_id, relays=(relay,)),
                               "relay-expire"))

    @property
    def retired(self) -> bool:
        """The conference no longer uses this session: it takes no more requests."""
        return self.state.closed

    def close(self) -> None:
        """Take no more requests: the conference dropped this session (its task is cancelled; the
        conference expire, when one is due, goes out beside it through expire_conference)."""
        if not self.state.closed:
            self.state = BridgeConference.CLOSING if self.state.created else BridgeConference.CLOSED
        self._send.close()

    def expire_when_idle(self) -> None:
        """Queue the conference expire behind whatever is queued; the task ends after it."""
        if self.state.closed or not self.state.created:
            if not self.state.closed:
                self.state = BridgeConference.CLOSED  # nothing there to expire
            self._send.close()
            return
        self._enqueue(_Request(c2.ConferenceModify(meeting_id=self.meeting_id, expire=True), "expire"))
        self.state = BridgeConference.CLOSING
        self._send.close()

    async def expire_conference(self) -> None:
        """Expire the whole conference on the bridge now (conference stop, bridge failure). Not
        sent to a bridge that has left the brewery: its occupant JID no longer reaches it."""
        if not self.state.created:
            return
        self.state = self.state.with_created(False)
        self.bridge_endpoint_removed()
        if self.bridge.removed:
            log.info("%s: the bridge has left the brewery; not expiring the conference there", self)
            return
        iq = self.client.iq(
            "get", self.bridge.jid, c2.ConferenceModify(meeting_id=self.meeting_id, expire=True).to_element()
        )
        try:
            await ask(self.client, self.bridge, iq, timeout=self.timeout)
        except NotConnected as exc:
            self.state = self.state.with_created(True)  # not sent, or lost: still to expire
            log.info("%s: conference expire not sent: %s", self, exc)
        except (IQTimeout, StanzaError) as exc:
            log.info("%s: conference expire not confirmed: %s", self, exc)

    def bridge_endpoint_removed(self) -> None:
        """Stop counting this session's endpoints against the bridge's load."""
        if self.endpoints:
            self.bridge.endpoint_removed(len(self.endpoints))
            self.endpoints.clear()


# ----- conversions between our source model and Colibri2's --------------------------------------


def _relay_endpoint(endpoint: RelayEndpoint, *, create: bool) -> c2.Endpoint:
    capabilities = [c2.CAPABILITY_SOURCE_NAMES]
    if endpoint.ssrc_rewriting:
        capabilities.append(c2.CAPABILITY_SSRC_REWRITING)
    return c2.Endpoint(
        id=endpoint.endpoint_id, create=create, stats_id=endpoint.stats_id,
        sources=_sources_to_colibri(endpoint.endpoint_id, endpoint.sources),
        capabilities=tuple(capabilities),
    )


def _sources_to_colibri(endpoint_id: str, sources: EndpointSourceSet) -> c2.Sources:
    """One media-source per source name (unnamed ones: `<endpoint>-a0` / `-v0`), as upstream."""
    by_name: dict[tuple[MediaType, str], list[Source]] = {}
    for source in sources.sources:
        suffix = "a0" if source.media_type is MediaType.AUDIO else "v0"
        name = source.name or f"{endpoint_id}-{suffix}"
        by_name.setdefault((source.media_type, name), []).append(source)
    media_sources = []
    for (media_type, name), members in by_name.items():
        ssrcs = {s.ssrc for s in members}
        groups = tuple(
            SsrcGroupElement(str(g.semantics), g.ssrcs)
            for g in sources.groups
            if g.media_type is media_type and ssrcs.issuperset(g.ssrcs)
        )
        media_sources.append(c2.MediaSource(
            type=str(media_type), id=name,
            sources=tuple(SourceElement(s.ssrc, name=name, video_type=s.video_type) for s in members),
            ssrc_groups=groups,
        ))
    return c2.Sources(tuple(media_sources))


def _sources_from_colibri(sources: c2.Sources) -> EndpointSourceSet:
    """The bridge's feedback sources, with the msid upstream gives them."""
    result: list[Source] = []
    groups: list[SsrcGroup] = []
    for media_source in sources.media_sources:
        try:
            media_type = MediaType(media_source.type)
        except ValueError:
            continue
        for s in media_source.sources:
            result.append(Source(s.ssrc, media_type, name=s.name or media_source.id,
                                 msid=f"mixedmslabel mixedlabel{media_type}0"))
    return EndpointSourceSet(tuple(result), tuple(groups))

