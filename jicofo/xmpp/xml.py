"""XML for XMPP: element builders, a fast namespace-aware serializer and a hardened incremental
parser (expat, no DTD, no entities, bounded depth, attributes and element size).

The parser's limits are per stanza: a stanza over one of them is skipped as it streams in (nothing
of it is kept) and reported as a `SkippedElement`, and the stream goes on. Only input that breaks
the stream itself (not well-formed XML, a DTD or entity, a stream header or a single tag too large
to skip without buffering it) is an `XMLParseError`.

Elements are plain `xml.etree.ElementTree.Element`s with Clark-notation tags (`{ns}local`) and
Clark-notation namespaced attribute names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element
from xml.parsers import expat

XML_NS = "http://www.w3.org/XML/1998/namespace"

# ---------------------------------------------------------------------------------------------
# Builders and accessors


def qn(ns: str, local: str) -> str:
    """The Clark-notation name `{ns}local`."""
    return f"{{{ns}}}{local}"


def local_name(tag: str) -> str:
    """`{ns}local` -> `local`; a tag without namespace is returned as is."""
    return tag[tag.find("}") + 1 :] if tag[:1] == "{" else tag


def namespace(tag: str) -> str | None:
    """`{ns}local` -> `ns`; None for a tag without namespace."""
    if tag[:1] != "{":
        return None
    end = tag.find("}")
    return tag[1:end] if end > 0 else None


def element(
    tag: str,
    attrs: dict[str, str] | None = None,
    *children: Element,
    text: str | None = None,
) -> Element:
    """Build an element in one expression: `element(qn(NS, "x"), {"a": "1"}, child, text="t")`."""
    el = Element(tag, attrs or {})
    if children:
        el.extend(children)
    if text is not None:
        el.text = text
    return el


def find_child(el: Element, ns: str | None, local: str) -> Element | None:
    """The first direct child named `{ns}local` (`local` when ns is None), or None."""
    tag = local if ns is None else f"{{{ns}}}{local}"
    for child in el:
        if child.tag == tag:
            return child
    return None


def children(el: Element, ns: str | None, local: str) -> list[Element]:
    """Every direct child named `{ns}local` (`local` when ns is None), in document order."""
    tag = local if ns is None else f"{{{ns}}}{local}"
    return [child for child in el if child.tag == tag]


# ---------------------------------------------------------------------------------------------
# Serializer

# Characters XML 1.0 forbids: C0 controls except \t \n \r, lone surrogates, U+FFFE and U+FFFF.
_INVALID_CHARS = "\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
_INVALID_RE = re.compile(f"[{_INVALID_CHARS}]")
_TEXT_SPECIAL_RE = re.compile(f"[&<>{_INVALID_CHARS}]")
_ATTR_SPECIAL_RE = re.compile(f'[&<>"\t\n\r{_INVALID_CHARS}]')
# Conservative NCName check: a letter or '_' first, then letters, digits, '_', '-', '.', U+00B7.
_NCNAME_RE = re.compile(r"[^\W\d][\w.\-\u00b7]*\Z")

# Tag/attribute name -> (namespace or "", local name), filled on first sight; names already
# validated. Bounded so that a stream of unique names cannot grow it without limit.
_NAME_CACHE: dict[str, tuple[str, str]] = {}
_NAME_CACHE_MAX = 4096


def _check_chars(value: str, where: str) -> None:
    bad = _INVALID_RE.search(value)
    if bad is not None:
        raise ValueError(
            f"character U+{ord(bad.group()):04X} at offset {bad.start()} in {where} "
            "is not allowed in XML 1.0"
        )


def escape_text(value: str) -> str:
    """Escape character data (& < >); raise ValueError for characters XML 1.0 forbids."""
    if _TEXT_SPECIAL_RE.search(value) is None:
        return value
    _check_chars(value, "text")
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(value: str) -> str:
    """Escape a double-quoted attribute value (& < > " and \\t \\n \\r as references)."""
    if _ATTR_SPECIAL_RE.search(value) is None:
        return value
    _check_chars(value, "an attribute value")
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\t", "&#9;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
    )


