//! The mutating admission plugins a default API server runs on pod creation, for the fields
//! they add that paddock's behaviour depends on or that `kubectl get -o yaml` shows:
//! `ServiceAccount` (`serviceAccountName: default`), `Priority` (`priority: 0`,
//! `preemptionPolicy`) and `DefaultTolerationSeconds` (300 s tolerations for
//! `node.kubernetes.io/not-ready` and `node.kubernetes.io/unreachable`, which drive
//! taint-based eviction after a node failure; `plugin/pkg/admission/defaulttolerationseconds`).
//!
//! Call [`admit_create`] after [`crate::object::decode`] and before validation, on creates only.
//! The service-account token volume is not added: paddock issues no service-account tokens.

use k8s_openapi::api::core::v1::{Pod, Toleration};
use serde_json::Value;

use crate::registry::ResourceInfo;
use crate::status::ApiError;

/// Seconds a pod tolerates a not-ready or unreachable node before eviction (the plugin's
/// `--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`).
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Taint keys the default tolerations cover.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// See [`NOT_READY_TAINT`].
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

/// Applies the create-time admission mutations for `info`'s kind (only Pods have any).
pub fn admit_create(info: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
    if info.kind != "Pod" || !info.group.is_empty() {
        return Ok(());
    }
    let mut pod: Pod = crate::object::typed(obj)?;
    let spec = pod.spec.get_or_insert_with(Default::default);
    // ServiceAccount admission; the v1 conversion mirrors it into the deprecated field.
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or("")
        .is_empty()
    {
        spec.service_account_name = Some("default".to_string());
    }
    spec.service_account.clone_from(&spec.service_account_name);
    // Priority admission without PriorityClasses: the global default priority 0.
    if spec.priority_class_name.as_deref().unwrap_or("").is_empty() && spec.priority.is_none() {
        spec.priority = Some(0);
    }
    if spec.preemption_policy.is_none() {
        spec.preemption_policy = Some("PreemptLowerPriority".to_string());
    }
    // DefaultTolerationSeconds: add each toleration unless one already covers the taint.
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in [NOT_READY_TAINT, UNREACHABLE_TAINT] {
        let covered = tolerations.iter().any(|t| tolerates_no_execute(t, key));
        if !covered {
            tolerations.push(Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".to_string()),
                effect: Some("NoExecute".to_string()),
                toleration_seconds: Some(DEFAULT_TOLERATION_SECONDS),
                value: None,
            });
        }
    }
    *obj = serde_json::to_value(&pod).map_err(ApiError::internal)?;
    Ok(())
}

/// Whether `t` tolerates a `NoExecute` taint with `key` (any value), as the plugin checks.
fn tolerates_no_execute(t: &Toleration, key: &str) -> bool {
    let effect_ok = t
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == "NoExecute");
    let key_ok = match t.key.as_deref().unwrap_or("") {
        "" => t.operator.as_deref() == Some("Exists"),
        k => k == key,
    };
    effect_ok && key_ok
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::object::{FieldValidation, decode};
    use crate::registry::by_kind;

    #[test]
    fn pod_admission_fields() {
        let info = by_kind("v1", "Pod").unwrap();
        let mut p = decode(
            info,
            json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {
                "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}],
                "containers": [{"name": "c", "image": "x"}]}}),
            FieldValidation::Strict,
        )
        .unwrap()
        .value;
        admit_create(info, &mut p).unwrap();
        let spec = &p["spec"];
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["serviceAccount"], "default");
        assert_eq!(spec["priority"], 0);
        assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(
            spec["tolerations"],
            json!([
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ])
        );
        crate::object::validate_create(info, &p).unwrap();
        // A toleration of everything covers both taints.
        let mut all = p.clone();
        all["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
        admit_create(info, &mut all).unwrap();
        assert_eq!(all["spec"]["tolerations"], json!([{"operator": "Exists"}]));
        // Other kinds are untouched.
        let svc = by_kind("v1", "Service").unwrap();
        let mut s = json!({"spec": {}});
        admit_create(svc, &mut s).unwrap();
        assert_eq!(s, json!({"spec": {}}));
    }
}
