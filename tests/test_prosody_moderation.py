"""Our own Prosody modules for A/V moderation and room metadata (contrib/prosody/
mod_jicofo_av_moderation.lua, mod_jicofo_room_metadata.lua) end to end: a real Prosody running
them for its conference MUC, the focus, a simulated bridge and simulated participants that speak
lib-jitsi-meet's side of the components (jicofo/sim/participant_moderation.py). Nothing is sent
by hand on the components' behalf: moderators' requests go to the modules, and what the focus
does with the modules' messages is read off the wire (the bridge's force-mute state, the mute
notices and offers participants get, the json-messages everyone gets)."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from xml.etree.ElementTree import tostring

import pytest
import trio

from jicofo.sim.participant import ParticipantOptions, SimulatedParticipant
from jicofo.sim.participant_moderation import ComponentClient, ComponentMessage
from jicofo.testing.prosody import ProsodyInstance, start_prosody
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until
from jicofo.xmpp.jid import JID

from .conftest import _LOG_TAIL
from .test_av_moderation import audio_forced, unmute_refusal, wait_forced
from .test_focus_e2e import no_errors, participants, room_of, wait_bridges
from .test_mute import moderator_ready
from .test_rest import rest_stack
from .xmpp_helpers import connected, settings_for


@pytest.fixture
async def prosody(request: pytest.FixtureRequest) -> AsyncIterator[ProsodyInstance]:
    async with start_prosody(moderation=True) as instance:
        try:
            yield instance
        finally:
            request.node.stash[_LOG_TAIL] = instance.log_tail(60)


def known(prosody: ProsodyInstance) -> dict[str, JID]:
    return {"av_moderation": JID.parse(prosody.av_moderation_jid),
            "room_metadata": JID.parse(prosody.room_metadata_jid)}


async def components_of(prosody: ProsodyInstance, person: SimulatedParticipant) -> ComponentClient:
    """The person's component client, found as lib-jitsi-meet finds them (disco#info)."""
    client = ComponentClient(person.client, prosody.domain)
    assert await client.discover(10) == known(prosody)
    return client


@asynccontextmanager
async def joiner(prosody: ProsodyInstance, room: str, n: int) -> AsyncIterator[
        tuple[SimulatedParticipant, ComponentClient]]:
    """A participant that listens to the components from before it joins (what a newcomer is
    told arrives while it joins)."""
    person = SimulatedParticipant(ParticipantOptions(xmpp=settings_for(prosody), room=room,
                                                     nick=f"{n:02x}a1b2c3", seed=n))
    client = ComponentClient(person.client, prosody.domain, known=known(prosody))
    async with trio.open_nursery() as nursery:
        await nursery.start(person.run)
        yield person, client
        with trio.move_on_after(5):
            await person.leave()
        nursery.cancel_scope.cancel()


def av(message: ComponentMessage, **fields: object) -> bool:
    return message.kind == "av_moderation" and all(message.document.get(k) == v
                                                   for k, v in fields.items())


def refused(message: ComponentMessage) -> bool:
    return message.kind == "error"


def occupant(room: str, person: SimulatedParticipant) -> str:
    return f"{room}/{person.endpoint_id}"


