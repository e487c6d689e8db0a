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

import trio

from jicofo.http.server import HttpError, Request, Response, Router
from jicofo.sim.gateway_cli import (
    add_control_arguments,
    add_login_arguments,
    checked_login,
    instance_routes,
    login_settings,
)
from jicofo.sim.jigasi import DIAL_FAULTS, SimulatedJigasi
from jicofo.sim.serving import serve_until_signal

PASSWORD_VARIABLE = "JIGASI_PASSWORD"


def build_router(jigasis: list[SimulatedJigasi]) -> Router:
    router = Router()
    named = instance_routes(router, "jigasi", {j.nickname: j for j in jigasis})

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
    add_login_arguments(p, user="jigasi", user_help="XMPP username (default: jigasi)",
                        password_variable=PASSWORD_VARIABLE)
    p.add_argument("--brewery", required=True, help="the Jigasi brewery room JID")
    p.add_argument("--jigasis", type=int, default=1, help="how many instances (default: 1)")
    p.add_argument("--nickname-prefix", default="jigasi-sim-", help="brewery nickname prefix")
    p.add_argument("--no-sip", action="store_true", help="do not advertise SIP support")
    p.add_argument("--transcription", action="store_true", help="advertise transcription support")
    p.add_argument("--region", help="region published in stats")
    add_control_arguments(p)
    return p


def make_jigasis(args: argparse.Namespace, env: dict[str, str]) -> list[SimulatedJigasi]:
    brewery, password = checked_login(args, env, password_variable=PASSWORD_VARIABLE,
                                      count=args.jigasis, count_flag="--jigasis")
    return [
        SimulatedJigasi(login_settings(args, password, f"{args.nickname_prefix}{n}"), brewery,
                        f"{args.nickname_prefix}{n}", sip=not args.no_sip,
                        transcription=args.transcription, region=args.region)
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
