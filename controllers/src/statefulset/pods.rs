//! What a StatefulSet's pods and claims are (upstream `stateful_set_utils.go`): names
//! `<set>-<ordinal>`, the identity labels (`statefulset.kubernetes.io/pod-name`,
//! `apps.kubernetes.io/pod-index`), hostname and subdomain, the revision label
//! (`controller-revision-hash`, the revision's name), claims `<template>-<set>-<ordinal>`
//! from the volume claim templates, revision data (the template with `$patch: replace`)
//! and the pod facts the controller waits on.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::history;
use crate::pod::typed::{is_available, is_ready};
use crate::typed;

/// The pod's name label (upstream `StatefulSetPodNameLabel`).
pub(crate) const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The pod's ordinal label (upstream `PodIndexLabel`).
pub(crate) const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The pod's revision label (upstream `ControllerRevisionHashLabelKey`).
pub(crate) const REVISION_LABEL: &str = "controller-revision-hash";

/// Spec accessors with upstream's defaults.
pub(crate) trait StatefulSetExt {
    /// `spec.replicas` (1 when unset).
    fn replicas(&self) -> i64;
    /// `spec.ordinals.start` (0).
    fn start_ordinal(&self) -> i64;
    /// `spec.minReadySeconds` (0).
    fn min_ready_seconds(&self) -> i64;
    /// `podManagementPolicy: Parallel`.
    fn allows_burst(&self) -> bool;
    /// `updateStrategy.rollingUpdate` is set.
    fn has_rolling_update(&self) -> bool;
    /// `status.currentReplicas` (0).
    fn current_replicas(&self) -> i64;
    /// `updateStrategy.type` is RollingUpdate (or unset).
    fn is_rolling_update(&self) -> bool;
    /// `rollingUpdate.partition` (0).
    fn partition(&self) -> i64;
    /// `rollingUpdate.maxUnavailable` scaled to the replicas, rounded up, at least 1;
    /// `None` when unset.
    fn max_unavailable(&self) -> Option<usize>;
    /// `persistentVolumeClaimRetentionPolicy.whenScaled` (Retain).
    fn when_scaled(&self) -> &str;
    /// `persistentVolumeClaimRetentionPolicy.whenDeleted` (Retain).
    fn when_deleted(&self) -> &str;
}

impl StatefulSetExt for StatefulSet {
    fn replicas(&self) -> i64 {
        self.spec.replicas.map_or(1, i64::from).max(0)
    }
    fn start_ordinal(&self) -> i64 {
        self.spec
            .ordinals
            .as_ref()
            .and_then(|o| o.start)
            .map_or(0, i64::from)
            .max(0)
    }
    fn min_ready_seconds(&self) -> i64 {
        self.spec.min_ready_seconds.map_or(0, i64::from)
    }
    fn allows_burst(&self) -> bool {
        self.spec.pod_management_policy.as_deref() == Some("Parallel")
    }
    fn has_rolling_update(&self) -> bool {
        self.spec
            .update_strategy
            .as_ref()
            .is_some_and(|s| s.rolling_update.is_some())
    }
    fn current_replicas(&self) -> i64 {
        self.status
            .as_ref()
            .and_then(|s| s.current_replicas)
            .map_or(0, i64::from)
    }
    fn is_rolling_update(&self) -> bool {
        let t = self
            .spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref());
        matches!(t, None | Some("RollingUpdate"))
    }
    fn partition(&self) -> i64 {
        self.spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .map_or(0, i64::from)
            .max(0)
    }
    fn max_unavailable(&self) -> Option<usize> {
        let v = self
            .spec
            .update_strategy
            .as_ref()?
            .rolling_update
            .as_ref()?
            .max_unavailable
            .as_ref()?;
        let replicas = self.replicas();
        // upstream getStatefulSetMaxUnavailable: a percentage rounds down, then at least 1.
        let n = match v {
            IntOrString::Int(i) => i64::from(*i),
            IntOrString::String(s) => {
                let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
                pct * replicas / 100
            }
        };
        Some(usize::try_from(n.max(1)).unwrap_or(1))
    }
    fn when_scaled(&self) -> &str {
        self.spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .and_then(|p| p.when_scaled.as_deref())
            .unwrap_or("Retain")
    }
    fn when_deleted(&self) -> &str {
        self.spec
            .persistent_volume_claim_retention_policy
            .as_ref()
            .and_then(|p| p.when_deleted.as_deref())
            .unwrap_or("Retain")
    }
}

