"""Opening a stream: transport, STARTTLS, SASL, resumption or bind, XEP-0198 enable, and the
XEP-0114 component handshake. The result is a `Channel` ready to carry stanzas.

Every byte in and out of a connection passes through its `Channel`, which is where the packet log
(`jicofo.logs.log_packet`, secrets redacted) sees each stanza, stream header and close, named by
the connection. When the packet log is off nothing is serialized for it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections import deque
from dataclasses import dataclass
from xml.etree.ElementTree import Element

import trio

from jicofo.logs import log_packet, packet_log_enabled

from . import sasl
from .errors import AuthenticationError, StanzaError, StreamError, XMPPError
from .jid import JID
from .settings import ClientSettings, ComponentSettings, TlsMode
from .sm import NS_SM, StreamManagement
from .stream import (
    Event,
    Features,
    Framing,
    ProtocolViolation,
    StanzaReceived,
    StanzaRejected,
    StreamClosed,
    StreamErrorReceived,
    StreamOpened,
    XmlStream,
)
from .traffic import TRAFFIC
from .transport import TcpTransport, Transport, TransportError, WebSocketTransport
from .xml import XML_NS, element, escape_attribute, find_child, serialize

log = logging.getLogger(__name__)

NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_CLIENT = "jabber:client"
NS_COMPONENT = "jabber:component:accept"


class NegotiationError(XMPPError):
    """The server's answers did not allow a stream to be set up (not an authentication refusal)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


_XML_PREFIX = f"{{{XML_NS}}}"


class PeerClosed(XMPPError):
    """The peer closed the stream or the transport."""


@dataclass
class _Batch:
    """Stanzas that go out in one write (TCP framing): what was sent while the previous write was
    under way or the writer was waiting for its turn."""

    parts: list[bytes]
    stanzas: int
    done: trio.Event
    error: TransportError | None = None
    abandoned: bool = False  # its writer was cancelled before the write: the others write theirs


