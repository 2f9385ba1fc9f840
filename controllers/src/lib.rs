//! Controllers that run inside the server, shaped like kube-runtime's: a `reflector` lists a
//! resource through the [`cluster`] port and then watches it from that resourceVersion
//! (relisting, with back-off, when the watch ends or a list fails), feeding a deduplicating,
//! rate-limited `queue` of object keys; workers reconcile one key at a time, idempotently,
//! from the current state, and requeue with back-off on failure.
//!
//! The controllers reach the cluster only through [`cluster::Cluster`] (get, list, watch,
//! create, update with preconditions, the status/finalize subresources, delete, bind): the
//! API server implements it in process for its registry; the binary has a kube-rs one (for
//! controllers out of process; so far only its test runs controllers through it).
//! This crate depends on neither the API server nor the store, so no controller can write
//! around the registry's rules. Certificates are signed through a [`csrsigning::Authority`]
//! the binary provides (the cluster CA). [`start`] runs them only while this process holds
//! the controllers' Lease ([`leader`]), so servers sharing a store never run them twice.
//!
//! Objects arrive as JSON, as on the wire. A controller decodes them into k8s-openapi types
//! once, where it reads (`typed`: a typed get, a typed watched change), and writes by editing
//! the stored JSON so that fields unknown to k8s-openapi survive; an object a controller
//! creates (a pod, a ReplicaSet, an Endpoints) is built typed and serialised once. Every
//! controller reads typed objects ([`gc`] and the content of a terminating [`namespace`] as
//! their metadata only).
//!
//! Start at [`start`] / [`run`], which run every controller; then [`gc`] (the garbage collector:
//! ownerReferences, foreground and orphan deletion), [`namespace`] (namespace termination) and
//! [`scheduler`] (binds pending pods to nodes), [`replicaset`], [`deployment`], [`endpoints`] and
//! [`endpointslice`] (which pods back a Service), [`tokencleaner`] (deletes expired bootstrap
//! tokens), and [`csrsigning`] (signs approved
//! certificate requests of the kubelet signers with the cluster CA), [`csrcleaner`] (deletes
//! old and expired certificate requests), [`nodelifecycle`] (node
//! heartbeats, Unknown conditions, not-ready/unreachable taints) and [`tainteviction`] (deletes
//! pods from nodes with NoExecute taints they do not tolerate, or no longer), [`podgc`]
//! (force-deletes pods of deleted or out-of-service nodes, bounds finished pods) and [`nodeipam`]
//! (each node's pod CIDR), [`job`] (Jobs, and the TTL-after-finished controller),
//! [`cronjob`], [`statefulset`] (ordinal pods, ControllerRevisions: `history`),
//! [`daemonset`] (one pod per eligible node), [`disruption`] (PodDisruptionBudget status),
//! [`serviceaccount`] (default accounts,
//! `kube-root-ca.crt`, legacy token Secrets) and [`volume`] (the PersistentVolume binder, the
//! local-path provisioner, PVC/PV protection and generic ephemeral volumes). Events are
//! written through `events`.

// The cluster's read-modify-write callbacks return `Result<bool, ApiError>` by its API.
#![allow(clippy::result_large_err)]

mod claim;
pub mod clusterroleaggregation;
pub mod cronjob;
pub mod csrapproving;
pub mod csrcleaner;
pub mod csrsigning;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
mod events;
pub mod gc;
mod history;
pub mod hpa;
pub mod job;
pub mod leader;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
mod pod;
pub mod podgc;
mod queue;
mod reflector;
pub mod replicaset;
pub mod scheduler;
pub mod serviceaccount;
pub mod statefulset;
pub mod tainteviction;
#[cfg(test)]
mod testutil;
pub mod tokencleaner;
mod typed;
pub mod volume;

use std::sync::Arc;

pub mod cluster;

pub use cluster::ClusterRef;
use cluster::Subresource;
use csrsigning::Authority;

/// The shutdown signal [`run`] and each controller take (re-exported from `tokio-util`).
pub use tokio_util::sync::CancellationToken;

