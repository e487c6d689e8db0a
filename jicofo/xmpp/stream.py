"""The sans-IO XMPP stream core: feed it bytes, get events; give it elements, get bytes.

No I/O and no trio here (the h11/wsproto pattern). The core owns the hardened incremental parser
(see `xml.ElementStreamParser`) and the stream state: header / `<open/>`, stanzas, stream errors,
close. TCP framing is RFC 6120 (`<stream:stream>`), WebSocket framing is RFC 7395 (`<open/>`
and `<close/>`, one element per frame).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from .errors import NS_STREAMS, STREAM_CONDITIONS, NotConnected, StanzaTooLarge
from .xml import (
    XML_NS,
    ElementStreamParser,
    ParsedItem,
    ParserLimits,
    RootClosed,
    RootOpened,
    SkippedElement,
    XMLParseError,
    escape_attribute,
    escape_text,
    local_name,
    namespace,
    serialize,
)

NS_STREAM = "http://etherx.jabber.org/streams"
NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"

_STREAM_ROOT = f"{{{NS_STREAM}}}stream"
_FEATURES = f"{{{NS_STREAM}}}features"
_STREAM_ERROR = f"{{{NS_STREAM}}}error"
_WS_OPEN = f"{{{NS_FRAMING}}}open"
_WS_CLOSE = f"{{{NS_FRAMING}}}close"
_ERROR_TEXT = f"{{{NS_STREAMS}}}text"
# In WebSocket mode the frames are parsed as children of this synthetic root.
_WS_WRAPPER = "jicofo-websocket-frames"
DEFAULT_LIMITS = ParserLimits()

__all__ = [
    "Event",
    "Features",
    "Framing",
    "ParserLimits",
    "ProtocolViolation",
    "StanzaReceived",
    "StanzaRejected",
    "StreamClosed",
    "StreamErrorReceived",
    "StreamOpened",
    "XmlStream",
]


class Framing(enum.Enum):
    TCP = "tcp"
    WEBSOCKET = "websocket"


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamOpened:
    """The peer's stream header (TCP) or `<open/>` (WebSocket)."""

    attrs: dict[str, str]

    @property
    def id(self) -> str | None:
        return self.attrs.get("id")

    @property
    def version(self) -> str | None:
        # XEP-0114 component streams carry no version at all.
        return self.attrs.get("version")

    @property
    def from_(self) -> str | None:
        return self.attrs.get("from")

    @property
    def lang(self) -> str | None:
        return self.attrs.get(f"{{{XML_NS}}}lang")


@dataclass(frozen=True)
class Features:
    element: Element


@dataclass(frozen=True)
class StanzaReceived:
    """A top-level element: a stanza, or a nonza such as SASL `<success/>` or XEP-0198 `<r/>`."""

    element: Element


@dataclass(frozen=True)
class StanzaRejected:
    """A stanza that broke a per-stanza limit and was skipped: nothing of its content is kept.
    `attrs` holds its id, type, from and to (when it had them), enough to answer an IQ."""

    tag: str
    attrs: dict[str, str]
    reason: str

    @property
    def kind(self) -> str:
        """`iq`, `message`, `presence` (or another top-level element's local name)."""
        return local_name(self.tag)


@dataclass(frozen=True)
class StreamErrorReceived:
    condition: str
    text: str | None
    element: Element


@dataclass(frozen=True)
class StreamClosed:
    """The peer closed its side of the stream."""


@dataclass(frozen=True)
class ProtocolViolation:
    """The input broke the rules. The core is now closed; send `data_to_send` (stream error and
    stream close) and then close the transport."""

    condition: str
    text: str
    data_to_send: bytes


Event = (
    StreamOpened
    | Features
    | StanzaReceived
    | StanzaRejected
    | StreamErrorReceived
    | StreamClosed
    | ProtocolViolation
)


