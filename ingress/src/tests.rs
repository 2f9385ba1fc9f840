//! Unit tests of the route model: which backend a (host, path) goes to, over real
//! Kubernetes objects fed to a [`Router`].

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use serde_json::json;

use super::*;
use crate::table::{Problem, REASON_BAD_TLS, REASON_NO_SERVICE, Unavailable};

fn ingress(name: &str, created: &str, spec: serde_json::Value) -> Ingress {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
        "spec": spec,
    }))
    .expect("ingress")
}

fn service(name: &str, ports: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": "10.96.0.9", "ports": ports},
    }))
    .expect("service")
}

/// A slice of `svc` with port `http` on `port` and one endpoint per (ip, ready, uid).
fn slice(svc: &str, port: u16, eps: &[(&str, bool, &str)]) -> EndpointSlice {
    let endpoints: Vec<serde_json::Value> = eps
        .iter()
        .map(|(ip, ready, uid)| {
            json!({"addresses": [ip], "conditions": {"ready": ready, "serving": ready},
                   "targetRef": {"kind": "Pod", "name": uid, "uid": uid}})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("{svc}-abc"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .expect("slice")
}

/// A service `name` (port 80 named `http`) with one ready endpoint `ip:8080`.
fn backend(r: &Router, name: &str, ip: &str) {
    r.update_service(&service(
        name,
        json!([{"name": "http", "port": 80, "targetPort": 8080}]),
    ));
    r.update_slice(&slice(name, 8080, &[(ip, true, name)]));
}

fn path(p: &str, kind: &str, svc: &str) -> serde_json::Value {
    json!({"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": {"number": 80}}}})
}

/// The endpoint (IP) a request goes to; "404" or "503" otherwise.
fn route(r: &Router, host: Option<&str>, path: &str) -> String {
    match r.table().route(host, path) {
        Decision::NotFound => "404".into(),
        Decision::Backend(b) => match b.pick(&[]) {
            Some(ep) => ep.ip().to_string(),
            None => "503".into(),
        },
    }
}

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-02T00:00:00Z";

/// The multi-path rows of the documentation's examples table, on one Ingress each.
#[test]
fn documented_examples_with_several_paths() {
    let r = Router::new();
    for (svc, ip) in [
        ("root", "10.0.0.1"),
        ("aaa", "10.0.0.2"),
        ("bbb", "10.0.0.3"),
        ("exact", "10.0.0.4"),
    ] {
        backend(&r, svc, ip);
    }
    r.update_ingress(ingress(
        "a",
        T0,
        json!({"ingressClassName": "paddock", "rules": [{"http": {"paths": [
            path("/", "Prefix", "root"), path("/aaa", "Prefix", "aaa"), path("/aaa/bbb", "Prefix", "bbb"),
        ]}}]}),
    ));
    // "/, /aaa" with /aaa/ccc: /aaa; "/, /aaa, /aaa/bbb" with /aaa/bbb: /aaa/bbb; with /ccc: /.
    assert_eq!(route(&r, None, "/aaa/ccc"), "10.0.0.2");
    assert_eq!(route(&r, None, "/aaa/bbb"), "10.0.0.3");
    assert_eq!(route(&r, None, "/aaa/bbbxyz"), "10.0.0.2");
    assert_eq!(route(&r, None, "/ccc"), "10.0.0.1");
    // Mixed: /foo Prefix and /foo Exact: Exact wins for /foo; Prefix for /foo/.
    r.update_ingress(ingress(
        "b",
        T0,
        json!({"ingressClassName": "paddock", "rules": [{"host": "mixed.example", "http": {"paths": [
            path("/foo", "Prefix", "root"), path("/foo", "Exact", "exact"),
        ]}}]}),
    ));
    assert_eq!(route(&r, Some("mixed.example"), "/foo"), "10.0.0.4");
    assert_eq!(route(&r, Some("mixed.example"), "/foo/"), "10.0.0.1");
    // "/aaa" only, request /ccc: the default backend; here there is none: 404.
    assert_eq!(route(&r, Some("mixed.example"), "/ccc"), "404");
    // Longest wins whatever the type: Prefix /foo/bar beats Exact-less /foo.
    r.update_ingress(ingress(
        "c",
        T0,
        json!({"ingressClassName": "paddock", "rules": [{"host": "long.example", "http": {"paths": [
            path("/foo", "Exact", "exact"), path("/foo/bar/", "Prefix", "bbb"), path("/foo/", "ImplementationSpecific", "aaa"),
        ]}}]}),
    ));
    assert_eq!(route(&r, Some("long.example"), "/foo/bar/x"), "10.0.0.3");
    assert_eq!(route(&r, Some("long.example"), "/foo"), "10.0.0.4");
    assert_eq!(route(&r, Some("long.example"), "/foo/x"), "10.0.0.2");
    assert_eq!(route(&r, Some("long.example"), "/foox"), "404");
}

#[test]
fn hosts_exact_before_wildcard_before_catch_all() {
    let r = Router::new();
    for (svc, ip) in [
        ("exact", "10.0.1.1"),
        ("wild", "10.0.1.2"),
        ("any", "10.0.1.3"),
    ] {
        backend(&r, svc, ip);
    }
    r.update_ingress(ingress(
        "hosts",
        T0,
        json!({"ingressClassName": "paddock", "rules": [
            {"host": "*.foo.com", "http": {"paths": [path("/", "Prefix", "wild")]}},
            {"host": "bar.foo.com", "http": {"paths": [path("/", "Prefix", "exact")]}},
            {"http": {"paths": [path("/", "Prefix", "any")]}},
        ]}),
    ));
    assert_eq!(route(&r, Some("bar.foo.com"), "/"), "10.0.1.1");
    assert_eq!(route(&r, Some("baz.foo.com"), "/"), "10.0.1.2");
    // One label only: deeper names and the bare domain fall to the catch-all rule.
    assert_eq!(route(&r, Some("a.baz.foo.com"), "/"), "10.0.1.3");
    assert_eq!(route(&r, Some("foo.com"), "/"), "10.0.1.3");
    assert_eq!(route(&r, Some("other.example"), "/x"), "10.0.1.3");
    assert_eq!(route(&r, None, "/"), "10.0.1.3");
}

#[test]
fn oldest_ingress_wins_and_default_backends() {
    let r = Router::new();
    for (svc, ip) in [
        ("old", "10.0.2.1"),
        ("new", "10.0.2.2"),
        ("def-old", "10.0.2.3"),
        ("def-new", "10.0.2.4"),
    ] {
        backend(&r, svc, ip);
    }
    let db = |svc: &str| json!({"service": {"name": svc, "port": {"name": "http"}}});
    r.update_ingress(ingress(
        "z-old",
        T0,
        json!({"ingressClassName": "paddock", "defaultBackend": db("def-old"), "rules": [
            {"host": "h.example", "http": {"paths": [path("/app", "Prefix", "old")]}}]}),
    ));
    r.update_ingress(ingress(
        "a-new",
        T1,
        json!({"ingressClassName": "paddock", "defaultBackend": db("def-new"), "rules": [
            {"host": "h.example", "http": {"paths": [path("/app", "Prefix", "new"), path("/new", "Prefix", "new")]}},
            {"host": "n.example", "http": {"paths": [path("/app", "Prefix", "new")]}}]}),
    ));
    // Same path on the same host: the older Ingress (by creation time, not name).
    assert_eq!(route(&r, Some("h.example"), "/app"), "10.0.2.1");
    // Paths merge across Ingresses of one host.
    assert_eq!(route(&r, Some("h.example"), "/new/x"), "10.0.2.2");
    // No path matches: the host's default (the oldest Ingress naming it that has one).
    assert_eq!(route(&r, Some("h.example"), "/other"), "10.0.2.3");
    assert_eq!(route(&r, Some("n.example"), "/other"), "10.0.2.4");
    // Unknown host: the cluster default (oldest Ingress's defaultBackend).
    assert_eq!(route(&r, Some("nobody.example"), "/"), "10.0.2.3");
    r.remove_ingress("default", "z-old");
    assert_eq!(route(&r, Some("h.example"), "/app"), "10.0.2.2");
    assert_eq!(route(&r, Some("nobody.example"), "/"), "10.0.2.4");
}

#[test]
fn class_selection() {
    let r = Router::new();
    backend(&r, "web", "10.0.3.1");
    let rules = json!([{"host": "c.example", "http": {"paths": [path("/", "Prefix", "web")]}}]);
    r.update_ingress(ingress(
        "other",
        T0,
        json!({"ingressClassName": "nginx", "rules": rules}),
    ));
    assert_eq!(route(&r, Some("c.example"), "/"), "404");
    // A class of ours under another name.
    let class: IngressClass = serde_json::from_value(json!({
        "metadata": {"name": "nginx"}, "spec": {"controller": CONTROLLER}}))
    .expect("class");
    r.update_class(&class);
    assert_eq!(route(&r, Some("c.example"), "/"), "10.0.3.1");
    r.remove_class("nginx");
    assert_eq!(route(&r, Some("c.example"), "/"), "404");
    // The legacy annotation.
    let mut legacy = ingress("legacy", T0, json!({"rules": rules}));
    legacy.metadata.annotations =
        Some([(table::CLASS_ANNOTATION.to_string(), "paddock".to_string())].into());
    r.update_ingress(legacy);
    assert_eq!(route(&r, Some("c.example"), "/"), "10.0.3.1");
    r.remove_ingress("default", "legacy");
    // No class at all: ours only while our class is the default.
    r.update_ingress(ingress("none", T0, json!({"rules": rules})));
    assert_eq!(route(&r, Some("c.example"), "/"), "404");
    let class: IngressClass = serde_json::from_value(json!({
        "metadata": {"name": "paddock", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": CONTROLLER}}))
    .expect("class");
    r.update_class(&class);
    assert_eq!(route(&r, Some("c.example"), "/"), "10.0.3.1");
    assert_eq!(r.table().ours.len(), 1);
    // The class `paddock` handed to another controller is no longer ours.
    r.remove_ingress("default", "none");
    r.update_ingress(ingress(
        "named",
        T0,
        json!({"ingressClassName": "paddock", "rules": rules}),
    ));
    assert_eq!(route(&r, Some("c.example"), "/"), "10.0.3.1");
    let class: IngressClass = serde_json::from_value(json!({
        "metadata": {"name": "paddock"}, "spec": {"controller": "example.com/other"}}))
    .expect("class");
    r.update_class(&class);
    assert_eq!(route(&r, Some("c.example"), "/"), "404");
}

#[test]
fn backends_resolve_ports_and_ready_endpoints() {
    let r = Router::new();
    // Service port 80 "web" → slice port "web" 9000 (targetPort by name in the pod).
    r.update_service(&service(
        "svc",
        json!([{"name": "metrics", "port": 9100}, {"name": "web", "port": 80, "targetPort": "http"}]),
    ));
    let s: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "svc-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "svc"}},
        "addressType": "IPv4",
        "ports": [{"name": "web", "port": 9000, "protocol": "TCP"}, {"name": "metrics", "port": 9100, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.1.0.1"], "conditions": {"ready": true}},
            {"addresses": ["10.1.0.2"], "conditions": {"ready": false, "serving": true, "terminating": true}},
            {"addresses": ["10.1.0.3"]},
        ],
    }))
    .expect("slice");
    r.update_slice(&s);
    let by = |port: serde_json::Value| json!({"ingressClassName": "paddock", "defaultBackend": {"service": {"name": "svc", "port": port}}});
    let eps = |r: &Router| -> Result<Vec<SocketAddr>, Unavailable> {
        match r.table().route(Some("x"), "/") {
            Decision::Backend(b) => b.target.clone(),
            Decision::NotFound => panic!("no backend"),
        }
    };
    r.update_ingress(ingress("i", T0, by(json!({"number": 80}))));
    let want: Vec<SocketAddr> = vec![
        "10.1.0.1:9000".parse().unwrap(),
        "10.1.0.3:9000".parse().unwrap(),
    ];
    assert_eq!(
        eps(&r),
        Ok(want.clone()),
        "by number; only ready (absent = ready)"
    );
    r.update_ingress(ingress("i", T0, by(json!({"name": "web"}))));
    assert_eq!(eps(&r), Ok(want));
    r.update_ingress(ingress("i", T0, by(json!({"number": 8080}))));
    assert_eq!(eps(&r), Err(Unavailable::NoPort));
    r.update_ingress(ingress("i", T0, by(json!({"name": "metrics"}))));
    assert_eq!(
        eps(&r),
        Ok(vec![
            "10.1.0.1:9100".parse().unwrap(),
            "10.1.0.3:9100".parse().unwrap()
        ])
    );
    // Missing service: 503 and a problem for the event.
    r.update_ingress(ingress(
        "i",
        T0,
        json!({"ingressClassName": "paddock", "defaultBackend": {"service": {"name": "gone", "port": {"number": 80}}}}),
    ));
    assert_eq!(eps(&r), Err(Unavailable::NoService));
    assert_eq!(
        r.table().problems,
        vec![Problem {
            ingress: ("default".into(), "i".into()),
            reason: REASON_NO_SERVICE,
            message: "Service \"default/gone\" not found".into(),
        }]
    );
    assert_eq!(route(&r, Some("x"), "/"), "503");
    // The service appears without ready endpoints: still 503, no longer a problem.
    r.update_service(&service("gone", json!([{"port": 80}])));
    assert_eq!(eps(&r), Err(Unavailable::NoEndpoints));
    assert!(r.table().problems.is_empty());
}

#[test]
fn round_robin_and_readiness_fast_path() {
    let r = Router::new();
    r.update_service(&service("s", json!([{"name": "http", "port": 80}])));
    r.update_slice(&slice(
        "s",
        80,
        &[
            ("10.2.0.1", true, "p1"),
            ("10.2.0.2", true, "p2"),
            ("10.2.0.3", false, "p3"),
        ],
    ));
    r.update_ingress(ingress("i", T0, json!({"ingressClassName": "paddock", "rules": [{"http": {"paths": [path("/", "Prefix", "s")]}}]})));
    let mut seen: Vec<String> = (0..4).map(|_| route(&r, None, "/")).collect();
    assert_eq!(seen, ["10.2.0.1", "10.2.0.2", "10.2.0.1", "10.2.0.2"]);
    // The agent says p1 is not ready and p3 is: routing follows before the API does.
    r.set_pod_ready("p1", false);
    r.set_pod_ready("p3", true);
    seen = (0..4).map(|_| route(&r, None, "/")).collect();
    seen.sort();
    assert_eq!(seen, ["10.2.0.2", "10.2.0.2", "10.2.0.3", "10.2.0.3"]);
    // The API catches up: the overrides go.
    r.update_slice(&slice(
        "s",
        80,
        &[
            ("10.2.0.1", false, "p1"),
            ("10.2.0.2", true, "p2"),
            ("10.2.0.3", true, "p3"),
        ],
    ));
    assert!(r.sources.lock().overrides.is_empty());
    // A pod gone from the node while its slice still says ready stays out.
    r.forget_pod("p2");
    seen = (0..2).map(|_| route(&r, None, "/")).collect();
    assert_eq!(seen, ["10.2.0.3", "10.2.0.3"]);
    // Skipping tried endpoints; none left.
    let Decision::Backend(b) = r.table().route(None, "/") else {
        panic!()
    };
    assert_eq!(b.pick(&["10.2.0.3:80".parse().unwrap()]), None);
}

fn tls_secret(name: &str, hosts: &[&str]) -> (Secret, Vec<u8>) {
    let ck =
        rcgen::generate_simple_self_signed(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
            .expect("cert");
    let der = ck.cert.der().to_vec();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": k8s_openapi::ByteString(ck.cert.pem().into_bytes()),
            "tls.key": k8s_openapi::ByteString(ck.signing_key.serialize_pem().into_bytes()),
        },
    }))
    .expect("secret");
    (secret, der)
}

