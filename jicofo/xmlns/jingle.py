"""Jingle (`urn:xmpp:jingle:1`) as the focus and lib-jitsi-meet use it: the `<jingle>` payload with
its contents (RTP description, ICE-UDP transport), the BUNDLE group and Jitsi's extensions
(bridge-session, json-message, ice-state, startmuted, reason). The ICE-UDP transport is in
`ice_udp`, the SSMA sources of an RTP description in `ssma`; Colibri2 uses both too.

`from_element` is strict: anything malformed raises ValueError with a message fit for the text of
a bad-request answer. Elements the focus has no use for are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import children, element, find_child, qn

from .attributes import attrs
from .attributes import bool_attr as _bool
from .attributes import expect as _expect
from .attributes import int_attr as _int
from .attributes import local as _local
from .attributes import required as _required
from .attributes import required_int as _required_int
from .ice_udp import IceUdpTransport
from .namespaces import NS_COLIBRI2, NS_JITMEET, NS_RTP
from .ssma import SourceElement, SsrcGroupElement, sources_in, ssrc_groups_in

NS_JINGLE = "urn:xmpp:jingle:1"
NS_RTCP_FB = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"
NS_HDREXT = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
NS_GROUPING = "urn:xmpp:jingle:apps:grouping:0"
NS_JINGLE_ERRORS = "urn:xmpp:jingle:errors:1"
NS_FOCUS = "http://jitsi.org/protocol/focus"
NS_START_MUTED = "http://jitsi.org/jitmeet/start-muted"


JINGLE = qn(NS_JINGLE, "jingle")


class Action(StrEnum):
    CONTENT_ACCEPT = "content-accept"
    CONTENT_ADD = "content-add"
    CONTENT_MODIFY = "content-modify"
    CONTENT_REJECT = "content-reject"
    CONTENT_REMOVE = "content-remove"
    DESCRIPTION_INFO = "description-info"
    SECURITY_INFO = "security-info"
    SESSION_ACCEPT = "session-accept"
    SESSION_INFO = "session-info"
    SESSION_INITIATE = "session-initiate"
    SESSION_TERMINATE = "session-terminate"
    TRANSPORT_ACCEPT = "transport-accept"
    TRANSPORT_INFO = "transport-info"
    TRANSPORT_REJECT = "transport-reject"
    TRANSPORT_REPLACE = "transport-replace"
    SOURCE_ADD = "source-add"
    SOURCE_REMOVE = "source-remove"


# Older clients' names for the source actions; read as the current ones.
_LEGACY_ACTIONS = {"addsource": Action.SOURCE_ADD, "removesource": Action.SOURCE_REMOVE}
_CREATORS = frozenset({"initiator", "responder"})
_SENDERS = frozenset({"both", "initiator", "responder", "none"})


# ---------------------------------------------------------------------------------------------
# RTP description


@dataclass(frozen=True, slots=True)
class RtcpFb:
    """`<rtcp-fb type subtype?>` (urn:xmpp:jingle:apps:rtp:rtcp-fb:0)."""

    type: str
    subtype: str | None = None

    TAG = qn(NS_RTCP_FB, "rtcp-fb")

    @classmethod
    def from_element(cls, el: Element) -> RtcpFb:
        _expect(el, cls.TAG)
        return cls(_required(el, "type"), el.get("subtype"))

    def to_element(self) -> Element:
        return element(self.TAG, attrs(type=self.type, subtype=self.subtype))


@dataclass(frozen=True, slots=True)
class Parameter:
    """A payload-type `<parameter>` (an fmtp entry). RED's `111/111` has no name."""

    name: str | None
    value: str

    TAG = qn(NS_RTP, "parameter")

    @classmethod
    def from_element(cls, el: Element) -> Parameter:
        _expect(el, cls.TAG)
        return cls(el.get("name") or None, el.get("value", ""))

    def to_element(self) -> Element:
        return element(self.TAG, attrs(name=self.name, value=self.value))


@dataclass(frozen=True, slots=True)
class PayloadType:
    id: int
    name: str | None = None
    clockrate: int | None = None
    channels: int | None = None
    parameters: tuple[Parameter, ...] = ()
    rtcp_fbs: tuple[RtcpFb, ...] = ()

    TAG = qn(NS_RTP, "payload-type")

    @classmethod
    def from_element(cls, el: Element) -> PayloadType:
        _expect(el, cls.TAG)
        return cls(
            id=_required_int(el, "id", maximum=127),
            name=el.get("name"),
            clockrate=_int(el, "clockrate", minimum=1),
            channels=_int(el, "channels", minimum=1),
            parameters=tuple(Parameter.from_element(p) for p in children(el, NS_RTP, "parameter")),
            rtcp_fbs=tuple(RtcpFb.from_element(f) for f in children(el, NS_RTCP_FB, "rtcp-fb")),
        )

    def to_element(self) -> Element:
        return element(
            self.TAG,
            attrs(id=self.id, name=self.name, clockrate=self.clockrate, channels=self.channels),
            *(p.to_element() for p in self.parameters),
            *(f.to_element() for f in self.rtcp_fbs),
        )

    def parameter(self, name: str) -> str | None:
        return next((p.value for p in self.parameters if p.name == name), None)


