"""Automatic load redistribution (`jicofo.bridge.load-redistribution.*`, off by default;
docs/jicofo.md #62, upstream's `LoadRedistributor`).

Every `interval`, each bridge whose corrected stress is at least `stress-threshold` gives up to
`endpoints` of this focus's endpoints, which are re-invited elsewhere (the selector then avoids the
loaded bridge like any other); the bridge is then left alone for `timeout`. Nothing moves while no
bridge could take the endpoints.

    redistributor = LoadRedistributor(config.bridge.load_redistribution)
    moves = redistributor.plan(bridges, now)          # pure: [(bridge, count), ...]
    await run(bridges_fn, mover, config.bridge.load_redistribution)   # the timer loop

`mover(bridge, count)` is the caller's: it re-invites up to `count` endpoints that are on `bridge`
and returns how many it moved (it may be a coroutine function). `pick_endpoints` is the choice
upstream makes there: the largest conferences on the bridge first.

Where this differs from upstream, on purpose: a bridge "that could take the endpoints" must be
operational, not removed, not shutting down, not in graceful shutdown and not draining, besides not
overloaded (upstream counts any known bridge that is not overloaded, so endpoints could be moved
when only a failed or draining bridge is idle, and land back on loaded ones); and a bridge on which
this focus has no endpoints is skipped without starting its time-out.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import TypeVar

import trio

from jicofo.config.model import LoadRedistributionConfig

from .model import Bridge

log = logging.getLogger(__name__)

Mover = Callable[[Bridge, int], int | Awaitable[int]]
_T = TypeVar("_T", bound=Hashable)


def can_take_endpoints(bridge: Bridge, now: float) -> bool:
    """A bridge that selection would happily give new endpoints to."""
    return (not bridge.removed and bridge.is_operational(now) and not bridge.shutting_down
            and not bridge.graceful_shutdown and not bridge.drain and not bridge.is_overloaded(now))


def overloaded_bridges(bridges: Iterable[Bridge], now: float, stress_threshold: float) -> list[Bridge]:
    """Bridges at or above `stress_threshold` (corrected stress), most loaded first; removed and
    shutting-down ones are left out (their conferences move off them anyway)."""
    loaded = [b for b in bridges if not b.removed and not b.shutting_down
              and b.corrected_stress(now) >= stress_threshold]
    return sorted(loaded, key=lambda b: b.corrected_stress(now), reverse=True)


def pick_endpoints(counts: Iterable[tuple[_T, int]], n: int) -> dict[_T, int]:
    """How many endpoints to take from each conference to move `n` off a bridge, given each
    conference's count there: the largest conferences first, greedily. For example with
    a=1, b=3, c=3 on the bridge: n=2 gives {b: 2}, n=4 gives {b: 3, c: 1}, n=100 all of them."""
    chosen: dict[_T, int] = {}
    left = n
    for key, count in sorted(counts, key=lambda item: item[1], reverse=True):
        if left <= 0:
            break
        take = min(count, left)
        if take > 0:
            chosen[key] = take
            left -= take
    return chosen


class LoadRedistributor:
    """The decisions, with the per-bridge time-outs they need; no I/O."""

    def __init__(self, config: LoadRedistributionConfig) -> None:
        self.config = config
        self._resting: dict[Bridge, float] = {}  # bridge → when endpoints were last moved off it
        self.total_moved = 0  # for the `load_redistributor_endpoints_moved` counter

    def resting(self, bridge: Bridge, now: float) -> bool:
        """Endpoints were moved off `bridge` less than `timeout` ago."""
        since = self._resting.get(bridge)
        return since is not None and now - since < self.config.timeout

    def plan(self, bridges: Iterable[Bridge], now: float) -> list[tuple[Bridge, int]]:
        """The moves to make now: (bridge, how many endpoints), and start each such bridge's
        time-out. Empty when no bridge could take the endpoints."""
        bridges = list(bridges)
        self._resting = {b: t for b, t in self._resting.items()
                         if not b.removed and now - t < self.config.timeout}
        if not any(can_take_endpoints(b, now) for b in bridges):
            if any(b.corrected_stress(now) >= self.config.stress_threshold for b in bridges):
                log.warning("load redistribution: bridges are overloaded but none could take "
                            "their endpoints; nothing moved")
            return []
        moves: list[tuple[Bridge, int]] = []
        for bridge in overloaded_bridges(bridges, now, self.config.stress_threshold):
            if self.resting(bridge, now) or bridge.endpoints <= 0:
                continue
            self._resting[bridge] = now
            moves.append((bridge, min(self.config.endpoints, bridge.endpoints)))
        return moves

    async def run_once(self, bridges: Iterable[Bridge], mover: Mover, now: float) -> int:
        """Plan and carry the moves out; the number of endpoints moved. A mover that raises is
        logged and counted as having moved nothing."""
        moved_total = 0
        for bridge, count in self.plan(bridges, now):
            try:
                result = mover(bridge, count)
                moved = await result if inspect.isawaitable(result) else result
            except Exception:
                log.exception("load redistribution: moving %d endpoints off %s failed", count,
                              bridge.nickname)
                continue
            log.info("load redistribution: moved %d of %d endpoints off %s (stress %.3f)", moved,
                     count, bridge.nickname, bridge.corrected_stress(now))
            moved_total += moved
        self.total_moved += moved_total
        return moved_total


async def run(
    bridges_fn: Callable[[], Iterable[Bridge]],
    mover: Mover,
    config: LoadRedistributionConfig,
    *,
    redistributor: LoadRedistributor | None = None,
    clock: Callable[[], float] = trio.current_time,
    task_status: trio.TaskStatus[LoadRedistributor | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Redistribute every `config.interval` (the first time one interval after start) until
    cancelled; `started(the redistributor)` at once. With `config.enabled` false it reports
    `started(None)` and returns. Ticks keep a fixed rate however long the moves take, except that
    moves lasting longer than an interval put the next tick one interval after they end (never
    back to back)."""
    if not config.enabled:
        task_status.started(None)
        return
    if redistributor is None:
        redistributor = LoadRedistributor(config)
    log.info("load redistribution every %.0f s: up to %d endpoints off each bridge at stress "
             "%.2f or more, then %.0f s rest", config.interval, config.endpoints,
             config.stress_threshold, config.timeout)
    task_status.started(redistributor)
    deadline = trio.current_time()
    while True:
        deadline += config.interval
        await trio.sleep_until(deadline)
        try:
            await redistributor.run_once(bridges_fn(), mover, clock())
        except Exception:  # a bug here must not end the focus
            log.exception("load redistribution failed")
        if trio.current_time() >= deadline + config.interval:  # overran the next tick
            deadline = trio.current_time()
