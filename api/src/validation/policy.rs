//! `policy/v1` PodDisruptionBudget validation (upstream `pkg/apis/policy/validation`:
//! `ValidatePodDisruptionBudgetSpec`, `ValidatePodDisruptionBudgetStatusUpdate`) and the
//! `metav1.Condition` rules its status uses (`ValidateConditions` of
//! `apimachinery/pkg/apis/meta/v1/validation`).
//!
//! Start at [`validate_pod_disruption_budget`] (create and update: the spec only; ObjectMeta is
//! the generic path-segment check, run after it as `rest.BeforeCreate` does) and
//! [`validate_pod_disruption_budget_status`].

use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::apps::{validate_label_selector, validate_positive_int_or_percent};
use super::names::{is_qualified_name, regex_error};
use super::{Errors, child, index, typed, validate_nonnegative};
use crate::status::{ApiError, FieldError};

/// The `unhealthyPodEvictionPolicy` values, sorted as upstream's `sets.List()`.
pub const UNHEALTHY_POD_EVICTION_POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];

/// Upstream `IsNotMoreThan100Percent`.
fn not_more_than_100_percent(v: &IntOrString, path: &str) -> Errors {
    match v {
        IntOrString::String(_) if super::apps::int_or_percent_value(v) > 100 => {
            vec![FieldError::invalid(
                path,
                super::apps::go_intstr(v),
                "must not be greater than 100%",
            )]
        }
        _ => Vec::new(),
    }
}

/// Go's `%#v` of the internal spec struct, as `field.Invalid(spec, …)` prints it. Upstream's
/// pointer fields print as addresses, which differ on every run; non-nil ones are shown with
/// a fixed placeholder address.
fn go_spec(spec: &PodDisruptionBudgetSpec) -> Value {
    fn ptr<T>(v: &Option<T>, ty: &str) -> String {
        match v {
            Some(_) => format!("(*{ty})(0xc000000000)"),
            None => format!("(*{ty})(nil)"),
        }
    }
    json!({"$go": format!(
        "policy.PodDisruptionBudgetSpec{{MinAvailable:{}, Selector:{}, MaxUnavailable:{}, UnhealthyPodEvictionPolicy:{}}}",
        ptr(&spec.min_available, "intstr.IntOrString"),
        ptr(&spec.selector, "v1.LabelSelector"),
        ptr(&spec.max_unavailable, "intstr.IntOrString"),
        ptr(&spec.unhealthy_pod_eviction_policy, "policy.UnhealthyPodEvictionPolicyType"),
    )})
}

/// Upstream `ValidatePodDisruptionBudgetSpec` at `spec`: minAvailable xor maxUnavailable,
/// each a non-negative int or a percent of at most 100%, a valid selector, a supported
/// `unhealthyPodEvictionPolicy`.
pub fn validate_pod_disruption_budget(obj: &Value) -> Result<Errors, ApiError> {
    let spec: PodDisruptionBudgetSpec = match obj.get("spec") {
        Some(s) if !s.is_null() => typed(s)?,
        _ => PodDisruptionBudgetSpec::default(),
    };
    let mut errs = Errors::new();
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errs.push(FieldError::invalid(
            "spec",
            go_spec(&spec),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (field, v) in [
        ("minAvailable", &spec.min_available),
        ("maxUnavailable", &spec.max_unavailable),
    ] {
        if let Some(v) = v {
            let path = child("spec", field);
            errs.extend(validate_positive_int_or_percent(v, &path));
            errs.extend(not_more_than_100_percent(v, &path));
        }
    }
    if let Some(sel) = &spec.selector {
        errs.extend(validate_label_selector(sel, "spec.selector"));
    }
    if let Some(p) = &spec.unhealthy_pod_eviction_policy
        && !UNHEALTHY_POD_EVICTION_POLICIES.contains(&p.as_str())
    {
        errs.push(FieldError::not_supported(
            "spec.unhealthyPodEvictionPolicy",
            p.as_str(),
            UNHEALTHY_POD_EVICTION_POLICIES,
        ));
    }
    Ok(errs)
}

/// Upstream `ValidatePodDisruptionBudgetStatusUpdate` for policy/v1: the conditions, then the
/// four counters non-negative.
pub fn validate_pod_disruption_budget_status(new: &Value) -> Errors {
    let status = &new["status"];
    let conditions = status
        .get("conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut errs = validate_conditions(conditions, "status.conditions");
    for field in [
        "disruptionsAllowed",
        "currentHealthy",
        "desiredHealthy",
        "expectedPods",
    ] {
        let v = status.get(field).and_then(Value::as_i64).unwrap_or(0);
        errs.extend(validate_nonnegative(v, &child("status", field)));
    }
    errs
}

/// The fields of one `metav1.Condition` the rules read.
struct Cond<'a> {
    type_: &'a str,
    status: &'a str,
    reason: &'a str,
    message: &'a str,
    observed_generation: Option<i64>,
    time_set: bool,
}

const REASON_FMT: &str = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?";
const REASON_MSG: &str = "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'";

/// Whether `s` matches `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`.
fn is_condition_reason(s: &str) -> bool {
    let b = s.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    first.is_ascii_alphabetic()
        && (last.is_ascii_alphanumeric() || *last == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b',' | b':'))
}

/// Upstream `metav1validation.ValidateConditions`: no duplicate types, and each condition
/// with a qualified-name type, a True/False/Unknown status, a non-negative
/// observedGeneration, a lastTransitionTime, a well-formed reason of at most 1024 bytes and
/// a message of at most 32768.
pub fn validate_conditions(conditions: &[Value], path: &str) -> Errors {
    let mut errs = Errors::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let at = index(path, i);
        let s = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or("");
        let c = Cond {
            type_: s("type"),
            status: s("status"),
            reason: s("reason"),
            message: s("message"),
            observed_generation: c.get("observedGeneration").and_then(Value::as_i64),
            time_set: !s("lastTransitionTime").is_empty(),
        };
        if !seen.insert(c.type_) {
            errs.push(FieldError::duplicate(child(&at, "type"), c.type_));
        }
        for msg in is_qualified_name(c.type_) {
            errs.push(FieldError::invalid(child(&at, "type"), c.type_, msg));
        }
        if !matches!(c.status, "True" | "False" | "Unknown") {
            errs.push(FieldError::not_supported(
                child(&at, "status"),
                c.status,
                &["False", "True", "Unknown"],
            ));
        }
        if c.observed_generation.unwrap_or(0) < 0 {
            errs.push(FieldError::invalid(
                child(&at, "observedGeneration"),
                c.observed_generation.unwrap_or(0),
                "must be greater than or equal to zero",
            ));
        }
        if !c.time_set {
            errs.push(FieldError::required(
                child(&at, "lastTransitionTime"),
                "must be set",
            ));
        }
        if c.reason.is_empty() {
            errs.push(FieldError::required(child(&at, "reason"), "must be set"));
        } else {
            if !is_condition_reason(c.reason) {
                errs.push(FieldError::invalid(
                    child(&at, "reason"),
                    c.reason,
                    regex_error(
                        REASON_MSG,
                        REASON_FMT,
                        &[
                            "my_name",
                            "MY_NAME",
                            "MyName",
                            "ReasonA,ReasonB",
                            "ReasonA:ReasonB",
                        ],
                    ),
                ));
            }
            if c.reason.len() > 1024 {
                errs.push(FieldError::too_long(child(&at, "reason"), 1024));
            }
        }
        if c.message.len() > 32 * 1024 {
            errs.push(FieldError::too_long(child(&at, "message"), 32 * 1024));
        }
    }
    errs
}
