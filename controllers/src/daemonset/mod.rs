//! The DaemonSet controller (upstream `pkg/controller/daemon`: `daemon_controller.go`,
//! `update.go`, `util/daemonset_util.go`).
//!
//! [`Controller::sync`] claims the set's pods and ControllerRevisions, makes sure a revision
//! holds the current template (its hash is the pods' `controller-revision-hash` label), then
//! for every node decides with [`should_run`] (upstream `NodeShouldRunDaemonPod`: the
//! template's nodeName, nodeSelector and required node affinity, the node's NoSchedule and
//! NoExecute taints against the pod's tolerations plus the ones every daemon pod gets,
//! [`add_daemon_tolerations`]) whether a daemon pod should run there and whether a running
//! one may stay. [`Controller::manage`] creates the missing pods (each pinned to its node by a
//! required node affinity on `metadata.name`, which the scheduler then binds) and deletes
//! failed pods, surplus pods and pods on nodes they no longer belong on; the rolling update
//! ([`rolling_update`], upstream `rollingUpdate`) deletes old pods within `maxUnavailable`,
//! or with `maxSurge` creates the new pod beside the old one and deletes the old one once the
//! new one is available; `OnDelete` leaves old pods alone. The status is written after
//! every sync and history beyond `revisionHistoryLimit` removed.
//!
//! Pods of the set bound to a node that no longer exists are deleted (upstream leaves them
//! to the pod garbage collector, which paddock does not run).

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use api::selector::LabelSelector;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::events::{self, Recorder, Style};
use crate::history;
use crate::pod::typed::{is_available, is_ready};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Cache, Change, Delta};
use crate::scheduler::filter::{affinity_matches, tolerates};
use crate::{Error, typed};

/// Upstream `--concurrent-daemonset-syncs`.
const WORKERS: usize = 2;
/// The pods' revision label (upstream `DefaultDaemonSetUniqueLabelKey`).
pub(crate) const REVISION_LABEL: &str = "controller-revision-hash";
/// The pods' template generation label (upstream `DaemonSetTemplateGenerationKey`).
pub(crate) const GENERATION_LABEL: &str = "pod-template-generation";
/// The annotation apps/v1 keeps the template generation in.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

type Key = (String, String);

/// The apps/v1 DaemonSet resource.
pub(crate) fn daemonsets() -> &'static ResourceInfo {
    typed::info::<DaemonSet>()
}

fn pods_info() -> &'static ResourceInfo {
    typed::info::<Pod>()
}

fn nodes_info() -> &'static ResourceInfo {
    typed::info::<Node>()
}

/// Runs the DaemonSet controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let controller = Arc::new(Controller {
        recorder: Recorder::new(cluster.clone(), "daemonset-controller", Style::Legacy),
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        sets: Cache::default(),
    });
    crate::queue::drive(
        &cluster,
        controller,
        &[
            daemonsets(),
            pods_info(),
            nodes_info(),
            history::revisions(),
        ],
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
    /// The sets seen, for the pod and node event handlers.
    sets: Cache<DaemonSet>,
}

impl Reconciler for Controller {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        self.sync(&key.0, &key.1).await
    }

    /// A set change queues it; a pod or revision its controller (an orphan: every set that
    /// selects it); a node change every set (upstream `addNode` / `updateNode`).
    fn observe(&self, change: Change) {
        let obj = match &change.delta {
            Delta::Synced => return,
            Delta::Upsert(o) | Delta::Delete(o) => o.clone(),
        };
        if std::ptr::eq(change.info, daemonsets()) {
            self.sets.apply(&change);
            self.queue
                .add(typed::key_of(&typed::metadata(&obj).unwrap_or_default()));
            return;
        }
        if std::ptr::eq(change.info, nodes_info()) {
            for set in self.sets.all() {
                self.queue.add(typed::key_of(&set.metadata));
            }
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

fn selector_of(ds: &DaemonSet) -> Option<LabelSelector> {
    LabelSelector::from_k8s(&ds.spec.selector).ok()
}

/// The set's template generation (the `deprecated.daemonset.template.generation`
/// annotation).
fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION)?
        .parse()
        .ok()
}

