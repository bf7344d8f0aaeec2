//! The server's own RTP sender on a subscribe connection: it encrypts each forwarded packet
//! with the connection's SRTP context and addresses it to the selected pair itself, keeps the
//! history that answers a subscriber's NACKs, and writes the sender reports.
//!
//! Why not `RTCRtpSender::write_rtp`: that walks every packet through the core's pipeline
//! (interceptor chain, SRTP, ICE handler, demuxer, each queueing the message), which was 43 %
//! of the server's time in a 100-viewer broadcast (docs/performance.md). Here a packet costs
//! one marshal, one AES-GCM seal and one push onto the turn's `sendmmsg` batch. The core still
//! owns everything else on the connection (ICE, DTLS, the keys, RTCP from the subscriber);
//! its NACK responder and sender-report interceptors are not on subscribe connections, since
//! they would never see these packets (`engine::interceptors`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp::header::Header;
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::shared::time::SystemInstant;
use rustc_hash::FxHashMap;

/// Packets kept per video stream for retransmission: about 5 s of a 720p layer at 1.5 Mbit/s,
/// more than a NACK's round trip on any link that can still carry video.
const HISTORY: usize = 512;
/// RFC 3550 §6.2 for a few streams; what libwebrtc and the core's interceptor use.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Where a datagram goes once the turn is flushed.
pub trait Outbox {
    fn push(&mut self, to: SocketAddr, datagram: BytesMut);
}

impl Outbox for Vec<(SocketAddr, BytesMut)> {
    fn push(&mut self, to: SocketAddr, datagram: BytesMut) {
        Vec::push(self, (to, datagram));
    }
}

#[derive(Default)]
pub struct Sender {
    streams: FxHashMap<u32, Stream>,
    /// The marshalled packet before it is sealed (reused: one allocation per connection).
    scratch: Vec<u8>,
    /// Wallclock for the sender reports' NTP time, taken with the first packet.
    wall: Option<SystemInstant>,
    /// The selected pair's remote address, until the connection reads something (a client
    /// that nominates another pair does so in a check): see [`Sender::readdress`].
    peer: Option<SocketAddr>,
}

/// A sent packet as it is kept: sealing it again gives the same bytes (same key, same index).
type Held = (Header, Bytes);

struct Stream {
    clock_rate: u32,
    /// Sent packets by sequence number modulo `HISTORY` (video only: audio is not NACKed).
    history: Option<Box<[Option<Held>]>>,
    packets: u32,
    octets: u32,
    last_ts: u32,
    last_at: Instant,
    reported_at: Option<Instant>,
}

impl Sender {
    /// Seals one RTP packet for the subscriber and queues it on `out`. False when the
    /// connection cannot carry it yet (no selected pair or no keys) or SRTP refused it.
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        pc: &mut RTCPeerConnection,
        header: Header,
        payload: Bytes,
        clock_rate: u32,
        keep: bool,
        now: Instant,
        out: &mut impl Outbox,
    ) -> bool {
        let Some(peer) = self.peer(pc) else { return false };
        let Some(context) = pc.local_srtp_context() else { return false };
        let Some(sealed) = seal(&mut self.scratch, context, &header, &payload) else { return false };
        out.push(peer, sealed);
        self.wall.get_or_insert_with(|| SystemInstant::now(now));
        let s = self.streams.entry(header.ssrc).or_insert_with(|| Stream {
            clock_rate,
            history: keep.then(|| vec![None; HISTORY].into_boxed_slice()),
            packets: 0,
            octets: 0,
            last_ts: header.timestamp,
            last_at: now,
            reported_at: None,
        });
        s.packets = s.packets.wrapping_add(1);
        s.octets = s.octets.wrapping_add(payload.len() as u32);
        s.last_ts = header.timestamp;
        s.last_at = now;
        if let Some(h) = s.history.as_mut() {
            let at = usize::from(header.sequence_number) % HISTORY;
            h[at] = Some((header, payload));
        }
        true
    }

    /// Sends again the packets of `(ssrc, sequence number)` still in the history; returns how
    /// many. A copy the subscriber did get is a replay to its SRTP and is dropped there.
    pub fn resend(
        &mut self,
        pc: &mut RTCPeerConnection,
        lost: impl IntoIterator<Item = (u32, u16)>,
        out: &mut impl Outbox,
    ) -> usize {
        let Some(peer) = self.peer(pc) else { return 0 };
        let Some(context) = pc.local_srtp_context() else { return 0 };
        let mut n = 0;
        for (ssrc, seq) in lost {
            let Some(Some((header, payload))) =
                self.streams.get(&ssrc).and_then(|s| s.history.as_ref()).map(|h| &h[usize::from(seq) % HISTORY])
            else {
                continue;
            };
            if header.sequence_number != seq {
                continue; // overwritten: too old
            }
            if let Some(sealed) = seal(&mut self.scratch, context, header, payload) {
                out.push(peer, sealed);
                n += 1;
            }
        }
        n
    }

    /// Sender reports for every stream whose interval is up (a new stream's first one at
    /// once: a receiver lines audio up with video only once it has one per stream).
    pub fn reports(&mut self, pc: &mut RTCPeerConnection, now: Instant, out: &mut impl Outbox) -> usize {
        let Some(wall) = self.wall.as_ref() else { return 0 };
        let mut due = Vec::new();
        for (&ssrc, s) in &mut self.streams {
            if s.reported_at.is_some_and(|t| now.saturating_duration_since(t) < REPORT_INTERVAL) {
                continue;
            }
            s.reported_at = Some(now);
            let elapsed = now.saturating_duration_since(s.last_at).as_secs_f64();
            due.push(SenderReport {
                ssrc,
                ntp_time: wall.ntp(now),
                // The RTP clock moves on since the last packet, as the receiver's will.
                rtp_time: s.last_ts.wrapping_add((elapsed * f64::from(s.clock_rate)) as u32),
                packet_count: s.packets,
                octet_count: s.octets,
                ..Default::default()
            });
        }
        if due.is_empty() {
            return 0;
        }
        let Some(peer) = self.peer(pc) else { return 0 };
        let Some(context) = pc.local_srtp_context() else { return 0 };
        let mut n = 0;
        for sr in due {
            let sealed = sr.marshal().ok().and_then(|plain| context.encrypt_rtcp(&plain).ok());
            if let Some(sealed) = sealed {
                out.push(peer, sealed);
                n += 1;
            }
        }
        n
    }

    /// The connection read something: the selected pair may have changed, so the address is
    /// looked up again before the next send.
    pub fn readdress(&mut self) {
        self.peer = None;
    }

    fn peer(&mut self, pc: &RTCPeerConnection) -> Option<SocketAddr> {
        if self.peer.is_none() {
            self.peer = pc.selected_remote_addr();
        }
        self.peer
    }

    /// The down-track of `ssrc` is gone.
    pub fn forget(&mut self, ssrc: u32) {
        self.streams.remove(&ssrc);
    }
}

fn seal(
    scratch: &mut Vec<u8>,
    context: &mut rtc::srtp::context::Context,
    header: &Header,
    payload: &[u8],
) -> Option<BytesMut> {
    let size = header.marshal_size();
    scratch.clear();
    scratch.resize(size, 0);
    header.marshal_to(&mut scratch[..size]).ok()?;
    scratch.extend_from_slice(payload);
    match context.encrypt_rtp_with_header(scratch, header) {
        Ok(sealed) => Some(sealed),
        Err(e) => {
            tracing::debug!(error = %e, ssrc = header.ssrc, "srtp refused a packet");
            None
        }
    }
}
