"""The local stack for `jicofo-stress --local`: a throw-away Prosody (the test harness), our focus
as a child process (`python -m jicofo.cli --config <generated file>`, so its CPU and memory are its
own), and the simulated bridges as one `jicofo-bridge-sim` child process (so they do not share the
load generator's core either). Optionally the focus's XMPP client connection goes through a TCP
proxy in this process, which the `cut-focus-connection` fault cuts (the session resumes); the
`drop-focus-connection` fault ends the focus's session on Prosody, so that it cannot resume.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import trio

from jicofo.testing.gateways import jibri_brewery, jigasi_brewery
from jicofo.testing.prosody import ProsodyInstance, start_prosody
from jicofo.testing.sessions import end_session
from jicofo.testing.stack import focus_overrides
from jicofo.testing.tcp_proxy import TcpProxy
from jicofo.xmpp.client import NS_DISCO_INFO, XMPPClient
from jicofo.xmpp.errors import XMPPError
from jicofo.xmpp.settings import ClientSettings, Timeouts, TlsMode
from jicofo.xmpp.xml import element

log = logging.getLogger(__name__)

# Participants do not ping (lib-jitsi-meet does every 10 s; that load is Prosody's, not the focus's).
PARTICIPANT_TIMEOUTS = Timeouts(connect=15, negotiation=20, request=15, ping_interval=0, close=2)
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
_SECRET_KEYS = ("jicofo.xmpp.client.password", "jicofo.xmpp.component.secret")


class StackError(RuntimeError):
    """The local stack could not be started."""


@dataclass
class Target:
    """Where the load goes and what can be observed there."""

    description: str
    participant_settings: ClientSettings  # anonymous logins
    muc_domain: str
    focus: str  # where conference IQs go
    bridge_api: tuple[str, int] | None = None  # control API of our simulated bridges
    jibri_api: tuple[str, int] | None = None  # control API of our simulated Jibris
    jigasi_api: tuple[str, int] | None = None  # control API of our simulated Jigasis
    focus_rest: tuple[str, int] | None = None
    focus_proxy: TcpProxy | None = None  # cut() = cut-focus-connection
    end_focus_session: Callable[[], Awaitable[None]] | None = None  # drop-focus-connection
    pids: Mapping[str, int] | None = None  # process name -> pid, for /proc figures


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _hocon_value(value: Any) -> str:
    return json.dumps(value)  # JSON scalars are valid HOCON values


def focus_config_text(overrides: Mapping[str, Any]) -> str:
    """A HOCON file with the focus's settings, secrets left out (they go in the environment)."""
    lines = ["# Written by jicofo-stress --local; secrets come from JICOFO_AUTH_PASSWORD/JICOFO_SECRET."]
    for key, value in sorted(overrides.items()):
        if key not in _SECRET_KEYS:
            lines.append(f"{key} = {_hocon_value(value)}")
    return "\n".join(lines) + "\n"


async def terminate(process: trio.Process, name: str, grace: float = STOP_TIMEOUT) -> None:
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            with trio.move_on_after(grace):
                await process.wait()
            if process.returncode is None:
                log.warning("%s did not stop within %g s; killing it", name, grace)
                process.kill()
                with trio.move_on_after(5):
                    await process.wait()


async def _read_port_line(process: trio.Process, timeout: float) -> int:
    """The control API port from jicofo-bridge-sim's one stdout line."""
    assert process.stdout is not None
    buffer = b""
    with trio.move_on_after(timeout):
        while b"\n" not in buffer:
            chunk = await process.stdout.receive_some(4096)
            if not chunk:
                break
            buffer += chunk
    line = buffer.decode(errors="replace")
    marker = "control API on http://"
    if marker not in line:
        raise StackError(f"jicofo-bridge-sim did not start (exit {process.returncode}): {line.strip()!r}")
    address = line.split(marker, 1)[1].split("/", 1)[0]
    return int(address.rsplit(":", 1)[1])


