"""Per-bridge ICE-failure detection (docs/jicofo.md #61, §8.5) and how selection avoids a bridge
that is failing ICE."""

from __future__ import annotations

import dataclasses

import pytest
import trio
import trio.testing

from jicofo.bridge.model import Bridge
from jicofo.bridge.selector import BridgeSelector
from jicofo.config.model import BridgeConfig, IceFailureDetectionConfig

from .test_bridge_selection import CONFIG, OCTO, Clock, bridge, stats

DETECTION = IceFailureDetectionConfig(enabled=True, interval=120.0, min_endpoints=30, threshold=0.1,
                                      timeout=600.0)
ON = dataclasses.replace(CONFIG, ice_failure_detection=DETECTION)


def with_endpoints(nick: str, endpoints: int, stress: float = 0.1, *, config: BridgeConfig = ON) -> Bridge:
    b = bridge(nick, stress, config=config)
    for _ in range(endpoints):
        b.endpoint_added(-1000.0)  # long before: no ramp-up correction
    return b


def test_off_by_default_but_still_counted() -> None:
    assert not CONFIG.ice_failure_detection.enabled
    b = with_endpoints("a", 40, config=CONFIG)
    for i in range(40):
        assert not b.endpoint_requested_restart(float(i))
    assert not b.failing_ice(40.0)
    assert b.restart_requests(40.0) == 40
    assert b.to_json(40.0)["endpoint-restart-requests"] == 40
    assert b.to_json(40.0)["failing-ice"] is False


def test_more_than_the_threshold_in_the_window_marks_the_bridge() -> None:
    b = with_endpoints("a", 40)
    # 10 % of 40 is 4: four reports are not more than that, the fifth is.
    for t in (0.0, 1.0, 2.0, 3.0):
        assert not b.endpoint_requested_restart(t)
    assert not b.failing_ice(3.0)
    assert b.endpoint_ice_failed(4.0)  # ICE-failed notices count the same
    assert b.failing_ice(4.0)
    assert b.to_json(4.0)["failing-ice"] is True
    # Time-boxed: `timeout` after the last detection.
    assert b.failing_ice(603.9)
    assert not b.failing_ice(604.0)


def test_reports_outside_the_window_do_not_count() -> None:
    b = with_endpoints("a", 40)
    for t in (0.0, 30.0, 60.0, 90.0):
        b.endpoint_requested_restart(t)
    # At 125 s the first one is older than the 120 s window: four in the window again.
    assert not b.endpoint_requested_restart(125.0)
    assert b.restart_requests(125.0) == 4
    assert b.endpoint_requested_restart(126.0)


def test_too_few_endpoints_never_mark_the_bridge() -> None:
    b = with_endpoints("a", 29)
    for t in range(29):
        assert not b.endpoint_requested_restart(float(t))
    assert not b.failing_ice(29.0)
    b.endpoint_added(-1000.0)  # 30 endpoints: the minimum is inclusive
    assert b.endpoint_requested_restart(30.0)


def test_a_new_detection_restarts_the_time_box() -> None:
    b = with_endpoints("a", 30)
    for t in range(4):
        b.endpoint_requested_restart(float(t))
    assert b.failing_ice(3.0)
    for t in range(500, 504):
        b.endpoint_requested_restart(float(t))
    assert b.failing_ice(1000.0)
    assert not b.failing_ice(1103.0)


def test_failing_ice_raises_the_corrected_stress_just_over_the_threshold() -> None:
    b = with_endpoints("a", 30, stress=0.2)
    assert b.corrected_stress(0.0) == pytest.approx(0.2)
    for t in range(4):
        b.endpoint_requested_restart(float(t))
    assert b.is_overloaded(3.0)
    assert b.corrected_stress(3.0) == pytest.approx(CONFIG.stress_threshold + 0.01)
    # A bridge reporting more than that keeps its own figure.
    b.update_stats(stats(stress_level=0.95))
    assert b.corrected_stress(3.0) == pytest.approx(0.95)


def test_selection_avoids_a_bridge_failing_ice() -> None:
    clock = Clock(10.0)
    sel = BridgeSelector(ON, OCTO, clock)
    failing, busy = with_endpoints("failing", 30, stress=0.0), with_endpoints("busy", 0, stress=0.6)
    assert sel.select([failing, busy], {}, None) is failing
    for _ in range(4):
        failing.endpoint_requested_restart(clock.now)
    assert sel.select([failing, busy], {}, None) is busy
    # Still used when nothing else is left, and again once the time-box is over.
    assert sel.select([failing], {}, None) is failing
    clock.now += DETECTION.timeout
    assert sel.select([failing, busy], {}, None) is failing


async def test_now_defaults_to_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    b = with_endpoints("a", 30)
    await trio.sleep(50)
    for _ in range(4):
        b.endpoint_requested_restart()  # as ConferenceServices.brewery_note_restart calls it
    assert b.failing_ice(trio.current_time())
    await trio.sleep(DETECTION.timeout)
    assert not b.failing_ice(trio.current_time())
