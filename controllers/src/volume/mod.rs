//! Storage controllers, after upstream's `pkg/controller/volume`: the PersistentVolume
//! controller (the binder, `persistentvolume/pv_controller.go`; here), the built-in
//! local-path provisioner k3s ships ([`provisioner`]), the PVC and PV protection controllers
//! ([`protection`]) and the generic ephemeral volume controller ([`ephemeral`]).
//!
//! The binder pairs claims with volumes: [`find_match`] is upstream's `FindMatchingVolume`
//! (class, access modes, selector, volume mode, node affinity for a claim with a selected
//! node, smallest fit; a volume pre-bound to the claim wins); [`Controller::sync_claim`] and
//! [`Controller::sync_volume`] are `syncClaim` and `syncVolume` (phases, the
//! `pv.kubernetes.io/bind-completed` / `bound-by-controller` annotations, the
//! storage-provisioner annotations, `WaitForFirstConsumer`, reclaim `Retain` and `Delete`).
//!
//! Differences from upstream: a claim of a `WaitForFirstConsumer` class is bound (to an
//! existing volume or a provisioned one) by this controller once the scheduler has set
//! `volume.kubernetes.io/selected-node`, not by the scheduler's volume binder; `Recycle` is
//! not supported (the volume goes `Failed`, as upstream without a recycler plugin).

pub mod ephemeral;
pub mod protection;
pub mod provisioner;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use api::quantity::Quantity;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, Subresource};
use crate::events::{Recorder, Style};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Change, Delta};
use crate::{Error, typed};

/// `pv.kubernetes.io/bind-completed`: the claim's binding is done.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// `pv.kubernetes.io/bound-by-controller`: the controller (not a user) made this binding.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// `volume.kubernetes.io/selected-node`: the node the scheduler chose for a delayed claim.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// `volume.beta.kubernetes.io/storage-provisioner` (still written, as upstream).
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// `volume.kubernetes.io/storage-provisioner`: who is to provision the claim.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// `pv.kubernetes.io/provisioned-by`: who provisioned a volume.
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The beta class annotation, honoured before `storageClassName` as upstream does.
pub const ANN_BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// Upstream's periodic resync of the PV controller (`--pvclaimbinder-sync-period`).
const RESYNC: Duration = Duration::from_secs(15);
const WORKERS: usize = 1;

/// What the binder's queue holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// A claim `(namespace, name)`.
    Claim(String, String),
    /// A volume.
    Volume(String),
    /// Every claim not bound yet (a volume or class changed, one may now fit).
    Unbound,
}

pub(crate) fn pvs() -> &'static api::registry::ResourceInfo {
    typed::info::<PersistentVolume>()
}
pub(crate) fn pvcs() -> &'static api::registry::ResourceInfo {
    typed::info::<PersistentVolumeClaim>()
}
pub(crate) fn classes() -> &'static api::registry::ResourceInfo {
    typed::info::<StorageClass>()
}

/// Runs every storage controller until `shutdown`.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    tokio::join!(
        run_binder(cluster.clone(), shutdown.clone()),
        provisioner::run(cluster.clone(), shutdown.clone()),
        protection::run(cluster.clone(), shutdown.clone()),
        ephemeral::run(cluster, shutdown),
    );
}

/// Runs the PersistentVolume controller (binder) until `shutdown`.
pub async fn run_binder(cluster: ClusterRef, shutdown: CancellationToken) {
    let c = Arc::new(Controller {
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        recorder: Recorder::new(
            cluster.clone(),
            "persistentvolume-controller",
            Style::Legacy,
        ),
    });
    let resync = {
        let c = c.clone();
        let shutdown = shutdown.clone();
        async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RESYNC) => c.queue.add(Key::Unbound),
                }
            }
        }
    };
    let infos = [pvcs(), pvs(), classes()];
    tokio::join!(
        crate::queue::drive(&cluster, c, &infos, WORKERS, &shutdown),
        resync
    );
}

pub(crate) struct Controller {
    cluster: ClusterRef,
    queue: WorkQueue<Key>,
    recorder: Recorder,
}

