//! `namespaces`: upstream `printNamespace`.

use serde_json::Value;

use super::{AGE, Column, NAME, Printer, Rows, col, name, no_conditions, s};

const COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

/// The printer the kind map hands out.
pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
    conditions: no_conditions,
};

/// Upstream `printNamespace`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    vec![
        name(obj).into(),
        s(&obj["status"]["phase"]).into(),
        p.age(obj).into(),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{cells, names};

    #[test]
    fn namespaces() {
        assert_eq!(
            names("", "namespaces"),
            [("Name", 0), ("Status", 0), ("Age", 0)].map(|(n, p)| (n.to_string(), p))
        );
        assert_eq!(
            cells(
                "",
                "namespaces",
                json!({"metadata": {"name": "default", "creationTimestamp": "2024-05-01T12:00:01Z"},
                       "status": {"phase": "Active"}})
            ),
            [json!("default"), json!("Active"), json!("0s")]
        );
        assert_eq!(
            cells(
                "",
                "namespaces",
                json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T12:00:02Z"}})
            ),
            [json!("x"), json!(""), json!("<invalid>")]
        );
    }
}
