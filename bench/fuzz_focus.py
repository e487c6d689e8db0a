"""A longer fuzzing run of the whole focus (the same stack and checks as tests/test_fuzz_focus.py):
hostile and malformed stanzas through a real Prosody at every address the focus answers, checked
after each batch. Unlike the test, it goes on after a failure (what broke is rebuilt) and prints
figures: stanzas per address and per kind, batches, failures by kind with the first culprit of each.

Run: python bench/fuzz_focus.py [--examples 2000] [--seconds 300] [--batch 20] [--seed N]
Needs Prosody (contrib/dev.sh installs it) and the test extras (hypothesis).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jicofo.testing.fuzz import Figures, fuzz_stack, run_fuzz  # noqa: E402
from jicofo.testing.hostile import draw_cases  # noqa: E402
from jicofo.testing.prosody import start_prosody  # noqa: E402


async def main(args: argparse.Namespace) -> Figures:
    started = time.monotonic()
    cases = draw_cases(args.examples, args.seed)
    print(
        f"generated {len(cases)} cases in {time.monotonic() - started:.1f} s (seed {args.seed})", flush=True
    )

    def progress(figures: Figures) -> None:
        if figures.batches % 10 == 0:
            print(
                f"  batch {figures.batches}: {sum(figures.sent.values())} sent, "
                f"{len(figures.failures)} failures",
                flush=True,
            )

    async with start_prosody() as prosody, fuzz_stack(prosody) as fuzz:
        figures = await run_fuzz(
            fuzz, cases, batch_size=args.batch, budget=args.seconds, seed=args.seed, progress=progress
        )
    print(figures.report())
    print("cases per kind: " + ", ".join(f"{k} {v}" for k, v in figures.kinds.most_common()))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="cases to generate (default 2000)")
    parser.add_argument("--seconds", type=float, default=300, help="time budget for sending (default 300)")
    parser.add_argument("--batch", type=int, default=20, help="cases between checks (default 20)")
    parser.add_argument("--seed", type=int, default=random.getrandbits(32))
    parser.add_argument("--log-level", default="ERROR", help="the focus's log level on stderr")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    figures = trio.run(main, args)
    sys.exit(1 if figures.failures else 0)