def parse_stream_error(el: Element) -> StreamErrorReceived:
    """Read condition and text out of a `<stream:error/>` (lenient: never raises)."""
    condition: str | None = None
    text: str | None = None
    for child in el:
        if not isinstance(child.tag, str) or namespace(child.tag) != NS_STREAMS:
            continue
        if child.tag == _ERROR_TEXT:
            text = child.text
        elif condition is None:
            condition = local_name(child.tag)
    return StreamErrorReceived(condition or "undefined-condition", text, el)


# -- the core ---------------------------------------------------------------------------------


class XmlStream:
    """One XMPP stream seen from the initiating side (we always connect to the server)."""

    def __init__(
        self,
        *,
        content_ns: str = "jabber:client",
        framing: Framing = Framing.TCP,
        limits: ParserLimits = DEFAULT_LIMITS,
        max_send_bytes: int | None = None,
    ) -> None:
        self.content_ns = content_ns
        self.framing = framing
        self.limits = limits
        self.max_send_bytes = max_send_bytes
        self._header_sent = False
        self._reset()

    def _reset(self) -> None:
        self._parser = ElementStreamParser(self.limits, frame_depth=1)
        self._peer_opened = False
        self._input_done = False  # peer closed, violation, or our stream error
        self._output_done = False  # our close or stream error sent
        if self.framing is Framing.WEBSOCKET:
            wrapper = (
                f'<{_WS_WRAPPER} xmlns="{escape_attribute(self.content_ns)}" '
                f'xmlns:stream="{NS_STREAM}">'
            )
            self._parser.feed(wrapper.encode(), [])

    @property
    def closed(self) -> bool:
        """True once our side is closed (close() or error() called, or a violation occurred)."""
        return self._output_done

    @property
    def peer_closed(self) -> bool:
        """True once no more events will come (the peer closed, or the stream broke)."""
        return self._input_done

    # -- output -----------------------------------------------------------------------------

    def open(
        self,
        to: str,
        from_: str | None = None,
        version: str | None = "1.0",
        lang: str | None = "en",
    ) -> bytes:
        """(Re)start the stream: reset the parser and return our header (or `<open/>`)."""
        self._reset()
        self._header_sent = True
        attrs = [f'to="{escape_attribute(to)}"']
        if from_ is not None:
            attrs.append(f'from="{escape_attribute(from_)}"')
        if version is not None:
            attrs.append(f'version="{escape_attribute(version)}"')
        if lang is not None:
            attrs.append(f'xml:lang="{escape_attribute(lang)}"')
        if self.framing is Framing.WEBSOCKET:
            return f'<open xmlns="{NS_FRAMING}" {" ".join(attrs)}/>'.encode()
        return (
            f"<?xml version='1.0'?><stream:stream xmlns=\"{escape_attribute(self.content_ns)}\" "
            f'xmlns:stream="{NS_STREAM}" {" ".join(attrs)}>'
        ).encode()

    def send(self, el: Element) -> bytes:
        """Serialize one stanza or nonza. Raises NotConnected once our side is closed,
        ValueError for an element XML cannot carry and StanzaTooLarge for one over
        `max_send_bytes`."""
        if self._output_done:
            raise NotConnected("the stream is closed")
        # Each WebSocket frame must stand alone (RFC 7395), so the namespace is always explicit.
        default_ns = None if self.framing is Framing.WEBSOCKET else self.content_ns
        data = serialize(el, default_ns).encode()
        if self.max_send_bytes is not None and len(data) > self.max_send_bytes:
            raise StanzaTooLarge(local_name(el.tag), len(data), self.max_send_bytes)
        return data

    def close(self) -> bytes:
        """Our stream footer (or `<close/>`); b'' if our side is already closed."""
        if self._output_done:
            return b""
        self._output_done = True
        return self._footer()

    def error(self, condition: str, text: str | None = None) -> bytes:
        """A stream error followed by our close; the core moves to closed."""
        if condition not in STREAM_CONDITIONS:
            raise ValueError(f"{condition!r} is not a stream error condition")
        self._input_done = True
        if self._output_done:
            return b""
        self._output_done = True
        parts = [
            f'<stream:error xmlns:stream="{NS_STREAM}"><{condition} xmlns="{NS_STREAMS}"/>'
        ]
        if text:
            parts.append(f'<text xmlns="{NS_STREAMS}">{escape_text(_printable(text))}</text>')
        parts.append("</stream:error>")
        return "".join(parts).encode() + self._footer()

    def _footer(self) -> bytes:
        if self.framing is Framing.WEBSOCKET:
            return f'<close xmlns="{NS_FRAMING}"/>'.encode()
        return b"</stream:stream>" if self._header_sent else b""

    # -- input ------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Parse bytes from the peer (in WebSocket mode: one text frame). Never raises."""
        if self._input_done:
            return []
        items: list[ParsedItem] = []
        failure: XMLParseError | None = None
        try:
            self._parser.feed(data, items)
        except XMLParseError as exc:
            failure = exc
        except Exception as exc:  # the contract: bad input never raises
            failure = XMLParseError("internal-server-error", f"parser failure: {exc!r}")
        events: list[Event] = []
        try:
            for item in items:
                if self._input_done:
                    break
                events.append(self._to_event(item))
        except XMLParseError as exc:
            # A semantic violation comes before anything the parser found later.
            failure = exc
        if failure is not None and not self._input_done:
            events.append(self._violation(failure))
        return events

    def _violation(self, failure: XMLParseError) -> ProtocolViolation:
        data = self.error(failure.condition, failure.text)
        return ProtocolViolation(failure.condition, failure.text, data)

    def _to_event(self, item: ParsedItem) -> Event:
        if isinstance(item, RootOpened):
            return self._root_opened(item)
        if isinstance(item, SkippedElement):
            return self._skipped(item)
        if isinstance(item, RootClosed):
            if self.framing is Framing.WEBSOCKET:
                raise XMLParseError("not-well-formed", "unexpected end tag")
            self._input_done = True
            return StreamClosed()
        return self._top_level(item)

    def _root_opened(self, root: RootOpened) -> Event:
        if self.framing is Framing.WEBSOCKET:
            raise AssertionError("the WebSocket wrapper root is fed before any peer data")
        if root.tag != _STREAM_ROOT:
            raise XMLParseError(
                "invalid-namespace", f"expected a stream header <stream:stream>, got {root.tag}"
            )
        if root.default_ns != self.content_ns:
            raise XMLParseError(
                "invalid-namespace",
                f"expected content namespace {self.content_ns}, got {root.default_ns}",
            )
        self._peer_opened = True
        return StreamOpened(root.attrs)

    def _skipped(self, item: SkippedElement) -> Event:
        framing_tags = (_WS_OPEN, _WS_CLOSE) if self.framing is Framing.WEBSOCKET else ()
        if item.tag in (_FEATURES, _STREAM_ERROR, *framing_tags) or not self._peer_opened:
            # Only stanzas may be refused one by one; the stream's own elements cannot.
            raise XMLParseError("policy-violation", f"{local_name(item.tag)}: {item.reason}")
        return StanzaRejected(item.tag, item.attrs, item.reason)

    def _top_level(self, el: Element) -> Event:
        tag = el.tag
        if self.framing is Framing.WEBSOCKET:
            if tag == _WS_OPEN:
                self._peer_opened = True
                return StreamOpened(dict(el.attrib))
            if tag == _WS_CLOSE:
                self._input_done = True
                return StreamClosed()
            if not self._peer_opened:
                condition = (
                    "invalid-namespace" if local_name(tag) in ("open", "stream") else "bad-format"
                )
                raise XMLParseError(condition, f"expected <open/> first, got {tag}")
        if tag == _FEATURES:
            return Features(el)
        if tag == _STREAM_ERROR:
            return parse_stream_error(el)
        return StanzaReceived(el)


def _printable(text: str) -> str:
    """Our own diagnostics may quote peer input: keep only what XML can carry."""
    return "".join(
        ch if ch in "\t\n\r" or ch >= " " and not 0xD800 <= ord(ch) <= 0xDFFF else "?"
        for ch in text
    ).replace("\ufffe", "?").replace("\uffff", "?")
