"""The `jicofo` program as operators run it: a config file, secrets from the environment, one clear
line for a bad config value, SIGTERM leaving rooms and exiting 0, and its logs: JSON lines with the
conference context, a log file reopened on SIGHUP, and the packet log with no secrets in it."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from jicofo.http.client import get_json
from jicofo.sim.participant import ParticipantOptions, SimulatedParticipant
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import simulated_bridges
from jicofo.testing.waiting import wait_until
from jicofo.xmlns.conference_iq import ConferenceRequest
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom, OccupantLeft

from .xmpp_helpers import connected, settings_for


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jicofo.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_a_bad_config_value_stops_startup_with_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "jicofo.conf"
    config.write_text('jicofo { xmpp.client.domain = auth.example.com\n'
                      '         conference { max-ssrcs-per-user = "lots" } }\n')
    result = run_cli("--config", str(config))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "max-ssrcs-per-user" in lines[0]


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.conf"))
    assert result.returncode == 2
    assert "nope.conf" in result.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config_text(prosody: ProsodyInstance, rest_port: int = -1, client_extra: str = "") -> str:
    # An upstream-style file; the secrets come from the environment, as the README advises.
    return f"""
jicofo {{
  xmpp {{
    client {{
      {client_extra}
      hostname = "{prosody.ip}"
      port = {prosody.c2s_port}
      domain = "{prosody.auth_domain}"
      xmpp-domain = "{prosody.domain}"
      username = "focus"
      use-tls = false
      conference-muc-jid = "{prosody.muc_domain}"
    }}
    component {{
      enabled = true
      hostname = "{prosody.ip}"
      port = {prosody.component_port}
      domain = "{prosody.domain}"
      subdomain = "focus"
    }}
  }}
  bridge {{ brewery-jid = "{prosody.brewery_jid}" }}
  rest {{ host = "127.0.0.1", port = {rest_port} }}
}}
"""


async def test_the_focus_process_serves_a_conference_and_stops_cleanly_on_sigterm(
    prosody: ProsodyInstance, tmp_path: Path,
) -> None:
    config = tmp_path / "jicofo.conf"
    rest_port = _free_port()
    config.write_text(_config_text(prosody, rest_port))
    env = {**os.environ, "JICOFO_AUTH_PASSWORD": prosody.focus_password,
           "JICOFO_SECRET": prosody.component_secret}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "jicofo.cli", "--config", str(config), "--log-level", "INFO"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        room = f"cli@{prosody.muc_domain}"
        async with connected(settings_for(prosody)) as client:
            request = ConferenceRequest(room=room).to_element()
            answer = None
            with trio.fail_after(20):
                while answer is None:
                    try:
                        answer = await client.request(client.iq("set", "focus.meet.test", request), 5)
                    except Exception:  # the process is still starting (component not up yet)
                        await trio.sleep(0.2)
            body = answer.find("{http://jitsi.org/protocol/focus}conference")
            assert body is not None and body.get("ready") == "true"
            version = await get_json("127.0.0.1", rest_port, "/about/version")
            assert isinstance(version, dict) and version.get("name")
            member = MucRoom(client, JID.parse(room), "a1b2c3d4")
            await member.join()
            await wait_until(lambda: "focus" in member.occupants, 10, "the focus in the room")
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(20):
                while True:
                    event = await member.events.receive()
                    if isinstance(event, OccupantLeft) and event.occupant.nick == "focus":
                        break
            with trio.fail_after(20):
                code = await process.wait()
        assert code == 0
        assert process.stderr is not None
        log = (await process.stderr.receive_some(1_000_000)).decode()
        for secret in (prosody.focus_password, prosody.component_secret):
            assert secret not in log
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# ----- logging ------------------------------------------------------------------------------------


def test_bad_logging_flags_stop_startup_with_one_line(tmp_path: Path) -> None:
    for args, env, named in (
        (["--log-format", "xml"], {}, "--log-format"),
        ([], {"JICOFO_LOG_FORMAT": "yaml"}, "--log-format"),
        (["--log-level", "LOUD"], {}, "--log-level"),
        (["--log-file", str(tmp_path / "missing" / "jicofo.log")], {}, "log file"),
        (["--packet-log", str(tmp_path / "missing" / "xmpp.log")], {}, "log file"),
    ):
        result = run_cli(*args, env=env)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1, (args, env, result.stderr)
        assert named in lines[0], lines[0]


def test_help_documents_the_logging_flags() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in ("--log-level", "--log-format", "--log-file", "--packet-log", "SIGHUP"):
        assert flag in result.stdout, flag


def test_logging_flags_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from jicofo.cli import build_parser

    assert build_parser().parse_args([]).packet_log is None
    assert build_parser().parse_args(["--packet-log"]).packet_log == ""  # into the main log
    monkeypatch.setenv("JICOFO_LOG_FORMAT", "json")
    monkeypatch.setenv("JICOFO_LOG_FILE", "/var/log/jitsi/jicofo.log")
    monkeypatch.setenv("JICOFO_PACKET_LOG", "/var/log/jitsi/jicofo-xmpp.log")
    args = build_parser().parse_args([])
    assert args.log_format == "json" and args.log_file == Path("/var/log/jitsi/jicofo.log")
    assert args.packet_log == "/var/log/jitsi/jicofo-xmpp.log"
    assert build_parser().parse_args(["--log-format", "text"]).log_format == "text"


async def _start_focus(prosody: ProsodyInstance, tmp_path: Path, *args: str,
                       client_extra: str = "") -> trio.Process:
    config = tmp_path / "jicofo.conf"
    config.write_text(_config_text(prosody, client_extra=client_extra))
    env = {**os.environ, "JICOFO_AUTH_PASSWORD": prosody.focus_password,
           "JICOFO_SECRET": prosody.component_secret}
    # stderr into a file: a pipe could fill up and block the process.
    stderr = os.open(tmp_path / "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return await trio.lowlevel.open_process(
            [sys.executable, "-m", "jicofo.cli", "--config", str(config), *args],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    finally:
        os.close(stderr)


async def _request_conference(client: XMPPClient, room: str) -> None:
    """A conference request to the focus's component, retried while the process starts."""
    request = ConferenceRequest(room=room).to_element()
    with trio.fail_after(20):
        while True:
            try:
                answer = await client.request(client.iq("set", "focus.meet.test", request), 5)
                break
            except Exception:  # the process is still starting (component not up yet)
                await trio.sleep(0.2)
    body = answer.find("{http://jitsi.org/protocol/focus}conference")
    assert body is not None and body.get("ready") == "true"


