//! The live view's state: what `paddock up` shows on a terminal, computed from the objects its
//! watches deliver, with no I/O (the renderer in [`super::tty`] draws [`Model::render`]).
//!
//! One row per workload — Deployments, StatefulSets, DaemonSets, CronJobs, Jobs, ReplicaSets
//! no Deployment owns, and bare Pods — with ready/desired, its pods' states in a few words, the
//! restarts and the last probe failure (the kubelet's `Unhealthy` events, the text `kubectl
//! describe` shows); then the addresses to open (Services and Ingresses); then a footer that
//! turns into the stop's progress on Ctrl-C. Start at [`Model`].

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;

/// Most workload rows shown (the last one says how many more there are).
pub(crate) const MAX_WORKLOAD_ROWS: usize = 20;
/// Most Service and Ingress rows shown.
pub(crate) const MAX_ADDRESS_ROWS: usize = 10;
/// Pods known only from their events (not yet, or no longer, watched) kept at most.
const MAX_UNSEEN_PODS: usize = 1024;
/// Widest a workload's name column gets (longer names are cut).
const NAME_WIDTH: usize = 40;
/// Widest the pods column gets.
const PODS_WIDTH: usize = 64;

/// Where this node's addresses are reached, for the addresses to open.
#[derive(Clone, Debug)]
pub(crate) struct ViewConfig {
    /// The node's address (NodePorts, and Ingress rules without a host).
    pub(crate) node_address: String,
    /// The Ingress controller's HTTP port; 0 when off.
    pub(crate) ingress_http_port: u16,
    /// The Ingress controller's HTTPS port; 0 when off.
    pub(crate) ingress_https_port: u16,
}

/// The kinds of workload rows, in the order they are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    CronJob,
    Job,
    Pod,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment",
            Kind::StatefulSet => "statefulset",
            Kind::DaemonSet => "daemonset",
            Kind::ReplicaSet => "replicaset",
            Kind::CronJob => "cronjob",
            Kind::Job => "job",
            Kind::Pod => "pod",
        }
    }
}

/// A workload: kind, namespace, name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    kind: Kind,
    namespace: String,
    name: String,
}

impl Key {
    fn new(kind: Kind, namespace: &str, name: &str) -> Key {
        Key {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// `kind/name`, with the namespace when it is not `default` (as the plain lines say).
    fn label(&self) -> String {
        super::who(self.kind.name(), Some(&self.namespace), &self.name)
    }
}

/// What a pod is doing, in the view's words.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PodState {
    Ready,
    /// Running, not ready: its readiness probe has not passed (yet).
    Probing,
    /// Bound to the node, no container created yet.
    Starting,
    /// `ContainerCreating` while the kubelet pulls an image (a `Pulling` event).
    Pulling,
    /// `ContainerCreating` otherwise.
    Creating,
    /// Another waiting reason (`ErrImagePull`, `ImagePullBackOff`, `CrashLoopBackOff`, …).
    Waiting(String),
    /// Not scheduled (the scheduler said why).
    Unschedulable,
    Pending,
    Terminating,
    Completed,
    Failed,
}

impl PodState {
    fn words(&self) -> &str {
        match self {
            PodState::Ready => "ready",
            PodState::Probing => "probing",
            PodState::Starting => "starting",
            PodState::Pulling => "pulling",
            PodState::Creating => "creating",
            PodState::Waiting(reason) => reason,
            PodState::Unschedulable => "unschedulable",
            PodState::Pending => "pending",
            PodState::Terminating => "terminating",
            PodState::Completed => "completed",
            PodState::Failed => "failed",
        }
    }
}

/// The view of one pod.
#[derive(Debug, Default)]
struct PodEntry {
    /// The pod as last watched (`None`: known only from events).
    seen: Option<SeenPod>,
    /// The last image event said `Pulling` (and nothing after it ended the pull).
    pulling: bool,
    /// The last `Unhealthy` event's message (first line), with its arrival number.
    probe_failure: Option<(u64, String)>,
}

#[derive(Debug)]
struct SeenPod {
    /// Its controller (`kind`, `name`) from the ownerReferences.
    owner: Option<(String, String)>,
    state: PodStatePart,
    restarts: i32,
}

/// The part of [`PodState`] that comes from the pod object; `Pulling` needs the events too.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PodStatePart {
    Creating,
    Other(PodState),
}