/// Upstream `AddOrUpdateDaemonPodTolerations`: every daemon pod tolerates not-ready and
/// unreachable (NoExecute, forever), disk, memory and pid pressure and unschedulable
/// (NoSchedule), and with hostNetwork network-unavailable (NoSchedule).
pub(crate) fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Toleration::default()
        };
        // upstream `AddOrUpdateTolerationInPodSpec`: an existing toleration of the same key
        // and effect is replaced.
        list.retain(|x| !(x.key.as_deref() == Some(key) && x.effect.as_deref() == Some(effect)));
        list.push(t);
    }
}

/// Upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes
/// exactly `metadata.name In [node]`.
pub(crate) fn pin_to_node(spec: &mut PodSpec, node: &str) {
    let term = NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.to_string()]),
        }]),
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
}

/// Upstream `GetTargetNodeName`: `spec.nodeName`, else the node the affinity pins it to.
pub(crate) fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.iter().flatten().find_map(|r| {
            let values = r.values.as_deref().unwrap_or_default();
            (r.key == "metadata.name" && r.operator == "In" && values.len() == 1)
                .then(|| values[0].clone())
        })
    })
}

/// Upstream `NodeShouldRunDaemonPod`: `(should run, may continue running)`.
pub(crate) fn should_run(ds: &DaemonSet, node: &Node) -> (bool, bool) {
    let node_name = typed::name(&node.metadata);
    let mut spec = ds.spec.template.spec.clone().unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return (false, false);
    }
    add_daemon_tolerations(&mut spec);
    spec.node_name = Some(node_name.to_string());
    let pod = Pod {
        metadata: ObjectMeta::default(),
        spec: Some(spec),
        status: None,
    };
    if !affinity_matches(&pod, node) {
        return (false, false);
    }
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let untolerated = |effects: &[&str]| {
        node.spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| effects.contains(&t.effect.as_str()))
            .any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
    };
    if untolerated(&["NoSchedule", "NoExecute"]) {
        return (false, !untolerated(&["NoExecute"]));
    }
    (true, true)
}

/// Upstream `IsPodUpdated`: the pod carries the update hash or the template generation.
fn is_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    (!hash.is_empty() && label(REVISION_LABEL) == Some(hash))
        || generation.is_some_and(|g| label(GENERATION_LABEL) == Some(g.to_string().as_str()))
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn created(p: &Pod) -> (i64, String) {
    (
        p.metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_second()),
        typed::name(&p.metadata).to_string(),
    )
}

/// Upstream `GetScaledValueFromIntOrPercent(v, total, roundUp=true)`.
fn scaled(v: Option<&IntOrString>, total: usize) -> usize {
    match v {
        None => 0,
        Some(IntOrString::Int(i)) => usize::try_from(*i).unwrap_or(0),
        Some(IntOrString::String(s)) => {
            let pct: usize = s.trim_end_matches('%').parse().unwrap_or(0);
            (pct * total).div_ceil(100)
        }
    }
}

/// What the rolling update decided: old pods to delete, nodes to surge a new pod onto.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Rollout {
    pub(crate) delete: Vec<String>,
    pub(crate) create_on: Vec<String>,
}

