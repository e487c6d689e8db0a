"""Log lines of a real call carry the room, the meeting id and the participant (issue 7: one line
per event with room, meeting id and participant in context)."""

from __future__ import annotations

import logging

from jicofo.logs import ContextFilter
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges

from .test_focus_e2e import participants, room_of, wait_bridges


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_conference_and_participant_lines_carry_their_context(prosody: ProsodyInstance) -> None:
    handler = Collect()
    logger = logging.getLogger("jicofo")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        room = room_of(prosody, "logged")
        async with simulated_bridges(prosody, 1) as _, running_focus(focus_config(prosody)) as app:
            await wait_bridges(app)
            async with participants(prosody, room, 2) as people:
                for person in people:
                    await person.wait_for_session(10)
                meeting_id = app.focus.conferences[next(iter(app.focus.conferences))].meeting_id
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)

    def context(record: logging.LogRecord) -> dict[str, str]:
        return getattr(record, "context", {})

    offers = [r for r in handler.records if "session-initiate on bridge" in r.getMessage()]
    assert len(offers) == 2
    assert {context(r).get("participant") for r in offers} == {p.endpoint_id for p in people}
    for record in offers:
        assert context(record)["room"] == room and context(record)["meeting_id"] == meeting_id
    joined = [r for r in handler.records if " joined (" in r.getMessage()]
    assert joined and all(context(r).get("room") == room and "participant" not in context(r)
                          for r in joined)
