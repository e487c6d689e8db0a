from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, fromstring

import pytest

from jicofo.xmpp.caps import (
    NS_CAPS,
    NS_DATA,
    NS_DISCO_INFO,
    XML_LANG,
    CapsCache,
    DiscoInfo,
    Identity,
    caps_element,
    compute_ver,
    is_well_formed,
    verification_string,
)

FEATURES = frozenset(
    {
        "http://jabber.org/protocol/caps",
        "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items",
        "http://jabber.org/protocol/muc",
    }
)
SIMPLE = DiscoInfo((Identity("client", "pc", "Exodus 0.9.1"),), FEATURES)
SIMPLE_VER = "QgayPKawpkPSDYmwT/WM94uAlu0="

# XEP-0115 §5.3, with the features in a different order and the form fields shuffled.
COMPLEX_XML = """
<query xmlns='http://jabber.org/protocol/disco#info'
       node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
  <identity xml:lang='el' category='client' name='\u03a8 0.11' type='pc'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <x xmlns='jabber:x:data' type='result'>
    <field var='software'><value>Psi</value></field>
    <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
    <field var='ip_version'><value>ipv6</value><value>ipv4</value></field>
    <field var='os'><value>Mac</value></field>
    <field var='os_version'><value>10.5.1</value></field>
    <field var='software_version'><value>0.11</value></field>
  </x>
</query>
"""
COMPLEX_VER = "q07IKJEyjvHSyhy//CH0CxmKi8w="
COMPLEX_S = (
    "client/pc/el/\u03a8 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<"
    "http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<"
    "http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<ip_version<ipv4<ipv6<"
    "os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<"
)


def form(form_type: str | None, *fields: tuple[str, list[str]], hidden: bool = True) -> Element:
    x = Element(f"{{{NS_DATA}}}x", {"type": "result"})
    if form_type is not None:
        field = SubElement(x, f"{{{NS_DATA}}}field", {"var": "FORM_TYPE"})
        if hidden:
            field.set("type", "hidden")
        SubElement(field, f"{{{NS_DATA}}}value").text = form_type
    for var, values in fields:
        field = SubElement(x, f"{{{NS_DATA}}}field", {"var": var})
        for value in values:
            SubElement(field, f"{{{NS_DATA}}}value").text = value
    return x


def test_simple_example() -> None:
    assert verification_string(SIMPLE) == (
        "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<"
        "http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<"
        "http://jabber.org/protocol/muc<"
    )
    assert compute_ver(SIMPLE) == SIMPLE_VER


def test_complex_example() -> None:
    info = DiscoInfo.from_element(fromstring(COMPLEX_XML))
    assert len(info.identities) == 2
    assert Identity("client", "pc", "Psi 0.11", "en") in info.identities
    assert info.features == FEATURES
    assert verification_string(info) == COMPLEX_S
    assert compute_ver(info) == COMPLEX_VER


def test_other_hashes() -> None:
    assert compute_ver(SIMPLE, "sha-256") != SIMPLE_VER
    assert len(compute_ver(SIMPLE, "sha-256")) == 44
    with pytest.raises(ValueError, match="md5"):
        compute_ver(SIMPLE, "md5")


def test_forms_are_sorted_by_form_type_and_odd_forms_ignored() -> None:
    a = form("urn:a", ("f", ["1"]))
    b = form("urn:b", ("g", ["2"]))
    base = DiscoInfo((), frozenset({"x"}))
    in_order = DiscoInfo((), frozenset({"x"}), (a, b))
    reversed_ = DiscoInfo((), frozenset({"x"}), (b, a))
    assert verification_string(in_order) == "x<urn:a<f<1<urn:b<g<2<"
    assert compute_ver(in_order) == compute_ver(reversed_)
    not_hidden = DiscoInfo((), frozenset({"x"}), (form("urn:c", ("h", ["3"]), hidden=False),))
    untyped = DiscoInfo((), frozenset({"x"}), (form(None, ("h", ["3"])),))
    assert compute_ver(not_hidden) == compute_ver(untyped) == compute_ver(base)


def test_to_element_round_trips() -> None:
    info = DiscoInfo.from_element(fromstring(COMPLEX_XML))
    el = info.to_element("http://psi-im.org#" + COMPLEX_VER)
    assert el.tag == f"{{{NS_DISCO_INFO}}}query"
    assert el.get("node") == "http://psi-im.org#" + COMPLEX_VER
    identity = el.find(f"{{{NS_DISCO_INFO}}}identity")
    assert identity is not None and identity.get(XML_LANG) == "el"
    again = DiscoInfo.from_element(el)
    assert again == info
    assert hash(again) == hash(info)
    assert compute_ver(again) == COMPLEX_VER
    assert SIMPLE.to_element().get("node") is None
    assert DiscoInfo.from_element(SIMPLE.to_element()) == SIMPLE


