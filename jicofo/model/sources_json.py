"""The compact JSON encoding of sources (the text of Jingle's `<json-message>`), both ways."""

from __future__ import annotations

import json

from jicofo.xmlns import bounded_json
from jicofo.xmlns.attributes import MAX_SSRC, parse_ssrc

from .sources import DESKTOP, ConferenceSourceMap, EndpointSourceSet, MediaType, Semantics, Source, SsrcGroup

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


