"""The session-initiate offer: configured codecs, BUNDLE, the bridge's transport, the others'
sources, and the variants (audio only, no SCTP, JSON sources, feature-dependent feedback)."""

from __future__ import annotations

from jicofo.conference.offer import (
    URI_TCC,
    OfferConfig,
    OfferOptions,
    build_offer,
)
from jicofo.config.load import load_config
from jicofo.model.sources import (
    BRIDGE_OWNER,
    ConferenceSourceMap,
    EndpointSourceSet,
    MediaType,
    Semantics,
    Source,
    SsrcGroup,
)
from jicofo.model.sources_json import decode_json
from jicofo.xmlns.ice_udp import Candidate, Fingerprint, IceUdpTransport
from jicofo.xmlns.jingle import Action, BridgeSession, JingleIQ, StartMuted
from jicofo.xmpp.xml import parse_fragment, serialize

A, V = MediaType.AUDIO, MediaType.VIDEO

BRIDGE_TRANSPORT = IceUdpTransport(
    ufrag="3d4h61iagoumno",
    pwd="4cf6pwd",
    fingerprints=(Fingerprint("sha-256", "AC:58:2D:8E", "actpass"),),
    candidates=(
        Candidate(1, "1", 0, "c1", "203.0.113.10", 10000, 2130706431, "udp", "host", network=0),
    ),
    web_sockets=("wss://meet.example.com/colibri-ws/jvb1/x/ab12cd34?pwd=p",),
)

SOURCES = ConferenceSourceMap(
    {
        BRIDGE_OWNER: EndpointSourceSet(
            (
                Source(1001, A, "jvb-a0", "mixedmslabel mixedlabelaudio0"),
                Source(2001, V, "jvb-v0", "mixedmslabel mixedlabelvideo0"),
            )
        ),
        "ef56gh78": EndpointSourceSet(
            (
                Source(4101, A, "ef56gh78-a0", "b-stream b-track-a"),
                Source(4201, V, "ef56gh78-v0", "b-stream b-track-v", "camera"),
                Source(4202, V, "ef56gh78-v0", "b-stream b-track-v", "camera"),
            ),
            (SsrcGroup(Semantics.FID, (4201, 4202), V),),
        ),
    }
)

ALL_FEATURES = OfferOptions(audio=True, video=True, sctp=True, rtx=True, tcc=True)


def offer(options: OfferOptions = ALL_FEATURES, config: OfferConfig | None = None) -> JingleIQ:
    jingle = build_offer(
        config or OfferConfig(),
        options,
        BRIDGE_TRANSPORT,
        SOURCES,
        sid="1vtq8dve5n1ga",
        initiator="focus@auth.meet.example.com/focus",
        bridge_session=BridgeSession("f0b4", "us-east-1"),
        start_muted=StartMuted(audio=True),
    )
    # Everything built must survive the wire.
    assert JingleIQ.from_element(parse_fragment(serialize(jingle.to_element()))) == jingle
    return jingle


def test_full_offer() -> None:
    jingle = offer()
    assert jingle.action is Action.SESSION_INITIATE and jingle.sid == "1vtq8dve5n1ga"
    assert [c.name for c in jingle.contents] == ["audio", "video", "data"]
    assert all(c.creator == "initiator" and c.senders == "both" for c in jingle.contents)
    assert jingle.bundle is not None and jingle.bundle.contents == ("audio", "video", "data")
    assert jingle.bridge_session == BridgeSession("f0b4", "us-east-1")
    assert jingle.start_muted == StartMuted(audio=True, video=False)

    audio, video, data = (c.description for c in jingle.contents)
    assert audio is not None and video is not None and data is not None
    assert [(p.id, p.name) for p in audio.payload_types] == [(111, "opus"), (126, "telephone-event")]
    assert audio.maxptime == 60 and audio.rtcp_mux and audio.extmap_allow_mixed
    assert [h.id for h in audio.header_extensions] == [1, 10, 5]
    assert [(p.id, p.name) for p in video.payload_types] == [
        (41, "AV1"), (100, "VP8"), (107, "H264"), (101, "VP9"),
        (42, "rtx"), (96, "rtx"), (97, "rtx"), (99, "rtx"),
    ]
    av1 = video.payload_types[0]
    assert [(f.type, f.subtype) for f in av1.rtcp_fbs] == [
        ("ccm", "fir"), ("nack", None), ("nack", "pli"), ("transport-cc", None)
    ]
    rtx_h264 = video.payload_types[-1]
    assert rtx_h264.parameter("apt") == "107" and rtx_h264.rtcp_fbs == ()
    assert [h.id for h in video.header_extensions] == [11, 10, 3, 5]
    assert data.media == "application" and not data.payload_types

    for content in jingle.contents:
        transport = content.transport
        assert transport is not None and transport.rtcp_mux
        assert transport.ufrag == "3d4h61iagoumno" and transport.pwd == "4cf6pwd"
        assert transport.fingerprints == BRIDGE_TRANSPORT.fingerprints
        assert transport.candidates == BRIDGE_TRANSPORT.candidates
        assert transport.web_sockets == BRIDGE_TRANSPORT.web_sockets
    assert jingle.contents[0].transport is not None and jingle.contents[0].transport.sctpmap is None
    sctp = jingle.contents[2].transport.sctpmap  # type: ignore[union-attr]
    assert sctp is not None
    assert (sctp.number, sctp.protocol, sctp.streams) == (5000, "webrtc-datachannel", 1024)


