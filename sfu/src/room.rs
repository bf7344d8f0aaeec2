//! One task per room owns its media state; everything else talks to it through `Cmd`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState, RTCSessionDescription};
use webrtc::rtp_transceiver::RtpSender;

use crate::engine::{self, Handler};
use crate::forward::{Layer, OFF};
use crate::track::{self, DownControl, DownTx, Fanout, Keyframes, LayerRates};
use crate::{IceCandidate, MediaGrants, PcTarget, Sfu, SfuError, SfuEvent, TrackInfo, TrackKind, internal, stat_add};

type Reply<T> = oneshot::Sender<Result<T, SfuError>>;

pub enum Cmd {
    Join {
        id: String,
        grants: MediaGrants,
        events: mpsc::UnboundedSender<SfuEvent>,
        reply: Reply<()>,
    },
    PublishOffer {
        id: String,
        sdp: String,
        reply: Reply<String>,
    },
    SubscribeAnswer {
        id: String,
        sdp: String,
        reply: Reply<()>,
    },
    Candidate {
        id: String,
        target: PcTarget,
        candidate: IceCandidate,
        reply: Reply<()>,
    },
    SetLayer {
        id: String,
        track: String,
        layer: Layer,
        reply: Reply<()>,
    },
    Unpublish {
        id: String,
        track: String,
        reply: Reply<()>,
    },
    Mute {
        id: String,
        track: String,
        muted: bool,
        reply: Reply<()>,
    },
    /// A host muted this participant: their audio stops here until they unmute themselves.
    HoldAudio {
        id: String,
        reply: Reply<()>,
    },
    SetPublish {
        id: String,
        allowed: bool,
        reply: Reply<()>,
    },
    Tap {
        name: String,
        events: mpsc::UnboundedSender<crate::TapEvent>,
        reply: Reply<()>,
    },
    Untap {
        name: String,
        reply: Reply<()>,
    },
    Leave {
        id: String,
        reply: Option<oneshot::Sender<()>>,
    },
    // From PeerConnection drivers (via `engine::Handler`).
    LocalCandidate {
        id: String,
        target: PcTarget,
        candidate: IceCandidate,
    },
    PcState {
        id: String,
        target: PcTarget,
        generation: u64,
        state: RTCPeerConnectionState,
    },
    TrackArrived {
        id: String,
        generation: u64,
        track: Arc<dyn TrackRemote>,
    },
}

const MAX_PENDING_CANDIDATES: usize = 64;
/// Audio level (−dBov) below which a participant counts as speaking.
const SPEAKING_LEVEL: u64 = 60;

struct Down {
    sender: Arc<dyn RtpSender>,
    control: DownControl,
    /// In an offer sent to the subscriber (waiting for its answer, or answered).
    offered: bool,
    /// The subscriber has answered an offer with this track: its packets may flow. Sent
    /// before, they carry an SSRC the subscriber does not know yet, which a client may
    /// attribute to another track.
    negotiated: Arc<AtomicBool>,
    /// Picks the layer from the subscriber's request and the layers actually arriving.
    selector: crate::bwe::LayerSelector,
    task: JoinHandle<()>,
}

struct Pc {
    pc: Arc<dyn PeerConnection>,
    /// Loss and REMB the remote reports about what we send on this connection.
    link: Arc<crate::rtcp::LinkReport>,
    /// Connect deadline: set while not (or no longer) connected.
    deadline: Option<Instant>,
    has_remote: bool,
    pending: Vec<IceCandidate>,
}

struct Member {
    grants: MediaGrants,
    events: mpsc::UnboundedSender<SfuEvent>,
    generation: u64,
    publisher: Option<Pc>,
    subscriber: Option<Pc>,
    sub_connected: Arc<AtomicBool>,
    offer_pending: bool,
    dirty: bool,
    downs: HashMap<String, Down>,
    audio_ext: Option<u8>,
    /// Bandwidth estimate for the subscribe connection (None: no sign of a limit).
    estimate: Option<u64>,
    /// The REMB seen at the previous estimate: a falling REMB is the congestion signal.
    last_remb: u64,
    quality: Option<crate::Quality>,
    /// A host muted this participant: audio they publish is held (not forwarded) until they
    /// unmute it themselves.
    audio_held: bool,
}

