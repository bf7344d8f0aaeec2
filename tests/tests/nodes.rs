//! Issue 16, shared limits: several nodes on one Redis hold the failed sign-in throttle and
//! the per-address API limit together, however a proxy spreads the requests; while Redis is
//! away each node applies them alone and keeps answering.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use huizhen_tests::media::{MediaPeer, Synth};
use huizhen_tests::{Api, Process, RedisServer, TestServer, eventually};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_redis_share_the_sign_in_throttle_and_the_api_limit() {
    let mut redis = RedisServer::start().unwrap();
    let url = redis.url();
    let node = |url: String| {
        TestServer::start_with(move |c| {
            c.store = url;
            c.auth.max_failed_logins_per_minute = 5;
            c.limits.http_requests_per_second = 1;
            c.limits.http_burst = 40;
        })
    };
    let (a, b) = (node(url.clone()).await, node(url).await);
    let (api_a, api_b) = (a.api(), b.api());

    // Five wrong passwords for one account, spread over both nodes: the sixth attempt is
    // refused on either, even with the right password (each node alone would allow five).
    let wrong = json!({ "username": "doctor-east", "password": "not-the-password" });
    for (i, api) in [&api_a, &api_b, &api_a, &api_b, &api_a].into_iter().enumerate() {
        let r = api.send("POST", "/v1/auth/login", None, Some(wrong.clone())).await;
        assert_eq!((r.status, r.code()), (401, "invalid_credentials"), "attempt {}", i + 1);
    }
    let right = json!({ "username": "doctor-east", "password": huizhen_tests::DEMO_PASSWORD });
    api_b.send("POST", "/v1/auth/login", None, Some(right.clone())).await.expect(429, "too_many_attempts");
    api_a.send("POST", "/v1/auth/login", None, Some(right)).await.expect(429, "too_many_attempts");

    // A burst of 40 requests per address (the set-up above spent some), one more a second:
    // 80 quick requests over both nodes get at most the burst and what refilled meanwhile;
    // each node alone would let nearly 40 through.
    let started = Instant::now();
    let mut passed = 0;
    for i in 0..80 {
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        let r = api.send("GET", "/v1/me", None, None).await;
        match (r.status, r.code()) {
            (401, "token_missing") => passed += 1,
            (429, "rate_limited") => {}
            other => panic!("request {i}: {other:?} {}", r.body),
        }
    }
    let refilled = started.elapsed().as_secs_f64().ceil() as usize;
    assert!(passed >= 20, "the rest of the burst passes: {passed}");
    assert!(passed <= 40 + refilled, "{passed} passed in {refilled} s over two nodes: the limit is not shared");

    // Redis away: each node decides alone and keeps answering (no 503 from a limit).
    redis.stop();
    let r = api_a.send("GET", "/v1/me", None, None).await;
    assert!(matches!((r.status, r.code()), (401, "token_missing") | (429, "rate_limited")), "{} {}", r.status, r.body);
    a.stop().await;
    b.stop().await;
}

