//! Kubernetes Events written by the controllers, shaped like client-go's two recorders:
//! - [`Style::Legacy`] (`k8s.io/client-go/tools/record`, used by kube-controller-manager's
//!   controllers): core/v1 events with `source.component`, `firstTimestamp`,
//!   `lastTimestamp` and `count`; a repeat of an identical event (same object, type, reason
//!   and message) bumps `count` and `lastTimestamp` of the first one, as the event
//!   correlator's logger does.
//! - [`Style::Series`] (`k8s.io/client-go/tools/events`, used by the scheduler): events.k8s.io
//!   events as core/v1 sees them: `eventTime`, `action`, `reportingComponent`,
//!   `reportingInstance`, no source or timestamps; a repeat within 6 minutes becomes a
//!   `series` (count from 2, `lastObservedTime`).
//!
//! Names are `<object name>.<hex nanoseconds>` as both recorders make them. Writing an event
//! never fails a reconcile: errors are logged.

use std::collections::HashMap;
use std::time::Duration;

use api::registry::ResourceInfo;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cluster::{ClusterRef, Subresource};
use crate::meta;

/// `Normal` event type.
pub(crate) const NORMAL: &str = "Normal";
/// `Warning` event type.
pub(crate) const WARNING: &str = "Warning";

/// Which client-go recorder an [`Recorder`] imitates.
#[derive(Debug, Clone)]
pub(crate) enum Style {
    /// core/v1 events with a source (kube-controller-manager's controllers).
    Legacy,
    /// events.k8s.io/v1 events (the scheduler) from `instance`.
    Series {
        /// `reportingInstance`.
        instance: String,
    },
}

/// Identical events collapse into one (upstream `getEventKey` / `getKey`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EventKey {
    uid: String,
    namespace: String,
    name: String,
    kind: String,
    event_type: String,
    reason: String,
    action: String,
    message: String,
}

/// What is remembered of an event written earlier.
#[derive(Debug, Clone)]
struct Seen {
    namespace: String,
    name: String,
    at: Instant,
}

/// Entries kept for aggregation (upstream's LRU holds 4096).
const MAX_CACHE: usize = 4096;
/// A series ends when an event is not repeated within this time (upstream `isomorphicWindow`).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// Writes events for one component.
#[derive(Debug)]
pub(crate) struct Recorder {
    cluster: ClusterRef,
    component: &'static str,
    style: Style,
    seen: Mutex<HashMap<EventKey, Seen>>,
}

fn events_info() -> &'static ResourceInfo {
    api::registry::resources()
        .iter()
        .find(|i| i.group.is_empty() && i.plural == "events")
        .expect("the resource table serves core/v1 events")
}

/// The host name, for `reportingInstance` (upstream uses `os.Hostname`).
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

