//! The node lifecycle controller (upstream
//! `pkg/controller/nodelifecycle/node_lifecycle_controller.go` and the helpers of
//! `pkg/controller/util/node/controller_utils.go`), without its taint-eviction half, which is
//! [`crate::tainteviction`] (upstream's separate `taint-eviction-controller`).
//!
//! Start at [`Controller::monitor_node_health`], run every `--node-monitor-period`: for each
//! Node, [`Controller::try_update_node_health`] keeps upstream's `nodeHealthData` on this
//! process's own clock (tokio's): the probe time advances when the Ready condition's
//! `lastHeartbeatTime` changes or the Lease `kube-node-lease/<node>` is renewed. A node not
//! heard from for `--node-monitor-grace-period` (`--node-startup-grace-period` when it never
//! posted a Ready condition) gets Ready, MemoryPressure, DiskPressure and PIDPressure
//! `Unknown` (`NodeStatusUnknown` / `Kubelet stopped posting node status.`, or
//! `NodeStatusNeverUpdated` / `Kubelet never posted node status.`); on Ready leaving True the
//! `NodeNotReady` event is recorded and every pod on the node gets its Ready condition False
//! (`MarkPodsNotReady`), which takes it out of the ready endpoints.
//!
//! Then `processTaintBaseEviction`: a node whose last observed Ready is False or Unknown is
//! queued in its zone's [`ratelimited::RateLimitedTimedQueue`], which a pass every 100 ms
//! drains at `--node-eviction-rate` into the `node.kubernetes.io/not-ready` or
//! `node.kubernetes.io/unreachable` NoExecute taint; both are removed when Ready is True
//! again. [`Controller::handle_disruption`] sets each zone's rate from its state (Normal,
//! PartialDisruption at `--unhealthy-zone-threshold`, FullDisruption) and stops all tainting
//! (removing the taints) when every zone is fully disrupted. Node changes queue upstream's
//! `doNoScheduleTaintingPass` (condition → NoSchedule taints); pods newly bound to a node
//! that is not Ready are marked not ready at once (`processPod`).

mod ratelimited;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, Subresource};
use crate::events::{self, Recorder, Style};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Cache, Change, Delta};
use crate::{Error, typed};
use ratelimited::RateLimitedTimedQueue;

/// Taint of a node whose Ready condition is Unknown.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Taint of a node whose Ready condition is False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Label that keeps a node out of the zone-disruption computation.
pub const LABEL_EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";
/// Namespace of the nodes' Leases.
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Upstream `retrySleepTime`.
const RETRY_SLEEP: Duration = Duration::from_millis(20);
/// Upstream `NodeHealthUpdateRetry`.
const NODE_HEALTH_UPDATE_RETRY: u32 = 5;
/// Upstream `scheduler.NodeEvictionPeriod`: how often the taint queues are drained.
const NODE_EVICTION_PERIOD: Duration = Duration::from_millis(100);
/// Upstream `podUpdateWorkerSize`.
const WORKERS: usize = 4;

/// The conditions set to Unknown when a node is not heard from (NetworkUnavailable is the
/// control plane's, never touched).
const UNKNOWN_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The controller's settings, named after kube-controller-manager's flags; [`Default`] is
/// upstream's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--node-monitor-period`.
    pub node_monitor_period: Duration,
    /// `--node-monitor-grace-period`.
    pub node_monitor_grace_period: Duration,
    /// `--node-startup-grace-period`.
    pub node_startup_grace_period: Duration,
    /// `--node-eviction-rate` (nodes per second).
    pub node_eviction_rate: f32,
    /// `--secondary-node-eviction-rate`.
    pub secondary_node_eviction_rate: f32,
    /// `--large-cluster-size-threshold`.
    pub large_cluster_size_threshold: usize,
    /// `--unhealthy-zone-threshold`.
    pub unhealthy_zone_threshold: f32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(50),
            node_startup_grace_period: Duration::from_secs(60),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
        }
    }
}

/// A zone's state (upstream `ZoneState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZoneState {
    Initial,
    Normal,
    FullDisruption,
    PartialDisruption,
}

/// What the controller last saw of a node, on its own clock (upstream `nodeHealthData`).
#[derive(Debug, Clone)]
struct NodeHealth {
    probe: Instant,
    ready_transition: Instant,
    /// The node's Ready condition as last seen.
    ready: Option<NodeCondition>,
    /// The Lease's renewTime as last seen.
    lease_renew: Option<k8s_openapi::jiff::Timestamp>,
}

/// The state the monitor pass keeps between passes.
#[derive(Default)]
struct State {
    known: HashMap<String, Arc<Node>>,
    health: HashMap<String, NodeHealth>,
    zone_states: HashMap<String, ZoneState>,
    tainters: HashMap<String, RateLimitedTimedQueue>,
    nodes_to_retry: HashSet<String>,
}

/// Work queued by watch events: the NoSchedule tainting pass of a node, or a pod newly
/// bound to a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Node(String),
    Pod(String, String),
}

