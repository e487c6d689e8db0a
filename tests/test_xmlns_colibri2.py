# ruff: noqa: E501  (the examples are copied verbatim from the reference)
"""Colibri2 typed elements: every worked example of docs/jvb.md §2.7 parsed, rebuilt and
parsed again; requests built the way the focus builds them; errors; malformed input refused."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

import pytest

from jicofo.xmlns.colibri2 import (
    CONFERENCE_MODIFIED,
    CONFERENCE_MODIFY,
    SCTP_PORT,
    Colibri2ErrorInfo,
    Colibri2ParseError,
    Colibri2StanzaError,
    ConferenceModified,
    ConferenceModify,
    Connect,
    Endpoint,
    ErrorReason,
    ForceMute,
    Media,
    MediaSource,
    Relay,
    Sctp,
    Sources,
    Transport,
    colibri2_error,
    colibri2_stanza_error,
)
from jicofo.xmlns.ice_udp import Candidate, Fingerprint, IceUdpTransport
from jicofo.xmlns.jingle import PayloadType, RtpDescription
from jicofo.xmlns.namespaces import NS_COLIBRI2
from jicofo.xmlns.ssma import SourceElement, SsrcGroupElement
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.xml import local_name, parse_fragment, serialize

# --- Examples copied from the reference behind docs/jvb.md §2.7. Comments are stripped before parsing (the
# hardened parser refuses them); blocks with several elements are split on their comments.

A_REQUEST = """\
<iq type='get' id='Xw3k9-41'
    from='jvbbrewery@internal.auth.example.com/focus'
    to='jvbbrewery@internal.auth.example.com/jvb-sim-1'>
  <conference-modify xmlns='jitsi:colibri2' meeting-id='5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23'
                     name='standup@conference.example.com' create='true'>
    <endpoint id='a1b2c3d4' create='true' stats-id='Ana-x7Q'>
      <media type='audio'>
        <payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='111' name='opus' clockrate='48000' channels='2'>
          <parameter name='minptime' value='10'/>
          <parameter name='useinbandfec' value='1'/>
          <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='transport-cc'/>
        </payload-type>
        <payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='126' name='telephone-event' clockrate='8000'/>
        <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='1' uri='urn:ietf:params:rtp-hdrext:ssrc-audio-level'/>
        <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='5' uri='http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01'/>
        <extmap-allow-mixed xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0'/>
      </media>
      <media type='video'>
        <payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='100' name='VP8' clockrate='90000'>
          <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='ccm' subtype='fir'/>
          <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack'/>
          <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack' subtype='pli'/>
          <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='transport-cc'/>
        </payload-type>
        <payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='96' name='rtx' clockrate='90000'>
          <parameter name='apt' value='100'/>
        </payload-type>
        <!-- VP9 101/97, AV1 41/42, H264 107/99 likewise -->
        <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='3' uri='http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time'/>
        <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='5' uri='http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01'/>
        <extmap-allow-mixed xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0'/>
      </media>
      <transport ice-controlling='true'>
        <sctp/>
      </transport>
      <sources/>
      <capability name='source-names'/>
      <capability name='ssrc-rewriting'/>
      <capability name='rtp-mid-demux'/>
    </endpoint>
  </conference-modify>
</iq>
"""

A_ANSWER = """\
<iq type='result' id='Xw3k9-41' to='jvbbrewery@internal.auth.example.com/focus'>
  <conference-modified xmlns='jitsi:colibri2'>
    <endpoint id='a1b2c3d4'>
      <transport>
        <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'
                   pwd='5r0k2m9bq1t7c4v8e6a3dh0lsn' ufrag='3kq9h1jd6v0ot'>
          <rtcp-mux/>
          <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>5E:21:9C:47:0B:D8:3A:F6:12:8E:C0:77:4D:A9:E3:5B:06:92:1F:CB:38:64:AD:F0:19:7C:E5:42:8B:D3:60:AF</fingerprint>
          <web-socket xmlns='http://jitsi.org/protocol/colibri'
                      url='wss://jvb1.example.com:443/colibri-ws/jvb-sim-1/1b7e4c0a9d2f3e65/a1b2c3d4?pwd=Zk3mQ8rT1vXy6bNc2HpL9sWd'/>
          <candidate component='1' foundation='1' generation='0' id='2f9a41c07be35d18ffffffffd02c6e11'
                     network='0' priority='2130706431' protocol='udp' type='host' ip='10.0.0.12' port='10000'/>
          <candidate component='1' foundation='2' generation='0' id='6c0e3b9a27d4f518ffffffffa4917b02'
                     network='0' priority='1694498815' protocol='udp' type='srflx' ip='203.0.113.45' port='10000'
                     rel-addr='10.0.0.12' rel-port='10000'/>
        </transport>
        <sctp port='5000' role='server'/>
      </transport>
    </endpoint>
    <sources>
      <media-source type='audio' id='jvb-a0'>
        <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2876145903' name='jvb-a0'/>
      </media-source>
      <media-source type='video' id='jvb-v0'>
        <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1093847561' name='jvb-v0'/>
      </media-source>
    </sources>
  </conference-modified>
