//! Warning events (core/v1), trimmed to what the detail pane shows.

use k8s_openapi::api::core::v1::Event;

use super::pod::PodKey;
use super::time::{UnixSecs, to_unix};

#[derive(Debug, Clone, PartialEq)]
pub struct EventInfo {
    /// namespace/name of the Event object itself.
    pub key: PodKey,
    pub involved_kind: String,
    /// The object the event is about, e.g. the pod.
    pub involved: PodKey,
    pub reason: String,
    pub message: String,
    pub warning: bool,
    pub count: u32,
    pub last_seen: Option<UnixSecs>,
}

impl EventInfo {
    pub fn from_event(ev: &Event) -> EventInfo {
        let ns = ev.metadata.namespace.clone().unwrap_or_default();
        let last = ev
            .last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| ev.event_time.as_ref().map(|t| t.0))
            .or_else(|| ev.first_timestamp.as_ref().map(|t| t.0))
            .or_else(|| ev.metadata.creation_timestamp.as_ref().map(|t| t.0));
        EventInfo {
            key: PodKey::new(ns.clone(), ev.metadata.name.clone().unwrap_or_default()),
            involved_kind: ev.involved_object.kind.clone().unwrap_or_default(),
            involved: PodKey::new(
                ev.involved_object.namespace.clone().unwrap_or(ns),
                ev.involved_object.name.clone().unwrap_or_default(),
            ),
            reason: ev.reason.clone().unwrap_or_default(),
            message: ev.message.clone().unwrap_or_default(),
            warning: ev.type_.as_deref() == Some("Warning"),
            count: ev.count.unwrap_or(1).max(1) as u32,
            last_seen: last.map(to_unix),
        }
    }
}
