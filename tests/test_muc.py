"""MUC against a real Prosody: create, configure, join, occupant tracking, admin changes, leave."""

from __future__ import annotations

import pytest
import trio

from jicofo.testing.prosody import ProsodyInstance
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import (
    MucRoom,
    OccupantChanged,
    OccupantJoined,
    OccupantLeft,
    Rejoined,
    RoomEvent,
    SelfChanged,
    SelfLeft,
)
from jicofo.xmpp.xml import element

from .xmpp_helpers import connected, settings_for

NS_JITSI = "http://jitsi.org/jitmeet"


async def _next(room: MucRoom, kind: type, timeout: float = 5) -> RoomEvent:
    with trio.fail_after(timeout):
        while True:
            event = await room.events.receive()
            if isinstance(event, kind):
                return event


async def test_create_configure_join_track_and_admin(prosody: ProsodyInstance) -> None:
    room_jid = JID.parse(f"room1@{prosody.muc_domain}")
    async with connected(settings_for(prosody, "focus", resource="focus")) as focus, \
            connected(settings_for(prosody)) as guest:
        owner_room = MucRoom(focus, room_jid, "focus")
        joined = await owner_room.join()
        assert joined.created
        assert (joined.role, joined.affiliation) == ("moderator", "owner")

        await owner_room.configure({"muc#roomconfig_whois": "anyone",
                                    "muc#roomconfig_persistentroom": False,
                                    "no-such-field": "ignored"})
        form = await owner_room.get_config_form()
        whois = [f for f in form.iter("{jabber:x:data}field")
                 if f.get("var") == "muc#roomconfig_whois"][0]
        assert whois.findtext("{jabber:x:data}value") == "anyone"
        info = await owner_room.room_info()
        assert "muc#roominfo_occupants" in info or "FORM_TYPE" in info

        # The guest joins with Jitsi-like presence extensions.
        guest_room = MucRoom(guest, room_jid, "guest1", presence_extensions=[
            element(f"{{{NS_JITSI}}}stats-id", text="Fred-abc"),
        ])
        guest_joined = await guest_room.join()
        assert not guest_joined.created
        assert guest_joined.role == "participant"
        # The guest saw the focus already in the room.
        seen_by_guest = await _next(guest_room, OccupantJoined)
        assert seen_by_guest.occupant.nick == "focus"  # type: ignore[union-attr]
        assert seen_by_guest.occupant.jid == focus.jid  # type: ignore[union-attr]

        event = await _next(owner_room, OccupantJoined)
        occupant = event.occupant  # type: ignore[union-attr]
        assert occupant.nick == "guest1"
        assert occupant.jid == guest.jid  # real JIDs are visible
        assert (occupant.role, occupant.affiliation) == ("participant", "none")
        assert occupant.presence.findtext(f"{{{NS_JITSI}}}stats-id") == "Fred-abc"
        assert set(owner_room.occupants) == {"guest1"}

        # A presence update reaches the owner as a change with the latest presence.
        await guest_room.set_presence([element(f"{{{NS_JITSI}}}stats-id", text="Fred-xyz")])
        changed = await _next(owner_room, OccupantChanged)
        assert changed.occupant.presence.findtext(f"{{{NS_JITSI}}}stats-id") == "Fred-xyz"  # type: ignore[union-attr]

        # Affiliation change: the guest becomes owner; both sides see it.
        assert guest.jid is not None
        await owner_room.set_affiliation(guest.jid, "owner")
        changed = await _next(owner_room, OccupantChanged)
        assert changed.occupant.affiliation == "owner"  # type: ignore[union-attr]
        assert changed.old_affiliation == "none"  # type: ignore[union-attr]
        mine = await _next(guest_room, SelfChanged)
        assert mine.affiliation == "owner"  # type: ignore[union-attr]

        # A kick is seen as a kicked departure by the owner and as SelfLeft by the guest.
        await owner_room.set_affiliation(guest.jid, "none")
        await owner_room.kick("guest1", "bye")
        left = await _next(owner_room, OccupantLeft)
        assert left.kicked and left.occupant.nick == "guest1"  # type: ignore[union-attr]
        self_left = await _next(guest_room, SelfLeft)
        assert "bye" in self_left.reason or "kicked" in self_left.reason  # type: ignore[union-attr]
        assert owner_room.occupants == {}

        await owner_room.leave()


async def test_guest_cannot_create_rooms_and_leave_is_seen(prosody: ProsodyInstance) -> None:
    async with connected(settings_for(prosody, "focus", resource="f")) as focus, \
            connected(settings_for(prosody)) as guest:
        with pytest.raises(StanzaError) as refused:
            await MucRoom(guest, JID.parse(f"nope@{prosody.muc_domain}"), "g").join()
        assert refused.value.condition == "not-allowed"

        room_jid = JID.parse(f"room2@{prosody.muc_domain}")
        owner_room = MucRoom(focus, room_jid, "focus")
        await owner_room.join()
        guest_room = MucRoom(guest, room_jid, "g")
        await guest_room.join()
        await _next(owner_room, OccupantJoined)
        await guest_room.leave()
        left = await _next(owner_room, OccupantLeft)
        assert left.occupant.nick == "g" and not left.kicked  # type: ignore[union-attr]

        # A nickname already in use is refused with conflict.
        other = MucRoom(guest, room_jid, "focus")
        with pytest.raises(StanzaError) as conflict:
            await other.join()
        assert conflict.value.condition == "conflict"


@pytest.mark.prosody
async def test_room_rejoined_after_a_session_that_could_not_resume() -> None:
    # A one-second hibernation lets the server forget the session during the break.
    from jicofo.testing.prosody import start_prosody
    from jicofo.testing.tcp_proxy import TcpProxy

    from .test_xmpp_client import _wait_for

    async with start_prosody(smacks_hibernation_time=1) as prosody, trio.open_nursery() as nursery:
        proxy = TcpProxy(prosody.ip, prosody.c2s_port)
        await nursery.start(proxy.run)
        room_jid = JID.parse(f"room3@{prosody.muc_domain}")
        settings = settings_for(prosody, "focus", host="127.0.0.1", port=proxy.port, resource="f")
        async with connected(settings) as focus, connected(settings_for(prosody)) as guest:
            room = MucRoom(focus, room_jid, "focus", rejoin_nursery=nursery)
            await room.join()
            guest_room = MucRoom(guest, room_jid, "g")
            await guest_room.join()
            await _next(room, OccupantJoined)

            proxy.refusing = True
            proxy.cut()
            await _wait_for(lambda: not focus.connected)
            await trio.sleep(2.5)  # longer than the hibernation time: resumption must fail
            proxy.refusing = False

            # The focus comes back in a new session, re-joins, and sees the guest again.
            left = await _next(room, OccupantLeft, timeout=15)
            assert left.occupant.nick == "g"  # type: ignore[union-attr]
            await _next(room, Rejoined, timeout=15)
            assert room.joined and "g" in room.occupants
            assert focus.sessions == 2
            assert focus.sm is not None and focus.sm.resumable
        nursery.cancel_scope.cancel()
