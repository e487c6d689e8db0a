"""The Jingle offer (session-initiate / transport-replace body) for one participant: the configured
codecs and header extensions as the participant's features allow, the bridge's transport copied
into every content, BUNDLE, and the others' sources as XML or compact JSON.

Inputs:
* `OfferConfig`: the codec configuration, independent of any participant. Its defaults equal
  upstream's reference.conf (docs/jicofo.md §2.3); `OfferConfig.from_codec_config` reads the
  typed `jicofo.codec` config.
* `OfferOptions`: what this participant supports (`OfferOptions.from_features` reads disco
  features) and what the deployment enables (SCTP, JSON sources).
* the bridge's `IceUdpTransport` (ufrag, pwd, candidates, fingerprint, web-socket) and SCTP port;
* the sources to signal, already filtered for this receiver (bridge feedback sources first).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from jicofo.config.model import CodecConfig
from jicofo.model.sources import ConferenceSourceMap, MediaType
from jicofo.model.sources_jingle import source_elements
from jicofo.model.sources_json import encode_json
from jicofo.xmlns.ice_udp import IceUdpTransport, SctpMap
from jicofo.xmlns.jingle import (
    Action,
    BridgeSession,
    Group,
    HeaderExtension,
    JingleContent,
    JingleIQ,
    Parameter,
    PayloadType,
    RtcpFb,
    RtpDescription,
    StartMuted,
)

URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_TCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
URI_AV1_DEPENDENCY_DESCRIPTOR = (
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
)
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

FEATURE_AUDIO = "urn:xmpp:jingle:apps:rtp:audio"
FEATURE_VIDEO = "urn:xmpp:jingle:apps:rtp:video"
FEATURE_SCTP = "urn:xmpp:jingle:transports:dtls-sctp:1"
FEATURE_RTX = "urn:ietf:rfc:4588"
FEATURE_TCC = "http://jitsi.org/tcc"
FEATURE_REMB = "http://jitsi.org/remb"
FEATURE_OPUS_RED = "http://jitsi.org/opus-red"
FEATURE_JSON_SOURCES = "http://jitsi.org/json-encoded-sources"

SCTP_STREAMS = 1024
DEFAULT_SCTP_PORT = 5000

# The feedback every video codec and (except H264's) RTX payload type asks for.
VIDEO_FEEDBACK = (RtcpFb("ccm", "fir"), RtcpFb("nack"), RtcpFb("nack", "pli"))


@dataclass(frozen=True, slots=True)
class CodecSpec:
    """One payload type as configured: `pt` and encoding `name`/`clockrate`/`channels`, its fmtp
    `parameters`, the rtcp-fb it always carries (`feedback`; transport-cc and goog-remb are added
    per participant), its RTX payload type (None: no RTX) and whether that RTX entry repeats the
    feedback, and whether goog-remb may be offered for it."""

    pt: int
    name: str
    clockrate: int
    channels: int | None = None
    parameters: tuple[Parameter, ...] = ()
    feedback: tuple[RtcpFb, ...] = ()
    rtx_pt: int | None = None
    rtx_feedback: bool = True
    enable_remb: bool = True


def _video(
    pt: int, name: str, rtx_pt: int, parameters: tuple[Parameter, ...] = (), rtx_feedback: bool = True
) -> CodecSpec:
    return CodecSpec(
        pt, name, 90000, None, parameters, VIDEO_FEEDBACK, rtx_pt=rtx_pt, rtx_feedback=rtx_feedback
    )


H264_PROFILE = Parameter("profile-level-id", "42e01f;level-asymmetry-allowed=1;packetization-mode=1;")


# Where upstream's offer puts the header extensions it enables by default (§2.3); others follow.
_EXTENSION_ORDER = (URI_AUDIO_LEVEL, URI_AV1_DEPENDENCY_DESCRIPTOR, URI_MID, URI_ABS_SEND_TIME)


@dataclass(frozen=True, slots=True)
class OfferConfig:
    """Participant-independent codec configuration (`jicofo.codec`), with upstream's defaults.
    `red_pt` None disables RED; `tcc_extension_id` None disables the TCC header extension. Header
    extensions are listed in offer order; TCC goes last, when the participant uses it."""

    opus: CodecSpec | None = CodecSpec(
        111, "opus", 48000, 2, (Parameter("minptime", "10"), Parameter("useinbandfec", "1"))
    )
    red_pt: int | None = None
    telephone_event: CodecSpec | None = CodecSpec(126, "telephone-event", 8000)
    video_codecs: tuple[CodecSpec, ...] = (
        _video(41, "AV1", 42),
        _video(100, "VP8", 96),
        _video(107, "H264", 99, parameters=(H264_PROFILE,), rtx_feedback=False),
        _video(101, "VP9", 97),
    )
    audio_header_extensions: tuple[HeaderExtension, ...] = (
        HeaderExtension(1, URI_AUDIO_LEVEL),
        HeaderExtension(10, URI_MID),
    )
    video_header_extensions: tuple[HeaderExtension, ...] = (
        HeaderExtension(11, URI_AV1_DEPENDENCY_DESCRIPTOR),
        HeaderExtension(10, URI_MID),
        HeaderExtension(3, URI_ABS_SEND_TIME),
    )
    tcc_extension_id: int | None = 5
    extmap_allow_mixed: bool = True
    audio_maxptime: int | None = 60

    @classmethod
    def from_codec_config(cls, config: CodecConfig) -> OfferConfig:
        """The offer configuration of the typed `jicofo.codec` section."""
        opus = config.opus
        opus_parameters = [Parameter("minptime", str(opus.minptime))]
        if opus.use_inband_fec:
            opus_parameters.append(Parameter("useinbandfec", "1"))
        extensions = sorted(
            (e for e in config.rtp_extensions if e.enabled and e.uri != URI_TCC),
            key=lambda e: _EXTENSION_ORDER.index(e.uri) if e.uri in _EXTENSION_ORDER else 99,
        )
        tcc = next((e for e in config.rtp_extensions if e.uri == URI_TCC and e.enabled), None)
        return cls(
            opus=CodecSpec(opus.pt, "opus", 48000, 2, tuple(opus_parameters)) if opus.enabled else None,
            red_pt=opus.red_pt if opus.enabled and opus.red_enabled else None,
            telephone_event=(
                CodecSpec(config.telephone_event.pt, "telephone-event", 8000)
                if config.telephone_event.enabled
                else None
            ),
            video_codecs=tuple(
                CodecSpec(
                    codec.pt,
                    codec.encoding,
                    codec.clock_rate,
                    parameters=(H264_PROFILE,) if codec.encoding == "H264" else (),
                    feedback=VIDEO_FEEDBACK,
                    rtx_pt=codec.rtx_pt,
                    rtx_feedback=codec.encoding != "H264",
                    enable_remb=codec.enable_remb,
                )
                for codec in config.video
                if codec.enabled
            ),
            audio_header_extensions=tuple(
                HeaderExtension(e.id, e.uri) for e in extensions if "audio" in e.media
            ),
            video_header_extensions=tuple(
                HeaderExtension(e.id, e.uri) for e in extensions if "video" in e.media
            ),
            tcc_extension_id=tcc.id if tcc is not None else None,
            extmap_allow_mixed=config.extmap_allow_mixed,
        )


@dataclass(frozen=True, slots=True)
class OfferOptions:
    """What goes into one participant's offer. REMB is only used without TCC."""

    audio: bool = True
    video: bool = True
    sctp: bool = True
    rtx: bool = True
    tcc: bool = True
    remb: bool = False
    opus_red: bool = False
    json_sources: bool = False

    @classmethod
    def from_features(
        cls,
        features: frozenset[str] | set[str],
        *,
        sctp_enabled: bool = True,
        json_sources_enabled: bool = True,
    ) -> OfferOptions:
        """From the participant's disco#info features (audio is assumed when not announced) and the
        deployment's `jicofo.sctp.enabled` / `use-json-encoded-sources`."""
        return cls(
            audio=FEATURE_AUDIO in features or FEATURE_VIDEO not in features,
            video=FEATURE_VIDEO in features,
            sctp=sctp_enabled and FEATURE_SCTP in features,
            rtx=FEATURE_RTX in features,
            tcc=FEATURE_TCC in features,
            remb=FEATURE_REMB in features,
            opus_red=FEATURE_OPUS_RED in features,
            json_sources=json_sources_enabled and FEATURE_JSON_SOURCES in features,
        )


