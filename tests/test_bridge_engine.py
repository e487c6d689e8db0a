"""The simulated bridge's Colibri2 engine, without I/O: answers and the error tables of
docs/jvb.md §2.4-§2.6, relays, ICE restarts, connects, shutdown, stats."""

from __future__ import annotations

import random
import re
from xml.etree.ElementTree import Element

import pytest

from jicofo.sim.bridge_engine import BridgeEngine, BridgeIdentity, StressModel
from jicofo.xmlns import colibri2 as c2
from jicofo.xmlns.colibri_stats import STATS_FILTER_WHITELIST, BridgeStats
from jicofo.xmlns.ice_udp import NS_ICE_UDP, Candidate, Fingerprint, IceUdpTransport
from jicofo.xmlns.jingle import PayloadType
from jicofo.xmlns.namespaces import NS_COLIBRI2
from jicofo.xmlns.ssma import SourceElement
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.xml import local_name, parse_fragment, serialize

MEETING = "5d3a2c1e-8f4b-4b7a-9e61-0c2d7f9a1b23"
FOCUS = "jvbbrewery@internal.auth.example.com/focus"
ROOM = "standup@conference.example.com"


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


def make_engine(**identity: object) -> BridgeEngine:
    fields: dict[str, object] = {"nickname": "jvb-sim-1", "relay_id": "sim-relay-1", "region": "us-east-1"}
    fields.update(identity)
    return BridgeEngine(BridgeIdentity(**fields), StressModel(0.05, 0.01),  # type: ignore[arg-type]
                        rng=random.Random(7), clock=Clock())


def endpoint(eid: str, *, sctp: bool = True, **changes: object) -> c2.Endpoint:
    """An allocation as jicofo sends it (A/B)."""
    fields: dict[str, object] = {
        "create": True,
        "stats_id": f"{eid}-stats",
        "medias": (c2.Media("audio", (PayloadType(111, "opus", 48000, 2),)),
                   c2.Media("video", (PayloadType(100, "VP8", 90000),))),
        "transport": c2.Transport(ice_controlling=True, sctp=c2.Sctp() if sctp else None),
        "sources": c2.Sources(),
        "capabilities": (c2.CAPABILITY_SOURCE_NAMES, c2.CAPABILITY_SSRC_REWRITING),
    }
    fields.update(changes)
    return c2.Endpoint(eid, **fields)  # type: ignore[arg-type]


def send(engine: BridgeEngine, request: c2.ConferenceModify) -> c2.ConferenceModified:
    # Through the wire format both ways, as the shell does.
    answer = engine.handle_conference_modify(parse_fragment(serialize(request.to_element())), FOCUS)
    assert answer.tag == c2.CONFERENCE_MODIFIED
    return c2.ConferenceModified.from_element(parse_fragment(serialize(answer)))


def create(engine: BridgeEngine, *endpoints: c2.Endpoint, meeting: str = MEETING) -> c2.ConferenceModified:
    return send(engine, c2.ConferenceModify(meeting, name=ROOM, create=True,
                                            endpoints=endpoints or (endpoint("a1"),)))


def refused(engine: BridgeEngine, request: c2.ConferenceModify | Element) -> StanzaError:
    el = request if isinstance(request, Element) else request.to_element()
    with pytest.raises(StanzaError) as info:
        engine.handle_conference_modify(el, FOCUS)
    return info.value


def wire(err: StanzaError) -> Element:
    """The `<error>` element as it goes out."""
    return parse_fragment(serialize(err.to_element()))


def reason(err: StanzaError) -> str | None:
    info = c2.colibri2_error(wire(err))
    return info.reason.value if info is not None else None


def sources(eid: str, *ssrcs: int, media: str = "audio") -> c2.Sources:
    name = f"{eid}-{media[0]}0"
    return c2.Sources([c2.MediaSource(media, name, [SourceElement(s, name) for s in ssrcs])])


CLIENT_ICE = IceUdpTransport(
    ufrag="Kp2w", pwd="hT8vQ1zR4nB7mC0xL3sD9fGj", rtcp_mux=True,
    fingerprints=(Fingerprint("sha-256", "B4:0D", "active"),),
    candidates=(Candidate(1, "1", 0, "1", "192.168.1.20", 53001, 2122260223, "udp", "host"),),
)


