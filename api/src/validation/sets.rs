//! apps/v1 StatefulSet, DaemonSet and ControllerRevision validation (`ValidateStatefulSetSpec`,
//! `ValidateStatefulSetUpdate`, `ValidateStatefulSetStatus`, `ValidateDaemonSetSpec`,
//! `ValidateDaemonSetUpdateStrategy`, `ValidateRollingUpdateDaemonSet`,
//! `ValidateDaemonSetStatusUpdate`, `ValidateControllerRevision(Update)` in
//! `pkg/apis/apps/validation/validation.go`).

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::apps::{
    go_intstr, go_selector, int_or_percent_value, validate_label_selector,
    validate_positive_int_or_percent,
};
use super::pod::{template_labels, validate_pod_template};
use super::{
    Errors, IMMUTABLE_MSG, child, typed, validate_annotations, validate_labels,
    validate_nonnegative,
};
use crate::selector::LabelSelector;
use crate::status::{ApiError, FieldError};

/// The spec fields a StatefulSet update may change (upstream 1.32 `ValidateStatefulSetUpdate`).
const STS_MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// Upstream `IsNotMoreThan100Percent`.
fn not_more_than_100_percent(v: &IntOrString, path: &str) -> Errors {
    match v {
        IntOrString::String(_) if int_or_percent_value(v) > 100 => vec![FieldError::invalid(
            path,
            go_intstr(v),
            "must not be greater than 100%",
        )],
        _ => Vec::new(),
    }
}

/// The selector checks shared by both kinds: required, a valid selector, not empty, and the
/// template's labels selected by it.
fn selector_and_labels(
    obj: &Value,
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    kind: &str,
) -> Errors {
    let mut errs = Errors::new();
    let Some(raw) = obj.pointer("/spec/selector") else {
        errs.push(FieldError::required("spec.selector", ""));
        return errs;
    };
    let sel: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::from_value(raw.clone()).unwrap_or_default();
    errs.extend(validate_label_selector(&sel, "spec.selector"));
    let n = sel.match_labels.as_ref().map_or(0, |m| m.len())
        + sel.match_expressions.as_ref().map_or(0, Vec::len);
    if n == 0 {
        errs.push(FieldError::invalid(
            "spec.selector",
            go_selector(&sel),
            format!("empty selector is invalid for {kind}"),
        ));
    }
    match LabelSelector::from_k8s(&sel) {
        Ok(parsed) => {
            if !parsed.is_empty() && !parsed.matches(&template_labels(template)) {
                let has = template
                    .metadata
                    .as_ref()
                    .is_some_and(|m| m.labels.is_some());
                let shown = if has {
                    json!(template_labels(template))
                } else {
                    json!({"$go": "map[string]string(nil)"})
                };
                errs.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    shown,
                    "`selector` does not match template `labels`",
                ));
            }
        }
        Err(_) if kind == "statefulset" => {
            errs.push(FieldError::invalid("spec.selector", go_selector(&sel), ""));
        }
        Err(_) => {}
    }
    errs
}

