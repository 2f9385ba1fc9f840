//! Pod-level decisions the kubelet makes outside a pod's containers: the AppArmor admission
//! check (`lifecycle.NewAppArmorAdmitHandler` over `pkg/security/apparmor`) and the active
//! deadline (`pkg/kubelet/active_deadline.go`). Both end a pod as `Failed` with a pod-level
//! reason and message; the worker ([`super::worker`]) applies them.
//!
//! AppArmor: a pod that asks for a profile other than `Unconfined` (a field of the pod's or a
//! container's `securityContext`, or the deprecated
//! `container.apparmor.security.beta.kubernetes.io/<container>` annotation) on a node whose
//! kernel does not enforce AppArmor is rejected, as the kubelet rejects it: phase `Failed`,
//! reason `AppArmor`, message `Pod was rejected: Cannot enforce AppArmor: AppArmor is not
//! enabled on the host`, and a Warning event. On a node that enforces it, a `Localhost`
//! profile is given to the runtime ([`container_profile`]).

use std::time::Duration;

use k8s_openapi::api::core::v1::{AppArmorProfile, Container, Pod};
use k8s_openapi::jiff::Timestamp;

/// The kubelet's reason for a pod it rejected over AppArmor (`AppArmorNotAdmittedReason`).
pub const APPARMOR_REASON: &str = "AppArmor";
/// The deprecated per-container annotation's key prefix.
const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
/// The annotation value for no profile.
const ANNOTATION_UNCONFINED: &str = "unconfined";

/// The active deadline's reason and message (event and pod status).
pub const DEADLINE_REASON: &str = "DeadlineExceeded";
/// See [`DEADLINE_REASON`].
pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// Whether this host enforces AppArmor, as runc decides it (`apparmor.IsEnabled`): the
/// securityfs directory exists and the module says `Y`. Blocking (reads sysfs).
pub fn apparmor_enabled() -> bool {
    std::path::Path::new("/sys/kernel/security/apparmor").is_dir()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.first() == Some(&b'Y'))
}

/// Whether the pod asks for AppArmor (`isRequired`).
fn apparmor_required(pod: &Pod) -> bool {
    let confined =
        |p: &Option<AppArmorProfile>| p.as_ref().is_some_and(|p| p.type_ != "Unconfined");
    let Some(spec) = &pod.spec else {
        return false;
    };
    if confined(
        &spec
            .security_context
            .as_ref()
            .and_then(|s| s.app_armor_profile.clone()),
    ) {
        return true;
    }
    if all_containers(pod).any(|c| {
        confined(
            &c.security_context
                .as_ref()
                .and_then(|s| s.app_armor_profile.clone()),
        )
    }) {
        return true;
    }
    pod.metadata
        .annotations
        .iter()
        .flatten()
        .any(|(k, v)| k.starts_with(APPARMOR_ANNOTATION_PREFIX) && v != ANNOTATION_UNCONFINED)
}

fn all_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    spec.into_iter()
        .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
}

/// The kubelet's admission of a new pod on this node: `Err((reason, message))` when it is
/// rejected (the message is the handler's, without the status's "Pod was rejected: ").
pub fn admit(pod: &Pod, apparmor: bool) -> Result<(), (String, String)> {
    // A pod already running or finished is not checked again.
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase.is_some_and(|p| p != "Pending") {
        return Ok(());
    }
    if apparmor_required(pod) && !apparmor {
        return Err((
            APPARMOR_REASON.into(),
            "Cannot enforce AppArmor: AppArmor is not enabled on the host".into(),
        ));
    }
    Ok(())
}

/// A container's AppArmor profile (`GetProfile`): its own field, else its annotation, else
/// the pod's field.
pub fn container_profile(pod: &Pod, container: &str) -> Option<AppArmorProfile> {
    let spec = pod.spec.as_ref()?;
    let own = all_containers(pod)
        .find(|c| c.name == container)
        .map(|c| c.security_context.as_ref())
        .or_else(|| {
            (spec.ephemeral_containers.iter().flatten())
                .find(|e| e.name == container)
                .map(|e| e.security_context.as_ref())
        })
        .flatten()
        .and_then(|s| s.app_armor_profile.clone());
    if own.is_some() {
        return own;
    }
    let annotation = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(&format!("{APPARMOR_ANNOTATION_PREFIX}{container}")));
    if let Some(v) = annotation {
        return Some(match v.as_str() {
            "runtime/default" => AppArmorProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            },
            ANNOTATION_UNCONFINED => AppArmorProfile {
                type_: "Unconfined".into(),
                localhost_profile: None,
            },
            other => AppArmorProfile {
                type_: "Localhost".into(),
                localhost_profile: Some(other.strip_prefix("localhost/").unwrap_or(other).into()),
            },
        });
    }
    spec.security_context
        .as_ref()
        .and_then(|s| s.app_armor_profile.clone())
}

