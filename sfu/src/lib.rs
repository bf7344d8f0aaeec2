//! Huizhen's selective forwarding unit: rooms of participants who publish audio and video over
//! one WebRTC PeerConnection and receive everyone else's over a second one. It knows nothing of
//! HTTP, JSON tokens or the schedule; the signaling layer drives it through [`Sfu`] and
//! [`Participant`] and relays [`SfuEvent`]s.
//!
//! The media plane drives webrtc-rs's sans-IO core (`rtc`) itself: media workers, each one
//! thread with one UDP socket, own the rooms placed on them and all their connections; a
//! packet is forwarded to every subscriber by plain function calls inside the worker's loop,
//! and a turn's writes leave together (`plane`).

pub mod bwe;
pub use engine::{AUDIO_LEVEL_URI, media_engine};
mod engine;
pub mod forward;
pub mod keyframe;
pub mod placement;
pub mod plane;
pub mod rtcp;
pub mod vp8;

pub use plane::track::{Inbound, SenderClock, SenderReports};

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use rtc::peer_connection::transport::RTCIceCandidateInit as IceCandidate;

use plane::room::Cmd;
use plane::worker::{WorkerCmd, WorkerHandle};

/// Network and timing settings.
#[derive(Clone, Debug)]
pub struct SfuConfig {
    /// The address media sockets bind to (the first; it is every connection's host
    /// candidate, so it must be concrete, not the unspecified address).
    pub bind_ips: Vec<IpAddr>,
    /// UDP port of the first media worker; worker *i* listens on `udp_port + i`. 0: any free
    /// port per worker (tests).
    pub udp_port: u16,
    /// Media workers (threads, one socket each). 0: one per CPU core.
    pub workers: usize,
    /// Public addresses to announce instead of the bound ones (NAT 1:1), pairwise with `bind_ips`.
    pub announce_ips: Vec<IpAddr>,
    /// A PeerConnection that is not connected this long after its offer is removed.
    pub connect_timeout: Duration,
    /// Published tracks per participant (two cameras, screen and microphone is normal).
    pub max_tracks_per_participant: usize,
    /// Members a room's home worker carries before further receive-only members go to other
    /// workers (0: a room stays on one worker).
    pub viewers_per_worker: usize,
}

