"""Connection settings: one frozen object per XMPP connection, built from config by the caller."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .stream import ParserLimits
from .transport import TlsSettings


class TlsMode(enum.Enum):
    STARTTLS = "starttls"  # required: a server that does not offer it is refused
    DIRECT = "direct"  # TLS from the first byte (XEP-0368 style port)
    DISABLED = "disabled"  # plain TCP; only when TLS is switched off on purpose


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    negotiation: float = 15.0
    request: float = 15.0
    ping_interval: float = 30.0  # 0 disables keepalive pings
    ping_timeout: float = 15.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    close: float = 2.0
    # A write runs to its end even when its caller is cancelled (half a stanza would break the
    # stream); one that cannot finish in this long means the peer stopped reading, and the
    # connection is dropped.
    write: float = 15.0


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How to reach and log into an XMPP server as a client (c2s).

    `username=None` logs in anonymously. With `websocket_url` set, the connection uses XMPP over
    WebSocket (RFC 7395) instead of TCP, and `host`/`port`/`tls` are not used.
    """

    domain: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    resource: str | None = None
    host: str | None = None
    port: int = 5222
    tls: TlsMode = TlsMode.STARTTLS
    tls_settings: TlsSettings = TlsSettings()
    allow_plain_without_tls: bool = False
    # Restrict SASL to these mechanisms (None: any we support, best first).
    sasl_mechanisms: tuple[str, ...] | None = None
    websocket_url: str | None = None
    stream_management: bool = True
    sm_ack_every: int = 5
    sm_max_unacked: int = 5000
    max_concurrent_handlers: int = 1000
    timeouts: Timeouts = Timeouts()
    limits: ParserLimits = ParserLimits()
    # Prosody's c2s_stanza_size_limit: a larger stanza from us would make it close our stream.
    max_outgoing_stanza_bytes: int = 256 * 1024

    @property
    def connect_host(self) -> str:
        return self.host or self.domain

    def describe(self) -> str:
        """Where this connects, for logs. Never includes the password."""
        who = f"{self.username}@{self.domain}" if self.username else f"anonymous@{self.domain}"
        where = self.websocket_url or f"{self.connect_host}:{self.port} ({self.tls.value})"
        return f"{who} via {where}"


@dataclass(frozen=True, slots=True)
class ComponentSettings:
    """An XEP-0114 external component connection."""

    domain: str  # the component's JID, e.g. focus.meet.example.com
    secret: str = field(repr=False)
    host: str = "localhost"
    port: int = 5347
    timeouts: Timeouts = Timeouts()
    limits: ParserLimits = ParserLimits()
    max_concurrent_handlers: int = 1000
    # Prosody's component_stanza_size_limit (its s2s limit unless set).
    max_outgoing_stanza_bytes: int = 512 * 1024

    def describe(self) -> str:
        return f"component {self.domain} via {self.host}:{self.port}"
