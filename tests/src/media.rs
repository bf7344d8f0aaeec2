//! A real WebRTC participant for tests, on webrtc-rs: publishes synthetic VP8 and Opus RTP
//! whose payloads name their sender and count frames (so a receiver can check exactly what it
//! got), and receives everything the server offers, recording per track what arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription,
};

/// What one received track delivered.
#[derive(Clone, Debug, Default)]
pub struct Received {
    pub stream: String,
    pub track: String,
    pub packets: u64,
    /// Sender tags seen in payloads (e.g. "alice/video").
    pub tags: Vec<String>,
    pub seqs: Vec<u16>,
    pub keyframes: u64,
    pub ssrcs: Vec<u32>,
    /// Layer marks seen in payloads ("q", "h", "f", or "-" for non-simulcast), in order, once per run.
    pub layers: Vec<String>,
    /// Every packet: (sequence number, layer mark, starts a keyframe).
    pub log: Vec<(u16, String, bool)>,
    pub first_at: Option<std::time::Instant>,
    /// Send-to-receive time of packets the load probe could match (`SEND_LOG` enabled).
    pub latencies_us: Vec<u32>,
}

/// The address test peers bind their media to (127.0.0.1 unless set, e.g. 127.0.0.2 for Janus
/// in its own network namespace).
pub static BIND_IP: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// When enabled (load runs), every payload a test publisher sends is remembered with its send
/// time, and every payload a test subscriber receives is matched to it: the time the server
/// added. Payloads pass the server unchanged, so they identify packets across it.
pub static SEND_LOG: std::sync::OnceLock<SendLog> = std::sync::OnceLock::new();

#[derive(Default)]
pub struct SendLog {
    /// Payload fingerprint → the last few send times (the clip loops; publishers of the same
    /// clip are staggered).
    sent: Mutex<HashMap<u64, [Option<std::time::Instant>; 4]>>,
}

