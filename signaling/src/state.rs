//! What every handler shares.

use std::sync::Arc;

use crate::audit::AuditSink;
use crate::auth::Keys;
use crate::config::Config;
use crate::consult::lifecycle::Rules;
use crate::limit::Limiter;
use crate::metrics::Metrics;
use crate::rtc::hub::Hub;
use crate::store::DynStore;

#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

pub struct Inner {
    pub config: Config,
    pub store: DynStore,
    pub keys: Keys,
    pub rules: Rules,
    pub metrics: Arc<Metrics>,
    pub audit: AuditSink,
    pub hub: Hub,
    /// Consultation changes for the office pages' event streams.
    pub events: crate::events::Events,
    pub sfu: huizhen_sfu::Sfu,
    pub recorder: huizhen_recorder::Recorder,
    pub http_limiter: Limiter,
    pub login_limiter: Limiter,
    pub passwords: crate::auth::password::PasswordWork,
    /// Signs opinions (issue 15).
    pub report_key: crate::auth::report_key::ReportKey,
    /// Encoders publishing by WHIP on this node (issue 18).
    pub whip: crate::rtc::whip::Sessions,
    /// Where rooms live: here, or on the nodes sharing this Redis (issue 16).
    pub router: Arc<dyn crate::rtc::router::RoomRouter>,
    /// This node among several (heartbeat, drain), when `node.public_url` is set.
    pub cluster: Option<Arc<crate::rtc::router::RedisRouter>>,
    /// The built-in TURN server's counters (zero when it is off).
    pub turn_stats: Arc<crate::turn_server::TurnStats>,
    /// With `tls.mode = "acme"`: notified to renew the certificate now (SIGHUP).
    pub acme_renew: Option<Arc<tokio::sync::Notify>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}
