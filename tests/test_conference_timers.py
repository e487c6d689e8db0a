"""Conference timers and rate limits, in memory and in virtual time (jicofo/testing/memory.py):
the real focus, conference and participant code, Colibri2 answered by the sans-IO bridge engine,
no Prosody. Each test runs under pytest-trio's autojump clock, so the 15- and 20-second
timeouts of the defaults take milliseconds (the clock is taken as a parameter: pytest-trio only
uses a clock fixture the test function asks for) and are checked to the tenth of a second."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from jicofo.testing.memory import MemoryMember, MemoryStack, memory_stack
from jicofo.testing.waiting import wait_until
from jicofo.xmlns.jingle import Action
from jicofo.xmpp.jid import JID


async def wait_gone(stack: MemoryStack, room: JID, timeout: float) -> None:
    with trio.fail_after(timeout):
        while stack.conference(room) is not None:
            await trio.sleep(0.05)


async def in_session(*members: MemoryMember) -> None:
    for member in members:
        await member.wait_for(lambda m=member: m.session_accepted, 10, "an accepted session")


async def call_of_two(stack: MemoryStack, name: str = "standup") -> tuple[JID, MemoryMember, MemoryMember]:
    await stack.add_bridge("jvb1")
    room = await stack.open_conference(name)
    ana = await stack.join(room, "ana")
    bo = await stack.join(room, "bo")
    await in_session(ana, bo)
    return room, ana, bo


async def test_nobody_joins_so_the_initial_timeout_stops_the_conference(autojump_clock: MockClock) -> None:
    async with memory_stack() as stack:
        room = await stack.open_conference("empty")
        opened = trio.current_time()
        assert stack.occupants(room) == {"focus"}
        await wait_gone(stack, room, 60)
        assert trio.current_time() - opened == pytest.approx(15, abs=0.2)  # initial-timeout
        assert stack.occupants(room) == set()  # the focus left the room


async def test_a_member_who_joins_in_time_keeps_the_conference(autojump_clock: MockClock) -> None:
    async with memory_stack({"jicofo.conference.initial-timeout": "10 seconds"}) as stack:
        room = await stack.open_conference("early")
        await trio.sleep(9)
        await stack.join(room, "ana")
        await trio.sleep(60)
        assert stack.conference(room) is not None
        assert stack.occupants(room) == {"focus", "ana"}


async def test_a_conference_request_rearms_the_initial_timeout(autojump_clock: MockClock) -> None:
    async with memory_stack() as stack:
        room = await stack.open_conference("asked-twice")
        await trio.sleep(10)
        await stack.open_conference("asked-twice")  # the client asks again (lib-jitsi-meet retries)
        again = trio.current_time()
        await wait_gone(stack, room, 60)
        assert trio.current_time() - again == pytest.approx(15, abs=0.2)


async def test_the_single_participant_timeout_ends_the_lone_session_only(autojump_clock: MockClock) -> None:
    async with memory_stack() as stack:
        room, ana, bo = await call_of_two(stack)
        bridge = stack.bridges["jvb1"]
        await bo.leave()
        left = trio.current_time()
        await ana.wait_for(lambda: bool(ana.of(Action.SESSION_TERMINATE)), 60, "the terminate")
        (terminate,) = ana.of(Action.SESSION_TERMINATE)
        assert terminate.at - left == pytest.approx(20, abs=0.2)  # single-participant-timeout
        assert terminate.jingle.reason is not None
        assert terminate.jingle.reason.condition == "expired"
        # Her endpoint went on the bridge, then the conference there (nobody is left on it);
        # she and the focus are still in the room, and the conference goes on.
        with trio.fail_after(5):
            while bridge.kinds()[-1] != "expire-conference":
                await trio.sleep(0.05)
        expired = [r.endpoints[0].id for r, kind in zip(bridge.requests, bridge.kinds(), strict=True)
                   if kind == "expire"]
        assert expired == ["bo", "ana"]
        assert stack.conference(room) is not None
        assert stack.occupants(room) == {"focus", "ana"}


async def test_a_second_member_in_time_cancels_the_single_participant_timeout(
    autojump_clock: MockClock,
) -> None:
    async with memory_stack() as stack:
        room, ana, bo = await call_of_two(stack)
        await bo.leave()
        await trio.sleep(15)
        cy = await stack.join(room, "cy")
        await in_session(cy)
        await trio.sleep(60)
        assert ana.of(Action.SESSION_TERMINATE) == []
        assert ana.session_accepted


async def test_restart_requests_are_rate_limited(autojump_clock: MockClock) -> None:
    # Defaults: at least 5 s apart, at most 5 per minute.
    async with memory_stack() as stack:
        _, ana, _ = await call_of_two(stack)
        for n in range(5):
            if n:
                await trio.sleep(6)
            offers = len(ana.of(Action.SESSION_INITIATE))
            assert await ana.request_restart() is None
            await ana.wait_for(lambda o=offers: len(ana.of(Action.SESSION_INITIATE)) > o, 10,
                               "a new offer")
            await in_session(ana)
        await trio.sleep(6)  # 5 s apart, but the sixth within the minute
        refused = await ana.request_restart()
        assert refused is not None and refused.condition == "resource-constraint"
        await trio.sleep(10)
        assert len(ana.of(Action.SESSION_INITIATE)) == 6  # no new offer after the refusal


async def test_a_restart_request_too_soon_after_the_last_is_refused(autojump_clock: MockClock) -> None:
    async with memory_stack() as stack:
        _, ana, _ = await call_of_two(stack)
        assert await ana.request_restart() is None
        await ana.wait_for(lambda: len(ana.of(Action.SESSION_INITIATE)) == 2, 10, "a new offer")
        await in_session(ana)
        await trio.sleep(4)  # min-interval is 5 s
        refused = await ana.request_restart()
        assert refused is not None and refused.condition == "resource-constraint"


async def test_in_place_ice_restarts_have_their_own_rate_limit(autojump_clock: MockClock) -> None:
    async with memory_stack() as stack:
        _, ana, _ = await call_of_two(stack)
        assert await ana.request_ice_restart() is None
        await ana.wait_for(lambda: bool(ana.of(Action.TRANSPORT_INFO)), 10, "the new credentials")
        (info,) = ana.of(Action.TRANSPORT_INFO)
        transport = info.jingle.contents[0].transport
        assert transport is not None and transport.ice_generation == 1
        refused = await ana.request_ice_restart()  # at once: under min-interval
        assert refused is not None and refused.condition == "resource-constraint"
        await trio.sleep(5.5)
        assert await ana.request_ice_restart() is None
        # The session restart limiter is separate: a restart request is still accepted now.
        assert await ana.request_restart() is None
        await ana.wait_for(lambda: len(ana.of(Action.SESSION_INITIATE)) == 2, 10, "a new offer")


async def test_the_main_conference_waits_for_its_breakout_rooms(autojump_clock: MockClock) -> None:
    async with memory_stack({"jicofo.conference.initial-timeout": "2 seconds"}) as stack:
        main = await stack.open_conference("main")
        conference = stack.conference(main)
        assert conference is not None
        ana = await stack.join(main, "ana")
        await wait_until(lambda: "ana" in conference.participants, 5, "the member")
        # The last member leaves with switch_room (before any breakout room exists): the main
        # conference waits for it instead of stopping...
        await ana.leave("switch_room")
        await trio.sleep(0.3)
        assert conference.stop_reason is None
        breakout = await stack.open_breakout(main, "br1")
        assert stack.conference(breakout) is not None
        assert stack.conference(breakout).main_room == main  # type: ignore[union-attr]
        in_breakout = await stack.join(breakout, "ana")
        # ...and stays while the breakout conference runs, well past the initial timeout.
        await trio.sleep(60)
        assert conference.stop_reason is None and stack.conference(main) is conference
        # The breakout room empties: its conference ends, and then the main one.
        await in_breakout.leave()
        await wait_gone(stack, breakout, 10)
        await wait_gone(stack, main, 10)
        assert conference.stop_reason is not None


async def test_without_switch_room_the_main_conference_ends(autojump_clock: MockClock) -> None:
    async with memory_stack({"jicofo.conference.initial-timeout": "1 second"}) as stack:
        main = await stack.open_conference("main")
        conference = stack.conference(main)
        assert conference is not None
        ana = await stack.join(main, "ana")
        await wait_until(lambda: "ana" in conference.participants, 5, "the member")
        await ana.leave()
        left = trio.current_time()
        await wait_gone(stack, main, 10)
        assert trio.current_time() - left < 0.1  # at once: the last member left
        assert conference.stop_reason == "the last member left"