fn fingerprint(p: &[u8]) -> u64 {
    // FNV-1a over the length and up to 96 bytes: cheap, and VP8/Opus payloads differ early.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ p.len() as u64;
    for b in p.iter().take(96) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl SendLog {
    pub fn enable() {
        let _ = SEND_LOG.set(SendLog::default());
    }

    fn sent(&self, payload: &[u8]) {
        let now = std::time::Instant::now();
        let mut m = self.sent.lock().unwrap();
        let slot = m.entry(fingerprint(payload)).or_default();
        slot.rotate_right(1);
        slot[0] = Some(now);
    }

    /// Time since the latest send of this payload that is not in the future, if within 1 s.
    fn latency_us(&self, payload: &[u8]) -> Option<u32> {
        let now = std::time::Instant::now();
        let m = self.sent.lock().unwrap();
        let d = m.get(&fingerprint(payload))?.iter().flatten().map(|t| now.saturating_duration_since(*t)).min()?;
        (d < Duration::from_secs(1)).then_some(d.as_micros() as u32)
    }
}

#[derive(Default)]
pub struct PeerState {
    pub messages: Vec<Value>,
    pub received: HashMap<String, Received>,
    pub publish_connected: bool,
    pub subscribe_connected: bool,
    pub tracks_published: Vec<Value>,
    pub errors: Vec<Value>,
    /// Keyframe requests (PLI/FIR) that reached this publisher.
    pub keyframe_requests: u64,
    pub remote_tracks: Vec<Arc<dyn TrackRemote>>,
    /// The connections, to read their statistics (publish, subscribe).
    pub pcs: Vec<(&'static str, Arc<dyn PeerConnection>)>,
    /// When each signaling step and connection state happened (the load tool prints it for a
    /// slow first frame under `LOAD_DEBUG`).
    pub timeline: Vec<(std::time::Instant, String)>,
    /// The length of each subscribe answer sent, in bytes of SDP.
    pub answer_bytes: Vec<usize>,
}

/// Options for a test peer.
#[derive(Clone)]
pub struct PeerOptions {
    /// Drop every n-th outgoing RTP packet the first time it is sent (retransmissions pass):
    /// loss between this client and the server, which NACK must repair.
    pub drop_every: Option<u16>,
    /// Drop every n-th incoming RTP packet on the subscribe connection, always (a lossy
    /// downlink, as a rural clinic's): what the server's bandwidth estimate must notice.
    pub drop_incoming_every: Option<u16>,
    /// Turns the incoming loss on and off while the test runs (on by default).
    pub incoming_loss_on: Arc<std::sync::atomic::AtomicBool>,
    /// STUN/TURN servers, as the server's `/join` gives them to a client.
    pub ice_servers: Vec<rtc::peer_connection::transport::RTCIceServer>,
    /// Use relayed (TURN) candidates only, as a clinic behind a firewall that lets nothing else
    /// through.
    pub relay_only: bool,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self {
            drop_every: None,
            drop_incoming_every: None,
            incoming_loss_on: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            ice_servers: Vec::new(),
            relay_only: false,
        }
    }
}

/// Counts what the dropping interceptor threw away.
pub static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sits below the NACK responder on the write path, so first sends are dropped but the
/// responder's resends of the same packets get through.
struct Dropper {
    every: u16,
    incoming: bool,
    on: Arc<std::sync::atomic::AtomicBool>,
    seen: std::collections::HashSet<(u32, u16)>,
    read: std::collections::VecDeque<rtc::interceptor::TaggedPacket>,
    write: std::collections::VecDeque<rtc::interceptor::TaggedPacket>,
}

impl Dropper {
    fn new(every: u16, incoming: bool, on: Arc<std::sync::atomic::AtomicBool>) -> Self {
        Self { every, incoming, on, seen: Default::default(), read: Default::default(), write: Default::default() }
    }
}

impl rtc::sansio::Protocol<rtc::interceptor::TaggedPacket, rtc::interceptor::TaggedPacket, ()> for Dropper {
    type Rout = rtc::interceptor::TaggedPacket;
    type Wout = rtc::interceptor::TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = std::time::Instant;

    fn handle_read(&mut self, msg: rtc::interceptor::TaggedPacket) -> Result<(), Self::Error> {
        if self.incoming
            && self.on.load(std::sync::atomic::Ordering::Relaxed)
            && let rtc::interceptor::Packet::Rtp(p) = &msg.message.packet
            && p.header.sequence_number % self.every == 0
        {
            return Ok(());
        }
        self.read.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<rtc::interceptor::TaggedPacket> {
        self.read.pop_front()
    }
    fn handle_write(&mut self, msg: rtc::interceptor::TaggedPacket) -> Result<(), Self::Error> {
        if !self.incoming
            && let rtc::interceptor::Packet::Rtp(p) = &msg.message.packet
            && p.header.sequence_number % self.every == 0
            && self.seen.insert((p.header.ssrc, p.header.sequence_number))
        {
            DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        self.write.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<rtc::interceptor::TaggedPacket> {
        self.write.pop_front()
    }
}

impl rtc::interceptor::Interceptor for Dropper {
    fn bind_local_stream(&mut self, _: &rtc::interceptor::StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &rtc::interceptor::StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &rtc::interceptor::StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &rtc::interceptor::StreamInfo) {}
}

pub(crate) enum Ev {
    Candidate(&'static str, RTCIceCandidateInit),
    State(&'static str, RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
}

struct H {
    target: &'static str,
    tx: mpsc::UnboundedSender<Ev>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for H {
    async fn on_ice_candidate(&self, e: RTCPeerConnectionIceEvent) {
        if let Ok(c) = e.candidate.to_json() {
            let _ = self.tx.send(Ev::Candidate(self.target, c));
        }
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        let _ = self.tx.send(Ev::State(self.target, s));
    }
    async fn on_track(&self, t: Arc<dyn TrackRemote>) {
        let _ = self.tx.send(Ev::Track(t));
    }
}

pub(crate) async fn new_pc(
    target: &'static str,
    tx: mpsc::UnboundedSender<Ev>,
    opts: &PeerOptions,
) -> Arc<dyn PeerConnection> {
    let mut me = MediaEngine::default();
    me.register_default_codecs().unwrap();
    me.register_header_extension(
        rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability { uri: huizhen_sfu::AUDIO_LEVEL_URI.into() },
        RtpCodecKind::Audio,
        None,
    )
    .unwrap();
    let mut reg = register_default_interceptors(Registry::new(), &mut me).unwrap().with(
        rtc::interceptor::Slot::from(huizhen_sfu::rtcp::TAP_SLOT),
        huizhen_sfu::rtcp::KeyframeRequestTap::default(),
    );
    if target == "publish"
        && let Some(every) = opts.drop_every
    {
        reg =
            reg.with(rtc::interceptor::Slot::from(500usize), Dropper::new(every, false, opts.incoming_loss_on.clone()));
    }
    if target == "subscribe"
        && let Some(every) = opts.drop_incoming_every
    {
        reg =
            reg.with(rtc::interceptor::Slot::from(500usize), Dropper::new(every, true, opts.incoming_loss_on.clone()));
    }
    let se = SettingEngineBuilder::new().with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled).build();
    let policy = if opts.relay_only {
        rtc::peer_connection::configuration::RTCIceTransportPolicy::Relay
    } else {
        rtc::peer_connection::configuration::RTCIceTransportPolicy::All
    };
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(opts.ice_servers.clone())
        .with_ice_transport_policy(policy)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_media_engine(me)
        .with_setting_engine(se)
        .with_interceptor_registry(reg)
        .with_handler(Arc::new(H { target, tx }))
        .with_udp_addrs(vec![format!("{}:0", BIND_IP.get().map(String::as_str).unwrap_or("127.0.0.1"))])
        .build()
        .await
        .unwrap();
    Arc::new(pc)
}

/// A PeerConnection with an audio and a video transceiver, for tests that only need an offer.
pub async fn offer_only_pc() -> Arc<dyn PeerConnection> {
    let (tx, _rx) = mpsc::unbounded_channel();
    let pc = new_pc("publish", tx, &PeerOptions::default()).await;
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        let init = rtc::rtp_transceiver::RTCRtpTransceiverInit {
            direction: rtc::rtp_transceiver::RTCRtpTransceiverDirection::Recvonly,
            ..Default::default()
        };
        pc.add_transceiver_from_kind(kind, Some(init)).await.unwrap();
    }
    pc
}

/// A synthetic track to publish.
#[derive(Clone)]
pub struct Synth {
    pub track_id: String,
    pub kind: RtpCodecKind,
    /// Written into every payload so receivers can tell who sent it.
    pub tag: String,
    /// Send three layers (rid q, h, f), as a browser does with simulcast.
    pub simulcast: bool,
    /// Audio level to stamp (RFC 6464, −dBov; lower is louder), as a speaking microphone does.
    pub level: Option<u8>,
    /// Video packets per frame and payload bytes per packet (load tests make these realistic).
    pub packets_per_frame: u8,
    pub pad: usize,
    /// H.264 (constrained baseline) instead of VP8.
    pub h264: bool,
    /// Real encoded frames (VP8 or Opus, from `clip::load`) sent in a loop instead of
    /// synthetic payloads; with `simulcast`, one clip per layer (q, h, f).
    pub clip: Option<Vec<Arc<Vec<Bytes>>>>,
    /// Where in the clip to begin (publishers of the same clip are staggered so the same
    /// frame is not sent by two of them at once; the latency probe tells them apart by time).
    pub start_frame: u64,
    /// Nothing is sent while this is true (a camera whose first frame is late).
    pub held: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Synth {
    fn base(id: &str, tag: &str, kind: RtpCodecKind) -> Self {
        Self {
            track_id: id.into(),
            kind,
            tag: tag.into(),
            simulcast: false,
            level: None,
            packets_per_frame: 1,
            pad: 0,
            h264: false,
            clip: None,
            start_frame: 0,
            held: None,
        }
    }
    /// The test clip's VP8 video (640x360, 30 frames/s).
    pub fn clip_video(id: &str, tag: &str) -> Self {
        Self { clip: Some(vec![crate::clip::load().video.clone()]), ..Self::base(id, tag, RtpCodecKind::Video) }
    }
    /// The test clip's VP8 video in three simulcast layers (320x180, 640x360, 1280x720).
    pub fn clip_simulcast(id: &str, tag: &str) -> Self {
        let l = crate::clip::layers();
        Self {
            clip: Some(vec![l[0].clone(), l[1].clone(), l[2].clone()]),
            simulcast: true,
            ..Self::base(id, tag, RtpCodecKind::Video)
        }
    }
    /// The test clip's Opus audio (a 440 Hz tone).
    pub fn clip_audio(id: &str, tag: &str) -> Self {
        Self { clip: Some(vec![crate::clip::load().audio.clone()]), ..Self::base(id, tag, RtpCodecKind::Audio) }
    }
    pub fn video(id: &str, tag: &str) -> Self {
        Self::base(id, tag, RtpCodecKind::Video)
    }
    /// Three layers whose packets are 250, 500 and 1000 bytes, so their bitrates differ as
    /// real layers' do.
    pub fn simulcast_video(id: &str, tag: &str) -> Self {
        Self { simulcast: true, pad: 1000, ..Self::video(id, tag) }
    }
    pub fn h264_video(id: &str, tag: &str) -> Self {
        Self { h264: true, ..Self::video(id, tag) }
    }
    pub fn audio(id: &str, tag: &str) -> Self {
        Self::base(id, tag, RtpCodecKind::Audio)
    }
    pub fn speaking(id: &str, tag: &str, level: u8) -> Self {
        Self { level: Some(level), ..Self::audio(id, tag) }
    }
}

/// Frames between keyframes: short, so tests do not wait long for a picture to start.
const GOP: u64 = 10;

fn payload(s: &Synth, layer: &str, n: u64, part: u8) -> Bytes {
    let mut p = Vec::new();
    if s.h264 {
        // One NAL unit a packet: an IDR slice (type 5) starts a keyframe, a non-IDR slice (1) not.
        p.push(if n % GOP == 0 && part == 0 { 0x65 } else { 0x41 });
    } else if s.kind == RtpCodecKind::Video && part > 0 {
        // Continuation of the frame: S=0.
        p.extend_from_slice(&[0x00, 0x00]);
    } else if s.kind == RtpCodecKind::Video {
        // VP8 descriptor: S=1, PID=0; then the frame header's P bit: 0 = key frame.
        p.push(0x10);
        p.push(if n % GOP == 0 { 0x00 } else { 0x01 });
        p.extend_from_slice(&[0x9d, 0x01, 0x2a]);
    } else {
        p.push(0xfc);
    }
    p.extend_from_slice(format!("HZ|{}|{layer}|{n}|", s.tag).as_bytes());
    p.resize(p.len().max(s.pad), 0);
    Bytes::from(p)
}

/// Parses `HZ|tag|layer|n|` out of a payload.
pub fn parse_payload(p: &[u8]) -> Option<(String, String, u64)> {
    let start = p.windows(3).position(|w| w == b"HZ|")?;
    let text = std::str::from_utf8(&p[start..]).ok()?;
    let mut parts = text.split('|');
    parts.next();
    let tag = parts.next()?.to_owned();
    let layer = parts.next()?.to_owned();
    let n = parts.next()?.parse().ok()?;
    Some((tag, layer, n))
}

pub struct MediaPeer {
    pub state: Arc<Mutex<PeerState>>,
    out: mpsc::UnboundedSender<Value>,
    task: tokio::task::JoinHandle<()>,
}

impl MediaPeer {
    /// Connects to the signaling socket, says hello, and (once joined) publishes `tracks`.
    pub async fn join(url: &str, tracks: Vec<Synth>) -> MediaPeer {
        Self::join_with(url, tracks, PeerOptions::default()).await
    }

    pub async fn join_with(url: &str, tracks: Vec<Synth>, opts: PeerOptions) -> MediaPeer {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("signaling connect");
        let state = Arc::new(Mutex::new(PeerState::default()));
        let (out, out_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(ws, tracks, state.clone(), out_rx, opts));
        MediaPeer { state, out, task }
    }

    /// A peer driven elsewhere (the load swarm): its state, the channel its driver reads
    /// (`Null` ends it) and the driver.
    pub(crate) fn from_parts(
        state: Arc<Mutex<PeerState>>,
        out: mpsc::UnboundedSender<Value>,
        task: tokio::task::JoinHandle<()>,
    ) -> Self {
        Self { state, out, task }
    }

    pub fn send(&self, v: Value) {
        let _ = self.out.send(v);
    }

    pub fn snapshot<R>(&self, f: impl FnOnce(&PeerState) -> R) -> R {
        f(&self.state.lock().unwrap())
    }

    /// The port of the host candidate in the latest subscribe offer: which media worker (one
    /// socket and port each) the subscribe connection is on.
    pub fn subscribe_port(&self) -> Option<u16> {
        let sdp = self.snapshot(|s| {
            s.messages
                .iter()
                .rev()
                .find(|m| m["type"] == "subscribe_offer")
                .and_then(|m| m["sdp"].as_str().map(str::to_owned))
        })?;
        let line = sdp.lines().find(|l| l.starts_with("a=candidate:") && l.contains(" typ host"))?;
        // a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ host
        line.split_whitespace().nth(5)?.parse().ok()
    }

    /// Packets received from tracks whose payload tag is `tag`.
    pub fn packets_tagged(&self, tag: &str) -> u64 {
        self.snapshot(|s| s.received.values().filter(|r| r.tags.iter().any(|t| t == tag)).map(|r| r.packets).sum())
    }

    /// Packets received of the room track `key` (`<participant>/<track>`), all layers. Clip
    /// payloads carry no tags, so tracks are told apart by the ids the server gives them.
    pub fn packets_of(&self, key: &str) -> u64 {
        self.snapshot(|s| s.received.values().filter(|r| r.track == key).map(|r| r.packets).sum())
    }

    /// The type of the local ICE candidate each connection uses (`host`, `relay`, ...), by
    /// connection (`publish`, `subscribe`); empty until a pair is selected.
    pub async fn local_candidate_types(&self) -> Vec<(&'static str, String)> {
        use rtc::statistics::report::RTCStatsReportEntry as E;
        let pcs = self.snapshot(|s| s.pcs.clone());
        let mut out = Vec::new();
        for (target, pc) in pcs {
            let report = pc.get_stats(std::time::Instant::now(), rtc::statistics::StatsSelector::None).await;
            let pair = report.transport().map(|t| t.selected_candidate_pair_id.clone()).unwrap_or_default();
            let local = match report.get(&pair) {
                Some(E::IceCandidatePair(p)) => p.local_candidate_id.clone(),
                _ => continue,
            };
            // The report names the candidate entry after the pair's candidate id, with a prefix.
            let found = report.iter().find_map(|e| match e {
                E::LocalCandidate(c) if c.stats.id.ends_with(&local) => Some(c.candidate_type.to_string()),
                _ => None,
            });
            if let Some(t) = found {
                out.push((target, t));
            }
        }
        out
    }

    /// Closes both connections and the socket (a `Null` on the command channel ends the driver).
    pub async fn close(self) {
        let _ = self.out.send(Value::Null);
        let _ = self.task.await;
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn drive(
    mut ws: WsStream,
    tracks: Vec<Synth>,
    state: Arc<Mutex<PeerState>>,
    mut out: mpsc::UnboundedReceiver<Value>,
    opts: PeerOptions,
) {
    let (ev_tx, mut ev) = mpsc::unbounded_channel::<Ev>();
    let send = |v: Value| Message::text(v.to_string());
    let _ = ws.send(send(json!({ "type": "hello", "id": "hello", "version": 1 }))).await;
    let mut publisher: Option<Arc<dyn PeerConnection>> = None;
    let mut subscriber: Option<Arc<dyn PeerConnection>> = None;
    let mut writers: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let mut readers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut n = 0u64;
    // Who the room says I am, and whether I may publish: a host can give me the floor later.
    let mut me = String::new();
    let mut may_publish = false;
    let next = |n: &mut u64| {
        *n += 1;
        format!("m{n}")
    };
    loop {
        tokio::select! {
            msg = ws.next() => {
                let Some(Ok(Message::Text(t))) = msg else {
                    if matches!(msg, Some(Ok(Message::Ping(_) | Message::Pong(_)))) { continue; }
                    break;
                };
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                state.lock().unwrap().messages.push(v.clone());
                let kind = v["type"].as_str().unwrap_or("").to_owned();
                if kind == "hello" {
                    me = v["you"]["id"].as_str().unwrap_or("").to_owned();
                    may_publish = v["you"]["can_publish"] == true;
                }
                let mut given_floor = false;
                if kind == "participant_updated" && v["participant"]["id"] == me.as_str() {
                    let now = v["participant"]["can_publish"] == true;
                    given_floor = now && !may_publish;
                    may_publish = now;
                }
                if given_floor {
                    // Publish afresh, as a browser does when it is given the floor.
                    for w in writers.drain(..) { w.abort(); }
                    if let Some(pc) = publisher.take() { let _ = pc.close().await; }
                }
                let joined = v["state"] == "joined" || kind == "admitted" || given_floor;
                match kind.as_str() {
                    "hello" | "admitted" | "participant_updated" if joined && publisher.is_none() && !tracks.is_empty() => {
                        let (pc, offer, started) = publish_pc(&tracks, ev_tx.clone(), &opts, state.clone()).await;
                        writers.extend(started);
                        let id = next(&mut n);
                        let _ = ws.send(send(json!({ "type": "publish", "id": id, "sdp": offer.sdp }))).await;
                        publisher = Some(pc);
                    }
                    "publish_answer" => {
                        if let Some(pc) = &publisher {
                            let a = RTCSessionDescription::answer(v["sdp"].as_str().unwrap_or("").to_owned()).unwrap();
                            pc.set_remote_description(a).await.unwrap();
                        }
                    }
                    "subscribe_offer" => {
                        state.lock().unwrap().timeline.push((std::time::Instant::now(), "subscribe_offer".into()));
                        if subscriber.is_none() {
                            let pc = new_pc("subscribe", ev_tx.clone(), &opts).await;
                            state.lock().unwrap().pcs.push(("subscribe", pc.clone()));
                            subscriber = Some(pc);
                        }
                        let pc = subscriber.as_ref().unwrap();
                        let o = RTCSessionDescription::offer(v["sdp"].as_str().unwrap_or("").to_owned()).unwrap();
                        pc.set_remote_description(o).await.unwrap();
                        let a = pc.create_answer(None).await.unwrap();
                        pc.set_local_description(a.clone()).await.unwrap();
                        let id = next(&mut n);
                        let bytes = a.sdp.len();
                        let _ = ws.send(send(json!({ "type": "subscribe_answer", "id": id, "sdp": a.sdp }))).await;
                        let mut st = state.lock().unwrap();
                        st.timeline.push((std::time::Instant::now(), "subscribe_answer sent".into()));
                        st.answer_bytes.push(bytes);
                    }
                    "trickle" => {
                        let c: RTCIceCandidateInit = serde_json::from_value(v["candidate"].clone()).unwrap();
                        let pc = if v["target"] == "publish" { publisher.as_ref() } else { subscriber.as_ref() };
                        if let Some(pc) = pc { let _ = pc.add_ice_candidate(c).await; }
                    }
                    "track_published" => state.lock().unwrap().tracks_published.push(v["track"].clone()),
                    // webrtc-rs does not end a remote track whose m-line the server stopped
                    // using; the protocol says it is gone, so stop reading it.
                    "track_unpublished" => {
                        if let Some(r) = v["track_id"].as_str().and_then(|k| readers.remove(k)) {
                            r.abort();
                        }
                    }
                    "error" => state.lock().unwrap().errors.push(v.clone()),
                    _ => {}
                }
            }
            Some(v) = out.recv() => {
                if v.is_null() {
                    let _ = ws.close(None).await;
                    break;
                }
                let _ = ws.send(send(v)).await;
            }
            Some(e) = ev.recv() => match e {
                Ev::Candidate(target, c) => {
                    let id = next(&mut n);
                    let _ = ws.send(send(json!({ "type": "trickle", "id": id, "target": target, "candidate": c }))).await;
                }
                Ev::State(target, s) => {
                    let up = s == RTCPeerConnectionState::Connected;
                    let mut st = state.lock().unwrap();
                    st.timeline.push((std::time::Instant::now(), format!("{target} {s}")));
                    if target == "publish" { st.publish_connected = up; } else { st.subscribe_connected = up; }
                }
                Ev::Track(t) => {
                    state.lock().unwrap().remote_tracks.push(t.clone());
                    let key = remote_key(&t).await;
                    readers.insert(key.clone(), tokio::spawn(read_remote(t, key, state.clone())));
                }
            },
        }
    }
    for w in writers {
        w.abort();
    }
    for r in readers.into_values() {
        r.abort();
    }
    for pc in [publisher, subscriber].into_iter().flatten() {
        let _ = pc.close().await;
    }
}

/// A publish connection with `tracks` added and their writers started, and its offer (set as
/// the local description).
pub(crate) async fn publish_pc(
    tracks: &[Synth],
    ev_tx: mpsc::UnboundedSender<Ev>,
    opts: &PeerOptions,
    state: Arc<Mutex<PeerState>>,
) -> (Arc<dyn PeerConnection>, RTCSessionDescription, Vec<tokio::task::JoinHandle<()>>) {
    let pc = new_pc("publish", ev_tx, opts).await;
    state.lock().unwrap().pcs.push(("publish", pc.clone()));
    let mut pending_writers = Vec::new();
    for s in tracks {
        let layers: Vec<(String, u32)> = if s.simulcast {
            ["q", "h", "f"].iter().map(|r| (r.to_string(), rand_u32())).collect()
        } else {
            vec![(String::new(), rand_u32())]
        };
        let codec = if s.h264 {
            RTCRtpCodec {
                mime_type: rtc::peer_connection::configuration::media_engine::MIME_TYPE_H264.into(),
                clock_rate: 90_000,
                sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into(),
                ..Default::default()
            }
        } else if s.kind == RtpCodecKind::Video {
            RTCRtpCodec { mime_type: MIME_TYPE_VP8.into(), clock_rate: 90_000, ..Default::default() }
        } else {
            RTCRtpCodec { mime_type: MIME_TYPE_OPUS.into(), clock_rate: 48_000, channels: 2, ..Default::default() }
        };
        let codings = layers
            .iter()
            .map(|(rid, ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: rid.clone(),
                    ssrc: Some(*ssrc),
                    ..Default::default()
                },
                codec: codec.clone(),
                ..Default::default()
            })
            .collect();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "stream".into(),
            s.track_id.clone(),
            s.track_id.clone(),
            s.kind,
            codings,
        )));
        pc.add_track(track.clone() as Arc<dyn TrackLocal>).await.unwrap();
        pending_writers.push((track, s.clone(), layers));
    }
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer.clone()).await.unwrap();
    // Simulcast layers are told apart by the mid and rid header extensions (RFC 8852), which
    // the sender must stamp itself.
    let ext = SimulcastExt::from_sdp(&offer.sdp);
    let writers = pending_writers
        .into_iter()
        .map(|(track, s, layers)| tokio::spawn(write_synth(track, s, layers, ext.clone(), state.clone())))
        .collect();
    (pc, offer, writers)
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0),
    );
    (h.finish() as u32).max(1)
}

/// Extension ids and the video mid from our own offer.
#[derive(Clone, Default)]
struct SimulcastExt {
    mid_id: Option<u8>,
    rid_id: Option<u8>,
    audio_level_id: Option<u8>,
    video_mid: String,
}

impl SimulcastExt {
    fn from_sdp(sdp: &str) -> Self {
        let ext = |uri: &str| {
            sdp.lines().find_map(|l| {
                let rest = l.strip_prefix("a=extmap:")?;
                let (id, tail) = rest.split_once(' ')?;
                (tail.trim() == uri).then(|| id.parse().ok())?
            })
        };
        let mut video_mid = String::new();
        let mut in_video = false;
        for l in sdp.lines() {
            if l.starts_with("m=") {
                in_video = l.starts_with("m=video");
            } else if in_video && let Some(m) = l.strip_prefix("a=mid:") {
                video_mid = m.trim().to_owned();
                break;
            }
        }
        Self {
            mid_id: ext("urn:ietf:params:rtp-hdrext:sdes:mid"),
            rid_id: ext("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"),
            audio_level_id: ext(huizhen_sfu::AUDIO_LEVEL_URI),
            video_mid,
        }
    }
}

/// Frames between the test clip's keyframes.
const CLIP_GOP: u64 = 30;

/// 30 frames/s of video (one packet a frame per layer) or 50 packets/s of audio, once connected.
async fn write_synth(
    track: Arc<TrackLocalStaticRTP>,
    s: Synth,
    layers: Vec<(String, u32)>,
    ext: SimulcastExt,
    state: Arc<Mutex<PeerState>>,
) {
    let video = s.kind == RtpCodecKind::Video;
    // Payload types of webrtc-rs's default codec table (VP8 96, H.264 42e01f 125, Opus 111).
    let (period, step, pt) = if s.h264 {
        (Duration::from_millis(33), 3000u32, 125u8)
    } else if video {
        (Duration::from_millis(33), 3000u32, 96u8)
    } else {
        (Duration::from_millis(20), 960, 111)
    };
    let mut tick = tokio::time::interval(period);
    let (mut seqs, mut ts, mut n) = (vec![1000u16; layers.len()], 5000u32, s.start_frame);
    let mut feedback = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            ev = track.poll(), if feedback => {
                match ev {
                    Some(webrtc::media_stream::track_local::TrackLocalEvent::OnRtcpPacket(p)) => {
                        if p.iter().any(|p| huizhen_sfu::rtcp::is_keyframe_request(p.as_ref())) {
                            state.lock().unwrap().keyframe_requests += 1;
                            // A clip answers as an encoder does: the next frame sent is a
                            // keyframe (the clip has one every 30 frames).
                            if video && s.clip.is_some() {
                                n = n.div_ceil(CLIP_GOP) * CLIP_GOP;
                            }
                        }
                    }
                    Some(_) => {}
                    None => feedback = false,
                }
                continue;
            }
        }
        if !state.lock().unwrap().publish_connected
            || s.held.as_ref().is_some_and(|h| h.load(std::sync::atomic::Ordering::Relaxed))
        {
            continue;
        }
        for (i, (rid, ssrc)) in layers.iter().enumerate() {
            // A clip frame in RTP packets (RFC 7741 descriptor for VP8), or synthetic parts.
            let clip_parts: Option<Vec<Bytes>> = s.clip.as_ref().map(|clips| {
                let frames = &clips[i.min(clips.len() - 1)];
                let frame = &frames[n as usize % frames.len()];
                if !video {
                    return vec![frame.clone()];
                }
                frame
                    .chunks(1100)
                    .enumerate()
                    .map(|(k, c)| {
                        let mut p = Vec::with_capacity(c.len() + 1);
                        p.push(if k == 0 { 0x10 } else { 0x00 });
                        p.extend_from_slice(c);
                        Bytes::from(p)
                    })
                    .collect()
            });
            let parts = match &clip_parts {
                Some(c) => c.len(),
                None if video => usize::from(s.packets_per_frame.max(1)),
                None => 1,
            };
            for part in 0..parts {
                let mut header = rtp::header::Header {
                    version: 2,
                    marker: part + 1 == parts,
                    payload_type: pt,
                    sequence_number: seqs[i],
                    timestamp: ts,
                    ssrc: *ssrc,
                    ..Default::default()
                };
                if s.simulcast
                    && let (Some(mid_id), Some(rid_id)) = (ext.mid_id, ext.rid_id)
                {
                    let _ = header.set_extension(mid_id, Bytes::from(ext.video_mid.clone()));
                    let _ = header.set_extension(rid_id, Bytes::from(rid.clone()));
                }
                if let (Some(level), Some(id)) = (s.level, ext.audio_level_id) {
                    let _ = header.set_extension(id, Bytes::from(vec![0x80 | (level & 0x7f)]));
                }
                let mark = if s.simulcast { rid.as_str() } else { "-" };
                // Layers differ in size as real ones do: q a quarter of f, h a half.
                let scale = match mark {
                    "q" => 4,
                    "h" => 2,
                    _ => 1,
                };
                let body = match &clip_parts {
                    Some(c) => c[part].clone(),
                    None => payload(&Synth { pad: s.pad / scale, clip: None, ..s.clone() }, mark, n, part as u8),
                };
                if let Some(log) = SEND_LOG.get() {
                    log.sent(&body);
                }
                if track.write_rtp(rtp::Packet { header, payload: body }).await.is_err() {
                    return;
                }
                seqs[i] = seqs[i].wrapping_add(1);
            }
        }
        ts = ts.wrapping_add(step);
        n += 1;
    }
}