# ----- allocation answers (§2.5) --------------------------------------------------------------


def test_first_allocation_answer() -> None:
    engine = make_engine(websocket_url_template="wss://jvb1.example.com:443")
    answer = create(engine)
    (ep,) = answer.endpoints
    assert ep.id == "a1" and not ep.expire
    assert ep.transport is not None and ep.transport.ice is not None
    ice = ep.transport.ice
    assert re.fullmatch(r"[0-9a-v]{10,16}", ice.ufrag or "")
    assert re.fullmatch(r"[0-9a-v]{22,26}", ice.pwd or "")
    assert ice.rtcp_mux
    (fingerprint,) = ice.fingerprints
    assert fingerprint.hash == "sha-256" and fingerprint.setup == "actpass"
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fingerprint.value)
    (host,) = ice.candidates  # loopback only, by default
    assert (host.type, host.ip, host.port, host.priority, host.foundation) == (
        "host", "127.0.0.1", 10000, 2130706431, "1")
    conference_id = engine.conferences[MEETING].internal_id
    assert re.fullmatch(r"[0-9a-f]{16}", conference_id)
    (url,) = ice.web_sockets
    assert re.fullmatch(
        rf"wss://jvb1\.example\.com:443/colibri-ws/jvb-sim-1/{conference_id}/a1\?pwd=[A-Za-z0-9]{{24}}", url
    )
    assert ep.transport.sctp == c2.Sctp(5000, "server")
    feedback = answer.feedback_sources
    assert feedback is not None
    assert [(m.type, m.id, m.sources[0].name) for m in feedback] == [
        ("audio", "jvb-a0", "jvb-a0"), ("video", "jvb-v0", "jvb-v0")
    ]
    # The transport element is in the bridge's order.
    ice_el = answer.to_element().find(f"{{{NS_COLIBRI2}}}endpoint/{{{NS_COLIBRI2}}}transport/"
                                      f"{{{NS_ICE_UDP}}}transport")
    assert ice_el is not None
    assert [local_name(c.tag) for c in ice_el] == ["rtcp-mux", "fingerprint", "web-socket", "candidate"]


def test_second_allocation_shares_fingerprint_candidates_and_feedback_sources() -> None:
    engine = make_engine()
    first = create(engine)
    second = send(engine, c2.ConferenceModify(MEETING, endpoints=[endpoint("b2", sctp=False)]))
    ice1 = first.endpoints[0].transport.ice  # type: ignore[union-attr]
    ep2 = second.endpoints[0]
    assert ep2.transport is not None and ep2.transport.ice is not None
    ice2 = ep2.transport.ice
    assert ice1 is not None and ice2.ufrag != ice1.ufrag and ice2.pwd != ice1.pwd
    assert ice2.fingerprints == ice1.fingerprints
    assert [(c.ip, c.port) for c in ice2.candidates] == [(c.ip, c.port) for c in ice1.candidates]
    assert ice2.web_sockets == ()  # web-sockets are off by default
    assert ep2.transport.sctp is None  # no <sctp> asked for
    assert second.feedback_sources == first.feedback_sources


def test_updates_are_bare_echoes_and_replace_sources() -> None:
    engine = make_engine()
    create(engine)
    answer = send(engine, c2.ConferenceModify(MEETING, endpoints=[c2.Endpoint(
        "a1", stats_id="a1-stats", transport=c2.Transport(ice=CLIENT_ICE), sources=sources("a1", 11, 12),
        initial_last_n=5)]))
    assert answer == c2.ConferenceModified(endpoints=(c2.Endpoint("a1"),))
    state = engine.dump()["conferences"][MEETING]["endpoints"]["a1"]
    assert state["sources"][0]["ssrcs"] == [11, 12]
    assert state["connected"] and state["remote_ufrag"] == "Kp2w" and state["initial_last_n"] == 5
    # Trickle: candidates add up; a new source set replaces the old one.
    more = IceUdpTransport(ufrag="Kp2w", candidates=(
        Candidate(1, "2", 0, "2", "198.51.100.9", 53002, 1686052607, "udp", "srflx"),))
    send(engine, c2.ConferenceModify(MEETING, endpoints=[c2.Endpoint(
        "a1", transport=c2.Transport(ice=more), sources=sources("a1", 13))]))
    state = engine.dump()["conferences"][MEETING]["endpoints"]["a1"]
    assert state["remote_candidates"] == 2 and state["sources"][0]["ssrcs"] == [13]


