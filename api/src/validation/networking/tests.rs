//! Networking validation against upstream's messages and field paths (cases after
//! `pkg/apis/networking/validation/validation_test.go`), through the decode pipeline where
//! decoding matters (a missing `pathType`, the defaulted parameters scope).

use serde_json::{Value, json};

use super::*;
use crate::object::{FieldValidation, decode, validate_create, validate_update};
use crate::registry::by_kind;

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn ingress() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "ingressClassName": "paddock",
            "rules": [{
                "host": "a.example.com",
                "http": {"paths": [{
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                }]},
            }],
        },
    })
}

fn decoded(v: Value) -> Value {
    let info = by_kind("networking.k8s.io/v1", "Ingress").unwrap();
    decode(info, v, FieldValidation::Strict).unwrap().value
}

/// The create-time spec errors of `v` after decoding.
fn spec_errors(v: Value) -> Vec<String> {
    messages(&validate_ingress(&decoded(v), None))
}

fn with_path(path: Value) -> Value {
    let mut v = ingress();
    v["spec"]["rules"][0]["http"]["paths"][0] = path;
    v
}

#[test]
fn a_valid_ingress_passes_and_keeps_its_shape() {
    assert!(spec_errors(ingress()).is_empty());
    let mut v = ingress();
    v["spec"]["rules"][0]["host"] = json!("*.example.com");
    v["spec"]["tls"] = json!([{"hosts": ["*.example.com", "a.example.com"], "secretName": "tls"}]);
    assert!(spec_errors(v).is_empty());
    // A default backend alone is enough; resource backends name a kind and a name.
    let v = json!({"metadata": {"name": "d", "namespace": "default"}, "spec": {
        "defaultBackend": {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "static"}}}});
    assert!(spec_errors(v).is_empty());
}

#[test]
fn path_types_and_paths() {
    let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"path": "/", "backend": backend}),
            vec![
                "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
            ],
        ),
        (
            json!({"path": "foo", "pathType": "Prefix", "backend": backend}),
            vec![
                "spec.rules[0].http.paths[0].path: Invalid value: \"foo\": must be an absolute path",
            ],
        ),
        (
            json!({"pathType": "Exact", "backend": backend}),
            vec!["spec.rules[0].http.paths[0].path: Invalid value: \"\": must be an absolute path"],
        ),
        (
            json!({"path": "/a//b/./c/../d%2fe%2F/..", "pathType": "Exact", "backend": backend}),
            vec![
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/./c/../d%2fe%2F/..\": must not contain '//'",
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/./c/../d%2fe%2F/..\": must not contain '/./'",
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/./c/../d%2fe%2F/..\": must not contain '/../'",
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/./c/../d%2fe%2F/..\": must not contain '%2f'",
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/./c/../d%2fe%2F/..\": must not contain '%2F'",
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/./c/../d%2fe%2F/..\": cannot end with '/..'",
            ],
        ),
        (
            json!({"path": "/foo/.", "pathType": "Prefix", "backend": backend}),
            vec![
                "spec.rules[0].http.paths[0].path: Invalid value: \"/foo/.\": cannot end with '/.'",
            ],
        ),
        // ImplementationSpecific: any absolute path (or none), regexes included.
        (
            json!({"path": "/foo/.*", "pathType": "ImplementationSpecific", "backend": backend}),
            vec![],
        ),
        (
            json!({"pathType": "ImplementationSpecific", "backend": backend}),
            vec![],
        ),
        (
            json!({"path": "foo", "pathType": "ImplementationSpecific", "backend": backend}),
            vec![
                "spec.rules[0].http.paths[0].path: Invalid value: \"foo\": must be an absolute path",
            ],
        ),
        (
            json!({"path": "/", "pathType": "Regex", "backend": backend}),
            vec![
                "spec.rules[0].http.paths[0].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
            ],
        ),
        // A missing pathType stops the path's checks before its backend.
        (
            json!({"path": "/", "backend": {}}),
            vec![
                "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
            ],
        ),
    ];
    for (path, want) in cases {
        assert_eq!(spec_errors(with_path(path.clone())), want, "{path}");
    }
}