@dataclass(frozen=True, slots=True)
class HeaderExtension:
    """`<rtp-hdrext id uri senders?>` (urn:xmpp:jingle:apps:rtp:rtp-hdrext:0)."""

    id: int
    uri: str
    senders: str | None = None

    TAG = qn(NS_HDREXT, "rtp-hdrext")

    @classmethod
    def from_element(cls, el: Element) -> HeaderExtension:
        _expect(el, cls.TAG)
        senders = el.get("senders")
        if senders is not None and senders not in _SENDERS:
            raise ValueError(f"invalid rtp-hdrext senders {senders!r}")
        return cls(_required_int(el, "id", minimum=1, maximum=255), _required(el, "uri"), senders)

    def to_element(self) -> Element:
        return element(self.TAG, attrs(id=self.id, uri=self.uri, senders=self.senders))


def payload_types_in(el: Element) -> tuple[PayloadType, ...]:
    """The `<payload-type>` children of an RTP description (or of a Colibri2 `<media>`)."""
    return tuple(PayloadType.from_element(p) for p in children(el, NS_RTP, "payload-type"))


def header_extensions_in(el: Element) -> tuple[HeaderExtension, ...]:
    """The `<rtp-hdrext>` children of an RTP description (or of a Colibri2 `<media>`)."""
    return tuple(HeaderExtension.from_element(h) for h in children(el, NS_HDREXT, "rtp-hdrext"))


EXTMAP_ALLOW_MIXED = qn(NS_HDREXT, "extmap-allow-mixed")
RTP_RTCP_MUX = qn(NS_RTP, "rtcp-mux")


@dataclass(frozen=True, slots=True)
class RtpDescription:
    """`<description xmlns='urn:xmpp:jingle:apps:rtp:1' media=...>`. `media` is audio, video or
    application (the data channel's description, which carries nothing else)."""

    media: str | None
    payload_types: tuple[PayloadType, ...] = ()
    header_extensions: tuple[HeaderExtension, ...] = ()
    extmap_allow_mixed: bool = False
    sources: tuple[SourceElement, ...] = ()
    ssrc_groups: tuple[SsrcGroupElement, ...] = ()
    rtcp_mux: bool = False
    maxptime: int | None = None

    TAG = qn(NS_RTP, "description")

    @classmethod
    def from_element(cls, el: Element) -> RtpDescription:
        _expect(el, cls.TAG)
        return cls(
            media=el.get("media") or None,
            payload_types=payload_types_in(el),
            header_extensions=header_extensions_in(el),
            extmap_allow_mixed=find_child(el, NS_HDREXT, "extmap-allow-mixed") is not None,
            sources=sources_in(el),
            ssrc_groups=ssrc_groups_in(el),
            rtcp_mux=find_child(el, NS_RTP, "rtcp-mux") is not None,
            maxptime=_int(el, "maxptime", minimum=1),
        )

    def to_element(self) -> Element:
        el = element(self.TAG, attrs(media=self.media, maxptime=self.maxptime))
        el.extend(p.to_element() for p in self.payload_types)
        el.extend(h.to_element() for h in self.header_extensions)
        if self.extmap_allow_mixed:
            el.append(element(EXTMAP_ALLOW_MIXED))
        el.extend(s.to_element() for s in self.sources)
        el.extend(g.to_element() for g in self.ssrc_groups)
        if self.rtcp_mux:
            el.append(element(RTP_RTCP_MUX))
        return el


# ---------------------------------------------------------------------------------------------
# Content


INITIAL_LAST_N = qn(NS_COLIBRI2, "initial-last-n")


