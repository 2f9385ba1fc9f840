//! The taint eviction controller alone over the registry, under paused time: NoExecute
//! taints put on by hand (as the node lifecycle controller or a user would).

use std::time::Duration;

use apiserver::Registry;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::testutil::*;

async fn start() -> (Registry, CancellationToken) {
    let registry = registry_with_namespace("default").await;
    create(
        &registry,
        "nodes",
        "",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
    )
    .await;
    let stop = CancellationToken::new();
    tokio::spawn(super::run(cluster(&registry), stop.clone()));
    (registry, stop)
}

/// A pod bound to n1 with `tolerations` besides the default ones admission adds.
async fn pod(registry: &Registry, name: &str, tolerations: Value) {
    create(
        registry,
        "pods",
        "default",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"nodeName": "n1", "tolerations": tolerations,
                        "containers": [{"name": "c", "image": "i"}]}}),
    )
    .await;
}

async fn set_taints(registry: &Registry, taints: Value) {
    registry
        .update_with(info("nodes"), "", "n1", false, |n| {
            n["spec"]["taints"] = taints.clone();
            Ok(true)
        })
        .await
        .unwrap();
}

fn evicted(registry: &Registry, pod: &str) -> bool {
    get(registry, "pods", "default", pod)
        .is_none_or(|p| !p["metadata"]["deletionTimestamp"].is_null())
}

fn messages(registry: &Registry) -> Vec<String> {
    list_events(registry, "default")
        .into_iter()
        .filter(|e| e["reason"] == "TaintManagerEviction")
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn evicts_after_the_smallest_toleration_and_at_once_when_not_tolerated() {
    let (registry, stop) = start().await;
    // Default 300 s, and a shorter one of its own for unreachable.
    pod(
        &registry,
        "short",
        json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 20}]),
    )
    .await;
    pod(&registry, "default", json!([])).await;
    pod(
        &registry,
        "forever",
        json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    set_taints(
        &registry,
        json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]),
    )
    .await;
    let tainted = Instant::now();
    tokio::time::sleep(Duration::from_secs(19)).await;
    assert!(!evicted(&registry, "short"));
    eventually("short evicted", || evicted(&registry, "short")).await;
    let after = tainted.elapsed();
    assert!(
        after >= Duration::from_secs(20) && after < Duration::from_secs(21),
        "{after:?}"
    );
    assert!(!evicted(&registry, "default"));
    if let Some(p) = get(&registry, "pods", "default", "short") {
        let c = p["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionTarget"))
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(c["status"], "True", "{p}");
        assert_eq!(c["reason"], "DeletionByTaintManager", "{p}");
        assert_eq!(
            c["message"], "Taint manager: deleting due to NoExecute taint",
            "{p}"
        );
    }
    assert!(
        messages(&registry).contains(&"Marking for deletion Pod default/short".to_string()),
        "{:?}",
        messages(&registry)
    );
    tokio::time::sleep(Duration::from_secs(270)).await;
    assert!(!evicted(&registry, "default"));
    eventually("default evicted", || evicted(&registry, "default")).await;
    let after = tainted.elapsed();
    assert!(
        after >= Duration::from_secs(300) && after < Duration::from_secs(301),
        "{after:?}"
    );
    // A toleration without seconds tolerates forever.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(!evicted(&registry, "forever"));

    // A NoExecute taint nobody tolerates: at once, whatever else is tolerated.
    set_taints(
        &registry,
        json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
               {"key": "example.com/maintenance", "effect": "NoExecute"}]),
    )
    .await;
    let t = Instant::now();
    eventually("forever evicted", || evicted(&registry, "forever")).await;
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn removing_the_taint_cancels_the_eviction() {
    let (registry, stop) = start().await;
    pod(&registry, "web", json!([])).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    set_taints(
        &registry,
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(200)).await;
    set_taints(&registry, json!([])).await;
    eventually("cancel event", || {
        messages(&registry).contains(&"Cancelling deletion of Pod default/web".to_string())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(!evicted(&registry, "web"));
    // NoSchedule taints never evict.
    set_taints(
        &registry,
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(!evicted(&registry, "web"));
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_pod_bound_to_a_tainted_node_later_is_evicted_too() {
    let (registry, stop) = start().await;
    set_taints(
        &registry,
        json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    pod(&registry, "late", json!([])).await;
    let bound = Instant::now();
    tokio::time::sleep(Duration::from_secs(299)).await;
    assert!(!evicted(&registry, "late"));
    eventually("late evicted", || evicted(&registry, "late")).await;
    assert!(
        bound.elapsed() < Duration::from_secs(301),
        "{:?}",
        bound.elapsed()
    );
    stop.cancel();
}

#[test]
fn toleration_times_as_upstream() {
    use k8s_openapi::api::core::v1::Toleration;
    let t = |secs: Option<i64>| Toleration {
        toleration_seconds: secs,
        ..Default::default()
    };
    assert_eq!(super::min_toleration_time(&[]), Some(Duration::ZERO));
    assert_eq!(super::min_toleration_time(&[t(None)]), None);
    assert_eq!(
        super::min_toleration_time(&[t(Some(30)), t(None), t(Some(10))]),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        super::min_toleration_time(&[t(Some(30)), t(Some(-1))]),
        Some(Duration::ZERO)
    );
}
