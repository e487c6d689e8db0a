"""ColibriSession's queueing without a network: a bridge that never answers, then the conference
drops the session. Every allocation still waiting (in flight, or waiting for the window of
requests in flight) must fail as a lost session, so its participant is invited elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from xml.etree.ElementTree import Element

import pytest
import trio

from jicofo.bridge import colibri
from jicofo.bridge.colibri import ColibriFailure, ColibriSession, EndpointRequest
from jicofo.bridge.model import Bridge
from jicofo.model.sources import EndpointSourceSet
from jicofo.xmpp.jid import JID
from jicofo.xmpp.xml import element


class SilentBridgeClient:
    """Writes requests and never gets an answer."""

    def __init__(self) -> None:
        self.sent: list[Element] = []
        self._ids = 0

    def iq(self, type_: str, to: object, *payload: Element) -> Element:
        self._ids += 1
        return element("{jabber:client}iq", {"type": type_, "id": str(self._ids), "to": str(to)},
                       *payload)

    async def request(self, iq: Element, timeout: float | None = None, *,
                      on_sent: Callable[[], None] | None = None) -> Element:
        self.sent.append(iq)
        if on_sent is not None:
            on_sent()
        await trio.sleep_forever()
        raise AssertionError("unreachable")


def endpoint(n: int) -> EndpointRequest:
    return EndpointRequest(f"ep{n}", None, (), False, EndpointSourceSet((), ()))


async def test_dropping_the_session_fails_every_waiting_allocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(colibri, "MAX_IN_FLIGHT", 2)
    client = SilentBridgeClient()
    session = ColibriSession(client, Bridge(JID.parse("brewery@internal.example/jvb1")),  # type: ignore[arg-type]
                             meeting_id="m1", room_name="r@c", timeout=3600)
    outcomes: dict[str, str] = {}

    async def allocate(n: int) -> None:
        try:
            await session.allocate(endpoint(n))
            outcomes[f"ep{n}"] = "allocated"
        except ColibriFailure as failure:
            outcomes[f"ep{n}"] = "lost" if failure.session_lost else "failed"

    with trio.fail_after(10):  # a lost allocation would wait for ever
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()

            async def run_session() -> None:
                with scope:
                    await session.run()
            nursery.start_soon(run_session)
            for n in range(4):
                nursery.start_soon(allocate, n)
            with trio.fail_after(5):
                while len(client.sent) < 2:  # the window is full; two more wait behind it
                    await trio.sleep(0.01)
            await trio.sleep(0.05)
            assert len(client.sent) == 2  # no more than the window
            scope.cancel()  # the conference drops the bridge
    assert outcomes == {f"ep{n}": "lost" for n in range(4)}
    assert session.finished.is_set()
