//! Building the server's PeerConnections: codecs, interceptors, sockets, and the event
//! handler that turns driver callbacks into room commands without ever blocking the driver.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rtc::interceptor::{
    NackGeneratorBuilder, NackResponderBuilder, ReceiverReportBuilder, Registry, SenderReportBuilder, Slot,
};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::RTCIceServer;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};

use crate::room::Cmd;
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

/// Driver callbacks → room commands. Holds only a weak sender: a PeerConnection must never
/// keep its room alive, and `try_send` never blocks the driver.
pub struct Handler {
    pub room: mpsc::WeakSender<Cmd>,
    pub participant: String,
    pub target: PcTarget,
    pub generation: u64,
}

impl Handler {
    fn send(&self, cmd: Cmd) {
        if let Some(tx) = self.room.upgrade()
            && tx.try_send(cmd).is_err()
        {
            tracing::warn!(participant = %self.participant, "room queue full; media event dropped");
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(c) = event.candidate.to_json() {
            self.send(Cmd::LocalCandidate { id: self.participant.clone(), target: self.target, candidate: c });
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.send(Cmd::PcState {
            id: self.participant.clone(),
            target: self.target,
            generation: self.generation,
            state,
        });
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.send(Cmd::TrackArrived { id: self.participant.clone(), generation: self.generation, track });
    }
}

/// The interceptors a connection needs for its one direction. A publish connection only
/// receives: it asks for lost packets (NACK), reports reception (RR) and gives the publisher's
/// congestion control its feedback (TWCC). A subscribe connection only sends: it answers NACKs
/// from its history and sends sender reports (lip sync at the receiver). Every interceptor in
/// the chain is a step each packet walks through (the message is moved at each one), so the
/// other direction's interceptors, which would only pass packets on, are left out: the
/// subscribe side is the one that runs per packet per viewer.
fn interceptors(target: PcTarget, me: &mut MediaEngine) -> Result<Registry, SfuError> {
    let registry = Registry::new();
    Ok(match target {
        PcTarget::Publish => {
            configure_simulcast_extension_headers(me).map_err(internal)?;
            let registry = registry
                .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
                .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build());
            configure_twcc_receiver_only(registry, me).map_err(internal)?
        }
        PcTarget::Subscribe => registry
            .with(Slot::NackResponder, NackResponderBuilder::new().build())
            .with(Slot::SenderReport, SenderReportBuilder::new().build()),
    })
}

pub async fn peer_connection(
    config: &SfuConfig,
    handler: Handler,
    link: Arc<crate::rtcp::LinkReport>,
) -> Result<Arc<dyn PeerConnection>, SfuError> {
    let mut me = media_engine()?;
    let registry = interceptors(handler.target, &mut me)?
        .with(Slot::from(crate::rtcp::TAP_SLOT), crate::rtcp::KeyframeRequestTap::new(link));
    let ice_servers = config
        .ice_servers
        .iter()
        .map(|s| RTCIceServer { urls: s.urls.clone(), username: s.username.clone(), credential: s.credential.clone() })
        .collect();
    let settings = SettingEngineBuilder::new()
        // One multicast socket per connection otherwise; our candidates are plain addresses.
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        // The server offers the subscribe connection, so it is the controlling agent and picks
        // the pair. webrtc-rs's defaults wait for better pairs before taking a peer-reflexive
        // (1 s), server-reflexive (0.5 s) or relayed (2 s) one: a viewer whose first check
        // arrives before its trickled candidate (usual when many join at once) waited a second
        // for its picture. The server has host candidates only, so any pair that works is as
        // good as the client's network allows; relays still wait a little for a direct path.
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_srflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_relay_acceptance_min_wait(Some(Duration::from_millis(500)))
        // RFC 8445's Ta (50 ms) instead of 200 ms between checks (few candidates on our side),
        // with as many attempts as fit in 2 s, so a slow rural link (long round trip, some loss)
        // gets longer to answer than the default 7 x 200 ms, not shorter.
        .with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(40))
        .build();
    let addrs: Vec<SocketAddr> = config.bind_ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().with_ice_servers(ice_servers).build())
        .with_media_engine(me)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(handler))
        .with_udp_addrs(addrs)
        .build()
        .await
        .map_err(internal)?;
    Ok(Arc::new(pc))
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
    fn payload_types_are_the_offered_ones() {
        assert_eq!(payload_type_for("video/VP8"), Some(PT_VP8));
        assert_eq!(payload_type_for("audio/opus"), Some(PT_OPUS));
        assert_eq!(payload_type_for("video/H264"), Some(PT_H264));
        assert_eq!(payload_type_for("video/AV1"), None);
    }
}