@asynccontextmanager
async def local_stack(
    bridges: int,
    *,
    jibris: int = 0,
    jigasis: int = 0,
    proxy_focus: bool = False,
    focus_log_level: str = "WARNING",
    prosody_log_level: str = "warn",
    focus_extra: Mapping[str, Any] | None = None,
    keep_logs: Path | None = None,
) -> AsyncIterator[Target]:
    """Prosody, our focus (child process) and `bridges` simulated bridges (one child process),
    until the block ends; everything is stopped in order and bounded."""
    workdir = Path(tempfile.mkdtemp(prefix="jicofo-stress-")) if keep_logs is None else keep_logs
    workdir.mkdir(parents=True, exist_ok=True)
    async with start_prosody(log_level=prosody_log_level) as prosody, trio.open_nursery() as nursery:
        proxy: TcpProxy | None = None
        if proxy_focus:
            proxy = TcpProxy(prosody.ip, prosody.c2s_port)
            await nursery.start(proxy.run)
        bridge_process = bridge_port = None
        jibri_process = jibri_port = None
        jigasi_process = jigasi_port = None
        focus_process: trio.Process | None = None
        extra = dict(focus_extra or {})
        try:
            if bridges:
                bridge_process, bridge_port = await _start_bridges(prosody, bridges, workdir)
            if jibris:
                jibri_process, jibri_port = await _start_jibris(prosody, jibris, workdir)
                extra.setdefault("jicofo.jibri.brewery-jid", jibri_brewery(prosody))
                extra.setdefault("jicofo.xmpp.trusted-domains", [prosody.auth_domain])
            if jigasis:
                jigasi_process, jigasi_port = await _start_jigasis(prosody, jigasis, workdir)
                extra.setdefault("jicofo.jigasi.brewery-jid", jigasi_brewery(prosody))
                extra.setdefault("jicofo.xmpp.trusted-domains", [prosody.auth_domain])
            rest_port = free_port()
            focus_process = await _start_focus(prosody, workdir, rest_port, proxy, focus_log_level, extra)
            await _wait_focus_ready(focus_process, prosody, workdir)
            pids = {"focus": focus_process.pid, "prosody": prosody.pid}
            if bridge_process is not None:
                pids["bridges"] = bridge_process.pid
            if jibri_process is not None:
                pids["jibris"] = jibri_process.pid
            if jigasi_process is not None:
                pids["jigasis"] = jigasi_process.pid
            yield Target(
                description=f"local stack (prosody {prosody.ip}:{prosody.c2s_port}, focus pid "
                            f"{focus_process.pid}, {bridges} simulated bridge(s)"
                            + (f"; logs in {workdir})" if keep_logs is not None else ")"),
                participant_settings=participant_settings(prosody),
                muc_domain=prosody.muc_domain,
                focus=prosody.component_jid,
                bridge_api=("127.0.0.1", bridge_port) if bridge_port else None,
                jibri_api=("127.0.0.1", jibri_port) if jibri_port else None,
                jigasi_api=("127.0.0.1", jigasi_port) if jigasi_port else None,
                focus_rest=("127.0.0.1", rest_port),
                focus_proxy=proxy,
                end_focus_session=lambda: end_session(focus_session_settings(prosody)),
                pids=pids,
            )
        finally:
            if focus_process is not None:
                await terminate(focus_process, "the focus")
            if bridge_process is not None:
                await terminate(bridge_process, "jicofo-bridge-sim", grace=5)
            if jibri_process is not None:
                await terminate(jibri_process, "jicofo-jibri-sim", grace=5)
            if jigasi_process is not None:
                await terminate(jigasi_process, "jicofo-jigasi-sim", grace=5)
            nursery.cancel_scope.cancel()
            if keep_logs is None:
                shutil.rmtree(workdir, ignore_errors=True)


def _log_file(path: Path) -> BinaryIO:
    """A child's stderr; the child gets its own descriptor, ours is closed once it runs."""
    return open(path, "wb")  # noqa: SIM115


def participant_settings(prosody: ProsodyInstance) -> ClientSettings:
    return ClientSettings(
        domain=prosody.domain, host=prosody.ip, port=prosody.c2s_port, tls=TlsMode.DISABLED,
        allow_plain_without_tls=True, timeouts=PARTICIPANT_TIMEOUTS,
    )


def focus_session_settings(prosody: ProsodyInstance) -> ClientSettings:
    """The focus's full JID on the test Prosody, to end its session there."""
    return ClientSettings(
        domain=prosody.auth_domain, username="focus", password=prosody.focus_password,
        resource="focus", host=prosody.ip, port=prosody.c2s_port, tls=TlsMode.DISABLED,
        allow_plain_without_tls=True, timeouts=PARTICIPANT_TIMEOUTS,
    )


async def _start_bridges(prosody: ProsodyInstance, count: int, workdir: Path) -> tuple[trio.Process, int]:
    return await start_bridge_sim(
        host=prosody.ip, port=prosody.c2s_port, domain=prosody.auth_domain, tls=False,
        brewery=prosody.brewery_jid, count=count, password=prosody.jvb_password, workdir=workdir,
    )


async def _start_jibris(prosody: ProsodyInstance, count: int, workdir: Path) -> tuple[trio.Process, int]:
    """`count` simulated Jibris in one `jicofo-jibri-sim` child (account jibri@auth, registered
    here); its log goes to `workdir/jibris.log`."""
    return await _start_gateway_sim(prosody, "jibri", ["--brewery", jibri_brewery(prosody),
                                                       "--jibris", str(count)], workdir)


