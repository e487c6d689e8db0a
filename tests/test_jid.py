from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jicofo.xmpp.jid import JID, InvalidJID

VALID = [
    # text, local, domain, resource
    ("example.com", None, "example.com", None),
    ("user@example.com", "user", "example.com", None),
    ("user@example.com/res", "user", "example.com", "res"),
    ("example.com/res", None, "example.com", "res"),
    ("User@EXAMPLE.com", "user", "example.com", None),
    ("user@example.com.", "user", "example.com", None),
    ("user@example.com./r", "user", "example.com", "r"),
    ("focus@auth.meet.jitsi/focus", "focus", "auth.meet.jitsi", "focus"),
    ("room@conference.example.com/Nick With Spaces", "room", "conference.example.com",
     "Nick With Spaces"),
    ("room@muc.example.com/a@b/c", "room", "muc.example.com", "a@b/c"),
    ("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"),
    ("a/b@c", None, "a", "b@c"),
    ("1.2.3.4", None, "1.2.3.4", None),
    ("u@[2001:DB8:0::1]/r", "u", "[2001:db8::1]", "r"),
    ("u@[::1]", "u", "[::1]", None),
    ("\uff2a\uff35\uff2c@example.com", "jul", "example.com", None),  # fullwidth → ASCII
    ("ΣΑΣ@example.com", "σασ", "example.com", None),
    ("u@bücher.example", "u", "bücher.example", None),
    ("u@xn--bcher-kva.example", "u", "bücher.example", None),
    ("u@BÜCHER.example", "u", "bücher.example", None),
    ("u@example\u3002com", "u", "example.com", None),
    ("u@a-b.example", "u", "a-b.example", None),
    ("u@example.com/\u2163", "u", "example.com", "\u2163"),  # resource is not width-mapped
    ("u@example.com/e\u0301", "u", "example.com", "\u00e9"),  # but is NFC
    ("u@example.com/🎉 party", "u", "example.com", "🎉 party"),
    ("x" * 1023 + "@example.com", "x" * 1023, "example.com", None),
    ("u@example.com/" + "é" * 511, "u", "example.com", "é" * 511),
]

INVALID = [
    ("", "domainpart"),
    ("@example.com", "localpart"),
    ("user@", "domainpart"),
    ("user@/res", "domainpart"),
    ("user@example.com/", "resourcepart"),
    ("/res", "domainpart"),
    ("us er@example.com", "localpart"),
    ("us\ter@example.com", "localpart"),
    ("us\u00a0er@example.com", "localpart"),
    ('us"er@example.com', "localpart"),
    ("us&er@example.com", "localpart"),
    ("us'er@example.com", "localpart"),
    ("us:er@example.com", "localpart"),
    ("us<er@example.com", "localpart"),
    ("us>er@example.com", "localpart"),
    ("a@b@example.com", "domainpart"),
    ("x" * 1024 + "@example.com", "localpart"),
    ("u@exa mple.com", "domainpart"),
    ("u@exa_mple.com", "domainpart"),
    ("u@example..com", "domainpart"),
    ("u@.example.com", "domainpart"),
    ("u@-example.com", "domainpart"),
    ("u@example-.com", "domainpart"),
    ("u@" + "a" * 64 + ".com", "domainpart"),
    ("u@" + ".".join(["a" * 63] * 17), "domainpart"),
    ("u@.", "domainpart"),
    ("u@[::1", "domainpart"),
    ("u@[not-an-ip]", "domainpart"),
    ("u@[fe80::1%eth0]", "domainpart"),
    ("u@xn--a.com", "domainpart"),
    ("u@xn--abc-.com", "domainpart"),
    ("u@example.com/a\x00b", "resourcepart"),
    ("u@example.com/a\x7fb", "resourcepart"),
    ("u@example.com/\ud800", "resourcepart"),
    ("u@example.com/" + "é" * 512, "resourcepart"),
]


@pytest.mark.parametrize(("text", "local", "domain", "resource"), VALID)
def test_valid(text: str, local: str | None, domain: str, resource: str | None) -> None:
    jid = JID.parse(text)
    assert (jid.local, jid.domain, jid.resource) == (local, domain, resource)
    assert JID.parse(str(jid)) == jid


