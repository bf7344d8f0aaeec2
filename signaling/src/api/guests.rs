//! Guest links (issue 14): someone without an account (an outside expert, the patient's
//! family) joins one consultation through a one-time link. Whoever may invite makes one; the
//! guest opens it, gives a name, and waits in the lobby until a host admits them. A guest
//! sees nothing of the record but when it takes place; the link expires, can be withdrawn,
//! and every step is audited (ids only: the label and the name may name people).
//!
//! Three tokens: the link itself (`GuestLink`, handed out), the guest's own (`Guest`, what
//! the page keeps once the link is used) and the room token `/v1/guest/join` gives.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use super::consultations::{join_window, joined, load_visible, parse_cid};
use super::{ApiJson, Session, bearer};
use crate::auth::{GuestClaims, TokenError, TokenType};
use crate::consult::lifecycle::{Action, MAX_GUEST_LINK_HOURS, may_invite};
use crate::consult::model::{Consultation, GuestLink, guest_identity};
use crate::error::AppError;
use crate::ids::ConsultationId;
use crate::service;
use crate::state::AppState;
use crate::store::AuditEntry;

/// How long a new link stays open unless the inviter says otherwise.
const DEFAULT_VALID_HOURS: i64 = 24;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/consultations/{id}/guest_links", post(create))
        .route("/consultations/{id}/guest_links/{link}", get(link_again))
        .route("/consultations/{id}/guest_links/{link}/revoke", post(revoke))
        .route("/guest/check", post(check))
        .route("/guest/session", post(arrive))
        .route("/guest/consultation", get(consultation))
        .route("/guest/join", post(join))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    label: String,
    #[serde(default)]
    valid_hours: Option<i64>,
}

/// The link as the inviter hands it out: the record's entry, the token and the app's path.
fn handed_out(st: &AppState, c: &ConsultationId, g: &GuestLink, now: Timestamp) -> Result<Value, AppError> {
    let token = st.keys.guest(&g.id, c, TokenType::GuestLink, g.expires_at, now)?;
    let path = format!("/#/guest/{token}");
    Ok(json!({ "link": g, "token": token, "path": path }))
}

/// `POST /v1/consultations/{id}/guest_links`: a new one-time link.
async fn create(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let id = parse_cid(&id)?;
    let now = Timestamp::now();
    let hours = b.valid_hours.unwrap_or(DEFAULT_VALID_HOURS);
    // Out of range is the lifecycle's to refuse, with its code; only keep the sum finite.
    let expires_at = now + SignedDuration::from_hours(hours.clamp(-1, MAX_GUEST_LINK_HOURS + 1));
    let link = uuid::Uuid::new_v4().simple().to_string();
    let action = Action::CreateGuestLink { id: link.clone(), label: b.label, expires_at };
    let c = service::transition(&st.store, &st.rules, &st.metrics, &st.events, &id, &s.actor(), action).await?;
    let g = c.guests.iter().find(|g| g.id == link).ok_or_else(AppError::internal)?;
    Ok((StatusCode::CREATED, Json(handed_out(&st, &c.id, g, now)?)))
}

