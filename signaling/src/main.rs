//! The `huizhen` command: `serve` runs the server, `reset-password` lets an operator back in,
//! `token` mints a room token.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use huizhen::config::Config;

/// See signaling/Cargo.toml: glibc's per-thread arenas kept freed memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "huizhen", version, about = "Huizhen (会诊) telemedicine consultation server")]
struct Cli {
    /// TOML config file (also HUIZHEN_CONFIG).
    #[arg(long, global = true, env = "HUIZHEN_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (embedded store, signing key).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve {
        /// Listen address, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
        /// `embedded` or a redis:// URL.
        #[arg(long)]
        store: Option<String>,
        /// Seed demo sites and users (password `huizhen-demo`) to try the workflow.
        #[arg(long)]
        demo: bool,
    },
    /// Set a new one-time password for a user (e.g. `admin` when its password is lost) and sign
    /// the user out everywhere. With the embedded store, stop the server first.
    ResetPassword {
        /// The account's username.
        #[arg(long)]
        username: String,
    },
    /// Take over the recordings of a node taken out of service: copy (or mount) its
    /// `data_dir/recordings` here first. Each recording is checked against its manifest with
    /// this node's key, then moved into this node's recordings; the source is not changed.
    /// Exit status 1 when a recording was refused. With the embedded store, stop the server
    /// first.
    AdoptRecordings {
        /// The old node's recordings directory.
        #[arg(long)]
        from: PathBuf,
        /// The old node's `node.public_url` (with several nodes on Redis).
        #[arg(long)]
        retired_url: Option<String>,
    },
    /// Check this machine for what goes wrong in the field (configuration, HTTPS, permissions,
    /// ports, disk, Redis, clock) and say how to fix each. Exit status 1 when a check fails.
    Doctor {
        /// `zh-CN` (default) or `en`; default from LANG.
        #[arg(long)]
        lang: Option<String>,
    },
    /// Check the signed opinions of a saved report (the JSON of GET /v1/consultations/{id} or
    /// …/report). Exit status 0 when every signed opinion verifies.
    VerifyReport {
        /// The saved report.
        #[arg(long)]
        report: PathBuf,
        /// The published keys (the JSON of GET /v1/signing-keys); default: this server's own
        /// key, from the configuration or the data directory.
        #[arg(long)]
        keys: Option<PathBuf>,
    },
    /// Mint a room token for scripts and tests.
    Token {
        /// Room (consultation id).
        #[arg(long)]
        room: String,
        /// Participant identity in the room.
        #[arg(long)]
        identity: String,
        /// Display name (defaults to the identity).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        publish: bool,
        #[arg(long)]
        subscribe: bool,
        /// May send chat and data messages.
        #[arg(long)]
        data: bool,
        /// Host rights: admit, remove, end.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        hidden: bool,
        /// In a broadcast's audience: shown to hosts, and to others only with the floor.
        #[arg(long)]
        audience: bool,
        #[arg(long)]
        record: bool,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 600)]
        ttl: u64,
    },
}

fn load_config(cli: &Cli, extra: &[(&str, String)]) -> anyhow::Result<Config> {
    let mut overrides: Vec<(&str, String)> = extra.to_vec();
    if let Some(d) = &cli.data_dir {
        overrides.push(("data_dir", d.display().to_string()));
    }
    Ok(Config::load(cli.config.as_deref(), std::env::vars(), &overrides)?)
}

/// webrtc-rs's crates log each connection's state changes at `info` and, for every DTLS
/// server, a warning about a missing server name that does not apply to one: one line per
/// participant per change. They stay at these levels unless the filter names them.
const QUIET_TARGETS: [(&str, &str); 6] = [
    ("rtc", "warn"),
    ("rtc_ice", "warn"),
    ("rtc_dtls", "error"),
    ("rtc_srtp", "warn"),
    ("rtc_interceptor", "warn"),
    ("rtc_sctp", "warn"),
];

