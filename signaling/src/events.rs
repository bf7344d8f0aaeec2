//! Changes to consultations, pushed to the office pages of the people they concern
//! (`GET /v1/events`, server-sent events), so a specialist learns of an emergency assigned to
//! them, and a county doctor of their request being accepted, without reloading.
//!
//! A change names the consultation, the step, the new status, its urgency and specialists:
//! ids and words of the lifecycle, never case text. Whoever receives one and wants more reads
//! the consultation through the API, with their own rights. One node's changes reach that
//! node's streams (several nodes: issue 16).

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::consult::model::{Consultation, Role, Urgency};
use crate::ids::{ConsultationId, UserId};

/// Changes kept for a stream that is slow to read; one that falls further behind is told to
/// reload (`resync`).
const BACKLOG: usize = 1024;

#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub id: ConsultationId,
    /// The lifecycle step: `request`, `emergency_opened`, `accept`, `assign`, `start`, ….
    pub action: &'static str,
    pub status: &'static str,
    pub urgency: Urgency,
    pub version: u64,
    pub specialists: Vec<UserId>,
    /// Who it concerns besides the coordinators (who see every consultation).
    #[serde(skip)]
    pub involved: Vec<UserId>,
}

impl Change {
    pub fn of(c: &Consultation, action: &'static str) -> Self {
        Self {
            id: c.id.clone(),
            action,
            status: c.status.as_str(),
            urgency: c.urgency,
            version: c.version,
            specialists: c.specialists.clone(),
            involved: c.involved_users(),
        }
    }

    /// Whether `user` may see the consultation, and so hear of the change.
    pub fn concerns(&self, user: &UserId, role: Role) -> bool {
        role == Role::Coordinator || self.involved.contains(user)
    }
}

#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Arc<Change>>,
    /// Users whose sessions were revoked (disabled, role changed, signed out, new password):
    /// their streams end at once, as their tokens no longer open one.
    revoked: broadcast::Sender<UserId>,
    /// Set when the server stops: every stream ends, so the shutdown need not wait for them.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
            revoked: broadcast::channel(64).0,
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

impl Events {
    /// Tells the streams open now; nobody listening is fine.
    pub fn publish(&self, c: &Consultation, action: &'static str) {
        let _ = self.tx.send(Arc::new(Change::of(c, action)));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    /// Ends `user`'s streams.
    pub fn revoke(&self, user: &UserId) {
        let _ = self.revoked.send(user.clone());
    }

    pub fn revocations(&self) -> broadcast::Receiver<UserId> {
        self.revoked.subscribe()
    }

    /// Resolves once the server is stopping.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every stream (the server is stopping).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_concerns_those_involved_and_every_coordinator_only() {
        let c = Change {
            id: ConsultationId("c".into()),
            action: "accept",
            status: "scheduled",
            urgency: Urgency::Routine,
            version: 2,
            specialists: vec![UserId("spec".into())],
            involved: vec![UserId("doc".into()), UserId("spec".into())],
        };
        assert!(c.concerns(&UserId("doc".into()), Role::Doctor));
        assert!(c.concerns(&UserId("spec".into()), Role::Specialist));
        assert!(c.concerns(&UserId("any".into()), Role::Coordinator));
        assert!(!c.concerns(&UserId("other".into()), Role::Doctor));
        assert!(!c.concerns(&UserId("admin".into()), Role::Admin));
        let json = serde_json::to_value(&c).expect("a change serialises");
        assert!(json.get("involved").is_none(), "{json}");
        assert_eq!(json["urgency"], "routine");
    }
}
