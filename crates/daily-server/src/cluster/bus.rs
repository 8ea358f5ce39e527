//! The node-to-node bus: Redis pub/sub, one channel per node (`daily:node:{id}:bus`), for what
//! one node must make another do. Today one message: [`BusMessage::EndRoom`], sent when
//! `DELETE /v1/rooms/{name}` reaches a node other than the room's, so the call ends wherever it
//! runs, as on one server. LiveKit's nodes talk over Redis pub/sub the same way.
//!
//! Delivery is at most once (pub/sub keeps nothing for a subscriber that is reconnecting); the
//! room is gone from Redis either way, so its participants are ended at the latest when the
//! node restarts, and no new join can find it.

use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::{Cluster, ClusterError, KEY_PREFIX};
use crate::driver::Request;

/// What a node asks another to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusMessage {
    /// End the call in `room` (every participant gets `callEnded` with `reason`).
    EndRoom {
        /// The room's name.
        room: String,
        /// Why, as participants are told.
        reason: String,
    },
}

/// How long the subscriber waits before it reconnects after losing Redis.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

pub(crate) fn channel(node_id: &str) -> String {
    format!("{KEY_PREFIX}node:{node_id}:bus")
}

impl Cluster {
    /// Sends `msg` to node `to`. `Ok(false)` when no subscriber got it (the node is gone or
    /// reconnecting).
    pub(crate) async fn publish(&self, to: &str, msg: &BusMessage) -> Result<bool, ClusterError> {
        let json = serde_json::to_string(msg).map_err(|e| ClusterError::Redis(e.to_string()))?;
        let receivers: u64 = self.run(redis::cmd("PUBLISH").arg(channel(to)).arg(json)).await?;
        Ok(receivers > 0)
    }

    /// Listens on this node's channel until shutdown, carrying out what arrives; resubscribes
    /// after a Redis outage.
    pub(crate) async fn run_bus(self, cmds: mpsc::UnboundedSender<Request>, mut shutdown: watch::Receiver<bool>) {
        let name = channel(&self.id);
        loop {
            let session = async {
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.subscribe(&name).await?;
                let mut messages = pubsub.on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(payload) = msg.get_payload::<String>() else { continue };
                    match serde_json::from_str::<BusMessage>(&payload) {
                        Ok(BusMessage::EndRoom { room, reason }) => {
                            tracing::info!(%room, "room deleted through another node; ending its call");
                            let _ = cmds.send(crate::sfu::Command::EndRoom { room, reason }.into());
                        }
                        Err(e) => tracing::warn!(error = %e, "unreadable bus message"),
                    }
                }
                Ok::<(), redis::RedisError>(())
            };
            tokio::select! {
                r = session => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "bus subscription lost; resubscribing");
                    }
                }
                _ = shutdown.wait_for(|s| *s) => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_message_json() {
        let m = BusMessage::EndRoom { room: "r".into(), reason: "the room was deleted".into() };
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(j, r#"{"end_room":{"room":"r","reason":"the room was deleted"}}"#);
        assert_eq!(serde_json::from_str::<BusMessage>(&j).unwrap(), m);
        assert_eq!(channel("abc"), "daily:node:abc:bus");
    }
}