def test_force_mute_batch_skips_unknown_endpoints() -> None:
    engine = make_engine()
    create(engine)
    send(engine, c2.ConferenceModify(MEETING, endpoints=[endpoint("b2")]))
    answer = send(engine, c2.ConferenceModify(MEETING, endpoints=[
        c2.Endpoint("a1", force_mute=c2.ForceMute(audio=True, video=True)),
        c2.Endpoint("gone", force_mute=c2.ForceMute(audio=True)),
        c2.Endpoint("b2", force_mute=c2.ForceMute(video=True)),
    ]))
    assert [e.id for e in answer.endpoints] == ["a1", "gone", "b2"]
    assert all(e.transport is None and not e.expire for e in answer.endpoints)
    endpoints = engine.dump()["conferences"][MEETING]["endpoints"]
    assert endpoints["a1"]["force_mute"] == {"audio": True, "video": True}
    assert endpoints["b2"]["force_mute"] == {"audio": False, "video": True}
    send(engine, c2.ConferenceModify(MEETING, endpoints=[c2.Endpoint("a1", force_mute=c2.ForceMute())]))
    assert engine.dump()["conferences"][MEETING]["endpoints"]["a1"]["force_mute"] == {
        "audio": False, "video": False}


def test_expire_endpoints_then_the_empty_conference_goes_away() -> None:
    engine = make_engine()
    create(engine)
    send(engine, c2.ConferenceModify(MEETING, endpoints=[endpoint("b2")]))
    answer = send(engine, c2.ConferenceModify(MEETING, endpoints=[
        c2.Endpoint("b2", expire=True), c2.Endpoint("never-there", expire=True)]))
    assert answer.endpoints == (c2.Endpoint("b2", expire=True), c2.Endpoint("never-there", expire=True))
    assert MEETING in engine.conferences
    send(engine, c2.ConferenceModify(MEETING, endpoints=[c2.Endpoint("a1", expire=True)]))
    assert MEETING not in engine.conferences
    err = refused(engine, c2.ConferenceModify(MEETING, expire=True))
    assert (err.condition, reason(err)) == ("item-not-found", "conference_not_found")


def test_conference_expire_answers_empty_and_counts() -> None:
    engine = make_engine()
    create(engine)
    engine.clock.now += 42  # type: ignore[attr-defined]
    assert send(engine, c2.ConferenceModify(MEETING, expire=True)) == c2.ConferenceModified()
    assert engine.conferences == {}
    stats = engine.stats()
    assert (stats.total_conferences_created, stats.total_conferences_completed) == (1, 1)
    assert stats.total_conference_seconds == 42


# ----- conference-level errors (§2.6) -----------------------------------------------------------


def test_conference_not_found() -> None:
    err = refused(make_engine(), c2.ConferenceModify(MEETING, endpoints=[c2.Endpoint("a1", stats_id="x")]))
    assert (err.condition, err.type, err.text) == (
        "item-not-found", "cancel", f"Conference not found for ID: {MEETING}")
    assert reason(err) == "conference_not_found"
    assert err.app_element is not None and err.app_element.tag == f"{{{NS_COLIBRI2}}}error"


def test_conference_already_exists() -> None:
    engine = make_engine()
    create(engine)
    err = refused(engine, c2.ConferenceModify(MEETING, name=ROOM, create=True, endpoints=[endpoint("x")]))
    assert (err.condition, err.type, err.text) == (
        "conflict", "cancel", f"Conference already exists for ID: {MEETING}")
    assert reason(err) == "conference_already_exists"