impl Reconciler for Controller {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    fn observe(&self, change: Change) {
        let (Delta::Upsert(obj) | Delta::Delete(obj)) = &change.delta else {
            return;
        };
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        if std::ptr::eq(change.info, pvcs()) {
            let ns = obj["metadata"]["namespace"].as_str().unwrap_or("");
            self.queue.add(Key::Claim(ns.to_string(), name));
            if let Some(v) = obj["spec"]["volumeName"].as_str().filter(|v| !v.is_empty()) {
                self.queue.add(Key::Volume(v.to_string()));
            }
        } else if std::ptr::eq(change.info, pvs()) {
            self.queue.add(Key::Volume(name));
            let r = &obj["spec"]["claimRef"];
            if let (Some(ns), Some(n)) = (r["namespace"].as_str(), r["name"].as_str()) {
                self.queue.add(Key::Claim(ns.to_string(), n.to_string()));
            }
            self.queue.add(Key::Unbound);
        } else {
            self.queue.add(Key::Unbound);
        }
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        match key {
            Key::Claim(ns, name) => {
                if let Some(claim) =
                    typed::get::<PersistentVolumeClaim>(&self.cluster, &ns, &name).await?
                {
                    self.sync_claim(&claim).await?;
                }
            }
            Key::Volume(name) => {
                if let Some(pv) = typed::get::<PersistentVolume>(&self.cluster, "", &name).await? {
                    self.sync_volume(&pv).await?;
                }
            }
            Key::Unbound => {
                for c in typed::list::<PersistentVolumeClaim>(&self.cluster, None).await? {
                    if !has_annotation(&c.metadata.annotations, ANN_BIND_COMPLETED) {
                        let (ns, n) = typed::key_of(&c.metadata);
                        self.queue.add(Key::Claim(ns, n));
                    }
                }
                for v in typed::list::<PersistentVolume>(&self.cluster, None).await? {
                    self.queue
                        .add(Key::Volume(typed::name(&v.metadata).to_string()));
                }
            }
        }
        Ok(None)
    }
}

fn has_annotation(a: &Option<std::collections::BTreeMap<String, String>>, k: &str) -> bool {
    a.as_ref().is_some_and(|m| m.contains_key(k))
}

fn annotation<'a>(
    a: &'a Option<std::collections::BTreeMap<String, String>>,
    k: &str,
) -> Option<&'a str> {
    a.as_ref().and_then(|m| m.get(k)).map(String::as_str)
}

/// Upstream `GetPersistentVolumeClaimClass`: the beta annotation, then the field.
pub fn claim_class(c: &PersistentVolumeClaim) -> String {
    annotation(&c.metadata.annotations, ANN_BETA_CLASS)
        .map(str::to_string)
        .or_else(|| c.spec.as_ref().and_then(|s| s.storage_class_name.clone()))
        .unwrap_or_default()
}

/// Upstream `GetPersistentVolumeClass`.
pub fn volume_class(v: &PersistentVolume) -> String {
    annotation(&v.metadata.annotations, ANN_BETA_CLASS)
        .map(str::to_string)
        .or_else(|| v.spec.as_ref().and_then(|s| s.storage_class_name.clone()))
        .unwrap_or_default()
}

/// The storage request of a claim.
pub fn claim_request(c: &PersistentVolumeClaim) -> Option<Quantity> {
    c.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
}

fn volume_size(v: &PersistentVolume) -> Option<Quantity> {
    v.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
}

