"""A conference's records and the conference rebuilt from them (no network: the objects are built
but nothing runs). What a new process restores is what the old one had: members, sessions,
sources, what each was told, the Colibri2 session and A/V moderation."""

from __future__ import annotations

import json

from jicofo.bridge.brewery import Brewery
from jicofo.bridge.colibri import Allocation, ColibriSession
from jicofo.bridge.selector import BridgeSelector
from jicofo.conference.conference import Conference
from jicofo.conference.offer import OfferConfig, OfferOptions
from jicofo.conference.participant import JingleSession, Participant, SessionState
from jicofo.conference.services import ConferenceServices
from jicofo.config.load import load_config
from jicofo.model.sources import EndpointSourceSet, MediaType, Source
from jicofo.restart.conference_state import (
    restore_conference,
    snapshot_conference,
    snapshot_participant,
)
from jicofo.xmlns.colibri2 import ForceMute
from jicofo.xmlns.component_message import AvModerationMessage
from jicofo.xmlns.ice_udp import Fingerprint, IceUdpTransport
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import Occupant
from jicofo.xmpp.settings import ClientSettings
from jicofo.xmpp.xml import element

ROOM = JID.parse("room@conference.meet.test")
BRIDGE = JID.parse("jvbbrewery@internal.auth.meet.test/jvb-1")


def services() -> ConferenceServices:
    config = load_config(None, {"jicofo.xmpp.client.domain": "auth.meet.test",
                                "jicofo.xmpp.client.password": "x",
                                "jicofo.bridge.brewery-jid": str(BRIDGE.bare)}, env={})
    client = XMPPClient(ClientSettings(domain="auth.meet.test"))
    brewery = Brewery(client, BRIDGE.bare, config.bridge)
    return ConferenceServices(config=config, client=client, colibri_client=client, brewery=brewery,
                              selector=BridgeSelector(config.bridge, config.octo),
                              offer_config=OfferConfig.from_codec_config(config.codec))


def occupant(nick: str) -> Occupant:
    presence = element("{jabber:client}presence", {"from": f"{ROOM}/{nick}"},
                       element("{jabber:client}stats-id", text=f"S-{nick}"))
    return Occupant(nick, "participant", "none", JID.parse(f"{nick}@meet.test/web"), presence)


def sources(ssrc: int, owner: str) -> EndpointSourceSet:
    return EndpointSourceSet((Source(ssrc, MediaType.AUDIO, f"{owner}-a0", f"{owner}-msid"),
                              Source(ssrc + 1, MediaType.VIDEO, f"{owner}-v0", f"{owner}-msid")))


async def test_a_conference_comes_back_as_it_was() -> None:
    old = services()
    conference = Conference(old, ROOM, {"rtcstatsEnabled": "false"})
    conference.meeting_id = "m-1"
    bridge = old.brewery.adopt(BRIDGE)  # type: ignore[union-attr]
    colibri = ColibriSession(old.client, bridge, meeting_id="m-1", room_name=str(ROOM), timeout=5)
    colibri._created = True
    colibri.endpoints = {"a", "b"}
    colibri.force_muted = {"a": ForceMute(True, False), "b": ForceMute()}
    conference.colibri_sessions[bridge] = colibri
    transport = IceUdpTransport("uf", "pw", (Fingerprint("sha-256", "AB", "actpass"),), rtcp_mux=True)
    for n, nick in enumerate(("a", "b")):
        p = Participant(conference, occupant(nick))
        p.features = frozenset({"urn:xmpp:jingle:apps:rtp:audio"})
        p.invited = True
        p.colibri = colibri
        p.allocation = Allocation(transport, 5000, EndpointSourceSet())
        p.session = JingleSession(f"sid-{nick}", colibri, OfferOptions(video=n == 0),
                                  SessionState.ACTIVE)
        conference.participants[nick] = p
        conference.sources.add(nick, sources(100 * (n + 1), nick))
    conference.participants["a"].signaled.add("b", sources(200, "b"))
    conference._invite_positions = {"a": 1, "b": 2}
    conference.av_state.apply(AvModerationMessage(ROOM, enabled=True, media="audio",
                                                  whitelists={"audio": (f"{ROOM}/b",)}))

    # What the store keeps is JSON.
    record = json.loads(json.dumps(snapshot_conference(conference)))
    members = {nick: json.loads(json.dumps(snapshot_participant(p)))
               for nick, p in conference.participants.items()}

    new = services()
    back = restore_conference(new, new.brewery, record, members)  # type: ignore[arg-type]
    assert back.meeting_id == "m-1" and back.properties == {"rtcstatsEnabled": "false"}
    assert back.resume is not None and back._invite_positions == {"a": 1, "b": 2}
    ((new_bridge, session),) = back.colibri_sessions.items()
    assert new.brewery.bridges[BRIDGE] is new_bridge  # type: ignore[union-attr]
    assert session.id == colibri.id and session.created and session.endpoints == {"a", "b"}
    assert session.force_muted == colibri.force_muted and not session.rtcstats_enabled
    assert new_bridge.endpoints == 2
    for nick in ("a", "b"):
        p, was = back.participants[nick], conference.participants[nick]
        assert p.session is not None and was.session is not None
        assert (p.session.sid, p.session.state, p.session.options) == \
            (was.session.sid, was.session.state, was.session.options)
        assert p.session.colibri is session and p.colibri is session
        assert p.allocation == was.allocation and p.features == was.features and p.invited
        assert p.sources == was.sources and p.signaled == was.signaled
        assert p.presence.stats_id == f"S-{nick}" and p.occupant.jid == was.occupant.jid
    assert back.av_state.to_json() == conference.av_state.to_json()
    assert not back.av_state.allowed_to_unmute("a", "audio")
    assert back.av_state.allowed_to_unmute("b", "audio")
