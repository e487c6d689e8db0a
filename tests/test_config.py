"""Configuration: defaults, upstream files, errors, flags, environment, durations, XMPP settings."""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import pytest
from pyhocon import ConfigFactory

from jicofo.config import (
    AuthenticationType,
    BridgeSelectionStrategyName,
    ConfigError,
    JicofoConfig,
    ReinviteMethod,
    XmppConnectionName,
    config_path_from_env,
    load_config,
    overrides_from_flags,
    to_client_settings,
    to_component_settings,
)
from jicofo.xmpp.settings import TlsMode

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent
LOGIN_DOMAIN = {"jicofo.xmpp.client.domain": "auth.example.com"}
SECRET = "s3cr3t-Value-xyz"


def load_text(
    tmp_path: Path, text: str, env: dict[str, str] | None = None, **overrides: object
) -> JicofoConfig:
    path = tmp_path / "jicofo.conf"
    path.write_text(text)
    return load_config(path, dict(overrides) or None, env=env or {})


def config_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text, env)
    return str(caught.value)


# --- reference.conf ---------------------------------------------------------------------------------


def test_reference_conf_ships_in_the_package() -> None:
    text = resources.files("jicofo").joinpath("reference.conf").read_text(encoding="utf-8")
    tree = ConfigFactory.parse_string(text)
    assert tree.get("jicofo.xmpp.client.port") == 5222
    assert tree.get("jicofo.xmpp.component.port") == 5347


def test_reference_alone_needs_only_the_login_domain() -> None:
    with pytest.raises(ConfigError, match=r"^jicofo\.xmpp\.client\.domain: required"):
        load_config(None, env={})
    load_config(None, LOGIN_DOMAIN, env={})


def test_xmpp_defaults() -> None:
    xmpp = load_config(None, LOGIN_DOMAIN, env={}).xmpp
    client = xmpp.client
    assert (client.enabled, client.hostname, client.port) == (True, "localhost", 5222)
    assert (client.username, client.resource, client.password) == ("focus", "focus", None)
    assert client.anonymous
    assert client.reply_timeout == 15.0
    assert client.use_tls and not client.disable_certificate_verification
    assert client.xmpp_domain is None and client.conference_muc_jid is None and client.client_proxy is None
    assert client.websocket_url is None
    service = xmpp.service
    assert (service.enabled, service.hostname, service.port, service.reply_timeout) == (
        False,
        "localhost",
        6222,
        15.0,
    )
    component = xmpp.component
    assert (component.enabled, component.hostname, component.port) == (False, "localhost", 5347)
    assert (component.domain, component.subdomain, component.secret) == ("", "focus", "")
    assert xmpp.trusted_domains == () and xmpp.visitors == ()
    assert xmpp.use_jitsi_jid_validation


def test_bridge_defaults() -> None:
    bridge = load_config(None, LOGIN_DOMAIN, env={}).bridge
    assert bridge.brewery_jid is None
    assert bridge.max_bridge_participants == 80
    assert bridge.max_bridge_participants_per_interval == -1
    assert bridge.max_bridge_participants_interval == 60.0
    assert bridge.average_participant_stress == 0.01
    assert bridge.participant_rampup_interval == 20.0
    assert bridge.stress_threshold == 0.8
    assert bridge.failure_reset_threshold == 60.0
    assert bridge.selection_strategy is BridgeSelectionStrategyName.SINGLE
    assert bridge.topology_strategy == "SingleMeshTopologyStrategy"
    assert bridge.xmpp_connection_name is XmppConnectionName.SERVICE
    checks = bridge.health_checks
    assert (checks.enabled, checks.interval, checks.retry_delay) == (True, 10.0, 5.0)
    assert (checks.use_presence, checks.presence_timeout) == (False, 45.0)
    assert checks.silence_timeout == 45.0
    ice = bridge.ice_failure_detection
    assert (ice.enabled, ice.interval, ice.min_endpoints, ice.threshold, ice.timeout) == (
        False,
        120.0,
        30,
        0.1,
        600.0,
    )
    moves = bridge.load_redistribution
    assert (moves.enabled, moves.interval, moves.stress_threshold, moves.timeout, moves.endpoints) == (
        False,
        60.0,
        0.9,
        180.0,
        10,
    )


