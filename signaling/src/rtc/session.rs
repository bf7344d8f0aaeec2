//! One signaling WebSocket: authenticate by room token before the upgrade, expect `hello`,
//! join the room, then relay between the socket and the room task with size and rate limits.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;

use serde::Deserialize;

use super::hub::{Outbound, RoomCmd};
use super::protocol::*;
use super::room::{JoinRefused, JoinRequest};
use crate::auth::{RoomClaims, TokenError};
use crate::error::AppError;
use crate::limit::Bucket;
use crate::state::AppState;

/// Frames above this are refused by the WebSocket layer itself; between the configured
/// message limit and this, the client gets a coded error and keeps its socket.
const HARD_FRAME_LIMIT: usize = 1 << 20;
/// Bytes read from a signaling socket at a time (see `upgrade`).
const READ_BUFFER: usize = 4096;
const KEEPALIVE: Duration = Duration::from_secs(15);
/// A socket that sends nothing (not even a pong) for this long is treated as dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Deserialize)]
pub struct RtcQuery {
    token: Option<String>,
}

pub async fn upgrade(
    State(st): State<AppState>,
    query: Result<crate::api::ApiQuery<RtcQuery>, AppError>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    let ws = ws.map_err(|_| AppError::bad_request("websocket_required", "connect with a WebSocket upgrade"))?;
    let crate::api::ApiQuery(q) = query?;
    let token = q.token.or_else(|| crate::api::bearer(&headers).map(str::to_owned)).ok_or_else(|| {
        AppError::unauthorized("token_missing", "a room token is required (?token= or Authorization: Bearer)")
    })?;
    let (claims, consultation) = room_claims(&st, &token).await?;
    home_here(&st, &claims.room).await?;
    let live = match &consultation {
        Some(c) => c.status == crate::consult::model::Status::Live,
        None => true,
    };
    let auto_admit = consultation.as_ref().is_some_and(|c| c.auto_admit);
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before every read of
    // the socket: in a join storm of 200 viewers that was a quarter of the server's CPU
    // (docs/performance.md). Signaling messages are small; a larger one spans several reads.
    Ok(ws
        .max_message_size(HARD_FRAME_LIMIT)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| run(st, socket, claims, Entry { live, auto_admit })))
}

/// With several nodes, a room's members meet on its home: a socket (or an encoder, or a
/// player) that reaches another node is turned away with the home's address (421
/// `wrong_node`); a client calls `/join` again, which names it.
pub async fn home_here(st: &AppState, room: &crate::ids::ConsultationId) -> Result<(), AppError> {
    match st.router.claim(room, st.hub.holds(room.as_str())).await? {
        super::router::Home::Here(_) => Ok(()),
        super::router::Home::Elsewhere(node) => Err(AppError::new(
            axum::http::StatusCode::MISDIRECTED_REQUEST,
            "wrong_node",
            "this consultation's room is on another server node; ask /join again",
        )
        .with_details(serde_json::json!({ "node_url": node.url }))),
    }
}

/// A room token checked against the record and the account as they are now: valid, for a
/// consultation that is not over, and its grants narrowed to what its holder may still do
/// (a reschedule may have replaced them, an admin may have disabled them, a guest link may
/// have been withdrawn). Used by the signaling socket and by WHEP players.
pub async fn room_claims(
    st: &AppState,
    token: &str,
) -> Result<(RoomClaims, Option<crate::consult::model::Consultation>), AppError> {
    let mut claims = st.keys.verify_room(token).map_err(|e| match e {
        TokenError::Expired => AppError::unauthorized("token_expired", "the room token has expired; ask for a new one"),
        _ => AppError::unauthorized("invalid_token", "the room token is not valid"),
    })?;
    let consultation = st.store.get_consultation(&claims.room).await?;
    if let Some(c) = consultation.as_ref().filter(|c| c.status.is_closed()) {
        return Err(AppError::forbidden("room_closed", "this consultation is over")
            .with_details(serde_json::json!({ "status": c.status })));
    }
    if let Some(link) = &claims.guest {
        // A guest's place is the link's: withdrawn since the token was issued, it is gone.
        match consultation.as_ref().and_then(|c| crate::consult::rights::guest_grants(c, link)) {
            Some(g) => claims.grants = crate::consult::rights::narrow(claims.grants, g),
            None => {
                return Err(AppError::forbidden("guest_link_revoked", "this guest link has been withdrawn"));
            }
        }
    }
    if claims.account {
        // The token says what its holder could do when it was issued; the record and the
        // account say what they may do now. The token never gives more than that.
        let user = match crate::ids::UserId::parse(&claims.sub) {
            Some(id) => st.store.get_user(&id).await?,
            None => None,
        };
        let now = match (&consultation, &user) {
            (Some(c), Some(u)) => crate::consult::rights::room_grants(c, u),
            _ => None,
        };
        match now {
            Some(g) => claims.grants = crate::consult::rights::narrow(claims.grants, g),
            None => {
                return Err(AppError::forbidden(
                    "rights_revoked",
                    "you no longer have a place in this consultation; ask for a new invitation",
                ));
            }
        }
    }
    Ok((claims, consultation))
}

