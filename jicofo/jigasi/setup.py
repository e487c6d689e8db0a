"""Builds the Jigasi side from `jicofo.jigasi.*`: the detector of the brewery on the connection
`xmpp-connection-name` names (the client connection unless Service is named and configured).
Nothing without a brewery (and then `<dial>` IQs are answered `service-unavailable`, as by a
focus that has no handler for them)."""

from __future__ import annotations

import logging

from jicofo.config.model import JicofoConfig, XmppConnectionName
from jicofo.xmpp.client import BaseXMPPConnection
from jicofo.xmpp.jid import JID

from .detector import JigasiDetector
from .service import JigasiServices

log = logging.getLogger(__name__)


def build_jigasi(config: JicofoConfig, client: BaseXMPPConnection,
                 service: BaseXMPPConnection | None) -> JigasiServices | None:
    jigasi = config.jigasi
    if not jigasi.brewery_jid:
        return None
    connection = client
    if jigasi.xmpp_connection_name is XmppConnectionName.SERVICE and service is not None:
        connection = service
    timeout = (config.xmpp.service if connection is service else config.xmpp.client).reply_timeout
    detector = JigasiDetector(connection, JID.parse(jigasi.brewery_jid), local_region=config.local_region,
                              region_groups=config.bridge.region_groups, request_timeout=timeout)
    log.info("jigasi: brewery %s", jigasi.brewery_jid)
    return JigasiServices(detector, connection, timeout)
