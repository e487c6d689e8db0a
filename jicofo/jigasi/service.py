"""Forwarding members' Rayo `<dial>` to a Jigasi (upstream's JigasiIqHandler, docs/jicofo.md #82).

`dial(room, bridge_regions, has_transcriber, request_element, dial)` picks an instance
(detector.py), sends it a copy of the member's `<dial>` in a new IQ (fresh id, from the focus),
and returns the Jigasi's answer payload (its `<ref uri>`) for the member. A timeout or an error
answer tries another instance, twice at most (`RETRIES`), never the same one again; then the
member gets `remote-server-timeout` (the last one timed out) or `undefined-condition` (it
answered an error). No instance: `service-unavailable`. A transcriber requested while one is in
the room: `conflict` (upstream means to send it, and never does; the client times out there).
The checks on the requester (membership, moderator, the room header) are the caller's."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from jicofo.xmlns.rayo import DialIQ
from jicofo.xmpp.client import BaseXMPPConnection
from jicofo.xmpp.errors import IQTimeout, NotConnected, StanzaError, XMPPError
from jicofo.xmpp.jid import JID

from .detector import JigasiDetector

log = logging.getLogger(__name__)

RETRIES = 2


@dataclass
class JigasiStats:
    """Upstream's names (`jigasi_iq_handler_*` metrics and /stats `jigasi`)."""

    rejected_requests: int = 0
    accepted_requests: int = 0
    retries: int = 0
    instance_errors: int = 0
    instance_timeouts: int = 0
    requests_failed_no_instance: int = 0
    requests_failed_xmpp_not_connected: int = 0
    requests_failed_all_instances: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "rejected_requests": self.rejected_requests,
            "accepted_requests": self.accepted_requests,
            "retries": self.retries,
            "instance_errors": self.instance_errors,
            "instance_timeout": self.instance_timeouts,
            "requests_failed_no_instance": self.requests_failed_no_instance,
            "requests_failed_xmpp_not_connected": self.requests_failed_xmpp_not_connected,
        }


@dataclass
class JigasiServices:
    detector: JigasiDetector
    client: BaseXMPPConnection  # the connection in the Jigasi brewery
    reply_timeout: float
    stats: JigasiStats = field(default_factory=JigasiStats)

    async def dial(self, room: JID, dial: DialIQ, payload: Element, *, bridge_regions: set[str],
                   has_transcriber: bool) -> Element | None:
        if dial.transcriber and has_transcriber:
            log.info("conference %s: transcriber requested, one is already in the room", room)
            raise StanzaError("conflict", "a transcriber is already in the conference")
        exclude: list[JID] = []
        for attempt in range(RETRIES + 1):
            jid = self.detector.select(transcriber=dial.transcriber, exclude=exclude,
                                       preferred_regions=bridge_regions)
            if jid is None:
                log.info("conference %s: no %s jigasi available", room,
                         "transcribing" if dial.transcriber else "SIP")
                self.stats.requests_failed_no_instance += 1
                raise StanzaError("service-unavailable", None)
            log.info("conference %s: dial forwarded to jigasi %s (attempt %d)", room, jid.resource,
                     attempt + 1)
            iq = self.client.iq("set", jid, copy.deepcopy(payload))
            try:
                answer = await self.client.request(iq, timeout=self.reply_timeout)
            except NotConnected:
                log.warning("conference %s: dial not forwarded: not connected", room)
                self.stats.requests_failed_xmpp_not_connected += 1
                raise StanzaError("service-unavailable", None) from None
            except IQTimeout:
                log.warning("conference %s: jigasi %s timed out", room, jid.resource)
                self.stats.instance_timeouts += 1
                condition = "remote-server-timeout"
            except XMPPError as exc:
                log.warning("conference %s: jigasi %s answered an error: %s", room, jid.resource,
                            getattr(exc, "condition", exc))
                self.stats.instance_errors += 1
                condition = "undefined-condition"
            else:
                log.info("conference %s: jigasi %s answered the dial", room, jid.resource)
                return answer[0] if len(answer) else None
            exclude.append(jid)
            if attempt < RETRIES:
                self.stats.retries += 1
        log.warning("conference %s: dial failed on every jigasi tried", room)
        self.stats.requests_failed_all_instances += 1
        raise StanzaError(condition, None)
