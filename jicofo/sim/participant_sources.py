"""The media side of a simulated lib-jitsi-meet participant, without I/O: its own sources (SSRCs,
simulcast and RTX groups, msids, names), the features it advertises, the checks it applies to the
focus's offers and the session-accept it answers with. The others' sources and the checks of
source changes are in client_sources.py; the Jingle types in client_jingle.py.

Every check returns a list of problems (human-readable strings) rather than raising: the simulator
counts them as deviations and carries on the way the real client would.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .client_jingle import (
    Candidate,
    Content,
    Description,
    Fingerprint,
    GroupXml,
    Jingle,
    PayloadType,
    SourceXml,
    Transport,
)
from .client_sources import MAX_SSRC

CAPS_NODE = "https://jitsi.org/jitsi-meet"

FEATURE_JINGLE = "urn:xmpp:jingle:1"
FEATURE_RTP = "urn:xmpp:jingle:apps:rtp:1"
FEATURE_ICE_UDP = "urn:xmpp:jingle:transports:ice-udp:1"
FEATURE_DTLS = "urn:xmpp:jingle:apps:dtls:0"
FEATURE_SCTP = "urn:xmpp:jingle:transports:dtls-sctp:1"
FEATURE_AUDIO = "urn:xmpp:jingle:apps:rtp:audio"
FEATURE_VIDEO = "urn:xmpp:jingle:apps:rtp:video"
FEATURE_JSON_SOURCES = "http://jitsi.org/json-encoded-sources"
FEATURE_RTX = "urn:ietf:rfc:4588"
FEATURE_REMB = "http://jitsi.org/remb"
FEATURE_TCC = "http://jitsi.org/tcc"
FEATURE_SOURCE_NAMES = "http://jitsi.org/source-name"
FEATURE_RECEIVE_MULTIPLE_STREAMS = "http://jitsi.org/receive-multiple-video-streams"
FEATURE_VISITORS = "http://jitsi.org/visitors-1"
FEATURE_START_MUTED_METADATA = "http://jitsi.org/start-muted-room-metadata"
FEATURE_RAYO = "urn:xmpp:rayo:client:1"
FEATURE_OPUS_RED = "http://jitsi.org/opus-red"
FEATURE_SSRC_REWRITING = "http://jitsi.org/ssrc-rewriting-1"
FEATURE_DISCO_INFO = "http://jabber.org/protocol/disco#info"
FEATURE_CAPS = "http://jabber.org/protocol/caps"

CAMERA = "camera"
DESKTOP = "desktop"
AUDIO = "audio"
SOURCE_KINDS = (AUDIO, CAMERA, DESKTOP)

SCTP_PORT = 5000


def client_features(
    *,
    audio_only: bool = False,
    data_channel: bool = True,
    json_sources: bool = True,
    rtx: bool = True,
    opus_red: bool = False,
    ssrc_rewriting: bool = False,
    extra: Iterable[str] = (),
) -> frozenset[str]:
    """The disco#info features of a default lib-jitsi-meet (docs/client.md §2.2) with the
    variants switched on or off."""
    features = {
        FEATURE_DISCO_INFO,
        FEATURE_CAPS,
        FEATURE_JINGLE,
        FEATURE_RTP,
        FEATURE_ICE_UDP,
        FEATURE_DTLS,
        FEATURE_AUDIO,
        FEATURE_REMB,
        FEATURE_TCC,
        FEATURE_SOURCE_NAMES,
        FEATURE_RECEIVE_MULTIPLE_STREAMS,
        FEATURE_VISITORS,
        FEATURE_START_MUTED_METADATA,
        FEATURE_RAYO,
    }
    if not audio_only:
        features.add(FEATURE_VIDEO)
    if data_channel:
        features.add(FEATURE_SCTP)
    if json_sources:
        features.add(FEATURE_JSON_SOURCES)
    if rtx:
        features.add(FEATURE_RTX)
    if opus_red:
        features.add(FEATURE_OPUS_RED)
    if ssrc_rewriting:
        features.add(FEATURE_SSRC_REWRITING)
    features.update(extra)
    return frozenset(features)


# ---------------------------------------------------------------------------------------------
# Our own sources


@dataclass(frozen=True, slots=True)
class LocalSource:
    """One local track as the client signals it: a source name, its SSRCs (simulcast primaries
    first, then their RTX partners), its groups and one msid."""

    name: str
    kind: str  # audio | camera | desktop
    ssrcs: tuple[int, ...]
    groups: tuple[GroupXml, ...]
    msid: str
    muted: bool = False

    @property
    def media(self) -> str:
        return "audio" if self.kind == AUDIO else "video"

    @property
    def video_type(self) -> str | None:
        return None if self.kind == AUDIO else self.kind

    def elements(self) -> tuple[tuple[SourceXml, ...], tuple[GroupXml, ...]]:
        """`<source>`s without `<ssrc-info>` (the client does not name itself) and `<ssrc-group>`s."""
        sources = tuple(
            SourceXml(ssrc, name=self.name, video_type=self.video_type, msid=self.msid) for ssrc in self.ssrcs
        )
        return sources, self.groups


@dataclass
class LocalMedia:
    """The participant's local tracks. SSRCs are random and never collide with `taken()`."""

    endpoint_id: str
    simulcast_layers: int = 3
    rtx: bool = True
    rng: random.Random = field(default_factory=random.Random)
    sources: dict[str, LocalSource] = field(default_factory=dict)

    def create(self, kind: str, taken: set[int] | frozenset[int] = frozenset(), *,
               muted: bool = False) -> LocalSource:
        """A new source of `kind` (audio, camera or desktop), not yet added."""
        if kind not in SOURCE_KINDS:
            raise ValueError(f"unknown source kind {kind!r}; use one of {SOURCE_KINDS}")
        letter = "a" if kind == AUDIO else "v"
        index = 0
        while f"{self.endpoint_id}-{letter}{index}" in self.sources:
            index += 1
        name = f"{self.endpoint_id}-{letter}{index}"
        media = "audio" if kind == AUDIO else "video"
        msid = f"{self.endpoint_id}-{media}-{index}-1 {uuid.UUID(int=self.rng.getrandbits(128), version=4)}"
        used = set(taken) | self.ssrcs()
        layers = self.simulcast_layers if kind == CAMERA else 1
        primaries = tuple(self._new_ssrc(used) for _ in range(max(1, layers)))
        groups: list[GroupXml] = []
        rtx_ssrcs: tuple[int, ...] = ()
        if kind != AUDIO:
            if len(primaries) > 1:
                groups.append(GroupXml("SIM", primaries))
            if self.rtx:
                rtx_ssrcs = tuple(self._new_ssrc(used) for _ in primaries)
                pairs = zip(primaries, rtx_ssrcs, strict=True)
                groups.extend(GroupXml("FID", pair) for pair in pairs)
        return LocalSource(name, kind, primaries + rtx_ssrcs, tuple(groups), msid, muted)

    def add(self, source: LocalSource) -> None:
        self.sources[source.name] = source

    def remove(self, name: str) -> LocalSource:
        return self.sources.pop(name)

    def ssrcs(self) -> set[int]:
        return {ssrc for source in self.sources.values() for ssrc in source.ssrcs}

    def set_muted(
        self, *, audio: bool | None = None, video: bool | None = None, desktop: bool | None = None
    ) -> bool:
        """Mute or unmute audio, camera or screen-share sources (None: leave as is). Returns
        whether anything changed. Muting never removes sources: only `SourceInfo` says so."""
        changed = False
        wanted_by_kind = {AUDIO: audio, CAMERA: video, DESKTOP: desktop}
        for name, source in list(self.sources.items()):
            wanted = wanted_by_kind[source.kind]
            if wanted is not None and wanted != source.muted:
                self.sources[name] = replace(source, muted=wanted)
                changed = True
        return changed

    def source_info_json(self) -> str:
        """The `<SourceInfo>` text: name → {"muted": …[, "videoType": "desktop"]} (camera omitted)."""
        info: dict[str, dict[str, object]] = {}
        for source in self.sources.values():
            entry: dict[str, object] = {"muted": source.muted}
            if source.kind == DESKTOP:
                entry["videoType"] = DESKTOP
            info[source.name] = entry
        return json.dumps(info, separators=(",", ":"))

    def _new_ssrc(self, used: set[int]) -> int:
        while True:
            ssrc = self.rng.randint(1, MAX_SSRC)
            if ssrc not in used:
                used.add(ssrc)
                return ssrc


