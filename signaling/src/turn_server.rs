//! TURN in the server (issue 17): a clinic behind a firewall that passes only the TURN port
//! reaches the media through a relay without a coturn beside Huizhen. The protocol is the
//! webrtc-rs family's TURN server (`turn`); what is ours is the policy around it:
//! - the credentials are the REST ones `/join` hands out (`expiry:identity`, HMAC-SHA1 of the
//!   shared `media.turn_secret`), so coturn stays a drop-in alternative;
//! - a relay sends only to this server's own media addresses (and `turn.allowed_peers`): it is
//!   no open relay that a stolen credential could use to reach the hospital's network;
//! - relays come from one port range (`turn.relay_ports`) and are counted against a total
//!   (`turn.max_allocations`).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use turn::auth::{AuthHandler, generate_auth_key};
use turn::relay::RelayAddressGenerator;
use turn::server::Server;
use turn::server::config::{ConnConfig, ServerConfig};
use webrtc_util::Conn;

/// What the relays may reach, and how many there may be.
pub struct Policy {
    /// The SFU's media addresses (bound and announced): the only peers by default.
    pub peers: HashSet<SocketAddr>,
    /// Further peer addresses, any port (`turn.allowed_peers`).
    pub peer_ips: HashSet<IpAddr>,
    pub max_allocations: usize,
    /// Relays at once for one identity (a browser needs one or two per call).
    pub max_per_user: usize,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct TurnStats {
    pub allocations: AtomicUsize,
    /// Relays per identity (the REST username's part after `expiry:`).
    per_user: Mutex<std::collections::HashMap<String, usize>>,
    pub refused_peers: AtomicU64,
    pub refused_allocations: AtomicU64,
}

impl TurnStats {
    pub fn render(&self, o: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            o,
            "# HELP huizhen_turn_allocations TURN relays open now\n# TYPE huizhen_turn_allocations gauge\nhuizhen_turn_allocations {}",
            self.allocations.load(Relaxed)
        );
        for (name, help, v) in [
            (
                "huizhen_turn_refused_peer_packets_total",
                "datagrams a relay did not send: the peer is not this server's media",
                self.refused_peers.load(Relaxed),
            ),
            (
                "huizhen_turn_refused_allocations_total",
                "TURN allocations refused: the total reached, or no free relay port",
                self.refused_allocations.load(Relaxed),
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
    }
}

/// The TURN URLs `/join` hands out for the built-in server when none are configured: UDP, then
/// TCP and TLS where they listen (TLS by a name the certificate holds).
pub fn default_urls(config: &crate::config::Config) -> Vec<String> {
    let t = &config.turn;
    let host = if t.public_host.is_empty() {
        let m = &config.media;
        let ip = m.announce_ips.first().or(m.bind_ips.first()).copied().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        }
    } else {
        t.public_host.clone()
    };
    let mut urls = vec![format!("turn:{host}:{}?transport=udp", t.listen.port())];
    if let Ok(at) = t.listen_tcp.parse::<SocketAddr>() {
        urls.push(format!("turn:{host}:{}?transport=tcp", at.port()));
    }
    if let Ok(at) = t.listen_tls.parse::<SocketAddr>() {
        let name = if t.public_host.is_empty() { config.tls.names.first().cloned().unwrap_or(host) } else { host };
        urls.push(format!("turns:{name}:{}?transport=tcp", at.port()));
    }
    urls
}

pub struct Settings {
    pub listen_udp: SocketAddr,
    /// TURN over TCP, and over TLS (with the server's certificate), when set.
    pub listen_tcp: Option<SocketAddr>,
    pub listen_tls: Option<(SocketAddr, Arc<crate::tls::Tls>)>,
    pub realm: String,
    /// The relays' address as clients see it, and the one they bind on.
    pub relay_ip: IpAddr,
    pub bind_ip: IpAddr,
    pub relay_ports: (u16, u16),
    pub secret: String,
}

pub struct TurnServer {
    servers: Vec<Server>,
    pub local_udp: SocketAddr,
    pub local_tcp: Option<SocketAddr>,
    pub local_tls: Option<SocketAddr>,
    accept_tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("cannot listen for TURN on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("TURN server: {0}")]
    Server(String),
}

impl TurnServer {
    pub async fn start(settings: Settings, policy: Policy, stats: Arc<TurnStats>) -> Result<TurnServer, TurnError> {
        let udp = tokio::net::UdpSocket::bind(settings.listen_udp)
            .await
            .map_err(|e| TurnError::Listen(settings.listen_udp, e))?;
        let local_udp = udp.local_addr().map_err(|e| TurnError::Listen(settings.listen_udp, e))?;
        let policy = Arc::new(policy);
        let mut listeners: Vec<Arc<dyn Conn + Send + Sync>> = vec![Arc::new(udp)];
        let mut accept_tasks = Vec::new();
        let mut stream = |at: SocketAddr, tls: Option<Arc<crate::tls::Tls>>| {
            let listener = std::net::TcpListener::bind(at).map_err(|e| TurnError::Listen(at, e))?;
            listener.set_nonblocking(true).map_err(|e| TurnError::Listen(at, e))?;
            let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| TurnError::Listen(at, e))?;
            let local = listener.local_addr().map_err(|e| TurnError::Listen(at, e))?;
            let (mux, inbound) = StreamMux::new(local);
            accept_tasks.push(tokio::spawn(accept(listener, tls, mux.clone(), inbound, policy.max_allocations)));
            listeners.push(mux);
            Ok::<SocketAddr, TurnError>(local)
        };
        let local_tcp = settings.listen_tcp.map(|at| stream(at, None)).transpose()?;
        let local_tls = settings.listen_tls.map(|(at, tls)| stream(at, Some(tls))).transpose()?;
        // One TURN server per listener: each handles its requests one after another, so the
        // user its auth check has just accepted is the one whose allocation follows (the relay
        // generator is not told who asks; the per-user quota needs to know).
        let mut servers = Vec::new();
        for conn in listeners {
            let asking = Arc::new(Mutex::new(None));
            let relays = Relays {
                relay_ip: settings.relay_ip,
                bind_ip: settings.bind_ip,
                ports: settings.relay_ports,
                policy: policy.clone(),
                stats: stats.clone(),
                asking: asking.clone(),
            };
            let config = ServerConfig {
                conn_configs: vec![ConnConfig { conn, relay_addr_generator: Box::new(relays) }],
                realm: settings.realm.clone(),
                auth_handler: Arc::new(RestAuth { secret: settings.secret.clone(), asking }),
                channel_bind_timeout: Duration::ZERO,
                alloc_close_notify: None,
            };
            servers.push(Server::new(config).await.map_err(|e| TurnError::Server(e.to_string()))?);
        }
        tracing::info!(%local_udp, ?local_tcp, ?local_tls, "TURN listening");
        Ok(TurnServer { servers, local_udp, local_tcp, local_tls, accept_tasks })
    }

