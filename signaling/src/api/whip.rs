//! Encoders publish by WHIP (RFC 9725, issue 18): an operating room's laparoscopy tower or
//! ceiling camera through a hardware encoder, or OBS beside the table.
//!
//! A host makes a credential for one consultation (`/encoders`: a label, a validity); the
//! encoder's operator enters the WHIP URL and the bearer token once. `POST …/whip` with an SDP
//! offer answers `201` with the SDP answer and the session's `Location`; `PATCH` there trickles
//! candidates, `DELETE` ends it. The encoder is a member of the room named by its label, and
//! publishes only. Withdrawing the credential puts it out of the room at once.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use super::consultations::{load_visible, parse_cid};
use super::{ApiJson, Session, bearer};
use crate::auth::{GuestClaims, TokenError, TokenType};
use crate::consult::lifecycle::{Action, MAX_ENCODER_HOURS, may_host};
use crate::consult::model::{Consultation, EncoderLink, Status, encoder_identity};
use crate::error::AppError;
use crate::ids::ConsultationId;
use crate::rtc::whip::{Device, Role, WhipError};
use crate::service;
use crate::state::AppState;
use crate::store::AuditEntry;

/// A new credential's validity unless the host says otherwise: a day of surgery.
const DEFAULT_VALID_HOURS: i64 = 24;
/// An encoder's offer is a few kilobytes; anything far larger is not one.
const MAX_SDP: usize = 64 * 1024;
const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

pub fn routes(st: &AppState) -> Router<AppState> {
    let encoders = Router::new()
        .route("/consultations/{id}/encoders", post(create))
        .route("/consultations/{id}/encoders/{encoder}", get(again))
        .route("/consultations/{id}/encoders/{encoder}/revoke", post(revoke));
    let whip = Router::new()
        // OPTIONS (RFC 9725 §4.2; a browser's CORS preflight is answered by the layer first).
        .route("/consultations/{id}/whip", post(publish).options(options))
        .route("/whip/{session}", patch(trickle).delete(stop).options(options))
        .route("/consultations/{id}/whep", post(watch).options(options))
        .route("/whep/{session}", patch(trickle_whep).delete(stop_whep).options(options))
        .layer(cors(&st.config.whip.allowed_origins));
    encoders.merge(whip)
}

async fn options() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Browser-based WHIP clients on the configured origins may call the endpoints; every other
/// page's call is refused by the browser (no `Access-Control-Allow-Origin` for it).
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH])
        .expose_headers([header::LOCATION, header::LINK, header::ETAG])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    label: String,
    #[serde(default)]
    valid_hours: Option<i64>,
}

/// The credential as the host hands it to the encoder's operator.
fn handed_out(st: &AppState, c: &ConsultationId, e: &EncoderLink, now: Timestamp) -> Result<Value, AppError> {
    let token = st.keys.guest(&e.id, c, TokenType::Encoder, e.expires_at, now)?;
    Ok(json!({ "encoder": e, "token": token, "path": format!("/v1/consultations/{c}/whip") }))
}

/// `POST /v1/consultations/{id}/encoders`: a credential for an encoder to publish by WHIP.
async fn create(
    State(st): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let id = parse_cid(&id)?;
    let now = Timestamp::now();
    let hours = b.valid_hours.unwrap_or(DEFAULT_VALID_HOURS);
    let expires_at = now + SignedDuration::from_hours(hours.clamp(-1, MAX_ENCODER_HOURS + 1));
    let encoder = uuid::Uuid::new_v4().simple().to_string();
    let action = Action::CreateEncoder { id: encoder.clone(), label: b.label, expires_at };
    let c = service::transition(&st.store, &st.rules, &st.metrics, &st.events, &id, &s.actor(), action).await?;
    let e = c.encoders.iter().find(|e| e.id == encoder).ok_or_else(AppError::internal)?;
    Ok((StatusCode::CREATED, Json(handed_out(&st, &c.id, e, now)?)))
}