class Channel:
    """A transport and the stream core on it, with an event buffer. Owned by one reader at a time;
    sends are serialised by a lock so that stanzas never interleave on the wire. `name` is the
    connection's name in the packet log.

    On TCP, sends are group-committed: a send that finds another one waiting for the lock (or
    writing) joins its batch, and the batch goes out in one write. A burst (a source-add to
    every member, a Jingle answer and an XEP-0198 ack) then costs one system call instead of one
    per stanza, and on loopback a write is the dearest thing the focus does. Each caller still
    returns only once its data was written, and gets the TransportError if it was not; the order
    of the bytes is the order of the calls. WebSocket framing (RFC 7395) wants one element per
    message, so there every send is its own write."""

    def __init__(self, transport: Transport, core: XmlStream, name: str = "xmpp",
                 *, write_timeout: float = 15.0) -> None:
        self.transport = transport
        self.core = core
        self.name = name
        self.write_timeout = write_timeout
        self._broken = False  # a write did not finish: the stream may hold half a stanza
        self._events: deque[Event] = deque()
        self._send_lock = trio.Lock()
        self._batch: _Batch | None = None  # collecting, its writer waiting for the lock
        self._coalesce = transport.framing is Framing.TCP

    async def send(self, el: Element) -> None:
        await self.send_encoded(self.encode(el))

    def encode(self, el: Element) -> bytes:
        """What `send` would write for `el`; raises as XmlStream.send does (StanzaTooLarge, ...)
        and TransportError once the stream is closed."""
        if self.core.closed:
            raise TransportError("the stream is closed")
        return self.core.send(el)

    async def send_encoded(self, data: bytes, *, elements: int = 1) -> None:
        """Write encoded stanzas or nonzas (`elements` of them, for the traffic counts)."""
        await self._write(data, elements=elements)

    async def send_raw(self, data: bytes) -> None:
        """Write bytes that are not a stanza (a stream header, whitespace), in order with the rest."""
        await self._write(data, elements=0)

    async def _write(self, data: bytes, *, elements: int) -> None:
        while True:
            if self.core.closed or self._broken:
                raise TransportError("the stream is closed")
            batch = self._batch
            if batch is None:
                break
            # A writer is waiting for its turn: go out with it.
            batch.parts.append(data)
            batch.stanzas += elements
            await batch.done.wait()
            if batch.abandoned:
                continue  # its writer was cancelled before writing anything: write ours ourselves
            if batch.error is not None:
                raise TransportError(str(batch.error))
            return
        batch = _Batch([data], elements, trio.Event())
        if self._coalesce:
            self._batch = batch
        writing = False
        try:
            async with self._send_lock:
                if self._batch is batch:
                    self._batch = None  # closed: later sends start the next batch
                if self.core.closed or self._broken:  # nothing may follow the footer
                    raise TransportError("the stream is closed")
                payload = batch.parts[0] if len(batch.parts) == 1 else b"".join(batch.parts)
                writing = True
                # Shielded: a caller cancelled mid-write (a participant leaving) must not leave
                # half a stanza on the stream; bounded, so a peer that stopped reading cannot hold
                # the writer (and its caller) for ever.
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(self.write_timeout) as timer:
                        await self.transport.send(payload)
                    if timer.cancelled_caught:
                        self._broken = True
                        await self.transport.aclose()
                        raise TransportError(f"a write did not finish within {self.write_timeout:g} s")
        except TransportError as exc:
            batch.error = exc
            raise
        except BaseException:
            if writing:  # cut off in the middle of a write: the stream is unusable
                self._broken = True
                batch.error = TransportError("a write was interrupted")
            else:
                batch.abandoned = True
            raise
        finally:
            if self._batch is batch:
                self._batch = None
            batch.done.set()
        TRAFFIC.stanzas_sent += batch.stanzas
        TRAFFIC.bytes_sent += len(payload)
        TRAFFIC.writes += 1
        if packet_log_enabled():
            for part in batch.parts:
                log_packet(self.name, "out", part)

    async def next_event(self) -> Event:
        """The next stream event. Raises on stream errors, violations and closes."""
        while not self._events:
            data = await self.transport.receive()
            if not data:
                if packet_log_enabled():
                    log_packet(self.name, "in", "(connection closed)")
                raise PeerClosed("the peer closed the connection")
            TRAFFIC.bytes_received += len(data)
            events = self.core.receive_data(data)
            TRAFFIC.stanzas_received += sum(isinstance(e, StanzaReceived | StanzaRejected) for e in events)
            if packet_log_enabled():
                for received in events:
                    log_packet(self.name, "in", self._describe(received))
            self._events.extend(events)
        event = self._events.popleft()
        if isinstance(event, ProtocolViolation):
            await self._send_quietly(event.data_to_send)
            raise NegotiationError(f"peer broke the protocol ({event.condition}): {event.text}")
        if isinstance(event, StreamErrorReceived):
            raise StreamError(event.condition, event.text)
        if isinstance(event, StreamClosed):
            raise PeerClosed("the peer closed the stream")
        return event

    async def next_stanza(self) -> Element:
        event = await self.next_event()
        if not isinstance(event, StanzaReceived):
            raise NegotiationError(f"unexpected {type(event).__name__} during negotiation")
        return event.element

    async def open_stream(self, to: str, *, version: str | None = "1.0") -> StreamOpened:
        await self.send_raw(self.core.open(to, version=version))
        event = await self.next_event()
        if not isinstance(event, StreamOpened):
            raise NegotiationError(f"expected a stream header, got {type(event).__name__}")
        return event

    async def read_features(self) -> Element:
        event = await self.next_event()
        if not isinstance(event, Features):
            raise NegotiationError(f"expected stream features, got {type(event).__name__}")
        return event.element

    def _describe(self, event: Event) -> str:
        """What the packet log shows for an incoming event (only called when it is on)."""
        websocket = self.core.framing is Framing.WEBSOCKET
        if isinstance(event, StreamOpened):
            attrs = "".join(
                f' {k.replace(_XML_PREFIX, "xml:")}="{escape_attribute(v)}"'
                for k, v in event.attrs.items()
            )
            return f"<open{attrs}/>" if websocket else f"<stream:stream{attrs}>"
        if isinstance(event, StreamClosed):
            return "<close/>" if websocket else "</stream:stream>"
        if isinstance(event, ProtocolViolation):
            return f"(input refused: {event.condition}: {event.text})"
        if isinstance(event, StanzaRejected):
            return f"(stanza skipped: {event.kind} {event.attrs}: {event.reason})"
        try:
            return serialize(event.element, self.core.content_ns)
        except ValueError as exc:
            return f"(unprintable {event.element.tag}: {exc})"

    def push_back(self, event: Event) -> None:
        self._events.appendleft(event)

    async def close(self, timeout: float = 1.0) -> None:
        """Send the stream footer and close the transport (bounded, shielded).

        The footer is taken and sent under the send lock, after any send in progress: a reader
        answering the peer (an XEP-0198 ack) at that moment fails with TransportError instead of
        closing the transport under the footer, and a second close (the reader's, on that error)
        waits for the footer before closing the transport."""
        with trio.move_on_after(timeout) as scope:
            scope.shield = True
            async with self._send_lock:
                footer = self.core.close()  # b"" once our side is closed
                if footer:
                    await self._send_frames(footer)
        await self.transport.aclose()  # bounded and shielded by the transport itself

    async def _send_quietly(self, data: bytes) -> None:
        async with self._send_lock:
            await self._send_frames(data)

    async def _send_frames(self, data: bytes) -> None:
        """Send what the core produced for an error or close, ignoring a broken transport. The
        caller holds the send lock."""
        # RFC 7395 wants one element per WebSocket frame: the stream error and <close/> go apart.
        frames = [data]
        marker = b"</stream:error>"
        if self.transport.framing is Framing.WEBSOCKET and marker in data:
            head, tail = data.split(marker, 1)
            frames = [head + marker, tail] if tail else [head + marker]
        try:
            for frame in frames:
                await self.transport.send(frame)
                log_packet(self.name, "out", frame)
        except TransportError:
            pass


