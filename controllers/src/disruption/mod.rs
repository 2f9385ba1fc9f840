//! The disruption controller (upstream `pkg/controller/disruption/disruption.go`): keeps each
//! PodDisruptionBudget's status, which the API server's eviction subresource spends.
//!
//! Start at [`Controller::try_sync`]: the pods the budget's selector matches, the expected
//! count ([`Controller::expected_count`]: the pods themselves for an integer `minAvailable`,
//! else the summed scale of their controllers — ReplicationController, Deployment, ReplicaSet,
//! StatefulSet — found
//! through their controller references, `getExpectedScale`), the healthy (Ready, not
//! terminating, not recently evicted) pods, and from those `desiredHealthy`,
//! `disruptionsAllowed`, `expectedPods`, `observedGeneration` and the `DisruptionAllowed`
//! condition (`SufficientPods` / `InsufficientPods`). Evictions the API server recorded in
//! `disruptedPods` are dropped once the pod is being deleted, or after [`DELETION_TIMEOUT`]
//! (with a `NotDeleted` event), and the budget is looked at again when the next one expires.
//! A sync that fails sets `disruptionsAllowed: 0` and `DisruptionAllowed=False`/`SyncFailed`
//! with the error (upstream `failSafe`). The status is written with the budget's
//! resourceVersion, so an eviction recorded meanwhile is never overwritten (a conflict is
//! retried).
//!
//! Every budget is synced again every [`RESYNC`] (upstream's informer resync), so a change
//! of a controller's scale, which is not watched, is seen.
//!
//! The second duty ([`Controller::sync_stale_pod_disruption`]): a pod that got
//! `DisruptionTarget=True` (from an eviction, or a taint eviction) but still is not being
//! deleted two minutes later gets the condition set back to False.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use api::selector::LabelSelector;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, Subresource};
use crate::events::{Recorder, Style};
use crate::job::Clock;
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Cache, Change, Delta};
use crate::{Error, typed};

/// Upstream `DeletionTimeout`: how long an eviction recorded in `disruptedPods` keeps the pod
/// out of the healthy count while it is not being deleted.
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
/// Upstream `stalePodDisruptionTimeout`.
pub const STALE_POD_DISRUPTION_TIMEOUT: Duration = Duration::from_secs(120);

/// Upstream's resync period of the budgets' informer: each budget is synced at least this
/// often, which is how a change of a controller's scale reaches it.
pub const RESYNC: Duration = Duration::from_secs(30);

/// Upstream `--concurrent-disruption-syncs` is not a flag; the controller runs one worker.
const WORKERS: usize = 1;

/// What the queue holds: a budget to sync, or a pod whose `DisruptionTarget` may be stale.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Budget(String, String),
    StalePod(String, String),
}

fn budgets() -> &'static ResourceInfo {
    typed::info::<PodDisruptionBudget>()
}

fn pods() -> &'static ResourceInfo {
    typed::info::<Pod>()
}

/// Runs the disruption controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    run_with_clock(cluster, Clock::default(), shutdown).await;
}

/// [`run`] with a given clock.
pub async fn run_with_clock(cluster: ClusterRef, clock: Clock, shutdown: CancellationToken) {
    let controller = Arc::new(Controller {
        recorder: Arc::new(Recorder::new(
            cluster.clone(),
            "controllermanager",
            Style::Legacy,
        )),
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        budgets: Cache::default(),
        clock,
    });
    crate::queue::drive(
        &cluster,
        controller,
        &[budgets(), pods()],
        WORKERS,
        &shutdown,
    )
    .await;
}

/// The controller's shared state.
pub(crate) struct Controller {
    cluster: ClusterRef,
    recorder: Arc<Recorder>,
    queue: WorkQueue<Key>,
    budgets: Cache<PodDisruptionBudget>,
    clock: Clock,
}

