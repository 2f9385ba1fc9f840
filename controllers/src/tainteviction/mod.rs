//! Taint-based eviction (upstream `pkg/controller/tainteviction/taint_eviction.go`, the
//! `taint-eviction-controller`, and its `timed_workers.go`): pods on a node with NoExecute
//! taints are deleted, at once when some taint is not tolerated, otherwise after the
//! smallest `tolerationSeconds` of the tolerations used (never when they all tolerate
//! forever). The timer starts when this controller sees the taint; an earlier schedule is
//! kept; removing the taints (or the pod) cancels it with the event `Cancelling deletion of
//! Pod <ns>/<name>`.
//!
//! Start at [`Controller::handle_node_update`] and [`Controller::process_pod_on_node`]; the
//! eviction itself is [`Controller::delete_pod`]: the event `TaintManagerEviction` /
//! `Marking for deletion Pod <ns>/<name>`, the pod condition `DisruptionTarget=True`
//! (`DeletionByTaintManager`), then an ordinary delete (the pod's grace period applies; the
//! ReplicaSet controller replaces it at once, as it counts terminating pods as gone).
//!
//! One worker handles both node and pod updates, in queue order; upstream shards them by
//! node name over 8 workers for the same reason: a node's taints are recorded before its
//! pods are looked at.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use parking_lot::Mutex;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::events::{self, Recorder, Style};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Cache, Change, Delta};
use crate::scheduler::filter::tolerates;
use crate::{Error, typed};

/// Upstream `retries` of a deletion.
const RETRIES: usize = 5;

/// A node's NoExecute taints changed, or a pod's tolerations or node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Node(String),
    Pod {
        namespace: String,
        name: String,
        node: String,
    },
}

/// A scheduled deletion (upstream `TimedWorker`); `None` in the map once it ran
/// successfully, so the same pod is not scheduled again (upstream keeps a nil worker).
struct Scheduled {
    id: u64,
    created_at: Instant,
    cancel: CancellationToken,
}

/// Runs the taint eviction controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let controller = Arc::new(Controller {
        recorder: Recorder::new(cluster.clone(), "taint-eviction-controller", Style::Legacy),
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        nodes: Cache::default(),
        pods: Mutex::new(HashMap::new()),
        tainted: Mutex::new(HashMap::new()),
        work: Mutex::new(HashMap::new()),
        next_id: std::sync::atomic::AtomicU64::new(0),
        shutdown: shutdown.clone(),
    });
    crate::queue::drive(
        &cluster,
        controller.clone(),
        &[typed::info::<Node>(), typed::info::<Pod>()],
        1,
        &shutdown,
    )
    .await;
    for (_, w) in controller.work.lock().drain() {
        if let Some(w) = w {
            w.cancel.cancel();
        }
    }
}

/// The controller's shared state.
pub(crate) struct Controller {
    cluster: ClusterRef,
    recorder: Recorder,
    queue: WorkQueue<Key>,
    nodes: Cache<Node>,
    /// Every pod (upstream's pod lister and `spec.nodeName` index).
    pods: Mutex<HashMap<(String, String), Arc<Pod>>>,
    /// The NoExecute taints of each tainted node.
    tainted: Mutex<HashMap<String, Vec<Taint>>>,
    /// Scheduled deletions by `namespace/name` (upstream `TimedWorkerQueue`).
    work: Mutex<HashMap<String, Option<Scheduled>>>,
    /// Numbers the scheduled deletions.
    next_id: std::sync::atomic::AtomicU64,
    shutdown: CancellationToken,
}

fn no_execute_taints(node: Option<&Node>) -> Vec<Taint> {
    node.and_then(|n| n.spec.as_ref())
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .filter(|t| t.effect == "NoExecute")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn tolerations_of(pod: &Pod) -> Vec<Toleration> {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default()
}

/// Upstream `v1helper.GetMatchingTolerations`: whether every taint is tolerated, and the
/// first toleration that tolerates each.
fn matching_tolerations(taints: &[Taint], tolerations: &[Toleration]) -> (bool, Vec<Toleration>) {
    let mut used = Vec::new();
    for taint in taints {
        match tolerations.iter().find(|t| tolerates(t, taint)) {
            Some(t) => used.push(t.clone()),
            None => return (false, Vec::new()),
        }
    }
    (true, used)
}

/// Upstream `getMinTolerationTime`: `None` when every toleration is forever; zero when
/// there is none or one is `<= 0`.
fn min_toleration_time(tolerations: &[Toleration]) -> Option<Duration> {
    if tolerations.is_empty() {
        return Some(Duration::ZERO);
    }
    let mut min: Option<i64> = None;
    for t in tolerations {
        if let Some(s) = t.toleration_seconds {
            if s <= 0 {
                return Some(Duration::ZERO);
            }
            min = Some(min.map_or(s, |m| m.min(s)));
        }
    }
    min.map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
}

/// The reference of the deletion events: apiVersion, kind, namespace and name only.
fn pod_ref(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        ..Default::default()
    }
}

