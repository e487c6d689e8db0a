"""The conference's media sources: the model, the validation of what endpoints add and remove, the
filters applied before sources are signaled to a receiver, and the compact JSON encoding.

Pure data and rules; no XML and no I/O (the mapping at the end works on jingle's typed
elements). Sources are stored per endpoint id (the bridge's own feedback sources under
`BRIDGE_OWNER`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from jicofo.xmlns import bounded_json
from jicofo.xmlns.attributes import MAX_SSRC, parse_ssrc
from jicofo.xmlns.jingle import JingleContent, RtpDescription, SourceElement, SsrcGroupElement

BRIDGE_OWNER = "jvb"
DESKTOP = "desktop"


class MediaType(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


class Semantics(StrEnum):
    SIM = "SIM"
    FID = "FID"


@dataclass(frozen=True, slots=True)
class Source:
    """One SSRC an endpoint sends. `name` is the source name (`<endpoint>-a0`, `-v1`, ...), several
    SSRCs (simulcast layers, RTX) share one name and one msid."""

    ssrc: int
    media_type: MediaType
    name: str | None = None
    msid: str | None = None
    video_type: str | None = None  # "camera", "desktop", or unset
    synthetic: bool = False


@dataclass(frozen=True, slots=True)
class SsrcGroup:
    semantics: Semantics
    ssrcs: tuple[int, ...]
    media_type: MediaType


@dataclass(frozen=True, slots=True)
class SourceLimits:
    """`jicofo.conference.max-ssrcs-per-user` and `max-ssrc-groups-per-user`."""

    max_ssrcs_per_user: int = 20
    max_ssrc_groups_per_user: int = 20


class SourceValidationError(ValueError):
    """A source change refused. `condition` is the stanza error condition the focus answers
    with; `message` the text that goes with it."""

    def __init__(self, condition: str, message: str) -> None:
        super().__init__(message)
        self.condition = condition
        self.message = message


def _refuse(message: str) -> SourceValidationError:
    return SourceValidationError("bad-request", message)


def parse_semantics(value: str) -> Semantics:
    """`SIM`/`FID` in any case; anything else is refused (bad-request)."""
    try:
        return Semantics(value.upper())
    except ValueError:
        raise _refuse(f"Invalid ssrc-group semantics: {value!r}") from None


# ---------------------------------------------------------------------------------------------
# Source sets


_T = TypeVar("_T")


def _unique(items: Iterable[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True, slots=True, eq=False)
class EndpointSourceSet:
    """The sources and ssrc-groups of one endpoint. A set (no duplicates, equality ignores order)
    that remembers insertion order, so what is signaled keeps the order it was received in."""

    sources: tuple[Source, ...] = ()
    groups: tuple[SsrcGroup, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", _unique(self.sources))
        object.__setattr__(self, "groups", _unique(self.groups))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EndpointSourceSet):
            return NotImplemented
        return set(self.sources) == set(other.sources) and set(self.groups) == set(other.groups)

    def __hash__(self) -> int:
        return hash((frozenset(self.sources), frozenset(self.groups)))

    def __bool__(self) -> bool:
        return bool(self.sources or self.groups)

    @property
    def ssrcs(self) -> set[int]:
        return {source.ssrc for source in self.sources}

    def union(self, other: EndpointSourceSet) -> EndpointSourceSet:
        return EndpointSourceSet(self.sources + other.sources, self.groups + other.groups)

    def difference(self, other: EndpointSourceSet) -> EndpointSourceSet:
        sources, groups = set(other.sources), set(other.groups)
        return EndpointSourceSet(
            tuple(s for s in self.sources if s not in sources),
            tuple(g for g in self.groups if g not in groups),
        )

    def only(self, media_types: Iterable[MediaType]) -> EndpointSourceSet:
        wanted = set(media_types)
        return EndpointSourceSet(
            tuple(s for s in self.sources if s.media_type in wanted),
            tuple(g for g in self.groups if g.media_type in wanted),
        )

    def strip_simulcast(self) -> EndpointSourceSet:
        """Keep, of each SIM group, only its first SSRC and that SSRC's FID partner; drop the SIM
        group, the other layers and their FID groups."""
        dropped: set[int] = set()
        for group in self.groups:
            if group.semantics is Semantics.SIM:
                dropped.update(group.ssrcs[1:])
        for group in self.groups:
            if group.semantics is Semantics.FID and group.ssrcs and group.ssrcs[0] in dropped:
                dropped.update(group.ssrcs[1:])
        return EndpointSourceSet(
            tuple(s for s in self.sources if s.ssrc not in dropped),
            tuple(
                g
                for g in self.groups
                if g.semantics is not Semantics.SIM and not dropped.intersection(g.ssrcs)
            ),
        )


EMPTY = EndpointSourceSet()


class ConferenceSourceMap:
    """Endpoint id -> its sources, in the order endpoints were added. Empty sets are not kept."""

    def __init__(self, entries: dict[str, EndpointSourceSet] | None = None) -> None:
        self._by_owner: dict[str, EndpointSourceSet] = {}
        for owner, sources in (entries or {}).items():
            self.add(owner, sources)

    def __repr__(self) -> str:
        return f"ConferenceSourceMap({self._by_owner!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConferenceSourceMap):
            return NotImplemented
        return self._by_owner == other._by_owner

    def __bool__(self) -> bool:
        return bool(self._by_owner)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_owner)

    def __len__(self) -> int:
        return len(self._by_owner)

    def __contains__(self, owner: object) -> bool:
        return owner in self._by_owner

    def get(self, owner: str) -> EndpointSourceSet:
        return self._by_owner.get(owner, EMPTY)

    def items(self) -> Iterator[tuple[str, EndpointSourceSet]]:
        return iter(list(self._by_owner.items()))

    def copy(self) -> ConferenceSourceMap:
        return ConferenceSourceMap(dict(self._by_owner))

    def add(self, owner: str, sources: EndpointSourceSet) -> None:
        merged = self.get(owner).union(sources)
        if merged:
            self._by_owner[owner] = merged

    def remove(self, owner: str, sources: EndpointSourceSet) -> None:
        remaining = self.get(owner).difference(sources)
        if remaining:
            self._by_owner[owner] = remaining
        else:
            self._by_owner.pop(owner, None)

    def remove_endpoint(self, owner: str) -> EndpointSourceSet:
        return self._by_owner.pop(owner, EMPTY)

    def add_all(self, other: ConferenceSourceMap) -> None:
        for owner, sources in other.items():
            self.add(owner, sources)

    def remove_all(self, other: ConferenceSourceMap) -> None:
        for owner, sources in other.items():
            self.remove(owner, sources)

    def difference(self, other: ConferenceSourceMap) -> ConferenceSourceMap:
        """What this map has that `other` has not."""
        return ConferenceSourceMap(
            {owner: sources.difference(other.get(owner)) for owner, sources in self.items()}
        )

    def without(self, owner: str) -> ConferenceSourceMap:
        return ConferenceSourceMap({k: v for k, v in self._by_owner.items() if k != owner})

    def map_sets(self, transform: Callable[[EndpointSourceSet], EndpointSourceSet]) -> ConferenceSourceMap:
        return ConferenceSourceMap({owner: transform(sources) for owner, sources in self.items()})



@dataclass(frozen=True, slots=True)
class SourceDiff:
    """What to signal to bring a receiver from the sources it has to the ones it should have:
    a source-remove (sent first), then a source-add."""

    remove: ConferenceSourceMap
    add: ConferenceSourceMap


def diff(signaled: ConferenceSourceMap, desired: ConferenceSourceMap) -> SourceDiff:
    return SourceDiff(remove=signaled.difference(desired), add=desired.difference(signaled))


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


# ---------------------------------------------------------------------------------------------
# Compact JSON (the `<json-message>` text)

_GROUP_CODES = {Semantics.SIM: "s", Semantics.FID: "f"}
_GROUP_SEMANTICS = {code: semantics for semantics, code in _GROUP_CODES.items()}


def encode_json(sources: ConferenceSourceMap) -> str:
    """`{"sources":{owner:[videoSources, videoGroups, audioSources, audioGroups]}}`, audio arrays
    left off when empty."""
    return json.dumps(
        {"sources": {owner: _encode_endpoint(endpoint) for owner, endpoint in sources.items()}},
        separators=(",", ":"),
    )


def _encode_endpoint(sources: EndpointSourceSet) -> list[list[object]]:
    def encoded_sources(media_type: MediaType) -> list[object]:
        return [_encode_source(s) for s in sources.sources if s.media_type is media_type]

    def encoded_groups(media_type: MediaType) -> list[object]:
        return [
            [_GROUP_CODES[g.semantics], *g.ssrcs] for g in sources.groups if g.media_type is media_type
        ]

    arrays = [
        encoded_sources(MediaType.VIDEO),
        encoded_groups(MediaType.VIDEO),
        encoded_sources(MediaType.AUDIO),
        encoded_groups(MediaType.AUDIO),
    ]
    while len(arrays) > 2 and not arrays[-1]:
        arrays.pop()
    return arrays


def _encode_source(source: Source) -> dict[str, object]:
    encoded: dict[str, object] = {"s": source.ssrc}
    if source.name is not None:
        encoded["n"] = source.name
    if source.msid is not None:
        encoded["m"] = source.msid
    if source.media_type is MediaType.VIDEO and source.video_type == DESKTOP:
        encoded["v"] = "d"
    return encoded


def decode_json(
    text: str, *, max_chars: int = bounded_json.MEMBER_SOURCES_MAX_CHARS
) -> ConferenceSourceMap:
    """Parse the compact JSON encoding. SSRCs may be numbers or canonical decimal strings
    (lib-jitsi-meet accepts both); any `v` marks desktop video. Raises ValueError on a malformed
    document. The default bound fits one member's own sources; a reader of whole conferences
    (what the focus sends) passes its own."""
    try:
        document = bounded_json.decode_json(text, max_chars=max_chars)
    except bounded_json.JsonContentError as exc:
        raise ValueError(f"json-message: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict):
        raise ValueError('json-message must be an object with a "sources" object')
    result = ConferenceSourceMap()
    for owner, arrays in document["sources"].items():
        result.add(owner, _decode_endpoint(owner, arrays))
    return result


def _decode_endpoint(owner: str, arrays: object) -> EndpointSourceSet:
    if not isinstance(arrays, list) or len(arrays) > 4 or not all(isinstance(a, list) for a in arrays):
        raise ValueError(f"sources of {owner!r} must be a list of at most four lists")
    padded = [*arrays, [], [], [], []][:4]
    video_sources, video_groups, audio_sources, audio_groups = padded
    return EndpointSourceSet(
        tuple(_decode_source(s, MediaType.VIDEO) for s in video_sources)
        + tuple(_decode_source(s, MediaType.AUDIO) for s in audio_sources),
        tuple(_decode_group(g, MediaType.VIDEO) for g in video_groups)
        + tuple(_decode_group(g, MediaType.AUDIO) for g in audio_groups),
    )


def _decode_ssrc(value: object) -> int:
    if isinstance(value, str):
        return parse_ssrc(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"invalid SSRC {str(value)[:16]!r}")
    if not 0 <= value <= MAX_SSRC:
        raise ValueError(f"SSRC {value} out of range")
    return value


def _optional_text(encoded: dict[str, object], key: str) -> str | None:
    value = encoded.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f'source field "{key}" must be a string')
    return value


def _decode_source(encoded: object, media_type: MediaType) -> Source:
    if not isinstance(encoded, dict) or "s" not in encoded:
        raise ValueError(f'a source must be an object with "s": {encoded!r}')
    return Source(
        ssrc=_decode_ssrc(encoded["s"]),
        media_type=media_type,
        name=_optional_text(encoded, "n"),
        msid=_optional_text(encoded, "m"),
        video_type=DESKTOP if media_type is MediaType.VIDEO and "v" in encoded else None,
    )


def _decode_group(encoded: object, media_type: MediaType) -> SsrcGroup:
    if not isinstance(encoded, list) or not encoded or encoded[0] not in _GROUP_SEMANTICS:
        raise ValueError(f'a group must be ["s"|"f", ssrc, ...]: {encoded!r}')
    return SsrcGroup(
        _GROUP_SEMANTICS[encoded[0]], tuple(_decode_ssrc(s) for s in encoded[1:]), media_type
    )


# ---------------------------------------------------------------------------------------------
# Mapping to and from Jingle's typed elements


def sources_from_contents(contents: Iterable[JingleContent]) -> EndpointSourceSet:
    """The sources and groups a client lists in its Jingle contents (session-accept, source-add,
    source-remove). The media type is the description's, else the content name. Raises
    SourceValidationError (bad-request) for sources outside audio/video or unknown semantics."""
    sources: list[Source] = []
    groups: list[SsrcGroup] = []
    for content in contents:
        description = content.description
        if description is None or not (description.sources or description.ssrc_groups):
            continue
        try:
            media_type = MediaType(content.media)
        except ValueError:
            raise _refuse(f"Sources in a content of media {content.media!r}") from None
        sources.extend(
            Source(s.ssrc, media_type, name=s.name, msid=s.msid, video_type=s.video_type)
            for s in description.sources
        )
        groups.extend(
            SsrcGroup(parse_semantics(g.semantics), g.ssrcs, media_type) for g in description.ssrc_groups
        )
    return EndpointSourceSet(tuple(sources), tuple(groups))


def source_elements(
    sources: ConferenceSourceMap, media_type: MediaType
) -> tuple[tuple[SourceElement, ...], tuple[SsrcGroupElement, ...]]:
    """The `<source>`s (each naming its owner) and `<ssrc-group>`s of one media type."""
    elements: list[SourceElement] = []
    groups: list[SsrcGroupElement] = []
    for owner, endpoint in sources.items():
        elements.extend(
            SourceElement(s.ssrc, name=s.name, video_type=s.video_type, msid=s.msid, owner=owner)
            for s in endpoint.sources
            if s.media_type is media_type
        )
        groups.extend(
            SsrcGroupElement(str(g.semantics), g.ssrcs) for g in endpoint.groups if g.media_type is media_type
        )
    return tuple(elements), tuple(groups)


def source_contents(sources: ConferenceSourceMap) -> tuple[JingleContent, ...]:
    """The contents of a source-add / source-remove in the XML encoding: one per media type that
    has sources, `<content name=media><description media=media>` holding them."""
    contents = []
    for media_type in MediaType:
        elements, groups = source_elements(sources, media_type)
        if elements or groups:
            description = RtpDescription(media=str(media_type), sources=elements, ssrc_groups=groups)
            contents.append(
                JingleContent(name=str(media_type), creator=None, senders=None, description=description)
            )
    return tuple(contents)
