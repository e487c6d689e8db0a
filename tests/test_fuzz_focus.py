"""Fuzzing the whole focus: generated hostile and malformed stanzas (jicofo.testing.hostile) sent
through a real Prosody to every address the focus answers (its occupant JID in a room the
attacker is a member of, that room, its full JID, its component), while a second conference keeps
working. After each batch: the focus runs, neither of its connections reconnected, both
conferences are the same as before, and the canary conference's members still exchange a
source-add and a source-remove (see jicofo.testing.fuzz for the stack and the checks).

Bounded: JICOFO_FUZZ_EXAMPLES cases (default 240) and JICOFO_FUZZ_SECONDS of sending (default
35 s); JICOFO_FUZZ_SEED makes a run repeatable (the seed is in the failure message). For a longer
run with figures: `python bench/fuzz_focus.py --help`.
"""

from __future__ import annotations

import os
import random

from jicofo.testing.fuzz import fuzz_stack, run_fuzz
from jicofo.testing.hostile import draw_cases
from jicofo.testing.prosody import ProsodyInstance

EXAMPLES = int(os.environ.get("JICOFO_FUZZ_EXAMPLES", "240"))
SECONDS = float(os.environ.get("JICOFO_FUZZ_SECONDS", "35"))
BATCH = 20


async def test_hostile_stanzas_through_prosody_leave_the_focus_and_other_conferences_working(
    prosody: ProsodyInstance,
) -> None:
    seed = int(os.environ.get("JICOFO_FUZZ_SEED", str(random.getrandbits(32))))
    cases = draw_cases(EXAMPLES, seed)
    async with fuzz_stack(prosody) as fuzz:
        figures = await run_fuzz(
            fuzz, cases, batch_size=BATCH, budget=SECONDS, seed=seed, stop_at_first=True, isolate_budget=20
        )
    print(figures.report())
    # The run did what it says: cases reached every address, and it was checked after each batch.
    assert figures.batches >= 1 and figures.checks >= figures.batches + 1
    assert not figures.failures, (
        f"JICOFO_FUZZ_SEED={seed}: {len(figures.failures)} failure(s)\n{figures.report()}"
    )
    for where in ("occupant", "room", "full", "component"):
        assert figures.sent[where] > 0, figures.report()