/// Control from anywhere: a member whose socket reached node A is in a room that lives on A;
/// the consultation ended through node B's API ends it there too, and a withdrawn guest link
/// or a disabled account decided on B puts its holder out of A's room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_on_one_node_obeys_the_api_of_another() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url();
    let node = |url: String| {
        TestServer::start_with(move |c| {
            c.store = url;
            c.jwt_secret = "a-secret-both-nodes-share-0123456789abcdef".into();
        })
    };
    let (a, b) = (node(url.clone()).await, node(url).await);
    let (api_a, api_b) = (a.api(), b.api());
    // An emergency: live at once, the requesting doctor its host.
    let doctor = api_a.login("doctor-east").await;
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "emergency", "summary": "s" });
    let c = api_a.post("/v1/consultations", &doctor, body).await.ok();
    let id = c["id"].as_str().unwrap().to_owned();
    let token = api_a.post(&format!("/v1/consultations/{id}/join"), &doctor, json!({})).await.ok();
    let member = MediaPeer::join(&a.ws_url(token["token"].as_str().unwrap()), vec![]).await;
    eventually("the doctor is in the room on node A", WAIT, || async {
        member.snapshot(|s| s.messages.iter().any(|m| m["type"] == "hello"))
    })
    .await;
    assert_eq!(b.state.hub.room_count(), 0, "the room lives on node A only");

    // A guest admitted on A, their link withdrawn on B: out at once.
    let link = api_b.post(&format!("/v1/consultations/{id}/guest_links"), &doctor, json!({ "label": "x" })).await.ok();
    let link_token = link["token"].as_str().unwrap().to_owned();
    let link_id = link["link"]["id"].as_str().unwrap().to_owned();
    let arrived =
        api_a.send("POST", "/v1/guest/session", None, Some(json!({ "link": link_token, "name": "访客" }))).await.ok();
    let guest_token = arrived["token"].as_str().unwrap().to_owned();
    let room = api_a.send("POST", "/v1/guest/join", Some(&guest_token), None).await.ok();
    let guest = MediaPeer::join(&a.ws_url(room["token"].as_str().unwrap()), vec![]).await;
    let guest_id = format!("guest-{link_id}");
    eventually("the host on A sees the guest waiting in the lobby", WAIT, || async {
        member.snapshot(|s| {
            s.messages.iter().any(|m| m["type"] == "lobby_waiting" && m["participant"]["id"] == guest_id.as_str())
        })
    })
    .await;
    api_b.post(&format!("/v1/consultations/{id}/guest_links/{link_id}/revoke"), &doctor, json!({})).await.ok();
    eventually("the withdrawn guest is put out on A", WAIT, || async {
        guest.snapshot(|s| s.messages.iter().any(|m| m["type"] == "removed" || m["type"] == "declined"))
    })
    .await;

    // The consultation ended through B's API: the room on A ends for everyone.
    api_b.post(&format!("/v1/consultations/{id}/end"), &doctor, json!({})).await.ok();
    eventually("the member on A is told the consultation ended", WAIT, || async {
        member.snapshot(|s| s.messages.iter().any(|m| m["type"] == "ended"))
    })
    .await;
    guest.close().await;
    member.close().await;
    a.stop().await;
    b.stop().await;
}

/// Three nodes on one Redis, each with its public URL and the same signing secret.
async fn three_nodes(redis_url: &str) -> Vec<TestServer> {
    three_nodes_draining_in(redis_url, 3600).await
}

async fn three_nodes_draining_in(redis_url: &str, drain_deadline_secs: u64) -> Vec<TestServer> {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let port = huizhen_tests::free_port();
        let url = redis_url.to_owned();
        nodes.push(
            TestServer::start_with(move |c| {
                c.store = url;
                c.jwt_secret = SECRET.into();
                c.listen = format!("127.0.0.1:{port}").parse().unwrap();
                c.node.public_url = format!("http://127.0.0.1:{port}");
                c.node.drain_deadline_secs = drain_deadline_secs;
            })
            .await,
        );
    }
    nodes
}

/// Three node processes on one Redis (each its own port, data directory and public URL, the
/// same secret), started and killed one by one.
struct Nodes {
    redis_url: String,
    dirs: Vec<tempfile::TempDir>,
    ports: Vec<u16>,
}

impl Nodes {
    fn new(redis: &RedisServer) -> Self {
        Self {
            redis_url: redis.url(),
            dirs: (0..3).map(|_| tempfile::tempdir().unwrap()).collect(),
            // The same port again after a kill: not one an outgoing connection may take meanwhile.
            ports: (0..3).map(|_| huizhen_tests::stable_port()).collect(),
        }
    }

    fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    /// Node `i`'s configuration (environment).
    fn env(&self, i: usize) -> [(&'static str, String); 4] {
        [
            ("HUIZHEN_STORE", self.redis_url.clone()),
            ("HUIZHEN_JWT_SECRET", SECRET.to_owned()),
            ("HUIZHEN_NODE__PUBLIC_URL", self.url(i)),
            ("HUIZHEN_MEDIA__WORKERS", "1".to_owned()),
        ]
    }

    /// Node `i` (again); `demo`: with the demo accounts (the first start of the first node).
    fn start(&self, i: usize, demo: bool) -> Process {
        let env = self.env(i);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Process::serve_at(self.ports[i], self.dirs[i].path(), if demo { &["--demo"] } else { &[] }, &env).unwrap()
    }

    /// `huizhen <args>` with node `i`'s configuration and data directory: (success, stdout
    /// then stderr).
    fn command(&self, i: usize, args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new(huizhen_tests::huizhen_binary())
            .args(args)
            .arg("--data-dir")
            .arg(self.dirs[i].path())
            .env("HUIZHEN_LOG", "error")
            .envs(self.env(i))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success(), format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }

    fn api(&self, i: usize) -> Api {
        Api::new(format!("127.0.0.1:{}", self.ports[i]).parse().unwrap())
    }
}

/// The requesting doctor and a visitor join consultation `id` where `/join` (asked of `api`)
/// says, and wait for each other's media there: the home's URL and the two peers.
async fn meet(api: Api, doctor: &str, id: &str) -> (String, MediaPeer, MediaPeer) {
    let keys = huizhen::auth::Keys::from_secret(&huizhen::auth::secret::SigningKey::new(SECRET.as_bytes()).unwrap());
    let grants =
        huizhen::auth::Grants { can_publish: true, can_subscribe: true, can_publish_data: true, ..Default::default() };
    let room = huizhen::ids::ConsultationId(id.to_owned());
    let answer = api.post(&format!("/v1/consultations/{id}/join"), doctor, json!({})).await.ok();
    let home = answer["node"]["url"].as_str().unwrap().to_owned();
    let signaling = answer["signaling_url"].as_str().unwrap();
    let visitor = keys.room("visitor", "visitor", &room, grants, 300, jiff::Timestamp::now()).unwrap().0;
    let a = MediaPeer::join(&format!("{signaling}?token={}", answer["token"].as_str().unwrap()), cam_and_mic("doctor"))
        .await;
    let b = MediaPeer::join(&format!("{signaling}?token={visitor}"), cam_and_mic("visitor")).await;
    eventually("both members get the other's media on the home", WAIT, || async {
        ["visitor/cam", "visitor/mic"].iter().all(|t| a.packets_tagged(t) >= 30)
            && ["doctor/cam", "doctor/mic"].iter().all(|t| b.packets_tagged(t) >= 30)
    })
    .await;
    (home, a, b)
}

/// `GET path` asked of `api` again until its answer is `done` (or `within` passes: the test
/// fails with the last answer).
async fn listed_when(
    api: &Api,
    path: &str,
    token: &str,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let listed = api.get(path, token).await.ok();
        if done(&listed) {
            return listed;
        }
        assert!(Instant::now() < deadline, "{path} did not come to what the test waits for: {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const SECRET: &str = "a-secret-every-node-shares-0123456789abcdef";

fn room_token(srv: &TestServer, room: &str, who: &str) -> String {
    let g =
        huizhen::auth::Grants { can_publish: true, can_subscribe: true, can_publish_data: true, ..Default::default() };
    let room = huizhen::ids::ConsultationId(room.into());
    srv.state.keys.room(who, who, &room, g, 300, jiff::Timestamp::now()).unwrap().0
}

fn cam_and_mic(who: &str) -> Vec<Synth> {
    vec![Synth::video("cam", &format!("{who}/cam")), Synth::audio("mic", &format!("{who}/mic"))]
}

/// Placement: `/join` on any of three nodes names one home for the room, also when a hundred
/// calls race; the members meet there and see each other; a socket that reaches another node
/// is turned away with the home's address, and the other nodes hold nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_give_a_room_one_home_where_its_members_meet() {
    let redis = RedisServer::start().unwrap();
    let nodes = three_nodes(&redis.url()).await;
    let apis: Vec<_> = nodes.iter().map(|n| n.api()).collect();
    let doctor = apis[0].login("doctor-east").await;
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "emergency", "summary": "s" });
    let id = apis[0].post("/v1/consultations", &doctor, body).await.ok()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/consultations/{id}/join");

