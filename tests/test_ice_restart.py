"""In-place ICE restart and the restart counters, end to end: a real Prosody, our focus, the
bridge simulator and simulated lib-jitsi-meet participants. What is asserted crossed the wire:
the participants' Jingle exchanges, the bridge's request log and state, the focus's /stats and
/metrics over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio
from defusedxml.ElementTree import fromstring
from prometheus_client.parser import text_string_to_metric_families

from jicofo.app import FocusApp
from jicofo.http.client import get_json, request
from jicofo.http.server import HttpServer
from jicofo.rest import build_router
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import Bridges, focus_config, running_focus, simulated_bridges
from jicofo.xmlns.jingle import Action, BridgeSession, JingleIQ

from .test_focus_e2e import bridge_log, no_errors, participants, room_of, wait_bridges

C2 = "{jitsi:colibri2}"
ICE = "{urn:xmpp:jingle:transports:ice-udp:1}"


@dataclass
class Stack:
    app: FocusApp
    bridges: Bridges
    rest_port: int

    async def stats(self) -> dict[str, Any]:
        result = await get_json("127.0.0.1", self.rest_port, "/stats")
        assert isinstance(result, dict)
        return result

    async def metrics(self) -> dict[str, float]:
        status, body = await request("127.0.0.1", self.rest_port, "GET", "/metrics")
        assert status == 200
        return {s.name: s.value for f in text_string_to_metric_families(body.decode())
                for s in f.samples if not s.labels}

    async def bridge_state(self, nick: str = "jvb-sim-1") -> dict[str, Any]:
        state = await get_json("127.0.0.1", self.bridges.http_port, f"/bridges/{nick}/state")
        assert isinstance(state, dict)
        return state


@asynccontextmanager
async def stack(prosody: ProsodyInstance, extra: Mapping[str, Any] | None = None,
                *bridge_args: str) -> AsyncIterator[Stack]:
    config = focus_config(prosody, extra)
    async with simulated_bridges(prosody, 1, *bridge_args) as sims, running_focus(config) as app:
        server = HttpServer(build_router(app), host="127.0.0.1", port=0, name="rest")
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server.serve)
            await wait_bridges(app)
            try:
                yield Stack(app, sims, port)
            finally:
                nursery.cancel_scope.cancel()


def find_endpoint(state: dict[str, Any], endpoint_id: str) -> dict[str, Any] | None:
    for conference in state["conferences"].values():
        if endpoint_id in conference["endpoints"]:
            return conference["endpoints"][endpoint_id]  # type: ignore[no-any-return]
    return None


def endpoint_state(state: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
    found = find_endpoint(state, endpoint_id)
    assert found is not None, f"{endpoint_id} not on the bridge: {state}"
    return found


def ice_restarts(log: list[dict[str, Any]], endpoint_id: str) -> list[dict[str, Any]]:
    """The bridge's log entries that asked for an ICE restart of `endpoint_id`."""
    found = []
    for entry in log:
        request_el = fromstring(entry["request"])
        for endpoint in request_el.iter(f"{C2}endpoint"):
            transport = endpoint.find(f"{C2}transport")
            if endpoint.get("id") == endpoint_id and transport is not None \
                    and transport.get("ice-restart") == "true":
                found.append(entry)
    return found


async def test_ice_restart_relays_the_bridges_new_credentials(prosody: ProsodyInstance) -> None:
    async with stack(prosody) as s, participants(prosody, room_of(prosody), 2, initial_last_n=7) as (ana, bo):
        first = await ana.wait_for_session(10)
        await bo.wait_for_session(10)
        assert ana.endpoint_id is not None
        # The session-accept's initial-last-n reached the bridge in the Colibri2 update.
        with trio.fail_after(10):
            while endpoint_state(await s.bridge_state(), ana.endpoint_id)["initial_last_n"] != 7:
                await trio.sleep(0.05)
        offered = first.bridge_transport
        assert offered is not None and offered.ufrag

        result = await ana.request_ice_restart()
        assert result.ok, result
        assert result.generation == 1 and result.ufrag and result.ufrag != offered.ufrag

        # The bridge was asked, answered new credentials with ice-generation 1, and those are
        # exactly what the client got in the transport-info.
        asked = ice_restarts(await bridge_log(s.bridges), ana.endpoint_id)
        assert len(asked) == 1, asked
        answer = fromstring(asked[0]["response"])
        ice = answer.find(f"{C2}endpoint/{C2}transport/{ICE}transport")
        assert ice is not None and ice.get("ice-generation") == "1"
        assert ice.get("ufrag") == result.ufrag
        assert ana.session is not None and ana.session.sid == first.sid  # the same session
        assert ana.session.bridge_transport is not None
        assert ana.session.bridge_transport.pwd == ice.get("pwd")
        # The client's own new credentials went on to the bridge.
        with trio.fail_after(10):
            while True:
                endpoint = endpoint_state(await s.bridge_state(), ana.endpoint_id)
                if endpoint["remote_ufrag"] == ana.session.transport.ufrag:
                    break
                await trio.sleep(0.05)
        assert endpoint["ice_generation"] == 1 and endpoint["ufrag"] == result.ufrag

        # Rate limit (5 s apart): an immediate second request is refused, the bridge not asked.
        again = await ana.request_ice_restart()
        assert again.outcome == "refused" and again.error is not None
        assert again.error.condition == "resource-constraint"
        assert len(ice_restarts(await bridge_log(s.bridges), ana.endpoint_id)) == 1

        metrics = await s.metrics()
        assert metrics["jitsi_jicofo_ice_restarts_requested_total"] == 1
        assert metrics["jitsi_jicofo_ice_restarts_relayed_total"] == 1
        assert metrics["jitsi_jicofo_ice_restarts_failed_total"] == 0
        # Nothing else happened to the call: no new session, Bo still sees Ana.
        assert ana.sessions_accepted == 1
        await bo.wait_for_remote_sources(ana.endpoint_id, 5)
        no_errors([ana, bo])


