//! Attachments over HTTP (issue 15): upload streamed to disk and checked by content, download
//! streamed back; participants and admins only, every upload and download audited (ids only).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use super::consultations::parse_cid;
use super::{ApiQuery, Session};
use crate::attachments::{self, AttachError, Limits, Writer};
use crate::consult::lifecycle::{Action, may_attach};
use crate::consult::model::{Attachment, Consultation, Role};
use crate::error::AppError;
use crate::service::{self, not_found};
use crate::state::AppState;
use crate::store::AuditEntry;
use crate::text::{TextKind, forbidden_char};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/consultations/{id}/attachments", post(upload))
        .route("/consultations/{id}/attachments/{aid}", get(download))
}

const MAX_NAME_CHARS: usize = 200;

pub fn root(st: &AppState) -> std::path::PathBuf {
    let dir = &st.config.attachments.dir;
    if dir.as_os_str().is_empty() { st.config.data_dir.join("attachments") } else { dir.clone() }
}

fn key(st: &AppState) -> Option<huizhen_recorder::crypt::MasterKey> {
    huizhen_recorder::crypt::MasterKey::from_hex(&st.config.recording.encryption_key).ok()
}

fn refused(e: AttachError) -> AppError {
    let status = match e {
        AttachError::TypeRefused => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        AttachError::Io(_) | AttachError::Sealed => {
            tracing::error!(error = %e, "an attachment could not be stored");
            return AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", "the file could not be stored");
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let details = match &e {
        AttachError::ZipTooLarge { max } | AttachError::DicomTooLarge { max } => json!({ "max": max }),
        AttachError::ZipTooManyFiles { max } => json!({ "max": max }),
        _ => json!({}),
    };
    AppError::new(status, e.code(), e.to_string()).with_details(details)
}

/// Participants (and the consultation centre) read a consultation's files; admins too.
async fn readable(st: &AppState, s: &Session, id: &str) -> Result<Consultation, AppError> {
    let id = parse_cid(id)?;
    match st.store.get_consultation(&id).await? {
        Some(c) if c.visible_to(&s.user.id, s.user.role) || s.user.role == Role::Admin => Ok(c),
        _ => Err(not_found()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// The file's name, as the browser gives it.
    name: String,
}

enum Chunk {
    Data(axum::body::Bytes),
    Done,
}

/// `POST /v1/consultations/{id}/attachments?name=…`: the raw file as the body.
async fn upload(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Attachment>), AppError> {
    let c = readable(&st, &s, &id).await?;
    may_attach(&c, &s.actor())?;
    let name = q.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::field(
            "attachment_name_invalid",
            "name",
            json!({ "max": MAX_NAME_CHARS }),
            format!("the file name is 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if forbidden_char(&name, TextKind::Name).is_some() {
        return Err(AppError::invalid_characters("name", "the file name contains a control or invisible character"));
    }
    let max = st.config.attachments.max_bytes_per_consultation;
    let used: u64 = c.attachments.iter().map(|a| a.size).sum();
    let left = max.saturating_sub(used);
    let quota = || {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "attachment_quota_exceeded",
            format!("a consultation's attachments are limited to {max} bytes together"),
        )
        .with_details(json!({ "max": max, "used": used }))
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > left) {
        return Err(quota());
    }

    // The file goes to disk off the async threads as it arrives (sealed when there is a key).
    let aid = uuid::Uuid::now_v7().simple().to_string();
    let path = attachments::dir_of(&root(&st), c.id.as_str()).join(&aid);
    let master = key(&st);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(8);
    let (p, k) = (path.clone(), master.clone());
    let writer = tokio::task::spawn_blocking(move || -> Result<Option<(u64, String)>, std::io::Error> {
        let mut w = Writer::create(p, k.as_ref())?;
        while let Some(chunk) = rx.blocking_recv() {
            match chunk {
                Chunk::Data(b) => {
                    if let Err(e) = w.write(&b) {
                        w.abandon();
                        return Err(e);
                    }
                }
                Chunk::Done => return w.finish().map(Some),
            }
        }
        // The upload stopped (too large, the client went away): nothing is kept.
        w.abandon();
        Ok(None)
    });
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    let mut failure: Option<AppError> = None;
    while let Some(next) = stream.next().await {
        match next {
            Ok(bytes) => {
                received += bytes.len() as u64;
                if received > left {
                    failure = Some(quota());
                    break;
                }
                if tx.send(Chunk::Data(bytes)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(super::unreadable_body(&e, usize::MAX));
                break;
            }
        }
    }
    if failure.is_none() {
        let _ = tx.send(Chunk::Done).await;
    }
    drop(tx);
    let written = writer.await.map_err(|_| AppError::internal())?.map_err(|e| refused(e.into()))?;
    let (size, sha256) = match (failure, written) {
        (Some(e), _) => return Err(e),
        (None, Some(w)) => w,
        (None, None) => return Err(AppError::internal()),
    };
    if size == 0 {
        let _ = std::fs::remove_file(&path);
        return Err(AppError::field("attachment_empty", "file", json!({}), "the file is empty"));
    }

    // What it is, by its content; refused, it is removed.
    let (p, k) = (path.clone(), master);
    let a = &st.config.attachments;
    let limits = Limits {
        dicom_file_bytes: a.max_dicom_file_bytes,
        zip_unpacked_bytes: a.max_zip_unpacked_bytes,
        zip_files: a.max_zip_files,
    };
    let checked = tokio::task::spawn_blocking(move || attachments::check(&p, k.as_ref(), limits))
        .await
        .map_err(|_| AppError::internal())?;
    let (kind, dicom) = match checked {
        Ok(v) => v,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            tracing::info!(consultation = %c.id, code = e.code(), "an attachment was refused");
            return Err(refused(e));
        }
    };
    let attachment = Attachment {
        id: aid,
        name,
        kind,
        size,
        sha256,
        uploaded_by: s.user.id.clone(),
        uploaded_at: Timestamp::now(),
        dicom,
    };
    let action = Action::Attach { attachment: attachment.clone() };
    if let Err(e) = service::transition(&st.store, &st.rules, &st.metrics, &st.events, &c.id, &s.actor(), action).await
    {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(e);
    }
    Ok((StatusCode::CREATED, Json(attachment)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadQuery {
    /// Shown in the page (a PDF or an image) rather than saved.
    #[serde(default)]
    inline: bool,
}

/// `GET /v1/consultations/{id}/attachments/{aid}`: the file as uploaded, audited.
async fn download(
    State(st): State<AppState>,
    s: Session,
    Path((id, aid)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DownloadQuery>,
) -> Result<Response, AppError> {
    let c = readable(&st, &s, &id).await?;
    let a = c
        .attachments
        .iter()
        .find(|a| a.id == aid)
        .ok_or_else(|| AppError::not_found("attachment_not_found", "no such attachment"))?;
    let path = attachments::dir_of(&root(&st), c.id.as_str()).join(&a.id);
    let master = key(&st);
    let reader = tokio::task::spawn_blocking(move || attachments::open(&path, master.as_ref()))
        .await
        .map_err(|_| AppError::internal())?
        .map_err(refused)?;
    st.audit.record(
        AuditEntry::new(s.user.id.as_str(), "attachment.download", Timestamp::now()).consultation(&c.id).target(&a.id),
    );
    let disposition = if q.inline { "inline" } else { "attachment" };
    Ok((
        [
            (header::CONTENT_TYPE, a.kind.content_type().to_owned()),
            (header::CONTENT_LENGTH, a.size.to_string()),
            (header::CONTENT_DISPOSITION, format!("{disposition}; filename*=UTF-8''{}", percent(&a.name))),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            // A PDF shown inline runs no script of ours and reaches nothing.
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'".to_owned(),
            ),
        ],
        super::read_into_body(reader, "attachment"),
    )
        .into_response())
}

/// RFC 5987 percent-encoding of a file name for `filename*`.
fn percent(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