async def _start_jigasis(prosody: ProsodyInstance, count: int, workdir: Path) -> tuple[trio.Process, int]:
    """`count` simulated SIP Jigasis in one `jicofo-jigasi-sim` child (account jigasi@auth)."""
    return await _start_gateway_sim(prosody, "jigasi", ["--brewery", jigasi_brewery(prosody),
                                                        "--jigasis", str(count)], workdir)


async def _start_gateway_sim(prosody: ProsodyInstance, kind: str, args: list[str],
                             workdir: Path) -> tuple[trio.Process, int]:
    password = secrets.token_hex(8)
    await prosody.register(kind, prosody.auth_domain, password)
    stderr = _log_file(workdir / f"{kind}s.log")
    try:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", f"jicofo.sim.{kind}_cli", "--host", prosody.ip,
             "--port", str(prosody.c2s_port), "--domain", prosody.auth_domain, "--user", kind,
             "--tls", "off", *args, "--http-port", "0", "--log-level", "WARNING"],
            env={**os.environ, f"{kind.upper()}_PASSWORD": password}, stdout=subprocess.PIPE,
            stderr=stderr,
        )
    finally:
        stderr.close()
    try:
        control_port = await _read_port_line(process, STARTUP_TIMEOUT)
    except BaseException:
        await terminate(process, f"jicofo-{kind}-sim", grace=2)
        raise
    return process, control_port


async def start_bridge_sim(
    *, host: str, port: int, domain: str, tls: bool, brewery: str, count: int, password: str,
    workdir: Path, user: str = "jvb", extra_args: tuple[str, ...] = (),
) -> tuple[trio.Process, int]:
    """`count` simulated bridges in one `jicofo-bridge-sim` child process; returns it and the port
    of its control API. Its log goes to `workdir/bridges.log`."""
    stderr = _log_file(workdir / "bridges.log")
    try:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "jicofo.sim.bridge_cli", "--host", host, "--port", str(port),
             "--domain", domain, "--user", user, "--tls", "on" if tls else "off", "--brewery", brewery,
             "--bridges", str(count), "--stats-interval", "5", "--http-port", "0",
             "--log-level", "WARNING", *extra_args],
            env={**os.environ, "JVB_PASSWORD": password},
            stdout=subprocess.PIPE, stderr=stderr,
        )
    finally:
        stderr.close()
    try:
        control_port = await _read_port_line(process, STARTUP_TIMEOUT)
    except BaseException:
        await terminate(process, "jicofo-bridge-sim", grace=2)
        raise
    return process, control_port


async def _start_focus(
    prosody: ProsodyInstance, workdir: Path, rest_port: int, proxy: TcpProxy | None,
    log_level: str, extra: Mapping[str, Any],
) -> trio.Process:
    overrides = focus_overrides(prosody)
    overrides.update({"jicofo.rest.port": rest_port, "jicofo.rest.host": "127.0.0.1"})
    if proxy is not None:
        overrides.update({"jicofo.xmpp.client.hostname": "127.0.0.1",
                          "jicofo.xmpp.client.port": proxy.port})
    overrides.update(extra)
    config = workdir / "jicofo.conf"
    config.write_text(focus_config_text(overrides))
    env = {**os.environ, "JICOFO_AUTH_PASSWORD": prosody.focus_password,
           "JICOFO_SECRET": prosody.component_secret}
    stderr = _log_file(workdir / "focus.log")
    try:
        return await trio.lowlevel.open_process(
            [sys.executable, "-m", "jicofo.cli", "--config", str(config), "--log-level", log_level],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    finally:
        stderr.close()


async def _wait_focus_ready(process: trio.Process, prosody: ProsodyInstance, workdir: Path) -> None:
    """Until the focus's component answers disco#info. The focus connects its component last,
    after joining the brewery, where the bridges already are (they are started first)."""
    settings = participant_settings(prosody)
    with trio.move_on_after(STARTUP_TIMEOUT):
        async with trio.open_nursery() as nursery:
            probe = XMPPClient(settings, name="stress readiness probe")
            await nursery.start(probe.run)
            try:
                while process.returncode is None:
                    query = element(f"{{{NS_DISCO_INFO}}}query")
                    try:
                        await probe.request(probe.iq("get", prosody.component_jid, query), timeout=2)
                        return
                    except XMPPError:
                        await trio.sleep(0.1)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await probe.aclose()
                nursery.cancel_scope.cancel()
        raise StackError(f"the focus exited with {process.returncode} during startup:\n"
                         f"{_tail(workdir / 'focus.log')}")
    raise StackError(f"the focus did not come up within {STARTUP_TIMEOUT:g} s:\n"
                     f"{_tail(workdir / 'focus.log')}\n{_tail(workdir / 'bridges.log')}")


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return f"--- {path.name} ---\n" + path.read_text(errors="replace")[-chars:]
    except OSError:
        return f"--- {path.name}: not written ---"
