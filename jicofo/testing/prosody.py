"""A throw-away Prosody with a Jitsi-Meet-like layout, for tests, the demo and the stress runner.

`start_prosody()` prepares a temp dir (config, certificate, service accounts), runs
`prosody -F` as a direct child on free loopback ports, waits until it really serves, and on exit
stops it, reaps it and removes the dir. `jicofo-prosody` runs one from the command line.

`focus.meet.test` is an XEP-0114 component by default; with `client_proxy=True` it is instead a
client-proxy component (our contrib/prosody/mod_client_proxy.lua) relaying to the focus account,
as in a stock Jitsi Meet install. `moderation=True` adds our A/V-moderation and room-metadata
components (contrib/prosody/mod_jicofo_av_moderation.lua, mod_jicofo_room_metadata.lua) at
`avmoderation.meet.test` and `metadata.meet.test`.

With `secure_domain=True` the layout is Jitsi's "secure domain": users of meet.test log in with
passwords (accounts from `extra_users`), guests log in anonymously on guest.meet.test. The same
layout stands in for a JWT deployment, whose token host stock Prosody cannot run: there the
users of meet.test log in with passwords instead of tokens, and carry their claims in the token
attribute of the conference request (what the focus reads, see jicofo/xmlns/jwt_claims.py).
"""

from __future__ import annotations

import argparse
import atexit
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import trio

__all__ = [
    "ProsodyError",
    "ProsodyInstance",
    "ProsodyNotInstalled",
    "ProsodyStartError",
    "client_proxy_plugin_dir",
    "contrib_plugin_dir",
    "main",
    "missing_prosody_message",
    "prosody_available",
    "start_prosody",
]

LOG_LEVELS = ("debug", "info", "warn", "error")

# Deadline for each helper process (openssl, prosodyctl). Both take ~50 ms when healthy.
TOOL_TIMEOUT = 10.0
# A free port can be taken by someone else before Prosody binds it; pick new ones this often.
_PORT_ATTEMPTS = 3
_BIND_FAILURE = "Failed to open server port"
_PLACEHOLDER = re.compile(r"@([A-Z0-9_]+)@")
_NS_STREAM = "http://etherx.jabber.org/streams"
# Set by the test suite (tests/conftest.py) to the name of a test not marked `prosody`: starting
# Prosody then fails, in-process or in a child process, so `pytest -m "not prosody"` starts none.
FORBID_ENV = "JICOFO_TEST_FORBID_PROSODY"


class ProsodyError(RuntimeError):
    """Base for every failure of the test Prosody harness."""


class ProsodyNotInstalled(ProsodyError):
    """`prosody`, `prosodyctl` or `openssl` is not on PATH."""


class ProsodyStartError(ProsodyError):
    """Prosody could not be prepared, exited early or did not become ready in time."""


class _PortsTaken(ProsodyError):
    pass


def prosody_available() -> bool:
    """True when everything `start_prosody` runs (prosody, prosodyctl, openssl) is on PATH."""
    return all(shutil.which(tool) for tool in ("prosody", "prosodyctl", "openssl"))


def missing_prosody_message() -> str:
    missing = [tool for tool in ("prosody", "prosodyctl", "openssl") if not shutil.which(tool)]
    return (
        f"A real Prosody is needed, but this is missing from PATH: {', '.join(missing) or '-'}. "
        "Run `bash contrib/dev.sh test` from the repository (on Debian/Ubuntu it installs "
        "prosody, lua-sec, lua-event, lua-unbound and openssl with apt-get), or install those "
        "packages yourself."
    )


def contrib_plugin_dir(module: str = "client_proxy") -> Path:
    """The dir holding our Prosody modules (mod_<module>.lua): contrib/prosody in a source
    checkout (the harness is used from one: `pip install -e .`)."""
    directory = Path(__file__).resolve().parents[2] / "contrib" / "prosody"
    if not (directory / f"mod_{module}.lua").is_file():
        raise ProsodyStartError(
            f"mod_{module}.lua is not in {directory}: this setup needs a source checkout of "
            "jicofo-trio (pip install -e .)"
        )
    return directory


def client_proxy_plugin_dir() -> Path:
    """The dir holding our mod_client_proxy.lua."""
    return contrib_plugin_dir("client_proxy")


def harness_plugin_dir() -> Path:
    """Test-only Prosody modules shipped with the harness (mod_test_component_identities)."""
    return Path(__file__).resolve().parent / "prosody_plugins"


