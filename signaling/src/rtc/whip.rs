//! An encoder publishing by WHIP (RFC 9725), or a player watching by WHEP, is a member of the
//! room like a browser, only without a signaling socket: a task here joins the room for it,
//! hands its offer to the SFU, and carries out what the room decides about it (a host's mute,
//! the floor taken) until it says `DELETE`, its right is withdrawn (the room puts it out), its
//! media drops (the SFU closes it), what it watches stops, or the consultation ends. The HTTP
//! side is `api::whip`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::hub::{Outbound, RoomCmd};
use super::protocol::{JoinState, ServerMessage};
use super::room::{JoinRefused, JoinRequest};
use crate::auth::Grants;
use crate::ids::ConsultationId;
use crate::state::AppState;
use huizhen_sfu::{IceCandidate, MediaGrants, PcTarget, SfuError, SfuEvent};

/// Why an encoder's offer was not taken.
#[derive(Debug, thiserror::Error)]
pub enum WhipError {
    #[error("{0} encoders are publishing into this consultation already")]
    TooMany(usize),
    #[error("nobody in the room publishes a picture to watch yet")]
    NothingToWatch,
    #[error("the room refused the device: {0}")]
    Refused(&'static str),
    #[error("{0}")]
    Media(#[from] SfuError),
}

/// What the HTTP side asks of a running session.
enum Ask {
    Candidate(IceCandidate, oneshot::Sender<Result<(), SfuError>>),
    End(oneshot::Sender<()>),
}

struct Entry {
    consultation: ConsultationId,
    /// The encoder credential (WHIP) or the viewer's account (WHEP) that opened it.
    owner: String,
    role: Role,
    tx: mpsc::Sender<Ask>,
}

/// What the device does in the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// WHIP: an encoder publishing.
    Publish,
    /// WHEP: a player watching.
    Watch,
}

/// The encoders publishing on this node, by session (the `Location` of RFC 9725).
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

/// A session as the HTTP side sees it: which consultation and credential it belongs to.
pub struct Found {
    pub consultation: ConsultationId,
    /// See `Entry::owner`.
    pub owner: String,
    pub role: Role,
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn find(&self, session: &str) -> Option<Found> {
        self.map().get(session).map(|e| Found {
            consultation: e.consultation.clone(),
            owner: e.owner.clone(),
            role: e.role,
        })
    }

    fn count(&self, consultation: &ConsultationId, except_encoder: &str) -> usize {
        self.map()
            .values()
            .filter(|e| e.role == Role::Publish && e.consultation == *consultation && e.owner != except_encoder)
            .count()
    }

    fn sender(&self, session: &str) -> Option<mpsc::Sender<Ask>> {
        self.map().get(session).map(|e| e.tx.clone())
    }

    /// Sessions of one credential (an encoder that reconnects before its old session is gone).
    fn of_encoder(&self, encoder: &str) -> Vec<mpsc::Sender<Ask>> {
        self.map().values().filter(|e| e.role == Role::Publish && e.owner == encoder).map(|e| e.tx.clone()).collect()
    }

    /// A trickled candidate of the encoder (RFC 9725 §4.3.1). An ICE-lite server learns the
    /// encoder's addresses from its checks, so this only helps when a check cannot reach us.
    pub async fn candidate(&self, session: &str, c: IceCandidate) -> Result<(), SfuError> {
        let tx = self.sender(session).ok_or(SfuError::Gone)?;
        let (reply, wait) = oneshot::channel();
        tx.send(Ask::Candidate(c, reply)).await.map_err(|_| SfuError::Gone)?;
        wait.await.map_err(|_| SfuError::Gone)?
    }

