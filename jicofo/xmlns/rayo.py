"""Rayo's `<dial>` as Jitsi uses it (docs/jicofo.md §7.22): a member asks the focus to have a
Jigasi dial out (SIP) or join as transcriber (`to="jitsi_meet_transcribe"`). The focus reads only
`to` and the `JvbRoomName` header, and forwards the element it received (bounded here) to the
Jigasi it picks; the Jigasi's `<ref uri>` goes back to the member unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import qn

NS_RAYO = "urn:xmpp:rayo:1"
DIAL = qn(NS_RAYO, "dial")
HEADER = qn(NS_RAYO, "header")
REF = qn(NS_RAYO, "ref")
TRANSCRIBER_DESTINATION = "jitsi_meet_transcribe"
ROOM_NAME_HEADER = "JvbRoomName"

MAX_VALUE = 1024
MAX_HEADERS = 32


class DialParseError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class DialIQ:
    destination: str | None  # `to`
    source: str | None  # `from`
    headers: tuple[tuple[str, str], ...]

    @property
    def transcriber(self) -> bool:
        return self.destination == TRANSCRIBER_DESTINATION

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    @classmethod
    def from_element(cls, el: Element) -> DialIQ:
        if el.tag != DIAL:
            raise DialParseError("not a Rayo <dial>")
        headers: list[tuple[str, str]] = []
        for child in el:
            if child.tag != HEADER:
                continue
            if len(headers) >= MAX_HEADERS:
                raise DialParseError(f"more than {MAX_HEADERS} headers")
            headers.append((_value(child, "name") or "", _value(child, "value") or ""))
        return cls(_value(el, "to"), _value(el, "from"), tuple(headers))


def _value(el: Element, name: str) -> str | None:
    raw = el.get(name)
    if raw is not None and len(raw) > MAX_VALUE:
        raise DialParseError(f"'{name}' is longer than {MAX_VALUE} characters")
    return raw
