"""From the resolved HOCON tree to `JicofoConfig`: one small function per area."""

from __future__ import annotations

from pyhocon import ConfigTree

from jicofo.restart.config import read_restart

from .codecs import read_codecs
from .model import (
    AuthenticationConfig,
    AuthenticationType,
    BridgeConfig,
    BridgeHealthChecksConfig,
    BridgeSelectionStrategyName,
    ComponentConfig,
    ConferenceConfig,
    HealthConfig,
    IceFailureDetectionConfig,
    JibriConfig,
    JicofoConfig,
    JigasiConfig,
    LoadRedistributionConfig,
    OctoConfig,
    RateLimitConfig,
    ReinviteMethod,
    RestConfig,
    StanzaLimitsConfig,
    TopologyStrategyName,
    VisitorsConfig,
    XmppConfig,
    XmppConnectionConfig,
    XmppConnectionName,
)
from .values import Section, describe

# Upstream also accepts its strategies' fully qualified class names.
_STRATEGY_PACKAGE = "org.jitsi.jicofo.bridge."
_PORT_RANGE = {"minimum": 1, "maximum": 65535}
# Visitor-node blocks have no entry in reference.conf (their ids are the operator's), so their defaults
# are applied here.
_VISITOR_NODE_DEFAULTS = """
enabled = true
port = 5222
username = focus
reply-timeout = 15 seconds
disable-certificate-verification = false
use-tls = true
"""


def build_config(tree: ConfigTree) -> JicofoConfig:
    root = Section(tree, "").child("jicofo")
    sctp_enabled = root.child("sctp").boolean("enabled")
    return JicofoConfig(
        xmpp=read_xmpp(root.child("xmpp")),
        bridge=read_bridge(root.child("bridge")),
        conference=read_conference(root.child("conference")),
        codec=read_codecs(root.child("codec")),
        octo=read_octo(root.child("octo")),
        rest=read_rest(root.child("rest")),
        health=read_health(root.child("health")),
        authentication=read_authentication(root.child("authentication")),
        jibri=read_jibri(root.child("jibri"), root.child("jibri-sip")),
        jigasi=read_jigasi(root.child("jigasi")),
        visitors=read_visitors(root.child("visitors")),
        local_region=root.optional_string("local-region"),
        sctp_enabled=sctp_enabled,
        metrics_update_interval=root.child("metrics").duration("update-interval"),
        restart=read_restart(root.child("restart")),
    )


# --- XMPP -------------------------------------------------------------------------------------------


def read_xmpp(section: Section) -> XmppConfig:
    visitors = section.child("visitors")
    return XmppConfig(
        client=read_connection(section.child("client"), "client"),
        service=read_connection(section.child("service"), "service"),
        component=read_component(section.child("component")),
        visitors=tuple(_visitor_node(visitors, node) for node in visitors.keys()),
        trusted_domains=section.string_list("trusted-domains"),
        use_jitsi_jid_validation=section.boolean("use-jitsi-jid-validation"),
        stanza_limits=read_stanza_limits(section.child("stanza-limits")),
    )


def read_stanza_limits(section: Section) -> StanzaLimitsConfig:
    kib = {"minimum": 1024}
    limits = StanzaLimitsConfig(
        max_size=section.integer("max-size", **kib),
        max_depth=section.integer("max-depth", minimum=8),
        max_attributes=section.integer("max-attributes", minimum=8),
        max_elements=section.integer("max-elements", minimum=100),
        max_tag_size=section.integer("max-tag-size", **kib),
        client_max_outgoing_size=section.integer("client-max-outgoing-size", **kib),
        component_max_outgoing_size=section.integer("component-max-outgoing-size", **kib),
    )
    if limits.max_tag_size < limits.max_size:
        raise section.error("max-tag-size", "must not be smaller than max-size")
    return limits


def _visitor_node(visitors: Section, node: str) -> XmppConnectionConfig:
    section = visitors.child(node).with_defaults(_VISITOR_NODE_DEFAULTS)
    return read_connection(section, f"visitors.{node}", visitor_node=True)


