//! OpenAPI as kubectl uses it: `kubectl explain` at any depth (v3 schemas), client-side
//! validation of `v1 List` inputs (kubectl checks those against the v2 document), and
//! client-side `kubectl apply` computing its strategic merge patch from the v2 document's
//! patch metadata.

use crate::support::Server;

#[test]
fn kubectl_explain_reads_the_served_schemas_at_any_depth() {
    let s = Server::start();
    let ports = s.kubectl(&["explain", "pod.spec.containers.ports"]);
    for want in [
        "KIND:",
        "Pod",
        "VERSION:",
        "v1",
        "FIELD: ports <[]ContainerPort>",
        "containerPort\t<integer> -required-",
        "protocol\t<string>",
    ] {
        assert!(ports.contains(want), "explain lacks {want:?}:\n{ports}");
    }
    let strategy = s.kubectl(&["explain", "deployment.spec.strategy", "--recursive"]);
    for want in [
        "GROUP:",
        "apps",
        "rollingUpdate",
        "maxSurge",
        "maxUnavailable",
        "type",
    ] {
        assert!(
            strategy.contains(want),
            "explain lacks {want:?}:\n{strategy}"
        );
    }
    let rc = s.kubectl(&[
        "explain",
        "runtimeclass.handler",
        "--api-version=node.k8s.io/v1",
    ]);
    assert!(
        rc.contains("handler specifies the underlying runtime"),
        "{rc}"
    );
    let (_, err) = s.kubectl_err(&["explain", "pod.spec.nosuchfield"], None);
    assert!(
        err.contains("field \"nosuchfield\" does not exist"),
        "{err}"
    );
}

const LIST: &str = "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: one}
  data: {a: \"1\"}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: two}
  data: {b: \"2\"}
";

#[test]
fn a_v1_list_is_validated_against_the_v2_document_and_applied() {
    let s = Server::start();
    let out = s.kubectl_in(&["apply", "-f", "-"], Some(LIST));
    assert!(out.contains("configmap/one created"), "{out}");
    assert!(out.contains("configmap/two created"), "{out}");
    let bad = LIST.replace("data: {b: \"2\"}", "data: {b: \"2\"}\n  bogus: true");
    let (_, err) = s.kubectl_err(&["apply", "-f", "-"], Some(&bad));
    assert!(
        err.contains("unknown field \"bogus\"") && err.contains("io.k8s.api.core.v1.ConfigMap"),
        "{err}"
    );
    // Nothing of the refused list was applied.
    let two = s.get_json(&["get", "configmap", "two"]);
    assert!(two.get("bogus").is_none());
    // A string where the schema says integer (a string field takes anything, as upstream's
    // validator has it).
    let typed = format!(
        "{LIST}- apiVersion: v1\n  kind: Service\n  metadata: {{name: web}}\n  spec: {{ports: [{{port: eighty}}]}}\n"
    );
    let (_, err) = s.kubectl_err(&["apply", "-f", "-"], Some(&typed));
    assert!(
        err.contains("Service.spec.ports[0].port") && err.contains("expected \"integer\""),
        "{err}"
    );
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      runtimeClassName: paddock-host
      containers:
      - name: main
        image: example/web:1.0
        command: [sleep, '1000']
        env:
        - {name: A, value: '1'}
        - {name: B, value: '2'}
";

#[test]
fn client_side_apply_merges_lists_by_their_keys() {
    let s = Server::start();
    s.kubectl_in(&["apply", "-f", "-"], Some(DEPLOYMENT));
    // Someone else adds an env var; the next apply changes B only and keeps C, which a patch
    // that replaced the whole list would drop.
    s.kubectl(&["set", "env", "deployment/web", "C=3"]);
    let changed = DEPLOYMENT.replace("{name: B, value: '2'}", "{name: B, value: '22'}");
    let out = s.kubectl_in(&["apply", "-f", "-"], Some(&changed));
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let d = s.get_json(&["get", "deployment", "web"]);
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &serde_json::json!([
            {"name": "A", "value": "1"},
            {"name": "B", "value": "22"},
            {"name": "C", "value": "3"}
        ]),
        "{d}"
    );
}
