"""Reading attributes of parsed elements, with one clear ValueError for a bad value, and writing
them from keyword arguments. Shared by the Jingle, ICE-UDP, SSMA and Colibri2 modules (Colibri2
turns the error into Colibri2ParseError)."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

MAX_SSRC = 0xFFFF_FFFF
# Canonical decimal: ASCII digits, no sign, no blanks, no leading zero (except "0" itself). Python's
# int() would also take " 12 ", "+12", "012", "1_2" and non-ASCII digits.
_CANONICAL_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,9})\Z")


def local(el: Element) -> str:
    return el.tag.rpartition("}")[2]


def required(el: Element, name: str) -> str:
    """A non-empty attribute."""
    value = el.get(name)
    if not value:
        raise ValueError(f"<{local(el)}> lacks the '{name}' attribute")
    return value


def int_attr(el: Element, name: str, *, minimum: int = 0, maximum: int | None = None) -> int | None:
    """An integer within [minimum, maximum], or None when absent."""
    raw = el.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"'{name}' of <{local(el)}> is not an integer: {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"'{name}' of <{local(el)}> is out of range: {value}")
    return value


def parse_ssrc(text: str) -> int:
    """An SSRC written in canonical decimal, within 0..2^32-1; ValueError otherwise."""
    if not _CANONICAL_DECIMAL.match(text):
        raise ValueError(f"SSRC {text[:16]!r} is not an integer in canonical decimal")
    value = int(text)
    if value > MAX_SSRC:
        raise ValueError(f"SSRC {value} out of range")
    return value


def ssrc_attr(el: Element, name: str = "ssrc") -> int:
    """A required SSRC attribute (see parse_ssrc)."""
    raw = el.get(name)
    if raw is None:
        raise ValueError(f"<{local(el)}> lacks the '{name}' attribute")
    try:
        return parse_ssrc(raw)
    except ValueError as exc:
        raise ValueError(f"'{name}' of <{local(el)}>: {exc}") from None


def bool_attr(el: Element, name: str) -> bool | None:
    """`true`/`1` or `false`/`0` (any case, surrounding blanks ignored), or None when absent."""
    raw = el.get(name)
    if raw is None:
        return None
    lowered = raw.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"'{name}' of <{local(el)}> is not a boolean: {raw!r}")


def required_int(el: Element, name: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    """A required integer attribute within [minimum, maximum]."""
    value = int_attr(el, name, minimum=minimum, maximum=maximum)
    if value is None:
        raise ValueError(f"<{local(el)}> lacks the '{name}' attribute")
    return value


def expect(el: Element, tag: str) -> None:
    """ValueError unless `el` is a `tag` element."""
    if el.tag != tag:
        raise ValueError(f"expected {tag}, got {el.tag!r}")


# Writing attributes. Two conventions, both on the wire: Jingle and Jitsi's Jingle extensions
# write a boolean either way ("true" / "false"); Colibri2 writes only the flags that are set,
# every one of its flags defaulting to false.


def attrs(**values: str | int | bool | None) -> dict[str, str]:
    """Attributes from keyword arguments (`_` in names becomes `-`), in argument order. None is
    left out; a boolean is written "true" or "false"."""
    return _attrs(values, write_false=True)


def attrs_omitting_false(**values: str | int | bool | None) -> dict[str, str]:
    """As `attrs`, but False is left out too (Colibri2's flags: absent means false)."""
    return _attrs(values, write_false=False)


def _attrs(values: dict[str, str | int | bool | None], *, write_false: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None or (value is False and not write_false):
            continue
        if isinstance(value, bool):
            out[key.replace("_", "-")] = "true" if value else "false"
        else:
            out[key.replace("_", "-")] = str(value)
    return out
