"""The Jibri session state machine and the detector's selection rules, in memory under trio's
MockClock (jicofo/jibri/session.py, detector.py): timers and retries without a network."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from jicofo.jibri.detector import FAILURE_TIMEOUT, JibriDetector
from jicofo.jibri.session import AllBusy, InternalError, JibriSession, NotAvailable, StartParams
from jicofo.xmlns.jibri import FailureReason, JibriInstanceStatus, JibriIQ, Status
from jicofo.xmpp.errors import IQTimeout, StanzaError
from jicofo.xmpp.jid import JID

BREWERY = JID.parse("jibribrewery@internal.auth.meet.test")
ROOM = JID.parse("room@conference.meet.test")
MOD = ROOM.with_resource("mod")


class FakeLink:
    """Answers `start` per instance: "pending" (default), "busy", "timeout", "error", "on"."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}
        self.starts: list[tuple[str, JibriIQ]] = []
        self.stops: list[tuple[str, str]] = []

    async def start(self, jibri: JID, request: JibriIQ, timeout: float) -> JibriIQ:
        self.starts.append((jibri.resource or "", request))
        answer = self.answers.get(jibri.resource or "", "pending")
        await trio.sleep(0.01)
        if answer == "timeout":
            await trio.sleep(timeout)
            raise IQTimeout("no answer")
        if answer == "error":
            raise StanzaError("internal-server-error")
        if answer == "busy":
            return JibriIQ(status=Status.OFF, failure_reason=FailureReason.BUSY, should_retry=True)
        return JibriIQ(status=Status(answer))

    def stop(self, jibri: JID, session_id: str) -> None:
        self.stops.append((jibri.resource or "", session_id))


def detector(*nicks: str, available: bool = True) -> JibriDetector:
    d = JibriDetector(None, BREWERY, request_timeout=5)  # type: ignore[arg-type]
    status = JibriInstanceStatus("idle" if available else "busy", "healthy")
    for nick in nicks:
        d.instance_updated(BREWERY.with_resource(nick), status.to_element())
    return d


def jid(nick: str) -> JID:
    return BREWERY.with_resource(nick)


class Harness:
    def __init__(self, nursery: trio.Nursery, det: JibriDetector, **kw: Any) -> None:
        self.link = FakeLink()
        self.published: list[tuple[Status, FailureReason | None]] = []
        self.session = JibriSession(
            StartParams(room=ROOM, initiator=MOD), "sid-1", detector=det, link=self.link,
            nursery=nursery, on_state=lambda s, st, f: self.published.append((st, f)),
            pending_timeout=kw.get("pending_timeout", 90.0), num_retries=kw.get("num_retries", 5),
            reply_timeout=15.0)


async def test_selection_rules(autojump_clock: trio.testing.MockClock) -> None:
    d = detector("a", "b")
    first = d.select()
    assert first is not None
    # Not the same one again within 200 ms; the other one is fine.
    second = d.select()
    assert second is not None and second != first
    assert d.select() is None
    await trio.sleep(0.25)
    d.instance_failed(jid("a"))
    # The failed one waits a minute; the other is chosen (never failed first).
    assert d.select() == jid("b")
    await trio.sleep(0.25)
    d.instance_failed(jid("b"))
    assert d.select() is None
    await trio.sleep(FAILURE_TIMEOUT)
    assert d.select() == jid("a")  # the older failure first
    # A presence saying it is available again forgets the failure at once.
    d.instance_failed(jid("a"))
    await trio.sleep(0.25)
    d.instance_updated(jid("a"), JibriInstanceStatus("idle", "healthy").to_element())
    assert d.select() == jid("a")
    # Busy (also how a Jibri shutting down says so) or unhealthy: not available.
    d.instance_updated(jid("a"), JibriInstanceStatus("busy", "healthy").to_element())
    d.instance_updated(jid("b"), JibriInstanceStatus("idle", "unhealthy").to_element())
    assert d.available_count() == 0 and d.any_connected()


