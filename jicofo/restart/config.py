"""`jicofo.restart`: the keep-conferences state store (our key, not upstream's)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # jicofo.config imports this module
    from jicofo.config.values import Section

DEBIAN_STATE_FILE = "/var/lib/jicofo/state.sqlite3"


@dataclass(frozen=True, slots=True)
class RestartConfig:
    enabled: bool = False
    state_file: Path = Path(DEBIAN_STATE_FILE)
    max_age: float = 60.0  # a store older than this is stale (Prosody's smacks_hibernation_time)
    heartbeat_interval: float = 2.0


def read_restart(section: Section) -> RestartConfig:
    return RestartConfig(
        enabled=section.boolean("enabled"),
        state_file=Path(section.string("state-file") or DEBIAN_STATE_FILE),
        max_age=section.duration("max-age"),
        heartbeat_interval=section.duration("heartbeat-interval"),
    )
