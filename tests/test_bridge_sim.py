"""The bridge simulator on the wire: a scripted focus in the brewery talks to it through Prosody."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
import trio

from jicofo.http.client import get_json, post_json, request
from jicofo.http.server import HttpServer
from jicofo.sim.bridge import SimulatedBridge
from jicofo.sim.bridge_cli import UsageError, build_parser, make_bridges, resolve_options
from jicofo.sim.bridge_control import build_router
from jicofo.testing.prosody import ProsodyInstance
from jicofo.xmlns.colibri2 import Colibri2ErrorInfo, ConferenceModified, ErrorReason, colibri2_error
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.errors import IQTimeout, StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom, OccupantChanged, OccupantJoined
from jicofo.xmpp.xml import parse_fragment

from .xmpp_helpers import connected, settings_for

C2 = "jitsi:colibri2"
ICE = "urn:xmpp:jingle:transports:ice-udp:1"
DTLS = "urn:xmpp:jingle:apps:dtls:0"
COLIBRI = "http://jitsi.org/protocol/colibri"
MEETING = "5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23"


@dataclass
class Sim:
    prosody: ProsodyInstance
    bridges: list[SimulatedBridge]
    focus: XMPPClient
    brewery: MucRoom
    http_port: int

    def bridge_jid(self, n: int = 1) -> JID:
        return self.brewery.jid.with_resource(f"jvb-sim-{n}")

    async def colibri(self, xml: str, n: int = 1, timeout: float = 5) -> Element:
        payload = parse_fragment(xml)
        result = await self.focus.request(self.focus.iq("get", self.bridge_jid(n), payload), timeout)
        modified = result.find(f"{{{C2}}}conference-modified")
        assert modified is not None, "the answer is not a conference-modified"
        return modified

    async def control(self, method: str, path: str, body: object = None) -> object:
        if method == "GET":
            return await get_json("127.0.0.1", self.http_port, path)
        return await post_json("127.0.0.1", self.http_port, path, body)


@asynccontextmanager
async def simulator(prosody: ProsodyInstance, *extra: str) -> AsyncIterator[Sim]:
    args = build_parser().parse_args([
        "--host", prosody.ip, "--port", str(prosody.c2s_port), "--domain", prosody.auth_domain,
        "--tls", "off", "--brewery", prosody.brewery_jid, "--stats-interval", "0.2",
        "--region", "us-east-1", "--relay-id", "sim-relay", *extra,
    ])
    opts = resolve_options(args, {"JVB_PASSWORD": prosody.jvb_password})
    bridges = make_bridges(opts)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(HttpServer(build_router(bridges)).serve)
        async with connected(settings_for(prosody, "focus", resource="focus")) as focus:
            brewery = MucRoom(focus, JID.parse(prosody.brewery_jid), "focus")
            await brewery.join()
            for bridge in bridges:
                await nursery.start(bridge.run)
            yield Sim(prosody, bridges, focus, brewery, port)
            for bridge in bridges:
                await bridge.stop()
        nursery.cancel_scope.cancel()


def _endpoint_xml(endpoint: str, *, create_conference: bool = False, sctp: bool = True) -> str:
    conf_attrs = "name='standup@conference.example.com' create='true'" if create_conference else ""
    return f"""<conference-modify xmlns='jitsi:colibri2' meeting-id='{MEETING}' {conf_attrs}>
      <endpoint id='{endpoint}' create='true' stats-id='{endpoint}-stats'>
        <media type='audio'>
          <payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='111' name='opus' clockrate='48000'
                        channels='2'/>
        </media>
        <media type='video'>
          <payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='100' name='VP8' clockrate='90000'/>
        </media>
        <transport ice-controlling='true'>{"<sctp/>" if sctp else ""}</transport>
        <sources/>
        <capability name='source-names'/>
      </endpoint>
    </conference-modify>"""


def _stat(presence: Element, name: str) -> str | None:
    for stat in presence.iter(f"{{{COLIBRI}}}stat"):
        if stat.get("name") == name:
            return stat.get("value")
    return None


async def _presence_of(sim: Sim, nick: str, predicate, timeout: float = 5) -> Element:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while True:
            occupant = sim.brewery.occupants.get(nick)
            if occupant is not None and predicate(occupant.presence):
                return occupant.presence
            event = await sim.brewery.events.receive()
            assert isinstance(event, OccupantJoined | OccupantChanged) or True


async def test_brewery_presence_carries_the_stats_the_focus_reads(prosody: ProsodyInstance) -> None:
    async with simulator(prosody) as sim:
        presence = await _presence_of(sim, "jvb-sim-1", lambda p: _stat(p, "stress_level") is not None)
        for key in ("stress_level", "average_participant_stress", "drain", "graceful_shutdown",
                    "shutting_down", "healthy", "version", "region", "relay_id", "conferences",
                    "participants", "endpoints", "current_timestamp"):
            assert _stat(presence, key) is not None, key
        assert _stat(presence, "drain") == "false"
        assert _stat(presence, "healthy") == "true"
        assert _stat(presence, "region") == "us-east-1"
        assert _stat(presence, "relay_id") == "sim-relay-1"
        # The bridge's real JID is visible to the focus and is the shared jvb account.
        occupant = sim.brewery.occupants["jvb-sim-1"]
        assert occupant.jid is not None and occupant.jid.bare == JID.parse(f"jvb@{prosody.auth_domain}")


async def test_allocate_update_expire_and_conference_lifetime(prosody: ProsodyInstance) -> None:
    async with simulator(prosody) as sim:
        first = await sim.colibri(_endpoint_xml("a1b2c3d4", create_conference=True))
        endpoint = first.find(f"{{{C2}}}endpoint")
        assert endpoint is not None and endpoint.get("id") == "a1b2c3d4"
        ice = endpoint.find(f"{{{C2}}}transport/{{{ICE}}}transport")
        assert ice is not None and ice.get("ufrag") and ice.get("pwd")
        fingerprint = ice.find(f"{{{DTLS}}}fingerprint")
        assert fingerprint is not None and fingerprint.get("setup") == "actpass"
        assert fingerprint.get("hash") == "sha-256"
        assert ice.findall(f"{{{ICE}}}candidate")
        sctp = endpoint.find(f"{{{C2}}}transport/{{{C2}}}sctp")
        assert sctp is not None and sctp.get("port") == "5000"
        feedback = first.find(f"{{{C2}}}sources")
        assert feedback is not None and len(feedback.findall(f"{{{C2}}}media-source")) == 2

        second = await sim.colibri(_endpoint_xml("b5e6f7a8"))
        ice2 = second.find(f"{{{C2}}}endpoint/{{{C2}}}transport/{{{ICE}}}transport")
        assert ice2 is not None and ice2.get("ufrag") != ice.get("ufrag")

        # Update sources: a bare echo of the endpoint, no transport.
        update = await sim.colibri(f"""<conference-modify xmlns='jitsi:colibri2' meeting-id='{MEETING}'>
          <endpoint id='a1b2c3d4' stats-id='a1b2c3d4-stats'>
            <sources>
              <media-source type='audio' id='a1b2c3d4-a0'>
                <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1234' name='a1b2c3d4-a0'/>
              </media-source>
            </sources>
          </endpoint></conference-modify>""")
        echoed = update.find(f"{{{C2}}}endpoint")
        assert echoed is not None and echoed.find(f"{{{C2}}}transport") is None

        state = await sim.control("GET", "/state")
        assert MEETING in json.dumps(state)

        # Expiring both endpoints removes the (now empty) conference.
        await sim.colibri(f"""<conference-modify xmlns='jitsi:colibri2' meeting-id='{MEETING}'>
          <endpoint id='a1b2c3d4' expire='true'/><endpoint id='b5e6f7a8' expire='true'/>
          </conference-modify>""")
        with pytest.raises(StanzaError) as gone:
            await sim.colibri(f"<conference-modify xmlns='jitsi:colibri2' meeting-id='{MEETING}'>"
                              "<endpoint id='a1b2c3d4' stats-id='x'/></conference-modify>")
        assert gone.value.condition == "item-not-found"
        assert gone.value.app_element is not None
        assert gone.value.app_element.get("reason") == "conference_not_found"

        # The request log shows what the focus sent, in order, with the answers.
        log = await sim.control("GET", f"/requests?meeting_id={MEETING}")
        assert isinstance(log, list)
        assert [e["kind"] for e in log][:3] == ["allocate", "allocate", "update"]
        assert log[-1]["error"]["reason"] == "conference_not_found"


async def test_create_twice_is_conference_already_exists(prosody: ProsodyInstance) -> None:
    async with simulator(prosody) as sim:
        await sim.colibri(_endpoint_xml("a1", create_conference=True))
        with pytest.raises(StanzaError) as exists:
            await sim.colibri(_endpoint_xml("a2", create_conference=True))
        assert exists.value.condition == "conflict"
        assert exists.value.app_element is not None
        assert exists.value.app_element.get("reason") == "conference_already_exists"


async def test_ordering_is_kept_under_random_latency(prosody: ProsodyInstance) -> None:
    async with simulator(prosody) as sim:
        await sim.control("POST", "/faults", {"latency": {"all": [0.0, 0.05]}})
        await sim.colibri(_endpoint_xml("e0", create_conference=True))
        results: dict[int, str] = {}

        async def allocate(n: int) -> None:
            try:
                await sim.colibri(_endpoint_xml(f"e{n}"))
                results[n] = "ok"
            except StanzaError as err:
                results[n] = err.condition

        # Queue many requests at once, then expire the conference behind them: every allocation
        # queued before the expire must succeed, so none may be processed after it.
        async with trio.open_nursery() as nursery:
            for n in range(1, 16):
                nursery.start_soon(allocate, n)
                await trio.sleep(0.005)
            await trio.sleep(0.02)
            await sim.focus.send(sim.focus.iq("get", sim.bridge_jid(), parse_fragment(
                f"<conference-modify xmlns='jitsi:colibri2' meeting-id='{MEETING}' expire='true'/>")))
        log = await sim.control("GET", f"/requests?meeting_id={MEETING}")
        answered_order = [e["kind"] for e in log]  # type: ignore[union-attr]
        assert answered_order[-1] == "expire"
        assert all(v == "ok" for v in results.values()), results


async def test_faults_health_and_shutdown(prosody: ProsodyInstance) -> None:
    async with simulator(prosody) as sim:
        health = parse_fragment("<healthcheck xmlns='http://jitsi.org/protocol/healthcheck'/>")
        ok = await sim.focus.request(sim.focus.iq("get", sim.bridge_jid(), health))
        assert ok.get("type") == "result"
        await sim.control("POST", "/health", {"healthy": False})
        with pytest.raises(StanzaError) as sick:
            await sim.focus.request(sim.focus.iq("get", sim.bridge_jid(), parse_fragment(
                "<healthcheck xmlns='http://jitsi.org/protocol/healthcheck'/>")))
        assert sick.value.condition == "internal-server-error"
        status, _ = await request("127.0.0.1", sim.http_port, "GET", "/about/health")
        assert status == 500
        await _presence_of(sim, "jvb-sim-1", lambda p: _stat(p, "healthy") == "false")
        await sim.control("POST", "/health", {"healthy": True})

        # Chosen error, once.
        await sim.control("POST", "/faults", {"error": {"condition": "item-not-found",
                                                        "reason": "unknown_endpoint", "count": 1}})
        with pytest.raises(StanzaError) as injected:
            await sim.colibri(_endpoint_xml("x1", create_conference=True))
        assert injected.value.app_element is not None
        assert injected.value.app_element.get("reason") == "unknown_endpoint"
        await sim.colibri(_endpoint_xml("x1", create_conference=True))

        # Silence: the focus times out.
        await sim.control("POST", "/faults", {"silent": ["colibri"]})
        with pytest.raises(IQTimeout):
            await sim.colibri(_endpoint_xml("x2"), timeout=0.5)
        await sim.control("POST", "/faults", {})

        # Drain shows in presence only.
        await sim.control("POST", "/colibri/drain/enable")
        await _presence_of(sim, "jvb-sim-1", lambda p: _stat(p, "drain") == "true")
        assert await sim.control("GET", "/colibri/drain") == {"drain": True}

        # Graceful shutdown: presence says so, new conferences are refused, existing ones work.
        await sim.control("POST", "/colibri/shutdown", {"graceful-shutdown": True})
        await _presence_of(sim, "jvb-sim-1", lambda p: _stat(p, "graceful_shutdown") == "true")
        with pytest.raises(StanzaError) as refused:
            await sim.colibri(_endpoint_xml("y1", create_conference=True).replace(MEETING, "other-meeting"))
        assert refused.value.app_element is not None
        assert refused.value.app_element.get("reason") == "graceful_shutdown"
        await sim.colibri(_endpoint_xml("x3"))
        await sim.control("POST", "/colibri/shutdown", {"graceful-shutdown": False})
        await _presence_of(sim, "jvb-sim-1", lambda p: _stat(p, "shutting_down") == "true")

        # Leaving the brewery is seen by the focus as the occupant leaving.
        await sim.control("POST", "/leave")
        with trio.fail_after(5):
            while "jvb-sim-1" in sim.brewery.occupants:
                await sim.brewery.events.receive()


async def test_silent_endpoint_expiry_and_the_unknown_endpoint_error(prosody: ProsodyInstance) -> None:
    async with simulator(prosody) as sim:
        await sim.colibri(_endpoint_xml("a1", create_conference=True))
        await sim.colibri(_endpoint_xml("b2"))
        await sim.control("POST", f"/conferences/{MEETING}/endpoints/b2/expire")
        with pytest.raises(StanzaError) as unknown:
            await sim.colibri(f"<conference-modify xmlns='jitsi:colibri2' meeting-id='{MEETING}'>"
                              "<endpoint id='b2'><sources/></endpoint></conference-modify>")
        assert unknown.value.condition == "item-not-found"
        assert colibri2_error(unknown.value) == Colibri2ErrorInfo(ErrorReason.UNKNOWN_ENDPOINT, "b2")
        stats = await sim.control("GET", "/colibri/stats")
        assert isinstance(stats, dict)
        assert stats["conferences"] == 1 and stats["endpoints"] == 1 and stats["drain"] is False
        version = await sim.control("GET", "/about/version")
        assert version == {"name": "JVB", "version": "2.3.250-gsimulated", "os": "Linux"}
        await sim.control("POST", f"/conferences/{MEETING}/expire")
        with pytest.raises(StanzaError) as gone:
            await sim.colibri(
                f"<conference-modify xmlns='jitsi:colibri2' meeting-id='{MEETING}' expire='true'/>")
        assert colibri2_error(gone.value) == Colibri2ErrorInfo(ErrorReason.CONFERENCE_NOT_FOUND)


async def test_relay_between_two_bridges(prosody: ProsodyInstance) -> None:
    async with simulator(prosody, "--bridges", "2") as sim:
        await sim.colibri(_endpoint_xml("a1", create_conference=True), n=1)
        await sim.colibri(_endpoint_xml("c9", create_conference=True), n=2)
        answers = []
        for n, (other, controlling, role) in enumerate(
            (("sim-relay-2", "ice-controlling='true' use-unique-port='true'", "client"),
             ("sim-relay-1", "", "server")), start=1):
            modified = await sim.colibri(f"""<conference-modify xmlns='jitsi:colibri2' meeting-id='{MEETING}'>
              <relay id='{other}' create='true' mesh-id='0'>
                <transport {controlling}><sctp role='{role}'/></transport>
                <endpoints><endpoint id='x{n}' create='true'><sources/>
                  <capability name='source-names'/></endpoint></endpoints>
              </relay></conference-modify>""", n=n)
            answers.append(ConferenceModified.from_element(modified).relays[0])
        first, second = answers
        assert first.transport is not None and second.transport is not None
        assert first.transport.sctp is not None and first.transport.sctp.role == "server"
        assert second.transport.sctp is not None and second.transport.sctp.role == "client"
        assert first.transport.ice is not None and second.transport.ice is not None
        assert first.transport.ice.fingerprints[0].setup == "actpass"
        # Two bridges, two certificates.
        assert first.transport.ice.fingerprints != second.transport.ice.fingerprints
        state = await sim.control("GET", "/bridges/jvb-sim-2/state")
        assert isinstance(state, dict)
        assert list(state["conferences"][MEETING]["relays"]) == ["sim-relay-1"]


async def test_requests_from_outside_the_brewery_are_forbidden(prosody: ProsodyInstance) -> None:
    async with simulator(prosody) as sim, connected(settings_for(prosody)) as stranger:
        bridge_real_jid = JID.parse(f"jvb@{prosody.auth_domain}/jvb-sim-1")
        with pytest.raises(StanzaError) as forbidden:
            await stranger.request(stranger.iq("get", bridge_real_jid, parse_fragment(
                _endpoint_xml("z", create_conference=True))))
        assert forbidden.value.condition == "forbidden"
        assert sim.bridges[0].engine.dump() is not None


async def test_cli_help_documents_every_option() -> None:
    text = build_parser().format_help()
    for option in ("--host", "--port", "--domain", "--user", "--password", "--tls", "--brewery",
                   "--bridges", "--nickname-prefix", "--region", "--relay-id", "--version",
                   "--release", "--stress", "--stress-per-endpoint", "--stats-interval",
                   "--websocket-url", "--http-port", "--config", "--candidate-address"):
        assert option in text, option


def test_candidate_addresses_from_the_command_line_and_the_config_file(tmp_path: Path) -> None:
    base = ["--brewery", "b@internal.auth.meet.test", "--password", "x"]
    opts = resolve_options(build_parser().parse_args(base), {})
    assert opts["candidate_addresses"] == ("127.0.0.1",)
    (bridge,) = make_bridges(opts)
    assert bridge.engine.candidate_addresses == ("127.0.0.1",)
    args = build_parser().parse_args(
        [*base, "--candidate-address", "192.0.2.7", "--candidate-address", "::1"])
    assert resolve_options(args, {})["candidate_addresses"] == ("192.0.2.7", "::1")
    config = tmp_path / "sim.conf"
    config.write_text('candidate-addresses = ["198.51.100.4", "127.0.0.1"]\n')
    args = build_parser().parse_args([*base, "--config", str(config)])
    assert resolve_options(args, {})["candidate_addresses"] == ("198.51.100.4", "127.0.0.1")
    with pytest.raises(UsageError, match="not an IP address"):
        resolve_options(build_parser().parse_args([*base, "--candidate-address", "jvb.example.com"]), {})


async def test_silent_to_colibri2_to_health_checks_or_hung(prosody: ProsodyInstance) -> None:
    """Each kind of silence alone leaves the other answered; a hung bridge answers neither and
    stays in the brewery (its connection lives); lifting the fault makes it answer again."""
    async with simulator(prosody) as sim:

        async def health(timeout: float = 5) -> Element:
            check = parse_fragment("<healthcheck xmlns='http://jitsi.org/protocol/healthcheck'/>")
            return await sim.focus.request(sim.focus.iq("get", sim.bridge_jid(), check), timeout)

        await sim.colibri(_endpoint_xml("a1", create_conference=True))
        await sim.control("POST", "/faults", {"silent": ["colibri"]})
        assert (await health()).get("type") == "result"
        with pytest.raises(IQTimeout):
            await sim.colibri(_endpoint_xml("a2"), timeout=0.5)

        await sim.control("POST", "/faults", {"silent": ["health"]})
        await sim.colibri(_endpoint_xml("a3"))
        with pytest.raises(IQTimeout):
            await health(timeout=0.5)

        faults = await sim.control("POST", "/faults", {"hung": True})
        assert isinstance(faults, dict) and faults["hung"] is True
        with pytest.raises(IQTimeout):
            await health(timeout=0.5)
        with pytest.raises(IQTimeout):
            await sim.colibri(_endpoint_xml("a4"), timeout=0.5)
        assert "jvb-sim-1" in sim.brewery.occupants
        status, _ = await request("127.0.0.1", sim.http_port, "POST", "/faults", {"hung": "yes"})
        assert status == 400

        await sim.control("POST", "/faults", {})
        assert (await health()).get("type") == "result"
        await sim.colibri(_endpoint_xml("a5"))


async def test_stats_are_published_on_the_timer_not_after_each_request(prosody: ProsodyInstance) -> None:
    # As a real bridge: an allocation does not make the bridge re-publish its stats presence (at
    # load that was a 4 KB broadcast to the whole brewery per Colibri2 request); the next timer
    # tick does. The old behaviour stays available for comparing benchmark figures.
    def conferences(sim: Sim) -> str | None:
        return _stat(sim.brewery.occupants["jvb-sim-1"].presence, "conferences")

    async with simulator(prosody, "--stats-interval", "30") as sim:
        await _presence_of(sim, "jvb-sim-1", lambda p: _stat(p, "conferences") == "0")
        await sim.colibri(_endpoint_xml("a1b2c3d4", create_conference=True))
        await trio.sleep(1)
        assert conferences(sim) == "0"
    async with simulator(prosody, "--stats-interval", "30", "--stats-on-change") as sim:
        await _presence_of(sim, "jvb-sim-1", lambda p: _stat(p, "conferences") == "0")
        await sim.colibri(_endpoint_xml("a1b2c3d4", create_conference=True))
        await _presence_of(sim, "jvb-sim-1", lambda p: _stat(p, "conferences") == "1")
