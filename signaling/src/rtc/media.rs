//! Media messages on the signaling socket: handed to the SFU for this participant, and the
//! SFU's events turned into protocol messages. Media belongs to the socket: when it closes,
//! both PeerConnections close; a reconnecting client publishes again.

use huizhen_sfu::{MediaGrants, Participant, SfuEvent};

use super::protocol::{ClientMessage, ServerMessage};

pub fn is_media(m: &ClientMessage) -> bool {
    matches!(
        m,
        ClientMessage::Publish { .. }
            | ClientMessage::SubscribeAnswer { .. }
            | ClientMessage::Trickle { .. }
            | ClientMessage::SetLayer { .. }
            | ClientMessage::Unpublish { .. }
            | ClientMessage::Mute { .. }
    )
}

/// Media SDPs are a few kilobytes; anything far larger is not a browser's.
const MAX_SDP: usize = 64 * 1024;

pub async fn handle(media: Option<&Participant>, msg: ClientMessage) -> ServerMessage {
    let id = msg.id().to_owned();
    let Some(p) = media else {
        return ServerMessage::error(Some(&id), "media_not_ready", "media starts once you are admitted to the room");
    };
    let too_big = |sdp: &str| sdp.len() > MAX_SDP;
    let ack = || ServerMessage::Ack { id: id.clone() };
    let result = match msg {
        ClientMessage::Publish { sdp, .. } if too_big(&sdp) => {
            return ServerMessage::error(Some(&id), "invalid_sdp", "session description too large");
        }
        ClientMessage::Publish { sdp, .. } => match p.publish(sdp).await {
            Ok(answer) => return ServerMessage::PublishAnswer { id, sdp: answer },
            Err(e) => Err(e),
        },
        ClientMessage::SubscribeAnswer { sdp, .. } if too_big(&sdp) => {
            return ServerMessage::error(Some(&id), "invalid_sdp", "session description too large");
        }
        ClientMessage::SubscribeAnswer { sdp, .. } => p.subscribe_answer(sdp).await.map(|_| ack()),
        ClientMessage::Trickle { target, candidate: Some(candidate), .. } => {
            p.add_candidate(target, candidate).await.map(|_| ack())
        }
        // The end of the client's candidates: nothing to do for an ICE-lite server.
        ClientMessage::Trickle { candidate: None, .. } => Ok(ack()),
        ClientMessage::SetLayer { track, layer, .. } => p.set_layer(&track, layer.index()).await.map(|_| ack()),
        ClientMessage::Unpublish { track, .. } => p.unpublish(&track).await.map(|_| ack()),
        ClientMessage::Mute { track, muted, .. } => p.mute(&track, muted).await.map(|_| ack()),
        _ => return ServerMessage::error(Some(&id), "invalid_message", "not a media message"),
    };
    result.unwrap_or_else(|e| ServerMessage::error(Some(&id), e.code(), e.to_string()))
}

pub fn event(ev: SfuEvent) -> ServerMessage {
    match ev {
        SfuEvent::SubscribeOffer { sdp } => ServerMessage::SubscribeOffer { sdp },
        SfuEvent::IceCandidate { target, candidate } => ServerMessage::Trickle { target, candidate },
        SfuEvent::TrackPublished(track) => ServerMessage::TrackPublished { track },
        SfuEvent::TrackUnpublished { id, participant } => ServerMessage::TrackUnpublished { track_id: id, participant },
        SfuEvent::ActiveSpeaker { participant } => ServerMessage::ActiveSpeaker { participant },
        SfuEvent::ConnectionQuality { participant, quality } => {
            ServerMessage::ConnectionQuality { participant, quality }
        }
        SfuEvent::AudioOnly { active } => ServerMessage::AudioOnly { active },
        SfuEvent::TrackMuted { id, participant, muted } => {
            ServerMessage::TrackMuted { track_id: id, participant, muted }
        }
        SfuEvent::Closed { reason } => ServerMessage::MediaClosed { reason: reason.to_owned() },
    }
}

/// Carries out in the SFU what the room decided about member `me` (the room decides, the media
/// plane obeys): a host's mute holds their audio until they unmute themselves, and the floor
/// given or taken changes whether they may publish. Used by every kind of member's session
/// (a browser's socket, an encoder's WHIP session).
pub async fn obey(m: &ServerMessage, me: &str, room: &str, media: Option<&Participant>, grants: &mut MediaGrants) {
    let floor = match m {
        ServerMessage::Hello { you, .. } => Some(you.can_publish),
        ServerMessage::ParticipantUpdated { participant } if participant.id == me => Some(participant.can_publish),
        _ => None,
    };
    if matches!(m, ServerMessage::MuteRequested { .. })
        && let Some(p) = media
        && let Err(e) = p.hold_audio().await
    {
        tracing::warn!(room, participant = me, error = %e, "host mute not applied");
    }
    if let Some(allowed) = floor.filter(|a| *a != grants.publish) {
        grants.publish = allowed;
        if let Some(p) = media
            && let Err(e) = p.set_publish(allowed).await
        {
            tracing::warn!(room, participant = me, error = %e, "publish right not applied");
        }
    }
}
