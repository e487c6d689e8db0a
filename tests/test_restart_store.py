"""The restart store and what it keeps, in memory and on a real SQLite file (no network): a
missing, corrupt, unusable or stale file never blocks startup; the XEP-0198 journal rebuilds a
session that can resume; the typed objects survive their JSON form."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from jicofo.conference.offer import OfferOptions
from jicofo.model.sources import (
    ConferenceSourceMap,
    EndpointSourceSet,
    MediaType,
    Semantics,
    Source,
    SsrcGroup,
)
from jicofo.restart.codec import (
    decode_occupant,
    decode_options,
    decode_signaled,
    decode_sources,
    decode_transport,
    encode_occupant,
    encode_options,
    encode_signaled,
    encode_sources,
    encode_transport,
)
from jicofo.restart.config import RestartConfig
from jicofo.restart.keeper import CONFERENCE, ConnectionJournal, RestartKeeper, restored_session
from jicofo.restart.store import MemoryStore, SqliteStore
from jicofo.xmlns.ice_udp import Candidate, Fingerprint, IceUdpTransport
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import Occupant
from jicofo.xmpp.sm import StreamManagement, StreamManagementError
from jicofo.xmpp.xml import element, serialize

CAMERA = EndpointSourceSet(
    (Source(1, MediaType.VIDEO, "e1-v0", "m v", "camera"), Source(2, MediaType.VIDEO, "e1-v0", "m v"),
     Source(3, MediaType.AUDIO, "e1-a0", "m a")),
    (SsrcGroup(Semantics.FID, (1, 2), MediaType.VIDEO),),
)


def test_a_missing_file_is_created_and_holds_what_is_written(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.sqlite3"
    store = SqliteStore(path)
    assert store.open() is None and store.enabled
    store.heartbeat()
    store.put("conference", "r@c", {"a": [1, 2]})
    store.outbox_add("client", 7, "<iq/>")
    store.outbox_add("client", 8, "<presence/>")
    store.outbox_ack("client", 7)
    store.close()

    again = SqliteStore(path)
    state = again.open()
    assert state is not None and state.age() < 5
    assert state.of_kind("conference") == {"r@c": {"a": [1, 2]}}
    assert state.outbox == {"client": [(8, "<presence/>")]}


def test_the_wal_is_checkpointed_on_demand_only(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = SqliteStore(path)
    store.open()
    store.heartbeat()
    for n in range(300):
        store.put("participant", f"r@c/{n}", {"blob": "x" * 4000})
    wal = path.with_name(path.name + "-wal")
    grown = wal.stat().st_size
    assert grown > 1_000_000  # no automatic checkpoint on the writer's thread
    assert path.stat().st_size < 100_000
    store.checkpoint_blocking()
    assert path.stat().st_size > 1_000_000  # now in the database file
    store.put("participant", "r@c/again", {"blob": "y"})
    state = SqliteStore(path)
    store.close()
    loaded = state.open()
    assert loaded is not None and len(loaded.of_kind("participant")) == 301


def test_a_corrupt_file_is_set_aside_with_one_line(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    store = SqliteStore(path)
    with caplog.at_level(logging.WARNING):
        assert store.open() is None
    assert store.enabled  # a fresh one
    assert (tmp_path / "state.sqlite3.corrupt").exists()
    assert [r for r in caplog.records if "unreadable" in r.getMessage()]
    store.heartbeat()
    store.put("x", "y", 1)
    assert store.load() is not None


def test_a_file_in_use_by_another_process_is_not_shared(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    first = SqliteStore(path)
    first.open()
    first.heartbeat()
    second = SqliteStore(path)
    assert second.open() is None and not second.enabled
    first.close()
    assert SqliteStore(path).open() is not None  # free again


def test_an_unusable_path_runs_without_a_store(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = SqliteStore(blocker / "state.sqlite3")  # its directory is a file
    assert store.open() is None
    assert not store.enabled
    store.put("x", "y", 1)  # quietly nothing
    assert RestartKeeper.open(RestartConfig(enabled=True, state_file=blocker / "s")) is None


def test_a_stale_store_is_discarded_and_names_its_bridge_conferences(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = SqliteStore(path)
    store.open()
    store.heartbeat()
    store.put(CONFERENCE, "r@c", {"room": "r@c", "bridges": [{"jid": "b@m/jvb1", "meeting_id": "m1"}]})
    store.put("xmpp", "client", {"id": "abc"})
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value=? WHERE key='written_at'", (repr(time.time() - 600),))

    store = SqliteStore(path)
    keeper = RestartKeeper(RestartConfig(enabled=True, state_file=path, max_age=60), store,
                           store.open())
    assert keeper.stale and keeper.previous is None
    assert keeper.leftovers == [("b@m/jvb1", "m1", "r@c")]
    state = store.load()
    assert state is not None and state.records == {}  # cleared, with a fresh heartbeat


def test_a_fresh_store_is_kept() -> None:
    store = MemoryStore()
    store.heartbeat()
    store.put(CONFERENCE, "r@c", {"room": "r@c", "bridges": []})
    keeper = RestartKeeper(RestartConfig(enabled=True, max_age=60), store, store.load())
    assert not keeper.stale and keeper.previous is not None
    assert store.load() is not None and store.load().of_kind(CONFERENCE)  # type: ignore[union-attr]


def _stanza(n: int) -> Element:
    return element("{jabber:client}message", {"to": "a@b", "id": str(n)},
                   element("{jabber:client}body", text=f"m{n}"))


def test_the_journal_rebuilds_a_session_that_resumes() -> None:
    store = MemoryStore()
    journal = ConnectionJournal(store, "client")
    sm = StreamManagement(ack_request_every=100)
    sm.enabled("sm-1", True, None)
    journal.new_session(JID.parse("focus@auth.x/focus"), sm)
    for n in range(1, 6):
        sm.record_sent(_stanza(n))
    sm.acknowledge(2)
    sm.count_inbound()
    sm.count_inbound()
    sm.checkpoint()
    store.heartbeat()

    state = store.load()
    assert state is not None
    restored, jid = restored_session(state.of_kind("xmpp")["client"], state.outbox["client"], 5, 100)
    assert jid == JID.parse("focus@auth.x/focus")
    assert (restored.id, restored.inbound, restored.outbound) == ("sm-1", 2, 5)
    assert [el.get("id") for el in restored.unacked()] == ["3", "4", "5"]
    # The server had 4 of them: the fifth is sent again.
    assert [serialize(el) for el in restored.resumed(4)] == [serialize(_stanza(5))]


def test_a_restored_session_accepts_an_ack_beyond_what_the_store_knew() -> None:
    store = MemoryStore()
    journal = ConnectionJournal(store, "client")
    sm = StreamManagement()
    sm.enabled("sm-1", True, None)
    journal.new_session(JID.parse("focus@auth.x/focus"), sm)
    sm.record_sent(_stanza(1))
    store.heartbeat()
    state = store.load()
    assert state is not None
    restored, _ = restored_session(state.of_kind("xmpp")["client"], state.outbox["client"], 5, 100,
                                   ConnectionJournal(store, "client"))
    # The old process sent two more before it died, which the store never saw.
    assert restored.resumed(3) == []
    assert restored.outbound == 3 and store.outbox.get("client") == {}
    # A live session still refuses an ack for stanzas never sent.
    live = StreamManagement()
    live.record_sent(_stanza(1))
    with pytest.raises(StreamManagementError):
        live.acknowledge(3)


def test_a_session_that_cannot_resume_is_not_journalled() -> None:
    store = MemoryStore()
    sm = StreamManagement()
    sm.enabled(None, False, None)
    ConnectionJournal(store, "client").new_session(JID.parse("focus@auth.x/focus"), sm)
    assert store.records == {} and sm.journal is None
    with pytest.raises(ValueError):
        restored_session({"id": None}, [], 5, 100)


def test_typed_objects_survive_their_json_form() -> None:
    assert decode_sources(encode_sources(CAMERA)) == CAMERA
    signaled = ConferenceSourceMap({"e1": CAMERA.only([MediaType.VIDEO])})
    assert decode_signaled(encode_signaled(signaled), ConferenceSourceMap({"e1": CAMERA}), {}) == signaled
    transport = IceUdpTransport("uf", "pw", (Fingerprint("sha-256", "AB:CD", "actpass"),),
                                (Candidate(1, "1", 0, "c1", "10.0.0.1", 10000, 2130706431, "udp", "host"),),
                                rtcp_mux=True)
    assert decode_transport(encode_transport(transport)) == transport
    options = OfferOptions(video=False, opus_red=True)
    assert decode_options(encode_options(options)) == options
    presence = element("{jabber:client}presence", {"from": "r@c/n"},
                       element("{http://jitsi.org/jitmeet}stats-id", text="S"))
    occupant = Occupant("n", "participant", "none", JID.parse("u@d/r"), presence)
    back = decode_occupant(encode_occupant(occupant))
    assert (back.nick, back.role, back.affiliation, back.jid) == ("n", "participant", "none", occupant.jid)
    assert serialize(back.presence) == serialize(presence)
    with pytest.raises(ValueError):
        decode_sources({"s": [["x"]], "g": []})
