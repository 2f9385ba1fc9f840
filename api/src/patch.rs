//! The four PATCH kinds the API server accepts, and field ownership (`managedFields`).
//!
//! * [`json_patch()`]: RFC 6902 (`application/json-patch+json`, `kubectl rollout undo`).
//! * [`merge_patch`]: RFC 7396 (`application/merge-patch+json`, `kubectl scale/label/annotate`).
//! * [`strategic_merge`]: Kubernetes' strategic merge patch
//!   (`application/strategic-merge-patch+json`, client-side `kubectl apply`, `set image`,
//!   `rollout restart`, `kubectl patch`), a port of upstream
//!   `apimachinery/pkg/util/strategicpatch` driven by the per-type table in `patch/schema.rs`.
//!   [`three_way_strategic`] computes the patch `kubectl apply` would send.
//! * [`server_side_apply`]: `application/apply-patch+yaml`, with `metadata.managedFields`
//!   maintained like upstream's structured-merge-diff; [`record_update`] records ordinary writes.
//!
//! Start at [`PatchType`] and the function for the patch kind at hand; errors are [`PatchError`],
//! which knows the HTTP code and reason upstream answers with.

mod schema;
mod smp;
mod ssa;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::status::{ApiError, StatusCause, StatusDetails};

/// Patch metadata of a built-in type's fields as OpenAPI extensions (for the served schemas).
pub fn openapi_extensions(type_name: &str) -> Vec<(&'static str, serde_json::Map<String, Value>)> {
    schema::openapi_extensions(type_name)
}

pub use smp::{
    LAST_APPLIED_ANNOTATION, kubectl_modified_configuration, last_applied, three_way_strategic,
    two_way_strategic,
};
pub use ssa::{
    FieldConflict, manager_from_user_agent, record_update, record_update_with, server_side_apply,
};

/// Upstream refuses JSON patches with more operations than this (413).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The patch kind, chosen by the request's `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7396).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type for a `Content-Type` header value; parameters (`; charset=utf-8`) and case
    /// are ignored. `None` means upstream's 415.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }

    /// The media type, as listed in upstream's 415 message.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }

    /// Decode a request body of this type: JSON for the first three, YAML (a superset of JSON)
    /// for apply. Errors are 400s worded like upstream.
    pub fn parse_body(self, body: &[u8]) -> Result<Value, PatchError> {
        match self {
            PatchType::Apply => {
                let text = std::str::from_utf8(body)
                    .map_err(|e| PatchError::Malformed(format!("error decoding YAML: {e}")))?;
                // An empty document is an empty apply configuration (which then fails for lack
                // of apiVersion/kind), as with upstream's YAML decoder.
                if text.trim().is_empty() {
                    return Ok(Value::Object(serde_json::Map::new()));
                }
                crate::yaml::from_str(text)
                    .map_err(|e| PatchError::Malformed(format!("error decoding YAML: {e}")))
            }
            _ => serde_json::from_slice::<Value>(body)
                .map_err(|e| PatchError::Malformed(format!("error decoding patch: {e}"))),
        }
    }
}

