"""Deployment files: an upstream Debian-style jicofo.conf loads unchanged, and the example config,
the systemd unit and the Prosody settings in contrib/ agree with each other and with the program."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from jicofo.cli import build_parser, read_config
from jicofo.config.load import config_path_from_env, load_config
from jicofo.config.model import TopologyStrategyName

REPO = Path(__file__).resolve().parent.parent

# What the jicofo Debian package's postinst leaves in /etc/jitsi/jicofo/jicofo.conf for the host
# name meet.example.com (its shipped template, then `hocon -f ... set` for each value), with the
# block the jitsi-meet quick install appends for secure domain, commented out as it leaves it.
DEBIAN_CONF = """\
# Jicofo HOCON configuration. See reference.conf in /usr/share/jicofo/jicofo.jar for
#available options, syntax, and default values.
jicofo {
  xmpp: {
    client: {
      client-proxy: "focus.meet.example.com"
      xmpp-domain: "meet.example.com"
      domain: "auth.meet.example.com"
      username: "focus"
      password: "Fq4aV3RwM1aQ"
    }
    trusted-domains: [ "recorder.meet.example.com" ]
  }
  bridge: {
    brewery-jid: "JvbBrewery@internal.auth.meet.example.com"
  }
  #authentication: {
  #  enabled: true
  #  type: XMPP
  #  login-url: meet.example.com
  #}
}
"""

# /etc/jitsi/jicofo/config, the environment file the Debian init script and unit read.
DEBIAN_ENV_FILE = (
    'JICOFO_HOST=localhost\n'
    'JICOFO_MAX_MEMORY=3072m\n'
    'JAVA_SYS_PROPS="-Dconfig.file=/etc/jitsi/jicofo/jicofo.conf '
    '-Dnet.java.sip.communicator.SC_HOME_DIR_LOCATION=/etc/jitsi '
    '-Dnet.java.sip.communicator.SC_HOME_DIR_NAME=jicofo '
    '-Djava.util.logging.config.file=/etc/jitsi/jicofo/logging.properties"\n'
)


def test_debian_style_conf_loads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "jicofo.conf"
    path.write_text(DEBIAN_CONF)
    cfg = load_config(path, env={})
    client = cfg.xmpp.client
    assert (client.hostname, client.port, client.use_tls) == ("localhost", 5222, True)
    assert (client.domain, client.xmpp_domain, client.username, client.resource) == (
        "auth.meet.example.com", "meet.example.com", "focus", "focus")
    assert client.password == "Fq4aV3RwM1aQ" and not client.anonymous
    assert client.client_proxy == "focus.meet.example.com"
    assert client.conference_muc_jid == "conference.meet.example.com"
    assert cfg.xmpp.trusted_domains == ("recorder.meet.example.com",)
    assert cfg.bridge.brewery_jid == "JvbBrewery@internal.auth.meet.example.com"
    assert cfg.bridge.topology_strategy is TopologyStrategyName.SINGLE_MESH
    assert not cfg.authentication.enabled
    # Upstream's REST defaults: on, loopback, 8888, every route on; health checks off.
    rest = cfg.rest
    assert (rest.serving, rest.host, rest.port) == (True, "127.0.0.1", 8888)
    assert rest.prometheus_enabled and rest.conference_request_enabled and rest.debug_enabled
    assert rest.move_endpoints_enabled and rest.pin_enabled
    assert not cfg.health.enabled and cfg.health.room_name_prefix == "__jicofo-health-check"
    assert not cfg.xmpp.component.enabled


def test_debian_environment_file_names_the_config() -> None:
    env = {}
    for line in DEBIAN_ENV_FILE.splitlines():
        name, _, value = line.partition("=")
        env[name] = shlex.split(value)[0]
    assert config_path_from_env(env) == Path("/etc/jitsi/jicofo/jicofo.conf")


def test_example_conf_for_a_single_server_install() -> None:
    cfg = load_config(REPO / "conf" / "jicofo.conf", env={})
    assert cfg.xmpp.component.enabled
    assert cfg.xmpp.component.jid == "focus.meet.example.com"
    assert cfg.health.enabled
    assert cfg.rest.host == "127.0.0.1" and cfg.rest.serving
    # The secrets may come from the environment instead of the file.
    args = build_parser().parse_args(["--config", str(REPO / "conf" / "jicofo.conf")])
    cfg = read_config(args, {"JICOFO_AUTH_PASSWORD": "from-env", "JICOFO_SECRET": "component-env"})
    assert cfg.xmpp.client.password == "from-env"
    assert cfg.xmpp.component.secret == "component-env"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(REPO / "contrib" / "jicofo.service")
    return parser


def test_systemd_unit() -> None:
    unit = _unit()
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/bin/jicofo")
    args = build_parser().parse_args(argv[1:])  # only flags the program knows
    assert args.config == Path("/etc/jitsi/jicofo/jicofo.conf")
    assert service["KillSignal"] == "SIGTERM"
    assert "-HUP" in service["ExecReload"]
    # Room for the ordered stop (leave rooms, expire endpoints), which is bounded by the reply timeout.
    assert int(service["TimeoutStopSec"]) >= 20
    assert service["RestartPreventExitStatus"] == "2"  # configuration errors exit 2
    assert "prosody.service" in unit["Unit"]["After"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def _prosody_cfg() -> str:
    return (REPO / "contrib" / "prosody" / "jicofo.cfg.lua").read_text()


def test_prosody_settings_match_the_example_conf() -> None:
    lua = _prosody_cfg()
    cfg = load_config(REPO / "conf" / "jicofo.conf", env={})
    client = cfg.xmpp.client
    focus = f"{client.username}@{client.domain}"
    brewery_host = cfg.bridge.brewery_jid.split("@", 1)[1]  # type: ignore[union-attr]

    def block(header: str) -> str:
        start = lua.index(header)
        following = re.search(r"^(VirtualHost|Component) ", lua[start + len(header):], re.M)
        return lua[start:start + len(header) + (following.start() if following else len(lua))]

    assert f'VirtualHost "{client.domain}"' in lua
    conference = block(f'Component "{client.conference_muc_jid}" "muc"')
    assert focus in conference and "muc_room_default_public_jids = true" in conference
    assert "restrict_room_creation = true" in conference
    brewery = block(f'Component "{brewery_host}" "muc"')
    assert focus in brewery
    component = block(f'Component "{cfg.xmpp.component.jid}"\n')
    assert f'component_secret = "{cfg.xmpp.component.secret}"' in component
    assert f"component_ports = {{ {cfg.xmpp.component.port} }}" in lua


def test_prosody_settings_are_valid_lua() -> None:
    luac = shutil.which("luac5.4") or shutil.which("luac")
    if luac is None:
        pytest.skip("no luac (comes with Prosody's Lua) to check the syntax")
    # Prosody's config syntax is Lua with `VirtualHost "x"` / `Component "x" "y"` calls.
    done = subprocess.run([luac, "-p", "-"], input=_prosody_cfg().encode(), capture_output=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr.decode()
