"""Who may mute whom, and what the bridge is told: the decision behind the mute IQ, as a pure
function (upstream JitsiMeetConferenceImpl.handleMuteRequest, docs/jicofo.md §1.8 row 72).

The rules, in upstream's order:
1. the requester must be a participant of the conference (else ERROR);
2. only a moderator mutes someone else (else NOT_ALLOWED);
3. the target must be a participant (else ERROR);
4. nobody unmutes someone else, moderators included (NOT_ALLOWED); a member unmutes itself
   unless A/V moderation forbids it (moderators are exempt, as are whitelisted members);
5. Jibri, a Jigasi without audio-mute support and visitors are never force-muted (NOT_ALLOWED),
   even at their own request;
6. otherwise SUCCESS, and the member's force-mute state on the bridge becomes "not allowed to
   unmute under A/V moderation" (upstream since its change #1235): a mute does not force-mute
   the bridge by itself; only A/V moderation does. Audio looks at audio; video and desktop
   share the bridge's video flag, which is forced only when neither may be unmuted.

A/V moderation is a plug-in: anything with `allowed_to_unmute(nick, media)`. A conference's is
`av_moderation.AvModerationState` (the per-media enabled flag and whitelist from the
av_moderation component's messages; moderators, Jibri, Jigasi and visitors count as allowed);
AV_MODERATION_OFF, where everyone may unmute, is the default for a bare decision. The bridge
flag asks the A/V-moderation state alone, as upstream.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

MEDIA_TYPES = ("audio", "video", "desktop")


class MuteResult(enum.Enum):
    SUCCESS = "success"
    NOT_ALLOWED = "not-allowed"  # answered not-allowed
    ERROR = "error"  # answered internal-server-error, as upstream


class AvModeration(Protocol):
    def allowed_to_unmute(self, nick: str, media: str) -> bool:
        """May member `nick` unmute `media` (audio / video / desktop) by itself?"""
        ...


class _AvModerationOff:
    """No A/V moderation for any media type: everyone may unmute."""

    def allowed_to_unmute(self, nick: str, media: str) -> bool:
        return True


AV_MODERATION_OFF: AvModeration = _AvModerationOff()


@dataclass(frozen=True, slots=True)
class MuteMember:
    """What the decision needs to know of a member."""

    nick: str
    moderator: bool = False  # MUC role moderator, or affiliation owner / admin
    visitor: bool = False
    jibri: bool = False
    jigasi: bool = False
    audio_mute_support: bool = False  # a Jigasi that can be force-muted (disco feature)

    @property
    def never_force_muted(self) -> bool:
        return self.jibri or (self.jigasi and not self.audio_mute_support) or self.visitor


@dataclass(frozen=True, slots=True)
class MuteDecision:
    result: MuteResult
    reason: str
    # On success: the bridge's force-mute flag to set ("audio" or "video") and its value.
    bridge_media: str | None = None
    bridge_force_mute: bool = False


def decide_mute(
    muter: MuteMember | None,
    target: MuteMember | None,
    mute: bool,
    media: str,
    av_moderation: AvModeration = AV_MODERATION_OFF,
) -> MuteDecision:
    """The answer to "`muter` asks to (un)mute `target`'s `media`" (None: not a participant)."""
    if media not in MEDIA_TYPES:
        raise ValueError(f"unknown media type {media!r}")
    if muter is None:
        return MuteDecision(MuteResult.ERROR, "the requester is not a participant")
    remote = target is None or target.nick != muter.nick
    if remote and not muter.moderator:
        return MuteDecision(MuteResult.NOT_ALLOWED, "only moderators mute others")
    if target is None:
        return MuteDecision(MuteResult.ERROR, "the target is not a participant")
    if not mute:
        if remote:
            return MuteDecision(MuteResult.NOT_ALLOWED, "nobody unmutes someone else")
        if not target.moderator and not av_moderation.allowed_to_unmute(target.nick, media):
            return MuteDecision(MuteResult.NOT_ALLOWED, "A/V moderation does not allow the unmute")
    if target.never_force_muted:
        return MuteDecision(MuteResult.NOT_ALLOWED, "this member is never force-muted")
    if media == "audio":
        return MuteDecision(MuteResult.SUCCESS, "ok", "audio",
                            not av_moderation.allowed_to_unmute(target.nick, "audio"))
    forced = not av_moderation.allowed_to_unmute(target.nick, "video") \
        and not av_moderation.allowed_to_unmute(target.nick, "desktop")
    return MuteDecision(MuteResult.SUCCESS, "ok", "video", forced)


def start_muted_flags(
    position: int,
    start_audio_muted: int | None,
    start_video_muted: int | None,
    max_audio_senders: int,
    max_video_senders: int,
) -> tuple[bool, bool]:
    """Start-muted flags for the `position`-th participant invited (1-based; upstream counts the
    conference's participants when it invites one): muted beyond min(the conference request's
    startAudioMuted / startVideoMuted, max-audio-senders / max-video-senders). Room metadata's
    startMuted and A/V moderation add to this later."""
    audio_limit = max_audio_senders if start_audio_muted is None else min(max_audio_senders,
                                                                         start_audio_muted)
    video_limit = max_video_senders if start_video_muted is None else min(max_video_senders,
                                                                         start_video_muted)
    return position > audio_limit, position > video_limit
