//! Validation with upstream's rules and messages: `ValidateObjectMeta`
//! (`apimachinery/pkg/api/validation`), the name/label/port checks of
//! `apimachinery/pkg/util/validation`, and per-kind rules from
//! `pkg/apis/core/validation/validation.go` and `pkg/apis/apps/validation/validation.go`.
//!
//! Start at [`validate_create`] / [`validate_update`]; the per-kind rules live in the
//! submodules ([`pod`], [`volume`], [`service`], [`apps`], [`batch`], [`sets`], [`misc`],
//! [`certificates`], [`node`], [`rbac`], [`storage`], [`networking`], [`policy`]); the
//! string checks in [`names`].

pub mod apps;
pub mod autoscaling;
pub mod batch;
pub mod certificates;
pub mod misc;
pub mod names;
pub mod networking;
pub mod node;
pub mod pod;
pub mod policy;
pub mod rbac;
pub mod service;
pub mod sets;
pub mod storage;
pub mod volume;

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
    if info.kind == "Event" {
        // The event strategy checks no ObjectMeta; `rest.BeforeCreate` runs the generic
        // check (names need only be path segments) once the strategy passed.
        let mut errs = misc::validate_event(obj)?;
        if errs.is_empty() {
            errs = validate_object_meta(&meta_of(obj)?, true, path_segment_name, "metadata");
        }
        return finish(info, obj, errs);
    }
    let mut errs = validate_object(info, obj)?;
    if info.kind == "CronJob" {
        // ValidateCronJobCreate: the spec (as on update) and the name's length.
        errs.extend(batch::validate_cron_job_create(obj)?);
    }
    if info.kind == "PodDisruptionBudget" {
        // The PDB strategy validates the spec only; `rest.BeforeCreate`'s generic check of
        // ObjectMeta (names need only be path segments) runs once it passed.
        let mut errs = policy::validate_pod_disruption_budget(obj)?;
        if errs.is_empty() {
            errs = validate_object_meta(&meta_of(obj)?, true, path_segment_name, "metadata");
        }
        return finish(info, obj, errs);
    }
    if info.kind == "CertificateSigningRequest" && errs.is_empty() {
        // The CSR strategy accepts any name; `rest.BeforeCreate`'s generic check then needs
        // a path segment.
        errs = validate_object_meta(&meta_of(obj)?, false, path_segment_name, "metadata");
    }
    finish(info, obj, errs)
}

