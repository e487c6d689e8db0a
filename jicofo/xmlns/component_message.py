"""Messages from Jitsi's Prosody components to the focus (docs/jicofo.md §1.8 rows 73-74,
§7.20): a normal `<message>` carrying `<json-message xmlns='http://jitsi.org/jitmeet'>`, whose
JSON text has a `type`:

- `av_moderation` (mod_av_moderation_component): `{"type":"av_moderation","room":ROOM,
  "enabled":bool,"mediaType":"audio|video|desktop","actor":OCCUPANT}` switches one media type,
  `{"type":"av_moderation","room":ROOM,"whitelists":{"audio":[OCCUPANT...],...}}` replaces the
  whitelists it names (upstream AvModerationHandler reads both forms, and both fields when one
  message has them). The room is in the JSON.
- `room_metadata` (mod_room_metadata_component): `<json-message room=ROOM>{"type":
  "room_metadata","metadata":{...}}`. The room is the element's `room` attribute; the fields
  read are upstream RoomMetadata's (startMuted, moderators, participants, visitorsEnabled,
  participantsSoftLimit, lobbyEnabled, visitors.live, the recording/transcription flags).

Parsing is typed and strict about the fields it reads (a wrong type refuses the message, as
upstream's parser throws), lenient about fields it does not know. No I/O, no conference logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.xml import qn

from .bounded_json import decode_json

NS_JITMEET = "http://jitsi.org/jitmeet"
JSON_MESSAGE = qn(NS_JITMEET, "json-message")

# One bound for both messages. The biggest is room metadata with its `participants` and
# `moderators` lists of user ids (a 1,000-name allow-list of ~40-character ids is ~40 KB) or an
# A/V-moderation whitelist of occupant JIDs (~60 characters each: 1,000 make ~60 KB). 128 KiB
# holds either with room to spare, and stays a quarter of Prosody's 512 KiB component stanza
# limit, so decoding one costs little.
COMPONENT_MESSAGE_MAX_CHARS = 128 * 1024
# The deepest field read is metadata.transcription.httpHeaders (four levels: object, metadata,
# transcription, httpHeaders); 8 leaves room for what the components add later.
COMPONENT_MESSAGE_MAX_DEPTH = 8
# Entries of one whitelist or one metadata list, and of one string map.
MAX_LIST_ENTRIES = 10_000
MAX_STRING = 3 * 1024 + 2  # a full JID (RFC 7622: three parts of at most 1023 bytes)

AV_MEDIA_TYPES = ("audio", "video", "desktop")


class ComponentMessageError(ValueError):
    """A component message that cannot be read: the message is ignored (logged once)."""


@dataclass(frozen=True, slots=True)
class AvModerationMessage:
    room: JID
    # Set when the message switches moderation for `media` (then both are present).
    enabled: bool | None = None
    media: str | None = None
    actor: str | None = None
    # Media type -> the occupant JIDs allowed to unmute it (only the media types named).
    whitelists: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RoomMetadata:
    """The fields of a room's metadata the focus keeps (upstream RoomMetadata.Metadata)."""

    start_muted_audio: bool = False
    start_muted_video: bool = False
    moderators: tuple[str, ...] | None = None  # None: no list in the metadata
    participants: tuple[str, ...] | None = None
    visitors_enabled: bool | None = None
    visitors_live: bool | None = None
    participants_soft_limit: int | None = None
    lobby_enabled: bool = False
    transcribing_enabled: bool = False  # recording.isTranscribingEnabled
    async_transcription: bool = False
    transcription_url_params: dict[str, str] = field(default_factory=dict)
    transcription_http_headers: dict[str, str] = field(default_factory=dict)
    translation_http_headers: dict[str, str] = field(default_factory=dict)
    audio_translation_requests: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "start_muted": {"audio": self.start_muted_audio, "video": self.start_muted_video},
            "moderators": list(self.moderators) if self.moderators is not None else None,
            "participants": list(self.participants) if self.participants is not None else None,
            "visitors_enabled": self.visitors_enabled,
            "visitors_live": self.visitors_live,
            "participants_soft_limit": self.participants_soft_limit,
            "lobby_enabled": self.lobby_enabled,
            "transcribing_enabled": self.transcribing_enabled,
            "async_transcription": self.async_transcription,
            "transcription_url_params": len(self.transcription_url_params),
            "transcription_http_headers": len(self.transcription_http_headers),  # never values
            "translation_http_headers": len(self.translation_http_headers),
            "audio_translation_requests": {k: list(v) for k, v in self.audio_translation_requests.items()},
        }


@dataclass(frozen=True, slots=True)
class RoomMetadataMessage:
    room: JID
    metadata: RoomMetadata


ComponentMessage = AvModerationMessage | RoomMetadataMessage


def json_message_of(message: Element) -> Element | None:
    """The `<json-message>` child of a `<message>`, if any."""
    return message.find(JSON_MESSAGE)


