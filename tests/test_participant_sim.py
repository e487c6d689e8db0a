"""The participant simulator against a real Prosody. There is no focus here: the test plays it with
a plain client logged in as focus@auth/focus (answers the conference IQ, joins the room, sends
Jingle built with jingle.py) and checks what the simulated participant puts on the wire."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from xml.etree.ElementTree import Element

import pytest
import trio

from jicofo.conference.sources import check_source_set
from jicofo.model.sources import (
    ConferenceSourceMap,
    EndpointSourceSet,
    MediaType,
    Semantics,
    Source,
    SsrcGroup,
)
from jicofo.model.sources_jingle import source_contents, sources_from_contents
from jicofo.model.sources_json import decode_json, encode_json
from jicofo.sim.client_jingle import SOURCE_ADD, Jingle, read_jingle
from jicofo.sim.participant import (
    ParticipantError,
    ParticipantOptions,
    ParticipantTimeouts,
    SimulatedParticipant,
)
from jicofo.sim.participant_sources import (
    FEATURE_JSON_SOURCES,
    FEATURE_SCTP,
    FEATURE_VIDEO,
    Codecs,
    LocalMedia,
    answer_contents,
    check_offer,
    client_features,
    random_transport,
)
from jicofo.sim.participant_sources import source_contents as client_source_contents
from jicofo.tasks import single_cause
from jicofo.testing.prosody import ProsodyInstance
from jicofo.xmlns.conference_iq import CONFERENCE, ConferenceAnswer, ConferenceRequest
from jicofo.xmlns.ice_udp import Candidate, Fingerprint, IceUdpTransport, SctpMap
from jicofo.xmlns.jingle import (
    JINGLE,
    NS_JINGLE_ERRORS,
    Action,
    BridgeSession,
    Group,
    HeaderExtension,
    JingleContent,
    JingleIQ,
    Parameter,
    PayloadType,
    RtcpFb,
    RtpDescription,
)
from jicofo.xmlns.presence_ext import MemberPresence
from jicofo.xmlns.ssma import SourceElement
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.errors import StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom, OccupantLeft
from jicofo.xmpp.xml import element, qn

from .xmpp_helpers import connected, settings_for

FAST = ParticipantTimeouts(login=5, conference=5, conference_retry_min=0.05, join=5,
                           join_retry_jitter=(0.01, 0.05), accept=3, request=3, leave=2)
OTHER = "ef56gh78"
NS_MUTE_AUDIO = "http://jitsi.org/jitmeet/audio"


# ---------------------------------------------------------------------------------------------
# The test's stand-in for the focus


class FakeFocus:
    def __init__(self, client: XMPPClient, prosody: ProsodyInstance, room: JID) -> None:
        self.client = client
        self.prosody = prosody
        self.room_jid = room
        self.room: MucRoom | None = None
        self.requests: list[tuple[str, ConferenceRequest]] = []
        self.not_ready = 0  # answer ready=false this many times first
        self.received: list[tuple[str, JingleIQ]] = []  # every Jingle IQ from participants, acked
        self.left: list[str] = []
        self._lock = trio.Lock()
        client.add_iq_handler(CONFERENCE, self._on_conference, types=("set",))
        client.add_iq_handler(JINGLE, self._on_jingle, types=("set",))

    async def _on_conference(self, iq: Element) -> Element:
        request = ConferenceRequest.from_element(list(iq)[0])
        self.requests.append((iq.get("from", ""), request))
        if self.not_ready > 0:
            self.not_ready -= 1
            return ConferenceAnswer(request.room, ready=False).to_element()
        async with self._lock:
            if self.room is None:
                self.room = MucRoom(self.client, self.room_jid, "focus")
                await self.room.join()
        return ConferenceAnswer(
            request.room, ready=True, focus_jid=self.prosody.focus_jid, properties={"authentication": "false"}
        ).to_element()

    async def _on_jingle(self, iq: Element) -> None:
        self.received.append((iq.get("from", ""), JingleIQ.from_element(list(iq)[0])))

    async def drain_room_events(self) -> None:
        while self.room is None:
            await trio.sleep(0.01)
        async for event in self.room.events:
            if isinstance(event, OccupantLeft):
                self.left.append(event.occupant.nick)

    async def next_jingle(self, action: Action, timeout: float = 3) -> JingleIQ:
        """The next not yet taken Jingle IQ with `action`."""
        with trio.fail_after(timeout):
            while True:
                for i, (_, jingle) in enumerate(self.received):
                    if jingle.action is action:
                        del self.received[i]
                        return jingle
                await trio.sleep(0.01)

    async def send(self, to: str, jingle: JingleIQ | Element) -> Element:
        payload = jingle.to_element() if isinstance(jingle, JingleIQ) else jingle
        return await self.client.request(self.client.iq("set", to, payload), timeout=3)

    def presence_of(self, nick: str) -> MemberPresence:
        assert self.room is not None
        return MemberPresence.from_element(self.room.occupants[nick].presence)


async def until(predicate: Callable[[], bool], timeout: float = 3) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


@asynccontextmanager
async def focus_and_participant(
    prosody: ProsodyInstance, room: str, *, not_ready: int = 0, **options: object
) -> AsyncIterator[tuple[FakeFocus, SimulatedParticipant]]:
    room_jid = JID.parse(f"{room}@{prosody.muc_domain}")
    async with connected(settings_for(prosody, "focus", resource="focus")) as client:
        focus = FakeFocus(client, prosody, room_jid)
        focus.not_ready = not_ready
        participant = SimulatedParticipant(ParticipantOptions(
            xmpp=settings_for(prosody), room=str(room_jid), focus=str(client.jid), timeouts=FAST,
            seed=7, **options,  # type: ignore[arg-type]
        ))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(focus.drain_room_events)
            await nursery.start(participant.run)
            yield focus, participant
            await participant.leave()
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------------
# Offers as the focus builds them (docs/jicofo.md §7.4)


def bridge_transport(*, fingerprint: bool = True, sctp: bool = False) -> IceUdpTransport:
    return IceUdpTransport(
        ufrag="3d4h61iagoumno", pwd="4cf6e0d2b1a8a4c90d12ef34",
        fingerprints=(Fingerprint("sha-256", "AC:58:2D:8E", "actpass"),) if fingerprint else (),
        candidates=(Candidate(1, "1", 0, "c1", "127.0.0.1", 10000, 2130706431, "udp", "host", 0),),
        rtcp_mux=True, sctpmap=SctpMap(5000) if sctp else None,
    )


def other_sources(owner: str = OTHER, base: int = 4100) -> ConferenceSourceMap:
    audio = Source(base + 1, MediaType.AUDIO, f"{owner}-a0", f"{owner}-s {owner}-ta")
    video = (Source(base + 101, MediaType.VIDEO, f"{owner}-v0", f"{owner}-s {owner}-tv", "camera"),
             Source(base + 102, MediaType.VIDEO, f"{owner}-v0", f"{owner}-s {owner}-tv", "camera"))
    fid = SsrcGroup(Semantics.FID, (base + 101, base + 102), MediaType.VIDEO)
    return ConferenceSourceMap({owner: EndpointSourceSet((audio, *video), (fid,))})


def bridge_sources() -> ConferenceSourceMap:
    return ConferenceSourceMap({"jvb": EndpointSourceSet((
        Source(1001, MediaType.AUDIO, "jvb-a0", "mixedmslabel mixedlabelaudio0"),
        Source(2001, MediaType.VIDEO, "jvb-v0", "mixedmslabel mixedlabelvideo0"),
    ))})


def make_offer(
    sid: str,
    sources: ConferenceSourceMap,
    *,
    json_sources: bool = False,
    fingerprint: bool = True,
    bundle: bool = True,
    action: Action = Action.SESSION_INITIATE,
) -> JingleIQ:
    fb = (RtcpFb("ccm", "fir"), RtcpFb("nack"), RtcpFb("nack", "pli"), RtcpFb("transport-cc"))
    audio_pts = (
        PayloadType(111, "opus", 48000, 2, (Parameter("minptime", "10"), Parameter("useinbandfec", "1")),
                    (RtcpFb("transport-cc"),)),
        PayloadType(126, "telephone-event", 8000),
    )
    video_pts = (
        PayloadType(41, "AV1", 90000, rtcp_fbs=fb),
        PayloadType(100, "VP8", 90000, rtcp_fbs=fb),
        PayloadType(42, "rtx", 90000, parameters=(Parameter("apt", "41"),)),
        PayloadType(96, "rtx", 90000, parameters=(Parameter("apt", "100"),)),
        PayloadType(120, "MADEUP", 90000),
    )
    contents = []
    for media, pts, ext in (
        (MediaType.AUDIO, audio_pts, HeaderExtension(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level")),
        (MediaType.VIDEO, video_pts, HeaderExtension(3, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")),
    ):
        description = RtpDescription(media=str(media), payload_types=pts, header_extensions=(ext,),
                                      extmap_allow_mixed=True, rtcp_mux=True)
        if not json_sources:
            (content,) = [c for c in source_contents(sources) if c.name == str(media)] or [None]
            if content is not None and content.description is not None:
                description = RtpDescription(
                    media=description.media, payload_types=pts, header_extensions=(ext,),
                    extmap_allow_mixed=True, rtcp_mux=True,
                    sources=content.description.sources, ssrc_groups=content.description.ssrc_groups,
                )
        contents.append(JingleContent(str(media), description=description,
                                      transport=bridge_transport(fingerprint=fingerprint)))
    contents.append(JingleContent("data", description=RtpDescription(media="application"),
                                  transport=bridge_transport(fingerprint=fingerprint, sctp=True)))
    return JingleIQ(
        action=action, sid=sid, initiator="focus@auth.meet.test/focus", contents=tuple(contents),
        groups=(Group("BUNDLE", ("audio", "video", "data")),) if bundle else (),
        bridge_session=BridgeSession("bs-1", region="region-a"),
        json_message=encode_json(sources) if json_sources and sources else None,
    )


def jingle_sources(action: Action, sid: str, sources: ConferenceSourceMap, *, json_form: bool) -> JingleIQ:
    if json_form:
        return JingleIQ(action, sid, json_message=encode_json(sources))
    return JingleIQ(action, sid, contents=source_contents(sources))


def client_view(jingle: JingleIQ) -> Jingle:
    """What the simulated client reads from the focus-side builder's XML (its own reader)."""
    return read_jingle(jingle.to_element())


