"""Counters the focus keeps for `/stats` and `/metrics` (names follow upstream's, §5 of
docs/jicofo.md). Plain integers in one object: cheap to bump from anywhere in the task tree."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class FocusStats:
    conferences_created: int = 0
    conference_requests: int = 0
    conference_requests_new: int = 0
    conference_requests_errors: int = 0
    participants: int = 0  # total members ever seen in conferences
    participants_moved: int = 0
    participants_restart_requested: int = 0
    participants_ice_failed: int = 0
    # In-place ICE restarts (session-info with bridge-session ice-restart): asked for (accepted
    # and sent to the bridge), relayed to the client with new credentials, not needed (the bridge
    # kept its ICE agent), failed (refused or an error: the participant is re-invited instead).
    ice_restarts_requested: int = 0
    ice_restarts_relayed: int = 0
    ice_restarts_not_needed: int = 0
    ice_restarts_failed: int = 0
    bridge_allocation_failures: int = 0
    conference_seconds: float = 0.0
    jingle_out: Counter[str] = field(default_factory=Counter)
    jingle_in: Counter[str] = field(default_factory=Counter)

    def jingle_sent(self, action: str) -> None:
        self.jingle_out[action] += 1

    def jingle_received(self, action: str) -> None:
        self.jingle_in[action] += 1

    def jingle_json(self) -> dict[str, int]:
        """`/stats.jingle`: `<action>_sent` / `<action>_received` with underscores, as upstream."""
        result: dict[str, int] = {}
        for action, count in self.jingle_out.items():
            result[f"{action.replace('-', '_')}_sent"] = count
        for action, count in self.jingle_in.items():
            result[f"{action.replace('-', '_')}_received"] = count
        return result
