//! The media path. A reader task per published track hands each RTP packet, wrapped once in an
//! `Arc`, to every down-track's bounded queue; a writer task per down-track picks its layer,
//! rewrites SSRC, payload type, sequence number and timestamp, strips header extensions (the
//! subscriber negotiated none of the publisher's), and writes. webrtc-rs takes an owned packet
//! per write, so building that header is the one allocation left per packet per subscriber.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::forward::{Layer, OFF, Rewriter, Verdict};
use crate::{SfuStats, TrackKind, keyframe};

/// Packets a down-track may hold before it starts dropping (about 1 s of 720p video).
pub(crate) const DOWN_QUEUE: usize = 512;
/// A tap (the recorder) writes to disk and may stall on an fsync: give it a few seconds.
pub(crate) const TAP_QUEUE: usize = 4096;
/// RFC 4585 leaves the rate to us; 500 ms keeps a storm of joiners from flooding the publisher.
const PLI_INTERVAL: Duration = Duration::from_millis(500);

pub struct Inbound {
    pub layer: Layer,
    pub keyframe: bool,
    /// Padding only (a bandwidth probe): not forwarded, but its sequence number is accounted for.
    pub padding: bool,
    pub pkt: rtp::Packet,
}

#[derive(Clone)]
pub struct DownTx {
    pub subscriber: String,
    pub tx: mpsc::Sender<Arc<Inbound>>,
}

/// The down-tracks of one published track: copied on change, read without locking per packet
/// beyond one `Arc` clone.
#[derive(Default)]
pub struct Fanout {
    subs: RwLock<Arc<Vec<DownTx>>>,
}

impl Fanout {
    pub fn add(&self, d: DownTx) {
        let mut g = self.subs.write().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<DownTx> = g.as_ref().clone();
        v.push(d);
        *g = Arc::new(v);
    }

    pub fn remove(&self, subscriber: &str) {
        let mut g = self.subs.write().unwrap_or_else(|p| p.into_inner());
        let v: Vec<DownTx> = g.iter().filter(|x| x.subscriber != subscriber).cloned().collect();
        *g = Arc::new(v);
    }

    fn snapshot(&self) -> Arc<Vec<DownTx>> {
        self.subs.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The publisher's latest RTCP sender report per SSRC: its wallclock (NTP) for an RTP
/// timestamp, which is what lines a participant's audio and video up in a recording.
#[derive(Default)]
pub struct SenderReports {
    by_ssrc: Mutex<HashMap<u32, SenderClock>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderClock {
    /// NTP timestamp (RFC 3550: seconds since 1900 in the high 32 bits, fraction in the low).
    pub ntp: u64,
    pub rtp: u32,
}

impl SenderReports {
    pub fn set(&self, ssrc: u32, clock: SenderClock) {
        self.by_ssrc.lock().unwrap_or_else(|p| p.into_inner()).insert(ssrc, clock);
    }

    pub fn snapshot(&self) -> Vec<(u32, SenderClock)> {
        self.by_ssrc.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(s, c)| (*s, *c)).collect()
    }
}

/// Asks the publisher for keyframes: one request per layer at a time, repeated after
/// `PLI_INTERVAL` if no keyframe came.
pub struct Keyframes {
    remote: Arc<dyn TrackRemote>,
    ssrcs: Mutex<[Option<u32>; 3]>,
    /// When a keyframe was last asked for, and whether one has arrived since: the throttle
    /// holds back only requests made while one is still on its way.
    last: Mutex<[Option<(Instant, bool)>; 3]>,
    stats: Arc<SfuStats>,
}

impl Keyframes {
    pub fn new(remote: Arc<dyn TrackRemote>, stats: Arc<SfuStats>) -> Arc<Self> {
        Arc::new(Self { remote, ssrcs: Mutex::new([None; 3]), last: Mutex::new([None; 3]), stats })
    }

    fn set_ssrc(&self, layer: Layer, ssrc: u32) {
        if let Some(slot) = self.ssrcs.lock().unwrap_or_else(|p| p.into_inner()).get_mut(usize::from(layer)) {
            *slot = Some(ssrc);
        }
    }

    /// A keyframe of `layer` arrived: a subscriber that starts now may ask again at once.
    fn arrived(&self, layer: Layer) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, answered)) = last.get_mut(usize::from(layer)).and_then(Option::as_mut) {
            *answered = true;
        }
    }

    /// The highest simulcast layer seen so far (0 when none or not simulcast).
    pub fn highest_layer(&self) -> Layer {
        let ssrcs = self.ssrcs.lock().unwrap_or_else(|p| p.into_inner());
        ssrcs.iter().rposition(Option::is_some).map_or(0, |i| i as Layer)
    }

    pub fn request(self: &Arc<Self>, layer: Layer) {
        let now = Instant::now();
        let i = usize::from(layer.min(2));
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if last[i].is_some_and(|(t, answered)| !answered && now.saturating_duration_since(t) < PLI_INTERVAL) {
                return;
            }
            last[i] = Some((now, false));
        }
        let Some(ssrc) = self.ssrcs.lock().unwrap_or_else(|p| p.into_inner())[i] else { return };
        self.stats.keyframe_requests.fetch_add(1, Relaxed);
        let me = self.clone();
        tokio::spawn(async move {
            let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc };
            let _ = me.remote.write_rtcp(vec![Box::new(pli)]).await;
        });
    }
}

