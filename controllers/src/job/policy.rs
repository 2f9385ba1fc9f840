//! `podFailurePolicy` (upstream `pkg/controller/job/pod_failure_policy.go`): the first rule
//! whose exit codes (of a terminated container with a non-zero code) or pod conditions match
//! a failed pod decides: `FailJob` fails the Job with a message naming the pod and the rule,
//! `Ignore` does not count the failure against `backoffLimit`, `Count` (and `FailIndex`)
//! counts it; no match counts it.

use k8s_openapi::api::batch::v1::{Job, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// `matchPodFailurePolicy`: (the FailJob message, whether the failure counts, the action).
pub(super) fn matches(
    policy: Option<&PodFailurePolicy>,
    p: &Pod,
) -> (Option<String>, bool, Option<String>) {
    let Some(policy) = policy else {
        return (None, true, None);
    };
    let ns = p.metadata.namespace.as_deref().unwrap_or("");
    let name = p.metadata.name.as_deref().unwrap_or("");
    let status = p.status.clone().unwrap_or_default();
    for (i, rule) in policy.rules.iter().enumerate() {
        let message;
        if let Some(req) = rule.on_exit_codes.as_ref() {
            let found = matching_container(status.container_statuses.as_deref(), req)
                .or_else(|| matching_container(status.init_container_statuses.as_deref(), req));
            let Some(cs) = found else { continue };
            let code = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map_or(0, |t| t.exit_code);
            message = Some(format!(
                "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {i}",
                cs.name, rule.action
            ));
        } else if let Some(patterns) = rule.on_pod_conditions.as_ref() {
            let conds = status.conditions.as_deref().unwrap_or(&[]);
            let hit = patterns.iter().find_map(|pat| {
                let want = pat.status.as_deref().unwrap_or("True");
                conds
                    .iter()
                    .find(|c| c.type_ == pat.type_ && c.status == want)
            });
            let Some(c) = hit else { continue };
            message = Some(format!(
                "Pod {ns}/{name} has condition {} matching {} rule at index {i}",
                c.type_, rule.action
            ));
        } else {
            continue;
        }
        let action = Some(rule.action.clone());
        return match rule.action.as_str() {
            "Ignore" => (None, false, action),
            "FailJob" => (message, true, action),
            _ => (None, true, action),
        };
    }
    (None, true, None)
}

/// `getMatchingContainerFromList`: a terminated container with a non-zero exit code the
/// requirement matches.
fn matching_container<'a>(
    list: Option<&'a [ContainerStatus]>,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<&'a ContainerStatus> {
    list?.iter().find(|cs| {
        let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) else {
            return false;
        };
        if req.container_name.as_deref().is_some_and(|n| n != cs.name) || t.exit_code == 0 {
            return false;
        }
        let listed = req.values.contains(&t.exit_code);
        match req.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            _ => false,
        }
    })
}

/// `getFailJobMessage`: the message of the first failed pod a FailJob rule matches.
pub(super) fn fail_job_message(
    job: &Job,
    pods: &[Pod],
    is_failed: fn(&Pod, &Job) -> bool,
) -> Option<String> {
    let policy = job.spec.as_ref()?.pod_failure_policy.as_ref()?;
    pods.iter()
        .filter(|p| is_failed(p, job))
        .find_map(|p| matches(Some(policy), p).0)
}
