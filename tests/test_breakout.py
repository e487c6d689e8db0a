"""Breakout rooms (docs/jicofo.md §1.8 row 76) against a Prosody with a breakout MUC,
announced as the `breakout_rooms` component on the main domain, and whose breakout rooms name
their main room in their room info (a test module standing in for Jitsi's breakout module)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from jicofo.app import FocusApp
from jicofo.testing.prosody import ProsodyInstance, harness_plugin_dir, start_prosody
from jicofo.testing.stack import focus_config, running_focus
from jicofo.testing.waiting import wait_until
from jicofo.xmlns.conference_iq import CONFERENCE, ConferenceAnswer, ConferenceRequest
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom

from .xmpp_helpers import connected, settings_for

pytestmark = pytest.mark.prosody  # every test here starts a Prosody

BREAKOUT = "breakout.meet.test"
MAIN = "main@conference.meet.test"
BR1 = f"br1@{BREAKOUT}"
BR2 = f"br2@{BREAKOUT}"
HOST_PASSWORD = "host-secret-2"


def layout(secure_domain: bool) -> dict[str, Any]:
    return {
        "secure_domain": secure_domain,
        "plugin_paths": [harness_plugin_dir()],
        "domain_settings": ('\tmodules_enabled = { "test_component_identities" }\n'
                            f'\ttest_component_identities = {{ breakout_rooms = "{BREAKOUT}" }}\n'),
        "extra_components": (
            f'Component "{BREAKOUT}" "muc"\n'
            '\tadmins = { "focus@auth.meet.test" }\n'
            '\tmuc_room_locking = false\n'
            '\tmuc_room_default_public_jids = true\n'
            '\tmuc_tombstones = false\n'
            '\tmodules_enabled = { "test_breakout_room_info" }\n'
            f'\ttest_breakout_main_rooms = {{ ["{BR1}"] = "{MAIN}", ["{BR2}"] = "{MAIN}" }}\n'
        ),
        "extra_users": [("alice", "meet.test", HOST_PASSWORD)] if secure_domain else [],
    }


@pytest.fixture
async def breakout_prosody() -> AsyncIterator[ProsodyInstance]:
    async with start_prosody(**layout(False)) as instance:
        yield instance


@pytest.fixture
async def secure_breakout_prosody() -> AsyncIterator[ProsodyInstance]:
    async with start_prosody(**layout(True)) as instance:
        yield instance


async def ask(client: XMPPClient, room: str) -> ConferenceAnswer:
    iq = client.iq("set", "focus.meet.test",
                   ConferenceRequest(room=room, machine_uid="m-1").to_element())
    payload = (await client.request(iq, timeout=10)).find(CONFERENCE)
    assert payload is not None
    return ConferenceAnswer.from_element(payload)


async def breakout_known(app: FocusApp) -> None:
    await wait_until(lambda: app.focus.breakout_domain == BREAKOUT, 10, "the breakout component")


def fast(prosody: ProsodyInstance, **extra: Any) -> Any:
    return focus_config(prosody, {"jicofo.conference.initial-timeout": "1 second", **extra})


async def test_no_auto_owner_in_breakout_rooms(breakout_prosody: ProsodyInstance) -> None:
    prosody = breakout_prosody
    async with running_focus(fast(prosody)) as app, connected(settings_for(prosody)) as guest:
        await breakout_known(app)
        for room in (MAIN, BR1):
            assert (await ask(guest, room)).ready
        main = MucRoom(guest, JID.parse(MAIN), "g1")
        breakout = MucRoom(guest, JID.parse(BR1), "g1")
        await main.join(timeout=5)
        await breakout.join(timeout=5)
        conference = app.focus.conferences[JID.parse(BR1)]
        assert conference.breakout and conference.main_room == JID.parse(MAIN)
        assert app.focus.conference_iq_debug()["breakout_address"] == BREAKOUT
        main_conference = app.focus.conferences[JID.parse(MAIN)]

        # The member's affiliation as Prosody reports it to the focus, in each room.
        def affiliation(conf: Any) -> str | None:
            member = conf.participants.get("g1")
            return member.occupant.affiliation if member is not None else None

        # Auto-owner works in the main room, not in the breakout room.
        await wait_until(lambda: affiliation(main_conference) == "owner", 10,
                         "owner in the main room")
        await wait_until(lambda: affiliation(conference) is not None, 10, "breakout member")
        await trio.sleep(0.5)
        assert affiliation(conference) not in ("owner", "admin")


async def test_breakout_requests_skip_authentication(
        secure_breakout_prosody: ProsodyInstance) -> None:
    prosody = secure_breakout_prosody
    config = fast(prosody, **{"jicofo.authentication.enabled": True,
                              "jicofo.authentication.type": "XMPP",
                              "jicofo.authentication.login-url": prosody.domain})
    guest_settings = dataclasses.replace(settings_for(prosody), domain=prosody.guest_domain)
    async with running_focus(config) as app, connected(guest_settings) as guest:
        await breakout_known(app)
        # A guest may not open a main room, but a breakout room needs no authentication.
        with pytest.raises(StanzaError) as refused:
            await ask(guest, MAIN)
        assert refused.value.condition == "not-authorized"
        answer = await ask(guest, BR1)
        assert answer.ready and answer.session_id is None
        room = MucRoom(guest, JID.parse(BR1), "gg")
        await room.join(timeout=5)
        await wait_until(lambda: app.focus.conferences[JID.parse(BR1)].main_room is not None,
                         10, "the breakout room's main room")
        # While a breakout room of it exists, a guest may have the main room created again.
        assert (await ask(guest, MAIN)).ready