async def test_av_moderation_through_our_module(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "webinar")
    room_jid = JID.parse(room)
    async with simulated_bridges(prosody, 1) as sims, running_focus(focus_config(prosody)) as app:
        # The focus finds the modules where upstream Jicofo looks: the main domain's disco#info.
        await wait_until(lambda: len(app.focus.components) == 2, 10, "component discovery")
        assert app.focus.components == known(prosody)
        await wait_bridges(app)
        async with participants(prosody, room, 2) as people:
            mod, ana = people
            await moderator_ready(app, room, people)
            conference = app.focus.conferences[room_jid]
            mod_c, ana_c = [await components_of(prosody, p) for p in people]
            mod_jid, ana_jid = occupant(room, mod), occupant(room, ana)

            # A participant who is not a moderator is refused by the module; nothing changes.
            await ana_c.av_enable("audio", True)
            error = await ana_c.wait_for(refused, 10)
            assert error.error == "not-allowed"
            assert error.stanza is not None and b"av_moderation" not in tostring(error.stanza)
            assert not conference.av_state.enabled("audio")
            assert not await audio_forced(sims, ana.endpoint_id)
            assert mod_c.of("av_moderation") == []
            # Malformed requests from the moderator, and one from someone in no room.
            for attrs, condition in [({"enable": "true", "mediaType": "screen"}, "bad-request"),
                                     ({"enable": "yes", "mediaType": "audio"}, "bad-request"),
                                     ({"mediaType": "audio"}, "bad-request"),
                                     ({"enable": "true"}, "bad-request")]:
                mark = len(mod_c.messages)
                await mod_c.av_command(attrs)
                assert (await mod_c.wait_for(refused, 10, since=mark)).error == condition, attrs
            async with connected(settings_for(prosody)) as stranger:
                outsider = ComponentClient(stranger, prosody.domain)
                await outsider.discover(10)
                await outsider.av_enable("audio", True)
                assert (await outsider.wait_for(refused, 10)).error == "item-not-found"
            assert not conference.av_state.enabled("audio")

            # The moderator enables audio moderation: everyone hears it from the module, the
            # focus force-mutes the member on the bridge and tells it, with the moderator as
            # actor; the moderator stays free.
            since = ana.last_seq
            await mod_c.av_enable("audio", True)
            notice = await ana_c.wait_for(lambda m: av(m, enabled=True, mediaType="audio"), 10)
            assert notice.document == {"type": "av_moderation", "room": room, "enabled": True,
                                       "mediaType": "audio", "actor": mod_jid}
            lists = await mod_c.wait_for(lambda m: "whitelists" in m.document, 10)
            assert lists.document["whitelists"] == {"audio": []}
            await wait_forced(sims, ana.endpoint_id, True)
            assert not await audio_forced(sims, mod.endpoint_id)
            event = await ana.wait_for_event("mute-request", 10, direction="in", since=since)
            assert event.detail == f"audio true from {ana.focus_muc_jid} actor {mod_jid}"
            assert await unmute_refusal(ana) == "not-allowed"

            # A late joiner is told by the module, starts muted and force-muted by the focus.
            async with joiner(prosody, room, 2) as (bo, bo_c):
                session = await bo.wait_for_session(15)
                assert session.offer.start_muted is not None
                assert (session.offer.start_muted.audio, session.offer.start_muted.video) == \
                    (True, False)
                await bo_c.wait_for(lambda m: av(m, enabled=True, mediaType="audio",
                                                 actor=mod_jid), 10)
                await wait_forced(sims, bo.endpoint_id, True)

                # Approval (the whitelist) lifts the member's force-mute; it may unmute.
                mark = len(mod_c.messages)
                await mod_c.av_approve("audio", ana_jid)
                await ana_c.wait_for(lambda m: av(m, approved=True, mediaType="audio"), 10)
                lists = await mod_c.wait_for(lambda m: "whitelists" in m.document, 10, since=mark)
                assert lists.document["whitelists"] == {"audio": [ana_jid]}
                await wait_forced(sims, ana.endpoint_id, False)
                assert await audio_forced(sims, bo.endpoint_id)
                assert await unmute_refusal(ana) is None
                assert conference.av_state.to_json()["audio"] == {"enabled": True,
                                                                  "whitelist": [ana_jid]}

                # Rejection takes it back: force-muted again.
                await mod_c.av_reject("audio", ana_jid)
                await ana_c.wait_for(lambda m: av(m, removed=True, mediaType="audio"), 10)
                await wait_forced(sims, ana.endpoint_id, True)

                # Approving someone who is not in the room is refused.
                mark = len(mod_c.messages)
                await mod_c.av_approve("audio", f"{room}/nobody00")
                assert (await mod_c.wait_for(refused, 10, since=mark)).error == "item-not-found"

                # Disabled: lifted for everyone.
                await mod_c.av_enable("audio", False)
                await bo_c.wait_for(lambda m: av(m, enabled=False, mediaType="audio"), 10)
                await wait_forced(sims, bo.endpoint_id, False)
                await wait_forced(sims, ana.endpoint_id, False)
                assert await unmute_refusal(bo) is None

                # Moderated again; the moderator leaves and the focus makes the member owner
                # (auto-owner): the module sends the new moderator the whitelists.
                await mod_c.av_enable("audio", True)
                await wait_forced(sims, ana.endpoint_id, True)
                mark = len(ana_c.messages)
                await mod.leave()
                promoted = await ana_c.wait_for(lambda m: "whitelists" in m.document, 15, since=mark)
                assert promoted.document["whitelists"] == {"audio": []}
                await wait_forced(sims, ana.endpoint_id, False)  # a moderator now: exempt
                no_errors(people + [bo])


