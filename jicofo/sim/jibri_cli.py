"""`jicofo-jibri-sim`: run simulated Jibri instances against an XMPP server, with a control API.

    JIBRI_PASSWORD=... jicofo-jibri-sim --host 127.0.0.1 --domain auth.meet.test --user jibri \\
        --brewery jibribrewery@internal.auth.meet.test --jibris 2 --http-port 8090

`--sip` makes them SIP gateways (for the `jibri-sip` brewery). Control API (h11), per instance
under `/jibris/{nick}/`:

    GET  /sim/jibris                   every instance's state
    GET  .../state                     idle/busy, health, the running session, the faults
    GET  .../requests                  every IQ received from the focus (and status IQs sent)
    POST .../requests/clear
    GET  .../faults;  POST .../faults  {"start": "ok"|"busy"|"fail-retry"|"fail-no-retry"|
                                        "pending"|"silent"|"error", "on_delay": seconds}
    POST .../fail                      {"should_retry": bool}: the running session fails now
    POST .../finish                    the running session ends on the Jibri's side (off)
    POST .../health                    {"healthy": bool}
    POST .../crash                     gone without leaving any room (connection closed)
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

import trio

from jicofo.http.server import HttpError, Request, Response, Router
from jicofo.sim.gateway_cli import (
    UsageError,
    add_control_arguments,
    add_login_arguments,
    checked_login,
    instance_routes,
    login_settings,
)
from jicofo.sim.jibri import START_FAULTS, SimulatedJibri
from jicofo.sim.serving import serve_until_signal

PASSWORD_VARIABLE = "JIBRI_PASSWORD"
CALL_PASSWORD_VARIABLE = "JIBRI_CALL_PASSWORD"


def build_router(jibris: list[SimulatedJibri]) -> Router:
    router = Router()
    named = instance_routes(router, "jibri", {j.nickname: j for j in jibris})

    async def listing(req: Request) -> Response:
        return Response.json([j.state() for j in jibris])

    router.add("GET", "/sim/jibris", listing)
    named("GET", "/state", _state)
    named("GET", "/requests", _requests)
    named("POST", "/requests/clear", _clear)
    named("GET", "/faults", _faults_get)
    named("POST", "/faults", _faults_set)
    named("POST", "/fail", _fail)
    named("POST", "/finish", _finish)
    named("POST", "/health", _health)
    named("POST", "/crash", _crash)
    return router


async def _state(jibri: SimulatedJibri, req: Request) -> Response:
    return Response.json(jibri.state())


async def _requests(jibri: SimulatedJibri, req: Request) -> Response:
    return Response.json(list(jibri.requests))


async def _clear(jibri: SimulatedJibri, req: Request) -> Response:
    jibri.requests.clear()
    return Response.json({})


async def _faults_get(jibri: SimulatedJibri, req: Request) -> Response:
    return Response.json(jibri.faults.to_json())


async def _faults_set(jibri: SimulatedJibri, req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise HttpError(400, "expected a JSON object")
    start = body.get("start", "ok")
    if start not in START_FAULTS:
        raise HttpError(400, f"start: one of {', '.join(START_FAULTS)}")
    delay = body.get("on_delay", 0.05)
    if not isinstance(delay, int | float) or delay < 0:
        raise HttpError(400, "on_delay: a number of seconds")
    jibri.faults.start, jibri.faults.on_delay = start, float(delay)
    return Response.json(jibri.faults.to_json())


async def _fail(jibri: SimulatedJibri, req: Request) -> Response:
    body = req.json() or {}
    if not isinstance(body, dict):
        raise HttpError(400, "expected a JSON object")
    if not await jibri.fail(should_retry=bool(body.get("should_retry", True))):
        raise HttpError(409, "no session running")
    return Response.json({})


async def _finish(jibri: SimulatedJibri, req: Request) -> Response:
    if not await jibri.finish():
        raise HttpError(409, "no session running")
    return Response.json({})


async def _health(jibri: SimulatedJibri, req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("healthy"), bool):
        raise HttpError(400, 'expected {"healthy": true|false}')
    jibri.healthy = body["healthy"]
    await jibri.publish_status()
    return Response.json({})


async def _crash(jibri: SimulatedJibri, req: Request) -> Response:
    await jibri.crash()
    return Response.json({})


# ----- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jicofo-jibri-sim",
        description="Simulated Jibri recorders / SIP gateways in a Jibri brewery.",
        epilog=f"The XMPP password is read from ${PASSWORD_VARIABLE} when --password is not given.",
    )
    add_login_arguments(p, user="jibri", user_help="XMPP username shared by the instances (default: jibri)",
                        password_variable=PASSWORD_VARIABLE)
    p.add_argument("--brewery", required=True, help="the Jibri brewery room JID")
    p.add_argument("--jibris", type=int, default=1, help="how many instances (default: 1)")
    p.add_argument("--nickname-prefix", default="jibri-sim-", help="brewery nickname prefix")
    p.add_argument("--sip", action="store_true", help="SIP gateways instead of recorders")
    p.add_argument("--call-domain", help="join conferences on a second login on this domain, as Jibri's "
                   "recorder account (e.g. recorder.meet.example.com; default: the brewery login)")
    p.add_argument("--call-user", default="recorder", help="that login's user (default: recorder; "
                   f"password ${CALL_PASSWORD_VARIABLE})")
    add_control_arguments(p)
    return p


def make_jibris(args: argparse.Namespace, env: dict[str, str]) -> list[SimulatedJibri]:
    brewery, password = checked_login(args, env, password_variable=PASSWORD_VARIABLE,
                                      count=args.jibris, count_flag="--jibris")
    call_password = env.get(CALL_PASSWORD_VARIABLE)
    if args.call_domain and not call_password:
        raise UsageError(f"--call-domain needs ${CALL_PASSWORD_VARIABLE}")
    jibris = []
    for n in range(1, args.jibris + 1):
        nick = f"{args.nickname_prefix}{n}"
        settings = login_settings(args, password, nick)
        call = None
        if args.call_domain:
            call = dataclasses.replace(settings, domain=args.call_domain, username=args.call_user,
                                       password=call_password)
        jibris.append(SimulatedJibri(settings, brewery, nick, sip=args.sip, call_settings=call))
    return jibris


async def run(args: argparse.Namespace, jibris: list[SimulatedJibri]) -> None:
    await serve_until_signal("jicofo-jibri-sim", jibris, build_router(jibris), host=args.http_host,
                             port=args.http_port, what=f"{len(jibris)} jibri(s) in {args.brewery}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        jibris = make_jibris(args, dict(os.environ))
    except UsageError as exc:
        print(f"jicofo-jibri-sim: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=str(args.log_level).upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    trio.run(run, args, jibris)
    return 0


if __name__ == "__main__":
    sys.exit(main())
