//! Pod facts the controllers share (upstream `pkg/api/v1/pod/util.go` and
//! `pkg/controller/controller_utils.go`), over typed pods ([`typed`]: phase and activity,
//! readiness and availability, host and node names), and the condition update rule of
//! `UpdatePodCondition`.

/// Seconds since the epoch of an RFC 3339 time, for tests that set pod times as strings.
#[cfg(test)]
pub(crate) fn seconds(t: &str) -> Option<i64> {
    t.parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Upstream `UpdatePodCondition` (its one home is `api`).
pub(crate) use api::pod_condition::update as set_condition;

/// Pod facts over a k8s-openapi [`Pod`](k8s_openapi::api::core::v1::Pod), for the
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

    /// Upstream `IsPodActive`: not finished and not being deleted.
    pub(crate) fn is_active(p: &Pod) -> bool {
        !is_terminal(p) && p.metadata.deletion_timestamp.is_none()
    }

    /// Upstream `IsPodAvailable`: ready, and ready for at least `min_ready_seconds` at `now`
    /// (seconds since the epoch).
    pub(crate) fn is_available(p: &Pod, min_ready_seconds: i64, now: i64) -> bool {
        match ready_condition(p) {
            Some((true, _)) if min_ready_seconds <= 0 => true,
            Some((true, since)) => since.is_some_and(|t| t + min_ready_seconds <= now),
            _ => false,
        }
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
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;

    #[test]
    fn activity_readiness_and_availability() {
        let pod = |v: serde_json::Value| -> Pod { crate::typed::decode(&v).unwrap() };
        let mut v = json!({"status": {"phase": "Running"}});
        assert!(typed::is_active(&pod(v.clone())));
        assert!(!typed::is_ready(&pod(v.clone())));
        v["status"]["conditions"] = json!([{"type": "Ready", "status": "True",
            "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
        let p = pod(v.clone());
        assert!(typed::is_ready(&p));
        let t = seconds("2024-01-01T00:00:00Z").unwrap();
        assert!(typed::is_available(&p, 0, t));
        assert!(!typed::is_available(&p, 10, t + 9));
        assert!(typed::is_available(&p, 10, t + 10));
        v["status"]["phase"] = json!("Failed");
        assert!(!typed::is_active(&pod(v.clone())));
        assert!(typed::is_terminal(&pod(v.clone())));
        v["status"]["phase"] = json!("Running");
        v["metadata"] = json!({"deletionTimestamp": "2024-01-01T00:00:00Z"});
        assert!(!typed::is_active(&pod(v)));
    }
}
