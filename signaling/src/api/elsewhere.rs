//! Asking another node for what it holds, on the caller's behalf (issue 16): a recording's
//! files stay on the disk of the node that recorded it, and any node must list and serve
//! them. The request goes to the holder's public URL with the same path, the caller's own
//! bearer token (every node checks it alike: same keys, same store, so the holder applies the
//! same rights and writes the same audit entry) and `here=1`, so the holder answers from what
//! it has and asks nobody further.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::AppError;
use crate::rtc::router::Node;

/// `?here=1`: answer from this node alone (a request another node made for its caller).
#[derive(Debug, Default, Deserialize)]
pub struct Here {
    #[serde(default)]
    pub here: Option<u8>,
}

impl Here {
    pub fn only(&self) -> bool {
        self.here == Some(1)
    }
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            // A node that is down must not hold up the list for long.
            .connect_timeout(Duration::from_secs(2))
            // Downloads are large: no overall limit, but a stalled one ends.
            .read_timeout(Duration::from_secs(30))
            // The holder answers itself; a redirect would be a misconfigured public URL.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// `method` on `path` (from `/v1/…`, without a query) at `node`, as the caller.
pub async fn ask(
    node: &Node,
    method: reqwest::Method,
    path: &str,
    bearer: &str,
    timeout: Option<Duration>,
) -> Result<reqwest::Response, reqwest::Error> {
    let url = format!("{}{path}?here=1", node.url.trim_end_matches('/'));
    let mut req = client().request(method, url).bearer_auth(bearer);
    if let Some(t) = timeout {
        req = req.timeout(t);
    }
    req.send().await
}

/// The caller's bearer token, to ask another node as them.
pub fn bearer(headers: &HeaderMap) -> Result<&str, AppError> {
    super::bearer(headers)
        .ok_or_else(|| AppError::unauthorized("token_missing", "sign in first (Authorization: Bearer)"))
}

/// The holder's answer, passed on: status, the headers a download needs, the body streamed.
pub fn pass_on(resp: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = Response::builder().status(status);
    for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::CONTENT_DISPOSITION, header::CACHE_CONTROL] {
        if let Some(v) =
            resp.headers().get(name.as_str()).and_then(|v| header::HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            out = out.header(name, v);
        }
    }
    out.body(Body::from_stream(resp.bytes_stream())).unwrap_or_else(|_| AppError::internal().into_response())
}

/// None of the nodes that answered has it, and some could not be asked.
pub fn unreachable(nodes: &[String]) -> AppError {
    AppError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "recording_node_unreachable",
        "the node that may hold this recording cannot be reached now; try again later",
    )
    .with_details(serde_json::json!({ "nodes": nodes }))
}
