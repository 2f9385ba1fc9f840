//! `replicationcontrollers`: upstream `printReplicationController` (the ReplicaSet's columns,
//! with the core/v1 descriptions and a label-map selector).

use serde_json::Value;

use super::{AGE, CONTAINERS_DOC, Column, IMAGES_DOC, NAME, Rows, col, wide};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replication controller.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

/// Upstream `printReplicationController`: the selector as `labels.FormatLabels` prints it.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    super::replicaset::row_with_selector(p, obj, super::format_labels(&obj["spec"]["selector"]))
}
