"""The REST API over real HTTP, on a focus running against a real Prosody with a simulated bridge:
every route's status and JSON shape (errors included), the Prometheus output parsed by
prometheus-client's own parsers, the health check following the bridges, the switches, and
hostile HTTP refused without disturbing other connections."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import h11
import trio
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from jicofo.app import FocusApp
from jicofo.focus import ConferenceRequestError
from jicofo.health import HealthChecker
from jicofo.http.server import HttpLimits, HttpServer
from jicofo.rest import build_router
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import Bridges, focus_config, running_focus, simulated_bridges

HOST = "127.0.0.1"
FAST_HEALTH = {"jicofo.health.enabled": True, "jicofo.health.interval": "300 ms"}


@dataclass
class Stack:
    app: FocusApp
    health: HealthChecker
    port: int
    bridges: Bridges
    prosody: ProsodyInstance

    def room(self, name: str) -> str:
        return f"{name}@{self.prosody.muc_domain}"

    async def call(self, method: str, path: str, body: Any = None, *,
                   headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return await http(self.port, method, path, body, headers=headers)

    async def json(self, path: str, status: int = 200) -> Any:
        got, headers, body = await self.call("GET", path)
        assert got == status, (path, got, body)
        assert headers["content-type"] == "application/json"
        return json.loads(body)

    async def wait_healthy(self, healthy: bool = True, timeout: float = 15,
                           saying: bytes = b"") -> tuple[int, bytes]:
        with trio.fail_after(timeout):
            while True:
                status, _, body = await self.call("GET", "/about/health")
                if (status == 200) == healthy and saying in body:
                    return status, body
                await trio.sleep(0.1)


async def http(port: int, method: str, path: str, body: Any = None, *,
               headers: Mapping[str, str] | None = None,
               raw_body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    payload = raw_body if raw_body is not None else (b"" if body is None else json.dumps(body).encode())
    sent = [("host", f"{HOST}:{port}"), ("connection", "close"), ("content-length", str(len(payload)))]
    sent += list((headers or {}).items())
    conn = h11.Connection(h11.CLIENT)
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(HOST, port)
        async with stream:
            await stream.send_all(conn.send(h11.Request(method=method, target=path, headers=sent)))
            if payload:
                await stream.send_all(conn.send(h11.Data(data=payload)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
            status, got_headers, chunks = 0, {}, []
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    got_headers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return status, got_headers, b"".join(chunks)


@asynccontextmanager
async def rest_stack(prosody: ProsodyInstance, extra: Mapping[str, Any] | None = None,
                     *, limits: HttpLimits | None = None) -> AsyncIterator[Stack]:
    config = focus_config(prosody, {**FAST_HEALTH, **(extra or {})})
    async with simulated_bridges(prosody, 1) as sims, running_focus(config) as app:
        health = HealthChecker(app, config.health)
        server = HttpServer(build_router(app, health), host=HOST, port=0,
                            limits=limits or HttpLimits(), name="rest")
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server.serve)
            await nursery.start(health.run)
            try:
                yield Stack(app, health, port, sims, prosody)
            finally:
                nursery.cancel_scope.cancel()


# ----- about, stats, metrics ----------------------------------------------------------------------


async def test_version_stats_and_health(prosody: ProsodyInstance) -> None:
    async with rest_stack(prosody) as stack:
        version = await stack.json("/about/version")
        assert version["name"] == "JiCoFo" and version["version"] and version["os"] == "Linux"

        status, body = await stack.wait_healthy()
        assert (status, json.loads(body)) == (200, {})

        stats = await stack.json("/stats")
        for key in ("total_participants", "total_conferences_created", "conferences",
                    "conferences_with_visitors", "largest_conference", "participants", "visitors",
                    "endpoint_pairs", "threads", "version", "slow_health_check", "healthy"):
            assert key in stats, key
        assert set(stats["bridge_failures"]) == {"participants_moved", "bridges_removed"}
        assert set(stats["participant_notifications"]) == {"ice_failed", "request_restart"}
        assert set(stats["bridge_selector"]) == {"bridge_count", "operational_bridge_count",
                                                 "in_shutdown_bridge_count", "lost_bridges",
                                                 "bridge_version_count"}
        assert stats["bridge_selector"]["bridge_count"] == 1
        assert stats["bridge_selector"]["operational_bridge_count"] == 1
        assert set(stats["jingle"]) == {"sent", "received"}
        assert len(stats["conference_sizes"]) == 22 and sum(stats["conference_sizes"]) == 0
        assert stats["healthy"] is True
        assert set(stats["health"]) == {"success", "hardFailure", "responseCode", "sticky", "message"}
        assert set(stats["jibri"]) >= {"recording_active", "live_streaming_active", "sip_call_active"}
        # Health-check conferences are left out of everything, and do not pile up.
        assert stats["conferences"] == 0 and stats["total_conferences_created"] == 0
        assert stack.app.stats.conference_requests == 0
        checks = stack.health.checks
        with trio.fail_after(10):
            while stack.health.checks < checks + 3:
                await trio.sleep(0.1)
        assert len(stack.app.focus.conferences) <= 1
        assert stack.app.stats.conference_requests == 0 and stack.app.stats.conferences_created == 0
        assert await stack.json("/debug/conferences") == []

        status, _, body = await stack.call("GET", "/no/such/route")
        assert status == 404
        status, _, _ = await stack.call("POST", "/stats")
        assert status == 405


async def test_metrics_parse_and_carry_upstream_names(prosody: ProsodyInstance) -> None:
    async with rest_stack(prosody) as stack:
        await stack.wait_healthy()
        status, _, _ = await stack.call("POST", "/conference-request/v1", {"room": stack.room("metered")})
        assert status == 200

        status, headers, body = await stack.call("GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        samples = {s.name: s.value for f in families.values() for s in f.samples if not s.labels}
        for name in ("conference_requests", "conference_requests_new", "conferences_created",
                     "participants", "participants_moved", "bridges_removed"):
            assert families[f"jitsi_jicofo_{name}"].type == "counter", name
            assert f"jitsi_jicofo_{name}_total" in samples
        for name in ("conferences", "largest_conference", "participants_current", "participants_pairs",
                     "bridge_selector_bridge_count", "bridge_selector_bridge_count_operational",
                     "bridge_selector_bridge_count_in_shutdown", "threads", "healthy"):
            assert families[f"jitsi_jicofo_{name}"].type == "gauge", name
        assert samples["jitsi_jicofo_conference_requests_total"] == 1
        assert samples["jitsi_jicofo_conferences_created_total"] == 1
        assert samples["jitsi_jicofo_conferences"] == 1
        assert samples["jitsi_jicofo_bridge_selector_bridge_count"] == 1
        assert samples["jitsi_jicofo_healthy"] == 1
        endpoints = families["jitsi_jicofo_bridge_endpoints"].samples
        assert [s.labels for s in endpoints] == [{"jvb": "jvb-sim-1"}] or len(endpoints) == 1
        version = families["jitsi_jicofo_version_info"].samples[0]
        assert version.labels["version"] and version.value == 1

        status, headers, body = await stack.call(
            "GET", "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
        assert status == 200 and headers["content-type"].startswith("application/openmetrics-text")
        om = {f.name: f for f in parse_openmetrics(body.decode())}
        assert om["jitsi_jicofo_conference_requests"].type == "counter"
        assert om["jitsi_jicofo_version"].type == "info"

        as_json = await http(stack.port, "GET", "/metrics", headers={"accept": "application/json"})
        assert as_json[0] == 200
        assert json.loads(as_json[2])["jitsi_jicofo_conferences"] == 1


async def test_health_follows_the_only_bridge(prosody: ProsodyInstance) -> None:
    async with rest_stack(prosody) as stack:
        await stack.wait_healthy()
        bridge = stack.bridges.bridges[0]
        await bridge.leave_brewery()
        status, body = await stack.wait_healthy(False, saying=b"no operational bridge")
        assert status == 500
        stats = await stack.json("/stats")
        assert stats["healthy"] is False and stats["health"]["hardFailure"] is True
        assert stats["bridge_selector"]["bridge_count"] == 0
        assert stats["bridge_failures"]["bridges_removed"] == 1
        _, _, metrics = await stack.call("GET", "/metrics")
        samples = {s.name: s.value for f in text_string_to_metric_families(metrics.decode())
                   for s in f.samples}
        assert samples["jitsi_jicofo_healthy"] == 0
        assert samples["jitsi_jicofo_bridges_removed_total"] == 1

        await bridge.join_brewery()
        status, _ = await stack.wait_healthy(True)
        assert status == 200
        assert (await stack.json("/stats"))["healthy"] is True


async def test_health_check_conference_fails_hard_when_the_room_cannot_be_made(
        prosody: ProsodyInstance) -> None:
    # A MUC service that does not exist: the test conference cannot start.
    async with rest_stack(prosody, {"jicofo.xmpp.client.conference-muc-jid":
                                    f"nomuc.{prosody.domain}"}) as stack:
        status, body = await stack.wait_healthy(False, saying=b"test conference")
        assert status == 500 and b"did not start" in body
        assert stack.app.focus.conferences == {}


# ----- conference requests ------------------------------------------------------------------------


async def test_conference_request(prosody: ProsodyInstance) -> None:
    async with rest_stack(prosody) as stack:
        room = stack.room("httproom")
        status, headers, body = await stack.call(
            "POST", "/conference-request/v1", {"room": room, "properties": {"rtcstatsEnabled": False}},
            headers={"authorization": "Bearer not.a.jwt"})
        assert status == 200 and headers["content-type"] == "application/json"
        answer = json.loads(body)
        assert answer["room"] == room and answer["ready"] is True
        assert answer["focusJid"] == f"focus@{prosody.auth_domain}"
        assert isinstance(answer["properties"], dict)
        assert answer["properties"]["authentication"] == "false"

        status, headers, body = await stack.call("OPTIONS", "/conference-request/v1")
        assert status == 200 and "POST" in headers["allow"]
        status, _, _ = await stack.call("GET", "/conference-request/v1")
        assert status == 405

        for bad, expected in (
            (b"{not json", b"not valid JSON"),
            (b"[]", b"JSON object"),
            (b"{}", b"No 'room' specified"),
            (json.dumps({"room": "no-at-sign"}).encode(), b"Invalid room name"),
            (json.dumps({"room": room, "properties": []}).encode(), b"properties"),
        ):
            status, headers, body = await http(stack.port, "POST", "/conference-request/v1", raw_body=bad,
                                               headers={"content-type": "application/json"})
            assert status == 400, (bad, body)
            assert headers["content-type"].startswith("text/plain") and expected in body, body

        async def refused(request: object) -> object:
            raise ConferenceRequestError("not-authorized", "not allowed to create the room")

        stack.app.focus.conference_request = refused  # type: ignore[method-assign]
        status, _, body = await stack.call("POST", "/conference-request/v1", {"room": room})
        assert (status, body.strip()) == (403, b"Forbidden")


# ----- debug --------------------------------------------------------------------------------------


async def test_debug_routes(prosody: ProsodyInstance) -> None:
    async with rest_stack(prosody) as stack:
        await stack.wait_healthy()
        assert await stack.json("/debug/conferences") == []
        room = stack.room("debugged")
        await stack.call("POST", "/conference-request/v1", {"room": room})

        assert await stack.json("/debug/conferences") == [room]
        debug = await stack.json("/debug")
        assert debug["focus_manager"] == {room: 0}
        selector = debug["bridge_selector"]
        assert selector["strategy"] == "SingleBridgeSelectionStrategy"
        (jid, bridge), = selector["bridges"].items()
        assert jid.endswith("/jvb-sim-1") or jid.startswith(prosody.brewery_jid)
        for key in ("operational", "stress", "drain", "graceful-shutdown", "endpoints", "version"):
            assert key in bridge, key
        # No moderation components on this Prosody: upstream's "null".
        assert debug["av_moderation"] == {"address": "null"}
        assert debug["room_metadata"] == {"address": "null"}
        full = await stack.json("/debug?full=true")
        assert full["focus_manager"][room]["room"] == room
        assert (await stack.json("/debug/conferences-full"))[room]["meeting_id"]

        state = await stack.json(f"/debug/conference/{room}")
        assert state["room"] == room and state["participants"] == {}
        assert (await stack.json(f"/debug/conference/{room.replace('@', '%40')}"))["room"] == room

        status, _, body = await stack.call("GET", f"/debug/conference/nothere@{prosody.muc_domain}")
        assert status == 404 and body.startswith(b"Not found")
        status, _, body = await stack.call("GET", "/debug/conference/not-a-room")
        assert status == 400 and body.startswith(b"Bad request")
        status, _, body = await stack.call("GET", "/debug?full=maybe")
        assert status == 400 and b"full" in body


# ----- moving endpoints and pinning ---------------------------------------------------------------


async def test_move_endpoints_check_parameters_and_do_not_pretend(
        prosody: ProsodyInstance) -> None:
    async with rest_stack(prosody) as stack:
        await stack.wait_healthy()
        room = stack.room("movers")
        await stack.call("POST", "/conference-request/v1", {"room": room})
        bridge = stack.bridges.bridges[0].nickname

        for path, status in (
            ("/move-endpoints/move-endpoint", 400),
            (f"/move-endpoints/move-endpoint?conference={room}", 400),
            (f"/move-endpoints/move-endpoint?conference=x@{prosody.muc_domain}&endpoint=e1", 404),
            (f"/move-endpoints/move-endpoint?conference={room}&endpoint=nobody", 404),
            (f"/move-endpoints/move-endpoints?conference={room}", 400),
            (f"/move-endpoints/move-endpoints?bridge=nojvb&conference={room}", 404),
            (f"/move-endpoints/move-endpoints?bridge={bridge}&conference={room}&numEndpoints=x", 400),
            (f"/move-endpoints/move-endpoints?bridge={bridge}&conference={room}&numEndpoints=0", 400),
            ("/move-endpoints/move-fraction", 400),
            (f"/move-endpoints/move-fraction?bridge={bridge}&fraction=2", 400),
            (f"/move-endpoints/move-fraction?bridge={bridge}&fraction=abc", 400),
        ):
            got, _, body = await stack.call("GET", path)
            assert got == status, (path, got, body)
        # Valid requests on a conference with nobody on the bridge move nothing (the moves
        # themselves are tested in test_moves.py).
        for path in (f"/move-endpoints/move-endpoints?bridge={bridge}&conference={room}",
                     f"/move-endpoints/move-fraction?bridge={bridge}&fraction=0.5"):
            got, _, body = await stack.call("GET", path)
            assert got == 200 and json.loads(body) == {"movedEndpoints": 0, "conferences": 0}


async def test_pin_routes(prosody: ProsodyInstance) -> None:
    async with rest_stack(prosody) as stack:
        room = stack.room("pinned")
        selector = stack.app.services.selector
        assert await stack.json("/pin") == []
        for body_sent in (
            {},
            {"conferenceId": room, "jvbVersion": "2.3"},
            {"conferenceId": room, "jvbVersion": "2.3", "durationMinutes": "ten"},
            {"conferenceId": room, "jvbVersion": "2.3", "durationMinutes": 0},
            {"conferenceId": "", "jvbVersion": "2.3", "durationMinutes": 10},
            {"conferenceId": room, "jvbVersion": "", "durationMinutes": 10},
            {"conferenceId": "no-local-part.example.com", "jvbVersion": "2.3", "durationMinutes": 10},
            {"conferenceId": f"{room}/resource", "jvbVersion": "2.3", "durationMinutes": 10},
            [room],
        ):
            got, _, body = await stack.call("POST", "/pin", body_sent)
            assert got == 400, (body_sent, got, body)
            assert body.startswith(b"Bad request: ")
        assert await stack.json("/pin") == []

        before = time.time()
        got, _, body = await stack.call("POST", "/pin", {"conferenceId": room.upper().replace(
            "PINNED", "Pinned"), "jvbVersion": "2.3.1-9", "durationMinutes": 10})
        assert got == 200, body
        [pin] = await stack.json("/pin")
        assert set(pin) == {"conferenceId", "jvbVersion", "expiresAt"}
        assert (pin["conferenceId"], pin["jvbVersion"]) == (room, "2.3.1-9")
        expires = datetime.strptime(pin["expiresAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert before + 599 <= expires.timestamp() <= time.time() + 600
        assert selector.pinned_version(room) == "2.3.1-9"
        # Pinning again replaces the pin.
        got, _, _ = await stack.call("POST", "/pin", {"conferenceId": room, "jvbVersion": "2.4",
                                                      "durationMinutes": 0.5})
        assert got == 200
        assert [p["jvbVersion"] for p in await stack.json("/pin")] == ["2.4"]

        for body_sent in ({}, {"conferenceId": ""}, {"conferenceId": "x@y/z"}):
            got, _, _ = await stack.call("POST", "/pin/remove", body_sent)
            assert got == 400, body_sent
        got, _, _ = await stack.call("POST", "/pin/remove", {"conferenceId": room})
        assert got == 200
        assert await stack.json("/pin") == []
        assert selector.pinned_version(room) is None
        # Removing what is not pinned is fine, as upstream.
        got, _, _ = await stack.call("POST", "/pin/remove", {"conferenceId": room})
        assert got == 200


# ----- switches -----------------------------------------------------------------------------------


async def test_routes_follow_their_config_switches(prosody: ProsodyInstance) -> None:
    off = {
        "jicofo.health.enabled": False,
        "jicofo.rest.prometheus.enabled": False,
        "jicofo.rest.conference-request.enabled": False,
        "jicofo.rest.debug.enabled": False,
        "jicofo.rest.move-endpoints.enabled": False,
        "jicofo.rest.pin.enabled": False,
    }
    async with rest_stack(prosody, off) as stack:
        for method, path in (("GET", "/about/health"), ("GET", "/metrics"),
                             ("POST", "/conference-request/v1"), ("GET", "/debug"),
                             ("GET", "/debug/conferences"), ("GET", f"/debug/conference/{stack.room('x')}"),
                             ("GET", "/move-endpoints/move-fraction?bridge=a"), ("GET", "/pin")):
            status, _, _ = await stack.call(method, path, {} if method == "POST" else None)
            assert status == 404, (method, path)
        assert (await stack.json("/about/version"))["name"] == "JiCoFo"
        assert "healthy" in await stack.json("/stats")


# ----- hostile HTTP -------------------------------------------------------------------------------


async def _raw(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream(HOST, port)
    async with stream:
        try:
            await stream.send_all(data)
        except trio.BrokenResourceError:
            pass
        chunks = []
        with trio.move_on_after(5):
            try:
                while chunk := await stream.receive_some(65536):
                    chunks.append(chunk)
            except trio.BrokenResourceError:
                pass
        return b"".join(chunks)


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


async def test_malformed_and_oversized_requests_do_not_disturb_others(prosody: ProsodyInstance) -> None:
    limits = HttpLimits(max_header_bytes=4096, max_body_bytes=64 * 1024, request_timeout=1.0)
    async with rest_stack(prosody, limits=limits) as stack:
        # A keep-alive connection that stays open across the abuse.
        keep = await trio.open_tcp_stream(HOST, stack.port)
        conn = h11.Connection(h11.CLIENT)

        async def get_on_keep(path: str) -> tuple[int, bytes]:
            await keep.send_all(conn.send(h11.Request(method="GET", target=path,
                                                      headers=[("host", "x")])))
            await keep.send_all(conn.send(h11.EndOfMessage()))
            status, chunks = 0, []
            with trio.fail_after(5):
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await keep.receive_some(65536))
                    elif isinstance(event, h11.Response):
                        status = event.status_code
                    elif isinstance(event, h11.Data):
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        conn.start_next_cycle()
                        return status, b"".join(chunks)

        async with keep:
            assert (await get_on_keep("/about/version"))[0] == 200

            hostile = [
                b"THIS IS NOT HTTP\r\n\r\n",
                b"GET /stats HTTP/1.1\r\nhost: x\r\nbad header line\r\n\r\n",
                b"GET /stats HTTP/1.1\r\nhost: x\r\ncontent-length: -5\r\n\r\n",
                b"GET /stats HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 20000 + b"\r\n\r\n",
                b"POST /conference-request/v1 HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\r\n{",
                b"POST /conference-request/v1 HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
                + b"10000\r\n" + b"a" * 65536 + b"\r\n" + b"10000\r\n" + b"a" * 65536 + b"\r\n0\r\n\r\n",
                b"POST /conference-request/v1 HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\n{\"ro",
            ]
            async with trio.open_nursery() as nursery:
                results: list[bytes] = [b""] * len(hostile)

                async def attack(i: int, data: bytes) -> None:
                    results[i] = await _raw(stack.port, data)

                for i, data in enumerate(hostile):
                    nursery.start_soon(attack, i, data)
                # Meanwhile the kept connection and fresh ones are served.
                assert (await get_on_keep("/stats"))[0] == 200
                status, _, _ = await stack.call("GET", "/about/version")
                assert status == 200
            statuses = [_status(r) for r in results]
            assert statuses[0] == 400 and statuses[1] == 400 and statuses[2] == 400
            assert statuses[3] == 431
            assert statuses[4] == 413 and statuses[5] == 413
            assert statuses[6] == 408
            for raw in results:
                assert b"connection: close" in raw.lower()
            # The kept connection is still good afterwards, and so is the focus.
            assert (await get_on_keep("/about/version"))[0] == 200
            status, body = await stack.wait_healthy()
            assert status == 200
