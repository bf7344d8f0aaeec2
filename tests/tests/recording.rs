//! Recording through the real server with real webrtc-rs publishers sending real VP8 and Opus
//! (the ffmpeg test clip): playable files with the expected streams and durations, hashes that
//! match, survival of SIGKILL, grants, consent and its audit, access control, encryption.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use huizhen::auth::Grants;
use huizhen::ids::ConsultationId;
use huizhen_tests::media::{MediaPeer, Synth};
use huizhen_tests::{Process, TestServer, eventually, huizhen_binary};
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(60);

fn clip(who: &str) -> Vec<Synth> {
    vec![Synth::clip_video("cam", &format!("{who}/cam")), Synth::clip_audio("mic", &format!("{who}/mic"))]
}

fn grants(record: bool) -> Grants {
    Grants {
        can_publish: true,
        can_subscribe: true,
        can_publish_data: true,
        can_record: record,
        room_admin: record,
        hidden: false,
        audience: false,
    }
}

fn token(srv: &TestServer, room: &str, who: &str, record: bool) -> String {
    srv.state.keys.room(who, who, &ConsultationId(room.into()), grants(record), 600, Timestamp::now()).unwrap().0
}

fn messages(p: &MediaPeer, kind: &str) -> Vec<Value> {
    p.snapshot(|s| s.messages.iter().filter(|m| m["type"] == kind).cloned().collect())
}

fn acked(p: &MediaPeer, id: &str) -> bool {
    p.snapshot(|s| s.messages.iter().any(|m| m["type"] == "ack" && m["id"] == id))
}

fn error_for(p: &MediaPeer, id: &str) -> Option<String> {
    p.snapshot(|s| s.errors.iter().find(|e| e["id"] == id).map(|e| e["code"].as_str().unwrap_or("").to_owned()))
}

/// Audio packets `p` received from `from`: 50 a second, so a clock made of media.
fn audio_from(p: &MediaPeer, from: &str) -> u64 {
    p.packets_of(&format!("{from}/mic"))
}

/// Waits until `seconds` more of `from`'s audio reached `p`: the media itself says time passed.
async fn media_seconds(p: &MediaPeer, from: &str, seconds: u64) {
    let want = audio_from(p, from) + seconds * 50;
    eventually(&format!("{seconds} s of {from}'s audio"), Duration::from_secs(seconds * 3 + 30), || async {
        audio_from(p, from) >= want
    })
    .await;
}

struct Probe {
    format_duration: f64,
    /// (codec_type, codec_name, width, duration from first to last packet)
    streams: Vec<(String, String, Option<u64>, f64)>,
}

fn ffprobe(file: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=index,codec_type,codec_name,width",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .expect("ffprobe (scripts/test.sh installs ffmpeg)");
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pk = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=stream_index,pts_time,duration_time", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    let mut span: std::collections::HashMap<u64, (f64, f64)> = Default::default();
    for line in String::from_utf8_lossy(&pk.stdout).lines() {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(i), Some(t)) = (f.first().and_then(|x| x.parse().ok()), f.get(1).and_then(|x| x.parse::<f64>().ok()))
        else {
            continue;
        };
        let d = f.get(2).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
        let e = span.entry(i).or_insert((t, t + d));
        e.0 = e.0.min(t);
        e.1 = e.1.max(t + d);
    }
    let streams = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let i = s["index"].as_u64().unwrap();
            let (a, b) = span.get(&i).copied().unwrap_or((0.0, 0.0));
            (
                s["codec_type"].as_str().unwrap().to_owned(),
                s["codec_name"].as_str().unwrap().to_owned(),
                s["width"].as_u64(),
                b - a,
            )
        })
        .collect();
    Probe { format_duration: v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0), streams }
}

