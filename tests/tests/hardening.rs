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

/// Reads until the server closes the connection; what it sent, or `None` if it stayed open
/// for `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: std::time::Duration) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| got)
}

async fn connect_from(source: [u8; 4], to: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((std::net::Ipv4Addr::from(source), 0).into()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Issue 13 item 4: 300 silent connections stayed open, headers at one byte per 5 s were
/// accepted for 70 s, and with a low file limit `/healthz` stopped answering. Now a silent or
/// trickling connection is closed after the header timeout, and one address holds at most
/// its share of connections while others are still served.
#[tokio::test]
async fn silent_slow_and_too_many_connections_are_closed_while_others_are_served() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let p = Process::serve_env(
        dir.path(),
        &[],
        &[("HUIZHEN_LIMITS__HTTP_CONNECTIONS_PER_IP", "5"), ("HUIZHEN_LIMITS__HTTP_HEADER_TIMEOUT_SECS", "2")],
    )
    .unwrap();
    let generous = std::time::Duration::from_secs(15);

    // A silent connection is closed by the server, long before the generous wait.
    let mut silent = connect_from([127, 0, 0, 2], p.addr).await;
    assert!(closed_within(&mut silent, generous).await.is_some(), "a silent connection stays open");

    // Headers at one byte per 500 ms (a whole request would take 20 s): closed part-way.
    let mut slow = connect_from([127, 0, 0, 3], p.addr).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: huizhen\r\n\r\n";
    let mut sent = 0;
    for b in request {
        if slow.write_all(&[*b]).await.is_err() {
            break;
        }
        sent += 1;
        if closed_within(&mut slow, std::time::Duration::from_millis(500)).await.is_some() {
            break;
        }
    }
    assert!(sent < request.len(), "the trickled request was read to its end ({sent} bytes)");

    // Five connections from one address are its share; a sixth is closed at once, unanswered,
    // while another address is still served.
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from([127, 0, 0, 4], p.addr).await);
    }
    let mut sixth = connect_from([127, 0, 0, 4], p.addr).await;
    let _ = sixth.write_all(request).await;
    let answer = closed_within(&mut sixth, generous).await.expect("the sixth connection stays open");
    assert!(answer.is_empty(), "the sixth connection was answered: {}", String::from_utf8_lossy(&answer));
    let mut other = connect_from([127, 0, 0, 5], p.addr).await;
    other.write_all(b"GET /healthz HTTP/1.1\r\nHost: huizhen\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = closed_within(&mut other, generous).await.expect("healthz answered and closed");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    drop(held);
}

fn modes_under(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u32)>) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        out.push((path.clone(), meta.permissions().mode() & 0o777));
        if meta.is_dir() {
            modes_under(&path, out);
        }
    }
}

/// Issue 13 item 11: the database and recordings were created 0644 outside systemd; answers
/// with case text had no `Cache-Control: no-store` and no `Referrer-Policy`; a duplicated
/// `token` on the signaling URL got a plain-text 400.
#[tokio::test]
async fn files_are_private_answers_uncached_and_a_bad_query_is_coded() {
    let dir = tempfile::tempdir().unwrap();
    let p = Process::serve(dir.path(), &["--demo"]).unwrap();
    let mut modes = Vec::new();
    modes_under(dir.path(), &mut modes);
    assert!(modes.len() >= 2, "the data directory has the database and the key: {modes:?}");
    for (path, mode) in &modes {
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}: readable by others", path.display());
    }

    let client = reqwest::Client::new();
    let r = client.get(format!("http://{}/v1/consultations", p.addr)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let page = client.get(format!("http://{}/", p.addr)).send().await.unwrap();
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");

    let r = client
        .get(format!("http://{}/v1/rtc?token=a&token=b", p.addr))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_field", "{body}");
}
