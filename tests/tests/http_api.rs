//! The HTTP API over a real listener: the whole lifecycle for each role, the steps each role
//! may not take, double-booking, join windows, and bad input of every kind.
#![allow(clippy::unwrap_used)]

use huizhen_tests::{Api, TestServer};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

fn in_minutes(m: i64) -> String {
    (Timestamp::now() + SignedDuration::from_mins(m)).to_string()
}

async fn request(api: &Api, doctor: &str, urgency: &str) -> Value {
    let body = json!({
        "kind": "consultation", "specialty": "cardiology", "urgency": urgency,
        "summary": "65岁男性，胸痛3小时 (test case)", "recording": "allowed"
    });
    api.post("/v1/consultations", doctor, body).await.ok()
}

fn path(c: &Value, action: &str) -> String {
    format!("/v1/consultations/{}/{}", c["id"].as_str().unwrap(), action)
}

#[tokio::test]
async fn whole_lifecycle_for_each_role() {
    whole_lifecycle(TestServer::start_with(with_turn).await).await;
}

fn with_turn(c: &mut huizhen::config::Config) {
    c.media.stun_urls = vec!["stun:turn.example.org:3478".into()];
    c.media.turn_urls = vec!["turn:turn.example.org:3478?transport=udp".into()];
    c.media.turn_secret = "north-wind-secret".into();
}

#[tokio::test]
async fn whole_lifecycle_on_redis() {
    let redis = huizhen_tests::RedisServer::start().unwrap();
    let url = redis.url();
    whole_lifecycle(
        TestServer::start_with(move |c| {
            c.store = url;
            with_turn(c);
        })
        .await,
    )
    .await;
}

async fn whole_lifecycle(srv: TestServer) {
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let spec = api.login("cardiologist").await;
    let other_doc = api.login("doctor-west").await;
    let cardio_id = api.user_id(&coord, "cardiologist").await;

    let c = request(&api, &doctor, "routine").await;
    assert_eq!(c["status"], "requested");
    assert_eq!(c["version"], 1);

    // The coordinator's queue has it; another county's doctor does not see it.
    let queue = api.get("/v1/consultations?status=requested", &coord).await.ok();
    assert!(queue["items"].as_array().unwrap().iter().any(|i| i["id"] == c["id"]));
    assert!(queue["items"].as_array().unwrap().iter().all(|i| i.get("summary").is_none()), "lists carry no case text");
    let theirs = api.get("/v1/consultations", &other_doc).await.ok();
    assert_eq!(theirs["total"], 0);
    api.get(&format!("/v1/consultations/{}", c["id"].as_str().unwrap()), &other_doc)
        .await
        .expect(404, "consultation_not_found");

    // Steps the wrong role may not take.
    let accept = json!({ "specialists": [cardio_id], "start": in_minutes(10), "duration_minutes": 30 });
    api.post(&path(&c, "accept"), &doctor, accept.clone()).await.expect(403, "forbidden_role");
    // A specialist not (yet) on the consultation cannot even see it.
    api.post(&path(&c, "accept"), &spec, accept.clone()).await.expect(404, "consultation_not_found");
    api.post(&path(&c, "cancel"), &other_doc, json!({ "reason": "x" })).await.expect(404, "consultation_not_found");

    // Issue 13 item 8: a start at the calendar's end once panicked the handler (503 counted as
    // a store outage), a huge offset reached Redis as a negative count (503).
    let far = json!({ "specialists": [cardio_id], "start": "9999-12-30T00:00:00Z", "duration_minutes": 480 });
    api.post(&path(&c, "accept"), &coord, far).await.expect(422, "start_out_of_range");
    api.get("/v1/consultations?offset=9223372036854775807", &coord).await.expect(422, "offset_out_of_range");
    api.get("/v1/consultations?offset=100001", &coord).await.expect(422, "offset_out_of_range");
    assert_eq!(api.get("/v1/consultations?offset=100000", &coord).await.ok()["items"], json!([]));

    let c = api.post(&path(&c, "accept"), &coord, accept).await.ok();
    assert_eq!(c["status"], "scheduled");
    let later = json!({ "start": in_minutes(12), "duration_minutes": 30 });
    api.post(&path(&c, "reschedule"), &spec, later.clone()).await.expect(403, "forbidden_role");
    api.post(&path(&c, "reschedule"), &doctor, later).await.expect(403, "forbidden_role");
    api.post(&path(&c, "reject"), &coord, json!({ "reason": "no" })).await.expect(409, "invalid_state");
    // The specialist's day shows it.
    let mine = api.get("/v1/consultations?mine=true", &spec).await.ok();
    assert_eq!(mine["items"][0]["id"], c["id"]);
    let busy =
        api.get(&format!("/v1/specialists/{}/bookings", c["specialists"][0].as_str().unwrap()), &coord).await.ok();
    assert_eq!(busy["items"].as_array().unwrap().len(), 1);

    // Doctor joins inside the window (start in 10 min, window opens 15 min before).
    let j = api.post(&path(&c, "join"), &doctor, json!({})).await.ok();
    assert_eq!(j["grants"]["can_publish"], true);
    let turn = &j["ice_servers"][1];
    assert_eq!(j["ice_servers"][0]["urls"][0], "stun:turn.example.org:3478");
    assert!(turn["username"].as_str().unwrap().ends_with(&format!(":{}", j["identity"].as_str().unwrap())));
    assert_eq!(turn["credential"].as_str().unwrap().len(), 28, "base64 of a 20-byte HMAC-SHA1");
    assert_eq!(j["grants"]["room_admin"], false);
    let j = api.post(&path(&c, "join"), &spec, json!({})).await.ok();
    assert_eq!(j["grants"]["room_admin"], true, "the lead specialist hosts");
    api.post(&path(&c, "join"), &other_doc, json!({})).await.expect(404, "consultation_not_found");

    api.post(&path(&c, "start"), &doctor, json!({})).await.expect(403, "forbidden_role");
    let c = api.post(&path(&c, "start"), &spec, json!({})).await.ok();
    assert_eq!(c["status"], "live");
    api.post(&path(&c, "plan"), &doctor, json!({ "text": "too early" })).await.expect(409, "invalid_state");
    let c = api.post(&path(&c, "end"), &spec, json!({})).await.ok();
    assert_eq!(c["status"], "ended");
    api.post(&path(&c, "join"), &doctor, json!({})).await.expect(403, "join_window_closed");

    let pw = huizhen_tests::DEMO_PASSWORD;
    api.post(&path(&c, "opinion"), &doctor, json!({ "text": "x", "sign": true, "password": pw }))
        .await
        .expect(403, "forbidden_role");
    api.post(&path(&c, "plan"), &doctor, json!({ "text": "plan" })).await.expect(409, "no_signed_opinion");
    api.post(&path(&c, "opinion"), &spec, json!({ "text": "draft" })).await.ok();
    let c = api
        .post(&path(&c, "opinion"), &spec, json!({ "text": "建议冠脉造影", "sign": true, "password": pw }))
        .await
        .ok();
    assert!(c["opinions"][0]["signed_at"].is_string());
    api.post(&path(&c, "opinion"), &spec, json!({ "text": "changed", "sign": true, "password": pw }))
        .await
        .expect(409, "opinion_signed");
    api.post(&path(&c, "plan"), &coord, json!({ "text": "plan" })).await.expect(403, "forbidden_role");
    let c = api.post(&path(&c, "plan"), &doctor, json!({ "text": "转上级医院行PCI" })).await.ok();
    assert_eq!(c["status"], "reported");

    for who in [&doctor, &spec, &coord] {
        let r = api.get(&format!("/v1/consultations/{}/report", c["id"].as_str().unwrap()), who).await.ok();
        assert_eq!(r["consultation"]["plan"]["text"], "转上级医院行PCI");
        assert_eq!(r["people"].as_array().unwrap().len(), 3);
        assert!(r["requester_site"]["name"].is_string());
    }
    api.get(&format!("/v1/consultations/{}/report", c["id"].as_str().unwrap()), &other_doc)
        .await
        .expect(404, "consultation_not_found");

    // Every step is in the audit trail, with ids and no case text.
    let admin = api.login_as("admin", &srv.admin_password).await;
    srv.state.audit.flush().await;
    let audit = api.get(&format!("/v1/audit?consultation={}&limit=100", c["id"].as_str().unwrap()), &admin).await.ok();
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in [
        "consultation.request",
        "consultation.accept",
        "consultation.start",
        "consultation.end",
        "consultation.opinion_sign",
        "consultation.plan",
        "consultation.join_token",
    ] {
        assert!(actions.contains(&a), "audit lacks {a}: {actions:?}");
    }
    assert!(!audit.to_string().contains("胸痛"), "case text must never reach the audit trail");
    api.get("/v1/audit", &doctor).await.expect(403, "forbidden_role");
    srv.stop().await;
}

