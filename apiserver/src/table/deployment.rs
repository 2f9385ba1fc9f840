//! `deployments`: upstream `printDeployment`.

use api::selector::LabelSelector;
use serde_json::Value;

use super::{
    AGE, CONTAINERS_DOC, Column, IMAGES_DOC, NAME, Rows, col, container_cells, int, name, replicas,
    wide,
};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide(
        "Selector",
        "string",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    ),
];

/// Upstream `printDeployment`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let (containers, images) = container_cells(&obj["spec"]["template"]["spec"]["containers"]);
    // Upstream fails the whole table on an invalid selector ("this shouldn't happen if
    // LabelSelector passed validation"); paddock prints the row with `<invalid>`.
    let selector = match LabelSelector::from_json(&obj["spec"]["selector"]) {
        Ok(sel) => sel.to_string(),
        Err(_) => "<invalid>".into(),
    };
    let status = &obj["status"];
    vec![
        name(obj).into(),
        format!(
            "{}/{}",
            int(&status["readyReplicas"]),
            replicas(&obj["spec"]["replicas"])
        )
        .into(),
        int(&status["updatedReplicas"]).into(),
        int(&status["availableReplicas"]).into(),
        p.age(obj).into(),
        containers.into(),
        images.into(),
        selector.into(),
    ]
}