def _split_name(name: object, kind: str) -> tuple[str, str]:
    cached = _NAME_CACHE.get(name) if isinstance(name, str) else None
    if cached is not None:
        return cached
    if not isinstance(name, str):
        raise ValueError(f"cannot serialize {kind} name {name!r} (comments and PIs unsupported)")
    if name[:1] == "{":
        end = name.find("}")
        if end < 0:
            raise ValueError(f"malformed Clark name {name!r}")
        ns, local = name[1:end], name[end + 1 :]
        if not ns:
            raise ValueError(f"empty namespace in {kind} name {name!r}")
        _check_chars(ns, f"the namespace of {kind} {name!r}")
    else:
        ns, local = "", name
    if _NCNAME_RE.match(local) is None or (kind == "attribute" and not ns and local == "xmlns"):
        raise ValueError(f"{local!r} is not a valid XML {kind} name")
    if len(_NAME_CACHE) >= _NAME_CACHE_MAX:
        _NAME_CACHE.clear()
    _NAME_CACHE[name] = (ns, local)
    return ns, local


def serialize(el: Element, default_ns: str | None = None) -> str:
    """Serialize `el` as XML text. `default_ns` is the default namespace in scope where the
    element is written (for a stanza on a client stream, 'jabber:client'): elements in it get
    no xmlns. Raises ValueError for characters or names that XML cannot carry."""
    out: list[str] = []
    _write(el, default_ns or "", out)
    return "".join(out)


def _write(el: Element, parent_ns: str, out: list[str]) -> None:
    ns, local = _split_name(el.tag, "element")
    if ns == parent_ns:
        out.append(f"<{local}")
    else:
        out.append(f'<{local} xmlns="{escape_attribute(ns)}"')
    if el.attrib:
        _write_attributes(el, out)
    text = el.text
    if not text and len(el) == 0:
        out.append("/>")
        return
    out.append(">")
    if text:
        out.append(escape_text(text))
    for child in el:
        _write(child, ns, out)
        if child.tail:
            out.append(escape_text(child.tail))
    out.append(f"</{local}>")


def _write_attributes(el: Element, out: list[str]) -> None:
    prefixes: dict[str, str] | None = None
    for name, value in el.attrib.items():
        ns, local = _split_name(name, "attribute")
        if not isinstance(value, str):
            raise ValueError(f"attribute {name!r} of {el.tag!r} has non-string value {value!r}")
        if not ns:
            out.append(f' {local}="{escape_attribute(value)}"')
            continue
        if ns == XML_NS:
            prefix = "xml"
        else:
            if prefixes is None:
                prefixes = {}
            prefix = prefixes.get(ns, "")
            if not prefix:
                prefix = prefixes[ns] = f"ns{len(prefixes)}"
                out.append(f' xmlns:{prefix}="{escape_attribute(ns)}"')
        out.append(f' {prefix}:{local}="{escape_attribute(value)}"')


# ---------------------------------------------------------------------------------------------
# Hardened parser


@dataclass(frozen=True)
class ParserLimits:
    """Bounds on what a peer may send. `max_depth` counts a stanza's own nesting (the stanza
    element is depth 1; the stream root is not counted).

    A stanza over `max_stanza_bytes`, `max_depth`, `max_attributes` (on any of its elements) or
    `max_elements` is skipped, not fatal. `max_tag_bytes` bounds one start tag with its attributes:
    expat must hold a tag whole before it can say where it ends, so a larger one cannot be skipped
    in bounded memory and breaks the stream. Prosody never relays such a tag at its default limits
    (c2s 256 KiB, s2s and components 512 KiB; re-escaping ' and " as &apos; / &quot; grows a value
    at most sixfold, so 3 MiB at worst).
    """

    max_stanza_bytes: int = 512 * 1024
    max_depth: int = 64
    max_attributes: int = 64
    max_header_bytes: int = 16 * 1024
    # Each parsed element costs ~30x its wire size in memory, so the byte limit alone lets a
    # stanza of many tiny elements take far more memory than it weighs. 20,000 is ample for a
    # Jingle offer of a large conference (about five elements per source).
    max_elements: int = 20_000
    max_tag_bytes: int = 4 * 1024 * 1024


class XMLParseError(ValueError):
    """Input that breaks the XML rules XMPP allows. `condition` is the RFC 6120 stream error
    condition it calls for (not-well-formed, restricted-xml, policy-violation, ...)."""

    def __init__(self, condition: str, text: str) -> None:
        self.condition = condition
        self.text = text
        super().__init__(f"{condition}: {text}")


@dataclass(frozen=True, slots=True)
class RootOpened:
    """The start tag of the document root (the stream header). `default_ns` is the default
    namespace it declares, if any."""

    tag: str
    attrs: dict[str, str]
    default_ns: str | None


@dataclass(frozen=True, slots=True)
class RootClosed:
    """The end tag of the document root."""


# The attributes of a skipped stanza's start tag that are kept: enough to log who sent it and to
# answer an IQ, nothing of its payload.
ROUTING_ATTRIBUTES = ("id", "type", "from", "to")