async def _stop(process: trio.Process) -> int:
    process.send_signal(signal.SIGTERM)
    with trio.fail_after(20):
        return await process.wait()


def _json_lines(path: Path) -> list[dict[str, object]]:
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines()]


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def test_json_log_file_reopened_on_sighup_after_rotation(
    prosody: ProsodyInstance, tmp_path: Path,
) -> None:
    log_file = tmp_path / "jicofo.log"
    rotated = tmp_path / "jicofo.log.1"
    process = await _start_focus(prosody, tmp_path, "--log-format", "json", "--log-file",
                                 str(log_file), "--packet-log")
    try:
        first, second = f"before@{prosody.muc_domain}", f"after@{prosody.muc_domain}"

        def requested(room: str, entries: list[dict[str, object]]) -> list[dict[str, object]]:
            """The focus's line for the conference request, which carries the room as a field."""
            return [e for e in entries if e.get("room") == room
                    and str(e["message"]).startswith(f"conference request for {room}")]

        async with connected(settings_for(prosody)) as client:
            await _request_conference(client, first)
            await wait_until(lambda: requested(first, _json_lines(log_file)), 10,
                             "the conference request logged with its room")
            # logrotate's way: move the file, then SIGHUP; the process writes to a new file.
            log_file.rename(rotated)
            process.send_signal(signal.SIGHUP)
            await wait_until(log_file.exists, 10, "a new log file after SIGHUP")
            await _request_conference(client, second)
            await wait_until(lambda: requested(second, _json_lines(log_file)), 10,
                             "the later conference logged in the new file")
            assert await _stop(process) == 0

        old, new = _json_lines(rotated), _json_lines(log_file)
        for entry in old + new:  # every line is one JSON object with the fields shippers need
            assert {"ts", "level", "logger", "message"} <= set(entry), entry
            assert entry["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert requested(first, old) and not requested(second, old)
        assert requested(second, new) and not requested(first, new)
        # The conference's own lines carry its room too (its tasks were started in that context).
        assert any(e.get("room") == first and e["logger"].startswith("jicofo.conference")
                   for e in old)
        assert any(e["message"] == "reopened 1 log file(s)" for e in new)
        assert any(e["logger"] == "jicofo.app" and "stopping" in str(e["message"]) for e in new)
        # --packet-log without a path: the stanzas go into the main log, here as JSON lines too,
        # at DEBUG although the level is INFO.
        packets = [e for e in old + new if e["logger"] == "jicofo.xmpp.packets"]
        assert packets and all(e["level"] == "DEBUG" for e in packets)
        assert not [e for e in old + new if e["level"] == "DEBUG" and e not in packets]
        assert any("SENT PKT" in str(e["message"]) for e in packets)
        assert any("RCV PKT" in str(e["message"]) and first in str(e["message"]) for e in packets)
        text = _read(rotated) + _read(log_file)
        for secret in (prosody.focus_password, prosody.component_secret):
            assert secret not in text
        assert '"level"' not in _read(tmp_path / "stderr")  # the log went to the file only
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_packet_log_file_shows_both_directions_and_no_secrets(
    prosody: ProsodyInstance, tmp_path: Path,
) -> None:
    packet_log = tmp_path / "xmpp.log"
    process = await _start_focus(prosody, tmp_path, "--packet-log", str(packet_log))
    try:
        room = f"packets@{prosody.muc_domain}"
        async with connected(settings_for(prosody)) as client:
            await _request_conference(client, room)
            member = MucRoom(client, JID.parse(room), "a1b2c3d4")
            await member.join()
            await wait_until(lambda: "focus" in member.occupants, 10, "the focus in the room")
            await wait_until(lambda: "a1b2c3d4" in _read(packet_log), 10,
                             "the member's presence in the packet log")
            assert await _stop(process) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    text = packet_log.read_text()
    lines = text.splitlines()
    # A line sent from a conference's task carries its context ("[room=...] ") before the name.
    pattern = re.compile(r" DEBUG jicofo\.xmpp\.packets: (?:\[[^]]*\] )?"
                         r"(?P<conn>.+?) (?P<dir>RCV|SENT) PKT: (?P<xml>.*)")
    seen: dict[tuple[str, str], list[str]] = {}
    for line in lines:
        match = pattern.search(line)
        if match:
            seen.setdefault((match["conn"], match["dir"]), []).append(match["xml"])
    connections = {conn for conn, _ in seen}
    # Each connection is named as the app names it.
    client_conn, component_conn = "xmpp client", "xmpp component"
    assert {client_conn, component_conn} <= connections, connections
    for conn in (client_conn, component_conn):
        sent, received = seen[(conn, "SENT")], seen[(conn, "RCV")]
        assert any(x.startswith("<?xml") and "<stream:stream" in x for x in sent), conn
        assert any(x.startswith("<stream:stream") for x in received), conn
        assert "</stream:stream>" in sent, conn  # the orderly close on SIGTERM
    # The request in, the answer out (component); the room's presence out and back (client).
    assert any("<conference" in x and room in x for x in seen[(component_conn, "RCV")])
    assert any('ready="true"' in x for x in seen[(component_conn, "SENT")])
    assert any(x.startswith("<presence") and room in x for x in seen[(client_conn, "SENT")])
    assert any(x.startswith("<presence") and "a1b2c3d4" in x for x in seen[(client_conn, "RCV")])
    # Secrets: never the password or secret, nor the SASL payloads or the handshake digest.
    for secret in (prosody.focus_password, prosody.component_secret):
        assert secret not in text
    plain = base64.b64encode(f"\0focus\0{prosody.focus_password}".encode()).decode()
    assert plain not in text
    auth = [x for x in seen[(client_conn, "SENT")] if x.startswith("<auth")]
    assert auth and all(x.endswith(">[redacted]</auth>") for x in auth)
    for x in seen[(client_conn, "SENT")] + seen[(client_conn, "RCV")]:
        if re.match(r"<(response|challenge|success)\b", x) and not x.endswith("/>"):
            assert "[redacted]" in x, x
    handshake = [x for x in seen[(component_conn, "SENT")] if x.startswith("<handshake")]
    assert handshake == ["<handshake>[redacted]</handshake>"]
    # The main log (stderr) has the ordinary lines, not the packets.
    stderr = _read(tmp_path / "stderr")
    assert "PKT" not in stderr and "conference request" in stderr


async def test_sigterm_while_the_xmpp_server_is_unreachable_stops_at_once(tmp_path: Path) -> None:
    config = tmp_path / "jicofo.conf"
    config.write_text(f"""
jicofo {{
  xmpp.client {{ hostname = "127.0.0.1", port = {_free_port()}, domain = "auth.example.com",
                 username = "focus", password = "not-needed", use-tls = false }}
  rest.port = -1
}}
""")
    stderr_path = tmp_path / "stderr"
    stderr = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "jicofo.cli", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=stderr)
    finally:
        os.close(stderr)
    try:
        # Still connecting (with backoff): nothing to leave, so SIGTERM stops at once.
        await wait_until(lambda: "reconnecting" in _read(stderr_path), 20, "a reconnect attempt")
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(5):
            assert await process.wait() == 0
        assert "SIGTERM: stopping at once" in _read(stderr_path)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# ----- stopping during a call ---------------------------------------------------------------------