# ---------------------------------------------------------------------------------------------
# Pure parts


def test_local_media_simulcast_and_answer() -> None:
    local = LocalMedia("ab12cd34")
    local.add(local.create("audio"))
    camera = local.create("camera")
    local.add(camera)
    assert len(camera.ssrcs) == 6
    assert sorted(g.semantics for g in camera.groups) == ["FID", "FID", "FID", "SIM"]
    # What the focus validates, read by the focus's own parser from the XML the client writes.
    written = Jingle(SOURCE_ADD, "s0", contents=client_source_contents(local.sources.values()))
    check_source_set(sources_from_contents(JingleIQ.from_element(written.to_element()).contents))
    desktop = local.create("desktop", taken=local.ssrcs())
    assert desktop.name == "ab12cd34-v1" and len(desktop.ssrcs) == 2
    local.add(desktop)
    assert json.loads(local.source_info_json()) == {
        "ab12cd34-a0": {"muted": False}, "ab12cd34-v0": {"muted": False},
        "ab12cd34-v1": {"muted": False, "videoType": "desktop"},
    }
    features = client_features()
    offer = client_view(make_offer("s1", other_sources().copy()))
    check = check_offer(offer, features)
    assert check.all == [] and check.notes == []
    contents, bundle, problems = answer_contents(offer, local, random_transport(local.rng), Codecs())
    assert problems == [] and bundle == ("audio", "video", "data")
    video = contents[1].description
    assert video is not None
    assert [pt.name for pt in video.payload_types] == ["AV1", "VP8", "rtx", "rtx"]
    no_fingerprint = client_view(make_offer("s2", ConferenceSourceMap(), fingerprint=False))
    assert check_offer(no_fingerprint, features).fatal
    assert FEATURE_JSON_SOURCES in features and FEATURE_SCTP in features and FEATURE_VIDEO in features
    audio_only = client_features(audio_only=True, data_channel=False)
    assert FEATURE_VIDEO not in audio_only
    problems = check_offer(offer, audio_only).problems
    assert any("urn:xmpp:jingle:apps:rtp:video" in p for p in problems)
    assert any("data channel" in p for p in problems)


