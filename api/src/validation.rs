//! Validation with upstream's rules and messages: `ValidateObjectMeta`
//! (`apimachinery/pkg/api/validation`), the name/label/port checks of
//! `apimachinery/pkg/util/validation`, and per-kind rules from
//! `pkg/apis/core/validation/validation.go` and `pkg/apis/apps/validation/validation.go`.
//!
//! Start at [`validate_create`] / [`validate_update`]; the per-kind rules live in the
//! submodules ([`pod`], [`service`], [`apps`], [`misc`]); the string checks in [`names`].

pub mod apps;
pub mod misc;
pub mod names;
pub mod pod;
pub mod service;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::registry::ResourceInfo;
use crate::status::{ApiError, FieldError};

pub use names::*;

/// A list of field errors (upstream `field.ErrorList`).
pub type Errors = Vec<FieldError>;

/// Joins a child field to a path: `child("spec", "containers")` = `spec.containers`.
pub fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Indexes a path: `index("spec.containers", 0)` = `spec.containers[0]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Keys a path: `key("data", "a")` = `data[a]`.
pub fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

/// Validates an object being created: ObjectMeta plus the kind's rules. Errors come back as
/// one 422 Invalid `Status` naming every failed field.
pub fn validate_create(info: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    let errs = validate_object(info, obj)?;
    finish(info, obj, errs)
}

/// Validates an update: everything [`validate_create`] checks on `new`, plus
/// `ValidateObjectMetaUpdate` and the kind's immutable fields against `old`.
pub fn validate_update(info: &ResourceInfo, new: &Value, old: &Value) -> Result<(), ApiError> {
    let mut errs = validate_object(info, new)?;
    let new_meta = meta_of(new)?;
    let old_meta = meta_of(old)?;
    errs.extend(validate_object_meta_update(
        &new_meta, &old_meta, "metadata",
    ));
    errs.extend(match info.kind {
        "Pod" => pod::validate_pod_update(new, old)?,
        "Service" => service::validate_service_update(new, old)?,
        "Deployment" | "ReplicaSet" => apps::validate_selector_update(new, old)?,
        "ConfigMap" | "Secret" => misc::validate_immutable_data_update(info.kind, new, old),
        _ => Vec::new(),
    });
    finish(info, new, errs)
}

/// All create-time errors of `obj` (ObjectMeta first, then the kind's spec).
pub fn validate_object(info: &ResourceInfo, obj: &Value) -> Result<Errors, ApiError> {
    let meta = meta_of(obj)?;
    let name_fn: fn(&str, bool) -> Vec<String> = match info.kind {
        "Namespace" => name_is_dns1123_label,
        "Service" => name_is_dns1035_label,
        _ => name_is_dns_subdomain,
    };
    let mut errs = validate_object_meta(&meta, info.namespaced, name_fn, "metadata");
    errs.extend(match info.kind {
        "Pod" => pod::validate_pod(obj)?,
        "Service" => service::validate_service(obj)?,
        "Deployment" => apps::validate_deployment(obj)?,
        "ReplicaSet" => apps::validate_replica_set(obj)?,
        "Namespace" => misc::validate_namespace(obj)?,
        "ConfigMap" => misc::validate_config_map(obj)?,
        "Secret" => misc::validate_secret(obj)?,
        "Endpoints" => misc::validate_endpoints(obj)?,
        "EndpointSlice" => misc::validate_endpoint_slice(obj)?,
        "Node" => misc::validate_node(obj)?,
        "Event" => misc::validate_event(obj)?,
        "Lease" => misc::validate_lease(obj)?,
        _ => Vec::new(),
    });
    Ok(errs)
}

fn finish(info: &ResourceInfo, obj: &Value, errs: Errors) -> Result<(), ApiError> {
    if errs.is_empty() {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Err(ApiError::invalid(info, name, errs))
}

/// Deserializes a typed view of a decoded object; a failure here is a server bug (decode
/// already round-tripped the object), so it is an internal error.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(obj: &Value) -> Result<T, ApiError> {
    crate::object::typed(obj)
}

fn meta_of(obj: &Value) -> Result<ObjectMeta, ApiError> {
    match obj.get("metadata") {
        Some(m) => typed(m),
        None => Ok(ObjectMeta::default()),
    }
}

/// Upstream `ValidateObjectMeta`: name or generateName, namespace presence and format, labels,
/// annotations, owner references, finalizers, generation.
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    name_fn: fn(&str, bool) -> Vec<String>,
    path: &str,
) -> Errors {
    let mut errs = Errors::new();
    let generate_name = meta.generate_name.as_deref().unwrap_or("");
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(FieldError::invalid(
                child(path, "generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = meta.name.as_deref().unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required(
            child(path, "name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name, false) {
            errs.push(FieldError::invalid(child(path, "name"), name, msg));
        }
    }
    let namespace = meta.namespace.as_deref().unwrap_or("");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(child(path, "namespace"), ""));
        } else {
            for msg in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid(
                    child(path, "namespace"),
                    namespace,
                    msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            child(path, "namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = meta.generation
        && g < 0
    {
        errs.push(FieldError::invalid(
            child(path, "generation"),
            g,
            NEGATIVE_MSG,
        ));
    }
    errs.extend(validate_labels(
        meta.labels.as_ref(),
        &child(path, "labels"),
    ));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &child(path, "annotations"),
    ));
    for (i, r) in meta.owner_references.iter().flatten().enumerate() {
        let p = index(&child(path, "ownerReferences"), i);
        if r.api_version.is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "apiVersion"),
                r.api_version.as_str(),
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "kind"),
                r.kind.as_str(),
                "must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                r.name.as_str(),
                "must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "uid"),
                r.uid.as_str(),
                "uid must not be empty",
            ));
        }
    }
    let controllers = meta
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.controller == Some(true))
        .count();
    if controllers > 1 {
        errs.push(FieldError::invalid(
            child(path, "ownerReferences"),
            Value::Null,
            "Only one reference can have Controller set to true",
        ));
    }
    for (i, f) in meta.finalizers.iter().flatten().enumerate() {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(
                index(&child(path, "finalizers"), i),
                f.as_str(),
                msg,
            ));
        }
    }
    errs
}

/// Upstream `ValidateObjectMetaUpdate`: name, namespace, uid and creationTimestamp are
/// immutable; generation may not be negative.
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta, path: &str) -> Errors {
    let mut errs = Errors::new();
    let immutable = |errs: &mut Errors, field: &str, n: Option<&str>, o: Option<&str>| {
        if n.unwrap_or("") != o.unwrap_or("") {
            errs.push(FieldError::invalid(
                child(path, field),
                n.unwrap_or(""),
                IMMUTABLE_MSG,
            ));
        }
    };
    immutable(&mut errs, "name", new.name.as_deref(), old.name.as_deref());
    immutable(
        &mut errs,
        "namespace",
        new.namespace.as_deref(),
        old.namespace.as_deref(),
    );
    if old.uid.is_some() {
        immutable(&mut errs, "uid", new.uid.as_deref(), old.uid.as_deref());
    }
    if old.creation_timestamp.is_some() && new.creation_timestamp != old.creation_timestamp {
        let shown = new
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        errs.push(FieldError::invalid(
            child(path, "creationTimestamp"),
            shown,
            IMMUTABLE_MSG,
        ));
    }
    errs
}

/// Upstream `ValidateLabels`: keys are qualified names, values valid label values; errors
/// name the map's path (`metadata.labels`).
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &str) -> Errors {
    let mut errs = Errors::new();
    for (k, v) in labels.into_iter().flatten() {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v.as_str(), msg));
        }
    }
    errs
}

/// Total size limit of annotations (upstream `TotalAnnotationSizeLimitB`).
const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

/// Upstream `ValidateAnnotations`: keys are qualified names (case-insensitive), total size
/// at most 256 KiB.
pub fn validate_annotations(ann: Option<&BTreeMap<String, String>>, path: &str) -> Errors {
    let mut errs = Errors::new();
    let mut total = 0;
    for (k, v) in ann.into_iter().flatten() {
        for msg in is_qualified_name(&k.to_ascii_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE));
    }
    errs
}

/// Upstream `ValidateNonnegativeField`.
pub fn validate_nonnegative(value: i64, path: &str) -> Errors {
    if value < 0 {
        vec![FieldError::invalid(path, value, NEGATIVE_MSG)]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests;