    pub async fn close(&self) {
        for t in &self.accept_tasks {
            t.abort();
        }
        for s in &self.servers {
            let _ = s.close().await;
        }
    }
}

/// The REST scheme's check: the username's expiry has not passed, and the key is the one
/// derived from the shared secret (the same function that makes `/join`'s credentials).
struct RestAuth {
    secret: String,
    /// The identity of the request being handled on this listener (for the per-user quota).
    asking: Asking,
}

type Asking = Arc<Mutex<Option<String>>>;

impl AuthHandler for RestAuth {
    fn auth_handle(&self, username: &str, realm: &str, _src: SocketAddr) -> Result<Vec<u8>, turn::Error> {
        let expiry: u64 = username
            .split(':')
            .next()
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| turn::Error::Other("the username is not expiry:identity".into()))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if expiry < now {
            return Err(turn::Error::Other("expired TURN credentials".into()));
        }
        let identity = username.split_once(':').map_or("", |(_, id)| id);
        let (_, password) = crate::auth::turn::credentials(&self.secret, identity, expiry as i64);
        *self.asking.lock().unwrap_or_else(|p| p.into_inner()) = Some(identity.to_owned());
        Ok(generate_auth_key(username, realm, &password))
    }
}

/// Makes each allocation's relay: a UDP socket in the range, guarded by the policy.
struct Relays {
    relay_ip: IpAddr,
    bind_ip: IpAddr,
    ports: (u16, u16),
    policy: Arc<Policy>,
    stats: Arc<TurnStats>,
    asking: Asking,
}

