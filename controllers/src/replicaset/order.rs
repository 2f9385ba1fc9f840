//! Which pods a ReplicaSet deletes first: upstream `getPodsToDelete` with
//! `ActivePodsWithRanks.Less` (`pkg/controller/controller_utils.go`), with the
//! `PodDeletionCost` and `LogarithmicScaleDown` features on, as they are by default.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::cmp::Ordering;
use std::collections::HashMap;

use super::POD_DELETION_COST;
use crate::pod::typed::{is_active, is_ready, node_name};

/// The `diff` pods to delete from `pods`, ranked against the `related` pods (those of every
/// ReplicaSet with the same controller) colocated on their nodes. `now` is in nanoseconds
/// since the epoch.
pub(crate) fn pods_to_delete(pods: &[Pod], related: &[Pod], diff: usize, now: i128) -> Vec<Pod> {
    let mut ranked: Vec<(Pod, usize)> = {
        let mut on_node: HashMap<&str, usize> = HashMap::new();
        for p in related.iter().filter(|p| is_active(p)) {
            *on_node.entry(node_name(p)).or_insert(0) += 1;
        }
        pods.iter()
            .map(|p| (p.clone(), on_node.get(node_name(p)).copied().unwrap_or(0)))
            .collect()
    };
    if diff < ranked.len() {
        ranked.sort_by(|a, b| compare(&a.0, a.1, &b.0, b.1, now));
    }
    ranked.into_iter().take(diff).map(|(p, _)| p).collect()
}

/// upstream `podPhaseToOrdinal`: Pending < Unknown < Running.
fn phase_ordinal(p: &Pod) -> i32 {
    match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

/// upstream `GetDeletionCostFromPodAnnotations` (invalid values count as 0).
fn deletion_cost(p: &Pod) -> i32 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|s| s.parse::<i32>().ok())
        .unwrap_or(0)
}

/// Nanoseconds since the epoch of a time; `None` for an absent time.
fn nanos(t: Option<&Time>) -> Option<i128> {
    t.map(|t| t.0.as_nanosecond())
}

/// upstream `podReadyTime`: when a ready pod became ready.
fn ready_time(p: &Pod) -> Option<i128> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .filter(|c| c.status == "True")
        .and_then(|c| nanos(c.last_transition_time.as_ref()))
}

/// upstream `maxContainerRestarts`: (regular containers, restartable init containers).
fn max_restarts(p: &Pod) -> (i64, i64) {
    let max = |list: Option<&Vec<ContainerStatus>>, filter: &dyn Fn(&ContainerStatus) -> bool| {
        list.into_iter()
            .flatten()
            .filter(|s| filter(s))
            .map(|s| i64::from(s.restart_count))
            .max()
            .unwrap_or(0)
    };
    let sidecars: Vec<&str> = p
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let status = p.status.as_ref();
    (
        max(status.and_then(|s| s.container_statuses.as_ref()), &|_| {
            true
        }),
        max(
            status.and_then(|s| s.init_container_statuses.as_ref()),
            &|s| sidecars.contains(&s.name.as_str()),
        ),
    )
}

/// upstream `logarithmicRankDiff`: compares ⌊log₂(age in ns)⌋ of two times.
fn log_rank_diff(t1: i128, t2: i128, now: i128) -> i64 {
    let rank = |t: i128| {
        let d = now - t;
        if d > 0 {
            // Precision loss is fine: only the integer part of log2 is used.
            #[allow(clippy::cast_precision_loss)]
            let f = d as f64;
            #[allow(clippy::cast_possible_truncation)]
            let r = f.log2() as i64;
            r
        } else {
            -1
        }
    };
    rank(t1) - rank(t2)
}

/// Orders two timestamps as upstream: a zero time first, then the later one (with the
/// logarithmic buckets, ties broken by uid).
fn newer_first(
    t1: Option<i128>,
    t2: Option<i128>,
    uid1: &str,
    uid2: &str,
    now: i128,
) -> Option<Ordering> {
    if t1 == t2 {
        return None;
    }
    let (Some(a), Some(b)) = (t1, t2) else {
        // afterOrZero: the zero time is "less".
        return Some(if t1.is_none() {
            Ordering::Less
        } else {
            Ordering::Greater
        });
    };
    let diff = log_rank_diff(a, b, now);
    Some(match diff.cmp(&0) {
        Ordering::Equal => uid1.cmp(uid2),
        o => o,
    })
}

