"""Jibri counters for /stats and /metrics, under upstream's names (JibriStats): failures per kind
since start, and start refusals for want of an instance (`jibri_no_instance_failures`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .session import SessionKind


@dataclass
class JibriStats:
    failures: Counter[SessionKind] = field(default_factory=Counter)
    no_instance_failures: int = 0

    def session_failed(self, kind: SessionKind) -> None:
        self.failures[kind] += 1