/// The room's id of a received track: the server names it `{participant}.{track}` on the
/// connection and `{participant}/{track}` in the room.
async fn remote_key(t: &Arc<dyn TrackRemote>) -> String {
    let (stream, track) = (t.stream_id().await, t.track_id().await);
    let local = track.strip_prefix(&format!("{stream}.")).unwrap_or(&track).to_owned();
    format!("{stream}/{local}")
}

pub(crate) async fn read_remote(t: Arc<dyn TrackRemote>, key: String, state: Arc<Mutex<PeerState>>) {
    track_of(&mut state.lock().unwrap().received, &key);
    while let Some(ev) = t.poll().await {
        if let TrackRemoteEvent::OnRtpPacket(p) = ev {
            record_packet(track_of(&mut state.lock().unwrap().received, &key), &p);
        }
    }
}

/// What arrived of track `key` (`participant/track`), named when first seen.
pub(crate) fn track_of<'a>(received: &'a mut HashMap<String, Received>, key: &str) -> &'a mut Received {
    received.entry(key.to_owned()).or_insert_with(|| Received {
        stream: key.split('/').next().unwrap_or("").to_owned(),
        track: key.to_owned(),
        ..Default::default()
    })
}

/// A packet that arrived on track `key`, read in full (payload included).
pub(crate) fn record_packet(r: &mut Received, p: &rtp::Packet) {
    record_clear(r, p.header.sequence_number, p.header.ssrc);
    if let Some(log) = SEND_LOG.get()
        && let Some(us) = log.latency_us(&p.payload)
        && r.latencies_us.len() < 200_000
    {
        r.latencies_us.push(us);
    }
    let keyframe = (huizhen_sfu::keyframe::vp8_keyframe_start(&p.payload) && p.payload.len() > 5)
        || huizhen_sfu::keyframe::h264_keyframe_start(&p.payload);
    if keyframe {
        r.keyframes += 1;
    }
    if let Some((tag, layer, _)) = parse_payload(&p.payload) {
        r.log.push((p.header.sequence_number, layer.clone(), keyframe));
        if !r.tags.contains(&tag) {
            r.tags.push(tag);
        }
        if r.layers.last() != Some(&layer) {
            r.layers.push(layer);
        }
    }
}

