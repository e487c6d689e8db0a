"""Bridge selection: which bridge gets a new participant (focus-behaviour #47-#49, §2.8).

Pure logic over `Bridge` objects and the clock; no I/O. `BridgeSelector.select` does the part
every strategy shares (upstream's `BridgeSelector.selectBridge`):

1. The conference's bridges are reduced to the operational ones that were not removed (upstream's
   colibri layer only passes those). The conference's version is the first of them's
   `full_version`, else `pinned_version`; a pinned version that differs from the conference's makes
   selection fail.
2. Candidates: all known bridges ordered by (operational and not in graceful shutdown,
   operational in graceful shutdown, not operational), then corrected stress; keep operational
   ones; drop those shutting down; unless `octo.allow-mixed-versions`, keep the conference's
   version. Each of these filters failing to leave anyone ends the selection (None).
3. Soft preferences: drop draining bridges if any non-draining one is left, then bridges in
   graceful shutdown if any other is left.
4. The strategy chooses among the candidates. `BaseStrategy.select` first keeps the conference on
   its existing bridge, unconditionally, when multi-bridge (Octo) is off or that bridge has no
   relay id; otherwise the strategy's `do_select` decides.

Selection is synchronous, so calls are serialized by construction. The caller should record the
allocation (`bridge.endpoint_added(now)`) before its next await, so that the next selection already
sees the ramp-up correction.

Strategies are small classes behind the `SelectionStrategy` protocol, chosen by
`config.selection_strategy`. Only `SingleBridgeStrategy` exists today; the others (region-based,
intra-region, split, visitor) fall back to it with one warning. The helpers they will need
(`not_loaded_in_region`, `overloaded_for_conference`, ...) are here already. The per-conference
limit `max-bridge-participants` is applied only by those helpers, as upstream: the single-bridge
strategy never enforces it. The burst limiter (`max-bridge-participants-per-interval`) needs
per-conference recent counts that `conference_bridges` does not carry yet; it is not applied.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from jicofo.config.model import BridgeConfig, BridgeSelectionStrategyName, OctoConfig

from .model import Bridge

log = logging.getLogger(__name__)

ConferenceBridges = Mapping[Bridge, int]  # the conference's bridges → its endpoints on each


@dataclass(frozen=True, slots=True)
class SelectionContext:
    """What a strategy may look at besides the bridges."""

    config: BridgeConfig
    now: float
    participant_region: str | None
    allow_multi_bridge: bool

    def overloaded_for_conference(self, bridge: Bridge, conference_bridges: ConferenceBridges) -> bool:
        """Overloaded, or already holding `max-bridge-participants` of this conference's
        endpoints (upstream's `BridgeSelectionStrategy.isOverloaded`)."""
        if bridge.is_overloaded(self.now):
            return True
        limit = self.config.max_bridge_participants
        return limit > 0 and bridge in conference_bridges and conference_bridges[bridge] >= limit


class SelectionStrategy(Protocol):
    name: str

    def select(
        self, candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
    ) -> Bridge | None:
        """Choose among `candidates` (already filtered and ordered best first)."""
        ...


def bridge_order_key(bridge: Bridge, now: float) -> tuple[int, float]:
    """Sort key, best first: operational and running, operational in graceful shutdown, not
    operational; then corrected stress (upstream's `Bridge.compare`)."""
    if bridge.is_operational(now):
        priority = 2 if bridge.graceful_shutdown else 1
    else:
        priority = 3
    return priority, bridge.corrected_stress(now)


# ----- helpers for strategies (candidates are ordered best first) -------------------------------


def least_loaded(candidates: Sequence[Bridge]) -> Bridge | None:
    return candidates[0] if candidates else None


def least_loaded_in_region(candidates: Sequence[Bridge], region: str | None) -> Bridge | None:
    if region is None:
        return None
    return next((b for b in candidates if b.region == region), None)


def not_loaded_in_region(
    candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext,
    region: str | None,
) -> Bridge | None:
    if region is None:
        return None
    return next((b for b in candidates if b.region == region
                 and not ctx.overloaded_for_conference(b, conference_bridges)), None)


def not_loaded_already_in_conference(
    candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
) -> Bridge | None:
    return next((b for b in candidates if b in conference_bridges
                 and not ctx.overloaded_for_conference(b, conference_bridges)), None)


# ----- strategies --------------------------------------------------------------------------------


class BaseStrategy(ABC):
    """Upstream's `BridgeSelectionStrategy.select`: keep a conference on its existing bridge
    unless multi-bridge is allowed and that bridge can relay; otherwise ask `do_select`."""

    name = "base"

    def select(
        self, candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
    ) -> Bridge | None:
        if conference_bridges:
            existing = next(iter(conference_bridges))
            if not ctx.allow_multi_bridge or existing.relay_id is None:
                return existing
        bridge = self.do_select(candidates, conference_bridges, ctx)
        if bridge is None:
            log.warning("%s: no bridge for a participant in region %s (%d candidates)",
                        self.name, ctx.participant_region, len(candidates))
        elif not conference_bridges:
            log.info("%s: selected initial bridge %s (stress %.3f) for region %s", self.name,
                     bridge.nickname, bridge.corrected_stress(ctx.now), ctx.participant_region)
        return bridge

    @abstractmethod
    def do_select(
        self, candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
    ) -> Bridge | None: ...


class SingleBridgeStrategy(BaseStrategy):
    """Every participant of a conference on one bridge (upstream's default). The first one goes
    to the least loaded bridge in the participant's region, else the least loaded bridge."""

    name = BridgeSelectionStrategyName.SINGLE.value

    def do_select(
        self, candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
    ) -> Bridge | None:
        if not conference_bridges:
            return least_loaded_in_region(candidates, ctx.participant_region) or least_loaded(candidates)
        if len(conference_bridges) != 1:
            log.error("%s: the conference uses %d bridges", self.name, len(conference_bridges))
            return None
        bridge = next(iter(conference_bridges))
        if not bridge.is_operational(ctx.now):
            log.error("%s: the conference's bridge %s is not operational", self.name, bridge.nickname)
            return None
        return bridge


STRATEGIES: dict[BridgeSelectionStrategyName, Callable[[], SelectionStrategy]] = {
    BridgeSelectionStrategyName.SINGLE: SingleBridgeStrategy,
}


def strategy_for(name: BridgeSelectionStrategyName) -> SelectionStrategy:
    """The strategy named in config; one not implemented yet falls back to single-bridge."""
    factory = STRATEGIES.get(name)
    if factory is None:
        log.warning("bridge selection strategy %s is not implemented; using %s",
                    name.value, SingleBridgeStrategy.name)
        factory = SingleBridgeStrategy
    return factory()


class BridgeSelector:
    def __init__(
        self,
        config: BridgeConfig,
        octo: OctoConfig,
        clock: Callable[[], float] = trio.current_time,
        *,
        strategy: SelectionStrategy | None = None,
    ) -> None:
        self.config = config
        self.octo = octo
        self.clock = clock
        self.strategy = strategy if strategy is not None else strategy_for(config.selection_strategy)

    def select(
        self,
        bridges: Iterable[Bridge],
        conference_bridges: ConferenceBridges,
        participant_region: str | None,
        pinned_version: str | None = None,
    ) -> Bridge | None:
        """The bridge for a new participant, or None when none may be used."""
        now = self.clock()
        in_use = {b: n for b, n in conference_bridges.items() if not b.removed and b.is_operational(now)}
        version = next(iter(in_use)).full_version if in_use else None
        if version is None:
            version = pinned_version
        elif pinned_version is not None and pinned_version != version:
            log.warning("pinned version %s differs from the conference's bridges' version %s",
                        pinned_version, version)
            return None

        ordered = sorted((b for b in bridges if not b.removed), key=lambda b: bridge_order_key(b, now))
        candidates = [b for b in ordered if b.is_operational(now)]
        if not candidates:
            log.warning("no operational bridge (%d known)", len(ordered))
            return None
        candidates = [b for b in candidates if not b.shutting_down]
        if not candidates:
            log.warning("every operational bridge is shutting down")
            return None
        if version is not None and not self.octo.allow_mixed_versions:
            candidates = [b for b in candidates if b.full_version == version]
            if not candidates:
                log.warning("no operational bridge has version %s", version)
                return None
        candidates = [b for b in candidates if not b.drain] or candidates
        candidates = [b for b in candidates if not b.graceful_shutdown] or candidates

        ctx = SelectionContext(self.config, now, participant_region, self.octo.enabled)
        return self.strategy.select(candidates, in_use, ctx)
