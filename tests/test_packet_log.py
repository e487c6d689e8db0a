"""The XMPP packet log against a real Prosody: every stanza in and out of a connection, named by
the connection, with SASL payloads redacted (PLAIN carries the password itself), over WebSocket as
over TCP; and nothing serialized for it while it is off."""

from __future__ import annotations

import base64
import io

import pytest

import jicofo.xmpp.connection as connection_module
from jicofo.logs import configure_logging
from jicofo.testing.prosody import ProsodyInstance
from jicofo.xmpp.xml import element

from .xmpp_helpers import connected, settings_for

pytestmark = pytest.mark.usefixtures("restore_logging")


def _packets(text: str, name: str, direction: str) -> list[str]:
    marker = f"{name} {direction} PKT: "
    return [line.split(marker, 1)[1] for line in text.splitlines() if marker in line]


@pytest.mark.parametrize("transport", ["tcp", "websocket"])
async def test_packet_log_shows_every_stanza_and_no_password(
    prosody: ProsodyInstance, transport: str,
) -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", packet_log=True, stream=out)
    overrides = {"websocket_url": prosody.websocket_url} if transport == "websocket" else {}
    # PLAIN: the one mechanism whose payload is the password itself (base64).
    settings = settings_for(prosody, "focus", sasl_mechanisms=("PLAIN",), **overrides)
    async with connected(settings, name="packet-test") as client:
        assert client.jid is not None
        await client.request(client.iq("get", client.jid.domain, element("{urn:xmpp:ping}ping")))
    text = out.getvalue()

    name = "packet-test"  # the connection's own name
    sent, received = _packets(text, name, "SENT"), _packets(text, name, "RCV")
    if transport == "websocket":
        assert sent[0].startswith("<open ") and received[0].startswith("<open ")
        assert sent[-1] == '<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>'
    else:
        assert "<stream:stream" in sent[0] and received[0].startswith("<stream:stream ")
        assert sent[-1] == "</stream:stream>"
    assert any(x.startswith("<features") for x in received)
    assert any(x.startswith("<iq") and "urn:xmpp:ping" in x for x in sent)
    assert any(x.startswith("<iq") and 'type="result"' in x for x in received)
    assert [x for x in sent if x.startswith("<auth")] == [
        '<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">[redacted]</auth>'
    ]
    plain = base64.b64encode(f"\0focus\0{prosody.focus_password}".encode()).decode()
    assert prosody.focus_password not in text and plain not in text


async def test_nothing_is_serialized_for_the_packet_log_while_it_is_off(
    prosody: ProsodyInstance, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    real = connection_module.serialize

    def counting(*args: object, **kwargs: object) -> str:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(connection_module, "serialize", counting)
    for enabled in (False, True):
        calls.clear()
        out = io.StringIO()
        configure_logging("DEBUG", "text", packet_log=enabled, stream=out)  # DEBUG: still off
        async with connected(settings_for(prosody, "focus")) as client:
            assert client.jid is not None
            await client.request(client.iq("get", client.jid.domain,
                                           element("{urn:xmpp:ping}ping")))
        if enabled:
            assert calls and "RCV PKT" in out.getvalue()
        else:
            assert calls == [] and "PKT" not in out.getvalue()
