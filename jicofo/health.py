"""The focus's own health check (upstream's JicofoHealthChecker, docs/jicofo.md §1.11 #88).

    health = HealthChecker(app, app.config.health)
    nursery.start_soon(health.run)           # first check at once, in the background
    health.healthy, health.last_result       # for /about/health, /stats and the `healthy` metric

Every `jicofo.health.interval` one check runs, bounded by `max-check-duration`:

1. No operational bridge ⇒ hard failure.
2. A throw-away conference `<room-name-prefix>-<random>@<conference-muc-jid>` is requested through
   `Focus.conference_request`, the same path as a client's request: an error (the room could not
   be joined) is a hard failure; an answer that is not ready in time is a soft one. The conference
   is then stopped at once (upstream leaves it to its start timeout, so ~2 exist at any moment;
   stopping it keeps the room list clean). Its request is taken back out of the request counters
   and `/stats`, `/metrics` leave rooms with the prefix out, as upstream's
   `include_in_statistics=false`.
3. An XEP-0199 ping to the client connection's `xmpp-domain` must come back within 5 s (any answer
   counts, an error too: it proves the connection and our reader work) ⇒ else hard failure.

A check that overruns `max-check-duration` is a soft failure. A result older than
`jicofo.health.timeout` (no check completed lately: the checker itself is stuck) reads as a hard
failure. Before the first check the result is a soft failure "not checked yet".

Hard failures answer HTTP 500, soft ones 503, as upstream.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from jicofo.config.model import HealthConfig
from jicofo.logs import log_context
from jicofo.xmlns.conference_iq import ConferenceRequest
from jicofo.xmpp.errors import IQTimeout, NotConnected, StanzaError, XMPPError
from jicofo.xmpp.jid import JID
from jicofo.xmpp.xml import element

if TYPE_CHECKING:
    from jicofo.app import FocusApp

log = logging.getLogger(__name__)

NS_PING = "urn:xmpp:ping"
PING_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class HealthResult:
    success: bool
    hard_failure: bool = True
    message: str = ""
    response_code: int | None = None
    at: float = 0.0  # trio time the check finished
    duration: float = 0.0

    @property
    def status(self) -> int:
        """HTTP status for /about/health: 200, the explicit code, else 500 (hard) / 503 (soft)."""
        if self.success:
            return 200
        if self.response_code is not None:
            return self.response_code
        return 500 if self.hard_failure else 503

    def to_json(self) -> dict[str, Any]:
        """The `health` object of /stats, with upstream's keys."""
        return {
            "success": self.success,
            "hardFailure": self.hard_failure,
            "responseCode": self.response_code,
            "sticky": False,
            "message": self.message,
        }


class HealthFailure(Exception):
    def __init__(self, message: str, *, hard: bool = True) -> None:
        super().__init__(message)
        self.hard = hard


def is_health_check_room(room: JID | str, prefix: str) -> bool:
    local = room.local if isinstance(room, JID) else str(room).partition("@")[0]
    return bool(prefix) and local is not None and local.startswith(prefix.lower())


