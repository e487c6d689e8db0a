"""One videobridge as the focus sees it: what its brewery presence says, whether it works, its load.

Pure state, no I/O and no clock of its own: every method that depends on time takes `now` (trio time,
seconds), so selection and tests can reason about time explicitly.

Rules kept from upstream (`Bridge.kt`):

- `drain` is True until a presence says otherwise, so a bridge that never reports it is avoided
  whenever another one exists.
- `graceful_shutdown` and `shutting_down` are sticky for one `Bridge` object: once a presence says
  true, a later false does not clear them (a restarted bridge rejoins the brewery and becomes a new
  object).
- Missing stats leave the previous value untouched.
- Operational stickiness: once marked failed, a bridge is not operational for
  `failure_reset_threshold` seconds, even if a health check passes meanwhile; after that it is
  operational again if the last verdict (`mark_healthy`/`mark_failed`) was healthy. Without health
  checks nothing ever marks it healthy again, as upstream.
- Corrected stress = reported stress + (endpoints this focus added in the last
  `participant_rampup_interval`) × per-participant stress (the bridge's own figure, else the
  configured one). Overloaded when corrected stress ≥ `stress_threshold`.
- ICE-failure detection (`ice-failure-detection.*`, off by default; upstream's
  `endpointRequestedRestart`, docs/jicofo.md #61): every restart request or ICE-failed report from
  an endpoint on the bridge is counted over `interval`. When detection is on, the bridge has at least
  `min_endpoints` endpoints of this focus and the count exceeds `threshold` × those endpoints, the
  bridge is "failing ICE" for `timeout` (each further such report restarts the time-box). While it
  is, its corrected stress is at least `stress_threshold` + 0.01: it counts as overloaded, sorts
  after every bridge that is not, and so gets new endpoints only when nothing better exists.

Equality is identity: a bridge that leaves and rejoins the brewery is a new object.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Protocol

import trio

from jicofo.config.model import BridgeConfig, IceFailureDetectionConfig
from jicofo.xmpp.jid import JID

from .silence import SilenceTracker

log = logging.getLogger(__name__)

# Upstream defaults (reference.conf), for bridges built without a config (tests, tools).
DEFAULT_STRESS_THRESHOLD = 0.8
DEFAULT_AVERAGE_PARTICIPANT_STRESS = 0.01
DEFAULT_PARTICIPANT_RAMPUP_INTERVAL = 20.0
DEFAULT_FAILURE_RESET_THRESHOLD = 60.0
DEFAULT_ICE_FAILURE_DETECTION = IceFailureDetectionConfig(
    enabled=False, interval=120.0, min_endpoints=30, threshold=0.1, timeout=600.0
)
#: How far above the stress threshold a bridge failing ICE is pushed (upstream's figure).
FAILING_ICE_STRESS_MARGIN = 0.01

#: Attributes whose changes `update_stats` reports (stress is not one: it changes all the time).
TRACKED_STATS = ("drain", "graceful_shutdown", "shutting_down", "healthy",
                 "region", "relay_id", "version", "release")


class StatsLike(Protocol):
    """What `update_stats` reads: `jicofo.xmlns.colibri_stats.BridgeStats` or anything with these
    attributes (None: not in the presence)."""

    @property
    def stress_level(self) -> float | None: ...
    @property
    def average_participant_stress(self) -> float | None: ...
    @property
    def drain(self) -> bool | None: ...
    @property
    def graceful_shutdown(self) -> bool | None: ...
    @property
    def shutting_down(self) -> bool | None: ...
    @property
    def healthy(self) -> bool | None: ...
    @property
    def version(self) -> str | None: ...
    @property
    def release(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...
    @property
    def relay_id(self) -> str | None: ...


class Bridge:
    """A bridge in the brewery, keyed by its occupant JID (`room@service/nick`), which is also the
    address of every Colibri2 and health-check IQ sent to it."""

    def __init__(self, jid: JID, config: BridgeConfig | None = None) -> None:
        self.jid = jid
        if config is not None:
            self.stress_threshold = config.stress_threshold
            self.default_participant_stress = config.average_participant_stress
            self.rampup_interval = config.participant_rampup_interval
            self.failure_reset_threshold = config.failure_reset_threshold
            self.ice_failure_detection = config.ice_failure_detection
        else:
            self.stress_threshold = DEFAULT_STRESS_THRESHOLD
            self.default_participant_stress = DEFAULT_AVERAGE_PARTICIPANT_STRESS
            self.rampup_interval = DEFAULT_PARTICIPANT_RAMPUP_INTERVAL
            self.failure_reset_threshold = DEFAULT_FAILURE_RESET_THRESHOLD
            self.ice_failure_detection = DEFAULT_ICE_FAILURE_DETECTION
        # From the bridge's presence.
        self.stress: float = 0.0
        self.average_participant_stress: float | None = None
        self.region: str | None = None
        self.relay_id: str | None = None
        self.version: str | None = None
        self.release: str | None = None
        self.drain = True
        self.graceful_shutdown = False
        self.shutting_down = False
        self.healthy = True
        self.last_presence: float | None = None  # when the last stats arrived
        # Ours.
        self.removed = False
        self.endpoints = 0  # endpoints this focus has on the bridge, across conferences
        self._operational = True
        self._failed_at: float | None = None
        self._recent_additions: deque[float] = deque()
        self._restart_requests: deque[float] = deque()
        self._ice_failed_at: float | None = None  # when failing ICE was last detected
        # What it has answered lately, across conferences and health checks (silence.py).
        self.silence = SilenceTracker()

    def __repr__(self) -> str:
        return (f"<Bridge {self.nickname} version={self.full_version} relay={self.relay_id} "
                f"region={self.region} stress={self.stress:.3f}>")

    @property
    def nickname(self) -> str:
        return self.jid.resource or str(self.jid)

    @property
    def full_version(self) -> str | None:
        """`version-release` when both are known, else the version (upstream's `fullVersion`)."""
        if self.version is not None and self.release is not None:
            return f"{self.version}-{self.release}"
        return self.version

    # ----- presence ----------------------------------------------------------------------------

    def update_stats(self, stats: StatsLike, now: float | None = None) -> set[str]:
        """Apply the stats of a brewery presence; return the names (from TRACKED_STATS) of the
        attributes that changed. Stats that are missing (None) leave the old value."""
        before = {name: getattr(self, name) for name in TRACKED_STATS}
        if now is not None:
            self.last_presence = now
        if stats.stress_level is not None:
            self.stress = stats.stress_level
        if stats.average_participant_stress is not None:
            self.average_participant_stress = stats.average_participant_stress
        if stats.graceful_shutdown:
            self.graceful_shutdown = True
        if stats.shutting_down:
            self.shutting_down = True
        if stats.drain is not None:
            self.drain = stats.drain
        if stats.healthy is not None:
            self.healthy = stats.healthy
        for name in ("version", "release", "region", "relay_id"):
            value = getattr(stats, name)
            if value is not None:
                setattr(self, name, value)
        return {name for name in TRACKED_STATS if getattr(self, name) != before[name]}

    # ----- operational state -------------------------------------------------------------------

    def is_operational(self, now: float) -> bool:
        if self._failed_at is not None and now - self._failed_at < self.failure_reset_threshold:
            return False
        return self._operational

    def mark_failed(self, now: float) -> None:
        self._operational = False
        self._failed_at = now

    def mark_healthy(self, now: float) -> None:
        """A health check passed: operational again once `failure_reset_threshold` has passed
        since the last failure."""
        self._operational = True

    # ----- load --------------------------------------------------------------------------------

    def endpoint_added(self, now: float) -> None:
        """This focus put one more endpoint on the bridge."""
        self.endpoints += 1
        self._recent_additions.append(now)
        self._prune(now)

    def endpoint_removed(self, count: int = 1) -> None:
        self.endpoints -= count
        if self.endpoints < 0:
            log.error("bridge %s: removed more endpoints than were added; resetting to 0", self.nickname)
            self.endpoints = 0

    def recently_added(self, now: float) -> int:
        """Endpoints this focus added within the ramp-up interval before `now`."""
        self._prune(now)
        return len(self._recent_additions)

    def _prune(self, now: float) -> None:
        horizon = now - self.rampup_interval
        recent = self._recent_additions
        while recent and recent[0] <= horizon:
            recent.popleft()

    # ----- ICE failures ------------------------------------------------------------------------

    def endpoint_requested_restart(self, now: float | None = None) -> bool:
        """An endpoint on this bridge asked for a session restart or reported that ICE failed.
        Returns True when this report (re)starts the "failing ICE" time-box. `now` defaults to
        trio's clock (so it must then be called inside trio)."""
        if now is None:
            now = trio.current_time()
        self._restart_requests.append(now)
        count = self.restart_requests(now)
        detection = self.ice_failure_detection
        if not detection.enabled:
            return False
        endpoints = self.endpoints
        if endpoints < detection.min_endpoints or count <= endpoints * detection.threshold:
            return False
        if not self.failing_ice(now):
            log.warning("bridge %s: failing ICE (%d restart requests in %.0f s with %d endpoints); "
                        "avoiding it for %.0f s", self.nickname, count, detection.interval, endpoints,
                        detection.timeout)
        self._ice_failed_at = now
        return True

    #: The same count: upstream treats an ICE-failed notice as a restart request.
    endpoint_ice_failed = endpoint_requested_restart

    def restart_requests(self, now: float) -> int:
        """Restart requests and ICE failures reported within `ice-failure-detection.interval`."""
        horizon = now - self.ice_failure_detection.interval
        recent = self._restart_requests
        while recent and recent[0] <= horizon:
            recent.popleft()
        return len(recent)

    def failing_ice(self, now: float) -> bool:
        """Whether failing ICE was detected within `ice-failure-detection.timeout` before `now`."""
        return (self._ice_failed_at is not None
                and now - self._ice_failed_at < self.ice_failure_detection.timeout)

    @property
    def participant_stress(self) -> float:
        """Stress one participant adds: the bridge's own figure, else the configured one."""
        if self.average_participant_stress is not None:
            return self.average_participant_stress
        return self.default_participant_stress

    def corrected_stress(self, now: float) -> float:
        """Reported stress plus the expected stress of the endpoints added recently (#48), raised to
        just above the threshold while failing ICE; may exceed 1 so that sorting stays right."""
        stress = self.stress + self.recently_added(now) * self.participant_stress
        if self.failing_ice(now):
            stress = max(stress, self.stress_threshold + FAILING_ICE_STRESS_MARGIN)
        return stress

    def is_overloaded(self, now: float) -> bool:
        return self.corrected_stress(now) >= self.stress_threshold

    # ----- debug -------------------------------------------------------------------------------

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        """Debug state, like upstream's `debugState` (time-dependent fields need `now`)."""
        state: dict[str, Any] = {
            "jid": str(self.jid),
            "version": self.version,
            "release": self.release,
            "region": self.region,
            "relay-id": self.relay_id,
            "drain": self.drain,
            "graceful-shutdown": self.graceful_shutdown,
            "shutting-down": self.shutting_down,
            "healthy": self.healthy,
            "removed": self.removed,
            "endpoints": self.endpoints,
            "reported-stress": self.stress,
        }
        if now is not None:
            state["stress"] = self.corrected_stress(now)
            state["operational"] = self.is_operational(now)
            state["overloaded"] = self.is_overloaded(now)
            state["failing-ice"] = self.failing_ice(now)
            state["endpoint-restart-requests"] = self.restart_requests(now)
        return state