#[tokio::test]
async fn rejected_and_cancelled_paths() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let c = request(&api, &doctor, "routine").await;
    let e = api.post(&path(&c, "reject"), &coord, json!({ "reason": "" })).await.expect(422, "text_required");
    assert_eq!(e["details"]["field"], "reason");
    let c = api.post(&path(&c, "reject"), &coord, json!({ "reason": "请先完善心电图" })).await.ok();
    assert_eq!(c["status"], "rejected");
    api.post(&path(&c, "cancel"), &doctor, json!({ "reason": "x" })).await.expect(409, "invalid_state");
    let c2 = request(&api, &doctor, "urgent").await;
    let c2 = api.post(&path(&c2, "cancel"), &doctor, json!({ "reason": "patient improved" })).await.ok();
    assert_eq!(c2["status"], "cancelled");
    let listed = api.get("/v1/consultations?status=rejected,cancelled&order=asc", &doctor).await.ok();
    assert_eq!(listed["total"], 2);
    assert_eq!(listed["items"][0]["id"], c["id"]);
    srv.stop().await;
}

#[tokio::test]
async fn specialist_busy_is_409_and_reschedule_checks_too() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let cardio = api.user_id(&coord, "cardiologist").await;
    let neuro = api.user_id(&coord, "neurologist").await;
    let a = request(&api, &doctor, "routine").await;
    let b = request(&api, &doctor, "routine").await;
    api.post(
        &path(&a, "accept"),
        &coord,
        json!({ "specialists": [cardio], "start": in_minutes(120), "duration_minutes": 60 }),
    )
    .await
    .ok();
    let r = api
        .post(
            &path(&b, "accept"),
            &coord,
            json!({ "specialists": [neuro, cardio], "start": in_minutes(150), "duration_minutes": 60 }),
        )
        .await;
    let body = r.expect(409, "specialist_busy");
    assert_eq!(body["details"]["specialist"], json!(cardio));
    let b = api
        .post(
            &path(&b, "accept"),
            &coord,
            json!({ "specialists": [neuro, cardio], "start": in_minutes(180), "duration_minutes": 60 }),
        )
        .await
        .ok();
    api.post(&path(&b, "reschedule"), &coord, json!({ "start": in_minutes(100), "duration_minutes": 30 }))
        .await
        .expect(409, "specialist_busy");
    let b = api
        .post(&path(&b, "reschedule"), &coord, json!({ "start": in_minutes(240), "duration_minutes": 30 }))
        .await
        .ok();
    assert_eq!(b["version"], 3);
    // Only specialists can be assigned.
    let doc_id = api.user_id(&coord, "doctor-west").await;
    let c = request(&api, &doctor, "routine").await;
    api.post(
        &path(&c, "accept"),
        &coord,
        json!({ "specialists": [doc_id], "start": in_minutes(600), "duration_minutes": 30 }),
    )
    .await
    .expect(422, "not_a_specialist");
    srv.stop().await;
}

#[tokio::test]
async fn racing_coordinators_over_http_book_once() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let cardio = api.user_id(&coord, "cardiologist").await;
    let mut reqs = Vec::new();
    for _ in 0..8 {
        reqs.push(request(&api, &doctor, "routine").await);
    }
    let start = in_minutes(300);
    let mut tasks = Vec::new();
    for (i, c) in reqs.iter().enumerate() {
        let (api, coord, p) = (api.clone(), coord.clone(), path(c, "accept"));
        let body = json!({ "specialists": [cardio], "start": start, "duration_minutes": 30 + i });
        tasks.push(tokio::spawn(async move { api.post(&p, &coord, body).await }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        codes.push(if r.status == 200 { "ok".to_string() } else { r.code().to_string() });
    }
    assert_eq!(codes.iter().filter(|c| *c == "ok").count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| c == "ok" || c == "specialist_busy"), "{codes:?}");
    srv.stop().await;
}

