"""The XEP-0198 side of the restart store against a real Prosody: with a journal, an IQ request
that is not answered yet is not acknowledged (nor written as handled), so a new process started
after a crash gets it again; once answered, it is."""

from __future__ import annotations

import trio

from jicofo.restart.keeper import XMPP, ConnectionJournal
from jicofo.restart.store import MemoryStore
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.waiting import wait_until
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.xml import element

from .xmpp_helpers import running, settings_for

NS = "urn:example:slow"


async def test_an_unanswered_request_is_not_acknowledged_until_answered(prosody: ProsodyInstance) -> None:
    store = MemoryStore()
    focus = XMPPClient(settings_for(prosody, "focus", resource="focus"), name="focus")
    focus.session_journal = ConnectionJournal(store, "client")
    release = trio.Event()

    async def slow(iq: object) -> None:
        await release.wait()

    focus.add_iq_handler(f"{{{NS}}}query", slow, types=("set",))
    async with running(focus), running(XMPPClient(settings_for(prosody), name="guest")) as guest, \
            trio.open_nursery() as nursery:
        assert focus.sm is not None and focus.jid is not None
        before = focus.sm.inbound
        answered = trio.Event()

        async def ask() -> None:
            await guest.request(guest.iq("set", focus.jid, element(f"{{{NS}}}query")), timeout=10)
            answered.set()

        nursery.start_soon(ask)
        await wait_until(lambda: focus.sm is not None and focus.sm.inbound > before, 5, "the IQ")
        held = focus.sm.inbound
        # Prosody asks for acks as it sends: messages to the focus keep it asking.
        for n in range(3):
            await guest.send(guest.stanza("message", {"to": str(focus.jid)},
                                          element("{jabber:client}body", text=str(n))))
        await wait_until(lambda: focus.sm is not None and focus.sm.inbound >= held + 3, 5, "messages")
        await trio.sleep(0.3)
        record = store.records[f"{XMPP}\0client"]
        assert record["inbound"] < held  # the IQ (and what came after it) would come again
        release.set()
        with trio.fail_after(5):
            await answered.wait()
        for n in range(3):
            await guest.send(guest.stanza("message", {"to": str(focus.jid)},
                                          element("{jabber:client}body", text=str(n))))
        await wait_until(lambda: store.records[f"{XMPP}\0client"]["inbound"] >= held + 3, 5,
                         "the ack after the answer")
        nursery.cancel_scope.cancel()
