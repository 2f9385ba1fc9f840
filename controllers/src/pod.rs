//! Pod facts the controllers share (upstream `pkg/api/v1/pod/util.go` and
//! `pkg/controller/controller_utils.go`): phase and activity, conditions, readiness and
//! availability, and the condition update rule of `UpdatePodCondition`.

use serde_json::Value;

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

/// Upstream `UpdatePodCondition` (its one home is `api`).
pub(crate) use api::pod_condition::update as set_condition;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn activity_readiness_and_availability() {
        let mut pod = json!({"status": {"phase": "Running"}});
        assert!(is_active(&pod));
        assert!(!is_ready(&pod));
        pod["status"]["conditions"] = json!([{"type": "Ready", "status": "True",
            "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
        assert!(is_ready(&pod));
        let t = seconds("2024-01-01T00:00:00Z").unwrap();
        assert!(is_available(&pod, 0, t));
        assert!(!is_available(&pod, 10, t + 9));
        assert!(is_available(&pod, 10, t + 10));
        pod["status"]["phase"] = json!("Failed");
        assert!(!is_active(&pod));
    }
}
