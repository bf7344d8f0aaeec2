//! A published track and its down-tracks: the per-packet path. A packet read from the
//! publisher's connection is handed, by plain function calls on the worker's thread, to every
//! down-track: pick the layer, rewrite SSRC, payload type, sequence number and timestamp (so
//! layer switches are seamless), strip the publisher's header extensions (the subscriber
//! negotiated none of them) and queue it on the subscriber's connection. The worker sends
//! every queued packet of the turn together.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use tokio::sync::mpsc;

use super::io::{ConnId, Io};
use super::relay::Peer;
use crate::forward::{Layer, OFF, Rewriter, Verdict};
use crate::{SfuStats, TrackInfo, TrackKind, keyframe};

/// A tap (the recorder) writes to disk and may stall on an fsync: give it a few seconds.
pub(crate) const TAP_QUEUE: usize = 4096;
/// RFC 4585 leaves the rate to us; 500 ms keeps a storm of joiners from flooding the publisher.
const PLI_INTERVAL: Duration = Duration::from_millis(500);

/// One packet of a published track, as a tap sees it.
pub struct Inbound {
    pub layer: Layer,
    pub keyframe: bool,
    /// Padding only (a bandwidth probe): not forwarded, but its sequence number is accounted for.
    pub padding: bool,
    pub pkt: rtp::Packet,
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

pub(crate) fn rid_layer(rid: Option<&str>) -> Layer {
    match rid {
        Some("q" | "l" | "low" | "0") => 0,
        Some("h" | "m" | "mid" | "1") => 1,
        Some(_) => 2,
        None => 0,
    }
}

/// One subscriber's copy of a published track.
pub struct Down {
    pub subscriber: Arc<str>,
    /// The subscriber's subscribe connection and the sender of this track on it.
    pub conn: ConnId,
    pub sender: RTCRtpSenderId,
    pub out_ssrc: u32,
    pub payload_type: u8,
    pub rw: Rewriter,
    /// The subscribe connection is up (ICE and DTLS): packets before would be discarded.
    pub connected: bool,
    /// In an offer sent to the subscriber (waiting for its answer, or answered).
    pub offered: bool,
    /// The subscriber answered an offer with this track: before, its packets would carry an
    /// SSRC the subscriber cannot place, which a client may attribute to another track.
    pub negotiated: bool,
    /// Both the above held for the last packet; when they start to, the picture must restart
    /// on a keyframe.
    flowing: bool,
    /// Picks the layer from the subscriber's request and the layers actually arriving.
    pub selector: crate::bwe::LayerSelector,
    /// Packets this subscriber could not be sent (its connection refused them).
    pub drops: u64,
    /// Packets sent since the room last read it (the base of the subscriber's NACK rate).
    pub sent: u64,
    /// VP8 PictureID and TL0PICIDX kept continuous across layer switches.
    pictures: crate::vp8::PictureNumbers,
    /// The next packet sent starts the numbers anew (the down-track restarted).
    restarted: bool,
}

impl Down {
    pub fn new(
        subscriber: Arc<str>,
        conn: ConnId,
        sender: RTCRtpSenderId,
        out_ssrc: u32,
        payload_type: u8,
        clock_rate: u32,
        initial: Layer,
    ) -> Self {
        Self {
            subscriber,
            conn,
            sender,
            out_ssrc,
            payload_type,
            rw: Rewriter::new(clock_rate, initial),
            connected: false,
            offered: false,
            negotiated: false,
            flowing: false,
            selector: crate::bwe::LayerSelector::new(2),
            drops: 0,
            sent: 0,
            pictures: crate::vp8::PictureNumbers::default(),
            restarted: false,
        }
    }

