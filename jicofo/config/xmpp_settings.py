"""From connection config to the XMPP layer's settings objects."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from jicofo.xmpp.settings import ClientSettings, ComponentSettings, Timeouts, TlsMode
from jicofo.xmpp.stream import ParserLimits
from jicofo.xmpp.transport import TlsSettings

from .model import ComponentConfig, ConfigError, StanzaLimitsConfig, XmppConnectionConfig


def parser_limits(cfg: StanzaLimitsConfig | None) -> ParserLimits:
    if cfg is None:
        return ParserLimits()
    return ParserLimits(max_stanza_bytes=cfg.max_size, max_depth=cfg.max_depth,
                        max_attributes=cfg.max_attributes, max_elements=cfg.max_elements,
                        max_tag_bytes=cfg.max_tag_size)


def to_client_settings(cfg: XmppConnectionConfig, ca_file: Path | None = None,
                       limits: StanzaLimitsConfig | None = None) -> ClientSettings:
    """use-tls=true requires STARTTLS; false is plain TCP, where SASL PLAIN is then allowed (upstream
    logs in the same way; the file says it is for loopback only). No password: SASL ANONYMOUS."""
    if cfg.domain is None:
        raise ConfigError(f"jicofo.xmpp.{cfg.name}.domain: required but not set")
    settings = ClientSettings(
        domain=cfg.domain,
        username=None if cfg.anonymous else cfg.username,
        password=cfg.password,
        resource=cfg.resource,
        host=cfg.hostname,
        port=cfg.port,
        tls=TlsMode.STARTTLS if cfg.use_tls else TlsMode.DISABLED,
        tls_settings=TlsSettings(verify=not cfg.disable_certificate_verification, ca_file=ca_file),
        allow_plain_without_tls=not cfg.use_tls,
        websocket_url=cfg.websocket_url,
        timeouts=replace(Timeouts(), request=cfg.reply_timeout),
        limits=parser_limits(limits),
    )
    if limits is not None:
        settings = replace(settings, max_outgoing_stanza_bytes=limits.client_max_outgoing_size)
    return settings


def to_component_settings(cfg: ComponentConfig, reply_timeout: float = 15.0,
                          limits: StanzaLimitsConfig | None = None) -> ComponentSettings:
    if not cfg.domain:
        raise ConfigError("jicofo.xmpp.component.domain: required but not set")
    if not cfg.secret:
        raise ConfigError("jicofo.xmpp.component.secret: required but not set")
    return ComponentSettings(
        domain=cfg.jid,
        secret=cfg.secret,
        host=cfg.hostname,
        port=cfg.port,
        timeouts=replace(Timeouts(), request=reply_timeout),
        limits=parser_limits(limits),
        **({} if limits is None else {"max_outgoing_stanza_bytes": limits.component_max_outgoing_size}),
    )
