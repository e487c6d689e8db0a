"""XMPP addresses (RFC 7622): parsing, validation and normalisation.

`JID.parse` is called for every stanza, so parsed results are cached; a `JID` is immutable, so
sharing cached instances is safe. Equality and hashing use the normalised parts, which every
constructor produces (direct `JID(...)` construction normalises and validates too).

The standard library has no PRECIS (RFC 8264) implementation, so the rules are approximated:

- localpart: NFKC then casefold, repeated until stable (close to the UsernameCaseMapped profile);
  refused if empty, longer than 1023 UTF-8 bytes, or containing ``" & ' / : < > @``, whitespace,
  control characters or surrogates. Unassigned code points are accepted, because the stdlib's
  Unicode tables may be older than a peer's.
- domainpart: NFKC, IDNA full stops mapped to ".", one trailing dot removed, lower-cased. An IPv4
  literal or a bracketed IPv6 literal (stored in compressed form) is accepted; otherwise each
  label is either 1-63 ASCII letters/digits/hyphens (no leading or trailing hyphen) or a non-ASCII
  label that the stdlib ``idna`` codec (IDNA2003, not IDNA2008) accepts; A-labels ("xn--...")
  are converted to their Unicode form so both spellings compare equal. At most 1023 UTF-8 bytes.
- resourcepart: NFC (close to the OpaqueString profile); 1-1023 UTF-8 bytes, no control
  characters or surrogates. It may contain "@" and "/". Other characters are accepted, since MUC
  nicknames live here and refusing a client's newer emoji would lock that participant out.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from dataclasses import dataclass

MAX_PART_BYTES = 1023
MAX_LABEL_CHARS = 63

_LOCAL_FORBIDDEN = frozenset("\"&'/:<>@")
_ASCII_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
# Full stops the IDNA specifications treat like "." (RFC 3490 §3.1).
_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


class InvalidJID(ValueError):
    """A string or part that is not a valid JID (the message names the part)."""


@dataclass(frozen=True, slots=True)
class JID:
    local: str | None
    domain: str
    resource: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "local", None if self.local is None else _local(self.local))
        object.__setattr__(self, "domain", _domain(self.domain))
        object.__setattr__(
            self, "resource", None if self.resource is None else _resource(self.resource)
        )

    @classmethod
    def parse(cls, text: str) -> JID:
        """Parse and normalise `text`, raising InvalidJID when it is not a valid JID."""
        return _parse_cached(text)

    @classmethod
    def make(cls, local: str | None, domain: str, resource: str | None = None) -> JID:
        """Build a JID from its parts, normalising and validating each one."""
        return cls(local, domain, resource)

    @classmethod
    def _trusted(cls, local: str | None, domain: str, resource: str | None) -> JID:
        # For parts that are already normalised: skips re-validation on hot paths.
        jid = object.__new__(cls)
        object.__setattr__(jid, "local", local)
        object.__setattr__(jid, "domain", domain)
        object.__setattr__(jid, "resource", resource)
        return jid

    @property
    def bare(self) -> JID:
        """This JID without its resource."""
        if self.resource is None:
            return self
        return JID._trusted(self.local, self.domain, None)

    @property
    def is_bare(self) -> bool:
        return self.resource is None

    @property
    def is_full(self) -> bool:
        return self.resource is not None

    def with_resource(self, resource: str) -> JID:
        """The full JID with this JID's local and domain parts and `resource`."""
        return JID._trusted(self.local, self.domain, _resource(resource))

    def __str__(self) -> str:
        text = self.domain if self.local is None else f"{self.local}@{self.domain}"
        return text if self.resource is None else f"{text}/{self.resource}"


@functools.lru_cache(maxsize=8192)
def _parse_cached(text: str) -> JID:
    if not isinstance(text, str):
        raise InvalidJID(f"a JID must be a string, not {type(text).__name__}")
    head, slash, resource = text.partition("/")
    local, at, domain = head.partition("@")
    if not at:
        local, domain = "", head
    elif not local:
        raise InvalidJID(f"empty localpart in {text!r}")
    if slash and not resource:
        raise InvalidJID(f"empty resourcepart in {text!r}")
    return JID(local if at else None, domain, resource if slash else None)


def _utf8_length(text: str, part: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidJID(f"{part} contains a surrogate code point") from exc


def _check_length(text: str, part: str) -> None:
    size = _utf8_length(text, part)
    if size == 0:
        raise InvalidJID(f"{part} is empty")
    if size > MAX_PART_BYTES:
        raise InvalidJID(f"{part} is {size} bytes long (at most {MAX_PART_BYTES})")


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cs")


@functools.lru_cache(maxsize=4096)
def _local(raw: str) -> str:
    text = raw
    # NFKC and casefold do not commute; iterate to a fixed point so that parsing is idempotent.
    for _ in range(4):
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
        if folded == text:
            break
        text = folded
    _check_length(text, "localpart")
    for char in text:
        if char in _LOCAL_FORBIDDEN:
            raise InvalidJID(f"localpart contains the forbidden character {char!r}")
        if char.isspace() or _is_control(char) or unicodedata.category(char) == "Zs":
            raise InvalidJID(f"localpart contains whitespace or a control character {char!r}")
    return text


@functools.lru_cache(maxsize=4096)
def _domain(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw).translate(_IDNA_DOTS)
    if text.endswith("."):
        text = text[:-1]
    text = text.lower()
    _check_length(text, "domainpart")
    if text.startswith("["):
        return _ipv6_literal(text)
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        pass
    else:
        return text
    labels = [_label(label) for label in text.split(".")]
    normalised = ".".join(labels)
    _check_length(normalised, "domainpart")
    return normalised


def _ipv6_literal(text: str) -> str:
    if not text.endswith("]"):
        raise InvalidJID(f"domainpart {text!r} is an unterminated IPv6 literal")
    try:
        address = ipaddress.IPv6Address(text[1:-1])
    except ValueError as exc:
        raise InvalidJID(f"domainpart {text!r} is not a valid IPv6 literal") from exc
    if address.scope_id is not None:
        raise InvalidJID(f"domainpart {text!r} carries an IPv6 zone, which JIDs do not allow")
    return f"[{address.compressed}]"


def _label(label: str) -> str:
    if not label:
        raise InvalidJID("domainpart has an empty label")
    if label.isascii():
        if len(label) > MAX_LABEL_CHARS or not _ASCII_LABEL.fullmatch(label):
            raise InvalidJID(
                f"domainpart label {label!r} must be 1-{MAX_LABEL_CHARS} letters, digits or "
                "inner hyphens"
            )
        if not label.startswith("xn--"):
            return label
    try:
        ace = label.encode("idna").decode("ascii")
        unicode_label = ace.encode("ascii").decode("idna").lower()
        # An A-label must be exactly what its U-label encodes to (RFC 5891 §5.4).
        canonical = unicode_label.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidJID(f"domainpart label {label!r} is not a valid IDNA label") from exc
    if canonical != ace or not _ASCII_LABEL.fullmatch(ace):
        raise InvalidJID(f"domainpart label {label!r} is not a valid IDNA label")
    return unicode_label


@functools.lru_cache(maxsize=4096)
def _resource(raw: str) -> str:
    text = unicodedata.normalize("NFC", raw)
    _check_length(text, "resourcepart")
    for char in text:
        if _is_control(char):
            raise InvalidJID(f"resourcepart contains the control character {char!r}")
    return text