#[tokio::test]
async fn join_window_and_grants() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let cardio = api.user_id(&coord, "cardiologist").await;
    let c = request(&api, &doctor, "routine").await;
    api.post(&path(&c, "join"), &doctor, json!({})).await.expect(403, "join_window_not_open");
    api.post(
        &path(&c, "accept"),
        &coord,
        json!({ "specialists": [cardio], "start": in_minutes(120), "duration_minutes": 30 }),
    )
    .await
    .ok();
    let body = api.post(&path(&c, "join"), &doctor, json!({})).await.expect(403, "join_window_not_open");
    assert!(body["details"]["opens_at"].is_string());
    let spec = api.login("cardiologist").await;
    api.post(&path(&c, "start"), &spec, json!({})).await.expect(409, "too_early");

    // An emergency opens a live room at once; the doctor hosts until a specialist arrives.
    let e = request(&api, &doctor, "emergency").await;
    assert_eq!(e["status"], "live");
    let j = api.post(&path(&e, "join"), &doctor, json!({})).await.ok();
    assert_eq!(j["grants"]["room_admin"], true);
    let e = api.post(&path(&e, "assign"), &coord, json!({ "specialists": [cardio] })).await.ok();
    assert_eq!(e["specialists"][0], json!(cardio));

    // Teaching: invited trainees (viewers) get subscribe-only grants.
    let trainee_id = api.user_id(&coord, "trainee").await;
    let body = json!({ "kind": "teaching", "specialty": "general_surgery", "urgency": "routine", "summary": "腹腔镜胆囊切除术", "participants": [trainee_id] });
    let t = api.post("/v1/consultations", &doctor, body).await.ok();
    let surgeon = api.user_id(&coord, "surgeon").await;
    api.post(
        &path(&t, "accept"),
        &coord,
        json!({ "specialists": [surgeon], "start": in_minutes(5), "duration_minutes": 120 }),
    )
    .await
    .ok();
    let trainee = api.login("trainee").await;
    let j = api.post(&path(&t, "join"), &trainee, json!({})).await.ok();
    assert_eq!(j["grants"]["can_publish"], false);
    assert_eq!(j["grants"]["can_subscribe"], true);
    assert_eq!(j["grants"]["audience"], true, "a trainee is in the broadcast's audience");
    let j = api.post(&path(&t, "join"), &doctor, json!({})).await.ok();
    assert_eq!(j["grants"]["can_publish"], false, "in teaching only the hosts publish");
    assert_eq!(j["grants"]["audience"], true);
    srv.stop().await;
}

#[tokio::test]
async fn bad_input_gets_coded_errors() {
    let srv = TestServer::start_with(|c| c.limits.http_body_bytes = 8192).await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    api.raw("POST", "/v1/consultations", Some(&doctor), "application/json", b"{not json".to_vec())
        .await
        .expect(400, "malformed_json");
    api.raw("POST", "/v1/consultations", Some(&doctor), "text/plain", b"{}".to_vec())
        .await
        .expect(415, "unsupported_media_type");
    let big = json!({ "kind": "consultation", "specialty": "x", "urgency": "routine", "summary": "y".repeat(10_000) });
    api.raw("POST", "/v1/consultations", Some(&doctor), "application/json", big.to_string().into_bytes())
        .await
        .expect(413, "body_too_large");
    let unknown =
        json!({ "kind": "consultation", "specialty": "x", "urgency": "routine", "summary": "y", "patient_name": "z" });
    let e = api.post("/v1/consultations", &doctor, unknown).await.expect(422, "invalid_field");
    assert_eq!(e["details"]["field"], "patient_name", "a shape error names its field: {e}");
    // Without a patient block the summary is what the specialist reads: required.
    let missing = json!({ "kind": "consultation", "specialty": "x", "urgency": "routine" });
    let e = api.post("/v1/consultations", &doctor, missing).await.expect(422, "text_required");
    assert_eq!(e["details"]["field"], "summary", "{e}");
    let bad_kind = json!({ "kind": "surgery", "specialty": "x", "urgency": "routine", "summary": "y" });
    api.post("/v1/consultations", &doctor, bad_kind).await.expect(422, "invalid_field");
    let bad_time = json!({ "kind": "consultation", "specialty": "x", "urgency": "routine", "summary": "y", "wished": { "from": "tomorrow", "to": "later" } });
    let e = api.post("/v1/consultations", &doctor, bad_time).await.expect(422, "invalid_field");
    assert_eq!(e["details"]["field"], "wished.from", "{e}");
    let backwards = json!({ "kind": "consultation", "specialty": "x", "urgency": "routine", "summary": "y", "wished": { "from": in_minutes(60), "to": in_minutes(30) } });
    api.post("/v1/consultations", &doctor, backwards).await.expect(422, "wished_reversed");
    let past = json!({ "kind": "consultation", "specialty": "x", "urgency": "routine", "summary": "y", "wished": { "from": in_minutes(-120), "to": in_minutes(-60) } });
    let e = api.post("/v1/consultations", &doctor, past).await.expect(422, "wished_in_past");
    assert_eq!(e["details"]["field"], "wished");
    let long = json!({ "kind": "consultation", "specialty": "x", "urgency": "routine", "summary": "y".repeat(4001) });
    // Each rule has its code, its field and its numbers, for the client to say in Chinese.
    let e = api.post("/v1/consultations", &doctor, long).await.expect(422, "text_too_long");
    assert_eq!((e["details"]["field"].as_str(), e["details"]["max"].as_u64()), (Some("summary"), Some(4000)));
    // Issue 13 item 10: hidden and direction-changing characters, coded with the field.
    let hidden =
        json!({ "kind": "consultation", "specialty": "x", "urgency": "routine", "summary": "胸痛\u{0}\u{202E}" });
    let e = api.post("/v1/consultations", &doctor, hidden).await.expect(422, "invalid_characters");
    assert_eq!(e["details"]["field"], "summary");
    let joiner =
        json!({ "kind": "consultation", "specialty": "card\u{200B}iology", "urgency": "routine", "summary": "y" });
    let e = api.post("/v1/consultations", &doctor, joiner).await.expect(422, "invalid_characters");
    assert_eq!(e["details"]["field"], "specialty");
    api.get("/v1/consultations?limit=0", &doctor).await.expect(422, "limit_out_of_range");
    api.get("/v1/consultations?status=bogus", &doctor).await.expect(422, "unknown_status");
    api.get("/v1/consultations?from=notatime", &doctor).await.expect(422, "invalid_field");
    api.get("/v1/consultations/..%2F..%2Fetc", &doctor).await.expect(404, "consultation_not_found");
    api.post("/v1/consultations/abc/fly", &doctor, json!({})).await.expect(404, "no_such_endpoint");
    api.get("/v1/nothing", &doctor).await.expect(404, "no_such_endpoint");
    api.send("DELETE", "/v1/consultations", Some(&doctor), None).await.expect(405, "method_not_allowed");
    let huge = vec![b' '; 3 << 20];
    api.raw("POST", "/v1/consultations/abc/start", Some(&doctor), "application/json", huge)
        .await
        .expect(413, "body_too_large");
    // Nothing was written by any of the refused requests.
    assert_eq!(api.get("/v1/consultations", &doctor).await.ok()["total"], 0);
    // The viewer role may not request.
    let trainee = api.login("trainee").await;
    let ok_body = json!({ "kind": "consultation", "specialty": "x", "urgency": "routine", "summary": "y" });
    api.post("/v1/consultations", &trainee, ok_body).await.expect(403, "forbidden_role");
    srv.stop().await;
}

