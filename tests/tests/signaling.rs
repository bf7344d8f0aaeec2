//! The signaling WebSocket with real clients: lobby and admit, chat, presence and rejoin,
//! replacement, removal, end for all, and every limit.
#![allow(clippy::unwrap_used)]

use huizhen_tests::{Api, TestServer, Ws};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

struct Scheduled {
    id: String,
    doctor: String,
    spec: String,
}

/// A consultation scheduled to start in 10 minutes: inside the join window, not yet live.
async fn scheduled(api: &Api) -> Scheduled {
    scheduled_with_recording(api, None).await
}

/// The same, with the recording policy `recording` (the request's own when `None`).
async fn scheduled_with_recording(api: &Api, recording: Option<&str>) -> Scheduled {
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let spec = api.login("cardiologist").await;
    let cardio = api.user_id(&coord, "cardiologist").await;
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "routine", "summary": "s" });
    let c = api.post("/v1/consultations", &doctor, body).await.ok();
    let id = c["id"].as_str().unwrap().to_owned();
    let start = (Timestamp::now() + SignedDuration::from_mins(10)).to_string();
    let mut accept = json!({ "specialists": [cardio], "start": start, "duration_minutes": 30 });
    if let Some(policy) = recording {
        accept["recording"] = json!(policy);
    }
    api.post(&format!("/v1/consultations/{id}/accept"), &coord, accept).await.ok();
    Scheduled { id, doctor, spec }
}

async fn room_token(api: &Api, id: &str, session: &str) -> String {
    api.post(&format!("/v1/consultations/{id}/join"), session, json!({})).await.ok()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The requesting doctor, who came early and waited in the lobby, and the lead specialist
/// (host), who came next and admitted them.
async fn host_and_admitted_doctor(srv: &TestServer, api: &Api, c: &Scheduled) -> (Ws, Ws, Value) {
    let (mut doc, hello) = Ws::join(&srv.ws_url(&room_token(api, &c.id, &c.doctor).await)).await;
    assert_eq!(hello["state"], "lobby");
    let doc_id = hello["you"]["id"].clone();
    let (mut host, hello) = Ws::join(&srv.ws_url(&room_token(api, &c.id, &c.spec).await)).await;
    assert_eq!(names(&hello["lobby"]), [doc_id.as_str().unwrap()]);
    let r = host.request(json!({ "type": "admit", "participant": doc_id })).await;
    assert_eq!(host.answer(&r).await["type"], "ack");
    doc.recv_type("admitted").await;
    (host, doc, doc_id)
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn lobby_admit_chat_and_hand() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    // The doctor arrives before the consultation has started and waits in the lobby.
    let (mut doc, hello) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.doctor).await)).await;
    assert_eq!(hello["state"], "lobby");
    assert_eq!(hello["participants"], json!([]));
    let doc_id = hello["you"]["id"].as_str().unwrap().to_owned();
    let r = doc.request(json!({ "type": "chat", "text": "hello?" })).await;
    assert_eq!(doc.answer(&r).await["code"], "in_lobby");
    let r = doc.request(json!({ "type": "admit", "participant": doc_id })).await;
    assert_eq!(doc.answer(&r).await["code"], "in_lobby");

    // The host comes: the room shows them who waits, and their arrival starts the
    // consultation (issue 14: the report shows the real start).
    let (mut host, hello) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.spec).await)).await;
    assert_eq!(hello["state"], "joined");
    assert_eq!(hello["you"]["host"], true);
    assert_eq!(names(&hello["lobby"]), [doc_id.as_str()]);
    let host_id = hello["you"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/consultations/{}", c.id);
    let mut live = api.get(&path, &c.doctor).await.ok();
    for _ in 0..100 {
        if live["status"] == "live" {
            break;
        }
        // The start is committed off the room task; the API is polled until it shows.
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        live = api.get(&path, &c.doctor).await.ok();
    }
    assert_eq!(live["status"], "live", "the host's arrival starts the consultation");
    let started: Timestamp = live["started_at"].as_str().unwrap().parse().unwrap();
    assert!(Timestamp::now().duration_since(started).as_secs() < 60, "started now, not at the planned time");

    let r = host.request(json!({ "type": "admit", "participant": doc_id })).await;
    assert_eq!(host.answer(&r).await["type"], "ack");
    let admitted = doc.recv_type("admitted").await;
    assert_eq!(names(&admitted["participants"]), {
        let mut v = vec![host_id.clone(), doc_id.clone()];
        v.sort();
        v
    });

    // Text that reads differently from what it is (a right-to-left override) is refused and
    // reaches nobody: the host's next chat is the one after it.
    let r = doc.request(json!({ "type": "chat", "text": "报告\u{202E}fdp.exe" })).await;
    assert_eq!(doc.answer(&r).await["code"], "invalid_characters");

    // Chat reaches everyone, sender included, with the server's time.
    let r = doc.request(json!({ "type": "chat", "text": "心电图已上传" })).await;
    let m = host.recv_type("chat").await;
    assert_eq!((m["from"].as_str().unwrap(), m["text"].as_str().unwrap()), (doc_id.as_str(), "心电图已上传"));
    assert!(m["at"].is_string());
    assert_eq!(doc.recv_type("chat").await["text"], "心电图已上传");
    assert_eq!(doc.answer(&r).await["type"], "ack");
    // Private message to one participant; unknown targets are refused.
    let r = host.request(json!({ "type": "chat", "text": "private", "to": doc_id })).await;
    assert_eq!(doc.recv_type("chat").await["to"], json!(doc_id));
    assert_eq!(host.answer(&r).await["type"], "ack");
    let r = host.request(json!({ "type": "chat", "text": "x", "to": "nobody" })).await;
    assert_eq!(host.answer(&r).await["code"], "unknown_participant");

    let r = doc.request(json!({ "type": "raise_hand", "raised": true })).await;
    let upd = host.recv_type("participant_updated").await;
    assert_eq!(upd["participant"]["hand_raised"], true);
    assert_eq!(doc.answer(&r).await["type"], "ack");

    // Only hosts remove or end.
    let r = doc.request(json!({ "type": "remove", "participant": host_id })).await;
    assert_eq!(doc.answer(&r).await["code"], "forbidden");
    let r = doc.request(json!({ "type": "end_consultation" })).await;
    assert_eq!(doc.answer(&r).await["code"], "forbidden");

    // Leave is announced.
    let r = doc.request(json!({ "type": "leave" })).await;
    assert_eq!(doc.answer(&r).await["type"], "ack");
    let left = host.recv_type("participant_left").await;
    assert_eq!((left["participant_id"].clone(), left["reason"].clone()), (json!(doc_id), json!("left")));
    srv.stop().await;
}

