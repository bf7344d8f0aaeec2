//! The signaling wire format, version 1. Written up with examples in `docs/protocol.md`;
//! the tests below pin the JSON of every message, both directions.

pub use huizhen_sfu::{IceCandidate, PcTarget, TrackInfo};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub const PROTOCOL_VERSION: u32 = 1;
/// Client request ids are echoed back; bound them like everything else that comes in.
pub const MAX_ID_LEN: usize = 64;

/// Client → server. Every request carries an `id` its answer (`ack`, `pong` or `error`) echoes.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Must be the first message; `version` must equal the server's.
    Hello {
        id: String,
        version: u32,
    },
    Ping {
        id: String,
    },
    /// To everyone in the room, privately to one participant (`to`), or to the hosts
    /// (`to_hosts`: a question, kept for a host who is not there yet).
    Chat {
        id: String,
        text: String,
        #[serde(default)]
        to: Option<String>,
        #[serde(default)]
        to_hosts: bool,
    },
    RaiseHand {
        id: String,
        raised: bool,
    },
    /// Host only: let a participant waiting in the lobby in.
    Admit {
        id: String,
        participant: String,
    },
    /// Host only: let everyone waiting in the lobby in.
    AdmitAll {
        id: String,
    },
    /// Host only: turn a waiting participant away.
    Decline {
        id: String,
        participant: String,
    },
    /// Host only: put a participant out of the room; they cannot come back with the same identity.
    Remove {
        id: String,
        participant: String,
    },
    /// Host only: give a participant the floor (a trainee asks a question) or take it back.
    /// Taking it stops everything the participant sends.
    SetCanPublish {
        id: String,
        participant: String,
        allowed: bool,
    },
    /// Host only: ask a participant to mute their microphone (a noisy site).
    MuteParticipant {
        id: String,
        participant: String,
    },
    /// Record grant only: start recording the room (everyone is told and asked for consent).
    StartRecording {
        id: String,
    },
    /// Record grant only: stop recording; the files are finalised in the background.
    StopRecording {
        id: String,
    },
    /// My answer to the recording: declining leaves my media out of it (hosts are told).
    RecordingConsent {
        id: String,
        consent: bool,
    },
    /// Host only: end the consultation for everyone.
    EndConsultation {
        id: String,
    },
    Leave {
        id: String,
    },
    /// Offer for the publish PeerConnection (client → server media); answered by `publish_answer`.
    Publish {
        id: String,
        sdp: String,
    },
    /// Answer to the server's latest `subscribe_offer`.
    SubscribeAnswer {
        id: String,
        sdp: String,
    },
    /// A local ICE candidate of the client's publish or subscribe connection; `null` (what a
    /// browser's `icecandidate` event hands over last) is the end of its candidates.
    Trickle {
        id: String,
        target: PcTarget,
        candidate: Option<IceCandidate>,
    },
    /// Which simulcast layer the client wants of a track (thumbnail: low, main view: high;
    /// off: nothing, e.g. audio only on a weak link).
    SetLayer {
        id: String,
        track: String,
        layer: LayerName,
    },
    /// Stop forwarding one of my tracks (the client also removes it from its connection).
    Unpublish {
        id: String,
        track: String,
    },
    /// Tell everyone one of my tracks is muted (or back); the track itself stays.
    Mute {
        id: String,
        track: String,
        muted: bool,
    },
    /// The presenter (or a host, who then presents) shows an attachment to everyone.
    CaseShow {
        id: String,
        view: super::caseview::CaseView,
    },
    /// The presenter or a host closes the case panel.
    CaseClose {
        id: String,
    },
    /// The presenter or a host passes the presenter role on.
    CasePresenter {
        id: String,
        participant: String,
    },
    /// Where I point on the image (`x`, `y` in 0..1), or no longer (`null`). Not answered
    /// when it succeeds: a pointer moves many times a second.
    CasePointer {
        id: String,
        x: Option<f64>,
        y: Option<f64>,
    },
    /// A mark I draw on the image shown.
    CaseMark {
        id: String,
        mark: super::caseview::MarkInput,
    },
    /// The presenter or a host wipes the marks.
    CaseClear {
        id: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerName {
    Low,
    Medium,
    High,
    Off,
}

impl LayerName {
    pub fn index(self) -> u8 {
        match self {
            LayerName::Low => 0,
            LayerName::Medium => 1,
            LayerName::High => 2,
            LayerName::Off => huizhen_sfu::forward::OFF,
        }
    }
}

impl ClientMessage {
    pub fn id(&self) -> &str {
        match self {
            ClientMessage::Hello { id, .. }
            | ClientMessage::Ping { id }
            | ClientMessage::Chat { id, .. }
            | ClientMessage::RaiseHand { id, .. }
            | ClientMessage::Admit { id, .. }
            | ClientMessage::AdmitAll { id }
            | ClientMessage::Decline { id, .. }
            | ClientMessage::Remove { id, .. }
            | ClientMessage::SetCanPublish { id, .. }
            | ClientMessage::MuteParticipant { id, .. }
            | ClientMessage::StartRecording { id }
            | ClientMessage::StopRecording { id }
            | ClientMessage::RecordingConsent { id, .. }
            | ClientMessage::EndConsultation { id }
            | ClientMessage::Leave { id }
            | ClientMessage::Publish { id, .. }
            | ClientMessage::SubscribeAnswer { id, .. }
            | ClientMessage::Trickle { id, .. }
            | ClientMessage::SetLayer { id, .. }
            | ClientMessage::Unpublish { id, .. }
            | ClientMessage::Mute { id, .. }
            | ClientMessage::CaseShow { id, .. }
            | ClientMessage::CaseClose { id }
            | ClientMessage::CasePresenter { id, .. }
            | ClientMessage::CasePointer { id, .. }
            | ClientMessage::CaseMark { id, .. }
            | ClientMessage::CaseClear { id } => id,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    /// The socket dropped; the participant keeps their place for the reconnect grace period.
    Reconnecting,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinState {
    Lobby,
    Joined,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParticipantInfo {
    pub id: String,
    pub name: String,
    pub host: bool,
    pub can_publish: bool,
    pub presence: Presence,
    pub hand_raised: bool,
    /// Came through a guest link: no account behind the name (shown as such).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub guest: bool,
    /// An operating-room encoder publishing by WHIP: a device, named by its label.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub encoder: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    Left,
    Removed,
    /// The socket did not come back within the reconnect grace period.
    Timeout,
    Ended,
    /// Still in the room, but back in a broadcast's audience (the floor was taken or given
    /// back): shown to the hosts only from now on.
    Audience,
}

/// Whether the room is being recorded, as every participant must be able to see at all times.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordingStatus {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// Who started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// Participants whose media is left out (they declined).
    pub excluded: Vec<String>,
}

/// One chat message as the room sends it, and keeps it for those who come back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatLine {
    pub from: String,
    pub from_name: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A question to the hosts.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub to_hosts: bool,
    pub at: Timestamp,
}

impl ChatLine {
    /// Whether `who` (a host or not) may read it.
    pub fn readable_by(&self, who: &str, host: bool) -> bool {
        if self.from == who {
            return true;
        }
        match &self.to {
            Some(to) => to == who,
            None => !self.to_hosts || host,
        }
    }
}

/// Server → client.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The case panel: what is shown (`null`: closed), by whom, and its marks. To everyone on
    /// every change, and to each participant coming in while something is shown.
    CaseState {
        view: Option<super::caseview::CaseView>,
        presenter: Option<String>,
        marks: Vec<super::caseview::Mark>,
    },
    /// Someone points (`x`, `y` in 0..1 of the image) or stopped pointing (`null`).
    CasePointer {
        participant: String,
        color: u8,
        x: Option<f64>,
        y: Option<f64>,
    },
    /// A new mark on the picture shown.
    CaseMark {
        mark: super::caseview::Mark,
    },
    Hello {
        /// Echoes the client's hello `id`.
        id: String,
        version: u32,
        room: String,
        you: ParticipantInfo,
        state: JoinState,
        /// True when this socket took over an identity already in the room (reload, new network).
        resumed: bool,
        /// Everyone visible in the room (empty while in the lobby).
        participants: Vec<ParticipantInfo>,
        /// Who waits in the lobby (hosts only; empty for others).
        lobby: Vec<ParticipantInfo>,
    },
    Ack {
        id: String,
    },
    Pong {
        id: String,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        code: &'static str,
        message: String,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantUpdated {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        participant_id: String,
        reason: LeaveReason,
    },
    /// To hosts: someone waits in the lobby.
    LobbyWaiting {
        participant: ParticipantInfo,
    },
    /// To hosts: a lobby entry is gone (admitted, declined or left).
    LobbyLeft {
        participant_id: String,
    },
    /// To the admitted participant: you are in; here is the room.
    Admitted {
        participants: Vec<ParticipantInfo>,
    },
    Declined,
    Removed {
        by: String,
    },
    /// To one participant: a host asks you to mute your microphone.
    MuteRequested {
        by: String,
    },
    /// The recording state: to everyone when it changes, and to each participant as they
    /// come in while it is on. `active: true` asks for `recording_consent`.
    Recording {
        #[serde(flatten)]
        status: RecordingStatus,
    },
    /// To hosts: a participant's answer to the recording.
    RecordingConsent {
        participant: String,
        name: String,
        consent: bool,
    },
    /// To hosts: the recording stopped by itself (disk full, write error); what was captured
    /// is kept.
    RecordingFailed {
        code: String,
        message: String,
    },
    Chat(ChatLine),
    /// After `hello` or `admitted`: the room's chat so far that this participant may read
    /// (it replaces what the client shows; the room keeps it for its life, in memory only).
    ChatHistory {
        messages: Vec<ChatLine>,
    },
    /// The consultation was ended for all; the socket closes after this.
    Ended {
        by: String,
    },
    /// The server is shutting down; reconnect later.
    Closing {
        reason: String,
    },
    PublishAnswer {
        id: String,
        sdp: String,
    },
    /// The server (re)offers the subscribe PeerConnection; answer with `subscribe_answer`.
    SubscribeOffer {
        sdp: String,
    },
    /// A server ICE candidate for the client's publish or subscribe connection.
    Trickle {
        target: PcTarget,
        candidate: IceCandidate,
    },
    TrackPublished {
        track: TrackInfo,
    },
    TrackUnpublished {
        track_id: String,
        participant: String,
    },
    TrackMuted {
        track_id: String,
        participant: String,
        muted: bool,
    },
    ConnectionQuality {
        participant: String,
        quality: huizhen_sfu::Quality,
    },
    ActiveSpeaker {
        participant: Option<String>,
    },
    /// This client's own downlink: video stopped because the link loses too much (`true`), or
    /// came back (`false`).
    AudioOnly {
        active: bool,
    },
    /// The server dropped this socket's media (connect timeout, failure); reconnect the socket
    /// (or publish again) to get it back.
    MediaClosed {
        reason: String,
    },
}

impl ServerMessage {
    pub fn error(id: Option<&str>, code: &'static str, message: impl Into<String>) -> Self {
        ServerMessage::Error { id: id.map(str::to_owned), code, message: message.into() }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The wire format is a contract with every client: these pin the JSON so that a change
    //! to it is always deliberate (and goes into docs/protocol.md with a version bump).
    use super::*;
    use serde_json::json;

    #[test]
    fn client_messages_parse_from_documented_json() {
        let m: ClientMessage = serde_json::from_value(json!({ "type": "hello", "id": "1", "version": 1 })).unwrap();
        assert_eq!(m, ClientMessage::Hello { id: "1".into(), version: 1 });
        let m: ClientMessage = serde_json::from_value(json!({ "type": "chat", "id": "2", "text": "hi" })).unwrap();
        assert_eq!(m, ClientMessage::Chat { id: "2".into(), text: "hi".into(), to: None, to_hosts: false });
        let m: ClientMessage =
            serde_json::from_value(json!({ "type": "admit", "id": "3", "participant": "u1" })).unwrap();
        assert_eq!(m, ClientMessage::Admit { id: "3".into(), participant: "u1".into() });
        let m: ClientMessage = serde_json::from_value(json!({ "type": "end_consultation", "id": "4" })).unwrap();
        assert_eq!(m, ClientMessage::EndConsultation { id: "4".into() });
        for bad in [
            json!({ "type": "chat", "id": "x", "text": "hi", "extra": 1 }),
            json!({ "type": "fly", "id": "x" }),
            json!({ "type": "chat", "text": "no id" }),
        ] {
            assert!(serde_json::from_value::<ClientMessage>(bad).is_err());
        }
    }

    /// Every client message, as docs/protocol.md writes it, parses to exactly this (issue 13
    /// item 17: 4 of 20 were pinned).
    #[test]
    fn every_client_message_parses_from_its_documented_json() {
        use ClientMessage as C;
        let s = |v: &str| v.to_owned();
        let candidate: IceCandidate = serde_json::from_value(
            json!({ "candidate": "candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0 }),
        )
        .unwrap();
        let cases: Vec<(serde_json::Value, ClientMessage)> = vec![
            (json!({ "type": "hello", "id": "1", "version": 1 }), C::Hello { id: s("1"), version: 1 }),
            (json!({ "type": "ping", "id": "p" }), C::Ping { id: s("p") }),
            (
                json!({ "type": "chat", "id": "c", "text": "影像已上传" }),
                C::Chat { id: s("c"), text: s("影像已上传"), to: None, to_hosts: false },
            ),
            (
                json!({ "type": "chat", "id": "c", "text": "私聊", "to": "u2" }),
                C::Chat { id: s("c"), text: s("私聊"), to: Some(s("u2")), to_hosts: false },
            ),
            (
                json!({ "type": "chat", "id": "q", "text": "请问", "to_hosts": true }),
                C::Chat { id: s("q"), text: s("请问"), to: None, to_hosts: true },
            ),
            (json!({ "type": "raise_hand", "id": "r", "raised": true }), C::RaiseHand { id: s("r"), raised: true }),
            (json!({ "type": "admit", "id": "a", "participant": "u1" }), C::Admit { id: s("a"), participant: s("u1") }),
            (json!({ "type": "admit_all", "id": "aa" }), C::AdmitAll { id: s("aa") }),
            (
                json!({ "type": "decline", "id": "d", "participant": "u1" }),
                C::Decline { id: s("d"), participant: s("u1") },
            ),
            (
                json!({ "type": "remove", "id": "x", "participant": "u1" }),
                C::Remove { id: s("x"), participant: s("u1") },
            ),
            (
                json!({ "type": "set_can_publish", "id": "f", "participant": "u1", "allowed": false }),
                C::SetCanPublish { id: s("f"), participant: s("u1"), allowed: false },
            ),
            (
                json!({ "type": "mute_participant", "id": "m", "participant": "u1" }),
                C::MuteParticipant { id: s("m"), participant: s("u1") },
            ),
            (json!({ "type": "start_recording", "id": "s" }), C::StartRecording { id: s("s") }),
            (json!({ "type": "stop_recording", "id": "t" }), C::StopRecording { id: s("t") }),
            (
                json!({ "type": "recording_consent", "id": "k", "consent": false }),
                C::RecordingConsent { id: s("k"), consent: false },
            ),
            (json!({ "type": "end_consultation", "id": "e" }), C::EndConsultation { id: s("e") }),
            (json!({ "type": "leave", "id": "l" }), C::Leave { id: s("l") }),
            (json!({ "type": "publish", "id": "p1", "sdp": "v=0…" }), C::Publish { id: s("p1"), sdp: s("v=0…") }),
            (
                json!({ "type": "subscribe_answer", "id": "s1", "sdp": "v=0…" }),
                C::SubscribeAnswer { id: s("s1"), sdp: s("v=0…") },
            ),
            (
                json!({ "type": "trickle", "id": "t1", "target": "publish",
                        "candidate": { "candidate": "candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0 } }),
                C::Trickle { id: s("t1"), target: PcTarget::Publish, candidate: Some(candidate) },
            ),
            (
                json!({ "type": "trickle", "id": "t2", "target": "subscribe", "candidate": null }),
                C::Trickle { id: s("t2"), target: PcTarget::Subscribe, candidate: None },
            ),
            (
                json!({ "type": "set_layer", "id": "y", "track": "alice/cam", "layer": "medium" }),
                C::SetLayer { id: s("y"), track: s("alice/cam"), layer: LayerName::Medium },
            ),
            (
                json!({ "type": "set_layer", "id": "y", "track": "alice/cam", "layer": "off" }),
                C::SetLayer { id: s("y"), track: s("alice/cam"), layer: LayerName::Off },
            ),
            (
                json!({ "type": "unpublish", "id": "u", "track": "screen" }),
                C::Unpublish { id: s("u"), track: s("screen") },
            ),
            (
                json!({ "type": "mute", "id": "mu", "track": "mic", "muted": true }),
                C::Mute { id: s("mu"), track: s("mic"), muted: true },
            ),
            (
                json!({ "type": "case_show", "id": "cs", "view": { "attachment": "a1", "image": 12, "window": "lung", "zoom": 2.0 } }),
                C::CaseShow {
                    id: s("cs"),
                    view: super::super::caseview::CaseView {
                        attachment: s("a1"),
                        image: 12,
                        frame: 0,
                        window: Some(s("lung")),
                        center: None,
                        width: None,
                        zoom: 2.0,
                        center_x: 0.5,
                        center_y: 0.5,
                    },
                },
            ),
            (json!({ "type": "case_close", "id": "cc" }), C::CaseClose { id: s("cc") }),
            (
                json!({ "type": "case_presenter", "id": "cp", "participant": "u2" }),
                C::CasePresenter { id: s("cp"), participant: s("u2") },
            ),
            (
                json!({ "type": "case_pointer", "id": "pt", "x": 0.25, "y": 0.5 }),
                C::CasePointer { id: s("pt"), x: Some(0.25), y: Some(0.5) },
            ),
            (
                json!({ "type": "case_mark", "id": "cm", "mark": { "kind": "arrow", "points": [[0.1, 0.2], [0.3, 0.4]] } }),
                C::CaseMark {
                    id: s("cm"),
                    mark: super::super::caseview::MarkInput {
                        kind: super::super::caseview::MarkKind::Arrow,
                        points: vec![[0.1, 0.2], [0.3, 0.4]],
                    },
                },
            ),
            (json!({ "type": "case_clear", "id": "cl" }), C::CaseClear { id: s("cl") }),
        ];
        let mut kinds = std::collections::BTreeSet::new();
        for (wire, want) in cases {
            let got: ClientMessage = serde_json::from_value(wire.clone()).unwrap_or_else(|e| panic!("{wire}: {e}"));
            assert_eq!(got, want, "{wire}");
            kinds.insert(wire["type"].as_str().unwrap().to_owned());
        }
        assert_eq!(kinds.len(), 27, "every client message type is pinned: {kinds:?}");
    }

    /// Every server message serialises to exactly this JSON.
    #[test]
    fn every_server_message_serialises_to_its_documented_json() {
        use ServerMessage as S;
        let s = |v: &str| v.to_owned();
        let at: Timestamp = "2026-03-05T02:14:07.512Z".parse().unwrap();
        let p = ParticipantInfo {
            id: s("u1"),
            name: s("李医生"),
            host: true,
            can_publish: false,
            presence: Presence::Reconnecting,
            hand_raised: true,
            guest: false,
            encoder: false,
        };
        let pj = json!({ "id": "u1", "name": "李医生", "host": true, "can_publish": false, "presence": "reconnecting", "hand_raised": true });
        let candidate: IceCandidate = serde_json::from_value(
            json!({ "candidate": "candidate:1 1 udp 1 192.0.2.7 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0 }),
        )
        .unwrap();
        let track = TrackInfo {
            id: s("alice/cam"),
            participant: s("alice"),
            kind: huizhen_sfu::TrackKind::Video,
            codec: s("video/VP8"),
            simulcast: true,
        };
        let cases: Vec<(ServerMessage, serde_json::Value)> = vec![
            (
                S::Hello {
                    id: s("h"),
                    version: 1,
                    room: s("c1"),
                    you: p.clone(),
                    state: JoinState::Joined,
                    resumed: true,
                    participants: vec![p.clone()],
                    lobby: vec![],
                },
                json!({ "type": "hello", "id": "h", "version": 1, "room": "c1", "you": pj, "state": "joined",
                        "resumed": true, "participants": [pj], "lobby": [] }),
            ),
            (S::Ack { id: s("a") }, json!({ "type": "ack", "id": "a" })),
            (S::Pong { id: s("p") }, json!({ "type": "pong", "id": "p" })),
            (S::error(None, "room_full", "full"), json!({ "type": "error", "code": "room_full", "message": "full" })),
            (
                S::ParticipantJoined { participant: p.clone() },
                json!({ "type": "participant_joined", "participant": pj }),
            ),
            (
                S::ParticipantUpdated { participant: p.clone() },
                json!({ "type": "participant_updated", "participant": pj }),
            ),
            (
                S::ParticipantLeft { participant_id: s("u1"), reason: LeaveReason::Removed },
                json!({ "type": "participant_left", "participant_id": "u1", "reason": "removed" }),
            ),
            (
                S::ParticipantLeft { participant_id: s("u1"), reason: LeaveReason::Audience },
                json!({ "type": "participant_left", "participant_id": "u1", "reason": "audience" }),
            ),
            (S::LobbyWaiting { participant: p.clone() }, json!({ "type": "lobby_waiting", "participant": pj })),
            (S::LobbyLeft { participant_id: s("u1") }, json!({ "type": "lobby_left", "participant_id": "u1" })),
            (S::Admitted { participants: vec![p.clone()] }, json!({ "type": "admitted", "participants": [pj] })),
            (S::Declined, json!({ "type": "declined" })),
            (S::Removed { by: s("system") }, json!({ "type": "removed", "by": "system" })),
            (S::MuteRequested { by: s("u2") }, json!({ "type": "mute_requested", "by": "u2" })),
            (
                S::Recording {
                    status: RecordingStatus {
                        active: true,
                        recording: Some(s("r1")),
                        by: Some(s("u2")),
                        started_at: Some(at),
                        excluded: vec![s("u3")],
                    },
                },
                json!({ "type": "recording", "active": true, "recording": "r1", "by": "u2",
                        "started_at": "2026-03-05T02:14:07.512Z", "excluded": ["u3"] }),
            ),
            (
                S::Recording {
                    status: RecordingStatus {
                        active: false,
                        recording: None,
                        by: None,
                        started_at: None,
                        excluded: vec![],
                    },
                },
                json!({ "type": "recording", "active": false, "excluded": [] }),
            ),
            (
                S::RecordingConsent { participant: s("u3"), name: s("王"), consent: false },
                json!({ "type": "recording_consent", "participant": "u3", "name": "王", "consent": false }),
            ),
            (
                S::RecordingFailed { code: s("disk_full"), message: s("no space") },
                json!({ "type": "recording_failed", "code": "disk_full", "message": "no space" }),
            ),
            (
                S::Chat(ChatLine {
                    from: s("u1"),
                    from_name: s("李医生"),
                    text: s("私聊"),
                    to: Some(s("u2")),
                    to_hosts: false,
                    at,
                }),
                json!({ "type": "chat", "from": "u1", "from_name": "李医生", "text": "私聊", "to": "u2",
                        "at": "2026-03-05T02:14:07.512Z" }),
            ),
            (
                S::Chat(ChatLine {
                    from: s("u1"),
                    from_name: s("李医生"),
                    text: s("hi"),
                    to: None,
                    to_hosts: false,
                    at,
                }),
                json!({ "type": "chat", "from": "u1", "from_name": "李医生", "text": "hi", "at": "2026-03-05T02:14:07.512Z" }),
            ),
            (
                S::ChatHistory {
                    messages: vec![ChatLine {
                        from: s("u3"),
                        from_name: s("学员"),
                        text: s("请问"),
                        to: None,
                        to_hosts: true,
                        at,
                    }],
                },
                json!({ "type": "chat_history", "messages": [{ "from": "u3", "from_name": "学员", "text": "请问",
                        "to_hosts": true, "at": "2026-03-05T02:14:07.512Z" }] }),
            ),
            (S::Ended { by: s("u2") }, json!({ "type": "ended", "by": "u2" })),
            (
                S::CaseState {
                    view: Some(super::super::caseview::CaseView {
                        attachment: s("a1"),
                        image: 3,
                        frame: 0,
                        window: Some(s("custom")),
                        center: Some(40.0),
                        width: Some(400.0),
                        zoom: 1.5,
                        center_x: 0.5,
                        center_y: 0.25,
                    }),
                    presenter: Some(s("u1")),
                    marks: vec![super::super::caseview::Mark {
                        id: 1,
                        participant: s("u2"),
                        color: 1,
                        kind: super::super::caseview::MarkKind::Circle,
                        points: vec![[0.5, 0.5], [0.6, 0.5]],
                    }],
                },
                json!({ "type": "case_state", "view": { "attachment": "a1", "image": 3, "frame": 0, "window": "custom",
                        "center": 40.0, "width": 400.0, "zoom": 1.5, "center_x": 0.5, "center_y": 0.25 },
                        "presenter": "u1",
                        "marks": [{ "id": 1, "participant": "u2", "color": 1, "kind": "circle", "points": [[0.5, 0.5], [0.6, 0.5]] }] }),
            ),
            (
                S::CaseState { view: None, presenter: None, marks: vec![] },
                json!({ "type": "case_state", "view": null, "presenter": null, "marks": [] }),
            ),
            (
                S::CasePointer { participant: s("u2"), color: 1, x: Some(0.25), y: Some(0.75) },
                json!({ "type": "case_pointer", "participant": "u2", "color": 1, "x": 0.25, "y": 0.75 }),
            ),
            (
                S::CaseMark {
                    mark: super::super::caseview::Mark {
                        id: 2,
                        participant: s("u1"),
                        color: 0,
                        kind: super::super::caseview::MarkKind::Line,
                        points: vec![[0.1, 0.1], [0.2, 0.3], [0.3, 0.2]],
                    },
                },
                json!({ "type": "case_mark", "mark": { "id": 2, "participant": "u1", "color": 0, "kind": "line",
                        "points": [[0.1, 0.1], [0.2, 0.3], [0.3, 0.2]] } }),
            ),
            (S::Closing { reason: s("shutdown") }, json!({ "type": "closing", "reason": "shutdown" })),
            (
                S::PublishAnswer { id: s("p1"), sdp: s("v=0…") },
                json!({ "type": "publish_answer", "id": "p1", "sdp": "v=0…" }),
            ),
            (S::SubscribeOffer { sdp: s("v=0…") }, json!({ "type": "subscribe_offer", "sdp": "v=0…" })),
            (
                S::Trickle { target: PcTarget::Subscribe, candidate },
                json!({ "type": "trickle", "target": "subscribe", "candidate": {
                    "candidate": "candidate:1 1 udp 1 192.0.2.7 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0,
                    "usernameFragment": null } }),
            ),
            (
                S::TrackPublished { track },
                json!({ "type": "track_published", "track": { "id": "alice/cam", "participant": "alice", "kind": "video",
                        "codec": "video/VP8", "simulcast": true } }),
            ),
            (
                S::TrackUnpublished { track_id: s("alice/screen"), participant: s("alice") },
                json!({ "type": "track_unpublished", "track_id": "alice/screen", "participant": "alice" }),
            ),
            (
                S::TrackMuted { track_id: s("alice/mic"), participant: s("alice"), muted: true },
                json!({ "type": "track_muted", "track_id": "alice/mic", "participant": "alice", "muted": true }),
            ),
            (
                S::ConnectionQuality { participant: s("bob"), quality: huizhen_sfu::Quality::Poor },
                json!({ "type": "connection_quality", "participant": "bob", "quality": "poor" }),
            ),
            (
                S::ActiveSpeaker { participant: Some(s("alice")) },
                json!({ "type": "active_speaker", "participant": "alice" }),
            ),
            (S::ActiveSpeaker { participant: None }, json!({ "type": "active_speaker", "participant": null })),
            (S::AudioOnly { active: true }, json!({ "type": "audio_only", "active": true })),
            (S::MediaClosed { reason: s("timeout") }, json!({ "type": "media_closed", "reason": "timeout" })),
        ];
        let mut kinds = std::collections::BTreeSet::new();
        for (msg, want) in cases {
            let got = serde_json::to_value(&msg).unwrap();
            assert_eq!(got, want, "{msg:?}");
            kinds.insert(want["type"].as_str().unwrap().to_owned());
        }
        assert_eq!(kinds.len(), 33, "every server message type is pinned: {kinds:?}");
    }

    #[test]
    fn server_messages_serialise_to_documented_json() {
        let p = ParticipantInfo {
            id: "u1".into(),
            name: "李医生".into(),
            host: false,
            can_publish: true,
            presence: Presence::Online,
            hand_raised: false,
            guest: false,
            encoder: false,
        };
        let hello = ServerMessage::Hello {
            id: "1".into(),
            version: 1,
            room: "c1".into(),
            you: p.clone(),
            state: JoinState::Lobby,
            resumed: false,
            participants: vec![],
            lobby: vec![],
        };
        assert_eq!(
            serde_json::to_value(&hello).unwrap(),
            json!({ "type": "hello", "id": "1", "version": 1, "room": "c1", "state": "lobby", "resumed": false,
                    "participants": [], "lobby": [],
                    "you": { "id": "u1", "name": "李医生", "host": false, "can_publish": true, "presence": "online", "hand_raised": false } })
        );
        assert_eq!(
            serde_json::to_value(ServerMessage::error(Some("7"), "rate_limited", "slow down")).unwrap(),
            json!({ "type": "error", "id": "7", "code": "rate_limited", "message": "slow down" })
        );
        assert_eq!(
            serde_json::to_value(ServerMessage::ParticipantLeft {
                participant_id: "u1".into(),
                reason: LeaveReason::Timeout
            })
            .unwrap(),
            json!({ "type": "participant_left", "participant_id": "u1", "reason": "timeout" })
        );
        assert_eq!(serde_json::to_value(ServerMessage::Declined).unwrap(), json!({ "type": "declined" }));
    }
}