@dataclass(frozen=True, slots=True)
class SkippedElement:
    """A top-level element (a stanza) that broke a per-stanza limit and was skipped whole.
    `attrs` holds only its ROUTING_ATTRIBUTES; `reason` says which limit it broke."""

    tag: str
    attrs: dict[str, str]
    reason: str


ParsedItem = Element | RootOpened | RootClosed | SkippedElement


def _routing(attrs: dict[str, str]) -> dict[str, str]:
    return {name: attrs[name] for name in ROUTING_ATTRIBUTES if name in attrs}

_SLICE_BYTES = 64 * 1024
_INTERN_MAX = 4096
_ENTITY_ERRORS = frozenset(
    expat.errors.codes[message]
    for message in (
        expat.errors.XML_ERROR_UNDEFINED_ENTITY,
        expat.errors.XML_ERROR_RECURSIVE_ENTITY_REF,
        expat.errors.XML_ERROR_BINARY_ENTITY_REF,
        expat.errors.XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF,
        expat.errors.XML_ERROR_EXTERNAL_ENTITY_HANDLING,
        expat.errors.XML_ERROR_ENTITY_DECLARED_IN_PE,
        expat.errors.XML_ERROR_NOT_STANDALONE,
    )
)
# A markup declaration (<!DOCTYPE, <!ENTITY, ...) where expat found a syntax error.
_DECLARATION_RE = re.compile(rb"<!\s*[A-Z]")


def _restricted(what: str) -> XMLParseError:
    return XMLParseError("restricted-xml", f"{what} not allowed in XMPP")