def test_conference_defaults() -> None:
    conference = load_config(None, LOGIN_DOMAIN, env={}).conference
    assert conference.enable_auto_owner and conference.enable_moderator_checks
    assert conference.initial_timeout == 15.0
    assert conference.max_ssrcs_per_user == 20 and conference.max_ssrc_groups_per_user == 20
    assert conference.single_participant_timeout == 20.0
    assert conference.min_participants == 2
    assert conference.max_audio_senders == conference.max_video_senders == 999999
    assert conference.strip_simulcast and conference.use_ssrc_rewriting
    assert conference.use_rtp_mid_demux and conference.use_json_encoded_sources
    assert not conference.shared_document_use_random_name
    assert conference.source_signaling_delays == ()
    assert conference.source_signaling_delay(500) == 0.0
    assert conference.reinvite_method is ReinviteMethod.RESTART_JINGLE
    assert conference.enable_ice_restart
    limits = conference.restart_request_rate_limits
    assert (limits.min_interval, limits.max_requests, limits.interval) == (5.0, 5, 60.0)


def test_codec_defaults() -> None:
    codec = load_config(None, LOGIN_DOMAIN, env={}).codec
    assert [(c.encoding, c.pt, c.rtx_pt, c.enabled, c.enable_remb) for c in codec.video] == [
        ("AV1", 41, 42, True, True),
        ("VP8", 100, 96, True, True),
        ("H264", 107, 99, True, True),
        ("VP9", 101, 97, True, True),
    ]
    opus = codec.opus
    assert (opus.enabled, opus.pt, opus.minptime, opus.use_inband_fec) == (True, 111, 10, True)
    assert (opus.red_enabled, opus.red_pt) == (False, 112)
    assert (codec.telephone_event.enabled, codec.telephone_event.pt) == (True, 126)
    assert {(e.key, e.id, e.enabled) for e in codec.rtp_extensions} == {
        ("audio-level", 1, True),
        ("av1-dependency-descriptor", 11, True),
        ("video-layers-allocation", 12, False),
        ("tof", 2, False),
        ("abs-send-time", 3, True),
        ("rid", 4, False),
        ("tcc", 5, True),
        ("video-content-type", 7, False),
        ("framemarking", 9, False),
        ("mid", 10, True),
    }
    assert codec.extmap_allow_mixed
    assert [e.uri for e in codec.enabled_extensions("audio")] == [
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "urn:ietf:params:rtp-hdrext:sdes:mid",
    ]
    assert {e.key for e in codec.enabled_extensions("video")} == {
        "av1-dependency-descriptor",
        "abs-send-time",
        "tcc",
        "mid",
    }
    assert codec.extension("tcc").id == 5


def test_other_defaults() -> None:
    cfg = load_config(None, LOGIN_DOMAIN, env={})
    assert (cfg.octo.enabled, cfg.octo.allow_mixed_versions, cfg.octo.sctp_datachannels) == (
        False,
        False,
        True,
    )
    assert cfg.sctp_enabled
    assert cfg.local_region is None
    assert cfg.metrics_update_interval == 30.0
    rest = cfg.rest
    assert (rest.enabled, rest.host, rest.port, rest.serving) == (True, "127.0.0.1", 8888, True)
    assert rest.prometheus_enabled and rest.conference_request_enabled and rest.move_endpoints_enabled
    assert rest.debug_enabled and rest.pin_enabled
    health = cfg.health
    assert (health.enabled, health.interval, health.timeout, health.max_check_duration) == (
        False,
        10.0,
        30.0,
        20.0,
    )
    assert health.room_name_prefix == "__jicofo-health-check"
    auth = cfg.authentication
    assert (auth.enabled, auth.type, auth.authentication_lifetime, auth.enable_auto_login) == (
        False,
        AuthenticationType.NONE,
        86400.0,
        True,
    )
    assert (cfg.jibri.num_retries, cfg.jibri.pending_timeout) == (5, 90.0)
    assert cfg.jibri.xmpp_connection_name is XmppConnectionName.CLIENT
    assert cfg.visitors.max_participants == 50 and cfg.visitors.vnode_join_latency_interval == 60.0