@dataclass
class ClientSession:
    channel: Channel
    jid: JID
    resumed: bool
    sm: StreamManagement | None
    resent: list[Element]
    early: list[Event]


async def open_transport(settings: ClientSettings, nursery: trio.Nursery) -> Transport:
    t = settings.timeouts
    if settings.websocket_url:
        return await WebSocketTransport.connect(
            nursery,
            settings.websocket_url,
            tls=settings.tls_settings,
            connect_timeout=t.connect,
            max_frame_bytes=settings.limits.max_stanza_bytes,
        )
    with trio.fail_after(t.connect):
        return await TcpTransport.connect(
            settings.connect_host,
            settings.port,
            direct_tls=settings.tls_settings if settings.tls is TlsMode.DIRECT else None,
            server_hostname=settings.domain,
        )


async def negotiate_client(
    settings: ClientSettings,
    nursery: trio.Nursery,
    sm: StreamManagement | None = None,
    previous_jid: JID | None = None,
    *,
    name: str | None = None,
) -> ClientSession:
    """Connect and log in. `sm` carries a resumable session from an earlier connection (whose
    bound JID was `previous_jid`), if any. `name` names the connection in the packet log
    (default: where it connects, as `settings.describe()`).

    Raises AuthenticationError for refused credentials, TransportError / NegotiationError /
    StreamError / trio.TooSlowError for everything else.
    """
    transport = await open_transport(settings, nursery)
    core = XmlStream(content_ns=NS_CLIENT, framing=transport.framing, limits=settings.limits,
                     max_send_bytes=settings.max_outgoing_stanza_bytes)
    channel = Channel(transport, core, name or settings.describe(),
                      write_timeout=settings.timeouts.write)
    try:
        with trio.fail_after(settings.timeouts.negotiation):
            return await _negotiate(settings, channel, sm, previous_jid)
    except BaseException:
        await channel.close(0.5)
        raise