#[tokio::test]
async fn tokens_expire_refresh_and_revoke() {
    let srv = TestServer::start().await;
    let api = srv.api();
    api.send("GET", "/v1/me", None, None).await.expect(401, "token_missing");
    api.get("/v1/me", "garbage").await.expect(401, "invalid_token");
    // A session token minted an hour ago with the server's own key has expired.
    let me = api.login_full("doctor-east", huizhen_tests::DEMO_PASSWORD).await.ok();
    let uid = huizhen::ids::UserId(me["user"]["id"].as_str().unwrap().to_owned());
    let old = Timestamp::now() - SignedDuration::from_hours(1);
    let (expired, _) = srv
        .state
        .keys
        .session(&uid, huizhen::consult::model::Role::Doctor, 0, huizhen::auth::TokenType::Session, 900, old)
        .unwrap();
    api.get("/v1/me", &expired).await.expect(401, "token_expired");
    // A refresh token is not a session token and vice versa.
    let refresh = me["refresh_token"].as_str().unwrap();
    api.get("/v1/me", refresh).await.expect(401, "invalid_token");
    let again = api.send("POST", "/v1/auth/refresh", None, Some(json!({ "refresh_token": refresh }))).await.ok();
    let access = again["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api.get("/v1/me", &access).await.ok()["username"], "doctor-east");
    // Logout revokes every token of the user, refresh tokens included.
    assert_eq!(api.send("POST", "/v1/auth/logout", Some(&access), None).await.status, 204);
    api.get("/v1/me", &access).await.expect(401, "session_revoked");
    api.send("POST", "/v1/auth/refresh", None, Some(json!({ "refresh_token": refresh })))
        .await
        .expect(401, "session_revoked");
    srv.stop().await;
}

/// Charged before the check: parallel guesses get no more checks than the budget, and
/// signing in with the right password does not use it up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_are_charged_before_the_password_is_checked() {
    let srv = TestServer::start_with(|c| c.auth.max_failed_logins_per_minute = 5).await;
    let api = srv.api();
    for _ in 0..8 {
        api.login("doctor-east").await;
    }
    let guesses = (0..30).map(|i| {
        let api = srv.api();
        async move { api.login_full("doctor-east", &format!("guess-{i}")).await.status }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (5, 25), "{statuses:?}");
    srv.stop().await;
}

#[tokio::test]
async fn failed_logins_are_throttled_and_audited() {
    let srv = TestServer::start_with(|c| c.auth.max_failed_logins_per_minute = 3).await;
    let api = srv.api();
    let before = Timestamp::now();
    for _ in 0..3 {
        api.login_full("doctor-east", "wrong-password").await.expect(401, "invalid_credentials");
    }
    api.login_full("doctor-east", "wrong-password").await.expect(429, "too_many_attempts");
    api.login_full("doctor-east", huizhen_tests::DEMO_PASSWORD).await.expect(429, "too_many_attempts");
    // Other accounts are not affected; usernames are not case-sensitive.
    api.login("Doctor-West").await;
    api.login_full("nobody", "whatever-pass").await.expect(401, "invalid_credentials");
    let admin = api.login_as("admin", &srv.admin_password).await;
    srv.state.audit.flush().await;
    let failed = api.get("/v1/audit?action=auth.login_failed", &admin).await.ok();
    assert_eq!(failed["items"].as_array().unwrap().len(), 4);
    // A date range (issue 14: the audit page's filter).
    let count = |v: &Value| v["items"].as_array().unwrap().len();
    let since = api.get(&format!("/v1/audit?action=auth.login_failed&from={before}"), &admin).await.ok();
    assert_eq!(count(&since), 4);
    let until = api.get(&format!("/v1/audit?action=auth.login_failed&to={before}"), &admin).await.ok();
    assert_eq!(count(&until), 0);
    let later = in_minutes(1);
    let none = api.get(&format!("/v1/audit?action=auth.login_failed&from={later}"), &admin).await.ok();
    assert_eq!(count(&none), 0);
    api.get(&format!("/v1/audit?from={later}&to={before}"), &admin).await.expect(422, "range_reversed");
    let ok = api.get("/v1/audit?action=auth.login", &admin).await.ok();
    assert!(ok["items"].as_array().unwrap().len() >= 2);
    srv.stop().await;
}

#[tokio::test]
async fn admin_manages_sites_and_users() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let admin = api.login_as("admin", &srv.admin_password).await;
    let site = api.post("/v1/sites", &admin, json!({ "name": "北镇卫生院", "level": "township" })).await.ok();
    assert_eq!(site["time_zone"], "Asia/Shanghai");
    api.post("/v1/sites", &admin, json!({ "name": "x", "level": "township", "time_zone": "Mars/Olympus" }))
        .await
        .expect(422, "unknown_time_zone");
    let two_lines = json!({ "name": "北镇\n卫生院", "level": "township" });
    let e = api.post("/v1/sites", &admin, two_lines).await.expect(422, "invalid_characters");
    assert_eq!(e["details"]["field"], "name");
    let body = json!({ "username": "dr.new", "display_name": "新医生", "role": "doctor", "password": "long-enough-pw", "site_id": site["id"] });
    let u = api.post("/v1/users", &admin, body.clone()).await.ok();
    assert!(u.get("password_hash").is_none(), "hashes never leave the server");
    api.post("/v1/users", &admin, body).await.expect(409, "username_taken");
    api.post(
        "/v1/users",
        &admin,
        json!({ "username": "x12", "display_name": "x", "role": "doctor", "password": "short" }),
    )
    .await
    .expect(422, "password_length");
    api.post(
        "/v1/users",
        &admin,
        json!({ "username": "x1", "display_name": "x", "role": "doctor", "password": "long-enough-pw" }),
    )
    .await
    .expect(422, "username_rule");
    let token = api.login_as("dr.new", "long-enough-pw").await;
    let valid = json!({ "username": "dr.other", "display_name": "x", "role": "admin", "password": "long-enough-pw" });
    api.post("/v1/users", &token, valid).await.expect(403, "forbidden_role");
    let p = format!("/v1/users/{}", u["id"].as_str().unwrap());
    api.send("PATCH", &p, Some(&admin), Some(json!({ "disabled": true }))).await.ok();
    api.get("/v1/me", &token).await.expect(401, "session_revoked");
    api.login_full("dr.new", "long-enough-pw").await.expect(401, "invalid_credentials");
    let sites = api.get("/v1/sites", &admin).await.ok();
    assert_eq!(sites["items"].as_array().unwrap().len(), 5);
    srv.stop().await;
}

