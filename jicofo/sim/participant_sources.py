"""The media side of a simulated lib-jitsi-meet participant, without I/O: its own sources (SSRCs,
simulcast and RTX groups, msids, names), the features it advertises, the checks it applies to what
the focus sends (offers, remote source changes) and the session-accept it answers with.

Every check returns a list of problems (human-readable strings) rather than raising: the simulator
counts them as deviations and carries on the way the real client would.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from jicofo.conference.sources import check_source_set
from jicofo.model.sources import (
    BRIDGE_OWNER,
    ConferenceSourceMap,
    EndpointSourceSet,
    MediaType,
    Semantics,
    Source,
    SourceValidationError,
    SsrcGroup,
)
from jicofo.model.sources_json import decode_json
from jicofo.xmlns.ice_udp import Candidate, Fingerprint, IceUdpTransport, SctpMap
from jicofo.xmlns.jingle import Group, JingleContent, JingleIQ, PayloadType, RtpDescription
from jicofo.xmlns.ssma import SourceElement, SsrcGroupElement

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

MAX_SSRC = 0xFFFF_FFFF
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


def owner_id(owner: str | None) -> str | None:
    """An `<ssrc-info owner>` names an endpoint id or a MUC JID; either way, the endpoint id."""
    if not owner:
        return None
    return owner.rsplit("/", 1)[-1] or None


# ---------------------------------------------------------------------------------------------
# Our own sources


@dataclass(frozen=True, slots=True)
class LocalSource:
    """One local track as the client signals it: a source name, its SSRCs (simulcast primaries
    first, then their RTX partners), its groups and one msid."""

    name: str
    kind: str  # audio | camera | desktop
    ssrcs: tuple[int, ...]
    groups: tuple[SsrcGroup, ...]
    msid: str
    muted: bool = False

    @property
    def media(self) -> MediaType:
        return MediaType.AUDIO if self.kind == AUDIO else MediaType.VIDEO

    @property
    def video_type(self) -> str | None:
        return None if self.kind == AUDIO else self.kind

    def source_set(self) -> EndpointSourceSet:
        return EndpointSourceSet(
            tuple(Source(s, self.media, self.name, self.msid, self.video_type) for s in self.ssrcs),
            self.groups,
        )

    def elements(self) -> tuple[tuple[SourceElement, ...], tuple[SsrcGroupElement, ...]]:
        """`<source>`s without `<ssrc-info>` (the client does not name itself) and `<ssrc-group>`s."""
        sources = tuple(
            SourceElement(ssrc, name=self.name, video_type=self.video_type, msid=self.msid)
            for ssrc in self.ssrcs
        )
        groups = tuple(SsrcGroupElement(str(g.semantics), g.ssrcs) for g in self.groups)
        return sources, groups


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
        groups: list[SsrcGroup] = []
        rtx_ssrcs: tuple[int, ...] = ()
        if kind != AUDIO:
            if len(primaries) > 1:
                groups.append(SsrcGroup(Semantics.SIM, primaries, MediaType.VIDEO))
            if self.rtx:
                rtx_ssrcs = tuple(self._new_ssrc(used) for _ in primaries)
                pairs = zip(primaries, rtx_ssrcs, strict=True)
                groups.extend(SsrcGroup(Semantics.FID, pair, MediaType.VIDEO) for pair in pairs)
        return LocalSource(name, kind, primaries + rtx_ssrcs, tuple(groups), msid, muted)

    def add(self, source: LocalSource) -> None:
        self.sources[source.name] = source

    def remove(self, name: str) -> LocalSource:
        return self.sources.pop(name)

    def ssrcs(self) -> set[int]:
        return {ssrc for source in self.sources.values() for ssrc in source.ssrcs}

    def source_set(self, media: MediaType | None = None) -> EndpointSourceSet:
        total = EndpointSourceSet()
        for source in self.sources.values():
            if media is None or source.media is media:
                total = total.union(source.source_set())
        return total

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


def source_contents(sources: Iterable[LocalSource]) -> tuple[JingleContent, ...]:
    """Contents of a client source-add / source-remove: one `<content name=media>` per media."""
    contents = []
    for media in MediaType:
        elements: list[SourceElement] = []
        groups: list[SsrcGroupElement] = []
        for source in sources:
            if source.media is media:
                s, g = source.elements()
                elements.extend(s)
                groups.extend(g)
        if elements:
            description = RtpDescription(media=str(media), sources=tuple(elements), ssrc_groups=tuple(groups))
            contents.append(JingleContent(str(media), creator=None, senders=None, description=description))
    return tuple(contents)


# ---------------------------------------------------------------------------------------------
# Our transport


def random_transport(rng: random.Random) -> IceUdpTransport:
    """A fresh ICE ufrag/pwd and DTLS fingerprint (setup=active: the client is the DTLS client)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
    ufrag = "".join(rng.choice(alphabet) for _ in range(4))
    pwd = "".join(rng.choice(alphabet) for _ in range(24))
    fingerprint = ":".join(f"{rng.getrandbits(8):02X}" for _ in range(32))
    return IceUdpTransport(
        ufrag=ufrag, pwd=pwd, fingerprints=(Fingerprint("sha-256", fingerprint, "active"),), rtcp_mux=True
    )


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


