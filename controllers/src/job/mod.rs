//! The Job controller (upstream `pkg/controller/job/job_controller.go`, `backoff_utils.go`,
//! `indexed_job_utils.go`, `pod_failure_policy.go`) and the TTL-after-finished controller
//! ([`ttl`], upstream `pkg/controller/ttlafterfinished`).
//!
//! [`Controller::sync`] is upstream's `syncJob`: the Job's pods are claimed; pods that finished
//! and still hold the `batch.kubernetes.io/job-tracking` finalizer are counted through
//! `status.uncountedTerminatedPods` (first recorded there, then their finalizer removed, then
//! moved into `succeeded`/`failed`), so no finished pod is counted twice or lost when the
//! controller stops half-way; the terminal condition is decided (pod failure policy,
//! `backoffLimit`, `activeDeadlineSeconds`, completions reached) first as the interim
//! `FailureTarget` / `SuccessCriteriaMet` condition, and `Failed` / `Complete` follow once no
//! pod is uncounted or terminating. An Indexed Job's `successPolicy` ([`success`]) ends it
//! as `SuccessCriteriaMet` too. Otherwise [`Controller::manage`] creates or deletes pods
//! towards `min(parallelism, completions - succeeded)` (Indexed Jobs: the lowest missing
//! indexes, with the index annotation and label, `JOB_COMPLETION_INDEX` and hostname
//! `<job>-<index>`), waiting out the pod-failure back-off (10 s doubling per failure since
//! the last success, capped at 6 min), or deletes every active pod of a suspended Job.
//!
//! Pods are read from the store at sync time (consistent with this controller's writes), so
//! upstream's expectations are not needed. Time is the controller's [`Clock`]: wall time that
//! advances with tokio's clock, so paused-time tests drive back-offs and deadlines.

mod per_index;
mod policy;
mod success;
#[cfg(test)]
mod tests;
pub mod ttl;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use api::selector::LabelSelector;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::events::{self, Recorder, Style};
use crate::pod::typed::{is_ready, is_terminal};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Change, Delta};
use crate::{Error, typed};

/// `batch.JobTrackingFinalizer`.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// `batch.JobCompletionIndexAnnotation` (also the label of the `PodIndexLabel` feature).
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// `batch.JobCompletionIndexEnvName`.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// `DefaultJobPodFailureBackOff`.
pub const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// `MaxJobPodFailureBackOff`.
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(360);
/// `MaxUncountedPods`: most finished pods recorded per status write.
const MAX_UNCOUNTED_PODS: usize = 500;
/// `MaxPodCreateDeletePerSync`.
const MAX_CREATE_DELETE: usize = 500;
/// `--concurrent-job-syncs`.
const WORKERS: usize = 5;
/// Most Jobs whose back-off records are kept (bounded; a Job's record goes with it).
const MAX_BACKOFF_RECORDS: usize = 100_000;

type Key = (String, String);

pub(crate) fn jobs() -> &'static ResourceInfo {
    typed::info::<Job>()
}

fn pods() -> &'static ResourceInfo {
    typed::info::<Pod>()
}

/// Wall time that moves with tokio's clock (so paused-time tests control it): the wall time
/// at creation plus the tokio time elapsed since.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: Timestamp,
    start: tokio::time::Instant,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::starting_at(api::time::now())
    }
}

impl Clock {
    /// A clock reading `wall` now.
    pub fn starting_at(wall: Timestamp) -> Clock {
        Clock {
            wall,
            start: tokio::time::Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.start);
        let span = k8s_openapi::jiff::SignedDuration::try_from(elapsed).unwrap_or_default();
        self.wall.checked_add(span).unwrap_or(self.wall)
    }
}

/// Runs the Job controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    run_with_clock(cluster, Clock::default(), shutdown).await;
}

/// [`run`] with a given clock.
pub async fn run_with_clock(cluster: ClusterRef, clock: Clock, shutdown: CancellationToken) {
    let controller = Arc::new(Controller::new(cluster.clone(), clock));
    crate::queue::drive(&cluster, controller, &[jobs(), pods()], WORKERS, &shutdown).await;
}

/// A Job's pod-failure back-off (upstream `backoffRecord`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Backoff {
    failures_after_last_success: u32,
    last_failure: Option<Timestamp>,
}

impl Backoff {
    /// `getRemainingTimeForFailuresCount`.
    fn remaining(&self, now: Timestamp) -> Duration {
        let Some(last) = self.last_failure else {
            return Duration::ZERO;
        };
        if self.failures_after_last_success == 0 {
            return Duration::ZERO;
        }
        let mut d = POD_FAILURE_BACKOFF;
        for _ in 1..self.failures_after_last_success {
            d *= 2;
            if d >= MAX_POD_FAILURE_BACKOFF {
                d = MAX_POD_FAILURE_BACKOFF;
                break;
            }
        }
        let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
        d.saturating_sub(elapsed)
    }
}

/// The controller's shared state.
pub(crate) struct Controller {
    cluster: ClusterRef,
    recorder: Recorder,
    queue: WorkQueue<Key>,
    clock: Clock,
    backoff: Mutex<HashMap<Key, Backoff>>,
}

impl Reconciler for Controller {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        self.sync(&key.0, &key.1).await
    }

    /// A Job change queues it; a pod change queues its Job (upstream's handlers).
    fn observe(&self, change: Change) {
        let is_pod = std::ptr::eq(change.info, pods());
        match &change.delta {
            Delta::Synced => {}
            Delta::Upsert(o) | Delta::Delete(o) => {
                let Ok(m) = typed::metadata(o) else { return };
                if !is_pod {
                    self.queue.add(typed::key_of(&m));
                } else if let Some(r) = typed::controller_ref(&m)
                    && r.kind == "Job"
                    && r.api_version == "batch/v1"
                {
                    self.queue
                        .add((typed::namespace(&m).to_string(), r.name.clone()));
                }
            }
        }
    }
}

