//! Building the worker's [`PodStatusView`] from the API objects, with the kubelet's rule for
//! whether an exited container will be restarted (`ContainerShouldRestart`, gate
//! `ContainerRestartRules` beta and on in 1.35) [pkg/api/v1/pod/util.go].

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodSpec, PodStatus};

use super::{ContainerState, ContainerStatusView, PodStatusView};
use crate::manager::started_at_instant;

/// Whether a container that exited with `exit_code` will be restarted: a matching
/// `restartPolicyRules` entry with action `Restart`, else the container's own `restartPolicy`,
/// else the pod's (`Always` when unset).
pub fn container_should_restart(container: &Container, pod: &PodSpec, exit_code: i32) -> bool {
    if let Some(policy) = &container.restart_policy {
        let rule = container.restart_policy_rules.iter().flatten().find(|r| {
            r.exit_codes.as_ref().is_some_and(|e| {
                let listed = e.values.iter().flatten().any(|v| *v == exit_code);
                match e.operator.as_str() {
                    "In" => listed,
                    "NotIn" => !listed,
                    _ => false,
                }
            })
        });
        if rule.is_some_and(|r| r.action == "Restart") {
            return true;
        }
        match policy.as_str() {
            "Always" => return true,
            "OnFailure" => return exit_code != 0,
            "Never" => return false,
            _ => {}
        }
    }
    match pod.restart_policy.as_deref() {
        Some("OnFailure") => exit_code != 0,
        Some("Never") => false,
        _ => true,
    }
}

fn container_view(
    cs: &ContainerStatus,
    spec: Option<&Container>,
    pod: Option<&PodSpec>,
) -> ContainerStatusView {
    let state = match &cs.state {
        Some(s) if s.running.is_some() => {
            let started_at = s
                .running
                .as_ref()
                .and_then(|r| r.started_at.as_ref())
                .and_then(|t| u64::try_from(t.0.as_second()).ok())
                .map(|secs| {
                    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
                })
                .map(started_at_instant)
                .unwrap_or_else(tokio::time::Instant::now);
            ContainerState::Running { started_at }
        }
        Some(s) if s.terminated.is_some() => {
            let code = s.terminated.as_ref().map(|t| t.exit_code).unwrap_or(0);
            let will_restart = match (spec, pod) {
                (Some(c), Some(p)) => container_should_restart(c, p, code),
                _ => true,
            };
            ContainerState::Terminated { will_restart }
        }
        _ => ContainerState::Waiting,
    };
    ContainerStatusView {
        name: cs.name.clone(),
        container_id: Arc::from(cs.container_id.as_deref().unwrap_or_default()),
        state,
        started: cs.started,
    }
}

impl PodStatusView {
    /// The view of `pod` with status `status` (the agent's cached status). `startedAt` (whole
    /// seconds on the wall clock) is carried over to the tokio clock.
    pub fn from_api(pod: &Pod, status: &PodStatus) -> Self {
        let spec = pod.spec.as_ref();
        let find = |list: Option<&Vec<Container>>, name: &str| {
            list.and_then(|l| l.iter().find(|c| c.name == name))
                .cloned()
        };
        let containers = status
            .container_statuses
            .iter()
            .flatten()
            .map(|cs| {
                container_view(
                    cs,
                    find(spec.map(|s| &s.containers), &cs.name).as_ref(),
                    spec,
                )
            })
            .collect();
        let init_containers = status
            .init_container_statuses
            .iter()
            .flatten()
            .map(|cs| {
                let c = find(spec.and_then(|s| s.init_containers.as_ref()), &cs.name);
                container_view(cs, c.as_ref(), spec)
            })
            .collect();
        Self {
            terminal: matches!(status.phase.as_deref(), Some("Failed") | Some("Succeeded")),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            pod_ip: status.pod_ip.clone().unwrap_or_default(),
            containers,
            init_containers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerRestartRule, ContainerRestartRuleOnExitCodes, ContainerState as K8sState,
        ContainerStateTerminated,
    };

    fn spec(policy: Option<&str>) -> PodSpec {
        PodSpec {
            restart_policy: policy.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn restart_follows_pod_then_container_policy_then_rules() {
        let c = Container::default();
        assert!(container_should_restart(&c, &spec(None), 0));
        assert!(container_should_restart(&c, &spec(Some("Always")), 0));
        assert!(!container_should_restart(&c, &spec(Some("OnFailure")), 0));
        assert!(container_should_restart(&c, &spec(Some("OnFailure")), 1));
        assert!(!container_should_restart(&c, &spec(Some("Never")), 1));
        let c = Container {
            restart_policy: Some("Never".into()),
            restart_policy_rules: Some(vec![ContainerRestartRule {
                action: "Restart".into(),
                exit_codes: Some(ContainerRestartRuleOnExitCodes {
                    operator: "In".into(),
                    values: Some(vec![42]),
                }),
            }]),
            ..Default::default()
        };
        assert!(container_should_restart(&c, &spec(Some("Always")), 42));
        assert!(!container_should_restart(&c, &spec(Some("Always")), 1));
    }

    #[test]
    fn view_from_api_objects() {
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    ..Default::default()
                }],
                restart_policy: Some("Never".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some("10.244.0.5".into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "app".into(),
                container_id: Some("paddock://1".into()),
                state: Some(K8sState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: 1,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let v = PodStatusView::from_api(&pod, &status);
        assert_eq!(v.pod_ip, "10.244.0.5");
        assert!(!v.terminal && !v.deleting);
        let c = v.container("app").expect("container");
        assert_eq!(&*c.container_id, "paddock://1");
        assert_eq!(
            c.state,
            ContainerState::Terminated {
                will_restart: false
            }
        );
    }
}
