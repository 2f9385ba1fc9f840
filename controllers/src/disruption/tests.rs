use std::time::Duration;

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

async fn budget(registry: &Registry, spec: Value) {
    let mut spec = spec;
    if spec.get("selector").is_none() {
        spec["selector"] = json!({"matchLabels": {"app": "web"}});
    }
    create(
        registry,
        "poddisruptionbudgets",
        "default",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "pdb"}, "spec": spec}),
    )
    .await;
}

fn status(registry: &Registry) -> Value {
    get(registry, "poddisruptionbudgets", "default", "pdb").unwrap()["status"].clone()
}

/// `(currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed)`.
fn counts(registry: &Registry) -> (i64, i64, i64, i64) {
    let s = status(registry);
    let i = |f: &str| s[f].as_i64().unwrap_or(-1);
    (
        i("currentHealthy"),
        i("desiredHealthy"),
        i("expectedPods"),
        i("disruptionsAllowed"),
    )
}

fn condition(registry: &Registry) -> (String, String, String) {
    let s = status(registry);
    let c = s["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == "DisruptionAllowed"))
        .cloned()
        .unwrap_or(Value::Null);
    let f = |k: &str| c[k].as_str().unwrap_or("").to_string();
    (f("status"), f("reason"), f("message"))
}

fn event_reasons(registry: &Registry) -> Vec<String> {
    list_events(registry, "default")
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

const NOW: &str = "2024-01-01T00:00:00Z";

#[tokio::test(start_paused = true)]
async fn min_available_counts_the_ready_pods() {
    let (registry, stop) = running().await;
    deployment_chain(&registry, "default").await;
    budget(&registry, json!({"minAvailable": 1})).await;
    eventually("status observed", || {
        status(&registry)["observedGeneration"] == 1
    })
    .await;
    assert_eq!(counts(&registry), (0, 1, 2, 0));
    assert_eq!(
        condition(&registry),
        ("False".into(), "InsufficientPods".into(), String::new())
    );
    make_ready(&registry, "web-5d8f7-a", NOW).await;
    eventually("one healthy", || counts(&registry).0 == 1).await;
    assert_eq!(counts(&registry), (1, 1, 2, 0));
    make_ready(&registry, "web-5d8f7-b", NOW).await;
    eventually("one disruption allowed", || {
        counts(&registry) == (2, 1, 2, 1)
    })
    .await;
    assert_eq!(
        condition(&registry),
        ("True".into(), "SufficientPods".into(), String::new())
    );
    // A spec change is a new generation, observed again.
    registry
        .update_with(info("poddisruptionbudgets"), "default", "pdb", false, |o| {
            o["spec"]["minAvailable"] = json!(2);
            Ok(true)
        })
        .await
        .unwrap();
    eventually("generation 2 observed", || {
        status(&registry)["observedGeneration"] == 2
    })
    .await;
    assert_eq!(counts(&registry), (2, 2, 2, 0));
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn percentages_use_the_controllers_scale() {
    let (registry, stop) = running().await;
    deployment_chain(&registry, "default").await;
    for p in ["web-5d8f7-a", "web-5d8f7-b"] {
        make_ready(&registry, p, NOW).await;
    }
    budget(&registry, json!({"maxUnavailable": "50%"})).await;
    eventually("computed", || counts(&registry) == (2, 1, 2, 1)).await;
    // The Deployment's scale, not the number of pods, is expected.
    registry
        .update_with(info("deployments"), "default", "web", false, |d| {
            d["spec"]["replicas"] = json!(4);
            Ok(true)
        })
        .await
        .unwrap();
    // Not watched: seen at the next resync.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(counts(&registry), (2, 1, 2, 1));
    eventually("scale 4", || counts(&registry) == (2, 2, 4, 0)).await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn unmanaged_pods_and_unknown_controllers() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "pods",
        "default",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "bare", "labels": {"app": "web"}},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .await;
    budget(&registry, json!({"maxUnavailable": 1})).await;
    eventually("computed", || status(&registry)["observedGeneration"] == 1).await;
    assert_eq!(counts(&registry), (0, 0, 0, 0));
    eventually("UnmanagedPods event", || {
        event_reasons(&registry).contains(&"UnmanagedPods".to_string())
    })
    .await;
    let ev = list_events(&registry, "default")
        .into_iter()
        .find(|e| e["reason"] == "UnmanagedPods")
        .unwrap();
    assert!(
        ev["message"].as_str().unwrap().starts_with(
            "Pods selected by this PodDisruptionBudget (selector: &LabelSelector{MatchLabels:map[string]string{app: web,},MatchExpressions:[]LabelSelectorRequirement{},}) were found to be unmanaged."
        ),
        "{ev}"
    );
    // A pod whose controller has no scale: the sync fails safe.
    let cm = create(
        &registry,
        "configmaps",
        "default",
        json!({"metadata": {"name": "owner"}}),
    )
    .await;
    create(
        &registry,
        "pods",
        "default",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "owned", "labels": {"app": "web"},
                            "ownerReferences": [owner_ref("ConfigMap", "v1", &cm)]},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .await;
    eventually("SyncFailed", || condition(&registry).1 == "SyncFailed").await;
    assert_eq!(
        condition(&registry),
        (
            "False".into(),
            "SyncFailed".into(),
            "found no controllers for pod \"owned\"".into()
        )
    );
    assert_eq!(status(&registry)["disruptionsAllowed"], 0);
    assert!(event_reasons(&registry).contains(&"CalculateExpectedPodCountFailed".to_string()));
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn evicted_pods_are_not_healthy_until_the_deletion_timeout() {
    let (registry, stop) = running().await;
    deployment_chain(&registry, "default").await;
    for p in ["web-5d8f7-a", "web-5d8f7-b"] {
        make_ready(&registry, p, NOW).await;
    }
    budget(&registry, json!({"minAvailable": 1})).await;
    eventually("computed", || counts(&registry) == (2, 1, 2, 1)).await;
    // What the eviction subresource records.
    let at = api::time::rfc3339(api::time::now());
    registry
        .update_with(info("poddisruptionbudgets"), "default", "pdb", true, |o| {
            o["status"]["disruptionsAllowed"] = json!(0);
            o["status"]["disruptedPods"] = json!({"web-5d8f7-a": at, "gone": at});
            Ok(true)
        })
        .await
        .unwrap();
    eventually("the evicted pod is not counted", || {
        counts(&registry) == (1, 1, 2, 0)
    })
    .await;
    // Entries of pods that do not exist are dropped at once.
    assert_eq!(
        status(&registry)["disruptedPods"],
        json!({"web-5d8f7-a": at})
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(counts(&registry), (1, 1, 2, 0));
    // Two minutes on, the pod was not deleted: counted again, with an event on the pod.
    eventually("the eviction expired", || counts(&registry) == (2, 1, 2, 1)).await;
    assert!(status(&registry)["disruptedPods"].is_null());
    let ev = list_events(&registry, "default")
        .into_iter()
        .find(|e| e["reason"] == "NotDeleted")
        .unwrap();
    assert_eq!(ev["involvedObject"]["name"], "web-5d8f7-a");
    assert_eq!(
        ev["message"],
        "Pod was expected by PDB default/default to be deleted but it wasn't"
    );
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_stale_disruption_target_is_cleared() {
    let (registry, stop) = running().await;
    let (_, _, pods) = deployment_chain(&registry, "default").await;
    let name = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    let at = api::time::rfc3339(api::time::now());
    registry
        .update_with(info("pods"), "default", &name, true, |p| {
            p["status"]["phase"] = json!("Running");
            p["status"]["conditions"] = json!([{"type": "DisruptionTarget", "status": "True",
                "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
                "lastTransitionTime": at}]);
            Ok(true)
        })
        .await
        .unwrap();
    let target = || {
        get(&registry, "pods", "default", &name).unwrap()["status"]["conditions"][0]["status"]
            .clone()
    };
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(target(), "True");
    eventually("cleared", || target() == "False").await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_pod_under_two_budgets_is_warned_about() {
    let (registry, stop) = running().await;
    budget(&registry, json!({"minAvailable": 1})).await;
    create(
        &registry,
        "poddisruptionbudgets",
        "default",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "second"},
               "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    deployment_chain(&registry, "default").await;
    eventually("the warning", || {
        event_reasons(&registry).contains(&"MultiplePodDisruptionBudgets".to_string())
    })
    .await;
    let ev = list_events(&registry, "default")
        .into_iter()
        .find(|e| e["reason"] == "MultiplePodDisruptionBudgets")
        .unwrap();
    assert!(
        ev["message"]
            .as_str()
            .unwrap()
            .ends_with("matches multiple PodDisruptionBudgets.  Chose \"pdb\" arbitrarily."),
        "{ev}"
    );
    stop.cancel();
}

#[test]
fn scaled_values_round_up() {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    assert_eq!(
        super::scaled_value(&IntOrString::String("50%".into()), 3),
        Ok(2)
    );
    assert_eq!(
        super::scaled_value(&IntOrString::String("0%".into()), 3),
        Ok(0)
    );
    assert_eq!(super::scaled_value(&IntOrString::Int(4), 3), Ok(4));
    assert!(super::scaled_value(&IntOrString::String("x".into()), 3).is_err());
}

/// A percentage budget over a ReplicationController's pods expects its `spec.replicas`
/// (upstream `getPodReplicationController`).
#[tokio::test(start_paused = true)]
async fn replication_controllers_give_their_scale() {
    let (registry, stop) = running().await;
    let rc = create(
        &registry,
        "replicationcontrollers",
        "default",
        json!({"apiVersion": "v1", "kind": "ReplicationController",
               "metadata": {"name": "legacy"},
               "spec": {"replicas": 4, "selector": {"app": "web"},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
    )
    .await;
    for name in ["legacy-a", "legacy-b"] {
        create(
            &registry,
            "pods",
            "default",
            json!({"metadata": {"name": name, "labels": {"app": "web"},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "ReplicationController",
                        "name": "legacy", "uid": rc["metadata"]["uid"], "controller": true}]},
                   "spec": {"containers": [{"name": "c", "image": "x"}]}}),
        )
        .await;
        make_ready(&registry, name, NOW).await;
    }
    budget(&registry, json!({"maxUnavailable": "50%"})).await;
    eventually("computed from the scale", || {
        counts(&registry) == (2, 2, 4, 0)
    })
    .await;
    stop.cancel();
}
