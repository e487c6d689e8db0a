"""Ending an XMPP session on the server's side, for tests and the stress runner's
`drop-focus-connection` fault: a session that cannot be resumed (XEP-0198), as after a
connection lost for longer than the server's hibernation window or a session killed by an
operator.

It logs in with the same full JID. Prosody's default resource-conflict rule (`kick_old`) closes
the existing session with a `conflict` stream error, and closing a session revokes its
resumption token; then this login logs out. The owner of the old session reconnects, its
resumption is refused, and it starts a new session.
"""

from __future__ import annotations

import dataclasses
import logging

import trio

from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.settings import ClientSettings

log = logging.getLogger(__name__)


async def end_session(settings: ClientSettings, *, timeout: float = 10.0) -> None:
    """End the server's session for `settings`' full JID (it must name a resource). Raises
    trio.TooSlowError when the login does not succeed within `timeout`."""
    if not settings.username or not settings.resource:
        raise ValueError("ending a session needs the full JID: username and resource")
    # No resumption of our own, and no eager reconnect: if the old owner comes back first and
    # takes the resource again, this login is the one kicked, which is just as good.
    intruder = XMPPClient(
        dataclasses.replace(settings, stream_management=False,
                            timeouts=dataclasses.replace(settings.timeouts, reconnect_min=timeout,
                                                         ping_interval=0)),
        name=f"session killer for {settings.username}@{settings.domain}/{settings.resource}",
    )
    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            await nursery.start(intruder.run)
            log.info("%s: logged in; the old session is closed", intruder.name)
            await intruder.aclose()
            nursery.cancel_scope.cancel()
