//! The built-in local-path provisioner, as k3s ships rancher's `local-path-provisioner`
//! (provisioner name `rancher.io/local-path`): for a claim the binder handed to it
//! (`volume.kubernetes.io/storage-provisioner`) whose node is chosen
//! (`volume.kubernetes.io/selected-node`), it creates the volume `pvc-<claim uid>`: a
//! `hostPath` (type `DirectoryOrCreate`) at `<node storage dir>/pvc-<uid>_<namespace>_<name>`,
//! pinned to the node by `nodeAffinity` on `kubernetes.io/hostname`, pre-bound to the claim,
//! with the class's reclaim policy; the binder then binds the claim.
//!
//! The node's storage dir is what its agent reports in the Node annotation
//! [`STORAGE_DIR_ANNOTATION`]. The directory itself is made by that agent when a pod first
//! mounts the volume, and removed by it when the volume is released under `Delete`
//! (local-path does both in helper pods on the node). Capacity is recorded, never enforced,
//! as local-path does.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{
    ANN_PROVISIONED_BY, ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER, annotation, claim_class, pvcs,
    pvs,
};
use crate::cluster::ClusterRef;
use crate::events::{Recorder, Style};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Change, Delta};
use crate::{Error, typed};

/// The provisioner name (k3s's local-path-provisioner's).
pub const PROVISIONER: &str = "rancher.io/local-path";
/// The Node annotation in which an agent reports the directory its local-path volumes live
/// under (`<agent data dir>/storage`).
pub const STORAGE_DIR_ANNOTATION: &str = "paddock.dev/storage-dir";
/// The annotation local-path records a volume's node in.
pub const NODE_ANNOTATION: &str = "local.path.provisioner/selected-node";
/// The node label the volume's affinity pins (local-path's `DefaultNodeAffinityKey`).
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

type Key = (String, String);

/// Runs the provisioner until `shutdown`.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let c = Arc::new(Provisioner {
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        recorder: Recorder::new(cluster.clone(), PROVISIONER, Style::Legacy),
    });
    crate::queue::drive(&cluster, c, &[pvcs()], 1, &shutdown).await;
}

struct Provisioner {
    cluster: ClusterRef,
    queue: WorkQueue<Key>,
    recorder: Recorder,
}

/// The volume name of a claim (the external-provisioner library's `pvc-<uid>`).
pub fn volume_name(claim: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", typed::uid(&claim.metadata))
}

/// The directory of a claim's volume under the node's storage dir (local-path's
/// `<pv name>_<namespace>_<claim name>`).
pub fn folder_name(claim: &PersistentVolumeClaim) -> String {
    format!(
        "{}_{}_{}",
        volume_name(claim),
        typed::namespace(&claim.metadata),
        typed::name(&claim.metadata)
    )
}

/// Why local-path refuses a claim (its own checks), or `None`.
fn refusal(claim: &PersistentVolumeClaim) -> Option<String> {
    let spec = claim.spec.as_ref()?;
    if spec.selector.is_some() {
        return Some("claim.Spec.Selector is not supported".into());
    }
    for m in spec.access_modes.iter().flatten() {
        if m != "ReadWriteOnce" && m != "ReadWriteOncePod" {
            return Some(
                "NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes"
                    .into(),
            );
        }
    }
    None
}

/// The volume local-path makes for `claim` of `class` on `node` under `dir`.
pub fn volume_for(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &Node,
    dir: &str,
) -> serde_json::Value {
    let node_name = typed::name(&node.metadata);
    let hostname = node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HOSTNAME_LABEL))
        .map_or(node_name, String::as_str);
    let spec = claim.spec.clone().unwrap_or_default();
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_default();
    let path = format!("{}/{}", dir.trim_end_matches('/'), folder_name(claim));
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(claim),
            "annotations": {
                ANN_PROVISIONED_BY: PROVISIONER,
                NODE_ANNOTATION: node_name,
            },
        },
        "spec": {
            "accessModes": spec.access_modes.unwrap_or_default(),
            "capacity": {"storage": storage},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": typed::namespace(&claim.metadata),
                "name": typed::name(&claim.metadata),
                "uid": typed::uid(&claim.metadata),
                "resourceVersion": claim.metadata.resource_version.clone().unwrap_or_default(),
            },
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}
            ]}]}},
            "persistentVolumeReclaimPolicy": class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
            "storageClassName": typed::name(&class.metadata),
            "volumeMode": "Filesystem",
        },
    })
}

