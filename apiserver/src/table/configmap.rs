//! `configmaps`: upstream `printConfigMap`.

use serde_json::Value;

use super::{AGE, Column, NAME, Printer, Rows, col, len, name, no_conditions};

const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Data",
        "string",
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    ),
    AGE,
];

/// The printer the kind map hands out.
pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
    conditions: no_conditions,
};

/// Upstream `printConfigMap`: the number of `data` and `binaryData` keys.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let n = len(&obj["data"]) + len(&obj["binaryData"]);
    vec![name(obj).into(), n.into(), p.age(obj).into()]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{cells, names};

    #[test]
    fn configmaps() {
        assert_eq!(
            names("", "configmaps"),
            [("Name", 0), ("Data", 0), ("Age", 0)].map(|(n, p)| (n.to_string(), p))
        );
        assert_eq!(
            cells(
                "",
                "configmaps",
                json!({"metadata": {"name": "cfg", "creationTimestamp": "2024-05-01T11:00:00Z"},
                       "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}})
            ),
            [json!("cfg"), json!(3), json!("60m")]
        );
    }
}
