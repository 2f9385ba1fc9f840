//! The scheduler (upstream `pkg/scheduler`, default profile): binds pending pods to nodes.
//!
//! Pods with an empty `spec.nodeName`, `schedulerName: default-scheduler`, no scheduling
//! gates, not finished and not being deleted are queued; one worker takes them one at a
//! time (upstream's scheduling cycle is sequential), runs the [`filter`] plugins against
//! every node with what the pods already bound there use, scores the feasible nodes
//! (LeastAllocated) and binds to the best one (ties: first by name) through the pod's
//! `binding` subresource (the API server sets `spec.nodeName` and `PodScheduled=True` in one
//! write, refused when the pod was replaced, is being deleted or already assigned). A bound pod is "assumed" on
//! its node at once, so the next pod sees its requests and ports before the watch catches
//! up. Success is a `Scheduled` event; failure sets `PodScheduled=False` reason
//! `Unschedulable` with upstream's `FitError` message and emits `FailedScheduling`.
//!
//! Unschedulable pods are retried when something that could help happens (a node is added
//! or changes labels, taints, schedulability, allocatable or readiness; a bound pod is
//! deleted or finishes; the pending pod's spec changes), no sooner than their back-off
//! (1 s doubling to 10 s, upstream `podInitialBackoffDuration`/`podMaxBackoffDuration`),
//! and at the latest after 5 minutes (`podMaxInUnschedulablePodsDuration`).
//!
//! Pods and nodes are decoded into k8s-openapi types once, as the watch delivers them
//! (`crate::typed`); the cache, the filters and the scores read those. A pod or node that
//! does not decode is logged and left out, as upstream's informer could not decode it.
//!
//! Start at [`run`], then [`Scheduler::schedule_one`].

pub(crate) mod filter;
#[cfg(test)]
mod tests;
pub(crate) mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use parking_lot::Mutex;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Binding, ClusterRef, Subresource};
use crate::events::{self, Recorder, Style};
use crate::pod::typed::{is_terminal, node_name};
use crate::queue::WorkQueue;
use crate::reflector::{self, Change, Delta};
use crate::{Error, pod, typed};
use filter::{NodeState, Rejection, Resources};

/// The scheduler name this scheduler serves (`spec.schedulerName`).
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// First retry delay of an unschedulable pod.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Unschedulable pods are retried at least this often.
const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);
/// How often the unschedulable pods are checked against [`MAX_UNSCHEDULABLE`] (upstream
/// flushes every 30 s).
const FLUSH_PERIOD: Duration = Duration::from_secs(30);

type PodKey = (String, String);

fn pods_info() -> &'static ResourceInfo {
    typed::info::<Pod>()
}

fn nodes_info() -> &'static ResourceInfo {
    typed::info::<Node>()
}

/// An unschedulable pod waiting for a change.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    /// When it last failed.
    since: Instant,
    /// Consecutive failed attempts.
    attempts: u32,
}

/// A pod in the cache, with its requests computed once as it arrives.
#[derive(Debug, Clone)]
struct CachedPod {
    obj: Arc<Pod>,
    requests: Resources,
}

/// The scheduler's view of the cluster (upstream's scheduler cache).
#[derive(Debug, Default)]
struct Cache {
    nodes: BTreeMap<String, Arc<Node>>,
    pods: HashMap<PodKey, CachedPod>,
    /// Pods bound by this scheduler whose binding the watch has not shown yet.
    assumed: HashMap<PodKey, String>,
    unschedulable: HashMap<PodKey, Waiting>,
    /// Resources listed so far (pods, nodes).
    synced: usize,
}

/// The scheduler's shared state.
struct Scheduler {
    cluster: ClusterRef,
    recorder: Recorder,
    cache: Mutex<Cache>,
    queue: WorkQueue<PodKey>,
    synced: tokio::sync::watch::Sender<bool>,
}

fn key_of(m: &ObjectMeta) -> PodKey {
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// Whether this scheduler should place `pod`.
fn pending(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    node_name(pod).is_empty()
        && matches!(
            spec.scheduler_name.as_deref().unwrap_or(""),
            "" | SCHEDULER_NAME
        )
        && spec.scheduling_gates.as_ref().is_none_or(|g| g.is_empty())
        && !is_terminal(pod)
        && pod.metadata.deletion_timestamp.is_none()
}

/// The parts of a node the filters read; a change to them may make a pod fit.
fn node_facts(node: &Node) -> impl PartialEq + '_ {
    let spec = node.spec.as_ref();
    (
        &node.metadata.labels,
        spec.map(|s| &s.taints),
        spec.map(|s| s.unschedulable),
        node.status.as_ref().map(|s| &s.allocatable),
        filter::ready_status(node),
    )
}