# ---------------------------------------------------------------------------------------------
# Against Prosody


async def test_join_session_and_scripted_changes(prosody: ProsodyInstance) -> None:
    async with focus_and_participant(
        prosody, "sim1", not_ready=1, display_name="Alice", region="region-a", stats_id="Alice-x1",
    ) as (focus, p):
        ep = p.endpoint_id
        assert ep is not None and len(ep) == 8
        occupant_jid = f"sim1@{prosody.muc_domain}/{ep}"
        # Conference IQ: sent to the configured focus address, retried after ready=false.
        assert len(focus.requests) == 2
        sender, request = focus.requests[-1]
        assert sender == str(p.client.jid)
        assert request.room == f"sim1@{prosody.muc_domain}" and request.machine_uid
        assert request.properties == {"rtcstatsEnabled": "false", "visitors-version": "1"}
        kinds = [e.kind for e in p.events]
        assert kinds.index("conference-not-ready") < kinds.index("conference-ready") < kinds.index("joined")

        # Presence, as the focus reads it, and the features behind the caps hash.
        await until(lambda: focus.room is not None and ep in focus.room.occupants)
        presence = focus.presence_of(ep)
        assert (presence.stats_id, presence.region, presence.nick) == ("Alice-x1", "region-a", "Alice")
        assert presence.video_codecs == ("av1", "vp9", "vp8", "h264")
        assert presence.source_info is not None and set(presence.source_info) == {f"{ep}-a0", f"{ep}-v0"}
        assert not presence.audio_muted and not presence.video_muted
        assert presence.caps is not None and presence.caps.node == "https://jitsi.org/jitsi-meet"
        caps_el = focus.room.occupants[ep].presence.find("{http://jabber.org/protocol/caps}c")
        info = await focus.client.query_disco_info(occupant_jid, caps_el)
        assert (presence.caps.hash, presence.caps.ver) in focus.client.caps_cache  # the hash verified
        for feature in ("urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:rtp:video", "http://jitsi.org/source-name",
                        "http://jitsi.org/receive-multiple-video-streams", "urn:ietf:rfc:4588",
                        FEATURE_JSON_SOURCES, FEATURE_SCTP, "http://jitsi.org/visitors-1"):
            assert feature in info.features

        # The offer (XML sources of another participant and the bridge) is acked and accepted.
        offered = other_sources()
        offered.add_all(bridge_sources())
        assert (await focus.send(occupant_jid, make_offer("sid-1", offered))).get("type") == "result"
        accept = await focus.next_jingle(Action.SESSION_ACCEPT)
        assert accept.sid == "sid-1" and accept.responder == str(p.client.jid)
        assert accept.initiator == f"sim1@{prosody.muc_domain}/focus"
        assert [c.name for c in accept.contents] == ["audio", "video", "data"]
        assert accept.bundle is not None and accept.bundle.contents == ("audio", "video", "data")
        own = sources_from_contents(accept.contents)
        check_source_set(own)
        assert {s.name for s in own.sources} == {f"{ep}-a0", f"{ep}-v0"}
        assert len([s for s in own.sources if s.media_type is MediaType.VIDEO]) == 6
        assert all(s.msid for s in own.sources)
        assert all(s.video_type == "camera" for s in own.sources if s.media_type is MediaType.VIDEO)
        assert sorted(g.semantics for g in own.groups) == ["FID", "FID", "FID", "SIM"]
        for content in accept.contents:
            assert content.creator == "responder" and content.transport is not None
            assert content.transport.ufrag and content.transport.pwd
            assert content.transport.fingerprints[0].setup == "active"
        data = accept.content("data")
        assert data is not None and data.transport is not None and data.transport.sctpmap is not None
        assert data.transport.sctpmap.streams == 0
        session = await p.wait_for_session(3)
        assert session.bridge_session is not None and session.bridge_session.id == "bs-1"
        assert len(p.remote_sources_of(OTHER).sources) == 3 and len(p.remote_sources_of("jvb").sources) == 2

        # Someone else's sources arrive (JSON form) and go again (XML form).
        third = other_sources("abcd1234", base=7000)
        await focus.send(occupant_jid, jingle_sources(Action.SOURCE_ADD, "sid-1", third, json_form=True))
        assert len((await p.wait_for_remote_sources("abcd1234", 3)).sources) == 3

        # Screen share: source-add to the focus and a SourceInfo entry.
        name = await p.add_source("desktop")
        assert name == f"{ep}-v1"
        share = await focus.next_jingle(Action.SOURCE_ADD)
        added = sources_from_contents(share.contents)
        assert {s.name for s in added.sources} == {name} and len(added.sources) == 2
        assert {s.video_type for s in added.sources} == {"desktop"}
        assert [g.semantics for g in added.groups] == ["FID"]
        await until(lambda: name in (focus.presence_of(ep).source_info or {}))
        assert focus.presence_of(ep).source_info[name].video_type == "desktop"  # type: ignore[index]

        await p.set_muted(audio=True)
        await until(lambda: focus.presence_of(ep).audio_muted)
        assert not focus.presence_of(ep).video_muted

        await focus.send(occupant_jid, jingle_sources(Action.SOURCE_REMOVE, "sid-1", third, json_form=False))
        await p.wait_for_remote_sources("abcd1234", 3, count=0)

        await p.remove_source(name)
        stop = await focus.next_jingle(Action.SOURCE_REMOVE)
        assert sources_from_contents(stop.contents).ssrcs == added.ssrcs
        await until(lambda: name not in (focus.presence_of(ep).source_info or {}))

        # Restart (docs/client.md §3.6): terminate with success + restart, then a new offer is accepted.
        assert await p.request_restart()
        terminate = await focus.next_jingle(Action.SESSION_TERMINATE)
        assert terminate.reason is not None and terminate.reason.condition == "success"
        assert terminate.bridge_session == BridgeSession("bs-1", restart=True)
        assert p.session is None and not p.remote
        await focus.send(occupant_jid, make_offer("sid-2", offered))
        assert (await focus.next_jingle(Action.SESSION_ACCEPT)).sid == "sid-2"
        await p.wait_for_session(3, other_than="sid-1")
        assert p.sessions_accepted == 2

        # ICE failure report (docs/jicofo.md §7.8).
        assert await p.report_ice_failed()
        info_iq = await focus.next_jingle(Action.SESSION_INFO)
        assert info_iq.ice_state == "failed" and info_iq.bridge_session == BridgeSession("bs-1")

        # In-place ICE restart (docs/client.md §3.7): the new bridge credentials are answered with ours.
        old_ufrag = p.session.transport.ufrag  # type: ignore[union-attr]
        assert (await p.request_ice_restart(wait=False)).outcome == "accepted"
        request_ice = await focus.next_jingle(Action.SESSION_INFO)
        assert request_ice.bridge_session == BridgeSession("bs-1", ice_restart=True)
        new_transport = IceUdpTransport(ufrag="new1", pwd="newpwd0123456789abcdef01",
                                        fingerprints=bridge_transport().fingerprints, ice_generation=1)
        await focus.send(occupant_jid, JingleIQ(Action.TRANSPORT_INFO, "sid-2", contents=(
            JingleContent("audio", transport=new_transport),)))
        reply = await focus.next_jingle(Action.TRANSPORT_INFO)
        transport = reply.contents[0].transport
        assert transport is not None and transport.ice_generation == 1 and transport.ufrag != old_ufrag
        # The bridge's new credentials are the ones in use now.
        await p.wait_for(lambda: p.session.ice_generation_answered == 1, 3)  # type: ignore[union-attr]
        in_use = p.session.bridge_transport  # type: ignore[union-attr]
        assert in_use is not None and (in_use.ufrag, in_use.pwd, in_use.ice_generation) == (
            new_transport.ufrag, new_transport.pwd, 1)

        assert p.errors == []
        await p.leave()
        await until(lambda: ep in focus.left)
    # Leaving sends no session-terminate.
    assert not [j for _, j in focus.received if j.action is Action.SESSION_TERMINATE]
    assert p.state == "left"


