"""The conference's bridge side (jicofo/conference/bridges.py) in memory and virtual time: waiting
for a bridge, moving off one that leaves or does not answer, and a new session on a bridge whose
previous one is still expiring. What is asserted is what the guests received and what the
bridges were asked (jicofo/testing/memory.py)."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from jicofo.testing.memory import MemoryMember, memory_stack
from jicofo.xmlns.jingle import Action
from jicofo.xmlns.presence_ext import BRIDGE_NOT_AVAILABLE


def bridge_not_available(member: MemoryMember) -> bool:
    assert member.room is not None
    focus = member.room.occupants.get("focus")
    return focus is not None and focus.presence.find(BRIDGE_NOT_AVAILABLE) is not None


def offered_session(member: MemoryMember) -> str | None:
    offers = member.of(Action.SESSION_INITIATE)
    last = offers[-1].jingle.bridge_session if offers else None
    return last.id if last is not None else None


async def test_members_wait_for_a_bridge_then_get_offers_from_it(autojump_clock: MockClock) -> None:
    async with memory_stack() as stack:
        room = await stack.open_conference("nobridge")
        ana = await stack.join(room, "ana")
        bo = await stack.join(room, "bo")
        await ana.wait_for(lambda: bridge_not_available(ana), 10, "bridgeNotAvailable")
        await trio.sleep(30)
        assert ana.of(Action.SESSION_INITIATE) == [] and bo.of(Action.SESSION_INITIATE) == []
        await stack.add_bridge("jvb1")
        for member in (ana, bo):
            await member.wait_for(lambda m=member: m.session_accepted, 10, "a session")
        await ana.wait_for(lambda: not bridge_not_available(ana), 10, "bridgeNotAvailable cleared")
        assert stack.bridges["jvb1"].kinds()[:2] == ["create", "allocate"]


async def test_a_bridge_that_leaves_has_everyone_moved_to_the_other(autojump_clock: MockClock) -> None:
    async with memory_stack() as stack:
        first = await stack.add_bridge("jvb1")
        room = await stack.open_conference("moving")
        ana = await stack.join(room, "ana")
        bo = await stack.join(room, "bo")
        for member in (ana, bo):
            await member.wait_for(lambda m=member: m.session_accepted, 10, "a session")
        before = offered_session(ana)
        assert before == offered_session(bo)
        second = await stack.add_bridge("jvb2")
        asked_before = len(first.requests)
        await first.leave()
        for member in (ana, bo):
            await member.wait_for(lambda m=member: offered_session(m) != before and m.session_accepted,
                                  10, "a session on the other bridge")
        assert offered_session(ana) == offered_session(bo)
        assert second.kinds()[:2] == ["create", "allocate"]  # the create carries the first one
        # Nothing was allocated on the bridge once it had left.
        assert "allocate" not in first.kinds()[asked_before:]
        # Each was told its own old session ended; neither got a source-remove for the other.
        for member in (ana, bo):
            assert member.of(Action.SOURCE_REMOVE) == []


async def test_a_bridge_that_does_not_answer_is_failed_and_left(autojump_clock: MockClock) -> None:
    async with memory_stack() as stack:
        hung = await stack.add_bridge("jvb1")
        hung.silent = True
        room = await stack.open_conference("hung")
        ana = await stack.join(room, "ana")
        await stack.join(room, "bo")
        asked = trio.current_time()
        await ana.wait_for(lambda: bridge_not_available(ana), 60, "bridgeNotAvailable")
        # The allocation timed out (the service connection's reply timeout, 15 s by default), the
        # bridge was marked failed and no other bridge could be used.
        assert trio.current_time() - asked >= 15
        assert not any(b.nickname == "jvb1" for b in stack.brewery.operational_bridges())
        await stack.add_bridge("jvb2")
        await ana.wait_for(lambda: ana.session_accepted, 10, "a session on jvb2")
        assert ana.of(Action.SESSION_INITIATE) and "allocate" in stack.bridges["jvb2"].kinds()


async def test_a_new_session_on_a_bridge_follows_the_expire_of_the_last(autojump_clock: MockClock) -> None:
    async with memory_stack() as stack:
        bridge = await stack.add_bridge("jvb1")
        room = await stack.open_conference("again")
        ana = await stack.join(room, "ana")
        bo = await stack.join(room, "bo")
        for member in (ana, bo):
            await member.wait_for(lambda m=member: m.session_accepted, 10, "a session")
        first = offered_session(ana)
        await bo.leave()
        # Alone for the single-participant timeout: her session ends, the last endpoint leaves the
        # bridge and the conference is expired there (the session drains its queue).
        await ana.wait_for(lambda: bool(ana.of(Action.SESSION_TERMINATE)), 60, "the terminate")
        cy = await stack.join(room, "cy")
        for member in (ana, cy):
            await member.wait_for(lambda m=member: m.session_accepted, 10, "a session again")
        assert offered_session(ana) != first  # a new bridge session
        kinds = bridge.kinds()
        assert kinds.count("create") == 2
        assert kinds.index("expire-conference") < len(kinds) - 1 - kinds[::-1].index("create")
        assert all(e is None for _, e in ana.answers)  # every Jingle request of hers accepted
