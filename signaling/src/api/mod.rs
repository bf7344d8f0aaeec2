//! The HTTP API under `/v1`, plus health, readiness and metrics. Endpoints are listed in
//! `docs/api.md`.

pub mod accounts;
pub mod attachments;
pub mod consultations;
pub mod elsewhere;
pub mod events;
pub mod fhir;
pub mod guests;
pub mod invitable;
pub mod recordings;
pub mod referrals;
pub mod signing;
pub mod whip;

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::{TokenError, TokenType};
use crate::consult::lifecycle::Actor;
use crate::consult::model::{Role, User};
use crate::error::AppError;
use crate::state::AppState;

pub fn router(st: AppState) -> Router {
    let v1 = Router::new()
        .merge(accounts::routes())
        .merge(attachments::routes())
        .merge(consultations::routes())
        .merge(events::routes())
        .merge(fhir::routes())
        .merge(guests::routes())
        .merge(invitable::routes())
        .merge(recordings::routes())
        .merge(referrals::routes())
        .merge(signing::routes())
        .merge(whip::routes(&st))
        .route("/rtc", get(crate::rtc::session::upgrade))
        .fallback(|| async { AppError::not_found("no_such_endpoint", "no such endpoint") });
    Router::new()
        .nest("/v1", v1)
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::web::routes())
        .method_not_allowed_fallback(|| async {
            AppError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(st.config.limits.http_body_bytes))
        .layer(axum::middleware::from_fn_with_state(st.clone(), guard))
        .with_state(st)
}

async fn readyz(State(st): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    st.store.ping().await?;
    // A draining node takes no new work: a balancer in front of several nodes sends it elsewhere.
    if st.cluster.as_ref().is_some_and(|c| c.draining()) {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this node is draining for maintenance",
        )
        .with_details(json!({ "rooms": st.hub.room_count() })));
    }
    Ok(Json(json!({ "status": "ready" })))
}

async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, AppError> {
    let want = st.config.metrics_token.as_bytes();
    if !want.is_empty() && !same_secret(bearer(&headers).unwrap_or("").as_bytes(), want) {
        return Err(AppError::unauthorized("metrics_token_required", "/metrics needs the configured bearer token"));
    }
    let mut body = st.metrics.render(st.sfu.stats());
    if st.config.turn.enabled {
        st.turn_stats.render(&mut body);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

/// Compares without an early exit, so the time taken does not tell how much of a guess matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Per-IP rate limit, body limit and response counting, for every route.
async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_default();
    // The app's own files are served from memory and cost nothing to speak of, while a whole
    // county hospital may sit behind one NAT address: a teaching session's trainees opening
    // the page at once would otherwise use up the address's budget on scripts and be refused
    // the page itself. The limit guards the API (`/v1`).
    let path = req.uri().path();
    let exempt = matches!(path, "/healthz" | "/readyz" | "/metrics")
        || (req.method() == axum::http::Method::GET && !path.starts_with("/v1/"));
    if !exempt && !st.http_limiter.take(&ip, Instant::now()).await {
        st.metrics.http_rate_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let resp = AppError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests; slow down")
            .into_response();
        st.metrics.http(resp.status().as_u16());
        return resp;
    }
    let api = path.starts_with("/v1/");
    let mut resp = next.run(req).await;
    // API answers carry case text and tokens: no cache keeps them, and no page the app links
    // to learns where the user came from.
    let h = resp.headers_mut();
    if api && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    }
    h.entry(header::REFERRER_POLICY).or_insert(axum::http::HeaderValue::from_static("no-referrer"));
    h.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(axum::http::HeaderValue::from_static("nosniff"));
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
        st.metrics.store_unavailable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    st.metrics.http(resp.status().as_u16());
    resp
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// A JSON body with our own errors: size limit, content type, syntax and shape each get a code.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, AppError> {
        require_json(req.headers())?;
        let limit = st.config.limits.http_body_bytes;
        let body = axum::body::to_bytes(req.into_body(), limit).await.map_err(|e| unreadable_body(&e, limit))?;
        parse_json(&body).map(ApiJson)
    }
}

/// 415 unless the request says its body is JSON.
pub fn require_json(headers: &HeaderMap) -> Result<(), AppError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        Ok(())
    } else {
        Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ))
    }
}

/// A body that could not be read whole: too slow (`limits.http_body_timeout_secs`, 408) or,
/// otherwise, too large.
pub fn unreadable_body(e: &(dyn std::error::Error + 'static), limit: usize) -> AppError {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return AppError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body did not arrive in time",
            );
        }
        cause = err.source();
    }
    body_too_large(limit)
}

pub fn body_too_large(limit: usize) -> AppError {
    AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request bodies are limited to {limit} bytes"),
    )
}

pub fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_error(e.into_inner(), &path)
    })?;
    de.end().map_err(|e| json_error(e, "."))?;
    Ok(value)
}

