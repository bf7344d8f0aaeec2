//! Load generator: drives a real Huizhen server with webrtc-rs peers sending the VP8/Opus test
//! clip, in one of three scenarios, for a bounded time, and reports JSON and a Markdown table.
//!
//! `cargo run --release -p huizhen-tests --bin huizhen-load -- --scenario broadcast --viewers 50 --seconds 20`
//! Options: `--target huizhen|janus|both` (Janus needs root and the `janus` package),
//! `--scenario consultation|discussion|broadcast|storm|all`, `--seconds 20`, `--rooms 5`,
//! `--sites 20`, `--viewers 50`, `--viewer-layer low|medium|high`, `--joiners 200`,
//! `--join-window 2` (storm: viewers joining while the others watch), `--pin 1` (server on its own
//! core), `--record 1` (then record the first room for as long again and report the cost),
//! `--json <file>`.

use anyhow::Result;
use huizhen_tests::flag;
use huizhen_tests::load::{Options, Report, Scenario, args_for, janus_inner, markdown, run_huizhen, run_janus};

const USAGE: &str = "huizhen-load: drive a real Huizhen server (and Janus) with webrtc-rs peers

  cargo run --release -p huizhen-tests --bin huizhen-load -- [options]

  --target huizhen|janus|both       what to measure (default both; Janus needs root and the janus package)
  --scenario consultation|discussion|broadcast|storm|all   (default all: the first three)
  --seconds N        measured seconds per scenario (default 20)
  --rooms N          consultation rooms of 4 (default 5)
  --sites N          sites in the discussion room (default 20)
  --viewers N        broadcast viewers (default 50)
  --viewer-layer low|medium|high    layer the viewers ask for (default low)
  --joiners N        storm: viewers joining while --viewers watch (default 200)
  --join-window S    storm: seconds they join within (default 2)
  --pin 1|0          server on its own core, generator on the other (default 1)
  --record 1         also record the first room and report the cost
  --swarm N          broadcast/storm: viewers on one thread and socket, 1 in N
                     decrypting (latency is measured on those); 0: a webrtc-rs peer each
  --spread N         Huizhen on two media workers, N members on a room's home before viewers
                     go to the other (what handing packets between workers costs)
  --json FILE        write the JSON report to FILE too
";

#[tokio::main]
async fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return Ok(());
    }
    let which: String = flag("--scenario", "all".to_string());
    let scenarios = match which.as_str() {
        "all" => vec![Scenario::Consultation, Scenario::Discussion, Scenario::Broadcast],
        s => vec![s.parse()?],
    };
    let target: String = flag("--target", "both".to_string());
    let inner = flag("--janus-inner", 0) == 1;
    let mut reports: Vec<Report> = Vec::new();
    for scenario in scenarios {
        let o = Options {
            scenario,
            seconds: flag("--seconds", 20),
            rooms: flag("--rooms", 5),
            sites: flag("--sites", 20),
            viewers: flag("--viewers", 50),
            viewer_layer: flag("--viewer-layer", "low".to_string()),
            joiners: flag("--joiners", 200),
            join_window_s: flag("--join-window", 2),
            pin: flag("--pin", 1) == 1,
            record: flag("--record", 0) == 1,
            spread: flag("--spread", 0),
            swarm: flag("--swarm", 0),
        };
        if inner {
            // In the network namespace made for Janus (see `run_janus`).
            let r = janus_inner(&o).await?;
            println!("JANUS-REPORT {}", serde_json::to_string(&r)?);
            return Ok(());
        }
        if target != "janus" {
            eprintln!("running {scenario:?} against Huizhen…");
            reports.push(run_huizhen(&o).await?);
        }
        if target != "huizhen" {
            eprintln!("running {scenario:?} against Janus…");
            reports.push(run_janus(&args_for(&o))?);
        }
    }
    let json = serde_json::to_string_pretty(&reports)?;
    let out: String = flag("--json", String::new());
    if !out.is_empty() {
        std::fs::write(&out, &json)?;
    }
    println!("{json}\n");
    println!("{}", markdown(&reports));
    for r in &reports {
        if let Some(c) = &r.recording {
            println!(
                "\nRecording ({}): server CPU {:.1}% while recording (vs {:.1}% without); capture {:.0} kB/s; files {:.1} MB ({:.0} MB/hour{}); finalising {:.1} s wall, {:.1} s CPU",
                r.scenario,
                c.server_cpu_pct,
                r.server_cpu_pct,
                c.capture_kb_per_s,
                c.files_mb,
                c.files_mb_per_hour,
                if c.composite { ", composite included" } else { "" },
                c.finalise_wall_s,
                c.finalise_cpu_s
            );
        }
    }
    Ok(())
}
