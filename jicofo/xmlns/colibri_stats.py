"""A bridge's statistics: `<stats xmlns='http://jitsi.org/protocol/colibri'>` with one
`<stat name value/>` per key, as a videobridge puts them in its brewery presence
(docs/jvb.md §1.4), and the JSON of its `/colibri/stats`.

`BridgeStats` has one field per key the current bridge publishes; a field is None when the key is
absent. Reading is tolerant, as jicofo is: unknown keys are kept in `extra`, a number that does
not parse (or is NaN/infinite) reads as absent, and booleans follow Java's `parseBoolean` (only
`true`, in any case, is true). Writing follows Java's `toString`: `true`/`false`, doubles as
`0.0`, `0.1234`, `1.0E-4`, integers plain.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import children, element, qn

NS_COLIBRI = "http://jitsi.org/protocol/colibri"
STATS = qn(NS_COLIBRI, "stats")
STAT = qn(NS_COLIBRI, "stat")

#: The bridge's default `stats-filter.whitelist`: what a bridge publishes when filtering is on.
STATS_FILTER_WHITELIST = frozenset({
    "average_participant_stress", "colibri2", "current_timestamp", "drain", "graceful_shutdown",
    "healthy", "region", "relay_id", "release", "shutting_down", "stress_level", "version",
})

#: The keys jicofo reads (`Bridge.setStats`).
FOCUS_KEYS = ("stress_level", "average_participant_stress", "graceful_shutdown", "shutting_down",
              "drain", "version", "release", "region", "relay_id", "healthy")


@dataclass(frozen=True, slots=True)
class BridgeStats:
    # --- state (what jicofo reads, and the rest of the whitelist)
    stress_level: float | None = None
    average_participant_stress: float | None = None
    graceful_shutdown: bool | None = None
    shutting_down: bool | None = None
    drain: bool | None = None
    healthy: bool | None = None
    version: str | None = None
    release: str | None = None
    region: str | None = None
    relay_id: str | None = None
    current_timestamp: str | None = None
    colibri2: bool | None = None
    # --- population
    conferences: int | None = None
    octo_conferences: int | None = None
    inactive_conferences: int | None = None
    p2p_conferences: int | None = None
    largest_conference: int | None = None
    endpoints: int | None = None
    participants: int | None = None
    local_endpoints: int | None = None
    local_active_endpoints: int | None = None
    receive_only_endpoints: int | None = None
    inactive_endpoints: int | None = None
    octo_endpoints: int | None = None
    endpoints_sending_audio: int | None = None
    endpoints_sending_video: int | None = None
    endpoints_with_suspended_sources: int | None = None
    visitors: int | None = None
    endpoints_disconnected: int | None = None
    endpoints_reconnected: int | None = None
    endpoints_with_spurious_remb: int | None = None
    # --- loss and traffic
    incoming_loss: float | None = None
    outgoing_loss: float | None = None
    overall_loss: float | None = None
    endpoints_with_high_outgoing_loss: int | None = None
    tcc_unmatched_feedback: int | None = None
    bit_rate_download: float | None = None
    bit_rate_upload: float | None = None
    packet_rate_download: int | None = None
    packet_rate_upload: int | None = None
    rtt_aggregate: float | None = None
    num_eps_oversending: int | None = None
    total_bytes_received: int | None = None
    total_bytes_sent: int | None = None
    total_packets_received: int | None = None
    total_packets_sent: int | None = None
    total_bytes_received_octo: int | None = None
    total_bytes_sent_octo: int | None = None
    total_packets_received_octo: int | None = None
    total_packets_sent_octo: int | None = None
    octo_receive_bitrate: float | None = None
    octo_receive_packet_rate: int | None = None
    octo_send_bitrate: float | None = None
    octo_send_packet_rate: int | None = None
    # --- totals
    total_conferences_created: int | None = None
    total_conferences_completed: int | None = None
    total_conference_seconds: int | None = None
    total_participants: int | None = None
    total_visitors: int | None = None
    total_relays: int | None = None
    num_eps_no_msg_transport_after_delay: int | None = None
    num_relays_no_msg_transport_after_delay: int | None = None
    total_keyframes_received: int | None = None
    total_layering_changes_received: int | None = None
    total_video_stream_milliseconds_received: int | None = None
    total_data_channel_messages_received: int | None = None
    total_data_channel_messages_sent: int | None = None
    total_colibri_web_socket_messages_received: int | None = None
    total_colibri_web_socket_messages_sent: int | None = None
    total_dominant_speaker_changes: int | None = None
    preemptive_kfr_sent: int | None = None
    preemptive_kfr_suppressed: int | None = None
    total_ice_failed: int | None = None
    total_ice_succeeded: int | None = None
    total_ice_succeeded_relayed: int | None = None
    endpoints_ice_failed: int | None = None
    dtls_failed_endpoints: int | None = None
    relays_ice_failed: int | None = None
    dtls_failed_relays: int | None = None
    # --- process
    threads: int | None = None
    muc_clients_configured: int | None = None
    muc_clients_connected: int | None = None
    mucs_configured: int | None = None
    mucs_joined: int | None = None
    # --- keys this class does not know, as received (name -> raw value)
    extra: Mapping[str, str] = field(default_factory=dict)

    # ----- reading -------------------------------------------------------------------------------

    @classmethod
    def from_element(cls, el: Element) -> BridgeStats:
        """Read a `<stats>` element (never raises for bad content; the tag is not checked, so a
        caller may pass any element holding `<stat>` children)."""
        return cls.from_mapping(
            (stat.get("name"), stat.get("value")) for stat in children(el, NS_COLIBRI, "stat")
        )

    @classmethod
    def from_presence(cls, presence: Element) -> BridgeStats | None:
        """The stats of a brewery presence, or None when it carries none (jicofo ignores such a
        presence: the bridge does not exist for it yet)."""
        stats = presence.find(STATS)
        return cls.from_element(stats) if stats is not None else None

    @classmethod
    def from_mapping(cls, items: Iterable[tuple[str | None, Any]] | Mapping[str, Any]) -> BridgeStats:
        """From name/value pairs (strings as in presence, or JSON values)."""
        pairs = items.items() if isinstance(items, Mapping) else items
        values: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for name, raw in pairs:
            if not name or raw is None:
                continue
            kind = _KINDS.get(name)
            if kind is None:
                extra[name] = _to_text(raw)
                continue
            value = _parse(kind, raw)
            if value is not None:
                values[name] = value
        return cls(**values, extra=extra)

    # ----- writing -------------------------------------------------------------------------------

    def items(self, whitelist: Iterable[str] | None = None) -> list[tuple[str, Any]]:
        """The present keys with their typed values, in field order, then the extra keys."""
        allowed = frozenset(whitelist) if whitelist is not None else None
        out: list[tuple[str, Any]] = []
        for name in _KINDS:
            value = getattr(self, name)
            if value is not None and (allowed is None or name in allowed):
                out.append((name, value))
        out.extend((k, v) for k, v in self.extra.items() if allowed is None or k in allowed)
        return out

    def to_element(self, whitelist: Iterable[str] | None = None) -> Element:
        """The presence extension; with a whitelist only those keys (the bridge's stats-filter)."""
        return element(
            STATS,
            None,
            *(element(STAT, {"name": name, "value": _to_text(value)})
              for name, value in self.items(whitelist)),
        )

    def to_json(self, whitelist: Iterable[str] | None = None) -> dict[str, Any]:
        """The shape of the bridge's `GET /colibri/stats`: one flat object of JSON numbers,
        booleans and strings."""
        return dict(self.items(whitelist))


_KINDS: dict[str, str] = {
    f.name: str(f.type).split(" ", 1)[0] for f in fields(BridgeStats) if f.name != "extra"
}


def _parse(kind: str, raw: Any) -> Any:
    if kind == "str":
        text = _to_text(raw)
        return text or None
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        return str(raw).strip().lower() == "true"
    try:
        number = float(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        return None
    if number is None or not math.isfinite(number):
        return None
    if kind == "int":
        if isinstance(raw, int):
            return raw
        text = str(raw).strip()
        try:
            return int(text)
        except ValueError:
            return int(number) if number.is_integer() else None
    return number


def java_double(value: float) -> str:
    """Java's `Double.toString`: `0.0`, `0.12`, `12345.6`, `1.0E-4`, `1.2345678E7`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(float(value))
        return text if "." in text else f"{text}.0"
    sign, digits, exponent = Decimal(repr(float(value))).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) - 1 + exponent
    mantissa = f"{text[0]}.{text[1:] or '0'}"
    return f"{'-' if sign else ''}{mantissa}E{power}"


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    return str(value)