/// What one sync knows (upstream `syncJobCtx`).
struct Ctx {
    job: Job,
    pods: Vec<Pod>,
    active: Vec<Pod>,
    succeeded: i32,
    failed: i32,
    ready: i32,
    terminating: i32,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    finished: Option<JobCondition>,
    prev_succeeded_indexes: BTreeSet<i32>,
    succeeded_indexes: BTreeSet<i32>,
    new_backoff: Backoff,
    /// With `backoffLimitPerIndex`: the failed indexes.
    failed_indexes: Option<BTreeSet<i32>>,
    /// With `backoffLimitPerIndex`: per index to retry, the failed pod its replacement
    /// continues (kept until then).
    delayed: HashMap<i32, Pod>,
}

/// `status.conditions` of `job`.
fn conditions(job: &Job) -> &[JobCondition] {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

/// Whether `job` has the condition `t` with status True.
fn has_true(job: &Job, t: &str) -> bool {
    conditions(job)
        .iter()
        .any(|c| c.type_ == t && c.status == "True")
}

/// Upstream `IsJobFinished`: Complete or Failed is True.
pub fn is_finished(job: &Job) -> bool {
    has_true(job, "Complete") || has_true(job, "Failed")
}

fn spec(job: &Job) -> k8s_openapi::api::batch::v1::JobSpec {
    job.spec.clone().unwrap_or_default()
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

fn completions(job: &Job) -> Option<i32> {
    job.spec.as_ref().and_then(|s| s.completions)
}

fn has_finalizer(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// `getCompletionIndex`: the annotation's index, `None` when absent or invalid.
pub fn completion_index(p: &Pod) -> Option<i32> {
    let v = p.metadata.annotations.as_ref()?.get(COMPLETION_INDEX)?;
    v.parse::<i32>().ok().filter(|i| *i >= 0)
}

/// Whether a pod has a valid index below `completions`.
fn valid_index(job: &Job, p: &Pod) -> Option<i32> {
    completion_index(p).filter(|i| Some(*i) < completions(job).or(Some(0)).map(|c| c.max(0)))
}

/// `onlyReplaceFailedPods`.
fn only_replace_failed(job: &Job) -> bool {
    job.spec
        .as_ref()
        .and_then(|s| s.pod_replacement_policy.as_deref())
        == Some("Failed")
        || job
            .spec
            .as_ref()
            .is_some_and(|s| s.pod_failure_policy.is_some())
}

/// Upstream `isPodFailed`: phase Failed, or (unless only failed pods are replaced) deleted
/// before it succeeded.
fn is_pod_failed(p: &Pod, job: &Job) -> bool {
    if phase(p) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    p.metadata.deletion_timestamp.is_some() && phase(p) != "Succeeded"
}

/// Upstream `getFinishedTime`.
fn finished_time(p: &Pod) -> Timestamp {
    let status = p.status.as_ref();
    let mut latest: Option<Timestamp> = None;
    let mut all = true;
    for cs in status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or(&[])
    {
        match cs
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.finished_at.as_ref())
        {
            Some(t) => latest = Some(latest.map_or(t.0, |l| l.max(t.0))),
            None => all = false,
        }
    }
    if all && let Some(t) = latest {
        return t;
    }
    if let Some(t) = status
        .and_then(|s| s.conditions.as_deref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.type_ == "Ready" && c.status == "False")
        })
        .and_then(|c| c.last_transition_time.as_ref())
    {
        return t.0;
    }
    if let Some(d) = p.metadata.deletion_timestamp.as_ref() {
        let grace = p.metadata.deletion_grace_period_seconds.unwrap_or(0);
        return d.0 - k8s_openapi::jiff::SignedDuration::from_secs(grace);
    }
    p.metadata
        .creation_timestamp
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
}

/// `newBackoffRecord`.
fn new_backoff(old: Backoff, succeeded: &[&Pod], failed: &[&Pod]) -> Backoff {
    let mut s: Vec<Timestamp> = succeeded.iter().map(|p| finished_time(p)).collect();
    let mut f: Vec<Timestamp> = failed.iter().map(|p| finished_time(p)).collect();
    s.sort();
    f.sort();
    match (s.last(), f.last()) {
        (None, None) => old,
        (None, Some(last)) => Backoff {
            failures_after_last_success: old.failures_after_last_success
                + u32::try_from(f.len()).unwrap_or(u32::MAX),
            last_failure: Some(*last),
        },
        (Some(_), None) => Backoff::default(),
        (Some(last_success), Some(_)) => {
            let mut b = Backoff::default();
            for t in f.iter().rev() {
                if t <= last_success {
                    break;
                }
                if b.last_failure.is_none() {
                    b.last_failure = Some(*t);
                }
                b.failures_after_last_success += 1;
            }
            b
        }
    }
}

/// A condition as upstream's `newCondition` makes it.
fn condition(t: &str, status: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: t.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()).filter(|r| !r.is_empty()),
        message: Some(message.to_string()).filter(|m| !m.is_empty()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// `ensureJobConditionStatus`: sets the condition (appending it unless it would be False);
/// whether anything changed.
fn ensure_condition(
    list: &mut Vec<JobCondition>,
    t: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    if let Some(c) = list.iter_mut().find(|c| c.type_ == t) {
        if c.status != status
            || c.reason.as_deref().unwrap_or("") != reason
            || c.message.as_deref().unwrap_or("") != message
        {
            *c = condition(t, status, reason, message, now);
            return true;
        }
        return false;
    }
    if status != "False" {
        list.push(condition(t, status, reason, message, now));
        return true;
    }
    false
}

/// Upstream `succeededIndexes.String()`: `1,3-5,7,8`.
pub fn format_indexes(ix: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = ix.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        // Two neighbours are listed, not ranged (upstream's `orderedIntervals.String`).
        out.push(match last - first {
            0 => first.to_string(),
            1 => format!("{first},{last}"),
            _ => format!("{first}-{last}"),
        });
    }
    out.join(",")
}

