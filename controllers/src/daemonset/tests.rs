use std::collections::BTreeMap;

use apiserver::Registry;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::replicaset::tests::make_ready;
use crate::testutil::*;

async fn running() -> (Registry, CancellationToken) {
    let registry = registry_with_namespace("default").await;
    let stop = CancellationToken::new();
    tokio::spawn(super::run(cluster(&registry), stop.clone()));
    (registry, stop)
}

fn manifest() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"name": "agent"}},
            "template": {"metadata": {"labels": {"name": "agent"}},
                         "spec": {"containers": [{"name": "a", "image": "busybox"}]}}}
    })
}

fn node_json(name: &str, labels: Value, taints: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})
}

async fn add_node(registry: &Registry, name: &str, labels: Value, taints: Value) {
    create(registry, "nodes", "", node_json(name, labels, taints)).await;
}

/// The node each live daemon pod is pinned to, sorted.
fn placements(registry: &Registry) -> Vec<String> {
    let mut out: Vec<String> = list(registry, "pods", "default")
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let pod: Pod = crate::typed::decode(p).unwrap();
            super::target_node(&pod).unwrap_or_default()
        })
        .collect();
    out.sort();
    out
}

fn status(registry: &Registry) -> Value {
    get(registry, "daemonsets", "default", "agent").unwrap()["status"].clone()
}

