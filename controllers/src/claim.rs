//! Controller references: which objects a controller owns (upstream
//! `pkg/controller/controller_ref_manager.go`, `ClaimPods` / `ClaimReplicaSets`).
//!
//! A controller claims the candidates its selector matches: orphans are adopted (a
//! controller reference is added, after re-reading the owner to make sure it is not being
//! deleted), its own objects that no longer match are released (the reference is removed),
//! and objects controlled by someone else are left alone.
//!
//! The candidates are typed objects of any kind (the ReplicaSet controller's pods, the
//! Deployment controller's ReplicaSets); a claim reads only their metadata. Adopting and
//! releasing edit the stored JSON.

use std::sync::Arc;

use api::registry::ResourceInfo;
use api::selector::LabelSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::cluster::{ClusterRef, Subresource};
use crate::{Error, meta, typed};

/// The owner side of a claim.
pub(crate) struct Owner<'a> {
    /// The owner's namespace, name and uid.
    pub(crate) at: (&'a str, &'a str, &'a str),
    /// Whether the owner is being deleted.
    pub(crate) deleting: bool,
    /// Its resource (to re-read it before adopting).
    pub(crate) info: &'static ResourceInfo,
    /// Its selector.
    pub(crate) selector: &'a LabelSelector,
}

impl<'a> Owner<'a> {
    /// The owner side of a claim by `owner`, of resource `info`, with `selector`.
    pub(crate) fn of(
        m: &'a ObjectMeta,
        info: &'static ResourceInfo,
        selector: &'a LabelSelector,
    ) -> Owner<'a> {
        Owner {
            at: typed::at(m),
            deleting: m.deletion_timestamp.is_some(),
            info,
            selector,
        }
    }
}

/// Whether `selector` selects an object's labels (an empty selector selects everything).
pub(crate) fn selected(selector: &LabelSelector, m: &ObjectMeta) -> bool {
    selector.is_empty() || selector.matches(m.labels.as_ref().unwrap_or(&Default::default()))
}

/// Claims `candidates` (objects of kind `K`) for `owner`; returns the ones it controls.
pub(crate) async fn claim<K>(
    cluster: &ClusterRef,
    owner: &Owner<'_>,
    candidates: Vec<K>,
) -> Result<Vec<K>, Error>
where
    K: Resource + DeserializeOwned + Metadata<Ty = ObjectMeta>,
{
    let child = typed::info::<K>();
    let uid = owner.at.2;
    let mut claimed = Vec::new();
    for obj in candidates {
        let m = obj.metadata();
        let matches = selected(owner.selector, m);
        match typed::controller_ref(m).map(|r| r.uid.as_str()) {
            Some(r) if r != uid => {}
            Some(_) if matches => claimed.push(obj),
            Some(_) => {
                if !owner.deleting {
                    release(cluster, owner, child, typed::at(m)).await?;
                }
            }
            None => {
                if !matches || owner.deleting || m.deletion_timestamp.is_some() {
                    continue;
                }
                if let Some(adopted) = adopt(cluster, owner, child, typed::at(m)).await? {
                    claimed.push(typed::decode(&adopted)?);
                }
            }
        }
    }
    Ok(claimed)
}

/// Adds the owner's controller reference to an orphan (upstream `AdoptPod` /
/// `AdoptReplicaSet` behind `RecheckDeletionTimestamp`).
async fn adopt(
    cluster: &ClusterRef,
    owner: &Owner<'_>,
    child: &'static ResourceInfo,
    at: (&str, &str, &str),
) -> Result<Option<Arc<Value>>, Error> {
    let (namespace, name, uid) = owner.at;
    let fresh = match cluster.get(owner.info, namespace, name).await {
        Ok(f) => f,
        Err(e) if e.code == 404 => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let fresh = typed::metadata(&fresh)?;
    if fresh.uid.as_deref() != Some(uid) || fresh.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let reference = json!({
        "apiVersion": owner.info.api_version(),
        "kind": owner.info.kind,
        "name": name,
        "uid": uid,
        "controller": true,
        "blockOwnerDeletion": true,
    });
    let mut adopted = false;
    let result = crate::edit_at(cluster, child, at, Subresource::Main, |o| {
        adopted = meta::controller_ref(o).is_none()
            && !meta::deleting(o)
            && owner.selector.matches_value(o);
        if adopted {
            let refs = &mut o["metadata"]["ownerReferences"];
            if !refs.is_array() {
                *refs = json!([]);
            }
            if let Some(list) = refs.as_array_mut() {
                list.push(reference.clone());
            }
        }
        adopted
    })
    .await?;
    if adopted && result.is_some() {
        tracing::debug!(kind = child.kind, name = at.1, owner = name, "adopted");
    }
    Ok(result.filter(|_| adopted))
}

/// Removes `owner`'s references from an object it no longer selects.
async fn release(
    cluster: &ClusterRef,
    owner: &Owner<'_>,
    child: &'static ResourceInfo,
    at: (&str, &str, &str),
) -> Result<(), Error> {
    let uid = owner.at.2;
    crate::edit_at(cluster, child, at, Subresource::Main, |o| {
        let Some(list) = o["metadata"]["ownerReferences"].as_array_mut() else {
            return false;
        };
        let before = list.len();
        list.retain(|r| r["uid"].as_str() != Some(uid));
        let changed = list.len() != before;
        if list.is_empty()
            && let Some(m) = o["metadata"].as_object_mut()
        {
            m.remove("ownerReferences");
        }
        changed
    })
    .await?;
    tracing::debug!(
        kind = child.kind,
        name = at.1,
        owner = owner.at.1,
        "released"
    );
    Ok(())
}
