//! The Deployment controller (upstream `pkg/controller/deployment`: `deployment_controller.go`,
//! `sync.go`, `rolling.go`, `recreate.go`, `progress.go`, helpers in [`util`]).
//!
//! [`Controller::sync`] is upstream's `syncDeployment`: claim the ReplicaSets the selector
//! matches; a deployment being deleted only gets its status; paused deployments and scaling
//! events (a ReplicaSet's `desired-replicas` annotation differs from `spec.replicas`) are
//! scaled proportionally ([`Controller::scale`]); otherwise the strategy rolls out
//! ([`rolling`]: RollingUpdate with maxSurge/maxUnavailable, and Recreate). The new
//! ReplicaSet is the one whose template equals the deployment's (ignoring the
//! `pod-template-hash` label); it is created as `<deployment>-<hash>` with the hash as label
//! and selector, and carries the revision (the highest old revision + 1, also when an old
//! template returns) that is copied to the deployment. Status counts come from the
//! ReplicaSets; the `Available`, `Progressing` and `ReplicaFailure` conditions follow
//! upstream, and a stuck rollout is looked at again when its progress deadline passes.
//! Old ReplicaSets beyond `revisionHistoryLimit` are deleted once scaled to zero.
//!
//! The deprecated `rollbackTo` of extensions/v1beta1 is not served (apps/v1 only; `kubectl
//! rollout undo` patches the template instead).
//!
//! Just over 800 lines on purpose: `syncDeployment`, its status and its rollout bookkeeping read
//! in upstream's order here; the strategies are in `rolling` and the shared helpers in `util`.

#[cfg(test)]
mod pinned;
mod rolling;
#[cfg(test)]
mod tests;
pub mod util;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::DeleteOptions;
use crate::cluster::{ClusterRef, Subresource};
use api::registry::ResourceInfo;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::events::{self, Recorder, Style};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Cache, Change, Delta};
use crate::replicaset::{list, replicas, replicasets};
use crate::{Error, meta, resource};
use util::*;

/// Upstream `--concurrent-deployment-syncs`.
const WORKERS: usize = 5;

fn deployments() -> &'static ResourceInfo {
    resource("apps", "deployments")
}

fn pods() -> &'static ResourceInfo {
    resource("", "pods")
}

type Key = (String, String);

fn key_of(obj: &Value) -> Key {
    (
        meta::str(obj, "namespace").to_string(),
        meta::str(obj, "name").to_string(),
    )
}

/// Runs the Deployment controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let controller = Arc::new(Controller {
        recorder: Recorder::new(cluster.clone(), "deployment-controller", Style::Legacy),
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        cache: Cache::default(),
    });
    crate::queue::drive(
        &cluster,
        controller,
        &[deployments(), replicasets(), pods()],
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
    /// The deployments and ReplicaSets seen, for the event handlers (upstream's listers).
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

    /// Queues the deployments a watched change concerns (upstream's event handlers).
    fn observe(&self, change: Change) {
        self.cache.apply(&change);
        let obj = match &change.delta {
            Delta::Synced => return,
            Delta::Upsert(o) | Delta::Delete(o) => o.clone(),
        };
        match change.info.plural {
            "deployments" => self.queue.add(key_of(&obj)),
            "replicasets" => match deployment_owner(&obj) {
                Some(k) => self.queue.add(k),
                None if meta::controller_ref(&obj).is_none() => {
                    // An orphan may be adopted by any deployment selecting it.
                    let ns = meta::str(&obj, "namespace");
                    for d in self.cache.list(deployments(), ns) {
                        if meta::label_selector(&d["spec"]["selector"])
                            .is_some_and(|s| !s.is_empty() && s.matches_value(&obj))
                        {
                            self.queue.add(key_of(&d));
                        }
                    }
                }
                None => {}
            },
            // A deleted pod may let a Recreate rollout continue.
            _ => {
                if matches!(change.delta, Delta::Delete(_))
                    && let Some(r) = meta::controller_ref(&obj)
                    && r["kind"] == "ReplicaSet"
                    && let Some(rs) = self.cache.get(
                        replicasets(),
                        meta::str(&obj, "namespace"),
                        r["name"].as_str().unwrap_or(""),
                    )
                    && let Some(k) = deployment_owner(&rs)
                {
                    self.queue.add(k);
                }
            }
        }
    }
}

