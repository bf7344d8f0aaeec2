//! What a down-track does to each packet of the track it follows: pick the simulcast layer,
//! switch layers only on a keyframe, and keep the subscriber's sequence numbers and timestamps
//! continuous across switches so its jitter buffer and decoder never see a jump. Pure: the
//! caller hands in packet facts and `now`.

use std::time::Instant;

/// Simulcast layer index: 0 = lowest (rid `q`), 1 = `h`, 2 = `f`. Single-layer tracks use 0.
pub type Layer = u8;
/// "Send nothing": the subscriber switched this track off (audio-only on a weak link, or
/// the track is not on screen). Any real layer resumes at its next keyframe.
pub const OFF: Layer = u8::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send with these rewritten numbers.
    Forward { seq: u16, ts: u32 },
    /// Not for this subscriber (another layer, or waiting for a keyframe).
    Drop,
    /// Drop, and ask the publisher for a keyframe on this layer (the caller throttles).
    DropNeedKeyframe(Layer),
}

#[derive(Debug)]
pub struct Rewriter {
    clock_rate: u32,
    current: Option<Layer>,
    target: Layer,
    seq_offset: u16,
    ts_offset: u32,
    last_seq: u16,
    last_ts: u32,
    last_sent: Option<Instant>,
    pub switches: u64,
}

impl Rewriter {
    pub fn new(clock_rate: u32, target: Layer) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            current: None,
            target,
            seq_offset: 0,
            ts_offset: 0,
            last_seq: 0,
            last_ts: 0,
            last_sent: None,
            switches: 0,
        }
    }

    pub fn current(&self) -> Option<Layer> {
        self.current
    }

    pub fn target(&self) -> Layer {
        self.target
    }

    /// Chooses the layer to move to; the move happens at that layer's next keyframe.
    pub fn set_target(&mut self, layer: Layer) {
        self.target = layer;
        if layer == OFF {
            // Stop at once rather than at a keyframe that never comes; resuming is a switch.
            self.current = None;
        }
    }

    /// `keyframe_start`: the packet begins a keyframe (always true for audio).
    pub fn on_packet(&mut self, layer: Layer, seq: u16, ts: u32, keyframe_start: bool, now: Instant) -> Verdict {
        if self.current == Some(layer) {
            // The current layer flows until the target's keyframe arrives.
            return self.forward(seq, ts, now);
        }
        if layer != self.target {
            return Verdict::Drop;
        }
        if !keyframe_start {
            return Verdict::DropNeedKeyframe(layer);
        }
        self.switch_to(layer, seq, ts, now);
        self.forward(seq, ts, now)
    }

    /// A padding-only packet (bandwidth probing) of `layer` is not forwarded. Its sequence
    /// number must not become a hole the subscriber reports as loss and NACKs in vain: when it
    /// is the next number of the current layer, later packets move down by one.
    pub fn on_padding(&mut self, layer: Layer, seq: u16) {
        if self.current == Some(layer) && seq_newer(seq.wrapping_add(self.seq_offset), self.last_seq) {
            self.seq_offset = self.seq_offset.wrapping_sub(1);
        }
    }

    fn switch_to(&mut self, layer: Layer, seq: u16, ts: u32, now: Instant) {
        match self.last_sent {
            Some(at) => {
                // Continue right after the last packet sent, and advance the clock by the time
                // that really passed (at least one tick), so playout timing stays true.
                let elapsed = now.saturating_duration_since(at).as_secs_f64();
                let ticks = ((elapsed * f64::from(self.clock_rate)) as u32).max(1);
                self.seq_offset = self.last_seq.wrapping_add(1).wrapping_sub(seq);
                self.ts_offset = self.last_ts.wrapping_add(ticks).wrapping_sub(ts);
                self.switches += 1;
            }
            None => {
                self.seq_offset = 0;
                self.ts_offset = 0;
            }
        }
        self.current = Some(layer);
    }

    fn forward(&mut self, seq: u16, ts: u32, now: Instant) -> Verdict {
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        // Retransmissions and reordered packets must not move the "last" mark backwards.
        if self.last_sent.is_none() || seq_newer(out_seq, self.last_seq) {
            self.last_seq = out_seq;
            self.last_ts = out_ts;
            self.last_sent = Some(now);
        }
        Verdict::Forward { seq: out_seq, ts: out_ts }
    }
}

