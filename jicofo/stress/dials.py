"""Dial-outs in a stress run: in `dials` conferences a moderator, once in session, asks the focus
to dial a number through Jigasi (Rayo `<dial>` with the room header), all at about the same
time. The report counts answers (a `<ref uri>`) and refusals, with the request → answer times."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from jicofo.xmpp.errors import StanzaError, XMPPError
from jicofo.xmpp.xml import element, qn

from .report import summarize

if TYPE_CHECKING:
    from .runner import Runner, StressConference

NS_RAYO = "urn:xmpp:rayo:1"
DIAL_TIMEOUT = 60.0  # three Jigasis tried at the reply timeout each


@dataclass
class Dial:
    room: str
    latency: float | None = None
    uri: str | None = None
    refused: str | None = None


class DialLoad:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.dials: list[Dial] = []

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for conference in self.runner.conferences[: self.runner.sc.dials]:
                dial = Dial(conference.room)
                self.dials.append(dial)
                nursery.start_soon(self._dial, conference, dial)

    async def _dial(self, conference: StressConference, dial: Dial) -> None:
        person = await conference.moderator_in_session()
        payload = element(qn(NS_RAYO, "dial"), {"to": "+15550100", "from": "+15550199"},
                          element(qn(NS_RAYO, "header"), {"name": "JvbRoomName", "value": conference.room}))
        started = trio.current_time()
        try:
            answer = await person.client.request(person.client.iq("set", person.focus_muc_jid, payload),
                                                 timeout=DIAL_TIMEOUT)
        except StanzaError as exc:
            dial.refused = exc.condition
            return
        except XMPPError as exc:
            dial.refused = f"no answer: {type(exc).__name__}"
            return
        dial.latency = trio.current_time() - started
        ref = answer.find(qn(NS_RAYO, "ref"))
        dial.uri = ref.get("uri") if ref is not None else None
        if dial.uri is None:
            dial.refused = "answer without <ref>"

    def report(self) -> dict[str, Any]:
        return {
            "requested": len(self.dials),
            "answered": sum(1 for d in self.dials if d.uri),
            "refused": {d.room: d.refused for d in self.dials if d.refused},
            "dial_to_answer": summarize(d.latency for d in self.dials if d.latency is not None),
        }
