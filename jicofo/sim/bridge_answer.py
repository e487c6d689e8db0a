"""The simulated bridge's own writing of Colibri2 answers and errors and of the `<stats>` in its
brewery presence (docs/jvb.md), apart from the focus's Colibri2 and stats code, so that the
focus's parsers read what another writer wrote: a bug shared by the focus's writer and parser
cannot hide here.

    conference_modified(endpoints=[AnswerEntity("a1", transport=...)], feedback=[...]) -> Element
    bridge_error("item-not-found", "Endpoint not found for ID: a1", "unknown_endpoint", "a1")
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.xml import element, qn

NS_C2 = "jitsi:colibri2"
NS_ICE = "urn:xmpp:jingle:transports:ice-udp:1"
NS_DTLS_FP = "urn:xmpp:jingle:apps:dtls:0"
NS_WS = "http://jitsi.org/protocol/colibri"
NS_SSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"
SCTP_PORT = 5000

# The colibri2 error reasons a bridge uses (docs/jvb.md §2.6).
CONFERENCE_NOT_FOUND = "conference_not_found"
CONFERENCE_ALREADY_EXISTS = "conference_already_exists"
FEATURE_NOT_IMPLEMENTED = "feature_not_implemented"
GRACEFUL_SHUTDOWN = "graceful_shutdown"
UNKNOWN_ENDPOINT = "unknown_endpoint"


@dataclass(frozen=True, slots=True)
class HostCandidate:
    component: int
    foundation: str
    generation: int
    id: str
    ip: str
    port: int
    priority: int
    protocol: str = "udp"
    type: str = "host"
    network: int = 0


@dataclass(frozen=True, slots=True)
class AnswerIce:
    """The bridge's ICE-UDP transport, written in the bridge's order: rtcp-mux, fingerprint,
    web-socket(s), candidates."""

    ufrag: str
    pwd: str
    fingerprint: str  # sha-256, setup actpass
    candidates: tuple[HostCandidate, ...] = ()
    web_sockets: tuple[str, ...] = ()
    ice_generation: int | None = None

    def to_element(self) -> Element:
        attrs = {"ufrag": self.ufrag, "pwd": self.pwd}
        if self.ice_generation is not None:
            attrs["ice-generation"] = str(self.ice_generation)
        el = element(qn(NS_ICE, "transport"), attrs)
        el.append(element(qn(NS_ICE, "rtcp-mux")))
        el.append(element(qn(NS_DTLS_FP, "fingerprint"), {"hash": "sha-256", "setup": "actpass"},
                          text=self.fingerprint))
        el.extend(element(qn(NS_WS, "web-socket"), {"url": url}) for url in self.web_sockets)
        for c in self.candidates:
            el.append(element(qn(NS_ICE, "candidate"), {
                "component": str(c.component), "foundation": c.foundation, "generation": str(c.generation),
                "id": c.id, "network": str(c.network), "protocol": c.protocol, "ip": c.ip,
                "port": str(c.port), "priority": str(c.priority), "type": c.type,
            }))
        return el


@dataclass(frozen=True, slots=True)
class AnswerTransport:
    ice: AnswerIce
    sctp_role: str | None = None  # the bridge's SCTP role; None: no <sctp>

    def to_element(self) -> Element:
        el = element(qn(NS_C2, "transport"), None, self.ice.to_element())
        if self.sctp_role is not None:
            el.append(element(qn(NS_C2, "sctp"), {"port": str(SCTP_PORT), "role": self.sctp_role}))
        return el


@dataclass(frozen=True, slots=True)
class AnswerEntity:
    """One `<endpoint>` or `<relay>` of the answer: its id, and expire or a transport."""

    id: str
    expire: bool = False
    transport: AnswerTransport | None = None

    def to_element(self, kind: str) -> Element:
        attrs = {"id": self.id}
        if self.expire:
            attrs["expire"] = "true"
        el = element(qn(NS_C2, kind), attrs)
        if self.transport is not None:
            el.append(self.transport.to_element())
        return el


@dataclass(frozen=True, slots=True)
class FeedbackSource:
    """One of the bridge's own sources (`jvb-a0`, `jvb-v0`)."""

    media_type: str
    name: str
    ssrc: int