async def test_sigterm_during_a_call_leaves_the_room_and_expires_the_endpoints_within_the_bound(
    prosody: ProsodyInstance, tmp_path: Path,
) -> None:
    # The ordered stop is bounded by max(5 s, the client reply timeout): 5 s here.
    bound = 5.0
    log_file = tmp_path / "jicofo.log"
    process = await _start_focus(prosody, tmp_path, "--log-format", "json", "--log-file",
                                 str(log_file), client_extra="reply-timeout = 5 seconds")
    try:
        room = f"sigterm@{prosody.muc_domain}"
        async with simulated_bridges(prosody, 1) as sims, trio.open_nursery() as nursery:
            engine = sims.bridges[0].engine
            people = [SimulatedParticipant(ParticipantOptions(
                xmpp=settings_for(prosody), room=room, nick=f"{n:02x}c0ffee", seed=n))
                for n in range(2)]
            async with connected(settings_for(prosody)) as client:
                await _request_conference(client, room)  # the focus is up (and its component)
            for person in people:
                await nursery.start(person.run)
            for person in people:
                await person.wait_for_session(15)
            endpoints = {p.endpoint_id for p in people}
            (conference,) = engine.conferences.values()
            assert set(conference.endpoints) == endpoints
            before = len(await get_json("127.0.0.1", sims.http_port, "/requests"))

            process.send_signal(signal.SIGTERM)
            started = trio.current_time()
            with trio.fail_after(bound + 10):
                code = await process.wait()
            elapsed = trio.current_time() - started
            assert code == 0
            assert elapsed < bound + 3, elapsed  # the bound, and the interpreter's exit

            # The bridge simulator saw the endpoints expired, and nothing is left on it.
            log = (await get_json("127.0.0.1", sims.http_port, "/requests"))[before:]
            expires = [e for e in log if e["kind"] == "expire"]
            assert expires, log
            assert engine.conferences == {}
            # Every participant saw the focus leave the room.
            for person in people:
                await person.wait_for(lambda p=person: p.first("focus-left") is not None, 10,
                                      "the focus to leave the room")
            nursery.cancel_scope.cancel()

        # The process's JSON log: the call's lines carry the room, meeting id and participant.
        entries = _json_lines(log_file)
        ours = [e for e in entries if e.get("room") == room]
        meeting_ids = {e["meeting_id"] for e in ours if "meeting_id" in e}
        assert len(meeting_ids) == 1, meeting_ids
        assert {e.get("participant") for e in ours} >= endpoints
        for entry in ours:
            if "participant" in entry:
                assert entry["meeting_id"] in meeting_ids, entry
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