def test_graceful_shutdown_refuses_creates_only_and_shutting_down_accepts_again() -> None:
    engine = make_engine()
    create(engine)
    engine.enter_graceful_shutdown()
    assert engine.graceful_shutdown and not engine.shutting_down
    err = refused(engine, c2.ConferenceModify("other", name=ROOM, create=True, endpoints=[endpoint("x")]))
    assert (err.condition, err.text, reason(err)) == (
        "service-unavailable", "In graceful shutdown", "graceful_shutdown")
    assert "other" not in engine.conferences
    send(engine, c2.ConferenceModify(MEETING, endpoints=[endpoint("b2")]))  # existing ones keep working
    engine.enter_shutting_down()
    assert engine.graceful_shutdown and engine.shutting_down
    create(engine, meeting="other")
    stats = engine.stats()
    assert (stats.graceful_shutdown, stats.shutting_down) == (True, True)


def test_graceful_shutdown_ends_when_the_last_local_endpoint_leaves_if_configured() -> None:
    engine = make_engine(graceful_shutdown_min_participants=0)
    create(engine)
    engine.enter_graceful_shutdown()
    assert not engine.shutting_down
    send(engine, c2.ConferenceModify(MEETING, expire=True))
    assert engine.shutting_down


def test_bad_conference_name_and_malformed_requests_are_bad_requests() -> None:
    engine = make_engine()
    err = refused(engine, c2.ConferenceModify(MEETING, name="not a jid@", create=True,
                                              endpoints=[endpoint("a")]))
    assert (err.condition, err.text) == ("bad-request", "Invalid conference name (not a JID)")
    assert reason(err) is None
    err = refused(engine, c2.ConferenceModify(MEETING, name=f"{ROOM}/res", create=True))
    assert err.condition == "bad-request"
    err = refused(engine, parse_fragment("<conference-modify xmlns='jitsi:colibri2' create='true'/>"))
    assert (err.condition, err.type) == ("bad-request", "modify") and "meeting-id" in (err.text or "")
    err = refused(engine, parse_fragment(
        f"<conference-modify xmlns='jitsi:colibri2' meeting-id='{MEETING}' create='true'>"
        "<endpoint id='a' create='true'><transport><sctp role='peer'/></transport></endpoint>"
        "</conference-modify>"))
    assert err.condition == "bad-request" and "SCTP role" in (err.text or "")
    assert engine.conferences == {}


# ----- request shape (§2.4.1) --------------------------------------------------------------------


@pytest.mark.parametrize("request_", [
    c2.ConferenceModify(MEETING, endpoints=[c2.Endpoint("a1", expire=True)],
                        relays=[c2.Relay("r", expire=True)]),
    c2.ConferenceModify(MEETING, endpoints=[endpoint("x"), c2.Endpoint("a1", expire=True)]),
    c2.ConferenceModify(MEETING, endpoints=[c2.Endpoint("a1", sources=c2.Sources()),
                                            c2.Endpoint("b", force_mute=c2.ForceMute())]),
    c2.ConferenceModify(MEETING, relays=[c2.Relay("r1", expire=True), c2.Relay("r2", expire=True)]),
], ids=["endpoints-and-relays", "batch-with-create", "batch-with-sources", "two-relays"])
def test_request_shape_violations(request_: c2.ConferenceModify) -> None:
    engine = make_engine()
    create(engine)
    err = refused(engine, request_)
    assert (err.condition, reason(err)) == ("feature-not-implemented", "feature_not_implemented")
    assert MEETING in engine.conferences  # nothing was applied


# ----- endpoint errors (§2.4.2) -----------------------------------------------------------------


