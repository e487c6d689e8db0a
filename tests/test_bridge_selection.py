"""Bridge model and selection (pure): load, regions, operational state, shutdown/drain, versions."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from jicofo.bridge.model import Bridge
from jicofo.bridge.selector import (
    BridgeSelector,
    ConferenceBridges,
    SelectionContext,
    SingleBridgeStrategy,
    not_loaded_already_in_conference,
    not_loaded_in_region,
)
from jicofo.config import BridgeSelectionStrategyName, load_config
from jicofo.config.model import BridgeConfig, OctoConfig
from jicofo.xmpp.jid import JID

BREWERY = "jvbbrewery@internal.auth.example.com"


def _config() -> tuple[BridgeConfig, OctoConfig]:
    config = load_config(None, {"jicofo.xmpp.client.domain": "auth.example.com"}, env={})
    return config.bridge, config.octo


CONFIG, OCTO = _config()


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stats(**values: Any) -> SimpleNamespace:
    fields = dict.fromkeys(("stress_level", "average_participant_stress", "drain", "graceful_shutdown",
                            "shutting_down", "healthy", "version", "release", "region", "relay_id"))
    fields.update(values)
    return SimpleNamespace(**fields)


def bridge(nick: str, stress: float = 0.1, *, config: BridgeConfig = CONFIG, **values: Any) -> Bridge:
    b = Bridge(JID.parse(f"{BREWERY}/{nick}"), config)
    values.setdefault("drain", False)
    values.setdefault("version", "2.3.1")
    b.update_stats(stats(stress_level=stress, **values))
    return b


def selector(clock: Clock, *, octo: OctoConfig = OCTO, **changes: Any) -> BridgeSelector:
    return BridgeSelector(dataclasses.replace(CONFIG, **changes), octo, clock)


# ----- the model -----------------------------------------------------------------------------


def test_stats_update_reports_changes_and_keeps_missing_values() -> None:
    b = Bridge(JID.parse(f"{BREWERY}/jvb1"))
    assert b.nickname == "jvb1"
    assert b.drain and not b.graceful_shutdown and b.healthy
    changed = b.update_stats(stats(stress_level=0.3, region="eu", version="2.3.1", release="99",
                                   drain=False, relay_id="r1"), now=5.0)
    assert changed == {"region", "version", "release", "drain", "relay_id"}
    assert (b.stress, b.full_version, b.last_presence) == (0.3, "2.3.1-99", 5.0)
    # Missing stats keep their values; stress changes are not reported.
    assert b.update_stats(stats(stress_level=0.5)) == set()
    assert (b.stress, b.region, b.drain) == (0.5, "eu", False)
    # graceful_shutdown and shutting_down are sticky; drain toggles.
    assert b.update_stats(stats(graceful_shutdown=True, shutting_down=True, drain=True)) == {
        "graceful_shutdown", "shutting_down", "drain"}
    assert b.update_stats(stats(graceful_shutdown=False, shutting_down=False, drain=False)) == {"drain"}
    assert b.graceful_shutdown and b.shutting_down
    assert b.to_json(10.0)["operational"] is True


def test_full_version_without_release() -> None:
    assert bridge("a").full_version == "2.3.1"
    assert Bridge(JID.parse(f"{BREWERY}/x")).full_version is None


def test_operational_stickiness() -> None:
    b = bridge("a")
    assert b.is_operational(0.0)
    b.mark_failed(100.0)
    b.mark_healthy(110.0)
    assert not b.is_operational(110.0)
    assert not b.is_operational(159.9)
    assert b.is_operational(160.0)
    # Failed with no healthy verdict since: stays down after the threshold too.
    b.mark_failed(200.0)
    assert not b.is_operational(1000.0)


def test_rampup_correction_and_overload() -> None:
    b = bridge("a", 0.5)
    b.endpoint_added(0.0)
    b.endpoint_added(10.0)
    assert b.endpoints == 2
    assert b.corrected_stress(10.0) == pytest.approx(0.52)
    assert b.corrected_stress(20.5) == pytest.approx(0.51)  # the first one is older than 20 s
    assert b.corrected_stress(31.0) == pytest.approx(0.5)
    # The bridge's own per-participant figure replaces the configured one.
    b.update_stats(stats(average_participant_stress=0.2))
    b.endpoint_added(40.0)
    assert b.corrected_stress(40.0) == pytest.approx(0.7)
    assert not b.is_overloaded(40.0)
    b.endpoint_added(41.0)
    assert b.is_overloaded(41.0)
    b.endpoint_removed()
    b.endpoint_removed(10)
    assert b.endpoints == 0


def test_bridges_compare_by_identity() -> None:
    a, a2 = bridge("a"), bridge("a")
    assert a != a2 and len({a, a2}) == 2


# ----- selection -----------------------------------------------------------------------------


def test_least_loaded_and_no_bridge() -> None:
    clock = Clock()
    sel = selector(clock)
    assert sel.select([], {}, None) is None
    a, b, c = bridge("a", 0.4), bridge("b", 0.1), bridge("c", 0.3)
    assert sel.select([a, b, c], {}, None) is b


def test_region_preference() -> None:
    clock = Clock()
    sel = selector(clock)
    us, eu1, eu2 = bridge("us", 0.1, region="us"), bridge("eu1", 0.5, region="eu"), bridge("eu2", 0.3,
                                                                                         region="eu")
    assert sel.select([us, eu1, eu2], {}, "eu") is eu2
    assert sel.select([us, eu1, eu2], {}, "ap") is us
    assert sel.select([us, eu1, eu2], {}, None) is us


def test_non_operational_bridges_are_skipped_until_the_threshold() -> None:
    clock = Clock(1000.0)
    sel = selector(clock)
    a, b = bridge("a", 0.1), bridge("b", 0.5)
    a.mark_failed(clock.now)
    a.mark_healthy(clock.now + 1)
    assert sel.select([a, b], {}, None) is b
    clock.now += CONFIG.failure_reset_threshold
    assert sel.select([a, b], {}, None) is a
    b.mark_failed(clock.now)
    a.mark_failed(clock.now)
    assert sel.select([a, b], {}, None) is None


def test_removed_bridges_are_never_selected() -> None:
    clock = Clock()
    a, b = bridge("a", 0.1), bridge("b", 0.5)
    a.removed = True
    assert selector(clock).select([a, b], {a: 3}, None) is b


def test_shutting_down_graceful_and_drain_ordering() -> None:
    clock = Clock()
    sel = selector(clock)
    down = bridge("down", 0.0, shutting_down=True)
    graceful = bridge("graceful", 0.0, graceful_shutdown=True)
    draining = bridge("draining", 0.1, drain=True)
    busy = bridge("busy", 0.7)
    # Shutting down: never. Running and not draining beats lower stress.
    assert sel.select([down, graceful, draining, busy], {}, None) is busy
    # Draining beats graceful shutdown only through the order of the soft filters: with no
    # non-draining bridge, graceful ones are dropped next.
    assert sel.select([down, graceful, draining], {}, None) is graceful  # graceful does not drain
    graceful.drain = True
    assert sel.select([down, graceful, draining], {}, None) is draining
    # A bridge that never reported `drain` is treated as draining.
    silent = Bridge(JID.parse(f"{BREWERY}/silent"), CONFIG)
    assert silent.drain
    assert sel.select([silent, busy], {}, None) is busy
    assert sel.select([silent], {}, None) is silent
    # Only shutting-down bridges: nothing.
    assert sel.select([down], {}, None) is None


def test_existing_conference_bridge_is_kept() -> None:
    clock = Clock()
    sel = selector(clock)
    a, b = bridge("a", 0.9, relay_id="ra"), bridge("b", 0.0, relay_id="rb")
    # Even overloaded, in graceful shutdown or draining: Octo is off.
    a.update_stats(stats(graceful_shutdown=True, drain=True))
    assert sel.select([a, b], {a: 100}, None) is a
    # With Octo on, the single-bridge strategy still keeps it.
    octo_sel = selector(clock, octo=dataclasses.replace(OCTO, enabled=True))
    assert octo_sel.select([a, b], {a: 100}, None) is a
    # A non-operational conference bridge is not "in use": a new bridge is chosen (upstream #1050).
    a.mark_failed(clock.now)
    assert sel.select([a, b], {a: 5}, None) is b


def test_version_rule() -> None:
    clock = Clock()
    sel = selector(clock)
    old = bridge("old", 0.0, version="2.3.1", release="1")
    new = bridge("new", 0.2, version="2.3.2", release="1")
    assert sel.select([old, new], {}, None) is old
    assert sel.select([old, new], {}, None, pinned_version="2.3.2-1") is new
    assert sel.select([old, new], {}, None, pinned_version="9.9") is None
    # The conference's version must match a pin.
    assert sel.select([old, new], {old: 1}, None, pinned_version="2.3.2-1") is None
    # The conference's version filters what a multi-bridge strategy gets to see.
    seen: list[list[str]] = []

    class Recorder(SingleBridgeStrategy):
        def do_select(self, candidates: Sequence[Bridge], conference_bridges: ConferenceBridges,
                      ctx: SelectionContext) -> Bridge | None:
            seen.append([b.nickname for b in candidates])
            return super().do_select(candidates, conference_bridges, ctx)

    octo = dataclasses.replace(OCTO, enabled=True)
    relaying = bridge("relaying", 0.5, version="2.3.1", release="1", relay_id="r")
    recording = BridgeSelector(CONFIG, octo, clock, strategy=Recorder())
    assert recording.select([old, new, relaying], {relaying: 2}, None) is relaying
    assert seen == [["old", "relaying"]]
    # Mixed versions allowed: a pin no longer filters.
    mixed = selector(clock, octo=dataclasses.replace(OCTO, allow_mixed_versions=True))
    assert mixed.select([old, new], {}, None, pinned_version="2.3.2-1") is old


def test_rampup_spreads_a_burst() -> None:
    clock = Clock()
    sel = selector(clock)
    a, b = bridge("a", 0.10), bridge("b", 0.125)
    chosen = []
    for _ in range(6):
        pick = sel.select([a, b], {}, None)
        assert pick is not None
        pick.endpoint_added(clock.now)
        chosen.append(pick.nickname)
    assert chosen.count("a") == 4 and chosen.count("b") == 2
    # After the ramp-up interval the corrections are gone.
    clock.now += CONFIG.participant_rampup_interval + 1
    assert sel.select([a, b], {}, None) is a


def test_per_conference_limit_only_in_the_helpers() -> None:
    clock = Clock()
    config = dataclasses.replace(CONFIG, max_bridge_participants=2)
    a, b = bridge("a", 0.1, region="eu", config=config), bridge("b", 0.2, region="eu", config=config)
    ctx = SelectionContext(config, clock.now, "eu", True)
    assert ctx.overloaded_for_conference(a, {a: 2})
    assert not ctx.overloaded_for_conference(a, {a: 1})
    assert not ctx.overloaded_for_conference(b, {a: 2})
    assert not_loaded_in_region([a, b], {a: 2}, ctx, "eu") is b
    assert not_loaded_already_in_conference([a, b], {a: 2, b: 0}, ctx) is b
    # The single-bridge strategy ignores it.
    assert SingleBridgeStrategy().select([a, b], {a: 2}, ctx) is a


def test_every_configured_strategy_exists_and_warns_once_without_octo(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    with caplog.at_level(logging.WARNING, logger="jicofo.bridge.selector"):
        sel = selector(clock, selection_strategy=BridgeSelectionStrategyName.REGION_BASED)
        a, b = bridge("a", relay_id="ra"), bridge("b", relay_id="rb")
        assert sel.select([a, b], {}, None) is a
        # Octo off: the conference stays on its bridge.
        assert sel.select([a, b], {a: 100}, None) is a
    assert sel.strategy.name == "RegionBasedBridgeSelectionStrategy"
    assert len([r for r in caplog.records if "octo is disabled" in r.message]) == 1
