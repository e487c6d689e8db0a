"""`jicofo.codec`: payload types, RTX and RTP header extensions, in the order the offer lists them."""

from __future__ import annotations

from .model import (
    CodecConfig,
    OpusConfig,
    RtpExtensionConfig,
    TelephoneEventConfig,
    VideoCodecConfig,
)
from .values import Section

# (config key, encoding name), in the order video codecs appear in the offer.
_VIDEO_CODECS = (("av1", "AV1"), ("vp8", "VP8"), ("h264", "H264"), ("vp9", "VP9"))

_AUDIO = frozenset({"audio"})
_VIDEO = frozenset({"video"})
_BOTH = _AUDIO | _VIDEO

# (config key, URI, media it applies to)
_RTP_EXTENSIONS = (
    ("audio-level", "urn:ietf:params:rtp-hdrext:ssrc-audio-level", _AUDIO),
    (
        "av1-dependency-descriptor",
        "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension",
        _VIDEO,
    ),
    (
        "video-layers-allocation",
        "http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00",
        _VIDEO,
    ),
    ("tof", "urn:ietf:params:rtp-hdrext:toffset", _VIDEO),
    ("abs-send-time", "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", _VIDEO),
    ("rid", "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", _VIDEO),
    ("tcc", "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", _BOTH),
    ("video-content-type", "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type", _VIDEO),
    ("framemarking", "http://tools.ietf.org/html/draft-ietf-avtext-framemarking-07", _VIDEO),
    ("mid", "urn:ietf:params:rtp-hdrext:sdes:mid", _BOTH),
)

_PAYLOAD_TYPE = {"minimum": 0, "maximum": 127}


def read_codecs(section: Section) -> CodecConfig:
    extensions = section.child("rtp-extensions")
    video = section.child("video")
    config = CodecConfig(
        video=tuple(_video_codec(video.child(key), key, name) for key, name in _VIDEO_CODECS),
        opus=_opus(section.child("audio").child("opus")),
        telephone_event=_telephone_event(section.child("audio").child("telephone-event")),
        rtp_extensions=tuple(
            _rtp_extension(extensions.child(key), key, uri, media) for key, uri, media in _RTP_EXTENSIONS
        ),
        extmap_allow_mixed=extensions.boolean("extmap-allow-mixed"),
    )
    _check_unique_payload_types(section, config)
    _check_unique_extension_ids(extensions, config)
    return config


def _video_codec(section: Section, key: str, encoding: str) -> VideoCodecConfig:
    rtx_pt = section.integer("rtx-pt", minimum=-1, maximum=127)
    return VideoCodecConfig(
        key=key,
        encoding=encoding,
        enabled=section.boolean("enabled"),
        pt=section.integer("pt", **_PAYLOAD_TYPE),
        rtx_pt=None if rtx_pt < 0 else rtx_pt,
        enable_remb=section.boolean("enable-remb"),
    )


def _opus(section: Section) -> OpusConfig:
    red = section.child("red")
    return OpusConfig(
        enabled=section.boolean("enabled"),
        pt=section.integer("pt", **_PAYLOAD_TYPE),
        minptime=section.integer("minptime", minimum=0),
        use_inband_fec=section.boolean("use-inband-fec"),
        red_enabled=red.boolean("enabled"),
        red_pt=red.integer("pt", **_PAYLOAD_TYPE),
    )


def _telephone_event(section: Section) -> TelephoneEventConfig:
    return TelephoneEventConfig(enabled=section.boolean("enabled"), pt=section.integer("pt", **_PAYLOAD_TYPE))


def _rtp_extension(section: Section, key: str, uri: str, media: frozenset[str]) -> RtpExtensionConfig:
    return RtpExtensionConfig(
        key=key,
        uri=uri,
        id=section.integer("id", minimum=1, maximum=255),
        enabled=section.boolean("enabled"),
        media=media,
    )


def _check_unique_payload_types(section: Section, config: CodecConfig) -> None:
    """Two enabled codecs on one payload type would make the offer ambiguous."""
    seen: dict[int, str] = {}

    def claim(pt: int, key: str) -> None:
        if pt in seen:
            raise section.error(key, f"payload type {pt} is already used by {section.key_path(seen[pt])}")
        seen[pt] = key

    for codec in config.enabled_video_codecs():
        claim(codec.pt, f"video.{codec.key}.pt")
        if codec.rtx_pt is not None:
            claim(codec.rtx_pt, f"video.{codec.key}.rtx-pt")
    if config.opus.enabled:
        claim(config.opus.pt, "audio.opus.pt")
        if config.opus.red_enabled:
            claim(config.opus.red_pt, "audio.opus.red.pt")
    if config.telephone_event.enabled:
        claim(config.telephone_event.pt, "audio.telephone-event.pt")


def _check_unique_extension_ids(section: Section, config: CodecConfig) -> None:
    seen: dict[int, str] = {}
    for ext in config.rtp_extensions:
        if not ext.enabled:
            continue
        if ext.id in seen:
            other = section.key_path(seen[ext.id])
            raise section.error(f"{ext.key}.id", f"id {ext.id} is already used by {other}")
        seen[ext.id] = f"{ext.key}.id"