def test_endpoint_validation_errors() -> None:
    engine = make_engine()
    create(engine)

    def modify(ep: c2.Endpoint) -> StanzaError:
        return refused(engine, c2.ConferenceModify(MEETING, endpoints=[ep]))

    err = modify(endpoint("a1"))
    assert (err.condition, err.text, reason(err)) == ("conflict", "Endpoint with ID a1 already exists", None)
    err = modify(endpoint("n1", transport=None))
    assert (err.condition, reason(err)) == ("bad-request", None)
    err = modify(endpoint("n1", capabilities=("ssrc-rewriting",)))
    assert (err.condition, err.text) == ("bad-request", "Source name support is mandatory.")
    err = modify(endpoint("n1", transport=c2.Transport(sctp=c2.Sctp(role="client"))))
    assert (err.condition, reason(err)) == ("feature-not-implemented", None)
    err = modify(endpoint("n1", transport=c2.Transport(sctp=c2.Sctp(port=5001))))
    assert (err.condition, reason(err)) == ("bad-request", None)
    err = modify(endpoint("v1", muc_role="visitor", sources=sources("v1", 5)))
    assert err.condition == "bad-request"
    # A visitor without sources is fine, an explicit server role and port 5000 too.
    send(engine, c2.ConferenceModify(MEETING, endpoints=[endpoint("v1", muc_role="visitor")]))
    send(engine, c2.ConferenceModify(MEETING, endpoints=[
        endpoint("s1", transport=c2.Transport(sctp=c2.Sctp(5000, "server")))]))
    assert engine.stats().visitors == 1
    err = modify(c2.Endpoint("v1", sources=sources("v1", 6)))
    assert err.condition == "bad-request"


def test_sctp_disabled() -> None:
    engine = make_engine(sctp_enabled=False)
    err = refused(engine, c2.ConferenceModify(MEETING, name=ROOM, create=True, endpoints=[endpoint("a")]))
    assert (err.condition, reason(err)) == ("feature-not-implemented", None)
    create(engine, endpoint("a", sctp=False), meeting="m2")


def test_unknown_endpoint_error_names_the_endpoint() -> None:
    engine = make_engine()
    create(engine)
    err = refused(engine, c2.ConferenceModify(MEETING, endpoints=[c2.Endpoint("b9", sources=c2.Sources())]))
    assert (err.condition, err.type) == ("item-not-found", "cancel")
    assert err.text == "Endpoint not found for ID: b9"
    el = wire(err)
    assert [local_name(c.tag) for c in el] == ["item-not-found", "text", "error", "endpoint"]
    assert c2.colibri2_error(el) == c2.Colibri2ErrorInfo(c2.ErrorReason.UNKNOWN_ENDPOINT, "b9")


def test_an_error_keeps_what_was_applied_before_it() -> None:
    engine = make_engine()
    create(engine)
    err = refused(engine, c2.ConferenceModify(
        MEETING, endpoints=[c2.Endpoint("a1", sources=sources("a1", 77))],
        connects=[c2.Connect(url="wss://t.example.com", type="transcriber", video=True, id="t",
                             create=True)]))
    assert (err.condition, reason(err)) == ("feature-not-implemented", "feature_not_implemented")
    assert engine.dump()["conferences"][MEETING]["endpoints"]["a1"]["sources"][0]["ssrcs"] == [77]


def test_a_failed_create_leaves_an_empty_conference_until_idle_expiry() -> None:
    engine = make_engine()
    err = refused(engine, c2.ConferenceModify(MEETING, name=ROOM, create=True,
                                              endpoints=[endpoint("a", capabilities=())]))
    assert err.condition == "bad-request"
    assert MEETING in engine.conferences
    assert engine.expire_idle_conferences(20) == []
    engine.clock.now += 21  # type: ignore[attr-defined]
    assert engine.expire_idle_conferences(20) == [MEETING]
    assert engine.conferences == {}


