"""The simulator's HTTP control and inspection API (h11).

The real bridge's paths answer for the first bridge of the process (so a one-bridge simulator
looks like a real bridge to scripts), and for any bridge under `/bridges/{nick}/...`:

    GET  /colibri/stats              the stats the bridge publishes, as JSON
    GET  /about/health               200 when healthy, 500 otherwise
    GET  /about/version              {"name": "JVB", "version": ..., "os": "Linux"}
    POST /colibri/shutdown           {"graceful-shutdown": true|false}
    GET  /colibri/drain              {"drain": bool};  POST /colibri/drain/enable|disable

Simulator-only, under `/bridges/{nick}/` (and `/sim/` for the process):

    GET  /sim/bridges                the bridges of this process
    GET  .../state                   the engine's state (conferences, endpoints, relays)
    GET  .../requests                every request received, with the answer (?kind=&meeting_id=)
    POST .../requests/clear
    GET  .../faults                  current faults;  POST .../faults  set them (JSON, see below)
    POST .../health                  {"healthy": bool}
    POST .../leave | .../join        leave the brewery cleanly / join again
    POST .../drop-connection         break the XMPP connection abruptly (it reconnects)
    POST .../conferences/{meeting_id}/expire
                                     drop a conference silently (idle expiry; the focus is not told)
    POST .../conferences/{meeting_id}/endpoints/{endpoint_id}/expire
                                     drop an endpoint silently (ICE failure): its next update gets
                                     unknown_endpoint

Faults JSON (every key optional; POST replaces the whole set):
    {"silent": ["colibri"|"health"|"all"|<kind>...],
     "error": {"condition": "item-not-found", "reason": "conference_not_found", "text": null,
               "kinds": ["allocate", ...], "count": 1},
     "wrong_shape": "not-conference-modified"|"no-transport"|"no-sctp"|"relay-setup",
     "presence_frozen": true,
     "latency": {"allocate": [0.1, 0.5], "all": 0.05},
     "hung": true}
"silent" drops the answers of those kinds only ("colibri": every Colibri2 kind, not health); the
bridge stays in the brewery and keeps publishing stats. "hung" is a bridge that hangs: it stays
in the brewery (its connection lives) with its last presence, answers no Colibri2 or health IQ
and publishes nothing more, i.e. "silent": ["all"] with "presence_frozen".
Request kinds: allocate, update, expire, relay-create, relay-update, connect, health.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from jicofo.http.server import HttpError, Request, Response, Router
from jicofo.sim.bridge import REQUEST_KINDS, ErrorFault, Faults, SimulatedBridge

BridgeHandler = Callable[[SimulatedBridge, Request], Awaitable[Response]]


def build_router(bridges: list[SimulatedBridge]) -> Router:
    by_nick = {b.nickname: b for b in bridges}
    router = Router()

    def both(method: str, path: str, handler: BridgeHandler) -> None:
        async def first(req: Request) -> Response:
            if not bridges:
                raise HttpError(404, "no bridges")
            return await handler(bridges[0], req)

        async def named(req: Request) -> Response:
            bridge = by_nick.get(req.params["nick"])
            if bridge is None:
                raise HttpError(404, f"no bridge {req.params['nick']!r}")
            return await handler(bridge, req)

        router.add(method, path, first)
        router.add(method, "/bridges/{nick}" + path, named)

    async def bridges_list(req: Request) -> Response:
        return Response.json([{"nickname": b.nickname, "in_brewery": b._in_brewery,
                               "rooms": [str(r.jid) for r in b.rooms]} for b in bridges])

    router.add("GET", "/sim/bridges", bridges_list)
    both("GET", "/colibri/stats", _stats)
    both("GET", "/about/health", _health)
    both("GET", "/about/version", _version)
    both("POST", "/colibri/shutdown", _shutdown)
    both("GET", "/colibri/drain", _drain_get)
    both("POST", "/colibri/drain/enable", _drain_enable)
    both("POST", "/colibri/drain/disable", _drain_disable)
    both("GET", "/state", _state)
    both("GET", "/requests", _requests)
    both("POST", "/requests/clear", _requests_clear)
    both("GET", "/faults", _faults_get)
    both("POST", "/faults", _faults_set)
    both("POST", "/health", _set_health)
    both("POST", "/leave", _leave)
    both("POST", "/join", _join)
    both("POST", "/drop-connection", _drop)
    both("POST", "/conferences/{meeting_id}/expire", _expire_conference)
    both("POST", "/conferences/{meeting_id}/endpoints/{endpoint_id}/expire", _expire_endpoint)
    return router


async def _stats(bridge: SimulatedBridge, req: Request) -> Response:
    return Response.json(bridge.engine.stats().to_json())


async def _health(bridge: SimulatedBridge, req: Request) -> Response:
    if bridge.engine.healthy:
        return Response.json({})
    return Response.json({"healthy": False}, 500)


async def _version(bridge: SimulatedBridge, req: Request) -> Response:
    return Response.json({"name": "JVB", "version": bridge.engine.identity.full_version, "os": "Linux"})


async def _shutdown(bridge: SimulatedBridge, req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("graceful-shutdown"), bool):
        raise HttpError(400, 'expected {"graceful-shutdown": true|false}')
    if body["graceful-shutdown"]:
        bridge.engine.enter_graceful_shutdown()
    else:
        bridge.engine.enter_shutting_down()
    bridge.presence_changed()
    return Response.json({})


async def _drain_get(bridge: SimulatedBridge, req: Request) -> Response:
    return Response.json({"drain": bridge.engine.drain})


async def _drain_enable(bridge: SimulatedBridge, req: Request) -> Response:
    bridge.engine.drain = True
    bridge.presence_changed()
    return Response.json({"drain": True})


async def _drain_disable(bridge: SimulatedBridge, req: Request) -> Response:
    bridge.engine.drain = False
    bridge.presence_changed()
    return Response.json({"drain": False})


async def _state(bridge: SimulatedBridge, req: Request) -> Response:
    return Response.json(bridge.engine.dump())


async def _requests(bridge: SimulatedBridge, req: Request) -> Response:
    kind = req.arg("kind")
    meeting_id = req.arg("meeting_id")
    entries = [e for e in bridge.requests
               if (kind is None or e["kind"] == kind)
               and (meeting_id is None or e["meeting_id"] == meeting_id)]
    return Response.json(entries)


async def _requests_clear(bridge: SimulatedBridge, req: Request) -> Response:
    bridge.requests.clear()
    return Response.json({})


async def _faults_get(bridge: SimulatedBridge, req: Request) -> Response:
    return Response.json(bridge.faults.to_json())


async def _faults_set(bridge: SimulatedBridge, req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise HttpError(400, "expected a JSON object")
    bridge.faults = parse_faults(body)
    bridge.presence_changed()
    return Response.json(bridge.faults.to_json())


async def _set_health(bridge: SimulatedBridge, req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("healthy"), bool):
        raise HttpError(400, 'expected {"healthy": true|false}')
    bridge.engine.healthy = body["healthy"]
    bridge.presence_changed()
    return Response.json({"healthy": bridge.engine.healthy})


async def _leave(bridge: SimulatedBridge, req: Request) -> Response:
    await bridge.leave_brewery()
    return Response.json({"in_brewery": False})


async def _join(bridge: SimulatedBridge, req: Request) -> Response:
    if not bridge._in_brewery:
        await bridge.join_brewery()
    return Response.json({"in_brewery": True})


async def _drop(bridge: SimulatedBridge, req: Request) -> Response:
    await bridge.drop_connections()
    return Response.json({})


async def _expire_conference(bridge: SimulatedBridge, req: Request) -> Response:
    if not bridge.engine.expire_conference(req.params["meeting_id"]):
        raise HttpError(404, "no such conference")
    bridge.presence_changed()
    return Response.json({"expired": True})


async def _expire_endpoint(bridge: SimulatedBridge, req: Request) -> Response:
    if not bridge.engine.expire_endpoint(req.params["meeting_id"], req.params["endpoint_id"]):
        raise HttpError(404, "no such endpoint")
    bridge.presence_changed()
    return Response.json({"expired": True})


def parse_faults(body: dict[str, Any]) -> Faults:
    """Validate the faults JSON; a mistake is a 400 naming the key."""
    faults = Faults()
    known = {"silent", "error", "wrong_shape", "presence_frozen", "latency", "hung"}
    unknown = set(body) - known
    if unknown:
        raise HttpError(400, f"unknown fault keys: {sorted(unknown)}")
    kinds_ok = set(REQUEST_KINDS) | {"colibri", "all"}
    silent = body.get("silent", [])
    if not isinstance(silent, list) or not all(isinstance(k, str) and k in kinds_ok for k in silent):
        raise HttpError(400, f"silent: a list of {sorted(kinds_ok)}")
    faults.silent = set(silent)
    error = body.get("error")
    if error is not None:
        if not isinstance(error, dict) or not isinstance(error.get("condition"), str):
            raise HttpError(400, "error: an object with at least a condition")
        kinds = error.get("kinds", list(REQUEST_KINDS))
        if not isinstance(kinds, list) or not set(kinds) <= set(REQUEST_KINDS):
            raise HttpError(400, f"error.kinds: a list of {list(REQUEST_KINDS)}")
        count = error.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise HttpError(400, "error.count: a positive integer")
        faults.error = ErrorFault(error["condition"], error.get("reason"), error.get("text"),
                                  frozenset(kinds), count)
    shape = body.get("wrong_shape")
    if shape not in (None, "not-conference-modified", "no-transport", "no-sctp", "relay-setup"):
        raise HttpError(400, f"wrong_shape: unknown shape {shape!r}")
    faults.wrong_shape = shape
    faults.presence_frozen = bool(body.get("presence_frozen", False))
    hung = body.get("hung", False)
    if not isinstance(hung, bool):
        raise HttpError(400, "hung: true or false")
    faults.hung = hung
    latency = body.get("latency", {})
    if not isinstance(latency, dict):
        raise HttpError(400, "latency: an object of kind -> seconds or [min, max]")
    for kind, value in latency.items():
        if kind not in set(REQUEST_KINDS) | {"all"}:
            raise HttpError(400, f"latency: unknown kind {kind!r}")
        if isinstance(value, int | float):
            low = high = float(value)
        elif (isinstance(value, list) and len(value) == 2
              and all(isinstance(v, int | float) for v in value)):
            low, high = float(value[0]), float(value[1])
        else:
            raise HttpError(400, f"latency.{kind}: seconds or [min, max]")
        if not 0 <= low <= high <= 120:
            raise HttpError(400, f"latency.{kind}: 0 <= min <= max <= 120 seconds")
        faults.latency[kind] = (low, high)
    return faults