# --- upstream-style files ---------------------------------------------------------------------------


def test_upstream_docker_style_file_loads_unchanged() -> None:
    env = {"XMPP_SERVER": "prosody.internal", "JICOFO_AUTH_PASSWORD": SECRET, "JICOFO_OCTO_REGION": "eu-1"}
    cfg = load_config(DATA / "upstream-jicofo.conf", env=env)
    client = cfg.xmpp.client
    assert (client.hostname, client.port, client.domain, client.xmpp_domain) == (
        "prosody.internal",
        5222,
        "auth.meet.jitsi",
        "meet.jitsi",
    )
    assert client.password == SECRET and not client.anonymous
    assert client.conference_muc_jid == "muc.meet.jitsi"
    assert client.client_proxy == "focus.meet.jitsi"
    assert client.disable_certificate_verification
    assert cfg.xmpp.trusted_domains == ("recorder.meet.jitsi",)
    assert cfg.bridge.brewery_jid == "jvbbrewery@internal-muc.meet.jitsi"
    assert cfg.bridge.max_bridge_participants == 40
    assert cfg.bridge.stress_threshold == 0.7
    assert cfg.bridge.selection_strategy is BridgeSelectionStrategyName.REGION_BASED
    assert cfg.bridge.region_groups == (frozenset({"us-east", "us-west"}), frozenset({"eu-central"}))
    assert [c.encoding for c in cfg.codec.enabled_video_codecs()] == ["AV1", "VP8", "H264"]
    assert cfg.codec.opus.red_enabled
    assert cfg.conference.initial_timeout == 20.0
    assert cfg.conference.single_participant_timeout == 20.0  # the variable is unset: default kept
    assert cfg.conference.source_signaling_delays == ((50, 0.5), (100, 1.0))
    assert [cfg.conference.source_signaling_delay(n) for n in (2, 50, 99, 100, 400)] == [0, 0.5, 0.5, 1, 1]
    assert cfg.health.enabled
    assert cfg.authentication.type is AuthenticationType.XMPP and cfg.authentication.login_url == "meet.jitsi"
    assert cfg.jibri.brewery_jid == "jibribrewery@internal-muc.meet.jitsi"
    assert cfg.local_region == "eu-1"
    assert cfg.rest.host == "0.0.0.0"
    # octo.sctp-datachannels refers to jicofo.sctp.enabled, which the file switches off
    assert not cfg.sctp_enabled and not cfg.octo.sctp_datachannels

    settings = to_client_settings(client)
    assert (settings.domain, settings.host, settings.port) == ("auth.meet.jitsi", "prosody.internal", 5222)
    assert (settings.username, settings.password, settings.resource) == ("focus", SECRET, "focus")
    assert settings.tls is TlsMode.STARTTLS and not settings.tls_settings.verify
    assert settings.timeouts.request == 15.0 and settings.websocket_url is None


def test_upstream_file_without_environment_keeps_file_values() -> None:
    cfg = load_config(DATA / "upstream-jicofo.conf", env={})
    assert cfg.xmpp.client.hostname == "xmpp.meet.jitsi"
    assert cfg.xmpp.client.anonymous
    assert cfg.local_region is None


def test_example_config(tmp_path: Path) -> None:
    cfg = load_config(REPO / "conf" / "jicofo.conf", env={})
    client = cfg.xmpp.client
    assert (client.domain, client.xmpp_domain, client.client_proxy) == (
        "auth.meet.example.com",
        "meet.example.com",
        "focus.meet.example.com",
    )
    assert client.username == "focus" and client.password
    assert client.conference_muc_jid == "conference.meet.example.com"
    assert cfg.xmpp.trusted_domains == ("recorder.meet.example.com",)
    assert cfg.bridge.brewery_jid == "JvbBrewery@internal.auth.meet.example.com"


def test_settings_for_plain_tcp_websocket_and_anonymous(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        """jicofo.xmpp.client {
            domain = meet.example.com
            use-tls = false
            websocket-url = "wss://meet.example.com/xmpp-websocket"
        }""",
    )
    settings = to_client_settings(cfg.xmpp.client, ca_file=Path("/etc/ca.pem"))
    assert settings.tls is TlsMode.DISABLED and settings.allow_plain_without_tls
    assert settings.websocket_url == "wss://meet.example.com/xmpp-websocket"
    assert settings.username is None and settings.password is None  # SASL ANONYMOUS
    assert settings.tls_settings.verify and settings.tls_settings.ca_file == Path("/etc/ca.pem")


