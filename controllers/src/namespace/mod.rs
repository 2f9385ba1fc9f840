//! The namespace controller (upstream `pkg/controller/namespace`, its deleter in
//! `deletion/namespaced_resources_deleter.go` and conditions in `status_condition_utils.go`).
//!
//! A namespace with a `deletionTimestamp` is moved to phase `Terminating`; then every object
//! of every namespaced, deletable resource in it is deleted (background propagation, so the
//! garbage collector adds no `orphan` finalizer), the `NamespaceDeletion*`,
//! `NamespaceContentRemaining` and `NamespaceFinalizersRemaining` conditions are updated, and
//! once nothing remains the `kubernetes` finalizer is removed from `spec.finalizers` through
//! the `finalize` subresource, which lets the cluster remove the namespace. While pods are
//! within their grace period, or objects carry finalizers, the namespace is looked at again
//! after half the estimate (upstream `estimate/2 + 1` seconds).
//!
//! Refusing creates in a terminating namespace and the deletion of `default`, `kube-system`
//! and `kube-public` are the cluster's job, not this controller's.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{ClusterRef, DeleteOptions, Propagation, Subresource};
use api::registry::ResourceInfo;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::queue::WorkQueue;
use crate::reflector;
use crate::{Error, meta, typed};

/// The finalizer token this controller owns in `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";

/// Upstream's default estimate for objects held by finalizers.
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;

/// How often every terminating namespace is looked at again (upstream
/// `--namespace-sync-period`).
const RESYNC: Duration = Duration::from_secs(5 * 60);

/// Concurrent namespace syncs.
const WORKERS: usize = 2;

/// The condition types the deleter maintains, in upstream order, with the reason and message
/// of their "ok" (False) variant.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

fn namespaces() -> &'static ResourceInfo {
    typed::info::<Namespace>()
}

/// Whether `ns` is being deleted.
fn deleting(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
}

