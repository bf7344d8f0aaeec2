//! Two minutes of the soak in the suite (the hour is `huizhen-soak --minutes 60`, figures in
//! docs/performance.md): consultations with media, recordings and churn on a real server
//! process and a real Redis restarted twice. Nothing may be lost, and once the server is idle
//! after a round its sockets, tasks, rooms and connections must be back where they were.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use huizhen_tests::soak::{Options, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_minutes_of_churn_lose_nothing_and_leak_nothing() {
    let o = Options { duration: Duration::from_secs(120), min_rounds: 6, record_secs: 3, redis_restarts: 2 };
    let r = run(&o).await.unwrap();
    let table: Vec<String> = r.samples.iter().map(|s| format!("{s:?}")).collect();
    let table = table.join("\n");
    assert!(r.lost.is_empty(), "lost: {:?}", r.lost);
    assert_eq!(r.redis_restarts, 2, "{table}");
    assert_eq!(r.recordings_complete, r.rounds);
    // Round 1 warms things up (media workers, the blocking pool, Redis connections).
    let base = &r.samples[1];
    for s in &r.samples[1..] {
        assert_eq!((s.rooms, s.ws_connections, s.media_connections), (0, 0, 0), "idle after a round:\n{table}");
        assert!(s.tasks <= base.tasks + 2, "tasks grow round after round:\n{table}");
        assert!(s.fds <= base.fds + 3, "file descriptors grow round after round:\n{table}");
    }
    // Memory: the allocator's caches fill over the first rounds (mimalloc: 50 -> 80 MiB over
    // eight rounds, then flat), so the second half of the run is held to the first half's
    // peak: a leak keeps growing past it, a warm-up does not.
    let half = r.samples.len() / 2;
    let peak = r.samples[1..half.max(2)].iter().map(|s| s.rss_kib).max().unwrap_or(base.rss_kib);
    let last = r.samples.last().unwrap();
    assert!(last.rss_kib <= peak * 6 / 5, "RSS grows round after round:\n{table}");
}
