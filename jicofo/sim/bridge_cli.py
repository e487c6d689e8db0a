"""`jicofo-bridge-sim`: run one or more simulated videobridges against an XMPP server.

    jicofo-bridge-sim --host 127.0.0.1 --domain auth.meet.test --user jvb \\
        --brewery jvbbrewery@internal.auth.meet.test --bridges 3 --http-port 8080

The password comes from --password, or better from the JVB_PASSWORD environment variable (so it
stays out of process listings). A config file (HOCON or JSON, --config) can hold the same options
under their long names, plus `servers = [{host, port, domain, user, password, tls, brewery}]` to
join breweries on several XMPP servers (shards) with the same bridges.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from jicofo.sim.bridge import SimulatedBridge, XmppTarget
from jicofo.sim.bridge_control import build_router
from jicofo.sim.bridge_engine import BridgeEngine, BridgeIdentity, StressModel
from jicofo.sim.serving import serve_until_signal
from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.settings import ClientSettings, TlsMode
from jicofo.xmpp.transport import TlsSettings

log = logging.getLogger("jicofo.sim")

PASSWORD_VARIABLE = "JVB_PASSWORD"


class UsageError(Exception):
    pass


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    domain: str
    user: str
    password: str
    tls: bool
    verify_tls: bool
    ca_file: Path | None
    brewery: tuple[JID, ...]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jicofo-bridge-sim",
        description="Simulated Jitsi Videobridges speaking Colibri2 over XMPP (brewery mode).",
        epilog=f"The XMPP password is read from ${PASSWORD_VARIABLE} when --password is not given.",
    )
    p.add_argument("--config", type=Path, help="HOCON or JSON file with these options (long names)")
    x = p.add_argument_group("XMPP")
    x.add_argument("--host", help="XMPP server to connect to (default: localhost)")
    x.add_argument("--port", type=int, help="XMPP c2s port (default: 5222)")
    x.add_argument("--domain", help="XMPP domain to log in to (default: auth.<host>)")
    x.add_argument("--user", help="XMPP username shared by the bridges (default: jvb)")
    x.add_argument("--password", help=f"XMPP password (prefer ${PASSWORD_VARIABLE})")
    x.add_argument("--tls", choices=["on", "off"], help="STARTTLS (default: on)")
    x.add_argument("--no-verify-tls", action="store_true", default=None,
                   help="do not verify the server's certificate")
    x.add_argument("--ca-file", type=Path, help="CA bundle to verify the server's certificate")
    x.add_argument("--brewery", action="append",
                   help="brewery room JID to join (repeat for several rooms)")
    b = p.add_argument_group("bridges")
    b.add_argument("--bridges", type=int, help="how many bridges to run (default: 1)")
    b.add_argument("--nickname-prefix", help="brewery nickname prefix (default: jvb-sim-)")
    b.add_argument("--region", help="region published in stats (default: none)")
    b.add_argument("--relay-id", help="relay id prefix; bridge N gets <relay-id>-N (default: none)")
    b.add_argument("--version", dest="bridge_version", help="version published (default: 2.3.250-gsimulated)")
    b.add_argument("--release", help="release published (default: none)")
    b.add_argument("--stress", type=float, help="fixed stress level, or the base with --stress-per-endpoint")
    b.add_argument("--stress-per-endpoint", type=float,
                   help="stress added per local endpoint (e.g. 0.01 reaches 0.8 at 80 endpoints)")
    b.add_argument("--stats-interval", type=float, help="seconds between stats presences (default: 5)")
    b.add_argument("--stats-on-change", action="store_true", default=None,
                   help="also publish stats after every Colibri2 request (the simulator's old "
                        "behaviour; a real bridge only publishes on the timer)")
    b.add_argument("--websocket-url", help="turn colibri web-sockets on: a base URL such as "
                   "wss://jvb.example.com:443, or a template with {bridge}, {conference}, {endpoint} "
                   "(default: no web-socket)")
    b.add_argument("--candidate-address", dest="candidate_addresses", action="append",
                   help="address offered as an ICE host candidate (repeatable, in order of preference; "
                        "default: 127.0.0.1); config key candidate-addresses = [...]")
    b.add_argument("--no-ice-restart", action="store_true", default=None,
                   help="refuse in-place ICE restarts, as a bridge with videobridge.ice.restart.enabled "
                        "= false (answers a bare endpoint)")
    c = p.add_argument_group("control")
    c.add_argument("--http-host", help="control API address (default: 127.0.0.1)")
    c.add_argument("--http-port", type=int, help="control API port (default: 0 = any free port, printed)")
    c.add_argument("--log-level", help="DEBUG, INFO, WARNING (default: INFO)")
    return p


_DEFAULTS: dict[str, Any] = {
    "host": "localhost", "port": 5222, "domain": None, "user": "jvb", "password": None, "tls": "on",
    "no_verify_tls": False, "ca_file": None, "brewery": None, "bridges": 1,
    "nickname_prefix": "jvb-sim-", "region": None, "relay_id": None,
    "bridge_version": "2.3.250-gsimulated", "release": None, "stress": 0.0,
    "stress_per_endpoint": None, "stats_interval": 5.0, "stats_on_change": False, "websocket_url": None,
    "no_ice_restart": False, "candidate_addresses": ["127.0.0.1"],
    "http_host": "127.0.0.1", "http_port": 0, "log_level": "INFO", "servers": None,
}


def resolve_options(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """Command line over config file over defaults."""
    merged = dict(_DEFAULTS)
    if args.config is not None:
        merged.update(_read_config_file(args.config))
    for key, value in vars(args).items():
        if key != "config" and value is not None:
            merged[key] = value
    if merged["password"] is None:
        merged["password"] = env.get(PASSWORD_VARIABLE)
    if merged["bridges"] < 1 or merged["bridges"] > 1000:
        raise UsageError("--bridges: between 1 and 1000")
    if merged["stats_interval"] <= 0:
        raise UsageError("--stats-interval: must be positive")
    merged["candidate_addresses"] = candidate_addresses(merged["candidate_addresses"])
    return merged


def candidate_addresses(value: Any) -> tuple[str, ...]:
    """`--candidate-address` (repeated) or `candidate-addresses` (a list or a comma-separated
    string): IP addresses, at least one."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    addresses = []
    for item in items:
        text = str(item).strip()
        try:
            addresses.append(str(ipaddress.ip_address(text)))
        except ValueError:
            raise UsageError(f"--candidate-address: not an IP address: {text[:64]!r}") from None
    if not addresses:
        raise UsageError("--candidate-address: at least one address")
    return tuple(dict.fromkeys(addresses))


