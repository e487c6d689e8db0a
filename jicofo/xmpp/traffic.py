"""What this process sends and receives over XMPP, summed over every connection it opens (the
focus's client, service and component connections, across reconnects). Read by `/stats` and the
stress runner, which reports the focus's traffic per join. Top-level elements are counted as
stanzas, stream-management acks included; stream headers and keep-alive whitespace only add bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class TrafficCounts:
    stanzas_sent: int = 0
    bytes_sent: int = 0
    writes: int = 0  # transport writes (system calls on TCP): stanzas sent together share one
    stanzas_received: int = 0
    bytes_received: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


# One per process: the focus runs as its own process, so these are the focus's figures.
TRAFFIC = TrafficCounts()
