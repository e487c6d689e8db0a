"""Logging for the focus: one line per meaningful event, with the conference context attached.

    configure_logging("INFO", "json", packet_log=False)
    with log_context(room="room@conference.example.com", meeting_id="..."):
        ...                     # every line logged here (and in tasks started here) carries them

Context. `log_context` sets a contextvar; trio copies the context into every task started from
inside the block, so a conference's nursery started there tags all of its tasks' lines. Blocks
nest (inner keys win). Text lines read `[room=… meeting_id=… participant=…] message`, as
upstream's tags; JSON lines carry the same keys as fields.

Packet log. Upstream writes every stanza in and out per connection ("RCV PKT"/"SENT PKT") when its
PacketDebugger logger is at debug. Here the logger is `jicofo.xmpp.packets`; `log_packet` writes
to it with secrets taken out by `redact` (SASL payloads, component handshakes, passwords, tokens).
`configure_logging(packet_log=True)` switches it on, into its own file when one is given.

Files. Handlers installed with a file path reopen it on `reopen_log_files()` (what SIGHUP does:
logrotate moves the file, the process reopens the path). `reopen_on_sighup` is the task for it.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Literal

import trio

PACKET_LOGGER = "jicofo.xmpp.packets"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(log_context)s%(message)s"
# Context keys in the order they are shown; others follow sorted. `endpoint` shows as upstream's
# `participant`.
_KEY_ORDER = ("room", "meeting_id", "participant")
_RENAME = {"endpoint": "participant"}

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "jicofo_log_context", default=MappingProxyType({})
)
# Handlers this module installed (so a second configure_logging replaces them, and SIGHUP
# reopens their files).
_installed: list[logging.Handler] = []

LogFormat = Literal["text", "json"]


# ----- context --------------------------------------------------------------------------------


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Attach `room`, `meeting_id`, `endpoint` (shown as `participant`) or any other key to every
    line logged in this block, and in tasks started from it. None values are left out."""
    merged = dict(_context.get())
    for key, value in fields.items():
        if value is not None:
            merged[_RENAME.get(key, key)] = str(value)
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, str]:
    return dict(_context.get())


def _ordered(ctx: Mapping[str, str]) -> list[tuple[str, str]]:
    first = [(k, ctx[k]) for k in _KEY_ORDER if k in ctx]
    return first + sorted((k, v) for k, v in ctx.items() if k not in _KEY_ORDER)


