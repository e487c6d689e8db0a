"""An in-memory conference harness: our focus, bridges and guests with no Prosody and no sockets.

    async with memory_stack() as stack:              # under pytest-trio's autojump_clock
        await stack.add_bridge("jvb1")
        room = await stack.open_conference("standup")    # a conference request, answered ready
        ana = await stack.join(room, "ana")              # a guest: joins the MUC, accepts offers
        await ana.wait_for(lambda: ana.session_accepted, 5, "ana's session")

What is real: the focus's own objects (Focus, Conference, Participant, ColibriSession, Brewery,
MucRoom, BaseXMPPConnection's IQ requests, handlers, routers and deadlines) and the Colibri2
answers (the sans-IO `jicofo.sim.bridge_engine.BridgeEngine`). What stands in: the XMPP server.
`Switchboard` routes stanzas by their `to` between `MemoryConnection`s, stamping `from` as a
server does and copying every stanza through our serializer and hardened parser, so nothing is
shared by reference across the "wire"; `_MucService` plays XEP-0045 (joins, presence broadcast
with real JIDs, the owner form, room info with a meeting id, affiliation changes, kicks, IQs
forwarded between occupants) for the conference MUC, the breakout MUC and the bridge brewery;
the server's disco#info lists the breakout_rooms component, so breakout rooms work as well.

Under trio's MockClock with autojump every timer of the focus (initial and single-participant
timeouts, rate limits, health checks, request deadlines) runs in virtual time: a test of a
20-second timeout takes milliseconds and asserts on `trio.current_time()`. Integration with a real
server stays with the Prosody tests; this is for conference logic.

The guest (`MemoryMember`) is deliberately simple and shares no logic with the conference layer:
it reads sources straight off the Jingle elements it receives.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast
from xml.etree.ElementTree import Element

import trio

from jicofo.bridge.brewery import Brewery
from jicofo.bridge.selector import BridgeSelector
from jicofo.conference.conference import Conference
from jicofo.conference.offer import OfferConfig
from jicofo.conference.services import ConferenceServices
from jicofo.config.load import load_config
from jicofo.config.model import JicofoConfig
from jicofo.focus import Focus
from jicofo.sim.bridge_engine import BridgeEngine, BridgeIdentity
from jicofo.testing.waiting import wait_until
from jicofo.xmlns import colibri2 as c2
from jicofo.xmlns.conference_iq import ConferenceRequest
from jicofo.xmlns.ice_udp import Fingerprint, IceUdpTransport
from jicofo.xmlns.jingle import (
    JINGLE,
    Action,
    BridgeSession,
    JingleContent,
    JingleIQ,
    Reason,
    RtpDescription,
)
from jicofo.xmlns.mute import MUTE_TAGS
from jicofo.xmlns.ssma import SourceElement
from jicofo.xmpp.client import BaseXMPPConnection
from jicofo.xmpp.connection import Channel
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.muc import NS_MUC, NS_MUC_ADMIN, NS_MUC_OWNER, NS_MUC_USER, MucRoom
from jicofo.xmpp.settings import Timeouts
from jicofo.xmpp.xml import element, parse_fragment, serialize

log = logging.getLogger(__name__)

DOMAIN = "meet.test"
AUTH_DOMAIN = f"auth.{DOMAIN}"
MUC_DOMAIN = f"conference.{DOMAIN}"
BREAKOUT_DOMAIN = f"breakout.{DOMAIN}"
BREWERY = f"jvbbrewery@internal.{AUTH_DOMAIN}"
NS_CLIENT = "jabber:client"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DATA = "jabber:x:data"
NS_HEALTH = "http://jitsi.org/protocol/healthcheck"
NS_COLIBRI = "http://jitsi.org/protocol/colibri"
FEATURE_AUDIO = "urn:xmpp:jingle:apps:rtp:audio"
FEATURE_VIDEO = "urn:xmpp:jingle:apps:rtp:video"
FEATURE_SCTP = "urn:xmpp:jingle:transports:dtls-sctp:1"
TIMEOUTS = Timeouts(connect=5, negotiation=5, request=5, ping_interval=0, close=1)

# A stand-in for the socket: BaseXMPPConnection only checks that a channel is there.
_IN_MEMORY = cast(Channel, object())


def _copy(stanza: Element) -> Element:
    """What the receiver gets: the stanza written out and read back with the stream's parser."""
    return parse_fragment(serialize(stanza))


