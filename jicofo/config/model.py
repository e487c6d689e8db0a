"""The focus's configuration as typed, frozen objects: one per area, grouped in `JicofoConfig`.

Durations are float seconds. Keys that upstream leaves unset are `None` here. Secrets are excluded from
`repr` (and so from anything that logs these objects).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from jicofo.restart.config import RestartConfig


class ConfigError(Exception):
    """A bad or missing setting. The message is one line naming the key; it never holds a secret."""


class XmppConnectionName(enum.StrEnum):
    CLIENT = "Client"
    SERVICE = "Service"


class BridgeSelectionStrategyName(enum.StrEnum):
    SINGLE = "SingleBridgeSelectionStrategy"
    SPLIT = "SplitBridgeSelectionStrategy"
    REGION_BASED = "RegionBasedBridgeSelectionStrategy"
    INTRA_REGION = "IntraRegionBridgeSelectionStrategy"
    VISITOR = "VisitorSelectionStrategy"


class TopologyStrategyName(enum.StrEnum):
    SINGLE_MESH = "SingleMeshTopologyStrategy"
    VISITOR = "VisitorTopologyStrategy"


class ReinviteMethod(enum.StrEnum):
    RESTART_JINGLE = "RestartJingle"
    REPLACE_TRANSPORT = "ReplaceTransport"


class AuthenticationType(enum.StrEnum):
    NONE = "NONE"
    XMPP = "XMPP"
    JWT = "JWT"


# --- XMPP -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class XmppConnectionConfig:
    """One client (c2s) connection: `jicofo.xmpp.client`, `.service` or `.visitors.<id>`."""

    name: str  # "client", "service" or "visitors.<id>", for logs
    enabled: bool
    hostname: str
    port: int
    domain: str | None  # the login domain; required when enabled
    xmpp_domain: str | None
    username: str
    resource: str
    password: str | None = field(repr=False)  # None: log in anonymously
    reply_timeout: float
    disable_certificate_verification: bool
    use_tls: bool
    websocket_url: str | None = None
    conference_muc_jid: str | None = None  # client: conference.<xmpp-domain> unless set
    client_proxy: str | None = None  # client only
    conference_service: str | None = None  # visitor nodes only

    @property
    def anonymous(self) -> bool:
        return self.password is None


@dataclass(frozen=True, slots=True)
class ComponentConfig:
    """Our addition: an XEP-0114 component that takes conference requests directly."""

    enabled: bool
    hostname: str
    port: int
    domain: str
    subdomain: str
    secret: str = field(repr=False)

    @property
    def jid(self) -> str:
        """The component's address: `<subdomain>.<domain>`, or just the domain without a subdomain."""
        return f"{self.subdomain}.{self.domain}" if self.subdomain else self.domain


@dataclass(frozen=True, slots=True)
class StanzaLimitsConfig:
    """Our addition, `jicofo.xmpp.stanza-limits`: per-stanza bounds on every XMPP connection
    (what is refused one stanza at a time), and the largest stanza the server accepts from us."""

    max_size: int
    max_depth: int
    max_attributes: int
    max_elements: int
    max_tag_size: int
    client_max_outgoing_size: int
    component_max_outgoing_size: int


@dataclass(frozen=True, slots=True)
class XmppConfig:
    client: XmppConnectionConfig
    service: XmppConnectionConfig
    component: ComponentConfig
    visitors: tuple[XmppConnectionConfig, ...]
    trusted_domains: tuple[str, ...]
    use_jitsi_jid_validation: bool
    stanza_limits: StanzaLimitsConfig


# --- Bridges ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BridgeHealthChecksConfig:
    enabled: bool
    interval: float
    retry_delay: float  # half the interval unless set
    use_presence: bool
    presence_timeout: float
    silence_timeout: float  # 0: a bridge is never failed for answering nothing


@dataclass(frozen=True, slots=True)
class IceFailureDetectionConfig:
    enabled: bool
    interval: float
    min_endpoints: int
    threshold: float
    timeout: float


@dataclass(frozen=True, slots=True)
class LoadRedistributionConfig:
    enabled: bool
    interval: float
    stress_threshold: float
    timeout: float
    endpoints: int


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    brewery_jid: str | None
    max_bridge_participants: int  # -1: no limit
    max_bridge_participants_per_interval: int  # -1: no burst limit
    max_bridge_participants_interval: float
    average_participant_stress: float
    participant_rampup_interval: float
    stress_threshold: float
    failure_reset_threshold: float
    selection_strategy: BridgeSelectionStrategyName
    visitor_selection_strategy: BridgeSelectionStrategyName | None
    participant_selection_strategy: BridgeSelectionStrategyName | None
    topology_strategy: TopologyStrategyName
    region_groups: tuple[frozenset[str], ...]
    xmpp_connection_name: XmppConnectionName
    health_checks: BridgeHealthChecksConfig
    ice_failure_detection: IceFailureDetectionConfig
    load_redistribution: LoadRedistributionConfig


# --- Conferences ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    min_interval: float
    max_requests: int
    interval: float