/// A workload's own counts, from its object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Counts {
    ready: i32,
    desired: i32,
    /// A short note: a rollout in progress, a Job's condition.
    note: Option<String>,
}

/// How far the stop is (Ctrl-C).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Not stopping.
    Running,
    /// The node stops its pods: `left` still stopping (`None` until the node says).
    Pods {
        left: Option<usize>,
        elapsed_secs: u64,
    },
    /// The pods are gone; the controllers and the API server stop.
    ControlPlane,
    Stopped,
}

/// The live view's state. Feed it the watched objects; [`Model::render`] gives the lines.
#[derive(Debug)]
pub(crate) struct Model {
    config: ViewConfig,
    workloads: BTreeMap<Key, Counts>,
    /// ReplicaSet (namespace, name) → the Deployment that owns it, if any.
    replica_sets: HashMap<(String, String), Option<String>>,
    pods: HashMap<(String, String), PodEntry>,
    unseen_pods: usize,
    services: BTreeMap<(String, String), Vec<String>>,
    ingresses: BTreeMap<(String, String), Vec<String>>,
    stop: Stop,
    /// Arrival number of the last event, to find the latest probe failure.
    events_seen: u64,
    dirty: bool,
}

/// The system's own objects are not the user's workloads.
fn system(namespace: Option<&str>) -> bool {
    namespace == Some("kube-system")
}

fn ns_of(o: &impl ResourceExt) -> String {
    o.namespace().unwrap_or_else(|| "default".to_string())
}

impl Model {
    pub(crate) fn new(config: ViewConfig) -> Model {
        Model {
            config,
            workloads: BTreeMap::new(),
            replica_sets: HashMap::new(),
            pods: HashMap::new(),
            unseen_pods: 0,
            services: BTreeMap::new(),
            ingresses: BTreeMap::new(),
            stop: Stop::Running,
            events_seen: 0,
            // The first frame (headers, footer) is drawn at once.
            dirty: true,
        }
    }

    /// Whether anything changed since the last call (the renderer redraws only then).
    pub(crate) fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub(crate) fn set_stop(&mut self, stop: Stop) {
        if self.stop != stop {
            self.stop = stop;
            self.dirty = true;
        }
    }

    fn set_workload(&mut self, key: Key, counts: Option<Counts>) {
        let changed = match counts {
            Some(c) => self.workloads.insert(key, c.clone()).as_ref() != Some(&c),
            None => self.workloads.remove(&key).is_some(),
        };
        self.dirty |= changed;
    }

    pub(crate) fn deployment(&mut self, d: &Deployment, gone: bool) {
        if system(d.namespace().as_deref()) {
            return;
        }
        let key = Key::new(Kind::Deployment, &ns_of(d), &d.name_any());
        let counts = (!gone).then(|| {
            let desired = d.spec.replicas.unwrap_or(1);
            let st = d.status.clone().unwrap_or_default();
            let updated = st.updated_replicas.unwrap_or(0);
            // A rollout replacing pods (old ones still there), not a first start.
            let rolling = updated < desired && st.replicas.unwrap_or(0) > updated;
            Counts {
                ready: st.ready_replicas.unwrap_or(0),
                desired,
                note: rolling.then(|| format!("{updated}/{desired} updated")),
            }
        });
        self.set_workload(key, counts);
    }