/// Runs the scheduler until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let (synced, mut synced_rx) = tokio::sync::watch::channel(false);
    let sched = Arc::new(Scheduler {
        cluster: cluster.clone(),
        recorder: Recorder::new(
            cluster.clone(),
            SCHEDULER_NAME,
            Style::Series {
                instance: format!("{SCHEDULER_NAME}-{}", events::hostname()),
            },
        ),
        cache: Mutex::new(Cache::default()),
        // Upstream's per-pod back-off: 1 s doubling to 10 s.
        queue: WorkQueue::new(INITIAL_BACKOFF, MAX_BACKOFF),
        synced,
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut rx = reflector::spawn_all(
        &mut tasks,
        &cluster,
        &[pods_info(), nodes_info()],
        &shutdown,
    );
    let feeder = sched.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let mut flush = tokio::time::interval_at(Instant::now() + FLUSH_PERIOD, FLUSH_PERIOD);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                change = rx.recv() => match change {
                    Some(change) => feeder.observe(change),
                    None => return,
                },
                _ = flush.tick() => feeder.flush_stale(),
            }
        }
    });
    // The events broadcaster's background writes of running series.
    let recorder = sched.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move { recorder.recorder.run_upkeep(&stop).await });
    let worker = sched.clone();
    tasks.spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = synced_rx.wait_for(|s| *s) => if r.is_err() { return },
        }
        while let Some(key) = worker.queue.next(&shutdown).await {
            match worker.schedule_one(&key).await {
                Ok(()) => worker.queue.forget(&key),
                Err(e) => {
                    tracing::warn!(pod = %format!("{}/{}", key.0, key.1), error = %e, "scheduling failed; retrying");
                    worker.queue.add_rate_limited(key.clone());
                }
            }
            worker.queue.done(&key);
        }
    });
    while tasks.join_next().await.is_some() {}
}

impl Scheduler {
    /// Applies a watched change to the cache and queues what it may help.
    fn observe(&self, change: Change) {
        let mut cache = self.cache.lock();
        let is_pod = change.info.plural == "pods";
        let mut retry = false;
        match change.delta {
            Delta::Synced => {
                cache.synced += 1;
                if cache.synced == 2 {
                    self.synced.send_replace(true);
                }
            }
            Delta::Upsert(raw) if is_pod => {
                let new = match typed::decode::<Pod>(&raw) {
                    Ok(p) => Arc::new(p),
                    Err(e) => {
                        // Validation refuses such a pod, so it reached the store around the
                        // API; upstream's informer could not decode it and the scheduler
                        // would never see it. Nor does this one.
                        tracing::warn!(error = %e, "ignoring a pod that does not decode");
                        if forget_raw(&mut cache, &raw) {
                            self.move_all(&mut cache);
                        }
                        return;
                    }
                };
                let requests = match filter::pod_requests(&new) {
                    Ok(requests) => requests,
                    Err(e) => {
                        // Validation refuses such a pod, so it reached the store around the
                        // API; upstream's informer could not decode it and the scheduler
                        // would never see it. Nor does this one: it is dropped from the
                        // cache, neither scheduled nor counted on a node.
                        let key = key_of(&new.metadata);
                        tracing::warn!(pod = %format!("{}/{}", key.0, key.1), error = %e, "ignoring a pod whose requests cannot be computed");
                        if forget(&mut cache, &key, !node_name(&new).is_empty()) {
                            self.move_all(&mut cache);
                        }
                        return;
                    }
                };
                let key = key_of(&new.metadata);
                let old = cache
                    .pods
                    .insert(
                        key.clone(),
                        CachedPod {
                            obj: new.clone(),
                            requests,
                        },
                    )
                    .map(|o| o.obj);
                let bound = !node_name(&new).is_empty();
                if bound {
                    cache.assumed.remove(&key);
                    cache.unschedulable.remove(&key);
                    let finished =
                        is_terminal(&new) && old.as_ref().is_none_or(|o| !is_terminal(o));
                    retry = finished;
                } else if pending(&new) {
                    let spec_changed = old.as_ref().is_none_or(|o| o.spec != new.spec);
                    if spec_changed || !cache.unschedulable.contains_key(&key) {
                        cache.unschedulable.remove(&key);
                        self.queue.add(key);
                    }
                } else {
                    cache.unschedulable.remove(&key);
                }
            }
            Delta::Delete(old) if is_pod => retry = forget_raw(&mut cache, &old),
            Delta::Upsert(raw) => {
                let Ok(new) = typed::decode::<Node>(&raw).inspect_err(
                    |e| tracing::warn!(error = %e, "ignoring a node that does not decode"),
                ) else {
                    return;
                };
                let name = new.metadata.name.clone().unwrap_or_default();
                let new = Arc::new(new);
                let old = cache.nodes.insert(name, new.clone());
                retry = old.is_none_or(|o| node_facts(&o) != node_facts(&new));
            }
            Delta::Delete(old) => {
                if let Ok(m) = typed::metadata(&old) {
                    cache.nodes.remove(m.name.as_deref().unwrap_or(""));
                }
            }
        }
        if retry {
            self.move_all(&mut cache);
        }
    }