async def test_deviations_are_counted(prosody: ProsodyInstance) -> None:
    async with focus_and_participant(
        prosody, "sim2", json_sources=False, send_transport_info=True,
    ) as (focus, p):
        ep = p.endpoint_id
        assert ep is not None
        occupant_jid = f"sim2@{prosody.muc_domain}/{ep}"
        assert FEATURE_JSON_SOURCES not in p.features

        # JSON sources although not advertised, a source for the participant itself, no BUNDLE:
        # counted, and still accepted.
        offered = other_sources()
        offered.add_all(other_sources(ep, base=9000))
        await focus.send(occupant_jid, make_offer("s1", offered, json_sources=True, bundle=False))
        await focus.next_jingle(Action.SESSION_ACCEPT)
        trickle = await focus.next_jingle(Action.TRANSPORT_INFO)
        assert trickle.contents[0].transport is not None and trickle.contents[0].transport.candidates
        await p.wait_for_session(3)
        assert len(p.errors) == 3, p.errors
        assert any("json" in e for e in p.errors) and any("own endpoint" in e for e in p.errors)
        assert any("BUNDLE" in e for e in p.errors)
        assert not p.remote_sources_of(ep)

        # A duplicate SSRC (its group then names SSRCs the owner does not have), an unknown
        # source removed.
        duplicate = ConferenceSourceMap({"abcd1234": EndpointSourceSet(
            (Source(4101, MediaType.AUDIO, "abcd1234-a0", "x y"),))})
        await focus.send(occupant_jid, jingle_sources(Action.SOURCE_ADD, "s1", duplicate, json_form=False))
        await p.wait_for(lambda: len(p.errors) == 4, 3)
        assert "duplicate source" in p.errors[3]
        assert not p.remote_sources_of("abcd1234")
        unknown = ConferenceSourceMap({OTHER: EndpointSourceSet((Source(5555, MediaType.AUDIO),))})
        await focus.send(occupant_jid, jingle_sources(Action.SOURCE_REMOVE, "s1", unknown, json_form=False))
        await p.wait_for(lambda: len(p.errors) == 5, 3)
        assert "unknown source removed" in p.errors[4]

        # session-info to the client and an unknown sid are refused, as the client does.
        try:
            await focus.send(occupant_jid, JingleIQ(Action.SESSION_INFO, "s1", ice_state="failed"))
            raise AssertionError("session-info was accepted")
        except StanzaError as err:
            assert err.condition == "bad-request"
        try:
            await focus.send(occupant_jid, jingle_sources(Action.SOURCE_ADD, "nope", third_party(),
                                                          json_form=False))
            raise AssertionError("unknown sid accepted")
        except StanzaError as err:
            assert err.condition == "item-not-found"
            assert err.app_element is not None
            assert err.app_element.tag == qn(NS_JINGLE_ERRORS, "unknown-session")
        assert len(p.errors) == 7

        # transport-replace is acked and ignored (lib-jitsi-meet), and counted.
        await focus.send(occupant_jid, make_offer("s1", offered, action=Action.TRANSPORT_REPLACE))
        await p.wait_for(lambda: len(p.errors) == 8, 3)
        assert "transport-replace" in p.errors[7]

        # The focus ends the session: remote sources go; a broken offer is refused by terminate.
        await focus.send(occupant_jid, JingleIQ(Action.SESSION_TERMINATE, "s1"))
        await p.wait_for(lambda: p.session is None, 3)
        assert not p.remote
        await focus.send(occupant_jid, make_offer("s2", other_sources(), fingerprint=False))
        refusal = await focus.next_jingle(Action.SESSION_TERMINATE)
        assert refusal.sid == "s2" and refusal.reason is not None
        assert refusal.reason.condition == "failed-application"
        assert p.session is None and len(p.errors) > 8

        # A mute request from the focus is obeyed and not answered.
        iq = focus.client.iq("set", occupant_jid, element(qn(NS_MUTE_AUDIO, "mute"), text="true"))
        await focus.client.send(iq)
        await until(lambda: focus.presence_of(ep).audio_muted)
        await p.wait_for_event("mute-request", 1, direction="in")


