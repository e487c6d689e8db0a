"""The login-url and logout IQs (docs/jicofo.md §7.2), in the focus namespace:

    <iq type='get'><login-url xmlns='http://jitsi.org/protocol/focus' room=... machine-uid=...
                              popup='false'/></iq>
    → <login-url url='<URL-encoded URL>'/>            (no url attribute when there is none)
    <iq type='set'><logout xmlns='http://jitsi.org/protocol/focus' session-id=.../></iq>
    → <logout/>                                         (logout-url when there is one)

As jitsi-xmpp-extensions does, the URL travels URL-encoded in its attribute and lib-jitsi-meet
decodes it.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import element, qn

from .conference_iq import NS_FOCUS

LOGIN_URL = qn(NS_FOCUS, "login-url")
LOGOUT = qn(NS_FOCUS, "logout")


@dataclass(frozen=True, slots=True)
class LoginUrlRequest:
    room: str | None
    machine_uid: str | None
    popup: bool

    @classmethod
    def from_element(cls, el: Element) -> LoginUrlRequest:
        if el.tag != LOGIN_URL:
            raise ValueError("expected <login-url xmlns='http://jitsi.org/protocol/focus'>")
        return cls(room=el.get("room") or None, machine_uid=el.get("machine-uid") or None,
                   popup=el.get("popup", "").lower() == "true")

    def to_element(self) -> Element:
        attrs = {"room": self.room, "machine-uid": self.machine_uid,
                 "popup": "true" if self.popup else "false"}
        return element(LOGIN_URL, {k: v for k, v in attrs.items() if v is not None})


def login_url_answer(url: str | None) -> Element:
    return element(LOGIN_URL, {"url": urllib.parse.quote(url, safe="")} if url else {})


def login_url_of(answer: Element) -> str | None:
    """The decoded URL of an answer (what lib-jitsi-meet does with it)."""
    url = answer.get("url")
    return urllib.parse.unquote(url) if url is not None else None


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    session_id: str | None

    @classmethod
    def from_element(cls, el: Element) -> LogoutRequest:
        if el.tag != LOGOUT:
            raise ValueError("expected <logout xmlns='http://jitsi.org/protocol/focus'>")
        return cls(session_id=el.get("session-id") or None)

    def to_element(self) -> Element:
        return element(LOGOUT, {"session-id": self.session_id} if self.session_id else {})


def logout_answer(logout_url: str | None) -> Element:
    return element(LOGOUT, {"logout-url": urllib.parse.quote(logout_url, safe="")}
                   if logout_url else {})
