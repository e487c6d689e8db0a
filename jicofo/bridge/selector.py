"""Bridge selection: which bridge gets a new participant (docs/jicofo.md #47-#55, §2.8).

Pure logic over `Bridge` objects and the clock; no I/O. `BridgeSelector.select` does the part
every strategy shares (upstream's `BridgeSelector.selectBridge`):

1. The conference's bridges are reduced to the operational ones that were not removed (upstream's
   colibri layer only passes those). The conference's version is the first of them's
   `full_version`, else the pinned version; a pinned version that differs from the conference's
   makes selection fail.
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

Strategies, chosen by `jicofo.bridge.selection-strategy` (upstream's class names):

- `SingleBridgeSelectionStrategy` (default): one bridge per conference; the first participant gets
  the least loaded bridge in their region, else the least loaded bridge.
- `RegionBasedBridgeSelectionStrategy`: bridges in the participant's region, then its region group
  (`bridge.region-groups`), preferring bridges the conference already uses and that are not
  overloaded; with `jicofo.local-region` set, the local-region rules of §2.8.
- `IntraRegionBridgeSelectionStrategy`: the conference's region only; another bridge there is added
  only when the conference's bridges there are overloaded.
- `SplitBridgeSelectionStrategy`: each participant on a bridge the conference does not use yet,
  else on its bridge with the fewest of its participants (for testing cascades).
- `VisitorSelectionStrategy`: `participant-selection-strategy` for participants and
  `visitor-selection-strategy` for visitors, each preferring bridges not used by the other kind.

All but the single-bridge one need multi-bridge conferences: without `octo.enabled` (or when the
conference's bridge has no relay id) they, too, keep the conference on its bridge. Unlike upstream,
the split strategy does not force multi-bridge on: the conference could not relay between bridges.

"Overloaded for a conference" (upstream's `isOverloaded(conferenceBridges)`) is: the bridge is
overloaded, or the conference already has `max-bridge-participants` endpoints on it, or (the burst
limiter, off unless `max-bridge-participants-per-interval` > 0) the conference added that many to
it within `max-bridge-participants-interval`. The caller gives those recent counts
(`recently_added=`; `RecentAdditions` keeps them). Only the strategies that weigh load apply it
(region-based, intra-region); the single-bridge strategy never does, as upstream.

Version pinning (upstream's `/pin`): `pin(conference_id, version, duration)` makes a conference with
no bridge yet use only bridges of that `full_version` until the pin expires.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import trio

from jicofo.config.model import BridgeConfig, BridgeSelectionStrategyName, ConfigError, OctoConfig
from jicofo.xmpp.jid import JID, InvalidJID

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
    local_region: str | None = None
    visitor: bool = False  # the participant is a visitor
    #: Which of the conference's bridges serve its visitors (VisitorSelectionStrategy).
    visitor_bridges: Collection[Bridge] = frozenset()
    #: Endpoints the conference added to each bridge within `max-bridge-participants-interval`.
    recently_added: Mapping[Bridge, int] = field(default_factory=dict)

    def region_group(self, region: str | None) -> frozenset[str]:
        """The regions grouped with `region` (itself included); none for no region."""
        if region is None:
            return frozenset()
        for group in self.config.region_groups:
            if region in group:
                return group
        return frozenset((region,))

    def has_max_participants(self, bridge: Bridge, conference_bridges: ConferenceBridges) -> bool:
        """The conference already has `max-bridge-participants` endpoints on `bridge`."""
        limit = self.config.max_bridge_participants
        return limit > 0 and conference_bridges.get(bridge, 0) >= limit

    def over_burst_limit(self, bridge: Bridge) -> bool:
        """The conference added `max-bridge-participants-per-interval` endpoints to `bridge`
        within the interval."""
        limit = self.config.max_bridge_participants_per_interval
        return limit > 0 and self.recently_added.get(bridge, 0) >= limit

    def overloaded_for_conference(self, bridge: Bridge, conference_bridges: ConferenceBridges) -> bool:
        """Overloaded, at the per-conference limit or over the burst limit (upstream's
        `BridgeSelectionStrategy.isOverloaded`)."""
        return (bridge.is_overloaded(self.now) or self.has_max_participants(bridge, conference_bridges)
                or self.over_burst_limit(bridge))


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


# ----- helpers for strategies (candidates are ordered best first, so the first match is the least
# loaded one; a region of None matches no bridge) ------------------------------------------------


def least_loaded(candidates: Sequence[Bridge]) -> Bridge | None:
    return candidates[0] if candidates else None


def least_loaded_in_region(candidates: Sequence[Bridge], region: str | None) -> Bridge | None:
    if region is None:
        return None
    return next((b for b in candidates if b.region == region), None)


def least_loaded_in_region_group(candidates: Sequence[Bridge], group: Collection[str]) -> Bridge | None:
    return next((b for b in candidates if b.region in group), None)


def not_loaded(
    candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
) -> Bridge | None:
    return next((b for b in candidates if not ctx.overloaded_for_conference(b, conference_bridges)), None)


def not_loaded_in_region(
    candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext,
    region: str | None,
) -> Bridge | None:
    if region is None:
        return None
    return next((b for b in candidates if b.region == region
                 and not ctx.overloaded_for_conference(b, conference_bridges)), None)


def not_loaded_in_region_group(
    candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext,
    group: Collection[str],
) -> Bridge | None:
    return next((b for b in candidates if b.region in group
                 and not ctx.overloaded_for_conference(b, conference_bridges)), None)


def not_loaded_already_in_conference(
    candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
) -> Bridge | None:
    return next((b for b in candidates if b in conference_bridges
                 and not ctx.overloaded_for_conference(b, conference_bridges)), None)


def not_loaded_already_in_conference_in_region(
    candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext,
    region: str | None,
) -> Bridge | None:
    if region is None:
        return None
    return next((b for b in candidates if b in conference_bridges and b.region == region
                 and not ctx.overloaded_for_conference(b, conference_bridges)), None)


def not_loaded_already_in_conference_in_region_group(
    candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext,
    group: Collection[str],
) -> Bridge | None:
    return next((b for b in candidates if b in conference_bridges and b.region in group
                 and not ctx.overloaded_for_conference(b, conference_bridges)), None)


def least_loaded_already_in_conference(
    candidates: Sequence[Bridge], conference_bridges: ConferenceBridges
) -> Bridge | None:
    return next((b for b in candidates if b in conference_bridges), None)


def least_loaded_not_maxed_already_in_conference(
    candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
) -> Bridge | None:
    """The last resort before any bridge: a conference bridge below `max-bridge-participants`,
    however loaded, and ignoring the burst limiter (it must return *some* bridge)."""
    return next((b for b in candidates if b in conference_bridges
                 and not ctx.has_max_participants(b, conference_bridges)), None)


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
        elif bridge not in conference_bridges:
            log.info("%s: added bridge %s (stress %.3f, region %s) to a conference on %s for region %s",
                     self.name, bridge.nickname, bridge.corrected_stress(ctx.now), bridge.region,
                     ", ".join(b.nickname for b in conference_bridges), ctx.participant_region)
        return bridge

    @abstractmethod
    def do_select(
        self, candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
    ) -> Bridge | None: ...


class MultiBridgeStrategy(BaseStrategy):
    """A strategy that spreads conferences over bridges: says once when Octo is off, which keeps
    every conference on one bridge."""

    _warned = False

    def select(
        self, candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
    ) -> Bridge | None:
        if not ctx.allow_multi_bridge and not self._warned:
            self._warned = True
            log.warning("%s needs conferences on several bridges, but octo is disabled: each "
                        "conference stays on its first bridge (set jicofo.octo.enabled)", self.name)
        return super().select(candidates, conference_bridges, ctx)


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


class RegionBasedStrategy(MultiBridgeStrategy):
    """Bridges near the participant (upstream's `RegionBasedBridgeSelectionStrategy`), in order:

    a not-overloaded conference bridge in the desired region, then in its region group; a
    not-overloaded bridge in the region, then in the group; a not-overloaded conference bridge; any
    not-overloaded bridge; a conference bridge below the per-conference limit; the least loaded.

    The desired region is the participant's, else the local region. With a local region set, the
    first participant of a conference whose region is grouped with the local region gets the local
    region (the next participant is most likely local: both then share a bridge), and a region
    whose group has no bridge at all is replaced by the local region.
    """

    name = BridgeSelectionStrategyName.REGION_BASED.value

    def do_select(
        self, candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
    ) -> Bridge | None:
        if not candidates:
            return None
        local = ctx.local_region
        region = ctx.participant_region or local
        if local is not None:
            group = ctx.region_group(region)
            if not conference_bridges and region != local and local in group:
                region = local
            if not any(b.region in group for b in candidates):
                region = local
        group = ctx.region_group(region)
        return (
            not_loaded_already_in_conference_in_region(candidates, conference_bridges, ctx, region)
            or not_loaded_already_in_conference_in_region_group(candidates, conference_bridges, ctx, group)
            or not_loaded_in_region(candidates, conference_bridges, ctx, region)
            or not_loaded_in_region_group(candidates, conference_bridges, ctx, group)
            or not_loaded_already_in_conference(candidates, conference_bridges, ctx)
            or not_loaded(candidates, conference_bridges, ctx)
            or least_loaded_not_maxed_already_in_conference(candidates, conference_bridges, ctx)
            or least_loaded(candidates)
        )


class IntraRegionStrategy(MultiBridgeStrategy):
    """Several bridges for load, all in the conference's region (upstream's
    `IntraRegionBridgeSelectionStrategy`). The first participant gets a not-overloaded bridge in
    their region, else the least loaded bridge; that bridge's region is the conference's. Later
    ones get a not-overloaded conference bridge in that region, else a not-overloaded bridge there,
    else the least loaded conference bridge there.

    Two departures from upstream, which returns no bridge in both cases: bridges without a region
    form a region of their own (so a deployment without regions still balances), and when no
    bridge of the conference's region is left at all, the least loaded bridge is used rather than
    leaving the participant without media.
    """

    name = BridgeSelectionStrategyName.INTRA_REGION.value

    def do_select(
        self, candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
    ) -> Bridge | None:
        if not candidates:
            return None
        if not conference_bridges:
            return (not_loaded_in_region(candidates, conference_bridges, ctx, ctx.participant_region)
                    or least_loaded(candidates))
        region = next(iter(conference_bridges)).region
        in_region = [b for b in candidates if b.region == region]
        bridge = (not_loaded_already_in_conference(in_region, conference_bridges, ctx)
                  or not_loaded(in_region, conference_bridges, ctx)
                  or least_loaded_already_in_conference(in_region, conference_bridges))
        if bridge is None:
            log.warning("%s: no bridge left in the conference's region %s; using the least loaded",
                        self.name, region)
            bridge = least_loaded(candidates)
        return bridge


class SplitStrategy(MultiBridgeStrategy):
    """As many bridges as possible (upstream's `SplitBridgeSelectionStrategy`, for testing
    cascades): the least loaded bridge the conference does not use yet, else the conference's
    bridge with the fewest of its endpoints. Load is ignored."""

    name = BridgeSelectionStrategyName.SPLIT.value

    def do_select(
        self, candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
    ) -> Bridge | None:
        unused = next((b for b in candidates if b not in conference_bridges), None)
        if unused is not None:
            return unused
        used = [b for b in candidates if b in conference_bridges]
        return min(used, key=lambda b: conference_bridges[b], default=None)


class VisitorStrategy(BaseStrategy):
    """Separate bridges for participants and visitors where possible (upstream's
    `VisitorSelectionStrategy`): the sub-strategy for the participant's kind chooses among the
    bridges the conference does not use for the other kind, seeing only the conference's bridges
    of the same kind; if that finds nothing, it chooses among all of them (kinds mixed)."""

    name = BridgeSelectionStrategyName.VISITOR.value

    def __init__(self, participant_strategy: BaseStrategy, visitor_strategy: BaseStrategy) -> None:
        self.participant_strategy = participant_strategy
        self.visitor_strategy = visitor_strategy

    def do_select(
        self, candidates: Sequence[Bridge], conference_bridges: ConferenceBridges, ctx: SelectionContext
    ) -> Bridge | None:
        def same_kind(bridge: Bridge) -> bool:
            return (bridge in ctx.visitor_bridges) == ctx.visitor

        eligible = [b for b in candidates if b not in conference_bridges or same_kind(b)]
        of_kind = {b: n for b, n in conference_bridges.items() if same_kind(b)}
        strategy = self.visitor_strategy if ctx.visitor else self.participant_strategy
        return (strategy.do_select(eligible, of_kind, ctx)
                or strategy.do_select(candidates, conference_bridges, ctx))


STRATEGIES: dict[BridgeSelectionStrategyName, Callable[[], BaseStrategy]] = {
    BridgeSelectionStrategyName.SINGLE: SingleBridgeStrategy,
    BridgeSelectionStrategyName.REGION_BASED: RegionBasedStrategy,
    BridgeSelectionStrategyName.INTRA_REGION: IntraRegionStrategy,
    BridgeSelectionStrategyName.SPLIT: SplitStrategy,
}


def strategy_for(name: BridgeSelectionStrategyName, config: BridgeConfig | None = None) -> BaseStrategy:
    """The strategy named in config. `VisitorSelectionStrategy` needs `config` for its two
    sub-strategies (`participant-selection-strategy`, `visitor-selection-strategy`)."""
    if name is not BridgeSelectionStrategyName.VISITOR:
        return STRATEGIES[name]()
    subs = {
        "participant-selection-strategy": config.participant_selection_strategy if config else None,
        "visitor-selection-strategy": config.visitor_selection_strategy if config else None,
    }
    for key, sub in subs.items():
        if sub is None or sub is BridgeSelectionStrategyName.VISITOR:
            raise ConfigError(f"jicofo.bridge.{key}: must name a strategy other than {name.value} "
                              f"when jicofo.bridge.selection-strategy is {name.value}")
    participant, visitor = subs.values()
    assert participant is not None and visitor is not None
    return VisitorStrategy(STRATEGIES[participant](), STRATEGIES[visitor]())


# ----- per-conference burst counts -----------------------------------------------------------------


class RecentAdditions:
    """One conference's endpoint additions per bridge within `interval` seconds: the counts the
    burst limiter (`max-bridge-participants-per-interval`) needs as `select(recently_added=...)`."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._added: dict[Bridge, deque[float]] = {}

    def added(self, bridge: Bridge, now: float) -> None:
        self._added.setdefault(bridge, deque()).append(now)

    def forget(self, bridge: Bridge) -> None:
        self._added.pop(bridge, None)

    def counts(self, now: float) -> dict[Bridge, int]:
        horizon = now - self.interval
        counts: dict[Bridge, int] = {}
        for bridge, times in list(self._added.items()):
            while times and times[0] <= horizon:
                times.popleft()
            if times:
                counts[bridge] = len(times)
            else:
                del self._added[bridge]
        return counts


