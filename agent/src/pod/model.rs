//! What a pod worker knows about its pod: the container instances it started (newest last),
//! cached waiting reasons, back-off, kills in flight. [`super::plan`] and [`super::status`]
//! read it; only the driver ([`super::worker`]) changes it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{Container, Pod};
use probe::{ProbeResult, ProbeType};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::runtime::{ContainerId, Sandbox};

/// The prefix of container IDs in status (`<runtime>://<id>`).
pub const ID_PREFIX: &str = "paddock://";

/// How a container instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code (128 + signal when killed by a signal).
    pub exit_code: i32,
    /// `Completed`, `Error`, `StartError`, `ContainerStatusUnknown`.
    pub reason: String,
    /// Message, if any.
    pub message: Option<String>,
    /// Wall-clock end.
    pub finished_at: SystemTime,
    /// End on the tokio clock (back-off).
    pub finished: Instant,
}

/// One container instance (a start of a container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Runtime id.
    pub id: ContainerId,
    /// Instance number = restart count.
    pub restart_count: i32,
    /// Wall-clock start (`None`: it never started — a start error).
    pub started_at: Option<SystemTime>,
    /// Start on the tokio clock (probe initial delays).
    pub started: Instant,
    /// Set once it ended.
    pub exit: Option<ExitInfo>,
    /// Adopted from a previous agent run and started more than the restart grace (10 s)
    /// before this agent: keeps the `ready`/`started` it had until a probe says otherwise.
    pub adopted: bool,
    /// Hash of the container spec it was started from (`None`: unknown, adopted).
    pub spec_hash: Option<u64>,
}

impl Instance {
    /// `paddock://<id>`, as status and probe workers see it.
    pub fn status_id(&self) -> Arc<str> {
        Arc::from(format!("{ID_PREFIX}{}", self.id.0))
    }

    /// Whether it is still running.
    pub fn running(&self) -> bool {
        self.exit.is_none()
    }
}

/// Why a container is being killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    /// Failed liveness probe.
    Liveness,
    /// Failed startup probe.
    Startup,
    /// Pod deletion or completion.
    Stop,
    /// A failed postStart hook.
    PostStartHook,
    /// The container's spec changed (a pod update of `image`, …).
    DefinitionChanged,
}

/// The kubelet's container hash: the spec without `resources` (which may change in place), so
/// an updated `image` (the only other mutable field) restarts the container.
pub fn spec_hash(c: &Container) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut c = c.clone();
    c.resources = None;
    c.resize_policy = None;
    let text = serde_json::to_string(&c).unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The pod's ephemeral containers as containers: an `EphemeralContainer` has a subset of a
/// container's fields under the same names (plus `targetContainerName`, which every container
/// of a pod here satisfies: they share the pod's PID namespace).
fn ephemeral_of(pod: &Pod) -> Vec<Container> {
    pod.spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|e| serde_json::to_value(e).ok())
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

/// A container of the pod spec with its place.
#[derive(Debug, Clone, Copy)]
pub struct SpecRef<'a> {
    /// The container.
    pub container: &'a Container,
    /// An init container.
    pub init: bool,
    /// An ephemeral container (`kubectl debug`): started once the sandbox exists, never
    /// restarted, not part of the pod's phase or readiness.
    pub ephemeral: bool,
}

impl SpecRef<'_> {
    /// A restartable init container (sidecar).
    pub fn sidecar(&self) -> bool {
        self.init && self.container.restart_policy.as_deref() == Some("Always")
    }
}

/// Probe facts the planner and the status generator need.
pub trait Probes {
    /// The cached result of `ty` for container instance `status_id`.
    fn result(&self, ty: ProbeType, status_id: &str) -> Option<ProbeResult>;
    /// Whether container `name` has a `ty` worker.
    fn has(&self, name: &str, ty: ProbeType) -> bool;
}

/// [`Probes`] with nothing (no probes).
#[derive(Debug, Default)]
pub struct NoProbes;

impl Probes for NoProbes {
    fn result(&self, _ty: ProbeType, _id: &str) -> Option<ProbeResult> {
        None
    }
    fn has(&self, _name: &str, _ty: ProbeType) -> bool {
        false
    }
}

