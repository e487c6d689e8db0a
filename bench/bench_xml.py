"""Micro-benchmark of the XMPP XML hot path: parse (XmlStream.receive_data) and serialise
(XmlStream.send) throughput for typical stanzas.

Run: python bench/bench_xml.py [iterations]
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from xml.etree.ElementTree import Element

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jicofo.xmpp.stream import StanzaReceived, XmlStream  # noqa: E402
from jicofo.xmpp.xml import element, parse_fragment, qn  # noqa: E402

NS_CLIENT = "jabber:client"
NS_JINGLE = "urn:xmpp:jingle:1"
NS_RTP = "urn:xmpp:jingle:apps:rtp:1"
NS_ICE = "urn:xmpp:jingle:transports:ice-udp:1"
NS_DTLS = "urn:xmpp:jingle:apps:dtls:0"
NS_SSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"
NS_GROUPING = "urn:xmpp:jingle:apps:grouping:0"
NS_FEEDBACK = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"
NS_HDREXT = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' id='bench' from='meet.example' "
    b"version='1.0'>"
)


def _payload_types(media: str) -> list[Element]:
    if media == "audio":
        return [
            element(qn(NS_RTP, "payload-type"), {"id": "111", "name": "opus", "clockrate": "48000",
                                                 "channels": "2"},
                    element(qn(NS_RTP, "parameter"), {"name": "minptime", "value": "10"}),
                    element(qn(NS_RTP, "parameter"), {"name": "useinbandfec", "value": "1"}),
                    element(qn(NS_FEEDBACK, "rtcp-fb"), {"type": "transport-cc"})),
            element(qn(NS_RTP, "payload-type"), {"id": "126", "name": "telephone-event",
                                                 "clockrate": "8000"}),
        ]
    types = []
    for pt, name in (("100", "VP8"), ("101", "VP9"), ("107", "H264")):
        types.append(element(
            qn(NS_RTP, "payload-type"), {"id": pt, "name": name, "clockrate": "90000"},
            element(qn(NS_FEEDBACK, "rtcp-fb"), {"type": "ccm", "subtype": "fir"}),
            element(qn(NS_FEEDBACK, "rtcp-fb"), {"type": "nack"}),
            element(qn(NS_FEEDBACK, "rtcp-fb"), {"type": "nack", "subtype": "pli"}),
            element(qn(NS_FEEDBACK, "rtcp-fb"), {"type": "transport-cc"}),
        ))
    return types


def _sources(media: str, first_ssrc: int, count: int) -> list[Element]:
    sources = []
    for i in range(count):
        owner = f"conference@muc.meet.example/endpoint{i // 2}"
        sources.append(element(
            qn(NS_SSMA, "source"), {"ssrc": str(first_ssrc + i), "name": f"ep{i}-{media[0]}0"},
            element(qn(NS_SSMA, "parameter"), {"name": "msid",
                                               "value": f"stream-{i} track-{media}-{i}"}),
            element(qn("jitsi:jitmeet", "ssrc-info"), {"owner": owner}),
        ))
    return sources


def _transport() -> Element:
    candidates = [
        element(qn(NS_ICE, "candidate"), {
            "component": "1", "foundation": str(n), "generation": "0", "id": f"cand{n}",
            "ip": f"198.51.100.{n}", "network": "0", "port": str(10000 + n),
            "priority": str(2130706431 - n), "protocol": "udp", "type": kind,
        })
        for n, kind in enumerate(("host", "host", "srflx", "relay"), start=1)
    ]
    fingerprint = element(qn(NS_DTLS, "fingerprint"), {"hash": "sha-256", "setup": "actpass"},
                          text=":".join(f"{b:02X}" for b in range(32)))
    return element(qn(NS_ICE, "transport"), {"ufrag": "3g2sd1f", "pwd": "a1b2c3d4e5f6g7h8i9j0k"},
                   fingerprint, element(qn("http://jitsi.org/protocol/colibri", "web-socket"),
                                        {"url": "wss://jvb.example/colibri-ws/abc"}),
                   *candidates)


def jingle_session_initiate() -> Element:
    contents = []
    for media, first_ssrc, count in (("audio", 1000, 4), ("video", 2000, 6)):
        description = element(
            qn(NS_RTP, "description"), {"media": media},
            *_payload_types(media),
            element(qn(NS_HDREXT, "rtp-hdrext"), {"id": "5", "uri": "http://www.ietf.org/id/"
                                                  "draft-holmer-rmcat-transport-wide-cc-extensions-01"}),
            *_sources(media, first_ssrc, count),
            element(qn(NS_RTP, "rtcp-mux")),
        )
        if media == "video":
            for i in range(0, count, 2):
                description.append(element(
                    qn(NS_SSMA, "ssrc-group"), {"semantics": "FID"},
                    element(qn(NS_SSMA, "source"), {"ssrc": str(first_ssrc + i)}),
                    element(qn(NS_SSMA, "source"), {"ssrc": str(first_ssrc + i + 1)}),
                ))
        contents.append(element(qn(NS_JINGLE, "content"),
                                {"creator": "initiator", "name": media, "senders": "both"},
                                description, _transport()))
    group = element(qn(NS_GROUPING, "group"), {"semantics": "BUNDLE"},
                    element(qn(NS_GROUPING, "content"), {"name": "audio"}),
                    element(qn(NS_GROUPING, "content"), {"name": "video"}))
    jingle = element(qn(NS_JINGLE, "jingle"),
                     {"action": "session-initiate", "initiator": "focus@auth.meet.example/focus",
                      "sid": "3n4kd8a9sl2d1"}, *contents, group,
                     element(qn("http://jitsi.org/protocol/focus", "bridge-session"),
                             {"id": "e9a1d2c3-0000-4b4b-9c9c-abcdef012345"}))
    return element(qn(NS_CLIENT, "iq"), {"type": "set", "id": "jingle-1",
                                         "to": "conference@muc.meet.example/endpoint0",
                                         "from": "focus@auth.meet.example/focus"}, jingle)


def muc_presence() -> Element:
    source_info = json.dumps({"ab12cd34-a0": {"muted": False}, "ab12cd34-v0": {"muted": True,
                                                                                  "videoType": "camera"}})
    return element(
        qn(NS_CLIENT, "presence"),
        {"to": "focus@auth.meet.example/focus", "from": "conference@muc.meet.example/ab12cd34"},
        element(qn("http://jabber.org/protocol/caps", "c"), {
            "hash": "sha-1", "node": "https://jitsi.org/jitsi-meet",
            "ver": "cvjWXufsg4xT62Ec2mlATkFZ9lk="}),
        element(qn(NS_CLIENT, "stats-id"), text="Ellis-Wxr"),
        element(qn(NS_CLIENT, "SourceInfo"), text=source_info),
        element(qn(NS_CLIENT, "jitsi_participant_codecType"), text="vp9"),
        element(qn(NS_CLIENT, "features"), None,
                element(qn(NS_CLIENT, "feature"), {"var": "http://jitsi.org/protocol/e2ee"})),
        element(qn("http://jabber.org/protocol/nick", "nick"), text="Zoë Ellis"),
        element(qn(NS_MUC_USER, "x"), None,
                element(qn(NS_MUC_USER, "item"), {"affiliation": "none", "role": "participant",
                                                   "jid": "ab12cd34@meet.example/Xk2q"})),
    )


def small_iq() -> Element:
    return element(qn(NS_CLIENT, "iq"), {"type": "get", "id": "ping-17", "to": "meet.example"},
                   element(qn("urn:xmpp:ping", "ping")))


def measure(run: Callable[[], object], iterations: int) -> float:
    run()  # warm-up (name caches, interning)
    start = time.perf_counter()
    for _ in range(iterations):
        run()
    return iterations / (time.perf_counter() - start)


def bench(name: str, stanza: Element, iterations: int) -> tuple[str, int, float, float, float]:
    sender = XmlStream()
    wire = sender.send(stanza)
    assert parse_fragment(b"<w xmlns='jabber:client'>" + wire + b"</w>")[0].tag == stanza.tag

    def serialise() -> bytes:
        return sender.send(stanza)

    receiver = XmlStream()
    receiver.open("meet.example")
    receiver.receive_data(HEADER)

    def parse() -> None:
        (event,) = receiver.receive_data(wire)
        assert isinstance(event, StanzaReceived)

    batch = wire * 100

    def parse_batch() -> None:
        events = receiver.receive_data(batch)
        assert len(events) == 100

    per_call = measure(parse, iterations)
    batched = measure(parse_batch, max(1, iterations // 100)) * 100
    return name, len(wire), measure(serialise, iterations), per_call, batched


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    cases = [
        ("jingle session-initiate", jingle_session_initiate(), iterations // 10),
        ("MUC presence (Jitsi)", muc_presence(), iterations),
        ("small IQ", small_iq(), iterations),
    ]
    print(f"Python {sys.version.split()[0]}; stanzas/s (higher is better)")
    print(f"{'stanza':<26}{'bytes':>7}{'serialise':>12}{'parse':>12}{'parse x100':>12}")
    for name, stanza, n in cases:
        label, size, ser, parse, batched = bench(name, stanza, n)
        print(f"{label:<26}{size:>7}{ser:>12,.0f}{parse:>12,.0f}{batched:>12,.0f}")
    print("parse: one receive_data call per stanza; parse x100: 100 stanzas per call")


if __name__ == "__main__":
    main()
