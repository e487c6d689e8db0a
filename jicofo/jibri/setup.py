"""Builds the Jibri side of the focus from config (`jicofo.jibri.*`, `jicofo.jibri-sip.*`): the
detectors of the configured breweries, on the connection `jibri.xmpp-connection-name` names (the
client connection unless Service is named and configured; the SIP brewery always on the client
connection, as upstream), and what conferences share. Nothing is built without a brewery."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from jicofo.config.model import JicofoConfig, XmppConnectionName
from jicofo.xmpp.client import BaseXMPPConnection
from jicofo.xmpp.jid import JID

from .conference_jibri import JibriServices
from .detector import JibriDetector
from .link import XmppJibriLink

log = logging.getLogger(__name__)


@dataclass
class JibriSetup:
    services: JibriServices
    link: XmppJibriLink
    connection: BaseXMPPConnection

    @property
    def detectors(self) -> list[JibriDetector]:
        return [d for d in (self.services.recorders, self.services.sip) if d is not None]

    async def run(self, nursery: trio.Nursery) -> None:
        """Start the detectors (each returns once its room is joined) in `nursery`."""
        self.link.nursery = nursery
        for detector in self.detectors:
            await nursery.start(detector.run)


def build_jibri(config: JicofoConfig, client: BaseXMPPConnection,
                service: BaseXMPPConnection | None) -> JibriSetup | None:
    jibri = config.jibri
    if not jibri.brewery_jid and not jibri.sip_brewery_jid:
        return None
    connection = client
    if jibri.xmpp_connection_name is XmppConnectionName.SERVICE and service is not None:
        connection = service
    reply_timeout = (config.xmpp.service if connection is service else config.xmpp.client).reply_timeout
    link = XmppJibriLink(connection, None)
    services = JibriServices(config=jibri, reply_timeout=reply_timeout, link=link)
    if jibri.brewery_jid:
        services.recorders = JibriDetector(connection, JID.parse(jibri.brewery_jid),
                                           request_timeout=reply_timeout)
    if jibri.sip_brewery_jid:
        services.sip = JibriDetector(client, JID.parse(jibri.sip_brewery_jid), sip=True,
                                     request_timeout=config.xmpp.client.reply_timeout)
    log.info("jibri: recorder brewery %s, SIP brewery %s", jibri.brewery_jid or "none",
             jibri.sip_brewery_jid or "none")
    return JibriSetup(services, link, connection)
