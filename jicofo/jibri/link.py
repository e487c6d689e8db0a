"""The XMPP side of Jibri sessions: `start` as an IQ request to the instance's occupant JID in
the brewery, `stop` sent without waiting (upstream's fire-and-forget), from a nursery that
outlives the session (the focus's)."""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element

import trio

from jicofo.xmlns.jibri import JIBRI, Action, JibriIQ, JibriParseError
from jicofo.xmpp.client import BaseXMPPConnection
from jicofo.xmpp.errors import XMPPError
from jicofo.xmpp.jid import JID

log = logging.getLogger(__name__)


class XmppJibriLink:
    def __init__(self, client: BaseXMPPConnection, nursery: trio.Nursery | None) -> None:
        self.client = client
        self.nursery = nursery  # set when the focus runs

    async def start(self, jibri: JID, request: JibriIQ, timeout: float) -> JibriIQ:
        answer = await self.client.request(self.client.iq("set", jibri, request.to_element()), timeout)
        payload = answer.find(JIBRI)
        if payload is None:
            raise JibriParseError("the answer to start has no <jibri>")
        return JibriIQ.from_element(payload)

    def stop(self, jibri: JID, session_id: str) -> None:
        iq = self.client.iq("set", jibri, JibriIQ(action=Action.STOP, session_id=session_id).to_element())
        if self.nursery is None:
            log.info("stop to %s not sent: not running", jibri)
            return
        self.nursery.start_soon(self._send, iq)

    async def _send(self, iq: Element) -> None:
        try:
            with trio.move_on_after(self.client.timeouts.request):
                await self.client.send(iq)
        except XMPPError as exc:
            log.info("stop to %s not sent: %s", iq.get("to"), exc)
