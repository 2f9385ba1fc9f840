use serde_json::{Value, json};

use super::*;

fn config() -> ViewConfig {
    ViewConfig {
        node_address: "127.0.0.1".into(),
        ingress_http_port: 80,
        ingress_https_port: 8443,
    }
}

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// A pod of `owner` (kind, name) or a bare one, with `status`.
fn pod(name: &str, owner: Option<(&str, &str)>, status: Value) -> Pod {
    let mut meta = json!({"name": name, "namespace": "default"});
    if let Some((kind, n)) = owner {
        meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": n,
            "uid": "u", "controller": true}]);
    }
    from(
        json!({"metadata": meta, "spec": {"nodeName": "n", "containers": [{"name": "c"}]},
        "status": status}),
    )
}

fn ready() -> Value {
    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": true,
            "restartCount": 0, "state": {"running": {}}}]})
}

fn running_not_ready(restarts: i32) -> Value {
    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": false,
            "restartCount": restarts, "state": {"running": {}}}]})
}

fn waiting(reason: &str, restarts: i32) -> Value {
    json!({"phase": "Pending",
        "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": false,
            "restartCount": restarts, "state": {"waiting": {"reason": reason}}}]})
}

fn event(pod: &str, reason: &str, message: &str) -> Event {
    from(
        json!({"metadata": {"name": format!("{pod}.{reason}"), "namespace": "default"},
        "reason": reason, "message": message,
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": "default"}}),
    )
}

fn deployment(name: &str, replicas: i32, ready: i32) -> Deployment {
    from(json!({"metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {}, "template": {}},
        "status": {"readyReplicas": ready, "updatedReplicas": replicas}}))
}

fn replica_set(name: &str, deployment: &str) -> ReplicaSet {
    from(json!({"metadata": {"name": name, "namespace": "default",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
            "name": deployment, "uid": "d", "controller": true}]},
        "spec": {"replicas": 2, "selector": {}}}))
}

/// The row that starts with `name` followed by two spaces (the name column).
fn row<'a>(lines: &'a [String], name: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.split("  ").next() == Some(name) || l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row {name} in {lines:#?}"))
}

/// A row's cells: runs of text separated by two or more spaces.
fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_deployment_row_counts_its_pods_states_and_restarts() {
    let mut m = Model::new(config());
    m.deployment(&deployment("web", 5, 1), false);
    m.replica_set(&replica_set("web-abc", "web"), false);
    let rs = Some(("ReplicaSet", "web-abc"));
    m.pod(&pod("web-abc-1", rs, ready()), false);
    m.pod(&pod("web-abc-2", rs, running_not_ready(2)), false);
    m.pod(
        &pod("web-abc-3", rs, waiting("ContainerCreating", 0)),
        false,
    );
    m.pod(
        &pod("web-abc-4", rs, waiting("ContainerCreating", 0)),
        false,
    );
    m.event(&event("web-abc-4", "Pulling", "Pulling image \"nginx\""));
    m.pod(&pod("web-abc-5", rs, waiting("ImagePullBackOff", 1)), false);
    let lines = m.render(200, 40);
    assert_eq!(
        cells(&lines[0]),
        [
            "WORKLOAD",
            "READY",
            "PODS",
            "RESTARTS",
            "LAST PROBE FAILURE"
        ]
    );
    assert_eq!(
        cells(row(&lines, "deployment/web")),
        [
            "deployment/web",
            "1/5",
            "1 ready, 1 probing, 1 pulling, 1 creating, 1 ImagePullBackOff",
            "3"
        ]
    );
    // The pull ends (Pulled): the pod is creating its container.
    m.event(&event("web-abc-4", "Pulled", "Successfully pulled image"));
    let lines = m.render(200, 40);
    assert!(
        row(&lines, "deployment/web").contains("1 ready, 1 probing, 2 creating,"),
        "{lines:#?}"
    );
    // The ReplicaSet has no row of its own; the pods of a deleted one leave the row.
    assert!(!lines.iter().any(|l| l.starts_with("replicaset/")));
    m.pod(&pod("web-abc-5", rs, waiting("ImagePullBackOff", 1)), true);
    assert!(!row(&m.render(200, 40), "deployment/web").contains("ImagePullBackOff"));
    // A rollout (old pods still there) says how far it is; a first start does not.
    let mut d = deployment("web", 5, 1);
    let status = d.status.as_mut().unwrap();
    status.updated_replicas = Some(0);
    m.deployment(&d, false);
    assert!(!row(&m.render(200, 40), "deployment/web").contains("updated"));
    d.status.as_mut().unwrap().replicas = Some(5);
    d.status.as_mut().unwrap().updated_replicas = Some(2);
    m.deployment(&d, false);
    assert!(
        row(&m.render(200, 40), "deployment/web").ends_with(", 2/5 updated  2"),
        "{:#?}",
        m.render(200, 40)
    );
}

