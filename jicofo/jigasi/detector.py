"""The Jigasi brewery (upstream's JigasiDetector): each occupant with colibri `<stats>` is a Jigasi;
the focus reads `supports_sip`, `supports_transcription`, `graceful_shutdown`, `participants`
and `region` (booleans as Java's parseBoolean; a count that does not parse reads as 0).

Selection (`select`), for SIP or for transcription: instances not excluded, not in graceful
shutdown, supporting what is asked; then the least loaded (fewest participants) among those in
one of the preferred regions (the conference's bridges'), else in those regions' groups
(`jicofo.bridge.region-groups`), else in the local region, else among all."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from jicofo.xmlns.colibri_stats import NS_COLIBRI, STATS
from jicofo.xmpp.brewery_room import BreweryRoom
from jicofo.xmpp.client import BaseXMPPConnection
from jicofo.xmpp.jid import JID
from jicofo.xmpp.xml import children

log = logging.getLogger(__name__)

MAX_STATS = 256


@dataclass(frozen=True, slots=True)
class JigasiInstance:
    jid: JID
    supports_sip: bool = False
    supports_transcription: bool = False
    graceful_shutdown: bool = False
    participants: int = 0
    region: str | None = None

    @classmethod
    def from_stats(cls, jid: JID, stats: Element) -> JigasiInstance:
        values: dict[str, str] = {}
        for stat in children(stats, NS_COLIBRI, "stat")[:MAX_STATS]:
            name, value = stat.get("name"), stat.get("value")
            if name and value is not None:
                values[name] = value[:128]

        def flag(name: str) -> bool:
            return values.get(name, "").strip().lower() == "true"

        try:
            participants = max(0, int(values.get("participants", "0")))
        except ValueError:
            participants = 0
        return cls(jid, flag("supports_sip"), flag("supports_transcription"), flag("graceful_shutdown"),
                   participants, values.get("region") or None)


class JigasiDetector(BreweryRoom):
    kind = "jigasi"

    def __init__(self, client: BaseXMPPConnection, brewery_jid: JID, *, local_region: str | None = None,
                 region_groups: Iterable[frozenset[str]] = (),
                 request_timeout: float | None = None) -> None:
        super().__init__(client, brewery_jid, STATS, request_timeout=request_timeout)
        self.local_region = local_region
        self.region_groups = tuple(region_groups)
        self.instances: dict[JID, JigasiInstance] = {}

    def instance_updated(self, jid: JID, extension: Element) -> None:
        instance = JigasiInstance.from_stats(jid, extension)
        old = self.instances.get(jid)
        self.instances[jid] = instance
        if old is None:
            log.info("jigasi %s added: sip=%s transcription=%s region=%s participants=%d", jid.resource,
                     instance.supports_sip, instance.supports_transcription, instance.region,
                     instance.participants)
        elif old.graceful_shutdown != instance.graceful_shutdown:
            log.info("jigasi %s: graceful_shutdown=%s", jid.resource, instance.graceful_shutdown)

    def instance_left(self, jid: JID) -> None:
        if self.instances.pop(jid, None) is not None:
            log.info("jigasi %s removed", jid.resource)

    def _group_of(self, region: str) -> frozenset[str]:
        return next((g for g in self.region_groups if region in g), frozenset({region}))

    def select(self, *, transcriber: bool, exclude: Collection[JID] = (),
               preferred_regions: Collection[str] = ()) -> JID | None:
        available = [i for i in self.instances.values()
                     if i.jid not in exclude and not i.graceful_shutdown
                     and (i.supports_transcription if transcriber else i.supports_sip)]
        preferred = set(preferred_regions)
        grouped = {r for region in preferred for r in self._group_of(region)}
        for regions in (preferred, grouped, {self.local_region} if self.local_region else set()):
            matching = [i for i in available if i.region in regions]
            if matching:
                return min(matching, key=lambda i: i.participants).jid
        return min(available, key=lambda i: i.participants).jid if available else None

    # ----- counts (upstream's jigasi_detector stats and gauges) ---------------------------------

    def sip_count(self) -> int:
        return sum(1 for i in self.instances.values() if i.supports_sip)

    def sip_in_graceful_shutdown_count(self) -> int:
        return sum(1 for i in self.instances.values() if i.supports_sip and i.graceful_shutdown)

    def transcriber_count(self) -> int:
        return sum(1 for i in self.instances.values() if i.supports_transcription)

    def to_json(self) -> dict[str, Any]:
        return {
            "brewery_jid": str(self.jid),
            "instances": {
                str(i.jid.resource): {"supports_sip": i.supports_sip,
                                      "supports_transcription": i.supports_transcription,
                                      "is_in_graceful_shutdown": i.graceful_shutdown,
                                      "participants": i.participants, "region": i.region}
                for i in self.instances.values()
            },
        }
