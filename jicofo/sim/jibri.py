"""`jicofo-jibri-sim`: simulated Jibri instances (recorder or SIP gateway) against an XMPP server.

Each instance logs in (as a real Jibri does, with an account on the auth domain), joins the
brewery with `<jibri-status>` (busy-status idle, health-status healthy) and answers the `<jibri>`
IQs the focus sends it, the way Jibri's XMPP API does:

* `start` while idle: result `<jibri status="pending"/>`; then (after `on_delay`) it joins the
  conference room named in `room` as a recorder would (its presence advertises the Jibri
  feature), goes busy in the brewery and sends the focus `<jibri status="on"/>`;
* `start` while busy: result `<jibri status="off" failure_reason="busy" should_retry="true"/>`;
* `stop`: result `<jibri status="off"/>`, leaves the conference room, idle again.

With `call_settings` it joins conference rooms on a second login, as a real Jibri does with its
recorder account (Debian: `recorder.<domain>`, the domain the focus trusts); otherwise on the
brewery login.

Faults (control API, `faults`): `start` = "ok" | "busy" (answer busy even when idle) |
"fail-retry" / "fail-no-retry" (pending, then `off` + `failure_reason=error` with `should_retry`
true / false instead of `on`) | "pending" (pending, then nothing) | "silent" (no answer to start) |
"error" (an `internal-server-error` stanza error). `fail` fails the running session now (with or
without retry), `finish` ends it as a Jibri whose recording stopped by itself, `crash` closes the
connection without leaving any room (Prosody tells the brewery it is gone), `health` makes it
unhealthy/healthy in presence.

The simulator judges nothing about the focus: it records every request (`requests`) with what it
answered, for tests and the stress runner to read. It parses the focus's XML itself (no import of
the focus's Jibri code)."""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import trio

from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.errors import StanzaError, XMPPError
from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.muc import MucRoom
from jicofo.xmpp.settings import ClientSettings
from jicofo.xmpp.xml import element, qn

log = logging.getLogger("jicofo.sim.jibri")

NS_JIBRI = "http://jitsi.org/protocol/jibri"
NS_HEALTH = "http://jitsi.org/protocol/health"
FEATURE_JIBRI = "http://jitsi.org/protocol/jibri"
START_FAULTS = ("ok", "busy", "fail-retry", "fail-no-retry", "pending", "silent", "error")


@dataclass
class JibriFaults:
    start: str = "ok"
    on_delay: float = 0.05

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "on_delay": self.on_delay}


@dataclass
class ActiveSession:
    session_id: str
    focus: str  # who sent start (status IQs go there)
    room: str | None
    mode: str | None
    stream_id: str | None
    sip_address: str | None
    started_at: float = field(default_factory=time.time)
    status: str = "pending"
    conference_room: MucRoom | None = None


