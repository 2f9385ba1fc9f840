//! PodDisruptionBudget status helpers shared by the API server's eviction subresource and the
//! disruption controller: upstream `component-helpers/apps/poddisruptionbudget`
//! (`UpdateDisruptionAllowedCondition`, `ConditionsAreUpToDate`), apimachinery's
//! `meta.SetStatusCondition` over `metav1.Condition` lists, and `IsPodReady`.

use serde_json::{Value, json};

/// The condition type the budget maintains.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// Reason of `DisruptionAllowed=True`.
pub const SUFFICIENT_PODS: &str = "SufficientPods";
/// Reason of `DisruptionAllowed=False` when too few pods are healthy.
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
/// Reason of `DisruptionAllowed=False` when the controller could not compute the status.
pub const SYNC_FAILED: &str = "SyncFailed";

/// Whether the pod's `Ready` condition is `True` (upstream `podutil.IsPodReady`).
pub fn is_pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Upstream `meta.SetStatusCondition` on `obj.status.conditions`: a new type is appended
/// (`lastTransitionTime` `now` unless given); an existing one takes the new status (and
/// transition time when the status changes), reason, message and observedGeneration.
/// Returns whether anything changed.
pub fn set_status_condition(obj: &mut Value, cond: Value, now: &str) -> bool {
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    if !obj["status"]["conditions"].is_array() {
        obj["status"]["conditions"] = json!([]);
    }
    let Some(list) = obj["status"]["conditions"].as_array_mut() else {
        return false;
    };
    let given_time = cond
        .get("lastTransitionTime")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let Some(existing) = list.iter_mut().find(|c| c["type"] == cond["type"]) else {
        let mut new = cond;
        new["lastTransitionTime"] = json!(given_time.unwrap_or_else(|| now.to_string()));
        for f in ["reason", "message"] {
            if new.get(f).is_none() {
                new[f] = json!("");
            }
        }
        list.push(new);
        return true;
    };
    let mut changed = false;
    if existing["status"] != cond["status"] {
        existing["status"] = cond["status"].clone();
        existing["lastTransitionTime"] = json!(given_time.unwrap_or_else(|| now.to_string()));
        changed = true;
    }
    for f in ["reason", "message"] {
        let want = cond.get(f).cloned().unwrap_or(json!(""));
        if existing.get(f).unwrap_or(&json!("")) != &want {
            existing[f] = want;
            changed = true;
        }
    }
    let gen_of = |c: &Value| c["observedGeneration"].as_i64().unwrap_or(0);
    if gen_of(existing) != gen_of(&cond) {
        match cond["observedGeneration"].as_i64().filter(|g| *g != 0) {
            Some(g) => existing["observedGeneration"] = json!(g),
            None => {
                if let Some(o) = existing.as_object_mut() {
                    o.remove("observedGeneration");
                }
            }
        }
        changed = true;
    }
    changed
}

/// The `DisruptionAllowed` condition `disruptionsAllowed` calls for, with the status's
/// observedGeneration (omitted when zero, as its `omitempty`).
fn allowed_condition(pdb: &Value) -> Value {
    let status = &pdb["status"];
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0) > 0;
    let mut cond = if allowed {
        json!({"type": DISRUPTION_ALLOWED, "status": "True", "reason": SUFFICIENT_PODS, "message": ""})
    } else {
        json!({"type": DISRUPTION_ALLOWED, "status": "False", "reason": INSUFFICIENT_PODS, "message": ""})
    };
    if let Some(g) = status["observedGeneration"].as_i64().filter(|g| *g != 0) {
        cond["observedGeneration"] = json!(g);
    }
    cond
}

/// Upstream `UpdateDisruptionAllowedCondition`: `DisruptionAllowed` True/`SufficientPods`
/// when disruptions are allowed, else False/`InsufficientPods`.
pub fn update_disruption_allowed_condition(pdb: &mut Value, now: &str) {
    let cond = allowed_condition(pdb);
    set_status_condition(pdb, cond, now);
}

/// Upstream `ConditionsAreUpToDate`: the condition exists, the status observed the current
/// generation, and the condition agrees with `disruptionsAllowed`.
pub fn conditions_are_up_to_date(pdb: &Value) -> bool {
    let Some(cond) = pdb
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|c| c["type"] == DISRUPTION_ALLOWED))
    else {
        return false;
    };
    let generation = pdb.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = pdb
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    if generation.unwrap_or(0) != observed.unwrap_or(0) {
        return false;
    }
    let want = allowed_condition(pdb);
    cond["status"] == want["status"] && cond["reason"] == want["reason"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_status_condition_keeps_time_unless_status_changes() {
        let mut o = json!({});
        assert!(set_status_condition(
            &mut o,
            json!({"type": "A", "status": "True", "reason": "R"}),
            "t1"
        ));
        assert_eq!(o["status"]["conditions"][0]["lastTransitionTime"], "t1");
        assert_eq!(o["status"]["conditions"][0]["message"], "");
        assert!(!set_status_condition(
            &mut o,
            json!({"type": "A", "status": "True", "reason": "R"}),
            "t2"
        ));
        assert!(set_status_condition(
            &mut o,
            json!({"type": "A", "status": "True", "reason": "S", "observedGeneration": 2}),
            "t2"
        ));
        assert_eq!(o["status"]["conditions"][0]["lastTransitionTime"], "t1");
        assert_eq!(o["status"]["conditions"][0]["observedGeneration"], 2);
        assert!(set_status_condition(
            &mut o,
            json!({"type": "A", "status": "False", "reason": "S", "observedGeneration": 2}),
            "t3"
        ));
        assert_eq!(o["status"]["conditions"][0]["lastTransitionTime"], "t3");
    }

    #[test]
    fn disruption_allowed_condition_follows_the_budget() {
        let mut pdb = json!({"metadata": {"generation": 1},
            "status": {"disruptionsAllowed": 1, "observedGeneration": 1}});
        assert!(!conditions_are_up_to_date(&pdb));
        update_disruption_allowed_condition(&mut pdb, "t");
        let c = &pdb["status"]["conditions"][0];
        assert_eq!(
            (&c["status"], &c["reason"], &c["observedGeneration"]),
            (&json!("True"), &json!("SufficientPods"), &json!(1))
        );
        assert!(conditions_are_up_to_date(&pdb));
        pdb["status"]["disruptionsAllowed"] = json!(0);
        assert!(!conditions_are_up_to_date(&pdb));
        update_disruption_allowed_condition(&mut pdb, "t");
        assert_eq!(pdb["status"]["conditions"][0]["reason"], "InsufficientPods");
        assert!(conditions_are_up_to_date(&pdb));
        pdb["metadata"]["generation"] = json!(2);
        assert!(!conditions_are_up_to_date(&pdb));
    }
}
