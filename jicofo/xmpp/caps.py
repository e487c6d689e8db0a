"""XEP-0115 entity capabilities: the verification string, the `<c/>` element and a cache.

Everything here is pure. The cache stores a disco#info result only when it hashes to the
advertised ver, so one lying peer cannot give every other peer with that ver wrong features.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

NS_CAPS = "http://jabber.org/protocol/caps"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DATA = "jabber:x:data"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

# IANA "Hash Function Textual Names" → hashlib; MD5/MD2 are deliberately absent.
HASH_FUNCTIONS: dict[str, str] = {
    "sha-1": "sha1",
    "sha-224": "sha224",
    "sha-256": "sha256",
    "sha-384": "sha384",
    "sha-512": "sha512",
}

# A form reduced to what the ver string covers: FORM_TYPE and (var, sorted values) pairs.
_FormKey = tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]


@dataclass(frozen=True)
class Identity:
    category: str
    type: str
    name: str = ""
    lang: str = ""

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.category, self.type, self.lang, self.name)


@dataclass(frozen=True, eq=False)
class DiscoInfo:
    """A disco#info result. Equality compares forms by content, not by element identity."""

    identities: tuple[Identity, ...]
    features: frozenset[str]
    forms: tuple[Element, ...] = ()

    @classmethod
    def from_element(cls, query_el: Element) -> DiscoInfo:
        """Read a `{http://jabber.org/protocol/disco#info}query` element (lenient)."""
        identities = tuple(
            Identity(
                el.get("category", ""), el.get("type", ""), el.get("name", ""), el.get(XML_LANG, "")
            )
            for el in query_el.findall(f"{{{NS_DISCO_INFO}}}identity")
        )
        features = frozenset(
            var
            for el in query_el.findall(f"{{{NS_DISCO_INFO}}}feature")
            if (var := el.get("var")) is not None
        )
        forms = tuple(copy.deepcopy(el) for el in query_el.findall(f"{{{NS_DATA}}}x"))
        return cls(identities, features, forms)

    def to_element(self, node: str | None = None) -> Element:
        query = Element(f"{{{NS_DISCO_INFO}}}query")
        if node:
            query.set("node", node)
        for identity in sorted(self.identities, key=Identity.sort_key):
            el = SubElement(
                query,
                f"{{{NS_DISCO_INFO}}}identity",
                {"category": identity.category, "type": identity.type},
            )
            if identity.name:
                el.set("name", identity.name)
            if identity.lang:
                el.set(XML_LANG, identity.lang)
        for feature in sorted(self.features):
            SubElement(query, f"{{{NS_DISCO_INFO}}}feature", {"var": feature})
        query.extend(copy.deepcopy(form) for form in self.forms)
        return query

    def _key(self) -> tuple[tuple[Identity, ...], frozenset[str], tuple[_FormKey | None, ...]]:
        forms = tuple(sorted((_form_key(form) for form in self.forms), key=repr))
        return (tuple(sorted(self.identities, key=Identity.sort_key)), self.features, forms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DiscoInfo):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _form_type_values(form: Element) -> list[str] | None:
    """The FORM_TYPE values of a hidden FORM_TYPE field, or None when the form has none."""
    for field in form.findall(f"{{{NS_DATA}}}field"):
        if field.get("var") == "FORM_TYPE":
            if field.get("type") != "hidden":
                return None  # §5.4: a form whose FORM_TYPE is not hidden is ignored
            return [value.text or "" for value in field.findall(f"{{{NS_DATA}}}value")]
    return None


def _form_key(form: Element) -> _FormKey | None:
    """The parts of an extended info form that the ver string covers, or None to ignore it."""
    form_types = _form_type_values(form)
    if not form_types:
        return None
    fields = []
    for field in form.findall(f"{{{NS_DATA}}}field"):
        var = field.get("var")
        if var is None or var == "FORM_TYPE":
            continue
        values = tuple(sorted(value.text or "" for value in field.findall(f"{{{NS_DATA}}}value")))
        fields.append((var, values))
    return (form_types[0], tuple(sorted(fields)))


def verification_string(info: DiscoInfo) -> str:
    """The string S of XEP-0115 §5.1 (before hashing)."""
    parts: list[str] = []
    for identity in sorted(info.identities, key=Identity.sort_key):
        parts.append(f"{identity.category}/{identity.type}/{identity.lang}/{identity.name}")
    parts.extend(sorted(info.features))
    # Python's code-point order is the byte order of UTF-8, i.e. the i;octet collation required.
    form_keys = sorted(key for form in info.forms if (key := _form_key(form)) is not None)
    for form_type, fields in form_keys:
        parts.append(form_type)
        for var, values in fields:
            parts.append(var)
            parts.extend(values)
    return "".join(f"{part}<" for part in parts)


def compute_ver(info: DiscoInfo, hash_name: str = "sha-1") -> str:
    """The XEP-0115 ver attribute for `info`. Raises ValueError for an unsupported hash."""
    algorithm = HASH_FUNCTIONS.get(hash_name)
    if algorithm is None:
        raise ValueError(f"unsupported caps hash {hash_name!r}")
    digest = hashlib.new(algorithm, verification_string(info).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def caps_element(node: str, ver: str, hash_name: str = "sha-1") -> Element:
    """The `<c xmlns='http://jabber.org/protocol/caps'/>` element for a presence."""
    return Element(f"{{{NS_CAPS}}}c", {"hash": hash_name, "node": node, "ver": ver})


def is_well_formed(info: DiscoInfo) -> bool:
    """Whether `info` may be cached under its ver (XEP-0115 §5.4, plus a '<' guard).

    '<' is the separator of the verification string: a value containing it makes two different
    results hash alike, which is exactly what a cache-poisoning peer would need.
    """
    if len(set(info.identities)) != len(info.identities):
        return False
    strings = [s for identity in info.identities for s in identity.sort_key()]
    strings.extend(info.features)
    form_types: set[str] = set()
    for form in info.forms:
        values = _form_type_values(form)
        if values is None:
            continue
        if not values or len(set(values)) > 1 or values[0] in form_types:
            return False
        form_types.add(values[0])
        key = _form_key(form)
        assert key is not None
        strings.append(key[0])
        for var, field_values in key[1]:
            strings.append(var)
            strings.extend(field_values)
    return not any("<" in s for s in strings)


class CapsCache:
    """A bounded LRU map from (hash, ver) to verified disco#info results."""

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("a caps cache needs room for at least one entry")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], DiscoInfo] = OrderedDict()

    def get(self, hash_name: str, ver: str) -> DiscoInfo | None:
        key = (hash_name, ver)
        info = self._entries.get(key)
        if info is not None:
            self._entries.move_to_end(key)
        return info

    def put_verified(self, hash_name: str, ver: str, info: DiscoInfo) -> bool:
        """Store `info` if it really hashes to `ver`; return whether it was stored."""
        try:
            computed = compute_ver(info, hash_name)
        except ValueError:
            return False
        if computed != ver or not is_well_formed(info):
            return False
        key = (hash_name, ver)
        self._entries[key] = info
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
