//! The StatefulSet controller (upstream `pkg/controller/statefulset`: `stateful_set.go`,
//! `stateful_set_control.go`, `stateful_set_utils.go`, `stateful_pod_control.go`).
//!
//! [`Controller::sync`] claims the set's pods (those its selector matches and whose name is
//! `<set>-<ordinal>`) and ControllerRevisions, works out the current and update revisions
//! ([`Controller::revisions`]: the update revision is a snapshot of the pod template,
//! `crate::history`), then [`Controller::update_set`] walks the pods as upstream's
//! `updateStatefulSet` does: ordinals `[start, start+replicas)` are the replicas, others are
//! condemned; a missing replica is created (its claims first, [`pods`]), a failed one deleted;
//! with `OrderedReady` each step waits for the previous pod to be Running and Ready (and
//! available after `minReadySeconds`), with `Parallel` it does not; condemned pods go in
//! reverse ordinal order; then `RollingUpdate` deletes, from the highest ordinal down to the
//! `partition`, the pods not at the update revision (one at a time, or `maxUnavailable`),
//! `OnDelete` leaves that to the user. The status (`replicas`, `readyReplicas`,
//! `currentReplicas`, `updatedReplicas`, `availableReplicas`, revisions, `collisionCount`,
//! `observedGeneration`) is written after every sync, and history beyond
//! `revisionHistoryLimit` removed.
//!
//! A pod is only created when no pod of its name exists: a pod on an unreachable node
//! keeps its name until it is really gone, so a replacement never runs beside it (upstream's
//! at-most-one semantics).

pub(crate) mod pods;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use api::selector::LabelSelector;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::events::{self, Recorder, Style};
use crate::history;
use crate::pod::typed::{is_available, is_ready};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Cache, Change, Delta};
use crate::{Error, typed};

use pods::{
    REVISION_LABEL, StatefulSetExt, is_created, is_failed, is_healthy, is_running_and_available,
    is_running_and_ready, is_terminating, ordinal_of, parent_of,
};

/// Upstream `--concurrent-statefulset-syncs`.
const WORKERS: usize = 5;

type Key = (String, String);

/// The apps/v1 StatefulSet resource.
pub(crate) fn statefulsets() -> &'static ResourceInfo {
    typed::info::<StatefulSet>()
}

fn pods_info() -> &'static ResourceInfo {
    typed::info::<Pod>()
}

/// Runs the StatefulSet controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let controller = Arc::new(Controller {
        recorder: Recorder::new(cluster.clone(), "statefulset-controller", Style::Legacy),
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        sets: Cache::default(),
    });
    crate::queue::drive(
        &cluster,
        controller,
        &[statefulsets(), pods_info(), history::revisions()],
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
    /// The sets seen, for the pod event handlers (upstream's setLister).
    sets: Cache<StatefulSet>,
}

impl Reconciler for Controller {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        self.sync(&key.0, &key.1).await
    }

    /// Queues the sets a change concerns: the set itself; for a pod or revision its
    /// controller, or (an orphan) every set whose selector matches it.
    fn observe(&self, change: Change) {
        let obj = match &change.delta {
            Delta::Synced => return,
            Delta::Upsert(o) | Delta::Delete(o) => o.clone(),
        };
        if std::ptr::eq(change.info, statefulsets()) {
            self.sets.apply(&change);
            self.queue
                .add(typed::key_of(&typed::metadata(&obj).unwrap_or_default()));
            return;
        }
        let Ok(m) = typed::metadata(&obj) else {
            return;
        };
        for key in self.sets.owners_of(&m, selector_of) {
            self.queue.add(key);
        }
    }
}

/// `spec.selector` as a selector; `None` for an invalid one.
fn selector_of(set: &StatefulSet) -> Option<LabelSelector> {
    LabelSelector::from_k8s(&set.spec.selector).ok()
}