    // A hundred /join calls at once, spread over the three nodes: one home.
    let calls = (0..100).map(|i| {
        let (api, doctor, path) = (apis[i % 3].clone(), doctor.clone(), path.clone());
        async move {
            let started = Instant::now();
            let r = api.post(&path, &doctor, json!({})).await.ok();
            (r, started.elapsed())
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let homes: std::collections::BTreeSet<String> =
        answers.iter().map(|(a, _)| a["node"]["url"].as_str().unwrap().to_owned()).collect();
    assert_eq!(homes.len(), 1, "one home for the room: {homes:?}");
    let home_url = homes.into_iter().next().unwrap();
    let mut took: Vec<Duration> = answers.iter().map(|(_, t)| *t).collect();
    took.sort();
    eprintln!("placement: 100 racing /join calls, p50 {:?}, p95 {:?}", took[49], took[94]);
    let home = nodes.iter().position(|n| home_url == format!("http://{}", n.addr)).unwrap();
    let answer = &answers[0].0;
    assert_eq!(answer["signaling_url"], format!("ws://{}/v1/rtc", nodes[home].addr));

    // A socket that reaches another node: 421 wrong_node, naming the home.
    let other = (home + 1) % 3;
    let token = answer["token"].as_str().unwrap();
    match tokio_tungstenite::connect_async(nodes[other].ws_url(token)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 421);
            let body: serde_json::Value = serde_json::from_slice(r.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(
                (body["code"].as_str(), body["details"]["node_url"].as_str()),
                (Some("wrong_node"), Some(home_url.as_str()))
            );
        }
        other => panic!("a socket on the wrong node was let in: {:?}", other.map(|_| ())),
    }

    // The doctor and a second member (a token from another node: the nodes share the secret)
    // meet on the home and get each other's media.
    let signaling = answer["signaling_url"].as_str().unwrap();
    let alice = MediaPeer::join(&format!("{signaling}?token={token}"), cam_and_mic("doctor")).await;
    let bob =
        MediaPeer::join(&nodes[home].ws_url(&room_token(&nodes[other], &id, "visitor")), cam_and_mic("visitor")).await;
    eventually("both receive the other's camera and microphone", WAIT, || async {
        ["visitor/cam", "visitor/mic"].iter().all(|t| alice.packets_tagged(t) >= 30)
            && ["doctor/cam", "doctor/mic"].iter().all(|t| bob.packets_tagged(t) >= 30)
    })
    .await;
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n.state.hub.room_count(), usize::from(i == home), "node {i} (home {home})");
    }
    alice.close().await;
    bob.close().await;
    for n in nodes {
        n.stop().await;
    }
}

/// Failure: three `huizhen` processes on one Redis; the room's home is killed (SIGKILL). Once
/// it misses a heartbeat (and takes no connection) or its lease runs out, `/join` on a
/// surviving node names a new home, and the two members, who
/// come back as the web client does (`/join` again, then the socket it names), get each other's
/// media there. Prints the time from the kill to media flowing again for both.
/// `NODE_KILLS=10 cargo test -p huizhen-tests --release --test nodes killed -- --nocapture`
/// repeats it (the killed node comes back each time) for the figures in docs/performance.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_home_node_hands_its_room_to_another() {
    let redis = RedisServer::start().unwrap();
    let nodes = Nodes::new(&redis);
    let start = |i: usize, demo: bool| nodes.start(i, demo);
    let ports = nodes.ports.clone();
    let mut procs: Vec<Option<Process>> = vec![Some(start(0, true)), Some(start(1, false)), Some(start(2, false))];
    let api = |i: usize| nodes.api(i);
    let doctor = api(0).login("doctor-east").await;
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "emergency", "summary": "s" });
    let id = api(0).post("/v1/consultations", &doctor, body).await.ok()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/consultations/{id}/join");
    let meet = |via: usize| meet(api(via), &doctor, &id);
    let index_of = |url: &str| ports.iter().position(|p| url == format!("http://127.0.0.1:{p}")).unwrap();

    let kills: usize = std::env::var("NODE_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut took = Vec::new();
    let (mut home, mut a, mut b) = meet(0).await;
    for round in 0..kills {
        let dead = index_of(&home);
        let killed_at = Instant::now();
        procs[dead].as_mut().unwrap().kill9();
        let alive = (dead + 1) % 3;
        // What the web client does after its socket drops: /join again until it names a live
        // home (it backs off between tries; a 503 or the dead home means try again).
        eventually("/join names a new home once the dead node's lease runs out", Duration::from_secs(30), || async {
            let r = api(alive).send("POST", &path, Some(&doctor), Some(json!({}))).await;
            r.status == 200 && r.body["node"]["url"].as_str().is_some_and(|u| index_of(u) != dead)
        })
        .await;
        a.close().await;
        b.close().await;
        let (new_home, na, nb) = meet(alive).await;
        let elapsed = killed_at.elapsed();
        eprintln!("round {round}: node {dead} killed, media again on node {} after {elapsed:?}", index_of(&new_home));
        took.push(elapsed);
        // The record is intact on the shared store, seen from the new home.
        let c = api(index_of(&new_home)).get(&format!("/v1/consultations/{id}"), &doctor).await.ok();
        assert_eq!(c["status"], "live");
        (home, a, b) = (new_home, na, nb);
        // The dead node comes back (an empty node now) for the next round.
        procs[dead] = None;
        procs[dead] = Some(start(dead, false));
    }
    took.sort();
    eprintln!(
        "kill to media again over {} kills: p50 {:?}, p95 {:?}, max {:?}",
        took.len(),
        took[took.len() / 2],
        took[(took.len() * 95 / 100).min(took.len() - 1)],
        took[took.len() - 1]
    );
    a.close().await;
    b.close().await;
}

