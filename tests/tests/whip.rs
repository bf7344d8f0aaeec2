//! Issue 18: an operating room's encoder publishes into a live teaching consultation by WHIP
//! (RFC 9725). A real webrtc-rs peer plays the encoder (the test clip's VP8 and Opus); the
//! surgeon (host) watches through the signaling socket like a browser; the recorder records
//! it; every error the RFC names has its status and our code; withdrawing the credential ends
//! the encoder's session at once.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use huizhen_tests::media::{MediaPeer, Synth, WhepPeer, WhipPeer};
use huizhen_tests::{Api, TestServer, eventually};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const LABEL: &str = "手术室 3 腔镜";

struct Answer {
    status: u16,
    location: Option<String>,
    content_type: Option<String>,
    links: Vec<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    #[track_caller]
    fn expect(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.json()["code"].as_str().unwrap_or("")), (status, code), "{}", self.body);
    }
}

async fn call(srv: &TestServer, method: &str, path: &str, token: Option<&str>, ctype: &str, body: &str) -> Answer {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), srv.url(path))
        .header("content-type", ctype)
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let header = |h: &str| r.headers().get(h).map(|v| v.to_str().unwrap().to_owned());
    let (location, content_type) = (header("location"), header("content-type"));
    let links = r.headers().get_all("link").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    Answer { status: r.status().as_u16(), location, content_type, links, body: r.text().await.unwrap() }
}

/// A teaching consultation in 5 minutes with the surgeon as host; returns its id and the
/// surgeon's session.
async fn teaching(api: &Api) -> (String, String) {
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let surgeon_id = api.user_id(&coord, "surgeon").await;
    let body = json!({ "kind": "teaching", "specialty": "general_surgery", "urgency": "routine", "summary": "s" });
    let t = api.post("/v1/consultations", &doctor, body).await.ok();
    let id = t["id"].as_str().unwrap().to_owned();
    let start = (Timestamp::now() + SignedDuration::from_mins(5)).to_string();
    let accept =
        json!({ "specialists": [surgeon_id], "start": start, "duration_minutes": 120, "recording": "allowed" });
    api.post(&format!("/v1/consultations/{id}/accept"), &coord, accept).await.ok();
    (id, api.login("surgeon").await)
}

async fn credential(api: &Api, id: &str, host: &str, label: &str) -> (String, String) {
    let made = api.post(&format!("/v1/consultations/{id}/encoders"), host, json!({ "label": label })).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let made = made.ok();
    assert_eq!(made["path"], format!("/v1/consultations/{id}/whip"));
    assert_eq!(made["encoder"]["label"], label);
    (made["encoder"]["id"].as_str().unwrap().to_owned(), made["token"].as_str().unwrap().to_owned())
}

/// A live teaching session for players to watch: the surgeon in the room (a peer that
/// publishes nothing), an encoder's credential, and the requesting doctor's room token.
struct Live {
    id: String,
    encoder: String,
    token: String,
    host: MediaPeer,
    host_token: String,
    doctor: String,
    viewer: String,
    whep: String,
}

async fn live(srv: &TestServer, api: &Api) -> Live {
    let (id, surgeon) = teaching(api).await;
    let (encoder, token) = credential(api, &id, &surgeon, LABEL).await;
    let room = api.post(&format!("/v1/consultations/{id}/join"), &surgeon, json!({})).await.ok();
    let host_token = room["token"].as_str().unwrap().to_owned();
    let host = MediaPeer::join(&srv.ws_url(&host_token), vec![]).await;
    eventually("the consultation is live", WAIT, || async {
        api.get(&format!("/v1/consultations/{id}"), &surgeon).await.body["status"] == "live"
    })
    .await;
    let doctor = api.login("doctor-east").await;
    let viewer = api.post(&format!("/v1/consultations/{id}/join"), &doctor, json!({})).await.ok();
    let viewer = viewer["token"].as_str().unwrap().to_owned();
    let whep = format!("/v1/consultations/{id}/whep");
    Live { id, encoder, token, host, host_token, doctor, viewer, whep }
}

fn encoder_tracks() -> Vec<Synth> {
    vec![Synth::clip_video("cam", "or3/cam"), Synth::clip_audio("mic", "or3/mic")]
}

fn said(p: &MediaPeer, kind: &str) -> Vec<Value> {
    p.snapshot(|s| s.messages.iter().filter(|m| m["type"] == kind).cloned().collect())
}

