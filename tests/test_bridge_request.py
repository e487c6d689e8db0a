"""The simulated bridge's own reading of Colibri2 requests (jicofo/sim/bridge_request.py): what the
focus's Colibri2 writer sends is read back faithfully by code that shares nothing with the focus's
parser, and what it cannot read is refused without echoing the value. Pure."""

from __future__ import annotations

import random

import pytest

from jicofo.sim.bridge_answer import stat_text, stats_element
from jicofo.sim.bridge_engine import BridgeEngine, BridgeIdentity
from jicofo.sim.bridge_request import ConferenceRequest, RequestError, read_request
from jicofo.xmlns import colibri2 as c2
from jicofo.xmlns.colibri_stats import BridgeStats
from jicofo.xmlns.ice_udp import Candidate, Fingerprint, IceUdpTransport
from jicofo.xmlns.ssma import SourceElement, SsrcGroupElement
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.xml import parse_fragment, serialize

MEETING = "5c1b7a3e-0000-4000-8000-000000000001"


def through_the_wire(request: c2.ConferenceModify) -> ConferenceRequest:
    return read_request(parse_fragment(serialize(request.to_element())))


def test_what_the_focus_writes_is_read_back() -> None:
    candidate = Candidate(1, "1", 0, "1", "192.168.1.20", 53001, 2122260223, "udp", "host")
    ice = IceUdpTransport(ufrag="Kp2w", pwd="hT8vQ1zR4nB7mC0xL3sD9fGj", rtcp_mux=True,
                          fingerprints=(Fingerprint("sha-256", "B4:0D", "active"),), candidates=(candidate,))
    video = c2.MediaSource("video", "a1-v0", (SourceElement(11, "a1-v0"), SourceElement(12, "a1-v0")),
                           (SsrcGroupElement("FID", (11, 12)),))
    endpoint = c2.Endpoint(
        "a1", create=True, stats_id="a1-s", muc_role="visitor", medias=(c2.Media("audio"), c2.Media("video")),
        transport=c2.Transport(ice=ice, sctp=c2.Sctp(), ice_controlling=True), sources=c2.Sources((video,)),
        force_mute=c2.ForceMute(audio=True), capabilities=("source-names",), initial_last_n=20,
    )
    connect = c2.Connect(url="wss://t.example/x", type="transcriber", audio=True, create=True, id="c1")
    read = through_the_wire(c2.ConferenceModify(
        MEETING, name="room@conference.meet.test", create=True, rtcstats_enabled=False,
        endpoints=(endpoint,), connects=(connect,)))
    assert (read.meeting_id, read.name, read.create, read.rtcstats_enabled) == (
        MEETING, "room@conference.meet.test", True, False)
    (ep,) = read.endpoints
    assert (ep.id, ep.create, ep.stats_id, ep.visitor) == ("a1", True, "a1-s", True)
    assert ep.medias == ("audio", "video")
    assert ep.capabilities == ("source-names",) and ep.initial_last_n == 20 and ep.force_mute == (True, False)
    assert ep.transport is not None and ep.transport.ice_controlling and ep.transport.sctp is not None
    assert ep.transport.ice is not None
    assert (ep.transport.ice.ufrag, ep.transport.ice.fingerprint_setups) == ("Kp2w", ("active",))
    assert [(c.ip, c.port) for c in ep.transport.ice.candidates] == [("192.168.1.20", 53001)]
    assert ep.sources is not None
    (named,) = ep.sources
    assert (named.type, named.id, named.ssrcs) == ("video", "a1-v0", (11, 12))
    assert [(g.semantics, g.ssrcs) for g in named.groups] == [("FID", (11, 12))]
    (read_connect,) = read.connects
    assert (read_connect.key, read_connect.type, read_connect.audio, read_connect.create) == (
        "c1", "transcriber", True, True)


@pytest.mark.parametrize("xml", [
    "<conference-modify xmlns='jitsi:colibri2' meeting-id='m' create='SECRETSECRET'/>",
    "<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='a'><sources>"
    "<media-source type='audio' id='a-a0'>"
    "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='SECRETSECRET'/>"
    "</media-source></sources></endpoint></conference-modify>",
    "<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='a'><media type='SECRETSECRET'/>"
    "</endpoint></conference-modify>",
    "<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='a'><media type='audio'>"
    "<payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='SECRETSECRET' name='opus'/></media>"
    "</endpoint></conference-modify>",
    "<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='a'><sources>"
    "<media-source type='audio' id='x'/><media-source type='audio' id='x'/></sources></endpoint>"
    "</conference-modify>",
])
def test_what_cannot_be_read_is_a_bad_request_that_does_not_echo_the_value(xml: str) -> None:
    with pytest.raises(RequestError) as info:
        read_request(parse_fragment(xml))
    assert "SECRET" not in str(info.value)
    engine = BridgeEngine(BridgeIdentity("jvb-sim-1"), rng=random.Random(1))
    with pytest.raises(StanzaError) as refusal:
        engine.handle_conference_modify(parse_fragment(xml), "focus@auth.meet.test/focus")
    assert refusal.value.condition == "bad-request" and "SECRET" not in (refusal.value.text or "")


@pytest.mark.parametrize(("value", "java"), [
    (0.0, "0.0"), (1.0, "1.0"), (0.1234, "0.1234"), (1.0e-4, "1.0E-4"), (12345678.0, "1.2345678E7"),
    (9999999.0, "9999999.0"), (0.001, "0.001"), (True, "true"), (42, "42"), (-2.5e-10, "-2.5E-10"),
])
def test_stats_values_are_written_as_the_java_bridge_writes_them(value: object, java: str) -> None:
    assert stat_text(value) == java


def test_the_focus_reads_the_stats_the_simulator_writes() -> None:
    engine = BridgeEngine(BridgeIdentity("jvb-sim-1", region="eu", relay_id="r1"), rng=random.Random(1))
    engine.handle_conference_modify(c2.ConferenceModify(
        MEETING, name="room@conference.meet.test", create=True, endpoints=(c2.Endpoint(
            "a1", create=True, transport=c2.Transport(), capabilities=("source-names",)),)).to_element(),
        "focus@auth.meet.test/focus")
    stats = engine.stats()
    read = BridgeStats.from_element(parse_fragment(serialize(stats_element(stats.items()))))
    assert read == stats and read.participants == 1 and read.region == "eu"