/// Validates an update in upstream's order: first `rest.BeforeUpdate`'s common checks
/// ([`validate_common_update`]), then the kind's `ValidateXUpdate` as its strategy calls it.
/// Each kind's function orders its parts differently (a Service checks its update rules
/// before re-running `ValidateService`, a Pod re-runs its create rules first, a Deployment
/// never re-checks ObjectMeta), and the common ObjectMeta checks run again inside some of
/// them, so a bad label on a Service or Pod update is reported twice, as upstream does.
pub fn validate_update(info: &ResourceInfo, new: &Value, old: &Value) -> Result<(), ApiError> {
    let new_meta = meta_of(new)?;
    let old_meta = meta_of(old)?;
    let mut errs = validate_common_update(info, &new_meta, &old_meta);
    let meta_update = || validate_object_meta_update(&new_meta, &old_meta, "metadata");
    match info.kind {
        // ValidatePodUpdate: meta update, validatePodMetadataAndSpec, then the update rules.
        "Pod" => {
            errs.extend(meta_update());
            errs.extend(validate_object(info, new)?);
            errs.extend(pod::validate_pod_update(new, old)?);
        }
        // ValidateServiceUpdate: meta update, the update rules, then ValidateService.
        "Service" => {
            errs.extend(meta_update());
            errs.extend(service::validate_service_update(new, old)?);
            errs.extend(validate_object(info, new)?);
        }
        // ValidateDeploymentUpdate (meta update and spec, no ObjectMeta), then the
        // strategy's apps/v1 selector immutability.
        "Deployment" => {
            errs.extend(meta_update());
            errs.extend(apps::validate_deployment(new)?);
            errs.extend(apps::validate_selector_update(new, old)?);
        }
        // The ReplicaSet strategy runs ValidateReplicaSet (ObjectMeta and spec), then
        // ValidateReplicaSetUpdate (meta update and the spec again), then the selector.
        "ReplicaSet" => {
            errs.extend(validate_object(info, new)?);
            errs.extend(meta_update());
            errs.extend(apps::validate_replica_set(new)?);
            errs.extend(apps::validate_selector_update(new, old)?);
        }
        // The ReplicationController strategy: ValidateReplicationController (ObjectMeta and
        // spec), then ValidateReplicationControllerUpdate (meta update and the spec again).
        "ReplicationController" => {
            errs.extend(validate_object(info, new)?);
            errs.extend(meta_update());
            errs.extend(apps::validate_replication_controller(new)?);
        }
        // ValidateStatefulSetUpdate: meta update, the spec fields that may not change, then
        // (the strategy's ValidateStatefulSet) the spec again.
        "StatefulSet" => {
            errs.extend(meta_update());
            errs.extend(sets::validate_stateful_set_update(new, old)?);
        }
        // ValidateDaemonSetUpdate: meta update, the selector, the spec.
        "DaemonSet" => {
            errs.extend(meta_update());
            errs.extend(apps::validate_selector_update(new, old)?);
            errs.extend(sets::validate_daemon_set(new)?);
        }
        // ValidateControllerRevisionUpdate: meta update, the create rules, data immutable.
        "ControllerRevision" => {
            errs.extend(meta_update());
            errs.extend(validate_object(info, new)?);
            errs.extend(sets::validate_controller_revision_update(new, old));
        }
        // The Job strategy: ValidateJob (ObjectMeta, generated selector, spec), then
        // ValidateJobUpdate (meta update and the immutable fields).
        "Job" => {
            errs.extend(validate_object(info, new)?);
            errs.extend(meta_update());
            errs.extend(batch::validate_job_update(new, old)?);
        }
        // ValidateCronJobUpdate: meta update and the spec (a `TZ=` schedule may stay).
        "CronJob" => {
            errs.extend(meta_update());
            errs.extend(batch::validate_cron_job_spec(new, Some(old))?);
        }
        // ValidateConfigMapUpdate / ValidateSecretUpdate: meta update, the immutability
        // rules, then the create rules.
        "ConfigMap" | "Secret" => {
            errs.extend(meta_update());
            errs.extend(misc::validate_immutable_data_update(info.kind, new, old));
            errs.extend(validate_object(info, new)?);
        }
        // ValidateNamespaceUpdate is the meta update alone.
        "Namespace" => errs.extend(meta_update()),
        // ValidateEndpointsUpdate: meta update and the subsets.
        "Endpoints" => {
            errs.extend(meta_update());
            errs.extend(misc::validate_endpoints(new)?);
        }
        // ValidateEndpointSliceUpdate: the create rules, then addressType immutable.
        "EndpointSlice" => {
            errs.extend(validate_object(info, new)?);
            errs.extend(misc::validate_endpoint_slice_update(new, old));
        }
        // ValidateNodeUpdate / ValidateLeaseUpdate: meta update, then the kind's rules.
        "Node" => {
            errs.extend(meta_update());
            errs.extend(misc::validate_node(new)?);
        }
        "Lease" => {
            errs.extend(meta_update());
            errs.extend(misc::validate_lease(new)?);
        }
        // ValidateEventUpdate for v1 requests is `legacyValidateEvent` alone.
        "Event" => errs.extend(misc::validate_event(new)?),
        "CertificateSigningRequest" => {
            errs.extend(csr_update(new, old, certificates::CsrWrite::Main)?);
        }
        // The RuntimeClass strategy: ValidateRuntimeClass, then ValidateRuntimeClassUpdate
        // (meta update, handler immutable).
        "RuntimeClass" => {
            errs.extend(validate_object(info, new)?);
            errs.extend(meta_update());
            errs.extend(node::validate_runtime_class_update(new, old));
        }
        // ValidatePersistentVolumeUpdate / ValidatePersistentVolumeClaimUpdate: meta update,
        // then the kind's create rules and update rules.
        "PersistentVolume" => {
            errs.extend(meta_update());
            errs.extend(validate_object_meta(
                &new_meta,
                false,
                name_is_dns_subdomain,
                "metadata",
            ));
            errs.extend(storage::validate_persistent_volume_update(new, old)?);
        }
        "PersistentVolumeClaim" => {
            errs.extend(meta_update());
            errs.extend(validate_object_meta(
                &new_meta,
                true,
                name_is_dns_subdomain,
                "metadata",
            ));
            errs.extend(storage::validate_persistent_volume_claim_update(new, old)?);
        }
        // The StorageClass strategy: ValidateStorageClass, then ValidateStorageClassUpdate.
        "StorageClass" => {
            errs.extend(validate_object(info, new)?);
            errs.extend(meta_update());
            errs.extend(storage::validate_storage_class_update(new, old));
        }
        // ValidateIngressUpdate: meta update, then validateIngress (ObjectMeta and the spec,
        // keeping what the stored Ingress already had wrong).
        "Ingress" => {
            errs.extend(meta_update());
            errs.extend(validate_object_meta(
                &new_meta,
                true,
                name_is_dns_subdomain,
                "metadata",
            ));
            errs.extend(networking::validate_ingress(new, Some(old)));
        }
        // ValidateIngressClassUpdate: meta update, controller immutable, ValidateIngressClass.
        "IngressClass" => {
            errs.extend(meta_update());
            errs.extend(networking::validate_ingress_class_update(new, old));
            errs.extend(validate_object(info, new)?);
        }
        // ValidateRoleBindingUpdate: ValidateRoleBinding, meta update, roleRef fixed.
        "RoleBinding" | "ClusterRoleBinding" => {
            errs.extend(validate_object(info, new)?);
            errs.extend(meta_update());
            errs.extend(rbac::validate_binding_update(new, old)?);
        }
        // ValidateRoleUpdate / ValidateClusterRoleUpdate: the create rules, meta update.
        "Role" | "ClusterRole" => {
            errs.extend(validate_object(info, new)?);
            errs.extend(meta_update());
        }
        // The PDB strategy's ValidateUpdate: the spec (mutable) after the common checks.
        "PodDisruptionBudget" => {
            errs.extend(policy::validate_pod_disruption_budget(new)?);
        }
        _ => {
            errs.extend(meta_update());
            errs.extend(validate_object(info, new)?);
        }
    }
    finish(info, new, errs)
}