/// `GET /v1/consultations/{id}/encoders/{encoder}`: the same credential again (to copy it).
async fn again(
    State(st): State<AppState>,
    s: Session,
    Path((id, encoder)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let c = load_visible(&st, &s, &id).await?;
    may_host(&c, &s.actor(), "encoder_create")?;
    let e = c.encoders.iter().find(|e| e.id == encoder).ok_or_else(no_such_encoder)?;
    Ok(Json(handed_out(&st, &c.id, e, Timestamp::now())?))
}

/// `POST /v1/consultations/{id}/encoders/{encoder}/revoke`: the token opens nothing any more
/// and an encoder publishing with it leaves the room at once.
async fn revoke(
    State(st): State<AppState>,
    s: Session,
    Path((id, encoder)): Path<(String, String)>,
) -> Result<Json<Consultation>, AppError> {
    let id = parse_cid(&id)?;
    let action = Action::RevokeEncoder { id: encoder.clone() };
    let c = service::transition(&st.store, &st.rules, &st.metrics, &st.events, &id, &s.actor(), action).await?;
    st.hub.revise(&c.id, &encoder_identity(&encoder), None).await;
    Ok(Json(c))
}

fn no_such_encoder() -> AppError {
    AppError::not_found("encoder_not_found", "no such encoder credential")
}

fn invalid_token() -> AppError {
    AppError::unauthorized("invalid_token", "the encoder token is not valid")
}

/// The bearer token of an encoder, checked against the record: the credential it names, if
/// it still opens `consultation` (any, when `None`).
async fn credential(
    st: &AppState,
    headers: &HeaderMap,
    consultation: Option<&ConsultationId>,
) -> Result<(GuestClaims, Consultation, EncoderLink), AppError> {
    let token = bearer(headers)
        .ok_or_else(|| AppError::unauthorized("token_missing", "send the encoder token as Authorization: Bearer"))?;
    let claims = st.keys.verify_guest(token, TokenType::Encoder).map_err(|e| match e {
        TokenError::Expired => {
            AppError::unauthorized("token_expired", "the encoder token has expired; ask a host for a new one")
        }
        _ => invalid_token(),
    })?;
    if consultation.is_some_and(|c| *c != claims.room) {
        return Err(invalid_token());
    }
    let c = st.store.get_consultation(&claims.room).await?.ok_or_else(invalid_token)?;
    let e = c.encoders.iter().find(|e| e.id == claims.sub).cloned().ok_or_else(invalid_token)?;
    if e.revoked_at.is_some() {
        return Err(AppError::forbidden("encoder_revoked", "a host has withdrawn this encoder token"));
    }
    if Timestamp::now() >= e.expires_at {
        return Err(AppError::unauthorized("token_expired", "the encoder token has expired; ask a host for a new one"));
    }
    Ok((claims, c, e))
}

/// The request's content type without parameters, lower-cased.
fn content_type(headers: &HeaderMap) -> String {
    let raw = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn want_type(headers: &HeaderMap, want: &str) -> Result<(), AppError> {
    if content_type(headers) != want {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send the body as {want}"),
        ));
    }
    Ok(())
}

/// `POST /v1/consultations/{id}/whip`: an encoder's SDP offer; `201` with the answer.
async fn publish(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let id = parse_cid(&id).map_err(|_| invalid_token())?;
    let (_, c, e) = credential(&st, &headers, Some(&id)).await?;
    want_type(&headers, SDP)?;
    let offer = sdp_text(&body)?;
    if c.status != Status::Live {
        return Err(AppError::conflict(
            "consultation_not_live",
            "the consultation is not under way: a host starts it by joining, then the encoder can publish",
        )
        .with_details(json!({ "status": c.status })));
    }
    let grants = crate::consult::rights::encoder_grants(&c, &e.id, Timestamp::now()).ok_or_else(invalid_token)?;
    let who = Device {
        consultation: c.id.clone(),
        id: e.id.clone(),
        identity: e.identity(),
        label: e.label.clone(),
        grants,
        role: Role::Publish,
    };
    if let Some(there) = redirect_home(&st, &c.id, "whip").await? {
        return Ok(there);
    }
    let (session, answer) = crate::rtc::whip::start(&st, who, offer).await.map_err(|err| refused(err, &c.id))?;
    st.audit.record(
        AuditEntry::new(e.identity().as_str(), "consultation.encoder_publish", Timestamp::now())
            .consultation(&c.id)
            .target(&e.id),
    );
    Ok(created(answer, format!("/v1/whip/{session}"), ice_links(&st, &e.identity())))
}