/// A required recording over a node's death (issue 16): it starts on the room's home; the home
/// is killed, the members meet on the new home and the recording starts again there; the dead
/// node comes back (its part finalised by start-up recovery). Then a node that holds neither
/// part lists both, in the order they were made, and serves each one's files: streamed from the
/// holder, or as a link pointing there. With a holder down, the list names it and its files
/// answer 503 `recording_node_unreachable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_recording_restarts_on_the_new_home_and_any_node_lists_and_serves_both_parts() {
    let redis = RedisServer::start().unwrap();
    let nodes = Nodes::new(&redis);
    let mut procs: Vec<Option<Process>> =
        vec![Some(nodes.start(0, true)), Some(nodes.start(1, false)), Some(nodes.start(2, false))];
    let api = |i: usize| nodes.api(i);
    let index_of = |url: &str| (0..3).find(|i| nodes.url(*i) == url).unwrap();
    let doctor = api(0).login("doctor-east").await;
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "emergency", "summary": "s",
                       "recording": "required" });
    let id = api(0).post("/v1/consultations", &doctor, body).await.ok()["id"].as_str().unwrap().to_owned();
    let recording_of = |p: &MediaPeer| {
        p.snapshot(|s| {
            s.messages
                .iter()
                .rev()
                .find(|m| m["type"] == "recording" && m["active"] == true)
                .map(|m| m["recording"].clone())
        })
    };

    let (home, a, b) = meet(api(0), &doctor, &id).await;
    eventually("the required recording starts on the home", WAIT, || async { recording_of(&a).is_some() }).await;
    let first = recording_of(&a).unwrap();
    let dead = index_of(&home);
    procs[dead].as_mut().unwrap().kill9();
    let alive = (dead + 1) % 3;
    eventually("/join names a new home", Duration::from_secs(30), || async {
        let r = api(alive).send("POST", &format!("/v1/consultations/{id}/join"), Some(&doctor), Some(json!({}))).await;
        r.status == 200 && r.body["node"]["url"].as_str().is_some_and(|u| index_of(u) != dead)
    })
    .await;
    a.close().await;
    b.close().await;
    let (new_home, a, b) = meet(api(alive), &doctor, &id).await;
    let second_home = index_of(&new_home);
    eventually("the required recording starts again on the new home", WAIT, || async {
        recording_of(&a).is_some_and(|r| r != first)
    })
    .await;
    let second = recording_of(&a).unwrap();
    // The doctor ends the consultation (through a node that is not the home): the recording
    // ends with the room and is finalised.
    let bystander = 3 - dead - second_home;
    api(bystander).post(&format!("/v1/consultations/{id}/end"), &doctor, json!({})).await.ok();
    a.close().await;
    b.close().await;
    // The dead node comes back and recovers its part.
    procs[dead] = Some(nodes.start(dead, false));
    let list = format!("/v1/consultations/{id}/recordings");
    let complete = |v: &serde_json::Value| {
        v["items"].as_array().is_some_and(|i| i.len() == 2 && i.iter().all(|r| r["manifest"]["files"][0].is_object()))
    };
    let listed = listed_when(&api(bystander), &list, &doctor, Duration::from_secs(30), complete).await;
    assert_eq!(listed["unreachable"], json!([]));
    let items = listed["items"].as_array().unwrap();
    assert_eq!((&items[0]["id"], &items[1]["id"]), (&first, &second), "in the order they were made: {listed}");
    // The node that came back (a new process) lists its own part once, not again as a node
    // it asks.
    let again = api(dead).get(&list, &doctor).await.ok();
    assert_eq!(again["items"].as_array().map(Vec::len), Some(2), "{again}");
    assert_eq!(again["unreachable"], json!([]));
    let at = |i: usize| items[i]["started_at"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert!(at(0) < at(1));
    assert_ne!(items[0]["node"], items[1]["node"], "each part names the node that holds it");

    // Each part's first file, through the bystander, is the file its holder serves.
    let http = reqwest::Client::new();
    let fetch = |url: String| {
        let (http, doctor) = (http.clone(), doctor.clone());
        async move {
            let r = http.get(url).bearer_auth(doctor).send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap())
        }
    };
    for (item, holder) in items.iter().zip([dead, second_home]) {
        let name = item["manifest"]["files"][0]["name"].as_str().unwrap();
        let file = format!("/v1/consultations/{id}/recordings/{}/files/{name}", item["id"].as_str().unwrap());
        let direct = fetch(format!("{}{file}", nodes.url(holder))).await;
        let through = fetch(format!("{}{file}", nodes.url(bystander))).await;
        assert_eq!(direct.0, 200);
        assert_eq!(through, direct, "the bystander streams the holder's file");
        assert_eq!(through.1.len() as u64, item["manifest"]["files"][0]["bytes"].as_u64().unwrap());
        // A link asked of the bystander points at the holder, and works without a header.
        let link = api(bystander).post(&format!("{file}/link"), &doctor, json!({})).await.ok();
        let url = link["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{}/v1/recording-links/", nodes.url(holder))), "{link}");
        let got = reqwest::get(url).await.unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(got.bytes().await.unwrap(), direct.1);
    }
    // Another doctor is refused by the bystander as by the holder.
    let south = api(0).login("doctor-south").await;
    api(bystander).get(&list, &south).await.expect(403, "not_participant");

    // The first part's holder dies again: listed from the bystander, only the second part, and
    // the dead holder named; its file answers 503.
    procs[dead].as_mut().unwrap().kill9();
    let listed = api(bystander).get(&list, &doctor).await.ok();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0]["id"], second);
    assert_eq!(listed["unreachable"].as_array().unwrap().len(), 1, "{listed}");
    let name = items[0]["manifest"]["files"][0]["name"].as_str().unwrap();
    let file = format!("/v1/consultations/{id}/recordings/{}/files/{name}", first.as_str().unwrap());
    api(bystander).get(&file, &doctor).await.expect(503, "recording_node_unreachable");
    drop(procs);
}