#[tokio::test]
async fn declined_participant_is_told_and_closed() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (mut doc, hello) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.doctor).await)).await;
    let doc_id = hello["you"]["id"].clone();
    let (mut host, _) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.spec).await)).await;
    let r = host.request(json!({ "type": "decline", "participant": doc_id })).await;
    assert_eq!(host.answer(&r).await["type"], "ack");
    let seen = doc.until_closed().await;
    assert_eq!(seen.last().unwrap()["type"], "declined");
    srv.stop().await;
}

#[tokio::test]
async fn reload_rejoins_with_the_same_identity() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (mut host, doc, doc_id) = host_and_admitted_doctor(&srv, &api, &c).await;

    // The page reloads: the socket drops, the doctor shows as reconnecting, not gone.
    doc.close().await;
    let upd = host.recv_type("participant_updated").await;
    assert_eq!(upd["participant"]["presence"], "reconnecting");
    let (mut doc, hello) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.doctor).await)).await;
    assert_eq!(hello["state"], "joined", "an admitted participant does not wait in the lobby again");
    assert_eq!(hello["resumed"], true);
    assert_eq!(hello["you"]["id"], doc_id);
    let upd = host.recv_type("participant_updated").await;
    assert_eq!(upd["participant"]["presence"], "online");

    // A second socket with the same identity takes over; the old one is told why.
    let (_doc2, hello) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.doctor).await)).await;
    assert_eq!(hello["resumed"], true);
    let seen = doc.until_closed().await;
    assert_eq!(seen.last().unwrap()["code"], "replaced");
    srv.stop().await;
}

#[tokio::test]
async fn dropped_participant_times_out_after_grace() {
    let srv = TestServer::start_with(|c| c.signaling.reconnect_grace_secs = 1).await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (mut host, doc, _) = host_and_admitted_doctor(&srv, &api, &c).await;
    doc.close().await;
    host.recv_type("participant_updated").await;
    let left = host.recv_type("participant_left").await;
    assert_eq!(left["reason"], "timeout");
    srv.stop().await;
}