/// A packet that arrived on track `key`, known only by its clear header (the load swarm's
/// viewers that do not decrypt).
pub(crate) fn record_clear(r: &mut Received, seq: u16, ssrc: u32) {
    r.packets += 1;
    r.first_at.get_or_insert_with(std::time::Instant::now);
    r.seqs.push(seq);
    if !r.ssrcs.contains(&ssrc) {
        r.ssrcs.push(ssrc);
    }
}

/// An encoder publishing by WHIP (RFC 9725): `tracks` on one connection whose offer the test
/// POSTs to the server; [`WhipPeer::accept`] takes the answer. Its candidates are kept for a
/// test to trickle (`PATCH`); the server, ICE-lite, learns the address from the checks anyway.
pub struct WhipPeer {
    pub pc: Arc<dyn PeerConnection>,
    pub offer: String,
    pub state: Arc<Mutex<PeerState>>,
    pub candidates: Arc<Mutex<Vec<RTCIceCandidateInit>>>,
    writers: Vec<tokio::task::JoinHandle<()>>,
    events: tokio::task::JoinHandle<()>,
}

impl WhipPeer {
    pub async fn new(tracks: &[Synth]) -> Self {
        let state = Arc::new(Mutex::new(PeerState::default()));
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
        let (pc, offer, writers) = publish_pc(tracks, ev_tx, &PeerOptions::default(), state.clone()).await;
        let candidates = Arc::new(Mutex::new(Vec::new()));
        let (st, cands) = (state.clone(), candidates.clone());
        let events = tokio::spawn(async move {
            while let Some(ev) = ev_rx.recv().await {
                match ev {
                    Ev::State(_, s) => st.lock().unwrap().publish_connected = s == RTCPeerConnectionState::Connected,
                    Ev::Candidate(_, c) => cands.lock().unwrap().push(c),
                    Ev::Track(_) => {}
                }
            }
        });
        Self { pc, offer: offer.sdp, state, candidates, writers, events }
    }

