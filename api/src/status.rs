//! Kubernetes `Status` errors, shaped exactly like apimachinery's `StatusError`s
//! (`k8s.io/apimachinery/pkg/api/errors`) and field errors (`.../util/validation/field`),
//! because kubectl prints their `reason` and `message` verbatim.
//!
//! Start at [`ApiError`]: one constructor per upstream `New*` function; [`ApiError::to_status`]
//! renders the wire body. [`FieldError`] is one validation failure; its `Display` is
//! upstream's `field.Error.Error()`.

use std::fmt;

use serde_json::{Map, Value, json};

use crate::registry::ResourceInfo;

/// The kind of a field validation failure (upstream `field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseType {
    /// `FieldValueNotFound`: a referenced value does not exist ("Not found").
    NotFound,
    /// `FieldValueRequired`: a required field is missing ("Required value").
    Required,
    /// `FieldValueDuplicate`: a value that must be unique is repeated ("Duplicate value").
    Duplicate,
    /// `FieldValueInvalid`: a value is malformed or out of range ("Invalid value").
    Invalid,
    /// `FieldValueNotSupported`: a value is not one of the supported ones ("Unsupported value").
    NotSupported,
    /// `FieldValueForbidden`: a field may not be set here ("Forbidden").
    Forbidden,
    /// `FieldValueTooLong`: a value is too long ("Too long").
    TooLong,
    /// `FieldValueTooMany`: a list has too many items ("Too many").
    TooMany,
    /// `InternalError`: validation itself failed ("Internal error").
    Internal,
    /// `FieldValueTypeInvalid`: a value has the wrong type ("Invalid value").
    TypeInvalid,
    /// `FieldValueUnknown`-style cause for unknown fields under strict decoding ("Unknown field").
    UnknownField,
}

impl CauseType {
    /// The cause `reason` on the wire (`FieldValueRequired`…).
    pub fn reason(self) -> &'static str {
        match self {
            CauseType::NotFound => "FieldValueNotFound",
            CauseType::Required => "FieldValueRequired",
            CauseType::Duplicate => "FieldValueDuplicate",
            CauseType::Invalid => "FieldValueInvalid",
            CauseType::NotSupported => "FieldValueNotSupported",
            CauseType::Forbidden => "FieldValueForbidden",
            CauseType::TooLong => "FieldValueTooLong",
            CauseType::TooMany => "FieldValueTooMany",
            CauseType::Internal => "InternalError",
            CauseType::TypeInvalid => "FieldValueTypeInvalid",
            CauseType::UnknownField => "FieldValueUnknown",
        }
    }

    /// The human text upstream prints (`ErrorType.String()`).
    pub fn text(self) -> &'static str {
        match self {
            CauseType::NotFound => "Not found",
            CauseType::Required => "Required value",
            CauseType::Duplicate => "Duplicate value",
            CauseType::Invalid | CauseType::TypeInvalid => "Invalid value",
            CauseType::NotSupported => "Unsupported value",
            CauseType::Forbidden => "Forbidden",
            CauseType::TooLong => "Too long",
            CauseType::TooMany => "Too many",
            CauseType::Internal => "Internal error",
            CauseType::UnknownField => "Unknown field",
        }
    }
}

/// One validation failure at a field path (upstream `field.Error`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What went wrong.
    pub kind: CauseType,
    /// Field path in Kubernetes notation: `spec.containers[0].name`, `metadata.labels[app]`.
    pub field: String,
    /// The offending value; `None` omits it from the message (upstream `omitValue`).
    pub bad_value: Option<Value>,
    /// Extra explanation appended after the value.
    pub detail: String,
}