def third_party() -> ConferenceSourceMap:
    return other_sources("99aa88bb", base=12000)


async def test_what_the_focus_model_folds_away_is_a_deviation_on_the_wire(prosody: ProsodyInstance) -> None:
    # The same source twice in one source-add, and JSON the focus's own decoder accepts (an SSRC as
    # a string, "v" on audio): the participant records each, and takes what is valid.
    async with focus_and_participant(prosody, "sim5") as (focus, p):
        occupant_jid = f"sim5@{prosody.muc_domain}/{p.endpoint_id}"
        await focus.send(occupant_jid, make_offer("d1", other_sources()))
        await p.wait_for_session(3)
        assert p.errors == []
        twice = SourceElement(7001, name="abcd1234-a0", msid="s7 t7", owner="abcd1234")
        description = RtpDescription(media="audio", sources=(twice, twice))
        await focus.send(occupant_jid, JingleIQ(Action.SOURCE_ADD, "d1", contents=(
            JingleContent("audio", description=description),)))
        await p.wait_for(lambda: len(p.errors) == 1, 3)
        assert "listed twice" in p.errors[0], p.errors
        assert p.remote_sources_of("abcd1234").ssrcs == {7001}
        text = json.dumps({"sources": {"99aa88bb": [[], [], [
            {"s": "7101", "n": "99aa88bb-a0", "m": "s8 t8"},
            {"s": 7102, "n": "99aa88bb-a1", "m": "s9 t9", "v": "d"},
        ]]}})
        decode_json(text, max_chars=len(text))  # the focus's decoder takes both
        await focus.send(occupant_jid, JingleIQ(Action.SOURCE_ADD, "d1", json_message=text))
        await p.wait_for(lambda: len(p.errors) == 3, 3)
        assert "invalid SSRC (str)" in p.errors[1] and 'carries "v"' in p.errors[2], p.errors
        assert p.remote_sources_of("99aa88bb").ssrcs == {7102}


