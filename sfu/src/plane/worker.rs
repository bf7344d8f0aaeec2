//! A media worker: one thread, one UDP socket, the rooms placed on it and all their
//! connections. One turn of its loop takes `now` once, reads what the socket has, hands each
//! datagram to its connection and what the connection reads to its room (which forwards it to
//! the subscribers' connections at once), runs the commands and timers that are due, and then
//! sends everything the touched connections wrote.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::sansio::Protocol;
use tokio::sync::mpsc;

use super::conn::Identity;
use super::io::{ConnId, Io};
use super::relay::{Peer, RELAY_QUEUE, RelayBatch};
use super::room::{Cmd, Room};
use crate::{SfuConfig, SfuError, SfuStats, internal};

/// Room timers (connect deadlines, active speaker, layer choice) run this often.
const TICK: Duration = Duration::from_millis(500);
/// Datagrams read per turn before the turn's writes go out: bounds the delay a packet waits in
/// a turn while keeping the batches that make a turn cheap.
const MAX_DATAGRAMS_PER_TURN: usize = 256;
/// Commands run per turn at most, so a join storm cannot hold up forwarding for long.
const MAX_COMMANDS_PER_TURN: usize = 32;
/// Time a turn may spend setting connections up (commands, which parse and write SDP, and
/// DTLS handshake flights, which sign and agree keys) before the rest waits for the next turns.
/// A forwarded packet that arrives meanwhile waits for the turn: without a bound, a storm of
/// 200 joins made 1 turn in 130 take 5 to 20 ms (docs/performance.md).
const SETUP_BUDGET: Duration = Duration::from_millis(1);
/// DTLS datagrams held for later turns; beyond this the newest are dropped (DTLS resends).
const MAX_DEFERRED: usize = 4096;
/// Queue of commands to a worker.
const COMMAND_QUEUE: usize = 4096;
/// Socket buffers: a burst of keyframe packets to hundreds of viewers must fit.
const SOCKET_BUFFER: usize = 4 << 20;

pub enum WorkerCmd {
    Room { room: Arc<str>, cmd: Cmd },
}

/// What the rest of the SFU holds of a worker.
pub struct WorkerHandle {
    pub index: usize,
    pub tx: mpsc::Sender<WorkerCmd>,
    /// Packets relayed to this worker by the other shards of its rooms.
    pub relay: mpsc::Sender<RelayBatch>,
    /// The socket's address (every connection's host candidate on this worker).
    pub local: SocketAddr,
}

impl WorkerHandle {
    /// How rooms on other workers reach this one.
    pub fn peer(&self) -> Peer {
        Peer { index: self.index, cmd: self.tx.downgrade(), relay: self.relay.downgrade() }
    }
}

fn bind(ip: std::net::IpAddr, port: u16) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol as Proto, Socket, Type};
    let addr = SocketAddr::new(ip, port);
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Proto::UDP))?;
    // The kernel caps these at net.core.{r,w}mem_max; more is only asked for, never required.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Starts worker `index` on `config.bind_ips[0]`, port `udp_port + index` (any free port when
/// `udp_port` is 0).
pub fn spawn(
    index: usize,
    config: Arc<SfuConfig>,
    identity: Identity,
    stats: Arc<SfuStats>,
) -> Result<WorkerHandle, SfuError> {
    let ip = config.bind_ips.first().copied().ok_or_else(|| internal("no media address to bind"))?;
    let port = if config.udp_port == 0 { 0 } else { config.udp_port.saturating_add(index as u16) };
    let std_socket = bind(ip, port).map_err(|e| internal(format!("cannot bind media socket {ip}:{port}: {e}")))?;
    let local = std_socket.local_addr().map_err(internal)?;
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let (relay, relay_rx) = mpsc::channel(RELAY_QUEUE);
    let handle = WorkerHandle { index, tx, relay, local };
    let me = handle.peer();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(internal)?;
    std::thread::Builder::new()
        .name(format!("media-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                let socket = match tokio::net::UdpSocket::from_std(std_socket) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "media worker cannot use its socket");
                        return;
                    }
                };
                let io = match Io::new(socket, identity, stats) {
                    Ok(io) => io,
                    Err(e) => {
                        tracing::error!(error = %e, "media worker cannot use its socket");
                        return;
                    }
                };
                Worker { io, rooms: HashMap::new(), rx, relay_rx, me, config }.run().await;
            });
        })
        .map_err(internal)?;
    tracing::info!(worker = index, %local, "media worker listening");
    Ok(handle)
}

/// CPU time this thread has used (a system call: read once at each end of a turn).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_nsec).unwrap_or(0))
}

struct Worker {
    io: Io,
    rooms: HashMap<Arc<str>, Room>,
    rx: mpsc::Receiver<WorkerCmd>,
    relay_rx: mpsc::Receiver<RelayBatch>,
    /// This worker, as its rooms' other shards reach it.
    me: Peer,
    config: Arc<SfuConfig>,
}