class HealthChecker:
    def __init__(self, app: FocusApp, config: HealthConfig) -> None:
        self.app = app
        self.config = config
        self._result = HealthResult(False, hard_failure=False, message="not checked yet")
        self.checks = 0
        self.slow_checks = 0

    # ----- the verdict ------------------------------------------------------------------------

    @property
    def last_result(self) -> HealthResult:
        """The last check's result, or a hard failure when it is older than `health.timeout`."""
        result = self._result
        if result.at and self.config.timeout > 0 \
                and trio.current_time() - result.at > self.config.timeout:
            return HealthResult(False, True, f"no health check completed in the last "
                                             f"{self.config.timeout:g} s", at=result.at)
        return result

    @property
    def healthy(self) -> bool:
        return self.last_result.success

    @property
    def slow(self) -> bool:
        """The last check took longer than `max-check-duration` (`slow_health_check` in /stats)."""
        result = self._result
        return result.duration > self.config.max_check_duration

    # ----- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Check now, then every interval, until cancelled. `started()` at once: the first check
        (which asks for a test conference, and may wait for a bridge) must not hold up startup;
        until it completes the result is "not checked yet". With `interval` 0 only that first
        check runs (`check()` can be called any time)."""
        task_status.started()
        await self.check()
        if self.config.interval <= 0:
            await trio.sleep_forever()
        while True:
            await trio.sleep(self.config.interval)
            await self.check()

    async def check(self) -> HealthResult:
        start = trio.current_time()
        limit = self.config.max_check_duration if self.config.max_check_duration > 0 else float("inf")
        try:
            with trio.fail_after(limit):
                await self._check()
        except HealthFailure as exc:
            result = HealthResult(False, exc.hard, str(exc))
        except trio.TooSlowError:
            result = HealthResult(False, False, f"the health check took longer than {limit:g} s")
        else:
            result = HealthResult(True, False, "OK")
        end = trio.current_time()
        result = HealthResult(result.success, result.hard_failure, result.message,
                              result.response_code, at=end, duration=end - start)
        self.checks += 1
        if result.duration > self.config.max_check_duration:
            self.slow_checks += 1
        if result.success != self._result.success or result.message != self._result.message:
            level = logging.INFO if result.success else logging.WARNING
            log.log(level, "health: %s", "healthy" if result.success else f"unhealthy: {result.message}")
        self._result = result
        return result

    async def _check(self) -> None:
        self._check_bridges()
        await self._check_conference()
        await self._check_ping()

    def _check_bridges(self) -> None:
        brewery = self.app.brewery
        if brewery is None:
            raise HealthFailure("no bridge brewery is configured (jicofo.bridge.brewery-jid)")
        if not brewery.operational_bridges():
            raise HealthFailure("no operational bridge")

    def _room(self) -> str:
        client = self.app.config.xmpp.client
        muc = client.conference_muc_jid or f"conference.{client.xmpp_domain}"
        return f"{self.config.room_name_prefix}-{secrets.token_hex(6)}@{muc}".lower()

    async def _check_conference(self) -> None:
        from jicofo.focus import ConferenceRequestError, parse_room

        focus = self.app.focus
        stats = self.app.stats
        room = self._room()
        refused: ConferenceRequestError | None = None
        try:
            # The test conference's lines (logged in tasks started from here) carry its room.
            with log_context(room=room):
                # The focus's own request: not subject to authentication (as upstream, which
                # asks its FocusManager directly).
                answer = await focus.conference_request(ConferenceRequest(room=room),
                                                        authenticate=False)
        except ConferenceRequestError as exc:
            refused = exc
            raise HealthFailure(f"test conference {room} did not start: {exc.text}") from None
        finally:
            # Not a client's request: take it back out of the counters, as upstream keeps it out
            # (include_in_statistics=false). A fresh random room always counts as a new request;
            # it was created unless refused before creation (service-unavailable,
            # resource-constraint); internal-server-error means it was created and then failed.
            stats.conference_requests -= 1
            stats.conference_requests_new -= 1
            if refused is not None:
                stats.conference_requests_errors -= 1
            if refused is None or refused.condition == "internal-server-error":
                stats.conferences_created -= 1
            conference = focus.conferences.get(parse_room(room))
            if conference is not None:
                conference.stop("health check done")
        if not answer.ready:
            raise HealthFailure(f"test conference {room} was not ready in time", hard=False)

    async def _check_ping(self) -> None:
        client = self.app.client
        domain = self.app.config.xmpp.client.xmpp_domain or self.app.config.xmpp.client.domain
        iq = client.iq("get", domain, element(f"{{{NS_PING}}}ping"))
        try:
            await client.request(iq, timeout=PING_TIMEOUT)
        except StanzaError:
            pass  # an answer all the same
        except IQTimeout:
            raise HealthFailure(f"XMPP ping to {domain} got no answer in {PING_TIMEOUT:g} s") from None
        except NotConnected:
            raise HealthFailure("the XMPP client connection is down") from None
        except XMPPError as exc:
            raise HealthFailure(f"XMPP ping to {domain} failed: {exc}") from None
