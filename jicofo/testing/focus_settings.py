"""Our focus's config for a test Prosody, as key/value overrides. Kept apart from
jicofo.testing.stack (which runs the focus in-process and so imports the whole application) so
that the load generator (`jicofo-stress --local`, which runs the focus as a child process) loads
none of the focus."""

from __future__ import annotations

from typing import Any

from jicofo.testing.prosody import ProsodyInstance


def focus_overrides(prosody: ProsodyInstance, *, component: bool = True) -> dict[str, Any]:
    """Config for our focus on a test Prosody: focus account over plain TCP on loopback, the
    brewery, and (optionally) the XEP-0114 component `focus.<domain>` taking conference requests."""
    overrides: dict[str, Any] = {
        "jicofo.xmpp.client.hostname": prosody.ip,
        "jicofo.xmpp.client.port": prosody.c2s_port,
        "jicofo.xmpp.client.domain": prosody.auth_domain,
        "jicofo.xmpp.client.xmpp-domain": prosody.domain,
        "jicofo.xmpp.client.username": "focus",
        "jicofo.xmpp.client.password": prosody.focus_password,
        "jicofo.xmpp.client.use-tls": False,
        "jicofo.xmpp.client.conference-muc-jid": prosody.muc_domain,
        "jicofo.bridge.brewery-jid": prosody.brewery_jid,
        "jicofo.rest.port": -1,
    }
    if component:
        overrides.update({
            "jicofo.xmpp.component.enabled": True,
            "jicofo.xmpp.component.hostname": prosody.ip,
            "jicofo.xmpp.component.port": prosody.component_port,
            "jicofo.xmpp.component.domain": prosody.domain,
            "jicofo.xmpp.component.subdomain": "focus",
            "jicofo.xmpp.component.secret": prosody.component_secret,
        })
    return overrides
