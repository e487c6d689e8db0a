from __future__ import annotations

import base64
import traceback
from xml.etree.ElementTree import Element, SubElement

import pytest

from jicofo.xmpp.errors import AuthenticationError
from jicofo.xmpp.sasl import (
    NS_SASL,
    AnonymousMechanism,
    PlainMechanism,
    SaslprepError,
    ScramMechanism,
    choose_mechanism,
    parse_failure,
    saslprep,
)

SECRET = "pencil"

RFC5802_NONCE = "fyko+d2lbbFgONRv9qkxdawL"
RFC5802_SERVER_FIRST = b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
RFC5802_CLIENT_FINAL = (
    b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
)
RFC5802_SERVER_FINAL = b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="

RFC7677_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC7677_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC7677_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC7677_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def rfc5802() -> ScramMechanism:
    return ScramMechanism("sha1", "user", SECRET, nonce=RFC5802_NONCE)


def test_rfc5802_scram_sha1_example() -> None:
    mech = rfc5802()
    assert mech.name == "SCRAM-SHA-1"
    assert mech.initial_response() == b"n,,n=user,r=" + RFC5802_NONCE.encode()
    assert mech.respond(RFC5802_SERVER_FIRST) == RFC5802_CLIENT_FINAL
    mech.verify_success(RFC5802_SERVER_FINAL)


def test_rfc7677_scram_sha256_example() -> None:
    mech = ScramMechanism("sha256", "user", SECRET, nonce=RFC7677_NONCE)
    assert mech.name == "SCRAM-SHA-256"
    assert mech.initial_response() == b"n,,n=user,r=" + RFC7677_NONCE.encode()
    assert mech.respond(RFC7677_SERVER_FIRST) == RFC7677_CLIENT_FINAL
    mech.verify_success(RFC7677_SERVER_FINAL)


def test_server_final_sent_as_challenge_then_empty_success() -> None:
    mech = rfc5802()
    mech.initial_response()
    mech.respond(RFC5802_SERVER_FIRST)
    assert mech.respond(RFC5802_SERVER_FINAL) == b""
    mech.verify_success(None)


def test_wrong_server_signature_is_refused() -> None:
    mech = rfc5802()
    mech.initial_response()
    mech.respond(RFC5802_SERVER_FIRST)
    forged = b"v=" + base64.b64encode(b"\x00" * 20)
    with pytest.raises(AuthenticationError) as info:
        mech.verify_success(forged)
    assert info.value.condition == "server-signature-mismatch"


@pytest.mark.parametrize("data", [None, b"", b"x=1", b"v=not base64!"])
def test_missing_or_malformed_server_signature_is_refused(data: bytes | None) -> None:
    mech = rfc5802()
    mech.initial_response()
    mech.respond(RFC5802_SERVER_FIRST)
    with pytest.raises(AuthenticationError) as info:
        mech.verify_success(data)
    assert info.value.condition in ("server-signature-mismatch", "malformed-server-message")


def test_success_before_the_exchange_is_refused() -> None:
    mech = rfc5802()
    mech.initial_response()
    with pytest.raises(AuthenticationError, match="server-signature-mismatch"):
        mech.verify_success(RFC5802_SERVER_FINAL)


def test_server_error_attribute() -> None:
    mech = rfc5802()
    mech.initial_response()
    mech.respond(RFC5802_SERVER_FIRST)
    with pytest.raises(AuthenticationError) as info:
        mech.verify_success(b"e=invalid-proof")
    assert info.value.condition == "invalid-proof"


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=somebodyelse,s=QSXCR+Q6sek8bf92,i=4096",
        b"r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096",  # not extended
        b"r=fyko+d2lbbFgONRv9qkx,s=QSXCR+Q6sek8bf92,i=4096",  # shorter
        b"s=QSXCR+Q6sek8bf92,i=4096",
    ],
)
def test_server_nonce_must_extend_ours(server_first: bytes) -> None:
    mech = rfc5802()
    mech.initial_response()
    with pytest.raises(AuthenticationError) as info:
        mech.respond(server_first)
    assert info.value.condition == "invalid-server-nonce"


