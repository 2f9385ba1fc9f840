//! Upstream `UpdatePodCondition` (`pkg/api/v1/pod/util.go`): the one rule for setting a
//! pod condition, shared by the API server's binding (PodScheduled) and the controllers.

use serde_json::{Value, json};

/// Sets `cond` (type, status, reason, message) in `status.conditions`, keeping
/// `lastTransitionTime` unless the status changes; whether anything changed.
pub fn update(pod: &mut Value, cond: Value) -> bool {
    let now = crate::time::rfc3339(crate::time::now());
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
    fn keeps_transition_time_unless_status_changes() {
        let mut pod = json!({});
        assert!(update(&mut pod, json!({"type": "Ready", "status": "True"})));
        assert!(pod["status"]["conditions"][0]["lastProbeTime"].is_null());
        pod["status"]["conditions"][0]["lastTransitionTime"] = json!("2024-01-01T00:00:00Z");
        assert!(!update(
            &mut pod,
            json!({"type": "Ready", "status": "True"})
        ));
        assert!(update(
            &mut pod,
            json!({"type": "Ready", "status": "True", "reason": "r"})
        ));
        assert_eq!(
            pod["status"]["conditions"][0]["lastTransitionTime"],
            "2024-01-01T00:00:00Z"
        );
        assert!(update(
            &mut pod,
            json!({"type": "Ready", "status": "False"})
        ));
        assert_ne!(
            pod["status"]["conditions"][0]["lastTransitionTime"],
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(pod["status"]["conditions"].as_array().unwrap().len(), 1);
    }
}
