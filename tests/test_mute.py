"""Mute IQs and start muted end to end: a real Prosody, the focus, a simulated bridge and simulated
lib-jitsi-meet participants. Asserted on the wire: the answers the requesters got, the mute
notifications (with actor) the targets got from the focus's occupant JID, the bridge's request
log and endpoint state, and the `<startmuted>` in the offers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import trio

from jicofo.app import FocusApp
from jicofo.http.client import get_json
from jicofo.sim.participant import SimulatedParticipant
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import Bridges, focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until
from jicofo.xmlns.mute import NS_MUTE_AUDIO
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom
from jicofo.xmpp.xml import element, qn

from .test_focus_e2e import bridge_log, no_errors, participants, room_of, wait_bridges
from .xmpp_helpers import connected, settings_for

FEATURE_JIBRI = "http://jitsi.org/protocol/jibri"


@dataclass(frozen=True)
class Moderated:
    """Stands in for the A/V-moderation state through its plug-in point: `media`
    moderated, `whitelist` allowed."""

    media: frozenset[str]
    whitelist: frozenset[str] = frozenset()

    def allowed_to_unmute(self, nick: str, media: str) -> bool:
        return media not in self.media or nick in self.whitelist


async def endpoint_state(sims: Bridges, endpoint: str) -> dict[str, Any]:
    state = await get_json("127.0.0.1", sims.http_port, "/bridges/jvb-sim-1/state")
    for conference in state["conferences"].values():
        if endpoint in conference["endpoints"]:
            return conference["endpoints"][endpoint]
    raise AssertionError(f"{endpoint} is not on the bridge")


async def force_mutes(sims: Bridges) -> list[str]:
    return [e["request"] for e in await bridge_log(sims) if "force-mute" in e["request"]]


async def moderator_ready(app: FocusApp, room: str, people: list[SimulatedParticipant]) -> None:
    """Everyone in session, and the first one owner (auto-owner)."""
    for person in people:
        await person.wait_for_session(15)
    conference = app.focus.conferences[JID.parse(room)]
    first = people[0].endpoint_id
    await wait_until(lambda: conference.participants[first].occupant.affiliation == "owner", 10,
                     "auto-owner")


async def test_a_moderator_mutes_a_participant(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "mutes")
    async with simulated_bridges(prosody, 1) as sims, running_focus(focus_config(prosody)) as app:
        await wait_bridges(app)
        async with participants(prosody, room, 3) as people:
            mod, ana, bo = people
            await moderator_ready(app, room, people)
            since = ana.last_seq
            await mod.request_mute(ana.endpoint_id, "audio")
            # The target hears it from the focus's occupant JID, with the moderator as actor.
            event = await ana.wait_for_event("mute-request", 10, direction="in", since=since)
            assert event.detail == (f"audio true from {ana.focus_muc_jid} actor "
                                    f"{JID.parse(room).with_resource(mod.endpoint_id or '')}")
            # ... and mutes itself (its presence says so, as the client's does).
            conference = app.focus.conferences[JID.parse(room)]
            ana_member = conference.participants[ana.endpoint_id or ""]
            await wait_until(lambda: ana_member.presence.audio_muted, 10, "ana's muted presence")
            # A/V moderation is off: ana may unmute, so the bridge is not force-muted (upstream
            # since #1235: the state stays force-mute=false and nothing is sent).
            assert await force_mutes(sims) == []
            assert (await endpoint_state(sims, ana.endpoint_id or ""))["force_mute"] == \
                {"audio": False, "video": False}

            # Desktop: its own namespace to the target; nobody else hears of it.
            since_bo, since_ana = bo.last_seq, ana.last_seq
            await mod.request_mute(bo.endpoint_id, "desktop")
            event = await bo.wait_for_event("mute-request", 10, direction="in", since=since_bo)
            assert event.detail.startswith(f"desktop true from {bo.focus_muc_jid} actor ")
            assert [e for e in ana.events_of("mute-request") if e.seq > since_ana] == []

            # With A/V moderation on for video and desktop, a mute force-mutes the bridge.
            conference.av_moderation = Moderated(frozenset({"video", "desktop"}))
            await mod.request_mute(ana.endpoint_id, "video")
            with trio.fail_after(10):
                while not await force_mutes(sims):
                    await trio.sleep(0.05)
            [request] = await force_mutes(sims)
            assert f"id='{ana.endpoint_id}'" in request or f'id="{ana.endpoint_id}"' in request
            with trio.fail_after(10):
                while (await endpoint_state(sims, ana.endpoint_id or ""))["force_mute"] != \
                        {"audio": False, "video": True}:
                    await trio.sleep(0.05)
            # The same state again: nothing new is sent.
            await mod.request_mute(ana.endpoint_id, "desktop")
            assert len(await force_mutes(sims)) == 1
            no_errors(people)


async def test_refusals(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "refusals")
    # The guest domain trusted for Jibris, so that the one below counts as one (gateways.py).
    config = focus_config(prosody, {"jicofo.xmpp.trusted-domains": [prosody.domain]})
    async with simulated_bridges(prosody, 1) as sims, running_focus(config) as app:
        await wait_bridges(app)
        async with participants(prosody, room, 3) as people:
            mod, ana, bo = people
            await moderator_ready(app, room, people)
            conference = app.focus.conferences[JID.parse(room)]

            async def refused(person: SimulatedParticipant, target: str | None, media: str,
                              mute: bool) -> str:
                with pytest.raises(StanzaError) as caught:
                    await person.request_mute(target, media, mute)
                return caught.value.condition

            since = bo.last_seq
            # A participant cannot mute someone else.
            assert await refused(ana, bo.endpoint_id, "audio", True) == "not-allowed"
            # Nobody unmutes someone else, moderators included.
            assert await refused(mod, ana.endpoint_id, "audio", False) == "not-allowed"
            # Self-unmute is blocked by A/V moderation, unless a moderator.
            conference.av_moderation = Moderated(frozenset({"audio"}))
            assert await refused(ana, None, "audio", False) == "not-allowed"
            await mod.request_mute(None, "audio", False)
            # (Not whitelisted, the moderator's unmute succeeds but its bridge flag follows the
            # moderation state, as upstream: audio is force-muted there.)
            with trio.fail_after(10):
                while not await force_mutes(sims):
                    await trio.sleep(0.05)
            [forced] = await force_mutes(sims)
            assert f"'{mod.endpoint_id}'" in forced or f'"{mod.endpoint_id}"' in forced
            conference.av_moderation = Moderated(frozenset({"audio"}),
                                                 frozenset({mod.endpoint_id or ""}))
            await mod.request_mute(None, "audio", False)
            with trio.fail_after(10):
                while (await endpoint_state(sims, mod.endpoint_id or ""))["force_mute"]["audio"]:
                    await trio.sleep(0.05)
            conference.av_moderation = Moderated(frozenset())
            # A target that is not in the conference: internal-server-error, as upstream.
            assert await refused(mod, "nobody00", "audio", True) == "internal-server-error"

            async with connected(settings_for(prosody)) as xmpp:
                # Jibri is never force-muted.
                jibri = MucRoom(xmpp, JID.parse(room), "jibri001", presence_extensions=[
                    element(qn("jabber:client", "features"), None,
                            element(qn("jabber:client", "feature"), {"var": FEATURE_JIBRI})),
                ])
                await jibri.join()
                await wait_until(lambda: "jibri001" in conference.participants, 10, "jibri joined")
                assert await refused(mod, "jibri001", "audio", True) == "not-allowed"
                # A mute IQ with no target: bad-request.
                bare = element(qn(NS_MUTE_AUDIO, "mute"), text="true")
                with pytest.raises(StanzaError) as caught:
                    await xmpp.request(xmpp.iq("set", JID.parse(room).with_resource("focus"), bare),
                                       timeout=10)
                assert caught.value.condition == "bad-request"
                # Not from a conference room (straight to the focus's own JID): item-not-found.
                direct = element(qn(NS_MUTE_AUDIO, "mute"),
                                 {"jid": str(JID.parse(room).with_resource(ana.endpoint_id or ""))},
                                 text="true")
                with pytest.raises(StanzaError) as caught:
                    await xmpp.request(xmpp.iq("set", app.client.jid, direct), timeout=10)
                assert caught.value.condition == "item-not-found"
                await jibri.leave()
            # None of the refusals reached a target or the bridge.
            assert [e for e in bo.events_of("mute-request") if e.seq > since] == []
            assert ana.events_of("mute-request") == []
            assert len(await force_mutes(sims)) == 2  # the moderator's, above
            no_errors(people)


async def test_self_mute_and_unmute(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "selfmute")
    async with simulated_bridges(prosody, 1) as sims, running_focus(focus_config(prosody)) as app:
        await wait_bridges(app)
        async with participants(prosody, room, 2) as people:
            _, ana = people
            await moderator_ready(app, room, people)
            for media in ("audio", "video", "desktop"):
                await ana.request_mute(None, media, True)
                await ana.request_mute(None, media, False)
            assert len(ana.events_of("mute-result", "in")) == 6
            # Nobody is told of a self mute, and the bridge keeps the endpoint unforced.
            assert ana.events_of("mute-request") == []
            assert await force_mutes(sims) == []
            no_errors(people)


async def test_start_muted_in_the_offer(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "startmuted")
    properties = {"rtcstatsEnabled": "false", "startAudioMuted": "1", "startVideoMuted": "2"}
    async with simulated_bridges(prosody, 1), running_focus(focus_config(prosody)) as app:
        await wait_bridges(app)
        async with participants(prosody, room, 2, conference_properties=properties) as first:
            for person in first:
                await person.wait_for_session(15)
            async with participants(prosody, room, 1, first=2) as late:
                await late[0].wait_for_session(15)
                people = first + late
                offers = [p.session.offer.start_muted for p in people if p.session]
                assert [(m.audio, m.video) if m else None for m in offers] == \
                    [None, (True, False), (True, True)]
                # The simulated client applies it, as lib-jitsi-meet does.
                assert people[1].events_of("start-muted", "in")[0].detail == "audio=True video=False"
                no_errors(people)