fn volume_phase(v: &PersistentVolume) -> &str {
    v.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn claim_phase(c: &PersistentVolumeClaim) -> &str {
    c.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Upstream `IsVolumeBoundToClaim`: the volume's claimRef names the claim (and its uid, when
/// the ref has one).
pub fn bound_to(v: &PersistentVolume, c: &PersistentVolumeClaim) -> bool {
    let Some(r) = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.name.as_deref() == c.metadata.name.as_deref()
        && r.namespace.as_deref() == c.metadata.namespace.as_deref()
        && r.uid
            .as_deref()
            .is_none_or(|u| u.is_empty() || Some(u) == c.metadata.uid.as_deref())
}

/// Upstream `CheckNodeAffinity`: whether the volume may be used from a node with `labels`
/// (any term must match; every expression of a term; `metadata.name` match fields).
pub fn node_affinity_allows(
    v: &PersistentVolume,
    node_name: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    let Some(req) = v
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    req.node_selector_terms.iter().any(|t| {
        let exprs_ok = t.match_expressions.iter().flatten().all(|e| {
            let got = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or(&[]);
            match e.operator.as_str() {
                "In" => got.is_some_and(|g| values.contains(g)),
                "NotIn" => got.is_none_or(|g| !values.contains(g)),
                "Exists" => got.is_some(),
                "DoesNotExist" => got.is_none(),
                "Gt" | "Lt" => {
                    let (Some(g), Some(w)) = (
                        got.and_then(|g| g.parse::<i64>().ok()),
                        values.first().and_then(|w| w.parse::<i64>().ok()),
                    ) else {
                        return false;
                    };
                    if e.operator == "Gt" { g > w } else { g < w }
                }
                _ => false,
            }
        });
        let fields_ok = t.match_fields.iter().flatten().all(|f| {
            let values = f.values.as_deref().unwrap_or(&[]);
            f.key == "metadata.name"
                && match f.operator.as_str() {
                    "In" => values.iter().any(|v| v == node_name),
                    "NotIn" => !values.iter().any(|v| v == node_name),
                    _ => false,
                }
        });
        let empty = t.match_expressions.as_ref().is_none_or(Vec::is_empty)
            && t.match_fields.as_ref().is_none_or(Vec::is_empty);
        !empty && exprs_ok && fields_ok
    })
}

/// Upstream `FindMatchingVolume` for `claim` among `volumes`: a volume pre-bound to the
/// claim wins; otherwise the smallest Available volume of the claim's class and volume mode,
/// with every requested access mode, matching the selector and (with `node`) the node
/// affinity, big enough. `delay`: the claim's class waits for its first consumer and no node
/// is selected yet, so only a pre-bound volume may be bound.
pub fn find_match<'a>(
    claim: &PersistentVolumeClaim,
    volumes: &'a [PersistentVolume],
    node: Option<&Node>,
    delay: bool,
) -> Option<&'a PersistentVolume> {
    let request = claim_request(claim)?;
    let spec = claim.spec.as_ref()?;
    let class = claim_class(claim);
    let mode = spec.volume_mode.as_deref().unwrap_or("Filesystem");
    let wanted = spec.access_modes.clone().unwrap_or_default();
    let selector = spec.selector.as_ref();
    let mut best: Option<(&PersistentVolume, Quantity)> = None;
    for v in volumes {
        let Some(vs) = v.spec.as_ref() else { continue };
        if vs.volume_mode.as_deref().unwrap_or("Filesystem") != mode {
            continue;
        }
        if v.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(size) = volume_size(v) else { continue };
        if let Some(n) = node {
            let labels = n.metadata.labels.clone().unwrap_or_default();
            if !node_affinity_allows(v, typed::name(&n.metadata), &labels) {
                continue;
            }
        }
        if bound_to(v, claim) {
            // Pre-bound (by a user or by us): the match, if big enough and of the class.
            if size >= request && volume_class(v) == class {
                return Some(v);
            }
            continue;
        }
        if vs.claim_ref.is_some() || delay {
            continue;
        }
        if matches!(volume_phase(v), "Released" | "Failed") {
            continue;
        }
        if let Some(sel) = selector {
            let labels = v.metadata.labels.clone().unwrap_or_default();
            let matches = api::selector::LabelSelector::from_k8s(sel)
                .map(|s| s.matches(&labels))
                .unwrap_or(false);
            if !matches {
                continue;
            }
        }
        if volume_class(v) != class {
            continue;
        }
        let modes = vs.access_modes.clone().unwrap_or_default();
        if !wanted.iter().all(|m| modes.contains(m)) {
            continue;
        }
        if size < request {
            continue;
        }
        if best.as_ref().is_none_or(|(_, b)| size < *b) {
            best = Some((v, size));
        }
    }
    best.map(|(v, _)| v)
}

impl Controller {
    /// Upstream `syncClaim`.
    pub(crate) async fn sync_claim(&self, claim: &PersistentVolumeClaim) -> Result<(), Error> {
        if claim.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        if has_annotation(&claim.metadata.annotations, ANN_BIND_COMPLETED) {
            self.sync_bound_claim(claim).await
        } else {
            self.sync_unbound_claim(claim).await
        }
    }

    async fn class(&self, name: &str) -> Result<Option<StorageClass>, Error> {
        if name.is_empty() {
            return Ok(None);
        }
        typed::get::<StorageClass>(&self.cluster, "", name).await
    }

