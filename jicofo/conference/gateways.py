"""Which members are Jibri or Jigasi (docs/jicofo.md §1.2 row 12): a member counts as one only
when its presence advertises the feature AND its real JID is on one of
`jicofo.xmpp.trusted-domains` (Debian: `recorder.<domain>` for Jibri). A guest that merely
claims the feature is an ordinary member: it gets no recorder's exemptions (mute, auto-owner)."""

from __future__ import annotations

from collections.abc import Iterable

from jicofo.xmpp.muc import Occupant

FEATURE_JIBRI = "http://jitsi.org/protocol/jibri"
FEATURE_JIGASI = "http://jitsi.org/protocol/jigasi"
FEATURE_TRANSCRIBER = "http://jitsi.org/protocol/transcriber"


def trusted(occupant: Occupant, trusted_domains: Iterable[str]) -> bool:
    jid = occupant.jid
    return jid is not None and jid.domain.lower() in {d.lower() for d in trusted_domains}


def is_gateway_member(occupant: Occupant, features: Iterable[str],
                      trusted_domains: Iterable[str]) -> str | None:
    """FEATURE_JIBRI or FEATURE_JIGASI for a recognised Jibri / Jigasi member, else None."""
    features = frozenset(features)
    if FEATURE_JIBRI not in features and FEATURE_JIGASI not in features:
        return None
    if not trusted(occupant, trusted_domains):
        return None
    return FEATURE_JIBRI if FEATURE_JIBRI in features else FEATURE_JIGASI


def is_transcriber_member(occupant: Occupant, features: Iterable[str],
                          trusted_domains: Iterable[str]) -> bool:
    return FEATURE_TRANSCRIBER in frozenset(features) and trusted(occupant, trusted_domains)
