#!/usr/bin/env bash
# The focus benchmark: runs the scenarios of this folder against the local stack (a throw-away
# Prosody, our focus as a child process, simulated bridges) and prints their reports and a summary.
#
#   bash bench/run.sh                      # steady-200x5, ramp, bridge-kill, shards-2 (~13 minutes)
#   bash bench/run.sh bridge-kill          # just some of them
#   RESULTS=/tmp/bench bash bench/run.sh   # where the JSON reports go (default: $TMPDIR/jicofo-bench)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
stress="$root/.venv/bin/jicofo-stress"
[ -x "$stress" ] || stress="jicofo-stress"
results="${RESULTS:-${TMPDIR:-/tmp}/jicofo-bench}"
mkdir -p "$results"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(steady-200x5 ramp bridge-kill shards-2)

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo);" \
     "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for name in "${scenarios[@]}"; do
    echo
    echo "=== $name ==="
    topology=()
    case "$name" in shards-*) topology=(--shards "${name#shards-}") ;; esac
    "$stress" --local "${topology[@]}" --scenario "$here/$name.conf" --json "$results/$name.json" \
        --progress-every 10
done

echo
echo "=== summary ==="
"$root/.venv/bin/python" - "$results" "${scenarios[@]}" <<'PY'
import json, sys
from pathlib import Path
results, names = Path(sys.argv[1]), sys.argv[2:]
print(f"{'scenario':<14} {'joins ok/att':>12} {'peak':>5} {'rate/s':>6} {'ready p50/p99':>14} "
      f"{'join->SI p50/p99':>17} {'accept->seen p99':>16} {'focus ms/join':>13} {'focus KB/p':>10} "
      f"{'focus/prosody CPU':>17} {'errors':>6}")
for name in names:
    r = json.loads((results / f"{name}.json").read_text())
    lat, procs = r["latency"], r["processes"]
    # With shards, the first shard's focus and Prosody.
    focus = procs.get("focus") or procs.get("focus-1", {})
    prosody = procs.get("prosody") or procs.get("prosody-1", {})
    def pair(s):
        return "-" if not s["count"] else f"{s['p50_ms']:.0f}/{s['p99_ms']:.0f}"
    ratio = (f"{focus['cpu_seconds'] / prosody['cpu_seconds']:.2f}"
             if focus.get("available") and prosody.get("available") and prosody["cpu_seconds"] else "-")
    print(f"{name:<14} {r['joins']['completed']:>5}/{r['joins']['attempted']:<6} {r['peak_participants']:>5} "
          f"{r['join_rate_achieved']:>6.1f} {pair(lat['conference_iq_to_ready']):>14} "
          f"{pair(lat['join_to_session_initiate']):>17} "
          f"{lat['session_accept_to_sources_seen']['p99_ms'] or '-':>16} "
          f"{focus.get('cpu_ms_per_join') or '-':>13} {focus.get('rss_kb_per_participant') or '-':>10} "
          f"{ratio:>17} {r['errors']['total']:>6}")
    if r.get("stopped_early"):
        print(f"{'':<14} stopped early: {r['stopped_early']}")
    for shard in r.get("shards") or ():
        print(f"{'':<14} shard {shard['shard']}: {shard.get('rooms')} rooms, endpoints per bridge "
              f"{shard.get('bridge_endpoints')}, rooms on two shards {shard.get('rooms_also_on_another_shard')}")
    for f in r["faults"]:
        if f["kind"] == "kill-focus":
            print(f"{'':<14} {f['fault']}: {f['affected']} on that shard, {f['reload']['reloaded']} saw the "
                  f"focus leave; {f['bystanders']} elsewhere, {f['bystanders_noticed']} noticed")
            continue
        s = f["reinvite"]
        print(f"{'':<14} {f['fault']} on {f['bridge']}: {f['affected']} affected, {f['reinvited']} re-invited "
              f"(p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms), "
              f"{f['not_reinvited']} not re-invited")
PY