def test_offer_carries_the_others_sources_as_xml() -> None:
    jingle = offer()
    assert jingle.json_message is None
    audio, video = jingle.contents[0].description, jingle.contents[1].description
    assert audio is not None and video is not None
    assert [(s.ssrc, s.owner) for s in audio.sources] == [(1001, "jvb"), (4101, "ef56gh78")]
    assert [(s.ssrc, s.owner, s.msid) for s in video.sources] == [
        (2001, "jvb", "mixedmslabel mixedlabelvideo0"),
        (4201, "ef56gh78", "b-stream b-track-v"),
        (4202, "ef56gh78", "b-stream b-track-v"),
    ]
    assert [(g.semantics, g.ssrcs) for g in video.ssrc_groups] == [("FID", (4201, 4202))]


def test_json_sources_variant() -> None:
    jingle = offer(OfferOptions(json_sources=True, rtx=True, tcc=True))
    assert all(not c.description.sources for c in jingle.contents if c.description)  # type: ignore[union-attr]
    assert jingle.json_message is not None
    decoded = decode_json(jingle.json_message)
    assert list(decoded) == list(SOURCES)
    for owner, endpoint in SOURCES.items():
        assert [(s.ssrc, s.msid) for s in decoded.get(owner).sources] == [
            (s.ssrc, s.msid) for s in sorted(endpoint.sources, key=lambda s: s.media_type != V)
        ]
        assert decoded.get(owner).groups == endpoint.groups
    assert jingle.json_message.startswith('{"sources":{"jvb":[[{"s":2001,"n":"jvb-v0"')


def test_audio_only_variant() -> None:
    jingle = offer(OfferOptions(audio=True, video=False, sctp=True))
    assert [c.name for c in jingle.contents] == ["audio", "data"]
    assert jingle.bundle is not None and jingle.bundle.contents == ("audio", "data")
    audio = jingle.contents[0].description
    assert audio is not None and {s.ssrc for s in audio.sources} == {1001, 4101}
    as_json = offer(OfferOptions(audio=True, video=False, json_sources=True))
    assert as_json.json_message is not None
    assert all(s.media_type is A for _, e in decode_json(as_json.json_message).items() for s in e.sources)


def test_no_sctp_variant() -> None:
    jingle = offer(OfferOptions(sctp=False))
    assert [c.name for c in jingle.contents] == ["audio", "video"]
    assert all(c.transport is not None and c.transport.sctpmap is None for c in jingle.contents)


def test_feature_dependent_feedback_and_rtx() -> None:
    remb = offer(OfferOptions(tcc=False, remb=True, rtx=False))
    audio, video = remb.contents[0].description, remb.contents[1].description
    assert audio is not None and video is not None
    assert audio.payload_types[0].rtcp_fbs == ()
    assert URI_TCC not in {h.uri for h in audio.header_extensions + video.header_extensions}
    assert ("goog-remb", None) in [(f.type, f.subtype) for f in video.payload_types[0].rtcp_fbs]
    assert all(p.name != "rtx" for p in video.payload_types)
    red = offer(OfferOptions(opus_red=True), OfferConfig(red_pt=112)).contents[0].description
    assert red is not None
    assert [(p.id, p.name) for p in red.payload_types][:2] == [(112, "red"), (111, "opus")]
    assert red.payload_types[0].parameters[0].name is None
    assert red.payload_types[0].parameters[0].value == "111/111"
    assert red.payload_types[1].parameter("useinbandfec") is None


def test_options_from_features() -> None:
    features = {
        "urn:xmpp:jingle:apps:rtp:audio", "urn:xmpp:jingle:apps:rtp:video",
        "urn:xmpp:jingle:transports:dtls-sctp:1", "urn:ietf:rfc:4588", "http://jitsi.org/tcc",
        "http://jitsi.org/remb", "http://jitsi.org/json-encoded-sources",
    }
    options = OfferOptions.from_features(features)
    assert options == OfferOptions(audio=True, video=True, sctp=True, rtx=True, tcc=True, remb=True,
                                   opus_red=False, json_sources=True)
    assert not OfferOptions.from_features(features, sctp_enabled=False).sctp
    bare = OfferOptions.from_features(set())
    assert bare.audio and not bare.video and not bare.sctp and not bare.json_sources


def test_config_from_reference_conf_equals_the_defaults() -> None:
    config = load_config(None, {"jicofo.xmpp.client.domain": "auth.meet.example.com"}, env={})
    assert OfferConfig.from_codec_config(config.codec) == OfferConfig()