impl Default for SfuConfig {
    fn default() -> Self {
        Self {
            bind_ips: vec![IpAddr::from([127, 0, 0, 1])],
            udp_port: 0,
            workers: 1,
            announce_ips: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            max_tracks_per_participant: 6,
            viewers_per_worker: 0,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub credential: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediaGrants {
    pub publish: bool,
    pub subscribe: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcTarget {
    Publish,
    Subscribe,
}

impl PcTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            PcTarget::Publish => "publish",
            PcTarget::Subscribe => "subscribe",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    Excellent,
    Good,
    Poor,
}

impl Quality {
    /// From the fraction of packets the participant reports lost.
    pub fn from_loss(lost: f64) -> Self {
        if lost < 0.02 {
            Quality::Excellent
        } else if lost < 0.10 {
            Quality::Good
        } else {
            Quality::Poor
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    Audio,
    Video,
}

/// What subscribers are told about a published track.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrackInfo {
    /// `{participant}/{track}`: unique in the room; the subscriber's stream id is the participant.
    pub id: String,
    pub participant: String,
    pub kind: TrackKind,
    pub codec: String,
    pub simulcast: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SfuEvent {
    /// The server offers (or re-offers) the subscribe PeerConnection.
    SubscribeOffer {
        sdp: String,
    },
    IceCandidate {
        target: PcTarget,
        candidate: IceCandidate,
    },
    TrackPublished(TrackInfo),
    TrackUnpublished {
        id: String,
        participant: String,
    },
    /// The publisher muted or unmuted a track (it keeps its place; no renegotiation).
    TrackMuted {
        id: String,
        participant: String,
        muted: bool,
    },
    /// A participant's link got better or worse (from what its receiver reports say). Sent to
    /// that participant only: who else is told is the room's rule (signaling passes it on).
    ConnectionQuality {
        participant: String,
        quality: Quality,
    },
    /// This subscriber's link loses too much even at the lowest layers: video stops (audio
    /// only) until the loss has been low for a while (`active: false`).
    AudioOnly {
        active: bool,
    },
    /// The loudest speaker changed (None: silence).
    ActiveSpeaker {
        participant: Option<String>,
    },
    /// The SFU removed this participant's media (timeout or failure); signaling may rejoin.
    Closed {
        reason: &'static str,
    },
}

/// What a tap (an in-process hidden subscriber: the recorder) is told.
pub enum TapEvent {
    /// A published track, already flowing into `packets`.
    Track(TapTrack),
    /// The track was unpublished; its `packets` channel ends too.
    TrackEnded { id: String },
}

/// One published track as a tap sees it: every packet of every simulcast layer (tagged with
/// its layer and whether it starts a keyframe), and the publisher's sender reports.
pub struct TapTrack {
    pub info: TrackInfo,
    pub clock_rate: u32,
    pub channels: u16,
    pub packets: mpsc::Receiver<Arc<Inbound>>,
    pub reports: Arc<SenderReports>,
    pub keyframes: KeyframeRequester,
}

/// Asks the track's publisher for a keyframe (throttled like every other request).
#[derive(Clone)]
pub struct KeyframeRequester {
    worker: tokio::sync::mpsc::WeakSender<WorkerCmd>,
    room: Arc<str>,
    track: String,
    highest: Arc<AtomicU8>,
}

impl KeyframeRequester {
    pub(crate) fn new(
        worker: tokio::sync::mpsc::WeakSender<WorkerCmd>,
        room: Arc<str>,
        track: String,
        highest: Arc<AtomicU8>,
    ) -> Self {
        Self { worker, room, track, highest }
    }

    pub fn request(&self, layer: forward::Layer) {
        if let Some(tx) = self.worker.upgrade() {
            // A full queue drops the request; the tap asks again when it still needs one.
            let cmd = Cmd::Keyframe { track: self.track.clone(), layer };
            let _ = tx.try_send(WorkerCmd::Room { room: self.room.clone(), cmd });
        }
    }

    /// The highest simulcast layer seen so far (0 when none or not simulcast).
    pub fn highest_layer(&self) -> forward::Layer {
        self.highest.load(Ordering::Relaxed)
    }
}

/// A tap on one room; `close` detaches it (the room may then retire).
pub struct Tap {
    worker: mpsc::Sender<WorkerCmd>,
    room: Arc<str>,
    name: String,
}

impl Tap {
    pub async fn close(self) {
        let (reply, wait) = oneshot::channel();
        let cmd = Cmd::Untap { name: self.name, reply };
        if self.worker.send(WorkerCmd::Room { room: self.room, cmd }).await.is_ok() {
            let _ = wait.await;
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SfuError {
    #[error("this participant may not publish")]
    PublishNotAllowed,
    #[error("this participant may not subscribe")]
    SubscribeNotAllowed,
    #[error("invalid session description: {0}")]
    InvalidSdp(String),
    #[error("invalid ICE candidate: {0}")]
    InvalidCandidate(String),
    #[error("no offer is waiting for an answer")]
    NoPendingOffer,
    #[error("too many tracks")]
    TooManyTracks,
    #[error("no such track")]
    UnknownTrack,
    #[error("the participant is not in the room")]
    Gone,
    #[error("there is nothing to watch: the source publishes no camera or microphone")]
    NothingToWatch,
    #[error("media engine: {0}")]
    Internal(String),
}

impl SfuError {
    /// Stable code for the signaling protocol.
    pub fn code(&self) -> &'static str {
        match self {
            SfuError::PublishNotAllowed => "publish_not_allowed",
            SfuError::SubscribeNotAllowed => "subscribe_not_allowed",
            SfuError::InvalidSdp(_) => "invalid_sdp",
            SfuError::InvalidCandidate(_) => "invalid_candidate",
            SfuError::NoPendingOffer => "no_pending_offer",
            SfuError::TooManyTracks => "too_many_tracks",
            SfuError::UnknownTrack => "unknown_track",
            SfuError::Gone => "media_gone",
            SfuError::NothingToWatch => "nothing_to_watch",
            SfuError::Internal(_) => "media_error",
        }
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> SfuError {
    SfuError::Internal(e.to_string())
}

/// Counters that tests and `/metrics` read: they show resources really being freed.
#[derive(Default, Debug)]
pub struct SfuStats {
    pub rooms: AtomicUsize,
    pub peer_connections: AtomicUsize,
    pub published_tracks: AtomicUsize,
    pub down_tracks: AtomicUsize,
    /// WHEP offers waiting for their source's first packets (at most two seconds each).
    pub watches_waiting: AtomicUsize,
    pub forwarded_packets: std::sync::atomic::AtomicU64,
    pub dropped_packets: std::sync::atomic::AtomicU64,
    pub keyframe_requests: std::sync::atomic::AtomicU64,
    pub layer_switches: std::sync::atomic::AtomicU64,
    /// Packets sent again because a subscriber asked (NACK) and they were still held.
    pub retransmitted_packets: std::sync::atomic::AtomicU64,
    /// Datagrams no connection on a worker's socket claimed (junk, unknown ufrag or address).
    pub unrouted_datagrams: std::sync::atomic::AtomicU64,
    /// How long the media workers' turns took: a packet that arrives while a turn runs waits
    /// for it, so this is what a join storm or a slow room adds to everyone's latency.
    pub turns: TurnHistogram,
    /// The CPU time the worker thread spent in those turns. Far below `turns`: the thread was
    /// waiting for the core (another thread of the process or machine had it), not working.
    pub turns_cpu: TurnHistogram,
    /// Datagrams the socket would not take, by (room, participant, connection): one
    /// subscriber's losses are its own, the others' packets still go out. Kept while the
    /// connection lives; written only when a send fails, so the lock is off the packet path.
    pub send_drops: std::sync::Mutex<std::collections::BTreeMap<(String, String, &'static str), u64>>,
}

/// Upper bounds (µs) of the turn-duration buckets; a last, unbounded one follows.
pub const TURN_BUCKETS_US: [u64; 9] = [250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000];

/// A Prometheus-style histogram of worker turn durations, lock-free (every worker writes it).
#[derive(Default, Debug)]
pub struct TurnHistogram {
    /// Turns per bucket (not cumulative), the last one for turns over every bound.
    buckets: [std::sync::atomic::AtomicU64; TURN_BUCKETS_US.len() + 1],
    sum_us: std::sync::atomic::AtomicU64,
}

impl TurnHistogram {
    pub fn observe(&self, took: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let i = TURN_BUCKETS_US.iter().position(|b| us <= *b).unwrap_or(TURN_BUCKETS_US.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Turns per bucket (not cumulative) and the total time in µs.
    pub fn snapshot(&self) -> ([u64; TURN_BUCKETS_US.len() + 1], u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (std::array::from_fn(|i| self.buckets[i].load(Relaxed)), self.sum_us.load(Relaxed))
    }
}

impl SfuStats {
    /// `n` datagrams of this connection were not sent.
    pub fn note_send_drops(&self, room: &str, participant: &str, target: PcTarget, n: u64) {
        self.dropped_packets.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        let mut m = self.send_drops.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((room.to_owned(), participant.to_owned(), target.as_str())).or_default() += n;
    }

    /// The connection is gone: its counter goes with it.
    pub fn forget_send_drops(&self, room: &str, participant: &str, target: PcTarget) {
        let mut m = self.send_drops.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(&(room.to_owned(), participant.to_owned(), target.as_str()));
    }

    /// (room, participant, connection, datagrams dropped), for `/metrics`.
    pub fn send_drops(&self) -> Vec<(String, String, &'static str, u64)> {
        let m = self.send_drops.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|((r, p, t), n)| (r.clone(), p.clone(), *t, *n)).collect()
    }
}

#[derive(Clone)]
pub struct Sfu {
    inner: Arc<SfuInner>,
}

struct SfuInner {
    config: Arc<SfuConfig>,
    workers: Vec<WorkerHandle>,
    stats: Arc<SfuStats>,
    /// Where each room's members are. Async: the links a change asks for are sent while it is
    /// held, so a shard's unlink and its next link reach the workers in the order they were
    /// decided.
    placement: tokio::sync::Mutex<placement::Placement>,
}

impl Sfu {
    /// Starts the media workers, each with its socket bound.
    pub fn new(config: SfuConfig) -> Result<Self, SfuError> {
        let config = Arc::new(config);
        let stats = Arc::new(SfuStats::default());
        let identity = plane::conn::Identity::generate()?;
        let n = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let workers = (0..n)
            .map(|i| plane::worker::spawn(i, config.clone(), identity.clone(), stats.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let placement = tokio::sync::Mutex::new(placement::Placement::new(workers.len(), config.viewers_per_worker));
        Ok(Self { inner: Arc::new(SfuInner { config, workers, stats, placement }) })
    }

    pub fn stats(&self) -> &SfuStats {
        &self.inner.stats
    }

    pub fn config(&self) -> &SfuConfig {
        &self.inner.config
    }

    /// The media sockets' addresses, one per worker.
    pub fn media_addrs(&self) -> Vec<SocketAddr> {
        self.inner.workers.iter().map(|w| w.local).collect()
    }

    /// The index of the worker a room lives on: fixed by its id, so every command for the
    /// room meets it there.
    pub fn worker_of(&self, room: &str) -> usize {
        let mut h = std::hash::DefaultHasher::new();
        room.hash(&mut h);
        (h.finish() % self.inner.workers.len() as u64) as usize
    }

    fn worker(&self, room: &str) -> &WorkerHandle {
        &self.inner.workers[self.worker_of(room)]
    }

    async fn ask<T>(
        worker: &mpsc::Sender<WorkerCmd>,
        room: &Arc<str>,
        make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Cmd,
    ) -> Result<T, SfuError> {
        let (reply, wait) = oneshot::channel();
        worker.send(WorkerCmd::Room { room: room.clone(), cmd: make(reply) }).await.map_err(|_| SfuError::Gone)?;
        wait.await.map_err(|_| SfuError::Gone)?
    }

    /// Enters a room's media. Events for this participant arrive on `events`.
    pub async fn join(
        &self,
        room: &str,
        participant: &str,
        grants: MediaGrants,
        events: mpsc::UnboundedSender<SfuEvent>,
    ) -> Result<Participant, SfuError> {
        let home = self.worker_of(room);
        let room: Arc<str> = room.into();
        let id = participant.to_owned();
        let mut placement = self.inner.placement.lock().await;
        let placed = placement.spreads();
        let index = if placed {
            let (index, links) = placement.join(&room, home, &id, grants.publish);
            if let Some(l) = links {
                self.link(&room, &l, true).await;
            }
            index
        } else {
            home
        };
        drop(placement);
        let worker = self.inner.workers[index].tx.clone();
        let joined = Self::ask(&worker, &room, |reply| Cmd::Join { id: id.clone(), grants, events, reply }).await;
        let p = Participant { sfu: self.clone(), placed, worker, room, id, session: 0 };
        match joined {
            Ok(session) => Ok(Participant { session, ..p }),
            Err(e) => {
                p.unplace().await;
                Err(e)
            }
        }
    }

    /// Links a new shard of `room` into the others, or unlinks one that emptied.
    async fn link(&self, room: &Arc<str>, l: &placement::Links, link: bool) {
        for other in &l.others {
            for (to, about) in [(l.worker, *other), (*other, l.worker)] {
                let cmd = if link {
                    Cmd::Link { peer: self.inner.workers[about].peer() }
                } else {
                    Cmd::Unlink { index: about }
                };
                let _ = self.inner.workers[to].tx.send(WorkerCmd::Room { room: room.clone(), cmd }).await;
            }
        }
    }

    /// Attaches a hidden in-process subscriber to a room (created if needed): it receives
    /// every track published now and later, on `events`, from the same fan-out as the
    /// participants' down-tracks. No participant sees it.
    pub async fn tap(&self, room: &str, name: &str, events: mpsc::UnboundedSender<TapEvent>) -> Result<Tap, SfuError> {
        let worker = self.worker(room).tx.clone();
        let room: Arc<str> = room.into();
        Self::ask(&worker, &room, |reply| Cmd::Tap { name: name.to_owned(), events, reply }).await?;
        Ok(Tap { worker, room, name: name.to_owned() })
    }

    pub fn room_count(&self) -> usize {
        self.inner.stats.rooms.load(Ordering::Relaxed)
    }
}

/// One participant's handle on its room's media.
pub struct Participant {
    sfu: Sfu,
    /// Counted in the room's placement (the SFU spreads rooms over workers).
    placed: bool,
    worker: mpsc::Sender<WorkerCmd>,
    room: Arc<str>,
    id: String,
    /// This join of the identity (a reconnect is a new one).
    session: u64,
}

impl Participant {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Cmd) -> Result<T, SfuError> {
        Sfu::ask(&self.worker, &self.room, make).await
    }

    /// The client's offer for its publish PeerConnection; returns the server's answer SDP.
    pub async fn publish(&self, offer_sdp: String) -> Result<String, SfuError> {
        self.ask(|reply| Cmd::PublishOffer { id: self.id.clone(), sdp: offer_sdp, reply }).await
    }

    /// A receive-only player's offer (WHEP): it is answered with `source`'s camera and
    /// microphone, once (see the room's `watch`), after waiting up to two seconds for those
    /// the source said it sends and has not sent yet. Join with no grants first.
    pub async fn watch(&self, offer_sdp: String, source: &str) -> Result<String, SfuError> {
        self.ask(|reply| Cmd::Watch { id: self.id.clone(), sdp: offer_sdp, source: source.to_owned(), reply }).await
    }

    /// The client's answer to the server's latest subscribe offer.
    pub async fn subscribe_answer(&self, sdp: String) -> Result<(), SfuError> {
        self.ask(|reply| Cmd::SubscribeAnswer { id: self.id.clone(), sdp, reply }).await
    }

    pub async fn add_candidate(&self, target: PcTarget, candidate: IceCandidate) -> Result<(), SfuError> {
        self.ask(|reply| Cmd::Candidate { id: self.id.clone(), target, candidate, reply }).await
    }

    /// The highest simulcast layer this participant wants of a track (0 = low … 2 = high).
    pub async fn set_layer(&self, track: &str, layer: forward::Layer) -> Result<(), SfuError> {
        self.ask(|reply| Cmd::SetLayer { id: self.id.clone(), track: track.to_owned(), layer, reply }).await
    }

    pub async fn mute(&self, track: &str, muted: bool) -> Result<(), SfuError> {
        self.ask(|reply| Cmd::Mute { id: self.id.clone(), track: track.to_owned(), muted, reply }).await
    }

    /// A host muted this participant: their audio is no longer forwarded (and shows muted)
    /// until they unmute a track themselves (`mute(track, false)`), so a client that ignores
    /// the request is silent all the same.
    pub async fn hold_audio(&self) -> Result<(), SfuError> {
        self.ask(|reply| Cmd::HoldAudio { id: self.id.clone(), reply }).await
    }

    /// A host gave or took the right to publish. Taking it unpublishes every track this
    /// participant sends; its publish connection stays for when the right comes back.
    pub async fn set_publish(&self, allowed: bool) -> Result<(), SfuError> {
        self.ask(|reply| Cmd::SetPublish { id: self.id.clone(), allowed, reply }).await
    }

    pub async fn unpublish(&self, track: &str) -> Result<(), SfuError> {
        self.ask(|reply| Cmd::Unpublish { id: self.id.clone(), track: track.to_owned(), reply }).await
    }

    /// Closes both PeerConnections and frees everything this participant held, its place on a
    /// worker included: also due after the SFU closed its media (`SfuEvent::Closed`).
    pub async fn leave(self) {
        let (reply, wait) = oneshot::channel();
        let cmd = Cmd::Leave { id: self.id.clone(), session: self.session, reply: Some(reply) };
        if self.worker.send(WorkerCmd::Room { room: self.room.clone(), cmd }).await.is_ok() {
            let _ = wait.await;
        }
        self.unplace().await;
    }

    /// This join no longer counts where it was placed; a shard it leaves empty is unlinked.
    async fn unplace(&self) {
        if !self.placed {
            return;
        }
        let home = self.sfu.worker_of(&self.room);
        let mut placement = self.sfu.inner.placement.lock().await;
        if let Some(l) = placement.leave(&self.room, home, &self.id) {
            self.sfu.link(&self.room, &l, false).await;
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}
