//! `backoffLimitPerIndex` for Indexed Jobs (upstream `indexed_job_utils.go` and the per-index
//! parts of `job_controller.go`): each index has its own failure count, carried from a failed
//! pod to its replacement in the `batch.kubernetes.io/job-index-failure-count` annotation
//! (`…-ignored-failure-count` for failures the pod failure policy ignores). A failed pod
//! keeps its tracking finalizer until its replacement exists ([`delayed_deletion`]), so the
//! count is never lost; an index whose failures exceed the limit (or whose pod matched a
//! `FailIndex` rule) is failed for good and listed in `status.failedIndexes`. The Job fails
//! with `MaxFailedIndexesExceeded` past `maxFailedIndexes`, or with `FailedIndexes` once
//! every index has succeeded or failed. Replacement pods wait out a back-off of their own
//! index (10 s doubling per failure, at most 6 min).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::{
    MAX_POD_FAILURE_BACKOFF, POD_FAILURE_BACKOFF, completions, finished_time, has_finalizer,
    is_pod_failed, parse_indexes, policy, valid_index,
};

/// `batch.JobIndexFailureCountAnnotation`.
pub(super) const FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// `batch.JobIndexIgnoredFailureCountAnnotation`.
pub(super) const IGNORED_FAILURE_COUNT: &str =
    "batch.kubernetes.io/job-index-ignored-failure-count";

/// `spec.backoffLimitPerIndex` (`hasBackoffLimitPerIndex`).
pub(super) fn limit(job: &Job) -> Option<i32> {
    job.spec.as_ref().and_then(|s| s.backoff_limit_per_index)
}

/// An annotation's count: 0 when absent, unparsable or out of range (`parseInt32`).
fn count(p: &Pod, key: &str) -> i32 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|v| i32::try_from(v).ok())
        .filter(|v| *v >= 0)
        .unwrap_or(0)
}

/// `isIndexFailed`: the pod failed and its index is out of retries, or it matched `FailIndex`.
fn index_failed(job: &Job, p: &Pod, limit: i32) -> bool {
    if !is_pod_failed(p, job) {
        return false;
    }
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref());
    let (_, counts, action) = policy::matches(policy, p);
    if action.as_deref() == Some("FailIndex") {
        return true;
    }
    counts && count(p, FAILURE_COUNT) >= limit
}

/// `calculateFailedIndexes`: `status.failedIndexes` plus the indexes whose pods (still
/// holding the finalizer) failed them now.
pub(super) fn failed_indexes(job: &Job, pods: &[Pod], limit: i32) -> BTreeSet<i32> {
    let c = completions(job).unwrap_or(0);
    let mut out = parse_indexes(
        job.status
            .as_ref()
            .and_then(|s| s.failed_indexes.as_deref())
            .unwrap_or(""),
        c,
    );
    for p in pods {
        if has_finalizer(p)
            && let Some(ix) = valid_index(job, p)
            && index_failed(job, p, limit)
        {
            out.insert(ix);
        }
    }
    out
}

/// `getPodsWithDelayedDeletionPerIndex`: per index still to retry, its latest failed pod
/// (kept, finalizer and all, until a replacement carries its count on).
pub(super) fn delayed_deletion(
    job: &Job,
    pods: &[Pod],
    active: &[Pod],
    succeeded: &BTreeSet<i32>,
    failed: &BTreeSet<i32>,
) -> HashMap<i32, Pod> {
    let active: BTreeSet<i32> = active.iter().filter_map(|p| valid_index(job, p)).collect();
    let mut out: HashMap<i32, Pod> = HashMap::new();
    for p in pods {
        if !has_finalizer(p) || !is_pod_failed(p, job) {
            continue;
        }
        let Some(ix) = valid_index(job, p) else {
            continue;
        };
        if succeeded.contains(&ix) || failed.contains(&ix) || active.contains(&ix) {
            continue;
        }
        let absolute =
            |p: &Pod| count(p, FAILURE_COUNT).saturating_add(count(p, IGNORED_FAILURE_COUNT));
        match out.get(&ix) {
            Some(last)
                if absolute(last) > absolute(p) || finished_time(p) < finished_time(last) => {}
            _ => {
                out.insert(ix, p.clone());
            }
        }
    }
    out
}

/// The annotations of a replacement for `replaced` (`getNewIndexFailureCounts`): its counts,
/// the failure added to the one the policy says it is.
pub(super) fn replacement_counts(job: &Job, replaced: Option<&Pod>) -> (i32, i32) {
    let Some(p) = replaced else {
        return (0, 0);
    };
    let (mut failures, mut ignored) = (count(p, FAILURE_COUNT), count(p, IGNORED_FAILURE_COUNT));
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref());
    if policy::matches(policy, p).1 {
        failures = failures.saturating_add(1);
    } else {
        ignored = ignored.saturating_add(1);
    }
    (failures, ignored)
}

/// `getRemainingTimePerIndex`: how long the index of `last_failed` still backs off.
pub(super) fn remaining(last_failed: Option<&Pod>, now: Timestamp) -> Duration {
    let Some(p) = last_failed else {
        return Duration::ZERO;
    };
    let failures = count(p, FAILURE_COUNT)
        .saturating_add(count(p, IGNORED_FAILURE_COUNT))
        .saturating_add(1);
    let mut d = POD_FAILURE_BACKOFF;
    for _ in 1..failures {
        d *= 2;
        if d >= MAX_POD_FAILURE_BACKOFF {
            d = MAX_POD_FAILURE_BACKOFF;
            break;
        }
    }
    let elapsed =
        Duration::try_from(now.duration_since(finished_time(p))).unwrap_or(Duration::ZERO);
    d.saturating_sub(elapsed)
}
