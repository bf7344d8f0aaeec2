//! Huizhen's selective forwarding unit: rooms of participants who publish audio and video over
//! one WebRTC PeerConnection and receive everyone else's over a second one. It knows nothing of
//! HTTP, JSON tokens or the schedule; the signaling layer drives it through [`Sfu`] and
//! [`Participant`] and relays [`SfuEvent`]s.
//!
//! Per room one task owns all state (participants, published tracks, subscriptions); per
//! published track one task reads RTP and hands each packet (shared, not copied) to the
//! down-tracks, each of which has its own writer task with a bounded queue, so a slow
//! subscriber loses its own packets and never delays anyone else.

pub mod bwe;
pub use engine::AUDIO_LEVEL_URI;
mod engine;
pub mod forward;
pub mod keyframe;
pub mod plane;
mod room;
pub mod rtcp;
mod track;

pub use track::{Inbound, SenderClock, SenderReports};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use webrtc::peer_connection::RTCIceCandidateInit as IceCandidate;

/// Network and timing settings.
#[derive(Clone, Debug)]
pub struct SfuConfig {
    /// Addresses media sockets bind to. The unspecified address would skip loopback in
    /// webrtc-rs, so concrete addresses are required.
    pub bind_ips: Vec<IpAddr>,
    /// Public addresses to announce instead of the bound ones (NAT 1:1), pairwise with `bind_ips`.
    pub announce_ips: Vec<IpAddr>,
    /// STUN/TURN servers handed to the server's own PeerConnections.
    pub ice_servers: Vec<IceServer>,
    /// A PeerConnection that is not connected this long after its offer is removed.
    pub connect_timeout: Duration,
    /// Published tracks per participant (two cameras, screen and microphone is normal).
    pub max_tracks_per_participant: usize,
}

