//! PATCH on objects (upstream `handlers/patch.go`): the body is applied to the current
//! object with the patch kind the `Content-Type` names, then the result goes through the
//! ordinary update path (status splitting, generation, validation). A patch that does not
//! pin `metadata.resourceVersion` is re-applied on conflict; server-side apply creates the
//! object when it is absent (201). A converted version (`autoscaling/v1`) is patched as its
//! client sees it: the stored object is converted to it, patched, and converted back.

use std::sync::Arc;

use api::patch::PatchType;
use api::registry::ResourceInfo;
use api::status::ApiError;
use http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::meta::{meta_mut, meta_str};
use crate::options::{PatchOptions, UpdateMode};
use crate::registry::Registry;

/// The patch kind (re-exported from the `api` crate).
pub type PatchKind = PatchType;

/// Extension: choosing the patch kind from request headers.
pub trait FromHeaders: Sized {
    /// The patch kind named by `Content-Type`; 415 otherwise.
    fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError>;
}

impl FromHeaders for PatchType {
    fn from_headers(headers: &HeaderMap) -> Result<PatchType, ApiError> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        PatchType::from_content_type(ct).ok_or_else(|| {
            ApiError::unsupported_patch_type(
                ct,
                &[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                    "application/strategic-merge-patch+json",
                ],
            )
        })
    }
}

/// Applies `patch` of `kind` to `current`.
pub fn apply_patch(
    info: &ResourceInfo,
    kind: PatchType,
    current: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    match kind {
        PatchType::Json => api::patch::json_patch(current, patch).map_err(ApiError::from),
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "json: cannot unmarshal non-object into Go value of type map[string]interface {}",
                ));
            }
            Ok(api::patch::merge_patch(current, patch))
        }
        PatchType::StrategicMerge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "json: cannot unmarshal non-object into Go value of type map[string]interface {}",
                ));
            }
            api::patch::strategic_merge(current, patch, info.kind).map_err(ApiError::from)
        }
        PatchType::Apply => Err(ApiError::internal(
            "apply patches go through server_side_apply",
        )),
    }
}

fn check_apply_body(info: &ResourceInfo, applied: &Value) -> Result<(), ApiError> {
    if !applied.is_object() {
        return Err(ApiError::bad_request(
            "apply configuration must be an object",
        ));
    }
    let av = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let k = applied.get("kind").and_then(Value::as_str).unwrap_or("");
    if av.is_empty() || k.is_empty() {
        return Err(ApiError::bad_request("invalid object type: /, Kind="));
    }
    if av != info.api_version() || k != info.kind {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            info.api_version()
        )));
    }
    if applied.pointer("/metadata/managedFields").is_some() {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    Ok(())
}

/// PATCH of an object or its `status` (or a CSR's `approval`) subresource. Returns the result, whether it was
/// created (apply on an absent object) and decoding warnings.
#[allow(clippy::too_many_arguments)]
pub async fn patch(
    registry: &Registry,
    info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    kind: PatchType,
    body: &[u8],
    sub: Option<&str>,
    opts: &PatchOptions,
) -> Result<(Arc<Value>, bool, Vec<String>), ApiError> {
    let patch = kind.parse_body(body).map_err(ApiError::from)?;
    // A converted version (`api::convert`) is patched as the client sees it: the stored
    // object is converted to it, patched, and the result converted back.
    let client_info = info;
    let info = api::registry::storage(info);
    let fv = opts.write.field_validation;
    let mode = match sub {
        Some("status") => UpdateMode::Status,
        Some("approval") => UpdateMode::Approval,
        Some("ephemeralcontainers") => UpdateMode::EphemeralContainers,
        _ => UpdateMode::Main,
    };
    loop {
        let Some(old) = registry.store().get(&Registry::key(info, ns, name)) else {
            if kind == PatchType::Apply && sub.is_none() {
                check_apply_body(client_info, &patch)?;
                let mut obj = patch.clone();
                let body_name = meta_str(&obj, "name");
                if !body_name.is_empty() && body_name != name {
                    return Err(name_mismatch(body_name, name));
                }
                meta_mut(&mut obj).insert("name".into(), json!(name));
                if info.namespaced {
                    meta_mut(&mut obj).insert("namespace".into(), json!(ns));
                }
                let obj = ssa(info, None, &obj, opts)?;
                let (obj, _, earlier) = crate::rest::body_to_storage(client_info, obj, vec![], fv)?;
                match registry
                    .create_inner(info, ns, obj, &[], &opts.write, false)
                    .await
                {
                    Ok((v, w)) => return Ok((v, true, [earlier, w].concat())),
                    Err(e) if e.reason == "AlreadyExists" => continue,
                    Err(e) => return Err(e),
                }
            }
            return Err(ApiError::not_found(info, name));
        };
        let view = if api::registry::is_converted(client_info) {
            Arc::new(api::convert::to_served(client_info, &old)?)
        } else {
            old.clone()
        };
        let patched = if kind == PatchType::Apply {
            check_apply_body(client_info, &patch)?;
            ssa(info, Some(&*view), &patch, opts)?
        } else {
            apply_patch(info, kind, &view, &patch)?
        };
        if !patched.is_object() {
            return Err(ApiError::bad_request("the patch did not produce an object"));
        }
        let new_name = meta_str(&patched, "name");
        if new_name != name {
            return Err(name_mismatch(new_name, name));
        }
        let old_rv = meta_str(&old, "resourceVersion");
        let new_rv = meta_str(&patched, "resourceVersion");
        let pinned = !new_rv.is_empty() && new_rv != old_rv;
        if pinned {
            return Err(ApiError::conflict_modified(info, name));
        }
        let (patched, _, earlier) = crate::rest::body_to_storage(client_info, patched, vec![], fv)?;
        match registry
            .apply_update(
                info,
                ns,
                name,
                &old,
                patched,
                &opts.write,
                mode,
                kind != PatchType::Apply,
            )
            .await?
        {
            Some((v, w)) => return Ok((v, false, [earlier, w].concat())),
            None => continue,
        }
    }
}

/// Server-side apply through the `api` crate (field ownership, conflicts, pruning).
fn ssa(
    info: &ResourceInfo,
    live: Option<&Value>,
    applied: &Value,
    opts: &PatchOptions,
) -> Result<Value, ApiError> {
    let manager = opts
        .write
        .field_manager
        .as_deref()
        .unwrap_or(crate::strategy::DEFAULT_MANAGER);
    let now = crate::meta::rfc3339(crate::meta::now());
    api::patch::server_side_apply(live, applied, info.kind, manager, opts.force, &now)
        .map_err(ApiError::from)
}

fn name_mismatch(body: &str, url: &str) -> ApiError {
    ApiError::bad_request(format!(
        "the name of the object ({body}) does not match the name on the URL ({url})"
    ))
}
