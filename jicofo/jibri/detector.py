"""The Jibri (or SIP-Jibri) brewery (upstream's JibriDetector, docs/jicofo.md §1.9 row 78).

Each occupant whose presence carries `<jibri-status>` is an instance. It is available when it
says it is healthy and idle. `select()` picks among the available instances that were not
selected in the last `SELECT_TIMEOUT` (so that two requests a moment apart do not both get the
Jibri whose "busy" presence has not arrived yet) and not reported failed in the last
`FAILURE_TIMEOUT`: the one whose failure is oldest (never failed first). A presence saying the
instance is available again clears its failure, as upstream: Jibri only sends presence when
something changes. An instance that leaves is removed and the listeners hear of it (a session
on it treats that as an error worth a retry).

Jibri's presence says nothing else (no region, no graceful-shutdown flag): a Jibri shutting down
or a single-use one that is done says so through its busy status (`busy`, `expired`), which makes
it unavailable like any status other than `idle`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import trio

from jicofo.xmlns.jibri import JIBRI_STATUS, JibriInstanceStatus
from jicofo.xmpp.brewery_room import BreweryRoom
from jicofo.xmpp.client import BaseXMPPConnection
from jicofo.xmpp.jid import JID

log = logging.getLogger(__name__)

SELECT_TIMEOUT = 0.2
FAILURE_TIMEOUT = 60.0
NEVER = float("-inf")

OfflineListener = Callable[[JID], None]


@dataclass
class JibriInstance:
    jid: JID
    status: JibriInstanceStatus
    last_selected: float = NEVER
    last_failed: float = NEVER

    @property
    def available(self) -> bool:
        return self.status.available


class JibriDetector(BreweryRoom):
    def __init__(self, client: BaseXMPPConnection, brewery_jid: JID, *, sip: bool = False,
                 clock: Callable[[], float] = trio.current_time,
                 request_timeout: float | None = None) -> None:
        super().__init__(client, brewery_jid, JIBRI_STATUS, request_timeout=request_timeout)
        self.kind = "sip-jibri" if sip else "jibri"
        self.sip = sip
        self.clock = clock
        self.instances: dict[JID, JibriInstance] = {}
        self._offline_listeners: list[OfflineListener] = []

    # ----- selection ---------------------------------------------------------------------------

    def select(self) -> JID | None:
        now = self.clock()
        candidates = [i for i in self.instances.values()
                      if i.available and now - i.last_selected >= SELECT_TIMEOUT]
        if not candidates:
            return None
        best = min(candidates, key=lambda i: i.last_failed)
        if now - best.last_failed < FAILURE_TIMEOUT:
            return None
        best.last_selected = now
        return best.jid

    def instance_failed(self, jid: JID) -> None:
        instance = self.instances.get(jid)
        if instance is not None:
            instance.last_failed = self.clock()
            log.info("%s %s failed: not selected for %.0f s", self.kind, jid.resource, FAILURE_TIMEOUT)

    def any_connected(self) -> bool:
        return bool(self.instances)

    def count(self) -> int:
        return len(self.instances)

    def available_count(self) -> int:
        return sum(1 for i in self.instances.values() if i.available)

    def add_offline_listener(self, listener: OfflineListener) -> None:
        self._offline_listeners.append(listener)

    def remove_offline_listener(self, listener: OfflineListener) -> None:
        if listener in self._offline_listeners:
            self._offline_listeners.remove(listener)

    # ----- brewery hooks -----------------------------------------------------------------------

    def instance_updated(self, jid: JID, extension: Element) -> None:
        status = JibriInstanceStatus.from_element(extension)
        instance = self.instances.get(jid)
        if instance is None:
            instance = self.instances[jid] = JibriInstance(jid, status)
            log.info("%s %s added: busy=%s health=%s", self.kind, jid.resource, status.busy, status.health)
            return
        if status != instance.status:
            log.info("%s %s: busy=%s health=%s", self.kind, jid.resource, status.busy, status.health)
        instance.status = status
        if instance.available and instance.last_failed != NEVER:
            log.info("%s %s: available again, failure forgotten", self.kind, jid.resource)
            instance.last_failed = NEVER

    def instance_left(self, jid: JID) -> None:
        if self.instances.pop(jid, None) is None:
            return
        log.info("%s %s removed", self.kind, jid.resource)
        for listener in list(self._offline_listeners):
            try:
                listener(jid)
            except Exception:
                log.exception("%s offline listener failed for %s", self.kind, jid)

    def to_json(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "brewery_jid": str(self.jid),
            "is_sip": self.sip,
            "instances": {
                str(i.jid.resource): {
                    "busy_status": i.status.busy, "health_status": i.status.health,
                    "reports_available": i.available,
                    "failed_seconds_ago": None if i.last_failed == NEVER else round(now - i.last_failed, 1),
                }
                for i in self.instances.values()
            },
        }
