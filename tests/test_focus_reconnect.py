"""The focus's XMPP session ends in a way that cannot be resumed (Prosody closes it: the same full
JID logs in, and a closed session's resumption is revoked). End to end: a real Prosody, our
focus, a simulated bridge and simulated lib-jitsi-meet participants.

What is asserted crossed the wire or is the bridge's own state: the bridge received a conference
expire for every old conference and holds none of them; each participant saw the focus leave
its room; after a page reload (leave, a fresh participant, conference request, join) everyone
is back in a Jingle session with the focus, with the others' sources.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from jicofo.app import FocusApp
from jicofo.sim.participant import FOCUS_LEFT, ParticipantOptions, SimulatedParticipant
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.sessions import end_session
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until

from .test_bridge_failures import sources_exchanged
from .test_focus_e2e import no_errors, room_of, wait_bridges
from .xmpp_helpers import settings_for

DEADLINE = 20.0
RELOAD_DELAY = 0.5  # the web client waits 10-30 s; the behaviour does not depend on it


def person(prosody: ProsodyInstance, room: str, nick: str, seed: int) -> SimulatedParticipant:
    return SimulatedParticipant(ParticipantOptions(xmpp=settings_for(prosody), room=room, nick=nick,
                                                   seed=seed))


def meeting_ids(app: FocusApp) -> set[str]:
    return {c.meeting_id for c in app.focus.conferences.values() if c.meeting_id}


async def test_a_session_that_cannot_resume_ends_every_conference_and_the_pages_reload(
    prosody: ProsodyInstance,
) -> None:
    rooms = [room_of(prosody, f"reload{i}") for i in range(2)]
    async with simulated_bridges(prosody, 1) as sims, running_focus(focus_config(prosody)) as app, \
            trio.open_nursery() as nursery:
        engine = sims.bridges[0].engine
        await wait_bridges(app)
        first: dict[str, list[SimulatedParticipant]] = {}
        for r, room in enumerate(rooms):
            first[room] = [person(prosody, room, f"{r}{n}00aa00", 10 * r + n) for n in range(3)]
            for p in first[room]:
                await nursery.start(p.run)
        everyone = [p for people in first.values() for p in people]
        for people in first.values():
            for p in people:
                await p.wait_for_session(DEADLINE)
            await sources_exchanged(people)
        old_ids = meeting_ids(app)
        assert len(old_ids) == 2 and old_ids <= set(engine.conferences)
        sessions_before = app.client.sessions
        sims.bridges[0].requests.clear()

        await end_session(settings_for(prosody, "focus", resource="focus"))

        # The focus came back on a new session and expired both old conferences on the bridge.
        await wait_until(lambda: app.client.sessions > sessions_before and app.client.connected,
                         DEADLINE, "the focus's new session")
        await wait_until(lambda: not old_ids & set(engine.conferences), DEADLINE,
                         "the old conferences gone from the bridge")
        expired = {e["meeting_id"] for e in sims.bridges[0].requests if e["kind"] == "expire"}
        assert old_ids <= expired
        # Every client saw the focus leave its room (lib-jitsi-meet: conference.focusLeft).
        for p in everyone:
            event = await p.wait_for_event("conference-failed", DEADLINE)
            assert event.detail == FOCUS_LEFT

        # The page reloads: leave, wait, a fresh client asks for the conference and joins.
        reloaded: dict[str, list[SimulatedParticipant]] = {}
        for r, room in enumerate(rooms):
            for p in first[room]:
                await p.leave()
            await trio.sleep(RELOAD_DELAY)  # the reload delay being simulated, not a wait for state
            reloaded[room] = [person(prosody, room, f"{r}{n}11bb11", 100 + 10 * r + n) for n in range(3)]
            for p in reloaded[room]:
                await nursery.start(p.run)
        for people in reloaded.values():
            await _back_in_session(people)
        # Two new conferences, on the bridge, with the reloaded endpoints only.
        new_ids = meeting_ids(app)
        assert len(new_ids) == 2 and not new_ids & old_ids
        await wait_until(lambda: set(engine.conferences) == new_ids, DEADLINE,
                         "only the new conferences on the bridge")
        for meeting_id in new_ids:
            endpoints = set(engine.conferences[meeting_id].endpoints)
            assert endpoints in [{p.endpoint_id for p in people} for people in reloaded.values()]
        no_errors(everyone + [p for people in reloaded.values() for p in people])
        for people in reloaded.values():
            for p in people:
                await p.leave()
        nursery.cancel_scope.cancel()


async def _back_in_session(people: Sequence[SimulatedParticipant]) -> None:
    for p in people:
        await p.wait_for_session(DEADLINE)
    await sources_exchanged(people)