/// How long until the pod's `activeDeadlineSeconds` runs out, counted from `status.startTime`
/// (`pastActiveDeadline`): `Some(ZERO)` when it has, `None` without a deadline or a start.
pub fn deadline_left(pod: &Pod, start: Option<Timestamp>, now: Timestamp) -> Option<Duration> {
    let secs = pod.spec.as_ref()?.active_deadline_seconds?;
    let start = start?;
    let allowed = Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    let elapsed = now.duration_since(start);
    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
    Some(allowed.saturating_sub(elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    const REJECTED: &str = "Cannot enforce AppArmor: AppArmor is not enabled on the host";

    #[test]
    fn apparmor_is_required_by_fields_or_annotations_other_than_unconfined() {
        let cases = [
            (
                serde_json::json!({"spec": {"containers": [{"name": "c"}]}}),
                false,
            ),
            (
                serde_json::json!({"spec": {"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "c"}]}}),
                true,
            ),
            (
                serde_json::json!({"spec": {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}, "containers": [{"name": "c"}]}}),
                false,
            ),
            (
                serde_json::json!({"spec": {"initContainers": [{"name": "i", "securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}}], "containers": [{"name": "c"}]}}),
                true,
            ),
            (
                serde_json::json!({"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "runtime/default"}}, "spec": {"containers": [{"name": "c"}]}}),
                true,
            ),
            (
                serde_json::json!({"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}}, "spec": {"containers": [{"name": "c"}]}}),
                false,
            ),
        ];
        for (p, required) in cases {
            let p = pod(p);
            let got = admit(&p, false);
            if required {
                assert_eq!(got, Err(("AppArmor".into(), REJECTED.into())), "{p:?}");
            } else {
                assert_eq!(got, Ok(()), "{p:?}");
            }
            // A host that enforces it admits them all.
            assert_eq!(admit(&p, true), Ok(()));
        }
        // A pod already running is not checked again.
        let running = pod(serde_json::json!({
            "spec": {"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "c"}]},
            "status": {"phase": "Running"}
        }));
        assert_eq!(admit(&running, false), Ok(()));
    }

    #[test]
    fn a_containers_profile_is_its_field_then_its_annotation_then_the_pods() {
        let p = pod(serde_json::json!({
            "metadata": {"annotations": {
                "container.apparmor.security.beta.kubernetes.io/b": "localhost/k8s-deny",
                "container.apparmor.security.beta.kubernetes.io/a": "runtime/default"
            }},
            "spec": {
                "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    {"name": "a", "securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "own"}}},
                    {"name": "b"},
                    {"name": "c"}
                ]
            }
        }));
        let get = |c: &str| {
            container_profile(&p, c).map(|p| (p.type_, p.localhost_profile.unwrap_or_default()))
        };
        assert_eq!(get("a"), Some(("Localhost".into(), "own".into())));
        assert_eq!(get("b"), Some(("Localhost".into(), "k8s-deny".into())));
        assert_eq!(get("c"), Some(("RuntimeDefault".into(), String::new())));
    }

    #[test]
    fn the_active_deadline_counts_from_the_start_time() {
        let p = pod(
            serde_json::json!({"spec": {"activeDeadlineSeconds": 30, "containers": [{"name": "c"}]}}),
        );
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let at = |s: i64| start + k8s_openapi::jiff::SignedDuration::from_secs(s);
        assert_eq!(
            deadline_left(&p, Some(start), at(10)),
            Some(Duration::from_secs(20))
        );
        assert_eq!(deadline_left(&p, Some(start), at(30)), Some(Duration::ZERO));
        assert_eq!(deadline_left(&p, Some(start), at(99)), Some(Duration::ZERO));
        // No start time yet, or no deadline: nothing to enforce.
        assert_eq!(deadline_left(&p, None, at(99)), None);
        let none = pod(serde_json::json!({"spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(deadline_left(&none, Some(start), at(99)), None);
    }
}
