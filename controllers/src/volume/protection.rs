//! The PVC and PV protection controllers (upstream `pkg/controller/volume/pvcprotection`
//! and `pvprotection`): a claim marked for deletion keeps its `kubernetes.io/pvc-protection`
//! finalizer while a pod scheduled to a node uses it (a `persistentVolumeClaim` volume, or a
//! not-finished pod's `ephemeral` volume); a volume keeps `kubernetes.io/pv-protection` while
//! it is Bound. The `StorageObjectInUseProtection` admission plugin adds the finalizers.

use std::sync::Arc;
use std::time::Duration;

use api::admission::{PV_PROTECTION_FINALIZER, PVC_PROTECTION_FINALIZER};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{pvcs, pvs};
use crate::cluster::{ClusterRef, Subresource};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Change, Delta};
use crate::{Error, typed};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Claim(String, String),
    Volume(String),
}

/// Runs both protection controllers until `shutdown`.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let c = Arc::new(Protection {
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
    });
    let pods = typed::info::<Pod>();
    crate::queue::drive(&cluster, c, &[pvcs(), pvs(), pods], 1, &shutdown).await;
}

struct Protection {
    cluster: ClusterRef,
    queue: WorkQueue<Key>,
}

/// The claims a pod's volumes name (`persistentVolumeClaim`, and `ephemeral` as
/// `<pod>-<volume>`), with whether a finished pod still holds it.
pub fn claims_of_pod(pod: &Value) -> Vec<(String, bool)> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
    let finished = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(c) = v["persistentVolumeClaim"]["claimName"].as_str() {
                Some((c.to_string(), true))
            } else if v["ephemeral"].is_object() {
                let n = v["name"].as_str().unwrap_or("");
                Some((format!("{pod_name}-{n}"), !finished))
            } else {
                None
            }
        })
        .collect()
}

/// Upstream `podUsesPVC`: a pod scheduled to a node that names the claim.
fn pod_uses(pod: &Value, claim: &str) -> bool {
    let scheduled = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    scheduled
        && claims_of_pod(pod)
            .iter()
            .any(|(c, holds)| c == claim && *holds)
}

impl Reconciler for Protection {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    fn observe(&self, change: Change) {
        let (Delta::Upsert(obj) | Delta::Delete(obj)) = &change.delta else {
            return;
        };
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        if std::ptr::eq(change.info, pvcs()) {
            if !obj["metadata"]["deletionTimestamp"].is_null() {
                self.queue.add(Key::Claim(ns, name));
            }
        } else if std::ptr::eq(change.info, pvs()) {
            if !obj["metadata"]["deletionTimestamp"].is_null() {
                self.queue.add(Key::Volume(name));
            }
        } else {
            for (c, _) in claims_of_pod(obj) {
                self.queue.add(Key::Claim(ns.clone(), c));
            }
        }
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        match key {
            Key::Claim(ns, name) => {
                let Some(claim) =
                    typed::get::<PersistentVolumeClaim>(&self.cluster, &ns, &name).await?
                else {
                    return Ok(None);
                };
                if claim.metadata.deletion_timestamp.is_none() {
                    return Ok(None);
                }
                let pods = self.cluster.list(typed::info::<Pod>(), Some(&ns)).await?;
                if pods.items.iter().any(|p| pod_uses(p, &name)) {
                    return Ok(None);
                }
                typed::edit(&self.cluster, &claim, Subresource::Main, |o| {
                    crate::meta::remove_finalizer(o, PVC_PROTECTION_FINALIZER)
                })
                .await?;
            }
            Key::Volume(name) => {
                let Some(v) = typed::get::<PersistentVolume>(&self.cluster, "", &name).await?
                else {
                    return Ok(None);
                };
                let phase = v.status.as_ref().and_then(|s| s.phase.as_deref());
                if v.metadata.deletion_timestamp.is_none() || phase == Some("Bound") {
                    return Ok(None);
                }
                typed::edit(&self.cluster, &v, Subresource::Main, |o| {
                    crate::meta::remove_finalizer(o, PV_PROTECTION_FINALIZER)
                })
                .await?;
            }
        }
        Ok(None)
    }
}
