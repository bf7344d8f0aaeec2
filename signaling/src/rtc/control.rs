//! Control of rooms from any node (issue 16). A room lives on the node its sockets reached;
//! what the API decides about it (the consultation ended, someone's rights narrowed or
//! withdrawn, an account disabled) may be decided on another node. With several nodes on one
//! Redis each decision is published on one channel and every node applies it to the rooms it
//! holds; a node alone (the embedded store) applies it locally only (`Hub`).

use serde::{Deserialize, Serialize};

use crate::auth::Grants;
use crate::ids::ConsultationId;

/// A decision about rooms, as the hub applies it and the channel carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Control {
    /// The consultation ended through the API: its room ends for everyone.
    End { room: ConsultationId, by: String },
    /// What `identity` may still do in `room` (`None`: nothing; it is put out).
    Revise { room: ConsultationId, identity: String, grants: Option<Grants> },
    /// An account disabled or changed: its sockets close in every room.
    RevokeEverywhere { identity: String },
}

/// A decision on the channel, with the node that made it (which applied it already).
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    node: String,
    control: Control,
}

/// The channel between the nodes on one Redis.
pub struct RedisBus {
    client: ::redis::Client,
    conn: ::redis::aio::ConnectionManager,
    channel: String,
    node: String,
}

impl RedisBus {
    pub fn connect(url: &str, prefix: &str) -> Result<Self, ::redis::RedisError> {
        let client = ::redis::Client::open(url)?;
        let config = ::redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(2)));
        let conn = ::redis::aio::ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let node = uuid::Uuid::new_v4().simple().to_string();
        Ok(Self { client, conn, channel: format!("{prefix}room-control"), node })
    }

    /// Tells the other nodes. A decision Redis does not take is logged: the rooms on other
    /// nodes then learn it only when their members next ask (the sockets check the record).
    pub async fn publish(&self, control: &Control) {
        let msg = match serde_json::to_string(&Envelope { node: self.node.clone(), control: control.clone() }) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "room control not encoded");
                return;
            }
        };
        let mut conn = self.conn.clone();
        let sent: Result<i64, _> = ::redis::cmd("PUBLISH").arg(&self.channel).arg(msg).query_async(&mut conn).await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "room control not published to the other nodes");
        }
    }

    /// Applies what the other nodes decide, for as long as the hub lives; reconnects after
    /// Redis goes away.
    pub fn listen(self: std::sync::Arc<Self>, hub: super::hub::Hub) {
        tokio::spawn(async move {
            use futures_util::StreamExt;
            loop {
                match self.client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if let Err(e) = pubsub.subscribe(&self.channel).await {
                            tracing::warn!(error = %e, "room control channel not subscribed");
                        } else {
                            let mut messages = pubsub.on_message();
                            while let Some(msg) = messages.next().await {
                                let Ok(raw) = msg.get_payload::<String>() else { continue };
                                match serde_json::from_str::<Envelope>(&raw) {
                                    Ok(env) if env.node != self.node => hub.apply_local(&env.control).await,
                                    Ok(_) => {}
                                    Err(e) => tracing::warn!(error = %e, "room control not understood"),
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "room control channel unavailable"),
                }
                if hub.is_closed() {
                    return;
                }
                // Redis went away: try again shortly (decisions meanwhile reach local rooms only).
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_tagged_json() {
        let c = Control::Revise { room: ConsultationId("c1".into()), identity: "u1".into(), grants: None };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json, serde_json::json!({ "op": "revise", "room": "c1", "identity": "u1", "grants": null }));
        assert_eq!(serde_json::from_value::<Control>(json).unwrap(), c);
        let e = Control::End { room: ConsultationId("c1".into()), by: "u2".into() };
        assert_eq!(serde_json::to_value(&e).unwrap()["op"], "end");
    }
}