/// The pod worker's state.
#[derive(Debug, Clone)]
pub struct PodState {
    /// The latest pod object from the API.
    pub pod: Arc<Pod>,
    /// The sandbox, once created.
    pub sandbox: Option<Sandbox>,
    /// Whether `sandbox` is whole (CRI's `SANDBOX_READY`): false once its namespaces are gone
    /// (its holder was killed, the machine rebooted); the next sync re-creates it.
    pub sandbox_ready: bool,
    /// Which sandbox of the pod the current one is (CRI's sandbox `attempt`).
    pub sandbox_attempt: u32,
    /// The sandbox was re-created: the init containers run again, from the first, before any
    /// regular container restarts (the kubelet purges them with the old sandbox).
    pub reinit: bool,
    /// Instances per container name, oldest first (the last two are kept).
    pub instances: HashMap<String, Vec<Instance>>,
    /// Why a container could not be started (reason, message): the kubelet's reason cache.
    pub waiting: HashMap<String, (String, String)>,
    /// Per container run from its image: `status.containerStatuses[].image` and `imageID` as
    /// the kubelet reports them (the normalised reference, `name@<repo digest>`).
    pub images: HashMap<String, (String, String)>,
    /// Restart back-off per container name.
    pub backoff: Backoff,
    /// Kills in flight.
    pub killing: HashMap<ContainerId, KillReason>,
    /// The pod reached Succeeded/Failed (sticky).
    pub terminal_phase: Option<&'static str>,
    /// Why the pod failed as a whole (`status.reason`, `status.message`): the active
    /// deadline, or an admission rejection.
    pub failure: Option<(String, String)>,
    /// The pod was rejected at admission: it never ran, and its status is only the verdict.
    pub rejected: bool,
    /// `status.startTime`.
    pub start_time: Option<k8s_openapi::jiff::Timestamp>,
    /// The pod is gone from the API (force deletion): stop without status.
    pub removed: bool,
    /// Containers whose liveness/startup workers were stopped for termination.
    pub quiet: HashSet<String>,
    /// `(ready, started)` per container from the API status at adoption, with whether the
    /// pod's Ready condition was True (the kubelet's `setReadyStateOnKubeletRestart`).
    pub prior: HashMap<String, (bool, bool)>,
    /// Containers killed because their definition changed: restarted whatever the policy.
    pub force_restart: HashSet<String>,
    /// `spec.ephemeralContainers` as containers (the fields they share), kept in step with
    /// `pod` by [`PodState::set_pod`].
    pub ephemeral: Vec<Container>,
}

impl PodState {
    /// A fresh state for `pod`.
    pub fn new(pod: Arc<Pod>) -> Self {
        Self {
            pod,
            sandbox: None,
            sandbox_ready: true,
            sandbox_attempt: 0,
            reinit: false,
            instances: HashMap::new(),
            waiting: HashMap::new(),
            images: HashMap::new(),
            backoff: Backoff::default(),
            killing: HashMap::new(),
            terminal_phase: None,
            failure: None,
            rejected: false,
            start_time: None,
            removed: false,
            quiet: HashSet::new(),
            prior: HashMap::new(),
            force_restart: HashSet::new(),
            ephemeral: Vec::new(),
        }
        .with_ephemeral()
    }

    fn with_ephemeral(mut self) -> Self {
        self.ephemeral = ephemeral_of(&self.pod);
        self
    }

    /// Takes a newer pod object from the API.
    pub fn set_pod(&mut self, pod: Arc<Pod>) {
        self.pod = pod;
        self.ephemeral = ephemeral_of(&self.pod);
    }