    async fn event(&self, claim: &PersistentVolumeClaim, ty: &str, reason: &str, msg: &str) {
        self.recorder
            .event(pvcs(), &claim.metadata, ty, reason, "", msg)
            .await;
    }

    async fn volume_event(&self, v: &PersistentVolume, ty: &str, reason: &str, msg: &str) {
        self.recorder
            .event(pvs(), &v.metadata, ty, reason, "", msg)
            .await;
    }

    async fn sync_unbound_claim(&self, claim: &PersistentVolumeClaim) -> Result<(), Error> {
        let volume_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if !volume_name.is_empty() {
            // Pre-bound by the user to a named volume.
            let Some(v) = typed::get::<PersistentVolume>(&self.cluster, "", &volume_name).await?
            else {
                return self.set_claim_phase(claim, "Pending", None).await;
            };
            let bound_elsewhere = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_some()
                && !bound_to(&v, claim);
            if bound_elsewhere {
                if claim_phase(claim) != "Pending" {
                    self.set_claim_phase(claim, "Pending", None).await?;
                }
                self.event(
                    claim,
                    "Warning",
                    "FailedBinding",
                    &format!("volume {volume_name:?} already bound to a different claim."),
                )
                .await;
                return Ok(());
            }
            return self.bind(&v, claim).await;
        }
        let class_name = claim_class(claim);
        let class = self.class(&class_name).await?;
        let wffc = class
            .as_ref()
            .and_then(|c| c.volume_binding_mode.as_deref())
            == Some("WaitForFirstConsumer");
        let selected =
            annotation(&claim.metadata.annotations, ANN_SELECTED_NODE).map(str::to_string);
        let node = match &selected {
            Some(n) => typed::get::<Node>(&self.cluster, "", n).await?,
            None => None,
        };
        let delay = wffc && selected.is_none();
        let volumes = typed::list::<PersistentVolume>(&self.cluster, None).await?;
        if let Some(v) = find_match(claim, &volumes, node.as_ref(), delay) {
            return self.bind(v, claim).await;
        }
        if delay {
            self.event(
                claim,
                "Normal",
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            )
            .await;
            return self.set_claim_phase(claim, "Pending", None).await;
        }
        match class {
            Some(c) if !class_name.is_empty() => self.provision(claim, &c).await,
            _ if class_name.is_empty() => {
                self.set_claim_phase(claim, "Pending", None).await?;
                self.event(
                    claim,
                    "Normal",
                    "FailedBinding",
                    "no persistent volumes available for this claim and no storage class is set",
                )
                .await;
                Ok(())
            }
            _ => {
                self.set_claim_phase(claim, "Pending", None).await?;
                self.event(
                    claim,
                    "Warning",
                    "ProvisioningFailed",
                    &format!("storageclass.storage.k8s.io {class_name:?} not found"),
                )
                .await;
                Ok(())
            }
        }
    }

    /// `provisionClaim` for an external provisioner: the claim is annotated with it (the
    /// provisioner acts on the annotation) and the event says what it waits for.
    async fn provision(
        &self,
        claim: &PersistentVolumeClaim,
        class: &StorageClass,
    ) -> Result<(), Error> {
        let provisioner = class.provisioner.clone();
        let already = annotation(&claim.metadata.annotations, ANN_STORAGE_PROVISIONER)
            == Some(provisioner.as_str());
        if !already {
            let p = provisioner.clone();
            typed::edit(&self.cluster, claim, Subresource::Main, move |o| {
                let ann = &mut o["metadata"]["annotations"];
                if !ann.is_object() {
                    *ann = json!({});
                }
                ann[ANN_BETA_STORAGE_PROVISIONER] = json!(p);
                ann[ANN_STORAGE_PROVISIONER] = json!(p);
                true
            })
            .await?;
        }
        self.event(
            claim,
            "Normal",
            "ExternalProvisioning",
            &format!(
                "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
            ),
        )
        .await;
        Ok(())
    }

