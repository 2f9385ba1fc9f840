//! The agent's Node and Lease, as the kubelet keeps them [pkg/kubelet/kubelet_node_status.go,
//! pkg/kubelet/nodestatus/setters.go, pkg/kubelet/nodelease].
//!
//! [`register`] creates the Node (or takes over an existing one of the same name) with labels,
//! `podCIDR`, addresses, capacity/allocatable measured from the machine, `nodeInfo`, the
//! agent's serving port in `daemonEndpoints.kubeletEndpoint` and the four conditions.
//! [`heartbeat`] then renews the Lease `kube-node-lease/<node>` every lease interval and
//! recomputes the status every status interval, posting it when it changed or at least every
//! 5 minutes (`nodeStatusReportFrequency`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use tokio::time::{Instant, MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;

use crate::AgentError;

/// The `leaseDurationSeconds` a node renewing every `interval` writes: the kubelet renews at a
/// quarter of the duration (`nodeLeaseRenewIntervalFraction` 0.25).
pub fn lease_duration_seconds(interval: Duration) -> i32 {
    i32::try_from((interval * 4).as_secs().max(1)).unwrap_or(i32::MAX)
}
/// Namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Longest time between two status posts when nothing changed (`nodeStatusReportFrequency`).
pub const REPORT_FREQUENCY: Duration = Duration::from_secs(300);
/// Pods a node accepts (`maxPods`).
pub const MAX_PODS: i64 = 110;
/// The kubelet version this agent reports, matching the API server's `/version`.
pub const KUBELET_VERSION: &str = "v1.32.4-paddock";

/// The User-Agent of httpGet probes: `kube-probe/<major>.<minor>` of the kubelet version the
/// node reports (the API server's `/version` says the same).
pub const PROBE_USER_AGENT: &str = "kube-probe/1.32";

/// What a node says about itself.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// Node name.
    pub name: String,
    /// The address other nodes and the API server reach it on.
    pub ip: IpAddr,
    /// Pod CIDR (empty: none).
    pub pod_cidr: String,
    /// The port of the agent's API (logs, exec).
    pub port: u16,
    /// Directory whose file system is reported as `ephemeral-storage`.
    pub root_dir: std::path::PathBuf,
    /// Pod capacity (the kubelet's `--max-pods`, default [`MAX_PODS`]).
    pub max_pods: i64,
}

/// Facts measured from the machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineInfo {
    /// Logical CPUs.
    pub cpus: usize,
    /// `MemTotal` in bytes.
    pub memory: u64,
    /// Size of the file system holding the root dir, in bytes.
    pub storage: u64,
    /// Host name.
    pub hostname: String,
    /// `/etc/machine-id`.
    pub machine_id: String,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os_image: String,
    /// `MemAvailable` in bytes.
    pub memory_available: u64,
    /// Bytes available to unprivileged users on the root dir's file system.
    pub storage_available: u64,
    /// Inodes of that file system, and how many are free.
    pub inodes: (u64, u64),
}

/// Eviction thresholds the kubelet uses by default (`evictionHard`): `memory.available<100Mi`,
/// `nodefs.available<10%`, `nodefs.inodesFree<5%`.
pub const MEMORY_AVAILABLE_MIN: u64 = 100 * 1024 * 1024;

impl MachineInfo {
    /// `memory.available` below its threshold.
    pub fn memory_pressure(&self) -> bool {
        self.memory > 0 && self.memory_available < MEMORY_AVAILABLE_MIN
    }

