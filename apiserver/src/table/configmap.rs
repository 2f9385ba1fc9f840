//! `configmaps`: upstream `printConfigMap`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, len};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Data",
        "string",
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    ),
    AGE,
];

/// Upstream `printConfigMap`: the number of `data` and `binaryData` keys.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    p.named(obj, [(len(&obj["data"]) + len(&obj["binaryData"])).into()])
}
