"""Jibri's XML (docs/jicofo.md §7.21): the `<jibri>` IQ both ways, the `<jibri-status>` a Jibri
puts in its brewery presence, and what the focus publishes in the room (`<jibri-recording-status>`,
`<jibri-sip-call-state>`).

Every value comes from a member or a Jibri and is bounded here: an attribute longer than
`MAX_VALUE` (app_data: `MAX_APP_DATA`) refuses the IQ with JibriParseError, whose text never
quotes the value."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import element, find_child, qn

NS_JIBRI = "http://jitsi.org/protocol/jibri"
NS_HEALTH = "http://jitsi.org/protocol/health"
NS_SIP_CALL_STATE = "http://jitsi.org/protocol/jibri/call_state"
JIBRI = qn(NS_JIBRI, "jibri")
JIBRI_STATUS = qn(NS_JIBRI, "jibri-status")

E = TypeVar("E", bound=enum.Enum)

MAX_VALUE = 1024  # a stream key or URL, a SIP address, a display name, a session id
MAX_APP_DATA = 8192  # JSON for the Jibri, passed through unread


class JibriParseError(ValueError):
    pass


class Action(enum.Enum):
    START = "start"
    STOP = "stop"


class Status(enum.Enum):
    PENDING = "pending"
    ON = "on"
    OFF = "off"


class RecordingMode(enum.Enum):
    FILE = "file"
    STREAM = "stream"


class FailureReason(enum.Enum):
    BUSY = "busy"
    ERROR = "error"


def _value(el: Element, name: str, limit: int = MAX_VALUE) -> str | None:
    raw = el.get(name)
    if raw is None:
        return None
    if len(raw) > limit:
        raise JibriParseError(f"'{name}' is longer than {limit} characters")
    stripped = raw.strip()
    return stripped or None


def _enum(el: Element, name: str, kind: type[E]) -> E | None:
    raw = _value(el, name, 32)
    if raw is None:
        return None
    try:
        return kind(raw.lower())
    except ValueError:
        raise JibriParseError(f"unknown {name}") from None


def _bool(el: Element, name: str) -> bool | None:
    raw = _value(el, name, 8)
    if raw is None:
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise JibriParseError(f"'{name}' is not a boolean")


@dataclass(frozen=True, slots=True)
class JibriIQ:
    """The `<jibri>` payload: a member's start/stop, the focus's request to a Jibri, a Jibri's
    answer or status update. Unset attributes are None."""

    action: Action | None = None
    status: Status | None = None
    recording_mode: RecordingMode | None = None
    stream_id: str | None = None
    youtube_broadcast_id: str | None = None
    sip_address: str | None = None
    display_name: str | None = None
    session_id: str | None = None
    app_data: str | None = None
    room: str | None = None
    failure_reason: FailureReason | None = None
    should_retry: bool | None = None
    rtcstats_enabled: bool | None = None

    @classmethod
    def from_element(cls, el: Element) -> JibriIQ:
        if el.tag != JIBRI:
            raise JibriParseError("not a <jibri> element")
        return cls(
            action=_enum(el, "action", Action),
            status=_enum(el, "status", Status),
            recording_mode=_enum(el, "recording_mode", RecordingMode),
            stream_id=_value(el, "streamid"),
            youtube_broadcast_id=_value(el, "you_tube_broadcast_id"),
            sip_address=_value(el, "sipaddress"),
            display_name=_value(el, "displayname"),
            session_id=_value(el, "session_id"),
            app_data=_value(el, "app_data", MAX_APP_DATA),
            room=_value(el, "room"),
            failure_reason=_enum(el, "failure_reason", FailureReason),
            should_retry=_bool(el, "should_retry"),
            rtcstats_enabled=_bool(el, "rtcstats_enabled"),
        )

    def to_element(self) -> Element:
        attrs: dict[str, str] = {}
        for name, value in (
            ("action", self.action.value if self.action else None),
            ("status", self.status.value if self.status else None),
            ("recording_mode", self.recording_mode.value if self.recording_mode else None),
            ("streamid", self.stream_id),
            ("you_tube_broadcast_id", self.youtube_broadcast_id),
            ("sipaddress", self.sip_address),
            ("displayname", self.display_name),
            ("session_id", self.session_id),
            ("app_data", self.app_data),
            ("room", self.room),
            ("failure_reason", self.failure_reason.value if self.failure_reason else None),
            ("should_retry", None if self.should_retry is None else str(self.should_retry).lower()),
            ("rtcstats_enabled",
             None if self.rtcstats_enabled is None else str(self.rtcstats_enabled).lower()),
        ):
            if value is not None:
                attrs[name] = value
        return element(JIBRI, attrs)


@dataclass(frozen=True, slots=True)
class JibriInstanceStatus:
    """`<jibri-status>` from a Jibri's brewery presence: available iff healthy and idle."""

    busy: str | None  # "idle", "busy", or what else it says
    health: str | None  # "healthy", "unhealthy"

    @property
    def available(self) -> bool:
        return self.busy == "idle" and self.health == "healthy"

    @classmethod
    def from_element(cls, el: Element) -> JibriInstanceStatus:
        busy = find_child(el, NS_JIBRI, "busy-status")
        health = find_child(el, NS_HEALTH, "health-status")
        return cls(
            busy=_value(busy, "status", 32) if busy is not None else None,
            health=_value(health, "status", 32) if health is not None else None,
        )

    def to_element(self) -> Element:
        children = []
        if self.busy is not None:
            children.append(element(qn(NS_JIBRI, "busy-status"), {"status": self.busy}))
        if self.health is not None:
            children.append(element(qn(NS_HEALTH, "health-status"), {"status": self.health}))
        return element(JIBRI_STATUS, None, *children)


def recording_status(status: Status, session_id: str, *, mode: RecordingMode | None,
                     initiator: str | None, failure: FailureReason | None) -> Element:
    """The focus's `<jibri-recording-status>` presence extension."""
    attrs = {"status": status.value, "session_id": session_id}
    if mode is not None:
        attrs["recording_mode"] = mode.value
    if initiator:
        attrs["initiator"] = initiator
    if failure is not None:
        attrs["failure_reason"] = failure.value
    return element(qn(NS_JIBRI, "jibri-recording-status"), attrs)


def sip_call_state(status: Status, sip_address: str, session_id: str,
                   failure: FailureReason | None) -> Element:
    """The focus's `<jibri-sip-call-state>` presence extension (one per SIP call)."""
    attrs = {"state": status.value, "sipaddress": sip_address, "session_id": session_id}
    if failure is not None:
        attrs["failure_reason"] = failure.value
    return element(qn(NS_SIP_CALL_STATE, "jibri-sip-call-state"), attrs)
