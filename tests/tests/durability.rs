//! Data must outlive the process: the embedded store across SIGKILL and restart of the real
//! binary, and the Redis store across a Redis outage (503, then recovery by itself).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use huizhen_tests::{Api, Process, RedisServer, TestServer, eventually};
use serde_json::json;

#[tokio::test]
async fn embedded_store_survives_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::serve(dir.path(), &["--demo"]).unwrap();
    let admin_pw = p.admin_password().expect("first start prints the admin password");
    let api = Api::new(p.addr);
    let doctor = api.login("doctor-east").await;
    let body = json!({ "kind": "consultation", "specialty": "neurology", "urgency": "urgent", "summary": "s" });
    let c = api.post("/v1/consultations", &doctor, body).await.ok();
    // The first start's password opens nothing but its own replacement (issue 14).
    let admin = api.login_as("admin", &admin_pw).await;
    assert_eq!(api.get("/v1/me", &admin).await.ok()["must_change_password"], true);
    api.get("/v1/sites", &admin).await.expect(403, "password_change_required");
    let same = json!({ "old_password": admin_pw, "new_password": admin_pw });
    api.post("/v1/me/password", &admin, same).await.expect(422, "password_unchanged");
    let own = format!("{admin_pw}-own");
    let body = json!({ "old_password": admin_pw, "new_password": own });
    let changed = api.post("/v1/me/password", &admin, body).await.ok();
    assert_eq!(changed["user"]["must_change_password"], false);
    let admin_pw = own;
    let admin = changed["access_token"].as_str().unwrap().to_owned();
    let site = api.post("/v1/sites", &admin, json!({ "name": "新站点", "level": "county" })).await.ok();
    // The answer came back, so the commit is durable: kill without any chance to flush.
    p.kill9();

    let mut p = Process::serve(dir.path(), &[]).unwrap();
    assert_eq!(p.admin_password(), None, "the admin password is printed on the first start only");
    let api = Api::new(p.addr);
    let doctor = api.login("doctor-east").await;
    let got = api.get(&format!("/v1/consultations/{}", c["id"].as_str().unwrap()), &doctor).await.ok();
    assert_eq!(got, c);
    let admin = api.login_as("admin", &admin_pw).await;
    let got = api.get(&format!("/v1/sites/{}", site["id"].as_str().unwrap()), &admin).await.ok();
    assert_eq!(got, site);
    // Tokens signed before the crash still verify: the key is kept in the data dir.
    api.get("/v1/me", &admin).await.ok();
    // SIGTERM is a clean shutdown.
    assert!(p.terminate().success());
}

#[tokio::test]
async fn redis_outage_answers_503_then_recovers() {
    let mut redis = RedisServer::start_persistent().unwrap();
    let url = redis.url();
    let srv = TestServer::start_with(move |c| c.store = url).await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let body = json!({ "kind": "consultation", "specialty": "neurology", "urgency": "routine", "summary": "s" });
    let c = api.post("/v1/consultations", &doctor, body.clone()).await.ok();

    redis.stop();
    api.get("/v1/consultations", &doctor).await.expect(503, "store_unavailable");
    api.post("/v1/consultations", &doctor, body.clone()).await.expect(503, "store_unavailable");
    let ready = api.send("GET", "/readyz", None, None).await;
    assert_eq!((ready.status, ready.code()), (503, "store_unavailable"));
    assert_eq!(api.send("GET", "/healthz", None, None).await.status, 200, "the process itself is fine");

    redis.restart().unwrap();
    eventually("readyz recovers", Duration::from_secs(20), || async {
        api.send("GET", "/readyz", None, None).await.status == 200
    })
    .await;
    let listed = api.get("/v1/consultations", &doctor).await.ok();
    assert_eq!(listed["total"], 1, "the refused request wrote nothing; the earlier one is kept");
    assert_eq!(listed["items"][0]["id"], c["id"]);
    api.post("/v1/consultations", &doctor, body).await.ok();
    srv.stop().await;
}

/// `huizhen reset-password` run with the given data dir: (success, stdout, stderr).
fn reset_password(dir: &std::path::Path, username: &str) -> (bool, String, String) {
    let out = std::process::Command::new(huizhen_tests::huizhen_binary())
        .args(["reset-password", "--username", username, "--data-dir"])
        .arg(dir)
        .env("HUIZHEN_LOG", "error")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn a_lost_admin_password_is_reset_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::serve(dir.path(), &[]).unwrap();
    let old_pw = p.admin_password().unwrap();
    let api = Api::new(p.addr);
    let old_session = api.login_as("admin", &old_pw).await;

    // The embedded store belongs to the running server: the reset says so and changes nothing.
    let (ok, _, err) = reset_password(dir.path(), "admin");
    assert!(!ok && err.contains("stop it first"), "{err}");
    api.get("/v1/me", &old_session).await.ok();

    assert!(p.terminate().success());
    let (ok, _, err) = reset_password(dir.path(), "nobody");
    assert!(!ok && err.contains("user_not_found"), "{err}");
    let (ok, out, err) = reset_password(dir.path(), "Admin");
    assert!(ok, "{err}");
    let new_pw = out.lines().find_map(|l| l.trim().strip_prefix("new password: ")).unwrap().to_owned();
    assert_ne!(new_pw, old_pw);
    assert!(!err.contains(&new_pw), "the password is never logged");

    let mut p = Process::serve(dir.path(), &[]).unwrap();
    let api = Api::new(p.addr);
    api.get("/v1/me", &old_session).await.expect(401, "session_revoked");
    api.login_full("admin", &old_pw).await.expect(401, "invalid_credentials");
    let admin = api.login_as("admin", &new_pw).await;
    // A password reset from the command line is a one-time one too.
    api.get("/v1/audit", &admin).await.expect(403, "password_change_required");
    let body = json!({ "old_password": new_pw, "new_password": format!("{new_pw}-own") });
    let admin = api.post("/v1/me/password", &admin, body).await.ok()["access_token"].as_str().unwrap().to_owned();
    let audit = api.get("/v1/audit?action=admin.password_reset", &admin).await.ok();
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["actor"], "system:cli");
    assert!(p.terminate().success());
}

/// An empty `secret.key` (what a crash on the very first start used to leave) must stop the
/// server, not become the HS256 key: with an empty key anyone could sign an admin session.
#[test]
fn an_empty_signing_key_file_stops_the_server() {
    for content in ["", "\n", "too-short-to-be-a-key"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.key"), content).unwrap();
        for args in
            [&["serve", "--listen", "127.0.0.1:0"][..], &["token", "--room", "r1", "--identity", "x", "--admin"]]
        {
            let out = std::process::Command::new(huizhen_tests::huizhen_binary())
                .args(args)
                .arg("--data-dir")
                .arg(dir.path())
                .env("HUIZHEN_LOG", "error")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} with {content:?} ran: {}", String::from_utf8_lossy(&out.stdout));
            assert!(err.contains("secret.key") && err.contains("at least 32"), "{args:?}: {err}");
            assert!(out.stdout.is_empty(), "nothing is signed with a short key");
        }
        assert_eq!(std::fs::read_to_string(dir.path().join("secret.key")).unwrap(), content, "left for the operator");
    }
}
