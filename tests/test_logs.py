"""Logging: context tags, the JSON format, redaction of secrets in the packet log, reopening files."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
from pathlib import Path

import pytest
import trio

from jicofo.logs import (
    configure_logging,
    current_context,
    log_context,
    log_packet,
    redact,
    reopen_log_files,
    reopen_on_sighup,
)

pytestmark = pytest.mark.usefixtures("restore_logging")


def test_text_lines_carry_the_context_as_upstream_tags() -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", stream=out)
    log = logging.getLogger("jicofo.test")
    log.info("no context")
    with log_context(room="r@conference.example.com", meeting_id="m-1"):
        with log_context(endpoint="ab12cd34"):
            log.info("member joined")
        log.info("room only")
    log.debug("not shown at INFO")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("INFO jicofo.test: no context")
    assert lines[1].endswith(
        "jicofo.test: [room=r@conference.example.com meeting_id=m-1 participant=ab12cd34] member joined"
    )
    assert lines[2].endswith("[room=r@conference.example.com meeting_id=m-1] room only")
    assert current_context() == {}


def test_json_lines_for_log_shippers() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "json", stream=out)
    log = logging.getLogger("jicofo.conference")
    with log_context(room="r@c.example.com", meeting_id=None, endpoint="e1", bridge="jvb1"):
        log.debug("offer sent to %s", "e1")
        try:
            raise RuntimeError("boom \"quoted\"\nsecond line")
        except RuntimeError:
            log.exception("failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "DEBUG" and first["logger"] == "jicofo.conference"
    assert first["message"] == "offer sent to e1"
    assert (first["room"], first["participant"], first["bridge"]) == ("r@c.example.com", "e1", "jvb1")
    assert "meeting_id" not in first
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert second["level"] == "ERROR" and "RuntimeError: boom" in second["exception"]


def test_context_follows_into_tasks_started_inside_the_block() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    log = logging.getLogger("jicofo.test")

    async def child(name: str) -> None:
        await trio.lowlevel.checkpoint()
        with log_context(endpoint=name):
            log.info("child")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            with log_context(room="a@c"):
                nursery.start_soon(child, "x")
            with log_context(room="b@c"):
                nursery.start_soon(child, "y")

    trio.run(main)
    entries = sorted((e["room"], e["participant"]) for e in map(json.loads, out.getvalue().splitlines()))
    assert entries == [("a@c", "x"), ("b@c", "y")]


def test_bad_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError):
        configure_logging("CHATTY")
    with pytest.raises(ValueError):
        configure_logging("INFO", "xml")  # type: ignore[arg-type]


SASL_AUTH = ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
             "AGZvY3VzAHMzY3JldA==</auth>")


@pytest.mark.parametrize(
    ("xml", "secret", "kept"),
    [
        (SASL_AUTH, "AGZvY3VzAHMzY3JldA==", "mechanism='PLAIN'"),
        ("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdzLHI9</response>", "Yz1iaXdzLHI9",
         "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"),
        ("<challenge xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">cj1meWtvK2Q=</challenge>", "cj1meWtvK2Q=",
         "</challenge>"),
        ("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1ybUY5cHFWOFM=</success>",
         "dj1ybUY5cHFWOFM=", "<success"),
        ("<handshake>aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d</handshake>",
         "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", "<handshake>"),
        ("<iq type='set'><query xmlns='jabber:iq:register'><username>focus</username>"
         "<password>hunter2</password></query></iq>", "hunter2", "<username>focus</username>"),
        ("<presence><x xmlns='http://jabber.org/protocol/muc'><password>roompw</password></x></presence>",
         "roompw", "<x xmlns='http://jabber.org/protocol/muc'>"),
        ("<conference xmlns='http://jitsi.org/protocol/focus' room='r@c' token=\"eyJhbGciOi.x.y\"/>",
         "eyJhbGciOi", "room='r@c'"),
        ("<property name='password' value='s3cret'/>", "s3cret", "name='password'"),
        ("<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u1' pwd='icepw123'/>",
         "icepw123", "ufrag='u1'"),
        ("<web-socket xmlns='http://jitsi.org/protocol/colibri' "
         "url='wss://b.example/colibri-ws/j1/c1/e1?pwd=wspw456'/>", "wspw456", "/colibri-ws/j1/c1/e1?pwd="),
    ],
)
def test_redaction_takes_secrets_out_and_keeps_the_rest(xml: str, secret: str, kept: str) -> None:
    redacted = redact(xml)
    assert secret not in redacted
    assert "[redacted]" in redacted
    assert kept in redacted


def test_redaction_leaves_ordinary_stanzas_and_empty_elements_alone() -> None:
    for xml in (
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>",
        "<message to='a@b'><body>my password is not a tag</body></message>",
        "<iq type='result' id='1'/>",
    ):
        assert redact(xml) == xml


def test_packet_log_is_off_by_default_and_redacted_when_on(tmp_path: Path) -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "text", stream=out)
    log_packet("xmpp client", "out", SASL_AUTH.encode())
    assert out.getvalue() == ""  # DEBUG alone does not dump stanzas

    packets = tmp_path / "jicofo-xmpp.log"
    configure_logging("INFO", "text", packet_log=True, packet_log_file=packets, stream=out)
    log_packet("xmpp client", "out", SASL_AUTH.encode())
    log_packet("xmpp client", "in", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
    text = packets.read_text()
    assert "xmpp client SENT PKT: <auth" in text and "[redacted]" in text
    assert "AGZvY3VzAHMzY3JldA==" not in text
    assert "xmpp client RCV PKT: <success" in text
    assert out.getvalue() == ""  # into its own file only


def test_reopen_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "jicofo.log"
    configure_logging("INFO", "text", log_file=path)
    log = logging.getLogger("jicofo.test")
    log.info("before rotation")
    path.rename(tmp_path / "jicofo.log.1")
    log.info("still into the moved file")
    assert reopen_log_files() == 1
    log.info("after reopening")
    assert "before rotation" in (tmp_path / "jicofo.log.1").read_text()
    assert "still into the moved file" in (tmp_path / "jicofo.log.1").read_text()
    assert "after reopening" in path.read_text()
    assert "before rotation" not in path.read_text()


def test_sighup_reopens(tmp_path: Path) -> None:
    path = tmp_path / "jicofo.log"
    configure_logging("INFO", "text", log_file=path)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(reopen_on_sighup)
            path.rename(tmp_path / "old.log")
            os.kill(os.getpid(), signal.SIGHUP)
            with trio.fail_after(5):
                while not path.exists():
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    trio.run(main)
    logging.getLogger("jicofo.test").info("into the new file")
    assert "into the new file" in path.read_text()
