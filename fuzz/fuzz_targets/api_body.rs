//! An HTTP API request as anyone on the network can send it: the first byte picks an endpoint,
//! the second who sends it (an administrator, a coordinator, a county doctor, a specialist or
//! nobody), the rest is the body (or, for a GET, the query string). It goes through the whole
//! router (guard, body limit, JSON extractor, validation, the handler, the embedded store) of
//! one server with the demo accounts and one consultation in it.
//!
//! A panic, a 500, or an error status without a JSON body carrying a `code` is a crash.
//! Sign-in is left out: a valid guess costs an argon2 hash (~50 ms) and would slow the fuzzer
//! to a crawl; its body is read by the same extractor as every endpoint here.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use huizhen::Server;
use huizhen::auth::TokenType;
use huizhen::config::Config;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct World {
    rt: tokio::runtime::Runtime,
    app: Router,
    /// Bearer tokens: admin, coordinator, doctor-east, cardiologist.
    tokens: Vec<String>,
    consultation: String,
    _dir: tempfile::TempDir,
}

/// (method, path; `{c}` is the consultation's id)
const ENDPOINTS: &[(Method, &str)] = [
    (Method::POST, "/v1/auth/refresh"),
    (Method::POST, "/v1/auth/logout"),
    (Method::POST, "/v1/me/password"),
    (Method::GET, "/v1/sites"),
    (Method::POST, "/v1/sites"),
    (Method::GET, "/v1/users"),
    (Method::POST, "/v1/users"),
    (Method::GET, "/v1/audit"),
    (Method::POST, "/v1/consultations"),
    (Method::GET, "/v1/consultations"),
    (Method::GET, "/v1/consultations/{c}"),
    (Method::POST, "/v1/consultations/{c}/join"),
    (Method::POST, "/v1/consultations/{c}/accept"),
    (Method::POST, "/v1/consultations/{c}/reject"),
    (Method::POST, "/v1/consultations/{c}/reschedule"),
    (Method::POST, "/v1/consultations/{c}/assign"),
    (Method::POST, "/v1/consultations/{c}/invite"),
    (Method::POST, "/v1/consultations/{c}/start"),
    (Method::POST, "/v1/consultations/{c}/end"),
    (Method::POST, "/v1/consultations/{c}/opinion"),
    (Method::POST, "/v1/consultations/{c}/plan"),
    (Method::POST, "/v1/consultations/{c}/no_show"),
    (Method::GET, "/v1/consultations/{c}/recordings"),
]
.as_slice();

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::default();
        config.data_dir = dir.path().to_owned();
        config.limits.http_requests_per_second = 1_000_000_000;
        config.limits.http_burst = 1_000_000_000;
        config.media.udp_port = 0;
        let (app, tokens, consultation) = rt.block_on(async {
            let server = Server::open(config).await.expect("server");
            let st = server.state.clone();
            huizhen::bootstrap::ensure_admin(&st).await.expect("admin");
            huizhen::bootstrap::seed_demo(&st).await.expect("demo");
            let now = jiff::Timestamp::now();
            let mut tokens = Vec::new();
            for name in ["admin", "coordinator", "doctor-east", "cardiologist"] {
                let u = st.store.get_user_by_name(name).await.expect("store").expect("demo user");
                let (t, _) =
                    st.keys.session(&u.id, u.role, u.token_generation, TokenType::Session, 3600, now).expect("token");
                tokens.push(t);
            }
            let app = server.router();
            let req = Request::post("/v1/consultations")
                .header(header::AUTHORIZATION, format!("Bearer {}", tokens[2]))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"kind":"consultation","specialty":"cardiology","urgency":"routine","summary":"fuzz"}"#))
                .expect("request");
            let res = app.clone().oneshot(with_peer(req)).await.expect("response");
            let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body");
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let id = v["id"].as_str().expect("consultation id").to_owned();
            (app, tokens, id)
        });
        World { rt, app, tokens, consultation, _dir: dir }
    })
}

fn with_peer(mut req: Request<Body>) -> Request<Body> {
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    req
}

fuzz_target!(|data: &[u8]| {
    let [ep, who, rest @ ..] = data else { return };
    let w = world();
    let (method, path) = &ENDPOINTS[usize::from(*ep) % ENDPOINTS.len()];
    let path = path.replace("{c}", &w.consultation);
    let mut uri = path;
    let mut body = Vec::new();
    if *method == Method::GET {
        // Only what is a valid URI reaches a server at all.
        let Ok(q) = std::str::from_utf8(rest) else { return };
        uri = format!("{uri}?{q}");
    } else {
        body = rest.to_vec();
    }
    let mut req = Request::builder().method(method.clone()).uri(&uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = w.tokens.get(usize::from(*who) % (w.tokens.len() + 1)) {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let Ok(req) = req.body(Body::from(body)) else { return };
    w.rt.block_on(async {
        let res = w.app.clone().oneshot(with_peer(req)).await.expect("infallible");
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 16 << 20).await.expect("body");
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{method} {uri}: {}", String::from_utf8_lossy(&bytes));
        if status.is_client_error() || status.is_server_error() {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{method} {uri} {status}: not JSON ({e}): {bytes:?}"));
            assert!(v["code"].is_string(), "{method} {uri} {status}: no code: {v}");
        }
    });
});
