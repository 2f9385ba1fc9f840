//! Resources without an upstream printer: the generic `Name`/`Created At` table of
//! `rest.NewDefaultTableConvertor`.

use serde_json::Value;

use super::{CREATED_DOC, Column, GO_ZERO_TIME, NAME, Rows, col, name, timestamp};

/// The table of resources without an upstream printer (`rest.NewDefaultTableConvertor`).
pub(super) const COLUMNS: &[Column] = &[NAME, col("Created At", "date", CREATED_DOC)];

/// The name and the creation time in RFC 3339 (Go's zero time when absent).
pub(super) fn row(_: &Rows, obj: &Value) -> Vec<Value> {
    let created = timestamp(&obj["metadata"]["creationTimestamp"])
        .unwrap_or(GO_ZERO_TIME)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    vec![name(obj).into(), created.into()]
}
