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
//! Deployments, ReplicaSets and pods are read as k8s-openapi types (`crate::typed`), decoded
//! once where they are read (a get, a list, a watched change). A new ReplicaSet is built
//! typed and serialised once, at the create; scaling and annotating a ReplicaSet edit its
//! stored JSON; the deployment's status is computed typed and written whole (as upstream's
//! `UpdateStatus` does) with the revision annotation.
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

use api::registry::ResourceInfo;
use api::selector::LabelSelector;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::claim::{self, Owner};
use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::events::{self, Recorder, Style};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Cache, Change, Delta};
use crate::replicaset::replicasets;
use crate::typed::{self, key_of, name, namespace, uid};
use util::*;

/// Upstream `--concurrent-deployment-syncs`.
const WORKERS: usize = 5;

fn deployments() -> &'static ResourceInfo {
    typed::info::<Deployment>()
}

fn pods() -> &'static ResourceInfo {
    typed::info::<Pod>()
}

type Key = (String, String);

/// Runs the Deployment controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let controller = Arc::new(Controller {
        recorder: Recorder::new(cluster.clone(), "deployment-controller", Style::Legacy),
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        deployments: Cache::default(),
        sets: Cache::default(),
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
    /// The deployments seen, for the event handlers (upstream's dLister).
    deployments: Cache<Deployment>,
    /// The ReplicaSets seen, for the event handlers (upstream's rsLister).
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

    /// Queues the deployments a watched change concerns (upstream's event handlers).
    fn observe(&self, change: Change) {
        self.deployments.apply(&change);
        self.sets.apply(&change);
        let (Delta::Upsert(obj) | Delta::Delete(obj)) = &change.delta else {
            return;
        };
        let Ok(m) = typed::metadata(obj) else {
            return;
        };
        if std::ptr::eq(change.info, deployments()) {
            self.queue.add(key_of(&m));
        } else if std::ptr::eq(change.info, replicasets()) {
            match deployment_owner(&m) {
                Some(k) => self.queue.add(k),
                None if typed::controller_ref(&m).is_none() => {
                    // An orphan may be adopted by any deployment selecting it.
                    for d in self.deployments.list(namespace(&m)) {
                        if selector_of(&d).is_some_and(|s| !s.is_empty() && claim::selected(&s, &m))
                        {
                            self.queue.add(key_of(&d.metadata));
                        }
                    }
                }
                None => {}
            }
        } else if matches!(change.delta, Delta::Delete(_))
            && let Some(r) = typed::controller_ref(&m)
            && r.kind == "ReplicaSet"
            && let Some(rs) = self.sets.get(namespace(&m), &r.name)
            && let Some(k) = deployment_owner(&rs.metadata)
        {
            // A deleted pod may let a Recreate rollout continue.
            self.queue.add(k);
        }
    }
}

/// The deployment named by an object's controller reference.
fn deployment_owner(m: &ObjectMeta) -> Option<Key> {
    let r = typed::controller_ref(m)?;
    (r.kind == "Deployment").then(|| (namespace(m).to_string(), r.name.clone()))
}

/// `spec.selector` as a selector; `None` for an invalid one, which selects nothing.
fn selector_of(d: &Deployment) -> Option<LabelSelector> {
    LabelSelector::from_k8s(&d.spec.selector).ok()
}

/// Whether the deployment is paused.
fn is_paused(d: &Deployment) -> bool {
    d.spec.paused == Some(true)
}

/// Whether `rs` runs the deployment's template (upstream `EqualIgnoreHash` of the two).
fn same_template(rs: &ReplicaSet, d: &Deployment) -> bool {
    let none = PodTemplateSpec::default();
    equal_ignore_hash(rs.spec.template.as_ref().unwrap_or(&none), &d.spec.template)
}

/// Why a sync could not finish: an API error becomes [`Error`].
type SyncResult<T> = Result<T, Error>;

fn not_found(info: &ResourceInfo, name: &str) -> Error {
    Error::from(api::status::ApiError::not_found(info, name))
}

