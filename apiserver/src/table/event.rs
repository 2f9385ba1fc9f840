//! `events` (core and events.k8s.io, which upstream converts to core to print): upstream
//! `printEvent`.

use serde_json::Value;

use super::{Column, NAME_DOC, Rows, col, int, name, s, timestamp, wide};

pub(super) const COLUMNS: &[Column] = &[
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