impl Reconciler for Controller {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        match key {
            Key::Node(name) => self.handle_node_update(&name).await,
            Key::Pod {
                namespace,
                name,
                node,
            } => self.handle_pod_update(&namespace, &name, &node).await,
        }
        Ok(None)
    }

    /// Upstream `NodeUpdated` / `PodUpdated`.
    fn observe(&self, change: Change) {
        if std::ptr::eq(change.info, typed::info::<Node>()) {
            let (Delta::Upsert(obj) | Delta::Delete(obj)) = &change.delta else {
                return;
            };
            let name = typed::metadata(obj)
                .unwrap_or_default()
                .name
                .unwrap_or_default();
            let old = self.nodes.get("", &name);
            self.nodes.apply(&change);
            let new = self.nodes.get("", &name);
            if old.is_some()
                && new.is_some()
                && no_execute_taints(old.as_deref()) == no_execute_taints(new.as_deref())
            {
                return;
            }
            self.queue.add(Key::Node(name));
            return;
        }
        if !std::ptr::eq(change.info, typed::info::<Pod>()) {
            return;
        }
        let (old, new) = match &change.delta {
            Delta::Upsert(_) => {
                let Some(new) = typed::upserted::<Pod>(&change).map(Arc::new) else {
                    return;
                };
                let old = self
                    .pods
                    .lock()
                    .insert(typed::key_of(&new.metadata), new.clone());
                (old, Some(new))
            }
            Delta::Delete(obj) => {
                let Ok(old) = typed::decode::<Pod>(obj) else {
                    return;
                };
                self.pods.lock().remove(&typed::key_of(&old.metadata));
                (Some(Arc::new(old)), None)
            }
            Delta::Synced => return,
        };
        if let (Some(o), Some(n)) = (&old, &new)
            && tolerations_of(o) == tolerations_of(n)
            && crate::pod::typed::node_name(o) == crate::pod::typed::node_name(n)
        {
            return;
        }
        let Some(p) = new.as_ref().or(old.as_ref()) else {
            return;
        };
        self.queue.add(Key::Pod {
            namespace: typed::namespace(&p.metadata).to_string(),
            name: typed::name(&p.metadata).to_string(),
            node: crate::pod::typed::node_name(p).to_string(),
        });
    }
}

impl Controller {
    /// Upstream `cancelWorkWithEvent`.
    async fn cancel_work_with_event(&self, namespace: &str, name: &str) {
        let key = format!("{namespace}/{name}");
        let cancelled = match self.work.lock().remove(&key) {
            Some(Some(w)) => {
                w.cancel.cancel();
                true
            }
            _ => false,
        };
        if cancelled {
            self.recorder
                .event(
                    typed::info::<Pod>(),
                    &pod_ref(namespace, name),
                    events::NORMAL,
                    "TaintManagerEviction",
                    "",
                    &format!("Cancelling deletion of Pod {key}"),
                )
                .await;
        }
    }

    /// Upstream `processPodOnNode`.
    async fn process_pod_on_node(
        self: &Arc<Self>,
        namespace: &str,
        name: &str,
        tolerations: &[Toleration],
        taints: &[Taint],
        now: Instant,
    ) {
        if taints.is_empty() {
            self.cancel_work_with_event(namespace, name).await;
        }
        let (all_tolerated, used) = matching_tolerations(taints, tolerations);
        if !all_tolerated {
            tracing::info!(pod = %format!("{namespace}/{name}"), "Not all taints are tolerated after update for pod on node");
            self.cancel_work_with_event(namespace, name).await;
            self.add_work(namespace, name, now, now);
            return;
        }
        let Some(min) = min_toleration_time(&used) else {
            self.cancel_work_with_event(namespace, name).await;
            return;
        };
        let trigger = now + min;
        let scheduled = self
            .work
            .lock()
            .get(&format!("{namespace}/{name}"))
            .map(|w| w.as_ref().map(|w| w.created_at));
        let mut start = now;
        if let Some(Some(created_at)) = scheduled {
            start = created_at;
            if start + min < trigger {
                return;
            }
            self.cancel_work_with_event(namespace, name).await;
        }
        self.add_work(namespace, name, start, start + min);
    }

