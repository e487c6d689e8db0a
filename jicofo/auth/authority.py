"""The authentication authorities (upstream's AbstractAuthAuthority, XMPPDomainAuthAuthority and
ExternalJWTAuthority), on typed values: a conference request, its sender, a room.

Both types trust one XMPP domain, `jicofo.authentication.login-url`: a sender whose JID is on it
logged in there (with a password for XMPP, with a token Prosody validated for JWT), so it is
authenticated; everyone else is a guest. Guests may come back with the `session-id` (and the same
`machine-uid`) that an authenticated request was given, as lib-jitsi-meet does after a login
in a popup window.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import trio

from jicofo.config.model import AuthenticationConfig, AuthenticationType, ConfigError
from jicofo.xmlns.jwt_claims import TokenError, token_claims
from jicofo.xmpp.jid import JID, InvalidJID

from .sessions import AuthSession, SessionStore

log = logging.getLogger(__name__)

# ExternalJWTAuthority: sessions only bridge a login popup, so they live one minute, and never
# outlive their conference (no auto-login).
JWT_SESSION_LIFETIME = 60.0
# A machine-uid is a short random string from the client's local storage.
MAX_MACHINE_UID_CHARS = 256


class AuthRefused(Exception):
    """A request refused: the XMPP condition, a text that never quotes the request, and whether
    the error carries `<session-invalid/>`."""

    def __init__(self, condition: str, text: str, *, session_invalid: bool = False) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text
        self.session_invalid = session_invalid


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """What the authority reads from a conference request."""

    room: JID
    machine_uid: str | None = None
    session_id: str | None = None
    token: str | None = None


class AuthAuthority:
    """XMPP-domain authentication ("secure domain"); `external` (JWT) changes the answers only."""

    def __init__(self, domain: str, *, lifetime: float, auto_login: bool, external: bool = False,
                 clock: Callable[[], float] = trio.current_time) -> None:
        self.domain = domain
        self.external = external
        self.auto_login = auto_login
        self.sessions = SessionStore(lifetime, clock=clock)
        # Called with (sender, session) whenever a sender authenticates (the owner grant).
        self._listeners: list[Callable[[JID, AuthSession], None]] = []

    @property
    def type(self) -> AuthenticationType:
        return AuthenticationType.JWT if self.external else AuthenticationType.XMPP

    def add_listener(self, listener: Callable[[JID, AuthSession], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[JID, AuthSession], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def authenticated_domain(self, jid: JID | None) -> bool:
        return jid is not None and jid.domain == self.domain

    # ----- conference requests (upstream's processAuthLocked) ---------------------------------

    def process(self, request: AuthRequest, sender: JID | None) -> AuthSession | None:
        """The session this request authenticates (None: a guest). Raises AuthRefused."""
        machine_uid = request.machine_uid or None
        if machine_uid is not None and len(machine_uid) > MAX_MACHINE_UID_CHARS:
            raise AuthRefused("bad-request", "machine-uid too long")
        session = None
        if request.session_id:
            session = self.sessions.get(request.session_id)
            if session is None:
                raise AuthRefused("not-acceptable", "invalid session", session_invalid=True)
            if session.machine_uid != machine_uid:
                raise AuthRefused("not-acceptable", "machine UID mismatch or empty")
        if session is None and sender is not None and self.authenticated_domain(sender):
            if machine_uid is None:
                raise AuthRefused("not-acceptable", "Missing mandatory attribute 'machine-uid'")
            session = self.sessions.create(machine_uid, str(sender.bare), request.room)
        if session is None:
            return None
        if sender is not None:
            self.sessions.bind(session, sender)
            if self.external and request.token and self.authenticated_domain(sender):
                session.claims = self._claims(request.token)
        self.sessions.touch(session)
        log.info("%s authenticated as %s", sender or "an HTTP request", session.identity)
        if sender is not None:
            for listener in list(self._listeners):
                listener(sender, session)
        return session

    def _claims(self, token: str) -> dict[str, str]:
        try:
            return token_claims(token)
        except TokenError as exc:
            log.info("ignoring the token of an authenticated request: %s", exc)
            return {}

    def identity_of(self, jid: JID | None) -> str | None:
        """The authenticated identity of a full JID (upstream's getUserIdentity)."""
        session = self.sessions.for_jid(jid)
        return session.identity if session is not None else None

    def conference_ended(self, room: JID) -> None:
        if not self.auto_login:
            self.sessions.conference_ended(room)

    # ----- login-url / logout (upstream's AuthenticationIqHandler) ----------------------------

    def login_url(self, room: JID) -> str | None:
        """Where the client sends the user to log in: for XMPP the room page with `login=true`
        (the client then logs in to the authenticated domain); for JWT none (the client knows
        its token service)."""
        if self.external:
            return None
        return "./" + urllib.parse.quote(room.local or "", safe="") + "?login=true"

    def logout(self, session_id: str | None) -> str | None:
        """Destroy the session; returns the logout URL (none for either type). Raises
        AuthRefused(not-acceptable, session-invalid) for an unknown session."""
        session = self.sessions.get(session_id)
        if session is None or session_id is None:
            raise AuthRefused("not-acceptable", "invalid session", session_invalid=True)
        self.sessions.destroy(session_id)
        return None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.sessions.run(task_status=task_status)


def build_authority(config: AuthenticationConfig, *,
                    clock: Callable[[], float] = trio.current_time) -> AuthAuthority | None:
    """The authority `jicofo.authentication` asks for, or None when it is off. Raises ConfigError
    when authentication is on without a usable login-url (the trusted domain)."""
    if not config.enabled or config.type is AuthenticationType.NONE:
        return None
    domain = _login_domain(config.login_url)
    if config.type is AuthenticationType.JWT:
        log.info("JWT authentication: users of %s are authenticated", domain)
        return AuthAuthority(domain, lifetime=JWT_SESSION_LIFETIME, auto_login=False,
                             external=True, clock=clock)
    log.info("XMPP authentication: users of %s are authenticated (sessions %g s, auto-login %s)",
             domain, config.authentication_lifetime, config.enable_auto_login)
    return AuthAuthority(domain, lifetime=config.authentication_lifetime,
                         auto_login=config.enable_auto_login, clock=clock)


def _login_domain(value: str | None) -> str:
    key = "jicofo.authentication.login-url"
    if not value:
        raise ConfigError(f"{key}: required when authentication is enabled (the domain users "
                          f"log in to, e.g. meet.example.com)")
    # The legacy form names the type: XMPP:<domain> or EXT_JWT:<domain>.
    for prefix in ("XMPP:", "EXT_JWT:"):
        if value.startswith(prefix):
            value = value[len(prefix):]
    try:
        jid = JID.parse(value)
    except InvalidJID:
        raise ConfigError(f"{key}: not an XMPP domain") from None
    if jid.local is not None or jid.resource is not None:
        raise ConfigError(f"{key}: want the domain users log in to, not a JID")
    return jid.domain