struct Published {
    info: TrackInfo,
    local_id: String,
    kind: TrackKind,
    codec: RTCRtpCodec,
    fanout: Arc<Fanout>,
    keyframes: Arc<Keyframes>,
    rates: Arc<LayerRates>,
    level: Arc<AtomicU64>,
    reports: Arc<track::SenderReports>,
    muted: bool,
    /// Not forwarded (a host muted the publisher): the reader drops its packets.
    held: Arc<AtomicBool>,
    reader: JoinHandle<()>,
}

struct Room {
    sfu: Sfu,
    id: String,
    me: mpsc::WeakSender<Cmd>,
    members: HashMap<String, Member>,
    tracks: HashMap<String, Published>,
    generation: u64,
    speaker: Option<String>,
    last_roll: Instant,
    /// Hidden in-process subscribers (the recorder), by name: they get every track's packets
    /// from the same fan-out as the down-tracks.
    taps: HashMap<String, mpsc::UnboundedSender<crate::TapEvent>>,
}

pub async fn run(sfu: Sfu, id: String, me: mpsc::WeakSender<Cmd>, mut rx: mpsc::Receiver<Cmd>) {
    let mut room = Room {
        sfu: sfu.clone(),
        id: id.clone(),
        me,
        members: HashMap::new(),
        tracks: HashMap::new(),
        generation: 0,
        speaker: None,
        last_roll: Instant::now(),
        taps: HashMap::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => room.handle(cmd).await,
                None => break,
            },
            _ = tick.tick() => room.tick().await,
        }
        if room.members.is_empty() && room.taps.is_empty() && sfu.retire(&id, &mut rx) {
            break;
        }
    }
    for (_, t) in room.tracks.drain() {
        t.reader.abort();
    }
    tracing::debug!(room = %id, "media room closed");
}

fn ack<T>(reply: Reply<T>, r: Result<T, SfuError>) {
    let _ = reply.send(r);
}

/// Tells every member of the room. A free function over the members, so callers may hold a
/// track mutably at the same time.
fn broadcast(members: &HashMap<String, Member>, ev: &SfuEvent) {
    for m in members.values() {
        let _ = m.events.send(ev.clone());
    }
}

/// Sets a track's muted state and tells everyone when it changed.
fn set_muted(members: &HashMap<String, Member>, t: &mut Published, muted: bool) {
    if t.muted != muted {
        t.muted = muted;
        broadcast(
            members,
            &SfuEvent::TrackMuted { id: t.info.id.clone(), participant: t.info.participant.clone(), muted },
        );
    }
}

impl Room {
    fn stats(&self) -> &crate::SfuStats {
        self.sfu.stats()
    }

