"""A stress scenario: the knobs of one `jicofo-stress` run, as a frozen dataclass.

Given as flags, as a small HOCON or JSON file (keys are the long flag names, e.g.

    conferences = 200
    participants = "3-8"          # fixed (5) or a uniform range
    join-rate = 50                # participants started per second
    hold = 60s                    # each participant stays this long after joining (default: to the end)
    churn = 30                    # leave-and-rejoin events per minute, over the whole run
    source-changes = 20           # screen share on/off toggles per minute
    ice-restarts-per-minute = 10  # in-place ICE restart requests (lib-jitsi-meet's), per minute
    mutes-per-minute = 10         # a moderator mutes someone's audio, who then unmutes itself
    bridges = 2                   # simulated bridges (local stack, or --brewery on a deployment)
    faults = ["kill-bridge@30s", "graceful-bridge@45s:jvb-sim-2"]
    jibris = 2                    # simulated Jibris (local stack only)
    recordings = 2                # conferences whose moderator starts a file recording
                                  # (fault kill-jibri@T[:NICK] crashes a busy Jibri)
    jigasis = 1                   # simulated SIP Jigasis (local stack only)
    dials = 2                     # conferences whose moderator dials out once through Jigasi
    duration = 90s
    stop-p99 = 2s                 # ramp: stop adding load when the rolling p99 exceeds this
    stop-errors = 10              # ... or when this many errors/failed joins were seen
    reload-delay = "10s-30s"      # a page reload after the focus left the room (default 10-30 s)

), or both: flags win over the file. Every value is bounded (see LIMITS), so a run always ends.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

FAULT_KINDS = ("kill-bridge", "unhealthy-bridge", "graceful-bridge", "drop-focus-connection",
               "cut-focus-connection", "kill-focus", "restart-focus", "kill-jibri")
JIBRI_FAULTS = ("kill-jibri",)  # need simulated Jibris, not bridges
# Need no bridges. kill-focus: SIGKILL a shard's focus; restart-focus: SIGKILL the local focus and
# start it again 1 s later (issue 14).
FOCUS_FAULTS = ("drop-focus-connection", "cut-focus-connection", "kill-focus", "restart-focus")

# Upper bounds of every knob: the runner is a load generator, not a denial-of-service tool.
LIMITS = {
    "conferences": 10_000,
    "participants": 100,  # per conference
    "total": 20_000,  # conferences x largest conference size
    "join_rate": 1000.0,
    "duration": 3600.0,
    "churn": 6000.0,
    "source_changes": 6000.0,
    "ice_restarts_per_minute": 6000.0,
    "mutes_per_minute": 6000.0,
    "bridges": 50,
    "jibris": 50,
    "jigasis": 50,
    "faults": 20,
}


class ScenarioError(ValueError):
    """A knob is missing, malformed or out of its bounds; the message names it."""


_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any, what: str = "duration") -> float:
    """Seconds from `30`, `"30s"`, `"500ms"`, `"2m"`, `"1 minute"`, `"1h"`."""
    if isinstance(value, bool):
        raise ScenarioError(f"{what}: expected a duration, not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, timedelta):  # pyhocon reads unquoted `30s` as a timedelta
        seconds = value.total_seconds()
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ScenarioError(f"{what}: expected a duration like 30s, 500ms or 2m, not {value!r}")
        unit = (match.group(2) or "s")
        seconds = float(match.group(1)) * _UNITS["ms" if unit == "ms" else unit[0]]
    if seconds < 0:
        raise ScenarioError(f"{what}: must not be negative")
    return seconds


def parse_range(value: Any, what: str = "participants") -> tuple[int, int]:
    """`5` or `"5"` -> (5, 5); `"3-8"` -> (3, 8)."""
    if isinstance(value, bool):
        raise ScenarioError(f"{what}: expected a number or a range like 3-8, not {value!r}")
    if isinstance(value, int):
        low = high = value
    else:
        text = str(value).strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", text)
        if match is None:
            raise ScenarioError(f"{what}: expected a number or a range like 3-8, not {value!r}")
        low = int(match.group(1))
        high = int(match.group(2) or low)
    if low < 1 or high < low:
        raise ScenarioError(f"{what}: need 1 <= low <= high, got {low}-{high}")
    if high > LIMITS["participants"]:
        raise ScenarioError(f"{what}: at most {LIMITS['participants']} per conference")
    return low, high


def parse_delay_range(value: Any, what: str = "reload-delay") -> tuple[float, float]:
    """`"10s-30s"`, `"10-30"` (seconds), `"500ms"` or `2` -> (low, high) seconds."""
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = (parse_duration(v, what) for v in value)
    else:
        text = str(value).strip()
        head, sep, tail = text.partition("-")
        low = parse_duration(head, what)
        high = parse_duration(tail, what) if sep else low
    if not 0 <= low <= high <= 600:
        raise ScenarioError(f"{what}: need 0 <= low <= high <= 600 s, got {low:g}-{high:g}")
    return low, high


@dataclass(frozen=True)
class Fault:
    """One fault injected during the run: `kind@time[:target]` (the target is a bridge
    nickname, default the bridge with the most endpoints at that moment; for kill-focus a shard
    number, default 1)."""

    kind: str
    at: float
    target: str | None = None

    @classmethod
    def parse(cls, text: str) -> Fault:
        spec = str(text).strip()
        kind, sep, rest = spec.partition("@")
        if not sep or kind not in FAULT_KINDS:
            raise ScenarioError(f"fault {text!r}: expected KIND@TIME[:BRIDGE] with KIND one of "
                                f"{', '.join(FAULT_KINDS)}")
        when, _, target = rest.partition(":")
        return cls(kind, parse_duration(when, f"fault {text!r}"), target.strip() or None)

    def __str__(self) -> str:
        return f"{self.kind}@{self.at:g}s" + (f":{self.target}" if self.target else "")


@dataclass(frozen=True)
class Scenario:
    conferences: int = 2
    participants: tuple[int, int] = (3, 3)
    join_rate: float = 10.0  # participants started per second
    hold: float | None = None  # seconds after joining; None: until the end of the run
    churn: float = 0.0  # leave+rejoin per minute
    source_changes: float = 0.0  # screen share toggles per minute
    ice_restarts_per_minute: float = 0.0  # in-place ICE restart requests per minute
    mutes_per_minute: float = 0.0  # remote mutes (then a self-unmute) per minute
    bridges: int = 2
    jibris: int = 0  # simulated Jibris (local stack)
    recordings: int = 0  # conferences in which a moderator starts a recording
    jigasis: int = 0  # simulated SIP Jigasis (local stack)
    dials: int = 0  # conferences in which a moderator dials out through Jigasi
    faults: tuple[Fault, ...] = ()
    duration: float = 30.0  # the load phase; the teardown after it is bounded separately
    stop_p99: float | None = None  # end the load phase when the rolling p99 join->session exceeds it
    stop_errors: int | None = None  # ... or when errors + failed joins reach this
    session_timeout: float = 30.0  # a join without an accepted session by then has failed
    # After the focus left the room the web client fails the conference (conference.focusLeft)
    # and reloads the page after 10 + randomInt(0, 20) s (jitsi-meet's page reload overlay).
    reload_delay: tuple[float, float] = (10.0, 30.0)
    room_prefix: str = "stress"
    seed: int = 1
    name: str = "adhoc"
    extra: Mapping[str, Any] = field(default_factory=dict)  # free-form notes carried to the report

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def bound(name: str, value: float, low: float, high: float) -> None:
            if not low <= value <= high:
                raise ScenarioError(f"{name.replace('_', '-')}: must be between {low:g} and {high:g}")

        bound("conferences", self.conferences, 1, LIMITS["conferences"])
        parse_range(f"{self.participants[0]}-{self.participants[1]}")
        if self.conferences * self.participants[1] > LIMITS["total"]:
            raise ScenarioError(f"conferences x participants: at most {LIMITS['total']} participants")
        bound("join_rate", self.join_rate, 0.01, LIMITS["join_rate"])
        bound("duration", self.duration, 1, LIMITS["duration"])
        if self.hold is not None:
            bound("hold", self.hold, 0, LIMITS["duration"])
        bound("churn", self.churn, 0, LIMITS["churn"])
        bound("source_changes", self.source_changes, 0, LIMITS["source_changes"])
        bound("ice_restarts_per_minute", self.ice_restarts_per_minute, 0, LIMITS["ice_restarts_per_minute"])
        bound("mutes_per_minute", self.mutes_per_minute, 0, LIMITS["mutes_per_minute"])
        bound("bridges", self.bridges, 0, LIMITS["bridges"])
        bound("jibris", self.jibris, 0, LIMITS["jibris"])
        bound("recordings", self.recordings, 0, self.conferences)
        if self.recordings and not self.jibris:
            raise ScenarioError("recordings: needs simulated Jibris (jibris >= 1)")
        bound("jigasis", self.jigasis, 0, LIMITS["jigasis"])
        bound("dials", self.dials, 0, self.conferences)
        if self.dials and not self.jigasis:
            raise ScenarioError("dials: needs simulated Jigasis (jigasis >= 1)")
        bound("session_timeout", self.session_timeout, 1, 600)
        parse_delay_range(list(self.reload_delay))
        if len(self.faults) > LIMITS["faults"]:
            raise ScenarioError(f"faults: at most {LIMITS['faults']}")
        for fault in self.faults:
            if fault.at > self.duration:
                raise ScenarioError(f"fault {fault}: after the end of the run ({self.duration:g} s)")
            if fault.kind in JIBRI_FAULTS:
                if self.jibris == 0:
                    raise ScenarioError(f"fault {fault}: needs simulated Jibris (jibris >= 1)")
            elif fault.kind not in FOCUS_FAULTS and self.bridges == 0:
                raise ScenarioError(f"fault {fault}: needs simulated bridges (bridges >= 1)")
        if self.stop_p99 is not None:
            bound("stop_p99", self.stop_p99, 0.001, 600)
        if self.stop_errors is not None:
            bound("stop_errors", self.stop_errors, 1, 10**9)
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,40}", self.room_prefix):
            raise ScenarioError("room-prefix: lowercase letters, digits, '-' and '_' (at most 41)")

    @property
    def max_participants(self) -> int:
        return self.conferences * self.participants[1]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "conferences": self.conferences,
            "participants": (str(self.participants[0]) if self.participants[0] == self.participants[1]
                             else f"{self.participants[0]}-{self.participants[1]}"),
            "join-rate": self.join_rate,
            "hold": self.hold,
            "churn": self.churn,
            "source-changes": self.source_changes,
            "ice-restarts-per-minute": self.ice_restarts_per_minute,
            "mutes-per-minute": self.mutes_per_minute,
            "bridges": self.bridges,
            "jibris": self.jibris,
            "recordings": self.recordings,
            "jigasis": self.jigasis,
            "dials": self.dials,
            "faults": [str(f) for f in self.faults],
            "duration": self.duration,
            "stop-p99": self.stop_p99,
            "stop-errors": self.stop_errors,
            "session-timeout": self.session_timeout,
            "reload-delay": f"{self.reload_delay[0]:g}s-{self.reload_delay[1]:g}s",
            "room-prefix": self.room_prefix,
            "seed": self.seed,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }


# Knob name (file key / long flag, dashes) -> converter.
def _opt_duration(what: str) -> Any:
    return lambda v: None if v is None else parse_duration(v, what)


_CONVERTERS: dict[str, Any] = {
    "name": str,
    "conferences": int,
    "participants": lambda v: parse_range(v),
    "join-rate": float,
    "hold": _opt_duration("hold"),
    "churn": float,
    "source-changes": float,
    "ice-restarts-per-minute": float,
    "mutes-per-minute": float,
    "bridges": int,
    "jibris": int,
    "recordings": int,
    "jigasis": int,
    "dials": int,
    "faults": lambda v: tuple(Fault.parse(f) for f in ([v] if isinstance(v, str) else v)),
    "duration": lambda v: parse_duration(v, "duration"),
    "stop-p99": _opt_duration("stop-p99"),
    "stop-errors": lambda v: None if v is None else int(v),
    "session-timeout": lambda v: parse_duration(v, "session-timeout"),
    "reload-delay": lambda v: parse_delay_range(v),
    "room-prefix": str,
    "seed": int,
    "extra": dict,
}


def scenario_from_mapping(values: Mapping[str, Any], base: Scenario | None = None) -> Scenario:
    """A scenario from knob names (dashes or underscores) over `base` (default: the defaults).
    Unknown keys and bad values raise ScenarioError naming the key."""
    changes: dict[str, Any] = {}
    for key, value in values.items():
        name = str(key).replace("_", "-")
        convert = _CONVERTERS.get(name)
        if convert is None:
            raise ScenarioError(f"unknown scenario key {key!r} (known: {', '.join(sorted(_CONVERTERS))})")
        try:
            changes[name.replace("-", "_")] = convert(value)
        except ScenarioError:
            raise
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"{name}: bad value {value!r} ({exc})") from None
    try:
        return dataclasses.replace(base or Scenario(), **changes)
    except TypeError as exc:  # pragma: no cover - guarded by _CONVERTERS
        raise ScenarioError(str(exc)) from None


def load_scenario_file(path: Path) -> dict[str, Any]:
    """The knobs in a HOCON or JSON file (a flat object; nested `scenario { ... }` also works)."""
    from pyhocon import ConfigFactory
    from pyhocon.exceptions import ConfigException
    from pyparsing import ParseBaseException

    try:
        data = ConfigFactory.parse_file(str(path)).as_plain_ordered_dict()
    except (OSError, ConfigException, ParseBaseException, ValueError) as exc:
        raise ScenarioError(f"{path}: cannot read the scenario ({type(exc).__name__}: {exc})") from None
    if isinstance(data.get("scenario"), dict) and len(data) == 1:
        data = data["scenario"]
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected an object of scenario keys")
    data = dict(data)
    data.setdefault("name", path.stem)
    return data