#[test]
fn tls_certificates_by_sni() {
    let r = Router::new();
    let (exact, exact_der) = tls_secret("exact", &["secure.example"]);
    let (wild, wild_der) = tls_secret("wild", &["*.wild.example"]);
    r.update_secret(&exact);
    r.update_secret(&wild);
    let mut broken = exact.clone();
    broken.metadata.name = Some("broken".into());
    broken
        .data
        .as_mut()
        .unwrap()
        .insert("tls.key".into(), k8s_openapi::ByteString(b"junk".to_vec()));
    r.update_secret(&broken);
    r.update_ingress(ingress(
        "t",
        T0,
        json!({"ingressClassName": "paddock",
               "tls": [{"hosts": ["secure.example"], "secretName": "exact"},
                       {"hosts": ["*.wild.example"], "secretName": "wild"},
                       {"hosts": ["bad.example"], "secretName": "broken"},
                       {"hosts": ["missing.example"], "secretName": "missing"}],
               "rules": [{"host": "secure.example"}]}),
    ));
    let default = Arc::new(tls::default_certificate().expect("default"));
    let resolver = tls::SniResolver::new(r.clone(), default.clone());
    let leaf = |sni: Option<&str>| resolver.choose(sni).cert[0].to_vec();
    assert_eq!(leaf(Some("secure.example")), exact_der);
    assert_eq!(leaf(Some("SECURE.example")), exact_der);
    assert_eq!(leaf(Some("a.wild.example")), wild_der);
    let default_der = default.cert[0].to_vec();
    assert_eq!(leaf(Some("b.a.wild.example")), default_der);
    assert_eq!(leaf(Some("wild.example")), default_der);
    assert_eq!(leaf(Some("bad.example")), default_der);
    assert_eq!(leaf(Some("unknown.example")), default_der);
    assert_eq!(leaf(None), default_der);
    let table = r.table();
    let reasons: Vec<(&str, &str)> = table
        .problems
        .iter()
        .map(|p| (p.reason, p.message.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.iter().all(|(r, _)| *r == REASON_BAD_TLS));
    assert!(
        reasons[0].1.contains("default/broken") && reasons[0].1.contains("tls.key"),
        "{reasons:?}"
    );
    assert!(reasons[1].1.contains("default/missing"), "{reasons:?}");
    // A Secret of another type is not a TLS Secret.
    let mut opaque = exact;
    opaque.type_ = Some("Opaque".into());
    r.update_secret(&opaque);
    assert_eq!(leaf(Some("secure.example")), default_der);
}