/// RFC 3550 sequence comparison with wrap-around.
pub fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn off_stops_at_once_and_resumes_continuously_on_a_keyframe() {
        let t = Instant::now();
        let mut r = Rewriter::new(90_000, 0);
        assert_eq!(r.on_packet(0, 100, 1000, true, t), Verdict::Forward { seq: 100, ts: 1000 });
        r.set_target(OFF);
        assert_eq!(r.on_packet(0, 101, 4000, false, t), Verdict::Drop);
        assert_eq!(r.on_packet(0, 102, 4000, true, t), Verdict::Drop);
        r.set_target(0);
        assert_eq!(r.on_packet(0, 150, 90_000, false, t), Verdict::DropNeedKeyframe(0));
        // The subscriber sees the next sequence number: no gap it would report as loss.
        let later = t + Duration::from_secs(1);
        assert_eq!(r.on_packet(0, 151, 93_000, true, later), Verdict::Forward { seq: 101, ts: 91_000 });
    }

    #[test]
    fn first_packet_must_be_a_keyframe() {
        let t = Instant::now();
        let mut r = Rewriter::new(90_000, 0);
        assert_eq!(r.on_packet(0, 10, 1000, false, t), Verdict::DropNeedKeyframe(0));
        assert_eq!(r.on_packet(0, 11, 1000, true, t), Verdict::Forward { seq: 11, ts: 1000 });
        assert_eq!(r.on_packet(0, 12, 4000, false, t), Verdict::Forward { seq: 12, ts: 4000 });
    }

    #[test]
    fn switch_waits_for_keyframe_and_stays_continuous() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000, 2);
        assert!(matches!(r.on_packet(2, 100, 9000, true, t0), Verdict::Forward { seq: 100, ts: 9000 }));
        assert!(matches!(r.on_packet(2, 101, 12000, false, t0), Verdict::Forward { seq: 101, .. }));
        // Low layer packets are not ours.
        assert_eq!(r.on_packet(0, 5000, 777, true, t0), Verdict::Drop);
        r.set_target(0);
        // Until the low layer's keyframe, the high layer keeps flowing and low deltas are dropped.
        assert_eq!(r.on_packet(0, 5001, 777, false, t0), Verdict::DropNeedKeyframe(0));
        assert!(matches!(r.on_packet(2, 102, 15000, false, t0), Verdict::Forward { seq: 102, ts: 15000 }));
        let t1 = t0 + Duration::from_millis(33);
        match r.on_packet(0, 5002, 900, true, t1) {
            Verdict::Forward { seq, ts } => {
                assert_eq!(seq, 103, "sequence continues without a gap");
                assert_eq!(ts, 15000 + 2970, "timestamp advances by the real time passed");
            }
            v => panic!("{v:?}"),
        }
        assert!(matches!(r.on_packet(0, 5003, 3900, false, t1), Verdict::Forward { seq: 104, ts: 20970 }));
        // Now the high layer is dropped.
        assert_eq!(r.on_packet(2, 103, 18000, false, t1), Verdict::Drop);
        assert_eq!(r.switches, 1);
    }

    #[test]
    fn padding_leaves_no_hole() {
        let t = Instant::now();
        let mut r = Rewriter::new(90_000, 0);
        assert!(matches!(r.on_packet(0, 10, 0, true, t), Verdict::Forward { seq: 10, .. }));
        r.on_padding(0, 11);
        r.on_padding(0, 12);
        assert!(matches!(r.on_packet(0, 13, 3000, false, t), Verdict::Forward { seq: 11, .. }));
        // Padding of another layer, or before anything was sent, changes nothing.
        r.on_padding(2, 500);
        assert!(matches!(r.on_packet(0, 14, 6000, false, t), Verdict::Forward { seq: 12, .. }));
    }

    #[test]
    fn wraparound_and_retransmission() {
        let t = Instant::now();
        let mut r = Rewriter::new(48_000, 0);
        assert!(matches!(r.on_packet(0, 65535, u32::MAX - 10, true, t), Verdict::Forward { seq: 65535, .. }));
        assert!(matches!(r.on_packet(0, 0, 950, false, t), Verdict::Forward { seq: 0, ts: 950 }));
        // A late retransmission maps with the same offset.
        assert!(matches!(r.on_packet(0, 65535, u32::MAX - 10, false, t), Verdict::Forward { seq: 65535, .. }));
        assert!(seq_newer(0, 65535) && !seq_newer(65535, 0));
    }
}
