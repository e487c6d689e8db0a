"""The focus's configuration: HOCON files read once at start into typed, frozen objects.

    cfg = load_config(path, overrides_from_flags(...))
    client = to_client_settings(cfg.xmpp.client)

The rest of the program takes these objects, never the raw tree. Defaults and key names are in the
shipped `jicofo/reference.conf`.
"""

from .flags import PASSWORD_VARIABLE, SECRET_VARIABLE, overrides_from_flags
from .load import CONFIG_FILE_VARIABLE, config_path_from_env, load_config
from .model import (
    AuthenticationConfig,
    AuthenticationType,
    BridgeConfig,
    BridgeHealthChecksConfig,
    BridgeSelectionStrategyName,
    CodecConfig,
    ComponentConfig,
    ConferenceConfig,
    ConfigError,
    HealthConfig,
    IceFailureDetectionConfig,
    JibriConfig,
    JicofoConfig,
    JigasiConfig,
    LoadRedistributionConfig,
    OctoConfig,
    OpusConfig,
    RateLimitConfig,
    ReinviteMethod,
    RestConfig,
    RtpExtensionConfig,
    TelephoneEventConfig,
    TopologyStrategyName,
    VideoCodecConfig,
    VisitorsConfig,
    XmppConfig,
    XmppConnectionConfig,
    XmppConnectionName,
)
from .xmpp_settings import to_client_settings, to_component_settings

__all__ = [
    "CONFIG_FILE_VARIABLE",
    "PASSWORD_VARIABLE",
    "SECRET_VARIABLE",
    "AuthenticationConfig",
    "AuthenticationType",
    "BridgeConfig",
    "BridgeHealthChecksConfig",
    "BridgeSelectionStrategyName",
    "CodecConfig",
    "ComponentConfig",
    "ConferenceConfig",
    "ConfigError",
    "HealthConfig",
    "IceFailureDetectionConfig",
    "JibriConfig",
    "JicofoConfig",
    "JigasiConfig",
    "LoadRedistributionConfig",
    "OctoConfig",
    "OpusConfig",
    "RateLimitConfig",
    "ReinviteMethod",
    "RestConfig",
    "RtpExtensionConfig",
    "TelephoneEventConfig",
    "TopologyStrategyName",
    "VideoCodecConfig",
    "VisitorsConfig",
    "XmppConfig",
    "XmppConnectionConfig",
    "XmppConnectionName",
    "config_path_from_env",
    "load_config",
    "overrides_from_flags",
    "to_client_settings",
    "to_component_settings",
]