def test_component_and_its_settings(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        f"""jicofo.xmpp.client.domain = auth.example.com
        jicofo.xmpp.component {{ enabled = true, domain = example.com
                                 secret = "{SECRET}", port = "5348" }}""",
    )
    component = cfg.xmpp.component
    assert component.jid == "focus.example.com"
    assert SECRET not in repr(component)
    settings = to_component_settings(component)
    assert (settings.domain, settings.secret, settings.host, settings.port) == (
        "focus.example.com",
        SECRET,
        "localhost",
        5348,
    )
    assert SECRET not in repr(settings)


def test_visitor_nodes(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        """jicofo.xmpp.client.domain = auth.example.com
        jicofo.xmpp.visitors.v1 { conference-service = conference.v1.example.com, hostname = 127.0.0.1,
                                  port = 7222, password = pw }""",
    )
    (node,) = cfg.xmpp.visitors
    assert (node.name, node.hostname, node.domain, node.port) == (
        "visitors.v1",
        "127.0.0.1",
        "127.0.0.1",
        7222,
    )
    assert (node.username, node.conference_service, node.reply_timeout) == (
        "focus",
        "conference.v1.example.com",
        15.0,
    )


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jicofo.xmpp.client.port = abc", 'jicofo.xmpp.client.port: expected an integer, got "abc"'),
        ("jicofo.xmpp.client.port = 70000", "jicofo.xmpp.client.port: expected at most 65535, got 70000"),
        (
            "jicofo.xmpp.client.use-tls = maybe",
            'jicofo.xmpp.client.use-tls: expected true or false, got "maybe"',
        ),
        (
            "jicofo.conference.initial-timeout = soon",
            'jicofo.conference.initial-timeout: expected a duration such as "15 seconds", got "soon"',
        ),
        (
            "jicofo.bridge.selection-strategy = Fastest",
            "jicofo.bridge.selection-strategy: expected one of SingleBridgeSelectionStrategy, "
            "SplitBridgeSelectionStrategy, RegionBasedBridgeSelectionStrategy, "
            'IntraRegionBridgeSelectionStrategy, VisitorSelectionStrategy, got "Fastest"',
        ),
        ("jicofo.bridge.health-checks = 5", "jicofo.bridge.health-checks: expected an object, got 5"),
        (
            "jicofo.xmpp.trusted-domains = x.com",
            'jicofo.xmpp.trusted-domains: expected a list of strings, got "x.com"',
        ),
        (
            "jicofo.codec.video.vp9.pt = 100",
            "jicofo.codec.video.vp9.pt: payload type 100 is already used by jicofo.codec.video.vp8.pt",
        ),
        ("jicofo.codec.video.vp8.pt = 200", "jicofo.codec.video.vp8.pt: expected at most 127, got 200"),
        (
            'jicofo.xmpp.client.websocket-url = "https://x"',
            'jicofo.xmpp.client.websocket-url: expected a ws:// or wss:// URL, got "https://x"',
        ),
        (
            "jicofo.conference.source-signaling-delays { big = 10 }",
            "jicofo.conference.source-signaling-delays.big: "
            "expected a conference size (a whole number) as the key",
        ),
    ],
)
def test_bad_value_gives_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    message = config_error(tmp_path, "jicofo.xmpp.client.domain = auth.example.com\n" + text)
    assert message == expected
    assert "\n" not in message


def test_missing_required_values(tmp_path: Path) -> None:
    assert config_error(tmp_path, "jicofo.xmpp.client.hostname = null").startswith(
        "jicofo.xmpp.client.hostname: required"
    )
    assert (
        config_error(
            tmp_path,
            "jicofo.xmpp.client.domain = a.com\njicofo.xmpp.component { enabled = true, domain = a.com }",
        )
        == "jicofo.xmpp.component.secret: required when the component is enabled"
    )
    assert config_error(
        tmp_path, "jicofo.xmpp.client.domain = a.com\njicofo.xmpp.service.enabled = true"
    ).startswith("jicofo.xmpp.service.domain: required")
    # A disabled client connection needs no login domain.
    load_text(tmp_path, "jicofo.xmpp.client.enabled = false")