impl Recorder {
    /// A recorder for `component` (`replicaset-controller`, `default-scheduler`, …).
    pub(crate) fn new(cluster: ClusterRef, component: &'static str, style: Style) -> Recorder {
        Recorder {
            cluster,
            component,
            style,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event about `obj` (of kind `info`). `action` is only used by the series
    /// style.
    pub(crate) async fn event(
        &self,
        info: &ResourceInfo,
        obj: &Value,
        event_type: &str,
        reason: &str,
        action: &str,
        message: &str,
    ) {
        let namespace = match meta::str(obj, "namespace") {
            "" => "default",
            ns => ns,
        }
        .to_string();
        let message: String = message.chars().take(1024).collect();
        let key = EventKey {
            uid: meta::uid(obj).to_string(),
            namespace: namespace.clone(),
            name: meta::str(obj, "name").to_string(),
            kind: info.kind.to_string(),
            event_type: event_type.to_string(),
            reason: reason.to_string(),
            action: action.to_string(),
            message: message.clone(),
        };
        let previous = self.seen.lock().get(&key).cloned();
        let now = Instant::now();
        if let Some(prev) = previous {
            let in_window = match self.style {
                Style::Legacy => true,
                Style::Series { .. } => now.duration_since(prev.at) <= SERIES_WINDOW,
            };
            if in_window && self.repeat(&prev).await {
                if let Some(s) = self.seen.lock().get_mut(&key) {
                    s.at = now;
                }
                return;
            }
        }
        let event = self.build(info, obj, &namespace, event_type, reason, action, &message);
        let name = meta::str(&event, "name").to_string();
        match self.cluster.create(events_info(), &namespace, event).await {
            Ok(_) => {
                let mut seen = self.seen.lock();
                if seen.len() >= MAX_CACHE {
                    seen.clear();
                }
                seen.insert(
                    key,
                    Seen {
                        namespace,
                        name,
                        at: now,
                    },
                );
            }
            Err(e) => tracing::warn!(
                component = self.component,
                reason,
                error = %e,
                "could not write event"
            ),
        }
    }

    /// Counts a repeat on the stored event; false when it is gone (then a new one is made).
    async fn repeat(&self, prev: &Seen) -> bool {
        let now = api::time::now();
        let series = matches!(self.style, Style::Series { .. });
        let result = self
            .cluster
            .update_with(
                events_info(),
                &prev.namespace,
                &prev.name,
                Subresource::Main,
                |ev| {
                    if series {
                        let count = ev["series"]["count"].as_i64().unwrap_or(1) + 1;
                        ev["series"] = json!({
                            "count": count,
                            "lastObservedTime": api::time::rfc3339_micro(now),
                        });
                    } else {
                        let count = ev["count"].as_i64().unwrap_or(1) + 1;
                        ev["count"] = json!(count);
                        ev["lastTimestamp"] = json!(api::time::rfc3339(now));
                    }
                    Ok(true)
                },
            )
            .await;
        match result {
            Ok(_) => true,
            Err(e) => {
                if e.code != 404 {
                    tracing::debug!(error = %e, "could not update event; writing a new one");
                }
                false
            }
        }
    }

    /// The event object (upstream `makeEvent` / events `generateEvent`).
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        info: &ResourceInfo,
        obj: &Value,
        namespace: &str,
        event_type: &str,
        reason: &str,
        action: &str,
        message: &str,
    ) -> Value {
        let now = api::time::now();
        let nanos = now.as_nanosecond();
        let name = format!("{}.{:x}", meta::str(obj, "name"), nanos);
        let mut involved = json!({
            "kind": info.kind,
            "name": meta::str(obj, "name"),
            "uid": meta::uid(obj),
            "apiVersion": info.api_version(),
            "resourceVersion": meta::str(obj, "resourceVersion"),
        });
        let ns = meta::str(obj, "namespace");
        if !ns.is_empty() {
            involved["namespace"] = json!(ns);
        }
        let mut ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": event_type,
            "reportingComponent": self.component,
        });
        match &self.style {
            Style::Legacy => {
                let t = api::time::rfc3339(now);
                ev["source"] = json!({"component": self.component});
                ev["firstTimestamp"] = json!(t);
                ev["lastTimestamp"] = json!(t);
                ev["count"] = json!(1);
                ev["reportingInstance"] = json!("");
            }
            Style::Series { instance } => {
                ev["eventTime"] = json!(api::time::rfc3339_micro(now));
                ev["action"] = json!(action);
                ev["reportingInstance"] = json!(instance);
                ev["source"] = json!({});
            }
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[tokio::test(start_paused = true)]
    async fn legacy_events_aggregate_and_series_events_count() {
        let registry = registry_with_namespace("ns").await;
        let pod = create(
            &registry,
            "pods",
            "ns",
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        )
        .await;
        let legacy = Recorder::new(cluster(&registry), "replicaset-controller", Style::Legacy);
        for _ in 0..3 {
            legacy
                .event(info("pods"), &pod, NORMAL, "Tested", "", "same message")
                .await;
        }
        legacy
            .event(info("pods"), &pod, WARNING, "Tested", "", "other message")
            .await;
        let evs = list_events(&registry, "ns");
        assert_eq!(evs.len(), 2, "{evs:?}");
        let same = evs.iter().find(|e| e["message"] == "same message").unwrap();
        assert_eq!(same["count"], 3);
        assert_eq!(same["source"]["component"], "replicaset-controller");
        assert_eq!(same["involvedObject"]["kind"], "Pod");
        assert_eq!(same["involvedObject"]["uid"], pod["metadata"]["uid"]);
        assert!(
            meta::str(same, "name").starts_with("p."),
            "{}",
            meta::str(same, "name")
        );

        let series = Recorder::new(
            cluster(&registry),
            "default-scheduler",
            Style::Series {
                instance: "default-scheduler-h".into(),
            },
        );
        let failed = || {
            series.event(
                info("pods"),
                &pod,
                WARNING,
                "FailedScheduling",
                "Scheduling",
                "m",
            )
        };
        failed().await;
        failed().await;
        tokio::time::advance(Duration::from_secs(7 * 60)).await;
        failed().await;
        let evs: Vec<Value> = list_events(&registry, "ns")
            .into_iter()
            .filter(|e| e["reason"] == "FailedScheduling")
            .collect();
        assert_eq!(evs.len(), 2, "{evs:?}");
        let first = evs.iter().find(|e| !e["series"].is_null()).unwrap();
        assert_eq!(first["series"]["count"], 2);
        assert_eq!(first["action"], "Scheduling");
        assert_eq!(first["reportingInstance"], "default-scheduler-h");
        assert!(first["eventTime"].as_str().unwrap().contains('.'));
        assert!(first["firstTimestamp"].is_null());
    }
}
