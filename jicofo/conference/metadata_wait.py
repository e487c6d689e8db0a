"""Waiting for a room's metadata before the conference counts as joined (docs/jicofo.md §2.2,
§8.2; upstream ChatRoomImpl.joinAs): when the room's owner configuration form has
`muc#roominfo_conference_presets_service_enabled` true, a conference presets service fills the
room's metadata (start muted, moderators, visitors, ...) as the room is created, and upstream
blocks the join up to 10 s until the room_metadata component's first message has arrived, so
that the first participants are invited under those settings. Timing out is not an error: the
conference goes on without.

Our differences: the timeout is `jicofo.conference.room-metadata-timeout`, and there is no wait
when no room_metadata component was discovered (nothing could end it but the timeout).
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

import trio

NS_DATA = "jabber:x:data"
CONFERENCE_PRESETS_FIELD = "muc#roominfo_conference_presets_service_enabled"


def presets_enabled(form: Element | None) -> bool:
    """The form's conference-presets field reads true (XEP-0004 booleans: "true" or "1")."""
    if form is None:
        return False
    for field in form.iter(f"{{{NS_DATA}}}field"):
        if field.get("var") == CONFERENCE_PRESETS_FIELD:
            value = field.find(f"{{{NS_DATA}}}value")
            text = (value.text or "").strip().lower() if value is not None else ""
            return text in ("true", "1")
    return False


async def wait_for_metadata(received: trio.Event, timeout: float) -> bool:
    """Wait until `received` is set, at most `timeout` seconds. True: the metadata arrived."""
    with trio.move_on_after(timeout):
        await received.wait()
    return received.is_set()
