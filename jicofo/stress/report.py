"""Figures of a stress run: latency percentiles, process CPU and memory from /proc, the error
breakdown, and the human-readable rendering of the JSON report."""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LATENCY_NAMES = {
    "conference_iq_to_ready": "conference IQ -> ready",
    "join_to_session_initiate": "join -> session-initiate",
    "start_to_session_initiate": "whole join (login -> session-initiate)",
    "session_accept_to_sources_seen": "session-accept -> sources seen by others",
    "source_add_to_seen": "source-add (screen share) -> seen by others",
    "ice_restart_to_new_credentials": "ICE restart request -> new credentials",
    "mute_to_result": "mute IQ -> result (moderator)",
    "mute_to_target_notified": "mute IQ -> target notified",
    "self_unmute_to_result": "self-unmute IQ -> result",
}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(values: Iterable[float]) -> dict[str, Any]:
    """count, p50/p90/p99/max/mean in milliseconds (None when there is no sample)."""
    data = sorted(values)
    if not data:
        return {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None,
                "mean_ms": None}

    def ms(v: float) -> float:
        return round(v * 1000, 1)

    return {
        "count": len(data),
        "p50_ms": ms(percentile(data, 50)),
        "p90_ms": ms(percentile(data, 90)),
        "p99_ms": ms(percentile(data, 99)),
        "max_ms": ms(data[-1]),
        "mean_ms": ms(sum(data) / len(data)),
    }


# ----- /proc -----------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcSample:
    cpu_seconds: float  # user + system, since the process started
    rss_kb: int
    hwm_kb: int  # peak RSS since the process started (VmHWM)