#[async_trait]
impl RelayAddressGenerator for Relays {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    async fn allocate_conn(
        &self,
        _use_ipv4: bool,
        _requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        let user = self.asking.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
        let taken = self.stats.allocations.fetch_add(1, Relaxed);
        let theirs = {
            let mut per_user = self.stats.per_user.lock().unwrap_or_else(|p| p.into_inner());
            let n = per_user.entry(user.clone()).or_insert(0);
            *n += 1;
            *n - 1
        };
        let slot = Slot(self.stats.clone(), user);
        if taken >= self.policy.max_allocations {
            self.stats.refused_allocations.fetch_add(1, Relaxed);
            tracing::warn!(max = self.policy.max_allocations, "TURN allocation refused: all relays in use");
            return Err(turn::Error::Other("all relays are in use".into()));
        }
        if theirs >= self.policy.max_per_user {
            self.stats.refused_allocations.fetch_add(1, Relaxed);
            tracing::warn!(
                max = self.policy.max_per_user,
                "TURN allocation refused: this user's relays are all in use"
            );
            return Err(turn::Error::Other("this user's relays are all in use".into()));
        }
        let (lo, hi) = self.ports;
        let span = u32::from(hi - lo) + 1;
        // Start anywhere in the range and take the first free port.
        let first = rand::random::<u32>() % span;
        for i in 0..span {
            let port = lo + ((first + i) % span) as u16;
            if let Ok(socket) = tokio::net::UdpSocket::bind((self.bind_ip, port)).await {
                let relay = Guarded { socket, policy: self.policy.clone(), stats: self.stats.clone(), _slot: slot };
                return Ok((Arc::new(relay), SocketAddr::new(self.relay_ip, port)));
            }
        }
        self.stats.refused_allocations.fetch_add(1, Relaxed);
        tracing::warn!(lo, hi, "TURN allocation refused: no free port in the relay range");
        Err(turn::Error::Other("no free relay port".into()))
    }
}

/// One allocation's place in the total and in its user's; given back when its relay goes.
struct Slot(Arc<TurnStats>, String);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.allocations.fetch_sub(1, Relaxed);
        let mut per_user = self.0.per_user.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_user.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                per_user.remove(&self.1);
            }
        }
    }
}

/// A relay socket that sends only to the peers the policy allows. A client may ask for any
/// permission; what it sends elsewhere is dropped and counted.
struct Guarded {
    socket: tokio::net::UdpSocket,
    policy: Arc<Policy>,
    stats: Arc<TurnStats>,
    _slot: Slot,
}

#[async_trait]
impl Conn for Guarded {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(self.socket.connect(addr).await?)
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.recv(buf).await?)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        Ok(self.socket.recv_from(buf).await?)
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.send(buf).await?)
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.policy.peers.contains(&target) && !self.policy.peer_ips.contains(&target.ip()) {
            if self.stats.refused_peers.fetch_add(1, Relaxed) == 0 {
                tracing::warn!(%target, "TURN relay to an address that is not this server's media refused");
            }
            // Reported as sent: the relay answers nothing to its client about a peer.
            return Ok(buf.len());
        }
        Ok(self.socket.send_to(buf, target).await?)
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// The largest TURN frame on a stream: a STUN message's header and its 16-bit length.
const MAX_FRAME: usize = 20 + 65_535;
/// Frames waiting for the TURN server, from every stream together.
const INBOUND_QUEUE: usize = 1024;
/// Frames waiting to be written to one stream: a client that does not read loses the rest.
const OUTBOUND_QUEUE: usize = 256;
/// A stream that sends nothing this long is closed (a client refreshes at least every 10 min).
const STREAM_IDLE: Duration = Duration::from_secs(15 * 60);

/// Reads one TURN frame from a TCP or TLS stream (RFC 8656 §11.5, §12.5): a STUN message by the
/// length in its header, or ChannelData by its length padded to four bytes. `None` at a clean
/// end; an error for a frame that is neither. Used by the server and by clients of it.
pub async fn read_frame<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 4];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let rest = match head[0] {
        // STUN: two zero bits, then a 20-byte header whose length counts what follows it.
        0x00..=0x3f => 16 + len,
        // ChannelData: channel numbers 0x4000-0x4fff, the payload padded to four bytes.
        0x40..=0x4f => len.div_ceil(4) * 4,
        _ => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a TURN frame")),
    };
    let mut frame = vec![0u8; 4 + rest];
    frame[..4].copy_from_slice(&head);
    r.read_exact(&mut frame[4..]).await?;
    if head[0] >= 0x40 {
        frame.truncate(4 + len);
    }
    Ok(Some(frame))
}

/// The TURN server reads datagrams from one connection; TCP and TLS clients each have their
/// own stream. This joins them: every stream's frames come out of one `recv_from`, named by the
/// client's address, and `send_to` writes to that client's stream.
struct StreamMux {
    local: SocketAddr,
    inbound: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    writers: std::sync::Mutex<std::collections::HashMap<SocketAddr, tokio::sync::mpsc::Sender<Vec<u8>>>>,
}

type Inbound = tokio::sync::mpsc::Sender<(Vec<u8>, SocketAddr)>;

