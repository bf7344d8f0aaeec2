//! Who can be invited into a consultation, for whoever may invite (its coordinator, a host,
//! the requester): hosts and requesters cannot read the user directory (`GET /v1/users` is
//! for admins and coordinators), so this answers only what inviting needs, only to them, and
//! only people not already on the consultation.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiJson, ApiQuery, Session, page_bounds};
use crate::consult::lifecycle::{MAX_PARTICIPANTS, may_invite};
use crate::consult::model::{Consultation, Role, User};
use crate::error::AppError;
use crate::ids::{SiteId, UserId};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/consultations/{id}/invitable", get(search))
        .route("/consultations/{id}/invitable/lookup", post(lookup))
}

/// What an inviter sees of a person: enough to choose, nothing more.
#[derive(Serialize)]
struct Invitable {
    id: UserId,
    username: String,
    display_name: String,
    role: Role,
    site_id: Option<SiteId>,
}

impl From<&User> for Invitable {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            site_id: u.site_id.clone(),
        }
    }
}

/// The consultation, if the caller may see it and invite into it now.
async fn inviting(st: &AppState, s: &Session, id: &str) -> Result<Consultation, AppError> {
    let c = super::consultations::load_visible(st, s, id).await?;
    may_invite(&c, &s.actor())?;
    Ok(c)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: Option<String>,
    site_id: Option<SiteId>,
    role: Option<Role>,
    limit: Option<usize>,
}

/// Active people not on the consultation, by name or username (ignoring case), site and role,
/// sorted by name.
async fn search(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiQuery(f): ApiQuery<SearchQuery>,
) -> Result<Json<Value>, AppError> {
    let (_, limit) = page_bounds(None, f.limit)?;
    let c = inviting(&st, &s, &id).await?;
    let q = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(str::to_lowercase);
    let mut found: Vec<User> = st
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| !u.disabled && !c.involves(&u.id))
        .filter(|u| f.role.is_none_or(|r| u.role == r) && u.role != Role::Admin)
        .filter(|u| f.site_id.as_ref().is_none_or(|site| u.site_id.as_ref() == Some(site)))
        .filter(|u| {
            q.as_ref().is_none_or(|q| {
                u.display_name.to_lowercase().contains(q.as_str()) || u.username.to_lowercase().contains(q.as_str())
            })
        })
        .collect();
    found.sort_by(|a, b| a.display_name.cmp(&b.display_name).then_with(|| a.username.cmp(&b.username)));
    let total = found.len();
    let items: Vec<Invitable> = found.iter().take(limit).map(Invitable::from).collect();
    Ok(Json(json!({ "items": items, "total": total })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupBody {
    usernames: Vec<String>,
}

/// A pasted list of usernames, each sorted into found, unknown, disabled or already on the
/// consultation, so the inviter can correct the list before inviting.
async fn lookup(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<LookupBody>,
) -> Result<Json<Value>, AppError> {
    if b.usernames.len() > MAX_PARTICIPANTS {
        return Err(AppError::field(
            "too_many_participants",
            "usernames",
            json!({ "max": MAX_PARTICIPANTS }),
            format!("at most {MAX_PARTICIPANTS} usernames at once"),
        ));
    }
    let c = inviting(&st, &s, &id).await?;
    let users = st.store.list_users().await?;
    let (mut found, mut unknown, mut disabled, mut already) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for name in &b.usernames {
        let name = name.trim();
        if name.is_empty() || !seen.insert(name.to_lowercase()) {
            continue;
        }
        match users.iter().find(|u| u.username.eq_ignore_ascii_case(name) && u.role != Role::Admin) {
            None => unknown.push(name.to_owned()),
            Some(u) if u.disabled => disabled.push(name.to_owned()),
            Some(u) if c.involves(&u.id) => already.push(Invitable::from(u)),
            Some(u) => found.push(Invitable::from(u)),
        }
    }
    Ok(Json(json!({ "found": found, "unknown": unknown, "disabled": disabled, "already": already })))
}
