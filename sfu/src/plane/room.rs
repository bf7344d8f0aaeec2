//! One room's media state, owned by the worker the room lives on: members, their two
//! connections, published tracks and down-tracks. Commands from signaling and what the
//! connections read arrive here as plain calls on the worker's thread, with `now`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent, RTCTrackEventInit};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use tokio::sync::{mpsc, oneshot};

use super::io::{ConnId, Io, Owner};
use super::relay::{Peer, RelayedTrack};
use super::track::{Down, Inbound, Published, SenderClock, Source, TAP_QUEUE};
use crate::forward::{Layer, OFF};
use crate::{
    IceCandidate, MediaGrants, PcTarget, SfuConfig, SfuError, SfuEvent, SfuStats, TrackInfo, TrackKind, engine,
    internal,
};

type Reply<T> = oneshot::Sender<Result<T, SfuError>>;

/// What signaling (and the recorder) ask of a room.
pub enum Cmd {
    /// Answered with the member's session: a later join of the same identity (a reconnect)
    /// is a new session, and only its own session's leave removes a member.
    Join {
        id: String,
        grants: MediaGrants,
        events: mpsc::UnboundedSender<SfuEvent>,
        reply: Reply<u64>,
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
    /// A receive-only player's offer (WHEP): it watches `source`'s camera and microphone on
    /// a connection it offered, answered once and never renegotiated.
    Watch {
        id: String,
        sdp: String,
        source: String,
        reply: Reply<String>,
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
        session: u64,
        reply: Option<oneshot::Sender<()>>,
    },
    /// A tap (the recorder) or another shard's subscriber wants a keyframe of a track.
    Keyframe {
        track: String,
        layer: Layer,
    },
    /// The room has a shard on another worker (`relay`): tracks published here go there too.
    Link {
        peer: Peer,
    },
    /// The shard on worker `index` is gone, with whatever was published on it.
    Unlink {
        index: usize,
    },
    /// A track published on another shard.
    RelayTrack(Box<RelayedTrack>),
    RelayMuted {
        track: String,
        muted: bool,
    },
    RelayUnpublished {
        track: String,
    },
}

impl Cmd {
    /// Whether this command brings the room into being on a worker where it is not yet: the
    /// others are about a room that exists, and mean nothing where it does not.
    pub fn opens_room(&self) -> bool {
        matches!(self, Cmd::Join { .. } | Cmd::Tap { .. } | Cmd::Link { .. })
    }
}

/// Audio level (−dBov) below which a participant counts as speaking.
const SPEAKING_LEVEL: u64 = 60;
/// Longest candidate line accepted from a client.
const MAX_CANDIDATE_LEN: usize = 512;

struct Pc {
    id: ConnId,
    /// Connect deadline: set while not (or no longer) connected.
    deadline: Option<Instant>,
}

struct Member {
    session: u64,
    grants: MediaGrants,
    events: mpsc::UnboundedSender<SfuEvent>,
    publisher: Option<Pc>,
    subscriber: Option<Pc>,
    sub_connected: bool,
    offer_pending: bool,
    dirty: bool,
    /// Down-tracks by published track key: the sender on the subscribe connection and the
    /// track id the subscriber knows it by.
    downs: HashMap<String, (RTCRtpSenderId, String)>,
    /// Published track key by the down-track's id (how the subscriber's RTCP names it).
    by_down_id: HashMap<String, String>,
    audio_ext: Option<u8>,
    /// Bandwidth estimate for the subscribe connection.
    downlink: crate::bwe::Downlink,
    quality: Option<crate::Quality>,
    /// Video stopped for this subscriber because its link loses too much (audio only).
    fallback: crate::bwe::Fallback,
    /// When the fallback was last fed a loss, and the NACK counts since the last rate.
    fallback_at: Instant,
    nacks: crate::bwe::NackWindow,
    /// A host muted this participant: audio they publish is held until they unmute it.
    audio_held: bool,
    /// A WHEP player: its subscribe connection carries what it was answered with, nothing
    /// more (it cannot renegotiate), so later tracks are not added and nothing is offered.
    watching: bool,
    /// What its accepted publish offer says it sends (WHEP offers for it wait for those).
    sends: Sends,
}

pub struct Room {
    pub id: Arc<str>,
    config: Arc<SfuConfig>,
    /// The worker this shard is on, for the recorder's keyframe requests and as the origin
    /// other shards ask for keyframes of tracks published here.
    me: Peer,
    /// The room's shards on other workers.
    peers: Vec<Peer>,
    members: HashMap<String, Member>,
    tracks: HashMap<String, Published>,
    speaker: Option<String>,
    last_roll: Instant,
    /// When the subscribers' links were last read (`choose_layers`).
    last_eval: Instant,
    /// The last member session handed out.
    sessions: u64,
    /// Hidden in-process subscribers (the recorder), by name.
    taps: HashMap<String, mpsc::UnboundedSender<crate::TapEvent>>,
    /// WHEP offers that wait for their source's first packets (see `Cmd::Watch`).
    waiting: Vec<Waiting>,
}

/// How long a WHEP offer waits for the tracks its source said it sends: a browser's camera
/// sends its first frame a moment after its microphone's first packet, and a player answered
/// in between would have the sound only for its whole session (it cannot renegotiate).
const WATCH_WAIT: Duration = Duration::from_secs(2);

/// A WHEP offer held until its source's tracks are here, or `until`.
struct Waiting {
    id: String,
    sdp: String,
    source: String,
    until: Instant,
    reply: Reply<String>,
}

/// What a publish offer says its sender sends: the m-lines of each kind in use and sending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sends {
    audio: usize,
    video: usize,
}

