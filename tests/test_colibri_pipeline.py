"""A conference's Colibri2 requests to a bridge are pipelined: sent in order without waiting for
the previous answer (as upstream), seen in the bridge simulator's request log."""

from __future__ import annotations

from jicofo.http.client import post_json
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until_async

from .test_focus_e2e import bridge_log, no_errors, participants, room_of, wait_bridges


async def test_allocations_are_sent_before_the_previous_one_is_answered(
    prosody: ProsodyInstance,
) -> None:
    room = room_of(prosody, "pipeline")
    async with simulated_bridges(prosody, 1) as sims, running_focus(focus_config(prosody)) as app:
        await wait_bridges(app)
        # The bridge takes 1 s to answer an allocation.
        await post_json("127.0.0.1", sims.http_port, "/bridges/jvb-sim-1/faults",
                        {"latency": {"allocate": 1.0}})
        async with participants(prosody, room, 3) as people:
            async def allocations_logged() -> bool:
                return sum(1 for e in await bridge_log(sims) if e["kind"] == "allocate") >= 2
            await wait_until_async(allocations_logged, 10, "two allocations at the bridge")
            first, second = [e for e in await bridge_log(sims) if e["kind"] == "allocate"][:2]
            # The second arrived while the first was still unanswered.
            assert first["response"] is None and first["error"] is None
            assert 'create="true"' in first["request"] or "create='true'" in first["request"]
            for person in people:
                await person.wait_for_session(15)
            log = [e for e in await bridge_log(sims) if e["kind"] == "allocate"]
            # In the order sent: the conference create first, answered like the rest.
            assert log[0]["id"] == first["id"] and all(e["response"] for e in log)
            assert second["id"] != first["id"]
            no_errors(people)
