//! Pure helpers of the deployment controller, after upstream
//! `pkg/controller/deployment/util/deployment_util.go` and the ReplicaSet sorting of
//! `pkg/controller/controller_utils.go`: fenceposts (maxSurge/maxUnavailable), the
//! pod-template hash, template comparison, revisions and annotations, conditions, status,
//! proportional scaling. They read typed Deployments and ReplicaSets (`crate::typed`);
//! annotations are edited as a map (`Annotations`), which `edit_annotations` applies to
//! a stored object.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetStatus,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub(crate) use crate::replicaset::replicas_of as rs_replicas;

/// Label (and selector key) carrying the pod-template hash.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Revision of a ReplicaSet / Deployment.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions of a ReplicaSet that was rolled back to.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the deployment when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` of the deployment when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Longest `revision-history` annotation (upstream `maxRevHistoryLengthInChars`).
const MAX_REV_HISTORY_CHARS: usize = 2000;

/// Condition reasons (upstream `deployment_util.go`).
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
/// See [`NEW_RS_CREATED`].
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
/// See [`NEW_RS_CREATED`].
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
/// See [`NEW_RS_CREATED`].
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// See [`NEW_RS_CREATED`].
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
/// See [`NEW_RS_CREATED`].
pub const PAUSED: &str = "DeploymentPaused";
/// See [`NEW_RS_CREATED`].
pub const RESUMED: &str = "DeploymentResumed";
/// See [`NEW_RS_CREATED`].
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
/// See [`NEW_RS_CREATED`].
pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
/// See [`NEW_RS_CREATED`].
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// Annotations never copied from a deployment to its ReplicaSets (upstream
/// `annotationsToSkip`).
const SKIP_ANNOTATIONS: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// An object's annotations, as edited.
pub(crate) type Annotations = BTreeMap<String, String>;

/// `spec.replicas` of a deployment (defaulted to 1 by the API).
pub(crate) fn replicas(d: &Deployment) -> i64 {
    d.spec.replicas.map_or(1, i64::from)
}

/// `n` as the `int32` of the API, saturating.
pub(crate) fn int32(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
}

/// Whether the strategy is RollingUpdate (the default).
pub(crate) fn is_rolling(d: &Deployment) -> bool {
    let strategy = d.spec.strategy.as_ref();
    strategy
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

/// upstream `intstr.GetScaledValueFromIntOrPercent`; `None` for a malformed value.
fn scaled(v: Option<&IntOrString>, total: i64, round_up: bool) -> Option<i64> {
    match v {
        None => Some(0),
        Some(IntOrString::Int(n)) => Some(i64::from(*n)),
        Some(IntOrString::String(s)) => {
            let p: i64 = s.strip_suffix('%')?.parse().ok()?;
            let x = p * total;
            Some(if round_up {
                (x + 99).div_euclid(100)
            } else {
                x.div_euclid(100)
            })
        }
    }
}

/// upstream `ResolveFenceposts`: (maxSurge rounded up, maxUnavailable rounded down), with
/// maxUnavailable 1 when both come out 0.
pub(crate) fn fenceposts(d: &Deployment) -> (i64, i64) {
    let ru = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let desired = replicas(d);
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), desired, true).unwrap_or(0);
    let mut unavailable =
        scaled(ru.and_then(|r| r.max_unavailable.as_ref()), desired, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

/// upstream `MaxSurge`.
pub(crate) fn max_surge(d: &Deployment) -> i64 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// upstream `MaxUnavailable`.
pub(crate) fn max_unavailable(d: &Deployment) -> i64 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

/// JSON with object keys sorted, so equal templates hash equally.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical(&m[*k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// FNV-1a, 32 bits.
pub(crate) fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(16_777_619)
    })
}

/// upstream `rand.SafeEncodeString`: each character mapped into the alphabet without
/// vowels or confusable digits.
pub(crate) fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.chars()
        .map(|c| ALPHANUMS[(c as usize) % ALPHANUMS.len()] as char)
        .collect()
}

