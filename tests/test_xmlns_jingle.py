# ruff: noqa: E501  (the examples are copied verbatim from the reference)
"""Jingle typed elements: the examples of docs/jicofo.md §7.4-§7.9 through from_element /
to_element, and malformed input refused."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

import pytest

from jicofo.model.sources import MediaType, Semantics, SsrcGroup
from jicofo.model.sources_jingle import sources_from_contents
from jicofo.xmlns.jingle import (
    JINGLE,
    Action,
    BridgeSession,
    JingleIQ,
    Reason,
    StartMuted,
)
from jicofo.xmpp.xml import parse_fragment, serialize

# --- Examples copied from the reference behind docs/jicofo.md §7 (comments are stripped before parsing; two
# placeholders that are not XML, `<source … ssrc="52" …/>` and `<candidate …/>`, are written out,
# or dropped, and the sid "<Bob's sid>" is spelled bob-sid).

SESSION_INITIATE_7_4 = """\
<iq type="set" id="si1" from="focus@auth.meet.example.com/focus" to="myroom@conference.meet.example.com/ab12cd34">
 <jingle xmlns="urn:xmpp:jingle:1" action="session-initiate"
         initiator="focus@auth.meet.example.com/focus" sid="1vtq8dve5n1ga">
  <content creator="initiator" name="audio" senders="both">
   <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio" maxptime="60">
    <payload-type id="111" name="opus" clockrate="48000" channels="2">
      <parameter name="minptime" value="10"/>
      <parameter name="useinbandfec" value="1"/>
      <rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="transport-cc"/>
    </payload-type>
    <payload-type id="126" name="telephone-event" clockrate="8000"/>
    <rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="1" uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"/>
    <rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="10" uri="urn:ietf:params:rtp-hdrext:sdes:mid"/>
    <rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="5" uri="http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"/>
    <extmap-allow-mixed xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"/>
    <!-- bridge feedback source (owner jvb) -->
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1001" name="jvb-a0">
      <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="jvb"/>
      <parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="mixedmslabel mixedlabelaudio0"/>
    </source>
    <!-- Bob's audio (omitted entirely if Alice uses SSRC rewriting) -->
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="4101" name="ef56gh78-a0">
      <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="ef56gh78"/>
      <parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="b-stream b-track-a"/>
    </source>
    <rtcp-mux/>
   </description>
   <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="3d4h61iagoumno" pwd="4cf6…">
    <fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">AC:58:2D:…:8E</fingerprint>
    <candidate component="1" foundation="1" generation="0" id="6a2c…" network="0" protocol="udp"
               ip="203.0.113.10" port="10000" priority="2130706431" type="host"/>
    <candidate component="1" foundation="2" generation="0" id="6a2d…" network="0" protocol="udp"
               ip="198.51.100.7" port="10000" priority="1694498815" type="srflx" rel-addr="10.0.0.5" rel-port="10000"/>
    <web-socket xmlns="http://jitsi.org/protocol/colibri" url="wss://meet.example.com/colibri-ws/jvb1/5b1c…/ab12cd34?pwd=…"/>
    <rtcp-mux/>
   </transport>
  </content>
  <content creator="initiator" name="video" senders="both">
   <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
    <payload-type id="41" name="AV1" clockrate="90000">
      <rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="ccm" subtype="fir"/>
      <rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="nack"/>
      <rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="nack" subtype="pli"/>
      <rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="transport-cc"/>
    </payload-type>
    <payload-type id="100" name="VP8" clockrate="90000"><!-- same rtcp-fb --></payload-type>
    <payload-type id="107" name="H264" clockrate="90000">
      <parameter name="profile-level-id" value="42e01f;level-asymmetry-allowed=1;packetization-mode=1;"/><!-- + rtcp-fb --></payload-type>
    <payload-type id="101" name="VP9" clockrate="90000"><!-- same rtcp-fb --></payload-type>
    <payload-type id="42" name="rtx" clockrate="90000"><parameter name="apt" value="41"/><!-- ccm fir, nack, nack pli --></payload-type>
    <payload-type id="96" name="rtx" clockrate="90000"><parameter name="apt" value="100"/></payload-type>
    <payload-type id="97" name="rtx" clockrate="90000"><parameter name="apt" value="101"/></payload-type>
    <payload-type id="99" name="rtx" clockrate="90000"><parameter name="apt" value="107"/></payload-type>
    <rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="11" uri="https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"/>
    <rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="10" uri="urn:ietf:params:rtp-hdrext:sdes:mid"/>
    <rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="3" uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"/>
    <rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="5" uri="http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"/>
    <extmap-allow-mixed xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"/>
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="2001" name="jvb-v0">
      <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="jvb"/>
      <parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="mixedmslabel mixedlabelvideo0"/>
    </source>
    <!-- Bob's camera after simulcast stripping: first SIM layer + its RTX -->
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="4201" name="ef56gh78-v0" videoType="camera">
      <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="ef56gh78"/>
      <parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="b-stream b-track-v"/></source>
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="4202" name="ef56gh78-v0" videoType="camera">
      <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="ef56gh78"/>
      <parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="b-stream b-track-v"/></source>
    <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID">
      <source ssrc="4201"/><source ssrc="4202"/></ssrc-group>
    <rtcp-mux/>
   </description>
   <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="3d4h61iagoumno" pwd="4cf6…"><!-- identical copy --></transport>
  </content>
  <content creator="initiator" name="data" senders="both">
   <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="application"/>
   <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="3d4h61iagoumno" pwd="4cf6…">
    <!-- identical copy, plus: -->
    <sctpmap xmlns="urn:xmpp:jingle:transports:dtls-sctp:1" number="5000" protocol="webrtc-datachannel" streams="1024"/>
   </transport>
  </content>
  <group xmlns="urn:xmpp:jingle:apps:grouping:0" semantics="BUNDLE">
   <content name="audio"/><content name="video"/><content name="data"/></group>
  <startmuted xmlns="http://jitsi.org/jitmeet/start-muted" audio="true" video="false"/>
  <bridge-session xmlns="http://jitsi.org/protocol/focus" id="f0b4d8d2-6e1e-4c7a-9c39-0f1c1c0f5a11" region="us-east-1"/>
 </jingle>
