//! Huizhen (会诊): the consultation server's library — HTTP API, signaling, scheduling,
//! stores, audit. `main.rs` only parses the command line and calls into here.

pub mod acme;
pub mod api;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod consult;
pub mod dicom_view;
pub mod doctor;
pub mod error;
pub mod events;
pub mod ids;
pub mod limit;
pub mod listen;
pub mod metrics;
pub mod move_recordings;
pub mod rtc;
pub mod service;
pub mod state;
pub mod store;
pub mod text;
pub mod tls;
pub mod turn_server;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::audit::AuditSink;
use crate::auth::Keys;
use crate::config::Config;
use crate::consult::lifecycle::Rules;
use crate::limit::{KeyedLimiter, Limiter};
use crate::metrics::Metrics;
use crate::rtc::hub::{Context, Hub};
use crate::state::{AppState, Inner};
use crate::store::{DynStore, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Secret(#[from] auth::secret::SecretError),
    #[error("cannot open the store: {0}")]
    Store(StoreError),
    #[error("cannot start the media workers: {0}")]
    Media(huizhen_sfu::SfuError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// Opens the configured store.
pub async fn open_store(config: &Config) -> Result<DynStore, StoreError> {
    if config.store == "embedded" {
        let path = config.data_dir.join("huizhen.redb");
        let store = tokio::task::spawn_blocking(move || store::embedded::EmbeddedStore::open(&path))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        Ok(Arc::new(store))
    } else {
        let store = store::redis::RedisStore::connect(&config.store, &config.redis_prefix)?;
        // Wait a little for Redis at start-up (containers start in any order); later outages
        // are answered with 503 and healed by the connection manager.
        let mut last = None;
        for _ in 0..20 {
            match store.ping().await {
                Ok(()) => return Ok(Arc::new(store)),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(last.unwrap_or_else(|| StoreError::Unavailable("redis".into())))
    }
}

fn config_media(m: &config::MediaConfig) -> huizhen_sfu::SfuConfig {
    huizhen_sfu::SfuConfig {
        bind_ips: m.bind_ips.clone(),
        announce_ips: m.announce_ips.clone(),
        udp_port: m.udp_port,
        workers: m.workers,
        connect_timeout: Duration::from_secs(m.connect_timeout_secs),
        max_tracks_per_participant: m.max_tracks_per_participant,
        viewers_per_worker: m.viewers_per_worker,
    }
}

pub(crate) fn recorder_for(config: &Config) -> huizhen_recorder::Recorder {
    let r = &config.recording;
    huizhen_recorder::Recorder::new(huizhen_recorder::RecorderConfig {
        root: if r.dir.as_os_str().is_empty() { config.data_dir.join("recordings") } else { r.dir.clone() },
        // Validated with the rest of the configuration.
        key: huizhen_recorder::crypt::MasterKey::from_hex(&r.encryption_key).ok(),
        max_bytes: r.max_bytes,
        composite: r.composite,
        ffmpeg: r.ffmpeg.clone(),
    })
}

/// The built-in TURN server: relays only to this node's media addresses (bound and announced)
/// and `turn.allowed_peers`.
async fn start_turn(st: &AppState, tls: Option<Arc<tls::Tls>>) -> std::io::Result<turn_server::TurnServer> {
    let c = &st.config;
    let mut peers = std::collections::HashSet::new();
    for (i, bound) in st.sfu.media_addrs().into_iter().enumerate() {
        peers.insert(bound);
        // Announced addresses pair with bound ones; a single one stands for all.
        if let Some(ip) = c.media.announce_ips.get(i).or(c.media.announce_ips.first()) {
            peers.insert(std::net::SocketAddr::new(*ip, bound.port()));
        }
    }
    let bind_ip = c.media.bind_ips.first().copied().unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let settings = turn_server::Settings {
        listen_udp: c.turn.listen,
        listen_tcp: c.turn.listen_tcp.parse().ok(),
        // Validated: TURN over TLS is configured only with a certificate.
        listen_tls: c.turn.listen_tls.parse().ok().zip(tls),
        realm: c.turn.realm.clone(),
        relay_ip: c.media.announce_ips.first().copied().unwrap_or(bind_ip),
        bind_ip,
        relay_ports: (c.turn.relay_port_min, c.turn.relay_port_max),
        secret: c.media.turn_secret.clone(),
    };
    let policy = turn_server::Policy {
        peers,
        peer_ips: c.turn.allowed_peers.iter().copied().collect(),
        max_allocations: c.turn.max_allocations,
        max_per_user: c.turn.max_allocations_per_user,
    };
    turn_server::TurnServer::start(settings, policy, st.turn_stats.clone()).await.map_err(std::io::Error::other)
}

pub struct Server {
    pub state: AppState,
    /// HTTPS, when configured: `reload` it on SIGHUP.
    pub tls: Option<Arc<tls::Tls>>,
}

impl Server {
    pub async fn open(config: Config) -> Result<Server, StartError> {
        let secret = auth::secret::load_or_create(&config)?;
        let store = open_store(&config).await.map_err(StartError::Store)?;
        Self::with_store(config, store, &secret)
    }

    pub fn with_store(
        mut config: Config,
        store: DynStore,
        secret: &auth::secret::SigningKey,
    ) -> Result<Server, StartError> {
        // Patient data is sealed at rest with the recordings' key, when one is set (issue 15).
        let store = store::sealed::wrap(
            store,
            huizhen_recorder::crypt::MasterKey::from_hex(&config.recording.encryption_key).ok(),
        );
        // The built-in TURN server hands out the REST credentials /join gives: a secret made up
        // now when none is set (one node), and its own URL when no other is configured.
        if config.turn.enabled {
            if config.media.turn_secret.is_empty() {
                config.media.turn_secret = uuid::Uuid::new_v4().simple().to_string();
            }
            if config.media.turn_urls.is_empty() {
                config.media.turn_urls = turn_server::default_urls(&config);
            }
        }
        let metrics = Arc::new(Metrics::default());
        let audit = AuditSink::start(store.clone());
        let rules = Rules {
            join_early_minutes: config.consultation.join_early_minutes,
            emergency_duration_minutes: config.consultation.emergency_duration_minutes,
            // Checked with the rest of the configuration.
            time_zone: jiff::tz::TimeZone::get(&config.consultation.time_zone)
                .unwrap_or_else(|_| consult::lifecycle::beijing()),
        };
        let sfu = huizhen_sfu::Sfu::new(config_media(&config.media)).map_err(StartError::Media)?;
        let recorder = recorder_for(&config);
        let events = events::Events::default();
        let hub = Hub::new(Context {
            events: events.clone(),
            store: store.clone(),
            sfu: sfu.clone(),
            recorder: recorder.clone(),
            audit: audit.clone(),
            metrics: metrics.clone(),
            limits: rtc::room::Limits {
                max_participants: config.limits.room_participants,
                chat_chars: config.limits.chat_chars,
                reconnect_grace: Duration::from_secs(config.signaling.reconnect_grace_secs),
                away_after: Duration::from_secs(config.signaling.away_after_secs),
            },
            rules: rules.clone(),
        });
        let per_minute = config.auth.max_failed_logins_per_minute.max(1);
        let report_key = auth::report_key::ReportKey::load_or_create(&config)?;
        let tls = tls::Tls::load(&config.tls, &config.data_dir)?;
        // With Redis, the nodes on it share their limits and control each other's rooms
        // (issue 16).
        let buckets = if config.store == "embedded" {
            None
        } else {
            Some(Arc::new(
                store::redis::RedisBuckets::connect(&config.store, &config.redis_prefix).map_err(StartError::Store)?,
            ))
        };
        if config.store != "embedded" {
            let bus = rtc::control::RedisBus::connect(&config.store, &config.redis_prefix)
                .map_err(|e| StartError::Store(StoreError::Unavailable(e.to_string())))?;
            hub.attach_bus(Arc::new(bus));
        }
        // With a public URL on a shared Redis, every room has one home node (issue 16).
        let cluster = if config.node.public_url.is_empty() || config.store == "embedded" {
            None
        } else {
            let lease = Duration::from_secs(config.node.lease_secs);
            Some(Arc::new(
                rtc::router::RedisRouter::connect(&config.store, &config.redis_prefix, &config.node.public_url, lease)
                    .map_err(|e| StartError::Store(StoreError::Unavailable(e.to_string())))?,
            ))
        };
        if let Some(c) = &cluster {
            hub.attach_cluster(c.clone());
        }
        let router: Arc<dyn rtc::router::RoomRouter> = match &cluster {
            Some(c) => c.clone(),
            None => Arc::new(rtc::router::LocalRouter),
        };
        let shared = |l: Limiter| match &buckets {
            Some(b) => l.shared(b.clone()),
            None => l,
        };
        let inner = Inner {
            report_key,
            whip: rtc::whip::Sessions::default(),
            router,
            cluster,
            turn_stats: Arc::new(turn_server::TurnStats::default()),
            acme_renew: (config.tls.mode == "acme").then(|| Arc::new(tokio::sync::Notify::new())),
            events,
            http_limiter: shared(Limiter::new(
                "http",
                KeyedLimiter::new(config.limits.http_requests_per_second, config.limits.http_burst),
            )),
            // A bucket of `per_minute` failures refilling at that rate per minute.
            login_limiter: shared(Limiter::new(
                "login",
                KeyedLimiter::new(0, per_minute).with_period(Duration::from_secs(60)),
            )),
            passwords: crate::auth::password::PasswordWork::new(
                config.limits.password_hashes_at_once,
                config.limits.password_hashes_waiting,
            ),
            keys: Keys::from_secret(secret),
            config,
            store,
            rules,
            metrics,
            audit,
            hub,
            sfu,
            recorder,
        };
        Ok(Server { state: AppState { inner: Arc::new(inner) }, tls })
    }

    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// Serves until `shutdown` resolves, then closes every signaling socket with a reason,
    /// lets in-flight requests finish and writes out pending audit entries.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let st = self.state.clone();
        let hub = st.hub.clone();
        let events = st.events.clone();
        let cluster = st.cluster.clone();
        if let Some(c) = &cluster {
            rtc::router::heartbeat(c.clone(), hub.clone(), st.sfu.clone());
        }
        let turn = if st.config.turn.enabled { Some(start_turn(&st, self.tls.clone()).await?) } else { None };
        // Recordings a crash left unfinished are finalised now; expired ones go hourly.
        let bg = st.clone();
        let housekeeping = tokio::spawn(async move {
            api::recordings::recover(&bg).await;
            // Attachments a crash left half-written go; nothing refers to them.
            let root = api::attachments::root(&bg);
            let _ = tokio::task::spawn_blocking(move || attachments::sweep_partials(&root)).await;
            let mut hourly = tokio::time::interval(Duration::from_secs(3600));
            loop {
                hourly.tick().await;
                api::recordings::sweep_expired(&bg).await;
            }
        });
        let l = &st.config.limits;
        // A body that trickles in holds its handler: it has this long to arrive whole.
        let app = self
            .router()
            .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_secs(l.http_body_timeout_secs)));
        let limits =
            listen::ConnLimits::from_config(l.http_connections_per_ip, Duration::from_secs(l.http_header_timeout_secs));
        tracing::debug!(?limits, "HTTP connection limits");
        let closing = async move {
            shutdown.await;
            tracing::info!("shutting down: closing rooms");
            hub.shutdown().await;
            // No room is placed here any more, and those that were find a new home at once.
            if let Some(c) = &cluster {
                c.leave().await;
            }
            // Event streams never end by themselves: the drain would wait them out.
            events.close();
        };
        // Plain HTTP beside HTTPS only sends browsers to the HTTPS address (and answers an ACME
        // CA's HTTP-01 check).
        let challenges = st.acme_renew.as_ref().map(|_| acme::Challenges::default());
        let redirect = match (&self.tls, st.config.tls.redirect_listen.parse::<std::net::SocketAddr>()) {
            (Some(_), Ok(at)) => {
                let https_port = listener.local_addr()?.port();
                let plain = TcpListener::bind(at).await?;
                Some(tokio::spawn(listen::redirect_to_https(plain, https_port, challenges.clone())))
            }
            _ => None,
        };
        let renewing = match (&self.tls, &st.acme_renew, challenges) {
            (Some(tls), Some(now), Some(challenges)) => Some(acme::keep_renewed(
                st.config.tls.clone(),
                st.config.data_dir.clone(),
                challenges,
                tls.clone(),
                now.clone(),
            )),
            _ => None,
        };
        listen::serve(listener, app, limits, self.tls.clone(), closing, Duration::from_secs(10)).await;
        if let Some(r) = renewing {
            r.abort();
        }
        if let Some(r) = redirect {
            r.abort();
        }
        // Upgraded sockets are not tracked by the HTTP server: give each its `closing` message.
        let drained = async {
            while st.metrics.ws_connections.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), drained).await;
        // Audit entries wait for the store; do not wait forever if it is down.
        if tokio::time::timeout(Duration::from_secs(15), st.audit.flush()).await.is_err() {
            tracing::error!("the store did not take the last audit entries before shutdown");
        }
        housekeeping.abort();
        if let Some(t) = turn {
            t.close().await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}
