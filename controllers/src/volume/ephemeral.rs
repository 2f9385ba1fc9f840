//! The generic ephemeral volume controller (upstream `pkg/controller/volume/ephemeral`): for
//! each `ephemeral` volume of a pod, the claim `<pod>-<volume>` from the volume's
//! `volumeClaimTemplate`, owned (as controller) by the pod, so the garbage collector deletes it
//! with the pod. A claim of that name that the pod does not own is left alone (the pod cannot
//! start: the agent refuses a claim not owned by the pod, as the kubelet does).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::pvcs;
use crate::cluster::ClusterRef;
use crate::events::{Recorder, Style};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Change, Delta};
use crate::{Error, typed};

type Key = (String, String);

/// Runs the controller until `shutdown`.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let c = Arc::new(Ephemeral {
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        recorder: Recorder::new(cluster.clone(), "ephemeral_volume", Style::Legacy),
    });
    crate::queue::drive(&cluster, c, &[typed::info::<Pod>()], 1, &shutdown).await;
}

struct Ephemeral {
    cluster: ClusterRef,
    queue: WorkQueue<Key>,
    recorder: Recorder,
}

fn has_ephemeral(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.ephemeral.is_some()))
}

impl Reconciler for Ephemeral {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    fn observe(&self, change: Change) {
        if let Delta::Upsert(_) = &change.delta
            && let Some(p) = typed::upserted::<Pod>(&change)
            && has_ephemeral(&p)
            && p.metadata.deletion_timestamp.is_none()
        {
            self.queue.add(typed::key_of(&p.metadata));
        }
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        let Some(pod) = typed::get::<Pod>(&self.cluster, &key.0, &key.1).await? else {
            return Ok(None);
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let owner = typed::controller_ref_to(&pod);
        for v in pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default()
        {
            let Some(t) = v.ephemeral.and_then(|e| e.volume_claim_template) else {
                continue;
            };
            let name = format!("{}-{}", key.1, v.name);
            if let Some(existing) =
                typed::get::<PersistentVolumeClaim>(&self.cluster, &key.0, &name).await?
            {
                let owned =
                    typed::controller_ref(&existing.metadata).is_some_and(|r| r.uid == owner.uid);
                if !owned {
                    self.recorder
                        .event(
                            typed::info::<Pod>(),
                            &pod.metadata,
                            "Warning",
                            "FailedBinding",
                            "",
                            &format!("PVC {}/{name} was not created for the pod", key.0),
                        )
                        .await;
                }
                continue;
            }
            let meta = t.metadata.unwrap_or_default();
            let claim = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": name,
                    "namespace": key.0,
                    "labels": meta.labels,
                    "annotations": meta.annotations,
                    "ownerReferences": [typed::encode(&owner)?],
                },
                "spec": typed::encode(&t.spec)?,
            });
            match self.cluster.create(pvcs(), &key.0, claim).await {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}