def conference_modified(
    endpoints: Iterable[AnswerEntity] = (),
    relays: Iterable[AnswerEntity] = (),
    feedback: Iterable[FeedbackSource] | None = None,
) -> Element:
    """`<conference-modified>`: an entry per entity of the request, in order, then (on creates) the
    feedback `<sources>`."""
    el = element(qn(NS_C2, "conference-modified"))
    el.extend(e.to_element("endpoint") for e in endpoints)
    el.extend(r.to_element("relay") for r in relays)
    if feedback is not None:
        sources = element(qn(NS_C2, "sources"))
        for f in feedback:
            sources.append(element(qn(NS_C2, "media-source"), {"type": f.media_type, "id": f.name},
                                   element(qn(NS_SSMA, "source"), {"ssrc": str(f.ssrc), "name": f.name})))
        el.append(sources)
    return el


class BridgeError(StanzaError):
    """An error answer with the colibri2 `<error reason>` and, for unknown_endpoint, the
    `<endpoint id>` after it."""

    def __init__(self, condition: str, text: str | None, reason: str | None,
                 endpoint_id: str | None = None) -> None:
        app = element(qn(NS_C2, "error"), {"reason": reason}) if reason else None
        super().__init__(condition, text, app_element=app)
        self.reason = reason
        self.endpoint_id = endpoint_id

    def to_element(self, stanza_ns: str = "jabber:client") -> Element:
        err = super().to_element(stanza_ns)
        if self.endpoint_id is not None:
            err.append(element(qn(NS_C2, "endpoint"), {"id": self.endpoint_id}))
        return err


def bridge_error(condition: str, text: str | None, reason: str | None = None,
                 endpoint_id: str | None = None) -> BridgeError:
    return BridgeError(condition, text, reason, endpoint_id)


# ---------------------------------------------------------------------------------------------
# Stats in brewery presence


NS_STATS = "http://jitsi.org/protocol/colibri"


def stats_element(items: Iterable[tuple[str, object]]) -> Element:
    """`<stats xmlns='http://jitsi.org/protocol/colibri'>` with a `<stat name value>` per item,
    values written as the Java bridge writes them (`true`, `0.0`, `1.0E-4`, `42`)."""
    return element(qn(NS_STATS, "stats"), None,
                   *(element(qn(NS_STATS, "stat"), {"name": name, "value": stat_text(value)})
                     for name, value in items))


def stat_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _java_double_text(value)
    return str(value)


def _java_double_text(x: float) -> str:
    """Double.toString: plain decimal with at least one fraction digit for 1e-3 <= |x| < 1e7,
    else computerized scientific notation `d.dddE<n>`; the shortest digits that read back."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    sign = "-" if str(x).startswith("-") else ""
    magnitude = abs(x)
    if magnitude == 0.0:
        return f"{sign}0.0"
    # Shortest round-trip digits and the decimal exponent of the first one.
    mantissa, _, exp_text = f"{magnitude:.17e}".partition("e")
    for precision in range(1, 18):
        candidate = f"{magnitude:.{precision - 1}e}"
        if float(candidate) == magnitude:
            mantissa, _, exp_text = candidate.partition("e")
            break
    digits = mantissa.replace(".", "")
    exponent = int(exp_text)
    if 1e-3 <= magnitude < 1e7:
        if exponent >= 0:
            whole, fraction = digits[: exponent + 1].ljust(exponent + 1, "0"), digits[exponent + 1:]
        else:
            whole, fraction = "0", "0" * (-exponent - 1) + digits
        return f"{sign}{whole}.{fraction.rstrip('0') or '0'}"
    fraction = digits[1:].rstrip("0") or "0"
    return f"{sign}{digits[0]}.{fraction}E{exponent}"