/// Why a patch could not be applied. [`PatchError::code`] and [`PatchError::reason`] give the
/// HTTP status and `Status.reason` upstream answers with.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not valid JSON/YAML or not the shape the patch type needs (400 BadRequest).
    #[error("{0}")]
    Malformed(String),
    /// A JSON patch with more operations than [`MAX_JSON_PATCH_OPERATIONS`] (413).
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations {
        /// Operations in the request.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A JSON patch operation failed, including a failed `test` (422; upstream's generic
    /// "the server rejected our request due to an error in our request", this text as cause).
    #[error("{0}")]
    JsonPatchFailed(String),
    /// A strategic-merge directive in the wrong format: `$deleteFromPrimitiveList`,
    /// `$retainKeys` or `$setElementOrder` malformed (400 BadRequest, upstream's wording).
    #[error("{0}")]
    BadDirective(String),
    /// A strategic merge patch upstream rejects with 422: lists of lists, or a patch with fields
    /// outside its own `$retainKeys` list.
    #[error("{0}")]
    Unprocessable(String),
    /// Any other strategic-merge failure (missing merge key, unknown `$patch` value, mismatched
    /// types…). Upstream passes these through as plain errors, so they are 500s.
    #[error("{0}")]
    StrategicMerge(String),
    /// Strategic merge patch on a kind without a schema (upstream: custom resources) (415).
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )]
    StrategicMergeUnsupported {
        /// The kind.
        kind: String,
    },
    /// Server-side apply found fields owned by other managers whose values would change (409
    /// Conflict; the causes list each field and manager).
    #[error("{}", ssa::conflict_message(.0))]
    ApplyConflict(Vec<FieldConflict>),
    /// The apply configuration is unusable: not an object, `managedFields` set, missing or
    /// mismatched `apiVersion`/`kind` (400 BadRequest).
    #[error("{0}")]
    InvalidApply(String),
    /// Server-side apply could not type the configuration or the live object against the
    /// schema: a list item without its key field, duplicate list items (500, upstream's plain
    /// `failed to create typed patch object (ns/name; apps/v1, Kind=…): …` error).
    #[error("{0}")]
    ApplyFailed(String),
}

impl PatchError {
    /// The HTTP status code upstream answers with.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::Malformed(_)
            | PatchError::BadDirective(_)
            | PatchError::InvalidApply(_) => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::JsonPatchFailed(_) | PatchError::Unprocessable(_) => 422,
            PatchError::StrategicMerge(_) | PatchError::ApplyFailed(_) => 500,
            PatchError::StrategicMergeUnsupported { .. } => 415,
            PatchError::ApplyConflict(_) => 409,
        }
    }

    /// The `Status.reason` upstream answers with (`""` for its reason-less 500s).
    pub fn reason(&self) -> &'static str {
        match self.code() {
            400 => "BadRequest",
            409 => "Conflict",
            413 => "RequestEntityTooLarge",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            _ => "",
        }
    }

    /// The `Status.message`. For 422s upstream puts a generic sentence here and the real text in
    /// `details.causes[0]` (type `UnexpectedServerResponse`), see [`PatchError::cause`].
    pub fn status_message(&self) -> String {
        match self.code() {
            422 => "the server rejected our request due to an error in our request".to_string(),
            _ => self.to_string(),
        }
    }

    /// The detailed message upstream puts in `details.causes` (422s), if any.
    pub fn cause(&self) -> Option<String> {
        (self.code() == 422).then(|| self.to_string())
    }

    /// The `Status` upstream answers with: 409s list each conflicting field as a
    /// `FieldManagerConflict` cause, 422s carry the real text as an `UnexpectedServerResponse`
    /// cause, 413s are prefixed `Request entity too large: `, 500s have an empty reason.
    pub fn to_api_error(&self) -> ApiError {
        let cause = |reason: &str, message: String, field: String| StatusCause {
            reason: reason.to_string(),
            message,
            field,
        };
        let mut err = ApiError::new(self.code(), self.reason(), self.status_message());
        match self {
            PatchError::ApplyConflict(conflicts) => {
                let causes = conflicts
                    .iter()
                    .map(|c| {
                        let message = format!("conflict with {}", c.manager);
                        cause("FieldManagerConflict", message, c.field.clone())
                    })
                    .collect();
                err.details = Some(StatusDetails {
                    causes,
                    ..StatusDetails::default()
                });
            }
            PatchError::TooManyOperations { .. } => {
                err.message = format!("Request entity too large: {self}");
            }
            _ => {
                if let Some(text) = self.cause() {
                    let causes = vec![cause("UnexpectedServerResponse", text, String::new())];
                    err.details = Some(StatusDetails {
                        causes,
                        ..StatusDetails::default()
                    });
                }
            }
        }
        err
    }
}

