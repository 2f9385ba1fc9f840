//! Pod status derived from a [`PodState`]: phase, conditions, container statuses, IPs, start
//! time — the kubelet's `generateAPIPodStatus`, `getPhase`, `convertToAPIContainerStatuses`
//! and status/generate.go [spec §4]. Pure: the caller passes the previous API status so
//! `lastTransitionTime` only moves on transitions and foreign conditions are kept.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::model::{Instance, PodState, Probes, SpecRef};

/// Conditions the kubelet owns (regenerated on every status generation).
const OWNED: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// Converts a wall-clock time to an API time, truncated to whole seconds as the API
/// serializes it (so a status read back compares equal to the one written).
pub fn time(t: SystemTime) -> Time {
    seconds(Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// `t` truncated to whole seconds.
pub fn seconds(t: Timestamp) -> Time {
    Time(Timestamp::from_second(t.as_second()).unwrap_or(t))
}

fn terminated(inst: &Instance) -> Option<ContainerState> {
    let e = inst.exit.as_ref()?;
    Some(ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: e.exit_code,
            reason: Some(e.reason.clone()),
            message: e.message.clone(),
            started_at: inst.started_at.map(time),
            finished_at: Some(time(e.finished_at)),
            container_id: Some(inst.status_id().to_string()),
            signal: None,
        }),
        ..Default::default()
    })
}

fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..Default::default()
    }
}

/// The status of one container.
pub fn container_status(
    state: &PodState,
    c: SpecRef<'_>,
    probes: &dyn Probes,
    has_init: bool,
) -> ContainerStatus {
    let name = &c.container.name;
    let default_reason = if has_init {
        "PodInitializing"
    } else {
        "ContainerCreating"
    };
    let mut st = ContainerStatus {
        name: name.clone(),
        image: state
            .images
            .get(&c.container.name)
            .map(|(i, _)| i.clone())
            .or_else(|| c.container.image.clone())
            .unwrap_or_default(),
        image_id: state
            .images
            .get(&c.container.name)
            .map(|(_, id)| id.clone())
            .unwrap_or_default(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        ..Default::default()
    };
    let cached = state.waiting.get(name);
    match state.latest(name) {
        None => {
            st.state = Some(match cached {
                Some((r, m)) => waiting(r, Some(m.clone())),
                None => waiting(default_reason, None),
            });
        }
        Some(inst) => {
            st.restart_count = inst.restart_count;
            st.container_id = Some(inst.status_id().to_string());
            if inst.running() {
                st.state = Some(ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: inst.started_at.map(time),
                    }),
                    ..Default::default()
                });
            } else {
                let code = inst.exit.as_ref().map_or(0, |e| e.exit_code);
                st.state = match cached {
                    Some((r, m)) if state.should_restart(c, code) => {
                        Some(waiting(r, Some(m.clone())))
                    }
                    _ => terminated(inst),
                };
            }
            st.last_state = state.last_terminated(c).and_then(terminated);
            st.started = Some(state.started(c, probes));
            st.ready = state.ready(c, probes);
        }
    }
    if st.last_state.is_none() {
        st.last_state = Some(ContainerState::default());
    }
    st
}

/// How a container counts for the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Running,
    Waiting,
    Stopped { succeeded: bool },
}

fn kind(state: &PodState, c: SpecRef<'_>) -> Kind {
    match state.latest(&c.container.name) {
        None => Kind::Waiting,
        Some(i) if i.running() => Kind::Running,
        // A waiting container with a previous termination counts as stopped.
        Some(i) => Kind::Stopped {
            succeeded: i.exit.as_ref().is_some_and(|e| e.exit_code == 0),
        },
    }
}

