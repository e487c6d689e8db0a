"""The local demonstration stack: `python -m jicofo.demo` (behind `bash contrib/dev.sh demo`).

What it shows today (the XMPP foundation): a throw-away Prosody with a Jitsi-like layout, the
focus account logging in with SCRAM over STARTTLS, a conference room created and configured by
the focus, guests joining over TCP and over WebSocket with Jitsi-style presence, the focus
tracking them, and a clean teardown. Each step prints one line; the run is bounded in time.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import trio

from jicofo.testing.prosody import ProsodyInstance, start_prosody
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom, OccupantChanged, OccupantJoined, OccupantLeft
from jicofo.xmpp.settings import ClientSettings, TlsMode
from jicofo.xmpp.transport import TlsSettings
from jicofo.xmpp.xml import element

NS_JITSI = "http://jitsi.org/jitmeet"


class Printer:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, what: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.3f}s] {what}", flush=True)


async def run_demo(guests: int, hold: float) -> None:
    say = Printer()
    async with start_prosody() as prosody:
        say(f"prosody up: c2s {prosody.ip}:{prosody.c2s_port}, http {prosody.http_port}, "
            f"component {prosody.component_port} (dir {prosody.base})")
        async with trio.open_nursery() as nursery:
            focus = XMPPClient(_focus_settings(prosody), name="focus")
            await nursery.start(focus.run)
            say(f"focus logged in as {focus.jid} (SCRAM over STARTTLS, certificate verified)")

            room_jid = JID.parse(f"demo@{prosody.muc_domain}")
            room = MucRoom(focus, room_jid, "focus", rejoin_nursery=nursery)
            joined = await room.join()
            say(f"focus joined {room_jid} as {joined.affiliation}/{joined.role}, "
                f"created={joined.created}")
            await room.configure({"muc#roomconfig_whois": "anyone"})
            say("room configured (real JIDs visible to the focus)")

            async def watch() -> None:
                async for event in room.events:
                    if isinstance(event, OccupantJoined):
                        o = event.occupant
                        stats = o.presence.findtext(f"{{{NS_JITSI}}}stats-id")
                        say(f"focus sees {o.nick} join (real JID {o.jid}, {o.role}, stats-id {stats})")
                    elif isinstance(event, OccupantChanged):
                        say(f"focus sees {event.occupant.nick} update presence")
                    elif isinstance(event, OccupantLeft):
                        say(f"focus sees {event.occupant.nick} leave")

            nursery.start_soon(watch)
            clients: list[tuple[XMPPClient, MucRoom]] = []
            for i in range(guests):
                over_ws = i % 2 == 1
                guest = XMPPClient(_guest_settings(prosody, over_ws), name=f"guest{i}")
                await nursery.start(guest.run)
                guest_room = MucRoom(guest, room_jid, f"guest{i}", presence_extensions=[
                    element(f"{{{NS_JITSI}}}stats-id", text=f"Guest-{i}"),
                ])
                await guest_room.join()
                say(f"guest{i} joined over {'WebSocket' if over_ws else 'TCP'} as {guest.jid}")
                clients.append((guest, guest_room))

            await trio.sleep(hold)
            for guest, guest_room in clients:
                await guest_room.leave()
                await guest.aclose()
            await trio.sleep(0.2)
            await room.leave()
            await focus.aclose()
            say("everyone left; shutting down")
            nursery.cancel_scope.cancel()
    say("prosody stopped, temp dir removed")


def _focus_settings(prosody: ProsodyInstance) -> ClientSettings:
    return ClientSettings(
        domain=prosody.auth_domain, username="focus", password=prosody.focus_password,
        resource="focus", host=prosody.ip, port=prosody.c2s_port, tls=TlsMode.STARTTLS,
        tls_settings=TlsSettings(ca_file=prosody.ca_file),
    )


def _guest_settings(prosody: ProsodyInstance, over_ws: bool) -> ClientSettings:
    return ClientSettings(
        domain=prosody.domain, host=prosody.ip, port=prosody.c2s_port, tls=TlsMode.DISABLED,
        websocket_url=prosody.websocket_url if over_ws else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--guests", type=int, default=3, help="simulated guests (default 3)")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds to hold the room")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    trio.run(_bounded, max(0, min(args.guests, 50)), min(args.hold, 600.0))
    return 0


async def _bounded(guests: int, hold: float) -> None:
    with trio.fail_after(60 + hold):
        await run_demo(guests, hold)


if __name__ == "__main__":
    sys.exit(main())
