"""What a participant may signal, and what a receiver is sent: the conference's rules over the
source model of `jicofo.model.sources`.

All-or-nothing validation of what endpoints add and remove (SSRC range and ownership, msid
uniqueness, group rules, the per-endpoint limits), and the filter applied before sources are
signaled to a receiver. Pure rules; no XML and no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jicofo.model.sources import (
    ConferenceSourceMap,
    EndpointSourceSet,
    MediaType,
    Semantics,
    SourceValidationError,
)
from jicofo.xmlns.attributes import MAX_SSRC


@dataclass(frozen=True, slots=True)
class SourceLimits:
    """`jicofo.conference.max-ssrcs-per-user` and `max-ssrc-groups-per-user`."""

    max_ssrcs_per_user: int = 20
    max_ssrc_groups_per_user: int = 20



def _refuse(message: str) -> SourceValidationError:
    return SourceValidationError.bad_request(message)


# ---------------------------------------------------------------------------------------------
# Validation (all-or-nothing: on error nothing is applied)


def validate_add(
    existing: ConferenceSourceMap, owner: str, add: EndpointSourceSet, limits: SourceLimits
) -> EndpointSourceSet:
    """Check that `owner` may add `add` to the conference; return what is to be added (`add`
    without empty and already known groups). Raises SourceValidationError."""
    own = existing.get(owner)
    used_ssrcs = {source.ssrc for _, sources in existing.items() for source in sources.sources}
    others_msids = {
        source.msid
        for other, sources in existing.items()
        if other != owner
        for source in sources.sources
        if source.msid is not None
    }
    for source in add.sources:
        if not 1 <= source.ssrc <= MAX_SSRC:
            raise _refuse("Invalid SSRC")
        if source.ssrc in used_ssrcs:
            raise _refuse("SSRC is already used")
        used_ssrcs.add(source.ssrc)
        if source.msid is not None and source.msid in others_msids:
            raise _refuse("MSID is already used")
    if len(own.sources) + len(add.sources) > limits.max_ssrcs_per_user:
        raise _refuse(f"SSRC limit ({limits.max_ssrcs_per_user}) exceeded")

    known_groups = set(own.groups)
    new_groups = tuple(g for g in add.groups if g.ssrcs and g not in known_groups)
    own_ssrcs = own.ssrcs | add.ssrcs
    for group in new_groups:
        if not own_ssrcs.issuperset(group.ssrcs):
            raise _refuse("An SSRC group contains an SSRC, which hasn't been signaled as a source")
    accepted = EndpointSourceSet(add.sources, new_groups)
    if len(own.groups) + len(accepted.groups) > limits.max_ssrc_groups_per_user:
        raise _refuse(f"ssrc-group limit ({limits.max_ssrc_groups_per_user}) exceeded")
    check_source_set(own.union(accepted))
    return accepted


def validate_remove(
    existing: ConferenceSourceMap, owner: str, remove: EndpointSourceSet
) -> EndpointSourceSet:
    """Check that `owner` may remove `remove`; return what is actually removed: the stored
    sources (matched by SSRC only) and the listed groups plus every group that touches a removed
    SSRC. Raises SourceValidationError."""
    own = existing.get(owner)
    stored = {source.ssrc: source for source in own.sources}
    removed_ssrcs = remove.ssrcs
    if not removed_ssrcs <= stored.keys():
        raise _refuse("Source does not exist or is not owned by endpoint")
    listed_groups = {g for g in remove.groups if g.ssrcs}
    if not listed_groups <= set(own.groups):
        raise _refuse("Source group does not exist")
    removed = EndpointSourceSet(
        tuple(source for source in own.sources if source.ssrc in removed_ssrcs),
        tuple(g for g in own.groups if g in listed_groups or removed_ssrcs.intersection(g.ssrcs)),
    )
    check_source_set(own.difference(removed))
    return removed


def check_source_set(sources: EndpointSourceSet) -> None:
    """The rules a stored endpoint source set must satisfy: FID groups pair exactly two SSRCs,
    grouped sources have one msid per group, and per media type every extended group (a SIM group
    with the FID partners of its SSRCs, a lone FID group, or a lone source) has its own msid."""
    by_ssrc = {source.ssrc: source for source in sources.sources}
    for group in sources.groups:
        if group.semantics is Semantics.FID and len(group.ssrcs) != 2:
            raise _refuse("Invalid FID group")
        msids = set()
        for ssrc in group.ssrcs:
            msid = by_ssrc[ssrc].msid if ssrc in by_ssrc else None
            if msid is None:
                raise _refuse("Required source parameter 'msid' is not present")
            msids.add(msid)
        if len(msids) > 1:
            raise _refuse("SsrcGroup contains sources with different MSIDs")
    for media_type in MediaType:
        seen: set[str] = set()
        for members in _extended_groups(sources.only((media_type,))):
            msid = next((by_ssrc[s].msid for s in members if s in by_ssrc), None)
            if msid is None:
                continue
            if msid in seen:
                raise _refuse("MSID is already used")
            seen.add(msid)


def _extended_groups(sources: EndpointSourceSet) -> list[set[int]]:
    fid_partners: dict[int, set[int]] = {}
    for group in sources.groups:
        if group.semantics is Semantics.FID:
            for ssrc in group.ssrcs:
                fid_partners.setdefault(ssrc, set()).update(group.ssrcs)
    extended: list[set[int]] = []
    covered: set[int] = set()
    for group in sources.groups:
        if group.semantics is Semantics.SIM and not covered.intersection(group.ssrcs):
            members = set(group.ssrcs)
            for ssrc in group.ssrcs:
                members |= fid_partners.get(ssrc, set())
            extended.append(members)
            covered |= members
    for group in sources.groups:
        if group.semantics is Semantics.FID and not covered.intersection(group.ssrcs):
            extended.append(set(group.ssrcs))
            covered.update(group.ssrcs)
    extended.extend({s.ssrc} for s in sources.sources if s.ssrc not in covered)
    return extended


# ---------------------------------------------------------------------------------------------
# What a receiver is sent


def sources_for_receiver(
    conference: ConferenceSourceMap,
    receiver: str,
    *,
    media_types: Iterable[MediaType] = (MediaType.AUDIO, MediaType.VIDEO),
    strip_simulcast: bool = True,
    ssrc_rewriting: bool = False,
) -> ConferenceSourceMap:
    """The sources of the others as `receiver` is to be told about them: none for a receiver that
    uses SSRC rewriting (the bridge maps sources for it), only the media types it supports, and
    one layer per simulcast group when `strip_simulcast`. The bridge's feedback sources are not
    endpoints' sources; the offer adds them separately."""
    if ssrc_rewriting:
        return ConferenceSourceMap()
    wanted = tuple(media_types)

    def for_receiver(sources: EndpointSourceSet) -> EndpointSourceSet:
        sources = sources.only(wanted)
        return sources.strip_simulcast() if strip_simulcast else sources

    return conference.without(receiver).map_sets(for_receiver)


