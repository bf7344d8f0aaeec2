//! A few seconds of the load generator in every scenario, so `huizhen-load` never rots: the
//! figures are not judged here (that is the benchmark's job), only that each scenario runs,
//! media reaches every subscriber, and every figure is measured.
#![allow(clippy::unwrap_used)]

use huizhen_tests::load::{Options, Scenario, args_for, markdown, run_huizhen, run_janus};

fn small(scenario: Scenario) -> Options {
    Options {
        scenario,
        seconds: 2,
        rooms: 1,
        sites: 3,
        viewers: 3,
        viewer_layer: "low".into(),
        joiners: 5,
        join_window_s: 1,
        pin: false,
        record: scenario == Scenario::Consultation,
        spread: 0,
        swarm: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_and_measures() {
    let mut reports = Vec::new();
    for s in [Scenario::Consultation, Scenario::Discussion, Scenario::Broadcast, Scenario::Storm] {
        let r = run_huizhen(&small(s)).await.unwrap();
        assert_eq!(r.missing_streams, 0, "{s:?}: a subscriber never got a publisher's video");
        assert!(r.forwarded_pps > 0.0 && r.cpu_ms_per_1000_packets.is_finite(), "{s:?}: {r:?}");
        assert!(r.latency_samples > 0 && r.latency_p99_ms.is_finite(), "{s:?}: no latency measured");
        assert!(r.join_first_frame_p95_ms.is_finite() && r.server_rss_mib > 0.0);
        let turns = r.server_turns.as_ref().unwrap();
        assert!(turns.turns > 0 && turns.p99_at_most_ms > 0.0, "{s:?}: the server's turns were read: {turns:?}");
        if s == Scenario::Storm {
            let t = r.storm.as_ref().unwrap();
            assert_eq!((t.watchers, t.joiners, t.joiners_missing), (3, 5, 0), "{t:?}");
            assert!(t.watchers_during_samples > 0 && t.watchers_during_p99_ms.is_finite(), "{t:?}");
            assert!(t.joiners_first_frame_p95_ms.is_finite() && t.during_cpu_pct > 0.0, "{t:?}");
            let turns = t.server_turns.as_ref().unwrap();
            assert!(turns.turns > 0 && turns.p99_at_most_ms > 0.0, "the server's turns were read: {turns:?}");
        } else {
            assert!(r.storm.is_none());
        }
        if s == Scenario::Consultation {
            let c = r.recording.as_ref().unwrap();
            assert!(c.files_mb > 0.0 && c.capture_kb_per_s > 0.0, "{c:?}");
        }
        reports.push(r);
    }
    // A broadcast over two workers (the host and one viewer on the room's home, two viewers on
    // the other worker).
    let r = run_huizhen(&Options { spread: 2, ..small(Scenario::Broadcast) }).await.unwrap();
    assert_eq!((r.target.as_str(), r.missing_streams), ("huizhen, 2 workers", 0), "{r:?}");
    assert!(r.forwarded_pps > 0.0 && r.latency_samples > 0, "{r:?}");
    reports.push(r);
    // The viewers on one socket (the swarm), one in two decrypting: every viewer counts its
    // packets, the decrypting ones measure latency.
    let r = run_huizhen(&Options { swarm: 2, ..small(Scenario::Storm) }).await.unwrap();
    assert_eq!(r.missing_streams, 0, "{r:?}");
    assert!(r.generator.starts_with("swarm"), "{r:?}");
    assert!(r.forwarded_pps > 0.0 && r.latency_samples > 0 && r.loss_pct < 5.0, "{r:?}");
    let t = r.storm.as_ref().unwrap();
    assert_eq!(t.joiners_missing, 0, "{t:?}");
    reports.push(r);
    // The Janus side of the benchmark (scripts/test.sh installs Janus; the run needs root or
    // passwordless sudo for its network namespace).
    let o = small(Scenario::Broadcast);
    let j = tokio::task::spawn_blocking(move || run_janus(&args_for(&o))).await.unwrap().unwrap();
    assert_eq!(j.target, "janus");
    assert_eq!(j.missing_streams, 0, "a Janus viewer never got the video");
    assert!(j.forwarded_pps > 0.0 && j.latency_samples > 0, "{j:?}");
    reports.push(j);
    // Janus with the swarm's viewers (all on one address, told apart by Janus's ports).
    let o = Options { swarm: 2, ..small(Scenario::Broadcast) };
    let j = tokio::task::spawn_blocking(move || run_janus(&args_for(&o))).await.unwrap().unwrap();
    assert_eq!((j.target.as_str(), j.missing_streams), ("janus (swarm viewers)", 0), "{j:?}");
    assert!(j.generator.starts_with("swarm"), "{j:?}");
    assert!(j.forwarded_pps > 0.0 && j.latency_samples > 0 && j.loss_pct < 5.0, "{j:?}");
    reports.push(j);
    let table = markdown(&reports);
    // The scenarios' table, then a blank line and the storm's own table of one row.
    assert_eq!(table.lines().count(), 2 + reports.len() + 1 + 4);
}
