//! `kubectl apply` (client-side and server-side), `create`, `replace`, `delete` as a user runs
//! them, with default validation (no `--validate=false`).

use crate::support::{Server, manifest};

const DEPLOY_V1: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: main
        image: example/web:1.0
        command: ["/bin/sleep", "3600"]
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
        ports:
        - {containerPort: 8080, name: http}
      - name: side
        image: example/side:1.0
        command: ["/bin/sleep", "3600"]
"#;

// Drops env var A, changes B, drops container "side" and main's command.
const DEPLOY_V2: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: main
        image: example/web:1.0
        env:
        - {name: B, value: "3"}
        ports:
        - {containerPort: 8080, name: http}
"#;

#[test]
fn apply_creates_then_unchanged_then_configured_and_fields_really_go() {
    let s = Server::start();
    let (_d1, v1) = manifest("web.yaml", DEPLOY_V1);
    let out = s.kubectl(&["apply", "-f", v1.to_str().unwrap()]);
    assert_eq!(out.trim(), "deployment.apps/web created");

    let out = s.kubectl(&["apply", "-f", v1.to_str().unwrap()]);
    assert_eq!(out.trim(), "deployment.apps/web unchanged");

    let (_d2, v2) = manifest("web.yaml", DEPLOY_V2);
    let out = s.kubectl(&["apply", "-f", v2.to_str().unwrap()]);
    assert_eq!(out.trim(), "deployment.apps/web configured");

    let live = s.get_json(&["get", "deployment", "web"]);
    let containers = live["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(
        containers.len(),
        1,
        "container side must be gone: {containers:#?}"
    );
    let main = &containers[0];
    assert_eq!(main["name"], "main");
    assert!(
        main.get("command").is_none(),
        "command must be gone: {main:#?}"
    );
    assert_eq!(
        main["env"],
        serde_json::json!([{"name": "B", "value": "3"}])
    );
    // Fields the manifest never set keep their server defaults.
    assert_eq!(main["ports"][0]["protocol"], "TCP");
    assert_eq!(main["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(live["metadata"]["generation"], 2);
    let last = live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("last-applied annotation kept verbatim");
    assert!(
        last.ends_with('\n'),
        "annotation must round-trip verbatim: {last:?}"
    );
    assert!(!last.contains("side"));

    // And applying v2 again is a no-op.
    let out = s.kubectl(&["apply", "-f", v2.to_str().unwrap()]);
    assert_eq!(out.trim(), "deployment.apps/web unchanged");
}

#[test]
fn apply_server_side_creates_and_updates() {
    let s = Server::start();
    let (_d1, v1) = manifest("web.yaml", DEPLOY_V1);
    let out = s.kubectl(&["apply", "--server-side", "-f", v1.to_str().unwrap()]);
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let (_d2, v2) = manifest("web.yaml", DEPLOY_V2);
    let out = s.kubectl(&["apply", "--server-side", "-f", v2.to_str().unwrap()]);
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let live = s.get_json(&["get", "deployment", "web", "--show-managed-fields"]);
    let containers = live["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(
        containers.len(),
        1,
        "server-side apply must drop what the manager no longer applies"
    );
    assert_eq!(
        containers[0]["env"],
        serde_json::json!([{"name": "B", "value": "3"}])
    );
    let managers: Vec<&str> = live["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"kubectl"), "{managers:?}");
}

#[test]
fn create_twice_is_already_exists_and_replace_and_delete_work() {
    let s = Server::start();
    let (_d, v1) = manifest("web.yaml", DEPLOY_V1);
    let path = v1.to_str().unwrap();
    assert_eq!(
        s.kubectl(&["create", "-f", path]).trim(),
        "deployment.apps/web created"
    );
    let (code, err) = s.kubectl_err(&["create", "-f", path], None);
    assert_eq!(code, 1);
    assert!(
        err.contains(r#"Error from server (AlreadyExists): error when creating"#)
            && err.contains(r#"deployments.apps "web" already exists"#),
        "{err}"
    );

    let (_d2, v2) = manifest("web.yaml", DEPLOY_V2);
    assert_eq!(
        s.kubectl(&["replace", "-f", v2.to_str().unwrap()]).trim(),
        "deployment.apps/web replaced"
    );
    let live = s.get_json(&["get", "deployment", "web"]);
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    assert_eq!(
        s.kubectl(&["delete", "-f", v2.to_str().unwrap()]).trim(),
        r#"deployment.apps "web" deleted"#
    );
    let (_, err) = s.kubectl_err(&["get", "deployment", "web"], None);
    assert!(err.contains(r#"deployments.apps "web" not found"#), "{err}");
}

#[test]
fn create_from_stdin_and_dry_run_server_stores_nothing() {
    let s = Server::start();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {k: v}\n";
    let out = s.kubectl_in(&["create", "--dry-run=server", "-f", "-"], Some(cm));
    assert!(
        out.contains("configmap/cfg created (server dry run)"),
        "{out}"
    );
    let (_, err) = s.kubectl_err(&["get", "configmap", "cfg"], None);
    assert!(err.contains("not found"), "{err}");
    s.kubectl_in(&["create", "-f", "-"], Some(cm));
    assert_eq!(
        s.kubectl(&["get", "cm", "cfg", "-o", "jsonpath={.data.k}"]),
        "v"
    );
}

const LB_LOCAL: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: lb
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
"#;

// The same service as a ClusterIP one: kubectl apply leaves the allocated NodePort and
// health check port in its patch's "unchanged" part, so the server must drop them.
const LB_NOW_CLUSTER_IP: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: lb
spec:
  type: ClusterIP
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
"#;

#[test]
fn local_load_balancer_gets_a_health_check_port_kept_by_apply_and_dropped_with_the_type() {
    let s = Server::start();
    let (_d1, v1) = manifest("lb.yaml", LB_LOCAL);
    let out = s.kubectl(&["apply", "-f", v1.to_str().unwrap()]);
    assert_eq!(out.trim(), "service/lb created");
    let live = s.get_json(&["get", "service", "lb"]);
    let hc = live["spec"]["healthCheckNodePort"]
        .as_i64()
        .expect("healthCheckNodePort allocated");
    let np = live["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&hc), "{hc}");
    assert_ne!(hc, np);
    let out = s.kubectl(&["apply", "-f", v1.to_str().unwrap()]);
    assert_eq!(out.trim(), "service/lb unchanged");

    // A load balancer (here: kubectl itself) reports an address; ipMode defaults to VIP.
    s.kubectl(&[
        "patch",
        "service",
        "lb",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}"#,
    ]);
    let mode = s.kubectl(&[
        "get",
        "service",
        "lb",
        "-o",
        "jsonpath={.status.loadBalancer.ingress[0].ipMode}",
    ]);
    assert_eq!(mode, "VIP");
    // ipMode without an ip is refused.
    let (_, err) = s.kubectl_err(
        &[
            "patch",
            "service",
            "lb",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"loadBalancer":{"ingress":[{"hostname":"lb.example.com","ipMode":"Proxy"}]}}}"#,
        ],
        None,
    );
    assert!(
        err.contains("status.loadBalancer.ingress[0].ipMode: Forbidden: may not be specified when `ip` is not set"),
        "{err}"
    );

    // Another service may not take the health check port: upstream's allocator answers 500.
    let taken = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: other}}\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: {hc}\n  ports:\n  - {{port: 80}}\n"
    );
    let (_, err) = s.kubectl_err(&["create", "-f", "-"], Some(&taken));
    assert!(
        err.contains(&format!(
            "Error from server (InternalError): error when creating \"STDIN\": Internal error occurred: failed to allocate requested HealthCheck NodePort {hc}: provided port is already allocated"
        )),
        "{err}"
    );

    // Now a ClusterIP service: NodePort, health check port, policy and LB status go.
    let (_d2, v2) = manifest("lb.yaml", LB_NOW_CLUSTER_IP);
    let out = s.kubectl(&["apply", "-f", v2.to_str().unwrap()]);
    assert_eq!(out.trim(), "service/lb configured");
    let live = s.get_json(&["get", "service", "lb"]);
    let spec = &live["spec"];
    assert!(spec.get("healthCheckNodePort").is_none(), "{spec:#}");
    assert!(spec.get("externalTrafficPolicy").is_none(), "{spec:#}");
    assert!(spec["ports"][0].get("nodePort").is_none(), "{spec:#}");
    assert_eq!(live["status"], serde_json::json!({"loadBalancer": {}}));
    // And the port is free again.
    s.kubectl_in(&["create", "-f", "-"], Some(&taken));
    let other = s.get_json(&["get", "service", "other"]);
    assert_eq!(other["spec"]["healthCheckNodePort"], hc);
}

const PRUNE_SET: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: keep, labels: {app: pruned}}
data: {a: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: drop, labels: {app: pruned}}
data: {a: "2"}
---
apiVersion: v1
kind: Service
metadata: {name: drop-svc, labels: {app: pruned}}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unlabelled}
data: {a: "3"}
"#;