/// A node taken out of service hands its recordings to another (`huizhen adopt-recordings`):
/// copied, checked, and from then on listed and served by the new holder from any node, with
/// the old node no longer named; a second run changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_taken_out_of_service_hands_its_recordings_to_another() {
    let redis = RedisServer::start().unwrap();
    let nodes = Nodes::new(&redis);
    let mut procs: Vec<Option<Process>> = vec![Some(nodes.start(0, true)), Some(nodes.start(1, false))];
    let api = |i: usize| nodes.api(i);
    let doctor = api(0).login("doctor-east").await;
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "emergency", "summary": "s",
                       "recording": "required" });
    let id = api(0).post("/v1/consultations", &doctor, body).await.ok()["id"].as_str().unwrap().to_owned();
    let (home, a, b) = meet(api(0), &doctor, &id).await;
    let old = (0..2).find(|i| nodes.url(*i) == home).unwrap();
    let heir = 1 - old;
    eventually("the required recording starts", WAIT, || async {
        a.snapshot(|s| s.messages.iter().any(|m| m["type"] == "recording" && m["active"] == true))
    })
    .await;
    api(heir).post(&format!("/v1/consultations/{id}/end"), &doctor, json!({})).await.ok();
    a.close().await;
    b.close().await;
    let list = format!("/v1/consultations/{id}/recordings");
    let finished =
        listed_when(&api(heir), &list, &doctor, WAIT, |v| v["items"][0]["manifest"]["files"][0].is_object()).await;
    assert_eq!(finished["items"][0]["node"], json!(nodes.url(old)));

    // The old node stops for good; its recordings directory is brought to the heir.
    procs[old].take().unwrap().kill9();
    let listed = api(heir).get(&list, &doctor).await.ok();
    assert_eq!(listed["unreachable"], json!([nodes.url(old)]), "{listed}");
    let from = nodes.dirs[old].path().join("recordings");
    // Typed with a trailing `/`, as an operator may: the same node.
    let retired = format!("{}/", nodes.url(old));
    let adopt = ["adopt-recordings", "--from", from.to_str().unwrap(), "--retired-url", &retired];
    let (ok, out) = nodes.command(heir, &adopt);
    assert!(ok && out.contains("moved") && out.contains(&id), "{out}");

    // Listed by the heir as its own, the old node not named; the file is the one recorded.
    let listed = api(heir).get(&list, &doctor).await.ok();
    assert_eq!(listed["unreachable"], json!([]), "{listed}");
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["id"], finished["items"][0]["id"]);
    assert_eq!(items[0]["node"], json!(nodes.url(heir)));
    let entry = &items[0]["manifest"]["files"][0];
    let file = format!(
        "{}{list}/{}/files/{}",
        nodes.url(heir),
        items[0]["id"].as_str().unwrap(),
        entry["name"].as_str().unwrap()
    );
    let got = reqwest::Client::new().get(file).bearer_auth(&doctor).send().await.unwrap();
    assert_eq!(got.status(), 200);
    let bytes = got.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, entry["bytes"].as_u64().unwrap());
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sha, entry["sha256"].as_str().unwrap());

    // A second run: nothing copied again.
    let (ok, out) = nodes.command(heir, &adopt);
    assert!(ok && out.contains("already here") && !out.contains("moved"), "{out}");
    drop(procs);
}

