"""The one JSON decoder for content that arrives inside stanzas (`<SourceInfo>` in presence, the
compact JSON sources of `<json-message>`, and whatever JSON later payloads carry).

    document = decode_json(text, max_chars=SOURCE_INFO_MAX_CHARS)

Every input is checked before `json.loads` sees it: its length against `max_chars`, and its
nesting depth against `max_depth` by a scan that recurses nowhere, so a document nested 5,000
levels is refused instead of exhausting the interpreter's stack. Within those bounds the work
and the memory are proportional to the input. Integers are limited to a few digits, and the
non-JSON constants Python accepts (NaN, Infinity) are refused. Every refusal is one error type,
`JsonContentError`, a ValueError: callers that already treat ValueError as "malformed" need
nothing more.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Depth: the deepest payload the focus reads is the compact JSON sources,
# {"sources":{owner:[[{source}],[[group]]]}}, five levels; SourceInfo is two, the component
# messages (room metadata, A/V moderation) four. Sixteen leaves room for fields clients add later
# and stays far below the interpreter's recursion limit (1,000).
MAX_DEPTH = 16

# SourceInfo: one entry per source name, {"<endpoint>-v0":{"muted":false,"videoType":"desktop"}},
# about 60 characters. A member is allowed max-ssrcs-per-user (20) SSRCs, so at most 20 names:
# ~1.2 KB with today's 8-character endpoint ids (a camera and a screen share are ~100 bytes).
# 8 KiB leaves room for long nicks and new per-source fields.
SOURCE_INFO_MAX_CHARS = 8 * 1024

# A member's own sources in compact JSON: per SSRC {"s":4294967295,"n":"<name>","m":"<msid>"}
# (~150 characters with a browser's msid), 20 SSRCs and 20 groups make ~4 KB. 64 KiB is generous
# and still tiny next to the 512 KiB stanza limit.
MEMBER_SOURCES_MAX_CHARS = 64 * 1024

# Digits of one integer: an SSRC has 10, the stats and counters any payload carries fit in 20.
MAX_INT_DIGITS = 20

# A string (escapes included, so no bracket inside one is counted) or one bracket. A string left
# open runs to the end of the text (`json.loads` fails there anyway); with the possessive `*+`
# every match attempt that starts consumes up to its end, so the scan is linear in the text.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


class JsonContentError(ValueError):
    """JSON content refused: too long, nested too deep, or not JSON."""


def decode_json(text: str | bytes, *, max_chars: int, max_depth: int = MAX_DEPTH) -> Any:
    """Decode `text` (bytes as UTF-8), refusing anything longer than `max_chars` characters (bytes
    for bytes) or nested deeper than `max_depth` arrays/objects. Raises JsonContentError."""
    if len(text) > max_chars:
        raise JsonContentError(f"JSON content of {len(text)} characters exceeds {max_chars}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonContentError("JSON content is not UTF-8") from None
    depth = nesting_depth(text, stop_above=max_depth)
    if depth > max_depth:
        raise JsonContentError(f"JSON content nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_int=_parse_int, parse_constant=_refuse_constant)
    except JsonContentError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise JsonContentError(f"not JSON: {exc}") from None


def nesting_depth(text: str, *, stop_above: int | None = None) -> int:
    """The deepest nesting of arrays and objects in `text`, brackets inside strings not counted.
    Never recurses. For malformed text the result is at least the depth `json.loads` would reach
    before failing (it reads the same tokens up to the error). Stops counting once the depth
    exceeds `stop_above`."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        first = match.group()[0]
        if first == "[" or first == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    break
        elif first == "]" or first == "}":
            depth = max(depth - 1, 0)
    return deepest


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonContentError(f"integer of {len(digits)} digits in JSON content")
    return int(digits)


def _refuse_constant(name: str) -> Any:
    raise JsonContentError(f"{name} is not JSON")
