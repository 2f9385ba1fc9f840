//! The scheduler's filter and score plugins as pure functions over k8s-openapi objects, in the
//! order of upstream's default profile: NodeUnschedulable, TaintToleration, NodeAffinity
//! (nodeSelector + required node affinity), NodePorts, NodeResourcesFit; scoring is
//! NodeResourcesFit's LeastAllocated on non-zero requests. Each filter's rejection carries
//! upstream's reason text and whether preemption could help (`Unschedulable`) or not
//! (`UnschedulableAndUnresolvable`), from which [`fit_error`] builds upstream's
//! `FitError` message.

use std::collections::{BTreeMap, HashMap};

use api::quantity::Quantity;
use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

/// Requested or allocatable amounts: `cpu` in millicores, everything else in whole units.
pub(crate) type Resources = BTreeMap<String, i64>;

/// Taint of nodes that are not ready (added by the node lifecycle controller upstream).
pub(crate) const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Taint of nodes whose Ready condition is Unknown.
pub(crate) const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Taint matching `spec.unschedulable`.
pub(crate) const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Upstream `DefaultMilliCPURequest` (for scoring only).
const DEFAULT_MILLI_CPU: i64 = 100;
/// Upstream `DefaultMemoryRequest` (for scoring only).
const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// Whether preemption might make a rejected node fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// `Unschedulable`: removing pods could help.
    Unschedulable,
    /// `UnschedulableAndUnresolvable`: nothing on the node can change this.
    Unresolvable,
}

/// Why a node does not fit a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// Whether preemption could help.
    pub(crate) code: Code,
    /// Upstream's reason strings (several for NodeResourcesFit).
    pub(crate) reasons: Vec<String>,
}

impl Rejection {
    fn unresolvable(reason: impl Into<String>) -> Rejection {
        Rejection {
            code: Code::Unresolvable,
            reasons: vec![reason.into()],
        }
    }
}

/// A host port a pod uses: protocol, host IP, port.
type HostPort = (String, String, i32);

/// A node with what the pods bound to it use (upstream `NodeInfo`).
#[derive(Debug, Clone)]
pub(crate) struct NodeState<'a> {
    /// The node.
    pub(crate) node: &'a Node,
    /// Sum of the requests of its pods.
    pub(crate) requested: Resources,
    /// Sum of non-zero cpu and memory requests (scoring).
    nonzero: (i64, i64),
    /// Number of pods.
    pub(crate) pods: usize,
    /// Host ports in use.
    ports: Vec<HostPort>,
}

impl<'a> NodeState<'a> {
    /// A node without pods.
    pub(crate) fn new(node: &'a Node) -> NodeState<'a> {
        NodeState {
            node,
            requested: Resources::new(),
            nonzero: (0, 0),
            pods: 0,
            ports: Vec::new(),
        }
    }

    /// Accounts for a pod bound to the node, with its [`pod_requests`].
    pub(crate) fn add_pod(&mut self, pod: &Pod, requests: &Resources) {
        add(&mut self.requested, requests);
        let (c, m) = nonzero_requests(pod);
        self.nonzero.0 += c;
        self.nonzero.1 += m;
        self.pods += 1;
        self.ports.extend(host_ports(pod));
    }

    /// `metadata.name` of the node.
    pub(crate) fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    /// `status.allocatable` in [`Resources`] units.
    fn allocatable(&self) -> Resources {
        resource_list(
            self.node
                .status
                .as_ref()
                .and_then(|s| s.allocatable.as_ref()),
        )
    }
}

fn add(into: &mut Resources, other: &Resources) {
    for (k, v) in other {
        *into.entry(k.clone()).or_insert(0) += v;
    }
}

/// A resource list (`allocatable`, a container's `requests`, `overhead`) in [`Resources`]
/// units, for what [`pod_requests`] does not cover (allocatable, scoring's per-container
/// defaults); values that do not parse count as zero (validation rejects them on write).
pub(crate) fn resource_list(list: Option<&BTreeMap<String, K8sQuantity>>) -> Resources {
    let mut out = Resources::new();
    for (k, v) in list.into_iter().flatten() {
        let Ok(q) = Quantity::parse(&v.0) else {
            continue;
        };
        let amount = if k == "cpu" {
            q.milli_value()
        } else {
            q.value()
        };
        out.insert(k.clone(), amount);
    }
    out
}

/// Why a pod's requests cannot be computed: it has no spec, or a quantity does not parse.
/// Validation refuses both on write, so only an object that reached the store around it has
/// them; upstream's informer could not decode such a pod at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RequestsError {
    /// `spec` is missing.
    #[error("pod has no spec")]
    Spec,
    /// A quantity does not parse.
    #[error("resource {0}: {1}")]
    Quantity(String, api::quantity::QuantityError),
}