/// The pod phase [kubelet_pods.go `getPhase`].
pub fn phase(state: &PodState, probes: &dyn Probes) -> &'static str {
    if let Some(p) = state.terminal_phase {
        return p;
    }
    let containers = state.containers();
    let policy = state.restart_policy();
    let mut pending_init = false;
    let mut failed_init = false;
    for c in containers.iter().filter(|c| c.init) {
        match state.latest(&c.container.name) {
            None => pending_init = true,
            Some(i) if i.running() => {
                if !c.sidecar() || !state.started(*c, probes) {
                    pending_init = true;
                }
            }
            Some(i) => {
                let code = i.exit.as_ref().map_or(0, |e| e.exit_code);
                if code != 0 && !c.sidecar() {
                    failed_init = true;
                }
                if c.sidecar() {
                    pending_init = true;
                }
            }
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in containers.iter().filter(|c| !c.init) {
        match kind(state, *c) {
            Kind::Running => running += 1,
            Kind::Waiting => waiting += 1,
            Kind::Stopped { succeeded: s } => {
                stopped += 1;
                if s {
                    succeeded += 1;
                }
            }
        }
    }
    // Sidecars running count as running containers.
    for c in containers.iter().filter(|c| c.sidecar()) {
        if kind(state, *c) == Kind::Running && !pending_init {
            running += 1;
        }
    }
    if failed_init && policy == "Never" {
        return "Failed";
    }
    let regular_started = containers
        .iter()
        .any(|c| !c.init && state.latest(&c.container.name).is_some());
    if (pending_init && !regular_started) || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if state.deleting() {
            return if stopped == succeeded {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn cond(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(str::to_string),
        message,
        ..Default::default()
    }
}

fn names(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// Everything needed besides the state.
#[derive(Debug, Clone)]
pub struct StatusInputs<'a> {
    /// The node's IP (`hostIP`).
    pub host_ip: &'a str,
    /// The status the API has now (transition times, foreign conditions, qosClass).
    pub old: Option<&'a PodStatus>,
    /// Now.
    pub now: Timestamp,
}

/// Generates the pod status.
pub fn generate(state: &PodState, probes: &dyn Probes, inputs: &StatusInputs<'_>) -> PodStatus {
    let (reason, message) = state.failure.clone().unzip();
    if state.rejected {
        // The kubelet's `rejectPod`: the verdict and the QoS class, nothing of the containers;
        // the conditions others set (PodScheduled) stay.
        let kubelet_owned = [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
        ];
        let conditions: Vec<PodCondition> = (inputs.old.and_then(|o| o.conditions.clone()))
            .unwrap_or_default()
            .into_iter()
            .filter(|c| !kubelet_owned.contains(&c.type_.as_str()))
            .collect();
        return PodStatus {
            phase: Some("Failed".into()),
            conditions: (!conditions.is_empty()).then_some(conditions),
            reason,
            message,
            qos_class: inputs.old.and_then(|s| s.qos_class.clone()),
            ..Default::default()
        };
    }
    let containers = state.containers();
    let has_init = containers.iter().any(|c| c.init);
    let phase = phase(state, probes);
    let mut init_statuses: Vec<ContainerStatus> = containers
        .iter()
        .filter(|c| c.init)
        .map(|c| container_status(state, *c, probes, true))
        .collect();
    let mut statuses: Vec<ContainerStatus> = containers
        .iter()
        .filter(|c| !c.init)
        .map(|c| container_status(state, *c, probes, has_init))
        .collect();
    // The status manager's cut of terminated messages (`normalizeStatus`): 12 KiB per pod.
    for st in statuses.iter_mut().chain(init_statuses.iter_mut()) {
        for t in [st.state.as_mut(), st.last_state.as_mut()]
            .into_iter()
            .flatten()
            .filter_map(|s| s.terminated.as_mut())
        {
            if let Some(m) = t.message.as_mut() {
                *m = crate::runtime::termination::normalize_message(m, containers.len());
            }
        }
    }

    // Initialized.
    let regular_started = containers
        .iter()
        .any(|c| !c.init && state.latest(&c.container.name).is_some());
    let incomplete: Vec<String> = containers
        .iter()
        .filter(|c| c.init)
        .filter(|c| {
            if c.sidecar() {
                !state.started(**c, probes)
            } else {
                !state.ready(**c, probes)
            }
        })
        .map(|c| c.container.name.clone())
        .collect();
    let initialized = if phase == "Succeeded" {
        cond("Initialized", true, Some("PodCompleted"), None)
    } else if incomplete.is_empty() || regular_started {
        cond("Initialized", true, None, None)
    } else {
        cond(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: {}",
                names(&incomplete)
            )),
        )
    };

    // ContainersReady.
    let mut unready = Vec::new();
    for c in containers.iter().filter(|c| !c.init || c.sidecar()) {
        if !state.ready(*c, probes) {
            unready.push(c.container.name.clone());
        }
    }
    let containers_ready = if phase == "Succeeded" {
        cond("ContainersReady", false, Some("PodCompleted"), None)
    } else if phase == "Failed" {
        cond("ContainersReady", false, Some("PodFailed"), None)
    } else if unready.is_empty() {
        cond("ContainersReady", true, None, None)
    } else {
        cond(
            "ContainersReady",
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: {}",
                names(&unready)
            )),
        )
    };

    // Ready: ContainersReady plus readiness gates.
    let old_conditions: Vec<PodCondition> = inputs
        .old
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let ready = if containers_ready.status != "True" {
        PodCondition {
            type_: "Ready".into(),
            ..containers_ready.clone()
        }
    } else {
        let mut msgs = Vec::new();
        for g in state
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.readiness_gates.as_ref())
            .into_iter()
            .flatten()
        {
            let t = &g.condition_type;
            match old_conditions.iter().find(|c| &c.type_ == t) {
                None => msgs.push(format!(
                    "corresponding condition of pod readiness gate {t:?} does not exist."
                )),
                Some(c) if c.status != "True" => msgs.push(format!(
                    "the status of pod readiness gate {t:?} is not \"True\", but {}",
                    c.status
                )),
                Some(_) => {}
            }
        }
        if msgs.is_empty() {
            cond("Ready", true, None, None)
        } else {
            cond(
                "Ready",
                false,
                Some("ReadinessGatesNotReady"),
                Some(msgs.join(", ")),
            )
        }
    };
    let sandbox_ready = state.sandbox.is_some()
        && state.sandbox_ready
        && state.terminal_phase.is_none()
        && !(state.deleting()
            && containers
                .iter()
                .all(|c| state.latest(&c.container.name).is_none_or(|i| !i.running())));
    let mut conditions = vec![
        cond("PodReadyToStartContainers", sandbox_ready, None, None),
        initialized,
        ready,
        containers_ready,
        cond("PodScheduled", true, None, None),
    ];
    for c in &mut conditions {
        let prev = old_conditions.iter().find(|o| o.type_ == c.type_);
        c.last_transition_time = match prev {
            Some(p) if p.status == c.status => p.last_transition_time.clone(),
            _ => Some(seconds(inputs.now)),
        };
        c.last_probe_time = None;
    }
    // Keep conditions owned by others (readiness gates, DisruptionTarget).
    for o in &old_conditions {
        if !OWNED.contains(&o.type_.as_str()) {
            conditions.push(o.clone());
        }
    }

    let pod_ip = state.sandbox.as_ref().map(|s| s.pod_ip.to_string());
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(inputs.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: inputs.host_ip.to_string(),
        }]),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: state.start_time.map(seconds),
        container_statuses: Some(statuses),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        ephemeral_container_statuses: ephemeral_statuses(state, probes),
        qos_class: inputs.old.and_then(|s| s.qos_class.clone()),
        reason,
        message,
        ..Default::default()
    }
}