impl Provisioner {
    async fn failed(&self, claim: &PersistentVolumeClaim, class: &str, why: &str) {
        self.recorder
            .event(
                pvcs(),
                &claim.metadata,
                "Warning",
                "ProvisioningFailed",
                "",
                &format!("failed to provision volume with StorageClass {class:?}: {why}"),
            )
            .await;
    }
}

impl Reconciler for Provisioner {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    fn observe(&self, change: Change) {
        if let Delta::Upsert(_) = &change.delta
            && let Some(c) = typed::upserted::<PersistentVolumeClaim>(&change)
            && annotation(&c.metadata.annotations, ANN_STORAGE_PROVISIONER) == Some(PROVISIONER)
        {
            self.queue.add(typed::key_of(&c.metadata));
        }
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        let Some(claim) =
            typed::get::<PersistentVolumeClaim>(&self.cluster, &key.0, &key.1).await?
        else {
            return Ok(None);
        };
        let bound = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .is_some_and(|v| !v.is_empty());
        if bound
            || claim.metadata.deletion_timestamp.is_some()
            || annotation(&claim.metadata.annotations, ANN_STORAGE_PROVISIONER) != Some(PROVISIONER)
        {
            return Ok(None);
        }
        let class_name = claim_class(&claim);
        let Some(class) = typed::get::<StorageClass>(&self.cluster, "", &class_name).await? else {
            return Ok(None);
        };
        if class.provisioner != PROVISIONER {
            return Ok(None);
        }
        let name = volume_name(&claim);
        if typed::get::<PersistentVolume>(&self.cluster, "", &name)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        if let Some(why) = refusal(&claim) {
            self.failed(&claim, &class_name, &why).await;
            return Ok(None);
        }
        let Some(node_name) = annotation(&claim.metadata.annotations, ANN_SELECTED_NODE) else {
            self.failed(
                &claim,
                &class_name,
                "configuration error, no node was specified",
            )
            .await;
            return Ok(None);
        };
        let Some(node) = typed::get::<Node>(&self.cluster, "", node_name).await? else {
            self.failed(
                &claim,
                &class_name,
                &format!("nodes {node_name:?} not found"),
            )
            .await;
            return Ok(Some(Duration::from_secs(10)));
        };
        let Some(dir) = annotation(&node.metadata.annotations, STORAGE_DIR_ANNOTATION)
            .filter(|d| d.starts_with('/'))
        else {
            self.failed(
                &claim,
                &class_name,
                &format!("node {node_name:?} reports no local-path storage directory ({STORAGE_DIR_ANNOTATION})"),
            )
            .await;
            return Ok(Some(Duration::from_secs(10)));
        };
        self.recorder
            .event(
                pvcs(),
                &claim.metadata,
                "Normal",
                "Provisioning",
                "",
                &format!(
                    "External provisioner is provisioning volume for claim \"{}/{}\"",
                    key.0, key.1
                ),
            )
            .await;
        let pv = volume_for(&claim, &class, &node, dir);
        match self.cluster.create(pvs(), "", pv).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => return Ok(None),
            Err(e) => {
                self.failed(&claim, &class_name, &e.message).await;
                return Err(e.into());
            }
        }
        tracing::info!(volume = %name, node = %node_name, "provisioned a local-path volume");
        self.recorder
            .event(
                pvcs(),
                &claim.metadata,
                "Normal",
                "ProvisioningSucceeded",
                "",
                &format!("Successfully provisioned volume {name}"),
            )
            .await;
        Ok(None)
    }
}
