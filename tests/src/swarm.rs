//! Many receive-only viewers on one thread and one UDP socket, on webrtc-rs's sans-IO core
//! (`rtc`), the same kind of driver as the server's media workers: so the load generator is not
//! what limits a broadcast of 1,000 viewers (each `MediaPeer` costs a task, a socket and a
//! wake-up per packet, which saturates the generator's core near 300 viewers).
//!
//! The server tells connections apart by their address after ICE, so every viewer needs its
//! own. They all share one socket bound to 0.0.0.0: viewer *i* sends from 127.1.x.y (chosen per
//! datagram with `IP_PKTINFO`), and what arrives is handed to the viewer whose address it was
//! sent to (read from `IP_PKTINFO` too).
//!
//! A server that gives each viewer its own port instead (Janus: a libnice agent per
//! subscriber) sees all of them on one address ([`Swarm::start_shared`]): there a datagram is
//! handed to the viewer by its source, learned from the server's candidates or, for a check,
//! from the viewer's ufrag in its USERNAME (the server's own demux, `plane::demux`).
//!
//! Decrypting is the generator's largest cost, so only every `sample`-th viewer decrypts and
//! checks its packets (payloads matched to what the publisher sent, for latency); the others
//! count their packets from the RTP header, which SRTP leaves in the clear (sequence numbers
//! for loss, the SSRC for the track). Both kinds do ICE and DTLS for real.

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, sendmsg, setsockopt, sockopt,
};
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use crate::media::{MediaPeer, PeerState, record_clear, record_packet, track_of};
use huizhen_sfu::plane::conn::Identity;
use huizhen_sfu::plane::demux::Demux;

type State = Arc<Mutex<PeerState>>;

/// Timers (ICE keepalives, DTLS retransmits) are looked at this often; commands wait at most
/// this long for the thread.
const TICK: Duration = Duration::from_millis(2);
const SOCKET_BUFFER: usize = 32 << 20;
/// Datagrams read per turn.
const BATCH: usize = 256;

enum Cmd {
    /// The server's (re)offer for viewer `id`: answered with our description. `tracks`
    /// names the SSRCs when the offer's msid lines do not (Janus).
    Offer {
        id: u32,
        sdp: String,
        tracks: Option<Vec<(u32, String)>>,
        state: State,
        sample: bool,
        reply: oneshot::Sender<Result<String>>,
    },
    /// A candidate the server trickled to viewer `id`.
    Candidate {
        id: u32,
        candidate: rtc::peer_connection::transport::RTCIceCandidateInit,
    },
    Close {
        id: u32,
    },
}

struct Viewer {
    pc: RTCPeerConnection,
    /// Its address (ours): where it sends from, chosen with `IP_PKTINFO` unless shared.
    local: SocketAddr,
    state: State,
    /// Decrypts (and reads payloads) rather than counting from the clear header.
    sample: bool,
    /// DTLS is up: SRTP from now on.
    connected: bool,
    /// Track key (`participant/track`) by SSRC, from the offers.
    tracks: HashMap<u32, String>,
}

