//! Controller references: which objects a controller owns (upstream
//! `pkg/controller/controller_ref_manager.go`, `ClaimPods` / `ClaimReplicaSets`).
//!
//! A controller claims the candidates its selector matches: orphans are adopted (a
//! controller reference is added, after re-reading the owner to make sure it is not being
//! deleted), its own objects that no longer match are released (the reference is removed),
//! and objects controlled by someone else are left alone.
//!
//! The candidates are typed pods for the ReplicaSet controller and the JSON ReplicaSets of
//! the Deployment controller (which still reads JSON): [`Candidate`] is what a claim reads of
//! either. Adopting and releasing edit the stored JSON.

use std::sync::Arc;

use api::registry::ResourceInfo;
use api::selector::LabelSelector;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::cluster::{ClusterRef, Subresource};
use crate::{Error, meta};

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

/// What a claim reads of a candidate.
pub(crate) trait Candidate: Sized {
    /// Whether its labels match `selector`.
    fn selected_by(&self, selector: &LabelSelector) -> bool;
    /// The uid of its controller reference, when it has one (`""` for a reference without a
    /// uid).
    fn controller_uid(&self) -> Option<&str>;
    /// Whether it is being deleted.
    fn deleting(&self) -> bool;
    /// Its namespace, name and uid.
    fn at(&self) -> (&str, &str, &str);
    /// The candidate as stored after an adoption.
    fn from_stored(obj: Arc<Value>) -> Result<Self, Error>;
}

impl Candidate for Arc<Value> {
    fn selected_by(&self, selector: &LabelSelector) -> bool {
        selector.matches_value(self)
    }
    fn controller_uid(&self) -> Option<&str> {
        meta::controller_ref(self).map(|r| r["uid"].as_str().unwrap_or(""))
    }
    fn deleting(&self) -> bool {
        meta::deleting(self)
    }
    fn at(&self) -> (&str, &str, &str) {
        (
            meta::str(self, "namespace"),
            meta::str(self, "name"),
            meta::uid(self),
        )
    }
    fn from_stored(obj: Arc<Value>) -> Result<Self, Error> {
        Ok(obj)
    }
}

impl Candidate for Pod {
    fn selected_by(&self, selector: &LabelSelector) -> bool {
        selector.is_empty()
            || selector.matches(self.metadata.labels.as_ref().unwrap_or(&Default::default()))
    }
    fn controller_uid(&self) -> Option<&str> {
        crate::typed::controller_ref(&self.metadata).map(|r| r.uid.as_str())
    }
    fn deleting(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }
    fn at(&self) -> (&str, &str, &str) {
        let m = &self.metadata;
        (
            m.namespace.as_deref().unwrap_or(""),
            m.name.as_deref().unwrap_or(""),
            m.uid.as_deref().unwrap_or(""),
        )
    }
    fn from_stored(obj: Arc<Value>) -> Result<Self, Error> {
        crate::typed::decode(&obj)
    }
}

/// Claims `candidates` (objects of `child`) for `owner`; returns the ones it controls.
pub(crate) async fn claim<C: Candidate>(
    cluster: &ClusterRef,
    owner: &Owner<'_>,
    child: &'static ResourceInfo,
    candidates: Vec<C>,
) -> Result<Vec<C>, Error> {
    let uid = owner.at.2;
    let mut claimed = Vec::new();
    for obj in candidates {
        let matches = obj.selected_by(owner.selector);
        match obj.controller_uid() {
            Some(r) if r != uid => {}
            Some(_) if matches => claimed.push(obj),
            Some(_) => {
                if !owner.deleting {
                    release(cluster, owner, child, obj.at()).await?;
                }
            }
            None => {
                if !matches || owner.deleting || obj.deleting() {
                    continue;
                }
                if let Some(adopted) = adopt(cluster, owner, child, obj.at()).await? {
                    claimed.push(C::from_stored(adopted)?);
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
    if meta::uid(&fresh) != uid || meta::deleting(&fresh) {
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