/// `kubectl apply --prune -l`: kubectl maps every kind of its default allow-list (which
/// includes ReplicationController and Ingress, so both must be served) and deletes the
/// labelled objects a previous apply made that the new input no longer has.
#[test]
fn apply_prune_deletes_what_the_input_no_longer_has() {
    let s = Server::up(&[]);
    let out = s.kubectl_in(&["apply", "-f", "-"], Some(PRUNE_SET));
    assert!(out.contains("configmap/drop created"), "{out}");
    let keep_only = PRUNE_SET
        .split("---\n")
        .next()
        .unwrap_or_default()
        .to_string();
    let out = s.kubectl_in(
        &["apply", "--prune", "-l", "app=pruned", "-f", "-"],
        Some(&keep_only),
    );
    assert!(out.contains("configmap/keep unchanged"), "{out}");
    assert!(out.contains("configmap/drop pruned"), "{out}");
    assert!(out.contains("service/drop-svc pruned"), "{out}");
    let left = s.kubectl(&[
        "get",
        "configmaps",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let left: Vec<&str> = left.split_whitespace().collect();
    assert!(
        left.contains(&"keep") && left.contains(&"unlabelled"),
        "{left:?}"
    );
    assert!(!left.contains(&"drop"), "{left:?}");
    let (_, err) = s.kubectl_err(&["get", "service", "drop-svc"], None);
    assert!(err.contains("NotFound"), "{err}");
}
