"""The bridge brewery against a real Prosody: bridges are plain clients logged in as `jvb` that join
the brewery room with a stats presence and answer (or not) the health-check IQ."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element

import trio

from jicofo.bridge.brewery import (
    Brewery,
    BridgeAdded,
    BridgeEvent,
    BridgeFailed,
    BridgeRecovered,
    BridgeRemoved,
    BridgeShuttingDown,
    HealthState,
)
from jicofo.config import load_config
from jicofo.config.model import BridgeConfig
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.tcp_proxy import TcpProxy
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom
from jicofo.xmpp.xml import element

from .xmpp_helpers import connected, settings_for

NS_COLIBRI = "http://jitsi.org/protocol/colibri"
NS_HEALTH = "http://jitsi.org/protocol/healthcheck"

BASE_STATS = {"stress_level": "0.1", "drain": "false", "graceful_shutdown": "false",
              "shutting_down": "false", "healthy": "true", "version": "2.3.250-gabc", "release": "42",
              "conferences": "0"}


def stats_element(**stats: str) -> Element:
    el = element(f"{{{NS_COLIBRI}}}stats")
    for name, value in {**BASE_STATS, **stats}.items():
        el.append(element(f"{{{NS_COLIBRI}}}stat", {"name": name, "value": value}))
    return el


class FakeBridge:
    """A bridge in the brewery. `mode` answers health checks: "ok", "silent" or an error condition;
    `answers` overrides it for the next checks."""

    def __init__(self, client: XMPPClient, brewery: JID, nick: str) -> None:
        self.room = MucRoom(client, brewery, nick)
        self.mode = "ok"
        self.answers: list[str] = []
        self.checks = 0
        client.add_iq_handler(f"{{{NS_HEALTH}}}healthcheck", self._health, types=("get",))

    async def join(self, **stats: str) -> None:
        self.room.presence_extensions = [stats_element(**stats)]
        await self.room.join()

    async def publish(self, **stats: str) -> None:
        await self.room.set_presence([stats_element(**stats)])

    async def _health(self, iq: Element) -> None:
        self.checks += 1
        mode = self.answers.pop(0) if self.answers else self.mode
        if mode == "silent":
            await trio.sleep_forever()
        if mode != "ok":
            raise StanzaError(mode, "simulated")


def bridge_config(prosody: ProsodyInstance, **health: Any) -> BridgeConfig:
    base = load_config(None, {"jicofo.xmpp.client.domain": prosody.auth_domain}, env={}).bridge
    checks = dataclasses.replace(base.health_checks, **{"interval": 0.3, "retry_delay": 0.2, **health})
    return dataclasses.replace(base, brewery_jid=prosody.brewery_jid, failure_reset_threshold=0.8,
                               health_checks=checks)


async def wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


def of_bridge(events: list[BridgeEvent], nick: str) -> list[type]:
    return [type(e) for e in events if e.bridge.nickname == nick]


async def test_bridges_found_updated_shut_down_and_removed(prosody: ProsodyInstance) -> None:
    brewery_jid = JID.parse(prosody.brewery_jid)
    async with connected(settings_for(prosody, "focus", resource="focus")) as focus, \
            connected(settings_for(prosody, "focus", resource="focus2")) as other_focus, \
            connected(settings_for(prosody, "jvb", resource="jvb1")) as c1, \
            connected(settings_for(prosody, "jvb", resource="jvb2")) as c2, \
            trio.open_nursery() as nursery:
        jvb1, jvb2 = FakeBridge(c1, brewery_jid, "jvb1"), FakeBridge(c2, brewery_jid, "jvb2")
        # jvb1 is there before the focus; jvb2 comes later.
        await jvb1.join(stress_level="0.25", region="eu-west", relay_id="relay-1",
                        average_participant_stress="0.02")
        brewery = Brewery(focus, brewery_jid, bridge_config(prosody, enabled=False), request_timeout=1)
        events: list[BridgeEvent] = []
        brewery.add_listener(events.append)
        await nursery.start(brewery.run)
        assert brewery.joined
        await wait_for(lambda: len(brewery.bridges) == 1)
        b1 = brewery.bridges[brewery_jid.with_resource("jvb1")]
        assert (b1.nickname, b1.stress, b1.region, b1.relay_id) == ("jvb1", 0.25, "eu-west", "relay-1")
        assert (b1.full_version, b1.drain, b1.average_participant_stress) == ("2.3.250-gabc-42", False, 0.02)
        assert b1.last_presence is not None

        # Another focus (no stats) is not a bridge; a bare join without stats neither.
        await MucRoom(other_focus, brewery_jid, "focus2").join()
        await jvb2.room.join()
        await trio.sleep(0.2)
        assert list(brewery.bridges) == [b1.jid]
        await jvb2.publish(region="us-east")
        await wait_for(lambda: len(brewery.bridges) == 2)
        b2 = brewery.bridges[brewery_jid.with_resource("jvb2")]
        assert b2.region == "us-east"
        assert [type(e) for e in events] == [BridgeAdded, BridgeAdded]
        assert {e.bridge for e in events} == {b1, b2}
        assert set(brewery.operational_bridges()) == {b1, b2}

        # Updates apply to the same object; graceful shutdown and drain are no events.
        await jvb1.publish(stress_level="0.5", graceful_shutdown="true", drain="true", region="eu-west")
        await wait_for(lambda: b1.stress == 0.5)
        assert b1.graceful_shutdown and b1.drain and b1.region == "eu-west"
        assert brewery.bridges[b1.jid] is b1 and len(events) == 2

        await jvb1.publish(graceful_shutdown="true", shutting_down="true")
        await wait_for(lambda: len(events) == 3)
        assert events[2] == BridgeShuttingDown(b1) and b1.shutting_down
        await jvb1.publish(graceful_shutdown="true", shutting_down="true", stress_level="0.3")
        await wait_for(lambda: b1.stress == 0.3)
        assert len(events) == 3  # once only

        # Leaving removes.
        await jvb2.room.leave()
        await wait_for(lambda: len(events) == 4)
        assert events[3] == BridgeRemoved(b2) and b2.removed
        assert list(brewery.bridges) == [b1.jid]
        nursery.cancel_scope.cancel()
    assert not brewery.joined


async def test_health_checks(prosody: ProsodyInstance) -> None:
    brewery_jid = JID.parse(prosody.brewery_jid)
    nicks = ("ok", "err", "slow", "odd")
    async with connected(settings_for(prosody, "focus", resource="focus")) as focus, \
            connected(settings_for(prosody, "jvb", resource="ok")) as c_ok, \
            connected(settings_for(prosody, "jvb", resource="err")) as c_err, \
            connected(settings_for(prosody, "jvb", resource="slow")) as c_slow, \
            connected(settings_for(prosody, "jvb", resource="odd")) as c_odd, \
            trio.open_nursery() as nursery:
        fakes = {nick: FakeBridge(c, brewery_jid, nick)
                 for nick, c in zip(nicks, (c_ok, c_err, c_slow, c_odd), strict=True)}
        for fake in fakes.values():
            await fake.join()
        brewery = Brewery(focus, brewery_jid, bridge_config(prosody), request_timeout=0.5)
        events: list[BridgeEvent] = []
        brewery.add_listener(events.append)
        await nursery.start(brewery.run)
        await wait_for(lambda: len(brewery.bridges) == 4)
        await wait_for(lambda: all(f.checks >= 1 for f in fakes.values()))
        bridges = {b.nickname: b for b in brewery.bridges.values()}
        now = trio.current_time
        assert all(b.is_operational(now()) for b in bridges.values())

        fakes["err"].mode = "internal-server-error"
        fakes["odd"].mode = "bad-request"
        fakes["slow"].answers = ["silent"]
        slow_checks, odd_checks = fakes["slow"].checks, fakes["odd"].checks

        # An error answer: failed, participants must move.
        await wait_for(lambda: BridgeFailed in of_bridge(events, "err"))
        assert not bridges["err"].is_operational(now())
        assert brewery.health(bridges["err"]) is HealthState.FAILED

        # One timeout, then the retry passes: nothing happens.
        await wait_for(lambda: fakes["slow"].checks >= slow_checks + 3)
        assert bridges["slow"].is_operational(now())
        assert brewery.health(bridges["slow"]) is HealthState.OK
        # Other errors are only logged.
        await wait_for(lambda: fakes["odd"].checks >= odd_checks + 2)
        assert bridges["odd"].is_operational(now())

        # The failed bridge comes back once healthy past the failure-reset threshold.
        fakes["err"].mode = "ok"
        await wait_for(lambda: BridgeRecovered in of_bridge(events, "err"))
        assert bridges["err"].is_operational(now())
        assert brewery.health(bridges["err"]) is HealthState.OK

        # Two timeouts in a row: not operational, but nobody is moved.
        fakes["slow"].mode = "silent"
        await wait_for(lambda: brewery.health(bridges["slow"]) is HealthState.TIMED_OUT)
        assert not bridges["slow"].is_operational(now())
        assert of_bridge(events, "slow") == [BridgeAdded]
        assert of_bridge(events, "odd") == [BridgeAdded]
        assert of_bridge(events, "ok") == [BridgeAdded]

        # The Colibri layer's verdicts.
        brewery.mark_failed(bridges["ok"], "allocation timed out", move_participants=False)
        assert not bridges["ok"].is_operational(now()) and of_bridge(events, "ok") == [BridgeAdded]
        brewery.mark_failed(bridges["ok"], "bridge answered nonsense", move_participants=True)
        assert events[-1] == BridgeFailed(bridges["ok"], "bridge answered nonsense")
        assert {b.nickname for b in brewery.operational_bridges()} == {"err", "odd"}
        assert brewery.to_json()["bridges"]["slow"]["health"] == "timed-out"

        # A removed bridge's checks stop.
        await fakes["odd"].room.leave()
        await wait_for(lambda: BridgeRemoved in of_bridge(events, "odd"))
        checks = fakes["odd"].checks
        await trio.sleep(0.5)
        assert fakes["odd"].checks == checks
        nursery.cancel_scope.cancel()


async def test_presence_based_health(prosody: ProsodyInstance) -> None:
    brewery_jid = JID.parse(prosody.brewery_jid)
    async with connected(settings_for(prosody, "focus", resource="focus")) as focus, \
            connected(settings_for(prosody, "jvb", resource="fresh")) as c_fresh, \
            connected(settings_for(prosody, "jvb", resource="quiet")) as c_quiet, \
            trio.open_nursery() as nursery:
        fresh, quiet = FakeBridge(c_fresh, brewery_jid, "fresh"), FakeBridge(c_quiet, brewery_jid, "quiet")
        await fresh.join()
        await quiet.join()
        config = bridge_config(prosody, use_presence=True, interval=0.2, presence_timeout=0.7)
        brewery = Brewery(focus, brewery_jid, config, request_timeout=0.5)
        events: list[BridgeEvent] = []
        brewery.add_listener(events.append)
        await nursery.start(brewery.run)
        await wait_for(lambda: len(brewery.bridges) == 2)
        bridges = {b.nickname: b for b in brewery.bridges.values()}
        healthy = ["true"]

        async def keep_publishing() -> None:
            while True:
                await fresh.publish(healthy=healthy[0])
                await trio.sleep(0.15)

        nursery.start_soon(keep_publishing)
        await wait_for(lambda: brewery.health(bridges["quiet"]) is HealthState.TIMED_OUT)
        assert not bridges["quiet"].is_operational(trio.current_time())
        assert bridges["fresh"].is_operational(trio.current_time())
        healthy[0] = "false"
        await wait_for(lambda: BridgeFailed in of_bridge(events, "fresh"))
        assert of_bridge(events, "quiet") == [BridgeAdded]
        assert fresh.checks == quiet.checks == 0  # no IQs in this mode
        nursery.cancel_scope.cancel()


async def test_focus_session_lost_keeps_the_bridges_still_there(prosody: ProsodyInstance) -> None:
    brewery_jid = JID.parse(prosody.brewery_jid)
    async with trio.open_nursery() as outer:
        proxy = TcpProxy(prosody.ip, prosody.c2s_port)
        await outer.start(proxy.run)
        # Without stream management every break is a new session: the room is lost.
        settings = settings_for(prosody, "focus", resource="focus", host="127.0.0.1", port=proxy.port,
                                stream_management=False)
        async with connected(settings) as focus, \
                connected(settings_for(prosody, "jvb", resource="jvb1")) as c1, \
                connected(settings_for(prosody, "jvb", resource="jvb2")) as c2, \
                connected(settings_for(prosody, "jvb", resource="jvb3")) as c3, \
                trio.open_nursery() as nursery:
            jvb1, jvb2, jvb3 = (FakeBridge(c, brewery_jid, n)
                                for c, n in ((c1, "jvb1"), (c2, "jvb2"), (c3, "jvb3")))
            await jvb1.join()
            await jvb2.join()
            brewery = Brewery(focus, brewery_jid, bridge_config(prosody), request_timeout=1)
            events: list[BridgeEvent] = []
            brewery.add_listener(events.append)
            await nursery.start(brewery.run)
            await wait_for(lambda: len(brewery.bridges) == 2)
            b1 = brewery.bridges[brewery_jid.with_resource("jvb1")]
            b2 = brewery.bridges[brewery_jid.with_resource("jvb2")]
            del events[:]

            proxy.refusing = True
            proxy.cut()
            await wait_for(lambda: not focus.connected)
            # While the focus is away: jvb2 leaves, jvb3 arrives, jvb1 changes its stats.
            await jvb2.room.leave()
            await jvb3.join(region="ap")
            await jvb1.publish(stress_level="0.6")
            await trio.sleep(0.2)
            assert b1 in brewery.bridges.values() and not b2.removed  # nothing decided while away
            proxy.refusing = False

            await wait_for(lambda: len(events) == 2 and brewery.joined)
            assert events[0] == BridgeRemoved(b2)
            assert isinstance(events[1], BridgeAdded) and events[1].bridge.nickname == "jvb3"
            assert events[1].bridge.region == "ap"
            assert brewery.bridges[b1.jid] is b1 and not b1.removed
            await wait_for(lambda: b1.stress == 0.6)
            assert b1.is_operational(trio.current_time())
            nursery.cancel_scope.cancel()
        outer.cancel_scope.cancel()


async def test_bridges_dropped_when_the_focus_cannot_get_back_in(prosody: ProsodyInstance) -> None:
    brewery_jid = JID.parse(prosody.brewery_jid)
    async with trio.open_nursery() as outer:
        proxy = TcpProxy(prosody.ip, prosody.c2s_port)
        await outer.start(proxy.run)
        settings = settings_for(prosody, "focus", resource="focus", host="127.0.0.1", port=proxy.port,
                                stream_management=False)
        async with connected(settings) as focus, \
                connected(settings_for(prosody, "jvb", resource="jvb1")) as c1, \
                connected(settings_for(prosody, "jvb", resource="squatter")) as c_squatter, \
                trio.open_nursery() as nursery:
            jvb1 = FakeBridge(c1, brewery_jid, "jvb1")
            await jvb1.join()
            brewery = Brewery(focus, brewery_jid, bridge_config(prosody, enabled=False),
                              request_timeout=0.3)
            events: list[BridgeEvent] = []
            brewery.add_listener(events.append)
            await nursery.start(brewery.run)
            await wait_for(lambda: len(brewery.bridges) == 1)
            b1 = brewery.bridges[brewery_jid.with_resource("jvb1")]

            # While the focus is away, someone else takes its nickname: the rejoin is refused.
            proxy.refusing = True
            proxy.cut()
            await wait_for(lambda: not focus.connected)
            squatter = MucRoom(c_squatter, brewery_jid, "focus")
            await squatter.join()
            proxy.refusing = False
            await wait_for(lambda: events == [BridgeAdded(b1), BridgeRemoved(b1)])
            assert b1.removed and not brewery.bridges and not brewery.joined

            # Once the nickname is free the focus gets in and finds the bridge again.
            await squatter.leave()
            await wait_for(lambda: len(events) == 3 and brewery.joined)
            assert isinstance(events[2], BridgeAdded) and events[2].bridge is not b1
            assert events[2].bridge.nickname == "jvb1"
            nursery.cancel_scope.cancel()
        outer.cancel_scope.cancel()
