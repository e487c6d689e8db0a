"""What every conference shares: config, connections, the bridges and their selector, the offer
configuration, counters. Built once by the app; conferences only read it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import trio

from jicofo.config.model import JicofoConfig
from jicofo.stats import FocusStats
from jicofo.xmpp.client import BaseXMPPConnection

from .offer import OfferConfig

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from jicofo.auth import AuthAuthority
    from jicofo.bridge.brewery import Brewery
    from jicofo.bridge.model import Bridge
    from jicofo.bridge.selector import BridgeSelector
    from jicofo.jibri.conference_jibri import JibriServices
    from jicofo.jigasi.service import JigasiServices

    from .conference import Conference
    from .participant import Participant


class ConferenceStateHook(Protocol):
    """Told where a conference's state changes, so that a new process can take it back
    (jicofo.restart). Called synchronously, before the stanza that shows the change goes out."""

    def changed(self, conference: Conference, participant: Participant | None = None) -> None: ...

    def member_gone(self, conference: Conference, endpoint_id: str) -> None: ...

    def conference_gone(self, conference: Conference) -> None: ...


@dataclass
class ConferenceServices:
    config: JicofoConfig
    client: BaseXMPPConnection  # conference rooms and Jingle
    colibri_client: BaseXMPPConnection  # the connection in the bridge brewery
    brewery: Brewery | None
    selector: BridgeSelector
    offer_config: OfferConfig
    stats: FocusStats = field(default_factory=FocusStats)
    version: str = "0.1.0"
    clock: Callable[[], float] | None = None
    auth: AuthAuthority | None = None  # jicofo.authentication (None: off)
    state_hook: ConferenceStateHook | None = None  # the restart store, when enabled
    jibri: JibriServices | None = None  # when a Jibri or SIP-Jibri brewery is configured
    jigasi: JigasiServices | None = None  # when a Jigasi brewery is configured

    @property
    def request_timeout(self) -> float:
        return self.config.xmpp.client.reply_timeout

    @property
    def colibri_timeout(self) -> float:
        return self.config.xmpp.service.reply_timeout

    @property
    def sctp_enabled(self) -> bool:
        return self.config.sctp_enabled

    def bridges(self) -> list[Bridge]:
        return list(self.brewery.bridges.values()) if self.brewery is not None else []

    def brewery_note_restart(self, bridge: Bridge) -> None:
        """A client on `bridge` asked for a restart or reported ICE failure (for the per-bridge
        ICE-failure detection, when enabled)."""
        now = trio.current_time()
        was_failing = bridge.failing_ice(now)
        if bridge.endpoint_requested_restart(now) and not was_failing:
            log.warning("bridge %s is failing ICE: too many of its endpoints failed or restarted",
                        bridge.nickname)
