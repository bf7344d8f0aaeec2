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