    /// Upstream `bind`: the volume's claimRef and Bound phase, then the claim's volumeName,
    /// annotations and Bound status.
    async fn bind(&self, v: &PersistentVolume, claim: &PersistentVolumeClaim) -> Result<(), Error> {
        let claim_ref = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": typed::namespace(&claim.metadata),
            "name": typed::name(&claim.metadata),
            "uid": typed::uid(&claim.metadata),
            "resourceVersion": claim.metadata.resource_version.clone().unwrap_or_default(),
        });
        let prebound = bound_to(v, claim);
        let Some(stored) = typed::edit(&self.cluster, v, Subresource::Main, |o| {
            let same = o["spec"]["claimRef"]["uid"].as_str() == claim.metadata.uid.as_deref();
            if same {
                return false;
            }
            if !prebound {
                let ann = &mut o["metadata"]["annotations"];
                if !ann.is_object() {
                    *ann = json!({});
                }
                ann[ANN_BOUND_BY_CONTROLLER] = json!("yes");
            }
            o["spec"]["claimRef"] = claim_ref.clone();
            true
        })
        .await?
        else {
            return Ok(());
        };
        let stored: PersistentVolume = typed::decode(&stored)?;
        self.set_volume_phase(&stored, "Bound", None).await?;
        let vname = typed::name(&v.metadata).to_string();
        let by_controller = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .is_none_or(str::is_empty);
        let Some(updated) = typed::edit(&self.cluster, claim, Subresource::Main, |o| {
            let mut changed = false;
            if o["spec"]["volumeName"].as_str() != Some(vname.as_str()) {
                o["spec"]["volumeName"] = json!(vname);
                changed = true;
            }
            let ann = &mut o["metadata"]["annotations"];
            if !ann.is_object() {
                *ann = json!({});
            }
            if ann[ANN_BIND_COMPLETED] != json!("yes") {
                ann[ANN_BIND_COMPLETED] = json!("yes");
                changed = true;
            }
            if by_controller && ann[ANN_BOUND_BY_CONTROLLER] != json!("yes") {
                ann[ANN_BOUND_BY_CONTROLLER] = json!("yes");
                changed = true;
            }
            changed
        })
        .await?
        else {
            return Ok(());
        };
        let updated: PersistentVolumeClaim = typed::decode(&updated)?;
        self.set_claim_phase(&updated, "Bound", Some(&stored)).await
    }

    async fn sync_bound_claim(&self, claim: &PersistentVolumeClaim) -> Result<(), Error> {
        let volume_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if volume_name.is_empty() {
            if claim_phase(claim) != "Lost" {
                self.set_claim_phase(claim, "Lost", None).await?;
                self.event(
                    claim,
                    "Warning",
                    "ClaimLost",
                    "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
                )
                .await;
            }
            return Ok(());
        }
        let Some(v) = typed::get::<PersistentVolume>(&self.cluster, "", &volume_name).await? else {
            if claim_phase(claim) != "Lost" {
                self.set_claim_phase(claim, "Lost", None).await?;
                self.event(
                    claim,
                    "Warning",
                    "ClaimLost",
                    "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                )
                .await;
            }
            return Ok(());
        };
        let has_ref = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_some();
        if !has_ref || bound_to(&v, claim) {
            return self.bind(&v, claim).await;
        }
        if claim_phase(claim) != "Lost" {
            self.set_claim_phase(claim, "Lost", None).await?;
            self.event(
                claim,
                "Warning",
                "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly",
            )
            .await;
        }
        Ok(())
    }

    /// Upstream `syncVolume`.
    pub(crate) async fn sync_volume(&self, v: &PersistentVolume) -> Result<(), Error> {
        if v.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let Some(r) = v.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
            if volume_phase(v) != "Available" {
                self.set_volume_phase(v, "Available", None).await?;
            }
            return Ok(());
        };
        let uid = r.uid.clone().unwrap_or_default();
        let ns = r.namespace.clone().unwrap_or_default();
        let name = r.name.clone().unwrap_or_default();
        let claim = typed::get::<PersistentVolumeClaim>(&self.cluster, &ns, &name).await?;
        if uid.is_empty() {
            // Pre-bound by a user to a claim not bound yet: the claim's sync binds it.
            if volume_phase(v) != "Available" {
                self.set_volume_phase(v, "Available", None).await?;
            }
            return Ok(());
        }
        let claim = claim.filter(|c| c.metadata.uid.as_deref() == Some(uid.as_str()));
        let Some(claim) = claim else {
            // The claim is gone: the volume is released and reclaimed.
            if !matches!(volume_phase(v), "Released" | "Failed") {
                self.set_volume_phase(v, "Released", None).await?;
            }
            return self.reclaim(v).await;
        };
        let claim_volume = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if claim_volume.is_empty() {
            // The claim's binding is in progress (or waits): its sync finishes it.
            self.queue.add(Key::Claim(ns, name));
            return Ok(());
        }
        if claim_volume == typed::name(&v.metadata) {
            if volume_phase(v) != "Bound" {
                self.set_volume_phase(v, "Bound", None).await?;
            }
            return Ok(());
        }
        // The claim is bound to another volume.
        if has_annotation(&v.metadata.annotations, ANN_BOUND_BY_CONTROLLER) {
            typed::edit(&self.cluster, v, Subresource::Main, |o| {
                if let Some(s) = o["spec"].as_object_mut() {
                    s.remove("claimRef");
                }
                if let Some(a) = o["metadata"]["annotations"].as_object_mut() {
                    a.remove(ANN_BOUND_BY_CONTROLLER);
                }
                true
            })
            .await?;
        } else {
            typed::edit(&self.cluster, v, Subresource::Main, |o| {
                if let Some(r) = o["spec"]["claimRef"].as_object_mut() {
                    r.remove("uid");
                }
                true
            })
            .await?;
        }
        Ok(())
    }

    /// Upstream `reclaimVolume`: Retain keeps the volume Released; Delete of a volume an
    /// external provisioner made is that provisioner's work (the local-path one's is the
    /// agent of the volume's node); anything else cannot be deleted or recycled here.
    async fn reclaim(&self, v: &PersistentVolume) -> Result<(), Error> {
        let policy = v
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            .unwrap_or("Retain");
        match policy {
            "Delete" => {
                if annotation(&v.metadata.annotations, ANN_PROVISIONED_BY).is_some() {
                    return Ok(());
                }
                if volume_phase(v) != "Failed" {
                    let msg = format!(
                        "error getting deleter volume plugin for volume {:?}: no deletable volume plugin matched",
                        typed::name(&v.metadata)
                    );
                    self.set_volume_phase(v, "Failed", Some(&msg)).await?;
                    self.volume_event(v, "Warning", "VolumeFailedDelete", &msg)
                        .await;
                }
            }
            "Recycle" if volume_phase(v) != "Failed" => {
                let msg = "No recycler plugin found for the volume!";
                self.set_volume_phase(v, "Failed", Some(msg)).await?;
                self.volume_event(v, "Warning", "VolumeFailedRecycle", msg)
                    .await;
            }
            _ => {}
        }
        Ok(())
    }

    async fn set_volume_phase(
        &self,
        v: &PersistentVolume,
        phase: &str,
        message: Option<&str>,
    ) -> Result<(), Error> {
        typed::edit(&self.cluster, v, Subresource::Status, |o| {
            let mut changed = false;
            if o["status"]["phase"].as_str() != Some(phase) {
                o["status"]["phase"] = json!(phase);
                changed = true;
            }
            let want = message.map(|m| json!(m));
            let have = o["status"].get("message").cloned();
            if want != have {
                match want {
                    Some(m) => o["status"]["message"] = m,
                    None => {
                        if let Some(s) = o["status"].as_object_mut() {
                            s.remove("message");
                        }
                    }
                }
                changed = true;
            }
            changed
        })
        .await?;
        Ok(())
    }

    /// The claim's status phase; a Bound claim takes the volume's access modes and capacity.
    async fn set_claim_phase(
        &self,
        claim: &PersistentVolumeClaim,
        phase: &str,
        volume: Option<&PersistentVolume>,
    ) -> Result<(), Error> {
        let modes = volume
            .and_then(|v| v.spec.as_ref())
            .and_then(|s| s.access_modes.clone());
        let capacity = volume
            .and_then(|v| v.spec.as_ref())
            .and_then(|s| s.capacity.clone());
        typed::edit(&self.cluster, claim, Subresource::Status, |o| {
            let before = o["status"].clone();
            if !o["status"].is_object() {
                o["status"] = json!({});
            }
            o["status"]["phase"] = json!(phase);
            let st = o["status"].as_object_mut().expect("made an object");
            match phase {
                "Bound" => {
                    if let Some(m) = &modes {
                        st.insert("accessModes".into(), json!(m));
                    }
                    if let Some(c) = &capacity {
                        st.insert("capacity".into(), json!(c));
                    }
                }
                _ => {
                    st.remove("accessModes");
                    st.remove("capacity");
                }
            }
            o["status"] != before
        })
        .await?;
        Ok(())
    }
}
