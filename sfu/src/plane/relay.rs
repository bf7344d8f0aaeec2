//! A room on several workers. A broadcast with more viewers than one worker should carry puts
//! the rest on other workers (`Sfu::join` decides where): each worker holds a part of the room
//! (its *shard*: its own members and connections), and the shards are linked to each other.
//! A shard hands every packet of a track published on it, decrypted and shared (an `Arc`, not
//! a copy), to the other shards once per turn, one batch per worker; each of them fans it out
//! to its own members exactly as it does its own tracks. What a track's subscribers need of its
//! publisher (a keyframe) goes back as a command to the shard it came from.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use tokio::sync::mpsc;

use super::track::{Inbound, SenderReports};
use super::worker::WorkerCmd;
use crate::{SfuStats, TrackInfo};

/// Batches of relayed packets waiting for a worker: a turn sends at most one to each other
/// worker, so this is a few hundred milliseconds of a busy worker's turns.
pub const RELAY_QUEUE: usize = 1024;

/// Another worker holding a shard of the same room (weak: a room must not keep a worker alive).
#[derive(Clone, Debug)]
pub struct Peer {
    pub index: usize,
    pub cmd: mpsc::WeakSender<WorkerCmd>,
    pub relay: mpsc::WeakSender<RelayBatch>,
}

impl Peer {
    /// A command for the same room on that worker. A full queue loses it (logged): the
    /// queue holds thousands, so that is a worker that stopped turning.
    pub fn send(&self, room: &Arc<str>, cmd: super::room::Cmd) {
        let Some(tx) = self.cmd.upgrade() else { return };
        if tx.try_send(WorkerCmd::Room { room: room.clone(), cmd }).is_err() {
            tracing::warn!(room = %room, worker = self.index, "relay command lost: the worker's queue is full");
        }
    }
}

/// A track published on another shard, as this shard learns of it.
pub struct RelayedTrack {
    pub info: TrackInfo,
    pub local_id: String,
    pub codec: RTCRtpCodec,
    pub muted: bool,
    /// The publisher's sender reports and highest layer, shared with the shard it is on (the
    /// recorder may tap the track on any shard).
    pub reports: Arc<SenderReports>,
    pub highest: Arc<std::sync::atomic::AtomicU8>,
    pub origin: Peer,
}

/// One packet of a track, for the same room on another worker.
pub struct RelayPacket {
    pub room: Arc<str>,
    pub track: Arc<str>,
    pub inbound: Arc<Inbound>,
}

pub type RelayBatch = Vec<RelayPacket>;

/// A turn's relayed packets, one batch per worker, sent when the turn's datagrams are.
#[derive(Default)]
pub struct Outbox {
    batches: Vec<(Peer, RelayBatch)>,
}

impl Outbox {
    pub fn push(&mut self, to: &Peer, room: &Arc<str>, track: &Arc<str>, inbound: &Arc<Inbound>) {
        let packet = RelayPacket { room: room.clone(), track: track.clone(), inbound: inbound.clone() };
        match self.batches.iter_mut().find(|(p, _)| p.index == to.index) {
            Some((_, batch)) => batch.push(packet),
            None => self.batches.push((to.clone(), vec![packet])),
        }
    }

    /// Hands each worker its batch. A worker whose queue is full loses the batch (counted as
    /// dropped): its viewers miss those packets and ask again as after any loss.
    pub fn flush(&mut self, stats: &SfuStats) {
        for (peer, batch) in self.batches.drain(..) {
            let Some(tx) = peer.relay.upgrade() else { continue };
            let n = batch.len() as u64;
            if tx.try_send(batch).is_err() {
                stats.dropped_packets.fetch_add(n, Relaxed);
            }
        }
    }
}