    pub(crate) fn stateful_set(&mut self, s: &StatefulSet, gone: bool) {
        if system(s.namespace().as_deref()) {
            return;
        }
        let key = Key::new(Kind::StatefulSet, &ns_of(s), &s.name_any());
        let counts = (!gone).then(|| Counts {
            ready: s
                .status
                .as_ref()
                .and_then(|st| st.ready_replicas)
                .unwrap_or(0),
            desired: s.spec.replicas.unwrap_or(1),
            note: None,
        });
        self.set_workload(key, counts);
    }

    pub(crate) fn daemon_set(&mut self, d: &DaemonSet, gone: bool) {
        if system(d.namespace().as_deref()) {
            return;
        }
        let key = Key::new(Kind::DaemonSet, &ns_of(d), &d.name_any());
        let counts = (!gone).then(|| {
            let st = d.status.clone().unwrap_or_default();
            Counts {
                ready: st.number_ready,
                desired: st.desired_number_scheduled,
                note: None,
            }
        });
        self.set_workload(key, counts);
    }

    pub(crate) fn replica_set(&mut self, r: &ReplicaSet, gone: bool) {
        if system(r.namespace().as_deref()) {
            return;
        }
        let ns = ns_of(r);
        let name = r.name_any();
        let key = Key::new(Kind::ReplicaSet, &ns, &name);
        if gone {
            self.replica_sets.remove(&(ns, name));
            self.set_workload(key, None);
            return;
        }
        let deployment = controller(r).and_then(|(kind, n)| (kind == "Deployment").then_some(n));
        let owned = deployment.is_some();
        if self.replica_sets.insert((ns, name), deployment.clone()) != Some(deployment) {
            self.dirty = true;
        }
        // A Deployment's ReplicaSets are its row; only a bare ReplicaSet has one of its own.
        let counts = (!owned).then(|| Counts {
            ready: r
                .status
                .as_ref()
                .and_then(|st| st.ready_replicas)
                .unwrap_or(0),
            desired: r.spec.replicas.unwrap_or(1),
            note: None,
        });
        self.set_workload(key, counts);
    }

    pub(crate) fn job(&mut self, j: &Job, gone: bool) {
        if system(j.namespace().as_deref()) {
            return;
        }
        let key = Key::new(Kind::Job, &ns_of(j), &j.name_any());
        let counts = (!gone).then(|| {
            let st = j.status.clone().unwrap_or_default();
            let condition = |t: &str| {
                st.conditions
                    .iter()
                    .flatten()
                    .find(|c| c.type_ == t && c.status == "True")
            };
            let note = if condition("Complete").is_some() {
                Some("complete".to_string())
            } else {
                condition("Failed").map(|c| match c.reason.as_deref() {
                    Some(r) if !r.is_empty() => format!("failed ({r})"),
                    _ => "failed".to_string(),
                })
            };
            Counts {
                // A Job's count is succeeded/completions.
                ready: st.succeeded.unwrap_or(0),
                desired: j.spec.as_ref().and_then(|s| s.completions).unwrap_or(1),
                note,
            }
        });
        self.set_workload(key, counts);
    }

    /// A CronJob's row says its schedule and how many of its Jobs run; the Jobs have rows of
    /// their own (as many as its history limits keep).
    pub(crate) fn cron_job(&mut self, c: &CronJob, gone: bool) {
        if system(c.namespace().as_deref()) {
            return;
        }
        let key = Key::new(Kind::CronJob, &ns_of(c), &c.name_any());
        let counts = (!gone).then(|| {
            let active = c
                .status
                .as_ref()
                .and_then(|st| st.active.as_ref())
                .map_or(0, Vec::len);
            let mut note = format!("schedule {:?}, {active} active", c.spec.schedule);
            if c.spec.suspend == Some(true) {
                note.push_str(", suspended");
            }
            Counts {
                ready: 0,
                desired: 0,
                note: Some(note),
            }
        });
        self.set_workload(key, counts);
    }

