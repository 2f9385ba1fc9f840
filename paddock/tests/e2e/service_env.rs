//! Service environment variables seen from inside a container started by `paddock up`, as
//! the kubelet sets them: the Services of the pod's namespace that exist when the container
//! starts (unless `enableServiceLinks: false`) plus `default/kubernetes` always.

use std::os::fd::AsRawFd;

use crate::support::{NetNs, Server, manifest, run};

const APP: &str = r#"apiVersion: v1
kind: Service
metadata: {name: my-db}
spec:
  selector: {app: db}
  ports:
  - {name: sql, port: 5432, targetPort: 5432}
  - {name: metrics, port: 9187, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: headless-db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: v1
kind: Pod
metadata: {name: linked}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'env | sort; echo "URL=$0"; sleep 3600', 'postgres://$(MY_DB_SERVICE_HOST):$(MY_DB_SERVICE_PORT_SQL)/x']
    env:
    - {name: MY_DB_PORT, value: mine}
---
apiVersion: v1
kind: Pod
metadata: {name: unlinked}
spec:
  restartPolicy: Never
  enableServiceLinks: false
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'env | sort; echo done; sleep 3600']
"#;

/// `NAME=value` lines of a container's log.
fn vars(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get<'a>(vars: &'a [(String, String)], k: &str) -> Option<&'a str> {
    vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[test]