/// Issue 14: a socket that dies without a 1001 shows as reconnecting, then after
/// `away_after_secs` as gone; the member still comes back within the grace, as an arrival.
#[tokio::test]
async fn a_socket_gone_quiet_is_shown_gone_before_the_grace_ends() {
    let srv = TestServer::start_with(|c| c.signaling.away_after_secs = 1).await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (mut host, doc, doc_id) = host_and_admitted_doctor(&srv, &api, &c).await;
    doc.close().await;
    assert_eq!(host.recv_type("participant_updated").await["participant"]["presence"], "reconnecting");
    let left = host.recv_type("participant_left").await;
    assert_eq!(left["reason"], "timeout");
    let (_doc, hello) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.doctor).await)).await;
    assert_eq!(hello["resumed"], true, "the place was kept");
    assert_eq!(host.recv_type("participant_joined").await["participant"]["id"], doc_id);
    srv.stop().await;
}

/// A closed page is gone at once (the browser closes its socket with 1001); only a socket
/// that dies without saying so keeps a place for the reconnect grace (30 s here).
#[tokio::test]
async fn a_closed_page_has_left_at_once() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (mut host, doc, _) = host_and_admitted_doctor(&srv, &api, &c).await;
    doc.close_going_away().await;
    let left = host.recv_type("participant_left").await;
    assert_eq!(left["reason"], "left");
    srv.stop().await;
}

#[tokio::test]
async fn removed_participant_cannot_return() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (mut host, mut doc, doc_id) = host_and_admitted_doctor(&srv, &api, &c).await;
    let r = host.request(json!({ "type": "remove", "participant": doc_id })).await;
    assert_eq!(host.answer(&r).await["type"], "ack");
    let seen = doc.until_closed().await;
    assert_eq!(seen.last().unwrap()["type"], "removed");
    let mut again = Ws::connect(&srv.ws_url(&room_token(&api, &c.id, &c.doctor).await)).await.unwrap();
    again.send(json!({ "type": "hello", "id": "h", "version": 1 })).await;
    assert_eq!(again.recv().await.unwrap()["code"], "removed");
    srv.stop().await;
}

#[tokio::test]
async fn host_ends_the_consultation_for_everyone() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    api.post(&format!("/v1/consultations/{}/start", c.id), &c.spec, json!({})).await.ok();
    let (mut host, _) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.spec).await)).await;
    let doc_token = room_token(&api, &c.id, &c.doctor).await;
    let (mut doc, hello) = Ws::join(&srv.ws_url(&doc_token)).await;
    assert_eq!(hello["state"], "joined", "once live, participants enter directly");
    let r = host.request(json!({ "type": "end_consultation" })).await;
    assert_eq!(host.answer(&r).await["type"], "ack");
    assert_eq!(doc.until_closed().await.last().unwrap()["type"], "ended");
    assert_eq!(host.until_closed().await.last().unwrap()["type"], "ended");
    let rec = api.get(&format!("/v1/consultations/{}", c.id), &c.doctor).await.ok();
    assert_eq!(rec["status"], "ended");
    // The room is closed: even a still-valid token is refused before the upgrade.
    let err = Ws::connect(&srv.ws_url(&doc_token)).await.err().unwrap().to_string();
    assert!(err.contains("403"), "{err}");
    srv.stop().await;
}

#[tokio::test]
async fn ending_a_call_that_was_never_started_records_start_and_end() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (mut host, _) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.spec).await)).await;
    let r = host.request(json!({ "type": "end_consultation" })).await;
    assert_eq!(host.answer(&r).await["type"], "ack");
    let rec = api.get(&format!("/v1/consultations/{}", c.id), &c.doctor).await.ok();
    assert_eq!(rec["status"], "ended");
    assert!(rec["started_at"].is_string() && rec["ended_at"].is_string());
    srv.stop().await;
}

#[tokio::test]
async fn ending_through_the_api_closes_the_room() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    api.post(&format!("/v1/consultations/{}/start", c.id), &c.spec, json!({})).await.ok();
    let (mut doc, _) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.doctor).await)).await;
    api.post(&format!("/v1/consultations/{}/end", c.id), &c.spec, json!({})).await.ok();
    assert_eq!(doc.until_closed().await.last().unwrap()["type"], "ended");
    srv.stop().await;
}

