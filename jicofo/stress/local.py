"""The local stack for `jicofo-stress --local`: a throw-away Prosody (the test harness), our focus
as a child process (`python -m jicofo.cli --config <generated file>`, so its CPU and memory are its
own), and the simulated bridges as one `jicofo-bridge-sim` child process (so they do not share the
load generator's core either). Optionally the focus's XMPP client connection goes through a TCP
proxy in this process, which the `cut-focus-connection` fault cuts (the session resumes); the
`drop-focus-connection` fault ends the focus's session on Prosody, so that it cannot resume.

With `--shards N` it is N such Prosody + focus pairs behind HAProxy (jicofo/stress/haproxy.py),
the simulated bridges in every shard's brewery, as a Jitsi deployment scales out.
"""

from __future__ import annotations

import dataclasses
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
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import trio

from jicofo.testing.focus_settings import focus_overrides
from jicofo.testing.gateways import jibri_brewery, jigasi_brewery
from jicofo.testing.prosody import ProsodyInstance, start_prosody
from jicofo.testing.sessions import end_session
from jicofo.testing.tcp_proxy import TcpProxy
from jicofo.xmpp.client import NS_DISCO_INFO, XMPPClient
from jicofo.xmpp.errors import XMPPError
from jicofo.xmpp.settings import ClientSettings, Timeouts, TlsMode
from jicofo.xmpp.xml import element

from .haproxy import HAProxy, HAProxyError

log = logging.getLogger(__name__)

# Participants do not ping (lib-jitsi-meet does every 10 s; that load is Prosody's, not the focus's).
PARTICIPANT_TIMEOUTS = Timeouts(connect=15, negotiation=20, request=15, ping_interval=0, close=2)
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
MAX_SHARDS = 4
RESTART_HIBERNATION = 60  # Prosody's smacks_hibernation_time with restart-focus (docker-jitsi-meet)
RESTART_DELAY = 1.0  # between the kill and the new start
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
    # restart-focus: SIGKILL the focus, start it again; returns seconds until it serves again.
    restart_focus: Callable[[], Awaitable[float]] | None = None
    pids: Mapping[str, int] | None = None  # process name -> pid, for /proc figures
    # Room -> the settings a participant of that room connects with (HAProxy routes by room).
    participant_settings_for: Callable[[str], ClientSettings] | None = None
    shards: tuple[Shard, ...] = ()  # the local stack's shards (kill-focus, the shards report)

    def settings_for(self, room: str) -> ClientSettings:
        if self.participant_settings_for is None:
            return self.participant_settings
        return self.participant_settings_for(room)


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


@dataclass
class Shard:
    """One shard of the local stack: its Prosody and the focus serving it."""

    number: int
    prosody: ProsodyInstance
    focus_process: trio.Process
    focus_rest: tuple[str, int]

    @property
    def name(self) -> str:
        return f"shard{self.number}"

    def kill_focus(self) -> None:
        """SIGKILL, as an OOM kill or a crash: the focus leaves nothing tidy behind."""
        if self.focus_process.returncode is None:
            self.focus_process.kill()


