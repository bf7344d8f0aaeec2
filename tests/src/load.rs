//! The load generator behind `huizhen-load`: real webrtc-rs peers on loopback sending the
//! VP8/Opus test clip through a real server process, in three shapes of use. It measures only
//! what it can see from outside the server: packets that reach subscribers, their loss and
//! added latency (payloads are matched across the server, see `media::SendLog`), join to first
//! frame, and the server process's CPU and memory from /proc.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Process;
use std::sync::{Arc, Mutex};

use crate::media::{MediaPeer, PeerState, Received, SendLog, Synth};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Many rooms of 4, everyone publishing camera and microphone.
    Consultation,
    /// One room of 20 sites, everyone publishing.
    Discussion,
    /// One publisher (simulcast camera and microphone), M receive-only viewers.
    Broadcast,
    /// A broadcast with M viewers watching, then N more joining within a few seconds: what
    /// the join storm does to those already watching.
    Storm,
}

impl std::str::FromStr for Scenario {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "consultation" => Scenario::Consultation,
            "discussion" => Scenario::Discussion,
            "broadcast" => Scenario::Broadcast,
            "storm" => Scenario::Storm,
            other => anyhow::bail!("unknown scenario {other}: consultation, discussion, broadcast or storm"),
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
    /// storm: viewers joining while `viewers` watch, and the seconds they join within.
    pub joiners: usize,
    pub join_window_s: u64,
    /// Pin the server to its own CPU and the generator to the others.
    pub pin: bool,
    /// After the measured window, record the room for as long again and report the cost.
    pub record: bool,
    /// Huizhen only: two media workers (on the server's one core when pinned), a room's home
    /// carrying this many members before viewers go to the other (0: one worker). Measures
    /// what handing packets between workers costs.
    pub spread: usize,
    /// Broadcast and storm: viewers on one thread and one socket (`swarm::Swarm`), one in
    /// `swarm` decrypting (0: a webrtc-rs peer each).
    pub swarm: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub target: String,
    pub scenario: String,
    pub publishers: usize,
    pub subscribers: usize,
    pub seconds: f64,
    pub forwarded_pps: f64,
    pub server_cpu_pct: f64,
    /// Packets the server itself dropped in the measured window (Huizhen's
    /// `huizhen_media_dropped_packets_total`: a send buffer full, a tap behind): the part of the
    /// loss that is the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_dropped: Option<u64>,
    /// The load generator's own CPU (all its threads; 100% is one core): whether it, not the
    /// server, was the limit.
    #[serde(default)]
    pub generator_cpu_pct: f64,
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
    /// What the viewers were: a webrtc-rs peer each, or the swarm (and how many of them
    /// decrypted, which only they measure latency from).
    #[serde(default)]
    pub generator: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingCost>,
    /// The join storm (scenario `storm`); the fields above are the steady state before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<Storm>,
    /// Huizhen's media worker turns over the measured window (`huizhen_media_turn_seconds`):
    /// the server's own bound on what it adds to a packet's latency, whatever the generator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_turns: Option<ServerTurns>,
}

/// What a join storm did: the watchers' added latency before and during it (the same payload
/// matching as the steady state), the server's CPU during it, and how fast the joiners saw
/// the picture.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Storm {
    pub watchers: usize,
    pub joiners: usize,
    /// From the first joiner's start to the last one's signaling being up.
    pub joined_within_s: f64,
    /// From the first joiner's start to the last joiner's first frame (or the deadline).
    pub during_s: f64,
    pub during_cpu_pct: f64,
    pub watchers_during_p50_ms: f64,
    pub watchers_during_p99_ms: f64,
    pub watchers_during_max_ms: f64,
    pub watchers_during_samples: usize,
    /// Watchers' loss over the storm (unique sequence numbers against their span).
    pub watchers_during_loss_pct: f64,
    pub joiners_first_frame_p50_ms: f64,
    pub joiners_first_frame_p95_ms: f64,
    pub joiners_missing: usize,
    /// The server's own view (Huizhen's `huizhen_media_turn_seconds`; none for Janus): media
    /// worker turns during the storm, the bucket bound their 99th percentile falls in, and
    /// how many took over 5 ms. A datagram arriving during a turn waits for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_turns: Option<ServerTurns>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerTurns {
    pub turns: u64,
    pub p99_at_most_ms: f64,
    pub over_5ms: u64,
    pub slowest_bucket_ms: f64,
    /// The same for the CPU time the worker spent in its turns
    /// (`huizhen_media_turn_cpu_seconds`): a turn long in time but short in CPU waited for
    /// the core.
    #[serde(default)]
    pub cpu_over_5ms: u64,
    #[serde(default)]
    pub cpu_slowest_bucket_ms: f64,
}

/// The server's `/metrics` page.
async fn metrics(addr: &str) -> Result<String> {
    Ok(reqwest::get(format!("http://{addr}/metrics")).await?.error_for_status()?.text().await?)
}

