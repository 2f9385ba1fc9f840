//! Pure helpers of the deployment controller, after upstream
//! `pkg/controller/deployment/util/deployment_util.go` and the ReplicaSet sorting of
//! `pkg/controller/controller_utils.go`: fenceposts (maxSurge/maxUnavailable), the
//! pod-template hash, template comparison, revisions and annotations, conditions, status,
//! proportional scaling.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use crate::meta;
use crate::replicaset::replicas;

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

/// Whether the strategy is RollingUpdate (the default).
pub(crate) fn is_rolling(d: &Value) -> bool {
    d["spec"]["strategy"]["type"]
        .as_str()
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

/// upstream `intstr.GetScaledValueFromIntOrPercent`; `None` for a malformed value.
fn scaled(v: &Value, total: i64, round_up: bool) -> Option<i64> {
    match v {
        Value::Null => Some(0),
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let p: i64 = s.strip_suffix('%')?.parse().ok()?;
            let x = p * total;
            Some(if round_up {
                (x + 99).div_euclid(100)
            } else {
                x.div_euclid(100)
            })
        }
        _ => None,
    }
}

/// upstream `ResolveFenceposts`: (maxSurge rounded up, maxUnavailable rounded down), with
/// maxUnavailable 1 when both come out 0.
pub(crate) fn fenceposts(d: &Value) -> (i64, i64) {
    let ru = &d["spec"]["strategy"]["rollingUpdate"];
    let desired = replicas(d);
    let surge = scaled(&ru["maxSurge"], desired, true).unwrap_or(0);
    let mut unavailable = scaled(&ru["maxUnavailable"], desired, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

/// upstream `MaxSurge`.
pub(crate) fn max_surge(d: &Value) -> i64 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// upstream `MaxUnavailable`.
pub(crate) fn max_unavailable(d: &Value) -> i64 {
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
fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(16_777_619)
    })
}

/// upstream `rand.SafeEncodeString`: each character mapped into the alphabet without
/// vowels or confusable digits.
fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.chars()
        .map(|c| ALPHANUMS[(c as usize) % ALPHANUMS.len()] as char)
        .collect()
}

/// upstream `controller.ComputeHash`: FNV-32a of the template and the collision count (as
/// 8 little-endian bytes), its decimal form safe-encoded. Upstream hashes Go's `spew`
/// dump of the struct; paddock hashes the canonical JSON of the stored (defaulted)
/// template, so names have upstream's shape but not its exact values.
pub(crate) fn compute_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut text = String::new();
    canonical(template, &mut text);
    let mut bytes = text.into_bytes();
    if let Some(c) = collision_count {
        let mut extra = [0u8; 8];
        // Truncation to 32 bits as upstream's `uint32(*collisionCount)`.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
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

/// upstream `EqualIgnoreHash`: templates equal once the pod-template-hash label is removed.
pub(crate) fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(l) = t["metadata"]["labels"].as_object_mut() {
            l.remove(POD_TEMPLATE_HASH);
        }
        normalized(&t)
    };
    strip(a) == strip(b)
}

/// An annotation of `obj`.
pub(crate) fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}

/// Sets an annotation; whether it changed.
pub(crate) fn set_annotation(obj: &mut Value, key: &str, value: &str) -> bool {
    if annotation(obj, key) == Some(value) {
        return false;
    }
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(value);
    true
}

/// The revision of a ReplicaSet (0 when absent or malformed).
pub(crate) fn revision(rs: &Value) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// upstream `MaxRevision`.
pub(crate) fn max_revision(sets: &[Value]) -> i64 {
    sets.iter().map(revision).max().unwrap_or(0)
}

/// upstream `SetReplicasAnnotations`; whether anything changed.
pub(crate) fn set_replicas_annotations(rs: &mut Value, desired: i64, max: i64) -> bool {
    let a = set_annotation(rs, DESIRED_REPLICAS, &desired.to_string());
    let b = set_annotation(rs, MAX_REPLICAS, &max.to_string());
    a || b
}

/// upstream `ReplicasAnnotationsNeedUpdate`.
pub(crate) fn replicas_annotations_need_update(rs: &Value, desired: i64, max: i64) -> bool {
    annotation(rs, DESIRED_REPLICAS) != Some(&desired.to_string())
        || annotation(rs, MAX_REPLICAS) != Some(&max.to_string())
}