#[tokio::test]
async fn health_ready_metrics() {
    let srv = TestServer::start().await;
    let api = srv.api();
    assert_eq!(api.send("GET", "/healthz", None, None).await.ok()["status"], "ok");
    assert_eq!(api.send("GET", "/readyz", None, None).await.ok()["status"], "ready");
    let m = reqwest::get(srv.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(m.contains("huizhen_logins_total"), "{m}");
    assert!(m.contains("huizhen_http_requests_total{class=\"2xx\"}"));
    assert!(m.contains("\nhuizhen_media_unrouted_datagrams_total 0\n"), "{m}");
    assert!(m.contains("\nhuizhen_media_connections 0\n"), "{m}");
    srv.stop().await;
}

#[tokio::test]
async fn metrics_token_guards_metrics() {
    let token = "prometheus-scrape-0123456789";
    let srv = TestServer::start_with(|c| c.metrics_token = token.into()).await;
    let api = srv.api();
    api.send("GET", "/metrics", None, None).await.expect(401, "metrics_token_required");
    api.send("GET", "/metrics", Some("prometheus-scrape-0123456780"), None).await.expect(401, "metrics_token_required");
    api.send("GET", "/metrics", Some("prometheus-scrape"), None).await.expect(401, "metrics_token_required");
    let m = reqwest::Client::new().get(srv.url("/metrics")).bearer_auth(token).send().await.unwrap();
    assert_eq!(m.status(), 200);
    assert!(m.text().await.unwrap().contains("huizhen_logins_total"));
    // Health and readiness stay open for load balancers.
    assert_eq!(api.send("GET", "/healthz", None, None).await.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn http_rate_limit_answers_429() {
    let srv = TestServer::start_with(|c| {
        c.limits.http_requests_per_second = 1;
        c.limits.http_burst = 5;
    })
    .await;
    let api = srv.api();
    let mut codes = Vec::new();
    for _ in 0..8 {
        codes.push(api.send("GET", "/v1/me", None, None).await.status);
    }
    assert!(codes.contains(&429), "{codes:?}");
    assert_eq!(api.send("GET", "/healthz", None, None).await.status, 200, "health checks are never limited");
    // Nor is the page itself: many users behind one hospital NAT open it at once.
    for _ in 0..20 {
        let page = reqwest::get(srv.url("/js/app.js")).await.unwrap();
        assert_eq!(page.status(), 200);
    }
    assert_eq!(api.send("GET", "/v1/me", None, None).await.status, 429, "the API budget is still spent");
    srv.stop().await;
}

/// Issue 14: hosts and requesters cannot read the user directory, so inviting asks the
/// consultation who may be invited: active people not on it, by name, site and role, and a
/// pasted list sorted into found, unknown, disabled and already on it. Only for those who may
/// invite, only while people meet in it.
#[tokio::test]
async fn whoever_may_invite_finds_people_to_invite() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let admin = api.login_as("admin", &srv.admin_password).await;
    let c = request(&api, &doctor, "routine").await;
    let invitable = |q: &str| format!("/v1/consultations/{}/invitable{q}", c["id"].as_str().unwrap());
    let names = |v: &Value, key: &str| -> Vec<String> {
        v[key].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap_or_default().to_owned()).collect()
    };

    let all = api.get(&invitable(""), &doctor).await.ok();
    let usernames = names(&all, "items");
    assert!(usernames.contains(&"doctor-west".to_owned()), "{usernames:?}");
    assert!(!usernames.contains(&"doctor-east".to_owned()), "the requester is on it already");
    assert!(!usernames.contains(&"admin".to_owned()), "administrators are not invited");
    assert_eq!(all["total"].as_u64().unwrap() as usize, usernames.len());
    assert!(all["items"][0].get("password_hash").is_none() && all["items"][0].get("specialty").is_none());
    let west = api.get(&invitable("?q=WEST"), &doctor).await.ok();
    assert!(names(&west, "items").iter().all(|n| n.contains("west")) && !names(&west, "items").is_empty());
    let one = api.get(&invitable("?limit=1"), &doctor).await.ok();
    assert_eq!((one["items"].as_array().unwrap().len(), &one["total"]), (1, &all["total"]));
    api.get(&invitable("?limit=0"), &doctor).await.expect(422, "limit_out_of_range");
    api.get(&invitable("?role=nurse"), &doctor).await.expect(422, "invalid_field");

    // A pasted list, with a disabled account, a name that does not exist and people already on it.
    let body =
        json!({ "username": "dr.gone", "display_name": "离职医生", "role": "doctor", "password": "long-enough-pw" });
    let gone = api.post("/v1/users", &admin, body).await.ok();
    let p = format!("/v1/users/{}", gone["id"].as_str().unwrap());
    api.send("PATCH", &p, Some(&admin), Some(json!({ "disabled": true }))).await.ok();
    let pasted =
        json!({ "usernames": ["doctor-west", " nobody ", "doctor-east", "DOCTOR-WEST", "dr.gone", "admin", ""] });
    let r = api.post(&invitable("/lookup"), &doctor, pasted).await.ok();
    assert_eq!(names(&r, "found"), ["doctor-west"]);
    assert_eq!(r["unknown"], json!(["nobody", "admin"]));
    assert_eq!(r["disabled"], json!(["dr.gone"]));
    assert_eq!(names(&r, "already"), ["doctor-east"]);
    let many: Vec<String> = (0..501).map(|i| format!("u{i}")).collect();
    api.post(&invitable("/lookup"), &doctor, json!({ "usernames": many })).await.expect(422, "too_many_participants");

    // Who may not: someone who cannot see it, a coordinator of another consultation once this
    // one has its own; nobody once it is over.
    let other_doc = api.login("doctor-west").await;
    api.get(&invitable(""), &other_doc).await.expect(404, "consultation_not_found");
    api.get(&invitable(""), &coord).await.ok();
    api.post(&path(&c, "cancel"), &doctor, json!({ "reason": "病人已转院" })).await.ok();
    api.get(&invitable(""), &doctor).await.expect(409, "invalid_state");
    api.post(&invitable("/lookup"), &doctor, json!({ "usernames": ["doctor-west"] }))
        .await
        .expect(409, "invalid_state");
    srv.stop().await;
}

/// A server-sent event stream (`GET /v1/events`) read event by event.
struct EventStream {
    resp: reqwest::Response,
    buf: String,
}

impl EventStream {
    async fn open(srv: &TestServer, token: &str) -> EventStream {
        let resp = reqwest::Client::new().get(srv.url("/v1/events")).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut s = EventStream { resp, buf: String::new() };
        assert_eq!(s.next().await.0, "ready");
        s
    }

    /// The next event (its name and data); comments (keep-alives) are skipped. Fails after
    /// 10 s without one: the push is meant to arrive within 2 s.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(at) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..at + 2).collect();
                let (mut event, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim());
                    }
                }
                if event.is_empty() {
                    continue;
                }
                return (event, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), self.resp.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("the stream is open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next consultation change.
    async fn change(&mut self) -> Value {
        let (event, data) = self.next().await;
        assert_eq!(event, "consultation", "{data}");
        data
    }
}