/// Upstream `getParentNameAndOrdinal`: `(parent, ordinal)` of `<parent>-<digits>`.
fn parent_and_ordinal(name: &str) -> Option<(&str, i64)> {
    let (parent, ord) = name.rsplit_once('-')?;
    if ord.is_empty() || !ord.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ord.parse().ok()?))
}

/// The set a pod name belongs to.
pub(crate) fn parent_of(name: &str) -> Option<&str> {
    parent_and_ordinal(name).map(|(p, _)| p)
}

/// The ordinal of a pod name.
pub(crate) fn ordinal_of(name: &str) -> Option<i64> {
    parent_and_ordinal(name).map(|(_, o)| o)
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Upstream `isCreated`: the pod has a phase.
pub(crate) fn is_created(p: &Pod) -> bool {
    !phase(p).is_empty()
}

/// Upstream `isFailed`.
pub(crate) fn is_failed(p: &Pod) -> bool {
    phase(p) == "Failed"
}

/// Upstream `isSucceeded`.
pub(crate) fn is_succeeded(p: &Pod) -> bool {
    phase(p) == "Succeeded"
}

/// Upstream `isTerminating`.
pub(crate) fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

/// Upstream `isRunningAndReady`.
pub(crate) fn is_running_and_ready(p: &Pod) -> bool {
    phase(p) == "Running" && is_ready(p)
}

/// Upstream `isRunningAndAvailable`.
pub(crate) fn is_running_and_available(p: &Pod, min_ready: i64, now: i64) -> bool {
    phase(p) == "Running" && is_available(p, min_ready, now)
}

/// Upstream `isHealthy`: running, ready and not terminating.
pub(crate) fn is_healthy(p: &Pod) -> bool {
    is_running_and_ready(p) && !is_terminating(p)
}

/// Upstream `getPersistentVolumeClaimName`.
pub(crate) fn claim_name(template: &str, set: &str, ordinal: i64) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The PersistentVolumeClaim resource, when this server serves it.
pub(crate) fn claims_info() -> Option<&'static api::registry::ResourceInfo> {
    api::registry::by_kind("v1", "PersistentVolumeClaim")
}

/// A controller reference to `pod` (claims of condemned pods with `whenScaled: Delete`;
/// upstream `addControllerRef`).
pub(crate) fn owner_ref_to_pod(pod: &Pod) -> OwnerReference {
    typed::controller_ref_to(pod)
}

/// Upstream `getPersistentVolumeClaims`: the claims of ordinal `ordinal`, as JSON to create
/// (name, namespace, the template's labels plus the selector's matchLabels, the template's
/// spec; owned by the set when `whenDeleted: Delete`).
pub(crate) fn claims_for(set: &StatefulSet, ordinal: i64) -> Vec<Value> {
    let set_name = typed::name(&set.metadata);
    let ns = typed::namespace(&set.metadata);
    let match_labels = set.spec.selector.match_labels.clone().unwrap_or_default();
    set.spec
        .volume_claim_templates
        .iter()
        .flatten()
        .map(|t| {
            let tname = t.metadata.name.as_deref().unwrap_or("");
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(match_labels.clone());
            let mut metadata = json!({
                "name": claim_name(tname, set_name, ordinal),
                "namespace": ns,
                "labels": labels,
            });
            if let Some(a) = t.metadata.annotations.as_ref().filter(|a| !a.is_empty()) {
                metadata["annotations"] = json!(a);
            }
            if set.when_deleted() == "Delete" {
                metadata["ownerReferences"] = json!([typed::controller_ref_to(set)]);
            }
            json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": metadata,
                "spec": t.spec.clone().map_or(json!({}), |s| json!(s)),
            })
        })
        .collect()
}