def source_contents(sources: Iterable[LocalSource]) -> tuple[Content, ...]:
    """Contents of a client source-add / source-remove: one `<content name=media>` per media."""
    contents = []
    listed = list(sources)
    for media in ("audio", "video"):
        elements: list[SourceXml] = []
        groups: list[GroupXml] = []
        for source in listed:
            if source.media == media:
                s, g = source.elements()
                elements.extend(s)
                groups.extend(g)
        if elements:
            description = Description(media=media, sources=tuple(elements), groups=tuple(groups))
            contents.append(Content(media, description=description))
    return tuple(contents)


# ---------------------------------------------------------------------------------------------
# Our transport


def random_transport(rng: random.Random) -> Transport:
    """A fresh ICE ufrag/pwd and DTLS fingerprint (setup=active: the client is the DTLS client)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
    ufrag = "".join(rng.choice(alphabet) for _ in range(4))
    pwd = "".join(rng.choice(alphabet) for _ in range(24))
    fingerprint = ":".join(f"{rng.getrandbits(8):02X}" for _ in range(32))
    return Transport(ufrag=ufrag, pwd=pwd, fingerprints=(Fingerprint("sha-256", fingerprint, "active"),),
                     rtcp_mux=True)


def host_candidate(rng: random.Random, generation: int = 0) -> Candidate:
    return Candidate(
        component=1, foundation="1", generation=generation, id=f"{rng.getrandbits(40):010x}",
        ip="127.0.0.1", port=rng.randint(20000, 60000), priority=2122260223, protocol="udp",
        type="host", network=1,
    )


# ---------------------------------------------------------------------------------------------
# Checking an offer


@dataclass
class OfferCheck:
    """Problems found in a session-initiate (or transport-replace). `fatal` ones make a browser
    fail setRemoteDescription; the session is then terminated instead of accepted."""

    fatal: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return self.fatal + self.problems


def check_offer(offer: Jingle, features: frozenset[str]) -> OfferCheck:
    """What lib-jitsi-meet (and the browser under it) would choke on, and what contradicts the
    features we advertised."""
    check = OfferCheck()
    if not offer.contents:
        check.fatal.append("offer without contents")
        return check
    names = [c.name for c in offer.contents]
    bundle = offer.bundle
    if bundle is None:
        check.problems.append("offer without a BUNDLE group")
    elif set(bundle) != set(names):
        check.problems.append(f"BUNDLE group {list(bundle)[:8]} does not list the contents {names[:8]}")
    ufrags = set()
    for content in offer.contents:
        media = content.media
        where = f"content {content.name!r}"
        transport = content.transport
        if transport is None:
            check.fatal.append(f"{where} has no ICE-UDP transport")
        else:
            if not transport.ufrag or not transport.pwd:
                check.fatal.append(f"{where}: transport without ICE ufrag/pwd")
            ufrags.add((transport.ufrag, transport.pwd))
            if not transport.fingerprints:
                check.fatal.append(f"{where}: transport without a DTLS fingerprint")
            for fp in transport.fingerprints:
                if fp.setup not in (None, "actpass"):
                    check.problems.append(f"{where}: fingerprint setup={fp.setup!r}, expected actpass")
        if media in ("audio", "video"):
            description = content.description
            if description is None or not description.payload_types:
                check.fatal.append(f"{where} has no payload types")
                continue
            if not description.rtcp_mux:
                check.fatal.append(f"{where} lacks <rtcp-mux/> (browsers refuse it)")
            feature = FEATURE_AUDIO if media == "audio" else FEATURE_VIDEO
            if feature not in features:
                check.problems.append(f"{media} offered although {feature} was not advertised")
            offered_ids = {pt.id for pt in description.payload_types}
            if len(offered_ids) != len(description.payload_types):
                check.problems.append(f"{where}: duplicate payload type ids")
            for pt in description.payload_types:
                if pt.name.lower() == "rtx":
                    apt = pt.parameter("apt")
                    if apt is None or not apt.isdigit() or int(apt) not in offered_ids:
                        check.problems.append(f"{where}: rtx payload type {pt.id} has no valid apt")
                    elif FEATURE_RTX not in features:
                        check.problems.append(f"RTX offered although {FEATURE_RTX} was not advertised")
        elif media in ("application", "data"):
            if FEATURE_SCTP not in features:
                check.problems.append("data channel offered although dtls-sctp was not advertised")
            if transport is not None and transport.sctp_port is None and not transport.web_sockets:
                check.problems.append(f"{where}: no sctpmap and no web-socket")
        else:
            check.problems.append(f"{where}: unknown media {media!r}")
    if len(ufrags) > 1:
        check.problems.append("contents of one BUNDLE carry different ICE credentials")
    if offer.json_message is not None and FEATURE_JSON_SOURCES not in features:
        check.problems.append("json-message sources although json-encoded-sources was not advertised")
    if offer.bridge_session is None:
        check.notes.append("no <bridge-session>: restarts cannot name it")
    has_data = any(c.media in ("application", "data") for c in offer.contents)
    if not has_data and not any(c.transport and c.transport.web_sockets for c in offer.contents):
        check.notes.append("no data content and no web-socket: no bridge channel")
    return check


# ---------------------------------------------------------------------------------------------
# The answer


@dataclass(frozen=True, slots=True)
class Codecs:
    """What the simulated browser can receive and send."""

    video: tuple[str, ...] = ("av1", "vp9", "vp8", "h264")
    opus_red: bool = False
    rtx: bool = True

    def accepts(self, media: str, pt: PayloadType, accepted_ids: set[int]) -> bool:
        name = pt.name.lower()
        if media == "audio":
            return name in ("opus", "telephone-event") or (name == "red" and self.opus_red)
        if name == "rtx":
            apt = pt.parameter("apt")
            return self.rtx and apt is not None and apt.isdigit() and int(apt) in accepted_ids
        return name in self.video


def answer_contents(
    offer: Jingle,
    local: LocalMedia,
    transport: Transport,
    codecs: Codecs,
) -> tuple[tuple[Content, ...], tuple[str, ...], list[str]]:
    """The contents of the session-accept: per offered content the payload types we support
    (offer order), the offered header extensions, our sources and groups, rtcp-mux and our
    transport; the data content carries only the transport with `streams=0`. Also returns the
    BUNDLE group and the problems (no common codec)."""
    problems: list[str] = []
    contents: list[Content] = []
    for content in offer.contents:
        media = content.media
        if media in ("audio", "video") and content.description is not None:
            offered = content.description
            accepted: list[PayloadType] = []
            ids: set[int] = set()
            for pt in sorted(offered.payload_types, key=lambda p: p.name.lower() == "rtx"):
                if codecs.accepts(media, pt, ids):
                    accepted.append(pt)
                    ids.add(pt.id)
            accepted.sort(key=lambda p: [q.id for q in offered.payload_types].index(p.id))
            if not any(p.name.lower() not in ("rtx", "telephone-event", "red") for p in accepted):
                problems.append(f"no codec in common for {media}")
            own = [s for s in local.sources.values() if s.media == media]
            elements = [e for s in own for e in s.elements()[0]]
            groups = [g for s in own for g in s.elements()[1]]
            description = Description(
                media=media,
                payload_types=tuple(accepted),
                header_extensions=offered.header_extensions,
                extmap_allow_mixed=offered.extmap_allow_mixed,
                sources=tuple(elements),
                groups=tuple(groups),
                rtcp_mux=True,
            )
            contents.append(
                Content(content.name, "responder", "both", description=description, transport=transport))
        elif media in ("application", "data"):
            offered_port = content.transport.sctp_port if content.transport else None
            port = offered_port if offered_port is not None else SCTP_PORT
            data_transport = replace(transport, sctp_port=port, sctp_streams=0)
            contents.append(Content(content.name, "responder", None, transport=data_transport))
    return tuple(contents), tuple(c.name for c in contents), problems