/// upstream `SetNewReplicaSetAnnotations`: copies the deployment's annotations (but the
/// skipped ones), raises the revision to `new_revision` (keeping the old one in
/// `revision-history`), and for a ReplicaSet about to be created sets the replica
/// annotations. Whether anything changed.
pub(crate) fn set_new_rs_annotations(
    d: &Value,
    rs: &mut Value,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = false;
    if let Some(anns) = d["metadata"]["annotations"].as_object() {
        for (k, v) in anns {
            if SKIP_ANNOTATIONS.contains(&k.as_str()) {
                continue;
            }
            if let Some(v) = v.as_str() {
                changed |= set_annotation(rs, k, v);
            }
        }
    }
    if !rs["metadata"]["annotations"].is_object() {
        rs["metadata"]["annotations"] = json!({});
    }
    let old = annotation(rs, REVISION).map(str::to_string);
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
            let history = annotation(rs, REVISION_HISTORY).unwrap_or("").to_string();
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

/// `status.<field>` of a ReplicaSet as a number.
pub(crate) fn status_count(rs: &Value, field: &str) -> i64 {
    rs["status"][field].as_i64().unwrap_or(0)
}

/// Sum of `spec.replicas` (upstream `GetReplicaCountForReplicaSets`).
pub(crate) fn spec_replicas<'a>(sets: impl IntoIterator<Item = &'a Value>) -> i64 {
    sets.into_iter().map(replicas).sum()
}

/// Sum of a status counter over the sets.
pub(crate) fn status_sum<'a>(sets: impl IntoIterator<Item = &'a Value>, field: &str) -> i64 {
    sets.into_iter().map(|rs| status_count(rs, field)).sum()
}

/// Creation time and name, for upstream `ReplicaSetsByCreationTimestamp`.
fn created(rs: &Value) -> (i64, &str) {
    (
        crate::pod::seconds(meta::str(rs, "creationTimestamp")).unwrap_or(0),
        meta::str(rs, "name"),
    )
}

/// upstream `ReplicaSetsByCreationTimestamp`: older first, then by name.
pub(crate) fn by_creation(a: &Value, b: &Value) -> Ordering {
    created(a).cmp(&created(b))
}

/// upstream `ReplicaSetsBySizeOlder`: larger first, ties older first.
pub(crate) fn by_size_older(a: &Value, b: &Value) -> Ordering {
    replicas(b)
        .cmp(&replicas(a))
        .then_with(|| by_creation(a, b))
}

/// upstream `ReplicaSetsBySizeNewer`: larger first, ties newer first.
pub(crate) fn by_size_newer(a: &Value, b: &Value) -> Ordering {
    replicas(b)
        .cmp(&replicas(a))
        .then_with(|| by_creation(b, a))
}

/// upstream `ReplicaSetsByRevision`: lower revision first, ties by creation.
pub(crate) fn by_revision(a: &Value, b: &Value) -> Ordering {
    revision(a)
        .cmp(&revision(b))
        .then_with(|| by_creation(a, b))
}

/// upstream `NewRSNewReplicas`: how big the new ReplicaSet may be now.
pub(crate) fn new_rs_new_replicas(d: &Value, all: &[&Value], new_rs: &Value) -> i64 {
    if !is_rolling(d) {
        return replicas(d);
    }
    let surge = max_surge(d);
    let current = spec_replicas(all.iter().copied());
    let max_total = replicas(d) + surge;
    if current >= max_total {
        return replicas(new_rs);
    }
    let up = (max_total - current).min(replicas(d) - replicas(new_rs));
    replicas(new_rs) + up
}

/// upstream `IsSaturated`.
pub(crate) fn is_saturated(d: &Value, rs: Option<&Value>) -> bool {
    let Some(rs) = rs else { return false };
    let Some(desired) = annotation(rs, DESIRED_REPLICAS).and_then(|s| s.parse::<i64>().ok()) else {
        return false;
    };
    let want = replicas(d);
    replicas(rs) == want && desired == want && status_count(rs, "availableReplicas") == want
}