/// A body that is not JSON is `malformed_json`; JSON of the wrong shape is `invalid_field`,
/// naming the field (`details.field`: its path, such as `wished.from`, or the unknown field's
/// name) so that a client can point at it (issue 14: shape errors named no field).
fn json_error(e: serde_json::Error, path: &str) -> AppError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let message = e.to_string();
            // The path names an unknown field itself; a missing one only in the message.
            let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
            let field = match (missing, path) {
                (Some(name), ".") => name.to_owned(),
                (Some(name), p) => format!("{p}.{name}"),
                (None, p) => p.to_owned(),
            };
            let err = AppError::invalid(message);
            if field == "." { err } else { err.with_details(json!({ "field": field })) }
        }
        Category::Syntax | Category::Eof | Category::Io => AppError::bad_request("malformed_json", e.to_string()),
    }
}

/// The signed-in user, from `Authorization: Bearer <session token>`. The user is read again
/// from the store on each request, so a disabled account or a logout takes effect at once.
pub struct Session {
    pub user: User,
    /// When the session token ends (Unix seconds): a long-lived answer (the event stream) ends
    /// with it, and the client comes back with a fresh one.
    pub expires_at: i64,
}

impl Session {
    pub fn actor(&self) -> Actor {
        Actor { id: self.user.id.clone(), role: self.user.role }
    }
    pub fn require(&self, roles: &[Role]) -> Result<(), AppError> {
        if roles.contains(&self.user.role) {
            Ok(())
        } else {
            Err(AppError::forbidden("forbidden_role", "your role may not do this"))
        }
    }
}

/// What a session whose password is a one-time one may call.
const ALLOWED_BEFORE_PASSWORD_CHANGE: [&str; 3] = ["/v1/me", "/v1/me/password", "/v1/auth/logout"];

impl FromRequestParts<AppState> for Session {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, AppError> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| AppError::unauthorized("token_missing", "sign in first (Authorization: Bearer)"))?;
        let claims = st.keys.verify_session(token, TokenType::Session).map_err(|e| match e {
            TokenError::Expired => {
                AppError::unauthorized("token_expired", "the session has expired; refresh or sign in again")
            }
            _ => AppError::unauthorized("invalid_token", "the session token is not valid"),
        })?;
        let user = current_user(st, &claims).await?;
        // A one-time password opens only what it takes to replace it (and to see who you are,
        // and to sign out).
        // Under `nest("/v1")` the request's own URI has lost its prefix; the original has it.
        let path = parts.extensions.get::<axum::extract::OriginalUri>().map_or(parts.uri.path(), |u| u.0.path());
        if user.must_change_password && !ALLOWED_BEFORE_PASSWORD_CHANGE.contains(&path) {
            return Err(AppError::forbidden(
                "password_change_required",
                "set your own password first (POST /v1/me/password)",
            ));
        }
        Ok(Session { user, expires_at: claims.exp })
    }
}

/// The account a session or refresh token speaks for, if it still may: not disabled, and not
/// logged out or re-passworded since the token was issued.
pub async fn current_user(st: &AppState, claims: &crate::auth::SessionClaims) -> Result<User, AppError> {
    user_at_generation(st, &claims.sub, claims.generation).await
}

/// The user a token was issued to, if it still speaks for them: not disabled, and the token's
/// generation still the user's (no sign-out everywhere or new password since).
pub async fn user_at_generation(st: &AppState, id: &crate::ids::UserId, generation: u64) -> Result<User, AppError> {
    st.store
        .get_user(id)
        .await?
        .filter(|u| !u.disabled && u.token_generation == generation)
        .ok_or_else(|| AppError::unauthorized("session_revoked", "this session is no longer valid; sign in again"))
}

/// Deepest offset a list serves: a store reads `offset + limit` entries to serve a page, and
/// `offset=9223372036854775807` once reached Redis as a negative count (503).
pub const MAX_OFFSET: usize = 100_000;

/// Offset paging parameters shared by the list endpoints.
pub fn page_bounds(offset: Option<usize>, limit: Option<usize>) -> Result<(usize, usize), AppError> {
    let limit = limit.unwrap_or(50);
    if limit == 0 || limit > 200 {
        return Err(AppError::field(
            "limit_out_of_range",
            "limit",
            json!({ "min": 1, "max": 200 }),
            "limit must be between 1 and 200",
        ));
    }
    let offset = offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "offset_out_of_range",
            format!("offset must be at most {MAX_OFFSET}"),
        ));
    }
    Ok((offset, limit))
}

/// Query strings with our own errors (axum's default rejection is plain text).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded_like(q).map(ApiQuery)
    }
}

fn serde_urlencoded_like<T: DeserializeOwned>(q: &str) -> Result<T, AppError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}").parse().map_err(|_| AppError::invalid("bad query string"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| AppError::invalid(format!("query: {}", e.body_text())))
}

/// A response body read off the async threads a chunk at a time (decrypting as it goes when
/// `reader` does): recordings and attachments, which may be large.
pub fn read_into_body(mut reader: impl std::io::Read + Send + 'static, what: &'static str) -> axum::body::Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(Ok(Bytes::copy_from_slice(&buf[..n]))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, what, "a read failed mid-download");
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    axum::body::Body::from_stream(stream)
}
