//! A worker's connections and its one socket: datagrams in, routed to their connection; each
//! touched connection's writes out; every connection's timer in one heap. Rooms reach their
//! connections only through [`Io::pc`], which also marks the connection for the next flush.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use std::io::IoSlice;

use bytes::BytesMut;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::state::RTCIceConnectionState;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rustc_hash::FxHashMap;
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, sendmmsg};

use super::conn::{self, Identity};
use super::demux::{Demux, Unrouted};
use super::sender::{Outbox, Sender};
use crate::rtcp::LinkReport;
use crate::{PcTarget, SfuError, SfuStats};

pub type ConnId = u64;

/// Who a connection belongs to, so what it reads reaches the right room and member.
#[derive(Clone, Debug)]
pub struct Owner {
    pub room: Arc<str>,
    pub member: Arc<str>,
    pub target: PcTarget,
}

pub struct Conn {
    pub pc: RTCPeerConnection,
    pub owner: Owner,
    /// Loss and REMB the remote reports about what we send (the RTCP tap writes it).
    pub link: Arc<LinkReport>,
    /// The timer last pushed to the heap for it: older heap entries are stale.
    timer: Option<Instant>,
    touched: bool,
    /// Datagrams for this connection the socket would not take.
    pub send_drops: u64,
    /// Checks that came before the client's description (see `Io::deliver`).
    early: Vec<(SocketAddr, BytesMut)>,
    /// ICE has selected a pair: until then the core drops everything but STUN.
    ice_connected: bool,
    /// DTLS that came before the pair was selected (see `Io::deliver`).
    early_dtls: Vec<(SocketAddr, BytesMut)>,
    /// What the room forwards to it (subscribe connections): sealed and addressed here.
    sender: Sender,
}

/// The turn's datagrams, their destinations and connections, sent together by `Io::flush`.
#[derive(Default)]
struct Outgoing {
    datagrams: Vec<BytesMut>,
    to: Vec<SocketAddrAny>,
    conn: Vec<ConnId>,
}

impl Outgoing {
    fn push(&mut self, id: ConnId, to: SocketAddr, datagram: BytesMut) {
        self.datagrams.push(datagram);
        self.to.push(SocketAddrAny::from(to));
        self.conn.push(id);
    }

    /// Moves the STUN messages among the datagrams pushed since `from` ahead of the others,
    /// keeping each group's order.
    ///
    /// Why: when the server is the DTLS client (a webrtc-rs or pion client answers our
    /// subscribe offer `passive`, since we are ICE-lite), the check that nominates the pair
    /// also starts our handshake, and the core writes the ClientHello before the answer to that
    /// check. The client, still waiting for the answer, drops the ClientHello, and ours is sent
    /// again only after DTLS's one-second retransmission timer: the consultation's one-second
    /// first-frame tail in docs/performance.md.
    fn stun_first(&mut self, from: usize) {
        let is_stun = |d: &BytesMut| super::demux::kind(d) == super::demux::Kind::Stun;
        let Some(other) = (from..self.datagrams.len()).find(|&i| !is_stun(&self.datagrams[i])) else { return };
        if !self.datagrams[other..].iter().any(is_stun) {
            return;
        }
        let tail: Vec<_> =
            self.datagrams.drain(other..).zip(self.to.drain(other..)).zip(self.conn.drain(other..)).collect();
        let (stun, rest): (Vec<_>, Vec<_>) = tail.into_iter().partition(|((d, _), _)| is_stun(d));
        for ((d, to), id) in stun.into_iter().chain(rest) {
            self.datagrams.push(d);
            self.to.push(to);
            self.conn.push(id);
        }
    }

    /// Where a connection's sender puts what it seals.
    fn of(&mut self, id: ConnId) -> Batch<'_> {
        Batch { id, out: self }
    }

    fn clear(&mut self) {
        self.datagrams.clear();
        self.to.clear();
        self.conn.clear();
    }
}

struct Batch<'a> {
    id: ConnId,
    out: &'a mut Outgoing,
}

impl Outbox for Batch<'_> {
    fn push(&mut self, to: SocketAddr, datagram: BytesMut) {
        self.out.push(self.id, to, datagram);
    }
}

/// Early checks kept per connection (a client checks a few times a second at first).
const MAX_EARLY: usize = 8;

