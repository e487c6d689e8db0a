"""Config keys for features this focus does not implement (yet), and what to do about them.

The rule: a key is never accepted silently. Where ignoring it would leave the deployment less
protected than its operator asked for (an access control, a limit, a gate), the focus refuses to
start with one line naming the key (ConfigError, exit 2). Otherwise it starts and logs one warning
per key, so that an existing jicofo.conf with its jibri, jigasi or visitors sections still loads.

A key counts as set when its value differs from the shipped reference.conf; a section entry covers
every key under it. This table is the one place the rule lives: a branch that builds a feature
removes its rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyhocon import ConfigTree

from .model import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Unbuilt:
    key: str  # a key, or a section (every key under it)
    why: str
    refuse: bool = False  # True: refused when set to a true value (see the module docstring)


UNBUILT: tuple[Unbuilt, ...] = (
    # Visitors: per key. Turning them on asks for members whom the room keeps out of the main
    # room to be receive-only visitors; ignoring that would let them in as full participants.
    Unbuilt("jicofo.visitors.enabled", "visitors are not built: members a room keeps out of its "
            "main room would join it as full participants", refuse=True),
    Unbuilt("jicofo.visitors.enable-live-room", "the visitors' live-room gate is not built: "
            "visitors would join before the room is live", refuse=True),
    Unbuilt("jicofo.visitors", "visitors are not built; ignored"),
    Unbuilt("jicofo.xmpp.visitors", "visitor nodes are not built; no connection is made to them"),
    Unbuilt("jicofo.bridge.topology-strategy", "only SingleMeshTopologyStrategy is built (the "
            "visitor topology comes with visitors); ignored"),
    # Jibri and Jigasi are built (jicofo/jibri/, jicofo/jigasi/); these parts of them are not.
    Unbuilt("jicofo.jibri.use-private-address-connectivity", "not built; ignored"),
    Unbuilt("jicofo.jigasi.use-private-address-connectivity", "not built; ignored"),
    Unbuilt("jicofo.transcription", "transcription through the bridge is not built; ignored"),
    Unbuilt("jicofo.translation", "audio translation is not built; ignored"),
    # Keys this focus has no use for.
    Unbuilt("jicofo.conference.use-rtp-mid-demux", "not read by this focus; ignored"),
    Unbuilt("jicofo.metrics.update-interval", "gauges are computed at each scrape; ignored"),
    Unbuilt("jicofo.xmpp.use-jitsi-jid-validation", "JIDs are always validated with the strict "
            "RFC 7622 rules; ignored"),
    Unbuilt("tracing", "tracing is not built; ignored"),
)


def check_unbuilt(tree: ConfigTree, reference: ConfigTree) -> list[str]:
    """Raise ConfigError for the first refused key that is set; log (and return) one warning line
    per other key that is set. `tree` is the resolved configuration, `reference` the resolved
    reference.conf."""
    warnings: list[str] = []
    seen: set[str] = set()
    for entry in UNBUILT:
        for key, value in _leaves(tree, entry.key):
            if key in seen or _same(value, _get(reference, key)):
                continue
            seen.add(key)
            if entry.refuse and _truthy(value):
                raise ConfigError(f"{key}: {entry.why}; remove it or set it to false")
            if entry.refuse:
                continue
            line = f"{key} is set: {entry.why}"
            log.warning("%s", line)
            warnings.append(line)
    return warnings


def _get(tree: ConfigTree, key: str) -> Any:
    try:
        return tree.get(key, None)
    except Exception:  # pyhocon raises assorted errors for a path through a non-object
        return None


def _leaves(tree: ConfigTree, key: str) -> Iterator[tuple[str, Any]]:
    value = _get(tree, key)
    if isinstance(value, ConfigTree):
        if not value:  # an empty section set where the reference has one: nothing to say
            return
        for sub in value.keys():
            yield from _leaves(tree, f"{key}.{_quote(sub)}")
    elif value is not None:
        yield key, value


def _quote(part: str) -> str:
    return f'"{part}"' if "." in part else part


def _normal(value: Any) -> Any:
    if isinstance(value, ConfigTree):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, bool):
        return str(value).lower()
    return str(value).strip().lower()


def _same(value: Any, default: Any) -> bool:
    return default is not None and _normal(value) == _normal(default)


def _truthy(value: Any) -> bool:
    return _normal(value) in ("true", "1", "yes", "on")
