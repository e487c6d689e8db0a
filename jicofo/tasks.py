"""Small helpers for structured concurrency on trio."""

from __future__ import annotations


def single_cause(exc: BaseException) -> BaseException:
    """Unwrap exception groups that hold exactly one exception (trio nests them per nursery),
    so callers and error messages see the real error."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