async def _negotiate(
    settings: ClientSettings,
    channel: Channel,
    sm: StreamManagement | None,
    previous_jid: JID | None,
) -> ClientSession:
    await channel.open_stream(settings.domain)
    features = await channel.read_features()

    if not channel.transport.tls_active and settings.tls is TlsMode.STARTTLS:
        if find_child(features, NS_TLS, "starttls") is None:
            raise NegotiationError(
                f"{settings.domain} does not offer STARTTLS; switch TLS off explicitly to use plain TCP",
                permanent=True,
            )
        await channel.send(element(f"{{{NS_TLS}}}starttls"))
        answer = await channel.next_stanza()
        if answer.tag != f"{{{NS_TLS}}}proceed":
            raise NegotiationError(f"STARTTLS refused by {settings.domain}")
        await channel.transport.starttls(settings.tls_settings, settings.domain)
        await channel.open_stream(settings.domain)
        features = await channel.read_features()

    await _authenticate(settings, channel, features)
    await channel.open_stream(settings.domain)
    features = await channel.read_features()

    sm_offered = find_child(features, NS_SM, "sm") is not None and settings.stream_management
    if sm is not None and sm.resumable and sm_offered and previous_jid is not None:
        to_resend = await _try_resume(channel, sm)
        if to_resend is not None:
            return ClientSession(channel, previous_jid, True, sm, to_resend, [])
        log.info("stream resumption refused by the server; starting a new session")

    jid = await _bind(settings, channel, features)
    early: list[Event] = []
    new_sm: StreamManagement | None = None
    if sm_offered:
        new_sm = StreamManagement(
            ack_request_every=settings.sm_ack_every, max_unacked=settings.sm_max_unacked
        )
        await channel.send(element(f"{{{NS_SM}}}enable", {"resume": "true"}))
        while True:
            event = await channel.next_event()
            if isinstance(event, StanzaReceived) and event.element.tag == f"{{{NS_SM}}}enabled":
                el = event.element
                new_sm.enabled(el.get("id"), el.get("resume") in ("true", "1"), el.get("location"))
                break
            if isinstance(event, StanzaReceived) and event.element.tag == f"{{{NS_SM}}}failed":
                log.warning("server refused to enable stream management")
                new_sm = None
                break
            early.append(event)
    return ClientSession(channel, jid, False, new_sm, [], early)


async def _authenticate(settings: ClientSettings, channel: Channel, features: Element) -> None:
    mechs_el = find_child(features, NS_SASL, "mechanisms")
    if mechs_el is None:
        raise NegotiationError(f"{settings.domain} offers no SASL authentication")
    offered = [m.text.strip() for m in mechs_el if m.text]
    if settings.sasl_mechanisms is not None:
        offered = [m for m in offered if m in settings.sasl_mechanisms]
    mechanism = sasl.choose_mechanism(
        offered,
        username=settings.username,
        password=settings.password,
        tls_active=channel.transport.tls_active,
        allow_plain_without_tls=settings.allow_plain_without_tls,
    )
    initial = mechanism.initial_response()
    auth = element(f"{{{NS_SASL}}}auth", {"mechanism": mechanism.name})
    if initial is not None:
        auth.text = base64.b64encode(initial).decode("ascii") or "="
    await channel.send(auth)
    while True:
        answer = await channel.next_stanza()
        local = answer.tag.rsplit("}", 1)[-1]
        if answer.tag == f"{{{NS_SASL}}}challenge":
            response = mechanism.respond(_b64(answer.text))
            reply = element(f"{{{NS_SASL}}}response")
            reply.text = base64.b64encode(response).decode("ascii") or "="
            await channel.send(reply)
        elif answer.tag == f"{{{NS_SASL}}}success":
            mechanism.verify_success(_b64(answer.text) if answer.text else None)
            log.debug("authenticated with %s", mechanism.name)
            return
        elif answer.tag == f"{{{NS_SASL}}}failure":
            raise sasl.parse_failure(answer)
        else:
            raise NegotiationError(f"unexpected <{local}/> during SASL")


