"""Whether a bridge still answers anything: the silence clock behind "a bridge that answers
nothing is failed" (issue 13).

Every request the focus sends a bridge, Colibri2 or health check, goes through `ask`, which tells
the bridge's `SilenceTracker` that it was sent and how it ended: answered (a result or an error:
either proves the bridge is alive), timed out, or abandoned (cancelled, or our own connection
went away, which says nothing about the bridge).

How a silent bridge is told from a slow one:

- any answer at all, to any request of any conference or to a health check, resets the clock: a
  bridge that answers late but within the request timeout is never silent, nor is one whose
  health checks time out while its Colibri2 requests are answered (or the other way round);
- the clock starts when the bridge first owes an answer after its last one: at the first request
  sent since, or at that answer if requests were still outstanding then (a bridge nobody has
  asked anything is not silent, and the time before we asked does not count);
- only a request that timed out makes the bridge a candidate: until then it may just be slow.

`silent_for(now)` is how long a bridge with a timed-out request has answered nothing; the brewery
fails the bridge (every conference moves off it) once that reaches
`jicofo.bridge.health-checks.silence-timeout`, through `watch_silence`.

Pure state with explicit `now`, apart from the change event `watch_silence` waits on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

import trio

from jicofo.xmpp.errors import IQTimeout, StanzaError

if TYPE_CHECKING:
    from jicofo.xmpp.client import BaseXMPPConnection

    from .model import Bridge

log = logging.getLogger(__name__)


class SilenceTracker:
    def __init__(self) -> None:
        self.pending = 0  # requests sent and not settled yet
        self.owed_since: float | None = None  # see the module docstring
        self.timed_out = False  # a request timed out since the last answer
        self.last_answer: float | None = None
        self._changed = trio.Event()

    def __repr__(self) -> str:
        return (f"<SilenceTracker pending={self.pending} owed_since={self.owed_since} "
                f"timed_out={self.timed_out}>")

    @property
    def changed(self) -> trio.Event:
        """Set at the next change that can move the verdict (replaced after each)."""
        return self._changed

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def sent(self, now: float) -> None:
        self.pending += 1
        if self.owed_since is None:
            self.owed_since = now
            self._notify()

    def answered(self, now: float) -> None:
        self._settle()
        self.last_answer = now
        self.timed_out = False
        # Alive now: whatever is still outstanding is owed from now on, not from when it was sent.
        self.owed_since = now if self.pending else None
        self._notify()

    def timed_out_at(self, now: float) -> None:
        """A request got no answer within its timeout; `owed_since` stays where it was."""
        self._settle()
        self.timed_out = True
        self._notify()

    def abandoned(self) -> None:
        """A request ended without an answer for reasons of ours (cancelled, connection lost)."""
        self._settle()
        if not self.pending and not self.timed_out:
            self.owed_since = None

    def restart(self, now: float) -> None:
        """Forget the silence so far (the bridge was just judged, or could not be): requests
        still outstanding are owed from `now`, and only a new timeout makes it silent again."""
        self.owed_since = now if self.pending else None
        self.timed_out = False
        self._notify()

    def _settle(self) -> None:
        if self.pending > 0:
            self.pending -= 1

    def silent_for(self, now: float) -> float:
        """How long the bridge has answered nothing, counted only once a request timed out
        (0 otherwise)."""
        if not self.timed_out or self.owed_since is None:
            return 0.0
        return max(0.0, now - self.owed_since)

    def deadline(self, limit: float) -> float | None:
        """When the bridge will have been silent for `limit`, if nothing changes; None while no
        request has timed out."""
        if not self.timed_out or self.owed_since is None:
            return None
        return self.owed_since + limit


async def ask(client: BaseXMPPConnection, bridge: Bridge, iq: Element, *, timeout: float,
              on_sent: Callable[[], None] | None = None) -> Element:
    """`client.request` to a bridge, telling its silence tracker how it went."""
    tracker = bridge.silence
    sent = False

    def written() -> None:
        nonlocal sent
        sent = True
        tracker.sent(trio.current_time())
        if on_sent is not None:
            on_sent()

    outcome = "abandoned"
    try:
        answer = await client.request(iq, timeout=timeout, on_sent=written)
        outcome = "answered"
        return answer
    except StanzaError:
        outcome = "answered"
        raise
    except IQTimeout:
        # While our own connection is down a timeout says nothing about the bridge.
        outcome = "timed-out" if client.connected else "abandoned"
        raise
    finally:
        if sent:
            if outcome == "answered":
                tracker.answered(trio.current_time())
            elif outcome == "timed-out":
                tracker.timed_out_at(trio.current_time())
            else:
                tracker.abandoned()


async def watch_silence(
    bridge: Bridge,
    limit: float,
    on_silent: Callable[[float], None],
    *,
    can_judge: Callable[[], bool] = lambda: True,
) -> None:
    """Until cancelled: call `on_silent(seconds)` each time `bridge` has answered nothing for
    `limit` seconds after one of its requests timed out. When `can_judge()` is false at that
    moment (our own connection or room is gone) the silence is forgotten instead."""
    tracker = bridge.silence
    while True:
        changed = tracker.changed
        deadline = tracker.deadline(limit)
        if deadline is None:
            await changed.wait()
            continue
        now = trio.current_time()
        if now < deadline:
            with trio.move_on_after(deadline - now):
                await changed.wait()
            continue
        if can_judge():
            on_silent(tracker.silent_for(now))
        else:
            log.info("bridge %s: silent for %.0f s, but the focus is not connected to judge it",
                     bridge.nickname, tracker.silent_for(now))
        tracker.restart(now)
