"""The silence rule (jicofo/bridge/silence.py) in memory: the tracker with explicit times, and
`ask` + `watch_silence` on trio's MockClock against a scripted connection (when each request is
answered, if at all). End to end, against Prosody and the bridge simulator, in
test_bridge_failures.py."""

from __future__ import annotations

import functools
from collections.abc import Callable
from xml.etree.ElementTree import Element

import pytest
import trio
import trio.testing

from jicofo.bridge.model import Bridge
from jicofo.bridge.silence import SilenceTracker, ask, watch_silence
from jicofo.xmpp.errors import IQTimeout, NotConnected, StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.xml import element

TIMEOUT = 15.0  # the request timeout (upstream's reply-timeout)
LIMIT = 45.0  # silence-timeout


# ----- the tracker -------------------------------------------------------------------------------


def test_nothing_asked_is_not_silence() -> None:
    tracker = SilenceTracker()
    assert tracker.silent_for(1000) == 0 and tracker.deadline(LIMIT) is None


def test_silence_counts_from_the_first_unanswered_request_once_one_timed_out() -> None:
    tracker = SilenceTracker()
    tracker.sent(10)
    assert tracker.silent_for(24) == 0, "pending, not timed out: maybe only slow"
    tracker.sent(12)
    tracker.timed_out_at(25)
    assert tracker.silent_for(25) == 15 and tracker.deadline(LIMIT) == 55
    tracker.timed_out_at(27)
    assert tracker.deadline(LIMIT) == 55, "from the first one, not the last"


def test_any_answer_resets_the_clock() -> None:
    tracker = SilenceTracker()
    tracker.sent(0)
    tracker.timed_out_at(15)
    tracker.sent(20)  # another conference's request, or a health check
    tracker.answered(21)  # an error answer counts as much (ask reports it as answered)
    assert tracker.silent_for(100) == 0 and tracker.deadline(LIMIT) is None


def test_an_answer_moves_the_clock_of_what_is_still_outstanding() -> None:
    tracker = SilenceTracker()
    tracker.sent(0)
    tracker.sent(1)
    tracker.answered(10)  # alive at 10: the second request is owed from then
    tracker.timed_out_at(16)
    assert tracker.deadline(LIMIT) == 10 + LIMIT


def test_a_request_abandoned_by_us_is_no_silence() -> None:
    tracker = SilenceTracker()
    tracker.sent(0)
    tracker.abandoned()
    assert tracker.owed_since is None and tracker.deadline(LIMIT) is None
    tracker.sent(5)
    assert tracker.owed_since == 5


# ----- ask + watch_silence on a scripted connection ----------------------------------------------


class ScriptedConnection:
    """Answers each request after `delays[kind]` seconds (kind: "health" or "colibri"), with an
    error when `errors` says so; None: never (the request times out)."""

    def __init__(self) -> None:
        self.connected = True
        self.delays: dict[str, float | None] = {"health": 0.0, "colibri": 0.0}
        self.errors: set[str] = set()

    async def request(self, iq: Element, timeout: float, *,
                      on_sent: Callable[[], None] | None = None) -> Element:
        kind = iq.tag
        if on_sent is not None:
            on_sent()
        delay = self.delays[kind]
        if delay is None or delay > timeout:
            await trio.sleep(timeout)
            raise IQTimeout("no answer")
        await trio.sleep(delay)
        if kind in self.errors:
            raise StanzaError("item-not-found")
        return element("result")


def a_bridge() -> Bridge:
    return Bridge(JID.parse("jvbbrewery@internal.example.com/jvb1"))


class Watched:
    """A bridge under `watch_silence`, with a health check every 10 s (as the brewery does) and
    Colibri2 requests when a test sends them."""

    def __init__(self, nursery: trio.Nursery, connection: ScriptedConnection,
                 *, health_every: float | None = 10.0) -> None:
        self.bridge = a_bridge()
        self.connection = connection
        self.verdicts: list[tuple[float, float]] = []  # (when, silent for)
        self.judge = True
        self.nursery = nursery
        nursery.start_soon(functools.partial(watch_silence, self.bridge, LIMIT, self._silent,
                                             can_judge=self._can_judge))
        if health_every is not None:
            nursery.start_soon(self._health, health_every)

    def _can_judge(self) -> bool:
        return self.judge

    def _silent(self, seconds: float) -> None:
        self.verdicts.append((trio.current_time(), seconds))

    async def _request(self, kind: str) -> None:
        try:
            await ask(self.connection, self.bridge, element(kind),  # type: ignore[arg-type]
                      timeout=TIMEOUT)
        except (IQTimeout, StanzaError, NotConnected):
            pass

    async def _health(self, every: float) -> None:
        while True:
            await trio.sleep(every)
            await self._request("health")

    def colibri(self) -> None:
        self.nursery.start_soon(self._request, "colibri")


