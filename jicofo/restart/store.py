"""The restart state store: a narrow interface, an SQLite implementation (stdlib) and an in-memory
one for tests. See docs/restart.md for what is stored and when.

Records are small JSON documents addressed by (kind, key); outbound stanzas the XMPP server has
not acknowledged are kept per connection in sequence order. Every call is one short transaction on
the calling (trio) thread: the write must be done before the stanza it describes goes out, and a
thread hop would cost more than the write (WAL, synchronous=NORMAL: no fsync per commit). The one
slow thing, the WAL checkpoint (it fsyncs), is not left to SQLite's automatic checkpoint on
whichever commit crosses the threshold: `checkpoint_blocking` runs it on its own connection, from
a worker thread (trio.to_thread), at each heartbeat.

Nothing here raises into the focus: a store that fails is switched off with one log line, and the
focus goes on without it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS outbox (
    conn TEXT NOT NULL, seq INTEGER NOT NULL, stanza TEXT NOT NULL, PRIMARY KEY (conn, seq));
"""
# A record larger than this is refused (a bug, not a conference): the store must stay small.
MAX_RECORD_CHARS = 4_000_000


@dataclass
class StoredState:
    """Everything a previous run left: `written_at` is its last heartbeat (Unix time)."""

    written_at: float
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # "kind\0key" -> value
    outbox: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def of_kind(self, kind: str) -> dict[str, Any]:
        prefix = kind + "\0"
        return {k[len(prefix):]: v for k, v in self.records.items() if k.startswith(prefix)}

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.written_at


class StateStore(Protocol):
    """What the focus needs from a store. A networked implementation (a standby focus on another
    machine) provides the same calls."""

    def load(self) -> StoredState | None: ...

    def put(self, kind: str, key: str, value: Any) -> None: ...

    def delete(self, kind: str, key: str) -> None: ...

    def delete_kind(self, kind: str, key_prefix: str = "") -> None: ...

    def outbox_add(self, conn: str, seq: int, stanza: str) -> None: ...

    def outbox_ack(self, conn: str, upto: int) -> None: ...

    def outbox_clear(self, conn: str) -> None: ...

    def heartbeat(self) -> None: ...

    def clear(self) -> None: ...

    def close(self) -> None: ...


