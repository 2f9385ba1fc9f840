//! The mutating admission plugins a default API server runs on pod creation, for the fields
//! they add that paddock's behaviour depends on or that `kubectl get -o yaml` shows:
//! `ServiceAccount` (`serviceAccountName: default`), `Priority` (`priority: 0`,
//! `preemptionPolicy`) and `DefaultTolerationSeconds` (300 s tolerations for
//! `node.kubernetes.io/not-ready` and `node.kubernetes.io/unreachable`, which drive
//! taint-based eviction after a node failure; `plugin/pkg/admission/defaulttolerationseconds`).
//!
//! Call [`admit_create`] after [`crate::object::decode`] and before validation, on creates only.
//! [`admit_runtime_class`] is the `RuntimeClass` plugin (overhead and scheduling from the
//! class a pod names); its caller looks the class up.
//! The service-account token volume is not added: paddock issues no service-account tokens.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Toleration};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
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

/// The `DefaultTolerationSeconds` plugin's settings: the kube-apiserver flags
/// `--default-not-ready-toleration-seconds` and `--default-unreachable-toleration-seconds`
/// ([`Default`]: 300 each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultTolerationSeconds {
    /// Seconds of the added `node.kubernetes.io/not-ready` toleration.
    pub not_ready: i64,
    /// Seconds of the added `node.kubernetes.io/unreachable` toleration.
    pub unreachable: i64,
}

impl Default for DefaultTolerationSeconds {
    fn default() -> Self {
        DefaultTolerationSeconds {
            not_ready: DEFAULT_TOLERATION_SECONDS,
            unreachable: DEFAULT_TOLERATION_SECONDS,
        }
    }
}

