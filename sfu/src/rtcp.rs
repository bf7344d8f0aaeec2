//! The RTCP a subscriber's browser sends about a down-track stops inside webrtc-rs's
//! interceptor chain unless an interceptor vouches for it. This one, last in the chain, lets
//! keyframe requests (PLI, FIR) through to the down-track, whose writer relays them upstream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// After the built-in interceptors (the highest of which sits at 13 000).
pub const TAP_SLOT: usize = 14_000;

/// What a subscriber's reports say about its link, read by the room's layer selection.
#[derive(Default, Debug)]
pub struct LinkReport {
    /// Worst RFC 3550 "fraction lost" (0–255) reported since the last read.
    pub fraction_lost: AtomicU8,
    /// Receiver reports (blocks) that arrived since the last read: none means no news, not
    /// no loss.
    pub reports: AtomicU32,
    /// Packets the remote asked to have resent (NACK) since the last read.
    pub nacked: AtomicU64,
    /// Since the last read, over every stream with an earlier report to compare with: how
    /// much its cumulative number lost grew (less when late packets arrived) and how far its
    /// highest sequence number advanced (see `bwe::Repaired`).
    pub cumulative_lost: AtomicI64,
    pub expected: AtomicU64,
    /// Latest REMB estimate in bits/s (0: none received).
    pub remb_bps: AtomicU64,
    /// Packets the remote asked to have resent, (media SSRC, sequence number), not yet
    /// answered: the connection's own sender answers them from its history
    /// (`plane::sender`). Written and taken on the worker's thread, so never contended.
    pub lost: std::sync::Mutex<Vec<(u32, u16)>>,
}

/// NACKed packets kept until the sender answers (it does after each datagram read).
const MAX_LOST: usize = 1024;

