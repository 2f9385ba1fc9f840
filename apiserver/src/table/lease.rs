//! `leases`: upstream `printLease`.

use serde_json::Value;

use super::{AGE, Column, NAME, Printer, Rows, col, name, no_conditions, s};

const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
    ),
    AGE,
];

/// The printer the kind map hands out.
pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
    conditions: no_conditions,
};

/// Upstream `printLease`: the holder.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    vec![
        name(obj).into(),
        s(&obj["spec"]["holderIdentity"]).into(),
        p.age(obj).into(),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{cells, names};

    #[test]
    fn leases() {
        assert_eq!(
            names("coordination.k8s.io", "leases"),
            [("Name", 0), ("Holder", 0), ("Age", 0)].map(|(n, p)| (n.to_string(), p))
        );
        assert_eq!(
            cells(
                "coordination.k8s.io",
                "leases",
                json!({"metadata": {"name": "node1", "creationTimestamp": "2024-05-01T11:00:00Z"},
                       "spec": {"holderIdentity": "node1", "leaseDurationSeconds": 40}})
            ),
            [json!("node1"), json!("node1"), json!("60m")]
        );
        assert_eq!(
            cells(
                "coordination.k8s.io",
                "leases",
                json!({"metadata": {"name": "l"}, "spec": {}})
            )[1],
            ""
        );
    }
}