def parse_component_message(json_message: Element) -> ComponentMessage | None:
    """Read a component's `<json-message>`. None: a type the focus does not handle. Raises
    ComponentMessageError for anything malformed (too big or deep, a field of the wrong type)."""
    text = json_message.text or ""
    try:
        document = decode_json(text, max_chars=COMPONENT_MESSAGE_MAX_CHARS,
                               max_depth=COMPONENT_MESSAGE_MAX_DEPTH)
    except ValueError as exc:
        raise ComponentMessageError(str(exc)) from None
    if not isinstance(document, dict):
        raise ComponentMessageError("the JSON is not an object")
    kind = document.get("type")
    if kind == "av_moderation":
        return _av_moderation(document)
    if kind == "room_metadata":
        return RoomMetadataMessage(_room(json_message.get("room")), _metadata(document.get("metadata")))
    return None


def _room(value: object) -> JID:
    if not isinstance(value, str) or not value:
        raise ComponentMessageError("no room")
    try:
        room = JID.parse(value)
    except InvalidJID as exc:
        raise ComponentMessageError(f"invalid room: {exc}") from None
    if room.local is None or room.resource is not None:
        raise ComponentMessageError("the room is not a bare room JID")
    return room


def _av_moderation(document: dict[str, Any]) -> AvModerationMessage:
    room = _room(document.get("room"))
    enabled = document.get("enabled")
    media = actor = None
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise ComponentMessageError("enabled is not a boolean")
        media = document.get("mediaType")
        if media not in AV_MEDIA_TYPES:
            raise ComponentMessageError("mediaType is not audio, video or desktop")
        raw_actor = document.get("actor")
        actor = _string(raw_actor, "actor") if raw_actor is not None else None
    whitelists: dict[str, tuple[str, ...]] = {}
    raw = document.get("whitelists")
    if raw is not None:
        if not isinstance(raw, dict):
            raise ComponentMessageError("whitelists is not an object")
        for key, entries in raw.items():
            if key not in AV_MEDIA_TYPES:
                raise ComponentMessageError("a whitelist for an unknown media type")
            whitelists[key] = _strings(entries, "whitelist")
    if enabled is None and raw is None:
        raise ComponentMessageError("neither enabled nor whitelists")
    return AvModerationMessage(room, enabled, media, actor, whitelists)


def _metadata(value: object) -> RoomMetadata:
    if not isinstance(value, dict):
        raise ComponentMessageError("metadata is not an object")
    start_muted = _object(value.get("startMuted"), "startMuted")
    visitors = _object(value.get("visitors"), "visitors")
    recording = _object(value.get("recording"), "recording")
    transcription = _object(value.get("transcription"), "transcription")
    translation = _object(value.get("translation"), "translation")
    soft_limit = value.get("participantsSoftLimit")
    if soft_limit is not None and (isinstance(soft_limit, bool) or not isinstance(soft_limit, int)):
        raise ComponentMessageError("participantsSoftLimit is not an integer")
    requests = _object(value.get("audioTranslationRequests"), "audioTranslationRequests")
    if len(requests) > MAX_LIST_ENTRIES:
        raise ComponentMessageError("too many audioTranslationRequests")
    return RoomMetadata(
        start_muted_audio=_bool(start_muted.get("audio"), "startMuted.audio") or False,
        start_muted_video=_bool(start_muted.get("video"), "startMuted.video") or False,
        moderators=_strings(value["moderators"], "moderators") if value.get("moderators") is not None
        else None,
        participants=_strings(value["participants"], "participants")
        if value.get("participants") is not None else None,
        visitors_enabled=_bool(value.get("visitorsEnabled"), "visitorsEnabled"),
        visitors_live=_bool(visitors.get("live"), "visitors.live"),
        participants_soft_limit=soft_limit,
        lobby_enabled=_bool(value.get("lobbyEnabled"), "lobbyEnabled") or False,
        transcribing_enabled=_bool(recording.get("isTranscribingEnabled"),
                                   "recording.isTranscribingEnabled") or False,
        async_transcription=_bool(value.get("asyncTranscription"), "asyncTranscription") or False,
        transcription_url_params=_string_map(transcription.get("urlParams"), "transcription.urlParams"),
        transcription_http_headers=_string_map(transcription.get("httpHeaders"),
                                               "transcription.httpHeaders"),
        translation_http_headers=_string_map(translation.get("httpHeaders"), "translation.httpHeaders"),
        audio_translation_requests={_string(k, "endpoint"): _strings(v, "languages")
                                    for k, v in requests.items()},
    )


def _object(value: object, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ComponentMessageError(f"{what} is not an object")
    return value


def _bool(value: object, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ComponentMessageError(f"{what} is not a boolean")


def _string(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_STRING:
        raise ComponentMessageError(f"{what} is not a string (or too long)")
    return value


def _strings(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ComponentMessageError(f"{what} is not a list")
    if len(value) > MAX_LIST_ENTRIES:
        raise ComponentMessageError(f"{what} has more than {MAX_LIST_ENTRIES} entries")
    return tuple(_string(entry, what) for entry in value)


def _string_map(value: object, what: str) -> dict[str, str]:
    mapping = _object(value, what)
    if len(mapping) > MAX_LIST_ENTRIES:
        raise ComponentMessageError(f"{what} has too many entries")
    return {_string(k, what): _string(v, what) for k, v in mapping.items()}
