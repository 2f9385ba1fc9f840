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
//! ReplicaSets and pods are read as k8s-openapi types (`crate::typed`), decoded once where
//! they are read (a get, a list, a watched change); the pods are built typed from the
//! template and serialised once, at the create; the status is an edit of the stored JSON.
//!
//! ReplicationControllers (core/v1) are run by the same controller, as upstream's
//! `pkg/controller/replication` wraps this one: each is read as the ReplicaSet it is
//! equivalent to ([`rs_from_rc`]: its label-map selector as `matchLabels`), and its pods,
//! events and status name the ReplicationController ([`Kind`]).
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
pub(crate) mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use api::selector::LabelSelector;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::events::{self, Recorder, Style};
use crate::pod::typed::{is_active, is_available, is_ready};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Cache, Change, Delta};
use crate::{Error, meta, typed};

/// Upstream `BurstReplicas`: most pods created or deleted in one sync.
const BURST_REPLICAS: usize = 500;
/// Upstream `--concurrent-replicaset-syncs`.
const WORKERS: usize = 5;
/// The annotation that orders pods for deletion (upstream `PodDeletionCost`).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The apps/v1 ReplicaSet resource.
pub(crate) fn replicasets() -> &'static ResourceInfo {
    typed::info::<ReplicaSet>()
}

/// The core/v1 ReplicationController resource.
pub(crate) fn replicationcontrollers() -> &'static ResourceInfo {
    typed::info::<ReplicationController>()
}

/// Which of the two kinds a controller runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    ReplicaSet,
    ReplicationController,
}

impl Kind {
    fn info(self) -> &'static ResourceInfo {
        match self {
            Kind::ReplicaSet => replicasets(),
            Kind::ReplicationController => replicationcontrollers(),
        }
    }

    /// The event source (upstream's recorder component).
    fn component(self) -> &'static str {
        match self {
            Kind::ReplicaSet => "replicaset-controller",
            Kind::ReplicationController => "replication-controller",
        }
    }

    /// A stored object of this kind as a ReplicaSet.
    fn decode(self, obj: &Value) -> Result<ReplicaSet, Error> {
        match self {
            Kind::ReplicaSet => typed::decode(obj),
            Kind::ReplicationController => rs_from_rc(obj),
        }
    }

    /// Whether an owner reference names an object of this kind (group only, as upstream).
    fn owns(self, r: &OwnerReference) -> bool {
        let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let info = self.info();
        r.kind == info.kind && group == info.group
    }
}

/// A ReplicationController read as the ReplicaSet it is equivalent to (upstream
/// `pkg/controller/replication/conversion.go`): its label-map selector becomes
/// `matchLabels`. An empty or missing selector (validation keeps those out) is an error
/// rather than the empty selector, which would select every pod.
pub(crate) fn rs_from_rc(obj: &Value) -> Result<ReplicaSet, Error> {
    let invalid = |message: &str| Error::Decode {
        kind: "ReplicationController",
        message: message.to_string(),
    };
    let mut v = obj.clone();
    let spec = v
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| invalid("no spec"))?;
    let selector = spec
        .remove("selector")
        .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()))
        .ok_or_else(|| invalid("empty selector"))?;
    spec.insert("selector".into(), json!({ "matchLabels": selector }));
    v["apiVersion"] = json!("apps/v1");
    v["kind"] = json!("ReplicaSet");
    typed::decode(&v)
}

fn pods() -> &'static ResourceInfo {
    typed::info::<Pod>()
}

type Key = (String, String);

/// `spec.replicas` of a ReplicaSet (defaulted to 1 by the API).
pub(crate) fn replicas_of(rs: &ReplicaSet) -> i64 {
    rs.spec.replicas.map_or(1, i64::from)
}

/// `spec.minReadySeconds`.
fn min_ready_seconds(rs: &ReplicaSet) -> i64 {
    rs.spec.min_ready_seconds.map_or(0, i64::from)
}

/// `spec.selector` as a selector; `None` for an invalid one, which selects nothing.
fn selector_of(rs: &ReplicaSet) -> Option<LabelSelector> {
    LabelSelector::from_k8s(&rs.spec.selector).ok()
}

/// The current time in seconds since the epoch.
pub(crate) fn now_seconds() -> i64 {
    api::time::now().as_second()
}

/// Runs the ReplicaSet controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    run_kind(Kind::ReplicaSet, cluster, shutdown).await;
}

/// Runs the ReplicationController controller (upstream `replication-controller`) until
/// `shutdown` is cancelled.
pub async fn run_replication(cluster: ClusterRef, shutdown: CancellationToken) {
    run_kind(Kind::ReplicationController, cluster, shutdown).await;
}

