//! API benchmark: requests/s and latency percentiles for "list my consultations" and "book a
//! specialist" on each store, and the server's start time. The server is the release binary in
//! its own process; the clients share the machine, so figures are for this machine as a whole.
//!
//! `cargo run --release -p huizhen-tests --bin bench-api -- [--seconds 5] [--clients 16]`
//!
//! At a consortium's size (issue 16): `… -- --scale 200000 --doctors 500 --nodes 3`: the store
//! filled with 200,000 consultations from 500 doctors (about a city's year), then the same
//! figures with clients spread over three nodes on one Redis (and the embedded store on its
//! one node).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use huizhen_tests::{Api, Process, RedisServer};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

struct Figures {
    requests: usize,
    errors: usize,
    secs: f64,
    lat_us: Vec<u64>,
}

impl Figures {
    fn pct(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return 0.0;
        }
        let i = ((self.lat_us.len() as f64 - 1.0) * p).round() as usize;
        self.lat_us[i] as f64 / 1000.0
    }
}

/// Runs `op(i)` from `clients` tasks until `secs` have passed (or `limit` ops were issued).
async fn drive<F, Fut>(clients: usize, secs: f64, limit: usize, op: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= limit {
                    break;
                }
                let t = Instant::now();
                if !op(i).await {
                    errors += 1;
                }
                lat.push(t.elapsed().as_micros() as u64);
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("benchmark client task");
        all.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    Figures { requests: all.len(), errors, secs, lat_us: all }
}

fn row(store: &str, what: &str, f: &Figures) -> String {
    format!(
        "| {store} | {what} | {:.0} | {:.2} | {:.2} | {:.2} | {} / {} |",
        f.requests as f64 / f.secs,
        f.pct(0.5),
        f.pct(0.95),
        f.pct(0.99),
        f.errors,
        f.requests
    )
}

/// "Book a specialist" for `ids` in turn, through the nodes in turn.
async fn book(
    apis: &Arc<Vec<Api>>,
    coord: &str,
    ids: &Arc<Vec<String>>,
    specialists: &[String; 3],
    secs: f64,
    clients: usize,
) -> Figures {
    let base = Timestamp::now() + SignedDuration::from_hours(24);
    drive(clients, secs, ids.len(), {
        let (apis, coord, ids, specialists) = (apis.clone(), coord.to_owned(), ids.clone(), specialists.clone());
        move |i| {
            let (api, coord) = (apis[i % apis.len()].clone(), coord.clone());
            let id = ids[i].clone();
            // Each specialist gets back-to-back 30-minute slots: every booking is valid.
            let start = base + SignedDuration::from_mins(30 * (i / 3) as i64);
            let body =
                json!({ "specialists": [specialists[i % 3]], "start": start.to_string(), "duration_minutes": 30 });
            async move { api.post(&format!("/v1/consultations/{id}/accept"), &coord, body).await.status == 200 }
        }
    })
    .await
}

async fn bench_store(store_flag: &[&str], label: &str, secs: f64, clients: usize) -> Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let mut args = vec!["--demo"];
    args.extend_from_slice(store_flag);
    // The per-IP rate limit would measure itself: all clients come from 127.0.0.1.
    let p = Process::serve_env(dir.path(), &args, &[("HUIZHEN_LIMITS__HTTP_REQUESTS_PER_SECOND", "0")])?;
    let api = Api::new(p.addr);
    let doctor = api.login("doctor-east").await;
    let coord = api.login("coordinator").await;
    let specialists = [
        api.user_id(&coord, "cardiologist").await,
        api.user_id(&coord, "neurologist").await,
        api.user_id(&coord, "surgeon").await,
    ];
    // Requests to book, made beforehand so booking is measured alone.
    let prepared = 8000;
    let mut ids = Vec::with_capacity(prepared);
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "routine", "summary": "bench" });
    let made = drive(clients, 600.0, prepared, {
        let (api, doctor, body) = (api.clone(), doctor.clone(), body.clone());
        move |_| {
            let (api, doctor, body) = (api.clone(), doctor.clone(), body.clone());
            async move { api.post("/v1/consultations", &doctor, body).await.status == 201 }
        }
    })
    .await;
    let first = api.get("/v1/consultations?limit=200", &doctor).await;
    let total = first.body["total"].as_u64().unwrap_or(0) as usize;
    let mut offset = 0;
    while ids.len() < total {
        let page = api.get(&format!("/v1/consultations?limit=200&offset={offset}"), &doctor).await;
        let items = page.body["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        ids.extend(items.iter().map(|c| c["id"].as_str().unwrap_or_default().to_owned()));
        offset += items.len();
    }
    let ids = Arc::new(ids);
    let booked = book(&Arc::new(vec![api.clone()]), &coord, &ids, &specialists, secs, clients).await;
    // "Mine" for the doctor: every consultation made above (one page of 50).
    let listing = drive(clients, secs, usize::MAX, {
        let (api, doctor) = (api.clone(), doctor.clone());
        move |_| {
            let (api, doctor) = (api.clone(), doctor.clone());
            async move { listed(&api, MINE, &doctor).await }
        }
    })
    .await;
    drop(p);
    Ok(vec![
        row(label, &format!("request a consultation (prep, {} made)", made.requests), &made),
        row(label, "book a specialist (accept)", &booked),
        row(label, &format!("list my consultations ({total} in store, page 50)"), &listing),
    ])
}

