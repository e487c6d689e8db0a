"""`jicofo-stress`: the scenario parser, and one real run of the command against the local stack
(Prosody, our focus as a child process, simulated bridges) with a bridge killed midway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jicofo.stress.cli import build_parser, main, scenario_from_args
from jicofo.stress.haproxy import haproxy_available
from jicofo.stress.report import breakdown, percentile, render_text, summarize
from jicofo.stress.scenario import (
    Fault,
    Scenario,
    ScenarioError,
    load_scenario_file,
    parse_delay_range,
    parse_duration,
    parse_range,
    scenario_from_mapping,
)
from jicofo.testing.prosody import missing_prosody_message, prosody_available

# ----- the scenario ---------------------------------------------------------------------------------


def test_durations_ranges_and_faults_parse() -> None:
    assert parse_duration(30) == 30.0
    assert parse_duration("30s") == 30.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2m") == 120.0
    assert parse_duration("1 minute") == 60.0
    assert parse_range(5) == (5, 5)
    assert parse_range("3-8") == (3, 8)
    assert Fault.parse("kill-bridge@30s") == Fault("kill-bridge", 30.0)
    assert Fault.parse("graceful-bridge@1m:jvb-sim-2") == Fault("graceful-bridge", 60.0, "jvb-sim-2")
    for bad in ("5x", "-1s", "soon"):
        with pytest.raises(ScenarioError, match="duration"):
            parse_duration(bad)
    for bad in ("8-3", "0", "a-b", "3-500"):
        with pytest.raises(ScenarioError, match="participants"):
            parse_range(bad)
    assert parse_delay_range("10s-30s") == (10.0, 30.0)
    assert parse_delay_range("500ms") == (0.5, 0.5)
    assert Scenario().reload_delay == (10.0, 30.0)  # the web client's page reload
    with pytest.raises(ScenarioError, match="reload-delay"):
        parse_delay_range("30s-10s")
    for bad in ("explode@3s", "kill-bridge", "kill-bridge@later"):
        with pytest.raises(ScenarioError):
            Fault.parse(bad)


def test_knobs_are_bounded_and_named_in_errors() -> None:
    with pytest.raises(ScenarioError, match="conferences"):
        Scenario(conferences=0)
    with pytest.raises(ScenarioError, match="participants"):
        Scenario(conferences=10_000, participants=(10, 10))
    with pytest.raises(ScenarioError, match="after the end"):
        Scenario(duration=10, faults=(Fault("kill-bridge", 20),))
    with pytest.raises(ScenarioError, match="needs simulated bridges"):
        Scenario(bridges=0, faults=(Fault("kill-bridge", 1),))
    with pytest.raises(ScenarioError, match="unknown scenario key 'speed'"):
        scenario_from_mapping({"speed": 3})
    with pytest.raises(ScenarioError, match="join-rate"):
        scenario_from_mapping({"join-rate": 0})


def test_a_scenario_file_with_flags_over_it(tmp_path: Path) -> None:
    path = tmp_path / "steady.conf"
    path.write_text('conferences = 200\nparticipants = "3-8"\njoin-rate = 50\nhold = 60s\n'
                    'duration = 2 minutes\nfaults = ["kill-bridge@30s", "unhealthy-bridge@45s:jvb-sim-2"]\n'
                    'stop-p99 = 2s\n')
    data = load_scenario_file(path)
    scenario = scenario_from_mapping(data)
    assert scenario.name == "steady"
    assert (scenario.conferences, scenario.participants, scenario.join_rate) == (200, (3, 8), 50.0)
    assert (scenario.hold, scenario.duration, scenario.stop_p99) == (60.0, 120.0, 2.0)
    assert scenario.faults == (Fault("kill-bridge", 30.0), Fault("unhealthy-bridge", 45.0, "jvb-sim-2"))
    json_file = tmp_path / "small.json"
    json_file.write_text(json.dumps({"conferences": 3, "participants": 4, "churn": 6}))
    args = build_parser().parse_args(["--scenario", str(json_file), "--local", "--conferences", "7",
                                      "--fault", "drop-focus-connection@5s"])
    merged = scenario_from_args(args)
    assert (merged.conferences, merged.participants, merged.churn) == (7, (4, 4), 6.0)
    assert merged.faults == (Fault("drop-focus-connection", 5.0),)
    assert merged.bridges == 2  # the local stack's default
    remote = scenario_from_args(build_parser().parse_args(["--xmpp-host", "x", "--domain", "x"]))
    assert remote.bridges == 0  # a deployment brings its own bridges


def test_bad_flags_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--local", "--participants", "9-2"]) == 2
    assert "participants" in capsys.readouterr().err
    assert main(["--conferences", "2"]) == 2  # neither --local nor a deployment
    assert "--local" in capsys.readouterr().err
    assert main(["--shards", "2", "--domain", "meet.example.com", "--xmpp-host", "127.0.0.1"]) == 2
    assert "--shards: only with --local" in capsys.readouterr().err
    assert main(["--local", "--shards", "5"]) == 2
    assert "--shards: between 1 and 4" in capsys.readouterr().err


def test_percentiles_and_error_grouping() -> None:
    data = sorted(i / 1000 for i in range(1, 101))  # 1..100 ms
    assert percentile(data, 50) == 0.05
    assert percentile(data, 99) == 0.099
    s = summarize(data)
    assert (s["count"], s["p50_ms"], s["p90_ms"], s["p99_ms"], s["max_ms"]) == (100, 50.0, 90.0, 99.0, 100.0)
    assert summarize([])["p99_ms"] is None
    grouped = breakdown(["offer a1b2c3d4: 3 ssrcs missing", "offer deadbeef: 5 ssrcs missing",
                         "no answer to our session-accept"])
    assert grouped == {"offer <id>: <n> ssrcs missing": 2, "no answer to our session-accept": 1}


# ----- a real run ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def killed_bridge_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    """5 conferences x 3 participants on two bridges; the busiest bridge is killed at 5 s."""
    if not prosody_available():
        pytest.fail(missing_prosody_message(), pytrace=False)
    out = tmp_path_factory.mktemp("stress") / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "jicofo.stress.cli", "--local", "--conferences", "5", "--participants", "3",
         "--join-rate", "15", "--duration", "9s", "--fault", "kill-bridge@5s", "--source-changes", "30",
         "--json", str(out), "--progress-every", "2", "--strict"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text()), result.stdout, result.stderr


@pytest.mark.prosody
def test_a_small_local_run_reports_joins_latencies_and_process_figures(
    killed_bridge_run: tuple[dict[str, Any], str, str],
) -> None:
    report, stdout, stderr = killed_bridge_run
    assert report["joins"] == {"attempted": 15, "completed": 15, "failed": 0, "pending": 0}
    assert report["errors"]["total"] == 0, report["errors"]
    assert report["peak_participants"] == 15
    for key in ("conference_iq_to_ready", "join_to_session_initiate", "session_accept_to_sources_seen"):
        figures = report["latency"][key]
        assert figures["count"] > 0, key
        assert 0 <= figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"] <= figures["max_ms"], key
    assert report["latency"]["conference_iq_to_ready"]["count"] == 15
    for name in ("focus", "prosody", "bridges", "load generator"):
        proc = report["processes"][name]
        assert proc["available"] and proc["cpu_seconds"] > 0 and proc["rss_peak_kb"] > 0, name
    assert report["processes"]["focus"]["cpu_ms_per_join"] > 0
    # The focus's own XMPP traffic: at least a session-initiate out and a session-accept in per join.
    per_join = report["focus_traffic"]["per_join"]
    assert per_join["stanzas_sent"] >= 1 and per_join["stanzas_received"] >= 1, per_join
    assert per_join["bytes_sent"] > 1000 and per_join["bytes_received"] > 1000, per_join
    assert "focus XMPP traffic per completed join: sent" in stdout
    # The human report on stdout, the periodic progress lines (not a terminal) on stderr.
    assert "joins: attempted 15, completed 15, failed 0" in stdout
    assert "join -> session-initiate" in stdout and "focus: CPU" in stdout
    assert "] conferences 5/5 | in session 15" in stderr
    assert render_text(report).splitlines()[0] == stdout.splitlines()[0]


@pytest.mark.prosody
def test_every_participant_of_a_killed_bridge_is_re_invited(
    killed_bridge_run: tuple[dict[str, Any], str, str],
) -> None:
    report, stdout, _ = killed_bridge_run
    (fault,) = report["faults"]
    assert fault["kind"] == "kill-bridge" and fault["error"] is None
    assert fault["bridge"].startswith("jvb-sim-")
    assert fault["affected"] >= 3  # the busiest of two bridges has at least one conference
    assert fault["reinvited"] == fault["affected"] - fault["left_before_reinvite"]
    assert fault["not_reinvited"] == 0
    assert fault["reinvite"]["count"] == fault["reinvited"]
    assert 0 < fault["reinvite"]["p50_ms"] <= fault["reinvite"]["max_ms"] < 5000
    assert f"fault kill-bridge@5s at 5.0 s on {fault['bridge']}" in stdout


@pytest.mark.prosody
def test_after_the_focus_session_is_dropped_every_page_reloads_and_no_bridge_conference_leaks(
    tmp_path: Path,
) -> None:
    """The focus's XMPP session ends on Prosody at 4 s (it cannot resume): every participant sees
    the focus leave, reloads, and is back in session; the bridges keep nothing of the old calls."""
    if not prosody_available():
        pytest.fail(missing_prosody_message(), pytrace=False)
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "jicofo.stress.cli", "--local", "--conferences", "3", "--participants", "3",
         "--join-rate", "15", "--duration", "12s", "--fault", "drop-focus-connection@4s",
         "--reload-delay", "1s-2s", "--json", str(out), "--quiet", "--strict"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    (fault,) = report["faults"]
    assert fault["error"] is None and fault["affected"] == 9
    assert fault["reload"]["reloaded"] == 9 and report["reloads"] == 9
    assert fault["reload"]["back_in_session"] == 9 and fault["reload"]["not_back"] == 0
    assert fault["reload"]["back_after"]["count"] == 9
    assert report["bridge_leaks"]["orphaned_at_load_end"] == 0
    assert report["bridge_leaks"]["left_at_end"] == 0
    assert report["joins"]["completed"] == 18 and report["errors"]["total"] == 0


@pytest.mark.prosody
def test_in_place_ice_restarts_are_mixed_in_with_their_latency(tmp_path: Path) -> None:
    if not prosody_available():
        pytest.fail(missing_prosody_message(), pytrace=False)
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "jicofo.stress.cli", "--local", "--conferences", "2", "--participants", "3",
         "--join-rate", "15", "--duration", "8s", "--ice-restarts-per-minute", "60",
         "--json", str(out), "--quiet", "--strict"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["scenario"]["ice-restarts-per-minute"] == 60
    ice = report["ice_restarts"]
    assert ice["requested"] > 0 and ice["restarted"] > 0, ice
    assert ice["timeout"] == 0, ice
    assert report["latency"]["ice_restart_to_new_credentials"]["count"] == ice["restarted"]
    assert report["errors"]["total"] == 0, report["errors"]
    assert "ICE restart request -> new credentials" in result.stdout
    assert f"ICE restarts requested {ice['requested']}" in result.stdout


@pytest.mark.prosody
def test_mutes_mixed_into_a_run_are_answered_and_timed(tmp_path: Path) -> None:
    """Moderators mute members' audio and the members unmute themselves during the run: every
    mute is answered, the target is told, and the three latencies are in the report."""
    if not prosody_available():
        pytest.fail(missing_prosody_message(), pytrace=False)
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "jicofo.stress.cli", "--local", "--conferences", "3", "--participants", "3",
         "--join-rate", "15", "--duration", "8s", "--mutes-per-minute", "120", "--bridges", "1",
         "--json", str(out), "--progress-every", "2", "--strict"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["errors"]["total"] == 0, report["errors"]
    mutes = report["mutes"]
    assert mutes["done"] > 0 and mutes["refused"] == 0 and mutes["failed"] == 0, mutes
    for key in ("mute_to_result", "mute_to_target_notified", "self_unmute_to_result"):
        assert report["latency"][key]["count"] == mutes["done"], key
    assert f"mutes {mutes['done']} (0 refused, 0 failed)" in result.stdout
    assert "mute IQ -> target notified" in result.stdout


@pytest.mark.prosody
def test_two_shards_behind_haproxy_share_the_bridges_and_a_killed_focus_hurts_only_its_shard(
    tmp_path: Path,
) -> None:
    """Two shards (a Prosody and a focus each) behind HAProxy, which routes by the WebSocket URL's
    `room`; the two simulated bridges are in both breweries. Shard 2's focus is SIGKILLed at 5 s:
    its rooms' members see the focus leave (once Prosody's 10 s hibernation ends) and cannot come
    back (no focus there); the other shard's members notice nothing."""
    if not prosody_available():
        pytest.fail(missing_prosody_message(), pytrace=False)
    if not haproxy_available():
        pytest.fail("haproxy is not installed: run the tests with `bash contrib/dev.sh test`, "
                    "which installs it", pytrace=False)
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "jicofo.stress.cli", "--local", "--shards", "2", "--conferences", "16",
         "--participants", "2", "--join-rate", "20", "--duration", "20s", "--fault", "kill-focus@5s:2",
         "--reload-delay", "1s-2s", "--json", str(out), "--quiet"],
        capture_output=True, text=True, timeout=180, env={**os.environ},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert "2 shards behind haproxy" in report["target"]
    first, second = report["shards"]
    # Every room on exactly one shard, both shards serving some.
    assert first["rooms"] + second["rooms"] == 16
    assert first["rooms"] >= 1 and second["rooms"] >= 1
    assert first["rooms_also_on_another_shard"] == 0
    assert first["focus_alive"] and not second["focus_alive"]
    # The bridges serve both shards: one has endpoints of each shard's focus.
    assert set(first["bridge_endpoints"]) & set(second["bridge_endpoints"]), report["shards"]
    (fault,) = report["faults"]
    assert fault["error"] is None and fault["shard"] == 2
    assert fault["rooms_on_shard"] == second["rooms"]
    assert fault["affected"] == 2 * second["rooms"]
    assert fault["bystanders"] == 2 * first["rooms"] and fault["bystanders_noticed"] == 0
    assert fault["reload"]["reloaded"] == fault["affected"]
    # The reloaded pages of shard 2 find no focus there; nothing else went wrong.
    errors = report["errors"]
    assert errors["participant"] == 0 and errors["runner"] == 0, errors
    assert 0 < report["joins"]["failed"] <= fault["affected"]
    assert all("conference request" in message for message in errors["breakdown"]), errors
    for name in ("focus-1", "focus-2", "prosody-1", "prosody-2", "haproxy", "bridges"):
        assert report["processes"][name]["available"], name
    assert "shard 2 (focus killed)" in result.stdout