</iq>
"""

JSON_MESSAGE_7_4 = """\
<json-message xmlns="http://jitsi.org/jitmeet">{"sources":{"jvb":[[{"s":2001,"n":"jvb-v0","m":"mixedmslabel mixedlabelvideo0"}],[],[{"s":1001,"n":"jvb-a0","m":"mixedmslabel mixedlabelaudio0"}]],"ef56gh78":[[{"s":4201,"n":"ef56gh78-v0","m":"b-stream b-track-v"},{"s":4202,"n":"ef56gh78-v0","m":"b-stream b-track-v"}],[["f",4201,4202]],[{"s":4101,"n":"ef56gh78-a0","m":"b-stream b-track-a"}]]}}</json-message>
"""

SESSION_ACCEPT_7_5 = """\
<iq type="set" id="sa1" from="myroom@conference.meet.example.com/ab12cd34" to="focus@auth.meet.example.com/focus">
 <jingle xmlns="urn:xmpp:jingle:1" action="session-accept" sid="1vtq8dve5n1ga"
         responder="myroom@conference.meet.example.com/ab12cd34">
  <content creator="initiator" name="audio" senders="both">
   <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">
    <payload-type id="111" name="opus" clockrate="48000" channels="2"/>
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="3101" name="ab12cd34-a0">
      <parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="a-stream a-track-a"/></source>
    <rtcp-mux/>
   </description>
   <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="Ab1c" pwd="Qx9…">
    <fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="active">12:9F:…</fingerprint>
    <rtcp-mux/>
   </transport>
  </content>
  <content creator="initiator" name="video" senders="both">
   <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
    <payload-type id="41" name="AV1" clockrate="90000"/>
    <!-- simulcast: 3 layers + 3 RTX, all with the same msid -->
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="11" name="ab12cd34-v0" videoType="camera">
      <parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="a-stream a-track-v"/></source>
    <!-- … ssrc 12, 13, 21, 22, 23 likewise … -->
    <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="SIM"><source ssrc="11"/><source ssrc="12"/><source ssrc="13"/></ssrc-group>
    <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="11"/><source ssrc="21"/></ssrc-group>
    <!-- FID 12/22, FID 13/23 -->
   </description>
   <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="Ab1c" pwd="Qx9…"><!-- same --></transport>
   <initial-last-n xmlns="jitsi:colibri2" value="20"/>
  </content>
  <content creator="initiator" name="data" senders="both"><!-- transport only --></content>
 </jingle>