    pub(crate) fn pod(&mut self, p: &Pod, gone: bool) {
        if system(p.namespace().as_deref()) {
            return;
        }
        let id = (ns_of(p), p.name_any());
        let owner = controller(p);
        let bare = Key::new(Kind::Pod, &id.0, &id.1);
        if gone {
            if let Some(e) = self.pods.remove(&id) {
                self.unseen_pods -= usize::from(e.seen.is_none());
                self.dirty = true;
            }
            if owner.is_none() {
                self.set_workload(bare, None);
            }
            return;
        }
        let state = pod_state_part(p);
        let restarts = restarts(p);
        if owner.is_none() {
            let ready = state == PodStatePart::Other(PodState::Ready);
            self.set_workload(
                bare,
                Some(Counts {
                    ready: i32::from(ready),
                    desired: 1,
                    note: None,
                }),
            );
        }
        let existed = self.pods.contains_key(&id);
        let entry = self.pods.entry(id).or_default();
        if existed && entry.seen.is_none() {
            self.unseen_pods -= 1;
        }
        let changed = match &entry.seen {
            Some(s) => s.owner != owner || s.state != state || s.restarts != restarts,
            None => true,
        };
        entry.seen = Some(SeenPod {
            owner,
            state,
            restarts,
        });
        self.dirty |= changed;
    }

    /// Image pulls (`Pulling` … `Pulled`/`Failed`) and probe failures (`Unhealthy`) of pods.
    pub(crate) fn event(&mut self, e: &Event) {
        let obj = &e.involved_object;
        if obj.kind.as_deref() != Some("Pod") || system(obj.namespace.as_deref()) {
            return;
        }
        let reason = e.reason.as_deref().unwrap_or("");
        let pulling = match reason {
            "Pulling" => Some(true),
            "Pulled" | "Failed" | "BackOff" | "ErrImageNeverPull" | "InspectFailed" => Some(false),
            _ => None,
        };
        let failure = (reason == "Unhealthy").then(|| {
            let message = e.message.as_deref().unwrap_or("").trim();
            message.lines().next().unwrap_or("").to_string()
        });
        if pulling.is_none() && failure.is_none() {
            return;
        }
        let id = (
            obj.namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".to_string()),
            obj.name.clone().unwrap_or_default(),
        );
        if !self.pods.contains_key(&id) {
            // Events can come before their pod (or outlive it): kept, within a bound.
            if self.unseen_pods >= MAX_UNSEEN_PODS {
                return;
            }
            self.unseen_pods += 1;
        }
        self.events_seen += 1;
        let n = self.events_seen;
        let entry = self.pods.entry(id).or_default();
        if let Some(p) = pulling {
            self.dirty |= entry.pulling != p;
            entry.pulling = p;
        }
        if let Some(f) = failure {
            entry.probe_failure = Some((n, f));
            self.dirty = true;
        }
    }

    pub(crate) fn service(&mut self, s: &Service, gone: bool) {
        if system(s.namespace().as_deref()) || s.name_any() == "kubernetes" {
            return;
        }
        let id = (ns_of(s), s.name_any());
        let changed = if gone {
            self.services.remove(&id).is_some()
        } else {
            let addresses = service_addresses(s, &self.config);
            self.services.insert(id, addresses.clone()) != Some(addresses)
        };
        self.dirty |= changed;
    }

    pub(crate) fn ingress(&mut self, i: &Ingress, gone: bool) {
        if system(i.namespace().as_deref()) {
            return;
        }
        let id = (ns_of(i), i.name_any());
        let changed = if gone {
            self.ingresses.remove(&id).is_some()
        } else {
            let urls = ingress_urls(i, &self.config);
            self.ingresses.insert(id, urls.clone()) != Some(urls)
        };
        self.dirty |= changed;
    }

    /// The workload a pod's row is: its Deployment through its ReplicaSet, its other
    /// controller, or itself.
    fn workload_of(&self, namespace: &str, name: &str, pod: &SeenPod) -> Option<Key> {
        let Some((kind, owner)) = &pod.owner else {
            return Some(Key::new(Kind::Pod, namespace, name));
        };
        let kind = match kind.as_str() {
            "ReplicaSet" => {
                match self
                    .replica_sets
                    .get(&(namespace.to_string(), owner.clone()))
                {
                    Some(Some(d)) => return Some(Key::new(Kind::Deployment, namespace, d)),
                    _ => Kind::ReplicaSet,
                }
            }
            "StatefulSet" => Kind::StatefulSet,
            "DaemonSet" => Kind::DaemonSet,
            "Job" => Kind::Job,
            _ => return None,
        };
        Some(Key::new(kind, namespace, owner))
    }