/// Issue 14: office pages hear of the changes that concern their user as they happen (server-
/// sent events), and of nothing else; no case text travels with them.
#[tokio::test]
async fn changes_are_pushed_to_those_they_concern() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let east = api.login("doctor-east").await;
    let west = api.login("doctor-west").await;
    let coord = api.login("coordinator").await;
    let spec = api.login("cardiologist").await;
    let neuro = api.login("neurologist").await;
    let cardio_id = api.user_id(&coord, "cardiologist").await;
    let neuro_id = api.user_id(&coord, "neurologist").await;
    let mut neuro_events = EventStream::open(&srv, &neuro).await;
    let mut east_events = EventStream::open(&srv, &east).await;
    let mut west_events = EventStream::open(&srv, &west).await;
    let mut coord_events = EventStream::open(&srv, &coord).await;
    let mut spec_events = EventStream::open(&srv, &spec).await;
    reqwest::Client::new().get(srv.url("/v1/events")).send().await.map(|r| assert_eq!(r.status(), 401)).unwrap();

    // A request reaches the centre (and its doctor); accepting it reaches the doctor and the
    // specialist now on it.
    let c = request(&api, &east, "routine").await;
    for events in [&mut coord_events, &mut east_events] {
        let e = events.change().await;
        assert_eq!((&e["id"], &e["action"], &e["status"]), (&c["id"], &json!("request"), &json!("requested")));
        assert!(e.get("summary").is_none(), "no case text in an event: {e}");
    }
    let accept = json!({ "specialists": [cardio_id], "start": in_minutes(10), "duration_minutes": 30 });
    api.post(&path(&c, "accept"), &coord, accept).await.ok();
    let e = east_events.change().await;
    assert_eq!((&e["action"], &e["status"]), (&json!("accept"), &json!("scheduled")));
    let e = spec_events.change().await;
    assert_eq!((&e["id"], &e["action"], &e["specialists"]), (&c["id"], &json!("accept"), &json!([cardio_id])));
    assert_eq!(coord_events.change().await["action"], "accept");

    // Another county's doctor heard of none of it: the next change on its stream is its own.
    let mine = request(&api, &west, "urgent").await;
    let e = west_events.change().await;
    assert_eq!((&e["id"], &e["action"]), (&mine["id"], &json!("request")));
    assert_eq!(coord_events.change().await["id"], mine["id"], "the centre hears of every request");

    // An emergency assigned to a specialist reaches that specialist first of all.
    let emergency = request(&api, &east, "emergency").await;
    let e = coord_events.change().await;
    assert_eq!((&e["id"], &e["action"], &e["status"]), (&emergency["id"], &json!("emergency_opened"), &json!("live")));
    api.post(&path(&emergency, "assign"), &coord, json!({ "specialists": [neuro_id] })).await.ok();
    let e = neuro_events.change().await;
    assert_eq!((&e["id"], &e["action"], &e["urgency"]), (&emergency["id"], &json!("assign"), &json!("emergency")));
    assert_eq!(e["specialists"], json!([neuro_id]));

    // A disabled account's stream ends at once (its token no longer opens one).
    let admin = api.login_as("admin", &srv.admin_password).await;
    let west_id = api.user_id(&coord, "doctor-west").await;
    api.send("PATCH", &format!("/v1/users/{west_id}"), Some(&admin), Some(json!({ "disabled": true }))).await.ok();
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), west_events.resp.chunk()).await.unwrap();
    assert!(matches!(end, Ok(None)), "the stream ended: {end:?}");
    reqwest::Client::new()
        .get(srv.url("/v1/events"))
        .bearer_auth(&west)
        .send()
        .await
        .map(|r| assert_eq!(r.status(), 401))
        .unwrap();
    srv.stop().await;
}

