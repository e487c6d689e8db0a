"""Polling with a deadline, for tests and tools that watch state they do not own (another
process's HTTP API, a registry). Code that owns the state should use a trio.Event instead."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio


async def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str = "condition", interval: float = 0.05
) -> None:
    """Return once `predicate()` holds; raise TimeoutError naming `what` after `timeout` s."""
    with trio.move_on_after(timeout):
        while True:
            if predicate():
                return
            await trio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


async def wait_until_async(
    predicate: Callable[[], Awaitable[bool]], timeout: float, what: str = "condition",
    interval: float = 0.05,
) -> None:
    with trio.move_on_after(timeout):
        while True:
            if await predicate():
                return
            await trio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
