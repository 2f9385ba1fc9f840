//! apps/v1 validation (`ValidateDeploymentSpec`, `ValidateReplicaSetSpec`,
//! `ValidatePodTemplateSpecForReplicaSet`, `ValidateDeploymentStrategy`,
//! `ValidateRollingUpdateDeployment` in `pkg/apis/apps/validation/validation.go`).

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, ReplicaSet};
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::pod::{template_labels, validate_pod_template};
use super::{
    Errors, IMMUTABLE_MSG, child, is_qualified_name, is_valid_label_value, is_valid_percent, typed,
    validate_labels, validate_nonnegative,
};
use crate::selector::LabelSelector;
use crate::status::{ApiError, FieldError};

/// Validates a Deployment's spec.
pub fn validate_deployment(obj: &Value) -> Result<Errors, ApiError> {
    let d: Deployment = typed(obj)?;
    let spec = d.spec;
    let has_selector = obj.pointer("/spec/selector").is_some();
    let mut errs = Errors::new();
    errs.extend(validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(0)),
        "spec.replicas",
    ));
    errs.extend(validate_workload_selector(
        has_selector.then_some(&spec.selector),
        &spec.template,
        "spec",
    ));
    errs.extend(validate_strategy(
        spec.strategy.as_ref().cloned().unwrap_or_default(),
        "spec.strategy",
    ));
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    errs.extend(validate_nonnegative(
        i64::from(min_ready),
        "spec.minReadySeconds",
    ));
    if let Some(r) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            i64::from(r),
            "spec.revisionHistoryLimit",
        ));
    }
    if let Some(p) = spec.progress_deadline_seconds {
        errs.extend(validate_nonnegative(
            i64::from(p),
            "spec.progressDeadlineSeconds",
        ));
        if p <= min_ready {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
    Ok(errs)
}

/// Validates a ReplicaSet's spec.
pub fn validate_replica_set(obj: &Value) -> Result<Errors, ApiError> {
    let rs: ReplicaSet = typed(obj)?;
    let spec = rs.spec;
    let has_selector = obj.pointer("/spec/selector").is_some();
    let mut errs = Errors::new();
    errs.extend(validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(0)),
        "spec.replicas",
    ));
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        "spec.minReadySeconds",
    ));
    errs.extend(validate_workload_selector(
        has_selector.then_some(&spec.selector),
        &spec.template.unwrap_or_default(),
        "spec",
    ));
    Ok(errs)
}

/// Validates a ReplicationController's spec (core/v1; upstream
/// `ValidateReplicationControllerSpec` and `ValidatePodTemplateSpecForRC`). Its selector is a
/// plain label map, so an empty one is only `Required`, and the template check is skipped
/// then. `ValidateReadOnlyPersistentDisks` concerns cloud disk volumes paddock does not
/// serve.
pub fn validate_replication_controller(obj: &Value) -> Result<Errors, ApiError> {
    let rc: ReplicationController = typed(obj)?;
    let spec = rc.spec.unwrap_or_default();
    let mut errs = Errors::new();
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        "spec.minReadySeconds",
    ));
    let selector = spec.selector.unwrap_or_default();
    if selector.is_empty() {
        errs.push(FieldError::required("spec.selector", ""));
    }
    errs.extend(validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(0)),
        "spec.replicas",
    ));
    let Some(template) = spec.template else {
        errs.push(FieldError::required("spec.template", ""));
        return Ok(errs);
    };
    let labels = template_labels(&template);
    if !selector.is_empty() && !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            go_labels(&template),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template(&template, "spec.template"));
    if let Some(pod) = template.spec.as_ref() {
        let rp = pod.restart_policy.as_deref().unwrap_or("");
        if rp != "Always" {
            errs.push(FieldError::not_supported(
                "spec.template.spec.restartPolicy",
                rp,
                &["Always"],
            ));
        }
        if let Some(d) = pod.active_deadline_seconds {
            errs.push(FieldError::invalid(
                "spec.template.spec.activeDeadlineSeconds",
                d,
                "must not be specified",
            ));
        }
    }
    Ok(errs)
}

/// A template's labels as upstream prints them in errors: Go prints a nil map as
/// `map[string]string(nil)`, an empty one as `{}`.
fn go_labels(template: &PodTemplateSpec) -> Value {
    let labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    match labels {
        Some(l) => json!(l),
        None => json!({"$go": "map[string]string(nil)"}),
    }
}

