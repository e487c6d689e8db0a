"""docker-jitsi-meet style jicofo.conf files with authentication (tests/data/docker-jicofo-*.conf)
load unchanged and the focus built from them enforces: a guest is refused a new room, a user of
the login domain is given a session. Their Jibri and Jigasi sections only warn (unbuilt.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from jicofo.app import build_app
from jicofo.config.load import load_config
from jicofo.config.model import AuthenticationType
from jicofo.focus import ConferenceRequestError
from jicofo.xmlns.conference_iq import ConferenceRequest
from jicofo.xmpp.jid import JID

DATA = Path(__file__).resolve().parent / "data"
ROOM = "standup@muc.meet.jitsi"


@pytest.mark.parametrize(("name", "kind"), [("docker-jicofo-xmpp.conf", AuthenticationType.XMPP),
                                            ("docker-jicofo-jwt.conf", AuthenticationType.JWT)])
async def test_docker_style_conf_loads_and_enforces(
        name: str, kind: AuthenticationType, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jicofo.config.unbuilt"):
        config = load_config(DATA / name, env={})
    warned = sorted(r.getMessage().split(" is set")[0] for r in caplog.records)
    assert warned == ["jicofo.jibri.brewery-jid", "jicofo.jigasi.brewery-jid"]
    auth = config.authentication
    assert (auth.enabled, auth.type, auth.login_url) == (True, kind, "meet.jitsi")

    app = build_app(config)  # nothing connects until serve()
    focus = app.focus
    assert focus.auth is not None and focus.auth.external is (kind is AuthenticationType.JWT)
    with pytest.raises(ConferenceRequestError) as refused:
        await focus.conference_request(ConferenceRequest(room=ROOM, machine_uid="m1"),
                                       JID.parse("guest1@guest.meet.jitsi/web"))
    assert refused.value.condition == "not-authorized"
    # A user of meet.jitsi is authenticated (not ready: the focus is not connected here).
    answer = await focus.conference_request(ConferenceRequest(room=ROOM, machine_uid="m1"),
                                            JID.parse("alice@meet.jitsi/web"))
    assert answer.identity == "alice@meet.jitsi" and answer.session_id and not answer.ready
    assert answer.properties == {
        "authentication": "true",
        "externalAuth": "true" if kind is AuthenticationType.JWT else "false",
        "visitors-supported": "false",
    }


@pytest.mark.parametrize(("text", "key"), [
    ("jicofo.authentication { enabled = true, type = XMPP }", "jicofo.authentication.login-url"),
    ("jicofo.visitors.enabled = true", "jicofo.visitors.enabled"),
])
def test_cli_refuses_with_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None,
        text: str, key: str) -> None:
    from jicofo.cli import main

    path = tmp_path / "jicofo.conf"
    path.write_text('jicofo.xmpp.client.domain = "auth.meet.jitsi"\n' + text + "\n")
    assert main(["--config", str(path), "--log-level", "ERROR"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0] and err[0].startswith("jicofo: configuration error")
