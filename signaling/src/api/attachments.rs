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
        .route("/consultations/{id}/attachments/{aid}/images", get(images))
        .route("/consultations/{id}/attachments/{aid}/images/{n}", get(image))
        .route("/consultations/{id}/attachments/{aid}/images/{n}/tags", get(tags))
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
    let (kind, dicom, images) = match checked {
        Ok(v) => v,
        Err(e) => {
            let p = path.clone();
            let _ = tokio::task::spawn_blocking(move || attachments::remove(&p)).await;
            tracing::info!(consultation = %c.id, code = e.code(), "an attachment was refused");
            return Err(refused(e));
        }
    };
    if !images.is_empty() {
        // No patient data in it (dicom_view::Image): kept in the clear.
        let index = serde_json::to_vec(&images).unwrap_or_default();
        if let Err(e) = tokio::fs::write(attachments::index_path(&path), index).await {
            let p = path.clone();
            let _ = tokio::task::spawn_blocking(move || attachments::remove(&p)).await;
            return Err(refused(e.into()));
        }
    }
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
        let _ = tokio::task::spawn_blocking(move || attachments::remove(&path)).await;
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

/// The attachment `aid` of a consultation the caller may read, and where its file is.
async fn find(
    st: &AppState,
    s: &Session,
    id: &str,
    aid: &str,
) -> Result<(Consultation, Attachment, std::path::PathBuf), AppError> {
    let c = readable(st, s, id).await?;
    let a = c
        .attachments
        .iter()
        .find(|a| a.id == aid)
        .cloned()
        .ok_or_else(|| AppError::not_found("attachment_not_found", "no such attachment"))?;
    let path = attachments::dir_of(&root(st), c.id.as_str()).join(&a.id);
    Ok((c, a, path))
}

async fn index_of(path: &std::path::Path) -> Result<Vec<crate::dicom_view::Image>, AppError> {
    let raw = tokio::fs::read(attachments::index_path(path))
        .await
        .map_err(|_| AppError::not_found("attachment_not_dicom", "this attachment has no images to show"))?;
    serde_json::from_slice(&raw).map_err(|_| AppError::internal())
}

/// `GET …/attachments/{aid}/images`: the images of a DICOM attachment in viewing order, and
/// the window presets. Opening it is audited (not each slice after).
async fn images(
    State(st): State<AppState>,
    s: Session,
    Path((id, aid)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, AppError> {
    let (c, a, path) = find(&st, &s, &id, &aid).await?;
    let images = index_of(&path).await?;
    st.audit.record(
        AuditEntry::new(s.user.id.as_str(), "attachment.view", Timestamp::now()).consultation(&c.id).target(&a.id),
    );
    let presets: Vec<_> = ["lung", "soft_tissue", "bone", "brain"]
        .iter()
        .filter_map(|n| {
            crate::dicom_view::preset(n).map(|w| json!({ "name": n, "center": w.center, "width": w.width }))
        })
        .collect();
    Ok(Json(json!({ "images": images, "presets": presets })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageQuery {
    #[serde(default)]
    frame: u32,
    /// `lung`, `soft_tissue`, `bone`, `brain`, `custom` (with `center` and `width`); absent:
    /// the file's own window.
    window: Option<String>,
    center: Option<f64>,
    width: Option<f64>,
    /// A thumbnail, at most 128 pixels on its longer side.
    #[serde(default)]
    thumb: bool,
}

/// The DICOM bytes of image `n` (in viewing order) of an attachment, and that image's entry.
async fn image_bytes(
    st: &AppState,
    a: &Attachment,
    path: std::path::PathBuf,
    n: String,
) -> Result<(crate::dicom_view::Image, Vec<u8>), AppError> {
    let images = index_of(&path).await?;
    let n: usize = n.parse().map_err(|_| AppError::not_found("image_not_found", "no such image"))?;
    let img = images.get(n).cloned().ok_or_else(|| AppError::not_found("image_not_found", "no such image"))?;
    let (kind, file, master, max) = (a.kind, img.file, key(st), st.config.attachments.max_dicom_file_bytes);
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, AttachError> {
        match kind {
            // A series' files were kept one by one at upload.
            attachments::Kind::DicomZip => crate::dicom_view::file_bytes(
                &attachments::files_dir(&path).join(file.to_string()),
                master.as_ref(),
                attachments::Kind::Dicom,
                0,
                max,
            ),
            k => crate::dicom_view::file_bytes(&path, master.as_ref(), k, file, max),
        }
    })
    .await
    .map_err(|_| AppError::internal())?
    .map_err(refused)?;
    Ok((img, bytes))
}

/// `GET …/attachments/{aid}/images/{n}?frame=&window=&center=&width=&thumb=`: one frame as a
/// PNG at the window asked for.
async fn image(
    State(st): State<AppState>,
    s: Session,
    Path((id, aid, n)): Path<(String, String, String)>,
    ApiQuery(q): ApiQuery<ImageQuery>,
) -> Result<Response, AppError> {
    let window = match q.window.as_deref() {
        None => None,
        Some("custom") => match (q.center, q.width) {
            (Some(center), Some(width)) if width > 0.0 && center.is_finite() && width.is_finite() => {
                Some(crate::dicom_view::Window { center, width })
            }
            _ => {
                return Err(AppError::field(
                    "window_invalid",
                    "width",
                    json!({}),
                    "a custom window needs a center and a positive width",
                ));
            }
        },
        Some(name) => Some(crate::dicom_view::preset(name).ok_or_else(|| {
            AppError::field(
                "window_invalid",
                "window",
                json!({}),
                "the window is lung, soft_tissue, bone, brain or custom",
            )
        })?),
    };
    let (_, a, path) = find(&st, &s, &id, &aid).await?;
    let (img, bytes) = image_bytes(&st, &a, path, n).await?;
    if q.frame >= img.frames {
        return Err(AppError::not_found("image_not_found", "no such frame"));
    }
    let side = q.thumb.then_some(128);
    let png = tokio::task::spawn_blocking(move || {
        let obj = crate::dicom_view::parse(&bytes)?;
        crate::dicom_view::render(&obj, q.frame, window, side)
    })
    .await
    .map_err(|_| AppError::internal())?
    .map_err(refused)?;
    // Patient images: `no-store` (set for every API answer) keeps them off a ward PC's disk.
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

/// `GET …/attachments/{aid}/images/{n}/tags`: the file's patient and study tags, for those
/// who may read the record (everyone who may read its attachments).
async fn tags(
    State(st): State<AppState>,
    s: Session,
    Path((id, aid, n)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, AppError> {
    let (_, a, path) = find(&st, &s, &id, &aid).await?;
    let (_, bytes) = image_bytes(&st, &a, path, n).await?;
    let tags = tokio::task::spawn_blocking(move || {
        crate::dicom_view::parse(&bytes).map(|o| crate::dicom_view::patient_tags(&o))
    })
    .await
    .map_err(|_| AppError::internal())?
    .map_err(refused)?;
    Ok(Json(tags))
}
