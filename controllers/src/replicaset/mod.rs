//! The ReplicaSet controller (upstream `pkg/controller/replicaset/replica_set.go`,
//! `replica_set_utils.go` and the pod helpers of `pkg/controller/controller_utils.go`).
//!
//! [`Controller::sync`] is upstream's `syncReplicaSet`: the active pods of the namespace
//! (not finished, not being deleted) are claimed (orphans matching the selector adopted with
//! a controller reference, owned pods that no longer match released), then
//! [`Controller::manage`] creates missing pods from the template (generateName `<rs>-`,
//! slow-start batches 1, 2, 4…, at most 500 per sync) or deletes surplus ones in upstream's
//! `ActivePodsWithRanks` order ([`order`]: unscheduled, pending, not ready, cheaper deletion
//! cost, doubled up on a node, ready more recently, restarted more, newer), with
//! `SuccessfulCreate` / `SuccessfulDelete` (or `FailedCreate` / `FailedDelete`) events; finally
//! the status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
//! observedGeneration, the `ReplicaFailure` condition) is written when it changed.
//!
//! Pods are read from the store at sync time rather than from an informer cache: the store
//! is consistent with this controller's own writes, so upstream's create/delete
//! "expectations" (which guard against a stale cache) are not needed. Watches only decide
//! what to sync: a pod change queues its controller, or for an orphan every ReplicaSet whose
//! selector matches it.

mod order;
#[cfg(test)]
mod pinned;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::events::{self, Recorder, Style};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Cache, Change, Delta};
use crate::{Error, meta, pod, resource};

/// Upstream `BurstReplicas`: most pods created or deleted in one sync.
const BURST_REPLICAS: usize = 500;
/// Upstream `--concurrent-replicaset-syncs`.
const WORKERS: usize = 5;
/// The annotation that orders pods for deletion (upstream `PodDeletionCost`).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The apps/v1 ReplicaSet resource.
pub(crate) fn replicasets() -> &'static ResourceInfo {
    resource("apps", "replicasets")
}

fn pods() -> &'static ResourceInfo {
    resource("", "pods")
}

type Key = (String, String);

/// Every object of `info` in `namespace`, read through the port; a failed list is an
/// error (never "no objects").
pub(crate) async fn list(
    cluster: &ClusterRef,
    info: &ResourceInfo,
    namespace: &str,
) -> Result<Vec<Arc<Value>>, api::status::ApiError> {
    Ok(cluster.list(info, Some(namespace)).await?.items)
}

/// `spec.replicas` (defaulted to 1 by the API).
pub(crate) fn replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1)
}

/// The current time in seconds since the epoch.
pub(crate) fn now_seconds() -> i64 {
    api::time::now().as_second()
}

/// Runs the ReplicaSet controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let controller = Arc::new(Controller {
        recorder: Recorder::new(cluster.clone(), "replicaset-controller", Style::Legacy),
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        pods: Mutex::new(HashMap::new()),
        cache: Cache::default(),
    });
    crate::queue::drive(
        &cluster,
        controller,
        &[replicasets(), pods()],
        WORKERS,
        &shutdown,
    )
    .await;
}

/// The controller's shared state.
pub(crate) struct Controller {
    cluster: ClusterRef,
    recorder: Recorder,
    queue: WorkQueue<Key>,
    /// The last seen state of every pod (to compare labels and owners on updates).
    pods: Mutex<HashMap<Key, Arc<Value>>>,
    /// The ReplicaSets seen, for the pod event handlers (upstream's rsLister).
    cache: Cache,
}

impl Reconciler for Controller {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        self.sync(&key.0, &key.1).await
    }

    /// Queues the ReplicaSets a watched change concerns (upstream's event handlers).
    fn observe(&self, change: Change) {
        self.cache.apply(&change);
        let is_pod = change.info.plural == "pods";
        match change.delta {
            Delta::Synced => {}
            Delta::Upsert(rs) | Delta::Delete(rs) if !is_pod => self.queue.add(key_of(&rs)),
            Delta::Upsert(new) => {
                let key = key_of(&new);
                let old = self.pods.lock().insert(key, new.clone());
                self.pod_changed(old.as_deref(), Some(&new));
            }
            Delta::Delete(old) => {
                self.pods.lock().remove(&key_of(&old));
                self.pod_changed(Some(&old), None);
            }
        }
    }
}

