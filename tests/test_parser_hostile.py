"""Hostile input: each case is rejected with the right stream error, with bounded memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterable

import pytest

from jicofo.xmpp.stream import (
    Framing,
    ParserLimits,
    ProtocolViolation,
    StanzaReceived,
    StreamOpened,
    XmlStream,
)

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' id='h' from='localhost' version='1.0'>"
)
TEN_MB = 10 * 1024 * 1024

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams'><message><body>&lol9;</body></message>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE stream [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    b"<message><body>&xxe;</body></message>"
)


def run(chunks: Iterable[bytes], *, framing: Framing = Framing.TCP,
        limits: ParserLimits | None = None) -> tuple[ProtocolViolation, int]:
    """Feed the chunks after our header; return the violation and the traced memory peak."""
    core = XmlStream(framing=framing, limits=limits or ParserLimits())
    core.open("localhost")
    tracemalloc.start()
    try:
        events = [event for chunk in chunks for event in core.receive_data(chunk)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    violations = [e for e in events if isinstance(e, ProtocolViolation)]
    assert len(violations) == 1, events
    assert events[-1] is violations[0], "nothing may follow a violation"
    assert core.closed
    return violations[0], peak


def expect(condition: str, *chunks: bytes, **kwargs: object) -> ProtocolViolation:
    violation, peak = run(chunks, **kwargs)  # type: ignore[arg-type]
    assert violation.condition == condition, violation
    assert f"<{condition} ".encode() in violation.data_to_send
    assert peak < 3 * 1024 * 1024, f"peak {peak} bytes"
    return violation


def test_billion_laughs_is_restricted_xml() -> None:
    violation = expect("restricted-xml", BILLION_LAUGHS)
    assert b"lol" not in violation.data_to_send


def test_external_entity_is_restricted_xml() -> None:
    violation = expect("restricted-xml", EXTERNAL_ENTITY)
    assert b"root:" not in violation.data_to_send


def test_doctype_in_the_prolog_is_restricted_xml() -> None:
    expect("restricted-xml", b"<?xml version='1.0'?><!DOCTYPE stream:stream>" + HEADER[21:])


@pytest.mark.parametrize("split", [None, 1, 3])
def test_doctype_inside_the_stream_is_restricted_xml(split: int | None) -> None:
    payload = b"<message><!DOCTYPE x [<!ENTITY a 'b'>]></message>"
    data = HEADER + payload
    chunks = [data] if split is None else [data[i : i + split] for i in range(0, len(data), split)]
    expect("restricted-xml", *chunks)


def test_doctype_in_a_websocket_frame_is_restricted_xml() -> None:
    expect("restricted-xml",
           b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='1' version='1.0'/>",
           BILLION_LAUGHS.split(b"?>", 1)[1], framing=Framing.WEBSOCKET)


def test_undeclared_entity_reference_is_restricted_xml() -> None:
    expect("restricted-xml", HEADER + b"<message><body>&xxe;</body></message>")


@pytest.mark.parametrize(
    "payload",
    [b"<?php evil() ?>", b"<message><?pi data?></message>", b"<iq><!-- hidden --></iq>"],
)
def test_processing_instructions_and_comments_are_restricted_xml(payload: bytes) -> None:
    expect("restricted-xml", HEADER + payload)


def test_ten_megabyte_text_at_once_is_a_policy_violation() -> None:
    data = HEADER + b"<message><body>" + b"A" * TEN_MB + b"</body></message>"
    violation = expect("policy-violation", data)
    assert "524288" in violation.text


def test_ten_megabyte_multibyte_text_in_chunks_is_a_policy_violation() -> None:
    data = HEADER + b"<message><body>" + "日本語".encode() * (TEN_MB // 9) + b"</body></message>"
    chunks = [data[i : i + 100_000] for i in range(0, len(data), 100_000)]
    expect("policy-violation", *chunks)


def test_ten_megabyte_attribute_is_a_policy_violation() -> None:
    data = HEADER + b"<message to='" + b"x" * TEN_MB + b"'/>"
    expect("policy-violation", data)
    expect("policy-violation", *[data[i : i + 8192] for i in range(0, len(data), 8192)])


def test_many_small_children_add_up_to_a_policy_violation() -> None:
    # Tiny elements cost far more as Element objects than as bytes (~30x), so memory is bounded
    # by the stanza limit, not by the input: with a 64 KiB limit a 10 MB flood stays small.
    data = HEADER + b"<message>" + b"<x a='1'/>" * (TEN_MB // 10) + b"</message>"
    expect("policy-violation", data, limits=ParserLimits(max_stanza_bytes=64 * 1024))


def test_unterminated_header_is_a_policy_violation() -> None:
    data = b"<stream:stream xmlns='jabber:client' " + b"a='b' " * 1_000_000
    expect("policy-violation", data)


def test_ten_thousand_deep_nesting_is_a_policy_violation() -> None:
    data = HEADER + b"<message>" + b"<x>" * 10_000 + b"</x>" * 10_000 + b"</message>"
    violation = expect("policy-violation", data)
    assert "deeper than 64" in violation.text


def test_depth_limit_is_exact() -> None:
    limits = ParserLimits(max_depth=4)
    core = XmlStream(limits=limits)
    core.open("localhost")
    events = core.receive_data(HEADER + b"<iq><a><b><c/></b></a></iq>")
    assert [type(e) for e in events] == [StreamOpened, StanzaReceived]
    expect("policy-violation", HEADER + b"<iq><a><b><c><d/></c></b></a></iq>", limits=limits)


def test_too_many_attributes_is_a_policy_violation() -> None:
    def attrs(n: int) -> bytes:
        return b" ".join(b"a%d='v'" % i for i in range(n))

    core = XmlStream()
    core.open("localhost")
    events = core.receive_data(HEADER + b"<presence " + attrs(64) + b"/>")
    assert [type(e) for e in events] == [StreamOpened, StanzaReceived]
    expect("policy-violation", HEADER + b"<presence " + attrs(65) + b"/>")
    decls = b" ".join(b"xmlns:p%d='urn:%d'" % (i, i) for i in range(100))
    expect("policy-violation", HEADER + b"<presence " + decls + b"/>")
    expect("policy-violation", HEADER + b"<presence " + attrs(100_000) + b"/>")


def test_stanza_limit_is_exact() -> None:
    limits = ParserLimits(max_stanza_bytes=200)
    stanza = b"<message><body>" + b"x" * 150 + b"</body></message>"
    core = XmlStream(limits=limits)
    core.open("localhost")
    events = core.receive_data(HEADER) + core.receive_data(stanza * 3)
    assert [type(e) for e in events] == [StreamOpened] + [StanzaReceived] * 3
    expect("policy-violation", HEADER, b"<message><body>" + b"x" * 250 + b"</body></message>",
           limits=limits)


@pytest.mark.parametrize(
    "bad",
    [
        b"\xff",
        b"\xc0\x80",  # overlong NUL
        b"\xed\xa0\x80",  # UTF-16 surrogate
        b"\xf4\x90\x80\x80",  # beyond U+10FFFF
        b"\xe6\x97",  # truncated, then markup
        b"&#0;",
        b"\x01",
    ],
)
def test_invalid_utf8_and_characters_are_not_well_formed(bad: bytes) -> None:
    expect("not-well-formed", HEADER + b"<message><body>" + bad + b"</body></message>")


def test_invalid_utf8_in_the_header_is_not_well_formed() -> None:
    expect("not-well-formed", HEADER[:-1] + b" x='\xff'>")


def test_unbound_prefix_is_not_well_formed() -> None:
    expect("not-well-formed", HEADER + b"<iq><evil:thing/></iq>")


@pytest.mark.parametrize(
    "payload",
    [b"<iq></message>", b"<iq a='1' a='2'/>", b"<<<", b"<iq>\x00</iq>", b"<?xml version='1.0'?>"],
)
def test_malformed_xml_is_not_well_formed(payload: bytes) -> None:
    expect("not-well-formed", HEADER + payload)


def test_many_tiny_elements_are_bounded_by_an_element_count() -> None:
    import tracemalloc

    from jicofo.xmpp.stream import ParserLimits, ProtocolViolation, XmlStream

    stream = XmlStream(limits=ParserLimits(max_elements=1000))
    stream.open("example.com")
    header = (b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
              b" id='s' version='1.0'>")
    body = b"<message>" + b"<x a='1'/>" * 40_000 + b"</message>"
    tracemalloc.start()
    events = stream.receive_data(header) + stream.receive_data(body)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    violations = [e for e in events if isinstance(e, ProtocolViolation)]
    assert violations and violations[0].condition == "policy-violation"
    assert "elements" in violations[0].text
    assert peak < 3 * 1024 * 1024
