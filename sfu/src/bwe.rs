//! Choosing a subscriber's simulcast layer from what it asked for and what its link carries:
//! down at once when the link cannot carry the current layer, up only after the estimate has
//! allowed the higher layer for a while (so a brief good spell does not cause flapping).

use std::time::{Duration, Instant};

use crate::forward::{Layer, OFF};

pub const UP_HOLD: Duration = Duration::from_secs(4);
/// Leave headroom: a layer fits when it needs at most this share of the estimate.
const HEADROOM: f64 = 0.85;

#[derive(Debug)]
pub struct LayerSelector {
    /// The highest layer the client wants (e.g. 0 for a thumbnail, 2 for the main view).
    pub requested_max: Layer,
    chosen: Layer,
    up_since: Option<Instant>,
}

impl LayerSelector {
    pub fn new(requested_max: Layer) -> Self {
        Self { requested_max, chosen: requested_max, up_since: None }
    }

    pub fn chosen(&self) -> Layer {
        self.chosen
    }

    /// The client asks for at most `max` (thumbnail or main view). Up-switches the user asked
    /// for happen at once (no hold); `update` still steps down to what exists and fits.
    pub fn request(&mut self, max: Layer) {
        self.requested_max = max;
        self.chosen = max;
        self.up_since = None;
    }

    /// `bitrates[l]`: measured bits/s of layer `l` (0 when the publisher does not send it).
    /// `estimate`: the subscriber's available bandwidth, if known.
    pub fn update(&mut self, now: Instant, estimate: Option<u64>, bitrates: &[u64]) -> Layer {
        if self.requested_max == OFF {
            self.chosen = OFF;
            return OFF;
        }
        let present: Vec<Layer> = (0..bitrates.len() as Layer)
            .filter(|l| bitrates[usize::from(*l)] > 0 && *l <= self.requested_max)
            .collect();
        let Some(&lowest) = present.first() else { return self.chosen };
        let fits = |l: Layer| estimate.is_none_or(|e| bitrates[usize::from(l)] as f64 <= e as f64 * HEADROOM);
        let best = present.iter().rev().copied().find(|l| fits(*l)).unwrap_or(lowest);
        if best < self.chosen || !present.contains(&self.chosen) {
            self.chosen = best;
            self.up_since = None;
        } else if best > self.chosen {
            match self.up_since {
                Some(t) if now.saturating_duration_since(t) >= UP_HOLD => {
                    self.chosen = best;
                    self.up_since = None;
                }
                Some(_) => {}
                None => self.up_since = Some(now),
            }
        } else {
            self.up_since = None;
        }
        self.chosen
    }
}

/// Loss above this means the link cannot carry what it is given (RFC 3550 fraction lost).
const LOSS_HIGH: f64 = 0.10;
/// Below this the link may be given more.
const LOSS_LOW: f64 = 0.02;

/// A loss-based estimate (the same idea as GCC's loss controller) that any client supports,
/// since every client sends receiver reports, with REMB taken as a congestion signal only.
///
/// REMB is not a measure of what the link could carry while we send little: Chromium's
/// receive-side estimator stays within about 1.5x the rate it receives. Taken as a cap, it pinned
/// a subscriber who got the low layer first (the publisher's uplink was still ramping) to that
/// layer for good. What REMB does say is "slow down": it falls when the receiver sees its queue
/// grow. So a REMB that fell since the last one and is below what we send lowers the estimate.
/// `remb`: (previous, latest) REMB in bits/s, 0 when none. `sending`: what we currently send the
/// subscriber, in bits/s.
/// `fraction_lost`: what [`link_loss`] made of the interval (None: nothing was heard about the
/// link, which is no evidence either way). `elapsed`: the interval's length.
pub fn next_estimate(
    current: Option<u64>,
    remb: (u64, u64),
    fraction_lost: Option<f64>,
    sending: u64,
    elapsed: Duration,
) -> Option<u64> {
    let (previous, latest) = remb;
    if latest > 0 && latest < previous && (latest as f64) < sending as f64 * REMB_BELOW {
        return Some(current.map_or(latest, |c| c.min(latest)));
    }
    let Some(fraction_lost) = fraction_lost else { return current };
    if fraction_lost > LOSS_HIGH && sending > 0 {
        let cut = (sending as f64 * (1.0 - 0.5 * fraction_lost)) as u64;
        return Some(current.map_or(cut, |c| c.min(cut)));
    }
    if fraction_lost < LOSS_LOW {
        // Grow 8% a second; past twice what is sent, the limit is gone.
        let grow = 1.08f64.powf(elapsed.as_secs_f64());
        return current.map(|c| (c as f64 * grow) as u64).filter(|c| *c < sending.saturating_mul(2).max(1));
    }
    current
}