def check_offer(offer: JingleIQ, features: frozenset[str]) -> OfferCheck:
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
    elif set(bundle.contents) != set(names):
        check.problems.append(f"BUNDLE group {list(bundle.contents)} does not list the contents {names}")
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
                if (pt.name or "").lower() == "rtx":
                    apt = pt.parameter("apt")
                    if apt is None or not apt.isdigit() or int(apt) not in offered_ids:
                        check.problems.append(f"{where}: rtx payload type {pt.id} has no valid apt")
                    elif FEATURE_RTX not in features:
                        check.problems.append(f"RTX offered although {FEATURE_RTX} was not advertised")
        elif media in ("application", "data"):
            if FEATURE_SCTP not in features:
                check.problems.append("data channel offered although dtls-sctp was not advertised")
            if transport is not None and transport.sctpmap is None and not transport.web_sockets:
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
# Remote sources


def remote_sources(jingle: JingleIQ, known: ConferenceSourceMap) -> tuple[ConferenceSourceMap, list[str]]:
    """The sources a focus IQ carries, by owner endpoint: `<json-message>` and/or XML `<source>`s
    with `<ssrc-info owner>`. Sources without an owner are looked up by SSRC in `known`."""
    problems: list[str] = []
    result = ConferenceSourceMap()
    if jingle.json_message is not None:
        try:
            # What the focus sends lists the whole conference: bounded by the stanza size only.
            result.add_all(decode_json(jingle.json_message, max_chars=len(jingle.json_message)))
        except ValueError as exc:
            problems.append(f"malformed json-message: {exc}")
    owner_of_known = {s.ssrc: owner for owner, sset in known.items() for s in sset.sources}
    for content in jingle.contents:
        description = content.description
        if description is None or not (description.sources or description.ssrc_groups):
            continue
        try:
            media = MediaType(content.media)
        except ValueError:
            problems.append(f"sources in a content of media {content.media!r}")
            continue
        owner_of: dict[int, str] = {}
        for element in description.sources:
            owner = owner_id(element.owner) or owner_of_known.get(element.ssrc)
            if owner is None:
                problems.append(f"source {element.ssrc} without an owner")
                continue
            owner_of[element.ssrc] = owner
            source = Source(element.ssrc, media, element.name, element.msid, element.video_type)
            result.add(owner, EndpointSourceSet((source,)))
        for group in description.ssrc_groups:
            owner = next(
                (o for s in group.ssrcs if (o := owner_of.get(s) or owner_of_known.get(s))), None
            )
            if owner is None or not group.ssrcs:
                problems.append(f"ssrc-group {group.semantics} {list(group.ssrcs)} of no known owner")
                continue
            try:
                semantics = Semantics(group.semantics.upper())
            except ValueError:
                problems.append(f"unknown ssrc-group semantics {group.semantics!r}")
                continue
            result.add(owner, EndpointSourceSet((), (SsrcGroup(semantics, group.ssrcs, media),)))
    return result, problems


_NAME = re.compile(r"(?P<owner>.+)-(?P<letter>[av])\d+\Z")


def check_remote_add(
    known: ConferenceSourceMap, add: ConferenceSourceMap, own_endpoint: str
) -> tuple[ConferenceSourceMap, list[str]]:
    """What of `add` the client takes (as lib-jitsi-meet would, minus what a correct focus never
    sends), and the problems found: sources for ourselves, duplicate SSRCs, names that do not
    belong to their owner or media, missing msids, groups over unknown SSRCs, invalid sets."""
    problems: list[str] = []
    accepted = ConferenceSourceMap()
    used = {s.ssrc for _, sset in known.items() for s in sset.sources}
    for owner, sset in add.items():
        if owner == own_endpoint:
            problems.append(f"source-add for our own endpoint {owner} ({len(sset.sources)} sources)")
            continue
        taken: list[Source] = []
        for source in sset.sources:
            if not 1 <= source.ssrc <= MAX_SSRC:
                problems.append(f"invalid SSRC {source.ssrc} of {owner}")
                continue
            if source.ssrc in used:
                problems.append(f"duplicate source: SSRC {source.ssrc} of {owner} is already known")
                continue
            used.add(source.ssrc)
            problems.extend(_check_name(owner, source))
            taken.append(source)
        own_ssrcs = known.get(owner).ssrcs | {s.ssrc for s in taken}
        groups = []
        for group in sset.groups:
            if not own_ssrcs.issuperset(group.ssrcs):
                problems.append(f"{group.semantics} group {list(group.ssrcs)} of {owner} has unknown SSRCs")
                continue
            groups.append(group)
        new = EndpointSourceSet(tuple(taken), tuple(groups))
        try:
            check_source_set(known.get(owner).union(new))
        except SourceValidationError as exc:
            problems.append(f"sources of {owner} are inconsistent: {exc.message}")
        if new:
            accepted.add(owner, new)
    return accepted, problems