fn containers_see_service_variables_like_the_kubelet_sets_them() {
    let (_d, path) = manifest("app.yaml", APP);
    let s = Server::up(&[&path]);
    let ip = s.kubectl(&["get", "svc", "my-db", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("10.96."), "allocated ClusterIP: {ip:?}");

    let log = s.eventually("the linked pod printed its environment", || {
        let out = s.kubectl_full(&["logs", "linked"], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("URL=").then_some(text)
    });
    let env = vars(&log);
    let want = [
        ("MY_DB_SERVICE_HOST", ip.clone()),
        ("MY_DB_SERVICE_PORT", "5432".to_string()),
        ("MY_DB_SERVICE_PORT_SQL", "5432".to_string()),
        ("MY_DB_SERVICE_PORT_METRICS", "9187".to_string()),
        ("MY_DB_PORT_5432_TCP", format!("tcp://{ip}:5432")),
        ("MY_DB_PORT_5432_TCP_PROTO", "tcp".to_string()),
        ("MY_DB_PORT_5432_TCP_PORT", "5432".to_string()),
        ("MY_DB_PORT_5432_TCP_ADDR", ip.clone()),
        ("MY_DB_PORT_9187_UDP", format!("udp://{ip}:9187")),
        ("MY_DB_PORT_9187_UDP_PROTO", "udp".to_string()),
        ("MY_DB_PORT_9187_UDP_PORT", "9187".to_string()),
        ("MY_DB_PORT_9187_UDP_ADDR", ip.clone()),
        // The container's own value wins over the service variable.
        ("MY_DB_PORT", "mine".to_string()),
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1".to_string()),
        ("KUBERNETES_SERVICE_PORT", "443".to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS", "443".to_string()),
        ("KUBERNETES_PORT", "tcp://10.96.0.1:443".to_string()),
        ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443".to_string()),
        ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1".to_string()),
        // `$(VAR)` in args sees service variables.
        ("URL", format!("postgres://{ip}:5432/x")),
    ];
    for (k, v) in &want {
        assert_eq!(get(&env, k), Some(v.as_str()), "{k} in:\n{log}");
    }
    assert!(
        !log.contains("HEADLESS_DB_"),
        "a headless service has no variables:\n{log}"
    );

    let log = s.eventually("the unlinked pod printed its environment", || {
        let out = s.kubectl_full(&["logs", "unlinked"], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("done").then_some(text)
    });
    let env = vars(&log);
    assert_eq!(
        get(&env, "KUBERNETES_SERVICE_HOST"),
        Some("10.96.0.1"),
        "{log}"
    );
    assert!(
        !log.contains("MY_DB_"),
        "enableServiceLinks: false hides the namespace's services:\n{log}"
    );
}

/// A Service manifest named `name` with `spec` (flow-style YAML).
fn service_yaml(name: &str, spec: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {spec}\n")
}

/// Bad selectors and ports are refused by kubectl with upstream's 422 text, field by field
/// (kubectl lists several causes one per line); a NodePort already taken is refused by the
/// allocator.
#[test]
fn bad_services_are_refused_with_upstreams_field_errors() {
    let s = Server::start();
    let cases = [
        (
            "{selector: {app: 'bad value!'}, ports: [{port: 80}]}",
            "spec.selector: Invalid value: \"bad value!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ),
        (
            "{ports: [{port: 0}]}",
            "\n* spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive\n* spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive\n",
        ),
        (
            "{ports: [{port: 70000, targetPort: 80}]}",
            "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        (
            "{ports: [{name: a, port: 80}, {name: a, port: 81}]}",
            "spec.ports[1].name: Duplicate value: \"a\"",
        ),
        (
            "{ports: [{port: 80}, {port: 81}]}",
            "\n* spec.ports[0].name: Required value\n* spec.ports[1].name: Required value\n",
        ),
        (
            "{ports: [{port: 80, targetPort: Bad_Name}]}",
            "spec.ports[0].targetPort: Invalid value: \"Bad_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        ),
        (
            "{ports: [{port: 80, protocol: HTTP}]}",
            "spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        ),
        (
            "{type: NodePort, ports: [{port: 80, nodePort: 80}]}",
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
        ),
    ];
    for (spec, want) in cases {
        let doc = service_yaml("bad", spec);
        let (_, err) = s.kubectl_err(&["create", "-f", "-"], Some(&doc));
        let want = format!("The Service \"bad\" is invalid: {want}");
        assert!(err.contains(&want), "{spec}:\nwant {want}\ngot  {err}");
    }
    s.kubectl_in(
        &["create", "-f", "-"],
        Some(&service_yaml(
            "first",
            "{type: NodePort, ports: [{port: 80, nodePort: 30080}]}",
        )),
    );
    let (_, err) = s.kubectl_err(
        &["create", "-f", "-"],
        Some(&service_yaml(
            "second",
            "{type: NodePort, ports: [{port: 80, nodePort: 30080}]}",
        )),
    );
    assert!(
        err.contains("The Service \"second\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"),
        "{err}"
    );
}

/// The service addresses the proxy of `paddock up` put on the node are gone once it stops:
/// the namespace is kept open through a descriptor so it can be looked at after `up` exits.
#[test]
fn cluster_ips_leave_the_node_when_paddock_up_stops() {
    let (_d, path) = manifest(
        "svc.yaml",
        &service_yaml("web", "{selector: {app: web}, ports: [{port: 80}]}"),
    );
    let ns = NetNs::new();
    let handle = std::fs::File::open(format!("/run/netns/{}", ns.name)).expect("open netns");
    let path = path.display().to_string();
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        &["up", "--default-runtime", "host", "-f", &path],
        Some(ns),
    );
    let addrs = || {
        let mut ip = std::process::Command::new("nsenter");
        ip.arg(format!(
            "--net=/proc/{}/fd/{}",
            std::process::id(),
            handle.as_raw_fd()
        ))
        .args(["ip", "-o", "addr"]);
        String::from_utf8_lossy(&run(ip, None).stdout).into_owned()
    };
    let ip = s.kubectl(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    s.eventually("the ClusterIP held on the node", || {
        addrs().contains(&format!(" {ip}/")).then_some(())
    });
    drop(s.stop());
    let left = addrs();
    assert!(
        !left.contains(&format!(" {ip}/")) && !left.contains(" 10.96.0.1/"),
        "service addresses left after stop:\n{left}"
    );
}