    /// `nodefs.available < 10%` or `nodefs.inodesFree < 5%`.
    pub fn disk_pressure(&self) -> bool {
        let low_space = self.storage > 0 && self.storage_available * 10 < self.storage;
        let low_inodes = self.inodes.0 > 0 && self.inodes.1 * 20 < self.inodes.0;
        low_space || low_inodes
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl MachineInfo {
    /// Reads the machine's facts; a missing file leaves its field empty.
    pub fn read(root_dir: &std::path::Path) -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem = |key: &str| {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        let memory = mem("MemTotal:");
        let fs = nix::sys::statvfs::statvfs(root_dir).ok();
        let storage = fs.map_or(0, |s| s.blocks() * s.fragment_size());
        let storage_available = fs.map_or(0, |s| s.blocks_available() * s.fragment_size());
        let inodes = fs.map_or((0, 0), |s| (s.files(), s.files_free()));
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "Linux".into());
        Self {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            memory,
            storage,
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            machine_id: read_trim("/etc/machine-id"),
            boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            os_image,
            memory_available: mem("MemAvailable:"),
            storage_available,
            inodes,
        }
    }
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Capacity (= allocatable: no reservations) of the machine.
pub fn capacity(m: &MachineInfo, max_pods: i64) -> BTreeMap<String, Quantity> {
    let mut c = BTreeMap::new();
    c.insert("cpu".into(), Quantity(m.cpus.to_string()));
    c.insert("memory".into(), Quantity(format!("{}Ki", m.memory / 1024)));
    c.insert(
        "ephemeral-storage".into(),
        Quantity(format!("{}Ki", m.storage / 1024)),
    );
    c.insert("pods".into(), Quantity(max_pods.to_string()));
    c.insert("hugepages-2Mi".into(), Quantity("0".into()));
    c
}

/// The Node object the agent registers.
pub fn node_object(id: &NodeIdentity, m: &MachineInfo) -> Node {
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.io/hostname".to_string(), id.name.clone());
    labels.insert("kubernetes.io/os".to_string(), "linux".to_string());
    labels.insert("kubernetes.io/arch".to_string(), arch().to_string());
    labels.insert("beta.kubernetes.io/os".to_string(), "linux".to_string());
    labels.insert("beta.kubernetes.io/arch".to_string(), arch().to_string());
    let mut annotations = BTreeMap::new();
    annotations.insert("node.alpha.kubernetes.io/ttl".to_string(), "0".to_string());
    annotations.insert(
        "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
        "true".to_string(),
    );
    annotations.insert(
        crate::storage::STORAGE_DIR_ANNOTATION.to_string(),
        crate::storage::storage_root(&id.root_dir)
            .display()
            .to_string(),
    );
    let cidr = (!id.pod_cidr.is_empty()).then(|| id.pod_cidr.clone());
    Node {
        metadata: ObjectMeta {
            name: Some(id.name.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: cidr.clone(),
            pod_cidrs: cidr.map(|c| vec![c]),
            ..Default::default()
        }),
        status: Some(node_status(id, m, &[], Timestamp::now())),
    }
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> NodeCondition {
    NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..Default::default()
    }
}

/// The node status at `now`; condition transition times are kept from `old` when the status
/// did not change.
pub fn node_status(
    id: &NodeIdentity,
    m: &MachineInfo,
    old: &[NodeCondition],
    now: Timestamp,
) -> NodeStatus {
    // [pkg/kubelet/nodestatus/setters.go `MemoryPressureCondition`, `DiskPressureCondition`]
    let memory = if m.memory_pressure() {
        condition(
            "MemoryPressure",
            "True",
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
        )
    } else {
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        )
    };
    let disk = if m.disk_pressure() {
        condition(
            "DiskPressure",
            "True",
            "KubeletHasDiskPressure",
            "kubelet has disk pressure",
        )
    } else {
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        )
    };
    let mut conditions = vec![
        memory,
        disk,
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ];
    for c in &mut conditions {
        c.last_heartbeat_time = Some(Time(now));
        let prev = old.iter().find(|o| o.type_ == c.type_);
        c.last_transition_time = match prev {
            Some(p) if p.status == c.status => p.last_transition_time.clone(),
            _ => Some(Time(now)),
        };
    }
    let cap = capacity(m, id.max_pods);
    let mut addresses = vec![NodeAddress {
        type_: "InternalIP".into(),
        address: id.ip.to_string(),
    }];
    addresses.push(NodeAddress {
        type_: "Hostname".into(),
        address: id.name.clone(),
    });
    NodeStatus {
        capacity: Some(cap.clone()),
        allocatable: Some(cap),
        conditions: Some(conditions),
        addresses: Some(addresses),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(id.port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            machine_id: m.machine_id.clone(),
            system_uuid: m.machine_id.clone(),
            boot_id: m.boot_id.clone(),
            kernel_version: m.kernel.clone(),
            os_image: m.os_image.clone(),
            container_runtime_version: format!("paddock://{}", env!("CARGO_PKG_VERSION")),
            kubelet_version: KUBELET_VERSION.into(),
            kube_proxy_version: String::new(),
            operating_system: "linux".into(),
            architecture: arch().into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The kubelet's `Images` setter: on an error the list is empty (and the error logged).
async fn status_images(store: &image::Store) -> Vec<k8s_openapi::api::core::v1::ContainerImage> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.list()).await {
        Ok(Ok(list)) => {
            crate::images::node_status_images(&list, crate::images::NODE_STATUS_MAX_IMAGES)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "error getting image list");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, "error getting image list");
            Vec::new()
        }
    }
}

