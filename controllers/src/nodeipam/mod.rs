//! Node IPAM: kube-controller-manager's range allocator (upstream
//! `pkg/controller/nodeipam/ipam/range_allocator.go`). Every Node without `spec.podCIDRs`
//! gets the next free node-sized subnet of the cluster CIDR (`--cluster-cidr`,
//! `--node-cidr-mask-size`) in `spec.podCIDR` and `spec.podCIDRs`; a Node that has them
//! already (registered with one, or allocated before a restart) has them marked as used; a
//! deleted Node's are released. When the range is exhausted the Node gets the Warning event
//! `CIDRNotAvailable` and is retried with back-off. The subnets are tracked by
//! [`cidrset::CidrSet`]; the service CIDR is kept out of the range as upstream does.
//!
//! Start at [`Controller::sync`]; the existing allocations are read by [`run`] before any
//! node is handled (upstream passes the node list to the allocator's constructor).

pub mod cidrset;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, Subresource};
use crate::events::{self, Recorder, Style};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Cache, Change, Delta};
use crate::{Error, typed};
use cidrset::{Cidr, CidrSet};

/// Upstream `cidrUpdateWorkers`.
const WORKERS: usize = 30;
/// Upstream `cidrUpdateRetries`.
const UPDATE_RETRIES: usize = 3;
/// The API server's service CIDR (`apiserver::alloc`), kept out of the pod range.
const SERVICE_CIDR: &str = "10.96.0.0/16";

/// The allocator's settings (kube-controller-manager's flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// `--cluster-cidr`.
    pub cluster_cidr: Cidr,
    /// `--node-cidr-mask-size`.
    pub node_cidr_mask_size: u8,
}

impl Config {
    /// The checked settings: the mask must fit the cluster CIDR (at most 2^16 subnets).
    pub fn new(cluster_cidr: Cidr, node_cidr_mask_size: u8) -> Result<Config, String> {
        CidrSet::new(cluster_cidr, node_cidr_mask_size).map_err(|e| {
            format!(
                "--node-cidr-mask-size {node_cidr_mask_size} does not fit --cluster-cidr {cluster_cidr}: {e}"
            )
        })?;
        Ok(Config {
            cluster_cidr,
            node_cidr_mask_size,
        })
    }
}

impl Default for Config {
    /// 10.244.0.0/16 in /24s (flannel's and the README's network).
    fn default() -> Config {
        Config {
            cluster_cidr: Cidr {
                addr: std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 244, 0, 0)),
                prefix: 16,
            },
            node_cidr_mask_size: 24,
        }
    }
}

