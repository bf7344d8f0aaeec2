//! Sign-in, sessions, and the administrator's sites, users and audit trail.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiJson, ApiQuery, Session};
use crate::audit::AuditQuery;
use crate::auth::{TokenError, TokenType, password};
use crate::consult::model::{Role, Site, SiteLevel, User, UserView};
use crate::error::AppError;
use crate::ids::{SiteId, UserId};
use crate::state::AppState;
use crate::store::{AuditEntry, StoreError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
        .route("/me/password", post(change_password))
        .route("/sites", get(list_sites).post(create_site))
        .route("/sites/{id}", get(get_site).patch(update_site))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).patch(update_user))
        .route("/audit", get(audit))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

fn tokens(st: &AppState, u: &User) -> Result<Value, AppError> {
    let now = Timestamp::now();
    let a = &st.config.auth;
    let (access, exp) =
        st.keys.session(&u.id, u.role, u.token_generation, TokenType::Session, a.session_ttl_secs, now)?;
    let (refresh, rexp) =
        st.keys.session(&u.id, u.role, u.token_generation, TokenType::Refresh, a.refresh_ttl_secs, now)?;
    Ok(json!({
        "access_token": access,
        "expires_at": exp,
        "refresh_token": refresh,
        "refresh_expires_at": rexp,
        "user": UserView::from(u),
    }))
}

async fn login(State(st): State<AppState>, ApiJson(b): ApiJson<LoginBody>) -> Result<Json<Value>, AppError> {
    if b.username.len() > 64 || b.password.len() > password::MAX_LEN {
        return Err(AppError::unauthorized("invalid_credentials", "wrong username or password"));
    }
    let key = b.username.to_lowercase();
    // Charged before the password is checked, in one step: checked first and charged after,
    // 30 parallel guesses were all checked before any was charged.
    if !st.login_limiter.take(&key, Instant::now()).await {
        return Err(AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed sign-ins; wait a minute",
        ));
    }
    let user = st.store.get_user_by_name(&key).await?;
    // Verify against a dummy hash when the user does not exist, so timing does not tell.
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| DUMMY_HASH.to_owned());
    let ok = st.passwords.verify(b.password, hash).await?;
    match user {
        Some(u) if ok && !u.disabled => {
            st.login_limiter.give_back(&key, Instant::now()).await;
            st.metrics.logins_ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            st.audit.record(AuditEntry::new(u.id.as_str(), "auth.login", Timestamp::now()));
            Ok(Json(tokens(&st, &u)?))
        }
        other => {
            st.metrics.logins_failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let actor = other.as_ref().map(|u| u.id.to_string()).unwrap_or_else(|| "unknown".into());
            st.audit.record(AuditEntry::new(actor, "auth.login_failed", Timestamp::now()));
            Err(AppError::unauthorized("invalid_credentials", "wrong username or password"))
        }
    }
}

/// An argon2 hash of a random string: verifying against it costs what a real check costs.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$W5ZkrMpE0jbP7TOUpG5x1B0BsEHXuJ9pRr7jcoc2l3k";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(State(st): State<AppState>, ApiJson(b): ApiJson<RefreshBody>) -> Result<Json<Value>, AppError> {
    let claims = st.keys.verify_session(&b.refresh_token, TokenType::Refresh).map_err(|e| match e {
        TokenError::Expired => AppError::unauthorized("token_expired", "the refresh token has expired; sign in again"),
        _ => AppError::unauthorized("invalid_token", "the refresh token is not valid"),
    })?;
    let user = super::current_user(&st, &claims).await?;
    Ok(Json(tokens(&st, &user)?))
}

/// Revokes every token of this user (all devices).
async fn logout(State(st): State<AppState>, s: Session) -> Result<StatusCode, AppError> {
    let mut u = s.user;
    u.token_generation += 1;
    st.store.update_user(&u).await?;
    st.events.revoke(&u.id);
    st.audit.record(AuditEntry::new(u.id.as_str(), "auth.logout", Timestamp::now()));
    Ok(StatusCode::NO_CONTENT)
}

