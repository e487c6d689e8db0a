"""Recordings in a stress run: in `recordings` conferences a moderator (the first member the focus
made owner) asks for a file recording as soon as it is in session, all at about the same time;
the focus's `<jibri-recording-status>` is then watched as that moderator sees it, and the
simulated Jibris are asked (their control API) where each session runs.

`kill-jibri@T[:NICK]` crashes a Jibri (the busy one with the most sessions, by default): its
connection closes without leaving any room. The report says, per session that was on it, whether
it recovered, i.e. the same session id now runs (`on`) on another Jibri and the members still see
it on, or how it ended (the status members saw last)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from jicofo.http.client import get_json, post_json
from jicofo.xmpp.errors import StanzaError, XMPPError
from jicofo.xmpp.xml import element, qn

if TYPE_CHECKING:
    from .runner import FaultRecord, Runner, StressConference

NS_JIBRI = "http://jitsi.org/protocol/jibri"
START_TIMEOUT = 30.0
HTTP_TIMEOUT = 10.0


@dataclass
class Recording:
    room: str
    requested_at: float | None = None
    answered_at: float | None = None
    session_id: str | None = None
    refused: str | None = None
    on_at: float | None = None
    statuses: list[tuple[float, str, str | None]] = field(default_factory=list)  # (time, status, failure)
    jibri_at_start: str | None = None


class RecordingLoad:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.recordings: list[Recording] = []
        self.kills: list[dict[str, Any]] = []
        self.final_jibris: list[dict[str, Any]] | None = None

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for conference in self.runner.conferences[: self.runner.sc.recordings]:
                record = Recording(conference.room)
                self.recordings.append(record)
                nursery.start_soon(self._record, conference, record)

    async def _record(self, conference: StressConference, record: Recording) -> None:
        person = await conference.moderator_in_session()
        iq = person.client.iq("set", person.focus_muc_jid,
                              element(qn(NS_JIBRI, "jibri"), {"action": "start", "recording_mode": "file"}))
        record.requested_at = trio.current_time()
        try:
            answer = await person.client.request(iq, timeout=START_TIMEOUT)
        except StanzaError as exc:
            record.refused = exc.condition
            return
        except XMPPError as exc:
            record.refused = f"no answer: {type(exc).__name__}"
            return
        record.answered_at = trio.current_time()
        payload = answer.find(qn(NS_JIBRI, "jibri"))
        record.session_id = payload.get("session_id") if payload is not None else None
        last: tuple[str, str | None] | None = None
        while person.room is not None:
            focus = person.room.occupants.get("focus")
            status = focus.presence.find(qn(NS_JIBRI, "jibri-recording-status")) if focus else None
            if status is not None and status.get("session_id") == record.session_id:
                seen = (status.get("status") or "", status.get("failure_reason"))
                if seen != last:
                    last = seen
                    now = trio.current_time()
                    record.statuses.append((now, *seen))
                    if seen[0] == "on" and record.on_at is None:
                        record.on_at = now
            await trio.sleep(0.05)

    async def _jibris(self) -> list[dict[str, Any]]:
        api = self.runner.target.jibri_api
        if api is None:
            raise RuntimeError("kill-jibri needs simulated Jibris (--local with --jibris)")
        result = await get_json(api[0], api[1], "/sim/jibris")
        return result if isinstance(result, list) else []

    async def kill(self, target: str | None, record: FaultRecord) -> None:
        jibris = await self._jibris()
        busy = [j for j in jibris if j.get("session") and not j.get("crashed")]
        nick = target or (busy[0]["nickname"] if busy else None)
        if nick is None:
            raise RuntimeError("kill-jibri: no busy Jibri to kill")
        victim = next((j for j in jibris if j["nickname"] == nick), None)
        if victim is None:
            raise KeyError(f"no jibri {nick!r}")
        sessions = [victim["session"]["session_id"]] if victim.get("session") else []
        api = self.runner.target.jibri_api
        assert api is not None
        await post_json(api[0], api[1], f"/jibris/{nick}/crash", {})
        record.bridge = None
        record.detail["jibri"] = nick
        record.detail["sessions_on_it"] = sessions
        self.kills.append({"jibri": nick, "at": record.applied_at, "sessions": sessions})

    async def finish(self) -> None:
        """At the end of the load phase: where every session runs now."""
        try:
            with trio.fail_after(HTTP_TIMEOUT):
                self.final_jibris = await self._jibris()
        except (OSError, RuntimeError, ValueError, trio.TooSlowError):
            self.final_jibris = None

    def report(self, t0: float) -> dict[str, Any]:
        where: dict[str, tuple[str, str]] = {}
        for jibri in self.final_jibris or []:
            session = jibri.get("session")
            if session and not jibri.get("crashed"):
                where[session["session_id"]] = (jibri["nickname"], session["status"])
        by_id = {r.session_id: r for r in self.recordings if r.session_id}
        kills = []
        for kill in self.kills:
            outcomes = {}
            for sid in kill["sessions"]:
                rec = by_id.get(sid)
                last = rec.statuses[-1] if rec and rec.statuses else None
                now_on = where.get(sid)
                recovered = (now_on is not None and now_on[0] != kill["jibri"] and now_on[1] == "on"
                             and last is not None and last[1] == "on")
                outcomes[sid] = {
                    "recovered": recovered,
                    "now_on": now_on[0] if now_on else None,
                    "members_see": None if last is None else
                    (last[1] + (f" ({last[2]})" if last[2] else "")),
                }
            kills.append({"jibri": kill["jibri"], "at_s": round(kill["at"] - t0, 2), "sessions": outcomes,
                          "recovered": sum(1 for o in outcomes.values() if o["recovered"]),
                          "lost": sum(1 for o in outcomes.values() if not o["recovered"])})
        return {
            "requested": len(self.recordings),
            "started": sum(1 for r in self.recordings if r.session_id),
            "refused": {r.room: r.refused for r in self.recordings if r.refused},
            "on": sum(1 for r in self.recordings if r.on_at is not None),
            "start_to_on_ms": sorted(round((r.on_at - r.requested_at) * 1000, 1) for r in self.recordings
                                     if r.on_at is not None and r.requested_at is not None),
            "running_at_end": sum(1 for r in self.recordings if r.session_id in where),
            "kills": kills,
        }