/// A limit is lifted after the link has shown no congestion for this long: growing 8% a second
/// from where a loss burst left it took 15–30 s to reach a layer the link carried all along
/// (the falling REMB of a layer change pins it low too). Lifting it lets the selector climb
/// (one layer per `UP_HOLD`); if the link cannot carry more, loss or REMB brings it down again
/// at once, and the next lift waits twice as long — when the link was clean before the lift,
/// so that the loss came with the extra rate. A lift on a link that was already losing packets
/// and then lost more says nothing about its capacity (random loss): doubling then made the
/// climb after 20 s of 10% loss wait 20-60 s once the loss was gone.
const LIFT_AFTER: Duration = Duration::from_secs(5);
const LIFT_AFTER_MAX: Duration = Duration::from_secs(60);
/// A cut this soon after a lift means the lift was too early.
const LIFT_FAILED_WITHIN: Duration = Duration::from_secs(10);

/// A subscriber's downlink estimate over time: [`next_estimate`], and the lifting of a limit
/// the link no longer shows.
#[derive(Debug)]
pub struct Downlink {
    /// None: no sign of a limit.
    estimate: Option<u64>,
    /// The REMB of the previous reading: a falling REMB is the congestion signal.
    last_remb: u64,
    /// How long the link has shown no congestion (loss under 10%, no falling REMB).
    calm: Duration,
    lift_after: Duration,
    /// Whether every reading of the current calm was under `LOSS_LOW`.
    calm_clean: bool,
    /// When the limit was last lifted, and whether the link was clean before.
    lifted_at: Option<(Instant, bool)>,
}

impl Default for Downlink {
    fn default() -> Self {
        Self {
            estimate: None,
            last_remb: 0,
            calm: Duration::ZERO,
            lift_after: LIFT_AFTER,
            calm_clean: true,
            lifted_at: None,
        }
    }
}

impl Downlink {
    pub fn estimate(&self) -> Option<u64> {
        self.estimate
    }

    /// One reading over `elapsed`: `remb` is the latest REMB (0: none); see [`next_estimate`]
    /// for the others.
    pub fn update(
        &mut self,
        now: Instant,
        remb: u64,
        fraction_lost: Option<f64>,
        sending: u64,
        elapsed: Duration,
    ) -> Option<u64> {
        let previous = std::mem::replace(&mut self.last_remb, remb);
        let next = next_estimate(self.estimate, (previous, remb), fraction_lost, sending, elapsed);
        let cut = next.is_some_and(|n| self.estimate.is_none_or(|e| n < e));
        if cut {
            self.calm = Duration::ZERO;
            self.calm_clean = true;
            if self.lifted_at.is_some_and(|(t, clean)| clean && now.saturating_duration_since(t) < LIFT_FAILED_WITHIN) {
                self.lift_after = (self.lift_after * 2).min(LIFT_AFTER_MAX);
            }
            self.lifted_at = None;
        } else if fraction_lost.is_none_or(|l| l <= LOSS_HIGH) {
            self.calm += elapsed;
            self.calm_clean &= fraction_lost.is_none_or(|l| l < LOSS_LOW);
        }
        self.estimate = next;
        if self.estimate.is_some() && self.calm >= self.lift_after {
            self.estimate = None;
            self.lifted_at = Some((now, self.calm_clean));
            self.calm = Duration::ZERO;
            self.calm_clean = true;
        } else if self.lifted_at.is_some_and(|(t, _)| now.saturating_duration_since(t) >= LIFT_FAILED_WITHIN) {
            // The lift held: the next one need not wait longer.
            self.lift_after = LIFT_AFTER;
            self.lifted_at = None;
        }
        self.estimate
    }
}

