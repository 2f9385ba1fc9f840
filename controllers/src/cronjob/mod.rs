//! The CronJob controller (upstream `pkg/controller/cronjob/cronjob_controllerv2.go` and
//! `utils.go`).
//!
//! [`Controller::sync`] is upstream's `syncCronJob`: the Jobs the CronJob controls are
//! reconciled with `status.active` (finished ones leave it, `lastSuccessfulTime` follows
//! Complete ones; vanished ones leave it with `MissingJob`); unless suspended, the most recent
//! missed activation of the schedule ([`api::cron`], in `spec.timeZone` or this process's
//! zone) after `lastScheduleTime` (or creation, or the starting deadline) is started as the
//! Job `<cronjob>-<minutes since the epoch>` with the
//! `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation, subject to
//! `startingDeadlineSeconds` and `concurrencyPolicy` (Forbid skips while one runs, Replace
//! deletes the running ones); more than 100 missed activations are reported
//! (`TooManyMissedTimes`) and only the latest is started; finished Jobs beyond the history
//! limits are deleted, oldest first. The CronJob is queued again 100 ms after its next
//! activation. Time comes from the Job controller's [`Clock`], so paused-time tests run
//! schedules.

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use api::cluster::Propagation;
use api::cron::Schedule;
use api::registry::ResourceInfo;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp, Zoned};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::events::{self, Recorder, Style};
use crate::job::{Clock, finish_time, is_finished};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Change, Delta};
use crate::{Error, typed};

/// `batchv1.CronJobScheduledTimestampAnnotation`.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream's limit before `TooManyMissedTimes`.
const MANY_MISSED: i64 = 100;
/// `nextScheduleDelta`: how long after an activation the CronJob is looked at again.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);
/// `--concurrent-cron-job-syncs`.
const WORKERS: usize = 5;

type Key = (String, String);

fn cronjobs() -> &'static ResourceInfo {
    typed::info::<CronJob>()
}

fn jobs() -> &'static ResourceInfo {
    typed::info::<Job>()
}

/// Runs the CronJob controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    run_with_clock(cluster, Clock::default(), shutdown).await;
}

/// [`run`] with a given clock.
pub async fn run_with_clock(cluster: ClusterRef, clock: Clock, shutdown: CancellationToken) {
    let c = Arc::new(Controller {
        recorder: Recorder::new(cluster.clone(), "cronjob-controller", Style::Legacy),
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        clock,
    });
    crate::queue::drive(&cluster, c, &[cronjobs(), jobs()], WORKERS, &shutdown).await;
}

struct Controller {
    cluster: ClusterRef,
    recorder: Recorder,
    queue: WorkQueue<Key>,
    clock: Clock,
}

impl Reconciler for Controller {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    fn observe(&self, change: Change) {
        let is_job = std::ptr::eq(change.info, jobs());
        let (Delta::Upsert(o) | Delta::Delete(o)) = &change.delta else {
            return;
        };
        let Ok(m) = typed::metadata(o) else { return };
        if !is_job {
            self.queue.add(typed::key_of(&m));
        } else if let Some(r) = typed::controller_ref(&m)
            && r.kind == "CronJob"
            && r.api_version == "batch/v1"
        {
            self.queue
                .add((typed::namespace(&m).to_string(), r.name.clone()));
        }
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        self.sync(&key.0, &key.1).await
    }
}

