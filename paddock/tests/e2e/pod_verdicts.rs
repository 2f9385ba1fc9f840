//! Pod-level verdicts of the kubelet, through kubectl: `activeDeadlineSeconds` (set at creation
//! or patched onto a running pod) fails the pod with `DeadlineExceeded` and stops its
//! containers; a pod asking for AppArmor on a host that does not enforce it is rejected at
//! admission (`AppArmor`, "Pod was rejected: Cannot enforce AppArmor: AppArmor is not enabled
//! on the host"), as kind's nodes reject it.

use crate::support::{Server, manifest};

const PODS: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: deadline}
spec:
  activeDeadlineSeconds: 3
  containers:
  - {name: main, image: busybox, command: [sleep, "1000"]}
---
apiVersion: v1
kind: Pod
metadata: {name: patched}
spec:
  containers:
  - {name: main, image: busybox, command: [sleep, "1000"]}
---
apiVersion: v1
kind: Pod
metadata: {name: apparmor}
spec:
  securityContext:
    appArmorProfile: {type: RuntimeDefault}
  containers:
  - {name: main, image: busybox, command: [sleep, "1000"]}
---
apiVersion: v1
kind: Pod
metadata:
  name: annotated
  annotations: {container.apparmor.security.beta.kubernetes.io/main: unconfined}
spec:
  containers:
  - {name: main, image: busybox, command: [sleep, "1000"]}
"#;

fn host_enforces_apparmor() -> bool {
    std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|b| b.first() == Some(&b'Y'))
}

#[test]
fn active_deadlines_and_apparmor_admission_fail_pods_as_the_kubelet_does() {
    let (_d, path) = manifest("pods.yaml", PODS);
    let s = Server::up(&[&path]);
    let verdict = |name: &str| {
        s.eventually(&format!("{name} failed"), || {
            let out = s.kubectl(&[
                "get",
                "pod",
                name,
                "-o",
                "jsonpath={.status.phase}|{.status.reason}|{.status.message}",
            ]);
            out.starts_with("Failed|").then_some(out)
        })
    };

    // The deadline counts from the pod's start; the container is stopped.
    assert_eq!(
        verdict("deadline"),
        "Failed|DeadlineExceeded|Pod was active on the node longer than the specified deadline"
    );
    let terminated = s.eventually("deadline's container stopped", || {
        let out = s.kubectl(&[
            "get",
            "pod",
            "deadline",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}",
        ]);
        (!out.is_empty()).then_some(out)
    });
    // Stopped with SIGTERM, as a pod deletion stops it.
    assert_eq!(terminated, "143");
    // (`kubectl get` shows the container's `Error` here, as upstream's printer prefers a
    // terminated container's reason to the pod's.)
    let events = s.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=deadline,reason=DeadlineExceeded",
        "-o",
        "jsonpath={.items[*].type}|{.items[*].message}",
    ]);
    assert!(
        events.starts_with("Normal|Pod was active on the node longer than the specified deadline"),
        "{events}"
    );

    // A running pod given a deadline that has already passed fails at once.
    s.eventually("patched running", || {
        (s.kubectl(&["get", "pod", "patched", "-o", "jsonpath={.status.phase}"]) == "Running")
            .then_some(())
    });
    s.kubectl(&[
        "patch",
        "pod",
        "patched",
        "-p",
        r#"{"spec":{"activeDeadlineSeconds":1}}"#,
    ]);
    assert!(verdict("patched").starts_with("Failed|DeadlineExceeded|"));

    // "unconfined" asks for nothing: it runs.
    s.eventually("annotated running", || {
        (s.kubectl(&["get", "pod", "annotated", "-o", "jsonpath={.status.phase}"]) == "Running")
            .then_some(())
    });
    if host_enforces_apparmor() {
        eprintln!("this host enforces AppArmor: the rejection is not checked");
        return;
    }
    assert_eq!(
        verdict("apparmor"),
        "Failed|AppArmor|Pod was rejected: Cannot enforce AppArmor: AppArmor is not enabled on the host"
    );
    // It never ran: no container statuses, no IP; the scheduler's condition stays.
    let st = s.get_json(&["get", "pod", "apparmor"]);
    assert!(st["status"]["containerStatuses"].is_null(), "{st}");
    assert!(st["status"]["podIP"].is_null(), "{st}");
    let conds: Vec<&str> = st["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(conds, ["PodScheduled"], "{st}");
    let table = s.kubectl(&["get", "pod", "apparmor", "--no-headers"]);
    assert!(table.contains("AppArmor"), "{table}");
    let events = s.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=apparmor,reason=AppArmor",
        "-o",
        "jsonpath={.items[*].type}|{.items[*].message}",
    ]);
    assert_eq!(
        events,
        "Warning|Cannot enforce AppArmor: AppArmor is not enabled on the host"
    );
}