@pytest.mark.parametrize("iterations", [b"0", b"-1", b"1000000000", b"x", b"", b"\xd9\xa1"])
def test_absurd_iteration_count_is_refused(iterations: bytes) -> None:
    mech = rfc5802()
    mech.initial_response()
    server_first = b"r=" + RFC5802_NONCE.encode() + b"srv,s=QSXCR+Q6sek8bf92,i=" + iterations
    with pytest.raises(AuthenticationError) as info:
        mech.respond(server_first)
    assert info.value.condition == "invalid-iteration-count"


def test_iteration_bound_is_configurable() -> None:
    mech = ScramMechanism("sha1", "user", SECRET, nonce=RFC5802_NONCE, max_iterations=4095)
    mech.initial_response()
    with pytest.raises(AuthenticationError, match="invalid-iteration-count"):
        mech.respond(RFC5802_SERVER_FIRST)


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=fyko+d2lbbFgONRv9qkxdawLsrv,s=***,i=4096",
        b"r=fyko+d2lbbFgONRv9qkxdawLsrv,s=,i=4096",
        b"m=ext,r=fyko+d2lbbFgONRv9qkxdawLsrv,s=QSXCR+Q6sek8bf92,i=4096",
        b"garbage",
        b"\xff\xfe",
    ],
)
def test_malformed_server_first_is_refused(server_first: bytes) -> None:
    mech = rfc5802()
    mech.initial_response()
    with pytest.raises(AuthenticationError, match="malformed-server-message"):
        mech.respond(server_first)


def test_challenge_after_verification_is_refused() -> None:
    mech = rfc5802()
    mech.initial_response()
    mech.respond(RFC5802_SERVER_FIRST)
    mech.verify_success(RFC5802_SERVER_FINAL)
    with pytest.raises(AuthenticationError, match="unexpected-challenge"):
        mech.respond(b"r=x")


def test_username_is_prepared_and_escaped() -> None:
    mech = ScramMechanism("sha1", "a=b,c\u00ad", SECRET, nonce="abc")
    assert mech.initial_response() == b"n,,n=a=3Db=2Cc,r=abc"


def test_generated_nonces_differ_and_are_printable() -> None:
    first = ScramMechanism("sha256", "u", SECRET).initial_response()
    second = ScramMechanism("sha256", "u", SECRET).initial_response()
    assert first != second
    assert first is not None and b"," not in first.split(b"r=", 1)[1]


@pytest.mark.parametrize("password", ["pass\x07word", "\u0627\u0031", ""])
def test_bad_password_is_refused_without_revealing_it(password: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        ScramMechanism("sha1", "user", password)
    assert info.value.condition == "invalid-credentials"
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    if password:
        assert password not in str(info.value)
        assert password not in "".join(traceback.format_exception(info.value))


# RFC 4013 §3 examples, plus a few more.
@pytest.mark.parametrize(
    ("text", "prepared"),
    [
        ("I\u00adX", "IX"),
        ("user", "user"),
        ("USER", "USER"),
        ("\u00aa", "a"),
        ("\u2168", "IX"),
        ("a\u00a0b", "a b"),
        ("\u200bab", "ab"),
        ("\u0627\u0628", "\u0627\u0628"),
    ],
)
def test_saslprep(text: str, prepared: str) -> None:
    assert saslprep(text) == prepared


@pytest.mark.parametrize(
    "text", ["\u0007", "\u0627\u0031", "a\ue000", "a\ufffe", "\U000e0001", "a\u2028b", "\u0627a"]
)
def test_saslprep_prohibits(text: str) -> None:
    with pytest.raises(SaslprepError):
        saslprep(text)


def test_saslprep_unassigned() -> None:
    assert saslprep("a\u0221") == "a\u0221"  # unassigned in Unicode 3.2
    with pytest.raises(SaslprepError, match="unassigned"):
        saslprep("a\u0221", allow_unassigned=False)


def test_plain() -> None:
    mech = PlainMechanism("user", SECRET)
    assert mech.name == "PLAIN"
    assert mech.initial_response() == b"\x00user\x00pencil"
    assert PlainMechanism("u", "p", authzid="admin@x").initial_response() == b"admin@x\x00u\x00p"
    mech.verify_success(None)
    with pytest.raises(AuthenticationError, match="unexpected-challenge"):
        mech.respond(b"")
    with pytest.raises(AuthenticationError, match="NUL"):
        PlainMechanism("u", "p\x00q")


def test_anonymous() -> None:
    mech = AnonymousMechanism()
    assert mech.name == "ANONYMOUS"
    assert mech.initial_response() is None
    assert mech.respond(b"") == b""
    mech.verify_success(None)


def test_no_password_in_reprs() -> None:
    for mech in (
        PlainMechanism("user", SECRET),
        ScramMechanism("sha1", "user", SECRET),
        ScramMechanism("sha256", "user", SECRET),
    ):
        assert SECRET not in repr(mech)
        assert SECRET not in str(mech)
        assert "user" in repr(mech)


ALL = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "ANONYMOUS"]