def test_missing_file_and_syntax_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.conf", env={})
    message = config_error(tmp_path, f'jicofo.xmpp.client {{ password = "{SECRET}"\n  port = [ ')
    assert message.startswith(f"{tmp_path / 'jicofo.conf'}: HOCON syntax error at line ")
    assert SECRET not in message
    assert config_error(tmp_path, "a = ${NOT_SET_ANYWHERE}").startswith(
        "Cannot resolve variable ${NOT_SET_ANYWHERE}"
    )


def test_secrets_never_appear_in_errors_or_reprs(tmp_path: Path) -> None:
    bad_password = config_error(tmp_path, f'jicofo.xmpp.client {{ domain = a.com, password = ["{SECRET}"] }}')
    assert bad_password == "jicofo.xmpp.client.password: expected a string, got a list"
    bad_secret = config_error(
        tmp_path,
        f'jicofo.xmpp.client.domain = a.com\njicofo.xmpp.component.secret = {{ value = "{SECRET}" }}',
    )
    assert bad_secret == "jicofo.xmpp.component.secret: expected a string, got an object"

    cfg = load_text(
        tmp_path,
        f"""jicofo.xmpp.client {{ domain = a.com, password = "{SECRET}" }}
        jicofo.xmpp.component {{ enabled = true, domain = a.com, secret = "{SECRET}" }}""",
    )
    assert cfg.xmpp.client.password == SECRET and cfg.xmpp.component.secret == SECRET
    assert SECRET not in repr(cfg) and SECRET not in str(cfg)
    assert SECRET not in repr(to_client_settings(cfg.xmpp.client))
    assert SECRET not in to_client_settings(cfg.xmpp.client).describe()


