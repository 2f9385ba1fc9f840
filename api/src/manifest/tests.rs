use std::io::Write;

use serde_json::json;

use super::*;

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        livenessProbe:
          httpGet: {port: 80}
          successThreshold: 2
---
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"#;

#[test]
fn multi_document_yaml() {
    let docs = decode_bytes(APP.as_bytes(), "app.yaml").unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1].value["kind"], "Service");
    assert_eq!(docs[1].index, 1);
    let err = check_document(&docs[0]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "app.yaml: document 1 (Deployment \"web\"): spec.template.spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"
    );
    let (info, value) = check_document(&docs[1]).unwrap();
    assert_eq!(info.plural, "services");
    assert_eq!(value["spec"]["type"], "ClusterIP");
}

/// The octal file modes of the Kubernetes docs (`defaultMode: 0400`) read as kubectl reads
/// them (256), not refused as the float 400.
#[test]
fn octal_modes_as_kubectl_reads_them() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: x}]\n  volumes:\n  - name: s\n    secret: {secretName: s, defaultMode: 0400, items: [{key: k, path: k, mode: 0600}]}\n";
    let docs = decode_bytes(pod.as_bytes(), "pod.yaml").unwrap();
    let (_, value) = check_document(&docs[0]).unwrap();
    let secret = &value["spec"]["volumes"][0]["secret"];
    assert_eq!(secret["defaultMode"], 256);
    assert_eq!(secret["items"][0]["mode"], 384);
}

#[test]
fn json_inputs_and_lists() {
    let docs = decode_bytes(br#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}]}"#, "l.json").unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1].item, Some(1));
    assert_eq!(
        docs[1].describe(),
        "l.json: document 1, item 2 (ConfigMap \"b\")"
    );
    let docs = decode_bytes(b"[{\"a\":1},{\"b\":2}]", "a.json").unwrap();
    assert_eq!(docs.len(), 2);
    let docs = decode_bytes(b"{\"a\":1}\n{\"b\":2}", "s.json").unwrap();
    assert_eq!(docs[1].value, json!({"b": 2}));
}

#[test]
fn bad_input_errors() {
    let e = decode_bytes(b"a: [1, 2\n", "bad.yaml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad.yaml: invalid YAML: line 1 column 4: unclosed bracket '['"
    );
    let e = decode_bytes(b"k: 1\n---\nk: 1\nk: 2\n", "dup.yaml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "dup.yaml: invalid YAML: line 4 column 1: duplicate mapping key: k"
    );
    let e = decode_bytes(b"{\"a\": }", "bad.json").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("bad.json: invalid JSON: expected value at line 1 column 7"),
        "{e}"
    );
    let docs = decode_bytes(b"kind: Pod\n", "x.yaml").unwrap();
    assert_eq!(
        check_document(&docs[0]).unwrap_err().to_string(),
        "x.yaml: document 1 (Pod \"\"): error validating data: [apiVersion not set]"
    );
    let docs = decode_bytes(
        b"apiVersion: v1\nkind: Gizmo\nmetadata: {name: g}\n",
        "x.yaml",
    )
    .unwrap();
    assert_eq!(
        check_document(&docs[0]).unwrap_err().to_string(),
        "x.yaml: document 1 (Gizmo \"g\"): no matches for kind \"Gizmo\" in version \"v1\""
    );
    let docs = decode_bytes(
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containerz: []\n",
        "x.yaml",
    )
    .unwrap();
    assert_eq!(
        check_document(&docs[0]).unwrap_err().to_string(),
        "x.yaml: document 1 (Pod \"p\"): Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.containerz\""
    );
    let docs = decode_bytes(b"- 1\n", "x.yaml").unwrap();
    assert!(
        check_document(&docs[0])
            .unwrap_err()
            .to_string()
            .ends_with("expected an object, got a list")
    );
    let docs = decode_bytes(b"apiVersion: v1\nkind: Pod\nmetadata: {generateName: p-}\nspec:\n  containers: [{name: c, image: x, env: [{name: A, value: 8080}]}]\n", "x.yaml").unwrap();
    let e = check_document(&docs[0]).unwrap_err().to_string();
    assert!(
        e.contains(
            "spec.containers[0].env[0].value: invalid type: integer `8080`, expected a string"
        ),
        "{e}"
    );
    assert!(decode_bytes(&vec![b' '; MAX_BYTES + 1], "big").is_err());
}

#[test]
fn folders_files_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let mut f = std::fs::File::create(dir.path().join(name)).unwrap();
        f.write_all(body.as_bytes()).unwrap();
    };
    write(
        "b.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
    );
    write(
        "a.json",
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}",
    );
    write("c.txt", "ignored");
    std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
    let docs = read_paths(&[dir.path().to_path_buf()]).unwrap();
    let names: Vec<_> = docs
        .iter()
        .map(|d| d.value["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let e = read_paths(&[dir.path().join("missing.yaml")]).unwrap_err();
    assert!(matches!(e, ManifestError::Io { .. }));
}

#[test]
fn cluster_scoped_namespace_is_ignored() {
    let docs = decode_bytes(
        b"apiVersion: v1\nkind: Namespace\nmetadata: {name: team, namespace: default}\n",
        "ns.yaml",
    )
    .unwrap();
    let (info, value) = check_document(&docs[0]).unwrap();
    assert_eq!(info.kind, "Namespace");
    assert_eq!(
        value["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );
}

#[test]
fn local_load_balancers_pass_without_the_allocated_health_check_port() {
    let lb = "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n";
    let docs = decode_bytes(lb.as_bytes(), "lb.yaml").unwrap();
    let (_, value) = check_document(&docs[0]).unwrap();
    // The stand-in only serves the check; the server allocates the real port.
    assert!(value["spec"].get("healthCheckNodePort").is_none());
    // A given value is still checked.
    let bad = lb.replace("ports:", "healthCheckNodePort: 70000\n  ports:");
    let docs = decode_bytes(bad.as_bytes(), "lb.yaml").unwrap();
    assert_eq!(
        check_document(&docs[0]).unwrap_err().to_string(),
        "lb.yaml: document 1 (Service \"lb\"): spec.healthCheckNodePort: Invalid value: 70000: must be between 1 and 65535, inclusive"
    );
}

#[test]
fn autoscaling_v1_documents_are_checked_in_the_stored_version() {
    let hpa = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 3\n  targetCPUUtilizationPercentage: 70\n";
    let docs = decode_bytes(hpa.as_bytes(), "hpa.yaml").unwrap();
    let (info, value) = check_document(&docs[0]).unwrap();
    assert_eq!(info.version, "v1");
    assert_eq!(value["apiVersion"], "autoscaling/v2");
    assert_eq!(
        value["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    let bad = hpa.replace("maxReplicas: 3", "maxReplicas: 0");
    let docs = decode_bytes(bad.as_bytes(), "hpa.yaml").unwrap();
    let e = check_document(&docs[0]).unwrap_err().to_string();
    assert!(
        e.starts_with("hpa.yaml: document 1 (HorizontalPodAutoscaler \"web\"): spec.maxReplicas: Invalid value: 0"),
        "{e}"
    );
    let unknown = hpa.replace("maxReplicas: 3", "maxReplicas: 3\n  metrics: []");
    let docs = decode_bytes(unknown.as_bytes(), "hpa.yaml").unwrap();
    let e = check_document(&docs[0]).unwrap_err().to_string();
    assert!(e.contains("unknown field \"spec.metrics\""), "{e}");
}