def _error_reply(stanza: Element, condition: str, text: str | None = None) -> Element:
    kind = stanza.tag.rsplit("}", 1)[-1]
    attrs = {"type": "error", "id": stanza.get("id", ""), "from": stanza.get("to", ""),
             "to": stanza.get("from", "")}
    reply = element(f"{{{NS_CLIENT}}}{kind}", attrs)
    reply.append(StanzaError(condition, text).to_element(NS_CLIENT))
    return reply


def _result(stanza: Element, *payload: Element) -> Element:
    return element(f"{{{NS_CLIENT}}}iq", {"type": "result", "id": stanza.get("id", ""),
                                         "from": stanza.get("to", ""), "to": stanza.get("from", "")},
                   *payload)


# ----- the server ---------------------------------------------------------------------------------


class Switchboard:
    """Routes stanzas between in-memory connections and the MUC services, in order per receiver."""

    def __init__(self, muc_domains: tuple[str, ...] = (MUC_DOMAIN, BREAKOUT_DOMAIN,
                                                       JID.parse(BREWERY).domain)) -> None:
        self.connections: dict[JID, MemoryConnection] = {}
        self.mucs = {domain: _MucService(self, domain) for domain in muc_domains}
        self.delivered = 0
        # Components the server lists in its disco#info (type -> address), as Jitsi's Prosody
        # advertises breakout_rooms, av_moderation and room_metadata.
        self.components: dict[str, str] = {}
        # Extra room-info fields per room (a breakout room names its main room there).
        self.room_info: dict[JID, dict[str, str]] = {}

    def connect(self, jid: str, name: str | None = None) -> MemoryConnection:
        conn = MemoryConnection(self, JID.parse(jid), name or jid)
        self.connections[conn.jid_full] = conn
        return conn

    def route(self, stanza: Element, sender: JID | None) -> None:
        """Deliver `stanza` from `sender` (a connection; None: a service that set `from` itself)."""
        if sender is not None:
            stanza.set("from", str(sender))
        to = stanza.get("to")
        try:
            target = JID.parse(to) if to else None
        except InvalidJID:
            self._bounce(stanza, "jid-malformed")
            return
        if target is None:
            self._answer_server(stanza)
            return
        muc = self.mucs.get(target.domain)
        if muc is not None and target.local is not None:
            muc.handle(_copy(stanza))
            return
        conn = self.connections.get(target)
        if conn is not None:
            self.delivered += 1
            conn.deliver(_copy(stanza))
            return
        if target.local is None:
            self._answer_server(stanza)
            return
        self._bounce(stanza, "service-unavailable")

    def _answer_server(self, stanza: Element) -> None:
        """The server itself: disco#info (no components here), nothing else."""
        if stanza.tag != f"{{{NS_CLIENT}}}iq" or stanza.get("type") not in ("get", "set"):
            return
        payload = list(stanza)
        if payload and payload[0].tag == f"{{{NS_DISCO_INFO}}}query":
            query = element(f"{{{NS_DISCO_INFO}}}query", None, *(
                element(f"{{{NS_DISCO_INFO}}}identity",
                        {"category": "component", "type": kind, "name": address})
                for kind, address in self.components.items()))
            self.route(_result(stanza, query), None)
            return
        self._bounce(stanza, "service-unavailable")

    def _bounce(self, stanza: Element, condition: str) -> None:
        if stanza.get("type") in ("error", "result") or stanza.tag == f"{{{NS_CLIENT}}}presence":
            return
        self.route(_error_reply(stanza, condition), None)


