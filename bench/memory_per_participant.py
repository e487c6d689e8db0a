"""Where the focus's memory per participant goes: the focus runs in this process under tracemalloc,
on a throw-away Prosody, with the simulated bridges and the load generator (`jicofo-stress`
against this "deployment") as child processes, so that every allocation traced is the focus's.

    .venv/bin/python bench/memory_per_participant.py [--conferences 40] [--participants 5] [--top 25]

Prints the traced memory growth per participant in session and the source lines that hold most
of it at the peak (everyone joined, before anyone leaves)."""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import trio

from jicofo.stress.local import start_bridge_sim
from jicofo.testing.prosody import start_prosody
from jicofo.testing.stack import focus_config, running_focus


async def main(args: argparse.Namespace) -> None:
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / "jicofo-memory-bench"
    workdir.mkdir(exist_ok=True)
    async with start_prosody() as prosody:
        bridges, _ = await start_bridge_sim(
            host=prosody.ip, port=prosody.c2s_port, domain=prosody.auth_domain, tls=False,
            brewery=prosody.brewery_jid, count=2, password=prosody.jvb_password, workdir=workdir)
        try:
            async with running_focus(focus_config(prosody)) as app:
                gc.collect()
                tracemalloc.start(1)
                base = tracemalloc.take_snapshot()
                base_size = tracemalloc.get_traced_memory()[0]
                total = args.conferences * args.participants
                hold = total / args.join_rate + 10
                load = await trio.lowlevel.open_process(
                    [sys.executable, "-m", "jicofo.stress.cli", "--domain", prosody.domain,
                     "--xmpp-host", prosody.ip, "--xmpp-port", str(prosody.c2s_port), "--tls", "off",
                     "--conferences", str(args.conferences), "--participants", str(args.participants),
                     "--join-rate", str(args.join_rate), "--duration", f"{hold + 5:.0f}s", "--quiet"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                with trio.fail_after(hold + 60):
                    while sum(len(c.participants) for c in app.focus.conferences.values()) < total:
                        await trio.sleep(0.5)
                await trio.sleep(3)  # every session accepted and signalled
                gc.collect()
                peak = tracemalloc.take_snapshot()
                peak_size = tracemalloc.get_traced_memory()[0]
                in_session = sum(len(c.participants) for c in app.focus.conferences.values())
                print(f"{in_session} participants in session: traced memory {base_size / 1e6:.1f} -> "
                      f"{peak_size / 1e6:.1f} MB, {(peak_size - base_size) / in_session / 1024:.1f} KB "
                      f"per participant")
                for stat in peak.compare_to(base, "lineno")[: args.top]:
                    frame = stat.traceback[0]
                    name = frame.filename.split("/jicofo/")[-1]
                    print(f"{stat.size_diff / in_session:9.0f} B/participant  "
                          f"{stat.count_diff / in_session:6.1f} blocks  {name}:{frame.lineno}")
                with trio.fail_after(hold + 60):
                    await load.wait()
        finally:
            bridges.terminate()
            await bridges.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--conferences", type=int, default=40)
    parser.add_argument("--participants", type=int, default=5)
    parser.add_argument("--join-rate", type=float, default=10)
    parser.add_argument("--top", type=int, default=25)
    trio.run(main, parser.parse_args())