def read_connection(section: Section, name: str, *, visitor_node: bool = False) -> XmppConnectionConfig:
    enabled = section.boolean("enabled")
    hostname = section.string("hostname")
    # A visitor node logs in to its own host's domain unless told otherwise.
    domain = section.optional_string("domain") or (hostname if visitor_node else None)
    username = section.string("username")
    xmpp_domain = section.optional_string("xmpp-domain")
    websocket_url = section.optional_string("websocket-url")
    if websocket_url is not None and not websocket_url.startswith(("ws://", "wss://")):
        raise section.error("websocket-url", f"expected a ws:// or wss:// URL, got {describe(websocket_url)}")
    if enabled and domain is None:
        raise section.error("domain", "required when the connection is enabled (the login domain)")
    conference_muc_jid = None
    if name == "client":
        conference_muc_jid = section.optional_string("conference-muc-jid") or (
            f"conference.{xmpp_domain}" if xmpp_domain else None
        )
    return XmppConnectionConfig(
        name=name,
        enabled=enabled,
        hostname=hostname,
        port=section.integer("port", **_PORT_RANGE),
        domain=domain,
        xmpp_domain=xmpp_domain,
        username=username,
        resource=section.optional_string("resource") or username,
        password=section.optional_string("password", secret=True),
        reply_timeout=section.duration("reply-timeout"),
        disable_certificate_verification=section.boolean("disable-certificate-verification"),
        use_tls=section.boolean("use-tls"),
        websocket_url=websocket_url,
        conference_muc_jid=conference_muc_jid,
        client_proxy=section.optional_string("client-proxy"),
        conference_service=section.string("conference-service") if visitor_node else None,
    )


def read_component(section: Section) -> ComponentConfig:
    enabled = section.boolean("enabled")
    domain = section.optional_string("domain") or ""
    secret = section.optional_string("secret", secret=True) or ""
    if enabled and not domain:
        raise section.error("domain", "required when the component is enabled")
    if enabled and not secret:
        raise section.error("secret", "required when the component is enabled")
    return ComponentConfig(
        enabled=enabled,
        hostname=section.string("hostname"),
        port=section.integer("port", **_PORT_RANGE),
        domain=domain,
        subdomain=section.optional_string("subdomain") or "",
        secret=secret,
    )


# --- Bridges ----------------------------------------------------------------------------------------


def read_bridge(section: Section) -> BridgeConfig:
    def strategy(key: str) -> BridgeSelectionStrategyName | None:
        if not section.has(key):
            return None
        return section.choice(key, BridgeSelectionStrategyName, strip_prefix=_STRATEGY_PACKAGE)

    selection_strategy = strategy("selection-strategy")
    if selection_strategy is None:
        raise section.error("selection-strategy", "required but not set")
    visitor_strategy = strategy("visitor-selection-strategy")
    participant_strategy = strategy("participant-selection-strategy")
    if selection_strategy is BridgeSelectionStrategyName.VISITOR:
        # Upstream refuses to start without both; neither may be the visitor strategy itself.
        for key, sub in (("participant-selection-strategy", participant_strategy),
                         ("visitor-selection-strategy", visitor_strategy)):
            if sub is None or sub is BridgeSelectionStrategyName.VISITOR:
                raise section.error(key, f"required, and not {selection_strategy.value}, when "
                                         f"selection-strategy is {selection_strategy.value}")
    return BridgeConfig(
        brewery_jid=section.optional_string("brewery-jid"),
        max_bridge_participants=section.integer("max-bridge-participants", minimum=-1),
        max_bridge_participants_per_interval=section.integer(
            "max-bridge-participants-per-interval", minimum=-1
        ),
        max_bridge_participants_interval=section.duration("max-bridge-participants-interval"),
        average_participant_stress=section.number("average-participant-stress", minimum=0),
        participant_rampup_interval=section.duration("participant-rampup-interval"),
        stress_threshold=section.number("stress-threshold", minimum=0),
        failure_reset_threshold=section.duration("failure-reset-threshold"),
        selection_strategy=selection_strategy,
        visitor_selection_strategy=visitor_strategy,
        participant_selection_strategy=participant_strategy,
        topology_strategy=section.choice(
            "topology-strategy", TopologyStrategyName, strip_prefix=_STRATEGY_PACKAGE
        ),
        region_groups=_region_groups(section),
        xmpp_connection_name=section.choice("xmpp-connection-name", XmppConnectionName),
        health_checks=_bridge_health_checks(section.child("health-checks")),
        ice_failure_detection=_ice_failure_detection(section.child("ice-failure-detection")),
        load_redistribution=_load_redistribution(section.child("load-redistribution")),
    )