def test_equality_compares_form_content() -> None:
    assert DiscoInfo((), frozenset(), (form("urn:a", ("f", ["1"])),)) == DiscoInfo(
        (), frozenset(), (form("urn:a", ("f", ["1"])),)
    )
    assert DiscoInfo((), frozenset(), (form("urn:a", ("f", ["1"])),)) != DiscoInfo(
        (), frozenset(), (form("urn:a", ("f", ["2"])),)
    )


def test_caps_element() -> None:
    el = caps_element("https://example.com/focus", SIMPLE_VER)
    assert el.tag == f"{{{NS_CAPS}}}c"
    assert el.attrib == {"hash": "sha-1", "node": "https://example.com/focus", "ver": SIMPLE_VER}
    assert caps_element("n", "v", "sha-256").get("hash") == "sha-256"


def test_cache_stores_only_verified_results() -> None:
    cache = CapsCache()
    assert cache.get("sha-1", SIMPLE_VER) is None
    assert cache.put_verified("sha-1", SIMPLE_VER, SIMPLE)
    assert cache.get("sha-1", SIMPLE_VER) == SIMPLE
    assert cache.get("sha-256", SIMPLE_VER) is None


def test_cache_refuses_poisoning() -> None:
    cache = CapsCache()
    liar = DiscoInfo(SIMPLE.identities, FEATURES - {"http://jabber.org/protocol/muc"})
    assert not cache.put_verified("sha-1", SIMPLE_VER, liar)
    assert not cache.put_verified("md5", compute_ver(SIMPLE), SIMPLE)
    assert not cache.put_verified("unknown", "x", SIMPLE)
    assert cache.get("sha-1", SIMPLE_VER) is None
    assert len(cache) == 0
    # A genuine result is not replaced by a forged one for the same ver.
    assert cache.put_verified("sha-1", SIMPLE_VER, SIMPLE)
    assert not cache.put_verified("sha-1", SIMPLE_VER, liar)
    assert cache.get("sha-1", SIMPLE_VER) == SIMPLE


def test_cache_refuses_ambiguous_results() -> None:
    # One feature spelled with the separator hashes like two features: refuse to cache it.
    smuggled = DiscoInfo((), frozenset({"urn:a<urn:b"}))
    honest = DiscoInfo((), frozenset({"urn:a", "urn:b"}))
    assert compute_ver(smuggled) == compute_ver(honest)
    cache = CapsCache()
    assert not cache.put_verified("sha-1", compute_ver(smuggled), smuggled)
    assert cache.put_verified("sha-1", compute_ver(honest), honest)


@pytest.mark.parametrize(
    "info",
    [
        DiscoInfo((Identity("client", "pc"), Identity("client", "pc")), frozenset({"f"})),
        DiscoInfo((), frozenset({"f"}), (form("urn:a", ("x", ["1"])), form("urn:a"))),
        DiscoInfo((), frozenset({"f"}), (form("urn:a", ("x", ["1<2"])),)),
        DiscoInfo((Identity("client", "pc", "a<b"),), frozenset({"f"})),
    ],
)
def test_ill_formed_results_are_not_cached(info: DiscoInfo) -> None:
    assert not is_well_formed(info)
    assert not CapsCache().put_verified("sha-1", compute_ver(info), info)


def test_form_type_with_conflicting_values_is_ill_formed() -> None:
    el = form("urn:a", ("x", ["1"]))
    field = el.find("{jabber:x:data}field")
    assert field is not None
    extra = Element("{jabber:x:data}value")
    extra.text = "urn:b"
    field.append(extra)
    assert not is_well_formed(DiscoInfo((), frozenset(), (el,)))


def test_cache_is_bounded_lru() -> None:
    cache = CapsCache(max_entries=3)
    infos = [DiscoInfo((), frozenset({f"urn:feature:{i}"})) for i in range(5)]
    vers = [compute_ver(info) for info in infos]
    for info, ver in zip(infos[:3], vers[:3], strict=True):
        assert cache.put_verified("sha-1", ver, info)
    assert cache.get("sha-1", vers[0]) == infos[0]  # now most recently used
    assert cache.put_verified("sha-1", vers[3], infos[3])
    assert len(cache) == 3
    assert cache.get("sha-1", vers[1]) is None  # least recently used was evicted
    assert cache.get("sha-1", vers[0]) == infos[0]
    assert cache.put_verified("sha-1", vers[4], infos[4])
    assert cache.get("sha-1", vers[2]) is None
    assert len(cache) == 3


def test_cache_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        CapsCache(max_entries=0)
