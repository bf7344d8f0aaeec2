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
    /// 422 `invalid_field`: a body or query of the wrong shape (a wrong type, a missing or
    /// unknown field). A rule a well-formed value breaks has its own code: [`Self::field`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
    }
    /// 422 for a field rule: its own `code`, the `field` and the rule's numbers (`min`, `max`)
    /// in `details`, so that a client can say it in its user's language.
    pub fn field(code: &'static str, field: &'static str, numbers: Value, message: impl Into<String>) -> Self {
        let mut details = json!({ "field": field });
        if let (Some(d), Value::Object(n)) = (details.as_object_mut(), numbers) {
            d.extend(n);
        }
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).with_details(details)
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

impl From<crate::rtc::router::RouterError> for AppError {
    fn from(e: crate::rtc::router::RouterError) -> Self {
        use crate::rtc::router::RouterError;
        tracing::warn!(error = %e, "room not placed");
        match e {
            RouterError::NoNode => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_node_available",
                "no server node can take the consultation's room now; try again shortly",
            ),
            RouterError::Unavailable(_) => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "placement_unavailable",
                "the server nodes cannot agree where the room is (their shared store is away); try again shortly",
            ),
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Constructors whose first string literal of the form `[a-z_]+` is the error's code.
    const MAKERS: &[&str] = &[
        "AppError::new(",
        "AppError::field(",
        "AppError::bad_request(",
        "AppError::unauthorized(",
        "AppError::forbidden(",
        "AppError::not_found(",
        "AppError::conflict(",
        // lifecycle.rs: its field rules (a bare `invalid(`), made into `AppError::field` by
        // service.rs.
        "invalid(",
        // lifecycle.rs: a guest link that does not open (service.rs gives it its status).
        "LifecycleError::GuestLink {",
        "LifecycleError::NotFound {",
    ];

    /// The text of a call's arguments: from after `(` to its matching `)` (strings skipped).
    fn call_args(s: &str) -> &str {
        let (mut depth, mut in_str, mut escaped) = (1usize, false, false);
        for (i, c) in s.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_str => escaped = true,
                '"' => in_str = !in_str,
                '(' if !in_str => depth += 1,
                ')' if !in_str => {
                    depth -= 1;
                    if depth == 0 {
                        return &s[..i];
                    }
                }
                _ => {}
            }
        }
        s
    }

    fn sources(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(std::fs::read_to_string(&p).unwrap());
            }
        }
    }

    /// Every code the HTTP API can answer with, found in the source: a code added without
    /// its text in both languages fails here, not in front of a county doctor.
    fn api_codes() -> BTreeSet<String> {
        let mut texts = Vec::new();
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut texts);
        let mut codes: BTreeSet<String> =
            ["invalid_field", "invalid_characters", "internal"].into_iter().map(String::from).collect();
        // The recorder's codes reach the recordings API through `Error::code()`.
        codes.extend(
            [
                "disk_full",
                "storage_error",
                "recording_not_found",
                "recording_busy",
                "media_unavailable",
                "recording_error",
                // Attachments' checks reach the API through `AttachError::code()`.
                "attachment_type_refused",
                "attachment_dicom_invalid",
                "attachment_zip_invalid",
                "attachment_zip_not_dicom",
                "attachment_zip_too_large",
                "attachment_zip_too_many_files",
                "attachment_dicom_too_large",
                // lifecycle.rs's link limits (`LinkKind`), made into `AppError::field`.
                "too_many_guest_links",
                "guest_link_validity",
                "too_many_encoder_links",
                "encoder_validity",
            ]
            .map(String::from),
        );
        for text in &texts {
            for maker in MAKERS {
                for (at, _) in text.match_indices(maker) {
                    let before = text[..at].chars().next_back().unwrap_or(' ');
                    if *maker == "invalid(" && (before == ':' || before.is_alphanumeric() || before == '_') {
                        continue;
                    }
                    let args = call_args(&text[at + maker.len()..]);
                    let literal = args.split('"').skip(1).step_by(2).next();
                    if let Some(code) =
                        literal.filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                    {
                        codes.insert(code.to_owned());
                    }
                }
            }
        }
        codes
    }

    #[test]
    fn every_api_error_code_has_text_in_both_languages() {
        let codes = api_codes();
        assert!(codes.len() > 40, "the scan found the codes: {codes:?}");
        for lang in ["zh-CN", "en"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../web-client/i18n/{lang}.json"));
            let cat: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let missing: Vec<&String> = codes.iter().filter(|c| cat.get(format!("error.{c}")).is_none()).collect();
            assert!(missing.is_empty(), "{lang}: no text for {missing:?}");
        }
    }
}
