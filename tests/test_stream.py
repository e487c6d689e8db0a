"""The sans-IO stream core against transcripts shaped like Prosody's."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jicofo.xmpp.errors import NotConnected
from jicofo.xmpp.stream import (
    Event,
    Features,
    Framing,
    ProtocolViolation,
    StanzaReceived,
    StreamClosed,
    StreamErrorReceived,
    StreamOpened,
    XmlStream,
)
from jicofo.xmpp.xml import element, find_child, qn, serialize

NS_CLIENT = "jabber:client"
NS_COMPONENT = "jabber:component:accept"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SM = "urn:xmpp:sm:3"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"

SERVER_HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xml:lang='en' "
    "xmlns:stream='http://etherx.jabber.org/streams' id='{id}' from='localhost' version='1.0'>"
)
SASL_FEATURES = (
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    "<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>"
    "</stream:features>"
)
BIND_FEATURES = (
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind>"
    "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"
    "<sm xmlns='urn:xmpp:sm:3'/><ver xmlns='urn:xmpp:features:rosterver'/></stream:features>"
)
BIND_RESULT = (
    "<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    "<jid>focus@auth.localhost/focus-1</jid></bind></iq>"
)
STANZAS = (
    "<message from='room@muc.localhost/Zoë' to='focus@auth.localhost/focus-1' type='groupchat'>"
    "<body>héllo 日本 😀 &amp; &lt;tags&gt;</body></message>"
    "\n \n"
    "<presence from='room@muc.localhost/abcd1234'><c xmlns='http://jabber.org/protocol/caps' "
    "hash='sha-1' node='https://jitsi.org/jitsi-meet' ver='cvjWXufsg4xT62Ec2mlATkFZ9lk='/>"
    "<stats-id>Zoë-ÅÄÖ</stats-id><nick xmlns='http://jabber.org/protocol/nick'>Ñandú</nick>"
    "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>"
    "</x></presence>"
    " "
    "<r xmlns='urn:xmpp:sm:3'/>"
    "<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
)


def only(events: list[Event], kind: type) -> list:
    assert all(isinstance(e, kind) for e in events), events
    return events


def describe(events: list[Event]) -> list[tuple[str, str]]:
    """A comparable rendering of events (elements compared by their serialization)."""
    out = []
    for e in events:
        if isinstance(e, StreamOpened):
            out.append(("open", repr(sorted(e.attrs.items()))))
        elif isinstance(e, Features | StanzaReceived | StreamErrorReceived):
            out.append((type(e).__name__, serialize(e.element)))
        else:
            out.append((type(e).__name__, ""))
    return out


def test_client_stream_transcript() -> None:
    core = XmlStream()
    header = core.open("localhost")
    assert header == (
        b"<?xml version='1.0'?><stream:stream xmlns=\"jabber:client\" "
        b'xmlns:stream="http://etherx.jabber.org/streams" to="localhost" version="1.0" '
        b'xml:lang="en">'
    )

    events = core.receive_data((SERVER_HEADER.format(id="s1") + SASL_FEATURES).encode())
    opened, features = events
    assert isinstance(opened, StreamOpened)
    assert (opened.id, opened.version, opened.from_, opened.lang) == ("s1", "1.0", "localhost", "en")
    assert isinstance(features, Features)
    mechanisms = find_child(features.element, NS_SASL, "mechanisms")
    assert mechanisms is not None and [m.text for m in mechanisms] == ["SCRAM-SHA-1", "PLAIN"]

    auth = element(qn(NS_SASL, "auth"), {"mechanism": "PLAIN"}, text="AGZvY3VzAHNlY3JldA==")
    assert core.send(auth) == (
        b'<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">'
        b"AGZvY3VzAHNlY3JldA==</auth>"
    )
    (success,) = only(core.receive_data(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
                      StanzaReceived)
    assert success.element.tag == qn(NS_SASL, "success")

    # Restart after SASL: a fresh parser reads a fresh header.
    assert core.open("localhost").startswith(b"<?xml")
    events = core.receive_data((SERVER_HEADER.format(id="s2") + BIND_FEATURES).encode())
    assert [type(e) for e in events] == [StreamOpened, Features]
    assert events[0].id == "s2"
    assert find_child(events[1].element, NS_SM, "sm") is not None

    bind = element(qn(NS_CLIENT, "iq"), {"type": "set", "id": "bind_1"},
                   element(qn(NS_BIND, "bind"), None,
                           element(qn(NS_BIND, "resource"), text="focus-1")))
    assert core.send(bind) == (
        b'<iq type="set" id="bind_1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind">'
        b"<resource>focus-1</resource></bind></iq>"
    )
    (result,) = only(core.receive_data(BIND_RESULT.encode()), StanzaReceived)
    assert result.element.tag == qn(NS_CLIENT, "iq")
    assert result.element.findtext(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid") == \
        "focus@auth.localhost/focus-1"

    events = only(core.receive_data(STANZAS.encode()), StanzaReceived)
    assert [e.element.tag for e in events] == [
        qn(NS_CLIENT, "message"), qn(NS_CLIENT, "presence"), qn(NS_SM, "r"), qn(NS_CLIENT, "iq")
    ]
    assert events[0].element[0].text == "héllo 日本 😀 & <tags>"
    assert events[1].element.findtext(qn(NS_CLIENT, "stats-id")) == "Zoë-ÅÄÖ"

    assert core.receive_data(b"  \n ") == []  # keepalives
    assert [type(e) for e in core.receive_data(b"</stream:stream>")] == [StreamClosed]
    assert core.peer_closed and not core.closed
    assert core.receive_data(b"<more/>") == []
    assert core.close() == b"</stream:stream>"
    assert core.closed
    assert core.close() == b""
    with pytest.raises(NotConnected):
        core.send(bind)


def test_component_stream_has_no_version() -> None:
    core = XmlStream(content_ns=NS_COMPONENT)
    header = core.open("focus.localhost", version=None)
    assert b"version" not in header.split(b"?>", 1)[1]
    assert b'xmlns="jabber:component:accept"' in header
    events = core.receive_data(
        b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
        b"xmlns='jabber:component:accept' id='a1b2' from='focus.localhost'>"
    )
    (opened,) = only(events, StreamOpened)
    assert opened.version is None and opened.id == "a1b2"

    handshake = element(qn(NS_COMPONENT, "handshake"), text="deadbeef")
    assert core.send(handshake) == b"<handshake>deadbeef</handshake>"
    (answer,) = only(core.receive_data(b"<handshake/>"), StanzaReceived)
    assert answer.element.tag == qn(NS_COMPONENT, "handshake")
    (iq,) = only(core.receive_data(b"<iq type='get' id='x' from='a@b/c' to='focus.localhost'>"
                                   b"<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
                 StanzaReceived)
    assert iq.element.tag == qn(NS_COMPONENT, "iq")


@pytest.mark.parametrize(
    "header",
    [
        # Wrong content namespace for a client stream.
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
        # No content namespace at all.
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
        # Wrong stream namespace.
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://example.com/streams'>",
        # Not a stream at all.
        b"<html xmlns='jabber:client'>",
    ],
)
def test_bad_stream_header_is_invalid_namespace(header: bytes) -> None:
    core = XmlStream()
    core.open("localhost")
    (violation,) = core.receive_data(header)
    assert isinstance(violation, ProtocolViolation)
    assert violation.condition == "invalid-namespace"
    assert b"<invalid-namespace" in violation.data_to_send
    assert violation.data_to_send.endswith(b"</stream:stream>")
    assert core.closed and core.receive_data(b"<iq/>") == []


def test_websocket_transcript() -> None:
    core = XmlStream(framing=Framing.WEBSOCKET)
    assert core.open("localhost") == (
        b'<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0" '
        b'xml:lang="en"/>'
    )
    frames = [
        b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' xml:lang='en' id='ws1' "
        b"from='localhost' version='1.0'/>",
        b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
        b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
        b"</mechanisms></stream:features>",
    ]
    opened, features = [e for frame in frames for e in core.receive_data(frame)]
    assert isinstance(opened, StreamOpened) and opened.id == "ws1" and opened.version == "1.0"
    assert isinstance(features, Features)
    assert find_child(features.element, NS_SASL, "mechanisms") is not None

    (success,) = core.receive_data(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
    assert isinstance(success, StanzaReceived)
    core.open("localhost")
    events = core.receive_data(frames[0]) + core.receive_data(
        b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
        b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
    )
    assert [type(e) for e in events] == [StreamOpened, Features]

    iq = element(qn(NS_CLIENT, "iq"), {"type": "set", "id": "bind_1"}, element(qn(NS_BIND, "bind")))
    # Every frame stands alone, so the content namespace is explicit.
    assert core.send(iq) == (
        b'<iq xmlns="jabber:client" type="set" id="bind_1">'
        b'<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>'
    )
    (result,) = core.receive_data(f"<iq xmlns='jabber:client' {BIND_RESULT[4:]}".encode())
    assert isinstance(result, StanzaReceived) and result.element.tag == qn(NS_CLIENT, "iq")
    (msg,) = core.receive_data("<message xmlns='jabber:client'><body>ü😀</body></message>".encode())
    assert msg.element[0].text == "ü😀"
    # Without an explicit xmlns a frame's stanza is still in the content namespace.
    (bare,) = core.receive_data(b"<presence/>")
    assert bare.element.tag == qn(NS_CLIENT, "presence")

    (closed,) = core.receive_data(b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
    assert isinstance(closed, StreamClosed)
    assert core.close() == b'<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>'


def test_websocket_stanza_before_open_is_rejected() -> None:
    core = XmlStream(framing=Framing.WEBSOCKET)
    core.open("localhost")
    (violation,) = core.receive_data(b"<iq xmlns='jabber:client' type='get'/>")
    assert isinstance(violation, ProtocolViolation) and violation.condition == "bad-format"
    assert violation.data_to_send.endswith(b'<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>')


def test_websocket_stray_end_tag_is_not_well_formed() -> None:
    core = XmlStream(framing=Framing.WEBSOCKET)
    core.open("localhost")
    (violation,) = core.receive_data(b"</stream:stream>")
    assert isinstance(violation, ProtocolViolation) and violation.condition == "not-well-formed"


def test_stream_error_from_the_peer() -> None:
    core = XmlStream()
    core.open("localhost")
    core.receive_data(SERVER_HEADER.format(id="e").encode())
    events = core.receive_data(
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Replaced by new "
        b"connection</text></stream:error></stream:stream>"
    )
    error, closed = events
    assert isinstance(error, StreamErrorReceived)
    assert (error.condition, error.text) == ("conflict", "Replaced by new connection")
    assert isinstance(closed, StreamClosed)


def test_stream_error_without_condition_and_over_websocket() -> None:
    core = XmlStream()
    core.open("localhost")
    core.receive_data(SERVER_HEADER.format(id="e").encode())
    (error,) = core.receive_data(b"<stream:error/>")
    assert isinstance(error, StreamErrorReceived)
    assert (error.condition, error.text) == ("undefined-condition", None)

    ws = XmlStream(framing=Framing.WEBSOCKET)
    ws.open("localhost")
    ws.receive_data(b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='1'/>")
    (error,) = ws.receive_data(
        b"<stream:error xmlns:stream='http://etherx.jabber.org/streams'>"
        b"<system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    )
    assert isinstance(error, StreamErrorReceived) and error.condition == "system-shutdown"


def test_our_stream_error() -> None:
    core = XmlStream()
    core.open("localhost")
    data = core.error("policy-violation", "too <big> & \x01 bad")
    assert data == (
        b'<stream:error xmlns:stream="http://etherx.jabber.org/streams">'
        b'<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>'
        b'<text xmlns="urn:ietf:params:xml:ns:xmpp-streams">too &lt;big&gt; &amp; ? bad</text>'
        b"</stream:error></stream:stream>"
    )
    assert core.closed and core.error("conflict") == b"" and core.close() == b""
    assert core.receive_data(SERVER_HEADER.format(id="x").encode()) == []
    with pytest.raises(ValueError):
        XmlStream().error("no-such-condition")


def test_events_before_a_violation_are_kept() -> None:
    core = XmlStream()
    core.open("localhost")
    events = core.receive_data(
        (SERVER_HEADER.format(id="v") + "<iq type='get' id='1'/><iq type='get' id='2'/><bad<")
        .encode()
    )
    assert [type(e) for e in events] == [StreamOpened, StanzaReceived, StanzaReceived,
                                         ProtocolViolation]
    assert events[-1].condition == "not-well-formed"
    assert core.receive_data(b"<iq/>") == []


def test_keepalives_never_add_up_to_a_violation() -> None:
    from jicofo.xmpp.stream import ParserLimits

    core = XmlStream(limits=ParserLimits(max_stanza_bytes=1000))
    core.open("localhost")
    core.receive_data(SERVER_HEADER.format(id="k").encode())
    for _ in range(3000):
        assert core.receive_data(b" ") == []
    (stanza,) = core.receive_data(b"<iq type='get' id='1'/>")
    assert isinstance(stanza, StanzaReceived)


def test_send_serializes_with_the_content_namespace() -> None:
    core = XmlStream(content_ns=NS_COMPONENT)
    msg = element(qn(NS_COMPONENT, "message"), {"to": "a@b"}, element(qn(NS_CLIENT, "x")))
    assert core.send(msg) == b'<message to="a@b"><x xmlns="jabber:client"/></message>'
    with pytest.raises(ValueError):
        core.send(Element("bad\x00"))


# --- split invariance ---------------------------------------------------------------------

TRANSCRIPT = (
    SERVER_HEADER.format(id="split") + BIND_FEATURES + BIND_RESULT + STANZAS
    + "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
    "ö.example:5222</see-other-host><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
    "Bitte woanders verbinden ✈</text></stream:error></stream:stream>"
).encode()


def feed(chunks: list[bytes]) -> list[Event]:
    core = XmlStream()
    core.open("localhost")
    return [event for chunk in chunks for event in core.receive_data(chunk)]


WHOLE = describe(feed([TRANSCRIPT]))


def test_whole_transcript_events() -> None:
    kinds = [kind for kind, _ in WHOLE]
    assert kinds == ["open", "Features", "StanzaReceived", "StanzaReceived", "StanzaReceived",
                     "StanzaReceived", "StanzaReceived", "StreamErrorReceived", "StreamClosed"]


def test_byte_at_a_time_gives_the_same_events() -> None:
    assert describe(feed([TRANSCRIPT[i : i + 1] for i in range(len(TRANSCRIPT))])) == WHOLE


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(TRANSCRIPT)), max_size=40))
def test_random_splits_give_the_same_events(cuts: list[int]) -> None:
    points = [0, *sorted(set(cuts)), len(TRANSCRIPT)]
    chunks = [TRANSCRIPT[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert describe(feed(chunks)) == WHOLE


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_bytes_never_raise(chunks: list[bytes]) -> None:
    core = XmlStream()
    core.open("localhost")
    violated = False
    for chunk in [SERVER_HEADER.format(id="f").encode(), *chunks]:
        events = core.receive_data(chunk)
        if violated:
            assert events == []
        violated = violated or any(isinstance(e, ProtocolViolation) for e in events)