fn text(msg: &ServerMessage) -> Message {
    Message::Text(Utf8Bytes::from(serde_json::to_string(msg).unwrap_or_default()))
}

async fn close_with(socket: &mut WebSocket, msg: ServerMessage, code: u16) {
    let _ = socket.send(text(&msg)).await;
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static("") }))).await;
}

/// RFC 6455 §7.4.1: "an endpoint is going away, such as a server going down or a browser
/// having navigated away from a page".
const GOING_AWAY: u16 = 1001;

/// Close codes (RFC 6455 §7.4.2 leaves 4000–4999 to applications).
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const POLICY: u16 = 1008;
    pub const PROTOCOL: u16 = 4000;
    pub const REFUSED: u16 = 4003;
}

/// What the record said about the room when the socket opened.
struct Entry {
    live: bool,
    auto_admit: bool,
}

async fn run(st: AppState, mut socket: WebSocket, claims: RoomClaims, entry: Entry) {
    st.metrics.ws_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    session(&st, &mut socket, claims, entry).await;
    st.metrics.ws_connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

/// A refused message: its error code and explanation.
struct Refusal(&'static str, String);

impl From<Refusal> for ServerMessage {
    fn from(r: Refusal) -> Self {
        ServerMessage::error(None, r.0, r.1)
    }
}

fn parse(raw: &str, limit: usize) -> Result<ClientMessage, Refusal> {
    if raw.len() > limit {
        return Err(too_large(limit));
    }
    let msg: ClientMessage = serde_json::from_str(raw).map_err(|e| Refusal("invalid_message", e.to_string()))?;
    if msg.id().len() > MAX_ID_LEN {
        return Err(Refusal("invalid_message", format!("id is limited to {MAX_ID_LEN} characters")));
    }
    Ok(msg)
}

/// The answers a client owes us: one per subscribe offer we sent it.
#[derive(Default)]
struct Owed {
    answers: u32,
    /// The longest offer among them, in bytes.
    offer_bytes: usize,
}

impl Owed {
    fn offered(&mut self, bytes: usize) {
        self.answers = self.answers.saturating_add(1);
        self.offer_bytes = self.offer_bytes.max(bytes);
    }

    /// How long an answer may be: an answer has one m-line per m-line of the offer, so a room
    /// of twenty sites (38 m-lines) gives answers of 20-30 kB, over the message limit.
    fn answer_limit(&self, limits: &crate::config::Limits) -> usize {
        limits.ws_message_bytes.max(self.offer_bytes.saturating_mul(ANSWER_PER_OFFER_BYTES)).min(HARD_FRAME_LIMIT)
    }
}

/// An answer's length against its offer's: the offer lists every codec of a kind once per
/// m-line, a browser's answer about as much again with its own attributes.
const ANSWER_PER_OFFER_BYTES: usize = 4;

/// Whether one text message is taken, under the socket's size and rate limits. An answer
/// to a subscribe offer of ours that is still unanswered is the exception: the server sends
/// one offer at a time and offers nothing more until it is answered, so a refused answer
/// would keep every later track from this client. Such an answer may be as long as its offer
/// calls for, and is taken over the rate (the offers bound how many there are).
fn admit(raw: &str, allowed: bool, owed: &mut Owed, limits: &crate::config::Limits) -> Result<ClientMessage, Refusal> {
    let limited = || Refusal("rate_limited", format!("at most {} messages per second", limits.ws_messages_per_second));
    if owed.answers == 0 {
        return if allowed { parse(raw, limits.ws_message_bytes) } else { Err(limited()) };
    }
    match parse(raw, owed.answer_limit(limits)) {
        Ok(answer @ ClientMessage::SubscribeAnswer { .. }) => {
            owed.answers -= 1;
            if owed.answers == 0 {
                owed.offer_bytes = 0;
            }
            Ok(answer)
        }
        _ if !allowed => Err(limited()),
        Ok(_) if raw.len() > limits.ws_message_bytes => Err(too_large(limits.ws_message_bytes)),
        verdict => verdict,
    }
}

fn too_large(limit: usize) -> Refusal {
    Refusal("message_too_large", format!("signaling messages are limited to {limit} bytes"))
}

async fn session(st: &AppState, socket: &mut WebSocket, claims: RoomClaims, entry: Entry) {
    let limits = &st.config.limits;
    let hello_timeout = Duration::from_secs(st.config.signaling.hello_timeout_secs);
    // 1. hello
    let first = match tokio::time::timeout(hello_timeout, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => parse(t.as_str(), limits.ws_message_bytes),
        Ok(Some(Ok(Message::Close(_))) | None | Some(Err(_))) => return,
        Ok(Some(Ok(_))) => Err(Refusal("hello_required", "the first message must be a JSON hello".into())),
        Err(_) => {
            close_with(socket, ServerMessage::error(None, "hello_timeout", "no hello received"), close_code::PROTOCOL)
                .await;
            return;
        }
    };
    let hello_id = match first {
        Ok(ClientMessage::Hello { id, version }) if version == PROTOCOL_VERSION => id,
        Ok(ClientMessage::Hello { id, version }) => {
            let m = format!("protocol version {version} is not supported; this server speaks {PROTOCOL_VERSION}");
            close_with(socket, ServerMessage::error(Some(&id), "unsupported_version", m), close_code::PROTOCOL).await;
            return;
        }
        Ok(other) => {
            close_with(
                socket,
                ServerMessage::error(Some(other.id()), "hello_required", "the first message must be hello"),
                close_code::PROTOCOL,
            )
            .await;
            return;
        }
        Err(e) => {
            close_with(socket, e.into(), close_code::PROTOCOL).await;
            return;
        }
    };
    // 2. join
    let conn = st.hub.next_conn();
    let (tx, mut rx) = super::hub::Hub::outbound_channel();
    let req = JoinRequest {
        conn,
        identity: claims.sub.clone(),
        name: claims.name.clone(),
        grants: claims.grants,
        hello_id,
        live: entry.live,
        auto_admit: entry.auto_admit,
        guest: claims.guest.is_some(),
        encoder: false,
    };
    let room = match st.hub.join(claims.room.as_str(), req, tx).await {
        Ok(room) => room,
        Err(refused) => {
            let (code, m) = match refused {
                JoinRefused::Full => ("room_full", "the room has reached its participant limit"),
                JoinRefused::Removed => ("removed", "a host removed you from this room"),
                JoinRefused::Retry => ("try_again", "the room was busy; connect again"),
            };
            close_with(socket, ServerMessage::error(None, code, m), close_code::REFUSED).await;
            return;
        }
    };
    tracing::info!(room = %claims.room, participant = %claims.sub, conn, "signaling joined");
    // 3. relay
    let mut bucket = Bucket::full(limits.ws_burst, Instant::now());
    let mut breaches = Breaches::default();
    let mut last_seen = Instant::now();
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.reset();
    let mut closed_by_room = false;
    // Media starts once the participant is in the room proper (not in the lobby).
    let mut media: Option<huizhen_sfu::Participant> = None;
    let mut in_room = false;
    let (media_tx, mut media_rx) = tokio::sync::mpsc::unbounded_channel::<huizhen_sfu::SfuEvent>();
    let mut media_grants =
        huizhen_sfu::MediaGrants { publish: claims.grants.can_publish, subscribe: claims.grants.can_subscribe };
    // What the client sends before the room's hello has reached it waits in the socket: a
    // client that does not wait for the hello still gets it first, and its first publish finds
    // its media ready (it once got a pong, or media_not_ready, before the hello).
    let mut greeted = false;
    let mut going_away = false;
    let mut owed = Owed::default();
    loop {
        tokio::select! {
            inbound = socket.recv(), if greeted => {
                let raw = match inbound {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        st.metrics.ws_limit_breaches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let _ = socket.send(text(&ServerMessage::error(None, "invalid_message", "binary frames are not part of the protocol"))).await;
                        if breaches.add(Instant::now()) >= limits.ws_breaches_before_close { break_with_violation(socket).await; break; }
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => { last_seen = Instant::now(); continue; }
                    Some(Ok(Message::Close(frame))) => {
                        // 1001: the page was closed or navigated away (a browser says so);
                        // any other close may be a client about to reconnect.
                        going_away = frame.is_some_and(|f| f.code == GOING_AWAY);
                        break;
                    }
                    None | Some(Err(_)) => break,
                };
                last_seen = Instant::now();
                st.metrics.ws_messages_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let allowed = bucket.take(limits.ws_messages_per_second, limits.ws_burst, Instant::now());
                let verdict = admit(raw.as_str(), allowed, &mut owed, limits);
                match verdict {
                    Ok(ClientMessage::Ping { id }) => {
                        let _ = socket.send(text(&ServerMessage::Pong { id })).await;
                    }
                                        Ok(msg) if super::media::is_media(&msg) => {
                        // After the SFU dropped this socket's media (timeout), a new publish
                        // starts it again.
                        if media.is_none() && in_room && matches!(msg, ClientMessage::Publish { .. }) {
                            match st.sfu.join(claims.room.as_str(), &claims.sub, media_grants, media_tx.clone()).await {
                                Ok(p) => media = Some(p),
                                Err(e) => {
                                    tracing::warn!(room = %claims.room, participant = %claims.sub, error = %e, "media did not start again");
                                    let reply = ServerMessage::error(Some(msg.id()), e.code(), e.to_string());
                                    if socket.send(text(&reply)).await.is_err() { break; }
                                    continue;
                                }
                            }
                        }
                        let reply = super::media::handle(media.as_ref(), msg).await;
                        if socket.send(text(&reply)).await.is_err() { break; }
                    }
                    Ok(msg) => {
                        if room.send(RoomCmd::Message { conn, msg }).await.is_err() { break; }
                    }
                    Err(e) => {
                        st.metrics.ws_limit_breaches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let _ = socket.send(text(&e.into())).await;
                        if breaches.add(Instant::now()) >= limits.ws_breaches_before_close { break_with_violation(socket).await; break; }
                    }
                }
            }
            out = rx.recv() => match out {
                Some(Outbound::Msg(m)) => {
                    let entered = matches!(m, ServerMessage::Hello { state: JoinState::Joined, .. } | ServerMessage::Admitted { .. });
                    let hello = matches!(m, ServerMessage::Hello { .. });
                    super::media::obey(&m, &claims.sub, claims.room.as_str(), media.as_ref(), &mut media_grants).await;
                    if socket.send(text(&m)).await.is_err() { break; }
                                        in_room |= entered;
                    if entered && media.is_none() {
                        match st.sfu.join(claims.room.as_str(), &claims.sub, media_grants, media_tx.clone()).await {
                            Ok(p) => media = Some(p),
                            Err(e) => {
                                tracing::warn!(room = %claims.room, participant = %claims.sub, error = %e, "media did not start");
                                let _ = socket.send(text(&ServerMessage::error(None, e.code(), e.to_string()))).await;
                            }
                        }
                    }
                    greeted |= hello;
                }
                Some(Outbound::Close(m)) => {
                    closed_by_room = true;
                    let code = match m {
                        Some(ServerMessage::Removed { .. } | ServerMessage::Declined) => close_code::REFUSED,
                        Some(ServerMessage::Error { .. }) => close_code::POLICY,
                        _ => close_code::NORMAL,
                    };
                    match m {
                        Some(m) => close_with(socket, m, code).await,
                        None => { let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static("") }))).await; }
                    }
                    break;
                }
                None => break,
            },
            Some(ev) = media_rx.recv() => {
                // Our own link's quality: the room tells whoever is shown us.
                if let huizhen_sfu::SfuEvent::ConnectionQuality { quality, .. } = ev {
                    if room.send(RoomCmd::Quality { conn, quality }).await.is_err() { break; }
                    continue;
                }
                let closed = matches!(ev, huizhen_sfu::SfuEvent::Closed { .. });
                if let huizhen_sfu::SfuEvent::SubscribeOffer { sdp } = &ev {
                    owed.offered(sdp.len());
                }
                if socket.send(text(&super::media::event(ev))).await.is_err() { break; }
                if closed && let Some(m) = media.take() {
                    // The SFU removed it already; the leave frees its place (the worker it
                    // was put on, when the room spreads over several).
                    m.leave().await;
                }
            }
            _ = keepalive.tick() => {
                if last_seen.elapsed() > IDLE_TIMEOUT { break; }
                if socket.send(Message::Ping(Default::default())).await.is_err() { break; }
            }
        }
    }
    if let Some(m) = media {
        m.leave().await;
    }
    if !closed_by_room {
        let _ = room.send(RoomCmd::Disconnected { conn, going_away }).await;
    }
    tracing::info!(room = %claims.room, participant = %claims.sub, conn, "signaling socket closed");
}

