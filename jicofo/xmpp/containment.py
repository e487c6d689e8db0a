"""Containment of stanzas: nothing a member, a bridge or any other sender sends ends more than the
handling of that one stanza.

The rule. Where a stanza enters the focus's logic (a room's presence, a participant's Jingle
IQs, the conference request, the brewery's bridge presence, a bridge's Colibri2 answers), its
handling runs inside `contain_stanza`. An exception raised there is logged once (what, from
whom, the exception's type and message; never the payload; the room and participant come from
the log context) and that stanza alone is refused:

- a request (IQ get/set) is answered with an error: `bad-request` when its content could not be
  read (a ValueError), `internal-server-error` otherwise. The guard raises the StanzaError and
  the caller's ordinary path sends it;
- an answer to one of our requests (IQ result/error) counts as malformed: the guard raises
  MalformedStanza, a ValueError, which the requester already treats as a bad answer (it reports
  the failure itself, so the guard does not log it);
- presence and messages are ignored.

The task that handled the stanza carries on. Not contained: cancellation and the other
BaseExceptions; a StanzaError raised on purpose while handling a request (it is the refusal);
and the exception types in `keep`, the caller's own control flow (a conference ending, a lost
connection that the caller reports).

    async for event in room.events:
        with contain_stanza(event_presence, "member presence", keep=(ConferenceStopped,)):
            handle(event)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from xml.etree.ElementTree import Element

from jicofo.logs import log_context

from .errors import StanzaError

log = logging.getLogger(__name__)

_MESSAGE_CHARS = 160  # of an exception's message, in logs and error texts


class MalformedStanza(ValueError):
    """An answer whose handling failed (see the module's rule)."""


@contextmanager
def contain_stanza(
    stanza: Element | None,
    what: str,
    *,
    keep: tuple[type[BaseException], ...] = (),
    **context: object,
) -> Iterator[None]:
    """Handle one stanza under the containment rule (module docstring). `what` names it in the
    log ("member presence", "Jingle IQ"); `context` adds log-context keys (e.g. endpoint=nick).
    `stanza` None stands for something that is neither a request nor an answer (an event built
    from presence): it is ignored when its handling fails."""
    try:
        yield
    except Exception as exc:
        if _is_kept(exc, keep):
            raise
        kind = _kind(stanza)
        if kind == "request" and isinstance(exc, StanzaError):
            raise
        message = f"{type(exc).__name__}: {_short(exc)}"
        if kind == "answer":
            raise MalformedStanza(f"{what}: {message}") from None
        sender = stanza.get("from") if stanza is not None else None
        with log_context(**context):
            log.warning("%s%s %s: %s", what, f" from {sender}" if sender else "",
                        "refused" if kind == "request" else "ignored", message,
                        exc_info=log.isEnabledFor(logging.DEBUG))
        if kind == "request":
            if isinstance(exc, ValueError):
                raise StanzaError("bad-request", _short(exc)) from None
            raise StanzaError("internal-server-error") from None


def _kind(stanza: Element | None) -> str:
    if stanza is None or stanza.tag.rpartition("}")[2] != "iq":
        return "other"
    return "request" if stanza.get("type") in ("get", "set") else "answer"


def _is_kept(exc: BaseException, keep: tuple[type[BaseException], ...]) -> bool:
    if not keep:
        return False
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(keep) is not None
    return isinstance(exc, keep)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "…"
