"""`jicofo-jigasi-sim`: simulated Jigasi instances (SIP gateway and/or transcriber).

Each instance logs in (an account on the auth domain, as a real Jigasi's brewery login), joins
the Jigasi brewery with colibri `<stats>` (`supports_sip`, `supports_transcription`,
`graceful_shutdown`, `participants`, `region`) and answers Rayo `<dial>` IQs as Jigasi does:
a result carrying `<ref xmlns="urn:xmpp:rayo:1" uri="xmpp:<call id>@<domain>"/>`, then it joins
the conference named by the `JvbRoomName` header as a gateway would (presence advertising the
Jigasi feature, or the transcriber feature for `to="jitsi_meet_transcribe"`), and its
`participants` count goes up.

Faults (`faults`): `dial` = "ok" | "error" (an `internal-server-error` answer) | "silent" (no
answer). `graceful-shutdown` flips the flag in presence; `crash` closes the connection without
leaving any room; `hangup` leaves every call. Every dial received is logged (`requests`) with the
IQ's id and what was answered. Nothing here imports the focus's Jigasi code."""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from typing import Any
from xml.etree.ElementTree import Element

import trio

from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.errors import StanzaError, XMPPError
from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.muc import MucRoom
from jicofo.xmpp.settings import ClientSettings
from jicofo.xmpp.xml import element, qn

log = logging.getLogger("jicofo.sim.jigasi")

NS_RAYO = "urn:xmpp:rayo:1"
NS_COLIBRI = "http://jitsi.org/protocol/colibri"
FEATURE_JIGASI = "http://jitsi.org/protocol/jigasi"
FEATURE_TRANSCRIBER = "http://jitsi.org/protocol/transcriber"
DIAL_FAULTS = ("ok", "error", "silent")


class SimulatedJigasi:
    def __init__(self, settings: ClientSettings, brewery: JID, nickname: str, *, sip: bool = True,
                 transcription: bool = False, region: str | None = None, max_logged: int = 10_000) -> None:
        self.settings = settings
        self.brewery = brewery.bare
        self.nickname = nickname
        self.supports_sip = sip
        self.supports_transcription = transcription
        self.region = region
        self.graceful_shutdown = False
        self.dial_fault = "ok"
        self.calls: list[MucRoom] = []
        self.requests: deque[dict[str, Any]] = deque(maxlen=max_logged)
        self.client: XMPPClient | None = None
        self.brewery_room: MucRoom | None = None
        self.crashed = False
        self._nursery: trio.Nursery | None = None
        self._scope: trio.CancelScope | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._scope = scope
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                client = XMPPClient(self.settings, name=f"jigasi {self.nickname}")
                client.add_iq_handler(qn(NS_RAYO, "dial"), self._on_dial, types=("set",))
                await nursery.start(client.run)
                self.client = client
                room = MucRoom(client, self.brewery, self.nickname, rejoin_nursery=nursery,
                               presence_extensions=[self._stats()])
                joined = await room.join()
                if joined.created:
                    await room.configure({"muc#roomconfig_whois": "anyone"})
                self.brewery_room = room
                nursery.start_soon(self._drain, room)
                task_status.started()

    async def _drain(self, room: MucRoom) -> None:
        async for _event in room.events:
            pass

    def _stats(self) -> Element:
        values = {"supports_sip": self.supports_sip, "supports_transcription": self.supports_transcription,
                  "graceful_shutdown": self.graceful_shutdown, "participants": len(self.calls)}
        stats = [element(qn(NS_COLIBRI, "stat"), {"name": k, "value": str(v).lower()})
                 for k, v in values.items()]
        if self.region:
            stats.append(element(qn(NS_COLIBRI, "stat"), {"name": "region", "value": self.region}))
        return element(qn(NS_COLIBRI, "stats"), None, *stats)

    async def publish(self) -> None:
        room = self.brewery_room
        if room is not None and room.joined and not self.crashed:
            try:
                await room.set_presence([self._stats()])
            except XMPPError as exc:
                log.info("jigasi %s: presence not sent: %s", self.nickname, exc)

    async def _on_dial(self, iq: Element) -> Element | None:
        dial = iq[0]
        headers = {h.get("name"): h.get("value") for h in dial if h.tag == qn(NS_RAYO, "header")}
        entry: dict[str, Any] = {"time": time.time(), "id": iq.get("id"), "from": iq.get("from"),
                                 "to": dial.get("to"), "dial_from": dial.get("from"), "headers": headers}
        self.requests.append(entry)
        if self.dial_fault == "silent":
            entry["answer"] = "silent"
            await trio.sleep_forever()
        if self.dial_fault == "error":
            entry["answer"] = "internal-server-error"
            raise StanzaError("internal-server-error", "simulated failure")
        call_id = secrets.token_hex(6)
        uri = f"xmpp:{call_id}@{self.settings.domain}"
        entry["answer"] = uri
        room = headers.get("JvbRoomName")
        if room and self._nursery is not None:
            self._nursery.start_soon(self._join_call, room, dial.get("to") == "jitsi_meet_transcribe")
        return element(qn(NS_RAYO, "ref"), {"uri": uri})

    async def _join_call(self, room: str, transcriber: bool) -> None:
        if self.client is None:
            return
        try:
            room_jid = JID.parse(room).bare
        except InvalidJID:
            return
        feature = FEATURE_TRANSCRIBER if transcriber else FEATURE_JIGASI
        features = element(qn("jabber:client", "features"), None,
                           element(qn("jabber:client", "feature"), {"var": FEATURE_JIGASI}),
                           *([element(qn("jabber:client", "feature"), {"var": feature})]
                             if transcriber else []))
        call = MucRoom(self.client, room_jid, f"{self.nickname}-{secrets.token_hex(2)}",
                       presence_extensions=[features])
        try:
            await call.join(timeout=5)
        except XMPPError as exc:
            log.info("jigasi %s: could not join %s: %s", self.nickname, room_jid, exc)
            return
        self.calls.append(call)
        assert self._nursery is not None
        self._nursery.start_soon(self._drain, call)
        await self.publish()

    async def hangup(self) -> None:
        calls, self.calls = self.calls, []
        for call in calls:
            try:
                await call.leave()
            except XMPPError:
                pass
        await self.publish()

    async def crash(self) -> None:
        self.crashed = True
        if self.client is not None:
            await self.client.aclose()
        if self._scope is not None:
            self._scope.cancel()

    async def stop(self) -> None:
        with trio.move_on_after(2) as scope:
            scope.shield = True
            if self.client is not None and not self.crashed:
                await self.hangup()
                if self.brewery_room is not None:
                    try:
                        await self.brewery_room.leave()
                    except XMPPError:
                        pass
                await self.client.aclose()
        if self._scope is not None:
            self._scope.cancel()

    def state(self) -> dict[str, Any]:
        return {"nickname": self.nickname, "supports_sip": self.supports_sip,
                "supports_transcription": self.supports_transcription, "region": self.region,
                "graceful_shutdown": self.graceful_shutdown, "dial_fault": self.dial_fault,
                "calls": [str(c.jid) for c in self.calls], "crashed": self.crashed}
