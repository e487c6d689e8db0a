"""The simulated bridge's own reading of a Colibri2 `<conference-modify>` (docs/jvb.md), written
apart from the focus's Colibri2 code (jicofo/xmlns/colibri2.py) so that the simulator does not
accept what the focus sends merely because the focus's own parser does.

`read_request` turns the element into small frozen objects the engine works on, or raises
RequestError (answered bad-request) naming the element and attribute at fault, never its value.
What a bridge has no use for is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import children, find_child, qn

NS_C2 = "jitsi:colibri2"
NS_ICE = "urn:xmpp:jingle:transports:ice-udp:1"
NS_DTLS_FP = "urn:xmpp:jingle:apps:dtls:0"
NS_WS = "http://jitsi.org/protocol/colibri"
NS_SSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"
NS_RTP = "urn:xmpp:jingle:apps:rtp:1"
NS_HDREXT = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"

CONFERENCE_MODIFY_TAG = qn(NS_C2, "conference-modify")
SOURCE_NAMES = "source-names"
MEDIA_TYPES = ("audio", "video")
SCTP_ROLES = ("client", "server")
CONNECT_TYPES = ("transcriber", "translator", "recorder")
MAX_CHILDREN = 4096  # of one kind in one element; far above a real request


class RequestError(ValueError):
    """A conference-modify the bridge cannot read."""


def _local(el: Element) -> str:
    return el.tag.rpartition("}")[2]


def _list(el: Element, ns: str, name: str) -> list[Element]:
    found = children(el, ns, name)
    if len(found) > MAX_CHILDREN:
        raise RequestError(f"too many <{name}> in <{_local(el)}>")
    return found


def _single(el: Element, ns: str, name: str) -> Element | None:
    found = children(el, ns, name)
    if len(found) > 1:
        raise RequestError(f"<{_local(el)}> has more than one <{name}>")
    return found[0] if found else None


def _flag(el: Element, name: str) -> bool | None:
    raw = el.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise RequestError(f"'{name}' of <{_local(el)}> is not a boolean")


def _on(el: Element, name: str) -> bool:
    return _flag(el, name) is True


def _number(el: Element, name: str, *, lo: int = 0, hi: int = 0xFFFF_FFFF) -> int | None:
    raw = el.get(name)
    if raw is None:
        return None
    text = raw.strip()
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 10:
        raise RequestError(f"'{name}' of <{_local(el)}> is not a number")
    value = -int(digits) if negative else int(digits)
    if not lo <= value <= hi:
        raise RequestError(f"'{name}' of <{_local(el)}> is out of range")
    return value


def _text(el: Element, name: str) -> str:
    value = el.get(name)
    if not value:
        raise RequestError(f"<{_local(el)}> lacks '{name}'")
    return value


# ---------------------------------------------------------------------------------------------
# The parts


@dataclass(frozen=True, slots=True)
class PeerCandidate:
    component: int
    foundation: str
    generation: int
    ip: str
    port: int
    priority: int
    protocol: str
    type: str


@dataclass(frozen=True, slots=True)
class PeerIce:
    """The peer's ICE-UDP transport (a client's, or the other bridge's for a relay)."""

    ufrag: str | None = None
    pwd: str | None = None
    fingerprint_setups: tuple[str | None, ...] = ()
    candidates: tuple[PeerCandidate, ...] = ()
    web_sockets: tuple[str, ...] = ()
    web_socket_active: bool = False
    rtcp_mux: bool = False
    ice_generation: int | None = None


@dataclass(frozen=True, slots=True)
class Sctp:
    port: int | None = None
    role: str | None = None


@dataclass(frozen=True, slots=True)
class TransportRequest:
    ice: PeerIce | None = None
    sctp: Sctp | None = None
    ice_controlling: bool = False
    use_unique_port: bool = False
    ice_restart: bool = False


@dataclass(frozen=True, slots=True)
class SourceGroup:
    semantics: str
    ssrcs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class NamedSource:
    """One `<media-source type id>`: its SSRCs (with their names) and groups."""

    type: str
    id: str
    ssrcs: tuple[int, ...] = ()
    groups: tuple[SourceGroup, ...] = ()