    async fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Join { id, grants, events, reply } => {
                let r = self.join(id, grants, events).await;
                ack(reply, r);
            }
            Cmd::PublishOffer { id, sdp, reply } => {
                let r = self.publish(&id, sdp).await;
                ack(reply, r);
            }
            Cmd::SubscribeAnswer { id, sdp, reply } => {
                let r = self.subscribe_answer(&id, sdp).await;
                ack(reply, r);
            }
            Cmd::Candidate { id, target, candidate, reply } => {
                let r = self.remote_candidate(&id, target, candidate).await;
                ack(reply, r);
            }
            Cmd::SetLayer { id, track, layer, reply } => {
                let rates = self.tracks.get(&track).map(|t| t.rates.snapshot());
                let member = self.members.get_mut(&id);
                let estimate = member.as_ref().and_then(|m| m.estimate);
                let r = match member.and_then(|m| m.downs.get_mut(&track)) {
                    Some(d) => {
                        d.selector.request(if layer == OFF { OFF } else { layer.min(2) });
                        // Rates are unknown for a moment after a track appears: assume all sent.
                        let rates = rates.filter(|r| r.iter().any(|x| *x > 0)).unwrap_or([1, 1, 1]);
                        let chosen = d.selector.update(Instant::now(), estimate, &rates);
                        d.control.target.send_replace(chosen);
                        Ok(())
                    }
                    None => Err(SfuError::UnknownTrack),
                };
                ack(reply, r);
            }
            Cmd::Unpublish { id, track, reply } => {
                let key = format!("{id}/{track}");
                let r = if self.tracks.get(&key).is_some_and(|t| t.info.participant == id) {
                    self.unpublish(&key).await;
                    Ok(())
                } else {
                    Err(SfuError::UnknownTrack)
                };
                ack(reply, r);
            }
            Cmd::Mute { id, track, muted, reply } => {
                let key = format!("{id}/{track}");
                let r = match self.tracks.get_mut(&key).filter(|t| t.info.participant == id) {
                    Some(t) => {
                        if !muted && t.held.swap(false, Relaxed) {
                            // Unmuting themselves is how a participant a host muted speaks again.
                            if let Some(m) = self.members.get_mut(&id) {
                                m.audio_held = false;
                            }
                        }
                        set_muted(&self.members, t, muted);
                        Ok(())
                    }
                    None => Err(SfuError::UnknownTrack),
                };
                ack(reply, r);
            }
            Cmd::HoldAudio { id, reply } => {
                let r = match self.members.get_mut(&id) {
                    Some(m) => {
                        m.audio_held = true;
                        for t in
                            self.tracks.values_mut().filter(|t| t.info.participant == id && t.kind == TrackKind::Audio)
                        {
                            t.held.store(true, Relaxed);
                            set_muted(&self.members, t, true);
                        }
                        Ok(())
                    }
                    None => Err(SfuError::Gone),
                };
                ack(reply, r);
            }
            Cmd::SetPublish { id, allowed, reply } => {
                let r = match self.members.get_mut(&id) {
                    Some(m) => {
                        m.grants.publish = allowed;
                        if !allowed {
                            // A host took the floor back: what this participant sends stops now,
                            // and a later grant starts a fresh publish connection.
                            if let Some(p) = m.publisher.take() {
                                let _ = p.pc.close().await;
                                stat_add(&self.stats().peer_connections, -1);
                            }
                            let mine: Vec<String> = self
                                .tracks
                                .iter()
                                .filter(|(_, t)| t.info.participant == id)
                                .map(|(k, _)| k.clone())
                                .collect();
                            for key in mine {
                                self.unpublish(&key).await;
                            }
                        }
                        Ok(())
                    }
                    None => Err(SfuError::Gone),
                };
                ack(reply, r);
            }
            Cmd::Tap { name, events, reply } => {
                let keys: Vec<String> = self.tracks.keys().cloned().collect();
                self.taps.insert(name.clone(), events);
                for key in keys {
                    self.tap_track(&name, &key);
                }
                ack(reply, Ok(()));
            }
            Cmd::Untap { name, reply } => {
                self.taps.remove(&name);
                let tap = tap_subscriber(&name);
                for t in self.tracks.values() {
                    t.fanout.remove(&tap);
                }
                ack(reply, Ok(()));
            }
            Cmd::Leave { id, reply } => {
                self.remove(&id, None).await;
                if let Some(r) = reply {
                    let _ = r.send(());
                }
            }
            Cmd::LocalCandidate { id, target, mut candidate } => {
                if let Some(m) = self.members.get(&id) {
                    candidate.candidate = engine::announce(self.sfu.config(), &candidate.candidate);
                    // webrtc-rs leaves sdpMid empty; with BUNDLE the first m-line carries all.
                    candidate.sdp_mid = None;
                    candidate.sdp_mline_index = Some(0);
                    let _ = m.events.send(SfuEvent::IceCandidate { target, candidate });
                }
            }
            Cmd::PcState { id, target, generation, state } => self.pc_state(&id, target, generation, state).await,
            Cmd::TrackArrived { id, generation, track } => {
                if let Err(e) = self.track_arrived(&id, generation, track).await {
                    tracing::warn!(room = %self.id, participant = %id, error = %e, "published track refused");
                }
            }
        }
    }

    async fn new_pc(&mut self, id: &str, target: PcTarget, generation: u64) -> Result<Pc, SfuError> {
        let handler = Handler { room: self.me.clone(), participant: id.to_owned(), target, generation };
        let link = Arc::new(crate::rtcp::LinkReport::default());
        let pc = engine::peer_connection(self.sfu.config(), handler, link.clone()).await?;
        stat_add(&self.stats().peer_connections, 1);
        // The publish connection must come up now (its offer is here); the subscribe one only
        // once it has been offered something.
        let deadline = (target == PcTarget::Publish).then(|| Instant::now() + self.sfu.config().connect_timeout);
        Ok(Pc { pc, link, deadline, has_remote: false, pending: Vec::new() })
    }

    async fn join(
        &mut self,
        id: String,
        grants: MediaGrants,
        events: mpsc::UnboundedSender<SfuEvent>,
    ) -> Result<(), SfuError> {
        if self.members.contains_key(&id) {
            // The same identity from a new socket: its old connections are dead weight.
            self.remove(&id, None).await;
        }
        self.generation += 1;
        let generation = self.generation;
        let subscriber =
            if grants.subscribe { Some(self.new_pc(&id, PcTarget::Subscribe, generation).await?) } else { None };
        // Everyone already publishing, and the newcomer told of each.
        for t in self.tracks.values() {
            let _ = events.send(SfuEvent::TrackPublished(t.info.clone()));
        }
        if let Some(s) = &self.speaker {
            let _ = events.send(SfuEvent::ActiveSpeaker { participant: Some(s.clone()) });
        }
        self.members.insert(
            id.clone(),
            Member {
                grants,
                events,
                generation,
                publisher: None,
                subscriber,
                sub_connected: Arc::new(AtomicBool::new(false)),
                offer_pending: false,
                dirty: false,
                downs: HashMap::new(),
                audio_ext: None,
                estimate: None,
                last_remb: 0,
                audio_held: false,
                quality: None,
            },
        );
        let keys: Vec<String> =
            self.tracks.iter().filter(|(_, t)| t.info.participant != id).map(|(k, _)| k.clone()).collect();
        for k in keys {
            self.add_down(&id, &k).await?;
        }
        // An offer with no media sections carries no ICE credentials: the subscribe
        // connection is first offered when there is something to receive.
        if self.members.get(&id).is_some_and(|m| !m.downs.is_empty()) {
            self.negotiate(&id).await?;
        }
        Ok(())
    }

    async fn publish(&mut self, id: &str, sdp: String) -> Result<String, SfuError> {
        let (grants, generation) = match self.members.get(id) {
            Some(m) => (m.grants, m.generation),
            None => return Err(SfuError::Gone),
        };
        if !grants.publish {
            return Err(SfuError::PublishNotAllowed);
        }
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        if self.members.get(id).is_some_and(|m| m.publisher.is_none()) {
            let pc = self.new_pc(id, PcTarget::Publish, generation).await?;
            if let Some(m) = self.members.get_mut(id) {
                m.publisher = Some(pc);
            }
        }
        let Some(m) = self.members.get_mut(id) else { return Err(SfuError::Gone) };
        let Some(p) = m.publisher.as_mut() else { return Err(SfuError::Gone) };
        p.pc.set_remote_description(offer).await.map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        p.has_remote = true;
        for c in std::mem::take(&mut p.pending) {
            let _ = p.pc.add_ice_candidate(c).await;
        }
        let answer = p.pc.create_answer(None).await.map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        p.pc.set_local_description(answer.clone()).await.map_err(internal)?;
        let sdp = p.pc.local_description().await.map(|d| d.sdp).unwrap_or(answer.sdp);
        m.audio_ext = extmap_id(&sdp, engine::AUDIO_LEVEL_URI);
        Ok(engine::announce(self.sfu.config(), &sdp))
    }

    async fn subscribe_answer(&mut self, id: &str, sdp: String) -> Result<(), SfuError> {
        let Some(m) = self.members.get_mut(id) else { return Err(SfuError::Gone) };
        if !m.offer_pending {
            return Err(SfuError::NoPendingOffer);
        }
        let Some(s) = m.subscriber.as_mut() else { return Err(SfuError::SubscribeNotAllowed) };
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        s.pc.set_remote_description(answer).await.map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        s.has_remote = true;
        for c in std::mem::take(&mut s.pending) {
            let _ = s.pc.add_ice_candidate(c).await;
        }
        m.offer_pending = false;
        for d in m.downs.values().filter(|d| d.offered) {
            d.negotiated.store(true, Relaxed);
        }
        if m.dirty {
            self.negotiate(id).await?;
        }
        Ok(())
    }

    async fn remote_candidate(&mut self, id: &str, target: PcTarget, c: IceCandidate) -> Result<(), SfuError> {
        let Some(m) = self.members.get_mut(id) else { return Err(SfuError::Gone) };
        let pc = match target {
            PcTarget::Publish => m.publisher.as_mut(),
            PcTarget::Subscribe => m.subscriber.as_mut(),
        };
        let Some(p) = pc else {
            return Err(SfuError::InvalidCandidate("no such connection yet".into()));
        };
        if c.candidate.len() > 512 {
            return Err(SfuError::InvalidCandidate("too long".into()));
        }
        if !p.has_remote {
            if p.pending.len() >= MAX_PENDING_CANDIDATES {
                return Err(SfuError::InvalidCandidate("too many candidates before the description".into()));
            }
            p.pending.push(c);
            return Ok(());
        }
        p.pc.add_ice_candidate(c).await.map_err(|e| SfuError::InvalidCandidate(e.to_string()))
    }

    /// (Re)offers the subscribe connection, or marks it to be re-offered once the pending
    /// offer is answered: one offer in flight at a time (RFC 8829 §4.1.8 glare avoidance).
    async fn negotiate(&mut self, id: &str) -> Result<(), SfuError> {
        let Some(m) = self.members.get_mut(id) else { return Ok(()) };
        let Some(s) = m.subscriber.as_ref() else { return Ok(()) };
        if m.offer_pending {
            m.dirty = true;
            return Ok(());
        }
        let offer = s.pc.create_offer(None).await.map_err(internal)?;
        s.pc.set_local_description(offer.clone()).await.map_err(internal)?;
        let sdp = s.pc.local_description().await.map(|d| d.sdp).unwrap_or(offer.sdp);
        for d in m.downs.values_mut() {
            d.offered = true;
        }
        m.offer_pending = true;
        m.dirty = false;
        if !m.sub_connected.load(Relaxed)
            && let Some(s) = m.subscriber.as_mut()
        {
            s.deadline.get_or_insert(Instant::now() + self.sfu.config().connect_timeout);
        }
        let _ = m.events.send(SfuEvent::SubscribeOffer { sdp: engine::announce(self.sfu.config(), &sdp) });
        Ok(())
    }

    async fn pc_state(&mut self, id: &str, target: PcTarget, generation: u64, state: RTCPeerConnectionState) {
        let timeout = self.sfu.config().connect_timeout;
        let Some(m) = self.members.get_mut(id).filter(|m| m.generation == generation) else { return };
        let pc = match target {
            PcTarget::Publish => m.publisher.as_mut(),
            PcTarget::Subscribe => m.subscriber.as_mut(),
        };
        let Some(p) = pc else { return };
        match state {
            RTCPeerConnectionState::Connected => {
                p.deadline = None;
                if target == PcTarget::Subscribe {
                    m.sub_connected.store(true, Relaxed);
                }
            }
            RTCPeerConnectionState::Disconnected => {
                // ICE may come back (network change); give it the connect timeout to do so.
                p.deadline.get_or_insert(Instant::now() + timeout);
                if target == PcTarget::Subscribe {
                    m.sub_connected.store(false, Relaxed);
                }
            }
            RTCPeerConnectionState::Failed => {
                self.remove(id, Some("connection_failed")).await;
            }
            _ => {}
        }
    }

    async fn track_arrived(&mut self, id: &str, generation: u64, remote: Arc<dyn TrackRemote>) -> Result<(), SfuError> {
        let Some(m) = self.members.get(id).filter(|m| m.generation == generation) else { return Ok(()) };
        let audio_ext = m.audio_ext;
        let audio_held = m.audio_held;
        let owned = self.tracks.values().filter(|t| t.info.participant == id).count();
        if owned >= self.sfu.config().max_tracks_per_participant {
            let _ = m.events.send(SfuEvent::Closed { reason: "too_many_tracks" });
            return Err(SfuError::TooManyTracks);
        }
        let kind = match remote.kind().await {
            RtpCodecKind::Audio => TrackKind::Audio,
            _ => TrackKind::Video,
        };
        let ssrc = remote.ssrcs().await.first().copied().unwrap_or_default();
        let codec = remote.codec(ssrc).await.ok_or_else(|| internal("track without codec"))?;
        let local_id = remote.track_id().await;
        let key = format!("{id}/{local_id}");
        if self.tracks.contains_key(&key) {
            self.unpublish(&key).await;
        }
        let fanout = Arc::new(Fanout::default());
        let keyframes = Keyframes::new(remote.clone(), self.sfu_stats());
        let rates = Arc::new(LayerRates::default());
        let simulcast = Arc::new(AtomicBool::new(false));
        let level = Arc::new(AtomicU64::new(127));
        let reports = Arc::new(track::SenderReports::default());
        // Audio published while a host's mute holds this participant starts held (and muted).
        let held_now = kind == TrackKind::Audio && audio_held;
        let held = Arc::new(AtomicBool::new(held_now));
        let reader = tokio::spawn(track::read_track(
            remote.clone(),
            kind,
            codec.mime_type.clone(),
            fanout.clone(),
            keyframes.clone(),
            rates.clone(),
            simulcast.clone(),
            level.clone(),
            if kind == TrackKind::Audio { audio_ext } else { None },
            reports.clone(),
            held.clone(),
            self.sfu_stats(),
        ));
        let info = TrackInfo {
            id: key.clone(),
            participant: id.to_owned(),
            kind,
            codec: codec.mime_type.clone(),
            // Known for sure only once layers arrive; a rid on the first SSRC tells already.
            simulcast: remote.rid(ssrc).await.is_some(),
        };
        stat_add(&self.stats().published_tracks, 1);
        self.tracks.insert(
            key.clone(),
            Published {
                info: info.clone(),
                local_id,
                kind,
                codec,
                fanout,
                keyframes,
                rates,
                level,
                reports,
                muted: held_now,
                held,
                reader,
            },
        );
        broadcast(&self.members, &SfuEvent::TrackPublished(info.clone()));
        if held_now {
            broadcast(
                &self.members,
                &SfuEvent::TrackMuted { id: key.clone(), participant: id.to_owned(), muted: true },
            );
        }
        let taps: Vec<String> = self.taps.keys().cloned().collect();
        for name in taps {
            self.tap_track(&name, &key);
        }
        let subs: Vec<String> = self.members.keys().filter(|k| k.as_str() != id).cloned().collect();
        for s in subs {
            if let Err(e) = self.add_down(&s, &key).await {
                tracing::warn!(room = %self.id, subscriber = %s, error = %e, "cannot add down-track");
                continue;
            }
            let _ = self.negotiate(&s).await;
        }
        Ok(())
    }

    /// Hands a tap the packets of one track: all simulcast layers, with the publisher's sender
    /// reports; the tap picks what it keeps.
    fn tap_track(&mut self, name: &str, key: &str) {
        let Some(t) = self.tracks.get(key) else { return };
        let Some(events) = self.taps.get(name) else { return };
        let (tx, rx) = mpsc::channel(track::TAP_QUEUE);
        t.fanout.add(DownTx { subscriber: tap_subscriber(name), tx });
        let tap = crate::TapTrack {
            info: t.info.clone(),
            clock_rate: t.codec.clock_rate,
            channels: t.codec.channels,
            packets: rx,
            reports: t.reports.clone(),
            keyframes: crate::KeyframeRequester(t.keyframes.clone()),
        };
        if events.send(crate::TapEvent::Track(tap)).is_err() {
            // The tap is gone without saying so: forget it.
            self.taps.remove(name);
            t.fanout.remove(&tap_subscriber(name));
        }
    }

    fn sfu_stats(&self) -> Arc<crate::SfuStats> {
        self.sfu.stats_arc()
    }

    async fn add_down(&mut self, subscriber: &str, key: &str) -> Result<(), SfuError> {
        let Some(t) = self.tracks.get(key) else { return Ok(()) };
        let Some(m) = self.members.get_mut(subscriber) else { return Ok(()) };
        let Some(s) = m.subscriber.as_ref() else { return Ok(()) };
        if m.downs.contains_key(key) {
            return Ok(());
        }
        let payload_type = engine::payload_type_for(&t.codec.mime_type).ok_or_else(|| internal("codec not offered"))?;
        let out_ssrc: u32 = rand_ssrc();
        let coding = RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(out_ssrc), ..Default::default() },
            codec: t.codec.clone(),
            ..Default::default()
        };
        let kind = if t.kind == TrackKind::Audio { RtpCodecKind::Audio } else { RtpCodecKind::Video };
        let track = MediaStreamTrack::new(
            t.info.participant.clone(),
            // Unique on this connection (`{participant}.{track}`): two publishers' `cam`s must
            // not share a track id, or a client that keys tracks by id (webrtc-rs does) mixes
            // them. The stream id stays the participant.
            down_track_id(&t.info.participant, &t.local_id),
            t.info.id.clone(),
            kind,
            vec![coding],
        );
        let local = Arc::new(TrackLocalStaticRTP::new(track));
        let sender = s.pc.add_track(local.clone() as Arc<dyn TrackLocal>).await.map_err(internal)?;
        let (tx, rx) = mpsc::channel(track::DOWN_QUEUE);
        // Start on the highest layer the publisher is sending (a 640×480 camera in Chromium
        // sends only q and h); the selector adjusts from there.
        let rates = t.rates.snapshot();
        let initial: Layer = match rates.iter().rposition(|r| *r > 0) {
            Some(top) => top as Layer,
            None => t.keyframes.highest_layer(),
        };
        let (target_tx, target_rx) = watch::channel(initial);
        let negotiated = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(track::write_track(
            rx,
            local,
            out_ssrc,
            payload_type,
            t.codec.clock_rate,
            target_rx,
            m.sub_connected.clone(),
            negotiated.clone(),
            t.keyframes.clone(),
            self.sfu.stats_arc(),
        ));
        t.fanout.add(DownTx { subscriber: subscriber.to_owned(), tx });
        // The subscriber may have any layer until it asks for less (set_layer).
        let selector = crate::bwe::LayerSelector::new(2);
        m.downs.insert(
            key.to_owned(),
            Down { sender, control: DownControl { target: target_tx }, offered: false, negotiated, selector, task },
        );
        stat_add(&self.sfu.stats().down_tracks, 1);
        Ok(())
    }

    async fn unpublish(&mut self, key: &str) {
        let Some(t) = self.tracks.remove(key) else { return };
        t.reader.abort();
        for tap in self.taps.values() {
            let _ = tap.send(crate::TapEvent::TrackEnded { id: key.to_owned() });
        }
        stat_add(&self.stats().published_tracks, -1);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let Some(m) = self.members.get_mut(&id) else { continue };
            let _ = m
                .events
                .send(SfuEvent::TrackUnpublished { id: key.to_owned(), participant: t.info.participant.clone() });
            if let Some(d) = m.downs.remove(key) {
                t.fanout.remove(&id);
                d.task.abort();
                stat_add(&self.sfu.stats().down_tracks, -1);
                if let Some(s) = m.subscriber.as_ref() {
                    let _ = s.pc.remove_track(&d.sender).await;
                }
                let _ = self.negotiate(&id).await;
            }
        }
    }

    /// Takes a participant out: closes both connections, unpublishes its tracks, drops its
    /// down-tracks. `reason` set: the SFU decided (timeout, failure) and tells the participant.
    async fn remove(&mut self, id: &str, reason: Option<&'static str>) {
        let Some(m) = self.members.remove(id) else { return };
        let events = m.events.clone();
        for (key, d) in m.downs {
            if let Some(t) = self.tracks.get(&key) {
                t.fanout.remove(id);
            }
            d.task.abort();
            stat_add(&self.sfu.stats().down_tracks, -1);
        }
        for p in [m.publisher, m.subscriber].into_iter().flatten() {
            let _ = p.pc.close().await;
            stat_add(&self.stats().peer_connections, -1);
        }
        let owned: Vec<String> =
            self.tracks.iter().filter(|(_, t)| t.info.participant == id).map(|(k, _)| k.clone()).collect();
        for k in owned {
            self.unpublish(&k).await;
        }
        if self.speaker.as_deref() == Some(id) {
            self.set_speaker(None);
        }
        // Told only once everything is freed, so what the participant sees next is true.
        if let Some(r) = reason {
            let _ = events.send(SfuEvent::Closed { reason: r });
            tracing::info!(room = %self.id, participant = %id, reason = r, "media removed");
        }
    }

    fn set_speaker(&mut self, who: Option<String>) {
        if self.speaker == who {
            return;
        }
        broadcast(&self.members, &SfuEvent::ActiveSpeaker { participant: who.clone() });
        self.speaker = who;
    }

    async fn tick(&mut self) {
        let now = Instant::now();
        let late: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                [m.publisher.as_ref(), m.subscriber.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|p| p.deadline.is_some_and(|d| now >= d))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for id in late {
            self.remove(&id, Some("connect_timeout")).await;
        }
        // Active speaker: the loudest voiced audio track of the last interval.
        let mut loudest: Option<(u64, String)> = None;
        for t in self.tracks.values().filter(|t| t.kind == TrackKind::Audio) {
            let level = t.level.swap(127, Relaxed);
            if level < SPEAKING_LEVEL && loudest.as_ref().is_none_or(|(l, _)| level < *l) {
                loudest = Some((level, t.info.participant.clone()));
            }
        }
        if let Some((_, who)) = loudest {
            self.set_speaker(Some(who));
        }
        let elapsed = now.saturating_duration_since(self.last_roll);
        if elapsed >= Duration::from_secs(1) {
            self.last_roll = now;
            for t in self.tracks.values() {
                t.rates.roll(elapsed);
            }
            // Layer choice per down-track: the subscriber's request, the layers actually arriving
            // (Chromium drops the top one on a weak uplink), and the subscriber's link.
            let mut quality_changes = Vec::new();
            for (id, m) in self.members.iter_mut() {
                let videos: Vec<(String, [u64; 3])> = m
                    .downs
                    .keys()
                    .filter_map(|k| {
                        self.tracks
                            .get(k)
                            .filter(|t| t.kind == TrackKind::Video)
                            .map(|t| (k.clone(), t.rates.snapshot()))
                    })
                    .collect();
                let sending: u64 = videos
                    .iter()
                    .map(|(k, r)| {
                        m.downs.get(k).and_then(|d| r.get(usize::from(d.selector.chosen())).copied()).unwrap_or(0)
                    })
                    .sum();
                if let Some(s) = m.subscriber.as_ref().filter(|_| m.sub_connected.load(Relaxed)) {
                    let lost = f64::from(s.link.fraction_lost.swap(0, Relaxed)) / 256.0;
                    let remb = s.link.remb_bps.load(Relaxed);
                    m.estimate = crate::bwe::next_estimate(m.estimate, (m.last_remb, remb), lost, sending);
                    m.last_remb = remb;
                    tracing::debug!(subscriber = %id, remb, lost, sending, estimate = ?m.estimate, "downlink estimate");
                    let q = crate::Quality::from_loss(lost);
                    if m.quality != Some(q) {
                        m.quality = Some(q);
                        quality_changes.push((id.clone(), q));
                    }
                }
                let share = m.estimate.map(|e| e / videos.len().max(1) as u64);
                for (key, rates) in videos {
                    let Some(d) = m.downs.get_mut(&key) else { continue };
                    if rates.iter().all(|r| *r == 0) {
                        continue;
                    }
                    let chosen = d.selector.update(now, share, &rates);
                    if *d.control.target.borrow() != chosen {
                        d.control.target.send_replace(chosen);
                    }
                }
            }
            for (participant, quality) in quality_changes {
                broadcast(&self.members, &SfuEvent::ConnectionQuality { participant, quality });
            }
        }
    }
}

/// The MediaStreamTrack id a subscriber sees for a published track (an SDP `msid` token:
/// no `/`).
pub(crate) fn down_track_id(participant: &str, local: &str) -> String {
    format!("{participant}.{local}")
}

fn tap_subscriber(name: &str) -> String {
    // Participant ids never contain a colon-prefixed "tap:", so a tap cannot shadow one.
    format!("tap:{name}")
}

fn rand_ssrc() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded per process from the OS; good enough to avoid SSRC clashes
    // inside one subscriber connection (RFC 3550 §8.1 only asks for "random").
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    (h.finish() as u32).max(1)
}

/// The id our answer gave an RTP header extension (`a=extmap:<id> <uri>`).
fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|l| {
        let rest = l.strip_prefix("a=extmap:")?;
        let (id, tail) = rest.split_once(' ')?;
        (tail.trim() == uri).then(|| id.split('/').next()?.parse().ok())?
    })
}