async fn me(s: Session) -> Json<UserView> {
    Json(UserView::from(&s.user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    old_password: String,
    new_password: String,
}

async fn change_password(
    State(st): State<AppState>,
    s: Session,
    ApiJson(b): ApiJson<PasswordBody>,
) -> Result<Json<Value>, AppError> {
    password::check_strength(&b.new_password).map_err(|m| password_rule("new_password", m))?;
    if b.new_password == b.old_password {
        return Err(AppError::field(
            "password_unchanged",
            "new_password",
            json!({}),
            "the new password must differ from the current one",
        ));
    }
    if !st.passwords.verify(b.old_password, s.user.password_hash.clone()).await? {
        return Err(AppError::forbidden("invalid_credentials", "the current password is wrong"));
    }
    let mut u = s.user;
    u.password_hash = st.passwords.hash(b.new_password).await?;
    u.must_change_password = false;
    u.token_generation += 1;
    st.store.update_user(&u).await?;
    st.events.revoke(&u.id);
    st.audit.record(AuditEntry::new(u.id.as_str(), "auth.password_changed", Timestamp::now()));
    Ok(Json(tokens(&st, &u)?))
}

// ---- sites ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteBody {
    name: String,
    level: SiteLevel,
    #[serde(default)]
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SitePatch {
    name: Option<String>,
    level: Option<SiteLevel>,
    time_zone: Option<String>,
}

fn check_name(field: &'static str, v: &str, max: usize) -> Result<String, AppError> {
    if crate::text::forbidden_char(v, crate::text::TextKind::Name).is_some() {
        return Err(AppError::invalid_characters(
            field,
            format!("{field} contains a line break, control, zero-width or direction-changing character"),
        ));
    }
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(AppError::field(
            "name_length",
            field,
            json!({ "min": 1, "max": max }),
            format!("{field} must have 1 to {max} characters"),
        ));
    }
    Ok(t.to_owned())
}

fn password_rule(field: &'static str, message: String) -> AppError {
    AppError::field("password_length", field, json!({ "min": password::MIN_LEN, "max": password::MAX_LEN }), message)
}

fn check_zone(tz: &str) -> Result<String, AppError> {
    jiff::tz::TimeZone::get(tz)
        .map_err(|_| AppError::field("unknown_time_zone", "time_zone", json!({}), format!("unknown time zone {tz}")))?;
    Ok(tz.to_owned())
}

pub fn default_zone() -> String {
    "Asia/Shanghai".into()
}

async fn create_site(
    State(st): State<AppState>,
    s: Session,
    ApiJson(b): ApiJson<SiteBody>,
) -> Result<(StatusCode, Json<Site>), AppError> {
    s.require(&[Role::Admin])?;
    let site = Site {
        id: SiteId::generate(),
        name: check_name("name", &b.name, 200)?,
        level: b.level,
        time_zone: check_zone(&b.time_zone.unwrap_or_else(default_zone))?,
        created_at: Timestamp::now(),
    };
    st.store.put_site(&site).await?;
    st.audit
        .record(AuditEntry::new(s.user.id.as_str(), "admin.site_created", Timestamp::now()).target(site.id.as_str()));
    Ok((StatusCode::CREATED, Json(site)))
}

fn parse_id<T>(raw: &str, parse: fn(&str) -> Option<T>) -> Result<T, AppError> {
    parse(raw).ok_or_else(|| AppError::not_found("not_found", "no such record"))
}

async fn load_site(st: &AppState, id: &str) -> Result<Site, AppError> {
    let id = parse_id(id, SiteId::parse)?;
    st.store.get_site(&id).await?.ok_or_else(|| AppError::not_found("site_not_found", "no such site"))
}

async fn get_site(State(st): State<AppState>, _s: Session, Path(id): Path<String>) -> Result<Json<Site>, AppError> {
    Ok(Json(load_site(&st, &id).await?))
}

async fn update_site(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SitePatch>,
) -> Result<Json<Site>, AppError> {
    s.require(&[Role::Admin])?;
    let mut site = load_site(&st, &id).await?;
    if let Some(n) = b.name {
        site.name = check_name("name", &n, 200)?;
    }
    if let Some(l) = b.level {
        site.level = l;
    }
    if let Some(tz) = b.time_zone {
        site.time_zone = check_zone(&tz)?;
    }
    st.store.put_site(&site).await?;
    st.audit
        .record(AuditEntry::new(s.user.id.as_str(), "admin.site_updated", Timestamp::now()).target(site.id.as_str()));
    Ok(Json(site))
}

async fn list_sites(State(st): State<AppState>, _s: Session) -> Result<Json<Value>, AppError> {
    Ok(Json(json!({ "items": st.store.list_sites().await? })))
}

// ---- users ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    username: String,
    display_name: String,
    role: Role,
    password: String,
    #[serde(default)]
    site_id: Option<SiteId>,
    #[serde(default)]
    specialty: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    display_name: Option<String>,
    role: Option<Role>,
    site_id: Option<SiteId>,
    specialty: Option<String>,
    disabled: Option<bool>,
    /// An administrator's password reset; revokes the user's sessions.
    password: Option<String>,
}