</iq>
"""

B_ANSWER = """\
<iq type='result' id='Xw3k9-47' to='jvbbrewery@internal.auth.example.com/focus'>
  <conference-modified xmlns='jitsi:colibri2'>
    <endpoint id='b5e6f7a8'>
      <transport>
        <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'
                   pwd='1m8c5t0v3q7k2e9r4b6dsa1huj' ufrag='0tq4n1jd6v0p2'>
          <rtcp-mux/>
          <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>5E:21:9C:47:0B:D8:3A:F6:12:8E:C0:77:4D:A9:E3:5B:06:92:1F:CB:38:64:AD:F0:19:7C:E5:42:8B:D3:60:AF</fingerprint>
          <web-socket xmlns='http://jitsi.org/protocol/colibri'
                      url='wss://jvb1.example.com:443/colibri-ws/jvb-sim-1/1b7e4c0a9d2f3e65/b5e6f7a8?pwd=pQ7wR2xL9mKc4VbN8tZs1HyD'/>
          <candidate component='1' foundation='1' generation='0' id='83d1f0a27be35d18ffffffffd02c6e11'
                     network='0' priority='2130706431' protocol='udp' type='host' ip='10.0.0.12' port='10000'/>
          <candidate component='1' foundation='2' generation='0' id='a7c2e94b27d4f518ffffffffa4917b02'
                     network='0' priority='1694498815' protocol='udp' type='srflx' ip='203.0.113.45' port='10000'
                     rel-addr='10.0.0.12' rel-port='10000'/>
        </transport>
        <sctp port='5000' role='server'/>
      </transport>
    </endpoint>
    <sources>
      <!-- the same jvb-a0 / jvb-v0 SSRCs as in (a) -->
    </sources>
  </conference-modified>
</iq>
"""

C_REQUEST = """\
<iq type='get' id='Xw3k9-52' from='jvbbrewery@internal.auth.example.com/focus'
    to='jvbbrewery@internal.auth.example.com/jvb-sim-1'>
  <conference-modify xmlns='jitsi:colibri2' meeting-id='5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23'>
    <endpoint id='a1b2c3d4' stats-id='Ana-x7Q'>
      <transport>
        <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Kp2w' pwd='hT8vQ1zR4nB7mC0xL3sD9fGj'>
          <rtcp-mux/>
          <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>B4:0D:6A:E2:91:3C:F8:27:55:C1:0E:9B:72:AD:14:E6:3F:88:D0:49:A7:2B:C5:61:0A:F3:96:5D:E8:37:BC:42</fingerprint>
          <candidate component='1' foundation='3924516' generation='0' id='1' network='1' priority='2122260223'
                     protocol='udp' type='host' ip='192.168.1.20' port='53001'/>
        </transport>
      </transport>
      <sources>
        <media-source type='audio' id='a1b2c3d4-a0'>
          <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1405362117' name='a1b2c3d4-a0'/>
        </media-source>
        <media-source type='video' id='a1b2c3d4-v0'>
          <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3120076745' name='a1b2c3d4-v0' videoType='camera'/>
          <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='887261093' name='a1b2c3d4-v0' videoType='camera'/>
          <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'>
            <source ssrc='3120076745'/>
            <source ssrc='887261093'/>
          </ssrc-group>
        </media-source>
      </sources>
    </endpoint>
  </conference-modify>
</iq>
"""

C_ANSWER = """\
<iq type='result' id='Xw3k9-52' to='jvbbrewery@internal.auth.example.com/focus'>
  <conference-modified xmlns='jitsi:colibri2'>
    <endpoint id='a1b2c3d4'/>
  </conference-modified>
</iq>
"""

D_REQUEST = """\
<conference-modify xmlns='jitsi:colibri2' meeting-id='5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23'>
  <endpoint id='b5e6f7a8' expire='true'/>
</conference-modify>
"""

D_ANSWER = """\
<conference-modified xmlns='jitsi:colibri2'>
  <endpoint id='b5e6f7a8' expire='true'/>
</conference-modified>
"""

E_RELAY_REQUEST_2 = """\
<conference-modify xmlns='jitsi:colibri2' meeting-id='5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23'>
  <relay id='sim-relay-2' create='true' mesh-id='0'>
    <media type='audio'><!-- all audio payload types + header extensions of the offer --></media>
    <media type='video'><!-- all video payload types + header extensions --></media>
    <transport ice-controlling='true' use-unique-port='true'>
      <sctp role='client'/>
    </transport>
    <endpoints>
      <endpoint id='c9d0e1f2' create='true' stats-id='Cy-9Lk'>
        <sources/>
        <capability name='source-names'/>
        <capability name='ssrc-rewriting'/>
      </endpoint>
    </endpoints>
  </relay>
</conference-modify>
"""

E_RELAY_REQUEST_3 = """\
<conference-modify xmlns='jitsi:colibri2' meeting-id='5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23'>
  <relay id='sim-relay-1' create='true' mesh-id='0'>
    <media type='audio'>…</media>
    <media type='video'>…</media>
    <transport>
      <sctp role='server'/>
    </transport>
    <endpoints>
      <endpoint id='a1b2c3d4' create='true' stats-id='Ana-x7Q'>
        <sources><!-- Ana's current sources, as in (c) --></sources>
        <capability name='source-names'/>
        <capability name='ssrc-rewriting'/>
      </endpoint>
      <endpoint id='b5e6f7a8' create='true' stats-id='Bo-3Hn'>…</endpoint>
    </endpoints>
  </relay>
