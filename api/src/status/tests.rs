use serde_json::json;

use super::*;
use crate::registry::{by_kind, lookup};

#[test]
fn field_error_display_matches_upstream() {
    assert_eq!(
        FieldError::required("spec.containers[0].name", "").to_string(),
        "spec.containers[0].name: Required value"
    );
    assert_eq!(
        FieldError::invalid("metadata.name", "Foo", "bad").to_string(),
        "metadata.name: Invalid value: \"Foo\": bad"
    );
    assert_eq!(
        FieldError::invalid("x.successThreshold", 2, "must be 1").to_string(),
        "x.successThreshold: Invalid value: 2: must be 1"
    );
    assert_eq!(
        FieldError::not_supported("spec.restartPolicy", "Foo", &["Always", "Never"]).to_string(),
        "spec.restartPolicy: Unsupported value: \"Foo\": supported values: \"Always\", \"Never\""
    );
    assert_eq!(
        FieldError::duplicate("spec.containers[1].name", "a").to_string(),
        "spec.containers[1].name: Duplicate value: \"a\""
    );
    assert_eq!(
        FieldError::forbidden("spec.x", "may not be set").to_string(),
        "spec.x: Forbidden: may not be set"
    );
    assert_eq!(
        FieldError::too_long("metadata.name", 63).to_string(),
        "metadata.name: Too long: may not be more than 63 bytes"
    );
    assert_eq!(
        FieldError::invalid(
            "spec.template.metadata.labels",
            json!({"b": "2", "a": "1"}),
            "`selector` does not match template `labels`"
        )
        .to_string(),
        "spec.template.metadata.labels: Invalid value: map[string]string{\"a\":\"1\", \"b\":\"2\"}: `selector` does not match template `labels`"
    );
}

#[test]
fn not_found_and_conflict_messages() {
    let pods = lookup("", "v1", "pods").unwrap();
    let e = ApiError::not_found(pods, "x");
    assert_eq!(e.to_string(), "pods \"x\" not found");
    assert_eq!(
        e.to_status(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"pods \"x\" not found","reason":"NotFound",
               "details":{"name":"x","kind":"pods"},"code":404})
    );
    let deploy = by_kind("apps/v1", "Deployment").unwrap();
    assert_eq!(
        ApiError::already_exists(deploy, "web").message,
        "deployments.apps \"web\" already exists"
    );
    let c = ApiError::conflict_modified(pods, "x");
    assert_eq!(c.code, 409);
    assert_eq!(
        c.message,
        "Operation cannot be fulfilled on pods \"x\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(ApiError::from_status(&c.to_status()), Some(c));
}

#[test]
fn invalid_aggregates_and_causes() {
    let pods = lookup("", "v1", "pods").unwrap();
    let one = ApiError::invalid(pods, "x", vec![FieldError::required("spec.containers", "")]);
    assert_eq!(one.code, 422);
    assert_eq!(
        one.message,
        "Pod \"x\" is invalid: spec.containers: Required value"
    );
    let deploy = by_kind("apps/v1", "Deployment").unwrap();
    let two = ApiError::invalid(
        deploy,
        "web",
        vec![
            FieldError::required("spec.selector", ""),
            FieldError::required("spec.selector", ""),
            FieldError::invalid("spec.replicas", -1, "must be greater than or equal to 0"),
        ],
    );
    assert_eq!(
        two.message,
        "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.replicas: Invalid value: -1: must be greater than or equal to 0]"
    );
    let status = two.to_status();
    assert_eq!(status["details"]["group"], "apps");
    assert_eq!(status["details"]["kind"], "Deployment");
    assert_eq!(
        status["details"]["causes"][2],
        json!({"reason":"FieldValueInvalid","message":"Invalid value: -1: must be greater than or equal to 0","field":"spec.replicas"})
    );
}

#[test]
fn other_errors() {
    assert_eq!(
        ApiError::internal("boom").message,
        "Internal error occurred: boom"
    );
    assert_eq!(ApiError::unauthorized().to_status()["code"], 401);
    let pods = lookup("", "v1", "pods").unwrap();
    assert_eq!(
        ApiError::method_not_allowed(pods, "deletecollection").message,
        "deletecollection is not supported on resources of kind \"pods\""
    );
    assert_eq!(
        success_status(Some(&object_details(pods, "x"))),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"x","kind":"pods"}})
    );
}
