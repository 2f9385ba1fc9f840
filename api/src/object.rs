//! The write pipeline the API server runs on every create/update body:
//! [`decode`] (apiVersion/kind check → unknown-field detection → typed k8s-openapi round trip →
//! defaulting), then [`validate_create`] / [`validate_update`] (in [`crate::validation`]).
//!
//! Objects stay `serde_json::Value`s at the API; the typed structs are used inside, so an
//! object that comes out of [`decode`] has exactly the shape (and defaults) upstream stores.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
    ReplicationController, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::defaults;
use crate::registry::ResourceInfo;
use crate::status::{ApiError, FieldError, go_quote};

pub use crate::validation::{
    validate_approval_update, validate_create, validate_ephemeral_containers_update,
    validate_status_update, validate_update,
};

/// The `fieldValidation` query parameter: what to do with unknown or duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Reject the request with 400 BadRequest.
    Strict,
    /// Accept, dropping the fields, and return a warning per field (the default upstream).
    #[default]
    Warn,
    /// Accept, dropping the fields silently.
    Ignore,
}

impl FieldValidation {
    /// Parses the query parameter; absent or empty means [`FieldValidation::Warn`], as the
    /// upstream API server defaults it. Anything else but `Strict`/`Warn`/`Ignore` is rejected
    /// like upstream's options validation.
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s.unwrap_or("") {
            "" | "Warn" => Ok(Self::Warn),
            "Strict" => Ok(Self::Strict),
            "Ignore" => Ok(Self::Ignore),
            other => Err(ApiError::invalid_kind(
                "meta.k8s.io",
                "CreateOptions",
                "",
                vec![FieldError::not_supported(
                    "fieldValidation",
                    other,
                    &["", "Ignore", "Strict", "Warn"],
                )],
            )),
        }
    }
}

/// A decoded, defaulted object and the warnings to return (`Warning: 299` headers).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The object after the typed round trip and defaulting.
    pub value: Value,
    /// Warnings such as `unknown field "spec.foo"` (only under [`FieldValidation::Warn`]).
    pub warnings: Vec<String>,
}

/// Decodes a request body for `info`: fills in a missing `apiVersion`/`kind` (a different one
/// is a 400), finds unknown fields (Strict → 400 `… strict decoding error: unknown field
/// "spec.foo", …`; Warn → warnings), round-trips through the k8s-openapi type (dropping unknown
/// fields; a wrong type is a 400 naming the field) and applies Kubernetes defaulting.
pub fn decode(info: &ResourceInfo, value: Value, fv: FieldValidation) -> Result<Decoded, ApiError> {
    decode_with_duplicates(info, value, &[], fv)
}

