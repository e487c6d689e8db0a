"""A brewery room of instances that publish their state in MUC presence (upstream's BaseBrewery):
the focus joins, every occupant whose presence carries the extension `tag` is an instance keyed by
its occupant JID, later presences update it, and leaving (or dropping the extension) removes it.

    class Detector(BreweryRoom):
        def instance_updated(self, jid, extension): ...
        def instance_left(self, jid): ...
    await nursery.start(detector.run)   # returns once the room is joined

Joining retries with the reply timeout as deadline, doubling the wait up to a minute. Losing the
room (kicked, a new session that could not resume) removes every instance at once: an instance
that cannot be addressed cannot be used; they come back with the presences of the rejoin. The
hooks are synchronous and must not block; an exception in one is logged with the occupant and the
presence is otherwise ignored. Leaving `run` leaves the room (shielded, bounded)."""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element

import trio

from jicofo.xmpp.client import BaseXMPPConnection
from jicofo.xmpp.containment import contain_stanza
from jicofo.xmpp.errors import XMPPError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom, OccupantChanged, OccupantJoined, OccupantLeft, Rejoined, SelfLeft

log = logging.getLogger(__name__)

JOIN_RETRY_MAX = 60.0


class BreweryRoom:
    kind = "instance"  # for log lines: "jibri", "sip-jibri", "jigasi"

    def __init__(self, client: BaseXMPPConnection, brewery_jid: JID, tag: str, *,
                 nickname: str = "focus", request_timeout: float | None = None) -> None:
        self.client = client
        self.jid = brewery_jid.bare
        self.tag = tag
        self.nickname = nickname
        self.request_timeout = request_timeout if request_timeout is not None else client.timeouts.request
        self.present: dict[JID, Element] = {}  # occupant JID -> latest extension
        self._room: MucRoom | None = None

    # ----- hooks -------------------------------------------------------------------------------

    def instance_updated(self, jid: JID, extension: Element) -> None:
        """A new instance, or a new presence of a known one."""

    def instance_left(self, jid: JID) -> None:
        """The instance is gone (left, kicked, or the focus lost the room)."""

    # ----- running -----------------------------------------------------------------------------

    @property
    def joined(self) -> bool:
        return self._room is not None and self._room.joined

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        room = MucRoom(self.client, self.jid, self.nickname)
        self._room = room
        try:
            await self._join(room)
            task_status.started()
            await self._consume(room)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(self.client.timeouts.close):
                try:
                    await room.leave()
                except XMPPError as exc:
                    log.info("%s brewery %s: leaving: %s", self.kind, self.jid, exc)

    async def _join(self, room: MucRoom) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await room.join(timeout=self.request_timeout)
            except XMPPError as exc:
                delay = min(self.request_timeout * 2 ** min(attempt - 1, 10),
                            max(JOIN_RETRY_MAX, self.request_timeout))
                level = logging.WARNING if attempt & (attempt - 1) == 0 else logging.DEBUG
                log.log(level, "%s brewery %s: join failed (attempt %d): %s; retrying in %.1f s",
                        self.kind, self.jid, attempt, exc, delay)
                await trio.sleep(delay)
                continue
            if result.created:
                try:
                    await room.configure()
                except XMPPError as exc:
                    log.warning("%s brewery %s: created but not configured: %s", self.kind, self.jid, exc)
            log.info("%s brewery %s: joined as %s", self.kind, self.jid, room.nick)
            return

    async def _consume(self, room: MucRoom) -> None:
        async for event in room.events:
            if isinstance(event, OccupantJoined | OccupantChanged):
                occupant = event.occupant
                jid = self.jid.with_resource(occupant.nick)
                with contain_stanza(occupant.presence, f"{self.kind} presence"):
                    extension = occupant.presence.find(self.tag)
                    if extension is None:
                        self._gone(jid)
                    else:
                        self.present[jid] = extension
                        self.instance_updated(jid, extension)
            elif isinstance(event, OccupantLeft):
                self._gone(self.jid.with_resource(event.occupant.nick))
            elif isinstance(event, SelfLeft):
                log.warning("%s brewery %s: out of the room (%s); dropping %d instance(s), rejoining",
                            self.kind, self.jid, event.reason, len(self.present))
                for jid in list(self.present):
                    self._gone(jid)
                room.occupants.clear()
                await self._join(room)
            elif isinstance(event, Rejoined):
                for jid in list(self.present):
                    if jid.resource not in room.occupants:
                        self._gone(jid)

    def _gone(self, jid: JID) -> None:
        if self.present.pop(jid, None) is None:
            return
        try:
            self.instance_left(jid)
        except Exception:
            log.exception("%s brewery %s: handling the departure of %s failed", self.kind, self.jid, jid)
