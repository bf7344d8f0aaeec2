//! Media benchmark: one room of N webrtc-rs participants, each publishing video (30 frames/s,
//! several packets a frame) and audio and receiving everyone else, through the release server
//! in its own process. Reports join-to-first-frame percentiles, forwarded packets/s and the
//! server's CPU (from /proc/<pid>/stat, the server process only).
//!
//! `cargo run --release -p huizhen-tests --bin bench-media -- [--publishers 4] [--seconds 20]`

use std::time::{Duration, Instant};

use anyhow::Result;
use huizhen_tests::Process;
use huizhen_tests::load::{cpu_ticks, percentile as pct, rss_kib};
use huizhen_tests::media::{MediaPeer, Synth};

#[tokio::main]
async fn main() -> Result<()> {
    let n = huizhen_tests::flag("--publishers", 4) as usize;
    let secs = huizhen_tests::flag("--seconds", 20);
    let dir = tempfile::tempdir()?;
    let p = Process::serve_env(dir.path(), &[], &[("HUIZHEN_LIMITS__HTTP_REQUESTS_PER_SECOND", "0")])?;
    let pid = p.child.id();
    let bin = huizhen_tests::huizhen_binary();
    let token = |who: &str| -> Result<String> {
        let out = std::process::Command::new(&bin)
            .args([
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
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .output()?;
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    let idle_cpu = cpu_ticks(pid)?;
    let mut peers = Vec::new();
    let mut started = Vec::new();
    for i in 0..n {
        let who = format!("site{i}");
        let mut video = Synth::video("cam", &format!("{who}/cam"));
        // ~720 kbit/s: 3 packets of 1000 bytes per frame at 30 frames/s, like a 640×360 camera.
        video.packets_per_frame = 3;
        video.pad = 1000;
        let mut audio = Synth::speaking("mic", &format!("{who}/mic"), 40);
        audio.pad = 120;
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
                let at =
                    peer.snapshot(|s| s.received.values().find(|r| r.tags.contains(&tag)).and_then(|r| r.first_at));
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
    let expected_pps = (n * (n - 1)) as f64 * (90.0 + 50.0);
    println!(
        "Media benchmark: one room of {n} publishers (video 90 pkt/s ≈ 720 kbit/s + audio 50 pkt/s each), {secs} s, release build\n"
    );
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
    for peer in peers {
        peer.close().await;
    }
    drop(p);
    Ok(())
}
