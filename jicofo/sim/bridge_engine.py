"""The Colibri2 behaviour of a simulated Jitsi Videobridge, sans IO (docs/jvb.md §2, §3,
§4.1).

`BridgeEngine.handle_conference_modify(request, sender)` takes a `<conference-modify>` element and
returns the `<conference-modified>` answer or raises the `StanzaError` a real bridge would send
(conditions, colibri2 reasons and texts of §2.4 / §2.6). The caller (the trio shell in
`jicofo.sim.bridge`) owns ordering: it hands requests of one conference over one at a time, in
arrival order. Deciding create / not-found / already-exists / graceful-shutdown when a request is
processed rather than when it arrives gives the same answers as long as every request of a
meeting-id goes through that one FIFO, because nothing else creates or removes conferences.

Everything random (ICE credentials, SSRCs, ids) comes from the engine's `random.Random`, which a
test may seed.
"""

from __future__ import annotations

import logging
import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from xml.etree.ElementTree import Element

from jicofo.xmlns.colibri_stats import STATS_FILTER_WHITELIST, BridgeStats
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID, InvalidJID

from . import bridge_answer as an
from . import bridge_request as rq

log = logging.getLogger(__name__)

DEFAULT_VERSION = "2.3.250-gsimulated"
SHARED_UDP_PORT = 10000
HOST_PRIORITY = 2130706431
_BASE32 = "0123456789abcdefghijklmnopqrstuv"
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class BridgeIdentity:
    """Who the bridge is and how it is configured (the jvb.conf settings that show on the wire).

    `relay_id` None means relays (Octo) are off, as on a real bridge that publishes no relay_id;
    `relays_enabled` overrides that. `websocket_url_template` turns web-sockets on: either a base
    such as `wss://jvb1.example.com:443` (the standard `/colibri-ws/...` path is appended) or a
    template with `{bridge}` (server id), `{conference}` (internal hex id) and `{endpoint}`;
    `?pwd=...` is appended unless the template has `{pwd}`.
    `candidate_addresses` are the addresses the bridge offers ICE candidates on, one host candidate
    each in that order (a real bridge's local interfaces and static mappings); the default is
    loopback, so a browser pointed at the simulator sends its ICE checks nowhere off the machine.
    `graceful_shutdown_min_participants` None keeps a bridge in graceful shutdown until told
    otherwise (convenient for tests); a number moves it to shutting-down once its local endpoints
    drop to that count, as a real bridge does (0 there)."""

    nickname: str
    region: str | None = None
    relay_id: str | None = None
    version: str = DEFAULT_VERSION
    release: str | None = None
    websocket_url_template: str | None = None
    server_id: str | None = None
    candidate_addresses: tuple[str, ...] = ("127.0.0.1",)
    udp_port: int = SHARED_UDP_PORT
    relays_enabled: bool | None = None
    sctp_enabled: bool = True
    ice_restart_enabled: bool = True
    initial_drain: bool = False
    stats_filter: bool = False
    graceful_shutdown_min_participants: int | None = None
    ufrag_prefix: str = ""

    @property
    def full_version(self) -> str:
        """`version-release`, as jicofo combines them."""
        return f"{self.version}-{self.release}" if self.release else self.version

    @property
    def relays_on(self) -> bool:
        return self.relays_enabled if self.relays_enabled is not None else self.relay_id is not None

    @property
    def websockets_on(self) -> bool:
        return bool(self.websocket_url_template)


@dataclass(frozen=True, slots=True)
class StressModel:
    """`stress_level = base + local endpoints × per_endpoint` (just `base` without per_endpoint);
    `average_participant_stress` is per_endpoint, or the bridge's default 0.01."""

    base: float = 0.0
    per_endpoint: float | None = None

    def level(self, local_endpoints: int) -> float:
        value = self.base + local_endpoints * (self.per_endpoint or 0.0)
        return round(max(0.0, value), 6)

    @property
    def average_participant_stress(self) -> float:
        return self.per_endpoint if self.per_endpoint is not None else 0.01


class ShutdownState(Enum):
    RUNNING = "running"
    GRACEFUL_SHUTDOWN = "graceful-shutdown"
    SHUTTING_DOWN = "shutting-down"


# ---------------------------------------------------------------------------------------------
# State


@dataclass
class EndpointState:
    id: str
    stats_id: str | None
    visitor: bool
    capabilities: tuple[str, ...]
    ufrag: str
    pwd: str
    ws_pwd: str
    candidate_id: str
    sctp: bool
    medias: tuple[str, ...] = ()
    sources: tuple[rq.NamedSource, ...] = ()
    force_mute_audio: bool = False
    force_mute_video: bool = False
    remote_transport: rq.PeerIce | None = None
    initial_last_n: int | None = None
    ice_generation: int = 0
    diarize: bool = False
    created: float = 0.0