impl Sends {
    fn of(sdp: &str) -> Self {
        let mut sends = Sends::default();
        let close = |section: Option<(&str, bool)>, sends: &mut Sends| match section {
            Some(("audio", true)) => sends.audio += 1,
            Some(("video", true)) => sends.video += 1,
            _ => {}
        };
        let mut section: Option<(&str, bool)> = None;
        for line in sdp.lines() {
            if let Some(m) = line.strip_prefix("m=") {
                close(section.take(), &mut sends);
                let mut parts = m.split_whitespace();
                let kind = parts.next().unwrap_or("");
                // Port 0: a section rejected or stopped. No direction attribute: sendrecv.
                section = Some((kind, parts.next() != Some("0")));
            } else if let Some((_, sending)) = section.as_mut()
                && matches!(line.trim_end(), "a=recvonly" | "a=inactive")
            {
                *sending = false;
            }
        }
        close(section, &mut sends);
        sends
    }
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
    pub fn new(id: Arc<str>, config: Arc<SfuConfig>, me: Peer, now: Instant) -> Self {
        Self {
            id,
            config,
            me,
            peers: Vec::new(),
            members: HashMap::new(),
            tracks: HashMap::new(),
            speaker: None,
            last_roll: now,
            last_eval: now,
            sessions: 0,
            taps: HashMap::new(),
            waiting: Vec::new(),
        }
    }