@pytest.mark.parametrize(
    ("offered", "username", "tls", "allow_plain", "expected"),
    [
        (ALL, "u", True, False, "SCRAM-SHA-256"),
        (["PLAIN", "SCRAM-SHA-1"], "u", True, False, "SCRAM-SHA-1"),
        (["PLAIN", "ANONYMOUS"], "u", True, False, "PLAIN"),
        (["PLAIN"], "u", False, True, "PLAIN"),
        (["PLAIN"], "u", False, False, None),
        (["ANONYMOUS"], "u", True, False, None),
        (ALL, None, True, False, "ANONYMOUS"),
        (ALL, None, False, False, "ANONYMOUS"),
        (["SCRAM-SHA-1", "PLAIN"], None, True, False, None),
        ([], "u", True, False, None),
        (["DIGEST-MD5", "X-OAUTH2"], "u", True, False, None),
        ([" SCRAM-SHA-1 \n"], "u", False, False, "SCRAM-SHA-1"),
    ],
)
def test_choose_mechanism(
    offered: list[str], username: str | None, tls: bool, allow_plain: bool, expected: str | None
) -> None:
    password = SECRET if username else None

    def choose() -> str:
        return choose_mechanism(
            offered,
            username=username,
            password=password,
            tls_active=tls,
            allow_plain_without_tls=allow_plain,
        ).name

    if expected is not None:
        assert choose() == expected
        return
    with pytest.raises(AuthenticationError) as info:
        choose()
    assert info.value.condition == "no-usable-mechanism"
    for name in offered:
        assert name.strip() in str(info.value)
    assert SECRET not in str(info.value)


def test_choose_mechanism_needs_a_password_with_a_username() -> None:
    with pytest.raises(AuthenticationError, match="invalid-credentials"):
        choose_mechanism(ALL, username="u", password=None, tls_active=True)


def failure(condition: str | None, text: str | None = None) -> Element:
    el = Element(f"{{{NS_SASL}}}failure")
    if condition:
        SubElement(el, f"{{{NS_SASL}}}{condition}")
    if text is not None:
        SubElement(el, f"{{{NS_SASL}}}text", {"xml:lang": "en"}).text = text
    return el


def test_parse_failure() -> None:
    error = parse_failure(failure("not-authorized", "Invalid username or password"))
    assert isinstance(error, AuthenticationError)
    assert error.condition == "not-authorized"
    assert error.text == "Invalid username or password"
    bare = parse_failure(failure("account-disabled"))
    assert (bare.condition, bare.text) == ("account-disabled", None)
    assert parse_failure(failure(None)).condition == "undefined-condition"