    pub async fn accept(&self, answer: &str) {
        let a = RTCSessionDescription::answer(answer.to_owned()).unwrap();
        self.pc.set_remote_description(a).await.unwrap();
    }

    pub fn connected(&self) -> bool {
        self.state.lock().unwrap().publish_connected
    }

    pub async fn close(self) {
        for w in self.writers {
            w.abort();
        }
        self.events.abort();
        let _ = self.pc.close().await;
    }
}

/// A receive-only player watching by WHEP: one audio and one video transceiver, receive only,
/// whose offer the test POSTs; what arrives is counted by room track (`<participant>/<track>`).
pub struct WhepPeer {
    pub pc: Arc<dyn PeerConnection>,
    pub offer: String,
    pub state: Arc<Mutex<PeerState>>,
    events: tokio::task::JoinHandle<()>,
}

impl WhepPeer {
    pub async fn new() -> Self {
        let state = Arc::new(Mutex::new(PeerState::default()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let pc = new_pc("subscribe", tx, &PeerOptions::default()).await;
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            let init = rtc::rtp_transceiver::RTCRtpTransceiverInit {
                direction: rtc::rtp_transceiver::RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            };
            pc.add_transceiver_from_kind(kind, Some(init)).await.unwrap();
        }
        let offer = pc.create_offer(None).await.unwrap();
        pc.set_local_description(offer.clone()).await.unwrap();
        let st = state.clone();
        let events = tokio::spawn(async move {
            let mut readers = Vec::new();
            while let Some(ev) = rx.recv().await {
                match ev {
                    Ev::State(_, s) => st.lock().unwrap().subscribe_connected = s == RTCPeerConnectionState::Connected,
                    Ev::Track(t) => {
                        let key = remote_key(&t).await;
                        readers.push(tokio::spawn(read_remote(t, key, st.clone())));
                    }
                    Ev::Candidate(..) => {}
                }
            }
            for r in readers {
                r.abort();
            }
        });
        Self { pc, offer: offer.sdp, state, events }
    }

    pub async fn accept(&self, answer: &str) {
        let a = RTCSessionDescription::answer(answer.to_owned()).unwrap();
        self.pc.set_remote_description(a).await.unwrap();
    }

    /// Packets received of room track `key` (`<participant>/<track>`).
    pub fn packets_of(&self, key: &str) -> u64 {
        self.state.lock().unwrap().received.values().filter(|r| r.track == key).map(|r| r.packets).sum()
    }

    pub async fn close(self) {
        self.events.abort();
        let _ = self.pc.close().await;
    }
}