def _read_config_file(path: Path) -> dict[str, Any]:
    from pyhocon import ConfigFactory
    from pyhocon.exceptions import ConfigException

    try:
        tree = ConfigFactory.parse_file(str(path))
    except (OSError, ConfigException) as exc:
        raise UsageError(f"{path}: cannot read the config ({type(exc).__name__})") from None
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = "bridge_version" if key == "version" else key.replace("-", "_")
        if name not in _DEFAULTS:
            raise UsageError(f"{path}: unknown option {key!r}")
        out[name] = value
    return out


def server_options(opts: dict[str, Any]) -> list[ServerOptions]:
    servers = opts["servers"] or [{}]
    result = []
    for i, server in enumerate(servers):
        def get(key: str, server: dict[str, Any] = server) -> Any:
            return server.get(key, opts.get(key))

        host = str(get("host"))
        password = get("password")
        if not password:
            raise UsageError(f"server {i}: no password (use --password or ${PASSWORD_VARIABLE})")
        brewery = get("brewery") or []
        if isinstance(brewery, str):
            brewery = [b.strip() for b in brewery.split(",") if b.strip()]
        if not brewery:
            raise UsageError(f"server {i}: no brewery room (--brewery)")
        try:
            rooms = tuple(JID.parse(b).bare for b in brewery)
        except InvalidJID as exc:
            raise UsageError(f"server {i}: bad brewery JID: {exc}") from None
        tls = get("tls")
        result.append(ServerOptions(
            host=host, port=int(get("port")), domain=str(get("domain") or f"auth.{host}"),
            user=str(get("user")), password=str(password),
            tls=tls in (True, "on", "true"), verify_tls=not get("no_verify_tls"),
            ca_file=Path(get("ca_file")) if get("ca_file") else None, brewery=rooms,
        ))
    return result


def make_bridges(opts: dict[str, Any]) -> list[SimulatedBridge]:
    servers = server_options(opts)
    bridges = []
    for n in range(1, opts["bridges"] + 1):
        nickname = f"{opts['nickname_prefix']}{n}"
        identity = BridgeIdentity(
            nickname=nickname,
            region=opts["region"],
            relay_id=f"{opts['relay_id']}-{n}" if opts["relay_id"] else None,
            version=opts["bridge_version"],
            release=opts["release"],
            websocket_url_template=opts["websocket_url"],
            ice_restart_enabled=not opts["no_ice_restart"],
            candidate_addresses=tuple(opts["candidate_addresses"]),
        )
        stress = StressModel(base=float(opts["stress"]),
                             per_endpoint=opts["stress_per_endpoint"])
        targets = [
            XmppTarget(
                ClientSettings(
                    domain=s.domain, username=s.user, password=s.password, resource=nickname,
                    host=s.host, port=s.port, tls=TlsMode.STARTTLS if s.tls else TlsMode.DISABLED,
                    tls_settings=TlsSettings(verify=s.verify_tls, ca_file=s.ca_file),
                    allow_plain_without_tls=not s.tls,
                    # Real bridges switch stream management off (docs/jvb.md §1.3).
                    stream_management=False,
                ),
                s.brewery,
            )
            for s in servers
        ]
        bridges.append(SimulatedBridge(BridgeEngine(identity, stress), nickname, targets,
                                       stats_interval=float(opts["stats_interval"]),
                                       stats_on_change=bool(opts["stats_on_change"])))
    return bridges


async def run(opts: dict[str, Any]) -> None:
    bridges = make_bridges(opts)
    await serve_until_signal("jicofo-bridge-sim", bridges, build_router(bridges), host=opts["http_host"],
                             port=int(opts["http_port"]), what=f"{len(bridges)} bridge(s) in the brewery")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        opts = resolve_options(args, dict(os.environ))
        logging.basicConfig(level=str(opts["log_level"]).upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        trio.run(run, opts)
    except UsageError as exc:
        print(f"jicofo-bridge-sim: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