/// Refused messages in the current window: a client that errs now and then during a long
/// consultation is not cut off; one that keeps breaking the rules is.
#[derive(Default)]
struct Breaches {
    count: u32,
    since: Option<Instant>,
}

const BREACH_WINDOW: Duration = Duration::from_secs(60);

impl Breaches {
    fn add(&mut self, now: Instant) -> u32 {
        if self.since.is_none_or(|t| now.saturating_duration_since(t) > BREACH_WINDOW) {
            self.count = 0;
            self.since = Some(now);
        }
        self.count += 1;
        self.count
    }
}

async fn break_with_violation(socket: &mut WebSocket) {
    close_with(
        socket,
        ServerMessage::error(None, "too_many_violations", "too many refused messages; the socket is closed"),
        close_code::POLICY,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;

    fn answer(sdp_bytes: usize) -> String {
        serde_json::json!({ "type": "subscribe_answer", "id": "a", "sdp": "x".repeat(sdp_bytes) }).to_string()
    }

    fn chat(text_bytes: usize) -> String {
        serde_json::json!({ "type": "chat", "id": "c", "text": "x".repeat(text_bytes) }).to_string()
    }

    fn code(r: Result<ClientMessage, Refusal>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(Refusal(code, _)) => code,
        }
    }

    #[test]
    fn an_answer_we_asked_for_may_be_as_long_as_its_offer_calls_for_and_over_the_rate() {
        let limits = Limits { ws_message_bytes: 1000, ..Limits::default() };
        let mut owed = Owed::default();
        // Nothing owed: the limits as they are.
        assert_eq!(code(admit(&answer(2000), true, &mut owed, &limits)), "message_too_large");
        assert_eq!(code(admit(&answer(10), false, &mut owed, &limits)), "rate_limited");
        // Two offers of 1,500 bytes out: two answers of up to four times that are taken,
        // even with the bucket empty; a third is held to the limits again.
        owed.offered(1500);
        owed.offered(1200);
        assert_eq!(code(admit(&answer(5000), false, &mut owed, &limits)), "ok");
        assert_eq!(code(admit(&answer(7000), true, &mut owed, &limits)), "message_too_large");
        assert_eq!(code(admit(&answer(5000), true, &mut owed, &limits)), "ok");
        assert_eq!(code(admit(&answer(5000), true, &mut owed, &limits)), "message_too_large");
        assert_eq!(code(admit(&answer(10), false, &mut owed, &limits)), "rate_limited");
    }

    #[test]
    fn while_an_answer_is_owed_other_messages_keep_their_limits() {
        let limits = Limits { ws_message_bytes: 1000, ..Limits::default() };
        let mut owed = Owed::default();
        owed.offered(1500);
        assert_eq!(code(admit(&chat(2000), true, &mut owed, &limits)), "message_too_large");
        assert_eq!(code(admit(&chat(10), false, &mut owed, &limits)), "rate_limited");
        assert_eq!(code(admit("{not json", false, &mut owed, &limits)), "rate_limited");
        assert_eq!(code(admit("{not json", true, &mut owed, &limits)), "invalid_message");
        assert_eq!(code(admit(&chat(10), true, &mut owed, &limits)), "ok");
        // Still owed: none of those was the answer.
        assert_eq!(code(admit(&answer(3000), false, &mut owed, &limits)), "ok");
    }
}
