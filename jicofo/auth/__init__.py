"""Authentication as upstream Jicofo does it (docs/jicofo.md §1.10, §2.13): who may open a
room, the authentication sessions that remember it, and the identity that makes a member owner.

`build_authority(config)` gives the authority `jicofo.authentication.type` asks for (XMPP or JWT),
or None when authentication is off. Protocol parsing stays in jicofo/xmlns/; this package decides
on typed values only.
"""

from __future__ import annotations

from .authority import AuthAuthority, AuthRefused, build_authority
from .sessions import AuthSession, SessionStore

__all__ = ["AuthAuthority", "AuthRefused", "AuthSession", "SessionStore", "build_authority"]
