//! `metrics.k8s.io` `pods` and `nodes`: metrics-server's `addPodMetricsToTable` and
//! `addNodeMetricsToTable` (the name, the summed usage by resource, the window).

use serde_json::Value;

use super::{Column, NAME, Rows, name, s};

const fn quantity(name: &'static str) -> Column {
    Column {
        name,
        ty: "string",
        format: "quantity",
        description: "",
        priority: 0,
    }
}

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    quantity("cpu"),
    quantity("memory"),
    Column {
        name: "Window",
        ty: "string",
        format: "duration",
        description: "",
        priority: 0,
    },
];

/// The sum of `resource` over `usages`, canonical (`0` when absent).
fn sum<'a>(usages: impl Iterator<Item = &'a Value>, resource: &str) -> String {
    let mut total: Option<api::quantity::Quantity> = None;
    for u in usages {
        if let Some(q) = u
            .get(resource)
            .and_then(Value::as_str)
            .and_then(|q| api::quantity::Quantity::parse(q).ok())
        {
            total = Some(match total {
                Some(t) => t.add(&q),
                None => q,
            });
        }
    }
    total.map_or_else(|| "0".into(), |t| t.canonical())
}

/// A PodMetrics (its containers summed) or NodeMetrics row.
pub(super) fn row(_: &Rows, obj: &Value) -> Vec<Value> {
    let usages: Vec<&Value> = match obj.get("containers").and_then(Value::as_array) {
        Some(cs) => cs.iter().filter_map(|c| c.get("usage")).collect(),
        None => obj.get("usage").into_iter().collect(),
    };
    vec![
        name(obj).into(),
        sum(usages.iter().copied(), "cpu").into(),
        sum(usages.iter().copied(), "memory").into(),
        s(&obj["window"]).into(),
    ]
}