#[tokio::test]
async fn handshake_and_auth_errors() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let token = room_token(&api, &c.id, &c.spec).await;
    for bad in ["", "garbage"] {
        let err = Ws::connect(&srv.ws_url(bad)).await.err().unwrap().to_string();
        assert!(err.contains("401"), "{err}");
    }
    // A session token is not a room token.
    let err = Ws::connect(&srv.ws_url(&c.spec)).await.err().unwrap().to_string();
    assert!(err.contains("401"), "{err}");
    let mut ws = Ws::connect(&srv.ws_url(&token)).await.unwrap();
    ws.send(json!({ "type": "hello", "id": "h", "version": 99 })).await;
    let m = ws.recv().await.unwrap();
    assert_eq!((m["code"].as_str(), m["id"].as_str()), (Some("unsupported_version"), Some("h")));
    assert!(ws.recv().await.is_none(), "closed after a version mismatch");
    let mut ws = Ws::connect(&srv.ws_url(&token)).await.unwrap();
    ws.send(json!({ "type": "chat", "id": "c", "text": "hi" })).await;
    assert_eq!(ws.recv().await.unwrap()["code"], "hello_required");
    let mut ws = Ws::connect(&srv.ws_url(&token)).await.unwrap();
    ws.send_raw("{\"type\":\"hello\"".into()).await;
    assert_eq!(ws.recv().await.unwrap()["code"], "invalid_message");
    // A plain HTTP request to the signaling endpoint gets a coded JSON error.
    let r = api.send("GET", &format!("/v1/rtc?token={token}"), None, None).await;
    assert_eq!((r.status, r.code()), (400, "websocket_required"));
    srv.stop().await;
}

#[tokio::test]
async fn size_and_rate_limits_then_close() {
    let srv = TestServer::start_with(|c| {
        c.limits.ws_message_bytes = 2048;
        c.limits.ws_burst = 10;
        c.limits.ws_messages_per_second = 1;
        c.limits.ws_breaches_before_close = 3;
        c.limits.chat_chars = 100;
    })
    .await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (mut ws, _) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.spec).await)).await;
    // Too long for chat but within the frame limit: a coded refusal, not a breach.
    let r = ws.request(json!({ "type": "chat", "text": "x".repeat(101) })).await;
    assert_eq!(ws.answer(&r).await["code"], "message_too_long");
    // Over the frame limit.
    ws.send(json!({ "type": "chat", "id": "big", "text": "x".repeat(4000) })).await;
    assert_eq!(ws.recv_type("error").await["code"], "message_too_large");
    // Unknown fields and types are refused.
    ws.send(json!({ "type": "chat", "id": "u", "text": "x", "extra": 1 })).await;
    assert_eq!(ws.recv_type("error").await["code"], "invalid_message");
    // Third breach closes the socket with a final coded error.
    for i in 0..20 {
        ws.send(json!({ "type": "raise_hand", "id": format!("f{i}"), "raised": true })).await;
    }
    let seen = ws.until_closed().await;
    let codes: Vec<_> = seen.iter().filter_map(|m| m["code"].as_str()).collect();
    assert!(codes.contains(&"rate_limited"), "{codes:?}");
    assert_eq!(*codes.last().unwrap(), "too_many_violations");
    srv.stop().await;
}

#[tokio::test]
async fn room_capacity_is_enforced() {
    let srv = TestServer::start_with(|c| c.limits.room_participants = 1).await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (_host, _) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.spec).await)).await;
    let mut ws = Ws::connect(&srv.ws_url(&room_token(&api, &c.id, &c.doctor).await)).await.unwrap();
    ws.send(json!({ "type": "hello", "id": "h", "version": 1 })).await;
    assert_eq!(ws.recv().await.unwrap()["code"], "room_full");
    srv.stop().await;
}

#[tokio::test]
async fn cli_tokens_open_ad_hoc_rooms_and_rooms_do_not_mix() {
    let srv = TestServer::start().await;
    let keys = &srv.state.keys;
    let g =
        huizhen::auth::Grants { can_publish: true, can_subscribe: true, can_publish_data: true, ..Default::default() };
    let tok = |room: &str, who: &str| {
        keys.room(who, who, &huizhen::ids::ConsultationId(room.into()), g, 60, Timestamp::now()).unwrap().0
    };
    let (mut a, _) = Ws::join(&srv.ws_url(&tok("room-a", "alice"))).await;
    let (mut b, hello) = Ws::join(&srv.ws_url(&tok("room-a", "bob"))).await;
    assert_eq!(names(&hello["participants"]), vec!["alice", "bob"]);
    let (mut c, hello) = Ws::join(&srv.ws_url(&tok("room-b", "carol"))).await;
    assert_eq!(names(&hello["participants"]), vec!["carol"]);
    a.recv_type("participant_joined").await;
    let r = c.request(json!({ "type": "chat", "text": "only room b" })).await;
    c.answer(&r).await;
    let r = a.request(json!({ "type": "chat", "text": "only room a" })).await;
    assert_eq!(b.recv_type("chat").await["text"], "only room a", "room b's chat never reaches room a");
    a.answer(&r).await;
    // Rooms go away when their last participant leaves.
    for ws in [&mut a, &mut b, &mut c] {
        let r = ws.request(json!({ "type": "leave" })).await;
        ws.answer(&r).await;
    }
    huizhen_tests::eventually("rooms retire", huizhen_tests::WAIT, || async { srv.state.hub.room_count() == 0 }).await;
    srv.stop().await;
}