def _region_groups(section: Section) -> tuple[frozenset[str], ...]:
    value = section.raw("region-groups")
    if not section.has("region-groups"):
        return ()
    shape_error = section.error("region-groups", "expected a list of lists of region names")
    if not isinstance(value, list):
        raise shape_error
    groups: list[frozenset[str]] = []
    for group in value:
        if not isinstance(group, list) or not all(isinstance(region, str) for region in group):
            raise shape_error
        groups.append(frozenset(group))
    return tuple(groups)


def _bridge_health_checks(section: Section) -> BridgeHealthChecksConfig:
    interval = section.duration("interval")
    retry_delay = section.optional_duration("retry-delay")
    return BridgeHealthChecksConfig(
        enabled=section.boolean("enabled"),
        interval=interval,
        retry_delay=interval / 2 if retry_delay is None else retry_delay,
        use_presence=section.boolean("use-presence"),
        presence_timeout=section.duration("presence-timeout"),
        silence_timeout=section.duration("silence-timeout"),
    )


def _ice_failure_detection(section: Section) -> IceFailureDetectionConfig:
    return IceFailureDetectionConfig(
        enabled=section.boolean("enabled"),
        interval=section.duration("interval"),
        min_endpoints=section.integer("min-endpoints", minimum=0),
        threshold=section.number("threshold", minimum=0),
        timeout=section.duration("timeout"),
    )


def _load_redistribution(section: Section) -> LoadRedistributionConfig:
    return LoadRedistributionConfig(
        enabled=section.boolean("enabled"),
        interval=section.duration("interval"),
        stress_threshold=section.number("stress-threshold", minimum=0),
        timeout=section.duration("timeout"),
        endpoints=section.integer("endpoints", minimum=1),
    )


# --- Conferences ------------------------------------------------------------------------------------


def read_conference(section: Section) -> ConferenceConfig:
    limits = section.child("restart-request-rate-limits")
    return ConferenceConfig(
        enable_auto_owner=section.boolean("enable-auto-owner"),
        enable_moderator_checks=section.boolean("enable-moderator-checks"),
        initial_timeout=section.duration("initial-timeout"),
        max_ssrcs_per_user=section.integer("max-ssrcs-per-user", minimum=0),
        max_ssrc_groups_per_user=section.integer("max-ssrc-groups-per-user", minimum=0),
        single_participant_timeout=section.duration("single-participant-timeout"),
        min_participants=section.integer("min-participants", minimum=1),
        max_audio_senders=section.integer("max-audio-senders", minimum=0),
        max_video_senders=section.integer("max-video-senders", minimum=0),
        strip_simulcast=section.boolean("strip-simulcast"),
        use_ssrc_rewriting=section.boolean("use-ssrc-rewriting"),
        use_rtp_mid_demux=section.boolean("use-rtp-mid-demux"),
        use_json_encoded_sources=section.boolean("use-json-encoded-sources"),
        shared_document_use_random_name=section.child("shared-document").boolean("use-random-name"),
        source_signaling_delays=_source_signaling_delays(section),
        reinvite_method=section.choice("reinvite-method", ReinviteMethod),
        enable_ice_restart=section.boolean("enable-ice-restart"),
        restart_request_rate_limits=RateLimitConfig(
            min_interval=limits.duration("min-interval"),
            max_requests=limits.integer("max-requests", minimum=1),
            interval=limits.duration("interval"),
        ),
        room_metadata_timeout=section.duration("room-metadata-timeout"),
    )


