//! Bad input is answered with a Kubernetes Status naming the problem, and the server keeps
//! serving afterwards.

use crate::support::{Server, manifest};

fn pod_with(probe_yaml: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: main\n    image: x\n    command: [/bin/sleep, '60']\n{probe_yaml}"
    )
}

#[test]
fn invalid_probes_are_rejected_with_field_paths() {
    let s = Server::start();
    let cases = [
        (
            "    livenessProbe:\n      exec: {command: [cat, /tmp/x]}\n      tcpSocket: {port: 80}\n",
            "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
        ),
        (
            "    livenessProbe:\n      exec: {command: [cat, /tmp/x]}\n      successThreshold: 2\n",
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        ),
        (
            "    readinessProbe:\n      exec: {command: [cat, /tmp/x]}\n      periodSeconds: -1\n",
            "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
        ),
    ];
    for (probe, want) in cases {
        let (_, err) = s.kubectl_err(&["create", "-f", "-"], Some(&pod_with(probe)));
        assert!(err.contains(r#"The Pod "p" is invalid: "#), "{err}");
        assert!(err.contains(want), "want {want:?} in:\n{err}");
    }
    let (_, err) = s.kubectl_err(&["get", "pod", "p"], None);
    assert!(err.contains("not found"), "nothing half-applied: {err}");
}

#[test]
fn unknown_fields_strict_warn_ignore() {
    let s = Server::start();
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\nbogus: 1\n";
    // kubectl's default validation is Strict: the server refuses.
    let (_, err) = s.kubectl_err(&["create", "-f", "-"], Some(bad));
    assert!(err.contains(r#"unknown field "bogus""#), "{err}");
    // Warn: created, with a warning printed by kubectl.
    let out = s.kubectl_full(&["create", "--validate=warn", "-f", "-"], Some(bad));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"unknown field "bogus""#));
    s.kubectl(&["delete", "cm", "c"]);
    // Ignore: created silently.
    let out = s.kubectl_full(&["create", "--validate=false", "-f", "-"], Some(bad));
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("unknown field"));
}

#[test]
fn raw_bad_requests_get_status_answers_and_server_keeps_serving() {
    let s = Server::start();
    let token = s.token.clone();
    let pods = "/api/v1/namespaces/default/pods";

    // No token, wrong token: 401 Status.
    for t in [None, Some("wrong")] {
        let (code, body) = s.curl("GET", pods, t, None, None);
        assert_eq!(code, 401, "{body}");
        let st: serde_json::Value = serde_json::from_str(&body).expect("Status body");
        assert_eq!(st["kind"], "Status");
        assert_eq!(st["reason"], "Unauthorized");
    }
    // Malformed JSON and YAML bodies: 400.
    for (ct, body) in [
        ("application/json", &b"{\"kind\": \"Pod\", "[..]),
        ("application/yaml", &b"kind: [unclosed"[..]),
    ] {
        let (code, text) = s.curl("POST", pods, Some(&token), Some(ct), Some(body));
        assert!(code == 400 || code == 415, "{ct}: {code} {text}");
        let st: serde_json::Value = serde_json::from_str(&text).expect("Status body");
        assert_eq!(st["kind"], "Status");
    }
    // A 4 MiB body: 413.
    let mut big = b"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"big\"},\"data\":{\"x\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 4 << 20));
    big.extend(b"\"}}");
    let (code, text) = s.curl(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(&token),
        Some("application/json"),
        Some(&big),
    );
    assert_eq!(code, 413, "{text}");
    // kubectl (HTTP/2) gets the Status too.
    let (_d, big_file) = crate::support::manifest("big.json", std::str::from_utf8(&big).unwrap());
    let (_, err) = s.kubectl_err(&["create", "-f", big_file.to_str().unwrap()], None);
    assert!(
        err.contains("Error from server (RequestEntityTooLarge)"),
        "{err}"
    );

    // A stale resourceVersion: 409 Conflict.
    let cm = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1"}}"#;
    let (code, text) = s.curl(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(&token),
        Some("application/json"),
        Some(cm),
    );
    assert_eq!(code, 201, "{text}");
    let created: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let update = |value: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"c","resourceVersion":"{rv}"}},"data":{{"a":"{value}"}}}}"#
        )
    };
    let (code, _) = s.curl(
        "PUT",
        "/api/v1/namespaces/default/configmaps/c",
        Some(&token),
        Some("application/json"),
        Some(update("2").as_bytes()),
    );
    assert_eq!(code, 200);
    let (code, text) = s.curl(
        "PUT",
        "/api/v1/namespaces/default/configmaps/c",
        Some(&token),
        Some("application/json"),
        Some(update("3").as_bytes()),
    );
    assert_eq!(code, 409, "{text}");
    let st: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(st["reason"], "Conflict");

    // Unknown resource and unknown path: 404 Status.
    let (code, _) = s.curl(
        "GET",
        "/api/v1/namespaces/default/widgets",
        Some(&token),
        None,
        None,
    );
    assert_eq!(code, 404);

    // Still serving.
    assert_eq!(s.kubectl(&["get", "--raw", "/readyz"]), "ok");
    assert_eq!(
        s.kubectl(&["get", "cm", "c", "-o", "jsonpath={.data.a}"]),
        "2"
    );
}

#[test]
fn kubeconfig_is_private_and_points_at_the_real_port() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start();
    let mode = std::fs::metadata(&s.kubeconfig)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!s.url.ends_with(":0"), "{}", s.url);
    let (_d, p) = manifest(
        "x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    s.kubectl(&["apply", "-f", p.to_str().unwrap()]);
}

#[test]
fn update_errors_are_listed_in_upstream_order() {
    let s = Server::start();
    let svc = |label: &str, ip: &str, affinity: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  labels: {{a: '{label}'}}\nspec:\n  clusterIP: {ip}\n  sessionAffinity: {affinity}\n  ports:\n  - {{port: 80}}\n"
        )
    };
    s.kubectl_in(
        &["create", "-f", "-"],
        Some(&svc("ok", "10.96.77.5", "None")),
    );
    // The common ObjectMeta check of every update, then ValidateServiceUpdate: the update
    // rules before ValidateService (which checks ObjectMeta again, then the spec). kubectl
    // prints one line per cause, skipping repeats (the second label cause).
    let (_, err) = s.kubectl_err(
        &["replace", "-f", "-"],
        Some(&svc("-x-", "10.96.77.6", "Sticky")),
    );
    let label = r#"metadata.labels: Invalid value: "-x-": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"#;
    let want = format!(
        "The Service \"s\" is invalid: \n* {label}\n* spec.clusterIPs[0]: Invalid value: []string{{\"10.96.77.6\"}}: may not change once set\n* spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"\n"
    );
    assert!(err.contains(&want), "want:\n{want}\nin:\n{err}");
    // A Deployment's update function never re-checks ObjectMeta: the label once.
    let deploy = |label: &str, replicas: i32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  labels: {{a: '{label}'}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: d}}}}\n  template:\n    metadata: {{labels: {{app: d}}}}\n    spec:\n      containers:\n      - {{name: c, image: x}}\n"
        )
    };
    s.kubectl_in(&["create", "-f", "-"], Some(&deploy("ok", 1)));
    let (_, err) = s.kubectl_err(&["replace", "-f", "-"], Some(&deploy("-x-", -1)));
    let want = format!(
        "The Deployment \"d\" is invalid: \n* {label}\n* spec.replicas: Invalid value: -1: must be greater than or equal to 0\n"
    );
    assert!(err.contains(&want), "want:\n{want}\nin:\n{err}");
}
