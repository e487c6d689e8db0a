"""Cascades (Octo): a conference across several bridges, linked by Colibri2 relays.

The end-to-end tests run Prosody, our focus, simulated bridges in two or three regions and
simulated participants, and read what crossed the wire from the bridges' request logs: which
relays were created with which roles, the transports the focus forwarded between bridges, the
endpoints mirrored into relays, and relays expired when a bridge goes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any
from xml.etree.ElementTree import Element, tostring

import trio
from defusedxml.ElementTree import fromstring

from jicofo.conference.cascade import forwarded_relay_transport
from jicofo.http.client import post_json
from jicofo.sim.participant import SimulatedParticipant
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import Bridges, focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until, wait_until_async
from jicofo.xmlns.ice_udp import Fingerprint, IceUdpTransport

from .test_focus_e2e import bridge_log, no_errors, participants, room_of, wait_bridges

C2 = "{jitsi:colibri2}"
ICE = "{urn:xmpp:jingle:transports:ice-udp:1}"
DTLS = "{urn:xmpp:jingle:apps:dtls:0}"

CASCADE = {
    "jicofo.octo.enabled": True,
    "jicofo.bridge.selection-strategy": "RegionBasedBridgeSelectionStrategy",
}


# ----- the transport forwarding rule (pure) -------------------------------------------------------


def _answer(*, setup: str = "actpass", ws: tuple[str, ...] = ("wss://b/relay",)) -> IceUdpTransport:
    return IceUdpTransport(ufrag="u", pwd="p", fingerprints=(Fingerprint("sha-256", "AA:BB", setup),),
                           web_sockets=ws, rtcp_mux=True)


def test_forwarded_transport_takes_the_receivers_dtls_role() -> None:
    to_initiator = forwarded_relay_transport(_answer(), receiver_is_initiator=True, sctp=True)
    to_other = forwarded_relay_transport(_answer(), receiver_is_initiator=False, sctp=True)
    assert to_initiator is not None and to_other is not None
    assert [f.setup for f in to_initiator.fingerprints] == ["active"]
    assert [f.setup for f in to_other.fingerprints] == ["passive"]
    assert (to_initiator.ufrag, to_initiator.pwd) == ("u", "p")


def test_only_the_initiator_gets_the_web_socket_and_only_without_sctp() -> None:
    assert forwarded_relay_transport(_answer(), receiver_is_initiator=True, sctp=False).web_sockets \
        == ("wss://b/relay",)
    assert forwarded_relay_transport(_answer(), receiver_is_initiator=False, sctp=False).web_sockets == ()
    assert forwarded_relay_transport(_answer(), receiver_is_initiator=True, sctp=True).web_sockets == ()


def test_a_transport_without_actpass_is_not_forwarded() -> None:
    assert forwarded_relay_transport(_answer(setup="active"), receiver_is_initiator=True, sctp=True) is None
    assert forwarded_relay_transport(IceUdpTransport(ufrag="u", pwd="p"), receiver_is_initiator=True,
                                     sctp=True) is None


# ----- helpers -----------------------------------------------------------------------------------


@asynccontextmanager
async def regions_with(
    prosody: ProsodyInstance, args: dict[str, tuple[str, ...]]
) -> AsyncIterator[dict[str, Bridges]]:
    """One simulated bridge per region (with extra simulator arguments), named jvb-<region>-1,
    relay id relay-<region>-1."""
    async with AsyncExitStack() as stack:
        sims = {}
        for name, extra in args.items():
            sims[name] = await stack.enter_async_context(simulated_bridges(
                prosody, 1, "--region", name, "--relay-id", f"relay-{name}", *extra,
                prefix=f"jvb-{name}-"))
        yield sims


def regions(prosody: ProsodyInstance, *names: str) -> AbstractAsyncContextManager[dict[str, Bridges]]:
    return regions_with(prosody, {name: () for name in names})


def relay_requests(log: list[dict[str, Any]]) -> list[tuple[str, Element, Element | None]]:
    """(kind, <relay> of the request, <relay> of the answer) for each relay request, in order."""
    found = []
    for entry in log:
        if not entry["kind"].startswith("relay"):
            continue
        request = fromstring(entry["request"]).find(f"{C2}relay")
        answer = fromstring(entry["response"]).find(f"{C2}relay") if entry["response"] else None
        found.append((entry["kind"], request, answer))
    return found


def fingerprint_setup(relay: Element) -> str | None:
    fingerprint = relay.find(f"{C2}transport/{ICE}transport/{DTLS}fingerprint")
    return fingerprint.get("setup") if fingerprint is not None else None


def ufrag(relay: Element) -> str | None:
    ice = relay.find(f"{C2}transport/{ICE}transport")
    return ice.get("ufrag") if ice is not None else None


def relay_endpoint_ids(relay: Element) -> set[str]:
    return {e.get("id", "") for e in relay.findall(f"{C2}endpoints/{C2}endpoint")}


def mirrored_endpoints(relays: list[tuple[str, Element, Element | None]], relay_id: str) -> set[str]:
    """The endpoints a bridge was told live behind `relay_id`: created (in the relay create or
    later) and not expired since."""
    present: set[str] = set()
    for _, relay, _ in relays:
        if relay.get("id") != relay_id:
            continue
        for endpoint in relay.findall(f"{C2}endpoints/{C2}endpoint"):
            if endpoint.get("expire") == "true":
                present.discard(endpoint.get("id", ""))
            elif endpoint.get("create") == "true" or relay.get("create") == "true":
                present.add(endpoint.get("id", ""))
    return present


async def relays_on(sims: Bridges) -> list[tuple[str, Element, Element | None]]:
    return relay_requests(await bridge_log(sims))


async def on_bridge(person: SimulatedParticipant, sims: Bridges) -> bool:
    log = await bridge_log(sims)
    return any(e["kind"] == "allocate" and person.endpoint_id in e["request"] for e in log)


# ----- end to end ----------------------------------------------------------------------------------


async def test_region_based_selection_links_the_bridges_with_relays(prosody: ProsodyInstance) -> None:
    room = room_of(prosody, "cascade")
    async with regions(prosody, "eu", "us") as sims, \
            running_focus(focus_config(prosody, CASCADE)) as app:
        await wait_bridges(app, 2)
        async with participants(prosody, room, 2, region="eu") as europeans:
            # The Europeans first, so that the eu bridge is the conference's first (the initiator).
            for person in europeans:
                await person.wait_for_session(10)
            async with participants(prosody, room, 1, first=2, region="us") as (american,):
                everyone = [*europeans, american]
                for person in everyone:
                    await person.wait_for_session(10)
                for person in everyone:
                    for other in everyone:
                        if other is not person:
                            await person.wait_for_remote_sources(other.endpoint_id, 10)
                no_errors(everyone)

                # Each participant is on a bridge of its region.
                for person in europeans:
                    assert await on_bridge(person, sims["eu"]) and not await on_bridge(person, sims["us"])
                assert await on_bridge(american, sims["us"]) and not await on_bridge(american, sims["eu"])

                # Both sides got a relay create; the first bridge is the initiator.
                async def both_forwarded() -> bool:
                    eu, us = await relays_on(sims["eu"]), await relays_on(sims["us"])
                    return sum(1 for kind, r, _ in eu if kind == "relay-update" and ufrag(r)) == 1 \
                        and sum(1 for kind, r, _ in us if kind == "relay-update" and ufrag(r)) == 1
                await wait_until_async(both_forwarded, 10, "the relay transports to be forwarded")

                eu_relays, us_relays = await relays_on(sims["eu"]), await relays_on(sims["us"])
                eu_create = next((r, a) for kind, r, a in eu_relays if kind == "relay-create")
                us_create = next((r, a) for kind, r, a in us_relays if kind == "relay-create")
                assert eu_create[0].get("id") == "relay-us-1" and us_create[0].get("id") == "relay-eu-1"
                eu_transport = eu_create[0].find(f"{C2}transport")
                us_transport = us_create[0].find(f"{C2}transport")
                assert eu_transport is not None and us_transport is not None
                assert eu_transport.get("ice-controlling") == "true"
                assert eu_transport.get("use-unique-port") == "true"
                assert us_transport.get("ice-controlling") is None
                sctp_roles = (eu_transport.find(f"{C2}sctp"), us_transport.find(f"{C2}sctp"))
                assert [s.get("role") if s is not None else None for s in sctp_roles] == ["client", "server"]
                assert eu_create[0].get("mesh-id") == us_create[0].get("mesh-id") == "0"
                assert {m.get("type") for m in eu_create[0].findall(f"{C2}media")} == {"audio", "video"}
                # The relay on each side carries the endpoints behind the other one (in the create,
                # or right after for an allocation that was still under way).
                assert relay_endpoint_ids(eu_create[0]) == {american.endpoint_id}
                assert mirrored_endpoints(eu_relays, "relay-us-1") == {american.endpoint_id}
                assert mirrored_endpoints(us_relays, "relay-eu-1") == {p.endpoint_id for p in europeans}

                # Each bridge's answer went to the other, setup rewritten to the receiver's role.
                eu_answer, us_answer = eu_create[1], us_create[1]
                assert eu_answer is not None and us_answer is not None
                assert fingerprint_setup(eu_answer) == fingerprint_setup(us_answer) == "actpass"
                to_eu = next(r for kind, r, _ in eu_relays if kind == "relay-update" and ufrag(r))
                to_us = next(r for kind, r, _ in us_relays if kind == "relay-update" and ufrag(r))
                assert to_eu.get("id") == "relay-us-1" and ufrag(to_eu) == ufrag(us_answer)
                assert fingerprint_setup(to_eu) == "active"
                assert to_us.get("id") == "relay-eu-1" and ufrag(to_us) == ufrag(eu_answer)
                assert fingerprint_setup(to_us) == "passive"

                # A source change on one side is mirrored into the relay on the other.
                name = await american.add_source("desktop")
                await europeans[0].wait_for(
                    lambda: any(s.name == name for s in
                                europeans[0].remote_sources_of(american.endpoint_id).sources),
                    10, "the screen share")

                async def mirrored() -> bool:
                    return any(kind == "relay-update" and r.get("id") == "relay-us-1"
                               and name in tostring(r, encoding="unicode")
                               for kind, r, _ in await relays_on(sims["eu"]))
                await wait_until_async(mirrored, 10, "the screen share mirrored into the eu relay")

                # The American leaves: the eu bridge's relay to the us bridge goes with it.
                await american.leave()

                async def relay_expired() -> bool:
                    return any(kind == "relay-update" and r.get("id") == "relay-us-1"
                               and r.get("expire") == "true" for kind, r, _ in await relays_on(sims["eu"]))
                await wait_until_async(relay_expired, 10, "the relay to the us bridge to be expired")
                conference = next(iter(app.focus.conferences.values()))
                await wait_until(lambda: [s.bridge.nickname for s in conference.cascade.members]
                                 == ["jvb-eu-1"], 10, "the cascade to shrink")


async def test_losing_the_middle_bridge_of_three_keeps_the_others_linked(
    prosody: ProsodyInstance,
) -> None:
    room = room_of(prosody, "mesh")
    # min-participants 1: each member is invited as it joins, so the joins can be sequenced.
    config = focus_config(prosody, {**CASCADE, "jicofo.conference.min-participants": 1})
    async with regions(prosody, "eu", "us", "ap") as sims, running_focus(config) as app:
        await wait_bridges(app, 3)
        async with AsyncExitStack() as stack:
            # One after the other, so the bridges join the conference in the order eu, us, ap.
            everyone = []
            for n, region in enumerate(("eu", "us", "ap")):
                (person,) = await stack.enter_async_context(
                    participants(prosody, room, 1, first=n, region=region))
                await person.wait_for_session(10)
                everyone.append(person)
            ana, bo, cy = everyone
            conference = next(iter(app.focus.conferences.values()))
            await wait_until(lambda: len(conference.cascade.members) == 3, 10, "three bridges")
            # Full mesh: every bridge has a relay to each of the two others.
            expected = {"eu": {"relay-us-1", "relay-ap-1"}, "us": {"relay-eu-1", "relay-ap-1"},
                        "ap": {"relay-eu-1", "relay-us-1"}}

            async def full_mesh() -> bool:
                for region, others in expected.items():
                    created = {r.get("id") for kind, r, _ in await relays_on(sims[region])
                               if kind == "relay-create"}
                    if created != others:
                        return False
                return True
            await wait_until_async(full_mesh, 10, "a relay between every two bridges")

            # The bridge that joined second (the middle of the chain) leaves the brewery.
            first_session = bo.session
            assert first_session is not None
            await sims["us"].bridges[0].stop()

            # Bo is moved onto a surviving bridge and everybody still sees everybody.
            await bo.wait_for_session(15, other_than=first_session.sid)
            for person in everyone:
                for other in everyone:
                    if other is not person:
                        await person.wait_for_remote_sources(other.endpoint_id, 15)

            async def repaired() -> bool:
                for region in ("eu", "ap"):
                    relays = await relays_on(sims[region])
                    if not any(r.get("id") == "relay-us-1" and r.get("expire") == "true"
                               for _, r, _ in relays):
                        return False
                # Bo's endpoint now appears in the relay for its new bridge on the other survivor.
                eu, ap = await relays_on(sims["eu"]), await relays_on(sims["ap"])
                on_eu = any(bo.endpoint_id in relay_endpoint_ids(r) and r.get("id") == "relay-ap-1"
                            for _, r, _ in eu)
                on_ap = any(bo.endpoint_id in relay_endpoint_ids(r) and r.get("id") == "relay-eu-1"
                            for _, r, _ in ap)
                return on_eu or on_ap
            await wait_until_async(repaired, 15, "the mesh to be repaired")
            assert sorted(s.bridge.nickname for s in conference.cascade.members) == ["jvb-ap-1",
                                                                                      "jvb-eu-1"]
            # The eu-ap link was never torn down: one relay create each, no expire between them.
            for region, other in (("eu", "relay-ap-1"), ("ap", "relay-eu-1")):
                relays = await relays_on(sims[region])
                assert sum(1 for k, r, _ in relays if k == "relay-create" and r.get("id") == other) == 1
                assert not any(r.get("id") == other and r.get("expire") == "true" for _, r, _ in relays)
            no_errors([ana, cy])


async def test_without_relay_ids_a_conference_stays_on_one_bridge(prosody: ProsodyInstance) -> None:
    """Octo on and region-based selection, but the bridges publish no relay id: as upstream, the
    conference is not split (its later members join its bridge, whatever their region)."""
    room = room_of(prosody, "norelay")
    async with AsyncExitStack() as stack:
        sims = {region: await stack.enter_async_context(simulated_bridges(
            prosody, 1, "--region", region, prefix=f"jvb-{region}-")) for region in ("eu", "us")}
        app = await stack.enter_async_context(running_focus(focus_config(prosody, CASCADE)))
        await wait_bridges(app, 2)
        async with participants(prosody, room, 2, region="eu") as europeans:
            for person in europeans:
                await person.wait_for_session(10)
            async with participants(prosody, room, 1, first=2, region="us") as (american,):
                await american.wait_for_session(10)
                await american.wait_for_remote_sources(europeans[0].endpoint_id, 10)
                assert await on_bridge(american, sims["eu"]) and not await on_bridge(american, sims["us"])
                assert await relays_on(sims["eu"]) == [] and await relays_on(sims["us"]) == []
                no_errors([*europeans, american])


async def test_a_bridge_refusing_its_relay_is_dropped_and_its_members_moved(
    prosody: ProsodyInstance,
) -> None:
    """docs/jicofo.md §2.10: an error to a relay create fails the whole session on that bridge; its members
    are re-invited on a bridge that works, and the conference is whole again."""
    room = room_of(prosody, "refused")
    async with regions(prosody, "eu", "us") as sims, \
            running_focus(focus_config(prosody, CASCADE)) as app:
        await wait_bridges(app, 2)
        us_nick = sims["us"].bridges[0].nickname
        await post_json("127.0.0.1", sims["us"].http_port, f"/bridges/{us_nick}/faults",
                        {"error": {"condition": "internal-server-error", "kinds": ["relay-create"],
                                   "count": 1}})
        async with participants(prosody, room, 2, region="eu") as europeans:
            for person in europeans:
                await person.wait_for_session(10)
            async with participants(prosody, room, 1, first=2, region="us") as (american,):
                conference = next(iter(app.focus.conferences.values()))
                # Offered on the us bridge first, then moved to the eu bridge.
                await wait_until(lambda: american.endpoint_id in conference.participants
                                 and conference.participants[american.endpoint_id].colibri is not None
                                 and conference.participants[american.endpoint_id].colibri.bridge.nickname
                                 == "jvb-eu-1", 15, "the American on the eu bridge")
                await american.wait_for_remote_sources(europeans[0].endpoint_id, 10)
                for person in europeans:
                    await person.wait_for_remote_sources(american.endpoint_id, 10)
                assert await on_bridge(american, sims["us"]) and await on_bridge(american, sims["eu"])
                assert [s.bridge.nickname for s in conference.cascade.members] == ["jvb-eu-1"]
                # The refusing bridge is marked non-operational (docs/jicofo.md §2.10: any other error).
                assert app.brewery is not None
                us_bridge = next(b for b in app.brewery.bridges.values() if b.nickname == us_nick)
                assert not us_bridge.is_operational(trio.current_time())


async def test_the_last_member_on_a_bridge_leaving_expires_the_conference_there_and_can_come_back(
    prosody: ProsodyInstance,
) -> None:
    """The bridge a conference no longer uses gets the conference expire (after the endpoint
    expire), so a member of that region joining again gets a fresh conference there."""
    room = room_of(prosody, "comeback")
    async with regions(prosody, "eu", "us") as sims, \
            running_focus(focus_config(prosody, CASCADE)) as app:
        await wait_bridges(app, 2)
        async with participants(prosody, room, 2, region="eu") as europeans:
            for person in europeans:
                await person.wait_for_session(10)
            async with participants(prosody, room, 1, first=2, region="us") as (american,):
                await american.wait_for_session(10)
                await american.leave()

            async def expired_on_us() -> bool:
                log = await bridge_log(sims["us"])
                return any(e["kind"] == "expire" and "<endpoint" not in e["request"] for e in log)
            await wait_until_async(expired_on_us, 10, "the conference expire on the us bridge")

            async with participants(prosody, room, 1, first=3, region="us") as (again,):
                await again.wait_for_session(10)
                await again.wait_for_remote_sources(europeans[0].endpoint_id, 10)
                await europeans[0].wait_for_remote_sources(again.endpoint_id, 10)
                log = await bridge_log(sims["us"])
                # Two conference creates there: the first one's conference was expired between.
                creates = [e for e in log if fromstring(e["request"]).get("create") == "true"]
                assert len(creates) == 2, [e["request"][:120] for e in creates]
                assert all(e.get("error") is None for e in log), [e for e in log if e.get("error")]
                no_errors([*europeans, again])
