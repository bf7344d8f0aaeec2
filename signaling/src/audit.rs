//! Audit trail helpers. Entries that accompany a consultation change are written in the same
//! store transaction as the change (see `Store::commit_consultation`); the others (logins,
//! joins, lobby decisions) go through `AuditSink`, which keeps them in order and retries while
//! the store is unavailable rather than dropping them.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::ids::ConsultationId;
use crate::store::{AuditEntry, AuditRecord, DynStore, Page, StoreError, StoreResult};

enum Item {
    Entry(AuditEntry),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::UnboundedSender<Item>,
}

impl AuditSink {
    pub fn start(store: DynStore) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Item>();
        tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                match item {
                    Item::Entry(e) => {
                        let mut backoff = Duration::from_millis(200);
                        loop {
                            match store.append_audit(&e).await {
                                Ok(_) => break,
                                Err(StoreError::Unavailable(reason)) => {
                                    tracing::warn!(%reason, action = %e.action, "audit write waits for the store");
                                    tokio::time::sleep(backoff).await;
                                    backoff = (backoff * 2).min(Duration::from_secs(5));
                                }
                                Err(err) => {
                                    tracing::error!(%err, action = %e.action, "audit entry could not be written");
                                    break;
                                }
                            }
                        }
                    }
                    Item::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Self { tx }
    }

    pub fn record(&self, entry: AuditEntry) {
        if self.tx.send(Item::Entry(entry)).is_err() {
            tracing::error!("audit sink is gone; entry lost");
        }
    }

    /// Waits until everything recorded before this call is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Item::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Return records with seq below this (newest first); omitted: from the newest.
    pub before: Option<u64>,
    pub limit: Option<usize>,
    pub actor: Option<String>,
    pub consultation: Option<ConsultationId>,
    pub action: Option<String>,
    /// Only records at or after this instant.
    pub from: Option<jiff::Timestamp>,
    /// Only records before this instant.
    pub to: Option<jiff::Timestamp>,
}

/// How far back one filtered query may scan, so a filter that matches nothing stays cheap.
const SCAN_LIMIT: u64 = 50_000;
const CHUNK: u64 = 500;

/// Newest first, filtered, paged by `before`.
pub async fn query(store: &DynStore, q: &AuditQuery) -> StoreResult<Page<AuditRecord>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let len = store.audit_len().await?;
    let mut hi = q.before.unwrap_or(len + 1).min(len + 1);
    let floor = hi.saturating_sub(SCAN_LIMIT).max(1);
    let mut items = Vec::new();
    // Records are appended in time order, so the scan stops at the first one before `from`.
    let mut older_than_from = false;
    while hi > floor && items.len() < limit && !older_than_from {
        let lo = hi.saturating_sub(CHUNK).max(floor);
        let mut chunk = store.audit_range(lo, hi).await?;
        chunk.reverse();
        for r in chunk {
            let e = &r.entry;
            if q.from.is_some_and(|f| e.at < f) {
                older_than_from = true;
                break;
            }
            let keep = q.to.is_none_or(|t| e.at < t)
                && q.actor.as_ref().is_none_or(|a| &e.actor == a)
                && q.consultation.as_ref().is_none_or(|c| e.consultation.as_ref() == Some(c))
                && q.action.as_ref().is_none_or(|a| &e.action == a);
            if keep && items.len() < limit {
                items.push(r);
            }
        }
        hi = lo;
    }
    let next = items.last().map(|r: &AuditRecord| r.seq).filter(|s| *s > 1 && items.len() == limit);
    Ok(Page { total: len as usize, next_offset: next.map(|s| s as usize), items })
}
