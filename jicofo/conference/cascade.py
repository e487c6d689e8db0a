"""A conference's cascade: the Colibri2 relays (Octo) between the bridges it uses.

Topology is a single mesh (mesh id "0"), as upstream: every bridge of the conference has a relay
to every other one, named by the other bridge's relay id. Because it is a full mesh, losing any
bridge (also one "in the middle" of the order the bridges joined in) leaves the others linked to
each other; repairing the mesh is expiring the relays to the bridge that went, on every survivor,
and re-inviting its participants onto the survivors, whose new endpoints are mirrored as usual.

A bridge joins the mesh with its first allocated endpoint (upstream creates relays right after
that first allocation too). For each bridge already there, both sides get a relay create: the
bridge that was there first is the initiator (ICE-controlling, a port of its own, SCTP client),
the newcomer the other side. Each answer carries the answering bridge's relay transport, which
is forwarded to the other side with the DTLS `setup` rewritten to the receiver's role: `active`
for the initiator, `passive` for the other (so the initiator is the DTLS client); a bridge that
did not advertise `actpass` gets nothing forwarded (logged), as upstream gives up on that update.
Web-socket URLs are only forwarded to the initiator, and only without SCTP: one side dials.

After that, every endpoint change on a bridge is mirrored into the relay that represents that
bridge on every other one: created (with its sources) once allocated, its sources on every update,
expired when it goes. Only endpoints that were announced are ever updated or expired, so a relay
never hears of an endpoint twice or of one it does not know.

Everything here is synchronous: requests are queued on each bridge's ordered Colibri2 session.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from jicofo.bridge.colibri import ColibriSession, RelayEndpoint
from jicofo.model.sources import EndpointSourceSet
from jicofo.xmlns.ice_udp import IceUdpTransport
from jicofo.xmlns.jingle import RtpDescription

log = logging.getLogger(__name__)

MESH_ID = "0"


def forwarded_relay_transport(
    ice: IceUdpTransport, *, receiver_is_initiator: bool, sctp: bool
) -> IceUdpTransport | None:
    """The relay transport one bridge answered, as it must reach the other bridge; None when the
    answer did not offer `actpass` (nothing can be forwarded then)."""
    if not ice.fingerprints or any(f.setup != "actpass" for f in ice.fingerprints):
        return None
    setup = "active" if receiver_is_initiator else "passive"
    return dataclasses.replace(
        ice,
        fingerprints=tuple(dataclasses.replace(f, setup=setup) for f in ice.fingerprints),
        web_sockets=ice.web_sockets if receiver_is_initiator and not sctp else (),
    )


class Cascade:
    """The relays of one conference. `endpoint_info` describes an endpoint for a relay (None
    when the endpoint is gone); `medias` are the audio and video descriptions relays carry."""

    def __init__(
        self,
        *,
        room: str,
        medias: Callable[[], tuple[RtpDescription, ...]],
        sctp: bool,
        endpoint_info: Callable[[str], RelayEndpoint | None],
    ) -> None:
        self.room = room
        self._medias = medias
        self.sctp = sctp
        self._endpoint_info = endpoint_info
        # Members in the order they joined, each with the endpoints its relays were told about.
        self._announced: dict[ColibriSession, set[str]] = {}

    @property
    def members(self) -> list[ColibriSession]:
        return list(self._announced)

    def is_member(self, session: ColibriSession) -> bool:
        return session in self._announced

    # ----- EndpointObserver -------------------------------------------------------------------

    def endpoint_allocated(self, session: ColibriSession, endpoint_id: str) -> None:
        if session not in self._announced:
            self._join(session, endpoint_id)
            return
        info = self._endpoint_info(endpoint_id)
        if info is None or endpoint_id in self._announced[session]:
            return
        self._announced[session].add(endpoint_id)
        for other in self._others(session):
            other.relay_endpoint_added(self._relay_id(session), info)

    def endpoint_sources(self, session: ColibriSession, endpoint_id: str,
                         sources: EndpointSourceSet) -> None:
        if endpoint_id not in self._announced.get(session, ()):
            return
        for other in self._others(session):
            other.relay_endpoint_sources(self._relay_id(session), endpoint_id, sources)

    def endpoint_expired(self, session: ColibriSession, endpoint_id: str) -> None:
        announced = self._announced.get(session)
        if announced is None or endpoint_id not in announced:
            return
        announced.discard(endpoint_id)
        for other in self._others(session):
            other.relay_endpoint_expired(self._relay_id(session), endpoint_id)

    # ----- membership -------------------------------------------------------------------------

    def leave(self, session: ColibriSession) -> None:
        """`session`'s bridge left the conference (last endpoint gone, failure, move): every
        other bridge drops its relay to it."""
        if self._announced.pop(session, None) is None:
            return
        if not self._announced:
            return
        relay_id = self._relay_id(session)
        log.info("conference %s: bridge %s leaves the cascade; expiring relay %s on %s", self.room,
                 session.bridge.nickname, relay_id,
                 ", ".join(s.bridge.nickname for s in self._announced))
        for other in self._announced:
            other.expire_relay(relay_id)

    def _join(self, newcomer: ColibriSession, first_endpoint: str) -> None:
        existing = list(self._announced)
        self._announced[newcomer] = {first_endpoint} if self._endpoint_info(first_endpoint) else set()
        if not existing:
            return
        medias = self._medias()
        log.info("conference %s: bridge %s joins the cascade with %s", self.room,
                 newcomer.bridge.nickname, ", ".join(s.bridge.nickname for s in existing))
        for old in existing:
            old.create_relay(
                self._relay_id(newcomer), initiator=True, mesh_id=MESH_ID, medias=medias,
                sctp=self.sctp, endpoints=self._described(newcomer),
                on_transport=self._forwarder(to=newcomer, relay_of=old, receiver_is_initiator=False),
            )
            newcomer.create_relay(
                self._relay_id(old), initiator=False, mesh_id=MESH_ID, medias=medias,
                sctp=self.sctp, endpoints=self._described(old),
                on_transport=self._forwarder(to=old, relay_of=newcomer, receiver_is_initiator=True),
            )

    def _forwarder(self, *, to: ColibriSession, relay_of: ColibriSession,
                   receiver_is_initiator: bool) -> Callable[[IceUdpTransport], None]:
        def forward(ice: IceUdpTransport) -> None:
            if to not in self._announced or relay_of not in self._announced:
                return  # one side left meanwhile; its relay is being expired
            fixed = forwarded_relay_transport(ice, receiver_is_initiator=receiver_is_initiator,
                                              sctp=self.sctp)
            if fixed is None:
                log.error("conference %s: bridge %s's relay transport does not offer actpass; "
                          "not forwarding it to %s", self.room, relay_of.bridge.nickname,
                          to.bridge.nickname)
                return
            to.set_relay_transport(self._relay_id(relay_of), fixed)
        return forward

    def _described(self, session: ColibriSession) -> tuple[RelayEndpoint, ...]:
        described = []
        for endpoint_id in sorted(self._announced.get(session, ())):
            info = self._endpoint_info(endpoint_id)
            if info is not None:
                described.append(info)
        return tuple(described)

    def _others(self, session: ColibriSession) -> list[ColibriSession]:
        return [s for s in self._announced if s is not session]

    @staticmethod
    def _relay_id(session: ColibriSession) -> str:
        relay_id = session.relay_id
        if relay_id is None:  # the conference only cascades bridges that have one
            raise ValueError(f"bridge {session.bridge.nickname} has no relay id")
        return relay_id

    def to_json(self) -> dict[str, object]:
        return {
            "mesh": MESH_ID,
            "bridges": {s.bridge.nickname: sorted(eps) for s, eps in self._announced.items()},
        }
