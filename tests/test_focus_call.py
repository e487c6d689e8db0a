"""A call through our focus, seen from the wire: Prosody, the focus, a simulated bridge, and two
hand-scripted clients speaking the lib-jitsi-meet protocol (conference IQ through the
`focus.<domain>` component, MUC join, session-initiate → session-accept, sources relayed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from xml.etree.ElementTree import Element

import pytest
import trio

from jicofo.http.client import get_json
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.xmlns.conference_iq import ConferenceAnswer, ConferenceRequest
from jicofo.xmlns.ice_udp import Fingerprint, IceUdpTransport
from jicofo.xmlns.jingle import Action, JingleContent, JingleIQ, RtpDescription
from jicofo.xmlns.ssma import SourceElement, SsrcGroupElement
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.errors import NotConnected, StanzaError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import MucRoom
from jicofo.xmpp.xml import element, parse_fragment

from .xmpp_helpers import connected, settings_for

JINGLE = "{urn:xmpp:jingle:1}jingle"
C2 = "jitsi:colibri2"
ICE = "urn:xmpp:jingle:transports:ice-udp:1"
DTLS = "urn:xmpp:jingle:apps:dtls:0"
FEATURES = ("urn:xmpp:jingle:apps:rtp:audio", "urn:xmpp:jingle:apps:rtp:video",
            "urn:xmpp:jingle:transports:dtls-sctp:1", "urn:ietf:rfc:4588", "http://jitsi.org/tcc")


@dataclass
class Client:
    """A scripted lib-jitsi-meet-like member."""

    xmpp: XMPPClient
    nick: str
    room: MucRoom | None = None
    jingle: list[tuple[Element, JingleIQ]] = field(default_factory=list)
    arrived: trio.Event = field(default_factory=trio.Event)

    def on_jingle(self, iq: Element) -> None:
        parsed = JingleIQ.from_element(iq.find(JINGLE))  # type: ignore[arg-type]
        self.jingle.append((iq, parsed))
        self.arrived.set()
        self.arrived = trio.Event()
        self.xmpp._handler_nursery.start_soon(self._reply, iq)  # type: ignore[union-attr]

    async def _reply(self, iq: Element) -> None:
        try:
            await self.xmpp.reply(iq)
        except NotConnected:
            pass  # the member is leaving: what the focus sent last is not answered

    async def wait_for(self, action: Action, count: int = 1, timeout: float = 10) -> JingleIQ:
        with trio.fail_after(timeout):
            while True:
                found = [j for _, j in self.jingle if j.action is action]
                if len(found) >= count:
                    return found[count - 1]
                await self.arrived.wait()

    async def conference(self, room: str) -> ConferenceAnswer:
        request = ConferenceRequest(room=room, properties={"rtcstatsEnabled": "false"})
        result = await self.xmpp.request(
            self.xmpp.iq("set", "focus.meet.test", request.to_element()), timeout=15)
        body = result.find("{http://jitsi.org/protocol/focus}conference")
        assert body is not None
        return ConferenceAnswer.from_element(body)

    async def join(self, room: str) -> None:
        self.room = MucRoom(self.xmpp, JID.parse(room), self.nick, presence_extensions=[
            element("{jabber:client}stats-id", text=f"{self.nick}-stats"),
            element("{jabber:client}jitsi_participant_region", text="us-east-1"),
        ])
        await self.room.join()

    async def accept(self, offer: JingleIQ, ssrc_base: int) -> None:
        audio = RtpDescription(media="audio", sources=(
            SourceElement(ssrc_base, name=f"{self.nick}-a0", msid=f"{self.nick}-a t"),))
        video = RtpDescription(media="video", sources=(
            SourceElement(ssrc_base + 1, name=f"{self.nick}-v0", msid=f"{self.nick}-v t"),
            SourceElement(ssrc_base + 2, name=f"{self.nick}-v0", msid=f"{self.nick}-v t"),
        ), ssrc_groups=(SsrcGroupElement("FID", (ssrc_base + 1, ssrc_base + 2)),))
        transport = IceUdpTransport(ufrag="cl1", pwd="clientpassword123456789", fingerprints=(
            Fingerprint("sha-256", "AA:" * 31 + "AA", "active"),))
        accept = JingleIQ(Action.SESSION_ACCEPT, offer.sid, responder=str(self.xmpp.jid), contents=(
            JingleContent("audio", description=audio, transport=transport),
            JingleContent("video", description=video, transport=transport),
        ))
        assert self.room is not None
        await self.xmpp.request(self.xmpp.iq("set", self.room.jid.with_resource("focus"),
                                             accept.to_element()))


@asynccontextmanager
async def member(prosody: ProsodyInstance, nick: str) -> AsyncIterator[Client]:
    async with connected(settings_for(prosody)) as xmpp:
        xmpp.features.update(FEATURES)
        client = Client(xmpp, nick)
        xmpp.add_iq_router(JINGLE, client.on_jingle, types=("set",))
        yield client


@pytest.mark.parametrize("over_websocket", [False, True], ids=["tcp", "websocket"])
async def test_two_members_get_offers_and_each_others_sources(
    prosody: ProsodyInstance, over_websocket: bool,
) -> None:
    room = f"standup@{prosody.muc_domain}"
    extra = {"jicofo.xmpp.client.websocket-url": prosody.websocket_url} if over_websocket else {}
    async with simulated_bridges(prosody, 1) as sims, \
            running_focus(focus_config(prosody, extra)) as app:
        assert app.client.settings.websocket_url == (prosody.websocket_url if over_websocket else None)
        # The brewery sees the bridge before anyone calls.
        with trio.fail_after(10):
            while not app.brewery or not app.brewery.operational_bridges():
                await trio.sleep(0.05)
        async with member(prosody, "a1b2c3d4") as ana, member(prosody, "b5e6f7a8") as bo:
            answer = await ana.conference(room)
            assert answer.ready and answer.focus_jid == f"focus@{prosody.auth_domain}"
            await ana.join(room)
            await bo.conference(room)
            await bo.join(room)
            offer_a = await ana.wait_for(Action.SESSION_INITIATE)
            offer_b = await bo.wait_for(Action.SESSION_INITIATE)
            for offer in (offer_a, offer_b):
                assert offer.bundle is not None
                assert offer.bridge_session is not None
                transport = offer.contents[0].transport
                assert transport is not None and transport.ufrag and transport.pwd
            await ana.accept(offer_a, 1000)
            await bo.accept(offer_b, 2000)
            add_for_bo = await bo.wait_for(Action.SOURCE_ADD)
            ssrcs = {s.ssrc for c in add_for_bo.contents for s in c.description.sources}  # type: ignore[union-attr]
            assert 1000 in ssrcs
            add_for_ana = None
            # Ana accepted first: Bo's sources reach her in a source-add.
            add_for_ana = await ana.wait_for(Action.SOURCE_ADD)
            ssrcs = {s.ssrc for c in add_for_ana.contents for s in c.description.sources}  # type: ignore[union-attr]
            assert 2000 in ssrcs
            log = await get_json("127.0.0.1", sims.http_port, "/requests")
            assert isinstance(log, list)
            kinds = [e["kind"] for e in log]
            assert kinds.count("allocate") == 2
            assert "update" in kinds
            # Each offer carries exactly the transport the bridge allocated for that endpoint.
            for nick, offer in (("a1b2c3d4", offer_a), ("b5e6f7a8", offer_b)):
                answer = next(parse_fragment(e["response"]) for e in log
                              if e["kind"] == "allocate" and f"id='{nick}'" in e["request"].replace('"', "'"))
                ice = answer.find(f"{{{C2}}}endpoint/{{{C2}}}transport/{{{ICE}}}transport")
                assert ice is not None
                transport = offer.contents[0].transport
                assert transport is not None
                assert (transport.ufrag, transport.pwd) == (ice.get("ufrag"), ice.get("pwd"))
                assert transport.fingerprints[0].value == ice.find(f"{{{DTLS}}}fingerprint").text  # type: ignore[union-attr]
                assert len(transport.candidates) == len(ice.findall(f"{{{ICE}}}candidate"))
                # Every content (BUNDLE) gets the same transport; data adds its sctpmap.
                assert all(replace(c.transport, sctpmap=None) == transport  # type: ignore[type-var]
                           for c in offer.contents)

            # A source-add reusing Ana's SSRC is refused and changes nothing anywhere.
            updates_before = kinds.count("update")
            bad = JingleIQ(Action.SOURCE_ADD, offer_b.sid, contents=(JingleContent(
                "audio", description=RtpDescription(media="audio", sources=(
                    SourceElement(1000, name="b5e6f7a8-a1", msid="x y"),))),))
            with pytest.raises(StanzaError) as refused:
                await bo.xmpp.request(bo.xmpp.iq("set", bo.room.jid.with_resource("focus"),  # type: ignore[union-attr]
                                                 bad.to_element()))
            assert refused.value.condition == "bad-request"
            assert "SSRC" in (refused.value.text or "")
            # A valid one reaches Ana and the bridge.
            good = JingleIQ(Action.SOURCE_ADD, offer_b.sid, contents=(JingleContent(
                "video", description=RtpDescription(media="video", sources=(
                    SourceElement(2100, name="b5e6f7a8-v1", msid="bo-desk t", video_type="desktop"),))),))
            await bo.xmpp.request(bo.xmpp.iq("set", bo.room.jid.with_resource("focus"),  # type: ignore[union-attr]
                                             good.to_element()))
            second_add = await ana.wait_for(Action.SOURCE_ADD, count=2)
            ssrcs = {s.ssrc for c in second_add.contents for s in c.description.sources}  # type: ignore[union-attr]
            assert ssrcs == {2100}, "only the new source, and not the refused one"
            with trio.fail_after(5):
                while True:
                    log = await get_json("127.0.0.1", sims.http_port, "/requests")
                    updates = [e for e in log if e["kind"] == "update"]  # type: ignore[union-attr]
                    if len(updates) > updates_before and "2100" in updates[-1]["request"]:
                        break
                    await trio.sleep(0.05)
            assert "1000" not in updates[-1]["request"].split("b5e6f7a8")[-1]


async def test_a_handled_session_accept_is_not_kept_in_memory(prosody: ProsodyInstance) -> None:
    """Memory per participant: once the focus has handled a member's session-accept, nothing keeps
    its parsed stanza (~35 KB of elements for a browser's). The participant's inbox loop used to
    hold the last request it handled until the next one arrived, for the whole call."""
    import gc

    from jicofo.conference.participant import JingleRequest

    def accepts_alive() -> int:
        gc.collect()
        return sum(1 for obj in gc.get_objects() if isinstance(obj, JingleRequest)
                   and obj.iq.find(f"{JINGLE}[@action='session-accept']") is not None)

    room = f"memory@{prosody.muc_domain}"
    async with simulated_bridges(prosody, 1), running_focus(focus_config(prosody)) as app:
        with trio.fail_after(10):
            while not app.brewery or not app.brewery.operational_bridges():
                await trio.sleep(0.05)
        async with member(prosody, "a1b2c3d4") as ana, member(prosody, "b5e6f7a8") as bo:
            for client in (ana, bo):
                await client.conference(room)
                await client.join(room)
            await ana.accept(await ana.wait_for(Action.SESSION_INITIATE), 1000)
            await bo.accept(await bo.wait_for(Action.SESSION_INITIATE), 2000)
            await ana.wait_for(Action.SOURCE_ADD)  # both accepts were handled
            with trio.move_on_after(5):
                while accepts_alive():
                    await trio.sleep(0.1)
            assert accepts_alive() == 0
