"""A simulated Jitsi Videobridge on the wire: XMPP logins, brewery presence with stats, Colibri2
and health-check IQs, per-conference FIFOs, fault and latency injection, a request log.

The Colibri2 semantics live in the sans-IO `BridgeEngine`; this module is its trio shell. One
`SimulatedBridge` may be logged into several XMPP servers (shards) and join brewery rooms on each,
sharing one engine, as real bridges do.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import trio

from jicofo.sim.bridge_answer import bridge_error, stats_element
from jicofo.sim.bridge_engine import BridgeEngine
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.errors import NotConnected, StanzaError, XMPPError
from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.muc import MucRoom, SelfLeft
from jicofo.xmpp.settings import ClientSettings
from jicofo.xmpp.xml import element, serialize

log = logging.getLogger(__name__)

NS_HEALTH = "http://jitsi.org/protocol/healthcheck"
NS_VERSION = "jabber:iq:version"
# The simulator's own names (it shares no code with the focus it tests).
NS_COLIBRI2 = "jitsi:colibri2"
NS_COLIBRI = "http://jitsi.org/protocol/colibri"

FIFO_IDLE_SECONDS = 30.0
IDLE_CONFERENCE_SECONDS = 20.0  # a real bridge drops conferences without endpoints this old

REQUEST_KINDS = ("allocate", "update", "expire", "relay-create", "relay-update", "connect", "health")


@dataclass
class ErrorFault:
    condition: str
    reason: str | None = None  # colibri2 reason (conference_not_found, unknown_endpoint, ...)
    text: str | None = None
    kinds: frozenset[str] = frozenset(REQUEST_KINDS)
    remaining: int | None = None  # None: until cleared


@dataclass
class Faults:
    """What the bridge does wrong on purpose. Set through the control API."""

    silent: set[str] = field(default_factory=set)  # request kinds that get no answer at all
    error: ErrorFault | None = None
    wrong_shape: str | None = None  # "not-conference-modified" | "no-transport" | "no-sctp" | "relay-setup"
    presence_frozen: bool = False
    latency: dict[str, tuple[float, float]] = field(default_factory=dict)  # kind -> (min, max) seconds
    # A bridge that hangs: its XMPP connection lives on (keepalives), so it stays in the brewery
    # with its last presence, but it answers no Colibri2 or health-check IQ and publishes no stats.
    hung: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "silent": sorted(self.silent),
            "error": None if self.error is None else {
                "condition": self.error.condition, "reason": self.error.reason,
                "text": self.error.text, "kinds": sorted(self.error.kinds),
                "remaining": self.error.remaining,
            },
            "wrong_shape": self.wrong_shape,
            "presence_frozen": self.presence_frozen,
            "latency": {k: list(v) for k, v in self.latency.items()},
            "hung": self.hung,
        }


@dataclass(frozen=True)
class XmppTarget:
    """One XMPP server (shard) the bridge logs into, with the brewery rooms it joins there."""

    settings: ClientSettings
    brewery_jids: tuple[JID, ...]


def classify(request: Element) -> str:
    """The request kind used for fault and latency injection and the request log."""
    if request.tag == f"{{{NS_HEALTH}}}healthcheck":
        return "health"
    if request.get("create") == "true":
        return "allocate"
    if request.get("expire") == "true":
        return "expire"
    relays = request.findall(f"{{{NS_COLIBRI2}}}relay")
    if relays:
        return "relay-create" if any(r.get("create") == "true" for r in relays) else "relay-update"
    endpoints = request.findall(f"{{{NS_COLIBRI2}}}endpoint")
    if any(e.get("create") == "true" for e in endpoints):
        return "allocate"
    if endpoints and all(e.get("expire") == "true" for e in endpoints):
        return "expire"
    if request.find(f"{{{NS_COLIBRI2}}}connects") is not None and not endpoints:
        return "connect"
    return "update"


class SimulatedBridge:
    def __init__(
        self,
        engine: BridgeEngine,
        nickname: str,
        targets: list[XmppTarget],
        *,
        stats_interval: float = 5.0,
        stats_on_change: bool = False,
        max_logged_requests: int = 10_000,
    ) -> None:
        self.engine = engine
        self.nickname = nickname
        self.targets = targets
        self.stats_interval = stats_interval
        # A real bridge publishes its stats on a timer (every 5 s), not after each Colibri2
        # request; publishing on every change multiplies the brewery traffic at load, so it is
        # only kept as an option for comparing benchmark figures with earlier runs.
        self.stats_on_change = stats_on_change
        self.faults = Faults()
        self.requests: deque[dict[str, Any]] = deque(maxlen=max_logged_requests)
        self.clients: list[XMPPClient] = []
        self.rooms: list[MucRoom] = []
        self._queues: dict[str, trio.MemorySendChannel[tuple[XMPPClient, Element, str]]] = {}
        self._nursery: trio.Nursery | None = None
        self._presence_changed = trio.Event()
        self._in_brewery = False
        self._brewery_jids = {jid.bare for t in targets for jid in t.brewery_jids}

    # ----- lifecycle -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Log in everywhere, join the breweries, serve until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for target in self.targets:
                client = XMPPClient(target.settings, name=f"bridge {self.nickname}")
                client.features.update({NS_HEALTH, "urn:xmpp:jingle:apps:dtls:0",
                                        "urn:xmpp:jingle:transports:ice-udp:1", NS_VERSION})
                client.add_iq_router(f"{{{NS_COLIBRI2}}}conference-modify",
                                     functools.partial(self._on_colibri, client))
                client.add_iq_router(f"{{{NS_HEALTH}}}healthcheck",
                                     functools.partial(self._on_health, client))
                client.add_iq_handler(f"{{{NS_VERSION}}}query", self._on_version, types=("get",))
                for name in ("graceful-shutdown", "force-shutdown"):
                    client.add_iq_handler(f"{{{NS_COLIBRI}}}{name}", self._unsupported)
                await nursery.start(client.run)
                self.clients.append(client)
            self.engine.muc_clients_configured = len(self.clients)
            self.engine.mucs_configured = sum(len(t.brewery_jids) for t in self.targets)
            await self.join_brewery()
            nursery.start_soon(self._presence_loop)
            nursery.start_soon(self._idle_expiry_loop)
            task_status.started()

    async def join_brewery(self) -> None:
        for client, target in zip(self.clients, self.targets, strict=True):
            for brewery in target.brewery_jids:
                room = MucRoom(client, brewery, self.nickname, rejoin_nursery=self._nursery,
                               presence_extensions=[self._stats_element()])
                joined = await room.join()
                if joined.created:
                    await room.configure({"muc#roomconfig_whois": "anyone"})
                self.rooms.append(room)
                assert self._nursery is not None
                self._nursery.start_soon(self._watch_room, room)
        self._in_brewery = True
        self._count_mucs()
        log.info("bridge %s joined %d brewery room(s)", self.nickname, len(self.rooms))

    async def leave_brewery(self) -> None:
        """Leave cleanly (unavailable presence), as a bridge that shuts down does."""
        self._in_brewery = False
        rooms, self.rooms = self.rooms, []
        self._count_mucs()
        for room in rooms:
            await room.leave()

    async def drop_connections(self) -> None:
        """Break the TCP connections abruptly; the clients reconnect by themselves."""
        for client in self.clients:
            channel = client._channel
            if channel is not None:
                await channel.transport.aclose()

    async def stop(self) -> None:
        with trio.move_on_after(2) as scope:
            scope.shield = True
            await self.leave_brewery()
            for client in self.clients:
                await client.aclose()

    def presence_changed(self) -> None:
        self._presence_changed.set()

    def _count_mucs(self) -> None:
        self.engine.muc_clients_connected = sum(1 for c in self.clients if c.connected)
        self.engine.mucs_joined = sum(1 for r in self.rooms if r.joined)

    async def _idle_expiry_loop(self) -> None:
        """Conferences left without endpoints (a create that failed half-way) go away after a
        while, as on a real bridge (docs/jvb.md §2.8)."""
        while True:
            await trio.sleep(IDLE_CONFERENCE_SECONDS / 4)
            if self.engine.expire_idle_conferences(IDLE_CONFERENCE_SECONDS):
                self.presence_changed()

    # ----- presence ------------------------------------------------------------------------------

    def _stats_element(self) -> Element:
        # Written by the simulator's own writer; the focus reads it with its own parser.
        return stats_element(self.engine.stats().items())

    async def _presence_loop(self) -> None:
        while True:
            with trio.move_on_after(self.stats_interval):
                await self._presence_changed.wait()
            self._presence_changed = trio.Event()
            if self.faults.presence_frozen or self.faults.hung or not self._in_brewery:
                continue
            self._count_mucs()
            stats = self._stats_element()
            for room in list(self.rooms):
                if not room.joined:
                    continue
                try:
                    await room.set_presence([stats])
                except XMPPError as exc:
                    log.debug("bridge %s: presence not sent: %s", self.nickname, exc)

    async def _watch_room(self, room: MucRoom) -> None:
        async for event in room.events:
            if isinstance(event, SelfLeft):
                log.warning("bridge %s: out of %s: %s", self.nickname, room.jid, event.reason)

    # ----- IQs -----------------------------------------------------------------------------------

    def _sender_allowed(self, iq: Element) -> bool:
        try:
            return JID.parse(iq.get("from", "")).bare in self._brewery_jids
        except InvalidJID:
            return False

    def _on_health(self, client: XMPPClient, iq: Element) -> None:
        self._log_request(iq, "health")
        if not self._sender_allowed(iq):
            self._reply_error(client, iq, StanzaError("forbidden"))
            return
        if self._is_silent("health"):
            return
        self._submit(client, iq, "__health__", "health")

    def _on_colibri(self, client: XMPPClient, iq: Element) -> None:
        request = list(iq)[0]
        kind = classify(request)
        self._log_request(iq, kind)
        if not self._sender_allowed(iq):
            self._reply_error(client, iq, StanzaError("forbidden", "not a brewery occupant"))
            return
        if self._is_silent(kind):
            return
        self._submit(client, iq, request.get("meeting-id") or "", kind)

    def _submit(self, client: XMPPClient, iq: Element, key: str, kind: str) -> None:
        """Queue on the conference's FIFO; one worker per conference keeps its requests in order."""
        assert self._nursery is not None
        queue = self._queues.get(key)
        if queue is None:
            send, receive = trio.open_memory_channel[tuple[XMPPClient, Element, str]](10_000)
            self._queues[key] = queue = send
            self._nursery.start_soon(self._conference_worker, key, receive)
        try:
            queue.send_nowait((client, iq, kind))
        except trio.WouldBlock:
            self._reply_error(client, iq, StanzaError("resource-constraint", "conference queue full"))

    async def _conference_worker(
        self, key: str, receive: trio.MemoryReceiveChannel[tuple[XMPPClient, Element, str]]
    ) -> None:
        async with receive:
            while True:
                item = None
                with trio.move_on_after(FIFO_IDLE_SECONDS):
                    item = await receive.receive()
                if item is None:
                    # Idle: retire this FIFO (a new one starts with the next request). Nothing
                    # can arrive between the check and the pop: there is no await in between.
                    if receive.statistics().current_buffer_used == 0:
                        self._queues.pop(key, None)
                        return
                    continue
                client, iq, kind = item
                await self._process(client, iq, kind)

    async def _process(self, client: XMPPClient, iq: Element, kind: str) -> None:
        delay = self.faults.latency.get(kind) or self.faults.latency.get("all")
        if delay:
            await trio.sleep(random.uniform(*delay))
        fault = self.faults.error
        if fault is not None and kind in fault.kinds:
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.error = None
            self._answer_error(client, iq, bridge_error(fault.condition, fault.text, fault.reason))
            return
        request = list(iq)[0]
        try:
            if kind == "health":
                self.engine.check_health()
                payload: Element | None = None
            else:
                payload = self.engine.handle_conference_modify(request, iq.get("from", ""))
                payload = self._apply_wrong_shape(payload)
                if self.stats_on_change:
                    self.presence_changed()
        except StanzaError as err:
            self._answer_error(client, iq, err)
            return
        self._answer(client, iq, payload)

    def _apply_wrong_shape(self, payload: Element) -> Element | None:
        shape = self.faults.wrong_shape
        if shape is None:
            return payload
        if shape == "not-conference-modified":
            return element(f"{{{NS_COLIBRI2}}}something-else")
        if shape in ("no-transport", "no-sctp"):
            for holder in payload.iter():
                for child in list(holder):
                    local = child.tag.rsplit("}", 1)[-1]
                    if (shape == "no-transport" and local == "transport"
                            and child.tag.startswith(f"{{{NS_COLIBRI2}}}")) or \
                            (shape == "no-sctp" and local == "sctp"):
                        holder.remove(child)
        if shape == "relay-setup":
            for fp in payload.iter("{urn:xmpp:jingle:apps:dtls:0}fingerprint"):
                fp.set("setup", "active")
        return payload

    def _answer(self, client: XMPPClient, iq: Element, payload: Element | None) -> None:
        self._record_answer(iq, payload, None)
        assert self._nursery is not None
        self._nursery.start_soon(self._quiet, client.reply(iq, payload))

    def _answer_error(self, client: XMPPClient, iq: Element, err: StanzaError) -> None:
        self._record_answer(iq, None, err)
        self._reply_error(client, iq, err)

    def _reply_error(self, client: XMPPClient, iq: Element, err: StanzaError) -> None:
        # Built here rather than with client.reply_error, which echoes the request payload: a
        # bridge (Smack) does not (docs/jvb.md §2.6), and echoing doubles the traffic of large requests.
        attrs = {"type": "error", "id": iq.get("id", "")}
        if iq.get("from"):
            attrs["to"] = iq.get("from", "")
        answer = client.stanza("iq", attrs, err.to_element(client.content_ns))
        assert self._nursery is not None
        self._nursery.start_soon(self._quiet, client.send(answer))

    async def _quiet(self, awaitable: Any) -> None:
        try:
            await awaitable
        except NotConnected as exc:
            log.info("bridge %s: answer not sent: %s", self.nickname, exc)

    def _is_silent(self, kind: str) -> bool:
        silent = self.faults.silent
        if self.faults.hung or "all" in silent or kind in silent:
            return True
        return kind != "health" and "colibri" in silent

    async def _on_version(self, iq: Element) -> Element:
        info = self.engine.identity
        query = element(f"{{{NS_VERSION}}}query")
        query.append(element(f"{{{NS_VERSION}}}name", text="JVB"))
        query.append(element(f"{{{NS_VERSION}}}version", text=info.full_version))
        query.append(element(f"{{{NS_VERSION}}}os", text="Linux"))
        return query

    async def _unsupported(self, iq: Element) -> None:
        raise StanzaError("service-unavailable", f"Unsupported IQ request {list(iq)[0].tag}")

    # ----- the request log -----------------------------------------------------------------------

    def _log_request(self, iq: Element, kind: str) -> None:
        request = list(iq)[0]
        self.requests.append({
            "time": time.time(),
            "id": iq.get("id"),
            "from": iq.get("from"),
            "type": iq.get("type"),
            "kind": kind,
            "meeting_id": request.get("meeting-id"),
            "request": serialize(request),
            "response": None,
            "error": None,
        })

    def _record_answer(self, iq: Element, payload: Element | None, err: StanzaError | None) -> None:
        for entry in reversed(self.requests):
            if entry["id"] == iq.get("id") and entry["from"] == iq.get("from"):
                if err is None:  # an empty result (a passed health check) is logged as ""
                    entry["response"] = serialize(payload) if payload is not None else ""
                else:
                    reason = err.app_element.get("reason") if err.app_element is not None else None
                    entry["error"] = {"condition": err.condition, "reason": reason, "text": err.text}
                return
