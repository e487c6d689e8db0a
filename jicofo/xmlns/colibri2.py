"""Colibri2 (`jitsi:colibri2`): the focus ⇄ videobridge allocation protocol (docs/jvb.md §2).

Both directions use the same small frozen classes: the focus builds `ConferenceModify(...)` and
reads `ConferenceModified.from_element(el)`; the bridge simulator does the opposite. RTP pieces
(payload types, header extensions) are the Jingle ones from `jicofo.xmlns.jingle`, the ICE-UDP
transport is `jicofo.xmlns.ice_udp`'s and the sources are `jicofo.xmlns.ssma`'s.

Parsing is strict: anything malformed raises `Colibri2ParseError` (a `ValueError`) with a message
fit for the text of a `bad-request` answer. Unknown children (`traceparent`, future extensions)
are skipped, as a real bridge does. Sequence fields accept lists and are stored as tuples.

Errors: `colibri2_error(...)` reads the `<error xmlns='jitsi:colibri2' reason=...>` application
condition (and the `<endpoint id>` that comes with `unknown_endpoint`) from a received error;
`colibri2_stanza_error(...)` builds one to send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Protocol, TypeVar
from xml.etree.ElementTree import Element

from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.xml import children, element, find_child, local_name, namespace, qn

from .attributes import attrs, attrs_omitting_false, bool_attr
from .attributes import int_attr as _int
from .attributes import required as _required
from .ice_udp import NS_DTLS, NS_ICE_UDP, WEB_SOCKET, IceUdpTransport
from .jingle import (
    NS_HDREXT,
    HeaderExtension,
    PayloadType,
    RtpDescription,
    header_extensions_in,
    payload_types_in,
)
from .namespaces import NS_COLIBRI2
from .ssma import SourceElement, SsrcGroupElement, sources_in, ssrc_groups_in

__all__ = [
    "CONFERENCE_MODIFY", "CONFERENCE_MODIFIED", "SCTP_PORT", "CAPABILITY_SOURCE_NAMES",
    "Colibri2ParseError", "ErrorReason", "Colibri2ErrorInfo", "Colibri2StanzaError",
    "colibri2_error", "colibri2_stanza_error", "error_element",
    "Sctp", "Transport", "Media", "MediaSource", "Sources", "ForceMute", "Endpoint", "Relay",
    "Connect", "ConferenceModify", "ConferenceModified",
]

CONFERENCE_MODIFY = qn(NS_COLIBRI2, "conference-modify")
CONFERENCE_MODIFIED = qn(NS_COLIBRI2, "conference-modified")
ERROR = qn(NS_COLIBRI2, "error")

# The only SCTP port a bridge accepts and announces.
SCTP_PORT = 5000

# Capabilities jicofo announces for an endpoint (§2.2). The bridge requires source-names on create.
CAPABILITY_SOURCE_NAMES = "source-names"
CAPABILITY_SSRC_REWRITING = "ssrc-rewriting"
CAPABILITY_PRIVATE_ADDRESS = "private-address-connectivity"
CAPABILITY_RTP_MID_DEMUX = "rtp-mid-demux"

MEDIA_TYPES = frozenset({"audio", "video"})
SCTP_ROLES = frozenset({"client", "server"})
CONNECT_TYPES = frozenset({"transcriber", "translator", "recorder"})


class Colibri2ParseError(ValueError):
    """A malformed Colibri2 element. The message says what is wrong and where."""


@contextmanager
def _strict(where: str | None = None) -> Iterator[None]:
    """Turn any ValueError raised while parsing (ours or the Jingle helpers') into one
    Colibri2ParseError, prefixed with `where` when given."""
    try:
        yield
    except Colibri2ParseError as exc:
        if where is None:
            raise
        raise Colibri2ParseError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise Colibri2ParseError(f"{where}: {exc}" if where else str(exc)) from None


# ---------------------------------------------------------------------------------------------
# Attribute helpers


def _expect(el: Element, tag: str) -> None:
    if el.tag != tag:
        raise Colibri2ParseError(f"expected <{local_name(tag)} xmlns='{namespace(tag)}'>, got {el.tag!r}")


def _bool(el: Element, name: str) -> bool:
    """A Colibri2 flag: false when absent."""
    return bool_attr(el, name) is True


def _one(el: Element, ns: str, local: str) -> Element | None:
    found = children(el, ns, local)
    if len(found) > 1:
        raise Colibri2ParseError(f"<{local_name(el.tag)}> has more than one <{local}>")
    return found[0] if found else None


_T = TypeVar("_T")


def _each(el: Element | None, local: str, parse: Callable[[Element], _T]) -> tuple[_T, ...]:
    """`parse` applied to every `<local xmlns='jitsi:colibri2'>` child of `el`, in document order;
    nothing when `el` is None (an absent wrapper such as `<connects>`)."""
    return tuple(parse(c) for c in children(el, NS_COLIBRI2, local)) if el is not None else ()


def _maybe(el: Element | None, parse: Callable[[Element], _T]) -> _T | None:
    return parse(el) if el is not None else None


def _name(el: Element) -> str:
    return _required(el, "name")


class _Writable(Protocol):
    def to_element(self) -> Element: ...


def _append(el: Element, *parts: _Writable | None) -> None:
    """Append the elements of the parts that are set, in order."""
    el.extend(part.to_element() for part in parts if part is not None)


def _wrapped(local: str, items: Iterable[Element]) -> Element:
    """`<local xmlns='jitsi:colibri2'>` holding `items` (`<endpoints>`, `<connects>`, ...)."""
    return element(qn(NS_COLIBRI2, local), None, *items)


def _names(local: str, names: Iterable[str]) -> Iterator[Element]:
    return (element(qn(NS_COLIBRI2, local), {"name": name}) for name in names)


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


_I = TypeVar("_I", bound=_Identified)


def _with_id(items: tuple[_I, ...], wanted: str) -> _I | None:
    return next((item for item in items if item.id == wanted), None)


class _Tuples:
    """Mixin: sequence fields given as lists (or any iterable but str) are stored as tuples."""

    __slots__ = ()

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, list | Iterator):
                object.__setattr__(self, f.name, tuple(value))


# ---------------------------------------------------------------------------------------------
# Errors


class ErrorReason(StrEnum):
    """The `reason` of `<error xmlns='jitsi:colibri2'>`. A missing or unknown reason reads as
    UNSPECIFIED."""

    CONFERENCE_NOT_FOUND = "conference_not_found"
    CONFERENCE_ALREADY_EXISTS = "conference_already_exists"
    FEATURE_NOT_IMPLEMENTED = "feature_not_implemented"
    GRACEFUL_SHUTDOWN = "graceful_shutdown"
    UNKNOWN_ENDPOINT = "unknown_endpoint"
    UNSPECIFIED = "unspecified"

    @classmethod
    def parse(cls, raw: str | None) -> ErrorReason:
        try:
            return cls(raw) if raw else cls.UNSPECIFIED
        except ValueError:
            return cls.UNSPECIFIED


@dataclass(frozen=True, slots=True)
class Colibri2ErrorInfo:
    """What a bridge's error says beyond the stanza condition. Its presence means "this error
    came from a bridge, not from the MUC or the server" (§2.6)."""

    reason: ErrorReason
    endpoint_id: str | None = None


def error_element(reason: ErrorReason | str) -> Element:
    """`<error xmlns='jitsi:colibri2' reason='...'/>`."""
    return element(ERROR, {"reason": str(reason)})


class Colibri2StanzaError(StanzaError):
    """A StanzaError whose `<error>` carries the colibri2 reason and, for `unknown_endpoint`, the
    `<endpoint xmlns='jitsi:colibri2' id>` after it (StanzaError alone holds one app element)."""

    def __init__(
        self,
        condition: str,
        text: str | None = None,
        *,
        reason: ErrorReason | str | None = None,
        endpoint_id: str | None = None,
        type: str | None = None,
    ) -> None:
        app = error_element(reason) if reason is not None else None
        super().__init__(condition, text, type=type, app_element=app)
        self.reason = ErrorReason.parse(str(reason)) if reason is not None else None
        self.endpoint_id = endpoint_id

    def to_element(self, stanza_ns: str = "jabber:client") -> Element:
        err = super().to_element(stanza_ns)
        if self.endpoint_id is not None:
            err.append(element(qn(NS_COLIBRI2, "endpoint"), {"id": self.endpoint_id}))
        return err


def colibri2_stanza_error(
    condition: str,
    text: str | None = None,
    reason: ErrorReason | str | None = None,
    endpoint_id: str | None = None,
) -> Colibri2StanzaError:
    """An error to answer a conference-modify with, shaped as the tables of §2.6 show."""
    return Colibri2StanzaError(condition, text, reason=reason, endpoint_id=endpoint_id)


def colibri2_error(source: StanzaError | Element) -> Colibri2ErrorInfo | None:
    """The colibri2 part of an error: from a StanzaError (as `client.request` raises it), from an
    IQ of type error, or from its `<error>` element. None when there is no colibri2 element.

    A StanzaError read off the wire keeps only one application element; when that is the
    `<endpoint>` of an unknown_endpoint error, the reason is taken to be unknown_endpoint (only
    that error carries an endpoint)."""
    if isinstance(source, Colibri2StanzaError) and source.reason is not None:
        return Colibri2ErrorInfo(source.reason, source.endpoint_id)
    if isinstance(source, StanzaError):
        # A future StanzaError may keep every application element as `app_elements`.
        extra = getattr(source, "app_elements", None)
        single = [source.app_element] if source.app_element is not None else []
        candidates = list(extra) if extra else single
    elif source.tag == ERROR:
        candidates = [source]
    elif local_name(source.tag) == "error":
        candidates = list(source)
    else:  # the stanza: look in its <error>
        err = next((c for c in source if local_name(c.tag) == "error"), None)
        candidates = list(err) if err is not None else []
    reason: ErrorReason | None = None
    endpoint_id: str | None = None
    for child in candidates:
        if child.tag == ERROR:
            reason = ErrorReason.parse(child.get("reason"))
        elif child.tag == qn(NS_COLIBRI2, "endpoint"):
            endpoint_id = child.get("id")
    if reason is None and endpoint_id is not None:
        reason = ErrorReason.UNKNOWN_ENDPOINT
    if reason is None:
        return None
    return Colibri2ErrorInfo(reason, endpoint_id)


# ---------------------------------------------------------------------------------------------
# Transport


@dataclass(frozen=True, slots=True)
class Sctp:
    """`<sctp port? role?>` inside a colibri2 transport: a request asks for a data channel (the
    port, if any, must be 5000; the role is the requester's); an answer carries port 5000 and the
    bridge's role."""

    port: int | None = None
    role: str | None = None

    TAG = qn(NS_COLIBRI2, "sctp")

    @classmethod
    def from_element(cls, el: Element) -> Sctp:
        with _strict("<sctp>"):
            _expect(el, cls.TAG)
            role = el.get("role")
            if role is not None and role not in SCTP_ROLES:
                raise Colibri2ParseError(f"unknown SCTP role {role!r}")
            return cls(_int(el, "port", minimum=0, maximum=65535), role)

    def to_element(self) -> Element:
        return element(self.TAG, attrs_omitting_false(port=self.port, role=self.role))


_ICE_ORDER = {
    qn(NS_ICE_UDP, "rtcp-mux"): 0,
    qn(NS_DTLS, "fingerprint"): 1,
    WEB_SOCKET: 2,
    qn(NS_ICE_UDP, "candidate"): 3,
}


def _parse_ice(el: Element) -> tuple[IceUdpTransport, bool]:
    """The ICE transport, reading `<web-socket>` here: a URL to dial, or `active='true'` (this
    side dials out) without a URL, which the Jingle class does not accept."""
    plain = Element(el.tag, dict(el.attrib))
    urls: list[str] = []
    active = False
    for child in el:
        if child.tag == WEB_SOCKET:
            if _bool(child, "active"):
                active = True
            url = child.get("url")
            if url:
                urls.append(url)
            elif not active:
                raise Colibri2ParseError("<web-socket> has neither a url nor active='true'")
        else:
            plain.append(child)
    ice = IceUdpTransport.from_element(plain)
    return replace(ice, web_sockets=tuple(urls)), active


@dataclass(frozen=True, slots=True)
class Transport(_Tuples):
    """`<transport xmlns='jitsi:colibri2'>`: in a request the flags and the peer's ICE transport
    (a client's after session-accept, the other bridge's for a relay); in an answer the bridge's
    ICE transport (credentials, fingerprint, candidates, web-socket URLs) and `<sctp>`.

    `web_socket_active` is the `<web-socket active='true'/>` a side that dials out puts in its
    ICE transport."""

    ice: IceUdpTransport | None = None
    sctp: Sctp | None = None
    ice_controlling: bool = False
    use_unique_port: bool = False
    ice_restart: bool = False
    web_socket_active: bool = False

    TAG = qn(NS_COLIBRI2, "transport")

    @classmethod
    def from_element(cls, el: Element) -> Transport:
        with _strict("<transport>"):
            _expect(el, cls.TAG)
            ice_el = _one(el, NS_ICE_UDP, "transport")
            sctp_el = _one(el, NS_COLIBRI2, "sctp")
            ice, active = _parse_ice(ice_el) if ice_el is not None else (None, False)
            return cls(
                ice=ice,
                sctp=_maybe(sctp_el, Sctp.from_element),
                ice_controlling=_bool(el, "ice-controlling"),
                use_unique_port=_bool(el, "use-unique-port"),
                ice_restart=_bool(el, "ice-restart"),
                web_socket_active=active,
            )

    def to_element(self) -> Element:
        el = element(
            self.TAG,
            attrs_omitting_false(
                ice_controlling=self.ice_controlling,
                use_unique_port=self.use_unique_port,
                ice_restart=self.ice_restart,
            ),
        )
        if self.ice is not None:
            ice = self.ice.to_element()
            if self.web_socket_active:
                ice.append(element(WEB_SOCKET, {"active": "true"}))
            # The bridge's order: rtcp-mux, fingerprint, web-socket(s), candidates (§2.5).
            ordered = sorted(ice, key=lambda c: _ICE_ORDER.get(c.tag, 4))
            for child in list(ice):
                ice.remove(child)
            ice.extend(ordered)
            el.append(ice)
        _append(el, self.sctp)
        return el


# ---------------------------------------------------------------------------------------------
# Media and sources


@dataclass(frozen=True, slots=True)
class Media(_Tuples):
    """`<media type='audio|video'>` with Jingle payload types and header extensions. A bridge
    stores them and never echoes them."""

    type: str
    payload_types: tuple[PayloadType, ...] = ()
    header_extensions: tuple[HeaderExtension, ...] = ()
    extmap_allow_mixed: bool = False

    TAG = qn(NS_COLIBRI2, "media")

    @classmethod
    def from_element(cls, el: Element) -> Media:
        with _strict("<media>"):
            _expect(el, cls.TAG)
            media_type = _required(el, "type")
            if media_type not in MEDIA_TYPES:
                raise Colibri2ParseError(f"unknown media type {media_type!r}")
            return cls(
                type=media_type,
                payload_types=payload_types_in(el),
                header_extensions=header_extensions_in(el),
                extmap_allow_mixed=find_child(el, NS_HDREXT, "extmap-allow-mixed") is not None,
            )

    @classmethod
    def from_description(cls, description: RtpDescription) -> Media:
        """The media of an offer's RTP description (sources are not part of it)."""
        if description.media not in MEDIA_TYPES:
            raise Colibri2ParseError(f"not an audio or video description: {description.media!r}")
        return cls(
            type=description.media or "",
            payload_types=description.payload_types,
            header_extensions=description.header_extensions,
            extmap_allow_mixed=description.extmap_allow_mixed,
        )

    def to_element(self) -> Element:
        el = element(self.TAG, {"type": self.type})
        el.extend(p.to_element() for p in self.payload_types)
        el.extend(h.to_element() for h in self.header_extensions)
        if self.extmap_allow_mixed:
            el.append(element(qn(NS_HDREXT, "extmap-allow-mixed")))
        return el


@dataclass(frozen=True, slots=True)
class MediaSource(_Tuples):
    """`<media-source type id synthetic?>`: one named source (`<endpoint>-a0`, `jvb-v0`) with its
    SSMA `<source>`s and `<ssrc-group>`s."""

    type: str
    id: str
    sources: tuple[SourceElement, ...] = ()
    ssrc_groups: tuple[SsrcGroupElement, ...] = ()
    synthetic: bool = False

    TAG = qn(NS_COLIBRI2, "media-source")

    @classmethod
    def from_element(cls, el: Element) -> MediaSource:
        with _strict("<media-source>"):
            _expect(el, cls.TAG)
            media_type = _required(el, "type")
            if media_type not in MEDIA_TYPES:
                raise Colibri2ParseError(f"unknown media type {media_type!r}")
            return cls(
                type=media_type,
                id=_required(el, "id"),
                sources=sources_in(el),
                ssrc_groups=ssrc_groups_in(el),
                synthetic=_bool(el, "synthetic"),
            )

    def to_element(self) -> Element:
        el = element(self.TAG, attrs_omitting_false(type=self.type, id=self.id, synthetic=self.synthetic))
        el.extend(s.to_element() for s in self.sources)
        el.extend(g.to_element() for g in self.ssrc_groups)
        return el


@dataclass(frozen=True, slots=True)
class Sources(_Tuples):
    """`<sources>`: an endpoint's complete source set (it replaces the previous one; an empty
    `<sources/>` clears it), or, in an answer, the bridge's feedback sources."""

    media_sources: tuple[MediaSource, ...] = ()

    TAG = qn(NS_COLIBRI2, "sources")

    @classmethod
    def from_element(cls, el: Element) -> Sources:
        with _strict("<sources>"):
            _expect(el, cls.TAG)
            parsed = _each(el, "media-source", MediaSource.from_element)
            ids = [m.id for m in parsed]
            if len(set(ids)) != len(ids):
                raise Colibri2ParseError("two <media-source> share an id")
            return cls(parsed)

    def to_element(self) -> Element:
        return element(self.TAG, None, *(m.to_element() for m in self.media_sources))

    def __len__(self) -> int:
        return len(self.media_sources)

    def __iter__(self) -> Iterator[MediaSource]:
        return iter(self.media_sources)

    def of_type(self, media_type: str) -> tuple[MediaSource, ...]:
        return tuple(m for m in self.media_sources if m.type == media_type)

    def ssrcs(self) -> tuple[int, ...]:
        return tuple(s.ssrc for m in self.media_sources for s in m.sources)


@dataclass(frozen=True, slots=True)
class ForceMute:
    """`<force-mute audio? video?>`; false attributes are left out, so `ForceMute()` (an empty
    element) unmutes both."""

    audio: bool = False
    video: bool = False

    TAG = qn(NS_COLIBRI2, "force-mute")

    @classmethod
    def from_element(cls, el: Element) -> ForceMute:
        with _strict("<force-mute>"):
            _expect(el, cls.TAG)
            return cls(_bool(el, "audio"), _bool(el, "video"))

    def to_element(self) -> Element:
        return element(self.TAG, attrs_omitting_false(audio=self.audio, video=self.video))


# ---------------------------------------------------------------------------------------------
# Endpoints, relays, connects


INITIAL_LAST_N = qn(NS_COLIBRI2, "initial-last-n")


@dataclass(frozen=True, slots=True)
class Endpoint(_Tuples):
    """`<endpoint id create? expire? stats-id? muc-role? diarize?>`: a participant in a request, a
    relayed participant inside `<relay><endpoints>`, or the bridge's answer for one (then only
    `id`, `expire` and `transport` are used)."""

    id: str
    create: bool = False
    expire: bool = False
    stats_id: str | None = None
    muc_role: str | None = None
    diarize: bool = False
    medias: tuple[Media, ...] = ()
    transport: Transport | None = None
    sources: Sources | None = None
    force_mute: ForceMute | None = None
    capabilities: tuple[str, ...] = ()
    initial_last_n: int | None = None

    TAG = qn(NS_COLIBRI2, "endpoint")

    @property
    def visitor(self) -> bool:
        return self.muc_role == "visitor"

    def has_capability(self, name: str) -> bool:
        return name in self.capabilities

    @property
    def changes_state(self) -> bool:
        """True when the endpoint creates, or sets media, transport or sources: what makes a
        request more than a batch of expires / force-mutes (§2.4)."""
        return self.create or bool(self.medias) or self.transport is not None or self.sources is not None

    @classmethod
    def from_element(cls, el: Element) -> Endpoint:
        with _strict("<endpoint>"):
            _expect(el, cls.TAG)
            endpoint_id = _required(el, "id")
        with _strict(f"endpoint {endpoint_id!r}"):
            transport = _one(el, NS_COLIBRI2, "transport")
            sources = _one(el, NS_COLIBRI2, "sources")
            force_mute = _one(el, NS_COLIBRI2, "force-mute")
            last_n = _one(el, NS_COLIBRI2, "initial-last-n")
            medias = _each(el, "media", Media.from_element)
            if len({m.type for m in medias}) != len(medias):
                raise Colibri2ParseError("two <media> of the same type")
            return cls(
                id=endpoint_id,
                create=_bool(el, "create"),
                expire=_bool(el, "expire"),
                stats_id=el.get("stats-id") or None,
                muc_role=el.get("muc-role") or None,
                diarize=_bool(el, "diarize"),
                medias=medias,
                transport=_maybe(transport, Transport.from_element),
                sources=_maybe(sources, Sources.from_element),
                force_mute=_maybe(force_mute, ForceMute.from_element),
                capabilities=_each(el, "capability", _name),
                initial_last_n=_maybe(last_n, _required_last_n),
            )

    def to_element(self) -> Element:
        el = element(
            self.TAG,
            attrs_omitting_false(
                id=self.id,
                create=self.create,
                expire=self.expire,
                stats_id=self.stats_id,
                muc_role=self.muc_role,
                diarize=self.diarize,
            ),
        )
        el.extend(m.to_element() for m in self.medias)
        _append(el, self.transport, self.sources, self.force_mute)
        el.extend(_names("capability", self.capabilities))
        if self.initial_last_n is not None:
            el.append(element(INITIAL_LAST_N, {"value": str(self.initial_last_n)}))
        return el


def _required_last_n(el: Element) -> int:
    value = _int(el, "value", minimum=-1, maximum=2**31 - 1)
    if value is None:
        raise Colibri2ParseError("<initial-last-n> lacks the 'value' attribute")
    return value


@dataclass(frozen=True, slots=True)
class Relay(_Tuples):
    """`<relay id create? expire? mesh-id?>`: an Octo link to the bridge whose relay id is `id`,
    with the endpoints that live on that bridge (in `<endpoints>`)."""

    id: str
    create: bool = False
    expire: bool = False
    mesh_id: str | None = None
    medias: tuple[Media, ...] = ()
    transport: Transport | None = None
    endpoints: tuple[Endpoint, ...] = ()

    TAG = qn(NS_COLIBRI2, "relay")

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return _with_id(self.endpoints, endpoint_id)

    @classmethod
    def from_element(cls, el: Element) -> Relay:
        with _strict("<relay>"):
            _expect(el, cls.TAG)
            relay_id = _required(el, "id")
        with _strict(f"relay {relay_id!r}"):
            transport = _one(el, NS_COLIBRI2, "transport")
            endpoints = _one(el, NS_COLIBRI2, "endpoints")
            parsed = _each(endpoints, "endpoint", Endpoint.from_element)
            _no_duplicate_ids(parsed, "endpoint")
            return cls(
                id=relay_id,
                create=_bool(el, "create"),
                expire=_bool(el, "expire"),
                mesh_id=el.get("mesh-id"),
                medias=_each(el, "media", Media.from_element),
                transport=_maybe(transport, Transport.from_element),
                endpoints=parsed,
            )

    def to_element(self) -> Element:
        el = element(
            self.TAG,
            attrs_omitting_false(id=self.id, create=self.create, expire=self.expire, mesh_id=self.mesh_id),
        )
        el.extend(m.to_element() for m in self.medias)
        _append(el, self.transport)
        if self.endpoints:
            el.append(_wrapped("endpoints", (e.to_element() for e in self.endpoints)))
        return el


def _no_duplicate_ids(items: tuple[_Identified, ...], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise Colibri2ParseError(f"two <{what}> elements with id {item.id!r}")
        seen.add(item.id)


@dataclass(frozen=True, slots=True)
class Connect(_Tuples):
    """`<connect url protocol type audio? video? id? create? expire?>` in `<connects>`: a
    transcriber or translator the bridge dials over a web socket (§2.2). `ping` is
    (interval, timeout) in ms; `http_headers` (name, value) pairs."""

    url: str | None = None
    type: str | None = None
    protocol: str | None = "mediajson"
    audio: bool = False
    video: bool = False
    id: str | None = None
    create: bool = False
    expire: bool = False
    http_headers: tuple[tuple[str, str], ...] = ()
    ping: tuple[int, int] | None = None
    exports: tuple[str, ...] = ()
    requests: tuple[str, ...] = ()

    TAG = qn(NS_COLIBRI2, "connect")

    @property
    def key(self) -> str:
        """What identifies the connect: its id, else its URL."""
        return self.id or self.url or ""

    @classmethod
    def from_element(cls, el: Element) -> Connect:
        with _strict("<connect>"):
            _expect(el, cls.TAG)
            connect_type = el.get("type")
            if connect_type is not None and connect_type not in CONNECT_TYPES:
                raise Colibri2ParseError(f"unknown connect type {connect_type!r}")
            url, connect_id = el.get("url") or None, el.get("id") or None
            if url is None and connect_id is None:
                raise Colibri2ParseError("<connect> has neither a url nor an id")
            ping_el = _one(el, NS_COLIBRI2, "ping")
            ping = None
            if ping_el is not None:
                interval = _int(ping_el, "interval", minimum=0, maximum=2**31 - 1)
                timeout = _int(ping_el, "timeout", minimum=0, maximum=2**31 - 1)
                ping = (interval or 0, timeout or 0)
            exports = _one(el, NS_COLIBRI2, "exports")
            requests = _one(el, NS_COLIBRI2, "requests")
            return cls(
                url=url,
                type=connect_type,
                protocol=el.get("protocol"),
                audio=_bool(el, "audio"),
                video=_bool(el, "video"),
                id=connect_id,
                create=_bool(el, "create"),
                expire=_bool(el, "expire"),
                http_headers=tuple(
                    (_required(h, "name"), h.get("value", ""))
                    for h in children(el, NS_COLIBRI2, "http-header")
                ),
                ping=ping,
                exports=_each(exports, "export", _name),
                requests=_each(requests, "request", _name),
            )

    def to_element(self) -> Element:
        el = element(
            self.TAG,
            attrs_omitting_false(
                url=self.url, protocol=self.protocol, type=self.type, audio=self.audio,
                video=self.video, id=self.id, create=self.create, expire=self.expire,
            ),
        )
        el.extend(
            element(qn(NS_COLIBRI2, "http-header"), {"name": n, "value": v}) for n, v in self.http_headers
        )
        if self.ping is not None:
            el.append(element(qn(NS_COLIBRI2, "ping"),
                              {"interval": str(self.ping[0]), "timeout": str(self.ping[1])}))
        if self.exports:
            el.append(_wrapped("exports", _names("export", self.exports)))
        if self.requests:
            el.append(_wrapped("requests", _names("request", self.requests)))
        return el


# ---------------------------------------------------------------------------------------------
# The request and the answer


@dataclass(frozen=True, slots=True)
class ConferenceModify(_Tuples):
    """`<conference-modify xmlns='jitsi:colibri2' meeting-id name? create? expire?
    rtcstats-enabled? callstats-enabled?>`. `rtcstats_enabled` / `callstats_enabled` are None
    when absent (jicofo only writes rtcstats-enabled='false'). `sources` are conference-level
    (feedback) sources, which jicofo does not send today."""

    meeting_id: str
    name: str | None = None
    create: bool = False
    expire: bool = False
    rtcstats_enabled: bool | None = None
    callstats_enabled: bool | None = None
    endpoints: tuple[Endpoint, ...] = ()
    relays: tuple[Relay, ...] = ()
    connects: tuple[Connect, ...] = ()
    sources: Sources | None = None

    TAG = CONFERENCE_MODIFY

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return _with_id(self.endpoints, endpoint_id)

    def relay(self, relay_id: str) -> Relay | None:
        return _with_id(self.relays, relay_id)

    @classmethod
    def from_element(cls, el: Element) -> ConferenceModify:
        with _strict():
            _expect(el, cls.TAG)
            meeting_id = _required(el, "meeting-id")
            connects = _one(el, NS_COLIBRI2, "connects")
            sources = _one(el, NS_COLIBRI2, "sources")
            endpoints = _each(el, "endpoint", Endpoint.from_element)
            relays = _each(el, "relay", Relay.from_element)
            return cls(
                meeting_id=meeting_id,
                name=el.get("name") or None,
                create=_bool(el, "create"),
                expire=_bool(el, "expire"),
                rtcstats_enabled=bool_attr(el, "rtcstats-enabled"),
                callstats_enabled=bool_attr(el, "callstats-enabled"),
                endpoints=endpoints,
                relays=relays,
                connects=_each(connects, "connect", Connect.from_element),
                sources=_maybe(sources, Sources.from_element),
            )

    def to_element(self) -> Element:
        el = element(
            self.TAG,
            # The stats flags are written either way when set (unlike Colibri2's other flags).
            attrs_omitting_false(
                meeting_id=self.meeting_id, name=self.name, create=self.create, expire=self.expire
            ) | attrs(rtcstats_enabled=self.rtcstats_enabled, callstats_enabled=self.callstats_enabled),
        )
        el.extend(e.to_element() for e in self.endpoints)
        el.extend(r.to_element() for r in self.relays)
        if self.connects:
            el.append(_wrapped("connects", (c.to_element() for c in self.connects)))
        _append(el, self.sources)
        return el


@dataclass(frozen=True, slots=True)
class ConferenceModified(_Tuples):
    """`<conference-modified xmlns='jitsi:colibri2'>`: one `<endpoint>` / `<relay>` per entity of
    the request, in order, then the bridge's feedback `<sources>` (on creates)."""

    endpoints: tuple[Endpoint, ...] = ()
    relays: tuple[Relay, ...] = ()
    sources: Sources | None = None

    TAG = CONFERENCE_MODIFIED

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return _with_id(self.endpoints, endpoint_id)

    def relay(self, relay_id: str) -> Relay | None:
        return _with_id(self.relays, relay_id)

    @property
    def feedback_sources(self) -> Sources | None:
        return self.sources

    @classmethod
    def from_element(cls, el: Element) -> ConferenceModified:
        with _strict():
            _expect(el, cls.TAG)
            sources = _one(el, NS_COLIBRI2, "sources")
            return cls(
                endpoints=_each(el, "endpoint", Endpoint.from_element),
                relays=_each(el, "relay", Relay.from_element),
                sources=_maybe(sources, Sources.from_element),
            )

    def to_element(self) -> Element:
        el = element(self.TAG)
        el.extend(e.to_element() for e in self.endpoints)
        el.extend(r.to_element() for r in self.relays)
        _append(el, self.sources)
        return el
