"""The two attribute-writing conventions on the wire: Jingle writes a false boolean, Colibri2
leaves it out."""

from jicofo.xmlns import colibri2 as c2
from jicofo.xmlns.attributes import attrs, attrs_omitting_false
from jicofo.xmlns.ice_udp import Fingerprint
from jicofo.xmlns.jingle import StartMuted
from jicofo.xmpp.xml import serialize


def test_attrs_writes_booleans_both_ways_and_leaves_out_none() -> None:
    assert attrs(a=True, b=False, c=None, d=0, ice_generation=2) == {
        "a": "true", "b": "false", "d": "0", "ice-generation": "2"}
    assert list(attrs(z="1", a="2")) == ["z", "a"]


def test_attrs_omitting_false_leaves_out_false_but_not_zero() -> None:
    assert attrs_omitting_false(a=True, b=False, c=None, d=0, use_unique_port=True) == {
        "a": "true", "d": "0", "use-unique-port": "true"}


def test_jingle_elements_write_false() -> None:
    assert serialize(StartMuted(audio=False, video=True).to_element()) == (
        '<startmuted xmlns="http://jitsi.org/jitmeet/start-muted" audio="false" video="true"/>')
    assert 'cryptex="false"' in serialize(Fingerprint("sha-256", "AB", "actpass", False).to_element())


def test_colibri2_elements_leave_false_out() -> None:
    assert serialize(c2.ForceMute(audio=False, video=True).to_element()) == (
        '<force-mute xmlns="jitsi:colibri2" video="true"/>')
    modify = c2.ConferenceModify("m", create=False, rtcstats_enabled=False)
    assert serialize(modify.to_element()) == (
        '<conference-modify xmlns="jitsi:colibri2" meeting-id="m" rtcstats-enabled="false"/>')