</iq>
"""

SOURCE_ADD_FROM_CLIENT_7_6 = """\
<iq type="set" id="sadd1" from="myroom@conference.meet.example.com/ab12cd34" to="focus@auth.meet.example.com/focus">
 <jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="1vtq8dve5n1ga">
  <content name="video">
   <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="51" name="ab12cd34-v1" videoType="desktop">
      <parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="ss-stream ss-track"/></source>
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="52" name="ab12cd34-v1" videoType="desktop">
      <parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="ss-stream ss-track"/></source>
    <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="51"/><source ssrc="52"/></ssrc-group>
   </description>
  </content>
 </jingle>
</iq>
"""

SOURCE_ADD_TO_OTHERS_7_6 = """\
<iq type="set" id="x9" from="focus@auth.meet.example.com/focus" to="myroom@conference.meet.example.com/ef56gh78">
 <jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="bob-sid">
  <content name="video">
   <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="51" name="ab12cd34-v1" videoType="desktop">
      <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="ab12cd34"/>
      <parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="ss-stream ss-track"/></source>
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="52" name="ab12cd34-v1" videoType="desktop">
      <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="ab12cd34"/>
      <parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="ss-stream ss-track"/></source>
    <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="51"/><source ssrc="52"/></ssrc-group>
   </description>
  </content>
 </jingle>
</iq>
"""

TRANSPORT_INFO_7_7 = """\
<iq type="set" from="focus@auth.meet.example.com/focus" to="myroom@conference.meet.example.com/ab12cd34">
 <jingle xmlns="urn:xmpp:jingle:1" action="transport-info" sid="1vtq8dve5n1ga">
  <content creator="initiator" name="audio">
   <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="new1ufrag" pwd="newpwd…" ice-generation="1">
    <fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">AC:58:…</fingerprint>
    <web-socket xmlns="http://jitsi.org/protocol/colibri" url="wss://…"/><rtcp-mux/>
   </transport>
  </content>
 </jingle>
</iq>
"""

ICE_FAILED_7_8 = """\
<jingle xmlns="urn:xmpp:jingle:1" action="session-info" sid="1vtq8dve5n1ga">
  <ice-state xmlns="http://jitsi.org/protocol/focus">failed</ice-state>
  <bridge-session xmlns="http://jitsi.org/protocol/focus" id="f0b4d8d2-…"/>
</jingle>
"""

ICE_RESTART_REQUEST_7_8 = """\
<jingle xmlns="urn:xmpp:jingle:1" action="session-info" sid="1vtq8dve5n1ga">
  <bridge-session xmlns="http://jitsi.org/protocol/focus" id="f0b4d8d2-…" ice-restart="true"/>
</jingle>
"""

TERMINATE_RESTART_7_9 = """\
<jingle xmlns="urn:xmpp:jingle:1" action="session-terminate" sid="1vtq8dve5n1ga">
  <reason><success/></reason>
  <bridge-session xmlns="http://jitsi.org/protocol/focus" id="f0b4d8d2-…" restart="true"/>
</jingle>
"""

TERMINATE_BY_FOCUS_7_9 = """\
<iq type="set" from="focus@auth.meet.example.com/focus" to="myroom@conference.meet.example.com/ab12cd34">
  <jingle xmlns="urn:xmpp:jingle:1" action="session-terminate" sid="1vtq8dve5n1ga">
    <reason><expired/><text>Idle session timeout</text></reason></jingle></iq>
