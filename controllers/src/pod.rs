//! Pod facts the controllers share (upstream `pkg/api/v1/pod/util.go` and
//! `pkg/controller/controller_utils.go`): phase and activity, conditions, readiness and
//! availability, and the condition update rule of `UpdatePodCondition`.

use serde_json::{Value, json};

/// `status.phase`.
pub(crate) fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

/// Whether the pod finished (phase Succeeded or Failed).
pub(crate) fn is_terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Upstream `IsPodActive`: not finished and not being deleted.
pub(crate) fn is_active(pod: &Value) -> bool {
    !is_terminal(pod) && !crate::meta::deleting(pod)
}

/// The condition of `type_` in `status.conditions`.
pub(crate) fn condition<'a>(pod: &'a Value, type_: &str) -> Option<&'a Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(type_))
}

/// Upstream `IsPodReady`: condition Ready is True.
pub(crate) fn is_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// The time the Ready condition last changed, in seconds since the epoch.
pub(crate) fn ready_since(pod: &Value) -> Option<i64> {
    let t = condition(pod, "Ready")?["lastTransitionTime"].as_str()?;
    seconds(t)
}

/// Seconds since the epoch of an RFC 3339 time.
pub(crate) fn seconds(t: &str) -> Option<i64> {
    t.parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Upstream `IsPodAvailable`: ready, and ready for at least `min_ready_seconds` at `now`
/// (seconds since the epoch).
pub(crate) fn is_available(pod: &Value, min_ready_seconds: i64, now: i64) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_since(pod).is_some_and(|t| t + min_ready_seconds <= now)
}

/// Upstream `UpdatePodCondition`: sets `cond` (type, status, reason, message) in
/// `status.conditions`, keeping `lastTransitionTime` unless the status changes; whether
/// anything changed.
pub(crate) fn set_condition(pod: &mut Value, cond: Value) -> bool {
    let now = crate::meta::now_rfc3339();
    let type_ = cond["type"].clone();
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    let Some(list) = pod["status"]["conditions"].as_array_mut() else {
        return false;
    };
    let mut new = cond;
    match list.iter_mut().find(|c| c["type"] == type_) {
        None => {
            new["lastTransitionTime"] = json!(now);
            if new.get("lastProbeTime").is_none() {
                new["lastProbeTime"] = Value::Null;
            }
            list.push(new);
            true
        }
        Some(old) => {
            if old["status"] != new["status"] {
                new["lastTransitionTime"] = json!(now);
            } else {
                new["lastTransitionTime"] = old["lastTransitionTime"].clone();
            }
            if new.get("lastProbeTime").is_none() {
                new["lastProbeTime"] = old.get("lastProbeTime").cloned().unwrap_or(Value::Null);
            }
            let same = ["status", "reason", "message", "lastTransitionTime"]
                .iter()
                .all(|f| {
                    old.get(*f).unwrap_or(&Value::Null) == new.get(*f).unwrap_or(&Value::Null)
                });
            if same {
                return false;
            }
            *old = new;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_and_conditions() {
        let mut pod = json!({"status": {"phase": "Running"}});
        assert!(is_active(&pod));
        assert!(!is_ready(&pod));
        assert!(set_condition(
            &mut pod,
            json!({"type": "Ready", "status": "True"})
        ));
        assert!(!set_condition(
            &mut pod,
            json!({"type": "Ready", "status": "True"})
        ));
        assert!(is_ready(&pod));
        pod["status"]["conditions"][0]["lastTransitionTime"] = json!("2024-01-01T00:00:00Z");
        let t = seconds("2024-01-01T00:00:00Z").unwrap();
        assert!(is_available(&pod, 0, t));
        assert!(!is_available(&pod, 10, t + 9));
        assert!(is_available(&pod, 10, t + 10));
        assert!(set_condition(
            &mut pod,
            json!({"type": "Ready", "status": "False", "reason": "x"})
        ));
        assert_ne!(
            pod["status"]["conditions"][0]["lastTransitionTime"],
            "2024-01-01T00:00:00Z"
        );
        pod["status"]["phase"] = json!("Failed");
        assert!(!is_active(&pod));
    }
}
