"""Moving endpoints on request (the /move-endpoints routes over real HTTP), with both re-invite
methods: RestartJingle (session-terminate "moving" + a new session-initiate) and ReplaceTransport
(a transport-replace on the same session). Checked on the participants' side and in the bridge's
request log."""

from __future__ import annotations

import json

from jicofo.http.client import post_json
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.waiting import wait_until_async

from .test_focus_e2e import bridge_log, no_errors, participants
from .test_rest import rest_stack


async def test_move_endpoint_restarts_the_members_session(prosody: ProsodyInstance) -> None:
    async with rest_stack(prosody) as stack:
        await stack.wait_healthy()
        room = stack.room("move-one")
        async with participants(prosody, room, 2) as (ana, bo):
            first = await ana.wait_for_session(10)
            await bo.wait_for_session(10)
            await bo.wait_for_remote_sources(ana.endpoint_id, 10)
            status, _, body = await stack.call(
                "GET", f"/move-endpoints/move-endpoint?conference={room}&endpoint={ana.endpoint_id}")
            assert status == 200 and json.loads(body) == {"movedEndpoints": 1, "conferences": 1}

            again = await ana.wait_for_session(10, other_than=first.sid)
            terminate = next(e for e in ana.events_of("session-terminate", "in") if e.sid == first.sid)
            assert terminate is not None
            # Bo saw Ana's sources go and come back.
            assert bo.events_of("source-remove", "in")
            await bo.wait_for_remote_sources(ana.endpoint_id, 10)
            assert again.sid != first.sid
            log = await bridge_log(stack.bridges)
            allocations = [e for e in log if e["kind"] == "allocate" and ana.endpoint_id in e["request"]]
            assert len(allocations) == 2
            no_errors([ana, bo])

            # More than the bridge holds: everyone on it is moved, once.
            status, _, body = await stack.call(
                "GET", f"/move-endpoints/move-endpoints?bridge={stack.bridges.bridges[0].nickname}"
                       f"&conference={room}&numEndpoints=5")
            assert status == 200 and json.loads(body) == {"movedEndpoints": 2, "conferences": 1}


async def test_replace_transport_keeps_the_session_and_the_sources(prosody: ProsodyInstance) -> None:
    async with rest_stack(prosody, {"jicofo.conference.reinvite-method": "ReplaceTransport"}) as stack:
        await stack.wait_healthy()
        room = stack.room("move-replace")
        async with participants(prosody, room, 2, apply_transport_replace=True) as (ana, bo):
            session = await ana.wait_for_session(10)
            await bo.wait_for_session(10)
            await bo.wait_for_remote_sources(ana.endpoint_id, 10)
            since = ana.last_seq
            status, _, body = await stack.call(
                "GET", f"/move-endpoints/move-fraction?bridge={stack.bridges.bridges[0].nickname}"
                       "&fraction=0.5")
            assert status == 200 and json.loads(body) == {"movedEndpoints": 1, "conferences": 1}

            # Exactly one of the two moved: it got a transport-replace on its existing sid.
            async def replaced() -> bool:
                return any(p.events_of("transport-replace", "in") for p in (ana, bo))
            await wait_until_async(replaced, 10, "a transport-replace")
            moved = ana if ana.events_of("transport-replace", "in") else bo
            other = bo if moved is ana else ana
            replace = moved.events_of("transport-replace", "in")[0]
            assert moved.session is not None and replace.sid == moved.session.sid
            assert not [e for e in moved.events_of("session-terminate", "in")]
            assert not other.events_of("transport-replace", "in")
            # The others never lost the moved member's sources.
            assert not other.events_of("source-remove", "in")
            if moved is ana:
                assert session.sid == replace.sid and ana.last_seq > since

            # On the bridge: the old endpoint expired, a new one allocated with the member's
            # sources, and its transport from the transport-accept.
            async def bridge_saw_it() -> bool:
                log = await bridge_log(stack.bridges)
                mine = [e for e in log if moved.endpoint_id in e["request"]]
                kinds = [e["kind"] for e in mine]
                return kinds.count("allocate") == 2 and "expire" in kinds \
                    and kinds[kinds.index("expire"):].count("update") >= 1
            await wait_until_async(bridge_saw_it, 10, "the move on the bridge")
            log = [e for e in await bridge_log(stack.bridges) if moved.endpoint_id in e["request"]]
            second = [e for e in log if e["kind"] == "allocate"][1]
            assert "<sources" in second["request"] and "ssrc=" in second["request"]
            no_errors([ana, bo])


async def test_replace_transport_that_cannot_allocate_falls_back_to_a_new_session(
    prosody: ProsodyInstance,
) -> None:
    async with rest_stack(prosody, {"jicofo.conference.reinvite-method": "ReplaceTransport"}) as stack:
        await stack.wait_healthy()
        room = stack.room("move-refused")
        async with participants(prosody, room, 2, apply_transport_replace=True) as (ana, bo):
            first = await ana.wait_for_session(10)
            await bo.wait_for_session(10)
            # The bridge refuses the next allocation (the new endpoint for the move) once.
            nick = stack.bridges.bridges[0].nickname
            await post_json("127.0.0.1", stack.bridges.http_port, f"/bridges/{nick}/faults",
                            {"error": {"condition": "bad-request", "kinds": ["allocate"], "count": 1}})
            status, _, body = await stack.call(
                "GET", f"/move-endpoints/move-endpoint?conference={room}&endpoint={ana.endpoint_id}")
            assert status == 200 and json.loads(body)["movedEndpoints"] == 1
            # No transport to replace with: the session is ended and a new one offered.
            again = await ana.wait_for_session(10, other_than=first.sid)
            assert any(e.sid == first.sid for e in ana.events_of("session-terminate", "in"))
            assert not ana.events_of("transport-replace", "in")
            await bo.wait_for_remote_sources(ana.endpoint_id, 10)
            assert again.sid != first.sid
            no_errors([ana, bo])
