//! Jobs and CronJobs (`batch/v1`) through kubectl, as the Kubernetes docs use them: the `pi`
//! Job (its command a host command here) runs to `Complete` and `kubectl wait` and
//! `kubectl logs job/x` see it; `kubectl create job` and `kubectl create cronjob`, and
//! `kubectl create job --from=cronjob/x`; a failing Job ends `Failed` with
//! `BackoffLimitExceeded`; bad input is a 422 naming the field.

use crate::support::Server;

const PI: &str = r#"apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  backoffLimit: 4
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: pi
        image: perl:5.34.0
        command: [sh, -c, 'echo 3.14159']
"#;

const FAILING: &str = r#"apiVersion: batch/v1
kind: Job
metadata: {name: doomed}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: [sh, -c, 'exit 3']
"#;

fn jsonpath(s: &Server, what: &[&str], path: &str) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let p = format!("-o=jsonpath={path}");
    args.push(&p);
    s.kubectl(&args)
}

#[test]
fn jobs_and_cronjobs_run_as_the_kubernetes_docs_describe() {
    let s = Server::up(&[]);

    // The docs' pi Job: Complete, 1/1, its pod's output through `logs job/pi`.
    s.kubectl_in(&["apply", "-f", "-"], Some(PI));
    s.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/pi",
        "--timeout=120s",
    ]);
    assert_eq!(jsonpath(&s, &["job", "pi"], "{.status.succeeded}"), "1");
    let conds = jsonpath(&s, &["job", "pi"], "{.status.conditions[*].type}");
    assert_eq!(conds, "SuccessCriteriaMet Complete", "{conds}");
    let logs = s.kubectl(&["logs", "job/pi"]);
    assert!(logs.contains("3.14159"), "{logs}");
    let table = s.kubectl(&["get", "job", "pi"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        "{table}"
    );
    assert!(
        table.contains("Complete") && table.contains("1/1"),
        "{table}"
    );
    // The pod was released by the Job (its tracking finalizer removed once counted).
    let fin = jsonpath(
        &s,
        &["pods", "-l", "batch.kubernetes.io/job-name=pi"],
        "{.items[*].metadata.finalizers}",
    );
    assert!(!fin.contains("job-tracking"), "{fin}");

    // kubectl create job.
    s.kubectl(&[
        "create",
        "job",
        "hello",
        "--image=busybox",
        "--",
        "sh",
        "-c",
        "echo hi-from-job",
    ]);
    s.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/hello",
        "--timeout=120s",
    ]);
    assert!(s.kubectl(&["logs", "job/hello"]).contains("hi-from-job"));

    // A failing Job with no retries: Failed, BackoffLimitExceeded.
    s.kubectl_in(&["apply", "-f", "-"], Some(FAILING));
    s.kubectl(&[
        "wait",
        "--for=condition=failed",
        "job/doomed",
        "--timeout=120s",
    ]);
    let reason = jsonpath(
        &s,
        &["job", "doomed"],
        "{.status.conditions[?(@.type==\"Failed\")].reason}",
    );
    assert_eq!(reason, "BackoffLimitExceeded");
    assert_eq!(jsonpath(&s, &["job", "doomed"], "{.status.failed}"), "1");

    // kubectl create cronjob, then a Job from it by hand.
    s.kubectl(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=*/5 * * * *",
        "--",
        "sh",
        "-c",
        "echo tick",
    ]);
    let table = s.kubectl(&["get", "cronjob", "tick"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"
        ],
        "{table}"
    );
    s.kubectl(&["create", "job", "manual", "--from=cronjob/tick"]);
    s.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/manual",
        "--timeout=120s",
    ]);
    assert!(s.kubectl(&["logs", "job/manual"]).contains("tick"));

    // Bad input: 422 with the field path, nothing created.
    let (_, err) = s.kubectl_err(
        &[
            "create",
            "cronjob",
            "bad",
            "--image=busybox",
            "--schedule=61 * * * *",
        ],
        None,
    );
    assert!(
        err.contains(r#"spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61"#),
        "{err}"
    );
    let indexed = r#"apiVersion: batch/v1
kind: Job
metadata: {name: idx}
spec:
  completionMode: Indexed
  parallelism: 2
  template:
    spec:
      restartPolicy: Always
      containers: [{name: main, image: busybox, command: [sh, -c, 'true']}]
"#;
    let (_, err) = s.kubectl_err(&["apply", "-f", "-"], Some(indexed));
    assert!(
        err.contains("spec.completions: Required value: when completion mode is Indexed"),
        "{err}"
    );
    assert!(
        err.contains(r#"spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#),
        "{err}"
    );
    let (_, err) = s.kubectl_err(&["get", "job", "idx"], None);
    assert!(err.contains("NotFound"), "{err}");

    // Deleting a Job deletes its pods (they are owned by it).
    s.kubectl(&["delete", "job", "pi", "--cascade=foreground", "--wait=true"]);
    s.eventually("the pi pods were deleted with their Job", || {
        jsonpath(
            &s,
            &["pods", "-l", "batch.kubernetes.io/job-name=pi"],
            "{.items}",
        )
        .trim()
        .eq("[]")
        .then_some(())
        .or_else(|| {
            jsonpath(
                &s,
                &["pods", "-l", "batch.kubernetes.io/job-name=pi"],
                "{.items[*].metadata.name}",
            )
            .trim()
            .is_empty()
            .then_some(())
        })
    });
}

/// The Kubernetes docs' examples of `backoffLimitPerIndex` and `successPolicy`, through
/// kubectl with real pods: index 1 always fails, is retried once after its own back-off and
/// then fails for good while the other indexes succeed (`FailedIndexes`); a leader index
/// succeeding ends a Job under its success policy (`SuccessPolicy`) and its workers are
/// deleted.
#[test]
fn indexed_jobs_follow_backoff_limit_per_index_and_success_policy() {
    let s = Server::up(&[]);
    s.kubectl_in(
        &["apply", "-f", "-"],
        Some(
            r#"apiVersion: batch/v1
kind: Job
metadata: {name: job-backoff-limit-per-index-example}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  backoffLimitPerIndex: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: example
        image: python
        command: [sh, -c, 'if [ "$JOB_COMPLETION_INDEX" = 1 ]; then exit 1; fi']
---
apiVersion: batch/v1
kind: Job
metadata: {name: job-success}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  successPolicy:
    rules:
    - {succeededIndexes: "0", succeededCount: 1}
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: python
        command: [sh, -c, 'if [ "$JOB_COMPLETION_INDEX" != 0 ]; then sleep 1000; fi']
"#,
        ),
    );
    s.kubectl(&[
        "wait",
        "--for=condition=failed",
        "job/job-backoff-limit-per-index-example",
        "--timeout=120s",
    ]);
    let st = jsonpath(
        &s,
        &["job", "job-backoff-limit-per-index-example"],
        "{.status.failedIndexes}|{.status.completedIndexes}|{.status.failed}|{.status.succeeded}|{.status.conditions[?(@.type==\"Failed\")].reason}",
    );
    assert_eq!(st, "1|0,2|2|2|FailedIndexes");
    // The retry of index 1 carried its failure count.
    let counts = jsonpath(
        &s,
        &[
            "pods",
            "-l",
            "batch.kubernetes.io/job-completion-index=1,job-name=job-backoff-limit-per-index-example",
        ],
        "{.items[*].metadata.annotations.batch\\.kubernetes\\.io/job-index-failure-count}",
    );
    let mut counts: Vec<&str> = counts.split_whitespace().collect();
    counts.sort();
    assert_eq!(counts, ["0", "1"]);

    s.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/job-success",
        "--timeout=120s",
    ]);
    let st = jsonpath(
        &s,
        &["job", "job-success"],
        "{.status.conditions[?(@.type==\"Complete\")].reason}|{.status.conditions[?(@.type==\"Complete\")].message}|{.status.completedIndexes}",
    );
    assert_eq!(st, "SuccessPolicy|Matched rules at index 0|0");
    let left = s.kubectl(&[
        "get",
        "pods",
        "-l",
        "job-name=job-success",
        "--field-selector=status.phase=Running",
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "workers deleted: {left}");
}