def _check_name(owner: str, source: Source) -> list[str]:
    if source.name is None:
        return [] if owner == BRIDGE_OWNER else [f"source {source.ssrc} of {owner} has no name"]
    match = _NAME.match(source.name)
    letter = "a" if source.media_type is MediaType.AUDIO else "v"
    problems = []
    if match is None or match["owner"] != owner or match["letter"] != letter:
        problems.append(f"source name {source.name!r} does not fit owner {owner} and {source.media_type}")
    if source.msid is None:
        problems.append(f"source {source.ssrc} ({source.name}) of {owner} has no msid")
    return problems


def check_remote_remove(
    known: ConferenceSourceMap, remove: ConferenceSourceMap
) -> tuple[ConferenceSourceMap, list[str]]:
    """What of `remove` is known (matched by owner and SSRC), plus the groups touching removed
    SSRCs; and a problem for every source that was never signaled."""
    problems: list[str] = []
    removed = ConferenceSourceMap()
    for owner, sset in remove.items():
        stored = known.get(owner)
        by_ssrc = {s.ssrc: s for s in stored.sources}
        gone = {s.ssrc for s in sset.sources}
        unknown = sorted(gone - by_ssrc.keys())
        if unknown:
            problems.append(f"unknown source removed: {owner} never had SSRC(s) {unknown}")
        gone &= by_ssrc.keys()
        listed = set(sset.groups)
        for group in listed - set(stored.groups):
            if not gone.issuperset(group.ssrcs):
                problems.append(f"unknown ssrc-group removed: {owner} {group.semantics} {list(group.ssrcs)}")
        drop = EndpointSourceSet(
            tuple(by_ssrc[s] for s in by_ssrc if s in gone),
            tuple(g for g in stored.groups if g in listed or gone.intersection(g.ssrcs)),
        )
        if drop:
            removed.add(owner, drop)
    return removed, problems


# ---------------------------------------------------------------------------------------------
# The answer


@dataclass(frozen=True, slots=True)
class Codecs:
    """What the simulated browser can receive and send."""

    video: tuple[str, ...] = ("av1", "vp9", "vp8", "h264")
    opus_red: bool = False
    rtx: bool = True

    def accepts(self, media: str, pt: PayloadType, accepted_ids: set[int]) -> bool:
        name = (pt.name or "").lower()
        if media == "audio":
            return name in ("opus", "telephone-event") or (name == "red" and self.opus_red)
        if name == "rtx":
            apt = pt.parameter("apt")
            return self.rtx and apt is not None and apt.isdigit() and int(apt) in accepted_ids
        return name in self.video


def answer_contents(
    offer: JingleIQ,
    local: LocalMedia,
    transport: IceUdpTransport,
    codecs: Codecs,
) -> tuple[tuple[JingleContent, ...], Group, list[str]]:
    """The contents of the session-accept: per offered content the payload types we support
    (offer order), the offered header extensions, our sources and groups, rtcp-mux and our
    transport; the data content carries only the transport with `streams=0`. Also returns the
    BUNDLE group and the problems (no common codec)."""
    problems: list[str] = []
    contents: list[JingleContent] = []
    for content in offer.contents:
        media = content.media
        if media in ("audio", "video") and content.description is not None:
            offered = content.description
            accepted: list[PayloadType] = []
            ids: set[int] = set()
            for pt in sorted(offered.payload_types, key=lambda p: (p.name or "").lower() == "rtx"):
                if codecs.accepts(media, pt, ids):
                    accepted.append(pt)
                    ids.add(pt.id)
            accepted.sort(key=lambda p: [q.id for q in offered.payload_types].index(p.id))
            if not any((p.name or "").lower() not in ("rtx", "telephone-event", "red") for p in accepted):
                problems.append(f"no codec in common for {media}")
            own = [s for s in local.sources.values() if str(s.media) == media]
            elements = [e for s in own for e in s.elements()[0]]
            groups = [g for s in own for g in s.elements()[1]]
            description = RtpDescription(
                media=media,
                payload_types=tuple(accepted),
                header_extensions=offered.header_extensions,
                extmap_allow_mixed=offered.extmap_allow_mixed,
                sources=tuple(elements),
                ssrc_groups=tuple(groups),
                rtcp_mux=True,
            )
            contents.append(
                JingleContent(content.name, "responder", "both", description=description, transport=transport)
            )
        elif media in ("application", "data"):
            offered_map = content.transport.sctpmap if content.transport else None
            port = offered_map.number if offered_map is not None else SCTP_PORT
            data_transport = replace(transport, sctpmap=SctpMap(port, "webrtc-datachannel", 0))
            contents.append(JingleContent(content.name, "responder", None, transport=data_transport))
    return tuple(contents), Group("BUNDLE", tuple(c.name for c in contents)), problems