@dataclass(frozen=True, slots=True)
class JingleContent:
    """`<content name creator senders>` with an optional RTP description and ICE-UDP transport.
    `initial_last_n` is what lib-jitsi-meet sends in its session-accept. Sources found directly
    under the content (an old placement) are read into the description."""

    name: str
    creator: str | None = "initiator"
    senders: str | None = "both"
    description: RtpDescription | None = None
    transport: IceUdpTransport | None = None
    initial_last_n: int | None = None

    TAG = qn(NS_JINGLE, "content")

    @property
    def media(self) -> str:
        """The media type: the description's, else the content name."""
        if self.description is not None and self.description.media:
            return self.description.media
        return self.name

    @classmethod
    def from_element(cls, el: Element) -> JingleContent:
        _expect(el, cls.TAG)
        name = _required(el, "name")
        creator, senders = el.get("creator"), el.get("senders")
        if creator is not None and creator not in _CREATORS:
            raise ValueError(f"invalid content creator {creator!r}")
        if senders is not None and senders not in _SENDERS:
            raise ValueError(f"invalid content senders {senders!r}")
        descriptions = children(el, NS_RTP, "description")
        transports = children(el, IceUdpTransport.NS, "transport")
        if len(descriptions) > 1 or len(transports) > 1:
            raise ValueError(f"content {name!r} has more than one description or transport")
        if any(_local(c) == "transport" for c in el) and not transports:
            raise ValueError(f"content {name!r} has a transport other than ICE-UDP")
        description = RtpDescription.from_element(descriptions[0]) if descriptions else None
        loose_sources, loose_groups = sources_in(el), ssrc_groups_in(el)
        if loose_sources or loose_groups:
            base = description or RtpDescription(media=None)
            description = _with_sources(base, loose_sources, loose_groups)
        last_n = find_child(el, NS_COLIBRI2, "initial-last-n")
        return cls(
            name=name,
            creator=creator,
            senders=senders,
            description=description,
            transport=IceUdpTransport.from_element(transports[0]) if transports else None,
            initial_last_n=_int(last_n, "value") if last_n is not None else None,
        )

    def to_element(self) -> Element:
        el = element(self.TAG, attrs(creator=self.creator, name=self.name, senders=self.senders))
        if self.description is not None:
            el.append(self.description.to_element())
        if self.transport is not None:
            el.append(self.transport.to_element())
        if self.initial_last_n is not None:
            el.append(element(INITIAL_LAST_N, attrs(value=self.initial_last_n)))
        return el


def _with_sources(
    description: RtpDescription,
    sources: tuple[SourceElement, ...],
    groups: tuple[SsrcGroupElement, ...],
) -> RtpDescription:
    return replace(
        description,
        sources=description.sources + sources,
        ssrc_groups=description.ssrc_groups + groups,
    )


# ---------------------------------------------------------------------------------------------
# Session-level extensions


@dataclass(frozen=True, slots=True)
class Group:
    """`<group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'>` of content names."""

    semantics: str
    contents: tuple[str, ...]

    TAG = qn(NS_GROUPING, "group")

    @classmethod
    def from_element(cls, el: Element) -> Group:
        _expect(el, cls.TAG)
        return cls(
            _required(el, "semantics"),
            tuple(_required(c, "name") for c in children(el, NS_GROUPING, "content")),
        )

    def to_element(self) -> Element:
        return element(
            self.TAG,
            {"semantics": self.semantics},
            *(element(qn(NS_GROUPING, "content"), {"name": name}) for name in self.contents),
        )


@dataclass(frozen=True, slots=True)
class BridgeSession:
    """`<bridge-session xmlns='http://jitsi.org/protocol/focus' id region? restart? ice-restart?>`:
    the focus names the bridge session in its offer; the client echoes the id when it asks for a
    restart (`restart`, in session-terminate) or an in-place ICE restart (`ice_restart`)."""

    id: str
    region: str | None = None
    restart: bool | None = None
    ice_restart: bool | None = None

    TAG = qn(NS_FOCUS, "bridge-session")

    @classmethod
    def from_element(cls, el: Element) -> BridgeSession:
        _expect(el, cls.TAG)
        return cls(
            id=_required(el, "id"),
            region=el.get("region"),
            restart=_bool(el, "restart"),
            ice_restart=_bool(el, "ice-restart"),
        )

    def to_element(self) -> Element:
        return element(
            self.TAG,
            attrs(id=self.id, region=self.region, restart=self.restart, ice_restart=self.ice_restart),
        )


# Reason conditions of XEP-0166 §7.4.
REASON_CONDITIONS = frozenset(
    {
        "alternative-session",
        "busy",
        "cancel",
        "connectivity-error",
        "decline",
        "expired",
        "failed-application",
        "failed-transport",
        "general-error",
        "gone",
        "incompatible-parameters",
        "media-error",
        "security-error",
        "success",
        "timeout",
        "unsupported-applications",
        "unsupported-transports",
    }
)


@dataclass(frozen=True, slots=True)
class Reason:
    """`<reason><condition/><text>...</text></reason>`."""

    condition: str
    text: str | None = None

    TAG = qn(NS_JINGLE, "reason")

    def __post_init__(self) -> None:
        if self.condition not in REASON_CONDITIONS:
            raise ValueError(f"unknown Jingle reason {self.condition!r}")

    @classmethod
    def from_element(cls, el: Element) -> Reason:
        _expect(el, cls.TAG)
        conditions = [
            _local(c) for c in el if c.tag.startswith(f"{{{NS_JINGLE}}}") and _local(c) != "text"
        ]
        if len(conditions) != 1:
            raise ValueError("<reason> must hold exactly one condition")
        text_el = find_child(el, NS_JINGLE, "text")
        return cls(conditions[0], text_el.text if text_el is not None and text_el.text else None)

    def to_element(self) -> Element:
        el = element(self.TAG, None, element(qn(NS_JINGLE, self.condition)))
        if self.text is not None:
            el.append(element(qn(NS_JINGLE, "text"), text=self.text))
        return el


