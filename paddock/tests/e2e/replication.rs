//! ReplicationControllers (core/v1), the predecessor of ReplicaSets that older manifests still
//! use: applied with kubectl they run their pods, `kubectl get rc` and `kubectl get all` show
//! them, `kubectl scale rc` works, and deleting one removes its pods with kubectl's default
//! cascade but orphans them when an API client deletes without a propagation policy (the
//! kind's upstream default).

use crate::support::Server;

const RC: &str = r#"apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: legacy}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: [sh, -c, 'sleep 3600']
"#;

fn pods(s: &Server, selector: &str) -> Vec<String> {
    let out = s.kubectl(&[
        "get",
        "pods",
        "-l",
        selector,
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.metadata.deletionTimestamp} {end}",
    ]);
    // Pods being deleted (a deletionTimestamp after the `=`) do not count.
    out.split_whitespace()
        .filter_map(|p| p.strip_suffix('=').map(str::to_string))
        .collect()
}

#[test]
fn replication_controllers_run_scale_and_delete_as_upstream() {
    let s = Server::up(&[]);
    s.kubectl_in(&["apply", "-f", "-"], Some(RC));
    s.eventually("2 pods", || {
        (pods(&s, "app=legacy").len() == 2).then_some(())
    });
    s.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=legacy",
        "--timeout=60s",
    ]);
    let owner = s.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=legacy",
        "-o",
        "jsonpath={.items[0].metadata.ownerReferences[0].kind}",
    ]);
    assert_eq!(owner, "ReplicationController");
    // The selector and labels defaulted from the template.
    let sel = s.kubectl(&["get", "rc", "legacy", "-o", "jsonpath={.spec.selector.app}"]);
    assert_eq!(sel, "legacy");
    let table = s.eventually("the rc to report 2 ready", || {
        let t = s.kubectl(&["get", "rc", "legacy"]);
        t.lines()
            .nth(1)
            .is_some_and(|l| {
                l.split_whitespace().take(4).collect::<Vec<_>>() == ["legacy", "2", "2", "2"]
            })
            .then_some(t)
    });
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        "{table}"
    );
    let wide = s.kubectl(&["get", "rc", "legacy", "-o", "wide"]);
    assert!(wide.contains("app=legacy"), "{wide}");
    let all = s.kubectl(&["get", "all"]);
    assert!(all.contains("replicationcontroller/legacy"), "{all}");

    // The scale subresource.
    s.kubectl(&["scale", "rc", "legacy", "--replicas=3"]);
    s.eventually("3 pods", || {
        (pods(&s, "app=legacy").len() == 3).then_some(())
    });

    // kubectl deletes in the background: the pods go with the controller.
    s.kubectl(&["delete", "rc", "legacy"]);
    s.eventually("the pods to go", || {
        pods(&s, "app=legacy").is_empty().then_some(())
    });

    // An API client deleting without a policy orphans the pods (the kind's default).
    s.kubectl_in(&["apply", "-f", "-"], Some(&RC.replace("legacy", "kept")));
    s.eventually("2 pods", || (pods(&s, "app=kept").len() == 2).then_some(()));
    s.kubectl(&[
        "delete",
        "--raw",
        "/api/v1/namespaces/default/replicationcontrollers/kept",
    ]);
    s.eventually("the rc to go", || {
        let (_, err) = s.kubectl_err(&["get", "rc", "kept"], None);
        err.contains("NotFound").then_some(())
    });
    s.eventually("the pods to be released", || {
        let refs = s.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=kept",
            "-o",
            "jsonpath={.items[*].metadata.ownerReferences}",
        ]);
        refs.trim().is_empty().then_some(())
    });
    assert_eq!(pods(&s, "app=kept").len(), 2);
}