fn check_username(u: &str) -> Result<String, AppError> {
    let ok =
        (3..=64).contains(&u.len()) && u.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(AppError::field(
            "username_rule",
            "username",
            json!({ "min": 3, "max": 64 }),
            "username: 3 to 64 of a-z, 0-9, . _ -",
        ));
    }
    Ok(u.to_lowercase())
}

async fn check_site(st: &AppState, site: &Option<SiteId>) -> Result<(), AppError> {
    if let Some(id) = site
        && st.store.get_site(id).await?.is_none()
    {
        return Err(AppError::field("site_not_found", "site_id", json!({}), format!("site {id} does not exist")));
    }
    Ok(())
}

pub async fn create_user_record(st: &AppState, b: UserBodyOwned) -> Result<User, AppError> {
    password::check_strength(&b.password).map_err(|m| password_rule("password", m))?;
    let user = User {
        id: UserId::generate(),
        username: check_username(&b.username)?,
        display_name: check_name("display_name", &b.display_name, 100)?,
        role: b.role,
        site_id: b.site_id,
        specialty: b.specialty.map(|s| check_name("specialty", &s, 100)).transpose()?,
        disabled: false,
        password_hash: st.passwords.hash(b.password).await?,
        token_generation: 0,
        created_at: Timestamp::now(),
        must_change_password: b.must_change_password,
    };
    check_site(st, &user.site_id).await?;
    st.store.create_user(&user).await.map_err(|e| match e {
        StoreError::Duplicate(_) => AppError::conflict("username_taken", "that username is taken"),
        e => e.into(),
    })?;
    Ok(user)
}

/// The fields of a new user, for the API and for seeding.
pub struct UserBodyOwned {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password: String,
    pub site_id: Option<SiteId>,
    pub specialty: Option<String>,
    /// A one-time password its user must replace at first sign-in.
    pub must_change_password: bool,
}