/// Runs the node lifecycle controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, config: Config, shutdown: CancellationToken) {
    let c = Arc::new(Controller::new(cluster.clone(), config));
    let mut tasks = tokio::task::JoinSet::new();
    let infos = [
        typed::info::<Node>(),
        typed::info::<Lease>(),
        typed::info::<Pod>(),
    ];
    let rx = crate::reflector::spawn_all(&mut tasks, &cluster, &infos, &shutdown);
    let feeder = c.clone();
    crate::reflector::spawn_feeder(&mut tasks, rx, &shutdown, move |ch| feeder.observe(ch));
    crate::queue::spawn_workers(&mut tasks, &c, WORKERS, &shutdown);
    {
        let c = c.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            loop {
                if c.synced() {
                    c.no_execute_tainting_pass().await;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(NODE_EVICTION_PERIOD) => {}
                }
            }
        });
    }
    {
        let c = c.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            loop {
                if c.synced()
                    && let Err(e) = c.monitor_node_health().await
                {
                    tracing::error!(error = %e, "Error monitoring node health");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(c.config.node_monitor_period) => {}
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The controller's shared state.
pub(crate) struct Controller {
    cluster: ClusterRef,
    config: Config,
    recorder: Recorder,
    queue: WorkQueue<Key>,
    nodes: Cache<Node>,
    leases: Cache<Lease>,
    /// Every pod, for the pods of a node (upstream's `spec.nodeName` index).
    pods: Mutex<HashMap<(String, String), Arc<Pod>>>,
    /// The resources whose initial list arrived (upstream waits for its informers).
    synced: Mutex<HashSet<&'static str>>,
    state: Mutex<State>,
}

/// `type` condition of `node`.
fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn taints_of(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

/// Upstream `Taint.MatchTaint`: same key and effect.
fn same_taint(a: &Taint, b: &Taint) -> bool {
    a.key == b.key && a.effect == b.effect
}

fn taint_exists(taints: &[Taint], t: &Taint) -> bool {
    taints.iter().any(|x| same_taint(x, t))
}

fn template(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.to_string(),
        effect: effect.to_string(),
        ..Default::default()
    }
}

fn unreachable_taint() -> Taint {
    template(TAINT_UNREACHABLE, "NoExecute")
}

fn not_ready_taint() -> Taint {
    template(TAINT_NOT_READY, "NoExecute")
}

/// Upstream `nodeConditionToTaintKeyStatusMap`.
fn condition_taint(type_: &str, status: &str) -> Option<&'static str> {
    match (type_, status) {
        ("Ready", "False") => Some(TAINT_NOT_READY),
        ("Ready", "Unknown") => Some(TAINT_UNREACHABLE),
        ("MemoryPressure", "True") => Some("node.kubernetes.io/memory-pressure"),
        ("DiskPressure", "True") => Some("node.kubernetes.io/disk-pressure"),
        ("NetworkUnavailable", "True") => Some("node.kubernetes.io/network-unavailable"),
        ("PIDPressure", "True") => Some("node.kubernetes.io/pid-pressure"),
        _ => None,
    }
}

/// Upstream `taintKeyToNodeConditionMap` keys.
fn is_condition_taint(key: &str) -> bool {
    matches!(
        key,
        TAINT_NOT_READY
            | TAINT_UNREACHABLE
            | "node.kubernetes.io/network-unavailable"
            | "node.kubernetes.io/memory-pressure"
            | "node.kubernetes.io/disk-pressure"
            | "node.kubernetes.io/pid-pressure"
    )
}

/// Upstream `nodetopology.GetZoneKey`: `region:\0:zone` from the topology labels (the
/// stable ones first, then the deprecated beta ones); `""` without either.
pub(crate) fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |a: &str, b: &str| {
        labels
            .and_then(|l| l.get(a).or_else(|| l.get(b)))
            .cloned()
            .unwrap_or_default()
    };
    let region = get(
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    );
    let zone = get(
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    );
    if region.is_empty() && zone.is_empty() {
        return String::new();
    }
    format!("{region}:\x00:{zone}")
}

fn excluded_from_disruption(node: &Node) -> bool {
    node.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(LABEL_EXCLUDE_DISRUPTION))
}

/// An instant `age` ago on tokio's clock (now when that is before the clock's start).
fn instant_ago(age: Duration) -> Instant {
    let now = Instant::now();
    now.checked_sub(age).unwrap_or(now)
}