async fn run_kind(kind: Kind, cluster: ClusterRef, shutdown: CancellationToken) {
    let controller = Arc::new(Controller {
        kind,
        recorder: Recorder::new(cluster.clone(), kind.component(), Style::Legacy),
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        pods: Mutex::new(HashMap::new()),
        sets: Cache::default(),
    });
    crate::queue::drive(
        &cluster,
        controller,
        &[kind.info(), pods()],
        WORKERS,
        &shutdown,
    )
    .await;
}

/// The controller's shared state.
pub(crate) struct Controller {
    kind: Kind,
    cluster: ClusterRef,
    recorder: Recorder,
    queue: WorkQueue<Key>,
    /// The last seen state of every pod (to compare labels and owners on updates).
    pods: Mutex<HashMap<Key, Arc<Pod>>>,
    /// The ReplicaSets (or ReplicationControllers read as ReplicaSets) seen, for the pod
    /// event handlers (upstream's rsLister).
    sets: Cache<ReplicaSet>,
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
        let is_pod = std::ptr::eq(change.info, pods());
        match &change.delta {
            Delta::Synced => {}
            Delta::Upsert(rs) | Delta::Delete(rs) if !is_pod => {
                let key = key_of(&typed::metadata(rs).unwrap_or_default());
                let upserted = match &change.delta {
                    Delta::Upsert(obj) => self
                        .kind
                        .decode(obj)
                        .inspect_err(|e| tracing::warn!(error = %e, "ignoring a watched object"))
                        .ok(),
                    _ => None,
                };
                self.sets.set(key.clone(), upserted);
                self.queue.add(key);
            }
            Delta::Upsert(_) => {
                let Some(new) = typed::upserted::<Pod>(&change).map(Arc::new) else {
                    return;
                };
                let key = key_of(&new.metadata);
                let old = self.pods.lock().insert(key, new.clone());
                self.pod_changed(old.as_deref(), Some(&new));
            }
            Delta::Delete(old) => {
                let Ok(old) = typed::decode::<Pod>(old) else {
                    return;
                };
                self.pods.lock().remove(&key_of(&old.metadata));
                self.pod_changed(Some(&old), None);
            }
        }
    }
}

use typed::key_of;

/// The set of `kind` named by a pod's controller reference.
fn owner_key(kind: Kind, pod: &Pod) -> Option<Key> {
    let r: &OwnerReference = typed::controller_ref(&pod.metadata)?;
    kind.owns(r).then(|| {
        (
            pod.metadata.namespace.clone().unwrap_or_default(),
            r.name.clone(),
        )
    })
}

/// Whether `selector` selects `pod`.
fn selects(selector: &LabelSelector, pod: &Pod) -> bool {
    crate::claim::selected(selector, &pod.metadata)
}

impl Controller {
    /// upstream `addPod` / `updatePod` / `deletePod`.
    fn pod_changed(&self, old: Option<&Pod>, new: Option<&Pod>) {
        let mut keys: HashSet<Key> = HashSet::new();
        let mut orphans: Vec<&Pod> = Vec::new();
        for p in [old, new].into_iter().flatten() {
            match owner_key(self.kind, p) {
                Some(k) => {
                    keys.insert(k);
                }
                None if typed::controller_ref(&p.metadata).is_none() => orphans.push(p),
                None => {}
            }
        }
        // An orphan (or a pod whose labels changed) may be adopted by any matching set.
        let labels_changed = match (old, new) {
            (Some(o), Some(n)) => o.metadata.labels != n.metadata.labels,
            _ => false,
        };
        if !orphans.is_empty() || labels_changed {
            let Some(p) = new.or(old) else { return };
            let ns = p.metadata.namespace.as_deref().unwrap_or("");
            for rs in self.sets.list(ns) {
                let Some(sel) = selector_of(&rs) else {
                    continue;
                };
                if [old, new].into_iter().flatten().any(|p| selects(&sel, p)) {
                    keys.insert(key_of(&rs.metadata));
                }
            }
        }
        // A pod turning ready counts as available only after minReadySeconds.
        let became_ready = match (old, new) {
            (Some(o), Some(n)) => !is_ready(o) && is_ready(n),
            _ => false,
        };
        for key in keys {
            let min_ready = self
                .sets
                .get(&key.0, &key.1)
                .map(|rs| min_ready_seconds(&rs));
            if became_ready
                && let Some(secs) = min_ready
                    .and_then(|s| u64::try_from(s).ok())
                    .filter(|s| *s > 0)
            {
                self.queue
                    .add_after(key.clone(), Duration::from_secs(secs + 1));
            }
            self.queue.add(key);
        }
    }