impl StreamMux {
    fn new(local: SocketAddr) -> (Arc<StreamMux>, Inbound) {
        let (tx, rx) = tokio::sync::mpsc::channel(INBOUND_QUEUE);
        let mux = StreamMux { local, inbound: tokio::sync::Mutex::new(rx), writers: Default::default() };
        (Arc::new(mux), tx)
    }

    fn writers(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<SocketAddr, tokio::sync::mpsc::Sender<Vec<u8>>>> {
        self.writers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Conn for StreamMux {
    async fn connect(&self, _: SocketAddr) -> webrtc_util::Result<()> {
        Ok(())
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        // Never an error while the server runs: an error would end its read loop.
        let Some((frame, from)) = self.inbound.lock().await.recv().await else {
            return Err(std::io::Error::other("TURN streams closed").into());
        };
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok((n, from))
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        Ok(buf.len())
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        let writer = self.writers().get(&target).cloned();
        if let Some(w) = writer {
            // A full queue (a client that does not read) drops the frame, as UDP would.
            let _ = w.try_send(buf.to_vec());
        }
        Ok(buf.len())
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// Takes TCP (or TLS) clients, at most `max` at once.
async fn accept(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<crate::tls::Tls>>,
    mux: Arc<StreamMux>,
    inbound: Inbound,
    max: usize,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: not a busy loop while it lasts.
                tracing::warn!(error = %e, "TURN stream not accepted");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if mux.writers().len() >= max {
            tracing::warn!(%peer, max, "TURN stream refused: too many");
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let (mux, inbound, tls) = (mux.clone(), inbound.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                Some(tls) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), tls.turn_acceptor().accept(tcp)).await;
                    match handshake {
                        Ok(Ok(stream)) => serve_stream(stream, peer, mux, inbound).await,
                        _ => tracing::debug!(%peer, "TURN over TLS: no handshake"),
                    }
                }
                None => serve_stream(tcp, peer, mux, inbound).await,
            }
        });
    }
}

/// One client's stream: its frames to the server, the server's frames for it back.
async fn serve_stream<S>(stream: S, peer: SocketAddr, mux: Arc<StreamMux>, inbound: Inbound)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    use tokio::io::AsyncWriteExt;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(OUTBOUND_QUEUE);
    mux.writers().insert(peer, tx);
    let write = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    loop {
        match tokio::time::timeout(STREAM_IDLE, read_frame(&mut reader)).await {
            Ok(Ok(Some(frame))) if frame.len() <= MAX_FRAME => {
                if inbound.send((frame, peer)).await.is_err() {
                    break;
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TURN stream closed: not a TURN frame");
                break;
            }
            _ => break,
        }
    }
    mux.writers().remove(&peer);
    write.abort();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stream_frames_are_cut_by_their_own_lengths() {
        // A STUN binding request (no attributes), then ChannelData of 5 bytes padded to 8, then junk.
        let mut bytes = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        bytes.extend_from_slice(&[7u8; 12]);
        bytes.extend_from_slice(&[0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]);
        bytes.extend_from_slice(&[0xff, 0, 0, 0]);
        let mut r = bytes.as_slice();
        assert_eq!(read_frame(&mut r).await.unwrap().unwrap().len(), 20);
        assert_eq!(read_frame(&mut r).await.unwrap().unwrap(), vec![0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5]);
        assert!(read_frame(&mut r).await.is_err());
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty).await.unwrap().is_none());
        // Cut short inside a frame: an error, not a hang or a panic.
        let mut short: &[u8] = &[0x00, 0x01, 0x00, 0x08, 0x21];
        assert!(read_frame(&mut short).await.is_err());
    }

    #[test]
    fn the_rest_credentials_from_join_are_accepted_and_expired_or_foreign_ones_are_not() {
        let auth = RestAuth { secret: "s3cret".into(), asking: Asking::default() };
        let src: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let later = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 + 600;
        let (user, pass) = crate::auth::turn::credentials("s3cret", "u1", later);
        assert_eq!(auth.auth_handle(&user, "r", src).unwrap(), generate_auth_key(&user, "r", &pass));
        // Another secret's password gives another key: the client's integrity check fails.
        let (_, other) = crate::auth::turn::credentials("other", "u1", later);
        assert_ne!(auth.auth_handle(&user, "r", src).unwrap(), generate_auth_key(&user, "r", &other));
        let (old, _) = crate::auth::turn::credentials("s3cret", "u1", 1_000);
        assert!(auth.auth_handle(&old, "r", src).is_err());
        assert!(auth.auth_handle("alice", "r", src).is_err());
    }
}