@dataclass(frozen=True, slots=True)
class StartMuted:
    """`<startmuted xmlns='http://jitsi.org/jitmeet/start-muted' audio video>` (offer and presence)."""

    audio: bool = False
    video: bool = False

    NS = NS_START_MUTED
    TAG = qn(NS_START_MUTED, "startmuted")

    @classmethod
    def from_element(cls, el: Element) -> StartMuted:
        _expect(el, cls.TAG)
        return cls(audio=bool(_bool(el, "audio")), video=bool(_bool(el, "video")))

    def to_element(self) -> Element:
        return element(self.TAG, attrs(audio=self.audio, video=self.video))


JSON_MESSAGE = qn(NS_JITMEET, "json-message")
ICE_STATE = qn(NS_FOCUS, "ice-state")


# ---------------------------------------------------------------------------------------------
# The jingle element


@dataclass(frozen=True, slots=True)
class JingleIQ:
    """The `<jingle xmlns='urn:xmpp:jingle:1'>` payload of a Jingle IQ (the IQ envelope belongs to
    the XMPP layer). `json_message` is the raw text of `<json-message>` (compact JSON sources,
    decoded by the conference layer); `ice_state` the text of session-info's `<ice-state>`."""

    action: Action
    sid: str
    initiator: str | None = None
    responder: str | None = None
    contents: tuple[JingleContent, ...] = ()
    groups: tuple[Group, ...] = ()
    bridge_session: BridgeSession | None = None
    reason: Reason | None = None
    json_message: str | None = None
    ice_state: str | None = None
    start_muted: StartMuted | None = None

    TAG = JINGLE

    @property
    def bundle(self) -> Group | None:
        return next((g for g in self.groups if g.semantics == "BUNDLE"), None)

    def content(self, name: str) -> JingleContent | None:
        return next((c for c in self.contents if c.name == name), None)

    @classmethod
    def from_element(cls, el: Element) -> JingleIQ:
        _expect(el, JINGLE)
        raw_action = _required(el, "action")
        try:
            action = _LEGACY_ACTIONS.get(raw_action) or Action(raw_action)
        except ValueError:
            raise ValueError(f"unknown Jingle action {raw_action!r}") from None
        bridge_session = find_child(el, NS_FOCUS, "bridge-session")
        reason = find_child(el, NS_JINGLE, "reason")
        json_message = find_child(el, NS_JITMEET, "json-message")
        ice_state = find_child(el, NS_FOCUS, "ice-state")
        start_muted = find_child(el, NS_START_MUTED, "startmuted")
        contents = tuple(JingleContent.from_element(c) for c in children(el, NS_JINGLE, "content"))
        names = [c.name for c in contents]
        if len(set(names)) != len(names):
            raise ValueError("two contents share a name")
        return cls(
            action=action,
            sid=_required(el, "sid"),
            initiator=el.get("initiator"),
            responder=el.get("responder"),
            contents=contents,
            groups=tuple(Group.from_element(g) for g in children(el, NS_GROUPING, "group")),
            bridge_session=BridgeSession.from_element(bridge_session) if bridge_session is not None else None,
            reason=Reason.from_element(reason) if reason is not None else None,
            json_message=(json_message.text or "") if json_message is not None else None,
            ice_state=(ice_state.text or "").strip() if ice_state is not None else None,
            start_muted=StartMuted.from_element(start_muted) if start_muted is not None else None,
        )

    def to_element(self) -> Element:
        el = element(
            JINGLE,
            attrs(action=str(self.action), initiator=self.initiator, responder=self.responder, sid=self.sid),
        )
        if self.reason is not None:
            el.append(self.reason.to_element())
        el.extend(c.to_element() for c in self.contents)
        el.extend(g.to_element() for g in self.groups)
        if self.ice_state is not None:
            el.append(element(ICE_STATE, text=self.ice_state))
        if self.json_message is not None:
            el.append(element(JSON_MESSAGE, text=self.json_message))
        if self.start_muted is not None:
            el.append(self.start_muted.to_element())
        if self.bridge_session is not None:
            el.append(self.bridge_session.to_element())
        return el


def unknown_session() -> Element:
    """The Jingle application condition for an IQ naming a session that does not exist."""
    return element(qn(NS_JINGLE_ERRORS, "unknown-session"))
