"""Reading the claims the focus needs from a Jitsi JWT, without validating it.

Validating the token is Prosody's job (Jitsi's token_verification / mod_auth_token on the host
the token users log in to). The focus has no secret and checks no signature: it only decodes the
payload, bounded, to read `context.user.id` and `context.group`, and the authority uses them only
for a sender whose connection that host authenticated (jicofo/auth/authority.py).
"""

from __future__ import annotations

import base64
import binascii

from .bounded_json import JsonContentError, decode_json

# Jitsi tokens are well under 4 KB; Prosody's own limit on a whole stanza is larger, so bound here.
MAX_TOKEN_CHARS = 8192
MAX_CLAIM_CHARS = 256


class TokenError(ValueError):
    """Not a JWT the focus can read (the message never quotes the token)."""


def token_claims(token: str) -> dict[str, str]:
    """`{"user_id": ..., "group": ...}` (either may be missing) from the JWT's payload."""
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError(f"token longer than {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        raise TokenError("not a JWT (want header.payload.signature)")
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("the JWT payload is not base64url") from None
    try:
        payload = decode_json(raw, max_chars=MAX_TOKEN_CHARS, max_depth=8)
    except JsonContentError:
        raise TokenError("the JWT payload is not bounded JSON") from None
    claims: dict[str, str] = {}
    context = payload.get("context") if isinstance(payload, dict) else None
    if not isinstance(context, dict):
        return claims
    user = context.get("user")
    if isinstance(user, dict):
        user_id = user.get("id")
        if isinstance(user_id, str | int) and not isinstance(user_id, bool):
            claims["user_id"] = str(user_id)[:MAX_CLAIM_CHARS]
    group = context.get("group")
    if isinstance(group, str | int) and not isinstance(group, bool):
        claims["group"] = str(group)[:MAX_CLAIM_CHARS]
    return claims