async def test_p2p_offer_from_an_occupant_is_declined(prosody: ProsodyInstance) -> None:
    async with focus_and_participant(prosody, "sim3", audio_only=True, data_channel=False) as (focus, p):
        ep = p.endpoint_id
        assert p.local is not None and [s.kind for s in p.local.sources.values()] == ["audio"]
        room_jid = JID.parse(f"sim3@{prosody.muc_domain}")
        async with connected(settings_for(prosody)) as guest:
            guest_room = MucRoom(guest, room_jid, "guest1")
            await guest_room.join()
            since = p.last_seq
            offer = make_offer("p2p-1", ConferenceSourceMap())
            answer = await guest.request(guest.iq("set", f"{room_jid}/{ep}", offer.to_element()))
            assert answer.get("type") == "result"
            event = await p.wait_for_event("p2p-declined", 3, since=since)
            assert event.sid == "p2p-1"
            await guest_room.leave()
        assert p.errors == [] and p.session is None


async def test_a_refused_conference_request_fails_the_start(prosody: ProsodyInstance) -> None:
    # Nobody answers at this address: the server says service-unavailable and the client gives up.
    options = ParticipantOptions(xmpp=settings_for(prosody), room=f"sim4@{prosody.muc_domain}",
                                 focus=f"nobody@{prosody.auth_domain}/focus", timeouts=FAST)
    participant = SimulatedParticipant(options)
    with pytest.raises(ParticipantError, match="service-unavailable"):
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(participant.run)
        except BaseExceptionGroup as group:
            raise single_cause(group) from None
    assert participant.state == "failed"
    assert [e.kind for e in participant.events][:2] == ["login", "conference-request"]
