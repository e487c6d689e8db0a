"""The demo (`bash contrib/dev.sh demo`) runs end to end: a cascade, a move, no deviations."""

from __future__ import annotations

import pytest

from jicofo.demo import run_demo

pytestmark = pytest.mark.prosody  # every test here starts a Prosody


async def test_the_demo_shows_a_call_a_cascade_and_a_move(capsys: pytest.CaptureFixture[str]) -> None:
    await run_demo(conferences=2, people=3, bridges=2, hold=0)
    out = capsys.readouterr().out
    assert "every participant sees the sources of everyone else in its conference" in out
    assert "demo1@conference.meet.test spans" in out and "a cascade, 2 relay(s)" in out
    assert "3 participant(s) of demo0@conference.meet.test moved to jvb-us-1" in out
    assert "deviations seen by the participants: 0" in out
    assert "prosody stopped, temp dir removed" in out