/// `getJobName`: `<cronjob>-<scheduled time in minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// upstream `mostRecentScheduleTime`: (earliest time considered, the most recent activation
/// not after `now`, how many were missed).
fn most_recent(
    cj: &CronJob,
    now: &Zoned,
    sched: &Schedule,
    with_deadline: bool,
) -> Result<(Zoned, Option<Zoned>, i64), String> {
    let tz = now.time_zone().clone();
    let created = cj
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
    let mut earliest = cj
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .map_or(created, |t| t.0);
    if with_deadline && let Some(d) = cj.spec.starting_deadline_seconds {
        let deadline = now.timestamp() - SignedDuration::from_secs(d);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let earliest = earliest.to_zoned(tz);
    let next = |t: &Zoned| {
        sched
            .next(t)
            .ok_or("no next activation of the schedule".to_string())
    };
    let t1 = next(&earliest)?;
    let t2 = next(&t1)?;
    if *now < t1 {
        return Ok((earliest, None, 0));
    }
    if *now < t2 {
        return Ok((earliest, Some(t1), 1));
    }
    let between = t2.timestamp().duration_since(t1.timestamp()).as_secs();
    if between < 1 {
        return Err("time difference between two schedules is less than 1 second".into());
    }
    let elapsed = now.timestamp().duration_since(t1.timestamp()).as_secs();
    let missed = elapsed / between + 1;
    let secs = t1.timestamp().as_second() + (missed - 1) * between;
    let mut recent = Timestamp::from_second(secs)
        .map_err(|e| e.to_string())?
        .to_zoned(t1.time_zone().clone());
    // The interval is not constant (DST, irregular schedules): step back, then forward.
    if &recent > now {
        recent = t1.clone();
    }
    loop {
        let n = next(&recent)?;
        if &n > now {
            break;
        }
        recent = n;
    }
    Ok((earliest, Some(recent), missed))
}

impl Controller {
    async fn event(&self, cj: &CronJob, type_: &str, reason: &str, message: &str) {
        self.recorder
            .event(cronjobs(), &cj.metadata, type_, reason, "", message)
            .await;
    }

    /// The CronJob's schedule and zone; `Err` after recording why it cannot run.
    async fn schedule(&self, cj: &CronJob) -> Result<(Schedule, TimeZone), ()> {
        let tz = match cj.spec.time_zone.as_deref() {
            None => TimeZone::system(),
            Some(name) => match api::cron::time_zone(name) {
                Ok(tz) => tz,
                Err(e) => {
                    let msg = format!("invalid timeZone: {}: {e}", api::status::go_quote(name));
                    self.event(cj, events::WARNING, "UnknownTimeZone", &msg)
                        .await;
                    return Err(());
                }
            },
        };
        match api::cron::parse_standard(&cj.spec.schedule) {
            Ok(s) => Ok((s, tz)),
            Err(e) => {
                let msg = format!(
                    "unparseable schedule: {} : {e}",
                    api::status::go_quote(&cj.spec.schedule)
                );
                self.event(cj, events::WARNING, "UnparseableSchedule", &msg)
                    .await;
                Err(())
            }
        }
    }

    /// upstream `syncCronJob` (with `cleanupFinishedJobs`); `Some(d)`: look again after `d`.
    async fn sync(&self, namespace: &str, name: &str) -> Result<Option<Duration>, Error> {
        let Some(mut cj) = typed::get::<CronJob>(&self.cluster, namespace, name).await? else {
            return Ok(None);
        };
        if cj.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let uid = typed::uid(&cj.metadata).to_string();
        let children: Vec<Job> = typed::list::<Job>(&self.cluster, Some(namespace))
            .await?
            .into_iter()
            .filter(|j| typed::controller_ref(&j.metadata).is_some_and(|r| r.uid == uid))
            .collect();
        let before = cj.status.clone();
        let status = cj.status.get_or_insert_with(Default::default);
        let mut active = status.active.take().unwrap_or_default();
        for j in &children {
            let juid = typed::uid(&j.metadata);
            let found = active.iter().any(|r| r.uid.as_deref() == Some(juid));
            if !found && !is_finished(j) {
                let msg = format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    typed::name(&j.metadata)
                );
                let cj2 = cj.clone();
                self.event(&cj2, events::WARNING, "UnexpectedJob", &msg)
                    .await;
            } else if found && is_finished(j) {
                active.retain(|r| r.uid.as_deref() != Some(juid));
                let complete = j
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|l| {
                        l.iter()
                            .any(|c| c.type_ == "Complete" && c.status == "True")
                    });
                let cond = if complete { "Complete" } else { "Failed" };
                let msg = format!(
                    "Saw completed job: {}, condition: {cond}",
                    typed::name(&j.metadata)
                );
                let cj2 = cj.clone();
                self.event(&cj2, events::NORMAL, "SawCompletedJob", &msg)
                    .await;
                let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
                let st = cj.status.get_or_insert_with(Default::default);
                if complete
                    && let Some(done) = done
                    && st
                        .last_successful_time
                        .as_ref()
                        .is_none_or(|t| t.0 < done.0)
                {
                    st.last_successful_time = Some(done);
                }
            }
        }
        // References to Jobs that are gone.
        let mut kept = Vec::new();
        for r in active {
            let in_children = children
                .iter()
                .any(|j| Some(typed::uid(&j.metadata)) == r.uid.as_deref());
            if in_children {
                kept.push(r);
                continue;
            }
            let rname = r.name.clone().unwrap_or_default();
            match typed::get::<Job>(&self.cluster, namespace, &rname).await? {
                Some(j) if j.metadata.uid == r.uid => kept.push(r),
                _ => {
                    let msg = format!("Active job went missing: {rname}");
                    let cj2 = cj.clone();
                    self.event(&cj2, events::NORMAL, "MissingJob", &msg).await;
                }
            }
        }
        cj.status.get_or_insert_with(Default::default).active = Some(kept);
        let result = self.schedule_next(&mut cj, namespace).await;
        self.cleanup(&cj, &children).await;
        let st = cj.status.get_or_insert_with(Default::default);
        if st.active.as_ref().is_some_and(Vec::is_empty) {
            st.active = None;
        }
        if cj.status != before {
            self.write_status(&cj).await?;
        }
        result
    }

    /// The scheduling half of `syncCronJob`.
    async fn schedule_next(
        &self,
        cj: &mut CronJob,
        namespace: &str,
    ) -> Result<Option<Duration>, Error> {
        if cj.spec.suspend == Some(true) {
            return Ok(None);
        }
        let Ok((sched, tz)) = self.schedule(cj).await else {
            return Ok(None);
        };
        let now = self.clock.now().to_zoned(tz.clone());
        let recent = match most_recent(cj, &now, &sched, true) {
            Ok((_, r, missed)) => {
                if r.is_some() && missed > MANY_MISSED {
                    self.event(
                        cj,
                        events::WARNING,
                        "TooManyMissedTimes",
                        "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                    )
                    .await;
                }
                r
            }
            Err(e) => {
                let msg = format!(
                    "invalid schedule: {} : {e}",
                    api::status::go_quote(&cj.spec.schedule)
                );
                self.event(cj, events::WARNING, "InvalidSchedule", &msg)
                    .await;
                return Ok(None);
            }
        };
        let requeue = |cj: &CronJob| next_duration(cj, &now, &sched);
        let Some(scheduled) = recent.filter(|r| *r <= now) else {
            return Ok(requeue(cj));
        };
        if let Some(d) = cj.spec.starting_deadline_seconds
            && scheduled.timestamp() + SignedDuration::from_secs(d) < now.timestamp()
        {
            let msg = format!(
                "Missed scheduled time to start a job: {}",
                scheduled
                    .with_time_zone(TimeZone::UTC)
                    .strftime("%a, %d %b %Y %H:%M:%S %z")
            );
            self.event(cj, events::WARNING, "MissSchedule", &msg).await;
            return Ok(requeue(cj));
        }
        let cj_name = typed::name(&cj.metadata).to_string();
        let name = job_name(&cj_name, scheduled.timestamp());
        let st = cj.status.get_or_insert_with(Default::default);
        let active = st.active.get_or_insert_with(Vec::new);
        let already = active.iter().any(|r| r.name.as_deref() == Some(&name))
            || st.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled.timestamp());
        if already {
            return Ok(requeue(cj));
        }
        let policy = cj.spec.concurrency_policy.as_deref().unwrap_or("Allow");
        if policy == "Forbid" && !active.is_empty() {
            self.event(
                cj,
                events::NORMAL,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )
            .await;
            return Ok(requeue(cj));
        }
        if policy == "Replace" {
            let running = std::mem::take(active);
            let mut left = Vec::new();
            for r in running {
                let rname = r.name.clone().unwrap_or_default();
                if self.delete_job(cj, namespace, &rname).await {
                    continue;
                }
                left.push(r);
            }
            cj.status.get_or_insert_with(Default::default).active = Some(left);
        }
        let job = job_from_template(cj, &scheduled);
        let body = typed::encode(&job)?;
        let created = match self.cluster.create(jobs(), namespace, body).await {
            Ok(o) => Some(typed::decode::<Job>(&o)?),
            Err(e) if e.code == 409 => {
                // Already created (a previous sync whose status write was lost).
                match typed::get::<Job>(&self.cluster, namespace, &name).await? {
                    Some(j)
                        if typed::controller_ref(&j.metadata)
                            .is_some_and(|r| Some(&r.uid) == cj.metadata.uid.as_ref()) =>
                    {
                        Some(j)
                    }
                    _ => None,
                }
            }
            Err(e) => {
                let msg = format!("Error creating job: {}", e.message);
                self.event(cj, events::WARNING, "FailedCreate", &msg).await;
                return Err(e.into());
            }
        };
        if let Some(j) = created {
            let msg = format!("Created job {}", typed::name(&j.metadata));
            self.event(cj, events::NORMAL, "SuccessfulCreate", &msg)
                .await;
            let st = cj.status.get_or_insert_with(Default::default);
            st.active
                .get_or_insert_with(Vec::new)
                .push(ObjectReference {
                    api_version: Some("batch/v1".into()),
                    kind: Some("Job".into()),
                    name: j.metadata.name.clone(),
                    namespace: j.metadata.namespace.clone(),
                    uid: j.metadata.uid.clone(),
                    resource_version: j.metadata.resource_version.clone(),
                    field_path: None,
                });
            st.last_schedule_time = Some(Time(scheduled.timestamp()));
        }
        Ok(requeue(cj))
    }

    /// Deletes a Job (background propagation) with `SuccessfulDelete`; whether it is gone.
    async fn delete_job(&self, cj: &CronJob, namespace: &str, name: &str) -> bool {
        let opts = DeleteOptions {
            propagation_policy: Some(Propagation::Background),
            ..DeleteOptions::default()
        };
        match self.cluster.delete(jobs(), namespace, name, &opts).await {
            Ok(_) => {
                let msg = format!("Deleted job {name}");
                self.event(cj, events::NORMAL, "SuccessfulDelete", &msg)
                    .await;
                true
            }
            Err(e) if e.code == 404 => true,
            Err(e) => {
                let msg = format!("Error deleting job: {}", e.message);
                self.event(cj, events::WARNING, "FailedDelete", &msg).await;
                false
            }
        }
    }

    /// upstream `cleanupFinishedJobs`: finished Jobs beyond the history limits, oldest
    /// (by start time) first.
    async fn cleanup(&self, cj: &CronJob, children: &[Job]) {
        let (ok_limit, failed_limit) = (
            cj.spec.successful_jobs_history_limit,
            cj.spec.failed_jobs_history_limit,
        );
        if ok_limit.is_none() && failed_limit.is_none() {
            return;
        }
        let complete = |j: &Job| {
            j.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|l| {
                    l.iter()
                        .any(|c| c.type_ == "Complete" && c.status == "True")
                })
        };
        let namespace = typed::namespace(&cj.metadata);
        for (want_complete, limit) in [(true, ok_limit), (false, failed_limit)] {
            let Some(limit) = limit else { continue };
            let mut list: Vec<&Job> = children
                .iter()
                .filter(|j| is_finished(j) && complete(j) == want_complete)
                .filter(|j| j.metadata.deletion_timestamp.is_none())
                .collect();
            let limit = usize::try_from(limit.max(0)).unwrap_or(0);
            if list.len() <= limit {
                continue;
            }
            list.sort_by_key(|j| {
                (
                    j.status
                        .as_ref()
                        .and_then(|s| s.start_time.as_ref())
                        .map(|t| t.0)
                        .or_else(|| finish_time(j)),
                    j.metadata.name.clone(),
                )
            });
            let n = list.len() - limit;
            for j in list.into_iter().take(n) {
                self.delete_job(cj, namespace, typed::name(&j.metadata))
                    .await;
            }
        }
    }

    /// Writes `status.active`, `lastScheduleTime` and `lastSuccessfulTime`.
    async fn write_status(&self, cj: &CronJob) -> Result<(), Error> {
        let status = typed::encode(cj.status.as_ref().unwrap_or(&Default::default()))?;
        typed::edit(&self.cluster, cj, Subresource::Status, |o| {
            if !o["status"].is_object() {
                o["status"] = serde_json::json!({});
            }
            let before = o["status"].clone();
            for f in ["active", "lastScheduleTime", "lastSuccessfulTime"] {
                match status.get(f) {
                    Some(v) if !v.is_null() => o["status"][f] = v.clone(),
                    _ => {
                        if let Some(m) = o["status"].as_object_mut() {
                            m.remove(f);
                        }
                    }
                }
            }
            o["status"] != before
        })
        .await?;
        Ok(())
    }
}

