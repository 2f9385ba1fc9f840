//! Leader election over a `coordination.k8s.io/v1` Lease, as client-go's
//! `tools/leaderelection` with a `LeaseLock` does it for kube-controller-manager: the
//! controllers run only while this process holds the lease, so several servers on one store
//! never run them twice.
//!
//! One attempt ([`Elector::try_acquire_or_renew`]) is upstream's `tryAcquireOrRenew`: the
//! lease is taken when absent, unheld, held by us, or not renewed for `leaseDuration` as
//! measured on our own clock since we last saw its record change (clocks of different hosts
//! are never compared); a taker bumps `leaseTransitions` and sets `acquireTime`, every
//! attempt sets `renewTime`. Writes carry the read's resourceVersion, so two candidates
//! cannot both win. The holder renews every `retryPeriod`; when no renewal succeeds for
//! `renewDeadline`, leadership is lost and the controllers stop. Start at [`run`].

use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use rand::Rng;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, Subresource};
use crate::csrsigning::Authority;

/// The lease's namespace and name (kube-controller-manager's is `kube-controller-manager`).
pub const LEASE_NAMESPACE: &str = "kube-system";
/// The lease's name.
pub const LEASE_NAME: &str = "paddock-controllers";

/// The durations of an election (kube-controller-manager's defaults: `--leader-elect-lease-duration`
/// 15 s, `--leader-elect-renew-deadline` 10 s, `--leader-elect-retry-period` 2 s).
#[derive(Debug, Clone)]
pub struct Config {
    /// Who we are in `holderIdentity`.
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How long the holder keeps trying to renew before giving up.
    pub renew_deadline: Duration,
    /// The wait between attempts.
    pub retry_period: Duration,
}