def _transport_feedback(config_allows_remb: bool, options: OfferOptions) -> tuple[RtcpFb, ...]:
    if options.tcc:
        return (RtcpFb("transport-cc"),)
    if options.remb and config_allows_remb:
        return (RtcpFb("goog-remb"),)
    return ()


def _tcc_extension(config: OfferConfig, options: OfferOptions) -> tuple[HeaderExtension, ...]:
    if options.tcc and config.tcc_extension_id is not None:
        return (HeaderExtension(config.tcc_extension_id, URI_TCC),)
    return ()


def audio_description(config: OfferConfig, options: OfferOptions) -> RtpDescription:
    payload_types: list[PayloadType] = []
    if config.opus is not None:
        opus = config.opus
        red_pt = config.red_pt if options.opus_red else None
        use_red = red_pt is not None
        if red_pt is not None:
            # Listed first so that it is preferred.
            payload_types.append(
                PayloadType(red_pt, "red", 48000, 2, (Parameter(None, f"{opus.pt}/{opus.pt}"),))
            )
        parameters = tuple(p for p in opus.parameters if not (use_red and p.name == "useinbandfec"))
        feedback = (RtcpFb("transport-cc"),) if options.tcc else ()
        payload_types.append(
            PayloadType(opus.pt, opus.name, opus.clockrate, opus.channels, parameters, feedback)
        )
    if config.telephone_event is not None:
        event = config.telephone_event
        payload_types.append(PayloadType(event.pt, event.name, event.clockrate, event.channels))
    return RtpDescription(
        media="audio",
        maxptime=config.audio_maxptime,
        payload_types=tuple(payload_types),
        header_extensions=config.audio_header_extensions + _tcc_extension(config, options),
        extmap_allow_mixed=config.extmap_allow_mixed,
        rtcp_mux=True,
    )


