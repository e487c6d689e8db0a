"""What `/stats` and `/metrics` report, read from the running focus at request time.

Names follow upstream (docs/jicofo.md §5), prefixed `jitsi_jicofo_`. Counters come out of the
Prometheus text format with `_total` appended, as prometheus-client (and upstream's Java client)
writes them. Nothing is refreshed periodically: every scrape reads the live state, so the values
are never up to `metrics.update-interval` old.

Only what the focus really tracks is exported. Metrics of features it does not have (visitors,
XMPP disconnect counting) are left out rather than shown as zero; Jibri and Jigasi figures come
from gateway_metrics.py.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from jicofo import __version__
from jicofo.health import HealthChecker, is_health_check_room
from jicofo.rest.gateway_metrics import gateway_metrics, gateway_stats_json
from jicofo.xmpp.traffic import TRAFFIC

if TYPE_CHECKING:
    from jicofo.app import FocusApp
    from jicofo.bridge.brewery import BridgeEvent
    from jicofo.conference.conference import Conference

PREFIX = "jitsi_jicofo_"
# /stats `conference_sizes`: counts of conferences with 0, 1, ... members, the last bucket
# holding every larger one (as upstream's ConferenceSizeBuckets).
CONFERENCE_SIZE_BUCKETS = 22


@dataclass
class BridgeEventCounts:
    """Counts bridge events from the brewery (`bridges_removed`, `bridge_selector_lost_bridges`).
    `attach` registers it as a brewery listener."""

    bridges_removed: int = 0
    lost_bridges: int = 0

    def __call__(self, event: BridgeEvent) -> None:
        from jicofo.bridge.brewery import BridgeRemoved

        if isinstance(event, BridgeRemoved):
            self.bridges_removed += 1
            if not (event.bridge.graceful_shutdown or event.bridge.shutting_down):
                self.lost_bridges += 1

    @classmethod
    def attach(cls, app: FocusApp) -> BridgeEventCounts:
        counts = cls()
        if app.brewery is not None:
            app.brewery.add_listener(counts)
        return counts


@dataclass(frozen=True)
class Snapshot:
    """The focus's state at one instant, as both /stats and /metrics see it."""

    conferences: list[Conference]
    sizes: list[int]
    bridges: list[Any]
    operational: int
    in_shutdown: int
    versions: int

    @property
    def participants(self) -> int:
        return sum(self.sizes)

    @property
    def largest(self) -> int:
        return max(self.sizes, default=0)

    @property
    def pairs(self) -> int:
        return sum(n * n for n in self.sizes)


def snapshot(app: FocusApp) -> Snapshot:
    prefix = app.config.health.room_name_prefix
    conferences = [c for room, c in list(app.focus.conferences.items())
                   if not is_health_check_room(room, prefix)]
    brewery = app.brewery
    bridges = list(brewery.bridges.values()) if brewery is not None else []
    now = brewery.clock() if brewery is not None else trio.current_time()
    return Snapshot(
        conferences=conferences,
        sizes=[len(c.participants) for c in conferences],
        bridges=bridges,
        operational=sum(1 for b in bridges if b.is_operational(now)),
        in_shutdown=sum(1 for b in bridges if b.graceful_shutdown or b.shutting_down),
        versions=len({b.full_version for b in bridges if b.full_version}),
    )


def _jingle_by_action(counter: Any) -> dict[str, int]:
    return {action.replace("-", "_").upper(): n for action, n in sorted(counter.items())}