</conference-modify>
"""

E_RELAY_ANSWERS = """\
<!-- from jvb-sim-1 to request 2 -->
<conference-modified xmlns='jitsi:colibri2'>
  <relay id='sim-relay-2'>
    <transport>
      <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' pwd='7d2k9s1m4q8v0c6t3b5ner2fhl' ufrag='6p1c8h1jd6v12'>
        <rtcp-mux/>
        <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>5E:21:9C:47:0B:D8:3A:F6:12:8E:C0:77:4D:A9:E3:5B:06:92:1F:CB:38:64:AD:F0:19:7C:E5:42:8B:D3:60:AF</fingerprint>
        <candidate component='1' foundation='1' generation='0' id='9e04b1c3ffffffffd02c6e11' network='0'
                   priority='2130706431' protocol='udp' type='host' ip='10.0.0.12' port='47213'/>
        <candidate component='1' foundation='2' generation='0' id='4b7a02d9ffffffffa4917b02' network='0'
                   priority='1694498815' protocol='udp' type='srflx' ip='203.0.113.45' port='47213'
                   rel-addr='10.0.0.12' rel-port='47213'/>
      </transport>
      <sctp port='5000' role='server'/>
    </transport>
  </relay>
</conference-modified>

<!-- from jvb-sim-2 to request 3 -->
<conference-modified xmlns='jitsi:colibri2'>
  <relay id='sim-relay-1'>
    <transport>
      <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' pwd='0a9s3d7f1g5h2j8k4l6qwe9rty' ufrag='2m7x1k1jd6v14'>
        <rtcp-mux/>
        <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>91:0C:4E:7B:D2:35:A8:1F:6C:E0:53:9A:B7:24:F1:08:3D:C6:72:AE:15:E9:40:8B:D7:2A:6F:C3:58:01:9E:B4</fingerprint>
        <candidate component='1' foundation='1' generation='0' id='c1e6a2f0ffffffff3b07d5e1' network='0'
                   priority='2130706431' protocol='udp' type='host' ip='10.1.0.7' port='10000'/>
      </transport>
      <sctp port='5000' role='client'/>
    </transport>
  </relay>
</conference-modified>
"""

E_CROSS_FORWARDS = """\
<!-- to jvb-sim-2: jvb-sim-1's relay transport, setup forced to 'passive' -->
<conference-modify xmlns='jitsi:colibri2' meeting-id='5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23'>
  <relay id='sim-relay-1'>
    <transport>
      <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' pwd='7d2k9s1m4q8v0c6t3b5ner2fhl' ufrag='6p1c8h1jd6v12'>
        <rtcp-mux/>
        <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='passive'>5E:21:…:60:AF</fingerprint>
        <!-- jvb-sim-1's two candidates (port 47213), unchanged -->
      </transport>
    </transport>
  </relay>
</conference-modify>

<!-- to jvb-sim-1: jvb-sim-2's relay transport, setup forced to 'active' -->
<conference-modify xmlns='jitsi:colibri2' meeting-id='5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23'>
  <relay id='sim-relay-2'>
    <transport>
      <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' pwd='0a9s3d7f1g5h2j8k4l6qwe9rty' ufrag='2m7x1k1jd6v14'>
        <rtcp-mux/>
        <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>91:0C:…:9E:B4</fingerprint>
        <!-- jvb-sim-2's candidate (port 10000), unchanged -->
      </transport>
    </transport>
  </relay>
</conference-modify>
"""

F_REQUEST = """\
<iq type='get' id='Xw3k9-90' from='jvbbrewery@internal.auth.example.com/focus'
    to='jvbbrewery@internal.auth.example.com/jvb-sim-1'>
  <conference-modify xmlns='jitsi:colibri2' meeting-id='5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23' expire='true'/>
</iq>
"""

F_ANSWER = """\
<iq type='result' id='Xw3k9-90' to='jvbbrewery@internal.auth.example.com/focus'>
  <conference-modified xmlns='jitsi:colibri2'/>
</iq>
"""

G_ERRORS = """\
<!-- graceful shutdown, answer to a create -->
<error type='cancel'>
  <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
  <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>In graceful shutdown</text>
  <error xmlns='jitsi:colibri2' reason='graceful_shutdown'/>
</error>

<!-- conference already exists, answer to a create -->
<error type='cancel'>
  <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
  <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Conference already exists for ID: 5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23</text>
  <error xmlns='jitsi:colibri2' reason='conference_already_exists'/>
</error>

<!-- unknown endpoint in an update -->
<error type='cancel'>
  <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
  <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Endpoint not found for ID: b5e6f7a8</text>
  <error xmlns='jitsi:colibri2' reason='unknown_endpoint'/>
  <endpoint xmlns='jitsi:colibri2' id='b5e6f7a8'/>
