//! Configuration: built-in defaults < TOML file < `HUIZHEN_*` environment < command-line flags.
//! Every key is documented in `deploy/huizhen.sample.toml`; unknown keys are an error, so a
//! typo never silently falls back to a default.
//!
//! Environment names: `HUIZHEN_<KEY>` for top-level keys and `HUIZHEN_<SECTION>__<KEY>` for
//! keys in a section, e.g. `HUIZHEN_LISTEN=0.0.0.0:8080`, `HUIZHEN_LIMITS__WS_MESSAGE_BYTES=8192`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API and signaling listen on.
    pub listen: SocketAddr,
    /// Where the embedded store and the generated signing key live.
    pub data_dir: PathBuf,
    /// `embedded`, or a Redis URL such as `redis://127.0.0.1:6379/0`.
    pub store: String,
    /// Prefix for every Redis key, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// HMAC secret for tokens. Empty: generated once and kept in `data_dir/secret.key`.
    /// Several nodes sharing one Redis must all be given the same secret.
    pub jwt_secret: String,
    /// Bearer token `/metrics` asks for. Empty: `/metrics` is open (keep it internal).
    pub metrics_token: String,
    /// Log filter (tracing `EnvFilter` syntax).
    pub log: String,
    /// `text` or `json`.
    pub log_format: String,
    pub auth: AuthConfig,
    pub consultation: ConsultationConfig,
    pub limits: Limits,
    pub signaling: SignalingConfig,
    pub media: MediaConfig,
    pub recording: RecordingConfig,
    pub attachments: AttachmentsConfig,
    pub tls: TlsConfig,
    pub whip: WhipConfig,
    pub node: NodeConfig,
    pub turn: TurnConfig,
}

/// TURN in the server (issue 17), for clinics whose firewall passes only the TURN port.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnConfig {
    pub enabled: bool,
    /// UDP address TURN listens on.
    pub listen: SocketAddr,
    /// TURN over TCP here too (e.g. `0.0.0.0:3478`); empty: off.
    pub listen_tcp: String,
    /// TURN over TLS here (e.g. `0.0.0.0:5349`, or `:443` on an address of its own), with the
    /// `[tls]` certificate: what passes a firewall that lets only HTTPS out. Empty: off.
    pub listen_tls: String,
    /// The host name or address clients reach TURN at, for the URL `/join` hands out when
    /// `media.turn_urls` is empty. Empty: the first announced (else bound) media address.
    pub public_host: String,
    pub realm: String,
    /// Relays take UDP ports in this range (open it in the firewall with the listen port).
    pub relay_port_min: u16,
    pub relay_port_max: u16,
    /// Relays at once, in all.
    pub max_allocations: usize,
    /// Relays at once for one account or guest (a browser takes one or two per call).
    pub max_allocations_per_user: usize,
    /// Addresses a relay may send to besides this server's own media ports (none by default:
    /// no open relay).
    pub allowed_peers: Vec<std::net::IpAddr>,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 3478)),
            listen_tcp: String::new(),
            listen_tls: String::new(),
            public_host: String::new(),
            realm: "huizhen".into(),
            relay_port_min: 49160,
            relay_port_max: 49999,
            max_allocations: 1000,
            max_allocations_per_user: 8,
            allowed_peers: Vec::new(),
        }
    }
}

/// This node among several on one Redis (issue 16).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// The base URL browsers and encoders reach this node at, e.g. `https://hz2.hospital.cn`.
    /// Set (with a Redis store) every room gets one home node: `/join` names it and a socket
    /// that reaches another node is turned away. Empty: rooms live where sockets arrive.
    pub public_url: String,
    /// Seconds a room's home and this node's entry outlive the last heartbeat: how long a dead
    /// node's rooms wait before another node takes them.
    pub lease_secs: u64,
    /// Origins of the other nodes (or a wildcard such as `https://*.hospital.cn`): pages served
    /// here may open their sockets there (`connect-src` of the pages' security policy).
    pub cluster_origins: Vec<String>,
    /// Seconds a draining node (SIGUSR1) lets its rooms run on before it moves them.
    pub drain_deadline_secs: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self { public_url: String::new(), lease_secs: 10, cluster_origins: Vec::new(), drain_deadline_secs: 3600 }
    }
}