def _source_signaling_delays(section: Section) -> tuple[tuple[int, float], ...]:
    delays = section.child("source-signaling-delays")
    entries: list[tuple[int, float]] = []
    for key in delays.keys():
        if not key.strip().isdigit():
            raise delays.error(key, "expected a conference size (a whole number) as the key")
        entries.append((int(key), delays.duration(key)))
    return tuple(sorted(entries))


# --- Everything else --------------------------------------------------------------------------------


def read_octo(section: Section) -> OctoConfig:
    return OctoConfig(
        enabled=section.boolean("enabled"),
        allow_mixed_versions=section.boolean("allow-mixed-versions"),
        sctp_datachannels=section.boolean("sctp-datachannels"),
    )


def read_rest(section: Section) -> RestConfig:
    def endpoint_enabled(name: str) -> bool:
        return section.child(name).boolean("enabled")

    return RestConfig(
        enabled=section.boolean("enabled"),
        host=section.string("host"),
        port=section.integer("port", maximum=65535),
        prometheus_enabled=endpoint_enabled("prometheus"),
        conference_request_enabled=endpoint_enabled("conference-request"),
        move_endpoints_enabled=endpoint_enabled("move-endpoints"),
        debug_enabled=endpoint_enabled("debug"),
        pin_enabled=endpoint_enabled("pin"),
    )


def read_health(section: Section) -> HealthConfig:
    return HealthConfig(
        enabled=section.boolean("enabled"),
        interval=section.duration("interval"),
        timeout=section.duration("timeout"),
        max_check_duration=section.duration("max-check-duration"),
        room_name_prefix=section.string("room-name-prefix"),
    )


def read_authentication(section: Section) -> AuthenticationConfig:
    enabled = section.boolean("enabled")
    auth_type = section.choice("type", AuthenticationType) if enabled else AuthenticationType.NONE
    return AuthenticationConfig(
        enabled=enabled and auth_type is not AuthenticationType.NONE,
        type=auth_type,
        login_url=section.optional_string("login-url"),
        authentication_lifetime=section.duration("authentication-lifetime"),
        enable_auto_login=section.boolean("enable-auto-login"),
    )


def read_jibri(section: Section, sip_section: Section) -> JibriConfig:
    return JibriConfig(
        brewery_jid=section.optional_string("brewery-jid"),
        sip_brewery_jid=sip_section.optional_string("brewery-jid"),
        num_retries=section.integer("num-retries", minimum=-1),
        pending_timeout=section.duration("pending-timeout"),
        xmpp_connection_name=section.choice("xmpp-connection-name", XmppConnectionName),
        use_private_address_connectivity=section.boolean("use-private-address-connectivity"),
    )


def read_jigasi(section: Section) -> JigasiConfig:
    return JigasiConfig(
        brewery_jid=section.optional_string("brewery-jid"),
        xmpp_connection_name=section.choice("xmpp-connection-name", XmppConnectionName),
        use_private_address_connectivity=section.boolean("use-private-address-connectivity"),
    )


def read_visitors(section: Section) -> VisitorsConfig:
    return VisitorsConfig(
        enabled=section.boolean("enabled"),
        max_participants=section.integer("max-participants", minimum=0),
        max_visitors_per_node=section.integer("max-visitors-per-node", minimum=1),
        notification_interval=section.duration("notification-interval"),
        auto_enable_broadcast=section.boolean("auto-enable-broadcast"),
        require_muc_config_flag=section.boolean("require-muc-config-flag"),
        enable_live_room=section.boolean("enable-live-room"),
        vnode_join_latency_interval=section.duration("vnode-join-latency-interval"),
    )
