"""Load redistribution end to end: with it enabled, a bridge whose stress passes the threshold has
endpoints moved off it, and the selection puts them on a bridge that is not overloaded (here in
another region, so the conference cascades). Checked in the conference's placement of its
members, on the participants' side and in the redistributor's own count of moves."""

from __future__ import annotations

from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import focus_config, running_focus
from jicofo.testing.waiting import wait_until

from .test_cascade import regions_with
from .test_focus_e2e import no_errors, participants, room_of, wait_bridges

REDISTRIBUTE = {
    "jicofo.octo.enabled": True,
    "jicofo.bridge.selection-strategy": "RegionBasedBridgeSelectionStrategy",
    "jicofo.bridge.stress-threshold": 0.6,
    "jicofo.bridge.load-redistribution.enabled": True,
    "jicofo.bridge.load-redistribution.interval": "1 second",
    "jicofo.bridge.load-redistribution.stress-threshold": 0.6,
    "jicofo.bridge.load-redistribution.timeout": "1 minute",
    "jicofo.bridge.load-redistribution.endpoints": 1,
}


async def test_an_overloaded_bridge_sheds_endpoints(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "shed")
    # eu: 0.35 of stress per endpoint, so two endpoints put it over 0.6; us: idle.
    async with regions_with(prosody, {"eu": ("--stress-per-endpoint", "0.35"), "us": ()}) as sims, \
            running_focus(focus_config(prosody, REDISTRIBUTE)) as app:
        await wait_bridges(app, 2)
        async with participants(prosody, room, 2, region="eu") as people:
            first_sessions = {p.endpoint_id: (await p.wait_for_session(10)).sid for p in people}
            eu, us = sims["eu"].bridges[0].nickname, sims["us"].bridges[0].nickname
            conference = next(iter(app.focus.conferences.values()))

            def placement() -> dict[str, str | None]:
                return {e: (p.colibri.bridge.nickname if p.colibri else None)
                        for e, p in conference.participants.items()}
            # Both start in their region (the bridge is below the threshold when each joins)...
            assert set(placement().values()) == {eu}
            # ...then the eu bridge reports 0.7 and one endpoint (the configured count) moves.
            await wait_until(lambda: sorted(v or "" for v in placement().values()) == sorted([eu, us]),
                             20, "one endpoint to move to the us bridge")
            moved = next(p for p in people if placement()[p.endpoint_id] == us)
            stayed = next(p for p in people if p is not moved)
            await moved.wait_for_session(10, other_than=first_sessions[moved.endpoint_id])
            await moved.wait_for_remote_sources(stayed.endpoint_id, 10)
            await stayed.wait_for_remote_sources(moved.endpoint_id, 10)
            assert stayed.session is not None and stayed.session.sid == first_sessions[stayed.endpoint_id]
            assert app.load_redistributor is not None and app.load_redistributor.total_moved == 1
            # The two bridges are now linked for this conference.
            assert sorted(s.bridge.nickname for s in conference.cascade.members) == sorted([eu, us])
            no_errors(people)
