"""Jingle as a lib-jitsi-meet client reads and writes it: the simulated participant's own small
reader and writer, written from the protocol notes (docs/client.md §3), not shared with the focus.

The focus's Jingle code (jicofo/xmlns) must not be used here: the simulator judges the focus's
output, so it needs its own reading of the wire. Only what a client needs is modelled: the action,
sid, initiator/responder, contents with an RTP description (payload types, header extensions,
sources, ssrc-groups, rtcp-mux), an ICE-UDP transport (ufrag/pwd, DTLS fingerprints, candidates,
web-socket, sctpmap, ice-generation), the BUNDLE group and the Jitsi extensions (bridge-session,
json-message, startmuted, ice-state, reason, initial-last-n).

`read_jingle` raises JingleReadError for what a client could not turn into a session description
(no sid, a non-numeric SSRC or port, ...). Its messages name the element and attribute, never the
offending value, so they may go into an error reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import children, element, find_child, qn

NS_JINGLE = "urn:xmpp:jingle:1"
NS_JINGLE_ERRORS = "urn:xmpp:jingle:errors:1"
NS_RTP = "urn:xmpp:jingle:apps:rtp:1"
NS_RTCP_FB = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"
NS_HDREXT = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
NS_SSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"
NS_GROUPING = "urn:xmpp:jingle:apps:grouping:0"
NS_ICE = "urn:xmpp:jingle:transports:ice-udp:1"
NS_DTLS_FP = "urn:xmpp:jingle:apps:dtls:0"
NS_SCTPMAP = "urn:xmpp:jingle:transports:dtls-sctp:1"
NS_WS = "http://jitsi.org/protocol/colibri"
NS_JM = "http://jitsi.org/jitmeet"
NS_FOCUS_EXT = "http://jitsi.org/protocol/focus"
NS_STARTMUTED = "http://jitsi.org/jitmeet/start-muted"
NS_LAST_N = "jitsi:colibri2"

JINGLE_TAG = qn(NS_JINGLE, "jingle")

# Actions, as strings: the client dispatches on the attribute's text.
SESSION_INITIATE = "session-initiate"
SESSION_ACCEPT = "session-accept"
SESSION_INFO = "session-info"
SESSION_TERMINATE = "session-terminate"
SOURCE_ADD = "source-add"
SOURCE_REMOVE = "source-remove"
TRANSPORT_INFO = "transport-info"
TRANSPORT_REPLACE = "transport-replace"
TRANSPORT_ACCEPT = "transport-accept"
LEGACY_ACTIONS = {"addsource": SOURCE_ADD, "removesource": SOURCE_REMOVE}
ACTIONS = frozenset({
    "content-accept", "content-add", "content-modify", "content-reject", "content-remove",
    "description-info", "security-info", SESSION_ACCEPT, SESSION_INFO, SESSION_INITIATE,
    SESSION_TERMINATE, TRANSPORT_ACCEPT, TRANSPORT_INFO, "transport-reject", TRANSPORT_REPLACE,
    SOURCE_ADD, SOURCE_REMOVE,
})

# Caps on what one IQ may hold before the client refuses it: far above any real offer.
MAX_CONTENTS = 16
MAX_ITEMS = 4096  # payload types, sources, groups, candidates ... in one element


class JingleReadError(ValueError):
    """A Jingle payload the client cannot read."""


def _int(el: Element, name: str, *, lo: int = 0, hi: int = 0xFFFF_FFFF) -> int | None:
    raw = el.get(name)
    if raw is None:
        return None
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise JingleReadError(f"'{name}' of <{_local(el)}> is not a number")
    value = int(text)
    if not lo <= value <= hi:
        raise JingleReadError(f"'{name}' of <{_local(el)}> is out of range")
    return value


def _need_int(el: Element, name: str, *, lo: int = 0, hi: int = 0xFFFF_FFFF) -> int:
    value = _int(el, name, lo=lo, hi=hi)
    if value is None:
        raise JingleReadError(f"<{_local(el)}> has no '{name}'")
    return value


def _need(el: Element, name: str) -> str:
    value = el.get(name)
    if not value:
        raise JingleReadError(f"<{_local(el)}> has no '{name}'")
    return value


def _flag(el: Element, name: str) -> bool | None:
    raw = el.get(name)
    if raw is None:
        return None
    return raw.strip().lower() in ("true", "1")


def _local(el: Element) -> str:
    return el.tag.rpartition("}")[2]


def _few(el: Element, ns: str, name: str) -> list[Element]:
    found = children(el, ns, name)
    if len(found) > MAX_ITEMS:
        raise JingleReadError(f"too many <{name}> elements")
    return found


def _attrs(pairs: dict[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


# ---------------------------------------------------------------------------------------------
# Transport


@dataclass(frozen=True, slots=True)
class Fingerprint:
    hash: str
    value: str
    setup: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
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


@dataclass(frozen=True, slots=True)
class Transport:
    """An ICE-UDP `<transport>`. `sctp_port`/`sctp_streams` come from `<sctpmap>` (data content)."""

    ufrag: str | None = None
    pwd: str | None = None
    fingerprints: tuple[Fingerprint, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    web_sockets: tuple[str, ...] = ()
    rtcp_mux: bool = False
    sctp_port: int | None = None
    sctp_streams: int | None = None
    ice_generation: int | None = None

    def to_element(self) -> Element:
        el = element(qn(NS_ICE, "transport"),
                     _attrs({"ufrag": self.ufrag, "pwd": self.pwd, "ice-generation": self.ice_generation}))
        for fp in self.fingerprints:
            el.append(element(qn(NS_DTLS_FP, "fingerprint"), _attrs({"hash": fp.hash, "setup": fp.setup}),
                              text=fp.value))
        for c in self.candidates:
            el.append(element(qn(NS_ICE, "candidate"), _attrs({
                "component": c.component, "foundation": c.foundation, "generation": c.generation,
                "id": c.id or None, "ip": c.ip, "network": c.network, "port": c.port,
                "priority": c.priority, "protocol": c.protocol, "type": c.type,
                "rel-addr": c.rel_addr, "rel-port": c.rel_port,
            })))
        for url in self.web_sockets:
            el.append(element(qn(NS_WS, "web-socket"), {"url": url}))
        if self.rtcp_mux:
            el.append(element(qn(NS_ICE, "rtcp-mux")))
        if self.sctp_port is not None:
            el.append(element(qn(NS_SCTPMAP, "sctpmap"), _attrs({
                "number": self.sctp_port, "protocol": "webrtc-datachannel", "streams": self.sctp_streams,
            })))
        return el


def _read_transport(el: Element) -> Transport:
    fingerprints = []
    for fp in _few(el, NS_DTLS_FP, "fingerprint"):
        fingerprints.append(Fingerprint(fp.get("hash", ""), (fp.text or "").strip(), fp.get("setup")))
    candidates = []
    for c in _few(el, NS_ICE, "candidate"):
        candidates.append(Candidate(
            component=_need_int(c, "component", lo=1, hi=256), foundation=_need(c, "foundation"),
            generation=_int(c, "generation") or 0, id=c.get("id", ""), ip=_need(c, "ip"),
            port=_need_int(c, "port", hi=65535), priority=_need_int(c, "priority"),
            protocol=_need(c, "protocol"), type=_need(c, "type"), network=_int(c, "network"),
            rel_addr=c.get("rel-addr"), rel_port=_int(c, "rel-port", hi=65535),
        ))
    sctp = find_child(el, NS_SCTPMAP, "sctpmap")
    return Transport(
        ufrag=el.get("ufrag") or None,
        pwd=el.get("pwd") or None,
        fingerprints=tuple(fingerprints),
        candidates=tuple(candidates),
        web_sockets=tuple(w.get("url", "") for w in _few(el, NS_WS, "web-socket")),
        rtcp_mux=find_child(el, NS_ICE, "rtcp-mux") is not None,
        sctp_port=_need_int(sctp, "number", hi=65535) if sctp is not None else None,
        sctp_streams=_int(sctp, "streams") if sctp is not None else None,
        ice_generation=_int(el, "ice-generation"),
    )


# ---------------------------------------------------------------------------------------------
# RTP description


@dataclass(frozen=True, slots=True)
class PayloadType:
    id: int
    name: str = ""
    clockrate: int | None = None
    channels: int | None = None
    parameters: tuple[tuple[str, str], ...] = ()  # (name, value); RED's unnamed one has name ""
    feedback: tuple[tuple[str, str | None], ...] = ()  # rtcp-fb (type, subtype)

    def parameter(self, name: str) -> str | None:
        return next((v for n, v in self.parameters if n == name), None)

    def to_element(self) -> Element:
        el = element(qn(NS_RTP, "payload-type"), _attrs({
            "id": self.id, "name": self.name or None, "clockrate": self.clockrate, "channels": self.channels,
        }))
        for name, value in self.parameters:
            el.append(element(qn(NS_RTP, "parameter"), _attrs({"name": name or None, "value": value})))
        for fb_type, subtype in self.feedback:
            el.append(element(qn(NS_RTCP_FB, "rtcp-fb"), _attrs({"type": fb_type, "subtype": subtype})))
        return el


@dataclass(frozen=True, slots=True)
class SourceXml:
    """A `<source>` as it is on the wire: `owner` from `<ssrc-info>`, `msid` from the parameter."""

    ssrc: int
    name: str | None = None
    video_type: str | None = None
    msid: str | None = None
    owner: str | None = None

    def to_element(self) -> Element:
        el = element(qn(NS_SSMA, "source"),
                     _attrs({"ssrc": self.ssrc, "name": self.name, "videoType": self.video_type}))
        if self.owner is not None:
            el.append(element(qn(NS_JM, "ssrc-info"), {"owner": self.owner}))
        if self.msid is not None:
            el.append(element(qn(NS_RTP, "parameter"), {"name": "msid", "value": self.msid}))
        return el


@dataclass(frozen=True, slots=True)
class GroupXml:
    """An `<ssrc-group semantics>`; semantics as written (the checks judge it)."""

    semantics: str
    ssrcs: tuple[int, ...]

    def to_element(self) -> Element:
        return element(qn(NS_SSMA, "ssrc-group"), {"semantics": self.semantics},
                       *(element(qn(NS_SSMA, "source"), {"ssrc": str(s)}) for s in self.ssrcs))


@dataclass(frozen=True, slots=True)
class Description:
    media: str | None
    payload_types: tuple[PayloadType, ...] = ()
    header_extensions: tuple[tuple[int, str], ...] = ()  # (id, uri)
    extmap_allow_mixed: bool = False
    sources: tuple[SourceXml, ...] = ()
    groups: tuple[GroupXml, ...] = ()
    rtcp_mux: bool = False

    def to_element(self) -> Element:
        el = element(qn(NS_RTP, "description"), _attrs({"media": self.media}))
        el.extend(pt.to_element() for pt in self.payload_types)
        for ext_id, uri in self.header_extensions:
            el.append(element(qn(NS_HDREXT, "rtp-hdrext"), {"id": str(ext_id), "uri": uri}))
        if self.extmap_allow_mixed:
            el.append(element(qn(NS_HDREXT, "extmap-allow-mixed")))
        el.extend(s.to_element() for s in self.sources)
        el.extend(g.to_element() for g in self.groups)
        if self.rtcp_mux:
            el.append(element(qn(NS_RTP, "rtcp-mux")))
        return el


def _read_source(el: Element) -> SourceXml:
    msid = None
    for ns in (NS_RTP, NS_SSMA):
        for parameter in _few(el, ns, "parameter"):
            if parameter.get("name") == "msid":
                msid = parameter.get("value") or None
    info = find_child(el, NS_JM, "ssrc-info")
    return SourceXml(
        ssrc=_need_int(el, "ssrc"), name=el.get("name") or None, video_type=el.get("videoType") or None,
        msid=msid, owner=(info.get("owner") or None) if info is not None else None,
    )


def _read_group(el: Element) -> GroupXml:
    return GroupXml(el.get("semantics", ""), tuple(_need_int(s, "ssrc") for s in _few(el, NS_SSMA, "source")))


def _read_description(el: Element) -> Description:
    pts = []
    for pt in _few(el, NS_RTP, "payload-type"):
        pts.append(PayloadType(
            id=_need_int(pt, "id", hi=127), name=pt.get("name", ""), clockrate=_int(pt, "clockrate"),
            channels=_int(pt, "channels"),
            parameters=tuple((p.get("name", ""), p.get("value", "")) for p in _few(pt, NS_RTP, "parameter")),
            feedback=tuple((f.get("type", ""), f.get("subtype")) for f in _few(pt, NS_RTCP_FB, "rtcp-fb")),
        ))
    return Description(
        media=el.get("media") or None,
        payload_types=tuple(pts),
        header_extensions=tuple((_need_int(h, "id", lo=1, hi=255), h.get("uri", ""))
                                for h in _few(el, NS_HDREXT, "rtp-hdrext")),
        extmap_allow_mixed=find_child(el, NS_HDREXT, "extmap-allow-mixed") is not None,
        sources=tuple(_read_source(s) for s in _few(el, NS_SSMA, "source")),
        groups=tuple(_read_group(g) for g in _few(el, NS_SSMA, "ssrc-group")),
        rtcp_mux=find_child(el, NS_RTP, "rtcp-mux") is not None,
    )


# ---------------------------------------------------------------------------------------------
# Contents and the jingle element


@dataclass(frozen=True, slots=True)
class Content:
    name: str
    creator: str | None = None
    senders: str | None = None
    description: Description | None = None
    transport: Transport | None = None
    initial_last_n: int | None = None

    @property
    def media(self) -> str:
        """The description's media, else the content's name (as the client maps m-lines)."""
        if self.description is not None and self.description.media:
            return self.description.media
        return self.name

    def to_element(self) -> Element:
        el = element(qn(NS_JINGLE, "content"),
                     _attrs({"creator": self.creator, "name": self.name, "senders": self.senders}))
        if self.description is not None:
            el.append(self.description.to_element())
        if self.transport is not None:
            el.append(self.transport.to_element())
        if self.initial_last_n is not None:
            el.append(element(qn(NS_LAST_N, "initial-last-n"), {"value": str(self.initial_last_n)}))
        return el


def _read_content(el: Element) -> Content:
    name = _need(el, "name")
    descriptions = children(el, NS_RTP, "description")
    transports = children(el, NS_ICE, "transport")
    if len(descriptions) > 1 or len(transports) > 1:
        raise JingleReadError("a content with more than one description or transport")
    description = _read_description(descriptions[0]) if descriptions else None
    # An old placement: sources straight under the content.
    loose = tuple(_read_source(s) for s in _few(el, NS_SSMA, "source"))
    loose_groups = tuple(_read_group(g) for g in _few(el, NS_SSMA, "ssrc-group"))
    if loose or loose_groups:
        base = description or Description(media=None)
        description = replace(base, sources=base.sources + loose, groups=base.groups + loose_groups)
    last_n = find_child(el, NS_LAST_N, "initial-last-n")
    return Content(
        name=name, creator=el.get("creator"), senders=el.get("senders"), description=description,
        transport=_read_transport(transports[0]) if transports else None,
        initial_last_n=_int(last_n, "value") if last_n is not None else None,
    )


@dataclass(frozen=True, slots=True)
class BridgeSession:
    id: str
    region: str | None = None
    restart: bool | None = None
    ice_restart: bool | None = None

    def to_element(self) -> Element:
        return element(qn(NS_FOCUS_EXT, "bridge-session"), _attrs({
            "id": self.id, "region": self.region, "restart": self.restart, "ice-restart": self.ice_restart,
        }))


@dataclass(frozen=True, slots=True)
class Reason:
    condition: str
    text: str | None = None

    def to_element(self) -> Element:
        el = element(qn(NS_JINGLE, "reason"), None, element(qn(NS_JINGLE, self.condition)))
        if self.text is not None:
            el.append(element(qn(NS_JINGLE, "text"), text=self.text))
        return el


@dataclass(frozen=True, slots=True)
class StartMuted:
    audio: bool = False
    video: bool = False


@dataclass(frozen=True, slots=True)
class Jingle:
    """One `<jingle>` payload. `action` is the attribute's text (legacy names mapped)."""

    action: str
    sid: str
    initiator: str | None = None
    responder: str | None = None
    contents: tuple[Content, ...] = ()
    bundle: tuple[str, ...] | None = None  # content names of the BUNDLE group, if any
    bridge_session: BridgeSession | None = None
    reason: Reason | None = None
    json_message: str | None = None
    ice_state: str | None = None
    start_muted: StartMuted | None = None
    other_groups: tuple[str, ...] = field(default=())  # semantics of non-BUNDLE groups

    def content(self, name: str) -> Content | None:
        return next((c for c in self.contents if c.name == name), None)

    def to_element(self) -> Element:
        el = element(JINGLE_TAG, _attrs({
            "action": self.action, "initiator": self.initiator, "responder": self.responder, "sid": self.sid,
        }))
        if self.reason is not None:
            el.append(self.reason.to_element())
        el.extend(c.to_element() for c in self.contents)
        if self.bundle is not None:
            el.append(element(qn(NS_GROUPING, "group"), {"semantics": "BUNDLE"},
                              *(element(qn(NS_GROUPING, "content"), {"name": n}) for n in self.bundle)))
        if self.ice_state is not None:
            el.append(element(qn(NS_FOCUS_EXT, "ice-state"), text=self.ice_state))
        if self.json_message is not None:
            el.append(element(qn(NS_JM, "json-message"), text=self.json_message))
        if self.bridge_session is not None:
            el.append(self.bridge_session.to_element())
        return el