<!-- re-invite: <reason><success/><text>moving</text></reason>;  failure: <reason><general-error/><text>jingle session failed</text></reason> -->
"""


def jingle_of(text: str) -> Element:
    root = parse_fragment(re.sub(r"<!--.*?-->", "", text, flags=re.S))
    return root if root.tag == JINGLE else next(child for child in root if child.tag == JINGLE)


def round_trip(text: str) -> JingleIQ:
    """Parse, build, parse again: the typed value survives and the built XML is stable."""
    parsed = JingleIQ.from_element(jingle_of(text))
    built = parsed.to_element()
    again = JingleIQ.from_element(parse_fragment(serialize(built)))
    assert again == parsed
    assert serialize(again.to_element()) == serialize(built)
    return parsed


def test_session_initiate() -> None:
    jingle = round_trip(SESSION_INITIATE_7_4)
    assert jingle.action is Action.SESSION_INITIATE
    assert jingle.sid == "1vtq8dve5n1ga" and jingle.initiator == "focus@auth.meet.example.com/focus"
    assert [c.name for c in jingle.contents] == ["audio", "video", "data"]
    assert jingle.bundle is not None and jingle.bundle.contents == ("audio", "video", "data")
    assert jingle.bridge_session == BridgeSession("f0b4d8d2-6e1e-4c7a-9c39-0f1c1c0f5a11", "us-east-1")
    assert jingle.start_muted == StartMuted(audio=True, video=False)
    audio = jingle.contents[0]
    assert audio.description is not None and audio.description.maxptime == 60
    opus = audio.description.payload_types[0]
    assert (opus.id, opus.name, opus.clockrate, opus.channels) == (111, "opus", 48000, 2)
    assert opus.parameter("useinbandfec") == "1" and opus.rtcp_fbs[0].type == "transport-cc"
    assert [h.id for h in audio.description.header_extensions] == [1, 10, 5]
    assert audio.description.extmap_allow_mixed and audio.description.rtcp_mux
    assert [(s.ssrc, s.owner, s.msid) for s in audio.description.sources] == [
        (1001, "jvb", "mixedmslabel mixedlabelaudio0"),
        (4101, "ef56gh78", "b-stream b-track-a"),
    ]
    transport = audio.transport
    assert transport is not None and transport.ufrag == "3d4h61iagoumno" and transport.rtcp_mux
    assert transport.fingerprints[0].setup == "actpass" and transport.fingerprints[0].hash == "sha-256"
    assert [c.type for c in transport.candidates] == ["host", "srflx"]
    assert transport.candidates[1].rel_port == 10000
    assert transport.web_sockets[0].startswith("wss://meet.example.com/colibri-ws/")
    video = jingle.contents[1].description
    assert video is not None
    h264 = next(p for p in video.payload_types if p.name == "H264")
    assert h264.parameter("profile-level-id") == "42e01f;level-asymmetry-allowed=1;packetization-mode=1;"
    assert [(g.semantics, g.ssrcs) for g in video.ssrc_groups] == [("FID", (4201, 4202))]
    assert [s.video_type for s in video.sources] == [None, "camera", "camera"]
    data = jingle.contents[2]
    assert data.description is not None and data.description.media == "application"
    assert data.transport is not None and data.transport.sctpmap is not None
    assert (data.transport.sctpmap.number, data.transport.sctpmap.streams) == (5000, 1024)


def test_session_initiate_json_variant() -> None:
    json_el = parse_fragment(JSON_MESSAGE_7_4)
    jingle = jingle_of(SESSION_INITIATE_7_4)
    jingle.append(json_el)
    parsed = round_trip(serialize(jingle))
    assert parsed.json_message is not None and parsed.json_message.startswith('{"sources":{"jvb"')


def test_transport_replace_has_the_same_body() -> None:
    text = SESSION_INITIATE_7_4.replace('action="session-initiate"', 'action="transport-replace"')
    assert round_trip(text).action is Action.TRANSPORT_REPLACE


def test_session_accept() -> None:
    jingle = round_trip(SESSION_ACCEPT_7_5)
    assert jingle.action is Action.SESSION_ACCEPT
    assert jingle.responder == "myroom@conference.meet.example.com/ab12cd34"
    video = jingle.content("video")
    assert video is not None and video.initial_last_n == 20
    assert jingle.contents[0].transport is not None
    assert jingle.contents[0].transport.fingerprints[0].setup == "active"
    sources = sources_from_contents(jingle.contents)
    assert {s.ssrc for s in sources.sources} == {3101, 11}
    assert SsrcGroup(Semantics.SIM, (11, 12, 13), MediaType.VIDEO) in sources.groups


def test_source_add_both_directions() -> None:
    from_client = round_trip(SOURCE_ADD_FROM_CLIENT_7_6)
    assert from_client.action is Action.SOURCE_ADD
    [content] = from_client.contents
    assert content.creator is None and content.description is not None
    assert [s.video_type for s in content.description.sources] == ["desktop", "desktop"]
    to_others = round_trip(SOURCE_ADD_TO_OTHERS_7_6)
    description = to_others.contents[0].description
    assert description is not None and {s.owner for s in description.sources} == {"ab12cd34"}


def test_legacy_source_actions_are_read_as_current() -> None:
    text = SOURCE_ADD_FROM_CLIENT_7_6.replace('action="source-add"', 'action="addsource"')
    assert JingleIQ.from_element(jingle_of(text)).action is Action.SOURCE_ADD
    text = SOURCE_ADD_FROM_CLIENT_7_6.replace('action="source-add"', 'action="removesource"')
    assert JingleIQ.from_element(jingle_of(text)).action is Action.SOURCE_REMOVE


def test_transport_info_with_ice_generation() -> None:
    jingle = round_trip(TRANSPORT_INFO_7_7)
    transport = jingle.contents[0].transport
    assert jingle.action is Action.TRANSPORT_INFO
    assert transport is not None and transport.ice_generation == 1 and transport.ufrag == "new1ufrag"


def test_session_info() -> None:
    failed = round_trip(ICE_FAILED_7_8)
    assert failed.action is Action.SESSION_INFO and failed.ice_state == "failed"
    assert failed.bridge_session is not None and failed.bridge_session.ice_restart is None
    restart = round_trip(ICE_RESTART_REQUEST_7_8)
    assert restart.bridge_session is not None and restart.bridge_session.ice_restart is True


def test_session_terminate() -> None:
    by_client = round_trip(TERMINATE_RESTART_7_9)
    assert by_client.reason == Reason("success")
    assert by_client.bridge_session is not None and by_client.bridge_session.restart is True
    by_focus = round_trip(TERMINATE_BY_FOCUS_7_9)
    assert by_focus.reason == Reason("expired", "Idle session timeout")


def test_built_reason_matches_the_wire_shape() -> None:
    built = serialize(Reason("general-error", "jingle session failed").to_element())
    assert built == (
        '<reason xmlns="urn:xmpp:jingle:1"><general-error/><text>jingle session failed</text></reason>'
    )


J = 'xmlns="urn:xmpp:jingle:1"'
RTP = 'xmlns="urn:xmpp:jingle:apps:rtp:1"'
SSMA = 'xmlns="urn:xmpp:jingle:apps:rtp:ssma:0"'


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (f'<jingle {J} sid="s"/>', "'action'"),
        (f'<jingle {J} action="source-add"/>', "'sid'"),
        (f'<jingle {J} action="dance" sid="s"/>', "unknown Jingle action"),
        (f'<jingle {J} action="source-add" sid="s"><content/></jingle>', "'name'"),
        (f'<jingle {J} action="source-add" sid="s"><content name="a"/><content name="a"/></jingle>',
         "share a name"),
        (f'<jingle {J} action="source-add" sid="s"><content name="a" creator="me"/></jingle>', "creator"),
        (f'<jingle {J} action="source-add" sid="s"><content name="a" senders="all"/></jingle>', "senders"),
        (f'<jingle {J} action="source-add" sid="s"><content name="v"><description {RTP}>'
         f'<source {SSMA} ssrc="x"/></description></content></jingle>', "not an integer"),
        (f'<jingle {J} action="source-add" sid="s"><content name="v"><description {RTP}>'
         f'<source {SSMA} ssrc="4294967296"/></description></content></jingle>', "out of range"),
        (f'<jingle {J} action="source-add" sid="s"><content name="v"><description {RTP}>'
         f'<source {SSMA}/></description></content></jingle>', "'ssrc'"),
        (f'<jingle {J} action="session-accept" sid="s"><content name="v"><description {RTP}>'
         f'<payload-type id="300"/></description></content></jingle>', "out of range"),
        (f'<jingle {J} action="session-accept" sid="s"><content name="v"><description {RTP}>'
         f'<payload-type name="opus"/></description></content></jingle>', "'id'"),
        (f'<jingle {J} action="session-accept" sid="s"><content name="v">'
         '<transport xmlns="urn:xmpp:jingle:transports:raw-udp:1"/></content></jingle>', "ICE-UDP"),
        (f'<jingle {J} action="session-terminate" sid="s"><reason/></jingle>', "exactly one"),
        (f'<jingle {J} action="session-terminate" sid="s"><reason><nope/></reason></jingle>',
         "unknown Jingle reason"),
        (f'<jingle {J} action="session-terminate" sid="s">'
         '<bridge-session xmlns="http://jitsi.org/protocol/focus" restart="true"/></jingle>', "'id'"),
        (f'<jingle {J} action="session-terminate" sid="s">'
         '<bridge-session xmlns="http://jitsi.org/protocol/focus" id="b" restart="maybe"/></jingle>',
         "not a boolean"),
        (f'<jingle {J} action="session-accept" sid="s"><content name="v">'
         '<transport xmlns="urn:xmpp:jingle:transports:ice-udp:1"><candidate component="1"/>'
         '</transport></content></jingle>', "lacks"),
        ('<jingle xmlns="urn:xmpp:jingle:0" action="source-add" sid="s"/>', "expected"),
    ],
)
def test_malformed_refused(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        JingleIQ.from_element(parse_fragment(text))


# --- §7.1 conference request and §7.3 presence (conference_iq.py, presence_ext.py) ------------

CONFERENCE_REQUEST_7_1 = """\
<conference xmlns="http://jitsi.org/protocol/focus"
            room="myroom@conference.meet.example.com" machine-uid="9bd2e6fd0c6793e0">
  <property name="rtcstatsEnabled" value="true"/>
  <property name="visitors-version" value="1"/>
  <property name="startAudioMuted" value="10"/>
