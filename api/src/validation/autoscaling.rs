//! `autoscaling/v2` HorizontalPodAutoscaler validation (upstream
//! `pkg/apis/autoscaling/validation`: `ValidateHorizontalPodAutoscaler`, the spec's replica
//! bounds, scale target reference, metrics and behavior, with upstream's messages and paths).
//!
//! Start at [`validate_horizontal_pod_autoscaler`] (create and update; ObjectMeta is checked by
//! the caller with the DNS subdomain rule upstream uses).

use k8s_openapi::api::autoscaling::v2::{
    HPAScalingRules, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
};
use serde_json::Value;

use super::{Errors, child, index, typed};
use crate::quantity::Quantity;
use crate::status::{ApiError, FieldError};

/// `MaxPeriodSeconds` of a scaling policy.
const MAX_PERIOD_SECONDS: i32 = 1800;
/// `MaxStabilizationWindowSeconds`.
const MAX_STABILIZATION_WINDOW_SECONDS: i32 = 3600;

/// `ValidateHorizontalPodAutoscalerSpec` at `spec`.
pub fn validate_horizontal_pod_autoscaler(obj: &Value) -> Result<Errors, ApiError> {
    let spec: HorizontalPodAutoscalerSpec = match obj.get("spec") {
        Some(s) if !s.is_null() => typed(s)?,
        _ => HorizontalPodAutoscalerSpec::default(),
    };
    let mut errs = Errors::new();
    if let Some(min) = spec.min_replicas
        && min < 1
    {
        errs.push(FieldError::invalid(
            "spec.minReplicas",
            min,
            "must be greater than or equal to 1",
        ));
    }
    if spec.max_replicas < 1 {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            spec.max_replicas,
            "must be greater than 0",
        ));
    }
    if let Some(min) = spec.min_replicas
        && spec.max_replicas < min
    {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            spec.max_replicas,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    // ValidateCrossVersionObjectReference.
    let r = &spec.scale_target_ref;
    for (field, v) in [("kind", &r.kind), ("name", &r.name)] {
        let path = child("spec.scaleTargetRef", field);
        if v.is_empty() {
            errs.push(FieldError::required(path, ""));
        } else {
            for msg in super::names::path_segment_name(v, false) {
                errs.push(FieldError::invalid(&path, v.as_str(), msg));
            }
        }
    }
    for (i, m) in spec.metrics.iter().flatten().enumerate() {
        errs.extend(validate_metric_spec(m, &index("spec.metrics", i)));
    }
    if let Some(b) = &spec.behavior {
        for (field, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
            if let Some(r) = rules {
                errs.extend(validate_scaling_rules(r, &child("spec.behavior", field)));
            }
        }
    }
    Ok(errs)
}

/// The metric source types, sorted as upstream lists them.
const METRIC_TYPES: [&str; 5] = [
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];

/// `validateMetricSpec`.
fn validate_metric_spec(m: &MetricSpec, path: &str) -> Errors {
    let mut errs = Errors::new();
    let ty = child(path, "type");
    if m.type_.is_empty() {
        errs.push(FieldError::required(
            &ty,
            "must specify a metric source type",
        ));
    }
    let present: Vec<(&str, &str)> = [
        ("Object", "object", m.object.is_some()),
        ("Pods", "pods", m.pods.is_some()),
        ("Resource", "resource", m.resource.is_some()),
        ("External", "external", m.external.is_some()),
        (
            "ContainerResource",
            "containerResource",
            m.container_resource.is_some(),
        ),
    ]
    .iter()
    .filter(|(.., s)| *s)
    .map(|(t, f, _)| (*t, *f))
    .collect();
    let field = match m.type_.as_str() {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        "" => return errs,
        other => {
            errs.push(FieldError::not_supported(&ty, other, &METRIC_TYPES));
            return errs;
        }
    };
    if !present.iter().any(|(t, _)| *t == m.type_) {
        errs.push(FieldError::required(
            child(path, field),
            "must populate information for the given metric source",
        ));
    }
    for (t, f) in &present {
        if *t != m.type_ {
            errs.push(FieldError::forbidden(
                child(path, f),
                "must populate the given metric source only",
            ));
        }
    }
    if let Some(r) = &m.resource
        && m.type_ == "Resource"
    {
        let rp = child(path, "resource");
        if r.name.is_empty() {
            errs.push(FieldError::required(
                child(&rp, "name"),
                "must specify a resource name",
            ));
        }
        errs.extend(validate_resource_target(&r.target, &child(&rp, "target")));
    }
    if let Some(r) = &m.container_resource
        && m.type_ == "ContainerResource"
    {
        let rp = child(path, "containerResource");
        if r.name.is_empty() {
            errs.push(FieldError::required(
                child(&rp, "name"),
                "must specify a resource name",
            ));
        }
        if r.container.is_empty() {
            errs.push(FieldError::required(
                child(&rp, "container"),
                "must specify a container",
            ));
        }
        errs.extend(validate_resource_target(&r.target, &child(&rp, "target")));
    }
    errs
}

