"""`jicofo`: the focus server.

    jicofo --config /etc/jitsi/jicofo/jicofo.conf
    jicofo --host localhost --domain meet.example.com --subdomain focus \\
           --user_domain auth.meet.example.com --user_name focus      # the seed-era flags

Secrets belong in the environment (JICOFO_SECRET, JICOFO_AUTH_PASSWORD) or the config file, not
in flags that show in process listings. SIGTERM/SIGINT stop in order: rooms are left and bridge
endpoints expired (bounded), then the process exits 0 (a second one stops at once). SIGHUP
reopens the log files (after logrotate moved them). SIGUSR1, with jicofo.restart enabled, exits at
once with 75 keeping every conference for the next start (docs/restart.md).

Logging: `--log-level`, `--log-format text|json` (JSON lines for log shippers), `--log-file PATH`
(else stderr) and `--packet-log [PATH]` (every stanza in and out of each XMPP connection, secrets
redacted: into PATH, or without one into the main log). See `jicofo.logs`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

import trio

from jicofo import __version__
from jicofo.app import FocusApp, build_app, serve
from jicofo.config.flags import overrides_from_flags
from jicofo.config.load import config_path_from_env, load_config
from jicofo.config.model import ConfigError, JicofoConfig
from jicofo.logs import PACKET_LOGGER, configure_logging, reopen_log_files
from jicofo.tasks import single_cause
from jicofo.xmpp.errors import XMPPError

log = logging.getLogger("jicofo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jicofo", description="A conference focus for Jitsi Meet (drop-in for Jicofo).",
    )
    parser.add_argument("--config", type=Path,
                        help="HOCON config file laid over the shipped reference.conf "
                             "(default: $JICOFO_CONFIG_FILE, else -Dconfig.file in $JAVA_SYS_PROPS)")
    parser.add_argument("--domain", help="XMPP domain (client xmpp-domain and component domain)")
    parser.add_argument("--host", help="XMPP server host (client and component)")
    parser.add_argument("--port", type=int, help="component port (default 5347)")
    parser.add_argument("--subdomain", help="component subdomain; switches the component on")
    parser.add_argument("--secret", help="component secret (better: $JICOFO_SECRET)")
    parser.add_argument("--user_domain", help="the focus account's domain (auth.<domain>)")
    parser.add_argument("--user_name", help="the focus account's user name")
    parser.add_argument("--user_password", help="the focus account's password "
                                                "(better: $JICOFO_AUTH_PASSWORD)")
    logging_group = parser.add_argument_group("logging")
    logging_group.add_argument(
        "--log-level", metavar="LEVEL", default=os.environ.get("JICOFO_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (default: $JICOFO_LOG_LEVEL, else INFO)")
    logging_group.add_argument(
        "--log-format", metavar="{text,json}",
        default=os.environ.get("JICOFO_LOG_FORMAT", "text"),
        help="text (one line per event, context as [room=... meeting_id=... participant=...]) "
             "or json (one object per line: ts, level, logger, message and the context keys) "
             "(default: $JICOFO_LOG_FORMAT, else text)")
    logging_group.add_argument(
        "--log-file", type=Path, metavar="PATH",
        default=os.environ.get("JICOFO_LOG_FILE") or None,
        help="write the log to this file, reopened on SIGHUP (default: $JICOFO_LOG_FILE, "
             "else stderr)")
    logging_group.add_argument(
        "--packet-log", nargs="?", const="", default=os.environ.get("JICOFO_PACKET_LOG") or None,
        metavar="PATH",
        help=f"log every XMPP stanza in and out of each connection, secrets redacted: into PATH "
             f"(reopened on SIGHUP), or without PATH into the main log (logger {PACKET_LOGGER}, "
             f"at DEBUG whatever --log-level says) (default: $JICOFO_PACKET_LOG, a PATH, else off)")
    parser.add_argument("--version", action="version", version=f"jicofo {__version__}")
    return parser


def read_config(args: argparse.Namespace, env: dict[str, str]) -> JicofoConfig:
    overrides = overrides_from_flags(
        domain=args.domain, host=args.host, port=args.port, subdomain=args.subdomain,
        secret=args.secret, user_domain=args.user_domain, user_name=args.user_name,
        user_password=args.user_password, env=env,
    )
    path = args.config or config_path_from_env(env)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path}: not found")
    return load_config(path, overrides, env)


def setup_logging(args: argparse.Namespace) -> None:
    """Install the logging the flags ask for. Raises ConfigError for a bad value or a log file
    that cannot be opened."""
    packet_log_file = args.packet_log or None  # "" (the flag alone): into the main log
    if not isinstance(logging.getLevelName(str(args.log_level).upper()), int):
        raise ConfigError(f"--log-level: {args.log_level!r} is not one of DEBUG, INFO, WARNING, "
                          f"ERROR, CRITICAL")
    if args.log_format not in ("text", "json"):
        raise ConfigError(f"--log-format: {args.log_format!r} is not 'text' or 'json'")
    try:
        configure_logging(
            args.log_level, args.log_format, args.packet_log is not None,
            log_file=args.log_file, packet_log_file=packet_log_file,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:  # a missing directory, no permission
        raise ConfigError(f"cannot open the log file: {exc}") from None


async def run(config: JicofoConfig) -> None:
    app = build_app(config)
    async with trio.open_nursery() as nursery:
        signals = _Signals(app, nursery.cancel_scope)
        await nursery.start(signals.run)

        async def serving(app: FocusApp, _nursery: trio.Nursery) -> None:
            signals.serving = True

        await serve(app, extra=serving)
        nursery.cancel_scope.cancel()


EXIT_KEEP_CONFERENCES = 75  # EX_TEMPFAIL: systemd's Restart=on-failure starts us again


def keep_conferences_exit(app: FocusApp) -> None:
    """SIGUSR1 (docs/restart.md): exit now, leaving every room and bridge endpoint as it is, for
    the next process to take back within Prosody's hibernation window. Without the restart store
    it is ignored: the conferences could not be taken back."""
    if app.keeper is None:
        log.warning("SIGUSR1: jicofo.restart is not enabled; ignored (SIGTERM stops in order)")
        return
    app.keeper.keep_for_restart()
    log.warning("SIGUSR1: exiting, keeping %d conference(s) for the next start",
                len(app.focus.conferences))
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_KEEP_CONFERENCES)


class _Signals:
    """The one task that receives signals, from before startup until the focus has stopped.
    SIGHUP reopens the log files. SIGTERM/SIGINT stop in order once the focus serves (rooms left,
    endpoints expired, bounded); before that, or on a second one, they stop at once."""

    def __init__(self, app: FocusApp, scope: trio.CancelScope) -> None:
        self.app = app
        self.scope = scope
        self.serving = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                                       signal.SIGUSR1) as signals:
            task_status.started()
            async for signum in signals:
                name = signal.Signals(signum).name
                if signum == signal.SIGHUP:
                    if not reopen_log_files():
                        log.info("SIGHUP: no log files to reopen")
                elif signum == signal.SIGUSR1:
                    keep_conferences_exit(self.app)
                elif self.serving and not self.app.stop_requested.is_set():
                    self.app.request_stop(f"signal {name}")
                else:
                    log.info("%s: stopping at once", name)
                    self.scope.cancel()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        setup_logging(args)
        config = read_config(args, dict(os.environ))
    except ConfigError as exc:
        print(f"jicofo: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(run, config)
    except (BaseExceptionGroup, ConfigError, XMPPError, KeyboardInterrupt) as exc:
        cause = single_cause(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(cause, ConfigError):
            print(f"jicofo: configuration error: {cause}", file=sys.stderr)
            return 2
        if isinstance(cause, XMPPError):
            print(f"jicofo: {cause}", file=sys.stderr)
            return 1
        if isinstance(cause, KeyboardInterrupt):
            return 0
        raise
    return 0

if __name__ == "__main__":
    sys.exit(main())
