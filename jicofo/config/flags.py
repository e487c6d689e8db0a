"""The old jicofo.sh command-line flags, as config overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

SECRET_VARIABLE = "JICOFO_SECRET"
PASSWORD_VARIABLE = "JICOFO_AUTH_PASSWORD"

_CLIENT = "jicofo.xmpp.client"
_COMPONENT = "jicofo.xmpp.component"


def overrides_from_flags(
    domain: str | None = None,
    host: str | None = None,
    port: int | None = None,
    subdomain: str | None = None,
    secret: str | None = None,
    user_domain: str | None = None,
    user_name: str | None = None,
    user_password: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Dotted-key overrides for `load_config` from the flags given (None: not given).

    --domain     the XMPP domain: the client's xmpp-domain, and the component's domain
    --host       the XMPP server's host, for the client connection and the component
    --port       the component port
    --subdomain  the component's subdomain; giving it switches the component on
    --secret     the component secret (better: $JICOFO_SECRET)
    --user_domain, --user_name, --user_password   the client login (better: $JICOFO_AUTH_PASSWORD)

    $JICOFO_SECRET and $JICOFO_AUTH_PASSWORD stand for --secret and --user_password and, like them,
    override the config file; the flag wins when both are given. Neither switches anything on.
    """
    env = os.environ if env is None else env
    overrides: dict[str, Any] = {}
    if domain:
        overrides[f"{_CLIENT}.xmpp-domain"] = domain
        overrides[f"{_COMPONENT}.domain"] = domain
    if host:
        overrides[f"{_CLIENT}.hostname"] = host
        overrides[f"{_COMPONENT}.hostname"] = host
    if port is not None:
        overrides[f"{_COMPONENT}.port"] = port
    if subdomain:
        overrides[f"{_COMPONENT}.subdomain"] = subdomain
        overrides[f"{_COMPONENT}.enabled"] = True
    component_secret = secret or env.get(SECRET_VARIABLE)
    if component_secret:
        overrides[f"{_COMPONENT}.secret"] = component_secret
    if user_domain:
        overrides[f"{_CLIENT}.domain"] = user_domain
    if user_name:
        overrides[f"{_CLIENT}.username"] = user_name
    password = user_password or env.get(PASSWORD_VARIABLE)
    if password:
        overrides[f"{_CLIENT}.password"] = password
    return overrides
