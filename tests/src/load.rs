//! The load generator behind `huizhen-load`: real webrtc-rs peers on loopback sending the
//! VP8/Opus test clip through a real server process, in three shapes of use. It measures only
//! what it can see from outside the server: packets that reach subscribers, their loss and
//! added latency (payloads are matched across the server, see `media::SendLog`), join to first
//! frame, and the server process's CPU and memory from /proc.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;

use crate::Process;
use crate::media::{MediaPeer, SendLog, Synth};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Many rooms of 4, everyone publishing camera and microphone.
    Consultation,
    /// One room of 20 sites, everyone publishing.
    Discussion,
    /// One publisher (simulcast camera and microphone), M receive-only viewers.
    Broadcast,
}

impl std::str::FromStr for Scenario {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "consultation" => Scenario::Consultation,
            "discussion" => Scenario::Discussion,
            "broadcast" => Scenario::Broadcast,
            other => anyhow::bail!("unknown scenario {other}: consultation, discussion or broadcast"),
        })
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub scenario: Scenario,
    /// Measured seconds (after everyone receives).
    pub seconds: u64,
    /// consultation: rooms of 4.
    pub rooms: usize,
    /// discussion: sites in the room.
    pub sites: usize,
    /// broadcast: viewers.
    pub viewers: usize,
    /// broadcast: the layer viewers ask for (`low`, `medium`, `high`).
    pub viewer_layer: String,
    /// Pin the server to its own CPU and the generator to the others.
    pub pin: bool,
    /// After the measured window, record the room for as long again and report the cost.
    pub record: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub target: String,
    pub scenario: String,
    pub publishers: usize,
    pub subscribers: usize,
    pub seconds: f64,
    pub forwarded_pps: f64,
    pub server_cpu_pct: f64,
    pub cpu_ms_per_1000_packets: f64,
    pub server_rss_mib: f64,
    pub loss_pct: f64,
    pub join_first_frame_p50_ms: f64,
    pub join_first_frame_p95_ms: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_samples: usize,
    /// Subscriber × publisher pairs that never got a frame in the set-up time.
    pub missing_streams: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingCost>,
}

/// What recording the same room for the same time cost the server.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RecordingCost {
    pub server_cpu_pct: f64,
    pub capture_kb_per_s: f64,
    pub files_mb: f64,
    pub files_mb_per_hour: f64,
    pub composite: bool,
    pub finalise_wall_s: f64,
    /// The server's and its ffmpeg's.
    pub finalise_cpu_s: f64,
}

pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

/// CPU time of the children the process has waited for (ffmpeg making a composite).
pub fn child_cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f[13].parse::<u64>()? + f[14].parse::<u64>()?)
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// USER_HZ on Linux.
const TICKS: f64 = 100.0;

struct Member {
    peer: MediaPeer,
    id: String,
    joined: Instant,
    publishes: bool,
}

/// Unique sequence numbers seen against the span they cover, per received track.
fn loss(peers: &[Member]) -> (u64, u64) {
    let (mut expected, mut got) = (0u64, 0u64);
    for m in peers {
        m.peer.snapshot(|s| {
            for r in s.received.values() {
                let mut ext: Vec<i64> = Vec::with_capacity(r.seqs.len());
                let mut last: Option<i64> = None;
                for q in &r.seqs {
                    let e = match last {
                        Some(l) => l + i64::from(q.wrapping_sub(l as u16) as i16),
                        None => i64::from(*q),
                    };
                    last = Some(e.max(last.unwrap_or(e)));
                    ext.push(e);
                }
                ext.sort_unstable();
                ext.dedup();
                if let (Some(a), Some(b)) = (ext.first(), ext.last()) {
                    expected += (b - a + 1) as u64;
                    got += ext.len() as u64;
                }
            }
        });
    }
    (expected, got)
}

fn received(peers: &[Member]) -> u64 {
    peers.iter().map(|m| m.peer.snapshot(|s| s.received.values().map(|r| r.packets).sum::<u64>())).sum()
}