async def test_room_metadata_through_our_module(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "presets")
    room_jid = JID.parse(room)
    async with simulated_bridges(prosody, 1) as sims, running_focus(focus_config(prosody)) as app:
        await wait_until(lambda: len(app.focus.components) == 2, 10, "component discovery")
        await wait_bridges(app)
        async with participants(prosody, room, 2) as people:
            mod, ana = people
            await moderator_ready(app, room, people)
            conference = app.focus.conferences[room_jid]
            mod_c, ana_c = [await components_of(prosody, p) for p in people]

            # Refusals, each with an error that does not echo the request.
            cases = [
                (ana_c, '{"key":"startMuted","data":{"audio":true}}', "not-allowed"),
                (mod_c, '{"key":"moderators","data":["me"]}', "not-allowed"),
                (mod_c, '{"key":"startMuted","data":{"audio":"yes"}}', "bad-request"),
                (mod_c, '{"key":"startMuted","data":[true]}', "bad-request"),
                (mod_c, '{"key":"lobbyEnabled","data":"on"}', "bad-request"),
                (mod_c, "not json at all", "bad-request"),
                (mod_c, '{"key":"deep","data":' + "[" * 40 + "]" * 40 + "}", "bad-request"),
                (mod_c, '{"key":"big","data":"' + "x" * 20_000 + '"}', "bad-request"),
            ]
            for client, text, condition in cases:
                mark = len(client.messages)
                await client.send_metadata_text(room, text)
                error = await client.wait_for(refused, 10, since=mark)
                assert error.error == condition, text[:60]
                assert error.stanza is not None and b"room_metadata" not in tostring(error.stanza)
            # ... and for a room the sender is not in.
            mark = len(mod_c.messages)
            await mod_c.set_metadata(room_of(prosody, "elsewhere"), "startMuted", {"audio": True})
            assert (await mod_c.wait_for(refused, 10, since=mark)).error == "item-not-found"
            assert conference.room_metadata is None

            # A moderator sets startMuted: every occupant (the focus is one) gets the metadata
            # from the module; the focus applies it to the next joiner's offer.
            await mod_c.set_metadata(room, "startMuted", {"audio": False, "video": True})
            update = await ana_c.wait_for(lambda m: m.kind == "room_metadata", 10)
            assert update.room == room
            assert update.document == {"type": "room_metadata",
                                       "metadata": {"startMuted": {"audio": False, "video": True}}}
            await wait_until(lambda: conference.room_metadata is not None, 10, "metadata")
            assert conference.room_metadata is not None
            assert conference.room_metadata.start_muted_video
            # Free-form keys the focus does not read pass through to everyone; the focus still
            # reads the message (a new metadata object).
            before = conference.room_metadata
            await mod_c.set_metadata(room, "whiteboard", {"collabServerUrl": "https://wb.test"})
            await ana_c.wait_for(lambda m: "whiteboard" in m.document.get("metadata", {}), 10)
            await wait_until(lambda: conference.room_metadata is not before, 10, "the focus reading it")

            async with joiner(prosody, room, 2) as (bo, bo_c):
                session = await bo.wait_for_session(15)
                assert session.offer.start_muted is not None
                assert (session.offer.start_muted.audio, session.offer.start_muted.video) == \
                    (False, True)
                # The newcomer got the room's metadata from the module as it joined.
                first = await bo_c.wait_for(lambda m: m.kind == "room_metadata", 10)
                assert first.document["metadata"]["startMuted"] == {"audio": False, "video": True}
                assert first.document["metadata"]["whiteboard"] == {
                    "collabServerUrl": "https://wb.test"}
                no_errors(people + [bo])
        del sims


async def test_debug_shows_the_discovered_components(prosody: ProsodyInstance) -> None:
    async with rest_stack(prosody) as stack:
        await wait_until(lambda: len(stack.app.focus.components) == 2, 10, "component discovery")
        debug = await stack.json("/debug")
        assert debug["av_moderation"] == {"address": prosody.av_moderation_jid}
        assert debug["room_metadata"] == {"address": prosody.room_metadata_jid}