def read_proc(pid: int) -> ProcSample | None:
    """CPU and memory of `pid` from /proc; None when it is gone or /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            status = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    values: dict[str, int] = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    if "VmRSS" not in values:
        return None  # a zombie (exited, not reaped yet): no figures any more
    return ProcSample((utime + stime) / _TICKS, values.get("VmRSS", 0), values.get("VmHWM", 0))


class ProcWatch:
    """One watched process: a baseline at the start of the load phase, periodic samples (for the
    peak RSS under load) and the final figures."""

    def __init__(self, name: str, pid: int) -> None:
        self.name = name
        self.pid = pid
        self.start: ProcSample | None = None
        self.last: ProcSample | None = None
        self.peak_rss_kb = 0

    def begin(self) -> None:
        self.start = self.last = read_proc(self.pid)
        if self.start is not None:
            self.peak_rss_kb = self.start.rss_kb

    def sample(self) -> None:
        sample = read_proc(self.pid)
        if sample is not None:
            self.last = sample
            self.peak_rss_kb = max(self.peak_rss_kb, sample.rss_kb)

    def to_json(self, joins: int, peak_participants: int) -> dict[str, Any]:
        if self.start is None or self.last is None:
            return {"pid": self.pid, "available": False}
        cpu = self.last.cpu_seconds - self.start.cpu_seconds
        grown = self.peak_rss_kb - self.start.rss_kb
        return {
            "pid": self.pid,
            "available": True,
            "cpu_seconds": round(cpu, 2),
            "cpu_ms_per_join": round(cpu * 1000 / joins, 3) if joins else None,
            "rss_start_kb": self.start.rss_kb,
            "rss_peak_kb": self.peak_rss_kb,
            "rss_hwm_kb": self.last.hwm_kb,
            "rss_kb_per_participant": round(grown / peak_participants, 1) if peak_participants else None,
        }


# ----- errors ----------------------------------------------------------------------------------

_VOLATILE = [
    (re.compile(r"\b[0-9a-f]{8,}\b"), "<id>"),
    (re.compile(r"[\w.-]+@[\w.-]+(/[\w.-]+)?"), "<jid>"),
    (re.compile(r"\b\d+(\.\d+)?\b"), "<n>"),
]


def error_kind(message: str) -> str:
    """An error message with its ids, JIDs and numbers blanked, to group alike errors."""
    text = message
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text[:160]


def breakdown(messages: Iterable[str], limit: int = 20) -> dict[str, int]:
    counts = Counter(error_kind(m) for m in messages)
    return dict(counts.most_common(limit))


# ----- the human report ------------------------------------------------------------------------

def _fmt_ms(value: Any) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _latency_line(title: str, s: Mapping[str, Any]) -> str:
    return (f"  {title:<44} n={s['count']:<6} p50 {_fmt_ms(s['p50_ms']):>6}  p90 {_fmt_ms(s['p90_ms']):>6}"
            f"  p99 {_fmt_ms(s['p99_ms']):>6}  max {_fmt_ms(s['max_ms']):>6} ms")


def _ice_restart_lines(report: Mapping[str, Any]) -> list[str]:
    ice = report.get("ice_restarts")
    if not ice or not ice["requested"]:
        return []
    return [f"  ICE restarts requested {ice['requested']}: restarted in place {ice['restarted']}, refused "
            f"{ice['refused']}, no new credentials in time {ice['timeout']}, session replaced meanwhile "
            f"{ice['session_closed']}; fallback session restarts {ice['fallback']}"]


def render_text(report: Mapping[str, Any]) -> str:
    """The end-of-run report for people (the JSON report has the same figures)."""
    sc = report["scenario"]
    j = report["joins"]
    lines = [
        f"jicofo-stress: scenario {sc['name']!r}: {sc['conferences']} conferences x {sc['participants']}"
        f" participants, join rate {sc['join-rate']:g}/s, {sc['bridges']} bridge(s), "
        f"duration {sc['duration']:g} s" + (f", faults {', '.join(sc['faults'])}" if sc["faults"] else ""),
        f"  target: {report['target']}",
        f"  load phase {report['elapsed_s']:.1f} s" + (f" (stopped early: {report['stopped_early']})"
                                                        if report.get("stopped_early") else ""),
        f"joins: attempted {j['attempted']}, completed {j['completed']}, failed {j['failed']}"
        f" (still joining at the end: {j['pending']}); peak participants in session "
        f"{report['peak_participants']}, peak conferences {report['peak_conferences']}",
        f"  join rate achieved {report['join_rate_achieved']:.1f}/s; churn {report['churn']['left']} left, "
        f"{report['churn']['rejoined']} rejoined; page reloads {report.get('reloads', 0)}; "
        f"source changes {report['source_changes']['done']} "
        f"({report['source_changes']['failed']} failed)"
        + (f"; mutes {report['mutes']['done']} ({report['mutes']['refused']} refused, "
           f"{report['mutes']['failed']} failed)" if report.get("mutes") else ""),
        *_ice_restart_lines(report),
        "latency:",
    ]
    for key, title in LATENCY_NAMES.items():
        if key in report["latency"]:
            lines.append(_latency_line(title, report["latency"][key]))
    for fault in report["faults"]:
        line = f"fault {fault['fault']} at {fault['applied_at_s']:.1f} s"
        if fault.get("error"):
            line += f": not applied ({fault['error']})"
        elif fault.get("jibri"):
            line += (f" on {fault['jibri']}: {len(fault.get('sessions_on_it', []))} recording session(s) "
                     "on it (see recordings)")
        elif fault.get("expects_reinvite"):
            line += (f" on {fault['bridge']}: {fault['affected']} participant(s) on it, re-invited "
                     f"{fault['reinvited']}, not re-invited {fault['not_reinvited']}")
        else:
            line += (f"{' on ' + fault['bridge'] if fault.get('bridge') else ''}: {fault['affected']} "
                     f"participant(s) {'on it' if fault.get('bridge') else 'in session'}; "
                     f"{fault['reinvited']} got a new session after it (for any reason)")
        lines.append(line)
        if fault.get("reinvite") and fault["reinvite"]["count"]:
            lines.append(_latency_line("  re-invite after the fault", fault["reinvite"]))
            lines.append(f"    first re-invite {fault['first_reinvite_ms']:.0f} ms after the fault, the last "
                         f"{fault['reinvite_spread_ms']:.0f} ms after the first")
        if fault.get("reload"):
            reload = fault["reload"]
            lines.append(f"  pages reloaded {reload['reloaded']} (conference.focusLeft); back in session "
                         f"{reload['back_in_session']}/{fault['affected']}, not back {reload['not_back']}")
            if reload["back_after"]["count"]:
                lines.append(_latency_line("  back in session after the fault", reload["back_after"]))
        if fault.get("noticed"):
            noticed = fault["noticed"]
            lines.append(f"  noticed the restart: {noticed['noticed']}/{noticed['participants']} (saw the "
                         f"focus leave {noticed['saw_focus_leave']}, lost the session "
                         f"{noticed['lost_session']}, IQ refused {noticed['iq_refused']}); the focus "
                         f"served again {fault['served_again_after_ms']:.0f} ms after the kill")
        if "bystanders" in fault:
            lines.append(f"  shard {fault['shard']}: {fault['rooms_on_shard']} room(s); participants of the "
                         f"other shards: {fault['bystanders']}, of whom {fault['bystanders_noticed']} "
                         f"noticed")
    for shard in report.get("shards") or ():
        if "error" in shard:
            lines.append(f"shard {shard['shard']}: not read ({shard['error']})")
            continue
        bridges = ", ".join(f"{name} {count}" for name, count in shard["bridge_endpoints"].items()) or "none"
        lines.append(f"shard {shard['shard']}{'' if shard['focus_alive'] else ' (focus killed)'}: "
                     f"{shard['rooms']} room(s), endpoints per bridge: {bridges}; rooms also on another "
                     f"shard: {shard['rooms_also_on_another_shard']}")
    if report.get("recordings") is not None:
        rec = report["recordings"]
        lines.append(f"recordings: requested {rec['requested']}, started {rec['started']}, on {rec['on']}, "
                     f"running at the end {rec['running_at_end']}"
                     + (f"; start -> on {', '.join(f'{v:.0f}' for v in rec['start_to_on_ms'])} ms"
                        if rec["start_to_on_ms"] else "")
                     + (f"; refused {rec['refused']}" if rec["refused"] else ""))
        for kill in rec["kills"]:
            lines.append(f"  {kill['jibri']} killed at {kill['at_s']:.1f} s: {kill['recovered']} session(s) "
                         f"recovered, {kill['lost']} lost")
            for sid, outcome in kill["sessions"].items():
                state = (f"recovered on {outcome['now_on']}" if outcome["recovered"]
                         else f"lost (members see {outcome['members_see']})")
                lines.append(f"    session {sid}: {state}")
    if report.get("dials") is not None:
        dials = report["dials"]
        lines.append(f"dial-outs: requested {dials['requested']}, answered {dials['answered']}"
                     + (f"; refused {dials['refused']}" if dials["refused"] else ""))
        lines.append(_latency_line("  dial -> Jigasi's answer", dials["dial_to_answer"]))
    if report.get("bridge_leaks") is not None:
        leaks = report["bridge_leaks"]
        lines.append(f"bridge conferences no live participant is in: {leaks['orphaned_at_load_end']} at the "
                     f"end of the load, {leaks['left_at_end']} after everyone left")
    errors = report["errors"]
    lines.append(f"errors: {errors['total']} (participant deviations {errors['participant']}, "
                 f"failed joins {errors['join_failures']}, runner {errors['runner']})")
    for message, count in errors["breakdown"].items():
        lines.append(f"  {count:>5} x {message}")
    for name, proc in report["processes"].items():
        if not proc.get("available"):
            lines.append(f"{name}: pid {proc.get('pid')} (no /proc figures)")
            continue
        extra = ""
        if proc.get("cpu_ms_per_join") is not None:
            extra += f", {proc['cpu_ms_per_join']:.2f} ms CPU per completed join"
        if proc.get("rss_kb_per_participant") is not None:
            extra += f", {proc['rss_kb_per_participant']:.0f} KB RSS growth per participant"
        lines.append(f"{name}: CPU {proc['cpu_seconds']:.2f} s, RSS {proc['rss_start_kb'] // 1024} -> "
                     f"{proc['rss_peak_kb'] // 1024} MB (peak {proc['rss_hwm_kb'] // 1024} MB){extra}")
    traffic = report.get("focus_traffic")
    if traffic and traffic.get("per_join"):
        per_join = traffic["per_join"]
        lines.append(f"focus XMPP traffic per completed join: sent {per_join['stanzas_sent']:.1f} stanzas "
                     f"({per_join['bytes_sent'] / 1024:.1f} KB) in {per_join.get('writes', 0):.1f} writes, "
                     f"received {per_join['stanzas_received']:.1f} "
                     f"({per_join['bytes_received'] / 1024:.1f} KB)")
    focus, prosody = report["processes"].get("focus"), report["processes"].get("prosody")
    if focus and prosody and focus.get("available") and prosody.get("available") and prosody["cpu_seconds"]:
        lines.append(f"focus CPU / prosody CPU = {focus['cpu_seconds'] / prosody['cpu_seconds']:.2f}")
    return "\n".join(lines)