/// Fewer video packets than this say too little for a NACK rate.
const MIN_SENT_FOR_NACK_RATE: u64 = 30;

/// The share of the video packets sent to a subscriber that it NACKed: its link's loss before
/// repair, a round trip after each loss (receiver reports count after repair, about once a
/// second, and read 0 while NACKs repair a 20% loss). Counts add up over readings until enough
/// packets were sent for a rate: a subscriber on the lowest layer gets too few in half a second.
#[derive(Debug, Default)]
pub struct NackWindow {
    nacked: u64,
    sent: u64,
    /// The last rate, and how many readings ago: it stands for the readings in between (a
    /// report after repair reads 0 there while a fifth of the packets are being resent).
    last: Option<(f64, u32)>,
}

/// Readings a NACK rate stands for after it was measured (about two seconds).
const NACK_RATE_READINGS: u32 = 4;

impl NackWindow {
    /// Adds a reading; the rate once the window holds enough packets (and starts a new one),
    /// else the last rate while it is recent.
    pub fn add(&mut self, nacked: u64, sent: u64) -> Option<f64> {
        self.nacked += nacked;
        self.sent += sent;
        if self.sent < MIN_SENT_FOR_NACK_RATE {
            let (rate, age) = self.last.as_mut()?;
            *age += 1;
            let rate = *rate;
            if *age > NACK_RATE_READINGS {
                self.last = None;
                return None;
            }
            return Some(rate);
        }
        let rate = (self.nacked as f64 / self.sent as f64).min(1.0);
        *self = Self { last: Some((rate, 0)), ..Self::default() };
        Some(rate)
    }
}

/// The loss a subscriber's link showed: the worse of what its receiver reports said
/// (`reported`, None when none arrived) and its NACK rate, or None when neither says anything.
pub fn link_loss(reported: Option<f64>, nack_rate: Option<f64>) -> Option<f64> {
    match (reported, nack_rate) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A falling REMB counts only when it is this far below what we send (REMB lags a layer change).
const REMB_BELOW: f64 = 0.9;

/// Loss at which a subscriber already on the lowest layers is given audio only.
const LOSS_SEVERE: f64 = 0.15;
/// Severe loss, on the lowest layers, this long before video stops.
const SEVERE_FOR: Duration = Duration::from_secs(3);
/// Loss under [`LOSS_LOW`] this long before video comes back (on the lowest layer, then up).
const CLEAR_FOR: Duration = Duration::from_secs(4);

/// Audio-only fallback for one subscriber: on a link that loses a sixth of what it is sent even
/// at the lowest layers, video only freezes and crowds out the voice, so it stops until the
/// loss has been low for a while. Fed with the loss of each interval (see [`link_loss`]).
#[derive(Debug, Default)]
pub struct Fallback {
    active: bool,
    /// How long, without a break, the loss has counted towards the next switch.
    run: Duration,
    /// The receiver reports' loss after repair in the last `SEVERE_FOR` of that run, reading
    /// by reading.
    repaired: std::collections::VecDeque<(Duration, Repaired)>,
}

/// Loss after repair at least this high over the last `SEVERE_FOR`: the loss is not all
/// repaired. NACKs alone do not tell loss from reordering (100 ms of jitter made a fifth of the
/// packets NACKed while every one arrived, and video played on).
const REPORTED_SEVERE: f64 = 0.10;

/// What the receiver reports of one reading say about the packets sent: how many more the
/// receiver counts as lost (RFC 3550's cumulative number lost, which goes down again when late
/// packets arrive) out of how many more it expected (its highest sequence number's advance).
/// Over several reports this is the loss after repair even on a link that reorders: each
/// report's own "fraction lost" counts the packets still on their way as lost (a 100 ms jitter
/// read as 16-20% in every other report while nothing was lost), and the next one does not
/// take them back.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Repaired {
    pub lost: i64,
    pub expected: u64,
}