async def test_a_bridge_that_answers_nothing_is_failed_after_the_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connection = ScriptedConnection()
    async with trio.open_nursery() as nursery:
        watched = Watched(nursery, connection)
        await trio.sleep(25)  # checks at 10 and 20 answered
        assert watched.verdicts == []
        connection.delays = {"health": None, "colibri": None}
        # The next check goes out at 30 and times out at 45: silent since 30, failed at 75.
        await trio.sleep(49.9)
        assert watched.verdicts == []
        await trio.sleep(0.2)
        assert [round(t, 3) for t, _ in watched.verdicts] == [75.0]
        assert watched.verdicts[0][1] == pytest.approx(LIMIT)
        # Still silent: judged again one limit later (the brewery emits no second failure).
        await trio.sleep(LIMIT + 10)
        assert len(watched.verdicts) == 2
        nursery.cancel_scope.cancel()


async def test_a_colibri2_timeout_without_health_checks_starts_the_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connection = ScriptedConnection()
    connection.delays["colibri"] = None
    async with trio.open_nursery() as nursery:
        watched = Watched(nursery, connection, health_every=None)
        await trio.sleep(5)
        watched.colibri()  # sent at 5, times out at 20
        await trio.sleep(LIMIT - 0.1)
        assert watched.verdicts == []
        await trio.sleep(0.2)
        assert [round(t, 3) for t, _ in watched.verdicts] == [5 + LIMIT]
        nursery.cancel_scope.cancel()


async def test_a_slow_bridge_is_never_failed(autojump_clock: trio.testing.MockClock) -> None:
    """Everything answered late, just within the timeout, with Colibri2 traffic pipelined
    behind: never silent."""
    connection = ScriptedConnection()
    connection.delays = {"health": TIMEOUT - 0.5, "colibri": TIMEOUT - 0.5}
    async with trio.open_nursery() as nursery:
        watched = Watched(nursery, connection)
        for _ in range(40):
            watched.colibri()
            await trio.sleep(7)
        assert watched.verdicts == []
        assert watched.bridge.silence.deadline(LIMIT) is None
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("answering", ["colibri", "health"])
async def test_one_kind_answering_keeps_the_bridge(
    autojump_clock: trio.testing.MockClock, answering: str,
) -> None:
    """Health checks time out but Colibri2 is answered (within the limit), or the other way
    round, or Colibri2 answered with errors only: the bridge is alive, it is not failed for
    silence (a health check timeout alone has its own, milder verdict in the brewery)."""
    connection = ScriptedConnection()
    silent = "health" if answering == "colibri" else "colibri"
    connection.delays[silent] = None
    connection.errors = {answering}  # an error is an answer
    async with trio.open_nursery() as nursery:
        watched = Watched(nursery, connection)
        for _ in range(20):
            watched.colibri()
            await trio.sleep(LIMIT / 2)
        assert watched.verdicts == []
        nursery.cancel_scope.cancel()


async def test_no_verdict_while_the_focus_cannot_judge(autojump_clock: trio.testing.MockClock) -> None:
    """Our own connection or room was gone when the limit came: the silence is forgotten and
    counted afresh from the next timeout."""
    connection = ScriptedConnection()
    connection.delays = {"health": None, "colibri": None}
    async with trio.open_nursery() as nursery:
        watched = Watched(nursery, connection)
        watched.judge = False
        await trio.sleep(10 + LIMIT + 1)  # the first check (at 10) would have failed it at 55
        assert watched.verdicts == []
        watched.judge = True
        await trio.sleep(LIMIT + TIMEOUT + 10)
        assert len(watched.verdicts) == 1
        nursery.cancel_scope.cancel()


async def test_a_timeout_while_disconnected_does_not_count(autojump_clock: trio.testing.MockClock) -> None:
    connection = ScriptedConnection()
    connection.delays["colibri"] = None
    connection.connected = False
    bridge = a_bridge()
    with pytest.raises(IQTimeout):
        await ask(connection, bridge, element("colibri"), timeout=TIMEOUT)  # type: ignore[arg-type]
    assert bridge.silence.deadline(LIMIT) is None and bridge.silence.pending == 0
