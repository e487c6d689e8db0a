"""XEP-0198 stream management bookkeeping, sans-IO: counters, the unacked queue, resumption state."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol
from xml.etree.ElementTree import Element

from .errors import XMPPError

NS_SM = "urn:xmpp:sm:3"
_COUNTED = frozenset({"iq", "message", "presence"})
_MOD = 2**32


class StreamManagementError(XMPPError):
    """The peer acknowledged stanzas we never sent, or the queue overflowed."""


def is_counted(el: Element) -> bool:
    """Only stanzas count for XEP-0198, not nonzas such as <r/> or SASL elements."""
    return is_counted_tag(el.tag)


def is_counted_tag(tag: str) -> bool:
    return tag.rsplit("}", 1)[-1] in _COUNTED and tag.startswith(("{jabber:client}", "{jabber:server}"))


class SmJournal(Protocol):
    """Told about every change a new process would need to resume the session (restart store)."""

    def sent(self, seq: int, el: Element) -> None: ...

    def acked(self, h: int) -> None: ...

    def checkpoint(self, sm: StreamManagement) -> None: ...


@dataclass
class StreamManagement:
    """One stream-management session, which may outlive several TCP connections by resumption.

    `max_unacked` bounds memory: when the peer stops acknowledging, we do not queue without limit.
    """

    ack_request_every: int = 5
    max_unacked: int = 5000
    id: str | None = None
    location: str | None = None
    resumable: bool = False
    inbound: int = 0
    outbound: int = 0
    _unacked: deque[tuple[int, Element]] = field(default_factory=deque)
    _since_request: int = 0
    journal: SmJournal | None = None
    # What the last <a/> said we handled, when the client acknowledges less than it has counted
    # (IQ requests not answered yet: a new process must get them again).
    handled: int | None = None
    # Rebuilt from a store by a new process: stanzas the old one sent after its last journal
    # write may have reached the server, so a resume may acknowledge more than we know of.
    restored: bool = False

    def checkpoint(self) -> None:
        """Let the journal write the counters (before an <a/> says what we have handled)."""
        if self.journal is not None:
            self.journal.checkpoint(self)

    def restore_unacked(self, items: list[tuple[int, Element]]) -> None:
        self._unacked.extend(items)

    def enabled(self, sm_id: str | None, resumable: bool, location: str | None) -> None:
        self.id = sm_id
        self.resumable = resumable and bool(sm_id)
        self.location = location
        self.inbound = 0
        self.handled = None

    def reset(self) -> None:
        """The session is gone (resumption failed or was not possible): forget everything."""
        self.id = None
        self.location = None
        self.resumable = False
        self.inbound = 0
        self.outbound = 0
        self._unacked.clear()
        self._since_request = 0

    def take_unacked(self) -> list[Element]:
        """Remove and return what the lost session never confirmed (for logging what was lost)."""
        lost = [el for _, el in self._unacked]
        self._unacked.clear()
        return lost

    def count_inbound(self) -> None:
        self.inbound = (self.inbound + 1) % _MOD

    def record_sent(self, el: Element) -> bool:
        """Queue a sent stanza until acknowledged. Returns True when an ack should be requested."""
        if len(self._unacked) >= self.max_unacked:
            raise StreamManagementError(
                f"{self.max_unacked} stanzas are unacknowledged; the peer is not answering"
            )
        self.outbound = (self.outbound + 1) % _MOD
        self._unacked.append((self.outbound, el))
        if self.journal is not None:
            self.journal.sent(self.outbound, el)
        self._since_request += 1
        if self._since_request >= self.ack_request_every:
            self._since_request = 0
            return True
        return False

    def acknowledge(self, h: int) -> None:
        """Drop every queued stanza the peer has confirmed (h is the count it has handled)."""
        behind = (self.outbound - h) % _MOD
        if behind > len(self._unacked) and self.restored and behind > _MOD // 2:
            # Ahead of what the store knew: the old process sent these before it died.
            self.outbound = h % _MOD
            self._unacked.clear()
            behind = 0
            if self.journal is not None:
                self.journal.acked(h)
        if behind > len(self._unacked):
            raise StreamManagementError(
                f"peer acknowledged h={h}, but only {self.outbound} stanzas were sent "
                f"and {len(self._unacked)} are unacknowledged"
            )
        dropped = len(self._unacked) > behind
        while len(self._unacked) > behind:
            self._unacked.popleft()
        if dropped and self.journal is not None:
            self.journal.acked(h)

    def unacked(self) -> list[Element]:
        return [el for _, el in self._unacked]

    @property
    def unacked_count(self) -> int:
        return len(self._unacked)

    def resumed(self, h: int) -> list[Element]:
        """After <resumed h=.../>: drop what the peer got; the rest must be sent again, in order."""
        self.acknowledge(h)
        self.restored = False
        return self.unacked()
