use std::collections::HashMap;
use std::sync::Arc;

use apiserver::registry::{Deleted, Propagation};
use serde_json::{Value, json};
use store::{EventType, Store};
use tokio_util::sync::CancellationToken;

use crate::testutil::*;

/// Deletion revisions per `resource/name`, from watches started before the delete.
async fn deletion_order(
    store: &Store,
    from: u64,
    resources: &[&str],
    expect: usize,
) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for r in resources {
        for ev in events_since(store, r, from).await {
            if ev.kind == EventType::Deleted {
                out.insert(format!("{r}/{}", ev.key.name), ev.revision);
            }
        }
    }
    assert_eq!(out.len(), expect, "{out:?}");
    out
}

/// Namespace `default` with the deployment chain and all controllers running.
async fn running_chain() -> (apiserver::Registry, Arc<Value>, CancellationToken) {
    let registry = registry_with_namespace("default").await;
    let (_, rs, _) = deployment_chain(&registry, "default").await;
    let stop = start(&registry);
    (registry, rs, stop)
}

/// Waits until no replicaset or pod is left in `default`.
async fn chain_collected(registry: &apiserver::Registry) {
    eventually("replicaset and pods collected", || {
        names(registry, "replicasets", "default").is_empty()
            && names(registry, "pods", "default").is_empty()
    })
    .await;
}