#[test]
fn backends() {
    let at =
        |backend: Value| with_path(json!({"path": "/", "pathType": "Prefix", "backend": backend}));
    let p = "spec.rules[0].http.paths[0].backend";
    let cases: Vec<(Value, Vec<String>)> = vec![
        (
            json!({}),
            vec![format!(
                "{p}: Invalid value: \"\": resource or service backend is required"
            )],
        ),
        (
            json!({"service": {"name": "web", "port": {"number": 80}},
                   "resource": {"kind": "Bucket", "name": "b"}}),
            vec![format!(
                "{p}: Invalid value: \"\": cannot set both resource and service backends"
            )],
        ),
        (
            json!({"service": {"name": "web", "port": {"name": "http", "number": 80}}}),
            vec![format!(
                "{p}: Invalid value: \"\": cannot set both port name & port number"
            )],
        ),
        (
            json!({"service": {"name": "web"}}),
            vec![format!(
                "{p}: Required value: port name or number is required"
            )],
        ),
        (
            json!({"service": {"name": "web", "port": {"number": 0}}}),
            vec![format!(
                "{p}: Required value: port name or number is required"
            )],
        ),
        (
            json!({"service": {"name": "", "port": {"number": 70000}}}),
            vec![
                format!("{p}.service.name: Required value"),
                format!(
                    "{p}.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive"
                ),
            ],
        ),
        (
            json!({"service": {"name": "1web", "port": {"name": "HTTP"}}}),
            vec![
                format!(
                    "{p}.service.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
                ),
                format!(
                    "{p}.service.port.name: Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
                ),
                format!(
                    "{p}.service.port.name: Invalid value: \"HTTP\": must contain at least one letter (a-z)"
                ),
            ],
        ),
        (
            json!({"resource": {"apiGroup": "Bad_Group", "kind": "", "name": "a/b"}}),
            vec![
                format!(
                    "{p}.resource.apiGroup: Invalid value: \"Bad_Group\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                ),
                format!("{p}.resource.kind: Required value"),
                format!("{p}.resource.name: Invalid value: \"a/b\": may not contain '/'"),
            ],
        ),
    ];
    for (backend, want) in cases {
        assert_eq!(spec_errors(at(backend.clone())), want, "{backend}");
    }
}

#[test]
fn spec_hosts_tls_and_class() {
    let v = json!({"metadata": {"name": "e", "namespace": "default"}, "spec": {}});
    assert_eq!(
        spec_errors(v),
        [
            "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"
        ]
    );
    let v = json!({"metadata": {"name": "e", "namespace": "default"}, "spec": {"rules": []}});
    assert_eq!(
        spec_errors(v),
        [
            "spec: Invalid value: []networking.IngressRule{}: either `defaultBackend` or `rules` must be specified"
        ]
    );

    let mut v = ingress();
    v["spec"]["rules"][0]["host"] = json!("10.0.0.1");
    assert_eq!(
        spec_errors(v),
        ["spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address"]
    );
    let mut v = ingress();
    v["spec"]["rules"][0]["host"] = json!("*.*.example.com");
    assert_eq!(
        spec_errors(v),
        [
            "spec.rules[0].host: Invalid value: \"*.*.example.com\": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ]
    );
    let mut v = ingress();
    v["spec"]["rules"][0]["http"]["paths"] = json!([]);
    assert_eq!(spec_errors(v), ["spec.rules[0].http.paths: Required value"]);
    let mut v = ingress();
    v["spec"]["tls"] = json!([{"hosts": ["A.example.com"], "secretName": "Bad_Secret"}]);
    v["spec"]["ingressClassName"] = json!("");
    let got = spec_errors(v);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].starts_with(
        "spec.tls[0].hosts[0]: Invalid value: \"A.example.com\": a lowercase RFC 1123 subdomain"
    ));
    assert!(got[1].starts_with(
        "spec.tls[0].secretName: Invalid value: \"Bad_Secret\": a lowercase RFC 1123 subdomain"
    ));
    assert!(
        got[2].starts_with(
            "spec.ingressClassName: Invalid value: \"\": a lowercase RFC 1123 subdomain"
        )
    );
}

