//! The garbage collector (upstream `pkg/controller/garbagecollector`).
//!
//! It monitors every served resource except events (upstream's default ignored resources)
//! through [`crate::reflector`]s feeding one [`graph::Graph`] of ownerReferences by uid, and
//! reconciles objects by uid in [`Collector::attempt`]:
//! - a dependent whose owners are all gone (no object of that name, or one with another uid)
//!   is deleted, in the background unless it already carries the `orphan` or
//!   `foregroundDeletion` finalizer; with a surviving owner, only the references to absent
//!   owners and owners being deleted in the foreground are removed;
//! - an owner deleted in the foreground (`deletionTimestamp` + `foregroundDeletion`) has its
//!   dependents deleted (in the foreground themselves when they have dependents) and loses the
//!   finalizer once no dependent with `blockOwnerDeletion: true` remains, which lets the
//!   cluster remove it;
//! - an owner deleted with `orphan` has the references to it removed from its dependents, then
//!   loses the finalizer.
//!
//! Workers start once every resource has been listed, so a foreground or orphan decision never
//! rests on a half-built graph. Every step re-reads the object and its owners from the
//! cluster, and all writes carry uid preconditions, so a reconcile is idempotent.

mod graph;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;

use crate::cluster::{ClusterRef, Subresource};
use crate::cluster::{DeleteOptions, Propagation};
use api::registry::ResourceInfo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::queue::WorkQueue;
use crate::reflector::{self, Change, Delta};
use crate::{Error, meta, typed};
use graph::{Graph, Node};

/// `metadata.finalizers` entry of an owner deleted in the foreground.
pub const FOREGROUND: &str = "foregroundDeletion";
/// `metadata.finalizers` entry of an owner whose dependents are orphaned.
pub const ORPHAN: &str = "orphan";

/// Concurrent reconciles (upstream `--concurrent-gc-syncs` is 20; paddock's objects live in
/// memory, a few suffice).
const WORKERS: usize = 4;

/// Whether the collector monitors `info` (upstream ignores events; it needs list, watch and
/// delete).
fn monitored(info: &ResourceInfo) -> bool {
    info.plural != "events"
        && info.supports("delete")
        && info.supports("list")
        && info.supports("watch")
}