/// Go's `%#v` of a `v1.LabelSelector`, as upstream prints it in selector errors.
pub(crate) fn go_selector(sel: &K8sSelector) -> Value {
    let labels = match &sel.match_labels {
        None => "map[string]string(nil)".to_string(),
        Some(m) => crate::status::go_value(&json!(m)),
    };
    let exprs = match &sel.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(v) => {
            let items: Vec<String> = v
                .iter()
                .map(|r| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        crate::status::go_quote(&r.key),
                        crate::status::go_quote(&r.operator),
                        match &r.values {
                            None => "[]string(nil)".to_string(),
                            Some(vals) => crate::status::go_value(&json!(vals)),
                        }
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    json!({"$go": format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")})
}

/// Upstream `ValidateLabelSelector` (strict label values).
pub fn validate_label_selector(sel: &K8sSelector, path: &str) -> Errors {
    let mut errs = validate_labels(sel.match_labels.as_ref(), &child(path, "matchLabels"));
    for (i, r) in sel.match_expressions.iter().flatten().enumerate() {
        let rpath = format!("{}[{i}]", child(path, "matchExpressions"));
        let values = r.values.as_deref().unwrap_or(&[]);
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        child(&rpath, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&rpath, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                child(&rpath, "operator"),
                other,
                "not a valid selector operator",
            )),
        }
        for msg in is_qualified_name(&r.key) {
            errs.push(FieldError::invalid(
                child(&rpath, "key"),
                r.key.as_str(),
                msg,
            ));
        }
        for (j, v) in values.iter().enumerate() {
            for msg in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    format!("{}[{j}]", child(&rpath, "values")),
                    v.as_str(),
                    msg,
                ));
            }
        }
    }
    errs
}