/// Encoders publishing by WHIP and players watching by WHEP (issue 18).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhipConfig {
    /// Encoders publishing at once into one consultation (each is a member of the room).
    pub max_encoders: usize,
    /// Origins whose web pages may call the WHIP/WHEP endpoints (CORS), e.g.
    /// `["https://player.example-hospital.cn"]`. Empty: only encoders and players that are
    /// not web pages (OBS, a hardware encoder, GStreamer), and this server's own pages.
    pub allowed_origins: Vec<String>,
}

impl Default for WhipConfig {
    fn default() -> Self {
        Self { max_encoders: 4, allowed_origins: Vec::new() }
    }
}

/// HTTPS in the server (issue 17). Off: plain HTTP, as behind a TLS proxy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// `off`, `files` (`cert_file` and `key_file`, reloaded on SIGHUP), `self-signed` (a
    /// LAN trial: a certificate for `names`, kept in `data_dir/tls`) or `acme` (a certificate
    /// for `names` from `acme_directory`, renewed by itself; needs `redirect_listen` on port 80
    /// for the CA's HTTP-01 check).
    pub mode: String,
    /// PEM: the certificate, then its chain.
    pub cert_file: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Host names and IP addresses a self-signed certificate is made for (default:
    /// localhost and 127.0.0.1).
    pub names: Vec<String>,
    /// Also listen here with plain HTTP that only redirects to HTTPS (e.g. `0.0.0.0:80`).
    pub redirect_listen: String,
    /// Send Strict-Transport-Security (with `files` only: a trial certificate must stay
    /// skippable in the browser).
    pub hsts: bool,
    /// The ACME CA's directory URL (default: Let's Encrypt).
    pub acme_directory: String,
    /// E-mail addresses the CA may write to about the certificates.
    pub acme_contact: Vec<String>,
    /// PEM of the root that the ACME server's own HTTPS is signed by, for a private ACME CA
    /// (empty: the public roots).
    pub acme_ca_root: PathBuf,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            mode: "off".into(),
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            names: Vec::new(),
            redirect_listen: String::new(),
            hsts: true,
            acme_directory: "https://acme-v02.api.letsencrypt.org/directory".into(),
            acme_contact: Vec::new(),
            acme_ca_root: PathBuf::new(),
        }
    }
}

/// Files attached to consultations (issue 15). Sealed at rest with
/// `recording.encryption_key` when one is set.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachmentsConfig {
    /// Where they are kept. Empty: `data_dir/attachments`.
    pub dir: PathBuf,
    /// All of one consultation's attachments together, in bytes.
    pub max_bytes_per_consultation: u64,
    /// One DICOM file, which the check reads whole into memory.
    pub max_dicom_file_bytes: u64,
    /// What a zipped series may unpack to (a zip bomb stops here).
    pub max_zip_unpacked_bytes: u64,
    /// Files in a zipped series.
    pub max_zip_files: usize,
}