@dataclass
class RelayEndpointState:
    id: str
    stats_id: str | None
    capabilities: tuple[str, ...]
    sources: tuple[rq.NamedSource, ...] = ()


@dataclass
class RelayState:
    id: str
    mesh_id: str | None
    ice_controlling: bool
    use_unique_port: bool
    port: int
    ufrag: str
    pwd: str
    ws_pwd: str
    candidate_id: str
    sctp_role: str | None  # ours: the opposite of the requester's
    medias: tuple[str, ...] = ()
    remote_transport: rq.PeerIce | None = None
    dtls_role: str | None = None  # "server" after a remote 'active', "client" after 'passive'
    endpoints: dict[str, RelayEndpointState] = field(default_factory=dict)


@dataclass
class ConferenceState:
    meeting_id: str
    internal_id: str
    name: str | None
    rtcstats_enabled: bool
    feedback_audio_ssrc: int
    feedback_video_ssrc: int
    creator: str
    created: float
    endpoints: dict[str, EndpointState] = field(default_factory=dict)
    relays: dict[str, RelayState] = field(default_factory=dict)
    connects: dict[str, rq.ConnectRequest] = field(default_factory=dict)

    def feedback_sources(self) -> tuple[an.FeedbackSource, ...]:
        return (an.FeedbackSource("audio", "jvb-a0", self.feedback_audio_ssrc),
                an.FeedbackSource("video", "jvb-v0", self.feedback_video_ssrc))


# ---------------------------------------------------------------------------------------------
# Errors (§2.6)


def _bad_request(text: str) -> StanzaError:
    return StanzaError("bad-request", text)


def _shape_error(text: str) -> StanzaError:
    return an.bridge_error("feature-not-implemented", text, an.FEATURE_NOT_IMPLEMENTED)


