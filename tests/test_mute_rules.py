"""The mute decision (upstream's handleMuteRequest rules) and start muted, table-driven; the
`<mute>` element both ways."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from jicofo.conference.mute import (
    MuteDecision,
    MuteMember,
    MuteResult,
    decide_mute,
    start_muted_flags,
)
from jicofo.xmlns.mute import NS_MUTE_AUDIO, NS_MUTE_DESKTOP, MuteIQ, MuteParseError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.xml import parse_fragment, serialize

MOD = MuteMember("mod", moderator=True)
ANA = MuteMember("ana")
BO = MuteMember("bo")
JIBRI = MuteMember("jibri", jibri=True)
JIGASI = MuteMember("jigasi", jigasi=True)
JIGASI_MUTABLE = MuteMember("jigasi2", jigasi=True, audio_mute_support=True)
VISITOR = MuteMember("vis", visitor=True)
MOD_JIBRI = MuteMember("modjibri", moderator=True, jibri=True)


@dataclass(frozen=True)
class Moderated:
    """A/V moderation on for `media`, with a whitelist (what the av_moderation component's
    messages will fill in)."""

    media: frozenset[str]
    whitelist: frozenset[str] = frozenset()

    def allowed_to_unmute(self, nick: str, media: str) -> bool:
        return media not in self.media or nick in self.whitelist


OFF = Moderated(frozenset())
AUDIO_ON = Moderated(frozenset({"audio"}))
AUDIO_ON_ANA_OK = Moderated(frozenset({"audio"}), frozenset({"ana"}))
VIDEO_ON = Moderated(frozenset({"video"}))
VIDEO_DESKTOP_ON = Moderated(frozenset({"video", "desktop"}))

OK, NO, ERR = MuteResult.SUCCESS, MuteResult.NOT_ALLOWED, MuteResult.ERROR

CASES = [
    # muter, target, mute, media, A/V moderation, result, bridge flag (media, value)
    ("moderator mutes anyone", MOD, ANA, True, "audio", OFF, OK, ("audio", False)),
    ("moderator mutes video", MOD, ANA, True, "video", OFF, OK, ("video", False)),
    ("desktop maps to the video flag", MOD, ANA, True, "desktop", OFF, OK, ("video", False)),
    ("anyone mutes itself", ANA, ANA, True, "audio", OFF, OK, ("audio", False)),
    ("self unmute, moderation off", ANA, ANA, False, "audio", OFF, OK, ("audio", False)),
    ("participant mutes another", ANA, BO, True, "audio", OFF, NO, None),
    ("participant mutes a non-member", ANA, None, True, "audio", OFF, NO, None),
    ("moderator unmutes another", MOD, ANA, False, "audio", OFF, NO, None),
    ("moderator unmutes another, moderated", MOD, ANA, False, "audio", AUDIO_ON, NO, None),
    ("self unmute blocked by A/V moderation", ANA, ANA, False, "audio", AUDIO_ON, NO, None),
    ("self unmute, whitelisted", ANA, ANA, False, "audio", AUDIO_ON_ANA_OK, OK, ("audio", False)),
    ("self unmute, moderator exempt", MOD, MOD, False, "audio", AUDIO_ON, OK, ("audio", True)),
    ("self unmute of video, audio moderated", ANA, ANA, False, "video", AUDIO_ON, OK, ("video", False)),
    ("mute under A/V moderation forces", MOD, ANA, True, "audio", AUDIO_ON, OK, ("audio", True)),
    ("whitelisted: not forced", MOD, ANA, True, "audio", AUDIO_ON_ANA_OK, OK, ("audio", False)),
    ("video forced only if desktop too", MOD, ANA, True, "video", VIDEO_ON, OK, ("video", False)),
    ("video and desktop moderated", MOD, ANA, True, "desktop", VIDEO_DESKTOP_ON, OK, ("video", True)),
    ("jibri never force-muted", MOD, JIBRI, True, "audio", OFF, NO, None),
    ("jibri self mute refused", JIBRI, JIBRI, True, "audio", OFF, NO, None),
    ("moderator jibri still refused", MOD_JIBRI, MOD_JIBRI, True, "audio", OFF, NO, None),
    ("jigasi without audio-mute", MOD, JIGASI, True, "audio", OFF, NO, None),
    ("jigasi with audio-mute", MOD, JIGASI_MUTABLE, True, "audio", OFF, OK, ("audio", False)),
    ("visitor never force-muted", MOD, VISITOR, True, "audio", OFF, NO, None),
    ("requester not a participant", None, ANA, True, "audio", OFF, ERR, None),
    ("target not a participant", MOD, None, True, "audio", OFF, ERR, None),
]


@pytest.mark.parametrize(("name", "muter", "target", "mute", "media", "av", "result", "bridge"), CASES,
                         ids=[c[0] for c in CASES])
def test_mute_decision(name: str, muter: MuteMember | None, target: MuteMember | None, mute: bool,
                       media: str, av: Moderated, result: MuteResult,
                       bridge: tuple[str, bool] | None) -> None:
    decision = decide_mute(muter, target, mute, media, av)
    assert decision.result is result, decision.reason
    if bridge is None:
        assert decision.bridge_media is None
    else:
        assert (decision.bridge_media, decision.bridge_force_mute) == bridge


def test_default_is_moderation_off() -> None:
    assert decide_mute(ANA, ANA, False, "audio") == MuteDecision(OK, "ok", "audio", False)
    with pytest.raises(ValueError):
        decide_mute(MOD, ANA, True, "screen")


@pytest.mark.parametrize(("position", "audio", "video", "max_audio", "max_video", "expected"), [
    (1, None, None, 999999, 999999, (False, False)),
    (1, 1, 1, 999999, 999999, (False, False)),
    (2, 1, None, 999999, 999999, (True, False)),
    (3, 1, 2, 999999, 999999, (True, True)),
    (2, 1, 2, 999999, 999999, (True, False)),
    (2, 0, 0, 999999, 999999, (True, True)),  # startAudioMuted=0: everyone
    (3, 10, None, 2, 999999, (True, False)),  # the sender limit is lower
    (3, None, None, 2, 5, (True, False)),
])
def test_start_muted_flags(position: int, audio: int | None, video: int | None, max_audio: int,
                           max_video: int, expected: tuple[bool, bool]) -> None:
    assert start_muted_flags(position, audio, video, max_audio, max_video) == expected


def test_mute_element_round_trip() -> None:
    el = parse_fragment(f"<mute xmlns='{NS_MUTE_AUDIO}' jid='room@conference.x/ab12'> true </mute>")
    request = MuteIQ.from_element(el)
    assert request == MuteIQ("audio", True, JID.parse("room@conference.x/ab12"))
    notify = MuteIQ("desktop", True, actor=JID.parse("room@conference.x/mod"))
    again = MuteIQ.from_element(parse_fragment(serialize(notify.to_element())))
    assert again == notify
    assert again.to_element().tag == f"{{{NS_MUTE_DESKTOP}}}mute"


@pytest.mark.parametrize("xml", [
    f"<mute xmlns='{NS_MUTE_AUDIO}' jid='a@b/c'>maybe</mute>",
    f"<mute xmlns='{NS_MUTE_AUDIO}' jid='@@'>true</mute>",
    f"<mute xmlns='{NS_MUTE_AUDIO}' jid='a@b/c'><x/></mute>",
    "<mute xmlns='urn:other'>true</mute>",
])
def test_malformed_mute_elements(xml: str) -> None:
    with pytest.raises(MuteParseError):
        MuteIQ.from_element(parse_fragment(xml))


def test_missing_fields_read_as_none() -> None:
    request = MuteIQ.from_element(parse_fragment(f"<mute xmlns='{NS_MUTE_AUDIO}'/>"))
    assert request.mute is None and request.jid is None
