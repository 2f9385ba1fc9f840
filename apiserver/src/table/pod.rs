//! `pods`: upstream `printPod` — readiness, the kubectl-style status reason, restarts — and the
//! `Completed` row condition of finished pods.

use std::collections::BTreeSet;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::{AGE, Column, NAME, Rows, col, int, items, name, or_none, s, timestamp, wide};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    wide(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    ),
    wide(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
    ),
];

/// Upstream `printPod`: readiness, the kubectl-style status reason and restarts.
pub(super) fn row(p: &Rows, pod: &Value) -> Vec<Value> {
    let spec = &pod["spec"];
    let status = &pod["status"];
    let mut restarts = 0i64;
    let mut restartable_init_restarts = 0i64;
    let mut total_containers = items(&spec["containers"]).len();
    let mut ready_containers = 0usize;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    let phase = s(&status["phase"]);
    let mut reason = match s(&status["reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if items(&status["conditions"])
        .iter()
        .any(|c| s(&c["type"]) == "PodScheduled" && s(&c["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }

    let init_containers = items(&spec["initContainers"]);
    // A sidecar (restartable init container) counts as a regular container.
    let restartable: BTreeSet<&str> = init_containers
        .iter()
        .filter(|c| s(&c["restartPolicy"]) == "Always")
        .map(|c| s(&c["name"]))
        .collect();
    total_containers += init_containers
        .iter()
        .filter(|c| s(&c["restartPolicy"]) == "Always")
        .count();

    let mut initializing = false;
    for (i, cs) in items(&status["initContainerStatuses"]).iter().enumerate() {
        let count = int(&cs["restartCount"]);
        restarts += count;
        let finished = timestamp(&cs["lastState"]["terminated"]["finishedAt"]);
        later(&mut last_restart, finished);
        let is_restartable = restartable.contains(s(&cs["name"]));
        if is_restartable {
            restartable_init_restarts += count;
            later(&mut last_restartable_init_restart, finished);
        }
        let terminated = &cs["state"]["terminated"];
        let waiting = &cs["state"]["waiting"];
        if terminated.is_object() && int(&terminated["exitCode"]) == 0 {
            continue;
        }
        if is_restartable && cs["started"].as_bool() == Some(true) {
            if cs["ready"].as_bool() == Some(true) {
                ready_containers += 1;
            }
            continue;
        }
        reason = if terminated.is_object() {
            match s(&terminated["reason"]) {
                "" if int(&terminated["signal"]) != 0 => {
                    format!("Init:Signal:{}", int(&terminated["signal"]))
                }
                "" => format!("Init:ExitCode:{}", int(&terminated["exitCode"])),
                r => format!("Init:{r}"),
            }
        } else if waiting.is_object()
            && !s(&waiting["reason"]).is_empty()
            && s(&waiting["reason"]) != "PodInitializing"
        {
            format!("Init:{}", s(&waiting["reason"]))
        } else {
            format!("Init:{}/{}", i, init_containers.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(&status["conditions"], "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for cs in items(&status["containerStatuses"]).iter().rev() {
            restarts += int(&cs["restartCount"]);
            later(
                &mut last_restart,
                timestamp(&cs["lastState"]["terminated"]["finishedAt"]),
            );
            let waiting = &cs["state"]["waiting"];
            let terminated = &cs["state"]["terminated"];
            if waiting.is_object() && !s(&waiting["reason"]).is_empty() {
                reason = s(&waiting["reason"]).to_string();
            } else if terminated.is_object() && !s(&terminated["reason"]).is_empty() {
                reason = s(&terminated["reason"]).to_string();
            } else if terminated.is_object() {
                reason = match int(&terminated["signal"]) {
                    0 => format!("ExitCode:{}", int(&terminated["exitCode"])),
                    sig => format!("Signal:{sig}"),
                };
            } else if cs["ready"].as_bool() == Some(true) && cs["state"]["running"].is_object() {
                has_running = true;
                ready_containers += 1;
            }
        }
        // Back to "Running" while at least one container still runs.
        if reason == "Completed" && has_running {
            reason = if condition_true(&status["conditions"], "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = !pod["metadata"]["deletionTimestamp"].is_null();
    if deleting && s(&status["reason"]) == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(at) if restarts != 0 => format!("{restarts} ({} ago)", p.since(Some(at))),
        _ => restarts.to_string(),
    };

    // The internal PodStatus takes podIP as authoritative over podIPs (v1 conversion).
    let pod_ip = match s(&status["podIP"]) {
        "" => s(&items(&status["podIPs"]).first().unwrap_or(&Value::Null)["ip"]),
        ip => ip,
    };
    let readiness_gates = items(&spec["readinessGates"]);
    let gates_cell = if readiness_gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = items(&status["conditions"]);
        let true_conditions = readiness_gates
            .iter()
            .filter(|gate| {
                conditions
                    .iter()
                    .find(|c| s(&c["type"]) == s(&gate["conditionType"]))
                    .is_some_and(|c| s(&c["status"]) == "True")
            })
            .count();
        format!("{true_conditions}/{}", readiness_gates.len())
    };

    vec![
        name(pod).into(),
        format!("{ready_containers}/{total_containers}").into(),
        reason.into(),
        restarts_cell.into(),
        p.age(pod).into(),
        or_none(pod_ip).into(),
        or_none(s(&spec["nodeName"])).into(),
        or_none(s(&status["nominatedNodeName"])).into(),
        gates_cell.into(),
    ]
}

/// The `conditions` of a pod's row: upstream marks succeeded and failed pods `Completed`
/// (`podSuccessConditions`/`podFailedConditions`).
pub(super) fn conditions(obj: &Value) -> Vec<Value> {
    let (reason, message) = match s(&obj["status"]["phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return Vec::new(),
    };
    vec![json!({"type": "Completed", "status": "True", "reason": reason, "message": message})]
}

fn condition_true(conditions: &Value, ty: &str) -> bool {
    items(conditions)
        .iter()
        .any(|c| s(&c["type"]) == ty && s(&c["status"]) == "True")
}

/// `t` if it is later than the current `latest` (upstream's `lastRestartDate.Before(&t)`).
fn later(latest: &mut Option<Timestamp>, t: Option<Timestamp>) {
    if let Some(t) = t
        && latest.is_none_or(|l| l < t)
    {
        *latest = Some(t);
    }
}