/// Issue 15: the request's patient block is checked field by field; the record has a readable
/// number; lists show a masked name, sex and age only; the requesting site finds its cases by
/// patient number; with a key set, neither the name nor the complaint is on disk in the clear,
/// and the audit trail never has them.
#[tokio::test]
async fn the_patient_block_is_checked_masked_numbered_found_and_sealed_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = huizhen_tests::test_config(dir.path());
    config.recording.encryption_key = "3c".repeat(32);
    let srv = TestServer::start_config(config).await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let patient = json!({
        "name": "欧阳小明", "sex": "male", "birth_date": "1958-04-02", "number": "ZY-20260042",
        "chief_complaint": "胸闷气短三天", "history": "高血压十年", "diagnosis": "急性冠脉综合征？",
        "purpose": "明确诊断及下一步治疗"
    });
    let body =
        |p: Value| json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "routine", "patient": p });
    let made = api.post("/v1/consultations", &doctor, body(patient.clone())).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let c = made.ok();
    let number = c["number"].as_str().unwrap().to_owned();
    let year = Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap()).year();
    assert!(number.starts_with(&format!("HZ-{year}-")) && number.len() == 14, "{number}");
    assert_eq!(c["patient"]["name"], "欧阳小明");
    let second = api
        .post(
            "/v1/consultations",
            &doctor,
            body(json!({ "name": "李四", "sex": "female", "birth_date": "2026-03-01" })),
        )
        .await
        .ok();
    let n1: u64 = number[8..].parse().unwrap();
    let n2: u64 = second["number"].as_str().unwrap()[8..].parse().unwrap();
    assert_eq!(n2, n1 + 1, "numbers follow each other");

    // Each rule names its field; a summary is then optional, without a patient it is not.
    let mut bad = patient.clone();
    bad["birth_date"] = json!("2999-01-01");
    let e = api.post("/v1/consultations", &doctor, body(bad)).await.expect(422, "birth_date_in_future");
    assert_eq!(e["details"]["field"], "patient.birth_date");
    let mut bad = patient.clone();
    bad["number"] = json!("12 34");
    api.post("/v1/consultations", &doctor, body(bad)).await.expect(422, "patient_number_invalid");
    let mut bad = patient.clone();
    bad["blood_type"] = json!("A");
    api.post("/v1/consultations", &doctor, body(bad)).await.expect(422, "invalid_field");
    let none = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "routine" });
    api.post("/v1/consultations", &doctor, none).await.expect(422, "text_required");

    // Lists: a masked name, sex and age; never the patient block.
    let list = api.get("/v1/consultations?limit=10", &doctor).await.ok();
    let row = list["items"].as_array().unwrap().iter().find(|i| i["id"] == c["id"]).unwrap().clone();
    assert!(row.get("patient").is_none() && row.get("summary").is_none());
    assert_eq!(row["patient_summary"]["masked_name"], "欧**明");
    assert_eq!(row["patient_summary"]["sex"], "male");
    assert!(row["patient_summary"]["age_years"].as_i64().unwrap() >= 68);
    // Found by the site's number (letter case aside); another doctor finds nothing of it.
    let found = api.get("/v1/consultations?patient_number=zy-20260042", &doctor).await.ok();
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["id"], c["id"]);
    let west = api.login("doctor-west").await;
    assert_eq!(api.get("/v1/consultations?patient_number=ZY-20260042", &west).await.ok()["total"], 0);

    // Nothing of the patient in the audit trail.
    let admin = api.login_as("admin", &srv.admin_password).await;
    let audit = api.get("/v1/audit?limit=200", &admin).await.ok().to_string();
    assert!(!audit.contains("欧阳小明") && !audit.contains("胸闷气短") && !audit.contains("ZY-20260042"));
    // Read back through the seal: the whole block, and nothing of the sealed form.
    let again = api.get(&format!("/v1/consultations/{}", c["id"].as_str().unwrap()), &doctor).await.ok();
    assert_eq!(again["patient"], c["patient"]);
    assert!(again.get("sealed").is_none());
    srv.stop().await;

    // At rest: not a byte of the name, the complaint or the number in the clear.
    let mut files = vec![dir.path().to_path_buf()];
    let mut checked = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        for secret in ["欧阳小明", "胸闷气短", "ZY-20260042", "高血压十年"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in the clear in {}",
                p.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 0);
}

/// Issue 15: signing an opinion asks for the password again; the server signs it with its
/// Ed25519 key; the API and `huizhen verify-report` (with the published keys) check it; an
/// opinion changed in the store afterwards no longer verifies.
#[tokio::test]
async fn a_signed_opinion_needs_the_password_verifies_and_a_changed_one_does_not() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let spec = api.login("cardiologist").await;
    let cardio = api.user_id(&coord, "cardiologist").await;
    let patient = json!({ "name": "王五", "sex": "male", "birth_date": "1950-01-01", "chief_complaint": "胸痛" });
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "routine", "patient": patient });
    let c = api.post("/v1/consultations", &doctor, body).await.ok();
    let accept = json!({ "specialists": [cardio], "start": in_minutes(5), "duration_minutes": 30 });
    let c = api.post(&path(&c, "accept"), &coord, accept).await.ok();
    let c = api.post(&path(&c, "start"), &spec, json!({})).await.ok();
    let id = c["id"].as_str().unwrap().to_owned();

    let text = "考虑急性冠脉综合征，建议转上级医院行冠脉造影。";
    let e = api
        .post(&path(&c, "opinion"), &spec, json!({ "text": text, "sign": true }))
        .await
        .expect(422, "password_required");
    assert_eq!(e["details"]["field"], "password");
    api.post(&path(&c, "opinion"), &spec, json!({ "text": text, "sign": true, "password": "wrong-password" }))
        .await
        .expect(403, "invalid_credentials");
    let unsigned = api.get(&format!("/v1/consultations/{id}"), &spec).await.ok();
    assert!(unsigned["opinions"].as_array().unwrap().is_empty(), "nothing signed with a wrong password");
    let body = json!({ "text": text, "sign": true, "password": huizhen_tests::DEMO_PASSWORD });
    let c = api.post(&path(&c, "opinion"), &spec, body).await.ok();
    let sig = &c["opinions"][0]["signature"];
    assert_eq!(sig["algorithm"], "ed25519");
    assert_eq!(sig["signer_name"], "李心内 主任医师");
    assert_eq!(sig["fingerprint"].as_str().unwrap().len(), 16);

    // The published key, open to anyone; the check, for those who may read the consultation.
    let keys = api.send("GET", "/v1/signing-keys", None, None).await.ok();
    assert_eq!(keys["keys"][0]["key_id"], sig["key_id"]);
    let v = api.get(&format!("/v1/consultations/{id}/verify"), &doctor).await.ok();
    assert_eq!((v["valid"].clone(), v["signed"].clone()), (json!(true), json!(1)));
    assert_eq!(v["opinions"][0]["verdict"], "valid");
    let other = api.login("doctor-west").await;
    api.get(&format!("/v1/consultations/{id}/verify"), &other).await.expect(404, "consultation_not_found");

    // The command line, offline, with a saved report and the published keys.
    let dir = tempfile::tempdir().unwrap();
    let report = api.get(&format!("/v1/consultations/{id}/report"), &doctor).await.ok();
    std::fs::write(dir.path().join("report.json"), report.to_string()).unwrap();
    std::fs::write(dir.path().join("keys.json"), keys.to_string()).unwrap();
    let verify = |file: &str| {
        std::process::Command::new(huizhen_tests::huizhen_binary())
            .args(["--data-dir", dir.path().to_str().unwrap(), "verify-report", "--report"])
            .arg(dir.path().join(file))
            .arg("--keys")
            .arg(dir.path().join("keys.json"))
            .output()
            .unwrap()
    };
    let ok = verify("report.json");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    let mut forged = report.clone();
    forged["consultation"]["opinions"][0]["text"] = json!("建议保守治疗。");
    std::fs::write(dir.path().join("forged.json"), forged.to_string()).unwrap();
    let bad = verify("forged.json");
    assert_eq!(bad.status.code(), Some(1), "{}", String::from_utf8_lossy(&bad.stdout));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("\"invalid\""));

    // Someone changes the stored opinion behind the server's back: the check says so.
    let cid = huizhen::ids::ConsultationId(id.clone());
    let mut stored = srv.state.store.get_consultation(&cid).await.unwrap().unwrap();
    stored.opinions[0].text = "建议保守治疗。".into();
    let version = stored.version;
    stored.version += 1;
    srv.state.store.commit_consultation(&stored, Some(version), &[]).await.unwrap();
    let v = api.get(&format!("/v1/consultations/{id}/verify"), &doctor).await.ok();
    assert_eq!(v["valid"], false);
    assert_eq!(v["opinions"][0]["verdict"], "invalid");
    srv.stop().await;
}