impl Reconciler for Controller {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        match key {
            Key::Budget(ns, name) => self.sync(&ns, &name).await,
            Key::StalePod(ns, name) => self.sync_stale_pod_disruption(&ns, &name).await,
        }
    }

    /// A budget is synced when it changes; a pod's change syncs its budget (upstream
    /// `getPdbForPod`: the first budget selecting it) and schedules the check of a stale
    /// `DisruptionTarget` condition.
    fn observe(&self, change: Change) {
        let (obj, deleted) = match &change.delta {
            Delta::Synced => return,
            Delta::Upsert(o) => (o.clone(), false),
            Delta::Delete(o) => (o.clone(), true),
        };
        if std::ptr::eq(change.info, budgets()) {
            self.budgets.apply(&change);
            if !deleted && let Ok(m) = typed::metadata(&obj) {
                let (ns, name) = typed::key_of(&m);
                self.queue.add(Key::Budget(ns, name));
            }
            return;
        }
        let Some(pod) = (match &change.delta {
            Delta::Delete(o) => typed::decode::<Pod>(o).ok(),
            _ => typed::upserted::<Pod>(&change),
        }) else {
            return;
        };
        if let Some((ns, name)) = self.budget_for_pod(&pod) {
            self.queue.add(Key::Budget(ns, name));
        }
        if !deleted && let Some(wait) = stale_disruption_condition(&pod, self.clock.now()) {
            let (ns, name) = typed::key_of(&pod.metadata);
            self.queue.add_after(Key::StalePod(ns, name), wait);
        }
    }
}

/// A budget's selector as upstream's `LabelSelectorAsSelector`: `None` (nothing) for a nil
/// or invalid one; an empty one selects every pod of the namespace.
fn selector_of(pdb: &PodDisruptionBudget) -> Option<LabelSelector> {
    let sel = pdb.spec.as_ref()?.selector.as_ref()?;
    LabelSelector::from_k8s(sel).ok()
}

fn labels_of(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata.labels.clone().unwrap_or_default()
}

/// Upstream `IsPodReady`.
fn is_ready(pod: &Pod) -> bool {
    crate::pod::typed::is_ready(pod)
}

/// Upstream `nonTerminatingPodHasStaleDisruptionCondition`: how long until a
/// `DisruptionTarget=True` condition of a pod that is not being deleted (and not terminal,
/// and not set by the kubelet) becomes stale; `None` when there is nothing to clean up.
fn stale_disruption_condition(pod: &Pod, now: Timestamp) -> Option<Duration> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let cond = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionTarget")?;
    let phase = status.phase.as_deref().unwrap_or("");
    if cond.status != "True"
        || cond.reason.as_deref() == Some("TerminationByKubelet")
        || matches!(phase, "Succeeded" | "Failed")
    {
        return None;
    }
    let since = cond
        .last_transition_time
        .as_ref()
        .map(|t| now.duration_since(t.0))
        .unwrap_or_default();
    let timeout = SignedDuration::try_from(STALE_POD_DISRUPTION_TIMEOUT).unwrap_or_default();
    Some(
        timeout
            .checked_sub(since)
            .and_then(|d| Duration::try_from(d).ok())
            .unwrap_or_default(),
    )
}

/// Upstream `GetScaledValueFromIntOrPercent` (round up): an int as is, `N%` of `total`.
fn scaled_value(v: &IntOrString, total: i64) -> Result<i64, String> {
    match v {
        IntOrString::Int(i) => Ok(i64::from(*i)),
        IntOrString::String(s) => {
            let n: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            Ok((n * total + 99).div_euclid(100))
        }
    }
}

/// A controller reference's group and kind check (upstream `verifyGroupKind`).
fn is_ref_to(r: &OwnerReference, kind: &str) -> bool {
    let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    r.kind == kind && matches!(group, "apps" | "extensions")
}

/// `%v` of a `*metav1.LabelSelector` (its generated `String()`), as upstream's
/// `UnmanagedPods` event prints the selector.
fn go_selector_string(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> String {
    let labels: String = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}: {v},"))
        .collect();
    let exprs: String = sel
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                e.key,
                e.operator,
                e.values.as_deref().unwrap_or(&[]).join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )
}

