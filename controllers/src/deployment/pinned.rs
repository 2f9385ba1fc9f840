//! What the Deployment controller writes, pinned byte for byte (volatile fields aside): the
//! ReplicaSet it creates (with its revision annotations) and the Deployment's status, so that
//! a change of how they are built cannot change what it writes.

use serde_json::json;

use super::tests::{make_all_ready, running, set_template_image};
use crate::testutil::{canonical, create, eventually, get, list, strip_volatile_metadata};

const EXPECTED_REPLICASET: &str = r#"{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"annotations":{"deployment.kubernetes.io/desired-replicas":"3","deployment.kubernetes.io/max-replicas":"4","deployment.kubernetes.io/revision":"1","note":"kept"},"labels":{"app":"web","pod-template-hash":"6fb9fc9cdf"},"name":"web-6fb9fc9cdf","namespace":"default","ownerReferences":[{"apiVersion":"apps/v1","blockOwnerDeletion":true,"controller":true,"kind":"Deployment","name":"web"}]},"spec":{"minReadySeconds":0,"replicas":3,"selector":{"matchLabels":{"app":"web","pod-template-hash":"6fb9fc9cdf"}},"template":{"metadata":{"annotations":{"a":"b"},"labels":{"app":"web","pod-template-hash":"6fb9fc9cdf"}},"spec":{"containers":[{"image":"nginx","imagePullPolicy":"Always","name":"web","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}},"status":{"availableReplicas":3,"fullyLabeledReplicas":3,"observedGeneration":1,"readyReplicas":3,"replicas":3}}"#;

/// The two sets after the rollout, one a line (metadata, spec.replicas, status).
const EXPECTED_AFTER_ROLLOUT: &str = r#"{"metadata":{"annotations":{"deployment.kubernetes.io/desired-replicas":"3","deployment.kubernetes.io/max-replicas":"4","deployment.kubernetes.io/revision":"1","note":"kept"},"labels":{"app":"web","pod-template-hash":"6fb9fc9cdf"},"name":"web-6fb9fc9cdf","namespace":"default","ownerReferences":[{"apiVersion":"apps/v1","blockOwnerDeletion":true,"controller":true,"kind":"Deployment","name":"web"}]},"spec":{"replicas":0},"status":{"observedGeneration":4,"replicas":0}}
{"metadata":{"annotations":{"deployment.kubernetes.io/desired-replicas":"3","deployment.kubernetes.io/max-replicas":"4","deployment.kubernetes.io/revision":"2","note":"kept"},"labels":{"app":"web","pod-template-hash":"d4fb648bf"},"name":"web-d4fb648bf","namespace":"default","ownerReferences":[{"apiVersion":"apps/v1","blockOwnerDeletion":true,"controller":true,"kind":"Deployment","name":"web"}]},"spec":{"replicas":3},"status":{"availableReplicas":3,"fullyLabeledReplicas":3,"observedGeneration":3,"readyReplicas":3,"replicas":3}}"#;

const EXPECTED_STATUS: &str = r#"{"availableReplicas":3,"conditions":[{"message":"Deployment has minimum availability.","reason":"MinimumReplicasAvailable","status":"True","type":"Available"},{"message":"ReplicaSet \"web-6fb9fc9cdf\" has successfully progressed.","reason":"NewReplicaSetAvailable","status":"True","type":"Progressing"}],"observedGeneration":1,"readyReplicas":3,"replicas":3,"updatedReplicas":3}"#;

#[tokio::test(start_paused = true)]
async fn written_replicaset_and_status_are_pinned() {
    let (registry, stop) = running().await;
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "a"},
                     "annotations": {"note": "kept", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"replicas": 3, "revisionHistoryLimit": 5, "minReadySeconds": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    });
    create(&registry, "deployments", "default", d).await;
    eventually("a replica set and 3 pods", || {
        list(&registry, "replicasets", "default").len() == 1
            && list(&registry, "pods", "default").len() == 3
    })
    .await;
    make_all_ready(&registry).await;
    let status = || get(&registry, "deployments", "default", "web").unwrap()["status"].clone();
    eventually("3 available", || status()["availableReplicas"] == 3).await;
    let mut rs = list(&registry, "replicasets", "default").remove(0);
    strip_volatile_metadata(&mut rs);
    let mut status = status();
    for c in status["conditions"].as_array_mut().unwrap() {
        let c = c.as_object_mut().unwrap();
        assert!(c.remove("lastUpdateTime").is_some() && c.remove("lastTransitionTime").is_some());
    }
    assert_eq!(canonical(&rs), EXPECTED_REPLICASET);
    assert_eq!(canonical(&status), EXPECTED_STATUS);

    // A new template: a second revision, the old set scaled down, both annotated.
    set_template_image(&registry, "nginx:2").await;
    eventually("the rollout", || {
        let d = get(&registry, "deployments", "default", "web").unwrap();
        let st = &d["status"];
        let sets = list(&registry, "replicasets", "default");
        let done = sets.len() == 2
            && st["updatedReplicas"] == 3
            && st["availableReplicas"] == 3
            && st["replicas"] == 3;
        if !done {
            let r = registry.clone();
            tokio::spawn(async move { make_all_ready(&r).await });
        }
        done
    })
    .await;
    let mut sets = list(&registry, "replicasets", "default");
    sets.sort_by_key(|s| s["metadata"]["name"].as_str().unwrap().to_string());
    let sets: Vec<_> = sets
        .into_iter()
        .map(|mut s| {
            strip_volatile_metadata(&mut s);
            let keep = json!({"metadata": s["metadata"], "spec": {"replicas": s["spec"]["replicas"]}, "status": s["status"]});
            canonical(&keep)
        })
        .collect();
    assert_eq!(sets.join("\n"), EXPECTED_AFTER_ROLLOUT);
    stop.cancel();
}