/// upstream `GetReplicaSetProportion`.
pub(crate) fn proportion(rs: &Value, d: &Value, to_add: i64, added: i64) -> i64 {
    if replicas(rs) == 0 || to_add == 0 || to_add == added {
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

/// upstream `getReplicaSetFraction`.
fn fraction(rs: &Value, d: &Value) -> i64 {
    if replicas(d) == 0 {
        return -replicas(rs);
    }
    let max = replicas(d) + max_surge(d);
    let annotated = annotation(rs, MAX_REPLICAS)
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or_else(|| d["status"]["replicas"].as_i64().unwrap_or(0));
    if annotated == 0 {
        return 0;
    }
    // Rounded half away from zero, as Go's math.Round.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let size = ((replicas(rs) * max) as f64 / annotated as f64).round() as i64;
    size - replicas(rs)
}

/// The condition `type_` in `status.conditions`.
pub(crate) fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// upstream `NewDeploymentCondition`.
pub(crate) fn new_condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = meta::now_rfc3339();
    json!({"type": type_, "status": status, "lastUpdateTime": now,
           "lastTransitionTime": now, "reason": reason, "message": message})
}

/// upstream `SetDeploymentCondition`: no-op when status and reason are unchanged; keeps
/// `lastTransitionTime` when only the reason changes; the condition moves to the end.
pub(crate) fn set_condition(status: &mut Value, mut cond: Value) {
    let type_ = cond["type"].as_str().unwrap_or("").to_string();
    if let Some(cur) = condition(status, &type_) {
        if cur["status"] == cond["status"] && cur["reason"] == cond["reason"] {
            return;
        }
        if cur["status"] == cond["status"] {
            cond["lastTransitionTime"] = cur["lastTransitionTime"].clone();
        }
    }
    remove_condition(status, &type_);
    crate::replicaset::push_condition(status, cond);
}

/// upstream `RemoveDeploymentCondition`.
pub(crate) fn remove_condition(status: &mut Value, type_: &str) {
    crate::replicaset::remove_condition(status, type_);
}

/// upstream `HasProgressDeadline`.
pub(crate) fn progress_deadline(d: &Value) -> Option<i64> {
    d["spec"]["progressDeadlineSeconds"]
        .as_i64()
        .filter(|s| *s != i64::from(i32::MAX))
}

/// upstream `DeploymentComplete`.
pub(crate) fn complete(d: &Value, status: &Value) -> bool {
    let want = replicas(d);
    let n = |f: &str| status[f].as_i64().unwrap_or(0);
    n("updatedReplicas") == want
        && n("replicas") == want
        && n("availableReplicas") == want
        && n("observedGeneration") >= d["metadata"]["generation"].as_i64().unwrap_or(0)
}

/// upstream `DeploymentProgressing`: the new status shows progress over the stored one.
pub(crate) fn progressing(d: &Value, new: &Value) -> bool {
    let old = &d["status"];
    let n = |s: &Value, f: &str| s[f].as_i64().unwrap_or(0);
    let old_old = n(old, "replicas") - n(old, "updatedReplicas");
    let new_old = n(new, "replicas") - n(new, "updatedReplicas");
    n(new, "updatedReplicas") > n(old, "updatedReplicas")
        || new_old < old_old
        || n(new, "readyReplicas") > n(old, "readyReplicas")
        || n(new, "availableReplicas") > n(old, "availableReplicas")
}

/// upstream `DeploymentTimedOut` at `now` (seconds since the epoch).
pub(crate) fn timed_out(d: &Value, new: &Value, now: i64) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(c) = condition(new, "Progressing") else {
        return false;
    };
    match c["reason"].as_str().unwrap_or("") {
        NEW_RS_AVAILABLE => false,
        TIMED_OUT => true,
        _ => c["lastUpdateTime"]
            .as_str()
            .and_then(crate::pod::seconds)
            .is_some_and(|from| from + deadline < now),
    }
}

