//! The scheduler's VolumeBinding plugin (upstream
//! `pkg/scheduler/framework/plugins/volumebinding`), for the claims a pod uses
//! (`persistentVolumeClaim` volumes and the `<pod>-<volume>` claims of `ephemeral` ones):
//!
//! * PreFilter: a missing claim, one being deleted, or an unbound claim of an `Immediate`
//!   class (or none) makes the pod unschedulable with upstream's message
//!   (`pod has unbound immediate PersistentVolumeClaims`).
//! * Filter: a bound claim's volume must allow the node (its `nodeAffinity`: `node(s) had
//!   volume node affinity conflict`); an unbound `WaitForFirstConsumer` claim needs an
//!   available volume usable from the node or a class that provisions (`node(s) didn't find
//!   available persistent volumes to bind`); a claim whose node is already selected allows
//!   that node only.
//! * PreBind: the chosen node is written to each unbound claim as
//!   `volume.kubernetes.io/selected-node`, and the pod is bound only once its claims are
//!   bound (the scheduler looks again shortly instead of blocking its one worker).
//!
//! Start at [`gather`], then [`Volumes::filter`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;

use super::filter::{Code, Rejection};
use crate::cluster::ClusterRef;
use crate::volume::{self, ANN_SELECTED_NODE};
use crate::{Error, typed};

/// The claims of one pod, as the scheduling cycle found them.
#[derive(Debug, Default)]
pub(crate) struct Volumes {
    /// Volumes of the pod's bound claims.
    bound: Vec<PersistentVolume>,
    /// Unbound claims of `WaitForFirstConsumer` classes, with their class.
    delayed: Vec<(PersistentVolumeClaim, Option<StorageClass>)>,
    /// Every volume (for delayed claims that could bind to an existing one).
    all: Vec<PersistentVolume>,
}

/// Why the pod cannot be scheduled before any node is looked at (a PreFilter failure).
pub(crate) type PreFilterError = String;

/// The claim names of a pod's volumes.
pub(crate) fn claim_names(pod: &Pod) -> Vec<(String, bool)> {
    let pod_name = typed::name(&pod.metadata);
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some((c.claim_name.clone(), false))
            } else if v.ephemeral.is_some() {
                Some((format!("{pod_name}-{}", v.name), true))
            } else {
                None
            }
        })
        .collect()
}

/// Reads the pod's claims, their volumes and classes (upstream `PreFilter`).
pub(crate) async fn gather(
    cluster: &ClusterRef,
    pod: &Pod,
) -> Result<Result<Volumes, PreFilterError>, Error> {
    let names = claim_names(pod);
    let mut out = Volumes::default();
    if names.is_empty() {
        return Ok(Ok(out));
    }
    let ns = typed::namespace(&pod.metadata);
    let mut unbound_immediate = false;
    for (name, ephemeral) in names {
        let Some(claim) = typed::get::<PersistentVolumeClaim>(cluster, ns, &name).await? else {
            return Ok(Err(if ephemeral {
                format!(
                    "waiting for ephemeral volume controller to create the persistentvolumeclaim {name:?}"
                )
            } else {
                format!("persistentvolumeclaim {name:?} not found")
            }));
        };
        if claim.metadata.deletion_timestamp.is_some() {
            return Ok(Err(format!(
                "persistentvolumeclaim {name:?} is being deleted"
            )));
        }
        let volume_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if !volume_name.is_empty() {
            match typed::get::<PersistentVolume>(cluster, "", &volume_name).await? {
                Some(v) => out.bound.push(v),
                None => {
                    return Ok(Err(format!("persistentvolume {volume_name:?} not found")));
                }
            }
            continue;
        }
        let class_name = volume::claim_class(&claim);
        let class = if class_name.is_empty() {
            None
        } else {
            typed::get::<StorageClass>(cluster, "", &class_name).await?
        };
        let wffc = class
            .as_ref()
            .and_then(|c| c.volume_binding_mode.as_deref())
            == Some("WaitForFirstConsumer");
        if wffc {
            out.delayed.push((claim, class));
        } else {
            unbound_immediate = true;
        }
    }
    if unbound_immediate {
        return Ok(Err(
            "pod has unbound immediate PersistentVolumeClaims".to_string()
        ));
    }
    if !out.delayed.is_empty() {
        out.all = typed::list::<PersistentVolume>(cluster, None).await?;
    }
    Ok(Ok(out))
}

impl Volumes {
    /// The Filter of the plugin for one node.
    pub(crate) fn filter(&self, node: &Node) -> Result<(), Rejection> {
        let name = typed::name(&node.metadata);
        let labels: BTreeMap<String, String> = node.metadata.labels.clone().unwrap_or_default();
        for v in &self.bound {
            if !volume::node_affinity_allows(v, name, &labels) {
                return Err(Rejection {
                    code: Code::Unresolvable,
                    reasons: vec!["node(s) had volume node affinity conflict".into()],
                });
            }
        }
        for (claim, class) in &self.delayed {
            if let Some(selected) = claim
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_SELECTED_NODE))
            {
                if selected != name {
                    return Err(Rejection {
                        code: Code::Unresolvable,
                        reasons: vec!["node(s) had volume node affinity conflict".into()],
                    });
                }
                continue;
            }
            let existing = volume::find_match(claim, &self.all, Some(node), false).is_some();
            let provisions = class
                .as_ref()
                .is_some_and(|c| c.provisioner != "kubernetes.io/no-provisioner");
            if !existing && !provisions {
                return Err(Rejection {
                    code: Code::Unresolvable,
                    reasons: vec![
                        "node(s) didn't find available persistent volumes to bind".into(),
                    ],
                });
            }
        }
        Ok(())
    }

    /// Whether claims still wait for their binding (the pod is not bound yet).
    pub(crate) fn waiting(&self) -> bool {
        !self.delayed.is_empty()
    }

    /// PreBind: writes the chosen node to each delayed claim that has none.
    pub(crate) async fn select_node(&self, cluster: &ClusterRef, node: &str) -> Result<(), Error> {
        for (claim, _) in &self.delayed {
            let has = claim
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(ANN_SELECTED_NODE));
            if has {
                continue;
            }
            typed::edit(cluster, claim, crate::cluster::Subresource::Main, |o| {
                let ann = &mut o["metadata"]["annotations"];
                if !ann.is_object() {
                    *ann = serde_json::json!({});
                }
                if ann[ANN_SELECTED_NODE].is_string() {
                    return false;
                }
                ann[ANN_SELECTED_NODE] = serde_json::json!(node);
                true
            })
            .await?;
        }
        Ok(())
    }
}
