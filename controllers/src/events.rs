//! Kubernetes Events written by the controllers, shaped like client-go's two recorders:
//! - [`Style::Legacy`] (`k8s.io/client-go/tools/record`, used by kube-controller-manager's
//!   controllers): core/v1 events with `source.component`, `firstTimestamp`,
//!   `lastTimestamp` and `count`. Deduplication is [`api::events::Correlator`]'s: a repeat of
//!   an identical event (same source, object, type, reason and message) patches the first
//!   one with `count + 1`, the new `lastTimestamp` and the message; if that event is gone,
//!   it is created again.
//! - [`Style::Series`] (`k8s.io/client-go/tools/events`, used by the scheduler): events.k8s.io
//!   events as core/v1 sees them: `eventTime`, `action`, `reportingComponent`,
//!   `reportingInstance`, no source or timestamps. Events with the same type, action,
//!   reason, reporting controller and instance and regarding object are one event whatever
//!   their message (upstream `getKey`): the second occurrence writes `series` (count 2,
//!   `lastObservedTime`), later ones only count in memory until [`Recorder::run_upkeep`]
//!   writes them: every 30 minutes (`refreshExistingEventSeries`), and once a series has not
//!   been observed for 6 minutes, when it is written a last time and forgotten
//!   (`finishSeries`, checked every 6 minutes; a single event is forgotten 6 minutes after
//!   its `eventTime`).
//!
//! Names are `<object name>.<hex nanoseconds>` as both recorders make them
//! ([`api::events::event_name`]). Writing an event never fails a reconcile: errors are
//! logged. Start at [`Recorder::event`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use api::events::Correlator;
use api::registry::ResourceInfo;
use api::status::ApiError;
use k8s_openapi::api::core::v1::{Event, EventSeries, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, Subresource};

/// `Normal` event type.
pub(crate) const NORMAL: &str = "Normal";
/// `Warning` event type.
pub(crate) const WARNING: &str = "Warning";

/// Longest message kept (upstream truncates an event's message/note to 1024).
const MAX_MESSAGE: usize = 1024;
/// A series not observed for this long is finished; also how often that is checked
/// (client-go `finishTime`).
const FINISH_TIME: Duration = Duration::from_secs(6 * 60);
/// How often running series are written (client-go `refreshTime`).
const REFRESH_TIME: Duration = Duration::from_secs(30 * 60);

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

/// What makes two series-style events one (client-go `tools/events` `getKey`): type,
/// action, reason, reporting controller and instance, and the regarding object (every
/// field of its reference). The message is not part of it. The `related` object is too
/// upstream; these controllers never set one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    event_type: String,
    action: String,
    reason: String,
    reporting_controller: String,
    reporting_instance: String,
    /// kind, namespace, name, uid, apiVersion, resourceVersion, fieldPath.
    regarding: [String; 7],
}

impl SeriesKey {
    fn of(ev: &Event) -> SeriesKey {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let r = &ev.involved_object;
        SeriesKey {
            event_type: s(&ev.type_),
            action: s(&ev.action),
            reason: s(&ev.reason),
            reporting_controller: s(&ev.reporting_component),
            reporting_instance: s(&ev.reporting_instance),
            regarding: [
                s(&r.kind),
                s(&r.namespace),
                s(&r.name),
                s(&r.uid),
                s(&r.api_version),
                s(&r.resource_version),
                s(&r.field_path),
            ],
        }
    }
}

/// A series-style event remembered (client-go's `eventCache` entry).
#[derive(Debug, Clone)]
struct Cached {
    /// The event as written, with the series counted so far.
    event: Event,
    /// When it was first recorded (its `eventTime`), on tokio's clock.
    first: Instant,
    /// When it was last observed (`series.lastObservedTime`), on tokio's clock.
    last: Instant,
}