/// Bits per second per layer, measured by the reader, read by the layer selectors.
#[derive(Default)]
pub struct LayerRates {
    bytes: [AtomicU64; 3],
    pub bps: [AtomicU64; 3],
}

impl LayerRates {
    /// Called about once a second: turns the bytes counted since the last call into a rate.
    pub fn roll(&self, elapsed: Duration) {
        for i in 0..3 {
            let b = self.bytes[i].swap(0, Relaxed);
            let bps = (b as f64 * 8.0 / elapsed.as_secs_f64().max(0.001)) as u64;
            self.bps[i].store(bps, Relaxed);
        }
    }

    pub fn snapshot(&self) -> [u64; 3] {
        [self.bps[0].load(Relaxed), self.bps[1].load(Relaxed), self.bps[2].load(Relaxed)]
    }
}

fn rid_layer(rid: Option<&str>) -> Layer {
    match rid {
        Some("q" | "l" | "low" | "0") => 0,
        Some("h" | "m" | "mid" | "1") => 1,
        Some(_) => 2,
        None => 0,
    }
}

/// Reads one published track until its PeerConnection closes or the task is aborted.
/// Audio levels (RFC 6464, negotiated extension `audio_level_ext`) go to `levels`.
#[allow(clippy::too_many_arguments)]
pub async fn read_track(
    remote: Arc<dyn TrackRemote>,
    kind: TrackKind,
    mime: String,
    fanout: Arc<Fanout>,
    keyframes: Arc<Keyframes>,
    rates: Arc<LayerRates>,
    simulcast: Arc<AtomicBool>,
    audio_level: Arc<AtomicU64>,
    audio_level_ext: Option<u8>,
    reports: Arc<SenderReports>,
    held: Arc<AtomicBool>,
    stats: Arc<SfuStats>,
) {
    let h264 = mime.eq_ignore_ascii_case("video/h264");
    let mut layers: HashMap<u32, Layer> = HashMap::new();
    while let Some(ev) = remote.poll().await {
        match ev {
            TrackRemoteEvent::OnOpen(init) => {
                let layer = rid_layer(init.rid.as_deref());
                if init.rid.is_some() {
                    simulcast.store(true, Relaxed);
                }
                layers.insert(init.ssrc, layer);
                keyframes.set_ssrc(layer, init.ssrc);
            }
            TrackRemoteEvent::OnRtpPacket(pkt) => {
                let padding = pkt.payload.is_empty();
                let ssrc = pkt.header.ssrc;
                let layer = match layers.get(&ssrc) {
                    Some(l) => *l,
                    None => {
                        // The OnOpen of this layer was lost (full queue) or never sent.
                        let rid = remote.rid(ssrc).await;
                        let l = rid_layer(rid.as_deref());
                        if rid.is_some() {
                            simulcast.store(true, Relaxed);
                        }
                        layers.insert(ssrc, l);
                        keyframes.set_ssrc(l, ssrc);
                        l
                    }
                };
                let key = !padding
                    && match kind {
                        TrackKind::Audio => true,
                        TrackKind::Video if h264 => keyframe::h264_keyframe_start(&pkt.payload),
                        TrackKind::Video => keyframe::vp8_keyframe_start(&pkt.payload),
                    };
                if let Some(id) = audio_level_ext
                    && let Some(v) = pkt.header.get_extension(id)
                    && let Some(b) = v.first()
                {
                    // Keep the loudest (lowest -dBov) with voice activity; the room decays it.
                    let level = u64::from(b & 0x7F);
                    let voiced = b & 0x80 != 0 || level < 50;
                    if voiced {
                        audio_level.fetch_min(level, Relaxed);
                    }
                }
                if key && kind == TrackKind::Video {
                    keyframes.arrived(layer);
                }
                rates.bytes[usize::from(layer.min(2))].fetch_add(pkt.payload.len() as u64, Relaxed);
                if held.load(Relaxed) {
                    // A host muted this publisher: nobody hears them until they unmute.
                    continue;
                }
                let inbound = Arc::new(Inbound { layer, keyframe: key, padding, pkt });
                for d in fanout.snapshot().iter() {
                    if d.tx.try_send(inbound.clone()).is_err() {
                        stats.dropped_packets.fetch_add(1, Relaxed);
                    }
                }
            }
            TrackRemoteEvent::OnRtcpPacket(pkts) => {
                for p in &pkts {
                    if let Some(sr) = p.as_any().downcast_ref::<rtc::rtcp::sender_report::SenderReport>() {
                        reports.set(sr.ssrc, SenderClock { ntp: sr.ntp_time, rtp: sr.rtp_time });
                    }
                }
            }
            _ => {}
        }
    }
}