def _secret() -> str:
    return secrets.token_urlsafe(18)


@dataclass
class ProsodyInstance:
    """A running throw-away Prosody. Plain TCP c2s offers STARTTLS (optional); `ca_file`
    verifies its certificate for meet.test, auth.meet.test and their subdomains."""

    base: Path
    ip: str
    c2s_port: int
    http_port: int
    component_port: int
    ca_file: Path
    smacks_hibernation_time: int = 10
    # focus.meet.test relays to the focus account (mod_client_proxy) instead of being XEP-0114.
    client_proxy: bool = False
    # Our A/V-moderation and room-metadata components run at the addresses below.
    moderation: bool = False
    plugin_paths: tuple[Path, ...] = ()
    # meet.test needs accounts (passwords); guests are anonymous on guest_domain.
    secure_domain: bool = False
    focus_password: str = field(default_factory=_secret, repr=False)
    jvb_password: str = field(default_factory=_secret, repr=False)
    component_secret: str = field(default_factory=_secret, repr=False)
    # The names are fixed: the certificate's SANs are made for them.
    domain: str = field(default="meet.test", init=False)
    auth_domain: str = field(default="auth.meet.test", init=False)
    muc_domain: str = field(default="conference.meet.test", init=False)
    internal_muc_domain: str = field(default="internal.auth.meet.test", init=False)
    component_jid: str = field(default="focus.meet.test", init=False)
    brewery_jid: str = field(default="jvbbrewery@internal.auth.meet.test", init=False)
    guest_domain: str = field(default="guest.meet.test", init=False)
    av_moderation_jid: str = field(default="avmoderation.meet.test", init=False)
    room_metadata_jid: str = field(default="metadata.meet.test", init=False)
    _process: trio.Process | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def focus_jid(self) -> str:
        return f"focus@{self.auth_domain}"

    @property
    def jvb_jid(self) -> str:
        return f"jvb@{self.auth_domain}"

    @property
    def client_proxy_jid(self) -> str | None:
        """The client-proxy component's address (focus.meet.test), when it is one."""
        return self.component_jid if self.client_proxy else None

    @property
    def _url_host(self) -> str:
        return f"[{self.ip}]" if ":" in self.ip else self.ip

    @property
    def websocket_url(self) -> str:
        return f"ws://{self._url_host}:{self.http_port}/xmpp-websocket"

    @property
    def bosh_url(self) -> str:
        return f"http://{self._url_host}:{self.http_port}/http-bind"

    @property
    def config_file(self) -> Path:
        return self.base / "prosody.cfg.lua"

    @property
    def log_file(self) -> Path:
        return self.base / "prosody.log"

    @property
    def console_file(self) -> Path:
        """Prosody's stdout and stderr (warnings and errors)."""
        return self.base / "console.log"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ProsodyError("prosody has not been started")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of prosody.log and of its console output, for error messages."""
        parts = []
        for path in (self.log_file, self.console_file):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            tail = text.splitlines()[-lines:]
            if tail:
                parts.append(f"--- {path.name} (last {len(tail)} lines) ---\n" + "\n".join(tail))
        return "\n".join(parts) or "(no prosody output)"

    def summary(self) -> str:
        """Connection details, passwords included: this is a throw-away test server."""
        return "\n".join([
            f"dir            {self.base}",
            f"pid            {self.pid if self._process else '-'}",
            f"c2s            {self.ip}:{self.c2s_port} (STARTTLS optional; CA file {self.ca_file})",
            f"websocket      {self.websocket_url}",
            f"bosh           {self.bosh_url}",
            (f"client proxy   {self.component_jid} -> {self.focus_jid}" if self.client_proxy else
             f"component      {self.ip}:{self.component_port} {self.component_jid}"
             f" secret {self.component_secret}"),
            (f"hosts          accounts on {self.domain}; guests anonymous on {self.guest_domain}"
             if self.secure_domain else f"guests         anonymous on {self.domain}"),
            f"focus          {self.focus_jid} password {self.focus_password}",
            f"jvb            {self.jvb_jid} password {self.jvb_password}",
            f"conference MUC {self.muc_domain}",
            f"brewery        {self.brewery_jid}",
            *([f"moderation     {self.av_moderation_jid} (av_moderation), "
               f"{self.room_metadata_jid} (room_metadata)"] if self.moderation else []),
            f"log            {self.log_file}",
        ])

    async def register(self, user: str, host: str, password: str) -> None:
        """Create an account with `prosodyctl register`; works before and after start."""
        await _run_tool(
            ["prosodyctl", "--config", str(self.config_file), "register", user, host, password],
            time_limit=TOOL_TIMEOUT,
            what=f"registering {user}@{host}",
        )

    async def wait_exited(self) -> int:
        """Wait until Prosody exits by itself (or is stopped); returns its exit code."""
        if self._process is None:
            raise ProsodyError("prosody has not been started")
        return await self._process.wait()

    async def stop(self, *, grace: float = 2.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; reap the child; remove the dir.
        Safe to call more than once and from a cancelled scope."""
        with trio.CancelScope(shield=True):
            await self._stop_process(grace, settle=0.02)
            shutil.rmtree(self.base, ignore_errors=True)

    async def _stop_process(self, grace: float, *, settle: float = 0.0) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        # A SIGTERM while any c2s session is open (even one the client has just closed but
        # Prosody has not yet read) costs a full second in Prosody's shutdown; a short pause
        # lets it notice closes that a test's teardown made a moment ago.
        await trio.sleep(settle)
        process.terminate()
        with trio.move_on_after(grace):
            await process.wait()
        if process.returncode is None:
            process.kill()
            with trio.move_on_after(5):
                await process.wait()

    # -- startup ------------------------------------------------------------------------

    def _render(self, *, log_level: str, extra_config: str, extra_components: str = "",
                domain_settings: str = "") -> None:
        values = {
            "BASE": str(self.base),
            "IP": self.ip,
            "C2S_PORT": str(self.c2s_port),
            "HTTP_PORT": str(self.http_port),
            "COMPONENT_PORT": str(self.component_port),
            "COMPONENT_SECRET": self.component_secret,
            "DOMAIN": self.domain,
            "AUTH_DOMAIN": self.auth_domain,
            "MUC_DOMAIN": self.muc_domain,
            "INTERNAL_MUC_DOMAIN": self.internal_muc_domain,
            "COMPONENT_JID": self.component_jid,
            "FOCUS_JID": self.focus_jid,
            "JVB_JID": self.jvb_jid,
            "LOG_LEVEL": log_level,
            "SMACKS_HIBERNATION_TIME": str(self.smacks_hibernation_time),
        }
        paths = [str(path) for path in self.plugin_paths]
        for name, value in [*values.items(), *(("plugin path", path) for path in paths)]:
            # All of these land inside Lua string literals or as bare numbers.
            if any(c in value for c in '"\\\n'):
                raise ValueError(f"unsafe character in {name}: {value!r}")
        values["PLUGIN_PATHS"] = (
            "plugin_paths = { " + ", ".join(f'"{path}"' for path in paths) + " }" if paths else ""
        )
        if self.client_proxy:
            values["FOCUS_COMPONENT"] = (
                "-- Where clients send conference requests: relayed to an online focus session.\n"
                f'Component "{self.component_jid}" "client_proxy"\n'
                f'\ttarget_address = "{self.focus_jid}"'
            )
        else:
            values["FOCUS_COMPONENT"] = (
                "-- XEP-0114 external component for the focus.\n"
                f'Component "{self.component_jid}"\n'
                f'\tcomponent_secret = "{self.component_secret}"'
            )
        if self.secure_domain:
            domain_settings = '\tauthentication = "internal_hashed"\n' + domain_settings
            extra_components = (
                "-- Secure domain: guests log in anonymously here; meet.test needs an account.\n"
                f'VirtualHost "{self.guest_domain}"\n\tauthentication = "anonymous"\n'
                "\tallow_anonymous_s2s = false\n\n" + extra_components
            )
        values["EXTRA_CONFIG"] = extra_config
        if self.moderation:
            extra_components = "\n".join(
                f'Component "{address}" "{module}"\n\tmuc_component = "{self.muc_domain}"\n'
                f'\tmain_host = "{self.domain}"'
                for address, module in ((self.av_moderation_jid, "jicofo_av_moderation"),
                                        (self.room_metadata_jid, "jicofo_room_metadata"))
            ) + "\n" + extra_components
        values["EXTRA_COMPONENTS"] = extra_components
        values["DOMAIN_SETTINGS"] = domain_settings

        def substitute(match: re.Match[str]) -> str:
            try:
                return values[match.group(1)]
            except KeyError:
                raise ProsodyError(f"unknown placeholder {match.group(0)} in template") from None

        # Comment lines (the template's header names every placeholder) are left alone, so that
        # a multi-line value cannot break out of a comment.
        self.config_file.write_text("".join(
            line if line.lstrip().startswith("--") else _PLACEHOLDER.sub(substitute, line)
            for line in _template().splitlines(keepends=True)
        ))

    async def _spawn(self) -> None:
        for path in (self.log_file, self.console_file):
            path.unlink(missing_ok=True)
        with self.console_file.open("wb") as console:
            self._process = await trio.lowlevel.open_process(
                ["prosody", "-F", "--config", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=self.base,
            )

    def _bind_failed(self) -> bool:
        try:
            return _BIND_FAILURE in self.log_file.read_text(errors="replace")
        except OSError:
            return False

    def _check_alive(self) -> None:
        assert self._process is not None
        if self._process.poll() is not None:
            raise ProsodyStartError(
                f"prosody exited with code {self._process.returncode} during startup "
                f"(config {self.config_file})\n{self.log_tail()}"
            )
        if self._bind_failed():
            raise _PortsTaken()

    async def _wait_ready(self, time_limit: float) -> None:
        """Prosody's ports accept connections a little before its hosts are active, so only a
        real answer counts: stream features on c2s, a status line on HTTP."""
        try:
            with trio.fail_after(time_limit):
                await self._poll(self._c2s_answers)
                await self._poll(self._http_answers)
        except trio.TooSlowError:
            raise ProsodyStartError(
                f"prosody was not ready within {time_limit} s (config {self.config_file})\n"
                f"{self.log_tail()}"
            ) from None
        self._check_alive()

    async def _poll(self, probe: Callable[[], Awaitable[bool]]) -> None:
        while True:
            self._check_alive()
            # Bounded, so that a silent listener that took our port (Prosody then logs a bind
            # failure and runs on) is noticed by _check_alive instead of waited on forever.
            with trio.move_on_after(0.5):
                try:
                    if await probe():
                        return
                except (OSError, trio.BrokenResourceError):
                    pass
                await trio.sleep(0.01)

    async def _c2s_answers(self) -> bool:
        header = (
            f"<?xml version='1.0'?><stream:stream to='{self.domain}' xmlns='jabber:client' "
            f"xmlns:stream='{_NS_STREAM}' version='1.0'>"
        ).encode()
        return await _exchange(self.ip, self.c2s_port, header, b"<stream:features")

    async def _http_answers(self) -> bool:
        request = (
            f"GET /xmpp-websocket HTTP/1.1\r\nHost: {self._url_host}:{self.http_port}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        return await _exchange(self.ip, self.http_port, request, b"HTTP/1.")


async def _exchange(ip: str, port: int, request: bytes, expected: bytes) -> bool:
    """Send `request`; True once `expected` appears in the reply, False if the peer closes."""
    stream = await trio.open_tcp_stream(ip, port)
    async with stream:
        await stream.send_all(request)
        received = b""
        while expected not in received:
            data = await stream.receive_some(65536)
            if not data:
                return False
            received += data
        return True


def _template() -> str:
    return resources.files("jicofo.testing").joinpath("prosody.cfg.lua.in").read_text()


def _free_ports(ip: str, count: int) -> list[int]:
    """Ports the kernel says are free now (all held at once, so they are distinct)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sockets = [socket.socket(family, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((ip, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _check_ip(ip: str) -> None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise ValueError(f"not an IP address: {ip!r}") from None
    if not address.is_loopback:
        raise ValueError(f"the test Prosody only listens on loopback addresses, not {ip}")


async def _run_tool(command: list[str], *, time_limit: float, what: str) -> None:
    try:
        with trio.fail_after(time_limit):
            result = await trio.run_process(
                command, stdin=b"", capture_stdout=True, capture_stderr=True, check=False
            )
    except trio.TooSlowError:
        raise ProsodyStartError(f"{what}: {command[0]} took longer than {time_limit} s") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        raise ProsodyStartError(f"{what}: {command[0]} exited with {result.returncode}\n{output}")


# One self-signed certificate per process: every instance copies it into its own dir.
_cert_dir: Path | None = None


async def _shared_certificate() -> Path:
    """A dir holding meet.test.crt and meet.test.key (EC P-256, self-signed, usable as CA)."""
    global _cert_dir
    if _cert_dir is not None and (_cert_dir / "meet.test.key").exists():
        return _cert_dir
    made = Path(tempfile.mkdtemp(prefix="jicofo-prosody-cert-"))
    try:
        await _run_tool(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "3650", "-subj", "/CN=meet.test",
                "-keyout", str(made / "meet.test.key"), "-out", str(made / "meet.test.crt"),
                "-addext",
                "subjectAltName=DNS:meet.test,DNS:*.meet.test,DNS:auth.meet.test,"
                "DNS:*.auth.meet.test",
                # Explicit, so that it verifies as its own CA under strict X.509 checking too.
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
                "-addext", "extendedKeyUsage=serverAuth",
            ],
            time_limit=TOOL_TIMEOUT,
            what="making the test certificate",
        )
    except BaseException:
        shutil.rmtree(made, ignore_errors=True)
        raise
    if _cert_dir is not None:  # another task won the race while openssl ran
        shutil.rmtree(made, ignore_errors=True)
        return _cert_dir
    _cert_dir = made
    atexit.register(shutil.rmtree, made, True)
    return made


def _install_certificate(source: Path, base: Path) -> Path:
    certs = base / "certs"
    certs.mkdir(mode=0o700)
    for name in ("meet.test.crt", "meet.test.key"):
        shutil.copyfile(source / name, certs / name)
    (certs / "meet.test.key").chmod(0o600)
    return certs / "meet.test.crt"


@asynccontextmanager
async def start_prosody(
    *,
    ip: str = "127.0.0.1",
    smacks_hibernation_time: int = 10,
    log_level: str = "info",
    ready_timeout: float = 10.0,
    extra_users: Iterable[tuple[str, str, str]] = (),
    extra_config: str = "",
    stop_grace: float = 2.0,
    plugin_paths: Iterable[str | Path] = (),
    client_proxy: bool = False,
    extra_components: str = "",
    domain_settings: str = "",
    secure_domain: bool = False,
    moderation: bool = False,
) -> AsyncIterator[ProsodyInstance]:
    """Run a fresh Prosody for the duration of the block.

    `extra_users` are (user, host, password) accounts to create before start. `extra_config`
    is Lua appended to the global section (for example `c2s_require_encryption = true`).
    `plugin_paths` are dirs Prosody searches for extra modules. `client_proxy` makes
    focus.meet.test a client-proxy component relaying to focus@auth.meet.test (our module, found
    in contrib/prosody) instead of an XEP-0114 component. `extra_components` is Lua appended
    after every host (`Component "..." "module"` sections); `domain_settings` is Lua added to
    the main (participants') host, e.g. its own `modules_enabled`. `secure_domain` makes the main
    host password-only and adds the anonymous guest host (see the module docstring). `moderation`
    adds our A/V-moderation and room-metadata components (contrib/prosody) for the conference MUC.
    On exit Prosody gets SIGTERM, then SIGKILL after `stop_grace` seconds.
    """
    forbidden_in = os.environ.get(FORBID_ENV)
    if forbidden_in:
        raise RuntimeError(f"{forbidden_in} starts Prosody but is not marked prosody")
    if not prosody_available():
        raise ProsodyNotInstalled(missing_prosody_message())
    _check_ip(ip)
    if log_level not in LOG_LEVELS:
        raise ValueError(f"log_level must be one of {LOG_LEVELS}, not {log_level!r}")
    if smacks_hibernation_time < 0:
        raise ValueError("smacks_hibernation_time must be >= 0")
    users = list(extra_users)
    paths = [Path(path) for path in plugin_paths]
    if client_proxy:
        paths.append(client_proxy_plugin_dir())
    if moderation and contrib_plugin_dir("jicofo_av_moderation") not in paths:
        paths.append(contrib_plugin_dir("jicofo_av_moderation"))

    base = Path(tempfile.mkdtemp(prefix="jicofo-prosody-"))
    instance: ProsodyInstance | None = None
    try:
        ca_file = _install_certificate(await _shared_certificate(), base)
        (base / "data").mkdir()
        instance = ProsodyInstance(base, ip, 0, 0, 0, ca_file, smacks_hibernation_time,
                                   client_proxy=client_proxy, moderation=moderation,
                                   plugin_paths=tuple(paths), secure_domain=secure_domain)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            instance.c2s_port, instance.http_port, instance.component_port = _free_ports(ip, 3)
            instance._render(log_level=log_level, extra_config=extra_config,
                             extra_components=extra_components, domain_settings=domain_settings)
            if attempt == 1:
                await _register_all(instance, users)
            await instance._spawn()
            try:
                await instance._wait_ready(ready_timeout)
                break
            except _PortsTaken:
                await instance._stop_process(grace=0)
        else:
            raise ProsodyStartError(
                f"prosody could not bind free ports on {ip} in {_PORT_ATTEMPTS} attempts\n"
                f"{instance.log_tail()}"
            )
        yield instance
    finally:
        if instance is not None:
            await instance.stop(grace=stop_grace)
        else:
            shutil.rmtree(base, ignore_errors=True)


async def _register_all(instance: ProsodyInstance, users: list[tuple[str, str, str]]) -> None:
    accounts = [
        ("focus", instance.auth_domain, instance.focus_password),
        ("jvb", instance.auth_domain, instance.jvb_password),
        *users,
    ]
    errors: list[ProsodyStartError] = []

    async def register(user: str, host: str, password: str) -> None:
        try:
            await instance.register(user, host, password)
        except ProsodyStartError as exc:
            errors.append(exc)

    # Concurrently: each prosodyctl run is ~50 ms, mostly Lua start-up.
    async with trio.open_nursery() as nursery:
        for user, host, password in accounts:
            nursery.start_soon(register, user, host, password)
    if errors:
        raise errors[0]


# -- jicofo-prosody ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Console script: run one throw-away Prosody until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="jicofo-prosody",
        description="Run a throw-away Prosody with a Jitsi-Meet-like layout on loopback, "
        "from a temp dir that is removed on exit.",
    )
    parser.add_argument("--ip", default="127.0.0.1", help="loopback address (default %(default)s)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    parser.add_argument(
        "--smacks-hibernation-time", type=int, default=10, metavar="SECONDS",
        help="how long a dropped XEP-0198 session stays resumable (default %(default)s)",
    )
    parser.add_argument(
        "--user", action="append", default=[], metavar="USER@HOST:PASSWORD",
        help="an extra account to create (repeatable)",
    )
    parser.add_argument(
        "--moderation", action="store_true",
        help="add our A/V-moderation and room-metadata components (contrib/prosody) at "
        "avmoderation.meet.test and metadata.meet.test",
    )
    parser.add_argument(
        "--client-proxy", action="store_true",
        help="make focus.meet.test a client-proxy component relaying to the focus account "
        "(contrib/prosody/mod_client_proxy.lua) instead of an XEP-0114 component",
    )
    parser.add_argument(
        "--secure-domain", action="store_true",
        help="secure-domain layout: meet.test needs an account (--user NAME@meet.test:PASSWORD), "
        "guests log in anonymously on guest.meet.test",
    )
    args = parser.parse_args(argv)
    users = []
    for spec in args.user:
        jid, sep, password = spec.partition(":")
        user, at, host = jid.partition("@")
        if not (sep and at and user and host and password):
            parser.error(f"--user wants USER@HOST:PASSWORD, not {spec!r}")
        users.append((user, host, password))
    if not prosody_available():
        parser.exit(1, f"jicofo-prosody: {missing_prosody_message()}\n")
    try:
        sys.exit(trio.run(_serve, args, users))
    except ProsodyError as exc:
        parser.exit(1, f"jicofo-prosody: {exc}\n")


async def _serve(args: argparse.Namespace, users: list[tuple[str, str, str]]) -> int:
    started = time.monotonic()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with start_prosody(
            ip=args.ip,
            log_level=args.log_level,
            smacks_hibernation_time=args.smacks_hibernation_time,
            extra_users=users,
            client_proxy=args.client_proxy,
            secure_domain=args.secure_domain,
            moderation=args.moderation,
        ) as prosody:
            print(f"prosody ready in {time.monotonic() - started:.2f} s")
            print("throw-away test server: the passwords below are random and die with it\n")
            print(prosody.summary(), flush=True)
            exit_code = 0
            async with trio.open_nursery() as nursery:

                async def on_signal() -> None:
                    async for signum in signals:
                        print(f"\n{signal.Signals(signum).name}: stopping prosody", flush=True)
                        nursery.cancel_scope.cancel()
                        return

                async def on_exit() -> None:
                    nonlocal exit_code
                    code = await prosody.wait_exited()
                    print(f"prosody exited by itself with code {code}\n{prosody.log_tail()}",
                          file=sys.stderr, flush=True)
                    exit_code = 1
                    nursery.cancel_scope.cancel()

                nursery.start_soon(on_signal)
                nursery.start_soon(on_exit)
    print("prosody stopped, temp dir removed")
    return exit_code
