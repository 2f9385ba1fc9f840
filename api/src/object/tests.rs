use serde_json::json;

use super::*;
use crate::registry::{by_kind, lookup};

fn pods() -> &'static ResourceInfo {
    lookup("", "v1", "pods").unwrap()
}

fn deployments() -> &'static ResourceInfo {
    by_kind("apps/v1", "Deployment").unwrap()
}

fn pod_with(extra: serde_json::Value) -> serde_json::Value {
    let mut p = json!({"metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    merge(&mut p, extra);
    p
}

/// Recursive object merge for building test inputs (arrays replace).
fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

#[test]
fn fills_api_version_and_kind_and_defaults() {
    let d = decode(pods(), pod_with(json!({})), FieldValidation::Strict).unwrap();
    assert_eq!(d.value["apiVersion"], "v1");
    assert_eq!(d.value["kind"], "Pod");
    assert_eq!(d.value["spec"]["restartPolicy"], "Always");
    assert_eq!(
        d.value["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    assert!(d.warnings.is_empty());
}

#[test]
fn strict_rejects_unknown_fields_with_paths() {
    let p = pod_with(
        json!({"spec": {"foo": 1, "containers": [{"name": "c", "image": "x", "bar": true}]}}),
    );
    let e = decode(pods(), p, FieldValidation::Strict).unwrap_err();
    assert_eq!(e.code, 400);
    assert_eq!(e.reason, "BadRequest");
    assert_eq!(
        e.message,
        "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.containers[0].bar\", unknown field \"spec.foo\""
    );
}

#[test]
fn warn_returns_warnings_and_drops_fields() {
    let p = pod_with(json!({"spec": {"foo": 1}}));
    let d = decode(pods(), p, FieldValidation::Warn).unwrap();
    assert_eq!(d.warnings, vec!["unknown field \"spec.foo\"".to_string()]);
    assert!(d.value["spec"].get("foo").is_none());
    let d = decode(
        pods(),
        pod_with(json!({"spec": {"foo": 1}})),
        FieldValidation::Ignore,
    )
    .unwrap();
    assert!(d.warnings.is_empty());
}

#[test]
fn type_errors_name_the_field() {
    let d = json!({"metadata": {"name": "d", "namespace": "default"}, "spec": {"replicas": "1"}});
    let e = decode(deployments(), d, FieldValidation::Strict).unwrap_err();
    assert_eq!(e.code, 400);
    assert!(
        e.message.starts_with("Deployment in version \"v1\" cannot be handled as a Deployment: spec.replicas: invalid type: string \"1\""),
        "{}",
        e.message
    );
}

#[test]
fn wrong_kind_or_version_is_rejected() {
    let mut p = pod_with(json!({}));
    p["kind"] = json!("Service");
    assert_eq!(
        decode(pods(), p, FieldValidation::Strict).unwrap_err().code,
        400
    );
    let mut p = pod_with(json!({}));
    p["apiVersion"] = json!("apps/v1");
    let e = decode(pods(), p, FieldValidation::Strict).unwrap_err();
    assert_eq!(
        e.message,
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );
    assert_eq!(
        decode(pods(), json!([1]), FieldValidation::Strict)
            .unwrap_err()
            .code,
        400
    );
}

#[test]
fn missing_selector_stays_missing() {
    let d = json!({"metadata": {"name": "d", "namespace": "default"},
        "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    let out = decode(deployments(), d, FieldValidation::Strict).unwrap();
    assert!(out.value["spec"].get("selector").is_none());
    let e = validate_create(deployments(), &out.value).unwrap_err();
    assert_eq!(
        e.message,
        "Deployment.apps \"d\" is invalid: spec.selector: Required value"
    );
}

#[test]
fn field_validation_parse() {
    assert_eq!(FieldValidation::parse(None).unwrap(), FieldValidation::Warn);
    assert_eq!(
        FieldValidation::parse(Some("Strict")).unwrap(),
        FieldValidation::Strict
    );
    assert_eq!(
        FieldValidation::parse(Some("Ignore")).unwrap(),
        FieldValidation::Ignore
    );
    let e = FieldValidation::parse(Some("strict")).unwrap_err();
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("fieldValidation: Unsupported value: \"strict\""),
        "{}",
        e.message
    );
}

#[test]
fn parse_json_reports_duplicates() {
    let (v, d) =
        parse_json(br#"{"a": 1, "spec": {"replicas": 1, "replicas": 2, "l": [{"x": 1, "x": 2}]}}"#)
            .unwrap();
    assert_eq!(v["spec"]["replicas"], 2);
    assert_eq!(
        d,
        vec!["spec.replicas".to_string(), "spec.l[0].x".to_string()]
    );
    assert_eq!(parse_json(b"{").unwrap_err().code, 400);
    let deep = "[".repeat(500) + &"]".repeat(500);
    assert_eq!(parse_json(deep.as_bytes()).unwrap_err().code, 400);
    let info = deployments();
    let body = json!({"metadata": {"name": "d", "namespace": "default"}});
    let e = decode_with_duplicates(
        info,
        body,
        &["spec.replicas".to_string()],
        FieldValidation::Strict,
    )
    .unwrap_err();
    assert!(
        e.message
            .ends_with("strict decoding error: duplicate field \"spec.replicas\""),
        "{}",
        e.message
    );
}

#[test]
fn quantities_are_checked_and_canonical() {
    let p = pod_with(json!({"spec": {"containers": [{"name": "c", "image": "x",
        "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}, "requests": {"cpu": 0.25}}}]}}));
    let d = decode(pods(), p, FieldValidation::Strict).unwrap();
    let r = &d.value["spec"]["containers"][0]["resources"];
    assert_eq!(r["limits"], json!({"cpu": "500m", "memory": "1Gi"}));
    assert_eq!(r["requests"], json!({"cpu": "250m", "memory": "1Gi"}));
    let bad = pod_with(
        json!({"spec": {"containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "lots"}}}]}}),
    );
    let e = decode(pods(), bad, FieldValidation::Strict).unwrap_err();
    assert_eq!(
        e.message,
        "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
}