/// `validateCommonFields` of `rest.BeforeUpdate`, run on every update before the kind's
/// rules: the generic `ValidateObjectMeta` (names only need to be valid path segments) and
/// `ValidateObjectMetaUpdate`.
pub fn validate_common_update(info: &ResourceInfo, new: &ObjectMeta, old: &ObjectMeta) -> Errors {
    let mut errs = validate_object_meta(new, info.namespaced, path_segment_name, "metadata");
    errs.extend(validate_object_meta_update(new, old, "metadata"));
    errs
}

/// Validates a write to the `status` subresource: the common checks of every update
/// ([`validate_common_update`]), `ValidateObjectMetaUpdate` plus, for Pods,
/// upstream `ValidatePodStatusUpdate` (node name and QoS class fixed, no way back out of a
/// terminated state without a restart policy that allows it), and for Deployments and
/// ReplicaSets their status counter rules.
pub fn validate_status_update(
    info: &ResourceInfo,
    new: &Value,
    old: &Value,
) -> Result<(), ApiError> {
    if info.kind == "CertificateSigningRequest" {
        return csr_subresource_update(info, new, old, certificates::CsrWrite::Status);
    }
    let (new_meta, old_meta) = (meta_of(new)?, meta_of(old)?);
    let mut errs = validate_common_update(info, &new_meta, &old_meta);
    errs.extend(validate_object_meta_update(
        &new_meta, &old_meta, "metadata",
    ));
    match info.kind {
        "Pod" => errs.extend(pod::validate_pod_status_update(new, old)?),
        "Service" => errs.extend(service::validate_service_status(new)?),
        "Deployment" | "ReplicaSet" | "ReplicationController" => {
            errs.extend(apps::validate_workload_status(info.kind, new, old));
        }
        "Job" => errs.extend(batch::validate_job_status_update(new, old)),
        "StatefulSet" => errs.extend(sets::validate_stateful_set_status(new, old)),
        "DaemonSet" => errs.extend(sets::validate_daemon_set_status(new, old)),
        "Ingress" => errs.extend(networking::validate_ingress_status(new)),
        "PodDisruptionBudget" => errs.extend(policy::validate_pod_disruption_budget_status(new)),
        _ => {}
    }
    finish(info, new, errs)
}