class MemoryConnection(BaseXMPPConnection):
    """A connection to the switchboard: the whole BaseXMPPConnection (requests with deadlines,
    handlers, routers, routes) over an in-memory queue instead of a stream."""

    def __init__(self, switchboard: Switchboard, jid: JID, name: str) -> None:
        super().__init__(timeouts=TIMEOUTS, max_concurrent_handlers=100, name=name)
        self.switchboard = switchboard
        self.jid = jid
        self.jid_full = jid
        self._incoming, self._reader = trio.open_memory_channel[Element](math.inf)
        self.sent: list[Element] = []

    def deliver(self, stanza: Element) -> None:
        self._incoming.send_nowait(stanza)

    def send_now(self, stanza: Element) -> None:
        """Send without waiting (for routers, which must not block)."""
        self.sent.append(stanza)
        self.switchboard.route(stanza, self.jid_full)

    async def _send_on(self, channel: Channel, stanza: Element) -> None:
        self.send_now(stanza)
        await trio.lowlevel.checkpoint()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._handler_nursery = nursery
            self._channel = _IN_MEMORY
            self._connected.set()
            task_status.started()
            async for stanza in self._reader:
                self._dispatch(stanza)


@dataclass
class _Occupant:
    nick: str
    jid: JID
    affiliation: str
    role: str
    presence: Element


@dataclass
class _Room:
    jid: JID
    meeting_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occupants: dict[str, _Occupant] = field(default_factory=dict)
    affiliations: dict[JID, str] = field(default_factory=dict)
    config: dict[str, list[str]] = field(default_factory=dict)