/// Upstream `parseIndexesFromString` (indexes below `completions`; bad parts skipped).
pub fn parse_indexes(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        if let (Ok(a), Ok(b)) = (a, b) {
            out.extend((a.max(0)..=b.min(completions - 1)).filter(|i| *i >= 0));
        }
    }
    out
}

impl Controller {
    fn new(cluster: ClusterRef, clock: Clock) -> Controller {
        Controller {
            recorder: Recorder::new(cluster.clone(), "job-controller", Style::Legacy),
            cluster,
            queue: WorkQueue::controller_default(),
            clock,
            backoff: Mutex::new(HashMap::new()),
        }
    }

    async fn event(&self, job: &Job, type_: &str, reason: &str, message: &str) {
        self.recorder
            .event(jobs(), &job.metadata, type_, reason, "", message)
            .await;
    }

    /// upstream `syncJob`; `Some(d)` looks again after `d`.
    async fn sync(&self, namespace: &str, name: &str) -> Result<Option<Duration>, Error> {
        let key = (namespace.to_string(), name.to_string());
        let Some(job) = typed::get::<Job>(&self.cluster, namespace, name).await? else {
            self.backoff.lock().remove(&key);
            self.release_orphans(namespace, name, None).await?;
            return Ok(None);
        };

        let sp = spec(&job);
        let selector = match sp.selector.as_ref().map(LabelSelector::from_k8s) {
            Some(Ok(s)) => s,
            _ => {
                tracing::warn!(%namespace, %name, "job has an invalid selector; skipping");
                return Ok(None);
            }
        };
        let all = typed::list::<Pod>(&self.cluster, Some(namespace)).await?;
        let owner = crate::claim::Owner::of(&job.metadata, jobs(), &selector);
        let pods = crate::claim::claim(&self.cluster, &owner, all).await?;
        if is_finished(&job) {
            // Pods of a finished Job no longer need tracking (upstream frees them as it
            // sees them).
            self.remove_finalizers(&pods.iter().filter(|p| has_finalizer(p)).collect::<Vec<_>>())
                .await?;
            self.backoff.lock().remove(&key);
            return Ok(None);
        }
        let now = self.clock.now();
        let mut again: Option<Duration> = None;
        let status = job.status.clone().unwrap_or_default();
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let uncounted_succeeded: HashSet<String> =
            uncounted.succeeded.iter().flatten().cloned().collect();
        let uncounted_failed: HashSet<String> =
            uncounted.failed.iter().flatten().cloned().collect();
        let active: Vec<Pod> = pods
            .iter()
            .filter(|p| !is_terminal(p) && p.metadata.deletion_timestamp.is_none())
            .cloned()
            .collect();
        let terminating = pods
            .iter()
            .filter(|p| !is_terminal(p) && p.metadata.deletion_timestamp.is_some())
            .count();
        let ready = active.iter().filter(|p| is_ready(p)).count();
        // getNewFinishedPods: pods with the finalizer, not yet uncounted.
        let fresh = |p: &&Pod, uncounted: &HashSet<String>| {
            has_finalizer(p)
                && !uncounted.contains(&uid(p))
                && (!is_indexed(&job) || valid_index(&job, p).is_some())
        };
        let new_succeeded: Vec<&Pod> = pods
            .iter()
            .filter(|p| fresh(p, &uncounted_succeeded) && phase(p) == "Succeeded")
            .collect();
        let new_failed: Vec<&Pod> = pods
            .iter()
            .filter(|p| fresh(p, &uncounted_failed) && is_pod_failed(p, &job))
            .collect();
        let counted_failed = new_failed
            .iter()
            .filter(|p| policy::matches(sp.pod_failure_policy.as_ref(), p).1)
            .count();
        let to_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let mut job = job;
        let mut st = status.clone();
        if st.start_time.is_none() && !suspended(&job) {
            st.start_time = Some(Time(now));
        }
        job.status = Some(st);
        let old_backoff = self.backoff.lock().get(&key).copied().unwrap_or_default();
        let mut ctx = Ctx {
            succeeded: status.succeeded.unwrap_or(0)
                + to_i32(new_succeeded.len())
                + to_i32(uncounted_succeeded.len()),
            failed: status.failed.unwrap_or(0)
                + to_i32(counted_failed)
                + to_i32(uncounted_failed.len()),
            new_backoff: new_backoff(old_backoff, &new_succeeded, &new_failed),
            job,
            active,
            ready: to_i32(ready),
            terminating: to_i32(terminating),
            uncounted_succeeded,
            uncounted_failed,
            finished: None,
            prev_succeeded_indexes: BTreeSet::new(),
            succeeded_indexes: BTreeSet::new(),
            failed_indexes: None,
            delayed: HashMap::new(),
            pods,
        };
        let backoff_limit = sp.backoff_limit.unwrap_or(6);
        if has_true(&ctx.job, "SuccessCriteriaMet") {
            ctx.finished = conditions(&ctx.job)
                .iter()
                .find(|c| c.type_ == "SuccessCriteriaMet")
                .cloned();
        } else if let Some(ft) = conditions(&ctx.job)
            .iter()
            .find(|c| c.type_ == "FailureTarget" && c.status == "True")
        {
            ctx.finished = Some(condition(
                "Failed",
                "True",
                ft.reason.as_deref().unwrap_or(""),
                ft.message.as_deref().unwrap_or(""),
                now,
            ));
        } else if let Some(msg) = policy::fail_job_message(&ctx.job, &ctx.pods, is_pod_failed) {
            ctx.finished = Some(condition(
                "FailureTarget",
                "True",
                "PodFailurePolicy",
                &msg,
                now,
            ));
        }
        if ctx.finished.is_none() {
            let started = ctx
                .job
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0);
            let deadline = sp
                .active_deadline_seconds
                .filter(|_| !suspended(&ctx.job))
                .zip(started);
            if ctx.failed > backoff_limit || past_backoff_on_failure(&ctx.job, &ctx.pods) {
                ctx.finished = Some(condition(
                    "FailureTarget",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now,
                ));
            } else if let Some((secs, start)) = deadline {
                let allowed = k8s_openapi::jiff::SignedDuration::from_secs(secs);
                let elapsed = now.duration_since(start);
                if elapsed >= allowed {
                    ctx.finished = Some(condition(
                        "FailureTarget",
                        "True",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                        now,
                    ));
                } else {
                    again = Duration::try_from(allowed - elapsed).ok();
                }
            }
        }
        if is_indexed(&ctx.job) {
            let c = completions(&ctx.job).unwrap_or(0);
            ctx.prev_succeeded_indexes = parse_indexes(
                ctx.job
                    .status
                    .as_ref()
                    .and_then(|s| s.completed_indexes.as_deref())
                    .unwrap_or(""),
                c,
            );
            ctx.succeeded_indexes = ctx.prev_succeeded_indexes.clone();
            for p in &ctx.pods {
                if phase(p) == "Succeeded"
                    && has_finalizer(p)
                    && let Some(ix) = valid_index(&ctx.job, p)
                {
                    ctx.succeeded_indexes.insert(ix);
                }
            }
            ctx.succeeded = to_i32(ctx.succeeded_indexes.len());
            if let Some(limit) = per_index::limit(&ctx.job) {
                let failed = per_index::failed_indexes(&ctx.job, &ctx.pods, limit);
                if ctx.finished.is_none() {
                    let max = sp
                        .max_failed_indexes
                        .map(|m| usize::try_from(m).unwrap_or(0));
                    if max.is_some_and(|m| failed.len() > m) {
                        ctx.finished = Some(condition(
                            "FailureTarget",
                            "True",
                            "MaxFailedIndexesExceeded",
                            "Job has exceeded the specified maximal number of failed indexes",
                            now,
                        ));
                    } else if !failed.is_empty()
                        && failed.len() + ctx.succeeded_indexes.len()
                            >= usize::try_from(c).unwrap_or(0)
                    {
                        ctx.finished = Some(condition(
                            "FailureTarget",
                            "True",
                            "FailedIndexes",
                            "Job has failed indexes",
                            now,
                        ));
                    }
                }
                ctx.delayed = per_index::delayed_deletion(
                    &ctx.job,
                    &ctx.pods,
                    &ctx.active,
                    &ctx.succeeded_indexes,
                    &failed,
                );
                ctx.failed_indexes = Some(failed);
            }
            if ctx.finished.is_none()
                && let Some(msg) = success::matched(
                    ctx.job
                        .spec
                        .as_ref()
                        .and_then(|s| s.success_policy.as_ref()),
                    c,
                    &ctx.succeeded_indexes,
                )
            {
                ctx.finished = Some(condition(
                    "SuccessCriteriaMet",
                    "True",
                    success::REASON,
                    &msg,
                    now,
                ));
            }
        }
        let mut manage_err = None;
        let mut active_count = to_i32(ctx.active.len());
        let mut suspend_changed = false;
        if ctx.finished.is_some() {
            let victims: Vec<Pod> = ctx.active.clone();
            let (deleted_ready, deleted, err) = self.delete_pods(&ctx.job, &victims, false).await;
            if deleted != active_count {
                ctx.finished = None;
            }
            active_count -= deleted;
            ctx.terminating += deleted;
            ctx.ready -= deleted_ready;
            manage_err = err;
        } else {
            let mut manage_called = false;
            if ctx.job.metadata.deletion_timestamp.is_none() {
                let (n, d, err) = self.manage(&mut ctx, now).await;
                active_count = n;
                if let Some(d) = d {
                    again = Some(again.map_or(d, |a| a.min(d)));
                }
                manage_err = err;
                manage_called = true;
            }
            let complete = match completions(&ctx.job) {
                None => ctx.succeeded > 0 && active_count == 0,
                Some(c) => ctx.succeeded >= c && active_count == 0,
            };
            if complete {
                ctx.finished = Some(condition(
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                ));
            } else if manage_called {
                let susp = suspended(&ctx.job);
                let st = ctx.job.status.get_or_insert_with(JobStatus::default);
                let list = st.conditions.get_or_insert_with(Vec::new);
                let (status, reason, message, ev) = if susp {
                    ("True", "JobSuspended", "Job suspended", "Suspended")
                } else {
                    ("False", "JobResumed", "Job resumed", "Resumed")
                };
                if ensure_condition(list, "Suspended", status, reason, message, now) {
                    suspend_changed = true;
                    if !susp {
                        // A resumed Job's activeDeadlineSeconds counts from now.
                        st.start_time = Some(Time(now));
                    }
                    let job = ctx.job.clone();
                    self.event(&job, events::NORMAL, ev, message).await;
                }
            }
        }
        let st = ctx.job.status.get_or_insert_with(JobStatus::default);
        if st.conditions.as_ref().is_some_and(Vec::is_empty) {
            // omitempty: no conditions is no list.
            st.conditions = None;
        }
        let needs_update = suspend_changed
            || st.active.unwrap_or(0) != active_count
            || st.ready != Some(ctx.ready)
            || st.terminating != Some(ctx.terminating)
            || status.start_time != st.start_time;
        st.active = Some(active_count).filter(|n| *n != 0);
        st.ready = Some(ctx.ready);
        st.terminating = Some(ctx.terminating);
        self.backoff_store(&key, ctx.new_backoff);
        self.track_status(&mut ctx, needs_update, now).await?;
        if let Some(e) = manage_err {
            return Err(e.into());
        }
        Ok(again)
    }

    fn backoff_store(&self, key: &Key, b: Backoff) {
        let mut map = self.backoff.lock();
        if map.len() >= MAX_BACKOFF_RECORDS && !map.contains_key(key) {
            // Bounded: forget an arbitrary record (that Job waits less before its next pod).
            if let Some(k) = map.keys().next().cloned() {
                map.remove(&k);
            }
        }
        map.insert(key.clone(), b);
    }

    /// upstream `manageJob`: (active count, when to look again, error).
    async fn manage(
        &self,
        ctx: &mut Ctx,
        now: Timestamp,
    ) -> (i32, Option<Duration>, Option<api::status::ApiError>) {
        let job = ctx.job.clone();
        let sp = spec(&job);
        let active = i32::try_from(ctx.active.len()).unwrap_or(i32::MAX);
        if suspended(&job) {
            let victims = order_for_removal(&job, &ctx.active, ctx.active.len());
            let (r, removed, err) = self.delete_pods(&job, &victims, true).await;
            ctx.terminating += removed;
            ctx.ready -= r;
            return (active - removed, None, err);
        }
        let parallelism = sp.parallelism.unwrap_or(1);
        let want = match sp.completions {
            None if ctx.succeeded > 0 => active,
            None => parallelism,
            Some(c) => (c - ctx.succeeded).min(parallelism).max(0),
        };
        let rm_at_least = usize::try_from((active - want).max(0)).unwrap_or(0);
        let mut victims = order_for_removal(&job, &ctx.active, rm_at_least);
        victims.truncate(MAX_CREATE_DELETE);
        if !victims.is_empty() {
            let (r, removed, err) = self.delete_pods(&job, &victims, true).await;
            ctx.terminating += removed;
            ctx.ready -= r;
            return (active - removed, None, err);
        }
        let terminating = if only_replace_failed(&job) {
            ctx.terminating
        } else {
            0
        };
        let diff = want - terminating - active;
        if diff <= 0 {
            return (active, None, None);
        }
        // With backoffLimitPerIndex each index backs off on its own (below).
        let remaining = if per_index::limit(&job).is_none() {
            ctx.new_backoff.remaining(now)
        } else {
            Duration::ZERO
        };
        if !remaining.is_zero() {
            return (active, Some(remaining), None);
        }
        let mut diff = usize::try_from(diff).unwrap_or(0).min(MAX_CREATE_DELETE);
        let mut indexes: Vec<Option<i32>> = vec![None; diff];
        if is_indexed(&job) {
            let taken: BTreeSet<i32> = ctx
                .active
                .iter()
                .filter_map(|p| valid_index(&job, p))
                .chain(ctx.succeeded_indexes.iter().copied())
                .chain(ctx.failed_indexes.iter().flatten().copied())
                .collect();
            let c = sp.completions.unwrap_or(0);
            indexes = (0..c)
                .filter(|i| !taken.contains(i))
                .take(diff)
                .map(Some)
                .collect();
            if per_index::limit(&job).is_some() {
                // `getPodCreationInfoForIndependentIndexes`: the indexes done backing off,
                // else a look again when the first one is.
                let wait = |ix: &Option<i32>| {
                    per_index::remaining(ix.and_then(|i| ctx.delayed.get(&i)), now)
                };
                let ready: Vec<Option<i32>> = indexes
                    .iter()
                    .filter(|ix| wait(ix).is_zero())
                    .copied()
                    .collect();
                if ready.is_empty() {
                    let soonest = indexes.iter().map(wait).min();
                    return (active, soonest.filter(|d| !d.is_zero()), None);
                }
                indexes = ready;
            }
            diff = indexes.len();
        }
        let mut created = 0;
        let mut batch = 1usize;
        let mut queue = indexes.into_iter();
        let mut err = None;
        let mut left = diff;
        while left > 0 {
            let size = batch.min(left);
            let chunk: Vec<Option<i32>> = queue.by_ref().take(size).collect();
            let results = futures::future::join_all(chunk.iter().map(|ix| {
                let replaced = per_index::limit(&job)
                    .and(*ix)
                    .map(|i| per_index::replacement_counts(&job, ctx.delayed.get(&i)));
                self.create_pod(&job, *ix, replaced)
            }))
            .await;
            let mut failed = false;
            for r in results {
                match r {
                    Ok(()) => created += 1,
                    Err(e) => {
                        failed = true;
                        err.get_or_insert(e);
                    }
                }
            }
            if failed {
                break;
            }
            left -= size;
            batch *= 2;
        }
        (active + created, None, err)
    }

    /// upstream `CreatePodsWithGenerateName` from the template (with the tracking finalizer,
    /// and for Indexed Jobs the index).
    /// `failure_counts`: with backoffLimitPerIndex, the index's (failures, ignored failures)
    /// so far, as the pod's annotations.
    async fn create_pod(
        &self,
        job: &Job,
        index: Option<i32>,
        failure_counts: Option<(i32, i32)>,
    ) -> Result<(), api::status::ApiError> {
        let mut pod = pod_from_template(job, index);
        if let Some((failures, ignored)) = failure_counts {
            let a = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
            a.insert(per_index::FAILURE_COUNT.into(), failures.to_string());
            if ignored > 0 {
                a.insert(per_index::IGNORED_FAILURE_COUNT.into(), ignored.to_string());
            }
        }
        let ns = typed::namespace(&job.metadata);
        let body = typed::encode(&pod)?;
        match self.cluster.create(pods(), ns, body).await {
            Ok(created) => {
                let msg = format!("Created pod: {}", crate::meta::str(&created, "name"));
                self.event(job, events::NORMAL, "SuccessfulCreate", &msg)
                    .await;
                Ok(())
            }
            Err(e) => {
                let terminating = e
                    .details
                    .as_ref()
                    .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"));
                if terminating {
                    return Ok(());
                }
                let msg = format!("Error creating: {}", e.message);
                self.event(job, events::WARNING, "FailedCreate", &msg).await;
                Err(e)
            }
        }
    }

    /// Deletes pods (upstream `deleteJobPods` with `remove_finalizer`, which frees the pod
    /// first; `deleteActivePods` keeps it, so the pod is counted as failed when it ends):
    /// (ready deleted, deleted, first error).
    async fn delete_pods(
        &self,
        job: &Job,
        victims: &[Pod],
        remove_finalizer: bool,
    ) -> (i32, i32, Option<api::status::ApiError>) {
        let mut deleted = 0;
        let mut ready = 0;
        let mut err = None;
        for p in victims {
            if remove_finalizer
                && has_finalizer(p)
                && let Err(e) = self.remove_finalizers(&[p]).await
            {
                err.get_or_insert(match e {
                    Error::Api(a) => *a,
                    other => api::status::ApiError::internal(other.to_string()),
                });
                continue;
            }
            let name = typed::name(&p.metadata);
            match self
                .cluster
                .delete(
                    pods(),
                    typed::namespace(&p.metadata),
                    name,
                    &DeleteOptions::default(),
                )
                .await
            {
                Ok(_) => {
                    deleted += 1;
                    if is_ready(p) {
                        ready += 1;
                    }
                    let msg = format!("Deleted pod: {name}");
                    self.event(job, events::NORMAL, "SuccessfulDelete", &msg)
                        .await;
                }
                Err(e) if e.code == 404 => deleted += 1,
                Err(e) => {
                    let msg = format!("Error deleting: {}", e.message);
                    self.event(job, events::WARNING, "FailedDelete", &msg).await;
                    err.get_or_insert(e);
                }
            }
        }
        (ready, deleted, err)
    }

    /// upstream `syncOrphanPod`: pods still holding the tracking finalizer whose controller
    /// is a Job `name` that no longer exists (or has another uid than `live_uid`) are freed,
    /// so a Job deleted in the background does not leave its pods terminating forever.
    async fn release_orphans(
        &self,
        namespace: &str,
        name: &str,
        live_uid: Option<&str>,
    ) -> Result<(), Error> {
        let pods = typed::list::<Pod>(&self.cluster, Some(namespace)).await?;
        let orphans: Vec<&Pod> = pods
            .iter()
            .filter(|p| has_finalizer(p))
            .filter(|p| {
                typed::controller_ref(&p.metadata).is_some_and(|r| {
                    r.kind == "Job"
                        && r.api_version == "batch/v1"
                        && r.name == name
                        && Some(r.uid.as_str()) != live_uid
                })
            })
            .collect();
        if !orphans.is_empty() {
            self.remove_finalizers(&orphans).await?;
        }
        Ok(())
    }

    /// Removes the tracking finalizer from `pods` (a pod already gone counts as done).
    async fn remove_finalizers(&self, pods: &[&Pod]) -> Result<Vec<String>, Error> {
        let mut done = Vec::new();
        let mut first_err = None;
        for p in pods {
            let r = crate::edit_at(
                &self.cluster,
                crate::job::pods(),
                typed::at(&p.metadata),
                Subresource::Main,
                |o| {
                    let removed = crate::meta::remove_finalizer(o, TRACKING_FINALIZER);
                    // An emptied list is omitted, as Go's omitempty writes it.
                    if o["metadata"]["finalizers"]
                        .as_array()
                        .is_some_and(Vec::is_empty)
                        && let Some(m) = o["metadata"].as_object_mut()
                    {
                        m.remove("finalizers");
                    }
                    removed
                },
            )
            .await;
            match r {
                Ok(_) => done.push(uid(p)),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) if done.is_empty() => Err(e.into()),
            Some(e) => {
                tracing::warn!(error = %e, "removing a job tracking finalizer failed");
                Ok(done)
            }
            None => Ok(done),
        }
    }

    /// Writes the status (only the fields the Job controller owns are replaced, so fields
    /// this build does not know survive); returns the Job as stored.
    async fn write_status(&self, job: &Job) -> Result<Job, Error> {
        let status = typed::encode(job.status.as_ref().unwrap_or(&JobStatus::default()))?;
        let obj = typed::edit(&self.cluster, job, Subresource::Status, |o| {
            let mut st = if o["status"].is_object() {
                o["status"].clone()
            } else {
                json!({})
            };
            for f in [
                "active",
                "ready",
                "terminating",
                "succeeded",
                "failed",
                "startTime",
                "completionTime",
                "conditions",
                "completedIndexes",
                "failedIndexes",
                "uncountedTerminatedPods",
            ] {
                match status.get(f) {
                    Some(v) if !v.is_null() => st[f] = v.clone(),
                    _ => {
                        if let Some(m) = st.as_object_mut() {
                            m.remove(f);
                        }
                    }
                }
            }
            let changed = st != o["status"];
            o["status"] = st;
            changed
        })
        .await?;
        match obj {
            Some(o) => typed::decode(&o),
            None => Ok(job.clone()),
        }
    }

    /// upstream `trackJobStatusAndRemoveFinalizers` with `flushUncountedAndRemoveFinalizers`
    /// and `enactJobFinished`.
    async fn track_status(
        &self,
        ctx: &mut Ctx,
        mut needs_flush: bool,
        now: Timestamp,
    ) -> Result<(), Error> {
        let indexed = is_indexed(&ctx.job);
        let sp = spec(&ctx.job);
        let c = sp.completions.unwrap_or(0);
        let mut with_finalizer: HashSet<String> = ctx
            .pods
            .iter()
            .filter(|p| has_finalizer(p))
            .map(uid)
            .collect();
        let old_counters = ctx.job.status.clone().unwrap_or_default();
        if clean_uncounted(&mut ctx.job, &with_finalizer) {
            needs_flush = true;
        }
        let mut uncounted = ctx
            .job
            .status
            .as_ref()
            .and_then(|s| s.uncounted_terminated_pods.clone())
            .unwrap_or_default();
        let mut to_free: Vec<Pod> = Vec::new();
        let mut pods = ctx.pods.clone();
        if indexed {
            pods.sort_by_key(|p| completion_index(p).unwrap_or(i32::MAX));
        }
        let finished_not_success = ctx
            .finished
            .as_ref()
            .is_some_and(|f| f.type_ != "SuccessCriteriaMet");
        let mut new_indexes = Vec::new();
        for p in &pods {
            if !has_finalizer(p) {
                continue;
            }
            let failed = is_pod_failed(p, &ctx.job);
            // `canRemoveFinalizer`: a failed pod whose index is retried keeps it until its
            // replacement carries the index's failure count.
            let delayed = completion_index(p)
                .and_then(|i| ctx.delayed.get(&i))
                .is_some_and(|d| uid(d) == uid(p));
            let can_remove = ctx.job.metadata.deletion_timestamp.is_some()
                || ctx.finished.is_some()
                || phase(p) == "Succeeded"
                || (failed && !delayed);
            if !can_remove {
                continue;
            }
            to_free.push(p.clone());
            let id = uid(p);
            if phase(p) == "Succeeded" && !ctx.uncounted_failed.contains(&id) {
                if indexed {
                    if let Some(ix) = completion_index(p).filter(|i| *i < c)
                        && !ctx.prev_succeeded_indexes.contains(&ix)
                    {
                        new_indexes.push(ix);
                        needs_flush = true;
                    }
                } else if !ctx.uncounted_succeeded.contains(&id) {
                    needs_flush = true;
                    uncounted.succeeded.get_or_insert_with(Vec::new).push(id);
                }
            } else if (failed || finished_not_success)
                && !ctx.uncounted_failed.contains(&id)
                && (!indexed || completion_index(p).is_some_and(|i| i < c))
                && policy::matches(sp.pod_failure_policy.as_ref(), p).1
            {
                needs_flush = true;
                uncounted.failed.get_or_insert_with(Vec::new).push(id);
            }
            let n = new_indexes.len()
                + uncounted.succeeded.as_ref().map_or(0, Vec::len)
                + uncounted.failed.as_ref().map_or(0, Vec::len);
            if n >= MAX_UNCOUNTED_PODS {
                break;
            }
        }
        let reached_max = to_free.len() >= MAX_UNCOUNTED_PODS;
        {
            let st = ctx.job.status.get_or_insert_with(JobStatus::default);
            st.uncounted_terminated_pods = Some(uncounted);
            if indexed {
                let mut ix = ctx.prev_succeeded_indexes.clone();
                ix.extend(new_indexes);
                let s = format_indexes(&ix);
                if st.completed_indexes.as_deref().unwrap_or("") != s {
                    needs_flush = true;
                }
                st.succeeded = Some(i32::try_from(ix.len()).unwrap_or(i32::MAX));
                st.completed_indexes = Some(s).filter(|s| !s.is_empty());
                let failed = ctx.failed_indexes.as_ref().map(format_indexes);
                if st.failed_indexes != failed {
                    st.failed_indexes = failed;
                    needs_flush = true;
                }
            }
        }
        // The interim conditions go out before any finalizer is removed.
        if let Some(f) = ctx.finished.clone() {
            let st = ctx.job.status.get_or_insert_with(JobStatus::default);
            let list = st.conditions.get_or_insert_with(Vec::new);
            if f.type_ == "FailureTarget" {
                list.push(f.clone());
                needs_flush = true;
                ctx.finished = Some(condition(
                    "Failed",
                    "True",
                    f.reason.as_deref().unwrap_or(""),
                    f.message.as_deref().unwrap_or(""),
                    now,
                ));
            } else if f.type_ == "SuccessCriteriaMet" {
                if !list
                    .iter()
                    .any(|c| c.type_ == "SuccessCriteriaMet" && c.status == "True")
                {
                    list.push(f.clone());
                    needs_flush = true;
                }
                ctx.finished = Some(condition(
                    "Complete",
                    "True",
                    f.reason.as_deref().unwrap_or(""),
                    f.message.as_deref().unwrap_or(""),
                    now,
                ));
            }
        }
        if needs_flush {
            ctx.job = self.write_status(&ctx.job).await?;
            needs_flush = false;
        }
        let refs: Vec<&Pod> = to_free.iter().collect();
        let freed = if refs.is_empty() {
            Vec::new()
        } else {
            self.remove_finalizers(&refs).await?
        };
        for id in &freed {
            with_finalizer.remove(id);
        }
        if clean_uncounted(&mut ctx.job, &with_finalizer) {
            needs_flush = true;
        }
        // enactJobFinished.
        let mut finished_now = false;
        if let Some(f) = ctx.finished.clone()
            && !reached_max
        {
            let st = ctx.job.status.get_or_insert_with(JobStatus::default);
            let uncounted_left = st.uncounted_terminated_pods.as_ref().map_or(0, |u| {
                u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len)
            });
            if uncounted_left == 0 && ctx.terminating == 0 {
                let list = st.conditions.get_or_insert_with(Vec::new);
                ensure_condition(
                    list,
                    &f.type_,
                    &f.status,
                    f.reason.as_deref().unwrap_or(""),
                    f.message.as_deref().unwrap_or(""),
                    now,
                );
                if f.type_ == "Complete" {
                    st.completion_time = Some(Time(now));
                }
                finished_now = true;
                needs_flush = true;
            }
        }
        if needs_flush || ctx.job.status.as_ref() != Some(&old_counters) {
            ctx.job = self.write_status(&ctx.job).await?;
        }
        if finished_now && let Some(f) = ctx.finished.clone() {
            let job = ctx.job.clone();
            if f.type_ == "Complete" {
                let succeeded = job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
                if completions(&job).is_some_and(|c| succeeded > c) {
                    self.event(
                        &job,
                        events::WARNING,
                        "TooManySucceededPods",
                        "Too many succeeded pods running after completion count reached",
                    )
                    .await;
                }
                self.event(&job, events::NORMAL, "Completed", "Job completed")
                    .await;
            } else {
                self.event(
                    &job,
                    events::WARNING,
                    f.reason.as_deref().unwrap_or(""),
                    f.message.as_deref().unwrap_or(""),
                )
                .await;
            }
        }
        Ok(())
    }
}