/// Issue 15: two-way referral. After the consultation the county doctor refers the patient
/// up; the city hospital's coordinator accepts with a date, records the admission and the
/// discharge, which sends a referral back down with instructions; the doctor receives it.
/// Each step is for its role only, in its state only; both sites list it; every step audited.
#[tokio::test]
async fn a_patient_is_referred_up_admitted_discharged_and_referred_back_down() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let spec = api.login("cardiologist").await;
    let cardio = api.user_id(&coord, "cardiologist").await;
    let c = request(&api, &doctor, "routine").await;
    let accept = json!({ "specialists": [cardio], "start": in_minutes(5), "duration_minutes": 30 });
    let c = api.post(&path(&c, "accept"), &coord, accept).await.ok();
    let id = c["id"].as_str().unwrap().to_owned();
    let sites = api.get("/v1/sites", &coord).await.ok();
    let city = sites["items"].as_array().unwrap().iter().find(|s| s["level"] == "city").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refer = json!({ "to_site": city, "department": "心内科", "reason": "冠脉造影及介入治疗", "urgency": "urgent" });
    let refs = format!("/v1/consultations/{id}/referrals");
    // Not before the consultation has taken place.
    api.post(&refs, &doctor, refer.clone()).await.expect(409, "invalid_state");
    api.post(&path(&c, "start"), &spec, json!({})).await.ok();
    api.post(&refs, &spec, refer.clone()).await.expect(403, "forbidden_role");
    let c = api.post(&refs, &doctor, refer.clone()).await;
    assert_eq!(c.status, 201, "{:?}", c.body);
    let c = c.ok();
    let up = c["referrals"][0].clone();
    assert_eq!((up["direction"].clone(), up["status"].clone()), (json!("up"), json!("requested")));
    api.post(&refs, &doctor, refer.clone()).await.expect(422, "referral_open");
    let step = |rid: &str, s: &str| format!("/v1/consultations/{id}/referrals/{rid}/{s}");
    let rid = up["id"].as_str().unwrap().to_owned();

    // Both sites list it; the lists carry no reason.
    let incoming = api.get("/v1/referrals?box=incoming", &coord).await.ok();
    assert_eq!(incoming["total"], 1);
    assert!(incoming["items"][0]["referral"].get("reason").is_none());
    assert_eq!(api.get("/v1/referrals?box=outgoing", &doctor).await.ok()["total"], 1);
    assert_eq!(api.get("/v1/referrals?box=incoming", &doctor).await.ok()["total"], 0);

    // Only the receiving site's coordinator decides; a date is needed.
    api.post(&step(&rid, "accept"), &doctor, json!({ "planned_date": "2031-01-05" }))
        .await
        .expect(403, "forbidden_role");
    api.post(&step(&rid, "accept"), &coord, json!({})).await.expect(422, "text_required");
    api.post(&step(&rid, "admit"), &coord, json!({})).await.expect(422, "referral_invalid_state");
    let c = api.post(&step(&rid, "accept"), &coord, json!({ "planned_date": "2031-01-05" })).await.ok();
    assert_eq!(c["referrals"][0]["planned_date"], "2031-01-05");
    api.post(&step(&rid, "decline"), &coord, json!({ "reason": "no bed" })).await.expect(422, "referral_invalid_state");
    api.post(&step(&rid, "admit"), &coord, json!({})).await.ok();
    api.post(&step(&rid, "discharge"), &coord, json!({})).await.expect(422, "text_required");
    let c = api
        .post(&step(&rid, "discharge"), &coord, json!({ "instructions": "阿司匹林 100mg qd，两周后县医院复查心电图" }))
        .await
        .ok();
    let down = c["referrals"][1].clone();
    assert_eq!((down["direction"].clone(), down["status"].clone()), (json!("down"), json!("requested")));
    assert_eq!(down["answers"], rid);
    assert_eq!(c["referrals"][0]["status"], "discharged");
    let did = down["id"].as_str().unwrap().to_owned();
    assert_eq!(api.get("/v1/referrals?box=incoming&status=requested", &doctor).await.ok()["total"], 1);
    api.post(&step(&did, "receive"), &coord, json!({})).await.expect(403, "forbidden_role");
    let c = api.post(&step(&did, "receive"), &doctor, json!({})).await.ok();
    assert_eq!(c["referrals"][1]["status"], "received");
    api.post(&step("nope", "admit"), &coord, json!({})).await.expect(404, "referral_not_found");
    api.post(&step(&did, "fly"), &coord, json!({})).await.expect(404, "no_such_endpoint");

    // Every step is audited, with the referral's id and never its text.
    let admin = api.login_as("admin", &srv.admin_password).await;
    let audit = api.get(&format!("/v1/audit?consultation={id}&limit=100"), &admin).await.ok().to_string();
    for a in ["referral_request", "referral_accept", "referral_admit", "referral_discharge", "referral_receive"] {
        assert!(audit.contains(&format!("consultation.{a}")), "{a}: {audit}");
    }
    assert!(!audit.contains("冠脉造影") && !audit.contains("阿司匹林"));
    srv.stop().await;
}