fn manifest(dir: &Path) -> Option<Value> {
    std::fs::read(dir.join("manifest.json")).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoder_publishes_by_whip_is_watched_recorded_and_stopped_by_revoking() {
    let srv = TestServer::start_with(|c| {
        c.whip.max_encoders = 1;
        c.media.stun_urls = vec!["stun:turn.example-hospital.cn:3478".into()];
        c.media.turn_urls = vec!["turn:turn.example-hospital.cn:3478?transport=udp".into()];
        c.media.turn_secret = "turn-secret".into();
    })
    .await;
    let api = srv.api();
    let (id, surgeon) = teaching(&api).await;
    let whip = format!("/v1/consultations/{id}/whip");

    // Only a host makes credentials: the doctor who asked for the session is not one.
    let doctor = api.login("doctor-east").await;
    api.post(&format!("/v1/consultations/{id}/encoders"), &doctor, json!({ "label": "x" }))
        .await
        .expect(403, "forbidden_role");
    api.post(&format!("/v1/consultations/{id}/encoders"), &surgeon, json!({ "label": "" }))
        .await
        .expect(422, "text_required");
    let (encoder, token) = credential(&api, &id, &surgeon, LABEL).await;
    let again = api.get(&format!("/v1/consultations/{id}/encoders/{encoder}"), &surgeon).await.ok();
    assert_eq!(again["encoder"]["id"], encoder.as_str());

    // Not yet live: the encoder is told to wait for the host.
    let peer = WhipPeer::new(&encoder_tracks()).await;
    call(&srv, "POST", &whip, Some(&token), "application/sdp", &peer.offer).await.expect(409, "consultation_not_live");

    // The surgeon joins (which starts it) and watches.
    let room = api.post(&format!("/v1/consultations/{id}/join"), &surgeon, json!({})).await.ok();
    let host = MediaPeer::join(&srv.ws_url(room["token"].as_str().unwrap()), vec![]).await;
    eventually("the consultation is live", WAIT, || async {
        api.get(&format!("/v1/consultations/{id}"), &surgeon).await.body["status"] == "live"
    })
    .await;

    // RFC 9725's errors, each with its status and code.
    call(&srv, "POST", &whip, Some(&token), "application/json", "{}").await.expect(415, "unsupported_media_type");
    call(&srv, "POST", &whip, Some(&token), "application/sdp", "hello").await.expect(400, "invalid_sdp");
    call(&srv, "POST", &whip, None, "application/sdp", &peer.offer).await.expect(401, "token_missing");
    call(&srv, "POST", &whip, Some("not.a.token"), "application/sdp", &peer.offer).await.expect(401, "invalid_token");
    let body = json!({ "kind": "teaching", "specialty": "general_surgery", "urgency": "routine", "summary": "s" });
    let other = api.post("/v1/consultations", &doctor, body).await.ok()["id"].as_str().unwrap().to_owned();
    let elsewhere = format!("/v1/consultations/{other}/whip");
    call(&srv, "POST", &elsewhere, Some(&token), "application/sdp", &peer.offer).await.expect(401, "invalid_token");
    let past = Timestamp::now() - SignedDuration::from_mins(10);
    let cid = huizhen::ids::ConsultationId(id.clone());
    let expired = srv.state.keys.guest(&encoder, &cid, huizhen::auth::TokenType::Encoder, past, past).unwrap();
    call(&srv, "POST", &whip, Some(&expired), "application/sdp", &peer.offer).await.expect(401, "token_expired");

    // The offer is answered: 201, the answer as SDP, the session's Location.
    let answer = call(&srv, "POST", &whip, Some(&token), "application/sdp", &peer.offer).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.content_type.as_deref(), Some("application/sdp"));
    assert!(answer.body.starts_with("v=0"), "{}", answer.body);
    let location = answer.location.clone().unwrap();
    assert!(location.starts_with("/v1/whip/"), "{location}");
    // The ICE servers /join gives, as Link headers (RFC 9725 §4.6): TURN with credentials.
    assert!(
        answer.links.iter().any(|l| l == "<stun:turn.example-hospital.cn:3478>; rel=\"ice-server\""),
        "{:?}",
        answer.links
    );
    let turn = answer.links.iter().find(|l| l.starts_with("<turn:")).expect("a TURN link");
    assert!(
        turn.contains("rel=\"ice-server\"")
            && turn.contains("username=\"")
            && turn.contains("credential-type=\"password\""),
        "{turn}"
    );
    assert!(turn.contains(&format!("encoder-{encoder}")), "the TURN username names the encoder: {turn}");
    peer.accept(&answer.body).await;
    eventually("the encoder connects", WAIT, || async { peer.connected() }).await;

    // The surgeon sees it by its label and gets its picture and sound (clip payloads carry no
    // tags: tracks are known by the ids the server gives them, `<participant>/<track>`).
    let (cam, mic) = (format!("encoder-{encoder}/cam"), format!("encoder-{encoder}/mic"));
    eventually("the host receives the encoder's video and audio", WAIT, || async {
        host.packets_of(&cam) >= 60 && host.packets_of(&mic) >= 50
    })
    .await;
    let joined = said(&host, "participant_joined");
    let arrival = joined.iter().find(|m| m["participant"]["name"] == LABEL).expect("the encoder's arrival");
    assert_eq!(arrival["participant"]["id"], format!("encoder-{encoder}"));
    assert_eq!(arrival["participant"]["host"], false);
    assert_eq!(arrival["participant"]["encoder"], true);

    // Trickle: candidates are taken (204); a restart is not supported (422); the fragment
    // type is required (415); someone else's session is not found.
    let frag = "a=ice-ufrag:x\r\na=ice-pwd:y\r\n";
    let candidate = peer.candidates.lock().unwrap().first().cloned();
    if let Some(c) = candidate {
        let body = format!("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na={}\r\n", c.candidate);
        let r = call(&srv, "PATCH", &location, Some(&token), "application/trickle-ice-sdpfrag", &body).await;
        assert_eq!(r.status, 204, "{}", r.body);
    }
    call(&srv, "PATCH", &location, Some(&token), "application/trickle-ice-sdpfrag", frag)
        .await
        .expect(422, "ice_restart_unsupported");
    call(&srv, "PATCH", &location, Some(&token), "application/sdp", "a=end-of-candidates\r\n")
        .await
        .expect(415, "unsupported_media_type");
    call(&srv, "PATCH", "/v1/whip/nosuchsession", Some(&token), "application/trickle-ice-sdpfrag", "")
        .await
        .expect(404, "whip_session_not_found");

    // A second encoder is one too many here (`whip.max_encoders = 1`).
    let (_, second) = credential(&api, &id, &surgeon, "示教室 PC").await;
    let peer2 = WhipPeer::new(&encoder_tracks()).await;
    call(&srv, "POST", &whip, Some(&second), "application/sdp", &peer2.offer).await.expect(409, "too_many_encoders");
    peer2.close().await;

    // The recorder records the encoder like any publisher.
    host.send(json!({ "type": "start_recording", "id": "rec" }));
    eventually("the recording starts", WAIT, || async { said(&host, "recording").iter().any(|m| m["active"] == true) })
        .await;
    let rec = said(&host, "recording").iter().rev().find(|m| m["active"] == true).unwrap()["recording"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = host.packets_of(&cam);
    eventually("three more seconds of the encoder", WAIT, || async { host.packets_of(&cam) >= before + 90 }).await;
    host.send(json!({ "type": "stop_recording", "id": "rec-stop" }));
    let dir = srv.state.config.data_dir.join("recordings").join(&id).join(&rec);
    eventually("the recording is finalised", WAIT, || async { manifest(&dir).is_some() }).await;
    let m = manifest(&dir).unwrap();
    let identity = format!("encoder-{encoder}");
    assert!(m["participants"].as_array().unwrap().iter().any(|p| *p == identity.as_str()), "{m}");
    let file = m["files"].as_array().unwrap().iter().find(|f| f["name"] == format!("{identity}.webm")).cloned();
    let file = file.unwrap_or_else(|| panic!("no file of the encoder: {m}"));
    assert!(file["bytes"].as_u64().unwrap() > 10_000, "{file}");
    assert!(file["tracks"].as_array().unwrap().iter().any(|t| t["kind"] == "video"), "{file}");

    // Withdrawn: the encoder leaves the room at once, and its token opens nothing.
    api.post(&format!("/v1/consultations/{id}/encoders/{encoder}/revoke"), &surgeon, json!({})).await.ok();
    eventually("the host is told the encoder left", WAIT, || async {
        said(&host, "participant_left").iter().any(|m| m["participant_id"] == identity.as_str())
    })
    .await;
    eventually("its session is gone", WAIT, || async {
        srv.state.whip.find(location.trim_start_matches("/v1/whip/")).is_none()
    })
    .await;
    call(&srv, "PATCH", &location, Some(&token), "application/trickle-ice-sdpfrag", "")
        .await
        .expect(403, "encoder_revoked");
    call(&srv, "POST", &whip, Some(&token), "application/sdp", &peer.offer).await.expect(403, "encoder_revoked");
    peer.close().await;

    // Another encoder publishes and says DELETE when it stops: it leaves the room.
    let peer3 = WhipPeer::new(&encoder_tracks()).await;
    let answer = call(&srv, "POST", &whip, Some(&second), "application/sdp", &peer3.offer).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let location = answer.location.unwrap();
    peer3.accept(&answer.body).await;
    eventually("the second encoder connects", WAIT, || async { peer3.connected() }).await;
    call(&srv, "DELETE", &location, Some(&token), "application/sdp", "").await.expect(403, "encoder_revoked");
    let r = call(&srv, "DELETE", &location, Some(&second), "application/sdp", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("the second encoder left", WAIT, || async {
        said(&host, "participant_left")
            .iter()
            .filter(|m| m["participant_id"].as_str().unwrap_or("").starts_with("encoder-"))
            .count()
            == 2
    })
    .await;
    call(&srv, "PATCH", &location, Some(&second), "application/trickle-ice-sdpfrag", "")
        .await
        .expect(404, "whip_session_not_found");
    peer3.close().await;

    // Every step is audited by id; the label never is.
    let admin = api.login_as("admin", &srv.admin_password).await;
    let wanted = ["consultation.encoder_create", "consultation.encoder_publish", "consultation.encoder_revoke"];
    let audit_path = format!("/v1/audit?consultation={id}&limit=200");
    eventually("the steps are in the audit trail", WAIT, || async {
        let audit = api.get(&audit_path, &admin).await.ok();
        let items = audit["items"].as_array().cloned().unwrap_or_default();
        wanted.iter().all(|w| items.iter().any(|e| e["action"] == *w))
    })
    .await;
    let audit = api.get(&audit_path, &admin).await.ok();
    assert!(!audit.to_string().contains(LABEL), "the label is not in the audit trail");
    host.close().await;
    srv.stop().await;
}

/// CORS only as RFC 9725 needs it for browser-based clients, and only for configured origins.
#[tokio::test]
async fn only_configured_origins_may_call_whip_from_a_web_page() {
    let srv = TestServer::start_with(|c| c.whip.allowed_origins = vec!["https://player.example.cn".into()]).await;
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, srv.url("/v1/consultations/x/whip"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let ok = preflight("https://player.example.cn").await.unwrap();
    assert!(ok.status().is_success(), "{}", ok.status());
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], "https://player.example.cn");
    let methods = h["access-control-allow-methods"].to_str().unwrap().to_ascii_uppercase();
    assert!(["POST", "PATCH", "DELETE"].iter().all(|m| methods.contains(m)), "{methods}");
    let other = preflight("https://elsewhere.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none(), "another origin is not allowed");
    // The answer to a real call says which headers a page may read (the session's Location).
    let r = reqwest::Client::new()
        .post(srv.url("/v1/consultations/x/whip"))
        .header("origin", "https://player.example.cn")
        .header("content-type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://player.example.cn");
    assert!(r.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase().contains("location"));
    srv.stop().await;
}

/// WHEP: a receive-only player (a webrtc-rs peer offering one audio and one video section, as
/// a lecture hall's player does) watches with the room token `/join` gives: the encoder's
/// picture and sound when one publishes, 409 while there is nothing to watch; its session
/// ends with `DELETE`, and by itself when what it watches stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_watches_the_encoder_by_whep() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let Live { id, encoder, token, host, host_token, doctor, viewer, whep } = live(&srv, &api).await;

    // Nothing is published yet: nothing to watch.
    let early = WhepPeer::new().await;
    call(&srv, "POST", &whep, Some(&viewer), "application/sdp", &early.offer).await.expect(409, "nothing_to_watch");
    early.close().await;

    let encoder_peer = WhipPeer::new(&encoder_tracks()).await;
    let answer = call(
        &srv,
        "POST",
        &format!("/v1/consultations/{id}/whip"),
        Some(&token),
        "application/sdp",
        &encoder_peer.offer,
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let encoder_session = answer.location.clone().unwrap();
    encoder_peer.accept(&answer.body).await;
    let (cam, mic) = (format!("encoder-{encoder}/cam"), format!("encoder-{encoder}/mic"));
    eventually("the host receives the encoder", WAIT, || async { host.packets_of(&cam) >= 30 }).await;

    // Refusals: content type, another consultation's token, no token.
    let player = WhepPeer::new().await;
    call(&srv, "POST", &whep, Some(&viewer), "text/plain", &player.offer).await.expect(415, "unsupported_media_type");
    call(&srv, "POST", &whep, None, "application/sdp", &player.offer).await.expect(401, "token_missing");
    let body = json!({ "kind": "teaching", "specialty": "general_surgery", "urgency": "routine", "summary": "s" });
    let other = api.post("/v1/consultations", &doctor, body).await.ok()["id"].as_str().unwrap().to_owned();
    call(&srv, "POST", &format!("/v1/consultations/{other}/whep"), Some(&viewer), "application/sdp", &player.offer)
        .await
        .expect(401, "invalid_token");

    // Watching: 201 with the answer, then the encoder's picture and sound.
    let answer = call(&srv, "POST", &whep, Some(&viewer), "application/sdp", &player.offer).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.content_type.as_deref(), Some("application/sdp"));
    let location = answer.location.clone().unwrap();
    assert!(location.starts_with("/v1/whep/"), "{location}");
    player.accept(&answer.body).await;
    eventually("the player receives the encoder's video and audio", WAIT, || async {
        player.packets_of(&cam) >= 60 && player.packets_of(&mic) >= 50
    })
    .await;
    // Someone else's token does not end it.
    call(&srv, "DELETE", &location, Some(&host_token), "application/sdp", "")
        .await
        .expect(404, "whep_session_not_found");
    let r = call(&srv, "DELETE", &location, Some(&viewer), "application/sdp", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    call(&srv, "PATCH", &location, Some(&viewer), "application/trickle-ice-sdpfrag", "")
        .await
        .expect(404, "whep_session_not_found");
    player.close().await;

    // A second player; the encoder stops, and the player's session ends by itself.
    let second = WhepPeer::new().await;
    let answer = call(&srv, "POST", &whep, Some(&viewer), "application/sdp", &second.offer).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let session = answer.location.unwrap().trim_start_matches("/v1/whep/").to_owned();
    second.accept(&answer.body).await;
    eventually("the second player receives", WAIT, || async { second.packets_of(&cam) >= 30 }).await;
    let r = call(&srv, "DELETE", &encoder_session, Some(&token), "application/sdp", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("the player's session ends with what it watched", WAIT, || async {
        srv.state.whip.find(&session).is_none()
    })
    .await;
    second.close().await;
    encoder_peer.close().await;
    host.close().await;
    srv.stop().await;
}

/// A player that asks the moment its source starts, when the sound is here and the picture
/// not yet (a camera's first frame comes after the microphone's first packets), is answered
/// with both once the picture is here: it cannot renegotiate, so an answer with the sound alone
/// would be its whole session. A picture that never comes is waited for two seconds at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_that_asks_before_the_first_frame_waits_for_it() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let srv = TestServer::start().await;
    let api = srv.api();
    let Live { id, encoder, token, host, viewer, whep, .. } = live(&srv, &api).await;

    // The encoder's camera sends nothing until the test lets it.
    let held = Arc::new(AtomicBool::new(true));
    let tracks = vec![
        Synth { held: Some(held.clone()), ..Synth::clip_video("cam", "or3/cam") },
        Synth::clip_audio("mic", "or3/mic"),
    ];
    let encoder_peer = WhipPeer::new(&tracks).await;
    let whip = format!("/v1/consultations/{id}/whip");
    let answer = call(&srv, "POST", &whip, Some(&token), "application/sdp", &encoder_peer.offer).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    encoder_peer.accept(&answer.body).await;
    let (cam, mic) = (format!("encoder-{encoder}/cam"), format!("encoder-{encoder}/mic"));
    eventually("the host hears the encoder", WAIT, || async { host.packets_of(&mic) >= 10 }).await;
    assert_eq!(host.packets_of(&cam), 0, "the camera is held");
    let waiting = || srv.state.sfu.stats().watches_waiting.load(Relaxed);
    let sent = |sdp: &str| -> Vec<String> {
        let mut t: Vec<String> = sdp
            .lines()
            .filter_map(|l| l.strip_prefix("a=msid:"))
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
            .collect();
        t.sort();
        t
    };

    // A picture that does not come: after the wait, the sound alone (201, as before).
    let first = WhepPeer::new().await;
    let (answer, ()) = tokio::join!(call(&srv, "POST", &whep, Some(&viewer), "application/sdp", &first.offer), async {
        eventually("the first player's offer to wait", WAIT, || async { waiting() == 1 }).await;
    });
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(sent(&answer.body), vec![format!("encoder-{encoder}.mic")], "{}", answer.body);
    assert_eq!(waiting(), 0);
    let r = call(&srv, "DELETE", answer.location.as_deref().unwrap(), Some(&viewer), "application/sdp", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    first.close().await;

    // The picture comes while the player's offer waits: both.
    let player = WhepPeer::new().await;
    let (answer, ()) =
        tokio::join!(call(&srv, "POST", &whep, Some(&viewer), "application/sdp", &player.offer), async {
            eventually("the player's offer to wait", WAIT, || async { waiting() == 1 }).await;
            held.store(false, Relaxed);
        });
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(
        sent(&answer.body),
        vec![format!("encoder-{encoder}.cam"), format!("encoder-{encoder}.mic")],
        "{}",
        answer.body
    );
    assert_eq!(waiting(), 0);
    player.accept(&answer.body).await;
    eventually("the player receives the encoder's video and audio", WAIT, || async {
        player.packets_of(&cam) >= 30 && player.packets_of(&mic) >= 30
    })
    .await;
    player.close().await;
    encoder_peer.close().await;
    host.close().await;
    srv.stop().await;
}

/// The codecs an operating room's equipment sends: H.264 (hardware encoders, OBS's default)
/// and VP8 with simulcast when the encoder offers three layers, both to one watcher (whose
/// connection first negotiated H.264 only, before the subscribe m-lines offered every codec,
/// so the VP8 track could not be added to it); a watcher asking for the low layer gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoders_publish_h264_and_simulcast() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let (id, surgeon) = teaching(&api).await;
    let room = api.post(&format!("/v1/consultations/{id}/join"), &surgeon, json!({})).await.ok();
    let host = MediaPeer::join(&srv.ws_url(room["token"].as_str().unwrap()), vec![]).await;
    eventually("the consultation is live", WAIT, || async {
        api.get(&format!("/v1/consultations/{id}"), &surgeon).await.body["status"] == "live"
    })
    .await;
    let whip = format!("/v1/consultations/{id}/whip");
    let mut peers = Vec::new();
    for (label, tracks) in [
        ("腔镜塔 H.264", vec![Synth::h264_video("cam", "h264/cam")]),
        ("示教摄像机", vec![Synth::clip_simulcast("cam", "sim/cam")]),
    ] {
        let (encoder, token) = credential(&api, &id, &surgeon, label).await;
        let peer = WhipPeer::new(&tracks).await;
        let answer = call(&srv, "POST", &whip, Some(&token), "application/sdp", &peer.offer).await;
        assert_eq!(answer.status, 201, "{label}: {}", answer.body);
        peer.accept(&answer.body).await;
        peers.push((encoder, peer));
    }
    let (h264, sim) = (format!("encoder-{}/cam", peers[0].0), format!("encoder-{}/cam", peers[1].0));
    eventually("the host receives the H.264 encoder", WAIT, || async { host.packets_of(&h264) >= 60 }).await;
    eventually("the host receives the simulcast encoder", WAIT, || async { host.packets_of(&sim) >= 60 }).await;
    // The H.264 stream starts on an IDR and arrives as H.264; the simulcast one is published
    // with its layers.
    host.snapshot(|s| {
        let r = s.received.values().find(|r| r.track == h264).unwrap();
        assert!(r.keyframes >= 1, "H.264 starts on an IDR");
        let published: Vec<&serde_json::Value> =
            s.tracks_published.iter().filter(|t| t["id"] == sim.as_str()).collect();
        assert_eq!(published.len(), 1, "{:?}", s.tracks_published);
        assert_eq!(published[0]["simulcast"], true, "{}", published[0]);
        let codec = s.tracks_published.iter().find(|t| t["id"] == h264.as_str()).unwrap()["codec"].clone();
        assert_eq!(codec, "video/H264");
    });
    // The host asks for the low layer of the simulcast encoder and gets it (fewer bytes).
    host.send(json!({ "type": "set_layer", "id": "low", "track": sim, "layer": "low" }));
    eventually("the low layer is acknowledged", WAIT, || async {
        host.snapshot(|s| s.messages.iter().any(|m| m["type"] == "ack" && m["id"] == "low"))
    })
    .await;
    for (_, p) in peers {
        p.close().await;
    }
    host.close().await;
    srv.stop().await;
}
