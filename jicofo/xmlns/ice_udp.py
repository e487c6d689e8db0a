"""The ICE-UDP transport (`urn:xmpp:jingle:transports:ice-udp:1`) with its DTLS fingerprints
(`urn:xmpp:jingle:apps:dtls:0`), candidates, the bridge's web-socket URLs and the data channel's
sctpmap. A Jingle content and a Colibri2 transport both carry it.

`from_element` is strict: anything malformed raises ValueError with a message fit for the text of
a bad-request answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import children, element, find_child, qn

from .attributes import attrs
from .attributes import bool_attr as _bool
from .attributes import expect as _expect
from .attributes import int_attr as _int
from .attributes import required as _required
from .attributes import required_int as _required_int
from .namespaces import NS_COLIBRI

NS_ICE_UDP = "urn:xmpp:jingle:transports:ice-udp:1"
NS_DTLS = "urn:xmpp:jingle:apps:dtls:0"
NS_SCTP = "urn:xmpp:jingle:transports:dtls-sctp:1"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """`<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash setup cryptex?>HEX</fingerprint>`."""

    hash: str
    value: str
    setup: str | None = None
    cryptex: bool | None = None

    TAG = qn(NS_DTLS, "fingerprint")

    @classmethod
    def from_element(cls, el: Element) -> Fingerprint:
        _expect(el, cls.TAG)
        value = (el.text or "").strip()
        if not value:
            raise ValueError("empty DTLS fingerprint")
        return cls(_required(el, "hash"), value, el.get("setup"), _bool(el, "cryptex"))

    def to_element(self) -> Element:
        attributes = attrs(hash=self.hash, setup=self.setup, cryptex=self.cryptex)
        return element(self.TAG, attributes, text=self.value)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An ICE `<candidate>`."""

    component: int
    foundation: str
    generation: int
    id: str
    ip: str
    port: int
    priority: int
    protocol: str
    type: str
    network: int | None = None
    rel_addr: str | None = None
    rel_port: int | None = None
    tcptype: str | None = None

    TAG = qn(NS_ICE_UDP, "candidate")

    @classmethod
    def from_element(cls, el: Element) -> Candidate:
        _expect(el, cls.TAG)
        return cls(
            component=_required_int(el, "component", minimum=1, maximum=256),
            foundation=_required(el, "foundation"),
            generation=_int(el, "generation") or 0,
            id=el.get("id", ""),
            ip=_required(el, "ip"),
            port=_required_int(el, "port", maximum=65535),
            priority=_required_int(el, "priority", maximum=0xFFFF_FFFF),
            protocol=_required(el, "protocol"),
            type=_required(el, "type"),
            network=_int(el, "network"),
            rel_addr=el.get("rel-addr"),
            rel_port=_int(el, "rel-port", maximum=65535),
            tcptype=el.get("tcptype"),
        )

    def to_element(self) -> Element:
        return element(
            self.TAG,
            attrs(
                component=self.component,
                foundation=self.foundation,
                generation=self.generation,
                id=self.id or None,
                network=self.network,
                protocol=self.protocol,
                ip=self.ip,
                port=self.port,
                priority=self.priority,
                type=self.type,
                rel_addr=self.rel_addr,
                rel_port=self.rel_port,
                tcptype=self.tcptype,
            ),
        )


@dataclass(frozen=True, slots=True)
class SctpMap:
    """`<sctpmap xmlns='urn:xmpp:jingle:transports:dtls-sctp:1' number protocol streams>`."""

    number: int
    protocol: str = "webrtc-datachannel"
    streams: int | None = 1024

    TAG = qn(NS_SCTP, "sctpmap")

    @classmethod
    def from_element(cls, el: Element) -> SctpMap:
        _expect(el, cls.TAG)
        return cls(
            _required_int(el, "number", maximum=65535), _required(el, "protocol"), _int(el, "streams")
        )

    def to_element(self) -> Element:
        return element(self.TAG, attrs(number=self.number, protocol=self.protocol, streams=self.streams))


WEB_SOCKET = qn(NS_COLIBRI, "web-socket")
ICE_RTCP_MUX = qn(NS_ICE_UDP, "rtcp-mux")


@dataclass(frozen=True, slots=True)
class IceUdpTransport:
    """`<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag pwd ice-generation?>` with
    DTLS fingerprints, candidates, the bridge's web-socket URLs, rtcp-mux and (data content) the
    sctpmap."""

    ufrag: str | None = None
    pwd: str | None = None
    fingerprints: tuple[Fingerprint, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    web_sockets: tuple[str, ...] = ()
    rtcp_mux: bool = False
    sctpmap: SctpMap | None = None
    ice_generation: int | None = None

    NS = NS_ICE_UDP
    TAG = qn(NS_ICE_UDP, "transport")

    @classmethod
    def from_element(cls, el: Element) -> IceUdpTransport:
        _expect(el, cls.TAG)
        sctpmap = find_child(el, NS_SCTP, "sctpmap")
        return cls(
            ufrag=el.get("ufrag"),
            pwd=el.get("pwd"),
            fingerprints=tuple(Fingerprint.from_element(f) for f in children(el, NS_DTLS, "fingerprint")),
            candidates=tuple(Candidate.from_element(c) for c in children(el, NS_ICE_UDP, "candidate")),
            web_sockets=tuple(_required(w, "url") for w in children(el, NS_COLIBRI, "web-socket")),
            rtcp_mux=find_child(el, NS_ICE_UDP, "rtcp-mux") is not None,
            sctpmap=SctpMap.from_element(sctpmap) if sctpmap is not None else None,
            ice_generation=_int(el, "ice-generation"),
        )

    def to_element(self) -> Element:
        el = element(
            self.TAG, attrs(ufrag=self.ufrag, pwd=self.pwd, ice_generation=self.ice_generation)
        )
        el.extend(f.to_element() for f in self.fingerprints)
        el.extend(c.to_element() for c in self.candidates)
        el.extend(element(WEB_SOCKET, {"url": url}) for url in self.web_sockets)
        if self.rtcp_mux:
            el.append(element(ICE_RTCP_MUX))
        if self.sctpmap is not None:
            el.append(self.sctpmap.to_element())
        return el

