//! `node.k8s.io` validation (upstream `pkg/apis/node/validation`): a RuntimeClass's handler
//! is a DNS label and never changes; its overhead follows the resource-requirement rules and
//! its scheduling the label and toleration rules.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::api::node::v1::RuntimeClass;
use serde_json::Value;

use super::names::name_is_dns1123_label;
use super::pod::{validate_resources, validate_tolerations};
use super::{Errors, IMMUTABLE_MSG, child, typed, validate_labels};
use crate::status::{ApiError, FieldError};

/// `ValidateRuntimeClass` after ObjectMeta: handler, overhead, scheduling.
pub fn validate_runtime_class(obj: &Value) -> Result<Errors, ApiError> {
    let rc: RuntimeClass = typed(obj)?;
    let mut errs = Errors::new();
    for msg in name_is_dns1123_label(&rc.handler, false) {
        errs.push(FieldError::invalid("handler", rc.handler.as_str(), msg));
    }
    if let Some(overhead) = &rc.overhead {
        // Upstream reuses ValidateResourceRequirements with the fixed overhead as limits.
        let as_limits = ResourceRequirements {
            limits: overhead.pod_fixed.clone(),
            ..Default::default()
        };
        errs.extend(validate_resources(&as_limits, "overhead"));
    }
    if let Some(s) = &rc.scheduling {
        if s.node_selector.is_some() {
            errs.extend(validate_labels(
                s.node_selector.as_ref(),
                &child("scheduling", "nodeSelector"),
            ));
        }
        errs.extend(validate_tolerations(
            s.tolerations.as_deref().unwrap_or(&[]),
            &child("scheduling", "tolerations"),
        ));
    }
    Ok(errs)
}

/// `ValidateRuntimeClassUpdate` after ObjectMeta: the handler is immutable.
pub fn validate_runtime_class_update(new: &Value, old: &Value) -> Errors {
    let mut errs = Errors::new();
    if new.get("handler") != old.get("handler") {
        errs.push(FieldError::invalid(
            "handler",
            new.get("handler").cloned().unwrap_or(Value::Null),
            IMMUTABLE_MSG,
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::object::{FieldValidation, decode, validate_create};
    use crate::registry::by_kind;

    fn check(rc: serde_json::Value) -> Result<(), String> {
        let info = by_kind("node.k8s.io/v1", "RuntimeClass").unwrap();
        let obj = decode(info, rc, FieldValidation::Strict).unwrap().value;
        validate_create(info, &obj).map_err(|e| e.message)
    }

    #[test]
    fn runtime_classes_validate_as_upstream() {
        assert_eq!(
            check(json!({"metadata": {"name": "ok"}, "handler": "runc",
                "overhead": {"podFixed": {"cpu": "10m"}},
                "scheduling": {"nodeSelector": {"a": "b"}, "tolerations": [{"operator": "Exists"}]}})),
            Ok(())
        );
        // Overhead errors carry ValidateResourceRequirements' `limits` path under `overhead`.
        assert_eq!(
            check(json!({"metadata": {"name": "neg"}, "handler": "runc",
                "overhead": {"podFixed": {"cpu": "-1"}}})),
            Err(r#"RuntimeClass.node.k8s.io "neg" is invalid: overhead.limits[cpu]: Invalid value: "-1": must be greater than or equal to 0"#.into())
        );
        assert_eq!(
            check(json!({"metadata": {"name": "tol"}, "handler": "runc",
                "scheduling": {"tolerations": [{"key": "", "operator": "Equal"}]}})),
            Err(r#"RuntimeClass.node.k8s.io "tol" is invalid: scheduling.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys""#.into())
        );
        let e = check(json!({"metadata": {"name": "h"}, "handler": ""})).unwrap_err();
        assert!(e.contains("handler: Invalid value: \"\""), "{e}");
    }
}
