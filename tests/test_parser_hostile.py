"""Hostile input: a stanza over a per-stanza limit is skipped and the stream goes on; input that
breaks the stream gets the right stream error. Memory stays bounded either way."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterable

import pytest

from jicofo.xmpp.stream import (
    Framing,
    ParserLimits,
    ProtocolViolation,
    StanzaReceived,
    StanzaRejected,
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


AFTER = b"<message id='after'><body>still here</body></message>"


def skipped(reason: str, *chunks: bytes, framing: Framing = Framing.TCP,
            limits: ParserLimits | None = None, peak_limit: int = 3 * 1024 * 1024,
            after: bytes = AFTER) -> StanzaRejected:
    """Feed the chunks, then a good stanza: the bad one is skipped (reported once, with its
    routing attributes), the good one still arrives, the stream stays open, memory stays small."""
    core = XmlStream(framing=framing, limits=limits or ParserLimits())
    core.open("localhost")
    tracemalloc.start()
    try:
        events = [event for chunk in (*chunks, after) for event in core.receive_data(chunk)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    kinds = [type(e) for e in events if not isinstance(e, StreamOpened)]
    assert kinds == [StanzaRejected, StanzaReceived], events
    rejected = next(e for e in events if isinstance(e, StanzaRejected))
    assert reason in rejected.reason
    assert events[-1].element.get("id") == "after"  # type: ignore[union-attr]
    assert not core.closed and not core.peer_closed
    assert peak < peak_limit, f"peak {peak} bytes"
    return rejected


def test_ten_megabyte_text_at_once_is_skipped() -> None:
    data = HEADER + b"<message id='big'><body>" + b"A" * TEN_MB + b"</body></message>"
    rejected = skipped("524288 bytes", data)
    assert rejected.attrs == {"id": "big"}


def test_ten_megabyte_multibyte_text_in_chunks_is_skipped() -> None:
    data = HEADER + b"<message><body>" + "日本語".encode() * (TEN_MB // 9) + b"</body></message>"
    skipped("bytes", *[data[i : i + 100_000] for i in range(0, len(data), 100_000)])


def test_text_that_prosody_re_escapes_is_skipped() -> None:
    # 240 KB of ' as a client sends it becomes 1.4 MB of &apos; once Prosody re-serializes it.
    data = HEADER + b"<message type='groupchat'><body>" + b"&apos;" * 240_000 + b"</body></message>"
    skipped("bytes", *[data[i : i + 16_384] for i in range(0, len(data), 16_384)])


def test_a_start_tag_over_the_stanza_limit_is_skipped_once_whole() -> None:
    data = HEADER + b"<iq type='set' id='q1' from='a@b/c' x='" + b"&quot;" * 150_000 + b"'><q/></iq>"
    rejected = skipped("bytes", *[data[i : i + 8192] for i in range(0, len(data), 8192)])
    assert rejected.attrs == {"type": "set", "id": "q1", "from": "a@b/c"}


def test_a_tag_too_large_to_skip_breaks_the_stream() -> None:
    # A tag must be held whole until it ends; beyond max_tag_bytes that is not bounded memory.
    limits = ParserLimits(max_tag_bytes=1024 * 1024)
    data = HEADER + b"<message to='" + b"x" * TEN_MB + b"'/>"
    expect("policy-violation", data, limits=limits)
    violation = expect("policy-violation", *[data[i : i + 8192] for i in range(0, len(data), 8192)],
                       limits=limits)
    assert "tag exceeds" in violation.text


def test_many_small_children_add_up_to_a_skipped_stanza() -> None:
    # Tiny elements cost far more as Element objects than as bytes (~30x), so memory is bounded
    # by the stanza limit, not by the input: with a 64 KiB limit a 10 MB flood stays small.
    data = HEADER + b"<message>" + b"<x a='1'/>" * (TEN_MB // 10) + b"</message>"
    skipped("bytes", data, limits=ParserLimits(max_stanza_bytes=64 * 1024))


def test_unterminated_header_is_a_policy_violation() -> None:
    data = b"<stream:stream xmlns='jabber:client' " + b"a='b' " * 1_000_000
    expect("policy-violation", data)


def test_ten_thousand_deep_nesting_is_skipped() -> None:
    data = HEADER + b"<iq type='get' id='d'>" + b"<x>" * 10_000 + b"</x>" * 10_000 + b"</iq>"
    rejected = skipped("deeper than 64", data)
    assert rejected.kind == "iq" and rejected.attrs == {"type": "get", "id": "d"}


def test_depth_limit_is_exact() -> None:
    limits = ParserLimits(max_depth=4)
    core = XmlStream(limits=limits)
    core.open("localhost")
    events = core.receive_data(HEADER + b"<iq><a><b><c/></b></a></iq>")
    assert [type(e) for e in events] == [StreamOpened, StanzaReceived]
    skipped("deeper than 4", HEADER + b"<iq><a><b><c><d/></c></b></a></iq>", limits=limits)


def test_too_many_attributes_are_skipped() -> None:
    def attrs(n: int) -> bytes:
        return b" ".join(b"a%d='v'" % i for i in range(n))

    core = XmlStream()
    core.open("localhost")
    events = core.receive_data(HEADER + b"<presence " + attrs(64) + b"/>")
    assert [type(e) for e in events] == [StreamOpened, StanzaReceived]
    skipped("attributes", HEADER + b"<presence " + attrs(65) + b"/>")
    decls = b" ".join(b"xmlns:p%d='urn:%d'" % (i, i) for i in range(100))
    skipped("attributes", HEADER + b"<presence " + decls + b"/>")
    skipped("attributes", HEADER + b"<presence><x " + attrs(2_000) + b"/></presence>")
    # The most attributes Prosody relays in one tag (256 KiB from a client): expat hands them over
    # as one dict before we can count them, so memory is bounded by the tag size, not by us.
    skipped("attributes", HEADER + b"<presence><x " + attrs(40_000) + b"/></presence>",
            peak_limit=16 * 1024 * 1024)
    # The stream header itself is not a stanza: too many attributes there end the stream.
    expect("policy-violation", HEADER[:-1] + b" " + attrs(70) + b">")


def test_stanza_limit_is_exact() -> None:
    limits = ParserLimits(max_stanza_bytes=200)
    stanza = b"<message><body>" + b"x" * 150 + b"</body></message>"
    core = XmlStream(limits=limits)
    core.open("localhost")
    events = core.receive_data(HEADER) + core.receive_data(stanza * 3)
    assert [type(e) for e in events] == [StreamOpened] + [StanzaReceived] * 3
    skipped("200 bytes", HEADER, b"<message><body>" + b"x" * 250 + b"</body></message>",
            limits=limits)


def test_a_skipped_websocket_frame_leaves_the_next_one() -> None:
    opened = b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='w' version='1.0'/>"
    deep = b"<iq xmlns='jabber:client' type='set' id='w1'>" + b"<x>" * 100 + b"</x>" * 100 + b"</iq>"
    after = b"<message xmlns='jabber:client' id='after'/>"
    rejected = skipped("deeper", opened, deep, framing=Framing.WEBSOCKET, after=after)
    assert rejected.attrs == {"type": "set", "id": "w1"}


def test_stream_elements_over_a_limit_still_break_the_stream() -> None:
    features = b"<stream:features>" + b"<x>" * 100 + b"</x>" * 100 + b"</stream:features>"
    expect("policy-violation", HEADER + features)


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
    body = b"<message>" + b"<x a='1'/>" * 40_000 + b"</message>"
    skipped("more than 1000 elements", HEADER, body, limits=ParserLimits(max_elements=1000))