/// Runs the namespace controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let controller = Arc::new(Controller {
        cluster: cluster.clone(),
        // Upstream `nsControllerRateLimiter`: 5 ms doubling up to 60 s.
        queue: WorkQueue::new(Duration::from_millis(5), Duration::from_secs(60)),
    });
    let (tx, mut rx) = mpsc::channel(256);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(reflector::reflect(
        cluster.clone(),
        namespaces(),
        tx,
        shutdown.clone(),
    ));
    let feeder = controller.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + RESYNC, RESYNC);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                change = rx.recv() => match change {
                    Some(change) => {
                        if let Some(ns) = typed::upserted::<Namespace>(&change)
                            && deleting(&ns)
                        {
                            feeder.queue.add(ns.metadata.name.unwrap_or_default());
                        }
                    }
                    None => return,
                },
                _ = resync.tick() => feeder.resync().await,
            }
        }
    });
    for _ in 0..WORKERS {
        let controller = controller.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            while let Some(name) = controller.queue.next(&shutdown).await {
                match controller.sync(&name).await {
                    Ok(None) => controller.queue.forget(&name),
                    Ok(Some(wait)) => {
                        tracing::debug!(namespace = %name, ?wait, "content remains in namespace");
                        controller.queue.add_after(name.clone(), wait);
                    }
                    Err(e) => {
                        tracing::warn!(namespace = %name, error = %e, "deletion of namespace failed");
                        controller.queue.add_rate_limited(name.clone());
                    }
                }
                controller.queue.done(&name);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// How much of one resource remains after deleting it (upstream `gvrDeletionMetadata`).
#[derive(Debug, Default)]
struct Remaining {
    /// Seconds to wait before looking again; 0 = no estimate.
    estimate: i64,
    /// Objects left.
    count: usize,
    /// Finalizer → objects held by it.
    finalizers: BTreeMap<String, usize>,
}

struct Controller {
    cluster: ClusterRef,
    queue: WorkQueue<String>,
}

impl Controller {
    /// Queues every namespace being deleted.
    async fn resync(&self) {
        let list = match typed::list::<Namespace>(&self.cluster, None).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "listing namespaces to resync failed");
                return;
            }
        };
        for ns in list.into_iter().filter(deleting) {
            self.queue.add(ns.metadata.name.unwrap_or_default());
        }
    }

    /// One pass of upstream `namespacedResourcesDeleter.Delete`; `Some(wait)` when content
    /// remains and the namespace should be looked at again after `wait`.
    async fn sync(&self, name: &str) -> Result<Option<Duration>, Error> {
        let info = namespaces();
        let Some(ns) = typed::get::<Namespace>(&self.cluster, "", name).await? else {
            return Ok(None);
        };
        if !deleting(&ns) {
            return Ok(None);
        }
        let phase = ns.status.as_ref().and_then(|s| s.phase.as_deref());
        let ns = if phase != Some("Terminating") {
            let updated = self
                .cluster
                .update_with(info, "", name, Subresource::Status, |obj| {
                    if !meta::deleting(obj) || obj["status"]["phase"] == "Terminating" {
                        return Ok(false);
                    }
                    obj["status"]["phase"] = json!("Terminating");
                    Ok(true)
                })
                .await;
            match updated {
                Ok(ns) => typed::decode::<Namespace>(&ns)?,
                Err(e) if e.code == 404 => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        } else {
            ns
        };
        if !deleting(&ns) {
            return Ok(None);
        }
        let finalized = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_none_or(|f| f.is_empty());
        if finalized {
            return Ok(None);
        }
        let estimate = self.delete_all_content(&ns).await?;
        if estimate > 0 {
            let wait = estimate / 2 + 1;
            return Ok(Some(Duration::from_secs(wait.unsigned_abs())));
        }
        self.finalize(name).await?;
        Ok(None)
    }

    /// Removes [`FINALIZER`] through the `finalize` subresource (the rest stays, sorted and
    /// deduplicated as upstream's `finalizeNamespace` leaves it).
    async fn finalize(&self, name: &str) -> Result<(), Error> {
        let mut f = |obj: &mut Value| {
            let before: Vec<&str> = obj["spec"]["finalizers"]
                .as_array()
                .map(|f| f.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !before.contains(&FINALIZER) {
                return Ok(false);
            }
            let mut rest: Vec<String> = before
                .iter()
                .filter(|f| **f != FINALIZER)
                .map(|f| f.to_string())
                .collect();
            rest.sort();
            rest.dedup();
            obj["spec"]["finalizers"] = json!(rest);
            Ok(true)
        };
        let result = self
            .cluster
            .update_with(namespaces(), "", name, Subresource::Finalize, &mut f)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every namespaced object in `ns` and records the conditions; returns the
    /// longest estimate of the time the rest needs (upstream `deleteAllContent`).
    async fn delete_all_content(&self, ns: &Namespace) -> Result<i64, Error> {
        let name = ns.metadata.name.as_deref().unwrap_or("");
        let deleted_at = ns.metadata.deletion_timestamp.as_ref().map(|t| t.0);
        let mut estimate = 0;
        let mut errors: Vec<String> = Vec::new();
        let mut remaining: Vec<String> = Vec::new();
        let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
        for info in api::registry::resources()
            .iter()
            .filter(|i| i.namespaced && i.supports("delete"))
        {
            let (left, err) = self.delete_content(info, name, deleted_at).await;
            if let Some(err) = err {
                errors.push(err);
            }
            estimate = estimate.max(left.estimate);
            if left.count > 0 {
                remaining.push(format!(
                    "{}.{} has {} resource instances",
                    info.plural, info.group, left.count
                ));
                for (f, n) in left.finalizers {
                    *finalizers.entry(f).or_default() += n;
                }
            }
        }
        let conditions = failing_conditions(&remaining, &finalizers, &errors);
        let updated = self
            .cluster
            .update_with(namespaces(), "", name, Subresource::Status, |obj| {
                Ok(update_conditions(obj, &conditions))
            })
            .await;
        if let Err(e) = updated {
            tracing::warn!(namespace = %name, error = %e, "couldn't update status conditions");
        }
        match errors.len() {
            0 => Ok(estimate),
            1 => Err(Error::ContentRemains(errors.remove(0))),
            _ => Err(Error::ContentRemains(format!("[{}]", errors.join(", ")))),
        }
    }

    /// Deletes every object of `info` in `ns` and reports what is left (upstream
    /// `deleteAllContentForGroupVersionResource` with list + delete of each item).
    async fn delete_content(
        &self,
        info: &'static ResourceInfo,
        ns: &str,
        deleted_at: Option<Timestamp>,
    ) -> (Remaining, Option<String>) {
        let mut estimate = if info.group.is_empty() && info.plural == "pods" {
            match self.pods_grace_estimate(ns).await {
                Ok(e) => e,
                // Upstream returns the error with no estimate.
                Err(e) => return (Remaining::default(), Some(e)),
            }
        } else {
            0
        };
        // No estimate once the namespace has been terminating that long.
        if let Some(at) = deleted_at {
            let elapsed = api::time::now().as_second() - at.as_second();
            if elapsed >= estimate {
                estimate = 0;
            }
        }
        // A failed step reports only the estimate, as upstream does.
        let failed = |e: String| {
            (
                Remaining {
                    estimate,
                    ..Remaining::default()
                },
                Some(e),
            )
        };
        let items = match self.list(info, ns).await {
            Ok(items) => items,
            Err(e) => return failed(e),
        };
        let opts = DeleteOptions {
            propagation_policy: Some(Propagation::Background),
            ..DeleteOptions::default()
        };
        for item in &items {
            let name = meta::str(item, "name");
            if let Err(e) = self.cluster.delete(info, ns, name, &opts).await
                && e.code != 404
                && e.code != 405
            {
                return failed(e.message);
            }
        }
        let left = match self.list(info, ns).await {
            Ok(items) => items,
            Err(e) => return failed(e),
        };
        if left.is_empty() {
            return (Remaining::default(), None);
        }
        let mut finalizers = BTreeMap::new();
        for item in &left {
            for f in item["metadata"]["finalizers"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(f) = f.as_str() {
                    *finalizers.entry(f.to_string()).or_default() += 1;
                }
            }
        }
        let count = left.len();
        if estimate != 0 {
            return (
                Remaining {
                    estimate,
                    count,
                    finalizers,
                },
                None,
            );
        }
        if !finalizers.is_empty() {
            return (
                Remaining {
                    estimate: FINALIZER_ESTIMATE_SECONDS,
                    count,
                    finalizers,
                },
                None,
            );
        }
        (
            Remaining {
                estimate,
                count,
                finalizers,
            },
            Some(format!(
                "unexpected items still remain in namespace: {ns} for gvr: {}/{}, Resource={}",
                info.group, info.version, info.plural
            )),
        )
    }

    /// The objects of `info` in `ns`.
    async fn list(&self, info: &ResourceInfo, ns: &str) -> Result<Vec<Arc<Value>>, String> {
        self.cluster
            .list(info, Some(ns))
            .await
            .map(|l| l.items)
            .map_err(|e| e.message)
    }

    /// The longest `terminationGracePeriodSeconds` of the non-terminal pods in `ns` (upstream
    /// `estimateGracefulTerminationForPods`).
    async fn pods_grace_estimate(&self, ns: &str) -> Result<i64, String> {
        let pods = self.list(crate::resource("", "pods"), ns).await?;
        Ok(pods
            .iter()
            .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
            .filter_map(|p| p["spec"]["terminationGracePeriodSeconds"].as_i64())
            .max()
            .unwrap_or(0)
            .max(0))
    }
}

/// The failing (True) conditions for this pass (upstream `namespaceConditionUpdater`).
fn failing_conditions(
    remaining: &[String],
    finalizers: &BTreeMap<String, usize>,
    errors: &[String],
) -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    if !remaining.is_empty() {
        let mut list = remaining.to_vec();
        list.sort();
        out.push((
            "NamespaceContentRemaining",
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", list.join(", ")),
        ));
    }
    if !finalizers.is_empty() {
        let list: Vec<String> = finalizers
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        out.push((
            "NamespaceFinalizersRemaining",
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                list.join(", ")
            ),
        ));
    }
    if !errors.is_empty() {
        let mut msgs = errors.to_vec();
        msgs.sort();
        out.push((
            "NamespaceDeletionContentFailure",
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                errors.len(),
                msgs.join(", ")
            ),
        ));
    }
    out
}