async fn create_user(
    State(st): State<AppState>,
    s: Session,
    ApiJson(b): ApiJson<UserBody>,
) -> Result<(StatusCode, Json<UserView>), AppError> {
    s.require(&[Role::Admin])?;
    let user = create_user_record(
        &st,
        UserBodyOwned {
            username: b.username,
            display_name: b.display_name,
            role: b.role,
            password: b.password,
            site_id: b.site_id,
            specialty: b.specialty,
            must_change_password: false,
        },
    )
    .await?;
    st.audit
        .record(AuditEntry::new(s.user.id.as_str(), "admin.user_created", Timestamp::now()).target(user.id.as_str()));
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

async fn load_user(st: &AppState, id: &str) -> Result<User, AppError> {
    let id = parse_id(id, UserId::parse)?;
    st.store.get_user(&id).await?.ok_or_else(|| AppError::not_found("user_not_found", "no such user"))
}

async fn get_user(State(st): State<AppState>, s: Session, Path(id): Path<String>) -> Result<Json<UserView>, AppError> {
    if s.user.id.as_str() != id {
        s.require(&[Role::Admin, Role::Coordinator])?;
    }
    Ok(Json(UserView::from(&load_user(&st, &id).await?)))
}

async fn update_user(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UserPatch>,
) -> Result<Json<UserView>, AppError> {
    s.require(&[Role::Admin])?;
    let mut u = load_user(&st, &id).await?;
    let mut revoke = false;
    // Disabled, or another role: the account's room sockets close (it comes back through
    // `/join`, if it may, with what it may do now).
    let mut out_of_rooms = false;
    if let Some(n) = b.display_name {
        u.display_name = check_name("display_name", &n, 100)?;
    }
    if let Some(r) = b.role {
        revoke |= r != u.role;
        out_of_rooms |= r != u.role;
        u.role = r;
    }
    if b.site_id.is_some() {
        check_site(&st, &b.site_id).await?;
        u.site_id = b.site_id;
    }
    if let Some(sp) = b.specialty {
        u.specialty = Some(check_name("specialty", &sp, 100)?);
    }
    if let Some(d) = b.disabled {
        if d && u.id == s.user.id {
            return Err(AppError::conflict("cannot_disable_self", "an administrator cannot disable their own account"));
        }
        revoke |= d;
        out_of_rooms |= d;
        u.disabled = d;
    }
    if let Some(p) = b.password {
        password::check_strength(&p).map_err(|m| password_rule("password", m))?;
        u.password_hash = st.passwords.hash(p).await?;
        revoke = true;
    }
    if revoke {
        u.token_generation += 1;
    }
    st.store.update_user(&u).await?;
    if out_of_rooms {
        st.hub.revoke_everywhere(u.id.as_str()).await;
    }
    if revoke || out_of_rooms {
        st.events.revoke(&u.id);
    }
    st.audit.record(AuditEntry::new(s.user.id.as_str(), "admin.user_updated", Timestamp::now()).target(u.id.as_str()));
    Ok(Json(UserView::from(&u)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFilter {
    role: Option<Role>,
    specialty: Option<String>,
}

/// Admins see everyone; coordinators need the list to assign specialists.
async fn list_users(
    State(st): State<AppState>,
    s: Session,
    ApiQuery(f): ApiQuery<UserFilter>,
) -> Result<Json<Value>, AppError> {
    s.require(&[Role::Admin, Role::Coordinator])?;
    let users: Vec<UserView> = st
        .store
        .list_users()
        .await?
        .iter()
        .filter(|u| f.role.is_none_or(|r| u.role == r))
        .filter(|u| f.specialty.as_ref().is_none_or(|sp| u.specialty.as_ref() == Some(sp)))
        .map(UserView::from)
        .collect();
    Ok(Json(json!({ "items": users })))
}

async fn audit(
    State(st): State<AppState>,
    s: Session,
    ApiQuery(q): ApiQuery<AuditQuery>,
    _h: HeaderMap,
) -> Result<Json<Value>, AppError> {
    s.require(&[Role::Admin])?;
    if let (Some(f), Some(t)) = (q.from, q.to)
        && t <= f
    {
        return Err(AppError::field("range_reversed", "to", json!({}), "to must be after from"));
    }
    let page = crate::audit::query(&st.store, &q).await?;
    Ok(Json(json!({ "items": page.items, "total": page.total, "next_before": page.next_offset })))
}
