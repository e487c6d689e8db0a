"""MUC presence extensions: what the focus publishes in its own presence (versions, conference
properties, bridge-not-available, etherpad) and what it reads from a member's presence
(`MemberPresence`).

Member presence is never refused: a malformed extension is read as absent, because a bad value in
one element must not make the focus lose track of the member. The JSON of `<SourceInfo>` goes
through the bounded decoder (bounded_json.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import children, element, find_child, namespace, qn

from .bounded_json import SOURCE_INFO_MAX_CHARS, JsonContentError, decode_json
from .jingle import StartMuted

NS_FOCUS = "http://jitsi.org/protocol/focus"
NS_JITMEET = "http://jitsi.org/jitmeet"
NS_ETHERPAD = "http://jitsi.org/jitmeet/etherpad"
NS_CAPS = "http://jabber.org/protocol/caps"
NS_NICK = "http://jabber.org/protocol/nick"
NS_CLIENT = "jabber:client"

# Conference property keys (focus presence, docs/jicofo.md §2.7).
SUPPORT_TERMINATE_RESTART = "support-terminate-restart"
VISITORS_ENABLED = "visitors-enabled"
BRIDGE_COUNT = "bridge-count"
AUDIO_LIMIT_REACHED = "audio-limit-reached"
VIDEO_LIMIT_REACHED = "video-limit-reached"
AUDIO_RECORDING_ENABLED = "audio-recording-enabled"
VISITOR_COUNT = "visitor-count"
VISITOR_CODECS = "visitor-codecs"


@dataclass(frozen=True, slots=True)
class Versions:
    """`<versions xmlns='http://jitsi.org/jitmeet'><component name='focus'>1.0-…</component>`."""

    components: Mapping[str, str]

    TAG = qn(NS_JITMEET, "versions")

    @classmethod
    def from_element(cls, el: Element) -> Versions:
        if el.tag != cls.TAG:
            raise ValueError(f"expected {cls.TAG}, got {el.tag!r}")
        components: dict[str, str] = {}
        for component in children(el, NS_JITMEET, "component"):
            name = component.get("name")
            if not name:
                raise ValueError("<component> without a name")
            components[name] = (component.text or "").strip()
        return cls(components)

    def to_element(self) -> Element:
        return element(
            self.TAG,
            None,
            *(
                element(qn(NS_JITMEET, "component"), {"name": name}, text=version)
                for name, version in self.components.items()
            ),
        )


@dataclass(frozen=True, slots=True)
class ConferenceProperties:
    """`<conference-properties xmlns='http://jitsi.org/protocol/focus'>` with `<property key value>`."""

    properties: Mapping[str, str] = field(default_factory=dict)

    TAG = qn(NS_FOCUS, "conference-properties")

    @classmethod
    def from_element(cls, el: Element) -> ConferenceProperties:
        if el.tag != cls.TAG:
            raise ValueError(f"expected {cls.TAG}, got {el.tag!r}")
        properties: dict[str, str] = {}
        for prop in children(el, NS_FOCUS, "property"):
            key = prop.get("key")
            if not key:
                raise ValueError("conference property without a key")
            properties[key] = prop.get("value", "")
        return cls(properties)

    def to_element(self) -> Element:
        return element(
            self.TAG,
            None,
            *(
                element(qn(NS_FOCUS, "property"), {"key": key, "value": value})
                for key, value in self.properties.items()
            ),
        )


BRIDGE_NOT_AVAILABLE = qn(NS_FOCUS, "bridgeNotAvailable")
ETHERPAD = qn(NS_ETHERPAD, "etherpad")


def bridge_not_available() -> Element:
    """Present in the focus presence while no bridge can be selected."""
    return element(BRIDGE_NOT_AVAILABLE)


def etherpad(document_name: str) -> Element:
    return element(ETHERPAD, text=document_name)


# ---------------------------------------------------------------------------------------------
# Member presence


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """One entry of the `<SourceInfo>` JSON: the mute state and video type of a source name."""

    muted: bool
    video_type: str | None = None


@dataclass(frozen=True, slots=True)
class Caps:
    node: str
    ver: str
    hash: str


# More codecs than any client has; a longer list is cut here.
MAX_CODECS = 16

_AUDIO_SOURCE_NAME = re.compile(r".-a\d+\Z")
_VIDEO_SOURCE_NAME = re.compile(r".-v\d+\Z")


@dataclass(frozen=True, slots=True)
class MemberPresence:
    """What the focus reads from a member's MUC presence (the MUC layer tracks role, affiliation
    and real JID). `source_info` is None when the member sent no (readable) `<SourceInfo>`."""

    nick: str | None = None
    stats_id: str | None = None
    region: str | None = None
    caps: Caps | None = None
    features: frozenset[str] = frozenset()
    video_codecs: tuple[str, ...] = ()
    source_info: Mapping[str, SourceInfo] | None = None
    legacy_audio_muted: bool | None = None
    legacy_video_muted: bool | None = None
    diarize: bool = False
    start_muted: StartMuted | None = None

    @property
    def audio_muted(self) -> bool:
        """Muted unless some audio source is unmuted (legacy `<audiomuted>` without SourceInfo)."""
        return self._muted(_AUDIO_SOURCE_NAME, self.legacy_audio_muted)

    @property
    def video_muted(self) -> bool:
        return self._muted(_VIDEO_SOURCE_NAME, self.legacy_video_muted)

    def _muted(self, name_pattern: re.Pattern[str], legacy: bool | None) -> bool:
        if self.source_info is None:
            return True if legacy is None else legacy
        return all(
            info.muted for name, info in self.source_info.items() if name_pattern.search(name)
        )

    @classmethod
    def from_element(cls, presence: Element) -> MemberPresence:
        stanza_ns = namespace(presence.tag) or NS_CLIENT

        def text_of(local: str, ns: str = stanza_ns) -> str | None:
            child = find_child(presence, ns, local)
            if child is None or child.text is None:
                return None
            return child.text.strip() or None

        features_el = find_child(presence, stanza_ns, "features")
        features = frozenset(
            var
            for feature in (children(features_el, stanza_ns, "feature") if features_el is not None else ())
            if (var := feature.get("var"))
        )
        start_muted_el = find_child(presence, StartMuted.NS, "startmuted")
        start_muted = None
        if start_muted_el is not None:
            try:
                start_muted = StartMuted.from_element(start_muted_el)
            except ValueError:
                start_muted = None
        return cls(
            nick=text_of("nick", NS_NICK),
            stats_id=text_of("stats-id"),
            region=text_of("jitsi_participant_region"),
            caps=_read_caps(presence),
            features=features,
            video_codecs=_read_codecs(
                text_of("jitsi_participant_codecList"), text_of("jitsi_participant_codecType")
            ),
            source_info=_read_source_info(text_of("SourceInfo")),
            legacy_audio_muted=_read_bool(text_of("audiomuted")),
            legacy_video_muted=_read_bool(text_of("videomuted")),
            diarize=_read_bool(text_of("jitsi_participant_diarize")) or False,
            start_muted=start_muted,
        )


def _read_caps(presence: Element) -> Caps | None:
    c = find_child(presence, NS_CAPS, "c")
    if c is None:
        return None
    node, ver, hash_name = c.get("node"), c.get("ver"), c.get("hash")
    if not node or not ver or not hash_name:
        return None
    return Caps(node, ver, hash_name)


def _read_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.lower() == "true"


def _read_codecs(codec_list: str | None, legacy_codec_type: str | None) -> tuple[str, ...]:
    """The member's video codec preference, lowercased; VP8 is always supported, so it is
    appended when missing."""
    raw = codec_list if codec_list is not None else legacy_codec_type
    if raw is None:
        return ()
    codecs = [c.strip().lower() for c in raw.split(",", MAX_CODECS)[:MAX_CODECS] if c.strip()]
    codecs = list(dict.fromkeys(codecs))
    if "vp8" not in codecs:
        codecs.append("vp8")
    return tuple(codecs)


def _read_source_info(text: str | None) -> Mapping[str, SourceInfo] | None:
    if text is None:
        return None
    try:
        document = decode_json(text, max_chars=SOURCE_INFO_MAX_CHARS)
    except JsonContentError:
        return None
    if not isinstance(document, dict):
        return None
    result: dict[str, SourceInfo] = {}
    for name, info in document.items():
        if not isinstance(info, dict):
            continue
        video_type = info.get("videoType")
        result[name] = SourceInfo(
            muted=info.get("muted") is True,
            video_type=video_type.lower() if isinstance(video_type, str) else None,
        )
    return result
