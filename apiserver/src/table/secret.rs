//! `secrets`: upstream `printSecret`.

use serde_json::Value;

use super::{AGE, Column, NAME, Printer, Rows, col, len, name, no_conditions, s};

const COLUMNS: &[Column] = &[
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

/// The printer the kind map hands out.
pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
    conditions: no_conditions,
};

/// Upstream `printSecret`: type and the number of `data` keys.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    vec![
        name(obj).into(),
        s(&obj["type"]).into(),
        len(&obj["data"]).into(),
        p.age(obj).into(),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{cells, names};

    #[test]
    fn secrets() {
        assert_eq!(
            names("", "secrets"),
            [("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)].map(|(n, p)| (n.to_string(), p))
        );
        assert_eq!(
            cells(
                "",
                "secrets",
                json!({"metadata": {"name": "tls", "creationTimestamp": "2024-05-01T11:00:00Z"},
                       "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})
            ),
            [
                json!("tls"),
                json!("kubernetes.io/tls"),
                json!(2),
                json!("60m")
            ]
        );
    }
}
