//! `secrets`: upstream `printSecret`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, len, s};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    ),
    col(
        "Data",
        "string",
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    ),
    AGE,
];

/// Upstream `printSecret`: type and the number of `data` keys.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    p.named(obj, [s(&obj["type"]).into(), len(&obj["data"]).into()])
}
