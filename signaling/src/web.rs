//! The browser client, embedded in the binary at build time: no separate web server.

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

use crate::state::AppState;

#[derive(Embed)]
#[folder = "../web-client/"]
#[exclude = "node_modules/*"]
#[exclude = "*.d.ts"]
#[exclude = "tsconfig*.json"]
#[exclude = "test/*"]
struct Assets;

pub fn routes() -> Router<AppState> {
    Router::new().fallback(serve)
}

async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    match Assets::get(path) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_owned();
            // Revalidate everything: after an upgrade no browser keeps running old scripts.
            let etag = format!(
                "\"{}\"",
                file.metadata.sha256_hash().iter().take(12).map(|b| format!("{b:02x}")).collect::<String>()
            );
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, "no-cache".to_owned()),
                    (header::ETAG, etag),
                    (
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'self'; img-src 'self' data: blob:; frame-src 'self' blob:; frame-ancestors 'none'".to_owned(),
                    ),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                ],
                file.data,
            )
                .into_response()
        }
        None => crate::error::AppError::new(StatusCode::NOT_FOUND, "not_found", "no such page").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_is_served_and_its_development_files_are_not() {
        for served in ["index.html", "js/app.js", "js/call/state.js"] {
            assert!(Assets::get(served).is_some(), "{served}");
        }
        for left_out in ["tsconfig.json", "tsconfig.strict.json", "test/state.test.mjs"] {
            assert!(Assets::get(left_out).is_none(), "{left_out}");
        }
        // pdf.js (vendored): its modules must go out as JavaScript, or the browser refuses to
        // run them; its CMaps for the Chinese fonts PDFs name without embedding.
        for module in ["vendor/pdfjs/pdf.mjs", "vendor/pdfjs/pdf.worker.mjs"] {
            let file = Assets::get(module).unwrap_or_else(|| panic!("{module} is served"));
            assert!(file.metadata.mimetype().contains("javascript"), "{module}: {}", file.metadata.mimetype());
        }
        assert!(Assets::get("vendor/pdfjs/cmaps/UniGB-UCS2-H.bcmap").is_some());
    }
}