/// Upstream `ValidateStatefulSetSpec` (the pod template's spec is not validated, as upstream:
/// its volume mounts may name volume claim templates).
pub fn validate_stateful_set(obj: &Value) -> Result<Errors, ApiError> {
    let sts: StatefulSet = typed(obj)?;
    let spec = sts.spec;
    let mut errs = Errors::new();
    match spec.pod_management_policy.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    match strategy.type_.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(ru) = strategy.rolling_update.as_ref() {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    json!({"$go": format!("{:?}", json!(ru))}),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = strategy.rolling_update.as_ref() {
                let path = "spec.updateStrategy.rollingUpdate";
                errs.extend(validate_nonnegative(
                    i64::from(ru.partition.unwrap_or(0)),
                    &child(path, "partition"),
                ));
                if let Some(mu) = ru.max_unavailable.as_ref() {
                    let p = child(path, "maxUnavailable");
                    errs.extend(validate_positive_int_or_percent(mu, &p));
                    if int_or_percent_value(mu) == 0 {
                        errs.push(FieldError::invalid(p.clone(), go_intstr(mu), "cannot be 0"));
                    }
                    errs.extend(not_more_than_100_percent(mu, &p));
                }
            }
        }
        other => errs.push(FieldError::invalid(
            "spec.updateStrategy",
            json!({"$go": format!("apps.StatefulSetUpdateStrategy{{Type:{other:?}}}")}),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(p) = spec.persistent_volume_claim_retention_policy.as_ref() {
        for (field, v) in [
            ("whenDeleted", &p.when_deleted),
            ("whenScaled", &p.when_scaled),
        ] {
            let v = v.as_deref().unwrap_or("");
            if v != "Retain" && v != "Delete" {
                errs.push(FieldError::not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{field}"),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    errs.extend(validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(0)),
        "spec.replicas",
    ));
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        "spec.minReadySeconds",
    ));
    if let Some(o) = spec.ordinals.as_ref() {
        errs.extend(validate_nonnegative(
            i64::from(o.start.unwrap_or(0)),
            "spec.ordinals.start",
        ));
    }
    errs.extend(selector_and_labels(obj, &spec.template, "statefulset"));
    let tm = spec.template.metadata.clone().unwrap_or_default();
    errs.extend(validate_labels(tm.labels.as_ref(), "spec.template.labels"));
    errs.extend(validate_annotations(
        tm.annotations.as_ref(),
        "spec.template.annotations",
    ));
    let pod_spec = spec.template.spec.clone().unwrap_or_default();
    let rp = pod_spec.restart_policy.as_deref().unwrap_or("");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            rp,
            &["Always"],
        ));
    }
    if let Some(a) = pod_spec.active_deadline_seconds {
        errs.push(FieldError::invalid(
            "spec.template.spec.activeDeadlineSeconds",
            a,
            "must not be specified",
        ));
    }
    Ok(errs)
}

