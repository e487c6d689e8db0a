"""Routing of `<jibri>` IQs (upstream's JibriIqHandler): a status update from the Jibri instance a
session is using goes to that session (answered with an empty result); anything else must come
from a member of a conference the focus runs, through its occupant JID, and goes to that
conference's recorder / SIP gateway (jicofo/jibri/conference_jibri.py). An IQ that no conference
takes is refused `item-not-found`, as upstream; one that cannot be read `bad-request` (without
echoing it)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from xml.etree.ElementTree import Element

from jicofo.logs import log_context
from jicofo.xmlns.jibri import JIBRI, JibriIQ, JibriParseError
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID, InvalidJID

from .conference import Conference

log = logging.getLogger(__name__)


async def handle_jibri_iq(conferences: Mapping[JID, Conference], iq: Element) -> Element | None:
    payload = iq.find(JIBRI)
    if payload is None:
        raise StanzaError("bad-request", "no <jibri> payload")
    try:
        sender = JID.parse(iq.get("from", ""))
        request = JibriIQ.from_element(payload)
    except (InvalidJID, JibriParseError) as exc:
        raise StanzaError("bad-request", str(exc)) from None
    for conference in list(conferences.values()):
        jibri = conference.jibri
        session = jibri.session_of(sender) if jibri is not None else None
        if jibri is not None and session is not None:
            with log_context(room=str(conference.room_jid)):
                jibri.handle_jibri_status(session, sender, request)
            return None
    target = conferences.get(sender.bare)
    jibri = target.jibri if target is not None else None
    if target is None or jibri is None or target.stop_reason is not None:
        log.info("jibri IQ from %s not taken by any conference", sender)
        raise StanzaError("item-not-found", None)
    member, moderator = target.jibri_requester(sender.resource)
    with log_context(room=str(target.room_jid)):
        answer = await jibri.handle_member_request(sender, request, member=member, moderator=moderator)
    return answer.to_element() if answer is not None else None
