"""The `jicofo` program as operators run it: a config file, secrets from the environment, one clear
line for a bad config value, and SIGTERM leaving rooms and exiting 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

from jicofo.http.client import get_json
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.waiting import wait_until
from jicofo.xmlns.conference_iq import ConferenceRequest
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


def _config_text(prosody: ProsodyInstance, rest_port: int = -1) -> str:
    # An upstream-style file; the secrets come from the environment, as the README advises.
    return f"""
jicofo {{
  xmpp {{
    client {{
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