impl LinkReport {
    /// The NACKed packets not yet answered.
    pub fn take_lost(&self) -> Vec<(u32, u16)> {
        std::mem::take(&mut *self.lost.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[derive(Default)]
pub struct KeyframeRequestTap {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    link: Arc<LinkReport>,
    /// Per SSRC, the extended highest sequence number and cumulative number lost of its last
    /// report block.
    highest: std::collections::HashMap<u32, (u32, i32)>,
}

impl KeyframeRequestTap {
    pub fn new(link: Arc<LinkReport>) -> Self {
        Self { link, ..Self::default() }
    }

    fn observe(&mut self, p: &dyn rtc::rtcp::Packet) {
        let any = p.as_any();
        let reports = if let Some(rr) = any.downcast_ref::<rtc::rtcp::receiver_report::ReceiverReport>() {
            &rr.reports
        } else if let Some(sr) = any.downcast_ref::<rtc::rtcp::sender_report::SenderReport>() {
            &sr.reports
        } else {
            if let Some(remb) = any.downcast_ref::<rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate>() {
                self.link.remb_bps.store(remb.bitrate.max(0.0) as u64, Relaxed);
            } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                // Each pair names one packet and, in its bitmask, up to 16 after it.
                let mut lost = self.link.lost.lock().unwrap_or_else(|p| p.into_inner());
                let mut n = 0;
                for pair in &nack.nacks {
                    let seqs = std::iter::once(pair.packet_id).chain(
                        (0..16u16).filter(|i| pair.lost_packets & (1 << i) != 0).map(|i| pair.packet_id.wrapping_add(i + 1)),
                    );
                    for seq in seqs {
                        n += 1;
                        if lost.len() < MAX_LOST {
                            lost.push((nack.media_ssrc, seq));
                        }
                    }
                }
                self.link.nacked.fetch_add(n, Relaxed);
            }
            return;
        };
        for r in reports {
            // A block about a stream that received nothing since the last one (video stopped
            // for audio only) says 0 lost and means nothing; it must not read as a clean link.
            let lost = cumulative_lost(r.total_lost);
            let before = self.highest.insert(r.ssrc, (r.last_sequence_number, lost));
            if before.is_some_and(|(seq, _)| seq == r.last_sequence_number) {
                continue;
            }
            if let Some((seq, lost_before)) = before {
                let advanced = r.last_sequence_number.wrapping_sub(seq);
                // A sequence number going back is a restarted stream, not news about the link.
                if advanced < 1 << 31 {
                    self.link.expected.fetch_add(u64::from(advanced), Relaxed);
                    self.link.cumulative_lost.fetch_add(i64::from(lost) - i64::from(lost_before), Relaxed);
                }
            }
            self.link.fraction_lost.fetch_max(r.fraction_lost, Relaxed);
            self.link.reports.fetch_add(1, Relaxed);
        }
    }
}

/// RFC 3550's cumulative number lost is a signed 24-bit number (duplicates make it negative);
/// the parser hands over the raw bits.
fn cumulative_lost(raw: u32) -> i32 {
    ((raw << 8) as i32) >> 8
}

pub fn is_keyframe_request(p: &dyn rtc::rtcp::Packet) -> bool {
    let any = p.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for p in packets {
                self.observe(p.as_ref());
            }
            // Keyframe requests for the down-track's writer; sender reports for the published
            // track's reader (recordings line audio and video up by them).
            let wanted: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| {
                    is_keyframe_request(p.as_ref()) || p.as_any().is::<rtc::rtcp::sender_report::SenderReport>()
                })
                .cloned()
                .collect();
            if wanted.is_empty() {
                // The other interceptors have used it already; nothing for the application.
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(wanted);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequestTap {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

#[cfg(test)]
mod tap_tests {
    use super::*;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::rtcp::reception_report::ReceptionReport;

    fn rr(blocks: &[(u32, u32, u8)]) -> ReceiverReport {
        ReceiverReport {
            reports: blocks
                .iter()
                .map(|&(ssrc, last_sequence_number, fraction_lost)| ReceptionReport {
                    ssrc,
                    last_sequence_number,
                    fraction_lost,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn cumulative_loss_is_read_as_the_advance_between_reports() {
        let link = Arc::new(LinkReport::default());
        let mut tap = KeyframeRequestTap::new(link.clone());
        let block = |seq: u32, total_lost: u32| ReceiverReport {
            reports: vec![ReceptionReport { ssrc: 7, last_sequence_number: seq, total_lost, ..Default::default() }],
            ..Default::default()
        };
        let take = || (link.cumulative_lost.swap(0, Relaxed), link.expected.swap(0, Relaxed));
        tap.observe(&block(1000, 3));
        assert_eq!(take(), (0, 0), "a first report has nothing to compare with");
        tap.observe(&block(1100, 19));
        assert_eq!(take(), (16, 100), "16 of the next 100 counted lost");
        // The late ones arrived: the count goes back down.
        tap.observe(&block(1200, 5));
        assert_eq!(take(), (-14, 100));
        // Duplicates made the count negative: 24-bit two's complement.
        tap.observe(&block(1300, 0xFF_FFFE));
        assert_eq!(take(), (-7, 100));
        // A sequence number far behind is a restarted stream: no news.
        tap.observe(&block(u32::MAX, 0));
        assert_eq!(take(), (0, 0));
        // Wrapping of the extended sequence number is an advance.
        tap.observe(&block(49, 2));
        assert_eq!(take(), (2, 50));
    }

    #[test]
    fn a_report_about_a_stream_that_received_nothing_since_is_no_news() {
        let link = Arc::new(LinkReport::default());
        let mut tap = KeyframeRequestTap::new(link.clone());
        // Video (1) and audio (2) both moving; audio loses a fifth.
        tap.observe(&rr(&[(1, 100, 0), (2, 500, 51)]));
        assert_eq!((link.reports.swap(0, Relaxed), link.fraction_lost.swap(0, Relaxed)), (2, 51));
        // Video stopped: its block repeats its sequence number with 0 lost; only audio counts.
        tap.observe(&rr(&[(1, 100, 0)]));
        assert_eq!(link.reports.swap(0, Relaxed), 0, "no news");
        tap.observe(&rr(&[(1, 100, 0), (2, 550, 0)]));
        assert_eq!((link.reports.swap(0, Relaxed), link.fraction_lost.swap(0, Relaxed)), (1, 0));
    }
}
