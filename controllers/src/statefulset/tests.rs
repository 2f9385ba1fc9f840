use apiserver::Registry;
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

fn manifest(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "serviceName": "nginx",
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}}
    })
}

/// Pods of `default` not being deleted, by name.
fn pod_names(registry: &Registry) -> Vec<String> {
    let mut names: Vec<String> = list(registry, "pods", "default")
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn pod(registry: &Registry, name: &str) -> Value {
    (*get(registry, "pods", "default", name).unwrap()).clone()
}

fn status(registry: &Registry) -> Value {
    get(registry, "statefulsets", "default", "web").unwrap()["status"].clone()
}

async fn ready(registry: &Registry, name: &str) {
    make_ready(registry, name, "2024-01-01T00:00:00Z").await;
}

/// Lets the controller run a while of paused time.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
}

async fn update_set(registry: &Registry, f: impl Fn(&mut Value) + Send + Sync) {
    registry
        .update_with(info("statefulsets"), "default", "web", false, |s| {
            f(s);
            Ok(true)
        })
        .await
        .unwrap();
}

fn revision_of(p: &Value) -> String {
    p["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Creates a 3-replica set and walks it to all Ready.
async fn three_ready(registry: &Registry) {
    create(registry, "statefulsets", "default", manifest(3)).await;
    for i in 0..3 {
        let name = format!("web-{i}");
        eventually(&name, || pod_names(registry).contains(&name)).await;
        ready(registry, &name).await;
    }
    eventually("3 ready", || status(registry)["readyReplicas"] == 3).await;
}

#[tokio::test(start_paused = true)]
async fn ordered_creation_waits_for_each_pod_to_be_ready() {
    let (registry, stop) = running().await;
    create(&registry, "statefulsets", "default", manifest(3)).await;
    eventually("web-0", || pod_names(&registry) == ["web-0"]).await;
    settle().await;
    assert_eq!(pod_names(&registry), ["web-0"], "web-1 waits for web-0");

    let p = pod(&registry, "web-0");
    assert_eq!(p["spec"]["hostname"], "web-0");
    assert_eq!(p["spec"]["subdomain"], "nginx");
    assert_eq!(p["metadata"]["generateName"], "web-");
    let labels = &p["metadata"]["labels"];
    assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "web-0");
    assert_eq!(labels["apps.kubernetes.io/pod-index"], "0");
    assert_eq!(labels["app"], "nginx");
    let rev = revision_of(&p);
    assert!(rev.starts_with("web-"), "{rev}");
    assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    let revisions = list(&registry, "controllerrevisions", "default");
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0]["metadata"]["name"], rev.as_str());
    assert_eq!(revisions[0]["revision"], 1);
    assert_eq!(
        revisions[0]["data"]["spec"]["template"]["$patch"],
        "replace"
    );

    // Running but not Ready is not enough.
    registry
        .update_with(info("pods"), "default", "web-0", true, |p| {
            p["status"]["phase"] = json!("Running");
            Ok(true)
        })
        .await
        .unwrap();
    settle().await;
    assert_eq!(pod_names(&registry), ["web-0"]);

    ready(&registry, "web-0").await;
    eventually("web-1", || pod_names(&registry) == ["web-0", "web-1"]).await;
    settle().await;
    assert_eq!(pod_names(&registry), ["web-0", "web-1"]);
    ready(&registry, "web-1").await;
    eventually("web-2", || pod_names(&registry).len() == 3).await;
    ready(&registry, "web-2").await;
    eventually("status", || {
        let s = status(&registry);
        s["readyReplicas"] == 3
            && s["replicas"] == 3
            && s["availableReplicas"] == 3
            && s["currentReplicas"] == 3
            && s["updatedReplicas"] == 3
            && s["currentRevision"] == rev.as_str()
            && s["updateRevision"] == rev.as_str()
            && s["observedGeneration"] == 1
            && s["collisionCount"] == 0
    })
    .await;
    let events = list_events(&registry, "default");
    let messages: Vec<&str> = events
        .iter()
        .filter(|e| e["reason"] == "SuccessfulCreate")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"create Pod web-0 in StatefulSet web successful"),
        "{messages:?}"
    );
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn scale_down_removes_the_highest_ordinal_first() {
    let (registry, stop) = running().await;
    three_ready(&registry).await;
    update_set(&registry, |s| s["spec"]["replicas"] = json!(1)).await;
    // Unscheduled pods go at once, so web-1 follows web-2 quickly: the events keep the order.
    eventually("web-1 gone", || pod_names(&registry) == ["web-0"]).await;
    let deleted: Vec<String> = list_events(&registry, "default")
        .iter()
        .filter(|e| e["reason"] == "SuccessfulDelete")
        .filter_map(|e| e["message"].as_str().map(String::from))
        .collect();
    assert_eq!(
        deleted,
        [
            "delete Pod web-2 in StatefulSet web successful",
            "delete Pod web-1 in StatefulSet web successful"
        ]
    );
    eventually("status 1", || status(&registry)["replicas"] == 1).await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn partitioned_rolling_update_goes_down_to_the_partition() {
    let (registry, stop) = running().await;
    three_ready(&registry).await;
    let old = revision_of(&pod(&registry, "web-0"));
    update_set(&registry, |s| {
        s["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}});
        s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    })
    .await;
    // web-2 is replaced first, at the new revision.
    eventually("web-2 updated", || {
        get(&registry, "pods", "default", "web-2")
            .is_some_and(|p| revision_of(&p) != old && p["metadata"]["deletionTimestamp"].is_null())
    })
    .await;
    let new = revision_of(&pod(&registry, "web-2"));
    assert_eq!(
        pod(&registry, "web-2")["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(
        revision_of(&pod(&registry, "web-1")),
        old,
        "web-1 waits for web-2"
    );
    ready(&registry, "web-2").await;
    eventually("web-1 updated", || {
        get(&registry, "pods", "default", "web-1").is_some_and(|p| revision_of(&p) == new)
    })
    .await;
    ready(&registry, "web-1").await;
    settle().await;
    settle().await;
    assert_eq!(
        revision_of(&pod(&registry, "web-0")),
        old,
        "below the partition"
    );
    eventually("status", || {
        let s = status(&registry);
        s["updatedReplicas"] == 2
            && s["currentReplicas"] == 1
            && s["currentRevision"] == old.as_str()
            && s["updateRevision"] == new.as_str()
    })
    .await;
    assert_eq!(list(&registry, "controllerrevisions", "default").len(), 2);

    // Partition 0 finishes the roll out; the update revision becomes current.
    update_set(&registry, |s| {
        s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(0);
    })
    .await;
    eventually("web-0 updated", || {
        get(&registry, "pods", "default", "web-0").is_some_and(|p| revision_of(&p) == new)
    })
    .await;
    ready(&registry, "web-0").await;
    eventually("complete", || {
        let s = status(&registry);
        s["currentRevision"] == new.as_str() && s["currentReplicas"] == 3
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn on_delete_replaces_only_deleted_pods() {
    let (registry, stop) = running().await;
    three_ready(&registry).await;
    let old = revision_of(&pod(&registry, "web-0"));
    update_set(&registry, |s| {
        s["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    })
    .await;
    eventually("update revision", || {
        status(&registry)["updateRevision"] != old.as_str()
    })
    .await;
    settle().await;
    for i in 0..3 {
        assert_eq!(revision_of(&pod(&registry, &format!("web-{i}"))), old);
    }
    delete(&registry, "pods", "default", "web-1", None).await;
    eventually("web-1 at the new revision", || {
        get(&registry, "pods", "default", "web-1").is_some_and(|p| revision_of(&p) != old)
    })
    .await;
    assert_eq!(revision_of(&pod(&registry, "web-2")), old);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn claims_are_requested_per_ordinal_and_a_refused_claim_is_failed_create() {
    let (registry, stop) = running().await;
    let mut m = manifest(1);
    m["spec"]["volumeClaimTemplates"] = json!([{
        "metadata": {"name": "www", "labels": {"tier": "data"}},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}
    }]);
    m["spec"]["persistentVolumeClaimRetentionPolicy"] =
        json!({"whenDeleted": "Delete", "whenScaled": "Retain"});
    let set = create(&registry, "statefulsets", "default", m).await;
    let set: k8s_openapi::api::apps::v1::StatefulSet = crate::typed::decode(&set).unwrap();
    let claims = super::pods::claims_for(&set, 0);
    assert_eq!(claims.len(), 1);
    let c = &claims[0];
    assert_eq!(c["metadata"]["name"], "www-web-0");
    assert_eq!(
        c["metadata"]["labels"],
        json!({"app": "nginx", "tier": "data"})
    );
    assert_eq!(c["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    assert_eq!(c["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    let pod = super::pods::new_pod(&set, 0);
    let volumes = serde_json::to_value(&pod.spec.unwrap().volumes).unwrap();
    assert_eq!(
        volumes,
        json!([{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}}])
    );
    if super::pods::claims_info().is_none() {
        // This server does not serve claims: the pod is not made, a FailedCreate says why.
        eventually("FailedCreate", || {
            list_events(&registry, "default").iter().any(|e| {
                e["reason"] == "FailedCreate"
                    && e["message"].as_str().is_some_and(|m| {
                        m.starts_with(
                            "create Claim www-web-0 for Pod web-0 in StatefulSet web failed error:",
                        )
                    })
            })
        })
        .await;
        assert!(pod_names(&registry).is_empty());
    } else {
        eventually("claim", || {
            get(&registry, "persistentvolumeclaims", "default", "www-web-0").is_some()
        })
        .await;
        eventually("web-0", || pod_names(&registry) == ["web-0"]).await;
    }
    stop.cancel();
}

#[test]
fn names_and_ordinals() {
    use super::pods::{ordinal_of, parent_of};
    assert_eq!(parent_of("web-12"), Some("web"));
    assert_eq!(ordinal_of("web-12"), Some(12));
    assert_eq!(parent_of("my-web-0"), Some("my-web"));
    assert_eq!(parent_of("web-x"), None);
    assert_eq!(parent_of("web"), None);
    assert_eq!(parent_of("web-"), None);
}

#[tokio::test(start_paused = true)]
async fn the_garbage_collector_removes_pods_and_revisions_with_their_sets() {
    let (registry, stop) = running().await;
    tokio::spawn(crate::gc::run(cluster(&registry), stop.clone()));
    tokio::spawn(crate::daemonset::run(cluster(&registry), stop.clone()));
    create(
        &registry,
        "nodes",
        "",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
    )
    .await;
    three_ready(&registry).await;
    create(
        &registry,
        "daemonsets",
        "default",
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
               "spec": {"selector": {"matchLabels": {"name": "agent"}},
                        "template": {"metadata": {"labels": {"name": "agent"}},
                                     "spec": {"containers": [{"name": "a", "image": "busybox"}]}}}}),
    )
    .await;
    eventually("daemon pod", || pod_names(&registry).len() == 4).await;
    assert_eq!(list(&registry, "controllerrevisions", "default").len(), 2);

    delete(&registry, "statefulsets", "default", "web", None).await;
    eventually("set pods gone", || pod_names(&registry).len() == 1).await;
    eventually("set revision gone", || {
        list(&registry, "controllerrevisions", "default").len() == 1
    })
    .await;
    delete(
        &registry,
        "daemonsets",
        "default",
        "agent",
        Some(apiserver::registry::Propagation::Foreground),
    )
    .await;
    eventually("all gone", || {
        pod_names(&registry).is_empty()
            && list(&registry, "controllerrevisions", "default").is_empty()
            && get(&registry, "daemonsets", "default", "agent").is_none()
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_terminating_pod_is_not_replaced_until_it_is_gone() {
    let (registry, stop) = running().await;
    create(&registry, "statefulsets", "default", manifest(1)).await;
    eventually("web-0", || pod_names(&registry) == ["web-0"]).await;
    ready(&registry, "web-0").await;
    // A finalizer stands for a node that cannot confirm the pod stopped.
    registry
        .update_with(info("pods"), "default", "web-0", false, |p| {
            p["metadata"]["finalizers"] = json!(["example.com/hold"]);
            Ok(true)
        })
        .await
        .unwrap();
    let uid = pod(&registry, "web-0")["metadata"]["uid"].clone();
    delete(&registry, "pods", "default", "web-0", None).await;
    settle().await;
    settle().await;
    let p = pod(&registry, "web-0");
    assert_eq!(
        p["metadata"]["uid"], uid,
        "no second web-0 beside the first"
    );
    assert!(!p["metadata"]["deletionTimestamp"].is_null());
    registry
        .update_with(info("pods"), "default", "web-0", false, |p| {
            p["metadata"]["finalizers"] = json!([]);
            Ok(true)
        })
        .await
        .unwrap();
    eventually("replaced", || {
        get(&registry, "pods", "default", "web-0").is_some_and(|p| p["metadata"]["uid"] != uid)
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn parallel_creates_all_and_max_unavailable_updates_several_at_once() {
    let (registry, stop) = running().await;
    let mut m = manifest(3);
    m["spec"]["podManagementPolicy"] = json!("Parallel");
    m["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}});
    create(&registry, "statefulsets", "default", m).await;
    eventually("3 at once", || pod_names(&registry).len() == 3).await;
    for i in 0..3 {
        ready(&registry, &format!("web-{i}")).await;
    }
    eventually("3 ready", || status(&registry)["readyReplicas"] == 3).await;
    let old = revision_of(&pod(&registry, "web-0"));
    update_set(&registry, |s| {
        s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    })
    .await;
    // web-2 and web-1 go together; web-0 waits (two unavailable already).
    eventually("two updated", || {
        ["web-1", "web-2"]
            .iter()
            .all(|n| get(&registry, "pods", "default", n).is_some_and(|p| revision_of(&p) != old))
    })
    .await;
    settle().await;
    assert_eq!(revision_of(&pod(&registry, "web-0")), old);
    ready(&registry, "web-1").await;
    ready(&registry, "web-2").await;
    eventually("web-0 updated", || {
        revision_of(&pod(&registry, "web-0")) != old
    })
    .await;
    stop.cancel();
}