/// A sync's failure: the message the `SyncFailed` condition carries.
#[derive(Debug)]
struct SyncError(String);

impl Controller {
    /// The first cached budget of the pod's namespace whose selector matches its labels
    /// (upstream `getPdbForPod`; a pod without labels has none), with the
    /// `MultiplePodDisruptionBudgets` warning on the pod when there are more.
    fn budget_for_pod(&self, pod: &Pod) -> Option<(String, String)> {
        let labels = labels_of(pod);
        if labels.is_empty() {
            return None;
        }
        let ns = typed::namespace(&pod.metadata);
        let matching: Vec<_> = self
            .budgets
            .list(ns)
            .into_iter()
            .filter(|pdb| selector_of(pdb).is_some_and(|s| s.matches(&labels)))
            .collect();
        let first = typed::key_of(&matching.first()?.metadata);
        if matching.len() > 1 {
            let msg = format!(
                "Pod {:?}/{:?} matches multiple PodDisruptionBudgets.  Chose {:?} arbitrarily.",
                ns,
                typed::name(&pod.metadata),
                first.1
            );
            let (recorder, meta) = (self.recorder.clone(), pod.metadata.clone());
            tokio::spawn(async move {
                recorder
                    .event(
                        pods(),
                        &meta,
                        "Warning",
                        "MultiplePodDisruptionBudgets",
                        "",
                        &msg,
                    )
                    .await;
            });
        }
        Some(first)
    }

    /// Upstream `sync`: `try_sync`, and on failure (not a conflict) `failSafe`; looks again
    /// when the next recorded eviction expires, at the latest after [`RESYNC`].
    async fn sync(&self, ns: &str, name: &str) -> Result<Option<Duration>, Error> {
        let Some(raw) = self.get_raw(budgets(), ns, name).await? else {
            return Ok(None);
        };
        let pdb: PodDisruptionBudget = typed::decode(&raw)?;
        match self.try_sync(&raw, &pdb).await {
            Ok(recheck) => Ok(Some(recheck.map_or(RESYNC, |r| r.min(RESYNC)))),
            Err(Err(e)) => Err(e),
            Err(Ok(SyncError(msg))) => {
                tracing::warn!(namespace = ns, name, error = %msg, "failed to sync PDB");
                self.fail_safe(&raw, &msg).await?;
                Ok(Some(RESYNC))
            }
        }
    }