/// upstream `controller.ComputeHash`: FNV-32a of the template and the collision count (as
/// 8 little-endian bytes), its decimal form safe-encoded. Upstream hashes Go's `spew`
/// dump of the struct; paddock hashes the canonical JSON of the (defaulted) template as
/// k8s-openapi serialises it, so names have upstream's shape but not its exact values.
pub(crate) fn compute_hash(template: &Value, collision_count: Option<i32>) -> String {
    let mut text = String::new();
    canonical(template, &mut text);
    let mut bytes = text.into_bytes();
    if let Some(c) = collision_count {
        let mut extra = [0u8; 8];
        // Reinterpreted as upstream's `uint32(*collisionCount)`.
        #[allow(clippy::cast_sign_loss)]
        extra[..4].copy_from_slice(&(c as u32).to_le_bytes());
        bytes.extend_from_slice(&extra);
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// Drops nulls and empty maps/lists, which Kubernetes' semantic equality treats as absent.
fn normalized(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let out: Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| normalized(v).map(|v| (k.clone(), v)))
                .collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(a) => {
            let out: Vec<Value> = a
                .iter()
                .map(|x| normalized(x).unwrap_or(Value::Null))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

/// upstream `EqualIgnoreHash`: templates equal once the pod-template-hash label is removed
/// (upstream's semantic equality: an empty list or map equals an absent one).
pub(crate) fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            l.remove(POD_TEMPLATE_HASH);
        }
        serde_json::to_value(t).ok().map(|v| normalized(&v))
    };
    match (strip(a), strip(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// An annotation of an object.
pub(crate) fn annotation<'a>(m: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    m.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The annotations of an object, created empty when absent.
pub(crate) fn annotations_mut(m: &mut ObjectMeta) -> &mut Annotations {
    m.annotations.get_or_insert_with(Annotations::new)
}

/// Sets an annotation; whether it changed.
pub(crate) fn set_annotation(anns: &mut Annotations, key: &str, value: &str) -> bool {
    if anns.get(key).map(String::as_str) == Some(value) {
        return false;
    }
    anns.insert(key.to_string(), value.to_string());
    true
}

/// Applies `f` to the annotations of a stored object (`metadata.annotations`, written back
/// when `f` says it changed them); whether it did. Annotations that are not a map of
/// strings (validation refuses them) are left alone.
pub(crate) fn edit_annotations(obj: &mut Value, f: impl FnOnce(&mut Annotations) -> bool) -> bool {
    let stored = &obj["metadata"]["annotations"];
    let mut anns = if stored.is_null() {
        Annotations::new()
    } else {
        match Annotations::deserialize(stored) {
            Ok(a) => a,
            Err(_) => return false,
        }
    };
    if !f(&mut anns) {
        return false;
    }
    obj["metadata"]["annotations"] = json!(anns);
    true
}

/// The revision of an object (0 when absent or malformed).
pub(crate) fn revision(m: &ObjectMeta) -> i64 {
    annotation(m, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// upstream `MaxRevision`.
pub(crate) fn max_revision(sets: &[ReplicaSet]) -> i64 {
    sets.iter()
        .map(|rs| revision(&rs.metadata))
        .max()
        .unwrap_or(0)
}

/// upstream `SetReplicasAnnotations`; whether anything changed.
pub(crate) fn set_replicas_annotations(anns: &mut Annotations, desired: i64, max: i64) -> bool {
    let a = set_annotation(anns, DESIRED_REPLICAS, &desired.to_string());
    let b = set_annotation(anns, MAX_REPLICAS, &max.to_string());
    a || b
}

/// upstream `ReplicasAnnotationsNeedUpdate`.
pub(crate) fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i64, max: i64) -> bool {
    annotation(&rs.metadata, DESIRED_REPLICAS) != Some(&desired.to_string())
        || annotation(&rs.metadata, MAX_REPLICAS) != Some(&max.to_string())
}

/// upstream `SetNewReplicaSetAnnotations`: copies the deployment's annotations (but the
/// skipped ones) into a ReplicaSet's, raises the revision to `new_revision` (keeping the old
/// one in `revision-history`), and for a ReplicaSet about to be created sets the replica
/// annotations. Whether anything changed.
pub(crate) fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut Annotations,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if SKIP_ANNOTATIONS.contains(&k.as_str()) {
            continue;
        }
        changed |= set_annotation(rs, k, v);
    }
    let old = rs.get(REVISION).cloned();
    let old_int = match old.as_deref() {
        None | Some("") => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_int < new_revision {
        set_annotation(rs, REVISION, &new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = rs.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                set_annotation(rs, REVISION_HISTORY, &old);
            } else {
                let mut parts: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REV_HISTORY_CHARS && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REV_HISTORY_CHARS {
                    parts = parts.split_off(start);
                    parts.push(&old);
                    set_annotation(rs, REVISION_HISTORY, &parts.join(","));
                }
            }
        }
    }
    if !exists {
        let desired = replicas(d);
        changed |= set_replicas_annotations(rs, desired, desired + max_surge(d));
    }
    changed
}

/// A counter of a ReplicaSet's status (0 without a status).
fn status_count(rs: &ReplicaSet, f: impl Fn(&ReplicaSetStatus) -> Option<i32>) -> i64 {
    rs.status.as_ref().and_then(f).map_or(0, i64::from)
}

/// `status.replicas` (the pods it has).
pub(crate) fn actual(rs: &ReplicaSet) -> i64 {
    status_count(rs, |s| Some(s.replicas))
}

/// `status.readyReplicas`.
pub(crate) fn ready(rs: &ReplicaSet) -> i64 {
    status_count(rs, |s| s.ready_replicas)
}

/// `status.availableReplicas`.
pub(crate) fn available(rs: &ReplicaSet) -> i64 {
    status_count(rs, |s| s.available_replicas)
}

/// Sum of `spec.replicas` (upstream `GetReplicaCountForReplicaSets`).
pub(crate) fn spec_replicas<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    sets.into_iter().map(rs_replicas).sum()
}

/// Sum of a status counter ([`actual`], [`ready`], [`available`]) over the sets.
pub(crate) fn status_sum<'a>(
    sets: impl IntoIterator<Item = &'a ReplicaSet>,
    count: fn(&ReplicaSet) -> i64,
) -> i64 {
    sets.into_iter().map(count).sum()
}

