//! The pod garbage collector (upstream `pkg/controller/podgc`), every 20 s over all pods and
//! nodes:
//! - pods bound to a node that no longer exists — missing for the 40 s quarantine and then
//!   confirmed by a read — are marked `Failed` with the `DisruptionTarget` condition (reason
//!   `DeletionByPodGC`, "PodGC: node no longer exists") and force-deleted: what lets a
//!   StatefulSet recreate a pod of a dead node once the node is deleted;
//! - terminating pods on a node that is not Ready and carries the
//!   `node.kubernetes.io/out-of-service` taint are force-deleted (non-graceful node
//!   shutdown);
//! - terminating pods that were never scheduled are force-deleted;
//! - past `--terminated-pod-gc-threshold` (12500) finished pods, the oldest are deleted
//!   (evicted ones first).
//!
//! "Force-deleted" is upstream's `markFailedAndDeletePod`: the status goes to `Failed`
//! first (a pod nobody runs would stay `Running` forever), then a delete with grace 0.

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::meta;

/// `gcCheckPeriod`.
pub const CHECK_PERIOD: Duration = Duration::from_secs(20);
/// `quarantineTime`: how long a node must be missing before its pods are orphans.
pub const QUARANTINE: Duration = Duration::from_secs(40);
/// `--terminated-pod-gc-threshold`'s default.
pub const TERMINATED_THRESHOLD: usize = 12500;
/// `v1.TaintNodeOutOfService`.
const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

/// The collector's settings.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// How often it looks.
    pub period: Duration,
    /// How long a node must be missing.
    pub quarantine: Duration,
    /// Finished pods kept at most (0: none deleted for that reason).
    pub terminated_threshold: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            period: CHECK_PERIOD,
            quarantine: QUARANTINE,
            terminated_threshold: TERMINATED_THRESHOLD,
        }
    }
}

/// Runs the collector until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    run_with(cluster, Config::default(), shutdown).await;
}

/// [`run`] with given settings.
pub async fn run_with(cluster: ClusterRef, config: Config, shutdown: CancellationToken) {
    let mut gc = Collector {
        cluster,
        config,
        missing_since: HashMap::new(),
    };
    let mut tick = tokio::time::interval(config.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        gc.gc().await;
    }
}

struct Collector {
    cluster: ClusterRef,
    config: Config,
    /// Nodes that pods are bound to but that were not listed, since when (the quarantine).
    missing_since: HashMap<String, Instant>,
}

fn pods() -> &'static api::registry::ResourceInfo {
    crate::resource("", "pods")
}

fn nodes() -> &'static api::registry::ResourceInfo {
    crate::resource("", "nodes")
}

fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or("")
}

fn node_name(p: &Value) -> &str {
    p["spec"]["nodeName"].as_str().unwrap_or("")
}

fn terminating(p: &Value) -> bool {
    !p["metadata"]["deletionTimestamp"].is_null()
}