impl FieldError {
    /// `field: Required value[: detail]`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(CauseType::Required, field, None, detail)
    }

    /// `field: Invalid value: <value>: detail`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(CauseType::Invalid, field, Some(value.into()), detail)
    }

    /// `field: Forbidden: detail`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(CauseType::Forbidden, field, None, detail)
    }

    /// `field: Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(CauseType::Duplicate, field, Some(value.into()), "")
    }

    /// `field: Not found: <value>`.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(CauseType::NotFound, field, Some(value.into()), "")
    }

    /// `field: Unsupported value: <value>: supported values: "a", "b"` (upstream `NotSupported`).
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        valid: &[&str],
    ) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(CauseType::NotSupported, field, Some(value.into()), detail)
    }

    /// `field: Too long: may not be more than N bytes` (upstream `TooLong`).
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Self::new(
            CauseType::TooLong,
            field,
            None,
            format!("may not be more than {max} {unit}"),
        )
    }

    /// `field: Too many: <actual>: must have at most N items` (upstream `TooMany`).
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(
            CauseType::TooMany,
            field,
            Some(json!(actual)),
            format!("must have at most {max} {unit}"),
        )
    }

    /// `field: Internal error: detail`.
    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(CauseType::Internal, field, None, detail)
    }

    /// A field error of any kind.
    pub fn new(
        kind: CauseType,
        field: impl Into<String>,
        bad_value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            field: field.into(),
            bad_value,
            detail: detail.into(),
        }
    }

    /// The message without the field path (upstream `ErrorBody`), used as the cause message.
    pub fn body(&self) -> String {
        let mut s = self.kind.text().to_string();
        let shows_value = !matches!(
            self.kind,
            CauseType::Required | CauseType::Forbidden | CauseType::TooLong | CauseType::Internal
        );
        if shows_value && let Some(v) = &self.bad_value {
            s.push_str(": ");
            s.push_str(&go_value(v));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Go's `%q` for a string (`strconv.Quote`), the one copy shared with the probe engine.
pub use gofmt::quote as go_quote;

/// Renders a bad value as upstream's `ErrorBody` would print the Go value it came from:
/// numbers and booleans plainly, strings `%q`-quoted, string maps as `map[string]string{…}`
/// (keys sorted, as Go prints maps), string lists as `[]string{…}`, `{"$go": s}` as `s`
/// verbatim, anything else as JSON.
pub fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        // A value printed verbatim: the `%#v` form of a Go struct, built by the validator.
        Value::Object(m) if m.len() == 1 && m.get("$go").is_some_and(Value::is_string) => m
            .get("$go")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        Value::Object(m) if m.values().all(Value::is_string) => {
            let mut pairs: Vec<(&String, &str)> = m
                .iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
                .collect();
            pairs.sort();
            let items: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
        Value::Array(a) if a.iter().all(Value::is_string) => {
            let items: Vec<String> = a
                .iter()
                .map(|v| go_quote(v.as_str().unwrap_or_default()))
                .collect();
            format!("[]string{{{}}}", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// Joins field errors like upstream's `utilerrors.NewAggregate(...).Error()`: one error alone,
/// several as `[a, b]`, identical messages once.
pub fn aggregate(errs: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// One cause in `Status.details.causes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusCause {
    /// Machine-readable cause (`FieldValueRequired`); empty when unset.
    pub reason: String,
    /// Human-readable description.
    pub message: String,
    /// Field path the cause refers to; empty when unset.
    pub field: String,
}

/// `Status.details`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusDetails {
    /// Name of the object concerned.
    pub name: String,
    /// Group of the object concerned.
    pub group: String,
    /// Kind (or, for most errors, the plural resource) concerned.
    pub kind: String,
    /// Individual causes (validation failures).
    pub causes: Vec<StatusCause>,
    /// Seconds after which the client may retry.
    pub retry_after_seconds: Option<i32>,
}

/// An API error: a failed `Status` with HTTP code, reason and message exactly as upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason` (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `BadRequest`…).
    pub reason: String,
    /// `Status.message`, what kubectl prints after `Error from server (<reason>): `.
    pub message: String,
    /// `Status.details`.
    pub details: Option<StatusDetails>,
}

impl ApiError {
    /// An error with just code, reason and message.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    fn with_resource(
        code: u16,
        reason: &str,
        message: String,
        info: &ResourceInfo,
        name: &str,
    ) -> Self {
        Self {
            code,
            reason: reason.to_string(),
            message,
            details: Some(StatusDetails {
                name: name.to_string(),
                group: info.group.to_string(),
                kind: info.plural.to_string(),
                ..StatusDetails::default()
            }),
        }
    }

    /// 404 `pods "x" not found` (upstream `NewNotFound`).
    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        let msg = format!("{} {} not found", info.qualified_resource(), go_quote(name));
        Self::with_resource(404, "NotFound", msg, info, name)
    }

    /// 409 `pods "x" already exists` (upstream `NewAlreadyExists`).
    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        let msg = format!(
            "{} {} already exists",
            info.qualified_resource(),
            go_quote(name)
        );
        Self::with_resource(409, "AlreadyExists", msg, info, name)
    }

    /// 409 `Operation cannot be fulfilled on pods "x": <msg>` (upstream `NewConflict`).
    pub fn conflict(info: &ResourceInfo, name: &str, msg: &str) -> Self {
        let msg = format!(
            "Operation cannot be fulfilled on {} {}: {msg}",
            info.qualified_resource(),
            go_quote(name)
        );
        Self::with_resource(409, "Conflict", msg, info, name)
    }

    /// The usual optimistic-concurrency conflict message.
    pub const MODIFIED: &'static str = "the object has been modified; please apply your changes to the latest version and try again";

    /// 409 conflict for a stale `resourceVersion` (upstream registry's `OptimisticLockErrorMsg`).
    pub fn conflict_modified(info: &ResourceInfo, name: &str) -> Self {
        Self::conflict(info, name, Self::MODIFIED)
    }

    /// 422 `Pod "x" is invalid: <aggregate>` with one cause per field error (upstream `NewInvalid`).
    pub fn invalid(info: &ResourceInfo, name: &str, errs: Vec<FieldError>) -> Self {
        Self::invalid_kind(info.group, info.kind, name, errs)
    }

    /// Like [`ApiError::invalid`] for a kind outside the registry (`Scale.autoscaling`).
    pub fn invalid_kind(group: &str, kind: &str, name: &str, errs: Vec<FieldError>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let message = if errs.is_empty() {
            format!("{qualified} {} is invalid", go_quote(name))
        } else {
            format!(
                "{qualified} {} is invalid: {}",
                go_quote(name),
                aggregate(&errs)
            )
        };
        let causes = errs
            .iter()
            .map(|e| StatusCause {
                reason: e.kind.reason().to_string(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        Self {
            code: 422,
            reason: "Invalid".to_string(),
            message,
            details: Some(StatusDetails {
                name: name.to_string(),
                group: group.to_string(),
                kind: kind.to_string(),
                causes,
                retry_after_seconds: None,
            }),
        }
    }

    /// 400 BadRequest with a free message (upstream `NewBadRequest`).
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", msg)
    }

    /// 410 Gone (upstream `NewGone`).
    pub fn gone(msg: impl Into<String>) -> Self {
        Self::new(410, "Gone", msg)
    }

    /// 410 Expired: `too old resource version: <requested> (<oldest>)`, what watches return
    /// for a compacted revision (upstream `NewResourceExpired` via the etcd3 store).
    pub fn expired(msg: impl Into<String>) -> Self {
        Self::new(410, "Expired", msg)
    }

    /// 401 `Unauthorized`, as the authentication filter answers.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 `pods "x" is forbidden: <msg>` (upstream `NewForbidden`); `name` may be empty.
    pub fn forbidden(info: &ResourceInfo, name: &str, msg: &str) -> Self {
        let message = if name.is_empty() {
            format!("{} is forbidden: {msg}", info.qualified_resource())
        } else {
            format!(
                "{} {} is forbidden: {msg}",
                info.qualified_resource(),
                go_quote(name)
            )
        };
        Self::with_resource(403, "Forbidden", message, info, name)
    }

    /// 405 `<action> is not supported on resources of kind "pods"` (upstream `NewMethodNotSupported`).
    pub fn method_not_allowed(info: &ResourceInfo, action: &str) -> Self {
        let message = format!(
            "{action} is not supported on resources of kind {}",
            go_quote(&info.qualified_resource())
        );
        Self::with_resource(405, "MethodNotAllowed", message, info, "")
    }

    /// 406 NotAcceptable: `only the following media types are accepted: a, b`.
    pub fn not_acceptable(accepted: &[&str]) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 415 UnsupportedMediaType for a request body in `content_type`.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        let _ = content_type;
        Self::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: \
             application/json, application/yaml",
        )
    }

    /// 415 for a PATCH content type the server does not handle (upstream patch handler text).
    pub fn unsupported_patch_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}; got {content_type}",
                accepted.join(", ")
            ),
        )
    }

    /// 413 `Request entity too large: <msg>` (upstream `NewRequestEntityTooLargeError`).
    pub fn request_entity_too_large(msg: &str) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: {msg}"),
        )
    }

    /// 500 `Internal error occurred: <msg>` with the message as cause (upstream `NewInternalError`).
    pub fn internal(msg: impl fmt::Display) -> Self {
        let msg = msg.to_string();
        Self {
            code: 500,
            reason: "InternalError".to_string(),
            message: format!("Internal error occurred: {msg}"),
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    message: msg,
                    ..StatusCause::default()
                }],
                ..StatusDetails::default()
            }),
        }
    }

    /// 504 `Timeout: <msg>` (upstream `NewTimeoutError`).
    pub fn timeout(msg: &str, retry_after_seconds: i32) -> Self {
        Self {
            code: 504,
            reason: "Timeout".to_string(),
            message: format!("Timeout: {msg}"),
            details: Some(StatusDetails {
                retry_after_seconds: Some(retry_after_seconds),
                ..StatusDetails::default()
            }),
        }
    }

    /// 429 TooManyRequests with `msg` as the message (upstream `NewTooManyRequests`; a zero
    /// `retryAfterSeconds` is omitted, as its `omitempty` does).
    pub fn too_many_requests(msg: &str, retry_after_seconds: i32) -> Self {
        Self {
            code: 429,
            reason: "TooManyRequests".to_string(),
            message: msg.to_string(),
            details: Some(StatusDetails {
                retry_after_seconds: (retry_after_seconds > 0).then_some(retry_after_seconds),
                ..StatusDetails::default()
            }),
        }
    }

    /// 503 ServiceUnavailable (upstream `NewServiceUnavailable`).
    pub fn service_unavailable(msg: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", msg)
    }

    /// The `Status` body: `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
    /// "message":…,"reason":…,"details":…,"code":…}` with empty fields omitted as upstream does.
    pub fn to_status(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("metadata".into(), json!({}));
        m.insert("status".into(), json!("Failure"));
        if !self.message.is_empty() {
            m.insert("message".into(), json!(self.message));
        }
        if !self.reason.is_empty() {
            m.insert("reason".into(), json!(self.reason));
        }
        if let Some(d) = &self.details {
            m.insert("details".into(), details_json(d));
        }
        m.insert("code".into(), json!(self.code));
        Value::Object(m)
    }

    /// Parses a `Status` body back (for clients of our own API); `None` if it is not one.
    pub fn from_status(v: &Value) -> Option<Self> {
        if v.get("kind")?.as_str()? != "Status" {
            return None;
        }
        let s = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let details = v.get("details").map(|d| StatusDetails {
            name: s(d, "name"),
            group: s(d, "group"),
            kind: s(d, "kind"),
            causes: d
                .get("causes")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .map(|c| StatusCause {
                            reason: s(c, "reason"),
                            message: s(c, "message"),
                            field: s(c, "field"),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            retry_after_seconds: d
                .get("retryAfterSeconds")
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok()),
        });
        Some(Self {
            code: v
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(500),
            reason: s(v, "reason"),
            message: s(v, "message"),
            details,
        })
    }
}