</conference>"""

CONFERENCE_ANSWER_7_1 = """\
<conference xmlns="http://jitsi.org/protocol/focus"
            room="myroom@conference.meet.example.com"
            focusjid="focus@auth.meet.example.com" ready="true">
  <property name="authentication" value="false"/>
  <property name="sipGatewayEnabled" value="true"/>
  <property name="visitors-supported" value="false"/>
</conference>"""

FOCUS_PRESENCE_7_3 = """\
<presence xmlns="jabber:client" to="myroom@conference.meet.example.com/focus">
  <etherpad xmlns="http://jitsi.org/jitmeet/etherpad">myroom</etherpad>
  <versions xmlns="http://jitsi.org/jitmeet"><component name="focus">1.0-1234-gabcdef1</component></versions>
  <conference-properties xmlns="http://jitsi.org/protocol/focus">
    <property key="support-terminate-restart" value="true"/>
    <property key="bridge-count" value="1"/>
  </conference-properties>
  <bridgeNotAvailable xmlns="http://jitsi.org/protocol/focus"/>
</presence>"""

MEMBER_PRESENCE_7_3 = """\
<presence xmlns="jabber:client" from="myroom@conference.meet.example.com/ab12cd34" to="focus@auth.meet.example.com/focus">
  <x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="owner" role="moderator" jid="zxq7abc@meet.example.com/web-3f2a"/></x>
  <c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="https://jitsi.org/jitsi-meet" ver="k3Ja…="/>
  <stats-id>Alice-x1</stats-id>
  <jitsi_participant_region>us-east-1</jitsi_participant_region>
  <jitsi_participant_codecList>av1,vp9,vp8,h264</jitsi_participant_codecList>
  <SourceInfo>{"ab12cd34-a0":{"muted":false},"ab12cd34-v0":{"muted":true,"videoType":"camera"}}</SourceInfo>
  <features><feature var="http://jitsi.org/protocol/jibri"/></features>