# ----- the selector --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pin:
    version: str
    expires: float  # on the selector's clock
    expires_at: str  # wall-clock, ISO 8601 UTC to the second, as upstream's `Instant.toString()`


def conference_key(conference_id: str | JID) -> str:
    """The normalized room JID a pin is kept under; ValueError unless it is `room@service`."""
    try:
        jid = conference_id if isinstance(conference_id, JID) else JID.parse(conference_id)
    except InvalidJID as e:
        raise ValueError(f"invalid conference JID {conference_id!r}: {e}") from None
    if jid.local is None or jid.resource is not None:
        raise ValueError(f"a conference is a bare JID with a local part, not {conference_id!r}")
    return str(jid)


class BridgeSelector:
    def __init__(
        self,
        config: BridgeConfig,
        octo: OctoConfig,
        clock: Callable[[], float] = trio.current_time,
        *,
        strategy: SelectionStrategy | None = None,
        local_region: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.octo = octo
        self.clock = clock
        self.wall_clock = wall_clock
        self.local_region = local_region
        self.strategy = strategy if strategy is not None else strategy_for(config.selection_strategy, config)
        self._pins: dict[str, _Pin] = {}

    def select(
        self,
        bridges: Iterable[Bridge],
        conference_bridges: ConferenceBridges,
        participant_region: str | None,
        pinned_version: str | None = None,
        *,
        conference_id: str | JID | None = None,
        visitor: bool = False,
        visitor_bridges: Collection[Bridge] = frozenset(),
        recently_added: Mapping[Bridge, int] | None = None,
    ) -> Bridge | None:
        """The bridge for a new participant, or None when none may be used.

        `conference_bridges`: the conference's bridges → its endpoints on each. `pinned_version`:
        the version the conference must use. Without it, `conference_id` (the room JID) looks up a
        pin, but only while the conference has no usable bridge: once it has one, that bridge's
        version is the conference's and a pin made later does not break it. `visitor` and
        `visitor_bridges` (which conference bridges serve visitors) are for the visitor strategy;
        `recently_added` (see `RecentAdditions`) for the burst limiter.
        """
        now = self.clock()
        in_use = {b: n for b, n in conference_bridges.items() if not b.removed and b.is_operational(now)}
        if pinned_version is None and conference_id is not None and not in_use:
            pinned_version = self.pinned_version(conference_id)
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

        ctx = SelectionContext(
            self.config, now, participant_region, self.octo.enabled,
            local_region=self.local_region, visitor=visitor, visitor_bridges=visitor_bridges,
            # Upstream carries these counts with the conference's bridges: only those count.
            recently_added={b: n for b, n in (recently_added or {}).items() if b in in_use},
        )
        return self.strategy.select(candidates, in_use, ctx)

    # ----- version pinning ---------------------------------------------------------------------

    def pin(self, conference_id: str | JID, version: str, duration_s: float) -> None:
        """Pin the conference (its room JID) to bridges of `version` (a `full_version`,
        `version-release`) for `duration_s` seconds, replacing any pin it had. ValueError for a
        conference id that is not a room JID, an empty version or a duration that is not positive."""
        key = conference_key(conference_id)
        if not version:
            raise ValueError("empty bridge version")
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise ValueError(f"pin duration must be positive, not {duration_s!r}")
        expires_at = datetime.fromtimestamp(int(self.wall_clock() + duration_s), UTC)
        previous = self._pins.get(key)
        self._pins[key] = _Pin(version, self.clock() + duration_s, expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        log.info("%s %s to bridge version %r for %.0f s", "re-pinned" if previous else "pinned", key,
                 version, duration_s)

    def unpin(self, conference_id: str | JID) -> bool:
        """Remove the conference's pin; False when it had none. ValueError as `pin`."""
        key = conference_key(conference_id)
        removed = self._pins.pop(key, None) is not None
        log.info("%s %s", "unpinned" if removed else "nothing to unpin for", key)
        return removed

    def pinned_version(self, conference_id: str | JID) -> str | None:
        """The version the conference is pinned to, or None (also for an invalid id)."""
        try:
            key = conference_key(conference_id)
        except ValueError:
            return None
        self._expire_pins()
        pin = self._pins.get(key)
        return pin.version if pin is not None else None

    def pins(self) -> list[dict[str, str]]:
        """The live pins as upstream's `GET /pin` lists them."""
        self._expire_pins()
        return [{"conferenceId": key, "jvbVersion": pin.version, "expiresAt": pin.expires_at}
                for key, pin in self._pins.items()]

    def _expire_pins(self) -> None:
        now = self.clock()
        for key in [k for k, pin in self._pins.items() if pin.expires < now]:
            log.info("pin of %s to bridge version %r expired", key, self._pins.pop(key).version)
