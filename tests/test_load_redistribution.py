"""Automatic load redistribution (docs/jicofo.md #62): the decisions (pure) and the timer loop
(trio's MockClock)."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import trio
import trio.lowlevel
import trio.testing

from jicofo.bridge.load_redistribution import (
    LoadRedistributor,
    can_take_endpoints,
    overloaded_bridges,
    pick_endpoints,
    run,
)
from jicofo.bridge.model import Bridge
from jicofo.config.model import LoadRedistributionConfig

from .test_bridge_selection import CONFIG, bridge

ON = dataclasses.replace(CONFIG.load_redistribution, enabled=True)


def loaded(nick: str, stress: float, endpoints: int, **values: object) -> Bridge:
    b = bridge(nick, stress, **values)  # type: ignore[arg-type]
    for _ in range(endpoints):
        b.endpoint_added(-1000.0)  # long ago: no ramp-up correction
    return b


def test_defaults_are_upstreams() -> None:
    cfg = CONFIG.load_redistribution
    assert (cfg.enabled, cfg.interval, cfg.stress_threshold, cfg.timeout, cfg.endpoints) == (
        False, 60.0, 0.9, 180.0, 10)


def test_pick_endpoints_takes_the_largest_conferences_first() -> None:
    counts = [("a", 1), ("b", 3), ("c", 3)]
    assert pick_endpoints(counts, 0) == {}
    assert pick_endpoints(counts, 2) == {"b": 2}
    assert pick_endpoints(counts, 4) == {"b": 3, "c": 1}
    assert pick_endpoints(counts, 7) == {"b": 3, "c": 3, "a": 1}
    assert pick_endpoints(counts, 100) == {"b": 3, "c": 3, "a": 1}
    assert pick_endpoints([("x", 0), ("y", 2)], 5) == {"y": 2}


def test_which_bridges_are_overloaded() -> None:
    hot, warm, cool = loaded("hot", 0.95, 5), loaded("warm", 0.9, 5), loaded("cool", 0.5, 5)
    gone, down = loaded("gone", 0.99, 5), loaded("down", 0.99, 5, shutting_down=True)
    gone.removed = True
    assert overloaded_bridges([cool, warm, gone, down, hot], 0.0, 0.9) == [hot, warm]
    # Recently added endpoints count (the corrected stress).
    for _ in range(5):
        cool.endpoint_added(0.0)
    assert cool.corrected_stress(0.0) == pytest.approx(0.55)
    assert overloaded_bridges([cool], 0.0, 0.55) == [cool]


def test_a_bridge_that_can_take_endpoints() -> None:
    assert can_take_endpoints(loaded("ok", 0.5, 0), 0.0)
    assert not can_take_endpoints(loaded("full", 0.8, 0), 0.0)  # the selector's threshold
    assert not can_take_endpoints(loaded("draining", 0.1, 0, drain=True), 0.0)
    assert not can_take_endpoints(loaded("graceful", 0.1, 0, graceful_shutdown=True), 0.0)
    assert not can_take_endpoints(loaded("down", 0.1, 0, shutting_down=True), 0.0)
    failed = loaded("failed", 0.1, 0)
    failed.mark_failed(0.0)
    assert not can_take_endpoints(failed, 1.0)
    removed = loaded("removed", 0.1, 0)
    removed.removed = True
    assert not can_take_endpoints(removed, 0.0)


def test_plan_moves_from_each_overloaded_bridge_then_rests_it() -> None:
    lr = LoadRedistributor(ON)
    hot, warm, cool = loaded("hot", 0.97, 50), loaded("warm", 0.92, 4), loaded("cool", 0.3, 5)
    assert lr.plan([cool, warm, hot], 0.0) == [(hot, 10), (warm, 4)]  # never more than it has
    assert lr.resting(hot, 0.0) and lr.resting(warm, 179.0) and not lr.resting(cool, 0.0)
    # Still overloaded a minute later: left alone until `timeout` has passed.
    assert lr.plan([cool, warm, hot], 60.0) == []
    assert lr.plan([cool, warm, hot], 180.0) == [(hot, 10), (warm, 4)]


def test_plan_moves_nothing_without_a_bridge_to_take_the_endpoints(
        caplog: pytest.LogCaptureFixture) -> None:
    lr = LoadRedistributor(ON)
    hot = loaded("hot", 0.95, 30)
    draining = loaded("draining", 0.1, 0, drain=True)
    busy = loaded("busy", 0.85, 3)  # overloaded for selection, below the redistribution threshold
    with caplog.at_level(logging.WARNING):
        assert lr.plan([hot, draining, busy], 0.0) == []
    assert "none could take" in caplog.text
    assert not lr.resting(hot, 0.0)  # nothing moved: no rest either
    idle = loaded("idle", 0.2, 0)
    assert lr.plan([hot, draining, busy, idle], 1.0) == [(hot, 10)]


def test_plan_skips_bridges_without_endpoints_of_ours_and_forgets_removed_ones() -> None:
    lr = LoadRedistributor(ON)
    foreign, idle = loaded("foreign", 0.95, 0), loaded("idle", 0.1, 0)
    assert lr.plan([foreign, idle], 0.0) == []
    assert not lr.resting(foreign, 0.0)
    hot = loaded("hot", 0.95, 20)
    assert lr.plan([hot, idle], 0.0) == [(hot, 10)]
    hot.removed = True
    lr.plan([idle], 1.0)
    assert not lr.resting(hot, 1.0)


async def test_run_once_uses_sync_and_async_movers_and_survives_a_failing_one(
        caplog: pytest.LogCaptureFixture) -> None:
    lr = LoadRedistributor(ON)
    a, b, idle = loaded("a", 0.99, 20), loaded("b", 0.95, 20), loaded("idle", 0.1, 0)
    calls: list[tuple[str, int]] = []

    async def mover(bridge: Bridge, count: int) -> int:
        calls.append((bridge.nickname, count))
        await trio.lowlevel.checkpoint()
        if bridge is a:
            raise RuntimeError("boom")
        return count - 3

    with caplog.at_level(logging.ERROR):
        assert await lr.run_once([a, b, idle], mover, 0.0) == 7
    assert calls == [("a", 10), ("b", 10)]
    assert "boom" in caplog.text
    c = loaded("c", 0.91, 2)
    assert await lr.run_once([a, b, c, idle], lambda bridge, count: count, 1.0) == 2
    assert lr.total_moved == 9


async def test_run_ticks_on_the_interval(autojump_clock: trio.testing.MockClock) -> None:
    hot, idle = loaded("hot", 0.95, 100), loaded("idle", 0.1, 0)
    moves: list[tuple[float, str, int]] = []

    def mover(bridge: Bridge, count: int) -> int:
        moves.append((trio.current_time(), bridge.nickname, count))
        return count

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        lr = await nursery.start(run, lambda: [hot, idle], mover, ON)
        assert isinstance(lr, LoadRedistributor)
        await trio.sleep(ON.interval * 7 + 1)
        nursery.cancel_scope.cancel()
    # The first tick one interval after start; then every `timeout` (180 s = 3 ticks) for the
    # bridge that stays overloaded.
    assert [(t - start, n, c) for t, n, c in moves] == [
        (60.0, "hot", 10), (240.0, "hot", 10), (420.0, "hot", 10)]
    assert lr.total_moved == 30


async def test_run_keeps_its_rate_when_the_mover_is_slow(autojump_clock: trio.testing.MockClock) -> None:
    config = dataclasses.replace(ON, timeout=0.0)
    hot, idle = loaded("hot", 0.95, 100), loaded("idle", 0.1, 0)
    ticks: list[float] = []

    async def slow(bridge: Bridge, count: int) -> int:
        ticks.append(trio.current_time())
        await trio.sleep(25)
        return 0

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(run, lambda: [hot, idle], slow, config)
        await trio.sleep(200)
        nursery.cancel_scope.cancel()
    assert [t - start for t in ticks] == [60.0, 120.0, 180.0]
    # Slower than the interval: the next tick one interval after the moves end.
    ticks.clear()

    async def slower(bridge: Bridge, count: int) -> int:
        ticks.append(trio.current_time())
        await trio.sleep(100)
        return 0

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(run, lambda: [hot, idle], slower, config)
        await trio.sleep(500)
        nursery.cancel_scope.cancel()
    assert [t - start for t in ticks] == [60.0, 220.0, 380.0]


async def test_run_returns_at_once_when_disabled() -> None:
    config = LoadRedistributionConfig(enabled=False, interval=60.0, stress_threshold=0.9, timeout=180.0,
                                      endpoints=10)
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            assert await nursery.start(run, list, lambda b, n: n, config) is None
