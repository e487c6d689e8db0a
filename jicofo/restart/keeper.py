"""The restart keeper: owns the state store for one focus process.

At start (`open`): reads what the last process left, decides fresh or stale (one log line), seeds
the XMPP client connections with their stored sessions and rebuilds the conferences (`restore`).
While running: the journal of each connection's XEP-0198 state, and the conference hooks
(`changed`, `member_gone`, `conference_gone`) that keep each conference's records. A heartbeat
task refreshes the file's age and, for a stale store, expires the Colibri2 conferences it named
once the brewery is joined.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

import trio

from jicofo.bridge.colibri import BridgeConference, ColibriFailure, ColibriSession
from jicofo.bridge.model import Bridge
from jicofo.conference.conference import FOCUS_NICK
from jicofo.xmpp.errors import XMPPError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.sm import StreamManagement
from jicofo.xmpp.xml import XMLParseError, parse_fragment, serialize

from .conference_state import (
    bridge_conferences,
    restore_conference,
    snapshot_conference,
    snapshot_participant,
)
from .config import RestartConfig
from .store import SqliteStore, StateStore, StoredState

if TYPE_CHECKING:
    from jicofo.bridge.brewery import Brewery
    from jicofo.conference.conference import Conference
    from jicofo.conference.participant import Participant
    from jicofo.conference.services import ConferenceServices
    from jicofo.xmpp.client import XMPPClient

log = logging.getLogger(__name__)

XMPP = "xmpp"
CONFERENCE = "conference"
PARTICIPANT = "participant"


class ConnectionJournal:
    """XEP-0198 state of one client connection, as the store keeps it."""

    def __init__(self, store: StateStore, name: str) -> None:
        self.store = store
        self.name = name
        self.jid: JID | None = None

    def new_session(self, jid: JID, sm: StreamManagement | None) -> None:
        self.store.outbox_clear(self.name)
        self.jid = jid
        if sm is None or not sm.resumable:
            self.store.delete(XMPP, self.name)
            return
        sm.journal = self
        self.checkpoint(sm)

    def sent(self, seq: int, el: Element) -> None:
        try:
            text = serialize(el)
        except ValueError:
            return  # it could not have been sent either
        self.store.outbox_add(self.name, seq, text)

    def acked(self, h: int) -> None:
        self.store.outbox_ack(self.name, h)

    def checkpoint(self, sm: StreamManagement) -> None:
        if self.jid is None or not sm.resumable:
            return
        self.store.put(XMPP, self.name, {"jid": str(self.jid), "id": sm.id, "location": sm.location,
                                         "inbound": sm.inbound if sm.handled is None else sm.handled,
                                         "outbound": sm.outbound})


def restored_session(record: Any, outbox: list[tuple[int, str]], ack_every: int,
                     max_unacked: int, journal: ConnectionJournal | None = None,
                     ) -> tuple[StreamManagement, JID]:
    """A connection's stored session, ready for `XMPPClient.resume_from`, journalled on by
    `journal`. Raises ValueError."""
    if not isinstance(record, dict) or not record.get("id"):
        raise ValueError("no resumable session")
    sm = StreamManagement(ack_request_every=ack_every, max_unacked=max_unacked)
    sm.enabled(str(record["id"]), True, record.get("location"))
    sm.inbound = int(record["inbound"])
    sm.outbound = int(record["outbound"])
    sm.restored = True
    items = []
    for seq, text in outbox:
        try:
            items.append((seq, parse_fragment(text)))
        except XMLParseError as exc:
            raise ValueError(f"unreadable outbound stanza {seq}: {exc}") from None
    if items:
        sm.outbound = max(sm.outbound, items[-1][0])
    sm.restore_unacked(items)
    jid = JID.parse(str(record["jid"]))
    if journal is not None:
        journal.jid = jid
        sm.journal = journal
    return sm, jid


class RestartKeeper:
    def __init__(self, config: RestartConfig, store: StateStore,
                 previous: StoredState | None) -> None:
        self.config = config
        self.store = store
        self.previous = previous
        self.stale = False
        # (bridge JID, meeting id, room) left on the bridges by a stale store: expired once the
        # brewery is joined.
        self.leftovers: list[tuple[str, str, str]] = []
        self.restored: list[Conference] = []
        self.rooms_to_leave: list[str] = []  # rooms of records that could not be restored
        self._written: dict[str, str] = {}  # conference records as last written (skip repeats)
        self._stopped = False
        self.hook_seconds = 0.0  # in the conference hooks: snapshots, JSON and the writes
        self.hook_calls = 0
        if previous is not None:
            age = previous.age()
            conferences = previous.of_kind(CONFERENCE)
            if age > config.max_age:
                self.stale = True
                for record in conferences.values():
                    self.leftovers.extend(bridge_conferences(record))
                log.warning("restart store %s is %.0f s old (max-age %.0f s): discarded; %d "
                            "conference(s) it held will be expired on their bridges",
                            config.state_file, age, config.max_age, len(conferences))
                self.previous = None
            else:
                log.info("restart store %s: %d conference(s) from %.1f s ago; resuming",
                         config.state_file, len(conferences), age)
        if self.previous is None:
            store.clear()
        store.heartbeat()

    @classmethod
    def open(cls, config: RestartConfig) -> RestartKeeper | None:
        if not config.enabled:
            return None
        store = SqliteStore(config.state_file)
        previous = store.open()
        if not store.enabled:
            return None
        return cls(config, store, previous)

    # ----- startup ------------------------------------------------------------------------------

    def attach_client(self, client: XMPPClient, name: str) -> bool:
        """Journal `client`'s sessions under `name`; seed it with the stored one, if any. True
        when a stored session will be tried."""
        journal = ConnectionJournal(self.store, name)
        client.session_journal = journal
        if self.previous is None:
            return False
        record = self.previous.of_kind(XMPP).get(name)
        if record is None:
            return False
        try:
            sm, jid = restored_session(record, self.previous.outbox.get(name, []),
                                       client.settings.sm_ack_every, client.settings.sm_max_unacked,
                                       journal)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("restart store: the %s session cannot be used (%s); binding afresh", name, exc)
            return False
        client.resume_from(sm, jid)
        log.info("%s: will try to resume session %s (h=%d, %d unacknowledged stanza(s))", name,
                 sm.id, sm.inbound, sm.unacked_count)
        return True

    def restore(self, services: ConferenceServices, brewery: Brewery | None) -> list[Conference]:
        """Rebuild the stored conferences (not running yet). A record that cannot be used is
        dropped with one line, and its bridge conferences are expired."""
        if self.previous is None:
            return []
        participants: dict[str, dict[str, dict[str, Any]]] = {}
        for key, value in self.previous.of_kind(PARTICIPANT).items():
            room, _, nick = key.partition("/")
            participants.setdefault(room, {})[nick] = value
        for room, record in self.previous.of_kind(CONFERENCE).items():
            if brewery is None:
                continue
            try:
                conference = restore_conference(services, brewery, record, participants.get(room, {}))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("restart store: conference %s cannot be restored (%s); expiring it",
                            room, exc)
                self.leftovers.extend(bridge_conferences(record))
                self.rooms_to_leave.append(room)
                self.store.delete(CONFERENCE, room)
                self.store.delete_kind(PARTICIPANT, room + "/")
                continue
            self.restored.append(conference)
        self.previous = None  # only once
        return self.restored

    # ----- conference hooks (ConferenceStateHook) ------------------------------------------------

    def changed(self, conference: Conference, participant: Participant | None = None) -> None:
        if self._stopped or conference.stop_reason is not None:
            return
        started = time.perf_counter()
        try:
            self._changed(conference, participant)
        except Exception:
            # A state the store cannot write must not end the conference: the conference goes
            # on, and is not taken back by a new process if this one dies.
            log.exception("restart store: conference %s could not be written", conference.room_jid)
        finally:
            self.hook_seconds += time.perf_counter() - started
            self.hook_calls += 1

    def _changed(self, conference: Conference, participant: Participant | None) -> None:
        room = str(conference.room_jid)
        record = snapshot_conference(conference)
        text = json.dumps(record, separators=(",", ":"), sort_keys=True)
        if self._written.get(room) != text:
            self._written[room] = text
            self.store.put(CONFERENCE, room, record)
        if participant is not None and conference.participants.get(participant.endpoint_id) is participant:
            self.store.put(PARTICIPANT, f"{room}/{participant.endpoint_id}",
                           snapshot_participant(participant))

    def member_gone(self, conference: Conference, endpoint_id: str) -> None:
        if self._stopped:
            return
        self.store.delete(PARTICIPANT, f"{conference.room_jid}/{endpoint_id}")
        self.changed(conference)

    def conference_gone(self, conference: Conference) -> None:
        if self._stopped:
            return
        room = str(conference.room_jid)
        self._written.pop(room, None)
        self.store.delete(CONFERENCE, room)
        self.store.delete_kind(PARTICIPANT, room + "/")

    # ----- running ------------------------------------------------------------------------------

    async def run(self, brewery: Brewery | None, services: ConferenceServices, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with trio.open_nursery() as nursery:
            if self.leftovers and brewery is not None:
                nursery.start_soon(self._expire_leftovers, brewery, services)
            if self.rooms_to_leave:
                nursery.start_soon(self._leave_rooms, services)
            while True:
                await trio.sleep(self.config.heartbeat_interval)
                if not self._stopped:
                    self.store.heartbeat()
                    checkpoint = getattr(self.store, "checkpoint_blocking", None)
                    if checkpoint is not None:
                        # Abandoned on cancellation; it ends by itself (a passive checkpoint).
                        await trio.to_thread.run_sync(checkpoint, abandon_on_cancel=True)

    async def _leave_rooms(self, services: ConferenceServices) -> None:
        """The resumed session is still in the rooms of conferences that could not be restored:
        leave them (their members see the focus leave and reload, as after a failed resumption)."""
        rooms, self.rooms_to_leave = self.rooms_to_leave, []
        client = services.client
        with trio.move_on_after(services.request_timeout):
            await client.wait_connected()
        for room in rooms:
            try:
                await client.send(client.stanza(
                    "presence", {"to": f"{room}/{FOCUS_NICK}", "type": "unavailable"}))
            except XMPPError as exc:
                log.info("restart: leaving %s failed: %s", room, exc)
        log.info("restart: left %d room(s) whose conference could not be restored", len(rooms))

    async def _expire_leftovers(self, brewery: Brewery, services: ConferenceServices) -> None:
        leftovers, self.leftovers = self.leftovers, []
        with trio.move_on_after(services.colibri_timeout * 2):
            await brewery.wait_joined()
        expired = 0
        for bridge_jid, meeting_id, room in leftovers:
            try:
                bridge = brewery.bridges.get(JID.parse(bridge_jid)) or Bridge(JID.parse(bridge_jid))
            except ValueError:
                continue
            session = ColibriSession(services.colibri_client, bridge, meeting_id=meeting_id,
                                     room_name=room, timeout=services.colibri_timeout)
            session.state = BridgeConference.CREATED
            try:
                with trio.move_on_after(services.colibri_timeout):
                    await session.expire_conference()
                    expired += 1
            except (XMPPError, ColibriFailure) as exc:
                log.info("restart: expiring the old conference %s on %s failed: %s", room,
                         bridge.nickname, exc)
        log.info("restart: expired %d of %d conference(s) a stale store left on the bridges",
                 expired, len(leftovers))

    def keep_for_restart(self) -> None:
        """SIGUSR1: the next process takes the conferences back. Writes the heartbeat only; the
        rest is already in the store."""
        self.store.heartbeat()
        log.info("restart store: kept for the next start; this run cost %s", self.cost())
        self._stopped = True
        self.store.close()

    def cost(self) -> str:
        store = self.store
        return (f"{getattr(store, 'writes', 0)} writes, {getattr(store, 'bytes_written', 0)} bytes, "
                f"{getattr(store, 'seconds', 0.0) * 1000:.1f} ms in SQLite; {self.hook_calls} "
                f"conference hook calls, {self.hook_seconds * 1000:.1f} ms in them")

    def stopping(self) -> None:
        """An orderly stop (SIGTERM): the conferences end, nothing is to be resumed."""
        log.info("restart store: clearing it; this run cost %s", self.cost())
        self._stopped = True
        self.store.clear()
        self.store.close()
