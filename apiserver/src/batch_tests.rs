//! batch/v1 through the registry: the Job strategy's generated selector and labels,
//! defaults, and 422s with upstream's field paths and messages for Jobs and CronJobs.

use serde_json::{Value, json};
use store::Store;

use crate::registry::{Registry, WriteOptions};

fn info(plural: &str) -> &'static api::registry::ResourceInfo {
    api::registry::lookup("batch", "v1", plural).unwrap()
}

async fn registry() -> Registry {
    let r = Registry::new(Store::memory());
    let ns = api::registry::lookup("", "v1", "namespaces").unwrap();
    r.create(
        ns,
        "",
        json!({"metadata": {"name": "d"}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    r
}

fn job(name: &str, spec: Value) -> Value {
    let mut s = json!({"template": {"spec": {"restartPolicy": "Never",
        "containers": [{"name": "main", "image": "busybox"}]}}});
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": s})
}

/// The causes of a 422 as `field: message` lines.
fn causes(e: &api::status::ApiError) -> Vec<String> {
    assert_eq!(e.code, 422, "{e:?}");
    e.details
        .as_ref()
        .unwrap()
        .causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

#[tokio::test]
async fn a_job_gets_upstream_defaults_and_a_generated_selector() {
    let r = registry().await;
    let j = r
        .create(
            info("jobs"),
            "d",
            job("pi", json!({})),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let uid = j["metadata"]["uid"].as_str().unwrap();
    let spec = &j["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    let labels = json!({"batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "pi", "controller-uid": uid, "job-name": "pi"});
    assert_eq!(spec["template"]["metadata"]["labels"], labels);
    assert_eq!(j["metadata"]["labels"], labels);
    assert_eq!(j["metadata"]["generation"], 1);
    assert_eq!(j["status"], json!({}));
}

#[tokio::test]
async fn bad_jobs_are_422_with_upstream_fields() {
    let r = registry().await;
    let bad = job(
        "idx",
        json!({"completionMode": "Indexed", "parallelism": -1,
            "template": {"spec": {"restartPolicy": "Always",
                "containers": [{"name": "main", "image": "busybox"}]}}}),
    );
    let e = r
        .create(info("jobs"), "d", bad, &WriteOptions::default())
        .await
        .unwrap_err();
    let c = causes(&e);
    assert!(
        c.contains(
            &"spec.parallelism: Invalid value: -1: must be greater than or equal to 0".into()
        ),
        "{c:?}"
    );
    assert!(
        c.contains(&"spec.completions: Required value: when completion mode is Indexed".into()),
        "{c:?}"
    );
    assert!(
        c.contains(&"spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"".into()),
        "{c:?}"
    );
    assert!(
        e.message.starts_with("Job.batch \"idx\" is invalid"),
        "{}",
        e.message
    );

    // The template is immutable.
    r.create(
        info("jobs"),
        "d",
        job("pi", json!({})),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let e = r
        .update_with(info("jobs"), "d", "pi", false, |j| {
            j["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl");
            Ok(true)
        })
        .await
        .unwrap_err();
    let c = causes(&e);
    assert!(
        c.iter()
            .any(|c| c.starts_with("spec.template: Invalid value:")
                && c.ends_with("field is immutable")),
        "{c:?}"
    );
    // A pod failure policy with FailIndex needs backoffLimitPerIndex; exit codes ordered.
    let e = r
        .create(
            info("jobs"),
            "d",
            job(
                "pfp",
                json!({"podFailurePolicy": {"rules": [
                {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3, 1]}}]}}),
            ),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    let c = causes(&e);
    assert!(
        c.contains(&"spec.podFailurePolicy.rules[0].action: Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set".into()),
        "{c:?}"
    );
    assert!(
        c.contains(&"spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: []int32{3, 1}: must be ordered".into()),
        "{c:?}"
    );
}

fn cronjob(name: &str, schedule: &str, extra: Value) -> Value {
    let mut spec = json!({"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
        "restartPolicy": "OnFailure",
        "containers": [{"name": "hello", "image": "busybox"}]}}}}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn cronjobs_are_defaulted_and_their_schedules_checked() {
    let r = registry().await;
    let cj = r
        .create(
            info("cronjobs"),
            "d",
            cronjob("hello", "* * * * *", json!({})),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["suspend"], false);
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    for (schedule, extra, want) in [
        (
            "61 * * * *",
            json!({}),
            "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
        ),
        (
            "TZ=UTC * * * * *",
            json!({}),
            "spec.schedule: Invalid value: \"TZ=UTC * * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ),
        (
            "@daily",
            json!({"timeZone": "Mars/Olympus"}),
            "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus",
        ),
        (
            "@hourly",
            json!({"concurrencyPolicy": "Sometimes"}),
            "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
        ),
    ] {
        let e = r
            .create(
                info("cronjobs"),
                "d",
                cronjob("bad", schedule, extra),
                &WriteOptions::default(),
            )
            .await
            .unwrap_err();
        let c = causes(&e);
        assert!(c.contains(&want.to_string()), "{c:?}");
    }
    let long = "c".repeat(53);
    let e = r
        .create(
            info("cronjobs"),
            "d",
            cronjob(&long, "@hourly", json!({"timeZone": "Europe/Paris"})),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        causes(&e).contains(&format!(
            "metadata.name: Invalid value: \"{long}\": must be no more than 52 characters"
        )),
        "{e:?}"
    );
}