def test_config_objects_are_frozen() -> None:
    cfg = load_config(None, LOGIN_DOMAIN, env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.bridge.stress_threshold = 0.5  # type: ignore[misc]


# --- flags, overrides, environment ------------------------------------------------------------------


def test_old_flags_map_onto_client_and_component() -> None:
    overrides = overrides_from_flags(
        domain="meet.example.com",
        host="xmpp.internal",
        port=5347,
        subdomain="focus",
        secret=SECRET,
        user_domain="auth.meet.example.com",
        user_name="focus",
        user_password="pw",
        env={},
    )
    cfg = load_config(None, overrides, env={})
    client, component = cfg.xmpp.client, cfg.xmpp.component
    assert (client.hostname, client.domain, client.xmpp_domain) == (
        "xmpp.internal",
        "auth.meet.example.com",
        "meet.example.com",
    )
    assert (client.username, client.password) == ("focus", "pw")
    assert client.conference_muc_jid == "conference.meet.example.com"
    assert component.enabled and component.jid == "focus.meet.example.com"
    assert (component.hostname, component.port, component.secret) == ("xmpp.internal", 5347, SECRET)


def test_secrets_from_the_environment_and_flag_precedence() -> None:
    env = {"JICOFO_SECRET": "from-env", "JICOFO_AUTH_PASSWORD": "pw-from-env"}
    overrides = overrides_from_flags(
        domain=None, host=None, port=None, subdomain=None, secret=None,
        user_domain="auth.x", user_name=None, user_password=None, env=env,
    )  # fmt: skip
    assert overrides == {
        "jicofo.xmpp.component.secret": "from-env",
        "jicofo.xmpp.client.domain": "auth.x",
        "jicofo.xmpp.client.password": "pw-from-env",
    }
    cfg = load_config(None, overrides, env={})
    assert not cfg.xmpp.component.enabled  # a secret alone switches nothing on
    flagged = overrides_from_flags(secret="flag", user_password="flag-pw", env=env)
    assert flagged["jicofo.xmpp.component.secret"] == "flag"
    assert flagged["jicofo.xmpp.client.password"] == "flag-pw"
    assert overrides_from_flags(env={}) == {}


def test_overrides_win_over_the_file_and_feed_substitutions(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        "jicofo.xmpp.client { domain = a.com, username = fromfile }",
        **{"jicofo.xmpp.client.username": "override", "jicofo.sctp.enabled": False},
    )
    assert cfg.xmpp.client.username == "override"
    assert cfg.xmpp.client.resource == "override"  # resource = ${jicofo.xmpp.client.username}
    assert not cfg.octo.sctp_datachannels


def test_optional_environment_substitution(tmp_path: Path) -> None:
    text = """jicofo.xmpp.client.domain = a.com
    jicofo.xmpp.client.port = ${?XMPP_PORT}
    jicofo.bridge.brewery-jid = "jvb@"${?BREWERY_DOMAIN}
    jicofo.conference.max-ssrcs-per-user = ${?MAX_SSRCS}"""
    unset = load_text(tmp_path, text, env={"BREWERY_DOMAIN": "internal.a.com"})
    assert unset.xmpp.client.port == 5222
    assert unset.bridge.brewery_jid == "jvb@internal.a.com"
    assert unset.conference.max_ssrcs_per_user == 20
    set_ = load_text(tmp_path, text, env={"XMPP_PORT": "6000", "MAX_SSRCS": "50", "BREWERY_DOMAIN": "b"})
    assert set_.xmpp.client.port == 6000
    # max-ssrc-groups-per-user follows max-ssrcs-per-user unless set itself
    assert (set_.conference.max_ssrcs_per_user, set_.conference.max_ssrc_groups_per_user) == (50, 50)
    message = config_error(tmp_path, text, env={"XMPP_PORT": "x"})
    assert message == 'jicofo.xmpp.client.port: expected an integer, got "x"'


def test_config_file_from_the_environment() -> None:
    assert config_path_from_env({"JICOFO_CONFIG_FILE": "/etc/j.conf"}) == Path("/etc/j.conf")
    debian = {"JAVA_SYS_PROPS": "-Dnet.java.sip.communicator.SC_HOME_DIR_LOCATION=/etc/jitsi "
              "-Dconfig.file=/etc/jitsi/jicofo/jicofo.conf -Djava.util.logging.config.file=x"}  # fmt: skip
    assert config_path_from_env(debian) == Path("/etc/jitsi/jicofo/jicofo.conf")
    assert config_path_from_env({}) is None


# --- durations and loose values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("15 seconds", 15.0),
        ('"15 seconds"', 15.0),
        ("500ms", 0.5),
        ('"500 ms"', 0.5),
        ("2 minutes", 120.0),
        ("1 minute", 60.0),
        ("24 hours", 86400.0),
        ("1 day", 86400.0),
        ("10 s", 10.0),
        ("1500", 1.5),  # a bare number is milliseconds, as upstream
        ('"1500"', 1.5),
        ("2.5 seconds", 2.5),
        ("0", 0.0),
    ],
)
def test_durations(tmp_path: Path, written: str, seconds: float) -> None:
    cfg = load_text(
        tmp_path, f"jicofo.xmpp.client.domain = a.com\njicofo.conference.initial-timeout = {written}"
    )
    assert cfg.conference.initial_timeout == pytest.approx(seconds)


def test_negative_duration_is_refused(tmp_path: Path) -> None:
    message = config_error(tmp_path, "jicofo.xmpp.client.domain = a.com\njicofo.health.interval = -5")
    assert message == "jicofo.health.interval: expected a duration of zero or more, got -5"


def test_quoted_numbers_and_booleans(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        """jicofo.xmpp.client { domain = a.com, port = "5223", use-tls = "false", password = 12345 }
        jicofo.octo.enabled = yes
        jicofo.bridge.selection-strategy = org.jitsi.jicofo.bridge.SplitBridgeSelectionStrategy
        jicofo.codec.video.h264.rtx-pt = -1""",
    )
    assert (cfg.xmpp.client.port, cfg.xmpp.client.use_tls, cfg.xmpp.client.password) == (5223, False, "12345")
    assert cfg.octo.enabled
    assert cfg.bridge.selection_strategy is BridgeSelectionStrategyName.SPLIT
    assert cfg.codec.video[2].encoding == "H264" and cfg.codec.video[2].rtx_pt is None