/// `cleanUncountedPodsWithoutFinalizers`: uncounted pods whose finalizer is gone move into
/// the counters; whether anything changed.
fn clean_uncounted(job: &mut Job, with_finalizer: &HashSet<String>) -> bool {
    let st = job.status.get_or_insert_with(JobStatus::default);
    let u = st
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default);
    let mut changed = false;
    let split = |list: &mut Option<Vec<String>>| -> i32 {
        let Some(l) = list.as_mut() else { return 0 };
        let before = l.len();
        l.retain(|id| with_finalizer.contains(id));
        let moved = before - l.len();
        if l.is_empty() {
            *list = None;
        }
        i32::try_from(moved).unwrap_or(i32::MAX)
    };
    let s = split(&mut u.succeeded);
    let f = split(&mut u.failed);
    if s > 0 {
        st.succeeded = Some(st.succeeded.unwrap_or(0) + s);
        changed = true;
    }
    if f > 0 {
        st.failed = Some(st.failed.unwrap_or(0) + f);
        changed = true;
    }
    changed
}

/// `pastBackoffLimitOnFailure`: restarts of running pods of an OnFailure Job.
fn past_backoff_on_failure(job: &Job, pods: &[Pod]) -> bool {
    let sp = spec(job);
    let rp = sp
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref());
    if rp != Some("OnFailure") {
        return false;
    }
    let mut restarts = 0i64;
    for p in pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
    {
        let st = p.status.as_ref();
        for cs in st
            .and_then(|s| s.init_container_statuses.as_deref())
            .unwrap_or(&[])
            .iter()
            .chain(
                st.and_then(|s| s.container_statuses.as_deref())
                    .unwrap_or(&[]),
            )
        {
            restarts += i64::from(cs.restart_count);
        }
    }
    let limit = i64::from(sp.backoff_limit.unwrap_or(6));
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// `activePodsForRemoval`: Indexed duplicates and out-of-range indexes first, then the
/// earliest-stage pods (unscheduled, pending, not ready).
fn order_for_removal(job: &Job, active: &[Pod], at_least: usize) -> Vec<Pod> {
    let mut rm = Vec::new();
    let mut left = Vec::new();
    if is_indexed(job) {
        let mut seen = BTreeSet::new();
        let mut sorted: Vec<&Pod> = active.iter().collect();
        sorted.sort_by_key(|p| (completion_index(p), is_ready(p)));
        for p in sorted.into_iter().rev() {
            match valid_index(job, p) {
                Some(ix) if seen.insert(ix) => left.push(p.clone()),
                _ => rm.push(p.clone()),
            }
        }
    } else {
        left = active.to_vec();
    }
    if rm.len() < at_least {
        let rank = |p: &Pod| {
            let scheduled = !crate::pod::typed::node_name(p).is_empty();
            let phase_rank = match phase(p) {
                "Pending" => 0,
                "Unknown" => 1,
                "Running" => 2,
                _ => 3,
            };
            (scheduled, phase_rank, is_ready(p))
        };
        left.sort_by_key(rank);
        let n = (at_least - rm.len()).min(left.len());
        rm.extend(left.into_iter().take(n));
    }
    rm
}