/// upstream `ActivePodsWithRanks.Less` as an ordering (Less = delete first).
fn compare(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize, now: i128) -> Ordering {
    // 1. Unassigned < assigned.
    let (na, nb) = (node_name(a), node_name(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    // 2. Pending < Unknown < Running.
    let (pa, pb) = (phase_ordinal(a), phase_ordinal(b));
    if pa != pb {
        return pa.cmp(&pb);
    }
    // 3. Not ready < ready.
    let (ra, rb) = (is_ready(a), is_ready(b));
    if ra != rb {
        return if ra {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    // 4. Lower deletion cost first.
    let (ca, cb) = (deletion_cost(a), deletion_cost(b));
    if ca != cb {
        return ca.cmp(&cb);
    }
    // 5. Doubled up (more colocated related pods) first.
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    let (ua, ub) = (
        a.metadata.uid.as_deref().unwrap_or(""),
        b.metadata.uid.as_deref().unwrap_or(""),
    );
    // 6. Ready for less time first.
    if ra
        && rb
        && let Some(o) = newer_first(ready_time(a), ready_time(b), ua, ub, now)
    {
        return o;
    }
    // 7. More restarts first (regular containers, then sidecars).
    let (xa, xb) = (max_restarts(a), max_restarts(b));
    if xa.0 != xb.0 {
        return xb.0.cmp(&xa.0);
    }
    if xa.1 != xb.1 {
        return xb.1.cmp(&xa.1);
    }
    // 8. Newer first.
    let created = |p: &Pod| nanos(p.metadata.creation_timestamp.as_ref());
    newer_first(created(a), created(b), ua, ub, now).unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(name: &str, node: &str, phase: &str, ready: Option<&str>, created: &str) -> Pod {
        let mut v = json!({"metadata": {"name": name, "uid": name, "creationTimestamp": created},
            "spec": {"nodeName": node, "containers": []}, "status": {"phase": phase}});
        if let Some(t) = ready {
            v["status"]["conditions"] =
                json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]);
        }
        crate::typed::decode(&v).unwrap()
    }

    fn names(v: &[Pod]) -> Vec<&str> {
        v.iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect()
    }

    #[test]
    fn upstream_order() {
        let now = "2024-01-01T12:00:00Z"
            .parse::<k8s_openapi::jiff::Timestamp>()
            .unwrap()
            .as_nanosecond();
        let old = "2024-01-01T00:00:00Z";
        let pods = vec![
            p("ready-old", "n1", "Running", Some(old), old),
            p(
                "ready-new",
                "n1",
                "Running",
                Some("2024-01-01T11:59:00Z"),
                old,
            ),
            p("unassigned", "", "Pending", None, old),
            p("pending", "n1", "Pending", None, old),
            p("not-ready", "n1", "Running", None, old),
        ];
        let order = pods_to_delete(&pods, &pods, 4, now);
        assert_eq!(
            names(&order),
            ["unassigned", "pending", "not-ready", "ready-new"]
        );
        // Deleting all skips sorting; deleting fewer takes the front.
        assert_eq!(
            names(&pods_to_delete(&pods, &pods, 2, now)),
            ["unassigned", "pending"]
        );
        // Deletion cost beats readiness age; colocation beats age.
        let mut cheap = pods[0].clone();
        cheap.metadata.annotations =
            Some([(POD_DELETION_COST.to_string(), "-5".to_string())].into());
        let alone = p("alone", "n2", "Running", Some("2024-01-01T11:59:00Z"), old);
        let set = vec![pods[1].clone(), cheap, alone];
        assert_eq!(
            names(&pods_to_delete(&set, &set, 2, now)),
            ["ready-old", "ready-new"]
        );
        // Newer created first among equals.
        let a = p("a", "n1", "Running", None, "2024-01-01T00:00:00Z");
        let b = p("b", "n1", "Running", None, "2024-01-01T11:00:00Z");
        assert_eq!(
            names(&pods_to_delete(&[a.clone(), b.clone()], &[], 1, now)),
            ["b"]
        );
    }
}