/// Per down-track controls the room holds.
pub struct DownControl {
    pub target: watch::Sender<Layer>,
}

/// Writes one down-track until its queue closes (unsubscribed) or the write fails (closed PC).
#[allow(clippy::too_many_arguments)]
pub async fn write_track(
    mut rx: mpsc::Receiver<Arc<Inbound>>,
    local: Arc<TrackLocalStaticRTP>,
    out_ssrc: u32,
    payload_type: u8,
    clock_rate: u32,
    mut target: watch::Receiver<Layer>,
    connected: Arc<AtomicBool>,
    negotiated: Arc<AtomicBool>,
    keyframes: Arc<Keyframes>,
    stats: Arc<SfuStats>,
) {
    let mut rw = Rewriter::new(clock_rate, *target.borrow());
    let mut was_connected = false;
    let mut feedback_open = true;
    loop {
        let inb = tokio::select! {
            inb = rx.recv() => match inb {
                Some(inb) => inb,
                None => break,
            },
            // The subscriber's keyframe requests (PLI/FIR, let through by the RTCP tap).
            ev = local.poll(), if feedback_open => {
                match ev {
                    Some(webrtc::media_stream::track_local::TrackLocalEvent::OnRtcpPacket(pkts)) => {
                        let layer = rw.current().unwrap_or(rw.target());
                        if layer != OFF && pkts.iter().any(|p| crate::rtcp::is_keyframe_request(p.as_ref())) {
                            keyframes.request(layer);
                        }
                    }
                    Some(_) => {}
                    None => feedback_open = false,
                }
                continue;
            }
        };
        let up = connected.load(Relaxed) && negotiated.load(Relaxed);
        if !up {
            // Packets before DTLS completes are discarded by the stack, and packets before the
            // subscriber has answered the offer with this track carry an SSRC it cannot place;
            // the picture has to start on a keyframe sent after both.
            was_connected = false;
            continue;
        }
        if !was_connected {
            was_connected = true;
            rw = Rewriter::new(clock_rate, *target.borrow_and_update());
        }
        if target.has_changed().unwrap_or(false) {
            let t = *target.borrow_and_update();
            rw.set_target(t);
            if t != OFF {
                keyframes.request(t);
            }
        }
        let switches = rw.switches;
        let h = &inb.pkt.header;
        if inb.padding {
            rw.on_padding(inb.layer, h.sequence_number);
            continue;
        }
        match rw.on_packet(inb.layer, h.sequence_number, h.timestamp, inb.keyframe, Instant::now()) {
            Verdict::Forward { seq, ts } => {
                if rw.switches != switches {
                    stats.layer_switches.fetch_add(1, Relaxed);
                }
                let header = rtp::header::Header {
                    version: 2,
                    marker: h.marker,
                    payload_type,
                    sequence_number: seq,
                    timestamp: ts,
                    ssrc: out_ssrc,
                    ..Default::default()
                };
                let pkt = rtp::Packet { header, payload: inb.pkt.payload.clone() };
                if local.write_rtp(pkt).await.is_err() {
                    break;
                }
                stats.forwarded_packets.fetch_add(1, Relaxed);
            }
            Verdict::DropNeedKeyframe(layer) => keyframes.request(layer),
            Verdict::Drop => {}
        }
    }
}