class ContextFilter(logging.Filter):
    """Puts the current log context on each record: `record.context` (a dict) and
    `record.log_context` (`"[room=… participant=…] "`, or empty)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get()
        record.context = dict(ctx)
        record.log_context = (
            "[" + " ".join(f"{k}={v}" for k, v in _ordered(ctx)) + "] " if ctx else ""
        )
        return True


# ----- formatters -----------------------------------------------------------------------------


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "log_context"):
            ContextFilter().filter(record)
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `ts` (UTC, ISO 8601 with milliseconds), `level`, `logger`,
    `message`, the context keys, and `exception` / `stack` when present."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "context"):
            ContextFilter().filter(record)
        ts = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _ordered(record.context):  # type: ignore[attr-defined]
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def make_formatter(fmt: LogFormat) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"log format must be 'text' or 'json', not {fmt!r}")


# ----- handlers and setup ---------------------------------------------------------------------


class ReopenableFileHandler(logging.FileHandler):
    """A file handler whose file can be reopened by path (after logrotate moved it)."""

    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream is not None:
                try:
                    self.stream.flush()
                finally:
                    self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


def configure_logging(
    level: str | int = "INFO",
    fmt: LogFormat = "text",
    packet_log: bool = False,
    *,
    log_file: str | Path | None = None,
    packet_log_file: str | Path | None = None,
    stream: IO[str] | None = None,
) -> None:
    """Set up the root logger: one handler (stderr, or `log_file`) with the context filter and the
    chosen format. Calling it again replaces what an earlier call installed.

    `packet_log`: log every stanza in and out (`jicofo.xmpp.packets` at DEBUG), into
    `packet_log_file` when given (like upstream's jicofo-xmpp.log), else with the other lines."""
    if isinstance(level, str):
        numeric = logging.getLevelName(level.upper())
        if not isinstance(numeric, int):
            raise ValueError(f"unknown log level {level!r}")
        level = numeric
    formatter = make_formatter(fmt)
    root = logging.getLogger()
    packets = logging.getLogger(PACKET_LOGGER)
    for old in _installed:
        root.removeHandler(old)
        packets.removeHandler(old)
        old.close()
    _installed.clear()

    handler: logging.Handler
    if log_file is not None:
        handler = ReopenableFileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    _installed.append(handler)

    if packet_log:
        packets.setLevel(logging.DEBUG)
        if packet_log_file is not None:
            packet_handler = ReopenableFileHandler(packet_log_file, encoding="utf-8")
            packet_handler.addFilter(ContextFilter())
            packet_handler.setFormatter(make_formatter(fmt))
            packets.addHandler(packet_handler)
            packets.propagate = False
            _installed.append(packet_handler)
        else:
            packets.propagate = True
    else:
        # Off unless asked for, whatever the root level (DEBUG must not dump every stanza).
        packets.setLevel(logging.CRITICAL + 1)
        packets.propagate = True


def reopen_log_files() -> int:
    """Reopen every log file `configure_logging` opened (SIGHUP). Returns how many."""
    count = 0
    for handler in _installed:
        if isinstance(handler, ReopenableFileHandler):
            handler.reopen()
            count += 1
    if count:
        logging.getLogger(__name__).info("reopened %d log file(s)", count)
    return count


async def reopen_on_sighup(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Task: reopen the log files on each SIGHUP, until cancelled."""
    with trio.open_signal_receiver(signal.SIGHUP) as signals:
        task_status.started()
        async for _ in signals:
            reopen_log_files()


# ----- packet log and redaction ---------------------------------------------------------------

_SECRET_ELEMENTS = "auth|response|challenge|success|handshake|password"
_ELEMENT_RE = re.compile(
    rf"(<(?:[\w.-]+:)?({_SECRET_ELEMENTS})(?:\s[^>]*)?(?<!/)>)(.*?)(</(?:[\w.-]+:)?\2\s*>)",
    re.DOTALL,
)
_ATTRIBUTE_RE = re.compile(r"""(\s(?:password|token|secret|pwd)\s*=\s*)(["'])(.*?)\2""", re.DOTALL)
# The password in a bridge's web-socket URL (colibri-ws / colibri-relay-ws ...?pwd=...).
_URL_PWD_RE = re.compile(r"""([?&](?:amp;)?pwd=)[^&"'<\s]*""")
_PROPERTY_RE = re.compile(
    r"""(<(?:[\w.-]+:)?property\b[^>]*\bname\s*=\s*(["'])(?:password|token)\2[^>]*\bvalue\s*=\s*)"""
    r"""(["'])(.*?)\3""",
    re.DOTALL,
)
REDACTED = "[redacted]"


def redact(xml_text: str) -> str:
    """Take secrets out of serialized XML before it is logged: the payloads of SASL `<auth>`,
    `<response>`, `<challenge>` and `<success>`, the XEP-0114 `<handshake>` digest, any
    `<password>` element, `password` / `token` / `secret` attributes (a conference request's
    JWT is one), ICE `pwd` attributes and the `pwd` of web-socket URLs (they let anyone connect
    to the bridge as that endpoint). Element names and everything else stay, so the log still
    shows what happened."""
    text = _ELEMENT_RE.sub(
        lambda m: f"{m.group(1)}{REDACTED}{m.group(4)}" if m.group(3) else m.group(0), xml_text
    )
    text = _ATTRIBUTE_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}", text)
    text = _URL_PWD_RE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _PROPERTY_RE.sub(lambda m: f"{m.group(1)}{m.group(3)}{REDACTED}{m.group(3)}", text)


_packet_log = logging.getLogger(PACKET_LOGGER)


def packet_log_enabled() -> bool:
    return _packet_log.isEnabledFor(logging.DEBUG)


def log_packet(connection: str, direction: Literal["in", "out"], data: bytes | str) -> None:
    """One line per stanza (or stream chunk) crossing `connection`, secrets redacted; a no-op
    unless the packet log is on. For the XMPP layer's reader and writer."""
    if not _packet_log.isEnabledFor(logging.DEBUG):
        return
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    _packet_log.debug("%s %s: %s", connection, "RCV PKT" if direction == "in" else "SENT PKT",
                      redact(text))