</error>
"""


def _xml(text: str) -> Element:
    return parse_fragment(re.sub(r"<!--.*?-->", "", text, flags=re.S).strip())


def _split(text: str) -> list[Element]:
    """The elements of a block that holds several, each introduced by a comment in column 0."""
    parts = re.split(r"^<!--.*?-->", text, flags=re.S | re.M)
    return [_xml(p) for p in parts if p.strip()]


def _payload(iq_text: str) -> Element:
    iq = _xml(iq_text)
    assert local_name(iq.tag) == "iq"
    return list(iq)[0]


def _round_trip(cls: type, el: Element) -> object:
    parsed = cls.from_element(el)
    rebuilt = parse_fragment(serialize(parsed.to_element()))
    again = cls.from_element(rebuilt)
    assert again == parsed
    return parsed


REQUESTS = {
    "a": lambda: _payload(A_REQUEST),
    "c": lambda: _payload(C_REQUEST),
    "d": lambda: _xml(D_REQUEST),
    "e2": lambda: _xml(E_RELAY_REQUEST_2),
    "e3": lambda: _xml(E_RELAY_REQUEST_3),
    "e4-passive": lambda: _split(E_CROSS_FORWARDS)[0],
    "e4-active": lambda: _split(E_CROSS_FORWARDS)[1],
    "f": lambda: _payload(F_REQUEST),
}

ANSWERS = {
    "a": lambda: _payload(A_ANSWER),
    "b": lambda: _payload(B_ANSWER),
    "c": lambda: _payload(C_ANSWER),
    "d": lambda: _xml(D_ANSWER),
    "e-sim-1": lambda: _split(E_RELAY_ANSWERS)[0],
    "e-sim-2": lambda: _split(E_RELAY_ANSWERS)[1],
    "f": lambda: _payload(F_ANSWER),
}

MEETING = "5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23"


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_worked_example_requests_round_trip(name: str) -> None:
    el = REQUESTS[name]()
    assert el.tag == CONFERENCE_MODIFY
    parsed = _round_trip(ConferenceModify, el)
    assert isinstance(parsed, ConferenceModify)
    assert parsed.meeting_id == MEETING


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_worked_example_answers_round_trip(name: str) -> None:
    el = ANSWERS[name]()
    assert el.tag == CONFERENCE_MODIFIED
    assert isinstance(_round_trip(ConferenceModified, el), ConferenceModified)


def test_allocation_request_fields() -> None:
    request = ConferenceModify.from_element(_payload(A_REQUEST))
    assert request.create and not request.expire
    assert request.name == "standup@conference.example.com"
    assert request.rtcstats_enabled is None
    (endpoint,) = request.endpoints
    assert endpoint.id == "a1b2c3d4" and endpoint.create and endpoint.stats_id == "Ana-x7Q"
    assert not endpoint.visitor
    assert [m.type for m in endpoint.medias] == ["audio", "video"]
    audio = endpoint.medias[0]
    assert [p.name for p in audio.payload_types] == ["opus", "telephone-event"]
    assert audio.payload_types[0].parameter("useinbandfec") == "1"
    assert [h.id for h in audio.header_extensions] == [1, 5]
    assert audio.extmap_allow_mixed
    assert endpoint.transport == Transport(ice_controlling=True, sctp=Sctp())
    assert endpoint.sources == Sources()
    assert endpoint.capabilities == ("source-names", "ssrc-rewriting", "rtp-mid-demux")
    assert endpoint.has_capability("source-names")
    assert endpoint.changes_state


def test_allocation_answer_fields() -> None:
    answer = ConferenceModified.from_element(_payload(A_ANSWER))
    endpoint = answer.endpoint("a1b2c3d4")
    assert endpoint is not None and endpoint.transport is not None
    ice = endpoint.transport.ice
    assert ice is not None
    assert (ice.ufrag, ice.pwd) == ("3kq9h1jd6v0ot", "5r0k2m9bq1t7c4v8e6a3dh0lsn")
    assert ice.rtcp_mux
    (fingerprint,) = ice.fingerprints
    assert fingerprint.hash == "sha-256" and fingerprint.setup == "actpass"
    assert fingerprint.value.count(":") == 31
    assert ice.web_sockets == (
        "wss://jvb1.example.com:443/colibri-ws/jvb-sim-1/1b7e4c0a9d2f3e65/a1b2c3d4?pwd=Zk3mQ8rT1vXy6bNc2HpL9sWd",
    )
    assert [(c.type, c.ip, c.port) for c in ice.candidates] == [
        ("host", "10.0.0.12", 10000), ("srflx", "203.0.113.45", 10000)
    ]
    assert ice.candidates[1].rel_addr == "10.0.0.12"
    assert endpoint.transport.sctp == Sctp(port=SCTP_PORT, role="server")
    feedback = answer.feedback_sources
    assert feedback is not None
    assert [(m.type, m.id) for m in feedback] == [("audio", "jvb-a0"), ("video", "jvb-v0")]
    assert feedback.ssrcs() == (2876145903, 1093847561)
    assert answer.endpoint("nobody") is None


def test_update_request_sources_and_client_transport() -> None:
    request = ConferenceModify.from_element(_payload(C_REQUEST))
    (endpoint,) = request.endpoints
    assert not endpoint.create
    assert endpoint.transport is not None and endpoint.transport.ice is not None
    assert endpoint.transport.ice.fingerprints[0].setup == "active"
    assert endpoint.transport.ice.candidates[0].port == 53001
    assert endpoint.sources is not None
    video = endpoint.sources.of_type("video")[0]
    assert video.id == "a1b2c3d4-v0"
    assert [s.ssrc for s in video.sources] == [3120076745, 887261093]
    assert video.sources[0].video_type == "camera"
    assert video.ssrc_groups == (SsrcGroupElement("FID", (3120076745, 887261093)),)


def test_expire_examples() -> None:
    request = ConferenceModify.from_element(_xml(D_REQUEST))
    assert request.endpoints == (Endpoint("b5e6f7a8", expire=True),)
    assert not request.endpoints[0].changes_state
    answer = ConferenceModified.from_element(_xml(D_ANSWER))
    assert answer.endpoints == (Endpoint("b5e6f7a8", expire=True),)
    conference_expire = ConferenceModify.from_element(_payload(F_REQUEST))
    assert conference_expire == ConferenceModify(MEETING, expire=True)
    assert ConferenceModified.from_element(_payload(F_ANSWER)) == ConferenceModified()


def test_relay_examples() -> None:
    initiator = ConferenceModify.from_element(_xml(E_RELAY_REQUEST_2))
    (relay,) = initiator.relays
    assert relay.id == "sim-relay-2" and relay.create and relay.mesh_id == "0"
    assert [m.type for m in relay.medias] == ["audio", "video"]
    assert relay.transport == Transport(ice_controlling=True, use_unique_port=True, sctp=Sctp(role="client"))
    assert [e.id for e in relay.endpoints] == ["c9d0e1f2"]
    assert relay.endpoint("c9d0e1f2") is not None and relay.endpoints[0].create
    other = ConferenceModify.from_element(_xml(E_RELAY_REQUEST_3)).relays[0]
    assert other.transport == Transport(sctp=Sctp(role="server"))
    assert [e.id for e in other.endpoints] == ["a1b2c3d4", "b5e6f7a8"]

    answer_1, answer_2 = (ConferenceModified.from_element(el) for el in _split(E_RELAY_ANSWERS))
    relay_1 = answer_1.relay("sim-relay-2")
    assert relay_1 is not None and relay_1.transport is not None and relay_1.transport.ice is not None
    assert relay_1.transport.ice.candidates[0].port == 47213
    assert relay_1.transport.ice.web_sockets == ()
    assert relay_1.transport.sctp == Sctp(5000, "server")
    relay_2 = answer_2.relays[0]
    assert relay_2.transport is not None and relay_2.transport.sctp == Sctp(5000, "client")

    passive, active = (ConferenceModify.from_element(el) for el in _split(E_CROSS_FORWARDS))
    for forward, setup in ((passive, "passive"), (active, "active")):
        transport = forward.relays[0].transport
        assert transport is not None and transport.ice is not None
        assert transport.ice.fingerprints[0].setup == setup


def test_error_examples() -> None:
    graceful, exists, unknown = _split(G_ERRORS)
    assert colibri2_error(graceful) == Colibri2ErrorInfo(ErrorReason.GRACEFUL_SHUTDOWN)
    assert colibri2_error(exists) == Colibri2ErrorInfo(ErrorReason.CONFERENCE_ALREADY_EXISTS)
    assert colibri2_error(unknown) == Colibri2ErrorInfo(ErrorReason.UNKNOWN_ENDPOINT, "b5e6f7a8")


def _error_iq(error: Element) -> Element:
    iq = Element("{jabber:client}iq", {"type": "error", "id": "x"})
    iq.append(error)
    return iq


def test_errors_built_and_read_back() -> None:
    err = colibri2_stanza_error("item-not-found", "Endpoint not found for ID: e1",
                                ErrorReason.UNKNOWN_ENDPOINT, endpoint_id="e1")
    assert isinstance(err, StanzaError)
    wire = parse_fragment(serialize(err.to_element()))
    assert [local_name(c.tag) for c in wire] == ["item-not-found", "text", "error", "endpoint"]
    assert wire.get("type") == "cancel"
    assert colibri2_error(wire) == Colibri2ErrorInfo(ErrorReason.UNKNOWN_ENDPOINT, "e1")
    assert colibri2_error(_error_iq(wire)) == Colibri2ErrorInfo(ErrorReason.UNKNOWN_ENDPOINT, "e1")
    assert colibri2_error(err) == Colibri2ErrorInfo(ErrorReason.UNKNOWN_ENDPOINT, "e1")
    # What client.request raises: StanzaError.from_stanza keeps one application element.
    received = StanzaError.from_stanza(_error_iq(wire))
    assert received.condition == "item-not-found"
    info = colibri2_error(received)
    assert info is not None and info.reason == ErrorReason.UNKNOWN_ENDPOINT

    not_found = colibri2_stanza_error("item-not-found", "Conference not found for ID: m",
                                      ErrorReason.CONFERENCE_NOT_FOUND)
    received = StanzaError.from_stanza(_error_iq(parse_fragment(serialize(not_found.to_element()))))
    assert colibri2_error(received) == Colibri2ErrorInfo(ErrorReason.CONFERENCE_NOT_FOUND)
    assert received.app_element is not None and received.app_element.get("reason") == "conference_not_found"

    # An error without a colibri2 element (from the MUC, say) has no colibri2 part.
    assert colibri2_error(StanzaError("item-not-found")) is None
    assert colibri2_error(_error_iq(StanzaError("conflict").to_element())) is None
    # A missing or unknown reason reads as unspecified.
    bare = Element(f"{{{NS_COLIBRI2}}}error")
    assert colibri2_error(bare) == Colibri2ErrorInfo(ErrorReason.UNSPECIFIED)
    assert ErrorReason.parse("something-new") is ErrorReason.UNSPECIFIED
    assert isinstance(Colibri2StanzaError("bad-request"), StanzaError)


def test_focus_builds_an_allocation_like_the_reference() -> None:
    audio = RtpDescription(media="audio", payload_types=(PayloadType(111, "opus", 48000, 2),))
    request = ConferenceModify(
        meeting_id=MEETING,
        name="standup@conference.example.com",
        create=True,
        rtcstats_enabled=False,
        endpoints=[Endpoint(
            id="a1b2c3d4",
            create=True,
            stats_id="Ana-x7Q",
            medias=[Media.from_description(audio), Media("video")],
            transport=Transport(ice_controlling=True, sctp=Sctp()),
            sources=Sources(),
            force_mute=ForceMute(audio=True),
            capabilities=["source-names", "ssrc-rewriting"],
        )],
    )
    assert isinstance(request.endpoints, tuple) and isinstance(request.endpoints[0].capabilities, tuple)
    wire = serialize(request.to_element())
    el = parse_fragment(wire)
    assert el.get("create") == "true" and el.get("rtcstats-enabled") == "false"
    assert el.get("expire") is None
    endpoint = el.find(f"{{{NS_COLIBRI2}}}endpoint")
    assert endpoint is not None
    assert [local_name(c.tag) for c in endpoint] == [
        "media", "media", "transport", "sources", "force-mute", "capability", "capability"
    ]
    force_mute = endpoint.find(f"{{{NS_COLIBRI2}}}force-mute")
    assert force_mute is not None and force_mute.attrib == {"audio": "true"}
    assert ConferenceModify.from_element(el) == request
    # An empty force-mute unmutes both and stays an element.
    unmute = Endpoint("x", force_mute=ForceMute()).to_element()
    assert unmute.find(f"{{{NS_COLIBRI2}}}force-mute") is not None


def test_answer_transport_is_written_in_the_bridges_order() -> None:
    transport = Transport(
        ice=IceUdpTransport(
            ufrag="u", pwd="p", rtcp_mux=True,
            fingerprints=(Fingerprint("sha-256", "AA:BB", "actpass"),),
            candidates=(Candidate(1, "1", 0, "c1", "10.0.0.1", 10000, 2130706431, "udp", "host"),),
            web_sockets=("wss://example.com/colibri-ws/b/c/e?pwd=x",),
        ),
        sctp=Sctp(5000, "server"),
    )
    el = transport.to_element()
    ice, sctp = list(el)
    assert local_name(sctp.tag) == "sctp"
    assert [local_name(c.tag) for c in ice] == ["rtcp-mux", "fingerprint", "web-socket", "candidate"]
    assert Transport.from_element(parse_fragment(serialize(el))) == transport


def test_active_web_socket_and_ice_restart_round_trip() -> None:
    transport = Transport(ice=IceUdpTransport(ufrag="u", pwd="p", ice_generation=2), web_socket_active=True,
                          ice_restart=True)
    el = parse_fragment(serialize(transport.to_element()))
    assert el.get("ice-restart") == "true"
    parsed = Transport.from_element(el)
    assert parsed == transport
    assert parsed.ice is not None and parsed.ice.ice_generation == 2


def test_ice_restart_request_and_answer_round_trip() -> None:
    """The focus's in-place ICE restart request (docs/jicofo.md §7.13) and the bridge's answer:
    new credentials inside the colibri2 transport, tagged with ice-generation."""
    request = ConferenceModify(MEETING, endpoints=(
        Endpoint("ab12cd34", stats_id="Alice-x1", transport=Transport(ice_restart=True)),))
    el = parse_fragment(serialize(request.to_element()))
    endpoint = el.find(f"{{{NS_COLIBRI2}}}endpoint")
    assert endpoint is not None and endpoint.get("stats-id") == "Alice-x1"
    transport = endpoint.find(f"{{{NS_COLIBRI2}}}transport")
    assert transport is not None and transport.get("ice-restart") == "true" and len(transport) == 0
    assert ConferenceModify.from_element(el) == request

    answer = parse_fragment(f"""<conference-modified xmlns='jitsi:colibri2' meeting-id='{MEETING}'>
      <endpoint id='ab12cd34'><transport>
        <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='new1ufrag' pwd='newpwd0123456789abcdefgh'
                   ice-generation='1'>
          <rtcp-mux/><fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>AC:58</fingerprint>
        </transport>
      </transport></endpoint></conference-modified>""")
    parsed = ConferenceModified.from_element(answer)
    answered = parsed.endpoint("ab12cd34")
    assert answered is not None and answered.transport is not None and answered.transport.ice is not None
    assert answered.transport.ice.ufrag == "new1ufrag" and answered.transport.ice.ice_generation == 1
    assert not answered.transport.ice_restart
    assert ConferenceModified.from_element(parse_fragment(serialize(parsed.to_element()))) == parsed
    # A refusal is a bare endpoint: no transport at all.
    bare = ConferenceModified.from_element(parse_fragment(
        f"<conference-modified xmlns='jitsi:colibri2' meeting-id='{MEETING}'><endpoint id='ab12cd34'/>"
        "</conference-modified>"))
    assert bare.endpoint("ab12cd34") == Endpoint("ab12cd34")


def test_update_with_initial_last_n_round_trip() -> None:
    update = ConferenceModify(MEETING, endpoints=(Endpoint(
        "ab12cd34", transport=Transport(ice=IceUdpTransport(ufrag="c", pwd="p", rtcp_mux=True)),
        initial_last_n=20),))
    el = parse_fragment(serialize(update.to_element()))
    last_n = el.find(f"{{{NS_COLIBRI2}}}endpoint/{{{NS_COLIBRI2}}}initial-last-n")
    assert last_n is not None and last_n.get("value") == "20"
    assert ConferenceModify.from_element(el) == update


def test_connects_and_unknown_children() -> None:
    el = parse_fragment(f"""<conference-modify xmlns='jitsi:colibri2' meeting-id='{MEETING}'>
      <traceparent xmlns='urn:example:otel'>00-abc-def-01</traceparent>
      <connects>
        <connect url='wss://transcriber.example.com/ws' protocol='mediajson' type='transcriber'
                 audio='true' id='transcriber' create='true'>
          <http-header name='Authorization' value='Bearer x'/>
          <ping interval='10000' timeout='5000'/>
          <exports><export name='audio'/></exports>
          <requests><request name='transcription'/></requests>
        </connect>
        <connect id='translator-a-1' expire='true'/>
      </connects>
    </conference-modify>""")
    request = _round_trip(ConferenceModify, el)
    assert isinstance(request, ConferenceModify)
    first, second = request.connects
    assert first == Connect(
        url="wss://transcriber.example.com/ws", type="transcriber", protocol="mediajson", audio=True,
        id="transcriber", create=True, http_headers=(("Authorization", "Bearer x"),),
        ping=(10000, 5000), exports=("audio",), requests=("transcription",),
    )
    assert second.key == "translator-a-1" and second.expire


def test_visitor_diarize_last_n_and_media_source_flags() -> None:
    endpoint = Endpoint(
        "v1", create=True, muc_role="visitor", diarize=True, initial_last_n=-1,
        sources=Sources([MediaSource("audio", "v1-a0", [SourceElement(5, "v1-a0")], synthetic=True)]),
    )
    parsed = Endpoint.from_element(parse_fragment(serialize(endpoint.to_element())))
    assert parsed == endpoint and parsed.visitor


MALFORMED = [
    ("<conference-modify xmlns='jitsi:colibri2'/>", "meeting-id"),
    ("<conference-modified xmlns='jitsi:colibri2'/>", "expected <conference-modify"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m' create='yes'/>", "not a boolean"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint create='true'/></conference-modify>",
     "lacks the 'id'"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><media type='text'/></endpoint>"
     "</conference-modify>", "unknown media type"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><media type='audio'>"
     "<payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' name='opus'/></media></endpoint></conference-modify>",
     "endpoint 'e': <media>"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><transport/><transport/>"
     "</endpoint></conference-modify>", "more than one <transport>"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><transport>"
     "<sctp role='peer'/></transport></endpoint></conference-modify>", "SCTP role"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><transport>"
     "<sctp port='seventy'/></transport></endpoint></conference-modify>", "not an integer"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><transport>"
     "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'><web-socket xmlns='http://jitsi.org/protocol/colibri'/>"
     "</transport></transport></endpoint></conference-modify>", "web-socket"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><transport>"
     "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'><candidate component='1' foundation='1' "
     "ip='1.2.3.4' port='99999' priority='1' protocol='udp' type='host'/></transport></transport></endpoint>"
     "</conference-modify>", "out of range"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><sources>"
     "<media-source type='audio' id='a'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='x'/></media-source>"
     "</sources></endpoint></conference-modify>", "ssrc"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><sources>"
     "<media-source type='audio' id='a'/><media-source type='audio' id='a'/></sources></endpoint>"
     "</conference-modify>", "share an id"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><sources>"
     "<media-source id='a'/></sources></endpoint></conference-modify>", "'type'"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'>"
     "<initial-last-n value='many'/></endpoint></conference-modify>", "initial-last-n"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><capability/></endpoint>"
     "</conference-modify>", "'name'"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='e'><force-mute audio='maybe'/>"
     "</endpoint></conference-modify>", "force-mute"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><relay id='r'><endpoints><endpoint id='x'/>"
     "<endpoint id='x'/></endpoints></relay></conference-modify>", "relay 'r'"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><relay/></conference-modify>", "'id'"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><connects><connect type='recorder'/></connects>"
     "</conference-modify>", "neither a url nor an id"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><connects><connect id='c' type='dj'/></connects>"
     "</conference-modify>", "connect type"),
    ("<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><connects><connect id='c'><ping interval='-1'/>"
     "</connect></connects></conference-modify>", "out of range"),
]


@pytest.mark.parametrize(("xml", "message"), MALFORMED)
def test_malformed_requests_are_refused_with_one_error_type(xml: str, message: str) -> None:
    with pytest.raises(Colibri2ParseError) as refused:
        ConferenceModify.from_element(parse_fragment(xml))
    assert isinstance(refused.value, ValueError)
    assert message in str(refused.value), str(refused.value)


def test_malformed_answers_are_refused() -> None:
    with pytest.raises(Colibri2ParseError, match="endpoint"):
        ConferenceModified.from_element(parse_fragment(
            "<conference-modified xmlns='jitsi:colibri2'><endpoint/></conference-modified>"))
    with pytest.raises(Colibri2ParseError, match="fingerprint"):
        ConferenceModified.from_element(parse_fragment(
            "<conference-modified xmlns='jitsi:colibri2'><relay id='r'><transport>"
            "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>"
            "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256'/></transport></transport>"
            "</relay></conference-modified>"))
    with pytest.raises(Colibri2ParseError):
        Relay.from_element(parse_fragment("<endpoint xmlns='jitsi:colibri2' id='x'/>"))


# --- Brewery stats (jicofo.xmlns.colibri_stats), docs/jvb.md §1.4.

STATS_PRESENCE = """\
<presence to='jvbbrewery@internal.auth.example.com/jvb-sim-1' id='pres-77'>
  <stats xmlns='http://jitsi.org/protocol/colibri'>
    <stat name='stress_level' value='0.12'/>
    <stat name='average_participant_stress' value='0.01'/>
    <stat name='conferences' value='3'/>
    <stat name='participants' value='11'/>
    <stat name='endpoints' value='11'/>
    <stat name='graceful_shutdown' value='false'/>
    <stat name='shutting_down' value='false'/>
    <stat name='drain' value='false'/>
    <stat name='healthy' value='true'/>
    <stat name='current_timestamp' value='2026-08-20 09:14:05.317'/>
    <stat name='relay_id' value='sim-relay-1'/>
    <stat name='region' value='us-east-1'/>
    <stat name='version' value='2.3.250-g1a2b3c4d'/>
  </stats>