#[tokio::test]
async fn server_shutdown_tells_clients() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (mut host, _) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.spec).await)).await;
    let stopping = tokio::spawn(srv.stop());
    let seen = host.until_closed().await;
    assert_eq!(seen.last().unwrap()["type"], "closing");
    stopping.await.unwrap();
}

/// Issue 13 item 6: a reschedule that replaced the lead specialist closed nothing, and that
/// specialist's token still opened the room as host; a disabled account's socket stayed open
/// and its token still worked. Now rights are checked again when a socket opens, and an open
/// socket loses what the record or the account no longer gives.
#[tokio::test]
async fn rights_taken_away_close_open_sockets_and_void_issued_tokens() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let coord = api.login("coordinator").await;
    let neuro = api.user_id(&coord, "neurologist").await;
    let spec_token = room_token(&api, &c.id, &c.spec).await;
    let doc_token = room_token(&api, &c.id, &c.doctor).await;
    let (mut doc, _) = Ws::join(&srv.ws_url(&doc_token)).await;

    // The coordinator gives the consultation to another specialist before it starts (a host
    // in the room would have started it: issue 14).
    let later = (Timestamp::now() + SignedDuration::from_mins(12)).to_string();
    let body = json!({ "start": later, "duration_minutes": 30, "specialists": [neuro] });
    api.post(&format!("/v1/consultations/{}/reschedule", c.id), &coord, body).await.ok();
    let err = Ws::connect(&srv.ws_url(&spec_token)).await.err().unwrap().to_string();
    assert!(err.contains("403"), "the replaced specialist's token no longer opens the room: {err}");

    // An administrator disables the requesting doctor: the socket closes, the token is void.
    let admin = api.login_as("admin", &srv.admin_password).await;
    let doc_id = api.user_id(&admin, "doctor-east").await;
    api.send("PATCH", &format!("/v1/users/{doc_id}"), Some(&admin), Some(json!({ "disabled": true }))).await.ok();
    assert_eq!(doc.recv_type("removed").await["by"], "system");
    let err = Ws::connect(&srv.ws_url(&doc_token)).await.err().unwrap().to_string();
    assert!(err.contains("403"), "a disabled account's token no longer opens the room: {err}");
    srv.stop().await;
}

/// Issue 13 item 12: a client that sent requests right after its hello, without waiting for the
/// server's, could get answers (a pong, media_not_ready) before the hello. Now they wait.
#[tokio::test]
async fn requests_sent_right_after_hello_are_answered_after_it() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    for round in 0..20 {
        let mut ws = Ws::connect(&srv.ws_url(&room_token(&api, &c.id, &c.spec).await)).await.unwrap();
        ws.send(json!({ "type": "hello", "id": "h", "version": 1 })).await;
        ws.send(json!({ "type": "ping", "id": "p1" })).await;
        ws.send(json!({ "type": "ping", "id": "p2" })).await;
        let first = ws.recv().await.unwrap();
        assert_eq!(first["type"], "hello", "round {round}: {first}");
        assert_eq!(ws.recv_type("pong").await["id"], "p1");
        assert_eq!(ws.recv_type("pong").await["id"], "p2");
        ws.close().await;
    }
    srv.stop().await;
}

