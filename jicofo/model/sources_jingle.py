"""Sources to and from Jingle's typed elements: the SSMA `<source>` / `<ssrc-group>` of an RTP
description and the contents of a source-add / source-remove in the XML encoding."""

from __future__ import annotations

from collections.abc import Iterable

from jicofo.xmlns.jingle import JingleContent, RtpDescription
from jicofo.xmlns.ssma import SourceElement, SsrcGroupElement

from .sources import (
    ConferenceSourceMap,
    EndpointSourceSet,
    MediaType,
    Source,
    SourceValidationError,
    SsrcGroup,
    parse_semantics,
)


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
            message = f"Sources in a content of media {content.media!r}"
            raise SourceValidationError.bad_request(message) from None
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
