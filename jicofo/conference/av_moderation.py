"""A conference's A/V-moderation state, kept from the av_moderation component's messages
(docs/jicofo.md §1.8 row 73; upstream AvModerationHandler and ChatRoom's per-media
AvModeration): per media type (audio, video, desktop) an enabled flag and a whitelist of occupant
JIDs. It is the `AvModeration` plug-in of mute.py.

A member may unmute `media` by itself when moderation of `media` is off, when its occupant JID
is whitelisted, or when it is exempt (a moderator; and Jibri, Jigasi and visitors, who are never
force-muted). What the bridge is told follows from that, for every member at once: force-mute
audio when it may not unmute audio; force-mute video when it may unmute neither video nor
desktop (they share the bridge's video flag, as in mute.py). `bridge_flags` is that rule; the
conference applies it to everyone concerned after each message (the Colibri2 session sends only
changes), so enabling force-mutes, and disabling or whitelisting lifts the force-mute, at once.
Upstream force-mutes on enable too but lifts a force-mute only when the member next unmutes
itself; lifting at once is what the bridge state "not allowed to unmute" means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from jicofo.xmlns.component_message import AV_MEDIA_TYPES, AvModerationMessage


@dataclass(frozen=True, slots=True)
class AvModerationChange:
    """What one message changed: media types newly enabled (the conference tells the members
    it force-mutes), and whether anything changed at all."""

    enabled: tuple[str, ...] = ()
    changed: bool = False


@dataclass
class _Media:
    enabled: bool = False
    whitelist: frozenset[str] = frozenset()


@dataclass
class AvModerationState:
    room: str  # the room's bare JID: occupant JIDs are `room/nick`
    # A member (by nick) that A/V moderation never holds back (moderators, Jibri, Jigasi,
    # visitors). Asked at each decision, so role changes count at once.
    exempt: Callable[[str], bool] = lambda nick: False
    _media: dict[str, _Media] = field(default_factory=lambda: {m: _Media() for m in AV_MEDIA_TYPES})

    def enabled(self, media: str) -> bool:
        return self._media[media].enabled

    @property
    def active(self) -> bool:
        return any(m.enabled for m in self._media.values())

    def allowed_to_unmute(self, nick: str, media: str) -> bool:
        state = self._media[media]
        if not state.enabled or self.exempt(nick):
            return True
        return f"{self.room}/{nick}" in state.whitelist

    def bridge_flags(self, nick: str) -> tuple[bool, bool]:
        """(force-mute audio, force-mute video) for member `nick`."""
        audio = not self.allowed_to_unmute(nick, "audio")
        video = not self.allowed_to_unmute(nick, "video") and not self.allowed_to_unmute(nick, "desktop")
        return audio, video

    def apply(self, message: AvModerationMessage) -> AvModerationChange:
        enabled: list[str] = []
        changed = False
        if message.enabled is not None and message.media is not None:
            state = self._media[message.media]
            if state.enabled != message.enabled:
                state.enabled = message.enabled
                changed = True
                if message.enabled:
                    enabled.append(message.media)
        for media, entries in message.whitelists.items():
            whitelist = frozenset(entries)
            if self._media[media].whitelist != whitelist:
                self._media[media].whitelist = whitelist
                changed = True
        return AvModerationChange(tuple(enabled), changed)

    def summary(self) -> str:
        return ", ".join(f"{media} {'on' if m.enabled else 'off'} ({len(m.whitelist)} whitelisted)"
                         for media, m in self._media.items())

    def to_json(self) -> dict[str, object]:
        return {media: {"enabled": m.enabled, "whitelist": sorted(m.whitelist)}
                for media, m in self._media.items()}
