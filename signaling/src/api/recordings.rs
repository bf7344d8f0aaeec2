//! Recordings of a consultation: list, download (decrypted as it streams when stored
//! encrypted), delete. Only the consultation's participants and admins; every access is
//! audited, since a recording is part of the medical record.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::elsewhere::{self, Here};
use super::{ApiQuery, Session};
use crate::auth::TokenError;
use crate::consult::model::{Consultation, Role, User};
use crate::error::AppError;
use crate::ids::ConsultationId;
use crate::state::AppState;
use crate::store::AuditEntry;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/consultations/{id}/recordings", get(list))
        .route("/consultations/{id}/recordings/{rid}", delete(remove))
        .route("/consultations/{id}/recordings/{rid}/files/{name}", get(download))
        .route("/consultations/{id}/recordings/{rid}/files/{name}/link", post(link))
        .route("/recording-links/{token}", get(by_link))
}

/// How long a download link works: long enough to click, short enough that one copied from a
/// proxy's log or a browser's history is already dead.
const LINK_TTL_SECS: u64 = 60;

fn recorder_error(e: huizhen_recorder::Error) -> AppError {
    match e {
        huizhen_recorder::Error::NotFound => AppError::not_found("recording_not_found", "no such recording or file"),
        huizhen_recorder::Error::Busy => AppError::conflict("recording_busy", "the recording is still being written"),
        huizhen_recorder::Error::KeyNeeded | huizhen_recorder::Error::Decrypt | huizhen_recorder::Error::NotSealed => {
            tracing::error!(error = %e, "a recording cannot be decrypted with the configured key");
            AppError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "recording_unreadable",
                "this recording cannot be decrypted",
            )
        }
        other => {
            tracing::error!(error = %other, "recording storage");
            AppError::internal()
        }
    }
}

/// Participants and admins only. Others get 403 (not 404): a recording is asked for by
/// consultation id from the report, so its existence is no secret to whoever holds the id.
async fn access(st: &AppState, user: &User, id: &str) -> Result<Consultation, AppError> {
    let cid = ConsultationId::parse(id)
        .ok_or_else(|| AppError::not_found("consultation_not_found", "no such consultation"))?;
    let c = st
        .store
        .get_consultation(&cid)
        .await?
        .ok_or_else(|| AppError::not_found("consultation_not_found", "no such consultation"))?;
    if !(c.involves(&user.id) || user.role == Role::Admin) {
        st.audit.record(
            AuditEntry::new(user.id.as_str(), "recording.access_denied", jiff::Timestamp::now()).consultation(&c.id),
        );
        return Err(AppError::forbidden(
            "not_participant",
            "only the consultation's participants and admins may see its recordings",
        ));
    }
    Ok(c)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, huizhen_recorder::Error> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| AppError::internal())?.map_err(recorder_error)
}

