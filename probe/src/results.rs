//! [`ResultsCache`]: the kubelet's results managers — the latest result per probe type and
//! container ID — and the stream of changes the agent consumes [results/results_manager.go].
//!
//! A `set` publishes a [`ResultUpdate`] only when the value is new or changed; `remove` (a
//! container replaced or a worker gone) publishes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use crate::mailbox;
use parking_lot::Mutex;

use crate::types::{ProbeResult, ProbeType};

/// Identifies a worker: one per (pod, container, probe type).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerKey {
    /// The pod's UID.
    pub pod_uid: Arc<str>,
    /// The container's name.
    pub container: Arc<str>,
    /// Which probe.
    pub probe_type: ProbeType,
}

/// A changed result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultUpdate {
    /// Whose result.
    pub key: WorkerKey,
    /// The container instance the result belongs to.
    pub container_id: Arc<str>,
    /// The new value.
    pub result: ProbeResult,
}

/// Latest results of all workers of an agent, keyed by probe type and container ID.
#[derive(Debug)]
pub struct ResultsCache {
    map: Mutex<HashMap<(ProbeType, Arc<str>), ProbeResult>>,
    /// A [`mailbox`] rather than a tokio channel: an agent has a cache per pod, mostly idle.
    updates: mailbox::Sender<ResultUpdate>,
}

impl ResultsCache {
    /// A cache and the receiving end of its change stream.
    pub fn new() -> (Arc<Self>, mailbox::Receiver<ResultUpdate>) {
        let (tx, rx) = mailbox::channel();
        (
            Arc::new(Self {
                map: Mutex::new(HashMap::new()),
                updates: tx,
            }),
            rx,
        )
    }

    /// The cached result of `probe_type` for container `container_id`.
    pub fn get(&self, probe_type: ProbeType, container_id: &str) -> Option<ProbeResult> {
        self.map
            .lock()
            .get(&(probe_type, Arc::from(container_id)))
            .copied()
    }

    /// Stores a result; publishes an update if it is new or changed.
    pub fn set(&self, key: &WorkerKey, container_id: &Arc<str>, result: ProbeResult) {
        let prev = self
            .map
            .lock()
            .insert((key.probe_type, container_id.clone()), result);
        if prev != Some(result) {
            // A closed receiver only means nobody listens any more.
            let _ = self.updates.send(ResultUpdate {
                key: key.clone(),
                container_id: container_id.clone(),
                result,
            });
        }
    }

    /// Forgets the result of `probe_type` for `container_id`.
    pub fn remove(&self, probe_type: ProbeType, container_id: &Arc<str>) {
        self.map.lock().remove(&(probe_type, container_id.clone()));
    }
}