fn key_of(obj: &Value) -> Key {
    (
        meta::str(obj, "namespace").to_string(),
        meta::str(obj, "name").to_string(),
    )
}

/// The ReplicaSet named by a pod's controller reference.
fn owner_key(pod: &Value) -> Option<Key> {
    let r = meta::controller_ref(pod)?;
    (r["kind"] == "ReplicaSet" && r["apiVersion"].as_str().unwrap_or("").starts_with("apps/")).then(
        || {
            (
                meta::str(pod, "namespace").to_string(),
                r["name"].as_str().unwrap_or("").to_string(),
            )
        },
    )
}

impl Controller {
    /// upstream `addPod` / `updatePod` / `deletePod`.
    fn pod_changed(&self, old: Option<&Value>, new: Option<&Value>) {
        let mut keys: HashSet<Key> = HashSet::new();
        let mut orphans: Vec<&Value> = Vec::new();
        for p in [old, new].into_iter().flatten() {
            match owner_key(p) {
                Some(k) => {
                    keys.insert(k);
                }
                None if meta::controller_ref(p).is_none() => orphans.push(p),
                None => {}
            }
        }
        // An orphan (or a pod whose labels changed) may be adopted by any matching set.
        let labels_changed = match (old, new) {
            (Some(o), Some(n)) => o["metadata"]["labels"] != n["metadata"]["labels"],
            _ => false,
        };
        if !orphans.is_empty() || labels_changed {
            let Some(p) = new.or(old) else { return };
            let ns = meta::str(p, "namespace");
            for rs in self.cache.list(replicasets(), ns) {
                let Some(sel) = meta::label_selector(&rs["spec"]["selector"]) else {
                    continue;
                };
                if [old, new]
                    .into_iter()
                    .flatten()
                    .any(|p| sel.matches_value(p))
                {
                    keys.insert(key_of(&rs));
                }
            }
        }
        // A pod turning ready counts as available only after minReadySeconds.
        let became_ready = match (old, new) {
            (Some(o), Some(n)) => !pod::is_ready(o) && pod::is_ready(n),
            _ => false,
        };
        for key in keys {
            if became_ready
                && let Some(rs) = self.cache.get(replicasets(), &key.0, &key.1)
                && let Some(secs) = rs["spec"]["minReadySeconds"].as_u64().filter(|s| *s > 0)
            {
                self.queue
                    .add_after(key.clone(), Duration::from_secs(secs + 1));
            }
            self.queue.add(key);
        }
    }

