"""Authentication decisions in memory (jicofo/auth/): upstream's XMPPDomainAuthAuthority cases,
JWT claims, session lifetime with trio's MockClock, login URL and logout; the unbuilt-config rule."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
import trio
import trio.testing

from jicofo.auth import AuthRefused, build_authority
from jicofo.auth.authority import JWT_SESSION_LIFETIME, AuthAuthority, AuthRequest
from jicofo.auth.sessions import EXPIRE_INTERVAL
from jicofo.config.load import load_config
from jicofo.config.model import AuthenticationType, ConfigError
from jicofo.xmlns.jwt_claims import TokenError, token_claims
from jicofo.xmpp.jid import JID

AUTH = "meet.example.com"
GUEST = "guest.meet.example.com"
ROOM = JID.parse("standup@conference.meet.example.com")
OTHER_ROOM = JID.parse("other@conference.meet.example.com")


def xmpp_authority(*, lifetime: float = 3600, auto_login: bool = True) -> AuthAuthority:
    return AuthAuthority(AUTH, lifetime=lifetime, auto_login=auto_login)


def refused(authority: AuthAuthority, request: AuthRequest, sender: JID | None) -> AuthRefused:
    with pytest.raises(AuthRefused) as caught:
        authority.process(request, sender)
    return caught.value


def jwt(payload: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


async def test_guest_host_and_session_reuse_as_upstream() -> None:
    auth = xmpp_authority()
    guest = JID.parse(f"abc@{GUEST}/web")
    host = JID.parse(f"alice@{AUTH}/web-1")
    # A guest with no session is a guest (the registry then refuses it a new room).
    assert auth.process(AuthRequest(ROOM, "m-guest"), guest) is None
    assert auth.identity_of(guest) is None
    # A host on the authenticated domain gets a session, bound to its full JID.
    session = auth.process(AuthRequest(ROOM, "m-alice"), host)
    assert session is not None and session.identity == f"alice@{AUTH}"
    assert auth.identity_of(host) == f"alice@{AUTH}"
    # The same machine, now anonymous (after the login popup), presents the session.
    later = JID.parse(f"xyz@{GUEST}/web")
    again = auth.process(AuthRequest(OTHER_ROOM, "m-alice", session.session_id), later)
    assert again is session and auth.identity_of(later) == f"alice@{AUTH}"
    # Another machine of the same user gets a separate session (upstream's case 10).
    second = auth.process(AuthRequest(ROOM, "m-alice-2"), host)
    assert second is not None and second.session_id != session.session_id


async def test_refusals_carry_upstream_conditions() -> None:
    auth = xmpp_authority()
    host = JID.parse(f"alice@{AUTH}/web-1")
    guest = JID.parse(f"bob@{GUEST}/web")
    session = auth.process(AuthRequest(ROOM, "m-alice"), host)
    assert session is not None
    bogus = refused(auth, AuthRequest(ROOM, "m-bob", "someinvalidsessionid"), guest)
    assert (bogus.condition, bogus.session_invalid) == ("not-acceptable", True)
    # A stolen session id from another machine, and one used without a machine-uid.
    stolen = refused(auth, AuthRequest(ROOM, "m-bob", session.session_id), guest)
    assert (stolen.condition, stolen.session_invalid) == ("not-acceptable", False)
    missing = refused(auth, AuthRequest(ROOM, None, session.session_id), guest)
    assert missing.condition == "not-acceptable"
    # A host may not create a session without a machine-uid.
    no_uid = refused(auth, AuthRequest(ROOM, None), JID.parse(f"carol@{AUTH}/x"))
    assert no_uid.condition == "not-acceptable" and "machine-uid" in no_uid.text
    too_long = refused(auth, AuthRequest(ROOM, "m" * 1000), host)
    assert too_long.condition == "bad-request" and "m" * 20 not in too_long.text


async def test_sessions_expire_after_the_lifetime_idle(mock_clock: trio.testing.MockClock) -> None:
    auth = xmpp_authority(lifetime=100)
    host = JID.parse(f"alice@{AUTH}/web-1")
    session = auth.process(AuthRequest(ROOM, "m"), host)
    assert session is not None
    async with trio.open_nursery() as nursery:
        await nursery.start(auth.run)
        mock_clock.jump(90)
        # Used again: the idle time starts over.
        assert auth.process(AuthRequest(ROOM, "m", session.session_id), host) is session
        mock_clock.jump(90)
        assert auth.identity_of(host) is not None
        mock_clock.jump(20 + EXPIRE_INTERVAL)
        await trio.testing.wait_all_tasks_blocked()
        # Expired: dropped by the periodic check, and the id is now refused as invalid.
        assert len(auth.sessions) == 0
        assert auth.identity_of(host) is None
        gone = refused(auth, AuthRequest(ROOM, "m", session.session_id),
                       JID.parse(f"x@{GUEST}/y"))
        assert gone.session_invalid
        nursery.cancel_scope.cancel()


async def test_auto_login_off_drops_sessions_with_their_conference() -> None:
    for auto_login, left in ((True, 1), (False, 0)):
        auth = xmpp_authority(auto_login=auto_login)
        auth.process(AuthRequest(ROOM, "m"), JID.parse(f"alice@{AUTH}/web"))
        auth.conference_ended(OTHER_ROOM)
        assert len(auth.sessions) == 1
        auth.conference_ended(ROOM)
        assert len(auth.sessions) == left


async def test_jwt_authority_reads_claims_only_for_the_token_domain(
        mock_clock: trio.testing.MockClock) -> None:
    config = load_config(None, {"jicofo.authentication.enabled": True,
                                "jicofo.authentication.type": "JWT",
                                "jicofo.authentication.login-url": AUTH,
                                "jicofo.xmpp.client.domain": f"auth.{AUTH}"}, env={})
    auth = build_authority(config.authentication)
    assert auth is not None and auth.external and auth.type is AuthenticationType.JWT
    assert auth.login_url(ROOM) is None  # the client builds its own
    token = jwt({"context": {"user": {"id": "u-42", "name": "Alice"}, "group": "sales"}})
    session = auth.process(AuthRequest(ROOM, "m", token=token), JID.parse(f"a1@{AUTH}/r"))
    assert session is not None and session.claims == {"user_id": "u-42", "group": "sales"}
    # A guest's token is nothing Prosody checked: no session, no claims.
    assert auth.process(AuthRequest(ROOM, "m2", token=token), JID.parse(f"g@{GUEST}/r")) is None
    # JWT sessions live a minute, and never outlive their conference.
    mock_clock.jump(JWT_SESSION_LIFETIME + 1)
    assert auth.sessions.get(session.session_id) is None
    assert not auth.auto_login


def test_token_claims_are_bounded_and_never_quote_the_token() -> None:
    assert token_claims(jwt({"context": {"user": {"id": 7}}})) == {"user_id": "7"}
    assert token_claims(jwt({"sub": "x"})) == {}
    assert token_claims(jwt({"context": {"group": "g" * 1000}}))["group"] == "g" * 256
    deep = "x." + base64.urlsafe_b64encode(b"[" * 50 + b"]" * 50).decode().rstrip("=") + ".y"
    secret_looking = "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24gc2VjcmV0LXZhbHVl.sig"
    for bad in ("not-a-token", "a.!!!.c", "a." + "A" * 9000 + ".c", deep, secret_looking):
        with pytest.raises(TokenError) as caught:
            token_claims(bad)
        assert "eyJ" not in str(caught.value) and "secret" not in str(caught.value)


async def test_login_url_and_logout() -> None:
    auth = xmpp_authority()
    assert auth.login_url(ROOM) == "./standup?login=true"
    session = auth.process(AuthRequest(ROOM, "m"), JID.parse(f"alice@{AUTH}/web"))
    assert session is not None
    assert auth.logout(session.session_id) is None
    assert len(auth.sessions) == 0
    again = pytest.raises(AuthRefused, auth.logout, session.session_id)
    assert again.value.session_invalid


def test_build_authority_from_config() -> None:
    def authority(**keys: object) -> AuthAuthority | None:
        overrides = {f"jicofo.authentication.{k.replace('_', '-')}": v for k, v in keys.items()}
        overrides["jicofo.xmpp.client.domain"] = f"auth.{AUTH}"
        return build_authority(load_config(None, overrides, env={}).authentication)

    assert authority() is None
    assert authority(enabled=True, type="NONE", login_url=AUTH) is None
    xmpp = authority(enabled=True, type="XMPP", login_url=AUTH, authentication_lifetime="2 hours",
                     enable_auto_login=False)
    assert xmpp is not None and not xmpp.external and xmpp.domain == AUTH
    assert xmpp.sessions.lifetime == 7200 and not xmpp.auto_login
    assert authority(enabled=True, type="XMPP", login_url=f"XMPP:{AUTH}").domain == AUTH  # type: ignore[union-attr]
    for bad in ({}, {"login_url": "alice@meet.example.com"}):
        with pytest.raises(ConfigError, match="jicofo.authentication.login-url"):
            authority(enabled=True, type="XMPP", **bad)


# ----- unbuilt config keys (jicofo/config/unbuilt.py) --------------------------------------------


BASE = 'jicofo.xmpp.client.domain = "auth.meet.jitsi"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jicofo.conf"
    path.write_text(text)
    return path


def test_unbuilt_protection_keys_refuse_to_start(tmp_path: Path) -> None:
    for key in ("visitors.enabled", "visitors.enable-live-room"):
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, BASE + f'jicofo {{ {key} = "true" }}'), env={})
        message = str(caught.value)
        assert message.startswith(f"jicofo.{key}:") and "\n" not in message
    # Set to false, they are what the focus does anyway.
    load_config(write(tmp_path, BASE + "jicofo { visitors { enabled = false, "
                                       "enable-live-room = false } }"), env={})


def test_unbuilt_feature_keys_warn_once_each(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    text = BASE + """jicofo {
      jibri { brewery-jid = "JibriBrewery@internal-muc.meet.jitsi", pending-timeout = 90 seconds,
              use-private-address-connectivity = false }
      jigasi { brewery-jid = "JigasiBrewery@internal-muc.meet.jitsi" }
      visitors { max-participants = 10 }
      xmpp.visitors { v1 { enabled = true, conference-service = "conference.v1.meet.jitsi",
                           hostname = "127.0.0.1", domain = "auth.v1.meet.jitsi" } }
    }"""
    with caplog.at_level(logging.WARNING, logger="jicofo.config.unbuilt"):
        load_config(write(tmp_path, text), env={})
    lines = [r.getMessage() for r in caplog.records]
    keys = sorted(line.split(" is set")[0] for line in lines)
    # Jibri and Jigasi are built: their keys are not warned about, except the one part of them
    # that is not; the visitor node's keys each count.
    assert "jicofo.jibri.brewery-jid" not in keys and "jicofo.jigasi.brewery-jid" not in keys
    assert "jicofo.jibri.use-private-address-connectivity" in keys
    assert "jicofo.visitors.max-participants" in keys
    assert any(key.startswith("jicofo.xmpp.visitors.v1.") for key in keys)
    assert len(keys) == len(set(keys))


async def test_store_indexes_follow_binds_and_the_per_identity_cap() -> None:
    from jicofo.auth.sessions import MAX_SESSIONS_PER_IDENTITY
    auth = xmpp_authority()
    host = JID.parse(f"alice@{AUTH}/web")
    first = auth.process(AuthRequest(ROOM, "m0"), host)
    assert first is not None and "session_id" not in repr(first) and first.session_id not in repr(first)
    # Another session bound to the same full JID takes the index over.
    second = auth.process(AuthRequest(ROOM, "m1"), host)
    assert auth.sessions.for_jid(host) is second
    for n in range(2, MAX_SESSIONS_PER_IDENTITY + 5):
        auth.process(AuthRequest(ROOM, f"m{n}"), JID.parse(f"alice@{AUTH}/r{n}"))
    assert len(auth.sessions) == MAX_SESSIONS_PER_IDENTITY
    assert auth.sessions.get(first.session_id) is None  # the least recently used went first