@dataclass(frozen=True, slots=True)
class ConferenceConfig:
    enable_auto_owner: bool
    enable_moderator_checks: bool
    initial_timeout: float
    max_ssrcs_per_user: int
    max_ssrc_groups_per_user: int
    single_participant_timeout: float
    min_participants: int
    max_audio_senders: int
    max_video_senders: int
    strip_simulcast: bool
    use_ssrc_rewriting: bool
    use_rtp_mid_demux: bool
    use_json_encoded_sources: bool
    shared_document_use_random_name: bool
    # (minimum conference size, delay in seconds), ascending by size
    source_signaling_delays: tuple[tuple[int, float], ...]
    reinvite_method: ReinviteMethod
    enable_ice_restart: bool
    restart_request_rate_limits: RateLimitConfig
    # How long joining a room waits for its room metadata when the room says a conference
    # presets service provides it (upstream's hard-coded 10 s).
    room_metadata_timeout: float = 10.0

    def source_signaling_delay(self, conference_size: int) -> float:
        """The batching delay for a conference of this size: the entry with the largest size not above it."""
        delay = 0.0
        for size, entry_delay in self.source_signaling_delays:
            if conference_size < size:
                break
            delay = entry_delay
        return delay


# --- Codecs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoCodecConfig:
    key: str  # the config key: av1, vp8, h264, vp9
    encoding: str  # the name on the wire: AV1, VP8, H264, VP9
    enabled: bool
    pt: int
    rtx_pt: int | None  # None: no RTX (rtx-pt = -1)
    enable_remb: bool
    clock_rate: int = 90000


@dataclass(frozen=True, slots=True)
class OpusConfig:
    enabled: bool
    pt: int
    minptime: int
    use_inband_fec: bool
    red_enabled: bool
    red_pt: int


@dataclass(frozen=True, slots=True)
class TelephoneEventConfig:
    enabled: bool
    pt: int


@dataclass(frozen=True, slots=True)
class RtpExtensionConfig:
    key: str  # the config key, e.g. "audio-level"
    uri: str
    id: int
    enabled: bool
    media: frozenset[str]  # "audio" and/or "video"


@dataclass(frozen=True, slots=True)
class CodecConfig:
    video: tuple[VideoCodecConfig, ...]  # in offer order: AV1, VP8, H264, VP9
    opus: OpusConfig
    telephone_event: TelephoneEventConfig
    rtp_extensions: tuple[RtpExtensionConfig, ...]
    extmap_allow_mixed: bool

    def enabled_video_codecs(self) -> tuple[VideoCodecConfig, ...]:
        return tuple(codec for codec in self.video if codec.enabled)

    def enabled_extensions(self, media: str) -> tuple[RtpExtensionConfig, ...]:
        return tuple(ext for ext in self.rtp_extensions if ext.enabled and media in ext.media)

    def extension(self, key: str) -> RtpExtensionConfig:
        for ext in self.rtp_extensions:
            if ext.key == key:
                return ext
        raise KeyError(key)


# --- Everything else --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OctoConfig:
    enabled: bool
    allow_mixed_versions: bool
    sctp_datachannels: bool


@dataclass(frozen=True, slots=True)
class RestConfig:
    enabled: bool
    host: str
    port: int
    prometheus_enabled: bool
    conference_request_enabled: bool
    move_endpoints_enabled: bool
    debug_enabled: bool
    pin_enabled: bool

    @property
    def serving(self) -> bool:
        return self.enabled and self.port > 0


@dataclass(frozen=True, slots=True)
class HealthConfig:
    enabled: bool
    interval: float  # 0: no periodic checks
    timeout: float
    max_check_duration: float
    room_name_prefix: str


@dataclass(frozen=True, slots=True)
class AuthenticationConfig:
    enabled: bool
    type: AuthenticationType  # NONE whenever enabled is false
    login_url: str | None
    authentication_lifetime: float
    enable_auto_login: bool


@dataclass(frozen=True, slots=True)
class JibriConfig:
    brewery_jid: str | None
    sip_brewery_jid: str | None
    num_retries: int  # -1: forever
    pending_timeout: float
    xmpp_connection_name: XmppConnectionName
    use_private_address_connectivity: bool


@dataclass(frozen=True, slots=True)
class JigasiConfig:
    brewery_jid: str | None
    xmpp_connection_name: XmppConnectionName
    use_private_address_connectivity: bool


@dataclass(frozen=True, slots=True)
class VisitorsConfig:
    enabled: bool
    max_participants: int
    max_visitors_per_node: int
    notification_interval: float
    auto_enable_broadcast: bool
    require_muc_config_flag: bool
    enable_live_room: bool
    vnode_join_latency_interval: float


@dataclass(frozen=True, slots=True)
class JicofoConfig:
    xmpp: XmppConfig
    bridge: BridgeConfig
    conference: ConferenceConfig
    codec: CodecConfig
    octo: OctoConfig
    rest: RestConfig
    health: HealthConfig
    authentication: AuthenticationConfig
    jibri: JibriConfig
    jigasi: JigasiConfig
    visitors: VisitorsConfig
    local_region: str | None
    sctp_enabled: bool
    metrics_update_interval: float
    restart: RestartConfig = field(default_factory=RestartConfig)
