//! Ingresses and IngressClasses (`networking.k8s.io/v1`) through kubectl, API side only:
//! the `paddock` IngressClass every cluster has (the default class), DefaultIngressClass
//! admission on `kubectl create ingress`, the `get` columns, upstream's 422s, the status
//! subresource, the deprecated class annotation's warning, discovery and `kubectl explain`.

use crate::support::Server;

/// The whitespace-separated cells of each line of `kubectl get` output (empty cells vanish).
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

const NO_PATH_TYPE: &str = r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bad}
spec:
  rules:
  - host: a.example.com
    http:
      paths:
      - path: /
        backend:
          service: {name: web, port: {number: 80}}
"#;

const RELATIVE_PREFIX: &str = r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bad}
spec:
  rules:
  - host: 10.0.0.1
    http:
      paths:
      - path: foo
        pathType: Prefix
        backend:
          service: {name: web, port: {number: 80}}
"#;

const LEGACY: &str = r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: legacy
  annotations: {kubernetes.io/ingress.class: nginx}
spec:
  defaultBackend:
    service: {name: web, port: {name: http}}
  tls:
  - hosts: [a.example.com]
    secretName: a-tls
"#;

#[test]
fn ingresses_are_served_defaulted_printed_and_validated_as_upstream() {
    let s = Server::start();

    // Discovery: both kinds, Ingress with its short name.
    let out = s.kubectl(&["api-resources", "--api-group=networking.k8s.io"]);
    let r = rows(&out);
    assert_eq!(
        r[0],
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        "{out}"
    );
    assert!(
        r.contains(
            &[
                "ingressclasses",
                "networking.k8s.io/v1",
                "false",
                "IngressClass"
            ]
            .map(String::from)
            .to_vec()
        ),
        "{out}"
    );
    assert!(
        r.contains(
            &[
                "ingresses",
                "ing",
                "networking.k8s.io/v1",
                "true",
                "Ingress"
            ]
            .map(String::from)
            .to_vec()
        ),
        "{out}"
    );

    // The cluster's IngressClass, default, with paddock's controller.
    let out = s.kubectl(&["get", "ingressclass"]);
    let r = rows(&out);
    assert_eq!(r[0], ["NAME", "CONTROLLER", "PARAMETERS", "AGE"], "{out}");
    assert_eq!(
        &r[1][..3],
        ["paddock", "paddock.dev/ingress-controller", "<none>"],
        "{out}"
    );
    let default = s.kubectl(&[
        "get",
        "ingressclass",
        "paddock",
        "-o",
        r#"jsonpath={.metadata.annotations.ingressclass\.kubernetes\.io/is-default-class}"#,
    ]);
    assert_eq!(default, "true");

    // kubectl create ingress: the default class is filled in by admission.
    let out = s.kubectl(&["create", "ingress", "web", "--rule=a.example.com/*=web:80"]);
    assert_eq!(out.trim(), "ingress.networking.k8s.io/web created");
    let ing = s.get_json(&["get", "ingress", "web", "-o", "json"]);
    assert_eq!(ing["spec"]["ingressClassName"], "paddock", "{ing}");
    assert_eq!(ing["metadata"]["generation"], 1, "{ing}");
    assert_eq!(
        ing["status"],
        serde_json::json!({"loadBalancer": {}}),
        "{ing}"
    );
    let path = &ing["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(path["path"], "/", "{ing}");
    assert_eq!(path["pathType"], "Prefix", "{ing}");

    let out = s.kubectl(&["get", "ing"]);
    let r = rows(&out);
    assert_eq!(
        r[0],
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
        "{out}"
    );
    // ADDRESS is empty until a controller reports one.
    assert_eq!(
        &r[1][..4],
        ["web", "paddock", "a.example.com", "80"],
        "{out}"
    );

    // The status subresource: what a controller writes shows as ADDRESS; the spec is kept.
    s.kubectl(&[
        "patch",
        "ingress",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"127.0.0.1"}]}},"spec":{"ingressClassName":"other"}}"#,
    ]);
    let out = s.kubectl(&["get", "ingress", "web"]);
    let r = rows(&out);
    assert_eq!(
        &r[1][..5],
        ["web", "paddock", "a.example.com", "127.0.0.1", "80"],
        "{out}"
    );
    let (_, err) = s.kubectl_err(
        &[
            "patch",
            "ingress",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"loadBalancer":{"ingress":[{"hostname":"10.0.0.1"}]}}}"#,
        ],
        None,
    );
    assert!(
        err.contains(r#"status.loadBalancer.ingress[0].hostname: Invalid value: "10.0.0.1": must be a DNS name, not an IP address"#),
        "{err}"
    );

    // Upstream's 422s.
    let (_, err) = s.kubectl_err(&["apply", "-f", "-"], Some(NO_PATH_TYPE));
    assert!(
        err.contains(r#"The Ingress "bad" is invalid: spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"#),
        "{err}"
    );
    let (_, err) = s.kubectl_err(&["apply", "-f", "-"], Some(RELATIVE_PREFIX));
    assert!(
        err.contains(r#"The Ingress "bad" is invalid: "#)
            && err.contains(r#"spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address"#)
            && err.contains(r#"spec.rules[0].http.paths[0].path: Invalid value: "foo": must be an absolute path"#),
        "{err}"
    );
    let (_, err) = s.kubectl_err(&["get", "ingress", "bad"], None);
    assert!(err.contains("NotFound"), "{err}");

    // The legacy annotation: accepted with upstream's warning, no default class, 443 shown.
    let out = s.kubectl_full(&["apply", "-f", "-"], Some(LEGACY));
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"Warning: annotation "kubernetes.io/ingress.class" is deprecated, please use 'spec.ingressClassName' instead"#),
        "{err}"
    );
    let out = s.kubectl(&["get", "ingress", "legacy", "--no-headers"]);
    let r = rows(&out);
    assert_eq!(r[0][..5], ["legacy", "<none>", "*", "80,", "443"], "{out}");

    // IngressClass validation: the controller is required, domain-prefixed and immutable.
    let (_, err) = s.kubectl_err(
        &["apply", "-f", "-"],
        Some("apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\nspec: {controller: nginx}\n"),
    );
    assert!(
        err.contains(r#"The IngressClass "nginx" is invalid: spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")"#),
        "{err}"
    );
    let (_, err) = s.kubectl_err(
        &[
            "patch",
            "ingressclass",
            "paddock",
            "--type=merge",
            "-p",
            r#"{"spec":{"controller":"example.com/other"}}"#,
        ],
        None,
    );
    assert!(
        err.contains(r#"spec.controller: Invalid value: "example.com/other": field is immutable"#),
        "{err}"
    );

    // The schema kubectl explain reads.
    let out = s.kubectl(&["explain", "ingress.spec.rules.http.paths.pathType"]);
    assert!(out.contains("KIND:       Ingress"), "{out}");
    assert!(out.contains("FIELD: pathType <string>"), "{out}");
    assert!(out.contains("ImplementationSpecific"), "{out}");

    s.kubectl(&["delete", "ingress", "web", "legacy"]);
}
