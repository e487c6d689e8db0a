"""The component `<json-message>` parser (A/V moderation, room metadata: bounds, bad input) and
the A/V-moderation state's decisions, table-driven."""

from __future__ import annotations

import json

import pytest

from jicofo.conference.av_moderation import AvModerationState
from jicofo.xmlns.component_message import (
    COMPONENT_MESSAGE_MAX_CHARS,
    JSON_MESSAGE,
    AvModerationMessage,
    ComponentMessageError,
    RoomMetadataMessage,
    parse_component_message,
)
from jicofo.xmpp.jid import JID
from jicofo.xmpp.xml import element

ROOM = "myroom@conference.meet.example.com"


def json_message(document: object, room: str | None = None) -> object:
    text = document if isinstance(document, str) else json.dumps(document)
    return element(JSON_MESSAGE, {"room": room} if room else None, text=text)


def parse(document: object, room: str | None = None):  # type: ignore[no-untyped-def]
    return parse_component_message(json_message(document, room))  # type: ignore[arg-type]


def test_reference_av_moderation_message() -> None:
    # docs/jicofo.md §7.20
    parsed = parse({"type": "av_moderation", "room": ROOM, "enabled": True, "mediaType": "audio",
                    "actor": f"{ROOM}/mod1", "whitelists": {"audio": [f"{ROOM}/ab12cd34"]}})
    assert parsed == AvModerationMessage(JID.parse(ROOM), True, "audio", f"{ROOM}/mod1",
                                         {"audio": (f"{ROOM}/ab12cd34",)})


def test_reference_room_metadata_message() -> None:
    parsed = parse({"type": "room_metadata", "metadata": {
        "startMuted": {"audio": True, "video": False}, "lobbyEnabled": False,
        "visitors": {"live": True}, "visitorsEnabled": True, "participantsSoftLimit": 100,
        "moderators": ["user-123"], "participants": ["user-456"],
        "recording": {"isTranscribingEnabled": True}, "asyncTranscription": True,
        "transcription": {"urlParams": {"lang": "en"}, "httpHeaders": {"X-Tenant": "t1"}},
        "audioTranslationRequests": {"ab12cd34": ["es", "de"]}, "somethingNew": {"x": 1}}}, room=ROOM)
    assert isinstance(parsed, RoomMetadataMessage)
    assert parsed.room == JID.parse(ROOM)
    m = parsed.metadata
    assert (m.start_muted_audio, m.start_muted_video) == (True, False)
    assert (m.moderators, m.participants) == (("user-123",), ("user-456",))
    assert (m.visitors_enabled, m.visitors_live, m.participants_soft_limit) == (True, True, 100)
    assert (m.transcribing_enabled, m.async_transcription, m.lobby_enabled) == (True, True, False)
    assert m.transcription_http_headers == {"X-Tenant": "t1"}
    assert m.audio_translation_requests == {"ab12cd34": ("es", "de")}
    assert m.to_json()["transcription_http_headers"] == 1  # the debug JSON never shows values


def test_empty_metadata_and_other_types() -> None:
    parsed = parse({"type": "room_metadata", "metadata": {}}, room=ROOM)
    assert isinstance(parsed, RoomMetadataMessage)
    assert parsed.metadata.moderators is None and not parsed.metadata.start_muted_audio
    assert parse({"type": "breakout_rooms", "rooms": {}}) is None


@pytest.mark.parametrize("document, room", [
    ("not json", None),
    ("[1, 2]", None),
    ({"type": "av_moderation", "enabled": True, "mediaType": "audio"}, None),  # no room
    ({"type": "av_moderation", "room": f"{ROOM}/nick", "enabled": True, "mediaType": "audio"}, None),
    ({"type": "av_moderation", "room": "@@", "enabled": True, "mediaType": "audio"}, None),
    ({"type": "av_moderation", "room": ROOM, "enabled": "yes", "mediaType": "audio"}, None),
    ({"type": "av_moderation", "room": ROOM, "enabled": True, "mediaType": "screen"}, None),
    ({"type": "av_moderation", "room": ROOM, "enabled": True}, None),
    ({"type": "av_moderation", "room": ROOM}, None),  # neither enabled nor whitelists
    ({"type": "av_moderation", "room": ROOM, "whitelists": ["a"]}, None),
    ({"type": "av_moderation", "room": ROOM, "whitelists": {"smell": ["a"]}}, None),
    ({"type": "av_moderation", "room": ROOM, "whitelists": {"audio": [1]}}, None),
    ({"type": "av_moderation", "room": ROOM, "whitelists": {"audio": "a"}}, None),
    ({"type": "room_metadata", "metadata": {}}, None),  # the room is the element's attribute
    ({"type": "room_metadata", "room": ROOM, "metadata": {}}, None),
    ({"type": "room_metadata", "metadata": []}, ROOM),
    ({"type": "room_metadata", "metadata": {"startMuted": {"audio": 1}}}, ROOM),
    ({"type": "room_metadata", "metadata": {"participantsSoftLimit": "30"}}, ROOM),
    ({"type": "room_metadata", "metadata": {"participantsSoftLimit": True}}, ROOM),
    ({"type": "room_metadata", "metadata": {"moderators": "user-1"}}, ROOM),
    ({"type": "room_metadata", "metadata": {"transcription": {"httpHeaders": {"a": 1}}}}, ROOM),
    ({"type": "room_metadata", "metadata": {"visitors": True}}, ROOM),
])
def test_bad_input_is_refused(document: object, room: str | None) -> None:
    with pytest.raises(ComponentMessageError):
        parse(document, room)


