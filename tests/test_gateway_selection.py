"""Jigasi selection (jicofo/jigasi/detector.py) and who counts as a Jibri / Jigasi member
(jicofo/conference/gateways.py): pure logic, no network."""

from __future__ import annotations

from jicofo.conference.gateways import (
    FEATURE_JIBRI,
    FEATURE_JIGASI,
    FEATURE_TRANSCRIBER,
    is_gateway_member,
    is_transcriber_member,
)
from jicofo.jigasi.detector import JigasiDetector
from jicofo.xmlns.colibri_stats import NS_COLIBRI
from jicofo.xmpp.jid import JID
from jicofo.xmpp.muc import Occupant
from jicofo.xmpp.xml import element, qn

BREWERY = JID.parse("jigasibrewery@internal.auth.meet.test")


def stats(**values: object) -> object:
    return element(qn(NS_COLIBRI, "stats"), None, *[
        element(qn(NS_COLIBRI, "stat"), {"name": k, "value": str(v).lower()}) for k, v in values.items()])


def detector(local_region: str | None = None) -> JigasiDetector:
    d = JigasiDetector(None, BREWERY, local_region=local_region,  # type: ignore[arg-type]
                       region_groups=[frozenset({"eu-west", "eu-central"})], request_timeout=5)
    for nick, values in {
        "us": {"supports_sip": True, "participants": 1, "region": "us-east"},
        "euw": {"supports_sip": True, "participants": 9, "region": "eu-west"},
        "euc": {"supports_sip": True, "participants": 2, "region": "eu-central"},
        "ap": {"supports_sip": True, "participants": 0, "region": "ap-south"},
        "tr": {"supports_transcription": True, "participants": 5, "region": "us-east"},
        "down": {"supports_sip": True, "graceful_shutdown": True, "participants": 0, "region": "eu-west"},
    }.items():
        d.instance_updated(BREWERY.with_resource(nick), stats(**values))  # type: ignore[arg-type]
    return d


def nick(jid: JID | None) -> str | None:
    return jid.resource if jid is not None else None


def test_jigasi_selection_order() -> None:
    d = detector(local_region="us-east")
    # The conference's bridge regions first (least loaded there), never one in graceful shutdown.
    assert nick(d.select(transcriber=False, preferred_regions={"eu-west"})) == "euw"
    # Then the regions' groups.
    assert nick(d.select(transcriber=False, preferred_regions={"eu-west"},
                         exclude=[BREWERY.with_resource("euw")])) == "euc"
    # Then the local region, then the least loaded anywhere.
    assert nick(d.select(transcriber=False, preferred_regions={"sa-east"})) == "us"
    assert nick(detector().select(transcriber=False)) == "ap"
    # Transcribers only for transcription.
    assert nick(d.select(transcriber=True)) == "tr"
    assert d.select(transcriber=True, exclude=[BREWERY.with_resource("tr")]) is None
    assert (d.sip_count(), d.sip_in_graceful_shutdown_count(), d.transcriber_count()) == (5, 1, 1)
    d.instance_left(BREWERY.with_resource("tr"))
    assert d.select(transcriber=True) is None


def test_hostile_stats_read_as_nothing() -> None:
    d = detector()
    d.instance_updated(BREWERY.with_resource("odd"), stats(supports_sip="yes", participants="-5"))  # type: ignore[arg-type]
    odd = d.instances[BREWERY.with_resource("odd")]
    assert (odd.supports_sip, odd.participants) == (False, 0)


def occupant(real: str | None) -> Occupant:
    return Occupant("n", "participant", "none", JID.parse(real) if real else None, element("presence"))


def test_gateways_need_a_trusted_domain() -> None:
    trusted = ["recorder.meet.test"]
    jibri = occupant("jibri@recorder.meet.test/x")
    assert is_gateway_member(jibri, {FEATURE_JIBRI}, trusted) == FEATURE_JIBRI
    assert is_gateway_member(occupant("j@Recorder.Meet.Test/x"), {FEATURE_JIGASI}, trusted) == FEATURE_JIGASI
    # A guest claiming the feature, a hidden real JID, or no feature at all: an ordinary member.
    assert is_gateway_member(occupant("guest@meet.test/x"), {FEATURE_JIBRI}, trusted) is None
    assert is_gateway_member(occupant(None), {FEATURE_JIBRI}, trusted) is None
    assert is_gateway_member(occupant("jibri@recorder.meet.test/x"), set(), trusted) is None
    assert is_gateway_member(occupant("jibri@recorder.meet.test/x"), {FEATURE_JIBRI}, []) is None
    assert is_transcriber_member(occupant("t@recorder.meet.test/x"), {FEATURE_TRANSCRIBER}, trusted)
    assert not is_transcriber_member(occupant("t@meet.test/x"), {FEATURE_TRANSCRIBER}, trusted)
