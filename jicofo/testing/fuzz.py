"""Fuzzing the whole focus through a real Prosody (tests/test_fuzz_focus.py, bench/fuzz_focus.py).

The stack: a test Prosody, our focus in-process (client connection and XEP-0114 component), one
simulated bridge, and
- a *canary* conference: two simulated members in session, which the attacker never touches;
- a *target* conference: a simulated member in session with a peer; that member is the
  attacker's inside hand (it writes to the room and to the focus's occupant JID, where members'
  Jingle goes, with its real session id);
- two anonymous clients in no room, writing to the focus's full JID and to its component: one
  sends stanzas, the other raw bytes (Prosody closes its stream for what is not well-formed; it
  reconnects).

Cases (jicofo.testing.hostile) go out in batches. After each batch every attacker's stanzas are
flushed (a ping through the same path, answered by the focus) and the stack is checked: the focus
is running, neither of its connections reconnected, both conferences still exist (the same
objects), the canary's members still exchange a source-add (one adds a screen share, the other is
sent it by the focus, then the same for its removal), nothing was logged with a traceback, and no
conference exists for a room outside the configured MUC. A failed batch is replayed one case at a
time (with a check after each) to name the culprit; then what broke is rebuilt and the run goes on
(or stops, with `stop_at_first`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import trio

from jicofo.app import FocusApp
from jicofo.conference.conference import Conference
from jicofo.sim.participant import ParticipantError, ParticipantOptions, SimulatedParticipant
from jicofo.testing.hostile import Case
from jicofo.testing.prosody import ProsodyInstance
from jicofo.testing.stack import focus_config, running_focus, simulated_bridges
from jicofo.testing.waiting import wait_until
from jicofo.xmpp.client import XMPPClient
from jicofo.xmpp.errors import XMPPError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.settings import ClientSettings, Timeouts, TlsMode
from jicofo.xmpp.stream import ParserLimits
from jicofo.xmpp.transport import TlsSettings
from jicofo.xmpp.xml import element, qn

log = logging.getLogger(__name__)

NS_PING = "urn:xmpp:ping"
DEADLINE = 15.0  # for each wait of a check: generous, the machine is shared
FAST = Timeouts(
    connect=5, negotiation=5, request=5, ping_interval=0, reconnect_min=0.05, reconnect_max=0.5, close=1
)
# The attacker's own clients must not be the ones that break on what the MUC reflects to them.
ROOMY = ParserLimits(
    max_stanza_bytes=64 << 20, max_depth=100_000, max_attributes=100_000, max_elements=10_000_000
)


@dataclass
class Failure:
    kind: str
    detail: str
    batch: int
    culprit: Case | None = None

    def describe(self) -> str:
        culprit = self.culprit.describe() if self.culprit is not None else "(not isolated)"
        return f"{self.kind}: {self.detail}\n    batch {self.batch}; culprit {culprit}"


@dataclass
class Figures:
    seed: int = 0
    sent: Counter[str] = field(default_factory=Counter)  # per address
    kinds: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    checks: int = 0
    send_errors: int = 0
    raw_stream_closed: int = 0  # Prosody closed the raw attacker's stream (not-well-formed)
    attacker_rejoins: int = 0
    rebuilt: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    wall: float = 0.0

    def failure_kinds(self) -> Counter[str]:
        return Counter(f.kind for f in self.failures)

    def report(self) -> str:
        lines = [
            f"seed {self.seed}: {sum(self.sent.values())} stanzas in {self.batches} batches, "
            f"{self.wall:.1f} s wall, {self.checks} checks",
            "sent per address: " + ", ".join(f"{k} {v}" for k, v in sorted(self.sent.items())),
            f"send errors {self.send_errors}; "
            f"raw attacker's stream closed by Prosody {self.raw_stream_closed}; "
            f"attacker re-joined {self.attacker_rejoins}; rebuilt {dict(self.rebuilt)}",
            f"failures: {len(self.failures)} " + str(dict(self.failure_kinds())),
        ]
        lines += ["  " + f.describe() for f in self.distinct_failures()]
        return "\n".join(lines)

    def distinct_failures(self) -> list[Failure]:
        """The first failure of each (what happened, what kind of case did it)."""
        seen: dict[tuple[str, str], Failure] = {}
        for f in self.failures:
            seen.setdefault((f.kind, f.culprit.kind if f.culprit else ""), f)
        return list(seen.values())


class _ErrorLog(logging.Handler):
    """Records logged with a traceback, or at ERROR and above, by the focus (not by the
    simulators or the attacker's clients, which log under the same XMPP modules with their
    connection's name first)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(("jicofo.sim", "jicofo.testing")):
            return False
        return not record.getMessage().startswith("anonymous@")

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        taken, self.records = self.records, []
        return [
            f"{r.name}: {r.getMessage().splitlines()[0][:300]}"
            + (
                f" ({r.exc_info[0].__name__}: {str(r.exc_info[1])[:200]})"
                if r.exc_info and r.exc_info[0]
                else ""
            )
            for r in taken
        ]


def _client_settings(prosody: ProsodyInstance, **overrides: object) -> ClientSettings:
    base = ClientSettings(
        domain=prosody.domain,
        host=prosody.ip,
        port=prosody.c2s_port,
        tls=TlsMode.DISABLED,
        tls_settings=TlsSettings(ca_file=prosody.ca_file),
        allow_plain_without_tls=True,
        timeouts=FAST,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


class FuzzStack:
    """The running stack and the attacker's positions in it (see the module docstring)."""

    def __init__(self, prosody: ProsodyInstance, app: FocusApp, nursery: trio.Nursery) -> None:
        self.prosody = prosody
        self.app = app
        self.nursery = nursery
        self.muc = prosody.muc_domain
        self.generation = 0
        self.canary: list[SimulatedParticipant] = []
        self.canary_room = JID.parse(f"canary@{self.muc}")
        self.canary_conference: Conference | None = None
        self.target_room = JID.parse(f"target@{self.muc}")
        self.target_conference: Conference | None = None
        self.attacker: SimulatedParticipant | None = None
        self.peer: SimulatedParticipant | None = None
        self.anon = XMPPClient(_client_settings(prosody), name="anonymous@fuzz-anon")
        self.raw = XMPPClient(_client_settings(prosody, stream_management=False), name="anonymous@fuzz-raw")
        self.errors = _ErrorLog()
        self.sessions = app.client.sessions
        self.component_connections = app.component.connections if app.component else 0
        self._people = 0

    # ----- building ------------------------------------------------------------------------------

    async def _member(self, room: JID, *, roomy: bool) -> SimulatedParticipant:
        self._people += 1
        settings = _client_settings(self.prosody, limits=ROOMY) if roomy else _client_settings(self.prosody)
        person = SimulatedParticipant(
            ParticipantOptions(
                xmpp=settings, room=str(room), nick=f"{self._people:02x}f0a1b2", seed=self._people
            )
        )
        await self.nursery.start(person.run)
        return person

    async def _pair(self, room: JID, *, roomy: bool) -> tuple[list[SimulatedParticipant], Conference]:
        people = [await self._member(room, roomy=roomy) for _ in range(2)]
        for person in people:
            await person.wait_for_session(DEADLINE)
        for person in people:
            other = next(p for p in people if p is not person)
            assert other.endpoint_id is not None
            await person.wait_for_remote_sources(other.endpoint_id, DEADLINE)
        return people, self.app.focus.conferences[room]

    async def build_canary(self) -> None:
        for person in self.canary:
            await person.leave()
        if self.canary:
            self.canary_room = JID.parse(f"canary-{self.generation}@{self.muc}")
        self.canary, self.canary_conference = await self._pair(self.canary_room, roomy=False)

    async def build_target(self) -> None:
        for person in (self.attacker, self.peer):
            if person is not None:
                await person.leave()
        if self.attacker is not None:
            self.target_room = JID.parse(f"target-{self.generation}@{self.muc}")
        (self.attacker, self.peer), self.target_conference = await self._pair(self.target_room, roomy=True)

    async def start(self) -> None:
        logging.getLogger().addHandler(self.errors)
        await self.nursery.start(self.anon.run)
        await self.nursery.start(self.raw.run)
        await self.build_canary()
        await self.build_target()

    def stop(self) -> None:
        logging.getLogger().removeHandler(self.errors)

    # ----- sending -------------------------------------------------------------------------------

    def values(self) -> dict[str, str]:
        issued = int(repr(self.app.client._ids)[6:-1]) - 1  # itertools.count(n): the next is n
        return {
            "MUC": self.muc,
            "TARGET": str(self.target_room),
            "CANARY": str(self.canary_room),
            "FOCUS_ID": f"{self.app.client._id_prefix}-{max(issued, 1)}",
        }

    def address(self, where: str) -> str:
        if where == "component":
            assert self.app.component is not None and self.app.component.jid is not None
            return str(self.app.component.jid)
        if where == "full":
            return str(self.app.client.jid)
        if where == "occupant":
            return str(self.target_room.with_resource("focus"))
        raise ValueError(where)

    async def send(self, case: Case, figures: Figures) -> None:
        figures.kinds[case.kind] += 1
        figures.sent[f"raw->{case.raw_to}" if case.raw is not None else case.address] += 1
        try:
            if case.raw is not None:
                await self._send_raw(case, figures)
                return
            assert self.attacker is not None
            sid = self.attacker.session.sid if self.attacker.session is not None else None
            stanza = case.materialize(self.values(), sid)
            if case.address == "room":
                kind = stanza.tag.rsplit("}", 1)[-1]
                own = self.target_room.with_resource(self.attacker.endpoint_id or "")
                stanza.set("to", str(own) if kind == "presence" else str(self.target_room))
                await self.attacker.client.send(stanza)
            elif case.address == "occupant":
                stanza.set("to", self.address("occupant"))
                await self.attacker.client.send(stanza)
            else:
                stanza.set("to", self.address(case.address))
                await self.anon.send(stanza)
        except (XMPPError, ValueError) as exc:
            figures.send_errors += 1
            log.info("fuzz: could not send %s: %s", case.kind, exc)

    async def _send_raw(self, case: Case, figures: Figures) -> None:
        with trio.move_on_after(DEADLINE):
            await self.raw.wait_connected()
        channel = self.raw._channel
        if channel is None:
            figures.send_errors += 1
            return
        sessions = self.raw.sessions
        await channel.send_raw(case.raw_bytes(self.values(), self.address(case.raw_to)))
        # A ping behind it tells whether Prosody kept the stream (and holds the next case back
        # until the verdict is in).
        try:
            await self.raw.request(
                self.raw.iq("get", self.prosody.domain, element(qn(NS_PING, "ping"))), timeout=5
            )
        except XMPPError:
            pass
        if self.raw.sessions != sessions or not self.raw.connected:
            figures.raw_stream_closed += 1

    async def flush(self) -> None:
        """Each attacker's path to the focus once more with a ping: the focus has read what went
        before once it answers (or it is gone: the check will say)."""
        pings: list[tuple[XMPPClient, str]] = [(self.anon, self.address("full"))]
        if self.app.component is not None:
            pings.append((self.anon, self.address("component")))
        if self.attacker is not None and self.attacker.state == "joined":
            pings.append((self.attacker.client, self.address("occupant")))
        for client, to in pings:
            try:
                await client.request(client.iq("get", to, element(qn(NS_PING, "ping"))), timeout=5)
            except XMPPError as exc:
                log.info("fuzz: flush ping to %s: %s", to, exc)

    # ----- checking -------------------------------------------------------------------------------

    async def check(self, figures: Figures) -> list[tuple[str, str]]:
        """What is wrong with the stack now, as (kind, detail); empty when all is well."""
        figures.checks += 1
        app = self.app
        problems: list[tuple[str, str]] = []
        if app.stop_requested.is_set():
            problems.append(("focus stopped", str(app.stop_reason)))
            return problems
        if app.client.sessions != self.sessions:
            problems.append(
                ("focus client stream re-established", f"sessions {self.sessions} -> {app.client.sessions}")
            )
            self.sessions = app.client.sessions
        if app.component is not None and app.component.connections != self.component_connections:
            problems.append(
                (
                    "focus component reconnected",
                    f"connections {self.component_connections} -> {app.component.connections}",
                )
            )
            self.component_connections = app.component.connections
        try:
            with trio.fail_after(DEADLINE):
                await app.client.wait_connected()
                if app.component is not None:
                    await app.component.wait_connected()
        except trio.TooSlowError:
            problems.append(("focus not connected", f"not connected within {DEADLINE} s"))
            return problems
        if app.focus.conferences.get(self.canary_room) is not self.canary_conference:
            problems.append(("canary conference ended", str(self.canary_room)))
        if app.focus.conferences.get(self.target_room) is not self.target_conference:
            problems.append(("target conference ended", str(self.target_room)))
        elsewhere = [str(room) for room in app.focus.conferences if room.domain != self.muc]
        if elsewhere:
            problems.append(("conference for a room outside the MUC", ", ".join(elsewhere[:5])))
            for room, conference in list(app.focus.conferences.items()):
                if room.domain != self.muc:
                    conference.stop("fuzz: not on the MUC")
        if not any(kind == "canary conference ended" for kind, _ in problems):
            detail = await self._canary_exchange()
            if detail:
                problems.append(("canary source-add not relayed", detail))
        problems += [("exception in log", line) for line in self.errors.take()]
        return problems

    async def _canary_exchange(self) -> str | None:
        sender, receiver = self.canary
        assert sender.endpoint_id is not None
        before = len(receiver.remote_sources_of(sender.endpoint_id).sources)

        def count() -> int:
            return len(receiver.remote_sources_of(sender.endpoint_id or "").sources)

        try:
            name = await sender.add_source("desktop")
            await receiver.wait_for(lambda: count() > before, DEADLINE, "the canary's source-add")
            await sender.remove_source(name)
            await receiver.wait_for(lambda: count() == before, DEADLINE, "the canary's source-remove")
        except (ParticipantError, XMPPError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    async def repair(self, problems: list[tuple[str, str]], figures: Figures) -> None:
        """Rebuild what the problems broke, so that the run can go on."""
        kinds = {kind for kind, _ in problems}
        self.generation += 1
        if kinds & {"canary conference ended", "canary source-add not relayed"}:
            figures.rebuilt["canary"] += 1
            await self.build_canary()
        if "target conference ended" in kinds or self.attacker is None or self.attacker.state != "joined":
            figures.rebuilt["target"] += 1
            await self.build_target()
        self.errors.take()

    async def keep_attacker_in(self, figures: Figures) -> None:
        """The MUC (or the focus) may put the attacker out of the room: that is not a failure,
        but it needs to be back for the next batch."""
        if (
            self.attacker is not None
            and self.attacker.state == "joined"
            and self.peer is not None
            and self.peer.state == "joined"
        ):
            return
        figures.attacker_rejoins += 1
        self.generation += 1
        await self.build_target()


@asynccontextmanager
async def fuzz_stack(prosody: ProsodyInstance) -> AsyncIterator[FuzzStack]:
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(simulated_bridges(prosody, 1))
        app = await stack.enter_async_context(running_focus(focus_config(prosody)))
        nursery = await stack.enter_async_context(trio.open_nursery())
        await wait_until(
            lambda: app.brewery is not None and len(app.brewery.operational_bridges()) >= 1,
            DEADLINE,
            "the bridge",
        )
        fuzz = FuzzStack(prosody, app, nursery)
        try:
            await fuzz.start()
            yield fuzz
        finally:
            fuzz.stop()
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                for person in [*fuzz.canary, fuzz.attacker, fuzz.peer]:
                    if person is not None:
                        await person.leave()
                await fuzz.anon.aclose()
                await fuzz.raw.aclose()
            nursery.cancel_scope.cancel()


async def run_fuzz(
    fuzz: FuzzStack,
    cases: list[Case],
    *,
    batch_size: int,
    budget: float,
    seed: int = 0,
    stop_at_first: bool = False,
    progress: Callable[[Figures], None] | None = None,
    isolate_budget: float = 120.0,
) -> Figures:
    """Send `cases` in batches until done or `budget` seconds are spent; the replay of a failed
    batch may take up to `isolate_budget` seconds more."""
    figures = Figures(seed=seed)
    started = time.monotonic()
    end = started + budget
    problems = await fuzz.check(figures)
    if problems:
        raise AssertionError(f"the stack is not healthy before fuzzing: {problems}")
    for first in range(0, len(cases), batch_size):
        if time.monotonic() >= end:
            break
        batch = cases[first : first + batch_size]
        figures.batches += 1
        for case in batch:
            await fuzz.send(case, figures)
        await fuzz.flush()
        problems = await fuzz.check(figures)
        if problems:
            await _isolate(fuzz, batch, problems, figures, time.monotonic() + isolate_budget)
            if stop_at_first:
                break
        await fuzz.keep_attacker_in(figures)
        if progress is not None:
            progress(figures)
    figures.wall = time.monotonic() - started
    return figures


async def _isolate(
    fuzz: FuzzStack, batch: list[Case], problems: list[tuple[str, str]], figures: Figures, until: float
) -> None:
    """Replay the batch one case at a time to find which case does what; record the failures."""
    number = figures.batches
    await fuzz.repair(problems, figures)
    found: dict[str, Failure] = {}
    for case in batch:
        if time.monotonic() >= until or len(found) == len({k for k, _ in problems}):
            break
        await fuzz.keep_attacker_in(figures)
        await fuzz.send(case, figures)
        await fuzz.flush()
        again = await fuzz.check(figures)
        for kind, detail in again:
            found.setdefault(kind, Failure(kind, detail, number, case))
        if again:
            await fuzz.repair(again, figures)
    for kind, detail in problems:
        found.setdefault(kind, Failure(kind, detail, number))
    figures.failures.extend(found.values())
    for failure in found.values():
        log.warning("fuzz: %s", failure.describe())
