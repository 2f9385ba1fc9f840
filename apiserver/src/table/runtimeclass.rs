//! `runtimeclasses`: upstream `printRuntimeClass`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, s};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    // Upstream takes this description from ObjectMeta's docs, which have no `handler`: empty.
    col("Handler", "string", ""),
    AGE,
];

/// Upstream `printRuntimeClass`: the handler.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    p.named(obj, [s(&obj["handler"]).into()])
}