impl Config {
    /// kube-controller-manager's durations with `identity`.
    pub fn new(identity: String) -> Config {
        Config {
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// client-go's identity for a controller manager: `<hostname>_<uuid>`.
pub fn identity() -> String {
    format!("{}_{}", crate::events::hostname(), uuid::Uuid::new_v4())
}

/// `wait.JitterFactor` of client-go's acquire loop.
const JITTER: f64 = 1.2;

fn leases() -> &'static ResourceInfo {
    crate::resource("coordination.k8s.io", "leases")
}

/// One candidate's view of the lease (client-go's `LeaderElector`).
pub(crate) struct Elector {
    cluster: ClusterRef,
    config: Config,
    /// The lease as last read or written (its resourceVersion is the next write's
    /// precondition).
    lease: Option<Arc<Value>>,
    /// The lease's spec as last observed, and when (our clock) it last changed.
    observed: Option<(Value, Instant)>,
}

impl Elector {
    pub(crate) fn new(cluster: ClusterRef, config: Config) -> Elector {
        Elector {
            cluster,
            config,
            lease: None,
            observed: None,
        }
    }

    fn holder(spec: &Value) -> &str {
        spec["holderIdentity"].as_str().unwrap_or("")
    }

    /// Whether the last observed record names us.
    pub(crate) fn is_leader(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|(spec, _)| Self::holder(spec) == self.config.identity)
    }

    fn lease_valid(&self, now: Instant) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|(_, at)| *at + self.config.lease_duration > now)
    }

    fn observe(&mut self, spec: Value, now: Instant) {
        if self.observed.as_ref().map(|(s, _)| s) != Some(&spec) {
            self.observed = Some((spec, now));
        }
    }

    /// The record we write (upstream `LeaderElectionRecordToLeaseSpec`).
    fn record(&self, acquire_time: Value, transitions: i64) -> Value {
        let now = api::time::rfc3339_micro(api::time::now());
        json!({
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": self.config.lease_duration.as_secs(),
            "acquireTime": if acquire_time.is_null() { json!(now) } else { acquire_time },
            "renewTime": now,
            "leaseTransitions": transitions,
        })
    }

    /// Writes `spec` over the lease last read; whether it was stored.
    async fn write(&mut self, spec: Value) -> bool {
        let Some(lease) = &self.lease else {
            return false;
        };
        let mut new = Value::clone(lease);
        new["spec"] = spec.clone();
        let result = self
            .cluster
            .update(
                leases(),
                LEASE_NAMESPACE,
                LEASE_NAME,
                new,
                Subresource::Main,
            )
            .await;
        self.wrote(result, spec)
    }

    /// Records the outcome of writing `spec`; whether it was stored.
    fn wrote(&mut self, result: Result<Arc<Value>, api::status::ApiError>, spec: Value) -> bool {
        match result {
            Ok(stored) => {
                self.lease = Some(stored);
                // Our own write is observed now (upstream `setObservedRecord`).
                self.observed = Some((spec, Instant::now()));
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "failed to write the leader lease");
                false
            }
        }
    }

    /// Upstream `tryAcquireOrRenew`: whether we hold the lease after this attempt.
    pub(crate) async fn try_acquire_or_renew(&mut self) -> bool {
        let now = Instant::now();
        // 1. The holder's fast path: renew over the lease it last wrote.
        if self.is_leader() && self.lease_valid(now) {
            let (acquire, transitions) = self.observed_times();
            let spec = self.record(acquire, transitions);
            if self.write(spec).await {
                return true;
            }
        }
        // 2. Read (or create) the lease.
        let lease = match self
            .cluster
            .get(leases(), LEASE_NAMESPACE, LEASE_NAME)
            .await
        {
            Ok(lease) => lease,
            Err(e) if e.code == 404 => {
                let spec = self.record(Value::Null, 0);
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": LEASE_NAME, "namespace": LEASE_NAMESPACE},
                    "spec": spec,
                });
                let result = self.cluster.create(leases(), LEASE_NAMESPACE, lease).await;
                return self.wrote(result, spec);
            }
            Err(e) => {
                tracing::debug!(error = %e, "failed to read the leader lease");
                return false;
            }
        };
        let spec = lease["spec"].clone();
        self.lease = Some(lease);
        self.observe(spec.clone(), now);
        // 3. Held by someone else and not expired: wait.
        if !Self::holder(&spec).is_empty() && self.lease_valid(now) && !self.is_leader() {
            return false;
        }
        // 4. Take it (or renew from what is stored).
        let transitions = spec["leaseTransitions"].as_i64().unwrap_or(0);
        let record = if self.is_leader() {
            self.record(spec["acquireTime"].clone(), transitions)
        } else {
            self.record(Value::Null, transitions + 1)
        };
        self.write(record).await
    }

    fn observed_times(&self) -> (Value, i64) {
        self.observed.as_ref().map_or((Value::Null, 0), |(s, _)| {
            (
                s["acquireTime"].clone(),
                s["leaseTransitions"].as_i64().unwrap_or(0),
            )
        })
    }

    /// Upstream `acquire`: tries every `retryPeriod` (with jitter) until it holds the lease;
    /// false on shutdown.
    pub(crate) async fn acquire(&mut self, shutdown: &CancellationToken) -> bool {
        loop {
            if self.try_acquire_or_renew().await {
                tracing::info!(identity = %self.config.identity, "acquired the controllers' lease");
                return true;
            }
            let factor = 1.0 + rand::rng().random::<f64>() * JITTER;
            let wait = self.config.retry_period.mul_f64(factor);
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Upstream `renew`: renews every `retryPeriod` until no attempt succeeds within
    /// `renewDeadline` (leadership lost) or `shutdown`.
    pub(crate) async fn renew(&mut self, shutdown: &CancellationToken) {
        let mut last = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
            if self.try_acquire_or_renew().await {
                last = Instant::now();
            } else if last.elapsed() >= self.config.renew_deadline || !self.is_leader() {
                tracing::warn!(identity = %self.config.identity, "lost the controllers' lease");
                return;
            }
        }
    }

    /// Upstream `release` (on shutdown): hands the lease back so the next candidate takes
    /// it at once instead of waiting for it to expire.
    pub(crate) async fn release(&mut self) {
        if !self.is_leader() {
            return;
        }
        let now = api::time::rfc3339_micro(api::time::now());
        let (_, transitions) = self.observed_times();
        let spec = json!({
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": transitions,
        });
        self.write(spec).await;
    }
}

