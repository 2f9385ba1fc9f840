//! `cronjobs`: upstream `printCronJob`.

use api::selector::format_label_selector;
use serde_json::Value;

use super::job::JOB_SELECTOR_DOC;
use super::{
    AGE, CONTAINERS_DOC, Column, IMAGES_DOC, NAME, Rows, col, container_cells, len, name,
    timestamp, wide,
};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Schedule",
        "string",
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    ),
    col(
        "Timezone",
        "string",
        "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
    ),
    col(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
    ),
    col(
        "Active",
        "integer",
        "A list of pointers to currently running jobs.",
    ),
    col(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
    ),
    AGE,
    wide("Containers", "string", CONTAINERS_DOC),
    wide("Images", "string", IMAGES_DOC),
    wide("Selector", "string", JOB_SELECTOR_DOC),
];

/// Upstream `printCronJob`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    let status = &obj["status"];
    let last = match timestamp(&status["lastScheduleTime"]) {
        Some(t) => p.since(Some(t)),
        None => "<none>".to_string(),
    };
    let tz = spec["timeZone"].as_str().unwrap_or("<none>");
    // printBoolPtr.
    let suspend = match spec["suspend"].as_bool() {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let job = &spec["jobTemplate"]["spec"];
    let (containers, images) = container_cells(&job["template"]["spec"]["containers"]);
    vec![
        name(obj).into(),
        spec["schedule"].as_str().unwrap_or("").into(),
        tz.into(),
        suspend.into(),
        len(&status["active"]).into(),
        last.into(),
        p.age(obj).into(),
        containers.into(),
        images.into(),
        format_label_selector(&job["selector"]).into(),
    ]
}