/// Issue 13 item 16: the room task awaited the store inline, so while Redis was slow nothing
/// else in the room moved. Here Redis holds every client for 1.2 s just as the host ends the
/// consultation (which must be committed to the store): the doctor's chat still reaches the
/// host meanwhile, and the end completes once Redis answers.
#[tokio::test]
async fn a_slow_store_does_not_stall_the_room() {
    let redis = huizhen_tests::RedisServer::start().unwrap();
    let url = redis.url();
    let srv = TestServer::start_with(move |c| c.store = url).await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (mut host, mut doc, _) = host_and_admitted_doctor(&srv, &api, &c).await;
    let paused = std::process::Command::new("redis-cli")
        .args(["-u", &redis.url(), "CLIENT", "PAUSE", "1200", "ALL"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&paused.stdout).trim(), "OK", "{paused:?}");
    let end = host.request(json!({ "type": "end_consultation" })).await;
    let chat = doc.request(json!({ "type": "chat", "text": "还在吗？" })).await;
    let got = host.recv_type("chat").await;
    assert_eq!(got["text"], "还在吗？", "the chat reached the host while the end waited for the store");
    assert_eq!(doc.answer(&chat).await["type"], "ack");
    assert_eq!(host.answer(&end).await["type"], "ack", "the end was committed once the store answered");
    assert_eq!(doc.recv_type("ended").await["type"], "ended");
    srv.stop().await;
}

/// Issue 13 item 15: a room whose store did not answer when it opened took its recording
/// policy to be "none", so a `required` recording neither started nor was protected for the
/// room's life. Now the policy is unknown until the store answers: nothing is recorded
/// meanwhile (it might be `off`), and the required recording starts once the store is back.
#[tokio::test]
async fn a_required_recording_waits_for_the_store_then_starts() {
    let mut redis = huizhen_tests::RedisServer::start_persistent().unwrap();
    let url = redis.url();
    let srv = TestServer::start_with(move |c| c.store = url).await;
    let api = srv.api();
    let c = scheduled_with_recording(&api, Some("required")).await;
    // The socket opens while the store answers (the upgrade reads the record) ...
    let mut host = Ws::connect(&srv.ws_url(&room_token(&api, &c.id, &c.spec).await)).await.unwrap();
    // ... and the room opens, on hello, while it does not.
    redis.stop();
    host.send(json!({ "type": "hello", "id": "h", "version": 1 })).await;
    assert_eq!(host.recv_type("hello").await["id"], "h");
    let r = host.request(json!({ "type": "start_recording" })).await;
    assert_eq!(host.answer(&r).await["code"], "store_unavailable", "nothing is recorded while the policy is unknown");
    redis.restart().unwrap();
    let status = host.recv_type("recording").await;
    assert_eq!(status["active"], true, "the required recording started once the store was back: {status}");
    srv.stop().await;
}

