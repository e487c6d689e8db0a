"""`jicofo-stress`: load a Jitsi focus with simulated participants and report what it did.

    jicofo-stress --local --conferences 20 --participants 3-8 --join-rate 20 --duration 60s \\
        --fault kill-bridge@30s --json report.json
    jicofo-stress --xmpp-host meet.example.com --domain meet.example.com \\
        --conferences 10 --participants 4 --duration 2m            # an existing deployment

With --local it starts everything itself: a throw-away Prosody, our focus as a child process and
N simulated bridges as one `jicofo-bridge-sim` child process. Otherwise the participants log in
anonymously on --domain at --xmpp-host and ask --focus (default focus.<domain>) for conferences in
--muc-domain (default conference.<domain>); the deployment's own bridges are used unless --brewery
is given, which adds --bridges simulated ones (password from $JVB_PASSWORD). Traffic goes only to
the server given (and to the local stack's loopback ports).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from jicofo.tasks import single_cause
from jicofo.testing.prosody import ProsodyError
from jicofo.xmpp.settings import ClientSettings, TlsMode
from jicofo.xmpp.transport import TlsSettings

from .local import (
    MAX_SHARDS,
    PARTICIPANT_TIMEOUTS,
    StackError,
    Target,
    local_stack,
    start_bridge_sim,
    terminate,
)
from .report import render_text
from .runner import TEARDOWN_TIMEOUT, Progress, Runner
from .scenario import Scenario, ScenarioError, load_scenario_file, scenario_from_mapping

STARTUP_BOUND = 120.0  # bringing the stack up and down, on top of the scenario's own duration

# Scenario flags: dest -> scenario key.
_KNOBS = {
    "name": "name", "conferences": "conferences", "participants": "participants",
    "join_rate": "join-rate", "hold": "hold", "churn": "churn", "source_changes": "source-changes",
    "ice_restarts_per_minute": "ice-restarts-per-minute",
    "mutes_per_minute": "mutes-per-minute",
    "bridges": "bridges", "jibris": "jibris", "recordings": "recordings", "jigasis": "jigasis",
    "dials": "dials",
    "fault": "faults", "duration": "duration", "stop_p99": "stop-p99",
    "stop_errors": "stop-errors", "session_timeout": "session-timeout", "room_prefix": "room-prefix",
    "seed": "seed", "reload_delay": "reload-delay",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jicofo-stress",
                                description=__doc__.splitlines()[0] if __doc__ else None,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Durations: 30 (seconds), 30s, 500ms, 2m. Faults: kill-bridge, "
                                       "unhealthy-bridge, graceful-bridge, drop-focus-connection "
                                       "(its XMPP session ends for good, --local), "
                                       "cut-focus-connection (TCP reset, resumable, --local), "
                                       "kill-focus[:SHARD] (SIGKILL of a shard's focus, --local), "
                                       "restart-focus (SIGKILL and a new start 1 s later, --local).")
    s = p.add_argument_group("scenario (flags override --scenario FILE)")
    s.add_argument("--scenario", type=Path, help="HOCON or JSON file with the knobs below (long names)")
    s.add_argument("--name", help="a name for the report")
    s.add_argument("--conferences", type=int, help="conferences (default 2)")
    s.add_argument("--participants", help="per conference: N or a range A-B (default 3)")
    s.add_argument("--join-rate", type=float, help="participants started per second (default 10)")
    s.add_argument("--hold", help="each participant leaves this long after joining (default: at the end)")
    s.add_argument("--churn", type=float, help="leave-and-rejoin events per minute (default 0)")
    s.add_argument("--source-changes", type=float, help="screen share on/off toggles per minute (default 0)")
    s.add_argument("--ice-restarts-per-minute", type=float,
                   help="in-place ICE restart requests per minute, with the client's fallback (default 0)")
    s.add_argument("--mutes-per-minute", type=float,
                   help="remote audio mutes (each followed by a self-unmute) per minute (default 0)")
    s.add_argument("--bridges", type=int, help="simulated bridges (default 2 with --local)")
    s.add_argument("--jibris", type=int, help="simulated Jibris (--local; default 0)")
    s.add_argument("--recordings", type=int,
                   help="conferences whose moderator starts a file recording (default 0)")
    s.add_argument("--jigasis", type=int, help="simulated SIP Jigasis (--local; default 0)")
    s.add_argument("--dials", type=int, help="conferences whose moderator dials out once (default 0)")
    s.add_argument("--fault", action="append", metavar="KIND@TIME[:BRIDGE]",
                   help="inject a fault (repeatable), e.g. kill-bridge@30s")
    s.add_argument("--duration", help="length of the load phase (default 30s)")
    s.add_argument("--stop-p99", help="ramp: stop the load when the rolling p99 join time exceeds this")
    s.add_argument("--stop-errors", type=int, help="ramp: stop the load at this many errors + failed joins")
    s.add_argument("--session-timeout", help="a join without an accepted session by then fails (30s)")
    s.add_argument("--reload-delay", help="page reload after the focus left the room: A-B or N "
                                          "(default 10s-30s, as the web client)")
    s.add_argument("--room-prefix", help="room names are PREFIX-<run id>-<n> (default stress)")
    s.add_argument("--seed", type=int, help="random seed (default 1)")
    t = p.add_argument_group("target")
    t.add_argument("--local", action="store_true", help="start Prosody, our focus and the bridges locally")
    t.add_argument("--xmpp-host", help="XMPP server of the deployment")
    t.add_argument("--xmpp-port", type=int, default=5222, help="its c2s port (default 5222)")
    t.add_argument("--domain", help="the guests' XMPP domain (anonymous logins), e.g. meet.example.com")
    t.add_argument("--muc-domain", help="conference MUC domain (default conference.<domain>)")
    t.add_argument("--focus", help="where conference IQs go (default focus.<domain>)")
    t.add_argument("--tls", choices=["starttls", "direct", "off"], default="starttls",
                   help="c2s TLS (default starttls)")
    t.add_argument("--ca-file", type=Path, help="CA bundle to verify the server's certificate")
    t.add_argument("--no-verify-tls", action="store_true", help="do not verify the certificate")
    t.add_argument("--websocket-url", help="XMPP over WebSocket instead of TCP, e.g. "
                                           "wss://meet.example.com/xmpp-websocket")
    t.add_argument("--focus-pid", type=int, help="the focus's pid on this machine (CPU/RSS figures)")
    t.add_argument("--prosody-pid", type=int, help="Prosody's pid on this machine (CPU figures)")
    t.add_argument("--brewery", help="add simulated bridges to this brewery room of the deployment")
    t.add_argument("--jvb-domain", help="the bridges' login domain (default auth.<domain>)")
    t.add_argument("--jvb-user", default="jvb",
                   help="the bridges' login (default jvb; password $JVB_PASSWORD)")
    lo = p.add_argument_group("local stack")
    lo.add_argument("--shards", type=int, default=1,
                    help="shards (a Prosody and a focus each) behind HAProxy, the bridges shared (1)")
    lo.add_argument("--focus-log-level", default="WARNING", help="the local focus's log level (WARNING)")
    lo.add_argument("--focus-config", action="append", default=[], metavar="KEY=VALUE",
                    help="extra focus setting (repeatable), e.g. jicofo.bridge.health-checks.interval=2s")
    lo.add_argument("--bridge-stats-on-change", action="store_true",
                    help="the simulated bridges also publish stats after every Colibri2 request (their "
                         "behaviour before 2026-12; for comparing with older figures)")
    lo.add_argument("--focus-packet-log", action="store_true",
                    help="the focus logs every stanza to focus-packets.log (with --keep-logs)")
    lo.add_argument("--keep-logs", type=Path, help="keep the local stack's config and logs in this dir")
    o = p.add_argument_group("output")
    o.add_argument("--json", type=Path, help="write the JSON report here ('-' for stdout)")
    o.add_argument("--quiet", action="store_true", help="no progress lines")
    o.add_argument("--progress-every", type=float, default=5.0,
                   help="seconds between progress lines when not on a terminal (default 5)")
    o.add_argument("--strict", action="store_true", help="exit 1 when a join failed or an error was seen")
    o.add_argument("--log-level", default="ERROR", help="log level of the load generator (ERROR)")
    return p


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    values: dict[str, Any] = {}
    if args.scenario is not None:
        values.update(load_scenario_file(args.scenario))
    for dest, key in _KNOBS.items():
        value = getattr(args, dest)
        if value is not None:
            values[key] = value
    if not args.local and "bridges" not in values:
        values["bridges"] = 0  # an existing deployment brings its own bridges
    if args.focus_packet_log and args.keep_logs is None:
        raise ScenarioError("--focus-packet-log: only with --keep-logs DIR (where the log goes)")
    if args.shards != 1 and not args.local:
        raise ScenarioError("--shards: only with --local")
    if not 1 <= args.shards <= MAX_SHARDS:
        raise ScenarioError(f"--shards: between 1 and {MAX_SHARDS}")
    return scenario_from_mapping(values)


def remote_settings(args: argparse.Namespace) -> ClientSettings:
    tls = {"starttls": TlsMode.STARTTLS, "direct": TlsMode.DIRECT, "off": TlsMode.DISABLED}[args.tls]
    return ClientSettings(
        domain=args.domain, host=args.xmpp_host, port=args.xmpp_port, tls=tls,
        tls_settings=TlsSettings(verify=not args.no_verify_tls, ca_file=args.ca_file),
        allow_plain_without_tls=tls is TlsMode.DISABLED, websocket_url=args.websocket_url,
        timeouts=PARTICIPANT_TIMEOUTS,
    )


def _focus_extra(pairs: Sequence[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("jicofo."):
            raise ScenarioError(f"--focus-config {pair!r}: expected jicofo.KEY=VALUE")
        extra[key.strip()] = value.strip()
    return extra


@asynccontextmanager
async def open_target(args: argparse.Namespace, scenario: Scenario) -> AsyncIterator[Target]:
    if args.local:
        proxy = any(f.kind == "cut-focus-connection" for f in scenario.faults)
        restartable = any(f.kind == "restart-focus" for f in scenario.faults)
        async with local_stack(scenario.bridges, shards=args.shards, jibris=scenario.jibris,
                               jigasis=scenario.jigasis, proxy_focus=proxy,
                               focus_log_level=args.focus_log_level,
                               focus_packet_log=args.focus_packet_log,
                               bridge_stats_on_change=args.bridge_stats_on_change,
                               focus_extra=_focus_extra(args.focus_config),
                               keep_logs=args.keep_logs, restartable_focus=restartable) as target:
            yield target
        return
    if not args.domain or not (args.xmpp_host or args.websocket_url):
        raise ScenarioError("give --local, or --domain with --xmpp-host (or --websocket-url)")
    pids = {name: pid for name, pid in (("focus", args.focus_pid), ("prosody", args.prosody_pid)) if pid}
    target = Target(
        description=f"deployment {args.websocket_url or f'{args.xmpp_host}:{args.xmpp_port}'} "
                    f"(domain {args.domain})",
        participant_settings=remote_settings(args),
        muc_domain=args.muc_domain or f"conference.{args.domain}",
        focus=args.focus or f"focus.{args.domain}",
        pids=pids,
    )
    if not scenario.bridges:
        yield target
        return
    if not args.brewery:
        raise ScenarioError("--bridges on a deployment needs --brewery (the brewery room's JID)")
    password = os.environ.get("JVB_PASSWORD")
    if not password:
        raise ScenarioError("simulated bridges on a deployment need $JVB_PASSWORD")
    workdir = Path(tempfile.mkdtemp(prefix="jicofo-stress-")) if args.keep_logs is None else args.keep_logs
    workdir.mkdir(parents=True, exist_ok=True)
    process, port = await start_bridge_sim(
        host=args.xmpp_host or args.domain, port=args.xmpp_port,
        domain=args.jvb_domain or f"auth.{args.domain}",
        tls=args.tls != "off", brewery=args.brewery, count=scenario.bridges, password=password,
        workdir=workdir, user=args.jvb_user,
    )
    try:
        target.bridge_api = ("127.0.0.1", port)
        target.pids = {**pids, "bridges": process.pid}
        yield target
    finally:
        await terminate(process, "jicofo-bridge-sim", grace=5)


async def run(args: argparse.Namespace, scenario: Scenario) -> dict[str, Any]:
    progress = Progress(quiet=args.quiet, every=args.progress_every)
    with trio.fail_after(scenario.duration + TEARDOWN_TIMEOUT + STARTUP_BOUND):
        async with open_target(args, scenario) as target:
            progress.say(f"jicofo-stress: {target.description}")
            return await Runner(scenario, target, progress).run()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=str(args.log_level).upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        scenario = scenario_from_args(args)
        report = trio.run(run, args, scenario)
    except ScenarioError as exc:
        print(f"jicofo-stress: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        cause = single_cause(exc)
        if isinstance(cause, ScenarioError):
            print(f"jicofo-stress: {cause}", file=sys.stderr)
            return 2
        if isinstance(cause, StackError | ProsodyError | trio.TooSlowError | OSError):
            print(f"jicofo-stress: {type(cause).__name__}: {cause}", file=sys.stderr)
            return 3
        raise
    to_stdout = args.json is not None and str(args.json) == "-"
    print(render_text(report), file=sys.stderr if to_stdout else sys.stdout, flush=True)
    if args.json is not None:
        text = json.dumps(report, indent=2, sort_keys=False)
        if str(args.json) == "-":
            print(text)
        else:
            args.json.write_text(text + "\n")
    if args.strict and (report["errors"]["total"] or report["joins"]["failed"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