/// Creation time and name, for upstream `ReplicaSetsByCreationTimestamp`.
fn created(rs: &ReplicaSet) -> (i64, &str) {
    let m = &rs.metadata;
    (
        m.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second()),
        m.name.as_deref().unwrap_or(""),
    )
}

/// upstream `ReplicaSetsByCreationTimestamp`: older first, then by name.
pub(crate) fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a).cmp(&created(b))
}

/// upstream `ReplicaSetsBySizeOlder`: larger first, ties older first.
pub(crate) fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// upstream `ReplicaSetsBySizeNewer`: larger first, ties newer first.
pub(crate) fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// upstream `ReplicaSetsByRevision`: lower revision first, ties by creation.
pub(crate) fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(&a.metadata)
        .cmp(&revision(&b.metadata))
        .then_with(|| by_creation(a, b))
}

/// upstream `NewRSNewReplicas`: how big the new ReplicaSet may be now.
pub(crate) fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i64 {
    if !is_rolling(d) {
        return replicas(d);
    }
    let surge = max_surge(d);
    let current = spec_replicas(all.iter().copied());
    let max_total = replicas(d) + surge;
    if current >= max_total {
        return rs_replicas(new_rs);
    }
    let up = (max_total - current).min(replicas(d) - rs_replicas(new_rs));
    rs_replicas(new_rs) + up
}

/// upstream `IsSaturated`.
pub(crate) fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let Some(desired) =
        annotation(&rs.metadata, DESIRED_REPLICAS).and_then(|s| s.parse::<i64>().ok())
    else {
        return false;
    };
    let want = replicas(d);
    rs_replicas(rs) == want && desired == want && available(rs) == want
}

/// upstream `GetReplicaSetProportion`.
pub(crate) fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i64, added: i64) -> i64 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// upstream `getReplicaSetFraction`: the set's share of the new size, from the size it was
/// scaled for (its `max-replicas` annotation, else the deployment's current size).
fn fraction(rs: &ReplicaSet, d: &Deployment) -> i64 {
    if replicas(d) == 0 {
        return -rs_replicas(rs);
    }
    let max = replicas(d) + max_surge(d);
    let annotated = annotation(&rs.metadata, MAX_REPLICAS)
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n != 0)
        .unwrap_or_else(|| {
            let status = d.status.as_ref();
            status.and_then(|s| s.replicas).map_or(0, i64::from)
        });
    if annotated == 0 {
        return 0;
    }
    // Rounded half away from zero, as Go's math.Round.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let size = ((rs_replicas(rs) * max) as f64 / annotated as f64).round() as i64;
    size - rs_replicas(rs)
}