/// Issue 14: a guest without an account comes through a one-time link, gives a name, waits in
/// the lobby even while the consultation is live, and is admitted by a host. The link opens
/// for no one else; withdrawing it takes the guest out and voids their tokens; the guest sees
/// nothing of the record; every step is audited without the name.
#[tokio::test]
async fn a_guest_comes_through_a_one_time_link_and_waits_to_be_admitted() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let made = api
        .post(
            &format!("/v1/consultations/{}/guest_links", c.id),
            &c.doctor,
            json!({ "label": "外院专家", "valid_hours": 4 }),
        )
        .await;
    assert_eq!(made.status, 201);
    let made = made.ok();
    let link = made["token"].as_str().unwrap().to_owned();
    let link_id = made["link"]["id"].as_str().unwrap().to_owned();
    assert_eq!(made["path"], format!("/#/guest/{link}"));
    assert!(made["link"]["used_at"].is_null());
    // Only those who may invite make links: a stranger to the consultation may not.
    let other = api.login("doctor-west").await;
    api.post(&format!("/v1/consultations/{}/guest_links", c.id), &other, json!({}))
        .await
        .expect(404, "consultation_not_found");
    api.post(&format!("/v1/consultations/{}/guest_links", c.id), &c.doctor, json!({ "valid_hours": 0 }))
        .await
        .expect(422, "guest_link_validity");

    // The host is in: the consultation is live. The guest still waits in the lobby.
    let (mut host, _) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.spec).await)).await;
    let check = api.send("POST", "/v1/guest/check", None, Some(json!({ "link": link }))).await.ok();
    assert_eq!(check["kind"], "consultation", "a check does not use the link");
    let body = json!({ "link": link, "name": "  王教授 " });
    let arrived = api.send("POST", "/v1/guest/session", None, Some(body.clone())).await.ok();
    let guest = arrived["token"].as_str().unwrap().to_owned();
    assert_eq!(arrived["consultation"]["name"], "王教授");
    assert!(arrived["consultation"].get("summary").is_none(), "a guest sees nothing of the case");
    // One person per link.
    api.send("POST", "/v1/guest/session", None, Some(body)).await.expect(410, "guest_link_used");
    api.send("POST", "/v1/guest/check", None, Some(json!({ "link": link }))).await.expect(410, "guest_link_used");
    api.send("POST", "/v1/guest/session", None, Some(json!({ "link": "x.y.z", "name": "a" })))
        .await
        .expect(404, "guest_link_invalid");
    // The guest's token is no session: nothing else of the API opens with it.
    api.get(&format!("/v1/consultations/{}", c.id), &guest).await.expect(401, "invalid_token");
    // The host's arrival starts the consultation (committed off the room's task).
    huizhen_tests::eventually("the consultation is live", std::time::Duration::from_secs(10), || async {
        api.get("/v1/guest/consultation", &guest).await.ok()["status"] == "live"
    })
    .await;
    let joined = api.post("/v1/guest/join", &guest, json!({})).await.ok();
    let guest_id = joined["identity"].as_str().unwrap().to_owned();
    assert_eq!(guest_id, format!("guest-{link_id}"));
    assert_eq!(joined["grants"]["room_admin"], false);
    let (mut g, hello) = Ws::join(&srv.ws_url(joined["token"].as_str().unwrap())).await;
    assert_eq!(hello["state"], "lobby", "a guest waits even though the consultation is live");
    let waiting = host.recv_type("lobby_waiting").await;
    assert_eq!(waiting["participant"]["name"], "王教授");
    assert_eq!(waiting["participant"]["guest"], true);
    let r = host.request(json!({ "type": "admit", "participant": guest_id })).await;
    assert_eq!(host.answer(&r).await["type"], "ack");
    g.recv_type("admitted").await;

    // Withdrawn: the guest is taken out, and neither token opens anything any more.
    api.post(&format!("/v1/consultations/{}/guest_links/{link_id}/revoke", c.id), &c.doctor, json!({})).await.ok();
    assert_eq!(g.recv_type("removed").await["by"], "system");
    api.post("/v1/guest/join", &guest, json!({})).await.expect(410, "guest_link_revoked");
    let err = Ws::connect(&srv.ws_url(joined["token"].as_str().unwrap())).await.err().unwrap().to_string();
    assert!(err.contains("403"), "a withdrawn guest's room token no longer opens the room: {err}");

    // The trail has each step, with the link's id and never the name or label.
    let admin = api.login_as("admin", &srv.admin_password).await;
    let audit = api.get(&format!("/v1/audit?consultation={}&limit=200", c.id), &admin).await.ok().to_string();
    for action in [
        "consultation.guest_link_create",
        "consultation.guest_arrived",
        "consultation.guest_join_token",
        "consultation.guest_link_revoke",
    ] {
        assert!(audit.contains(action), "{action} is audited: {audit}");
    }
    assert!(audit.contains(&link_id));
    assert!(!audit.contains("王教授") && !audit.contains("外院专家"), "no names in the audit trail");
    srv.stop().await;
}

/// Issue 14: with `auto_admit` on, invited members who come before any host go straight in
/// (a teaching broadcast's audience); without it they wait in the lobby.
#[tokio::test]
async fn auto_admission_lets_early_arrivals_straight_in() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let coord = api.login("coordinator").await;
    // Only the consultation's hosts (and its coordinator) change how the room admits.
    api.post(&format!("/v1/consultations/{}/settings", c.id), &c.doctor, json!({ "auto_admit": true }))
        .await
        .expect(403, "forbidden_role");
    let set =
        api.post(&format!("/v1/consultations/{}/settings", c.id), &coord, json!({ "auto_admit": true })).await.ok();
    assert_eq!(set["auto_admit"], true);
    let (_doc, hello) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &c.doctor).await)).await;
    assert_eq!(hello["state"], "joined", "no host yet, and still in");
    srv.stop().await;
}