#[test]
fn the_last_probe_failure_shows_until_everything_is_ready() {
    let mut m = Model::new(config());
    m.deployment(&deployment("web", 2, 1), false);
    m.replica_set(&replica_set("web-abc", "web"), false);
    let rs = Some(("ReplicaSet", "web-abc"));
    m.pod(&pod("web-abc-1", rs, ready()), false);
    m.pod(&pod("web-abc-2", rs, running_not_ready(0)), false);
    m.event(&event(
        "web-abc-1",
        "Unhealthy",
        "Liveness probe failed: HTTP probe failed with statuscode: 500",
    ));
    m.event(&event(
        "web-abc-2",
        "Unhealthy",
        "Readiness probe failed: cat: /ready: No such file or directory\nsecond line",
    ));
    let lines = m.render(200, 40);
    assert_eq!(
        cells(row(&lines, "deployment/web"))
            .last()
            .map(String::as_str),
        Some("Readiness probe failed: cat: /ready: No such file or directory"),
        "the latest failure, its first line"
    );
    // Other events change nothing.
    assert!(m.take_dirty());
    m.event(&event("web-abc-2", "Started", "Started container c"));
    assert!(!m.take_dirty());
    // Both ready: the failure is stale.
    m.pod(&pod("web-abc-2", rs, ready()), false);
    m.deployment(&deployment("web", 2, 2), false);
    let lines = m.render(200, 40);
    assert_eq!(
        cells(row(&lines, "deployment/web")),
        ["deployment/web", "2/2", "2 ready", "0"]
    );
}

