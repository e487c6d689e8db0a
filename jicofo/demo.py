"""The local demonstration stack: `python -m jicofo.demo` (behind `bash contrib/dev.sh demo`).

A throw-away Prosody with a Jitsi-like layout, our focus (in this process), simulated bridges in
two regions (eu and us) in the brewery, and simulated lib-jitsi-meet participants in a few
conferences: each gets an offer on a bridge of its region, accepts it and sees the others'
sources; the last conference has a member in the us region, so it spans two bridges linked by
Colibri2 relays (a cascade); one participant shares its screen; one bridge then leaves and its
participants move to another; everyone leaves and the bridges are released. Each step prints one
line; the run is bounded in time.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

import trio

from jicofo.http.client import get_json, post_json
from jicofo.sim.participant import ParticipantOptions, SimulatedParticipant
from jicofo.testing.prosody import start_prosody
from jicofo.testing.stack import Bridges, focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until
from jicofo.xmpp.settings import ClientSettings, Timeouts, TlsMode


class Printer:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, what: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.3f}s] {what}", flush=True)


# Region-based selection with cascades, so that a conference with members in two regions spans
# two bridges linked by relays.
DEMO_CONFIG = {
    "jicofo.octo.enabled": True,
    "jicofo.bridge.selection-strategy": "RegionBasedBridgeSelectionStrategy",
}


async def run_demo(conferences: int, people: int, bridges: int, hold: float) -> None:
    say = Printer()
    async with start_prosody() as prosody:
        say(f"prosody up: c2s {prosody.ip}:{prosody.c2s_port}, websocket {prosody.websocket_url}")
        in_us = bridges // 2
        async with AsyncExitStack() as stack:
            regions: dict[str, Bridges] = {}
            for region, count in (("eu", bridges - in_us), ("us", in_us)):
                if count:
                    regions[region] = sims = await stack.enter_async_context(simulated_bridges(
                        prosody, count, "--region", region, "--relay-id", f"relay-{region}",
                        prefix=f"jvb-{region}-"))
                    say(f"{count} simulated bridge(s) in region {region} in {prosody.brewery_jid}; "
                        f"control API on http://127.0.0.1:{sims.http_port}/")
            async with running_focus(focus_config(prosody, DEMO_CONFIG)) as app:
                say(f"focus up as {app.client.jid}; component {app.config.xmpp.component.jid} "
                    "takes conference requests")
                brewery = app.brewery
                assert brewery is not None
                await wait_until(lambda: len(brewery.operational_bridges()) >= bridges, 10, "bridges")
                say("focus sees bridges: " + ", ".join(
                    f"{b.nickname} (stress {b.stress:.2f}, region {b.region or '-'})"
                    for b in brewery.operational_bridges()))
                await _calls(prosody, app, regions, say, conferences, people, hold)
            say("focus stopped: rooms left, endpoints expired")
        say("bridges stopped")
    say("prosody stopped, temp dir removed")


async def _calls(prosody: Any, app: Any, regions: dict[str, Bridges], say: Printer, conferences: int,
                 people: int, hold: float) -> None:
    everyone: list[tuple[str, SimulatedParticipant]] = []
    async with trio.open_nursery() as nursery:
        for c in range(conferences):
            room = f"demo{c}@{prosody.muc_domain}"
            for n in range(people):
                # Half the guests reach Prosody over WebSocket, like a browser.
                settings = ClientSettings(
                    domain=prosody.domain, host=prosody.ip, port=prosody.c2s_port,
                    tls=TlsMode.DISABLED, allow_plain_without_tls=True,
                    websocket_url=prosody.websocket_url if n % 2 else None,
                    timeouts=Timeouts(ping_interval=0),
                )
                # The last member of the last conference is in the us region (when it has bridges).
                region = "us" if "us" in regions and c == conferences - 1 and n == people - 1 \
                    else "eu"
                person = SimulatedParticipant(ParticipantOptions(
                    xmpp=settings, room=room, nick=f"{c:02x}{n:02x}beef", json_sources=n % 2 == 0,
                    region=region,
                ))
                t0 = trio.current_time()
                await nursery.start(person.run)
                everyone.append((room, person))
                say(f"{person.endpoint_id} ({region}) joined {room} "
                    f"({'WebSocket' if n % 2 else 'TCP'}; conference ready in "
                    f"{(trio.current_time() - t0) * 1000:.0f} ms)")
        for _room, person in everyone:
            session = await person.wait_for_session(15)
            say(f"{person.endpoint_id}: session-initiate on bridge session "
                f"{session.bridge_session.id[:8] if session.bridge_session else '?'}, accepted")
        for room, person in everyone:
            for other_room, other in everyone:
                if other_room == room and other is not person:
                    assert other.endpoint_id is not None  # in session
                    await person.wait_for_remote_sources(other.endpoint_id, 15)
        say("every participant sees the sources of everyone else in its conference")
        for conference in app.focus.conferences.values():
            members = conference.cascade.members
            if len(members) > 1:
                names = " and ".join(m.bridge.nickname for m in members)
                relays = 0
                for sims in regions.values():
                    log = await get_json("127.0.0.1", sims.http_port, "/requests")
                    relays += sum(1 for e in log if e["kind"] == "relay-create")
                say(f"{conference.room_jid} spans {names}: a cascade, {relays} relay(s) created and "
                    "their transports exchanged")

        sharer = everyone[0][1]
        watcher = next(p for r, p in everyone if r == everyone[0][0] and p is not sharer)
        sharer_id = sharer.endpoint_id
        assert sharer_id is not None  # in session
        before = len(watcher.remote_sources_of(sharer_id).sources)
        name = await sharer.add_source("desktop")
        await watcher.wait_for(
            lambda: len(watcher.remote_sources_of(sharer_id).sources) > before, 10, "share")
        say(f"{sharer.endpoint_id} shares its screen ({name}); {watcher.endpoint_id} got the source-add")
        await sharer.remove_source(name)

        conference = next(iter(app.focus.conferences.values()))
        if sum(len(sims.bridges) for sims in regions.values()) > 1 and conference.colibri_sessions:
            (bridge,) = list(conference.colibri_sessions)[:1]
            movers = [p for r, p in everyone if str(conference.room_jid) == r]
            sids = {p.endpoint_id: p.session.sid for p in movers if p.session}
            sims = next(g for g in regions.values() if any(b.nickname == bridge.nickname for b in g.bridges))
            await post_json("127.0.0.1", sims.http_port, f"/bridges/{bridge.nickname}/leave", {})
            say(f"bridge {bridge.nickname} leaves the brewery")
            for person in movers:
                await person.wait_for_session(15, other_than=sids.get(person.endpoint_id))
            new = ", ".join(b.nickname for b in conference.colibri_sessions)
            say(f"{len(movers)} participant(s) of {conference.room_jid} moved to {new}")

        await trio.sleep(hold)
        errors = sum(p.error_count for _, p in everyone)
        for _, person in everyone:
            await person.leave()
        say(f"everyone left; deviations seen by the participants: {errors}")
        await wait_until(lambda: not app.focus.conferences, 10, "the conferences to end")
        for sims in regions.values():
            for bridge in sims.bridges:
                log = await get_json("127.0.0.1", sims.http_port, f"/bridges/{bridge.nickname}/requests")
                kinds: dict[str, int] = {}
                for entry in log:
                    kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
                say(f"colibri2 requests {bridge.nickname} received: "
                    + (", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "none"))
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--conferences", type=int, default=2, help="conferences (default 2)")
    parser.add_argument("--participants", type=int, default=3, help="per conference (default 3)")
    parser.add_argument("--bridges", type=int, default=2, help="simulated bridges (default 2)")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds to hold the calls")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    conferences = max(1, min(args.conferences, 20))
    people = max(2, min(args.participants, 20))
    trio.run(_bounded, conferences, people, max(1, min(args.bridges, 10)), min(args.hold, 600.0))
    return 0


async def _bounded(conferences: int, people: int, bridges: int, hold: float) -> None:
    with trio.fail_after(120 + hold):
        await run_demo(conferences, people, bridges, hold)


if __name__ == "__main__":
    sys.exit(main())