/// Time since `t` on the wall clock (zero when `t` is in the future or unset).
fn wall_age(t: Option<&Time>) -> Duration {
    let Some(t) = t else {
        return Duration::ZERO;
    };
    let secs = api::time::now().as_second() - t.0.as_second();
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn now_time() -> Time {
    // Kubernetes times are whole seconds on the wire.
    Time(
        k8s_openapi::jiff::Timestamp::from_second(api::time::now().as_second()).unwrap_or_default(),
    )
}

/// A reference-like metadata for a Node event (upstream `RecordNodeEvent`: apiVersion, kind,
/// name and uid only).
fn node_ref(name: &str, uid: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        uid: Some(uid.to_string()),
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
            Key::Node(name) => self.no_schedule_tainting_pass(&name).await,
            Key::Pod(ns, name) => self.process_pod(&ns, &name).await,
        }
        .map(|()| None)
    }

    fn observe(&self, change: Change) {
        if let Delta::Synced = change.delta {
            self.synced.lock().insert(change.info.plural);
            return;
        }
        self.nodes.apply(&change);
        self.leases.apply(&change);
        if std::ptr::eq(change.info, typed::info::<Node>()) {
            if let Delta::Upsert(obj) = &change.delta {
                self.queue.add(Key::Node(
                    typed::metadata(obj)
                        .unwrap_or_default()
                        .name
                        .unwrap_or_default(),
                ));
            } else if let Delta::Delete(obj) = &change.delta {
                let name = typed::metadata(obj)
                    .unwrap_or_default()
                    .name
                    .unwrap_or_default();
                self.state.lock().nodes_to_retry.remove(&name);
            }
            return;
        }
        if !std::ptr::eq(change.info, typed::info::<Pod>()) {
            return;
        }
        match &change.delta {
            Delta::Upsert(_) => {
                let Some(new) = typed::upserted::<Pod>(&change).map(Arc::new) else {
                    return;
                };
                let key = typed::key_of(&new.metadata);
                let old = self.pods.lock().insert(key.clone(), new.clone());
                // Upstream `podUpdated`: a pod newly bound to a node.
                let node = crate::pod::typed::node_name(&new);
                let old_node = old.as_deref().map(crate::pod::typed::node_name);
                if !node.is_empty() && old_node != Some(node) {
                    self.queue.add(Key::Pod(key.0, key.1));
                }
            }
            Delta::Delete(obj) => {
                let m = typed::metadata(obj).unwrap_or_default();
                self.pods.lock().remove(&typed::key_of(&m));
            }
            Delta::Synced => {}
        }
    }
}

impl Controller {
    fn new(cluster: ClusterRef, config: Config) -> Controller {
        Controller {
            recorder: Recorder::new(cluster.clone(), "node-controller", Style::Legacy),
            cluster,
            config,
            queue: WorkQueue::controller_default(),
            nodes: Cache::default(),
            leases: Cache::default(),
            pods: Mutex::new(HashMap::new()),
            synced: Mutex::new(HashSet::new()),
            state: Mutex::new(State::default()),
        }
    }

    fn synced(&self) -> bool {
        let s = self.synced.lock();
        ["nodes", "leases", "pods"].iter().all(|p| s.contains(p))
    }

    fn pods_on(&self, node: &str) -> Vec<Arc<Pod>> {
        self.pods
            .lock()
            .values()
            .filter(|p| crate::pod::typed::node_name(p) == node)
            .cloned()
            .collect()
    }

    /// Upstream `monitorNodeHealth`.
    pub(crate) async fn monitor_node_health(&self) -> Result<(), Error> {
        let nodes = self.nodes.list("");
        let (added, deleted, new_zones) = self.classify_nodes(&nodes);
        for n in &new_zones {
            self.add_evictor_for_new_zone(n);
        }
        for n in &added {
            let name = typed::name(&n.metadata);
            tracing::info!(node = %name, "Controller observed a new Node");
            self.record_node_event(
                n,
                events::NORMAL,
                "RegisteredNode",
                &format!("Registered Node {name} in Controller"),
            )
            .await;
            self.state.lock().known.insert(name.to_string(), n.clone());
            self.add_evictor_for_new_zone(n);
            if let Err(e) = self.mark_node_as_reachable(n).await {
                tracing::warn!(node = %name, error = %e, "Failed to remove taints from node");
            }
        }
        for n in &deleted {
            let name = typed::name(&n.metadata);
            tracing::info!(node = %name, "Controller observed a Node deletion");
            self.record_node_event(
                n,
                events::NORMAL,
                "RemovingNode",
                &format!("Removing Node {name} from Controller"),
            )
            .await;
            let mut st = self.state.lock();
            st.known.remove(name);
            st.health.remove(name);
        }

        let mut zone_conditions: HashMap<String, Vec<Option<NodeCondition>>> = HashMap::new();
        for n in &nodes {
            let mut node = Node::clone(n);
            let mut result = None;
            for attempt in 0..NODE_HEALTH_UPDATE_RETRY {
                match self.try_update_node_health(&mut node).await {
                    Ok(r) => {
                        result = Some(r);
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(node = %typed::name(&node.metadata), error = %e, attempt, "updating node health failed; retrying");
                    }
                }
                tokio::time::sleep(RETRY_SLEEP).await;
                let name = typed::name(&n.metadata).to_string();
                match typed::get::<Node>(&self.cluster, "", &name).await {
                    Ok(Some(fresh)) => node = fresh,
                    _ => {
                        tracing::error!(node = %name, "Failed while getting a Node to retry updating node health. Probably Node was deleted");
                        break;
                    }
                }
            }
            let Some((observed, current)) = result else {
                tracing::error!(node = %typed::name(&node.metadata), "Update health of Node from Controller error, Skipping - no pods will be evicted");
                continue;
            };
            if !excluded_from_disruption(&node) {
                zone_conditions
                    .entry(zone_key(&node))
                    .or_default()
                    .push(current.clone());
            }
            let name = typed::name(&node.metadata).to_string();
            if let Some(current) = &current {
                let pods = self.pods_on(&name);
                self.process_taint_base_eviction(&node, &observed).await;
                let needs_retry = self.state.lock().nodes_to_retry.contains(&name);
                let became_not_ready = current.status != "True" && observed.status == "True";
                if became_not_ready {
                    self.record_node_event(
                        &node,
                        events::NORMAL,
                        "NodeNotReady",
                        &format!("Node {name} status is now: NodeNotReady"),
                    )
                    .await;
                }
                if (became_not_ready || (needs_retry && observed.status != "True"))
                    && let Err(e) = self.mark_pods_not_ready(&pods, &name).await
                {
                    tracing::warn!(node = %name, error = %e, "unable to mark all pods NotReady; queuing for retry");
                    self.state.lock().nodes_to_retry.insert(name);
                    continue;
                }
            }
            self.state.lock().nodes_to_retry.remove(&name);
        }
        self.handle_disruption(&zone_conditions, &nodes).await;
        Ok(())
    }