pub struct Io {
    pub socket: tokio::net::UdpSocket,
    /// The address of the socket, which is the host candidate of every connection.
    pub local: SocketAddr,
    identity: Identity,
    demux: Demux<ConnId>,
    conns: FxHashMap<ConnId, Conn>,
    next_id: ConnId,
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    touched: Vec<ConnId>,
    out: Outgoing,
    /// Packets for the rooms' shards on other workers, handed over with the turn's datagrams.
    pub relays: super::relay::Outbox,
    pub stats: Arc<SfuStats>,
}

/// Datagrams per `sendmmsg` call (the kernel takes up to 1024).
const SEND_BATCH: usize = 64;

impl Io {
    pub fn new(socket: tokio::net::UdpSocket, identity: Identity, stats: Arc<SfuStats>) -> std::io::Result<Self> {
        let local = socket.local_addr()?;
        Ok(Self {
            socket,
            local,
            identity,
            demux: Demux::default(),
            conns: FxHashMap::default(),
            next_id: 1,
            timers: BinaryHeap::new(),
            touched: Vec::new(),
            out: Outgoing::default(),
            relays: super::relay::Outbox::default(),
            stats,
        })
    }

    /// A new connection on this worker's socket.
    pub fn open(&mut self, owner: Owner, now: Instant) -> Result<ConnId, SfuError> {
        let link = Arc::new(LinkReport::default());
        // A clash of 95 random bits is not going to happen; if it did, another draw settles it.
        let (id, creds) = loop {
            let creds = conn::credentials();
            let id = self.next_id;
            if self.demux.add(id, &creds.0).is_ok() {
                self.next_id += 1;
                break (id, creds);
            }
        };
        let pc = match conn::build(&self.identity, owner.target, creds, self.local, link.clone(), now) {
            Ok(pc) => pc,
            Err(e) => {
                self.demux.remove(id);
                return Err(e);
            }
        };
        self.conns.insert(
            id,
            Conn {
                pc,
                owner,
                link,
                timer: None,
                touched: false,
                send_drops: 0,
                early: Vec::new(),
                ice_connected: false,
                early_dtls: Vec::new(),
                sender: Sender::default(),
            },
        );
        self.stats.peer_connections.fetch_add(1, Relaxed);
        self.touch(id);
        Ok(id)
    }

    /// Closes a connection: its DTLS close_notify leaves now, and it is forgotten.
    pub fn close(&mut self, id: ConnId) {
        let Some(mut c) = self.conns.remove(&id) else { return };
        self.demux.remove(id);
        if c.send_drops > 0 {
            self.stats.forget_send_drops(&c.owner.room, &c.owner.member, c.owner.target);
        }
        let _ = c.pc.close();
        while let Some(msg) = c.pc.poll_write() {
            let _ = self.socket.try_send_to(&msg.message, msg.transport.peer_addr);
        }
        self.stats.peer_connections.fetch_sub(1, Relaxed);
    }

    /// The connection, marked to have its writes flushed and its timer renewed.
    pub fn pc(&mut self, id: ConnId) -> Option<&mut RTCPeerConnection> {
        let c = self.conns.get_mut(&id)?;
        if !c.touched {
            c.touched = true;
            self.touched.push(id);
        }
        Some(&mut c.pc)
    }

    /// Sends one forwarded RTP packet on a subscribe connection, in this turn's batch. False
    /// when the connection cannot carry it yet (see [`Sender::send`]). `keep`: held for NACKs.
    pub fn send_rtp(
        &mut self,
        id: ConnId,
        header: rtc::rtp::header::Header,
        payload: bytes::Bytes,
        clock_rate: u32,
        keep: bool,
        now: Instant,
    ) -> bool {
        let Some(c) = self.conns.get_mut(&id) else { return false };
        c.sender.send(&mut c.pc, header, payload, clock_rate, keep, now, &mut self.out.of(id))
    }