@asynccontextmanager
async def local_stack(
    bridges: int,
    *,
    shards: int = 1,
    jibris: int = 0,
    jigasis: int = 0,
    proxy_focus: bool = False,
    focus_log_level: str = "WARNING",
    focus_packet_log: bool = False,
    bridge_stats_on_change: bool = False,
    prosody_log_level: str = "warn",
    focus_extra: Mapping[str, Any] | None = None,
    keep_logs: Path | None = None,
    restartable_focus: bool = False,
) -> AsyncIterator[Target]:
    """Prosody, our focus (child process) and `bridges` simulated bridges (one child process),
    until the block ends; everything is stopped in order and bounded. With `shards` > 1: that many
    Prosody + focus pairs with HAProxy in front (participants connect over WebSocket through it,
    a room always lands on one shard) and the same bridges in every shard's brewery.
    `restartable_focus`: the (first shard's) focus keeps its conferences in a state file
    (jicofo.restart) and Prosody hibernates sessions for 60 s, so that `Target.restart_focus` can
    kill it and start it again."""
    if not 1 <= shards <= MAX_SHARDS:
        raise StackError(f"shards: between 1 and {MAX_SHARDS}")
    workdir = Path(tempfile.mkdtemp(prefix="jicofo-stress-")) if keep_logs is None else keep_logs
    workdir.mkdir(parents=True, exist_ok=True)
    extra = {"jicofo.rest.debug.enabled": True, "jicofo.rest.prometheus.enabled": True,
             **(focus_extra or {})}
    first_extra = dict(extra)
    if restartable_focus:
        first_extra.setdefault("jicofo.restart.enabled", True)
        first_extra.setdefault("jicofo.restart.state-file", str(workdir / "focus-state.sqlite3"))
        first_extra.setdefault("jicofo.restart.max-age", f"{RESTART_HIBERNATION} seconds")
    hibernation = RESTART_HIBERNATION if restartable_focus else 10
    async with AsyncExitStack() as stack:
        prosodies = [await stack.enter_async_context(
                         start_prosody(log_level=prosody_log_level, smacks_hibernation_time=hibernation))
                     for _ in range(shards)]
        nursery = await stack.enter_async_context(trio.open_nursery())
        proxy: TcpProxy | None = None
        if proxy_focus:  # the first shard's focus only
            proxy = TcpProxy(prosodies[0].ip, prosodies[0].c2s_port)
            await nursery.start(proxy.run)
        bridge_process = bridge_port = None
        focus_processes: list[trio.Process] = []
        haproxy: HAProxy | None = None
        jibri_process = jibri_port = None
        jigasi_process = jigasi_port = None
        try:
            if bridges:
                bridge_process, bridge_port = await _start_bridges(
                    prosodies, bridges, workdir, ("--stats-on-change",) if bridge_stats_on_change else ())
            # Simulated Jibris and Jigasis serve the first shard.
            if jibris:
                jibri_process, jibri_port = await _start_jibris(prosodies[0], jibris, workdir)
                first_extra.setdefault("jicofo.jibri.brewery-jid", jibri_brewery(prosodies[0]))
                first_extra.setdefault("jicofo.xmpp.trusted-domains", [prosodies[0].auth_domain])
            if jigasis:
                jigasi_process, jigasi_port = await _start_jigasis(prosodies[0], jigasis, workdir)
                first_extra.setdefault("jicofo.jigasi.brewery-jid", jigasi_brewery(prosodies[0]))
                first_extra.setdefault("jicofo.xmpp.trusted-domains", [prosodies[0].auth_domain])
            shard_list: list[Shard] = []
            for number, prosody in enumerate(prosodies, 1):
                shard_dir = workdir if shards == 1 else workdir / f"shard{number}"
                shard_dir.mkdir(exist_ok=True)
                rest_port = free_port()
                process = await _start_focus(prosody, shard_dir, rest_port,
                                             proxy if number == 1 else None, focus_log_level,
                                             first_extra if number == 1 else extra,
                                             packet_log=focus_packet_log)
                focus_processes.append(process)
                await _wait_focus_ready(process, prosody, shard_dir)
                shard_list.append(Shard(number, prosody, process, ("127.0.0.1", rest_port)))
            first = prosodies[0]
            first_shard = shard_list[0]
            first_dir = workdir if shards == 1 else workdir / "shard1"

            async def restart_focus() -> float:
                """SIGKILL the first shard's focus and start it again after RESTART_DELAY, on the
                same config and state file; returns the time from the kill to serving again."""
                killed_at = trio.current_time()
                first_shard.kill_focus()
                with trio.move_on_after(5):
                    await first_shard.focus_process.wait()
                await trio.sleep(RESTART_DELAY)
                os.replace(first_dir / "focus.log", first_dir / f"focus-before-{int(killed_at)}.log")
                process = await _start_focus(first, first_dir, first_shard.focus_rest[1], proxy,
                                             focus_log_level, first_extra, packet_log=focus_packet_log)
                first_shard.focus_process = process
                focus_processes[0] = process
                await _wait_focus_ready(process, first, first_dir)
                return trio.current_time() - killed_at

            settings_for: Callable[[str], ClientSettings] | None = None
            if shards == 1:
                pids = {"focus": focus_processes[0].pid, "prosody": first.pid}
                settings = participant_settings(first)
                where = f"prosody {first.ip}:{first.c2s_port}, focus pid {focus_processes[0].pid}"
            else:
                haproxy = HAProxy(workdir, free_port(), [(p.ip, p.http_port) for p in prosodies])
                try:
                    await haproxy.start()
                except HAProxyError as exc:
                    raise StackError(str(exc)) from None
                pids = {}
                for shard in shard_list:
                    pids[f"focus-{shard.number}"] = shard.focus_process.pid
                    pids[f"prosody-{shard.number}"] = shard.prosody.pid
                assert haproxy.pid is not None
                pids["haproxy"] = haproxy.pid
                settings = dataclasses.replace(participant_settings(first),
                                               websocket_url=haproxy.websocket_url())
                settings_for = _through_haproxy(settings, haproxy)
                where = f"{shards} shards behind haproxy 127.0.0.1:{haproxy.port}"
            if bridge_process is not None:
                pids["bridges"] = bridge_process.pid
            if jibri_process is not None:
                pids["jibris"] = jibri_process.pid
            if jigasi_process is not None:
                pids["jigasis"] = jigasi_process.pid
            yield Target(
                description=f"local stack ({where}, {bridges} simulated bridge(s)"
                            + (f"; logs in {workdir})" if keep_logs is not None else ")"),
                participant_settings=settings,
                participant_settings_for=settings_for,
                muc_domain=first.muc_domain,
                focus=first.component_jid,
                bridge_api=("127.0.0.1", bridge_port) if bridge_port else None,
                jibri_api=("127.0.0.1", jibri_port) if jibri_port else None,
                jigasi_api=("127.0.0.1", jigasi_port) if jigasi_port else None,
                focus_rest=shard_list[0].focus_rest,
                focus_proxy=proxy,
                end_focus_session=lambda: end_session(focus_session_settings(first)),
                restart_focus=restart_focus if restartable_focus else None,
                pids=pids,
                shards=tuple(shard_list),
            )
        finally:
            if haproxy is not None:
                await haproxy.stop()
            for n, process in enumerate(focus_processes, 1):
                await terminate(process, "the focus" if shards == 1 else f"the focus of shard {n}")
            if bridge_process is not None:
                await terminate(bridge_process, "jicofo-bridge-sim", grace=5)
            if jibri_process is not None:
                await terminate(jibri_process, "jicofo-jibri-sim", grace=5)
            if jigasi_process is not None:
                await terminate(jigasi_process, "jicofo-jigasi-sim", grace=5)
            nursery.cancel_scope.cancel()
            if keep_logs is None:
                shutil.rmtree(workdir, ignore_errors=True)


