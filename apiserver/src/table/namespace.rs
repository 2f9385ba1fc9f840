//! `namespaces`: upstream `printNamespace`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, s};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

/// Upstream `printNamespace`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    p.named(obj, [s(&obj["status"]["phase"]).into()])
}