    /// upstream `syncReplicaSet`; `Some(d)` asks to look again after `d`.
    async fn sync(&self, namespace: &str, name: &str) -> Result<Option<Duration>, Error> {
        let rs = match self.cluster.get(replicasets(), namespace, name).await {
            Ok(rs) => rs,
            Err(e) if e.code == 404 => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(selector) = meta::label_selector(&rs["spec"]["selector"]) else {
            tracing::warn!(%namespace, %name, "replica set has an invalid selector; skipping");
            return Ok(None);
        };
        let all = list(&self.cluster, pods(), namespace).await?;
        let active: Vec<Arc<Value>> = all.iter().filter(|p| pod::is_active(p)).cloned().collect();
        let owner = crate::claim::Owner {
            obj: &rs,
            info: replicasets(),
            selector: &selector,
        };
        let claimed = crate::claim::claim(&self.cluster, &owner, pods(), active).await?;
        let manage_err = if meta::deleting(&rs) {
            None
        } else {
            self.manage(&rs, &claimed, &all).await.err()
        };
        let updated = self
            .update_status(&rs, &claimed, manage_err.as_ref())
            .await?;
        if let Some(e) = manage_err {
            return Err(e.into());
        }
        let min_ready = updated["spec"]["minReadySeconds"].as_u64().unwrap_or(0);
        let status = &updated["status"];
        let want = replicas(&updated);
        if min_ready > 0
            && status["readyReplicas"].as_i64().unwrap_or(0) == want
            && status["availableReplicas"].as_i64().unwrap_or(0) != want
        {
            return Ok(Some(Duration::from_secs(min_ready)));
        }
        Ok(None)
    }

    /// upstream `manageReplicas`.
    async fn manage(
        &self,
        rs: &Value,
        claimed: &[Arc<Value>],
        all: &[Arc<Value>],
    ) -> Result<(), api::status::ApiError> {
        let want = usize::try_from(replicas(rs).max(0)).unwrap_or(0);
        if claimed.len() < want {
            let diff = (want - claimed.len()).min(BURST_REPLICAS);
            let mut batch = 1;
            let mut remaining = diff;
            while remaining > 0 {
                let size = batch.min(remaining);
                let results =
                    futures::future::join_all((0..size).map(|_| self.create_pod(rs))).await;
                if let Some(e) = results.into_iter().find_map(Result::err) {
                    return Err(e);
                }
                remaining -= size;
                batch *= 2;
            }
        } else if claimed.len() > want {
            let diff = (claimed.len() - want).min(BURST_REPLICAS);
            let related = self.related_pods(rs, all);
            let victims = order::pods_to_delete(claimed, &related, diff, now_nanos());
            let results =
                futures::future::join_all(victims.iter().map(|p| self.delete_pod(rs, p))).await;
            if let Some(e) = results.into_iter().find_map(Result::err) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Pods of every ReplicaSet with the same controller as `rs` (upstream
    /// `getIndirectlyRelatedPods`), for ranking colocated pods.
    fn related_pods(&self, rs: &Value, all: &[Arc<Value>]) -> Vec<Arc<Value>> {
        let Some(owner) = meta::controller_ref(rs).and_then(|r| r["uid"].as_str()) else {
            return all
                .iter()
                .filter(|p| meta::controlled_by(p, meta::uid(rs)))
                .cloned()
                .collect();
        };
        let sets: Vec<Arc<Value>> = self
            .cache
            .list(replicasets(), meta::str(rs, "namespace"))
            .into_iter()
            .filter(|s| meta::controlled_by(s, owner))
            .collect();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for s in &sets {
            let Some(sel) = meta::label_selector(&s["spec"]["selector"]) else {
                continue;
            };
            for p in all.iter().filter(|p| sel.matches_value(p)) {
                if seen.insert(meta::uid(p).to_string()) {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    /// upstream `RealPodControl.CreatePods` from `GetPodFromTemplate`.
    async fn create_pod(&self, rs: &Value) -> Result<(), api::status::ApiError> {
        let pod = pod_from_template(rs);
        let ns = meta::str(rs, "namespace");
        match self.cluster.create(pods(), ns, pod).await {
            Ok(created) => {
                let msg = format!("Created pod: {}", meta::str(&created, "name"));
                self.recorder
                    .event(
                        replicasets(),
                        rs,
                        events::NORMAL,
                        "SuccessfulCreate",
                        "",
                        &msg,
                    )
                    .await;
                Ok(())
            }
            Err(e) => {
                let terminating = e
                    .details
                    .as_ref()
                    .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"));
                if terminating {
                    return Ok(());
                }
                let msg = format!("Error creating: {}", e.message);
                self.recorder
                    .event(replicasets(), rs, events::WARNING, "FailedCreate", "", &msg)
                    .await;
                Err(e)
            }
        }
    }

    /// upstream `RealPodControl.DeletePod`.
    async fn delete_pod(&self, rs: &Value, p: &Value) -> Result<(), api::status::ApiError> {
        let name = meta::str(p, "name");
        match self
            .cluster
            .delete(
                pods(),
                meta::str(p, "namespace"),
                name,
                &DeleteOptions::default(),
            )
            .await
        {
            Ok(_) => {
                let msg = format!("Deleted pod: {name}");
                self.recorder
                    .event(
                        replicasets(),
                        rs,
                        events::NORMAL,
                        "SuccessfulDelete",
                        "",
                        &msg,
                    )
                    .await;
                Ok(())
            }
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => {
                let msg = format!("Error deleting: {}", e.message);
                self.recorder
                    .event(replicasets(), rs, events::WARNING, "FailedDelete", "", &msg)
                    .await;
                Err(e)
            }
        }
    }

    /// upstream `calculateStatus` + `updateReplicaSetStatus`: writes the status when it
    /// changed; returns the current object.
    async fn update_status(
        &self,
        rs: &Arc<Value>,
        claimed: &[Arc<Value>],
        manage_err: Option<&api::status::ApiError>,
    ) -> Result<Arc<Value>, Error> {
        let now = now_seconds();
        let obj = crate::edit(
            &self.cluster,
            replicasets(),
            rs,
            Subresource::Status,
            |obj| {
                let status =
                    calculate_status(obj, claimed, manage_err.map(|e| &e.message[..]), now);
                let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
                let changed = status != obj["status"]
                    || obj["status"]["observedGeneration"].as_i64().unwrap_or(0) != generation;
                obj["status"] = status;
                if changed {
                    obj["status"]["observedGeneration"] = json!(generation);
                }
                changed
            },
        )
        .await?;
        Ok(obj.unwrap_or_else(|| rs.clone()))
    }
}

/// upstream `calculateStatus`: the status of `rs` (observedGeneration untouched) for the
/// pods it controls, with the `ReplicaFailure` condition set from a failed create/delete
/// (`manage_err`) or removed after a clean sync. `now` is in seconds since the epoch.
pub(crate) fn calculate_status(
    rs: &Value,
    claimed: &[Arc<Value>],
    manage_err: Option<&str>,
    now: i64,
) -> Value {
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let template_labels = &rs["spec"]["template"]["metadata"]["labels"];
    let fully = claimed
        .iter()
        .filter(|p| labels_contain(&p["metadata"]["labels"], template_labels))
        .count();
    let ready = claimed.iter().filter(|p| pod::is_ready(p)).count();
    let available = claimed
        .iter()
        .filter(|p| pod::is_available(p, min_ready, now))
        .count();
    let mut st = if rs["status"].is_object() {
        rs["status"].clone()
    } else {
        json!({})
    };
    let has_failure = condition_index(&st, "ReplicaFailure").is_some();
    match manage_err {
        Some(message) if !has_failure => {
            let diff = i64::try_from(claimed.len()).unwrap_or(i64::MAX) - replicas(rs);
            let reason = match diff.cmp(&0) {
                std::cmp::Ordering::Less => "FailedCreate",
                std::cmp::Ordering::Greater => "FailedDelete",
                std::cmp::Ordering::Equal => "",
            };
            push_condition(
                &mut st,
                json!({"type": "ReplicaFailure", "status": "True",
                       "lastTransitionTime": meta::now_rfc3339(),
                       "reason": reason, "message": message}),
            );
        }
        None if has_failure => remove_condition(&mut st, "ReplicaFailure"),
        _ => {}
    }
    st["replicas"] = json!(claimed.len());
    set_count(&mut st, "fullyLabeledReplicas", fully);
    set_count(&mut st, "readyReplicas", ready);
    set_count(&mut st, "availableReplicas", available);
    st
}

/// Sets a status counter, omitting zero as the Go types' `omitempty` does.
pub(crate) fn set_count(status: &mut Value, field: &str, n: usize) {
    if n == 0 {
        if let Some(m) = status.as_object_mut() {
            m.remove(field);
        }
    } else {
        status[field] = json!(n);
    }
}

/// Index of the condition `type_` in `status.conditions`.
pub(crate) fn condition_index(status: &Value, type_: &str) -> Option<usize> {
    status["conditions"]
        .as_array()?
        .iter()
        .position(|c| c["type"] == type_)
}

/// Appends a condition.
pub(crate) fn push_condition(status: &mut Value, cond: Value) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    if let Some(list) = status["conditions"].as_array_mut() {
        list.push(cond);
    }
}

/// Removes the condition `type_` (and the list when it becomes empty).
pub(crate) fn remove_condition(status: &mut Value, type_: &str) {
    if let Some(list) = status["conditions"].as_array_mut() {
        list.retain(|c| c["type"] != type_);
        if list.is_empty()
            && let Some(m) = status.as_object_mut()
        {
            m.remove("conditions");
        }
    }
}

/// Whether `labels` holds every key/value of `wanted` (a template label selector).
fn labels_contain(labels: &Value, wanted: &Value) -> bool {
    wanted
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// The current time in nanoseconds since the epoch.
fn now_nanos() -> i128 {
    api::time::now().as_nanosecond()
}

/// upstream `GetPodFromTemplate`: labels, annotations and finalizers of the template,
/// generateName `<rs>-`, a controller reference, the template's spec.
pub(crate) fn pod_from_template(rs: &Value) -> Value {
    let template = &rs["spec"]["template"];
    // upstream `getPodsPrefix`; a ReplicaSet name plus `-` is always a valid prefix.
    let prefix = format!("{}-", meta::str(rs, "name"));
    let mut metadata = json!({"generateName": prefix,
        "ownerReferences": [meta::new_controller_ref(rs, "apps/v1", "ReplicaSet")]});
    for f in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template["metadata"].get(f).filter(|v| !v.is_null()) {
            metadata[f] = v.clone();
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template["spec"].clone(),
    })
}