class ElementStreamParser:
    """Incremental, hardened expat wrapper.

    Elements at `frame_depth` (1 for a stream: the children of the stream root; 0 for a lone
    fragment) are built into Elements and appended to the output list given to `feed`;
    the root's start and end tags are reported as RootOpened / RootClosed when frame_depth is 1.
    An element at `frame_depth` that breaks a per-stanza limit is dropped as soon as the breach is
    seen; the rest of it is parsed without building anything, and a SkippedElement takes its place
    in the output. A breach of the stream's own rules raises XMLParseError; items appended before
    it stay in the output list.
    """

    def __init__(self, limits: ParserLimits, *, frame_depth: int) -> None:
        self._limits = limits
        self._frame_depth = frame_depth
        self._intern: dict[str, str] = {}
        parser = expat.ParserCreate("UTF-8", "}", intern=self._intern)
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        if hasattr(parser, "SetReparseDeferralEnabled"):
            # Deferral would hold back a completed stanza until more bytes arrive.
            parser.SetReparseDeferralEnabled(False)
        parser.buffer_text = False
        parser.StartElementHandler = self._on_start
        parser.EndElementHandler = self._on_end
        parser.CharacterDataHandler = self._on_text
        parser.StartNamespaceDeclHandler = self._on_namespace_decl
        parser.StartDoctypeDeclHandler = self._on_doctype
        parser.EntityDeclHandler = self._on_entity_decl
        parser.UnparsedEntityDeclHandler = self._on_entity_decl
        parser.NotationDeclHandler = self._on_entity_decl
        parser.ExternalEntityRefHandler = self._on_external_entity
        parser.SkippedEntityHandler = self._on_skipped_entity
        parser.ProcessingInstructionHandler = self._on_processing_instruction
        parser.CommentHandler = self._on_comment
        self._parser = parser

        self._out: list[ParsedItem] = []
        self._depth = 0  # open elements, root included
        self._root_seen = frame_depth == 0
        self._root_default_ns: str | None = None
        self._pending_ns_decls = 0
        self._elements = 0
        self._stack: list[Element] = []
        self._text: list[str] = []
        self._tail_target: Element | None = None
        self._fed = 0  # bytes given to expat so far
        self._unit_start = 0  # byte offset where the current stanza (or gap) began
        self._previous_tail = b""
        self._current_slice: memoryview | bytes = b""
        self._names: dict[str, str] = {}
        # While a stanza is skipped: why, and its tag and routing attributes.
        self._skip_reason: str | None = None
        self._skip_tag = ""
        self._skip_attrs: dict[str, str] = {}
        # A start tag still being read is already over the stanza limit: skip it once it is whole.
        self._skip_next: str | None = None

    # -- input --------------------------------------------------------------------------------

    def feed(self, data: bytes, out: list[ParsedItem]) -> None:
        self._out = out
        view = memoryview(data)
        for start in range(0, len(view), _SLICE_BYTES):
            self._parse(view[start : start + _SLICE_BYTES], final=False)
            self._check_pending()

    def finish(self, out: list[ParsedItem]) -> None:
        """Declare the end of the input (for a lone fragment): an incomplete element fails."""
        self._out = out
        self._parse(b"", final=True)

    def _parse(self, chunk: memoryview | bytes, *, final: bool) -> None:
        self._current_slice = chunk
        try:
            self._parser.Parse(chunk, final)
        except XMLParseError:
            raise
        except expat.ExpatError as exc:
            raise self._classify(exc) from None
        except UnicodeError as exc:
            raise XMLParseError("not-well-formed", f"invalid character data: {exc}") from None
        finally:
            self._fed += len(chunk)
            self._previous_tail = (self._previous_tail + bytes(chunk[-16:]))[-16:]
        if len(self._intern) > _INTERN_MAX:
            self._intern.clear()

    def _classify(self, exc: expat.ExpatError) -> XMLParseError:
        if exc.code in _ENTITY_ERRORS:
            return _restricted("entity references other than the predefined ones are")
        message = expat.errors.messages.get(exc.code, str(exc))
        base = self._fed - len(self._previous_tail)
        window = self._previous_tail + bytes(self._current_slice)
        offset = self._parser.ErrorByteIndex - base
        if 0 <= offset <= len(window) and _DECLARATION_RE.search(
            window[max(0, offset - 3) : offset + 12]
        ):
            return _restricted("DTD and markup declarations are")
        return XMLParseError(
            "not-well-formed", f"{message} at line {exc.lineno}, column {exc.offset}"
        )

    def _check_pending(self) -> None:
        limits = self._limits
        if not self._root_seen:
            if self._fed > limits.max_header_bytes:
                raise XMLParseError(
                    "policy-violation", f"stream header exceeds {limits.max_header_bytes} bytes"
                )
            return
        # Outside a handler expat's index is where its unconsumed input starts: what lies beyond
        # is one token (a tag) that it keeps whole until it ends.
        if self._fed - self._parser.CurrentByteIndex > limits.max_tag_bytes:
            raise XMLParseError("policy-violation", f"a tag exceeds {limits.max_tag_bytes} bytes")
        if self._skip_reason is None and self._fed - self._unit_start > limits.max_stanza_bytes:
            if self._depth > self._frame_depth:
                self._skip_open_stanza(self._too_big())
            else:
                self._skip_next = self._too_big()

    def _too_big(self) -> str:
        return f"stanza exceeds {self._limits.max_stanza_bytes} bytes"

    def _skip_open_stanza(self, reason: str) -> None:
        """Drop the stanza being built; the rest of it is only counted through."""
        head = self._stack[0]
        self._begin_skip(reason, head.tag, head.attrib)
        self._stack.clear()
        self._text.clear()
        self._tail_target = None

    def _begin_skip(self, reason: str, tag: str, attrs: dict[str, str]) -> None:
        self._skip_reason = reason
        self._skip_tag = tag
        self._skip_attrs = _routing(attrs)
        self._skip_next = None

    def _end_skip(self, position: int) -> None:
        self._out.append(SkippedElement(self._skip_tag, self._skip_attrs, self._skip_reason or ""))
        self._skip_reason = None
        self._skip_attrs = {}
        self._unit_start = position

    # -- expat callbacks ---------------------------------------------------------------------

    def _name(self, raw: str) -> str:
        name = self._names.get(raw)
        if name is None:
            name = "{" + raw if "}" in raw else raw
            if len(self._names) >= _INTERN_MAX:
                self._names.clear()
            self._names[raw] = name
        return name

    def _on_namespace_decl(self, prefix: str | None, uri: str) -> None:
        self._pending_ns_decls += 1
        if self._depth == 0 and prefix is None:
            self._root_default_ns = uri

    def _on_start(self, raw_tag: str, raw_attrs: dict[str, str]) -> None:
        limits = self._limits
        depth = self._depth
        frame_depth = self._frame_depth
        self._depth = depth + 1
        if self._skip_reason is not None:
            self._pending_ns_decls = 0
            return
        attributes = len(raw_attrs) + self._pending_ns_decls
        self._pending_ns_decls = 0
        if depth < frame_depth:
            if attributes > limits.max_attributes:
                raise XMLParseError(
                    "policy-violation", f"more than {limits.max_attributes} attributes on an element"
                )
            self._root_seen = True
            self._unit_start = self._parser.CurrentByteIndex
            self._out.append(RootOpened(self._name(raw_tag), self._attrs(raw_attrs),
                                        self._root_default_ns))
            return
        if depth > frame_depth:
            # Inside a stanza: the common path, kept short.
            if (depth - frame_depth < limits.max_depth and attributes <= limits.max_attributes
                    and self._elements < limits.max_elements
                    and self._parser.CurrentByteIndex - self._unit_start <= limits.max_stanza_bytes):
                el = Element(self._names.get(raw_tag) or self._name(raw_tag),
                             self._attrs(raw_attrs) if raw_attrs else raw_attrs)
                self._elements += 1
                if self._text:
                    self._flush_text()
                self._stack[-1].append(el)
                self._stack.append(el)
                self._tail_target = None
                return
            if depth - frame_depth + 1 > limits.max_depth:
                reason = f"nesting deeper than {limits.max_depth}"
            elif attributes > limits.max_attributes:
                reason = f"more than {limits.max_attributes} attributes on an element"
            elif self._elements >= limits.max_elements:
                reason = f"more than {limits.max_elements} elements in a stanza"
            else:
                reason = self._too_big()
            self._skip_open_stanza(reason)
            return
        # A stanza starts.
        tag = self._names.get(raw_tag) or self._name(raw_tag)
        skip = self._skip_next
        if limits.max_depth < 1:
            skip = f"nesting deeper than {limits.max_depth}"
        elif attributes > limits.max_attributes:
            skip = f"more than {limits.max_attributes} attributes on an element"
        if skip is not None:
            if self._skip_next is None:
                self._unit_start = self._parser.CurrentByteIndex
            self._begin_skip(skip, tag, raw_attrs)
            return
        el = Element(tag, self._attrs(raw_attrs) if raw_attrs else raw_attrs)
        self._unit_start = self._parser.CurrentByteIndex
        self._text.clear()
        self._elements = 1
        self._stack.append(el)
        self._tail_target = None

    def _attrs(self, raw_attrs: dict[str, str]) -> dict[str, str]:
        # Namespaced attributes (mostly xml:lang) are rare: only then build a renamed dict.
        if "}" in "".join(raw_attrs):
            name = self._name
            return {name(k): v for k, v in raw_attrs.items()}
        return raw_attrs

    def _on_end(self, raw_tag: str) -> None:
        depth = self._depth = self._depth - 1
        if depth < self._frame_depth:
            self._out.append(RootClosed())
            return
        if self._skip_reason is not None:
            if depth == self._frame_depth:
                self._end_skip(self._parser.CurrentByteIndex)
            return
        if self._text:
            self._flush_text()
        el = self._stack.pop()
        if depth == self._frame_depth:
            position = self._parser.CurrentByteIndex
            self._tail_target = None
            if self._over(position):
                self._begin_skip(self._too_big(), el.tag, el.attrib)
                self._end_skip(position)
                return
            self._unit_start = position
            self._out.append(el)
        else:
            self._tail_target = el

    def _on_text(self, data: str) -> None:
        if self._depth <= self._frame_depth:
            # Between stanzas (whitespace keepalives): dropped, and not counted against the
            # next stanza.
            self._unit_start = self._parser.CurrentByteIndex + len(data)
            self._skip_next = None
            return
        if self._skip_reason is not None:
            return
        self._text.append(data)
        if self._over(self._parser.CurrentByteIndex + len(data)):
            self._skip_open_stanza(self._too_big())

    def _over(self, position: int) -> bool:
        return position - self._unit_start > self._limits.max_stanza_bytes

    def _flush_text(self) -> None:
        text = "".join(self._text)
        self._text.clear()
        target = self._tail_target
        if target is not None:
            target.tail = text
        else:
            self._stack[-1].text = text

    def _on_doctype(self, *_args: object) -> None:
        raise _restricted("a DOCTYPE is")

    def _on_entity_decl(self, *_args: object) -> None:
        raise _restricted("entity and notation declarations are")

    def _on_external_entity(self, *_args: object) -> int:
        raise _restricted("external entities are")

    def _on_skipped_entity(self, *_args: object) -> None:
        raise _restricted("entity references other than the predefined ones are")

    def _on_processing_instruction(self, *_args: object) -> None:
        raise _restricted("processing instructions are")

    def _on_comment(self, _data: str) -> None:
        raise _restricted("comments are")


def parse_fragment(data: str | bytes, limits: ParserLimits | None = None) -> Element:
    """Parse one standalone element with the stream parser's hardening.
    Raises XMLParseError(condition, text)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    parser = ElementStreamParser(limits or ParserLimits(), frame_depth=0)
    out: list[ParsedItem] = []
    parser.feed(raw, out)
    parser.finish(out)
    for item in out:
        if isinstance(item, Element):
            return item
        if isinstance(item, SkippedElement):
            raise XMLParseError("policy-violation", item.reason)
    raise XMLParseError("not-well-formed", "no element found")
