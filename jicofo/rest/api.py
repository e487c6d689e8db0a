"""The REST API, with upstream Jicofo's routes and JSON shapes (docs/jicofo.md §4).

    router = build_router(app, health)
    await nursery.start(serve_rest, app, health)     # on jicofo.rest.host:port, if enabled

Routes and the keys that switch them (`jicofo.rest.*`):

    GET  /about/version                      always
    GET  /about/health                       jicofo.health.enabled (404 otherwise)
    GET  /stats                              always
    GET  /metrics                            prometheus.enabled (text, OpenMetrics or JSON by Accept)
    POST /conference-request/v1, OPTIONS     conference-request.enabled
    GET  /debug, /debug/conferences,
         /debug/conferences-full,
         /debug/conference/{room}            debug.enabled
    GET  /move-endpoints/move-endpoint,
         /move-endpoints/move-endpoints,
         /move-endpoints/move-fraction       move-endpoints.enabled
    GET  /pin, POST /pin, POST /pin/remove   pin.enabled

A switched-off route answers 404, as when upstream does not install it. Errors are plain text as
upstream's (`Bad request: …`, `Not found: …`, `Forbidden`). None of these routes authenticates:
keep `jicofo.rest.host` on loopback (the default) or behind a proxy.

Moving endpoints re-invites them with the configured re-invite method (`Conference.move_endpoint`);
where they land is the selection strategy's choice, as upstream. Pins are kept by the bridge
selector (`BridgeSelector.pin`/`unpin`/`pins`) and apply to conferences that have no bridge yet.
"""

from __future__ import annotations

import logging
import math
import platform
from typing import TYPE_CHECKING, Any

import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from jicofo import __version__
from jicofo.health import HealthChecker, is_health_check_room
from jicofo.http.server import HttpError, HttpServer, Request, Response, Router
from jicofo.xmlns.conference_iq import ConferenceRequest
from jicofo.xmpp.jid import JID, InvalidJID

from .gateway_metrics import gateway_debug_json
from .metrics import BridgeEventCounts, metrics_json, metrics_registry, stats_json

if TYPE_CHECKING:
    from jicofo.app import FocusApp
    from jicofo.bridge.model import Bridge
    from jicofo.conference.conference import Conference

log = logging.getLogger(__name__)

VERSION_NAME = "JiCoFo"  # what upstream's /about/version says; monitors may match on it
FORBIDDEN_CONDITIONS = frozenset({"not-authorized", "forbidden"})
# Temporary conditions: a client (or its proxy) may retry. Upstream answers 400 for every error.
UNAVAILABLE_CONDITIONS = frozenset({"service-unavailable", "resource-constraint"})


def bad_request(message: str) -> HttpError:
    return HttpError(400, f"Bad request: {message}")


def not_found(message: str) -> HttpError:
    return HttpError(404, f"Not found: {message}")


def _bool_arg(request: Request, name: str, default: bool) -> bool:
    value = request.arg(name)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise bad_request(f"{name} must be true or false, got {value!r}")