def _through_haproxy(settings: ClientSettings, haproxy: HAProxy) -> Callable[[str], ClientSettings]:
    def settings_for(room: str) -> ClientSettings:
        return dataclasses.replace(settings, websocket_url=haproxy.websocket_url(room))
    return settings_for


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


async def _start_bridges(prosodies: list[ProsodyInstance], count: int, workdir: Path,
                         extra_args: tuple[str, ...] = ()) -> tuple[trio.Process, int]:
    """The simulated bridges, in every shard's brewery (one XMPP login per bridge and shard, as a
    real bridge configured with several `xmpp-client.configs`)."""
    first = prosodies[0]
    extra: tuple[str, ...] = extra_args
    if len(prosodies) > 1:
        servers = [{"host": p.ip, "port": p.c2s_port, "domain": p.auth_domain, "user": "jvb",
                    "password": p.jvb_password, "tls": "off", "brewery": p.brewery_jid}
                   for p in prosodies]
        config = workdir / "bridges.conf"
        config.touch(mode=0o600)  # it holds the shards' jvb passwords
        config.write_text(f"servers = {json.dumps(servers)}\n")
        extra = (*extra, "--config", str(config))
    return await start_bridge_sim(
        host=first.ip, port=first.c2s_port, domain=first.auth_domain, tls=False,
        brewery=first.brewery_jid, count=count, password=first.jvb_password, workdir=workdir,
        extra_args=extra,
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
    log_level: str, extra: Mapping[str, Any], *, packet_log: bool = False,
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
            [sys.executable, "-m", "jicofo.cli", "--config", str(config), "--log-level", log_level,
             *(("--packet-log", str(workdir / "focus-packets.log")) if packet_log else ())],
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
