//! The media plane's shape, seen from outside the server: one UDP socket per media worker
//! however many connections, rooms placed on different workers, and junk on a media port
//! dropped and counted while media flows on.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use huizhen::auth::Grants;
use huizhen::ids::ConsultationId;
use huizhen_tests::media::{MediaPeer, Synth};
use huizhen_tests::{Process, TestServer, eventually, huizhen_binary};
use jiff::Timestamp;

const MEDIA_WAIT: Duration = Duration::from_secs(60);

fn token(srv: &TestServer, room: &str, who: &str, publish: bool) -> String {
    let g = Grants { can_publish: publish, can_subscribe: true, can_publish_data: true, ..Default::default() };
    srv.state.keys.room(who, who, &ConsultationId(room.into()), g, 300, Timestamp::now()).unwrap().0
}

/// The UDP sockets process `pid` holds: its socket inodes that the kernel's UDP tables list.
fn udp_sockets(pid: u32) -> usize {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| l.to_string_lossy().strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    ["udp", "udp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok())
        .flat_map(|table| {
            table.lines().skip(1).filter_map(|l| l.split_whitespace().nth(9).map(str::to_owned)).collect::<Vec<_>>()
        })
        .filter(|inode| inodes.contains(inode))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_connections_share_one_udp_socket_per_worker() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("HUIZHEN_MEDIA__WORKERS", "2"),
        ("HUIZHEN_LIMITS__ROOM_PARTICIPANTS", "200"),
        ("HUIZHEN_LIMITS__HTTP_REQUESTS_PER_SECOND", "0"),
    ];
    let mut server = Process::serve_env(dir.path(), &[], &env).unwrap();
    let pid = server.child.id();
    assert_eq!(udp_sockets(pid), 2, "the workers' sockets exist before any connection");
    let token = |who: &str, publish: bool| {
        let mut cmd = std::process::Command::new(huizhen_binary());
        cmd.args(["token", "--room", "sockets", "--identity", who, "--data", "--ttl", "600"]);
        // The host only publishes, so the connections are exactly its one and the viewers'.
        cmd.arg(if publish { "--publish" } else { "--subscribe" });
        let out = cmd.arg("--data-dir").arg(dir.path()).env("HUIZHEN_LOG", "error").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let url = |t: String| format!("ws://{}/v1/rtc?token={t}", server.addr);
    // One publisher (its publish connection) and 99 viewers (a subscribe connection each).
    let host = MediaPeer::join(&url(token("host", true)), vec![Synth::audio("mic", "host/mic")]).await;
    let mut viewers = Vec::new();
    for i in 0..99 {
        viewers.push(MediaPeer::join(&url(token(&format!("v{i}"), false)), vec![]).await);
    }
    eventually("all 99 viewers hear the host", MEDIA_WAIT, || async {
        viewers.iter().all(|v| v.packets_tagged("host/mic") > 0)
    })
    .await;
    let metrics = reqwest::get(format!("http://{}/metrics", server.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("\nhuizhen_media_connections 100\n"), "{metrics}");
    assert_eq!(udp_sockets(pid), 2, "100 connections on two workers use their two sockets");
    for v in viewers {
        v.close().await;
    }
    host.close().await;
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_on_different_workers_each_announce_their_worker_port() {
    let srv = TestServer::start_with(|c| c.media.workers = 2).await;
    let sfu = srv.state.sfu.clone();
    let ports: Vec<u16> = sfu.media_addrs().iter().map(|a| a.port()).collect();
    assert_eq!(ports.len(), 2);
    // Two rooms that the placement puts on different workers.
    let rooms: Vec<String> = (0..).map(|i| format!("w{i}")).take(64).collect();
    let a = rooms.iter().find(|r| sfu.worker_of(r) == 0).unwrap().clone();
    let b = rooms.iter().find(|r| sfu.worker_of(r) == 1).unwrap().clone();
    let mut peers = Vec::new();
    for room in [&a, &b] {
        let who = format!("{room}-pub");
        let publisher = MediaPeer::join(
            &srv.ws_url(&token(&srv, room, &who, true)),
            vec![Synth::video("cam", &format!("{room}/cam"))],
        )
        .await;
        let viewer = MediaPeer::join(&srv.ws_url(&token(&srv, room, &format!("{room}-view"), false)), vec![]).await;
        peers.push((room.clone(), publisher, viewer));
    }
    eventually("both rooms' video flows", MEDIA_WAIT, || async {
        peers.iter().all(|(room, _, v)| v.packets_tagged(&format!("{room}/cam")) >= 30)
    })
    .await;
    for (room, publisher, viewer) in &peers {
        let port = ports[sfu.worker_of(room)];
        let other = ports[1 - sfu.worker_of(room)];
        let candidate = |sdp: &str| sdp.lines().find(|l| l.starts_with("a=candidate:")).unwrap_or_default().to_owned();
        let answer = publisher.snapshot(|s| {
            s.messages.iter().find(|m| m["type"] == "publish_answer").map(|m| m["sdp"].as_str().unwrap().to_owned())
        });
        let offer = viewer.snapshot(|s| {
            s.messages.iter().find(|m| m["type"] == "subscribe_offer").map(|m| m["sdp"].as_str().unwrap().to_owned())
        });
        for sdp in [answer.unwrap(), offer.unwrap()] {
            let c = candidate(&sdp);
            assert!(c.contains(&format!(" {port} typ host")), "{room} on worker port {port}: {c}");
            assert!(!c.contains(&format!(" {other} ")), "{c}");
        }
        // Nothing of the other room arrives.
        let other_room = if room == &a { &b } else { &a };
        assert_eq!(viewer.packets_tagged(&format!("{other_room}/cam")), 0);
    }
    for (_, p, v) in peers {
        p.close().await;
        v.close().await;
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broadcast_spreads_its_viewers_over_two_workers() {
    use std::sync::atomic::Ordering::Relaxed;
    let srv = TestServer::start_with(|c| {
        c.media.workers = 2;
        c.media.viewers_per_worker = 2;
    })
    .await;
    let sfu = srv.state.sfu.clone();
    let ports: Vec<u16> = sfu.media_addrs().iter().map(|a| a.port()).collect();
    let (home, away) = (sfu.worker_of("spread"), 1 - sfu.worker_of("spread"));
    let host = MediaPeer::join(
        &srv.ws_url(&token(&srv, "spread", "host", true)),
        vec![Synth::simulcast_video("cam", "host/cam"), Synth::audio("mic", "host/mic")],
    )
    .await;
    eventually("the host publishes", MEDIA_WAIT, || async { sfu.stats().published_tracks.load(Relaxed) == 2 }).await;
    // The host and v0 fill the home worker (2 members); v1 and v2 go to the other one.
    let mut viewers = Vec::new();
    for i in 0..3 {
        let v = MediaPeer::join(&srv.ws_url(&token(&srv, "spread", &format!("v{i}"), false)), vec![]).await;
        // In one at a time (its first offer comes once it is in), so the order is known.
        eventually("the viewer is offered the host's tracks", MEDIA_WAIT, || async {
            v.snapshot(|s| s.messages.iter().any(|m| m["type"] == "subscribe_offer"))
        })
        .await;
        viewers.push(v);
    }
    let sees = |v: &MediaPeer, at: (u64, u64)| {
        v.packets_tagged("host/cam") >= at.0 + 30 && v.packets_tagged("host/mic") >= at.1 + 20
    };
    eventually("every viewer sees and hears the host", MEDIA_WAIT, || async {
        viewers.iter().all(|v| sees(v, (0, 0)))
    })
    .await;
    for (i, v) in viewers.iter().enumerate() {
        let worker = if i == 0 { home } else { away };
        assert_eq!(v.subscribe_port().unwrap(), ports[worker], "v{i}'s connection is on worker {worker}");
    }
    assert_eq!(sfu.room_count(), 2, "the room has a part on each worker");
    assert_eq!(sfu.stats().published_tracks.load(Relaxed), 2, "a relayed track is counted where it is published");
    // A keyframe asked for on the other worker reaches the publisher: a viewer there that
    // turns the video off and on again restarts on a keyframe the host was asked for.
    let v1 = &viewers[1];
    v1.send(serde_json::json!({ "type": "set_layer", "id": "off", "track": "host/cam", "layer": "off" }));
    eventually("set_layer off is acknowledged", MEDIA_WAIT, || async {
        v1.snapshot(|s| s.messages.iter().any(|m| m["type"] == "ack" && m["id"] == "off"))
    })
    .await;
    let (video, audio) = (v1.packets_tagged("host/cam"), v1.packets_tagged("host/mic"));
    eventually("audio flows on", MEDIA_WAIT, || async { v1.packets_tagged("host/mic") >= audio + 100 }).await;
    let stray = v1.packets_tagged("host/cam") - video;
    assert!(stray <= 3, "{stray} video packets arrived after set_layer off");
    let asked = host.snapshot(|s| s.keyframe_requests);
    v1.send(serde_json::json!({ "type": "set_layer", "id": "on", "track": "host/cam", "layer": "high" }));
    eventually("video resumes", MEDIA_WAIT, || async { v1.packets_tagged("host/cam") >= video + stray + 30 }).await;
    assert!(host.snapshot(|s| s.keyframe_requests) > asked, "the host was asked for a keyframe");
    v1.snapshot(|s| {
        let r = s.received.values().find(|r| r.tags.contains(&"host/cam".to_string())).unwrap();
        assert!(r.log[(video + stray) as usize].2, "video resumes on a keyframe");
    });
    // When the last viewer on the other worker leaves, its part of the room goes; the next
    // viewer put there links it afresh.
    let v2 = viewers.pop().unwrap();
    let v1 = viewers.pop().unwrap();
    v1.close().await;
    v2.close().await;
    eventually("the other worker's part of the room is gone", MEDIA_WAIT, || async { sfu.room_count() == 1 }).await;
    let v3 = MediaPeer::join(&srv.ws_url(&token(&srv, "spread", "v3", false)), vec![]).await;
    eventually("a new viewer on the other worker sees the host", MEDIA_WAIT, || async { sees(&v3, (0, 0)) }).await;
    assert_eq!(v3.subscribe_port().unwrap(), ports[away]);
    let v0 = viewers.pop().unwrap();
    let at = (v0.packets_tagged("host/cam"), v0.packets_tagged("host/mic"));
    eventually("the home worker's viewer still sees the host", MEDIA_WAIT, || async { sees(&v0, at) }).await;
    for p in [host, v0, v3] {
        p.close().await;
    }
    eventually("nothing of the room is left on either worker", MEDIA_WAIT, || async { sfu.room_count() == 0 }).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_on_a_media_port_is_dropped_and_counted_while_media_flows() {
    use rtc::stun::attributes::ATTR_USERNAME;
    use rtc::stun::message::{BINDING_REQUEST, Message, Setter};
    use rtc::stun::textattrs::Username;
    use std::sync::atomic::Ordering::Relaxed;
    let srv = TestServer::start().await;
    let stats = srv.state.sfu.clone();
    let publisher =
        MediaPeer::join(&srv.ws_url(&token(&srv, "junk", "pub", true)), vec![Synth::video("cam", "pub/cam")]).await;
    let viewer = MediaPeer::join(&srv.ws_url(&token(&srv, "junk", "view", false)), vec![]).await;
    eventually("media flows", MEDIA_WAIT, || async { viewer.packets_tagged("pub/cam") >= 30 }).await;

    let mut stun = Message::new();
    stun.set_type(BINDING_REQUEST);
    stun.new_transaction_id().unwrap();
    Username::new(ATTR_USERNAME, "nobodysufrag:x".to_owned()).add_to(&mut stun).unwrap();
    stun.write_header();
    let mut truncated = stun.raw.clone();
    truncated.truncate(24);
    let mut rtp_like = vec![0x80u8, 96, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
    rtp_like.extend(std::iter::repeat_n(0x55, 1000));
    let junk: Vec<Vec<u8>> = vec![
        stun.raw.clone(),                        // unknown ufrag
        truncated,                               // truncated STUN
        vec![0u8; 20],                           // STUN-sized zeros: no magic cookie
        vec![22, 254, 253, 0, 0, 0, 0, 0, 0, 0], // DTLS from an unknown address
        rtp_like,                                // SRTP from an unknown address
        vec![0x40, 0, 0, 4, 1, 2, 3, 4],         // TURN channel data: never ours
        vec![0xff; 1500],                        // nothing at all
        vec![],                                  // empty
    ];
    let before = stats.stats().unrouted_datagrams.load(Relaxed);
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = srv.state.sfu.media_addrs()[0];
    for d in &junk {
        socket.send_to(d, target).await.unwrap();
    }
    eventually("every junk datagram counted", MEDIA_WAIT, || async {
        stats.stats().unrouted_datagrams.load(Relaxed) >= before + junk.len() as u64
    })
    .await;
    let n = viewer.packets_tagged("pub/cam");
    eventually("media keeps flowing", MEDIA_WAIT, || async { viewer.packets_tagged("pub/cam") >= n + 30 }).await;
    publisher.close().await;
    viewer.close().await;
    srv.stop().await;
}

/// Issue 13 item 9: a first offer the server refuses (no fingerprint, or an empty ufrag) must
/// not leave a half-built connection that refuses the corrected offer until the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_first_offer_leaves_nothing_that_blocks_the_next() {
    use std::sync::atomic::Ordering::Relaxed;
    let srv = TestServer::start().await;
    let sfu = srv.state.sfu.clone();
    let pc = huizhen_tests::media::offer_only_pc().await;
    let good = pc.create_offer(None).await.unwrap().sdp;
    pc.close().await.unwrap();
    let no_fingerprint: String =
        good.lines().filter(|l| !l.starts_with("a=fingerprint")).map(|l| format!("{l}\r\n")).collect();
    let empty_ufrag: String = good
        .lines()
        .map(|l| if l.starts_with("a=ice-ufrag:") { "a=ice-ufrag:".to_owned() } else { l.to_owned() })
        .map(|l| format!("{l}\r\n"))
        .collect();
    let (mut ws, _) = huizhen_tests::Ws::join(&srv.ws_url(&token(&srv, "bad-offer", "county", true))).await;
    for (i, bad) in [no_fingerprint, empty_ufrag].into_iter().enumerate() {
        let id = format!("bad{i}");
        ws.send(serde_json::json!({ "type": "publish", "id": id, "sdp": bad })).await;
        assert_eq!(ws.answer(&id).await["code"], "invalid_sdp", "offer {i}");
        // Only the subscribe connection is left.
        assert_eq!(sfu.stats().peer_connections.load(Relaxed), 1);
    }
    ws.send(serde_json::json!({ "type": "publish", "id": "good", "sdp": good })).await;
    let answer = ws.answer("good").await;
    assert_eq!(answer["type"], "publish_answer", "{answer}");
    assert_eq!(sfu.stats().peer_connections.load(Relaxed), 2);
    // Issue 13 item 14: a browser's last `candidate: null` is the end of its candidates.
    ws.send(serde_json::json!({ "type": "trickle", "id": "end", "target": "publish", "candidate": null })).await;
    assert_eq!(ws.answer("end").await["type"], "ack");
    srv.stop().await;
}

/// Issue 13 item 5: the old socket of a reconnected participant dies after the new one joined;
/// its leave must not take the new session's media.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_session_leaving_keeps_the_new_sessions_media() {
    use std::sync::atomic::Ordering::Relaxed;
    let srv = TestServer::start().await;
    let sfu = srv.state.sfu.clone();
    let grants = huizhen_sfu::MediaGrants { publish: true, subscribe: true };
    let (old_tx, _old_rx) = tokio::sync::mpsc::unbounded_channel();
    let (new_tx, _new_rx) = tokio::sync::mpsc::unbounded_channel();
    let old = sfu.join("resume", "county", grants, old_tx).await.unwrap();
    let new = sfu.join("resume", "county", grants, new_tx).await.unwrap();
    assert_eq!(sfu.stats().peer_connections.load(Relaxed), 1, "the new session's subscribe connection");
    old.leave().await;
    assert_eq!(sfu.stats().peer_connections.load(Relaxed), 1, "the stale leave changed nothing");
    assert_eq!(sfu.room_count(), 1);
    let pc = huizhen_tests::media::offer_only_pc().await;
    let offer = pc.create_offer(None).await.unwrap().sdp;
    pc.close().await.unwrap();
    new.publish(offer).await.expect("the new session still publishes");
    new.leave().await;
    assert_eq!(sfu.stats().peer_connections.load(Relaxed), 0);
    srv.stop().await;
}

/// Issue 13 item 18: someone who joins after a track was muted is told so with the track.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latecomer_is_told_which_tracks_are_muted() {
    let srv = TestServer::start().await;
    let alice = MediaPeer::join(
        &srv.ws_url(&token(&srv, "late", "alice", true)),
        vec![Synth::audio("mic", "alice/mic"), Synth::video("cam", "alice/cam")],
    )
    .await;
    let early = MediaPeer::join(&srv.ws_url(&token(&srv, "late", "early", false)), vec![]).await;
    eventually("alice is heard", MEDIA_WAIT, || async { early.packets_tagged("alice/mic") > 0 }).await;
    alice.send(serde_json::json!({ "type": "mute", "id": "m", "track": "mic", "muted": true }));
    let told = |p: &MediaPeer| {
        p.snapshot(|s| {
            s.messages.iter().any(|m| m["type"] == "track_muted" && m["track_id"] == "alice/mic" && m["muted"] == true)
        })
    };
    eventually("those present are told", MEDIA_WAIT, || async { told(&early) }).await;
    let late = MediaPeer::join(&srv.ws_url(&token(&srv, "late", "late", false)), vec![]).await;
    eventually("the latecomer is told too", MEDIA_WAIT, || async { told(&late) }).await;
    // Only the muted track is reported muted.
    assert!(!late.snapshot(|s| s.messages.iter().any(|m| m["type"] == "track_muted" && m["track_id"] == "alice/cam")));
    for p in [alice, early, late] {
        p.close().await;
    }
    srv.stop().await;
}