/// With several nodes an encoder or a player goes to the room's home: 307 to the same endpoint
/// there (RFC 9725 §4.5), where it sends its offer again; its session lives on that node.
async fn redirect_home(st: &AppState, c: &ConsultationId, endpoint: &str) -> Result<Option<Response>, AppError> {
    match st.router.claim(c, st.hub.holds(c.as_str())).await? {
        crate::rtc::router::Home::Here(_) => Ok(None),
        crate::rtc::router::Home::Elsewhere(node) => {
            let to = format!("{}/v1/consultations/{c}/{endpoint}", node.url);
            Ok(Some((StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, to)]).into_response()))
        }
    }
}

/// Why a device's offer was not taken, as the RFC's status with our code.
fn refused(err: WhipError, consultation: &ConsultationId) -> AppError {
    match err {
        WhipError::TooMany(max) => {
            AppError::conflict("too_many_encoders", err.to_string()).with_details(json!({ "max": max }))
        }
        WhipError::NothingToWatch => AppError::conflict("nothing_to_watch", err.to_string()),
        WhipError::Refused("removed") => AppError::forbidden("removed", "a host put this device out of the room"),
        WhipError::Refused("room_full") => {
            AppError::conflict("room_full", "the room has reached its participant limit")
        }
        WhipError::Refused(_) => {
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, "try_again", "the room was busy; try again")
        }
        WhipError::Media(m) => match m.code() {
            "invalid_sdp" | "too_many_tracks" => AppError::bad_request(m.code(), m.to_string()),
            "nothing_to_watch" => AppError::conflict("nothing_to_watch", m.to_string()),
            "publish_not_allowed" => AppError::forbidden(m.code(), "a host has taken the floor from this encoder"),
            code => {
                tracing::warn!(%consultation, error = %m, "device media did not start");
                AppError::new(StatusCode::SERVICE_UNAVAILABLE, code, "the media server could not take the stream")
            }
        },
    }
}

/// The STUN and TURN servers `/join` gives, as RFC 9725 §4.6 hands them to WHIP and WHEP
/// clients: one `Link: <url>; rel="ice-server"` per URL, TURN with the same short-lived
/// credentials (so a clinic's encoder behind a firewall reaches the relay too).
fn ice_links(st: &AppState, identity: &str) -> Vec<(header::HeaderName, String)> {
    let servers = super::consultations::ice_servers(&st.config.media, identity, Timestamp::now());
    let mut out = Vec::new();
    for s in servers.as_array().into_iter().flatten() {
        let urls: Vec<&str> = match &s["urls"] {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            Value::String(u) => vec![u.as_str()],
            _ => Vec::new(),
        };
        for url in urls {
            let mut link = format!("<{url}>; rel=\"ice-server\"");
            if let (Some(user), Some(pass)) = (s["username"].as_str(), s["credential"].as_str()) {
                link.push_str(&format!("; username=\"{user}\"; credential=\"{pass}\"; credential-type=\"password\""));
            }
            out.push((header::LINK, link));
        }
    }
    out
}

/// A 201 with the SDP answer, its session's `Location` and the ICE servers.
fn created(answer: String, location: String, links: Vec<(header::HeaderName, String)>) -> Response {
    let mut resp =
        (StatusCode::CREATED, [(header::CONTENT_TYPE, SDP.to_owned()), (header::LOCATION, location)], answer)
            .into_response();
    for (name, value) in links {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().append(name, v);
        }
    }
    resp
}