impl Default for AttachmentsConfig {
    fn default() -> Self {
        let l = crate::attachments::Limits::default();
        Self {
            dir: PathBuf::new(),
            max_bytes_per_consultation: 500 << 20,
            max_dicom_file_bytes: l.dicom_file_bytes,
            max_zip_unpacked_bytes: l.zip_unpacked_bytes,
            max_zip_files: l.zip_files,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Where recordings are kept. Empty: `data_dir/recordings`.
    pub dir: PathBuf,
    /// 64 hex digits (32 bytes): recordings are written encrypted (AES-256-GCM) and decrypted
    /// only when served. Empty: not encrypted. Losing the key loses the recordings.
    pub encryption_key: String,
    /// Recordings are deleted this many days after they stopped (0: kept until deleted).
    pub retention_days: u64,
    /// A recording stops once its captures reach this many bytes (0: only the disk limits it).
    pub max_bytes: u64,
    /// Also make a grid composite with mixed audio, when ffmpeg is installed (not for
    /// encrypted recordings, which ffmpeg would need in the clear).
    pub composite: bool,
    /// The ffmpeg program for the composite.
    pub ffmpeg: PathBuf,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            encryption_key: String::new(),
            retention_days: 0,
            max_bytes: 0,
            composite: true,
            ffmpeg: PathBuf::from("ffmpeg"),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// The address the media (UDP) sockets bind to: one concrete address, which every media
    /// connection offers as its candidate (the server's LAN address for clients on other
    /// machines).
    pub bind_ips: Vec<std::net::IpAddr>,
    /// Public address announced instead of `bind_ips` (NAT 1:1).
    pub announce_ips: Vec<std::net::IpAddr>,
    /// UDP port of the first media worker; worker *i* uses `udp_port + i`, so a firewall opens
    /// `udp_port ..= udp_port + workers - 1`. 0: any free port (tests only).
    pub udp_port: u16,
    /// Media workers: threads with one socket each. 0: one per CPU core.
    pub workers: usize,
    /// STUN URLs handed to clients in the join answer (e.g. `stun:turn.hospital.example:3478`).
    pub stun_urls: Vec<String>,
    /// TURN URLs handed to clients (e.g. `turn:turn.hospital.example:3478?transport=udp`,
    /// `turns:turn.hospital.example:443?transport=tcp` for strict hospital firewalls).
    pub turn_urls: Vec<String>,
    /// coturn's `static-auth-secret`: clients get short-lived credentials derived from it.
    pub turn_secret: String,
    /// Lifetime of those TURN credentials.
    pub turn_ttl_secs: u64,
    /// A media connection that is not up this long after its offer is closed.
    pub connect_timeout_secs: u64,
    /// Tracks one participant may publish (cameras, screen, microphone).
    pub max_tracks_per_participant: usize,
    /// Members a room's home worker carries before further receive-only members go to other
    /// workers (0: never).
    pub viewers_per_worker: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind_ips: vec![std::net::IpAddr::from([127, 0, 0, 1])],
            announce_ips: Vec::new(),
            udp_port: 50000,
            workers: 0,
            stun_urls: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: String::new(),
            turn_ttl_secs: 6 * 3600,
            connect_timeout_secs: 10,
            max_tracks_per_participant: 6,
            viewers_per_worker: 500,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Lifetime of an API session token.
    pub session_ttl_secs: u64,
    /// Lifetime of a refresh token.
    pub refresh_ttl_secs: u64,
    /// Lifetime of a room token: it is only needed to open the signaling socket.
    pub room_token_ttl_secs: u64,
    /// Failed logins per username per minute before further attempts get 429.
    pub max_failed_logins_per_minute: u32,
    /// The Ed25519 key signed opinions are signed with (issue 15): 64 hex digits (its seed).
    /// Empty: generated on first start as `data_dir/report-signing.key`. Nodes of one
    /// deployment set the same key, so each verifies what another signed.
    pub report_signing_key: String,
    /// The name signatures give their key. Empty: `hz-` and the first 16 hex digits of the
    /// SHA-256 of the public key.
    pub report_key_id: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsultationConfig {
    /// How early before the start participants may join (and the host may start).
    pub join_early_minutes: u32,
    /// Slot length booked for an emergency, which has no scheduled end.
    pub emergency_duration_minutes: u32,
    /// The deployment's IANA time zone: where "today" is for dates of birth and ages, and the
    /// year of report numbers for sites without a zone of their own.
    pub time_zone: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted HTTP request body.
    pub http_body_bytes: usize,
    /// Sustained requests per second per client IP (0 = no limit), and the burst above it.
    pub http_requests_per_second: u32,
    pub http_burst: u32,
    /// Largest signaling message.
    pub ws_message_bytes: usize,
    /// Sustained signaling messages per second per socket, and the burst above it.
    pub ws_messages_per_second: u32,
    pub ws_burst: u32,
    /// Limit breaches after which the socket is closed.
    pub ws_breaches_before_close: u32,
    /// Participants (including the lobby) per room.
    pub room_participants: usize,
    /// Longest chat message, in characters.
    pub chat_chars: usize,
    /// Open HTTP connections per client address (0 = no limit); WebSockets count until
    /// upgraded. Behind a reverse proxy every client shares the proxy's address.
    pub http_connections_per_ip: usize,
    /// Seconds a connection has to send a request's headers, and an idle keep-alive
    /// connection its next request.
    pub http_header_timeout_secs: u64,
    /// Seconds a request body has to arrive whole.
    pub http_body_timeout_secs: u64,
    /// Password hashes computed at once (sign-in, password changes; 0 = one per core). Each
    /// takes 19 MiB and a core for a moment.
    pub password_hashes_at_once: usize,
    /// Password checks that may wait for one of those; more at once get 503 `busy`.
    pub password_hashes_waiting: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalingConfig {
    /// How long a participant whose socket dropped keeps their place in the room.
    pub reconnect_grace_secs: u64,
    /// How long the others see them as `reconnecting` before they are told they left (issue
    /// 14: a killed page showed as a ghost for the whole grace). At most the grace.
    pub away_after_secs: u64,
    /// Seconds a new socket has to send its `hello`.
    pub hello_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./huizhen-data"),
            store: "embedded".into(),
            redis_prefix: "hz:".into(),
            jwt_secret: String::new(),
            metrics_token: String::new(),
            log: "info".into(),
            log_format: "text".into(),
            auth: AuthConfig::default(),
            consultation: ConsultationConfig::default(),
            limits: Limits::default(),
            signaling: SignalingConfig::default(),
            media: MediaConfig::default(),
            recording: RecordingConfig::default(),
            attachments: AttachmentsConfig::default(),
            tls: TlsConfig::default(),
            whip: WhipConfig::default(),
            node: NodeConfig::default(),
            turn: TurnConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: 900,
            refresh_ttl_secs: 12 * 3600,
            room_token_ttl_secs: 600,
            max_failed_logins_per_minute: 5,
            report_signing_key: String::new(),
            report_key_id: String::new(),
        }
    }
}

impl Default for ConsultationConfig {
    fn default() -> Self {
        Self { join_early_minutes: 15, emergency_duration_minutes: 60, time_zone: "Asia/Shanghai".into() }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            http_body_bytes: 64 * 1024,
            http_requests_per_second: 50,
            http_burst: 200,
            ws_message_bytes: 16 * 1024,
            ws_messages_per_second: 20,
            ws_burst: 40,
            ws_breaches_before_close: 5,
            room_participants: 300,
            chat_chars: 2000,
            http_connections_per_ip: 200,
            http_header_timeout_secs: 10,
            http_body_timeout_secs: 30,
            password_hashes_at_once: 0,
            password_hashes_waiting: 32,
        }
    }
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self { reconnect_grace_secs: 30, away_after_secs: 5, hello_timeout_secs: 10 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("environment variable {0}: expected HUIZHEN_<KEY> or HUIZHEN_<SECTION>__<KEY>")]
    EnvName(String),
    #[error("configuration: {0}")]
    Invalid(String),
}

fn set_path(root: &mut toml::Table, path: &[String], value: toml::Value) {
    let mut table = root;
    for part in &path[..path.len() - 1] {
        let entry = table.entry(part.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(t) = entry else { unreachable!("just made a table") };
        table = t;
    }
    table.insert(path[path.len() - 1].clone(), value);
}

/// A value from the environment or a flag: a TOML literal if it parses as one (numbers,
/// booleans), otherwise the plain string.
fn scalar(raw: &str) -> toml::Value {
    let parsed: Result<toml::Table, _> = format!("v = {raw}").parse();
    match parsed.ok().and_then(|mut t| t.remove("v")) {
        // A quoted value ("1") stays a string: the way to pass a string that looks like a number.
        Some(
            v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) | toml::Value::String(_)),
        ) => v,
        _ => toml::Value::String(raw.to_owned()),
    }
}

