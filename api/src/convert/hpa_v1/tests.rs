use serde_json::{Value, json};

use super::*;

/// A stored v2 object with one of everything v1 cannot hold.
fn full_v2() -> Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 9,
            "metrics": [
                {"type": "Resource", "resource": {"name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"},
                    "target": {"type": "AverageValue", "averageValue": "10"}}},
                {"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 60}}},
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}},
        },
        "status": {
            "observedGeneration": 3,
            "currentReplicas": 4,
            "desiredReplicas": 5,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": 75, "averageValue": "150m"}}},
            ],
            "conditions": [{"type": "AbleToScale", "status": "True",
                "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "ReadyForNewScale",
                "message": "recommended size matches current size"}],
        },
    })
}

fn annotation(v1: &Value, key: &str) -> Value {
    let raw = v1["metadata"]["annotations"][key].as_str().unwrap();
    serde_json::from_str(raw).unwrap()
}

#[test]
fn v2_shows_in_v1_with_what_v1_cannot_hold_in_annotations() {
    let v1 = to_v1(&full_v2()).unwrap();
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
    assert_eq!(v1["spec"]["minReplicas"], 2);
    assert_eq!(v1["spec"]["maxReplicas"], 9);
    assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 75);
    assert_eq!(v1["status"]["currentReplicas"], 4);
    assert_eq!(v1["status"]["desiredReplicas"], 5);
    assert_eq!(v1["metadata"]["annotations"]["team"], "a");
    // v1's old metric shapes, Go's field order.
    let raw = v1["metadata"]["annotations"][METRIC_SPECS]
        .as_str()
        .unwrap();
    assert_eq!(
        raw,
        r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}},{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"10"}}]"#
    );
    assert_eq!(
        annotation(&v1, METRIC_STATUSES),
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "currentAverageUtilization": 75, "currentAverageValue": "150m"}}])
    );
    let raw = v1["metadata"]["annotations"][CONDITIONS].as_str().unwrap();
    assert!(raw.starts_with(r#"[{"type":"AbleToScale","status":"True","lastTransitionTime""#));
    // The internal type's Go field names, nil pointers as null.
    assert_eq!(
        v1["metadata"]["annotations"][BEHAVIOR].as_str().unwrap(),
        r#"{"ScaleUp":null,"ScaleDown":{"StabilizationWindowSeconds":30,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":1,"PeriodSeconds":15}]}}"#
    );
}

#[test]
fn v1_round_trips_back_to_the_same_v2() {
    let v2 = full_v2();
    let back = to_v2(to_v1(&v2).unwrap()).unwrap();
    assert_eq!(back["apiVersion"], "autoscaling/v2");
    assert_eq!(back["metadata"]["annotations"], json!({"team": "a"}));
    assert_eq!(back["spec"]["metrics"], v2["spec"]["metrics"]);
    assert_eq!(back["spec"]["behavior"], v2["spec"]["behavior"]);
    assert_eq!(
        back["status"]["currentMetrics"],
        v2["status"]["currentMetrics"]
    );
    assert_eq!(back["status"]["conditions"], v2["status"]["conditions"]);
    assert_eq!(back["status"]["currentReplicas"], 4);
    assert_eq!(back["status"]["observedGeneration"], 3);
}

#[test]
fn the_spec_cpu_target_goes_after_the_annotation_metrics() {
    let mut v2 = full_v2();
    let metrics = v2["spec"]["metrics"].as_array_mut().unwrap();
    let cpu = metrics.pop().unwrap();
    metrics.insert(0, cpu);
    let back = to_v2(to_v1(&v2).unwrap()).unwrap();
    let names: Vec<&str> = back["spec"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m.pointer("/resource/name")
                .or(m.pointer("/pods/metric/name"))
                .and_then(Value::as_str)
                .unwrap()
        })
        .collect();
    assert_eq!(names, ["memory", "qps", "cpu"]);
}

#[test]
fn a_v1_object_without_a_target_gets_the_implicit_80_percent() {
    let v1 = json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3},
    });
    let v2 = to_v2(v1).unwrap();
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert!(v2.get("status").is_none());
    assert!(v2["metadata"].get("annotations").is_none());
}

#[test]
fn annotations_from_a_v1_client_are_read_and_removed() {
    let v1 = json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "annotations": {
            METRIC_SPECS: r#"[{"type":"External","external":{"metricName":"queue","targetValue":"30"}},{"type":"Object","object":{"target":{"kind":"Service","name":"s"},"metricName":"rps","targetValue":"5"}}]"#,
            BEHAVIOR: r#"{"scaleUp":{"stabilizationWindowSeconds":10,"policies":[{"type":"Percent","value":50,"periodSeconds":60}]}}"#,
            METRIC_STATUSES: r#"[{"type":"Resource","resource":{"name":"cpu","currentAverageValue":"0"}}]"#,
        }},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 40},
        "status": {"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 7},
    });
    let v2 = to_v2(v1).unwrap();
    assert!(v2["metadata"].get("annotations").is_none());
    assert_eq!(
        v2["spec"]["metrics"],
        json!([
            {"type": "External", "external": {"metric": {"name": "queue"},
                "target": {"type": "Value", "value": "30"}}},
            {"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "s"},
                "metric": {"name": "rps"}, "target": {"type": "Value", "value": "5"}}},
            {"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 40}}},
        ])
    );
    // The external spelling is accepted too (Go's decoder ignores case).
    assert_eq!(
        v2["spec"]["behavior"]["scaleUp"],
        json!({"stabilizationWindowSeconds": 10,
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]})
    );
    // The annotation's statuses replace the single CPU figure.
    assert_eq!(
        v2["status"]["currentMetrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "0"}}}])
    );
}

#[test]
fn a_malformed_annotation_is_an_error() {
    let v1 = json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "annotations": {METRIC_SPECS: "not json"}},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3},
    });
    assert!(to_v2(v1).is_err());
}