/// Upstream `rollingUpdate` over the pods by node (active pods only), with `max_surge` and
/// `max_unavailable` already scaled; `now` in seconds.
pub(crate) fn rolling_update(
    ds: &DaemonSet,
    by_node: &BTreeMap<String, Vec<Pod>>,
    hash: &str,
    max_surge: usize,
    max_unavailable: usize,
    now: i64,
) -> Rollout {
    let generation = template_generation(ds);
    let min_ready = ds.spec.min_ready_seconds.map_or(0, i64::from);
    let available = |p: &Pod| is_available(p, min_ready, now);
    // upstream findUpdatedPodsOnNode: at most one new and one old pod, or `None`.
    let split = |pods: &[Pod]| -> Option<(Option<Pod>, Option<Pod>)> {
        let (mut new, mut old) = (None, None);
        for p in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            let slot = if is_updated(p, hash, generation) {
                &mut new
            } else {
                &mut old
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(p.clone());
        }
        Some((new, old))
    };
    let mut out = Rollout::default();
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut allowed = Vec::new();
        let mut candidates = Vec::new();
        for pods in by_node.values() {
            let Some((new, old)) = split(pods) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(n), None) => {
                    if !available(&n) {
                        unavailable += 1;
                    }
                }
                (None, Some(o)) => {
                    if !available(&o) {
                        allowed.push(typed::name(&o.metadata).to_string());
                    } else if unavailable < max_unavailable {
                        candidates.push(typed::name(&o.metadata).to_string());
                    }
                }
            }
        }
        let remaining = max_unavailable
            .saturating_sub(unavailable)
            .min(candidates.len());
        out.delete = allowed;
        out.delete.extend(candidates.into_iter().take(remaining));
        return out;
    }
    let mut surge = 0;
    for (node, pods) in by_node {
        let Some((new, old)) = split(pods) else {
            continue;
        };
        match (new, old) {
            (_, None) => {}
            (None, Some(o)) => {
                if !available(&o) {
                    out.create_on.push(node.clone());
                } else if surge < max_surge {
                    surge += 1;
                    out.create_on.push(node.clone());
                }
            }
            (Some(n), Some(o)) => {
                if available(&n) {
                    out.delete.push(typed::name(&o.metadata).to_string());
                } else {
                    surge += 1;
                }
            }
        }
    }
    out
}