impl Config {
    /// Layers the sources. `overrides` are `(dotted.key, value)` pairs from flags.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(&str, String)],
    ) -> Result<Config, ConfigError> {
        let mut root = toml::Table::new();
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
            root = text.parse().map_err(|source| ConfigError::Parse { path: path.into(), source })?;
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("HUIZHEN_") else {
                continue;
            };
            if rest == "CONFIG" {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            if path.iter().any(|p| p.is_empty()) {
                return Err(ConfigError::EnvName(name));
            }
            set_path(&mut root, &path, scalar(&value));
        }
        for (key, value) in overrides {
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            set_path(&mut root, &path, scalar(value));
        }
        let config: Config = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.store != "embedded" && !self.store.starts_with("redis://") && !self.store.starts_with("rediss://") {
            return bad("store must be `embedded` or a redis:// URL");
        }
        if self.auth.session_ttl_secs == 0 || self.auth.room_token_ttl_secs == 0 || self.auth.refresh_ttl_secs == 0 {
            return bad("token lifetimes must be positive");
        }
        if self.whip.allowed_origins.iter().any(|o| o == "*" || o.ends_with('/') || !o.contains("://")) {
            return bad("whip.allowed_origins lists origins such as https://host:port (no `*`, no path)");
        }
        let url = self.node.public_url.as_str();
        if !url.is_empty() {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && !url.ends_with('/')
                && !url[url.find("://").map_or(0, |i| i + 3)..].contains('/');
            if !ok {
                return bad("node.public_url is a base URL such as https://hz2.hospital.cn (no path)");
            }
            if self.store == "embedded" {
                return bad("node.public_url places rooms over several nodes, which share a Redis store");
            }
        }
        if self.turn.enabled && (self.turn.relay_port_min == 0 || self.turn.relay_port_max < self.turn.relay_port_min) {
            return bad("turn.relay_port_min..=turn.relay_port_max is a range of UDP ports above 0");
        }
        for (key, at) in [("listen_tcp", &self.turn.listen_tcp), ("listen_tls", &self.turn.listen_tls)] {
            if !at.is_empty() && at.parse::<SocketAddr>().is_err() {
                return Err(ConfigError::Invalid(format!("turn.{key} is an address such as 0.0.0.0:5349")));
            }
        }
        if !self.turn.listen_tls.is_empty() && self.tls.mode == "off" {
            return bad("turn.listen_tls needs a certificate: set [tls] mode");
        }
        if self.turn.public_host.contains(['/', ' ', '?']) {
            return bad("turn.public_host is a host name or an address, e.g. turn.hospital.cn");
        }
        if !(3..=300).contains(&self.node.lease_secs) {
            return bad("node.lease_secs is between 3 and 300");
        }
        if self
            .node
            .cluster_origins
            .iter()
            .any(|o| o.contains(' ') || o.contains(';') || o.contains('\'') || !o.contains("://"))
        {
            return bad("node.cluster_origins lists origins such as https://hz2.hospital.cn");
        }
        if self.limits.http_body_bytes < 1024 || self.limits.ws_message_bytes < 1024 {
            return bad("body and message limits must be at least 1024 bytes");
        }
        if self.limits.http_header_timeout_secs == 0 || self.limits.http_body_timeout_secs == 0 {
            return bad("limits.http_header_timeout_secs and http_body_timeout_secs must be at least 1");
        }
        let rk = self.auth.report_signing_key.trim();
        if !rk.is_empty() && (rk.len() != 64 || !rk.bytes().all(|b| b.is_ascii_hexdigit())) {
            return bad("auth.report_signing_key must be 64 hex digits (an Ed25519 seed)");
        }
        if self.auth.report_key_id.len() > 64
            || !self.auth.report_key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("auth.report_key_id is up to 64 letters, digits, - and _");
        }
        match self.tls.mode.as_str() {
            "off" | "self-signed" => {}
            "files" if !self.tls.cert_file.as_os_str().is_empty() && !self.tls.key_file.as_os_str().is_empty() => {}
            "files" => return bad("tls.mode = \"files\" needs tls.cert_file and tls.key_file"),
            "acme" if !self.tls.names.is_empty() && !self.tls.redirect_listen.is_empty() => {}
            "acme" => {
                return bad(
                    "tls.mode = \"acme\" needs tls.names (the public host names) and tls.redirect_listen (port 80, for the CA's check)",
                );
            }
            _ => return bad("tls.mode is off, files, self-signed or acme"),
        }
        if !self.tls.redirect_listen.is_empty() && self.tls.redirect_listen.parse::<SocketAddr>().is_err() {
            return bad("tls.redirect_listen is an address such as 0.0.0.0:80");
        }
        if jiff::tz::TimeZone::get(&self.consultation.time_zone).is_err() {
            return bad("consultation.time_zone is not a known IANA time zone (e.g. Asia/Shanghai)");
        }
        if !self.jwt_secret.is_empty() && self.jwt_secret.len() < 32 {
            return bad("jwt_secret must be at least 32 characters");
        }
        if !self.metrics_token.is_empty() && self.metrics_token.len() < 16 {
            return bad("metrics_token must be at least 16 characters");
        }
        if self.media.bind_ips.len() != 1 || self.media.bind_ips.iter().any(|ip| ip.is_unspecified()) {
            return bad("media.bind_ips must list one concrete address (it is every media connection's candidate)");
        }
        if self.media.workers > 256 || usize::from(self.media.udp_port) + self.media.workers.max(1) > 65536 {
            return bad("media.workers must be at most 256 and fit above media.udp_port");
        }
        if !self.media.announce_ips.is_empty() && self.media.announce_ips.len() != self.media.bind_ips.len() {
            return bad("media.announce_ips must pair with media.bind_ips");
        }
        if !self.media.turn_urls.is_empty() && self.media.turn_secret.is_empty() {
            return bad("media.turn_urls needs media.turn_secret (coturn's static-auth-secret)");
        }
        if !self.recording.encryption_key.is_empty()
            && huizhen_recorder::crypt::MasterKey::from_hex(&self.recording.encryption_key).is_err()
        {
            return bad("recording.encryption_key must be 64 hex digits (32 bytes)");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return bad("log_format must be `text` or `json`");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = std::env::temp_dir().join(format!("hz-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1\"\nstore = \"embedded\"\n[limits]\nchat_chars = 10\nws_burst = 3\n",
        )
        .unwrap();
        let env = vec![
            ("HUIZHEN_LISTEN".to_string(), "127.0.0.1:2".to_string()),
            ("HUIZHEN_LIMITS__CHAT_CHARS".to_string(), "20".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let c = Config::load(Some(&file), env, &[("listen", "127.0.0.1:3".into())]).unwrap();
        assert_eq!(c.listen.port(), 3);
        assert_eq!(c.limits.chat_chars, 20);
        assert_eq!(c.limits.ws_burst, 3);
        assert_eq!(c.limits.ws_messages_per_second, 20);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let env = vec![("HUIZHEN_LISTN".to_string(), "x".to_string())];
        assert!(matches!(Config::load(None, env, &[]), Err(ConfigError::Invalid(_))));
        let env = vec![("HUIZHEN_STORE".to_string(), "postgres://x".to_string())];
        assert!(matches!(Config::load(None, env, &[]), Err(ConfigError::Invalid(_))));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod sample {
    /// The documented sample must stay loadable: unknown keys are errors, so a renamed key
    /// in the code without the sample (or the reverse) fails here.
    #[test]
    fn deploy_sample_config_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/huizhen.sample.toml");
        let c = super::Config::load(Some(&path), Vec::new(), &[]).unwrap();
        assert_eq!(c.listen, super::Config::default().listen);
    }
}