/// Runs the garbage collector until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let collector = Arc::new(Collector {
        cluster: cluster.clone(),
        graph: Mutex::new(Graph::default()),
        // Upstream's default controller rate limiter: 5 ms doubling up to 1000 s.
        queue: WorkQueue::controller_default(),
    });
    let infos: Vec<&'static ResourceInfo> = api::registry::resources()
        .iter()
        .filter(|i| monitored(i))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    let rx = reflector::spawn_all(&mut tasks, &cluster, &infos, &shutdown);
    let (synced_tx, synced_rx) = watch::channel(false);
    tasks.spawn(build_graph(collector.clone(), rx, infos.len(), synced_tx));
    for _ in 0..WORKERS {
        tasks.spawn(work(collector.clone(), synced_rx.clone(), shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

/// Applies monitored changes to the graph and queues what they affect.
async fn build_graph(
    collector: Arc<Collector>,
    mut rx: mpsc::Receiver<Change>,
    resources: usize,
    synced: watch::Sender<bool>,
) {
    let mut listed = 0;
    while let Some(change) = rx.recv().await {
        let work = {
            let mut graph = collector.graph.lock();
            match &change.delta {
                Delta::Upsert(new) => match typed::metadata(new) {
                    Ok(m) => graph.upsert(change.info, &m),
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring a watched object");
                        Vec::new()
                    }
                },
                Delta::Delete(old) => match typed::metadata(old) {
                    Ok(m) => graph.delete(&m),
                    Err(_) => Vec::new(),
                },
                Delta::Synced => {
                    listed += 1;
                    if listed == resources {
                        tracing::debug!(objects = graph.len(), "garbage collector synced");
                        synced.send_replace(true);
                    }
                    Vec::new()
                }
            }
        };
        for uid in work {
            collector.queue.add(uid);
        }
    }
}

/// One worker: reconciles queued uids once the graph is synced.
async fn work(
    collector: Arc<Collector>,
    mut synced: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        r = synced.wait_for(|s| *s) => if r.is_err() { return },
    }
    while let Some(uid) = collector.queue.next(&shutdown).await {
        match collector.attempt(&uid).await {
            Ok(()) => collector.queue.forget(&uid),
            Err(e) => {
                tracing::debug!(%uid, error = %e, "garbage collection failed; retrying");
                collector.queue.add_rate_limited(uid.clone());
            }
        }
        collector.queue.done(&uid);
    }
}

/// How an owner reference resolves (upstream `classifyReferences`).
enum OwnerState {
    /// The owner exists and is not being deleted in the foreground.
    Solid,
    /// No object of that name, or one with another uid.
    Dangling,
    /// The owner is being deleted in the foreground, waiting for its dependents.
    Waiting,
}

/// The collector's shared state.
struct Collector {
    cluster: ClusterRef,
    graph: Mutex<Graph>,
    queue: WorkQueue<String>,
}

impl Collector {
    /// Reconciles the object `uid` (upstream `attemptToDeleteItem` and
    /// `attemptToOrphanWorker`).
    async fn attempt(&self, uid: &str) -> Result<(), Error> {
        let Some(node) = self.graph.lock().node(uid).cloned() else {
            return Ok(());
        };
        let Some(latest) = self.latest(&node, uid).await? else {
            return Ok(());
        };
        if latest.deletion_timestamp.is_some() {
            if has_finalizer(&latest, ORPHAN) {
                return self.orphan_dependents(&node, uid).await;
            }
            if has_finalizer(&latest, FOREGROUND) {
                return self.process_deleting_dependents(&node, uid).await;
            }
            return Ok(());
        }
        let refs = latest.owner_references.clone().unwrap_or_default();
        if refs.is_empty() {
            return Ok(());
        }
        let mut solid = 0;
        let mut stale: HashSet<String> = HashSet::new();
        let mut waiting = 0;
        for r in &refs {
            let state = match self.classify(&node, r).await? {
                Some(state) => state,
                // A cluster-scoped object owned by a namespaced kind never resolves.
                None => return Ok(()),
            };
            let ref_uid = r.uid.clone();
            match state {
                OwnerState::Solid => solid += 1,
                OwnerState::Dangling => {
                    stale.insert(ref_uid);
                }
                OwnerState::Waiting => {
                    waiting += 1;
                    stale.insert(ref_uid);
                }
            }
        }
        if solid > 0 {
            if stale.is_empty() {
                return Ok(());
            }
            tracing::debug!(%uid, name = %node.name, "removing references to absent or deleting owners");
            return self
                .edit(&node, uid, |obj| {
                    remove_owner_refs(obj, |u| stale.contains(u))
                })
                .await;
        }
        let has_dependents = !self.graph.lock().dependents(uid).is_empty();
        if waiting > 0 && has_dependents {
            let dependent_waits = self
                .graph
                .lock()
                .dependents(uid)
                .iter()
                .any(|(_, d)| d.deleting_dependents);
            if dependent_waits {
                // Break a possible cycle of foreground deletions (upstream does the same).
                self.edit(&node, uid, unblock_owner_refs).await?;
            }
            return self
                .delete(&node, uid, &latest, Propagation::Foreground)
                .await;
        }
        let policy = if has_finalizer(&latest, ORPHAN) {
            Propagation::Orphan
        } else if has_finalizer(&latest, FOREGROUND) {
            Propagation::Foreground
        } else {
            Propagation::Background
        };
        tracing::debug!(%uid, kind = node.info.kind, name = %node.name, ?policy, "deleting object whose owners are gone");
        self.delete(&node, uid, &latest, policy).await
    }

    /// The metadata of the stored object of `node` if it still has `uid`.
    async fn latest(&self, node: &Node, uid: &str) -> Result<Option<ObjectMeta>, Error> {
        match self
            .cluster
            .get(node.info, &node.namespace, &node.name)
            .await
        {
            Ok(obj) if meta::uid(&obj) == uid => typed::metadata(&obj).map(Some),
            Ok(_) => Ok(None),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves one owner reference of `node` through the port; `None` for a namespaced
    /// owner of a cluster-scoped object (upstream `namespacedOwnerOfClusterScopedObjectErr`).
    async fn classify(
        &self,
        node: &Node,
        reference: &OwnerReference,
    ) -> Result<Option<OwnerState>, Error> {
        let api_version = reference.api_version.as_str();
        let kind = reference.kind.as_str();
        let (group, _) = api::registry::split_api_version(api_version);
        // Owners are matched by group and kind, in any served version (a RESTMapper lookup).
        let Some(info) = api::registry::resources()
            .iter()
            .find(|i| i.group == group && i.kind == kind)
        else {
            return Err(Error::UnknownKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            });
        };
        if info.namespaced && node.namespace.is_empty() {
            tracing::warn!(
                name = %node.name,
                owner_kind = kind,
                "cluster-scoped object refers to a namespaced owner; ignoring"
            );
            return Ok(None);
        }
        let namespace = if info.namespaced {
            &node.namespace[..]
        } else {
            ""
        };
        let owner = match self.cluster.get(info, namespace, &reference.name).await {
            Ok(owner) => typed::metadata(&owner)?,
            Err(e) if e.code == 404 => return Ok(Some(OwnerState::Dangling)),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(
            if owner.uid.as_deref().unwrap_or("") != reference.uid {
                OwnerState::Dangling
            } else if owner.deletion_timestamp.is_some() && has_finalizer(&owner, FOREGROUND) {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            },
        ))
    }

    /// Deletes `node` with `policy` (upstream `deleteObject`): preconditioned on uid and
    /// resourceVersion; on a conflict, retried on uid alone if the owner references are
    /// unchanged.
    async fn delete(
        &self,
        node: &Node,
        uid: &str,
        latest: &ObjectMeta,
        policy: Propagation,
    ) -> Result<(), Error> {
        let mut opts = DeleteOptions {
            propagation_policy: Some(policy),
            preconditions_uid: Some(uid.to_string()),
            preconditions_resource_version: Some(
                latest.resource_version.clone().unwrap_or_default(),
            ),
            ..DeleteOptions::default()
        };
        let result = self
            .cluster
            .delete(node.info, &node.namespace, &node.name, &opts)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) if e.code == 409 => {
                let Some(live) = self.latest(node, uid).await? else {
                    return Ok(());
                };
                if live.owner_references != latest.owner_references {
                    return Err(e.into());
                }
                opts.preconditions_resource_version = None;
                match self
                    .cluster
                    .delete(node.info, &node.namespace, &node.name, &opts)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.code == 404 => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Foreground deletion of `uid` (upstream `processDeletingDependentsItem`): drop the
    /// finalizer once nothing blocks, else make sure every blocking dependent is processed.
    async fn process_deleting_dependents(&self, node: &Node, uid: &str) -> Result<(), Error> {
        let blocking = self.graph.lock().blocking_dependents(uid);
        if blocking.is_empty() {
            tracing::debug!(%uid, name = %node.name, "no blocking dependents; removing {FOREGROUND}");
            return self
                .edit(node, uid, |obj| meta::remove_finalizer(obj, FOREGROUND))
                .await;
        }
        for (dep_uid, dep) in blocking {
            if !dep.deleting_dependents {
                self.queue.add(dep_uid);
            }
        }
        Ok(())
    }

    /// Orphan deletion of `uid` (upstream `orphanDependents` + `removeFinalizer`).
    async fn orphan_dependents(&self, node: &Node, uid: &str) -> Result<(), Error> {
        let dependents = self.graph.lock().dependents(uid);
        for (dep_uid, dep) in dependents {
            self.edit(&dep, &dep_uid, |obj| remove_owner_refs(obj, |u| u == uid))
                .await?;
        }
        tracing::debug!(%uid, name = %node.name, "dependents orphaned; removing {ORPHAN}");
        self.edit(node, uid, |obj| meta::remove_finalizer(obj, ORPHAN))
            .await
    }

    /// Read-modify-write of the object `uid`; `f` returns whether it changed anything. A
    /// vanished or replaced object is left alone.
    async fn edit(
        &self,
        node: &Node,
        uid: &str,
        mut f: impl FnMut(&mut Value) -> bool + Send,
    ) -> Result<(), Error> {
        let result = self
            .cluster
            .update_with(
                node.info,
                &node.namespace,
                &node.name,
                Subresource::Main,
                |obj| Ok(meta::uid(obj) == uid && f(obj)),
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether the object's `metadata.finalizers` holds `finalizer`.
fn has_finalizer(m: &ObjectMeta, finalizer: &str) -> bool {
    m.finalizers.iter().flatten().any(|f| f == finalizer)
}

/// Removes the owner references whose uid matches; whether any was removed.
fn remove_owner_refs(obj: &mut Value, mut matches: impl FnMut(&str) -> bool) -> bool {
    let Some(refs) = obj["metadata"]["ownerReferences"].as_array_mut() else {
        return false;
    };
    let before = refs.len();
    refs.retain(|r| !matches(r["uid"].as_str().unwrap_or("")));
    let changed = refs.len() != before;
    if refs.is_empty()
        && let Some(m) = obj["metadata"].as_object_mut()
    {
        m.remove("ownerReferences");
    }
    changed
}

/// Sets `blockOwnerDeletion: false` on every blocking reference (upstream
/// `unblockOwnerReferencesStrategicMergePatch`).
fn unblock_owner_refs(obj: &mut Value) -> bool {
    let mut changed = false;
    if let Some(refs) = obj["metadata"]["ownerReferences"].as_array_mut() {
        for r in refs {
            if r["blockOwnerDeletion"].as_bool() == Some(true) {
                r["blockOwnerDeletion"] = Value::Bool(false);
                changed = true;
            }
        }
    }
    changed
}
