//! The agent's event recorder: what client-go's `EventRecorder` does for the kubelet. Events
//! are queued without blocking the caller and written by one task; [`api::events::Correlator`]
//! decides whether each is created or patches an identical one written before (`count + 1`,
//! new `lastTimestamp`), and a patch of an event that is gone becomes a create, as client-go's
//! `recordEvent` does.
//!
//! Events carry `source: {component: kubelet, host: <node>}`, `reportingComponent: kubelet` and
//! `reportingInstance: <node>`; names are `<object name>.<unix nanos in hex>` like client-go.
//! Start at [`EventRecorder::new`] and [`ObjectRef`].

use std::sync::Arc;

use api::events::Observed;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use tokio::sync::mpsc;

pub use probe::EventType;

/// The component name the kubelet records events under.
pub const COMPONENT: &str = "kubelet";

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

/// The event `ev` as the kubelet's recorder makes it at `now` (client-go's `makeEvent`).
fn make_event(ev: &Recorded, node: &str, now: Timestamp) -> Event {
    let o = &ev.object;
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    // Events about cluster-scoped objects go to `default`.
    let namespace = if o.namespace.is_empty() {
        "default"
    } else {
        &o.namespace
    };
    Event {
        metadata: ObjectMeta {
            name: Some(api::events::event_name(&o.name, now)),
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
    let mut correlator = api::events::Correlator::default();
    while let Some(ev) = rx.recv().await {
        let observed = correlator.observe(&make_event(&ev, &node, Timestamp::now()));
        match write(&client, observed).await {
            Ok(written) => correlator.update_state(&written),
            Err(e) => tracing::warn!(reason = %ev.reason, error = %e, "cannot write event"),
        }
    }
}

/// Patches the existing event or creates the new one; a patch of an event that is gone
/// creates it (client-go's `recordEvent`). Returns the event as the server stored it.
async fn write(client: &kube::Client, observed: Observed) -> Result<Event, kube::Error> {
    let mut event = observed.event;
    let ns = event.metadata.namespace.clone().unwrap_or_default();
    let api: kube::Api<Event> = kube::Api::namespaced(client.clone(), &ns);
    if let Some(patch) = &observed.patch {
        let name = event.metadata.name.clone().unwrap_or_default();
        match api
            .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            done => return done,
        }
    }
    event.metadata.resource_version = None;
    api.create(&PostParams::default(), &event).await
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
    fn events_are_made_as_the_kubelets_recorder_makes_them() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let e = make_event(&ev("a"), "n1", t0);
        assert_eq!(e.count, Some(1));
        assert_eq!(e.source.as_ref().unwrap().host.as_deref(), Some("n1"));
        assert_eq!(e.reporting_instance.as_deref(), Some("n1"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            e.metadata.name.as_deref(),
            Some(format!("p.{:x}", t0.as_nanosecond()).as_str())
        );
        assert_eq!(
            e.involved_object.field_path.as_deref(),
            Some("spec.containers{c}")
        );
        assert_eq!(e.first_timestamp, Some(Time(t0)));
        assert_eq!(e.last_timestamp, Some(Time(t0)));
        // A node's events go to `default`.
        let node = Recorded {
            object: ObjectRef::node("n1"),
            ..ev("a")
        };
        let e = make_event(&node, "n1", t0);
        assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(e.involved_object.namespace, None);
    }
}
