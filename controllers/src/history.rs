//! ControllerRevision history shared by the StatefulSet and DaemonSet controllers (upstream
//! `pkg/controller/history/controller_history.go`): a revision is a snapshot of the owner's
//! pod template (its `data`), named `<owner>-<hash>` with the hash in the
//! `controller.kubernetes.io/hash` label (a DaemonSet's: `controller-revision-hash`),
//! numbered by `revision`, controlled by its owner. Hashes are FNV-32a of the data as paddock
//! serialises it, so names have upstream's shape, not its exact values.
//!
//! [`create`] is upstream `CreateControllerRevision` (a name taken by a revision with other
//! data bumps the collision count and tries the next name); [`next_revision`],
//! [`equal`] and [`truncate`] (keep `revisionHistoryLimit` unused revisions) complete it.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::Value;

use crate::Error;
use crate::cluster::{ClusterRef, DeleteOptions};
use crate::typed;

/// The label holding a StatefulSet revision's hash (upstream `ControllerRevisionHashLabel`).
pub(crate) const HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// The label holding a DaemonSet revision's hash (upstream `DefaultDaemonSetUniqueLabelKey`).
pub(crate) const DAEMONSET_HASH_LABEL: &str = "controller-revision-hash";

/// The hash label of a revision owned by `kind`.
pub(crate) fn hash_label(kind: &str) -> &'static str {
    if kind == "DaemonSet" {
        DAEMONSET_HASH_LABEL
    } else {
        HASH_LABEL
    }
}

/// The ControllerRevision resource.
pub(crate) fn revisions() -> &'static api::registry::ResourceInfo {
    typed::info::<ControllerRevision>()
}

/// Upstream `HashControllerRevision`: FNV-32a of the data (and the collision count),
/// safe-encoded.
pub(crate) fn hash(data: &Value, collision_count: Option<i32>) -> String {
    crate::deployment::util::compute_hash(data, collision_count)
}

/// Upstream `ControllerRevisionName`: `<prefix>-<hash>`, the prefix cut to 223 characters.
pub(crate) fn revision_name(prefix: &str, hash: &str) -> String {
    let prefix: String = prefix.chars().take(223).collect();
    format!("{prefix}-{hash}")
}

/// The data of a revision as JSON (`Value::Null` when it has none).
pub(crate) fn data_of(r: &ControllerRevision) -> Value {
    r.data.0.clone()
}

/// Upstream `NewControllerRevision`: a revision of `owner` (controller reference `owner_ref`)
/// with `labels` (the template's) plus the hash label, `data`, number `revision`, named after
/// the hash of `data` and `collision_count`.
pub(crate) fn new_revision(
    owner: &ObjectMeta,
    owner_ref: OwnerReference,
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
    data: Value,
    revision: i64,
    collision_count: Option<i32>,
) -> ControllerRevision {
    let h = hash(&data, collision_count);
    let mut labels = labels.cloned().unwrap_or_default();
    labels.insert(hash_label(&owner_ref.kind).to_string(), h.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(typed::name(owner), &h)),
            namespace: owner.namespace.clone(),
            labels: Some(labels),
            annotations: annotations.cloned().filter(|a| !a.is_empty()),
            owner_references: Some(vec![owner_ref]),
            ..ObjectMeta::default()
        },
        data: RawExtension(data),
        revision: Some(revision),
    }
}

/// Upstream `EqualRevision`: same data.
pub(crate) fn equal(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    data_of(a) == data_of(b)
}

/// Upstream `nextRevision`: one more than the largest revision number (1 for none).
pub(crate) fn next_revision(revisions: &[ControllerRevision]) -> i64 {
    revisions
        .iter()
        .filter_map(|r| r.revision)
        .max()
        .unwrap_or(0)
        + 1
}

/// Sorts by revision number, then name (upstream `SortControllerRevisions`).
pub(crate) fn sort(revisions: &mut [ControllerRevision]) {
    revisions.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// Upstream `CreateControllerRevision`: creates `revision` named by its data and
/// `*collision_count`; when the name is taken by a revision with the same data that one is
/// returned, otherwise the collision count is bumped and the next name tried.
pub(crate) async fn create(
    cluster: &ClusterRef,
    revision: &ControllerRevision,
    collision_count: &mut i32,
) -> Result<ControllerRevision, Error> {
    let ns = typed::namespace(&revision.metadata).to_string();
    let data = data_of(revision);
    let owner = revision
        .metadata
        .owner_references
        .as_ref()
        .and_then(|r| r.first());
    let prefix = owner.map(|r| r.name.clone()).unwrap_or_default();
    let label = hash_label(owner.map_or("", |r| r.kind.as_str()));
    loop {
        let h = hash(&data, Some(*collision_count));
        let mut clone = revision.clone();
        clone.metadata.name = Some(revision_name(&prefix, &h));
        clone
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(label.to_string(), h);
        let body = typed::encode(&clone)?;
        match cluster.create(revisions(), &ns, body).await {
            Ok(created) => return typed::decode(&created),
            Err(e) if e.code == 409 => {
                let name = clone.metadata.name.clone().unwrap_or_default();
                let existing = typed::get::<ControllerRevision>(cluster, &ns, &name).await?;
                if let Some(existing) = existing
                    && data_of(&existing) == data
                {
                    return Ok(existing);
                }
                *collision_count = collision_count.saturating_add(1);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets the revision number of `revision` (upstream `UpdateControllerRevision`).
pub(crate) async fn update_number(
    cluster: &ClusterRef,
    revision: &ControllerRevision,
    number: i64,
) -> Result<ControllerRevision, Error> {
    let out = typed::edit(cluster, revision, crate::cluster::Subresource::Main, |o| {
        if o["revision"].as_i64() == Some(number) {
            return false;
        }
        o["revision"] = serde_json::json!(number);
        true
    })
    .await?;
    match out {
        Some(o) => typed::decode(&o),
        None => Ok(revision.clone()),
    }
}

/// Deletes the oldest revisions beyond `limit` that no live pod uses (`live`: the revision
/// names in use, current and update revisions included) (upstream `truncateHistory`).
pub(crate) async fn truncate(
    cluster: &ClusterRef,
    all: &[ControllerRevision],
    live: &HashSet<String>,
    limit: i64,
) -> Result<(), Error> {
    let mut history: Vec<&ControllerRevision> = all
        .iter()
        .filter(|r| !live.contains(typed::name(&r.metadata)))
        .collect();
    let excess = i64::try_from(history.len()).unwrap_or(i64::MAX) - limit.max(0);
    if excess <= 0 {
        return Ok(());
    }
    history.sort_by_key(|r| r.revision);
    for r in history
        .into_iter()
        .take(usize::try_from(excess).unwrap_or(0))
    {
        let (ns, name, _) = typed::at(&r.metadata);
        match cluster
            .delete(revisions(), ns, name, &DeleteOptions::default())
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
