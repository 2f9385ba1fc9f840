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

/// The same facts over a k8s-openapi [`Pod`](k8s_openapi::api::core::v1::Pod), for the
/// controllers that read typed objects (`crate::typed`).
pub(crate) mod typed {
    use k8s_openapi::api::core::v1::{Pod, PodSpec};

    /// `status.phase` is Succeeded or Failed.
    pub(crate) fn is_terminal(p: &Pod) -> bool {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        matches!(phase, Some("Succeeded" | "Failed"))
    }

    /// The time the pod's Ready condition last changed, when it has one, and whether it is True
    /// (upstream `IsPodReady`).
    pub(crate) fn ready_condition(p: &Pod) -> Option<(bool, Option<i64>)> {
        let c = p
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?;
        let since = c.last_transition_time.as_ref().map(|t| t.0.as_second());
        Some((c.status == "True", since))
    }

    /// Upstream `IsPodReady`: condition Ready is True.
    pub(crate) fn is_ready(p: &Pod) -> bool {
        ready_condition(p).is_some_and(|(ready, _)| ready)
    }

    fn spec_str(p: &Pod, f: impl Fn(&PodSpec) -> Option<&String>) -> &str {
        p.spec.as_ref().and_then(f).map_or("", String::as_str)
    }

    /// `spec.hostname`, `""` when unset.
    pub(crate) fn hostname(p: &Pod) -> &str {
        spec_str(p, |s| s.hostname.as_ref())
    }

    /// `spec.nodeName`, `""` when unset.
    pub(crate) fn node_name(p: &Pod) -> &str {
        spec_str(p, |s| s.node_name.as_ref())
    }
}

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
