"""Small helpers for tests that log real clients into the test Prosody."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import trio

from jicofo.tasks import single_cause
from jicofo.testing.prosody import ProsodyInstance
from jicofo.xmpp.client import BaseXMPPConnection, XMPPClient
from jicofo.xmpp.settings import ClientSettings, Timeouts, TlsMode
from jicofo.xmpp.transport import TlsSettings

C = TypeVar("C", bound=BaseXMPPConnection)

FAST = Timeouts(connect=5, negotiation=5, request=5, ping_interval=0, reconnect_min=0.05,
                reconnect_max=0.5, close=1)


def settings_for(
    prosody: ProsodyInstance, user: str | None = None, **overrides: Any
) -> ClientSettings:
    """Settings for `user` on the auth domain (or anonymous on the guest domain), no TLS."""
    password = {"focus": prosody.focus_password, "jvb": prosody.jvb_password}.get(user or "")
    base = ClientSettings(
        domain=prosody.auth_domain if user else prosody.domain,
        username=user,
        password=password,
        host=prosody.ip,
        port=prosody.c2s_port,
        tls=TlsMode.DISABLED,
        tls_settings=TlsSettings(ca_file=prosody.ca_file),
        allow_plain_without_tls=True,
        timeouts=FAST,
    )
    return dataclasses.replace(base, **overrides)


def settings_for_domain(domain: str, **overrides: Any) -> ClientSettings:
    return ClientSettings(domain=domain, tls=TlsMode.DISABLED, allow_plain_without_tls=True,
                          timeouts=FAST, **overrides)


@asynccontextmanager
async def running(conn: C) -> AsyncIterator[C]:
    """A connected client or component for the body of the block; errors come out unwrapped
    from trio's exception groups so tests can expect the real exception type."""
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(conn.run)
            try:
                yield conn
            finally:
                await conn.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise single_cause(group) from None


def connected(settings: ClientSettings, name: str | None = None) -> AbstractAsyncContextManager[XMPPClient]:
    return running(XMPPClient(settings, name=name))
