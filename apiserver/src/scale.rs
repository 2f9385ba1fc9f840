//! The `scale` subresource of deployments, replicasets, statefulsets and replication
//! controllers: an `autoscaling/v1` `Scale`
//! view (`spec.replicas`, `status.replicas`, `status.selector` in string form) that reads
//! and writes the owner's `spec.replicas` (upstream `ScaleREST`).

use std::sync::Arc;

use api::patch::PatchType;
use api::registry::ResourceInfo;
use api::status::{ApiError, FieldError};
use serde_json::{Value, json};

use api::selector::LabelSelector;

use crate::meta::meta_str;
use crate::patch::apply_patch;
use crate::registry::{Registry, UpdateMode, WriteOptions};

/// The `Scale` of a workload object (upstream `scaleFromDeployment`); an invalid selector
/// (which validation keeps out of storage) is a 400, as upstream answers.
pub fn to_scale(info: &ResourceInfo, obj: &Value) -> Result<Value, ApiError> {
    let m = |f: &str| {
        obj.pointer(&format!("/metadata/{f}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut metadata = serde_json::Map::new();
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        let v = m(f);
        if !v.is_null() {
            metadata.insert(f.into(), v);
        }
    }
    let raw = obj.pointer("/spec/selector").unwrap_or(&Value::Null);
    // A ReplicationController's selector is a plain label map.
    let selector = if info.kind == "ReplicationController" {
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_value(raw.clone()).unwrap_or_default();
        LabelSelector::from_map(&map)?
    } else {
        LabelSelector::from_json(raw)?
    };
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector.to_string(),
        },
    }))
}

fn scale_name(scale: &Value) -> &str {
    meta_str(scale, "name")
}

/// PUT of a `Scale`: checks kind, name, replicas ≥ 0 and the resourceVersion precondition,
/// then sets the owner's `spec.replicas`.
pub async fn update(
    registry: &Registry,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    scale: Value,
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    if !scale.is_object() {
        return Err(ApiError::bad_request(
            "the body must be an autoscaling/v1 Scale object",
        ));
    }
    if let Some(k) = scale.get("kind").and_then(Value::as_str)
        && !k.is_empty()
        && k != "Scale"
    {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type Scale): kind {k:?}"
        )));
    }
    let body_name = scale_name(&scale);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let replicas = match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| {
            ApiError::bad_request("Scale in version \"v1\" cannot be handled as a Scale: spec.replicas: expected an integer")
        })?,
    };
    if replicas < 0 {
        return Err(ApiError::invalid_kind(
            "autoscaling",
            "Scale",
            name,
            vec![FieldError::invalid(
                "spec.replicas",
                replicas,
                "must be greater than or equal to 0",
            )],
        ));
    }
    let rv = meta_str(&scale, "resourceVersion").to_string();
    let mut conflict = false;
    let out: Arc<Value> = registry
        .update_with_mode(info, ns, name, UpdateMode::Main, opts, &mut |obj| {
            if !rv.is_empty() && meta_str(obj, "resourceVersion") != rv {
                conflict = true;
                return Ok(false);
            }
            obj["spec"]["replicas"] = json!(replicas);
            Ok(true)
        })
        .await?;
    if conflict {
        return Err(ApiError::conflict_modified(info, name));
    }
    to_scale(info, &out)
}

/// PATCH of a `Scale`: the patch applies to the `Scale` view, the result is written as by
/// [`update`].
pub async fn patch(
    registry: &Registry,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    kind: PatchType,
    body: &[u8],
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    let p = kind.parse_body(body).map_err(ApiError::from)?;
    let current = to_scale(info, &*registry.get(info, ns, name)?)?;
    let patched = match kind {
        // Scale has no lists: strategic merge is a merge patch here.
        PatchType::StrategicMerge | PatchType::Apply => {
            if !p.is_object() {
                return Err(ApiError::bad_request("the patch must be an object"));
            }
            api::patch::merge_patch(&current, &p)
        }
        _ => apply_patch(info, kind, &current, &p)?,
    };
    let mut patched = patched;
    if p.pointer("/metadata/resourceVersion").is_none()
        && let Some(m) = patched.get_mut("metadata").and_then(Value::as_object_mut)
    {
        // Not pinned by the client: apply to whatever is current.
        m.remove("resourceVersion");
    }
    update(registry, info, ns, name, patched, opts).await
}
