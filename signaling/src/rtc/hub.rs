//! Room tasks. Each room's state is owned by one task fed by an mpsc of commands; no lock is
//! shared between rooms. The hub only maps room ids to those tasks' senders.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::control::Control;
use super::protocol::{ClientMessage, ServerMessage};
use super::room::{ConnId, JoinRefused, JoinRequest, Limits, Output, Room};
use crate::audit::AuditSink;
use crate::consult::lifecycle::{Action, Actor, Rules};
use crate::consult::model::RecordingPolicy;
use crate::ids::{ConsultationId, UserId};
use crate::metrics::Metrics;
use crate::store::{AuditEntry, DynStore};
use huizhen_recorder::RecorderEvent;

/// What a session's socket is told to do.
#[derive(Debug)]
pub enum Outbound {
    Msg(ServerMessage),
    Close(Option<ServerMessage>),
}

pub enum RoomCmd {
    Join {
        req: JoinRequest,
        tx: mpsc::Sender<Outbound>,
        reply: oneshot::Sender<Result<(), JoinRefused>>,
    },
    Message {
        conn: ConnId,
        msg: ClientMessage,
    },
    Disconnected {
        conn: ConnId,
        /// The client said it is going away (close code 1001: the page was closed or left).
        going_away: bool,
    },
    /// The consultation was ended through the API.
    Ended {
        by: String,
    },
    /// An account's rights here shrank (`Some`) or are gone (`None`).
    Revise {
        identity: String,
        grants: Option<crate::auth::Grants>,
    },
    /// The SFU's new reading of the link of the member on `conn`.
    Quality {
        conn: ConnId,
        quality: huizhen_sfu::Quality,
    },
    Shutdown,
    /// Another node holds the room now: its members here reconnect there.
    Moved,
}

/// Per-socket queue: a client that cannot keep up with this many messages is disconnected
/// (it can rejoin) rather than slowing the whole room.
const OUTBOUND_QUEUE: usize = 256;

pub struct Context {
    pub events: crate::events::Events,
    pub store: DynStore,
    pub sfu: huizhen_sfu::Sfu,
    pub recorder: huizhen_recorder::Recorder,
    pub audit: AuditSink,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub rules: Rules,
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    rooms: Mutex<HashMap<String, mpsc::Sender<RoomCmd>>>,
    next_conn: AtomicU64,
    ctx: Context,
    /// The other nodes on the same Redis, when there are any (`control`).
    bus: std::sync::OnceLock<Arc<super::control::RedisBus>>,
    /// This node among several (issue 16): where its recordings are noted for the others.
    cluster: std::sync::OnceLock<Arc<super::router::RedisRouter>>,
    closed: std::sync::atomic::AtomicBool,
}

