"""The Jingle side of the simulated participant, as lib-jitsi-meet handles it (docs/client.md §3):
every Jingle IQ is acked (or refused) first, in arrival order, then processed one at a time; the
session-initiate is checked and answered with a session-accept carrying our sources; remote source
changes are validated and applied; deviations from what the client expects are counted.

`JingleResponder` is a mixin of `SimulatedParticipant`, kept apart to keep each file readable; it
uses the participant's client, options, local media, log and lock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

import trio

from jicofo.xmpp.errors import IQTimeout, StanzaError, XMPPError
from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.xml import element, qn

from . import client_jingle as cj
from .client_jingle import BridgeSession, Content, Jingle, JingleReadError, Reason, Transport, read_jingle
from .client_sources import RemoteSources, apply_add, apply_remove, read_update
from .participant_sources import (
    Codecs,
    answer_contents,
    check_offer,
    host_candidate,
    random_transport,
)

if TYPE_CHECKING:
    import random
    from collections import deque

    from jicofo.xmpp.client import XMPPClient
    from jicofo.xmpp.muc import MucRoom

    from .participant import ParticipantOptions
    from .participant_sources import LocalMedia

FOCUS_NICK = "focus"
# Actions the client acks and then processes; anything else is answered bad-request (§3.1).
_SESSION_ACTIONS = {
    cj.SOURCE_ADD, cj.SOURCE_REMOVE, cj.TRANSPORT_INFO, cj.TRANSPORT_REPLACE, cj.SESSION_TERMINATE,
}
_KNOWN_ACTIONS = cj.ACTIONS | cj.LEGACY_ACTIONS.keys()


@dataclass
class SimJingleSession:
    """The participant's side of its Jingle session with the focus."""

    sid: str
    focus: str  # the focus's MUC JID, where our Jingle IQs go
    offer: Jingle
    transport: Transport
    bridge_session: BridgeSession | None
    accept_sent: bool = False
    accepted: bool = False  # the focus answered the session-accept with a result
    ice_generation: int = 0  # the latest generation of the focus's (bridge's) credentials
    ice_generation_answered: int = 0  # ... that our own new credentials were sent for
    remote_transport: Transport | None = None  # the bridge's current ICE transport

    @property
    def bridge_transport(self) -> Transport | None:
        """The bridge's credentials in use: from the last ICE restart, else from the offer."""
        if self.remote_transport is not None:
            return self.remote_transport
        return next((c.transport for c in self.offer.contents if c.transport is not None), None)


