"""Dial-out and transcription through Jigasi end to end: a real Prosody, our focus, simulated
bridges and participants, and `jicofo-jigasi-sim` instances. Asserted: the answers members get,
the dial IQs the Jigasis receive (their logs), the conference properties members are sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from xml.etree.ElementTree import Element

import pytest

from jicofo.app import FocusApp
from jicofo.http.client import get_json, post_json, request
from jicofo.sim.participant import SimulatedParticipant
from jicofo.testing.gateways import Jigasis, jigasi_brewery, simulated_jigasis
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.xml import element, qn

from .test_focus_e2e import participants, room_of, wait_bridges
from .test_jibri_e2e import free_port
from .test_mute import moderator_ready

NS_RAYO = "urn:xmpp:rayo:1"
SIP, TRANSCRIBER = (True, False, None), (False, True, None)


@asynccontextmanager
async def stack(prosody: ProsodyInstance, kinds: list[tuple[bool, bool, str | None]], room: str,
                **extra: Any) -> AsyncIterator[tuple[FocusApp, Jigasis, list[SimulatedParticipant]]]:
    async with simulated_bridges(prosody, 1), simulated_jigasis(prosody, kinds or [SIP]) as jigasis:
        if not kinds:
            for jigasi in jigasis.jigasis:
                await jigasi.stop()
        if extra.get("jicofo.rest.port") == "free":  # chosen late: the port may not stay free long
            extra["jicofo.rest.port"] = free_port()
        config = focus_config(prosody, {"jicofo.jigasi.brewery-jid": jigasi_brewery(prosody),
                                        "jicofo.xmpp.trusted-domains": [prosody.auth_domain], **extra})
        async with running_focus(config) as app:
            await wait_bridges(app)
            assert app.jigasi is not None
            detector = app.jigasi.detector
            await wait_until(lambda: len(detector.instances) == len(kinds), 10, "the jigasis")
            async with participants(prosody, room, 2) as people:
                await moderator_ready(app, room, people)
                yield app, jigasis, people


def dial_element(to: str, room: str | None) -> Element:
    headers = [element(qn(NS_RAYO, "header"), {"name": "JvbRoomName", "value": room})] if room else []
    return element(qn(NS_RAYO, "dial"), {"to": to, "from": "fromnumber"}, *headers)


async def dial(person: SimulatedParticipant, to: str, room: str | None) -> tuple[str, Element]:
    iq = person.client.iq("set", person.focus_muc_jid, dial_element(to, room))
    answer = await person.client.request(iq, timeout=40)
    return iq.get("id") or "", answer


async def refused(person: SimulatedParticipant, to: str, room: str | None) -> str:
    with pytest.raises(StanzaError) as caught:
        await dial(person, to, room)
    return caught.value.condition


async def test_dial_out_is_relayed_and_answered(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "dialout")
    async with stack(prosody, [SIP], room) as (app, jigasis, (mod, guest)):
        # Advertised, as upstream, since a Jigasi brewery is configured.
        assert mod.conference_answer is not None
        assert mod.conference_answer.properties.get("sipGatewayEnabled") == "true"
        member_id, answer = await dial(mod, "+15551234567", room)
        [request] = jigasis.by_nick("jigasi-1").requests
        # Forwarded with a new id, from the focus (not the member), the payload unchanged.
        assert request["id"] != member_id
        assert JID.parse(request["from"]).bare == JID.parse(app.config.jigasi.brewery_jid or "").bare
        assert (request["to"], request["dial_from"], request["headers"]) == \
            ("+15551234567", "fromnumber", {"JvbRoomName": room})
        # The member gets the Jigasi's <ref>, under its own id, from the focus's occupant JID.
        ref = answer.find(qn(NS_RAYO, "ref"))
        assert ref is not None and ref.get("uri") == request["answer"]
        assert answer.get("id") == member_id and answer.get("from") == mod.focus_muc_jid
        # The gateway joins the room; on a trusted domain it is a Jigasi: auto-owner skips it.
        conference = app.focus.conferences[JID.parse(room)]
        await wait_until(lambda: any(n.startswith("jigasi-1") for n in conference.participants), 10,
                         "the gateway in the room")
        # The room header must name this room; the moderator checks apply (default on).
        assert await refused(mod, "+1555", f"other@{prosody.muc_domain}") == "forbidden"
        assert await refused(guest, "+1555", room) == "forbidden"
        assert len(jigasis.by_nick("jigasi-1").requests) == 1
        # No header is fine (upstream checks it only when present).
        await dial(mod, "+1666", None)
        assert app.jigasi is not None
        stats = app.jigasi.stats
        assert (stats.accepted_requests, stats.rejected_requests) == (2, 2)


async def test_transcriber_selection_and_retries(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "transcribe")
    async with stack(prosody, [SIP, SIP, TRANSCRIBER], room) as (app, jigasis, (mod, _guest)):
        sip1, sip2, transcriber = jigasis.jigasis
        await dial(mod, "jitsi_meet_transcribe", room)
        assert [len(j.requests) for j in jigasis.jigasis] == [0, 0, 1]
        # Once the transcriber is in the room, another one is refused (conflict).
        conference = app.focus.conferences[JID.parse(room)]
        await wait_until(lambda: any(n.startswith("jigasi-3") for n in conference.participants), 10,
                         "the transcriber in the room")
        assert await refused(mod, "jitsi_meet_transcribe", room) == "conflict"
        # A SIP Jigasi that answers an error: the dial goes to the other one.
        for j in (sip1, sip2):
            j.requests.clear()
        await post_json("127.0.0.1", jigasis.http_port, "/jigasis/jigasi-1/faults", {"dial": "error"})
        await post_json("127.0.0.1", jigasis.http_port, "/jigasis/jigasi-2/faults", {"dial": "error"})
        # Both fail: each is tried once (never the same one twice); the next retry finds no
        # instance left, so service-unavailable, as upstream (undefined-condition needs a third).
        assert await refused(mod, "+1777", room) == "service-unavailable"
        assert [len(j.requests) for j in (sip1, sip2)] == [1, 1]
        await post_json("127.0.0.1", jigasis.http_port, "/jigasis/jigasi-2/faults", {"dial": "ok"})
        for j in (sip1, sip2):
            j.requests.clear()
        _, answer = await dial(mod, "+1888", room)
        assert answer.find(qn(NS_RAYO, "ref")) is not None
        assert len(sip2.requests) == 1
        assert app.jigasi is not None
        # (jigasi-1 may have been tried first again, and refused it)
        assert app.jigasi.stats.instance_errors == 2 + len(sip1.requests)
        # A Jigasi in graceful shutdown is not chosen.
        await post_json("127.0.0.1", jigasis.http_port, "/jigasis/jigasi-2/graceful-shutdown",
                        {"enabled": True})
        detector = app.jigasi.detector
        await wait_until(lambda: detector.sip_in_graceful_shutdown_count() == 1, 10, "shutdown seen")
        sip1.requests.clear()
        sip2.requests.clear()
        assert await refused(mod, "+1999", room) == "service-unavailable"  # only jigasi-1 (error)
        assert (len(sip1.requests), len(sip2.requests)) == (1, 0)


async def test_no_jigasi_present(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "nojigasi")
    async with stack(prosody, [], room, **{"jicofo.rest.port": "free"}) as (app, jigasis, (mod, _guest)):
        assert await refused(mod, "+15551234567", room) == "service-unavailable"
        assert app.rest_port is not None
        stats = await get_json("127.0.0.1", app.rest_port, "/stats")
        assert stats["jigasi"]["requests_failed_no_instance"] == 1
        assert stats["jigasi"]["accepted_requests"] == 1
        assert stats["jigasi_detector"] == {"sip_count": 0, "sip_in_graceful_shutdown_count": 0,
                                            "transcriber_count": 0}
        _, metrics = await request("127.0.0.1", app.rest_port, "GET", "/metrics")
        assert "jitsi_jicofo_jigasi_iq_handler_accepted_requests_total 1.0" in metrics.decode()


async def test_without_a_jigasi_brewery_nothing_is_advertised(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "nobrewery")
    async with simulated_bridges(prosody, 1), running_focus(focus_config(prosody)) as app:
        await wait_bridges(app)
        async with participants(prosody, room, 2) as (person, _other):
            await moderator_ready(app, room, [person, _other])
            assert person.conference_answer is not None
            assert "sipGatewayEnabled" not in person.conference_answer.properties
            assert await refused(person, "+1555", room) == "service-unavailable"
