"""The simulated client's view of the others' sources: its own small model, its own reading of the
compact JSON encoding, and its own consistency checks, written from the protocol notes
(docs/jicofo.md §2.5/§2.6, docs/client.md §3.5) and not shared with the focus, so that it is a
second opinion on what the focus sends.

What arrives in one source-add / source-remove / offer is read into a `SourceUpdate`: plain lists
per owner that keep duplicates, so a source listed twice is seen. The checks then compare the
update with what the client already holds (`RemoteSources`) and return the problems found; what
passes is applied. Problems are strings; the participant records each one as a deviation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from .client_jingle import Content

MAX_SSRC = 0xFFFF_FFFF
BRIDGE = "jvb"  # the bridge's own feedback sources are listed under this owner
SIM = "SIM"
FID = "FID"
# A conference's worth of sources in one message is far below this; more is refused unread.
MAX_JSON_CHARS = 1024 * 1024
_JSON_GROUP_CODES = {"s": SIM, "f": FID}
_SOURCE_KEYS = frozenset({"s", "n", "m", "v"})


@dataclass(frozen=True, slots=True)
class RemoteSource:
    ssrc: int
    media_type: str  # audio | video
    name: str | None = None
    msid: str | None = None
    video_type: str | None = None  # "camera", "desktop" or None


@dataclass(frozen=True, slots=True)
class RemoteGroup:
    semantics: str  # SIM | FID
    ssrcs: tuple[int, ...]
    media_type: str


@dataclass(frozen=True, slots=True)
class EndpointSources:
    """What one remote endpoint has been signalled, in arrival order."""

    sources: tuple[RemoteSource, ...] = ()
    groups: tuple[RemoteGroup, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.sources or self.groups)

    @property
    def ssrcs(self) -> set[int]:
        return {s.ssrc for s in self.sources}


_EMPTY = EndpointSources()


class RemoteSources:
    """Owner endpoint id → its sources, as the client holds them."""

    def __init__(self) -> None:
        self._by_owner: dict[str, EndpointSources] = {}
        self._owner_of: dict[int, str] = {}

    def __bool__(self) -> bool:
        return bool(self._by_owner)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_owner)

    def __len__(self) -> int:
        return len(self._by_owner)

    def __contains__(self, owner: object) -> bool:
        return owner in self._by_owner

    def __repr__(self) -> str:
        return f"RemoteSources({self._by_owner!r})"

    def get(self, owner: str) -> EndpointSources:
        return self._by_owner.get(owner, _EMPTY)

    def items(self) -> Iterator[tuple[str, EndpointSources]]:
        return iter(list(self._by_owner.items()))

    def all_ssrcs(self) -> set[int]:
        return set(self._owner_of)

    def owner_of(self, ssrc: int) -> str | None:
        return self._owner_of.get(ssrc)

    def put(self, owner: str, sources: EndpointSources) -> None:
        """Replace what `owner` holds (nothing: forget the owner)."""
        for s in self.get(owner).sources:
            if self._owner_of.get(s.ssrc) == owner:
                del self._owner_of[s.ssrc]
        if sources:
            self._by_owner[owner] = sources
            for s in sources.sources:
                self._owner_of.setdefault(s.ssrc, owner)
        else:
            self._by_owner.pop(owner, None)


@dataclass
class OwnerUpdate:
    """What one IQ lists for one owner, duplicates kept."""

    sources: list[RemoteSource] = field(default_factory=list)
    groups: list[RemoteGroup] = field(default_factory=list)


@dataclass
class SourceUpdate:
    """The sources one focus IQ carries, by owner, plus what could not be read."""

    owners: dict[str, OwnerUpdate] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def of(self, owner: str) -> OwnerUpdate:
        return self.owners.setdefault(owner, OwnerUpdate())


# ---------------------------------------------------------------------------------------------
# Reading


def owner_id(owner: str | None) -> str | None:
    """`<ssrc-info owner>` names an endpoint id or an occupant JID; either way the endpoint id."""
    if not owner:
        return None
    return owner.rsplit("/", 1)[-1] or None


def read_update(
    contents: tuple[Content, ...], json_message: str | None, known: RemoteSources
) -> SourceUpdate:
    """The sources of a focus IQ: the `<json-message>` and the XML `<source>`s, both if present.
    XML sources without an owner are attributed by SSRC to whoever holds it already."""
    update = SourceUpdate()
    if json_message is not None:
        read_compact_json(json_message, update)
    for content in contents:
        description = content.description
        if description is None or not (description.sources or description.groups):
            continue
        media = content.media
        if media not in ("audio", "video"):
            update.problems.append(f"sources in a content of media {media[:32]!r}")
            continue
        owner_of: dict[int, str] = {}
        for s in description.sources:
            owner = owner_id(s.owner) or known.owner_of(s.ssrc)
            if owner is None:
                update.problems.append(f"source {s.ssrc} without an owner")
                continue
            owner_of[s.ssrc] = owner
            update.of(owner).sources.append(RemoteSource(s.ssrc, media, s.name, s.msid, s.video_type))
        for g in description.groups:
            owner = next((o for ssrc in g.ssrcs if (o := owner_of.get(ssrc) or known.owner_of(ssrc))), None)
            if owner is None:
                update.problems.append(f"ssrc-group {g.semantics[:8]} {list(g.ssrcs)[:8]} of no known owner")
                continue
            semantics = g.semantics.upper()
            if semantics not in (SIM, FID):
                update.problems.append(f"ssrc-group of {owner} with unknown semantics")
                continue
            update.of(owner).groups.append(RemoteGroup(semantics, g.ssrcs, media))
    return update


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise _DuplicateKey(duplicate)
    return dict(pairs)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def read_compact_json(text: str, update: SourceUpdate) -> None:
    """Read `{"sources": {owner: [videoSources, videoGroups, audioSources, audioGroups]}}` into
    `update`. As Jicofo writes it (docs/jicofo.md §2.6): SSRCs are JSON integers 1..2^32-1; a source
    is an object with "s" and optional string "n" and "m"; "v" is "d" on desktop video only; a
    group is ["s"|"f", ssrc, ...] with at least two SSRCs. A malformed entry is a problem and is
    skipped (the client drops what it cannot use); a malformed document is one problem."""
    if len(text) > MAX_JSON_CHARS:
        update.problems.append(f"json-message of {len(text)} characters")
        return
    try:
        document = json.loads(text, object_pairs_hook=_pairs, parse_constant=_reject_constant)
    except _DuplicateKey as dup:
        update.problems.append(f"json-message has a key twice in one object: {dup.key[:40]!r}")
        return
    except (ValueError, RecursionError) as exc:
        update.problems.append(f"malformed json-message: {type(exc).__name__}")
        return
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict):
        update.problems.append('malformed json-message: not an object with a "sources" object')
        return
    extra = sorted(set(document) - {"sources"})
    if extra:
        update.problems.append(f"json-message has keys other than sources: {[k[:20] for k in extra[:4]]}")
    for owner, arrays in document["sources"].items():
        where = f"json-message sources of {owner[:40]!r}"
        if not owner:
            update.problems.append("json-message sources of an empty owner")
            continue
        if not isinstance(arrays, list) or len(arrays) > 4 or not all(isinstance(a, list) for a in arrays):
            update.problems.append(f"{where}: not a list of at most four lists")
            continue
        entry = update.of(owner)
        padded = [*arrays, [], [], []][:4]
        for index, media in ((0, "video"), (2, "audio")):
            for raw in padded[index]:
                source = _json_source(raw, media, where, update.problems)
                if source is not None:
                    entry.sources.append(source)
            for raw in padded[index + 1]:
                group = _json_group(raw, media, where, update.problems)
                if group is not None:
                    entry.groups.append(group)


def _json_ssrc(value: object) -> int | None:
    # bool is an int in Python; a JSON true is no SSRC. Strings and floats are not what Jicofo sends.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SSRC:
        return None
    return value


def _json_source(raw: object, media: str, where: str, problems: list[str]) -> RemoteSource | None:
    if not isinstance(raw, dict) or "s" not in raw:
        problems.append(f'{where}: a {media} source that is not an object with "s"')
        return None
    ssrc = _json_ssrc(raw["s"])
    if ssrc is None:
        problems.append(f"{where}: a {media} source with an invalid SSRC ({type(raw['s']).__name__})")
        return None
    unknown = set(raw) - _SOURCE_KEYS
    if unknown:
        problems.append(f"{where}: source {ssrc} has unknown keys {sorted(k[:12] for k in unknown)[:4]}")
    name, msid = raw.get("n"), raw.get("m")
    if (name is not None and not isinstance(name, str)) or (msid is not None and not isinstance(msid, str)):
        problems.append(f"{where}: source {ssrc} has a name or msid that is not a string")
        return None
    video_type = None
    if "v" in raw:
        if media != "video":
            problems.append(f'{where}: audio source {ssrc} carries "v"')
        elif raw["v"] != "d":
            problems.append(f'{where}: source {ssrc} has "v" other than "d"')
        video_type = "desktop" if media == "video" else None
    return RemoteSource(ssrc, media, name, msid, video_type)


def _json_group(raw: object, media: str, where: str, problems: list[str]) -> RemoteGroup | None:
    if not isinstance(raw, list) or not raw or raw[0] not in _JSON_GROUP_CODES:
        problems.append(f'{where}: a {media} group that is not ["s"|"f", ssrc, ...]')
        return None
    ssrcs = [_json_ssrc(v) for v in raw[1:]]
    if any(s is None for s in ssrcs):
        problems.append(f"{where}: a {media} group with an invalid SSRC")
        return None
    return RemoteGroup(_JSON_GROUP_CODES[raw[0]], tuple(s for s in ssrcs if s is not None), media)


# ---------------------------------------------------------------------------------------------
# Checking and applying


_NAME = re.compile(r"(?P<owner>.+)-(?P<letter>[av])\d+\Z")


def _group_text(g: RemoteGroup) -> str:
    return f"{g.semantics} group {list(g.ssrcs)[:8]}"


def _group_shape(g: RemoteGroup) -> str | None:
    if len(set(g.ssrcs)) != len(g.ssrcs):
        return "names one SSRC twice"
    if g.semantics == FID and len(g.ssrcs) != 2:
        return "is an FID group without exactly two SSRCs"
    if g.semantics == SIM and len(g.ssrcs) < 2:
        return "is a SIM group of fewer than two SSRCs"
    return None


def _name_problems(owner: str, s: RemoteSource) -> list[str]:
    if s.name is None:
        return [] if owner == BRIDGE else [f"source {s.ssrc} of {owner} has no name"]
    problems = []
    match = _NAME.match(s.name)
    letter = "a" if s.media_type == "audio" else "v"
    if match is None or match["owner"] != owner or match["letter"] != letter:
        problems.append(f"source name {s.name[:64]!r} does not fit owner {owner} and {s.media_type}")
    if s.msid is None:
        problems.append(f"source {s.ssrc} ({s.name[:64]}) of {owner} has no msid")
    return problems


def apply_add(
    known: RemoteSources, update: SourceUpdate, own_endpoint: str
) -> tuple[dict[str, int], list[str]]:
    """Take what the client takes of a source-add (or an offer's sources) into `known`; return how
    many sources each owner got and the problems: sources for ourselves; an invalid SSRC; a source
    or group listed twice in this update; an SSRC already held (by the same owner: a duplicate; by
    another: owned by two endpoints); a group naming SSRCs its owner does not have, or of a wrong
    shape; names that do not fit the owner; sources of one name with different msids, or an msid
    shared by two names or two endpoints."""
    problems = list(update.problems)
    added: dict[str, int] = {}
    seen_in_update: dict[int, str] = {}
    msid_owner = {s.msid: o for o, e in known.items() for s in e.sources if s.msid}
    for owner, entry in update.owners.items():
        if owner == own_endpoint:
            problems.append(f"source-add for our own endpoint {owner} ({len(entry.sources)} sources)")
            continue
        held = known.get(owner)
        taken: list[RemoteSource] = []
        for s in entry.sources:
            if not 1 <= s.ssrc <= MAX_SSRC:
                problems.append(f"invalid SSRC {s.ssrc} of {owner}")
                continue
            if s.ssrc in seen_in_update:
                first = seen_in_update[s.ssrc]
                problems.append(f"duplicate source in one update: SSRC {s.ssrc} of {owner} is listed twice"
                                + ("" if first == owner else f" (also for {first})"))
                continue
            seen_in_update[s.ssrc] = owner
            holder = known.owner_of(s.ssrc)
            if holder == owner:
                problems.append(f"duplicate source: SSRC {s.ssrc} of {owner} is already known")
                continue
            if holder is not None:
                problems.append(f"duplicate source: SSRC {s.ssrc} of {owner} is owned by {holder} already "
                                "(one SSRC, two endpoints)")
                continue
            if s.msid and msid_owner.get(s.msid, owner) != owner:
                problems.append(f"msid of source {s.ssrc} of {owner} is used by {msid_owner[s.msid]} too")
            problems.extend(_name_problems(owner, s))
            taken.append(s)
        own_ssrcs = held.ssrcs | {s.ssrc for s in taken}
        groups: list[RemoteGroup] = []
        for g in entry.groups:
            if g in groups:
                problems.append(f"duplicate ssrc-group in one update: {_group_text(g)} of {owner}")
                continue
            if g in held.groups:
                problems.append(f"duplicate ssrc-group: {_group_text(g)} of {owner} is already known")
                continue
            shape = _group_shape(g)
            if shape is not None:
                problems.append(f"{_group_text(g)} of {owner} {shape}")
                continue
            if not own_ssrcs.issuperset(g.ssrcs):
                problems.append(f"{_group_text(g)} of {owner} has unknown SSRCs")
                continue
            groups.append(g)
        merged = EndpointSources(held.sources + tuple(taken), held.groups + tuple(groups))
        earlier = set(_consistency(held))  # reported when they arrived
        problems.extend(f"sources of {owner} are inconsistent: {p}"
                        for p in _consistency(merged) if p not in earlier)
        if taken or groups:
            known.put(owner, merged)
            added[owner] = len(taken)
    return added, problems


def _consistency(e: EndpointSources) -> list[str]:
    """One source name ↔ one msid; the members of a group share one msid and one media."""
    problems = []
    by_ssrc = {s.ssrc: s for s in e.sources}
    msid_of_name: dict[tuple[str, str], str | None] = {}
    name_of_msid: dict[str, str] = {}
    for s in e.sources:
        if s.name is None:
            continue
        key = (s.media_type, s.name)
        if key in msid_of_name and msid_of_name[key] != s.msid:
            problems.append(f"sources named {s.name[:64]} have different msids")
        msid_of_name.setdefault(key, s.msid)
        if s.msid is not None:
            if name_of_msid.setdefault(s.msid, s.name) != s.name:
                problems.append(f"msid of {s.name[:64]} is used by {name_of_msid[s.msid][:64]} too")
    for g in e.groups:
        members = [by_ssrc[x] for x in g.ssrcs if x in by_ssrc]
        if len({m.msid for m in members}) > 1 or any(m.msid is None for m in members):
            problems.append(f"{_group_text(g)} has members without one common msid")
        if any(m.media_type != g.media_type for m in members):
            problems.append(f"{_group_text(g)} mixes media")
    return problems


def apply_remove(known: RemoteSources, update: SourceUpdate) -> tuple[dict[str, int], list[str]]:
    """Take a source-remove: each listed SSRC must be held by that owner (else "unknown source
    removed"), listed once; a listed group must be held unless all its SSRCs go; every group
    touching a removed SSRC goes too. Returns how many sources each owner lost, and the problems."""
    problems = list(update.problems)
    removed: dict[str, int] = {}
    for owner, entry in update.owners.items():
        held = known.get(owner)
        held_ssrcs = held.ssrcs
        listed = [s.ssrc for s in entry.sources]
        duplicates = sorted({x for x in listed if listed.count(x) > 1})
        if duplicates:
            problems.append(f"duplicate source in one source-remove: {owner} SSRC(s) {duplicates[:8]}")
        gone = set(listed)
        unknown = sorted(gone - held_ssrcs)
        if unknown:
            problems.append(f"unknown source removed: {owner} never had SSRC(s) {unknown[:8]}")
        gone &= held_ssrcs
        for g in entry.groups:
            if g not in held.groups and not gone.issuperset(g.ssrcs):
                problems.append(f"unknown ssrc-group removed: {owner} {_group_text(g)}")
        if not gone and not any(g in held.groups for g in entry.groups):
            continue
        dropped_groups = set(entry.groups)
        remaining = EndpointSources(
            tuple(s for s in held.sources if s.ssrc not in gone),
            tuple(g for g in held.groups if g not in dropped_groups and not gone.intersection(g.ssrcs)),
        )
        known.put(owner, remaining)
        removed[owner] = len(held.sources) - len(remaining.sources)
    return removed, problems