/// The store at a consortium's size: `doctors` accounts request `total` consultations between
/// them (round robin), through `nodes` server processes on the same store; then "list my
/// consultations" (a random doctor's first page) and "book a specialist" from `clients` tasks
/// spread over the nodes.
async fn bench_scale(
    redis: Option<&str>,
    label: &str,
    total: usize,
    doctors: usize,
    nodes: usize,
    secs: f64,
    clients: usize,
) -> Result<Vec<String>> {
    const SECRET: &str = "bench-scale-secret-every-node-shares-0123456789";
    let dirs: Vec<_> = (0..nodes).map(|_| tempfile::tempdir()).collect::<Result<_, _>>()?;
    let mut procs = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let mut args = if i == 0 { vec!["--demo"] } else { Vec::new() };
        if let Some(url) = redis {
            args.extend(["--store", url]);
        }
        let env = [("HUIZHEN_LIMITS__HTTP_REQUESTS_PER_SECOND", "0"), ("HUIZHEN_JWT_SECRET", SECRET)];
        procs.push(Process::serve_env(dir.path(), &args, &env)?);
    }
    let apis: Arc<Vec<Api>> = Arc::new(procs.iter().map(|p| Api::new(p.addr)).collect());
    let api = apis[0].clone();
    // The first start's administrator replaces its one-time password, then makes the doctors.
    let first = procs[0].admin_password().ok_or_else(|| anyhow::anyhow!("no admin password printed"))?;
    let admin = api.login_as("admin", &first).await;
    let own = format!("{first}-own");
    api.post("/v1/me/password", &admin, json!({ "old_password": first, "new_password": own })).await.ok();
    let admin = api.login_as("admin", &own).await;
    let users = api.get("/v1/users", &admin).await.ok();
    let site = users["items"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["username"] == "doctor-east"))
        .map(|u| u["site_id"].clone())
        .unwrap_or_default();
    let password = "bench-scale-password";
    let made = drive(clients, 600.0, doctors, {
        let (api, admin, site) = (api.clone(), admin.clone(), site.clone());
        move |i| {
            let (api, admin) = (api.clone(), admin.clone());
            let body = json!({ "username": format!("bench-doctor-{i}"), "display_name": format!("Doctor {i}"),
                               "role": "doctor", "password": password, "site_id": site });
            async move { api.post("/v1/users", &admin, body).await.status == 201 }
        }
    })
    .await;
    anyhow::ensure!(made.errors == 0, "{} doctor accounts not made", made.errors);
    let tokens = Arc::new(std::sync::Mutex::new(vec![String::new(); doctors]));
    drive(clients, 600.0, doctors, {
        let (api, tokens) = (api.clone(), tokens.clone());
        move |i| {
            let (api, tokens) = (api.clone(), tokens.clone());
            async move {
                let t = api.login_as(&format!("bench-doctor-{i}"), password).await;
                tokens.lock().unwrap_or_else(|p| p.into_inner())[i] = t;
                true
            }
        }
    })
    .await;
    let tokens: Arc<Vec<String>> = Arc::new(std::mem::take(&mut *tokens.lock().unwrap_or_else(|p| p.into_inner())));
    let coord = api.login("coordinator").await;
    let specialists = [
        api.user_id(&coord, "cardiologist").await,
        api.user_id(&coord, "neurologist").await,
        api.user_id(&coord, "surgeon").await,
    ];
    // The store filled: every request through the next node in turn.
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let body = json!({ "kind": "consultation", "specialty": "cardiology", "urgency": "routine", "summary": "bench" });
    let filled = drive(clients, 3600.0, total, {
        let (apis, tokens, ids, body) = (apis.clone(), tokens.clone(), ids.clone(), body.clone());
        move |i| {
            let (api, token, ids, body) =
                (apis[i % apis.len()].clone(), tokens[i % tokens.len()].clone(), ids.clone(), body.clone());
            async move {
                let r = api.post("/v1/consultations", &token, body).await;
                if let Some(id) = r.body["id"].as_str() {
                    ids.lock().unwrap_or_else(|p| p.into_inner()).push(id.to_owned());
                }
                r.status == 201
            }
        }
    })
    .await;
    let ids: Arc<Vec<String>> = Arc::new(std::mem::take(&mut *ids.lock().unwrap_or_else(|p| p.into_inner())));
    // "Mine" for one doctor after another (each has total / doctors), through every node.
    let listing = drive(clients, secs, usize::MAX, {
        let (apis, tokens) = (apis.clone(), tokens.clone());
        move |i| {
            let (api, token) = (apis[i % apis.len()].clone(), tokens[(i * 7919) % tokens.len()].clone());
            async move { listed(&api, MINE, &token).await }
        }
    })
    .await;
    // The consultation centre's queue: everything, newest first, and the requests waiting.
    let queue = |path: &'static str| {
        let (apis, coord) = (apis.clone(), coord.clone());
        move |i: usize| {
            let (api, coord) = (apis[i % apis.len()].clone(), coord.clone());
            async move { listed(&api, path, &coord).await }
        }
    };
    let queue_all = drive(clients, secs, usize::MAX, queue("/v1/consultations?limit=50")).await;
    let queue_requested = drive(clients, secs, usize::MAX, queue("/v1/consultations?status=requested&limit=50")).await;
    let booked = book(&apis, &coord, &ids, &specialists, secs, clients).await;
    let where_ = format!("{nodes} node{}", if nodes == 1 { "" } else { "s" });
    drop(procs);
    Ok(vec![
        row(
            label,
            &format!("fill: request a consultation ({} made, {doctors} doctors, {where_})", filled.requests),
            &filled,
        ),
        row(
            label,
            &format!(
                "list my consultations ({} in store, ~{} each, page 50, {where_})",
                ids.len(),
                ids.len() / doctors.max(1)
            ),
            &listing,
        ),
        row(label, &format!("the centre's queue: all, newest first (page 50, {where_})"), &queue_all),
        row(label, &format!("the centre's queue: status requested (page 50, {where_})"), &queue_requested),
        row(label, &format!("book a specialist (accept, {where_})"), &booked),
    ])
}

