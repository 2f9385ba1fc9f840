//! `jobs`: upstream `printJob`.

use api::selector::format_label_selector;
use serde_json::Value;

use super::{
    AGE, CONTAINERS_DOC, Column, IMAGES_DOC, NAME, Rows, col, container_cells, human_duration, int,
    name, timestamp, wide,
};

/// `batchv1.JobSpec{}.SwaggerDoc()["selector"]`.
pub(super) const JOB_SELECTOR_DOC: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.",
    ),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide("Selector", "string", JOB_SELECTOR_DOC),
];

/// Whether `obj` has the condition `type_` with status True (upstream `hasJobCondition`).
fn has_condition(obj: &Value, type_: &str) -> bool {
    obj["status"]["conditions"].as_array().is_some_and(|l| {
        l.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

/// Upstream `printJob`: status from the conditions, `succeeded/completions`, the duration
/// from startTime to completionTime (or now).
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    let status = &obj["status"];
    let succeeded = int(&status["succeeded"]);
    let completions = match spec["completions"].as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        None => match spec["parallelism"].as_i64().unwrap_or(0) {
            n if n > 1 => format!("{succeeded}/1 of {n}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        timestamp(&status["startTime"]),
        timestamp(&status["completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(p.now.as_nanosecond() - start.as_nanosecond()),
        (Some(start), Some(end)) => human_duration(end.as_nanosecond() - start.as_nanosecond()),
    };
    let state = if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if !obj["metadata"]["deletionTimestamp"].is_null() {
        "Terminating"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (containers, images) = container_cells(&spec["template"]["spec"]["containers"]);
    vec![
        name(obj).into(),
        state.into(),
        completions.into(),
        duration.into(),
        p.age(obj).into(),
        containers.into(),
        images.into(),
        format_label_selector(&spec["selector"]).into(),
    ]
}
