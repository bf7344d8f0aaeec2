//! A clinic behind a firewall that lets only the TURN server through: two participants whose
//! connections may use relayed candidates only (coturn on loopback, credentials from the
//! server's `/join`, derived from the shared `turn_secret`) see and hear each other.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use huizhen_tests::media::{MediaPeer, PeerOptions, Synth};
use huizhen_tests::{Coturn, TestServer, eventually};
use rtc::peer_connection::transport::RTCIceServer;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};

const SECRET: &str = "coturn-static-auth-secret-for-tests";
const WAIT: Duration = Duration::from_secs(30);

fn ice_servers(join: &Value) -> Vec<RTCIceServer> {
    join["ice_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| RTCIceServer {
            urls: s["urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_owned()).collect(),
            username: s["username"].as_str().unwrap_or("").to_owned(),
            credential: s["credential"].as_str().unwrap_or("").to_owned(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_limited_to_turn_relays_see_and_hear_each_other() {
    let turn = Coturn::start(SECRET).unwrap();
    let url = format!("turn:127.0.0.1:{}?transport=udp", turn.port);
    let srv = TestServer::start_with(move |c| {
        c.media.turn_urls = vec![url];
        c.media.turn_secret = SECRET.into();
    })
    .await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let west = api.user_id(&coord, "doctor-west").await;
    let east = api.user_id(&coord, "doctor-east").await;
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "emergency", "summary": "s" });
    let c = api.post("/v1/consultations", &doctor, body).await.ok();
    let cid = c["id"].as_str().unwrap().to_owned();
    api.post(&format!("/v1/consultations/{cid}/invite"), &coord, json!({ "participants": [west] })).await.ok();
    let west_session = api.login("doctor-west").await;
    let mut peers = Vec::new();
    for (session, tag) in [(&doctor, "east"), (&west_session, "west")] {
        let join = api.post(&format!("/v1/consultations/{cid}/join"), session, json!({})).await.ok();
        let servers = ice_servers(&join);
        assert_eq!(servers.len(), 1, "one TURN entry with credentials: {join}");
        assert!(!servers[0].username.is_empty() && !servers[0].credential.is_empty());
        let opts = PeerOptions { ice_servers: servers, relay_only: true, ..PeerOptions::default() };
        let tracks = vec![Synth::clip_video("cam", tag), Synth::clip_audio("mic", tag)];
        peers.push(MediaPeer::join_with(&srv.ws_url(join["token"].as_str().unwrap()), tracks, opts).await);
    }
    for (peer, other) in [(&peers[0], &west), (&peers[1], &east)] {
        for track in ["cam", "mic"] {
            let key = format!("{other}/{track}");
            eventually(&format!("{key} through the relay"), WAIT, || async { peer.packets_of(&key) >= 100 }).await;
        }
    }
    for peer in &peers {
        let types = peer.local_candidate_types().await;
        assert_eq!(types.len(), 2, "both connections have a selected pair: {types:?}");
        assert!(types.iter().all(|(_, t)| t == "relay"), "every connection goes through TURN: {types:?}");
    }
    for p in peers {
        p.close().await;
    }
    srv.stop().await;
}

/// TURN in the server (issue 17): the same two relay-only participants meet through the
/// built-in TURN server, which `/join` names with its REST credentials; a wrong password gets
/// no allocation; and a relay sends only to the server's own media, not to another address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_turn_relays_to_the_media_only_and_with_the_rest_credentials() {
    let turn_port = huizhen_tests::free_port();
    // A range of relay ports of its own (tests run side by side; allocation takes any free one),
    // below the kernel's ephemeral ports, so that no other test's port-0 socket sits in it and
    // no port handed out by `free_port` is a relay's.
    let relay_base = 20_000 + (turn_port % 200) * 50;
    let allowed = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    let srv = TestServer::start_with(move |c| {
        c.turn.enabled = true;
        c.turn.listen = format!("127.0.0.1:{turn_port}").parse().unwrap();
        c.turn.relay_port_min = relay_base;
        c.turn.relay_port_max = relay_base + 49;
        c.turn.allowed_peers = vec!["127.0.0.2".parse().unwrap()];
    })
    .await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let west = api.user_id(&coord, "doctor-west").await;
    let east = api.user_id(&coord, "doctor-east").await;
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "emergency", "summary": "s" });
    let cid = api.post("/v1/consultations", &doctor, body).await.ok()["id"].as_str().unwrap().to_owned();
    api.post(&format!("/v1/consultations/{cid}/invite"), &coord, json!({ "participants": [west] })).await.ok();
    let west_session = api.login("doctor-west").await;
    let mut peers = Vec::new();
    let mut creds = None;
    for (session, tag) in [(&doctor, "east"), (&west_session, "west")] {
        let join = api.post(&format!("/v1/consultations/{cid}/join"), session, json!({})).await.ok();
        let servers = ice_servers(&join);
        assert_eq!(servers[0].urls, vec![format!("turn:127.0.0.1:{turn_port}?transport=udp")], "{join}");
        creds = Some((servers[0].username.clone(), servers[0].credential.clone()));
        let opts = PeerOptions { ice_servers: servers, relay_only: true, ..PeerOptions::default() };
        let tracks = vec![Synth::clip_video("cam", tag), Synth::clip_audio("mic", tag)];
        peers.push(MediaPeer::join_with(&srv.ws_url(join["token"].as_str().unwrap()), tracks, opts).await);
    }
    for (peer, other) in [(&peers[0], &west), (&peers[1], &east)] {
        for track in ["cam", "mic"] {
            let key = format!("{other}/{track}");
            eventually(&format!("{key} through the built-in relay"), WAIT, || async { peer.packets_of(&key) >= 100 })
                .await;
        }
    }
    for peer in &peers {
        let types = peer.local_candidate_types().await;
        assert!(!types.is_empty() && types.iter().all(|(_, t)| t == "relay"), "through TURN: {types:?}");
    }
    let metrics = api.http_get_text("/metrics").await.unwrap();
    assert!(
        metrics.contains("huizhen_turn_allocations 2") || metrics.contains("huizhen_turn_allocations 4"),
        "{metrics}"
    );

    // A TURN client of our own with the same credentials: its relay reaches an allowed peer,
    // never another address (a datagram to it is dropped and counted, before the allowed one).
    let (username, password) = creds.unwrap();
    let server = format!("127.0.0.1:{turn_port}");
    let client = turn_client(&server, &username, &password).await;
    let relay = client.allocate().await.expect("an allocation with the credentials /join gave");
    use webrtc_util::Conn;
    let foreign = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    foreign.set_nonblocking(true).unwrap();
    relay.send_to(b"to a foreign address", foreign.local_addr().unwrap()).await.unwrap();
    relay.send_to(b"to an allowed peer", allowed.local_addr().unwrap()).await.unwrap();
    allowed.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = allowed.recv_from(&mut buf).expect("the allowed peer gets the relayed datagram");
    assert_eq!(&buf[..n], b"to an allowed peer");
    assert!(foreign.recv_from(&mut buf).is_err(), "a relay reached an address that is not the server's media");
    let metrics = api.http_get_text("/metrics").await.unwrap();
    assert!(metrics.contains("huizhen_turn_refused_peer_packets_total 1"), "{metrics}");
    client.close().await.unwrap();

    // The same username with another password: no allocation.
    let wrong = turn_client(&server, &username, "not-the-password").await;
    assert!(wrong.allocate().await.is_err(), "an allocation with a wrong password");
    wrong.close().await.unwrap();
    for p in peers {
        p.close().await;
    }
    srv.stop().await;
}