async fn list(
    State(st): State<AppState>,
    s: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<Here>,
) -> Result<Json<Value>, AppError> {
    let c = access(&st, &s.user, &id).await?;
    let rec = st.recorder.clone();
    let cid = c.id.as_str().to_owned();
    let items = blocking(move || rec.list(&cid)).await?;
    st.audit.record(AuditEntry::new(s.user.id.as_str(), "recording.list", jiff::Timestamp::now()).consultation(&c.id));
    // Named by URL, as the other nodes are (an id is new at every start of a process).
    let node = st.router.me().map(|n| n.url.clone());
    let mut items: Vec<Value> = items
        .into_iter()
        .map(|(meta, manifest)| {
            json!({
                "id": meta.id,
                "state": meta.state,
                "started_at": meta.started_at,
                "started_by": meta.started_by,
                "stopped_at": meta.stopped_at,
                "stopped_by": meta.stopped_by,
                "excluded": meta.excluded,
                "encrypted": meta.encrypted,
                "failure": meta.failure,
                "manifest": manifest,
                "node": node,
            })
        })
        .collect();
    // With several nodes, the recordings made on the others (a room moved after its node
    // died, say): asked of each as this caller; one that cannot be asked is named, not hidden.
    let mut unreachable = Vec::new();
    if let (Some(cluster), false) = (&st.cluster, q.only()) {
        let bearer = elsewhere::bearer(&headers)?;
        let path = format!("/v1/consultations/{}/recordings", c.id);
        let nodes = cluster.recording_nodes(c.id.as_str()).await.unwrap_or_else(|e| {
            tracing::warn!(consultation = %c.id, error = %e, "other nodes' recordings not listed: Redis unavailable");
            unreachable.push("*".to_owned());
            Vec::new()
        });
        let asks = nodes
            .iter()
            .map(|n| elsewhere::ask(n, reqwest::Method::GET, &path, bearer, Some(std::time::Duration::from_secs(5))));
        for (n, r) in nodes.iter().zip(futures_util::future::join_all(asks).await) {
            let got = match r {
                Ok(resp) if resp.status().is_success() => resp.json::<Value>().await.ok(),
                Ok(resp) => {
                    tracing::warn!(node = %n.id, status = %resp.status(), "another node refused its recordings list");
                    None
                }
                Err(e) => {
                    tracing::warn!(node = %n.id, error = %e, "another node's recordings not listed");
                    None
                }
            };
            match got.and_then(|v| v["items"].as_array().cloned()) {
                Some(more) => items.extend(more),
                None => unreachable.push(n.id.clone()),
            }
        }
        // In the order they were made, whichever node made them.
        // (By time, not by text: a timestamp's fraction has no trailing zeros.)
        let at = |v: &Value| v["started_at"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
        items.sort_by_key(at);
    }
    Ok(Json(json!({ "items": items, "unreachable": unreachable })))
}

/// The node that holds recording `rid` of `c` answers `method` on `path` for the caller: the
/// first of the other nodes noted for the consultation that does not say it has no such
/// recording. `None` when no node has it.
async fn from_holder(
    st: &AppState,
    headers: &HeaderMap,
    c: &Consultation,
    method: reqwest::Method,
    path: &str,
) -> Result<Option<reqwest::Response>, AppError> {
    let Some(cluster) = &st.cluster else { return Ok(None) };
    let bearer = elsewhere::bearer(headers)?;
    let nodes = cluster.recording_nodes(c.id.as_str()).await.map_err(|_| elsewhere::unreachable(&["*".to_owned()]))?;
    let mut unreachable = Vec::new();
    for n in &nodes {
        match elsewhere::ask(n, method.clone(), path, bearer, None).await {
            // The holder was asked for a consultation every node sees alike: a 404 is "not here".
            Ok(resp) if resp.status() == reqwest::StatusCode::NOT_FOUND => continue,
            Ok(resp) => return Ok(Some(resp)),
            Err(e) => {
                tracing::warn!(node = %n.id, error = %e, "a node that may hold the recording cannot be reached");
                unreachable.push(n.id.clone());
            }
        }
    }
    if unreachable.is_empty() { Ok(None) } else { Err(elsewhere::unreachable(&unreachable)) }
}

/// Whether a recorder error is "not on this node" (so another node may hold it).
fn not_found(e: &AppError) -> bool {
    e.code == "recording_not_found"
}

async fn download(
    State(st): State<AppState>,
    s: Session,
    headers: HeaderMap,
    Path((id, rid, name)): Path<(String, String, String)>,
    ApiQuery(q): ApiQuery<Here>,
) -> Result<Response, AppError> {
    let c = access(&st, &s.user, &id).await?;
    match send_file(&st, &s.user, &c, rid.clone(), name.clone()).await {
        Err(e) if not_found(&e) && !q.only() => {
            // Streamed through this node from the one that recorded it (which audits it).
            let path = format!("/v1/consultations/{}/recordings/{rid}/files/{name}", c.id);
            match from_holder(&st, &headers, &c, reqwest::Method::GET, &path).await? {
                Some(resp) => Ok(elsewhere::pass_on(resp)),
                None => Err(e),
            }
        }
        other => other,
    }
}

/// A link the browser can follow without a header (`<a download>`), so a file of gigabytes
/// streams to disk instead of being held in the page's memory first.
async fn link(
    State(st): State<AppState>,
    s: Session,
    headers: HeaderMap,
    Path((id, rid, name)): Path<(String, String, String)>,
    ApiQuery(q): ApiQuery<Here>,
) -> Result<Response, AppError> {
    let c = access(&st, &s.user, &id).await?;
    let rec = st.recorder.clone();
    let (cid, r, n) = (c.id.as_str().to_owned(), rid.clone(), name.clone());
    // The file must exist now: a link to nothing would only fail later, in the browser.
    match blocking(move || rec.open(&cid, &r, &n).map(|_| ())).await {
        Err(e) if not_found(&e) && !q.only() => {
            // The link is made by the node that holds the file, and points there.
            let path = format!("/v1/consultations/{}/recordings/{rid}/files/{name}/link", c.id);
            let Some(resp) = from_holder(&st, &headers, &c, reqwest::Method::POST, &path).await? else {
                return Err(e);
            };
            let origin = resp.url().origin().ascii_serialization();
            if !resp.status().is_success() {
                return Ok(elsewhere::pass_on(resp));
            }
            let mut v: Value = resp.json().await.map_err(|_| AppError::internal())?;
            if let Some(url) = v["url"].as_str() {
                v["url"] = json!(format!("{origin}{url}"));
            }
            return Ok(Json(v).into_response());
        }
        other => other?,
    }
    let now = jiff::Timestamp::now();
    let (token, expires_at) =
        st.keys.download(&s.user.id, s.user.token_generation, &c.id, &rid, &name, LINK_TTL_SECS, now)?;
    st.audit.record(
        AuditEntry::new(s.user.id.as_str(), "recording.link", now).consultation(&c.id).target(format!("{rid}/{name}")),
    );
    Ok(Json(json!({ "url": format!("/v1/recording-links/{token}"), "expires_at": expires_at })).into_response())
}

/// Follows a download link: the same checks as a download with a session (the user may still
/// see the consultation's recordings, and has not been signed out since), then the file.
async fn by_link(State(st): State<AppState>, Path(token): Path<String>) -> Result<Response, AppError> {
    let claims = st.keys.verify_download(&token).map_err(|e| match e {
        TokenError::Expired => {
            AppError::unauthorized("link_expired", "this download link has expired; ask for a new one")
        }
        _ => AppError::unauthorized("invalid_link", "this download link is not valid"),
    })?;
    let user = super::user_at_generation(&st, &claims.sub, claims.generation).await?;
    let c = access(&st, &user, claims.consultation.as_str()).await?;
    send_file(&st, &user, &c, claims.recording, claims.file).await
}

/// Streams one file of a recording (decrypted as it goes when stored encrypted), audited.
async fn send_file(
    st: &AppState,
    user: &User,
    c: &Consultation,
    rid: String,
    name: String,
) -> Result<Response, AppError> {
    let rec = st.recorder.clone();
    let (cid, r, n) = (c.id.as_str().to_owned(), rid.clone(), name.clone());
    let (reader, entry) = blocking(move || rec.open(&cid, &r, &n)).await?;
    st.audit.record(
        AuditEntry::new(user.id.as_str(), "recording.download", jiff::Timestamp::now())
            .consultation(&c.id)
            .target(format!("{rid}/{name}")),
    );
    let body = super::read_into_body(reader, "recording");
    Ok((
        [
            (header::CONTENT_TYPE, entry.content_type.clone()),
            (header::CONTENT_LENGTH, entry.bytes.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{rid}-{}\"", entry.name)),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

async fn remove(
    State(st): State<AppState>,
    s: Session,
    headers: HeaderMap,
    Path((id, rid)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<Here>,
) -> Result<Response, AppError> {
    let c = access(&st, &s.user, &id).await?;
    if s.user.role != Role::Admin {
        return Err(AppError::forbidden("forbidden_role", "only an admin may delete a recording"));
    }
    let rec = st.recorder.clone();
    let (cid, r) = (c.id.as_str().to_owned(), rid.clone());
    match blocking(move || rec.delete(&cid, &r)).await {
        Err(e) if not_found(&e) && !q.only() => {
            // Deleted (and audited) by the node that holds it.
            let path = format!("/v1/consultations/{}/recordings/{rid}", c.id);
            return match from_holder(&st, &headers, &c, reqwest::Method::DELETE, &path).await? {
                Some(resp) => Ok(elsewhere::pass_on(resp)),
                None => Err(e),
            };
        }
        other => other?,
    }
    st.audit.record(
        AuditEntry::new(s.user.id.as_str(), "recording.delete", jiff::Timestamp::now()).consultation(&c.id).target(rid),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deletes recordings older than the retention period; each deletion is audited.
pub async fn sweep_expired(st: &AppState) {
    let days = st.config.recording.retention_days;
    if days == 0 {
        return;
    }
    let cutoff = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days as i64);
    let rec = st.recorder.clone();
    let expired = tokio::task::spawn_blocking(move || rec.expired(cutoff)).await.unwrap_or_default();
    for meta in expired {
        let rec = st.recorder.clone();
        let (cid, rid) = (meta.consultation.clone(), meta.id.clone());
        match tokio::task::spawn_blocking(move || rec.delete(&cid, &rid)).await {
            Ok(Ok(())) => {
                let mut e =
                    AuditEntry::new("system", "recording.expire", jiff::Timestamp::now()).target(meta.id.clone());
                e.consultation = ConsultationId::parse(&meta.consultation);
                st.audit.record(e);
                tracing::info!(recording = %meta.id, "recording deleted at the end of its retention period");
            }
            other => {
                tracing::error!(recording = %meta.id, result = ?other.map(|r| r.map_err(|e| e.to_string())), "retention delete failed")
            }
        }
    }
}

/// Finalises recordings a crash left unfinished; each one is audited.
pub async fn recover(st: &AppState) {
    for (dir, r) in st.recorder.recover().await {
        match r {
            Ok(m) => {
                tracing::info!(recording = %m.recording, files = m.files.len(), "recording recovered after a restart");
                let mut e = AuditEntry::new("system", "recording.recovered", jiff::Timestamp::now())
                    .target(m.recording.clone());
                e.consultation = ConsultationId::parse(&m.consultation);
                st.audit.record(e);
            }
            Err(e) => tracing::error!(dir = %dir.display(), error = %e, "recording could not be recovered"),
        }
    }
}