/// Drain (a rolling upgrade): the drained node answers /readyz with 503 `draining`, takes no
/// new room, and at its deadline moves the room it holds: the members are told, `/join` names
/// another node, and they meet there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_takes_no_new_room_and_moves_its_own_at_the_deadline() {
    let redis = RedisServer::start().unwrap();
    let nodes = three_nodes_draining_in(&redis.url(), 2).await;
    let apis: Vec<_> = nodes.iter().map(|n| n.api()).collect();
    let doctor = apis[0].login("doctor-east").await;
    let emergency = || async {
        let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "emergency", "summary": "s" });
        apis[0].post("/v1/consultations", &doctor, body).await.ok()["id"].as_str().unwrap().to_owned()
    };
    let home_of = |answer: &serde_json::Value| {
        nodes.iter().position(|n| answer["node"]["url"] == format!("http://{}", n.addr).as_str()).unwrap()
    };
    let id = emergency().await;
    let answer = apis[1].post(&format!("/v1/consultations/{id}/join"), &doctor, json!({})).await.ok();
    let home = home_of(&answer);
    let signaling = answer["signaling_url"].as_str().unwrap().to_owned();
    let alice =
        MediaPeer::join(&format!("{signaling}?token={}", answer["token"].as_str().unwrap()), cam_and_mic("doctor"))
            .await;
    let bob = MediaPeer::join(
        &format!("{signaling}?token={}", room_token(&nodes[home], &id, "visitor")),
        cam_and_mic("visitor"),
    )
    .await;
    eventually("the members meet on the home", WAIT, || async {
        alice.packets_tagged("visitor/cam") >= 30 && bob.packets_tagged("doctor/cam") >= 30
    })
    .await;

    huizhen::rtc::router::drain(
        nodes[home].state.cluster.clone().unwrap(),
        nodes[home].state.hub.clone(),
        Duration::from_secs(2),
    );
    let ready = apis[home].send("GET", "/readyz", None, None).await.expect(503, "draining");
    assert_eq!(ready["details"]["rooms"], 1);
    for (i, api) in apis.iter().enumerate().filter(|(i, _)| *i != home) {
        assert_eq!(api.send("GET", "/readyz", None, None).await.status, 200, "node {i}");
    }
    // New rooms, placed through the drained node's own API too, go elsewhere.
    for _ in 0..6 {
        let other = emergency().await;
        let a = apis[home].post(&format!("/v1/consultations/{other}/join"), &doctor, json!({})).await.ok();
        assert_ne!(home_of(&a), home, "a new room was placed on the draining node");
    }

    // At the deadline the room moves: the members are told, and /join names another node.
    eventually("both members are told the room moved", WAIT, || async {
        [&alice, &bob].iter().all(|p| {
            p.snapshot(|s| {
                s.messages
                    .iter()
                    .any(|m| m["type"] == "closing" && m["reason"].as_str().unwrap_or("").contains("moved"))
            })
        })
    })
    .await;
    let again = apis[home].post(&format!("/v1/consultations/{id}/join"), &doctor, json!({})).await.ok();
    let new_home = home_of(&again);
    assert_ne!(new_home, home);
    alice.close().await;
    bob.close().await;
    let signaling = again["signaling_url"].as_str().unwrap().to_owned();
    let alice =
        MediaPeer::join(&format!("{signaling}?token={}", again["token"].as_str().unwrap()), cam_and_mic("doctor"))
            .await;
    let bob = MediaPeer::join(
        &format!("{signaling}?token={}", room_token(&nodes[home], &id, "visitor")),
        cam_and_mic("visitor"),
    )
    .await;
    eventually("the members meet again on the new home", WAIT, || async {
        alice.packets_tagged("visitor/cam") >= 30 && bob.packets_tagged("doctor/cam") >= 30
    })
    .await;
    eventually("the drained node holds nothing", WAIT, || async { nodes[home].state.hub.room_count() == 0 }).await;
    alice.close().await;
    bob.close().await;
    for n in nodes {
        n.stop().await;
    }
}