def read_jingle(el: Element) -> Jingle:
    """Read a `<jingle>` payload as the client does. Raises JingleReadError."""
    if el.tag != JINGLE_TAG:
        raise JingleReadError("not a jingle element")
    raw_action = _need(el, "action")
    action = LEGACY_ACTIONS.get(raw_action, raw_action)
    if action not in ACTIONS:
        raise JingleReadError("unknown Jingle action")
    sid = _need(el, "sid")
    content_elements = children(el, NS_JINGLE, "content")
    if len(content_elements) > MAX_CONTENTS:
        raise JingleReadError("too many contents")
    contents = tuple(_read_content(c) for c in content_elements)
    if len({c.name for c in contents}) != len(contents):
        raise JingleReadError("two contents with one name")
    bundle: tuple[str, ...] | None = None
    others = []
    for group in _few(el, NS_GROUPING, "group"):
        semantics = group.get("semantics", "")
        if semantics.upper() == "BUNDLE" and bundle is None:
            bundle = tuple(c.get("name", "") for c in _few(group, NS_GROUPING, "content"))
        else:
            others.append(semantics)
    bs = find_child(el, NS_FOCUS_EXT, "bridge-session")
    reason_el = find_child(el, NS_JINGLE, "reason")
    reason = None
    if reason_el is not None:
        conditions = [_local(c) for c in reason_el
                      if c.tag.startswith(f"{{{NS_JINGLE}}}") and _local(c) != "text"]
        text_el = find_child(reason_el, NS_JINGLE, "text")
        text = (text_el.text or None) if text_el is not None else None
        reason = Reason(conditions[0] if conditions else "", text)
    json_el = find_child(el, NS_JM, "json-message")
    ice_el = find_child(el, NS_FOCUS_EXT, "ice-state")
    sm = find_child(el, NS_STARTMUTED, "startmuted")
    return Jingle(
        action=action, sid=sid, initiator=el.get("initiator"), responder=el.get("responder"),
        contents=contents, bundle=bundle,
        bridge_session=BridgeSession(
            bs.get("id", ""), bs.get("region"), _flag(bs, "restart"), _flag(bs, "ice-restart"),
        ) if bs is not None else None,
        reason=reason,
        json_message=(json_el.text or "") if json_el is not None else None,
        ice_state=(ice_el.text or "").strip() if ice_el is not None else None,
        start_muted=(StartMuted(bool(_flag(sm, "audio")), bool(_flag(sm, "video")))
                     if sm is not None else None),
        other_groups=tuple(others),
    )