/// The pod of `job` for `index` (upstream `GetPodFromTemplate` plus the Job's additions).
pub(crate) fn pod_from_template(job: &Job, index: Option<i32>) -> Pod {
    let sp = spec(job);
    let template = sp.template;
    let tm = template.metadata.clone().unwrap_or_default();
    let name = typed::name(&job.metadata);
    let mut finalizers = tm.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.to_string());
    }
    let mut labels = tm.labels.clone().unwrap_or_default();
    let mut annotations = tm.annotations.clone().unwrap_or_default();
    let mut pod_spec = template.spec.clone().unwrap_or_default();
    let mut generate_name = format!("{name}-");
    if let Some(ix) = index {
        annotations.insert(COMPLETION_INDEX.to_string(), ix.to_string());
        labels.insert(COMPLETION_INDEX.to_string(), ix.to_string());
        pod_spec.hostname = Some(format!("{name}-{ix}"));
        generate_name = generate_name_with_index(name, ix);
        let env = EnvVar {
            name: COMPLETION_INDEX_ENV.to_string(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                }),
                ..EnvVarSource::default()
            }),
        };
        for c in pod_spec
            .containers
            .iter_mut()
            .chain(pod_spec.init_containers.iter_mut().flatten())
        {
            let list = c.env.get_or_insert_with(Vec::new);
            if !list.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
                list.push(env.clone());
            }
        }
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            owner_references: Some(vec![typed::controller_ref_to(job)]),
            labels: Some(labels).filter(|l: &BTreeMap<String, String>| !l.is_empty()),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            finalizers: Some(finalizers),
            ..ObjectMeta::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

/// `podGenerateNameWithIndex`: `<job>-<index>-`, the job name cut so the whole fits in 58
/// characters (the API server appends five random ones).
fn generate_name_with_index(job: &str, index: i32) -> String {
    let append = format!("-{index}-");
    let max = 63 - 5 - append.len();
    let base: String = job.chars().take(max).collect();
    format!("{base}{append}")
}

/// For [`ttl`] and the CronJob controller: the time a Job finished (its Complete or Failed
/// condition's transition time).
pub fn finish_time(job: &Job) -> Option<Timestamp> {
    conditions(job)
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}