/// `nodeutil.IsNodeReady`.
fn node_ready(n: &Value) -> bool {
    n["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn out_of_service(n: &Value) -> bool {
    n["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["key"] == OUT_OF_SERVICE)
}

/// `eviction.PodIsEvicted`.
fn evicted(p: &Value) -> bool {
    phase(p) == "Failed" && p["status"]["reason"] == "Evicted"
}

impl Collector {
    async fn gc(&mut self) {
        let (pod_list, node_list) = match tokio::try_join!(
            self.cluster.list(pods(), None),
            self.cluster.list(nodes(), None)
        ) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e.message, "pod GC: cannot list pods and nodes");
                return;
            }
        };
        let nodes: HashMap<&str, &Value> = node_list
            .items
            .iter()
            .map(|n| (meta::str(n, "name"), n.as_ref()))
            .collect();
        if self.config.terminated_threshold > 0 {
            self.gc_terminated(&pod_list.items).await;
        }
        // gcTerminating: out-of-service nodes.
        let mut out_of_service_pods: Vec<&Arc<Value>> = pod_list
            .items
            .iter()
            .filter(|p| terminating(p))
            .filter(|p| {
                nodes
                    .get(node_name(p))
                    .is_some_and(|n| !node_ready(n) && out_of_service(n))
            })
            .collect();
        sort_for_deletion(&mut out_of_service_pods);
        for p in out_of_service_pods {
            self.mark_failed_and_delete(p, None).await;
        }
        self.gc_orphaned(&pod_list.items, &nodes).await;
        // gcUnscheduledTerminating.
        for p in &pod_list.items {
            if terminating(p) && node_name(p).is_empty() {
                self.mark_failed_and_delete(p, None).await;
            }
        }
    }

    async fn gc_terminated(&self, all: &[Arc<Value>]) {
        let mut done: Vec<&Arc<Value>> = all
            .iter()
            .filter(|p| !matches!(phase(p), "Pending" | "Running" | "Unknown"))
            .collect();
        let excess = done.len().saturating_sub(self.config.terminated_threshold);
        if excess == 0 {
            return;
        }
        tracing::info!(
            pods = excess,
            "pod GC: deleting finished pods past the threshold"
        );
        sort_for_deletion(&mut done);
        for p in done.into_iter().take(excess) {
            self.mark_failed_and_delete(p, None).await;
        }
    }

    async fn gc_orphaned(&mut self, all: &[Arc<Value>], listed: &HashMap<&str, &Value>) {
        let now = Instant::now();
        let missing: HashSet<&str> = all
            .iter()
            .map(|p| node_name(p))
            .filter(|n| !n.is_empty() && !listed.contains_key(n))
            .collect();
        self.missing_since
            .retain(|n, _| missing.contains(n.as_str()));
        let mut gone = HashSet::new();
        for n in missing {
            let since = *self.missing_since.entry(n.to_string()).or_insert(now);
            if now.duration_since(since) < self.config.quarantine {
                continue;
            }
            // Out of quarantine: confirmed by a read, as upstream's `checkIfNodeExists`.
            match self.cluster.get(nodes(), "", n).await {
                Err(e) if e.code == 404 => {
                    gone.insert(n.to_string());
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(node = n, error = %e.message, "pod GC: cannot read node"),
            }
        }
        for p in all.iter().filter(|p| gone.contains(node_name(p))) {
            tracing::info!(
                pod = %format!("{}/{}", meta::str(p, "namespace"), meta::str(p, "name")),
                node = node_name(p),
                "pod GC: deleting a pod of a node that no longer exists"
            );
            let cond = json!({
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByPodGC",
                "message": "PodGC: node no longer exists",
            });
            self.mark_failed_and_delete(p, Some(cond)).await;
        }
    }

    /// `markFailedAndDeletePodWithCondition`.
    async fn mark_failed_and_delete(&self, p: &Value, condition: Option<Value>) {
        let (ns, name, uid) = (
            meta::str(p, "namespace"),
            meta::str(p, "name"),
            meta::uid(p),
        );
        if !matches!(phase(p), "Succeeded" | "Failed") {
            let now = meta::now_rfc3339();
            let marked = crate::edit_at(
                &self.cluster,
                pods(),
                (ns, name, uid),
                Subresource::Status,
                |o| {
                    if matches!(phase(o), "Succeeded" | "Failed") {
                        return false;
                    }
                    o["status"]["phase"] = json!("Failed");
                    if let Some(c) = &condition {
                        set_condition(o, c, &now);
                    }
                    true
                },
            )
            .await;
            match marked {
                Ok(Some(_)) => {}
                // Gone or replaced: nothing to delete.
                Ok(None) => return,
                Err(e) if e.code == 404 => return,
                Err(e) => {
                    tracing::warn!(pod = %format!("{ns}/{name}"), error = %e.message, "pod GC: cannot mark pod failed");
                    return;
                }
            }
        }
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            preconditions_uid: Some(uid.to_string()),
            ..DeleteOptions::default()
        };
        match self.cluster.delete(pods(), ns, name, &opts).await {
            Ok(_) => tracing::info!(pod = %format!("{ns}/{name}"), "pod GC: force-deleted pod"),
            Err(e) if e.code == 404 || e.code == 409 => {}
            Err(e) => {
                tracing::warn!(pod = %format!("{ns}/{name}"), error = %e.message, "pod GC: cannot delete pod");
            }
        }
    }
}

/// `apipod.UpdatePodCondition`: replaces the condition of that type (the transition time
/// kept when the status does not change), or appends it.
fn set_condition(pod: &mut Value, c: &Value, now: &str) {
    let mut c = c.clone();
    c["lastTransitionTime"] = json!(now);
    let list = &mut pod["status"]["conditions"];
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(items) = list.as_array_mut() else {
        return;
    };
    match items.iter_mut().find(|x| x["type"] == c["type"]) {
        Some(old) => {
            if old["status"] == c["status"] {
                c["lastTransitionTime"] = old["lastTransitionTime"].clone();
            }
            *old = c;
        }
        None => items.push(c),
    }
}

/// `byEvictionAndCreationTimestamp`: evicted first, then oldest, then by name.
fn sort_for_deletion(pods: &mut [&Arc<Value>]) {
    pods.sort_by(|a, b| {
        evicted(b)
            .cmp(&evicted(a))
            .then_with(|| {
                let t = |p: &Value| {
                    p["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                };
                t(a).cmp(&t(b))
            })
            .then_with(|| meta::str(a, "name").cmp(meta::str(b, "name")))
    });
}