#[test]
fn every_workload_kind_gets_a_row_and_the_system_ones_none() {
    let mut m = Model::new(config());
    m.stateful_set(
        &from(json!({"metadata": {"name": "db", "namespace": "data"},
            "spec": {"replicas": 3, "selector": {}, "template": {}, "serviceName": "db"},
            "status": {"replicas": 1, "readyReplicas": 1}})),
        false,
    );
    m.daemon_set(
        &from(
            json!({"metadata": {"name": "agent", "namespace": "default"},
            "spec": {"selector": {}, "template": {}},
            "status": {"desiredNumberScheduled": 1, "numberReady": 0, "currentNumberScheduled": 1,
                "numberMisscheduled": 0}}),
        ),
        false,
    );
    m.job(
        &from(json!({"metadata": {"name": "once", "namespace": "default"},
            "spec": {"template": {}},
            "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}})),
        false,
    );
    m.job(
        &from(json!({"metadata": {"name": "bad", "namespace": "default"},
            "spec": {"completions": 3, "template": {}},
            "status": {"failed": 7, "conditions": [{"type": "Failed", "status": "True",
                "reason": "BackoffLimitExceeded"}]}})),
        false,
    );
    m.replica_set(
        &from(json!({"metadata": {"name": "lone", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {}}, "status": {"replicas": 1}})),
        false,
    );
    m.cron_job(
        &from(
            json!({"metadata": {"name": "nightly", "namespace": "default"},
            "spec": {"schedule": "0 3 * * *", "suspend": true, "jobTemplate": {}},
            "status": {"active": [{"name": "nightly-1"}]}}),
        ),
        false,
    );
    m.pod(&pod("bare", None, waiting("CrashLoopBackOff", 4)), false);
    m.pod(
        &pod(
            "once-x",
            Some(("Job", "once")),
            json!({"phase": "Succeeded"}),
        ),
        false,
    );
    m.pod(
        &from(
            json!({"metadata": {"name": "coredns", "namespace": "kube-system"},
            "spec": {"containers": [{"name": "c"}]}}),
        ),
        false,
    );
    m.deployment(
        &from(
            json!({"metadata": {"name": "sys", "namespace": "kube-system"},
            "spec": {"selector": {}, "template": {}}}),
        ),
        false,
    );
    let lines = m.render(200, 40);
    let rows: Vec<Vec<String>> = lines[1..lines.len() - 1].iter().map(|l| cells(l)).collect();
    assert_eq!(
        rows,
        [
            vec!["statefulset/db -n data", "1/3", "0"],
            vec!["daemonset/agent", "0/1", "0"],
            vec!["replicaset/lone", "0/1", "0"],
            vec![
                "cronjob/nightly",
                "-",
                "schedule \"0 3 * * *\", 1 active, suspended",
                "0"
            ],
            vec!["job/bad", "0/3", "failed (BackoffLimitExceeded)", "0"],
            vec!["job/once", "1/1", "1 completed, complete", "0"],
            vec!["pod/bare", "0/1", "1 CrashLoopBackOff", "4"],
        ]
    );
    // A bare pod's row goes with it.
    m.pod(&pod("bare", None, waiting("CrashLoopBackOff", 4)), true);
    assert!(!m.render(200, 40).iter().any(|l| l.starts_with("pod/bare")));
}

#[test]
fn unscheduled_starting_and_terminating_pods_are_named() {
    let mut m = Model::new(config());
    let mut p = pod(
        "a",
        None,
        json!({"phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}),
    );
    p.spec.as_mut().unwrap().node_name = None;
    m.pod(&p, false);
    m.pod(&pod("b", None, json!({"phase": "Pending"})), false);
    let mut c = pod("c", None, ready());
    c.metadata.deletion_timestamp = Some(from(json!("2026-01-01T00:00:00Z")));
    m.pod(&c, false);
    let lines = m.render(200, 40);
    assert_eq!(cells(row(&lines, "pod/a"))[2], "1 unschedulable");
    assert_eq!(cells(row(&lines, "pod/b"))[2], "1 starting");
    assert_eq!(cells(row(&lines, "pod/c"))[2], "1 terminating");
}

#[test]
fn services_and_ingresses_say_where_to_open_them() {
    let svc: Service = from(json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.12",
            "ports": [{"port": 8080, "nodePort": 31076, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}));
    assert_eq!(
        service_addresses(&svc, &config()),
        [
            "10.96.0.12:8080/TCP",
            "127.0.0.1:8080 (load balancer)",
            "127.0.0.1:31076 (node port)"
        ]
    );
    let headless: Service = from(json!({"metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}}));
    assert_eq!(
        service_addresses(&headless, &config()),
        ["headless 5432/TCP"]
    );
    let external: Service = from(json!({"metadata": {"name": "x"},
        "spec": {"type": "ExternalName", "externalName": "example.com"}}));
    assert_eq!(service_addresses(&external, &config()), ["→ example.com"]);

    let ing: Ingress = from(json!({"metadata": {"name": "site", "namespace": "default"},
        "spec": {"tls": [{"hosts": ["secure.example"]}], "rules": [
            {"host": "hello.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {}},
                {"path": "/api", "pathType": "Prefix", "backend": {}}]}},
            {"host": "secure.example", "http": {"paths": [{"pathType": "Prefix", "backend": {}}]}},
            {"http": {"paths": [{"path": "/any", "pathType": "Prefix", "backend": {}}]}}]}}));
    assert_eq!(
        ingress_urls(&ing, &config()),
        [
            "http://hello.example/",
            "http://hello.example/api",
            "https://secure.example:8443/",
            "http://127.0.0.1/any"
        ]
    );
    let off = ViewConfig {
        ingress_http_port: 0,
        ..config()
    };
    assert_eq!(ingress_urls(&ing, &off), ["https://secure.example:8443/"]);

    let mut m = Model::new(config());
    m.service(&svc, false);
    m.service(
        &from(
            json!({"metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 443}]}}),
        ),
        false,
    );
    m.ingress(&ing, false);
    let lines = m.render(200, 40);
    // The name column is as wide as the widest name shown.
    assert_eq!(
        lines[1..lines.len() - 1],
        [
            "service/web   10.96.0.12:8080/TCP   127.0.0.1:8080 (load balancer)   127.0.0.1:31076 (node port)",
            "ingress/site  http://hello.example/   http://hello.example/api   https://secure.example:8443/   http://127.0.0.1/any"
        ],
        "{lines:#?}"
    );
    m.service(&svc, true);
    assert!(!m.render(200, 40).iter().any(|l| l.starts_with("service/")));
}

#[test]
fn lines_fit_the_terminal_width_and_rows_are_capped() {
    let mut m = Model::new(config());
    for i in 0..30 {
        m.pod(&pod(&format!("p{i:02}"), None, ready()), false);
    }
    for i in 0..15 {
        m.service(
            &from(
                json!({"metadata": {"name": format!("s{i:02}"), "namespace": "default"},
                "spec": {"clusterIP": "10.96.0.2", "ports": [{"port": 80}]}}),
            ),
            false,
        );
    }
    m.event(&event(
        "p00",
        "Unhealthy",
        &format!("Readiness probe failed: {}", "x".repeat(300)),
    ));
    m.pod(&pod("p00", None, running_not_ready(0)), false);
    // A tall terminal: the caps.
    let lines = m.render(60, 100);
    assert!(
        lines.iter().all(|l| console::measure_text_width(l) <= 60),
        "{lines:#?}"
    );
    assert!(row(&lines, "pod/p00").ends_with('…'), "{lines:#?}");
    let workloads = lines.iter().filter(|l| l.starts_with("pod/")).count();
    assert_eq!(workloads, MAX_WORKLOAD_ROWS - 1);
    assert!(lines.contains(&format!("+{} more workloads", 30 - (MAX_WORKLOAD_ROWS - 1))));
    let services = lines.iter().filter(|l| l.starts_with("service/")).count();
    assert_eq!(services, MAX_ADDRESS_ROWS - 1);
    assert!(lines.contains(&format!(
        "+{} more services and ingresses",
        15 - (MAX_ADDRESS_ROWS - 1)
    )));
    assert_eq!(
        lines.last().map(String::as_str),
        Some("Ctrl-C stops everything")
    );
    // A short terminal: never more lines than it has (one kept for the cursor).
    for height in [1, 6, 12, 24] {
        let lines = m.render(60, height);
        assert!(lines.len() < height.max(6), "{height}: {lines:#?}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("+") && l.ends_with("more workloads"))
        );
    }
    // A narrow one: still cut, never wrapped.
    assert!(
        m.render(5, 24)
            .iter()
            .all(|l| console::measure_text_width(l) <= 20)
    );
}

#[test]
fn the_footer_follows_the_stop() {
    let mut m = Model::new(config());
    assert!(m.take_dirty(), "the first frame is drawn");
    assert!(!m.take_dirty());
    let footer = |m: &Model| m.render(100, 24).last().cloned().unwrap();
    m.set_stop(Stop::Pods {
        left: None,
        elapsed_secs: 0,
    });
    assert!(m.take_dirty());
    assert_eq!(
        footer(&m),
        "stopping: pods (each within its grace period, 30 s at most), 0 s"
    );
    m.set_stop(Stop::Pods {
        left: Some(3),
        elapsed_secs: 2,
    });
    assert_eq!(
        footer(&m),
        "stopping: 3 pods left (each within its grace period, 30 s at most), 2 s"
    );
    m.set_stop(Stop::Pods {
        left: Some(1),
        elapsed_secs: 4,
    });
    assert!(footer(&m).starts_with("stopping: 1 pod left "));
    m.set_stop(Stop::Pods {
        left: Some(0),
        elapsed_secs: 5,
    });
    assert_eq!(
        footer(&m),
        "stopping: pods stopped; removing their sandboxes"
    );
    m.set_stop(Stop::ControlPlane);
    assert_eq!(
        footer(&m),
        "stopping: pods stopped; controllers and API server"
    );
    m.set_stop(Stop::Stopped);
    assert_eq!(footer(&m), "stopped");
    assert!(m.take_dirty());
    m.set_stop(Stop::Stopped);
    assert!(!m.take_dirty(), "no change, no redraw");
}

#[test]
fn events_of_unknown_pods_are_kept_within_a_bound() {
    let mut m = Model::new(config());
    for i in 0..MAX_UNSEEN_PODS + 10 {
        m.event(&event(
            &format!("gone-{i}"),
            "Unhealthy",
            "Readiness probe failed",
        ));
    }
    assert_eq!(m.pods.len(), MAX_UNSEEN_PODS);
    assert_eq!(m.unseen_pods, MAX_UNSEEN_PODS);
    // A pod seen after its events keeps them and no longer counts as unseen.
    m.pod(&pod("gone-0", None, running_not_ready(0)), false);
    assert_eq!(m.unseen_pods, MAX_UNSEEN_PODS - 1);
    assert_eq!(
        cells(row(&m.render(200, 40), "pod/gone-0"))
            .last()
            .map(String::as_str),
        Some("Readiness probe failed")
    );
    m.pod(&pod("gone-0", None, running_not_ready(0)), true);
    assert_eq!(m.unseen_pods, MAX_UNSEEN_PODS - 1);
    assert_eq!(m.pods.len(), MAX_UNSEEN_PODS - 1);
}