class _MucService:
    """XEP-0045 as far as the focus and its guests use it. Rooms are non-anonymous (every
    occupant's real JID is shown), created by their first occupant, who is owner."""

    def __init__(self, switchboard: Switchboard, domain: str) -> None:
        self.switchboard = switchboard
        self.domain = domain
        self.rooms: dict[JID, _Room] = {}

    def handle(self, stanza: Element) -> None:
        target = JID.parse(stanza.get("to", ""))
        sender = JID.parse(stanza.get("from", ""))
        kind = stanza.tag.rsplit("}", 1)[-1]
        room = self.rooms.get(target.bare)
        if kind == "presence":
            if target.resource is not None:
                self._presence(target, sender, stanza)
            return
        if room is None:
            self.switchboard._bounce(stanza, "item-not-found")
            return
        if kind == "iq" and target.resource is None:
            self._room_iq(room, sender, stanza)
        elif kind == "iq" and target.resource is not None:
            self._forward_iq(room, target.resource, sender, stanza)
        elif kind == "message" and stanza.get("type") == "groupchat":
            occupant = self._occupant_of(room, sender)
            if occupant is not None:
                for other in room.occupants.values():
                    copy = _copy(stanza)
                    copy.set("from", str(room.jid.with_resource(occupant.nick)))
                    copy.set("to", str(other.jid))
                    self.switchboard.route(copy, None)

    @staticmethod
    def _occupant_of(room: _Room, real: JID) -> _Occupant | None:
        return next((o for o in room.occupants.values() if o.jid == real), None)

    # ----- presence -----------------------------------------------------------------------------

    def _presence(self, target: JID, sender: JID, stanza: Element) -> None:
        room = self.rooms.get(target.bare)
        nick = target.resource
        assert nick is not None
        if stanza.get("type") == "unavailable":
            if room is not None and nick in room.occupants and room.occupants[nick].jid == sender:
                self._leave(room, room.occupants.pop(nick), stanza)
            return
        created = room is None
        if room is None:
            room = self.rooms[target.bare] = _Room(target.bare)
            room.affiliations[sender.bare] = "owner"
        existing = room.occupants.get(nick)
        if existing is not None and existing.jid != sender:
            self.switchboard.route(_error_reply(stanza, "conflict"), None)
            return
        affiliation = room.affiliations.get(sender.bare, "none")
        role = "moderator" if affiliation in ("owner", "admin") else "participant"
        occupant = _Occupant(nick, sender, affiliation, role, stanza)
        room.occupants[nick] = occupant
        if existing is None:  # a join: first who is here
            for other in room.occupants.values():
                if other is not occupant:
                    self._send_presence(room, other, to=occupant)
        self._broadcast(room, occupant, created=created and existing is None)

    def _leave(self, room: _Room, occupant: _Occupant, stanza: Element | None,
               status: str | None = None) -> None:
        occupant.role = "none"
        unavailable = stanza if stanza is not None else element(f"{{{NS_CLIENT}}}presence")
        unavailable.set("type", "unavailable")
        occupant.presence = unavailable
        for other in [*room.occupants.values(), occupant]:
            self._send_presence(room, occupant, to=other, status=status)
        if not room.occupants:
            del self.rooms[room.jid]

    def _broadcast(self, room: _Room, occupant: _Occupant, *, created: bool = False,
                   status: str | None = None) -> None:
        for other in room.occupants.values():
            self._send_presence(room, occupant, to=other, created=created, status=status)

    def _send_presence(self, room: _Room, occupant: _Occupant, *, to: _Occupant,
                       created: bool = False, status: str | None = None) -> None:
        presence = _copy(occupant.presence)
        for x in presence.findall(f"{{{NS_MUC}}}x") + presence.findall(f"{{{NS_MUC_USER}}}x"):
            presence.remove(x)
        presence.set("from", str(room.jid.with_resource(occupant.nick)))
        presence.set("to", str(to.jid))
        x = element(f"{{{NS_MUC_USER}}}x", None, element(f"{{{NS_MUC_USER}}}item", {
            "affiliation": occupant.affiliation, "role": occupant.role, "jid": str(occupant.jid)}))
        codes = ([status] if status else []) + (["110"] if to is occupant else []) + \
            (["201"] if created and to is occupant else [])
        for code in codes:
            x.append(element(f"{{{NS_MUC_USER}}}status", {"code": code}))
        presence.append(x)
        self.switchboard.route(presence, None)

    # ----- IQs ----------------------------------------------------------------------------------

    def _room_iq(self, room: _Room, sender: JID, iq: Element) -> None:
        payload = list(iq)
        tag = payload[0].tag if payload else ""
        kind = iq.get("type")
        owner = room.affiliations.get(sender.bare) == "owner"
        if tag == f"{{{NS_DISCO_INFO}}}query" and kind == "get":
            form = element(f"{{{NS_DATA}}}x", {"type": "result"},
                           _field("FORM_TYPE", "http://jabber.org/protocol/muc#roominfo"),
                           _field("muc#roominfo_meetingId", room.meeting_id),
                           *(_field(var, value) for var, value
                             in self.switchboard.room_info.get(room.jid, {}).items()))
            query = element(f"{{{NS_DISCO_INFO}}}query", None,
                            element(f"{{{NS_DISCO_INFO}}}identity",
                                    {"category": "conference", "type": "text"}),
                            element(f"{{{NS_DISCO_INFO}}}feature", {"var": NS_MUC}), form)
            self.switchboard.route(_result(iq, query), None)
        elif tag == f"{{{NS_MUC_OWNER}}}query" and owner:
            if kind == "get":
                form = element(f"{{{NS_DATA}}}x", {"type": "form"},
                               _field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"),
                               _field("muc#roomconfig_whois", "moderators"),
                               _field("muc#roomconfig_membersonly", "0"))
                self.switchboard.route(_result(iq, element(f"{{{NS_MUC_OWNER}}}query", None, form)),
                                       None)
                return
            for f in payload[0].iter(f"{{{NS_DATA}}}field"):
                room.config[f.get("var", "")] = [v.text or "" for v in f.findall(f"{{{NS_DATA}}}value")]
            self.switchboard.route(_result(iq), None)
        elif tag == f"{{{NS_MUC_ADMIN}}}query" and kind == "set" and owner:
            for item in payload[0].findall(f"{{{NS_MUC_ADMIN}}}item"):
                self._admin_item(room, item)
            self.switchboard.route(_result(iq), None)
        elif tag in (f"{{{NS_MUC_OWNER}}}query", f"{{{NS_MUC_ADMIN}}}query"):
            self.switchboard.route(_error_reply(iq, "forbidden"), None)
        else:
            self.switchboard.route(_error_reply(iq, "feature-not-implemented"), None)

    def _admin_item(self, room: _Room, item: Element) -> None:
        if item.get("affiliation") is not None and item.get("jid"):
            bare = JID.parse(item.get("jid", "")).bare
            room.affiliations[bare] = item.get("affiliation", "none")
            for occupant in list(room.occupants.values()):
                if occupant.jid.bare == bare:
                    occupant.affiliation = room.affiliations[bare]
                    if occupant.affiliation in ("owner", "admin"):
                        occupant.role = "moderator"
                    self._broadcast(room, occupant)
        elif item.get("role") == "none" and item.get("nick") in room.occupants:
            self._leave(room, room.occupants.pop(item.get("nick", "")), None, status="307")

    def _forward_iq(self, room: _Room, nick: str, sender: JID, iq: Element) -> None:
        """IQs between occupants: the receiver sees the sender's occupant JID."""
        source = self._occupant_of(room, sender)
        target = room.occupants.get(nick)
        if source is None or target is None:
            self.switchboard._bounce(iq, "not-acceptable" if source is None else "item-not-found")
            return
        copy = _copy(iq)
        copy.set("from", str(room.jid.with_resource(source.nick)))
        copy.set("to", str(target.jid))
        self.switchboard.route(copy, None)