    /// The stored object, `None` when not found.
    async fn get_raw(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
    ) -> Result<Option<Arc<Value>>, Error> {
        match self.cluster.get(info, ns, name).await {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Upstream `trySync`. The outer error is for retry (API failures, conflicts); the inner
    /// one a failure the status reports.
    async fn try_sync(
        &self,
        raw: &Value,
        pdb: &PodDisruptionBudget,
    ) -> Result<Option<Duration>, Result<SyncError, Error>> {
        let ns = typed::namespace(&pdb.metadata);
        let pods = self.pods_for(pdb).await.map_err(Err)?;
        if pods.is_empty() {
            self.event(pdb, "Normal", "NoPods", "No matching pods found")
                .await;
        }
        let (expected, desired, unmanaged) = match self.expected_count(pdb, &pods).await {
            Ok(v) => v,
            Err(Ok(SyncError(msg))) => {
                let text = format!("Failed to calculate the number of expected pods: {msg}");
                self.event(pdb, "Warning", "CalculateExpectedPodCountFailed", &text)
                    .await;
                return Err(Ok(SyncError(msg)));
            }
            Err(Err(e)) => return Err(Err(e)),
        };
        if !unmanaged.is_empty() {
            let sel = pdb
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .map_or_else(|| "nil".to_string(), go_selector_string);
            let text = format!(
                "Pods selected by this PodDisruptionBudget (selector: {sel}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."
            );
            self.event(pdb, "Warning", "UnmanagedPods", &text).await;
        }
        let now = self.clock.now();
        let (disrupted, recheck) = self.disrupted_pod_map(&pods, raw, ns, now).await;
        let healthy = count_healthy(&pods, &disrupted, now);
        self.update_status(raw, healthy, desired, expected, disrupted)
            .await
            .map_err(Err)?;
        Ok(recheck.map(|at| Duration::try_from(at.duration_since(now)).unwrap_or_default()))
    }

    /// The pods of the budget's namespace its selector matches (upstream `getPodsForPdb`).
    async fn pods_for(&self, pdb: &PodDisruptionBudget) -> Result<Vec<Pod>, Error> {
        let Some(sel) = selector_of(pdb) else {
            return Ok(Vec::new());
        };
        let ns = typed::namespace(&pdb.metadata);
        let all = typed::list::<Pod>(&self.cluster, Some(ns)).await?;
        Ok(all
            .into_iter()
            .filter(|p| sel.matches(&labels_of(p)))
            .collect())
    }

    /// Upstream `getExpectedPodCount`: `(expectedCount, desiredHealthy, unmanagedPods)`.
    async fn expected_count(
        &self,
        pdb: &PodDisruptionBudget,
        pods: &[Pod],
    ) -> Result<(i64, i64, Vec<String>), Result<SyncError, Error>> {
        let spec = pdb.spec.clone().unwrap_or_default();
        if let Some(max) = &spec.max_unavailable {
            let (expected, unmanaged) = self.expected_scale(pods).await?;
            let max = scaled_value(max, expected).map_err(|m| Ok(SyncError(m)))?;
            return Ok(((expected), (expected - max).max(0), unmanaged));
        }
        match &spec.min_available {
            Some(IntOrString::Int(i)) => Ok((pods.len() as i64, i64::from(*i), Vec::new())),
            Some(min @ IntOrString::String(_)) => {
                let (expected, unmanaged) = self.expected_scale(pods).await?;
                let min = scaled_value(min, expected).map_err(|m| Ok(SyncError(m)))?;
                Ok((expected, min, unmanaged))
            }
            None => Ok((0, 0, Vec::new())),
        }
    }

    /// Upstream `getExpectedScale`: the sum of the scales of the pods' controllers, each
    /// counted once; pods without a controller are unmanaged; a controller none of the
    /// finders knows is an error.
    async fn expected_scale(
        &self,
        pods: &[Pod],
    ) -> Result<(i64, Vec<String>), Result<SyncError, Error>> {
        let mut scales: HashMap<String, i64> = HashMap::new();
        let mut unmanaged = Vec::new();
        for pod in pods {
            let Some(r) = typed::controller_ref(&pod.metadata) else {
                unmanaged.push(typed::name(&pod.metadata).to_string());
                continue;
            };
            if scales.contains_key(&r.uid) {
                continue;
            }
            let ns = typed::namespace(&pod.metadata);
            match self.controller_scale(r, ns).await.map_err(Err)? {
                Some((uid, scale)) => {
                    scales.insert(uid, scale);
                }
                None => {
                    return Err(Ok(SyncError(format!(
                        "found no controllers for pod {:?}",
                        typed::name(&pod.metadata)
                    ))));
                }
            }
        }
        Ok((scales.values().sum(), unmanaged))
    }

    /// The finders of upstream `finders()`: a ReplicationController, a ReplicaSet not
    /// controlled by a Deployment, the Deployment of a ReplicaSet, a StatefulSet;
    /// `(uid, spec.replicas)`.
    async fn controller_scale(
        &self,
        r: &OwnerReference,
        ns: &str,
    ) -> Result<Option<(String, i64)>, Error> {
        if is_ref_to(r, "ReplicaSet") {
            let Some(rs) = typed::get::<ReplicaSet>(&self.cluster, ns, &r.name).await? else {
                return Ok(None);
            };
            if typed::uid(&rs.metadata) != r.uid {
                return Ok(None);
            }
            match typed::controller_ref(&rs.metadata) {
                // getPodReplicaSet skips a ReplicaSet a Deployment controls; getPodDeployment
                // finds that Deployment.
                Some(d) if d.kind == "Deployment" => {
                    if !is_ref_to(d, "Deployment") {
                        return Ok(None);
                    }
                    let Some(dep) = typed::get::<Deployment>(&self.cluster, ns, &d.name).await?
                    else {
                        return Ok(None);
                    };
                    if typed::uid(&dep.metadata) != d.uid {
                        return Ok(None);
                    }
                    let replicas = dep.spec.replicas.unwrap_or(1);
                    Ok(Some((d.uid.clone(), i64::from(replicas))))
                }
                _ => {
                    let replicas = rs.spec.replicas.unwrap_or(1);
                    Ok(Some((r.uid.clone(), i64::from(replicas))))
                }
            }
        } else if is_ref_to(r, "StatefulSet") {
            let Some(sts) = typed::get::<StatefulSet>(&self.cluster, ns, &r.name).await? else {
                return Ok(None);
            };
            if typed::uid(&sts.metadata) != r.uid {
                return Ok(None);
            }
            let replicas = sts.spec.replicas.unwrap_or(1);
            Ok(Some((r.uid.clone(), i64::from(replicas))))
        } else if r.kind == "ReplicationController" {
            // upstream `getPodReplicationController` compares the kind only.
            let Some(rc) = typed::get::<ReplicationController>(&self.cluster, ns, &r.name).await?
            else {
                return Ok(None);
            };
            if typed::uid(&rc.metadata) != r.uid {
                return Ok(None);
            }
            let replicas = rc.spec.and_then(|s| s.replicas).unwrap_or(1);
            Ok(Some((r.uid.clone(), i64::from(replicas))))
        } else {
            // No other served kind has a scale subresource (upstream `getScaleController`
            // finds none either, and the pod counts as without a controller).
            Ok(None)
        }
    }

    /// Upstream `buildDisruptedPodMap`: the entries of `disruptedPods` still pending (the pod
    /// exists, is not being deleted, and the timeout has not passed) and the earliest time one
    /// of them expires; an expired one gets a `NotDeleted` event on its pod.
    async fn disrupted_pod_map(
        &self,
        matched: &[Pod],
        raw: &Value,
        ns: &str,
        now: Timestamp,
    ) -> (BTreeMap<String, String>, Option<Timestamp>) {
        let mut result = BTreeMap::new();
        let mut recheck: Option<Timestamp> = None;
        let Some(recorded) = raw["status"]["disruptedPods"].as_object() else {
            return (result, recheck);
        };
        let timeout = SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or_default();
        for pod in matched {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let name = typed::name(&pod.metadata);
            let Some(at) = recorded.get(name).and_then(Value::as_str) else {
                continue;
            };
            let Ok(t) = at.parse::<Timestamp>() else {
                continue;
            };
            let expected = t.checked_add(timeout).unwrap_or(t);
            if expected < now {
                // Upstream prints the budget's namespace twice.
                let text = format!("Pod was expected by PDB {ns}/{ns} to be deleted but it wasn't");
                self.recorder
                    .event(pods(), &pod.metadata, "Warning", "NotDeleted", "", &text)
                    .await;
            } else {
                if recheck.is_none_or(|r| expected < r) {
                    recheck = Some(expected);
                }
                result.insert(name.to_string(), at.to_string());
            }
        }
        (result, recheck)
    }

    /// Upstream `updatePdbStatus`: writes the computed status (only when it differs), with
    /// the `DisruptionAllowed` condition, guarded by the resourceVersion it was computed from.
    async fn update_status(
        &self,
        raw: &Value,
        healthy: i64,
        desired: i64,
        expected: i64,
        disrupted: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let mut allowed = healthy - desired;
        if expected <= 0 || allowed <= 0 {
            allowed = 0;
        }
        let status = &raw["status"];
        let int = |f: &str| status[f].as_i64().unwrap_or(0);
        let recorded: BTreeMap<String, String> = status["disruptedPods"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let generation = raw["metadata"]["generation"].as_i64().unwrap_or(0);
        if int("currentHealthy") == healthy
            && int("desiredHealthy") == desired
            && int("expectedPods") == expected
            && int("disruptionsAllowed") == allowed
            && recorded == disrupted
            && int("observedGeneration") == generation
            && api::pdb::conditions_are_up_to_date(raw)
        {
            return Ok(());
        }
        let mut new = raw.clone();
        let mut st = json!({
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "disruptionsAllowed": allowed,
        });
        if !disrupted.is_empty() {
            st["disruptedPods"] = json!(disrupted);
        }
        if generation != 0 {
            st["observedGeneration"] = json!(generation);
        }
        if let Some(c) = status.get("conditions") {
            st["conditions"] = c.clone();
        }
        new["status"] = st;
        let now = api::time::rfc3339(self.clock.now());
        api::pdb::update_disruption_allowed_condition(&mut new, &now);
        self.write_status(new).await
    }

    /// Upstream `failSafe`: no disruptions, `DisruptionAllowed=False` with reason
    /// `SyncFailed` and the error.
    async fn fail_safe(&self, raw: &Value, msg: &str) -> Result<(), Error> {
        let mut new = raw.clone();
        new["status"]["disruptionsAllowed"] = json!(0);
        let mut cond = json!({"type": api::pdb::DISRUPTION_ALLOWED, "status": "False",
            "reason": api::pdb::SYNC_FAILED, "message": msg});
        if let Some(g) = raw["status"]["observedGeneration"]
            .as_i64()
            .filter(|g| *g != 0)
        {
            cond["observedGeneration"] = json!(g);
        }
        let now = api::time::rfc3339(self.clock.now());
        api::pdb::set_status_condition(&mut new, cond, &now);
        self.write_status(new).await
    }

    /// A status write carrying the read's resourceVersion (a conflict is an error: the key
    /// is retried from a fresh read).
    async fn write_status(&self, new: Value) -> Result<(), Error> {
        let ns = new["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = new["metadata"]["name"].as_str().unwrap_or("").to_string();
        match self
            .cluster
            .update(budgets(), &ns, &name, new, Subresource::Status)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn event(&self, pdb: &PodDisruptionBudget, type_: &str, reason: &str, msg: &str) {
        self.recorder
            .event(budgets(), &pdb.metadata, type_, reason, "", msg)
            .await;
    }

    /// Upstream `syncStalePodDisruption`: sets a stale `DisruptionTarget=True` back to False
    /// (with the resourceVersion it was judged on), or looks again when it will be stale.
    async fn sync_stale_pod_disruption(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<Duration>, Error> {
        let Some(raw) = self.get_raw(pods(), ns, name).await? else {
            return Ok(None);
        };
        let pod: Pod = typed::decode(&raw)?;
        let Some(wait) = stale_disruption_condition(&pod, self.clock.now()) else {
            return Ok(None);
        };
        if !wait.is_zero() {
            return Ok(Some(wait));
        }
        let mut new = Value::clone(&raw);
        let now = api::time::rfc3339(self.clock.now());
        if let Some(c) = new["status"]["conditions"]
            .as_array_mut()
            .and_then(|l| l.iter_mut().find(|c| c["type"] == "DisruptionTarget"))
        {
            c["status"] = json!("False");
            c["lastTransitionTime"] = json!(now);
        }
        match self
            .cluster
            .update(pods(), ns, name, new, Subresource::Status)
            .await
        {
            Ok(_) => Ok(None),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Upstream `countHealthyPods`: Ready pods not being deleted and not awaiting an eviction.
fn count_healthy(pods: &[Pod], disrupted: &BTreeMap<String, String>, now: Timestamp) -> i64 {
    let timeout = SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or_default();
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let pending = disrupted
                .get(typed::name(&p.metadata))
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_some_and(|t| t.checked_add(timeout).unwrap_or(t) > now);
            !pending
        })
        .filter(|p| is_ready(p))
        .count() as i64
}