    /// The workload rows, in order.
    fn rows(&self) -> Vec<Row> {
        #[derive(Default)]
        struct Agg {
            states: BTreeMap<PodState, usize>,
            restarts: i64,
            probe_failure: Option<(u64, String)>,
        }
        let mut aggs: HashMap<Key, Agg> = HashMap::new();
        for ((ns, name), entry) in &self.pods {
            let Some(seen) = &entry.seen else { continue };
            let Some(key) = self.workload_of(ns, name, seen) else {
                continue;
            };
            let agg = aggs.entry(key).or_default();
            let state = match &seen.state {
                PodStatePart::Creating if entry.pulling => PodState::Pulling,
                PodStatePart::Creating => PodState::Creating,
                PodStatePart::Other(s) => s.clone(),
            };
            *agg.states.entry(state).or_default() += 1;
            agg.restarts += i64::from(seen.restarts);
            if let Some(f) = &entry.probe_failure
                && agg.probe_failure.as_ref().is_none_or(|(n, _)| *n < f.0)
            {
                agg.probe_failure = Some(f.clone());
            }
        }
        self.workloads
            .iter()
            .map(|(key, counts)| {
                let agg = aggs.remove(key).unwrap_or_default();
                let all_ready = counts.ready >= counts.desired
                    && agg
                        .states
                        .keys()
                        .all(|s| matches!(s, PodState::Ready | PodState::Completed));
                let mut pods: Vec<String> = agg
                    .states
                    .iter()
                    .map(|(s, n)| format!("{n} {}", s.words()))
                    .collect();
                if let Some(note) = &counts.note {
                    pods.push(note.clone());
                }
                Row {
                    name: key.label(),
                    // A CronJob has no count of its own: its Jobs do.
                    count: if key.kind == Kind::CronJob {
                        "-".to_string()
                    } else {
                        format!("{}/{}", counts.ready, counts.desired)
                    },
                    pods: pods.join(", "),
                    restarts: agg.restarts,
                    // A failure is stale once everything is ready again.
                    probe_failure: if all_ready {
                        String::new()
                    } else {
                        agg.probe_failure.map(|(_, f)| f).unwrap_or_default()
                    },
                }
            })
            .collect()
    }