def test_bounds() -> None:
    # Size: a whitelist just under the bound is read, one over it refused.
    entry = f"{ROOM}/abcdefgh"
    count = COMPONENT_MESSAGE_MAX_CHARS // (len(entry) + 4)
    small = {"type": "av_moderation", "room": ROOM, "whitelists": {"audio": [entry] * (count - 50)}}
    assert len(json.dumps(small)) <= COMPONENT_MESSAGE_MAX_CHARS
    assert isinstance(parse(small), AvModerationMessage)
    big = {"type": "av_moderation", "room": ROOM, "whitelists": {"audio": [entry] * (count + 50)}}
    with pytest.raises(ComponentMessageError):
        parse(big)
    # Depth: nesting beyond the bound is refused before decoding, wherever it is.
    deep = '{"type":"room_metadata","metadata":{"x":' + "[" * 20 + "]" * 20 + "}}"
    with pytest.raises(ComponentMessageError):
        parse(deep, ROOM)
    with pytest.raises(ComponentMessageError):
        parse('{"type":"av_moderation","room":"' + ROOM + '","enabled":true,"mediaType":"audio",'
              '"n":' + "9" * 40 + "}")


# ----- the state ------------------------------------------------------------------------------

def msg(**fields: object) -> AvModerationMessage:
    return AvModerationMessage(JID.parse(ROOM), **fields)  # type: ignore[arg-type]


ON_AUDIO = msg(enabled=True, media="audio")
OFF_AUDIO = msg(enabled=False, media="audio")
ON_VIDEO = msg(enabled=True, media="video")
ON_DESKTOP = msg(enabled=True, media="desktop")
WHITELIST_ANA = msg(whitelists={"audio": (f"{ROOM}/ana",), "video": (f"{ROOM}/ana",)})


@pytest.mark.parametrize("messages, nick, audio_allowed, flags", [
    ([], "ana", True, (False, False)),
    ([ON_AUDIO], "ana", False, (True, False)),
    ([ON_AUDIO], "mod", True, (False, False)),  # moderators are exempt
    ([ON_AUDIO, WHITELIST_ANA], "ana", True, (False, False)),
    ([WHITELIST_ANA, ON_AUDIO], "ana", True, (False, False)),  # a whitelist set before counts
    ([ON_AUDIO, WHITELIST_ANA], "bo", False, (True, False)),
    ([ON_AUDIO, OFF_AUDIO], "ana", True, (False, False)),
    ([ON_AUDIO, WHITELIST_ANA, msg(whitelists={"audio": ()})], "ana", False, (True, False)),
    # Video and desktop share the bridge's video flag: forced only when neither may unmute.
    ([ON_VIDEO], "ana", True, (False, False)),
    ([ON_VIDEO, ON_DESKTOP], "ana", True, (False, True)),
    ([ON_VIDEO, ON_DESKTOP, WHITELIST_ANA], "ana", True, (False, False)),
    ([ON_VIDEO, ON_DESKTOP], "bo", True, (False, True)),
])
def test_state(messages: list[AvModerationMessage], nick: str, audio_allowed: bool,
               flags: tuple[bool, bool]) -> None:
    state = AvModerationState(ROOM, exempt=lambda who: who == "mod")
    for message in messages:
        state.apply(message)
    assert state.allowed_to_unmute(nick, "audio") is audio_allowed
    assert state.bridge_flags(nick) == flags


def test_changes_reported() -> None:
    state = AvModerationState(ROOM)
    first = state.apply(msg(enabled=True, media="audio", actor=f"{ROOM}/mod"))
    assert (first.enabled, first.changed) == (("audio",), True)
    again = state.apply(ON_AUDIO)
    assert (again.enabled, again.changed) == ((), False)  # nobody is told twice
    assert state.apply(WHITELIST_ANA).changed
    assert not state.apply(WHITELIST_ANA).changed
    off = state.apply(OFF_AUDIO)
    assert (off.enabled, off.changed) == ((), True)
    assert state.to_json()["audio"] == {"enabled": False, "whitelist": [f"{ROOM}/ana"]}