/// The deployment named by an object's controller reference.
fn deployment_owner(obj: &Value) -> Option<Key> {
    let r = meta::controller_ref(obj)?;
    (r["kind"] == "Deployment").then(|| {
        (
            meta::str(obj, "namespace").to_string(),
            r["name"].as_str().unwrap_or("").to_string(),
        )
    })
}

/// Why a sync could not finish: an API error becomes [`Error`].
type SyncResult<T> = Result<T, Error>;

fn not_found(info: &ResourceInfo, obj: &Value) -> Error {
    Error::from(api::status::ApiError::not_found(
        info,
        meta::str(obj, "name"),
    ))
}

impl Controller {
    /// upstream `syncDeployment`; `Some(d)` asks to look again after `d`.
    async fn sync(&self, namespace: &str, name: &str) -> SyncResult<Option<Duration>> {
        let d = match self.cluster.get(deployments(), namespace, name).await {
            Ok(d) => d,
            Err(e) if e.code == 404 => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut d = Value::clone(&d);
        let Some(selector) = meta::label_selector(&d["spec"]["selector"]) else {
            tracing::warn!(%namespace, %name, "deployment has an invalid selector; skipping");
            return Ok(None);
        };
        if selector.is_empty() {
            self.event(
                &d,
                events::WARNING,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            .await;
            let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
            if d["status"]["observedGeneration"].as_i64().unwrap_or(0) < generation {
                d["status"]["observedGeneration"] = json!(generation);
                self.write_status(&d).await?;
            }
            return Ok(None);
        }
        let owner = crate::claim::Owner {
            at: (namespace, meta::str(&d, "name"), meta::uid(&d)),
            deleting: meta::deleting(&d),
            info: deployments(),
            selector: &selector,
        };
        let candidates = list(&self.cluster, replicasets(), namespace).await?;
        let mut rs_list: Vec<Value> =
            crate::claim::claim(&self.cluster, &owner, replicasets(), candidates)
                .await?
                .iter()
                .map(|rs| Value::clone(rs))
                .collect();
        if meta::deleting(&d) {
            let (new_rs, old) = self.all_replica_sets(&mut d, &mut rs_list, false).await?;
            self.sync_status(&d, &old, new_rs.as_ref()).await?;
            return Ok(None);
        }
        self.check_paused_conditions(&mut d).await?;
        if d["spec"]["paused"].as_bool() == Some(true) {
            self.sync_scale(&mut d, &mut rs_list).await?;
            return Ok(None);
        }
        if self.is_scaling_event(&mut d, &mut rs_list).await? {
            self.sync_scale(&mut d, &mut rs_list).await?;
            return Ok(None);
        }
        if is_rolling(&d) {
            self.rollout_rolling(&mut d, &mut rs_list).await
        } else {
            let pod_map = self.pod_map(&d, &selector, &rs_list).await?;
            self.rollout_recreate(&mut d, &mut rs_list, &pod_map).await
        }
    }

    /// Records an event on the deployment.
    async fn event(&self, d: &Value, event_type: &str, reason: &str, message: &str) {
        self.recorder
            .event(deployments(), d, event_type, reason, "", message)
            .await;
    }

    /// upstream `getPodMapForDeployment`: the deployment's pods by ReplicaSet uid.
    async fn pod_map(
        &self,
        d: &Value,
        selector: &api::selector::LabelSelector,
        rs_list: &[Value],
    ) -> SyncResult<HashMap<String, Vec<Arc<Value>>>> {
        let mut map: HashMap<String, Vec<Arc<Value>>> = rs_list
            .iter()
            .map(|rs| (meta::uid(rs).to_string(), Vec::new()))
            .collect();
        for p in list(&self.cluster, pods(), meta::str(d, "namespace")).await? {
            if !selector.matches_value(&p) {
                continue;
            }
            let Some(uid) = meta::controller_ref(&p).and_then(|r| r["uid"].as_str()) else {
                continue;
            };
            if let Some(v) = map.get_mut(uid) {
                v.push(p.clone());
            }
        }
        Ok(map)
    }

    /// upstream `UpdateStatus(d)`: writes the deployment's status and its revision
    /// annotation through the status subresource. The deployment status strategy keeps only
    /// spec and labels from the stored object, so the controller's annotation travels with
    /// the status without bumping `metadata.generation` (a main-resource update of
    /// annotations would bump it). Gone or replaced: nothing to write.
    async fn write_status(&self, d: &Value) -> SyncResult<()> {
        let revision = annotation(d, REVISION).map(str::to_string);
        let status = d["status"].clone();
        crate::edit(
            &self.cluster,
            deployments(),
            d,
            Subresource::Status,
            |new| {
                let mut changed = false;
                if let Some(rev) = &revision {
                    changed |= set_annotation(new, REVISION, rev);
                }
                if new["status"] != status {
                    new["status"] = status.clone();
                    changed = true;
                }
                changed
            },
        )
        .await?;
        Ok(())
    }

    /// upstream `checkPausedConditions`.
    async fn check_paused_conditions(&self, d: &mut Value) -> SyncResult<()> {
        if progress_deadline(d).is_none() {
            return Ok(());
        }
        let cond = condition(&d["status"], "Progressing");
        if cond.is_some_and(|c| c["reason"] == TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = cond.is_some_and(|c| c["reason"] == PAUSED);
        let paused = d["spec"]["paused"].as_bool() == Some(true);
        let cond = if paused && !paused_cond {
            new_condition("Progressing", "Unknown", PAUSED, "Deployment is paused")
        } else if !paused && paused_cond {
            new_condition("Progressing", "Unknown", RESUMED, "Deployment is resumed")
        } else {
            return Ok(());
        };
        set_status_condition(d, cond);
        self.write_status(d).await
    }

    /// upstream `getAllReplicaSetsAndSyncRevision`: (new ReplicaSet, old ones), creating
    /// the new one when `create`. Updated sets replace their entries in `rs_list`.
    async fn all_replica_sets(
        &self,
        d: &mut Value,
        rs_list: &mut Vec<Value>,
        create: bool,
    ) -> SyncResult<(Option<Value>, Vec<Value>)> {
        rs_list.sort_by(by_creation);
        let new_uid = rs_list
            .iter()
            .find(|rs| equal_ignore_hash(&rs["spec"]["template"], &d["spec"]["template"]))
            .map(|rs| meta::uid(rs).to_string());
        let old: Vec<Value> = rs_list
            .iter()
            .filter(|rs| Some(meta::uid(rs)) != new_uid.as_deref())
            .cloned()
            .collect();
        let existing = rs_list
            .iter()
            .find(|rs| Some(meta::uid(rs)) == new_uid.as_deref())
            .cloned();
        let new_rs = self.new_replica_set(d, existing, &old, create).await?;
        if let Some(rs) = &new_rs {
            match rs_list.iter_mut().find(|r| meta::uid(r) == meta::uid(rs)) {
                Some(slot) => *slot = rs.clone(),
                None => rs_list.push(rs.clone()),
            }
        }
        Ok((new_rs, old))
    }

    /// upstream `getNewReplicaSet`.
    async fn new_replica_set(
        &self,
        d: &mut Value,
        existing: Option<Value>,
        old: &[Value],
        create: bool,
    ) -> SyncResult<Option<Value>> {
        let new_revision = max_revision(old) + 1;
        if let Some(rs) = existing {
            let min_ready = d["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
            let mut copy = rs.clone();
            let annotations_changed = set_new_rs_annotations(d, &mut copy, new_revision, true);
            let min_ready_changed =
                copy["spec"]["minReadySeconds"].as_i64().unwrap_or(0) != min_ready;
            if annotations_changed || min_ready_changed {
                let dep = d.clone();
                let updated =
                    crate::edit(&self.cluster, replicasets(), &rs, Subresource::Main, |o| {
                        let mut changed = set_new_rs_annotations(&dep, o, new_revision, true);
                        if o["spec"]["minReadySeconds"].as_i64().unwrap_or(0) != min_ready {
                            o["spec"]["minReadySeconds"] = json!(min_ready);
                            changed = true;
                        }
                        changed
                    })
                    .await?
                    .ok_or_else(|| not_found(replicasets(), &rs))?;
                return Ok(Some(Value::clone(&updated)));
            }
            let rev = annotation(&copy, REVISION).unwrap_or("").to_string();
            let mut needs_update = set_annotation(d, REVISION, &rev);
            if progress_deadline(d).is_some() && condition(&d["status"], "Progressing").is_none() {
                let msg = format!("Found new replica set {:?}", meta::str(&copy, "name"));
                set_status_condition(d, new_condition("Progressing", "True", FOUND_NEW_RS, &msg));
                needs_update = true;
            }
            if needs_update {
                self.write_status(d).await?;
            }
            return Ok(Some(copy));
        }
        if !create {
            return Ok(None);
        }
        // A new ReplicaSet.
        let collision = d["status"]["collisionCount"].as_i64();
        let template = d["spec"]["template"].clone();
        let hash = compute_hash(&template, collision);
        let mut rs_template = template;
        if !rs_template["metadata"].is_object() {
            rs_template["metadata"] = json!({});
        }
        if !rs_template["metadata"]["labels"].is_object() {
            rs_template["metadata"]["labels"] = json!({});
        }
        rs_template["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        if !selector["matchLabels"].is_object() {
            selector["matchLabels"] = json!({});
        }
        selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
        let name = format!("{}-{hash}", meta::str(d, "name"));
        let mut new_rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": meta::str(d, "namespace"),
                "ownerReferences": [meta::new_controller_ref(d, "apps/v1", "Deployment")],
                "labels": rs_template["metadata"]["labels"].clone(),
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                "selector": selector,
                "template": rs_template,
            },
        });
        let all: Vec<&Value> = old.iter().chain(std::iter::once(&new_rs)).collect();
        let count = new_rs_new_replicas(d, &all, &new_rs);
        new_rs["spec"]["replicas"] = json!(count);
        set_new_rs_annotations(d, &mut new_rs, new_revision, false);
        let ns = meta::str(d, "namespace").to_string();
        let (created, already) = match self.cluster.create(replicasets(), &ns, new_rs).await {
            Ok(rs) => (Value::clone(&rs), false),
            Err(e) if e.code == 409 && e.reason == "AlreadyExists" => {
                let rs = self.cluster.get(replicasets(), &ns, &name).await?;
                if meta::controlled_by(&rs, meta::uid(d))
                    && equal_ignore_hash(&d["spec"]["template"], &rs["spec"]["template"])
                {
                    (Value::clone(&rs), true)
                } else {
                    // A hash collision: bump collisionCount and try again next sync.
                    ensure_status(d);
                    d["status"]["collisionCount"] = json!(collision.unwrap_or(0) + 1);
                    self.write_status(d).await?;
                    tracing::info!(
                        deployment = meta::str(d, "name"),
                        "hash collision; bumped collisionCount"
                    );
                    return Err(e.into());
                }
            }
            Err(e) => {
                let terminating = e.details.as_ref().is_some_and(|det| {
                    det.causes
                        .iter()
                        .any(|c| c.reason == "NamespaceTerminating")
                });
                if !terminating {
                    let msg = format!("Failed to create new replica set {name:?}: {}", e.message);
                    if progress_deadline(d).is_some() {
                        set_status_condition(
                            d,
                            new_condition("Progressing", "False", FAILED_RS_CREATE, &msg),
                        );
                        let _ = self.write_status(d).await;
                    }
                    self.event(d, events::WARNING, FAILED_RS_CREATE, &msg).await;
                }
                return Err(e.into());
            }
        };
        if !already && count > 0 {
            let msg = format!("Scaled up replica set {name} from 0 to {count}");
            self.event(d, events::NORMAL, "ScalingReplicaSet", &msg)
                .await;
        }
        let mut needs_update = set_annotation(d, REVISION, &new_revision.to_string());
        if !already && progress_deadline(d).is_some() {
            let msg = format!("Created new replica set {name:?}");
            set_status_condition(
                d,
                new_condition("Progressing", "True", NEW_RS_CREATED, &msg),
            );
            needs_update = true;
        }
        if needs_update {
            self.write_status(d).await?;
        }
        Ok(Some(created))
    }

    /// upstream `scaleReplicaSetAndRecordEvent`.
    async fn scale_and_record(&self, rs: &Value, to: i64, d: &Value) -> SyncResult<(bool, Value)> {
        if replicas(rs) == to {
            return Ok((false, rs.clone()));
        }
        self.scale_replica_set(rs, to, d).await
    }

    /// upstream `scaleReplicaSet`: sets `spec.replicas` and the replica annotations;
    /// `ScalingReplicaSet` event when the size changed.
    async fn scale_replica_set(&self, rs: &Value, to: i64, d: &Value) -> SyncResult<(bool, Value)> {
        let desired = replicas(d);
        let max = desired + max_surge(d);
        let size_changes = replicas(rs) != to;
        if !size_changes && !replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let from = replicas(rs);
        let updated = crate::edit(&self.cluster, replicasets(), rs, Subresource::Main, |o| {
            let mut changed = set_replicas_annotations(o, desired, max);
            if replicas(o) != to {
                o["spec"]["replicas"] = json!(to);
                changed = true;
            }
            changed
        })
        .await?
        .ok_or_else(|| not_found(replicasets(), rs))?;
        if size_changes {
            let op = if from < to { "up" } else { "down" };
            let msg = format!(
                "Scaled {op} replica set {} from {from} to {to}",
                meta::str(rs, "name")
            );
            self.event(d, events::NORMAL, "ScalingReplicaSet", &msg)
                .await;
        }
        Ok((size_changes, Value::clone(&updated)))
    }

    /// upstream `isScalingEvent`.
    async fn is_scaling_event(&self, d: &mut Value, rs_list: &mut Vec<Value>) -> SyncResult<bool> {
        let (new_rs, old) = self.all_replica_sets(d, rs_list, false).await?;
        let want = replicas(d);
        Ok(old
            .iter()
            .chain(new_rs.iter())
            .filter(|rs| replicas(rs) > 0)
            .filter_map(|rs| annotation(rs, DESIRED_REPLICAS).and_then(|s| s.parse::<i64>().ok()))
            .any(|desired| desired != want))
    }

    /// upstream `sync`: scaling events and paused deployments.
    async fn sync_scale(&self, d: &mut Value, rs_list: &mut Vec<Value>) -> SyncResult<()> {
        let (new_rs, old) = self.all_replica_sets(d, rs_list, false).await?;
        let (new_rs, old) = self.scale(d, new_rs, old).await?;
        if d["spec"]["paused"].as_bool() == Some(true) {
            self.cleanup(d, &old).await?;
        }
        self.sync_status(d, &old, new_rs.as_ref()).await
    }

    /// upstream `scale`: proportional scaling across the active ReplicaSets.
    async fn scale(
        &self,
        d: &Value,
        new_rs: Option<Value>,
        mut old: Vec<Value>,
    ) -> SyncResult<(Option<Value>, Vec<Value>)> {
        let want = replicas(d);
        // One active (or none: the newest) set takes the whole count.
        if let Some(target) = active_or_latest(new_rs.as_ref(), &mut old) {
            if replicas(&target) != want {
                let (_, updated) = self.scale_replica_set(&target, want, d).await?;
                return Ok(replace(new_rs, old, updated));
            }
            return Ok((new_rs, old));
        }
        if is_saturated(d, new_rs.as_ref()) {
            for rs in old.iter_mut().filter(|rs| replicas(rs) > 0) {
                let (_, updated) = self.scale_replica_set(rs, 0, d).await?;
                *rs = updated;
            }
            return Ok((new_rs, old));
        }
        if !is_rolling(d) {
            return Ok((new_rs, old));
        }
        let mut active: Vec<Value> = old
            .iter()
            .chain(new_rs.iter())
            .filter(|rs| replicas(rs) > 0)
            .cloned()
            .collect();
        let current = spec_replicas(active.iter());
        let allowed = if want > 0 { want + max_surge(d) } else { 0 };
        let to_add = allowed - current;
        match to_add.cmp(&0) {
            std::cmp::Ordering::Greater => active.sort_by(by_size_newer),
            std::cmp::Ordering::Less => active.sort_by(by_size_older),
            std::cmp::Ordering::Equal => {}
        }
        let mut added = 0;
        let mut sizes: Vec<i64> = Vec::with_capacity(active.len());
        for rs in &active {
            if to_add != 0 {
                let p = proportion(rs, d, to_add, added);
                sizes.push(replicas(rs) + p);
                added += p;
            } else {
                sizes.push(replicas(rs));
            }
        }
        let (mut new_rs, mut old) = (new_rs, old);
        for (i, rs) in active.iter().enumerate() {
            let mut size = sizes[i];
            if i == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            let (_, updated) = self.scale_replica_set(rs, size, d).await?;
            (new_rs, old) = replace(new_rs, old, updated);
        }
        Ok((new_rs, old))
    }

    /// upstream `cleanupDeployment`: deletes the oldest old ReplicaSets beyond
    /// `revisionHistoryLimit` that are scaled down and observed.
    async fn cleanup(&self, d: &Value, old: &[Value]) -> SyncResult<()> {
        let Some(limit) = d["spec"]["revisionHistoryLimit"].as_i64() else {
            return Ok(());
        };
        let mut cleanable: Vec<&Value> = old.iter().filter(|rs| !meta::deleting(rs)).collect();
        let diff = i64::try_from(cleanable.len()).unwrap_or(i64::MAX) - limit;
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| by_revision(a, b));
        for rs in cleanable.iter().take(usize::try_from(diff).unwrap_or(0)) {
            let observed = rs["status"]["observedGeneration"].as_i64().unwrap_or(0);
            let generation = rs["metadata"]["generation"].as_i64().unwrap_or(0);
            if status_count(rs, "replicas") != 0 || replicas(rs) != 0 || generation > observed {
                continue;
            }
            tracing::debug!(rs = meta::str(rs, "name"), "cleaning up old replica set");
            let opts = DeleteOptions {
                preconditions_uid: Some(meta::uid(rs).to_string()),
                ..DeleteOptions::default()
            };
            match self
                .cluster
                .delete(
                    replicasets(),
                    meta::str(rs, "namespace"),
                    meta::str(rs, "name"),
                    &opts,
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// upstream `syncDeploymentStatus`.
    async fn sync_status(
        &self,
        d: &Value,
        old: &[Value],
        new_rs: Option<&Value>,
    ) -> SyncResult<()> {
        let all: Vec<&Value> = old.iter().chain(new_rs).collect();
        let status = calculate_status(&all, new_rs, d);
        if status == d["status"] {
            return Ok(());
        }
        let mut d = d.clone();
        d["status"] = status;
        self.write_status(&d).await
    }

    /// upstream `syncRolloutStatus`; returns when to look again for a stuck rollout
    /// (upstream `requeueStuckDeployment`).
    async fn sync_rollout_status(
        &self,
        d: &Value,
        old: &[Value],
        new_rs: Option<&Value>,
    ) -> SyncResult<Option<Duration>> {
        let all: Vec<&Value> = old.iter().chain(new_rs).collect();
        let mut status = calculate_status(&all, new_rs, d);
        let deadline = progress_deadline(d);
        if deadline.is_none() {
            remove_condition(&mut status, "Progressing");
        }
        let current = condition(&d["status"], "Progressing").cloned();
        let n = |f: &str| status[f].as_i64().unwrap_or(0);
        let complete_rollout = n("replicas") == n("updatedReplicas")
            && current
                .as_ref()
                .is_some_and(|c| c["reason"] == NEW_RS_AVAILABLE);
        let now = crate::replicaset::now_seconds();
        if deadline.is_some() && !complete_rollout {
            let rs_name = new_rs.map(|rs| meta::str(rs, "name").to_string());
            let about = |what: &str| match &rs_name {
                Some(n) => format!("ReplicaSet {n:?} {what}"),
                None => format!("Deployment {:?} {what}", meta::str(d, "name")),
            };
            if complete(d, &status) {
                set_condition(
                    &mut status,
                    new_condition(
                        "Progressing",
                        "True",
                        NEW_RS_AVAILABLE,
                        &about("has successfully progressed."),
                    ),
                );
            } else if progressing(d, &status) {
                let mut cond =
                    new_condition("Progressing", "True", RS_UPDATED, &about("is progressing."));
                if let Some(cur) = &current {
                    if cur["status"] == "True" {
                        cond["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                    }
                    remove_condition(&mut status, "Progressing");
                }
                set_condition(&mut status, cond);
            } else if timed_out(d, &status, now) {
                set_condition(
                    &mut status,
                    new_condition(
                        "Progressing",
                        "False",
                        TIMED_OUT,
                        &about("has timed out progressing."),
                    ),
                );
            }
        }
        match replica_failure(&all, new_rs) {
            Some(c) => set_condition(&mut status, c),
            None => remove_condition(&mut status, "ReplicaFailure"),
        }
        if status == d["status"] {
            return Ok(requeue_stuck(d, &status, now));
        }
        let mut d = d.clone();
        d["status"] = status;
        self.write_status(&d).await?;
        Ok(None)
    }
}

/// Makes sure `status` is an object.
fn ensure_status(d: &mut Value) {
    if !d["status"].is_object() {
        d["status"] = json!({});
    }
}

/// upstream `SetDeploymentCondition(&d.Status, cond)`.
fn set_status_condition(d: &mut Value, cond: Value) {
    ensure_status(d);
    set_condition(&mut d["status"], cond);
}

/// Puts `updated` in place of the set with its uid.
fn replace(
    new_rs: Option<Value>,
    mut old: Vec<Value>,
    updated: Value,
) -> (Option<Value>, Vec<Value>) {
    let uid = meta::uid(&updated).to_string();
    if new_rs.as_ref().is_some_and(|rs| meta::uid(rs) == uid) {
        return (Some(updated), old);
    }
    if let Some(slot) = old.iter_mut().find(|rs| meta::uid(rs) == uid) {
        *slot = updated;
    }
    (new_rs, old)
}

/// upstream `FindActiveOrLatest`: the only active set, or the newest when none is active;
/// `None` when several are active.
fn active_or_latest(new_rs: Option<&Value>, old: &mut [Value]) -> Option<Value> {
    if new_rs.is_none() && old.is_empty() {
        return None;
    }
    old.sort_by(|a, b| by_creation(b, a));
    let active: Vec<&Value> = old
        .iter()
        .chain(new_rs)
        .filter(|rs| replicas(rs) > 0)
        .collect();
    match active.len() {
        0 => new_rs.or_else(|| old.first()).cloned(),
        1 => Some(active[0].clone()),
        _ => None,
    }
}

/// upstream `getReplicaFailures`: the ReplicaFailure condition of the new set, else of any.
fn replica_failure(all: &[&Value], new_rs: Option<&Value>) -> Option<Value> {
    let from = |rs: &Value| {
        condition(&rs["status"], "ReplicaFailure").map(|c| {
            json!({"type": "ReplicaFailure", "status": c["status"],
                   "lastUpdateTime": c["lastTransitionTime"],
                   "lastTransitionTime": c["lastTransitionTime"],
                   "reason": c["reason"], "message": c["message"]})
        })
    };
    new_rs
        .and_then(from)
        .or_else(|| all.iter().find_map(|rs| from(rs)))
}

/// upstream `requeueStuckDeployment`: how long until the progress deadline passes.
fn requeue_stuck(d: &Value, new_status: &Value, now: i64) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let cur = condition(&d["status"], "Progressing")?;
    if complete(d, new_status) || cur["reason"] == TIMED_OUT {
        return None;
    }
    let updated = cur["lastUpdateTime"]
        .as_str()
        .and_then(crate::pod::seconds)?;
    let after = updated + deadline - now;
    if after < 1 {
        return Some(Duration::from_secs(1));
    }
    Some(Duration::from_secs(u64::try_from(after + 1).unwrap_or(1)))
}