async def test_start_errors_none_and_busy(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(NotAvailable):
        await Harness(nursery, detector()).session.start()
    with pytest.raises(AllBusy):
        await Harness(nursery, detector("a", available=False)).session.start()


async def test_start_moves_past_busy_timeout_and_error(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    h = Harness(nursery, det := detector("a", "b", "c"))
    h.link.answers = {"a": "busy", "b": "timeout"}
    # Ties in failure time go by dict order: a, b, then c.
    await h.session.start()
    assert [nick for nick, _ in h.link.starts] == ["a", "b", "c"]
    assert h.session.current == jid("c") and h.session.status is Status.PENDING
    assert h.link.stops == [("b", "sid-1")]  # the timed-out one is told to stop
    assert h.published == []  # pending is not published
    assert det.select() is None  # a and b failed, c just selected
    # Spent retries: internal-server-error.
    h2 = Harness(nursery, detector("x", "y"), num_retries=1)
    h2.link.answers = {"x": "error", "y": "error"}
    with pytest.raises(InternalError):
        await h2.session.start()


async def test_status_updates_retry_and_stop(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    h = Harness(nursery, detector("a", "b"))
    await h.session.start()
    first = h.session.current
    assert first is not None
    other = jid("b") if first == jid("a") else jid("a")
    # From an instance the session is not using: ignored.
    h.session.handle_status(other, JibriIQ(status=Status.ON))
    assert h.published == []
    h.session.handle_status(first, JibriIQ(status=Status.ON))
    assert h.published == [(Status.ON, None)]
    # Failure with should_retry: moves on, nothing published.
    await trio.sleep(0.25)
    h.session.handle_status(first, JibriIQ(status=Status.OFF, failure_reason=FailureReason.ERROR,
                                           should_retry=True))
    await trio.sleep(0.1)
    assert h.session.current == other and h.published == [(Status.ON, None)]
    h.session.handle_status(other, JibriIQ(status=Status.ON))
    # Stop: stop sent without waiting, OFF published with the stopper, later updates ignored.
    h.session.stop(MOD)
    assert h.link.stops == [(other.resource, "sid-1")]
    assert h.published[-1] == (Status.OFF, None) and h.session.terminator == MOD
    h.session.handle_status(other, JibriIQ(status=Status.ON))
    assert h.published[-1] == (Status.OFF, None) and h.session.ended


async def test_failure_without_retry_and_retry_that_fails(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    h = Harness(nursery, detector("a"))
    await h.session.start()
    h.session.handle_status(jid("a"), JibriIQ(status=Status.OFF, failure_reason=FailureReason.ERROR,
                                              should_retry=False))
    assert h.published == [(Status.OFF, FailureReason.ERROR)] and h.session.ended
    # should_retry missing: no retry either (upstream).
    h = Harness(nursery, detector("a", "b"))
    await h.session.start()
    h.session.handle_status(h.session.current,  # type: ignore[arg-type]
                            JibriIQ(status=Status.OFF, failure_reason=FailureReason.ERROR))
    assert h.published == [(Status.OFF, FailureReason.ERROR)]
    # A retry finding no other instance publishes the original failure.
    h = Harness(nursery, detector("a"))
    await h.session.start()
    h.session.handle_status(jid("a"), JibriIQ(status=Status.OFF, failure_reason=FailureReason.ERROR,
                                              should_retry=True))
    await trio.sleep(0.1)
    assert h.published == [(Status.OFF, FailureReason.ERROR)] and h.session.ended


async def test_pending_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    h = Harness(nursery, detector("a", "b"), pending_timeout=90.0)
    await h.session.start()
    first = h.session.current
    await trio.sleep(89)
    assert h.link.stops == [] and h.session.current == first
    await trio.sleep(2)
    # Stop sent to the stuck one, the session started on the other, nothing published.
    assert h.link.stops == [(first.resource, "sid-1")]  # type: ignore[union-attr]
    assert h.session.current not in (None, first) and h.published == []
    h.session.handle_status(h.session.current, JibriIQ(status=Status.ON))  # type: ignore[arg-type]
    # ON clears the timer: nothing happens later.
    await trio.sleep(200)
    assert h.published == [(Status.ON, None)] and len(h.link.stops) == 1


async def test_instance_leaving_counts_as_a_failure(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    det = detector("a", "b")
    h = Harness(nursery, det)
    await h.session.start()
    first = h.session.current
    assert first is not None
    h.session.handle_status(first, JibriIQ(status=Status.ON))
    await trio.sleep(0.25)
    det.instance_left(first)
    await trio.sleep(0.1)
    assert h.session.current is not None and h.session.current != first
    assert h.published == [(Status.ON, None)]
