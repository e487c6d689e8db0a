"""The channel's write path: stanzas sent at the same time go out in one write on TCP (group
commit), each caller returns once its bytes are written or gets the error, order is kept per
caller, a cancelled writer loses nobody else's stanza, and WebSocket keeps one element per write.
Pure logic on a recording transport."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from jicofo.xmpp.connection import Channel
from jicofo.xmpp.stream import Framing, XmlStream
from jicofo.xmpp.transport import Transport, TransportError


class RecordingTransport(Transport):
    def __init__(self, framing: Framing = Framing.TCP) -> None:
        self.framing = framing
        self.writes: list[bytes] = []
        self.gate: trio.Event | None = None  # while set, writes wait for it
        self.fail = False

    async def send(self, data: bytes) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await trio.lowlevel.checkpoint()
        if self.fail:
            raise TransportError("send failed: broken pipe")
        self.writes.append(data)

    async def receive(self) -> bytes:
        await trio.sleep_forever()
        raise AssertionError

    async def aclose(self) -> None:
        pass


def channel(transport: RecordingTransport) -> Channel:
    core = XmlStream(framing=transport.framing)
    core.open("meet.test")
    return Channel(transport, core, "test")


async def test_sends_at_the_same_time_share_one_write_in_call_order_per_sender() -> None:
    transport = RecordingTransport()
    ch = channel(transport)

    async def sender(n: int) -> None:
        for i in range(3):
            await ch.send_encoded(f"<m{n}-{i}/>".encode())

    async with trio.open_nursery() as nursery:
        for n in range(5):
            nursery.start_soon(sender, n)
    stream = b"".join(transport.writes)
    for n in range(5):
        positions = [stream.index(f"<m{n}-{i}/>".encode()) for i in range(3)]
        assert positions == sorted(positions)
    assert stream.count(b"<m") == 15
    assert len(transport.writes) < 15  # coalesced; one per stanza before


async def test_a_send_waits_for_its_write_and_a_failed_write_fails_everyone_in_it() -> None:
    transport = RecordingTransport()
    ch = channel(transport)
    transport.gate = trio.Event()
    transport.fail = True
    outcomes: list[str] = []

    async def sender(n: int) -> None:
        try:
            await ch.send_encoded(f"<m{n}/>".encode())
            outcomes.append("sent")
        except TransportError:
            outcomes.append("failed")

    async with trio.open_nursery() as nursery:
        for n in range(4):
            nursery.start_soon(sender, n)
        await trio.testing.wait_all_tasks_blocked()
        assert outcomes == []  # nobody returns before the write
        transport.gate.set()
    assert outcomes == ["failed"] * 4


async def test_a_writer_cancelled_before_its_turn_loses_nobody_elses_stanza() -> None:
    transport = RecordingTransport()
    ch = channel(transport)
    transport.gate = trio.Event()
    done: list[int] = []

    async def sender(n: int) -> None:
        await ch.send_encoded(f"<m{n}/>".encode())
        done.append(n)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender, 0)  # holds the lock, its write blocked on the gate
        await trio.testing.wait_all_tasks_blocked()
        leader_scope = trio.CancelScope()

        async def leader() -> None:
            with leader_scope:
                await ch.send_encoded(b"<cancelled/>")

        nursery.start_soon(leader)
        await trio.testing.wait_all_tasks_blocked()
        for n in (1, 2):  # join the cancelled one's batch
            nursery.start_soon(sender, n)
        await trio.testing.wait_all_tasks_blocked()
        leader_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        transport.gate.set()
    stream = b"".join(transport.writes)
    assert sorted(done) == [0, 1, 2]
    assert b"<m1/>" in stream and b"<m2/>" in stream
    assert b"<cancelled/>" not in stream


@pytest.mark.parametrize("framing", [Framing.WEBSOCKET])
async def test_websocket_keeps_one_element_per_message(framing: Framing) -> None:
    transport = RecordingTransport(framing)
    ch = channel(transport)

    async def sender(n: int) -> None:
        await ch.send_encoded(f"<m{n}/>".encode())

    async with trio.open_nursery() as nursery:
        for n in range(5):
            nursery.start_soon(sender, n)
    assert sorted(transport.writes) == [f"<m{n}/>".encode() for n in range(5)]


async def test_a_caller_cancelled_during_its_write_still_writes_the_whole_stanza() -> None:
    # Half a stanza on the stream would make the server close it (and refuse to resume): a
    # participant leaving while its source-remove is being written must not cut the write.
    transport = RecordingTransport()
    ch = channel(transport)
    transport.gate = trio.Event()
    cancelled = False

    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def writer() -> None:
            nonlocal cancelled
            with scope:
                await ch.send_encoded(b"<whole-stanza/>")
            cancelled = scope.cancelled_caught

        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()  # while the write is blocked in the transport
        await trio.testing.wait_all_tasks_blocked()
        transport.gate.set()
    assert transport.writes == [b"<whole-stanza/>"]
    assert not cancelled  # the write finished first; the cancellation lands at the next checkpoint
    await ch.send_encoded(b"<next/>")  # and the channel is still usable
    assert transport.writes[-1] == b"<next/>"


async def test_a_write_the_peer_never_takes_drops_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    transport = RecordingTransport()
    ch = channel(transport)
    ch.write_timeout = 15.0
    transport.gate = trio.Event()  # never set: the peer stopped reading
    started = trio.current_time()
    with pytest.raises(TransportError, match="did not finish within 15 s"):
        await ch.send_encoded(b"<stuck/>")
    assert trio.current_time() - started == pytest.approx(15.0)
    with pytest.raises(TransportError):
        await ch.send_encoded(b"<after/>")