/// Upstream `getPatch`: the revision data, `{"spec":{"template":{…,"$patch":"replace"}}}`.
pub(crate) fn revision_data(set: &StatefulSet) -> Value {
    let mut template = serde_json::to_value(&set.spec.template).unwrap_or_else(|_| json!({}));
    if let Some(m) = template.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// Upstream `newRevision`: a revision of the set's template, numbered `revision`, with the
/// set's annotations.
pub(crate) fn new_revision(
    set: &StatefulSet,
    revision: i64,
    collision_count: i32,
) -> ControllerRevision {
    history::new_revision(
        &set.metadata,
        typed::controller_ref_to(set),
        set.spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref()),
        set.metadata.annotations.as_ref(),
        revision_data(set),
        revision,
        Some(collision_count),
    )
}

/// Upstream `ApplyRevision`: the set with the revision's template.
pub(crate) fn apply_revision(set: &StatefulSet, revision: &ControllerRevision) -> StatefulSet {
    let mut out = set.clone();
    let data = history::data_of(revision);
    if let Some(t) = data.pointer("/spec/template") {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("$patch");
        }
        if let Ok(t) = serde_json::from_value::<PodTemplateSpec>(t) {
            out.spec.template = t;
        }
    }
    out
}

/// Upstream `newStatefulSetPod`: the pod of `ordinal` from the set's template (generateName
/// `<set>-`, controller reference), with its identity and storage.
pub(crate) fn new_pod(set: &StatefulSet, ordinal: i64) -> Pod {
    let set_name = typed::name(&set.metadata);
    let name = format!("{set_name}-{ordinal}");
    let tm = set.spec.template.metadata.clone().unwrap_or_default();
    let mut labels = tm.labels.clone().unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    let mut spec = set.spec.template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    spec.subdomain = set.spec.service_name.clone().filter(|s| !s.is_empty());
    // upstream updateStorage: each claim template becomes the volume of its name (first),
    // replacing a template volume of that name.
    let mut volumes: Vec<Volume> = Vec::new();
    for t in set.spec.volume_claim_templates.iter().flatten() {
        let tname = t.metadata.name.clone().unwrap_or_default();
        volumes.push(Volume {
            name: tname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&tname, set_name, ordinal),
                read_only: None,
            }),
            ..Volume::default()
        });
    }
    for v in spec.volumes.take().unwrap_or_default() {
        if !volumes.iter().any(|c| c.name == v.name) {
            volumes.push(v);
        }
    }
    if !volumes.is_empty() {
        spec.volumes = Some(volumes);
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            generate_name: Some(format!("{set_name}-")),
            owner_references: Some(vec![typed::controller_ref_to(set)]),
            labels: Some(labels),
            annotations: tm.annotations.clone(),
            finalizers: tm.finalizers.clone(),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Upstream `newVersionedStatefulSetPod`: ordinals below the partition (RollingUpdate) are
/// made from the current revision, the others from the update revision.
pub(crate) fn new_versioned_pod(
    current_set: &StatefulSet,
    update_set: &StatefulSet,
    current: &str,
    update: &str,
    ordinal: i64,
) -> Pod {
    let start = current_set.start_ordinal();
    let below_partition = current_set.is_rolling_update()
        && if current_set.has_rolling_update() {
            ordinal < start + current_set.partition()
        } else {
            ordinal < start + current_set.current_replicas()
        };
    let (from, rev) = if below_partition {
        (current_set, current)
    } else {
        (update_set, update)
    };
    let mut pod = new_pod(from, ordinal);
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION_LABEL.into(), rev.to_string());
    pod
}

/// Upstream `identityMatches` (the labels part; hostname and subdomain are immutable on a
/// pod).
pub(crate) fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let name = typed::name(&pod.metadata);
    let labels = pod.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    parent_of(name) == Some(typed::name(&set.metadata))
        && label(POD_NAME_LABEL) == Some(name)
        && label(POD_INDEX_LABEL) == ordinal_of(name).map(|o| o.to_string()).as_deref()
}