    /// Upstream `classifyNodes`: added, deleted, and known nodes of a zone not seen yet.
    #[allow(clippy::type_complexity)]
    fn classify_nodes(
        &self,
        all: &[Arc<Node>],
    ) -> (Vec<Arc<Node>>, Vec<Arc<Node>>, Vec<Arc<Node>>) {
        let st = self.state.lock();
        let mut added = Vec::new();
        let mut new_zones = Vec::new();
        for n in all {
            if st.known.contains_key(typed::name(&n.metadata)) {
                if !st.zone_states.contains_key(&zone_key(n)) {
                    new_zones.push(n.clone());
                }
            } else {
                added.push(n.clone());
            }
        }
        let names: HashSet<&str> = all.iter().map(|n| typed::name(&n.metadata)).collect();
        let deleted = st
            .known
            .iter()
            .filter(|(k, _)| !names.contains(k.as_str()))
            .map(|(_, v)| v.clone())
            .collect();
        (added, deleted, new_zones)
    }

    /// Upstream `addPodEvictorForNewZone`.
    fn add_evictor_for_new_zone(&self, node: &Node) {
        let zone = zone_key(node);
        let mut st = self.state.lock();
        if !st.zone_states.contains_key(&zone) {
            st.zone_states.insert(zone.clone(), ZoneState::Initial);
            st.tainters.insert(
                zone,
                RateLimitedTimedQueue::new(self.config.node_eviction_rate),
            );
        }
    }

