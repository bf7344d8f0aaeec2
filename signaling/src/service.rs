//! Consultation changes shared by the REST API and the signaling channel: load, apply the
//! lifecycle, commit with the version read and the audit entry, retry if someone else wrote
//! in between (the rules are checked again against the fresh record).

use jiff::Timestamp;
use serde_json::json;

use crate::consult::lifecycle::{self, Action, Actor, LifecycleError, Rules};
use crate::consult::model::Consultation;
use crate::error::AppError;
use crate::ids::ConsultationId;
use crate::metrics::Metrics;
use crate::store::{AuditEntry, DynStore, StoreError};

impl From<LifecycleError> for AppError {
    fn from(e: LifecycleError) -> Self {
        let msg = e.to_string();
        match e {
            LifecycleError::WrongState { .. } => AppError::conflict("invalid_state", msg),
            LifecycleError::Forbidden { .. } => AppError::forbidden("forbidden_role", msg),
            LifecycleError::Invalid { code, field, numbers, .. } => AppError::field(code, field, numbers, msg),
            LifecycleError::TooEarly { opens_at } => {
                AppError::conflict("too_early", msg).with_details(json!({ "opens_at": opens_at }))
            }
            LifecycleError::OpinionSigned => AppError::conflict("opinion_signed", msg),
            LifecycleError::NoSignedOpinion => AppError::conflict("no_signed_opinion", msg),
            LifecycleError::InvalidCharacters { field } => AppError::invalid_characters(field, msg),
            LifecycleError::GuestLink { code, .. } => match code {
                "guest_link_not_found" | "guest_link_invalid" => AppError::not_found(code, msg),
                _ => AppError::new(axum::http::StatusCode::GONE, code, msg),
            },
            LifecycleError::NotFound { code, .. } => AppError::not_found(code, msg),
            LifecycleError::StartTooFar => {
                AppError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "start_out_of_range", msg)
            }
        }
    }
}

pub fn not_found() -> AppError {
    AppError::not_found("consultation_not_found", "no such consultation, or it is not yours to see")
}

pub fn audit_for(actor: &Actor, action: &str, c: &Consultation, at: Timestamp) -> AuditEntry {
    AuditEntry::new(actor.id.as_str(), format!("consultation.{action}"), at)
        .consultation(&c.id)
        .detail(format!("status={}", c.status.as_str()))
}

pub async fn transition(
    store: &DynStore,
    rules: &Rules,
    metrics: &Metrics,
    events: &crate::events::Events,
    id: &ConsultationId,
    actor: &Actor,
    action: Action,
) -> Result<Consultation, AppError> {
    step(store, rules, metrics, events, id, actor, true, action, &|_| {}).await
}

/// As [`transition`], with `finish` applied to the new record before it is committed (and
/// again on each retry): what the lifecycle, being pure, cannot do itself, such as signing.
#[allow(clippy::too_many_arguments)]
pub async fn transition_then(
    store: &DynStore,
    rules: &Rules,
    metrics: &Metrics,
    events: &crate::events::Events,
    id: &ConsultationId,
    actor: &Actor,
    action: Action,
    finish: &(dyn Fn(&mut Consultation) + Send + Sync),
) -> Result<Consultation, AppError> {
    step(store, rules, metrics, events, id, actor, true, action, finish).await
}

/// A guest came through link `link` and gave `name`: the link is used from now on. The
/// signed link stood for the guest (`api::guests`), who is no account and sees no record.
pub async fn guest_arrived(
    store: &DynStore,
    rules: &Rules,
    metrics: &Metrics,
    events: &crate::events::Events,
    id: &ConsultationId,
    link: &str,
    name: String,
) -> Result<Consultation, AppError> {
    let guest = Actor {
        id: crate::ids::UserId(crate::consult::model::guest_identity(link)),
        role: crate::consult::model::Role::Viewer,
    };
    let action = Action::GuestArrived { id: link.to_owned(), name };
    step(store, rules, metrics, events, id, &guest, false, action, &|_| {}).await
}

#[allow(clippy::too_many_arguments)]
async fn step(
    store: &DynStore,
    rules: &Rules,
    metrics: &Metrics,
    events: &crate::events::Events,
    id: &ConsultationId,
    actor: &Actor,
    must_see: bool,
    action: Action,
    finish: &(dyn Fn(&mut Consultation) + Send + Sync),
) -> Result<Consultation, AppError> {
    for _ in 0..3 {
        let Some(current) = store.get_consultation(id).await? else {
            return Err(not_found());
        };
        if must_see && !current.visible_to(&actor.id, actor.role) {
            return Err(not_found());
        }
        let now = Timestamp::now();
        let mut next = lifecycle::apply(&current, actor, action.clone(), now, rules)?;
        finish(&mut next);
        let mut audit = audit_for(actor, action.name(), &next, now);
        if let Some(t) = action.target() {
            audit = audit.target(t);
        }
        match store.commit_consultation(&next, Some(current.version), &[audit]).await {
            Ok(()) => {
                metrics.transitions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(consultation = %id, actor = %actor.id, action = action.name(), status = next.status.as_str(), "consultation changed");
                events.publish(&next, action.name());
                return Ok(next);
            }
            Err(StoreError::VersionConflict) => continue,
            Err(e @ StoreError::SpecialistBusy { .. }) => {
                metrics.bookings_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::VersionConflict.into())
}