/// Issue 15: the case panel. A host shows an attachment's slice; everyone (and whoever comes
/// later) gets the same view; the presenter role passes to the doctor, who scrolls; each
/// person's pointer and marks reach the others in their colour; a trainee-like participant
/// cannot change the view. Prints the pointer's delay from one socket to another on loopback
/// (docs/performance.md); the goal is under 200 ms.
#[tokio::test]
async fn the_case_panel_is_shared_and_pointers_reach_the_others() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let c = scheduled(&api).await;
    let (mut host, mut doc, doc_id) = host_and_admitted_doctor(&srv, &api, &c).await;
    let view =
        json!({ "attachment": "a1", "image": 4, "window": "lung", "zoom": 2.0, "center_x": 0.4, "center_y": 0.6 });
    let r = doc.request(json!({ "type": "case_show", "view": view })).await;
    assert_eq!(doc.answer(&r).await["code"], "not_presenter", "only the presenter or a host");
    let r = host.request(json!({ "type": "case_show", "view": view })).await;
    assert_eq!(host.answer(&r).await["type"], "ack");
    let state = doc.recv_type("case_state").await;
    assert_eq!(state["view"]["image"], 4);
    let host_id = state["presenter"].as_str().unwrap().to_owned();

    // The role passes to the doctor, who scrolls to another slice.
    let r = host.request(json!({ "type": "case_presenter", "participant": doc_id })).await;
    assert_eq!(host.answer(&r).await["type"], "ack");
    assert_eq!(doc.recv_type("case_state").await["presenter"], doc_id);
    let next = json!({ "attachment": "a1", "image": 5, "window": "bone" });
    let r = doc.request(json!({ "type": "case_show", "view": next })).await;
    assert_eq!(doc.answer(&r).await["type"], "ack");
    // (The host's own earlier states come first: it hears every change, its own included.)
    while host.recv_type("case_state").await["view"]["image"] != 5 {}

    // Marks in each person's colour, to everyone.
    let r = doc
        .request(json!({ "type": "case_mark", "mark": { "kind": "circle", "points": [[0.5, 0.5], [0.55, 0.5]] } }))
        .await;
    assert_eq!(doc.answer(&r).await["type"], "ack");
    let m1 = host.recv_type("case_mark").await;
    let r = host
        .request(json!({ "type": "case_mark", "mark": { "kind": "arrow", "points": [[0.1, 0.1], [0.45, 0.5]] } }))
        .await;
    assert_eq!(host.answer(&r).await["type"], "ack");
    // Everyone hears each mark, its author too: the doctor's own comes first.
    let m2 = loop {
        let m = doc.recv_type("case_mark").await;
        if m["mark"]["participant"] == host_id.as_str() {
            break m;
        }
    };
    assert_ne!(m1["mark"]["color"], m2["mark"]["color"]);
    assert_eq!(m2["mark"]["participant"], host_id);

    // Someone coming in later sees the view and its marks at once.
    let third = api.login("doctor-west").await;
    let coord = api.login("coordinator").await;
    let west = api.user_id(&coord, "doctor-west").await;
    api.post(&format!("/v1/consultations/{}/invite", c.id), &coord, json!({ "participants": [west] })).await.ok();
    let (mut late, hello) = Ws::join(&srv.ws_url(&room_token(&api, &c.id, &third).await)).await;
    assert_eq!(hello["state"], "joined");
    let caught = late.recv_type("case_state").await;
    assert_eq!((caught["view"]["image"].clone(), caught["marks"].as_array().unwrap().len()), (json!(5), 2));

    // Pointers: not answered, to everyone but the one pointing. Timed from send to arrival.
    let mut delays = Vec::new();
    // 30 moves: within the socket's burst (a page sends at most 10 a second; see protocol.md).
    for i in 0..30u32 {
        let x = f64::from(i) / 30.0;
        let sent = std::time::Instant::now();
        doc.send(json!({ "type": "case_pointer", "id": format!("p{i}"), "x": x, "y": 0.5 })).await;
        let got = host.recv_type("case_pointer").await;
        delays.push(sent.elapsed());
        assert_eq!(got["participant"], doc_id);
        assert!((got["x"].as_f64().unwrap() - x).abs() < 1e-9, "{got}");
        late.recv_type("case_pointer").await;
    }
    delays.sort();
    let pct = |p: usize| delays[(delays.len() * p / 100).min(delays.len() - 1)];
    eprintln!(
        "case_pointer delay over loopback: p50 {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(99),
        delays[delays.len() - 1]
    );
    let r = doc.request(json!({ "type": "case_pointer", "x": 1.5, "y": 0.5 })).await;
    assert_eq!(doc.answer(&r).await["code"], "invalid_message");

    // The presenter leaves: the view stays without one; a host closes it for everyone.
    doc.close_going_away().await;
    let gone = late.recv_type("case_state").await;
    assert!(gone["presenter"].is_null() && gone["view"]["image"] == 5, "{gone}");
    let r = host.request(json!({ "type": "case_close" })).await;
    assert_eq!(host.answer(&r).await["type"], "ack");
    assert!(late.recv_type("case_state").await["view"].is_null());
    srv.stop().await;
}