/// The status a sync computed (upstream `StatefulSetStatus`).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Status {
    pub(crate) replicas: i64,
    pub(crate) ready: i64,
    pub(crate) available: i64,
    pub(crate) current: i64,
    pub(crate) updated: i64,
    pub(crate) current_revision: String,
    pub(crate) update_revision: String,
    pub(crate) collision_count: i32,
}

/// The outcome of `update_set`: what to write, and when to look again.
struct Outcome {
    status: Status,
    requeue: Option<Duration>,
}

impl Controller {
    /// upstream `sync` + `syncStatefulSet` + `UpdateStatefulSet`.
    async fn sync(&self, namespace: &str, name: &str) -> Result<Option<Duration>, Error> {
        let Some(set) = typed::get::<StatefulSet>(&self.cluster, namespace, name).await? else {
            return Ok(None);
        };
        let Some(selector) = selector_of(&set) else {
            tracing::warn!(%namespace, %name, "statefulset has an invalid selector; skipping");
            return Ok(None);
        };
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let owner = crate::claim::Owner::of(&set.metadata, statefulsets(), &selector);
        let candidates: Vec<Pod> = typed::list::<Pod>(&self.cluster, Some(namespace))
            .await?
            .into_iter()
            .filter(|p| parent_of(typed::name(&p.metadata)) == Some(name))
            .collect();
        let pods = crate::claim::claim(&self.cluster, &owner, candidates).await?;
        let revisions = typed::list::<ControllerRevision>(&self.cluster, Some(namespace)).await?;
        let mut revisions = crate::claim::claim(&self.cluster, &owner, revisions).await?;
        history::sort(&mut revisions);

        let (current, update, collision_count, revisions) = self.revisions(&set, revisions).await?;
        let outcome = self
            .update_set(&set, &current, &update, collision_count, pods)
            .await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // Upstream writes no status on a failed update; the key is retried.
                return Err(e);
            }
        };
        self.write_status(&set, &outcome.status).await?;
        // upstream truncateHistory: revisions of live pods, current and update kept.
        let live_pods = typed::list::<Pod>(&self.cluster, Some(namespace)).await?;
        let mut live: HashSet<String> = live_pods
            .iter()
            .filter(|p| {
                typed::controller_ref(&p.metadata)
                    .is_some_and(|r| Some(&r.uid) == set.metadata.uid.as_ref())
            })
            .filter_map(|p| p.metadata.labels.as_ref()?.get(REVISION_LABEL).cloned())
            .collect();
        live.insert(typed::name(&current.metadata).to_string());
        live.insert(typed::name(&update.metadata).to_string());
        let limit = i64::from(set.spec.revision_history_limit.unwrap_or(10));
        history::truncate(&self.cluster, &revisions, &live, limit).await?;
        Ok(outcome.requeue)
    }

    /// upstream `getStatefulSetRevisions`: the current revision (the one named by
    /// `status.currentRevision`, else the update revision) and the update revision (an
    /// existing revision with the template's data, renumbered to be the newest, or a new
    /// one), the collision count, and the revisions now stored.
    async fn revisions(
        &self,
        set: &StatefulSet,
        mut revisions: Vec<ControllerRevision>,
    ) -> Result<
        (
            ControllerRevision,
            ControllerRevision,
            i32,
            Vec<ControllerRevision>,
        ),
        Error,
    > {
        let status = set.status.as_ref();
        let mut collision_count = status.and_then(|s| s.collision_count).unwrap_or(0);
        let next = history::next_revision(&revisions);
        let candidate = pods::new_revision(set, next, collision_count);
        let equal: Vec<usize> = revisions
            .iter()
            .enumerate()
            .filter(|(_, r)| history::equal(r, &candidate))
            .map(|(i, _)| i)
            .collect();
        let update = match equal.last() {
            Some(&i) if i + 1 == revisions.len() => revisions[i].clone(),
            Some(&i) => {
                let renumbered = history::update_number(
                    &self.cluster,
                    &revisions[i],
                    candidate.revision.unwrap_or(next),
                )
                .await?;
                revisions[i] = renumbered.clone();
                renumbered
            }
            None => {
                let created =
                    history::create(&self.cluster, &candidate, &mut collision_count).await?;
                revisions.push(created.clone());
                created
            }
        };
        let current_name = status
            .and_then(|s| s.current_revision.clone())
            .unwrap_or_default();
        let current = revisions
            .iter()
            .find(|r| typed::name(&r.metadata) == current_name)
            .cloned()
            .unwrap_or_else(|| update.clone());
        history::sort(&mut revisions);
        Ok((current, update, collision_count, revisions))
    }

    /// upstream `updateStatefulSet` (and its `processReplica` / `processCondemned`).
    async fn update_set(
        &self,
        set: &StatefulSet,
        current: &ControllerRevision,
        update: &ControllerRevision,
        collision_count: i32,
        pods: Vec<Pod>,
    ) -> Result<Outcome, Error> {
        let current_set = pods::apply_revision(set, current);
        let update_set = pods::apply_revision(set, update);
        let current_name = typed::name(&current.metadata).to_string();
        let update_name = typed::name(&update.metadata).to_string();
        let min_ready = set.min_ready_seconds();
        let now = crate::replicaset::now_seconds();
        let mut status = compute_status(&pods, &current_name, &update_name, min_ready, now);
        status.collision_count = collision_count;
        let start = set.start_ordinal();
        let replica_count = set.replicas();
        let end = start + replica_count;
        let monotonic = !set.allows_burst();

        // Replicas by ordinal, condemned pods sorted by descending ordinal.
        let mut replicas: Vec<Option<Pod>> =
            vec![None; usize::try_from(replica_count).unwrap_or(0)];
        let mut condemned: Vec<Pod> = Vec::new();
        for p in pods {
            match ordinal_of(typed::name(&p.metadata)) {
                Some(o) if o >= start && o < end => {
                    let i = usize::try_from(o - start).unwrap_or(0);
                    replicas[i] = Some(p);
                }
                Some(_) => condemned.push(p),
                None => {}
            }
        }
        condemned.sort_by_key(|p| std::cmp::Reverse(ordinal_of(typed::name(&p.metadata))));

        let first_unhealthy: Option<String> = replicas
            .iter()
            .flatten()
            .find(|p| !is_healthy(p))
            .or_else(|| condemned.iter().rev().find(|p| !is_healthy(p)))
            .map(|p| typed::name(&p.metadata).to_string());

        let mut requeue = None;
        let done = |status: Status, requeue| Ok(Outcome { status, requeue });

        // The replicas, in ordinal order.
        for (i, slot) in replicas.iter_mut().enumerate() {
            let ordinal = start + i64::try_from(i).unwrap_or(0);
            if let Some(p) = slot.as_ref()
                && (is_failed(p) || pods::is_succeeded(p))
                && !is_terminating(p)
            {
                // upstream deletes a failed (or, restartPolicy Always, succeeded) pod and
                // makes it again.
                // A new pod is made on a later sync, once this one is gone.
                self.delete_pod(set, p).await?;
                return done(status, requeue);
            }
            let Some(p) = slot.as_ref() else {
                let pod = pods::new_versioned_pod(
                    &current_set,
                    &update_set,
                    &current_name,
                    &update_name,
                    ordinal,
                );
                self.create_pod(set, &pod).await?;
                status.replicas += 1;
                let rev = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(REVISION_LABEL));
                if rev == Some(&current_name) {
                    status.current += 1;
                }
                if rev == Some(&update_name) {
                    status.updated += 1;
                }
                if monotonic {
                    return done(status, requeue);
                }
                continue;
            };
            if is_terminating(p) && monotonic {
                tracing::debug!(
                    pod = typed::name(&p.metadata),
                    "waiting for the pod to terminate"
                );
                return done(status, requeue);
            }
            if !is_running_and_ready(p) && monotonic {
                tracing::debug!(
                    pod = typed::name(&p.metadata),
                    "waiting for the pod to be Running and Ready"
                );
                return done(status, requeue);
            }
            if !is_running_and_available(p, min_ready, now) && monotonic {
                requeue = Some(Duration::from_secs(min_ready.unsigned_abs()));
                return done(status, requeue);
            }
            // upstream's identity and storage repair: labels, hostname, subdomain, claims.
            if !is_terminating(p) && !pods::identity_matches(set, p) {
                self.update_identity(set, p).await?;
            }
        }

        // Condemned pods, highest ordinal first.
        for p in &condemned {
            if is_terminating(p) {
                if monotonic {
                    return done(status, requeue);
                }
                continue;
            }
            let name = typed::name(&p.metadata);
            let first = first_unhealthy.as_deref() == Some(name);
            if !is_running_and_ready(p) && monotonic && !first {
                return done(status, requeue);
            }
            if !is_running_and_available(p, min_ready, now) && monotonic && !first {
                requeue = Some(Duration::from_secs(min_ready.unsigned_abs()));
                return done(status, requeue);
            }
            self.delete_condemned(set, p).await?;
            if monotonic {
                return done(status, requeue);
            }
        }

        // The rolling update.
        if !set.is_rolling_update() {
            return done(status, requeue);
        }
        let update_min = if set.has_rolling_update() {
            usize::try_from(set.partition()).unwrap_or(0)
        } else {
            0
        };
        let stale = |p: &Pod| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_LABEL))
                != Some(&update_name)
                && !is_terminating(p)
        };
        match set.max_unavailable() {
            None => {
                for target in (update_min..replicas.len()).rev() {
                    let Some(p) = replicas[target].as_ref() else {
                        continue;
                    };
                    if stale(p) {
                        self.delete_pod(set, p).await?;
                        status.current -= 1;
                        return done(status, requeue);
                    }
                    if !is_healthy(p) {
                        return done(status, requeue);
                    }
                }
            }
            Some(max) => {
                let unavailable = replicas
                    .iter()
                    .filter(|p| p.as_ref().is_none_or(|p| !is_healthy(p)))
                    .count();
                if unavailable >= max {
                    return done(status, requeue);
                }
                let mut budget = max - unavailable;
                for target in (update_min..replicas.len()).rev() {
                    if budget == 0 {
                        break;
                    }
                    if let Some(p) = replicas[target].as_ref()
                        && stale(p)
                    {
                        self.delete_pod(set, p).await?;
                        status.current -= 1;
                        budget -= 1;
                    }
                }
            }
        }
        done(status, requeue)
    }

    /// upstream `StatefulPodControl.CreateStatefulPod`: the pod's claims, then the pod.
    async fn create_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
        self.create_claims(set, pod).await?;
        let ns = typed::namespace(&set.metadata);
        let body = typed::encode(pod)?;
        let name = typed::name(&pod.metadata).to_string();
        match self.cluster.create(pods_info(), ns, body).await {
            Ok(_) => {
                self.pod_event(set, "Create", &name, None).await;
                Ok(())
            }
            // The pod is there already (a stale read): the next sync sees it.
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => {
                self.pod_event(set, "Create", &name, Some(&e.message)).await;
                Err(e.into())
            }
        }
    }

    /// upstream `createPersistentVolumeClaims`: each claim of the pod that does not exist
    /// yet is created; a failure is a `FailedCreate` event and fails the pod's creation.
    async fn create_claims(&self, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
        let claims = pods::claims_for(set, ordinal_of(typed::name(&pod.metadata)).unwrap_or(0));
        if claims.is_empty() {
            return Ok(());
        }
        let pod_name = typed::name(&pod.metadata);
        let set_name = typed::name(&set.metadata);
        let ns = typed::namespace(&set.metadata);
        for claim in claims {
            let claim_name = claim["metadata"]["name"].as_str().unwrap_or("").to_string();
            let result = match pods::claims_info() {
                None => Err(api::status::ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource (persistentvolumeclaims is not served)",
                )),
                Some(info) => match self.cluster.get(info, ns, &claim_name).await {
                    Ok(_) => continue,
                    Err(e) if e.code == 404 => {
                        self.cluster.create(info, ns, claim).await.map(|_| ())
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => {
                    let msg = format!(
                        "create Claim {claim_name} for Pod {pod_name} in StatefulSet {set_name} success"
                    );
                    self.event(set, events::NORMAL, "SuccessfulCreate", &msg)
                        .await;
                }
                Err(e) if e.code == 409 => {}
                Err(e) => {
                    let msg = format!(
                        "create Claim {claim_name} for Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                        e.message
                    );
                    self.event(set, events::WARNING, "FailedCreate", &msg).await;
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Deletes a condemned pod; with `whenScaled: Delete` its claims first get the pod as
    /// owner, so the garbage collector removes them with it (upstream
    /// `updateClaimOwnerRefForSetAndPod` before `DeleteStatefulPod`).
    async fn delete_condemned(&self, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
        if set.when_scaled() == "Delete"
            && let Some(info) = pods::claims_info()
        {
            let ordinal = ordinal_of(typed::name(&pod.metadata)).unwrap_or(0);
            let ns = typed::namespace(&set.metadata);
            let reference = serde_json::to_value(pods::owner_ref_to_pod(pod))
                .map_err(|e| api::status::ApiError::internal(e.to_string()))?;
            let set_uid = json!(typed::uid(&set.metadata));
            for claim in pods::claims_for(set, ordinal) {
                let name = claim["metadata"]["name"].as_str().unwrap_or("");
                let result = self
                    .cluster
                    .update_with(info, ns, name, Subresource::Main, |o| {
                        let refs = &mut o["metadata"]["ownerReferences"];
                        if !refs.is_array() {
                            *refs = json!([]);
                        }
                        let Some(list) = refs.as_array_mut() else {
                            return Ok(false);
                        };
                        if list.iter().any(|r| r["uid"] == reference["uid"]) {
                            return Ok(false);
                        }
                        // A scaled-down pod's claim is owned by the pod alone.
                        list.retain(|r| r["uid"] != set_uid);
                        list.push(reference.clone());
                        Ok(true)
                    })
                    .await;
                match result {
                    Ok(_) => {}
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.delete_pod(set, pod).await
    }

    /// upstream `StatefulPodControl.DeleteStatefulPod`.
    async fn delete_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
        let (ns, name, _) = typed::at(&pod.metadata);
        match self
            .cluster
            .delete(pods_info(), ns, name, &DeleteOptions::default())
            .await
        {
            Ok(_) => {
                self.pod_event(set, "Delete", name, None).await;
                Ok(())
            }
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => {
                self.pod_event(set, "Delete", name, Some(&e.message)).await;
                Err(e.into())
            }
        }
    }

    /// upstream `UpdateStatefulPod` for identity: the pod-name and pod-index labels, the
    /// hostname and subdomain.
    async fn update_identity(&self, set: &StatefulSet, pod: &Pod) -> Result<(), Error> {
        let name = typed::name(&pod.metadata).to_string();
        let ordinal = ordinal_of(&name).unwrap_or(0);
        let result = typed::edit(&self.cluster, pod, Subresource::Main, |o| {
            let mut changed = false;
            if !o["metadata"]["labels"].is_object() {
                o["metadata"]["labels"] = json!({});
            }
            for (k, v) in [
                (pods::POD_NAME_LABEL, name.clone()),
                (pods::POD_INDEX_LABEL, ordinal.to_string()),
            ] {
                if o["metadata"]["labels"][k] != json!(v) {
                    o["metadata"]["labels"][k] = json!(v);
                    changed = true;
                }
            }
            changed
        })
        .await;
        match result {
            Ok(_) => {
                self.pod_event(set, "Update", &name, None).await;
                Ok(())
            }
            Err(e) => {
                self.pod_event(set, "Update", &name, Some(&e.message)).await;
                Err(e.into())
            }
        }
    }

    /// upstream `recordPodEvent`.
    async fn pod_event(&self, set: &StatefulSet, verb: &str, pod: &str, err: Option<&str>) {
        let set_name = typed::name(&set.metadata);
        let lower = verb.to_lowercase();
        match err {
            None => {
                let msg = format!("{lower} Pod {pod} in StatefulSet {set_name} successful");
                self.event(set, events::NORMAL, &format!("Successful{verb}"), &msg)
                    .await;
            }
            Some(e) => {
                let msg = format!("{lower} Pod {pod} in StatefulSet {set_name} failed error: {e}");
                self.event(set, events::WARNING, &format!("Failed{verb}"), &msg)
                    .await;
            }
        }
    }

    async fn event(&self, set: &StatefulSet, kind: &str, reason: &str, msg: &str) {
        self.recorder
            .event(statefulsets(), &set.metadata, kind, reason, "", msg)
            .await;
    }

    /// upstream `updateStatefulSetStatus` (with `completeRollingUpdate`): writes the status
    /// when it changed.
    async fn write_status(&self, set: &StatefulSet, status: &Status) -> Result<(), Error> {
        let mut status = status.clone();
        let want = set.replicas();
        if set.is_rolling_update()
            && status.updated == want
            && status.ready == want
            && status.replicas == want
        {
            status.current = status.updated;
            status.current_revision = status.update_revision.clone();
        }
        typed::edit(&self.cluster, set, Subresource::Status, |obj| {
            let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
            let mut st = if obj["status"].is_object() {
                obj["status"].clone()
            } else {
                json!({})
            };
            st["observedGeneration"] = json!(generation);
            st["replicas"] = json!(status.replicas);
            st["availableReplicas"] = json!(status.available);
            set_or_remove(&mut st, "readyReplicas", status.ready);
            set_or_remove(&mut st, "currentReplicas", status.current);
            set_or_remove(&mut st, "updatedReplicas", status.updated);
            set_str(&mut st, "currentRevision", &status.current_revision);
            set_str(&mut st, "updateRevision", &status.update_revision);
            st["collisionCount"] = json!(status.collision_count);
            let changed = st != obj["status"];
            obj["status"] = st;
            changed
        })
        .await?;
        Ok(())
    }
}

/// Sets an `omitempty` counter (zero removes it).
fn set_or_remove(st: &mut Value, field: &str, n: i64) {
    if n == 0 {
        if let Some(m) = st.as_object_mut() {
            m.remove(field);
        }
    } else {
        st[field] = json!(n);
    }
}

/// Sets an `omitempty` string (empty removes it).
fn set_str(st: &mut Value, field: &str, s: &str) {
    if s.is_empty() {
        if let Some(m) = st.as_object_mut() {
            m.remove(field);
        }
    } else {
        st[field] = json!(s);
    }
}

/// The status counters over the claimed pods (upstream's accounting at the top of
/// `updateStatefulSet`): created pods, ready, available, at the current and update revision
/// (those two not counting terminating pods).
pub(crate) fn compute_status(
    pods: &[Pod],
    current: &str,
    update: &str,
    min_ready: i64,
    now: i64,
) -> Status {
    let mut s = Status {
        current_revision: current.to_string(),
        update_revision: update.to_string(),
        ..Status::default()
    };
    for p in pods {
        s.add(p, current, update, min_ready, now);
    }
    s
}

impl Status {
    fn counts(p: &Pod, current: &str, update: &str, min_ready: i64, now: i64) -> [i64; 5] {
        if !is_created(p) {
            return [0; 5];
        }
        let rev = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_LABEL))
            .map_or("", String::as_str);
        let live = !is_terminating(p);
        [
            1,
            i64::from(is_running_and_ready(p) && is_ready(p)),
            i64::from(is_running_and_ready(p) && is_available(p, min_ready, now)),
            i64::from(live && rev == current),
            i64::from(live && rev == update),
        ]
    }

    fn add(&mut self, p: &Pod, current: &str, update: &str, min_ready: i64, now: i64) {
        let [r, ready, avail, cur, upd] = Self::counts(p, current, update, min_ready, now);
        self.replicas += r;
        self.ready += ready;
        self.available += avail;
        self.current += cur;
        self.updated += upd;
    }
}
