"""Moving endpoints off a bridge across conferences: the load redistributor's mover."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from jicofo.bridge.load_redistribution import pick_endpoints

if TYPE_CHECKING:
    from jicofo.bridge.model import Bridge

    from .conference import Conference


def move_from_bridge(conferences: Iterable[Conference], bridge: Bridge, count: int) -> int:
    """The load redistributor's mover: re-invite up to `count` endpoints that are on `bridge`,
    taken from the conferences with the most endpoints there first (upstream's split); returns
    how many were asked to move. Where they land is the selection strategy's choice."""
    on_bridge = [(c, len(c.endpoints_on(bridge))) for c in list(conferences)]
    moved = 0
    for conference, take in pick_endpoints(on_bridge, count).items():
        for endpoint_id in conference.endpoints_on(bridge)[:take]:
            if conference.move_endpoint(endpoint_id, bridge):
                moved += 1
    return moved