/// The condition `type_` of a deployment status.
pub(crate) fn condition<'a>(
    status: Option<&'a DeploymentStatus>,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some(type_))
}

/// The reason of a condition, `""` when it has none.
pub(crate) fn reason(c: &DeploymentCondition) -> &str {
    c.reason.as_deref().unwrap_or("")
}

/// The current time as `metav1.Time` carries it (whole seconds).
fn now_time() -> Time {
    let now = api::time::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// upstream `NewDeploymentCondition`.
pub(crate) fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> DeploymentCondition {
    let now = now_time();
    DeploymentCondition {
        type_: Some(type_.to_string()),
        status: Some(status.to_string()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
    }
}

/// upstream `SetDeploymentCondition`: no-op when status and reason are unchanged; keeps
/// `lastTransitionTime` when only the reason changes; the condition moves to the end.
pub(crate) fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    let type_ = cond.type_.clone().unwrap_or_default();
    if let Some(cur) = condition(Some(status), &type_) {
        if cur.status == cond.status && cur.reason == cond.reason {
            return;
        }
        if cur.status == cond.status {
            cond.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(status, &type_);
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

/// upstream `RemoveDeploymentCondition` (the list goes when it becomes empty).
pub(crate) fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(list) = status.conditions.as_mut() {
        list.retain(|c| c.type_.as_deref() != Some(type_));
        if list.is_empty() {
            status.conditions = None;
        }
    }
}

/// upstream `HasProgressDeadline`.
pub(crate) fn progress_deadline(d: &Deployment) -> Option<i64> {
    d.spec
        .progress_deadline_seconds
        .filter(|s| *s != i32::MAX)
        .map(i64::from)
}

/// A counter of a deployment status (0 when unset).
fn count(status: &DeploymentStatus, f: impl Fn(&DeploymentStatus) -> Option<i32>) -> i64 {
    f(status).map_or(0, i64::from)
}

/// upstream `DeploymentComplete`.
pub(crate) fn complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let want = replicas(d);
    count(status, |s| s.updated_replicas) == want
        && count(status, |s| s.replicas) == want
        && count(status, |s| s.available_replicas) == want
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// upstream `DeploymentProgressing`: the new status shows progress over the stored one.
pub(crate) fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let none = DeploymentStatus::default();
    let old = d.status.as_ref().unwrap_or(&none);
    let updated = |s: &DeploymentStatus| count(s, |s| s.updated_replicas);
    let old_pods = |s: &DeploymentStatus| count(s, |s| s.replicas) - updated(s);
    updated(new) > updated(old)
        || old_pods(new) < old_pods(old)
        || count(new, |s| s.ready_replicas) > count(old, |s| s.ready_replicas)
        || count(new, |s| s.available_replicas) > count(old, |s| s.available_replicas)
}

/// `lastUpdateTime` of a condition in seconds since the epoch.
pub(crate) fn last_update(c: &DeploymentCondition) -> Option<i64> {
    c.last_update_time.as_ref().map(|t| t.0.as_second())
}

/// upstream `DeploymentTimedOut` at `now` (seconds since the epoch).
pub(crate) fn timed_out(d: &Deployment, new: &DeploymentStatus, now: i64) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(c) = condition(Some(new), "Progressing") else {
        return false;
    };
    match reason(c) {
        NEW_RS_AVAILABLE => false,
        TIMED_OUT => true,
        _ => last_update(c).is_some_and(|from| from + deadline < now),
    }
}

/// upstream `calculateStatus` (deployment): counts from the ReplicaSets (zero counters
/// unset, as the Go types' `omitempty` leaves them), conditions and collision count kept,
/// `Available` set from minimum availability.
pub(crate) fn calculate_status(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
) -> DeploymentStatus {
    let sets = || all.iter().copied();
    let available = status_sum(sets(), self::available);
    let total = spec_replicas(sets());
    let unavailable = (total - available).max(0);
    let nonzero = |n: i64| (n != 0).then(|| int32(n));
    let stored = d.status.as_ref();
    let mut st = DeploymentStatus {
        observed_generation: Some(d.metadata.generation.unwrap_or(0)),
        replicas: nonzero(status_sum(sets(), actual)),
        updated_replicas: nonzero(new_rs.map_or(0, actual)),
        ready_replicas: nonzero(status_sum(sets(), ready)),
        available_replicas: nonzero(available),
        unavailable_replicas: nonzero(unavailable),
        collision_count: stored.and_then(|s| s.collision_count),
        conditions: stored.and_then(|s| s.conditions.clone()),
        ..DeploymentStatus::default()
    };
    let cond = if available >= replicas(d) - max_unavailable(d) {
        new_condition(
            "Available",
            "True",
            MIN_AVAILABLE,
            "Deployment has minimum availability.",
        )
    } else {
        new_condition(
            "Available",
            "False",
            MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.",
        )
    };
    set_condition(&mut st, cond);
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(v: Value) -> Deployment {
        crate::typed::decode(&v).unwrap()
    }

    fn set(v: Value) -> ReplicaSet {
        crate::typed::decode(&v).unwrap()
    }

    fn template(v: Value) -> PodTemplateSpec {
        serde_json::from_value(v).unwrap()
    }

    fn deploy(replicas: i64, surge: Value, unavailable: Value) -> Deployment {
        dep(
            json!({"spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}}),
        )
    }

    #[test]
    fn fenceposts_round_as_upstream() {
        let pct = |r| deploy(r, json!("25%"), json!("25%"));
        assert_eq!(fenceposts(&pct(4)), (1, 1));
        assert_eq!(fenceposts(&pct(1)), (1, 0));
        assert_eq!(fenceposts(&pct(10)), (3, 2));
        assert_eq!(fenceposts(&deploy(3, json!(0), json!("10%"))), (0, 1));
        assert_eq!(max_unavailable(&deploy(2, json!(0), json!(5))), 2);
        let recreate = dep(json!({"spec": {"replicas": 3, "strategy": {"type": "Recreate"}}}));
        assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    }

    #[test]
    fn hash_is_stable_and_collision_count_changes_it() {
        let t1 = json!({"metadata": {"labels": {"b": "2", "a": "1"}}, "spec": {"x": 1}});
        let t2 = json!({"spec": {"x": 1}, "metadata": {"labels": {"a": "1", "b": "2"}}});
        let h = compute_hash(&t1, None);
        assert_eq!(h, compute_hash(&t2, None));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert!((1..=10).contains(&h.len()));
        assert_ne!(h, compute_hash(&t1, Some(1)));
        assert_eq!(safe_encode("1234567890"), "56789bcdf4");
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
    }

    #[test]
    fn template_equality_ignores_the_hash_label_and_empties() {
        let a = template(
            json!({"metadata": {"labels": {"app": "web", POD_TEMPLATE_HASH: "x"}},
                       "spec": {"containers": [{"name": "c"}], "volumes": []}}),
        );
        let b = template(
            json!({"metadata": {"labels": {"app": "web"}, "annotations": {}},
                       "spec": {"containers": [{"name": "c"}]}}),
        );
        assert!(equal_ignore_hash(&a, &b));
        let c = template(
            json!({"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c"}]}}),
        );
        assert!(!equal_ignore_hash(&a, &c));
    }

    #[test]
    fn revision_annotations_and_history() {
        let d = dep(
            json!({"metadata": {"annotations": {"team": "a", REVISION: "9",
            "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"replicas": 4, "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}}),
        );
        let mut anns = Annotations::new();
        assert!(set_new_rs_annotations(&d, &mut anns, 1, false));
        assert_eq!(
            json!(anns),
            json!({"team": "a", REVISION: "1", DESIRED_REPLICAS: "4", MAX_REPLICAS: "5"})
        );
        assert!(!set_new_rs_annotations(&d, &mut anns, 1, true));
        // A template coming back: the old revision moves into the history.
        assert!(set_new_rs_annotations(&d, &mut anns, 3, true));
        assert_eq!(anns[REVISION], "3");
        assert_eq!(anns[REVISION_HISTORY], "1");
        assert!(set_new_rs_annotations(&d, &mut anns, 5, true));
        assert_eq!(anns[REVISION_HISTORY], "1,3");
        let rs = set(json!({"metadata": {"annotations": anns}}));
        assert_eq!(max_revision(&[rs, set(json!({}))]), 5);
        // A malformed revision is left alone, as upstream does.
        let mut bad = Annotations::from([(REVISION.to_string(), "x".to_string())]);
        assert!(!set_new_rs_annotations(&d, &mut bad, 2, true));
    }

    #[test]
    fn annotations_are_edited_in_the_stored_object() {
        let mut obj = json!({"metadata": {"name": "a"}, "future": 1});
        assert!(edit_annotations(&mut obj, |a| set_annotation(a, "k", "v")));
        assert_eq!(
            obj,
            json!({"metadata": {"name": "a", "annotations": {"k": "v"}}, "future": 1})
        );
        assert!(!edit_annotations(&mut obj, |a| set_annotation(a, "k", "v")));
        let mut bad = json!({"metadata": {"annotations": {"k": 1}}});
        assert!(!edit_annotations(&mut bad, |a| set_annotation(a, "k", "v")));
    }

    #[test]
    fn proportions_and_new_replicas() {
        let d = deploy(10, json!(3), json!(2));
        let rs = |n: i64, max: &str| {
            set(json!({"metadata": {"annotations": {MAX_REPLICAS: max}}, "spec": {"replicas": n}}))
        };
        // Deployment scaled from 10 (max 13) to 20 (max 23): +10 split 8:5.
        let d20 = deploy(20, json!(3), json!(2));
        let (a, b) = (rs(8, "13"), rs(5, "13"));
        let pa = proportion(&a, &d20, 10, 0);
        let pb = proportion(&b, &d20, 10, pa);
        assert_eq!((pa, pb), (6, 4));
        assert_eq!(proportion(&rs(0, "13"), &d20, 10, 0), 0);
        // Without the annotation (or with 0) the deployment's current size is the base.
        let mut d20_from_10 = d20.clone();
        d20_from_10.status = Some(DeploymentStatus {
            replicas: Some(13),
            ..DeploymentStatus::default()
        });
        assert_eq!(proportion(&rs(8, "0"), &d20_from_10, 10, 0), 6);
        assert_eq!(proportion(&rs(8, "0"), &d20, 10, 0), 0);
        // NewRSNewReplicas: total 10 + surge 3.
        let new = set(json!({"spec": {"replicas": 0}}));
        let old = set(json!({"spec": {"replicas": 10}}));
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
        let recreate = dep(json!({"spec": {"replicas": 4, "strategy": {"type": "Recreate"}}}));
        assert_eq!(new_rs_new_replicas(&recreate, &[&old, &new], &new), 4);
    }

    #[test]
    fn conditions_keep_transition_time_and_move_last() {
        let mut st = DeploymentStatus::default();
        set_condition(
            &mut st,
            new_condition("Progressing", "True", NEW_RS_CREATED, "m"),
        );
        set_condition(
            &mut st,
            new_condition("Available", "True", MIN_AVAILABLE, "m"),
        );
        let then: k8s_openapi::jiff::Timestamp = "2020-01-01T00:00:00Z".parse().unwrap();
        st.conditions.as_mut().unwrap()[0].last_transition_time = Some(Time(then));
        set_condition(
            &mut st,
            new_condition("Progressing", "True", NEW_RS_AVAILABLE, "m2"),
        );
        let conds = st.conditions.as_ref().unwrap();
        assert_eq!(conds[1].type_.as_deref(), Some("Progressing"));
        assert_eq!(reason(&conds[1]), NEW_RS_AVAILABLE);
        assert_eq!(conds[1].last_transition_time, Some(Time(then)));
        let before = st.clone();
        set_condition(
            &mut st,
            new_condition("Progressing", "True", NEW_RS_AVAILABLE, "other"),
        );
        assert_eq!(st, before);
        remove_condition(&mut st, "Progressing");
        remove_condition(&mut st, "Available");
        assert!(st.conditions.is_none());
    }
}