/// `validateMetricTarget` plus a resource source's rule: a raw value or a utilization, not both.
fn validate_resource_target(t: &MetricTarget, path: &str) -> Errors {
    let mut errs = validate_metric_target(t, path);
    if t.average_value.is_none() && t.average_utilization.is_none() {
        errs.push(FieldError::required(
            child(path, "averageUtilization"),
            "must set either a target raw value or a target utilization",
        ));
    }
    if t.average_value.is_some() && t.average_utilization.is_some() {
        errs.push(FieldError::forbidden(
            child(path, "averageValue"),
            "may not set both a target raw value and a target utilization",
        ));
    }
    errs
}

fn positive(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> bool {
    Quantity::parse(&q.0).is_ok_and(|v| v.nanos() > 0)
}

/// `validateMetricTarget`.
fn validate_metric_target(t: &MetricTarget, path: &str) -> Errors {
    let mut errs = Errors::new();
    let ty = child(path, "type");
    if t.type_.is_empty() {
        errs.push(FieldError::required(
            &ty,
            "must specify a metric target type",
        ));
    } else if !["Utilization", "Value", "AverageValue"].contains(&t.type_.as_str()) {
        errs.push(FieldError::invalid(
            &ty,
            t.type_.as_str(),
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    if let Some(u) = t.average_utilization
        && u < 1
    {
        errs.push(FieldError::invalid(
            child(path, "averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
    for (field, v) in [("value", &t.value), ("averageValue", &t.average_value)] {
        if let Some(q) = v
            && !positive(q)
        {
            errs.push(FieldError::invalid(
                child(path, field),
                q.0.as_str(),
                "must be positive",
            ));
        }
    }
    errs
}

/// `validateScalingRules`.
fn validate_scaling_rules(r: &HPAScalingRules, path: &str) -> Errors {
    let mut errs = Errors::new();
    if let Some(w) = r.stabilization_window_seconds {
        let p = child(path, "stabilizationWindowSeconds");
        if w < 0 {
            errs.push(FieldError::invalid(
                &p,
                w,
                "must be greater than or equal to zero",
            ));
        }
        if w > MAX_STABILIZATION_WINDOW_SECONDS {
            errs.push(FieldError::invalid(
                &p,
                w,
                format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ));
        }
    }
    if let Some(s) = &r.select_policy
        && !["Disabled", "Max", "Min"].contains(&s.as_str())
    {
        errs.push(FieldError::not_supported(
            child(path, "selectPolicy"),
            s.as_str(),
            &["Disabled", "Max", "Min"],
        ));
    }
    let policies = r.policies.as_deref().unwrap_or_default();
    if policies.is_empty() {
        errs.push(FieldError::required(
            child(path, "policies"),
            "must specify at least one Policy",
        ));
    }
    for (i, p) in policies.iter().enumerate() {
        let pp = index(&child(path, "policies"), i);
        if !["Percent", "Pods"].contains(&p.type_.as_str()) {
            errs.push(FieldError::not_supported(
                child(&pp, "type"),
                p.type_.as_str(),
                &["Percent", "Pods"],
            ));
        }
        if p.value <= 0 {
            errs.push(FieldError::invalid(
                child(&pp, "value"),
                p.value,
                "must be greater than zero",
            ));
        }
        if p.period_seconds <= 0 {
            errs.push(FieldError::invalid(
                child(&pp, "periodSeconds"),
                p.period_seconds,
                "must be greater than zero",
            ));
        }
        if p.period_seconds > MAX_PERIOD_SECONDS {
            errs.push(FieldError::invalid(
                child(&pp, "periodSeconds"),
                p.period_seconds,
                format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::validate_horizontal_pod_autoscaler;

    fn fields(spec: serde_json::Value) -> Vec<(String, String)> {
        validate_horizontal_pod_autoscaler(&json!({"spec": spec}))
            .expect("decodes")
            .iter()
            .map(|e| (e.field.clone(), e.detail.clone()))
            .collect()
    }

    #[test]
    fn upstream_messages_and_paths() {
        let ok = json!({"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}]});
        assert!(fields(ok).is_empty());
        let bad = fields(json!({"scaleTargetRef": {"kind": "", "name": "web"},
            "minReplicas": 0, "maxReplicas": 0,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 0}}}],
            "behavior": {"scaleUp": {"stabilizationWindowSeconds": 4000, "policies": []}}}));
        let has = |f: &str, d: &str| bad.iter().any(|(bf, bd)| bf == f && bd == d);
        assert!(
            has("spec.minReplicas", "must be greater than or equal to 1"),
            "{bad:?}"
        );
        assert!(has("spec.maxReplicas", "must be greater than 0"), "{bad:?}");
        assert!(has("spec.scaleTargetRef.kind", ""), "{bad:?}");
        assert!(
            has(
                "spec.metrics[0].resource.target.averageUtilization",
                "must be greater than 0"
            ),
            "{bad:?}"
        );
        assert!(
            has(
                "spec.behavior.scaleUp.stabilizationWindowSeconds",
                "must be less than or equal to 3600"
            ),
            "{bad:?}"
        );
        assert!(
            has(
                "spec.behavior.scaleUp.policies",
                "must specify at least one Policy"
            ),
            "{bad:?}"
        );
    }
}
