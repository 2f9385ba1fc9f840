//! `horizontalpodautoscalers`: upstream `printHorizontalPodAutoscaler` and `formatHPAMetrics`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, name, s};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Reference",
        "string",
        "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
    ),
    col(
        "Targets",
        "string",
        "type represents whether the metric type is Utilization, Value, or AverageValue",
    ),
    col(
        "MinPods",
        "string",
        "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available.",
    ),
    col(
        "MaxPods",
        "string",
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.",
    ),
    col(
        "Replicas",
        "string",
        "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
    ),
    AGE,
];

/// `current/target` of one metric, `<unknown>` for a current value not yet known.
fn pair(current: Option<String>, target: String) -> String {
    format!("{}/{target}", current.unwrap_or_else(|| "<unknown>".into()))
}

fn quantity(v: &Value) -> Option<String> {
    v.as_str()
        .and_then(|q| api::quantity::Quantity::parse(q).ok())
        .map(|q| q.canonical())
}

fn percent(v: &Value) -> Option<String> {
    v.as_i64().map(|p| format!("{p}%"))
}

/// Upstream `formatHPAMetrics`: each metric as `current/target` (at most two, then
/// `+ N more...`).
pub(crate) fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 2;
    let mut list = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let cur = |source: &str, field: &str| {
            status
                .and_then(|st| st.get(source))
                .map(|s| &s["current"][field])
        };
        let item = match s(&spec["type"]) {
            "Resource" | "ContainerResource" => {
                let source = if s(&spec["type"]) == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let src = &spec[source];
                let target = &src["target"];
                let name = s(&src["name"]);
                if target.get("averageValue").is_some() {
                    let t = quantity(&target["averageValue"]).unwrap_or_default();
                    format!(
                        "{name}: {}",
                        pair(cur(source, "averageValue").and_then(quantity), t)
                    )
                } else {
                    let t =
                        percent(&target["averageUtilization"]).unwrap_or_else(|| "<auto>".into());
                    format!(
                        "{name}: {}",
                        pair(cur(source, "averageUtilization").and_then(percent), t)
                    )
                }
            }
            "Pods" => pair(
                cur("pods", "averageValue").and_then(quantity),
                quantity(&spec["pods"]["target"]["averageValue"]).unwrap_or_default(),
            ),
            ty @ ("Object" | "External") => {
                let source = if ty == "Object" { "object" } else { "external" };
                let target = &spec[source]["target"];
                if target.get("averageValue").is_some() {
                    format!(
                        "{} (avg)",
                        pair(
                            cur(source, "averageValue").and_then(quantity),
                            quantity(&target["averageValue"]).unwrap_or_default(),
                        )
                    )
                } else {
                    pair(
                        cur(source, "value").and_then(quantity),
                        quantity(&target["value"]).unwrap_or_default(),
                    )
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(item);
    }
    let more = list.len() > MAX;
    list.truncate(MAX);
    let ret = list.join(", ");
    if more {
        format!("{ret} + {} more...", specs.len() - MAX)
    } else {
        ret
    }
}

/// Upstream `printHorizontalPodAutoscaler`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    let reference = format!(
        "{}/{}",
        s(&spec["scaleTargetRef"]["kind"]),
        s(&spec["scaleTargetRef"]["name"])
    );
    let empty = Vec::new();
    let metrics = format_metrics(
        spec["metrics"].as_array().unwrap_or(&empty),
        obj["status"]["currentMetrics"].as_array().unwrap_or(&empty),
    );
    let min = spec["minReplicas"]
        .as_i64()
        .map_or_else(|| "<unset>".to_string(), |m| m.to_string());
    vec![
        name(obj).into(),
        reference.into(),
        metrics.into(),
        min.into(),
        spec["maxReplicas"].as_i64().unwrap_or(0).into(),
        obj["status"]["currentReplicas"]
            .as_i64()
            .unwrap_or(0)
            .into(),
        p.age(obj).into(),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::format_metrics;

    #[test]
    fn targets_as_upstream_prints_them() {
        let cpu = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}});
        assert_eq!(
            format_metrics(std::slice::from_ref(&cpu), &[]),
            "cpu: <unknown>/50%"
        );
        let cur = json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "12m"}}});
        assert_eq!(
            format_metrics(std::slice::from_ref(&cpu), &[cur]),
            "cpu: 12%/50%"
        );
        let mem = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}});
        assert_eq!(
            format_metrics(&[cpu.clone(), mem.clone(), cpu], &[]),
            "cpu: <unknown>/50%, memory: <unknown>/100Mi + 1 more..."
        );
        assert_eq!(format_metrics(&[], &[]), "<none>");
    }
}