/// Sets every maintained condition on `ns.status.conditions` to its failing variant from
/// `failing` or else its ok variant; `lastTransitionTime` moves only when the status flips.
/// Whether anything changed (upstream `updateConditions`).
fn update_conditions(ns: &mut Value, failing: &[(&'static str, &'static str, String)]) -> bool {
    let now = meta::now_rfc3339();
    if !ns["status"]["conditions"].is_array() {
        ns["status"]["conditions"] = json!([]);
    }
    let mut changed = false;
    for (ty, ok_reason, ok_message) in CONDITIONS {
        let (status, reason, message) = match failing.iter().find(|(t, ..)| *t == ty) {
            Some((_, reason, message)) => ("True", *reason, message.as_str()),
            None => ("False", ok_reason, ok_message),
        };
        let Some(conditions) = ns["status"]["conditions"].as_array_mut() else {
            return changed;
        };
        match conditions.iter_mut().find(|c| c["type"] == ty) {
            None => {
                conditions.push(json!({
                    "type": ty,
                    "status": status,
                    "lastTransitionTime": now,
                    "reason": reason,
                    "message": message,
                }));
                changed = true;
            }
            Some(c)
                if c["status"] != status || c["reason"] != reason || c["message"] != message =>
            {
                if c["status"] != status {
                    c["lastTransitionTime"] = json!(now);
                }
                c["status"] = json!(status);
                c["reason"] = json!(reason);
                c["message"] = json!(message);
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed
}
