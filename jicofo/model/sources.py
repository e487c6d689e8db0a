"""The media source model: sources, ssrc-groups, one endpoint's source set, and the conference's
map of endpoint id -> source set, with the set algebra the conference and the bridge code use.

Pure data; no XML, no I/O and no policy (what an endpoint may add or remove is
`jicofo.conference.sources`). Sources are stored per endpoint id (the bridge's own feedback
sources under `BRIDGE_OWNER`). The encodings are `sources_json` and `sources_jingle`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

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


class SourceValidationError(ValueError):
    """A source description or change refused. `condition` is the stanza error condition the
    focus answers with; `message` the text that goes with it."""

    def __init__(self, condition: str, message: str) -> None:
        super().__init__(message)
        self.condition = condition
        self.message = message

    @classmethod
    def bad_request(cls, message: str) -> SourceValidationError:
        return cls("bad-request", message)


def parse_semantics(value: str) -> Semantics:
    """`SIM`/`FID` in any case; anything else is refused (bad-request)."""
    try:
        return Semantics(value.upper())
    except ValueError:
        raise SourceValidationError.bad_request(f"Invalid ssrc-group semantics: {value!r}") from None


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