    /// The view as lines at most `width` columns wide and, all told, at most `height` lines
    /// (a small terminal gets fewer rows, never a scrolling mess).
    pub(crate) fn render(&self, width: usize, height: usize) -> Vec<String> {
        let width = width.max(20);
        let rows = self.rows();
        let addresses: Vec<(String, String)> = self
            .services
            .iter()
            .map(|((ns, name), a)| (super::who("service", Some(ns), name), a.join("   ")))
            .chain(
                self.ingresses
                    .iter()
                    .map(|((ns, name), u)| (super::who("ingress", Some(ns), name), u.join("   "))),
            )
            .collect();
        // Header and footer take two lines; addresses get a third of the rest at most.
        let budget = height.max(6) - 1 - 2;
        let address_cap = if addresses.is_empty() {
            0
        } else {
            MAX_ADDRESS_ROWS.min((budget / 3).max(1))
        };
        let workload_cap = MAX_WORKLOAD_ROWS.min(budget.saturating_sub(address_cap).max(1));
        let (shown_rows, more_rows) = fit(rows.len(), workload_cap);
        let (shown_addresses, more_addresses) = fit(addresses.len(), address_cap);

        let rows = &rows[..shown_rows];
        let name_w = rows
            .iter()
            .map(|r| r.name.chars().count())
            .chain(
                addresses[..shown_addresses]
                    .iter()
                    .map(|(n, _)| n.chars().count()),
            )
            .chain(["WORKLOAD".len()])
            .max()
            .unwrap_or(0)
            .min(NAME_WIDTH);
        let count_w = rows
            .iter()
            .map(|r| r.count.len())
            .chain(["READY".len()])
            .max()
            .unwrap_or(0);
        let pods_w = rows
            .iter()
            .map(|r| r.pods.chars().count())
            .chain(["PODS".len()])
            .max()
            .unwrap_or(0)
            .min(PODS_WIDTH);
        let mut lines = Vec::new();
        let line = |cells: [&str; 5]| {
            let text = format!(
                "{:name_w$}  {:count_w$}  {:pods_w$}  {:8}  {}",
                cut(cells[0], name_w),
                cells[1],
                cut(cells[2], pods_w),
                cells[3],
                cells[4],
            );
            cut(text.trim_end(), width)
        };
        lines.push(line([
            "WORKLOAD",
            "READY",
            "PODS",
            "RESTARTS",
            "LAST PROBE FAILURE",
        ]));
        for r in rows {
            lines.push(line([
                &r.name,
                &r.count,
                &r.pods,
                &r.restarts.to_string(),
                &r.probe_failure,
            ]));
        }
        if let Some(more) = more_rows {
            lines.push(cut(&format!("+{more} more workloads"), width));
        }
        for (name, what) in &addresses[..shown_addresses] {
            let text = format!("{:name_w$}  {what}", cut(name, name_w));
            lines.push(cut(text.trim_end(), width));
        }
        if let Some(more) = more_addresses {
            lines.push(cut(&format!("+{more} more services and ingresses"), width));
        }
        lines.push(cut(&self.footer(), width));
        lines
    }

    fn footer(&self) -> String {
        match &self.stop {
            Stop::Running => "Ctrl-C stops everything".to_string(),
            Stop::Pods { left, elapsed_secs } => {
                let left = match left {
                    Some(0) => {
                        return "stopping: pods stopped; removing their sandboxes".to_string();
                    }
                    Some(1) => "1 pod left".to_string(),
                    Some(n) => format!("{n} pods left"),
                    None => "pods".to_string(),
                };
                format!(
                    "stopping: {left} (each within its grace period, 30 s at most), {elapsed_secs} s"
                )
            }
            Stop::ControlPlane => "stopping: pods stopped; controllers and API server".to_string(),
            Stop::Stopped => "stopped".to_string(),
        }
    }
}

/// One workload's row.
#[derive(Debug)]
struct Row {
    name: String,
    count: String,
    pods: String,
    restarts: i64,
    probe_failure: String,
}

/// How many of `count` items fit in `cap` lines: (shown, the "+K more" line's K).
fn fit(count: usize, cap: usize) -> (usize, Option<usize>) {
    if count <= cap {
        (count, None)
    } else {
        let shown = cap.saturating_sub(1);
        (shown, Some(count - shown))
    }
}

/// `s` in at most `width` columns, with `…` where it was cut.
fn cut(s: &str, width: usize) -> String {
    console::truncate_str(s, width, "…").into_owned()
}

/// The controller in an object's ownerReferences: (kind, name).
fn controller(o: &impl ResourceExt) -> Option<(String, String)> {
    o.owner_references()
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| (r.kind.clone(), r.name.clone()))
}

fn restarts(p: &Pod) -> i32 {
    let Some(st) = &p.status else { return 0 };
    st.init_container_statuses
        .iter()
        .flatten()
        .chain(st.container_statuses.iter().flatten())
        .map(|c| c.restart_count)
        .sum()
}