fn init_logging(config: &Config) {
    let mut directives = config.log.clone();
    for (target, level) in QUIET_TARGETS {
        if !directives.split(',').any(|d| d.trim().starts_with(target)) {
            directives.push_str(&format!(",{target}={level}"));
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr; stdout carries only what the operator must read (address, the first
    // start's admin password), so the two never mix in a pipe.
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The store, for a command run beside (Redis) or instead of (embedded) the server.
async fn open_store_for_cli(config: &Config) -> anyhow::Result<huizhen::store::DynStore> {
    huizhen::open_store(config).await.map_err(|e| {
        if config.store == "embedded" {
            anyhow::anyhow!(
                "cannot open the embedded store in {}: {e}\nIf the server is running, stop it first: the embedded store belongs to one process at a time.",
                config.data_dir.display()
            )
        } else {
            anyhow::anyhow!("cannot reach the store: {e}")
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Everything the server creates (the database, recordings, the signing key, exports) is
    // its own user's alone, also when it is started by hand rather than by the systemd unit
    // (whose UMask is the same).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    match &cli.cmd {
        Cmd::Serve { listen, store, demo } => {
            let mut extra = Vec::new();
            if let Some(l) = listen {
                extra.push(("listen", l.clone()));
            }
            if let Some(s) = store {
                extra.push(("store", s.clone()));
            }
            let config = load_config(&cli, &extra)?;
            init_logging(&config);
            let started = std::time::Instant::now();
            let listen = config.listen;
            let server = huizhen::Server::open(config).await?;
            if let Some(pw) =
                huizhen::bootstrap::ensure_admin(&server.state).await.map_err(|e| anyhow::anyhow!("{e}"))?
            {
                // Printed once, to the terminal only: never through the log.
                println!(
                    "\n  First start: administrator account created.\n  username: admin\n  password: {pw}\n  (shown once; change it after signing in)\n"
                );
            }
            if *demo {
                let made = huizhen::bootstrap::seed_demo(&server.state).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                if !made.is_empty() {
                    println!("  Demo accounts (password `{}`):", huizhen::bootstrap::DEMO_PASSWORD);
                    for (u, role) in made {
                        println!("    {u:<14} {role:?}");
                    }
                    println!();
                }
            }
            let listener =
                tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, ready_ms = started.elapsed().as_millis() as u64, "huizhen listening");
            match &server.tls {
                None => println!("  Huizhen is running at http://{addr}/  (Ctrl-C stops it)"),
                Some(tls) => {
                    println!("  Huizhen is running at https://{addr}/  (Ctrl-C stops it)");
                    if tls.self_signed {
                        // A trial certificate: say how to recognise it, so it is trusted on
                        // purpose, not clicked through.
                        let f = tls.fingerprints()?;
                        println!(
                            "  Self-signed certificate (data_dir/tls/self-signed.pem). Its SHA-256 fingerprint:\n    {}\n  Compare it with what the browser shows before trusting it; or import the .pem into the\n  system's or the browser's trusted certificates. Chromium for tests:\n    --ignore-certificate-errors-spki-list={}\n",
                            f.certificate, f.spki
                        );
                    }
                    // SIGHUP reads the certificate files again (a renewal), or with ACME asks
                    // the CA for a new certificate now: open calls stay.
                    #[cfg(unix)]
                    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                        let tls = tls.clone();
                        let acme = server.state.acme_renew.clone();
                        tokio::spawn(async move {
                            while hup.recv().await.is_some() {
                                if let Some(now) = &acme {
                                    tracing::info!("SIGHUP: renewing the ACME certificate now");
                                    now.notify_one();
                                    continue;
                                }
                                match tls.reload() {
                                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                                    Err(e) => {
                                        tracing::error!(error = %e, "TLS certificate not reloaded; the one in use stays")
                                    }
                                }
                            }
                        });
                    }
                }
            }
            // SIGUSR1 drains a node of several (a rolling upgrade, operations.md).
            #[cfg(unix)]
            if let Some(cluster) = server.state.cluster.clone()
                && let Ok(mut usr1) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
            {
                let hub = server.state.hub.clone();
                let deadline = std::time::Duration::from_secs(server.state.config.node.drain_deadline_secs);
                tokio::spawn(async move {
                    while usr1.recv().await.is_some() {
                        huizhen::rtc::router::drain(cluster.clone(), hub.clone(), deadline);
                    }
                });
            }
            server.serve(listener, shutdown_signal()).await?;
        }
        Cmd::ResetPassword { username } => {
            let config = load_config(&cli, &[])?;
            let store = open_store_for_cli(&config).await?;
            let (user, pw) = huizhen::bootstrap::reset_password(&store, username)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            println!(
                "\n  Password reset for {}; every session of this account is signed out.\n  new password: {pw}\n  (shown once; change it after signing in)\n",
                user.username
            );
        }
        Cmd::AdoptRecordings { from, retired_url } => {
            let config = load_config(&cli, &[])?;
            let store = open_store_for_cli(&config).await?;
            let report = huizhen::move_recordings::adopt(&config, store, from, retired_url.as_deref()).await?;
            for line in &report.lines {
                println!("{line}");
            }
            if report.lines.is_empty() {
                println!("no recordings under {}", from.display());
            }
            if report.refused > 0 {
                std::process::exit(1);
            }
        }
        Cmd::Doctor { lang } => {
            let lang = huizhen::doctor::Lang::from_env(lang.as_deref());
            let (config, error) = match load_config(&cli, &[]) {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            };
            let mut findings = huizhen::doctor::run(config.as_ref(), error, lang);
            if let Some(c) = &config {
                findings.extend(huizhen::doctor::store(c, lang).await);
            }
            print!("{}", huizhen::doctor::render(&findings, lang));
            if findings.iter().any(|f| f.level == huizhen::doctor::Level::Fail) {
                std::process::exit(1);
            }
        }
        Cmd::VerifyReport { report, keys } => {
            let text = std::fs::read(report).with_context(|| format!("cannot read {}", report.display()))?;
            let v: serde_json::Value = serde_json::from_slice(&text).context("the report is not JSON")?;
            // A /report answer wraps the consultation; a consultation is one.
            let c: huizhen::consult::model::Consultation =
                serde_json::from_value(v.get("consultation").cloned().unwrap_or(v))
                    .context("the file holds no consultation")?;
            let keys: Vec<huizhen::auth::report_key::PublicKey> = match keys {
                Some(path) => {
                    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                    let v: serde_json::Value = serde_json::from_slice(&text).context("the keys file is not JSON")?;
                    serde_json::from_value(v.get("keys").cloned().unwrap_or(v))
                        .context("the keys file holds no keys")?
                }
                None => vec![huizhen::auth::report_key::ReportKey::load_or_create(&load_config(&cli, &[])?)?.public()],
            };
            let out = huizhen::api::signing::verdicts(&keys, &c);
            println!("{}", serde_json::to_string_pretty(&out)?);
            if out["valid"] != serde_json::Value::Bool(true) {
                std::process::exit(1);
            }
        }
        Cmd::Token { room, identity, name, publish, subscribe, data, admin, hidden, audience, record, ttl } => {
            let config = load_config(&cli, &[])?;
            let secret = huizhen::auth::secret::load_or_create(&config)?;
            let keys = huizhen::auth::Keys::from_secret(&secret);
            let room =
                huizhen::ids::ConsultationId::parse(room).context("room: letters, digits, - and _ only, at most 64")?;
            let grants = huizhen::auth::Grants {
                can_publish: *publish,
                can_subscribe: *subscribe,
                can_publish_data: *data,
                can_record: *record,
                room_admin: *admin,
                hidden: *hidden,
                audience: *audience,
            };
            let (token, _) =
                keys.room(identity, name.as_deref().unwrap_or(identity), &room, grants, *ttl, jiff::Timestamp::now())?;
            println!("{token}");
        }
    }
    Ok(())
}
