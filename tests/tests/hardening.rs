//! Defects an attack on a demo server found (issue 13), each against the real binary.
#![allow(clippy::unwrap_used)]

use futures_util::future::join_all;
use huizhen_tests::Process;
use serde_json::{Value, json};

/// Peak resident memory of a process, from the kernel's high-water mark.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kib / 1024
}

async fn flood(client: &reqwest::Client, url: &str) -> Vec<(u16, String, bool)> {
    join_all((0..150).map(|i| async move {
        let r = client
            .post(url)
            .json(&json!({ "username": format!("nobody-{i}"), "password": "a guess 12345" }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let retry_after = r.headers().contains_key("retry-after");
        let body: Value = r.json().await.unwrap();
        (status, body["code"].as_str().unwrap_or_default().to_owned(), retry_after)
    }))
    .await
}

/// 150 parallel sign-ins with unknown names once took the server from 48 MiB to 2.7 GiB: each
/// check is an argon2 hash of 19 MiB, and all ran at once. Now one runs (here), a few wait, and
/// the rest are told at once to come back (503 `busy`, Retry-After). Memory grows by what the
/// hashing thread keeps (about 70 MiB, measured) and not beyond on the next flood.
#[tokio::test]
async fn a_flood_of_sign_ins_is_bounded_in_memory_and_turned_away_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let p = Process::serve_env(
        dir.path(),
        &[],
        &[
            ("HUIZHEN_LIMITS__PASSWORD_HASHES_AT_ONCE", "1"),
            ("HUIZHEN_LIMITS__PASSWORD_HASHES_WAITING", "2"),
            // The per-IP request limit would turn the second flood away before any check.
            ("HUIZHEN_LIMITS__HTTP_REQUESTS_PER_SECOND", "0"),
        ],
    )
    .unwrap();
    let before = peak_rss_mib(p.child.id());
    let client = reqwest::Client::new();
    let url = format!("http://{}/v1/auth/login", p.addr);
    let mut peaks = Vec::new();
    for _ in 0..2 {
        let answers = flood(&client, &url).await;
        let checked = answers.iter().filter(|(s, c, _)| *s == 401 && c == "invalid_credentials").count();
        let busy = answers.iter().filter(|(s, c, r)| *s == 503 && c == "busy" && *r).count();
        assert_eq!(checked + busy, 150, "every answer is a checked 401 or a coded 503 busy: {answers:?}");
        assert!(checked >= 2, "the threads and the line were used ({checked} checked)");
        assert!(busy >= 1, "more than the threads and the line at once were turned away ({busy} busy)");
        peaks.push(peak_rss_mib(p.child.id()));
    }
    // One hash is 19 MiB; the allocator keeps up to a 64 MiB heap per hashing thread.
    assert!(
        peaks.iter().all(|p| *p < before + 160),
        "peak memory {peaks:?} MiB after each flood (at start {before} MiB): hashing was not bounded"
    );
}
