"""A simulated Jitsi Meet participant that behaves on the wire like lib-jitsi-meet (docs/client.md
§1-3): it logs in, asks the focus for the conference until it is ready, joins the MUC with the
client's presence, answers the focus's Jingle session, and can be scripted (screen share, mute,
restart, ICE failure, leave). Everything it sends and receives goes into a timestamped event log,
and every deviation of the focus from what the client expects into an error list.

    p = SimulatedParticipant(ParticipantOptions(xmpp=settings, room="room@conference.example.com",
                                                focus="focus@auth.example.com/focus"))
    async with trio.open_nursery() as nursery:
        await nursery.start(p.run)                      # returns once in the room
        await p.wait_for_session(10)                    # session-initiate answered and accepted
        name = await p.add_source("desktop")            # screen share: source-add to the focus
        await p.wait_for_remote_sources("abcd1234", 5)  # someone else's sources arrived
        await p.leave()
    assert not p.errors

Event kinds (`ParticipantEvent.kind`, direction in/out/local): login, conference-request,
conference-not-ready, conference-ready, joined, join-retry, presence, room-info, occupant-joined,
occupant-changed, occupant-left, focus-left, conference-failed, self-left, rejoined, disco-info,
every Jingle action by its name (in and out), ack, iq-error, result (detail: the action
answered), error-answer, remote-sources, session-closed, source-add-rejected, p2p-declined,
note, mute-request (in: the focus muted us; detail has the actor), mute (out: our
request), mute-result, mute-refused, left, failed, error.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn
from xml.etree.ElementTree import Element

import trio

from jicofo.tasks import single_cause
from jicofo.xmpp.caps import DiscoInfo, Identity, caps_element, compute_ver
from jicofo.xmpp.client import NS_DISCO_INFO, XMPPClient
from jicofo.xmpp.errors import IQTimeout, StanzaError, XMPPError
from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.muc import (
    MucError,
    MucRoom,
    OccupantChanged,
    OccupantJoined,
    OccupantLeft,
    Rejoined,
    SelfLeft,
)
from jicofo.xmpp.settings import ClientSettings
from jicofo.xmpp.xml import element, qn

from . import client_jingle as cj
from .client_conference import CONFERENCE_TAG, ClientConferenceAnswer, read_answer, request_element
from .client_jingle import JINGLE_TAG, NS_JM, BridgeSession, Jingle, Reason
from .client_sources import EndpointSources, RemoteSources
from .participant_jingle import FOCUS_NICK, JingleResponder, SimJingleSession
from .participant_sources import (
    AUDIO,
    CAMERA,
    CAPS_NODE,
    Codecs,
    LocalMedia,
    client_features,
    source_contents,
)

log = logging.getLogger(__name__)

NS_NICK = "http://jabber.org/protocol/nick"
FOCUS_LEFT = "conference.focusLeft"  # lib-jitsi-meet's CONFERENCE_FAILED reason
MUTE_NAMESPACES = {
    "http://jitsi.org/jitmeet/audio": "audio",
    "http://jitsi.org/jitmeet/video": "video",
    "http://jitsi.org/jitmeet/desktop": "desktop",
}


class ParticipantError(Exception):
    """The participant could not get into the conference (refused, not ready in time, ...)."""


@dataclass(frozen=True, slots=True)
class IceRestartResult:
    """How an in-place ICE restart request ended: `restarted` (new bridge credentials applied and
    ours sent), `refused` (an error answer, in `error`), `accepted` (answered result, not waited
    for), `timeout` (result, but no new credentials in time) or `session-closed`."""

    outcome: str
    error: StanzaError | None = None
    generation: int | None = None
    ufrag: str | None = None  # the bridge's new ufrag

    @property
    def ok(self) -> bool:
        return self.outcome == "restarted"


class ParticipantTimeout(ParticipantError, TimeoutError):
    """A `wait_for*` deadline passed."""


class SourceRejected(ParticipantError):
    """The focus answered our source-add with an error (lib-jitsi-meet: TRACK_UNMUTE_REJECTED)."""

    def __init__(self, error: StanzaError) -> None:
        super().__init__(f"source-add refused: {error}")
        self.error = error


@dataclass(frozen=True, slots=True)
class ParticipantTimeouts:
    login: float = 15.0
    conference: float = 60.0  # overall deadline until the focus answers ready=true
    conference_retry_min: float = 1.0  # not ready: retry after 1, 2, 4 ... s (the client's back-off)
    conference_retry_max: float = 120.0
    join: float = 10.0
    join_retries: int = 3  # "room creation is restricted" races: re-request and re-join
    join_retry_jitter: tuple[float, float] = (0.5, 3.0)
    accept: float = 10.0  # the client's SESSION_ACCEPT_TIMEOUT
    request: float = 10.0  # other IQs we send the focus
    leave: float = 3.0
    room_info: float = 5.0
    # After an accepted in-place ICE restart request the client gives ICE this long to recover
    # before it falls back to a session restart (lib-jitsi-meet: 15 s).
    ice_restart: float = 15.0


def _default_properties() -> dict[str, str]:
    return {"rtcstatsEnabled": "false", "visitors-version": "1"}


@dataclass(frozen=True)
class ParticipantOptions:
    """How the simulated client is configured. `xmpp` logs in anonymously unless it has a
    username; `focus` is where the conference IQ goes (lib-jitsi-meet's `hosts.focus`, default
    `focus.<xmpp domain>`; a full JID like `focus@auth.example.com/focus` works too)."""

    xmpp: ClientSettings
    room: str
    focus: str | None = None
    focus_user_jid: str | None = None  # bare JID trusted as the focus before any IQ answer
    nick: str | None = None  # endpoint id; default: like the client (8 hex chars)
    display_name: str | None = None
    stats_id: str | None = None
    region: str | None = None
    machine_uid: str | None = None
    token: str | None = None
    conference_properties: Mapping[str, str] = field(default_factory=_default_properties)
    audio: bool = True  # has a microphone track
    video: bool = True  # has a camera track
    audio_muted: bool = False
    video_muted: bool = False
    audio_only: bool = False  # does not advertise video at all
    simulcast: bool = True
    simulcast_layers: int = 3
    rtx: bool = True
    json_sources: bool = True  # advertise http://jitsi.org/json-encoded-sources
    ssrc_rewriting: bool = False  # advertise http://jitsi.org/ssrc-rewriting-1
    data_channel: bool = True  # advertise dtls-sctp
    opus_red: bool = False
    codecs: tuple[str, ...] = ("av1", "vp9", "vp8", "h264")
    extra_features: frozenset[str] = frozenset()
    send_transport_info: bool = False  # trickle one host candidate after session-accept
    initial_last_n: int | None = None  # <initial-last-n> in the answer's video content (config channelLastN)
    apply_transport_replace: bool = False  # False: ack and ignore it, like lib-jitsi-meet
    empty_source_info_first: bool = False  # join with SourceInfo {} and publish sources after
    query_room_info: bool = True  # disco#info to the room after joining, like the client
    seed: int | None = None
    max_events: int = 10_000
    timeouts: ParticipantTimeouts = ParticipantTimeouts()

    @property
    def focus_address(self) -> str:
        return self.focus or f"focus.{self.xmpp.domain}"


@dataclass(frozen=True, slots=True)
class ParticipantEvent:
    seq: int
    time: float  # trio.current_time()
    direction: str  # in | out | local
    kind: str
    detail: str = ""
    sid: str | None = None


class SimulatedParticipant(JingleResponder):
    """One simulated lib-jitsi-meet client (see the module docstring)."""

    def __init__(self, options: ParticipantOptions, *, name: str | None = None) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.client = XMPPClient(options.xmpp, name=name)
        self.room_jid = JID.parse(options.room)
        self.features = client_features(
            audio_only=options.audio_only, data_channel=options.data_channel,
            json_sources=options.json_sources, rtx=options.rtx, opus_red=options.opus_red,
            ssrc_rewriting=options.ssrc_rewriting, extra=options.extra_features,
        )
        self.disco = DiscoInfo((Identity("client", "web", "Jitsi Meet"),), self.features)
        self.caps_ver = compute_ver(self.disco)
        self.codecs = Codecs(tuple(c.lower() for c in options.codecs), options.opus_red, options.rtx)
        self.stats_id = options.stats_id or f"Sim-{self.rng.getrandbits(16):04x}"
        self.machine_uid = options.machine_uid or f"{self.rng.getrandbits(128):032x}"
        # Observations.
        self.endpoint_id: str | None = None
        self.state = "new"  # new, connecting, requesting, joining, joined, left, failed
        self.conference_answer: ClientConferenceAnswer | None = None
        self.conference_failed: str | None = None  # e.g. "focus left"
        self.trusted_focus: set[JID] = set()
        if options.focus_user_jid:
            self.trusted_focus.add(JID.parse(options.focus_user_jid).bare)
        self.room: MucRoom | None = None
        self.local: LocalMedia | None = None
        self.remote = RemoteSources()
        self.session: SimJingleSession | None = None
        self.sessions_accepted = 0
        self.events: deque[ParticipantEvent] = deque(maxlen=options.max_events)
        self.errors: list[str] = []
        # Internals.
        self._seq = 0
        self._changed = trio.Event()
        self._lock = trio.Lock()  # one signalling change at a time (lib-jitsi-meet's queue)
        self._finished = trio.Event()
        self._leaving = False
        self._nursery: trio.Nursery | None = None
        self._inbox_tx, self._inbox_rx = trio.open_memory_channel[Element](1000)
        self._work_tx, self._work_rx = trio.open_memory_channel[tuple[str, Jingle]](1000)
        self._active_sid: str | None = None  # as of the acks: what the focus may address
        self._active_remote: str | None = None
        self._closed_sids: deque[str] = deque(maxlen=32)
        self.client.add_iq_handler(qn(NS_DISCO_INFO, "query"), self._answer_disco, types=("get",))
        self.client.add_iq_router(JINGLE_TAG, self._route_jingle, types=("set",))
        for ns in MUTE_NAMESPACES:
            self.client.add_iq_router(qn(ns, "mute"), self._route_mute, types=("set",))

    # ----- observations ---------------------------------------------------------------------------

    @property
    def error_count(self) -> int:
        return len(self.errors)

    @property
    def is_moderator(self) -> bool:
        """Our own MUC role or affiliation gives moderator rights (what the focus checks)."""
        room = self.room
        return room is not None and (room.role == "moderator" or room.affiliation in ("owner", "admin"))

    @property
    def focus_muc_jid(self) -> str:
        return str(self.room_jid.with_resource(FOCUS_NICK))

    def remote_sources_of(self, endpoint_id: str) -> EndpointSources:
        return self.remote.get(endpoint_id)

    def events_of(self, kind: str, direction: str | None = None) -> list[ParticipantEvent]:
        return [e for e in self.events if e.kind == kind and direction in (None, e.direction)]

    def first(self, kind: str, direction: str | None = None) -> ParticipantEvent | None:
        """The earliest logged event of `kind` (e.g. for time-to-join figures)."""
        return next((e for e in self.events if e.kind == kind and direction in (None, e.direction)), None)

    def last(self, kind: str, direction: str | None = None) -> ParticipantEvent | None:
        """The latest logged event of `kind`."""
        return next((e for e in reversed(self.events) if e.kind == kind and direction in (None, e.direction)),
                    None)

    @property
    def last_seq(self) -> int:
        """The sequence number of the latest event (pass as `since` to wait for newer ones)."""
        return self._seq

    # ----- waiting ------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
        """Wait until `predicate()` holds (checked after every event), at most `timeout` s."""
        with trio.move_on_after(timeout):
            while not predicate():
                changed = self._changed
                await changed.wait()
            return
        raise ParticipantTimeout(f"{self.endpoint_id or 'participant'}: no {what} within {timeout} s")

    async def wait_for_event(
        self, kind: str, timeout: float, *, direction: str | None = None, since: int = 0
    ) -> ParticipantEvent:
        """The first event of `kind` with a sequence number above `since`."""
        found: list[ParticipantEvent] = []

        def seen() -> bool:
            nonlocal since
            for event in reversed(self.events):  # newest first; stop at what was already seen
                if event.seq <= since:
                    break
                if event.kind == kind and direction in (None, event.direction):
                    found.append(event)
            if found:
                return True
            since = self._seq
            return False

        await self.wait_for(seen, timeout, f"{direction or ''} {kind} event")
        return found[-1]

    async def wait_for_session(self, timeout: float, *, other_than: str | None = None) -> SimJingleSession:
        """Wait for an accepted session (one whose sid is not `other_than`, after a restart)."""
        def ready() -> bool:
            return self.session is not None and self.session.accepted and self.session.sid != other_than

        await self.wait_for(ready, timeout, "accepted session")
        assert self.session is not None
        return self.session

    async def wait_for_remote_sources(
        self, endpoint_id: str, timeout: float, *, count: int | None = None
    ) -> EndpointSources:
        """Wait until `endpoint_id` has sources (at least `count` SSRCs; `count=0`: none at all)."""
        def ok() -> bool:
            n = len(self.remote.get(endpoint_id).sources)
            return n == 0 if count == 0 else n >= (count or 1)

        await self.wait_for(ok, timeout, f"remote sources of {endpoint_id}")
        return self.remote.get(endpoint_id)

    # ----- the run --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Log in, get the conference, join the room, then serve until `leave()` (or a kick).
        `task_status.started()` once in the room. Raises ParticipantError when it cannot join."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    await self._start(nursery)
                except XMPPError as exc:
                    self._fail(f"{type(exc).__name__}: {exc}")
                task_status.started()
                await self._finished.wait()
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise single_cause(group) from None
        finally:
            if self.state != "failed":
                self.state = "left"
            self._finished.set()
            self._notify()

    async def _start(self, nursery: trio.Nursery) -> None:
        t = self.options.timeouts
        self.state = "connecting"
        try:
            with trio.fail_after(t.login):
                await nursery.start(self.client.run)
        except trio.TooSlowError:
            self._fail(f"could not log in within {t.login} s")
        assert self.client.jid is not None
        self.endpoint_id = self._choose_nick(self.client.jid)
        self.local = LocalMedia(
            self.endpoint_id, self.options.simulcast_layers if self.options.simulcast else 1,
            self.options.rtx, self.rng,
        )
        if self.options.audio:
            self.local.add(self.local.create(AUDIO, muted=self.options.audio_muted))
        if self.options.video and not self.options.audio_only:
            self.local.add(self.local.create(CAMERA, muted=self.options.video_muted))
        self._record("out", "login", str(self.client.jid))
        nursery.start_soon(self._ack_loop)
        nursery.start_soon(self._work_loop)
        self.room = MucRoom(
            self.client, self.room_jid, self.endpoint_id,
            presence_extensions=self._presence_extensions(empty=self.options.empty_source_info_first),
            rejoin_nursery=nursery,
        )
        await self._join()
        nursery.start_soon(self._room_events, self.room)
        if self.options.query_room_info:
            nursery.start_soon(self._room_info, self.room)
        if self.options.empty_source_info_first:
            await self._publish_presence()

    def _choose_nick(self, jid: JID) -> str:
        """Like the client: the anonymous JID's node when it starts with 8 hex chars, else random."""
        if self.options.nick:
            return self.options.nick
        node = (jid.local or "")[:8].lower()
        hex_node = len(node) == 8 and all(c in "0123456789abcdef" for c in node)
        if self.options.xmpp.username is None and hex_node:
            return node
        return f"{self.rng.getrandbits(32):08x}"

    def _fail(self, reason: str) -> NoReturn:
        self.state = "failed"
        self._record("local", "failed", reason)
        raise ParticipantError(reason)

    async def _request_conference(self) -> ClientConferenceAnswer:
        """Send the conference IQ until the answer says ready, backing off like the client."""
        t = self.options.timeouts
        self.state = "requesting"
        delay = t.conference_retry_min
        invalid_delay = 1.0
        session_id: str | None = None
        with trio.move_on_after(t.conference):
            while True:
                request = request_element(
                    str(self.room_jid), machine_uid=self.machine_uid, token=self.options.token,
                    session_id=session_id, properties=dict(self.options.conference_properties),
                )
                self._record("out", "conference-request", self.options.focus_address)
                iq = self.client.iq("set", self.options.focus_address, request)
                try:
                    result = await self.client.request(iq, timeout=t.conference)
                except StanzaError as err:
                    self._record("in", "conference-error", str(err))
                    invalid = err.app_element is not None and err.app_element.tag.endswith("}session-invalid")
                    if (err.condition == "not-acceptable" or invalid) and invalid_delay < 60:
                        session_id = None
                        await trio.sleep(invalid_delay)
                        invalid_delay *= 2
                        continue
                    self._fail(f"conference request refused: {err}")
                except IQTimeout:
                    continue
                payload = result.find(CONFERENCE_TAG)
                try:
                    answer = read_answer(payload if payload is not None else result)
                except ValueError as exc:
                    self._error(f"malformed conference answer: {exc}")
                    self._fail(f"malformed conference answer: {exc}")
                self.conference_answer = answer
                session_id = answer.session_id or session_id
                if answer.focus_jid:
                    try:
                        self.trusted_focus.add(JID.parse(answer.focus_jid).bare)
                    except InvalidJID:
                        self._error(f"conference answer has an invalid focusjid {answer.focus_jid!r}")
                else:
                    self._record("local", "note", "conference answer without focusjid")
                if answer.vnode:
                    self._fail(f"redirected to visitor node {answer.vnode}")
                if answer.properties.get("live") == "false":
                    self._fail("conference not live yet")
                if answer.ready:
                    self._record("in", "conference-ready", answer.focus_jid or "")
                    return answer
                self._record("in", "conference-not-ready", f"retry in {delay:g} s")
                await trio.sleep(delay)
                delay = min(delay * 2, t.conference_retry_max)
        self._fail(f"the focus did not answer ready=true within {t.conference} s")

    async def _join(self) -> None:
        assert self.room is not None
        t = self.options.timeouts
        for attempt in range(t.join_retries + 1):
            await self._request_conference()
            self.state = "joining"
            self._record("out", "join", str(self.room.own_jid))
            try:
                joined = await self.room.join(timeout=t.join)
            except StanzaError as err:
                app = err.app_element
                restricted = err.condition == "not-allowed" or (
                    app is not None and app.tag == qn(NS_JM, "room-does-not-exist")
                )
                if restricted and attempt < t.join_retries:
                    self._record("in", "join-retry", str(err))
                    await trio.sleep(self.rng.uniform(*t.join_retry_jitter))
                    continue
                self._fail(f"could not join {self.room_jid}: {err}")
            except MucError as exc:
                self._fail(str(exc))
            self.state = "joined"
            self._record("in", "joined", f"role={joined.role} affiliation={joined.affiliation}")
            if joined.created:  # we created the room ourselves: expose real JIDs, as the client does
                with trio.move_on_after(t.request):
                    try:
                        await self.room.configure({"muc#roomconfig_whois": "anyone"})
                    except XMPPError as exc:
                        self._record("local", "note", f"could not configure the room: {exc}")
            return

    async def _room_info(self, room: MucRoom) -> None:
        with trio.move_on_after(self.options.timeouts.room_info):
            try:
                fields = await room.room_info()
            except XMPPError as exc:
                self._record("in", "room-info", f"error: {exc}")
                return
            meeting = fields.get("muc#roominfo_meetingId", [""])[0]
            self._record("in", "room-info", f"meetingId={meeting or '-'}")

    async def _room_events(self, room: MucRoom) -> None:
        async for event in room.events:
            if isinstance(event, OccupantJoined):
                self._record("in", "occupant-joined", event.occupant.nick)
            elif isinstance(event, OccupantChanged):
                self._record("in", "occupant-changed", event.occupant.nick)
            elif isinstance(event, OccupantLeft):
                occupant = event.occupant
                self._record("in", "occupant-left", occupant.nick)
                if occupant.nick == FOCUS_NICK and occupant.jid is not None \
                        and occupant.jid.bare in self.trusted_focus:
                    # lib-jitsi-meet fails the conference (CONFERENCE_FAILED
                    # conference.focusLeft); the app then reloads the page (see the stress
                    # runner), which is a new participant.
                    self.conference_failed = "focus left"
                    self._record("in", "focus-left", str(occupant.jid))
                    if not self._leaving:
                        self._record("local", "conference-failed", FOCUS_LEFT)
            elif isinstance(event, SelfLeft):
                self._record("in", "self-left", event.reason)
                if not self._leaving:
                    self.conference_failed = event.reason
                    self._finished.set()
                return
            elif isinstance(event, Rejoined):
                self._record("local", "rejoined")
                async with self._lock:
                    self._drop_session("rejoined the room after a new XMPP session")

    # ----- presence -----------------------------------------------------------------------------

    def _presence_extensions(self, *, empty: bool = False) -> list[Element]:
        assert self.local is not None
        ns = self.client.content_ns
        extensions = [
            element(qn(ns, "stats-id"), text=self.stats_id),
            caps_element(CAPS_NODE, self.caps_ver),
            element(qn(ns, "SourceInfo"), text="{}" if empty else self.local.source_info_json()),
            element(qn(ns, "jitsi_participant_codecList"), text=",".join(self.codecs.video)),
        ]
        if self.options.region:
            extensions.append(element(qn(ns, "jitsi_participant_region"), text=self.options.region))
        if self.options.display_name:
            extensions.append(element(qn(NS_NICK, "nick"), text=self.options.display_name))
        return extensions

    async def _publish_presence(self) -> None:
        if self.room is None or not self.room.joined:
            return
        extensions = self._presence_extensions()
        self._record("out", "presence", extensions[2].text or "")
        await self.room.set_presence(extensions)

    async def _answer_disco(self, iq: Element) -> Element:
        node = list(iq)[0].get("node")
        if node and node != f"{CAPS_NODE}#{self.caps_ver}":
            raise StanzaError("item-not-found", "unknown node")
        self._record("in", "disco-info", iq.get("from", ""))
        return self.disco.to_element(node)

    # ----- scripting ----------------------------------------------------------------------------

    async def set_muted(
        self, *, audio: bool | None = None, video: bool | None = None, desktop: bool | None = None
    ) -> None:
        """Change mute state; only `SourceInfo` in the presence tells (sources stay signaled)."""
        local = self._require_local()
        if local.set_muted(audio=audio, video=video, desktop=desktop):
            await self._publish_presence()

    async def add_source(self, kind: str = "desktop") -> str:
        """Start a track (`desktop`: screen share, `camera`, `audio`) and signal it with a
        source-add (when a session exists) and presence. Returns the source name. Raises
        SourceRejected when the focus refuses it (the source is then dropped again)."""
        local = self._require_local()
        async with self._lock:
            source = local.create(kind, self.remote.all_ssrcs())
            local.add(source)
            session = self.session
            if session is not None and session.accept_sent:
                jingle = Jingle(cj.SOURCE_ADD, session.sid, initiator=session.focus,
                                contents=source_contents([source]))
                try:
                    await self._send_jingle(session, jingle, f"{source.name} ({len(source.ssrcs)} ssrcs)")
                except StanzaError as err:
                    local.remove(source.name)
                    self._record("local", "source-add-rejected", f"{source.name}: {err}")
                    raise SourceRejected(err) from None
            await self._publish_presence()
            return source.name

    async def remove_source(self, name: str) -> None:
        """Stop the track `name` (e.g. end the screen share): source-remove and presence."""
        local = self._require_local()
        async with self._lock:
            source = local.remove(name)
            session = self.session
            if session is not None and session.accept_sent:
                jingle = Jingle(cj.SOURCE_REMOVE, session.sid, initiator=session.focus,
                                contents=source_contents([source]))
                try:
                    await self._send_jingle(session, jingle, name)
                except StanzaError as err:
                    self._record("local", "note", f"source-remove of {name} refused: {err}")
            await self._publish_presence()

    async def request_restart(self, *, ice_failed: bool = False) -> bool:
        """Ask the focus for a new session (docs/client.md §3.6): session-terminate with `<success/>`
        "restart required" (or `<connectivity-error/>` "ICE FAILED") and `<bridge-session restart=true>`;
        the session is closed locally and the focus is expected to send a new session-initiate.
        Returns whether the focus accepted (an error means ICE_FAILED for the client)."""
        async with self._lock:
            session = self._require_session()
            reason = (Reason("connectivity-error", "ICE FAILED") if ice_failed
                      else Reason("success", "restart required"))
            bridge = None
            if session.bridge_session is not None:
                bridge = BridgeSession(session.bridge_session.id, restart=True)
            jingle = Jingle(cj.SESSION_TERMINATE, session.sid, initiator=session.focus,
                            reason=reason, bridge_session=bridge)
            self._drop_session("restart requested")
            try:
                await self._send_jingle(session, jingle, reason.condition)
            except StanzaError as err:
                if ice_failed:
                    self.conference_failed = f"ICE failed; restart refused: {err}"
                return False
            return True

    async def report_ice_failed(self) -> bool:
        """session-info with `<ice-state>failed</ice-state>` and the bridge-session id
        (docs/jicofo.md §7.8)."""
        session = self._require_session()
        bridge = BridgeSession(session.bridge_session.id) if session.bridge_session else None
        jingle = Jingle(cj.SESSION_INFO, session.sid, initiator=session.focus,
                        ice_state="failed", bridge_session=bridge)
        try:
            await self._send_jingle(session, jingle, "ice-state failed")
        except StanzaError:
            return False
        return True

    async def request_ice_restart(self, *, wait: bool = True) -> IceRestartResult:
        """The opt-in in-place ICE restart of lib-jitsi-meet (docs/client.md §3.7): session-info with
        `<bridge-session ice-restart=true>`; once the focus answers `result`, its transport-info
        with the bridge's new credentials (a higher ice-generation) is applied and answered with
        our own new credentials (the Jingle loop does that). With `wait` this returns when that
        is done, or after `timeouts.ice_restart` without it (the client would then fall back to
        a session restart); the caller decides about the fallback."""
        session = self._require_session()
        if session.bridge_session is None:
            raise ParticipantError("the offer named no bridge-session")
        before = session.ice_generation
        jingle = Jingle(cj.SESSION_INFO, session.sid, initiator=session.focus,
                        bridge_session=BridgeSession(session.bridge_session.id, ice_restart=True))
        try:
            await self._send_jingle(session, jingle, "ice-restart")
        except StanzaError as err:
            return IceRestartResult("refused", error=err)
        if not wait:
            return IceRestartResult("accepted")

        def restarted() -> bool:
            return self.session is not session or session.ice_generation_answered > before

        try:
            await self.wait_for(restarted, self.options.timeouts.ice_restart, "ICE restart transport-info")
        except ParticipantTimeout:
            self._record("local", "ice-restart-timeout", f"no new credentials within "
                         f"{self.options.timeouts.ice_restart:g} s", session.sid)
            return IceRestartResult("timeout")
        if self.session is not session:
            return IceRestartResult("session-closed")
        transport = session.remote_transport
        return IceRestartResult("restarted", generation=session.ice_generation,
                                ufrag=transport.ufrag if transport else None)

    async def leave(self) -> None:
        """Leave the room (no session-terminate: the focus learns it from the presence) and log
        out. `run()` returns."""
        if self._leaving:
            return
        self._leaving = True
        self._drop_session("leaving")
        with trio.move_on_after(self.options.timeouts.leave):
            try:
                if self.room is not None and self.room.joined:
                    await self.room.leave()
                await self.client.aclose()
            except XMPPError as exc:
                self._record("local", "note", f"leave: {exc}")
        self._record("out", "left")
        self._finished.set()

    def _require_local(self) -> LocalMedia:
        if self.local is None:
            raise ParticipantError("not logged in yet")
        return self.local

    def _require_session(self) -> SimJingleSession:
        if self.session is None:
            raise ParticipantError("no Jingle session")
        return self.session

    # ----- mute (docs/client.md §4.1) ---------------------------------------------------------

    async def request_mute(self, target: str | None, media: str = "audio", mute: bool = True) -> None:
        """Ask the focus to (un)mute `target`'s `media` (a nick; None: ourselves), as
        lib-jitsi-meet's muteParticipant does: `<mute xmlns=…/audio|video|desktop jid=…>` to the
        focus's occupant JID. Raises StanzaError when refused (the client's
        MUTE_PARTICIPANT_ERROR); on success a self-mute or self-unmute is applied locally."""
        ns = next(n for n, kind in MUTE_NAMESPACES.items() if kind == media)
        nick = target or self.endpoint_id
        if nick is None:
            raise ParticipantError("not in the room yet")
        payload = element(qn(ns, "mute"), {"jid": str(self.room_jid.with_resource(nick))},
                          text="true" if mute else "false")
        what = f"{media} {'true' if mute else 'false'} of {nick}"
        self._record("out", "mute", what)
        try:
            await self.client.request(self.client.iq("set", self.focus_muc_jid, payload),
                                      timeout=self.options.timeouts.request)
        except StanzaError as err:
            self._record("in", "mute-refused", f"{what}: {err.condition}")
            raise
        self._record("in", "mute-result", what)
        if nick == self.endpoint_id:
            await self.set_muted(**{media: mute})

    def _route_mute(self, iq: Element) -> None:
        # The client never answers these (docs/client.md §4.1) and only obeys the focus.
        payload = list(iq)[0]
        kind = MUTE_NAMESPACES[payload.tag[1:].split("}", 1)[0]]
        text = (payload.text or "").strip()
        actor = payload.get("actor")
        self._record("in", "mute-request",
                     f"{kind} {text} from {iq.get('from')}" + (f" actor {actor}" if actor else ""))
        if iq.get("from") != self.focus_muc_jid:
            self._record("local", "note", f"mute request not from the focus ignored: {iq.get('from')}")
        elif text == "true" and self._nursery is not None:
            self._nursery.start_soon(self._mute_by_focus, kind)

    async def _apply_start_muted(self, audio: bool, video: bool) -> None:
        self._record("in", "start-muted", f"audio={audio} video={video}")
        local = self._require_local()
        if local.set_muted(audio=True if audio else None, video=True if video else None):
            await self._publish_presence()

    async def _mute_by_focus(self, kind: str) -> None:
        try:
            await self.set_muted(**{kind: True})
        except XMPPError as exc:
            self._record("local", "note", f"mute by focus: {exc}")

    # ----- the log ------------------------------------------------------------------------------

    def _record(self, direction: str, kind: str, detail: str = "", sid: str | None = None) -> None:
        self._seq += 1
        self.events.append(ParticipantEvent(self._seq, trio.current_time(), direction, kind, detail, sid))
        log.debug("%s %s %s %s %s", self.endpoint_id, direction, kind, sid or "", detail)
        self._notify()

    def _error(self, message: str) -> None:
        self.errors.append(message)
        log.warning("participant %s: %s", self.endpoint_id, message)
        self._record("local", "error", message)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
