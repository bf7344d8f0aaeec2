//! The datagram entry point of a media worker without its socket, for the fuzz target
//! (`fuzz/fuzz_targets/media_datagram.rs`) and a deterministic smoke run in the tests.
//!
//! Two real connections (a publish one that has applied an offer, and a subscribe one that
//! has made its own) sit behind the worker's demux; each input is cut into datagrams from a
//! few source addresses, which go through the same steps as on the socket: demux, the
//! connection's `handle_read`, then everything it has to say (events, reads, writes) and its
//! timers. Whatever the bytes, none of it may panic or loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::conn::{self, Identity};
use super::demux::Demux;
use crate::PcTarget;

/// A browser-like offer with audio and simulcast video, for the publish connection.
const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=msid-semantic: WMS s\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:clientufrag\r\n\
a=ice-pwd:clientpasswordclientpassword\r\na=fingerprint:sha-256 \
00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=msid:s mic\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:1111 cname:c\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:clientufrag\r\n\
a=ice-pwd:clientpasswordclientpassword\r\na=fingerprint:sha-256 \
00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\na=mid:1\r\na=sendonly\r\na=msid:s cam\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
a=rid:q send\r\na=rid:h send\r\na=simulcast:send q;h\r\n";

pub struct DatagramHarness {
    local: SocketAddr,
    demux: Demux<u8>,
    conns: HashMap<u8, RTCPeerConnection>,
    ufrags: Vec<String>,
    now: Instant,
}

impl DatagramHarness {
    pub fn new() -> Self {
        Self::with_identity(&Identity::generate().unwrap_or_else(|e| panic!("certificate: {e}")))
    }

    /// Fresh connections under a certificate made once (making one per input would dominate
    /// a fuzzer's time).
    pub fn with_identity(identity: &Identity) -> Self {
        let local: SocketAddr = ([127, 0, 0, 1], 50000).into();
        let now = Instant::now();
        let mut demux = Demux::default();
        let mut conns = HashMap::new();
        let mut ufrags = Vec::new();
        for (id, target) in [(0u8, PcTarget::Publish), (1, PcTarget::Subscribe)] {
            let creds = conn::credentials();
            let ufrag = creds.0.clone();
            let mut pc = conn::build(identity, target, creds, local, Default::default(), now)
                .unwrap_or_else(|e| panic!("connection: {e}"));
            if target == PcTarget::Publish {
                // A description that does not apply leaves a connection as a bad client would.
                if let Ok(offer) = RTCSessionDescription::offer(OFFER.to_owned())
                    && pc.set_remote_description(now, offer).is_ok()
                    && let Ok(answer) = pc.create_answer(None)
                {
                    let _ = pc.set_local_description(now, answer);
                }
            } else {
                let track = rtc::media_stream::MediaStreamTrack::new(
                    "s".into(),
                    "t".into(),
                    "l".into(),
                    rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video,
                    vec![],
                );
                let _ = pc.add_track(track);
                if let Ok(offer) = pc.create_offer(None) {
                    let _ = pc.set_local_description(now, offer);
                }
            }
            let _ = demux.add(id, &ufrag);
            ufrags.push(ufrag);
            conns.insert(id, pc);
        }
        Self { local, demux, conns, ufrags, now }
    }

    /// Whether the publish connection took the offer (so checks to it are really answered).
    pub fn publish_described(&self) -> bool {
        self.conns.get(&0).is_some_and(|pc| pc.remote_description().is_some())
    }

    /// The connections' ufrags, so inputs can carry a known one.
    pub fn ufrags(&self) -> &[String] {
        &self.ufrags
    }