    /// Requeues every unschedulable pod once its back-off has passed.
    fn move_all(&self, cache: &mut Cache) {
        let now = Instant::now();
        for (key, w) in cache.unschedulable.drain() {
            let due = w.since + backoff(w.attempts);
            self.queue
                .add_after(key, due.saturating_duration_since(now));
        }
    }

    /// Requeues pods that have been unschedulable for [`MAX_UNSCHEDULABLE`].
    fn flush_stale(&self) {
        let mut cache = self.cache.lock();
        let now = Instant::now();
        let stale: Vec<PodKey> = cache
            .unschedulable
            .iter()
            .filter(|(_, w)| now.duration_since(w.since) >= MAX_UNSCHEDULABLE)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            cache.unschedulable.remove(&key);
            self.queue.add(key);
        }
    }

    /// One scheduling cycle for the pod `key` (upstream `ScheduleOne`).
    async fn schedule_one(&self, key: &PodKey) -> Result<(), Error> {
        let Some(pod) = ({
            let cache = self.cache.lock();
            cache
                .pods
                .get(key)
                .filter(|p| pending(&p.obj) && !cache.assumed.contains_key(key))
                .map(|p| p.obj.clone())
        }) else {
            return Ok(());
        };
        // The VolumeBinding plugin's PreFilter reads the pod's claims from the API.
        let vols = volumes::gather(&self.cluster, &pod).await?;
        let (pod, decision, attempts) = {
            let cache = self.cache.lock();
            let Some(CachedPod { obj: pod, requests }) = cache.pods.get(key).cloned() else {
                return Ok(());
            };
            if !pending(&pod) || cache.assumed.contains_key(key) {
                return Ok(());
            }
            let attempts = cache.unschedulable.get(key).map_or(0, |w| w.attempts);
            let decision = match &vols {
                Ok(v) => decide(&cache, &pod, &requests, v),
                Err(msg) => Err(prefilter_error(cache.nodes.len(), msg)),
            };
            (pod, decision, attempts)
        };
        match decision {
            Ok(node) => {
                if let Ok(v) = &vols
                    && v.waiting()
                {
                    // PreBind: the claims learn their node; the pod is bound once they are.
                    v.select_node(&self.cluster, &node).await?;
                    self.queue.add_after(key.clone(), VOLUME_WAIT);
                    return Ok(());
                }
                self.bind(key, &pod, &node).await
            }
            Err(message) => {
                self.fail(key, &pod, &message, attempts + 1).await;
                if vols.is_err() || message.contains("volume") {
                    // Claims and volumes are not watched here: look again after the back-off.
                    self.queue.add_after(key.clone(), backoff(attempts + 1));
                }
                Ok(())
            }
        }
    }

    /// Binds `pod` to `node` and records it.
    async fn bind(&self, key: &PodKey, pod: &Pod, node: &str) -> Result<(), Error> {
        let uid = pod.metadata.uid.as_deref().unwrap_or("");
        match bind(&self.cluster, &key.0, &key.1, uid, node).await {
            Ok(()) => {}
            // Assigned, being deleted or replaced meanwhile: nothing left to do.
            Err(e) if e.code == 409 => {
                tracing::debug!(pod = %format!("{}/{}", key.0, key.1), "binding refused: {}", e.message);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        self.cache
            .lock()
            .assumed
            .insert(key.clone(), node.to_string());
        let msg = format!("Successfully assigned {}/{} to {node}", key.0, key.1);
        tracing::info!("{msg}");
        self.recorder
            .event(
                pods_info(),
                &pod.metadata,
                events::NORMAL,
                "Scheduled",
                "Binding",
                &msg,
            )
            .await;
        Ok(())
    }

    /// Records an unschedulable pod (upstream `handleSchedulingFailure`): the
    /// `PodScheduled=False` condition, a `FailedScheduling` event, and a place among the
    /// pods waiting for a change.
    async fn fail(&self, key: &PodKey, pod: &Pod, message: &str, attempts: u32) {
        // Waiting before the condition is written, so the watch event of that write does
        // not requeue the pod.
        {
            let mut cache = self.cache.lock();
            if cache.pods.get(key).is_some_and(|p| pending(&p.obj)) {
                cache.unschedulable.insert(
                    key.clone(),
                    Waiting {
                        since: Instant::now(),
                        attempts,
                    },
                );
            }
        }
        let result = typed::edit(&self.cluster, pod, Subresource::Status, |p| {
            if !typed::decode::<Pod>(p).is_ok_and(|p| pending(&p)) {
                return false;
            }
            pod::set_condition(
                p,
                json!({"type": "PodScheduled", "status": "False",
                           "reason": "Unschedulable", "message": message}),
            )
        })
        .await;
        if let Err(e) = result
            && e.code != 404
        {
            tracing::warn!(error = %e, "could not update the PodScheduled condition");
        }
        tracing::debug!(pod = %format!("{}/{}", key.0, key.1), "unschedulable: {message}");
        self.recorder
            .event(
                pods_info(),
                &pod.metadata,
                events::WARNING,
                "FailedScheduling",
                "Scheduling",
                message,
            )
            .await;
    }
}

/// How soon a pod whose claims wait for their volumes is looked at again.
const VOLUME_WAIT: Duration = Duration::from_millis(500);

/// Upstream `FitError` when a PreFilter plugin rejected the pod: its message, then every
/// node unresolvable for preemption.
fn prefilter_error(nodes: usize, msg: &str) -> String {
    format!(
        "0/{nodes} nodes are available: {msg}. preemption: 0/{nodes} nodes are available: {nodes} Preemption is not helpful for scheduling."
    )
}

/// Back-off before the `attempts`-th retry (1 s doubling to 10 s).
fn backoff(attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(8);
    (INITIAL_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
}

/// Removes a pod from the cache; whether it held room on a node (its removal may help
/// pods waiting for room).
fn forget(cache: &mut Cache, key: &PodKey, bound: bool) -> bool {
    cache.pods.remove(key);
    cache.unschedulable.remove(key);
    let node = cache.assumed.remove(key);
    node.is_some() || bound
}

/// [`forget`] of a watched pod's JSON: where it ran is read from it, or from the cache when
/// it does not decode.
fn forget_raw(cache: &mut Cache, pod: &serde_json::Value) -> bool {
    let Ok(m) = typed::metadata(pod) else {
        return false;
    };
    let key = key_of(&m);
    let bound = match typed::decode::<Pod>(pod) {
        Ok(p) => !node_name(&p).is_empty(),
        Err(_) => cache
            .pods
            .get(&key)
            .is_some_and(|p| !node_name(&p.obj).is_empty()),
    };
    forget(cache, &key, bound)
}

/// Picks a node for `pod` (with its `requests`) from the cache, or explains why none fits.
fn decide(
    cache: &Cache,
    pod: &Pod,
    requests: &Resources,
    vols: &volumes::Volumes,
) -> Result<String, String> {
    if cache.nodes.is_empty() {
        return Err("no nodes available to schedule pods".to_string());
    }
    let mut states: BTreeMap<&str, NodeState<'_>> = cache
        .nodes
        .iter()
        .map(|(name, node)| (name.as_str(), NodeState::new(node)))
        .collect();
    for (key, CachedPod { obj: p, requests }) in &cache.pods {
        if is_terminal(p) {
            continue;
        }
        let node = match node_name(p) {
            "" => match cache.assumed.get(key) {
                Some(n) => n.as_str(),
                None => continue,
            },
            n => n,
        };
        if let Some(state) = states.get_mut(node) {
            state.add_pod(p, requests);
        }
    }
    let mut rejections: Vec<Rejection> = Vec::new();
    let mut best: Option<(i64, &str)> = None;
    for state in states.values() {
        match filter::filter(pod, requests, state).and_then(|()| vols.filter(state.node)) {
            Ok(()) => {
                let s = filter::score(pod, state);
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, state.name()));
                }
            }
            Err(r) => rejections.push(r),
        }
    }
    if let Some((_, node)) = best {
        return Ok(node.to_string());
    }
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref());
    let preemption =
        (policy == Some("Never")).then_some("not eligible due to preemptionPolicy=Never.");
    Err(filter::fit_error(
        cache.nodes.len(),
        &rejections,
        preemption,
    ))
}

/// Binds pod `namespace/name` (with `uid`) to `node` through the port's `binding`
/// subresource, as upstream's `DefaultBinder`: the API server's one bind path checks the uid
/// precondition, that the pod is unassigned and not being deleted, and sets `nodeName` and
/// `PodScheduled=True` in one write.
pub(crate) async fn bind(
    cluster: &ClusterRef,
    namespace: &str,
    name: &str,
    uid: &str,
    node: &str,
) -> Result<(), api::status::ApiError> {
    let binding = Binding {
        uid: Some(uid.to_string()).filter(|u| !u.is_empty()),
        node: node.to_string(),
        ..Binding::default()
    };
    cluster.bind(namespace, name, &binding).await
}