impl Controller {
    /// upstream `syncDaemonSet`.
    async fn sync(&self, namespace: &str, name: &str) -> Result<Option<Duration>, Error> {
        let Some(ds) = typed::get::<DaemonSet>(&self.cluster, namespace, name).await? else {
            return Ok(None);
        };
        let Some(selector) = selector_of(&ds) else {
            tracing::warn!(%namespace, %name, "daemonset has an invalid selector; skipping");
            return Ok(None);
        };
        let owner = crate::claim::Owner::of(&ds.metadata, daemonsets(), &selector);
        let all_pods = typed::list::<Pod>(&self.cluster, Some(namespace)).await?;
        let pods = crate::claim::claim(&self.cluster, &owner, all_pods).await?;
        let revisions = typed::list::<ControllerRevision>(&self.cluster, Some(namespace)).await?;
        let mut revisions = crate::claim::claim(&self.cluster, &owner, revisions).await?;
        history::sort(&mut revisions);
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let (hash, collision_count) = self.construct_history(&ds, &mut revisions).await?;
        let nodes = typed::list::<Node>(&self.cluster, None).await?;
        let now = crate::replicaset::now_seconds();

        let manage_result = self.manage(&ds, &pods, &nodes, &hash, now).await;
        let fresh = typed::list::<Pod>(&self.cluster, Some(namespace))
            .await?
            .into_iter()
            .filter(|p| {
                typed::controller_ref(&p.metadata)
                    .is_some_and(|r| Some(&r.uid) == ds.metadata.uid.as_ref())
            })
            .collect::<Vec<_>>();
        self.write_status(&ds, &fresh, &nodes, &hash, collision_count, now)
            .await?;
        manage_result?;
        // upstream cleanupHistory: keep revisions whose hash a live pod carries.
        let live_hashes: HashSet<String> = fresh
            .iter()
            .filter_map(|p| p.metadata.labels.as_ref()?.get(REVISION_LABEL).cloned())
            .chain(std::iter::once(hash.clone()))
            .collect();
        let live: HashSet<String> = revisions
            .iter()
            .filter(|r| {
                r.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(history::DAEMONSET_HASH_LABEL))
                    .is_some_and(|h| live_hashes.contains(h))
            })
            .map(|r| typed::name(&r.metadata).to_string())
            .collect();
        let limit = i64::from(ds.spec.revision_history_limit.unwrap_or(10));
        history::truncate(&self.cluster, &revisions, &live, limit).await?;
        // A pod turning available after minReadySeconds needs another look.
        let min_ready = ds.spec.min_ready_seconds.map_or(0, i64::from);
        let waiting = fresh
            .iter()
            .any(|p| is_ready(p) && !is_available(p, min_ready, now));
        Ok(waiting.then(|| Duration::from_secs(min_ready.unsigned_abs().max(1))))
    }

    /// upstream `constructHistory`: the revision of the current template (an equal older
    /// one renumbered to be the newest, or a new one); its hash and the collision count.
    async fn construct_history(
        &self,
        ds: &DaemonSet,
        revisions: &mut Vec<ControllerRevision>,
    ) -> Result<(String, i32), Error> {
        let mut collision_count = ds
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let next = history::next_revision(revisions);
        let mut template = serde_json::to_value(&ds.spec.template).unwrap_or_else(|_| json!({}));
        if let Some(m) = template.as_object_mut() {
            m.insert("$patch".into(), json!("replace"));
        }
        let data = json!({"spec": {"template": template}});
        let candidate = history::new_revision(
            &ds.metadata,
            typed::controller_ref_to(ds),
            ds.spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref()),
            ds.metadata.annotations.as_ref(),
            data,
            next,
            Some(collision_count),
        );
        let current = match revisions.iter().position(|r| history::equal(r, &candidate)) {
            Some(i) => {
                if revisions[i].revision.unwrap_or(0) + 1 < next {
                    let updated =
                        history::update_number(&self.cluster, &revisions[i], next).await?;
                    revisions[i] = updated;
                }
                revisions[i].clone()
            }
            None => {
                let created =
                    history::create(&self.cluster, &candidate, &mut collision_count).await?;
                revisions.push(created.clone());
                created
            }
        };
        let hash = current
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(history::DAEMONSET_HASH_LABEL))
            .cloned()
            .unwrap_or_default();
        Ok((hash, collision_count))
    }

    /// upstream `manage` + `rollingUpdate` + `syncNodes`.
    async fn manage(
        &self,
        ds: &DaemonSet,
        pods: &[Pod],
        nodes: &[Node],
        hash: &str,
        now: i64,
    ) -> Result<(), Error> {
        let node_names: HashSet<&str> = nodes.iter().map(|n| typed::name(&n.metadata)).collect();
        let mut by_node: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
        let mut to_delete: Vec<String> = Vec::new();
        for p in pods {
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            match target_node(p) {
                Some(n) if node_names.contains(n.as_str()) => {
                    by_node.entry(n).or_default().push(p.clone());
                }
                // Pods of nodes that are gone (or pinned nowhere) go.
                _ => to_delete.push(typed::name(&p.metadata).to_string()),
            }
        }
        let mut create_on: Vec<String> = Vec::new();
        let surge_enabled = self.max_surge_value(ds, 1) > 0;
        for node in nodes {
            let node_name = typed::name(&node.metadata).to_string();
            let (run, keep) = should_run(ds, node);
            let on_node = by_node.get(&node_name).cloned().unwrap_or_default();
            if run && on_node.is_empty() {
                create_on.push(node_name);
                continue;
            }
            if keep {
                let mut running: Vec<Pod> = Vec::new();
                for p in on_node {
                    match phase(&p) {
                        "Failed" => {
                            let msg = format!(
                                "Found failed daemon pod {}/{} on node {node_name}, will try to kill it",
                                typed::namespace(&p.metadata),
                                typed::name(&p.metadata)
                            );
                            self.event(ds, events::WARNING, "FailedDaemonPod", &msg)
                                .await;
                            to_delete.push(typed::name(&p.metadata).to_string());
                        }
                        "Succeeded" => to_delete.push(typed::name(&p.metadata).to_string()),
                        _ => running.push(p),
                    }
                }
                running.sort_by_key(created);
                if surge_enabled {
                    let (mut new_seen, mut old_seen) = (false, false);
                    let generation = template_generation(ds);
                    for p in &running {
                        let seen = if is_updated(p, hash, generation) {
                            &mut new_seen
                        } else {
                            &mut old_seen
                        };
                        if *seen {
                            to_delete.push(typed::name(&p.metadata).to_string());
                        }
                        *seen = true;
                    }
                } else {
                    for p in running.iter().skip(1) {
                        to_delete.push(typed::name(&p.metadata).to_string());
                    }
                }
                if running.is_empty() && run {
                    create_on.push(node_name);
                }
            } else {
                for p in on_node {
                    to_delete.push(typed::name(&p.metadata).to_string());
                }
            }
        }
        // The rolling update, over the nodes the pods should stay on (a node without a pod
        // counts as unavailable); upstream runs it only once the creations and deletions
        // above are observed (its expectations), so not in a sync that made any.
        if is_rolling_update(ds) && create_on.is_empty() && to_delete.is_empty() {
            let desired = nodes.iter().filter(|n| should_run(ds, n).0).count();
            let mut max_surge = self.max_surge_value(ds, desired);
            let mut max_unavailable = scaled(max_unavailable_of(ds), desired);
            if max_surge == 0 && max_unavailable == 0 {
                max_unavailable = 1;
            }
            if max_surge > 0 {
                max_unavailable = 0;
            } else {
                max_surge = 0;
            }
            let keep: BTreeMap<String, Vec<Pod>> = nodes
                .iter()
                .filter(|n| should_run(ds, n).1)
                .map(|n| {
                    let name = typed::name(&n.metadata).to_string();
                    let pods = by_node.get(&name).cloned().unwrap_or_default();
                    (name, pods)
                })
                .collect();
            let r = rolling_update(ds, &keep, hash, max_surge, max_unavailable, now);
            for d in r.delete {
                if !to_delete.contains(&d) {
                    to_delete.push(d);
                }
            }
            for n in r.create_on {
                if !create_on.contains(&n) {
                    create_on.push(n);
                }
            }
        }
        let mut first_err = None;
        for node in &create_on {
            if let Err(e) = self.create_pod(ds, node, hash).await {
                first_err.get_or_insert(e);
            }
        }
        let ns = typed::namespace(&ds.metadata);
        for name in &to_delete {
            if let Err(e) = self.delete_pod(ds, ns, name).await {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn max_surge_value(&self, ds: &DaemonSet, desired: usize) -> usize {
        if !is_rolling_update(ds) {
            return 0;
        }
        let v = ds
            .spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.max_surge.as_ref());
        scaled(v, desired)
    }

    /// upstream `syncNodes`' create: the template with the daemon tolerations, pinned to
    /// `node`, labelled with the revision hash and template generation.
    async fn create_pod(&self, ds: &DaemonSet, node: &str, hash: &str) -> Result<(), Error> {
        let pod = new_pod(ds, node, hash);
        let body = typed::encode(&pod)?;
        match self
            .cluster
            .create(pods_info(), typed::namespace(&ds.metadata), body)
            .await
        {
            Ok(created) => {
                let msg = format!("Created pod: {}", crate::meta::str(&created, "name"));
                self.event(ds, events::NORMAL, "SuccessfulCreate", &msg)
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
                self.event(ds, events::WARNING, "FailedCreate", &msg).await;
                Err(e.into())
            }
        }
    }

    async fn delete_pod(&self, ds: &DaemonSet, ns: &str, name: &str) -> Result<(), Error> {
        match self
            .cluster
            .delete(pods_info(), ns, name, &DeleteOptions::default())
            .await
        {
            Ok(_) => {
                let msg = format!("Deleted pod: {name}");
                self.event(ds, events::NORMAL, "SuccessfulDelete", &msg)
                    .await;
                Ok(())
            }
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => {
                let msg = format!("Error deleting: {}", e.message);
                self.event(ds, events::WARNING, "FailedDelete", &msg).await;
                Err(e.into())
            }
        }
    }

    async fn event(&self, ds: &DaemonSet, kind: &str, reason: &str, msg: &str) {
        self.recorder
            .event(daemonsets(), &ds.metadata, kind, reason, "", msg)
            .await;
    }

    /// upstream `updateDaemonSetStatus`.
    async fn write_status(
        &self,
        ds: &DaemonSet,
        pods: &[Pod],
        nodes: &[Node],
        hash: &str,
        collision_count: i32,
        now: i64,
    ) -> Result<(), Error> {
        let mut by_node: HashMap<String, Vec<&Pod>> = HashMap::new();
        for p in pods.iter().filter(|p| {
            p.metadata.deletion_timestamp.is_none() && !matches!(phase(p), "Failed" | "Succeeded")
        }) {
            if let Some(n) = target_node(p) {
                by_node.entry(n).or_default().push(p);
            }
        }
        let generation = template_generation(ds);
        let min_ready = ds.spec.min_ready_seconds.map_or(0, i64::from);
        let (mut desired, mut current, mut ready, mut available, mut updated, mut misscheduled) =
            (0i64, 0i64, 0i64, 0i64, 0i64, 0i64);
        for node in nodes {
            let (run, _) = should_run(ds, node);
            let on = by_node.get(typed::name(&node.metadata));
            let scheduled = on.is_some_and(|v| !v.is_empty());
            if run {
                desired += 1;
                let Some(on) = on.filter(|v| !v.is_empty()) else {
                    continue;
                };
                current += 1;
                let mut on = on.clone();
                on.sort_by_key(|p| created(p));
                let p = on[0];
                if is_ready(p) {
                    ready += 1;
                    if is_available(p, min_ready, now) {
                        available += 1;
                    }
                }
                if is_updated(p, hash, generation) {
                    updated += 1;
                }
            } else if scheduled {
                misscheduled += 1;
            }
        }
        let unavailable = desired - available;
        typed::edit(&self.cluster, ds, Subresource::Status, |obj| {
            let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
            let mut st = if obj["status"].is_object() {
                obj["status"].clone()
            } else {
                json!({})
            };
            st["currentNumberScheduled"] = json!(current);
            st["numberMisscheduled"] = json!(misscheduled);
            st["desiredNumberScheduled"] = json!(desired);
            st["numberReady"] = json!(ready);
            st["observedGeneration"] = json!(generation);
            for (f, n) in [
                ("updatedNumberScheduled", updated),
                ("numberAvailable", available),
                ("numberUnavailable", unavailable),
            ] {
                if n == 0 {
                    if let Some(m) = st.as_object_mut() {
                        m.remove(f);
                    }
                } else {
                    st[f] = json!(n);
                }
            }
            st["collisionCount"] = json!(collision_count);
            let changed = st != obj["status"];
            obj["status"] = st;
            changed
        })
        .await?;
        Ok(())
    }
}

fn is_rolling_update(ds: &DaemonSet) -> bool {
    let t = ds
        .spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref());
    matches!(t, None | Some("RollingUpdate"))
}

fn max_unavailable_of(ds: &DaemonSet) -> Option<&IntOrString> {
    ds.spec
        .update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()?
        .max_unavailable
        .as_ref()
}

/// upstream `CreatePodTemplate` + `GetPodFromTemplate`: the daemon pod for `node`.
pub(crate) fn new_pod(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let template = &ds.spec.template;
    let tm = template.metadata.clone().unwrap_or_default();
    let mut labels = tm.labels.clone().unwrap_or_default();
    if let Some(g) = template_generation(ds) {
        labels.insert(GENERATION_LABEL.into(), g.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_LABEL.into(), hash.to_string());
    }
    let mut spec = template.spec.clone().unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    pin_to_node(&mut spec, node);
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", typed::name(&ds.metadata))),
            owner_references: Some(vec![typed::controller_ref_to(ds)]),
            labels: Some(labels),
            annotations: tm.annotations.clone(),
            finalizers: tm.finalizers.clone(),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}