impl Hub {
    pub fn new(ctx: Context) -> Self {
        Self {
            inner: Arc::new(HubInner {
                rooms: Mutex::new(HashMap::new()),
                next_conn: AtomicU64::new(1),
                ctx,
                bus: std::sync::OnceLock::new(),
                cluster: std::sync::OnceLock::new(),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<RoomCmd>>> {
        self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn next_conn(&self) -> ConnId {
        self.inner.next_conn.fetch_add(1, Relaxed)
    }

    pub fn outbound_channel() -> (mpsc::Sender<Outbound>, mpsc::Receiver<Outbound>) {
        mpsc::channel(OUTBOUND_QUEUE)
    }

    fn room_sender(&self, room: &str) -> mpsc::Sender<RoomCmd> {
        let mut rooms = self.rooms();
        if let Some(tx) = rooms.get(room).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(1024);
        rooms.insert(room.to_owned(), tx.clone());
        self.inner.ctx.metrics.rooms.fetch_add(1, Relaxed);
        tokio::spawn(run_room(self.clone(), room.to_owned(), rx));
        tx
    }

    /// Joins (or creates) the room. A room task may be retiring just as we arrive; then our
    /// request is dropped unanswered and we try again on a fresh task.
    pub async fn join(
        &self,
        room: &str,
        req: JoinRequest,
        tx: mpsc::Sender<Outbound>,
    ) -> Result<mpsc::Sender<RoomCmd>, JoinRefused> {
        for _ in 0..5 {
            let sender = self.room_sender(room);
            let (reply, wait) = oneshot::channel();
            if sender.send(RoomCmd::Join { req: req.clone(), tx: tx.clone(), reply }).await.is_err() {
                continue;
            }
            match wait.await {
                Ok(Ok(())) => return Ok(sender),
                Ok(Err(refused)) => return Err(refused),
                Err(_) => continue,
            }
        }
        Err(JoinRefused::Retry)
    }

    /// Decisions about rooms also reach the rooms on the other nodes on this Redis.
    pub fn attach_bus(&self, bus: Arc<super::control::RedisBus>) {
        if self.inner.bus.set(bus.clone()).is_ok() {
            bus.listen(self.clone());
        }
    }

    /// This node is one of several: recordings started here are noted in Redis, so every
    /// node's recordings list and downloads find them.
    pub fn attach_cluster(&self, cluster: Arc<super::router::RedisRouter>) {
        let _ = self.inner.cluster.set(cluster);
    }

    /// Notes in Redis that this node holds a recording of `consultation` (a no-op on one node).
    fn note_recording(&self, consultation: Option<&ConsultationId>) {
        let (Some(cluster), Some(cid)) = (self.inner.cluster.get().cloned(), consultation.cloned()) else { return };
        tokio::spawn(async move {
            // Redis away: the recording is safe on this node's disk and listed here; the other
            // nodes do not know of it until a later recording of the consultation notes it.
            if let Err(e) = cluster.note_recording(cid.as_str()).await {
                tracing::warn!(consultation = %cid, error = %e, "recording not noted for the other nodes");
            }
        });
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.inner.closed.load(Relaxed)
    }

    /// Tell the room (wherever it runs) that the consultation ended.
    pub async fn end_room(&self, room: &ConsultationId, by: &str) {
        self.control(Control::End { room: room.clone(), by: by.to_owned() }).await;
    }

    /// Tells the room (wherever it runs) what an account may still do in it.
    pub async fn revise(&self, room: &ConsultationId, identity: &str, grants: Option<crate::auth::Grants>) {
        self.control(Control::Revise { room: room.clone(), identity: identity.to_owned(), grants }).await;
    }

    /// Closes an account's sockets in every room on every node (disabled, or its role
    /// changed): it comes back, if it may, through `/join` with what it may do now.
    pub async fn revoke_everywhere(&self, identity: &str) {
        self.control(Control::RevokeEverywhere { identity: identity.to_owned() }).await;
    }

    async fn control(&self, c: Control) {
        self.apply_local(&c).await;
        if let Some(bus) = self.inner.bus.get() {
            bus.publish(&c).await;
        }
    }

    /// Applies a decision to the rooms this node holds.
    pub(crate) async fn apply_local(&self, c: &Control) {
        let targets: Vec<mpsc::Sender<RoomCmd>> = match c {
            Control::End { room, .. } | Control::Revise { room, .. } => {
                self.rooms().get(room.as_str()).cloned().into_iter().collect()
            }
            Control::RevokeEverywhere { .. } => self.rooms().values().cloned().collect(),
        };
        for tx in targets {
            let _ = tx.send(room_cmd(c)).await;
        }
    }

    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Relaxed);
        let all: Vec<_> = self.rooms().values().cloned().collect();
        for tx in all {
            let _ = tx.send(RoomCmd::Shutdown).await;
        }
    }

    pub fn room_count(&self) -> usize {
        self.rooms().len()
    }

    /// Whether a room task for `room` runs here.
    pub fn holds(&self, room: &str) -> bool {
        self.rooms().get(room).is_some_and(|tx| !tx.is_closed())
    }

    /// The rooms this node holds.
    pub fn room_ids(&self) -> Vec<String> {
        self.rooms().iter().filter(|(_, tx)| !tx.is_closed()).map(|(id, _)| id.clone()).collect()
    }

    /// Members in every room here (lobby and reconnecting ones included).
    pub fn participant_count(&self) -> u64 {
        self.inner.ctx.metrics.participants.load(Relaxed).max(0) as u64
    }

    /// Another node holds `room` now: its members here are told and reconnect there.
    pub async fn move_away(&self, room: &str) {
        let tx = self.rooms().get(room).cloned();
        if let Some(tx) = tx {
            let _ = tx.send(RoomCmd::Moved).await;
        }
    }

    /// Removes the room if nothing is queued for it; called by the room task when it is empty.
    fn retire(&self, room: &str, rx: &mut mpsc::Receiver<RoomCmd>) -> bool {
        let mut rooms = self.rooms();
        if !rx.is_empty() {
            return false;
        }
        rooms.remove(room);
        rx.close();
        self.inner.ctx.metrics.rooms.fetch_sub(1, Relaxed);
        true
    }
}

/// The consultation's recording policy (`None`: no record, a `huizhen token` room), or `Err`
/// when the store does not answer.
async fn read_policy(
    ctx: &Context,
    room: &str,
    consultation: Option<&ConsultationId>,
) -> Result<Option<RecordingPolicy>, ()> {
    let Some(c) = consultation else { return Ok(None) };
    match ctx.store.get_consultation(c).await {
        Ok(record) => Ok(record.map(|c| c.recording)),
        Err(e) => {
            tracing::debug!(room = %room, error = %e, "recording policy not read");
            Err(())
        }
    }
}

/// What slow work done off the room task (the store, the recorder) reports back to it, so a
/// slow Redis or disk never holds up chat and signaling for the whole room (issue 13 item 16).
enum Done {
    RecordingStarted {
        conn: Option<ConnId>,
        request: Option<String>,
        by: String,
        result: Result<huizhen_recorder::Active, huizhen_recorder::Error>,
    },
    Ended {
        conn: ConnId,
        request: String,
        by: String,
        result: Result<(), crate::error::AppError>,
    },
    Policy(Result<Option<RecordingPolicy>, ()>),
}

async fn run_room(hub: Hub, id: String, mut rx: mpsc::Receiver<RoomCmd>) {
    let ctx = &hub.inner.ctx;
    let mut room = Room::new(id.clone(), ctx.limits.clone());
    let mut conns: HashMap<ConnId, mpsc::Sender<Outbound>> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let consultation = ConsultationId::parse(&id);
    // The consultation's recording policy; None for rooms outside the store (`huizhen token`),
    // where the record grant alone decides. A store that does not answer leaves it unknown,
    // and unknown fails closed: nothing is recorded (it may be `off`) and the room asks again
    // every tick, so a `required` recording starts once the store is back (it once stayed
    // unstarted and unprotected for the room's life).
    let mut policy = read_policy(ctx, &id, consultation.as_ref()).await;
    if policy.is_err() {
        tracing::error!(room = %id, "the room cannot read its recording policy; nothing is recorded until it can");
    }
    let (rec_tx, mut rec_rx) = mpsc::unbounded_channel::<RecorderEvent>();
    let mut recording: Option<huizhen_recorder::Active> = None;
    let mut required_tried = false;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut policy_pending = false;
    tracing::debug!(room = %id, "room opened");
    loop {
        let before = room.len();
        let outputs = tokio::select! {
            Some(ev) = rec_rx.recv() => match ev {
                RecorderEvent::Failed { recording: rid, code, reason } => {
                    if recording.as_ref().is_some_and(|a| a.id == rid) {
                        // The session stopped itself and finalises what it has.
                        recording = None;
                        room.recording_failed(code, &reason)
                    } else {
                        Vec::new()
                    }
                }
                RecorderEvent::Finalised { recording: rid, manifest } => {
                    if let Err(e) = manifest.as_ref() {
                        tracing::error!(room = %id, recording = %rid, error = %e, "recording not finalised");
                    }
                    Vec::new()
                }
            },
            cmd = rx.recv() => match cmd {
                None => break,
                Some(RoomCmd::Join { req, tx, reply }) => {
                    let conn = req.conn;
                    match room.join(req) {
                        Ok(out) => {
                            conns.insert(conn, tx);
                            let _ = reply.send(Ok(()));
                            out
                        }
                        Err(refused) => {
                            let _ = reply.send(Err(refused));
                            Vec::new()
                        }
                    }
                }
                Some(RoomCmd::Message { conn, msg }) => room.message(conn, msg),
                Some(RoomCmd::Disconnected { conn, going_away }) => {
                    conns.remove(&conn);
                    room.disconnected(conn, going_away, Instant::now())
                }
                Some(RoomCmd::Ended { by }) => {
                    let rec = room.is_recording();
                    stop_first(rec, &by, room.end(&by))
                }
                Some(RoomCmd::Revise { identity, grants }) => room.revise(&identity, grants),
                Some(RoomCmd::Quality { conn, quality }) => room.quality(conn, quality),
                Some(RoomCmd::Shutdown) => {
                    let rec = room.is_recording();
                    stop_first(rec, "system", room.shutdown())
                }
                Some(RoomCmd::Moved) => {
                    let rec = room.is_recording();
                    stop_first(rec, "system", room.moved())
                }
            },
            Some(done) = done_rx.recv() => match done {
                Done::Policy(read) => {
                    policy_pending = false;
                    if read.is_ok() {
                        tracing::info!(room = %id, "the room read its recording policy");
                        policy = read;
                    }
                    Vec::new()
                }
                Done::RecordingStarted { conn, request, by, result } => {
                    let reply = |m: ServerMessage| {
                        if let Some(tx) = conn.and_then(|c| conns.get(&c)) {
                            let _ = tx.try_send(Outbound::Msg(m));
                        }
                    };
                    match result {
                        Ok(active) => {
                            let rid = active.id.clone();
                            recording = Some(active);
                            hub.note_recording(consultation.as_ref());
                            if let Some(r) = request {
                                reply(ServerMessage::Ack { id: r });
                            }
                            room.recording_started(rid, by, jiff::Timestamp::now())
                        }
                        Err(e) => {
                            tracing::error!(room = %id, error = %e, "recording did not start");
                            match request {
                                Some(r) => {
                                    room.recording_not_started();
                                    reply(ServerMessage::error(Some(&r), e.code(), e.to_string()));
                                    Vec::new()
                                }
                                None => room.recording_start_failed(e.code(), &e.to_string()),
                            }
                        }
                    }
                }
                Done::Ended { conn, request, by, result } => match result {
                    Ok(()) => {
                        if let Some(tx) = conns.get(&conn) {
                            let _ = tx.try_send(Outbound::Msg(ServerMessage::Ack { id: request }));
                        }
                        let rec = room.is_recording();
                        stop_first(rec, &by, room.end(&by))
                    }
                    Err(e) => {
                        if let Some(tx) = conns.get(&conn) {
                            let _ = tx.try_send(Outbound::Msg(ServerMessage::error(Some(&request), e.code, e.message)));
                        }
                        Vec::new()
                    }
                },
            },
            _ = tick.tick() => {
                if policy.is_err() && !policy_pending {
                    policy_pending = true;
                    let (h, room_id, cid, done) = (hub.clone(), id.clone(), consultation.clone(), done_tx.clone());
                    tokio::spawn(async move {
                        let read = read_policy(&h.inner.ctx, &room_id, cid.as_ref()).await;
                        let _ = done.send(Done::Policy(read));
                    });
                }
                room.tick(Instant::now())
            }
        };
        let (known, now_policy) = match &policy {
            Ok(p) => (true, *p),
            Err(()) => (false, None),
        };
        let mut queue = std::collections::VecDeque::from(outputs);
        // A consultation that must be recorded is, from the moment someone who may record is
        // in (tried once per room; hosts hear if it fails).
        if now_policy == Some(RecordingPolicy::Required)
            && !required_tried
            && let Some(start) = room.start_required()
        {
            required_tried = true;
            queue.push_back(start);
        }
        while let Some(o) = queue.pop_front() {
            match o {
                Output::Send(c, m) => {
                    if let Some(tx) = conns.get(&c)
                        && tx.try_send(Outbound::Msg(m)).is_err()
                    {
                        // Too slow or gone: drop the socket; the member can reconnect.
                        conns.remove(&c);
                        queue.extend(room.disconnected(c, false, Instant::now()));
                    }
                }
                Output::Close(c, m) => {
                    if let Some(tx) = conns.remove(&c) {
                        let _ = tx.try_send(Outbound::Close(m));
                    }
                }
                Output::Audit { actor, action, target } => {
                    let mut e = AuditEntry::new(actor, format!("room.{action}"), jiff::Timestamp::now());
                    e.consultation = consultation.clone();
                    e.target = target;
                    ctx.audit.record(e);
                }
                Output::StartRecording { conn, request, by } => {
                    // Only a request has someone to answer.
                    let reply = |m: ServerMessage| {
                        if let Some(tx) = conn.and_then(|c| conns.get(&c)) {
                            let _ = tx.try_send(Outbound::Msg(m));
                        }
                    };
                    if !known {
                        room.recording_not_started();
                        reply(ServerMessage::error(
                            request.as_deref(),
                            "store_unavailable",
                            "whether this consultation may be recorded cannot be read now; try again shortly",
                        ));
                        continue;
                    }
                    if now_policy == Some(RecordingPolicy::Off) {
                        room.recording_not_started();
                        reply(ServerMessage::error(
                            request.as_deref(),
                            "recording_not_allowed",
                            "this consultation is not to be recorded",
                        ));
                        continue;
                    }
                    // The start writes and syncs files: off the room task. The room counts it
                    // as on its way until `Done::RecordingStarted` comes back.
                    let (recorder, sfu, room_id) = (ctx.recorder.clone(), ctx.sfu.clone(), id.clone());
                    let (events, done) = (rec_tx.clone(), done_tx.clone());
                    tokio::spawn(async move {
                        let result = recorder.start(&sfu, &room_id, &by, events).await;
                        let started = Done::RecordingStarted { conn, request, by, result };
                        // The room closed meanwhile: the recording it asked for ends here.
                        if let Err(mpsc::error::SendError(Done::RecordingStarted { result: Ok(active), .. })) =
                            done.send(started)
                        {
                            active.stop("system").await;
                        }
                    });
                }
                Output::StopRecording { conn, request, by } => {
                    if conn.is_some() && now_policy == Some(RecordingPolicy::Required) {
                        if let (Some(c), Some(r)) = (conn, request)
                            && let Some(tx) = conns.get(&c)
                        {
                            let _ = tx.try_send(Outbound::Msg(ServerMessage::error(
                                Some(&r),
                                "recording_required",
                                "this consultation must be recorded to its end",
                            )));
                        }
                        continue;
                    }
                    // Stopping waits for every capture to be closed and durable: off the room task.
                    if let Some(active) = recording.take() {
                        let who = by.clone();
                        tokio::spawn(async move { active.stop(&who).await });
                    }
                    if let (Some(c), Some(r)) = (conn, request)
                        && let Some(tx) = conns.get(&c)
                    {
                        let _ = tx.try_send(Outbound::Msg(ServerMessage::Ack { id: r }));
                    }
                    queue.extend(room.recording_stopped(&by));
                }
                Output::ExcludeFromRecording { participant } => {
                    if let Some(active) = &recording {
                        active.exclude(&participant).await;
                    }
                }
                Output::Start { by } => {
                    // A host came in: the consultation starts now, recorded in the store off
                    // the room task (the room already lets invited members in).
                    if let Some(cid) = consultation.clone() {
                        let h = hub.clone();
                        tokio::spawn(async move {
                            if let Err(e) = start_consultation(&h.inner.ctx, &cid, &by).await {
                                tracing::warn!(consultation = %cid, code = e.code, "the host's arrival did not start the consultation");
                            }
                        });
                    }
                }
                Output::EndRequested { conn, request, by } => {
                    // Committing the end goes through the store: off the room task; the room
                    // ends when `Done::Ended` says it is committed.
                    let (h, cid, done) = (hub.clone(), consultation.clone(), done_tx.clone());
                    tokio::spawn(async move {
                        let result = end_consultation(&h.inner.ctx, cid.as_ref(), &by).await;
                        let _ = done.send(Done::Ended { conn, request, by, result });
                    });
                }
            }
        }
        let after = room.len();
        ctx.metrics.participants.fetch_add(after as i64 - before as i64, Relaxed);
        if room.is_empty() && hub.retire(&id, &mut rx) {
            break;
        }
    }
    // Everyone left: the recording ends with the room.
    if let Some(active) = recording.take() {
        let rid = active.id.clone();
        active.stop("system").await;
        let mut e = AuditEntry::new("system", "room.recording_stop", jiff::Timestamp::now()).target(rid);
        e.consultation = consultation.clone();
        ctx.audit.record(e);
    }
    tracing::debug!(room = %id, "room closed");
}

/// Stopping the recording comes before the room's last messages (ended, closing).
fn stop_first(recording: bool, by: &str, outputs: Vec<Output>) -> Vec<Output> {
    if !recording {
        return outputs;
    }
    let mut all = vec![Output::StopRecording { conn: None, request: None, by: by.to_owned() }];
    all.extend(outputs);
    all
}

/// Starts a scheduled consultation when its first host comes into the room (issue 14: the
/// report shows the real start, not the end twice). Already live or ended: nothing to do.
async fn start_consultation(ctx: &Context, id: &ConsultationId, by: &str) -> Result<(), crate::error::AppError> {
    let Some(c) = ctx.store.get_consultation(id).await? else { return Ok(()) };
    if c.status != crate::consult::model::Status::Scheduled {
        return Ok(());
    }
    let Some(u) = ctx.store.get_user(&UserId(by.to_owned())).await? else { return Ok(()) };
    let actor = Actor { id: u.id, role: u.role };
    match crate::service::transition(&ctx.store, &ctx.rules, &ctx.metrics, &ctx.events, id, &actor, Action::Start).await
    {
        // Someone else started it meanwhile (the coordinator, or an end that starts first).
        Err(e) if e.code == "invalid_state" => Ok(()),
        r => r.map(|_| ()),
    }
}

/// Ends the consultation in the store (if the room belongs to one) before the room closes.
async fn end_consultation(ctx: &Context, id: Option<&ConsultationId>, by: &str) -> Result<(), crate::error::AppError> {
    let Some(id) = id else { return Ok(()) };
    let Some(c) = ctx.store.get_consultation(id).await? else {
        // A room minted by `huizhen token` for a script: nothing in the store to end.
        return Ok(());
    };
    if c.status.is_closed() {
        return Ok(());
    }
    let user = UserId(by.to_owned());
    let Some(u) = ctx.store.get_user(&user).await? else {
        return Err(crate::error::AppError::forbidden(
            "forbidden_role",
            "only a host account may end this consultation",
        ));
    };
    let actor = Actor { id: user, role: u.role };
    // A host who ends a call that was never formally started ends a call that did happen:
    // record the start first, so the lifecycle stays complete.
    if c.status == crate::consult::model::Status::Scheduled {
        start_consultation(ctx, id, by).await?;
    }
    crate::service::transition(&ctx.store, &ctx.rules, &ctx.metrics, &ctx.events, id, &actor, Action::End)
        .await
        .map(|_| ())
}

/// What a room task is told for a decision.
fn room_cmd(c: &Control) -> RoomCmd {
    match c {
        Control::End { by, .. } => RoomCmd::Ended { by: by.clone() },
        Control::Revise { identity, grants, .. } => RoomCmd::Revise { identity: identity.clone(), grants: *grants },
        Control::RevokeEverywhere { identity } => RoomCmd::Revise { identity: identity.clone(), grants: None },
    }
}
