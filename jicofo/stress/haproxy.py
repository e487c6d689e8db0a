"""HAProxy in front of several shards, the way Jitsi deployments scale past one machine: each shard
is a Prosody and a focus; HAProxy sends a conference's XMPP-over-WebSocket (and BOSH) traffic to
one shard, chosen by the `room` URL parameter that lib-jitsi-meet adds to those URLs, so every
member of a room lands on the same Prosody and therefore the same focus.

Routing is `balance url_param room` with consistent hashing: the same room always maps to the same
shard, and a shard that goes down moves only its own rooms. (Production configurations often add
a stick table shared between HAProxy peers; one HAProxy needs none.) Debian's `haproxy` package is
used; `contrib/dev.sh` installs it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import BinaryIO

import trio

HAPROXY = "haproxy"
STARTUP_TIMEOUT = 10.0


class HAProxyError(RuntimeError):
    """HAProxy is missing, its configuration was refused, or it did not start listening."""


def haproxy_available() -> bool:
    return shutil.which(HAPROXY) is not None


def render_config(listen_port: int, backends: list[tuple[str, int]], *, host: str = "127.0.0.1") -> str:
    """An HAProxy configuration: one HTTP frontend on `host:listen_port`, the shards' Prosody HTTP
    ports (WebSocket and BOSH) behind it, a room always on the same shard."""
    servers = "\n".join(f"    server shard{n} {ip}:{port}" for n, (ip, port) in enumerate(backends, 1))
    return f"""\
global
    # Below the usual 20000 descriptors of a container: HAProxy needs two per connection.
    maxconn 8000

defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    # A WebSocket lives as long as the XMPP session; lib-jitsi-meet pings every 10 s.
    timeout tunnel 1h

frontend xmpp
    bind {host}:{listen_port}
    default_backend shards

backend shards
    balance url_param room
    hash-type consistent
{servers}
"""


def _open_log(path: Path) -> BinaryIO:
    """The child's output file; the child gets its own descriptor, ours is closed once it runs."""
    return open(path, "wb")  # noqa: SIM115


class HAProxy:
    """A child `haproxy` process in the foreground, with its config in `workdir`."""

    def __init__(self, workdir: Path, listen_port: int, backends: list[tuple[str, int]]) -> None:
        self.workdir = workdir
        self.port = listen_port
        self.backends = backends
        self.config_path = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        self.process: trio.Process | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def websocket_url(self, room: str | None = None) -> str:
        """The XMPP WebSocket URL through HAProxy, with `?room=` as lib-jitsi-meet builds it (the
        room's name, without the MUC domain)."""
        url = f"ws://127.0.0.1:{self.port}/xmpp-websocket"
        return f"{url}?room={room.split('@', 1)[0]}" if room else url

    async def start(self) -> None:
        if not haproxy_available():
            raise HAProxyError("haproxy is not installed (bash contrib/dev.sh installs it; "
                               "or apt-get install haproxy)")
        self.config_path.write_text(render_config(self.port, self.backends))
        check = await trio.run_process([HAPROXY, "-c", "-q", "-f", str(self.config_path)],
                                       capture_stdout=True, capture_stderr=True, check=False)
        if check.returncode != 0:
            refusal = check.stderr.decode(errors="replace")[:500]
            raise HAProxyError(f"haproxy refused its config: {refusal}")
        log = _open_log(self.log_path)
        try:
            # -db: stay in the foreground, no daemon; its pid is the process we watch.
            self.process = await trio.lowlevel.open_process(
                [HAPROXY, "-db", "-f", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        with trio.move_on_after(STARTUP_TIMEOUT):
            while self.process.returncode is None:
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", self.port)
                except OSError:
                    await trio.sleep(0.05)
                    continue
                await stream.aclose()
                return
            raise HAProxyError(f"haproxy exited with {self.process.returncode}: "
                               f"{self.log_path.read_text(errors='replace')[-500:]}")
        raise HAProxyError(f"haproxy did not listen on 127.0.0.1:{self.port} within {STARTUP_TIMEOUT:g} s")

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with trio.CancelScope(shield=True):
            process.terminate()
            with trio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                with trio.move_on_after(5):
                    await process.wait()
