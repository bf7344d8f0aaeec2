//! The soak: a real server process on a real Redis, with consultations coming and going for as
//! long as asked. Each round a county doctor opens an emergency (live at once, recording
//! allowed), a coordinator invites a specialist and another site, three webrtc-rs peers join
//! and publish the test clip, the host records a few seconds, one peer drops and rejoins (the
//! others' subscribe connections are renegotiated each time), and the host ends it. Redis is
//! killed and restarted (append-only file, fsync always) during the rounds it is asked to.
//!
//! After every round, with the server idle, it samples the server's RSS, open file descriptors,
//! threads, async tasks and room gauges: a leak shows as a rise from round to round. At the end
//! every consultation the soak made must be there, ended, with its recording complete.
//!
//! `huizhen-soak --minutes 60` is the hour; `tests/tests/soak.rs` runs a few minutes in the suite.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::media::{MediaPeer, Synth};
use crate::{Api, Process, RedisServer, Resp};

#[derive(Clone, Debug)]
pub struct Options {
    /// Stop starting rounds after this long.
    pub duration: Duration,
    /// At least this many rounds, however long they take.
    pub min_rounds: u32,
    /// Seconds of each round's recording (counted in received audio, not on a clock).
    pub record_secs: u64,
    /// How many times Redis is killed and restarted, spread evenly over the run.
    pub redis_restarts: u32,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Sample {
    /// Seconds since the soak started.
    pub at_secs: f64,
    pub round: u32,
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
    pub tasks: i64,
    pub rooms: i64,
    pub ws_connections: i64,
    pub media_connections: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub rounds: u32,
    pub seconds: f64,
    pub samples: Vec<Sample>,
    pub consultations: Vec<String>,
    pub recordings_complete: u32,
    pub redis_restarts: u32,
    /// API calls answered 503 while Redis was down, then retried until they succeeded.
    pub retried_calls: u32,
    /// Subscribe offers the peers received (joins, leaves and rejoins renegotiate them).
    pub subscribe_offers: u64,
    /// What went missing: an empty list is the soak's pass.
    pub lost: Vec<String>,
}

const WAIT: Duration = Duration::from_secs(60);

/// Runs the soak against a fresh server process and Redis.
pub async fn run(o: &Options) -> Result<Report> {
    let mut redis = RedisServer::start_persistent()?;
    let dir = tempfile::tempdir()?;
    let url = redis.url();
    let server = Process::serve_env(
        dir.path(),
        &["--demo"],
        &[("HUIZHEN_STORE", url.as_str()), ("HUIZHEN_LIMITS__HTTP_REQUESTS_PER_SECOND", "0")],
    )?;
    let pid = server.child.id();
    let api = Api::new(server.addr);
    let started = Instant::now();
    let mut report = Report::default();
    let mut s = Soak {
        api: api.clone(),
        doctor: String::new(),
        coordinator: String::new(),
        cardiologist: String::new(),
        west: String::new(),
        signed_in: Instant::now(),
        retried: 0,
    };
    s.sign_in().await;
    let ids = Ids {
        doctor: api.user_id(&s.coordinator, "doctor-east").await,
        cardiologist: api.user_id(&s.coordinator, "cardiologist").await,
        west: api.user_id(&s.coordinator, "doctor-west").await,
    };
    report.samples.push(sample(pid, &api, 0, started).await?);
    // Restarts fall in rounds spread over the expected count (at least min_rounds).
    let mut round = 0u32;
    let mut restart_at = Vec::new();
    while started.elapsed() < o.duration || round < o.min_rounds {
        round += 1;
        if restart_at.is_empty() && round == 2 {
            // Rounds take about the same time: place the restarts from the first round's length.
            let per_round = started.elapsed().as_secs_f64().max(1.0);
            let expected = ((o.duration.as_secs_f64() / per_round) as u32).max(o.min_rounds).max(2);
            restart_at = (1..=o.redis_restarts).map(|k| 1 + k * expected / (o.redis_restarts + 1)).collect();
        }
        let restart = restart_at.contains(&round);
        // Sessions last `auth.session_ttl_secs` (15 min): sign in again well before, as the
        // web client refreshes.
        if s.signed_in.elapsed() > Duration::from_secs(300) {
            s.sign_in().await;
        }
        let (id, offers) = match s.round(round, &ids, o.record_secs, restart.then_some(&mut redis)).await {
            Ok(r) => r,
            Err(e) => {
                // The figures so far are kept; the failure is what the report leads with.
                report.lost.push(format!("round {round} failed: {e:#}"));
                report.samples.push(sample(pid, &api, round, started).await?);
                break;
            }
        };
        report.redis_restarts += u32::from(restart);
        report.subscribe_offers += offers;
        report.consultations.push(id);
        report.samples.push(sample(pid, &api, round, started).await?);
    }
    report.rounds = round;
    report.retried_calls = s.retried;
    s.sign_in().await;
    // Nothing lost: every consultation ended, with one complete recording.
    for id in &report.consultations {
        let c = s.call("GET", &format!("/v1/consultations/{id}"), &s.doctor.clone(), None).await?;
        if c["status"] != "ended" {
            report.lost.push(format!("{id}: status {}", c["status"]));
        }
        let recs = s.call("GET", &format!("/v1/consultations/{id}/recordings"), &s.doctor.clone(), None).await?;
        let items = recs["items"].as_array().cloned().unwrap_or_default();
        let complete = items.iter().filter(|r| r["state"] == "complete" && r["manifest"]["files"].is_array()).count();
        if complete == 1 {
            report.recordings_complete += 1;
        } else {
            report.lost.push(format!("{id}: {complete} complete recordings of {}", items.len()));
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    drop(server);
    Ok(report)
}

struct Soak {
    api: Api,
    doctor: String,
    coordinator: String,
    cardiologist: String,
    west: String,
    signed_in: Instant,
    retried: u32,
}

/// The accounts' user ids: with `/join` tokens a participant's room id is its user id, so
/// its microphone is the room track `{user id}/mic`.
struct Ids {
    doctor: String,
    cardiologist: String,
    west: String,
}

fn mic(user: &str) -> String {
    format!("{user}/mic")
}

impl Soak {
    async fn sign_in(&mut self) {
        self.doctor = self.api.login("doctor-east").await;
        self.coordinator = self.api.login("coordinator").await;
        self.cardiologist = self.api.login("cardiologist").await;
        self.west = self.api.login("doctor-west").await;
        self.signed_in = Instant::now();
    }

    /// An API call that must succeed; a 503 (the store is away) is retried for up to 30 s.
    async fn call(&mut self, method: &str, path: &str, token: &str, body: Option<Value>) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r: Resp = self.api.send(method, path, Some(token), body.clone()).await;
            if (200..300).contains(&r.status) {
                return Ok(r.body);
            }
            if r.status != 503 || Instant::now() > deadline {
                bail!("{method} {path}: {} {}", r.status, r.body);
            }
            self.retried += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn peer(&mut self, id: &str, token: &str, who: &str) -> Result<MediaPeer> {
        let j = self.call("POST", &format!("/v1/consultations/{id}/join"), token, Some(json!({}))).await?;
        let t = j["token"].as_str().context("join gives a token")?;
        let url = format!("ws://{}/v1/rtc?token={t}", self.api.base.trim_start_matches("http://"));
        Ok(MediaPeer::join(
            &url,
            vec![Synth::clip_video("cam", &format!("{who}/cam")), Synth::clip_audio("mic", &format!("{who}/mic"))],
        )
        .await)
    }

    /// One consultation from request to end; returns its id and the subscribe offers seen.
    async fn round(
        &mut self,
        n: u32,
        ids: &Ids,
        record_secs: u64,
        redis: Option<&mut RedisServer>,
    ) -> Result<(String, u64)> {
        let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "emergency",
            "summary": format!("soak round {n}"), "recording": "allowed" });
        let doctor = self.doctor.clone();
        let c = self.call("POST", "/v1/consultations", &doctor, Some(body)).await?;
        let id = c["id"].as_str().context("consultation id")?.to_owned();
        let coordinator = self.coordinator.clone();
        let invite = json!({ "participants": [ids.cardiologist, ids.west] });
        self.call("POST", &format!("/v1/consultations/{id}/invite"), &coordinator, Some(invite)).await?;
        let (cardio, west) = (self.cardiologist.clone(), self.west.clone());
        let host = self.peer(&id, &doctor, "host").await?;
        let spec = self.peer(&id, &cardio, "spec").await?;
        let mut site = self.peer(&id, &west, "site").await?;
        let (d, c, w) = (&ids.doctor, &ids.cardiologist, &ids.west);
        let everyone = |h: &MediaPeer, s: &MediaPeer, site: &MediaPeer| {
            [(h, c), (h, w), (s, d), (s, w), (site, d), (site, c)]
                .iter()
                .map(|(p, from)| p.packets_of(&mic(from)))
                .min()
                .unwrap_or(0)
        };
        until("everyone hears everyone", || everyone(&host, &spec, &site) >= 50).await?;
        // The recording: started by the host, stopped after `record_secs` of received audio.
        host.send(json!({ "type": "start_recording", "id": "rec-start" }));
        until("the recording starts", || acked(&host, "rec-start")).await?;
        let want = host.packets_of(&mic(c)) + record_secs * 50;
        if let Some(r) = redis {
            // Redis dies in the middle of a live, recorded call and comes back.
            r.restart()?;
        }
        until("the recording runs", || host.packets_of(&mic(c)) >= want).await?;
        host.send(json!({ "type": "stop_recording", "id": "rec-stop" }));
        until("the recording stops", || acked(&host, "rec-stop")).await?;
        // Churn: the site drops and comes back with a new token and new connections.
        site.close().await;
        site = self.peer(&id, &west, "site").await?;
        until("the site is back", || site.packets_of(&mic(d)) >= 50).await?;
        host.send(json!({ "type": "end_consultation", "id": "end" }));
        until("the consultation ends", || acked(&host, "end")).await?;
        let offers = [&host, &spec, &site]
            .iter()
            .map(|p| p.snapshot(|s| s.messages.iter().filter(|m| m["type"] == "subscribe_offer").count() as u64))
            .sum();
        for p in [host, spec, site] {
            p.close().await;
        }
        // Finalised before the next round, so the idle sample is idle.
        let path = format!("/v1/consultations/{id}/recordings");
        let deadline = Instant::now() + WAIT;
        loop {
            let recs = self.call("GET", &path, &doctor, None).await?;
            if recs["items"].as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|r| r["state"] == "complete")) {
                break;
            }
            if Instant::now() > deadline {
                bail!("the recording of {id} was not complete within {WAIT:?}: {recs}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok((id, offers))
    }
}

fn acked(p: &MediaPeer, id: &str) -> bool {
    p.snapshot(|s| s.messages.iter().any(|m| m["type"] == "ack" && m["id"] == id))
}

/// Polls `check` until it holds; an error after [`WAIT`].
async fn until(what: &str, mut check: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while !check() {
        if Instant::now() > deadline {
            bail!("{what}: not within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The server's resources now, from /proc and /metrics.
async fn sample(pid: u32, api: &Api, round: u32, started: Instant) -> Result<Sample> {
    let proc = format!("/proc/{pid}");
    let count = |d: &str| std::fs::read_dir(format!("{proc}/{d}")).map(|r| r.count() as u64).unwrap_or(0);
    let text = api.http_get_text("/metrics").await?;
    let gauge = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(-1)
    };
    Ok(Sample {
        at_secs: started.elapsed().as_secs_f64(),
        round,
        rss_kib: crate::load::rss_kib(pid),
        fds: count("fd"),
        threads: count("task"),
        tasks: gauge("huizhen_tokio_tasks"),
        rooms: gauge("huizhen_rooms"),
        ws_connections: gauge("huizhen_ws_connections"),
        media_connections: gauge("huizhen_media_connections"),
    })
}
