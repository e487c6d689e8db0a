"""The conference request (`<conference xmlns='http://jitsi.org/protocol/focus'>`): what a client
sends to ask the focus for a room, and the focus's answer. Also the JSON form of both used by the
HTTP route `/conference-request/v1`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import children, element, qn

from .bounded_json import JsonContentError, decode_json

NS_FOCUS = "http://jitsi.org/protocol/focus"
CONFERENCE = qn(NS_FOCUS, "conference")
PROPERTY = qn(NS_FOCUS, "property")
SESSION_INVALID = qn(NS_FOCUS, "session-invalid")

# Property names the focus reads from requests or puts in answers.
PROP_AUTHENTICATION = "authentication"
PROP_EXTERNAL_AUTH = "externalAuth"
PROP_SIP_GATEWAY_ENABLED = "sipGatewayEnabled"
PROP_VISITORS_SUPPORTED = "visitors-supported"
PROP_VISITORS_VERSION = "visitors-version"
PROP_VISITOR = "visitor"
PROP_LIVE = "live"
PROP_START_AUDIO_MUTED = "startAudioMuted"
PROP_START_VIDEO_MUTED = "startVideoMuted"
PROP_RTCSTATS_ENABLED = "rtcstatsEnabled"

# The HTTP form of a request: a room name, a few ids and a handful of short properties, well under
# 2 KB from real clients; 64 KiB leaves ample room (the HTTP server's own limit is 1 MiB).
REQUEST_JSON_MAX_BYTES = 64 * 1024


def _check_tag(el: Element) -> None:
    if el.tag != CONFERENCE:
        raise ValueError(f"expected <conference xmlns='{NS_FOCUS}'>, got {el.tag!r}")


def _parse_bool(value: str | None, what: str) -> bool | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"{what} must be true or false, got {value!r}")


def _read_properties(el: Element) -> dict[str, str]:
    properties: dict[str, str] = {}
    for prop in children(el, NS_FOCUS, "property"):
        name = prop.get("name")
        if not name:
            raise ValueError("<property> without a name")
        properties[name] = prop.get("value", "")
    return properties


def _build(attrs: dict[str, str | None], properties: Mapping[str, str]) -> Element:
    el = element(CONFERENCE, {k: v for k, v in attrs.items() if v is not None})
    for name, value in properties.items():
        el.append(element(PROPERTY, {"name": name, "value": value}))
    return el


@dataclass(frozen=True, slots=True)
class ConferenceRequest:
    """A client's request for a conference. `token` is the JWT (the focus does not validate it)."""

    room: str
    machine_uid: str | None = None
    token: str | None = None
    session_id: str | None = None
    vnode: str | None = None
    identity: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_element(cls, el: Element) -> ConferenceRequest:
        _check_tag(el)
        room = el.get("room")
        if not room:
            raise ValueError("No 'room' specified.")
        return cls(
            room=room,
            machine_uid=el.get("machine-uid"),
            token=el.get("token"),
            session_id=el.get("session-id"),
            vnode=el.get("vnode"),
            identity=el.get("identity"),
            properties=_read_properties(el),
        )

    def to_element(self) -> Element:
        return _build(
            {
                "room": self.room,
                "machine-uid": self.machine_uid,
                "token": self.token,
                "session-id": self.session_id,
                "vnode": self.vnode,
                "identity": self.identity,
            },
            self.properties,
        )

    @classmethod
    def from_json(cls, body: object, token: str | None = None) -> ConferenceRequest:
        """The HTTP form `{"room": ..., "properties": {...}}`; the bearer token goes in `token`."""
        if not isinstance(body, dict):
            raise ValueError("conference request must be a JSON object")
        room = body.get("room")
        if not isinstance(room, str) or not room:
            raise ValueError("No 'room' specified.")
        properties = body.get("properties", {})
        if not isinstance(properties, dict):
            raise ValueError('"properties" must be an object')
        machine_uid = body.get("machineUid")
        session_id = body.get("sessionId")
        return cls(
            room=room,
            machine_uid=machine_uid if isinstance(machine_uid, str) else None,
            session_id=session_id if isinstance(session_id, str) and session_id else None,
            token=token,
            properties={str(k): str(v) for k, v in properties.items()},
        )

    @classmethod
    def from_json_bytes(cls, body: bytes, token: str | None = None) -> ConferenceRequest:
        """An HTTP request body, through the bounded JSON decoder. Raises ValueError."""
        try:
            document = decode_json(body or b"null", max_chars=REQUEST_JSON_MAX_BYTES)
        except JsonContentError as exc:
            raise ValueError(f"the body is not valid JSON ({exc})") from None
        return cls.from_json(document, token)

    def property_is_true(self, name: str) -> bool:
        return self.properties.get(name, "").lower() == "true"


@dataclass(frozen=True, slots=True)
class ConferenceAnswer:
    """The focus's answer. `ready` only once the focus has joined the room; `focus_jid` is the
    bare JID clients must trust as the focus."""

    room: str
    ready: bool
    focus_jid: str | None = None
    session_id: str | None = None
    identity: str | None = None
    vnode: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_element(cls, el: Element) -> ConferenceAnswer:
        _check_tag(el)
        room = el.get("room")
        if not room:
            raise ValueError("conference answer without a room")
        return cls(
            room=room,
            ready=bool(_parse_bool(el.get("ready"), "ready")),
            focus_jid=el.get("focusjid"),
            session_id=el.get("session-id"),
            identity=el.get("identity"),
            vnode=el.get("vnode"),
            properties=_read_properties(el),
        )

    def to_element(self) -> Element:
        return _build(
            {
                "room": self.room,
                "focusjid": self.focus_jid,
                "ready": "true" if self.ready else "false",
                "session-id": self.session_id,
                "identity": self.identity,
                "vnode": self.vnode,
            },
            self.properties,
        )

    def to_json(self) -> dict[str, object]:
        """The HTTP answer body (keys as upstream: `focusJid`, `sessionId`, ...)."""
        body: dict[str, object] = {"room": self.room, "ready": self.ready}
        optional = {
            "focusJid": self.focus_jid,
            "sessionId": self.session_id,
            "identity": self.identity,
            "vnode": self.vnode,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        body["properties"] = dict(self.properties)
        return body


def session_invalid() -> Element:
    """The application condition of the `not-acceptable` error for an unknown auth session."""
    return element(SESSION_INVALID)
