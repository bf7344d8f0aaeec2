//! Building one server-side connection on the sans-IO core for a worker's shared socket.
//!
//! What makes many connections on one socket cheap:
//! - **ICE-lite** (RFC 8445 §2.5): the server has one host candidate per worker and is
//!   reachable on it, so it never sends checks of its own; the client checks and nominates.
//!   Nothing is sent to an address only because a participant named it in a candidate.
//! - **Its own ufrag** per connection: how the demux finds the connection of a STUN request.
//! - **One DTLS certificate** for the whole process instead of a key pair per connection
//!   (generating one is the slowest part of building a connection); each DTLS handshake still
//!   has its own keys.
//! - **Interceptors for one direction only** (`engine::interceptors`), plus the RTCP tap.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use rtc::crypto::{RTCCryptoProvider, SignatureScheme};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Slot;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate, RTCIceCandidateInit,
};

use crate::rtcp::{KeyframeRequestTap, LinkReport, TAP_SLOT};
use crate::{PcTarget, SfuError, engine, internal};

/// What every connection of the process shares: the crypto provider and the certificate.
#[derive(Clone)]
pub struct Identity {
    provider: Arc<dyn RTCCryptoProvider>,
    certificate: RTCCertificate,
}

impl Identity {
    pub fn generate() -> Result<Self, SfuError> {
        let provider = rtc::crypto::default_provider().map_err(internal)?;
        let params = CertificateParams::new(vec!["huizhen-sfu".to_owned()]).map_err(internal)?;
        let certificate =
            RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params).map_err(internal)?;
        Ok(Self { provider, certificate })
    }

    /// For a client of many connections (the load swarm) that shares one key pair the same way.
    pub fn parts(&self) -> (Arc<dyn RTCCryptoProvider>, RTCCertificate) {
        (self.provider.clone(), self.certificate.clone())
    }
}

/// ICE credentials for one connection: a ufrag unique on its worker (the demux key) and a
/// password. RFC 8839 §5.4 asks for 24 and 128 bits of randomness; these carry 95 and 190.
pub fn credentials() -> (String, String) {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut pick =
        |n: usize| -> String { (0..n).map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())])).collect() };
    (pick(16), pick(32))
}

/// A connection for `target`, answering (publish) or offering (subscribe), whose one local
/// candidate is the worker's socket `host`. Its loss and REMB reports land in `link`.
pub fn build(
    identity: &Identity,
    target: PcTarget,
    (ufrag, pwd): (String, String),
    host: SocketAddr,
    link: Arc<LinkReport>,
    now: Instant,
) -> Result<RTCPeerConnection, SfuError> {
    let mut me = engine::media_engine()?;
    let registry = engine::interceptors(target, &mut me)?.with(Slot::from(TAP_SLOT), KeyframeRequestTap::new(link));
    let settings = SettingEngineBuilder::new()
        .with_crypto_provider(identity.provider.clone())
        .with_ice_credentials(ufrag, pwd)
        .with_lite(true)
        // The client is the DTLS client on the publish connection too, as on the subscribe
        // one (where its answer is `active`): one handshake role for the server to serve.
        .with_answering_dtls_role(RTCDtlsRole::Server)
        // The default queries mDNS for `.local` candidates, which a lite agent never checks.
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    let config = RTCConfigurationBuilder::new().with_certificates(vec![identity.certificate.clone()]).build();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(config)
        .with_setting_engine(settings)
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .build(now)
        .map_err(internal)?;
    pc.add_local_candidate(host_candidate(host)?).map_err(internal)?;
    Ok(pc)
}

/// A UDP host candidate on `addr`: a worker's socket, or (in tests) a client's.
pub fn host_candidate(addr: SocketAddr) -> Result<RTCIceCandidateInit, SfuError> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .map_err(internal)?;
    RTCIceCandidate::from(&candidate).to_json().map_err(internal)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_long_random_and_ice_chars() {
        let (u1, p1) = credentials();
        let (u2, _) = credentials();
        assert_eq!((u1.len(), p1.len()), (16, 32));
        assert_ne!(u1, u2);
        assert!(u1.chars().chain(p1.chars()).all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn an_offer_is_lite_with_the_worker_candidate_and_the_given_ufrag() {
        let identity = Identity::generate().unwrap();
        let host: SocketAddr = "127.0.0.1:41234".parse().unwrap();
        let mut pc = build(
            &identity,
            PcTarget::Subscribe,
            ("ufragufragufrag1".into(), "p".repeat(32)),
            host,
            Arc::default(),
            Instant::now(),
        )
        .unwrap();
        let track = rtc::media_stream::MediaStreamTrack::new(
            "s".into(),
            "t".into(),
            "l".into(),
            rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Audio,
            vec![],
        );
        pc.add_track(track).unwrap();
        let offer = pc.create_offer(None).unwrap();
        pc.set_local_description(Instant::now(), offer).unwrap();
        let sdp = pc.local_description().unwrap().sdp;
        assert!(sdp.contains("a=ice-lite"), "{sdp}");
        assert!(sdp.contains("a=ice-ufrag:ufragufragufrag1"), "{sdp}");
        assert!(sdp.contains(" 127.0.0.1 41234 typ host"), "{sdp}");
    }
}