    /// Upstream `TimedWorkerQueue.AddWork`: nothing if work for the pod exists (or ran).
    fn add_work(
        self: &Arc<Self>,
        namespace: &str,
        name: &str,
        created_at: Instant,
        fire_at: Instant,
    ) {
        let key = format!("{namespace}/{name}");
        let mut work = self.work.lock();
        if work.contains_key(&key) {
            tracing::debug!(pod = %key, "Trying to add already existing work, skipping");
            return;
        }
        let cancel = self.shutdown.child_token();
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        work.insert(
            key.clone(),
            Some(Scheduled {
                id,
                created_at,
                cancel: cancel.clone(),
            }),
        );
        drop(work);
        let this = self.clone();
        let (namespace, name) = (namespace.to_string(), name.to_string());
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(fire_at) => {}
            }
            let ok = this.delete_pod(&namespace, &name).await;
            let mut work = this.work.lock();
            // Only if this run is still the scheduled one.
            if let Some(Some(w)) = work.get(&key)
                && w.id == id
            {
                if ok {
                    work.insert(key, None);
                } else {
                    work.remove(&key);
                }
            }
        });
    }

    /// Upstream `deletePodHandler`: the event, then up to 5 attempts at
    /// `addConditionAndDeletePod`.
    async fn delete_pod(&self, namespace: &str, name: &str) -> bool {
        tracing::info!(pod = %format!("{namespace}/{name}"), "Deleting pod");
        self.recorder
            .event(
                typed::info::<Pod>(),
                &pod_ref(namespace, name),
                events::NORMAL,
                "TaintManagerEviction",
                "",
                &format!("Marking for deletion Pod {namespace}/{name}"),
            )
            .await;
        for _ in 0..RETRIES {
            match self.add_condition_and_delete(namespace, name).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::debug!(pod = %format!("{namespace}/{name}"), error = %e, "eviction failed; retrying");
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Upstream `addConditionAndDeletePod`.
    async fn add_condition_and_delete(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let info = typed::info::<Pod>();
        self.cluster
            .update_with(info, namespace, name, Subresource::Status, |o| {
                Ok(crate::pod::set_condition(
                    o,
                    json!({
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "DeletionByTaintManager",
                        "message": "Taint manager: deleting due to NoExecute taint",
                    }),
                ))
            })
            .await?;
        self.cluster
            .delete(info, namespace, name, &DeleteOptions::default())
            .await?;
        Ok(())
    }

    /// Upstream `handlePodUpdate`.
    async fn handle_pod_update(self: &Arc<Self>, namespace: &str, name: &str, node: &str) {
        let pod = self
            .pods
            .lock()
            .get(&(namespace.to_string(), name.to_string()))
            .cloned();
        let Some(pod) = pod else {
            self.cancel_work_with_event(namespace, name).await;
            return;
        };
        let node_name = crate::pod::typed::node_name(&pod);
        if node_name != node || node_name.is_empty() {
            return;
        }
        let Some(taints) = self.tainted.lock().get(node_name).cloned() else {
            return;
        };
        self.process_pod_on_node(
            namespace,
            name,
            &tolerations_of(&pod),
            &taints,
            Instant::now(),
        )
        .await;
    }

    /// Upstream `handleNodeUpdate`.
    async fn handle_node_update(self: &Arc<Self>, name: &str) {
        let Some(node) = self.nodes.get("", name) else {
            self.tainted.lock().remove(name);
            return;
        };
        let taints = no_execute_taints(Some(&node));
        {
            let mut tainted = self.tainted.lock();
            if taints.is_empty() {
                tainted.remove(name);
            } else {
                tainted.insert(name.to_string(), taints.clone());
            }
        }
        let pods: Vec<Arc<Pod>> = self
            .pods
            .lock()
            .values()
            .filter(|p| crate::pod::typed::node_name(p) == name)
            .cloned()
            .collect();
        if taints.is_empty() {
            for p in &pods {
                self.cancel_work_with_event(
                    typed::namespace(&p.metadata),
                    typed::name(&p.metadata),
                )
                .await;
            }
            return;
        }
        let now = Instant::now();
        for p in &pods {
            self.process_pod_on_node(
                typed::namespace(&p.metadata),
                typed::name(&p.metadata),
                &tolerations_of(p),
                &taints,
                now,
            )
            .await;
        }
    }
}