class SimulatedJibri:
    def __init__(self, settings: ClientSettings, brewery: JID, nickname: str, *,
                 sip: bool = False, max_logged: int = 10_000,
                 call_settings: ClientSettings | None = None) -> None:
        self.settings = settings
        self.call_settings = call_settings
        self.call_client: XMPPClient | None = None
        self.brewery = brewery.bare
        self.nickname = nickname
        self.sip = sip
        self.faults = JibriFaults()
        self.healthy = True
        self.session: ActiveSession | None = None
        self.requests: deque[dict[str, Any]] = deque(maxlen=max_logged)
        self.client: XMPPClient | None = None
        self.brewery_room: MucRoom | None = None
        self.crashed = False
        self._nursery: trio.Nursery | None = None
        self._scope: trio.CancelScope | None = None

    # ----- lifecycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._scope = scope
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                client = XMPPClient(self.settings, name=f"jibri {self.nickname}")
                client.add_iq_handler(qn(NS_JIBRI, "jibri"), self._on_jibri, types=("set",))
                await nursery.start(client.run)
                self.client = client
                if self.call_settings is not None:
                    call = XMPPClient(self.call_settings, name=f"jibri {self.nickname} recorder")
                    await nursery.start(call.run)
                    self.call_client = call
                room = MucRoom(client, self.brewery, self.nickname, rejoin_nursery=nursery,
                               presence_extensions=[self._status_element()])
                joined = await room.join()
                if joined.created:
                    await room.configure({"muc#roomconfig_whois": "anyone"})
                self.brewery_room = room
                nursery.start_soon(self._drain, room)
                log.info("jibri %s: in the brewery %s", self.nickname, self.brewery)
                task_status.started()

    async def _drain(self, room: MucRoom) -> None:
        async for _event in room.events:
            pass

    async def stop(self) -> None:
        with trio.move_on_after(2) as scope:
            scope.shield = True
            if self.client is not None and not self.crashed:
                await self._leave_conference()
                if self.brewery_room is not None:
                    try:
                        await self.brewery_room.leave()
                    except XMPPError:
                        pass
                await self.client.aclose()
            if self.call_client is not None and not self.crashed:
                await self.call_client.aclose()
        if self._scope is not None:
            self._scope.cancel()

    async def crash(self) -> None:
        """Gone without a word: the stream closes, no room is left first (the server then tells
        every room this occupant is gone)."""
        self.crashed = True
        self.session = None
        for client in (self.client, self.call_client):
            if client is not None:
                await client.aclose()
        if self._scope is not None:
            self._scope.cancel()

    # ----- presence ----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.session is not None

    def _status_element(self) -> Element:
        return element(qn(NS_JIBRI, "jibri-status"), None,
                       element(qn(NS_JIBRI, "busy-status"), {"status": "busy" if self.busy else "idle"}),
                       element(qn(NS_HEALTH, "health-status"),
                               {"status": "healthy" if self.healthy else "unhealthy"}))

    async def publish_status(self) -> None:
        room = self.brewery_room
        if room is not None and room.joined and not self.crashed:
            try:
                await room.set_presence([self._status_element()])
            except XMPPError as exc:
                log.info("jibri %s: presence not sent: %s", self.nickname, exc)

    # ----- the focus's requests ----------------------------------------------------------------

    def _log(self, iq: Element, payload: Element, answer: str) -> None:
        entry = {"time": time.time(), "from": iq.get("from"), "answer": answer,
                 **{k: payload.get(k) for k in ("action", "session_id", "recording_mode", "streamid",
                                                 "sipaddress", "displayname", "room", "app_data",
                                                 "you_tube_broadcast_id", "rtcstats_enabled")}}
        self.requests.append(entry)

    async def _on_jibri(self, iq: Element) -> Element | None:
        payload = iq[0]
        action = payload.get("action")
        if action == "start":
            return await self._start(iq, payload)
        if action == "stop":
            self._log(iq, payload, "off")
            await self._end_session()
            return element(qn(NS_JIBRI, "jibri"), {"status": "off"})
        self._log(iq, payload, "bad-request")
        raise StanzaError("bad-request", "unknown action")

    async def _start(self, iq: Element, payload: Element) -> Element | None:
        fault = self.faults.start
        if fault == "silent":
            self._log(iq, payload, "silent")
            await trio.sleep_forever()
        if fault == "error":
            self._log(iq, payload, "internal-server-error")
            raise StanzaError("internal-server-error", "simulated failure")
        if fault == "busy" or self.busy or not self.healthy:
            self._log(iq, payload, "busy")
            return element(qn(NS_JIBRI, "jibri"),
                           {"status": "off", "failure_reason": "busy", "should_retry": "true"})
        self.session = ActiveSession(
            session_id=payload.get("session_id") or "", focus=iq.get("from") or "",
            room=payload.get("room"), mode=payload.get("recording_mode"), stream_id=payload.get("streamid"),
            sip_address=payload.get("sipaddress"))
        self._log(iq, payload, "pending")
        assert self._nursery is not None
        self._nursery.start_soon(self._publish_then, fault, self.session)
        return element(qn(NS_JIBRI, "jibri"), {"status": "pending"})

    async def _publish_then(self, fault: str, session: ActiveSession) -> None:
        await self.publish_status()
        await trio.sleep(self.faults.on_delay)
        if self.session is not session or fault == "pending":
            return
        if fault in ("fail-retry", "fail-no-retry"):
            await self.fail(should_retry=fault == "fail-retry")
            return
        await self._join_conference(session)
        session.status = "on"
        await self._send_status({"status": "on"}, session)

    async def _join_conference(self, session: ActiveSession) -> None:
        if session.room is None or self.client is None:
            return
        try:
            room_jid = JID.parse(session.room).bare
        except InvalidJID:
            return
        features = element(qn("jabber:client", "features"), None,
                           element(qn("jabber:client", "feature"), {"var": FEATURE_JIBRI}))
        room = MucRoom(self.call_client or self.client, room_jid, f"{self.nickname}-{secrets.token_hex(2)}",
                       presence_extensions=[features])
        try:
            await room.join(timeout=5)
        except XMPPError as exc:
            log.info("jibri %s: could not join %s: %s", self.nickname, room_jid, exc)
            return
        session.conference_room = room
        assert self._nursery is not None
        self._nursery.start_soon(self._drain, room)

    async def _leave_conference(self) -> None:
        session = self.session
        if session is not None and session.conference_room is not None:
            room, session.conference_room = session.conference_room, None
            try:
                await room.leave()
            except XMPPError:
                pass

    async def _send_status(self, attrs: dict[str, str], session: ActiveSession) -> None:
        if self.client is None or self.crashed:
            return
        attrs = {**attrs, "session_id": session.session_id}
        iq = self.client.iq("set", session.focus, element(qn(NS_JIBRI, "jibri"), attrs))
        try:
            await self.client.request(iq, timeout=5)
            outcome = "result"
        except StanzaError as exc:
            outcome = exc.condition
        except XMPPError as exc:
            outcome = f"no answer: {exc}"
        self.requests.append({"time": time.time(), "sent": attrs, "to": session.focus, "outcome": outcome})

    async def _end_session(self) -> None:
        await self._leave_conference()
        self.session = None
        await self.publish_status()

    # ----- faults driven by the control API ----------------------------------------------------

    async def fail(self, *, should_retry: bool) -> bool:
        session = self.session
        if session is None:
            return False
        await self._leave_conference()
        self.session = None
        await self._send_status({"status": "off", "failure_reason": "error",
                                 "should_retry": str(should_retry).lower()}, session)
        await self.publish_status()
        return True

    async def finish(self) -> bool:
        """The recording ended on the Jibri's side (e.g. the disk filled up): off, no failure."""
        session = self.session
        if session is None:
            return False
        await self._leave_conference()
        self.session = None
        await self._send_status({"status": "off"}, session)
        await self.publish_status()
        return True

    def state(self) -> dict[str, Any]:
        session = self.session
        return {
            "nickname": self.nickname, "sip": self.sip, "healthy": self.healthy, "busy": self.busy,
            "crashed": self.crashed, "faults": self.faults.to_json(),
            "session": None if session is None else {
                "session_id": session.session_id, "room": session.room, "status": session.status,
                "recording_mode": session.mode, "streamid": session.stream_id,
                "sipaddress": session.sip_address,
                "in_room": session.conference_room is not None,
            },
        }