/// Like [`decode`], also reporting `duplicates` (paths from [`parse_json`]) as upstream's
/// strict decoder does: `duplicate field "spec.replicas"`.
pub fn decode_with_duplicates(
    info: &ResourceInfo,
    mut value: Value,
    duplicates: &[String],
    fv: FieldValidation,
) -> Result<Decoded, ApiError> {
    let Some(obj) = value.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "Object in version \"{}\" cannot be handled as a {}: the body must be a JSON object",
            info.version, info.kind
        )));
    };
    let api_version = info.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            obj.insert("apiVersion".into(), Value::String(api_version.clone()));
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            obj.insert("kind".into(), Value::String(info.kind.to_string()));
        }
        Some(k) if k == info.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "{k} in version \"{}\" cannot be handled as a {}: the kind in the data ({k}) does not match the expected kind ({})",
                info.version, info.kind, info.kind
            )));
        }
    }
    let had_selector = value.pointer("/spec/selector").is_some();
    let untyped_paths = if info.kind == "Ingress" {
        paths_without_type(&value)
    } else {
        Vec::new()
    };
    let mut out = match info.kind {
        "Pod" => roundtrip::<Pod>(info, value, defaults::pod)?,
        "Service" => roundtrip::<Service>(info, value, defaults::service)?,
        "Endpoints" => roundtrip::<Endpoints>(info, value, defaults::endpoints)?,
        "Node" => roundtrip::<Node>(info, value, defaults::node)?,
        "Event" => roundtrip::<Event>(info, value, defaults::event)?,
        "ConfigMap" => roundtrip::<ConfigMap>(info, value, defaults::config_map)?,
        "Secret" => roundtrip::<Secret>(info, value, defaults::secret)?,
        // core/v1 ServiceAccounts have no defaulting.
        "ServiceAccount" => roundtrip::<ServiceAccount>(info, value, |_| {})?,
        "Namespace" => roundtrip::<Namespace>(info, value, defaults::namespace)?,
        "Deployment" => roundtrip::<Deployment>(info, value, defaults::deployment)?,
        "ReplicaSet" => roundtrip::<ReplicaSet>(info, value, defaults::replica_set)?,
        "ReplicationController" => {
            roundtrip::<ReplicationController>(info, value, defaults::replication_controller)?
        }
        "StatefulSet" => roundtrip::<StatefulSet>(info, value, defaults::stateful_set)?,
        "DaemonSet" => roundtrip::<DaemonSet>(info, value, defaults::daemon_set)?,
        "ControllerRevision" => {
            roundtrip::<ControllerRevision>(info, value, defaults::controller_revision)?
        }
        "EndpointSlice" => roundtrip::<EndpointSlice>(info, value, defaults::endpoint_slice)?,
        "Lease" => roundtrip::<Lease>(info, value, defaults::lease)?,
        // autoscaling/v1 is served by conversion (`crate::convert`): decoded and defaulted as
        // v1 here, converted to the stored v2 afterwards.
        "HorizontalPodAutoscaler" if info.version == "v1" => {
            roundtrip::<k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler>(
                info,
                value,
                defaults::horizontal_pod_autoscaler_v1,
            )?
        }
        "HorizontalPodAutoscaler" => roundtrip::<
            k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
        >(info, value, defaults::horizontal_pod_autoscaler)?,
        "Job" => roundtrip::<Job>(info, value, defaults::job)?,
        "CronJob" => roundtrip::<CronJob>(info, value, defaults::cron_job)?,
        // certificates.k8s.io/v1 has no defaulting.
        "CertificateSigningRequest" => roundtrip::<CertificateSigningRequest>(info, value, |_| {})?,
        // node.k8s.io/v1 has no defaulting.
        "RuntimeClass" => roundtrip::<RuntimeClass>(info, value, |_| {})?,
        "PersistentVolume" => {
            roundtrip::<PersistentVolume>(info, value, defaults::persistent_volume)?
        }
        "PersistentVolumeClaim" => {
            roundtrip::<PersistentVolumeClaim>(info, value, defaults::persistent_volume_claim)?
        }
        // policy/v1 has no defaulting.
        "PodDisruptionBudget" => roundtrip::<PodDisruptionBudget>(info, value, |_| {})?,
        "StorageClass" => roundtrip::<StorageClass>(info, value, defaults::storage_class)?,
        // networking.k8s.io/v1 defaults only an IngressClass's parameters scope.
        "Ingress" => roundtrip::<Ingress>(info, value, |_| {})?,
        "IngressClass" => roundtrip::<IngressClass>(info, value, defaults::ingress_class)?,
        // rbac.authorization.k8s.io/v1 defaults only the API groups of references.
        "Role" => roundtrip::<Role>(info, value, |_| {})?,
        "ClusterRole" => roundtrip::<ClusterRole>(info, value, |_| {})?,
        "RoleBinding" => roundtrip::<RoleBinding>(info, value, defaults::role_binding)?,
        "ClusterRoleBinding" => {
            roundtrip::<ClusterRoleBinding>(info, value, defaults::cluster_role_binding)?
        }
        other => {
            return Err(ApiError::internal(format!("no decoder for kind {other}")));
        }
    };
    // k8s-openapi makes a missing required selector an empty one; keep it missing so
    // validation reports `spec.selector: Required value` like upstream's nil pointer.
    if matches!(
        info.kind,
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet"
    ) && !had_selector
        && let Some(spec) = out.value.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("selector");
    }
    // k8s-openapi makes a path's missing `pathType` an empty one; keep it missing so
    // validation says "pathType must be specified" like upstream's nil pointer.
    for (rule, path) in untyped_paths {
        if let Some(p) = out
            .value
            .pointer_mut(&format!("/spec/rules/{rule}/http/paths/{path}"))
            .and_then(Value::as_object_mut)
        {
            p.remove("pathType");
        }
    }
    let mut problems: Vec<String> = duplicates
        .iter()
        .map(|d| format!("duplicate field {}", go_quote(d)))
        .collect();
    problems.extend(
        out.unknown
            .iter()
            .map(|u| format!("unknown field {}", go_quote(u))),
    );
    let warnings = match fv {
        FieldValidation::Strict if !problems.is_empty() => {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                info.kind,
                info.version,
                info.kind,
                problems.join(", ")
            )));
        }
        FieldValidation::Warn => problems,
        _ => Vec::new(),
    };
    Ok(Decoded {
        value: std::mem::take(&mut out.value),
        warnings,
    })
}