async def test_ice_restart_for_an_old_bridge_session_is_item_not_found(prosody: ProsodyInstance) -> None:
    async with stack(prosody) as s, participants(prosody, room_of(prosody), 2) as (ana, bo):
        session = await ana.wait_for_session(10)
        await bo.wait_for_session(10)
        session.bridge_session = BridgeSession("no-such-bridge-session")
        result = await ana.request_ice_restart()
        assert result.outcome == "refused" and result.error is not None
        assert result.error.condition == "item-not-found"
        assert ice_restarts(await bridge_log(s.bridges), ana.endpoint_id or "") == []


async def test_ice_restart_disabled_is_feature_not_implemented(prosody: ProsodyInstance) -> None:
    config = {"jicofo.conference.enable-ice-restart": False}
    async with stack(prosody, config) as s, participants(prosody, room_of(prosody), 2) as (ana, bo):
        await ana.wait_for_session(10)
        await bo.wait_for_session(10)
        result = await ana.request_ice_restart()
        assert result.outcome == "refused" and result.error is not None
        assert result.error.condition == "feature-not-implemented"
        assert ice_restarts(await bridge_log(s.bridges), ana.endpoint_id or "") == []
        assert (await s.metrics())["jitsi_jicofo_ice_restarts_requested_total"] == 0


async def test_ice_restart_refused_by_the_bridge_falls_back_to_a_new_session(
    prosody: ProsodyInstance,
) -> None:
    async with stack(prosody, None, "--no-ice-restart") as s, \
            participants(prosody, room_of(prosody), 2) as (ana, bo):
        first = await ana.wait_for_session(10)
        await bo.wait_for_session(10)
        result = await ana.request_ice_restart()
        # The bridge answered a bare endpoint: the focus ends the session ("moving") and offers
        # a new one at once, rather than leaving the client to wait for its 15 s fallback.
        assert result.outcome == "session-closed", result
        closed = ana.first("session-closed")
        assert closed is not None and "moving" in closed.detail, closed
        second = await ana.wait_for_session(10, other_than=first.sid)
        assert second.sid != first.sid
        assert len(ice_restarts(await bridge_log(s.bridges), ana.endpoint_id or "")) == 1
        metrics = await s.metrics()
        assert metrics["jitsi_jicofo_ice_restarts_failed_total"] == 1
        assert metrics["jitsi_jicofo_ice_restarts_relayed_total"] == 0
        no_errors([ana, bo])


async def test_restart_and_ice_failed_notifications_are_counted(prosody: ProsodyInstance) -> None:
    async with stack(prosody) as s, participants(prosody, room_of(prosody), 2) as (ana, bo):
        first = await ana.wait_for_session(10)
        await bo.wait_for_session(10)
        assert (await s.stats())["participant_notifications"] == {"ice_failed": 0, "request_restart": 0}

        assert await ana.report_ice_failed()
        second = await ana.wait_for_session(10, other_than=first.sid)
        assert await ana.request_restart(ice_failed=True)
        await ana.wait_for_session(10, other_than=second.sid)

        stats = await s.stats()
        assert stats["participant_notifications"] == {"ice_failed": 1, "request_restart": 1}
        metrics = await s.metrics()
        assert metrics["jitsi_jicofo_participants_ice_failed_total"] == 1
        assert metrics["jitsi_jicofo_participants_restart_requested_total"] == 1
        no_errors([ana, bo])


async def test_transport_accept_is_a_session_accept_and_transport_reject_is_acked(
    prosody: ProsodyInstance,
) -> None:
    config = {"jicofo.conference.reinvite-method": "ReplaceTransport"}
    async with stack(prosody, config) as s, participants(
        prosody, room_of(prosody), 2, apply_transport_replace=True, initial_last_n=5,
    ) as (ana, bo):
        first = await ana.wait_for_session(10)
        await bo.wait_for_session(10)
        assert ana.endpoint_id is not None
        old_ufrag = endpoint_state(await s.bridge_state(), ana.endpoint_id)["ufrag"]
        # ICE failed: with ReplaceTransport the focus allocates a new endpoint and sends a
        # transport-replace on the same session; the client answers with a transport-accept.
        assert await ana.report_ice_failed()
        with trio.fail_after(10):
            while True:
                endpoint = find_endpoint(await s.bridge_state(), ana.endpoint_id) or {}
                # (absent while the old endpoint is expired and the new one allocated)
                # The new endpoint got the client's transport and initial-last-n from the
                # transport-accept, and still has the client's sources.
                if endpoint.get("ufrag") not in (None, old_ufrag) and endpoint["connected"] \
                        and endpoint["initial_last_n"] == 5:
                    break
                await trio.sleep(0.05)
        assert endpoint["remote_ufrag"] == ana.session.transport.ufrag  # type: ignore[union-attr]
        assert endpoint["sources"], endpoint
        assert ana.session is not None and ana.session.sid == first.sid
        assert any(e.kind == "transport-accept" and e.direction == "out" for e in ana.events)

        reject = JingleIQ(Action.TRANSPORT_REJECT, first.sid, initiator=first.focus)
        await ana._send_jingle(first, reject, "test")  # an error answer would raise here
        await bo.wait_for_remote_sources(ana.endpoint_id, 5)
        no_errors([ana, bo])
