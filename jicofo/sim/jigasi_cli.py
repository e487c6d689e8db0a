"""`jicofo-jigasi-sim`: run simulated Jigasis against an XMPP server, with a control API.

    JIGASI_PASSWORD=... jicofo-jigasi-sim --host 127.0.0.1 --domain auth.meet.test --user jigasi \\
        --brewery jigasibrewery@internal.auth.meet.test --jigasis 2 --transcription --region eu

Control API (h11), per instance under `/jigasis/{nick}/`:

    GET  /sim/jigasis                  every instance's state
    GET  .../state;  GET .../requests  (every dial received, with its id and the answer)
    POST .../requests/clear
    POST .../faults                    {"dial": "ok"|"error"|"silent"}
    POST .../graceful-shutdown         {"enabled": bool}
    POST .../hangup                    leave every call
    POST .../crash                     gone without leaving any room
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Awaitable, Callable

import trio

from jicofo.http.server import HttpError, Request, Response, Router
from jicofo.sim.jigasi import DIAL_FAULTS, SimulatedJigasi
from jicofo.sim.serving import serve_until_signal
from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.settings import ClientSettings, TlsMode
from jicofo.xmpp.transport import TlsSettings

PASSWORD_VARIABLE = "JIGASI_PASSWORD"

Handler = Callable[[SimulatedJigasi, Request], Awaitable[Response]]


def build_router(jigasis: list[SimulatedJigasi]) -> Router:
    by_nick = {j.nickname: j for j in jigasis}
    router = Router()

    def named(method: str, path: str, handler: Handler) -> None:
        async def serve(req: Request) -> Response:
            jigasi = by_nick.get(req.params["nick"])
            if jigasi is None:
                raise HttpError(404, f"no jigasi {req.params['nick']!r}")
            return await handler(jigasi, req)

        router.add(method, "/jigasis/{nick}" + path, serve)

    async def listing(req: Request) -> Response:
        return Response.json([j.state() for j in jigasis])

    async def state(j: SimulatedJigasi, req: Request) -> Response:
        return Response.json(j.state())

    async def requests(j: SimulatedJigasi, req: Request) -> Response:
        return Response.json(list(j.requests))

    async def clear(j: SimulatedJigasi, req: Request) -> Response:
        j.requests.clear()
        return Response.json({})

    async def faults(j: SimulatedJigasi, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict) or body.get("dial") not in DIAL_FAULTS:
            raise HttpError(400, f"expected {{\"dial\": one of {', '.join(DIAL_FAULTS)}}}")
        j.dial_fault = body["dial"]
        return Response.json({"dial": j.dial_fault})

    async def graceful(j: SimulatedJigasi, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            raise HttpError(400, 'expected {"enabled": true|false}')
        j.graceful_shutdown = body["enabled"]
        await j.publish()
        return Response.json({})

    async def hangup(j: SimulatedJigasi, req: Request) -> Response:
        await j.hangup()
        return Response.json({})

    async def crash(j: SimulatedJigasi, req: Request) -> Response:
        await j.crash()
        return Response.json({})

    router.add("GET", "/sim/jigasis", listing)
    named("GET", "/state", state)
    named("GET", "/requests", requests)
    named("POST", "/requests/clear", clear)
    named("POST", "/faults", faults)
    named("POST", "/graceful-shutdown", graceful)
    named("POST", "/hangup", hangup)
    named("POST", "/crash", crash)
    return router


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jicofo-jigasi-sim",
                                description="Simulated Jigasi SIP gateways / transcribers in a brewery.",
                                epilog=f"The XMPP password is read from ${PASSWORD_VARIABLE} when "
                                       "--password is not given.")
    p.add_argument("--host", default="localhost", help="XMPP server (default: localhost)")
    p.add_argument("--port", type=int, default=5222, help="XMPP c2s port (default: 5222)")
    p.add_argument("--domain", help="XMPP domain to log in to (default: auth.<host>)")
    p.add_argument("--user", default="jigasi", help="XMPP username (default: jigasi)")
    p.add_argument("--password", help=f"XMPP password (prefer ${PASSWORD_VARIABLE})")
    p.add_argument("--tls", choices=["on", "off"], default="on", help="STARTTLS (default: on)")
    p.add_argument("--no-verify-tls", action="store_true", help="do not verify the server's certificate")
    p.add_argument("--brewery", required=True, help="the Jigasi brewery room JID")
    p.add_argument("--jigasis", type=int, default=1, help="how many instances (default: 1)")
    p.add_argument("--nickname-prefix", default="jigasi-sim-", help="brewery nickname prefix")
    p.add_argument("--no-sip", action="store_true", help="do not advertise SIP support")
    p.add_argument("--transcription", action="store_true", help="advertise transcription support")
    p.add_argument("--region", help="region published in stats")
    p.add_argument("--http-host", default="127.0.0.1", help="control API address (default: 127.0.0.1)")
    p.add_argument("--http-port", type=int, default=0, help="control API port (default: any free, printed)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: INFO)")
    return p


def make_jigasis(args: argparse.Namespace, env: dict[str, str]) -> list[SimulatedJigasi]:
    password = args.password or env.get(PASSWORD_VARIABLE)
    if not password:
        raise ValueError(f"no password (use --password or ${PASSWORD_VARIABLE})")
    if not 1 <= args.jigasis <= 1000:
        raise ValueError("--jigasis: between 1 and 1000")
    try:
        brewery = JID.parse(args.brewery).bare
    except InvalidJID as exc:
        raise ValueError(f"bad brewery JID: {exc}") from None
    tls = args.tls == "on"
    return [
        SimulatedJigasi(
            ClientSettings(domain=args.domain or f"auth.{args.host}", username=args.user, password=password,
                           resource=f"{args.nickname_prefix}{n}", host=args.host, port=args.port,
                           tls=TlsMode.STARTTLS if tls else TlsMode.DISABLED,
                           tls_settings=TlsSettings(verify=not args.no_verify_tls),
                           allow_plain_without_tls=not tls),
            brewery, f"{args.nickname_prefix}{n}", sip=not args.no_sip, transcription=args.transcription,
            region=args.region)
        for n in range(1, args.jigasis + 1)
    ]


async def run(args: argparse.Namespace, jigasis: list[SimulatedJigasi]) -> None:
    await serve_until_signal("jicofo-jigasi-sim", jigasis, build_router(jigasis), host=args.http_host,
                             port=args.http_port, what=f"{len(jigasis)} jigasi(s) in {args.brewery}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        jigasis = make_jigasis(args, dict(os.environ))
    except ValueError as exc:
        print(f"jicofo-jigasi-sim: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=str(args.log_level).upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    trio.run(run, args, jigasis)
    return 0


if __name__ == "__main__":
    sys.exit(main())