/// The `(rule, path)` indices of an Ingress's HTTP paths without a `pathType` (or with null).
fn paths_without_type(value: &Value) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let rules = value.pointer("/spec/rules").and_then(Value::as_array);
    for (r, rule) in rules.into_iter().flatten().enumerate() {
        let paths = rule.pointer("/http/paths").and_then(Value::as_array);
        for (p, path) in paths.into_iter().flatten().enumerate() {
            if path.get("pathType").is_none_or(Value::is_null) {
                out.push((r, p));
            }
        }
    }
    out
}

/// The result of a typed round trip: the re-serialized object and the unknown field paths.
struct RoundTrip {
    value: Value,
    unknown: Vec<String>,
}

fn roundtrip<T: DeserializeOwned + Serialize>(
    info: &ResourceInfo,
    value: Value,
    default: fn(&mut T),
) -> Result<RoundTrip, ApiError> {
    let (mut typed, unknown) = from_value_tracking::<T>(value).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            info.kind, info.version, info.kind
        ))
    })?;
    default(&mut typed);
    let mut value = serde_json::to_value(&typed).map_err(ApiError::internal)?;
    canonical_quantities(info.kind, &mut value).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            info.kind, info.version, info.kind
        ))
    })?;
    Ok(RoundTrip { value, unknown })
}

