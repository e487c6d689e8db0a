"""The XMPP client object: one connection kept alive across network breaks.

    client = XMPPClient(settings)
    await nursery.start(client.run)          # returns once the first session is up
    result = await client.request(iq)         # raises StanzaError / IQTimeout / NotConnected
    client.add_iq_handler(qn(NS, "query"), handler)
    client.add_route(room_jid, callback)      # presence and messages from that bare JID

One reader task per connection parses and dispatches; dispatch never waits on slow work: IQ
handlers run as tasks in a nursery that outlives the connection, and routes are plain callbacks
that hand the stanza to their owner's inbox.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Protocol
from xml.etree.ElementTree import Element

import trio

from .caps import CapsCache, DiscoInfo, Identity, caps_element, compute_ver
from .connection import (
    Channel,
    ClientSession,
    NegotiationError,
    PeerClosed,
    negotiate_client,
    negotiate_component,
)
from .errors import (
    AuthenticationError,
    IQTimeout,
    NotConnected,
    StanzaError,
    StanzaTooLarge,
    StreamError,
    XMPPError,
)
from .jid import JID, InvalidJID
from .settings import ClientSettings, ComponentSettings, Timeouts
from .sm import NS_SM, StreamManagement, StreamManagementError, is_counted, is_counted_tag
from .stream import Features, StanzaReceived, StanzaRejected, StreamOpened
from .transport import TransportError
from .xml import element, local_name, serialize

log = logging.getLogger(__name__)

NS_PING = "urn:xmpp:ping"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
CAPS_NODE = "https://github.com/jitsi-contrib/jicofo-trio"

IqHandler = Callable[[Element], Awaitable[Element | None]]
IqRouter = Callable[[Element], None]
StanzaCallback = Callable[[Element], None]
SessionCallback = Callable[[bool], None]

# Holding back our XEP-0198 ack for unanswered IQ requests keeps stanzas in Prosody's queue
# (smacks_max_queue_size, 500 by default; past it the session cannot resume): bounded in time and
# in how far behind the ack may stay.
UNANSWERED_HOLD = 2.0
MAX_HELD_BACK = 200
MAX_UNANSWERED_TRACKED = 5000

_RECOVERABLE = (
    TransportError,
    NegotiationError,
    PeerClosed,
    StreamError,
    StreamManagementError,
    trio.TooSlowError,
)


class _Pending:
    __slots__ = ("event", "expected_from", "result")

    def __init__(self, expected_from: set[str]) -> None:
        self.event = trio.Event()
        self.expected_from = expected_from
        self.result: Element | None = None


class BaseXMPPConnection:
    """What the client and the component share: sending, IQ requests and handlers, routing,
    disco#info answers. Subclasses provide the session loop."""

    content_ns = "jabber:client"

    def __init__(self, *, timeouts: Timeouts, max_concurrent_handlers: int, name: str) -> None:
        self.name = name
        self.timeouts = timeouts
        self.jid: JID | None = None
        self._channel: Channel | None = None
        self._ids = itertools.count(1)
        self._id_prefix = f"{random.getrandbits(32):08x}"
        self._pending: dict[str, _Pending] = {}
        self._iq_handlers: dict[str, tuple[IqHandler, frozenset[str]]] = {}
        self._iq_routers: dict[str, tuple[IqRouter, frozenset[str]]] = {}
        self._handled_namespaces: set[str] = set()
        self._routes: dict[JID, StanzaCallback] = {}
        self._default_presence: StanzaCallback | None = None
        self._default_message: StanzaCallback | None = None
        self._session_callbacks: list[SessionCallback] = []
        self._handler_limit = trio.Semaphore(max_concurrent_handlers)
        self._handler_nursery: trio.Nursery | None = None
        self._connected = trio.Event()
        self._run_scope: trio.CancelScope | None = None
        self._closing = False
        self.identities: list[Identity] = []
        self.features: set[str] = {NS_DISCO_INFO, NS_PING}
        self.caps_cache = CapsCache()
        self.add_iq_handler(f"{{{NS_PING}}}ping", self._answer_ping, types=("get",))
        self.add_iq_handler(f"{{{NS_DISCO_INFO}}}query", self._answer_disco_info, types=("get",))

    # ----- public API -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._channel is not None

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def new_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def add_iq_handler(
        self, tag: str, handler: IqHandler, *, types: tuple[str, ...] = ("get", "set")
    ) -> None:
        """Answer IQs whose payload is `tag` (Clark notation). The handler returns the result
        payload (or None for an empty result) or raises StanzaError."""
        self._iq_handlers[tag] = (handler, frozenset(types))
        self._handled_namespaces.add(tag.split("}", 1)[0][1:])

    def add_iq_router(
        self, tag: str, router: IqRouter, *, types: tuple[str, ...] = ("get", "set")
    ) -> None:
        """Hand IQs whose payload is `tag` to `router`, synchronously and in arrival order, from
        the reader task. The router must not block: it queues the IQ for its owner (a
        participant's inbox, a conference's FIFO), which answers later with reply/reply_error,
        or raises StanzaError to have that error answered at once.
        Use this where order matters; add_iq_handler runs handlers concurrently."""
        self._iq_routers[tag] = (router, frozenset(types))
        self._handled_namespaces.add(tag.split("}", 1)[0][1:])

    def remove_iq_handler(self, tag: str) -> None:
        self._iq_handlers.pop(tag, None)
        self._iq_routers.pop(tag, None)

    def add_route(self, bare: JID, callback: StanzaCallback) -> None:
        """Presence and messages from `bare` (and its full JIDs) go to `callback`, which must
        not block (hand the stanza to an inbox)."""
        self._routes[bare.bare] = callback

    def remove_route(self, bare: JID) -> None:
        self._routes.pop(bare.bare, None)

    def set_default_handlers(
        self, *, presence: StanzaCallback | None = None, message: StanzaCallback | None = None
    ) -> None:
        self._default_presence = presence
        self._default_message = message

    def on_session(self, callback: SessionCallback) -> None:
        """Called with resumed=True/False each time a session comes up. A new (not resumed)
        session means the server forgot our presence: MUC rooms must be joined again."""
        self._session_callbacks.append(callback)

    def stanza(self, kind: str, attrs: dict[str, str] | None = None, *children: Element) -> Element:
        return element(f"{{{self.content_ns}}}{kind}", attrs, *children)

    def iq(self, type_: str, to: JID | str | None, *payload: Element) -> Element:
        attrs = {"type": type_, "id": self.new_id()}
        if to is not None:
            attrs["to"] = str(to)
        return self.stanza("iq", attrs, *payload)

    async def send(self, stanza: Element) -> None:
        """Send a stanza. Raises NotConnected when down and no resumable session can carry it."""
        channel = self._channel
        if channel is None:
            if self._can_queue_while_down(stanza):
                return
            raise NotConnected(f"{self.name} is not connected")
        await self._send_on(channel, stanza)

    async def request(self, iq: Element, timeout: float | None = None, *,
                      on_sent: Callable[[], None] | None = None) -> Element:
        """Send an IQ get/set and wait for its result stanza. Raises StanzaError for an error
        answer, IQTimeout when none comes in time. `on_sent` is called once the IQ is written
        (callers that pipeline requests send the next one from there)."""
        if iq.get("type") not in ("get", "set"):
            raise ValueError("request() sends IQs of type get or set")
        iq_id = iq.get("id") or self.new_id()
        iq.set("id", iq_id)
        pending = _Pending(self._acceptable_responders(iq.get("to")))
        self._pending[iq_id] = pending
        try:
            await self.send(iq)
            if on_sent is not None:
                on_sent()
            with trio.move_on_after(timeout if timeout is not None else self.timeouts.request):
                await pending.event.wait()
        finally:
            self._pending.pop(iq_id, None)
        if pending.result is None:
            if not pending.event.is_set():
                raise IQTimeout(f"no answer from {iq.get('to') or 'the server'} to IQ {iq_id}")
            raise NotConnected(f"{self.name}: session lost before IQ {iq_id} was answered")
        if pending.result.get("type") == "error":
            raise StanzaError.from_stanza(pending.result)
        return pending.result

    async def reply(self, iq: Element, payload: Element | None = None) -> None:
        attrs = {"type": "result", "id": iq.get("id", "")}
        if iq.get("from"):
            attrs["to"] = iq.get("from", "")
        await self.send(self.stanza("iq", attrs, *([payload] if payload is not None else [])))

    async def reply_error(self, stanza: Element, error: StanzaError) -> None:
        """Answer a stanza with an error of the same kind (never answers an error stanza)."""
        if stanza.get("type") == "error":
            return
        kind = stanza.tag.rsplit("}", 1)[-1]
        attrs = {"type": "error"}
        if stanza.get("id") is not None:
            attrs["id"] = stanza.get("id", "")
        if stanza.get("from"):
            attrs["to"] = stanza.get("from", "")
        reply = self.stanza(kind, attrs)
        if kind == "iq" and len(stanza):
            # The payload's name only: an echo of what a sender sent could be as large as the
            # request, and a reply grown past the server's limit would cost us the stream.
            reply.append(Element(stanza[0].tag))
        reply.append(error.to_element(self.content_ns))
        await self.send(reply)

    def disco_info(self) -> DiscoInfo:
        return DiscoInfo(tuple(self.identities), frozenset(self.features))

    def caps(self) -> Element:
        """The XEP-0115 `<c/>` element advertising our features, for our presence."""
        return caps_element(CAPS_NODE, compute_ver(self.disco_info()))

    async def query_disco_info(
        self, jid: JID | str, caps: Element | None = None, timeout: float | None = None
    ) -> DiscoInfo:
        """Features of `jid`, from the caps cache when its `<c/>` is known, else by asking."""
        hash_name = ver = None
        if caps is not None:
            hash_name, ver = caps.get("hash"), caps.get("ver")
            if hash_name and ver:
                cached = self.caps_cache.get(hash_name, ver)
                if cached is not None:
                    return cached
        query = element(f"{{{NS_DISCO_INFO}}}query")
        if caps is not None and caps.get("node") and ver:
            query.set("node", f"{caps.get('node')}#{ver}")
        result = await self.request(self.iq("get", jid, query), timeout)
        answer = result.find(f"{{{NS_DISCO_INFO}}}query")
        if answer is None:
            raise StanzaError("bad-request", "disco#info result without a query")
        info = DiscoInfo.from_element(answer)
        if hash_name and ver:
            self.caps_cache.put_verified(hash_name, ver, info)
        return info

    async def aclose(self) -> None:
        """Close the stream politely (bounded) and stop the connection loop."""
        self._closing = True
        channel = self._channel
        if channel is not None:
            await channel.close(self.timeouts.close)
        if self._run_scope is not None:
            self._run_scope.cancel()

    # ----- internals shared by the loops -------------------------------------------------------

    def _can_queue_while_down(self, stanza: Element) -> bool:
        return False

    async def _send_on(self, channel: Channel, stanza: Element) -> None:
        try:
            await channel.send(stanza)
        except TransportError as exc:
            raise NotConnected(f"{self.name}: {exc}") from exc

    def _acceptable_responders(self, to: str | None) -> set[str]:
        own = self.jid
        if to is None:
            return {"", str(own.bare) if own else "", str(own) if own else "", own.domain if own else ""}
        try:
            target = JID.parse(to)
        except InvalidJID:
            return {to}
        names = {str(target)}
        if own is not None and target.bare == own.bare:
            names.add("")
        return names

    def _on_iq_response(self, stanza: Element) -> None:
        pending = self._pending.get(stanza.get("id", ""))
        if pending is None:
            return
        sender = stanza.get("from", "")
        if sender not in pending.expected_from:
            try:
                sender = str(JID.parse(sender)) if sender else ""
            except InvalidJID:
                return
            if sender not in pending.expected_from:
                log.warning("%s: dropping IQ response %s from unexpected sender %s",
                            self.name, stanza.get("id"), sender)
                return
        pending.result = stanza
        pending.event.set()

    def _fail_pending(self) -> None:
        for pending in self._pending.values():
            pending.event.set()

    def _dispatch(self, stanza: Element) -> None:
        kind = stanza.tag.rsplit("}", 1)[-1]
        if not stanza.tag.startswith(f"{{{self.content_ns}}}"):
            log.debug("%s: ignoring top-level element %s", self.name, stanza.tag)
            return
        if kind == "iq":
            self._dispatch_iq(stanza)
            return
        if kind not in ("presence", "message"):
            return
        sender = stanza.get("from")
        callback = None
        if sender:
            try:
                callback = self._routes.get(JID.parse(sender).bare)
            except InvalidJID:
                log.info("%s: dropping %s with invalid from=%r", self.name, kind, sender)
                return
        if callback is None:
            callback = self._default_presence if kind == "presence" else self._default_message
        if callback is not None:
            try:
                callback(stanza)
            except Exception:
                log.exception("%s: %s handler failed", self.name, kind)

    def _refuse(self, rejected: StanzaRejected) -> None:
        """A stanza that broke the parser's per-stanza limits (nothing of it was kept): log it
        and answer an IQ get/set with an error built from its start tag alone."""
        attrs = rejected.attrs
        log.warning("%s: skipped a %s from %s (id %s, type %s): %s", self.name,
                    _loggable(rejected.kind), _loggable(attrs.get("from", "the server")),
                    _loggable(attrs.get("id")), _loggable(attrs.get("type")), rejected.reason)
        if not rejected.tag.startswith(f"{{{self.content_ns}}}"):
            return
        if rejected.kind == "iq" and attrs.get("type") in ("get", "set"):
            self._spawn_reply_error(
                Element(rejected.tag, attrs),
                StanzaError("policy-violation", f"stanza refused: {rejected.reason}"),
            )

    def _dispatch_iq(self, iq: Element) -> None:
        type_ = iq.get("type")
        if type_ in ("result", "error"):
            self._on_iq_response(iq)
            return
        if type_ not in ("get", "set"):
            self._spawn_reply_error(iq, StanzaError("bad-request", "unknown IQ type"))
            return
        payload = list(iq)
        if len(payload) != 1:
            self._spawn_reply_error(iq, StanzaError("bad-request", "an IQ get/set needs one child"))
            return
        tag = payload[0].tag
        routed = self._iq_routers.get(tag)
        if routed is not None and type_ in routed[1]:
            try:
                routed[0](iq)
            except StanzaError as refused:
                self._spawn_reply_error(iq, refused)
            except Exception:
                log.exception("%s: IQ router for %s failed", self.name, tag)
                self._spawn_reply_error(iq, StanzaError("internal-server-error"))
            return
        entry = self._iq_handlers.get(tag)
        if entry is None or type_ not in entry[1]:
            ns = tag.split("}", 1)[0][1:] if tag.startswith("{") else ""
            condition = (
                "feature-not-implemented" if ns in self._handled_namespaces else "service-unavailable"
            )
            self._spawn_reply_error(iq, StanzaError(condition))
            return
        if self._handler_nursery is None:
            return
        try:
            self._handler_limit.acquire_nowait()
        except trio.WouldBlock:
            self._spawn_reply_error(iq, StanzaError("resource-constraint", "too many requests"))
            return
        self._handler_nursery.start_soon(self._run_handler, entry[0], iq)

    def _spawn_reply_error(self, iq: Element, error: StanzaError) -> None:
        if self._handler_nursery is not None:
            self._handler_nursery.start_soon(self._quiet, self.reply_error(iq, error))

    async def _quiet(self, awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except XMPPError as exc:
            log.debug("%s: could not send a reply: %s", self.name, exc)

    async def _run_handler(self, handler: IqHandler, iq: Element) -> None:
        try:
            try:
                payload = await handler(iq)
            except StanzaError as err:
                await self.reply_error(iq, err)
                return
            except Exception:
                log.exception("%s: handler for %s failed", self.name, list(iq)[0].tag)
                await self.reply_error(iq, StanzaError("internal-server-error"))
                return
            await self.reply(iq, payload)
        except XMPPError as exc:
            log.info("%s: could not answer IQ %s: %s", self.name, iq.get("id"), exc)
        finally:
            self._handler_limit.release()

    async def _answer_ping(self, iq: Element) -> None:
        return None

    async def _answer_disco_info(self, iq: Element) -> Element:
        query = list(iq)[0]
        node = query.get("node")
        if node and node != f"{CAPS_NODE}#{compute_ver(self.disco_info())}":
            raise StanzaError("item-not-found", "unknown node")
        return self.disco_info().to_element(node)

    def _backoff(self, attempt: int) -> float:
        t = self.timeouts
        delay = min(t.reconnect_max, t.reconnect_min * (2 ** min(attempt, 16)))
        return delay * random.uniform(0.5, 1.0)


class SessionJournal(Protocol):
    """Told when a new (not resumed) session is up; attaches itself to its stream management."""

    def new_session(self, jid: JID, sm: StreamManagement | None) -> None: ...


class XMPPClient(BaseXMPPConnection):
    """A c2s client with STARTTLS/WebSocket, SASL, XEP-0198 resumption, keepalive and reconnect."""

    def __init__(self, settings: ClientSettings, *, name: str | None = None) -> None:
        super().__init__(
            timeouts=settings.timeouts,
            max_concurrent_handlers=settings.max_concurrent_handlers,
            name=name or settings.describe(),
        )
        self.settings = settings
        self.sm: StreamManagement | None = None
        self.sessions = 0
        # Keeps what a new process needs to resume the session (jicofo.restart), if set.
        self.session_journal: SessionJournal | None = None
        # With a journal: IQ requests received and not answered yet -> (their inbound count, when).
        # Our <a/> (and the journal) stays below the oldest, so that a new process started after a
        # crash gets it again; after UNANSWERED_HOLD seconds it counts as handled anyway.
        self._unanswered: dict[tuple[str, str], tuple[int, float]] = {}
        # None: send no presence of our own (MUC joins carry theirs); see announce_presence.
        self._presence_to: tuple[JID, ...] | None = None

    def resume_from(self, sm: StreamManagement, jid: JID) -> None:
        """Before `run`: try to resume `sm` (rebuilt by a new process from its store), bound to
        `jid`, instead of binding a new session."""
        self.sm = sm
        self.jid = jid

    def announce_presence(self, *directed_to: JID) -> None:
        """Make every new session (not a resumed one: the server still has our presence) start
        with initial presence, then a directed presence to each of `directed_to`: how a
        client-proxy component learns that we are online (the server tells it when we are not).
        Call before `run`; a session already up announces itself at once."""
        self._presence_to = tuple(directed_to)
        channel = self._channel
        if channel is not None and self._handler_nursery is not None:
            self._handler_nursery.start_soon(self._announce, channel)

    def _announcements(self) -> list[Element]:
        if self._presence_to is None:
            return []
        return [self.stanza("presence", None, self.caps())] + [
            self.stanza("presence", {"to": str(to)}, self.caps()) for to in self._presence_to
        ]

    async def _announce(self, channel: Channel) -> None:
        try:
            for presence in self._announcements():
                await self._send_on(channel, presence)
        except NotConnected as exc:
            # The reader notices the broken stream too; the next session announces itself.
            log.debug("%s: presence not sent: %s", self.name, exc)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve, and reconnect until cancelled or closed. `task_status.started()` is
        called once the first session is up. On the first attempt, errors that retrying cannot
        fix (`XMPPError.permanent`: refused login, untrusted certificate, no STARTTLS) are raised;
        network failures are retried with backoff."""
        fatal: Exception | None = None
        attempt = 0
        with trio.CancelScope() as run_scope:
            self._run_scope = run_scope
            async with trio.open_nursery() as handlers:
                self._handler_nursery = handlers
                while not self._closing:
                    async with trio.open_nursery() as session_nursery:
                        try:
                            session = await negotiate_client(
                                self.settings, session_nursery, self.sm, self.jid, name=self.name
                            )
                            attempt = 0
                            await self._session_up(session)
                            if self.sessions == 1:
                                task_status.started()
                            session_nursery.start_soon(self._keepalive, session.channel)
                            await self._serve(session)
                        except (AuthenticationError, *_RECOVERABLE) as exc:
                            if getattr(exc, "permanent", False) and self.sessions == 0:
                                fatal = exc
                            elif isinstance(exc, AuthenticationError):
                                log.error("%s: login refused: %s", self.name, exc)
                            elif not self._closing:
                                log.warning("%s: connection lost: %s", self.name, exc)
                        finally:
                            session_nursery.cancel_scope.cancel()
                            await self._session_down()
                    if self._closing or fatal is not None:
                        break
                    delay = self._backoff(attempt)
                    attempt += 1
                    log.info("%s: reconnecting in %.1f s", self.name, delay)
                    await trio.sleep(delay)
                handlers.cancel_scope.cancel()
        if fatal is not None:
            raise fatal

    async def _session_up(self, session: ClientSession) -> None:
        if not session.resumed:
            if self.sm is not None and self.sm.unacked_count:
                lost = self.sm.take_unacked()
                log.warning("%s: session not resumed; %d unacknowledged stanzas were lost",
                            self.name, len(lost))
            self._fail_pending()
            self.sm = session.sm
            if self.session_journal is not None:
                self.session_journal.new_session(session.jid, self.sm)
        elif self.sm is not None:
            self.sm.checkpoint()
        self.jid = session.jid
        self._channel = session.channel
        self.sessions += 1
        log.info("%s: session %s as %s", self.name,
                 "resumed" if session.resumed else "established", session.jid)
        for stanza in session.resent:
            await session.channel.send(stanza)
        if session.resent and self.sm is not None:
            await session.channel.send(element(f"{{{NS_SM}}}r"))
        for event in session.early:
            self._handle_event(event)
        if not session.resumed:
            await self._announce(session.channel)
        self._connected.set()
        for callback in list(self._session_callbacks):
            try:
                callback(session.resumed)
            except Exception:
                log.exception("%s: session callback failed", self.name)

    async def _session_down(self) -> None:
        channel, self._channel = self._channel, None
        if self._connected.is_set():
            self._connected = trio.Event()
        if channel is not None:
            await channel.close(0.5)
        if self.sm is None or not self.sm.resumable or self._closing:
            self._fail_pending()

    def _can_queue_while_down(self, stanza: Element) -> bool:
        if self.sm is not None and self.sm.resumable and is_counted(stanza) and not self._closing:
            size = len(serialize(stanza, self.content_ns).encode())
            limit = self.settings.max_outgoing_stanza_bytes
            if size > limit:
                raise StanzaTooLarge(local_name(stanza.tag), size, limit)
            self.sm.record_sent(stanza)
            return True
        return False

    async def _send_on(self, channel: Channel, stanza: Element) -> None:
        sm = self.sm
        try:
            data = channel.encode(stanza)  # before counting it: a stanza refused here is not sent
        except TransportError as exc:
            if not self._can_queue_while_down(stanza):
                raise NotConnected(f"{self.name}: {exc}") from exc
            return
        request_ack = sm is not None and is_counted(stanza) and sm.record_sent(stanza)
        try:
            if request_ack:  # the ack request rides in the same write as the stanza
                await channel.send_encoded(data + channel.encode(element(f"{{{NS_SM}}}r")), elements=2)
            else:
                await channel.send_encoded(data)
        except TransportError as exc:
            if sm is not None and sm.resumable:
                return  # queued; resent after resumption
            raise NotConnected(f"{self.name}: {exc}") from exc

    async def _serve(self, session: ClientSession) -> None:
        channel = session.channel
        while True:
            event = await channel.next_event()
            self._handle_event(event)
            if self.sm is not None and isinstance(event, StanzaReceived):
                await self._handle_sm(channel, event.element)

    def _handle_event(self, event: object) -> None:
        if isinstance(event, StanzaReceived):
            el = event.element
            if el.tag.startswith(f"{{{NS_SM}}}"):
                return
            if self.sm is not None and is_counted(el):
                self.sm.count_inbound()
                if self.session_journal is not None and local_name(el.tag) == "iq" \
                        and el.get("type") in ("get", "set"):
                    self._note_request(el)
            self._dispatch(el)
        elif isinstance(event, StanzaRejected):
            if self.sm is not None and is_counted_tag(event.tag):
                self.sm.count_inbound()  # the server counts it as sent: it must be acknowledged
            self._refuse(event)
        elif isinstance(event, (Features, StreamOpened)):
            log.debug("%s: ignoring %s after negotiation", self.name, type(event).__name__)

    async def reply(self, iq: Element, payload: Element | None = None) -> None:
        self._unanswered.pop((iq.get("from", ""), iq.get("id", "")), None)
        await super().reply(iq, payload)

    async def reply_error(self, stanza: Element, error: StanzaError) -> None:
        self._unanswered.pop((stanza.get("from", ""), stanza.get("id", "")), None)
        await super().reply_error(stanza, error)

    def _note_request(self, el: Element) -> None:
        assert self.sm is not None
        now = trio.current_time()
        if len(self._unanswered) >= MAX_UNANSWERED_TRACKED:
            self._expire_unanswered(now)
            while len(self._unanswered) >= MAX_UNANSWERED_TRACKED:
                self._unanswered.pop(next(iter(self._unanswered)))
        self._unanswered[(el.get("from", ""), el.get("id", ""))] = (self.sm.inbound, now)

    def _expire_unanswered(self, now: float) -> None:
        for key, (_, at) in list(self._unanswered.items()):
            if now - at > UNANSWERED_HOLD:
                del self._unanswered[key]

    def _handled_count(self) -> int:
        """What to acknowledge: everything counted, except from the oldest IQ request still
        unanswered on (only with a journal; see _unanswered)."""
        assert self.sm is not None
        self._expire_unanswered(trio.current_time())
        if not self._unanswered:
            return self.sm.inbound
        oldest = min(seq for seq, _ in self._unanswered.values())
        if (self.sm.inbound - oldest) % 2**32 > MAX_HELD_BACK:
            self._unanswered.clear()  # too far behind: the queue on the server must stay short
            return self.sm.inbound
        handled = oldest - 1
        if self.sm.handled is not None and (handled - self.sm.handled) % 2**32 > 2**31:
            handled = self.sm.handled  # never less than we said before
        return handled % 2**32

    async def _handle_sm(self, channel: Channel, el: Element) -> None:
        assert self.sm is not None
        if el.tag == f"{{{NS_SM}}}r":
            h = self.sm.inbound
            if self.session_journal is not None:
                h = self.sm.handled = self._handled_count()
            self.sm.checkpoint()  # the store must never say less than we acknowledge
            await channel.send(element(f"{{{NS_SM}}}a", {"h": str(h)}))
        elif el.tag == f"{{{NS_SM}}}a":
            try:
                self.sm.acknowledge(int(el.get("h", "")))
            except ValueError as exc:
                raise StreamManagementError("server sent an ack without a valid h") from exc

    async def _keepalive(self, channel: Channel) -> None:
        t = self.timeouts
        if t.ping_interval <= 0:
            return
        while True:
            await trio.sleep(t.ping_interval)
            iq = self.iq("get", self.settings.domain, element(f"{{{NS_PING}}}ping"))
            try:
                await self.request(iq, timeout=t.ping_timeout)
            except IQTimeout:
                log.warning("%s: keepalive ping unanswered for %.0f s", self.name, t.ping_timeout)
                await channel.transport.aclose()
                return
            except StanzaError:
                pass  # any answer proves the connection is alive
            except NotConnected:
                return


class XMPPComponent(BaseXMPPConnection):
    """An XEP-0114 external component. Same request/handler/routing API as the client."""

    content_ns = "jabber:component:accept"

    def __init__(self, settings: ComponentSettings, *, name: str | None = None) -> None:
        super().__init__(
            timeouts=settings.timeouts,
            max_concurrent_handlers=settings.max_concurrent_handlers,
            name=name or settings.describe(),
        )
        self.settings = settings
        # Handshakes that succeeded (read-only for callers: more than 1 means it reconnected).
        self.connections = 0

    def _acceptable_responders(self, to: str | None) -> set[str]:
        return super()._acceptable_responders(to) if to else {""}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        fatal: AuthenticationError | None = None
        attempt = 0
        with trio.CancelScope() as run_scope:
            self._run_scope = run_scope
            async with trio.open_nursery() as handlers:
                self._handler_nursery = handlers
                while not self._closing:
                    try:
                        channel, jid = await negotiate_component(self.settings, name=self.name)
                        self.jid = jid
                        self._channel = channel
                        attempt = 0
                        self.connections += 1
                        self._connected.set()
                        log.info("%s: connected", self.name)
                        if self.connections == 1:
                            task_status.started()
                        for callback in list(self._session_callbacks):
                            callback(False)
                        while True:
                            event = await channel.next_event()
                            if isinstance(event, StanzaReceived):
                                self._dispatch(event.element)
                            elif isinstance(event, StanzaRejected):
                                self._refuse(event)
                    except AuthenticationError as exc:
                        if self.connections == 0:
                            fatal = exc
                        else:
                            log.error("%s: the server refused the component secret", self.name)
                    except _RECOVERABLE as exc:
                        if not self._closing:
                            log.warning("%s: connection lost: %s", self.name, exc)
                    finally:
                        channel_, self._channel = self._channel, None
                        self._connected = trio.Event()
                        self._fail_pending()
                        if channel_ is not None:
                            await channel_.close(0.5)
                    if self._closing or fatal is not None:
                        break
                    await trio.sleep(self._backoff(attempt))
                    attempt += 1
                handlers.cancel_scope.cancel()
        if fatal is not None:
            raise fatal


def _loggable(value: str | None, limit: int = 80) -> str:
    """A sender's attribute as it may go into a log line: quoted, escaped, and short."""
    if value is None:
        return "-"
    text = repr(value[: limit + 1])
    return text if len(value) <= limit else text[:-1] + "…'"
