"""Who the focus makes owner of a room (upstream's ChatRoomRoleManager family):

- authentication on: every member whose real JID has an authentication session, when it joins or
  when it authenticates later (AuthenticationRoleManager); guests are never promoted;
- otherwise, with `conference.enable-auto-owner` and not in a breakout room: exactly one owner
  among the people (not Jibri/Jigasi), the earliest member, again when the owner leaves
  (AutoOwnerRoleManager);
- otherwise nobody.

A strategy only decides; the conference sends the MUC admin requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from jicofo.auth import AuthAuthority

    from .conference import Conference
    from .participant import Participant


class RoleStrategy(Protocol):
    def owners_to_grant(self, members: Sequence[Participant]) -> list[Participant]: ...


class AuthenticatedOwners:
    def __init__(self, authority: AuthAuthority) -> None:
        self.authority = authority
        self._granted: set[str] = set()  # endpoint ids already asked for, per join

    def owners_to_grant(self, members: Sequence[Participant]) -> list[Participant]:
        present = {m.endpoint_id for m in members}
        self._granted &= present  # a member who left and came back is granted again
        grant = []
        for member in members:
            jid = member.occupant.jid
            if jid is None or member.occupant.affiliation == "owner" \
                    or member.endpoint_id in self._granted:
                continue
            if self.authority.identity_of(jid) is not None:
                self._granted.add(member.endpoint_id)
                grant.append(member)
        return grant


class AutoOwner:
    def __init__(self, conference: Conference) -> None:
        self.conference = conference

    def owners_to_grant(self, members: Sequence[Participant]) -> list[Participant]:
        candidate = self.conference.auto_owner_candidate()
        return [candidate] if candidate is not None else []


class NoOwners:
    def owners_to_grant(self, members: Sequence[Participant]) -> list[Participant]:
        return []


def role_strategy(conference: Conference) -> RoleStrategy:
    authority = conference.services.auth
    if authority is not None:
        return AuthenticatedOwners(authority)
    if conference.services.config.conference.enable_auto_owner and not conference.breakout:
        return AutoOwner(conference)
    return NoOwners()
