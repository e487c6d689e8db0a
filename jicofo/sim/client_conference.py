"""The conference IQ as the simulated client writes and reads it (docs/client.md §1.3-§1.4), apart
from the focus's own code (jicofo/xmlns/conference_iq.py).

    request_element("room@conference.example.com", machine_uid="…", properties={...}) -> Element
    read_answer(el) -> ClientConferenceAnswer   # raises ValueError for what the client cannot read
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import children, element, qn

NS_FOCUS_IQ = "http://jitsi.org/protocol/focus"
CONFERENCE_TAG = qn(NS_FOCUS_IQ, "conference")
MAX_PROPERTIES = 256


def request_element(
    room: str,
    *,
    machine_uid: str | None = None,
    token: str | None = None,
    session_id: str | None = None,
    properties: Mapping[str, str] = {},  # noqa: B006 - read only
) -> Element:
    """`<conference xmlns='http://jitsi.org/protocol/focus' room machine-uid token? session-id?>`
    with one `<property name value>` per property."""
    attrs = {"room": room}
    for name, value in (("machine-uid", machine_uid), ("token", token), ("session-id", session_id)):
        if value is not None:
            attrs[name] = value
    el = element(CONFERENCE_TAG, attrs)
    for name, value in properties.items():
        el.append(element(qn(NS_FOCUS_IQ, "property"), {"name": name, "value": value}))
    return el


@dataclass(frozen=True, slots=True)
class ClientConferenceAnswer:
    """What the client reads from the focus's answer."""

    room: str
    ready: bool
    focus_jid: str | None = None
    session_id: str | None = None
    identity: str | None = None  # the authenticated user, after a login
    vnode: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)


def read_answer(el: Element) -> ClientConferenceAnswer:
    """Read the answer; ValueError (naming the attribute, not its value) when it is unusable."""
    if el.tag != CONFERENCE_TAG:
        raise ValueError("the answer holds no <conference>")
    room = el.get("room")
    if not room:
        raise ValueError("the answer has no room")
    ready = (el.get("ready") or "false").strip().lower()
    if ready not in ("true", "false"):
        raise ValueError("'ready' is neither true nor false")
    found = children(el, NS_FOCUS_IQ, "property")
    if len(found) > MAX_PROPERTIES:
        raise ValueError("too many <property> elements")
    properties = {p.get("name", ""): p.get("value", "") for p in found if p.get("name")}
    return ClientConferenceAnswer(
        room=room, ready=ready == "true", focus_jid=el.get("focusjid") or None,
        session_id=el.get("session-id") or None, identity=el.get("identity") or None,
        vnode=el.get("vnode") or None, properties=properties,
    )