/// Why a reconcile attempt failed; the key is retried with exponential back-off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call through the cluster failed.
    #[error(transparent)]
    Api(Box<api::status::ApiError>),
    /// An owner reference names a kind paddock does not serve.
    #[error("unable to resolve owner reference kind {kind} in {api_version}")]
    UnknownKind {
        /// `apiVersion` of the reference.
        api_version: String,
        /// `kind` of the reference.
        kind: String,
    },
    /// Namespace content remains that nothing is going to remove (no finalizer, no grace
    /// period): upstream's "unexpected items still remain" error.
    #[error("{0}")]
    ContentRemains(String),
    /// The CA could not sign an approved request.
    #[error("{0}")]
    Signing(String),
    /// A node's pod CIDRs could not be allocated, marked or released.
    #[error("{0}")]
    Allocation(String),
    /// An object read through the port is not a valid `kind`.
    #[error("unable to decode {kind}: {message}")]
    Decode {
        /// The kind expected.
        kind: &'static str,
        /// What did not fit.
        message: String,
    },
}

impl From<api::status::ApiError> for Error {
    fn from(e: api::status::ApiError) -> Error {
        Error::Api(Box::new(e))
    }
}

/// The controllers running in the background, from [`start`].
#[derive(Debug)]
pub struct Controllers {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Controllers {
    /// Stops every controller and waits until they have stopped.
    pub async fn stop(self) {
        self.shutdown.cancel();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "controllers ended abnormally");
        }
    }
}

/// Settings of the controllers that have any (kube-controller-manager's flags);
/// [`Default`] is upstream's defaults.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The node lifecycle controller's periods and rates.
    pub node_lifecycle: nodelifecycle::Config,
    /// Node IPAM's cluster CIDR (`None`: pod CIDRs are not allocated).
    pub node_ipam: Option<nodeipam::Config>,
    /// The service account controllers' CA and token signer (`None`: they do not run).
    pub service_accounts: Option<serviceaccount::Config>,
    /// The HorizontalPodAutoscaler controller's metrics and periods (`None`: it does not run).
    pub hpa: Option<hpa::Config>,
    /// `--horizontal-pod-autoscaler-sync-period` for the controller the composition root
    /// builds (`None`: 15 s).
    pub hpa_sync_period: std::time::Duration,
    /// The CSR approver's access reviews (`None`: it does not run).
    pub csr_approval: Option<csrapproving::Config>,
    /// `--cluster-signing-duration`: the lifetime of the certificates the CSR signer issues
    /// (`None`: upstream's 1 year, [`csrsigning::DEFAULT_DURATION`]).
    pub cluster_signing_duration: Option<std::time::Duration>,
}

/// Starts the controllers on the current tokio runtime under leader election ([`leader`]):
/// they run while this process holds the `kube-system/paddock-controllers` Lease as
/// `identity`; `ca` signs approved certificate requests.
pub fn start(
    cluster: ClusterRef,
    ca: Arc<dyn Authority>,
    identity: String,
    options: Options,
) -> Controllers {
    let shutdown = CancellationToken::new();
    let config = leader::Config::new(identity);
    let task = tokio::spawn(leader::run(cluster, ca, config, options, shutdown.clone()));
    Controllers { shutdown, task }
}