/// The viewers' thread and its socket.
pub struct Swarm {
    cmds: mpsc::Sender<Cmd>,
    port: u16,
    /// All viewers on this one address (see the module's comment).
    shared: Option<Ipv4Addr>,
    next: std::sync::atomic::AtomicU32,
    /// One viewer in `sample` decrypts.
    pub sample: u32,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Swarm {
    /// Viewers each on their own 127.1.x.y address (a server that tells them apart by address).
    pub fn start(sample: u32) -> Result<Self> {
        Self::start_with(sample, None)
    }

    /// Viewers all on `ip`, told apart by the server's port for each (Janus).
    pub fn start_shared(sample: u32, ip: Ipv4Addr) -> Result<Self> {
        Self::start_with(sample, Some(ip))
    }

    fn start_with(sample: u32, shared: Option<Ipv4Addr>) -> Result<Self> {
        let socket = UdpSocket::bind((shared.unwrap_or(Ipv4Addr::UNSPECIFIED), 0)).context("swarm socket")?;
        if shared.is_none() {
            setsockopt(&socket, sockopt::Ipv4PacketInfo, &true).context("IP_PKTINFO")?;
        }
        // A keyframe reaches every viewer in one server turn: thousands of datagrams at once.
        // Forced past net.core.rmem_max when allowed (root), else as much as it allows.
        if setsockopt(&socket, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
            let _ = setsockopt(&socket, sockopt::RcvBuf, &SOCKET_BUFFER);
        }
        socket.set_read_timeout(Some(TICK))?;
        let port = socket.local_addr()?.port();
        let (cmds, rx) = mpsc::channel();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::Builder::new().name("swarm".into()).spawn(move || run(socket, shared, rx, halt))?;
        Ok(Self {
            cmds,
            port,
            shared,
            next: std::sync::atomic::AtomicU32::new(0),
            sample: sample.max(1),
            thread: Some(thread),
            stop,
        })
    }

    /// A viewer joining on signaling `url`, as a `MediaPeer` (the same state, `send` and
    /// `close`); it never publishes. With `layer`, it asks for that layer of every video track
    /// as soon as it is told of it (as a page showing a large audience's thumbnails does), so
    /// a thousand joins do not all start on the top layer.
    pub async fn join(&self, url: &str, layer: Option<&str>) -> Result<MediaPeer> {
        anyhow::ensure!(self.shared.is_none(), "a shared-address swarm is for servers with a port per viewer");
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        anyhow::ensure!(i < 65_000, "at most 65,000 viewers per swarm");
        // The viewer's id is its address.
        let id = 0x7F01_0000 + i + 1;
        let (ws, _) = tokio_tungstenite::connect_async(url).await.context("signaling connect")?;
        let state = State::default();
        let (out, out_rx) = tokio::sync::mpsc::unbounded_channel();
        let sample = i % self.sample == 0;
        let layer = layer.map(str::to_owned);
        let task = tokio::spawn(signal(ws, id, sample, layer, state.clone(), self.cmds.clone(), out_rx));
        Ok(MediaPeer::from_parts(state, out, task))
    }

    /// A viewer whose signaling the caller runs (another server's API): it answers offers and
    /// takes trickled candidates through the returned handle, and leaves when that is dropped.
    pub fn remote(&self) -> Remote {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = match self.shared {
            Some(_) => i + 1,
            None => 0x7F01_0000 + i + 1,
        };
        Remote { id, sample: i % self.sample == 0, state: State::default(), cmds: self.cmds.clone() }
    }

    /// Where the viewers are (127.1.0.0/16, this port).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One viewer of the swarm, signalled by its owner (see [`Swarm::remote`]).
pub struct Remote {
    id: u32,
    sample: bool,
    pub state: State,
    cmds: mpsc::Sender<Cmd>,
}

impl Remote {
    /// Our answer to the server's offer; `tracks` names the offer's SSRCs (`participant/track`).
    pub async fn answer(&self, sdp: String, tracks: Vec<(u32, String)>) -> Result<String> {
        let (reply, answer) = oneshot::channel();
        let (id, state, sample) = (self.id, self.state.clone(), self.sample);
        self.cmds
            .send(Cmd::Offer { id, sdp, tracks: Some(tracks), state, sample, reply })
            .map_err(|_| anyhow::anyhow!("the swarm has stopped"))?;
        answer.await.context("the swarm has stopped")?
    }

    /// A candidate the server trickled.
    pub fn candidate(&self, candidate: rtc::peer_connection::transport::RTCIceCandidateInit) {
        let _ = self.cmds.send(Cmd::Candidate { id: self.id, candidate });
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Close { id: self.id });
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Message types a swarm viewer neither reads nor keeps.
const IGNORED: [&str; 4] = [
    r#""type":"participant_joined""#,
    r#""type":"participant_left""#,
    r#""type":"connection_quality""#,
    r#""type":"active_speaker""#,
];

/// One viewer's signaling: hello, then answer every subscribe offer through the swarm thread.
async fn signal(
    mut ws: WsStream,
    id: u32,
    sample: bool,
    layer: Option<String>,
    state: State,
    cmds: mpsc::Sender<Cmd>,
    mut out: tokio::sync::mpsc::UnboundedReceiver<Value>,
) {
    let text = |v: Value| Message::text(v.to_string());
    let _ = ws.send(text(json!({ "type": "hello", "id": "hello", "version": 1 }))).await;
    let mut n = 0u64;
    loop {
        tokio::select! {
            msg = ws.next() => {
                let Some(Ok(Message::Text(t))) = msg else {
                    if matches!(msg, Some(Ok(Message::Ping(_) | Message::Pong(_)))) { continue; }
                    break;
                };
                // Every join is announced to every member (1,000 joins: a million messages to
                // the swarm's viewers), and the server reports each one's link: a viewer here
                // needs neither, so they are not parsed or kept (that took the generator's core
                // and 600 MB while a thousand joined).
                if IGNORED.iter().any(|k| t.as_str().contains(k)) {
                    continue;
                }
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                state.lock().unwrap_or_else(|p| p.into_inner()).messages.push(v.clone());
                match v["type"].as_str().unwrap_or("") {
                    "subscribe_offer" => {
                        let (reply, answer) = oneshot::channel();
                        let sdp = v["sdp"].as_str().unwrap_or("").to_owned();
                        if cmds.send(Cmd::Offer { id, sdp, tracks: None, state: state.clone(), sample, reply }).is_err() { break; }
                        match answer.await {
                            Ok(Ok(sdp)) => {
                                n += 1;
                                let _ = ws.send(text(json!({ "type": "subscribe_answer", "id": format!("a{n}"), "sdp": sdp }))).await;
                            }
                            Ok(Err(e)) => {
                                let e = json!({ "type": "error", "code": "swarm", "message": e.to_string() });
                                state.lock().unwrap_or_else(|p| p.into_inner()).errors.push(e);
                            }
                            Err(_) => break,
                        }
                    }
                    "track_published" => {
                        let track = &v["track"];
                        if let Some(layer) = &layer && track["kind"] == "video" {
                            n += 1;
                            let ask = json!({ "type": "set_layer", "id": format!("l{n}"), "track": track["id"], "layer": layer });
                            let _ = ws.send(text(ask)).await;
                        }
                        state.lock().unwrap_or_else(|p| p.into_inner()).tracks_published.push(track.clone())
                    }
                    "error" => state.lock().unwrap_or_else(|p| p.into_inner()).errors.push(v.clone()),
                    _ => {}
                }
            }
            v = out.recv() => match v {
                Some(v) if !v.is_null() => { let _ = ws.send(text(v)).await; }
                _ => {
                    let _ = ws.close(None).await;
                    break;
                }
            },
        }
    }
    let _ = cmds.send(Cmd::Close { id });
}

/// The swarm thread: commands, datagrams, timers.
fn run(
    socket: UdpSocket,
    shared: Option<Ipv4Addr>,
    cmds: mpsc::Receiver<Cmd>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut viewers: HashMap<u32, Viewer> = HashMap::new();
    // Shared address only: checks by our ufrag, the rest by the server's address, learned from
    // its checks or named in its candidates.
    let mut demux: Demux<u32> = Demux::default();
    let mut candidates: HashMap<SocketAddr, u32> = HashMap::new();
    let mut buf = vec![0u8; 2048];
    let mut cmsg = nix::cmsg_space!(nix::libc::in_pktinfo);
    let mut next_scan = Instant::now();
    let identity = match Identity::generate() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("swarm: no certificate: {e}");
            return;
        }
    };
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        while let Ok(cmd) = cmds.try_recv() {
            match cmd {
                Cmd::Offer { id, sdp, tracks, state, sample, reply } => {
                    let now = Instant::now();
                    let local = SocketAddr::V4(SocketAddrV4::new(shared.unwrap_or(Ipv4Addr::from(id)), port));
                    let v = match viewers.entry(id) {
                        std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
                        std::collections::hash_map::Entry::Vacant(e) => new_pc(&identity, local, now).map(|pc| {
                            e.insert(Viewer { pc, local, state, sample, connected: false, tracks: HashMap::new() })
                        }),
                    };
                    let answer = v.and_then(|v| {
                        v.tracks.extend(tracks.unwrap_or_else(|| tracks_of(&sdp)));
                        if shared.is_some() {
                            for addr in candidate_addrs(&sdp) {
                                candidates.insert(addr, id);
                            }
                        }
                        answer(&mut v.pc, sdp, now)
                    });
                    if shared.is_some()
                        && let Ok(sdp) = &answer
                        && let Some(ufrag) = sdp.lines().find_map(|l| l.strip_prefix("a=ice-ufrag:"))
                    {
                        let _ = demux.add(id, ufrag.trim());
                    }
                    let _ = reply.send(answer);
                    if let Some(v) = viewers.get_mut(&id) {
                        drain(&socket, shared.is_none(), v);
                    }
                }
                Cmd::Candidate { id, candidate } => {
                    if let Some(addr) = candidate_addrs(&format!("a={}", candidate.candidate)).next() {
                        candidates.insert(addr, id);
                    }
                    if let Some(v) = viewers.get_mut(&id) {
                        let _ = v.pc.add_remote_candidate(candidate);
                        drain(&socket, shared.is_none(), v);
                    }
                }
                Cmd::Close { id } => {
                    if let Some(mut v) = viewers.remove(&id) {
                        let _ = v.pc.close();
                    }
                    demux.remove(id);
                    candidates.retain(|_, v| *v != id);
                }
            }
        }
        // What the socket has: the first read waits up to a tick, the rest do not; at most a
        // batch, so commands (joins) and timers (keepalives) take their turn under load.
        let mut flags = MsgFlags::empty();
        for _ in 0..BATCH {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let got = recvmsg::<SockaddrIn>(socket.as_raw_fd(), &mut iov, Some(&mut cmsg), flags);
            flags = MsgFlags::MSG_DONTWAIT;
            let Ok(msg) = got else { break };
            let (len, from) = (msg.bytes, msg.address.map(|a| SocketAddr::V4(SocketAddrV4::from(a))));
            let to = msg.cmsgs().ok().and_then(|mut c| {
                c.find_map(|c| match c {
                    ControlMessageOwned::Ipv4PacketInfo(pi) => Some(Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr))),
                    _ => None,
                })
            });
            let Some(from) = from else { continue };
            let d = &buf[..len];
            let id = match (shared, to) {
                (None, Some(to)) => u32::from(to),
                (Some(_), _) => match demux.route(from, d) {
                    Ok(id) => id,
                    Err(_) => match candidates.get(&from) {
                        Some(&id) => id,
                        None => continue,
                    },
                },
                (None, None) => continue,
            };
            let Some(v) = viewers.get_mut(&id) else { continue };
            if !v.sample && v.connected && is_rtp(d) {
                let (seq, ssrc) = (u16::from_be_bytes([d[2], d[3]]), u32::from_be_bytes([d[8], d[9], d[10], d[11]]));
                if let Some(key) = v.tracks.get(&ssrc) {
                    let mut st = v.state.lock().unwrap_or_else(|p| p.into_inner());
                    record_clear(track_of(&mut st.received, key), seq, ssrc);
                }
                continue;
            }
            if !v.sample && v.connected && d.first().is_some_and(|b| (128..=191).contains(b)) {
                // RTCP from the server (sender reports): only a decrypting viewer reads it.
                continue;
            }
            let _ = v.pc.handle_read(TaggedBytesMut {
                now: Instant::now(),
                transport: TransportContext {
                    local_addr: v.local,
                    peer_addr: from,
                    transport_protocol: TransportProtocol::UDP,
                    ecn: None,
                },
                message: BytesMut::from(d),
            });
            drain(&socket, shared.is_none(), v);
        }
        let now = Instant::now();
        if now >= next_scan {
            next_scan = now + TICK;
            for v in viewers.values_mut() {
                if v.pc.poll_timeout().is_some_and(|t| t <= now) {
                    let _ = v.pc.handle_timeout(now);
                    drain(&socket, shared.is_none(), v);
                }
            }
        }
    }
}