    /// Feeds `data`: a sequence of `[source (1 byte)] [length (2 bytes)] [datagram]` records.
    /// A source byte with the high bit set also moves the clock by its low bits in 10 ms
    /// steps, so timers run too.
    pub fn feed(&mut self, mut data: &[u8]) {
        while data.len() >= 3 {
            let source = data[0];
            let len = usize::from(u16::from_be_bytes([data[1], data[2]])).min(data.len() - 3).min(1500);
            let datagram = &data[3..3 + len];
            data = &data[3 + len..];
            if source & 0x80 != 0 {
                self.now += Duration::from_millis(10 * u64::from(source & 0x0f));
            }
            let from: SocketAddr = ([192, 0, 2, 1], 40000 + u16::from(source & 0x03)).into();
            if let Ok(id) = self.demux.route(from, datagram)
                && let Some(pc) = self.conns.get_mut(&id)
            {
                let msg = TaggedBytesMut {
                    now: self.now,
                    transport: TransportContext {
                        local_addr: self.local,
                        peer_addr: from,
                        transport_protocol: TransportProtocol::UDP,
                        ecn: None,
                    },
                    message: BytesMut::from(datagram),
                };
                let _ = pc.handle_read(msg);
            }
            for pc in self.conns.values_mut() {
                if pc.poll_timeout().is_some_and(|t| t <= self.now) {
                    let _ = pc.handle_timeout(self.now);
                }
                while pc.poll_event().is_some() {}
                while pc.poll_read().is_some() {}
                while pc.poll_write().is_some() {}
            }
        }
    }
}

impl Default for DatagramHarness {
    fn default() -> Self {
        Self::new()
    }
}

/// A session description from outside, as the SFU takes one: applied as the remote offer of a
/// fresh publish connection (a browser's or an encoder's `publish`, WHIP) and of a fresh
/// subscribe connection (a WHEP player's), each then answered. Any text: refused or answered,
/// never a panic.
pub fn apply_offer(identity: &Identity, sdp: &str) {
    let local: SocketAddr = ([127, 0, 0, 1], 50000).into();
    let now = Instant::now();
    for target in [PcTarget::Publish, PcTarget::Subscribe] {
        let link = std::sync::Arc::new(crate::rtcp::LinkReport::default());
        let Ok(mut pc) = conn::build(identity, target, conn::credentials(), local, link, now) else { return };
        let Ok(offer) = RTCSessionDescription::offer(sdp.to_owned()) else { return };
        if pc.set_remote_description(now, offer).is_ok()
            && let Ok(answer) = pc.create_answer(None)
        {
            let _ = pc.set_local_description(now, answer);
        }
        while pc.poll_event().is_some() {}
        while pc.poll_write().is_some() {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rtc::stun::attributes::ATTR_USERNAME;
    use rtc::stun::message::{BINDING_REQUEST, Message, Setter};
    use rtc::stun::textattrs::Username;

    fn record(source: u8, datagram: &[u8]) -> Vec<u8> {
        let mut r = vec![source];
        r.extend_from_slice(&(datagram.len() as u16).to_be_bytes());
        r.extend_from_slice(datagram);
        r
    }

    /// The session-description entry point takes a browser's offer and refuses broken ones.
    #[test]
    fn offers_good_and_bad_are_taken_or_refused() {
        let identity = Identity::generate().unwrap();
        apply_offer(&identity, OFFER);
        apply_offer(&identity, "v=0\r\nm=video 9");
        apply_offer(&identity, "");
    }

    /// A few thousand inputs from a fixed seed, including checks that carry the connections'
    /// real ufrags (so the address is learned and later junk reaches the connections).
    #[test]
    fn random_and_half_valid_datagrams_never_panic() {
        let mut h = DatagramHarness::new();
        assert!(h.publish_described());
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let ufrags = h.ufrags().to_vec();
        for round in 0..3000u32 {
            let mut input = Vec::new();
            if round % 10 == 0 {
                let mut m = Message::new();
                m.set_type(BINDING_REQUEST);
                m.new_transaction_id().unwrap();
                let u = &ufrags[(round as usize / 10) % ufrags.len()];
                Username::new(ATTR_USERNAME, format!("{u}:clientufrag")).add_to(&mut m).unwrap();
                m.write_header();
                input.extend(record((round % 4) as u8, &m.raw));
            }
            let len = (next() % 300) as usize;
            let first = [0u8, 1, 20, 22, 23, 128, 129, 144, 200, 64][(next() % 10) as usize];
            let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(b) = d.first_mut() {
                *b = first;
            }
            input.extend(record(((next() % 4) as u8) | if round % 7 == 0 { 0x85 } else { 0 }, &d));
            h.feed(&input);
        }
    }
}
