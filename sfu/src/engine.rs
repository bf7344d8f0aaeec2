//! What the server's connections speak: codecs, header extensions and interceptors.

use rtc::interceptor::{NackGeneratorBuilder, ReceiverReportBuilder, Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};

use crate::{PcTarget, SfuConfig, SfuError, internal};

pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Payload types we offer (as the subscriber PC's offerer we choose them, and the answer must
/// keep them), so a down-track knows its payload type without waiting for negotiation.
pub const PT_OPUS: u8 = 111;
pub const PT_VP8: u8 = 96;
pub const PT_H264: u8 = 125;

fn codec(mime: &str, clock: u32, channels: u16, fmtp: &str, pt: u8) -> RTCRtpCodecParameters {
    let video = clock == 90_000;
    let fb = |typ: &str, parameter: &str| RTCPFeedback { typ: typ.into(), parameter: parameter.into() };
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.into(),
            clock_rate: clock,
            channels,
            sdp_fmtp_line: fmtp.into(),
            rtcp_feedback: if video {
                vec![fb("goog-remb", ""), fb("ccm", "fir"), fb("nack", ""), fb("nack", "pli")]
            } else {
                vec![]
            },
        },
        payload_type: pt,
    }
}

/// Opus, VP8 and one H.264 profile (constrained baseline, packetization-mode 1): what Chromium
/// and webrtc-rs clients both send. No RTX: webrtc-rs drops RTX of simulcast layers
/// (repaired-rid is not handled), and without it Chromium retransmits on the media SSRC.
pub fn media_engine() -> Result<MediaEngine, SfuError> {
    let mut me = MediaEngine::default();
    me.register_codec(codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1", PT_OPUS), RtpCodecKind::Audio)
        .map_err(internal)?;
    me.register_codec(codec(MIME_TYPE_VP8, 90_000, 0, "", PT_VP8), RtpCodecKind::Video).map_err(internal)?;
    me.register_codec(
        codec(
            MIME_TYPE_H264,
            90_000,
            0,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            PT_H264,
        ),
        RtpCodecKind::Video,
    )
    .map_err(internal)?;
    // RFC 6464 audio levels: the active-speaker signal, computed by the sender for free.
    me.register_header_extension(
        rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability { uri: AUDIO_LEVEL_URI.into() },
        RtpCodecKind::Audio,
        None,
    )
    .map_err(internal)?;
    Ok(me)
}

pub fn payload_type_for(mime: &str) -> Option<u8> {
    let m = mime.to_ascii_lowercase();
    if m == MIME_TYPE_OPUS.to_ascii_lowercase() {
        Some(PT_OPUS)
    } else if m == MIME_TYPE_VP8.to_ascii_lowercase() {
        Some(PT_VP8)
    } else if m == MIME_TYPE_H264.to_ascii_lowercase() {
        Some(PT_H264)
    } else {
        None
    }
}

/// The interceptors a connection needs for its one direction. A publish connection only
/// receives: it asks for lost packets (NACK), reports reception (RR) and gives the publisher's
/// congestion control its feedback (TWCC). A subscribe connection only sends, and what it sends
/// bypasses the chain (see `plane::sender`), so it has none. Every interceptor in
/// the chain is a step each packet walks through (the message is moved at each one), so the
/// other direction's interceptors, which would only pass packets on, are left out: the
/// subscribe side is the one that runs per packet per viewer.
pub(crate) fn interceptors(target: PcTarget, me: &mut MediaEngine) -> Result<Registry, SfuError> {
    let registry = Registry::new();
    Ok(match target {
        PcTarget::Publish => {
            configure_simulcast_extension_headers(me).map_err(internal)?;
            let registry = registry
                .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
                .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build());
            configure_twcc_receiver_only(registry, me).map_err(internal)?
        }
        // Its RTP is sealed and sent by the SFU's own sender (`plane::sender`), which keeps the
        // NACK history and writes the sender reports: interceptors would never see a packet.
        PcTarget::Subscribe => registry,
    })
}

/// A description as a client gets it: announced addresses (see [`announce`]), and a session-level
/// `a=msid-semantic: WMS *`, which `rtc` leaves out of a connection's first offer (it writes it
/// in later ones) and without which some clients (aiortc, older libwebrtc) ignore `a=msid` and with it the track ids `{participant}.{track}` that
/// protocol.md promises.
pub fn for_client(config: &SfuConfig, sdp: &str) -> String {
    let sdp = announce(config, sdp);
    if sdp.contains("a=msid-semantic:") {
        return sdp;
    }
    // Session-level attributes go before the first media section.
    match sdp.find("\r\nm=") {
        Some(at) => format!("{}\r\na=msid-semantic: WMS *{}", &sdp[..at], &sdp[at..]),
        None => sdp,
    }
}

/// NAT 1:1: replace bound addresses by announced ones in candidates and SDP text.
pub fn announce(config: &SfuConfig, text: &str) -> String {
    let mut out = text.to_owned();
    for (bound, public) in config.bind_ips.iter().zip(&config.announce_ips) {
        out = out.replace(&format!(" {bound} "), &format!(" {public} "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_addresses_replace_bound_ones_in_candidates() {
        let config = SfuConfig {
            bind_ips: vec!["10.0.0.5".parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))],
            announce_ips: vec![std::net::IpAddr::from([203, 0, 113, 7])],
            ..SfuConfig::default()
        };
        let c = "candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host";
        assert_eq!(announce(&config, c), "candidate:1 1 udp 2130706431 203.0.113.7 50000 typ host");
        // Without announced addresses nothing changes.
        assert_eq!(announce(&SfuConfig::default(), c), c);
    }

    #[test]
    fn a_client_description_has_the_msid_semantic_once_before_the_media() {
        let config = SfuConfig::default();
        let sdp = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=msid:p p.cam\r\n";
        let out = for_client(&config, sdp);
        assert_eq!(
            out,
            "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic: WMS *\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=msid:p p.cam\r\n"
        );
        assert_eq!(for_client(&config, &out), out, "not added twice");
    }

    #[test]
    fn payload_types_are_the_offered_ones() {
        assert_eq!(payload_type_for("video/VP8"), Some(PT_VP8));
        assert_eq!(payload_type_for("audio/opus"), Some(PT_OPUS));
        assert_eq!(payload_type_for("video/H264"), Some(PT_H264));
        assert_eq!(payload_type_for("video/AV1"), None);
    }
}