def stats_json(app: FocusApp, health: HealthChecker | None,
               bridge_events: BridgeEventCounts) -> dict[str, Any]:
    """`GET /stats`, with upstream's keys (§4)."""
    stats = app.stats
    snap = snapshot(app)
    sizes = [0] * CONFERENCE_SIZE_BUCKETS
    for n in snap.sizes:
        sizes[min(n, CONFERENCE_SIZE_BUCKETS - 1)] += 1
    body: dict[str, Any] = {
        "total_participants": stats.participants,
        "total_conferences_created": stats.conferences_created,
        "conferences": len(snap.conferences),
        "conferences_with_visitors": 0,  # no visitor support: no conference has visitors
        "bridge_failures": {
            "participants_moved": stats.participants_moved,
            "bridges_removed": bridge_events.bridges_removed,
        },
        "participant_notifications": {
            "ice_failed": stats.participants_ice_failed,
            "request_restart": stats.participants_restart_requested,
        },
        "largest_conference": snap.largest,
        "participants": snap.participants,
        "visitors": 0,
        "conference_sizes": sizes,
        "endpoint_pairs": snap.pairs,
        **gateway_stats_json(app),
        "queues": {},
        "bridge_selector": {
            "bridge_count": len(snap.bridges),
            "operational_bridge_count": snap.operational,
            "in_shutdown_bridge_count": snap.in_shutdown,
            "lost_bridges": bridge_events.lost_bridges,
            "bridge_version_count": snap.versions,
        },
        "threads": threading.active_count(),
        "jingle": {
            "sent": _jingle_by_action(stats.jingle_out),
            "received": _jingle_by_action(stats.jingle_in),
        },
        "version": __version__,
        # Ours, beside upstream's keys.
        "conference_requests": stats.conference_requests,
        "conference_requests_errors": stats.conference_requests_errors,
        "xmpp_traffic": TRAFFIC.to_json(),
    }
    if health is not None:
        result = health.last_result
        body["slow_health_check"] = health.slow
        body["healthy"] = result.success
        body["health"] = result.to_json()
    return body