/// Writes events for one component.
#[derive(Debug)]
pub(crate) struct Recorder {
    cluster: ClusterRef,
    component: &'static str,
    style: Style,
    /// [`Style::Legacy`] deduplication.
    correlator: Mutex<Correlator>,
    /// [`Style::Series`] deduplication.
    series: Mutex<HashMap<SeriesKey, Cached>>,
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

/// The event's reference to an object of kind `info` (client-go `reference.GetReference`).
fn reference(m: &ObjectMeta, info: &ResourceInfo) -> ObjectReference {
    let field = |f: &Option<String>| f.clone().unwrap_or_default();
    ObjectReference {
        api_version: Some(info.api_version()),
        kind: Some(info.kind.to_string()),
        name: Some(field(&m.name)),
        namespace: m.namespace.clone().filter(|n| !n.is_empty()),
        uid: Some(field(&m.uid)),
        resource_version: Some(field(&m.resource_version)),
        field_path: None,
    }
}

/// Whether a failed write is worth repeating later (the server could not answer), as
/// opposed to refused (client-go's `recordEvent` retries all but `StatusError`s).
fn retryable(e: &ApiError) -> bool {
    e.code == 0 || e.code == 429 || e.code >= 500
}

impl Recorder {
    /// A recorder for `component` (`replicaset-controller`, `default-scheduler`, …).
    pub(crate) fn new(cluster: ClusterRef, component: &'static str, style: Style) -> Recorder {
        Recorder {
            cluster,
            component,
            style,
            correlator: Mutex::new(Correlator::default()),
            series: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event about `obj` (of kind `info`). `action` is only used by the series
    /// style.
    pub(crate) async fn event(
        &self,
        info: &ResourceInfo,
        obj: &ObjectMeta,
        event_type: &str,
        reason: &str,
        action: &str,
        message: &str,
    ) {
        let ev = self.build(reference(obj, info), event_type, reason, action, message);
        match self.style {
            Style::Legacy => self.record_legacy(ev).await,
            Style::Series { .. } => self.record_series(ev).await,
        }
    }

    /// The event object (upstream `makeEvent` / events `generateEvent`).
    fn build(
        &self,
        regarding: ObjectReference,
        event_type: &str,
        reason: &str,
        action: &str,
        message: &str,
    ) -> Event {
        let now = api::time::now();
        let name = api::events::event_name(regarding.name.as_deref().unwrap_or(""), now);
        let namespace = match regarding.namespace.as_deref() {
            None | Some("") => "default",
            Some(ns) => ns,
        }
        .to_string();
        let mut ev = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            involved_object: regarding,
            reason: Some(reason.to_string()),
            message: Some(message.chars().take(MAX_MESSAGE).collect()),
            type_: Some(event_type.to_string()),
            reporting_component: Some(self.component.to_string()),
            ..Event::default()
        };
        match &self.style {
            Style::Legacy => {
                ev.source = Some(EventSource {
                    component: Some(self.component.to_string()),
                    host: None,
                });
                ev.first_timestamp = Some(Time(now));
                ev.last_timestamp = Some(Time(now));
                ev.count = Some(1);
                ev.reporting_instance = Some(String::new());
            }
            Style::Series { instance } => {
                ev.event_time = Some(MicroTime(now));
                ev.action = Some(action.to_string());
                ev.reporting_instance = Some(instance.clone());
                ev.source = Some(EventSource::default());
            }
        }
        ev
    }

    /// client-go `record`: the correlator decides between a create and a patch of the
    /// first identical event; what the server returns is remembered for the next repeat.
    async fn record_legacy(&self, ev: Event) {
        let observed = self.correlator.lock().observe(&ev);
        match self.write(observed.event, observed.patch.as_ref()).await {
            Ok(written) => self.correlator.lock().update_state(&written),
            Err(e) => self.warn(&ev, &e),
        }
    }

    /// client-go `tools/events` `recordToSink`: the first event of a key is created, the
    /// second starts its series (written at once), later ones are only counted.
    async fn record_series(&self, ev: Event) {
        let key = SeriesKey::of(&ev);
        let now = Instant::now();
        let to_write = {
            let mut cache = self.series.lock();
            match cache.get_mut(&key) {
                Some(cached) => {
                    cached.last = now;
                    let seen = MicroTime(api::time::now());
                    match &mut cached.event.series {
                        Some(series) => {
                            series.count = Some(series.count.unwrap_or(1) + 1);
                            series.last_observed_time = Some(seen);
                            return;
                        }
                        None => {
                            cached.event.series = Some(EventSeries {
                                count: Some(2),
                                last_observed_time: Some(seen),
                            });
                            cached.event.clone()
                        }
                    }
                }
                None => {
                    // Bounded as the legacy correlator is: beyond it, a new series is written
                    // as a single event and not remembered (client-go's map has no bound; a
                    // burst of distinct keys must not grow ours until the 6-minute sweep).
                    if cache.len() < api::events::MAX_LRU_CACHE_ENTRIES {
                        cache.insert(
                            key,
                            Cached {
                                event: ev.clone(),
                                first: now,
                                last: now,
                            },
                        );
                    }
                    ev
                }
            }
        };
        if let Err(e) = self.write_series(to_write.clone()).await {
            self.warn(&to_write, &e);
        }
    }

    /// Writes a series-style event: its `series` as a patch of the stored event, or the
    /// event itself when it has no series yet or the stored one is gone.
    async fn write_series(&self, ev: Event) -> Result<Event, ApiError> {
        let patch = ev
            .series
            .as_ref()
            .map(|s| serde_json::json!({ "series": s }));
        self.write(ev, patch.as_ref()).await
    }

    /// Patches the stored event `ev` names with `patch`, or creates `ev` (without a
    /// resourceVersion) when there is no patch or the stored event is gone (client-go's
    /// `recordEvent` in both packages).
    async fn write(&self, mut ev: Event, patch: Option<&Value>) -> Result<Event, ApiError> {
        let namespace = ev.metadata.namespace.clone().unwrap_or_default();
        if let Some(patch) = patch {
            let name = ev.metadata.name.clone().unwrap_or_default();
            // The patches are of top-level scalars and the `series` struct, which a
            // strategic merge replaces as a whole: setting the fields is the same merge.
            let result = self
                .cluster
                .update_with(
                    events_info(),
                    &namespace,
                    &name,
                    Subresource::Main,
                    |stored| {
                        if let (Some(stored), Some(patch)) =
                            (stored.as_object_mut(), patch.as_object())
                        {
                            for (k, v) in patch {
                                stored.insert(k.clone(), v.clone());
                            }
                        }
                        Ok(true)
                    },
                )
                .await;
            match result {
                Ok(written) => return decode(&written),
                Err(e) if e.code != 404 => return Err(e),
                Err(_) => {}
            }
        }
        ev.metadata.resource_version = None;
        let obj = serde_json::to_value(&ev).map_err(ApiError::internal)?;
        let written = self.cluster.create(events_info(), &namespace, obj).await?;
        decode(&written)
    }

    fn warn(&self, ev: &Event, e: &ApiError) {
        tracing::warn!(
            component = self.component,
            reason = ev.reason.as_deref().unwrap_or(""),
            error = %e,
            "could not write event"
        );
    }

    /// Writes and forgets series-style events as client-go's broadcaster does in the
    /// background (`refreshExistingEventSeries` every 30 minutes, `finishSeries` every 6),
    /// until `shutdown`. A no-op for [`Style::Legacy`].
    pub(crate) async fn run_upkeep(&self, shutdown: &CancellationToken) {
        if matches!(self.style, Style::Legacy) {
            return;
        }
        // Upstream's `wait.Until` also runs both at once, when the cache is still empty.
        let start = Instant::now();
        let mut finish = tokio::time::interval_at(start + FINISH_TIME, FINISH_TIME);
        let mut refresh = tokio::time::interval_at(start + REFRESH_TIME, REFRESH_TIME);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = finish.tick() => self.finish_series().await,
                _ = refresh.tick() => self.refresh_series().await,
            }
        }
    }

