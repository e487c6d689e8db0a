"""Authentication sessions (upstream's AuthenticationSession / AbstractAuthAuthority store).

A session is created when a member of the authenticated domain asks for a conference; its
`session-id` lets the same machine (`machine-uid`) come back later from an anonymous connection
and still be known. Sessions expire after `lifetime` seconds without use, checked every
`EXPIRE_INTERVAL` seconds and also whenever one is looked up. The clock is trio's, so tests drive
it with trio.testing.MockClock.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from jicofo.xmpp.jid import JID

log = logging.getLogger(__name__)

# Upstream polls for expired sessions every 10 s.
EXPIRE_INTERVAL = 10.0
# One identity rarely has more than a few machines; beyond this the least recently used session
# of that identity is dropped, so an authenticated account cannot grow the store without bound.
MAX_SESSIONS_PER_IDENTITY = 32


@dataclass(slots=True)
class AuthSession:
    session_id: str = field(repr=False)  # a bearer secret: never in logs
    machine_uid: str = field(repr=False)
    identity: str  # the authenticated user's bare JID, as upstream
    room: JID  # the conference it was created for
    last_activity: float
    user_jid: JID | None = None  # the full JID last authenticated with this session
    # JWT type only: `user_id` / `group` from the token in the request of a sender the token
    # domain authenticated. Unverified (Prosody checked the login, not this copy): for
    # information, nothing is decided from them.
    claims: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"session of {self.identity} for {self.room}"


class SessionStore:
    """Sessions by id, with indexes by the full JID bound to them and by identity, so that a
    member joining (is this JID authenticated?) costs the same with 10 or 100,000 sessions."""

    def __init__(self, lifetime: float, *, clock: Callable[[], float] = trio.current_time) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self._sessions: dict[str, AuthSession] = {}
        self._by_jid: dict[JID, AuthSession] = {}
        self._by_identity: dict[str, dict[str, AuthSession]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[AuthSession]:
        return list(self._sessions.values())

    def create(self, machine_uid: str, identity: str, room: JID) -> AuthSession:
        session_id = str(uuid.uuid4())
        while session_id in self._sessions:
            session_id = str(uuid.uuid4())
        session = AuthSession(session_id, machine_uid, identity, room.bare, self.clock())
        self._sessions[session_id] = session
        mine = self._by_identity.setdefault(identity, {})
        mine[session_id] = session
        while len(mine) > MAX_SESSIONS_PER_IDENTITY:
            self._remove(min(mine.values(), key=lambda s: s.last_activity),
                         "too many sessions for one identity")
        log.info("authentication session created for %s in %s", identity, room)
        return session

    def get(self, session_id: str | None) -> AuthSession | None:
        """The live session with this id (an expired one is dropped and not returned)."""
        if not session_id:
            return None
        return self._live(self._sessions.get(session_id))

    def for_jid(self, jid: JID | None) -> AuthSession | None:
        """The live session last authenticated by this full JID (upstream's findSessionForJabberId)."""
        if jid is None:
            return None
        return self._live(self._by_jid.get(jid))

    def bind(self, session: AuthSession, jid: JID) -> None:
        """`jid` authenticated with `session` (it replaces any JID bound before)."""
        if session.user_jid is not None and self._by_jid.get(session.user_jid) is session:
            del self._by_jid[session.user_jid]
        session.user_jid = jid
        self._by_jid[jid] = session

    def touch(self, session: AuthSession) -> None:
        session.last_activity = self.clock()

    def destroy(self, session_id: str) -> AuthSession | None:
        session = self._sessions.get(session_id)
        if session is not None:
            self._remove(session, "logged out")
        return session

    def conference_ended(self, room: JID) -> int:
        """Drop the sessions created for `room` (upstream does so when auto-login is off)."""
        ended = [s for s in self._sessions.values() if s.room == room.bare]
        for session in ended:
            self._remove(session, f"the conference {room} ended")
        return len(ended)

    def expire(self) -> int:
        expired = [s for s in self._sessions.values() if self._expired(s)]
        for session in expired:
            self._remove(session, "expired")
        return len(expired)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Expire idle sessions every EXPIRE_INTERVAL seconds, forever."""
        task_status.started()
        while True:
            await trio.sleep(EXPIRE_INTERVAL)
            self.expire()

    def _live(self, session: AuthSession | None) -> AuthSession | None:
        if session is not None and self._expired(session):
            self._remove(session, "expired")
            return None
        return session

    def _expired(self, session: AuthSession) -> bool:
        return self.clock() - session.last_activity > self.lifetime

    def _remove(self, session: AuthSession, why: str) -> None:
        if self._sessions.pop(session.session_id, None) is None:
            return
        if session.user_jid is not None and self._by_jid.get(session.user_jid) is session:
            del self._by_jid[session.user_jid]
        mine = self._by_identity.get(session.identity)
        if mine is not None:
            mine.pop(session.session_id, None)
            if not mine:
                del self._by_identity[session.identity]
        log.info("authentication %s removed: %s", session, why)