    /// The layer to ask keyframes of for this subscriber.
    pub fn layer(&self) -> Layer {
        self.rw.current().unwrap_or(self.rw.target())
    }
}

/// Where a track's packets come from.
pub enum Source {
    /// The publisher's connection on this worker and the receiver of this track on it.
    Local { conn: ConnId, receiver: RTCRtpReceiverId },
    /// Another shard of the room (`relay`), which asks the publisher for keyframes.
    Relayed { origin: Peer, room: Arc<str> },
}

pub struct Published {
    pub info: TrackInfo,
    /// `info.id` shared, for the relayed packets that name it.
    pub key: Arc<str>,
    pub local_id: String,
    pub kind: TrackKind,
    pub codec: RTCRtpCodec,
    h264: bool,
    pub source: Source,
    /// Simulcast layer of each SSRC, as the layers open.
    layers: HashMap<u32, Layer>,
    ssrcs: [Option<u32>; 3],
    /// The highest layer seen (read by the recorder's thread).
    pub highest: Arc<AtomicU8>,
    /// When a keyframe was last asked for per layer, and whether one has arrived since: the
    /// throttle holds back only requests made while one is still on its way.
    asked: [Option<(Instant, bool)>; 3],
    bytes: [u64; 3],
    /// Bits per second per layer over the last second.
    pub bps: [u64; 3],
    /// Loudest voiced audio level (−dBov) since the room last looked.
    pub level: u64,
    audio_level_ext: Option<u8>,
    pub reports: Arc<SenderReports>,
    pub muted: bool,
    /// Not forwarded (a host muted the publisher).
    pub held: bool,
    pub downs: Vec<Down>,
    pub taps: Vec<(String, mpsc::Sender<Arc<Inbound>>)>,
}

/// What handling one packet did: how many copies went out, and which layers need a keyframe
/// (asked for by the caller, throttled, once the down-tracks are no longer borrowed); what it
/// is, for the taps and the room's other shards; `held` if it goes nowhere (a host's mute).
pub struct Forwarded {
    pub forwarded: u64,
    pub want_keyframe: [bool; 3],
    pub keyframe: bool,
    pub padding: bool,
    pub held: bool,
}

impl Published {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        info: TrackInfo,
        local_id: String,
        kind: TrackKind,
        codec: RTCRtpCodec,
        source: Source,
        audio_level_ext: Option<u8>,
        held: bool,
    ) -> Self {
        let h264 = codec.mime_type.eq_ignore_ascii_case("video/h264");
        Self {
            key: info.id.as_str().into(),
            info,
            local_id,
            kind,
            codec,
            h264,
            source,
            layers: HashMap::new(),
            ssrcs: [None; 3],
            highest: Arc::new(AtomicU8::new(0)),
            asked: [None; 3],
            bytes: [0; 3],
            bps: [0; 3],
            level: 127,
            audio_level_ext: if kind == TrackKind::Audio { audio_level_ext } else { None },
            reports: Arc::default(),
            muted: held,
            held,
            downs: Vec::new(),
            taps: Vec::new(),
        }
    }

    /// A track another shard relays: packets arrive from it, keyframes are asked of it.
    pub fn relayed(t: super::relay::RelayedTrack, room: Arc<str>) -> Self {
        let kind = t.info.kind;
        let mut p =
            Self::new(t.info, t.local_id, kind, t.codec, Source::Relayed { origin: t.origin, room }, None, false);
        p.muted = t.muted;
        p.reports = t.reports;
        p.highest = t.highest;
        p
    }

    pub fn is_local(&self) -> bool {
        matches!(self.source, Source::Local { .. })
    }

    /// The receiver of this track on its publisher's connection, when that is on this worker.
    pub fn local_receiver(&self) -> Option<(ConnId, RTCRtpReceiverId)> {
        match self.source {
            Source::Local { conn, receiver } => Some((conn, receiver)),
            Source::Relayed { .. } => None,
        }
    }

    /// A layer (SSRC) of this track opened.
    pub fn open_layer(&mut self, ssrc: u32, rid: Option<&str>) {
        if rid.is_some() {
            self.info.simulcast = true;
        }
        self.layer_at(ssrc, rid_layer(rid));
    }

    /// `ssrc` carries `layer` (a relayed track learns it from the packets).
    pub fn layer_at(&mut self, ssrc: u32, layer: Layer) {
        if self.layers.get(&ssrc) == Some(&layer) {
            return;
        }
        self.layers.insert(ssrc, layer);
        if let Some(slot) = self.ssrcs.get_mut(usize::from(layer)) {
            *slot = Some(ssrc);
        }
        let top = self.ssrcs.iter().rposition(Option::is_some).unwrap_or(0) as u8;
        self.highest.store(top, Relaxed);
    }

    pub fn layer_of(&self, ssrc: u32) -> Option<Layer> {
        self.layers.get(&ssrc).copied()
    }

    /// Turns the bytes counted since the last call into per-layer rates.
    pub fn roll(&mut self, elapsed: Duration) {
        for i in 0..3 {
            let b = std::mem::take(&mut self.bytes[i]);
            self.bps[i] = (b as f64 * 8.0 / elapsed.as_secs_f64().max(0.001)) as u64;
        }
    }