def _hostile_av(rng: random.Random, room: str, others: list[str]) -> dict[str, str]:
    values = ["", "true", "false", "TRUE", "1", "audio", "screen", "x" * 5000, "\u00e9\u6f22\U0001f600",
              f"{room}/", f"{room}/nobody00", "elsewhere@conference.meet.test/a", "@/", *others]
    keys = ["enable", "mediaType", "jidToWhitelist", "jidToBlacklist", "junk"]
    attrs = {key: rng.choice(values) for key in rng.sample(keys, rng.randint(0, len(keys)))}
    if attrs.get("mediaType") == "audio":
        attrs["mediaType"] = "video"  # audio stays for the check afterwards
    return attrs


def _random_json(rng: random.Random, depth: int) -> object:
    kind = rng.randrange(7 if depth > 0 else 4)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 10**30, 1.5e300])
    if kind == 2:
        return rng.choice(["", "x" * rng.randint(1, 3000), "\u0000\u202e", "}{]["])
    if kind == 3:
        return rng.choice(["startMuted", "moderators", "lobbyEnabled", "visitors", "recording"])
    if kind in (4, 5):
        return {rng.choice(["audio", "video", "live", "a" * 200, ""]): _random_json(rng, depth - 1)
                for _ in range(rng.randint(0, 4))}
    return [_random_json(rng, depth - 1) for _ in range(rng.randint(0, 4))]


def _hostile_metadata(rng: random.Random) -> str:
    choice = rng.randrange(6)
    if choice == 0:
        return rng.choice(["", "null", "[]", "{", '{"key":', "1e999", "[" * 3000, '"' * 100])
    if choice == 1:
        return json.dumps({"key": _random_json(rng, 3), "data": _random_json(rng, 3)})
    if choice == 2:
        nested: object = True
        for _ in range(rng.randint(5, 200)):
            nested = [nested]
        return json.dumps({"key": "deep", "data": nested})
    key = rng.choice(["startMuted", "lobbyEnabled", "visitors", "recording", "moderators",
                      "participants", "k" * 300, "free"])
    return json.dumps({"key": key, "data": _random_json(rng, 4)})


async def test_hostile_requests_leave_the_modules_working(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "hostile")
    rng = random.Random(19)
    async with simulated_bridges(prosody, 1) as sims, running_focus(focus_config(prosody)) as app:
        await wait_until(lambda: len(app.focus.components) == 2, 10, "component discovery")
        await wait_bridges(app)
        async with participants(prosody, room, 2) as people:
            mod, ana = people
            await moderator_ready(app, room, people)
            mod_c, ana_c = [await components_of(prosody, p) for p in people]
            others = [occupant(room, p) for p in people]
            # 300 generated requests from a moderator and from a member, to both modules.
            for n in range(300):
                client = mod_c if n % 3 else ana_c
                if n % 2:
                    await client.av_command(_hostile_av(rng, room, others))
                else:
                    await client.send_metadata_text(rng.choice([room, "x@y", ""]),
                                                    _hostile_metadata(rng))
            # A round trip through each module: everything before it has been handled.
            mark = len(mod_c.messages)
            await mod_c.av_command({"mediaType": "audio"})
            await mod_c.wait_for(refused, 10, since=mark)
            mark = len(mod_c.messages)
            await mod_c.send_metadata_text(room, "{}")
            await mod_c.wait_for(refused, 10, since=mark)

            # Prosody, both modules and the focus still work.
            assert prosody.running
            await mod_c.av_enable("audio", True)
            await wait_forced(sims, ana.endpoint_id, True)
            await mod_c.set_metadata(room, "startMuted", {"audio": False, "video": True})
            await ana_c.wait_for(lambda m: m.kind == "room_metadata" and m.document["metadata"]
                                 .get("startMuted") == {"audio": False, "video": True}, 10)
            conference = app.focus.conferences[JID.parse(room)]
            await wait_until(lambda: conference.room_metadata is not None
                             and conference.room_metadata.start_muted_video, 10, "metadata")
            no_errors(people)
    log = prosody.log_file.read_text(errors="replace")
    assert "Traceback" not in log
    assert not [line for line in log.splitlines() if "\terror\t" in line]