@dataclass(frozen=True, slots=True)
class EndpointRequest:
    id: str
    create: bool = False
    expire: bool = False
    stats_id: str | None = None
    muc_role: str | None = None
    diarize: bool = False
    medias: tuple[str, ...] = ()  # the media types described
    transport: TransportRequest | None = None
    sources: tuple[NamedSource, ...] | None = None  # None: not in the request; (): cleared
    force_mute: tuple[bool, bool] | None = None  # (audio, video)
    capabilities: tuple[str, ...] = ()
    initial_last_n: int | None = None

    @property
    def visitor(self) -> bool:
        return self.muc_role == "visitor"

    @property
    def changes_state(self) -> bool:
        """Creates, or sets media, transport or sources: more than an expire / force-mute."""
        return self.create or bool(self.medias) or self.transport is not None or self.sources is not None


@dataclass(frozen=True, slots=True)
class RelayRequest:
    id: str
    create: bool = False
    expire: bool = False
    mesh_id: str | None = None
    medias: tuple[str, ...] = ()
    transport: TransportRequest | None = None
    endpoints: tuple[EndpointRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    url: str | None
    type: str | None
    protocol: str | None
    audio: bool
    video: bool
    id: str | None
    create: bool
    expire: bool

    @property
    def key(self) -> str:
        return self.id or self.url or ""


@dataclass(frozen=True, slots=True)
class ConferenceRequest:
    meeting_id: str
    name: str | None = None
    create: bool = False
    expire: bool = False
    rtcstats_enabled: bool | None = None
    endpoints: tuple[EndpointRequest, ...] = ()
    relays: tuple[RelayRequest, ...] = ()
    connects: tuple[ConnectRequest, ...] = ()


# ---------------------------------------------------------------------------------------------
# Reading


def _ice(el: Element) -> PeerIce:
    urls = []
    active = False
    for ws in _list(el, NS_WS, "web-socket"):
        if _on(ws, "active"):
            active = True
        url = ws.get("url")
        if url:
            urls.append(url)
        elif not active:
            raise RequestError("<web-socket> has neither a url nor active='true'")
    candidates = []
    for c in _list(el, NS_ICE, "candidate"):
        candidates.append(PeerCandidate(
            component=_number(c, "component", lo=1, hi=256) or 1, foundation=_text(c, "foundation"),
            generation=_number(c, "generation") or 0, ip=_text(c, "ip"),
            port=_number(c, "port", hi=65535) or 0, priority=_number(c, "priority") or 0,
            protocol=_text(c, "protocol"), type=_text(c, "type"),
        ))
    fingerprints = _list(el, NS_DTLS_FP, "fingerprint")
    for fp in fingerprints:
        if not (fp.text or "").strip() or not fp.get("hash"):
            raise RequestError("<fingerprint> without a hash or a value")
    return PeerIce(
        ufrag=el.get("ufrag") or None, pwd=el.get("pwd") or None,
        fingerprint_setups=tuple(fp.get("setup") for fp in fingerprints),
        candidates=tuple(candidates), web_sockets=tuple(urls), web_socket_active=active,
        rtcp_mux=find_child(el, NS_ICE, "rtcp-mux") is not None,
        ice_generation=_number(el, "ice-generation"),
    )


def _transport(el: Element) -> TransportRequest:
    ice_el = _single(el, NS_ICE, "transport")
    sctp_el = _single(el, NS_C2, "sctp")
    sctp = None
    if sctp_el is not None:
        role = sctp_el.get("role")
        if role is not None and role not in SCTP_ROLES:
            raise RequestError("unknown SCTP role in <sctp>")
        sctp = Sctp(_number(sctp_el, "port", hi=65535), role)
    return TransportRequest(
        ice=_ice(ice_el) if ice_el is not None else None, sctp=sctp,
        ice_controlling=_on(el, "ice-controlling"), use_unique_port=_on(el, "use-unique-port"),
        ice_restart=_on(el, "ice-restart"),
    )


def _medias(el: Element) -> tuple[str, ...]:
    """The media types described; each payload type needs an id 0..127 and a name, each header
    extension an id 1..255 and a URI (what the bridge turns into its codec and extension maps)."""
    types = []
    for media in _list(el, NS_C2, "media"):
        media_type = media.get("type")
        if media_type not in MEDIA_TYPES:
            raise RequestError("<media> of an unknown type")
        for pt in _list(media, NS_RTP, "payload-type"):
            if _number(pt, "id", hi=127) is None or not pt.get("name"):
                raise RequestError("<payload-type> without an id or a name")
        for ext in _list(media, NS_HDREXT, "rtp-hdrext"):
            if _number(ext, "id", lo=1, hi=255) is None or not ext.get("uri"):
                raise RequestError("<rtp-hdrext> without an id or a uri")
        types.append(media_type)
    return tuple(types)


def _sources(el: Element) -> tuple[NamedSource, ...]:
    named = []
    for ms in _list(el, NS_C2, "media-source"):
        media_type = ms.get("type")
        if media_type not in MEDIA_TYPES:
            raise RequestError("<media-source> of an unknown type")
        named.append(NamedSource(
            type=media_type, id=_text(ms, "id"), ssrcs=_ssrcs(ms),
            groups=tuple(SourceGroup(_text(g, "semantics"), _ssrcs(g))
                         for g in _list(ms, NS_SSMA, "ssrc-group")),
        ))
    if len({n.id for n in named}) != len(named):
        raise RequestError("two <media-source> with one id")
    return tuple(named)


def _ssrcs(el: Element) -> tuple[int, ...]:
    """The `ssrc` of each SSMA `<source>` child; every one must have it."""
    found = []
    for source in _list(el, NS_SSMA, "source"):
        ssrc = _number(source, "ssrc")
        if ssrc is None:
            raise RequestError("<source> lacks 'ssrc'")
        found.append(ssrc)
    return tuple(found)


def _endpoint(el: Element) -> EndpointRequest:
    endpoint_id = _text(el, "id")
    transport = _single(el, NS_C2, "transport")
    sources = _single(el, NS_C2, "sources")
    mute = _single(el, NS_C2, "force-mute")
    last_n = _single(el, NS_C2, "initial-last-n")
    medias = _medias(el)
    if len(set(medias)) != len(medias):
        raise RequestError(f"endpoint {endpoint_id[:64]!r}: two <media> of one type")
    capabilities = tuple(_text(c, "name") for c in _list(el, NS_C2, "capability"))
    initial_last_n = None
    if last_n is not None:
        initial_last_n = _number(last_n, "value", lo=-1, hi=2**31 - 1)
        if initial_last_n is None:
            raise RequestError("<initial-last-n> lacks 'value'")
    return EndpointRequest(
        id=endpoint_id, create=_on(el, "create"), expire=_on(el, "expire"),
        stats_id=el.get("stats-id") or None, muc_role=el.get("muc-role") or None,
        diarize=_on(el, "diarize"), medias=medias,
        transport=_transport(transport) if transport is not None else None,
        sources=_sources(sources) if sources is not None else None,
        force_mute=(_on(mute, "audio"), _on(mute, "video")) if mute is not None else None,
        capabilities=capabilities, initial_last_n=initial_last_n,
    )


def _relay(el: Element) -> RelayRequest:
    relay_id = _text(el, "id")
    transport = _single(el, NS_C2, "transport")
    holder = _single(el, NS_C2, "endpoints")
    endpoints = tuple(_endpoint(e) for e in _list(holder, NS_C2, "endpoint")) if holder is not None else ()
    if len({e.id for e in endpoints}) != len(endpoints):
        raise RequestError(f"relay {relay_id[:64]!r}: two <endpoint> with one id")
    return RelayRequest(
        id=relay_id, create=_on(el, "create"), expire=_on(el, "expire"), mesh_id=el.get("mesh-id"),
        medias=_medias(el), transport=_transport(transport) if transport is not None else None,
        endpoints=endpoints,
    )


def _connect(el: Element) -> ConnectRequest:
    connect_type = el.get("type")
    if connect_type is not None and connect_type not in CONNECT_TYPES:
        raise RequestError("<connect> of an unknown type")
    url, connect_id = el.get("url") or None, el.get("id") or None
    if url is None and connect_id is None:
        raise RequestError("<connect> has neither a url nor an id")
    return ConnectRequest(
        url=url, type=connect_type, protocol=el.get("protocol"), audio=_on(el, "audio"),
        video=_on(el, "video"), id=connect_id, create=_on(el, "create"), expire=_on(el, "expire"),
    )


def read_request(el: Element) -> ConferenceRequest:
    """Read a `<conference-modify>`. Raises RequestError."""
    if el.tag != CONFERENCE_MODIFY_TAG:
        raise RequestError("not a colibri2 conference-modify")
    meeting_id = _text(el, "meeting-id")
    connects = _single(el, NS_C2, "connects")
    return ConferenceRequest(
        meeting_id=meeting_id, name=el.get("name") or None, create=_on(el, "create"),
        expire=_on(el, "expire"), rtcstats_enabled=_flag(el, "rtcstats-enabled"),
        endpoints=tuple(_endpoint(e) for e in _list(el, NS_C2, "endpoint")),
        relays=tuple(_relay(r) for r in _list(el, NS_C2, "relay")),
        connects=(tuple(_connect(c) for c in _list(connects, NS_C2, "connect"))
                  if connects is not None else ()),
    )
