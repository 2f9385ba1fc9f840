//! Resources without an upstream printer: the generic `Name`/`Created At` table of
//! `rest.NewDefaultTableConvertor`.

use serde_json::Value;

use super::{
    CREATED_DOC, Column, GO_ZERO_TIME, NAME, Printer, Rows, col, name, no_conditions, timestamp,
};

/// The table of resources without an upstream printer (`rest.NewDefaultTableConvertor`).
const COLUMNS: &[Column] = &[NAME, col("Created At", "date", CREATED_DOC)];

/// The printer the kind map hands out.
pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
    conditions: no_conditions,
};

/// The name and the creation time in RFC 3339 (Go's zero time when absent).
pub(super) fn row(_: &Rows, obj: &Value) -> Vec<Value> {
    let created = timestamp(&obj["metadata"]["creationTimestamp"])
        .unwrap_or(GO_ZERO_TIME)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    vec![name(obj).into(), created.into()]
}

#[cfg(test)]
mod tests {
    use api::registry::{ResourceInfo, lookup};
    use serde_json::json;

    use super::super::test_support::now;
    use super::super::{column_definitions, row_cells};

    #[test]
    fn default_table_for_unprinted_resources() {
        let info = ResourceInfo {
            group: "example.com",
            kind: "Widget",
            plural: "widgets",
            ..*lookup("", "v1", "pods").unwrap()
        };
        let defs = column_definitions(&info);
        assert_eq!(defs[1]["name"], "Created At");
        assert_eq!(defs[1]["type"], "date");
        let obj = json!({"metadata": {"name": "w", "creationTimestamp": "2024-05-01T11:00:00Z"}});
        assert_eq!(
            row_cells(&info, &obj, now()),
            [json!("w"), json!("2024-05-01T11:00:00Z")]
        );
        assert_eq!(
            row_cells(&info, &json!({"metadata": {"name": "w"}}), now())[1],
            "0001-01-01T00:00:00Z"
        );
    }
}
