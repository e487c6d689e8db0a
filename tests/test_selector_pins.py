"""Version pinning in the bridge selector (docs/jicofo.md #55, REST `/pin`): expiry on the injected
clock, upstream's JSON, and what a pin does to selection."""

from __future__ import annotations

import pytest

from jicofo.bridge.selector import BridgeSelector

from .test_bridge_selection import CONFIG, OCTO, Clock, bridge

ROOM = "room@conference.example.com"
WALL = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def pinning(clock: Clock) -> BridgeSelector:
    return BridgeSelector(CONFIG, OCTO, clock, wall_clock=lambda: WALL + clock.now)


def test_pin_list_and_expiry() -> None:
    clock = Clock(0.0)
    sel = pinning(clock)
    assert sel.pins() == [] and sel.pinned_version(ROOM) is None
    sel.pin(ROOM, "2.3.1-1", 600)
    sel.pin("other@conference.example.com", "2.3.2", 720.5)
    assert sel.pinned_version(ROOM) == "2.3.1-1"
    assert sel.pins() == [
        {"conferenceId": ROOM, "jvbVersion": "2.3.1-1", "expiresAt": "2023-11-14T22:23:20Z"},
        {"conferenceId": "other@conference.example.com", "jvbVersion": "2.3.2",
         "expiresAt": "2023-11-14T22:25:20Z"},  # truncated to the second
    ]
    clock.now = 600.0  # the last moment of the pin
    assert sel.pinned_version(ROOM) == "2.3.1-1"
    clock.now = 600.5
    assert sel.pinned_version(ROOM) is None
    assert [p["conferenceId"] for p in sel.pins()] == ["other@conference.example.com"]
    clock.now = 721.0
    assert sel.pins() == []


def test_pin_replaces_and_unpin_removes() -> None:
    clock = Clock(0.0)
    sel = pinning(clock)
    sel.pin(ROOM, "1", 60)
    sel.pin(ROOM, "2", 120)
    assert sel.pinned_version(ROOM) == "2" and len(sel.pins()) == 1
    clock.now = 100.0
    assert sel.pinned_version(ROOM) == "2"
    assert sel.unpin(ROOM)
    assert not sel.unpin(ROOM)
    assert sel.pinned_version(ROOM) is None


def test_conference_ids_are_room_jids_normalised() -> None:
    sel = pinning(Clock(0.0))
    sel.pin("Room@Conference.Example.com", "1", 60)
    assert sel.pinned_version(ROOM) == "1"
    assert sel.pins()[0]["conferenceId"] == ROOM
    for bad in ("", "conference.example.com", "room@conference.example.com/res", "a@b@c", "@x"):
        with pytest.raises(ValueError):
            sel.pin(bad, "1", 60)
        assert sel.pinned_version(bad) is None
    with pytest.raises(ValueError):
        sel.unpin("not a jid@")
    for duration in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            sel.pin(ROOM, "1", duration)
    with pytest.raises(ValueError):
        sel.pin(ROOM, "", 60)


def test_a_pin_chooses_the_version_of_a_conference_without_bridges() -> None:
    clock = Clock(0.0)
    sel = pinning(clock)
    old = bridge("old", 0.0, version="2.3.1", release="1")
    new = bridge("new", 0.5, version="2.3.2", release="1")
    assert sel.select([old, new], {}, None, conference_id=ROOM) is old
    sel.pin(ROOM, "2.3.2-1", 60)
    assert sel.select([old, new], {}, None, conference_id=ROOM) is new
    assert sel.select([old, new], {}, None, conference_id="else@conference.example.com") is old
    # A conference on a bridge keeps that bridge's version: a later pin does not break it.
    assert sel.select([old, new], {old: 2}, None, conference_id=ROOM) is old
    # An explicit pinned version still must match (upstream: the version fixed at creation).
    assert sel.select([old, new], {old: 2}, None, "2.3.2-1") is None
    # No bridge of the pinned version: nothing.
    sel.pin(ROOM, "9.9", 60)
    assert sel.select([old, new], {}, None, conference_id=ROOM) is None
    clock.now = 61.0
    assert sel.select([old, new], {}, None, conference_id=ROOM) is old