@pytest.mark.parametrize(("text", "part"), INVALID)
def test_invalid(text: str, part: str) -> None:
    with pytest.raises(InvalidJID, match=part):
        JID.parse(text)


def test_invalid_jid_is_a_value_error() -> None:
    assert issubclass(InvalidJID, ValueError)


def test_str_forms() -> None:
    assert str(JID.parse("a@b/c")) == "a@b/c"
    assert str(JID.parse("a@b")) == "a@b"
    assert str(JID.parse("b/c")) == "b/c"
    assert str(JID.parse("b")) == "b"


def test_bare_full_and_with_resource() -> None:
    full = JID.parse("Room@Conference.Example.com/Nick")
    assert full.is_full and not full.is_bare
    bare = full.bare
    assert bare == JID.parse("room@conference.example.com")
    assert bare.is_bare and not bare.is_full
    assert bare.bare is bare
    assert bare.with_resource("Nick") == full
    assert bare.with_resource("e\u0301").resource == "\u00e9"
    with pytest.raises(InvalidJID, match="resourcepart"):
        bare.with_resource("")


def test_equality_and_hash_use_normalised_parts() -> None:
    a = JID.parse("USER@Example.COM/r")
    b = JID.make("user", "example.com.", "r")
    c = JID("User", "EXAMPLE.com", "r")
    assert a == b == c
    assert len({a, b, c}) == 1
    assert JID.parse("u@d/R") != JID.parse("u@d/r")  # resources are case-sensitive


def test_make_validates() -> None:
    assert JID.make(None, "example.com") == JID.parse("example.com")
    with pytest.raises(InvalidJID, match="localpart"):
        JID.make("", "example.com")
    with pytest.raises(InvalidJID, match="localpart"):
        JID.make("a@b", "example.com")
    with pytest.raises(InvalidJID, match="domainpart"):
        JID.make("a", "")


def test_frozen() -> None:
    jid = JID.parse("a@b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        jid.local = "c"  # type: ignore[misc]


def test_parse_is_cached() -> None:
    assert JID.parse("cache@example.com/x") is JID.parse("cache@example.com/x")


# Characters from every interesting class: ASCII, separators, forbidden ones, whitespace,
# compatibility forms, combining marks, IDNA dots, non-ASCII letters, controls.
_ALPHABET = st.sampled_from(
    list("abcXYZ019-._@/:&'\"<> \t")
    + ["\u00df", "\u0130", "\u03a3", "\u00e9", "e\u0301", "\ufb00", "\uff21", "\u2163",
       "\u3002", "\uff0e", "\u00a0", "\u0000", "\u200b", "\u01c5", "\u1e9e", "\U0001f389",
       "\u0345", "\u03c2", "\u1f80"]
)
_texts = st.lists(_ALPHABET, max_size=30).map("".join)
_any_text = st.one_of(_texts, st.text(max_size=40))


@given(_any_text)
def test_parse_is_idempotent(text: str) -> None:
    try:
        jid = JID.parse(text)
    except InvalidJID:
        return
    again = JID.parse(str(jid))
    assert again == jid
    assert str(again) == str(jid)
    assert JID(jid.local, jid.domain, jid.resource) == jid


_local_chars = st.sampled_from(list("abcdxyz0189-._") + ["\u00e9", "\u03c3", "\u4e2d"])
_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(
    st.one_of(st.none(), st.lists(_local_chars, min_size=1, max_size=20).map("".join)),
    st.lists(_labels, min_size=1, max_size=4).map(".".join),
    st.one_of(st.none(), st.text(min_size=1, max_size=20).filter(
        lambda r: all(ord(c) >= 0x20 and not 0x7F <= ord(c) < 0xA0 and not 0xD800 <= ord(c)
                      < 0xE000 for c in r))),
)
def test_str_round_trips(local: str | None, domain: str, resource: str | None) -> None:
    jid = JID.make(local, domain, resource)
    assert JID.parse(str(jid)) == jid
    assert jid.local == local
    assert jid.domain == domain
    assert jid.bare.with_resource(resource) == jid if resource is not None else jid.is_bare
