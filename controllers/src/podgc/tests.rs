use std::time::Duration;

use serde_json::json;

use super::Config;
use crate::testutil::*;

fn pod(name: &str, node: Option<&str>, finalizer: bool) -> serde_json::Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    if finalizer {
        p["metadata"]["finalizers"] = json!(["test.paddock.dev/hold"]);
    }
    p
}

async fn set_running(registry: &apiserver::Registry, name: &str) {
    registry
        .update_with(info("pods"), "default", name, true, |p| {
            p["status"]["phase"] = json!("Running");
            Ok(true)
        })
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn orphans_of_a_deleted_node_go_after_the_quarantine_and_out_of_service_pods_at_once() {
    let registry = registry_with_namespace("default").await;
    create(
        &registry,
        "nodes",
        "",
        json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "alive"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
    )
    .await;
    create(&registry, "nodes", "", json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "down"},
        "spec": {"taints": [{"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}]},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}))
    .await;
    // A pod of a node that never existed (holding a finalizer, so its last state is seen).
    create(
        &registry,
        "pods",
        "default",
        pod("orphan", Some("ghost"), true),
    )
    .await;
    set_running(&registry, "orphan").await;
    create(
        &registry,
        "pods",
        "default",
        pod("fine", Some("alive"), false),
    )
    .await;
    set_running(&registry, "fine").await;
    // A pod being deleted on the out-of-service node: its kubelet will never confirm.
    create(
        &registry,
        "pods",
        "default",
        pod("stuck", Some("down"), false),
    )
    .await;
    set_running(&registry, "stuck").await;
    delete(&registry, "pods", "default", "stuck", None).await;
    assert!(
        get(&registry, "pods", "default", "stuck").is_some(),
        "graceful: still there"
    );

    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(super::run_with(
        cluster(&registry),
        Config::default(),
        stop.clone(),
    ));
    // The first pass (at once) force-deletes the out-of-service node's terminating pod.
    eventually("stuck force-deleted", || {
        get(&registry, "pods", "default", "stuck").is_none()
    })
    .await;
    // The orphan waits out the quarantine.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let o = get(&registry, "pods", "default", "orphan").unwrap();
    assert!(o["metadata"]["deletionTimestamp"].is_null(), "{o}");
    tokio::time::sleep(Duration::from_secs(40)).await;
    let o = get(&registry, "pods", "default", "orphan").unwrap();
    assert!(!o["metadata"]["deletionTimestamp"].is_null(), "{o}");
    assert_eq!(o["status"]["phase"], "Failed", "{o}");
    let cond = o["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .unwrap()
        .clone();
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "DeletionByPodGC");
    assert_eq!(cond["message"], "PodGC: node no longer exists");
    // The pod of a live node is left alone.
    let f = get(&registry, "pods", "default", "fine").unwrap();
    assert_eq!(f["status"]["phase"], "Running");
    assert!(f["metadata"]["deletionTimestamp"].is_null());
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn finished_pods_past_the_threshold_go_oldest_first() {
    let registry = registry_with_namespace("default").await;
    for i in 0..4 {
        create(
            &registry,
            "pods",
            "default",
            pod(&format!("done-{i}"), None, false),
        )
        .await;
        registry
            .update_with(info("pods"), "default", &format!("done-{i}"), true, |p| {
                p["status"]["phase"] = json!(if i == 3 { "Failed" } else { "Succeeded" });
                if i == 3 {
                    p["status"]["reason"] = json!("Evicted");
                }
                Ok(true)
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let config = Config {
        terminated_threshold: 2,
        ..Config::default()
    };
    tokio::spawn(super::run_with(cluster(&registry), config, stop.clone()));
    eventually("two left", || {
        names(&registry, "pods", "default").len() == 2
    })
    .await;
    // The evicted one first, then the oldest.
    assert_eq!(names(&registry, "pods", "default"), ["done-1", "done-2"]);
    stop.cancel();
}
