"""Source-specific media attributes (`urn:xmpp:jingle:apps:rtp:ssma:0`): the `<source>` and
`<ssrc-group>` elements a Jingle RTP description and a Colibri2 media-source both list.

`from_element` is strict: anything malformed raises ValueError with a message fit for the text of
a bad-request answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from jicofo.xmpp.xml import children, element, find_child, qn

from .attributes import attrs, ssrc_attr
from .attributes import expect as _expect
from .attributes import required as _required
from .namespaces import NS_JITMEET, NS_RTP

NS_SSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"


def _ssrc(el: Element) -> int:
    return ssrc_attr(el, "ssrc")


@dataclass(frozen=True, slots=True)
class SourceElement:
    """`<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc name? videoType?>` with the msid
    parameter and, in what the focus sends, `<ssrc-info xmlns='http://jitsi.org/jitmeet' owner>`.
    Clients put `<parameter>` in the RTP or in the SSMA namespace; both are read."""

    ssrc: int
    name: str | None = None
    video_type: str | None = None
    msid: str | None = None
    owner: str | None = None

    NS = NS_SSMA
    TAG = qn(NS_SSMA, "source")

    @classmethod
    def from_element(cls, el: Element) -> SourceElement:
        _expect(el, cls.TAG)
        msid = None
        for parameter in (*children(el, NS_RTP, "parameter"), *children(el, NS_SSMA, "parameter")):
            if parameter.get("name") == "msid":
                msid = parameter.get("value") or None
        info = find_child(el, NS_JITMEET, "ssrc-info")
        return cls(
            ssrc=_ssrc(el),
            name=el.get("name") or None,
            video_type=el.get("videoType") or None,
            msid=msid,
            owner=info.get("owner") if info is not None else None,
        )

    def to_element(self) -> Element:
        el = element(self.TAG, attrs(ssrc=self.ssrc, name=self.name, videoType=self.video_type))
        if self.owner is not None:
            el.append(element(qn(NS_JITMEET, "ssrc-info"), {"owner": self.owner}))
        if self.msid is not None:
            el.append(element(qn(NS_RTP, "parameter"), {"name": "msid", "value": self.msid}))
        return el


@dataclass(frozen=True, slots=True)
class SsrcGroupElement:
    """`<ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics>` of `<source ssrc>`."""

    semantics: str
    ssrcs: tuple[int, ...]

    NS = NS_SSMA
    TAG = qn(NS_SSMA, "ssrc-group")

    @classmethod
    def from_element(cls, el: Element) -> SsrcGroupElement:
        _expect(el, cls.TAG)
        return cls(_required(el, "semantics"), tuple(_ssrc(s) for s in children(el, NS_SSMA, "source")))

    def to_element(self) -> Element:
        return element(
            self.TAG,
            {"semantics": self.semantics},
            *(element(qn(NS_SSMA, "source"), {"ssrc": str(ssrc)}) for ssrc in self.ssrcs),
        )


def sources_in(el: Element) -> tuple[SourceElement, ...]:
    """The SSMA `<source>` children of `el`."""
    return tuple(SourceElement.from_element(s) for s in children(el, NS_SSMA, "source"))


def ssrc_groups_in(el: Element) -> tuple[SsrcGroupElement, ...]:
    """The SSMA `<ssrc-group>` children of `el`."""
    return tuple(SsrcGroupElement.from_element(g) for g in children(el, NS_SSMA, "ssrc-group"))