/// Parses every resource quantity of the object (a bad one fails decoding, as Go's
/// `Quantity.UnmarshalJSON` does) and rewrites it in canonical form rounded up to milli
/// precision (`SetDefaults_ResourceList`), so `0.5` is stored as `500m` and `1024Mi` as `1Gi`.
fn canonical_quantities(
    kind: &str,
    value: &mut Value,
) -> Result<(), crate::quantity::QuantityError> {
    let mut lists: Vec<&mut Value> = Vec::new();
    let spec_pointer = match kind {
        "Pod" => Some("/spec"),
        "Deployment"
        | "ReplicaSet"
        | "ReplicationController"
        | "StatefulSet"
        | "DaemonSet"
        | "Job" => Some("/spec/template/spec"),
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    };
    match (kind, spec_pointer) {
        (_, Some(ptr)) => {
            if let Some(spec) = value.pointer_mut(ptr).and_then(Value::as_object_mut) {
                for (field, v) in spec.iter_mut() {
                    match field.as_str() {
                        "containers" | "initContainers" => {
                            for c in v.as_array_mut().into_iter().flatten() {
                                if let Some(r) =
                                    c.get_mut("resources").and_then(Value::as_object_mut)
                                {
                                    for (name, l) in r.iter_mut() {
                                        if name == "limits" || name == "requests" {
                                            lists.push(l);
                                        }
                                    }
                                }
                            }
                        }
                        "overhead" => lists.push(v),
                        _ => {}
                    }
                }
            }
        }
        ("PersistentVolume", None) => {
            if let Some(c) = value.pointer_mut("/spec/capacity") {
                lists.push(c);
            }
        }
        ("PersistentVolumeClaim", None) => {
            if let Some(obj) = value.as_object_mut() {
                for (part, v) in obj.iter_mut() {
                    match part.as_str() {
                        "spec" => {
                            if let Some(r) = v.get_mut("resources").and_then(Value::as_object_mut) {
                                for (name, l) in r.iter_mut() {
                                    if name == "limits" || name == "requests" {
                                        lists.push(l);
                                    }
                                }
                            }
                        }
                        "status" => {
                            if let Some(c) = v.get_mut("capacity") {
                                lists.push(c);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        ("Node", None) => {
            if let Some(st) = value.get_mut("status").and_then(Value::as_object_mut) {
                for (name, l) in st.iter_mut() {
                    if name == "capacity" || name == "allocatable" {
                        lists.push(l);
                    }
                }
            }
        }
        _ => {}
    }
    for list in lists {
        for q in list
            .as_object_mut()
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            if let Some(s) = q.as_str() {
                let parsed = crate::quantity::Quantity::parse(s)?;
                *q = Value::String(parsed.round_up_milli().canonical());
            }
        }
    }
    Ok(())
}

/// Deserializes `value` into `T`, returning the paths of the fields `T` does not know
/// (`spec.containers[0].foo`). A type error names its field: `spec.replicas: invalid type: …`.
pub fn from_value_tracking<T: DeserializeOwned>(value: Value) -> Result<(T, Vec<String>), String> {
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(format_path(&path));
    let de = serde_ignored::Deserializer::new(value, &mut record);
    let typed: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })?;
    Ok((typed, unknown))
}

/// Kubernetes notation for a serde path: `spec.containers[0].foo`.
fn format_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", format_path(parent)),
        Path::Map { parent, key } => {
            let parent = format_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => format_path(parent),
    }
}

/// Deserializes a typed object from a stored/decoded value (no unknown-field tracking).
pub fn typed<T: DeserializeOwned>(value: &Value) -> Result<T, ApiError> {
    T::deserialize(value).map_err(|e| ApiError::internal(format!("decoding stored object: {e}")))
}

/// Parses a JSON request body, reporting duplicate keys by path (`metadata.name`) the way
/// upstream's strict decoder does. A syntax error is a 400 BadRequest.
pub fn parse_json(bytes: &[u8]) -> Result<(Value, Vec<String>), ApiError> {
    let mut dups = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde::de::DeserializeSeed::deserialize(
        dup::Seed {
            path: String::new(),
            dups: &mut dups,
            depth: 0,
        },
        &mut de,
    )
    .and_then(|v| de.end().map(|()| v))
    .map_err(|e| ApiError::bad_request(format!("json: {e}")))?;
    Ok((value, dups))
}

/// A `serde_json::Value` builder that records duplicate object keys with their paths.
mod dup {
    use std::fmt;

    use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    /// Deepest nesting accepted, against stack exhaustion.
    const MAX_DEPTH: usize = 200;

    pub(super) struct Seed<'a> {
        pub(super) path: String,
        pub(super) dups: &'a mut Vec<String>,
        pub(super) depth: usize,
    }

    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Value;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            if self.depth > MAX_DEPTH {
                return Err(D::Error::custom("nesting too deep"));
            }
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            loop {
                let seed = Seed {
                    path: format!("{}[{}]", self.path, out.len()),
                    dups: &mut *self.dups,
                    depth: self.depth + 1,
                };
                match seq.next_element_seed(seed)? {
                    Some(v) => out.push(v),
                    None => break,
                }
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                if out.contains_key(&key) {
                    self.dups.push(path.clone());
                }
                let seed = Seed {
                    path,
                    dups: &mut *self.dups,
                    depth: self.depth + 1,
                };
                let v = map.next_value_seed(seed)?;
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
    }
}

#[cfg(test)]
mod tests;