/// Validates a write to a pod's `ephemeralcontainers` subresource (upstream
/// `ValidatePodEphemeralContainersUpdate`): the metadata update, the pod as on create, then
/// what may change among the ephemeral containers.
pub fn validate_ephemeral_containers_update(
    info: &ResourceInfo,
    new: &Value,
    old: &Value,
) -> Result<(), ApiError> {
    let (new_meta, old_meta) = (meta_of(new)?, meta_of(old)?);
    let mut errs = validate_common_update(info, &new_meta, &old_meta);
    errs.extend(validate_object_meta_update(
        &new_meta, &old_meta, "metadata",
    ));
    errs.extend(validate_object(info, new)?);
    errs.extend(pod::validate_ephemeral_containers_update(new, old)?);
    finish(info, new, errs)
}

/// Validates a write to a CSR's `approval` subresource (upstream
/// `ValidateCertificateSigningRequestApprovalUpdate` after the common update checks).
pub fn validate_approval_update(
    info: &ResourceInfo,
    new: &Value,
    old: &Value,
) -> Result<(), ApiError> {
    csr_subresource_update(info, new, old, certificates::CsrWrite::Approval)
}

/// A CSR subresource write: the common update checks, then [`csr_update`].
fn csr_subresource_update(
    info: &ResourceInfo,
    new: &Value,
    old: &Value,
    write: certificates::CsrWrite,
) -> Result<(), ApiError> {
    let (new_meta, old_meta) = (meta_of(new)?, meta_of(old)?);
    let mut errs = validate_common_update(info, &new_meta, &old_meta);
    errs.extend(csr_update(new, old, write)?);
    finish(info, new, errs)
}

/// `validateCertificateSigningRequestUpdate`: ObjectMeta, the CSR rules for `write`, then
/// `ValidateObjectMetaUpdate`.
fn csr_update(new: &Value, old: &Value, write: certificates::CsrWrite) -> Result<Errors, ApiError> {
    let (new_meta, old_meta) = (meta_of(new)?, meta_of(old)?);
    let mut errs =
        validate_object_meta(&new_meta, false, certificates::name_is_anything, "metadata");
    errs.extend(certificates::validate_csr_update(new, old, write)?);
    errs.extend(validate_object_meta_update(
        &new_meta, &old_meta, "metadata",
    ));
    Ok(errs)
}