    /// Nothing here any more. A shard linked to others stays until `Sfu` unlinks it, so the
    /// room's next member on this worker meets its links.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.taps.is_empty() && self.peers.is_empty() && self.waiting.is_empty()
    }

    pub fn handle(&mut self, io: &mut Io, cmd: Cmd, now: Instant) {
        match cmd {
            Cmd::Join { id, grants, events, reply } => {
                let r = self.join(io, id, grants, events, now);
                ack(reply, r);
            }
            Cmd::PublishOffer { id, sdp, reply } => {
                let r = self.publish(io, &id, sdp, now);
                ack(reply, r);
            }
            Cmd::SubscribeAnswer { id, sdp, reply } => {
                let r = self.subscribe_answer(io, &id, sdp, now);
                ack(reply, r);
            }
            Cmd::Watch { id, sdp, source, reply } => {
                if self.starting(&source) {
                    io.stats.watches_waiting.fetch_add(1, Relaxed);
                    self.waiting.push(Waiting { id, sdp, source, until: now + WATCH_WAIT, reply });
                } else {
                    let r = self.watch(io, &id, sdp, &source, now);
                    ack(reply, r);
                }
            }
            Cmd::Candidate { id, target, candidate, reply } => {
                let r = self.remote_candidate(&id, target, &candidate);
                ack(reply, r);
            }
            Cmd::SetLayer { id, track, layer, reply } => {
                let estimate = self.members.get(&id).and_then(|m| m.downlink.estimate());
                let audio_only = self.members.get(&id).is_some_and(|m| m.fallback.active());
                let r = match self.tracks.get_mut(&track).and_then(|t| {
                    let (rates, kind) = (t.bps, t.kind);
                    let d = t.downs.iter_mut().find(|d| &*d.subscriber == id.as_str())?;
                    Some((rates, kind, d))
                }) {
                    Some((rates, kind, d)) => {
                        d.selector.request(if layer == OFF { OFF } else { layer.min(2) });
                        // Rates are unknown for a moment after a track appears: assume all sent.
                        let rates = if rates.iter().any(|x| *x > 0) { rates } else { [1, 1, 1] };
                        let chosen = d.selector.update(now, estimate, &rates);
                        // Kept for when the link allows video again (audio-only fallback).
                        let chosen = if audio_only && kind == TrackKind::Video { OFF } else { chosen };
                        self.retarget(io, &track, &id, chosen, now);
                        Ok(())
                    }
                    None => Err(SfuError::UnknownTrack),
                };
                ack(reply, r);
            }
            Cmd::Unpublish { id, track, reply } => {
                let key = format!("{id}/{track}");
                let r = if self.tracks.get(&key).is_some_and(|t| t.info.participant == id) {
                    self.unpublish(io, &key, now);
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
                        if !muted && t.held {
                            // Unmuting themselves is how a participant a host muted speaks again.
                            t.held = false;
                            if let Some(m) = self.members.get_mut(&id) {
                                m.audio_held = false;
                            }
                        }
                        Ok(())
                    }
                    None => Err(SfuError::UnknownTrack),
                };
                if r.is_ok() {
                    self.set_muted(&key, muted);
                }
                ack(reply, r);
            }
            Cmd::HoldAudio { id, reply } => {
                let r = match self.members.get_mut(&id) {
                    Some(m) => {
                        m.audio_held = true;
                        Ok(())
                    }
                    None => Err(SfuError::Gone),
                };
                if r.is_ok() {
                    let keys: Vec<String> = self
                        .tracks
                        .iter_mut()
                        .filter(|(_, t)| t.info.participant == id && t.kind == TrackKind::Audio)
                        .map(|(k, t)| {
                            t.held = true;
                            k.clone()
                        })
                        .collect();
                    for key in keys {
                        self.set_muted(&key, true);
                    }
                }
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
                                io.close(p.id);
                            }
                            for key in self.owned_by(&id) {
                                self.unpublish(io, &key, now);
                            }
                        }
                        Ok(())
                    }
                    None => Err(SfuError::Gone),
                };
                ack(reply, r);
            }
            Cmd::Tap { name, events, reply } => {
                self.taps.insert(name.clone(), events);
                let keys: Vec<String> = self.tracks.keys().cloned().collect();
                for key in keys {
                    self.tap_track(&name, &key);
                }
                ack(reply, Ok(()));
            }
            Cmd::Untap { name, reply } => {
                self.taps.remove(&name);
                for t in self.tracks.values_mut() {
                    t.taps.retain(|(n, _)| *n != name);
                }
                ack(reply, Ok(()));
            }
            Cmd::Leave { id, session, reply } => {
                // A socket that died after its identity reconnected must not take the new
                // session's media with it.
                if self.members.get(&id).is_some_and(|m| m.session == session) {
                    self.remove(io, &id, None, now);
                }
                if let Some(r) = reply {
                    let _ = r.send(());
                }
            }
            Cmd::Keyframe { track, layer } => {
                if let Some(t) = self.tracks.get_mut(&track) {
                    t.request_keyframe(io, layer, now, &io.stats.clone());
                }
            }
            Cmd::Link { peer } => {
                self.peers.retain(|p| p.index != peer.index);
                for t in self.tracks.values().filter(|t| t.is_local()) {
                    peer.send(&self.id, Cmd::RelayTrack(Box::new(self.relayed_track(t))));
                }
                self.peers.push(peer);
            }
            Cmd::Unlink { index } => {
                self.peers.retain(|p| p.index != index);
                let gone: Vec<String> = self
                    .tracks
                    .iter()
                    .filter(|(_, t)| matches!(&t.source, Source::Relayed { origin, .. } if origin.index == index))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in gone {
                    self.unpublish(io, &key, now);
                }
            }
            Cmd::RelayTrack(t) => self.add_relayed(io, *t, now),
            Cmd::RelayMuted { track, muted } => {
                if self.tracks.get(&track).is_some_and(|t| !t.is_local()) {
                    self.set_muted(&track, muted);
                }
            }
            Cmd::RelayUnpublished { track } => {
                if self.tracks.get(&track).is_some_and(|t| !t.is_local()) {
                    self.unpublish(io, &track, now);
                }
            }
        }
    }

    /// A track published here, as another shard learns of it.
    fn relayed_track(&self, t: &Published) -> RelayedTrack {
        RelayedTrack {
            info: t.info.clone(),
            local_id: t.local_id.clone(),
            codec: t.codec.clone(),
            muted: t.muted,
            reports: t.reports.clone(),
            highest: t.highest.clone(),
            origin: self.me.clone(),
        }
    }

    /// Sets a track's muted state, tells everyone here when it changed, and the other shards
    /// when the track is published here.
    fn set_muted(&mut self, key: &str, muted: bool) {
        let Some(t) = self.tracks.get_mut(key) else { return };
        let changed = t.muted != muted;
        set_muted(&self.members, t, muted);
        if changed && t.is_local() {
            for p in &self.peers {
                p.send(&self.id, Cmd::RelayMuted { track: key.to_owned(), muted });
            }
        }
    }

    /// A track another shard publishes: announced and offered to everyone here, as a track
    /// published here is.
    fn add_relayed(&mut self, io: &mut Io, t: RelayedTrack, now: Instant) {
        let key = t.info.id.clone();
        if self.tracks.get(&key).is_some_and(|p| p.is_local()) {
            return;
        }
        if self.tracks.contains_key(&key) {
            self.unpublish(io, &key, now);
        }
        let t = Published::relayed(t, self.id.clone());
        let (info, muted) = (t.info.clone(), t.muted);
        self.tracks.insert(key.clone(), t);
        self.announce(io, info, muted, now);
    }

    /// A packet of a track another shard publishes.
    pub fn relayed(&mut self, io: &mut Io, key: &str, inbound: &Arc<Inbound>, now: Instant) {
        let Some(t) = self.tracks.get_mut(key).filter(|t| !t.is_local()) else { return };
        t.layer_at(inbound.pkt.header.ssrc, inbound.layer);
        let stats = io.stats.clone();
        let f = t.on_packet(io, inbound.layer, &inbound.pkt, now, &stats);
        if !f.held && t.shared(&[]) {
            t.hand_on(io, &self.id, &[], inbound, &stats);
        }
        after_packet(t, io, &f, now, &stats);
    }

    fn owned_by(&self, id: &str) -> Vec<String> {
        self.tracks.iter().filter(|(_, t)| t.info.participant == id).map(|(k, _)| k.clone()).collect()
    }

    fn open(&self, io: &mut Io, member: &str, target: PcTarget, now: Instant) -> Result<Pc, SfuError> {
        let owner = Owner { room: self.id.clone(), member: member.into(), target };
        let id = io.open(owner, now)?;
        // The publish connection must come up now (its offer is here); the subscribe one only
        // once it has been offered something.
        let deadline = (target == PcTarget::Publish).then(|| now + self.config.connect_timeout);
        Ok(Pc { id, deadline })
    }

    fn join(
        &mut self,
        io: &mut Io,
        id: String,
        grants: MediaGrants,
        events: mpsc::UnboundedSender<SfuEvent>,
        now: Instant,
    ) -> Result<u64, SfuError> {
        if self.members.contains_key(&id) {
            // The same identity from a new socket: its old connections are dead weight.
            self.remove(io, &id, None, now);
        }
        let subscriber = if grants.subscribe { Some(self.open(io, &id, PcTarget::Subscribe, now)?) } else { None };
        // Everyone already publishing, and the newcomer told of each (and of what is muted).
        for t in self.tracks.values() {
            let _ = events.send(SfuEvent::TrackPublished(t.info.clone()));
            if t.muted {
                let _ = events.send(SfuEvent::TrackMuted {
                    id: t.info.id.clone(),
                    participant: t.info.participant.clone(),
                    muted: true,
                });
            }
        }
        if let Some(s) = &self.speaker {
            let _ = events.send(SfuEvent::ActiveSpeaker { participant: Some(s.clone()) });
        }
        self.sessions += 1;
        let session = self.sessions;
        self.members.insert(
            id.clone(),
            Member {
                session,
                grants,
                events,
                publisher: None,
                subscriber,
                sub_connected: false,
                offer_pending: false,
                dirty: false,
                downs: HashMap::new(),
                by_down_id: HashMap::new(),
                audio_ext: None,
                downlink: crate::bwe::Downlink::default(),
                quality: None,
                fallback: crate::bwe::Fallback::default(),
                fallback_at: now,
                nacks: crate::bwe::NackWindow::default(),
                audio_held: false,
                watching: false,
                sends: Sends::default(),
            },
        );
        let keys: Vec<String> =
            self.tracks.iter().filter(|(_, t)| t.info.participant != id).map(|(k, _)| k.clone()).collect();
        for k in keys {
            self.add_down(io, &id, &k)?;
        }
        // An offer with no media sections carries no ICE credentials: the subscribe
        // connection is first offered when there is something to receive.
        if self.members.get(&id).is_some_and(|m| !m.downs.is_empty()) {
            self.negotiate(io, &id, now)?;
        }
        Ok(session)
    }

    fn publish(&mut self, io: &mut Io, id: &str, sdp: String, now: Instant) -> Result<String, SfuError> {
        let grants = match self.members.get(id) {
            Some(m) => m.grants,
            None => return Err(SfuError::Gone),
        };
        if !grants.publish {
            return Err(SfuError::PublishNotAllowed);
        }
        let sends = Sends::of(&sdp);
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        if self.members.get(id).is_some_and(|m| m.publisher.is_none()) {
            let pc = self.open(io, id, PcTarget::Publish, now)?;
            if let Some(m) = self.members.get_mut(id) {
                m.publisher = Some(pc);
            }
        }
        let Some(m) = self.members.get_mut(id) else { return Err(SfuError::Gone) };
        let Some(p) = m.publisher.as_ref() else { return Err(SfuError::Gone) };
        let conn = p.id;
        let pc = io.pc(conn).ok_or(SfuError::Gone)?;
        let fresh = pc.remote_description().is_none();
        match answer_offer(pc, offer, now) {
            Ok(sdp) => {
                m.audio_ext = extmap_id(&sdp, engine::AUDIO_LEVEL_URI);
                m.sends = sends;
                Ok(engine::for_client(&self.config, &sdp))
            }
            Err(e) => {
                // A first offer the core refused (no fingerprint, an empty ufrag) leaves its
                // connection half set up: it would refuse the corrected offer too and wait out
                // the connect timeout. It goes, and the next offer starts a fresh one.
                if fresh {
                    m.publisher = None;
                    io.close(conn);
                }
                Err(e)
            }
        }
    }

    fn subscribe_answer(&mut self, io: &mut Io, id: &str, sdp: String, now: Instant) -> Result<(), SfuError> {
        let Some(m) = self.members.get_mut(id) else { return Err(SfuError::Gone) };
        if !m.offer_pending {
            return Err(SfuError::NoPendingOffer);
        }
        tracing::debug!(member = id, "subscribe answer");
        let Some(s) = m.subscriber.as_ref() else { return Err(SfuError::SubscribeNotAllowed) };
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        io.pc(s.id)
            .ok_or(SfuError::Gone)?
            .set_remote_description(now, answer)
            .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        io.replay_early(s.id, now);
        m.offer_pending = false;
        let dirty = m.dirty;
        for t in self.tracks.values_mut() {
            if let Some(d) = t.down_mut(id).filter(|d| d.offered) {
                d.negotiated = true;
            }
        }
        if dirty {
            self.negotiate(io, id, now)?;
        }
        Ok(())
    }

    /// Whether `source` said it sends more tracks of a kind than have arrived: its first
    /// packets are on their way (a track exists here from its first packet).
    fn starting(&self, source: &str) -> bool {
        let Some(m) = self.members.get(source) else { return false };
        let count =
            |kind: TrackKind| self.tracks.values().filter(|t| t.info.participant == source && t.kind == kind).count();
        count(TrackKind::Audio) < m.sends.audio || count(TrackKind::Video) < m.sends.video
    }

    /// The WHEP offers whose source's tracks are all here now, or that waited long enough
    /// (answered with what there is); a player that gave up meanwhile is dropped.
    fn serve_waiting(&mut self, io: &mut Io, now: Instant) {
        for w in std::mem::take(&mut self.waiting) {
            if !w.reply.is_closed() && now < w.until && self.starting(&w.source) {
                self.waiting.push(w);
                continue;
            }
            io.stats.watches_waiting.fetch_sub(1, Relaxed);
            if w.reply.is_closed() {
                continue;
            }
            let r = self.watch(io, &w.id, w.sdp, &w.source, now);
            ack(w.reply, r);
        }
    }

    /// A WHEP player's offer: a subscribe connection built from it, carrying `source`'s
    /// camera (its `cam`, else its first video) and microphone (its `mic`, else its first
    /// audio) on the offered sections, answered once. Layers and keyframes as for a browser
    /// viewer (highest first, the estimate moves it). Nothing later is added: when the source
    /// stops, the player's session ends and it starts another.
    fn watch(&mut self, io: &mut Io, id: &str, sdp: String, source: &str, now: Instant) -> Result<String, SfuError> {
        let Some(m) = self.members.get(id) else { return Err(SfuError::Gone) };
        if m.subscriber.is_some() || m.publisher.is_some() {
            return Err(SfuError::InvalidSdp("this member is already connected".into()));
        }
        let pick = |kind: TrackKind, name: &str| {
            let mine = || self.tracks.iter().filter(|(_, t)| t.info.participant == source && t.kind == kind);
            mine()
                .find(|(_, t)| t.local_id == name)
                .or_else(|| mine().min_by(|a, b| a.0.cmp(b.0)))
                .map(|(k, _)| k.clone())
        };
        let keys: Vec<String> =
            [pick(TrackKind::Video, "cam"), pick(TrackKind::Audio, "mic")].into_iter().flatten().collect();
        if keys.is_empty() {
            return Err(SfuError::NothingToWatch);
        }
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let pc = self.open(io, id, PcTarget::Subscribe, now)?;
        let conn = pc.id;
        if let Some(m) = self.members.get_mut(id) {
            m.subscriber = Some(Pc { id: conn, deadline: Some(now + self.config.connect_timeout) });
            m.grants.subscribe = true;
        }
        let answered = (|| {
            io.pc(conn)
                .ok_or(SfuError::Gone)?
                .set_remote_description(now, offer)
                .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
            for k in &keys {
                self.add_down(io, id, k)?;
            }
            let pc = io.pc(conn).ok_or(SfuError::Gone)?;
            let answer = pc.create_answer(None).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
            pc.set_local_description(now, answer.clone()).map_err(internal)?;
            Ok::<String, SfuError>(pc.local_description().map(|d| d.sdp).unwrap_or(answer.sdp))
        })();
        let sdp = match answered {
            Ok(sdp) => sdp,
            Err(e) => {
                // Nothing half-built stays: the player may offer again.
                self.remove(io, id, None, now);
                return Err(e);
            }
        };
        io.replay_early(conn, now);
        for k in &keys {
            if let Some(d) = self.tracks.get_mut(k).and_then(|t| t.down_mut(id)) {
                d.offered = true;
                d.negotiated = true;
            }
        }
        if let Some(m) = self.members.get_mut(id) {
            m.watching = true;
        }
        Ok(engine::for_client(&self.config, &sdp))
    }

    /// The server is an ICE-lite agent: it sends no checks, so the client's candidates are
    /// checked for form only and not used (its checks show the server where it is).
    fn remote_candidate(&self, id: &str, target: PcTarget, c: &IceCandidate) -> Result<(), SfuError> {
        let Some(m) = self.members.get(id) else { return Err(SfuError::Gone) };
        let exists = match target {
            PcTarget::Publish => m.publisher.is_some(),
            PcTarget::Subscribe => m.subscriber.is_some(),
        };
        if !exists {
            return Err(SfuError::InvalidCandidate("no such connection yet".into()));
        }
        if c.candidate.len() > MAX_CANDIDATE_LEN {
            return Err(SfuError::InvalidCandidate("too long".into()));
        }
        Ok(())
    }

    /// (Re)offers the subscribe connection, or marks it to be re-offered once the pending
    /// offer is answered: one offer in flight at a time (RFC 8829 §4.1.8 glare avoidance).
    fn negotiate(&mut self, io: &mut Io, id: &str, now: Instant) -> Result<(), SfuError> {
        let Some(m) = self.members.get_mut(id) else { return Ok(()) };
        if m.watching {
            return Ok(());
        }
        let Some(s) = m.subscriber.as_mut() else { return Ok(()) };
        if m.offer_pending {
            m.dirty = true;
            return Ok(());
        }
        let pc = io.pc(s.id).ok_or(SfuError::Gone)?;
        let offer = pc.create_offer(None).map_err(internal)?;
        pc.set_local_description(now, offer.clone()).map_err(internal)?;
        let sdp = pc.local_description().map(|d| d.sdp).unwrap_or(offer.sdp);
        tracing::debug!(conn = s.id, member = id, "subscribe offer");
        if !m.sub_connected {
            s.deadline.get_or_insert(now + self.config.connect_timeout);
        }
        m.offer_pending = true;
        m.dirty = false;
        for t in self.tracks.values_mut() {
            if let Some(d) = t.down_mut(id) {
                d.offered = true;
            }
        }
        let _ = m.events.send(SfuEvent::SubscribeOffer { sdp: engine::for_client(&self.config, &sdp) });
        Ok(())
    }

    /// Something a connection of this room emitted.
    pub fn on_event(&mut self, io: &mut Io, owner: &Owner, ev: RTCPeerConnectionEvent, now: Instant) {
        match ev {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => self.pc_state(io, owner, state, now),
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) if owner.target == PcTarget::Publish => {
                if let Err(e) = self.track_opened(io, &owner.member, init, now) {
                    tracing::warn!(room = %self.id, participant = %owner.member, error = %e, "published track refused");
                }
            }
            _ => {}
        }
    }

    /// Media a connection of this room read.
    pub fn on_message(&mut self, io: &mut Io, owner: &Owner, msg: RTCMessage, now: Instant) {
        match (owner.target, msg) {
            (PcTarget::Publish, RTCMessage::RtpPacket(track_id, pkt)) => {
                self.on_rtp(io, &owner.member, &track_id, pkt, now)
            }
            (PcTarget::Publish, RTCMessage::RtcpPacket(track_id, packets)) => {
                let key = format!("{}/{track_id}", owner.member);
                let Some(t) = self.tracks.get(&key) else { return };
                for p in &packets {
                    if let Some(sr) = p.as_any().downcast_ref::<rtc::rtcp::sender_report::SenderReport>() {
                        t.reports.set(sr.ssrc, SenderClock { ntp: sr.ntp_time, rtp: sr.rtp_time });
                    }
                }
            }
            (PcTarget::Subscribe, RTCMessage::RtcpPacket(down_id, packets)) => {
                // The subscriber's keyframe requests go to the publisher, for the layer it gets.
                if !packets.iter().any(|p| crate::rtcp::is_keyframe_request(p.as_ref())) {
                    return;
                }
                let Some(key) = self.members.get(&*owner.member).and_then(|m| m.by_down_id.get(&down_id)).cloned()
                else {
                    return;
                };
                let stats = io.stats.clone();
                if let Some(t) = self.tracks.get_mut(&key)
                    && let Some(layer) = t.down_mut(&owner.member).map(|d| d.layer())
                {
                    t.request_keyframe(io, layer, now, &stats);
                }
            }
            _ => {}
        }
    }

    fn on_rtp(&mut self, io: &mut Io, member: &str, track_id: &str, pkt: rtp::Packet, now: Instant) {
        let key = format!("{member}/{track_id}");
        let Some(t) = self.tracks.get_mut(&key) else { return };
        let ssrc = pkt.header.ssrc;
        let layer = match t.layer_of(ssrc) {
            Some(l) => l,
            None => {
                // A layer whose opening we did not see: ask the receiver which rid it has.
                let rid = t.local_receiver().and_then(|(conn, receiver)| {
                    io.pc(conn).and_then(|pc| pc.rtp_receiver(receiver).and_then(|r| r.track().rid(ssrc).cloned()))
                });
                t.open_layer(ssrc, rid.as_deref());
                t.layer_of(ssrc).unwrap_or(0)
            }
        };
        let stats = io.stats.clone();
        let f = t.on_packet(io, layer, &pkt, now, &stats);
        if !f.held && t.shared(&self.peers) {
            let inbound = Arc::new(Inbound { layer, keyframe: f.keyframe, padding: f.padding, pkt });
            t.hand_on(io, &self.id, &self.peers, &inbound, &stats);
        }
        after_packet(t, io, &f, now, &stats);
    }

    fn pc_state(&mut self, io: &mut Io, owner: &Owner, state: RTCPeerConnectionState, now: Instant) {
        tracing::debug!(member = %owner.member, target = ?owner.target, ?state, "connection");
        let timeout = self.config.connect_timeout;
        let Some(m) = self.members.get_mut(&*owner.member) else { return };
        let pc = match owner.target {
            PcTarget::Publish => m.publisher.as_mut(),
            PcTarget::Subscribe => m.subscriber.as_mut(),
        };
        let Some(p) = pc else { return };
        let subscribe = owner.target == PcTarget::Subscribe;
        match state {
            RTCPeerConnectionState::Connected => {
                p.deadline = None;
                if subscribe {
                    m.sub_connected = true;
                    self.set_connected(&owner.member, true);
                }
            }
            RTCPeerConnectionState::Disconnected => {
                // ICE may come back (network change); give it the connect timeout to do so.
                p.deadline.get_or_insert(now + timeout);
                if subscribe {
                    m.sub_connected = false;
                    self.set_connected(&owner.member, false);
                }
            }
            RTCPeerConnectionState::Failed => self.remove(io, &owner.member.clone(), Some("connection_failed"), now),
            _ => {}
        }
    }

    fn set_connected(&mut self, member: &str, connected: bool) {
        for t in self.tracks.values_mut() {
            if let Some(d) = t.down_mut(member) {
                d.connected = connected;
            }
        }
    }

    fn track_opened(&mut self, io: &mut Io, id: &str, init: RTCTrackEventInit, now: Instant) -> Result<(), SfuError> {
        let key = format!("{id}/{}", init.track_id);
        tracing::debug!(member = id, track = %init.track_id, ssrc = init.ssrc, rid = ?init.rid, "published track opened");
        // Each simulcast layer opens on its own: a further layer of a known track.
        if let Some(t) = self.tracks.get_mut(&key)
            && t.local_receiver().is_some_and(|(_, r)| r == init.receiver_id)
        {
            t.open_layer(init.ssrc, init.rid.as_deref());
            return Ok(());
        }
        let Some(m) = self.members.get(id) else { return Ok(()) };
        let Some(conn) = m.publisher.as_ref().map(|p| p.id) else { return Ok(()) };
        let (audio_ext, audio_held) = (m.audio_ext, m.audio_held);
        let owned = self.tracks.values().filter(|t| t.info.participant == id).count();
        if owned >= self.config.max_tracks_per_participant && !self.tracks.contains_key(&key) {
            let _ = m.events.send(SfuEvent::Closed { reason: "too_many_tracks" });
            return Err(SfuError::TooManyTracks);
        }
        let pc = io.pc(conn).ok_or(SfuError::Gone)?;
        let receiver = pc.rtp_receiver(init.receiver_id).ok_or_else(|| internal("track without receiver"))?;
        let track = receiver.track();
        let kind = match track.kind() {
            RtpCodecKind::Audio => TrackKind::Audio,
            _ => TrackKind::Video,
        };
        let codec = track.codec(init.ssrc).cloned().ok_or_else(|| internal("track without codec"))?;
        if self.tracks.contains_key(&key) {
            self.unpublish(io, &key, now);
        }
        // Audio published while a host's mute holds this participant starts held (and muted).
        let held = kind == TrackKind::Audio && audio_held;
        let info = TrackInfo {
            id: key.clone(),
            participant: id.to_owned(),
            kind,
            codec: codec.mime_type.clone(),
            simulcast: init.rid.is_some(),
        };
        let source = Source::Local { conn, receiver: init.receiver_id };
        let mut t = Published::new(info.clone(), init.track_id.clone(), kind, codec, source, audio_ext, held);
        t.open_layer(init.ssrc, init.rid.as_deref());
        io.stats.published_tracks.fetch_add(1, Relaxed);
        for p in &self.peers {
            p.send(&self.id, Cmd::RelayTrack(Box::new(self.relayed_track(&t))));
        }
        self.tracks.insert(key.clone(), t);
        self.announce(io, info, held, now);
        Ok(())
    }

    /// A new track, here or on another shard: everyone here told of it (and whether it is
    /// muted), the taps handed it, everyone but its publisher offered it.
    fn announce(&mut self, io: &mut Io, info: TrackInfo, muted: bool, now: Instant) {
        let (key, id) = (info.id.clone(), info.participant.clone());
        broadcast(&self.members, &SfuEvent::TrackPublished(info));
        if muted {
            broadcast(&self.members, &SfuEvent::TrackMuted { id: key.clone(), participant: id.clone(), muted: true });
        }
        let taps: Vec<String> = self.taps.keys().cloned().collect();
        for name in taps {
            self.tap_track(&name, &key);
        }
        let subs: Vec<String> = self.members.keys().filter(|k| **k != id).cloned().collect();
        for s in subs {
            if let Err(e) = self.add_down(io, &s, &key) {
                tracing::warn!(room = %self.id, subscriber = %s, error = %e, "cannot add down-track");
                continue;
            }
            let _ = self.negotiate(io, &s, now);
        }
        if !self.waiting.is_empty() {
            self.serve_waiting(io, now);
        }
    }

    /// Hands a tap the packets of one track: all simulcast layers, with the publisher's sender
    /// reports; the tap picks what it keeps.
    fn tap_track(&mut self, name: &str, key: &str) {
        let Some(events) = self.taps.get(name) else { return };
        let Some(t) = self.tracks.get_mut(key) else { return };
        let (tx, rx) = mpsc::channel(TAP_QUEUE);
        t.taps.retain(|(n, _)| n != name);
        t.taps.push((name.to_owned(), tx));
        let tap = crate::TapTrack {
            info: t.info.clone(),
            clock_rate: t.codec.clock_rate,
            channels: t.codec.channels,
            packets: rx,
            reports: t.reports.clone(),
            keyframes: crate::KeyframeRequester::new(
                self.me.cmd.clone(),
                self.id.clone(),
                key.to_owned(),
                t.highest.clone(),
            ),
        };
        if events.send(crate::TapEvent::Track(tap)).is_err() {
            // The tap is gone without saying so: forget it.
            self.taps.remove(name);
            t.taps.retain(|(n, _)| n != name);
        }
    }

    fn add_down(&mut self, io: &mut Io, subscriber: &str, key: &str) -> Result<(), SfuError> {
        let Some(t) = self.tracks.get_mut(key) else { return Ok(()) };
        let Some(m) = self.members.get_mut(subscriber) else { return Ok(()) };
        let Some(s) = m.subscriber.as_ref() else { return Ok(()) };
        if m.downs.contains_key(key) || m.watching {
            return Ok(());
        }
        let payload_type = engine::payload_type_for(&t.codec.mime_type).ok_or_else(|| internal("codec not offered"))?;
        let out_ssrc: u32 = rand::random::<u32>().max(1);
        // No codec named for the down-track: its m-line then offers every codec of its kind
        // (VP8 and H.264), not only the one this track uses. The first answer fixes which
        // codecs a connection has negotiated, and a track in a codec outside them could never
        // be added to it: a room whose browsers send VP8 could not show an operating room's
        // H.264 encoder to those already watching, or the other way round. What is sent is
        // still this track's codec, by its payload type (`payload_type` below, our sender).
        let coding = RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(out_ssrc), ..Default::default() },
            ..Default::default()
        };
        let kind = if t.kind == TrackKind::Audio { RtpCodecKind::Audio } else { RtpCodecKind::Video };
        // Unique on this connection (`{participant}.{track}`): two publishers' `cam`s must not
        // share a track id, or a client that keys tracks by id (webrtc-rs does) mixes them.
        // The stream id stays the participant.
        let down_id = down_track_id(&t.info.participant, &t.local_id);
        let track =
            MediaStreamTrack::new(t.info.participant.clone(), down_id.clone(), t.info.id.clone(), kind, vec![coding]);
        let sender = io.pc(s.id).ok_or(SfuError::Gone)?.add_track(track).map_err(internal)?;
        // Start on the highest layer the publisher is sending (a 640×480 camera in Chromium
        // sends only q and h); the selector adjusts from there.
        let initial: Layer = match t.bps.iter().rposition(|r| *r > 0) {
            Some(top) => top as Layer,
            None => t.highest.load(Relaxed),
        };
        let mut d = Down::new(subscriber.into(), s.id, sender, out_ssrc, payload_type, t.codec.clock_rate, initial);
        d.connected = m.sub_connected;
        t.downs.push(d);
        m.downs.insert(key.to_owned(), (sender, down_id.clone()));
        m.by_down_id.insert(down_id, key.to_owned());
        io.stats.down_tracks.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Points a down-track at a layer; a real layer it is not on yet needs a keyframe.
    fn retarget(&mut self, io: &mut Io, key: &str, subscriber: &str, layer: Layer, now: Instant) {
        let stats = io.stats.clone();
        let Some(t) = self.tracks.get_mut(key) else { return };
        let Some(d) = t.down_mut(subscriber) else { return };
        if d.rw.target() == layer {
            return;
        }
        d.rw.set_target(layer);
        if layer != OFF && d.rw.current() != Some(layer) {
            t.request_keyframe(io, layer, now, &stats);
        }
    }

    fn unpublish(&mut self, io: &mut Io, key: &str, now: Instant) {
        let Some(mut t) = self.tracks.remove(key) else { return };
        // Counted where published; the other shards are told.
        if t.is_local() {
            io.stats.published_tracks.fetch_sub(1, Relaxed);
            for p in &self.peers {
                p.send(&self.id, Cmd::RelayUnpublished { track: key.to_owned() });
            }
        }
        for tap in self.taps.values() {
            let _ = tap.send(crate::TapEvent::TrackEnded { id: key.to_owned() });
        }
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let Some(m) = self.members.get_mut(&id) else { continue };
            let _ = m
                .events
                .send(SfuEvent::TrackUnpublished { id: key.to_owned(), participant: t.info.participant.clone() });
            if let Some((sender, down_id)) = m.downs.remove(key) {
                m.by_down_id.remove(&down_id);
                if let Some(d) = t.remove_down(&id) {
                    io.forget_stream(d.conn, d.out_ssrc);
                }
                io.stats.down_tracks.fetch_sub(1, Relaxed);
                if let Some(pc) = m.subscriber.as_ref().and_then(|s| io.pc(s.id)) {
                    let _ = pc.remove_track(sender);
                }
                let _ = self.negotiate(io, &id, now);
            }
        }
    }

    /// Takes a participant out: closes both connections, unpublishes its tracks, drops its
    /// down-tracks. `reason` set: the SFU decided (timeout, failure) and tells the participant.
    fn remove(&mut self, io: &mut Io, id: &str, reason: Option<&'static str>, now: Instant) {
        let Some(m) = self.members.remove(id) else { return };
        for key in m.downs.keys() {
            if let Some(t) = self.tracks.get_mut(key) {
                t.remove_down(id);
            }
            io.stats.down_tracks.fetch_sub(1, Relaxed);
        }
        for p in [m.publisher, m.subscriber].into_iter().flatten() {
            io.close(p.id);
        }
        for k in self.owned_by(id) {
            self.unpublish(io, &k, now);
        }
        if self.speaker.as_deref() == Some(id) {
            self.set_speaker(None);
        }
        // Told only once everything is freed, so what the participant sees next is true.
        if let Some(r) = reason {
            let _ = m.events.send(SfuEvent::Closed { reason: r });
            tracing::info!(room = %self.id, participant = %id, reason = r, "media removed");
        }
    }

    /// Everything goes (the worker is stopping).
    pub fn close(&mut self, io: &mut Io, now: Instant) {
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            self.remove(io, &id, None, now);
        }
        // Their players are told the room is gone (their reply dropped).
        io.stats.watches_waiting.fetch_sub(self.waiting.len(), Relaxed);
        self.waiting.clear();
    }

    fn set_speaker(&mut self, who: Option<String>) {
        if self.speaker == who {
            return;
        }
        broadcast(&self.members, &SfuEvent::ActiveSpeaker { participant: who.clone() });
        self.speaker = who;
    }

    /// Twice a second: connect deadlines, the active speaker, and once a second the layer
    /// rates, each subscriber's estimate and layer choice, and connection quality.
    pub fn tick(&mut self, io: &mut Io, now: Instant) {
        if !self.waiting.is_empty() {
            self.serve_waiting(io, now);
        }
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
            self.remove(io, &id, Some("connect_timeout"), now);
        }
        // Active speaker: the loudest voiced audio track of the last interval.
        let mut loudest: Option<(u64, String)> = None;
        for t in self.tracks.values_mut().filter(|t| t.kind == TrackKind::Audio) {
            let level = std::mem::replace(&mut t.level, 127);
            if level < SPEAKING_LEVEL && loudest.as_ref().is_none_or(|(l, _)| level < *l) {
                loudest = Some((level, t.info.participant.clone()));
            }
        }
        if let Some((_, who)) = loudest {
            self.set_speaker(Some(who));
        }
        // Layer bitrates over a second (a keyframe would skew half a second); the links every
        // tick, so a lossy downlink is met within about half a second of its first NACKs.
        let elapsed = now.saturating_duration_since(self.last_roll);
        if elapsed >= Duration::from_secs(1) {
            self.last_roll = now;
            for t in self.tracks.values_mut() {
                t.roll(elapsed);
            }
        }
        let since = now.saturating_duration_since(self.last_eval);
        self.last_eval = now;
        self.choose_layers(io, now, since);
    }

    /// Layer choice per down-track: the subscriber's request, the layers actually arriving
    /// (Chromium drops the top one on a weak uplink), and the subscriber's link over the last
    /// `since`.
    fn choose_layers(&mut self, io: &mut Io, now: Instant, since: Duration) {
        // Per subscriber, over all its video down-tracks: the bitrate being sent, how many,
        // whether every one is already on its lowest layer, and the packets sent since the last
        // reading.
        let mut sending: HashMap<Arc<str>, (u64, usize, bool, u64)> = HashMap::new();
        for t in self.tracks.values_mut().filter(|t| t.kind == TrackKind::Video) {
            let lowest = t.bps.iter().position(|r| *r > 0).map_or(0, |l| l as Layer);
            for d in &mut t.downs {
                let e = sending.entry(d.subscriber.clone()).or_insert((0, 0, true, 0));
                e.0 += t.bps.get(usize::from(d.rw.target())).copied().unwrap_or(0);
                e.1 += 1;
                e.2 &= d.rw.target() == OFF || d.selector.chosen() <= lowest;
                e.3 += std::mem::take(&mut d.sent);
            }
        }
        let mut quality_changes = Vec::new();
        // Per subscriber: its share of the estimate per video, and whether it gets audio only.
        let mut shares: HashMap<String, (Option<u64>, bool)> = HashMap::new();
        for (id, m) in self.members.iter_mut() {
            let (sent, videos, on_lowest, packets) = sending.get(id.as_str()).copied().unwrap_or((0, 0, true, 0));
            if let Some(s) = m.subscriber.as_ref().filter(|_| m.sub_connected)
                && let Some(link) = io.link(s.id)
            {
                let reported =
                    (link.reports.swap(0, Relaxed) > 0).then(|| f64::from(link.fraction_lost.swap(0, Relaxed)) / 256.0);
                let repaired = crate::bwe::Repaired {
                    lost: link.cumulative_lost.swap(0, Relaxed),
                    expected: link.expected.swap(0, Relaxed),
                };
                let nack_rate = m.nacks.add(link.nacked.swap(0, Relaxed), packets);
                let lost = crate::bwe::link_loss(reported, nack_rate);
                let remb = link.remb_bps.load(Relaxed);
                let estimate = m.downlink.update(now, remb, lost, sent, since);
                tracing::debug!(subscriber = %id, remb, ?reported, repaired = ?repaired.fraction(), ?nack_rate, packets, sending = sent, ?estimate, "downlink estimate");
                // Video stops on the loss before repair (NACKs: the reports read 0 while
                // resends hide a 20% loss) and comes back on the audio's reports (audio is
                // not resent, and without video there are no NACKs).
                let signal = if m.fallback.active() { reported } else { nack_rate };
                if videos > 0
                    && let Some(l) = signal
                {
                    let since = now.saturating_duration_since(m.fallback_at);
                    m.fallback_at = now;
                    if let Some(active) = m.fallback.update(l, repaired, on_lowest, since) {
                        // NACK counts from before the switch would be read as the link of now
                        // when video resumes (a 20% loss 40 s old cut the estimate again).
                        m.nacks = crate::bwe::NackWindow::default();
                        tracing::info!(subscriber = %id, lost = l, active, "audio-only fallback");
                        let _ = m.events.send(SfuEvent::AudioOnly { active });
                    }
                }
                if let Some(lost) = lost {
                    let q = crate::Quality::from_loss(lost);
                    if m.quality != Some(q) {
                        m.quality = Some(q);
                        quality_changes.push((id.clone(), q));
                    }
                }
            }
            shares.insert(id.clone(), (m.downlink.estimate().map(|e| e / videos.max(1) as u64), m.fallback.active()));
        }
        let mut moves = Vec::new();
        for (key, t) in self.tracks.iter_mut().filter(|(_, t)| t.kind == TrackKind::Video) {
            if t.bps.iter().all(|r| *r == 0) {
                continue;
            }
            for d in &mut t.downs {
                let (share, audio_only) = shares.get(&*d.subscriber).copied().unwrap_or((None, false));
                // While audio only, the selector is left where it was: video comes back on the
                // layer it last had (the lowest), then climbs as the link allows.
                let chosen = if audio_only { OFF } else { d.selector.update(now, share, &t.bps) };
                if d.rw.target() != chosen {
                    moves.push((key.clone(), d.subscriber.clone(), chosen));
                }
            }
        }
        for (key, sub, layer) in moves {
            self.retarget(io, &key, &sub, layer, now);
        }
        // Each member hears of its own link; who else is told is the room's rule (signaling
        // passes it on), so a broadcast of hundreds does not send each change to everyone.
        for (participant, quality) in quality_changes {
            if let Some(m) = self.members.get(&participant) {
                let _ = m.events.send(SfuEvent::ConnectionQuality { participant, quality });
            }
        }
    }
}