/// Deletes deployment `web` with `policy`, checks the registry kept it behind `finalizer`,
/// and waits until the collector let it go.
async fn delete_deployment_held_by(
    registry: &apiserver::Registry,
    policy: Propagation,
    finalizer: &str,
) {
    let d = delete(registry, "deployments", "default", "web", Some(policy)).await;
    let Deleted::Pending(obj) = d else {
        panic!("{policy:?} deletion must keep the owner for the collector")
    };
    assert_eq!(obj["metadata"]["finalizers"], json!([finalizer]));
    eventually("deployment gone", || {
        get(registry, "deployments", "default", "web").is_none()
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn background_deletion_collects_the_chain() {
    let registry = registry_with_namespace("default").await;
    let (_, _, _) = deployment_chain(&registry, "default").await;
    let stop = start(&registry);
    // The graph syncs and leaves owned objects alone while their owners live.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(names(&registry, "replicasets", "default"), ["web-5d8f7"]);
    assert_eq!(names(&registry, "pods", "default").len(), 2);

    let d = delete(
        &registry,
        "deployments",
        "default",
        "web",
        Some(Propagation::Background),
    )
    .await;
    assert!(matches!(d, Deleted::Gone(_)));
    chain_collected(&registry).await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn foreground_deletion_removes_dependents_first() {
    let (registry, rs, stop) = running_chain().await;
    let from = registry.store().revision();

    delete_deployment_held_by(&registry, Propagation::Foreground, "foregroundDeletion").await;
    assert!(names(&registry, "replicasets", "default").is_empty());
    assert!(names(&registry, "pods", "default").is_empty());

    let order = deletion_order(
        registry.store(),
        from,
        &["pods", "apps/replicasets", "apps/deployments"],
        4,
    )
    .await;
    let rs_gone = order["apps/replicasets/web-5d8f7"];
    assert!(order["pods/web-5d8f7-a"] < rs_gone, "{order:?}");
    assert!(order["pods/web-5d8f7-b"] < rs_gone, "{order:?}");
    assert!(rs_gone < order["apps/deployments/web"], "{order:?}");

    // The replicaset, having dependents, was itself deleted in the foreground.
    let saw_foreground = events_since(registry.store(), "apps/replicasets", from)
        .await
        .iter()
        .any(|ev| {
            ev.key.name == rs["metadata"]["name"]
                && ev.object["metadata"]["finalizers"] == json!(["foregroundDeletion"])
        });
    assert!(saw_foreground);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn orphan_deletion_keeps_dependents_without_the_reference() {
    let (registry, rs, stop) = running_chain().await;

    delete_deployment_held_by(&registry, Propagation::Orphan, "orphan").await;
    // Give the collector every chance to (wrongly) delete the orphans.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let live = get(&registry, "replicasets", "default", "web-5d8f7").expect("orphan lives");
    assert_eq!(live["metadata"]["uid"], rs["metadata"]["uid"]);
    assert!(live["metadata"].get("ownerReferences").is_none(), "{live}");
    for pod in names(&registry, "pods", "default") {
        let pod = get(&registry, "pods", "default", &pod).unwrap();
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["uid"],
            rs["metadata"]["uid"]
        );
    }
    assert_eq!(names(&registry, "pods", "default").len(), 2);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn owner_with_another_uid_counts_as_gone() {
    let registry = registry_with_namespace("default").await;
    let (deploy, rs, _) = deployment_chain(&registry, "default").await;
    let stop = start(&registry);
    // A pod naming the live replicaset but an old uid, and one owned by a missing object.
    let mut stale = owner_ref("ReplicaSet", "apps/v1", &rs);
    stale["uid"] = json!("00000000-0000-0000-0000-000000000001");
    for (name, owner) in [
        ("stale-uid", stale.clone()),
        (
            "missing-owner",
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "nope",
                   "uid": "00000000-0000-0000-0000-000000000002"}),
        ),
    ] {
        create(
            &registry,
            "pods",
            "default",
            json!({"metadata": {"name": name, "ownerReferences": [owner]},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await;
    }
    // A pod with one live and one stale owner keeps living without the stale reference.
    create(
        &registry,
        "pods",
        "default",
        json!({"metadata": {"name": "two-owners", "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                     "uid": deploy["metadata"]["uid"]},
                    stale]},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
    eventually("orphaned pods collected", || {
        get(&registry, "pods", "default", "stale-uid").is_none()
            && get(&registry, "pods", "default", "missing-owner").is_none()
    })
    .await;
    eventually("stale reference removed", || {
        get(&registry, "pods", "default", "two-owners")
            .is_some_and(|p| p["metadata"]["ownerReferences"].as_array().unwrap().len() == 1)
    })
    .await;
    let pod = get(&registry, "pods", "default", "two-owners").unwrap();
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    // The healthy chain is untouched.
    assert_eq!(names(&registry, "pods", "default").len(), 3);
    assert_eq!(names(&registry, "replicasets", "default"), ["web-5d8f7"]);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn dependents_created_before_the_collector_starts_are_collected() {
    let registry = registry_with_namespace("default").await;
    let (_, _, _) = deployment_chain(&registry, "default").await;
    // The owner vanishes while no collector runs (e.g. a restart).
    delete(
        &registry,
        "deployments",
        "default",
        "web",
        Some(Propagation::Background),
    )
    .await;
    assert_eq!(names(&registry, "replicasets", "default").len(), 1);
    let stop = start(&registry);
    chain_collected(&registry).await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn cluster_scoped_owner_of_namespaced_dependent() {
    let registry = registry_with_namespace("default").await;
    let node = create(
        &registry,
        "nodes",
        "",
        json!({"metadata": {"name": "node1"}}),
    )
    .await;
    create(
        &registry,
        "configmaps",
        "default",
        json!({"metadata": {"name": "node1-info",
                            "ownerReferences": [owner_ref("Node", "v1", &node)]},
               "data": {"a": "b"}}),
    )
    .await;
    let stop = start(&registry);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(get(&registry, "configmaps", "default", "node1-info").is_some());
    delete(&registry, "nodes", "", "node1", None).await;
    eventually("configmap collected", || {
        get(&registry, "configmaps", "default", "node1-info").is_none()
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn start_and_stop() {
    let registry = registry_with_namespace("default").await;
    create_namespace(&registry, "kube-system").await;
    let controllers = crate::start(
        cluster(&registry),
        authority(&crate::testutil::ca()),
        crate::leader::identity(),
        crate::Options::default(),
    );
    deployment_chain(&registry, "default").await;
    delete(
        &registry,
        "deployments",
        "default",
        "web",
        Some(Propagation::Background),
    )
    .await;
    chain_collected(&registry).await;
    controllers.stop().await;
    // Stopped: nothing collects any more.
    deployment_chain(&registry, "default").await;
    delete(&registry, "deployments", "default", "web", None).await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(names(&registry, "pods", "default").len(), 2);
}
