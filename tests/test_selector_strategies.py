"""The multi-bridge selection strategies (pure): region-based with region groups and the local
region, intra-region, split, visitor; the per-conference limit and the burst limiter."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from jicofo.bridge.model import Bridge
from jicofo.bridge.selector import (
    BridgeSelector,
    IntraRegionStrategy,
    RecentAdditions,
    RegionBasedStrategy,
    SelectionContext,
    SingleBridgeStrategy,
    SplitStrategy,
    VisitorStrategy,
    strategy_for,
)
from jicofo.config import BridgeSelectionStrategyName as Name
from jicofo.config import ConfigError, load_config

from .test_bridge_selection import CONFIG, OCTO, Clock, bridge, stats

OCTO_ON = dataclasses.replace(OCTO, enabled=True)
GROUPS = (frozenset({"us-east", "us-west"}), frozenset({"eu-central", "eu-west"}))


def relaying(nick: str, stress: float, region: str | None, **values: Any) -> Bridge:
    return bridge(nick, stress, region=region, relay_id=f"relay-{nick}", **values)


def set_stress(b: Bridge, stress: float) -> None:
    b.update_stats(stats(stress_level=stress))


def make(strategy: Name, clock: Clock, *, local_region: str | None = None, octo: bool = True,
         **changes: Any) -> BridgeSelector:
    config = dataclasses.replace(CONFIG, selection_strategy=strategy, region_groups=GROUPS, **changes)
    return BridgeSelector(config, OCTO_ON if octo else OCTO, clock, local_region=local_region)


# ----- choosing the strategy ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "cls"), [
    (Name.SINGLE, SingleBridgeStrategy), (Name.REGION_BASED, RegionBasedStrategy),
    (Name.INTRA_REGION, IntraRegionStrategy), (Name.SPLIT, SplitStrategy),
])
def test_strategy_by_name(name: Name, cls: type) -> None:
    assert isinstance(strategy_for(name), cls)
    assert strategy_for(name).name == name.value


def test_strategy_from_config_with_the_package_prefix() -> None:
    config = load_config(None, {
        "jicofo.xmpp.client.domain": "auth.example.com",
        "jicofo.bridge.selection-strategy": "org.jitsi.jicofo.bridge.SplitBridgeSelectionStrategy",
    }, env={})
    assert isinstance(BridgeSelector(config.bridge, config.octo).strategy, SplitStrategy)


def test_visitor_strategy_needs_both_sub_strategies() -> None:
    base = {"jicofo.xmpp.client.domain": "auth.example.com",
            "jicofo.bridge.selection-strategy": "VisitorSelectionStrategy"}
    with pytest.raises(ConfigError, match="participant-selection-strategy"):
        load_config(None, base, env={})
    with pytest.raises(ConfigError, match="visitor-selection-strategy"):
        load_config(None, {**base, "jicofo.bridge.participant-selection-strategy":
                           "RegionBasedBridgeSelectionStrategy"}, env={})
    with pytest.raises(ConfigError, match="visitor-selection-strategy"):
        load_config(None, {**base,
                           "jicofo.bridge.participant-selection-strategy": "SingleBridgeSelectionStrategy",
                           "jicofo.bridge.visitor-selection-strategy": "VisitorSelectionStrategy"}, env={})
    subs = {"jicofo.bridge.participant-selection-strategy": "RegionBasedBridgeSelectionStrategy",
            "jicofo.bridge.visitor-selection-strategy": "SplitBridgeSelectionStrategy"}
    config = load_config(None, {**base, **subs}, env={})
    strategy = BridgeSelector(config.bridge, config.octo).strategy
    assert isinstance(strategy, VisitorStrategy)
    assert isinstance(strategy.participant_strategy, RegionBasedStrategy)
    assert isinstance(strategy.visitor_strategy, SplitStrategy)
    # Built by hand without sub-strategies: refused as well.
    with pytest.raises(ConfigError):
        strategy_for(Name.VISITOR, CONFIG)


def test_region_groups() -> None:
    ctx = SelectionContext(dataclasses.replace(CONFIG, region_groups=GROUPS), 0.0, None, True)
    assert ctx.region_group("us-west") == {"us-east", "us-west"}
    assert ctx.region_group("ap") == {"ap"}  # ungrouped: its own group
    assert ctx.region_group(None) == frozenset()


# ----- region-based --------------------------------------------------------------------------------


def test_region_based_initial_selection_prefers_the_region_then_its_group() -> None:
    clock = Clock()
    sel = make(Name.REGION_BASED, clock)
    west, central, us = (relaying("west", 0.3, "eu-west"), relaying("central", 0.1, "eu-central"),
                         relaying("us", 0.0, "us-east"))
    assert sel.select([west, central, us], {}, "eu-west") is west
    assert sel.select([central, us], {}, "eu-west") is central  # same group
    assert sel.select([central, us], {}, "ap") is us  # no match: least loaded
    assert sel.select([west, central, us], {}, None) is us  # no region, no local region


def test_region_based_cascades_to_the_participants_region() -> None:
    clock = Clock()
    sel = make(Name.REGION_BASED, clock)
    west, central = relaying("west", 0.3, "eu-west"), relaying("central", 0.1, "eu-central")
    ap, us = relaying("ap", 0.5, "ap"), relaying("us", 0.0, "us-east")
    bridges = [west, central, ap, us]
    # A conference bridge in the region's group beats a bridge in the region itself.
    assert sel.select(bridges, {central: 3}, "eu-west") is central
    # A participant from elsewhere gets a bridge in their region: the conference spans both.
    assert sel.select(bridges, {central: 3}, "ap") is ap
    assert sel.select(bridges, {central: 3, ap: 1}, "ap") is ap
    # No bridge in the participant's region or group: a not-overloaded conference bridge.
    assert sel.select(bridges, {central: 3, ap: 1}, "sa") is central


def test_region_based_overload_cases() -> None:
    clock = Clock()
    sel = make(Name.REGION_BASED, clock)
    west, central = relaying("west", 0.85, "eu-west"), relaying("central", 0.3, "eu-central")
    us = relaying("us", 0.0, "us-east")
    # The conference's bridge in the region is overloaded: another bridge in the group.
    assert sel.select([west, central, us], {west: 10}, "eu-west") is central
    # The whole group is overloaded: any bridge that is not, rather than an overloaded one.
    set_stress(central, 0.9)
    assert sel.select([west, central, us], {west: 10}, "eu-west") is us
    # Everything overloaded: the least loaded conference bridge below the per-conference limit...
    set_stress(us, 0.95)
    assert sel.select([west, central, us], {central: 10, us: 1}, "eu-west") is central
    # ...and the least loaded bridge when the conference has none.
    assert sel.select([west, central, us], {}, "eu-west") is west


def test_region_based_per_conference_limit() -> None:
    clock = Clock()
    sel = make(Name.REGION_BASED, clock, max_bridge_participants=4)
    west1, west2 = relaying("west1", 0.1, "eu-west"), relaying("west2", 0.5, "eu-west")
    assert sel.select([west1, west2], {west1: 3}, "eu-west") is west1
    assert sel.select([west1, west2], {west1: 4}, "eu-west") is west2
    # Both at the limit: the least loaded bridge (the limit is per conference, not a hard cap).
    assert sel.select([west1, west2], {west1: 4, west2: 4}, "eu-west") is west1


def test_region_based_local_region() -> None:
    clock = Clock()
    sel = make(Name.REGION_BASED, clock, local_region="us-east")
    east, west = relaying("east", 0.4, "us-east"), relaying("west", 0.1, "us-west")
    eu, ap = relaying("eu", 0.0, "eu-west"), relaying("ap", 0.0, "ap")
    bridges = [east, west, eu, ap]
    # First participant of a conference, grouped with the local region: the local region.
    assert sel.select(bridges, {}, "us-west") is east
    # Not first: their own region.
    assert sel.select(bridges, {eu: 1}, "us-west") is west
    # Not grouped with the local region: their own region.
    assert sel.select(bridges, {}, "eu-west") is eu
    # No bridge in their region's group at all: the local region.
    assert sel.select(bridges, {}, "sa") is east
    assert sel.select(bridges, {eu: 1}, "sa") is east
    # No region: the local one.
    assert sel.select(bridges, {}, None) is east
    # The region is replaced only when its group has no bridge; "ap" has one.
    assert sel.select(bridges, {}, "ap") is ap


def test_multi_bridge_strategies_stay_put_without_octo_or_relay() -> None:
    clock = Clock()
    for name in (Name.REGION_BASED, Name.INTRA_REGION, Name.SPLIT):
        sel = make(name, clock, octo=False)
        a, b = relaying("a", 0.9, "eu-west"), relaying("b", 0.0, "eu-west")
        assert sel.select([a, b], {a: 3}, "eu-west") is a, name
        on = make(name, clock)
        norelay = bridge("norelay", 0.9, region="eu-west")
        assert on.select([norelay, b], {norelay: 3}, "eu-west") is norelay, name


# ----- burst limiter -------------------------------------------------------------------------------


def test_burst_limiter() -> None:
    clock = Clock()
    off = make(Name.REGION_BASED, clock)
    on = make(Name.REGION_BASED, clock, max_bridge_participants_per_interval=10)
    one, two = relaying("one", 0.0, "r"), relaying("two", 0.1, "r")
    three = relaying("three", 0.2, "r")
    assert off.select([one, two], {one: 1}, "r", recently_added={one: 1000}) is one
    assert on.select([one, two], {one: 1}, "r", recently_added={one: 9}) is one
    assert on.select([one, two], {one: 1}, "r", recently_added={one: 10}) is two
    # Another bridge the conference already uses comes first.
    assert on.select([one, two, three], {one: 10, three: 0}, "r", recently_added={one: 10}) is three
    # Everything over the limit: the last resort ignores it.
    assert on.select([one, two], {one: 1, two: 1}, "r", recently_added={one: 10, two: 10}) is one
    # The initial selection is not affected.
    assert on.select([one, two], {}, "r", recently_added={one: 50}) is one
    # Nothing about the bridge itself changed.
    assert not one.is_overloaded(clock.now) and one.corrected_stress(clock.now) == 0.0
    intra = make(Name.INTRA_REGION, clock, max_bridge_participants_per_interval=10)
    assert intra.select([one, two], {one: 1}, "r", recently_added={one: 9}) is one
    assert intra.select([one, two], {one: 1}, "r", recently_added={one: 10}) is two


def test_recent_additions() -> None:
    a, b = bridge("a"), bridge("b")
    recent = RecentAdditions(60.0)
    recent.added(a, 0.0)
    recent.added(a, 30.0)
    recent.added(b, 50.0)
    assert recent.counts(59.0) == {a: 2, b: 1}
    assert recent.counts(60.0) == {a: 1, b: 1}
    assert recent.counts(110.0) == {}
    recent.added(a, 120.0)
    recent.forget(a)
    assert recent.counts(120.0) == {}


# ----- intra-region --------------------------------------------------------------------------------


def test_intra_region() -> None:
    clock = Clock()
    sel = make(Name.INTRA_REGION, clock)
    eu1, eu2 = relaying("eu1", 0.3, "eu-west"), relaying("eu2", 0.1, "eu-west")
    us = relaying("us", 0.0, "us-east")
    bridges = [eu1, eu2, us]
    # The first participant: a not-overloaded bridge in their region, else the least loaded.
    assert sel.select(bridges, {}, "eu-west") is eu2
    assert sel.select(bridges, {}, "ap") is us
    # Later: the conference's bridge while it is not overloaded, whatever the participant's region.
    assert sel.select(bridges, {eu1: 5}, "us-east") is eu1
    # Overloaded: another bridge of the conference's region (never another region).
    set_stress(eu1, 0.85)
    assert sel.select(bridges, {eu1: 5}, "us-east") is eu2
    assert sel.select(bridges, {eu1: 5, eu2: 2}, None) is eu2
    # Every bridge of the region overloaded: the least loaded conference bridge there.
    set_stress(eu2, 0.9)
    assert sel.select(bridges, {eu1: 5, eu2: 2}, None) is eu1


def test_intra_region_without_regions_still_balances() -> None:
    clock = Clock()
    sel = make(Name.INTRA_REGION, clock)
    a, b = relaying("a", 0.85, None), relaying("b", 0.2, None)
    assert sel.select([a, b], {a: 20}, None) is b


def test_intra_region_falls_back_when_its_region_is_gone() -> None:
    ctx = SelectionContext(CONFIG, 0.0, "eu-west", True)
    gone, us = relaying("gone", 0.1, "eu-west"), relaying("us", 0.5, "us-east")
    # The conference's only bridge is no candidate any more (e.g. shutting down).
    assert IntraRegionStrategy().select([us], {gone: 4}, ctx) is us


# ----- split -----------------------------------------------------------------------------------------


def test_split_puts_each_participant_on_another_bridge() -> None:
    clock = Clock()
    sel = make(Name.SPLIT, clock)
    a, b, c = relaying("a", 0.5, None), relaying("b", 0.1, None), relaying("c", 0.95, None)
    counts: dict[Bridge, int] = {}
    chosen = []
    for _ in range(6):
        pick = sel.select([a, b, c], counts, None)
        assert pick is not None
        counts[pick] = counts.get(pick, 0) + 1
        chosen.append(pick.nickname)
    # Unused bridges first (least loaded first, overload ignored), then the fewest endpoints.
    assert chosen[:3] == ["b", "a", "c"]
    assert sorted(counts.values()) == [2, 2, 2]


# ----- visitors ------------------------------------------------------------------------------------


def test_visitor_strategy_separates_visitors_from_participants() -> None:
    clock = Clock()
    config = dataclasses.replace(CONFIG, selection_strategy=Name.VISITOR,
                                 participant_selection_strategy=Name.REGION_BASED,
                                 visitor_selection_strategy=Name.REGION_BASED)
    sel = BridgeSelector(config, OCTO_ON, clock)
    main, spare = relaying("main", 0.1, "r"), relaying("spare", 0.3, "r")
    # Participants stay on their bridge; a visitor gets a bridge with no participants on it.
    assert sel.select([main, spare], {main: 3}, "r") is main
    assert sel.select([main, spare], {main: 3}, "r", visitor=True) is spare
    # Visitors join visitors; participants avoid visitor bridges.
    both = {main: 3, spare: 5}
    assert sel.select([main, spare], both, "r", visitor=True, visitor_bridges={spare}) is spare
    assert sel.select([main, spare], both, "r", visitor_bridges={main}) is spare
    # Only one bridge: the kinds mix rather than fail.
    assert sel.select([main], {main: 3}, "r", visitor=True) is main