#[test]
fn create_and_update_through_the_pipeline() {
    let info = by_kind("networking.k8s.io/v1", "Ingress").unwrap();
    // The legacy annotation must match the class field on create.
    let mut v = ingress();
    v["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": "nginx"});
    let err = validate_create(info, &decoded(v)).unwrap_err();
    assert_eq!(
        err.message,
        "Ingress.networking.k8s.io \"web\" is invalid: annotations.kubernetes.io/ingress.class: Invalid value: \"nginx\": must match `ingressClassName` when both are specified"
    );
    let mut v = ingress();
    v["spec"]["rules"][0]["http"]["paths"][0]
        .as_object_mut()
        .unwrap()
        .remove("pathType");
    let err = validate_create(info, &decoded(v)).unwrap_err();
    assert_eq!(
        err.message,
        "Ingress.networking.k8s.io \"web\" is invalid: spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
    );

    // An update may keep an invalid TLS secret name or wildcard rule it already had.
    let mut old = decoded(ingress());
    old["spec"]["tls"] = json!([{"secretName": "Bad_Secret"}]);
    old["spec"]["rules"][0]["host"] = json!("*.example.com");
    old["spec"]["rules"][0]["http"]["paths"][0]["path"] = json!("foo");
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"a": "b"});
    validate_update(info, &new, &old).unwrap();
    // …but not bring them in.
    let old = decoded(ingress());
    let mut new = old.clone();
    new["spec"]["tls"] = json!([{"secretName": "Bad_Secret"}]);
    let err = validate_update(info, &new, &old).unwrap_err();
    assert!(
        err.message
            .contains("spec.tls[0].secretName: Invalid value: \"Bad_Secret\""),
        "{}",
        err.message
    );
}

#[test]
fn load_balancer_status() {
    let mut v = decoded(ingress());
    v["status"] = json!({"loadBalancer": {"ingress": [
        {"ip": "1.2.3"}, {"hostname": "10.0.0.1"}, {"ip": "127.0.0.1"}, {"hostname": "lb.example.com"}]}});
    assert_eq!(
        messages(&validate_ingress_status(&v)),
        [
            "status.loadBalancer.ingress[0].ip: Invalid value: \"1.2.3\": must be a valid IP address",
            "status.loadBalancer.ingress[1].hostname: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
        ]
    );
}

fn class(spec: Value) -> Value {
    let info = by_kind("networking.k8s.io/v1", "IngressClass").unwrap();
    let v = json!({"metadata": {"name": "c"}, "spec": spec});
    decode(info, v, FieldValidation::Strict).unwrap().value
}

#[test]
fn ingress_classes() {
    assert!(
        validate_ingress_class(&class(
            json!({"controller": "paddock.dev/ingress-controller"})
        ))
        .is_empty()
    );
    // Defaulting: a parameters reference without a scope is cluster-scoped.
    let c = class(json!({"controller": "a.io/b", "parameters": {"kind": "K", "name": "n"}}));
    assert_eq!(c["spec"]["parameters"]["scope"], "Cluster");
    assert!(validate_ingress_class(&c).is_empty());

    let cases: Vec<(Value, Vec<String>)> = vec![
        (json!({}), vec!["spec.controller: Required value".into()]),
        (
            json!({"controller": "nginx"}),
            vec!["spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")".into()],
        ),
        (
            json!({"controller": "a.io/b c"}),
            vec!["spec.controller: Invalid value: \"b c\": Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')".into()],
        ),
        (
            json!({"controller": format!("a.io/{}", "x".repeat(250))}),
            vec!["spec.controller: Too long: may not be more than 250 bytes".into()],
        ),
        (
            json!({"controller": "a.io/b", "parameters": {"kind": "K", "name": "n", "scope": "Namespace"}}),
            vec!["spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'".into()],
        ),
        (
            json!({"controller": "a.io/b", "parameters": {"kind": "K", "name": "n", "scope": "Cluster", "namespace": "x"}}),
            vec!["spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'".into()],
        ),
        (
            json!({"controller": "a.io/b", "parameters": {"kind": "..", "name": "", "scope": "Global"}}),
            vec![
                "spec.parameters.kind: Invalid value: \"..\": may not be '..'".into(),
                "spec.parameters.name: Required value".into(),
                "spec.parameters.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespace\"".into(),
            ],
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(
            messages(&validate_ingress_class(&class(spec.clone()))),
            want,
            "{spec}"
        );
    }

    // The controller is immutable.
    let info = by_kind("networking.k8s.io/v1", "IngressClass").unwrap();
    let old = class(json!({"controller": "a.io/b"}));
    let new = class(json!({"controller": "a.io/c"}));
    let err = validate_update(info, &new, &old).unwrap_err();
    assert_eq!(
        err.message,
        "IngressClass.networking.k8s.io \"c\" is invalid: spec.controller: Invalid value: \"a.io/c\": field is immutable"
    );
}