impl Worker {
    async fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        let mut due: Vec<ConnId> = Vec::new();
        let mut next_tick = Instant::now() + TICK;
        let mut turn: Option<(Instant, Duration)> = None;
        let mut relayed: Option<RelayBatch> = None;
        let mut relay_open = true;
        let mut deferred: VecDeque<(SocketAddr, bytes::BytesMut)> = VecDeque::new();
        loop {
            self.io.flush();
            // A turn ends when its writes are out: how long it took is how long a datagram
            // that arrived at its start waited (the one clock read beside the turn's `now`).
            if let Some((start, cpu)) = turn.take() {
                self.io.stats.turns.observe(start.elapsed());
                self.io.stats.turns_cpu.observe(thread_cpu().saturating_sub(cpu));
            }
            let wake = self.io.next_timer().map_or(next_tick, |t| t.min(next_tick));
            // Set-up work left over from the last turn is taken up again at once.
            let wake = if deferred.is_empty() { wake } else { Instant::now() };
            let mut first = None;
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => first = Some(cmd),
                    // Every handle on this worker is gone: the server is stopping.
                    None => break,
                },
                batch = self.relay_rx.recv(), if relay_open => match batch {
                    Some(batch) => relayed = Some(batch),
                    None => relay_open = false,
                },
                r = self.io.socket.readable() => {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "media socket failed");
                        break;
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            let now = Instant::now();
            turn = Some((now, thread_cpu()));
            // Commands first: a client's answer applied before its checks of the same moment
            // are read lets those checks be answered at once.
            // The budget is measured with the clock (the one place besides the turn's length);
            // what the commands and connections are given is still the turn's `now`.
            let setup_until = now + SETUP_BUDGET;
            let spent = || Instant::now() >= setup_until;
            if let Some(cmd) = first {
                self.command(cmd, now);
            }
            for _ in 0..MAX_COMMANDS_PER_TURN {
                if spent() {
                    break; // the rest stay queued and make the next turn start at once
                }
                match self.rx.try_recv() {
                    Ok(cmd) => self.command(cmd, now),
                    Err(_) => break,
                }
            }
            // Handshakes held back by an earlier turn go first, in the order they came; at
            // least one per turn, so a steady stream of commands cannot starve them.
            let mut first_held = true;
            while first_held || !spent() {
                first_held = false;
                let Some((from, datagram)) = deferred.pop_front() else { break };
                if let Some(id) = self.io.deliver(from, &datagram, now) {
                    self.drain(id, now);
                }
            }
            // Packets from the rooms' other shards: what one turn of each of them sent.
            if let Some(batch) = relayed.take() {
                self.relayed(batch, now);
            }
            while let Ok(batch) = self.relay_rx.try_recv() {
                self.relayed(batch, now);
            }
            for _ in 0..MAX_DATAGRAMS_PER_TURN {
                match self.io.socket.try_recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let datagram = &buf[..n];
                        if super::demux::kind(datagram) == super::demux::Kind::Dtls && (!deferred.is_empty() || spent())
                        {
                            if deferred.len() < MAX_DEFERRED {
                                deferred.push_back((from, bytes::BytesMut::from(datagram)));
                            } else {
                                self.io.stats.dropped_packets.fetch_add(1, Relaxed);
                            }
                            continue;
                        }
                        if let Some(id) = self.io.deliver(from, datagram, now) {
                            self.drain(id, now);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // An ICMP error for an earlier send, reported on this call: nothing to read.
                    Err(e) => tracing::trace!(error = %e, "media socket read"),
                }
            }
            self.io.due(now, &mut due);
            for id in std::mem::take(&mut due) {
                self.drain(id, now);
            }
            if now >= next_tick {
                next_tick = now + TICK;
                for room in self.rooms.values_mut() {
                    room.tick(&mut self.io, now);
                }
                self.io.sender_reports(now);
                self.retire_empty();
            }
        }
        let now = Instant::now();
        for room in self.rooms.values_mut() {
            room.close(&mut self.io, now);
        }
        self.retire_empty();
        self.io.close_all();
    }

    /// Everything a connection has for us after a datagram or a timer: events, then media.
    fn drain(&mut self, id: ConnId, now: Instant) {
        let Some(owner) = self.io.owner(id) else { return };
        loop {
            let Some(pc) = self.io.pc(id) else { return };
            if let Some(ev) = pc.poll_event() {
                if let RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(state) = &ev {
                    tracing::debug!(conn = id, member = %owner.member, target = ?owner.target, ?state, "ICE");
                    self.io.ice_state(id, *state, now);
                }
                if let Some(room) = self.rooms.get_mut(&owner.room) {
                    room.on_event(&mut self.io, &owner, ev, now);
                }
                continue;
            }
            let Some(pc) = self.io.pc(id) else { return };
            if let Some(msg) = pc.poll_read() {
                if let Some(room) = self.rooms.get_mut(&owner.room) {
                    room.on_message(&mut self.io, &owner, msg.message, now);
                }
                continue;
            }
            return;
        }
    }

    fn relayed(&mut self, batch: RelayBatch, now: Instant) {
        for p in batch {
            // A shard that left its room meanwhile: the packet has nobody here.
            if let Some(room) = self.rooms.get_mut(&p.room) {
                room.relayed(&mut self.io, &p.track, &p.inbound, now);
            }
        }
    }

    fn command(&mut self, cmd: WorkerCmd, now: Instant) {
        match cmd {
            WorkerCmd::Room { room, cmd } => {
                if !self.rooms.contains_key(&room) {
                    if !cmd.opens_room() {
                        // Nothing to do in a room that is not here (its replies read `Gone`).
                        return;
                    }
                    self.io.stats.rooms.fetch_add(1, Relaxed);
                    let r = Room::new(room.clone(), self.config.clone(), self.me.clone(), now);
                    self.rooms.insert(room.clone(), r);
                }
                let Some(r) = self.rooms.get_mut(&room) else { return };
                r.handle(&mut self.io, cmd, now);
                if r.is_empty() {
                    self.rooms.remove(&room);
                    self.io.stats.rooms.fetch_sub(1, Relaxed);
                }
            }
        }
    }

    fn retire_empty(&mut self) {
        let before = self.rooms.len();
        self.rooms.retain(|_, r| !r.is_empty());
        self.io.stats.rooms.fetch_sub(before - self.rooms.len(), Relaxed);
    }
}