    /// One packet from the publisher (or another shard): to every down-track. Returns how many
    /// were forwarded and which layers need a keyframe (the caller asks, throttled, and hands
    /// the packet on with `hand_on`).
    pub fn on_packet(
        &mut self,
        io: &mut Io,
        layer: Layer,
        pkt: &rtp::Packet,
        now: Instant,
        stats: &SfuStats,
    ) -> Forwarded {
        let padding = pkt.payload.is_empty();
        let key = !padding
            && match self.kind {
                TrackKind::Audio => true,
                TrackKind::Video if self.h264 => keyframe::h264_keyframe_start(&pkt.payload),
                TrackKind::Video => keyframe::vp8_keyframe_start(&pkt.payload),
            };
        if let Some(id) = self.audio_level_ext
            && let Some(v) = pkt.header.get_extension(id)
            && let Some(b) = v.first()
        {
            // Keep the loudest (lowest −dBov) with voice activity; the room decays it.
            let level = u64::from(b & 0x7F);
            if b & 0x80 != 0 || level < 50 {
                self.level = self.level.min(level);
            }
        }
        let li = usize::from(layer.min(2));
        if key
            && self.kind == TrackKind::Video
            && let Some((_, answered)) = self.asked[li].as_mut()
        {
            *answered = true;
        }
        self.bytes[li] += pkt.payload.len() as u64;
        let mut out = Forwarded { forwarded: 0, want_keyframe: [false; 3], keyframe: key, padding, held: self.held };
        if self.held {
            // A host muted this publisher: nobody hears them until they unmute.
            return out;
        }
        let h = &pkt.header;
        let video = self.kind == TrackKind::Video;
        let vp8 = video && !self.h264;
        for d in &mut self.downs {
            let up = d.connected && d.negotiated;
            if !up {
                d.flowing = false;
                continue;
            }
            if !d.flowing {
                d.flowing = true;
                d.rw = Rewriter::new(self.codec.clock_rate, d.rw.target());
                d.restarted = true;
            }
            if padding {
                d.rw.on_padding(layer, h.sequence_number);
                continue;
            }
            let switches = d.rw.switches;
            match d.rw.on_packet(layer, h.sequence_number, h.timestamp, key, now) {
                Verdict::Forward { seq, ts } => {
                    let switched = d.rw.switches != switches;
                    if switched {
                        stats.layer_switches.fetch_add(1, Relaxed);
                    }
                    let payload = if vp8 {
                        d.pictures.rewrite(&pkt.payload, switched || std::mem::take(&mut d.restarted))
                    } else {
                        pkt.payload.clone()
                    };
                    let header = rtp::header::Header {
                        version: 2,
                        marker: h.marker,
                        payload_type: d.payload_type,
                        sequence_number: seq,
                        timestamp: ts,
                        ssrc: d.out_ssrc,
                        ..Default::default()
                    };
                    let sent = io.send_rtp(d.conn, header, payload, self.codec.clock_rate, video, now);
                    if sent {
                        out.forwarded += 1;
                        d.sent += 1;
                    } else {
                        d.drops += 1;
                    }
                }
                Verdict::DropNeedKeyframe(l) => out.want_keyframe[usize::from(l.min(2))] = true,
                Verdict::Drop => {}
            }
        }
        out
    }

    /// Whether anyone besides the down-tracks wants this track's packets.
    pub fn shared(&self, peers: &[Peer]) -> bool {
        !self.taps.is_empty() || (self.is_local() && !peers.is_empty())
    }

    /// A packet to the taps (the recorder), and, for a track published here, to the room's
    /// other shards.
    pub fn hand_on(&self, io: &mut Io, room: &Arc<str>, peers: &[Peer], inbound: &Arc<Inbound>, stats: &SfuStats) {
        for (_, tx) in &self.taps {
            if tx.try_send(inbound.clone()).is_err() {
                stats.dropped_packets.fetch_add(1, Relaxed);
            }
        }
        if self.is_local() {
            for p in peers {
                io.relays.push(p, room, &self.key, inbound);
            }
        }
    }

    /// Asks the publisher for a keyframe of `layer`, at most once per `PLI_INTERVAL` while
    /// one is on its way.
    pub fn request_keyframe(&mut self, io: &mut Io, layer: Layer, now: Instant, stats: &SfuStats) {
        if layer == OFF || self.kind != TrackKind::Video {
            return;
        }
        let i = usize::from(layer.min(2));
        if self.asked[i].is_some_and(|(t, answered)| !answered && now.saturating_duration_since(t) < PLI_INTERVAL) {
            return;
        }
        let Some(ssrc) = self.ssrcs[i] else { return };
        self.asked[i] = Some((now, false));
        match &self.source {
            Source::Local { conn, receiver } => {
                stats.keyframe_requests.fetch_add(1, Relaxed);
                if let Some(mut r) = io.pc(*conn).and_then(|pc| pc.rtp_receiver(*receiver)) {
                    let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc };
                    let _ = r.write_rtcp(now, vec![Box::new(pli)]);
                }
            }
            // The publisher's shard throttles again and asks it.
            Source::Relayed { origin, room } => {
                origin.send(room, super::room::Cmd::Keyframe { track: self.info.id.clone(), layer })
            }
        }
    }

    /// The down-track of `subscriber`, if any.
    pub fn down_mut(&mut self, subscriber: &str) -> Option<&mut Down> {
        self.downs.iter_mut().find(|d| &*d.subscriber == subscriber)
    }

    pub fn remove_down(&mut self, subscriber: &str) -> Option<Down> {
        let i = self.downs.iter().position(|d| &*d.subscriber == subscriber)?;
        Some(self.downs.swap_remove(i))
    }
}
