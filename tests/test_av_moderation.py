"""A/V moderation and room metadata end to end: a real Prosody whose main domain advertises the
av_moderation and room_metadata components (as Jitsi's modules do), test-side XEP-0114
components playing Jitsi's components, the focus, a simulated bridge and simulated participants.
Asserted on the wire: the bridge's force-mute state per endpoint (its request log and state),
the mute answers and notices the participants got, and the `<startmuted>` in late joiners'
offers."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from jicofo.sim.participant import SimulatedParticipant
from jicofo.testing.prosody import ProsodyInstance, harness_plugin_dir, start_prosody
from jicofo.testing.stack import Bridges, focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until
from jicofo.xmlns.component_message import JSON_MESSAGE
from jicofo.xmpp.client import XMPPClient, XMPPComponent
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.settings import ComponentSettings
from jicofo.xmpp.xml import element

from .test_focus_e2e import no_errors, participants, room_of, wait_bridges
from .test_mute import endpoint_state, moderator_ready
from .xmpp_helpers import FAST, connected, running, settings_for

pytestmark = pytest.mark.prosody  # every test here starts a Prosody

AV_MODERATION = "avmoderation.meet.test"
METADATA = "metadata.meet.test"
SECRET = secrets.token_urlsafe(12)


@pytest.fixture
async def jitsi_prosody() -> AsyncIterator[ProsodyInstance]:
    components = "\n".join(f'Component "{jid}"\n\tcomponent_secret = "{SECRET}"'
                           for jid in (AV_MODERATION, METADATA))
    domain = ('\tmodules_enabled = { "test_component_identities" }\n'
              f'\ttest_component_identities = {{ av_moderation = "{AV_MODERATION}", '
              f'room_metadata = "{METADATA}" }}')
    async with start_prosody(plugin_paths=[harness_plugin_dir()], extra_components=components,
                             domain_settings=domain) as instance:
        yield instance


@asynccontextmanager
async def component(prosody: ProsodyInstance, jid: str) -> AsyncIterator[XMPPComponent]:
    settings = ComponentSettings(domain=jid, secret=SECRET, host=prosody.ip,
                                 port=prosody.component_port, timeouts=FAST)
    async with running(XMPPComponent(settings)) as conn:
        yield conn


async def send_json(conn: XMPPClient | XMPPComponent, to: JID, document: dict[str, object],
                    room: str | None = None) -> None:
    payload = element(JSON_MESSAGE, {"room": room} if room else None, text=json.dumps(document))
    await conn.send(conn.stanza("message", {"to": str(to)}, payload))


async def audio_forced(sims: Bridges, endpoint: str | None) -> bool:
    return bool((await endpoint_state(sims, endpoint or ""))["force_mute"]["audio"])


async def wait_forced(sims: Bridges, endpoint: str | None, value: bool) -> None:
    with trio.fail_after(10):
        while await audio_forced(sims, endpoint) != value:
            await trio.sleep(0.05)


async def unmute_refusal(person: SimulatedParticipant) -> str | None:
    try:
        await person.request_mute(None, "audio", mute=False)
    except StanzaError as err:
        return err.condition
    return None


async def test_av_moderation_on_and_off_with_a_late_joiner(jitsi_prosody: ProsodyInstance) -> None:
    prosody = jitsi_prosody
    room = room_of(prosody, "moderated")
    room_jid = JID.parse(room)
    async with simulated_bridges(prosody, 1) as sims, running_focus(focus_config(prosody)) as app, \
            component(prosody, AV_MODERATION) as avmod, component(prosody, METADATA) as metadata:
        await wait_until(lambda: len(app.focus.components) == 2, 10, "component discovery")
        assert app.focus.components == {"av_moderation": JID.parse(AV_MODERATION),
                                         "room_metadata": JID.parse(METADATA)}
        focus = app.client.jid
        assert focus is not None
        await wait_bridges(app)
        async with participants(prosody, room, 2) as people:
            mod, ana = people
            await moderator_ready(app, room, people)
            conference = app.focus.conferences[room_jid]
            ana_jid = str(room_jid.with_resource(ana.endpoint_id or ""))

            # A message from anyone but the component changes nothing (a plain client sends it;
            # its IQ round trip afterwards proves the focus has read it).
            async with connected(settings_for(prosody)) as stranger:
                await send_json(stranger, focus, {"type": "av_moderation", "room": room,
                                                  "enabled": True, "mediaType": "audio"})
                await stranger.query_disco_info(focus, timeout=10)
            assert not conference.av_state.enabled("audio")
            assert not await audio_forced(sims, ana.endpoint_id)

            # Enabled for audio: the member (not the moderator) is force-muted and told so.
            since = ana.last_seq
            actor = str(room_jid.with_resource(mod.endpoint_id or ""))
            await send_json(avmod, focus, {"type": "av_moderation", "room": room, "enabled": True,
                                           "mediaType": "audio", "actor": actor})
            await wait_forced(sims, ana.endpoint_id, True)
            assert not await audio_forced(sims, mod.endpoint_id)
            event = await ana.wait_for_event("mute-request", 10, direction="in", since=since)
            assert event.detail == f"audio true from {ana.focus_muc_jid} actor {actor}"
            assert await unmute_refusal(ana) == "not-allowed"
            assert await unmute_refusal(mod) is None  # moderators are exempt

            # A late joiner starts muted and force-muted.
            async with participants(prosody, room, 1, first=2) as late:
                [bo] = late
                session = await bo.wait_for_session(15)
                assert session.offer.start_muted is not None
                assert (session.offer.start_muted.audio, session.offer.start_muted.video) == \
                    (True, False)
                await wait_forced(sims, bo.endpoint_id, True)

                # Whitelisting the member lifts its force-mute; it may unmute again.
                await send_json(avmod, focus, {"type": "av_moderation", "room": room,
                                               "whitelists": {"audio": [ana_jid]}})
                await wait_forced(sims, ana.endpoint_id, False)
                assert await audio_forced(sims, bo.endpoint_id)
                assert await unmute_refusal(ana) is None

                # Disabled: lifted for everyone.
                await send_json(avmod, focus, {"type": "av_moderation", "room": room,
                                               "enabled": False, "mediaType": "audio"})
                await wait_forced(sims, bo.endpoint_id, False)
                assert await unmute_refusal(bo) is None

                # Room metadata's startMuted reaches the next joiner's offer.
                await send_json(metadata, focus, {"type": "room_metadata", "metadata": {
                    "startMuted": {"audio": False, "video": True}, "visitorsEnabled": True,
                    "participantsSoftLimit": 30, "moderators": ["user-1"]}}, room=room)
                await wait_until(lambda: conference.room_metadata is not None, 10, "metadata")
                async with participants(prosody, room, 1, first=3) as later:
                    session = await later[0].wait_for_session(15)
                    assert session.offer.start_muted is not None
                    assert (session.offer.start_muted.audio, session.offer.start_muted.video) == \
                        (False, True)
                    state = conference.to_json()
                    assert state["room_metadata"]["participants_soft_limit"] == 30  # type: ignore[index]
                    assert state["av_moderation"]["audio"] == {  # type: ignore[index]
                        "enabled": False, "whitelist": [ana_jid]}
                    no_errors(people + late + later)