/// The pod's requests (upstream `computePodResourceRequest`: `resource.PodRequests`, then
/// `cpu` as milli-units and everything else as whole units).
pub(crate) fn pod_requests(pod: &Pod) -> Result<Resources, RequestsError> {
    let spec = pod.spec.as_ref().ok_or(RequestsError::Spec)?;
    let requests =
        api::quantity::pod_requests(spec).map_err(|(name, e)| RequestsError::Quantity(name, e))?;
    Ok(requests
        .into_iter()
        .map(|(name, q)| {
            let amount = if name == "cpu" {
                q.milli_value()
            } else {
                q.value()
            };
            (name, amount)
        })
        .collect())
}

/// cpu and memory requests with upstream's non-zero defaults for containers that request
/// none (`GetNonzeroRequests`), for scoring.
fn nonzero_requests(pod: &Pod) -> (i64, i64) {
    let (mut cpu, mut mem) = (0, 0);
    let Some(spec) = pod.spec.as_ref() else {
        return (0, 0);
    };
    for c in &spec.containers {
        let r = resource_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
        cpu += r.get("cpu").copied().unwrap_or(DEFAULT_MILLI_CPU);
        mem += r.get("memory").copied().unwrap_or(DEFAULT_MEMORY);
    }
    let overhead = resource_list(spec.overhead.as_ref());
    (
        cpu + overhead.get("cpu").copied().unwrap_or(0),
        mem + overhead.get("memory").copied().unwrap_or(0),
    )
}

/// The host ports of a pod's containers (and restartable init containers).
fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|p| *p > 0)?;
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let ip = match p.host_ip.as_deref().unwrap_or("") {
                "" => "0.0.0.0",
                ip => ip,
            };
            Some((proto, ip.to_string(), port))
        })
        .collect()
}

/// The status of the node's Ready condition.
pub(crate) fn ready_status(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// A `NoSchedule` taint of `key`.
fn no_schedule(key: &str) -> Taint {
    Taint {
        key: key.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    }
}

/// The taints the filter sees: `spec.taints`, plus the NoSchedule taint the node lifecycle
/// controller (and the kubelet at registration) puts on a node that is not Ready, when the
/// node does not carry it already.
fn effective_taints(node: &Node) -> Vec<Taint> {
    let mut taints: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let implied = match ready_status(node) {
        Some("True") => None,
        Some("Unknown") => Some(TAINT_UNREACHABLE),
        _ => Some(TAINT_NOT_READY),
    };
    if let Some(key) = implied
        && !taints.iter().any(|t| t.key == key)
    {
        taints.push(no_schedule(key));
    }
    taints
}

/// Upstream `Toleration.ToleratesTaint`.
pub(crate) fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        "Exists" => true,
        _ => false,
    }
}

fn tolerated(pod: &Pod, taint: &Taint) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.tolerations.iter().flatten())
        .any(|t| tolerates(t, taint))
}

/// Upstream `nodeaffinity`'s `NodeSelectorRequirement` match against labels, or against
/// fields (`metadata.name`) for `matchFields`.
fn requirement_matches(
    req: &NodeSelectorRequirement,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> bool {
    let values: Vec<&str> = req.values.iter().flatten().map(String::as_str).collect();
    let actual = lookup(&req.key);
    match req.operator.as_str() {
        "In" => actual.is_some_and(|a| values.contains(&a.as_str())),
        "NotIn" => actual.is_none_or(|a| !values.contains(&a.as_str())),
        "Exists" => actual.is_some(),
        "DoesNotExist" => actual.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(a), [v]) = (actual, values.as_slice()) else {
                return false;
            };
            let (Ok(a), Ok(v)) = (a.parse::<i64>(), v.parse::<i64>()) else {
                return false;
            };
            if op == "Gt" { a > v } else { a < v }
        }
        _ => false,
    }
}

/// Whether a `NodeSelectorTerm` matches (its expressions and fields ANDed; an empty term
/// matches nothing).
fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = |k: &str| node_label(node, k);
    let name = node.metadata.name.clone().unwrap_or_default();
    let field = |k: &str| (k == "metadata.name").then(|| name.clone());
    exprs.iter().all(|r| requirement_matches(r, &labels))
        && fields.iter().all(|r| requirement_matches(r, &field))
}

fn node_label(node: &Node, key: &str) -> Option<String> {
    node.metadata.labels.as_ref()?.get(key).cloned()
}

/// Upstream `RequiredNodeAffinity.Match`: nodeSelector labels all equal, and some required
/// node selector term matches.
pub(crate) fn affinity_matches(pod: &Pod, node: &Node) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    for (k, v) in spec.node_selector.iter().flatten() {
        if node_label(node, k).as_ref() != Some(v) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(required) = required
        && !required
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, node))
    {
        return false;
    }
    true
}

fn port_conflict(used: &[HostPort], wanted: &HostPort) -> bool {
    let (proto, ip, port) = wanted;
    used.iter()
        .any(|(p, i, n)| p == proto && n == port && (ip == "0.0.0.0" || i == "0.0.0.0" || i == ip))
}