</presence>"""


def test_stats_presence_example() -> None:
    from jicofo.xmlns.colibri_stats import BridgeStats

    stats = BridgeStats.from_presence(parse_fragment(STATS_PRESENCE))
    assert stats is not None
    assert (stats.stress_level, stats.average_participant_stress) == (0.12, 0.01)
    assert (stats.conferences, stats.participants, stats.endpoints) == (3, 11, 11)
    assert (stats.graceful_shutdown, stats.shutting_down, stats.drain, stats.healthy) == (
        False, False, False, True)
    assert (stats.relay_id, stats.region, stats.version) == ("sim-relay-1", "us-east-1", "2.3.250-g1a2b3c4d")
    assert stats.current_timestamp == "2026-08-20 09:14:05.317"
    assert stats.release is None and stats.extra == {}
    assert BridgeStats.from_element(parse_fragment(serialize(stats.to_element()))) == stats
    assert BridgeStats.from_presence(parse_fragment("<presence/>")) is None


def test_stats_reading_is_tolerant() -> None:
    from jicofo.xmlns.colibri_stats import BridgeStats

    stats = BridgeStats.from_element(parse_fragment(
        "<stats xmlns='http://jitsi.org/protocol/colibri'>"
        "<stat name='stress_level' value='lots'/><stat name='average_participant_stress' value='NaN'/>"
        "<stat name='conferences' value='4.0'/><stat name='endpoints' value='x'/>"
        "<stat name='drain' value='TRUE'/><stat name='healthy' value='yes'/>"
        "<stat name='new_thing' value='7'/><stat value='no name'/><stat name='region'/>"
        "</stats>"))
    assert stats.stress_level is None and stats.average_participant_stress is None
    assert stats.conferences == 4 and stats.endpoints is None
    assert stats.drain is True and stats.healthy is False  # Java parseBoolean
    assert stats.region is None
    assert stats.extra == {"new_thing": "7"}


def test_stats_writing_uses_java_formats_and_json_types() -> None:
    from jicofo.xmlns.colibri_stats import STATS_FILTER_WHITELIST, BridgeStats, java_double

    assert [java_double(v) for v in (0.0, 0.1234, 1e-4, 5.0, 12345678.0, -2.5e-5)] == [
        "0.0", "0.1234", "1.0E-4", "5.0", "1.2345678E7", "-2.5E-5"]
    stats = BridgeStats(stress_level=0.0, average_participant_stress=1e-4, drain=False, conferences=2,
                        version="2.3.250-g1", extra={"custom": "x"})
    values = {s.get("name"): s.get("value") for s in stats.to_element()}
    assert values == {"stress_level": "0.0", "average_participant_stress": "1.0E-4", "drain": "false",
                      "version": "2.3.250-g1", "conferences": "2", "custom": "x"}
    assert stats.to_json() == {"stress_level": 0.0, "average_participant_stress": 1e-4, "drain": False,
                               "version": "2.3.250-g1", "conferences": 2, "custom": "x"}
    filtered = {s.get("name") for s in stats.to_element(STATS_FILTER_WHITELIST)}
    assert filtered == {"stress_level", "average_participant_stress", "drain", "version"}
    assert BridgeStats.from_mapping(stats.to_json()) == stats