/// Decodes every frame: a playable file decodes without a single decoding error, and within
/// each stream the packets' timestamps strictly increase.
fn decodes_cleanly(file: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // ffmpeg's null output re-times variable-rate video onto a fixed rate and says so when two
    // frames land on one tick: about its own output, not the file (checked below instead).
    let errors: Vec<&str> =
        stderr.lines().filter(|l| !l.contains("non monotonically increasing dts to muxer")).collect();
    assert!(
        out.status.success() && errors.is_empty(),
        "{} does not decode cleanly: {}",
        file.display(),
        errors.join("\n")
    );
    let pk = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=stream_index,pts", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    let mut last: std::collections::HashMap<String, i64> = Default::default();
    for line in String::from_utf8_lossy(&pk.stdout).lines() {
        let Some((stream, pts)) = line.split_once(',') else { continue };
        let Ok(pts) = pts.trim().parse::<i64>() else { continue };
        if let Some(prev) = last.insert(stream.to_owned(), pts) {
            assert!(pts > prev, "{}: stream {stream} goes from {prev} to {pts}", file.display());
        }
    }
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn recording_dir(data: &Path, room: &str, id: &str) -> PathBuf {
    data.join("recordings").join(room).join(id)
}

fn manifest(dir: &Path) -> Option<Value> {
    std::fs::read(dir.join("manifest.json")).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

async fn recording_started(host: &MediaPeer) -> String {
    host.send(json!({ "type": "start_recording", "id": "rec-start" }));
    eventually("the recording starts and everyone is told", WAIT, || async {
        acked(host, "rec-start") && messages(host, "recording").iter().any(|m| m["active"] == true)
    })
    .await;
    messages(host, "recording").iter().rev().find(|m| m["active"] == true).unwrap()["recording"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twenty_second_call_is_recorded_into_playable_synchronised_files() {
    let srv = TestServer::start().await;
    let data = srv.state.config.data_dir.clone();
    let alice = MediaPeer::join(&srv.ws_url(&token(&srv, "rec20", "alice", true)), clip("alice")).await;
    let bob = MediaPeer::join(&srv.ws_url(&token(&srv, "rec20", "bob", false)), clip("bob")).await;
    eventually("both see and hear each other", WAIT, || async {
        audio_from(&alice, "bob") >= 50 && audio_from(&bob, "alice") >= 50 && alice.packets_of("bob/cam") > 0
    })
    .await;
    let id = recording_started(&alice).await;
    let started = Instant::now();
    // Everyone is shown the state, the participant who did not start it included.
    eventually("bob is told", WAIT, || async { messages(&bob, "recording").iter().any(|m| m["active"] == true) }).await;
    media_seconds(&alice, "bob", 20).await;
    alice.send(json!({ "type": "stop_recording", "id": "rec-stop" }));
    eventually("the stop is acknowledged", WAIT, || async { acked(&alice, "rec-stop") }).await;
    let span = started.elapsed().as_secs_f64();
    let dir = recording_dir(&data, "rec20", &id);
    eventually("the recording is finalised", WAIT, || async { manifest(&dir).is_some() }).await;
    let m = manifest(&dir).unwrap();
    assert_eq!(m["recovered"], false);
    assert_eq!(m["participants"], json!(["alice", "bob"]));
    assert!(m["problems"].as_array().unwrap().is_empty(), "{:?}", m["problems"]);
    let files = m["files"].as_array().unwrap();
    for f in files {
        let path = dir.join("files").join(f["name"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(sha256_hex(&bytes), f["sha256"], "{} hash", f["name"]);
        assert_eq!(bytes.len() as u64, f["bytes"].as_u64().unwrap());
        decodes_cleanly(&path);
    }
    for who in ["alice", "bob"] {
        let f = files.iter().find(|f| f["name"] == format!("{who}.webm")).unwrap();
        let p = ffprobe(&dir.join("files").join(format!("{who}.webm")));
        let kinds: Vec<(&str, &str)> = p.streams.iter().map(|s| (s.0.as_str(), s.1.as_str())).collect();
        assert_eq!(kinds, vec![("audio", "opus"), ("video", "vp8")], "{who}");
        assert_eq!(p.streams[1].2, Some(640));
        for s in &p.streams {
            assert!(
                (s.3 - span).abs() <= span * 0.05,
                "{who} {} stream lasts {:.2} s; the recording ran {span:.2} s",
                s.0,
                s.3
            );
        }
        assert!((p.format_duration - span).abs() <= span * 0.05, "{who}: {:.2} s vs {span:.2} s", p.format_duration);
        // Audio and video start together (aligned by the publisher's sender reports).
        let tracks = f["tracks"].as_array().unwrap();
        let start = |k: &str| {
            tracks.iter().find(|t| t["kind"] == k).unwrap()["start"].as_str().unwrap().parse::<Timestamp>().unwrap()
        };
        let skew = (start("video") - start("audio")).get_milliseconds().abs();
        assert!(skew < 1200, "{who}: video starts {skew} ms away from audio (at most one keyframe interval)");
    }
    // ffmpeg is installed here, so the composite is made too.
    assert!(files.iter().any(|f| f["kind"] == "composite"), "no composite: {:?}", m["problems"]);
    alice.close().await;
    bob.close().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_recording_leaves_a_playable_recording_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Process::serve(dir.path(), &[]).unwrap();
    let mint = |who: &str, record: bool| {
        let mut cmd = Command::new(huizhen_binary());
        cmd.args(["token", "--room", "crash", "--identity", who, "--publish", "--subscribe", "--data"]);
        if record {
            cmd.args(["--admin", "--record"]);
        }
        let out = cmd.arg("--data-dir").arg(dir.path()).env("HUIZHEN_LOG", "warn").output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let url = |t: &str| format!("ws://{}/v1/rtc?token={t}", p.addr);
    let alice = MediaPeer::join(&url(&mint("alice", true)), clip("alice")).await;
    let bob = MediaPeer::join(&url(&mint("bob", false)), clip("bob")).await;
    eventually("media flows", WAIT, || async { audio_from(&alice, "bob") >= 50 && audio_from(&bob, "alice") >= 50 })
        .await;
    let id = recording_started(&alice).await;
    let started = Instant::now();
    media_seconds(&alice, "bob", 8).await;
    let span = started.elapsed().as_secs_f64();
    p.kill9();
    alice.close().await;
    bob.close().await;

    let rec = recording_dir(dir.path(), "crash", &id);
    assert!(manifest(&rec).is_none(), "nothing was finalised before the crash");
    let _p = Process::serve(dir.path(), &[]).unwrap();
    eventually("start-up finalises the recording", WAIT, || async { manifest(&rec).is_some() }).await;
    let m = manifest(&rec).unwrap();
    assert_eq!(m["recovered"], true);
    for who in ["alice", "bob"] {
        let f = m["files"].as_array().unwrap().iter().find(|f| f["name"] == format!("{who}.webm")).unwrap().clone();
        let path = rec.join("files").join(format!("{who}.webm"));
        assert_eq!(sha256_hex(&std::fs::read(&path).unwrap()), f["sha256"]);
        decodes_cleanly(&path);
        let probe = ffprobe(&path);
        let audio = probe.streams.iter().find(|s| s.0 == "audio").unwrap().3;
        let video = probe.streams.iter().find(|s| s.0 == "video").unwrap().3;
        // All but at most the last two seconds (captures are made durable every second).
        assert!(audio >= span - 2.0, "{who}: {audio:.2} s of audio from {span:.2} s recorded before the kill");
        // Video begins at its first keyframe (at most one second in).
        assert!(video >= span - 3.0, "{who}: {video:.2} s of video from {span:.2} s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_needs_the_grant_consent_is_audited_and_only_participants_download() {
    let srv = TestServer::start().await;
    let api = srv.api();
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let west = api.user_id(&coord, "doctor-west").await;
    // An emergency is live at once and its requester hosts (and may record: policy allowed).
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "emergency", "summary": "胸痛", "recording": "allowed" });
    let c = api.post("/v1/consultations", &doctor, body).await.ok();
    let cid = c["id"].as_str().unwrap().to_owned();
    api.post(&format!("/v1/consultations/{cid}/invite"), &coord, json!({ "participants": [west] })).await.ok();
    let join = |who: String| {
        let api = api.clone();
        let cid = cid.clone();
        async move { api.post(&format!("/v1/consultations/{cid}/join"), &who, json!({})).await.ok() }
    };
    let west_token = api.login("doctor-west").await;
    let host = join(doctor.clone()).await;
    let guest = join(west_token.clone()).await;
    assert_eq!(host["grants"]["can_record"], true);
    assert_eq!(guest["grants"]["can_record"], false);
    let host_peer = MediaPeer::join(&srv.ws_url(host["token"].as_str().unwrap()), clip("east")).await;
    let guest_peer = MediaPeer::join(&srv.ws_url(guest["token"].as_str().unwrap()), clip("west")).await;
    eventually("media flows", WAIT, || async { audio_from(&host_peer, &west) >= 50 }).await;

    // Without the grant: refused.
    guest_peer.send(json!({ "type": "start_recording", "id": "nope" }));
    eventually("a participant without the record grant is refused", WAIT, || async {
        error_for(&guest_peer, "nope").as_deref() == Some("forbidden")
    })
    .await;
    let id = recording_started(&host_peer).await;
    // The guest declines: the host is told, the guest's media is left out, all is audited.
    guest_peer.send(json!({ "type": "recording_consent", "id": "c1", "consent": false }));
    eventually("the host hears of the decline and the state shows the exclusion", WAIT, || async {
        messages(&host_peer, "recording_consent").iter().any(|m| m["consent"] == false && m["participant"] == west)
            && messages(&guest_peer, "recording").iter().any(|m| m["excluded"] == json!([west.clone()]))
    })
    .await;
    media_seconds(&host_peer, &west, 3).await;
    host_peer.send(json!({ "type": "stop_recording", "id": "stop" }));
    eventually("stopped", WAIT, || async { acked(&host_peer, "stop") }).await;

    let admin = api.login_as("admin", &srv.admin_password).await;
    let list_path = format!("/v1/consultations/{cid}/recordings");
    let listed = {
        let mut listed = Value::Null;
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            listed = api.get(&list_path, &doctor).await.ok();
            if listed["items"][0]["manifest"].is_object() {
                break;
            }
            tokio::task::yield_now().await;
        }
        listed
    };
    let m = &listed["items"][0]["manifest"];
    assert_eq!(listed["items"][0]["id"], id.as_str());
    let doctor_id = api.get("/v1/me", &doctor).await.ok()["id"].clone();
    assert_eq!(m["participants"], json!([doctor_id]), "the guest declined: only the host's media is kept");
    assert_eq!(m["excluded"], json!([west]));
    let name = m["files"][0]["name"].as_str().unwrap().to_owned();
    let file_path = format!("/v1/consultations/{cid}/recordings/{id}/files/{name}");
    let got = reqwest::Client::new().get(srv.url(&file_path)).bearer_auth(&doctor).send().await.unwrap();
    assert_eq!(got.status(), 200);
    let bytes = got.bytes().await.unwrap();
    assert_eq!(sha256_hex(&bytes), m["files"][0]["sha256"]);
    // A download link (what the browser follows to stream a large file to disk): no header
    // needed, the same bytes; a forged or altered link is refused.
    let link = api.post(&format!("{file_path}/link"), &doctor, json!({})).await.ok();
    let url = link["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/v1/recording-links/"), "{link}");
    let got = reqwest::get(srv.url(&url)).await.unwrap();
    assert_eq!(got.status(), 200);
    assert!(got.headers()[reqwest::header::CONTENT_DISPOSITION].to_str().unwrap().starts_with("attachment"));
    assert_eq!(sha256_hex(&got.bytes().await.unwrap()), m["files"][0]["sha256"]);
    api.send("GET", &format!("{url}x"), None, None).await.expect(401, "invalid_link");
    api.post(&format!("/v1/consultations/{cid}/recordings/{id}/files/nothing.webm/link"), &doctor, json!({}))
        .await
        .expect(404, "recording_not_found");
    // A non-participant (another county doctor) is refused, even the list, and gets no link.
    let south = api.login("doctor-south").await;
    api.get(&list_path, &south).await.expect(403, "not_participant");
    api.get(&file_path, &south).await.expect(403, "not_participant");
    api.post(&format!("{file_path}/link"), &south, json!({})).await.expect(403, "not_participant");
    // Signing out everywhere voids links already handed out.
    let link = api.post(&format!("{file_path}/link"), &doctor, json!({})).await.ok();
    assert_eq!(api.send("POST", "/v1/auth/logout", Some(&doctor), None).await.status, 204);
    api.send("GET", link["url"].as_str().unwrap(), None, None).await.expect(401, "session_revoked");
    let doctor = api.login("doctor-east").await;
    // Only an admin deletes.
    api.send("DELETE", &format!("/v1/consultations/{cid}/recordings/{id}"), Some(&doctor), None)
        .await
        .expect(403, "forbidden_role");
    let del = api.send("DELETE", &format!("/v1/consultations/{cid}/recordings/{id}"), Some(&admin), None).await;
    assert_eq!(del.status, 204);
    api.get(&file_path, &doctor).await.expect(404, "recording_not_found");

    let expected = [
        ("room.recording_start", doctor_id.as_str().unwrap()),
        ("room.recording_decline", west.as_str()),
        ("room.recording_stop", doctor_id.as_str().unwrap()),
        ("recording.list", doctor_id.as_str().unwrap()),
        ("recording.download", doctor_id.as_str().unwrap()),
        ("recording.link", doctor_id.as_str().unwrap()),
        ("recording.access_denied", ""),
        ("recording.delete", ""),
    ];
    // The audit sink writes in order but after the request has been answered: wait for it.
    let audit_path = format!("/v1/audit?consultation={cid}&limit=200");
    let missing = || async {
        let audit = api.get(&audit_path, &admin).await.ok();
        let actions: Vec<(String, String)> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["action"].as_str().unwrap().to_owned(), e["actor"].as_str().unwrap_or("").to_owned()))
            .collect();
        let missing: Vec<String> = expected
            .iter()
            .filter(|(action, actor)| !actions.iter().any(|(a, who)| a == action && (actor.is_empty() || who == actor)))
            .map(|(action, actor)| format!("{action} by {actor}"))
            .collect();
        (missing, actions)
    };
    eventually("the audit holds every recording action", WAIT, || async { missing().await.0.is_empty() }).await;
    let (gaps, actions) = missing().await;
    assert!(gaps.is_empty(), "audit lacks {gaps:?}: {actions:?}");
    host_peer.close().await;
    guest_peer.close().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_recordings_hide_the_media_and_decrypt_to_the_manifest_bytes() {
    let srv = TestServer::start_with(|c| c.recording.encryption_key = "5a".repeat(32)).await;
    let data = srv.state.config.data_dir.clone();
    let alice = MediaPeer::join(&srv.ws_url(&token(&srv, "sealed", "alice", true)), clip("alice")).await;
    eventually("alice publishes", WAIT, || async { alice.snapshot(|s| s.publish_connected) }).await;
    let id = recording_started(&alice).await;
    let dir = recording_dir(&data, "sealed", &id);
    // Captures are sealed as they are written, not only the finished files.
    eventually("captures are being written", WAIT, || async {
        std::fs::read_dir(dir.join("captures"))
            .map(|d| d.flatten().any(|e| e.metadata().map(|m| m.len() > 20_000).unwrap_or(false)))
            .unwrap_or(false)
    })
    .await;
    // Pieces of the clip's keyframes (every 30th frame): the first frame captured is one of
    // them, so the media is on disk in some form; it must not be readable.
    let needles: Vec<Vec<u8>> =
        huizhen_tests::clip::load().video.iter().step_by(30).map(|f| f[100..164].to_vec()).collect();
    let contains = |b: &[u8]| needles.iter().any(|n| b.windows(n.len()).any(|w| w == n.as_slice()));
    let found_in = |path: &Path| std::fs::read(path).map(|b| contains(&b)).unwrap_or(false);
    for e in std::fs::read_dir(dir.join("captures")).unwrap().flatten() {
        assert!(!found_in(&e.path()), "plaintext media in capture {}", e.path().display());
    }
    alice.send(json!({ "type": "stop_recording", "id": "stop" }));
    eventually("finalised", WAIT, || async { manifest(&dir).is_some() }).await;
    let m = manifest(&dir).unwrap();
    assert_eq!(m["encrypted"], true);
    let f = &m["files"][0];
    let stored = dir.join("files").join(f["name"].as_str().unwrap());
    let raw = std::fs::read(&stored).unwrap();
    assert!(!found_in(&stored), "plaintext media in the stored file");
    assert_ne!(&raw[..4], &[0x1A, 0x45, 0xDF, 0xA3], "the stored file is not a readable WebM");
    // Served (decrypted) bytes are the file the manifest describes, with the media in it.
    let (mut reader, entry) = srv.state.recorder.open("sealed", &id, f["name"].as_str().unwrap()).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut plain).unwrap();
    assert_eq!(sha256_hex(&plain), entry.sha256);
    assert_eq!(&plain[..4], &[0x1A, 0x45, 0xDF, 0xA3]);
    assert!(contains(&plain), "the decrypted file holds the media the publisher sent");
    let copy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(copy.path(), &plain).unwrap();
    decodes_cleanly(copy.path());
    alice.close().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_recording_tells_the_host_and_keeps_what_was_captured() {
    // The size limit takes the same path as a full disk (a failed write).
    let srv = TestServer::start_with(|c| c.recording.max_bytes = 150_000).await;
    let data = srv.state.config.data_dir.clone();
    let alice = MediaPeer::join(&srv.ws_url(&token(&srv, "full", "alice", true)), clip("alice")).await;
    let bob = MediaPeer::join(&srv.ws_url(&token(&srv, "full", "bob", false)), clip("bob")).await;
    eventually("media flows", WAIT, || async { audio_from(&alice, "bob") >= 50 }).await;
    let id = recording_started(&alice).await;
    eventually("the host is told the recording stopped, and everyone sees it off", WAIT, || async {
        messages(&alice, "recording_failed").iter().any(|m| m["code"] == "disk_full")
            && messages(&bob, "recording").last().is_some_and(|m| m["active"] == false)
    })
    .await;
    assert!(messages(&bob, "recording_failed").is_empty(), "only hosts get the reason");
    let dir = recording_dir(&data, "full", &id);
    eventually("what was captured is finalised", WAIT, || async { manifest(&dir).is_some() }).await;
    let m = manifest(&dir).unwrap();
    assert!(!m["files"].as_array().unwrap().is_empty());
    for f in m["files"].as_array().unwrap() {
        decodes_cleanly(&dir.join("files").join(f["name"].as_str().unwrap()));
    }
    // It can be started again once there is room (here: the limit is per recording).
    alice.send(json!({ "type": "start_recording", "id": "again" }));
    eventually("a new recording starts", WAIT, || async { acked(&alice, "again") }).await;
    alice.close().await;
    bob.close().await;
    srv.stop().await;
}
