"""docker-jitsi-meet style jicofo.conf files with authentication (tests/data/docker-jicofo-*.conf)
load unchanged and the focus built from them enforces: a guest is refused a new room, a user of
the login domain is given a session. Their Jibri and Jigasi sections only warn (unbuilt.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

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
    assert warned == []  # its jibri and jigasi sections are built
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
        "sipGatewayEnabled": "true",  # the file configures a Jigasi brewery
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


async def test_focus_session_lifetime_with_a_mock_clock(mock_clock: Any) -> None:
    """The registry's decisions over a session's life, on trio's MockClock: the docker XMPP file
    (24 h lifetime, auto-login on)."""
    focus = build_app(load_config(DATA / "docker-jicofo-xmpp.conf", env={})).focus
    host = JID.parse("alice@meet.jitsi/web")
    guest = JID.parse("guest1@guest.meet.jitsi/web")
    answer = await focus.conference_request(ConferenceRequest(room=ROOM, machine_uid="m1"), host)
    later = ConferenceRequest(room="other@muc.meet.jitsi", machine_uid="m1",
                              session_id=answer.session_id)
    mock_clock.jump(23 * 3600)
    assert (await focus.conference_request(later, guest)).identity == "alice@meet.jitsi"
    # Used just now: another 24 h from here, then it is gone.
    mock_clock.jump(24 * 3600 + 1)
    with pytest.raises(ConferenceRequestError) as expired:
        await focus.conference_request(later, guest)
    assert expired.value.condition == "not-acceptable" and expired.value.session_invalid
