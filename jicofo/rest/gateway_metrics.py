"""The Jibri and Jigasi parts of `/stats` and `/metrics`, under upstream's names (docs/jicofo.md
§4, §5), read from the live state at request time. Detector sections and gauges exist only for
the breweries that are configured, as upstream; the `jibri` block of /stats is always there
(with nothing configured, nothing is active and nothing failed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from jicofo.jibri.session import SessionKind

if TYPE_CHECKING:
    from jicofo.app import FocusApp

PREFIX = "jitsi_jicofo_"


def _active(app: FocusApp) -> dict[SessionKind, int]:
    counts = dict.fromkeys(SessionKind, 0)
    for conference in list(app.focus.conferences.values()):
        if conference.jibri is not None:
            for session in conference.jibri.sessions():
                if session.active:
                    counts[session.kind] += 1
    return counts


def gateway_stats_json(app: FocusApp) -> dict[str, Any]:
    active = _active(app)
    jibri = app.jibri.services if app.jibri is not None else None
    failures = jibri.stats.failures if jibri is not None else {}
    body: dict[str, Any] = {
        "jibri": {
            "total_sip_call_failures": failures.get(SessionKind.SIP_CALL, 0),
            "total_live_streaming_failures": failures.get(SessionKind.LIVE_STREAMING, 0),
            "total_recording_failures": failures.get(SessionKind.RECORDING, 0),
            "live_streaming_active": active[SessionKind.LIVE_STREAMING],
            "recording_active": active[SessionKind.RECORDING],
            "sip_call_active": active[SessionKind.SIP_CALL],
        },
    }
    if jibri is not None and jibri.recorders is not None:
        body["jibri_detector"] = {"count": jibri.recorders.count(),
                                  "available": jibri.recorders.available_count()}
    if jibri is not None and jibri.sip is not None:
        body["sip_jibri_detector"] = {"count": jibri.sip.count(), "available": jibri.sip.available_count()}
    if app.jigasi is not None:
        detector = app.jigasi.detector
        body["jigasi_detector"] = {
            "sip_count": detector.sip_count(),
            "sip_in_graceful_shutdown_count": detector.sip_in_graceful_shutdown_count(),
            "transcriber_count": detector.transcriber_count(),
        }
        body["jigasi"] = app.jigasi.stats.to_json()
    return body


def gateway_debug_json(app: FocusApp) -> dict[str, Any]:
    """`/debug`: each configured detector's instances, as upstream's debug state."""
    body: dict[str, Any] = {}
    jibri = app.jibri.services if app.jibri is not None else None
    if jibri is not None and jibri.recorders is not None:
        body["jibri_detector"] = jibri.recorders.to_json()
    if jibri is not None and jibri.sip is not None:
        body["sip_jibri_detector"] = jibri.sip.to_json()
    if app.jigasi is not None:
        body["jigasi_detector"] = app.jigasi.detector.to_json()
    return body


def gateway_metrics(app: FocusApp) -> Iterator[Metric]:
    def counter(name: str, doc: str, value: float) -> Metric:
        family = CounterMetricFamily(PREFIX + name, doc)
        family.add_metric([], value)
        return family

    def gauge(name: str, doc: str, value: float) -> Metric:
        return GaugeMetricFamily(PREFIX + name, doc, value=value)

    active = _active(app)
    yield gauge("jibri_recording_active", "Active recordings.", active[SessionKind.RECORDING])
    yield gauge("jibri_live_streaming_active", "Active live streams.", active[SessionKind.LIVE_STREAMING])
    yield gauge("jibri_sip_active", "Active SIP calls through Jibri.", active[SessionKind.SIP_CALL])
    jibri = app.jibri.services if app.jibri is not None else None
    if jibri is not None:
        failures = jibri.stats.failures
        yield counter("jibri_recording_failures", "Recording sessions that failed.",
                      failures.get(SessionKind.RECORDING, 0))
        yield counter("jibri_live_streaming_failures", "Live streaming sessions that failed.",
                      failures.get(SessionKind.LIVE_STREAMING, 0))
        yield counter("jibri_sip_failures", "SIP sessions through Jibri that failed.",
                      failures.get(SessionKind.SIP_CALL, 0))
        yield counter("jibri_no_instance_failures", "Jibri requests refused for want of an instance.",
                      jibri.stats.no_instance_failures)
        if jibri.recorders is not None:
            yield gauge("jibri_instances", "Jibri instances in the brewery.", jibri.recorders.count())
            yield gauge("jibri_instances_available", "Jibri instances available (healthy and idle).",
                        jibri.recorders.available_count())
        if jibri.sip is not None:
            yield gauge("sip_jibri_instances", "SIP Jibri instances in the brewery.", jibri.sip.count())
            yield gauge("sip_jibri_instances_available", "SIP Jibri instances available.",
                        jibri.sip.available_count())
    if app.jigasi is not None:
        detector, stats = app.jigasi.detector, app.jigasi.stats
        yield gauge("jigasi_sip_count", "Jigasi instances that support SIP.", detector.sip_count())
        yield gauge("jigasi_sip_in_graceful_shutdown_count",
                    "Jigasi instances that support SIP and are in graceful shutdown.",
                    detector.sip_in_graceful_shutdown_count())
        yield gauge("jigasi_transcriber_count", "Jigasi instances that support transcription.",
                    detector.transcriber_count())
        for name, doc, value in (
            ("rejected_requests", "Dial requests rejected (not authorized, bad request).",
             stats.rejected_requests),
            ("accepted_requests", "Dial requests accepted.", stats.accepted_requests),
            ("retries", "Dial requests retried with another Jigasi.", stats.retries),
            ("instance_errors", "Errors answered by Jigasi instances.", stats.instance_errors),
            ("instance_timeouts", "Dial requests a Jigasi did not answer in time.", stats.instance_timeouts),
        ):
            yield counter(f"jigasi_iq_handler_{name}", doc, value)
