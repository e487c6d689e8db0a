"""Members' Rayo `<dial>` IQs (upstream's JigasiIqHandler.handleRequest): the sender must be an
occupant of a conference the focus runs (`bad-request` when the sender is no room occupant,
`item-not-found` for an unknown conference), a member of it and, with
`jicofo.conference.enable-moderator-checks`, a moderator (`forbidden`); a `JvbRoomName` header
must name that room (`forbidden`). Then jicofo/jigasi/service.py picks a Jigasi and relays."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from xml.etree.ElementTree import Element

from jicofo.logs import log_context
from jicofo.xmlns.rayo import DIAL, ROOM_NAME_HEADER, DialIQ, DialParseError
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID, InvalidJID

from .conference import Conference
from .gateways import is_transcriber_member

log = logging.getLogger(__name__)


async def handle_dial_iq(conferences: Mapping[JID, Conference], iq: Element) -> Element | None:
    payload = iq.find(DIAL)
    assert payload is not None  # the client only hands <dial> here
    try:
        sender = JID.parse(iq.get("from", ""))
        dial = DialIQ.from_element(payload)
    except (InvalidJID, DialParseError) as exc:
        raise StanzaError("bad-request", str(exc)) from None
    conference = conferences.get(sender.bare)
    jigasi = conference.services.jigasi if conference is not None else None
    if sender.resource is None or conference is None or jigasi is None:
        if jigasi is not None:
            jigasi.stats.rejected_requests += 1
        log.info("dial from %s refused: no such conference", sender)
        raise StanzaError("bad-request" if sender.resource is None else "item-not-found", None)
    with log_context(room=str(conference.room_jid)):
        member, moderator = conference.jibri_requester(sender.resource)
        checks = conference.services.config.conference.enable_moderator_checks
        if not member or (checks and not moderator):
            jigasi.stats.rejected_requests += 1
            log.info("dial from %s refused: %s", sender.resource,
                     "not a member" if not member else "not a moderator")
            raise StanzaError("forbidden", None)
        header = dial.header(ROOM_NAME_HEADER)
        if header is not None and not _same_room(header, conference.room_jid):
            jigasi.stats.rejected_requests += 1
            log.info("dial from %s refused: the %s header names another room", sender.resource,
                     ROOM_NAME_HEADER)
            raise StanzaError("forbidden", None)
        jigasi.stats.accepted_requests += 1
        trusted = conference.services.config.xmpp.trusted_domains
        has_transcriber = any(is_transcriber_member(p.occupant, p.presence.features, trusted)
                              for p in conference.participants.values())
        regions = {b.region for b in conference.colibri_sessions if b.region}
        return await jigasi.dial(conference.room_jid, dial, payload, bridge_regions=regions,
                                 has_transcriber=has_transcriber)


def _same_room(header: str, room: JID) -> bool:
    try:
        return JID.parse(header).bare == room
    except InvalidJID:
        return False
