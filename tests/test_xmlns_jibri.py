"""Jibri and Rayo XML (jicofo/xmlns/jibri.py, rayo.py): round trips and the bounds on what a
member or an instance may send."""

from __future__ import annotations

import pytest

from jicofo.xmlns.jibri import (
    MAX_APP_DATA,
    MAX_VALUE,
    Action,
    FailureReason,
    JibriInstanceStatus,
    JibriIQ,
    JibriParseError,
    RecordingMode,
    Status,
    recording_status,
)
from jicofo.xmlns.rayo import MAX_HEADERS, DialIQ, DialParseError
from jicofo.xmpp.xml import parse_fragment, serialize


def test_round_trip_and_upstream_attribute_names() -> None:
    iq = JibriIQ(action=Action.START, recording_mode=RecordingMode.STREAM, stream_id="key",
                 youtube_broadcast_id="b", session_id="s", app_data="{}", room="r@c", rtcstats_enabled=True)
    text = serialize(iq.to_element())
    for name in ("action=", "recording_mode=", "streamid=", "you_tube_broadcast_id=", "session_id=",
                 "app_data=", "room=", "rtcstats_enabled="):
        assert name in text
    assert JibriIQ.from_element(parse_fragment(text)) == iq
    failed = JibriIQ.from_element(parse_fragment(
        "<jibri xmlns='http://jitsi.org/protocol/jibri' status='OFF' failure_reason='error'"
        " should_retry='true'/>"))
    assert (failed.status, failed.failure_reason, failed.should_retry) == \
        (Status.OFF, FailureReason.ERROR, True)


@pytest.mark.parametrize("xml", [
    f"<jibri xmlns='http://jitsi.org/protocol/jibri' streamid='{'x' * (MAX_VALUE + 1)}'/>",
    f"<jibri xmlns='http://jitsi.org/protocol/jibri' app_data='{'x' * (MAX_APP_DATA + 1)}'/>",
    "<jibri xmlns='http://jitsi.org/protocol/jibri' action='explode'/>",
    "<jibri xmlns='http://jitsi.org/protocol/jibri' should_retry='maybe'/>",
    "<jibri xmlns='urn:other'/>",
])
def test_bad_content_is_refused_without_quoting_it(xml: str) -> None:
    with pytest.raises(JibriParseError) as caught:
        JibriIQ.from_element(parse_fragment(xml))
    assert "xxxx" not in str(caught.value) and "explode" not in str(caught.value)


def test_instance_status_and_presence_extension() -> None:
    idle = JibriInstanceStatus.from_element(JibriInstanceStatus("idle", "healthy").to_element())
    assert idle.available
    assert not JibriInstanceStatus("busy", "healthy").available
    assert not JibriInstanceStatus.from_element(
        parse_fragment("<jibri-status xmlns='http://jitsi.org/protocol/jibri'/>")).available
    el = recording_status(Status.OFF, "s", mode=RecordingMode.FILE, initiator=None,
                          failure=FailureReason.ERROR)
    assert el.attrib == {"status": "off", "session_id": "s", "recording_mode": "file",
                         "failure_reason": "error"}


def test_dial() -> None:
    dial = DialIQ.from_element(parse_fragment(
        "<dial xmlns='urn:xmpp:rayo:1' to='jitsi_meet_transcribe' from='x'>"
        "<header name='JvbRoomName' value='r@c'/></dial>"))
    assert dial.transcriber and dial.header("JvbRoomName") == "r@c" and dial.header("other") is None
    many = "".join(f"<header name='h{i}' value='v'/>" for i in range(MAX_HEADERS + 1))
    with pytest.raises(DialParseError):
        DialIQ.from_element(parse_fragment(f"<dial xmlns='urn:xmpp:rayo:1' to='1'>{many}</dial>"))
    with pytest.raises(DialParseError):
        DialIQ.from_element(parse_fragment(f"<dial xmlns='urn:xmpp:rayo:1' to='{'9' * 2000}'/>"))