/// The addresses of the UDP host candidates in `sdp` (`a=candidate:` lines).
fn candidate_addrs(sdp: &str) -> impl Iterator<Item = SocketAddr> + '_ {
    sdp.lines().filter_map(|l| {
        let f: Vec<&str> = l.strip_prefix("a=candidate:")?.split_whitespace().collect();
        if f.len() < 6 || !f[2].eq_ignore_ascii_case("udp") {
            return None;
        }
        Some(SocketAddr::new(f[4].parse().ok()?, f[5].parse().ok()?))
    })
}

/// RTP, not RTCP (RFC 5761: RTCP packet types 192–223 in the second byte).
fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..=191).contains(&d[0]) && !(192..=223).contains(&d[1])
}

/// A viewer's connection. All share one certificate (as the server's connections do): making
/// a key pair per viewer was most of a join's cost in the swarm's thread.
fn new_pc(identity: &Identity, local: SocketAddr, now: Instant) -> Result<RTCPeerConnection> {
    let (provider, certificate) = identity.parts();
    let settings = rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder::new()
        .with_crypto_provider(provider)
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .build();
    let config = rtc::peer_connection::configuration::RTCConfigurationBuilder::new()
        .with_certificates(vec![certificate])
        .build();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(config)
        .with_setting_engine(settings)
        .with_media_engine(huizhen_sfu::media_engine()?)
        .build(now)?;
    pc.add_local_candidate(huizhen_sfu::plane::conn::host_candidate(local)?)?;
    Ok(pc)
}