    /// Ends a session (`DELETE`); returns once its media and its place in the room are gone.
    pub async fn end(&self, session: &str) -> bool {
        let Some(tx) = self.sender(session) else { return false };
        end(tx).await;
        true
    }
}

async fn end(tx: mpsc::Sender<Ask>) {
    let (reply, wait) = oneshot::channel();
    if tx.send(Ask::End(reply)).await.is_ok() {
        let _ = wait.await;
    }
}

/// Who is publishing or watching: the credential (or account) behind it, its room identity
/// and name, and what it may do now.
pub struct Device {
    pub consultation: ConsultationId,
    pub id: String,
    pub identity: String,
    pub label: String,
    pub grants: Grants,
    pub role: Role,
}

/// Joins the room as the device and answers its offer. Returns the session's id and the
/// answer; the session runs on until it ends (see the module's comment).
pub async fn start(st: &AppState, e: Device, offer: String) -> Result<(String, String), WhipError> {
    // The same encoder again (it lost its network and starts over): its old session ends
    // first, and it does not count against the limit.
    let publish = e.role == Role::Publish;
    if publish {
        for old in st.whip.of_encoder(&e.id) {
            end(old).await;
        }
        let max = st.config.whip.max_encoders;
        if st.whip.count(&e.consultation, &e.id) >= max {
            return Err(WhipError::TooMany(max));
        }
    }
    let conn = st.hub.next_conn();
    let (tx, mut rx) = super::hub::Hub::outbound_channel();
    let req = JoinRequest {
        conn,
        identity: e.identity.clone(),
        name: e.label.clone(),
        grants: e.grants,
        hello_id: "whip".into(),
        // Only a live consultation takes a device (`api::whip`): it comes straight in.
        live: true,
        auto_admit: true,
        guest: false,
        encoder: publish,
    };
    let room = st.hub.join(e.consultation.as_str(), req, tx).await.map_err(|r| {
        WhipError::Refused(match r {
            JoinRefused::Full => "room_full",
            JoinRefused::Removed => "removed",
            JoinRefused::Retry => "try_again",
        })
    })?;
    let leave_room = move |room: mpsc::Sender<RoomCmd>| async move {
        let _ = room.send(RoomCmd::Disconnected { conn, going_away: true }).await;
    };
    // The room's hello says whether we are in, whether we may publish, and who is there: a
    // player watches an encoder if one publishes, else the first host (the room's choice,
    // not the media plane's).
    let mut grants = MediaGrants { publish: publish && e.grants.can_publish, subscribe: false };
    let mut source: Option<String> = None;
    let joined = loop {
        match rx.recv().await {
            Some(Outbound::Msg(ServerMessage::Hello { state, you, participants, .. })) => {
                grants.publish &= you.can_publish;
                let pick = |p: &&super::protocol::ParticipantInfo| p.id != you.id;
                source = participants
                    .iter()
                    .filter(pick)
                    .find(|p| p.encoder)
                    .or_else(|| participants.iter().filter(pick).find(|p| p.host))
                    .map(|p| p.id.clone());
                break state == JoinState::Joined;
            }
            Some(Outbound::Msg(_)) => continue,
            Some(Outbound::Close(_)) | None => break false,
        }
    };
    if !joined {
        leave_room(room).await;
        return Err(WhipError::Refused("not_admitted"));
    }
    if !publish && source.is_none() {
        leave_room(room).await;
        return Err(WhipError::NothingToWatch);
    }
    let (media_tx, mut media_rx) = mpsc::unbounded_channel::<SfuEvent>();
    let media = match st.sfu.join(e.consultation.as_str(), &e.identity, grants, media_tx).await {
        Ok(p) => p,
        Err(err) => {
            leave_room(room).await;
            return Err(err.into());
        }
    };
    let answered = match &source {
        Some(source) if !publish => media.watch(offer, source).await,
        _ => media.publish(offer).await,
    };
    let answer = match answered {
        Ok(a) => a,
        Err(err) => {
            media.leave().await;
            leave_room(room).await;
            return Err(err.into());
        }
    };
    let session = uuid::Uuid::new_v4().simple().to_string();
    let (ask_tx, mut asks) = mpsc::channel(16);
    st.whip.map().insert(
        session.clone(),
        Entry { consultation: e.consultation.clone(), owner: e.id.clone(), role: e.role, tx: ask_tx },
    );
    tracing::info!(consultation = %e.consultation, role = ?e.role, session, "device session started");
    let st2 = st.clone();
    let id = session.clone();
    tokio::spawn(async move {
        let mut closed_by_room = false;
        let mut done: Option<oneshot::Sender<()>> = None;
        loop {
            tokio::select! {
                ask = asks.recv() => match ask {
                    Some(Ask::Candidate(c, reply)) => {
                        let target = if publish { PcTarget::Publish } else { PcTarget::Subscribe };
                        let _ = reply.send(media.add_candidate(target, c).await);
                    }
                    Some(Ask::End(reply)) => { done = Some(reply); break; }
                    None => break,
                },
                out = rx.recv() => match out {
                    Some(Outbound::Msg(m)) => {
                        // What a player watches left: it starts another session (and picks again).
                        if matches!(&m, ServerMessage::ParticipantLeft { participant_id, .. } if source.as_deref() == Some(participant_id.as_str()) && !publish) {
                            break;
                        }
                        super::media::obey(&m, &e.identity, e.consultation.as_str(), Some(&media), &mut grants).await;
                    }
                    // Withdrawn, removed by a host, replaced, or the consultation ended.
                    Some(Outbound::Close(_)) | None => { closed_by_room = true; break; }
                },
                Some(ev) = media_rx.recv() => {
                    if let SfuEvent::ConnectionQuality { quality, .. } = ev {
                        let _ = room.send(RoomCmd::Quality { conn, quality }).await;
                        continue;
                    }
                    // The SFU closed the media (it never connected or went silent): the
                    // session is over; the device starts a new one. A player's is also over
                    // when what it watches stops (it cannot renegotiate to something else).
                    let stopped = matches!(&ev, SfuEvent::TrackUnpublished { participant, .. } if !publish && source.as_deref() == Some(participant.as_str()));
                    if stopped || matches!(ev, SfuEvent::Closed { .. }) { break; }
                }
            }
        }
        st2.whip.map().remove(&id);
        media.leave().await;
        if !closed_by_room {
            leave_room(room).await;
        }
        tracing::info!(consultation = %e.consultation, role = ?e.role, session = id, "device session over");
        if let Some(done) = done {
            let _ = done.send(());
        }
    });
    Ok((session, answer))
}