#[tokio::test(start_paused = true)]
async fn one_pod_per_eligible_node_with_taints_and_tolerations() {
    let (registry, stop) = running().await;
    add_node(&registry, "a", json!({"disk": "ssd"}), json!([])).await;
    add_node(
        &registry,
        "b",
        json!({"disk": "ssd"}),
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    )
    .await;
    add_node(&registry, "c", json!({"disk": "hdd"}), json!([])).await;
    // Cordoned and unreachable (NoExecute): daemon pods tolerate both.
    add_node(
        &registry,
        "d",
        json!({"disk": "ssd"}),
        json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
               {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
    )
    .await;
    // Not ready (NoSchedule, as the lifecycle controller taints it): no new daemon pod.
    add_node(
        &registry,
        "e",
        json!({"disk": "ssd"}),
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]),
    )
    .await;
    let mut ds = manifest();
    ds["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd"});
    create(&registry, "daemonsets", "default", ds).await;
    eventually("a and d", || placements(&registry) == ["a", "d"]).await;

    let pod = list(&registry, "pods", "default").remove(0);
    assert_eq!(
        pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
        json!({"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [super::target_node(&crate::typed::decode::<Pod>(&pod).unwrap()).unwrap()]}]}]})
    );
    let tolerations: Vec<String> = pod["spec"]["tolerations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}:{}",
                t["key"].as_str().unwrap(),
                t["effect"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "node.kubernetes.io/not-ready:NoExecute",
        "node.kubernetes.io/unreachable:NoExecute",
        "node.kubernetes.io/disk-pressure:NoSchedule",
        "node.kubernetes.io/memory-pressure:NoSchedule",
        "node.kubernetes.io/pid-pressure:NoSchedule",
        "node.kubernetes.io/unschedulable:NoSchedule",
    ] {
        assert!(
            tolerations.iter().any(|t| t == want),
            "{want}: {tolerations:?}"
        );
    }
    assert!(
        !tolerations
            .iter()
            .any(|t| t.starts_with("node.kubernetes.io/network-unavailable")),
        "{tolerations:?}"
    );
    let labels = &pod["metadata"]["labels"];
    assert_eq!(labels["pod-template-generation"], "1");
    assert!(labels["controller-revision-hash"].is_string());
    let revisions = list(&registry, "controllerrevisions", "default");
    assert_eq!(revisions.len(), 1);
    assert_eq!(
        revisions[0]["metadata"]["labels"]["controller-revision-hash"],
        labels["controller-revision-hash"]
    );
    assert_eq!(
        revisions[0]["metadata"]["ownerReferences"][0]["kind"],
        "DaemonSet"
    );
    eventually("status", || {
        let s = status(&registry);
        s["desiredNumberScheduled"] == 2
            && s["currentNumberScheduled"] == 2
            && s["updatedNumberScheduled"] == 2
            && s["numberReady"] == 0
            && s["numberUnavailable"] == 2
            && s["numberMisscheduled"] == 0
            && s["observedGeneration"] == 1
    })
    .await;

    // Tolerating the dedicated taint adds node b.
    registry
        .update_with(info("daemonsets"), "default", "agent", false, |d| {
            d["spec"]["template"]["spec"]["tolerations"] =
                json!([{"key": "dedicated", "operator": "Exists"}]);
            d["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
            Ok(true)
        })
        .await
        .unwrap();
    eventually("a, b and d", || {
        placements(&registry).iter().filter(|n| *n == "b").count() == 1
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn nodes_joining_and_leaving() {
    let (registry, stop) = running().await;
    add_node(&registry, "a", json!({}), json!([])).await;
    create(&registry, "daemonsets", "default", manifest()).await;
    eventually("a", || placements(&registry) == ["a"]).await;
    add_node(&registry, "b", json!({}), json!([])).await;
    eventually("a, b", || placements(&registry) == ["a", "b"]).await;
    for p in list(&registry, "pods", "default") {
        make_ready(
            &registry,
            p["metadata"]["name"].as_str().unwrap(),
            "2024-01-01T00:00:00Z",
        )
        .await;
    }
    eventually("2 available", || status(&registry)["numberAvailable"] == 2).await;
    delete(&registry, "nodes", "", "b", None).await;
    eventually("a", || placements(&registry) == ["a"]).await;
    eventually("1 desired", || {
        status(&registry)["desiredNumberScheduled"] == 1
    })
    .await;
    // A NoExecute taint the pod does not tolerate removes it; NoSchedule alone would not.
    registry
        .update_with(info("nodes"), "", "a", false, |n| {
            n["spec"]["taints"] = json!([{"key": "k", "value": "v", "effect": "NoSchedule"}]);
            Ok(true)
        })
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        placements(&registry),
        ["a"],
        "NoSchedule keeps a running pod"
    );
    eventually("misscheduled 0, desired 0", || {
        let s = status(&registry);
        s["desiredNumberScheduled"] == 0 && s["numberMisscheduled"] == 1
    })
    .await;
    registry
        .update_with(info("nodes"), "", "a", false, |n| {
            n["spec"]["taints"] = json!([{"key": "k", "value": "v", "effect": "NoExecute"}]);
            Ok(true)
        })
        .await
        .unwrap();
    eventually("none", || placements(&registry).is_empty()).await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn rolling_update_replaces_within_max_unavailable() {
    let (registry, stop) = running().await;
    for n in ["a", "b", "c"] {
        add_node(&registry, n, json!({}), json!([])).await;
    }
    create(&registry, "daemonsets", "default", manifest()).await;
    eventually("3 pods", || placements(&registry).len() == 3).await;
    for p in list(&registry, "pods", "default") {
        make_ready(
            &registry,
            p["metadata"]["name"].as_str().unwrap(),
            "2024-01-01T00:00:00Z",
        )
        .await;
    }
    eventually("3 available", || status(&registry)["numberAvailable"] == 3).await;
    registry
        .update_with(info("daemonsets"), "default", "agent", false, |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:2");
            Ok(true)
        })
        .await
        .unwrap();
    // One old pod goes; its replacement comes; the others wait for it to be available.
    eventually("one replaced", || {
        list(&registry, "pods", "default")
            .iter()
            .filter(|p| p["metadata"]["labels"]["pod-template-generation"] == "2")
            .count()
            == 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let pods = list(&registry, "pods", "default");
    let new: Vec<&Value> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["pod-template-generation"] == "2")
        .collect();
    assert_eq!(new.len(), 1, "maxUnavailable 1");
    assert_eq!(pods.len(), 3);
    for _ in 0..3 {
        for p in list(&registry, "pods", "default") {
            if p["status"]["phase"] != "Running" {
                make_ready(
                    &registry,
                    p["metadata"]["name"].as_str().unwrap(),
                    "2024-01-01T00:00:00Z",
                )
                .await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    eventually("all updated", || {
        let s = status(&registry);
        s["updatedNumberScheduled"] == 3 && s["numberAvailable"] == 3
    })
    .await;
    assert_eq!(list(&registry, "controllerrevisions", "default").len(), 2);
    stop.cancel();
}

fn ds_typed(v: Value) -> DaemonSet {
    crate::typed::decode(&v).unwrap()
}

fn pod_on(name: &str, node: &str, generation: &str, ready: bool) -> Pod {
    let mut v = json!({"metadata": {"name": name, "labels": {"pod-template-generation": generation}},
        "spec": {"nodeName": node, "containers": []},
        "status": {"phase": "Running"}});
    if ready {
        v["status"]["conditions"] = json!([{"type": "Ready", "status": "True",
            "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
    }
    crate::typed::decode(&v).unwrap()
}

#[test]
fn surge_creates_beside_and_deletes_once_available() {
    let mut ds = manifest();
    ds["metadata"]["annotations"] = json!({"deprecated.daemonset.template.generation": "2"});
    let ds = ds_typed(ds);
    let now = crate::pod::seconds("2024-01-02T00:00:00Z").unwrap();
    let mut by_node = BTreeMap::new();
    by_node.insert("a".to_string(), vec![pod_on("old-a", "a", "1", true)]);
    by_node.insert("b".to_string(), vec![pod_on("old-b", "b", "1", true)]);
    let r = super::rolling_update(&ds, &by_node, "", 1, 0, now);
    assert_eq!(r.create_on, ["a"]);
    assert!(r.delete.is_empty());
    by_node.insert(
        "a".to_string(),
        vec![
            pod_on("old-a", "a", "1", true),
            pod_on("new-a", "a", "2", false),
        ],
    );
    let r = super::rolling_update(&ds, &by_node, "", 1, 0, now);
    assert!(r.create_on.is_empty() && r.delete.is_empty(), "{r:?}");
    by_node.insert(
        "a".to_string(),
        vec![
            pod_on("old-a", "a", "1", true),
            pod_on("new-a", "a", "2", true),
        ],
    );
    let r = super::rolling_update(&ds, &by_node, "", 1, 0, now);
    assert_eq!(r.delete, ["old-a"]);
    assert_eq!(r.create_on, ["b"]);
}

#[test]
fn host_network_pods_tolerate_network_unavailable() {
    let mut ds = manifest();
    ds["spec"]["template"]["spec"]["hostNetwork"] = json!(true);
    let ds = ds_typed(ds);
    let node: Node = crate::typed::decode(&node_json(
        "n",
        json!({}),
        json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
    ))
    .unwrap();
    assert_eq!(super::should_run(&ds, &node), (true, true));
    let plain = ds_typed(manifest());
    assert_eq!(super::should_run(&plain, &node), (false, true));
}
