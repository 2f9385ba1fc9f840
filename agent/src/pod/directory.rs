//! [`Directory`]: the agent's map of pods to their container instances and probe histories,
//! written by the pod workers and read by the logs/exec server, `paddock why` and the dashboard.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use parking_lot::Mutex;
use probe::{ProbeHistory, ProbeType};

use crate::runtime::ContainerId;

/// One container's instances as logs and exec need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEntry {
    /// Newest instance id and its restart count, if any.
    pub current: Option<(ContainerId, i32, bool)>,
    /// The instance `--previous` reads (the status's `lastState`: the one before the newest,
    /// or the newest while the container waits to be restarted).
    pub previous: Option<(ContainerId, i32)>,
    /// The waiting reason when not running (`ContainerCreating`, `CrashLoopBackOff`…).
    pub waiting: Option<String>,
}

/// A pod's containers, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodEntry {
    /// Pod UID.
    pub uid: String,
    /// Containers (init and regular) in spec order.
    pub containers: Vec<(String, ContainerEntry)>,
    /// The pod as the agent runs it (shared with its worker; the status may be left out).
    pub pod: Option<Arc<Pod>>,
    /// The status the agent last computed for it, as JSON (shared with the worker's record
    /// of its last write): what the kubelet's `/pods` shows over the pod's own.
    pub status: Option<Arc<[u8]>>,
}

/// The agent's map of pods to their containers (for the logs/exec API).
#[derive(Debug, Default)]
pub struct Directory {
    pods: Mutex<HashMap<(String, String), PodEntry>>,
    histories: Mutex<HashMap<(String, String), ProbeHistories>>,
}

/// The probe attempts of a pod's containers: (container, probe type, history).
pub type ProbeHistories = Vec<(String, ProbeType, Arc<ProbeHistory>)>;

impl Directory {
    /// The entry of pod `ns/name`.
    pub fn get(&self, ns: &str, name: &str) -> Option<PodEntry> {
        self.pods
            .lock()
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }
    pub(super) fn set(&self, ns: &str, name: &str, e: PodEntry) {
        self.pods
            .lock()
            .insert((ns.to_string(), name.to_string()), e);
    }
    pub(super) fn remove(&self, ns: &str, name: &str, uid: &str) {
        let mut m = self.pods.lock();
        let key = (ns.to_string(), name.to_string());
        if m.get(&key).is_some_and(|e| e.uid == uid) {
            m.remove(&key);
            self.histories.lock().remove(&key);
        }
    }

    /// Every pod's entry with its namespace and name (for the resource metrics).
    pub fn entries(&self) -> Vec<(String, String, PodEntry)> {
        self.pods
            .lock()
            .iter()
            .map(|((ns, name), e)| (ns.clone(), name.clone(), e.clone()))
            .collect()
    }

    /// The kubelet's `/pods`: a `v1` PodList of the pods this agent runs (and the finished ones
    /// it still serves logs of), each with the status the agent computed, by namespace and
    /// name.
    pub fn pod_list(&self) -> serde_json::Value {
        let mut pods = self.entries();
        pods.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let items: Vec<serde_json::Value> = pods
            .into_iter()
            .filter_map(|(_, _, e)| {
                let mut v = serde_json::to_value(e.pod?.as_ref()).ok()?;
                if let Some(st) = e.status.and_then(|b| serde_json::from_slice(&b).ok()) {
                    v["status"] = st;
                }
                v["apiVersion"] = "v1".into();
                v["kind"] = "Pod".into();
                Some(v)
            })
            .collect();
        serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
    }

    /// For the node's metrics: pods with a running container, running containers, and
    /// containers whose newest instance has exited.
    pub fn running_counts(&self) -> (usize, usize, usize) {
        let pods = self.pods.lock();
        let (mut with_running, mut running, mut exited) = (0, 0, 0);
        for entry in pods.values() {
            let before = running;
            for (_, c) in &entry.containers {
                match c.current {
                    Some((_, _, true)) => running += 1,
                    Some((_, _, false)) => exited += 1,
                    None => {}
                }
            }
            if running > before {
                with_running += 1;
            }
        }
        (with_running, running, exited)
    }

    /// The probe histories of pod `ns/name` (every attempt: time, duration, result, output),
    /// for `paddock why` and the dashboard.
    pub fn probe_histories(&self, ns: &str, name: &str) -> ProbeHistories {
        self.histories
            .lock()
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Records a pod that had finished before this agent started (no worker runs it): its
    /// containers' last instances, from the status the previous run wrote, so `kubectl logs`
    /// (and `--previous`) serve their files until the pod is deleted, as the kubelet does.
    pub fn record_finished(&self, pod: &Pod) {
        let Some(status) = &pod.status else { return };
        let statuses = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        let id = |s: Option<&String>| {
            s.map(|s| ContainerId(s.split_once("://").map_or(s.as_str(), |(_, id)| id).into()))
        };
        let containers = statuses
            .map(|cs| {
                let terminated = cs.state.as_ref().and_then(|s| s.terminated.as_ref());
                let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                let current = terminated
                    .and_then(|t| {
                        id(t.container_id.as_ref()).or_else(|| id(cs.container_id.as_ref()))
                    })
                    .map(|i| (i, cs.restart_count, false));
                let previous = last
                    .and_then(|t| id(t.container_id.as_ref()))
                    .map(|i| (i, cs.restart_count - 1));
                let waiting = current.is_none().then(|| {
                    cs.state
                        .as_ref()
                        .and_then(|s| s.waiting.as_ref())
                        .and_then(|w| w.reason.clone())
                        .unwrap_or_else(|| "ContainerCreating".into())
                });
                let entry = ContainerEntry {
                    current,
                    previous,
                    waiting,
                };
                (cs.name.clone(), entry)
            })
            .collect();
        self.set(
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or(""),
            PodEntry {
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                containers,
                pod: Some(Arc::new(pod.clone())),
                status: None,
            },
        );
    }

    /// Forgets pod `ns/name` of `uid` (a finished pod without a worker, deleted).
    pub fn forget(&self, ns: &str, name: &str, uid: &str) {
        self.remove(ns, name, uid);
    }

    pub(super) fn set_histories(&self, ns: &str, name: &str, h: ProbeHistories) {
        self.histories
            .lock()
            .insert((ns.to_string(), name.to_string()), h);
    }
}
