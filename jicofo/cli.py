"""`jicofo`: the focus server.

    jicofo --config /etc/jitsi/jicofo/jicofo.conf
    jicofo --host localhost --domain meet.example.com --subdomain focus \\
           --user_domain auth.meet.example.com --user_name focus      # the seed-era flags

Secrets belong in the environment (JICOFO_SECRET, JICOFO_AUTH_PASSWORD) or the config file, not
in flags that show in process listings. SIGTERM/SIGINT stop in order: rooms are left and bridge
endpoints expired (bounded), then the process exits 0.
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
    parser.add_argument("--log-level", default=os.environ.get("JICOFO_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (default INFO)")
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


async def run(config: JicofoConfig) -> None:
    app = build_app(config)

    async def on_signals(app: FocusApp, nursery: trio.Nursery) -> None:
        nursery.start_soon(_stop_on_signal, app)

    await serve(app, extra=on_signals)


async def _stop_on_signal(app: FocusApp) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            app.request_stop(f"signal {signal.Signals(signum).name}")
            return


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=str(args.log_level).upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
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