/// Runs one scenario against a fresh Huizhen server process.
pub async fn run_huizhen(o: &Options) -> Result<Report> {
    SendLog::enable();
    let dir = tempfile::tempdir()?;
    let env = [("HUIZHEN_LIMITS__HTTP_REQUESTS_PER_SECOND", "0"), ("HUIZHEN_LIMITS__ROOM_PARTICIPANTS", "2000")];
    let p = Process::serve_env(dir.path(), &[], &env)?;
    let pid = p.child.id();
    if o.pin {
        pin(pid, o.pin)?;
    }
    let bin = crate::huizhen_binary();
    // (room, identity, publishes)
    let mut plan: Vec<(String, String, bool)> = Vec::new();
    let token = |room: &str, who: &str, publish: bool, record: bool| -> Result<String> {
        let mut cmd = std::process::Command::new(&bin);
        cmd.args(["token", "--room", room, "--identity", who, "--subscribe", "--data", "--ttl", "3600"]);
        if publish {
            cmd.arg("--publish");
        }
        if record {
            cmd.args(["--admin", "--record"]);
        }
        let out = cmd.arg("--data-dir").arg(dir.path()).env("HUIZHEN_LOG", "error").output()?;
        anyhow::ensure!(out.status.success(), "token: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    let url = |t: &str| format!("ws://{}/v1/rtc?token={t}", p.addr);
    match o.scenario {
        Scenario::Consultation => {
            for r in 0..o.rooms.max(1) {
                for s in 0..4 {
                    plan.push((format!("c{r}"), format!("c{r}-site{s}"), true));
                }
            }
        }
        Scenario::Discussion => {
            for s in 0..o.sites.max(2) {
                plan.push(("discussion".into(), format!("site{s}"), true));
            }
        }
        Scenario::Broadcast => {
            plan.push(("surgery".into(), "surgeon".into(), true));
            for v in 0..o.viewers.max(1) {
                plan.push(("surgery".into(), format!("trainee{v}"), false));
            }
        }
    }
    let mut members = Vec::new();
    for (i, (room, who, publishes)) in plan.iter().enumerate() {
        let tracks = if *publishes {
            let mut cam = if o.scenario == Scenario::Broadcast {
                Synth::clip_simulcast("cam", &format!("{who}/cam"))
            } else {
                Synth::clip_video("cam", &format!("{who}/cam"))
            };
            let mut mic = Synth::clip_audio("mic", &format!("{who}/mic"));
            // Staggered, so no two publishers send the same clip frame at the same moment.
            cam.start_frame = (i as u64 * 7) % 120;
            mic.start_frame = (i as u64 * 11) % 200;
            vec![cam, mic]
        } else {
            Vec::new()
        };
        let joined = Instant::now();
        // The first participant may record (its room is the one recorded with --record).
        let peer = MediaPeer::join(&url(&token(room, who, *publishes, o.record && i == 0)?), tracks).await;
        members.push(Member { peer, id: who.clone(), joined, publishes: *publishes });
    }
    // Viewers of a broadcast ask for their layer once the camera is announced.
    if o.scenario == Scenario::Broadcast && o.viewer_layer != "high" {
        let deadline = Instant::now() + Duration::from_secs(60);
        for m in members.iter().filter(|m| !m.publishes) {
            loop {
                let known = m.peer.snapshot(|s| s.tracks_published.iter().any(|t| t["id"] == "surgeon/cam"));
                if known {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "{} was never told of the camera", m.id);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            m.peer.send(json!({ "type": "set_layer", "id": "layer", "track": "surgeon/cam", "layer": o.viewer_layer }));
        }
    }
    // Join to first frame, for every (subscriber, publisher) pair in the same room.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first_ms = Vec::new();
    let mut missing = 0;
    for (i, m) in members.iter().enumerate() {
        for (j, publ) in members.iter().enumerate() {
            if i == j || !publ.publishes || plan[i].0 != plan[j].0 {
                continue;
            }
            let key = format!("{}/cam", publ.id);
            let at = loop {
                let at = m.peer.snapshot(|s| s.received.get(&key).and_then(|r| r.first_at));
                if at.is_some() || Instant::now() > deadline {
                    break at;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            match at {
                Some(at) => first_ms.push(at.saturating_duration_since(m.joined.max(publ.joined)).as_secs_f64() * 1e3),
                None => missing += 1,
            }
        }
    }
    let (c0, n0, t0) = (cpu_ticks(pid)?, received(&members), Instant::now());
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    let (c1, n1, elapsed) = (cpu_ticks(pid)?, received(&members), t0.elapsed().as_secs_f64());
    let rss = rss_kib(pid);
    let (expected, got) = loss(&members);
    let mut lat: Vec<f64> = members
        .iter()
        .flat_map(|m| m.peer.snapshot(|s| s.received.values().flat_map(|r| r.latencies_us.clone()).collect::<Vec<_>>()))
        .map(|us| f64::from(us) / 1000.0)
        .collect();
    let cpu_s = (c1 - c0) as f64 / TICKS;
    let forwarded = (n1 - n0) as f64;
    let recording =
        if o.record { Some(record_cost(&members[0].peer, pid, dir.path(), o.seconds).await?) } else { None };
    let report = Report {
        target: "huizhen".into(),
        scenario: format!("{:?}", o.scenario).to_lowercase(),
        publishers: members.iter().filter(|m| m.publishes).count(),
        subscribers: members.len(),
        seconds: elapsed,
        forwarded_pps: forwarded / elapsed,
        server_cpu_pct: 100.0 * cpu_s / elapsed,
        cpu_ms_per_1000_packets: if forwarded > 0.0 { 1000.0 * cpu_s / (forwarded / 1000.0) } else { f64::NAN },
        server_rss_mib: rss as f64 / 1024.0,
        loss_pct: if expected > 0 { 100.0 * (expected - got) as f64 / expected as f64 } else { 0.0 },
        join_first_frame_p50_ms: percentile(&mut first_ms.clone(), 0.5),
        join_first_frame_p95_ms: percentile(&mut first_ms, 0.95),
        latency_samples: lat.len(),
        latency_p50_ms: percentile(&mut lat.clone(), 0.5),
        latency_p99_ms: percentile(&mut lat, 0.99),
        missing_streams: missing,
        recording,
    };
    for m in members {
        m.peer.close().await;
    }
    drop(p);
    Ok(report)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn find_manifest(dir: &std::path::Path) -> Option<serde_json::Value> {
    for c in std::fs::read_dir(dir).ok()?.flatten() {
        for r in std::fs::read_dir(c.path()).ok()?.flatten() {
            if let Ok(b) = std::fs::read(r.path().join("manifest.json")) {
                return serde_json::from_slice(&b).ok();
            }
        }
    }
    None
}

async fn until_acked(peer: &MediaPeer, id: &str) -> Result<()> {
    let t = Instant::now();
    while !peer.snapshot(|s| s.messages.iter().any(|m| m["type"] == "ack" && m["id"] == id)) {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "no answer to {id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Records the room of `host` for `seconds`: server CPU meanwhile, bytes captured, then the
/// finished files and how long finalising took.
async fn record_cost(host: &MediaPeer, pid: u32, data: &std::path::Path, seconds: u64) -> Result<RecordingCost> {
    let recordings = data.join("recordings");
    host.send(json!({ "type": "start_recording", "id": "load-rec" }));
    until_acked(host, "load-rec").await?;
    let (c0, t0, d0) = (cpu_ticks(pid)?, Instant::now(), dir_bytes(&recordings));
    let children0 = child_cpu_ticks(pid)?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (c1, elapsed, d1) = (cpu_ticks(pid)?, t0.elapsed().as_secs_f64(), dir_bytes(&recordings));
    let stopped = Instant::now();
    host.send(json!({ "type": "stop_recording", "id": "load-stop" }));
    let manifest = loop {
        if let Some(m) = find_manifest(&recordings) {
            break m;
        }
        anyhow::ensure!(stopped.elapsed() < Duration::from_secs(600), "the recording was not finalised");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let finalise_wall_s = stopped.elapsed().as_secs_f64();
    let c2 = cpu_ticks(pid)? + child_cpu_ticks(pid)? - children0;
    let files = manifest["files"].as_array().cloned().unwrap_or_default();
    let bytes: u64 = files.iter().filter_map(|f| f["bytes"].as_u64()).sum();
    Ok(RecordingCost {
        server_cpu_pct: 100.0 * (c1 - c0) as f64 / TICKS / elapsed,
        capture_kb_per_s: (d1.saturating_sub(d0)) as f64 / elapsed / 1000.0,
        files_mb: bytes as f64 / 1e6,
        files_mb_per_hour: bytes as f64 / elapsed * 3600.0 / 1e6,
        composite: files.iter().any(|f| f["kind"] == "composite"),
        finalise_wall_s,
        finalise_cpu_s: (c2 - c1) as f64 / TICKS,
    })
}

/// Gives the server its own core: the server on the last CPU, this process on the others, so
/// the generator's work does not take the server's CPU time (which is what is measured).
fn pin(server: u32, on: bool) -> Result<()> {
    if !on {
        return Ok(());
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cpus < 2 {
        return Ok(());
    }
    let last = cpus - 1;
    let others = if last == 1 { "0".to_string() } else { format!("0-{}", last - 1) };
    let ok = |c: &mut std::process::Command| c.status().map(|s| s.success()).unwrap_or(false);
    let a = ok(std::process::Command::new("taskset").args(["-a", "-p", "-c", &last.to_string(), &server.to_string()]));
    let b =
        ok(std::process::Command::new("taskset").args(["-a", "-p", "-c", &others, &std::process::id().to_string()]));
    if !(a && b) {
        eprintln!("note: taskset is not available; server and generator share all cores");
    }
    Ok(())
}

pub fn markdown(reports: &[Report]) -> String {
    let mut s = String::from(
        "| target | scenario | publishers / peers | forwarded pkt/s | server CPU | CPU ms per 1000 pkts | RSS MiB | loss | join→first frame p50 / p95 | added latency p50 / p99 |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        s.push_str(&format!(
            "| {} | {} | {} / {} | {:.0} | {:.1}% | {:.3} | {:.0} | {:.2}% | {:.0} / {:.0} ms | {:.2} / {:.2} ms |\n",
            r.target,
            r.scenario,
            r.publishers,
            r.subscribers,
            r.forwarded_pps,
            r.server_cpu_pct,
            r.cpu_ms_per_1000_packets,
            r.server_rss_mib,
            r.loss_pct,
            r.join_first_frame_p50_ms,
            r.join_first_frame_p95_ms,
            r.latency_p50_ms,
            r.latency_p99_ms
        ));
    }
    s
}