class SqliteStore:
    """One SQLite file. `open` never raises: a file that cannot be used is set aside (renamed to
    `*.corrupt`) or the store runs disabled, each with one log line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock: int | None = None  # flock on <path>.lock: one process per file
        self.bytes_written = 0  # of JSON and stanza text, for the figures in the README
        self.writes = 0
        self.seconds = 0.0  # spent in SQLite calls (on the trio thread)

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def open(self) -> StoredState | None:
        """Open (creating) the file and return what it held (None: nothing usable)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self._take_lock():
                log.error("restart store %s is in use by another focus process; running without it",
                          self.path)
                return None
            self._db = self._connect()
            state = self._read()
        except (sqlite3.DatabaseError, ValueError) as exc:
            log.warning("restart store %s is unreadable (%s); starting with a fresh one",
                        self.path, exc)
            self._set_aside()
            try:
                self._db = self._connect()
            except (sqlite3.Error, OSError) as again:
                log.error("restart store %s cannot be created (%s); running without it",
                          self.path, again)
                self._db = None
            return None
        except OSError as exc:
            log.error("restart store %s cannot be opened (%s); running without it", self.path, exc)
            self._db = None
            return None
        return state

    def _take_lock(self) -> bool:
        """The dead process's lock is gone with it (the kernel drops it), a live one's is not."""
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock = fd
        return True

    def load(self) -> StoredState | None:
        if self._db is None:
            return None
        try:
            return self._read()
        except (sqlite3.DatabaseError, ValueError):
            return None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=0.5)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoint_blocking, off the trio thread
        db.executescript(_SCHEMA)
        version = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if version is None:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif version[0] != SCHEMA_VERSION:
            db.close()
            raise ValueError(f"schema version {version[0]}, not {SCHEMA_VERSION}")
        return db

    def _set_aside(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None
        for suffix in ("", "-wal", "-shm"):
            source = self.path.with_name(self.path.name + suffix)
            try:
                source.replace(source.with_name(source.name + ".corrupt"))
            except OSError:
                pass

    def _read(self) -> StoredState | None:
        assert self._db is not None
        row = self._db.execute("SELECT value FROM meta WHERE key='written_at'").fetchone()
        if row is None:
            return None
        state = StoredState(written_at=float(row[0]))
        for kind, key, value in self._db.execute("SELECT kind, key, value FROM records"):
            state.records[f"{kind}\0{key}"] = json.loads(value)
        for conn, seq, stanza in self._db.execute("SELECT conn, seq, stanza FROM outbox ORDER BY seq"):
            state.outbox.setdefault(conn, []).append((int(seq), stanza))
        return state

    def _run(self, sql: str, args: tuple[Any, ...], size: int = 0) -> None:
        db = self._db
        if db is None:
            return
        started = time.perf_counter()
        try:
            db.execute(sql, args)
        except sqlite3.Error as exc:
            log.error("restart store %s failed (%s); running without it from now on", self.path, exc)
            try:
                db.close()
            except sqlite3.Error:
                pass
            self._db = None
            return
        self.writes += 1
        self.bytes_written += size
        self.seconds += time.perf_counter() - started

    def put(self, kind: str, key: str, value: Any) -> None:
        text = json.dumps(value, separators=(",", ":"))
        if len(text) > MAX_RECORD_CHARS:
            log.error("restart store: %s record %s too large (%d chars); not written", kind, key,
                      len(text))
            return
        self._run("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (kind, key, text), len(text))

    def delete(self, kind: str, key: str) -> None:
        self._run("DELETE FROM records WHERE kind=? AND key=?", (kind, key))

    def delete_kind(self, kind: str, key_prefix: str = "") -> None:
        self._run("DELETE FROM records WHERE kind=? AND substr(key, 1, ?)=?",
                  (kind, len(key_prefix), key_prefix))

    def outbox_add(self, conn: str, seq: int, stanza: str) -> None:
        self._run("INSERT OR REPLACE INTO outbox VALUES (?, ?, ?)", (conn, seq, stanza), len(stanza))

    def outbox_ack(self, conn: str, upto: int) -> None:
        self._run("DELETE FROM outbox WHERE conn=? AND seq<=?", (conn, upto))

    def outbox_clear(self, conn: str) -> None:
        self._run("DELETE FROM outbox WHERE conn=?", (conn,))

    def heartbeat(self) -> None:
        self._run("INSERT OR REPLACE INTO meta VALUES ('written_at', ?)", (repr(time.time()),))

    def checkpoint_blocking(self) -> None:
        """Copy the WAL into the database file (blocking: call it from a worker thread). A
        passive checkpoint: it never waits for, nor holds up, the writer on the trio thread."""
        if self._db is None:
            return
        try:
            db = sqlite3.connect(self.path, timeout=0)
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.debug("restart store %s: checkpoint skipped: %s", self.path, exc)

    def clear(self) -> None:
        db = self._db
        if db is None:
            return
        try:
            db.execute("BEGIN")
            db.execute("DELETE FROM records")
            db.execute("DELETE FROM outbox")
            db.execute("DELETE FROM meta WHERE key='written_at'")
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("restart store %s: clearing failed: %s", self.path, exc)

    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


class MemoryStore:
    """The same interface in memory (for tests)."""

    def __init__(self) -> None:
        self.records: dict[str, Any] = {}
        self.outbox: dict[str, dict[int, str]] = {}
        self.written_at: float | None = None
        self.enabled = True
        self.writes = 0
        self.bytes_written = 0
        self.seconds = 0.0

    def load(self) -> StoredState | None:
        if self.written_at is None:
            return None
        state = StoredState(self.written_at, json.loads(json.dumps(self.records)))
        for conn, items in self.outbox.items():
            state.outbox[conn] = sorted(items.items())
        return state

    def put(self, kind: str, key: str, value: Any) -> None:
        self.records[f"{kind}\0{key}"] = json.loads(json.dumps(value))
        self.writes += 1

    def delete(self, kind: str, key: str) -> None:
        self.records.pop(f"{kind}\0{key}", None)

    def delete_kind(self, kind: str, key_prefix: str = "") -> None:
        prefix = f"{kind}\0{key_prefix}"
        for name in [k for k in self.records if k.startswith(prefix)]:
            del self.records[name]

    def outbox_add(self, conn: str, seq: int, stanza: str) -> None:
        self.outbox.setdefault(conn, {})[seq] = stanza

    def outbox_ack(self, conn: str, upto: int) -> None:
        items = self.outbox.get(conn, {})
        for seq in [s for s in items if s <= upto]:
            del items[seq]

    def outbox_clear(self, conn: str) -> None:
        self.outbox.pop(conn, None)

    def heartbeat(self) -> None:
        self.written_at = time.time()

    def clear(self) -> None:
        self.records.clear()
        self.outbox.clear()
        self.written_at = None

    def close(self) -> None:
        pass
