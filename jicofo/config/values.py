"""Typed reads from a resolved HOCON tree, with one-line errors that name the key.

Coercions follow what upstream's config library accepts, since operators' files rely on them: quoted
numbers and booleans ("5222", "true"), yes/no/on/off, numbers where a string is wanted, and durations
given either as HOCON durations or as bare numbers of milliseconds.
"""

from __future__ import annotations

import copy
import datetime
import enum
import re
from collections.abc import Iterator
from typing import Any, TypeVar

from pyhocon import ConfigFactory, ConfigTree
from pyhocon.config_tree import NoneValue

from .model import ConfigError

_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})

_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")
_SECONDS_PER_UNIT: dict[str, float] = {}
for _names, _seconds in (
    (("", "ms", "milli", "millis", "millisecond", "milliseconds"), 1e-3),
    (("ns", "nano", "nanos", "nanosecond", "nanoseconds"), 1e-9),
    (("us", "micro", "micros", "microsecond", "microseconds"), 1e-6),
    (("s", "second", "seconds"), 1.0),
    (("m", "minute", "minutes"), 60.0),
    (("h", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
    (("w", "week", "weeks"), 604800.0),
):
    for _name in _names:
        _SECONDS_PER_UNIT[_name] = _seconds

_MISSING = object()
_E = TypeVar("_E", bound=enum.Enum)


def describe(value: Any, *, secret: bool = False) -> str:
    """How a wrong value is shown in an error: the value itself unless it is (or may be) a secret."""
    if value is None:
        return "null"
    if isinstance(value, ConfigTree | dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if secret:
        return "a boolean" if isinstance(value, bool) else "a value that is not shown"
    if isinstance(value, str):
        return '"' + value.replace("\n", "\\n") + '"'
    if isinstance(value, datetime.timedelta):
        return f"{value.total_seconds():g} seconds"
    return str(value)


class Section:
    """One object of the tree, with its dotted path for error messages."""

    def __init__(self, tree: ConfigTree, path: str) -> None:
        self._tree = tree
        self.path = path

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.key_path(key)}: {message}")

    def raw(self, key: str) -> Any:
        """The value, or `_MISSING` when the key is absent or null."""
        value = self._tree.get(key, None)
        return _MISSING if value is None or isinstance(value, NoneValue) else value

    def has(self, key: str) -> bool:
        return self.raw(key) is not _MISSING

    def keys(self) -> Iterator[str]:
        return iter(self._tree.keys())

    def with_defaults(self, hocon: str) -> Section:
        """This section with the keys it lacks taken from `hocon`."""
        defaults = ConfigFactory.parse_string(hocon)
        return Section(ConfigTree.merge_configs(defaults, copy.deepcopy(self._tree)), self.path)

    def child(self, key: str) -> Section:
        value = self.raw(key)
        if value is _MISSING:
            return Section(ConfigTree(), self.key_path(key))
        if not isinstance(value, ConfigTree):
            raise self.error(key, f"expected an object, got {describe(value)}")
        return Section(value, self.key_path(key))

    def _required(self, key: str) -> Any:
        value = self.raw(key)
        if value is _MISSING:
            raise self.error(key, "required but not set")
        return value

    # --- strings ---

    def optional_string(self, key: str, *, secret: bool = False) -> str | None:
        """A string; absent, null or blank is None. Numbers and booleans read as their text."""
        value = self.raw(key)
        if value is _MISSING:
            return None
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            raise self.error(key, f"expected a string, got {describe(value, secret=secret)}")
        return text if text.strip() else None

    def string(self, key: str, *, secret: bool = False) -> str:
        text = self.optional_string(key, secret=secret)
        if text is None:
            raise self.error(key, "required but not set")
        return text

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            raise self.error(key, f"expected a list of strings, got {describe(value)}")
        items: list[str] = []
        for item in value:
            if not isinstance(item, str | int | float) or isinstance(item, bool):
                raise self.error(key, f"expected a list of strings, got an item {describe(item)}")
            items.append(str(item))
        return tuple(items)

    def choice(self, key: str, choices: type[_E], *, strip_prefix: str = "") -> _E:
        text = self.string(key)
        if strip_prefix and text.startswith(strip_prefix):
            text = text[len(strip_prefix) :]
        try:
            return choices(text)
        except ValueError:
            allowed = ", ".join(member.value for member in choices)
            raise self.error(key, f"expected one of {allowed}, got {describe(text)}") from None

    # --- numbers ---

    def integer(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self._required(key)
        number = _as_integer(value)
        if number is None:
            raise self.error(key, f"expected an integer, got {describe(value)}")
        self._check_range(key, number, minimum, maximum)
        return number

    def number(self, key: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
        value = self._required(key)
        number = _as_number(value)
        if number is None:
            raise self.error(key, f"expected a number, got {describe(value)}")
        self._check_range(key, number, minimum, maximum)
        return number

    def boolean(self, key: str) -> bool:
        value = self._required(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise self.error(key, f"expected true or false, got {describe(value)}")

    def duration(self, key: str) -> float:
        """Seconds. A bare number (or a number without a unit in a string) is milliseconds."""
        value = self._required(key)
        seconds = _as_seconds(value)
        if seconds is None:
            raise self.error(key, f'expected a duration such as "15 seconds", got {describe(value)}')
        if seconds < 0:
            raise self.error(key, f"expected a duration of zero or more, got {describe(value)}")
        return seconds

    def optional_duration(self, key: str) -> float | None:
        return self.duration(key) if self.has(key) else None

    def _check_range(self, key: str, number: float, minimum: float | None, maximum: float | None) -> None:
        if minimum is not None and number < minimum:
            raise self.error(key, f"expected at least {minimum:g}, got {number:g}")
        if maximum is not None and number > maximum:
            raise self.error(key, f"expected at most {maximum:g}, got {number:g}")


def _as_integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value):
        return int(value)
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_seconds(value: Any) -> float | None:
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value / 1000.0
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            return None
        unit = _SECONDS_PER_UNIT.get(match.group(2))
        if unit is None:
            return None
        return float(match.group(1)) * unit
    return None
