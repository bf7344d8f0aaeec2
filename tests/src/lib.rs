//! Test harness: real servers and real `redis-server` instances on loopback, and small clients
//! for the HTTP API and the signaling socket. Waiting is always for a condition with a
//! deadline, never a bare sleep.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

pub use huizhen;

pub mod clip;
pub mod janus;
pub mod load;
pub mod media;
pub mod soak;
pub mod swarm;

/// `--name value` from the command line of a benchmark binary, or `default`.
pub fn flag<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A TLS client that trusts exactly the certificates in `root_pem` (a self-signed server's
/// own, or a test CA's root), with ring as the rest of the project.
pub fn tls_connector(root_pem: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(root_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A free port below the kernel's ephemeral range (32768–60999 by default), for a server that
/// is killed and started again on the same port: while it is down, no outgoing connection or
/// `bind(0)` of another test can be given its port (with [`free_port`] one was, in CI, and the
/// restarted node could not listen). Each port is handed out once per test process.
pub fn stable_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let start = h.finish() as u32;
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 20_000 + (start.wrapping_add(n.wrapping_mul(7919)) % 12_000) as u16;
        if StdListener::bind(("127.0.0.1", port)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Polls `check` until it returns true or the deadline passes.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn which(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A private `redis-server` on a free port, stopped when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    persistent: bool,
}

impl RedisServer {
    pub fn start() -> Result<Self> {
        Self::start_with(false)
    }

    /// With an append-only file, so data survives `stop` + `restart`.
    pub fn start_persistent() -> Result<Self> {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> Result<Self> {
        if !which("redis-server") {
            bail!("redis-server is not installed (the test script installs it: scripts/test.sh)");
        }
        let mut r = RedisServer { port: free_port(), child: None, dir: tempfile::tempdir()?, persistent };
        r.spawn()?;
        Ok(r)
    }

    fn spawn(&mut self) -> Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path());
        cmd.args(["--appendonly", if self.persistent { "yes" } else { "no" }, "--appendfsync", "always"]);
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().context("starting redis-server")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("redis-server did not answer PING on port {}", self.port)
    }

    fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL), as a crash or a network cut would look to us.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A coturn TURN server on loopback with the TURN REST secret (`use-auth-secret`), as
/// `deploy/` runs it beside Huizhen: the server hands clients credentials derived from the
/// same secret.
pub struct Coturn {
    pub port: u16,
    child: Child,
    _log: tempfile::TempDir,
}

impl Coturn {
    pub fn start(secret: &str) -> Result<Self> {
        if !which("turnserver") {
            bail!("turnserver is not installed (the test script installs coturn: scripts/test.sh)");
        }
        let port = free_port();
        let log = tempfile::tempdir()?;
        let child = Command::new("turnserver")
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint", "--listening-ip", "127.0.0.1"])
            .args(["--relay-ip", "127.0.0.1", "--listening-port", &port.to_string()])
            .args(["--min-port", "61000", "--max-port", "61999", "--realm", "huizhen.test"])
            .args(["--use-auth-secret", "--static-auth-secret", secret])
            // Huizhen's media listens on loopback in tests; coturn refuses loopback peers unless told.
            .arg("--allow-loopback-peers")
            // Its files in a temporary directory, not /var: the suite need not run as root.
            .arg("--log-file")
            .arg(log.path().join("turn.log"))
            .arg("--pidfile")
            .arg(log.path().join("turn.pid"))
            .arg("--userdb")
            .arg(log.path().join("turndb"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting turnserver")?;
        let c = Coturn { port, child, _log: log };
        // coturn listens on TCP and UDP on the same port; TCP answering means it is up.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("turnserver did not start listening on {port}")
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Configuration for a test server: loopback, port 0, a fresh data dir, no HTTP rate limit.
pub fn test_config(data_dir: &Path) -> huizhen::config::Config {
    let mut c = huizhen::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        log: "warn".into(),
        ..Default::default()
    };
    c.limits.http_requests_per_second = 0;
    // Any free port: tests run many servers at once.
    c.media.udp_port = 0;
    c.media.workers = 1;
    c
}

/// A real server in this process, on a real listener.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: huizhen::state::AppState,
    pub admin_password: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

pub const DEMO_PASSWORD: &str = huizhen::bootstrap::DEMO_PASSWORD;

impl TestServer {
    /// Embedded store in a temp dir, demo users seeded.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut huizhen::config::Config)) -> TestServer {
        // `TEST_LOG=huizhen_sfu=debug cargo test …` shows the in-process server's log.
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        tweak(&mut config);
        let mut s = Self::start_config(config).await;
        s._dir = Some(dir);
        s
    }

    pub async fn start_config(config: huizhen::config::Config) -> TestServer {
        // Over HTTPS this plain client cannot talk to it: the TLS tests use their own.
        let plain = config.tls.mode == "off";
        let listen = config.listen;
        let server = huizhen::Server::open(config).await.expect("server opens");
        let admin_password = huizhen::bootstrap::ensure_admin(&server.state).await.unwrap().unwrap_or_default();
        huizhen::bootstrap::seed_demo(&server.state).await.unwrap();
        // `listen` is port 0 unless a test needs the address first (a node's public URL).
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = server.state.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        // The first start's password is a one-time one (issue 14): the test administrator sets
        // their own through the API, as the web client makes them, before anything else.
        let admin_password = if admin_password.is_empty() || !plain {
            admin_password
        } else {
            let api = Api::new(addr);
            let session = api.login_as("admin", &admin_password).await;
            let own = format!("{admin_password}-own");
            let body = json!({ "old_password": admin_password, "new_password": own });
            api.post("/v1/me/password", &session, body).await.ok();
            own
        };
        TestServer { addr, state, admin_password, shutdown: Some(tx), task: Some(task), _dir: None }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/v1/rtc?token={}", self.addr, token)
    }

    pub fn api(&self) -> Api {
        Api::new(self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// A small HTTP client: every call returns the status and the JSON body.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!((200..300).contains(&self.status), "expected success, got {} {}", self.status, self.body);
        self.body
    }
    #[track_caller]
    pub fn expect(self, status: u16, code: &str) -> Value {
        assert_eq!((self.status, self.code()), (status, code), "body: {}", self.body);
        self.body
    }
}

impl Api {
    pub fn new(addr: SocketAddr) -> Self {
        Self { base: format!("http://{addr}"), http: reqwest::Client::new() }
    }

    pub async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::finish(req).await
    }

    pub async fn raw(&self, method: &str, path: &str, token: Option<&str>, content_type: &str, body: Vec<u8>) -> Resp {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::finish(req).await
    }

    async fn finish(req: reqwest::RequestBuilder) -> Resp {
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Resp { status, body }
    }

    /// A GET whose body is read but not parsed: benchmarks, whose clients share the machine
    /// with the server, so a client's JSON parsing would be taken from the server's CPU.
    pub async fn get_unparsed(&self, path: &str, token: &str) -> (u16, Vec<u8>) {
        let resp =
            self.http.get(format!("{}{}", self.base, path)).bearer_auth(token).send().await.expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
    }

    /// A GET without a token whose body is text (`/metrics`).
    pub async fn http_get_text(&self, path: &str) -> Result<String> {
        let r = self.http.get(format!("{}{}", self.base, path)).send().await?.error_for_status()?;
        Ok(r.text().await?)
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send("POST", path, Some(token), Some(body)).await
    }

    pub async fn login_full(&self, username: &str, password: &str) -> Resp {
        self.send("POST", "/v1/auth/login", None, Some(json!({ "username": username, "password": password }))).await
    }

    /// Signs in a demo user and returns the session token.
    pub async fn login(&self, username: &str) -> String {
        self.login_as(username, DEMO_PASSWORD).await
    }

    pub async fn login_as(&self, username: &str, password: &str) -> String {
        let body = self.login_full(username, password).await.ok();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn user_id(&self, admin_or_coordinator: &str, username: &str) -> String {
        let users = self.get("/v1/users", admin_or_coordinator).await.ok();
        users["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == username)
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .unwrap()
    }
}

/// A signaling client over a real WebSocket.
pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
}

/// Generous: only a broken server makes a test wait this long.
pub const WAIT: Duration = Duration::from_secs(10);

impl Ws {
    pub async fn connect(url: &str) -> Result<Ws> {
        // Nagle off, as browsers have it for WebSockets: otherwise a small frame sent while
        // the previous one is unacknowledged waits for the peer's delayed ACK (~40 ms).
        let (stream, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
        Ok(Ws { stream, next_id: 0 })
    }

    /// Connects and says hello; returns the server's hello.
    pub async fn join(url: &str) -> (Ws, Value) {
        let mut ws = Ws::connect(url).await.unwrap();
        ws.send(json!({ "type": "hello", "id": "h", "version": 1 })).await;
        let hello = ws.recv().await.expect("hello reply");
        assert_eq!(hello["type"], "hello", "{hello}");
        assert_eq!(hello["id"], "h", "the hello answer echoes the request id");
        (ws, hello)
    }

    pub fn id(&mut self) -> String {
        self.next_id += 1;
        format!("r{}", self.next_id)
    }

    pub async fn send(&mut self, v: Value) {
        self.stream.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_raw(&mut self, s: String) {
        self.stream.send(Message::text(s)).await.unwrap();
    }

    /// A request with a fresh id; returns the id.
    pub async fn request(&mut self, mut v: Value) -> String {
        let id = self.id();
        v["id"] = json!(id);
        self.send(v).await;
        id
    }

    /// Next JSON message; None when the socket closed.
    pub async fn recv(&mut self) -> Option<Value> {
        loop {
            let m = tokio::time::timeout(WAIT, self.stream.next()).await.expect("no message within the deadline");
            match m {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).unwrap()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Skips messages until one of type `ty` arrives.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let m = self.recv().await.unwrap_or_else(|| panic!("socket closed while waiting for {ty}"));
            if m["type"] == ty {
                return m;
            }
        }
    }

    /// The answer (`ack`, `pong` or `error`) to request `id`, skipping events.
    pub async fn answer(&mut self, id: &str) -> Value {
        loop {
            let m = self.recv().await.unwrap_or_else(|| panic!("socket closed while waiting for answer to {id}"));
            if m["id"] == id {
                return m;
            }
        }
    }

    /// Reads until the server closes the socket; returns the messages seen.
    pub async fn until_closed(&mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(m) = self.recv().await {
            seen.push(m);
        }
        seen
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// Closes as a browser does when its page is closed or left (1001, going away).
    pub async fn close_going_away(mut self) {
        use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};
        let _ = self.stream.close(Some(CloseFrame { code: CloseCode::Away, reason: "".into() })).await;
    }
}

/// The `huizhen` binary as a child process, for restart and crash tests.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
    pub stdout_lines: Vec<String>,
}

pub fn huizhen_binary() -> PathBuf {
    sibling_binary("huizhen", "huizhen")
}

/// A workspace binary next to the running test or benchmark, brought up to date once per
/// process: `cargo test -p huizhen-tests` builds this package's code but not another
/// package's binary, so a binary left from an earlier build would test old server code.
pub fn sibling_binary(name: &str, package: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    // Tests run from target/<profile>/deps, benchmarks from target/<profile>; the binaries
    // sit in target/<profile>.
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap().to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(name);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !built.iter().any(|b| b == name) {
        let release = dir.ends_with("release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-q", "-p", package, "--bin", name]);
        if release {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "building the {name} binary");
        built.push(name.to_owned());
    }
    bin
}

impl Process {
    /// Starts `huizhen serve` and waits until it prints its address.
    pub fn serve(data_dir: &Path, extra: &[&str]) -> Result<Process> {
        Self::serve_env(data_dir, extra, &[])
    }

    pub fn serve_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Result<Process> {
        Self::serve_at(free_port(), data_dir, extra, env)
    }

    /// On a given port (a node whose public URL names it).
    pub fn serve_at(port: u16, data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Result<Process> {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(huizhen_binary())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("HUIZHEN_LOG", "warn")
            // Any free media port: tests run several servers at once.
            .env("HUIZHEN_MEDIA__UDP_PORT", "0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining after the caller stops listening, so the server never writes into a
            // closed pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).context("huizhen did not report its address")?;
            let running = line.contains("Huizhen is running at");
            lines.push(line);
            if running {
                break;
            }
        }
        Ok(Process { child, addr: format!("127.0.0.1:{port}").parse()?, stdout_lines: lines })
    }

    pub fn admin_password(&self) -> Option<String> {
        self.stdout_lines.iter().find_map(|l| l.trim().strip_prefix("password: ").map(str::to_owned))
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