impl From<PatchError> for ApiError {
    fn from(e: PatchError) -> ApiError {
        e.to_api_error()
    }
}

/// Apply an RFC 7396 JSON merge patch: objects merge recursively, `null` deletes, anything else
/// (including arrays) replaces.
pub fn merge_patch(original: &Value, patch: &Value) -> Value {
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    doc
}

/// Apply an RFC 6902 JSON patch (a list of operations).
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| {
            PatchError::Malformed(
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch".to_string(),
            )
        })?
        .len();
    if ops > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            got: ops,
            max: MAX_JSON_PATCH_OPERATIONS,
        });
    }
    let parsed: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::Malformed(format!("error decoding patch: {e}")))?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &parsed)
        .map_err(|e| PatchError::JsonPatchFailed(json_patch_failure(&parsed, &e)))?;
    Ok(doc)
}

/// The wording of upstream's JSON patch library (evanphx/json-patch v4) for a failed
/// operation, e.g. `testing value /spec/replicas failed: test failed`.
fn json_patch_failure(patch: &json_patch::Patch, e: &json_patch::PatchError) -> String {
    use json_patch::{PatchErrorKind, PatchOperation};
    let path = e.path.to_string();
    let op = patch.0.get(e.operation);
    match (&e.kind, op) {
        (PatchErrorKind::TestFailed, _) => format!("testing value {path} failed: test failed"),
        (PatchErrorKind::InvalidFromPointer, Some(PatchOperation::Move(m))) => {
            format!(
                "move operation does not apply: doc is missing from path: {}: missing value",
                m.from
            )
        }
        (PatchErrorKind::InvalidFromPointer, Some(PatchOperation::Copy(c))) => {
            format!(
                "copy operation does not apply: doc is missing from path: {}: missing value",
                c.from
            )
        }
        (PatchErrorKind::InvalidPointer, Some(PatchOperation::Add(_))) => {
            format!("add operation does not apply: doc is missing path: {path:?}: missing value")
        }
        (PatchErrorKind::InvalidPointer, Some(PatchOperation::Remove(_))) => {
            format!("remove operation does not apply: doc is missing path: {path:?}: missing value")
        }
        (PatchErrorKind::InvalidPointer, Some(PatchOperation::Replace(_))) => {
            format!("replace operation does not apply: doc is missing key: {path}: missing value")
        }
        (PatchErrorKind::InvalidPointer, Some(PatchOperation::Test(_))) => {
            format!("test operation does not apply: is missing path: {path}: missing value")
        }
        _ => e.to_string(),
    }
}

/// Apply a strategic merge patch to `original`, an object of `kind` (`"Deployment"`). Kinds
/// without a schema get [`PatchError::StrategicMergeUnsupported`] (use [`has_strategic_schema`]
/// to decide up front), like upstream does for custom resources.
pub fn strategic_merge(original: &Value, patch: &Value, kind: &str) -> Result<Value, PatchError> {
    let schema =
        schema::Schema::for_kind(kind).ok_or_else(|| PatchError::StrategicMergeUnsupported {
            kind: kind.to_string(),
        })?;
    smp::apply(original, patch, schema)
}

/// Whether [`strategic_merge`] knows `kind`.
pub fn has_strategic_schema(kind: &str) -> bool {
    schema::Schema::for_kind(kind).is_some()
}

/// Whether a strategic merge patch (or a merge patch) changes nothing: `{}` or only empty
/// objects, which `kubectl apply` reports as "unchanged" without sending a request.
pub fn is_empty_patch(patch: &Value) -> bool {
    match patch {
        Value::Object(m) => m
            .values()
            .all(|v| matches!(v, Value::Object(_)) && is_empty_patch(v)),
        Value::Null => true,
        _ => false,
    }
}
