use std::time::Duration;

use apiserver::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Clock, TRACKING_FINALIZER};
use crate::testutil::*;

thread_local! {
    /// The test's controllers' clock (each test runs on its own thread and runtime).
    static CLOCK: std::cell::Cell<Option<Clock>> = const { std::cell::Cell::new(None) };
}

/// The controllers' clock, shared with the test (which plays the kubelet's timestamps).
fn clock() -> Clock {
    CLOCK.with(|c| {
        let clock = c.get().unwrap_or_default();
        c.set(Some(clock));
        clock
    })
}

async fn running() -> (Registry, CancellationToken) {
    let registry = registry_with_namespace("default").await;
    let stop = CancellationToken::new();
    let clock = clock();
    tokio::spawn(super::run_with_clock(
        cluster(&registry),
        clock,
        stop.clone(),
    ));
    tokio::spawn(super::ttl::run_with_clock(
        cluster(&registry),
        clock,
        stop.clone(),
    ));
    (registry, stop)
}

fn job(name: &str, spec: Value) -> Value {
    let mut s = json!({"template": {"spec": {"restartPolicy": "Never",
        "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}}});
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": s})
}

fn live_pods(registry: &Registry) -> Vec<Value> {
    list(registry, "pods", "default")
        .into_iter()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
        })
        .collect()
}

/// Ends pod `name` in `phase` (its container exited with `code`).
async fn finish(registry: &Registry, name: &str, phase: &str, code: i64) {
    let now = clock().now().to_string();
    registry
        .update_with(info("pods"), "default", name, true, |p| {
            p["status"]["phase"] = json!(phase);
            p["status"]["containerStatuses"] = json!([{"name": "main", "image": "busybox",
                "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "finishedAt": now}}}]);
            Ok(true)
        })
        .await
        .unwrap();
}

fn status(registry: &Registry, name: &str) -> Value {
    get(registry, "jobs", "default", name).unwrap()["status"].clone()
}

fn condition_types(st: &Value) -> Vec<String> {
    st["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn pods_run_to_completion_and_are_counted_once() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "jobs",
        "default",
        job("pi", json!({"completions": 2, "parallelism": 2})),
    )
    .await;
    eventually("2 pods", || live_pods(&registry).len() == 2).await;
    for p in live_pods(&registry) {
        assert_eq!(p["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
        assert_eq!(
            p["metadata"]["labels"]["batch.kubernetes.io/job-name"],
            "pi"
        );
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with("pi-"));
    }
    for p in live_pods(&registry) {
        finish(
            &registry,
            p["metadata"]["name"].as_str().unwrap(),
            "Succeeded",
            0,
        )
        .await;
    }
    eventually("complete", || {
        condition_types(&status(&registry, "pi")).contains(&"Complete".into())
    })
    .await;
    let st = status(&registry, "pi");
    assert_eq!(condition_types(&st), ["SuccessCriteriaMet", "Complete"]);
    assert_eq!(st["conditions"][1]["reason"], "CompletionsReached");
    assert_eq!(
        st["conditions"][1]["message"],
        "Reached expected number of succeeded pods"
    );
    assert_eq!(st["succeeded"], 2);
    assert!(st["completionTime"].is_string() && st["startTime"].is_string());
    assert!(
        st.get("uncountedTerminatedPods")
            .is_none_or(|u| u == &json!({})),
        "{st}"
    );
    for p in list(&registry, "pods", "default") {
        assert!(p["metadata"]["finalizers"].is_null(), "{p}");
    }
    // No further pods.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(list(&registry, "pods", "default").len(), 2);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_then_exceed_the_limit() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "jobs",
        "default",
        job("flaky", json!({"backoffLimit": 2})),
    )
    .await;
    let mut waits = Vec::new();
    for round in 0..3 {
        eventually("a pod", || live_pods(&registry).len() == 1).await;
        let p = live_pods(&registry).remove(0);
        finish(
            &registry,
            p["metadata"]["name"].as_str().unwrap(),
            "Failed",
            1,
        )
        .await;
        if round == 2 {
            break;
        }
        let started = tokio::time::Instant::now();
        eventually("a replacement", || live_pods(&registry).len() == 1).await;
        waits.push(started.elapsed().as_secs());
    }
    // 10 s, then 20 s (the paused clock moves only through the controller's timers).
    // (Less up to a second: a pod's finishedAt is stored in whole seconds.)
    assert!((9..=10).contains(&waits[0]), "{waits:?}");
    assert!((19..=20).contains(&waits[1]), "{waits:?}");
    eventually("failed", || {
        condition_types(&status(&registry, "flaky")).contains(&"Failed".into())
    })
    .await;
    let st = status(&registry, "flaky");
    assert_eq!(condition_types(&st), ["FailureTarget", "Failed"]);
    assert_eq!(st["conditions"][1]["reason"], "BackoffLimitExceeded");
    assert_eq!(
        st["conditions"][1]["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(st["failed"], 3);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_active_deadline_fails_the_job_and_deletes_its_pods() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "jobs",
        "default",
        job("slow", json!({"activeDeadlineSeconds": 30})),
    )
    .await;
    eventually("a pod", || live_pods(&registry).len() == 1).await;
    let started = tokio::time::Instant::now();
    // The pod is deleted, counted as failed and released; then the Job is Failed.
    eventually("pod deleted", || live_pods(&registry).is_empty()).await;
    assert!(
        started.elapsed() >= Duration::from_secs(29),
        "{:?}",
        started.elapsed()
    );
    eventually("failed", || {
        condition_types(&status(&registry, "slow")).contains(&"Failed".into())
    })
    .await;
    let st = status(&registry, "slow");
    assert_eq!(st["conditions"][1]["reason"], "DeadlineExceeded");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn indexed_pods_carry_their_index_and_a_ttl_removes_the_finished_job() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "jobs",
        "default",
        job(
            "idx",
            json!({"completions": 3, "parallelism": 3,
        "completionMode": "Indexed", "ttlSecondsAfterFinished": 60}),
        ),
    )
    .await;
    eventually("3 pods", || live_pods(&registry).len() == 3).await;
    let mut seen = Vec::new();
    for p in live_pods(&registry) {
        let ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
            ix.as_str()
        );
        assert_eq!(p["spec"]["hostname"], format!("idx-{ix}"));
        let env = &p["spec"]["containers"][0]["env"][0];
        assert_eq!(env["name"], "JOB_COMPLETION_INDEX");
        assert!(
            p["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("idx-{ix}-"))
        );
        seen.push(ix);
        finish(
            &registry,
            p["metadata"]["name"].as_str().unwrap(),
            "Succeeded",
            0,
        )
        .await;
    }
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"]);
    eventually("complete", || {
        condition_types(&status(&registry, "idx")).contains(&"Complete".into())
    })
    .await;
    assert_eq!(status(&registry, "idx")["completedIndexes"], "0-2");
    let done = tokio::time::Instant::now();
    // Deleted in the foreground (the garbage collector, not running here, finishes it).
    eventually("deleted after its TTL", || {
        get(&registry, "jobs", "default", "idx")
            .is_none_or(|j| !j["metadata"]["deletionTimestamp"].is_null())
    })
    .await;
    assert!(
        done.elapsed() >= Duration::from_secs(59),
        "{:?}",
        done.elapsed()
    );
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_suspended_job_makes_no_pods_until_resumed() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "jobs",
        "default",
        job("later", json!({"suspend": true})),
    )
    .await;
    eventually("suspended", || {
        condition_types(&status(&registry, "later")).contains(&"Suspended".into())
    })
    .await;
    assert!(live_pods(&registry).is_empty());
    assert!(status(&registry, "later")["startTime"].is_null());
    registry
        .update_with(info("jobs"), "default", "later", false, |j| {
            j["spec"]["suspend"] = json!(false);
            Ok(true)
        })
        .await
        .unwrap();
    eventually("a pod", || live_pods(&registry).len() == 1).await;
    let st = status(&registry, "later");
    assert_eq!(st["conditions"][0]["status"], "False");
    assert_eq!(st["conditions"][0]["reason"], "JobResumed");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn pods_of_a_deleted_job_are_released() {
    let (registry, stop) = running().await;
    create(&registry, "jobs", "default", job("gone", json!({}))).await;
    eventually("a pod", || live_pods(&registry).len() == 1).await;
    let pod = live_pods(&registry).remove(0);
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    // Deleted in the background: the pod must not keep its tracking finalizer forever.
    registry
        .delete(info("jobs"), "default", "gone", &Default::default())
        .await
        .unwrap();
    eventually("finalizer removed", || {
        get(&registry, "pods", "default", &name)
            .is_some_and(|p| p["metadata"]["finalizers"].is_null())
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_pod_failure_policy_ignores_or_fails_the_job() {
    let (registry, stop) = running().await;
    let policy = json!({"backoffLimit": 0, "podFailurePolicy": {"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}},
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]}});
    create(&registry, "jobs", "default", job("pfp", policy)).await;
    eventually("a pod", || live_pods(&registry).len() == 1).await;
    let first = live_pods(&registry).remove(0);
    let first = first["metadata"]["name"].as_str().unwrap().to_string();
    // Exit code 1 is ignored: not counted against backoffLimit 0, the pod is replaced.
    finish(&registry, &first, "Failed", 1).await;
    eventually("a replacement", || {
        live_pods(&registry)
            .iter()
            .any(|p| p["metadata"]["name"] != first.as_str())
    })
    .await;
    let st = status(&registry, "pfp");
    assert!(st["failed"].is_null(), "{st}");
    assert!(condition_types(&st).is_empty(), "{st}");
    let second = live_pods(&registry).remove(0);
    let second = second["metadata"]["name"].as_str().unwrap().to_string();
    finish(&registry, &second, "Failed", 42).await;
    eventually("failed", || {
        condition_types(&status(&registry, "pfp")).contains(&"Failed".into())
    })
    .await;
    let st = status(&registry, "pfp");
    assert_eq!(condition_types(&st), ["FailureTarget", "Failed"]);
    assert_eq!(st["conditions"][1]["reason"], "PodFailurePolicy");
    assert_eq!(
        st["conditions"][1]["message"],
        format!(
            "Container main for pod default/{second} failed with exit code 42 matching FailJob rule at index 1"
        )
    );
    assert_eq!(st["failed"], 1);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_success_policy_completes_an_indexed_job_early_and_deletes_the_rest() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "jobs",
        "default",
        job(
            "leader",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed",
                "successPolicy": {"rules": [{"succeededIndexes": "0"}]}}),
        ),
    )
    .await;
    eventually("3 pods", || live_pods(&registry).len() == 3).await;
    let index = |p: &Value| {
        p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Index 1 succeeding matches no rule.
    let one = live_pods(&registry)
        .into_iter()
        .find(|p| index(p) == "1")
        .unwrap();
    finish(
        &registry,
        one["metadata"]["name"].as_str().unwrap(),
        "Succeeded",
        0,
    )
    .await;
    eventually("index 1 counted", || {
        status(&registry, "leader")["completedIndexes"] == "1"
    })
    .await;
    assert!(condition_types(&status(&registry, "leader")).is_empty());
    // Index 0 does: the criteria are met, index 2's pod is deleted, then Complete.
    let zero = live_pods(&registry)
        .into_iter()
        .find(|p| index(p) == "0")
        .unwrap();
    finish(
        &registry,
        zero["metadata"]["name"].as_str().unwrap(),
        "Succeeded",
        0,
    )
    .await;
    eventually("criteria met", || {
        condition_types(&status(&registry, "leader")).contains(&"SuccessCriteriaMet".into())
    })
    .await;
    eventually("the rest deleted", || live_pods(&registry).is_empty()).await;
    // The kubelet's part: the deleted pod ends.
    for p in list(&registry, "pods", "default") {
        if index(&p) == "2" && p["status"]["phase"] != "Failed" {
            finish(
                &registry,
                p["metadata"]["name"].as_str().unwrap(),
                "Failed",
                143,
            )
            .await;
        }
    }
    eventually("complete", || {
        condition_types(&status(&registry, "leader")).contains(&"Complete".into())
    })
    .await;
    let st = status(&registry, "leader");
    for c in st["conditions"].as_array().unwrap() {
        if c["type"] == "SuccessCriteriaMet" || c["type"] == "Complete" {
            assert_eq!(c["reason"], "SuccessPolicy", "{st}");
            assert_eq!(c["message"], "Matched rules at index 0", "{st}");
        }
    }
    assert_eq!(st["completedIndexes"], "0,1", "{st}");
    assert_eq!(st["succeeded"], 2, "{st}");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn backoff_limit_per_index_retries_each_index_on_its_own_then_fails_it() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "jobs",
        "default",
        job(
            "per-index",
            json!({"completions": 2, "parallelism": 2, "completionMode": "Indexed",
                "backoffLimitPerIndex": 1}),
        ),
    )
    .await;
    eventually("2 pods", || live_pods(&registry).len() == 2).await;
    let of_index = |ix: &str| {
        live_pods(&registry).into_iter().find(|p| {
            p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == ix
        })
    };
    let first = of_index("0").unwrap();
    assert_eq!(
        first["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"],
        "0"
    );
    let first_name = first["metadata"]["name"].as_str().unwrap().to_string();
    finish(&registry, &first_name, "Failed", 1).await;
    // Index 0 is retried after its own back-off (10 s); the replacement carries the count,
    // and only then does the failed pod lose its finalizer.
    let started = tokio::time::Instant::now();
    eventually("index 0 replaced", || of_index("0").is_some()).await;
    let waited = started.elapsed().as_secs();
    assert!((9..=10).contains(&waited), "{waited}");
    let second = of_index("0").unwrap();
    assert_eq!(
        second["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"],
        "1"
    );
    eventually("the failed pod released", || {
        get(&registry, "pods", "default", &first_name).is_none_or(|p| {
            !p["metadata"]["finalizers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f == TRACKING_FINALIZER)
        })
    })
    .await;
    // Its second failure fails the index for good: no third pod.
    finish(
        &registry,
        second["metadata"]["name"].as_str().unwrap(),
        "Failed",
        1,
    )
    .await;
    eventually("index 0 failed", || {
        status(&registry, "per-index")["failedIndexes"] == "0"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(of_index("0").is_none(), "a failed index is not retried");
    assert!(condition_types(&status(&registry, "per-index")).is_empty());
    // Index 1 succeeds: every index is done, one failed, so the Job fails.
    let one = of_index("1").unwrap();
    finish(
        &registry,
        one["metadata"]["name"].as_str().unwrap(),
        "Succeeded",
        0,
    )
    .await;
    eventually("failed", || {
        condition_types(&status(&registry, "per-index")).contains(&"Failed".into())
    })
    .await;
    let st = status(&registry, "per-index");
    assert_eq!(condition_types(&st), ["FailureTarget", "Failed"], "{st}");
    assert_eq!(st["conditions"][1]["reason"], "FailedIndexes");
    assert_eq!(st["conditions"][1]["message"], "Job has failed indexes");
    assert_eq!(st["failed"], 2, "{st}");
    assert_eq!(st["completedIndexes"], "1", "{st}");
    assert_eq!(st["failedIndexes"], "0", "{st}");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn max_failed_indexes_fails_the_job_at_once() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "jobs",
        "default",
        job(
            "max",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed",
                "backoffLimitPerIndex": 0, "maxFailedIndexes": 0}),
        ),
    )
    .await;
    eventually("3 pods", || live_pods(&registry).len() == 3).await;
    let p = live_pods(&registry).remove(0);
    finish(
        &registry,
        p["metadata"]["name"].as_str().unwrap(),
        "Failed",
        1,
    )
    .await;
    eventually("failure target", || {
        condition_types(&status(&registry, "max")).contains(&"FailureTarget".into())
    })
    .await;
    let st = status(&registry, "max");
    assert_eq!(st["conditions"][0]["reason"], "MaxFailedIndexesExceeded");
    assert_eq!(
        st["conditions"][0]["message"],
        "Job has exceeded the specified maximal number of failed indexes"
    );
    // The other two are deleted; once they end, the Job is Failed.
    eventually("the rest deleted", || live_pods(&registry).is_empty()).await;
    for p in list(&registry, "pods", "default") {
        if p["status"]["phase"] != "Failed" {
            finish(
                &registry,
                p["metadata"]["name"].as_str().unwrap(),
                "Failed",
                143,
            )
            .await;
        }
    }
    eventually("failed", || {
        condition_types(&status(&registry, "max")).contains(&"Failed".into())
    })
    .await;
    stop.cancel();
}