def _field(var: str, value: str) -> Element:
    return element(f"{{{NS_DATA}}}field", {"var": var}, element(f"{{{NS_DATA}}}value", text=value))


# ----- a bridge -------------------------------------------------------------------------------------


class MemoryBridge:
    """A Colibri2 bridge: `BridgeEngine` answering in arrival order, in the brewery with stats.
    `silent` stops all answers (a hung bridge); `requests` keeps every conference-modify, parsed."""

    def __init__(self, switchboard: Switchboard, nickname: str, **identity: Any) -> None:
        self.nickname = nickname
        self.engine = BridgeEngine(BridgeIdentity(nickname, **identity),
                                   rng=random.Random(nickname), clock=trio.current_time)
        self.conn = switchboard.connect(f"jvb-{nickname}@{AUTH_DOMAIN}/bridge", f"bridge {nickname}")
        self.requests: list[c2.ConferenceModify] = []
        self.silent = False
        self.room: MucRoom | None = None
        self.conn.add_iq_router(f"{{{c2.NS_COLIBRI2}}}conference-modify", self._on_colibri,
                                types=("get", "set"))
        self.conn.add_iq_router(f"{{{NS_HEALTH}}}healthcheck", self._on_health, types=("get",))

    @property
    def jid(self) -> JID:
        return JID.parse(BREWERY).with_resource(self.nickname)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.conn.run)
            self.room = MucRoom(self.conn, JID.parse(BREWERY), self.nickname,
                                presence_extensions=[self.engine.stats().to_element()])
            await self.room.join()
            task_status.started()

    async def leave(self) -> None:
        if self.room is not None:
            await self.room.leave()

    async def publish_stats(self) -> None:
        if self.room is not None:
            await self.room.set_presence([self.engine.stats().to_element()])

    def kinds(self) -> list[str]:
        """What each request did, in order: create / allocate / update / expire / ..."""
        return [_kind(r) for r in self.requests]

    def _on_health(self, iq: Element) -> None:
        if self.silent:
            return
        try:
            self.engine.check_health()
        except StanzaError as err:
            self.conn.send_now(_error_reply(iq, err.condition, err.text))
            return
        self.conn.send_now(_result(iq))

    def _on_colibri(self, iq: Element) -> None:
        payload = list(iq)[0]
        try:
            self.requests.append(c2.ConferenceModify.from_element(payload))
        except c2.Colibri2ParseError:
            pass
        if self.silent:
            return
        try:
            answer = self.engine.handle_conference_modify(payload, iq.get("from", ""))
        except StanzaError as err:
            reply = _error_reply(iq, err.condition, err.text)
            if err.app_element is not None:
                reply[0].append(err.app_element)
            self.conn.send_now(reply)
            return
        self.conn.send_now(_result(iq, answer))


