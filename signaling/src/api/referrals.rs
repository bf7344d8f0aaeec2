//! Two-way referral over HTTP (issue 15): each step of `consult::referral`, and the lists of
//! a site's referrals, incoming and outgoing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::{Value, json};

use super::consultations::parse_cid;
use super::{ApiJson, ApiQuery, Session};
use crate::consult::lifecycle::Action;
use crate::consult::model::{Consultation, Urgency};
use crate::consult::referral::{RefStatus, Step};
use crate::error::AppError;
use crate::ids::SiteId;
use crate::service;
use crate::state::AppState;
use crate::store::ConsultationQuery;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/consultations/{id}/referrals", post(refer))
        .route("/consultations/{id}/referrals/{rid}/{step}", post(step))
        .route("/referrals", get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferBody {
    to_site: SiteId,
    department: String,
    reason: String,
    #[serde(default = "routine")]
    urgency: Urgency,
}

fn routine() -> Urgency {
    Urgency::Routine
}

async fn run(st: &AppState, s: &Session, id: &str, step: Step) -> Result<Consultation, AppError> {
    let id = parse_cid(id)?;
    let action = Action::Referral { step, site: s.user.site_id.clone() };
    service::transition(&st.store, &st.rules, &st.metrics, &st.events, &id, &s.actor(), action).await
}

/// `POST /v1/consultations/{id}/referrals`: the requesting doctor refers the patient up.
async fn refer(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReferBody>,
) -> Result<(StatusCode, Json<Consultation>), AppError> {
    if st.store.get_site(&b.to_site).await?.is_none() {
        return Err(AppError::field("site_not_found", "to_site", json!({}), "no such site"));
    }
    let step = Step::Refer {
        id: uuid::Uuid::now_v7().simple().to_string(),
        to_site: b.to_site,
        department: b.department,
        reason: b.reason,
        urgency: b.urgency,
    };
    Ok((StatusCode::CREATED, Json(run(&st, &s, &id, step).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepBody {
    planned_date: Option<Date>,
    reason: Option<String>,
    instructions: Option<String>,
}

/// `POST /v1/consultations/{id}/referrals/{rid}/{step}`: accept, decline, cancel, admit,
/// discharge, receive.
async fn step(
    State(st): State<AppState>,
    s: Session,
    Path((id, rid, step)): Path<(String, String, String)>,
    raw: axum::body::Bytes,
) -> Result<Json<Consultation>, AppError> {
    let b: StepBody = if raw.iter().all(u8::is_ascii_whitespace) {
        StepBody { planned_date: None, reason: None, instructions: None }
    } else {
        super::parse_json(&raw)?
    };
    let missing =
        |field: &'static str| AppError::field("text_required", field, json!({}), format!("{field} is needed"));
    let step = match step.as_str() {
        "accept" => {
            Step::Accept { referral: rid, planned_date: b.planned_date.ok_or_else(|| missing("planned_date"))? }
        }
        "decline" => Step::Decline { referral: rid, reason: b.reason.ok_or_else(|| missing("reason"))? },
        "cancel" => Step::Cancel { referral: rid, reason: b.reason.ok_or_else(|| missing("reason"))? },
        "admit" => Step::Admit { referral: rid },
        "discharge" => Step::Discharge {
            referral: rid,
            instructions: b.instructions.ok_or_else(|| missing("instructions"))?,
            down: uuid::Uuid::now_v7().simple().to_string(),
        },
        "receive" => Step::Receive { referral: rid },
        _ => return Err(AppError::not_found("no_such_endpoint", "no such referral step")),
    };
    Ok(Json(run(&st, &s, &id, step).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `incoming` (to my site) or `outgoing` (from my site).
    #[serde(rename = "box")]
    which: String,
    /// Comma-separated referral statuses.
    status: Option<String>,
}

/// How many of the newest consultations a site's referral list looks through.
const REFERRAL_SEARCH_DEPTH: usize = 5000;

/// `GET /v1/referrals?box=incoming|outgoing&status=`: the referrals to or from the caller's
/// site, newest first, with the consultation's number and masked patient (no reasons).
async fn list(
    State(st): State<AppState>,
    s: Session,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, AppError> {
    let incoming = match q.which.as_str() {
        "incoming" => true,
        "outgoing" => false,
        _ => return Err(AppError::field("unknown_box", "box", json!({}), "box is incoming or outgoing")),
    };
    let mut statuses = Vec::new();
    for part in q.status.as_deref().unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        let v: RefStatus = serde_json::from_value(json!(part))
            .map_err(|_| AppError::field("unknown_status", "status", json!({}), format!("unknown status {part}")))?;
        statuses.push(v);
    }
    let Some(site) = s.user.site_id.clone() else {
        return Ok(Json(json!({ "items": [], "total": 0 })));
    };
    // Coordinators see every consultation; others those they take part in.
    let everyone = s.user.role == crate::consult::model::Role::Coordinator;
    let mut scan = ConsultationQuery {
        involving: (!everyone).then(|| s.user.id.clone()),
        ascending: false,
        offset: 0,
        limit: 200,
        ..Default::default()
    };
    let today = st.rules.today(Timestamp::now());
    let mut items = Vec::new();
    loop {
        let page = st.store.list_consultations(&scan).await?;
        for c in &page.items {
            for r in &c.referrals {
                let mine = if incoming { r.to_site == site } else { r.from_site == site };
                if !mine || (!statuses.is_empty() && !statuses.contains(&r.status)) {
                    continue;
                }
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.remove("reason");
                    o.remove("refusal");
                }
                items.push(json!({
                    "consultation": c.id,
                    "number": c.number,
                    "patient_summary": c.patient.as_ref().map(|p| p.summary(today)),
                    "referral": v,
                }));
            }
        }
        match page.next_offset {
            Some(next) if next < REFERRAL_SEARCH_DEPTH => scan.offset = next,
            _ => break,
        }
    }
    items.sort_by(|a, b| b["referral"]["requested_at"].as_str().cmp(&a["referral"]["requested_at"].as_str()));
    let total = items.len();
    Ok(Json(json!({ "items": items, "total": total })))
}