/// A counter from the server's `/metrics`.
async fn counter(addr: &str, name: &str) -> Result<u64> {
    let text = metrics(addr).await?;
    let line = text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')).context("no such counter")?;
    Ok(line.trim().parse()?)
}

/// Cumulative histogram buckets: (upper bound in s, count).
type Buckets = Vec<(f64, u64)>;
/// The turns' length and their CPU time, read together.
type TurnReadings = (Buckets, Buckets);

/// `huizhen_media_turn_seconds` and `huizhen_media_turn_cpu_seconds` from the server's
/// `/metrics`: (upper bound in s, cumulative) each.
async fn turn_histogram(addr: &str) -> Result<TurnReadings> {
    let text = metrics(addr).await?;
    let read = |name: &str| -> Result<Buckets> {
        let prefix = format!("{name}_bucket{{le=\"");
        let mut out = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(prefix.as_str()) else { continue };
            let (le, n) = rest.split_once("\"} ").context("bucket line")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse()? };
            out.push((le, n.trim().parse()?));
        }
        anyhow::ensure!(!out.is_empty(), "no {name} in /metrics");
        Ok(out)
    };
    Ok((read("huizhen_media_turn_seconds")?, read("huizhen_media_turn_cpu_seconds")?))
}

/// What happened between two readings of the histograms.
fn turns_between(before: &TurnReadings, after: &TurnReadings) -> ServerTurns {
    let wall = turns_between_one(&before.0, &after.0);
    let cpu = turns_between_one(&before.1, &after.1);
    ServerTurns { cpu_over_5ms: cpu.over_5ms, cpu_slowest_bucket_ms: cpu.slowest_bucket_ms, ..wall }
}

fn turns_between_one(before: &[(f64, u64)], after: &[(f64, u64)]) -> ServerTurns {
    let delta: Vec<(f64, u64)> =
        after.iter().zip(before).map(|((le, a), (_, b))| (*le, a.saturating_sub(*b))).collect();
    let turns = delta.last().map_or(0, |d| d.1);
    let p99 = delta.iter().find(|(_, n)| *n as f64 >= 0.99 * turns as f64).map_or(f64::NAN, |d| d.0 * 1e3);
    let at_5ms = delta.iter().find(|(le, _)| (*le - 0.005).abs() < 1e-9).map_or(0, |d| d.1);
    // The lowest bound that holds every turn: cumulative counts reach `turns` there.
    let slowest = delta.iter().find(|(_, n)| *n == turns).map_or(f64::NAN, |d| d.0 * 1e3);
    ServerTurns {
        turns,
        p99_at_most_ms: p99,
        over_5ms: turns - at_5ms,
        slowest_bucket_ms: slowest,
        ..Default::default()
    }
}

/// What recording the same room for the same time cost the server.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
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
    joined: Instant,
}

type State = Arc<Mutex<PeerState>>;

fn lock(s: &State) -> std::sync::MutexGuard<'_, PeerState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Unique sequence numbers seen against the span they cover, per received track.
fn loss(peers: &[State]) -> (u64, u64) {
    let (mut expected, mut got) = (0u64, 0u64);
    for m in peers {
        let s = lock(m);
        {
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
        }
    }
    (expected, got)
}

fn received(peers: &[State]) -> u64 {
    peers.iter().map(|m| lock(m).received.values().map(|r| r.packets).sum::<u64>()).sum()
}

/// What the run saw before the measured window: join to first frame per (subscriber,
/// publisher) pair, and pairs that never got a frame.
struct SetUp {
    first_ms: Vec<f64>,
    missing: usize,
    publishers: usize,
    peers: usize,
}

/// Measures the steady state for `seconds`: packets reaching subscribers, the server's CPU
/// and memory, loss and added latency, all over that window only (the set-up before it, a
/// thousand joins, is not the steady state).
async fn measure(target: &str, o: &Options, pid: u32, states: &[State], mut set_up: SetUp) -> Result<Report> {
    let me = std::process::id();
    let (seqs, lats) = (marks(states, |r| r.seqs.len()), marks(states, |r| r.latencies_us.len()));
    let (c0, g0, n0, t0) = (cpu_ticks(pid)?, cpu_ticks(me)?, received(states), Instant::now());
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    let (c1, g1, n1, elapsed) = (cpu_ticks(pid)?, cpu_ticks(me)?, received(states), t0.elapsed().as_secs_f64());
    let rss = rss_kib(pid);
    let loss_pct = loss_since(states, &seqs);
    let mut lat = latencies_since(states, &lats);
    let cpu_s = (c1 - c0) as f64 / TICKS;
    let forwarded = (n1 - n0) as f64;
    Ok(Report {
        target: target.into(),
        scenario: format!("{:?}", o.scenario).to_lowercase(),
        publishers: set_up.publishers,
        subscribers: set_up.peers,
        seconds: elapsed,
        forwarded_pps: forwarded / elapsed,
        server_cpu_pct: 100.0 * cpu_s / elapsed,
        generator_cpu_pct: 100.0 * (g1 - g0) as f64 / TICKS / elapsed,
        cpu_ms_per_1000_packets: if forwarded > 0.0 { 1000.0 * cpu_s / (forwarded / 1000.0) } else { f64::NAN },
        server_rss_mib: rss as f64 / 1024.0,
        loss_pct,
        join_first_frame_p50_ms: percentile(&mut set_up.first_ms.clone(), 0.5),
        join_first_frame_p95_ms: percentile(&mut set_up.first_ms, 0.95),
        latency_samples: lat.len(),
        latency_p50_ms: percentile(&mut lat.clone(), 0.5),
        latency_p99_ms: percentile(&mut lat, 0.99),
        missing_streams: set_up.missing,
        server_dropped: None,
        generator: "a webrtc-rs peer each".into(),
        recording: None,
        storm: None,
        server_turns: None,
    })
}