class JingleResponder:
    """Acks, processing and answers of the participant's Jingle session with the focus."""

    # Provided by SimulatedParticipant.
    options: ParticipantOptions
    client: XMPPClient
    rng: random.Random
    room_jid: JID
    room: MucRoom | None
    local: LocalMedia | None
    endpoint_id: str | None
    features: frozenset[str]
    codecs: Codecs
    trusted_focus: set[JID]
    remote: RemoteSources
    session: SimJingleSession | None
    sessions_accepted: int
    _lock: trio.Lock
    _nursery: trio.Nursery | None
    _inbox_tx: trio.MemorySendChannel[Element]
    _inbox_rx: trio.MemoryReceiveChannel[Element]
    _work_tx: trio.MemorySendChannel[tuple[str, Jingle]]
    _work_rx: trio.MemoryReceiveChannel[tuple[str, Jingle]]
    _active_sid: str | None  # as of the acks: the session the focus may address
    _active_remote: str | None
    _closed_sids: deque[str]

    def _record(self, direction: str, kind: str, detail: str = "", sid: str | None = None) -> None:
        raise NotImplementedError

    def _error(self, message: str) -> None:
        raise NotImplementedError

    def _notify(self) -> None:
        raise NotImplementedError

    async def _apply_start_muted(self, audio: bool, video: bool) -> None:
        raise NotImplementedError

    # ----- Jingle: acks, in arrival order -------------------------------------------------------

    def _route_jingle(self, iq: Element) -> None:
        try:
            self._inbox_tx.send_nowait(iq)
        except trio.WouldBlock:
            self._error("Jingle inbox full; an IQ was dropped")

    async def _ack_loop(self) -> None:
        async for iq in self._inbox_rx:
            try:
                await self._ack(iq)
            except XMPPError as exc:
                self._record("local", "note", f"could not answer a Jingle IQ: {exc}")

    async def _ack(self, iq: Element) -> None:
        """Answer first, process afterwards (docs/client.md §3.1)."""
        sender = iq.get("from", "")
        payload = list(iq)[0]
        raw_action = payload.get("action", "")
        try:
            jingle = read_jingle(payload)
        except JingleReadError as exc:
            if raw_action not in _KNOWN_ACTIONS:
                self._error(f"unexpected Jingle action {raw_action[:40]!r} from {sender}")
            else:
                self._error(f"malformed {raw_action} from {sender}: {exc}")
            await self._reply_error(iq, StanzaError("bad-request", str(exc)), raw_action)
            return
        action = jingle.action
        self._record("in", action, f"from {sender}", jingle.sid)
        if action == cj.SESSION_INITIATE:
            if jingle.sid == self._active_sid:
                self._error(f"second session-initiate with sid {jingle.sid}")
                await self._reply_error(iq, StanzaError("service-unavailable"), action)
                return
            await self._reply_ack(iq, action, jingle.sid)
            if self._is_trusted_focus(sender):
                self._active_sid, self._active_remote = jingle.sid, sender
        elif action in _SESSION_ACTIONS:
            if jingle.sid != self._active_sid or sender != self._active_remote:
                if jingle.sid in self._closed_sids:
                    self._record("local", "note", f"{action} for closed session {jingle.sid}")
                else:
                    self._error(f"{action} for unknown session {jingle.sid} from {sender}")
                unknown = element(qn(cj.NS_JINGLE_ERRORS, "unknown-session"))
                await self._reply_error(iq, StanzaError("item-not-found", app_element=unknown), action)
                return
            await self._reply_ack(iq, action, jingle.sid)
            if action == cj.SESSION_TERMINATE:
                self._active_sid = None
                self._closed_sids.append(jingle.sid)
        else:
            # session-info included: the client only sends it.
            self._error(f"unexpected Jingle action {action} from {sender}")
            error = StanzaError("bad-request", f"unsupported action {action}")
            await self._reply_error(iq, error, action)
            return
        try:
            self._work_tx.send_nowait((sender, jingle))
        except trio.WouldBlock:
            self._error(f"Jingle work queue full; {action} dropped")

    async def _reply_ack(self, iq: Element, action: str, sid: str | None) -> None:
        await self.client.reply(iq)
        self._record("out", "ack", action, sid)

    async def _reply_error(self, iq: Element, error: StanzaError, action: str) -> None:
        await self.client.reply_error(iq, error)
        self._record("out", "iq-error", f"{action}: {error}")

    def _is_trusted_focus(self, sender: str) -> bool:
        try:
            jid = JID.parse(sender)
        except InvalidJID:
            return False
        if jid.bare != self.room_jid or jid.resource != FOCUS_NICK or self.room is None:
            return False
        occupant = self.room.occupants.get(FOCUS_NICK)
        return occupant is not None and occupant.jid is not None and occupant.jid.bare in self.trusted_focus

    # ----- Jingle: processing, one at a time ----------------------------------------------------

    async def _work_loop(self) -> None:
        handlers = {
            cj.SESSION_INITIATE: self._on_session_initiate,
            cj.SOURCE_ADD: self._on_source_add,
            cj.SOURCE_REMOVE: self._on_source_remove,
            cj.TRANSPORT_INFO: self._on_transport_info,
            cj.TRANSPORT_REPLACE: self._on_transport_replace,
            cj.SESSION_TERMINATE: self._on_session_terminate,
        }
        async for sender, jingle in self._work_rx:
            try:
                async with self._lock:
                    await handlers[jingle.action](sender, jingle)
            except XMPPError as exc:
                self._record("local", "note", f"{jingle.action} {jingle.sid}: {exc}")

    def _current(self, jingle: Jingle) -> SimJingleSession | None:
        session = self.session
        if session is None or session.sid != jingle.sid:
            self._record("local", "note", f"{jingle.action} for a session closed meanwhile", jingle.sid)
            return None
        return session

    def _terminate(self, to: str, sid: str, reason: Reason) -> None:
        """Refuse a session. Sent from a task of its own: the client does not hold its other
        Jingle work for the answer."""
        jingle = Jingle(cj.SESSION_TERMINATE, sid, initiator=to, reason=reason)
        self._record("out", "session-terminate", f"{reason.condition}: {reason.text}", sid)
        assert self._nursery is not None
        self._nursery.start_soon(self._request_quietly, to, jingle)

    async def _request_quietly(self, to: str, jingle: Jingle) -> None:
        try:
            await self.client.request(self.client.iq("set", to, jingle.to_element()),
                                      timeout=self.options.timeouts.request)
            self._record("in", "result", str(jingle.action), jingle.sid)
        except XMPPError as exc:
            self._record("in", "error-answer", f"{jingle.action} to {to}: {exc}", jingle.sid)

    async def _on_session_initiate(self, sender: str, jingle: Jingle) -> None:
        try:
            resource = JID.parse(sender).resource
        except InvalidJID:
            self._error(f"session-initiate from an invalid JID {sender!r}")
            return
        if resource != FOCUS_NICK:
            self._record("local", "p2p-declined", sender, jingle.sid)
            self._terminate(sender, jingle.sid, Reason("decline", "P2P disabled"))
            return
        if not self._is_trusted_focus(sender):
            self._error(f"session-initiate from {sender}, which is not a trusted focus")
            reason = Reason("security-error", "Rejecting session-initiate from non-focus.")
            self._terminate(sender, jingle.sid, reason)
            return
        if self.session is not None:
            self._error(f"session-initiate {jingle.sid} while session {self.session.sid} is active")
            self._drop_session("replaced by a new session-initiate")
        check = check_offer(jingle, self.features)
        for problem in check.all:
            self._error(f"offer {jingle.sid}: {problem}")
        for note in check.notes:
            self._record("local", "note", note, jingle.sid)
        if check.fatal:
            if self._active_sid == jingle.sid:
                self._active_sid = None
            self._closed_sids.append(jingle.sid)
            self._terminate(sender, jingle.sid, Reason("failed-application", "; ".join(check.fatal)))
            return
        self.remote = RemoteSources()
        self._apply_remote_add(jingle, "offer")
        session = SimJingleSession(jingle.sid, sender, jingle, random_transport(self.rng),
                                   jingle.bridge_session)
        self.session = session
        if jingle.start_muted is not None:
            # lib-jitsi-meet mutes its tracks as the offer says before answering.
            await self._apply_start_muted(jingle.start_muted.audio, jingle.start_muted.video)
        await self._send_answer(session, jingle, cj.SESSION_ACCEPT, self.options.timeouts.accept)

    async def _send_answer(
        self, session: SimJingleSession, offer: Jingle, action: str, timeout: float
    ) -> None:
        assert self.local is not None and self.client.jid is not None
        contents, bundle, problems = answer_contents(offer, self.local, session.transport, self.codecs)
        for problem in problems:
            self._error(f"offer {offer.sid}: {problem}")
        if self.options.initial_last_n is not None:  # lib-jitsi-meet: in the video content
            last_n = self.options.initial_last_n
            contents = tuple(replace(c, initial_last_n=last_n) if c.name == "video" else c for c in contents)
        answer = Jingle(action, session.sid, initiator=session.focus, responder=str(self.client.jid),
                        contents=contents, bundle=bundle)
        session.accept_sent = True
        try:
            await self._send_jingle(session, answer, f"{len(self.local.ssrcs())} ssrcs", timeout)
        except StanzaError as err:
            self._error(f"the focus refused our {action}: {err}")
            return
        except IQTimeout:
            return
        if action == cj.SESSION_ACCEPT:
            session.accepted = True
            self.sessions_accepted += 1
            self._notify()
            if self.options.send_transport_info:
                await self._send_transport_info(session)

    async def _send_transport_info(self, session: SimJingleSession,
                                   ice_generation: int | None = None) -> bool:
        first = session.offer.contents[0].name
        transport = session.transport
        candidate = host_candidate(self.rng, ice_generation or 0)
        transport = Transport(transport.ufrag, transport.pwd, transport.fingerprints, (candidate,),
                              ice_generation=ice_generation)
        jingle = Jingle(cj.TRANSPORT_INFO, session.sid, initiator=session.focus,
                        contents=(Content(first, "responder", None, transport=transport),))
        try:
            await self._send_jingle(session, jingle, f"ice-generation={ice_generation}")
        except StanzaError as err:
            self._error(f"the focus refused our transport-info: {err}")
            return False
        except IQTimeout:
            return False
        return True

    def _apply_remote_add(self, jingle: Jingle, what: str) -> None:
        assert self.endpoint_id is not None
        update = read_update(jingle.contents, jingle.json_message, self.remote)
        added, problems = apply_add(self.remote, update, self.endpoint_id)
        for problem in problems:
            self._error(f"{what} {jingle.sid}: {problem}")
        summary = ", ".join(f"{owner}:{count}" for owner, count in added.items())
        self._record("local", "remote-sources", f"+{what} {summary}", jingle.sid)

    async def _on_source_add(self, sender: str, jingle: Jingle) -> None:
        if self._current(jingle) is None:
            return
        if jingle.json_message is not None and not self.options.json_sources:
            self._error("json-message sources although json-encoded-sources was not advertised")
        self._apply_remote_add(jingle, "source-add")

    async def _on_source_remove(self, sender: str, jingle: Jingle) -> None:
        if self._current(jingle) is None:
            return
        update = read_update(jingle.contents, jingle.json_message, self.remote)
        removed, problems = apply_remove(self.remote, update)
        for problem in problems:
            self._error(f"source-remove {jingle.sid}: {problem}")
        summary = ", ".join(f"{owner}:{count}" for owner, count in removed.items())
        self._record("local", "remote-sources", f"-source-remove {summary}", jingle.sid)

    async def _on_transport_info(self, sender: str, jingle: Jingle) -> None:
        session = self._current(jingle)
        if session is None:
            return
        generations = [c.transport.ice_generation for c in jingle.contents
                       if c.transport is not None and c.transport.ice_generation is not None]
        if not generations:
            return
        generation = max(generations)
        if generation <= session.ice_generation:
            self._error(f"transport-info with ice-generation {generation} not above {session.ice_generation}")
            return
        remote = next(c.transport for c in jingle.contents
                      if c.transport is not None and c.transport.ice_generation == generation)
        if not remote.ufrag or not remote.pwd:
            self._error(f"transport-info with ice-generation {generation} lacks ufrag or pwd")
            return
        # As lib-jitsi-meet: patch the remote description with the new credentials, re-answer
        # with new local ones and send them, tagged with the same generation.
        session.ice_generation = generation
        session.remote_transport = remote
        session.transport = random_transport(self.rng)
        self._record("local", "ice-restart-credentials", f"generation {generation} ufrag {remote.ufrag}",
                     jingle.sid)
        if await self._send_transport_info(session, generation):
            session.ice_generation_answered = generation
            self._notify()

    async def _on_transport_replace(self, sender: str, jingle: Jingle) -> None:
        session = self._current(jingle)
        if session is None:
            return
        if not self.options.apply_transport_replace:
            self._error("transport-replace received (lib-jitsi-meet acks and ignores it)")
            return
        check = check_offer(jingle, self.features)
        for problem in check.all:
            self._error(f"transport-replace {jingle.sid}: {problem}")
        if check.fatal:
            return
        session.offer = jingle
        session.transport = random_transport(self.rng)
        session.bridge_session = jingle.bridge_session or session.bridge_session
        self.remote = RemoteSources()
        self._apply_remote_add(jingle, "transport-replace")
        await self._send_answer(session, jingle, cj.TRANSPORT_ACCEPT, self.options.timeouts.accept)

    async def _on_session_terminate(self, sender: str, jingle: Jingle) -> None:
        if self._current(jingle) is None:
            return
        reason = jingle.reason
        self._drop_session(f"terminated by the focus: {reason.condition if reason else '-'}"
                           f"{' ' + reason.text if reason and reason.text else ''}")

    def _drop_session(self, why: str) -> None:
        """Close the session locally: the remote (bridge) tracks go with it (§3.6)."""
        session = self.session
        if session is None:
            return
        self.session = None
        if self._active_sid == session.sid:
            self._active_sid = None
        self._closed_sids.append(session.sid)
        self.remote = RemoteSources()
        self._record("local", "session-closed", why, session.sid)

    async def _send_jingle(self, session: SimJingleSession, jingle: Jingle, detail: str = "",
                           timeout: float | None = None) -> Element:
        """Send a Jingle IQ to the focus and wait for the answer. An error answer is recorded and
        raised as StanzaError; no answer is recorded as an error and raised as IQTimeout."""
        action = jingle.action
        self._record("out", action, detail, jingle.sid)
        iq = self.client.iq("set", session.focus, jingle.to_element())
        try:
            result = await self.client.request(iq, timeout=timeout or self.options.timeouts.request)
        except StanzaError as err:
            self._record("in", "error-answer", f"{action}: {err}", jingle.sid)
            raise
        except IQTimeout:
            self._error(f"no answer to our {action}")
            raise
        self._record("in", "result", action, jingle.sid)
        return result