def _int_arg(request: Request, name: str, default: int, *, minimum: int = 1) -> int:
    value = request.arg(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise bad_request(f"{name} must be at least {minimum}, got {number}")
    return number


def _fraction_arg(request: Request, name: str, default: float) -> float:
    value = request.arg(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise bad_request(f"{name} must be a number, got {value!r}") from None
    if not (0 < number <= 1) or math.isnan(number):
        raise bad_request(f"{name} must be in (0, 1], got {value!r}")
    return number


def _required(request: Request, name: str) -> str:
    value = request.arg(name)
    if not value:
        raise bad_request(f"missing parameter {name}")
    return value


class RestApi:
    """The handlers, bound to one running focus (and its health checker, if any)."""

    def __init__(self, app: FocusApp, health: HealthChecker | None = None) -> None:
        self.app = app
        self.health = health
        self.rest = app.config.rest
        self.bridge_events = BridgeEventCounts.attach(app)
        self.registry = metrics_registry(app, health, self.bridge_events)

    # ----- about, stats, metrics ------------------------------------------------------------------

    async def version(self, request: Request) -> Response:
        return Response.json({"name": VERSION_NAME, "version": __version__, "os": platform.system(),
                              "implementation": "jicofo-trio"})

    async def about_health(self, request: Request) -> Response:
        if self.health is None or not self.app.config.health.enabled:
            raise not_found("health checks are disabled (jicofo.health.enabled)")
        result = self.health.last_result
        if result.success:
            return Response.json({})
        return Response.text(result.message + "\n", result.status)

    async def stats(self, request: Request) -> Response:
        return Response.json(stats_json(self.app, self.health, self.bridge_events))

    async def metrics(self, request: Request) -> Response:
        accept = request.headers.get("accept", "")
        if "application/openmetrics-text" in accept:
            return Response(200, openmetrics.generate_latest(self.registry),
                            openmetrics.CONTENT_TYPE_LATEST)
        if "application/json" in accept and "text/plain" not in accept:
            return Response.json(metrics_json(self.registry))
        return Response(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)

    # ----- conference requests --------------------------------------------------------------------

    async def conference_request(self, request: Request) -> Response:
        from jicofo.focus import ConferenceRequestError

        token = None
        authorization = request.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip() or None
        try:
            conference_request = ConferenceRequest.from_json_bytes(request.body, token=token)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        try:
            answer = await self.app.focus.conference_request(conference_request)
        except ConferenceRequestError as exc:
            if exc.condition in FORBIDDEN_CONDITIONS:
                raise HttpError(403, "Forbidden") from None
            if exc.condition == "not-acceptable":  # an authentication session refused
                raise bad_request("invalid-session") from None
            if exc.condition in UNAVAILABLE_CONDITIONS:
                raise HttpError(503, f"Service unavailable: {exc.text}") from None
            raise bad_request(exc.text) from None
        return Response.json(answer.to_json())

    async def conference_request_options(self, request: Request) -> Response:
        return Response(200, headers=(("allow", "POST, OPTIONS"),))

    # ----- debug ----------------------------------------------------------------------------------

    def _conferences(self) -> dict[JID, Conference]:
        prefix = self.app.config.health.room_name_prefix
        return {room: c for room, c in list(self.app.focus.conferences.items())
                if not is_health_check_room(room, prefix)}

    def _conference(self, room: str) -> Conference:
        try:
            jid = JID.parse(room)
        except InvalidJID as exc:
            raise bad_request(f"invalid conference JID {room!r}: {exc}") from None
        if jid.local is None or not jid.is_bare:
            raise bad_request(f"invalid conference JID {room!r}: need room@service")
        conference = self.app.focus.conferences.get(jid)
        if conference is None:
            raise not_found(f"conference {room}")
        return conference

    def _bridge_selector_json(self) -> dict[str, Any]:
        brewery = self.app.brewery
        bridges: dict[str, Any] = {}
        if brewery is not None:
            now = brewery.clock()
            for bridge in list(brewery.bridges.values()):
                bridges[str(bridge.jid)] = {**bridge.to_json(now), "health": brewery.health(bridge).value}
        return {
            "strategy": str(self.app.config.bridge.selection_strategy),
            "brewery": brewery.to_json()["brewery"] if brewery is not None else None,
            "joined": brewery.joined if brewery is not None else False,
            "bridges": bridges,
        }

    async def debug(self, request: Request) -> Response:
        full = _bool_arg(request, "full", False)
        conferences = {
            str(room): (c.to_json() if full else len(c.participants))
            for room, c in self._conferences().items()
        }
        body: dict[str, Any] = {
            "focus_manager": conferences,
            "bridge_selector": self._bridge_selector_json(),
            "stats": stats_json(self.app, self.health, self.bridge_events),
            "conference_iq_handler": self.app.focus.conference_iq_debug(),
            # The discovered components, as upstream's handlers show them ("null": none);
            # room_metadata is our addition.
            **{kind: {"address": str(self.app.focus.components.get(kind, "null"))}
               for kind in ("av_moderation", "room_metadata")},
            **gateway_debug_json(self.app),
        }
        if self.health is not None:
            body["health"] = self.health.last_result.to_json()
        return Response.json(body)

    async def debug_conferences(self, request: Request) -> Response:
        return Response.json(sorted(str(room) for room in self._conferences()))

    async def debug_conferences_full(self, request: Request) -> Response:
        return Response.json({str(room): c.to_json() for room, c in self._conferences().items()})

    async def debug_conference(self, request: Request) -> Response:
        return Response.json(self._conference(request.params["room"]).to_json())

    # ----- moving endpoints -----------------------------------------------------------------------

    def _bridge(self, name: str) -> Bridge:
        """A bridge by full JID or by its brewery nickname (resource), as upstream."""
        brewery = self.app.brewery
        if brewery is not None:
            for bridge in list(brewery.bridges.values()):
                if name in (str(bridge.jid), bridge.nickname):
                    return bridge
        raise not_found(f"bridge {name}")

    @staticmethod
    def _moved(moves: list[tuple[Conference, str]], bridge: Bridge | None = None) -> Response:
        moved = 0
        conferences: set[JID] = set()
        for conference, endpoint_id in moves:
            if conference.move_endpoint(endpoint_id, bridge):
                moved += 1
                conferences.add(conference.room_jid)
        return Response.json({"movedEndpoints": moved, "conferences": len(conferences)})

    async def move_endpoint(self, request: Request) -> Response:
        room = _required(request, "conference")
        endpoint = _required(request, "endpoint")
        bridge_name = request.arg("bridge")
        conference = self._conference(room)
        if endpoint not in conference.participants:
            raise not_found(f"endpoint {endpoint} in {room}")
        bridge = None
        if bridge_name:
            bridge = self._bridge(bridge_name)
            if endpoint not in conference.endpoints_on(bridge):
                raise not_found(f"endpoint {endpoint} on bridge {bridge_name}")
        return self._moved([(conference, endpoint)], bridge)

    async def move_endpoints(self, request: Request) -> Response:
        bridge = self._bridge(_required(request, "bridge"))
        conference = self._conference(_required(request, "conference"))
        count = _int_arg(request, "numEndpoints", 1)
        return self._moved([(conference, e) for e in conference.endpoints_on(bridge)[:count]], bridge)

    async def move_fraction(self, request: Request) -> Response:
        bridge = self._bridge(_required(request, "bridge"))
        fraction = _fraction_arg(request, "fraction", 0.1)
        on_bridge = [(c, e) for c in self._conferences().values() for e in c.endpoints_on(bridge)]
        count = math.ceil(len(on_bridge) * fraction)
        return self._moved(on_bridge[:count], bridge)

    # ----- pinning --------------------------------------------------------------------------------

    async def pins(self, request: Request) -> Response:
        return Response.json(self.app.services.selector.pins())

    @staticmethod
    def _pin_body(request: Request, *keys: str) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        for key in keys:
            if key not in body:
                raise bad_request(f"missing {key}")
        return body

    async def pin(self, request: Request) -> Response:
        body = self._pin_body(request, "conferenceId", "jvbVersion", "durationMinutes")
        conference_id, version, minutes = body["conferenceId"], body["jvbVersion"], body["durationMinutes"]
        if not isinstance(conference_id, str) or not conference_id:
            raise bad_request("conferenceId must be a non-empty string")
        if not isinstance(version, str) or not version:
            raise bad_request("jvbVersion must be a non-empty string")
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not 0 < minutes < 1e6:
            raise bad_request("durationMinutes must be a positive number")
        try:
            self.app.services.selector.pin(conference_id, version, float(minutes) * 60)
        except ValueError as e:  # not a room JID (upstream: 400 too)
            raise bad_request(str(e)) from None
        return Response.json({})

    async def unpin(self, request: Request) -> Response:
        body = self._pin_body(request, "conferenceId")
        if not isinstance(body["conferenceId"], str) or not body["conferenceId"]:
            raise bad_request("conferenceId must be a non-empty string")
        try:
            self.app.services.selector.unpin(body["conferenceId"])
        except ValueError as e:
            raise bad_request(str(e)) from None
        return Response.json({})


def build_router(app: FocusApp, health: HealthChecker | None = None) -> Router:
    """The routes upstream has, each only when its `jicofo.rest.*` key is on. `health` is the
    focus's health checker (None: /about/health answers 404, as with health checks disabled)."""
    api = RestApi(app, health)
    rest = app.config.rest
    router = Router()
    router.add("GET", "/about/version", api.version)
    router.add("GET", "/about/health", api.about_health)
    router.add("GET", "/stats", api.stats)
    if rest.prometheus_enabled:
        router.add("GET", "/metrics", api.metrics)
    if rest.conference_request_enabled:
        router.add("POST", "/conference-request/v1", api.conference_request)
        router.add("OPTIONS", "/conference-request/v1", api.conference_request_options)
    if rest.debug_enabled:
        router.add("GET", "/debug", api.debug)
        router.add("GET", "/debug/conferences", api.debug_conferences)
        router.add("GET", "/debug/conferences-full", api.debug_conferences_full)
        router.add("GET", "/debug/conference/{room}", api.debug_conference)
    if rest.move_endpoints_enabled:
        router.add("GET", "/move-endpoints/move-endpoint", api.move_endpoint)
        router.add("GET", "/move-endpoints/move-endpoints", api.move_endpoints)
        router.add("GET", "/move-endpoints/move-fraction", api.move_fraction)
    if rest.pin_enabled:
        router.add("GET", "/pin", api.pins)
        router.add("POST", "/pin", api.pin)
        router.add("POST", "/pin/remove", api.unpin)
    return router


async def serve_rest(
    app: FocusApp,
    health: HealthChecker | None = None,
    *,
    task_status: trio.TaskStatus[int | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API on `jicofo.rest.host`:`port` until cancelled; `started(port)`. When the API is
    off (`rest.enabled` false or port ≤ 0) it reports `started(None)` and returns."""
    rest = app.config.rest
    if not rest.serving:
        log.info("REST API disabled (jicofo.rest.enabled=%s, port=%d)", rest.enabled, rest.port)
        task_status.started(None)
        return
    server = HttpServer(build_router(app, health), host=rest.host, port=rest.port, name="rest")
    await server.serve(task_status=task_status)