def video_description(config: OfferConfig, options: OfferOptions) -> RtpDescription:
    codecs = [
        PayloadType(
            codec.pt,
            codec.name,
            codec.clockrate,
            codec.channels,
            codec.parameters,
            codec.feedback + _transport_feedback(codec.enable_remb, options),
        )
        for codec in config.video_codecs
    ]
    rtx = [
        PayloadType(
            rtx_pt,
            "rtx",
            codec.clockrate,
            parameters=(Parameter("apt", str(codec.pt)),),
            rtcp_fbs=codec.feedback if codec.rtx_feedback else (),
        )
        for codec in config.video_codecs
        if options.rtx and (rtx_pt := codec.rtx_pt) is not None
    ]
    # RTX entries in payload-type order, as upstream lists them (42, 96, 97, 99).
    rtx.sort(key=lambda pt: pt.id)
    return RtpDescription(
        media="video",
        payload_types=tuple(codecs + rtx),
        header_extensions=config.video_header_extensions + _tcc_extension(config, options),
        extmap_allow_mixed=config.extmap_allow_mixed,
        rtcp_mux=True,
    )


def build_offer(
    config: OfferConfig,
    options: OfferOptions,
    transport: IceUdpTransport,
    sources: ConferenceSourceMap,
    *,
    sid: str,
    initiator: str | None = None,
    sctp_port: int = DEFAULT_SCTP_PORT,
    bridge_session: BridgeSession | None = None,
    start_muted: StartMuted | None = None,
    action: Action = Action.SESSION_INITIATE,
) -> JingleIQ:
    """The `<jingle>` body of a session-initiate (or, with `action`, a transport-replace).
    `sources` are the others' sources as this participant should see them; sources of a media
    type the offer has no content for are left out."""
    rtp_transport = replace(transport, rtcp_mux=True, sctpmap=None)
    contents: list[JingleContent] = []
    for media, wanted, build in (
        (MediaType.AUDIO, options.audio, audio_description),
        (MediaType.VIDEO, options.video, video_description),
    ):
        if not wanted:
            continue
        description = build(config, options)
        if not options.json_sources:
            elements, groups = source_elements(sources, media)
            description = replace(description, sources=elements, ssrc_groups=groups)
        contents.append(JingleContent(str(media), description=description, transport=rtp_transport))
    if options.sctp:
        data_transport = replace(
            transport, rtcp_mux=True, sctpmap=SctpMap(sctp_port, "webrtc-datachannel", SCTP_STREAMS)
        )
        contents.append(
            JingleContent("data", description=RtpDescription(media="application"), transport=data_transport)
        )
    json_message = None
    if options.json_sources:
        offered = [MediaType(c.name) for c in contents if c.name != "data"]
        signaled = sources.map_sets(lambda endpoint: endpoint.only(offered))
        json_message = encode_json(signaled) if signaled else None
    return JingleIQ(
        action=action,
        sid=sid,
        initiator=initiator,
        contents=tuple(contents),
        groups=(Group("BUNDLE", tuple(c.name for c in contents)),),
        bridge_session=bridge_session,
        json_message=json_message,
        start_muted=start_muted,
    )
