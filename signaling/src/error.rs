//! One error type for the HTTP API: every failure becomes a status and a JSON body
//! `{"code": "...", "message": "..."}` whose `code` is stable and documented in `docs/api.md`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Machine-readable extras (e.g. when a join window opens); never patient data.
    pub details: Option<Value>,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None }
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// 422 `invalid_characters`: `field` holds a character `crate::text` refuses.
    pub fn invalid_characters(field: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_characters", message)
            .with_details(json!({ "field": field }))
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error")
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for AppError {}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let Some(d) = self.details {
            body["details"] = d;
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("2"));
        }
        resp
    }
}

impl From<crate::auth::password::HashError> for AppError {
    fn from(e: crate::auth::password::HashError) -> Self {
        match e {
            crate::auth::password::HashError::Busy => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is checking too many passwords at once; try again shortly",
            ),
            crate::auth::password::HashError::Failed(reason) => {
                tracing::error!(%reason, "password hashing failed");
                AppError::internal()
            }
        }
    }
}

impl From<crate::auth::SignError> for AppError {
    fn from(e: crate::auth::SignError) -> Self {
        tracing::error!(error = %e, "token not issued");
        AppError::internal()
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "store unavailable");
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the data store is not reachable; try again shortly",
                )
            }
            StoreError::VersionConflict => {
                AppError::conflict("version_conflict", "the record was changed by someone else; reload and retry")
            }
            StoreError::SpecialistBusy { specialist, .. } => AppError::conflict(
                "specialist_busy",
                "the specialist already has a consultation that overlaps this time slot",
            )
            .with_details(json!({ "specialist": specialist })),
            StoreError::Duplicate(what) => AppError::conflict("already_exists", format!("{what} already exists")),
            StoreError::NotFound => AppError::not_found("not_found", "not found"),
            StoreError::Corrupt(reason) => {
                tracing::error!(%reason, "store holds a record that cannot be read");
                AppError::internal()
            }
        }
    }
}
