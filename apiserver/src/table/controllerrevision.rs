//! `controllerrevisions`: upstream `printControllerRevision`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, name};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col("Controller", "string", "Controller of the object"),
    col(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE,
];

/// Upstream `printControllerRevision`: the controller as `kind.group/name` in lower case
/// (`statefulset.apps/web`), `<none>` without one.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let controller = obj["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
        .map_or_else(
            || "<none>".to_string(),
            |r| {
                let api_version = r["apiVersion"].as_str().unwrap_or("");
                let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                let kind = r["kind"].as_str().unwrap_or("");
                let gk = if group.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind}.{group}")
                };
                format!("{}/{}", gk.to_lowercase(), r["name"].as_str().unwrap_or(""))
            },
        );
    vec![
        name(obj).into(),
        controller.into(),
        obj["revision"].as_i64().unwrap_or(0).into(),
        p.age(obj).into(),
    ]
}