/// Upstream `ValidateStatefulSetUpdate` (after the meta update): only the mutable spec
/// fields may change; replicas stays non-negative. The spec itself is validated again first
/// (the strategy's `ValidateStatefulSet`).
pub fn validate_stateful_set_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let mut errs = validate_stateful_set(new)?;
    let strip = |v: &Value| {
        let mut spec = v.get("spec").cloned().unwrap_or_else(|| json!({}));
        if let Some(m) = spec.as_object_mut() {
            for f in STS_MUTABLE {
                m.remove(*f);
            }
        }
        spec
    };
    if strip(new) != strip(old) {
        errs.push(FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    Ok(errs)
}

/// Upstream `ValidateStatefulSetStatusUpdate` (counters; collisionCount never decremented).
pub fn validate_stateful_set_status(new: &Value, old: &Value) -> Errors {
    let get = |v: &Value, f: &str| v.pointer(&format!("/status/{f}")).and_then(Value::as_i64);
    let n = |f: &str| get(new, f).unwrap_or(0);
    let mut errs = Errors::new();
    for f in [
        "replicas",
        "readyReplicas",
        "currentReplicas",
        "updatedReplicas",
        "availableReplicas",
    ] {
        errs.extend(validate_nonnegative(n(f), &format!("status.{f}")));
    }
    for f in ["observedGeneration", "collisionCount"] {
        if let Some(v) = get(new, f) {
            errs.extend(validate_nonnegative(v, &format!("status.{f}")));
        }
    }
    let msg = "cannot be greater than status.replicas";
    for f in [
        "readyReplicas",
        "currentReplicas",
        "updatedReplicas",
        "availableReplicas",
    ] {
        if n(f) > n("replicas") {
            errs.push(FieldError::invalid(format!("status.{f}"), n(f), msg));
        }
    }
    if n("availableReplicas") > n("readyReplicas") {
        errs.push(FieldError::invalid(
            "status.availableReplicas",
            n("availableReplicas"),
            "cannot be greater than status.readyReplicas",
        ));
    }
    errs.extend(collision_count_not_decremented(new, old));
    errs
}

fn collision_count_not_decremented(new: &Value, old: &Value) -> Errors {
    let get = |v: &Value| v.pointer("/status/collisionCount").and_then(Value::as_i64);
    match (get(new), get(old)) {
        (n, Some(o)) if n.unwrap_or(0) < o => vec![FieldError::invalid(
            "status.collisionCount",
            n.unwrap_or(0),
            "cannot be decremented",
        )],
        _ => Vec::new(),
    }
}

/// Upstream `ValidateDaemonSetSpec`.
pub fn validate_daemon_set(obj: &Value) -> Result<Errors, ApiError> {
    let ds: DaemonSet = typed(obj)?;
    let spec = ds.spec;
    let mut errs = selector_and_labels(obj, &spec.template, "daemonset");
    errs.extend(validate_pod_template(&spec.template, "spec.template"));
    let pod_spec = spec.template.spec.clone().unwrap_or_default();
    let rp = pod_spec.restart_policy.as_deref().unwrap_or("");
    if rp != "Always" && !rp.is_empty() {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            rp,
            &["Always"],
        ));
    }
    if let Some(a) = pod_spec.active_deadline_seconds {
        errs.push(FieldError::invalid(
            "spec.template.spec.activeDeadlineSeconds",
            a,
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        "spec.minReadySeconds",
    ));
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let path = "spec.updateStrategy";
    match strategy.type_.as_deref().unwrap_or("") {
        "OnDelete" => {}
        "RollingUpdate" => match strategy.rolling_update.as_ref() {
            None => errs.push(FieldError::required(child(path, "rollingUpdate"), "")),
            Some(ru) => {
                let rpath = child(path, "rollingUpdate");
                let zero = IntOrString::Int(0);
                let mu = ru.max_unavailable.as_ref().unwrap_or(&zero);
                let ms = ru.max_surge.as_ref().unwrap_or(&zero);
                let mu_path = child(&rpath, "maxUnavailable");
                let ms_path = child(&rpath, "maxSurge");
                errs.extend(validate_positive_int_or_percent(mu, &mu_path));
                errs.extend(validate_positive_int_or_percent(ms, &ms_path));
                errs.extend(not_more_than_100_percent(mu, &mu_path));
                errs.extend(not_more_than_100_percent(ms, &ms_path));
                let has_unavailable = int_or_percent_value(mu) != 0;
                let has_surge = int_or_percent_value(ms) != 0;
                if has_unavailable && has_surge {
                    errs.push(FieldError::invalid(
                        ms_path,
                        go_intstr(ms),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !has_unavailable && !has_surge {
                    errs.push(FieldError::required(
                        mu_path,
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        other => errs.push(FieldError::not_supported(
            path,
            json!({"$go": format!("apps.DaemonSetUpdateStrategy{{Type:{other:?}}}")}),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    if let Some(r) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            i64::from(r),
            "spec.revisionHistoryLimit",
        ));
    }
    Ok(errs)
}

/// Upstream `ValidateDaemonSetStatusUpdate`.
pub fn validate_daemon_set_status(new: &Value, old: &Value) -> Errors {
    let n = |f: &str| {
        new.pointer(&format!("/status/{f}"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let mut errs = Errors::new();
    for f in [
        "currentNumberScheduled",
        "numberMisscheduled",
        "desiredNumberScheduled",
        "numberReady",
        "observedGeneration",
        "updatedNumberScheduled",
        "numberAvailable",
        "numberUnavailable",
    ] {
        errs.extend(validate_nonnegative(n(f), &format!("status.{f}")));
    }
    if let Some(c) = new
        .pointer("/status/collisionCount")
        .and_then(Value::as_i64)
    {
        errs.extend(validate_nonnegative(c, "status.collisionCount"));
    }
    errs.extend(collision_count_not_decremented(new, old));
    errs
}

/// Upstream `ValidateControllerRevision` (after ObjectMeta): data is mandatory, revision
/// non-negative.
pub fn validate_controller_revision(obj: &Value) -> Errors {
    let mut errs = Errors::new();
    if obj.get("data").is_none_or(Value::is_null) {
        errs.push(FieldError::required("data", "data is mandatory"));
    }
    errs.extend(validate_nonnegative(
        obj.get("revision").and_then(Value::as_i64).unwrap_or(0),
        "revision",
    ));
    errs
}

/// Upstream `ValidateControllerRevisionUpdate`'s immutable data.
pub fn validate_controller_revision_update(new: &Value, old: &Value) -> Errors {
    if new.get("data") == old.get("data") {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            "data",
            json!({"$go": "runtime.RawExtension{...}"}),
            IMMUTABLE_MSG,
        )]
    }
}
