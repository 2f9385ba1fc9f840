//! Whether an exited container is restarted: upstream `ContainerShouldRestart`
//! (`pkg/api/v1/pod/util.go`), which the kubelet's `ShouldContainerBeRestarted` calls for an
//! exited container with the `ContainerRestartRules` gate on (beta, on by default since 1.35).
//!
//! The container's `restartPolicyRules` are tried in order; the first whose exit-code
//! requirement matches decides if its action is `Restart`. Otherwise the container's own
//! `restartPolicy` decides, and without one the pod's (`Always` when unset). A restartable
//! init container (sidecar, `restartPolicy: Always`) therefore always restarts.
//!
//! [`restart_after_kill`] is the decision for a running container the kubelet kills.
//!
//! The caller applies what comes before this rule upstream: a pod being deleted or in a
//! terminal phase restarts nothing.

use k8s_openapi::api::core::v1::{Container, ContainerRestartRule, PodSpec};

/// Whether `container` of `pod`, having exited with `exit_code`, is restarted.
pub fn container_should_restart(container: &Container, pod: &PodSpec, exit_code: i32) -> bool {
    if let Some(policy) = container.restart_policy.as_deref() {
        // Any other action (none exists yet) falls through to the container's policy.
        if matching_rule(container, exit_code).is_some_and(|r| r.action == "Restart") {
            return true;
        }
        match policy {
            "Always" => return true,
            "OnFailure" => return exit_code != 0,
            "Never" => return false,
            // An unknown policy falls back to the pod's, as upstream's switch does.
            _ => {}
        }
    }
    match pod.restart_policy.as_deref() {
        Some("OnFailure") => exit_code != 0,
        Some("Never") => false,
        // `Always`, unset or unknown: upstream's default is to restart.
        _ => true,
    }
}

/// Whether a running container that is killed (a failed liveness or startup probe) is started
/// again: the container's `restartPolicy` when it has one, else the pod's; anything but
/// `Never` restarts. Upstream `computePodActions` (`shouldRestartOnFailure`, and with
/// `ContainerRestartRules` the container's own policy); the rules are not consulted, since a
/// running container has no exit code yet.
pub fn restart_after_kill(container: &Container, pod: &PodSpec) -> bool {
    let policy = container
        .restart_policy
        .as_deref()
        .or(pod.restart_policy.as_deref());
    policy != Some("Never")
}

