"""XEP-0045 multi-user chat: join or create a room, configure it, track its occupants.

A `MucRoom` is fed by the client's routing (presence and messages from the room's bare JID) and
publishes what happens as typed events on a memory channel that the room's owner task consumes:

    room = MucRoom(client, JID.parse("room@conference.example.com"), "focus")
    joined = await room.join()              # creates it when missing
    if joined.created:
        await room.configure({"muc#roomconfig_whois": "anyone"})
    async for event in room.events: ...     # OccupantJoined / OccupantChanged / OccupantLeft / ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import trio

from .client import BaseXMPPConnection
from .errors import NotConnected, StanzaError, XMPPError
from .jid import JID, InvalidJID
from .xml import element

log = logging.getLogger(__name__)

NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
NS_DATA = "jabber:x:data"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"

STATUS_SELF = "110"
STATUS_NICK_ASSIGNED = "210"
STATUS_CREATED = "201"
STATUS_BANNED = "301"
STATUS_NICK_CHANGED = "303"
STATUS_KICKED = "307"
STATUS_AFFILIATION_CHANGE = "321"
STATUS_MEMBERS_ONLY = "322"
STATUS_SHUTDOWN = "332"


@dataclass
class Occupant:
    nick: str
    role: str
    affiliation: str
    jid: JID | None  # real JID, when the room shows it
    presence: Element

    @property
    def occupant_jid(self) -> str:
        return self.nick


@dataclass(frozen=True)
class OccupantJoined:
    occupant: Occupant


@dataclass(frozen=True)
class OccupantChanged:
    occupant: Occupant
    old_role: str
    old_affiliation: str


@dataclass(frozen=True)
class OccupantLeft:
    occupant: Occupant
    kicked: bool = False
    banned: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class SelfChanged:
    """Our own role or affiliation changed (for example, we are no longer owner)."""

    role: str
    affiliation: str


@dataclass(frozen=True)
class SelfLeft:
    """We are out of the room: kicked, banned, the room was destroyed, or the server went away."""

    reason: str
    destroyed: bool = False


@dataclass(frozen=True)
class MessageReceived:
    stanza: Element


@dataclass(frozen=True)
class Rejoined:
    """The connection came back as a new session and the room was joined again; occupants were
    re-announced as OccupantJoined events before this one."""


RoomEvent = (
    OccupantJoined | OccupantChanged | OccupantLeft | SelfChanged | SelfLeft | MessageReceived | Rejoined
)


def event_stanza(event: RoomEvent) -> Element | None:
    """The presence or message an event comes from (None for events of our own state)."""
    if isinstance(event, OccupantJoined | OccupantChanged | OccupantLeft):
        return event.occupant.presence
    if isinstance(event, MessageReceived):
        return event.stanza
    return None


@dataclass
class JoinResult:
    created: bool
    role: str
    affiliation: str
    status_codes: frozenset[str] = field(default_factory=frozenset)


class MucError(XMPPError):
    pass


class MucRoom:
    """One room joined with one nickname. Not thread-safe; owned by one task tree."""

    def __init__(
        self,
        client: BaseXMPPConnection,
        room: JID,
        nick: str,
        *,
        password: str | None = None,
        presence_extensions: Iterable[Element] = (),
        max_queued_events: int = 10_000,
        rejoin_nursery: trio.Nursery | None = None,
    ) -> None:
        if not room.is_bare:
            raise ValueError("a room JID has no resource")
        self.client = client
        self.jid = room
        self.nick = nick
        self.password = password
        self.presence_extensions: list[Element] = list(presence_extensions)
        self.occupants: dict[str, Occupant] = {}
        self.role = "none"
        self.affiliation = "none"
        self.joined = False
        self._rejoin_nursery = rejoin_nursery
        self._join_waiter: trio.Event | None = None
        self._join_answer: Element | None = None
        self._leave_waiter: trio.Event | None = None
        self._send_events, self.events = trio.open_memory_channel[RoomEvent](max_queued_events)
        client.add_route(room, self._on_stanza)
        client.on_session(self._on_session)

    @property
    def own_jid(self) -> JID:
        return self.jid.with_resource(self.nick)

    # ----- joining and leaving ------------------------------------------------------------------

    async def join(self, timeout: float | None = None) -> JoinResult:
        """Join (creating the room if the service lets us). Raises StanzaError when refused."""
        x = element(f"{{{NS_MUC}}}x", None, element(f"{{{NS_MUC}}}history", {"maxstanzas": "0"}))
        if self.password:
            x.append(element(f"{{{NS_MUC}}}password", text=self.password))
        presence = self._presence(x)
        self._join_waiter = trio.Event()
        self._join_answer = None
        try:
            await self.client.send(presence)
            with trio.fail_after(timeout if timeout is not None else self.client.timeouts.request):
                await self._join_waiter.wait()
        except trio.TooSlowError as exc:
            raise MucError(f"no answer joining {self.jid} as {self.nick}") from exc
        finally:
            self._join_waiter = None
        answer = self._join_answer
        assert answer is not None
        if answer.get("type") == "error":
            raise StanzaError.from_stanza(answer)
        codes = _status_codes(answer)
        item = _user_item(answer)
        self.role = item.get("role", "none") if item is not None else "none"
        self.affiliation = item.get("affiliation", "none") if item is not None else "none"
        self.joined = True
        return JoinResult(STATUS_CREATED in codes, self.role, self.affiliation, codes)

    async def leave(self, status: str | None = None) -> None:
        if not self.joined:
            self._close()
            return
        self.joined = False
        presence = self.client.stanza(
            "presence", {"to": str(self.own_jid), "type": "unavailable"}
        )
        if status:
            presence.append(element(f"{{{self.client.content_ns}}}status", text=status))
        self._leave_waiter = trio.Event()
        try:
            await self.client.send(presence)
            # Wait (briefly) for the room to confirm, so its last presences are not mistaken
            # for answers to a later join through the same route.
            with trio.move_on_after(self.client.timeouts.close):
                await self._leave_waiter.wait()
        except NotConnected:
            pass
        finally:
            self._leave_waiter = None
            self._close()

    def _close(self) -> None:
        self.client.remove_route(self.jid)
        self._send_events.close()

    async def set_presence(self, extensions: Iterable[Element] | None = None) -> None:
        """Replace our presence extensions and broadcast them to the room."""
        if extensions is not None:
            self.presence_extensions = list(extensions)
        await self.client.send(self._presence())

    def _presence(self, *extra: Element) -> Element:
        presence = self.client.stanza("presence", {"to": str(self.own_jid)})
        presence.extend(extra)
        presence.extend(self.presence_extensions)
        return presence

    # ----- owner and admin operations ----------------------------------------------------------

    async def get_config_form(self) -> Element:
        result = await self.client.request(
            self.client.iq("get", self.jid, element(f"{{{NS_MUC_OWNER}}}query"))
        )
        form = result.find(f"{{{NS_MUC_OWNER}}}query/{{{NS_DATA}}}x")
        if form is None:
            raise MucError(f"{self.jid} returned no configuration form")
        return form

    async def configure(
        self, values: Mapping[str, str | bool | Iterable[str]] | None = None
    ) -> Element | None:
        """Submit the owner configuration form. With no values, accept the defaults (an
        'instant room'). Fields the service does not offer are skipped with a log line.
        Returns the form the service offered (its `x` element), when it was fetched (values)."""
        submit = element(f"{{{NS_DATA}}}x", {"type": "submit"})
        form = None
        if values:
            form = await self.get_config_form()
            offered = {f.get("var") for f in form.iter(f"{{{NS_DATA}}}field")}
            submit.append(_field("FORM_TYPE", ["http://jabber.org/protocol/muc#roomconfig"]))
            for var, value in values.items():
                if var not in offered:
                    log.info("room %s: the service has no config field %s", self.jid, var)
                    continue
                submit.append(_field(var, _form_values(value)))
        await self.client.request(
            self.client.iq("set", self.jid, element(f"{{{NS_MUC_OWNER}}}query", None, submit))
        )
        return form

    async def room_info(self) -> dict[str, list[str]]:
        """The room's disco#info extended fields (muc#roominfo_*), as var → values."""
        result = await self.client.request(
            self.client.iq("get", self.jid, element(f"{{{NS_DISCO_INFO}}}query"))
        )
        fields: dict[str, list[str]] = {}
        for f in result.iter(f"{{{NS_DATA}}}field"):
            var = f.get("var")
            if var:
                fields[var] = [v.text or "" for v in f.findall(f"{{{NS_DATA}}}value")]
        return fields

    async def set_affiliation(self, jid: JID, affiliation: str, reason: str | None = None) -> None:
        item = element(f"{{{NS_MUC_ADMIN}}}item", {"jid": str(jid.bare), "affiliation": affiliation})
        await self._admin(item, reason)

    async def set_role(self, nick: str, role: str, reason: str | None = None) -> None:
        await self._admin(element(f"{{{NS_MUC_ADMIN}}}item", {"nick": nick, "role": role}), reason)

    async def kick(self, nick: str, reason: str | None = None) -> None:
        await self.set_role(nick, "none", reason)

    async def _admin(self, item: Element, reason: str | None) -> None:
        if reason:
            item.append(element(f"{{{NS_MUC_ADMIN}}}reason", text=reason))
        await self.client.request(
            self.client.iq("set", self.jid, element(f"{{{NS_MUC_ADMIN}}}query", None, item))
        )

    async def send_message(self, body: str | None = None, *extensions: Element) -> None:
        msg = self.client.stanza("message", {"to": str(self.jid), "type": "groupchat"})
        if body is not None:
            msg.append(element(f"{{{self.client.content_ns}}}body", text=body))
        msg.extend(extensions)
        await self.client.send(msg)

    # ----- incoming stanzas ---------------------------------------------------------------------

    def _on_stanza(self, stanza: Element) -> None:
        kind = stanza.tag.rsplit("}", 1)[-1]
        if kind == "message":
            if stanza.get("type") != "error":
                self._emit(MessageReceived(stanza))
            return
        try:
            sender = JID.parse(stanza.get("from", ""))
        except InvalidJID:
            return
        nick = sender.resource
        if nick is None:
            return
        codes = _status_codes(stanza)
        is_self = STATUS_SELF in codes
        if self._join_waiter is not None and self._answers_join(stanza, nick, codes):
            if STATUS_NICK_ASSIGNED in codes:
                self.nick = nick
            self._join_answer = stanza
            self._join_waiter.set()
            return
        if self._leave_waiter is not None and is_self and stanza.get("type") == "unavailable":
            self._leave_waiter.set()
            return
        if stanza.get("type") == "error":
            if nick == self.nick:
                log.info("room %s: error presence for our nick: %s",
                         self.jid, StanzaError.from_stanza(stanza))
            return
        if is_self:
            self._on_self_presence(stanza, codes)
        else:
            self._on_occupant_presence(nick, stanza, codes)

    def _answers_join(self, stanza: Element, nick: str, codes: frozenset[str]) -> bool:
        """Our join is answered by an error for our nick, or by our own available presence (the
        service may assign another nick: status 210). A late unavailable self-presence from an
        earlier stay in the room answers nothing."""
        if stanza.get("type") == "error":
            return nick == self.nick
        if stanza.get("type") == "unavailable" or STATUS_SELF not in codes:
            return False
        return nick == self.nick or STATUS_NICK_ASSIGNED in codes

    def _on_self_presence(self, stanza: Element, codes: frozenset[str]) -> None:
        item = _user_item(stanza)
        if stanza.get("type") == "unavailable":
            if STATUS_NICK_CHANGED in codes:
                return
            self.joined = False
            destroyed = stanza.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}destroy") is not None
            reason = _reason(stanza) or (
                "kicked" if STATUS_KICKED in codes else
                "banned" if STATUS_BANNED in codes else
                "room destroyed" if destroyed else
                "service shut down" if STATUS_SHUTDOWN in codes else "removed"
            )
            self._emit(SelfLeft(reason, destroyed))
            return
        if item is None:
            return
        role, affiliation = item.get("role", "none"), item.get("affiliation", "none")
        if (role, affiliation) != (self.role, self.affiliation):
            self.role, self.affiliation = role, affiliation
            self._emit(SelfChanged(role, affiliation))

    def _on_occupant_presence(self, nick: str, stanza: Element, codes: frozenset[str]) -> None:
        item = _user_item(stanza)
        existing = self.occupants.get(nick)
        if stanza.get("type") == "unavailable":
            if existing is None:
                return
            del self.occupants[nick]
            existing.presence = stanza
            self._emit(OccupantLeft(existing, STATUS_KICKED in codes, STATUS_BANNED in codes,
                                    _reason(stanza)))
            return
        role = item.get("role", "none") if item is not None else "none"
        affiliation = item.get("affiliation", "none") if item is not None else "none"
        real_jid = None
        if item is not None and item.get("jid"):
            try:
                real_jid = JID.parse(item.get("jid", ""))
            except InvalidJID:
                log.info("room %s: occupant %s has an invalid real JID", self.jid, nick)
        if existing is None:
            occupant = Occupant(nick, role, affiliation, real_jid, stanza)
            self.occupants[nick] = occupant
            self._emit(OccupantJoined(occupant))
            return
        old_role, old_affiliation = existing.role, existing.affiliation
        existing.role, existing.affiliation, existing.presence = role, affiliation, stanza
        if real_jid is not None:
            existing.jid = real_jid
        self._emit(OccupantChanged(existing, old_role, old_affiliation))

    def _emit(self, event: RoomEvent) -> None:
        try:
            self._send_events.send_nowait(event)
        except trio.WouldBlock:
            log.error("room %s: event queue full, dropping %s", self.jid, type(event).__name__)
        except trio.ClosedResourceError:
            pass

    # ----- new sessions --------------------------------------------------------------------------

    def _on_session(self, resumed: bool) -> None:
        if resumed or not self.joined:
            return
        # The server forgot our presence: everyone we knew is gone from our point of view.
        self.joined = False
        for occupant in list(self.occupants.values()):
            self._emit(OccupantLeft(occupant, reason="connection to the server was lost"))
        self.occupants.clear()
        if self._rejoin_nursery is not None:
            self._rejoin_nursery.start_soon(self._rejoin)
        else:
            self._emit(SelfLeft("connection to the server was lost"))

    async def _rejoin(self) -> None:
        try:
            await self.join()
        except XMPPError as exc:
            log.warning("room %s: rejoin failed: %s", self.jid, exc)
            self._emit(SelfLeft(f"rejoin failed: {exc}"))
            return
        self._emit(Rejoined())


def _user_item(presence: Element) -> Element | None:
    return presence.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}item")


def _status_codes(presence: Element) -> frozenset[str]:
    return frozenset(
        s.get("code", "") for s in presence.findall(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}status")
    )


def _reason(presence: Element) -> str | None:
    r = presence.find(f"{{{NS_MUC_USER}}}x/{{{NS_MUC_USER}}}item/{{{NS_MUC_USER}}}reason")
    return r.text if r is not None and r.text else None


def _form_values(value: str | bool | Iterable[str]) -> list[str]:
    if isinstance(value, bool):
        return ["1" if value else "0"]
    if isinstance(value, str):
        return [value]
    return list(value)


def _field(var: str, values: list[str]) -> Element:
    f = element(f"{{{NS_DATA}}}field", {"var": var})
    for v in values:
        f.append(element(f"{{{NS_DATA}}}value", text=v))
    return f