def _b64(text: str | None) -> bytes:
    if not text or text.strip() == "=":
        return b""
    try:
        return base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise AuthenticationError("malformed-request", "server sent invalid base64") from exc


async def _try_resume(channel: Channel, sm: StreamManagement) -> list[Element] | None:
    assert sm.id is not None
    await channel.send(element(f"{{{NS_SM}}}resume", {"previd": sm.id, "h": str(sm.inbound)}))
    answer = await channel.next_stanza()
    if answer.tag == f"{{{NS_SM}}}resumed":
        try:
            h = int(answer.get("h", ""))
        except ValueError as exc:
            raise NegotiationError("server sent <resumed/> without a valid h") from exc
        return sm.resumed(h)
    if answer.tag == f"{{{NS_SM}}}failed":
        return None
    raise NegotiationError(f"unexpected answer to <resume/>: {answer.tag}")


async def _bind(settings: ClientSettings, channel: Channel, features: Element) -> JID:
    if find_child(features, NS_BIND, "bind") is None:
        raise NegotiationError("server offers no resource binding")
    bind = element(f"{{{NS_BIND}}}bind")
    if settings.resource:
        bind.append(element(f"{{{NS_BIND}}}resource", text=settings.resource))
    iq = element(f"{{{NS_CLIENT}}}iq", {"type": "set", "id": "bind_1"}, bind)
    await channel.send(iq)
    answer = await channel.next_stanza()
    if answer.get("type") == "error":
        raise StanzaError.from_stanza(answer)
    jid_el = answer.find(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid")
    if jid_el is None or not jid_el.text:
        raise NegotiationError("bind result carries no JID")
    jid = JID.parse(jid_el.text.strip())

    session = find_child(features, NS_SESSION, "session")
    if session is not None and find_child(session, NS_SESSION, "optional") is None:
        await channel.send(
            element(f"{{{NS_CLIENT}}}iq", {"type": "set", "id": "sess_1"},
                    element(f"{{{NS_SESSION}}}session"))
        )
        answer = await channel.next_stanza()
        if answer.get("type") == "error":
            raise StanzaError.from_stanza(answer)
    return jid


async def negotiate_component(
    settings: ComponentSettings, *, name: str | None = None,
) -> tuple[Channel, JID]:
    """XEP-0114: open a `jabber:component:accept` stream and prove the shared secret. `name` as
    for `negotiate_client`."""
    with trio.fail_after(settings.timeouts.connect):
        transport = await TcpTransport.connect(settings.host, settings.port)
    core = XmlStream(content_ns=NS_COMPONENT, limits=settings.limits,
                     max_send_bytes=settings.max_outgoing_stanza_bytes)
    channel = Channel(transport, core, name or settings.describe(),
                      write_timeout=settings.timeouts.write)
    try:
        with trio.fail_after(settings.timeouts.negotiation):
            header = await channel.open_stream(settings.domain, version=None)
            stream_id = header.attrs.get("id")
            if not stream_id:
                raise NegotiationError("component stream header has no id")
            digest = hashlib.sha1((stream_id + settings.secret).encode("utf-8")).hexdigest()
            await channel.send(element(f"{{{NS_COMPONENT}}}handshake", text=digest))
            try:
                answer = await channel.next_stanza()
            except StreamError as exc:
                if exc.condition == "not-authorized":
                    raise AuthenticationError(
                        "not-authorized", f"the server refused the secret for {settings.domain}"
                    ) from exc
                raise
            if answer.tag != f"{{{NS_COMPONENT}}}handshake":
                raise NegotiationError(f"unexpected answer to the handshake: {answer.tag}")
    except BaseException:
        await channel.close(0.5)
        raise
    return channel, JID.parse(settings.domain)


__all__ = [
    "Channel",
    "ClientSession",
    "NegotiationError",
    "PeerClosed",
    "negotiate_client",
    "negotiate_component",
    "ProtocolViolation",
    "StreamClosed",
]
