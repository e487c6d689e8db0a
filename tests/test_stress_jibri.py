"""`jicofo-stress --local` with simulated Jibris: recordings started in several conferences at once,
one busy Jibri killed mid-run; the report says which sessions recovered on another Jibri."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jicofo.stress.scenario import Scenario, ScenarioError, scenario_from_mapping
from jicofo.testing.prosody import missing_prosody_message, prosody_available


def test_recording_knobs_are_checked() -> None:
    with pytest.raises(ScenarioError, match="jibris"):
        scenario_from_mapping({"recordings": 1})
    with pytest.raises(ScenarioError, match="recordings"):
        scenario_from_mapping({"conferences": 2, "jibris": 2, "recordings": 3})
    with pytest.raises(ScenarioError, match="kill-jibri"):
        scenario_from_mapping({"faults": ["kill-jibri@5s"]})
    sc = scenario_from_mapping({"jibris": 2, "recordings": 2, "faults": ["kill-jibri@5s:jibri-sim-1"]})
    assert isinstance(sc, Scenario) and sc.to_json()["jibris"] == 2 and sc.faults[0].target == "jibri-sim-1"


@pytest.mark.prosody
def test_recordings_survive_a_killed_jibri(tmp_path: pytest.TempPathFactory) -> None:
    if not prosody_available():
        pytest.fail(missing_prosody_message(), pytrace=False)
    out = tmp_path / "report.json"  # type: ignore[operator]
    # The kill comes well after both recordings are on (about 1 s after the start on a quiet
    # machine), leaving room for a loaded CI machine.
    result = subprocess.run(
        [sys.executable, "-m", "jicofo.stress.cli", "--local", "--conferences", "2", "--participants", "2",
         "--bridges", "1", "--jibris", "3", "--recordings", "2", "--join-rate", "10", "--duration", "14s",
         "--fault", "kill-jibri@9s", "--json", str(out), "--progress-every", "2"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    rec = report["recordings"]
    assert (rec["requested"], rec["started"], rec["on"], rec["refused"]) == (2, 2, 2, {}), rec
    (kill,) = rec["kills"]
    assert kill["jibri"].startswith("jibri-sim-") and len(kill["sessions"]) == 1
    (outcome,) = kill["sessions"].values()
    # The spare Jibri took it over; members still see it on.
    assert outcome["recovered"] and outcome["now_on"] not in (None, kill["jibri"]), kill
    assert outcome["members_see"] == "on"
    assert rec["running_at_end"] == 2
    assert f"{kill['jibri']} killed at" in result.stdout and "1 session(s) recovered, 0 lost" in result.stdout
    assert report["joins"]["failed"] == 0
