//! Conversion between a resource's stored version and the older versions also served
//! (upstream's conversion functions, `pkg/apis/<group>/<version>/conversion.go`). Only the
//! API's edge converts: a request body in a converted version is decoded and defaulted in that
//! version ([`crate::object::decode`]), then [`to_storage`] turns it into the stored version,
//! which the rest of the write path (validation, admission, the store) sees; objects going out
//! are turned back by [`to_served`]. Which versions are converted is
//! [`crate::registry::is_converted`].
//!
//! Start at [`to_served`] and [`to_storage`]; the one converted kind today is
//! `autoscaling/v1` HorizontalPodAutoscaler in [`hpa_v1`].

mod hpa_v1;

use serde_json::Value;

use crate::registry::{ResourceInfo, is_converted};
use crate::status::ApiError;

/// `stored` (an object of the stored version) as `served`'s version shows it; a clone when
/// `served` is the stored version.
pub fn to_served(served: &ResourceInfo, stored: &Value) -> Result<Value, ApiError> {
    if !is_converted(served) {
        return Ok(stored.clone());
    }
    match (served.group, served.version, served.kind) {
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            hpa_v1::to_v1(stored).map_err(|e| conversion_error(served, &e))
        }
        _ => Err(ApiError::internal(format!(
            "no conversion to {}",
            served.api_version()
        ))),
    }
}

/// `obj`, an object of `served`'s version (already decoded and defaulted in that version), in
/// the stored version; itself when `served` is the stored version.
pub fn to_storage(served: &ResourceInfo, obj: Value) -> Result<Value, ApiError> {
    if !is_converted(served) {
        return Ok(obj);
    }
    match (served.group, served.version, served.kind) {
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            hpa_v1::to_v2(obj).map_err(|e| conversion_error(served, &e))
        }
        _ => Err(ApiError::internal(format!(
            "no conversion from {}",
            served.api_version()
        ))),
    }
}

/// A body whose round-trip annotations do not decode: upstream's decoder reports the
/// conversion error as a 400 in the same words as any decoding error.
fn conversion_error(info: &ResourceInfo, e: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: {e}",
        info.kind, info.version, info.kind
    ))
}
