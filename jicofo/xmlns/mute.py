"""The mute IQ (docs/jicofo.md §7.19, docs/client.md §4.1):
`<mute xmlns=NS jid? actor?>true|false</mute>` in one of three namespaces, one per media type. A
client sends it to the focus's occupant JID to mute someone (`jid` = the target's occupant JID);
the focus sends it to a member it muted, with `actor` = who asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from jicofo.xmpp.jid import JID, InvalidJID
from jicofo.xmpp.xml import element, local_name, namespace, qn

NS_MUTE_AUDIO = "http://jitsi.org/jitmeet/audio"
NS_MUTE_VIDEO = "http://jitsi.org/jitmeet/video"
NS_MUTE_DESKTOP = "http://jitsi.org/jitmeet/desktop"

# Namespace -> media type, and back.
MEDIA_OF_NAMESPACE = {NS_MUTE_AUDIO: "audio", NS_MUTE_VIDEO: "video", NS_MUTE_DESKTOP: "desktop"}
NAMESPACE_OF_MEDIA = {media: ns for ns, media in MEDIA_OF_NAMESPACE.items()}
MUTE_TAGS = tuple(qn(ns, "mute") for ns in MEDIA_OF_NAMESPACE)

# A JID is at most 3 x 1023 bytes plus separators (RFC 7622); the text is one word.
_MAX_TEXT = 16


class MuteParseError(ValueError):
    """A `<mute>` that cannot be read; the focus answers it with bad-request."""


@dataclass(frozen=True, slots=True)
class MuteIQ:
    """The `<mute>` payload. `mute` and `jid` are None when absent (a request without them is
    refused with bad-request, as upstream)."""

    media: str  # audio | video | desktop
    mute: bool | None
    jid: JID | None = None
    actor: JID | None = None

    @classmethod
    def from_element(cls, el: Element) -> MuteIQ:
        ns = namespace(el.tag)
        if local_name(el.tag) != "mute" or ns not in MEDIA_OF_NAMESPACE:
            raise MuteParseError(f"not a mute element: {el.tag!r}")
        if len(el):
            raise MuteParseError("<mute> has child elements")
        text = (el.text or "").strip()
        if len(text) > _MAX_TEXT:
            raise MuteParseError("<mute> text is too long")
        lowered = text.lower()
        mute = True if lowered == "true" else False if lowered == "false" else None
        if text and mute is None:
            raise MuteParseError("<mute> must say true or false")
        return cls(MEDIA_OF_NAMESPACE[ns], mute, _jid(el, "jid"), _jid(el, "actor"))

    def to_element(self) -> Element:
        attrs: dict[str, str] = {}
        if self.jid is not None:
            attrs["jid"] = str(self.jid)
        if self.actor is not None:
            attrs["actor"] = str(self.actor)
        text = None if self.mute is None else ("true" if self.mute else "false")
        return element(qn(NAMESPACE_OF_MEDIA[self.media], "mute"), attrs, text=text)


def _jid(el: Element, name: str) -> JID | None:
    value = el.get(name)
    if not value:
        return None
    try:
        return JID.parse(value)
    except InvalidJID as exc:
        raise MuteParseError(f"<mute {name}>: not a JID ({exc})") from None
