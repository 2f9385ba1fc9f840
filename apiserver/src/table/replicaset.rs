//! `replicasets`: upstream `printReplicaSet`.

use api::selector::format_label_selector;
use serde_json::Value;

use super::{
    AGE, CONTAINERS_DOC, Column, IMAGES_DOC, NAME, Rows, col, container_cells, int, name, replicas,
    wide,
};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently oberved number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

/// Upstream `printReplicaSet`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    row_with_selector(p, obj, format_label_selector(&obj["spec"]["selector"]))
}

/// The row of a ReplicaSet or ReplicationController, whose selectors print differently.
pub(super) fn row_with_selector(p: &Rows, obj: &Value, selector: String) -> Vec<Value> {
    let (containers, images) = container_cells(&obj["spec"]["template"]["spec"]["containers"]);
    let status = &obj["status"];
    vec![
        name(obj).into(),
        replicas(&obj["spec"]["replicas"]).into(),
        int(&status["replicas"]).into(),
        int(&status["readyReplicas"]).into(),
        p.age(obj).into(),
        containers.into(),
        images.into(),
        selector.into(),
    ]
}