/// (room, identity, publishes) for every participant of a scenario.
fn plan(o: &Options) -> Vec<(String, String, bool)> {
    let mut plan = Vec::new();
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
        Scenario::Broadcast | Scenario::Storm => {
            plan.push(("surgery".into(), "surgeon".into(), true));
            for v in 0..o.viewers.max(1) {
                plan.push(("surgery".into(), format!("trainee{v}"), false));
            }
        }
    }
    plan
}

/// Camera and microphone from the clip; publisher `i` starts at its own place in the clip.
fn clip_tracks(o: &Options, who: &str, i: usize) -> Vec<Synth> {
    let mut cam = if matches!(o.scenario, Scenario::Broadcast | Scenario::Storm) {
        Synth::clip_simulcast("cam", &format!("{who}/cam"))
    } else {
        Synth::clip_video("cam", &format!("{who}/cam"))
    };
    let mut mic = Synth::clip_audio("mic", &format!("{who}/mic"));
    // Staggered, so no two publishers send the same clip frame at the same moment.
    cam.start_frame = (i as u64 * 7) % 120;
    mic.start_frame = (i as u64 * 11) % 200;
    vec![cam, mic]
}

/// When `state` got its first packet of `key`, waiting for it until `deadline`.
async fn first_at(state: &State, key: &str, deadline: Instant) -> Option<Instant> {
    loop {
        let at = lock(state).received.get(key).and_then(|r| r.first_at);
        if at.is_some() || Instant::now() > deadline {
            return at;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A broadcast viewer asks for `layer` of the surgeon's camera once it has been told of it.
async fn ask_layer(peer: &MediaPeer, who: &str, layer: &str, deadline: Instant) -> Result<()> {
    while !peer.snapshot(|s| s.tracks_published.iter().any(|t| t["id"] == "surgeon/cam")) {
        anyhow::ensure!(Instant::now() < deadline, "{who} was never told of the camera");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    peer.send(json!({ "type": "set_layer", "id": "layer", "track": "surgeon/cam", "layer": layer }));
    Ok(())
}

/// `LOAD_DEBUG` set: why a subscriber got nothing or its first frame came late, and the
/// media plane's own debug events.
fn load_debug() -> bool {
    std::env::var_os("LOAD_DEBUG").is_some()
}

/// Waits for each subscriber's first video packet from each publisher of its room.
/// `states[i]` and `joined[i]` belong to plan entry `i`.
async fn first_frames(states: &[State], plan: &[(String, String, bool)], joined: &[Instant]) -> SetUp {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first_ms = Vec::new();
    let mut missing = 0;
    for (i, state) in states.iter().enumerate() {
        for (j, (room, who, publishes)) in plan.iter().enumerate() {
            if i == j || !publishes || plan[i].0 != *room {
                continue;
            }
            match first_at(state, &format!("{who}/cam"), deadline).await {
                Some(at) => {
                    let from = joined[i].max(joined[j]);
                    let ms = at.saturating_duration_since(from).as_secs_f64() * 1e3;
                    if load_debug() && ms > 800.0 {
                        let steps: Vec<String> = lock(state)
                            .timeline
                            .iter()
                            .map(|(t, what)| {
                                let ms = t.saturating_duration_since(from).as_secs_f64()
                                    - from.saturating_duration_since(*t).as_secs_f64();
                                format!("{what} {:+.0}", ms * 1e3)
                            })
                            .collect();
                        eprintln!(
                            "slow first frame: {} <- {who} in {room}: {ms:.0} ms; subscriber's steps (ms from the later join): {steps:?}",
                            plan[i].1
                        );
                    }
                    first_ms.push(ms)
                }
                None => {
                    if load_debug() {
                        let s = lock(state);
                        let got: Vec<String> = s.received.iter().map(|(k, r)| format!("{k}:{}", r.packets)).collect();
                        let steps: Vec<&String> = s.timeline.iter().map(|(_, what)| what).collect();
                        eprintln!(
                            "never a packet: {} <- {who} in {room}; it has {got:?}; errors {:?}; steps {steps:?}",
                            plan[i].1, s.errors
                        );
                    }
                    missing += 1
                }
            }
        }
    }
    SetUp { first_ms, missing, publishers: plan.iter().filter(|p| p.2).count(), peers: plan.len() }
}

/// How much of a per-track log each watcher has so far (`len` picks the log): where a window
/// starts.
fn marks(states: &[State], len: fn(&Received) -> usize) -> Vec<HashMap<String, usize>> {
    states.iter().map(|m| lock(m).received.iter().map(|(k, r)| (k.clone(), len(r))).collect()).collect()
}

/// Latency samples (ms) since `marks`.
fn latencies_since(states: &[State], marks: &[HashMap<String, usize>]) -> Vec<f64> {
    let mut out = Vec::new();
    for (m, mark) in states.iter().zip(marks) {
        for (k, r) in &lock(m).received {
            let from = mark.get(k).copied().unwrap_or(0).min(r.latencies_us.len());
            out.extend(r.latencies_us[from..].iter().map(|us| f64::from(*us) / 1000.0));
        }
    }
    out
}

/// Loss over what arrived since `marks`: unique sequence numbers against the span they cover.
fn loss_since(states: &[State], marks: &[HashMap<String, usize>]) -> f64 {
    let tail: Vec<State> = states
        .iter()
        .zip(marks)
        .map(|(m, mark)| {
            let s = lock(m);
            let mut p = PeerState::default();
            for (k, r) in &s.received {
                let from = mark.get(k).copied().unwrap_or(0).min(r.seqs.len());
                p.received.insert(k.clone(), Received { seqs: r.seqs[from..].to_vec(), ..Default::default() });
            }
            Arc::new(Mutex::new(p))
        })
        .collect();
    let (expected, got) = loss(&tail);
    if expected > 0 { 100.0 * (expected - got) as f64 / expected as f64 } else { 0.0 }
}

/// Starts `o.joiners` joins evenly over `o.join_window_s` while `watchers` watch, waits for
/// every joiner's first frame (30 s at most), and reports what the watchers saw meanwhile.
/// `join(j)` joins joiner `j` and returns it with its state.
async fn storm<P, F, Fut>(o: &Options, pid: u32, watchers: &[State], join: F) -> Result<(Storm, Vec<P>)>
where
    P: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(P, State)>> + Send + 'static,
{
    let (lat0, seq0) = (marks(watchers, |r| r.latencies_us.len()), marks(watchers, |r| r.seqs.len()));
    let (c0, t0) = (cpu_ticks(pid)?, Instant::now());
    let window = Duration::from_secs(o.join_window_s);
    let n = o.joiners.max(1);
    let mut tasks = Vec::new();
    for j in 0..n {
        let at = t0 + window.mul_f64(j as f64 / n as f64);
        let fut = join(j);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let started = Instant::now();
            fut.await.map(|(p, s)| (p, s, started))
        }));
    }
    let mut joined = Vec::new();
    for t in tasks {
        joined.push(t.await??);
    }
    let joined_within = t0.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut first_ms = Vec::new();
    let mut missing = 0;
    for (_, state, started) in &joined {
        match first_at(state, "surgeon/cam", deadline).await {
            Some(at) => first_ms.push(at.saturating_duration_since(*started).as_secs_f64() * 1e3),
            None => missing += 1,
        }
    }
    let (c1, during) = (cpu_ticks(pid)?, t0.elapsed());
    let mut lat = latencies_since(watchers, &lat0);
    let figures = Storm {
        watchers: watchers.len(),
        joiners: n,
        joined_within_s: joined_within.as_secs_f64(),
        during_s: during.as_secs_f64(),
        during_cpu_pct: 100.0 * (c1 - c0) as f64 / TICKS / during.as_secs_f64(),
        watchers_during_samples: lat.len(),
        watchers_during_max_ms: lat.iter().copied().fold(f64::NAN, f64::max),
        watchers_during_p50_ms: percentile(&mut lat.clone(), 0.5),
        watchers_during_p99_ms: percentile(&mut lat, 0.99),
        watchers_during_loss_pct: loss_since(watchers, &seq0),
        joiners_first_frame_p50_ms: percentile(&mut first_ms.clone(), 0.5),
        joiners_first_frame_p95_ms: percentile(&mut first_ms, 0.95),
        joiners_missing: missing,
        server_turns: None,
    };
    Ok((figures, joined.into_iter().map(|(p, _, _)| p).collect()))
}

/// The command-line arguments that make `huizhen-load` run `o` (for the Janus side).
pub fn args_for(o: &Options) -> Vec<String> {
    let scenario = format!("{:?}", o.scenario).to_lowercase();
    [
        ("--scenario", scenario),
        ("--seconds", o.seconds.to_string()),
        ("--rooms", o.rooms.to_string()),
        ("--sites", o.sites.to_string()),
        ("--viewers", o.viewers.to_string()),
        ("--viewer-layer", o.viewer_layer.clone()),
        ("--joiners", o.joiners.to_string()),
        ("--join-window", o.join_window_s.to_string()),
        ("--pin", if o.pin { "1" } else { "0" }.to_string()),
        ("--swarm", o.swarm.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect()
}

/// Runs one scenario against a fresh Huizhen server process.
pub async fn run_huizhen(o: &Options) -> Result<Report> {
    SendLog::enable();
    let dir = tempfile::tempdir()?;
    let mut env =
        vec![("HUIZHEN_LIMITS__HTTP_REQUESTS_PER_SECOND", "0"), ("HUIZHEN_LIMITS__ROOM_PARTICIPANTS", "2000")];
    if o.pin {
        // The server is moved onto one core after it starts; tokio would otherwise size its
        // pool for every core and run two workers on one, paying for each wake-up between them.
        env.push(("TOKIO_WORKER_THREADS", "1"));
        // Likewise one media worker for the one core (the default is one per core).
        if o.spread == 0 {
            env.push(("HUIZHEN_MEDIA__WORKERS", "1"));
        }
    }
    // The media plane's own account of ICE, held DTLS and dropped datagrams, for LOAD_DEBUG.
    if load_debug() {
        env.push(("HUIZHEN_LOG", "warn,huizhen_sfu::plane=debug"));
    }
    let spread = o.spread.to_string();
    if o.spread > 0 {
        env.push(("HUIZHEN_MEDIA__WORKERS", "2"));
        env.push(("HUIZHEN_MEDIA__VIEWERS_PER_WORKER", &spread));
    }
    let p = Process::serve_env(dir.path(), &[], &env)?;
    let pid = p.child.id();
    if o.pin {
        pin(pid, o.pin)?;
    }
    let bin = crate::huizhen_binary();
    // A broadcast is a teaching session: its publisher hosts, its viewers are the audience
    // (as `/join` gives them), so the room tells each join to the host, not to every viewer.
    let teaching = matches!(o.scenario, Scenario::Broadcast | Scenario::Storm);
    let token = |room: &str, who: &str, publish: bool, record: bool| -> Result<String> {
        let mut cmd = std::process::Command::new(&bin);
        cmd.args(["token", "--room", room, "--identity", who, "--subscribe", "--data", "--ttl", "3600"]);
        if publish {
            cmd.arg("--publish");
        }
        if record {
            cmd.args(["--admin", "--record"]);
        } else if teaching && publish {
            cmd.arg("--admin");
        }
        if teaching && !publish {
            cmd.arg("--audience");
        }
        let out = cmd.arg("--data-dir").arg(dir.path()).env("HUIZHEN_LOG", "error").output()?;
        anyhow::ensure!(out.status.success(), "token: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    let url = |t: &str| format!("ws://{}/v1/rtc?token={t}", p.addr);
    let plan = plan(o);
    let mut members = Vec::new();
    let swarm = match o.scenario {
        Scenario::Broadcast | Scenario::Storm if o.swarm > 0 => Some(Arc::new(crate::swarm::Swarm::start(o.swarm)?)),
        _ => None,
    };
    for (i, (room, who, publishes)) in plan.iter().enumerate() {
        let tracks = if *publishes { clip_tracks(o, who, i) } else { Vec::new() };
        let joined = Instant::now();
        // The first participant may record (its room is the one recorded with --record).
        let url = url(&token(room, who, *publishes, o.record && i == 0)?);
        let peer = match &swarm {
            Some(s) if !publishes => s.join(&url, Some(&o.viewer_layer)).await?,
            _ => MediaPeer::join(&url, tracks).await,
        };
        members.push(Member { peer, joined });
    }
    // Viewers of a broadcast ask for their layer once the camera is announced.
    if matches!(o.scenario, Scenario::Broadcast | Scenario::Storm) && o.viewer_layer != "high" && swarm.is_none() {
        let deadline = Instant::now() + Duration::from_secs(60);
        for (m, (_, who, _)) in members.iter().zip(&plan).filter(|(_, p)| !p.2) {
            ask_layer(&m.peer, who, &o.viewer_layer, deadline).await?;
        }
    }
    let states: Vec<State> = members.iter().map(|m| m.peer.state.clone()).collect();
    let joined: Vec<Instant> = members.iter().map(|m| m.joined).collect();
    let set_up = first_frames(&states, &plan, &joined).await;
    // Why a subscriber got nothing: whether it connected, its errors and the last messages.
    // Not HUIZHEN_…: the server, which inherits the environment, refuses unknown HUIZHEN_ keys.
    if load_debug() {
        for (st, (_, who, _)) in states.iter().zip(&plan) {
            let s = lock(st);
            if !s.received.is_empty() && s.received.values().all(|r| r.packets == 0) || s.received.is_empty() {
                let last: Vec<String> = s
                    .messages
                    .iter()
                    .rev()
                    .take(3)
                    .map(|m| match m["type"].as_str() {
                        Some("media_closed") => m.to_string(),
                        t => t.unwrap_or("?").to_owned(),
                    })
                    .collect();
                eprintln!(
                    "{who}: nothing received; connected {}, errors {:?}, last {last:?}",
                    s.subscribe_connected, s.errors
                );
            }
        }
    }
    let mut target = String::from(if o.spread > 0 { "huizhen, 2 workers" } else { "huizhen" });
    if swarm.is_some() {
        target.push_str(" (swarm viewers)");
    }
    let addr = p.addr.to_string();
    let dropped_before = counter(&addr, "huizhen_media_dropped_packets_total").await?;
    let turns_before = turn_histogram(&addr).await?;
    let mut report = measure(&target, o, pid, &states, set_up).await?;
    report.server_turns = Some(turns_between(&turns_before, &turn_histogram(&addr).await?));
    report.server_dropped = Some(counter(&addr, "huizhen_media_dropped_packets_total").await? - dropped_before);
    if let Some(s) = &swarm {
        report.generator = format!("swarm: one thread and socket, 1 viewer in {} decrypting", s.sample);
    }
    let mut joiners = Vec::new();
    if o.scenario == Scenario::Storm {
        // Tokens first: making one runs the server binary, far slower than a join.
        let tokens: Vec<String> =
            (0..o.joiners).map(|j| token("surgery", &format!("joiner{j}"), false, false)).collect::<Result<_>>()?;
        let layer = o.viewer_layer.clone();
        // The watchers: everyone but the publisher (who receives nothing).
        let watchers: Vec<State> = states.iter().zip(&plan).filter(|(_, p)| !p.2).map(|(s, _)| s.clone()).collect();
        let before = turn_histogram(&p.addr.to_string()).await?;
        let swarm = swarm.clone();
        let (mut figures, peers) = storm(o, pid, &watchers, move |j| {
            let url = url(&tokens[j]);
            let layer = layer.clone();
            let swarm = swarm.clone();
            async move {
                let peer = match &swarm {
                    Some(s) => s.join(&url, Some(&layer)).await?,
                    None => MediaPeer::join(&url, Vec::new()).await,
                };
                if layer != "high" && swarm.is_none() {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    ask_layer(&peer, &format!("joiner {j}"), &layer, deadline).await?;
                }
                let state = peer.state.clone();
                Ok((peer, state))
            }
        })
        .await?;
        let after = turn_histogram(&p.addr.to_string()).await?;
        figures.server_turns = Some(turns_between(&before, &after));
        report.storm = Some(figures);
        joiners = peers;
    }
    for j in joiners {
        j.close().await;
    }
    let recording =
        if o.record { Some(record_cost(&members[0].peer, pid, dir.path(), o.seconds).await?) } else { None };
    report.recording = recording;
    for m in members {
        m.peer.close().await;
    }
    drop(swarm);
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
        "| target | scenario | publishers / peers | forwarded pkt/s | server CPU | CPU ms per 1000 pkts | RSS MiB | loss | video streams that never started | join→first frame p50 / p95 | added latency p50 / p99 |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        s.push_str(&format!(
            "| {} | {} | {} / {} | {:.0} | {:.1}% | {:.3} | {:.0} | {:.2}% | {} | {:.0} / {:.0} ms | {:.2} / {:.2} ms |\n",
            r.target,
            r.scenario,
            r.publishers,
            r.subscribers,
            r.forwarded_pps,
            r.server_cpu_pct,
            r.cpu_ms_per_1000_packets,
            r.server_rss_mib,
            r.loss_pct,
            r.missing_streams,
            r.join_first_frame_p50_ms,
            r.join_first_frame_p95_ms,
            r.latency_p50_ms,
            r.latency_p99_ms
        ));
    }
    let storms: Vec<(&Report, &Storm)> = reports.iter().filter_map(|r| r.storm.as_ref().map(|s| (r, s))).collect();
    if !storms.is_empty() {
        s.push_str(
            "\n| target | watchers + joiners | joined within | storm lasted | server CPU during | watchers' latency p50 / p99 / max during (before: p99) | watchers' loss during | joiners' first frame p50 / p95 | joiners without a frame | server's media turns during: p99 at most / over 5 ms / slowest at most |\n|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for (r, t) in storms {
            s.push_str(&format!(
                "| {} | {} + {} | {:.1} s | {:.1} s | {:.1}% | {:.2} / {:.2} / {:.1} ms ({:.2} ms) | {:.2}% | {:.0} / {:.0} ms | {} | {} |\n",
                r.target,
                t.watchers,
                t.joiners,
                t.joined_within_s,
                t.during_s,
                t.during_cpu_pct,
                t.watchers_during_p50_ms,
                t.watchers_during_p99_ms,
                t.watchers_during_max_ms,
                r.latency_p99_ms,
                t.watchers_during_loss_pct,
                t.joiners_first_frame_p50_ms,
                t.joiners_first_frame_p95_ms,
                t.joiners_missing,
                t.server_turns.as_ref().map_or("—".to_owned(), |s| format!(
                    "{} ms / {} of {} / {} ms (CPU: {} over 5 ms, slowest {} ms)",
                    s.p99_at_most_ms, s.over_5ms, s.turns, s.slowest_bucket_ms, s.cpu_over_5ms, s.cpu_slowest_bucket_ms
                ))
            ));
        }
    }
    s
}

/// Runs one scenario against Janus VideoRoom. Janus cannot use loopback for ICE (see
/// `../shared/TESTING.md`), so the run happens in a private network namespace with one veth
/// address, 127.0.0.2: `huizhen-load --janus-inner 1` runs there (root, or passwordless sudo).
pub fn run_janus(args: &[String]) -> Result<Report> {
    let exe = crate::sibling_binary("huizhen-load", "huizhen-tests");
    let root = std::process::Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    let mut cmd = std::process::Command::new(if root { "unshare" } else { "sudo" });
    if !root {
        cmd.args(["-n", "unshare"]);
    }
    let out = cmd
        .args(["--net", "--"])
        .arg(exe)
        .args(args)
        .args(["--janus-inner", "1"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("unshare (util-linux; needs root)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("JANUS-REPORT "))
        .with_context(|| format!("the Janus run reported nothing (exit {:?})", out.status.code()))?;
    Ok(serde_json::from_str(line)?)
}

fn sh(cmd: &str, args: &[&str]) -> Result<()> {
    let ok = std::process::Command::new(cmd).args(args).status().with_context(|| cmd.to_owned())?.success();
    anyhow::ensure!(ok, "{cmd} {args:?} failed");
    Ok(())
}

const JANUS_WS_PORT: u16 = 18188;

/// Inside the namespace: the network, Janus with its own configuration, then the scenario.
pub async fn janus_inner(o: &Options) -> Result<Report> {
    sh("ip", &["link", "set", "lo", "up"])?;
    sh("ip", &["link", "add", "hz0", "type", "veth", "peer", "name", "hz1"])?;
    sh("ip", &["addr", "add", "127.0.0.2/32", "dev", "hz0"])?;
    sh("ip", &["link", "set", "hz0", "up"])?;
    sh("ip", &["link", "set", "hz1", "up"])?;
    let _ = crate::media::BIND_IP.set("127.0.0.2".into());
    SendLog::enable();
    let dir = tempfile::tempdir()?;
    let cfg = dir.path();
    let lib = ["/usr/lib/x86_64-linux-gnu/janus", "/usr/lib/janus", "/usr/local/lib/janus"]
        .into_iter()
        .find(|d| std::path::Path::new(d).join("plugins/libjanus_videoroom.so").exists())
        .context("Janus is not installed (apt-get install janus)")?;
    let plugins: Vec<String> = std::fs::read_dir(format!("{lib}/plugins"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".so") && n != "libjanus_videoroom.so")
        .collect();
    let transports: Vec<String> = std::fs::read_dir(format!("{lib}/transports"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".so") && n != "libjanus_websockets.so")
        .collect();
    std::fs::write(
        cfg.join("janus.jcfg"),
        format!(
            "general: {{\n configs_folder = \"{c}\"\n plugins_folder = \"{lib}/plugins\"\n transports_folder = \"{lib}/transports\"\n events_folder = \"{lib}/events\"\n loggers_folder = \"{lib}/loggers\"\n debug_level = 3\n event_loops = {loops}\n session_timeout = 120\n}}\nmedia: {{\n rtp_port_range = \"40000-60000\"\n}}\nnat: {{\n ice_enforce_list = \"127.0.0.2\"\n}}\nplugins: {{\n disable = \"{p}\"\n}}\ntransports: {{\n disable = \"{t}\"\n}}\nevents: {{\n broadcast = false\n}}\nloggers: {{\n}}\n",
            c = cfg.display(),
            // Like Huizhen's worker pool: one event loop per core Janus is given.
            loops = if o.pin { 1 } else { 2 },
            p = plugins.join(","),
            t = transports.join(",")
        ),
    )?;
    std::fs::write(
        cfg.join("janus.transport.websockets.jcfg"),
        format!(
            "general: {{\n json = \"plain\"\n ws = true\n ws_port = {JANUS_WS_PORT}\n ws_ip = \"127.0.0.1\"\n wss = false\n}}\nadmin: {{\n admin_ws = false\n}}\n"
        ),
    )?;
    std::fs::write(cfg.join("janus.plugin.videoroom.jcfg"), "general: {\n}\n")?;
    let log = cfg.join("janus.log");
    let mut janus = std::process::Command::new("janus")
        .arg("-F")
        .arg(cfg)
        .arg("-L")
        .arg(&log)
        .args(["-N", "-o", "-i", "127.0.0.2", "-E", "127.0.0.2"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("janus")?;
    let pid = janus.id();
    pin(pid, o.pin)?;
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", JANUS_WS_PORT)).is_err() {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(20), "Janus did not start; see {}", log.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = janus_scenario(o, pid).await;
    let _ = janus.kill();
    let _ = janus.wait();
    if r.is_err() {
        eprintln!(
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default().lines().rev().take(30).collect::<Vec<_>>().join("\n")
        );
    }
    r
}

async fn janus_scenario(o: &Options, pid: u32) -> Result<Report> {
    use crate::janus;
    let url = format!("ws://127.0.0.1:{JANUS_WS_PORT}/");
    let plan = plan(o);
    let mut rooms: Vec<String> = plan.iter().map(|p| p.0.clone()).collect();
    rooms.dedup();
    let room_id = |name: &str| 1000 + rooms.iter().position(|r| r == name).unwrap_or(0) as u64;
    for r in &rooms {
        janus::create_room(&url, room_id(r), plan.len() + 1).await?;
    }
    // Publishers first (a subscription names the feeds it wants), then every participant
    // subscribes to the others of its room in one connection.
    let mut publishers = Vec::new();
    let mut joined = vec![Instant::now(); plan.len()];
    let mut feeds: Vec<(String, u64, String)> = Vec::new();
    for (i, (room, who, publishes)) in plan.iter().enumerate() {
        if *publishes {
            joined[i] = Instant::now();
            let p = janus::publisher(&url, room_id(room), who, clip_tracks(o, who, i)).await?;
            feeds.push((room.clone(), p.feed, who.clone()));
            publishers.push(p);
        }
    }
    // Janus offers a feed to subscribers only once its publisher's connection is up.
    let t = Instant::now();
    while !publishers.iter().all(|p| p.snapshot(|s| s.publish_connected)) {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "Janus publishers did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Janus numbers rid simulcast layers in the order of `a=simulcast`, highest first; our
    // publishers list q;h;f (low to high), so substream 2 is the low layer. (Measured: asking
    // for substream 0 delivered the 1280×720 layer.)
    let substream = match (o.scenario, o.viewer_layer.as_str()) {
        (Scenario::Broadcast, "low") => Some(2),
        (Scenario::Broadcast, "medium") => Some(1),
        (Scenario::Broadcast, _) => Some(0),
        _ => None,
    };
    // Swarm viewers all on 127.0.0.2 (the address Janus's ICE is limited to here), told apart
    // by the port of Janus's agent for each.
    let swarm = match o.scenario {
        Scenario::Broadcast | Scenario::Storm if o.swarm > 0 => {
            Some(Arc::new(crate::swarm::Swarm::start_shared(o.swarm, std::net::Ipv4Addr::new(127, 0, 0, 2))?))
        }
        _ => None,
    };
    let mut subscribers = Vec::new();
    let mut subs = Vec::new();
    for (i, (room, who, publishes)) in plan.iter().enumerate() {
        let wanted: Vec<(u64, String)> =
            feeds.iter().filter(|f| &f.0 == room && &f.2 != who).map(|f| (f.1, f.2.clone())).collect();
        if wanted.is_empty() {
            // Nothing to receive (the broadcast's publisher): a state that stays empty keeps
            // `subs` in plan order.
            subs.push(State::default());
            continue;
        }
        if !publishes {
            joined[i] = Instant::now();
        }
        // A feed becomes subscribable a moment after its publisher's connection is up.
        let mut tries = 0;
        let s = loop {
            let joined = match &swarm {
                Some(s) if !publishes => janus::swarm_subscriber(&url, room_id(room), &wanted, substream, s).await,
                _ => janus::subscriber(&url, room_id(room), &wanted, substream).await,
            };
            match joined {
                Ok(s) => break s,
                Err(e) if tries < 50 && e.to_string().contains("No such feed") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        subs.push(s.state.clone());
        subscribers.push(s);
    }
    // `first_frames` pairs subscriber i with plan entry i: subscriber states in plan order.
    let set_up = first_frames(&subs, &plan, &joined).await;
    let states: Vec<State> = subscribers.iter().map(|s| s.state.clone()).collect();
    let target = if swarm.is_some() { "janus (swarm viewers)" } else { "janus" };
    let mut report = measure(target, o, pid, &states, set_up).await;
    if let (Some(s), Ok(r)) = (&swarm, report.as_mut()) {
        r.generator = format!("swarm: one thread and socket, 1 viewer in {} decrypting", s.sample);
    }
    if o.scenario == Scenario::Storm
        && let Ok(r) = report.as_mut()
    {
        let wanted: Vec<(u64, String)> = feeds.iter().map(|f| (f.1, f.2.clone())).collect();
        let (url, room) = (url.clone(), room_id("surgery"));
        let swarm = swarm.clone();
        match storm(o, pid, &states, move |_| {
            let (url, wanted, swarm) = (url.clone(), wanted.clone(), swarm.clone());
            async move {
                let s = match &swarm {
                    Some(sw) => janus::swarm_subscriber(&url, room, &wanted, substream, sw).await?,
                    None => janus::subscriber(&url, room, &wanted, substream).await?,
                };
                let state = s.state.clone();
                Ok((s, state))
            }
        })
        .await
        {
            Ok((figures, peers)) => {
                r.storm = Some(figures);
                subscribers.extend(peers);
            }
            Err(e) => report = Err(e),
        }
    }
    for p in subscribers.into_iter().chain(publishers) {
        p.close().await;
    }
    drop(swarm);
    report
}