    /// The ephemeral containers of the spec.
    pub fn ephemeral_containers(&self) -> Vec<SpecRef<'_>> {
        self.ephemeral
            .iter()
            .map(|c| SpecRef {
                container: c,
                init: false,
                ephemeral: true,
            })
            .collect()
    }

    /// The newest instance of `name`.
    pub fn latest(&self, name: &str) -> Option<&Instance> {
        self.instances.get(name).and_then(|v| v.last())
    }

    /// The instance before the newest.
    pub fn previous(&self, name: &str) -> Option<&Instance> {
        self.instances
            .get(name)
            .and_then(|v| v.len().checked_sub(2).and_then(|i| v.get(i)))
    }

    /// The instance a container status's `lastState` names (and `kubectl logs --previous`
    /// reads): the one before the newest, or the newest itself while the container waits to
    /// be restarted (the kubelet's `validateContainerLogStatus` follows that status).
    pub fn last_terminated(&self, c: SpecRef<'_>) -> Option<&Instance> {
        let name = &c.container.name;
        match self.latest(name) {
            Some(i)
                if !i.running()
                    && self.waiting.contains_key(name)
                    && self.should_restart(c, i.exit.as_ref().map_or(0, |e| e.exit_code)) =>
            {
                Some(i)
            }
            _ => self.previous(name),
        }
    }

    /// Records a new instance, keeping two per name.
    pub fn push_instance(&mut self, name: &str, inst: Instance) {
        let v = self.instances.entry(name.to_string()).or_default();
        v.push(inst);
        if v.len() > 2 {
            v.remove(0);
        }
    }

    /// Finds an instance by id.
    pub fn instance_mut(&mut self, id: &ContainerId) -> Option<&mut Instance> {
        self.instances
            .values_mut()
            .flat_map(|v| v.iter_mut())
            .find(|i| &i.id == id)
    }

    /// Init containers then regular containers of the spec.
    pub fn containers(&self) -> Vec<SpecRef<'_>> {
        let Some(spec) = self.pod.spec.as_ref() else {
            return Vec::new();
        };
        let init = spec.init_containers.iter().flatten().map(|c| SpecRef {
            container: c,
            init: true,
            ephemeral: false,
        });
        let regular = spec.containers.iter().map(|c| SpecRef {
            container: c,
            init: false,
            ephemeral: false,
        });
        init.chain(regular).collect()
    }

    /// The spec of container `name` (ephemeral ones included).
    pub fn spec_of(&self, name: &str) -> Option<SpecRef<'_>> {
        self.containers()
            .into_iter()
            .chain(self.ephemeral_containers())
            .find(|c| c.container.name == name)
    }

    /// `spec.restartPolicy` (default `Always`).
    pub fn restart_policy(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always")
    }

    /// Whether the pod has a deletion timestamp (or is gone from the API).
    pub fn deleting(&self) -> bool {
        self.removed || self.pod.metadata.deletion_timestamp.is_some()
    }

    /// `name_namespace(uid)`, the kubelet's `format.Pod`.
    pub fn format_pod(&self) -> String {
        let m = &self.pod.metadata;
        format!(
            "{}_{}({})",
            m.name.as_deref().unwrap_or(""),
            m.namespace.as_deref().unwrap_or(""),
            m.uid.as_deref().unwrap_or("")
        )
    }

    /// Whether a terminated container `c` that exited with `code` is restarted: never once the
    /// pod is deleting or terminal, always after a kill for a changed definition, otherwise
    /// as [`api::pod::restart::container_should_restart`] says (the kubelet's
    /// `ShouldContainerBeRestarted`; sidecars always restart).
    pub fn should_restart(&self, c: SpecRef<'_>, code: i32) -> bool {
        if c.ephemeral || self.deleting() || self.terminal_phase.is_some() {
            return false;
        }
        if self.force_restart.contains(&c.container.name) {
            return true;
        }
        let default_spec = k8s_openapi::api::core::v1::PodSpec::default();
        let spec = self.pod.spec.as_ref().unwrap_or(&default_spec);
        api::pod::restart::container_should_restart(c.container, spec, code)
    }

    /// Whether container `c`, killed while running (a failed liveness or startup probe), is
    /// started again: [`api::pod::restart::restart_after_kill`] (sidecars always are).
    pub fn restart_after_kill(&self, c: SpecRef<'_>) -> bool {
        let default_spec = k8s_openapi::api::core::v1::PodSpec::default();
        let spec = self.pod.spec.as_ref().unwrap_or(&default_spec);
        api::pod::restart::restart_after_kill(c.container, spec)
    }

    /// `started` of container `c` per [prober_manager.go `isContainerStarted`].
    pub fn started(&self, c: SpecRef<'_>, probes: &dyn Probes) -> bool {
        let Some(inst) = self.latest(&c.container.name) else {
            return false;
        };
        if !inst.running() {
            return false;
        }
        match probes.result(ProbeType::Startup, &inst.status_id()) {
            Some(r) => r == ProbeResult::Success,
            None if inst.adopted => self.prior.get(&c.container.name).is_some_and(|p| p.1),
            None => !probes.has(&c.container.name, ProbeType::Startup),
        }
    }

    /// `ready` of container `c` per [prober_manager.go `UpdatePodStatus`]; regular init
    /// containers are ready iff they exited 0.
    pub fn ready(&self, c: SpecRef<'_>, probes: &dyn Probes) -> bool {
        let Some(inst) = self.latest(&c.container.name) else {
            return false;
        };
        if c.init && !c.sidecar() {
            return inst.exit.as_ref().is_some_and(|e| e.exit_code == 0);
        }
        if !self.started(c, probes) {
            return false;
        }
        match probes.result(ProbeType::Readiness, &inst.status_id()) {
            Some(r) => r == ProbeResult::Success,
            None if inst.adopted => self.prior.get(&c.container.name).is_some_and(|p| p.0),
            None => !probes.has(&c.container.name, ProbeType::Readiness),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pod: serde_json::Value) -> PodState {
        let pod: Pod = serde_json::from_value(pod).expect("a pod");
        PodState::new(Arc::new(pod))
    }

    #[test]
    fn a_containers_restart_rules_and_policy_decide_before_the_pods() {
        let mut s = state(serde_json::json!({"spec": {
            "restartPolicy": "Always",
            "containers": [{"name": "c", "restartPolicy": "Never", "restartPolicyRules": [
                {"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}
            ]}],
            "initContainers": [{"name": "side", "restartPolicy": "Always"}]
        }}));
        let c = s.spec_of("c").expect("c");
        assert!(s.should_restart(c, 42));
        assert!(!s.should_restart(c, 1));
        assert!(
            !s.restart_after_kill(c),
            "a liveness kill follows the container's Never"
        );
        let side = s.spec_of("side").expect("side");
        assert!(s.should_restart(side, 0));
        assert!(s.restart_after_kill(side));
        // A changed definition restarts whatever the rules say; a terminal pod nothing.
        s.force_restart.insert("c".into());
        assert!(s.should_restart(s.spec_of("c").expect("c"), 1));
        s.terminal_phase = Some("Failed");
        assert!(!s.should_restart(s.spec_of("c").expect("c"), 42));
        assert!(!s.should_restart(s.spec_of("side").expect("side"), 0));
    }

    #[test]
    fn without_a_container_policy_the_pods_decides() {
        let s = state(serde_json::json!({"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "c"}]
        }}));
        let c = s.spec_of("c").expect("c");
        assert!(!s.should_restart(c, 0));
        assert!(s.should_restart(c, 2));
    }
}