def _kind(request: c2.ConferenceModify) -> str:
    if request.create:
        return "create"
    if request.expire and not request.endpoints and not request.relays:
        return "expire-conference"
    if request.relays:
        return "relay"
    endpoint = request.endpoints[0] if request.endpoints else None
    if endpoint is None:
        return "other"
    if endpoint.create:
        return "allocate"
    if endpoint.expire:
        return "expire"
    return "update"


# ----- a guest ---------------------------------------------------------------------------------------


@dataclass
class Received:
    at: float
    jingle: JingleIQ


@dataclass
class MemberOptions:
    features: frozenset[str] = frozenset({FEATURE_AUDIO, FEATURE_VIDEO, FEATURE_SCTP})
    auto_accept: bool = True
    audio_ssrcs: tuple[int, ...] = ()
    video_ssrcs: tuple[int, ...] = ()


_ssrcs = itertools.count(1000)
_members = itertools.count(1)


class MemoryMember:
    """A guest in a room: answers the focus's Jingle IQs with `result`, accepts each offer with
    its own sources (one audio and one video SSRC unless told), and keeps what it received."""

    def __init__(self, switchboard: Switchboard, room: JID, nick: str, options: MemberOptions) -> None:
        self.nick = nick
        self.room_jid = room
        self.options = options
        self.conn = switchboard.connect(f"{nick}-{next(_members)}@{DOMAIN}/web", f"member {nick}")
        self.conn.features.update(options.features)
        self.focus = room.with_resource("focus")
        self.received: list[Received] = []
        self.answers: list[tuple[Action, StanzaError | None]] = []
        self.room: MucRoom | None = None
        self.sid: str | None = None
        self.bridge_session: str | None = None
        self.session_accepted = False
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        audio = options.audio_ssrcs or (next(_ssrcs),)
        video = options.video_ssrcs or (next(_ssrcs),)
        self.sources = {"audio": audio, "video": video}
        self.conn.add_iq_router(JINGLE, self._on_jingle, types=("set",))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.conn.run)
            self.room = MucRoom(self.conn, self.room_jid, self.nick,
                                presence_extensions=[self.conn.caps()])
            await self.room.join()
            task_status.started()
            async for _ in self.room.events:
                self._touch()

    # ----- what it got ----------------------------------------------------------------------------

    def of(self, action: Action) -> list[Received]:
        return [r for r in self.received if r.jingle.action is action]

    def remote_ssrcs(self) -> dict[str, set[int]]:
        """Owner → SSRCs, as this guest was told them in the current session (offer, then
        source-add and source-remove in order)."""
        known: dict[str, set[int]] = {}
        for r in self.received:
            if r.jingle.action in (Action.SESSION_INITIATE, Action.TRANSPORT_REPLACE):
                if r.jingle.action is Action.SESSION_INITIATE:
                    known = {}
                _apply(known, r.jingle, add=True)
            elif r.jingle.action is Action.SOURCE_ADD:
                _apply(known, r.jingle, add=True)
            elif r.jingle.action is Action.SOURCE_REMOVE:
                _apply(known, r.jingle, add=False)
        return {owner: ssrcs for owner, ssrcs in known.items() if ssrcs}

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with trio.move_on_after(timeout):
            while not predicate():
                await self._changed.wait()
            return
        raise TimeoutError(f"{self.nick}: timed out after {timeout} s waiting for {what}")

    def _touch(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ----- what it does ------------------------------------------------------------------------------

    async def leave(self, status: str | None = None) -> None:
        """Leave the room (`status` "switch_room": for a breakout room, as Jitsi Meet does)."""
        assert self.room is not None
        await self.room.leave(status)

    async def request_restart(self) -> StanzaError | None:
        """session-terminate asking for a new session (lib-jitsi-meet's restart request)."""
        assert self.sid is not None and self.bridge_session is not None
        return await self._ask(JingleIQ(
            Action.SESSION_TERMINATE, self.sid, reason=Reason("success", "restart"),
            bridge_session=BridgeSession(self.bridge_session, restart=True)))

    async def request_ice_restart(self) -> StanzaError | None:
        assert self.sid is not None and self.bridge_session is not None
        return await self._ask(JingleIQ(
            Action.SESSION_INFO, self.sid,
            bridge_session=BridgeSession(self.bridge_session, ice_restart=True)))

    async def _ask(self, jingle: JingleIQ) -> StanzaError | None:
        try:
            await self.conn.request(self.conn.iq("set", self.focus, jingle.to_element()))
            error = None
        except StanzaError as err:
            error = err
        self.answers.append((jingle.action, error))
        self._touch()
        return error

    def _on_jingle(self, iq: Element) -> None:
        jingle = JingleIQ.from_element(list(iq)[0])
        self.received.append(Received(trio.current_time(), jingle))
        self.conn.send_now(_result(iq))
        if jingle.action is Action.SESSION_INITIATE:
            self.sid = jingle.sid
            self.session_accepted = False
            if jingle.bridge_session is not None:
                self.bridge_session = jingle.bridge_session.id
            if self.options.auto_accept and self._nursery is not None:
                self._nursery.start_soon(self._accept, jingle)
        elif jingle.action is Action.SESSION_TERMINATE and jingle.sid == self.sid:
            self.sid = None
            self.session_accepted = False
        self._touch()

    async def _accept(self, offer: JingleIQ) -> None:
        # Our ICE credentials and DTLS fingerprint, in every content (bundled, as browsers do).
        transport = IceUdpTransport(
            ufrag=f"{self.nick}{len(self.received)}", pwd="p" * 24, rtcp_mux=True,
            fingerprints=(Fingerprint("sha-256", ":".join(["AB"] * 32), setup="active"),))
        contents = []
        for content in offer.contents:
            media = content.media
            if media not in self.sources:
                contents.append(JingleContent(content.name, "initiator", transport=transport))
                continue
            sources = tuple(SourceElement(ssrc, name=f"{self.nick}-{media[0]}0",
                                          msid=f"{self.nick}-{media} {self.nick}-{media}-track")
                            for ssrc in self.sources[media])
            contents.append(JingleContent(content.name, "initiator", transport=transport,
                                          description=RtpDescription(media, sources=sources)))
        error = await self._ask(JingleIQ(Action.SESSION_ACCEPT, offer.sid,
                                         responder=str(self.conn.jid), contents=tuple(contents)))
        if error is None and self.sid == offer.sid:
            self.session_accepted = True
            self._touch()


def _apply(known: dict[str, set[int]], jingle: JingleIQ, *, add: bool) -> None:
    for content in jingle.contents:
        if content.description is None:
            continue
        for source in content.description.sources:
            owner = source.owner or "?"
            if add:
                known.setdefault(owner, set()).add(source.ssrc)
            else:
                known.get(owner, set()).discard(source.ssrc)


# ----- the stack ------------------------------------------------------------------------------------


def memory_config(overrides: Mapping[str, Any] | None = None) -> JicofoConfig:
    values: dict[str, Any] = {
        "jicofo.xmpp.client.domain": AUTH_DOMAIN,
        "jicofo.xmpp.client.username": "focus",
        "jicofo.xmpp.client.password": "unused",
        "jicofo.xmpp.client.use-tls": False,
        "jicofo.xmpp.client.conference-muc-jid": MUC_DOMAIN,
        "jicofo.bridge.brewery-jid": BREWERY,
        "jicofo.rest.port": -1,
    }
    values.update(overrides or {})
    return load_config(None, values, env={})


@dataclass
class MemoryStack:
    switchboard: Switchboard
    config: JicofoConfig
    services: ConferenceServices
    focus: Focus
    brewery: Brewery
    nursery: trio.Nursery
    bridges: dict[str, MemoryBridge] = field(default_factory=dict)

    async def add_bridge(self, nickname: str, **identity: Any) -> MemoryBridge:
        """A bridge in the brewery, once the focus has seen it."""
        bridge = MemoryBridge(self.switchboard, nickname, **identity)
        self.bridges[nickname] = bridge
        await self.nursery.start(bridge.run)
        await wait_until(lambda: any(b.nickname == nickname for b in self.brewery.operational_bridges()),
                         5, f"bridge {nickname} in the brewery", interval=0.01)
        return bridge

    async def open_conference(self, name: str, properties: Mapping[str, str] | None = None) -> JID:
        """A conference request for `name@conference.meet.test`, as a client sends it first."""
        room = JID.parse(f"{name}@{MUC_DOMAIN}")
        answer = await self.focus.conference_request(
            ConferenceRequest(room=str(room), properties=dict(properties or {})),
            JID.parse(f"requester@{DOMAIN}/web"))
        assert answer.ready, answer
        return room

    async def open_breakout(self, main: JID, name: str) -> JID:
        """A breakout room of `main` (its room info names the main room, as Jitsi's
        mod_muc_breakout_rooms does) and the conference request for it."""
        room = JID.parse(f"{name}@{BREAKOUT_DOMAIN}")
        await wait_until(lambda: self.focus.breakout_domain == BREAKOUT_DOMAIN, 5,
                         "the breakout_rooms component")
        self.switchboard.room_info[room] = {"muc#roominfo_isbreakout": "true",
                                            "muc#roominfo_breakout_main_room": str(main)}
        answer = await self.focus.conference_request(ConferenceRequest(room=str(room)),
                                                     JID.parse(f"requester@{DOMAIN}/web"))
        assert answer.ready, answer
        return room

    def conference(self, room: JID) -> Conference | None:
        return self.focus.conferences.get(room)

    async def join(self, room: JID, nick: str, **options: Any) -> MemoryMember:
        member = MemoryMember(self.switchboard, room, nick, MemberOptions(**options))
        await self.nursery.start(member.run)
        return member

    def occupants(self, room: JID) -> set[str]:
        muc = self.switchboard.mucs[room.domain]
        found = muc.rooms.get(room)
        return set(found.occupants) if found is not None else set()


@asynccontextmanager
async def memory_stack(overrides: Mapping[str, Any] | None = None) -> AsyncIterator[MemoryStack]:
    """The focus (Focus, its conferences and the brewery) on a switchboard, wired as app.py
    wires it for Jingle and mute IQs; bridges and guests are added by the test."""
    config = memory_config({"jicofo.xmpp.client.xmpp-domain": DOMAIN, **(overrides or {})})
    switchboard = Switchboard()
    switchboard.components["breakout_rooms"] = BREAKOUT_DOMAIN
    client = switchboard.connect(f"focus@{AUTH_DOMAIN}/focus", "focus")
    brewery = Brewery(client, JID.parse(BREWERY), config.bridge,
                      request_timeout=config.xmpp.client.reply_timeout)
    services = ConferenceServices(
        config=config, client=client, colibri_client=client, brewery=brewery,
        selector=BridgeSelector(config.bridge, config.octo, local_region=config.local_region),
        offer_config=OfferConfig.from_codec_config(config.codec),
    )
    focus = Focus(services)
    brewery.add_listener(focus.on_bridge_event)
    client.add_iq_router(JINGLE, focus.route_jingle, types=("set",))
    for tag in MUTE_TAGS:
        client.add_iq_router(tag, focus.route_mute, types=("set",))
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        await nursery.start(focus.run)
        await nursery.start(brewery.run)
        try:
            yield MemoryStack(switchboard, config, services, focus, brewery, nursery)
        finally:
            nursery.cancel_scope.cancel()