/// `nextScheduleTimeDuration`: from now until 100 ms after the next activation.
fn next_duration(cj: &CronJob, now: &Zoned, sched: &Schedule) -> Option<Duration> {
    let (earliest, recent, missed) = most_recent(cj, now, sched, false).ok()?;
    let from = match recent {
        Some(r) => r,
        None if missed == 0 => earliest,
        None => return None,
    };
    let next = sched.next(&from)?;
    let d =
        Duration::try_from(next.timestamp().duration_since(now.timestamp())).unwrap_or_default();
    Some(d + NEXT_SCHEDULE_DELTA)
}

/// `getJobFromTemplate2`: the template's labels, annotations and spec, the deterministic
/// name, the scheduled-timestamp annotation (in the CronJob's zone), a controller reference.
fn job_from_template(cj: &CronJob, scheduled: &Zoned) -> Job {
    let t = &cj.spec.job_template;
    let tm = t.metadata.clone().unwrap_or_default();
    let mut annotations = tm.annotations.clone().unwrap_or_default();
    let zone = cj
        .spec
        .time_zone
        .as_deref()
        .and_then(|z| api::cron::time_zone(z).ok())
        .unwrap_or_else(TimeZone::system);
    annotations.insert(
        SCHEDULED_TIMESTAMP.to_string(),
        scheduled
            .with_time_zone(zone)
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace("+00:00", "Z"),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(typed::name(&cj.metadata), scheduled.timestamp())),
            labels: tm.labels.clone(),
            annotations: Some(annotations),
            owner_references: Some(vec![typed::controller_ref_to(cj)]),
            ..ObjectMeta::default()
        },
        spec: t.spec.clone(),
        status: None,
    }
}
