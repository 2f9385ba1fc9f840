//! The agent's event recorder: what client-go's `EventRecorder` + `EventCorrelator` do for the
//! kubelet. Events are queued without blocking the caller and written by one task; an event
//! with the same source, involved object, type, reason and message as one already written
//! becomes a PATCH of that event (`count + 1`, new `lastTimestamp`), as the correlator's
//! deduplication does [client-go/tools/record/events_cache.go `eventObserve`].
//!
//! Events carry `source: {component: kubelet, host: <node>}`, `reportingComponent: kubelet` and
//! `reportingInstance: <node>`; names are `<object name>.<unix nanos in hex>` like client-go.
//! Start at [`EventRecorder::new`] and [`ObjectRef`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use tokio::sync::mpsc;

pub use probe::EventType;

/// The component name the kubelet records events under.
pub const COMPONENT: &str = "kubelet";

/// How many distinct events the deduplication cache remembers (client-go's `maxLruCacheEntries`).
const CACHE_SIZE: usize = 4096;

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ObjectRef {
    /// `apiVersion` (`v1`).
    pub api_version: String,
    /// `kind` (`Pod`, `Node`).
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects (the event then goes to `default`).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// `fieldPath`, e.g. `spec.containers{web}`; empty for the whole object.
    pub field_path: String,
}

impl ObjectRef {
    /// A reference to `pod` as a whole.
    pub fn pod(pod: &Pod) -> Self {
        Self {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            field_path: String::new(),
        }
    }

    /// A reference to one container of `pod` (`spec.containers{name}` or
    /// `spec.initContainers{name}`), as the kubelet's `GenerateContainerRef`.
    pub fn container(pod: &Pod, name: &str, init: bool) -> Self {
        let list = if init { "initContainers" } else { "containers" };
        Self {
            field_path: format!("spec.{list}{{{name}}}"),
            ..Self::pod(pod)
        }
    }

    /// A reference to the Node `name` (the kubelet uses the node name as UID).
    pub fn node(name: &str) -> Self {
        Self {
            api_version: "v1".into(),
            kind: "Node".into(),
            namespace: String::new(),
            name: name.into(),
            uid: name.into(),
            field_path: String::new(),
        }
    }
}

/// One event to record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recorded {
    /// What it is about.
    pub object: ObjectRef,
    /// Normal or Warning.
    pub kind: EventType,
    /// The reason (`Started`, `Unhealthy`, …).
    pub reason: String,
    /// The message.
    pub message: String,
}

/// Records events; cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct EventRecorder {
    tx: mpsc::UnboundedSender<Recorded>,
}

impl EventRecorder {
    /// A recorder writing through `client` as node `node`; the writer task runs until every
    /// clone of the recorder is dropped.
    pub fn new(client: kube::Client, node: &str) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(client, node.to_string(), rx));
        Self { tx }
    }

    /// A recorder that hands events to `tx` instead of the API (tests).
    pub fn to_channel(tx: mpsc::UnboundedSender<Recorded>) -> Self {
        Self { tx }
    }

    /// Queues one event.
    pub fn record(&self, object: &ObjectRef, kind: EventType, reason: &str, message: String) {
        // A closed channel means the agent is stopping; the event is dropped.
        let _ = self.tx.send(Recorded {
            object: object.clone(),
            kind,
            reason: reason.to_string(),
            message,
        });
    }

    /// An [`probe::EventSink`] recording against `object`.
    pub fn sink(&self, object: ObjectRef) -> Arc<dyn probe::EventSink> {
        Arc::new(Sink {
            recorder: self.clone(),
            object,
        })
    }
}

struct Sink {
    recorder: EventRecorder,
    object: ObjectRef,
}

impl probe::EventSink for Sink {
    fn event(&self, kind: EventType, reason: &str, message: String) {
        self.recorder.record(&self.object, kind, reason, message);
    }
}

/// What the deduplication cache keeps of an event already written.
#[derive(Debug, Clone)]
struct Seen {
    namespace: String,
    name: String,
    count: i32,
}

/// The deduplication cache (a bounded map, oldest entries evicted first). Each event is kept
/// once, shared by the map and the eviction order.
#[derive(Debug, Default)]
pub(crate) struct Correlator {
    seen: HashMap<Arc<Recorded>, Seen>,
    order: VecDeque<Arc<Recorded>>,
}

/// What to write for one event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Write {
    /// A new Event object.
    Create(Box<Event>),
    /// A PATCH of an existing event: namespace, name, new count, first and last timestamps.
    Bump {
        namespace: String,
        name: String,
        count: i32,
        last: Timestamp,
    },
}