fn details_json(d: &StatusDetails) -> Value {
    let mut m = Map::new();
    if !d.name.is_empty() {
        m.insert("name".into(), json!(d.name));
    }
    if !d.group.is_empty() {
        m.insert("group".into(), json!(d.group));
    }
    if !d.kind.is_empty() {
        m.insert("kind".into(), json!(d.kind));
    }
    if !d.causes.is_empty() {
        let causes = d
            .causes
            .iter()
            .map(|c| {
                let mut cm = Map::new();
                if !c.reason.is_empty() {
                    cm.insert("reason".into(), json!(c.reason));
                }
                if !c.message.is_empty() {
                    cm.insert("message".into(), json!(c.message));
                }
                if !c.field.is_empty() {
                    cm.insert("field".into(), json!(c.field));
                }
                Value::Object(cm)
            })
            .collect();
        m.insert("causes".into(), Value::Array(causes));
    }
    if let Some(r) = d.retry_after_seconds {
        m.insert("retryAfterSeconds".into(), json!(r));
    }
    Value::Object(m)
}

/// A `Success` status, as returned by deletes of collections and some subresources:
/// `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{…}}`.
/// `details` is omitted when `None`.
pub fn success_status(details: Option<&StatusDetails>) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("Status"));
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("metadata".into(), json!({}));
    m.insert("status".into(), json!("Success"));
    if let Some(d) = details {
        m.insert("details".into(), details_json(d));
    }
    Value::Object(m)
}

/// Details naming one object of a resource, for [`success_status`] after a delete
/// (upstream: `{"name":"x","kind":"pods","uid":…}` — `uid` is added by the caller if wanted).
pub fn object_details(info: &ResourceInfo, name: &str) -> StatusDetails {
    StatusDetails {
        name: name.to_string(),
        group: info.group.to_string(),
        kind: info.plural.to_string(),
        ..StatusDetails::default()
    }
}

#[cfg(test)]
mod tests;