/// `status.ephemeralContainerStatuses`: as container statuses, never ready (they serve no
/// traffic; the kubelet reports them so).
fn ephemeral_statuses(state: &PodState, probes: &dyn Probes) -> Option<Vec<ContainerStatus>> {
    let list: Vec<ContainerStatus> = state
        .ephemeral_containers()
        .into_iter()
        .map(|c| ContainerStatus {
            ready: false,
            ..container_status(state, c, probes, false)
        })
        .collect();
    (!list.is_empty()).then_some(list)
}

/// The view the probe workers read.
pub fn probe_view(state: &PodState, probes: &dyn Probes, phase: &str) -> probe::PodStatusView {
    let view = |c: SpecRef<'_>| {
        let inst = state.latest(&c.container.name)?;
        let st = match &inst.exit {
            None => probe::ContainerState::Running {
                started_at: inst.started,
            },
            Some(e) => probe::ContainerState::Terminated {
                will_restart: state.should_restart(c, e.exit_code),
            },
        };
        Some(probe::ContainerStatusView {
            name: c.container.name.clone(),
            container_id: inst.status_id(),
            state: st,
            started: Some(state.started(c, probes)),
        })
    };
    let containers = state.containers();
    probe::PodStatusView {
        terminal: phase == "Succeeded" || phase == "Failed",
        deleting: state.deleting(),
        pod_ip: state
            .sandbox
            .as_ref()
            .map(|s| s.pod_ip.to_string())
            .unwrap_or_default(),
        containers: containers
            .iter()
            .filter(|c| !c.init)
            .filter_map(|c| view(*c))
            .collect(),
        init_containers: containers
            .iter()
            .filter(|c| c.init)
            .filter_map(|c| view(*c))
            .collect(),
    }
}
