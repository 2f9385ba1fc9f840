//! `statefulsets`: upstream `printStatefulSet`.

use serde_json::Value;

use super::{
    AGE, CONTAINERS_DOC, Column, IMAGES_DOC, NAME, Rows, col, container_cells, int, name, replicas,
    wide,
};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
];

/// Upstream `printStatefulSet`: `ready/desired`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let (containers, images) = container_cells(&obj["spec"]["template"]["spec"]["containers"]);
    vec![
        name(obj).into(),
        format!(
            "{}/{}",
            int(&obj["status"]["readyReplicas"]),
            replicas(&obj["spec"]["replicas"])
        )
        .into(),
        p.age(obj).into(),
        containers.into(),
        images.into(),
    ]
}
