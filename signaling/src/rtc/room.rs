//! One room's state and rules, without sockets or clocks: the room task feeds it events with
//! an explicit `now` and carries out the `Output`s it returns.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::protocol::*;
use crate::auth::Grants;

/// One socket, numbered by the hub.
pub type ConnId = u64;

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Send(ConnId, ServerMessage),
    /// Send the message (if any), then close the socket.
    Close(ConnId, Option<ServerMessage>),
    /// A host asked to end the consultation: the shell commits it, then calls `Room::end`.
    EndRequested {
        conn: ConnId,
        request: String,
        by: String,
    },
    Audit {
        actor: String,
        action: &'static str,
        target: Option<String>,
    },
    /// Someone with the record grant asked to start (`conn`, `request`), or a `required`
    /// recording is due (`start_required`): the shell checks the consultation's policy, starts
    /// the recorder, then calls `recording_started` (or `recording_not_started` /
    /// `recording_start_failed`).
    StartRecording {
        conn: Option<ConnId>,
        request: Option<String>,
        by: String,
    },
    /// Stop the recorder, then call `recording_stopped`.
    StopRecording {
        conn: Option<ConnId>,
        request: Option<String>,
        by: String,
    },
    /// This participant declined: the recorder drops (and deletes) their media.
    ExcludeFromRecording {
        participant: String,
    },
    /// The first host came into a room whose consultation was not under way yet: the shell
    /// starts it in the store (as this host), so its real start is recorded.
    Start {
        by: String,
    },
}

#[derive(Clone, Debug)]
struct RecState {
    id: String,
    by: String,
    started_at: jiff::Timestamp,
    excluded: BTreeSet<String>,
}

#[derive(Clone, Debug)]
struct Member {
    info: ParticipantInfo,
    grants: Grants,
    state: JoinState,
    conn: Option<ConnId>,
    disconnected_at: Option<Instant>,
    /// Gone for longer than `away_after`: the others were told they left, though their place
    /// (admission, floor, the room itself) is kept for the rest of the grace period.
    away: bool,
}

impl Member {
    /// In the room proper and shown at all: joined, not `hidden`, not gone for `away_after`.
    fn listed(&self) -> bool {
        self.state == JoinState::Joined && !self.grants.hidden && !self.away
    }

    /// In a broadcast's audience without the floor: shown to the hosts (and themselves) only.
    /// A class of hundreds of trainees is not a roster: each join is told to the few who
    /// present, not to every other trainee, and each trainee's list holds who they watch.
    fn in_audience(&self) -> bool {
        self.grants.audience && !self.info.host && !self.info.can_publish
    }

    /// Whether this member (`me`) is told of `subject` (`id`), who is `public` unless in the
    /// audience.
    fn sees(&self, me: &str, id: &str, public: bool) -> bool {
        public || me == id || self.grants.room_admin
    }
}

/// Chat messages a room keeps for those who reload or come later.
const CHAT_KEPT: usize = 500;

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_participants: usize,
    pub chat_chars: usize,
    pub reconnect_grace: Duration,
    /// A socket that dropped without a word (a killed page, a lost network) shows as
    /// reconnecting for this long, then as gone; a return within the grace still comes back.
    pub away_after: Duration,
}

pub struct Room {
    pub id: String,
    limits: Limits,
    members: BTreeMap<String, Member>,
    /// Which member a socket is, so a message from one of a class of thousands is not a scan
    /// of the members. A hint only: `identity_of` checks it against `members`, which stays
    /// the one owner of who holds which socket.
    by_conn: HashMap<ConnId, String>,
    /// Identities that were let in once: after a reload they go straight back in.
    admitted: HashSet<String>,
    /// Identities a host removed: they may not come back.
    removed: HashSet<String>,
    /// A host gave (or took) the right to publish: it outlasts a reload, unlike the token's.
    floor: HashMap<String, bool>,
    recording: Option<RecState>,
    /// The chat so far (the last `CHAT_KEPT`), for those who reload or come later: the room
    /// owns it for its life and nothing writes it anywhere (it may name the patient).
    chat: std::collections::VecDeque<ChatLine>,
    /// The consultation is under way: it was live when someone joined, or a host came in
    /// (which starts it). From then on invited members come straight in; those who came
    /// before it wait in the lobby until a host admits them.
    live: bool,
    /// A start is on its way (the recorder is being set up).
    recording_starting: bool,
    /// What the case panel shows (issue 15).
    case: super::caseview::CasePanel,
}

#[derive(Clone, Debug)]
pub struct JoinRequest {
    pub conn: ConnId,
    pub identity: String,
    pub name: String,
    pub grants: Grants,
    /// The client's hello `id`, echoed in the server's hello.
    pub hello_id: String,
    /// The consultation is under way; early arrivals (before it is live) wait in the lobby.
    pub live: bool,
    /// The consultation lets early arrivals straight in (its `auto_admit` setting).
    pub auto_admit: bool,
    /// Came through a guest link: waits in the lobby until a host admits them, always.
    pub guest: bool,
    /// An encoder publishing by WHIP (`rtc::whip`): shown as a device, not a person.
    pub encoder: bool,
}

#[derive(Debug, PartialEq)]
pub enum JoinRefused {
    Full,
    Removed,
    /// The room task was retiring; ask again.
    Retry,
}

