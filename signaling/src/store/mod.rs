//! Where schedules, accounts and the audit trail live. Two implementations — embedded (redb)
//! and Redis — behind one trait, held to one contract test suite (`store::contract`).

pub mod contract;
pub mod embedded;
mod list_index;
pub mod redis;
pub mod sealed;

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::consult::model::{Consultation, Site, Status, User};
use crate::ids::{ConsultationId, SiteId, UserId};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("version conflict")]
    VersionConflict,
    #[error("specialist {specialist} is booked by {conflicting}")]
    SpecialistBusy { specialist: UserId, conflicting: ConsultationId },
    #[error("{0} already exists")]
    Duplicate(&'static str),
    #[error("not found")]
    NotFound,
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A specialist's time held by a scheduled or live consultation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub consultation: ConsultationId,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Booking {
    pub fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        self.start < end && start < self.end
    }
}

/// One line of the audit trail. Ids and action names only: never case text or patient details.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// User id, or `system`, or the identity in a CLI-minted room token.
    pub actor: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consultation: Option<ConsultationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEntry {
    pub fn new(actor: impl Into<String>, action: impl Into<String>, at: Timestamp) -> Self {
        Self { at, actor: actor.into(), action: action.into(), consultation: None, target: None, detail: None }
    }
    pub fn consultation(mut self, id: &ConsultationId) -> Self {
        self.consultation = Some(id.clone());
        self
    }
    pub fn target(mut self, t: impl Into<String>) -> Self {
        self.target = Some(t.into());
        self
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
}

/// An audit entry with its place in the log (1-based, gap-free, never reused).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

#[derive(Clone, Debug, Default)]
pub struct ConsultationQuery {
    pub statuses: Vec<Status>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub involving: Option<UserId>,
    pub ascending: bool,
    pub offset: usize,
    pub limit: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
    pub next_offset: Option<usize>,
}

/// Check a record's wished bookings against what its specialists already hold.
/// `existing` yields (specialist, booking) pairs for the record's specialists.
pub fn find_clash<'a>(
    c: &Consultation,
    existing: impl IntoIterator<Item = (&'a UserId, &'a Booking)>,
) -> Option<(UserId, ConsultationId)> {
    let (start, end) = c.slot()?;
    if !c.holds_booking() {
        return None;
    }
    existing
        .into_iter()
        .find(|(_, b)| b.consultation != c.id && b.overlaps(start, end))
        .map(|(s, b)| (s.clone(), b.consultation.clone()))
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    async fn put_site(&self, site: &Site) -> StoreResult<()>;
    async fn get_site(&self, id: &SiteId) -> StoreResult<Option<Site>>;
    async fn list_sites(&self) -> StoreResult<Vec<Site>>;

    /// Fails with `Duplicate("username")` if the name is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    /// Replaces an existing user (same id, same username).
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>>;
    async fn get_user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn count_users(&self) -> StoreResult<u64>;

    /// Writes a consultation atomically with its audit entries, if and only if
    /// - the stored version is `expected_version` (`None`: it must not exist yet), and
    /// - when `c` holds a booking, none of its specialists has another booking overlapping it.
    ///
    /// Also moves the specialists' bookings to match `c` (released when it no longer holds one).
    async fn commit_consultation(
        &self,
        c: &Consultation,
        expected_version: Option<u64>,
        audit: &[AuditEntry],
    ) -> StoreResult<()>;
    async fn get_consultation(&self, id: &ConsultationId) -> StoreResult<Option<Consultation>>;
    async fn list_consultations(&self, q: &ConsultationQuery) -> StoreResult<Page<Consultation>>;
    /// The specialist's current bookings, by start time.
    async fn bookings(&self, specialist: &UserId) -> StoreResult<Vec<Booking>>;

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<u64>;
    /// Number of audit records (the newest record's seq).
    async fn audit_len(&self) -> StoreResult<u64>;
    /// Records with `from <= seq < to`, oldest first.
    async fn audit_range(&self, from: u64, to: u64) -> StoreResult<Vec<AuditRecord>>;

    /// The next number of `series` (1, 2, 3…), atomically across every node: the readable
    /// report numbers (issue 15). A number taken by a write that then fails is not reused.
    async fn next_number(&self, series: &str) -> StoreResult<u64>;
}

pub type DynStore = Arc<dyn Store>;

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising our own plain structs cannot fail; keep the signature infallible.
    serde_json::to_vec(v).unwrap_or_default()
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> StoreResult<T> {
    // Checked as UTF-8 once, whole: from bytes, serde_json checks every string on its own,
    // which was a visible part of listing's CPU (a page decodes 50 records).
    let text = std::str::from_utf8(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}