/// "List my consultations", first page of 50.
const MINE: &str = "/v1/consultations?mine=true&limit=50";

/// A list's page came back (read, not parsed).
async fn listed(api: &Api, path: &str, token: &str) -> bool {
    let (status, body) = api.get_unparsed(path, token).await;
    status == 200 && body.starts_with(br#"{"items":[{"#)
}

fn start_time(extra: &[&str]) -> Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    let p = Process::serve(dir.path(), extra)?;
    let first = t.elapsed().as_secs_f64() * 1000.0;
    drop(p);
    let t = Instant::now();
    let p = Process::serve(dir.path(), extra)?;
    let again = t.elapsed().as_secs_f64() * 1000.0;
    drop(p);
    Ok((first, again))
}

#[tokio::main]
async fn main() -> Result<()> {
    let secs = huizhen_tests::flag("--seconds", 5.0);
    let clients = huizhen_tests::flag("--clients", 16.0) as usize;
    let redis = RedisServer::start()?;
    let redis_url = redis.url();
    let scale = huizhen_tests::flag("--scale", 0usize);
    if scale > 0 {
        let doctors = huizhen_tests::flag("--doctors", 500usize);
        let nodes = huizhen_tests::flag("--nodes", 3usize);
        let mut rows = bench_scale(Some(&redis_url), "redis", scale, doctors, nodes, secs, clients).await?;
        if huizhen_tests::flag("--embedded", 1u8) == 1 {
            rows.extend(bench_scale(None, "embedded", scale, doctors, 1, secs, clients).await?);
        }
        println!("API benchmark at scale: {clients} concurrent clients, {secs} s per figure, release build\n");
        println!("| store | operation | req/s | p50 ms | p95 ms | p99 ms | errors / requests |");
        println!("|---|---|---|---|---|---|---|");
        for r in rows {
            println!("{r}");
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    rows.extend(bench_store(&[], "embedded", secs, clients).await?);
    rows.extend(bench_store(&["--store", &redis_url], "redis", secs, clients).await?);
    let (cold, warm) = start_time(&[])?;
    let fresh = RedisServer::start()?;
    let (cold_r, warm_r) = start_time(&["--store", &fresh.url()])?;
    println!(
        "API benchmark: {clients} concurrent clients, {secs} s per figure, release build, server in its own process\n"
    );
    println!("| store | operation | req/s | p50 ms | p95 ms | p99 ms | errors / requests |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    println!("\n| start-up (spawn → address printed) | embedded | redis |\n|---|---|---|");
    println!("| first start (creates admin, hashes password) | {cold:.0} ms | {cold_r:.0} ms |");
    println!("| restart on existing data | {warm:.0} ms | {warm_r:.0} ms |");
    Ok(())
}
