//! Probe timing seen through the API: when a pod becomes Ready relative to its container start.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use crate::support::{Server, manifest};

/// A readiness probe with successThreshold 3 and period 2 passes its third probe no sooner than
/// about 3 s after the container started, as on a kubelet: its probes run at the start, once
/// more at the next pod sync (a PLEG relist, 1 s, later) and then every period. paddock used to
/// run all three within milliseconds and report Ready in the second the container started.
/// `startedAt` and the Ready condition's `lastTransitionTime` have whole seconds, which keeps a
/// gap of 3 s or more when the real one is 3 s or more.
#[test]
fn readiness_success_threshold_is_not_met_at_container_start() {
    let (_c, config) = manifest(
        "config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unrelated}\n",
    );
    let s = Server::up(&[&config]);
    // A worker made less than a period after the agent started first waits a random part of
    // the period (so does the kubelet's, after a restart): its first probes can then come back
    // to back. The pod is created once that window (one period, 2 s) is over.
    std::thread::sleep(Duration::from_secs(2));
    let (_p, pod) = manifest(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: slow-ready}\nspec:\n  containers:\n  - name: main\n    image: busybox\n    command: [sleep, '3600']\n    readinessProbe:\n      exec: {command: ['true']}\n      periodSeconds: 2\n      successThreshold: 3\n",
    );
    s.kubectl(&["apply", "-f", &pod.display().to_string()]);
    let pod: Pod = s.eventually("the pod Ready", || {
        let pod: Pod = serde_json::from_value(s.get_json(&["get", "pod", "slow-ready"])).ok()?;
        let ready = pod
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(pod)
    });
    let status = pod.status.as_ref().expect("status");
    let started = status
        .container_statuses
        .as_ref()
        .expect("container statuses")[0]
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .expect("running with startedAt")
        .0;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .and_then(|c| c.last_transition_time.as_ref())
        .expect("Ready lastTransitionTime")
        .0;
    let gap = ready.as_second() - started.as_second();
    assert!(
        gap >= 3,
        "Ready at {ready}, {gap} s after the container started at {started}"
    );
}
