//! Event expiry, as upstream's `--event-ttl=1h` (an etcd lease on every event write): an
//! event not written for an hour disappears. Here a sweep every minute deletes events whose
//! latest timestamp (`lastTimestamp`, `eventTime`, `series.lastObservedTime`,
//! `creationTimestamp`) is older than the TTL.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::registry::{DeleteOptions, Registry};

/// Upstream's default `--event-ttl`.
pub const EVENT_TTL: Duration = Duration::from_secs(3600);
/// How often expired events are swept.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The last time an event was written (its newest timestamp).
fn last_written(ev: &Value) -> Option<Timestamp> {
    [
        "/lastTimestamp",
        "/eventTime",
        "/series/lastObservedTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .filter_map(|p| ev.pointer(p).and_then(Value::as_str))
    .filter_map(|s| s.parse::<Timestamp>().ok())
    .max()
}

/// Deletes the events older than `ttl` at `now`; returns how many went.
pub async fn sweep(registry: &Registry, now: Timestamp, ttl: Duration) -> usize {
    let Some(info) = api::registry::lookup("", "v1", "events") else {
        return 0;
    };
    let Ok((events, _)) = registry.list(info, None, None, None) else {
        return 0;
    };
    let cutoff = now.as_second() - i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let mut removed = 0;
    for ev in events {
        let expired = last_written(&ev).is_some_and(|t| t.as_second() < cutoff);
        if !expired {
            continue;
        }
        let ns = ev
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = ev
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if registry
            .delete(info, ns, name, &DeleteOptions::default())
            .await
            .is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Sweeps every [`SWEEP_EVERY`] until `stop` flips.
pub async fn run(registry: Registry, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let n = sweep(&registry, crate::meta::now(), EVENT_TTL).await;
                if n > 0 {
                    tracing::debug!(removed = n, "expired events deleted");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::WriteOptions;
    use serde_json::json;

    #[tokio::test]
    async fn old_events_expire_fresh_ones_stay() {
        let registry = Registry::new(store::Store::memory());
        crate::bootstrap(&registry).await.unwrap();
        let info = api::registry::lookup("", "v1", "events").unwrap();
        for (name, last) in [
            ("old", "2020-01-01T00:00:00Z"),
            ("new", "2030-01-01T00:00:00Z"),
        ] {
            let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                "reason": "R", "message": "m", "type": "Normal", "lastTimestamp": last});
            registry
                .create(info, "default", ev, &WriteOptions::default())
                .await
                .unwrap();
        }
        let now: Timestamp = "2029-12-31T23:30:00Z".parse().unwrap();
        assert_eq!(sweep(&registry, now, EVENT_TTL).await, 1);
        assert!(registry.get(info, "default", "old").is_err());
        assert!(registry.get(info, "default", "new").is_ok());
    }
}
