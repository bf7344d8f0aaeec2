//! `GET /v1/events`: the signed-in user's consultation changes as server-sent events
//! (`crate::events`). The stream starts with `ready`, then one `consultation` event per change
//! the user may see, `resync` when it fell so far behind that changes were lost (reload the
//! lists), and a comment every 15 s to keep proxies from closing it. It ends when the session
//! token does, or is revoked (the account disabled, its role changed, signed out); the client
//! opens it again with a fresh one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::Session;
use crate::consult::model::Role;
use crate::events::Change;
use crate::ids::UserId;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

async fn events(State(st): State<AppState>, s: Session) -> impl IntoResponse {
    let (rx, revoked, closing) = (st.events.subscribe(), st.events.revocations(), st.events.closing());
    let left = u64::try_from(s.expires_at - jiff::Timestamp::now().as_second()).unwrap_or(0);
    let ends = tokio::time::Instant::now() + Duration::from_secs(left);
    let stream = changes(rx, revoked, closing, s.user.id, s.user.role, ends);
    let mut res = Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response();
    // Proxies that buffer answers (nginx) would hold the events back.
    res.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

enum Step {
    Ready,
    Listening,
    Done,
}

fn changes(
    rx: tokio::sync::broadcast::Receiver<Arc<Change>>,
    revoked: tokio::sync::broadcast::Receiver<UserId>,
    closing: tokio::sync::watch::Receiver<bool>,
    user: UserId,
    role: Role,
    ends: tokio::time::Instant,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold((rx, revoked, Step::Ready), move |(mut rx, mut revoked, step)| {
        let user = user.clone();
        let mut closing = closing.clone();
        async move {
            match step {
                Step::Ready => Some((Ok(Event::default().event("ready").data("{}")), (rx, revoked, Step::Listening))),
                Step::Done => None,
                Step::Listening => loop {
                    let got = tokio::select! {
                        got = rx.recv() => got,
                        who = revoked.recv() => match who {
                            // Missed revocations might have been this user's: end, to be safe.
                            Ok(who) if who != user => continue,
                            _ => return None,
                        },
                        _ = tokio::time::sleep_until(ends) => return None,
                        _ = closing.wait_for(|c| *c) => return None,
                    };
                    match got {
                        Ok(c) if c.concerns(&user, role) => {
                            let data = serde_json::to_string(&*c).unwrap_or_default();
                            return Some((
                                Ok(Event::default().event("consultation").data(data)),
                                (rx, revoked, Step::Listening),
                            ));
                        }
                        Ok(_) => continue,
                        Err(RecvError::Lagged(n)) => {
                            let data = format!("{{\"missed\":{n}}}");
                            return Some((
                                Ok(Event::default().event("resync").data(data)),
                                (rx, revoked, Step::Listening),
                            ));
                        }
                        Err(RecvError::Closed) => {
                            return Some((Ok(Event::default().comment("closing")), (rx, revoked, Step::Done)));
                        }
                    }
                },
            }
        }
    })
}