/// Status without heartbeat times, to tell whether anything worth posting changed.
fn comparable(s: &NodeStatus) -> NodeStatus {
    let mut s = s.clone();
    for c in s.conditions.iter_mut().flatten() {
        c.last_heartbeat_time = None;
    }
    s
}

/// Creates the Node, or merges our status and spec into an existing one of that name (an
/// agent restart, or a node that was registered before). Returns the Node's UID.
pub async fn register(
    client: &kube::Client,
    id: &NodeIdentity,
    m: &MachineInfo,
) -> Result<String, AgentError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = node_object(id, m);
    let created = match nodes.create(&PostParams::default(), &node).await {
        Ok(n) => n,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let labels = node.metadata.labels.clone();
            let annotations = node.metadata.annotations.clone();
            let patch = serde_json::json!({
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {"podCIDR": node.spec.as_ref().and_then(|s| s.pod_cidr.clone()),
                         "podCIDRs": node.spec.as_ref().and_then(|s| s.pod_cidrs.clone())},
            });
            nodes
                .patch(&id.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| AgentError::Api("updating the Node", e))?
        }
        Err(e) => return Err(AgentError::Api("registering the Node", e)),
    };
    // The API server may drop status on create: post it through the subresource. A strategic
    // merge patch, as the kubelet's: conditions merge by type, so others' (the pod network's
    // `NetworkUnavailable`) stay.
    let patch = serde_json::json!({"status": node.status});
    nodes
        .patch_status(&id.name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map_err(|e| AgentError::Api("posting the Node status", e))?;
    Ok(created.metadata.uid.unwrap_or_default())
}

/// The Ready condition of a node waiting for its pod CIDR: the kubelet's while its runtime's
/// network is not ready [pkg/kubelet/nodestatus/setters.go `ReadyCondition`].
pub const WAITING_FOR_POD_CIDR: &str = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:waiting for this node's pod CIDR (spec.podCIDR) from the server's node IPAM";

/// How often [`await_pod_cidr`] looks at the Node, and how often it says it still waits.
const POD_CIDR_POLL: Duration = Duration::from_millis(250);
const POD_CIDR_NAG: Duration = Duration::from_secs(30);

