"""JSON forms of the typed objects the restart store keeps (sources, transports, occupants,
offer options). Pure functions; the decoders raise ValueError for anything malformed (a store
written by another version), which discards that record."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from xml.etree.ElementTree import Element

from jicofo.conference.offer import OfferOptions
from jicofo.model.sources import (
    ConferenceSourceMap,
    EndpointSourceSet,
    MediaType,
    Semantics,
    Source,
    SsrcGroup,
)
from jicofo.xmlns.ice_udp import IceUdpTransport
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import Occupant
from jicofo.xmpp.xml import parse_fragment, serialize


def encode_sources(sources: EndpointSourceSet) -> dict[str, Any]:
    return {
        "s": [[s.ssrc, str(s.media_type), s.name, s.msid, s.video_type, s.synthetic]
              for s in sources.sources],
        "g": [[str(g.semantics), str(g.media_type), list(g.ssrcs)] for g in sources.groups],
    }


def decode_sources(value: Any) -> EndpointSourceSet:
    try:
        return EndpointSourceSet(
            tuple(Source(int(ssrc), MediaType(media), name, msid, video_type, bool(synthetic))
                  for ssrc, media, name, msid, video_type, synthetic in value["s"]),
            tuple(SsrcGroup(Semantics(semantics), tuple(int(x) for x in ssrcs), MediaType(media))
                  for semantics, media, ssrcs in value["g"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"bad source set: {exc}") from None


def encode_signaled(signaled: ConferenceSourceMap) -> dict[str, list[int]]:
    """What a member was told, as SSRCs per owner (the sources themselves are the owners')."""
    return {owner: [s.ssrc for s in sources.sources] for owner, sources in signaled.items()}


def decode_signaled(value: Any, known: ConferenceSourceMap,
                    extra: dict[str, EndpointSourceSet]) -> ConferenceSourceMap:
    """Rebuild a member's signaled map from the SSRCs it was told and the sources each owner has
    (`known`; `extra` for owners outside it, such as the bridge's feedback sources)."""
    if not isinstance(value, dict):
        raise ValueError("bad signaled map")
    result = ConferenceSourceMap()
    for owner, ssrcs in value.items():
        wanted = {int(x) for x in ssrcs}
        have = extra.get(owner) or known.get(owner)
        sources = tuple(s for s in have.sources if s.ssrc in wanted)
        groups = tuple(g for g in have.groups if all(x in wanted for x in g.ssrcs))
        result.add(owner, EndpointSourceSet(sources, groups))
    return result


def encode_element(el: Element) -> str:
    return serialize(el)


def decode_element(text: Any) -> Element:
    if not isinstance(text, str):
        raise ValueError("not XML text")
    return parse_fragment(text)


def encode_transport(transport: IceUdpTransport) -> str:
    return serialize(transport.to_element())


def decode_transport(text: Any) -> IceUdpTransport:
    return IceUdpTransport.from_element(decode_element(text))


def encode_options(options: OfferOptions) -> dict[str, bool]:
    return asdict(options)


def decode_options(value: Any) -> OfferOptions:
    if not isinstance(value, dict):
        raise ValueError("bad offer options")
    return OfferOptions(**{k: bool(v) for k, v in value.items()
                           if k in OfferOptions.__dataclass_fields__})


def encode_occupant(occupant: Occupant) -> dict[str, Any]:
    return {"nick": occupant.nick, "role": occupant.role, "affiliation": occupant.affiliation,
            "jid": str(occupant.jid) if occupant.jid is not None else None,
            "presence": encode_element(occupant.presence)}


def decode_occupant(value: Any) -> Occupant:
    try:
        jid = JID.parse(value["jid"]) if value.get("jid") else None
        return Occupant(str(value["nick"]), str(value["role"]), str(value["affiliation"]), jid,
                        decode_element(value["presence"]))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"bad occupant: {exc}") from None