impl Controller {
    /// upstream `syncDeployment`; `Some(d)` asks to look again after `d`.
    async fn sync(&self, namespace: &str, name: &str) -> SyncResult<Option<Duration>> {
        let Some(mut d) = typed::get::<Deployment>(&self.cluster, namespace, name).await? else {
            return Ok(None);
        };
        let Some(selector) = selector_of(&d) else {
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
            let generation = d.metadata.generation.unwrap_or(0);
            let status = d.status.get_or_insert_default();
            if status.observed_generation.unwrap_or(0) < generation {
                status.observed_generation = Some(generation);
                self.write_status(&d).await?;
            }
            return Ok(None);
        }
        let owner = Owner::of(&d.metadata, deployments(), &selector);
        let candidates = typed::list::<ReplicaSet>(&self.cluster, Some(namespace)).await?;
        let mut rs_list = claim::claim(&self.cluster, &owner, candidates).await?;
        if owner.deleting {
            let (new_rs, old) = self.all_replica_sets(&mut d, &mut rs_list, false).await?;
            self.sync_status(&d, &old, new_rs.as_ref()).await?;
            return Ok(None);
        }
        self.check_paused_conditions(&mut d).await?;
        if is_paused(&d) {
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
    async fn event(&self, d: &Deployment, event_type: &str, reason: &str, message: &str) {
        self.recorder
            .event(deployments(), &d.metadata, event_type, reason, "", message)
            .await;
    }

    /// upstream `getPodMapForDeployment`: the deployment's pods by ReplicaSet uid.
    async fn pod_map(
        &self,
        d: &Deployment,
        selector: &LabelSelector,
        rs_list: &[ReplicaSet],
    ) -> SyncResult<HashMap<String, Vec<Pod>>> {
        let mut map: HashMap<String, Vec<Pod>> = rs_list
            .iter()
            .map(|rs| (uid(&rs.metadata).to_string(), Vec::new()))
            .collect();
        let all = typed::list::<Pod>(&self.cluster, Some(namespace(&d.metadata))).await?;
        for p in all {
            if !claim::selected(selector, &p.metadata) {
                continue;
            }
            let Some(owner) = typed::controller_ref(&p.metadata).map(|r| r.uid.clone()) else {
                continue;
            };
            if let Some(v) = map.get_mut(&owner) {
                v.push(p);
            }
        }
        Ok(map)
    }

    /// upstream `UpdateStatus(d)`: writes the deployment's status and its revision
    /// annotation through the status subresource. The deployment status strategy keeps only
    /// spec and labels from the stored object, so the controller's annotation travels with
    /// the status without bumping `metadata.generation` (a main-resource update of
    /// annotations would bump it). Gone or replaced: nothing to write.
    async fn write_status(&self, d: &Deployment) -> SyncResult<()> {
        let revision = annotation(&d.metadata, REVISION).map(str::to_string);
        let status = match &d.status {
            Some(s) => Some(typed::encode(s)?),
            None => None,
        };
        typed::edit(&self.cluster, d, Subresource::Status, |new| {
            let mut changed = false;
            if let Some(rev) = &revision {
                changed |= edit_annotations(new, |a| set_annotation(a, REVISION, rev));
            }
            if let Some(status) = &status
                && new["status"] != *status
            {
                new["status"] = status.clone();
                changed = true;
            }
            changed
        })
        .await?;
        Ok(())
    }

    /// upstream `checkPausedConditions`.
    async fn check_paused_conditions(&self, d: &mut Deployment) -> SyncResult<()> {
        if progress_deadline(d).is_none() {
            return Ok(());
        }
        let cond = condition(d.status.as_ref(), "Progressing");
        if cond.is_some_and(|c| reason(c) == TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = cond.is_some_and(|c| reason(c) == PAUSED);
        let paused = is_paused(d);
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
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> SyncResult<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        rs_list.sort_by(by_creation);
        let new_uid = rs_list
            .iter()
            .find(|rs| same_template(rs, d))
            .map(|rs| uid(&rs.metadata).to_string());
        let is_new = |rs: &ReplicaSet| Some(uid(&rs.metadata)) == new_uid.as_deref();
        let old: Vec<ReplicaSet> = rs_list.iter().filter(|rs| !is_new(rs)).cloned().collect();
        let existing = rs_list.iter().find(|rs| is_new(rs)).cloned();
        let new_rs = self.new_replica_set(d, existing, &old, create).await?;
        if let Some(rs) = &new_rs {
            match rs_list
                .iter_mut()
                .find(|r| uid(&r.metadata) == uid(&rs.metadata))
            {
                Some(slot) => *slot = rs.clone(),
                None => rs_list.push(rs.clone()),
            }
        }
        Ok((new_rs, old))
    }

    /// upstream `getNewReplicaSet`.
    async fn new_replica_set(
        &self,
        d: &mut Deployment,
        existing: Option<ReplicaSet>,
        old: &[ReplicaSet],
        create: bool,
    ) -> SyncResult<Option<ReplicaSet>> {
        let new_revision = max_revision(old) + 1;
        let min_ready = d.spec.min_ready_seconds.unwrap_or(0);
        if let Some(rs) = existing {
            let mut annotations = rs.metadata.annotations.clone().unwrap_or_default();
            let annotations_changed =
                set_new_rs_annotations(d, &mut annotations, new_revision, true);
            let min_ready_changed = rs.spec.min_ready_seconds.unwrap_or(0) != min_ready;
            if annotations_changed || min_ready_changed {
                let dep: &Deployment = d;
                let updated = typed::edit(&self.cluster, &rs, Subresource::Main, |o| {
                    let mut changed =
                        edit_annotations(o, |a| set_new_rs_annotations(dep, a, new_revision, true));
                    if o["spec"]["minReadySeconds"].as_i64().unwrap_or(0) != i64::from(min_ready) {
                        o["spec"]["minReadySeconds"] = json!(min_ready);
                        changed = true;
                    }
                    changed
                })
                .await?
                .ok_or_else(|| not_found(replicasets(), name(&rs.metadata)))?;
                return Ok(Some(typed::decode(&updated)?));
            }
            let rev = annotation(&rs.metadata, REVISION).unwrap_or("").to_string();
            let mut needs_update = set_annotation(annotations_mut(&mut d.metadata), REVISION, &rev);
            if progress_deadline(d).is_some()
                && condition(d.status.as_ref(), "Progressing").is_none()
            {
                let msg = format!("Found new replica set {:?}", name(&rs.metadata));
                set_status_condition(d, new_condition("Progressing", "True", FOUND_NEW_RS, &msg));
                needs_update = true;
            }
            if needs_update {
                self.write_status(d).await?;
            }
            return Ok(Some(rs));
        }
        if !create {
            return Ok(None);
        }
        // A new ReplicaSet.
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&typed::encode(&d.spec.template)?, collision);
        let mut template = d.spec.template.clone();
        let labels = template
            .metadata
            .get_or_insert_default()
            .labels
            .get_or_insert_default();
        labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let labels = labels.clone();
        let mut selector = d.spec.selector.clone();
        let match_labels = selector.match_labels.get_or_insert_default();
        match_labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let rs_name = format!("{}-{hash}", name(&d.metadata));
        let ns = namespace(&d.metadata).to_string();
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: Some(ns.clone()),
                owner_references: Some(vec![typed::controller_ref_to(&*d)]),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(min_ready),
                selector,
                template: Some(template),
            },
            status: None,
        };
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new_rs)).collect();
        let count = new_rs_new_replicas(d, &all, &new_rs);
        new_rs.spec.replicas = Some(int32(count));
        set_new_rs_annotations(
            d,
            annotations_mut(&mut new_rs.metadata),
            new_revision,
            false,
        );
        let created = self
            .cluster
            .create(replicasets(), &ns, typed::encode(&new_rs)?)
            .await;
        let (created, already) = match created {
            Ok(rs) => (typed::decode::<ReplicaSet>(&rs)?, false),
            Err(e) if e.code == 409 && e.reason == "AlreadyExists" => {
                let Some(rs) = typed::get::<ReplicaSet>(&self.cluster, &ns, &rs_name).await? else {
                    return Err(not_found(replicasets(), &rs_name));
                };
                let controlled =
                    typed::controller_ref(&rs.metadata).is_some_and(|r| r.uid == uid(&d.metadata));
                if controlled && same_template(&rs, d) {
                    (rs, true)
                } else {
                    // A hash collision: bump collisionCount and try again next sync.
                    let status = d.status.get_or_insert_default();
                    status.collision_count = Some(collision.unwrap_or(0).saturating_add(1));
                    self.write_status(d).await?;
                    tracing::info!(
                        deployment = name(&d.metadata),
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
                    let msg = format!(
                        "Failed to create new replica set {rs_name:?}: {}",
                        e.message
                    );
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
            let msg = format!("Scaled up replica set {rs_name} from 0 to {count}");
            self.event(d, events::NORMAL, "ScalingReplicaSet", &msg)
                .await;
        }
        let revision = new_revision.to_string();
        let mut needs_update =
            set_annotation(annotations_mut(&mut d.metadata), REVISION, &revision);
        if !already && progress_deadline(d).is_some() {
            let msg = format!("Created new replica set {rs_name:?}");
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
    async fn scale_and_record(
        &self,
        rs: &ReplicaSet,
        to: i64,
        d: &Deployment,
    ) -> SyncResult<(bool, ReplicaSet)> {
        if rs_replicas(rs) == to {
            return Ok((false, rs.clone()));
        }
        self.scale_replica_set(rs, to, d).await
    }

    /// upstream `scaleReplicaSet`: sets `spec.replicas` and the replica annotations;
    /// `ScalingReplicaSet` event when the size changed.
    async fn scale_replica_set(
        &self,
        rs: &ReplicaSet,
        to: i64,
        d: &Deployment,
    ) -> SyncResult<(bool, ReplicaSet)> {
        let desired = replicas(d);
        let max = desired + max_surge(d);
        let from = rs_replicas(rs);
        let size_changes = from != to;
        if !size_changes && !replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let updated = typed::edit(&self.cluster, rs, Subresource::Main, |o| {
            let mut changed = edit_annotations(o, |a| set_replicas_annotations(a, desired, max));
            if o["spec"]["replicas"].as_i64().unwrap_or(1) != to {
                o["spec"]["replicas"] = json!(to);
                changed = true;
            }
            changed
        })
        .await?
        .ok_or_else(|| not_found(replicasets(), name(&rs.metadata)))?;
        if size_changes {
            let op = if from < to { "up" } else { "down" };
            let msg = format!(
                "Scaled {op} replica set {} from {from} to {to}",
                name(&rs.metadata)
            );
            self.event(d, events::NORMAL, "ScalingReplicaSet", &msg)
                .await;
        }
        Ok((size_changes, typed::decode(&updated)?))
    }

    /// upstream `isScalingEvent`.
    async fn is_scaling_event(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> SyncResult<bool> {
        let (new_rs, old) = self.all_replica_sets(d, rs_list, false).await?;
        let want = replicas(d);
        Ok(old
            .iter()
            .chain(new_rs.iter())
            .filter(|rs| rs_replicas(rs) > 0)
            .filter_map(|rs| {
                annotation(&rs.metadata, DESIRED_REPLICAS).and_then(|s| s.parse::<i64>().ok())
            })
            .any(|desired| desired != want))
    }

    /// upstream `sync`: scaling events and paused deployments.
    async fn sync_scale(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> SyncResult<()> {
        let (new_rs, old) = self.all_replica_sets(d, rs_list, false).await?;
        let (new_rs, old) = self.scale(d, new_rs, old).await?;
        if is_paused(d) {
            self.cleanup(d, &old).await?;
        }
        self.sync_status(d, &old, new_rs.as_ref()).await
    }

    /// upstream `scale`: proportional scaling across the active ReplicaSets.
    async fn scale(
        &self,
        d: &Deployment,
        new_rs: Option<ReplicaSet>,
        mut old: Vec<ReplicaSet>,
    ) -> SyncResult<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let want = replicas(d);
        // One active (or none: the newest) set takes the whole count.
        if let Some(target) = active_or_latest(new_rs.as_ref(), &mut old) {
            if rs_replicas(&target) != want {
                let (_, updated) = self.scale_replica_set(&target, want, d).await?;
                return Ok(replace(new_rs, old, updated));
            }
            return Ok((new_rs, old));
        }
        if is_saturated(d, new_rs.as_ref()) {
            for rs in old.iter_mut().filter(|rs| rs_replicas(rs) > 0) {
                let (_, updated) = self.scale_replica_set(rs, 0, d).await?;
                *rs = updated;
            }
            return Ok((new_rs, old));
        }
        if !is_rolling(d) {
            return Ok((new_rs, old));
        }
        let mut active: Vec<ReplicaSet> = old
            .iter()
            .chain(new_rs.iter())
            .filter(|rs| rs_replicas(rs) > 0)
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
                sizes.push(rs_replicas(rs) + p);
                added += p;
            } else {
                sizes.push(rs_replicas(rs));
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
    async fn cleanup(&self, d: &Deployment, old: &[ReplicaSet]) -> SyncResult<()> {
        let Some(limit) = d.spec.revision_history_limit.map(i64::from) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = i64::try_from(cleanable.len()).unwrap_or(i64::MAX) - limit;
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| by_revision(a, b));
        for rs in cleanable.iter().take(usize::try_from(diff).unwrap_or(0)) {
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation);
            let generation = rs.metadata.generation.unwrap_or(0);
            if actual(rs) != 0 || rs_replicas(rs) != 0 || generation > observed.unwrap_or(0) {
                continue;
            }
            let (ns, rs_name, rs_uid) = typed::at(&rs.metadata);
            tracing::debug!(rs = rs_name, "cleaning up old replica set");
            let opts = DeleteOptions {
                preconditions_uid: Some(rs_uid.to_string()),
                ..DeleteOptions::default()
            };
            match self.cluster.delete(replicasets(), ns, rs_name, &opts).await {
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
        d: &Deployment,
        old: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> SyncResult<()> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new_rs).collect();
        let status = calculate_status(&all, new_rs, d);
        self.write_new_status(d, status).await
    }

    /// Writes `status` when it differs from the stored one.
    async fn write_new_status(&self, d: &Deployment, status: DeploymentStatus) -> SyncResult<()> {
        if d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut d = d.clone();
        d.status = Some(status);
        self.write_status(&d).await
    }

    /// upstream `syncRolloutStatus`; returns when to look again for a stuck rollout
    /// (upstream `requeueStuckDeployment`).
    async fn sync_rollout_status(
        &self,
        d: &Deployment,
        old: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> SyncResult<Option<Duration>> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new_rs).collect();
        let mut status = calculate_status(&all, new_rs, d);
        let deadline = progress_deadline(d);
        if deadline.is_none() {
            remove_condition(&mut status, "Progressing");
        }
        let current = condition(d.status.as_ref(), "Progressing").cloned();
        let complete_rollout = status.replicas.unwrap_or(0) == status.updated_replicas.unwrap_or(0)
            && current
                .as_ref()
                .is_some_and(|c| reason(c) == NEW_RS_AVAILABLE);
        let now = crate::replicaset::now_seconds();
        if deadline.is_some() && !complete_rollout {
            let rs_name = new_rs.map(|rs| name(&rs.metadata).to_string());
            let about = |what: &str| match &rs_name {
                Some(n) => format!("ReplicaSet {n:?} {what}"),
                None => format!("Deployment {:?} {what}", name(&d.metadata)),
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
                    if cur.status.as_deref() == Some("True") {
                        cond.last_transition_time = cur.last_transition_time.clone();
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
        if d.status.as_ref() == Some(&status) {
            return Ok(requeue_stuck(d, &status, now));
        }
        self.write_new_status(d, status).await?;
        Ok(None)
    }
}

/// upstream `SetDeploymentCondition(&d.Status, cond)`.
fn set_status_condition(d: &mut Deployment, cond: DeploymentCondition) {
    set_condition(d.status.get_or_insert_default(), cond);
}

/// Puts `updated` in place of the set with its uid.
fn replace(
    new_rs: Option<ReplicaSet>,
    mut old: Vec<ReplicaSet>,
    updated: ReplicaSet,
) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
    let same = |rs: &ReplicaSet| uid(&rs.metadata) == uid(&updated.metadata);
    if new_rs.as_ref().is_some_and(same) {
        return (Some(updated), old);
    }
    if let Some(slot) = old.iter_mut().find(|rs| same(rs)) {
        *slot = updated;
    }
    (new_rs, old)
}

/// upstream `FindActiveOrLatest`: the only active set, or the newest when none is active;
/// `None` when several are active.
fn active_or_latest(new_rs: Option<&ReplicaSet>, old: &mut [ReplicaSet]) -> Option<ReplicaSet> {
    if new_rs.is_none() && old.is_empty() {
        return None;
    }
    old.sort_by(|a, b| by_creation(b, a));
    let active: Vec<&ReplicaSet> = old
        .iter()
        .chain(new_rs)
        .filter(|rs| rs_replicas(rs) > 0)
        .collect();
    match active.len() {
        0 => new_rs.or_else(|| old.first()).cloned(),
        1 => Some(active[0].clone()),
        _ => None,
    }
}

/// upstream `getReplicaFailures`: the ReplicaFailure condition of the new set, else of any
/// (upstream `ReplicaSetToDeploymentCondition`).
fn replica_failure(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Option<DeploymentCondition> {
    let from = |rs: &ReplicaSet| {
        let conditions = rs.status.as_ref()?.conditions.as_ref()?;
        let c = conditions
            .iter()
            .find(|c| c.type_.as_deref() == Some("ReplicaFailure"))?;
        Some(DeploymentCondition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            last_update_time: c.last_transition_time.clone(),
            last_transition_time: c.last_transition_time.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
    };
    new_rs
        .and_then(from)
        .or_else(|| all.iter().find_map(|rs| from(rs)))
}

/// upstream `requeueStuckDeployment`: how long until the progress deadline passes.
fn requeue_stuck(d: &Deployment, new_status: &DeploymentStatus, now: i64) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let cur = condition(d.status.as_ref(), "Progressing")?;
    if complete(d, new_status) || reason(cur) == TIMED_OUT {
        return None;
    }
    let after = last_update(cur)? + deadline - now;
    if after < 1 {
        return Some(Duration::from_secs(1));
    }
    Some(Duration::from_secs(u64::try_from(after + 1).unwrap_or(1)))
}
