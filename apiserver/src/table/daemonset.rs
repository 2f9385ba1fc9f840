//! `daemonsets`: upstream `printDaemonSet`.

use api::selector::format_label_selector;
use serde_json::Value;

use super::{
    AGE, CONTAINERS_DOC, Column, IMAGES_DOC, NAME, Rows, col, container_cells, int, name, wide,
};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    col(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    col(
        "Ready",
        "integer",
        "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
    ),
    col(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod",
    ),
    col(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
    ),
    col(
        "Node Selector",
        "string",
        "An object that describes the pod that will be created. The DaemonSet will create exactly one copy of this pod on every node that matches the template's node selector (or on every node if no node selector is specified). The only allowed template.spec.restartPolicy value is \"Always\". More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#pod-template",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide(
        "Selector",
        "string",
        "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

/// Upstream `printDaemonSet`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let (containers, images) = container_cells(&obj["spec"]["template"]["spec"]["containers"]);
    let s = &obj["status"];
    vec![
        name(obj).into(),
        int(&s["desiredNumberScheduled"]).into(),
        int(&s["currentNumberScheduled"]).into(),
        int(&s["numberReady"]).into(),
        int(&s["updatedNumberScheduled"]).into(),
        int(&s["numberAvailable"]).into(),
        super::format_labels(&obj["spec"]["template"]["spec"]["nodeSelector"]).into(),
        p.age(obj).into(),
        containers.into(),
        images.into(),
        format_label_selector(&obj["spec"]["selector"]).into(),
    ]
}
