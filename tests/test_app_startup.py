"""Startup order of the focus: it serves as soon as its connections are up, without waiting for its
own first health check (which asks for a test conference and may take up to the reply timeout)."""

from __future__ import annotations

import socket

import pytest
import trio

from jicofo.health import HealthChecker
from jicofo.http.client import request
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import focus_config, running_focus
from jicofo.xmlns.conference_iq import ConferenceRequest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_focus_serves_while_its_first_health_check_is_still_running(
    prosody: ProsodyInstance, monkeypatch: pytest.MonkeyPatch,
) -> None:
    underway = trio.Event()

    async def never_finishes(self: HealthChecker) -> None:
        underway.set()
        await trio.sleep_forever()

    monkeypatch.setattr(HealthChecker, "_check", never_finishes)
    config = focus_config(prosody, {
        "jicofo.health.enabled": True,
        "jicofo.health.max-check-duration": "60 seconds",
        "jicofo.rest.host": "127.0.0.1",
        "jicofo.rest.port": _free_port(),
    })
    with trio.fail_after(15):
        async with running_focus(config) as app:
            await underway.wait()
            assert app.rest_port is not None
            status, body = await request("127.0.0.1", app.rest_port, "GET", "/about/health")
            assert (status, body) == (503, b"not checked yet\n")
            answer = await app.focus.conference_request(
                ConferenceRequest(room=f"early@{prosody.muc_domain}"))
            assert answer.ready