impl Room {
    pub fn new(id: String, limits: Limits) -> Self {
        Self {
            id,
            limits,
            members: BTreeMap::new(),
            by_conn: HashMap::new(),
            admitted: HashSet::new(),
            removed: HashSet::new(),
            floor: HashMap::new(),
            recording: None,
            recording_starting: false,
            chat: std::collections::VecDeque::new(),
            live: false,
            case: super::caseview::CasePanel::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// The joined members `viewer` is shown.
    fn visible_to(&self, viewer: &str) -> Vec<ParticipantInfo> {
        let Some(v) = self.members.get(viewer) else { return Vec::new() };
        self.members
            .iter()
            .filter(|(id, m)| m.listed() && v.sees(viewer, id, !m.in_audience()))
            .map(|(_, m)| m.info.clone())
            .collect()
    }

    fn lobby(&self) -> Vec<ParticipantInfo> {
        self.members.values().filter(|m| m.state == JoinState::Lobby).map(|m| m.info.clone()).collect()
    }

    /// To every connected, joined member except `except`.
    fn broadcast(&self, msg: &ServerMessage, except: Option<&str>, out: &mut Vec<Output>) {
        for (id, m) in &self.members {
            if m.state == JoinState::Joined
                && Some(id.as_str()) != except
                && let Some(c) = m.conn
            {
                out.push(Output::Send(c, msg.clone()));
            }
        }
    }

    /// A message about member `subject` (`public` unless in the audience), to every connected
    /// joined member who is shown that member, except `except`.
    fn tell_about(
        &self,
        subject: &str,
        public: bool,
        msg: &ServerMessage,
        except: Option<&str>,
        out: &mut Vec<Output>,
    ) {
        for (id, m) in &self.members {
            if m.state == JoinState::Joined
                && Some(id.as_str()) != except
                && m.sees(id, subject, public)
                && let Some(c) = m.conn
            {
                out.push(Output::Send(c, msg.clone()));
            }
        }
    }

    /// Member `subject` changed (presence, hand, floor, rights); before it they were `was_public`.
    /// Whoever saw them and still does is told the change; whoever sees them only now (the
    /// floor given to a trainee) is told they joined; whoever no longer does (the floor taken)
    /// that they went back to the audience. The member hears it too if `to_self` (the floor
    /// and rights: its session passes them on to the SFU).
    fn announce_change(&self, subject: &str, was_public: bool, to_self: bool, out: &mut Vec<Output>) {
        let Some(s) = self.members.get(subject).filter(|s| s.listed()) else { return };
        let public = !s.in_audience();
        for (id, m) in &self.members {
            if m.state != JoinState::Joined || (id == subject && !to_self) {
                continue;
            }
            let Some(c) = m.conn else { continue };
            let msg = match (m.sees(id, subject, was_public), m.sees(id, subject, public)) {
                (true, true) => ServerMessage::ParticipantUpdated { participant: s.info.clone() },
                (false, true) => ServerMessage::ParticipantJoined { participant: s.info.clone() },
                (true, false) => {
                    ServerMessage::ParticipantLeft { participant_id: subject.to_owned(), reason: LeaveReason::Audience }
                }
                (false, false) => continue,
            };
            out.push(Output::Send(c, msg));
        }
    }

    fn is_public(&self, id: &str) -> bool {
        self.members.get(id).is_some_and(|m| !m.in_audience())
    }

    fn to_hosts(&self, msg: &ServerMessage, out: &mut Vec<Output>) {
        for m in self.members.values() {
            if m.grants.room_admin
                && m.state == JoinState::Joined
                && let Some(c) = m.conn
            {
                out.push(Output::Send(c, msg.clone()));
            }
        }
    }

    fn announce_joined(&self, identity: &str, out: &mut Vec<Output>) {
        if let Some(m) = self.members.get(identity)
            && !m.grants.hidden
        {
            let joined = ServerMessage::ParticipantJoined { participant: m.info.clone() };
            self.tell_about(identity, !m.in_audience(), &joined, Some(identity), out);
        }
    }

    fn hello(&self, identity: &str, resumed: bool, id: &str) -> Option<ServerMessage> {
        let m = self.members.get(identity)?;
        let joined = m.state == JoinState::Joined;
        Some(ServerMessage::Hello {
            id: id.to_owned(),
            version: PROTOCOL_VERSION,
            room: self.id.clone(),
            you: m.info.clone(),
            state: m.state,
            resumed,
            participants: if joined { self.visible_to(identity) } else { Vec::new() },
            lobby: if joined && m.grants.room_admin { self.lobby() } else { Vec::new() },
        })
    }

    pub fn join(&mut self, mut req: JoinRequest) -> Result<Vec<Output>, JoinRefused> {
        let mut out = Vec::new();
        if let Some(allowed) = self.floor.get(&req.identity) {
            req.grants.can_publish = *allowed;
        }
        if self.removed.contains(&req.identity) {
            return Err(JoinRefused::Removed);
        }
        if let Some(m) = self.members.get_mut(&req.identity) {
            // Same identity again: a reload or a new network. It takes over the old socket.
            let was_public = !m.in_audience();
            if let Some(old) = m.conn.replace(req.conn)
                && old != req.conn
            {
                out.push(Output::Close(
                    old,
                    Some(ServerMessage::error(None, "replaced", "this identity connected again elsewhere")),
                ));
            }
            m.grants = req.grants;
            m.info.name = req.name;
            m.info.host = req.grants.room_admin;
            m.info.can_publish = req.grants.can_publish;
            m.disconnected_at = None;
            m.info.presence = Presence::Online;
            // The others were told this member had gone: to them it is a new arrival.
            let was_away = std::mem::take(&mut m.away);
            if let Some(h) = self.hello(&req.identity, true, &req.hello_id) {
                out.push(Output::Send(req.conn, h));
            }
            if self.members.get(&req.identity).is_some_and(|m| m.state == JoinState::Joined) {
                self.catch_up(&req.identity, req.conn, &mut out);
            }
            // Others learn of the new presence and of any change in name or rights.
            if was_away {
                self.announce_joined(&req.identity, &mut out);
            } else {
                self.announce_change(&req.identity, was_public, false, &mut out);
            }
            out.push(Output::Audit { actor: req.identity, action: "rejoin", target: None });
            return Ok(out);
        }
        if self.members.len() >= self.limits.max_participants {
            return Err(JoinRefused::Full);
        }
        let early = !req.live && !self.live && !req.auto_admit;
        let waits = !req.grants.room_admin && !self.admitted.contains(&req.identity) && (req.guest || early);
        if req.live {
            self.live = true;
        } else if req.grants.room_admin && !self.live {
            self.live = true;
            out.push(Output::Start { by: req.identity.clone() });
        }
        let state = if waits { JoinState::Lobby } else { JoinState::Joined };
        if !waits {
            self.admitted.insert(req.identity.clone());
        }
        let info = ParticipantInfo {
            id: req.identity.clone(),
            name: req.name,
            host: req.grants.room_admin,
            can_publish: req.grants.can_publish,
            presence: Presence::Online,
            hand_raised: false,
            guest: req.guest,
            encoder: req.encoder,
        };
        if let Some(old) = self.members.get(&req.identity).and_then(|m| m.conn) {
            self.by_conn.remove(&old);
        }
        self.by_conn.insert(req.conn, req.identity.clone());
        self.members.insert(
            req.identity.clone(),
            Member {
                info: info.clone(),
                grants: req.grants,
                state,
                conn: Some(req.conn),
                disconnected_at: None,
                away: false,
            },
        );
        if let Some(h) = self.hello(&req.identity, false, &req.hello_id) {
            out.push(Output::Send(req.conn, h));
        }
        if state == JoinState::Joined {
            self.catch_up(&req.identity, req.conn, &mut out);
        }
        match state {
            JoinState::Joined => self.announce_joined(&req.identity, &mut out),
            JoinState::Lobby => self.to_hosts(&ServerMessage::LobbyWaiting { participant: info }, &mut out),
        }
        out.push(Output::Audit {
            actor: req.identity,
            action: if waits { "lobby_wait" } else { "join" },
            target: None,
        });
        Ok(out)
    }

    /// Takes a member out of the room: their socket is told who did it (`by`) and closed, and
    /// the others (or, for someone in the lobby, the hosts) learn they are gone. Whether there
    /// was such a member.
    fn take_out(&mut self, identity: &str, by: &str, out: &mut Vec<Output>) -> bool {
        let Some(m) = self.members.remove(identity) else { return false };
        if let Some(c) = m.conn {
            self.by_conn.remove(&c);
            out.push(Output::Close(c, Some(ServerMessage::Removed { by: by.to_owned() })));
        }
        let participant_id = identity.to_owned();
        if m.state == JoinState::Joined {
            let left = ServerMessage::ParticipantLeft { participant_id, reason: LeaveReason::Removed };
            self.tell_about(identity, !m.in_audience(), &left, None, out);
        } else {
            self.to_hosts(&ServerMessage::LobbyLeft { participant_id }, out);
        }
        true
    }

    /// The account behind `identity` may now do only `grants` here, or nothing at all (a
    /// reschedule replaced them, an admin disabled them or changed their role). Rights only
    /// shrink this way: more comes with a new token from `/join`.
    pub fn revise(&mut self, identity: &str, grants: Option<Grants>) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(grants) = grants else {
            // Not added to `removed`: invited again, they may come back with a new token.
            if self.take_out(identity, "system", &mut out) {
                self.admitted.remove(identity);
                out.push(Output::Audit {
                    actor: "system".into(),
                    action: "rights_revoked",
                    target: Some(identity.into()),
                });
            }
            return out;
        };
        let Some(m) = self.members.get_mut(identity) else { return out };
        let narrowed = crate::consult::rights::narrow(m.grants, grants);
        if narrowed == m.grants {
            return out;
        }
        let (was_public, was_host) = (!m.in_audience(), m.grants.room_admin);
        m.grants = narrowed;
        m.info.host = narrowed.room_admin;
        m.info.can_publish &= narrowed.can_publish;
        let conn = m.conn.filter(|_| m.state == JoinState::Joined);
        // The participant hears it too: its session passes the right on to the SFU.
        self.announce_change(identity, was_public, true, &mut out);
        if was_host
            && !narrowed.room_admin
            && let Some(c) = conn
        {
            // No longer a host, they no longer see the audience.
            for (id, a) in &self.members {
                if id != identity && a.listed() && a.in_audience() {
                    let left =
                        ServerMessage::ParticipantLeft { participant_id: id.clone(), reason: LeaveReason::Audience };
                    out.push(Output::Send(c, left));
                }
            }
        }
        out.push(Output::Audit { actor: "system".into(), action: "rights_narrowed", target: Some(identity.into()) });
        out
    }

    fn identity_of(&self, conn: ConnId) -> Option<String> {
        let holds = |id: &String| self.members.get(id).is_some_and(|m| m.conn == Some(conn));
        match self.by_conn.get(&conn) {
            Some(id) if holds(id) => Some(id.clone()),
            // Not noted (or no longer true): the members decide.
            _ => self.members.iter().find(|(_, m)| m.conn == Some(conn)).map(|(id, _)| id.clone()),
        }
    }

    /// A request from a connected socket.
    pub fn message(&mut self, conn: ConnId, msg: ClientMessage) -> Vec<Output> {
        let mut out = Vec::new();
        let req_id = msg.id().to_owned();
        let err = |code: &'static str, text: &str| Output::Send(conn, ServerMessage::error(Some(&req_id), code, text));
        let ack = Output::Send(conn, ServerMessage::Ack { id: req_id.clone() });
        let Some(me) = self.identity_of(conn) else {
            return vec![Output::Close(
                conn,
                Some(ServerMessage::error(Some(&req_id), "not_in_room", "this socket is no longer in the room")),
            )];
        };
        let (my_state, my_grants) = match self.members.get(&me) {
            Some(m) => (m.state, m.grants),
            None => return out,
        };
        if my_state == JoinState::Lobby && !matches!(msg, ClientMessage::Leave { .. } | ClientMessage::Ping { .. }) {
            return vec![err("in_lobby", "wait until a host admits you")];
        }
        match msg {
            ClientMessage::Hello { .. } => out.push(err("already_joined", "hello was already sent on this socket")),
            ClientMessage::Ping { id } => out.push(Output::Send(conn, ServerMessage::Pong { id })),
            ClientMessage::Chat { to: Some(_), to_hosts: true, .. } => {
                out.push(err("invalid_message", "a message goes to one participant or to the hosts, not both"));
            }
            ClientMessage::Chat { text, to, to_hosts, .. } => {
                if !my_grants.can_publish_data {
                    out.push(err("forbidden", "your token does not allow sending messages"));
                } else if text.trim().is_empty() {
                    out.push(err("invalid_message", "empty chat message"));
                } else if crate::text::forbidden_char(&text, crate::text::TextKind::Prose).is_some() {
                    out.push(err(
                        "invalid_characters",
                        "chat messages may not contain control, zero-width or direction-changing characters",
                    ));
                } else if text.chars().count() > self.limits.chat_chars {
                    out.push(err(
                        "message_too_long",
                        &format!("chat messages are limited to {} characters", self.limits.chat_chars),
                    ));
                } else {
                    let from_name = self.members.get(&me).map(|m| m.info.name.clone()).unwrap_or_default();
                    let line = ChatLine {
                        from: me.clone(),
                        from_name,
                        text,
                        to: to.clone(),
                        to_hosts,
                        at: jiff::Timestamp::now(),
                    };
                    let chat = ServerMessage::Chat(line.clone());
                    match to {
                        Some(target) => match self.members.get(&target) {
                            Some(t) if t.state == JoinState::Joined => {
                                if let Some(c) = t.conn {
                                    out.push(Output::Send(c, chat.clone()));
                                }
                                if target != me {
                                    out.push(Output::Send(conn, chat));
                                }
                                self.keep(line);
                                out.push(ack);
                            }
                            _ => out.push(err("unknown_participant", "no such participant in the room")),
                        },
                        // A question reaches the hosts there now, and those who join later
                        // read it in their history.
                        None if to_hosts => {
                            self.to_hosts(&chat, &mut out);
                            // A host asking is among the hosts already.
                            if !my_grants.room_admin {
                                out.push(Output::Send(conn, chat));
                            }
                            self.keep(line);
                            out.push(ack);
                        }
                        None => {
                            self.broadcast(&chat, None, &mut out);
                            self.keep(line);
                            out.push(ack);
                        }
                    }
                }
            }
            ClientMessage::RaiseHand { raised, .. } => {
                if let Some(m) = self.members.get_mut(&me) {
                    m.info.hand_raised = raised;
                    let public = !m.in_audience();
                    self.announce_change(&me, public, true, &mut out);
                }
                out.push(ack);
            }
            ClientMessage::Admit { .. } | ClientMessage::AdmitAll { .. } | ClientMessage::Decline { .. }
                if !my_grants.room_admin =>
            {
                out.push(err("forbidden", "only a host may admit or decline"));
            }
            ClientMessage::Admit { participant, .. } => {
                if self.admit(&me, &participant, &mut out) {
                    out.push(ack);
                } else {
                    out.push(err("unknown_participant", "no one by that id waits in the lobby"));
                }
            }
            // A class of trainees who came before the start: let them all in at once.
            ClientMessage::AdmitAll { .. } => {
                let waiting: Vec<String> = self
                    .members
                    .iter()
                    .filter(|(_, m)| m.state == JoinState::Lobby)
                    .map(|(id, _)| id.clone())
                    .collect();
                for participant in waiting {
                    self.admit(&me, &participant, &mut out);
                }
                out.push(ack);
            }
            ClientMessage::Decline { participant, .. } => match self.members.get(&participant) {
                Some(m) if m.state == JoinState::Lobby => {
                    if let Some(c) = m.conn {
                        self.by_conn.remove(&c);
                        out.push(Output::Close(c, Some(ServerMessage::Declined)));
                    }
                    self.members.remove(&participant);
                    self.to_hosts(&ServerMessage::LobbyLeft { participant_id: participant.clone() }, &mut out);
                    out.push(Output::Audit { actor: me, action: "decline", target: Some(participant) });
                    out.push(ack);
                }
                _ => out.push(err("unknown_participant", "no one by that id waits in the lobby")),
            },
            ClientMessage::Remove { participant, .. } => {
                if !my_grants.room_admin {
                    out.push(err("forbidden", "only a host may remove a participant"));
                } else if participant == me {
                    out.push(err("invalid_message", "use leave to leave the room"));
                } else if self.take_out(&participant, &me, &mut out) {
                    self.removed.insert(participant.clone());
                    out.push(Output::Audit { actor: me, action: "remove", target: Some(participant) });
                    out.push(ack);
                } else {
                    out.push(err("unknown_participant", "no such participant in the room"));
                }
            }
            ClientMessage::SetCanPublish { participant, allowed, .. } => {
                // Anyone may give the floor back (a trainee asked to speak who declines); only
                // a host gives it, or takes it from someone else.
                let declining = participant == me && !allowed;
                if !my_grants.room_admin && !declining {
                    out.push(err("forbidden", "only a host may give or take the floor"));
                } else if let Some(m) =
                    self.members.get_mut(&participant).filter(|m| m.state == JoinState::Joined && !m.grants.hidden)
                {
                    let was_public = !m.in_audience();
                    m.grants.can_publish = allowed;
                    m.info.can_publish = allowed;
                    self.floor.insert(participant.clone(), allowed);
                    // The participant hears it too: its session passes the right on to the SFU.
                    self.announce_change(&participant, was_public, true, &mut out);
                    out.push(Output::Audit {
                        action: if declining {
                            "floor_declined"
                        } else if allowed {
                            "floor_given"
                        } else {
                            "floor_taken"
                        },
                        actor: me,
                        target: Some(participant),
                    });
                    out.push(ack);
                } else {
                    out.push(err("unknown_participant", "no such participant in the room"));
                }
            }
            ClientMessage::MuteParticipant { participant, .. } => {
                if !my_grants.room_admin {
                    out.push(err("forbidden", "only a host may mute others"));
                } else if let Some(m) =
                    self.members.get(&participant).filter(|m| m.state == JoinState::Joined && !m.grants.hidden)
                {
                    if let Some(c) = m.conn {
                        out.push(Output::Send(c, ServerMessage::MuteRequested { by: me.clone() }));
                    }
                    out.push(Output::Audit { actor: me, action: "mute_request", target: Some(participant) });
                    out.push(ack);
                } else {
                    out.push(err("unknown_participant", "no such participant in the room"));
                }
            }
            ClientMessage::StartRecording { id } => {
                if !my_grants.can_record {
                    out.push(err("forbidden", "you may not record this consultation"));
                } else if self.recording.is_some() || self.recording_starting {
                    out.push(err("already_recording", "the consultation is already being recorded"));
                } else {
                    self.recording_starting = true;
                    out.push(Output::StartRecording { conn: Some(conn), request: Some(id), by: me });
                }
            }
            ClientMessage::StopRecording { id } => {
                if !my_grants.can_record {
                    out.push(err("forbidden", "you may not record this consultation"));
                } else if self.recording.is_none() {
                    out.push(err("not_recording", "the consultation is not being recorded"));
                } else {
                    out.push(Output::StopRecording { conn: Some(conn), request: Some(id), by: me });
                }
            }
            ClientMessage::RecordingConsent { consent, .. } => {
                if self.recording.is_none() {
                    out.push(err("not_recording", "the consultation is not being recorded"));
                } else {
                    let name = self.members.get(&me).map(|m| m.info.name.clone()).unwrap_or_default();
                    self.to_hosts(
                        &ServerMessage::RecordingConsent { participant: me.clone(), name, consent },
                        &mut out,
                    );
                    out.push(Output::Audit {
                        actor: me.clone(),
                        action: if consent { "recording_consent" } else { "recording_decline" },
                        target: self.recording.as_ref().map(|r| r.id.clone()),
                    });
                    if !consent && let Some(r) = self.recording.as_mut() {
                        r.excluded.insert(me.clone());
                        out.push(Output::ExcludeFromRecording { participant: me });
                        let status = ServerMessage::Recording { status: self.recording_status() };
                        self.broadcast(&status, None, &mut out);
                    }
                    out.push(ack);
                }
            }
            ClientMessage::EndConsultation { id } => {
                if my_grants.room_admin {
                    out.push(Output::EndRequested { conn, request: id, by: me });
                } else {
                    out.push(err("forbidden", "only a host may end the consultation"));
                }
            }
            ClientMessage::Publish { .. }
            | ClientMessage::SubscribeAnswer { .. }
            | ClientMessage::Trickle { .. }
            | ClientMessage::SetLayer { .. }
            | ClientMessage::Unpublish { .. }
            | ClientMessage::Mute { .. } => {
                // The session hands media messages to the SFU; they never reach the room.
                out.push(err("invalid_message", "media messages are not room messages"));
            }
            msg @ (ClientMessage::CaseShow { .. }
            | ClientMessage::CaseClose { .. }
            | ClientMessage::CasePresenter { .. }
            | ClientMessage::CasePointer { .. }
            | ClientMessage::CaseMark { .. }
            | ClientMessage::CaseClear { .. }) => self.case_request(conn, &me, my_grants, msg, &mut out),
            ClientMessage::Leave { .. } => {
                out.push(ack);
                out.extend(self.drop_member(&me, LeaveReason::Left));
                out.push(Output::Close(conn, None));
            }
        }
        out
    }

    fn drop_member(&mut self, identity: &str, reason: LeaveReason) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(say) = self.case.left(identity) {
            self.tell_case(say, identity, &mut out);
        }
        if let Some(m) = self.members.remove(identity) {
            if let Some(c) = m.conn {
                self.by_conn.remove(&c);
            }
            match m.state {
                JoinState::Joined if !m.grants.hidden && !m.away => self.tell_about(
                    identity,
                    !m.in_audience(),
                    &ServerMessage::ParticipantLeft { participant_id: identity.to_owned(), reason },
                    None,
                    &mut out,
                ),
                JoinState::Joined => {}
                JoinState::Lobby => {
                    self.to_hosts(&ServerMessage::LobbyLeft { participant_id: identity.to_owned() }, &mut out)
                }
            }
            out.push(Output::Audit {
                actor: identity.to_owned(),
                action: if reason == LeaveReason::Timeout { "leave_timeout" } else { "leave" },
                target: None,
            });
        }
        out
    }

