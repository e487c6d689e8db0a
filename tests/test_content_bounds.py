"""Bounded parsers of stanza content: the one JSON decoder, canonical SSRCs, and the containment
rule for stanzas (jicofo/xmlns/bounded_json.py, jicofo/xmlns/attributes.py,
jicofo/xmpp/containment.py)."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jicofo.model.sources_json import decode_json as decode_sources
from jicofo.xmlns.attributes import parse_ssrc
from jicofo.xmlns.bounded_json import (
    MAX_DEPTH,
    MEMBER_SOURCES_MAX_CHARS,
    SOURCE_INFO_MAX_CHARS,
    JsonContentError,
    decode_json,
    nesting_depth,
)
from jicofo.xmlns.jingle import JingleIQ
from jicofo.xmlns.presence_ext import MemberPresence, SourceInfo
from jicofo.xmpp.containment import MalformedStanza, contain_stanza
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.xml import parse_fragment

BIG = 64 * 1024


# ----- the bounded JSON decoder ---------------------------------------------------------------


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_depth_5000_is_refused_not_recursed(opener: str) -> None:
    text = opener * 5000 + "1" + ("]" if opener == "[" else "}") * 5000
    with pytest.raises(JsonContentError, match="nested deeper"):
        decode_json(text, max_chars=BIG)
    # Also unclosed, and with the brackets hidden behind an unterminated string's tail.
    with pytest.raises(JsonContentError):
        decode_json(opener * 5000, max_chars=BIG)


def test_depth_limit_is_exact() -> None:
    assert decode_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, max_chars=BIG) is not None
    with pytest.raises(JsonContentError, match="nested deeper"):
        decode_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), max_chars=BIG)


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = json.dumps({"a": "[" * 5000, "b": ['\\"[[[[{{{{']})
    assert nesting_depth(text) == 2
    assert decode_json(text, max_chars=BIG) == json.loads(text)


def test_size_limit_checked_first() -> None:
    huge = '{"x":"' + "a" * (10 * 1024 * 1024) + '"}'
    started = time.perf_counter()
    with pytest.raises(JsonContentError, match="exceeds"):
        decode_json(huge, max_chars=SOURCE_INFO_MAX_CHARS)
    with pytest.raises(JsonContentError, match="exceeds"):
        decode_json(huge.encode(), max_chars=BIG)
    assert time.perf_counter() - started < 5  # refused on the length, not scanned (generous)


def test_huge_numbers_constants_and_bad_utf8_refused() -> None:
    for text in ("1" * 5000, "[" + "9" * 30 + "]", "NaN", "[Infinity]", "-Infinity"):
        with pytest.raises(JsonContentError):
            decode_json(text, max_chars=BIG)
    with pytest.raises(JsonContentError, match="UTF-8"):
        decode_json(b'{"a":"\xff"}', max_chars=BIG)
    assert decode_json("[4294967295, -1, 1.5]", max_chars=BIG) == [4294967295, -1, 1.5]


def test_pathological_strings_scan_in_linear_time() -> None:
    # Many quote starts with no end: a backtracking tokenizer would take quadratic time here.
    for text in ('"' + '\\"' * 32_000, '"' + '\\"' * 32_000 + "\\", '"\\' * 21_000):
        started = time.perf_counter()
        with pytest.raises(JsonContentError):
            decode_json(text, max_chars=BIG)
        assert time.perf_counter() - started < 2  # milliseconds in practice; generous for CI


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='[]{}"\\:,0123456789-eE.a tnrufl', max_size=300))
def test_any_text_decodes_like_json_or_raises_the_typed_error(text: str) -> None:
    try:
        expected = json.loads(text)
    except (ValueError, RecursionError):
        expected = JsonContentError
    try:
        got = decode_json(text, max_chars=BIG, max_depth=400)
    except JsonContentError:
        got = JsonContentError
    if expected is not JsonContentError and got is JsonContentError:
        # Refused by our stricter rules only: an over-long integer.
        assert re.search(r"[0-9]{21}", text)
    elif got is not JsonContentError:
        assert got == expected


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                max_size=3),
                    max_leaves=30))
def test_valid_documents_within_bounds_decode_unchanged(document: object) -> None:
    text = json.dumps(document)
    if nesting_depth(text) <= MAX_DEPTH:
        assert decode_json(text, max_chars=BIG) == document


# ----- SourceInfo and JSON sources use it -------------------------------------------------------


def _presence(source_info: str) -> MemberPresence:
    el = parse_fragment(
        "<presence xmlns='jabber:client'><stats-id>s1</stats-id>"
        f"<SourceInfo>{source_info}</SourceInfo><audiomuted>false</audiomuted></presence>")
    return MemberPresence.from_element(el)


def test_valid_source_info() -> None:
    presence = _presence('{"ab12-a0":{"muted":false},"ab12-v0":{"muted":true,"videoType":"desktop"}}')
    assert presence.source_info == {"ab12-a0": SourceInfo(False), "ab12-v0": SourceInfo(True, "desktop")}
    assert not presence.audio_muted and presence.video_muted


@pytest.mark.parametrize("bad", [
    "[" * 5000 + "]" * 5000,
    '{"a":' * 5000 + "{}" + "}" * 5000,
    '{"x-a0":{"muted":false,"pad":"' + "p" * SOURCE_INFO_MAX_CHARS + '"}}',
])
def test_source_info_over_bounds_is_read_as_absent_member_kept(bad: str) -> None:
    presence = _presence(bad)
    assert presence.source_info is None
    assert presence.stats_id == "s1" and presence.legacy_audio_muted is False  # the rest is read


def test_member_json_sources_bounded() -> None:
    deep = '{"sources":{"x":' + "[" * 5000 + "]" * 5000 + "}}"
    with pytest.raises(ValueError, match="nested deeper"):
        decode_sources(deep)
    long = '{"sources":{"x":[[{"s":1,"n":"' + "n" * MEMBER_SOURCES_MAX_CHARS + '"}]]}}'
    with pytest.raises(ValueError, match="exceeds"):
        decode_sources(long)
    assert decode_sources(long, max_chars=len(long)).get("x").sources[0].ssrc == 1


# ----- canonical SSRCs ------------------------------------------------------------------------


@pytest.mark.parametrize("text", [" 12 ", "12 ", " 12", "+12", "012", "00", "-1", "-0", "4294967296",
                                  "99999999999", "1_2", "١٢", "", "0x1f", "1e3", "12\n"])
def test_non_canonical_ssrcs_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ssrc(text)


@pytest.mark.parametrize(("text", "value"), [("12", 12), ("0", 0), ("4294967295", 4294967295)])
def test_canonical_ssrcs(text: str, value: int) -> None:
    assert parse_ssrc(text) == value


SSMA = "xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'"


@pytest.mark.parametrize("element", [
    f"<source {SSMA} ssrc=' 12 '/>",
    f"<ssrc-group {SSMA} semantics='FID'><source ssrc='11'/><source ssrc='+12'/></ssrc-group>",
])
def test_jingle_refuses_non_canonical_ssrcs(element: str) -> None:
    text = ("<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'><content name='video'>"
            f"<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>{element}</description>"
            "</content></jingle>")
    with pytest.raises(ValueError, match="canonical decimal"):
        JingleIQ.from_element(parse_fragment(text))


def test_json_sources_ssrc_strings_canonical_only() -> None:
    assert decode_sources('{"sources":{"x":[[{"s":"12"}]]}}').get("x").sources[0].ssrc == 12
    for bad in ('" 12 "', '"012"', '"+1"', "-1", "4294967296", '"4294967296"'):
        with pytest.raises(ValueError):
            decode_sources('{"sources":{"x":[[{"s":' + bad + '}]]}}')
    with pytest.raises(ValueError):
        decode_sources('{"sources":{"x":[[],[["f",1,"02"]]]}}')


# ----- the containment rule -------------------------------------------------------------------


def _stanza(kind: str, type_: str | None = None) -> object:
    attrs = f" type='{type_}'" if type_ else ""
    return parse_fragment(f"<{kind} xmlns='jabber:client' from='room@muc.test/ab12'{attrs}/>")


def test_presence_failure_is_logged_once_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "jicofo.xmpp.containment")
    with contain_stanza(_stanza("presence"), "member presence", endpoint="ab12"):  # type: ignore[arg-type]
        raise RecursionError("maximum recursion depth exceeded")
    lines = [r for r in caplog.records if r.name == "jicofo.xmpp.containment"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    message = lines[0].getMessage()
    assert "room@muc.test/ab12" in message and "RecursionError" in message and "ignored" in message


@pytest.mark.parametrize(("raised", "condition"), [
    (ValueError("bad content"), "bad-request"), (KeyError("x"), "internal-server-error"),
    (RecursionError("deep"), "internal-server-error"), (ExceptionGroup("g", [TypeError()]),
                                                         "internal-server-error"),
])
def test_request_failure_becomes_an_error_reply(raised: Exception, condition: str) -> None:
    with pytest.raises(StanzaError) as refused, contain_stanza(_stanza("iq", "set"), "Jingle IQ"):  # type: ignore[arg-type]
        raise raised
    assert refused.value.condition == condition


def test_deliberate_refusal_passes_unchanged() -> None:
    original = StanzaError("item-not-found", "no such conference")
    with pytest.raises(StanzaError) as refused, contain_stanza(_stanza("iq", "get"), "IQ"):  # type: ignore[arg-type]
        raise original
    assert refused.value is original


def test_answer_failure_is_a_malformed_answer() -> None:
    with pytest.raises(MalformedStanza, match="RuntimeError"), \
            contain_stanza(_stanza("iq", "result"), "Colibri2 answer"):  # type: ignore[arg-type]
        raise RuntimeError("boom")
    assert issubclass(MalformedStanza, ValueError)


class _Stop(Exception):
    pass


def test_control_flow_and_cancellation_propagate() -> None:
    with pytest.raises(_Stop), contain_stanza(_stanza("presence"), "p", keep=(_Stop,)):  # type: ignore[arg-type]
        raise _Stop()
    with pytest.raises(ExceptionGroup), contain_stanza(None, "p", keep=(_Stop,)):
        raise ExceptionGroup("g", [_Stop(), ValueError()])
    with pytest.raises(KeyboardInterrupt), contain_stanza(_stanza("iq", "set"), "p"):  # type: ignore[arg-type]
        raise KeyboardInterrupt  # BaseException, like trio.Cancelled


# ----- the conference MUC ----------------------------------------------------------------------


def _services(muc: str | None) -> object:
    from types import SimpleNamespace
    return SimpleNamespace(config=SimpleNamespace(xmpp=SimpleNamespace(
        client=SimpleNamespace(conference_muc_jid=muc))))


def test_conference_muc_domains() -> None:
    from jicofo.config.model import ConfigError
    from jicofo.focus import conference_muc_domains
    assert conference_muc_domains(_services("Conference.Meet.Example.com")) == {"conference.meet.example.com"}
    assert conference_muc_domains(_services(None)) is None  # nothing configured: unrestricted
    with pytest.raises(ConfigError, match="conference-muc-jid"):
        conference_muc_domains(_services("a@@b"))


@pytest.mark.parametrize(("domain", "allowed"), [
    ("conference.meet.example.com", True),
    ("conference.tenant1.meet.example.com", True),  # a tenant (Jitsi's domain mapper)
    ("conference.a.b.meet.example.com", False),
    ("conference..meet.example.com", False),
    ("evil.example", False),
    ("conference.meet.example.com.evil.example", False),
    ("xconference.meet.example.com", False),
    ("meet.example.com", False),
])
def test_rooms_on_the_conference_muc_or_a_tenant_of_it(domain: str, allowed: bool) -> None:
    from jicofo.focus import room_domain_allowed
    assert room_domain_allowed(domain, frozenset({"conference.meet.example.com"})) is allowed