/// Applies the create-time admission mutations for `info`'s kind (only Pods have any);
/// `seconds` sets the `DefaultTolerationSeconds` plugin.
pub fn admit_create(
    info: &ResourceInfo,
    obj: &mut Value,
    seconds: &DefaultTolerationSeconds,
) -> Result<(), ApiError> {
    if info.kind != "Pod" || !info.group.is_empty() {
        return Ok(());
    }
    let mut pod: Pod = crate::object::typed(obj)?;
    // ServiceAccount admission leaves mirror pods alone (and refuses them an account).
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let spec = pod.spec.get_or_insert_with(Default::default);
    // ServiceAccount admission; the v1 conversion mirrors it into the deprecated field.
    if !mirror
        && spec
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
    for (key, seconds) in [
        (NOT_READY_TAINT, seconds.not_ready),
        (UNREACHABLE_TAINT, seconds.unreachable),
    ] {
        let covered = tolerations.iter().any(|t| tolerates_no_execute(t, key));
        if !covered {
            tolerations.push(Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".to_string()),
                effect: Some("NoExecute".to_string()),
                toleration_seconds: Some(seconds),
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

/// The RuntimeClass a pod names, if any (the caller looks it up for [`admit_runtime_class`]).
pub fn runtime_class_name(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/runtimeClassName")
        .and_then(Value::as_str)
}

/// The `RuntimeClass` admission plugin on a pod create (upstream
/// `plugin/pkg/admission/runtimeclass`), mutating then validating: a pod naming a class that
/// does not exist is refused; the class's `overhead.podFixed` becomes the pod's
/// `spec.overhead` (a different one set by the client is refused); its
/// `scheduling.nodeSelector` is merged into the pod's (a conflicting value is refused) and its
/// tolerations merged as upstream's `MergeTolerations` does. `class` is the class
/// [`runtime_class_name`] names (`None`: not found, or the pod names none).
pub fn admit_runtime_class(
    info: &ResourceInfo,
    obj: &mut Value,
    class: Option<&RuntimeClass>,
) -> Result<(), ApiError> {
    if info.kind != "Pod" || !info.group.is_empty() {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let forbidden = |msg: String| ApiError::forbidden(info, &name, &msg);
    let Some(named) = runtime_class_name(obj).map(str::to_string) else {
        // Validate: validateOverhead without a class.
        if obj.pointer("/spec/overhead").is_some_and(|o| !o.is_null()) {
            return Err(forbidden(
                "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"
                    .into(),
            ));
        }
        return Ok(());
    };
    let Some(class) = class else {
        return Err(forbidden(format!(
            "pod rejected: RuntimeClass {named:?} not found"
        )));
    };
    let mut pod: Pod = crate::object::typed(obj)?;
    let spec = pod.spec.get_or_insert_with(Default::default);
    let fixed = class.overhead.as_ref().and_then(|o| o.pod_fixed.clone());
    // Admit: setOverhead.
    if let Some(fixed) = &fixed {
        if spec
            .overhead
            .as_ref()
            .is_some_and(|o| !same_resources(o, fixed))
        {
            return Err(forbidden(
                "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead".into(),
            ));
        }
        spec.overhead = Some(fixed.clone());
    }
    // Admit: setScheduling.
    if let Some(s) = &class.scheduling {
        if let Some(want) = &s.node_selector {
            match spec.node_selector.as_mut() {
                None => spec.node_selector = Some(want.clone()),
                Some(have) => {
                    for (k, v) in want {
                        if let Some(p) = have.get(k).filter(|p| *p != v) {
                            return Err(forbidden(format!(
                                "conflict: runtimeClass.scheduling.nodeSelector[{k}] = {v}; pod.spec.nodeSelector[{k}] = {p}"
                            )));
                        }
                        have.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let merged = merge_tolerations(
            spec.tolerations.take().unwrap_or_default(),
            s.tolerations.clone().unwrap_or_default(),
        );
        spec.tolerations = (!merged.is_empty()).then_some(merged);
    }
    // Validate: validateOverhead.
    if fixed.is_none() && spec.overhead.is_some() {
        return Err(forbidden(
            "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"
                .into(),
        ));
    }
    *obj = serde_json::to_value(&pod).map_err(ApiError::internal)?;
    Ok(())
}

/// `apiequality.Semantic.DeepEqual` of two resource lists: same names, equal quantities
/// (`1` equals `1000m`).
fn same_resources(a: &BTreeMap<String, ApiQuantity>, b: &BTreeMap<String, ApiQuantity>) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, q)| {
            b.get(k).is_some_and(|r| {
                match (
                    crate::quantity::Quantity::parse(&q.0),
                    crate::quantity::Quantity::parse(&r.0),
                ) {
                    (Ok(x), Ok(y)) => x == y,
                    _ => q.0 == r.0,
                }
            })
        })
}

/// Upstream `tolerations.MergeTolerations`: both lists in order, leaving out any toleration
/// that another one tolerates a superset of (of two equal ones, the first is kept).
fn merge_tolerations(first: Vec<Toleration>, second: Vec<Toleration>) -> Vec<Toleration> {
    let all: Vec<Toleration> = first.into_iter().chain(second).collect();
    let mut merged: Vec<Toleration> = Vec::new();
    for (i, t) in all.iter().enumerate() {
        if merged.iter().any(|m| is_superset(m, t)) {
            continue;
        }
        if all[i + 1..].iter().any(|t2| t2 != t && is_superset(t2, t)) {
            continue;
        }
        merged.push(t.clone());
    }
    merged
}

/// Upstream `isSuperset`: whether `ss` tolerates everything `t` does.
fn is_superset(ss: &Toleration, t: &Toleration) -> bool {
    if ss == t {
        return true;
    }
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let (ss_key, ss_op, ss_effect) = (s(&ss.key), s(&ss.operator), s(&ss.effect));
    // An empty key with Exists matches all keys and values.
    if s(&t.key) != ss_key && (!ss_key.is_empty() || ss_op != "Exists") {
        return false;
    }
    // An empty effect matches all effects.
    if s(&t.effect) != ss_effect && !ss_effect.is_empty() {
        return false;
    }
    if ss_effect == "NoExecute"
        && let Some(limit) = ss.toleration_seconds
        && t.toleration_seconds.is_none_or(|secs| secs > limit)
    {
        return false;
    }
    match ss_op.as_str() {
        "Equal" | "" => s(&t.operator) == "Equal" && s(&t.value) == s(&ss.value),
        "Exists" => true,
        _ => false,
    }
}

/// The annotation marking a StorageClass the default (`storageclass.kubernetes.io/…`).
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// Its beta spelling, still honoured upstream.
pub const BETA_DEFAULT_CLASS_ANNOTATION: &str = "storageclass.beta.kubernetes.io/is-default-class";
/// The finalizer `StorageObjectInUseProtection` puts on every claim.
pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";
/// The finalizer `StorageObjectInUseProtection` puts on every volume.
pub const PV_PROTECTION_FINALIZER: &str = "kubernetes.io/pv-protection";

/// Whether a StorageClass is marked default (upstream `storageutil.IsDefaultAnnotation`).
pub fn is_default_class(class: &Value) -> bool {
    let ann = |k: &str| {
        class
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            == Some("true")
    };
    ann(DEFAULT_CLASS_ANNOTATION) || ann(BETA_DEFAULT_CLASS_ANNOTATION)
}

/// The default StorageClass among `classes` (upstream `util.GetDefaultClass`): of those
/// marked default, the newest; equal ages go to the name that sorts first.
pub fn default_class(classes: &[std::sync::Arc<Value>]) -> Option<String> {
    newest_default(classes, is_default_class)
}

/// The newest of `classes` that `is_default` picks; equal ages go to the name that sorts
/// first (how both default-class admission plugins choose among several defaults).
fn newest_default(
    classes: &[std::sync::Arc<Value>],
    is_default: fn(&Value) -> bool,
) -> Option<String> {
    let mut defaults: Vec<(&str, &str)> = classes
        .iter()
        .filter(|c| is_default(c))
        .map(|c| {
            (
                c.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                c.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            )
        })
        .collect();
    defaults.sort_by(|a, b| b.0.cmp(a.0).then(a.1.cmp(b.1)));
    defaults.first().map(|(_, n)| n.to_string())
}

/// The storage admission plugins on a create: `DefaultStorageClass` (a claim that names no
/// class, neither by field nor by the beta annotation, gets the default class; an explicit
/// `""` means "no class" and is kept) and `StorageObjectInUseProtection` (every claim gets
/// `kubernetes.io/pvc-protection`, every volume `kubernetes.io/pv-protection`). `classes`
/// are the StorageClasses that exist (looked up by the caller, only for claims).
pub fn admit_storage(info: &ResourceInfo, obj: &mut Value, classes: &[std::sync::Arc<Value>]) {
    if !info.group.is_empty() {
        return;
    }
    let finalizer = match info.kind {
        "PersistentVolumeClaim" => {
            let has_class = obj
                .pointer("/spec/storageClassName")
                .is_some_and(|v| !v.is_null())
                || obj
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
                    .is_some();
            if !has_class
                && let Some(name) = default_class(classes)
                && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
            {
                spec.insert("storageClassName".into(), Value::String(name));
            }
            PVC_PROTECTION_FINALIZER
        }
        "PersistentVolume" => PV_PROTECTION_FINALIZER,
        _ => return,
    };
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list = meta
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    if let Some(a) = list.as_array_mut()
        && !a.iter().any(|f| f.as_str() == Some(finalizer))
    {
        a.push(Value::String(finalizer.to_string()));
    }
}

/// Whether an IngressClass is marked default (`ingressclass.kubernetes.io/is-default-class`
/// is exactly `"true"`).
pub fn is_default_ingress_class(class: &Value) -> bool {
    class
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(crate::validation::networking::DEFAULT_INGRESS_CLASS_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true")
}

/// The `DefaultIngressClass` admission plugin on an Ingress create
/// (`plugin/pkg/admission/network/defaultingressclass`): an Ingress that sets no
/// `spec.ingressClassName` (an explicit `""` counts as set) and has no legacy
/// `kubernetes.io/ingress.class` annotation gets the default IngressClass's name; of several
/// defaults the newest wins (equal ages: the name sorting first). `classes` are the
/// IngressClasses that exist (looked up by the caller).
pub fn admit_ingress_class(
    info: &ResourceInfo,
    obj: &mut Value,
    classes: &[std::sync::Arc<Value>],
) {
    if info.kind != "Ingress" || info.group != crate::registry::NETWORKING_GROUP {
        return;
    }
    if obj
        .pointer("/spec/ingressClassName")
        .is_some_and(|v| !v.is_null())
    {
        return;
    }
    let annotated = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(crate::validation::networking::INGRESS_CLASS_ANNOTATION))
        .is_some();
    if annotated {
        return;
    }
    let Some(name) = newest_default(classes, is_default_ingress_class) else {
        return;
    };
    if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = Value::Object(Default::default());
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("ingressClassName".into(), Value::String(name));
    }
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
        admit_create(info, &mut p, &DefaultTolerationSeconds::default()).unwrap();
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
        admit_create(info, &mut all, &DefaultTolerationSeconds::default()).unwrap();
        assert_eq!(all["spec"]["tolerations"], json!([{"operator": "Exists"}]));
        // Other kinds are untouched.
        let svc = by_kind("v1", "Service").unwrap();
        let mut s = json!({"spec": {}});
        admit_create(svc, &mut s, &DefaultTolerationSeconds::default()).unwrap();
        assert_eq!(s, json!({"spec": {}}));
        // The API server's flags set the seconds of each added toleration.
        let mut fast = p.clone();
        fast["spec"]["tolerations"] = json!([]);
        let flags = DefaultTolerationSeconds {
            not_ready: 10,
            unreachable: 12,
        };
        admit_create(info, &mut fast, &flags).unwrap();
        assert_eq!(
            fast["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 12}
            ])
        );
    }

    fn tol(v: Value) -> Toleration {
        serde_json::from_value(v).unwrap()
    }

    /// Upstream's `TestMergeTolerations` cases that matter here: a superset replaces what it
    /// covers, equal ones keep the first, unrelated ones are all kept in order.
    #[test]
    fn tolerations_merge_as_upstream() {
        let all_keys = tol(json!({"operator": "Exists"}));
        let foo =
            tol(json!({"key": "foo", "operator": "Equal", "value": "bar", "effect": "NoSchedule"}));
        let foo_any = tol(json!({"key": "foo", "operator": "Exists"}));
        let other = tol(
            json!({"key": "other", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}),
        );
        let other_longer = tol(
            json!({"key": "other", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 20}),
        );
        assert_eq!(
            merge_tolerations(vec![foo.clone()], vec![all_keys.clone()]),
            vec![all_keys.clone()]
        );
        assert_eq!(
            merge_tolerations(vec![foo.clone()], vec![foo_any.clone()]),
            vec![foo_any.clone()]
        );
        assert_eq!(
            merge_tolerations(vec![foo.clone()], vec![foo.clone()]),
            vec![foo.clone()]
        );
        assert_eq!(
            merge_tolerations(vec![foo.clone()], vec![other.clone()]),
            vec![foo.clone(), other.clone()]
        );
        // A toleration with a shorter NoExecute window is covered by a longer one, not the
        // other way round.
        assert_eq!(
            merge_tolerations(vec![other.clone()], vec![other_longer.clone()]),
            vec![other_longer.clone()]
        );
    }

    #[test]
    fn runtime_class_admission() {
        let info = by_kind("v1", "Pod").unwrap();
        let pod = |extra: Value| {
            let mut spec =
                json!({"runtimeClassName": "rc", "containers": [{"name": "c", "image": "x"}]});
            for (k, v) in extra.as_object().unwrap() {
                spec[k] = v.clone();
            }
            json!({"metadata": {"name": "p", "namespace": "d"}, "spec": spec})
        };
        let class: RuntimeClass = serde_json::from_value(json!({
            "metadata": {"name": "rc"}, "handler": "h",
            "overhead": {"podFixed": {"cpu": "100m"}},
            "scheduling": {"nodeSelector": {"a": "1"}, "tolerations": [{"key": "t", "operator": "Exists"}]},
        }))
        .unwrap();
        // Missing class.
        let e = admit_runtime_class(info, &mut pod(json!({})), None).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            r#"pods "p" is forbidden: pod rejected: RuntimeClass "rc" not found"#
        );
        // Overhead and scheduling copied in; an equal overhead written as another quantity
        // is accepted.
        let mut p = pod(json!({"overhead": {"cpu": "0.1"}, "nodeSelector": {"b": "2"}}));
        admit_runtime_class(info, &mut p, Some(&class)).unwrap();
        assert_eq!(p["spec"]["overhead"], json!({"cpu": "100m"}));
        assert_eq!(p["spec"]["nodeSelector"], json!({"a": "1", "b": "2"}));
        assert_eq!(
            p["spec"]["tolerations"],
            json!([{"key": "t", "operator": "Exists"}])
        );
        // Conflicts.
        let e = admit_runtime_class(
            info,
            &mut pod(json!({"overhead": {"cpu": "1"}})),
            Some(&class),
        )
        .unwrap_err();
        assert!(
            e.message.ends_with(
                "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
            ),
            "{}",
            e.message
        );
        let e = admit_runtime_class(
            info,
            &mut pod(json!({"nodeSelector": {"a": "2"}})),
            Some(&class),
        )
        .unwrap_err();
        assert!(e.message.ends_with("conflict: runtimeClass.scheduling.nodeSelector[a] = 1; pod.spec.nodeSelector[a] = 2"), "{}", e.message);
        // An overhead without a class that defines one.
        let mut p = pod(json!({"overhead": {"cpu": "1"}}));
        p["spec"]
            .as_object_mut()
            .unwrap()
            .remove("runtimeClassName");
        let e = admit_runtime_class(info, &mut p, None).unwrap_err();
        assert!(
            e.message.ends_with(
                "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"
            ),
            "{}",
            e.message
        );
        // No class, no overhead: untouched.
        let mut p = pod(json!({}));
        p["spec"]
            .as_object_mut()
            .unwrap()
            .remove("runtimeClassName");
        let before = p.clone();
        admit_runtime_class(info, &mut p, None).unwrap();
        assert_eq!(p, before);
    }

    #[test]
    fn claims_get_the_default_class_and_protection() {
        use std::sync::Arc;
        let pvc = crate::registry::by_kind("v1", "PersistentVolumeClaim").unwrap();
        let class = |name: &str, default: bool, created: &str| {
            Arc::new(
                json!({"metadata": {"name": name, "creationTimestamp": created,
                "annotations": {DEFAULT_CLASS_ANNOTATION: if default { "true" } else { "false" }}}}),
            )
        };
        let classes = vec![
            class("old", true, "2026-01-01T00:00:00Z"),
            class("new", true, "2026-02-01T00:00:00Z"),
            class("plain", false, "2026-03-01T00:00:00Z"),
        ];
        assert_eq!(default_class(&classes).as_deref(), Some("new"));
        let mut c = json!({"metadata": {"name": "c"}, "spec": {}});
        admit_storage(pvc, &mut c, &classes);
        assert_eq!(c["spec"]["storageClassName"], "new");
        assert_eq!(
            c["metadata"]["finalizers"],
            json!([PVC_PROTECTION_FINALIZER])
        );
        // An explicit "" (no class) and the beta annotation are kept.
        let mut c = json!({"metadata": {"name": "c"}, "spec": {"storageClassName": ""}});
        admit_storage(pvc, &mut c, &classes);
        assert_eq!(c["spec"]["storageClassName"], "");
        let mut c = json!({"metadata": {"name": "c", "annotations":
            {"volume.beta.kubernetes.io/storage-class": "x"}}, "spec": {}});
        admit_storage(pvc, &mut c, &classes);
        assert!(c["spec"].get("storageClassName").is_none());
        // No default class: nothing set.
        let mut c = json!({"metadata": {"name": "c"}, "spec": {}});
        admit_storage(pvc, &mut c, &classes[2..]);
        assert!(c["spec"].get("storageClassName").is_none());
        let pv = crate::registry::by_kind("v1", "PersistentVolume").unwrap();
        let mut v = json!({"metadata": {"name": "v", "finalizers": [PV_PROTECTION_FINALIZER]}});
        admit_storage(pv, &mut v, &[]);
        assert_eq!(
            v["metadata"]["finalizers"],
            json!([PV_PROTECTION_FINALIZER])
        );
    }

    #[test]
    fn default_ingress_class() {
        let info = by_kind("networking.k8s.io/v1", "Ingress").unwrap();
        let class = |name: &str, created: &str, default: Option<&str>| {
            let mut c = json!({"metadata": {"name": name, "creationTimestamp": created},
                "spec": {"controller": "a.io/b"}});
            if let Some(d) = default {
                c["metadata"]["annotations"] =
                    json!({"ingressclass.kubernetes.io/is-default-class": d});
            }
            std::sync::Arc::new(c)
        };
        let ing = |spec: Value, annotations: Option<Value>| {
            let mut v = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
            if let Some(a) = annotations {
                v["metadata"]["annotations"] = a;
            }
            v
        };
        let admitted = |mut v: Value, classes: &[std::sync::Arc<Value>]| {
            admit_ingress_class(info, &mut v, classes);
            v["spec"]["ingressClassName"].clone()
        };
        let classes = [
            class("old", "2026-01-01T00:00:00Z", Some("true")),
            class("new", "2026-02-01T00:00:00Z", Some("true")),
            class("newest-not-default", "2026-03-01T00:00:00Z", Some("True")),
            class("plain", "2026-03-01T00:00:00Z", None),
        ];
        // No class named: the newest default (exactly "true").
        assert_eq!(admitted(ing(json!({}), None), &classes), json!("new"));
        // No spec at all still gets one.
        let mut bare = json!({"metadata": {"name": "web"}});
        admit_ingress_class(info, &mut bare, &classes);
        assert_eq!(bare["spec"]["ingressClassName"], "new");
        // Equal ages: the name sorting first.
        let tie = [
            class("b", "2026-01-01T00:00:00Z", Some("true")),
            class("a", "2026-01-01T00:00:00Z", Some("true")),
        ];
        assert_eq!(admitted(ing(json!({}), None), &tie), json!("a"));
        // An explicit class, even "", and the legacy annotation (any value) are kept.
        assert_eq!(
            admitted(ing(json!({"ingressClassName": "x"}), None), &classes),
            json!("x")
        );
        assert_eq!(
            admitted(ing(json!({"ingressClassName": ""}), None), &classes),
            json!("")
        );
        assert_eq!(
            admitted(
                ing(json!({}), Some(json!({"kubernetes.io/ingress.class": ""}))),
                &classes
            ),
            Value::Null
        );
        // No default class: nothing set.
        assert_eq!(admitted(ing(json!({}), None), &classes[2..]), Value::Null);
        // Other kinds are left alone.
        let svc = by_kind("v1", "Service").unwrap();
        let mut v = json!({"metadata": {"name": "s"}, "spec": {}});
        admit_ingress_class(svc, &mut v, &classes);
        assert_eq!(v["spec"], json!({}));
    }
}
