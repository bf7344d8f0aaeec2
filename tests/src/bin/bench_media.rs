//! Media benchmark: one room of N webrtc-rs participants, each publishing video (30 frames/s,
//! several packets a frame) and audio and receiving everyone else, through the release server
//! in its own process. Reports join-to-first-frame percentiles, forwarded packets/s and the
//! server's CPU (from /proc/<pid>/stat, the server process only).
//!
//! With `--clip 1` the publishers send the real VP8/Opus test clip (640x360, about 600 kbit/s)
//! instead of synthetic packets; with `--record 1` (implies the clip) the room is measured
//! twice, without and then with recording, and the recording's disk use and finalising time
//! are reported.
//!
//! `cargo run --release -p huizhen-tests --bin bench-media -- [--publishers 4] [--seconds 20] [--clip 1] [--record 1]`

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use huizhen_tests::Process;
use huizhen_tests::media::{MediaPeer, Synth};

fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
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

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<()> {
    let n = huizhen_tests::flag("--publishers", 4) as usize;
    let secs = huizhen_tests::flag("--seconds", 20);
    let record = huizhen_tests::flag("--record", 0) == 1;
    let clip = record || huizhen_tests::flag("--clip", 0) == 1;
    let dir = tempfile::tempdir()?;
    let p = Process::serve_env(dir.path(), &[], &[("HUIZHEN_LIMITS__HTTP_REQUESTS_PER_SECOND", "0")])?;
    let pid = p.child.id();
    let bin = huizhen_tests::huizhen_binary();
    let token = |who: &str| -> Result<String> {
        let mut cmd = std::process::Command::new(&bin);
        cmd.args([
            "token",
            "--room",
            "bench",
            "--identity",
            who,
            "--publish",
            "--subscribe",
            "--data",
            "--ttl",
            "3600",
        ]);
        if who == "site0" {
            cmd.args(["--admin", "--record"]);
        }
        let out = cmd.arg("--data-dir").arg(dir.path()).output()?;
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    let idle_cpu = cpu_ticks(pid)?;
    let mut peers = Vec::new();
    let mut started = Vec::new();
    for i in 0..n {
        let who = format!("site{i}");
        let (video, audio) = if clip {
            (Synth::clip_video("cam", &format!("{who}/cam")), Synth::clip_audio("mic", &format!("{who}/mic")))
        } else {
            let mut video = Synth::video("cam", &format!("{who}/cam"));
            // ~720 kbit/s: 3 packets of 1000 bytes per frame at 30 frames/s, like a 640×360 camera.
            video.packets_per_frame = 3;
            video.pad = 1000;
            let mut audio = Synth::speaking("mic", &format!("{who}/mic"), 40);
            audio.pad = 120;
            (video, audio)
        };
        let url = format!("ws://{}/v1/rtc?token={}", p.addr, token(&who)?);
        started.push(Instant::now());
        peers.push(MediaPeer::join(&url, vec![video, audio]).await);
    }
    // Join to first frame: from a participant's join to the first video packet of each other
    // participant that it receives (the later of its own join and the publisher's).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first_frame_ms = Vec::new();
    for (i, peer) in peers.iter().enumerate() {
        for j in 0..n {
            if i == j {
                continue;
            }
            let tag = format!("site{j}/cam");
            let at = loop {
                let at = peer.snapshot(|s| {
                    s.received.values().find(|r| r.track == tag || r.tags.contains(&tag)).and_then(|r| r.first_at)
                });
                if let Some(at) = at {
                    break at;
                }
                anyhow::ensure!(Instant::now() < deadline, "no video from {tag} at site{i}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let from = started[i].max(started[j]);
            first_frame_ms.push(at.saturating_duration_since(from).as_secs_f64() * 1000.0);
        }
    }
    let count = |peers: &Vec<MediaPeer>| -> u64 {
        peers.iter().map(|p| p.snapshot(|s| s.received.values().map(|r| r.packets).sum::<u64>())).sum()
    };
    let (c0, p0, t0) = (cpu_ticks(pid)?, count(&peers), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (c1, p1, elapsed) = (cpu_ticks(pid)?, count(&peers), t0.elapsed().as_secs_f64());
    let rss = rss_kib(pid);
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let cpu_secs = (c1 - c0) as f64 / ticks_per_sec;
    let pps = (p1 - p0) as f64 / elapsed;
    let video_pps = if clip { huizhen_tests::clip::video_packets_per_second() } else { 90.0 };
    let expected_pps = (n * (n - 1)) as f64 * (video_pps + 50.0);
    let what = if clip {
        "the VP8/Opus test clip, 640x360 ≈ 600 kbit/s + Opus 32 kbit/s each"
    } else {
        "video 90 pkt/s ≈ 720 kbit/s + audio 50 pkt/s each"
    };
    println!("Media benchmark: one room of {n} publishers ({what}), {secs} s, release build\n");
    println!("| figure | value |\n|---|---|");
    println!(
        "| join → first video packet p50 / p95 / max | {:.0} / {:.0} / {:.0} ms |",
        pct(&mut first_frame_ms.clone(), 0.5),
        pct(&mut first_frame_ms.clone(), 0.95),
        pct(&mut first_frame_ms, 1.0)
    );
    println!(
        "| packets received by all subscribers | {pps:.0} /s (sent for forwarding: {expected_pps:.0} /s, {:.2}% short) |",
        100.0 * (1.0 - pps / expected_pps)
    );
    println!("| server CPU | {:.1}% of one core ({cpu_secs:.2} s in {elapsed:.1} s) |", 100.0 * cpu_secs / elapsed);
    println!("| server CPU per 1,000 forwarded packets | {:.2} ms |", 1000.0 * cpu_secs / ((p1 - p0) as f64 / 1000.0));
    println!("| server RSS | {} MiB |", rss / 1024);
    println!("| server CPU while joining (all setup) | {:.2} s |", (c0 - idle_cpu) as f64 / ticks_per_sec);
    if record {
        // The same room again for as long, now recorded.
        let recordings = dir.path().join("recordings");
        peers[0].send(serde_json::json!({ "type": "start_recording", "id": "bench-rec" }));
        let t_start = Instant::now();
        loop {
            let acked = peers[0].snapshot(|s| s.messages.iter().any(|m| m["type"] == "ack" && m["id"] == "bench-rec"));
            if acked {
                break;
            }
            anyhow::ensure!(t_start.elapsed() < Duration::from_secs(10), "recording did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (rc0, rt0, d0) = (cpu_ticks(pid)?, Instant::now(), dir_bytes(&recordings));
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (rc1, relapsed, d1) = (cpu_ticks(pid)?, rt0.elapsed().as_secs_f64(), dir_bytes(&recordings));
        let rec_cpu = (rc1 - rc0) as f64 / ticks_per_sec;
        let t_stop = Instant::now();
        peers[0].send(serde_json::json!({ "type": "stop_recording", "id": "bench-stop" }));
        let manifest = loop {
            if let Some(m) = find_manifest(&recordings) {
                break m;
            }
            anyhow::ensure!(t_stop.elapsed() < Duration::from_secs(300), "recording was not finalised");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let finalise_s = t_stop.elapsed().as_secs_f64();
        let c_after = cpu_ticks(pid)?;
        let files: u64 =
            manifest["files"].as_array().map(|f| f.iter().filter_map(|x| x["bytes"].as_u64()).sum()).unwrap_or(0);
        let composite = manifest["files"].as_array().is_some_and(|f| f.iter().any(|x| x["kind"] == "composite"));
        println!("\nRecording the same room ({n} participants, audio and video each) for {relapsed:.1} s:\n");
        println!("| figure | value |\n|---|---|");
        println!(
            "| server CPU without / with recording | {:.1}% / {:.1}% of one core (+{:.1} points) |",
            100.0 * cpu_secs / elapsed,
            100.0 * rec_cpu / relapsed,
            100.0 * (rec_cpu / relapsed - cpu_secs / elapsed)
        );
        println!(
            "| capture written to disk | {:.0} kB/s ({:.1} MB per hour) |",
            (d1 - d0) as f64 / relapsed / 1000.0,
            (d1 - d0) as f64 / relapsed * 3600.0 / 1e6
        );
        println!(
            "| finished files (per-participant WebM{}) | {:.1} MB for {relapsed:.0} s ({:.0} MB per hour) |",
            if composite { " + composite" } else { "" },
            files as f64 / 1e6,
            files as f64 / relapsed * 3600.0 / 1e6
        );
        println!(
            "| finalising after stop (wall / server CPU) | {finalise_s:.1} s / {:.1} s |",
            (c_after - rc1) as f64 / ticks_per_sec
        );
    }
    for peer in peers {
        peer.close().await;
    }
    drop(p);
    Ok(())
}