/// The first of the container's rules whose exit-code requirement `exit_code` meets
/// (upstream `findMatchingContainerRestartRule`): `In` matches a listed code, `NotIn` an
/// unlisted one; a rule without `exitCodes` or with another operator never matches.
pub fn matching_rule(container: &Container, exit_code: i32) -> Option<&ContainerRestartRule> {
    container
        .restart_policy_rules
        .iter()
        .flatten()
        .find(|rule| {
            let Some(codes) = &rule.exit_codes else {
                return false;
            };
            let listed = codes.values.iter().flatten().any(|v| *v == exit_code);
            match codes.operator.as_str() {
                "In" => listed,
                "NotIn" => !listed,
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ContainerRestartRuleOnExitCodes;

    use super::*;

    fn pod(policy: Option<&str>) -> PodSpec {
        PodSpec {
            restart_policy: policy.map(str::to_string),
            ..Default::default()
        }
    }

    fn rule(action: &str, operator: &str, values: &[i32]) -> ContainerRestartRule {
        ContainerRestartRule {
            action: action.into(),
            exit_codes: Some(ContainerRestartRuleOnExitCodes {
                operator: operator.into(),
                values: Some(values.to_vec()),
            }),
        }
    }

    fn container(policy: Option<&str>, rules: Vec<ContainerRestartRule>) -> Container {
        Container {
            name: "c".into(),
            restart_policy: policy.map(str::to_string),
            restart_policy_rules: (!rules.is_empty()).then_some(rules),
            ..Default::default()
        }
    }

    #[test]
    fn without_a_container_policy_the_pods_decides() {
        let c = container(None, vec![]);
        for code in [0, 1, 137] {
            assert!(container_should_restart(&c, &pod(None), code));
            assert!(container_should_restart(&c, &pod(Some("Always")), code));
            assert!(!container_should_restart(&c, &pod(Some("Never")), code));
        }
        assert!(!container_should_restart(&c, &pod(Some("OnFailure")), 0));
        assert!(container_should_restart(&c, &pod(Some("OnFailure")), 1));
    }

    #[test]
    fn the_container_policy_overrides_the_pods() {
        let never = container(Some("Never"), vec![]);
        assert!(!container_should_restart(&never, &pod(Some("Always")), 1));
        let on_failure = container(Some("OnFailure"), vec![]);
        assert!(!container_should_restart(
            &on_failure,
            &pod(Some("Always")),
            0
        ));
        assert!(container_should_restart(
            &on_failure,
            &pod(Some("Never")),
            2
        ));
        // A sidecar restarts whatever the pod says.
        let always = container(Some("Always"), vec![]);
        assert!(container_should_restart(&always, &pod(Some("Never")), 0));
    }

    #[test]
    fn a_matching_restart_rule_restarts_despite_the_policy() {
        let c = container(Some("Never"), vec![rule("Restart", "In", &[42, 43])]);
        assert!(container_should_restart(&c, &pod(Some("Never")), 42));
        assert!(container_should_restart(&c, &pod(Some("Never")), 43));
        assert!(!container_should_restart(&c, &pod(Some("Always")), 1));

        let c = container(Some("Never"), vec![rule("Restart", "NotIn", &[0])]);
        assert!(container_should_restart(&c, &pod(None), 1));
        assert!(!container_should_restart(&c, &pod(None), 0));
    }

    #[test]
    fn rules_count_only_with_a_container_policy() {
        // Upstream reads the rules inside `if container.RestartPolicy != nil`.
        let c = container(None, vec![rule("Restart", "In", &[42])]);
        assert!(!container_should_restart(&c, &pod(Some("Never")), 42));
    }

    #[test]
    fn the_first_matching_rule_decides() {
        // The first match has an action other than Restart: fall back to the container's
        // policy; the later Restart rule is not consulted.
        let c = container(
            Some("Never"),
            vec![rule("Other", "In", &[42]), rule("Restart", "In", &[42])],
        );
        assert_eq!(
            matching_rule(&c, 42).map(|r| r.action.as_str()),
            Some("Other")
        );
        assert!(!container_should_restart(&c, &pod(None), 42));
        // A non-matching first rule is skipped.
        let c = container(
            Some("Never"),
            vec![rule("Restart", "In", &[1]), rule("Restart", "In", &[42])],
        );
        assert!(container_should_restart(&c, &pod(None), 42));
    }

    #[test]
    fn rules_without_exit_codes_or_with_an_unknown_operator_never_match() {
        let no_codes = ContainerRestartRule {
            action: "Restart".into(),
            exit_codes: None,
        };
        let c = container(
            Some("Never"),
            vec![no_codes, rule("Restart", "Between", &[42])],
        );
        assert!(matching_rule(&c, 42).is_none());
        assert!(!container_should_restart(&c, &pod(None), 42));
    }

    #[test]
    fn a_killed_container_restarts_unless_its_policy_or_else_the_pods_is_never() {
        let rules = vec![rule("Restart", "In", &[137])];
        assert!(restart_after_kill(&container(None, vec![]), &pod(None)));
        assert!(restart_after_kill(
            &container(None, vec![]),
            &pod(Some("OnFailure"))
        ));
        assert!(!restart_after_kill(
            &container(None, vec![]),
            &pod(Some("Never"))
        ));
        assert!(restart_after_kill(
            &container(Some("Always"), vec![]),
            &pod(Some("Never"))
        ));
        assert!(!restart_after_kill(
            &container(Some("Never"), rules),
            &pod(Some("Always"))
        ));
    }

    #[test]
    fn an_unknown_container_policy_falls_back_to_the_pods() {
        let c = container(Some("Sometimes"), vec![]);
        assert!(!container_should_restart(&c, &pod(Some("Never")), 1));
        assert!(container_should_restart(&c, &pod(Some("OnFailure")), 1));
    }
}
