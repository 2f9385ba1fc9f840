//! `events` (core and events.k8s.io, which upstream converts to core to print): upstream
//! `printEvent`.

use serde_json::Value;

use super::{Column, NAME_DOC, Printer, Rows, col, int, name, no_conditions, s, timestamp, wide};

const COLUMNS: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
    ),
    wide(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    wide(
        "Count",
        "string",
        "The number of times this event has occurred.",
    ),
    Column {
        name: "Name",
        ty: "string",
        format: "name",
        description: NAME_DOC,
        priority: 1,
    },
];

/// The printer the kind map hands out.
pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
    conditions: no_conditions,
};

/// Upstream `printEvent`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let first_seen = match timestamp(&obj["firstTimestamp"]) {
        Some(t) => p.since(Some(t)),
        None => p.since(timestamp(&obj["eventTime"])),
    };
    let mut last_seen = match timestamp(&obj["lastTimestamp"]) {
        Some(t) => p.since(Some(t)),
        None => first_seen.clone(),
    };
    let mut count = int(&obj["count"]);
    if obj["series"].is_object() {
        last_seen = p.since(timestamp(&obj["series"]["lastObservedTime"]));
        count = int(&obj["series"]["count"]);
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }
    let involved = &obj["involvedObject"];
    let kind = s(&involved["kind"]).to_lowercase();
    let target = match s(&involved["name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = first_non_empty(
        s(&obj["source"]["component"]),
        s(&obj["reportingComponent"]),
    );
    let instance = first_non_empty(s(&obj["source"]["host"]), s(&obj["reportingInstance"]));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last_seen.into(),
        s(&obj["type"]).into(),
        s(&obj["reason"]).into(),
        target.into(),
        s(&involved["fieldPath"]).into(),
        source.into(),
        s(&obj["message"]).trim().into(),
        first_seen.into(),
        count.into(),
        name(obj).into(),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

#[cfg(test)]
mod tests {
    use api::registry::lookup;
    use serde_json::json;

    use super::super::column_definitions;
    use super::super::test_support::{cells, names};

    #[test]
    fn events() {
        assert_eq!(
            names("", "events"),
            [
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1)
            ]
            .map(|(n, p)| (n.to_string(), p))
        );
        let defs = column_definitions(lookup("", "v1", "events").unwrap());
        assert_eq!(defs[9]["format"], "name");
        let ev = json!({
            "metadata": {"name": "web-x.17c8a", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-x", "fieldPath": "spec.containers{web}"},
            "reason": "Unhealthy", "type": "Warning",
            "message": "Readiness probe failed: HTTP probe failed with statuscode: 503\n",
            "source": {"component": "kubelet", "host": "node1"},
            "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:59:00Z", "count": 12
        });
        assert_eq!(
            cells("", "events", ev),
            [
                json!("60s"),
                json!("Warning"),
                json!("Unhealthy"),
                json!("pod/web-x"),
                json!("spec.containers{web}"),
                json!("kubelet, node1"),
                json!("Readiness probe failed: HTTP probe failed with statuscode: 503"),
                json!("10m"),
                json!(12),
                json!("web-x.17c8a")
            ]
        );
        // An events.k8s.io-style event: eventTime, reporting fields, no count.
        let ev = json!({
            "metadata": {"name": "e2"},
            "involvedObject": {"kind": "Node"},
            "reason": "Starting", "type": "Normal", "message": "",
            "eventTime": "2024-05-01T11:57:00.123456Z",
            "reportingComponent": "paddock-agent", "reportingInstance": ""
        });
        let c = cells("", "events", ev);
        assert_eq!(c[0], "2m59s");
        assert_eq!(c[3], "node");
        assert_eq!(c[5], "paddock-agent");
        assert_eq!(c[7], "2m59s");
        assert_eq!(c[8], 1);
        let series = json!({
            "metadata": {"name": "e3"}, "involvedObject": {"kind": "Pod", "name": "p"},
            "eventTime": "2024-05-01T10:00:00.000000Z",
            "series": {"count": 7, "lastObservedTime": "2024-05-01T11:59:55.000000Z"}
        });
        let c = cells("", "events", series);
        assert_eq!(c[0], "5s");
        assert_eq!(c[7], "120m");
        assert_eq!(c[8], 7);
        let unknown = json!({"metadata": {"name": "e4"}, "involvedObject": {}});
        let c = cells("", "events", unknown);
        assert_eq!(c[0], "<unknown>");
        assert_eq!(c[7], "<unknown>");
    }
}