/// All create-time errors of `obj` (ObjectMeta first, then the kind's spec).
pub fn validate_object(info: &ResourceInfo, obj: &Value) -> Result<Errors, ApiError> {
    let meta = meta_of(obj)?;
    let name_fn: fn(&str, bool) -> Vec<String> = match info.kind {
        "Namespace" => name_is_dns1123_label,
        "Service" => name_is_dns1035_label,
        "CertificateSigningRequest" => certificates::name_is_anything,
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" | "PodDisruptionBudget" => {
            path_segment_name
        }
        _ => name_is_dns_subdomain,
    };
    let mut errs = validate_object_meta(&meta, info.namespaced, name_fn, "metadata");
    errs.extend(match info.kind {
        "Pod" => pod::validate_pod(obj)?,
        "Service" => service::validate_service(obj)?,
        "Deployment" => apps::validate_deployment(obj)?,
        "ReplicaSet" => apps::validate_replica_set(obj)?,
        "ReplicationController" => apps::validate_replication_controller(obj)?,
        "StatefulSet" => sets::validate_stateful_set(obj)?,
        "DaemonSet" => sets::validate_daemon_set(obj)?,
        "ControllerRevision" => sets::validate_controller_revision(obj),
        "Job" => batch::validate_job(obj)?,
        "HorizontalPodAutoscaler" => autoscaling::validate_horizontal_pod_autoscaler(obj)?,
        "Namespace" => misc::validate_namespace(obj)?,
        "ConfigMap" => misc::validate_config_map(obj)?,
        "Secret" => misc::validate_secret(obj)?,
        "Endpoints" => misc::validate_endpoints(obj)?,
        "EndpointSlice" => misc::validate_endpoint_slice(obj)?,
        "Node" => misc::validate_node(obj)?,
        "Event" => misc::validate_event(obj)?,
        "Lease" => misc::validate_lease(obj)?,
        "CertificateSigningRequest" => certificates::validate_csr(obj)?,
        "RuntimeClass" => node::validate_runtime_class(obj)?,
        "PersistentVolume" => storage::validate_persistent_volume(obj)?,
        "PersistentVolumeClaim" => storage::validate_persistent_volume_claim(obj)?,
        "StorageClass" => storage::validate_storage_class(obj)?,
        "Ingress" => networking::validate_ingress(obj, None),
        "IngressClass" => networking::validate_ingress_class(obj),
        "PodDisruptionBudget" => policy::validate_pod_disruption_budget(obj)?,
        "Role" => rbac::validate_role(obj, true)?,
        "ClusterRole" => rbac::validate_role(obj, false)?,
        "RoleBinding" => rbac::validate_binding(obj, true)?,
        "ClusterRoleBinding" => rbac::validate_binding(obj, false)?,
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
    errs.extend(validate_owner_references(
        meta.owner_references.as_deref().unwrap_or(&[]),
        &child(path, "ownerReferences"),
    ));
    let finalizers = meta.finalizers.as_deref().unwrap_or(&[]);
    let fpath = child(path, "finalizers");
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(fpath.clone(), f.as_str(), msg));
        }
    }
    if finalizers.iter().any(|f| f == "orphan")
        && finalizers.iter().any(|f| f == "foregroundDeletion")
    {
        errs.push(FieldError::invalid(
            fpath,
            serde_json::json!(finalizers),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// Upstream `ValidateOwnerReferences`: apiVersion, kind, name and uid set (errors name the
/// list's path, as upstream does), no Event owners, at most one controller.
pub fn validate_owner_references(
    refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
    path: &str,
) -> Errors {
    let mut errs = Errors::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        let (_, version) = crate::registry::split_api_version(&r.api_version);
        if version.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "apiVersion"),
                r.api_version.as_str(),
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "kind"),
                r.kind.as_str(),
                "must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "name"),
                r.name.as_str(),
                "must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "uid"),
                r.uid.as_str(),
                "must not be empty",
            ));
        }
        if r.api_version == "v1" && r.kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                serde_json::to_value(r).unwrap_or_default(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    serde_json::to_value(refs).unwrap_or_default(),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// Upstream `ValidateObjectMetaUpdate`: no new finalizers while deleting, generation not
/// decremented, name/namespace/uid/creationTimestamp/deletionTimestamp/
/// deletionGracePeriodSeconds immutable. (The `resourceVersion must be specified` rule is left
/// to the API server, which fills it in for unconditional updates first.)
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta, path: &str) -> Errors {
    let mut errs = Errors::new();
    if old.deletion_timestamp.is_some() {
        let old_f: std::collections::BTreeSet<&String> = old.finalizers.iter().flatten().collect();
        let extra: std::collections::BTreeSet<&String> = new
            .finalizers
            .iter()
            .flatten()
            .filter(|f| !old_f.contains(f))
            .collect();
        if !extra.is_empty() {
            let quoted: Vec<String> = extra.iter().map(|f| crate::status::go_quote(f)).collect();
            errs.push(FieldError::forbidden(
                child(path, "finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
            ));
        }
    }
    if new.generation.unwrap_or(0) < old.generation.unwrap_or(0) {
        errs.push(FieldError::invalid(
            child(path, "generation"),
            new.generation.unwrap_or(0),
            "must not be decremented",
        ));
    }
    let immutable = |errs: &mut Errors, field: &str, n: Value, o: Value| {
        if n != o {
            errs.push(FieldError::invalid(child(path, field), n, IMMUTABLE_MSG));
        }
    };
    let s = |v: &Option<String>| Value::String(v.clone().unwrap_or_default());
    let t = |v: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        v.as_ref()
            .map_or(Value::Null, |t| Value::String(t.0.to_string()))
    };
    immutable(&mut errs, "name", s(&new.name), s(&old.name));
    immutable(&mut errs, "namespace", s(&new.namespace), s(&old.namespace));
    immutable(&mut errs, "uid", s(&new.uid), s(&old.uid));
    immutable(
        &mut errs,
        "creationTimestamp",
        t(&new.creation_timestamp),
        t(&old.creation_timestamp),
    );
    immutable(
        &mut errs,
        "deletionTimestamp",
        t(&new.deletion_timestamp),
        t(&old.deletion_timestamp),
    );
    immutable(
        &mut errs,
        "deletionGracePeriodSeconds",
        new.deletion_grace_period_seconds
            .map_or(Value::Null, Value::from),
        old.deletion_grace_period_seconds
            .map_or(Value::Null, Value::from),
    );
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
