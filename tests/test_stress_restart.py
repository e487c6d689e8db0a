"""`jicofo-stress --fault restart-focus@T` (issue 14): the local focus is SIGKILLed mid-run and
started again 1 s later; the report counts who noticed and how long the focus was not serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jicofo.stress.scenario import Fault
from jicofo.testing.prosody import missing_prosody_message, prosody_available


def test_restart_focus_parses() -> None:
    assert Fault.parse("restart-focus@20s") == Fault("restart-focus", 20.0, None)


@pytest.mark.prosody
def test_a_focus_killed_mid_run_is_noticed_by_nobody(tmp_path: Path) -> None:
    if not prosody_available():
        pytest.fail(missing_prosody_message(), pytrace=False)
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "jicofo.stress.cli", "--local", "--conferences", "3",
         "--participants", "3", "--join-rate", "15", "--duration", "12s",
         "--fault", "restart-focus@4s", "--json", str(out), "--quiet", "--strict"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    (fault,) = report["faults"]
    assert fault["error"] is None and fault["affected"] == 9
    assert fault["noticed"]["participants"] == 9
    assert fault["noticed"]["noticed"] == 0, fault["noticed"]
    assert fault["reload"]["reloaded"] == 0
    assert 1000 <= fault["served_again_after_ms"] < 15000
    assert report["bridge_leaks"]["orphaned_at_load_end"] == 0
    assert report["bridge_leaks"]["left_at_end"] == 0
    assert report["joins"]["completed"] == 9 and report["errors"]["total"] == 0