    /// A down-track on the connection is gone: its history and report go with it.
    pub fn forget_stream(&mut self, id: ConnId, ssrc: u32) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.sender.forget(ssrc);
        }
    }

    /// Every subscribe connection's due sender reports, in this turn's batch.
    pub fn sender_reports(&mut self, now: Instant) {
        for (&id, c) in &mut self.conns {
            c.sender.reports(&mut c.pc, now, &mut self.out.of(id));
        }
    }

    pub fn link(&self, id: ConnId) -> Option<Arc<LinkReport>> {
        self.conns.get(&id).map(|c| c.link.clone())
    }

    pub fn owner(&self, id: ConnId) -> Option<Owner> {
        self.conns.get(&id).map(|c| c.owner.clone())
    }

    fn touch(&mut self, id: ConnId) {
        let _ = self.pc(id);
    }

    /// Hands one datagram to its connection (or holds it for the connection, see below) and
    /// returns the connection to drain; `None` when it has none (dropped and counted).
    pub fn deliver(&mut self, from: SocketAddr, datagram: &[u8], now: Instant) -> Option<ConnId> {
        let id = match self.demux.route(from, datagram) {
            Ok(id) => id,
            Err(e) => {
                tracing::debug!(%from, ?e, len = datagram.len(), "unrouted datagram");
                self.stats.unrouted_datagrams.fetch_add(1, Relaxed);
                return None;
            }
        };
        let c = self.conns.get_mut(&id)?;
        // A client starts its checks as soon as it has our offer, and sends its answer over
        // the signaling socket at the same time: a check may arrive first. The core cannot
        // answer it without the client's credentials and drops it, and the client's next try
        // comes hundreds of milliseconds later. So such checks wait for the answer.
        let kind = super::demux::kind(datagram);
        if c.pc.remote_description().is_none() && kind == super::demux::Kind::Stun {
            if c.early.len() < MAX_EARLY {
                c.early.push((from, BytesMut::from(datagram)));
            }
            return Some(id);
        }
        // Likewise a client whose check was answered may send its DTLS ClientHello before the
        // core has selected the pair (it still waits for the answer to its own triggered
        // check): the core would drop it, and the client would resend it only after DTLS's
        // one-second retransmission timer.
        if !c.ice_connected && kind == super::demux::Kind::Dtls {
            if c.early_dtls.len() < MAX_EARLY {
                c.early_dtls.push((from, BytesMut::from(datagram)));
            }
            tracing::debug!(conn = id, held = c.early_dtls.len(), "DTLS before the pair is selected: held");
            // Still drained by the caller: the core may have selected the pair already with
            // the event not yet read, and reading it is what hands the held DTLS over.
            return Some(id);
        }
        self.read(id, from, BytesMut::from(datagram), now);
        Some(id)
    }

    fn read(&mut self, id: ConnId, from: SocketAddr, datagram: BytesMut, now: Instant) {
        let local = self.local;
        let Some(pc) = self.pc(id) else { return };
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: local,
                peer_addr: from,
                transport_protocol: TransportProtocol::UDP,
                ecn: None,
            },
            message: datagram,
        };
        // Errors inside the core are its own (logged there); the datagram is simply spent.
        let _ = pc.handle_read(msg);
        let Some(c) = self.conns.get_mut(&id) else { return };
        if c.owner.target == PcTarget::Subscribe {
            c.sender.readdress();
            // What the subscriber NACKed (its RTCP passed the tap just now) is answered at once.
            let lost = c.link.take_lost();
            if !lost.is_empty() {
                let n = c.sender.resend(&mut c.pc, lost, &mut self.out.of(id));
                self.stats.retransmitted_packets.fetch_add(n as u64, Relaxed);
            }
        }
    }

    /// The connection's ICE state changed: once a pair is selected, the DTLS that came early
    /// is handed over (the caller drains what it produces).
    pub fn ice_state(&mut self, id: ConnId, state: RTCIceConnectionState, now: Instant) {
        let connected = matches!(state, RTCIceConnectionState::Connected | RTCIceConnectionState::Completed);
        let early = match self.conns.get_mut(&id) {
            Some(c) => {
                c.ice_connected = connected;
                if !connected {
                    return;
                }
                std::mem::take(&mut c.early_dtls)
            }
            None => return,
        };
        for (from, datagram) in early {
            self.read(id, from, datagram, now);
        }
    }

    /// Hands a connection the checks that came before its remote description; the caller
    /// drains what they produce.
    pub fn replay_early(&mut self, id: ConnId, now: Instant) {
        let early = match self.conns.get_mut(&id) {
            Some(c) => std::mem::take(&mut c.early),
            None => return,
        };
        for (from, datagram) in early {
            self.read(id, from, datagram, now);
        }
    }

    /// Connections whose timer is due at `now`; each is marked touched.
    pub fn due(&mut self, now: Instant, out: &mut Vec<ConnId>) {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.conns.get_mut(&id) else { continue };
            if c.timer != Some(at) {
                continue;
            }
            c.timer = None;
            let _ = c.pc.handle_timeout(now);
            out.push(id);
            self.touch(id);
        }
    }

    /// The earliest connection timer.
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Sends what every touched connection wrote, in as few system calls as the batch allows,
    /// and renews each one's timer. A datagram the socket will not take now (its buffer is
    /// full) is lost to its own connection only, and counted.
    pub fn flush(&mut self) {
        for id in std::mem::take(&mut self.touched) {
            let Some(c) = self.conns.get_mut(&id) else { continue };
            c.touched = false;
            let from = self.out.datagrams.len();
            while let Some(msg) = c.pc.poll_write() {
                self.out.push(id, msg.transport.peer_addr, msg.message);
            }
            self.out.stun_first(from);
            // Only an earlier timer is pushed: a later one is found when the earlier entry
            // fires (handling a timeout before it is due does nothing), so a busy connection
            // whose timer moves on with every packet does not fill the heap.
            if let Some(at) = c.pc.poll_timeout()
                && c.timer.is_none_or(|t| at < t)
            {
                c.timer = Some(at);
                self.timers.push(Reverse((at, id)));
            }
        }
        self.send_out();
        self.relays.flush(&self.stats);
    }

    fn send_out(&mut self) {
        if self.out.datagrams.is_empty() {
            return;
        }
        let slices: Vec<[IoSlice<'_>; 1]> = self.out.datagrams.iter().map(|b| [IoSlice::new(b)]).collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
            (0..slices.len()).map(|_| SendAncillaryBuffer::default()).collect();
        let mut msgs: Vec<MMsgHdr<'_>> = self
            .out
            .to
            .iter()
            .zip(&slices)
            .zip(controls.iter_mut())
            .map(|((to, iov), control)| MMsgHdr::new_with_addr(to, iov, control))
            .collect();
        let mut at = 0;
        while at < msgs.len() {
            let end = (at + SEND_BATCH).min(msgs.len());
            match sendmmsg(&self.socket, &mut msgs[at..end], SendFlags::DONTWAIT) {
                // Zero sent without an error does not happen; step on rather than spin.
                Ok(sent) => at += sent.max(1),
                Err(e) => {
                    // The error belongs to the first datagram of the batch: a full buffer
                    // (EAGAIN) or a destination the kernel refuses. That one is lost to its
                    // connection, and counted there; the rest of the batch goes on.
                    tracing::trace!(error = %e, "media send failed");
                    if let Some(c) = self.conns.get_mut(&self.out.conn[at]) {
                        c.send_drops += 1;
                        self.stats.note_send_drops(&c.owner.room, &c.owner.member, c.owner.target, 1);
                    }
                    at += 1;
                }
            }
        }
        drop(msgs);
        drop(controls);
        drop(slices);
        self.out.clear();
    }

    pub fn dropped(&self, reason: Unrouted) -> u64 {
        self.demux.dropped(reason)
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Closes every connection (the worker is stopping).
    pub fn close_all(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// One subscriber's datagrams that the kernel refuses (here: an IPv6 destination on an
    /// IPv4 socket; a full buffer takes the same path) are lost to it alone, counted for it,
    /// and the datagrams of others in the same batches all go out.
    #[tokio::test]
    async fn a_send_that_fails_loses_only_that_connections_datagrams() {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let stats = Arc::new(SfuStats::default());
        let mut io = Io::new(socket, Identity::generate().unwrap(), stats.clone()).unwrap();
        let owner = |m: &str| Owner { room: "r".into(), member: m.into(), target: PcTarget::Subscribe };
        let now = Instant::now();
        let (slow, fine) = (io.open(owner("slow"), now).unwrap(), io.open(owner("fine"), now).unwrap());
        io.flush();
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let nowhere: SocketAddr = "[::1]:9".parse().unwrap();
        for i in 0..100u8 {
            io.out.push(slow, nowhere, BytesMut::from(&[i][..]));
            io.out.push(fine, rx.local_addr().unwrap(), BytesMut::from(&[i][..]));
        }
        io.send_out();
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while let Ok(n) = rx.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, (0..100u8).collect::<Vec<_>>(), "every datagram of the other subscriber, in order");
        assert_eq!((io.conns[&slow].send_drops, io.conns[&fine].send_drops), (100, 0));
        assert_eq!(stats.send_drops(), vec![("r".to_owned(), "slow".to_owned(), "subscribe", 100)]);
        assert_eq!(stats.dropped_packets.load(Relaxed), 100);
        io.close(slow);
        assert!(stats.send_drops().is_empty(), "the counter goes with the connection");
    }

    /// A client that answers our subscribe offer `passive` (webrtc-rs and pion do, as we are
    /// ICE-lite) makes us the DTLS client. When the check that nominates the pair arrives in
    /// the turn whose timer starts our handshake, the core writes the ClientHello before the
    /// answer to that check; the client, which still waits for that answer, drops it, and ours
    /// went again only after DTLS's one-second timer. The turn's datagrams now leave with the
    /// STUN first: connected in the first turns of the clock, the ClientHello sent once.
    #[tokio::test]
    async fn the_answer_to_a_nomination_leaves_before_our_client_hello() {
        use super::super::demux::{Kind, kind};
        use super::super::loopback;
        use rtc::peer_connection::event::RTCPeerConnectionEvent;
        use rtc::peer_connection::state::RTCPeerConnectionState;
        use std::time::Duration;
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut io = Io::new(socket, Identity::generate().unwrap(), Arc::new(SfuStats::default())).unwrap();
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let at = rx.local_addr().unwrap();
        let start = Instant::now();
        let mut now = start;
        let id = io.open(Owner { room: "r".into(), member: "m".into(), target: PcTarget::Subscribe }, now).unwrap();
        let pc = io.pc(id).unwrap();
        pc.add_track(loopback::track()).unwrap();
        let offer = pc.create_offer(None).unwrap();
        pc.set_local_description(now, offer.clone()).unwrap();
        let (mut client, answer) = loopback::client(offer, at, now);
        assert!(answer.sdp.contains("a=setup:passive"), "the client answers passive: we are its DTLS client");
        io.pc(id).unwrap().set_remote_description(now, answer).unwrap();
        io.flush();
        let (mut connected, mut hellos, mut kinds) = (false, 0, Vec::new());
        let mut buf = [0u8; 2048];
        // What the worker does with a connection's events: ICE's state releases held DTLS.
        let events = |io: &mut Io, now: Instant| {
            while let Some(ev) = io.pc(id).unwrap().poll_event() {
                if let RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(state) = ev {
                    io.ice_state(id, state, now);
                }
            }
        };
        while !connected && now < start + Duration::from_secs(3) {
            // Each turn at the next timer of either side; the client's datagrams reach us in
            // the turn that also runs our due timer, as they may on a busy worker.
            now = [io.next_timer(), client.poll_timeout()].into_iter().flatten().min().unwrap().max(now);
            if client.poll_timeout().is_some_and(|t| t <= now) {
                client.handle_timeout(now).unwrap();
            }
            let mut turns = 0;
            loop {
                let mut moved = false;
                while let Some(out) = client.poll_write() {
                    moved = true;
                    if io.deliver(at, &out.message, now).is_some() {
                        events(&mut io, now);
                    }
                }
                if turns == 0 {
                    let mut due = Vec::new();
                    io.due(now, &mut due);
                    events(&mut io, now);
                }
                turns += 1;
                io.flush();
                // What the flush sent is in the client's socket already (loopback delivers
                // within the send), in order.
                while let Ok((n, from)) = rx.recv_from(&mut buf) {
                    moved = true;
                    let k = kind(&buf[..n]);
                    // A DTLS handshake record (22) holding a ClientHello (handshake type 1).
                    if k == Kind::Dtls && buf[0] == 22 && n > 13 && buf[13] == 1 {
                        hellos += 1;
                    }
                    kinds.push(k);
                    let _ = client.handle_read(loopback::datagram(now, from, at, BytesMut::from(&buf[..n])));
                }
                while let Some(ev) = client.poll_event() {
                    moved = true;
                    if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(RTCPeerConnectionState::Connected) = ev
                    {
                        connected = true;
                    }
                }
                while client.poll_read().is_some() {}
                if !moved {
                    break;
                }
            }
        }
        assert!(connected, "connected within 3 s of the clock; the client received {kinds:?}");
        assert!(now < start + Duration::from_secs(1), "connected after {:?} of the clock: {kinds:?}", now - start);
        // The first ClientHello and the one with the cookie (HelloVerifyRequest), no resend.
        assert_eq!(hellos, 2, "ClientHellos sent: {kinds:?}");
    }
}
