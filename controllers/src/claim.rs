//! Controller references: which objects a controller owns (upstream
//! `pkg/controller/controller_ref_manager.go`, `ClaimPods` / `ClaimReplicaSets`).
//!
//! A controller claims the candidates its selector matches: orphans are adopted (a
//! controller reference is added, after re-reading the owner to make sure it is not being
//! deleted), its own objects that no longer match are released (the reference is removed),
//! and objects controlled by someone else are left alone.

use std::sync::Arc;

use api::registry::ResourceInfo;
use api::selector::LabelSelector;
use serde_json::{Value, json};

use crate::cluster::{ClusterRef, Subresource};
use crate::{Error, meta};

/// The owner side of a claim.
pub(crate) struct Owner<'a> {
    /// The owner object.
    pub(crate) obj: &'a Value,
    /// Its resource (to re-read it before adopting).
    pub(crate) info: &'static ResourceInfo,
    /// Its selector.
    pub(crate) selector: &'a LabelSelector,
}

/// Claims `candidates` (objects of `child`) for `owner`; returns the ones it controls.
pub(crate) async fn claim(
    cluster: &ClusterRef,
    owner: &Owner<'_>,
    child: &'static ResourceInfo,
    candidates: Vec<Arc<Value>>,
) -> Result<Vec<Arc<Value>>, Error> {
    let uid = meta::uid(owner.obj).to_string();
    let mut claimed = Vec::new();
    for obj in candidates {
        let matches = owner.selector.matches_value(&obj);
        match meta::controller_ref(&obj) {
            Some(r) if r["uid"].as_str() != Some(uid.as_str()) => {}
            Some(_) if matches => claimed.push(obj),
            Some(_) => {
                if !meta::deleting(owner.obj) {
                    release(cluster, owner.obj, child, &obj).await?;
                }
            }
            None => {
                if !matches || meta::deleting(owner.obj) || meta::deleting(&obj) {
                    continue;
                }
                if let Some(adopted) = adopt(cluster, owner, child, &obj).await? {
                    claimed.push(adopted);
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
    obj: &Value,
) -> Result<Option<Arc<Value>>, Error> {
    let fresh = match cluster
        .get(
            owner.info,
            meta::str(owner.obj, "namespace"),
            meta::str(owner.obj, "name"),
        )
        .await
    {
        Ok(f) => f,
        Err(e) if e.code == 404 => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if meta::uid(&fresh) != meta::uid(owner.obj) || meta::deleting(&fresh) {
        return Ok(None);
    }
    let reference = meta::new_controller_ref(owner.obj, &owner.info.api_version(), owner.info.kind);
    let mut adopted = false;
    let result = crate::edit(cluster, child, obj, Subresource::Main, |o| {
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
        tracing::debug!(
            kind = child.kind,
            name = meta::str(obj, "name"),
            owner = meta::str(owner.obj, "name"),
            "adopted"
        );
    }
    Ok(result.filter(|_| adopted))
}

/// Removes `owner`'s references from an object it no longer selects.
async fn release(
    cluster: &ClusterRef,
    owner: &Value,
    child: &'static ResourceInfo,
    obj: &Value,
) -> Result<(), Error> {
    let uid = meta::uid(owner).to_string();
    crate::edit(cluster, child, obj, Subresource::Main, |o| {
        let Some(list) = o["metadata"]["ownerReferences"].as_array_mut() else {
            return false;
        };
        let before = list.len();
        list.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
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
        name = meta::str(obj, "name"),
        owner = meta::str(owner, "name"),
        "released"
    );
    Ok(())
}