    /// Writes every running series (`refreshExistingEventSeries`).
    async fn refresh_series(&self) {
        let running: Vec<Event> = self
            .series
            .lock()
            .values()
            .filter(|c| c.event.series.is_some())
            .map(|c| c.event.clone())
            .collect();
        for ev in running {
            if let Err(e) = self.write_series(ev.clone()).await {
                self.warn(&ev, &e);
            }
        }
    }

    /// Writes the final count of series not observed for [`FINISH_TIME`] and forgets them,
    /// and forgets single events older than that (`finishSeries`).
    async fn finish_series(&self) {
        let now = Instant::now();
        let ended = |at: Instant| at + FINISH_TIME < now;
        let finished: Vec<(SeriesKey, Cached)> = {
            let mut cache = self.series.lock();
            cache.retain(|_, c| c.event.series.is_some() || !ended(c.first));
            cache
                .iter()
                .filter(|(_, c)| ended(c.last))
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect()
        };
        for (key, cached) in finished {
            let result = self.write_series(cached.event.clone()).await;
            if let Err(e) = &result {
                self.warn(&cached.event, e);
            }
            if result.as_ref().is_err_and(retryable) {
                continue;
            }
            let mut cache = self.series.lock();
            // Observed again while being written: the series goes on.
            if cache.get(&key).is_some_and(|c| c.last == cached.last) {
                cache.remove(&key);
            }
        }
    }
}

fn decode(obj: &Arc<Value>) -> Result<Event, ApiError> {
    serde_json::from_value(Value::clone(obj)).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests;