/// The selector rules shared by Deployments and ReplicaSets, then
/// `ValidatePodTemplateSpecForReplicaSet`: the selector must match the template labels,
/// restartPolicy must be Always, activeDeadlineSeconds is forbidden.
fn validate_workload_selector(
    selector: Option<&K8sSelector>,
    template: &PodTemplateSpec,
    path: &str,
) -> Errors {
    let mut errs = Errors::new();
    let spath = child(path, "selector");
    let tpath = child(path, "template");
    let mut parsed = None;
    match selector {
        None => errs.push(FieldError::required(spath.clone(), "")),
        Some(sel) => {
            errs.extend(validate_label_selector(sel, &spath));
            let n = sel.match_labels.as_ref().map_or(0, |m| m.len())
                + sel.match_expressions.as_ref().map_or(0, Vec::len);
            if n == 0 {
                errs.push(FieldError::invalid(
                    spath.clone(),
                    go_selector(sel),
                    "empty selector is invalid for deployment",
                ));
            }
            match LabelSelector::from_k8s(sel) {
                Ok(s) => parsed = Some(s),
                Err(_) => errs.push(FieldError::invalid(
                    spath.clone(),
                    go_selector(sel),
                    "invalid label selector",
                )),
            }
        }
    }
    let labels = template_labels(template);
    if let Some(sel) = parsed.as_ref().filter(|s| !s.is_empty())
        && !sel.matches(&labels)
    {
        errs.push(FieldError::invalid(
            child(&tpath, "metadata.labels"),
            go_labels(template),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template(template, &tpath));
    if let Some(spec) = template.spec.as_ref() {
        let rp = spec.restart_policy.as_deref().unwrap_or("");
        if rp != "Always" && !rp.is_empty() {
            errs.push(FieldError::not_supported(
                child(&tpath, "spec.restartPolicy"),
                rp,
                &["Always"],
            ));
        }
        if spec.active_deadline_seconds.is_some() {
            errs.push(FieldError::forbidden(
                child(&tpath, "spec.activeDeadlineSeconds"),
                "activeDeadlineSeconds in ReplicaSet is not Supported",
            ));
        }
    }
    errs
}

/// Go's `%#v` of an `intstr.IntOrString` (its `String()` has a pointer receiver, so upstream
/// prints the struct).
pub(crate) fn go_intstr(v: &IntOrString) -> Value {
    let s = match v {
        IntOrString::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
        IntOrString::String(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            crate::status::go_quote(s)
        ),
    };
    json!({ "$go": s })
}

/// The integer value of an int-or-percent (percent number for strings; upstream
/// `getIntOrPercentValue`).
pub(crate) fn int_or_percent_value(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(s) => s.trim_end_matches('%').parse().unwrap_or(0),
    }
}

/// Upstream `ValidatePositiveIntOrPercent`.
pub(crate) fn validate_positive_int_or_percent(v: &IntOrString, path: &str) -> Errors {
    match v {
        IntOrString::String(s) => is_valid_percent(s)
            .into_iter()
            .map(|msg| FieldError::invalid(path, go_intstr(v), msg))
            .collect(),
        IntOrString::Int(i) => validate_nonnegative(i64::from(*i), path),
    }
}

/// Upstream `ValidateDeploymentStrategy` and `ValidateRollingUpdateDeployment`.
fn validate_strategy(strategy: DeploymentStrategy, path: &str) -> Errors {
    let mut errs = Errors::new();
    match strategy.type_.as_deref().unwrap_or("") {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    child(path, "rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match &strategy.rolling_update {
            None => errs.push(FieldError::required(
                child(path, "rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rpath = child(path, "rollingUpdate");
                let zero = IntOrString::Int(0);
                let mu = ru.max_unavailable.as_ref().unwrap_or(&zero);
                let ms = ru.max_surge.as_ref().unwrap_or(&zero);
                let mu_path = child(&rpath, "maxUnavailable");
                errs.extend(validate_positive_int_or_percent(mu, &mu_path));
                errs.extend(validate_positive_int_or_percent(
                    ms,
                    &child(&rpath, "maxSurge"),
                ));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(FieldError::invalid(
                        mu_path.clone(),
                        go_intstr(mu),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                if matches!(mu, IntOrString::String(_)) && int_or_percent_value(mu) > 100 {
                    errs.push(FieldError::invalid(
                        mu_path,
                        go_intstr(mu),
                        "must not be greater than 100%",
                    ));
                }
            }
        },
        other => errs.push(FieldError::not_supported(
            child(path, "type"),
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

/// The selector of Deployments and ReplicaSets is immutable in apps/v1.
pub fn validate_selector_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let n = new.pointer("/spec/selector");
    let o = old.pointer("/spec/selector");
    if n == o {
        return Ok(Vec::new());
    }
    let sel: K8sSelector = n.map(typed).transpose()?.unwrap_or_default();
    Ok(vec![FieldError::invalid(
        "spec.selector",
        go_selector(&sel),
        IMMUTABLE_MSG,
    )])
}

/// Upstream `ValidateDeploymentStatus` / `ValidateReplicaSetStatus` (and the collisionCount
/// rule of `ValidateDeploymentStatusUpdate`): counters non-negative and consistent.
pub fn validate_workload_status(kind: &str, new: &Value, old: &Value) -> Errors {
    let get = |v: &Value, f: &str| v.pointer(&format!("/status/{f}")).and_then(Value::as_i64);
    let n = |f: &str| get(new, f).unwrap_or(0);
    let mut errs = Errors::new();
    let counters: &[&str] = if kind == "Deployment" {
        &[
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ]
    } else {
        &[
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ]
    };
    for f in counters {
        errs.extend(validate_nonnegative(n(f), &format!("status.{f}")));
    }
    if kind == "Deployment"
        && let Some(c) = get(new, "collisionCount")
    {
        errs.extend(validate_nonnegative(c, "status.collisionCount"));
    }
    let msg = "cannot be greater than status.replicas";
    let capped: &[&str] = if kind == "Deployment" {
        &["updatedReplicas", "readyReplicas", "availableReplicas"]
    } else {
        &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"]
    };
    for f in capped {
        if n(f) > n("replicas") {
            errs.push(FieldError::invalid(format!("status.{f}"), n(f), msg));
        }
    }
    if n("availableReplicas") > n("readyReplicas") {
        errs.push(FieldError::invalid(
            "status.availableReplicas",
            n("availableReplicas"),
            "cannot be greater than readyReplicas",
        ));
    }
    if kind == "Deployment"
        && let (Some(nc), Some(oc)) = (get(new, "collisionCount"), get(old, "collisionCount"))
        && nc < oc
    {
        errs.push(FieldError::invalid(
            "status.collisionCount",
            nc,
            "cannot be decremented",
        ));
    }
    errs
}