/// The body as an SDP: text, not too large, starting as every session description does.
fn sdp_text(body: &[u8]) -> Result<String, AppError> {
    if body.len() > MAX_SDP {
        return Err(AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_sdp", "session description too large"));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| AppError::bad_request("invalid_sdp", "the SDP is not UTF-8 text"))?;
    if !text.starts_with("v=0") {
        return Err(AppError::bad_request("invalid_sdp", "an SDP offer starts with v=0"));
    }
    Ok(text.to_owned())
}

/// The session named in the path, if the token is the one that opened it.
async fn own_session(st: &AppState, headers: &HeaderMap, session: &str) -> Result<(), AppError> {
    let (claims, _, _) = credential(st, headers, None).await?;
    match st.whip.find(session) {
        Some(f) if f.owner == claims.sub && f.consultation == claims.room => Ok(()),
        _ => Err(AppError::not_found("whip_session_not_found", "no such WHIP session (it may have ended)")),
    }
}

/// `PATCH /v1/whip/{session}`: trickled candidates (RFC 8840 fragment). ICE restarts are
/// not supported (RFC 9725 §4.3.2: 422); the encoder starts a new session instead.
async fn trickle(
    State(st): State<AppState>,
    Path(session): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    own_session(&st, &headers, &session).await?;
    trickle_into(&st, &session, &headers, &body).await
}

/// `PATCH /v1/whep/{session}`: the same for a player.
async fn trickle_whep(
    State(st): State<AppState>,
    Path(session): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    own_watch(&st, &headers, &session).await?;
    trickle_into(&st, &session, &headers, &body).await
}

async fn trickle_into(st: &AppState, session: &str, headers: &HeaderMap, body: &[u8]) -> Result<StatusCode, AppError> {
    want_type(headers, SDPFRAG)?;
    if body.len() > MAX_SDP {
        return Err(AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_sdp", "fragment too large"));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| AppError::bad_request("invalid_sdp", "the fragment is not UTF-8 text"))?;
    let fragment = parse_fragment(text);
    if headers.get(header::IF_MATCH).is_some_and(|v| v == "*") || fragment.restart {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ice_restart_unsupported",
            "ICE restarts are not supported; end the session and publish again",
        ));
    }
    for c in fragment.candidates {
        st.whip.candidate(session, c).await.map_err(|e| match e {
            huizhen_sfu::SfuError::Gone => {
                AppError::not_found("whip_session_not_found", "no such WHIP session (it may have ended)")
            }
            other => AppError::bad_request("invalid_candidate", other.to_string()),
        })?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/whip/{session}`: the encoder stops; it leaves the room.
async fn stop(
    State(st): State<AppState>,
    Path(session): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    own_session(&st, &headers, &session).await?;
    st.whip.end(&session).await;
    Ok(StatusCode::OK)
}

/// `DELETE /v1/whep/{session}`: the player stops; it leaves the room.
async fn stop_whep(
    State(st): State<AppState>,
    Path(session): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    own_watch(&st, &headers, &session).await?;
    st.whip.end(&session).await;
    Ok(StatusCode::OK)
}

/// A player's bearer room token, checked as the signaling socket checks it.
async fn player(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<(crate::auth::RoomClaims, Option<Consultation>), AppError> {
    let token = bearer(headers)
        .ok_or_else(|| AppError::unauthorized("token_missing", "send the room token as Authorization: Bearer"))?;
    crate::rtc::session::room_claims(st, token).await
}

/// The player's room token, checked as the socket checks it: the session must be its own.
async fn own_watch(st: &AppState, headers: &HeaderMap, session: &str) -> Result<(), AppError> {
    let (claims, _) = player(st, headers).await?;
    match st.whip.find(session) {
        Some(f) if f.role == Role::Watch && f.owner == claims.sub && f.consultation == claims.room => Ok(()),
        _ => Err(AppError::not_found("whep_session_not_found", "no such WHEP session (it may have ended)")),
    }
}

/// `POST /v1/consultations/{id}/whep`: a receive-only player's SDP offer (WHEP), with the
/// room token `/join` gives (`Authorization: Bearer`); `201` with the answer. It watches the
/// room's encoder if one publishes, else its first host, with their sound; the token's
/// grants must allow watching.
async fn watch(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let (claims, c) = player(&st, &headers).await?;
    if claims.room.as_str() != id {
        return Err(AppError::unauthorized("invalid_token", "the room token is for another consultation"));
    }
    want_type(&headers, SDP)?;
    let offer = sdp_text(&body)?;
    if !claims.grants.can_subscribe {
        return Err(AppError::forbidden("subscribe_not_allowed", "this token may not watch"));
    }
    let c = c.ok_or_else(invalid_token)?;
    if c.status != Status::Live {
        return Err(AppError::conflict("consultation_not_live", "the consultation is not under way")
            .with_details(json!({ "status": c.status })));
    }
    // A player beside the holder's own browser in the same room: an identity of its own.
    let identity = format!("whep-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    // A trainee's player sits in the audience as the trainee does.
    let grants = crate::auth::Grants { can_subscribe: true, audience: claims.grants.audience, ..Default::default() };
    let who = Device {
        consultation: c.id.clone(),
        id: claims.sub.clone(),
        identity: identity.clone(),
        label: format!("{} · WHEP", claims.name),
        grants,
        role: Role::Watch,
    };
    if let Some(there) = redirect_home(&st, &c.id, "whep").await? {
        return Ok(there);
    }
    let (session, answer) = crate::rtc::whip::start(&st, who, offer).await.map_err(|err| refused(err, &c.id))?;
    st.audit.record(
        AuditEntry::new(claims.sub.as_str(), "consultation.whep_watch", Timestamp::now())
            .consultation(&c.id)
            .target(&identity),
    );
    Ok(created(answer, format!("/v1/whep/{session}"), ice_links(&st, &identity)))
}

/// What a trickle fragment carries that we act on.
#[derive(Debug, Default, PartialEq)]
pub struct Fragment {
    pub candidates: Vec<huizhen_sfu::IceCandidate>,
    /// New ICE credentials: the client restarts ICE.
    pub restart: bool,
}

/// Reads an `application/trickle-ice-sdpfrag` body: `a=ice-ufrag`/`a=ice-pwd` (a restart
/// when present, since we never asked for them again), and each media section's `a=mid` and
/// `a=candidate` lines. Other lines are ignored, as RFC 8840 asks.
pub fn parse_fragment(text: &str) -> Fragment {
    let mut f = Fragment::default();
    let mut mid: Option<String> = None;
    let mut index: Option<u16> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("a=ice-ufrag:") || line.starts_with("a=ice-pwd:") {
            f.restart = true;
        } else if line.starts_with("m=") {
            index = Some(index.map_or(0, |i| i + 1));
            mid = None;
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.to_owned());
        } else if let Some(c) = line.strip_prefix("a=") {
            if c.starts_with("candidate:") {
                f.candidates.push(huizhen_sfu::IceCandidate {
                    candidate: c.to_owned(),
                    sdp_mid: mid.clone(),
                    sdp_mline_index: index,
                    username_fragment: None,
                    url: None,
                });
            }
        }
    }
    f
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_fragment_gives_its_candidates_with_their_section() {
        let text = "a=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                    a=candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host\r\na=end-of-candidates\r\n";
        let f = parse_fragment(text);
        assert!(!f.restart);
        assert_eq!(f.candidates.len(), 1);
        assert_eq!(f.candidates[0].candidate, "candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host");
        assert_eq!(f.candidates[0].sdp_mid.as_deref(), Some("0"));
        assert_eq!(f.candidates[0].sdp_mline_index, Some(0));
    }

    #[test]
    fn new_credentials_in_a_fragment_are_a_restart() {
        let f =
            parse_fragment("a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n");
        assert!(f.restart);
        assert!(f.candidates.is_empty());
    }

    #[test]
    fn an_offer_must_look_like_one() {
        assert_eq!(sdp_text(b"hello").unwrap_err().code, "invalid_sdp");
        assert_eq!(sdp_text(&[0xff, 0xfe]).unwrap_err().code, "invalid_sdp");
        assert_eq!(sdp_text(&vec![b'v'; MAX_SDP + 1]).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(sdp_text(b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n").is_ok());
    }
}