/// Runs every controller while this process holds the lease: acquire, run, and on losing
/// it stop them all and compete again; on `shutdown` stop them and release the lease.
pub async fn run(
    cluster: ClusterRef,
    ca: Arc<dyn Authority>,
    config: Config,
    options: crate::Options,
    shutdown: CancellationToken,
) {
    let mut elector = Elector::new(cluster.clone(), config);
    while elector.acquire(&shutdown).await {
        // The controllers run inside this task: if it is dropped, they stop with it.
        let term = shutdown.child_token();
        let controllers = crate::run(cluster.clone(), ca.clone(), options.clone(), term.clone());
        tokio::pin!(controllers);
        let ended = tokio::select! {
            _ = elector.renew(&shutdown) => false,
            _ = &mut controllers => true,
        };
        term.cancel();
        if !ended {
            controllers.await;
        }
        if shutdown.is_cancelled() {
            elector.release().await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use serde_json::json;

    use super::*;
    use crate::testutil::*;

    fn lease(registry: &apiserver::Registry) -> Value {
        get(registry, "leases", LEASE_NAMESPACE, LEASE_NAME)
            .map_or(Value::Null, |l| l["spec"].clone())
    }

    fn holder(registry: &apiserver::Registry) -> String {
        lease(registry)["holderIdentity"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn active_pods(registry: &apiserver::Registry) -> usize {
        list(registry, "pods", "default")
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .count()
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_holder_reconciles_and_another_takes_over() {
        let registry = registry_with_namespace("default").await;
        create_namespace(&registry, LEASE_NAMESPACE).await;
        let a = Arc::new(TestPort::new(&registry));
        let b = Arc::new(TestPort::new(&registry));
        let stop = CancellationToken::new();
        tokio::spawn(run(
            a.clone(),
            authority(&ca()),
            Config::new("a".into()),
            crate::Options::default(),
            stop.clone(),
        ));
        eventually("a leads", || holder(&registry) == "a").await;
        tokio::spawn(run(
            b.clone(),
            authority(&ca()),
            Config::new("b".into()),
            crate::Options::default(),
            stop.clone(),
        ));
        let l = lease(&registry);
        assert_eq!(l["leaseDurationSeconds"], 15);
        assert_eq!(l["leaseTransitions"], 0);
        assert!(
            l["acquireTime"].as_str().unwrap().contains('.'),
            "MicroTime: {l}"
        );
        let a_acquired = l["acquireTime"].clone();

        create(
            &registry,
            "replicasets",
            "default",
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
                   "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": {"app": "web"}},
                                         "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        )
        .await;
        eventually("2 pods", || active_pods(&registry) == 2).await;
        // A minute of renewals: a keeps the lease, b never reconciles.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(holder(&registry), "a");
        assert_eq!(a.pod_creates.load(Ordering::SeqCst), 2);
        assert_eq!(b.pod_creates.load(Ordering::SeqCst), 0);

        // a is cut off from the cluster: its renewals fail, it stops its controllers after
        // the renew deadline, and b takes the lease once it has not changed for a lease
        // duration as b observed it (client-go's `observedTime`). b notices a's last renewal
        // at its next jittered retry, and notices the expiry at the retry after: a lease
        // duration plus up to two jittered retries, and one period of slack.
        a.partitioned.store(true, Ordering::SeqCst);
        let cut = Instant::now();
        eventually("b leads", || holder(&registry) == "b").await;
        let took = cut.elapsed();
        assert!(
            took <= Duration::from_secs(15)
                + Duration::from_secs(2).mul_f64(1.0 + JITTER) * 2
                + Duration::from_secs(2),
            "{took:?}"
        );
        let l = lease(&registry);
        assert_eq!(l["leaseTransitions"], 1);
        assert_ne!(l["acquireTime"], a_acquired, "b sets its own acquireTime");

        // a is back, but b holds the lease: only b reconciles.
        a.partitioned.store(false, Ordering::SeqCst);
        scale_replicaset(&registry, "web", 3).await;
        eventually("3 pods", || active_pods(&registry) == 3).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(active_pods(&registry), 3);
        assert_eq!(a.pod_creates.load(Ordering::SeqCst), 2);
        assert_eq!(b.pod_creates.load(Ordering::SeqCst), 1);
        assert_eq!(holder(&registry), "b");

        // Shutting down releases the lease for the next candidate.
        stop.cancel();
        eventually("released", || holder(&registry).is_empty()).await;
        assert_eq!(lease(&registry)["leaseDurationSeconds"], 1);
    }
}