class FocusCollector:
    """A prometheus-client collector that reads the focus at scrape time (no global registry)."""

    def __init__(self, app: FocusApp, health: HealthChecker | None,
                 bridge_events: BridgeEventCounts) -> None:
        self.app = app
        self.health = health
        self.bridge_events = bridge_events

    def collect(self) -> Iterator[Metric]:
        app = self.app
        stats = app.stats
        snap = snapshot(app)

        def counter(name: str, doc: str, value: float) -> Metric:
            family = CounterMetricFamily(PREFIX + name, doc)
            family.add_metric([], value)
            return family

        def gauge(name: str, doc: str, value: float) -> Metric:
            return GaugeMetricFamily(PREFIX + name, doc, value=value)

        yield counter("conference_requests", "Conference requests received.", stats.conference_requests)
        yield counter("conference_requests_new", "Conference requests for a room without a conference.",
                      stats.conference_requests_new)
        yield counter("conference_requests_errors", "Conference requests answered with an error.",
                      stats.conference_requests_errors)
        yield counter("conferences_created", "Conferences created.", stats.conferences_created)
        yield counter("xmpp_stanzas_sent", "Top-level XMPP elements sent, on every connection.",
                      TRAFFIC.stanzas_sent)
        yield counter("xmpp_stanzas_received", "Top-level XMPP elements received, on every connection.",
                      TRAFFIC.stanzas_received)
        yield counter("xmpp_bytes_sent", "Bytes sent on every XMPP connection.", TRAFFIC.bytes_sent)
        yield counter("xmpp_writes", "Transport writes on every XMPP connection (stanzas sent together "
                      "share one).", TRAFFIC.writes)
        yield counter("xmpp_bytes_received", "Bytes received on every XMPP connection.",
                      TRAFFIC.bytes_received)
        yield counter("participants", "Participants that joined a conference.", stats.participants)
        yield counter("participants_moved", "Participants moved off a failed bridge.",
                      stats.participants_moved)
        yield counter("participants_ice_failed", "Participants that reported an ICE failure.",
                      stats.participants_ice_failed)
        yield counter("participants_restart_requested", "Participants that requested a restart.",
                      stats.participants_restart_requested)
        yield counter("ice_restarts_requested", "In-place ICE restarts requested by participants.",
                      stats.ice_restarts_requested)
        yield counter("ice_restarts_relayed", "In-place ICE restarts relayed to the participant.",
                      stats.ice_restarts_relayed)
        yield counter("ice_restarts_not_needed", "In-place ICE restarts the bridge found unnecessary.",
                      stats.ice_restarts_not_needed)
        yield counter("ice_restarts_failed", "In-place ICE restarts refused or failed (re-invited instead).",
                      stats.ice_restarts_failed)
        yield counter("bridges_removed", "Bridges removed from the brewery.",
                      self.bridge_events.bridges_removed)
        yield counter("bridge_selector_lost_bridges", "Bridges that left without announcing a shutdown.",
                      self.bridge_events.lost_bridges)
        yield counter("bridge_allocation_failures", "Colibri2 requests that failed.",
                      stats.bridge_allocation_failures)
        for direction, source in (("sent", stats.jingle_out), ("received", stats.jingle_in)):
            for action, count in sorted(source.items()):
                name = f"jingle_{action.replace('-', '_').lower()}_{direction}"
                yield counter(name, f"Jingle {action} IQs {direction}.", count)

        yield gauge("conferences", "Current conferences (health-check rooms excluded).",
                    len(snap.conferences))
        yield gauge("conferences_with_visitors", "Current conferences with visitors.", 0)
        yield gauge("largest_conference", "Members in the largest current conference.", snap.largest)
        yield gauge("participants_current", "Members of current conferences.", snap.participants)
        yield gauge("visitors_current", "Current visitors.", 0)
        yield gauge("participants_pairs", "Sum over conferences of members squared.", snap.pairs)
        yield gauge("conferences_seconds", "Accumulated duration of ended conferences, seconds.",
                    stats.conference_seconds)
        yield gauge("bridge_selector_bridge_count", "Bridges in the brewery.", len(snap.bridges))
        yield gauge("bridge_selector_bridge_count_operational", "Operational bridges.", snap.operational)
        yield gauge("bridge_selector_bridge_count_in_shutdown", "Bridges shutting down.", snap.in_shutdown)
        yield gauge("bridge_selector_bridge_version_count", "Distinct bridge versions.", snap.versions)
        endpoints = GaugeMetricFamily(PREFIX + "bridge_endpoints", "Endpoints this focus has on a bridge.",
                                      labels=["jvb"])
        for bridge in snap.bridges:
            endpoints.add_metric([bridge.nickname], bridge.endpoints)
        yield endpoints
        failing_ice = GaugeMetricFamily(PREFIX + "bridge_failing_ice",
                                        "Whether the bridge is marked as failing ICE.", labels=["jvb"])
        now = trio.current_time()
        for bridge in snap.bridges:
            failing_ice.add_metric([bridge.nickname], 1 if bridge.failing_ice(now) else 0)
        yield failing_ice
        redistributor = app.load_redistributor
        yield counter("load_redistributor_endpoints_moved", "Endpoints moved by load redistribution.",
                      redistributor.total_moved if redistributor is not None else 0)
        yield from gateway_metrics(app)
        yield gauge("threads", "Threads in the process.", threading.active_count())
        if self.health is not None:
            yield gauge("healthy", "Whether the focus's own health check passes.",
                        1 if self.health.healthy else 0)
        yield InfoMetricFamily(PREFIX + "version", "The focus's version.",
                               value={"version": __version__, "implementation": "jicofo-trio",
                                      "python": platform.python_version()})


def metrics_registry(app: FocusApp, health: HealthChecker | None,
                     bridge_events: BridgeEventCounts) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FocusCollector(app, health, bridge_events))
    return registry


def metrics_json(registry: CollectorRegistry) -> dict[str, Any]:
    """The JSON form of /metrics: sample name (with labels, when any) → value."""
    body: dict[str, Any] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.labels:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                body[f"{sample.name}{{{labels}}}"] = sample.value
            else:
                body[sample.name] = sample.value
    return body