/// The Node's `spec.podCIDR` as the server's node IPAM allocates it, for a node started
/// without one (the kubelet without `--pod-cidr`). Registers the Node first when it does not
/// exist yet (Ready `False`: [`WAITING_FOR_POD_CIDR`]), then waits, saying so in the log,
/// until the podCIDR is set. A restarted agent finds its Node's podCIDR at once.
pub async fn await_pod_cidr(
    client: &kube::Client,
    id: &NodeIdentity,
    m: &MachineInfo,
) -> Result<String, AgentError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let cidr_of = |n: &Node| {
        n.spec
            .as_ref()
            .and_then(|s| s.pod_cidr.clone())
            .filter(|c| !c.is_empty())
    };
    match nodes
        .get_opt(&id.name)
        .await
        .map_err(|e| AgentError::Api("reading the Node", e))?
    {
        Some(n) => {
            if let Some(c) = cidr_of(&n) {
                return Ok(c);
            }
        }
        None => {
            let mut node = node_object(id, m);
            if let Some(spec) = node.spec.as_mut() {
                spec.pod_cidr = None;
                spec.pod_cidrs = None;
            }
            for c in node
                .status
                .iter_mut()
                .flat_map(|s| s.conditions.iter_mut().flatten())
                .filter(|c| c.type_ == "Ready")
            {
                c.status = "False".into();
                c.reason = Some("KubeletNotReady".into());
                c.message = Some(WAITING_FOR_POD_CIDR.into());
            }
            match nodes.create(&PostParams::default(), &node).await {
                Ok(_) => {
                    let patch = serde_json::json!({"status": node.status});
                    nodes
                        .patch_status(&id.name, &PatchParams::default(), &Patch::Strategic(&patch))
                        .await
                        .map_err(|e| AgentError::Api("posting the Node status", e))?;
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(AgentError::Api("registering the Node", e)),
            }
        }
    }
    tracing::info!(node = %id.name,
        "waiting for the server to allocate this node's pod CIDR (Node spec.podCIDR, from the server's --cluster-cidr); pass --pod-cidr to choose one");
    let started = Instant::now();
    let mut nagged = Instant::now();
    loop {
        tokio::time::sleep(POD_CIDR_POLL).await;
        match nodes.get_opt(&id.name).await {
            Ok(Some(n)) => {
                if let Some(c) = cidr_of(&n) {
                    tracing::info!(node = %id.name, pod_cidr = %c, "the server allocated this node's pod CIDR");
                    return Ok(c);
                }
            }
            Ok(None) => {
                return Err(AgentError::Api(
                    "waiting for the pod CIDR: the Node was deleted meanwhile",
                    kube::Error::Api(
                        kube::core::Status::failure(
                            &format!("nodes {:?} not found", id.name),
                            "NotFound",
                        )
                        .with_code(404)
                        .boxed(),
                    ),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the Node while waiting for its pod CIDR")
            }
        }
        if nagged.elapsed() >= POD_CIDR_NAG {
            nagged = Instant::now();
            tracing::warn!(node = %id.name, waited_s = started.elapsed().as_secs(),
                "still no pod CIDR for this node: is the server's --cluster-cidr exhausted (`kubectl get events --field-selector involvedObject.name={}` shows CIDRNotAvailable)?", id.name);
        }
    }
}

/// Renews the Lease with `duration_seconds`; creates it (owned by the Node) when missing.
pub async fn renew_lease(
    client: &kube::Client,
    node: &str,
    node_uid: &str,
    duration_seconds: i32,
) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = MicroTime(Timestamp::now());
    match leases.get_opt(node).await? {
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = Some(node.to_string());
            spec.lease_duration_seconds = Some(duration_seconds);
            spec.renew_time = Some(now);
            leases
                .replace(node, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(node.to_string()),
                    namespace: Some(LEASE_NAMESPACE.into()),
                    owner_references: (!node_uid.is_empty()).then(|| {
                        vec![OwnerReference {
                            api_version: "v1".into(),
                            kind: "Node".into(),
                            name: node.to_string(),
                            uid: node_uid.to_string(),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(node.to_string()),
                    lease_duration_seconds: Some(duration_seconds),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            };
            leases
                .create(&PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
    }
}

/// Renews the lease every `lease_interval` and posts node status every `status_interval`
/// (when changed, or every [`REPORT_FREQUENCY`]) until `stop`; `images`: the node's image
/// store, listed in `status.images`.
pub async fn heartbeat(
    client: kube::Client,
    id: NodeIdentity,
    node_uid: String,
    lease_interval: Duration,
    status_interval: Duration,
    images: Option<image::Store>,
    stop: CancellationToken,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut lease_tick = interval(lease_interval);
    lease_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut status_tick = interval(status_interval);
    status_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_posted: Option<(NodeStatus, Instant)> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = lease_tick.tick() => {
                let duration = lease_duration_seconds(lease_interval);
                if let Err(e) = renew_lease(&client, &id.name, &node_uid, duration).await {
                    tracing::warn!(error = %e, "cannot renew the node lease");
                }
            }
            _ = status_tick.tick() => {
                let machine = MachineInfo::read(&id.root_dir);
                let old = match nodes.get(&id.name).await {
                    Ok(n) => n.status.and_then(|s| s.conditions).unwrap_or_default(),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the Node");
                        continue;
                    }
                };
                let mut status = node_status(&id, &machine, &old, Timestamp::now());
                if let Some(store) = &images {
                    status.images = Some(status_images(store).await);
                }
                let due = match &last_posted {
                    None => true,
                    Some((s, at)) => comparable(s) != comparable(&status) || at.elapsed() >= REPORT_FREQUENCY,
                };
                if !due {
                    continue;
                }
                let patch = serde_json::json!({"status": status});
                // Strategic (conditions merge by type), as the kubelet's `PatchNodeStatus`.
                match nodes.patch_status(&id.name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
                    Ok(_) => last_posted = Some((status, Instant::now())),
                    Err(e) => tracing::warn!(error = %e, "cannot post node status"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_says_four_renewal_intervals() {
        assert_eq!(lease_duration_seconds(Duration::from_secs(10)), 40);
        assert_eq!(lease_duration_seconds(Duration::from_secs(2)), 8);
        assert_eq!(lease_duration_seconds(Duration::from_millis(100)), 1);
    }

    #[test]
    fn transition_times_kept_while_status_unchanged() {
        let id = NodeIdentity {
            name: "n1".into(),
            ip: "127.0.0.1".parse().unwrap(),
            pod_cidr: "10.244.0.0/24".into(),
            port: 10250,
            root_dir: "/".into(),
            max_pods: MAX_PODS,
        };
        let mut m = MachineInfo {
            cpus: 2,
            memory: 4 << 30,
            memory_available: 2 << 30,
            storage: 100 << 30,
            storage_available: 50 << 30,
            inodes: (1000, 900),
            ..Default::default()
        };
        let t0 = Timestamp::from_second(1000).unwrap();
        let t1 = Timestamp::from_second(1010).unwrap();
        let s0 = node_status(&id, &m, &[], t0);
        let s1 = node_status(&id, &m, s0.conditions.as_deref().unwrap(), t1);
        let ready = s1
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.last_transition_time, Some(Time(t0)));
        assert_eq!(ready.last_heartbeat_time, Some(Time(t1)));
        assert_eq!(comparable(&s0), comparable(&s1));
        let cap = s1.capacity.unwrap();
        assert_eq!(cap["memory"].0, "4194304Ki");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(
            s1.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port,
            10250
        );
        // Below the eviction thresholds the pressure conditions turn True, with a new
        // transition time.
        m.memory_available = 50 << 20;
        m.inodes = (1000, 40);
        let t2 = Timestamp::from_second(1020).unwrap();
        let s2 = node_status(&id, &m, s1.conditions.as_deref().unwrap(), t2);
        let get = |t: &str| {
            s2.conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == t)
                .cloned()
                .unwrap()
        };
        assert_eq!(get("MemoryPressure").status, "True");
        assert_eq!(
            get("MemoryPressure").reason.as_deref(),
            Some("KubeletHasInsufficientMemory")
        );
        assert_eq!(get("MemoryPressure").last_transition_time, Some(Time(t2)));
        assert_eq!(
            get("DiskPressure").reason.as_deref(),
            Some("KubeletHasDiskPressure")
        );
        assert_eq!(get("Ready").last_transition_time, Some(Time(t0)));
    }
}