/// upstream `calculateStatus` (deployment): counts from the ReplicaSets, conditions kept,
/// `Available` set from minimum availability.
pub(crate) fn calculate_status(all: &[&Value], new_rs: Option<&Value>, d: &Value) -> Value {
    let available = status_sum(all.iter().copied(), "availableReplicas");
    let total = spec_replicas(all.iter().copied());
    let unavailable = (total - available).max(0);
    let mut st = json!({
        "observedGeneration": d["metadata"]["generation"].as_i64().unwrap_or(0),
        "replicas": status_sum(all.iter().copied(), "replicas"),
        "updatedReplicas": new_rs.map_or(0, |rs| status_count(rs, "replicas")),
        "readyReplicas": status_sum(all.iter().copied(), "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    });
    // Zero counters are omitted on the wire (`omitempty`).
    if let Some(m) = st.as_object_mut() {
        m.retain(|k, v| k == "observedGeneration" || v.as_i64() != Some(0));
    }
    if let Some(c) = d["status"].get("collisionCount").filter(|c| !c.is_null()) {
        st["collisionCount"] = c.clone();
    }
    if let Some(c) = d["status"].get("conditions").filter(|c| c.is_array()) {
        st["conditions"] = c.clone();
    }
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

    fn deploy(replicas: i64, surge: Value, unavailable: Value) -> Value {
        json!({"spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}})
    }

    #[test]
    fn fenceposts_round_as_upstream() {
        let pct = |r| deploy(r, json!("25%"), json!("25%"));
        assert_eq!(fenceposts(&pct(4)), (1, 1));
        assert_eq!(fenceposts(&pct(1)), (1, 0));
        assert_eq!(fenceposts(&pct(10)), (3, 2));
        assert_eq!(fenceposts(&deploy(3, json!(0), json!("10%"))), (0, 1));
        assert_eq!(max_unavailable(&deploy(2, json!(0), json!(5))), 2);
        let recreate = json!({"spec": {"replicas": 3, "strategy": {"type": "Recreate"}}});
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
        let a = json!({"metadata": {"labels": {"app": "web", POD_TEMPLATE_HASH: "x"}},
                       "spec": {"containers": [{"name": "c"}], "volumes": []}});
        let b = json!({"metadata": {"labels": {"app": "web"}, "annotations": null},
                       "spec": {"containers": [{"name": "c"}]}});
        assert!(equal_ignore_hash(&a, &b));
        let c = json!({"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c"}]}});
        assert!(!equal_ignore_hash(&a, &c));
    }

    #[test]
    fn revision_annotations_and_history() {
        let d = json!({"metadata": {"annotations": {"team": "a", REVISION: "9",
            "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"replicas": 4, "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}});
        let mut rs = json!({"metadata": {}});
        assert!(set_new_rs_annotations(&d, &mut rs, 1, false));
        assert_eq!(
            rs["metadata"]["annotations"],
            json!({"team": "a", REVISION: "1", DESIRED_REPLICAS: "4", MAX_REPLICAS: "5"})
        );
        assert!(!set_new_rs_annotations(&d, &mut rs, 1, true));
        // A template coming back: the old revision moves into the history.
        assert!(set_new_rs_annotations(&d, &mut rs, 3, true));
        assert_eq!(annotation(&rs, REVISION), Some("3"));
        assert_eq!(annotation(&rs, REVISION_HISTORY), Some("1"));
        assert!(set_new_rs_annotations(&d, &mut rs, 5, true));
        assert_eq!(annotation(&rs, REVISION_HISTORY), Some("1,3"));
        assert_eq!(max_revision(&[rs.clone(), json!({})]), 5);
    }

    #[test]
    fn proportions_and_new_replicas() {
        let d = deploy(10, json!(3), json!(2));
        let rs = |n: i64, max: &str| json!({"metadata": {"annotations": {MAX_REPLICAS: max}}, "spec": {"replicas": n}});
        // Deployment scaled from 10 (max 13) to 20 (max 23): +10 split 8:5.
        let d20 = deploy(20, json!(3), json!(2));
        let (a, b) = (rs(8, "13"), rs(5, "13"));
        let pa = proportion(&a, &d20, 10, 0);
        let pb = proportion(&b, &d20, 10, pa);
        assert_eq!((pa, pb), (6, 4));
        assert_eq!(proportion(&rs(0, "13"), &d20, 10, 0), 0);
        // NewRSNewReplicas: total 10 + surge 3.
        let new = json!({"spec": {"replicas": 0}});
        let old = json!({"spec": {"replicas": 10}});
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
        let recreate = json!({"spec": {"replicas": 4, "strategy": {"type": "Recreate"}}});
        assert_eq!(new_rs_new_replicas(&recreate, &[&old, &new], &new), 4);
    }

    #[test]
    fn conditions_keep_transition_time_and_move_last() {
        let mut st = json!({});
        set_condition(
            &mut st,
            new_condition("Progressing", "True", NEW_RS_CREATED, "m"),
        );
        set_condition(
            &mut st,
            new_condition("Available", "True", MIN_AVAILABLE, "m"),
        );
        st["conditions"][0]["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        set_condition(
            &mut st,
            new_condition("Progressing", "True", NEW_RS_AVAILABLE, "m2"),
        );
        assert_eq!(st["conditions"][1]["type"], "Progressing");
        assert_eq!(st["conditions"][1]["reason"], NEW_RS_AVAILABLE);
        assert_eq!(
            st["conditions"][1]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        let before = st.clone();
        set_condition(
            &mut st,
            new_condition("Progressing", "True", NEW_RS_AVAILABLE, "other"),
        );
        assert_eq!(st, before);
    }
}
