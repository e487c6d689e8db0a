"""Reading the configuration: reference.conf, the operator's file, overrides, then substitutions."""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import shlex
import threading
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pyparsing
from pyhocon import ConfigFactory, ConfigParser, ConfigTree
from pyhocon import config_parser as _pyhocon_parser
from pyhocon.config_tree import ConfigValues
from pyhocon.exceptions import ConfigException

from .build import build_config
from .model import ConfigError, JicofoConfig
from .unbuilt import check_unbuilt

CONFIG_FILE_VARIABLE = "JICOFO_CONFIG_FILE"
_JAVA_CONFIG_FILE_PROPERTY = "-Dconfig.file="


def load_config(
    path: Path | None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> JicofoConfig:
    """Read the whole configuration once.

    `path` is laid over the shipped reference.conf (None: defaults only), then `overrides` (dotted keys,
    e.g. from command-line flags). `${?NAME}` substitutions read `env` (default: the process
    environment). Raises ConfigError with one line naming the key.
    """
    tree = load_tree(path, overrides, env)
    # Keys for features not built: refused or warned about (unbuilt.py).
    check_unbuilt(tree, _resolved_reference())
    return build_config(tree)


def load_tree(
    path: Path | None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> ConfigTree:
    """The merged, resolved tree, before conversion. Only for `load_config` and tests."""
    merged = _reference_tree()
    if path is not None:
        merged = _merge(merged, _parse_file(path))
    if overrides:
        merged = _merge(merged, _overrides_tree(overrides))
    # Substitutions are resolved only now, so that ${jicofo.sctp.enabled} and the like see the
    # operator's values, as upstream's config library does.
    with _pyhocon_environment(os.environ if env is None else env):
        try:
            ConfigParser.resolve_substitutions(merged)
        except ConfigException as error:
            raise ConfigError(_first_line(str(error))) from None
    return merged


def config_path_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """Where the config file is when --config is not given: $JICOFO_CONFIG_FILE, else the
    `-Dconfig.file=` that a Debian install puts in $JAVA_SYS_PROPS (from /etc/jitsi/jicofo/config)."""
    env = os.environ if env is None else env
    if env.get(CONFIG_FILE_VARIABLE):
        return Path(env[CONFIG_FILE_VARIABLE])
    try:
        java_properties = shlex.split(env.get("JAVA_SYS_PROPS", ""))
    except ValueError:
        return None
    for word in java_properties:
        if word.startswith(_JAVA_CONFIG_FILE_PROPERTY) and len(word) > len(_JAVA_CONFIG_FILE_PROPERTY):
            return Path(word[len(_JAVA_CONFIG_FILE_PROPERTY) :])
    return None


def _reference_tree() -> ConfigTree:
    # Merging and resolving change the tree in place, so each load gets its own copy.
    return copy.deepcopy(_parsed_reference())


@functools.cache
def _resolved_reference() -> ConfigTree:
    """reference.conf alone, resolved (what unbuilt.py compares against); never modified."""
    return load_tree(None, env={})


@functools.cache
def _parsed_reference() -> ConfigTree:
    text = resources.files("jicofo").joinpath("reference.conf").read_text(encoding="utf-8")
    return _parse(text, "reference.conf")


def _parse_file(path: Path) -> ConfigTree:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "cannot be read"
        raise ConfigError(f"{path}: {reason}") from None
    return _parse(text, str(path), basedir=str(path.parent))


def _parse(text: str, source: str, basedir: str | None = None) -> ConfigTree:
    try:
        return ConfigFactory.parse_string(text, basedir=basedir, resolve=False)
    except pyparsing.ParseBaseException as error:
        # pyparsing's message quotes the text it stopped at, which may be a password: give the position only.
        where = f"line {error.lineno}, column {error.col}"
        raise ConfigError(f"{source}: HOCON syntax error at {where}") from None
    except ConfigException as error:
        raise ConfigError(f"{source}: {_first_line(str(error))}") from None


def _merge(base: ConfigTree, top: ConfigTree) -> ConfigTree:
    """`top` laid over `base`, keeping what an optional substitution falls back to.

    In `hostname = "xmpp.meet.jitsi"` then `hostname = ${?XMPP_SERVER}`, an unset variable must leave
    the file's own earlier value; pyhocon's merge instead points the fallback at `base`'s value (the
    default). Put the file's value back, and hang `base`'s value at the end of a chain of optional
    substitutions, where it belongs.
    """
    own_fallbacks = [
        (value, value.overridden_value) for value in _substitutions(top) if value.overridden_value is not None
    ]
    ConfigTree.merge_configs(base, top)
    for value, own_fallback in own_fallbacks:
        base_value = value.overridden_value
        value.overridden_value = own_fallback
        end = own_fallback
        while isinstance(end, ConfigValues):
            end.parent, end.key = value.parent, value.key  # resolution writes its result there
            if end.overridden_value is None:
                break
            end = end.overridden_value
        if isinstance(end, ConfigValues) and base_value is not own_fallback:
            end.overridden_value = base_value
    return base


def _substitutions(tree: ConfigTree) -> Iterator[ConfigValues]:
    for value in tree.values():
        if isinstance(value, ConfigTree):
            yield from _substitutions(value)
        elif isinstance(value, ConfigValues):
            yield value


def _overrides_tree(overrides: Mapping[str, Any]) -> ConfigTree:
    tree = ConfigTree(root=True)
    for key, value in overrides.items():
        tree.put(key, value)
    return tree


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "invalid configuration"


class _OsWithEnvironment:
    """Stands in for the `os` module inside pyhocon's parser, which reads `os.environ` directly."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


_pyhocon_environment_lock = threading.Lock()


@contextlib.contextmanager
def _pyhocon_environment(environ: Mapping[str, str]) -> Iterator[None]:
    with _pyhocon_environment_lock:
        original = _pyhocon_parser.os
        _pyhocon_parser.os = _OsWithEnvironment(environ)
        try:
            yield
        finally:
            _pyhocon_parser.os = original