impl Correlator {
    /// Decides how `ev` is written at `now`.
    pub(crate) fn observe(&mut self, ev: &Recorded, node: &str, now: Timestamp) -> Write {
        if let Some(seen) = self.seen.get_mut(ev) {
            seen.count += 1;
            return Write::Bump {
                namespace: seen.namespace.clone(),
                name: seen.name.clone(),
                count: seen.count,
                last: now,
            };
        }
        let namespace = if ev.object.namespace.is_empty() {
            "default".to_string()
        } else {
            ev.object.namespace.clone()
        };
        let name = format!("{}.{:x}", ev.object.name, now.as_nanosecond());
        if self.order.len() >= CACHE_SIZE
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        let ev_key = Arc::new(ev.clone());
        self.order.push_back(ev_key.clone());
        self.seen.insert(
            ev_key,
            Seen {
                namespace: namespace.clone(),
                name: name.clone(),
                count: 1,
            },
        );
        Write::Create(Box::new(make_event(ev, node, &namespace, &name, now)))
    }

    /// Forgets an event whose write failed with NotFound, so the next one is created afresh.
    pub(crate) fn forget(&mut self, ev: &Recorded) {
        self.seen.remove(ev);
        self.order.retain(|e| **e != *ev);
    }
}

fn make_event(ev: &Recorded, node: &str, namespace: &str, name: &str, now: Timestamp) -> Event {
    let o = &ev.object;
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Event {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: opt(&o.api_version),
            kind: opt(&o.kind),
            namespace: opt(&o.namespace),
            name: opt(&o.name),
            uid: opt(&o.uid),
            field_path: opt(&o.field_path),
            ..Default::default()
        },
        reason: Some(ev.reason.clone()),
        message: Some(ev.message.clone()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: Some(node.to_string()),
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        type_: Some(ev.kind.as_str().to_string()),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(node.to_string()),
        ..Default::default()
    }
}

async fn writer(client: kube::Client, node: String, mut rx: mpsc::UnboundedReceiver<Recorded>) {
    let mut correlator = Correlator::default();
    while let Some(ev) = rx.recv().await {
        let write = correlator.observe(&ev, &node, Timestamp::now());
        let res = match &write {
            Write::Create(e) => {
                let ns = e.metadata.namespace.clone().unwrap_or_default();
                let api: kube::Api<Event> = kube::Api::namespaced(client.clone(), &ns);
                api.create(&PostParams::default(), e).await.map(|_| ())
            }
            Write::Bump {
                namespace,
                name,
                count,
                last,
            } => {
                let api: kube::Api<Event> = kube::Api::namespaced(client.clone(), namespace);
                let patch = serde_json::json!({
                    "count": count,
                    "lastTimestamp": Time(*last),
                    "message": ev.message,
                });
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            }
        };
        if let Err(e) = res {
            tracing::warn!(reason = %ev.reason, error = %e, "cannot write event");
            if matches!(&e, kube::Error::Api(s) if s.code == 404) {
                correlator.forget(&ev);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(msg: &str) -> Recorded {
        Recorded {
            object: ObjectRef {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: "ns".into(),
                name: "p".into(),
                uid: "u".into(),
                field_path: "spec.containers{c}".into(),
            },
            kind: EventType::Warning,
            reason: "Unhealthy".into(),
            message: msg.into(),
        }
    }

    #[test]
    fn repeated_events_bump_the_count_of_the_first() {
        let mut c = Correlator::default();
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(1_010).unwrap();
        let Write::Create(e) = c.observe(&ev("a"), "n1", t0) else {
            panic!("first write must create")
        };
        assert_eq!(e.count, Some(1));
        assert_eq!(e.source.as_ref().unwrap().host.as_deref(), Some("n1"));
        assert_eq!(
            e.metadata.name.as_deref(),
            Some(format!("p.{:x}", t0.as_nanosecond()).as_str())
        );
        assert_eq!(
            e.involved_object.field_path.as_deref(),
            Some("spec.containers{c}")
        );
        let w = c.observe(&ev("a"), "n1", t1);
        assert_eq!(
            w,
            Write::Bump {
                namespace: "ns".into(),
                name: e.metadata.name.clone().unwrap(),
                count: 2,
                last: t1
            }
        );
        // A different message is a different event.
        assert!(matches!(c.observe(&ev("b"), "n1", t1), Write::Create(_)));
        c.forget(&ev("a"));
        assert!(matches!(c.observe(&ev("a"), "n1", t1), Write::Create(_)));
    }
}