async fn turn_client(server: &str, username: &str, password: &str) -> turn::client::Client {
    let conn = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let client = turn::client::Client::new(turn::client::ClientConfig {
        stun_serv_addr: server.to_owned(),
        turn_serv_addr: server.to_owned(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn,
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    client
}

/// A TURN client's connection over one TCP or TLS stream (RFC 8656 §3.1): what a browser
/// behind a firewall that passes only TCP (or only HTTPS) uses. Frames are cut as the server
/// cuts them (`huizhen::turn_server::read_frame`).
struct StreamConn<S> {
    reader: tokio::sync::Mutex<tokio::io::ReadHalf<S>>,
    writer: tokio::sync::Mutex<tokio::io::WriteHalf<S>>,
    server: std::net::SocketAddr,
}

#[async_trait::async_trait]
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + 'static> webrtc_util::Conn for StreamConn<S> {
    async fn connect(&self, _: std::net::SocketAddr) -> webrtc_util::Result<()> {
        Ok(())
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, std::net::SocketAddr)> {
        let frame = huizhen::turn_server::read_frame(&mut *self.reader.lock().await)
            .await?
            .ok_or_else(|| std::io::Error::other("the TURN server closed the stream"))?;
        buf[..frame.len()].copy_from_slice(&frame);
        Ok((frame.len(), self.server))
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.send_to(buf, self.server).await
    }
    async fn send_to(&self, buf: &[u8], _: std::net::SocketAddr) -> webrtc_util::Result<usize> {
        use tokio::io::AsyncWriteExt;
        self.writer.lock().await.write_all(buf).await?;
        Ok(buf.len())
    }
    fn local_addr(&self) -> webrtc_util::Result<std::net::SocketAddr> {
        Ok("127.0.0.1:0".parse().unwrap())
    }
    fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        Some(self.server)
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

async fn stream_client<S>(
    stream: S,
    server: std::net::SocketAddr,
    username: &str,
    password: &str,
) -> turn::client::Client
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + 'static,
{
    let (r, w) = tokio::io::split(stream);
    let conn = StreamConn { reader: tokio::sync::Mutex::new(r), writer: tokio::sync::Mutex::new(w), server };
    let client = turn::client::Client::new(turn::client::ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn: std::sync::Arc::new(conn),
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    client
}

/// TURN over TCP and over TLS (the `[tls]` certificate): `/join` names both; with its
/// credentials a client on a TLS stream (trusting exactly the server's certificate) and one on
/// a plain TCP stream each get a relay that carries datagrams to an allowed peer and back; a
/// wrong password over TLS gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_turn_serves_clients_over_tcp_and_tls() {
    use webrtc_util::Conn;
    let dir = tempfile::tempdir().unwrap();
    let (tcp_port, tls_port) = (huizhen_tests::free_port(), huizhen_tests::free_port());
    let relay_base = 20_000 + (tls_port % 200) * 50;
    let mut config = huizhen_tests::test_config(dir.path());
    config.tls.mode = "self-signed".into();
    config.tls.names = vec!["turn.hospital.test".into(), "127.0.0.1".into()];
    config.turn.enabled = true;
    config.turn.listen = format!("127.0.0.1:{}", huizhen_tests::free_port()).parse().unwrap();
    config.turn.listen_tcp = format!("127.0.0.1:{tcp_port}");
    config.turn.listen_tls = format!("127.0.0.1:{tls_port}");
    config.turn.relay_port_min = relay_base;
    config.turn.relay_port_max = relay_base + 49;
    config.turn.allowed_peers = vec!["127.0.0.2".parse().unwrap()];
    let srv = TestServer::start_config(config).await;
    // The URLs and the credentials `/join` hands out (the server speaks HTTPS here; the test's
    // API client does not, so they are read from its configuration and made as /join makes them).
    let m = &srv.state.config.media;
    assert_eq!(
        m.turn_urls,
        vec![
            format!("turn:127.0.0.1:{}?transport=udp", srv.state.config.turn.listen.port()),
            format!("turn:127.0.0.1:{tcp_port}?transport=tcp"),
            format!("turns:turn.hospital.test:{tls_port}?transport=tcp"),
        ],
        "what /join hands out"
    );
    let expires = jiff::Timestamp::now().as_second() + 600;
    let (username, password) = huizhen::auth::turn::credentials(&m.turn_secret, "u1", expires);
    let pem = std::fs::read(dir.path().join("tls/self-signed.pem")).unwrap();
    let tls = huizhen_tests::tls_connector(&pem);
    let tls_at: std::net::SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    let tcp_at: std::net::SocketAddr = format!("127.0.0.1:{tcp_port}").parse().unwrap();
    let open_tls = || async {
        let tcp = tokio::net::TcpStream::connect(tls_at).await.unwrap();
        tls.connect(ServerName::try_from("turn.hospital.test").unwrap(), tcp).await.unwrap()
    };

    // The server starts TURN as it starts serving (in the background of `start_config`).
    eventually("TURN listens on TCP and TLS", WAIT, || async {
        tokio::net::TcpStream::connect(tls_at).await.is_ok() && tokio::net::TcpStream::connect(tcp_at).await.is_ok()
    })
    .await;
    let peer = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    for (how, client) in [
        ("TLS", stream_client(open_tls().await, tls_at, &username, &password).await),
        (
            "TCP",
            stream_client(tokio::net::TcpStream::connect(tcp_at).await.unwrap(), tcp_at, &username, &password).await,
        ),
    ] {
        let relay = client.allocate().await.unwrap_or_else(|e| panic!("an allocation over {how}: {e}"));
        let relayed_at = relay.local_addr().unwrap();
        relay.send_to(format!("over {how}").as_bytes(), peer.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(WAIT, peer.recv_from(&mut buf)).await.unwrap().unwrap();
        assert_eq!((&buf[..n], from.port()), (format!("over {how}").as_bytes(), relayed_at.port()));
        // And back: the peer answers the relay, the client reads it from its stream.
        peer.send_to(b"answer", from).await.unwrap();
        let (n, _) = tokio::time::timeout(WAIT, relay.recv_from(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"answer", "over {how}");
        client.close().await.unwrap();
    }
    let wrong = stream_client(open_tls().await, tls_at, &username, "not-the-password").await;
    assert!(wrong.allocate().await.is_err(), "an allocation over TLS with a wrong password");
    wrong.close().await.unwrap();
    srv.stop().await;
}

/// Quotas: one identity holds at most `turn.max_allocations_per_user` relays at once (here 1);
/// another identity still gets one, and the first gets one again once its relay is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_turn_holds_each_user_to_a_quota() {
    let turn_port = huizhen_tests::free_port();
    let relay_base = 20_000 + (turn_port % 200) * 50;
    let srv = TestServer::start_with(move |c| {
        c.turn.enabled = true;
        c.turn.listen = format!("127.0.0.1:{turn_port}").parse().unwrap();
        c.turn.relay_port_min = relay_base;
        c.turn.relay_port_max = relay_base + 49;
        c.turn.max_allocations_per_user = 1;
    })
    .await;
    let secret = srv.state.config.media.turn_secret.clone();
    let expires = jiff::Timestamp::now().as_second() + 600;
    let creds = |who: &str| huizhen::auth::turn::credentials(&secret, who, expires);
    let server = format!("127.0.0.1:{turn_port}");
    let (u1, p1) = creds("doctor-1");
    let first = turn_client(&server, &u1, &p1).await;
    let relay = first.allocate().await.expect("the first relay of doctor-1");
    let second = turn_client(&server, &u1, &p1).await;
    assert!(second.allocate().await.is_err(), "a second relay for doctor-1 at once");
    second.close().await.unwrap();
    let (u2, p2) = creds("doctor-2");
    let other = turn_client(&server, &u2, &p2).await;
    assert!(other.allocate().await.is_ok(), "doctor-2 is not held to doctor-1's quota");
    other.close().await.unwrap();
    // Counted once, before the retries below (each one early is refused and counted too).
    let metrics = srv.api().http_get_text("/metrics").await.unwrap();
    assert!(metrics.contains("huizhen_turn_refused_allocations_total 1"), "{metrics}");
    // doctor-1's relay goes (the client releases it: a refresh with lifetime 0): the quota
    // frees up.
    use webrtc_util::Conn;
    relay.close().await.unwrap();
    first.close().await.unwrap();
    eventually("doctor-1 may have a relay again", WAIT, || async {
        let again = turn_client(&server, &u1, &p1).await;
        let ok = again.allocate().await.is_ok();
        again.close().await.unwrap();
        ok
    })
    .await;
    srv.stop().await;
}
