//! Storage validation with upstream's messages and field paths: PersistentVolume and
//! PersistentVolumeClaim (`ValidatePersistentVolume*`, `ValidatePersistentVolumeClaim*` in
//! `pkg/apis/core/validation/validation.go`) and StorageClass
//! (`pkg/apis/storage/validation/validation.go`). Also the claim-spec rules a pod's
//! `ephemeral` volume template gets ([`validate_claim_spec`]).
//!
//! Start at [`validate_persistent_volume`], [`validate_persistent_volume_claim`] and
//! [`validate_storage_class`]; each has its `…_update`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    NodeSelector, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use serde_json::{Value, json};

use super::apps::validate_label_selector;
use super::volume::validate_path_no_backsteps;
use super::{
    Errors, IMMUTABLE_MSG, NEGATIVE_MSG, child, index, is_dns1123_subdomain, is_qualified_name,
    key, typed,
};
use crate::quantity::Quantity;
use crate::status::{ApiError, FieldError};

/// The access modes upstream supports, in its order.
pub const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];
const CLASS_RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];
const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];
/// Upstream's PV source fields (the JSON names), for "exactly one volume type".
const PV_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

/// The message of a claim spec change upstream forbids.
pub const PVC_IMMUTABLE_MSG: &str = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

/// Upstream `ValidateClassName` (a DNS subdomain) for `storageClassName`.
fn validate_class_name(name: &str, path: &str) -> Errors {
    is_dns1123_subdomain(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect()
}

/// The access-mode rules PVs and claims share (`validatePersistentVolumeAccessModes`-alike):
/// each supported, ReadWriteOncePod alone.
fn validate_access_modes(modes: &[String], path: &str, required_msg: &str) -> Errors {
    let mut errs = Errors::new();
    if modes.is_empty() {
        errs.push(FieldError::required(path, required_msg));
    }
    let mut found_rwop = false;
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(path, m.as_str(), ACCESS_MODES));
        }
        if m == "ReadWriteOncePod" {
            found_rwop = true;
        }
    }
    if found_rwop && modes.len() > 1 {
        errs.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

/// `ValidateResourceQuantityValue` + `ValidatePositiveQuantityValue` of a storage size.
fn validate_positive_quantity(q: &ApiQuantity, path: &str) -> Errors {
    let Ok(v) = Quantity::parse(&q.0) else {
        return vec![FieldError::invalid(
            path,
            q.0.as_str(),
            "must be a valid quantity",
        )];
    };
    let mut errs = Errors::new();
    if v.nanos() < 0 {
        errs.push(FieldError::invalid(path, q.0.as_str(), NEGATIVE_MSG));
    }
    if v.nanos() <= 0 {
        errs.push(FieldError::invalid(
            path,
            q.0.as_str(),
            "must be greater than zero",
        ));
    }
    errs
}

/// Upstream `ValidateNodeSelector` (`required` node affinity of a volume).
fn validate_node_selector(sel: &NodeSelector, path: &str) -> Errors {
    let tpath = child(path, "nodeSelectorTerms");
    if sel.node_selector_terms.is_empty() {
        return vec![FieldError::required(
            tpath,
            "must have at least one node selector term",
        )];
    }
    let mut errs = Errors::new();
    for (i, term) in sel.node_selector_terms.iter().enumerate() {
        let term_path = index(&tpath, i);
        for (j, r) in term.match_expressions.iter().flatten().enumerate() {
            let rpath = index(&child(&term_path, "matchExpressions"), j);
            let n = r.values.as_ref().map_or(0, Vec::len);
            match r.operator.as_str() {
                "In" | "NotIn" if n == 0 => errs.push(FieldError::required(
                    child(&rpath, "values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                )),
                "Exists" | "DoesNotExist" if n > 0 => errs.push(FieldError::forbidden(
                    child(&rpath, "values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )),
                "Gt" | "Lt" if n != 1 => errs.push(FieldError::required(
                    child(&rpath, "values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
                other => errs.push(FieldError::invalid(
                    child(&rpath, "operator"),
                    other,
                    "not a valid selector operator",
                )),
            }
            for m in is_qualified_name(&r.key) {
                errs.push(FieldError::invalid(child(&rpath, "key"), r.key.as_str(), m));
            }
        }
    }
    errs
}

/// `ValidatePersistentVolumeSpec` (after ObjectMeta).
pub fn validate_persistent_volume(obj: &Value) -> Result<Errors, ApiError> {
    let pv: PersistentVolume = typed(obj)?;
    let spec = pv.spec.unwrap_or_default();
    Ok(validate_pv_spec(
        &spec,
        obj.get("spec").unwrap_or(&Value::Null),
    ))
}

fn validate_pv_spec(spec: &PersistentVolumeSpec, raw: &Value) -> Errors {
    let path = "spec";
    let mut errs = validate_access_modes(
        spec.access_modes.as_deref().unwrap_or(&[]),
        &child(path, "accessModes"),
        "must specify at least 1 access mode",
    );
    let cap_path = child(path, "capacity");
    let capacity = spec.capacity.clone().unwrap_or_default();
    if capacity.is_empty() {
        errs.push(FieldError::required(cap_path.clone(), ""));
    }
    if !capacity.is_empty() && (!capacity.contains_key("storage") || capacity.len() > 1) {
        errs.push(FieldError::not_supported(
            cap_path.clone(),
            json!(capacity),
            &["storage"],
        ));
    }
    for (r, q) in &capacity {
        errs.extend(validate_positive_quantity(q, &key(&cap_path, r)));
    }
    if let Some(sc) = spec.storage_class_name.as_deref()
        && !sc.is_empty()
    {
        errs.extend(validate_class_name(sc, &child(path, "storageClassName")));
    }
    let present: Vec<&str> = PV_SOURCES
        .iter()
        .copied()
        .filter(|f| raw.get(*f).is_some_and(|v| !v.is_null()))
        .collect();
    match present.len() {
        0 => errs.push(FieldError::required(path, "must specify a volume type")),
        1 => {}
        _ => {
            for extra in &present[1..] {
                errs.push(FieldError::forbidden(
                    child(path, extra),
                    "may not specify more than 1 volume type",
                ));
            }
        }
    }
    if let Some(h) = &spec.host_path {
        let hp = child(&child(path, "hostPath"), "path");
        if h.path.is_empty() {
            errs.push(FieldError::required(hp.clone(), ""));
        } else {
            errs.extend(validate_path_no_backsteps(&h.path, &hp));
        }
        if let Some(t) = h.type_.as_deref()
            && !HOST_PATH_TYPES.contains(&t)
        {
            errs.push(FieldError::not_supported(
                child(&child(path, "hostPath"), "type"),
                t,
                HOST_PATH_TYPES,
            ));
        }
    }
    if let Some(l) = &spec.local {
        let lp = child(&child(path, "local"), "path");
        if l.path.is_empty() {
            errs.push(FieldError::required(lp, ""));
        } else {
            errs.extend(validate_path_no_backsteps(&l.path, &lp));
        }
    }
    let node_affinity_path = child(path, "nodeAffinity");
    let mut affinity_given = false;
    if let Some(na) = &spec.node_affinity {
        affinity_given = true;
        match &na.required {
            Some(r) => errs.extend(validate_node_selector(
                r,
                &child(&node_affinity_path, "required"),
            )),
            None => errs.push(FieldError::required(
                child(&node_affinity_path, "required"),
                "must specify required node constraints",
            )),
        }
    }
    if spec.local.is_some() && !affinity_given {
        errs.push(FieldError::required(
            node_affinity_path,
            "Local volume requires node affinity",
        ));
    }
    if let Some(p) = spec.persistent_volume_reclaim_policy.as_deref()
        && !p.is_empty()
        && !RECLAIM_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(
            child(path, "persistentVolumeReclaimPolicy"),
            p,
            RECLAIM_POLICIES,
        ));
    }
    if let Some(m) = spec.volume_mode.as_deref()
        && !VOLUME_MODES.contains(&m)
    {
        errs.push(FieldError::not_supported(
            child(path, "volumeMode"),
            m,
            VOLUME_MODES,
        ));
    }
    errs
}

/// `ValidatePersistentVolumeUpdate` after the common checks: the spec again, the volume
/// source, `volumeMode` and a set node affinity immutable.
pub fn validate_persistent_volume_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let mut errs = validate_persistent_volume(new)?;
    let source = |v: &Value| -> BTreeMap<String, Value> {
        v.get("spec")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| PV_SOURCES.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (ns, os) = (source(new), source(old));
    if ns != os {
        errs.push(FieldError::forbidden(
            "spec.persistentvolumesource",
            format!(
                "spec.persistentvolumesource is immutable after creation\n{}",
                diff(&json!(os), &json!(ns))
            ),
        ));
    }
    let mode = |v: &Value| v.pointer("/spec/volumeMode").cloned();
    if mode(new) != mode(old) {
        errs.push(FieldError::invalid(
            "volumeMode",
            mode(new).unwrap_or(Value::Null),
            IMMUTABLE_MSG,
        ));
    }
    let affinity = |v: &Value| v.pointer("/spec/nodeAffinity").cloned();
    if affinity(old).is_some() && affinity(new) != affinity(old) {
        errs.push(FieldError::invalid(
            "nodeAffinity",
            affinity(new).unwrap_or(Value::Null),
            IMMUTABLE_MSG,
        ));
    }
    Ok(errs)
}

/// `ValidatePersistentVolumeClaimSpec` at `path`.
pub fn validate_claim_spec(spec: &PersistentVolumeClaimSpec, path: &str) -> Errors {
    let mut errs = validate_access_modes(
        spec.access_modes.as_deref().unwrap_or(&[]),
        &child(path, "accessModes"),
        "at least 1 access mode is required",
    );
    if let Some(sel) = &spec.selector {
        errs.extend(validate_label_selector(sel, &child(path, "selector")));
    }
    let storage_path = key(&child(path, "resources"), "storage");
    match spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
    {
        None => errs.push(FieldError::required(storage_path, "")),
        Some(q) => errs.extend(validate_positive_quantity(q, &storage_path)),
    }
    if let Some(sc) = spec.storage_class_name.as_deref()
        && !sc.is_empty()
    {
        errs.extend(validate_class_name(sc, &child(path, "storageClassName")));
    }
    if let Some(m) = spec.volume_mode.as_deref()
        && !VOLUME_MODES.contains(&m)
    {
        errs.push(FieldError::not_supported(
            child(path, "volumeMode"),
            m,
            VOLUME_MODES,
        ));
    }
    errs
}

/// `ValidatePersistentVolumeClaim` after ObjectMeta.
pub fn validate_persistent_volume_claim(obj: &Value) -> Result<Errors, ApiError> {
    let pvc: PersistentVolumeClaim = typed(obj)?;
    Ok(validate_claim_spec(&pvc.spec.unwrap_or_default(), "spec"))
}

fn storage_request(v: &Value) -> Option<Quantity> {
    v.pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .and_then(|s| Quantity::parse(s).ok())
}

/// `ValidatePersistentVolumeClaimUpdate` after the common checks: the claim again, then the
/// spec immutable except `volumeName` once and (for bound claims) the storage request, no
/// shrinking below the status capacity, the storage-class annotation and `volumeMode`
/// immutable.
pub fn validate_persistent_volume_claim_update(
    new: &Value,
    old: &Value,
) -> Result<Errors, ApiError> {
    let mut errs = validate_persistent_volume_claim(new)?;
    const BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
    let mut old_spec = old.get("spec").cloned().unwrap_or(json!({}));
    let mut new_spec = new.get("spec").cloned().unwrap_or(json!({}));
    let old_volume = old_spec["volumeName"].as_str().unwrap_or("").to_string();
    if old_volume.is_empty() {
        match new_spec.get("volumeName") {
            Some(v) => old_spec["volumeName"] = v.clone(),
            None => {
                if let Some(m) = old_spec.as_object_mut() {
                    m.remove("volumeName");
                }
            }
        }
    }
    let ann = |v: &Value| {
        v.pointer("/metadata/annotations")
            .and_then(|a| a.get(BETA_CLASS))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (old_ann, new_ann) = (ann(old), ann(new));
    // validateStorageClassUpgradeFromAnnotation: the beta annotation may move to the field.
    let upgrade = old_ann.is_some()
        && new_ann == old_ann
        && old_spec.get("storageClassName").is_none_or(Value::is_null)
        && new_spec["storageClassName"].as_str() == old_ann.as_deref();
    if upgrade {
        if let Some(m) = new_spec.as_object_mut() {
            m.remove("storageClassName");
        }
    } else if old_ann != new_ann {
        errs.push(FieldError::invalid(
            format!("metadata.annotations.{BETA_CLASS}"),
            new_ann.unwrap_or_default(),
            IMMUTABLE_MSG,
        ));
    }
    let bound = new.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    if bound {
        let old_storage = old_spec.pointer("/resources/requests/storage").cloned();
        if let Some(r) = new_spec
            .pointer_mut("/resources/requests")
            .and_then(Value::as_object_mut)
        {
            match old_storage {
                Some(s) => {
                    r.insert("storage".into(), s);
                }
                None => {
                    r.remove("storage");
                }
            }
        }
    }
    // Semantic equality: quantities compare by value.
    normalize_quantities(&mut old_spec);
    normalize_quantities(&mut new_spec);
    for s in [&mut old_spec, &mut new_spec] {
        if let Some(m) = s.as_object_mut() {
            m.remove("volumeAttributesClassName");
        }
    }
    if old_spec != new_spec {
        errs.push(FieldError::forbidden(
            "spec",
            format!("{PVC_IMMUTABLE_MSG}\n{}", diff(&old_spec, &new_spec)),
        ));
    }
    if let (Some(o), Some(n)) = (storage_request(old), storage_request(new)) {
        let status = old
            .pointer("/status/capacity/storage")
            .and_then(Value::as_str)
            .and_then(|s| Quantity::parse(s).ok());
        // RecoverVolumeExpansionFailure (on by default): a request may go back down, but not
        // below what the volume already has.
        if n < o
            && let Some(cap) = status
            && n <= cap
        {
            errs.push(FieldError::forbidden(
                "spec.resources.requests.storage",
                "field can not be less than status.capacity",
            ));
        }
    }
    let mode = |v: &Value| v.pointer("/spec/volumeMode").cloned();
    if mode(new) != mode(old) {
        errs.push(FieldError::invalid(
            "volumeMode",
            mode(new).unwrap_or(Value::Null),
            IMMUTABLE_MSG,
        ));
    }
    Ok(errs)
}

/// Rewrites the quantities of a claim spec canonically so equal sizes compare equal.
fn normalize_quantities(spec: &mut Value) {
    for list in ["requests", "limits"] {
        if let Some(m) = spec
            .pointer_mut(&format!("/resources/{list}"))
            .and_then(Value::as_object_mut)
        {
            for v in m.values_mut() {
                if let Some(q) = v.as_str().and_then(|s| Quantity::parse(s).ok()) {
                    *v = json!(q.nanos().to_string());
                }
            }
        }
    }
}

/// A short `-`/`+` listing of the top-level fields that differ (upstream appends Go's
/// `cmp.Diff` of the two specs; this names the same changes in JSON).
fn diff(old: &Value, new: &Value) -> String {
    let empty = serde_json::Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = String::new();
    for k in keys {
        let (a, b) = (o.get(k), n.get(k));
        if a == b {
            continue;
        }
        if let Some(a) = a {
            out.push_str(&format!("  - {k}: {a}\n"));
        }
        if let Some(b) = b {
            out.push_str(&format!("  + {k}: {b}\n"));
        }
    }
    out
}

/// `ValidateStorageClass` after ObjectMeta: provisioner, parameters, reclaim policy, binding
/// mode.
pub fn validate_storage_class(obj: &Value) -> Result<Errors, ApiError> {
    let sc: StorageClass = typed(obj)?;
    let mut errs = Errors::new();
    if sc.provisioner.is_empty() {
        errs.push(FieldError::required("provisioner", ""));
    } else {
        for m in is_qualified_name(&sc.provisioner.to_lowercase()) {
            errs.push(FieldError::invalid(
                "provisioner",
                sc.provisioner.to_lowercase(),
                m,
            ));
        }
    }
    let params = sc.parameters.clone().unwrap_or_default();
    if params.len() > 512 {
        errs.push(FieldError::too_long("parameters", 512));
    }
    let total: usize = params.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > 256 * 1024 {
        errs.push(FieldError::too_long("parameters", 256 * 1024));
    }
    if let Some(p) = sc.reclaim_policy.as_deref()
        && !p.is_empty()
        && !CLASS_RECLAIM_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(
            "reclaimPolicy",
            p,
            CLASS_RECLAIM_POLICIES,
        ));
    }
    match sc.volume_binding_mode.as_deref() {
        None => errs.push(FieldError::required("volumeBindingMode", "")),
        Some(m) if !BINDING_MODES.contains(&m) => {
            errs.push(FieldError::not_supported(
                "volumeBindingMode",
                m,
                BINDING_MODES,
            ));
        }
        Some(_) => {}
    }
    Ok(errs)
}

/// `ValidateStorageClassUpdate` after ObjectMeta update: parameters, provisioner, reclaim
/// policy and binding mode never change.
pub fn validate_storage_class_update(new: &Value, old: &Value) -> Errors {
    let mut errs = Errors::new();
    let norm = |v: &Value| match v.get("parameters") {
        Some(Value::Object(m)) if !m.is_empty() => Some(Value::Object(m.clone())),
        _ => None,
    };
    if norm(new) != norm(old) {
        errs.push(FieldError::forbidden(
            "parameters",
            "updates to parameters are forbidden.",
        ));
    }
    if new.get("provisioner") != old.get("provisioner") {
        errs.push(FieldError::forbidden(
            "provisioner",
            "updates to provisioner are forbidden.",
        ));
    }
    if new.get("reclaimPolicy") != old.get("reclaimPolicy") {
        errs.push(FieldError::forbidden(
            "reclaimPolicy",
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    if new.get("volumeBindingMode") != old.get("volumeBindingMode") {
        errs.push(FieldError::invalid(
            "volumeBindingMode",
            new.get("volumeBindingMode").cloned().unwrap_or(Value::Null),
            IMMUTABLE_MSG,
        ));
    }
    errs
}

#[cfg(test)]
mod tests;
