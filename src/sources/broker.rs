//! Message brokers' exposition endpoints, polled: RabbitMQ's `/metrics/per-object`, kafka-exporter,
//! the NATS exporter. Each round sends every broker's queue readings; a broker that fails keeps
//! its last readings in the app (marked stale there) and is retried on the next round.

use std::time::Duration;

use tokio::sync::mpsc::Sender;

use super::cadvisor::fetch_url;
use super::{SourceId, SourceState, Update};
use crate::model::broker::{self, BrokerTarget, Mapping};
use crate::model::time::now_unix;

/// Polls every broker each `interval` until the receiver is dropped.
pub async fn poll(brokers: Vec<(BrokerTarget, Mapping)>, interval: Duration, tx: Sender<Update>) {
    let client = super::http::client();
    let timeout = interval.max(Duration::from_secs(5));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = SourceState::Connecting;
    if tx.send(Update::Status { source: SourceId::Brokers, state: last.clone() }).await.is_err() {
        return;
    }
    loop {
        ticker.tick().await;
        let mut failed = Vec::new();
        for (target, mapping) in &brokers {
            let read = fetch_url(&client, &target.fetch_url(mapping), timeout)
                .await
                .map_err(|state| state.reason().unwrap_or("unreachable").to_string())
                .and_then(|text| broker::read(&target.name, mapping, &text));
            match read {
                Ok(readings) => {
                    let update = Update::Queues { at: now_unix(), broker: target.name.clone(), readings };
                    if tx.send(update).await.is_err() {
                        return;
                    }
                }
                Err(reason) => failed.push(format!("{}: {reason}", target.name)),
            }
        }
        let state =
            if failed.is_empty() { SourceState::Connected } else { SourceState::Reconnecting(failed.join("; ")) };
        if state != last {
            last = state.clone();
            if tx.send(Update::Status { source: SourceId::Brokers, state }).await.is_err() {
                return;
            }
        }
    }
}