/// A pod's state from its object (whether `ContainerCreating` is a pull needs the events).
fn pod_state_part(p: &Pod) -> PodStatePart {
    if p.metadata.deletion_timestamp.is_some() {
        return PodStatePart::Other(PodState::Terminating);
    }
    let status = p.status.clone().unwrap_or_default();
    let waiting = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .filter_map(|c| c.state.as_ref().and_then(|s| s.waiting.as_ref()))
        .filter_map(|w| w.reason.as_deref())
        .find(|r| *r != "PodInitializing");
    let state = match (status.phase.as_deref().unwrap_or("Pending"), waiting) {
        ("Succeeded", _) => PodState::Completed,
        ("Failed", _) => PodState::Failed,
        (_, Some("ContainerCreating")) => return PodStatePart::Creating,
        (_, Some(reason)) => PodState::Waiting(reason.to_string()),
        ("Running", None) => {
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if ready {
                PodState::Ready
            } else {
                PodState::Probing
            }
        }
        (_, None) => {
            let unschedulable = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "PodScheduled" && c.status == "False");
            if unschedulable {
                PodState::Unschedulable
            } else if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                PodState::Starting
            } else {
                PodState::Pending
            }
        }
    };
    PodStatePart::Other(state)
}

/// Where a Service is reached: its ClusterIP ports, its load balancer's and its node ports.
pub(crate) fn service_addresses(s: &Service, config: &ViewConfig) -> Vec<String> {
    let spec = s.spec.clone().unwrap_or_default();
    if spec.type_.as_deref() == Some("ExternalName") {
        return vec![format!(
            "→ {}",
            spec.external_name.as_deref().unwrap_or_default()
        )];
    }
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    let ports = spec.ports.clone().unwrap_or_default();
    let proto = |p: &k8s_openapi::api::core::v1::ServicePort| {
        p.protocol.clone().unwrap_or_else(|| "TCP".to_string())
    };
    let mut out = Vec::new();
    for p in &ports {
        if ip.is_empty() || ip == "None" {
            out.push(format!("headless {}/{}", p.port, proto(p)));
        } else {
            out.push(format!("{ip}:{}/{}", p.port, proto(p)));
        }
    }
    for addr in super::load_balancer_addresses(s) {
        for p in &ports {
            out.push(format!("{addr}:{} (load balancer)", p.port));
        }
    }
    for p in &ports {
        if let Some(np) = p.node_port {
            out.push(format!("{}:{np} (node port)", config.node_address));
        }
    }
    if out.is_empty() {
        out.push(spec.type_.unwrap_or_else(|| "ClusterIP".to_string()));
    }
    out
}

/// The URLs an Ingress serves on this node: each rule's host (the node's address for a rule
/// without one) and path, `https` for the hosts its `tls` lists.
pub(crate) fn ingress_urls(i: &Ingress, config: &ViewConfig) -> Vec<String> {
    let spec = i.spec.clone().unwrap_or_default();
    let tls_hosts: Vec<String> = spec
        .tls
        .iter()
        .flatten()
        .flat_map(|t| t.hosts.iter().flatten().cloned())
        .collect();
    let url = |host: Option<&str>, path: &str| {
        let tls = host.is_some_and(|h| tls_hosts.iter().any(|t| t == h));
        let (scheme, port, default) = if tls {
            ("https", config.ingress_https_port, 443)
        } else {
            ("http", config.ingress_http_port, 80)
        };
        let host = host.unwrap_or(&config.node_address);
        match port {
            0 => None,
            p if p == default => Some(format!("{scheme}://{host}{path}")),
            p => Some(format!("{scheme}://{host}:{p}{path}")),
        }
    };
    let mut out = Vec::new();
    for rule in spec.rules.iter().flatten() {
        let host = rule.host.as_deref().filter(|h| !h.is_empty());
        let paths: Vec<&str> = rule
            .http
            .iter()
            .flat_map(|h| h.paths.iter())
            .map(|p| p.path.as_deref().unwrap_or("/"))
            .collect();
        if paths.is_empty() {
            out.extend(url(host, "/"));
        }
        for path in paths {
            out.extend(url(host, path));
        }
    }
    if spec.default_backend.is_some() && out.is_empty() {
        out.extend(url(None, "/"));
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
