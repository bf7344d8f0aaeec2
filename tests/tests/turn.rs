//! A clinic behind a firewall that lets only the TURN server through: two participants whose
//! connections may use relayed candidates only (coturn on loopback, credentials from the
//! server's `/join`, derived from the shared `turn_secret`) see and hear each other.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use huizhen_tests::media::{MediaPeer, PeerOptions, Synth};
use huizhen_tests::{Coturn, TestServer, eventually};
use rtc::peer_connection::transport::RTCIceServer;
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
    // A range of relay ports of its own (tests run side by side); allocation takes any free one.
    let relay_base = 40_000 + (turn_port % 400) * 50;
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