/// Runs the allocator until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, config: Config, shutdown: CancellationToken) {
    let set = match CidrSet::new(config.cluster_cidr, config.node_cidr_mask_size) {
        Ok(set) => set,
        Err(e) => {
            tracing::error!(error = %e, "node IPAM disabled");
            return;
        }
    };
    let controller = Arc::new(Controller {
        recorder: Recorder::new(cluster.clone(), "cidrAllocator", Style::Legacy),
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        nodes: Cache::default(),
        set: Mutex::new(set),
    });
    controller.filter_out_service_range();
    // The allocations that exist, before any node is handled.
    let mut backoff = Duration::from_millis(100);
    loop {
        match typed::list::<Node>(&cluster, None).await {
            Ok(nodes) => {
                for n in &nodes {
                    if let Err(e) = controller.occupy(n) {
                        tracing::error!(node = %typed::name(&n.metadata), error = %e, "cannot mark the node's CIDRs as used");
                    }
                }
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing nodes for the CIDR allocator failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    crate::queue::drive(
        &cluster,
        controller,
        &[typed::info::<Node>()],
        WORKERS,
        &shutdown,
    )
    .await;
}

/// The allocator's shared state.
pub(crate) struct Controller {
    cluster: ClusterRef,
    recorder: Recorder,
    queue: WorkQueue<String>,
    nodes: Cache<Node>,
    set: Mutex<CidrSet>,
}

fn pod_cidrs(node: &Node) -> Vec<String> {
    node.spec
        .as_ref()
        .and_then(|s| s.pod_cidrs.clone())
        .unwrap_or_default()
}

impl Reconciler for Controller {
    type Key = String;

    fn queue(&self) -> &WorkQueue<String> {
        &self.queue
    }

    async fn reconcile(self: Arc<Self>, key: String) -> Result<Option<Duration>, Error> {
        self.sync(&key).await.map(|()| None)
    }

    fn observe(&self, change: Change) {
        self.nodes.apply(&change);
        match &change.delta {
            Delta::Upsert(obj) => {
                self.queue.add(
                    typed::metadata(obj)
                        .unwrap_or_default()
                        .name
                        .unwrap_or_default(),
                );
            }
            Delta::Delete(obj) => {
                if let Ok(node) = typed::decode::<Node>(obj)
                    && let Err(e) = self.release(&node)
                {
                    tracing::error!(error = %e, "error while processing CIDR Release");
                }
            }
            Delta::Synced => {}
        }
    }
}

impl Controller {
    /// Upstream `filterOutServiceRange`.
    fn filter_out_service_range(&self) {
        let Ok(service) = SERVICE_CIDR.parse::<Cidr>() else {
            return;
        };
        // Only when the ranges overlap (an error from occupy means they do not).
        let _ = self.set.lock().occupy(service);
    }

    /// Upstream `occupyCIDRs`.
    fn occupy(&self, node: &Node) -> Result<(), Error> {
        let mut set = self.set.lock();
        for (idx, cidr) in pod_cidrs(node).iter().enumerate() {
            let name = typed::name(&node.metadata);
            let parsed: Cidr = cidr.parse().map_err(|_| {
                Error::Allocation(format!("failed to parse node {name}, CIDR {cidr}"))
            })?;
            if idx > 0 {
                return Err(Error::Allocation(format!(
                    "node:{name} has an allocated cidr: {cidr} at index:{idx} that does not exist in cluster cidrs configuration"
                )));
            }
            set.occupy(parsed).map_err(|e| {
                Error::Allocation(format!(
                    "failed to mark cidr[{parsed}] at idx [{idx}] as occupied for node: {name}: {e}"
                ))
            })?;
        }
        Ok(())
    }

    /// Upstream `ReleaseCIDR`.
    fn release(&self, node: &Node) -> Result<(), Error> {
        let mut set = self.set.lock();
        let name = typed::name(&node.metadata);
        for (idx, cidr) in pod_cidrs(node).iter().enumerate() {
            let parsed: Cidr = cidr.parse().map_err(|e: String| {
                Error::Allocation(format!("failed to parse CIDR {cidr} on Node {name}: {e}"))
            })?;
            if idx > 0 {
                return Err(Error::Allocation(format!(
                    "node:{name} has an allocated cidr: {cidr} at index:{idx} that does not exist in cluster cidrs configuration"
                )));
            }
            tracing::debug!(node = %name, %cidr, "Release CIDR for node");
            set.release(parsed)
                .map_err(|e| Error::Allocation(format!("error when releasing CIDR {cidr}: {e}")))?;
        }
        Ok(())
    }

    async fn record(&self, node: &Node, reason: &str) {
        let name = typed::name(&node.metadata);
        let m = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_string()),
            uid: node.metadata.uid.clone(),
            ..Default::default()
        };
        self.recorder
            .event(
                typed::info::<Node>(),
                &m,
                events::WARNING,
                reason,
                "",
                &format!("Node {name} status is now: {reason}"),
            )
            .await;
    }

    /// Upstream `syncNode` / `AllocateOrOccupyCIDR`.
    pub(crate) async fn sync(&self, name: &str) -> Result<(), Error> {
        let Some(node) = self.nodes.get("", name) else {
            return Ok(());
        };
        if node.metadata.deletion_timestamp.is_some() {
            return self.release(&node);
        }
        if !pod_cidrs(&node).is_empty() {
            return self.occupy(&node);
        }
        let next = self.set.lock().allocate_next();
        let allocated = match next {
            Ok(c) => c,
            Err(e) => {
                self.record(&node, "CIDRNotAvailable").await;
                return Err(Error::Allocation(format!(
                    "failed to allocate cidr from cluster cidr at idx:0: {e}"
                )));
            }
        };
        self.update_allocation(&node, allocated).await
    }

    /// Upstream `updateCIDRsAllocation`.
    async fn update_allocation(&self, node: &Node, allocated: Cidr) -> Result<(), Error> {
        let name = typed::name(&node.metadata).to_string();
        let cidr = allocated.to_string();
        let mut last = None;
        for _ in 0..UPDATE_RETRIES {
            let mut already: Option<Vec<String>> = None;
            let result = self
                .cluster
                .update_with(typed::info::<Node>(), "", &name, Subresource::Main, |o| {
                    let have: Vec<String> = o["spec"]["podCIDRs"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    if !have.is_empty() {
                        already = Some(have);
                        return Ok(false);
                    }
                    o["spec"]["podCIDR"] = json!(cidr);
                    o["spec"]["podCIDRs"] = json!([cidr]);
                    Ok(true)
                })
                .await;
            match result {
                Ok(_) => match already {
                    // Ours from an earlier attempt whose answer was lost: done.
                    Some(have) if have == [cidr.clone()] => return Ok(()),
                    Some(have) => {
                        tracing::error!(node = %name, podCIDRs = ?have, "Node already has a CIDR allocated. Releasing the new one");
                        let _ = self.set.lock().release(allocated);
                        return Ok(());
                    }
                    None => {
                        tracing::info!(node = %name, podCIDRs = %cidr, "Set node PodCIDR");
                        return Ok(());
                    }
                },
                Err(e) if e.code == 404 => {
                    let _ = self.set.lock().release(allocated);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        tracing::error!(node = %name, podCIDRs = %cidr, "Failed to update node PodCIDR after multiple attempts");
        self.record(node, "CIDRAssignmentFailed").await;
        let _ = self.set.lock().release(allocated);
        Err(last.map_or_else(
            || Error::Allocation(format!("failed to update node {name} PodCIDR")),
            Error::from,
        ))
    }
}