impl Repaired {
    fn add(self, other: Self) -> Self {
        Self { lost: self.lost + other.lost, expected: self.expected + other.expected }
    }

    /// None when no packet was expected.
    pub fn fraction(self) -> Option<f64> {
        (self.expected > 0).then(|| (self.lost.max(0) as f64 / self.expected as f64).min(1.0))
    }
}

impl Fallback {
    pub fn active(&self) -> bool {
        self.active
    }

    /// `repaired`: what this reading's receiver reports said; `on_lowest`: every
    /// video the subscriber receives is already on its lowest layer (a lower layer is tried
    /// before video stops); `since`: the time since the previous reading. Returns the new state
    /// when it changes.
    pub fn update(&mut self, fraction_lost: f64, repaired: Repaired, on_lowest: bool, since: Duration) -> Option<bool> {
        // While video plays, readings come every half second and one covers at most its window
        // (the first one does not count the time since the subscriber joined). During audio
        // only, the signal is the audio's receiver report, one every 2.5-7.5 s (RFC 3550's
        // randomised interval), each about the whole time since the last: one clean report
        // over `CLEAR_FOR` is enough. Counting each as 2 s kept video off for 13-17 s after the
        // loss had ended.
        let elapsed = since.min(if self.active { CLEAR_FOR } else { Duration::from_secs(2) });
        let counts = if self.active { fraction_lost < LOSS_LOW } else { fraction_lost >= LOSS_SEVERE && on_lowest };
        if counts {
            self.run += elapsed;
            self.repaired.push_back((elapsed, repaired));
            let mut kept = self.repaired.iter().map(|(d, _)| *d).sum::<Duration>();
            while let Some((d, _)) = self.repaired.front().copied().filter(|(d, _)| kept - *d >= SEVERE_FOR) {
                kept -= d;
                self.repaired.pop_front();
            }
        } else {
            self.run = Duration::ZERO;
            self.repaired.clear();
        }
        let needed = if self.active { CLEAR_FOR } else { SEVERE_FOR };
        let unrepaired = || {
            let sum = self.repaired.iter().fold(Repaired::default(), |a, (_, r)| a.add(*r));
            sum.fraction().is_some_and(|f| f >= REPORTED_SEVERE)
        };
        if self.run < needed || (!self.active && !unrepaired()) {
            return None;
        }
        self.active = !self.active;
        self.run = Duration::ZERO;
        self.repaired.clear();
        Some(self.active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: [u64; 3] = [150_000, 500_000, 1_500_000];
    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_limit_the_link_no_longer_shows_is_lifted_and_a_failed_lift_waits_longer() {
        let t0 = Instant::now();
        let half = SEC / 2;
        let mut d = Downlink::default();
        let at = |n: u32| t0 + half * n;
        // A loss burst: cut to 540k (sending 600k at 20% loss).
        assert_eq!(d.update(at(1), 0, Some(0.2), 600_000, half), Some(540_000));
        // A clean link for 5 s: lifted (the estimate grew meanwhile, but not past twice what is
        // sent).
        let mut n = 2;
        while d.update(at(n), 0, Some(0.0), 600_000, half).is_some() {
            n += 1;
            assert!(n <= 12, "lifted within 5 s");
        }
        assert_eq!(n, 11);
        // Cut again 2 s after the lift: the extra rate brought the loss, the next lift waits 10 s.
        assert!(d.update(at(15), 0, Some(0.3), 1_500_000, half).is_some());
        let mut m = 16;
        while d.update(at(m), 0, Some(0.0), 1_500_000, half).is_some() {
            m += 1;
            assert!(m <= 40, "lifted within 10 s");
        }
        assert_eq!(m, 35, "10 s of calm, in which the estimate also grew");
    }

    #[test]
    fn a_lift_that_fails_on_a_link_already_losing_packets_does_not_wait_longer() {
        let t0 = Instant::now();
        let half = SEC / 2;
        let at = |n: u32| t0 + half * n;
        let mut d = Downlink::default();
        let mut n = 0;
        // Random loss: 6% NACKed holds the estimate but is no congestion; after 5 s it is
        // lifted, and the next reading over 10% cuts it again. Three rounds: every lift 5 s
        // after the cut before it.
        for _ in 0..3 {
            n += 1;
            assert!(d.update(at(n), 0, Some(0.2), 600_000, half).is_some(), "cut");
            let cut_at = n;
            while d.update(at(n + 1), 0, Some(0.06), 150_000, half).is_some() {
                n += 1;
            }
            n += 1;
            assert_eq!(n - cut_at, 10, "lifted 5 s after the cut");
        }
        // The loss ends: a clean link is lifted 5 s after the last cut, not 10-40 s.
        n += 1;
        assert!(d.update(at(n), 0, Some(0.2), 600_000, half).is_some());
        let cut_at = n;
        while d.update(at(n + 1), 0, Some(0.0), 600_000, half).is_some() {
            n += 1;
        }
        assert_eq!(n + 1 - cut_at, 10);
    }

    #[test]
    fn one_clean_audio_report_over_the_whole_wait_ends_audio_only() {
        let mut f = Fallback::default();
        let half = Duration::from_millis(500);
        for _ in 0..6 {
            f.update(0.25, rep(20), true, half);
        }
        assert!(f.active());
        // Receiver reports 3.5 s apart, the first still lossy: one clean one over 3.5 s is not
        // yet 4 s.
        assert_eq!(f.update(0.05, rep(5), true, Duration::from_millis(3500)), None);
        assert_eq!(f.update(0.0, rep(0), true, Duration::from_millis(3500)), None);
        assert_eq!(f.update(0.0, rep(0), true, Duration::from_millis(3500)), Some(false));
        // Back on: a report 7 s after the last, clean over all of it, ends it at once.
        for _ in 0..6 {
            f.update(0.25, rep(20), true, half);
        }
        assert!(f.active());
        assert_eq!(f.update(0.0, rep(0), true, Duration::from_secs(7)), Some(false));
        // While video plays a reading counts for at most 2 s: one late reading is not 3 s of
        // severe loss.
        assert_eq!(f.update(0.25, rep(20), true, Duration::from_secs(10)), None);
    }

    #[test]
    fn nacks_tell_of_loss_before_the_receiver_report_does() {
        let mut w = NackWindow::default();
        // 20% of 200 video packets NACKed, no report yet: the NACK rate alone.
        assert_eq!(link_loss(None, w.add(40, 200)), Some(0.2));
        // A report after repair says less than the NACKs did: the worse counts.
        assert_eq!(link_loss(Some(0.04), Some(0.2)), Some(0.2));
        assert_eq!(link_loss(Some(0.3), Some(0.2)), Some(0.3));
        // The lowest layer: 12 packets a reading. The counts add up to a rate; the last rate
        // stands for the readings in between, for a while.
        assert_eq!(w.add(2, 12), Some(0.2));
        assert_eq!(w.add(3, 12), Some(0.2));
        assert_eq!(w.add(1, 12), Some(6.0 / 36.0));
        assert_eq!(w.add(0, 12), Some(6.0 / 36.0), "a new window; the last rate stands");
        for _ in 0..3 {
            assert_eq!(w.add(0, 0), Some(6.0 / 36.0));
        }
        assert_eq!(w.add(0, 0), None, "no video for long: no rate");
        // No report and no rate: nothing known, the estimate stands.
        assert_eq!(link_loss(None, None), None);
        assert_eq!(next_estimate(Some(700_000), NO_REMB, None, 1_500_000, SEC), Some(700_000));
        // Repeated NACKs for one packet do not make the loss exceed everything.
        assert_eq!(NackWindow::default().add(500, 100), Some(1.0));
        // Half a second of growth is half a second's worth.
        let half = next_estimate(Some(200_000), NO_REMB, Some(0.0), 150_000, SEC / 2).expect("grows");
        assert!((207_800..=207_900).contains(&half), "{half}");
    }

    #[test]
    fn severe_loss_on_the_lowest_layer_falls_back_to_audio_and_a_clear_link_brings_video_back() {
        let mut f = Fallback::default();
        let sec = Duration::from_secs(1);
        // Severe loss while a higher layer is still being tried: no fallback yet.
        assert_eq!(f.update(0.3, NONE, false, sec), None);
        assert_eq!(f.update(0.2, NONE, true, sec), None);
        assert_eq!(f.update(0.2, NONE, true, sec), None);
        // A good second in between starts the count again.
        assert_eq!(f.update(0.05, NONE, true, sec), None);
        assert_eq!(f.update(0.2, NONE, true, sec), None);
        assert_eq!(f.update(0.16, rep(12), true, sec), None);
        assert_eq!(f.update(0.25, NONE, true, sec), Some(true));
        assert!(f.active());
        // Moderate loss keeps it; only 4 s under 2% end it, in half-second intervals too.
        for lost in [0.08, 0.01, 0.01, 0.01, 0.05, 0.0, 0.0, 0.0] {
            assert_eq!(f.update(lost, NONE, true, sec), None, "{lost}");
        }
        assert_eq!(f.update(0.0, NONE, true, sec / 2), None);
        assert_eq!(f.update(0.0, NONE, true, sec / 2), Some(false));
        assert!(!f.active());
    }

    #[test]
    fn nacks_without_a_bad_report_are_reordering_not_loss() {
        let mut f = Fallback::default();
        let sec = Duration::from_secs(1);
        for _ in 0..20 {
            assert_eq!(f.update(0.2, rep(0), true, sec), None);
        }
        // Jitter: a report counts the packets still on their way as lost, the next one takes
        // them back. Each report alone read 16%; together nothing was lost.
        for _ in 0..10 {
            assert_eq!(f.update(0.2, rep(16), true, sec), None);
            assert_eq!(f.update(0.2, rep(-16), true, sec), None);
        }
        assert_eq!(f.update(0.2, rep(6), true, sec), None, "6% after repair: still no");
        assert_eq!(f.update(0.2, rep(6), true, sec), None);
        // 12% over the last 3 s: not repaired.
        assert_eq!(f.update(0.2, rep(24), true, sec), Some(true));
    }

    #[test]
    fn ten_percent_loss_never_stops_video() {
        let mut f = Fallback::default();
        for _ in 0..60 {
            assert_eq!(f.update(0.10, rep(10), true, Duration::from_secs(1)), None);
        }
    }

    #[test]
    fn down_fast_up_slow() {
        let t0 = Instant::now();
        let mut s = LayerSelector::new(2);
        assert_eq!(s.update(t0, Some(3_000_000), &RATES), 2);
        // The link drops: straight down to what fits.
        assert_eq!(s.update(t0, Some(700_000), &RATES), 1);
        assert_eq!(s.update(t0, Some(100_000), &RATES), 0);
        // It recovers: not up until the estimate held for UP_HOLD.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(s.update(t1, Some(3_000_000), &RATES), 0);
        assert_eq!(s.update(t1 + Duration::from_secs(2), Some(3_000_000), &RATES), 0);
        // A dip resets the wait.
        assert_eq!(s.update(t1 + Duration::from_secs(3), Some(100_000), &RATES), 0);
        assert_eq!(s.update(t1 + Duration::from_secs(4), Some(3_000_000), &RATES), 0);
        assert_eq!(s.update(t1 + Duration::from_secs(8), Some(3_000_000), &RATES), 2);
    }

    #[test]
    fn loss_lowers_the_estimate_and_quiet_links_recover() {
        let e = next_estimate(None, NO_REMB, Some(0.3), 1_500_000, SEC).expect("loss gives an estimate");
        assert!(e < 1_500_000 * 86 / 100, "heavy loss cuts below the current send rate: {e}");
        assert_eq!(
            next_estimate(Some(900_000), NO_REMB, Some(0.05), 1_500_000, SEC),
            Some(900_000),
            "moderate loss holds"
        );
        assert_eq!(
            next_estimate(Some(1_000_000), NO_REMB, Some(0.0), 150_000, SEC),
            None,
            "far above what is sent: no limit"
        );
        assert_eq!(next_estimate(Some(200_000), NO_REMB, Some(0.0), 150_000, SEC), Some(216_000));
    }

    const NO_REMB: (u64, u64) = (0, 0);
    const NONE: Repaired = Repaired { lost: 0, expected: 0 };

    /// A reading whose reports counted `percent` of 100 packets lost.
    fn rep(percent: i64) -> Repaired {
        Repaired { lost: percent, expected: 100 }
    }

    #[test]
    fn remb_that_follows_the_incoming_rate_does_not_pin_the_low_layer() {
        // Chromium sends about 1.5x what it gets while it gets only the low layer.
        let mut e = None;
        for remb in [(0, 190_000), (190_000, 205_000), (205_000, 238_000), (238_000, 238_000)] {
            e = next_estimate(e, remb, Some(0.0), 150_000, SEC);
            assert_eq!(e, None, "REMB {remb:?} above what is sent is no limit");
        }
        let mut s = LayerSelector::new(2);
        let t0 = Instant::now();
        assert_eq!(s.update(t0, e, &[150_000, 0, 0]), 0);
        // The publisher's higher layers arrive: the subscriber gets them after the hold.
        assert_eq!(s.update(t0 + Duration::from_secs(1), e, &RATES), 0);
        assert_eq!(s.update(t0 + Duration::from_secs(1) + UP_HOLD, e, &RATES), 2);
        // Just after that switch REMB still follows the old rate: below what is sent, but not
        // falling, so not congestion.
        assert_eq!(next_estimate(None, (238_000, 250_000), Some(0.0), 1_500_000, SEC), None);
    }

    #[test]
    fn a_falling_remb_below_the_send_rate_is_congestion() {
        assert_eq!(next_estimate(None, (1_400_000, 700_000), Some(0.0), 1_500_000, SEC), Some(700_000));
        assert_eq!(next_estimate(Some(600_000), (1_400_000, 700_000), Some(0.0), 1_500_000, SEC), Some(600_000));
        // Falling, but still above what is sent (we switched down): no news.
        assert_eq!(next_estimate(None, (2_000_000, 1_800_000), Some(0.0), 1_500_000, SEC), None);
    }

    #[test]
    fn an_explicit_request_up_is_immediate() {
        let t0 = Instant::now();
        let mut s = LayerSelector::new(2);
        s.request(0);
        assert_eq!(s.update(t0, None, &RATES), 0);
        s.request(2);
        assert_eq!(s.update(t0, None, &RATES), 2, "the user asked for the main view");
        s.request(2);
        assert_eq!(s.update(t0, Some(700_000), &RATES), 1, "but not above what the link carries");
    }

    #[test]
    fn request_caps_and_missing_layers() {
        let t0 = Instant::now();
        let mut s = LayerSelector::new(0);
        assert_eq!(s.update(t0, Some(10_000_000), &RATES), 0, "a thumbnail never gets more than asked");
        let mut s = LayerSelector::new(2);
        assert_eq!(s.update(t0, None, &[150_000, 500_000, 0]), 1, "the top layer is not being sent");
        assert_eq!(s.update(t0, None, &[150_000, 0, 0]), 0);
    }
}
