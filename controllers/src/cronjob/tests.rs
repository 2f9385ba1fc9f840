use std::collections::BTreeSet;
use std::time::Duration;

use apiserver::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::SCHEDULED_TIMESTAMP;
use crate::job::Clock;
use crate::testutil::*;

fn cronjob(name: &str, schedule: &str, extra: Value) -> Value {
    let mut spec = json!({"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}}}}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name}, "spec": spec})
}

/// Plays the Job controller: every unfinished Job of `default` completes.
async fn complete_jobs(registry: &Registry) {
    let now = api::time::rfc3339(api::time::now());
    for j in list(registry, "jobs", "default") {
        if !j["status"]["conditions"].is_null() {
            continue;
        }
        let name = j["metadata"]["name"].as_str().unwrap().to_string();
        registry
            .update_with(info("jobs"), "default", &name, true, |j| {
                j["status"] = json!({"startTime": now, "completionTime": now, "succeeded": 1,
                    "conditions": [
                        {"type": "SuccessCriteriaMet", "status": "True"},
                        {"type": "Complete", "status": "True", "lastTransitionTime": now}]});
                Ok(true)
            })
            .await
            .unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_day_of_an_every_minute_cronjob_makes_1440_jobs_and_keeps_history() {
    let registry = registry_with_namespace("default").await;
    let stop = CancellationToken::new();
    let clock = Clock::default();
    tokio::spawn(super::run_with_clock(
        cluster(&registry),
        clock,
        stop.clone(),
    ));
    let cj = create(
        &registry,
        "cronjobs",
        "default",
        cronjob("tick", "* * * * *", json!({})),
    )
    .await;
    let created: k8s_openapi::jiff::Timestamp = cj["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let first = created.as_second().div_euclid(60) + 1;
    let last = (created.as_second() + 86_400).div_euclid(60);
    let mut names = BTreeSet::new();
    let mut most_present = 0;
    let start = tokio::time::Instant::now();
    while start.elapsed() < Duration::from_secs(86_400 + 90) {
        tokio::time::sleep(Duration::from_secs(20)).await;
        let present = list(&registry, "jobs", "default");
        most_present = most_present.max(present.len());
        for j in &present {
            names.insert(j["metadata"]["name"].as_str().unwrap().to_string());
        }
        complete_jobs(&registry).await;
    }
    stop.cancel();
    let minutes: BTreeSet<i64> = names
        .iter()
        .map(|n| n.strip_prefix("tick-").unwrap().parse().unwrap())
        .filter(|m| (first..=last).contains(m))
        .collect();
    assert_eq!(minutes.len(), 1440, "first {first} last {last}");
    assert_eq!(minutes.len() as i64, last - first + 1);
    // Successful history limit 3 (the default), plus the one just created.
    assert!(most_present <= 4, "{most_present}");
    let st = get(&registry, "cronjobs", "default", "tick").unwrap()["status"].clone();
    assert!(
        st["lastScheduleTime"].is_string() && st["lastSuccessfulTime"].is_string(),
        "{st}"
    );
}

#[tokio::test(start_paused = true)]
async fn forbid_skips_while_one_runs_and_jobs_carry_the_scheduled_time() {
    let registry = registry_with_namespace("default").await;
    let stop = CancellationToken::new();
    tokio::spawn(super::run_with_clock(
        cluster(&registry),
        Clock::default(),
        stop.clone(),
    ));
    create(
        &registry,
        "cronjobs",
        "default",
        cronjob(
            "solo",
            "*/5 * * * *",
            json!({"concurrencyPolicy": "Forbid"}),
        ),
    )
    .await;
    eventually("a job", || !list(&registry, "jobs", "default").is_empty()).await;
    let j = list(&registry, "jobs", "default").remove(0);
    let name = j["metadata"]["name"].as_str().unwrap();
    let minutes: i64 = name.strip_prefix("solo-").unwrap().parse().unwrap();
    assert_eq!(minutes % 5, 0);
    let stamp = j["metadata"]["annotations"][SCHEDULED_TIMESTAMP]
        .as_str()
        .unwrap();
    let t: k8s_openapi::jiff::Timestamp = stamp.parse().unwrap();
    assert_eq!(t.as_second(), minutes * 60);
    assert_eq!(j["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    // Three more periods while it runs: still one Job.
    tokio::time::sleep(Duration::from_secs(15 * 60)).await;
    assert_eq!(list(&registry, "jobs", "default").len(), 1);
    let st = get(&registry, "cronjobs", "default", "solo").unwrap()["status"].clone();
    assert_eq!(st["active"].as_array().unwrap().len(), 1);
    stop.cancel();
}