/// Runs every in-process controller until `shutdown` is cancelled.
pub async fn run(
    cluster: ClusterRef,
    ca: Arc<dyn Authority>,
    options: Options,
    shutdown: CancellationToken,
) {
    let service_accounts = options.service_accounts.clone();
    let hpa_config = options.hpa.clone();
    tokio::join!(
        {
            let (cluster, shutdown) = (cluster.clone(), shutdown.clone());
            async move {
                if let Some(config) = hpa_config {
                    hpa::run(cluster, config, shutdown).await;
                }
            }
        },
        nodelifecycle::run(cluster.clone(), options.node_lifecycle, shutdown.clone()),
        tainteviction::run(cluster.clone(), shutdown.clone()),
        podgc::run(cluster.clone(), shutdown.clone()),
        {
            let (cluster, shutdown) = (cluster.clone(), shutdown.clone());
            async move {
                if let Some(config) = options.node_ipam {
                    nodeipam::run(cluster, config, shutdown).await;
                }
            }
        },
        {
            let (cluster, shutdown) = (cluster.clone(), shutdown.clone());
            async move {
                if let Some(config) = service_accounts {
                    serviceaccount::run(cluster, config, shutdown).await;
                }
            }
        },
        csrsigning::run(
            cluster.clone(),
            ca,
            options
                .cluster_signing_duration
                .unwrap_or(csrsigning::DEFAULT_DURATION),
            shutdown.clone(),
        ),
        {
            let (cluster, shutdown) = (cluster.clone(), shutdown.clone());
            let reviewer = options.csr_approval.clone();
            async move {
                if let Some(reviewer) = reviewer {
                    csrapproving::run(cluster, reviewer.0, shutdown).await;
                }
            }
        },
        clusterroleaggregation::run(cluster.clone(), shutdown.clone()),
        tokencleaner::run(cluster.clone(), shutdown.clone()),
        csrcleaner::run(cluster.clone(), shutdown.clone()),
        gc::run(cluster.clone(), shutdown.clone()),
        namespace::run(cluster.clone(), shutdown.clone()),
        scheduler::run(cluster.clone(), shutdown.clone()),
        replicaset::run(cluster.clone(), shutdown.clone()),
        replicaset::run_replication(cluster.clone(), shutdown.clone()),
        deployment::run(cluster.clone(), shutdown.clone()),
        statefulset::run(cluster.clone(), shutdown.clone()),
        daemonset::run(cluster.clone(), shutdown.clone()),
        disruption::run(cluster.clone(), shutdown.clone()),
        job::run(cluster.clone(), shutdown.clone()),
        job::ttl::run(cluster.clone(), shutdown.clone()),
        cronjob::run(cluster.clone(), shutdown.clone()),
        endpoints::run(cluster.clone(), shutdown.clone()),
        volume::run(cluster.clone(), shutdown.clone()),
        endpointslice::run(cluster, shutdown),
    );
}

/// A served resource of the built-in table.
pub(crate) fn resource(group: &str, plural: &str) -> &'static api::registry::ResourceInfo {
    api::registry::resources()
        .iter()
        .find(|i| i.group == group && i.plural == plural)
        .expect("the resource table serves the built-in kinds")
}

/// Read-modify-write of the object `(namespace, name, uid)` (its main resource, or a
/// subresource) as long as the stored object still has that uid; `f` returns whether it
/// changed anything. `Ok(None)` when the object is gone or was replaced.
pub(crate) async fn edit_at(
    cluster: &ClusterRef,
    info: &api::registry::ResourceInfo,
    (namespace, name, uid): (&str, &str, &str),
    subresource: Subresource,
    mut f: impl FnMut(&mut serde_json::Value) -> bool + Send,
) -> Result<Option<std::sync::Arc<serde_json::Value>>, api::status::ApiError> {
    let mut same = true;
    let result = cluster
        .update_with(info, namespace, name, subresource, |o| {
            same = meta::uid(o) == uid;
            Ok(same && f(o))
        })
        .await;
    match result {
        Ok(o) if same => Ok(Some(o)),
        Ok(_) => Ok(None),
        Err(e) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Small accessors over JSON objects shared by the controllers.
pub(crate) mod meta {
    use serde_json::Value;

    /// `metadata.<field>` as a string, `""` when absent.
    pub(crate) fn str<'a>(obj: &'a Value, field: &str) -> &'a str {
        obj["metadata"][field].as_str().unwrap_or("")
    }

    /// `metadata.uid`.
    pub(crate) fn uid(obj: &Value) -> &str {
        str(obj, "uid")
    }

    /// Whether `metadata.deletionTimestamp` is set.
    pub(crate) fn deleting(obj: &Value) -> bool {
        !obj["metadata"]["deletionTimestamp"].is_null()
    }

    /// Removes `finalizer` from `metadata.finalizers`; whether it was there.
    pub(crate) fn remove_finalizer(obj: &mut Value, finalizer: &str) -> bool {
        let Some(list) = obj["metadata"]["finalizers"].as_array_mut() else {
            return false;
        };
        let before = list.len();
        list.retain(|v| v.as_str() != Some(finalizer));
        before != list.len()
    }

    /// The owner reference with `controller: true` (upstream `GetControllerOf`).
    pub(crate) fn controller_ref(obj: &Value) -> Option<&Value> {
        obj["metadata"]["ownerReferences"]
            .as_array()?
            .iter()
            .find(|r| r["controller"].as_bool() == Some(true))
    }

    /// The current time as a Kubernetes RFC 3339 timestamp (seconds, UTC).
    pub(crate) fn now_rfc3339() -> String {
        api::time::rfc3339(api::time::now())
    }
}