def test_unexpected_exceptions_are_internal_server_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine()
    create(engine)

    def boom(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(engine, "_update_endpoint", boom)
    err = refused(engine, c2.ConferenceModify(MEETING, endpoints=[c2.Endpoint("a1", sources=c2.Sources())]))
    assert (err.condition, err.text, reason(err)) == ("internal-server-error", "disk on fire", None)


# ----- ICE restart ---------------------------------------------------------------------------


def test_ice_restart() -> None:
    engine = make_engine()
    first = create(engine).endpoints[0].transport.ice  # type: ignore[union-attr]
    assert first is not None
    restart = c2.ConferenceModify(MEETING, endpoints=[
        c2.Endpoint("a1", transport=c2.Transport(ice_restart=True))])
    # Nothing connected yet: the current transport, without ice-generation.
    answer = send(engine, restart).endpoints[0]
    assert answer.transport is not None and answer.transport.ice is not None
    assert answer.transport.ice.ufrag == first.ufrag and answer.transport.ice.ice_generation is None
    # Connected: new credentials with generation 1, then 2.
    for generation in (1, 2):
        send(engine, c2.ConferenceModify(MEETING, endpoints=[
            c2.Endpoint("a1", transport=c2.Transport(ice=CLIENT_ICE))]))
        answer = send(engine, restart).endpoints[0]
        assert answer.transport is not None and answer.transport.ice is not None
        assert answer.transport.ice.ufrag != first.ufrag
        assert answer.transport.ice.ice_generation == generation
    # Restarts disabled: a bare endpoint (jicofo falls back to a re-invite).
    engine = make_engine(ice_restart_enabled=False)
    create(engine)
    assert send(engine, restart).endpoints == (c2.Endpoint("a1"),)


# ----- relays ---------------------------------------------------------------------------------


def relay_create(
    rid: str, *, initiator: bool, sctp: bool = True, eids: tuple[str, ...] = ("c9",)
) -> c2.Relay:
    role = "client" if initiator else "server"
    return c2.Relay(
        rid, create=True, mesh_id="0",
        medias=[c2.Media("audio"), c2.Media("video")],
        transport=c2.Transport(ice_controlling=initiator, use_unique_port=initiator,
                               sctp=c2.Sctp(role=role) if sctp else None),
        endpoints=[c2.Endpoint(e, create=True, stats_id=f"{e}-s", sources=c2.Sources(),
                               capabilities=("source-names",)) for e in eids],
    )


def test_relay_create_answers_and_cross_forward() -> None:
    engine = make_engine(websocket_url_template="wss://jvb1.example.com/colibri-ws/{bridge}/{conference}/{endpoint}")
    create(engine)
    answer = send(engine, c2.ConferenceModify(MEETING, relays=[relay_create("sim-relay-2", initiator=True)]))
    (relay,) = answer.relays
    assert relay.id == "sim-relay-2" and relay.transport is not None and relay.transport.ice is not None
    ice = relay.transport.ice
    assert ice.fingerprints[0].setup == "actpass"
    assert ice.web_sockets == ()  # SCTP is used
    assert relay.transport.sctp == c2.Sctp(5000, "server")
    assert all(32768 <= c.port <= 60999 for c in ice.candidates)  # use-unique-port
    assert answer.feedback_sources is None
    # The other bridge's transport forwarded with setup 'active': this side is the DTLS server.
    other = IceUdpTransport(ufrag="2m7x", pwd="0a9s", rtcp_mux=True,
                            fingerprints=(Fingerprint("sha-256", "91:0C", "active"),))
    assert send(engine, c2.ConferenceModify(MEETING, relays=[c2.Relay(
        "sim-relay-2", transport=c2.Transport(ice=other))])).relays == (c2.Relay("sim-relay-2"),)
    state = engine.dump()["conferences"][MEETING]["relays"]["sim-relay-2"]
    assert state["dtls_role"] == "server" and state["connected"]
    assert list(state["endpoints"]) == ["c9"]
    # Remote endpoints come and go.
    send(engine, c2.ConferenceModify(MEETING, relays=[c2.Relay("sim-relay-2", endpoints=[
        c2.Endpoint("c9", sources=sources("c9", 99)),
        c2.Endpoint("d1", create=True, sources=c2.Sources())])]))
    assert engine.stats().octo_endpoints == 2
    send(engine, c2.ConferenceModify(MEETING, relays=[c2.Relay("sim-relay-2", endpoints=[
        c2.Endpoint("d1", expire=True)])]))
    assert engine.stats().octo_endpoints == 1
    gone = send(engine, c2.ConferenceModify(MEETING, relays=[c2.Relay("sim-relay-2", expire=True)]))
    assert gone.relays == (c2.Relay("sim-relay-2", expire=True),)


def test_relay_non_initiator_without_sctp_gets_a_relay_web_socket_and_the_shared_port() -> None:
    engine = make_engine(websocket_url_template="wss://jvb1.example.com:443")
    create(engine)
    answer = send(engine, c2.ConferenceModify(
        MEETING, relays=[relay_create("r", initiator=False, sctp=False)]))
    transport = answer.relays[0].transport
    assert transport is not None and transport.ice is not None and transport.sctp is None
    (url,) = transport.ice.web_sockets
    assert "/colibri-relay-ws/jvb-sim-1/" in url and "/r?pwd=" in url
    assert {c.port for c in transport.ice.candidates} == {10000}
    # With a server role in the request, the bridge takes the client role.
    answer = send(engine, c2.ConferenceModify(MEETING, relays=[relay_create("r2", initiator=False)]))
    assert answer.relays[0].transport.sctp == c2.Sctp(5000, "client")  # type: ignore[union-attr]


def test_relay_errors() -> None:
    engine = make_engine()
    create(engine)

    def modify(relay: c2.Relay) -> StanzaError:
        return refused(engine, c2.ConferenceModify(MEETING, relays=[relay]))

    send(engine, c2.ConferenceModify(MEETING, relays=[relay_create("r", initiator=True)]))
    err = modify(relay_create("r", initiator=True))
    assert (err.condition, reason(err)) == ("conflict", None)
    err = modify(c2.Relay("r2", create=True))
    assert (err.condition, reason(err)) == ("bad-request", None)
    err = modify(c2.Relay("r2", create=True, transport=c2.Transport(sctp=c2.Sctp(port=1))))
    assert err.condition == "bad-request"
    err = modify(c2.Relay("r9", endpoints=[c2.Endpoint("x", sources=c2.Sources())]))
    assert (err.condition, err.text, reason(err)) == ("bad-request", "Unknown relay r9", None)
    # Only expiring: an unknown relay is skipped with a bare answer.
    assert send(engine, c2.ConferenceModify(MEETING, relays=[c2.Relay(
        "r9", endpoints=[c2.Endpoint("x", expire=True)])])).relays == (c2.Relay("r9"),)
    assert send(engine, c2.ConferenceModify(MEETING, relays=[c2.Relay("r9", expire=True)])).relays == (
        c2.Relay("r9", expire=True),)

    off = make_engine(relay_id=None)
    create(off)
    err = refused(off, c2.ConferenceModify(MEETING, relays=[relay_create("r", initiator=True)]))
    assert (err.condition, reason(err)) == ("feature-not-implemented", None)
    assert off.stats().relay_id is None


def test_a_relay_keeps_a_conference_without_local_endpoints() -> None:
    engine = make_engine()
    create(engine)
    send(engine, c2.ConferenceModify(MEETING, relays=[relay_create("r", initiator=True)]))
    send(engine, c2.ConferenceModify(MEETING, endpoints=[c2.Endpoint("a1", expire=True)]))
    assert MEETING in engine.conferences
    send(engine, c2.ConferenceModify(MEETING, relays=[c2.Relay("r", expire=True)]))
    assert MEETING not in engine.conferences


# ----- connects -------------------------------------------------------------------------------


def test_connects() -> None:
    engine = make_engine()
    transcriber = c2.Connect(url="wss://t.example.com/ws", type="transcriber", audio=True, id="transcriber",
                             create=True)
    create(engine)
    send(engine, c2.ConferenceModify(MEETING, connects=[transcriber]))
    assert list(engine.dump()["conferences"][MEETING]["connects"]) == ["transcriber"]

    def modify(*connects: c2.Connect) -> StanzaError:
        return refused(engine, c2.ConferenceModify(MEETING, connects=connects))

    assert modify(transcriber).condition == "bad-request"  # exists
    assert modify(c2.Connect(url="wss://x", id="y")).condition == "bad-request"  # update of unknown
    assert modify(c2.Connect(url="https://x", id="z", create=True)).condition == "bad-request"
    err = modify(c2.Connect(url="wss://x", id="z", create=True, protocol="rtp"))
    assert (err.condition, reason(err)) == ("feature-not-implemented", "feature_not_implemented")
    dup = c2.Connect(url="wss://x", id="d", create=True)
    assert modify(dup, dup).condition == "bad-request"
    send(engine, c2.ConferenceModify(MEETING, connects=[c2.Connect(id="transcriber", expire=True)]))
    assert engine.dump()["conferences"][MEETING]["connects"] == {}


# ----- health, stats, identity ------------------------------------------------------------------


def test_health() -> None:
    engine = make_engine()
    engine.check_health()
    engine.healthy = False
    with pytest.raises(StanzaError) as sick:
        engine.check_health()
    assert sick.value.condition == "internal-server-error" and sick.value.text
    assert engine.stats().healthy is False


def test_stats_follow_the_state() -> None:
    engine = make_engine(release="42")
    stats = engine.stats()
    assert (stats.conferences, stats.endpoints, stats.stress_level) == (0, 0, 0.05)
    assert stats.drain is False and stats.relay_id == "sim-relay-1" and stats.region == "us-east-1"
    assert stats.version == "2.3.250-gsimulated" and stats.release == "42"
    assert engine.identity.full_version == "2.3.250-gsimulated-42"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", stats.current_timestamp or "")
    create(engine)
    send(engine, c2.ConferenceModify(MEETING, endpoints=[
        c2.Endpoint("a1", sources=sources("a1", 1))]))
    send(engine, c2.ConferenceModify(MEETING, endpoints=[endpoint("b2")]))
    create(engine, meeting="m2")
    engine.drain = True
    stats = engine.stats()
    assert (stats.conferences, stats.endpoints, stats.participants, stats.local_endpoints) == (3 - 1, 3, 3, 3)
    assert stats.largest_conference == 2 and stats.endpoints_sending_audio == 1
    assert stats.stress_level == pytest.approx(0.08)
    assert stats.average_participant_stress == 0.01
    assert (stats.total_participants, stats.total_conferences_created) == (3, 2)
    assert stats.drain is True
    # The presence element round-trips through the focus's reader.
    assert BridgeStats.from_element(parse_fragment(serialize(stats.to_element()))) == stats


def test_stats_filter_publishes_the_whitelist_only() -> None:
    stats = make_engine(stats_filter=True).stats()
    present = {name for name, _ in stats.items()}
    assert present <= STATS_FILTER_WHITELIST
    assert {"stress_level", "drain", "graceful_shutdown", "shutting_down", "healthy", "version",
            "relay_id", "region", "current_timestamp", "average_participant_stress"} <= present
    assert stats.conferences is None


def test_silent_expiry_makes_the_next_update_unknown_endpoint() -> None:
    engine = make_engine()
    create(engine)
    send(engine, c2.ConferenceModify(MEETING, endpoints=[endpoint("b2")]))
    assert engine.expire_endpoint(MEETING, "b2") and not engine.expire_endpoint(MEETING, "b2")
    err = refused(engine, c2.ConferenceModify(MEETING, endpoints=[c2.Endpoint("b2", sources=c2.Sources())]))
    assert reason(err) == "unknown_endpoint"
    assert engine.expire_conference(MEETING) and MEETING not in engine.conferences


def test_dump_is_json() -> None:
    import json

    engine = make_engine()
    create(engine)
    send(engine, c2.ConferenceModify(MEETING, relays=[relay_create("r", initiator=True)]))
    dumped = json.loads(json.dumps(engine.dump()))
    conference = dumped["conferences"][MEETING]
    assert conference["name"] == ROOM and conference["creator"] == FOCUS
    assert set(conference["endpoints"]) == {"a1"} and set(conference["relays"]) == {"r"}


def test_candidate_addresses_are_configurable() -> None:
    engine = make_engine(candidate_addresses=("192.0.2.7", "::1"))
    (ep,) = create(engine).endpoints
    assert ep.transport is not None and ep.transport.ice is not None
    candidates = ep.transport.ice.candidates
    assert [(c.ip, c.type, c.foundation) for c in candidates] == [
        ("192.0.2.7", "host", "1"), ("::1", "host", "2")]
    assert candidates[0].priority > candidates[1].priority
    assert len({c.id for c in candidates}) == 2
