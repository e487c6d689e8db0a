"""What the Jibri and Jigasi simulators' command lines share: the login and control-API options,
checking them into a brewery JID, a password and per-instance login settings, and the control
API's per-instance routes (`/<kind>s/{nick}/...`)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from jicofo.http.server import HttpError, Request, Response, Router
from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.settings import ClientSettings, TlsMode
from jicofo.xmpp.transport import TlsSettings

T = TypeVar("T")


class UsageError(ValueError):
    """A bad command line: one line on stderr, exit 2."""


def add_login_arguments(p: argparse.ArgumentParser, *, user: str, user_help: str,
                        password_variable: str) -> None:
    p.add_argument("--host", default="localhost", help="XMPP server (default: localhost)")
    p.add_argument("--port", type=int, default=5222, help="XMPP c2s port (default: 5222)")
    p.add_argument("--domain", help="XMPP domain to log in to (default: auth.<host>)")
    p.add_argument("--user", default=user, help=user_help)
    p.add_argument("--password", help=f"XMPP password (prefer ${password_variable})")
    p.add_argument("--tls", choices=["on", "off"], default="on", help="STARTTLS (default: on)")
    p.add_argument("--no-verify-tls", action="store_true", help="do not verify the server's certificate")


def add_control_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--http-host", default="127.0.0.1", help="control API address (default: 127.0.0.1)")
    p.add_argument("--http-port", type=int, default=0, help="control API port (default: any free, printed)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: INFO)")


def checked_login(args: argparse.Namespace, env: Mapping[str, str], *, password_variable: str,
                  count: int, count_flag: str) -> tuple[JID, str]:
    """The brewery (bare JID) and the password, or UsageError."""
    password = args.password or env.get(password_variable)
    if not password:
        raise UsageError(f"no password (use --password or ${password_variable})")
    if not 1 <= count <= 1000:
        raise UsageError(f"{count_flag}: between 1 and 1000")
    try:
        brewery = JID.parse(args.brewery).bare
    except InvalidJID as exc:
        raise UsageError(f"bad brewery JID: {exc}") from None
    return brewery, password


def login_settings(args: argparse.Namespace, password: str, resource: str) -> ClientSettings:
    tls = args.tls == "on"
    return ClientSettings(
        domain=args.domain or f"auth.{args.host}", username=args.user, password=password,
        resource=resource, host=args.host, port=args.port,
        tls=TlsMode.STARTTLS if tls else TlsMode.DISABLED,
        tls_settings=TlsSettings(verify=not args.no_verify_tls), allow_plain_without_tls=not tls,
    )


def instance_routes(router: Router, kind: str, by_nick: Mapping[str, T]
                    ) -> Callable[[str, str, Callable[[T, Request], Awaitable[Response]]], None]:
    """A function that adds `METHOD /<kind>s/{nick}<path>` routes whose handler gets the instance
    (404 for an unknown nickname)."""
    def named(method: str, path: str, handler: Callable[[T, Request], Awaitable[Response]]) -> None:
        async def serve(req: Request) -> Response:
            instance = by_nick.get(req.params["nick"])
            if instance is None:
                raise HttpError(404, f"no {kind} {req.params['nick']!r}")
            return await handler(instance, req)

        router.add(method, f"/{kind}s/{{nick}}" + path, serve)
    return named
