//! What the ReplicaSet controller writes, pinned byte for byte (volatile fields aside): the
//! pod it builds from the template, the pod as stored, and the ReplicaSet's status, so that a
//! change of how they are built cannot change what it writes.

use serde_json::{Value, json};

use super::tests::make_ready;
use crate::testutil::{
    canonical, cluster, create, eventually, get, list, registry_with_namespace,
    strip_volatile_metadata,
};

const EXPECTED_TEMPLATE_POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"annotations":{"a":"b"},"finalizers":["example.com/keep"],"generateName":"web-","labels":{"app":"web","tier":"front"},"ownerReferences":[{"apiVersion":"apps/v1","blockOwnerDeletion":true,"controller":true,"kind":"ReplicaSet","name":"web","uid":"rs-uid"}]},"spec":{"containers":[{"image":"nginx","name":"web","ports":[{"containerPort":80}]}],"restartPolicy":"Always"}}"#;

const EXPECTED_STORED_POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"annotations":{"a":"b"},"finalizers":["example.com/keep"],"generateName":"web-","labels":{"app":"web","tier":"front"},"namespace":"default","ownerReferences":[{"apiVersion":"apps/v1","blockOwnerDeletion":true,"controller":true,"kind":"ReplicaSet","name":"web"}]},"spec":{"containers":[{"image":"nginx","imagePullPolicy":"Always","name":"web","ports":[{"containerPort":80,"protocol":"TCP"}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority","priority":0,"restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"serviceAccount":"default","serviceAccountName":"default","terminationGracePeriodSeconds":30,"tolerations":[{"effect":"NoExecute","key":"node.kubernetes.io/not-ready","operator":"Exists","tolerationSeconds":300},{"effect":"NoExecute","key":"node.kubernetes.io/unreachable","operator":"Exists","tolerationSeconds":300}]},"status":{"phase":"Pending","qosClass":"BestEffort"}}"#;

const EXPECTED_STATUS: &str = r#"{"availableReplicas":2,"fullyLabeledReplicas":3,"observedGeneration":1,"readyReplicas":2,"replicas":3}"#;

const EXPECTED_FAILED_STATUS: &str = r#"{"availableReplicas":1,"conditions":[{"message":"quota exceeded","reason":"FailedCreate","status":"True","type":"ReplicaFailure"}],"fullyLabeledReplicas":1,"observedGeneration":1,"readyReplicas":2,"replicas":2}"#;

fn manifest() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "default", "uid": "rs-uid",
                     "labels": {"team": "a"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "front"},
                                      "annotations": {"a": "b"},
                                      "finalizers": ["example.com/keep"]},
                         "spec": {"containers": [{"name": "web", "image": "nginx",
                                                  "ports": [{"containerPort": 80}]}],
                                  "restartPolicy": "Always"}}}
    })
}

/// The object without what the store or the clock sets.
fn stable(obj: &Value) -> Value {
    let mut obj = obj.clone();
    strip_volatile_metadata(&mut obj);
    obj
}

#[test]
fn the_pod_built_from_the_template_is_pinned() {
    let pod = super::tests::template_pod(&manifest());
    assert_eq!(canonical(&pod), EXPECTED_TEMPLATE_POD);
}

#[test]
fn the_status_after_a_failed_create_is_pinned() {
    let mut rs = manifest();
    rs["spec"]["minReadySeconds"] = json!(10);
    rs["status"] = json!({"replicas": 1, "observedGeneration": 1});
    let pod = |name: &str, labels: Value, since: &str| {
        json!({"metadata": {"name": name, "namespace": "default", "labels": labels},
               "status": {"phase": "Running", "conditions": [
                   {"type": "Ready", "status": "True", "lastTransitionTime": since}]}})
    };
    let t = "2024-01-01T00:00:00Z";
    let now = crate::pod::seconds(t).unwrap() + 10;
    let pods = [
        pod("a", json!({"app": "web", "tier": "front"}), t),
        pod("b", json!({"app": "web"}), "2024-01-01T00:00:05Z"),
    ];
    let mut status = super::tests::status_of(&rs, &pods, Some("quota exceeded"), now);
    let cond = &mut status["conditions"][0];
    assert!(cond["lastTransitionTime"].is_string());
    cond.as_object_mut().unwrap().remove("lastTransitionTime");
    assert_eq!(canonical(&status), EXPECTED_FAILED_STATUS);
    // A clean sync removes the condition again.
    rs["status"] = status;
    let status = super::tests::status_of(&rs, &pods, None, now);
    assert!(status.get("conditions").is_none(), "{status}");
}

#[tokio::test(start_paused = true)]
async fn written_pods_and_status_are_pinned() {
    let registry = registry_with_namespace("default").await;
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(super::run(cluster(&registry), stop.clone()));
    let mut rs = manifest();
    rs["metadata"].as_object_mut().unwrap().remove("uid");
    create(&registry, "replicasets", "default", rs).await;
    eventually("3 pods", || list(&registry, "pods", "default").len() == 3).await;
    let pods = list(&registry, "pods", "default");
    let stored: Vec<String> = pods.iter().map(|p| canonical(&stable(p))).collect();
    assert!(
        stored.iter().all(|p| p == EXPECTED_STORED_POD),
        "{stored:?}"
    );
    for p in &pods[..2] {
        make_ready(
            &registry,
            p["metadata"]["name"].as_str().unwrap(),
            "2024-01-01T00:00:00Z",
        )
        .await;
    }
    let status = || get(&registry, "replicasets", "default", "web").unwrap()["status"].clone();
    eventually("2 ready", || status()["readyReplicas"] == 2).await;
    assert_eq!(canonical(&status()), EXPECTED_STATUS);
    stop.cancel();
}
