"""What crossed a `TcpProxy`, as stanzas: for tests that must show what a program sent, from the
outside, e.g. that the focus sent nothing more to a bridge that died.

    wire = WireRecorder()
    proxy = TcpProxy(prosody.ip, prosody.c2s_port, tap=wire)   # the focus connects to proxy.port
    ...
    before = wire.mark()                                       # a point in the recorded streams
    ...
    late = [s for s in wire.stanzas(since=before) if s.get("to") == str(bridge_jid)]

Each connection's bytes are kept as they came (plain TCP: no TLS on the tapped connection) and
parsed when asked, with the focus's own stream parser; a stream restart (after SASL) starts a new
XML document, so the bytes are split at each XML declaration.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from jicofo.xmpp.stream import StanzaReceived, XmlStream

Mark = dict[tuple[int, str], int]
_DECLARATION = b"<?xml "


class WireRecorder:
    """A `TcpProxy` tap keeping every connection's bytes, one buffer per direction."""

    def __init__(self, content_ns: str = "jabber:client") -> None:
        self.content_ns = content_ns
        self._data: dict[tuple[int, str], bytearray] = {}

    def __call__(self, connection: int, direction: str, data: bytes) -> None:
        self._data.setdefault((connection, direction), bytearray()).extend(data)

    def mark(self) -> Mark:
        """Where every recorded stream is now; pass it as `since` to see only what came later.
        A stanza cut in half by the mark counts as later."""
        return {key: len(data) for key, data in self._data.items()}

    def stanzas(self, direction: str = "up", *, since: Mark | None = None) -> list[Element]:
        """The complete top-level elements (stanzas and nonzas) sent in `direction` ("up": by
        the proxy's client, "down": by its target), in order, connection by connection."""
        found: list[Element] = []
        for (connection, way), data in sorted(self._data.items()):
            if way != direction:
                continue
            everything = self._parse(bytes(data))
            skip = len(self._parse(bytes(data[:since.get((connection, way), 0)]))) if since else 0
            found.extend(everything[skip:])
        return found

    def _parse(self, data: bytes) -> list[Element]:
        elements: list[Element] = []
        start = data.find(_DECLARATION)
        while start != -1:
            end = data.find(_DECLARATION, start + 1)
            stream = XmlStream(content_ns=self.content_ns)
            for event in stream.receive_data(data[start:] if end == -1 else data[start:end]):
                if isinstance(event, StanzaReceived):
                    elements.append(event.element)
            start = end
        return elements