impl Default for SfuConfig {
    fn default() -> Self {
        Self {
            bind_ips: vec![IpAddr::from([127, 0, 0, 1])],
            announce_ips: Vec::new(),
            ice_servers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            max_tracks_per_participant: 6,
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
    /// A participant's link got better or worse (from what its receiver reports say).
    ConnectionQuality {
        participant: String,
        quality: Quality,
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
pub struct KeyframeRequester(Arc<track::Keyframes>);

impl KeyframeRequester {
    pub fn request(&self, layer: forward::Layer) {
        self.0.request(layer);
    }

    /// The highest simulcast layer seen so far (0 when none or not simulcast).
    pub fn highest_layer(&self) -> forward::Layer {
        self.0.highest_layer()
    }
}

/// A tap on one room; `close` detaches it (the room may then retire).
pub struct Tap {
    room: mpsc::Sender<room::Cmd>,
    name: String,
}

impl Tap {
    pub async fn close(self) {
        let (reply, wait) = oneshot::channel();
        if self.room.send(room::Cmd::Untap { name: self.name, reply }).await.is_ok() {
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
    pub forwarded_packets: std::sync::atomic::AtomicU64,
    pub dropped_packets: std::sync::atomic::AtomicU64,
    pub keyframe_requests: std::sync::atomic::AtomicU64,
    pub layer_switches: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct Sfu {
    inner: Arc<SfuInner>,
}

struct SfuInner {
    config: SfuConfig,
    rooms: Mutex<HashMap<String, mpsc::Sender<room::Cmd>>>,
    stats: Arc<SfuStats>,
}

impl Sfu {
    pub fn new(config: SfuConfig) -> Self {
        Self { inner: Arc::new(SfuInner { config, rooms: Mutex::new(HashMap::new()), stats: Arc::default() }) }
    }

    pub fn stats(&self) -> &SfuStats {
        &self.inner.stats
    }

    pub(crate) fn stats_arc(&self) -> Arc<SfuStats> {
        self.inner.stats.clone()
    }

    pub fn config(&self) -> &SfuConfig {
        &self.inner.config
    }

    fn room(&self, id: &str) -> mpsc::Sender<room::Cmd> {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = rooms.get(id).filter(|t| !t.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(1024);
        rooms.insert(id.to_owned(), tx.clone());
        stat_add(&self.inner.stats.rooms, 1);
        tokio::spawn(room::run(self.clone(), id.to_owned(), tx.downgrade(), rx));
        tx
    }

    /// Called by a room task when it has no participants left and nothing queued.
    fn retire(&self, id: &str, rx: &mut mpsc::Receiver<room::Cmd>) -> bool {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if !rx.is_empty() {
            return false;
        }
        rooms.remove(id);
        rx.close();
        stat_add(&self.inner.stats.rooms, -1);
        true
    }

    /// Enters a room's media. Events for this participant arrive on `events`.
    pub async fn join(
        &self,
        room: &str,
        participant: &str,
        grants: MediaGrants,
        events: mpsc::UnboundedSender<SfuEvent>,
    ) -> Result<Participant, SfuError> {
        for _ in 0..5 {
            let tx = self.room(room);
            let (reply, wait) = oneshot::channel();
            let cmd = room::Cmd::Join { id: participant.to_owned(), grants, events: events.clone(), reply };
            if tx.send(cmd).await.is_err() {
                continue;
            }
            match wait.await {
                Ok(r) => {
                    r?;
                    return Ok(Participant { room: tx, id: participant.to_owned() });
                }
                Err(_) => continue,
            }
        }
        Err(SfuError::Internal("room unavailable".into()))
    }

    /// Attaches a hidden in-process subscriber to a room (created if needed): it receives
    /// every track published now and later, on `events`, from the same fan-out as the
    /// participants' down-tracks. No participant sees it.
    pub async fn tap(&self, room: &str, name: &str, events: mpsc::UnboundedSender<TapEvent>) -> Result<Tap, SfuError> {
        for _ in 0..5 {
            let tx = self.room(room);
            let (reply, wait) = oneshot::channel();
            let cmd = room::Cmd::Tap { name: name.to_owned(), events: events.clone(), reply };
            if tx.send(cmd).await.is_err() {
                continue;
            }
            match wait.await {
                Ok(r) => {
                    r?;
                    return Ok(Tap { room: tx, name: name.to_owned() });
                }
                Err(_) => continue,
            }
        }
        Err(SfuError::Internal("room unavailable".into()))
    }

    pub fn room_count(&self) -> usize {
        self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// One participant's handle on its room's media.
pub struct Participant {
    room: mpsc::Sender<room::Cmd>,
    id: String,
}

impl Participant {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> room::Cmd,
    ) -> Result<T, SfuError> {
        let (reply, wait) = oneshot::channel();
        self.room.send(make(reply)).await.map_err(|_| SfuError::Gone)?;
        wait.await.map_err(|_| SfuError::Gone)?
    }

    /// The client's offer for its publish PeerConnection; returns the server's answer SDP.
    pub async fn publish(&self, offer_sdp: String) -> Result<String, SfuError> {
        self.ask(|reply| room::Cmd::PublishOffer { id: self.id.clone(), sdp: offer_sdp, reply }).await
    }

    /// The client's answer to the server's latest subscribe offer.
    pub async fn subscribe_answer(&self, sdp: String) -> Result<(), SfuError> {
        self.ask(|reply| room::Cmd::SubscribeAnswer { id: self.id.clone(), sdp, reply }).await
    }

    pub async fn add_candidate(&self, target: PcTarget, candidate: IceCandidate) -> Result<(), SfuError> {
        self.ask(|reply| room::Cmd::Candidate { id: self.id.clone(), target, candidate, reply }).await
    }

    /// The highest simulcast layer this participant wants of a track (0 = low … 2 = high).
    pub async fn set_layer(&self, track: &str, layer: forward::Layer) -> Result<(), SfuError> {
        self.ask(|reply| room::Cmd::SetLayer { id: self.id.clone(), track: track.to_owned(), layer, reply }).await
    }

    pub async fn mute(&self, track: &str, muted: bool) -> Result<(), SfuError> {
        self.ask(|reply| room::Cmd::Mute { id: self.id.clone(), track: track.to_owned(), muted, reply }).await
    }

    /// A host muted this participant: their audio is no longer forwarded (and shows muted)
    /// until they unmute a track themselves (`mute(track, false)`), so a client that ignores
    /// the request is silent all the same.
    pub async fn hold_audio(&self) -> Result<(), SfuError> {
        self.ask(|reply| room::Cmd::HoldAudio { id: self.id.clone(), reply }).await
    }

    /// A host gave or took the right to publish. Taking it unpublishes every track this
    /// participant sends; its publish connection stays for when the right comes back.
    pub async fn set_publish(&self, allowed: bool) -> Result<(), SfuError> {
        self.ask(|reply| room::Cmd::SetPublish { id: self.id.clone(), allowed, reply }).await
    }

    pub async fn unpublish(&self, track: &str) -> Result<(), SfuError> {
        self.ask(|reply| room::Cmd::Unpublish { id: self.id.clone(), track: track.to_owned(), reply }).await
    }

    /// Closes both PeerConnections and frees everything this participant held.
    pub async fn leave(self) {
        let (reply, wait) = oneshot::channel();
        if self.room.send(room::Cmd::Leave { id: self.id.clone(), reply: Some(reply) }).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

pub(crate) fn stat_add(c: &AtomicUsize, n: isize) {
    if n >= 0 {
        c.fetch_add(n as usize, Ordering::Relaxed);
    } else {
        c.fetch_sub((-n) as usize, Ordering::Relaxed);
    }
}
