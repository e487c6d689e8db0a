"""Joining a room waits for its metadata when conference presets are enabled (upstream
ChatRoomImpl.joinAs; jicofo/conference/metadata_wait.py): the rule and the bounded wait on trio's
MockClock, the config key, and end to end against a real Prosody where a test-only module plays
the presets service (the form field, metadata set after a delay) and our mod_jicofo_room_metadata
sends it to the focus."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from jicofo.conference.metadata_wait import (
    CONFERENCE_PRESETS_FIELD,
    NS_DATA,
    presets_enabled,
    wait_for_metadata,
)
from jicofo.config.load import load_config
from jicofo.config.model import ConfigError
from jicofo.testing.prosody import ProsodyInstance, harness_plugin_dir, start_prosody
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.xmpp.jid import JID
from jicofo.xmpp.xml import element

from .conftest import _LOG_TAIL
from .test_focus_e2e import no_errors, participants, room_of, wait_bridges


def form(value: str | None) -> object:
    x = element(f"{{{NS_DATA}}}x", {"type": "form"})
    x.append(element(f"{{{NS_DATA}}}field", {"var": "muc#roomconfig_whois"},
                     element(f"{{{NS_DATA}}}value", text="moderators")))
    if value is not None:
        x.append(element(f"{{{NS_DATA}}}field", {"var": CONFERENCE_PRESETS_FIELD},
                         element(f"{{{NS_DATA}}}value", text=value)))
    return x


@pytest.mark.parametrize(("value", "enabled"), [
    ("true", True), ("1", True), (" True ", True), ("false", False), ("0", False), ("", False),
    (None, False),
])
def test_the_presets_field_decides(value: str | None, enabled: bool) -> None:
    assert presets_enabled(form(value)) is enabled  # type: ignore[arg-type]


def test_no_form_no_wait() -> None:
    assert not presets_enabled(None)


async def test_the_wait_ends_when_metadata_arrives(autojump_clock: trio.testing.MockClock) -> None:
    received = trio.Event()
    start = trio.current_time()

    async def arrive() -> None:
        await trio.sleep(3)
        received.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(arrive)
        assert await wait_for_metadata(received, 10)
    assert trio.current_time() - start == pytest.approx(3)


async def test_the_wait_is_bounded(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    assert not await wait_for_metadata(trio.Event(), 10)
    assert trio.current_time() - start == pytest.approx(10)


async def test_metadata_already_there_costs_nothing(autojump_clock: trio.testing.MockClock) -> None:
    received = trio.Event()
    received.set()
    start = trio.current_time()
    assert await wait_for_metadata(received, 10)
    assert trio.current_time() == start


BASE = {"jicofo.xmpp.client.domain": "auth.meet.test"}


def test_the_timeout_is_configured() -> None:
    assert load_config(None, BASE, env={}).conference.room_metadata_timeout == 10.0
    config = load_config(None, {**BASE, "jicofo.conference.room-metadata-timeout": "2 seconds"},
                         env={})
    assert config.conference.room_metadata_timeout == 2.0
    with pytest.raises(ConfigError, match="room-metadata-timeout"):
        load_config(None, {**BASE, "jicofo.conference.room-metadata-timeout": "-1 seconds"}, env={})


# ----- end to end ----------------------------------------------------------------------------------


@asynccontextmanager
async def presets_prosody(request: pytest.FixtureRequest, delay: float) -> AsyncIterator[ProsodyInstance]:
    presets = ('Component "presets.meet.test" "test_conference_presets"\n'
               '\tmuc_component = "conference.meet.test"\n'
               f"\tpresets_delay = {delay}")
    async with start_prosody(moderation=True, plugin_paths=[harness_plugin_dir()],
                             extra_components=presets) as instance:
        try:
            yield instance
        finally:
            request.node.stash[_LOG_TAIL] = instance.log_tail(60)


@pytest.mark.prosody
async def test_joining_waits_for_the_presets_metadata(request: pytest.FixtureRequest) -> None:
    async with presets_prosody(request, 1.0) as prosody:
        room = room_of(prosody, "preset")
        config = focus_config(prosody, {"jicofo.conference.room-metadata-timeout": "10 seconds"})
        async with simulated_bridges(prosody, 1) as _sims, running_focus(config) as app:
            await wait_bridges(app)
            started = time.monotonic()
            async with participants(prosody, room, 2) as people:
                # In the room only once the focus was ready: after the metadata came (~1 s).
                waited = time.monotonic() - started
                conference = app.focus.conferences[JID.parse(room)]
                assert conference.room_metadata is not None
                assert conference.room_metadata.start_muted_audio
                assert 1.0 <= waited < 8, waited
                # The first participants are invited under the presets: audio muted.
                for person in people:
                    session = await person.wait_for_session(15)
                    assert session.offer.start_muted is not None
                    assert (session.offer.start_muted.audio, session.offer.start_muted.video) == \
                        (True, False)
                no_errors(people)


@pytest.mark.prosody
async def test_the_wait_times_out_and_the_conference_goes_on(request: pytest.FixtureRequest) -> None:
    async with presets_prosody(request, 30.0) as prosody:
        room = room_of(prosody, "late-preset")
        config = focus_config(prosody, {"jicofo.conference.room-metadata-timeout": "1 second"})
        async with simulated_bridges(prosody, 1) as _sims, running_focus(config) as app:
            await wait_bridges(app)
            started = time.monotonic()
            async with participants(prosody, room, 2) as people:
                waited = time.monotonic() - started
                conference = app.focus.conferences[JID.parse(room)]
                assert conference.room_metadata is None
                assert 1.0 <= waited < 8, waited
                for person in people:
                    session = await person.wait_for_session(15)
                    assert session.offer.start_muted is None
                no_errors(people)
