//! `leases`: upstream `printLease`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, s};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
    ),
    AGE,
];

/// Upstream `printLease`: the holder.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    p.named(obj, [s(&obj["spec"]["holderIdentity"]).into()])
}
