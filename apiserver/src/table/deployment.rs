//! `deployments`: upstream `printDeployment`.

use api::selector::LabelSelector;
use serde_json::Value;

use super::{
    AGE, CONTAINERS_DOC, Column, IMAGES_DOC, NAME, Printer, Rows, col, container_cells, int, name,
    no_conditions, replicas, wide,
};

const COLUMNS: &[Column] = &[
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

/// The printer the kind map hands out.
pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
    conditions: no_conditions,
};

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{cells, names};

    #[test]
    fn deployments() {
        assert_eq!(
            names("apps", "deployments")
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>(),
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        let template = json!({"spec": {"containers": [
            {"name": "web", "image": "nginx:1.27"}, {"name": "sidecar", "image": "busybox"}]}});
        let deploy = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-04-29T09:00:00Z"},
            "spec": {"replicas": 3, "template": template,
                     "selector": {"matchLabels": {"app": "web", "tier": "fe"},
                                  "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                                       {"key": "canary", "operator": "DoesNotExist"}]}},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            cells("apps", "deployments", deploy),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("2d3h"),
                json!("web,sidecar"),
                json!("nginx:1.27,busybox"),
                json!("app=web,!canary,env in (dev,prod),tier=fe")
            ]
        );
        let fresh = json!({"metadata": {"name": "new", "creationTimestamp": "2024-05-01T11:59:59Z"},
                           "spec": {"replicas": 0, "selector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}});
        let c = cells("apps", "deployments", fresh);
        assert_eq!(c[1], "0/0");
        assert_eq!(c[4], "1s");
        assert_eq!(c[7], "<invalid>");
    }
}