    /// The SFU measured a new link quality for the member on socket `conn`: told to those who
    /// are shown that member (the SFU tells only the member's own session, so who hears it is
    /// the room's rule, and a trainee's link in a class of hundreds reaches the hosts alone).
    pub fn quality(&self, conn: ConnId, quality: huizhen_sfu::Quality) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(me) = self.identity_of(conn) else { return out };
        let Some(m) = self.members.get(&me).filter(|m| m.state == JoinState::Joined) else { return out };
        let msg = ServerMessage::ConnectionQuality { participant: me.clone(), quality };
        if m.grants.hidden {
            out.push(Output::Send(conn, msg));
        } else {
            self.tell_about(&me, !m.in_audience(), &msg, None, &mut out);
        }
        out
    }

    /// The socket closed without `leave`. Joined members keep their place for the grace period,
    /// unless the client said it was going away (a closed page): then it has left, and the
    /// others see so at once instead of a "reconnecting" ghost for the whole grace period.
    pub fn disconnected(&mut self, conn: ConnId, going_away: bool, now: Instant) -> Vec<Output> {
        let Some(id) = self.identity_of(conn) else {
            return Vec::new();
        };
        let lobby = self.members.get(&id).is_some_and(|m| m.state == JoinState::Lobby);
        if lobby || going_away {
            return self.drop_member(&id, LeaveReason::Left);
        }
        self.by_conn.remove(&conn);
        if let Some(m) = self.members.get_mut(&id) {
            m.conn = None;
            m.disconnected_at = Some(now);
            m.info.presence = Presence::Reconnecting;
        }
        let mut out = Vec::new();
        let public = self.is_public(&id);
        self.announce_change(&id, public, false, &mut out);
        out
    }

    /// Tells the others who has been gone for `away_after`, and drops members whose grace
    /// period ran out.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let away_after = self.limits.away_after;
        let newly_away: Vec<(String, bool)> = self
            .members
            .iter_mut()
            .filter(|(_, m)| {
                !m.away && m.disconnected_at.is_some_and(|t| now.saturating_duration_since(t) >= away_after)
            })
            .map(|(id, m)| {
                m.away = true;
                (id.clone(), m.grants.hidden, !m.in_audience())
            })
            .filter(|(_, hidden, _)| !hidden)
            .map(|(id, _, public)| (id, public))
            .collect();
        for (id, public) in newly_away {
            let left = ServerMessage::ParticipantLeft { participant_id: id.clone(), reason: LeaveReason::Timeout };
            self.tell_about(&id, public, &left, None, &mut out);
        }
        let grace = self.limits.reconnect_grace;
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.disconnected_at.is_some_and(|t| now.saturating_duration_since(t) >= grace))
            .map(|(id, _)| id.clone())
            .collect();
        out.extend(gone.iter().flat_map(|id| self.drop_member(id, LeaveReason::Timeout)));
        out
    }

    /// The consultation is over: tell everyone and close every socket.
    pub fn end(&mut self, by: &str) -> Vec<Output> {
        let mut out = Vec::new();
        for (_, m) in std::mem::take(&mut self.members) {
            if let Some(c) = m.conn {
                out.push(Output::Close(c, Some(ServerMessage::Ended { by: by.to_owned() })));
            }
        }
        out
    }

    fn recording_status(&self) -> RecordingStatus {
        match &self.recording {
            Some(r) => RecordingStatus {
                active: true,
                recording: Some(r.id.clone()),
                by: Some(r.by.clone()),
                started_at: Some(r.started_at),
                excluded: r.excluded.iter().cloned().collect(),
            },
            None => {
                RecordingStatus { active: false, recording: None, by: None, started_at: None, excluded: Vec::new() }
            }
        }
    }

    /// What a participant coming into the room proper (joined, admitted or back after a
    /// reload) is told at once: the recording, if one runs (and they are asked), and the chat
    /// so far that they may read.
    fn catch_up(&self, who: &str, conn: ConnId, out: &mut Vec<Output>) {
        if self.recording.is_some() {
            out.push(Output::Send(conn, ServerMessage::Recording { status: self.recording_status() }));
        }
        if self.case.view.is_some() {
            out.push(Output::Send(conn, self.case_state()));
        }
        let host = self.members.get(who).is_some_and(|m| m.grants.room_admin);
        let messages: Vec<ChatLine> = self.chat.iter().filter(|l| l.readable_by(who, host)).cloned().collect();
        if !messages.is_empty() {
            out.push(Output::Send(conn, ServerMessage::ChatHistory { messages }));
        }
    }

    fn case_state(&self) -> ServerMessage {
        ServerMessage::CaseState {
            view: self.case.view.clone(),
            presenter: self.case.presenter.clone(),
            marks: self.case.marks.clone(),
        }
    }

    /// What the case panel has to say, said to those it concerns.
    fn tell_case(&self, say: super::caseview::Say, me: &str, out: &mut Vec<Output>) {
        use super::caseview::Say;
        match say {
            Say::State => self.broadcast(&self.case_state(), None, out),
            Say::Pointer { participant, color, at } => {
                let (x, y) = (at.map(|p| p[0]), at.map(|p| p[1]));
                self.broadcast(&ServerMessage::CasePointer { participant, color, x, y }, Some(me), out)
            }
            Say::Mark(mark) => self.broadcast(&ServerMessage::CaseMark { mark }, None, out),
        }
    }

    /// A case panel request from `me`: answered (a pointer only when refused) and told.
    fn case_request(&mut self, conn: ConnId, me: &str, grants: Grants, msg: ClientMessage, out: &mut Vec<Output>) {
        let req = msg.id().to_owned();
        let host = grants.room_admin;
        let quiet = matches!(msg, ClientMessage::CasePointer { .. });
        let said = if !grants.can_publish_data {
            Err(("forbidden", "your token does not allow sending messages"))
        } else {
            match msg {
                ClientMessage::CaseShow { view, .. } => self.case.show(me, host, view),
                ClientMessage::CaseClose { .. } => self.case.close(me, host),
                ClientMessage::CasePresenter { participant, .. } => {
                    if self.members.get(&participant).is_some_and(|m| m.state == JoinState::Joined && m.conn.is_some())
                    {
                        self.case.hand_over(me, host, &participant)
                    } else {
                        Err(("unknown_participant", "no one by that id is in the room"))
                    }
                }
                ClientMessage::CasePointer { x, y, .. } => match (x, y) {
                    (Some(x), Some(y)) => self.case.point(me, Some([x, y])),
                    (None, None) => self.case.point(me, None),
                    _ => Err(("invalid_message", "x and y come together")),
                },
                ClientMessage::CaseMark { mark, .. } => self.case.mark(me, mark),
                ClientMessage::CaseClear { .. } => self.case.clear(me, host),
                _ => Err(("invalid_message", "not a case panel message")),
            }
        };
        match said {
            Ok(say) => {
                if !quiet {
                    out.push(Output::Send(conn, ServerMessage::Ack { id: req }));
                }
                self.tell_case(say, me, out);
            }
            Err((code, text)) => out.push(Output::Send(conn, ServerMessage::error(Some(&req), code, text))),
        }
    }

    /// Lets `participant` in from the lobby, as host `by`; false if they were not waiting.
    fn admit(&mut self, by: &str, participant: &str, out: &mut Vec<Output>) -> bool {
        let Some(m) = self.members.get_mut(participant).filter(|m| m.state == JoinState::Lobby) else {
            return false;
        };
        m.state = JoinState::Joined;
        let c = m.conn;
        self.admitted.insert(participant.to_owned());
        if let Some(c) = c {
            out.push(Output::Send(c, ServerMessage::Admitted { participants: self.visible_to(participant) }));
            self.catch_up(participant, c, out);
        }
        self.announce_joined(participant, out);
        self.to_hosts(&ServerMessage::LobbyLeft { participant_id: participant.to_owned() }, out);
        out.push(Output::Audit { actor: by.to_owned(), action: "admit", target: Some(participant.to_owned()) });
        true
    }

    fn keep(&mut self, line: ChatLine) {
        if self.chat.len() == CHAT_KEPT {
            self.chat.pop_front();
        }
        self.chat.push_back(line);
    }

    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// A `required` recording starts as soon as someone who may record is in the room, on
    /// their behalf.
    pub fn start_required(&mut self) -> Option<Output> {
        if self.recording.is_some() || self.recording_starting {
            return None;
        }
        let by = self
            .members
            .iter()
            .find(|(_, m)| m.grants.can_record && m.state == JoinState::Joined && m.conn.is_some())
            .map(|(id, _)| id.clone())?;
        self.recording_starting = true;
        Some(Output::StartRecording { conn: None, request: None, by })
    }

    /// The recorder is running: everyone learns it (and is asked for consent).
    pub fn recording_started(&mut self, id: String, by: String, started_at: jiff::Timestamp) -> Vec<Output> {
        let mut out = Vec::new();
        self.recording_starting = false;
        self.recording = Some(RecState { id: id.clone(), by: by.clone(), started_at, excluded: BTreeSet::new() });
        let status = ServerMessage::Recording { status: self.recording_status() };
        self.broadcast(&status, None, &mut out);
        out.push(Output::Audit { actor: by, action: "recording_start", target: Some(id) });
        out
    }

    pub fn recording_not_started(&mut self) {
        self.recording_starting = false;
    }

    /// A recording the room had to start (policy `required`) could not: hosts learn why.
    pub fn recording_start_failed(&mut self, code: &str, message: &str) -> Vec<Output> {
        self.recording_starting = false;
        let mut out = Vec::new();
        self.to_hosts(&ServerMessage::RecordingFailed { code: code.to_owned(), message: message.to_owned() }, &mut out);
        out.push(Output::Audit { actor: "system".into(), action: "recording_failed", target: None });
        out
    }

    pub fn recording_stopped(&mut self, by: &str) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(r) = self.recording.take() {
            let status = ServerMessage::Recording { status: self.recording_status() };
            self.broadcast(&status, None, &mut out);
            out.push(Output::Audit { actor: by.to_owned(), action: "recording_stop", target: Some(r.id) });
        }
        out
    }

    /// The recorder stopped by itself: everyone sees it off, hosts learn why.
    pub fn recording_failed(&mut self, code: &str, message: &str) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(r) = self.recording.take() {
            let status = ServerMessage::Recording { status: self.recording_status() };
            self.broadcast(&status, None, &mut out);
            self.to_hosts(
                &ServerMessage::RecordingFailed { code: code.to_owned(), message: message.to_owned() },
                &mut out,
            );
            out.push(Output::Audit { actor: "system".into(), action: "recording_failed", target: Some(r.id) });
        }
        out
    }

    /// Server shutdown: close every socket with a reason; the room state goes with the process.
    pub fn shutdown(&mut self) -> Vec<Output> {
        self.close_all("server shutting down")
    }

    /// Another node holds this room now (issue 16): everyone here reconnects through `/join`,
    /// which names that node.
    pub fn moved(&mut self) -> Vec<Output> {
        self.close_all("the room moved to another node")
    }

    fn close_all(&mut self, reason: &str) -> Vec<Output> {
        let mut out = Vec::new();
        for (_, m) in std::mem::take(&mut self.members) {
            if let Some(c) = m.conn {
                out.push(Output::Close(c, Some(ServerMessage::Closing { reason: reason.into() })));
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn room() -> Room {
        Room::new(
            "r".into(),
            Limits {
                max_participants: 3,
                chat_chars: 10,
                reconnect_grace: Duration::from_secs(30),
                away_after: Duration::from_secs(5),
            },
        )
    }
    fn grants(admin: bool) -> Grants {
        Grants {
            can_publish: true,
            can_subscribe: true,
            can_publish_data: true,
            room_admin: admin,
            ..Grants::default()
        }
    }
    fn join(r: &mut Room, conn: ConnId, id: &str, admin: bool, live: bool) -> Vec<Output> {
        r.join(JoinRequest {
            conn,
            identity: id.into(),
            name: id.into(),
            grants: grants(admin),
            hello_id: "h".into(),
            live,
            auto_admit: false,
            guest: false,
            encoder: false,
        })
        .unwrap()
    }
    fn chat(r: &mut Room, conn: ConnId, text: &str, to: Option<&str>, to_hosts: bool) -> Vec<Output> {
        r.message(conn, ClientMessage::Chat { id: "c".into(), text: text.into(), to: to.map(Into::into), to_hosts })
    }
    fn history(out: &[Output], conn: ConnId) -> Vec<String> {
        sent_to(out, conn)
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::ChatHistory { messages } => Some(messages.iter().map(|l| l.text.clone()).collect()),
                _ => None,
            })
            .next()
            .unwrap_or_default()
    }

    /// Issue 14: chat survives a reload for the room's life, and a question sent before any
    /// host was there reaches the host who comes.
    #[test]
    fn the_chat_so_far_reaches_those_who_come_back_or_come_later() {
        let mut r = Room::new(
            "r".into(),
            Limits {
                max_participants: 5,
                chat_chars: 100,
                reconnect_grace: Duration::from_secs(30),
                away_after: Duration::from_secs(5),
            },
        );
        join(&mut r, 1, "a", false, true);
        join(&mut r, 2, "b", false, true);
        chat(&mut r, 1, "hello all", None, false);
        chat(&mut r, 1, "just for b", Some("b"), false);
        // No host yet: the question is taken (acked), shown to its sender, and kept.
        let out = chat(&mut r, 2, "a question", None, true);
        assert!(sent_to(&out, 2).iter().any(|m| matches!(m, ServerMessage::Ack { .. })));
        assert_eq!(sent_to(&out, 1).len(), 0, "another participant does not read a question to the hosts");
        let out = chat(&mut r, 2, "both", Some("a"), true);
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Error { code: "invalid_message", .. }));
        // The host comes: the public message and the question, not the private one.
        let out = join(&mut r, 3, "host", true, true);
        assert_eq!(history(&out, 3), ["hello all", "a question"]);
        // A question now reaches the host at once.
        let out = chat(&mut r, 1, "second question", None, true);
        assert!(sent_to(&out, 3).iter().any(|m| matches!(m, ServerMessage::Chat(l) if l.to_hosts)));
        assert_eq!(sent_to(&out, 2).len(), 0);
        // b reloads: its own messages, the public one and the one to it, none of a's question.
        let out = join(&mut r, 4, "b", false, true);
        assert_eq!(history(&out, 4), ["hello all", "just for b", "a question"]);
        // Someone waiting in the lobby (before any host came) reads nothing until admitted.
        let mut early = room();
        let out = join(&mut early, 1, "late", false, false);
        assert_eq!(history(&out, 1), Vec::<String>::new());
        join(&mut early, 2, "host", true, false);
        chat(&mut early, 2, "welcome", None, false);
        let out = early.message(2, ClientMessage::Admit { id: "x".into(), participant: "late".into() });
        assert_eq!(history(&out, 1), ["welcome"]);
        // The room keeps the last CHAT_KEPT.
        for i in 0..CHAT_KEPT {
            chat(&mut r, 1, &format!("m{i}"), None, false);
        }
        let out = join(&mut r, 6, "a", false, true);
        let h = history(&out, 6);
        assert_eq!((h.len(), h[0].as_str()), (CHAT_KEPT, "m0"));
    }

    fn sent_to(out: &[Output], conn: ConnId) -> Vec<&ServerMessage> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(c, m) if *c == conn => Some(m),
                Output::Close(c, Some(m)) if *c == conn => Some(m),
                _ => None,
            })
            .collect()
    }

    /// A socket speaks for its member only while it is that member's socket: after a reload
    /// (a new socket for the same identity) or a drop, the old one is no one.
    #[test]
    fn a_socket_is_its_member_only_while_it_holds_the_place() {
        let not_in_room =
            |out: &[Output], conn| matches!(sent_to(out, conn)[..], [ServerMessage::Error { code: "not_in_room", .. }]);
        let acked = |out: &[Output], conn| sent_to(out, conn).iter().any(|m| matches!(m, ServerMessage::Ack { .. }));
        let mut r = room();
        join(&mut r, 1, "host", true, true);
        join(&mut r, 2, "doc", false, true);
        assert!(acked(&chat(&mut r, 2, "a", None, false), 2));
        join(&mut r, 3, "doc", false, true);
        assert!(not_in_room(&chat(&mut r, 2, "b", None, false), 2), "the socket the reload replaced");
        assert!(acked(&chat(&mut r, 3, "c", None, false), 3));
        r.disconnected(3, false, Instant::now());
        assert!(not_in_room(&chat(&mut r, 3, "d", None, false), 3), "a dropped socket");
        join(&mut r, 4, "doc", false, true);
        assert!(acked(&chat(&mut r, 4, "e", None, false), 4));
        assert!(acked(&chat(&mut r, 1, "f", None, false), 1));
        assert!(not_in_room(&chat(&mut r, 9, "g", None, false), 9), "a socket never joined");
    }

    #[test]
    fn early_arrival_waits_until_a_host_admits() {
        let mut r = Room::new(
            "r".into(),
            Limits {
                max_participants: 5,
                chat_chars: 10,
                reconnect_grace: Duration::from_secs(30),
                away_after: Duration::from_secs(5),
            },
        );
        // Before the consultation is under way, those who come wait in the lobby.
        let out = join(&mut r, 2, "doc", false, false);
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Hello { state: JoinState::Lobby, .. }));
        assert!(!out.iter().any(|o| matches!(o, Output::Start { .. })));
        join(&mut r, 5, "early", false, false);
        let out = r.message(2, ClientMessage::Chat { id: "c".into(), text: "hi".into(), to: None, to_hosts: false });
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Error { code: "in_lobby", .. }));
        // The first host comes: the consultation starts (the shell commits it), the host sees
        // who waits, and they still wait for the host to let them in.
        let out = join(&mut r, 1, "host", true, false);
        assert!(out.iter().any(|o| matches!(o, Output::Start { by } if by == "host")));
        match sent_to(&out, 1)[0] {
            ServerMessage::Hello { lobby, .. } => assert_eq!(lobby.len(), 2),
            m => panic!("{m:?}"),
        }
        let out = r.message(1, ClientMessage::Admit { id: "a".into(), participant: "doc".into() });
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Admitted { .. }));
        // Only hosts admit.
        let out = r.message(2, ClientMessage::Admit { id: "a".into(), participant: "early".into() });
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Error { code: "forbidden", .. }));
        // Once it is under way, an invited member comes straight in; a second host starts
        // nothing again.
        let out = join(&mut r, 4, "late", false, false);
        assert!(matches!(sent_to(&out, 4)[0], ServerMessage::Hello { state: JoinState::Joined, .. }));
        let out = join(&mut r, 6, "host2", true, false);
        assert!(!out.iter().any(|o| matches!(o, Output::Start { .. })));
        // A reload after admission goes straight back in.
        let out = r.disconnected(2, false, Instant::now());
        assert!(matches!(sent_to(&out, 1)[0], ServerMessage::ParticipantUpdated { .. }));
        let out = join(&mut r, 3, "doc", false, false);
        assert!(matches!(sent_to(&out, 3)[0], ServerMessage::Hello { state: JoinState::Joined, resumed: true, .. }));
    }

    #[test]
    fn a_host_admits_everyone_waiting_at_once() {
        let mut r = Room::new(
            "r".into(),
            Limits {
                max_participants: 5,
                chat_chars: 10,
                reconnect_grace: Duration::from_secs(30),
                away_after: Duration::from_secs(5),
            },
        );
        join(&mut r, 2, "t1", false, false);
        join(&mut r, 3, "t2", false, false);
        join(&mut r, 1, "host", true, false);
        let out = r.message(2, ClientMessage::AdmitAll { id: "x".into() });
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Error { code: "in_lobby", .. }));
        let out = r.message(1, ClientMessage::AdmitAll { id: "a".into() });
        for conn in [2, 3] {
            assert!(matches!(sent_to(&out, conn)[0], ServerMessage::Admitted { .. }));
        }
        let admits = out.iter().filter(|o| matches!(o, Output::Audit { action: "admit", .. })).count();
        assert_eq!(admits, 2, "each admission is audited");
        assert!(sent_to(&out, 1).iter().any(|m| matches!(m, ServerMessage::Ack { .. })));
        // Nobody waits now: it is still answered.
        let out = r.message(1, ClientMessage::AdmitAll { id: "b".into() });
        assert!(matches!(sent_to(&out, 1)[0], ServerMessage::Ack { .. }));
    }

    #[test]
    fn a_live_consultation_starts_nothing() {
        let mut r = room();
        let out = join(&mut r, 1, "host", true, true);
        assert!(!out.iter().any(|o| matches!(o, Output::Start { .. })));
        let out = join(&mut r, 2, "doc", false, true);
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Hello { state: JoinState::Joined, .. }));
    }

    #[test]
    fn grace_period_then_timeout() {
        let mut r = room();
        join(&mut r, 1, "a", false, true);
        join(&mut r, 2, "b", false, true);
        let t0 = Instant::now();
        let out = r.disconnected(2, false, t0);
        assert!(matches!(sent_to(&out, 1)[0], ServerMessage::ParticipantUpdated { .. }), "reconnecting");
        assert!(r.tick(t0 + Duration::from_secs(4)).is_empty());
        // After `away_after` the others are told b left; b keeps a place for the grace.
        let out = r.tick(t0 + Duration::from_secs(5));
        assert!(matches!(sent_to(&out, 1)[0], ServerMessage::ParticipantLeft { reason: LeaveReason::Timeout, .. }));
        assert!(r.tick(t0 + Duration::from_secs(6)).is_empty(), "told once");
        assert_eq!(r.len(), 2);
        // At the end of the grace b is dropped without a second word to the others.
        let out = r.tick(t0 + Duration::from_secs(30));
        assert!(sent_to(&out, 1).is_empty());
        assert!(out.iter().any(|o| matches!(o, Output::Audit { action: "leave_timeout", .. })));
        assert_eq!(r.len(), 1);
    }

    /// Issue 14: a page killed without a close frame shows as reconnecting for 5 s, then as
    /// gone; if it comes back within the grace, the others see it arrive again.
    #[test]
    fn a_member_gone_quiet_is_announced_gone_and_comes_back_as_new() {
        let mut r = room();
        join(&mut r, 1, "a", false, true);
        join(&mut r, 2, "b", false, true);
        let t0 = Instant::now();
        r.disconnected(2, false, t0);
        r.tick(t0 + Duration::from_secs(5));
        let out = join(&mut r, 3, "b", false, true);
        assert!(matches!(sent_to(&out, 1)[0], ServerMessage::ParticipantJoined { .. }));
        match sent_to(&out, 3)[0] {
            ServerMessage::Hello { resumed, participants, .. } => {
                assert!(*resumed);
                assert_eq!(participants.len(), 2);
            }
            other => panic!("expected hello, got {other:?}"),
        }
        // A quick return (within `away_after`) is only a change of presence.
        r.disconnected(3, false, t0 + Duration::from_secs(10));
        let out = join(&mut r, 4, "b", false, true);
        assert!(matches!(sent_to(&out, 1)[0], ServerMessage::ParticipantUpdated { .. }));
    }

    #[test]
    fn a_page_going_away_has_left_at_once() {
        let mut r = room();
        join(&mut r, 1, "a", false, true);
        join(&mut r, 2, "b", false, true);
        let out = r.disconnected(2, true, Instant::now());
        assert!(matches!(sent_to(&out, 1)[0], ServerMessage::ParticipantLeft { reason: LeaveReason::Left, .. }));
        assert_eq!(r.len(), 1, "no place kept for a grace period");
    }

    #[test]
    fn limits_and_removal() {
        let mut r = room();
        join(&mut r, 1, "h", true, true);
        join(&mut r, 2, "a", false, true);
        join(&mut r, 3, "b", false, true);
        let refused = r.join(JoinRequest {
            conn: 4,
            identity: "c".into(),
            name: "c".into(),
            grants: grants(false),
            hello_id: "h".into(),
            live: true,
            auto_admit: false,
            guest: false,
            encoder: false,
        });
        assert_eq!(refused.err(), Some(JoinRefused::Full));
        let out =
            r.message(2, ClientMessage::Chat { id: "x".into(), text: "0123456789x".into(), to: None, to_hosts: false });
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Error { code: "message_too_long", .. }));
        let out = r.message(1, ClientMessage::Remove { id: "x".into(), participant: "b".into() });
        assert!(matches!(sent_to(&out, 3)[0], ServerMessage::Removed { .. }));
        let again = r.join(JoinRequest {
            conn: 5,
            identity: "b".into(),
            name: "b".into(),
            grants: grants(false),
            hello_id: "h".into(),
            live: true,
            auto_admit: false,
            guest: false,
            encoder: false,
        });
        assert_eq!(again.err(), Some(JoinRefused::Removed));
    }

    #[test]
    fn a_host_gives_the_floor_and_it_outlasts_a_reload() {
        let mut r = room();
        join(&mut r, 1, "host", true, true);
        let watcher = Grants { can_publish: false, ..grants(false) };
        let req = |conn| JoinRequest {
            conn,
            identity: "trainee".into(),
            name: "t".into(),
            grants: watcher,
            hello_id: "h".into(),
            live: true,
            auto_admit: false,
            guest: false,
            encoder: false,
        };
        r.join(req(2)).unwrap();
        let give = ClientMessage::SetCanPublish { id: "f".into(), participant: "trainee".into(), allowed: true };
        let out = r.message(2, give.clone());
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Error { code: "forbidden", .. }));
        let out = r.message(1, give);
        // Everyone, the trainee included, hears of it: the trainee's session passes it to the SFU.
        for conn in [1, 2] {
            assert!(sent_to(&out, conn).iter().any(|m| matches!(m,
                ServerMessage::ParticipantUpdated { participant } if participant.id == "trainee" && participant.can_publish)));
        }
        assert!(out.iter().any(|o| matches!(o, Output::Audit { action: "floor_given", .. })));
        // The trainee may give it back (asked to speak, they decline), and nothing more.
        let take_hosts = ClientMessage::SetCanPublish { id: "d".into(), participant: "host".into(), allowed: false };
        let out = r.message(2, take_hosts);
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Error { code: "forbidden", .. }));
        let decline = ClientMessage::SetCanPublish { id: "d".into(), participant: "trainee".into(), allowed: false };
        let out = r.message(2, decline);
        assert!(sent_to(&out, 1).iter().any(|m| matches!(m,
            ServerMessage::ParticipantUpdated { participant } if participant.id == "trainee" && !participant.can_publish)));
        assert!(out.iter().any(|o| matches!(o, Output::Audit { action: "floor_declined", .. })));
        let out =
            r.message(2, ClientMessage::SetCanPublish { id: "g".into(), participant: "trainee".into(), allowed: true });
        assert!(
            matches!(sent_to(&out, 2)[0], ServerMessage::Error { code: "forbidden", .. }),
            "giving it is the host's"
        );
        let out = r
            .message(1, ClientMessage::SetCanPublish { id: "f2".into(), participant: "trainee".into(), allowed: true });
        assert!(out.iter().any(|o| matches!(o, Output::Audit { action: "floor_given", .. })));
        // A reload brings a token without the right; the room remembers the host's decision.
        let out = r.join(req(3)).unwrap();
        assert!(matches!(sent_to(&out, 3)[0], ServerMessage::Hello { you, .. } if you.can_publish));
        let out = r.message(1, ClientMessage::MuteParticipant { id: "m".into(), participant: "trainee".into() });
        assert!(matches!(sent_to(&out, 3)[0], ServerMessage::MuteRequested { by } if by == "host"));
        let out = r.message(1, ClientMessage::MuteParticipant { id: "m".into(), participant: "nobody".into() });
        assert!(matches!(sent_to(&out, 1)[0], ServerMessage::Error { code: "unknown_participant", .. }));
    }

    #[test]
    fn recording_needs_the_grant_everyone_is_told_and_a_decline_excludes() {
        let mut r = room();
        let recorder = Grants { can_record: true, ..grants(true) };
        r.join(JoinRequest {
            conn: 1,
            identity: "host".into(),
            name: "h".into(),
            grants: recorder,
            hello_id: "h".into(),
            live: true,
            auto_admit: false,
            guest: false,
            encoder: false,
        })
        .unwrap();
        join(&mut r, 2, "doc", false, true);
        let out = r.message(2, ClientMessage::StartRecording { id: "s".into() });
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Error { code: "forbidden", .. }));
        let out = r.message(1, ClientMessage::StartRecording { id: "s".into() });
        assert!(matches!(&out[0], Output::StartRecording { by, .. } if by == "host"));
        let out = r.message(1, ClientMessage::StartRecording { id: "s2".into() });
        assert!(matches!(sent_to(&out, 1)[0], ServerMessage::Error { code: "already_recording", .. }));
        let out = r.recording_started("rec1".into(), "host".into(), jiff::Timestamp::now());
        for conn in [1, 2] {
            assert!(matches!(sent_to(&out, conn)[0], ServerMessage::Recording { status } if status.active));
        }
        // Someone coming in later is told at once.
        let out = join(&mut r, 3, "late", false, true);
        assert!(sent_to(&out, 3).iter().any(|m| matches!(m, ServerMessage::Recording { status } if status.active)));
        let out = r.message(2, ClientMessage::RecordingConsent { id: "c".into(), consent: false });
        assert!(out.iter().any(|o| matches!(o, Output::ExcludeFromRecording { participant } if participant == "doc")));
        assert!(out.iter().any(|o| matches!(o, Output::Audit { action: "recording_decline", .. })));
        assert!(sent_to(&out, 1).iter().any(|m| matches!(m, ServerMessage::RecordingConsent { consent: false, .. })));
        assert!(
            sent_to(&out, 2).iter().any(
                |m| matches!(m, ServerMessage::Recording { status } if status.excluded == vec!["doc".to_string()])
            )
        );
        let out = r.recording_stopped("host");
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Recording { status } if !status.active));
        let out = r.message(2, ClientMessage::RecordingConsent { id: "c".into(), consent: true });
        assert!(matches!(sent_to(&out, 2)[0], ServerMessage::Error { code: "not_recording", .. }));
    }

    /// A room with space for a class.
    fn class_room() -> Room {
        Room::new(
            "r".into(),
            Limits {
                max_participants: 100,
                chat_chars: 100,
                reconnect_grace: Duration::from_secs(30),
                away_after: Duration::from_secs(5),
            },
        )
    }

    fn member(r: &mut Room, conn: ConnId, id: &str, grants: Grants) -> Vec<Output> {
        r.join(JoinRequest {
            conn,
            identity: id.into(),
            name: id.into(),
            grants,
            hello_id: "h".into(),
            live: true,
            auto_admit: false,
            guest: false,
            encoder: false,
        })
        .unwrap()
    }

    fn listed(out: &[Output], conn: ConnId) -> Vec<String> {
        match sent_to(out, conn).first() {
            Some(ServerMessage::Hello { participants, .. }) => participants.iter().map(|p| p.id.clone()).collect(),
            other => panic!("no hello: {other:?}"),
        }
    }

    /// Who among `conns` was sent a message matching `f`.
    fn told(out: &[Output], conns: &[ConnId], f: impl Fn(&ServerMessage) -> bool) -> Vec<ConnId> {
        conns.iter().copied().filter(|c| sent_to(out, *c).into_iter().any(&f)).collect()
    }

    /// Issue 12: in a teaching broadcast a trainee is shown to the hosts, and to everyone only
    /// while holding the floor, so one join into a class of hundreds is not told to every
    /// trainee (nor is each trainee's link quality).
    #[test]
    fn a_trainee_is_shown_to_the_hosts_and_to_all_only_with_the_floor() {
        let mut r = class_room();
        let trainee = Grants { can_publish: false, audience: true, ..grants(false) };
        member(&mut r, 1, "surgeon", grants(true));
        member(&mut r, 2, "assistant", grants(false));
        member(&mut r, 3, "t1", trainee);
        let out = member(&mut r, 4, "t2", trainee);
        let everyone = [1, 2, 3, 4];
        // t2's list: the presenters and itself, not the other trainee.
        assert_eq!(listed(&out, 4), ["assistant", "surgeon", "t2"]);
        let joined = |id: &'static str| move |m: &ServerMessage| matches!(m, ServerMessage::ParticipantJoined { participant } if participant.id == id);
        assert_eq!(told(&out, &everyone, joined("t2")), [1], "only the host hears of a trainee coming");
        // The host's list (after a reload) holds everyone.
        let out = member(&mut r, 5, "surgeon", grants(true));
        assert_eq!(listed(&out, 5), ["assistant", "surgeon", "t1", "t2"]);
        let everyone = [5, 2, 3, 4];
        // A raised hand and a trainee's link reach the host and the trainee.
        let updated = |id: &'static str| move |m: &ServerMessage| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == id);
        let out = r.message(3, ClientMessage::RaiseHand { id: "h".into(), raised: true });
        assert_eq!(told(&out, &everyone, updated("t1")), [5, 3]);
        let quality = |id: &'static str| move |m: &ServerMessage| matches!(m, ServerMessage::ConnectionQuality { participant, .. } if participant == id);
        assert_eq!(told(&r.quality(3, huizhen_sfu::Quality::Poor), &everyone, quality("t1")), [5, 3]);
        assert_eq!(told(&r.quality(2, huizhen_sfu::Quality::Good), &everyone, quality("assistant")), everyone);
        // The floor given: the others who did not see t1 are told it joined; taken back, that
        // it went back to the audience.
        let floor = |allowed| ClientMessage::SetCanPublish { id: "f".into(), participant: "t1".into(), allowed };
        let out = r.message(5, floor(true));
        assert_eq!(told(&out, &everyone, updated("t1")), [5, 3]);
        assert_eq!(told(&out, &everyone, joined("t1")), [2, 4]);
        let out = r.message(5, floor(false));
        assert_eq!(told(&out, &everyone, updated("t1")), [5, 3]);
        let back = |m: &ServerMessage| matches!(m, ServerMessage::ParticipantLeft { participant_id, reason: LeaveReason::Audience } if participant_id == "t1");
        assert_eq!(told(&out, &everyone, back), [2, 4]);
        // A trainee leaving is told to the host alone.
        let out = r.message(4, ClientMessage::Leave { id: "l".into() });
        let left = |m: &ServerMessage| matches!(m, ServerMessage::ParticipantLeft { participant_id, .. } if participant_id == "t2");
        assert_eq!(told(&out, &[5, 2, 3], left), [5]);
        // A host whose rights shrink (no longer a host of the teaching session) joins the
        // audience: it stops seeing the trainees, and the others stop seeing it.
        let out = r.revise("surgeon", Some(trainee));
        let t1_gone = |m: &ServerMessage| matches!(m, ServerMessage::ParticipantLeft { participant_id, reason: LeaveReason::Audience } if participant_id == "t1");
        assert_eq!(told(&out, &[5, 2, 3], t1_gone), [5]);
        let surgeon_gone = |m: &ServerMessage| matches!(m, ServerMessage::ParticipantLeft { participant_id, reason: LeaveReason::Audience } if participant_id == "surgeon");
        assert_eq!(told(&out, &[5, 2, 3], surgeon_gone), [2, 3]);
    }

    /// Without the audience grant (a consultation, a case discussion) everyone sees everyone:
    /// who is present at a consultation is never hidden from the others.
    #[test]
    fn without_an_audience_everyone_is_told_of_everyone() {
        let mut r = class_room();
        let observer = Grants { can_publish: false, ..grants(false) };
        member(&mut r, 1, "specialist", grants(true));
        member(&mut r, 2, "county", grants(false));
        let out = member(&mut r, 3, "observer", observer);
        assert_eq!(listed(&out, 3), ["county", "observer", "specialist"]);
        let joined = |m: &ServerMessage| matches!(m, ServerMessage::ParticipantJoined { participant } if participant.id == "observer");
        assert_eq!(told(&out, &[1, 2], joined), [1, 2]);
        let quality = |m: &ServerMessage| matches!(m, ServerMessage::ConnectionQuality { participant, .. } if participant == "observer");
        assert_eq!(told(&r.quality(3, huizhen_sfu::Quality::Poor), &[1, 2, 3], quality), [1, 2, 3]);
    }
}