    /// upstream `syncReplicaSet`; `Some(d)` asks to look again after `d`.
    async fn sync(&self, namespace: &str, name: &str) -> Result<Option<Duration>, Error> {
        let rs = match self.cluster.get(self.kind.info(), namespace, name).await {
            Ok(obj) => self.kind.decode(&obj)?,
            Err(e) if e.code == 404 => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(selector) = selector_of(&rs) else {
            tracing::warn!(%namespace, %name, "replica set has an invalid selector; skipping");
            return Ok(None);
        };
        let all = typed::list::<Pod>(&self.cluster, Some(namespace)).await?;
        let active: Vec<Pod> = all.iter().filter(|p| is_active(p)).cloned().collect();
        let owner = crate::claim::Owner::of(&rs.metadata, self.kind.info(), &selector);
        let claimed = crate::claim::claim(&self.cluster, &owner, active).await?;
        let manage_err = if owner.deleting {
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
        let min_ready = min_ready_seconds(&updated);
        let status = updated.status.as_ref();
        let count = |n: Option<i32>| n.map_or(0, i64::from);
        let want = replicas_of(&updated);
        if min_ready > 0
            && count(status.and_then(|s| s.ready_replicas)) == want
            && count(status.and_then(|s| s.available_replicas)) != want
        {
            return Ok(Some(Duration::from_secs(min_ready.unsigned_abs())));
        }
        Ok(None)
    }

    /// upstream `manageReplicas`.
    async fn manage(
        &self,
        rs: &ReplicaSet,
        claimed: &[Pod],
        all: &[Pod],
    ) -> Result<(), api::status::ApiError> {
        let want = usize::try_from(replicas_of(rs).max(0)).unwrap_or(0);
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
    fn related_pods(&self, rs: &ReplicaSet, all: &[Pod]) -> Vec<Pod> {
        let controller_uid = |m: &ObjectMeta| typed::controller_ref(m).map(|r| r.uid.clone());
        let Some(owner) = controller_uid(&rs.metadata) else {
            let uid = rs.metadata.uid.clone().unwrap_or_default();
            return all
                .iter()
                .filter(|p| controller_uid(&p.metadata).as_ref() == Some(&uid))
                .cloned()
                .collect();
        };
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        let sets: Vec<Arc<ReplicaSet>> = self
            .sets
            .list(ns)
            .into_iter()
            .filter(|s| controller_uid(&s.metadata).as_ref() == Some(&owner))
            .collect();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for s in &sets {
            let Some(sel) = selector_of(s) else {
                continue;
            };
            for p in all.iter().filter(|p| selects(&sel, p)) {
                if seen.insert(p.metadata.uid.clone().unwrap_or_default()) {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    /// upstream `RealPodControl.CreatePods` from `GetPodFromTemplate`.
    async fn create_pod(&self, rs: &ReplicaSet) -> Result<(), api::status::ApiError> {
        let mut pod = pod_from_template(rs);
        pod.metadata.owner_references = Some(vec![self.controller_ref(rs)]);
        let pod = typed::encode(&pod)?;
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        match self.cluster.create(pods(), ns, pod).await {
            Ok(created) => {
                let msg = format!("Created pod: {}", meta::str(&created, "name"));
                self.recorder
                    .event(
                        self.kind.info(),
                        &rs.metadata,
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
                    .event(
                        self.kind.info(),
                        &rs.metadata,
                        events::WARNING,
                        "FailedCreate",
                        "",
                        &msg,
                    )
                    .await;
                Err(e)
            }
        }
    }

    /// upstream `RealPodControl.DeletePod`.
    async fn delete_pod(&self, rs: &ReplicaSet, p: &Pod) -> Result<(), api::status::ApiError> {
        let name = p.metadata.name.as_deref().unwrap_or("");
        match self
            .cluster
            .delete(
                pods(),
                p.metadata.namespace.as_deref().unwrap_or(""),
                name,
                &DeleteOptions::default(),
            )
            .await
        {
            Ok(_) => {
                let msg = format!("Deleted pod: {name}");
                self.recorder
                    .event(
                        self.kind.info(),
                        &rs.metadata,
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
                    .event(
                        self.kind.info(),
                        &rs.metadata,
                        events::WARNING,
                        "FailedDelete",
                        "",
                        &msg,
                    )
                    .await;
                Err(e)
            }
        }
    }

    /// upstream `calculateStatus` + `updateReplicaSetStatus`: writes the status when it
    /// changed; returns the current object.
    async fn update_status(
        &self,
        rs: &ReplicaSet,
        claimed: &[Pod],
        manage_err: Option<&api::status::ApiError>,
    ) -> Result<ReplicaSet, Error> {
        let now = now_seconds();
        let kind = self.kind;
        let at = typed::at(&rs.metadata);
        let obj = crate::edit_at(&self.cluster, kind.info(), at, Subresource::Status, |obj| {
            // The spec as stored now, read as the ReplicaSet it is.
            let Ok(current) = kind.decode(obj) else {
                return false;
            };
            let status = calculate_status(
                &current,
                &obj["status"],
                claimed,
                manage_err.map(|e| &e.message[..]),
                now,
            );
            let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
            let changed = status != obj["status"]
                || obj["status"]["observedGeneration"].as_i64().unwrap_or(0) != generation;
            obj["status"] = status;
            if changed {
                obj["status"]["observedGeneration"] = json!(generation);
            }
            changed
        })
        .await?;
        match obj {
            Some(obj) => self.kind.decode(&obj),
            None => Ok(rs.clone()),
        }
    }

    /// The controller reference the set's pods carry: to the ReplicaSet, or to the
    /// ReplicationController it was read from.
    fn controller_ref(&self, rs: &ReplicaSet) -> OwnerReference {
        let info = self.kind.info();
        OwnerReference {
            api_version: info.api_version(),
            kind: info.kind.into(),
            ..typed::controller_ref_to(rs)
        }
    }
}

/// upstream `calculateStatus`: the status of `rs` (observedGeneration untouched), an edit of
/// its stored `status` (so fields this version does not know survive), for the pods it
/// controls, with the `ReplicaFailure` condition set from a failed create/delete
/// (`manage_err`) or removed after a clean sync. `now` is in seconds since the epoch.
pub(crate) fn calculate_status(
    rs: &ReplicaSet,
    status: &Value,
    claimed: &[Pod],
    manage_err: Option<&str>,
    now: i64,
) -> Value {
    let min_ready = min_ready_seconds(rs);
    let template_labels = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let fully = claimed
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            template_labels
                .into_iter()
                .flatten()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = claimed.iter().filter(|p| is_ready(p)).count();
    let available = claimed
        .iter()
        .filter(|p| is_available(p, min_ready, now))
        .count();
    let mut st = if status.is_object() {
        status.clone()
    } else {
        json!({})
    };
    let has_failure = condition_index(&st, "ReplicaFailure").is_some();
    match manage_err {
        Some(message) if !has_failure => {
            let diff = i64::try_from(claimed.len()).unwrap_or(i64::MAX) - replicas_of(rs);
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
fn set_count(status: &mut Value, field: &str, n: usize) {
    if n == 0 {
        if let Some(m) = status.as_object_mut() {
            m.remove(field);
        }
    } else {
        status[field] = json!(n);
    }
}

/// Index of the condition `type_` in `status.conditions`.
fn condition_index(status: &Value, type_: &str) -> Option<usize> {
    status["conditions"]
        .as_array()?
        .iter()
        .position(|c| c["type"] == type_)
}

/// Appends a condition.
fn push_condition(status: &mut Value, cond: Value) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    if let Some(list) = status["conditions"].as_array_mut() {
        list.push(cond);
    }
}

/// Removes the condition `type_` (and the list when it becomes empty).
fn remove_condition(status: &mut Value, type_: &str) {
    if let Some(list) = status["conditions"].as_array_mut() {
        list.retain(|c| c["type"] != type_);
        if list.is_empty()
            && let Some(m) = status.as_object_mut()
        {
            m.remove("conditions");
        }
    }
}

/// The current time in nanoseconds since the epoch.
fn now_nanos() -> i128 {
    api::time::now().as_nanosecond()
}

/// upstream `GetPodFromTemplate`: labels, annotations and finalizers of the template,
/// generateName `<rs>-`, a controller reference, the template's spec.
pub(crate) fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs.spec.template.as_ref();
    let tm = template.and_then(|t| t.metadata.as_ref());
    Pod {
        metadata: ObjectMeta {
            // upstream `getPodsPrefix`; a ReplicaSet name plus `-` is always a valid prefix.
            generate_name: Some(format!("{}-", rs.metadata.name.as_deref().unwrap_or(""))),
            owner_references: Some(vec![typed::controller_ref_to(rs)]),
            labels: tm.and_then(|m| m.labels.clone()),
            annotations: tm.and_then(|m| m.annotations.clone()),
            finalizers: tm.and_then(|m| m.finalizers.clone()),
            ..ObjectMeta::default()
        },
        spec: template.and_then(|t| t.spec.clone()),
        status: None,
    }
}
