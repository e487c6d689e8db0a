"""Breakout rooms on the wire (Jitsi's mod_muc_breakout_rooms; docs/jicofo.md §1.8 row 76):
the room-info fields that link a breakout room to its main room, and the presence status a member
sends when it leaves a room to switch to another."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from jicofo.xmpp.jid import JID, InvalidJID

IS_BREAKOUT_FIELD = "muc#roominfo_isbreakout"
MAIN_ROOM_FIELD = "muc#roominfo_breakout_main_room"
SWITCH_ROOM = "switch_room"
# The disco identity (category "component") of the breakout rooms component on the main domain;
# its name is the breakout MUC's domain.
COMPONENT_BREAKOUT_ROOMS = "breakout_rooms"


def is_switch_room(presence: Element | None) -> bool:
    """True for an unavailable presence with `<status>switch_room</status>`."""
    if presence is None:
        return False
    status = presence.find("{jabber:client}status")
    return status is not None and (status.text or "").strip() == SWITCH_ROOM


def main_room_of(room_info: dict[str, list[str]]) -> JID | None:
    """The main room a breakout room belongs to, from its room-info fields (None when the room is
    not a breakout room or names no valid main room)."""
    flag = (room_info.get(IS_BREAKOUT_FIELD) or [""])[0].lower()
    if flag not in ("1", "true"):
        return None
    value = (room_info.get(MAIN_ROOM_FIELD) or [""])[0]
    try:
        jid = JID.parse(value)
    except InvalidJID:
        return None
    return jid.bare if jid.local is not None else None
