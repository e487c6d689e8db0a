"""Typed XMPP errors: stanza errors (RFC 6120 §8.3), stream errors (§4.9) and client-side failures."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams"

# The most of an error's text that goes on the wire.
MAX_ERROR_TEXT = 200

# Default error type for each defined condition (RFC 6120 §8.3.3).
STANZA_CONDITION_TYPES: dict[str, str] = {
    "bad-request": "modify",
    "conflict": "cancel",
    "feature-not-implemented": "cancel",
    "forbidden": "auth",
    "gone": "cancel",
    "internal-server-error": "cancel",
    "item-not-found": "cancel",
    "jid-malformed": "modify",
    "not-acceptable": "modify",
    "not-allowed": "cancel",
    "not-authorized": "auth",
    "policy-violation": "modify",
    "recipient-unavailable": "wait",
    "redirect": "modify",
    "registration-required": "auth",
    "remote-server-not-found": "cancel",
    "remote-server-timeout": "wait",
    "resource-constraint": "wait",
    "service-unavailable": "cancel",
    "subscription-required": "auth",
    "undefined-condition": "cancel",
    "unexpected-request": "wait",
}

STREAM_CONDITIONS = frozenset(
    {
        "bad-format",
        "bad-namespace-prefix",
        "conflict",
        "connection-timeout",
        "host-gone",
        "host-unknown",
        "improper-addressing",
        "internal-server-error",
        "invalid-from",
        "invalid-namespace",
        "invalid-xml",
        "not-authorized",
        "not-well-formed",
        "policy-violation",
        "remote-connection-failed",
        "reset",
        "resource-constraint",
        "restricted-xml",
        "see-other-host",
        "system-shutdown",
        "undefined-condition",
        "unsupported-encoding",
        "unsupported-feature",
        "unsupported-stanza-type",
        "unsupported-version",
    }
)


class XMPPError(Exception):
    """Base class of every error this layer raises.

    `permanent` marks errors that retrying cannot fix (refused credentials, an untrusted
    certificate, a server without the required TLS): the first connection attempt gives up on them.
    """

    permanent = False


class StanzaError(XMPPError):
    """An error carried in (or to be put in) a stanza of type='error'.

    `app_element` is an optional application-specific condition element (for example
    Colibri2's `<error xmlns='jitsi:colibri2' reason='...'/>`), placed after the text.
    """

    def __init__(
        self,
        condition: str,
        text: str | None = None,
        *,
        type: str | None = None,
        app_element: Element | None = None,
        by: str | None = None,
    ) -> None:
        self.condition = condition
        self.type = type or STANZA_CONDITION_TYPES.get(condition, "cancel")
        self.text = text
        self.app_element = app_element
        self.by = by
        super().__init__(f"{condition}: {text}" if text else condition)

    def to_element(self, stanza_ns: str = "jabber:client") -> Element:
        """Build the `<error/>` child for a stanza in namespace `stanza_ns`."""
        err = Element(f"{{{stanza_ns}}}error", {"type": self.type})
        if self.by:
            err.set("by", self.by)
        SubElement(err, f"{{{NS_STANZAS}}}{self.condition}")
        if self.text:
            # Texts may quote what the sender sent (a bad value): never more than a line of it.
            text = self.text if len(self.text) <= MAX_ERROR_TEXT else self.text[:MAX_ERROR_TEXT] + "…"
            SubElement(err, f"{{{NS_STANZAS}}}text").text = text
        if self.app_element is not None:
            err.append(self.app_element)
        return err

    @classmethod
    def from_stanza(cls, stanza: Element) -> StanzaError:
        """Read the error out of a stanza of type='error' (lenient: never raises)."""
        err = None
        for child in stanza:
            if child.tag.endswith("}error") or child.tag == "error":
                err = child
                break
        if err is None:
            return cls("undefined-condition", "error stanza without an <error/> child")
        condition = "undefined-condition"
        text = None
        app = None
        for child in err:
            if child.tag == f"{{{NS_STANZAS}}}text":
                text = child.text
            elif child.tag.startswith(f"{{{NS_STANZAS}}}"):
                condition = child.tag.split("}", 1)[1]
            else:
                app = child
        return cls(condition, text, type=err.get("type") or None, app_element=app, by=err.get("by"))


class StreamError(XMPPError):
    """The peer closed the stream with a stream error."""

    def __init__(self, condition: str, text: str | None = None) -> None:
        self.condition = condition
        self.text = text
        super().__init__(f"stream error {condition}: {text}" if text else f"stream error {condition}")


class StanzaTooLarge(XMPPError):
    """A stanza we were about to send is over the server's stanza size limit. It was not sent (the
    server would have closed our stream for it); the connection is fine."""

    def __init__(self, kind: str, size: int, limit: int) -> None:
        super().__init__(f"<{kind}> of {size} bytes is over the server's limit of {limit}; not sent")


class IQTimeout(XMPPError):
    """No answer to an IQ request before its deadline."""


class NotConnected(XMPPError):
    """The connection is down and the operation cannot wait for it."""


class AuthenticationError(XMPPError):
    """SASL or component authentication was refused. Never carries the secret."""

    permanent = True

    def __init__(self, condition: str, text: str | None = None) -> None:
        self.condition = condition
        self.text = text
        super().__init__(f"authentication failed ({condition}): {text}" if text else
                         f"authentication failed ({condition})")
