//! `replicasets`: upstream `printReplicaSet`.

use api::selector::format_label_selector;
use serde_json::Value;

use super::{
    AGE, CONTAINERS_DOC, Column, IMAGES_DOC, NAME, Printer, Rows, col, container_cells, int, name,
    no_conditions, replicas, wide,
};

const COLUMNS: &[Column] = &[
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

/// The printer the kind map hands out.
pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
    conditions: no_conditions,
};

/// Upstream `printReplicaSet`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
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
        format_label_selector(&obj["spec"]["selector"]).into(),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{cells, names};

    #[test]
    fn replicasets() {
        assert_eq!(
            names("apps", "replicasets"),
            [
                ("Name", 0),
                ("Desired", 0),
                ("Current", 0),
                ("Ready", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1)
            ]
            .map(|(n, p)| (n.to_string(), p))
        );
        let template = json!({"spec": {"containers": [
            {"name": "web", "image": "nginx:1.27"}, {"name": "sidecar", "image": "busybox"}]}});
        let rs = json!({
            "metadata": {"name": "web-5d8f7", "creationTimestamp": "2024-05-01T11:40:00Z"},
            "spec": {"replicas": 3, "template": template,
                     "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f7"}}},
            "status": {"replicas": 3, "readyReplicas": 1}
        });
        assert_eq!(
            cells("apps", "replicasets", rs),
            [
                json!("web-5d8f7"),
                json!(3),
                json!(3),
                json!(1),
                json!("20m"),
                json!("web,sidecar"),
                json!("nginx:1.27,busybox"),
                json!("app=web,pod-template-hash=5d8f7")
            ]
        );
        let empty = json!({"metadata": {"name": "e"}, "spec": {"selector": {}}});
        let c = cells("apps", "replicasets", empty);
        assert_eq!(c[1], 1, "defaulted replicas");
        assert_eq!(c[2], 0);
        assert_eq!(c[7], "<none>");
        let bad = json!({"metadata": {"name": "e"},
                         "spec": {"selector": {"matchLabels": {"bad key!": "x"}}}});
        assert_eq!(cells("apps", "replicasets", bad)[7], "<error>");
    }
}