fn answer(pc: &mut RTCPeerConnection, sdp: String, now: Instant) -> Result<String> {
    pc.set_remote_description(now, RTCSessionDescription::offer(sdp)?)?;
    let answer = pc.create_answer(None)?;
    pc.set_local_description(now, answer.clone())?;
    Ok(pc.local_description().map(|d| d.sdp).unwrap_or(answer.sdp))
}

/// Track keys by SSRC in an offer: `a=ssrc:<ssrc> msid:<participant> <participant>.<track>`.
fn tracks_of(sdp: &str) -> Vec<(u32, String)> {
    sdp.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("a=ssrc:")?;
            let (ssrc, attr) = rest.split_once(' ')?;
            let (stream, track) = attr.strip_prefix("msid:")?.split_once(' ')?;
            let local = track.strip_prefix(&format!("{stream}.")).unwrap_or(track);
            Some((ssrc.parse().ok()?, format!("{stream}/{local}")))
        })
        .collect()
}

/// Everything a viewer has after a read or a timer: what it writes (sent from its own
/// address), its events, and, for a decrypting viewer, the packets it read.
fn drain(socket: &UdpSocket, pktinfo: bool, v: &mut Viewer) {
    let SocketAddr::V4(local) = v.local else { return };
    loop {
        let mut moved = false;
        while let Some(out) = v.pc.poll_write() {
            moved = true;
            let SocketAddr::V4(to) = out.transport.peer_addr else { continue };
            let info = nix::libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: nix::libc::in_addr { s_addr: u32::from(*local.ip()).to_be() },
                ipi_addr: nix::libc::in_addr { s_addr: 0 },
            };
            let iov = [IoSlice::new(&out.message)];
            let cmsgs = [ControlMessage::Ipv4PacketInfo(&info)];
            let cmsgs: &[ControlMessage] = if pktinfo { &cmsgs } else { &[] };
            let _ = sendmsg(socket.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_DONTWAIT, Some(&SockaddrIn::from(to)));
        }
        while let Some(ev) = v.pc.poll_event() {
            moved = true;
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = ev {
                v.connected = s == RTCPeerConnectionState::Connected;
                v.state.lock().unwrap_or_else(|p| p.into_inner()).subscribe_connected = v.connected;
            }
        }
        while let Some(m) = v.pc.poll_read() {
            moved = true;
            if let RTCMessage::RtpPacket(_, p) = m.message
                && let Some(key) = v.tracks.get(&p.header.ssrc)
            {
                let mut st = v.state.lock().unwrap_or_else(|p| p.into_inner());
                record_packet(track_of(&mut st.received, key), &p);
            }
        }
        if !moved {
            return;
        }
    }
}
