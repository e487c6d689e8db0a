"""Reading attributes of parsed elements, with one clear ValueError for a bad value. Shared by
the Jingle and Colibri2 parsers (the Colibri2 one turns the error into Colibri2ParseError)."""

from __future__ import annotations

from xml.etree.ElementTree import Element


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