/// `GET /v1/consultations/{id}/guest_links/{link}`: the same link again (to copy it once more).
async fn link_again(
    State(st): State<AppState>,
    s: Session,
    Path((id, link)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let c = load_visible(&st, &s, &id).await?;
    may_invite(&c, &s.actor())?;
    let g = c.guests.iter().find(|g| g.id == link).ok_or_else(no_such_link)?;
    Ok(Json(handed_out(&st, &c.id, g, Timestamp::now())?))
}

/// `POST /v1/consultations/{id}/guest_links/{link}/revoke`: the link opens for no one any
/// more, and a guest who came through it leaves the room at once.
async fn revoke(
    State(st): State<AppState>,
    s: Session,
    Path((id, link)): Path<(String, String)>,
) -> Result<Json<Consultation>, AppError> {
    let id = parse_cid(&id)?;
    let action = Action::RevokeGuestLink { id: link.clone() };
    let c = service::transition(&st.store, &st.rules, &st.metrics, &st.events, &id, &s.actor(), action).await?;
    st.hub.revise(&c.id, &guest_identity(&link), None).await;
    Ok(Json(c))
}

fn no_such_link() -> AppError {
    AppError::not_found("guest_link_not_found", "no such guest link")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArriveBody {
    link: String,
    name: String,
}

/// What a guest sees of the consultation: when it is, and in what form. Nothing of the case.
fn guest_view(c: &Consultation, g: &GuestLink) -> Value {
    json!({
        "id": c.id,
        "kind": c.kind,
        "status": c.status,
        "start": c.start,
        "duration_minutes": c.duration_minutes,
        "name": g.guest_name,
        "expires_at": g.expires_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    link: String,
}

/// `POST /v1/guest/check`: whether the link still opens, without using it, so the guest's
/// page can say so before asking for a name. Open: when, and in what form; otherwise the
/// code `/v1/guest/session` would give.
async fn check(State(st): State<AppState>, ApiJson(b): ApiJson<CheckBody>) -> Result<Json<Value>, AppError> {
    let claims = link_claims(&st, &b.link)?;
    let c = st.store.get_consultation(&claims.room).await?.ok_or_else(invalid_link)?;
    let g = c.guests.iter().find(|g| g.id == claims.sub).ok_or_else(invalid_link)?;
    let gone = |code, m: &str| Err(AppError::new(StatusCode::GONE, code, m.to_owned()));
    if g.revoked_at.is_some() {
        return gone("guest_link_revoked", "this guest link has been withdrawn");
    }
    if Timestamp::now() >= g.expires_at {
        return gone("guest_link_expired", "this guest link has expired");
    }
    if g.used_at.is_some() {
        return gone("guest_link_used", "this guest link has been used already; ask for a new one");
    }
    if c.status.is_closed() {
        return Err(AppError::forbidden("join_window_closed", "this consultation is over"));
    }
    Ok(Json(
        json!({ "kind": c.kind, "status": c.status, "start": c.start, "duration_minutes": c.duration_minutes, "expires_at": g.expires_at }),
    ))
}

/// `POST /v1/guest/session`: the guest came through the link and gave a name. The link is
/// used from now on; the guest keeps the token answered here.
async fn arrive(State(st): State<AppState>, ApiJson(b): ApiJson<ArriveBody>) -> Result<Json<Value>, AppError> {
    let claims = link_claims(&st, &b.link)?;
    let c = service::guest_arrived(&st.store, &st.rules, &st.metrics, &st.events, &claims.room, &claims.sub, b.name)
        .await
        .map_err(|e| if e.code == "consultation_not_found" { invalid_link() } else { e })?;
    let g = c.guests.iter().find(|g| g.id == claims.sub).ok_or_else(AppError::internal)?;
    let now = Timestamp::now();
    let token = st.keys.guest(&g.id, &c.id, TokenType::Guest, g.expires_at, now)?;
    tracing::info!(consultation = %c.id, link = %g.id, "a guest came through their link");
    Ok(Json(json!({ "token": token, "expires_at": g.expires_at, "consultation": guest_view(&c, g) })))
}

/// The link a guest holds, if it is ours and not past its time (the record says the rest).
fn link_claims(st: &AppState, link: &str) -> Result<GuestClaims, AppError> {
    st.keys.verify_guest(link, TokenType::GuestLink).map_err(|e| match e {
        TokenError::Expired => AppError::new(StatusCode::GONE, "guest_link_expired", "this guest link has expired"),
        _ => invalid_link(),
    })
}

fn invalid_link() -> AppError {
    AppError::not_found("guest_link_invalid", "this guest link is not valid")
}

/// A request carrying a guest's own token, whose link still holds.
pub struct Guest {
    pub claims: GuestClaims,
    pub consultation: Consultation,
}

impl Guest {
    fn link(&self) -> Result<&GuestLink, AppError> {
        self.consultation.guests.iter().find(|g| g.id == self.claims.sub).ok_or_else(invalid_link)
    }
}

impl FromRequestParts<AppState> for Guest {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, AppError> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| AppError::unauthorized("token_missing", "open your guest link first"))?;
        let claims = st.keys.verify_guest(token, TokenType::Guest).map_err(|e| match e {
            TokenError::Expired => AppError::unauthorized("token_expired", "your guest link has expired"),
            _ => AppError::unauthorized("invalid_token", "the guest token is not valid"),
        })?;
        let consultation = st.store.get_consultation(&claims.room).await?.ok_or_else(invalid_link)?;
        let g = consultation.guests.iter().find(|g| g.id == claims.sub).ok_or_else(invalid_link)?;
        if g.revoked_at.is_some() {
            return Err(AppError::new(StatusCode::GONE, "guest_link_revoked", "this guest link has been withdrawn"));
        }
        Ok(Guest { claims, consultation })
    }
}

/// `GET /v1/guest/consultation`: when it is and whether it is on (for the guest's page).
async fn consultation(g: Guest) -> Result<Json<Value>, AppError> {
    Ok(Json(guest_view(&g.consultation, g.link()?)))
}

/// `POST /v1/guest/join`: a room token for the guest, inside the join window.
async fn join(State(st): State<AppState>, g: Guest) -> Result<Json<Value>, AppError> {
    let c = &g.consultation;
    let now = Timestamp::now();
    join_window(&st, c, now)?;
    let home = super::consultations::home_node(&st, &c.id).await?;
    let link = g.link()?;
    let grants = crate::consult::rights::guest_grants(c, &link.id).ok_or_else(invalid_link)?;
    let identity = link.identity();
    let name = link.guest_name.clone().unwrap_or_default();
    let ttl = st.config.auth.room_token_ttl_secs;
    let (token, expires_at) = st.keys.guest_room(&identity, &name, &c.id, grants, ttl, now, &link.id)?;
    st.audit.record(
        AuditEntry::new(identity.as_str(), "consultation.guest_join_token", now).consultation(&c.id).target(&link.id),
    );
    Ok(Json(joined(&st, c, &identity, grants, (token, expires_at), now, home)))
}