/// Redis restarted under a live room: the room keeps running where it is (media flows on while
/// Redis is away, and `/join` answers 503 meanwhile), and once Redis is back every node names
/// the same home: nothing is placed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_outlives_a_redis_restart_on_its_home() {
    let mut redis = RedisServer::start_persistent().unwrap();
    let nodes = three_nodes(&redis.url()).await;
    let apis: Vec<_> = nodes.iter().map(|n| n.api()).collect();
    let doctor = apis[0].login("doctor-east").await;
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "emergency", "summary": "s" });
    let id = apis[0].post("/v1/consultations", &doctor, body).await.ok()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/consultations/{id}/join");
    let answer = apis[0].post(&path, &doctor, json!({})).await.ok();
    let home_url = answer["node"]["url"].as_str().unwrap().to_owned();
    let home = nodes.iter().position(|n| home_url == format!("http://{}", n.addr)).unwrap();
    let signaling = answer["signaling_url"].as_str().unwrap().to_owned();
    let alice =
        MediaPeer::join(&format!("{signaling}?token={}", answer["token"].as_str().unwrap()), cam_and_mic("doctor"))
            .await;
    let bob = MediaPeer::join(
        &format!("{signaling}?token={}", room_token(&nodes[home], &id, "visitor")),
        cam_and_mic("visitor"),
    )
    .await;
    eventually("the members meet on the home", WAIT, || async {
        alice.packets_tagged("visitor/cam") >= 30 && bob.packets_tagged("doctor/cam") >= 30
    })
    .await;

    redis.stop();
    let other = (home + 1) % 3;
    let r = apis[other].send("POST", &path, Some(&doctor), Some(json!({}))).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let before = (alice.packets_tagged("visitor/cam"), bob.packets_tagged("doctor/cam"));
    eventually("media flows on while Redis is away", WAIT, || async {
        alice.packets_tagged("visitor/cam") >= before.0 + 100 && bob.packets_tagged("doctor/cam") >= before.1 + 100
    })
    .await;
    redis.restart().unwrap();

    eventually("/join works again on every node", WAIT, || async {
        for api in &apis {
            if api.send("POST", &path, Some(&doctor), Some(json!({}))).await.status != 200 {
                return false;
            }
        }
        true
    })
    .await;
    for (i, api) in apis.iter().enumerate() {
        let a = api.post(&path, &doctor, json!({})).await.ok();
        assert_eq!(a["node"]["url"], home_url.as_str(), "node {i} names another home after Redis came back");
    }
    for p in [&alice, &bob] {
        p.snapshot(|s| assert!(!s.messages.iter().any(|m| m["type"] == "closing"), "a member was moved"));
    }
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n.state.hub.room_count(), usize::from(i == home), "node {i}");
    }
    alice.close().await;
    bob.close().await;
    for n in nodes {
        n.stop().await;
    }
}
