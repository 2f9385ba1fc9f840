//! `poddisruptionbudgets`: upstream `printPodDisruptionBudget`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, int};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

/// An int-or-string as `IntOrString.String()` prints it, `N/A` when unset.
fn int_or_string(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => "N/A".to_string(),
    }
}

/// Upstream `printPodDisruptionBudget`: minAvailable, maxUnavailable, disruptionsAllowed.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    p.named(
        obj,
        [
            int_or_string(&spec["minAvailable"]).into(),
            int_or_string(&spec["maxUnavailable"]).into(),
            int(&obj["status"]["disruptionsAllowed"]).into(),
        ],
    )
}