    /// Upstream `tryUpdateNodeHealth`: the observed Ready condition (before) and the current
    /// one (after writing Unknown if the grace period passed). `node` is updated in place.
    async fn try_update_node_health(
        &self,
        node: &mut Node,
    ) -> Result<(NodeCondition, Option<NodeCondition>), Error> {
        let name = typed::name(&node.metadata).to_string();
        let saved = self.state.lock().health.get(&name).cloned();
        let current_ready = condition(node, "Ready").cloned();
        let (observed, grace) = match &current_ready {
            Some(c) => (c.clone(), self.config.node_monitor_grace_period),
            None => (
                // Never posted: as if it had been Unknown since its creation.
                NodeCondition {
                    type_: "Ready".into(),
                    status: "Unknown".into(),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: node.metadata.creation_timestamp.clone(),
                    ..Default::default()
                },
                self.config.node_startup_grace_period,
            ),
        };
        let now = Instant::now();
        let mut health = match (&saved, &current_ready) {
            (None, None) => {
                let created = instant_ago(wall_age(node.metadata.creation_timestamp.as_ref()));
                NodeHealth {
                    probe: created,
                    ready_transition: created,
                    ready: None,
                    lease_renew: None,
                }
            }
            (Some(h), None) if h.ready.is_none() => h.clone(),
            (None, Some(_)) => {
                tracing::info!(node = %name, "Missing timestamp for Node. Assuming now as a timestamp");
                NodeHealth {
                    probe: now,
                    ready_transition: now,
                    ready: current_ready.clone(),
                    lease_renew: None,
                }
            }
            (Some(h), current) => {
                let saved_cond = h.ready.as_ref();
                match (saved_cond, current) {
                    (None, Some(_)) | (Some(_), None) => NodeHealth {
                        probe: now,
                        ready_transition: now,
                        ready: current_ready.clone(),
                        lease_renew: h.lease_renew,
                    },
                    (Some(s), Some(c)) if s.last_heartbeat_time != c.last_heartbeat_time => {
                        let transition = if s.last_transition_time != c.last_transition_time {
                            now
                        } else {
                            h.ready_transition
                        };
                        NodeHealth {
                            probe: now,
                            ready_transition: transition,
                            ready: current_ready.clone(),
                            lease_renew: h.lease_renew,
                        }
                    }
                    _ => h.clone(),
                }
            }
        };
        // A renewed lease always counts as a heartbeat.
        let lease_renew = self
            .leases
            .get(NODE_LEASE_NAMESPACE, &name)
            .and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0));
        if let Some(observed_renew) = lease_renew
            && health
                .lease_renew
                .is_none_or(|saved| saved < observed_renew)
        {
            health.lease_renew = Some(observed_renew);
            health.probe = now;
        }
        // Upstream saves the health data whatever happens next.
        self.state
            .lock()
            .health
            .insert(name.clone(), health.clone());

        if now <= health.probe + grace {
            return Ok((observed, current_ready));
        }
        let stamp = now_time();
        let mut conditions = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        for type_ in UNKNOWN_CONDITIONS {
            match conditions.iter_mut().find(|c| c.type_ == type_) {
                None => {
                    tracing::info!(node = %name, condition = type_, "Condition of node was never updated by kubelet");
                    conditions.push(NodeCondition {
                        type_: type_.into(),
                        status: "Unknown".into(),
                        reason: Some("NodeStatusNeverUpdated".into()),
                        message: Some("Kubelet never posted node status.".into()),
                        last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                        last_transition_time: Some(stamp.clone()),
                    });
                }
                Some(c) => {
                    tracing::info!(node = %name, condition = type_, "Node hasn't been updated");
                    if c.status != "Unknown" {
                        c.status = "Unknown".into();
                        c.reason = Some("NodeStatusUnknown".into());
                        c.message = Some("Kubelet stopped posting node status.".into());
                        c.last_transition_time = Some(stamp.clone());
                    }
                }
            }
        }
        let current = conditions.iter().find(|c| c.type_ == "Ready").cloned();
        if current.as_ref() == Some(&observed) {
            return Ok((observed, current_ready));
        }
        self.write_conditions(node, &conditions).await?;
        node.status.get_or_insert_with(Default::default).conditions = Some(conditions);
        let mut st = self.state.lock();
        st.health.insert(
            name,
            NodeHealth {
                probe: health.probe,
                ready_transition: Instant::now(),
                ready: current.clone(),
                lease_renew,
            },
        );
        Ok((observed, current))
    }

    /// Writes the four conditions of `conditions` into the node's status, if the stored node
    /// is still the one read (upstream's `UpdateStatus` of the read object: a heartbeat
    /// posted meanwhile makes it a conflict, and the caller re-reads).
    async fn write_conditions(
        &self,
        node: &Node,
        conditions: &[NodeCondition],
    ) -> Result<(), Error> {
        let name = typed::name(&node.metadata).to_string();
        let rv = node.metadata.resource_version.clone().unwrap_or_default();
        let mut wanted = Vec::new();
        for type_ in UNKNOWN_CONDITIONS {
            if let Some(c) = conditions.iter().find(|c| c.type_ == type_) {
                wanted.push(typed::encode(c)?);
            }
        }
        let info = typed::info::<Node>();
        self.cluster
            .update_with(info, "", &name, Subresource::Status, |o| {
                if o["metadata"]["resourceVersion"].as_str().unwrap_or("") != rv {
                    return Err(api::status::ApiError::conflict_modified(info, &name));
                }
                if !o["status"].is_object() {
                    o["status"] = json!({});
                }
                if !o["status"]["conditions"].is_array() {
                    o["status"]["conditions"] = json!([]);
                }
                let Some(list) = o["status"]["conditions"].as_array_mut() else {
                    return Ok(false);
                };
                for w in &wanted {
                    match list.iter_mut().find(|c| c["type"] == w["type"]) {
                        Some(c) => *c = w.clone(),
                        None => list.push(w.clone()),
                    }
                }
                Ok(true)
            })
            .await?;
        Ok(())
    }

    /// Upstream `MarkPodsNotReady`: every pod on `node_name` whose Ready condition is not
    /// already False gets it False (status only; the transition time moves), with the
    /// Warning event `NodeNotReady` on the pod.
    async fn mark_pods_not_ready(&self, pods: &[Arc<Pod>], node_name: &str) -> Result<(), Error> {
        tracing::info!(node = %node_name, "Update ready status of pods on node");
        let mut errors = Vec::new();
        for pod in pods {
            if crate::pod::typed::node_name(pod) != node_name {
                continue;
            }
            let has_ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready"));
            if !has_ready {
                continue;
            }
            let mut flipped = false;
            let result = typed::edit(&self.cluster, pod.as_ref(), Subresource::Status, |o| {
                flipped = false;
                let Some(cond) = o["status"]["conditions"]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                    .cloned()
                else {
                    return false;
                };
                let mut cond = cond;
                cond["status"] = json!("False");
                flipped = crate::pod::set_condition(o, cond);
                flipped
            })
            .await;
            match result {
                Ok(Some(_)) => {
                    if flipped {
                        tracing::info!(pod = %typed::name(&pod.metadata), "Updating ready status of pod to false");
                        self.recorder
                            .event(
                                typed::info::<Pod>(),
                                &pod.metadata,
                                events::WARNING,
                                "NodeNotReady",
                                "",
                                "Node is not ready",
                            )
                            .await;
                    }
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        match errors.into_iter().next() {
            None => Ok(()),
            Some(e) => Err(e.into()),
        }
    }

    async fn record_node_event(&self, node: &Node, type_: &str, reason: &str, message: &str) {
        let name = typed::name(&node.metadata);
        let m = node_ref(name, typed::uid(&node.metadata));
        let message = if reason == "NodeNotReady" {
            message.to_string()
        } else {
            // Upstream `RecordNodeEvent`: "Node <name> event: <message>".
            format!("Node {name} event: {message}")
        };
        self.recorder
            .event(typed::info::<Node>(), &m, type_, reason, "", &message)
            .await;
    }

    /// Upstream `processTaintBaseEviction`, on the Ready condition observed before this pass.
    async fn process_taint_base_eviction(&self, node: &Node, observed: &NodeCondition) {
        let name = typed::name(&node.metadata);
        let taints = taints_of(node);
        match observed.status.as_str() {
            "False" => {
                if taint_exists(taints, &unreachable_taint()) {
                    if !self
                        .swap_taints(name, &[not_ready_taint()], &[unreachable_taint()])
                        .await
                    {
                        tracing::error!(node = %name, "Failed to instantly swap UnreachableTaint to NotReadyTaint. Will try again in the next cycle");
                    }
                } else if self.mark_node_for_tainting(node, "False") {
                    tracing::info!(node = %name, "Node is NotReady. Adding it to the Taint queue");
                }
            }
            "Unknown" => {
                if taint_exists(taints, &not_ready_taint()) {
                    if !self
                        .swap_taints(name, &[unreachable_taint()], &[not_ready_taint()])
                        .await
                    {
                        tracing::error!(node = %name, "Failed to instantly swap NotReadyTaint to UnreachableTaint. Will try again in the next cycle");
                    }
                } else if self.mark_node_for_tainting(node, "Unknown") {
                    tracing::info!(node = %name, "Node is unresponsive. Adding it to the Taint queue");
                }
            }
            "True" => match self.mark_node_as_reachable(node).await {
                Ok(true) => {
                    tracing::info!(node = %name, "Node is healthy again, removed all taints")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(node = %name, error = %e, "Failed to remove taints from node. Will retry in next iteration");
                }
            },
            _ => {}
        }
    }

    /// Upstream `markNodeForTainting`.
    fn mark_node_for_tainting(&self, node: &Node, status: &str) -> bool {
        let zone = zone_key(node);
        let name = typed::name(&node.metadata);
        let taints = taints_of(node);
        let mut st = self.state.lock();
        let Some(q) = st.tainters.get_mut(&zone) else {
            return false;
        };
        if (status == "False" && !taint_exists(taints, &not_ready_taint()))
            || (status == "Unknown" && !taint_exists(taints, &unreachable_taint()))
        {
            q.remove(name);
        }
        q.add(name, typed::uid(&node.metadata))
    }

    /// Upstream `markNodeAsReachable`: both NoExecute taints off, out of the taint queue;
    /// whether it was queued.
    async fn mark_node_as_reachable(&self, node: &Node) -> Result<bool, Error> {
        let name = typed::name(&node.metadata);
        self.remove_taints(name, &[unreachable_taint(), not_ready_taint()])
            .await?;
        let mut st = self.state.lock();
        Ok(st
            .tainters
            .get_mut(&zone_key(node))
            .is_some_and(|q| q.remove(name)))
    }

    /// Upstream `RemoveTaintOffNode`: no write unless the node carries one of `taints`.
    async fn remove_taints(&self, name: &str, taints: &[Taint]) -> Result<(), Error> {
        let Some(node) = self.nodes.get("", name) else {
            return Ok(());
        };
        if !taints.iter().any(|t| taint_exists(taints_of(&node), t)) {
            return Ok(());
        }
        self.edit_taints(name, &[], taints).await
    }

    /// Upstream `SwapNodeControllerTaint`: adds (or updates) `add` with `timeAdded` now and
    /// removes `remove`; whether it succeeded.
    async fn swap_taints(&self, name: &str, add: &[Taint], remove: &[Taint]) -> bool {
        match self.edit_taints(name, add, remove).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(node = %name, error = %e, "unable to swap taints of node");
                false
            }
        }
    }

    async fn edit_taints(&self, name: &str, add: &[Taint], remove: &[Taint]) -> Result<(), Error> {
        let stamp = now_time();
        let mut added = Vec::new();
        for t in add {
            let mut t = t.clone();
            t.time_added = Some(stamp.clone());
            added.push(typed::encode(&t)?);
        }
        let removed: Vec<(String, String)> = remove
            .iter()
            .map(|t| (t.key.clone(), t.effect.clone()))
            .collect();
        let result = self
            .cluster
            .update_with(typed::info::<Node>(), "", name, Subresource::Main, |o| {
                let mut list: Vec<Value> =
                    o["spec"]["taints"].as_array().cloned().unwrap_or_default();
                let before = list.clone();
                let matches = |t: &Value, key: &str, effect: &str| {
                    t["key"].as_str() == Some(key) && t["effect"].as_str() == Some(effect)
                };
                for a in &added {
                    let (k, e) = (
                        a["key"].as_str().unwrap_or(""),
                        a["effect"].as_str().unwrap_or(""),
                    );
                    // An identical taint (but for its timeAdded) stays as it is.
                    match list.iter_mut().find(|t| matches(t, k, e)) {
                        Some(t) if t["value"] == a["value"] => {}
                        Some(t) => *t = a.clone(),
                        None => list.push(a.clone()),
                    }
                }
                list.retain(|t| !removed.iter().any(|(k, e)| matches(t, k, e)));
                if list == before {
                    return Ok(false);
                }
                if list.is_empty() {
                    if let Some(spec) = o["spec"].as_object_mut() {
                        spec.remove("taints");
                    }
                } else {
                    o["spec"]["taints"] = Value::Array(list);
                }
                Ok(true)
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Upstream `doNoExecuteTaintingPass`: drains each zone's queue into taints.
    pub(crate) async fn no_execute_tainting_pass(&self) {
        let zones: Vec<String> = self.state.lock().tainters.keys().cloned().collect();
        for zone in zones {
            let due = match self.state.lock().tainters.get_mut(&zone) {
                Some(q) => q.take_due(),
                None => continue,
            };
            for val in due {
                let retry = self.taint_one(&val.value).await;
                if let Some(wait) = retry
                    && let Some(q) = self.state.lock().tainters.get_mut(&zone)
                {
                    q.retry(val, wait);
                }
            }
        }
    }

    /// The action of the tainting pass for one node: `None` when done, `Some(wait)` to retry.
    async fn taint_one(&self, name: &str) -> Option<Duration> {
        let Some(node) = self.nodes.get("", name) else {
            tracing::info!(node = %name, "Node no longer present in nodeLister");
            return None;
        };
        let Some(ready) = condition(&node, "Ready") else {
            tracing::info!(node = %name, "Failed to get NodeCondition from the node status");
            return Some(Duration::from_millis(50));
        };
        // "unreachable" and "not ready" mirror the Ready condition, so they exclude each other.
        let (add, opposite) = match ready.status.as_str() {
            "False" => (not_ready_taint(), unreachable_taint()),
            "Unknown" => (unreachable_taint(), not_ready_taint()),
            _ => {
                tracing::debug!(node = %name, "Node was in a taint queue, but it's ready now. Ignoring taint request");
                return None;
            }
        };
        if self.swap_taints(name, &[add], &[opposite]).await {
            None
        } else {
            Some(Duration::ZERO)
        }
    }

    /// Upstream `ComputeZoneState`.
    fn compute_zone_state(&self, conditions: &[Option<NodeCondition>]) -> (usize, ZoneState) {
        let ready = conditions
            .iter()
            .filter(|c| c.as_ref().is_some_and(|c| c.status == "True"))
            .count();
        let not_ready = conditions.len() - ready;
        #[allow(clippy::cast_precision_loss)]
        let share = not_ready as f32 / (not_ready + ready).max(1) as f32;
        if ready == 0 && not_ready > 0 {
            (not_ready, ZoneState::FullDisruption)
        } else if not_ready > 2 && share >= self.config.unhealthy_zone_threshold {
            (not_ready, ZoneState::PartialDisruption)
        } else {
            (not_ready, ZoneState::Normal)
        }
    }

    /// Upstream `ReducedQPSFunc` (partial disruption) and `HealthyQPSFunc`.
    fn qps_for(&self, state: ZoneState, zone_size: usize) -> Option<f32> {
        match state {
            ZoneState::Normal | ZoneState::FullDisruption => Some(self.config.node_eviction_rate),
            ZoneState::PartialDisruption => {
                Some(if zone_size > self.config.large_cluster_size_threshold {
                    self.config.secondary_node_eviction_rate
                } else {
                    0.0
                })
            }
            ZoneState::Initial => None,
        }
    }

    fn set_limiter_in_zone(&self, st: &mut State, zone: &str, size: usize, state: ZoneState) {
        if let Some(qps) = self.qps_for(state, size)
            && let Some(q) = st.tainters.get_mut(zone)
        {
            q.swap_limiter(qps);
        }
    }

    /// Upstream `handleDisruption`.
    async fn handle_disruption(
        &self,
        zone_conditions: &HashMap<String, Vec<Option<NodeCondition>>>,
        nodes: &[Arc<Node>],
    ) {
        let mut new_states = HashMap::new();
        let mut all_are_fully_disrupted = true;
        {
            let mut st = self.state.lock();
            for (zone, conds) in zone_conditions {
                let (_, state) = self.compute_zone_state(conds);
                if state != ZoneState::FullDisruption {
                    all_are_fully_disrupted = false;
                }
                new_states.insert(zone.clone(), state);
                if !st.zone_states.contains_key(zone) {
                    tracing::error!(zone = %zone, "Setting initial state for unseen zone");
                    st.zone_states.insert(zone.clone(), ZoneState::Initial);
                    st.tainters.insert(
                        zone.clone(),
                        RateLimitedTimedQueue::new(self.config.node_eviction_rate),
                    );
                }
            }
        }
        let all_was_fully_disrupted = {
            let mut st = self.state.lock();
            st.zone_states
                .retain(|z, _| zone_conditions.contains_key(z));
            st.zone_states
                .values()
                .all(|s| *s == ZoneState::FullDisruption)
        };
        if all_are_fully_disrupted && all_was_fully_disrupted {
            return;
        }
        if all_are_fully_disrupted {
            tracing::info!(
                "Controller detected that all Nodes are not-Ready. Entering master disruption mode"
            );
            for n in nodes {
                if let Err(e) = self.mark_node_as_reachable(n).await {
                    tracing::error!(node = %typed::name(&n.metadata), error = %e, "Failed to remove taints from Node");
                }
            }
            let mut st = self.state.lock();
            let zones: Vec<String> = st.zone_states.keys().cloned().collect();
            for z in zones {
                if let Some(q) = st.tainters.get_mut(&z) {
                    q.swap_limiter(0.0);
                }
                st.zone_states.insert(z, ZoneState::FullDisruption);
            }
            return;
        }
        let mut st = self.state.lock();
        if all_was_fully_disrupted {
            tracing::info!(
                "Controller detected that some Nodes are Ready. Exiting master disruption mode"
            );
            let now = Instant::now();
            for n in nodes {
                if let Some(h) = st.health.get_mut(typed::name(&n.metadata)) {
                    h.probe = now;
                    h.ready_transition = now;
                }
            }
            let zones: Vec<String> = st.zone_states.keys().cloned().collect();
            for z in zones {
                let state = new_states.get(&z).copied().unwrap_or(ZoneState::Normal);
                let size = zone_conditions.get(&z).map_or(0, Vec::len);
                self.set_limiter_in_zone(&mut st, &z, size, state);
                st.zone_states.insert(z, state);
            }
            return;
        }
        let zones: Vec<(String, ZoneState)> = st
            .zone_states
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (z, old) in zones {
            let Some(&state) = new_states.get(&z) else {
                continue;
            };
            if old == state {
                continue;
            }
            tracing::info!(zone = %z, ?state, "Controller detected that zone is now in new state");
            let size = zone_conditions.get(&z).map_or(0, Vec::len);
            self.set_limiter_in_zone(&mut st, &z, size, state);
            st.zone_states.insert(z, state);
        }
    }

    /// Upstream `doNoScheduleTaintingPass`: the NoSchedule taints of the node's conditions
    /// (and of `spec.unschedulable`).
    async fn no_schedule_tainting_pass(&self, name: &str) -> Result<(), Error> {
        let Some(node) = self.nodes.get("", name) else {
            return Ok(());
        };
        let mut want: Vec<Taint> = Vec::new();
        for c in node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or(&[])
        {
            if let Some(key) = condition_taint(&c.type_, &c.status) {
                want.push(template(key, "NoSchedule"));
            }
        }
        if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
            want.push(template("node.kubernetes.io/unschedulable", "NoSchedule"));
        }
        let have: Vec<Taint> = taints_of(&node)
            .iter()
            .filter(|t| {
                t.effect == "NoSchedule"
                    && (t.key == "node.kubernetes.io/unschedulable" || is_condition_taint(&t.key))
            })
            .cloned()
            .collect();
        let to_add: Vec<Taint> = want
            .iter()
            .filter(|t| !taint_exists(&have, t))
            .cloned()
            .collect();
        let to_del: Vec<Taint> = have
            .iter()
            .filter(|t| !taint_exists(&want, t))
            .cloned()
            .collect();
        if to_add.is_empty() && to_del.is_empty() {
            return Ok(());
        }
        self.edit_taints(name, &to_add, &to_del).await
    }

    /// Upstream `processPod`: a pod bound to a node that is not Ready is marked not ready.
    async fn process_pod(&self, ns: &str, name: &str) -> Result<(), Error> {
        let Some(pod) = self
            .pods
            .lock()
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
        else {
            return Ok(());
        };
        let node_name = crate::pod::typed::node_name(&pod).to_string();
        let Some(health) = self.state.lock().health.get(&node_name).cloned() else {
            return Ok(());
        };
        if self.nodes.get("", &node_name).is_none() {
            return Ok(());
        }
        let Some(ready) = health.ready else {
            return Ok(());
        };
        if ready.status != "True" {
            self.mark_pods_not_ready(&[pod], &node_name).await?;
        }
        Ok(())
    }
}
