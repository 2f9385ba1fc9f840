//! The TTL-after-finished controller (upstream `pkg/controller/ttlafterfinished`): a
//! finished Job with `ttlSecondsAfterFinished` is deleted (foreground, so its pods go first)
//! that many seconds after its Complete or Failed condition; before that it is queued again
//! for the moment it expires.

use std::sync::Arc;
use std::time::Duration;

use api::cluster::Propagation;
use k8s_openapi::api::batch::v1::Job;
use tokio_util::sync::CancellationToken;

use super::{Clock, finish_time, is_finished, jobs};
use crate::cluster::{ClusterRef, DeleteOptions};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Change, Delta};
use crate::{Error, typed};

/// `--concurrent-ttl-after-finished-syncs`.
const WORKERS: usize = 5;

type Key = (String, String);

/// Runs the TTL-after-finished controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    run_with_clock(cluster, Clock::default(), shutdown).await;
}

/// [`run`] with a given clock.
pub async fn run_with_clock(cluster: ClusterRef, clock: Clock, shutdown: CancellationToken) {
    let c = Arc::new(Controller {
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        clock,
    });
    crate::queue::drive(&cluster, c, &[jobs()], WORKERS, &shutdown).await;
}

struct Controller {
    cluster: ClusterRef,
    queue: WorkQueue<Key>,
    clock: Clock,
}

/// The TTL of a finished Job that has one.
fn ttl(job: &Job) -> Option<i64> {
    if job.metadata.deletion_timestamp.is_some() || !is_finished(job) {
        return None;
    }
    job.spec
        .as_ref()
        .and_then(|s| s.ttl_seconds_after_finished)
        .map(i64::from)
}

impl Reconciler for Controller {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    fn observe(&self, change: Change) {
        if let Delta::Upsert(_) = &change.delta
            && let Some(job) = typed::upserted::<Job>(&change)
            && ttl(&job).is_some()
        {
            self.queue.add(typed::key_of(&job.metadata));
        }
    }

    /// upstream `processJob`: delete when expired (with the Job's uid and resourceVersion as
    /// preconditions, re-checked on a fresh read), else look again at expiry.
    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        let Some(job) = typed::get::<Job>(&self.cluster, &key.0, &key.1).await? else {
            return Ok(None);
        };
        let (Some(secs), Some(done)) = (ttl(&job), finish_time(&job)) else {
            return Ok(None);
        };
        let expires = done + k8s_openapi::jiff::SignedDuration::from_secs(secs);
        let now = self.clock.now();
        if now < expires {
            let left = Duration::try_from(expires.duration_since(now)).unwrap_or_default();
            return Ok(Some(left));
        }
        let opts = DeleteOptions {
            propagation_policy: Some(Propagation::Foreground),
            preconditions_uid: job.metadata.uid.clone(),
            preconditions_resource_version: job.metadata.resource_version.clone(),
            ..DeleteOptions::default()
        };
        match self.cluster.delete(jobs(), &key.0, &key.1, &opts).await {
            Ok(_) => Ok(None),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) if e.code == 409 => Ok(Some(Duration::ZERO)),
            Err(e) => Err(e.into()),
        }
    }
}
