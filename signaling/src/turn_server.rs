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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
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
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct TurnStats {
    pub allocations: AtomicUsize,
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

/// The TURN URL `/join` hands out for the built-in server when none is configured.
pub fn default_url(config: &crate::config::Config, port: u16) -> String {
    let host = if config.turn.public_host.is_empty() {
        let m = &config.media;
        let ip = m.announce_ips.first().or(m.bind_ips.first()).copied().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        }
    } else {
        config.turn.public_host.clone()
    };
    format!("turn:{host}:{port}?transport=udp")
}

pub struct Settings {
    pub listen_udp: SocketAddr,
    pub realm: String,
    /// The relays' address as clients see it, and the one they bind on.
    pub relay_ip: IpAddr,
    pub bind_ip: IpAddr,
    pub relay_ports: (u16, u16),
    pub secret: String,
}

pub struct TurnServer {
    server: Server,
    pub local_udp: SocketAddr,
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
        let relays = Relays {
            relay_ip: settings.relay_ip,
            bind_ip: settings.bind_ip,
            ports: settings.relay_ports,
            policy: Arc::new(policy),
            stats: stats.clone(),
        };
        let config = ServerConfig {
            conn_configs: vec![ConnConfig { conn: Arc::new(udp), relay_addr_generator: Box::new(relays) }],
            realm: settings.realm,
            auth_handler: Arc::new(RestAuth { secret: settings.secret }),
            channel_bind_timeout: Duration::ZERO,
            alloc_close_notify: None,
        };
        let server = Server::new(config).await.map_err(|e| TurnError::Server(e.to_string()))?;
        tracing::info!(%local_udp, "TURN listening (UDP)");
        Ok(TurnServer { server, local_udp })
    }

    pub async fn close(&self) {
        let _ = self.server.close().await;
    }
}

/// The REST scheme's check: the username's expiry has not passed, and the key is the one
/// derived from the shared secret (the same function that makes `/join`'s credentials).
struct RestAuth {
    secret: String,
}

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
        let taken = self.stats.allocations.fetch_add(1, Relaxed);
        let slot = Slot(self.stats.clone());
        if taken >= self.policy.max_allocations {
            self.stats.refused_allocations.fetch_add(1, Relaxed);
            tracing::warn!(max = self.policy.max_allocations, "TURN allocation refused: all relays in use");
            return Err(turn::Error::Other("all relays are in use".into()));
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

/// One allocation's place in the total; given back when its relay goes.
struct Slot(Arc<TurnStats>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.allocations.fetch_sub(1, Relaxed);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_credentials_from_join_are_accepted_and_expired_or_foreign_ones_are_not() {
        let auth = RestAuth { secret: "s3cret".into() };
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
