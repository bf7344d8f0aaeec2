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

/// Same-origin resources only; the call's socket may also go to the other nodes of a cluster
/// (`node.cluster_origins`, and this node's public URL if it differs from the page's).
pub fn security_policy(st: &AppState) -> String {
    policy_for(&st.config)
}

fn policy_for(config: &crate::config::Config) -> String {
    let mut connect = String::from("'self'");
    let node = &config.node;
    for origin in std::iter::once(&node.public_url).chain(&node.cluster_origins).filter(|o| !o.is_empty()) {
        // Chromium lets an http(s) source cover only http(s): the socket's ws(s) form is named too.
        let socket = origin.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        connect.push_str(&format!(" {origin} {socket}"));
    }
    format!(
        "default-src 'self'; connect-src {connect}; img-src 'self' data: blob:; frame-src 'self' blob:; frame-ancestors 'none'"
    )
}

async fn serve(axum::extract::State(st): axum::extract::State<AppState>, uri: Uri) -> Response {
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
                    (header::CONTENT_SECURITY_POLICY, security_policy(&st)),
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
    fn pages_may_open_their_call_socket_on_the_other_nodes() {
        let mut config = crate::config::Config::default();
        config.node.public_url = "https://hz1.hospital.cn".into();
        config.node.cluster_origins = vec!["https://*.hospital.cn".into()];
        let csp = policy_for(&config);
        assert!(
            csp.contains("connect-src 'self' https://hz1.hospital.cn wss://hz1.hospital.cn https://*.hospital.cn wss://*.hospital.cn;"),
            "{csp}"
        );
        assert!(policy_for(&crate::config::Config::default()).contains("connect-src 'self';"));
    }

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