class BridgeEngine:
    def __init__(
        self,
        identity: BridgeIdentity,
        stress: StressModel | None = None,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identity = identity
        self.stress = stress or StressModel()
        self.rng = rng or random.Random()
        self.clock = clock
        self.healthy = True
        self.drain = identity.initial_drain
        self.state = ShutdownState.RUNNING
        self.conferences: dict[str, ConferenceState] = {}
        # One certificate per bridge process: every answer carries the same fingerprint.
        self.fingerprint = ":".join(f"{self.rng.getrandbits(8):02X}" for _ in range(32))
        if not identity.candidate_addresses:
            raise ValueError("a bridge needs at least one candidate address")
        self.candidate_addresses = tuple(identity.candidate_addresses)
        self._candidate_tags = tuple(f"{self.rng.getrandbits(32):08x}" for _ in self.candidate_addresses)
        # MUC status, kept up to date by the shell.
        self.muc_clients_configured = 0
        self.muc_clients_connected = 0
        self.mucs_configured = 0
        self.mucs_joined = 0
        # Totals.
        self.total_conferences_created = 0
        self.total_conferences_completed = 0
        self.total_conference_seconds = 0.0
        self.total_participants = 0
        self.total_visitors = 0
        self.total_relays = 0
        self.total_requests = 0

    # ----- shutdown and drain (§3.2, §3.3) -----------------------------------------------------

    @property
    def graceful_shutdown(self) -> bool:
        return self.state is not ShutdownState.RUNNING

    @property
    def shutting_down(self) -> bool:
        return self.state is ShutdownState.SHUTTING_DOWN

    def enter_graceful_shutdown(self) -> None:
        """RUNNING → GRACEFUL_SHUTDOWN: new conferences are refused, existing ones keep working."""
        if self.state is ShutdownState.RUNNING:
            self.state = ShutdownState.GRACEFUL_SHUTDOWN
            log.info("bridge %s: graceful shutdown", self.identity.nickname)
        self._maybe_finish_graceful_shutdown()

    def enter_shutting_down(self) -> None:
        """→ SHUTTING_DOWN (graceful_shutdown stays true). Creates are accepted again, but no
        focus selects such a bridge."""
        if self.state is not ShutdownState.SHUTTING_DOWN:
            self.state = ShutdownState.SHUTTING_DOWN
            log.info("bridge %s: shutting down", self.identity.nickname)

    def _maybe_finish_graceful_shutdown(self) -> None:
        limit = self.identity.graceful_shutdown_min_participants
        if (self.state is ShutdownState.GRACEFUL_SHUTDOWN and limit is not None
                and self.local_endpoint_count() <= limit):
            self.enter_shutting_down()

    # ----- health (§3.1) -----------------------------------------------------------------------

    def check_health(self) -> None:
        if not self.healthy:
            raise StanzaError("internal-server-error", "No valid IP addresses available for harvesting.")

    # ----- Colibri2 ----------------------------------------------------------------------------

    def handle_conference_modify(self, request: Element, sender: str) -> Element:
        """Process one `<conference-modify>`; return the `<conference-modified>` element or raise
        StanzaError. Changes made before an error stay applied, as on a real bridge."""
        self.total_requests += 1
        try:
            # Our own reading of the request, not the focus's Colibri2 parser.
            modify = rq.read_request(request)
        except rq.RequestError as exc:
            raise _bad_request(str(exc)) from None
        conference, created = self._find_conference(modify, sender)
        try:
            answer = self._process(conference, modify, created)
        except StanzaError:
            raise
        except Exception as exc:  # a real bridge answers internal-server-error with the text
            log.exception("bridge %s: error processing a conference-modify", self.identity.nickname)
            raise StanzaError("internal-server-error", str(exc) or type(exc).__name__) from None
        finally:
            # After the request, the conference goes away if asked to, or if a request that did
            # not create it left it without endpoints and relays (§2.1 step 3).
            if modify.meeting_id in self.conferences:
                if modify.expire or (
                    not modify.create and not conference.endpoints and not conference.relays
                ):
                    self._expire_conference(conference)
            self._maybe_finish_graceful_shutdown()
        return answer

    def _find_conference(self, modify: rq.ConferenceRequest, sender: str) -> tuple[ConferenceState, bool]:
        meeting_id = modify.meeting_id
        conference = self.conferences.get(meeting_id)
        if modify.create:
            if conference is not None:
                raise an.bridge_error("conflict", f"Conference already exists for ID: {meeting_id}",
                                      an.CONFERENCE_ALREADY_EXISTS)
            if self.state is ShutdownState.GRACEFUL_SHUTDOWN:
                raise an.bridge_error("service-unavailable", "In graceful shutdown", an.GRACEFUL_SHUTDOWN)
            if modify.name is not None:
                try:
                    name_ok = JID.parse(modify.name).is_bare
                except InvalidJID:
                    name_ok = False
                if not name_ok:
                    raise _bad_request("Invalid conference name (not a JID)")
            conference = ConferenceState(
                meeting_id=meeting_id,
                internal_id=f"{self.rng.getrandbits(64):016x}",
                name=modify.name,
                rtcstats_enabled=modify.rtcstats_enabled is not False,
                feedback_audio_ssrc=self._ssrc(),
                feedback_video_ssrc=self._ssrc(),
                creator=sender,
                created=self.clock(),
            )
            self.conferences[meeting_id] = conference
            self.total_conferences_created += 1
            return conference, True
        if conference is None:
            raise an.bridge_error(
                "item-not-found", f"Conference not found for ID: {meeting_id}", an.CONFERENCE_NOT_FOUND,
            )
        return conference, False

    def _process(
        self, conference: ConferenceState, modify: rq.ConferenceRequest, created: bool
    ) -> Element:
        # 1. Request-shape rules.
        if modify.endpoints and modify.relays:
            raise _shape_error("Requests with both endpoints and relays are not supported")
        if len(modify.endpoints) > 1 and any(e.changes_state for e in modify.endpoints):
            raise _shape_error(
                "Only expire, force-mute and last-n may be batched for several endpoints"
            )
        if len(modify.relays) > 1:
            raise _shape_error("Only one relay per request is supported")
        only_expire_or_mute = _only_expires_or_mutes(modify)

        # 2. Endpoints.
        endpoint_answers: list[an.AnswerEntity] = []
        any_endpoint_created = False
        for endpoint in modify.endpoints:
            answer = self._endpoint(conference, endpoint, only_expire_or_mute)
            any_endpoint_created = any_endpoint_created or endpoint.create
            endpoint_answers.append(answer)

        # 3. Connects.
        if modify.connects:
            self._connects(conference, modify.connects)

        # 4. Relays.
        relay_answers = [self._relay(conference, relay, only_expire_or_mute) for relay in modify.relays]

        feedback = conference.feedback_sources() if created or any_endpoint_created else None
        return an.conference_modified(endpoint_answers, relay_answers, feedback)

    # ----- endpoints -----------------------------------------------------------------------------

    def _endpoint(
        self, conference: ConferenceState, request: rq.EndpointRequest, only_expire_or_mute: bool
    ) -> an.AnswerEntity:
        if request.expire:
            gone = conference.endpoints.pop(request.id, None)
            if gone is not None:
                log.debug("bridge %s: endpoint %s expired", self.identity.nickname, request.id)
            return an.AnswerEntity(request.id, expire=True)
        existing = conference.endpoints.get(request.id)
        if request.create:
            if existing is not None:
                raise StanzaError("conflict", f"Endpoint with ID {request.id} already exists")
            transport = request.transport
            if transport is None:
                raise _bad_request(f"Attempt to create endpoint {request.id} with no <transport>")
            if rq.SOURCE_NAMES not in request.capabilities:
                raise _bad_request("Source name support is mandatory.")
            if transport.sctp is not None:
                _check_endpoint_sctp(self.identity, transport.sctp)
            if request.visitor and request.sources:
                raise _bad_request(f"Visitor endpoint {request.id} may not have sources")
            endpoint = self._new_endpoint(request)
            conference.endpoints[request.id] = endpoint
            self.total_participants += 1
            if endpoint.visitor:
                self.total_visitors += 1
            return an.AnswerEntity(request.id, transport=self._endpoint_transport(conference, endpoint))
        if existing is None:
            if only_expire_or_mute:
                return an.AnswerEntity(request.id)
            raise an.bridge_error(
                "item-not-found", f"Endpoint not found for ID: {request.id}", an.UNKNOWN_ENDPOINT,
                endpoint_id=request.id,
            )
        if existing.visitor and request.sources:
            raise _bad_request(f"Visitor endpoint {request.id} may not have sources")
        return self._update_endpoint(conference, existing, request)

    def _new_endpoint(self, request: rq.EndpointRequest) -> EndpointState:
        assert request.transport is not None
        mute_audio, mute_video = request.force_mute or (False, False)
        return EndpointState(
            id=request.id,
            stats_id=request.stats_id,
            visitor=request.visitor,
            capabilities=request.capabilities,
            ufrag=self._ufrag(),
            pwd=self._pwd(),
            ws_pwd=self._ws_pwd(),
            candidate_id=f"{self.rng.getrandbits(64):016x}",
            sctp=request.transport.sctp is not None,
            medias=request.medias,
            sources=request.sources or (),
            force_mute_audio=mute_audio,
            force_mute_video=mute_video,
            remote_transport=request.transport.ice,
            initial_last_n=request.initial_last_n,
            diarize=request.diarize,
            created=self.clock(),
        )

    def _update_endpoint(
        self, conference: ConferenceState, endpoint: EndpointState, request: rq.EndpointRequest
    ) -> an.AnswerEntity:
        if request.stats_id is not None:
            endpoint.stats_id = request.stats_id
        if request.medias:
            endpoint.medias = request.medias
        if request.sources is not None:
            endpoint.sources = request.sources  # the complete new set
        if request.force_mute is not None:
            endpoint.force_mute_audio, endpoint.force_mute_video = request.force_mute
        if request.initial_last_n is not None:
            endpoint.initial_last_n = request.initial_last_n
        transport = request.transport
        if transport is None:
            return an.AnswerEntity(endpoint.id)
        if transport.ice_restart:
            return self._ice_restart(conference, endpoint)
        if transport.ice is not None:
            endpoint.remote_transport = _merge_remote(endpoint.remote_transport, transport.ice)
        return an.AnswerEntity(endpoint.id)

    def _ice_restart(self, conference: ConferenceState, endpoint: EndpointState) -> an.AnswerEntity:
        """§2.5: new credentials with ice-generation when there is a connection to restart; the
        current transport without ice-generation when the client never sent one; a bare endpoint
        (refused) when restarts are disabled."""
        if not self.identity.ice_restart_enabled:
            return an.AnswerEntity(endpoint.id)
        if endpoint.remote_transport is None:
            return an.AnswerEntity(
                endpoint.id, transport=self._endpoint_transport(conference, endpoint, sctp=False)
            )
        endpoint.ice_generation += 1
        endpoint.ufrag, endpoint.pwd = self._ufrag(), self._pwd()
        endpoint.remote_transport = None
        return an.AnswerEntity(
            endpoint.id,
            transport=self._endpoint_transport(
                conference, endpoint, sctp=False, generation=endpoint.ice_generation
            ),
        )

    def _endpoint_transport(
        self,
        conference: ConferenceState,
        endpoint: EndpointState,
        *,
        sctp: bool = True,
        generation: int | None = None,
    ) -> an.AnswerTransport:
        urls: tuple[str, ...] = ()
        if self.identity.websockets_on:
            urls = (self._ws_url("colibri-ws", conference.internal_id, endpoint.id, endpoint.ws_pwd),)
        ice = an.AnswerIce(
            ufrag=endpoint.ufrag,
            pwd=endpoint.pwd,
            fingerprint=self.fingerprint,
            candidates=self._candidates(endpoint.candidate_id, self.identity.udp_port),
            web_sockets=urls,
            ice_generation=generation,
        )
        return an.AnswerTransport(ice, "server" if sctp and endpoint.sctp else None)

    # ----- connects ------------------------------------------------------------------------------

    def _connects(self, conference: ConferenceState, connects: tuple[rq.ConnectRequest, ...]) -> None:
        keys = [c.key for c in connects]
        if len(set(keys)) != len(keys):
            raise _bad_request("Duplicate connect IDs")
        for connect in connects:
            key = connect.key
            if connect.expire:
                conference.connects.pop(key, None)
                continue
            if connect.video:
                raise _shape_error("Video connects are not supported")
            if connect.protocol not in (None, "mediajson"):
                raise _shape_error(f"Unsupported connect protocol {connect.protocol!r}")
            if connect.url is not None and not connect.url.lower().startswith(("ws://", "wss://")):
                raise _bad_request(f"Connect URL must be ws:// or wss://: {connect.url}")
            if connect.create:
                if key in conference.connects:
                    raise _bad_request(f"Connect {key} already exists")
                if connect.url is None:
                    raise _bad_request(f"Connect {key} has no URL")
                conference.connects[key] = connect
            else:
                if key not in conference.connects:
                    raise _bad_request(f"Unknown connect {key}")
                conference.connects[key] = connect

    # ----- relays --------------------------------------------------------------------------------

    def _relay(
        self, conference: ConferenceState, request: rq.RelayRequest, only_expire_or_mute: bool
    ) -> an.AnswerEntity:
        if not self.identity.relays_on:
            raise StanzaError("feature-not-implemented", "Octo is not enabled")
        if not self.identity.sctp_enabled and not self.identity.websockets_on:
            raise StanzaError("internal-server-error",
                              "Relays need SCTP or web-sockets, and neither is enabled")
        if request.expire:
            conference.relays.pop(request.id, None)
            return an.AnswerEntity(request.id, expire=True)
        existing = conference.relays.get(request.id)
        if request.create:
            if existing is not None:
                raise StanzaError("conflict", f"Relay with ID {request.id} already exists")
            if request.transport is None:
                raise _bad_request(f"Attempt to create relay {request.id} with no <transport>")
            sctp = request.transport.sctp
            if sctp is not None and sctp.port is not None and sctp.port != an.SCTP_PORT:
                raise _bad_request(f"Unsupported SCTP port {sctp.port}")
            relay = RelayState(
                id=request.id,
                mesh_id=request.mesh_id,
                ice_controlling=request.transport.ice_controlling,
                use_unique_port=request.transport.use_unique_port,
                port=self.rng.randint(32768, 60999) if request.transport.use_unique_port
                else self.identity.udp_port,
                ufrag=self._ufrag(),
                pwd=self._pwd(),
                ws_pwd=self._ws_pwd(),
                candidate_id=f"{self.rng.getrandbits(32):08x}",
                # The opposite of the requester's role; a request without a role is answered as
                # if it had asked to be the client.
                sctp_role=(("server" if sctp.role != "server" else "client") if sctp is not None else None),
                medias=request.medias,
            )
            conference.relays[request.id] = relay
            self.total_relays += 1
            self._relay_transport_update(relay, request.transport)
            self._relay_endpoints(relay, request.endpoints, only_expire_or_mute)
            return an.AnswerEntity(request.id, transport=self._relay_transport(conference, relay))
        if existing is None:
            if only_expire_or_mute:
                return an.AnswerEntity(request.id)
            raise _bad_request(f"Unknown relay {request.id}")
        if request.transport is not None:
            sctp = request.transport.sctp
            if sctp is not None and sctp.port is not None and sctp.port != an.SCTP_PORT:
                raise _bad_request(f"Unsupported SCTP port {sctp.port}")
            self._relay_transport_update(existing, request.transport)
        if request.medias:
            existing.medias = request.medias
        self._relay_endpoints(existing, request.endpoints, only_expire_or_mute)
        return an.AnswerEntity(request.id)

    def _relay_transport_update(self, relay: RelayState, transport: rq.TransportRequest) -> None:
        if transport.ice is None:
            return
        relay.remote_transport = _merge_remote(relay.remote_transport, transport.ice)
        setup = next((f for f in transport.ice.fingerprint_setups if f), None)
        # A remote 'active' makes this side the DTLS server, a remote 'passive' the client.
        if setup == "active":
            relay.dtls_role = "server"
        elif setup == "passive":
            relay.dtls_role = "client"

    def _relay_endpoints(
        self, relay: RelayState, endpoints: tuple[rq.EndpointRequest, ...], only_expire_or_mute: bool
    ) -> None:
        for endpoint in endpoints:
            if endpoint.expire:
                relay.endpoints.pop(endpoint.id, None)
                continue
            existing = relay.endpoints.get(endpoint.id)
            if endpoint.create:
                if existing is not None:
                    raise StanzaError("conflict", f"Relayed endpoint with ID {endpoint.id} already exists")
                relay.endpoints[endpoint.id] = RelayEndpointState(
                    endpoint.id, endpoint.stats_id, endpoint.capabilities, endpoint.sources or ()
                )
                continue
            if existing is None:
                if only_expire_or_mute:
                    continue
                raise _bad_request(f"Unknown relayed endpoint {endpoint.id} on relay {relay.id}")
            if endpoint.sources is not None:
                existing.sources = endpoint.sources
            if endpoint.stats_id is not None:
                existing.stats_id = endpoint.stats_id

    def _relay_transport(self, conference: ConferenceState, relay: RelayState) -> an.AnswerTransport:
        urls: tuple[str, ...] = ()
        if self.identity.websockets_on and relay.sctp_role is None:
            urls = (self._ws_url("colibri-relay-ws", conference.internal_id, relay.id, relay.ws_pwd),)
        ice = an.AnswerIce(
            ufrag=relay.ufrag,
            pwd=relay.pwd,
            fingerprint=self.fingerprint,
            candidates=self._candidates(relay.candidate_id, relay.port),
            web_sockets=urls,
        )
        return an.AnswerTransport(ice, relay.sctp_role)

    # ----- wire values (§2.5) ------------------------------------------------------------------

    def _ufrag(self) -> str:
        """ice4j style: prefix, a random 24-bit number and the time in ms, both in base 32."""
        return (self.identity.ufrag_prefix + _base32(self.rng.getrandbits(24))
                + _base32(int(self.clock() * 1000)))

    def _pwd(self) -> str:
        while True:
            pwd = _base32(self.rng.getrandbits(128))
            if len(pwd) >= 22:
                return pwd

    def _ws_pwd(self) -> str:
        return "".join(self.rng.choice(_ALNUM) for _ in range(24))

    def _ssrc(self) -> int:
        return self.rng.randint(1, 0xFFFF_FFFF)

    def _candidates(self, entity_tag: str, port: int) -> tuple[an.HostCandidate, ...]:
        """One host candidate per configured address, preferred in the order given."""
        return tuple(
            an.HostCandidate(component=1, foundation=str(n + 1), generation=0,
                             id=f"{entity_tag}ffffffff{tag}", ip=address, port=port,
                             priority=HOST_PRIORITY - n)
            for n, (address, tag) in enumerate(
                zip(self.candidate_addresses, self._candidate_tags, strict=True))
        )

    def _ws_url(self, path: str, conference_id: str, entity_id: str, pwd: str) -> str:
        template = self.identity.websocket_url_template or ""
        if "{" not in template:
            template = template.rstrip("/") + "/colibri-ws/{bridge}/{conference}/{endpoint}"
        template = template.replace("/colibri-ws/", f"/{path}/")
        url = template.format(bridge=self.identity.server_id or self.identity.nickname,
                              conference=conference_id, endpoint=entity_id, pwd=pwd)
        return url if "{pwd}" in template else f"{url}?pwd={pwd}"

    # ----- conferences going away ----------------------------------------------------------------

    def _expire_conference(self, conference: ConferenceState) -> None:
        if self.conferences.pop(conference.meeting_id, None) is None:
            return
        self.total_conferences_completed += 1
        self.total_conference_seconds += max(0.0, self.clock() - conference.created)
        log.debug("bridge %s: conference %s expired", self.identity.nickname, conference.meeting_id)

    def expire_conference(self, meeting_id: str) -> bool:
        """Drop a conference silently (simulated idle expiry). True if it existed."""
        conference = self.conferences.get(meeting_id)
        if conference is None:
            return False
        self._expire_conference(conference)
        self._maybe_finish_graceful_shutdown()
        return True

    def expire_idle_conferences(self, max_age: float = 20.0) -> list[str]:
        """What a real bridge's background task does (§2.8): drop conferences older than
        `max_age` seconds that have no local endpoints and are not in several relay meshes (a
        create that failed after the conference was made leaves such a conference). Returns the
        meeting-ids dropped."""
        now = self.clock()
        idle = [
            c for c in self.conferences.values()
            if not c.endpoints and now - c.created >= max_age
            and len({r.mesh_id for r in c.relays.values()}) < 2
        ]
        for conference in idle:
            self._expire_conference(conference)
        return [c.meeting_id for c in idle]

    def expire_endpoint(self, meeting_id: str, endpoint_id: str) -> bool:
        """Drop an endpoint silently (simulated ICE failure): the next update naming it gets
        unknown_endpoint. True if it existed."""
        conference = self.conferences.get(meeting_id)
        if conference is None or conference.endpoints.pop(endpoint_id, None) is None:
            return False
        self._maybe_finish_graceful_shutdown()
        return True

    # ----- stats and state -----------------------------------------------------------------------

    def local_endpoint_count(self) -> int:
        return sum(len(c.endpoints) for c in self.conferences.values())

    def stats(self) -> BridgeStats:
        conferences = list(self.conferences.values())
        local = [e for c in conferences for e in c.endpoints.values()]
        relayed = sum(len(r.endpoints) for c in conferences for r in c.relays.values())
        sizes = [len(c.endpoints) + sum(len(r.endpoints) for r in c.relays.values()) for c in conferences]
        sending_audio = sum(1 for e in local if any(m.type == "audio" for m in e.sources))
        sending_video = sum(1 for e in local if any(m.type == "video" for m in e.sources))
        now = self.clock()
        open_seconds = sum(max(0.0, now - c.created) for c in conferences)
        stats = BridgeStats(
            stress_level=self.stress.level(len(local)),
            average_participant_stress=self.stress.average_participant_stress,
            graceful_shutdown=self.graceful_shutdown,
            shutting_down=self.shutting_down,
            drain=self.drain,
            healthy=self.healthy,
            version=self.identity.version,
            release=self.identity.release,
            region=self.identity.region,
            relay_id=self.identity.relay_id if self.identity.relays_on else None,
            current_timestamp=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            colibri2=True,
            conferences=len(conferences),
            octo_conferences=sum(1 for c in conferences if c.relays),
            inactive_conferences=sum(1 for c in conferences if not c.endpoints),
            p2p_conferences=sum(1 for n in sizes if n == 2),
            largest_conference=max(sizes, default=0),
            endpoints=len(local) + relayed,
            participants=len(local) + relayed,
            local_endpoints=len(local),
            local_active_endpoints=sum(1 for e in local if e.remote_transport is not None),
            receive_only_endpoints=sum(1 for e in local if not e.sources),
            inactive_endpoints=sum(1 for e in local if e.remote_transport is None),
            octo_endpoints=relayed,
            endpoints_sending_audio=sending_audio,
            endpoints_sending_video=sending_video,
            endpoints_with_suspended_sources=0,
            visitors=sum(1 for e in local if e.visitor),
            endpoints_disconnected=0,
            endpoints_reconnected=0,
            endpoints_with_spurious_remb=0,
            incoming_loss=0.0,
            outgoing_loss=0.0,
            overall_loss=0.0,
            endpoints_with_high_outgoing_loss=0,
            tcc_unmatched_feedback=0,
            bit_rate_download=0.0,
            bit_rate_upload=0.0,
            packet_rate_download=0,
            packet_rate_upload=0,
            rtt_aggregate=0.0,
            num_eps_oversending=0,
            total_bytes_received=0,
            total_bytes_sent=0,
            total_packets_received=0,
            total_packets_sent=0,
            total_bytes_received_octo=0,
            total_bytes_sent_octo=0,
            total_packets_received_octo=0,
            total_packets_sent_octo=0,
            octo_receive_bitrate=0.0,
            octo_receive_packet_rate=0,
            octo_send_bitrate=0.0,
            octo_send_packet_rate=0,
            total_conferences_created=self.total_conferences_created,
            total_conferences_completed=self.total_conferences_completed,
            total_conference_seconds=int(self.total_conference_seconds + open_seconds),
            total_participants=self.total_participants,
            total_visitors=self.total_visitors,
            total_relays=self.total_relays,
            num_eps_no_msg_transport_after_delay=0,
            num_relays_no_msg_transport_after_delay=0,
            total_keyframes_received=0,
            total_layering_changes_received=0,
            total_video_stream_milliseconds_received=0,
            total_data_channel_messages_received=0,
            total_data_channel_messages_sent=0,
            total_colibri_web_socket_messages_received=0,
            total_colibri_web_socket_messages_sent=0,
            total_dominant_speaker_changes=0,
            preemptive_kfr_sent=0,
            preemptive_kfr_suppressed=0,
            total_ice_failed=0,
            total_ice_succeeded=sum(1 for e in local if e.remote_transport is not None),
            total_ice_succeeded_relayed=0,
            endpoints_ice_failed=0,
            dtls_failed_endpoints=0,
            relays_ice_failed=0,
            dtls_failed_relays=0,
            threads=64,
            muc_clients_configured=self.muc_clients_configured,
            muc_clients_connected=self.muc_clients_connected,
            mucs_configured=self.mucs_configured,
            mucs_joined=self.mucs_joined,
        )
        if self.identity.stats_filter:
            return BridgeStats.from_mapping(stats.items(STATS_FILTER_WHITELIST))
        return stats

    def dump(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (the control API's `/state`)."""
        return {
            "nickname": self.identity.nickname,
            "version": self.identity.full_version,
            "region": self.identity.region,
            "relay_id": self.identity.relay_id,
            "healthy": self.healthy,
            "drain": self.drain,
            "shutdown_state": self.state.value,
            "fingerprint": self.fingerprint,
            "conferences": {mid: _dump_conference(c) for mid, c in self.conferences.items()},
        }


# ---------------------------------------------------------------------------------------------
# Helpers


def _only_expires_or_mutes(modify: rq.ConferenceRequest) -> bool:
    """True when the request does nothing but expire or force-mute (or set last-n): then
    unknown endpoints and relays are skipped instead of refused (§2.4)."""
    if any(e.changes_state for e in modify.endpoints):
        return False
    for relay in modify.relays:
        if relay.create or relay.medias or relay.transport is not None:
            return False
        if any(e.changes_state for e in relay.endpoints):
            return False
    return True


def _check_endpoint_sctp(identity: BridgeIdentity, sctp: rq.Sctp) -> None:
    if not identity.sctp_enabled:
        raise StanzaError("feature-not-implemented", "SCTP support is not configured")
    if sctp.role is not None and sctp.role != "server":
        raise StanzaError("feature-not-implemented", f"Unsupported SCTP role: {sctp.role}")
    if sctp.port is not None and sctp.port != an.SCTP_PORT:
        raise _bad_request(f"Specific SCTP port requested, not supported: {sctp.port}")


def _merge_remote(previous: rq.PeerIce | None, update: rq.PeerIce) -> rq.PeerIce:
    """A transport-info adds candidates to what the peer sent before (same credentials)."""
    if previous is None or (update.ufrag and update.ufrag != previous.ufrag):
        return update
    known = set(previous.candidates)
    added = tuple(c for c in update.candidates if c not in known)
    return rq.PeerIce(
        ufrag=previous.ufrag,
        pwd=previous.pwd,
        fingerprint_setups=update.fingerprint_setups or previous.fingerprint_setups,
        candidates=previous.candidates + added,
        web_sockets=update.web_sockets or previous.web_sockets,
        web_socket_active=previous.web_socket_active or update.web_socket_active,
        rtcp_mux=previous.rtcp_mux or update.rtcp_mux,
        ice_generation=(
            update.ice_generation if update.ice_generation is not None else previous.ice_generation
        ),
    )


def _base32(number: int) -> str:
    if number == 0:
        return "0"
    out = []
    while number:
        number, digit = divmod(number, 32)
        out.append(_BASE32[digit])
    return "".join(reversed(out))


def _dump_sources(sources: tuple[rq.NamedSource, ...]) -> list[dict[str, Any]]:
    return [
        {"type": m.type, "id": m.id, "ssrcs": list(m.ssrcs),
         "groups": [{"semantics": g.semantics, "ssrcs": list(g.ssrcs)} for g in m.groups]}
        for m in sources
    ]


def _dump_conference(c: ConferenceState) -> dict[str, Any]:
    return {
        "meeting_id": c.meeting_id,
        "id": c.internal_id,
        "name": c.name,
        "rtcstats_enabled": c.rtcstats_enabled,
        "creator": c.creator,
        "created": c.created,
        "feedback_ssrcs": {"audio": c.feedback_audio_ssrc, "video": c.feedback_video_ssrc},
        "endpoints": {
            e.id: {
                "stats_id": e.stats_id,
                "visitor": e.visitor,
                "capabilities": list(e.capabilities),
                "ufrag": e.ufrag,
                "sctp": e.sctp,
                "force_mute": {"audio": e.force_mute_audio, "video": e.force_mute_video},
                "sources": _dump_sources(e.sources),
                "medias": list(e.medias),
                "connected": e.remote_transport is not None,
                "remote_ufrag": e.remote_transport.ufrag if e.remote_transport is not None else None,
                "remote_candidates": len(e.remote_transport.candidates) if e.remote_transport else 0,
                "initial_last_n": e.initial_last_n,
                "ice_generation": e.ice_generation,
            }
            for e in c.endpoints.values()
        },
        "relays": {
            r.id: {
                "mesh_id": r.mesh_id,
                "ice_controlling": r.ice_controlling,
                "use_unique_port": r.use_unique_port,
                "port": r.port,
                "sctp_role": r.sctp_role,
                "dtls_role": r.dtls_role,
                "connected": r.remote_transport is not None,
                "endpoints": {
                    e.id: {"stats_id": e.stats_id, "sources": _dump_sources(e.sources)}
                    for e in r.endpoints.values()
                },
            }
            for r in c.relays.values()
        },
        "connects": {
            key: {"url": x.url, "type": x.type, "audio": x.audio, "video": x.video}
            for key, x in c.connects.items()
        },
    }