/// What follows a packet's fan-out: the count, and the keyframes its down-tracks need.
fn after_packet(t: &mut Published, io: &mut Io, f: &super::track::Forwarded, now: Instant, stats: &SfuStats) {
    if f.forwarded > 0 {
        stats.forwarded_packets.fetch_add(f.forwarded, Relaxed);
    }
    for (l, want) in f.want_keyframe.iter().enumerate() {
        if *want {
            t.request_keyframe(io, l as Layer, now, stats);
        }
    }
}

/// Applies a client's offer and makes, applies and returns the answer.
fn answer_offer(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    offer: RTCSessionDescription,
    now: Instant,
) -> Result<String, SfuError> {
    pc.set_remote_description(now, offer).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
    let answer = pc.create_answer(None).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
    pc.set_local_description(now, answer.clone()).map_err(internal)?;
    Ok(pc.local_description().map(|d| d.sdp).unwrap_or(answer.sdp))
}

/// The MediaStreamTrack id a subscriber sees for a published track (an SDP `msid` token:
/// no `/`).
pub(crate) fn down_track_id(participant: &str, local: &str) -> String {
    format!("{participant}.{local}")
}

/// The id our answer gave an RTP header extension (`a=extmap:<id> <uri>`).
fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|l| {
        let rest = l.strip_prefix("a=extmap:")?;
        let (id, tail) = rest.split_once(' ')?;
        (tail.trim() == uri).then(|| id.split('/').next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::Sends;

    /// What a publish offer says its sender sends: the m-lines that send, by kind; a rejected
    /// (port 0), receive-only or inactive one does not count, and sendrecv is the default.
    #[test]
    fn a_publish_offer_says_what_it_sends() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=inactive\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=sendonly\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:4\r\na=recvonly\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:5\r\n";
        assert_eq!(Sends::of(sdp), Sends { audio: 1, video: 1 });
        assert_eq!(Sends::of(""), Sends::default());
    }
}