/// Runs the filters in upstream's order on `pod` with its [`pod_requests`]; the first one
/// that rejects decides.
pub(crate) fn filter(
    pod: &Pod,
    requests: &Resources,
    state: &NodeState<'_>,
) -> Result<(), Rejection> {
    let node = state.node;
    // NodeUnschedulable.
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true)
        && !tolerated(pod, &no_schedule(TAINT_UNSCHEDULABLE))
    {
        return Err(Rejection::unresolvable("node(s) were unschedulable"));
    }
    // TaintToleration: the first NoSchedule/NoExecute taint not tolerated.
    for taint in effective_taints(node) {
        let effect = taint.effect.as_str();
        if (effect == "NoSchedule" || effect == "NoExecute") && !tolerated(pod, &taint) {
            return Err(Rejection::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            )));
        }
    }
    // NodeAffinity.
    if !affinity_matches(pod, node) {
        return Err(Rejection::unresolvable(
            "node(s) didn't match Pod's node affinity/selector",
        ));
    }
    // NodePorts.
    let wanted = host_ports(pod);
    if wanted.iter().any(|w| port_conflict(&state.ports, w)) {
        return Err(Rejection {
            code: Code::Unschedulable,
            reasons: vec!["node(s) didn't have free ports for the requested pod ports".into()],
        });
    }
    fit(requests, state)
}

/// NodeResourcesFit (upstream `fitsRequest`): pod count, then cpu, memory and every other
/// requested resource against allocatable minus what the node's pods request.
fn fit(requests: &Resources, state: &NodeState<'_>) -> Result<(), Rejection> {
    let allocatable = state.allocatable();
    let mut reasons = Vec::new();
    let mut code = Code::Unschedulable;
    let allowed_pods = allocatable.get("pods").copied().unwrap_or(0);
    if i64::try_from(state.pods).unwrap_or(i64::MAX) + 1 > allowed_pods {
        reasons.push("Too many pods".to_string());
    }
    let order = ["cpu", "memory", "ephemeral-storage"];
    let others = requests.keys().filter(|k| !order.contains(&k.as_str()));
    for name in order.iter().map(|s| s.to_string()).chain(others.cloned()) {
        let want = requests.get(&name).copied().unwrap_or(0);
        if want == 0 {
            continue;
        }
        let have = allocatable.get(&name).copied().unwrap_or(0);
        let used = state.requested.get(&name).copied().unwrap_or(0);
        if want > have - used {
            reasons.push(format!("Insufficient {name}"));
            if want > have {
                code = Code::Unresolvable;
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Rejection { code, reasons })
    }
}

/// LeastAllocated score (0–100) on cpu and memory, equally weighted.
pub(crate) fn score(pod: &Pod, state: &NodeState<'_>) -> i64 {
    let allocatable = state.allocatable();
    let (pc, pm) = nonzero_requests(pod);
    let one = |cap: i64, req: i64| {
        if cap <= 0 || req > cap {
            0
        } else {
            (cap - req) * 100 / cap
        }
    };
    let cpu = one(
        allocatable.get("cpu").copied().unwrap_or(0),
        state.nonzero.0 + pc,
    );
    let mem = one(
        allocatable.get("memory").copied().unwrap_or(0),
        state.nonzero.1 + pm,
    );
    (cpu + mem) / 2
}

/// Upstream `FitError.Error()` followed by the DefaultPreemption post-filter's message:
/// `0/N nodes are available: <histogram>. preemption: 0/N nodes are available: <histogram>.`
pub(crate) fn fit_error(
    nodes: usize,
    rejections: &[Rejection],
    preemption: Option<&str>,
) -> String {
    let mut msg = format!("0/{nodes} nodes are available:");
    let filter_hist = histogram(rejections.iter().flat_map(|r| r.reasons.iter().cloned()));
    if !filter_hist.is_empty() {
        msg.push_str(&format!(" {filter_hist}."));
    }
    let post = match preemption {
        Some(m) => m.to_string(),
        None => {
            // No pod can be preempted in paddock (every pod has the same priority class
            // semantics as upstream without victims): nodes where removing pods could help
            // report that no victims were found.
            let reasons = rejections.iter().map(|r| match r.code {
                Code::Unschedulable => "No preemption victims found for incoming pod".to_string(),
                Code::Unresolvable => "Preemption is not helpful for scheduling".to_string(),
            });
            format!("0/{nodes} nodes are available: {}.", histogram(reasons))
        }
    };
    msg.push_str(&format!(" preemption: {post}"));
    msg
}

/// `"<count> <reason>"` per distinct reason, sorted as strings, joined by `, `.
fn histogram(reasons: impl Iterator<Item = String>) -> String {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in reasons {
        *counts.entry(r).or_insert(0) += 1;
    }
    let mut parts: Vec<String> = counts
        .into_iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    parts.sort();
    parts.join(", ")
}
