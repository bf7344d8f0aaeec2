//! The soak (see `huizhen_tests::soak`): consultations with media, recordings, churn and Redis
//! restarts against a real server process, sampling its resources after every round.
//!
//! `cargo run --release -p huizhen-tests --bin huizhen-soak -- --minutes 60 --json soak.json`
//! Options: `--minutes 60`, `--min-rounds 3`, `--record-secs 5`, `--redis-restarts 2`,
//! `--json FILE`. Exits non-zero when anything was lost or a round failed.

use std::time::Duration;

use anyhow::{Result, bail};
use huizhen_tests::flag;
use huizhen_tests::soak::{Options, run};

#[tokio::main]
async fn main() -> Result<()> {
    let minutes: f64 = flag("--minutes", 60.0);
    let o = Options {
        duration: Duration::from_secs_f64(minutes * 60.0),
        min_rounds: flag("--min-rounds", 3),
        record_secs: flag("--record-secs", 5),
        redis_restarts: flag("--redis-restarts", 2),
    };
    let report = run(&o).await?;
    println!("| round | at (s) | RSS (MiB) | fds | threads | tasks | rooms | sockets | media conns |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for s in &report.samples {
        println!(
            "| {} | {:.0} | {:.1} | {} | {} | {} | {} | {} | {} |",
            s.round,
            s.at_secs,
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.threads,
            s.tasks,
            s.rooms,
            s.ws_connections,
            s.media_connections
        );
    }
    println!(
        "rounds {}, {:.0} s, recordings complete {}/{}, Redis restarts {}, calls retried over a restart {}, subscribe offers {}",
        report.rounds,
        report.seconds,
        report.recordings_complete,
        report.consultations.len(),
        report.redis_restarts,
        report.retried_calls,
        report.subscribe_offers
    );
    let json: String = flag("--json", String::new());
    if !json.is_empty() {
        std::fs::write(&json, serde_json::to_vec_pretty(&report)?)?;
    }
    if !report.lost.is_empty() {
        bail!("lost: {:?}", report.lost);
    }
    Ok(())
}