</presence>"""


def test_conference_request_and_answer() -> None:
    from jicofo.xmlns.conference_iq import ConferenceAnswer, ConferenceRequest

    request = ConferenceRequest.from_element(parse_fragment(CONFERENCE_REQUEST_7_1))
    assert request.room == "myroom@conference.meet.example.com" and request.machine_uid == "9bd2e6fd0c6793e0"
    assert request.properties["visitors-version"] == "1" and request.property_is_true("rtcstatsEnabled")
    assert ConferenceRequest.from_element(request.to_element()) == request
    answer = ConferenceAnswer.from_element(parse_fragment(CONFERENCE_ANSWER_7_1))
    assert answer.ready and answer.focus_jid == "focus@auth.meet.example.com"
    assert ConferenceAnswer.from_element(answer.to_element()) == answer
    assert answer.to_json()["focusJid"] == "focus@auth.meet.example.com"
    http = ConferenceRequest.from_json({"room": "r@c", "properties": {"visitors-version": "1"}}, token="jwt")
    assert http.token == "jwt" and http.properties == {"visitors-version": "1"}
    with pytest.raises(ValueError, match="No 'room' specified."):
        ConferenceRequest.from_element(parse_fragment('<conference xmlns="http://jitsi.org/protocol/focus"/>'))
    with pytest.raises(ValueError, match="ready"):
        ConferenceAnswer.from_element(parse_fragment(
            '<conference xmlns="http://jitsi.org/protocol/focus" room="r" ready="yes"/>'))


def test_focus_presence_extensions() -> None:
    from jicofo.xmlns.presence_ext import (
        BRIDGE_NOT_AVAILABLE,
        ConferenceProperties,
        Versions,
        bridge_not_available,
        etherpad,
    )

    presence = parse_fragment(re.sub(r">\s+<", "><", FOCUS_PRESENCE_7_3))
    versions = Versions.from_element(presence[1])
    assert versions.components == {"focus": "1.0-1234-gabcdef1"}
    properties = ConferenceProperties.from_element(presence[2])
    assert properties.properties == {"support-terminate-restart": "true", "bridge-count": "1"}
    assert presence[3].tag == BRIDGE_NOT_AVAILABLE
    rebuilt = [etherpad("myroom"), versions.to_element(), properties.to_element(), bridge_not_available()]
    assert [serialize(e) for e in rebuilt] == [serialize(e) for e in presence]
    with pytest.raises(ValueError):
        ConferenceProperties.from_element(parse_fragment(
            '<conference-properties xmlns="http://jitsi.org/protocol/focus"><property value="1"/>'
            "</conference-properties>"))


def test_member_presence() -> None:
    from jicofo.xmlns.presence_ext import MemberPresence

    member = MemberPresence.from_element(parse_fragment(MEMBER_PRESENCE_7_3))
    assert member.stats_id == "Alice-x1" and member.region == "us-east-1"
    assert member.video_codecs == ("av1", "vp9", "vp8", "h264")
    assert member.caps is not None and member.caps.node == "https://jitsi.org/jitsi-meet"
    assert member.features == {"http://jitsi.org/protocol/jibri"}
    assert not member.audio_muted and member.video_muted
    assert member.source_info is not None and member.source_info["ab12cd34-v0"].video_type == "camera"
    legacy = MemberPresence.from_element(parse_fragment(
        '<presence xmlns="jabber:client"><audiomuted>false</audiomuted><SourceInfo>{bad</SourceInfo>'
        "<jitsi_participant_codecType>vp9</jitsi_participant_codecType>"
        '<nick xmlns="http://jabber.org/protocol/nick">Alice</nick></presence>'))
    assert legacy.source_info is None and not legacy.audio_muted and legacy.video_muted
    assert legacy.video_codecs == ("vp9", "vp8") and legacy.nick == "Alice"
