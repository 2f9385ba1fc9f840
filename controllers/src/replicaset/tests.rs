use apiserver::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::testutil::*;

async fn running() -> (Registry, CancellationToken) {
    let registry = registry_with_namespace("default").await;
    let stop = CancellationToken::new();
    tokio::spawn(super::run(cluster(&registry), stop.clone()));
    (registry, stop)
}

fn rs_manifest(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "front"},
                                      "annotations": {"a": "b"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    })
}

/// Active pods of `default` (not being deleted).
fn active_pods(registry: &Registry) -> Vec<Value> {
    list(registry, "pods", "default")
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn owned_by(p: &Value, rs: &Value) -> bool {
    p["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["uid"] == rs["metadata"]["uid"]))
}

fn owned_count(registry: &Registry, rs: &Value) -> usize {
    active_pods(registry)
        .iter()
        .filter(|p| owned_by(p, rs))
        .count()
}

/// Marks pod `name` Running and Ready since `since`.
pub(crate) async fn make_ready(registry: &Registry, name: &str, since: &str) {
    registry
        .update_with(info("pods"), "default", name, true, |p| {
            p["status"]["phase"] = json!("Running");
            p["status"]["conditions"] = json!([
                {"type": "Ready", "status": "True", "lastTransitionTime": since, "lastProbeTime": null}
            ]);
            Ok(true)
        })
        .await
        .unwrap();
}

fn status(registry: &Registry, name: &str) -> Value {
    get(registry, "replicasets", "default", name).unwrap()["status"].clone()
}

#[tokio::test(start_paused = true)]
async fn creates_pods_from_the_template_with_events_and_status() {
    let (registry, stop) = running().await;
    let rs = create(&registry, "replicasets", "default", rs_manifest("web", 3)).await;
    eventually("3 pods", || active_pods(&registry).len() == 3).await;
    for p in active_pods(&registry) {
        let name = p["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        assert_eq!(
            p["metadata"]["labels"],
            json!({"app": "web", "tier": "front"})
        );
        assert_eq!(p["metadata"]["annotations"]["a"], "b");
        let r = &p["metadata"]["ownerReferences"][0];
        assert_eq!(r["kind"], "ReplicaSet");
        assert_eq!(r["apiVersion"], "apps/v1");
        assert_eq!(r["uid"], rs["metadata"]["uid"]);
        assert_eq!(r["controller"], true);
        assert_eq!(r["blockOwnerDeletion"], true);
    }
    eventually("status", || status(&registry, "web")["replicas"] == 3).await;
    let st = status(&registry, "web");
    assert_eq!(st["fullyLabeledReplicas"], 3);
    assert_eq!(st["observedGeneration"], 1);
    assert!(st["readyReplicas"].is_null());
    let created: Vec<Value> = list_events(&registry, "default")
        .into_iter()
        .filter(|e| e["reason"] == "SuccessfulCreate")
        .collect();
    assert_eq!(created.len(), 3);
    let pod_names: Vec<String> = names(&registry, "pods", "default");
    for e in &created {
        let msg = e["message"].as_str().unwrap();
        let pod = msg.strip_prefix("Created pod: ").unwrap();
        assert!(pod_names.iter().any(|n| n == pod), "{msg}");
        assert_eq!(e["involvedObject"]["kind"], "ReplicaSet");
        assert_eq!(e["source"]["component"], "replicaset-controller");
    }

    // Ready pods are counted; a deleted pod is replaced.
    for n in &pod_names {
        make_ready(&registry, n, "2024-01-01T00:00:00Z").await;
    }
    eventually("ready", || status(&registry, "web")["readyReplicas"] == 3).await;
    assert_eq!(status(&registry, "web")["availableReplicas"], 3);
    delete(&registry, "pods", "default", &pod_names[0], None).await;
    eventually("replacement", || {
        let now = names(&registry, "pods", "default");
        now.len() == 3 && !now.contains(&pod_names[0])
    })
    .await;
    eventually("ready count drops", || {
        status(&registry, "web")["readyReplicas"] == 2
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn scales_down_deleting_not_ready_pods_first() {
    let (registry, stop) = running().await;
    create(&registry, "replicasets", "default", rs_manifest("web", 3)).await;
    eventually("3 pods", || active_pods(&registry).len() == 3).await;
    let keep = names(&registry, "pods", "default")[1].clone();
    make_ready(&registry, &keep, "2024-01-01T00:00:00Z").await;
    scale_replicaset(&registry, "web", 1).await;
    eventually("1 pod", || active_pods(&registry).len() == 1).await;
    assert_eq!(active_pods(&registry)[0]["metadata"]["name"], keep);
    let deleted = list_events(&registry, "default")
        .into_iter()
        .filter(|e| e["reason"] == "SuccessfulDelete")
        .count();
    assert_eq!(deleted, 2);
    eventually("status", || status(&registry, "web")["replicas"] == 1).await;
    assert_eq!(status(&registry, "web")["observedGeneration"], 2);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn adopts_orphans_and_releases_pods_that_stop_matching() {
    let registry = registry_with_namespace("default").await;
    let orphan = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
    create(&registry, "pods", "default", orphan).await;
    let other = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "other", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "db", "image": "pg"}]}});
    create(&registry, "pods", "default", other).await;
    let rs = create(&registry, "replicasets", "default", rs_manifest("web", 2)).await;
    let stop = CancellationToken::new();
    tokio::spawn(super::run(cluster(&registry), stop.clone()));
    eventually("adopted + 1 created", || owned_count(&registry, &rs) == 2).await;
    let adopted = get(&registry, "pods", "default", "orphan").unwrap();
    assert!(owned_by(&adopted, &rs));
    assert!(!owned_by(
        &get(&registry, "pods", "default", "other").unwrap(),
        &rs
    ));
    assert_eq!(active_pods(&registry).len(), 3);
    // Only one SuccessfulCreate: the orphan counted.
    eventually("status 2", || status(&registry, "web")["replicas"] == 2).await;
    // The orphan was not made from the template: not fully labeled.
    assert_eq!(status(&registry, "web")["fullyLabeledReplicas"], 1);

    // Relabel the adopted pod: it is released and replaced.
    registry
        .update_with(info("pods"), "default", "orphan", false, |p| {
            p["metadata"]["labels"]["app"] = json!("debug");
            Ok(true)
        })
        .await
        .unwrap();
    eventually("released", || {
        get(&registry, "pods", "default", "orphan").unwrap()["metadata"]["ownerReferences"]
            .is_null()
    })
    .await;
    eventually("replaced", || owned_count(&registry, &rs) == 2).await;
    assert_eq!(active_pods(&registry).len(), 4);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn min_ready_seconds_gates_availability() {
    let (registry, stop) = running().await;
    let mut m = rs_manifest("web", 1);
    m["spec"]["minReadySeconds"] = json!(30);
    create(&registry, "replicasets", "default", m).await;
    eventually("1 pod", || active_pods(&registry).len() == 1).await;
    let name = names(&registry, "pods", "default")[0].clone();
    // Ready just now: ready, not yet available.
    make_ready(&registry, &name, &crate::meta::now_rfc3339()).await;
    eventually("ready", || status(&registry, "web")["readyReplicas"] == 1).await;
    assert!(status(&registry, "web")["availableReplicas"].is_null());
    // Ready long ago: available.
    make_ready(&registry, &name, "2024-01-01T00:00:00Z").await;
    eventually("available", || {
        status(&registry, "web")["availableReplicas"] == 1
    })
    .await;
    stop.cancel();
}

#[test]
fn status_counts_and_replica_failure() {
    let rs = json!({"spec": {"replicas": 3, "minReadySeconds": 10, "selector": {},
        "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}}},
        "status": {"replicas": 1, "observedGeneration": 1}});
    let t = crate::pod::seconds("2024-01-01T00:00:00Z").unwrap();
    let pod = |labels: Value, ready: bool| {
        let mut p = json!({"metadata": {"labels": labels}, "status": {"phase": "Running"}});
        if ready {
            p["status"]["conditions"] = json!([{"type": "Ready", "status": "True",
                "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
        }
        p
    };
    let pods = vec![
        pod(json!({"app": "web", "tier": "front", "extra": "x"}), true),
        pod(json!({"app": "web"}), true),
    ];
    let st = status_of(&rs, &pods, Some("quota exceeded"), t + 5);
    assert_eq!(st["replicas"], 2);
    assert_eq!(st["fullyLabeledReplicas"], 1);
    assert_eq!(st["readyReplicas"], 2);
    assert!(st["availableReplicas"].is_null());
    assert_eq!(st["observedGeneration"], 1);
    let c = &st["conditions"][0];
    assert_eq!(
        (&c["type"], &c["status"]),
        (&json!("ReplicaFailure"), &json!("True"))
    );
    assert_eq!(
        (&c["reason"], &c["message"]),
        (&json!("FailedCreate"), &json!("quota exceeded"))
    );
    // A second failure keeps the first condition; success removes it.
    let mut rs2 = rs.clone();
    rs2["status"] = st.clone();
    let again = status_of(&rs2, &pods, Some("other"), t + 10);
    assert_eq!(again["conditions"], st["conditions"]);
    assert_eq!(again["availableReplicas"], 2);
    rs2["status"] = again;
    let ok = status_of(&rs2, &pods, None, t + 10);
    assert!(ok["conditions"].is_null());
    // Too many pods: FailedDelete.
    let mut one = rs.clone();
    one["spec"]["replicas"] = json!(1);
    let del = status_of(&one, &pods, Some("x"), t);
    assert_eq!(del["conditions"][0]["reason"], "FailedDelete");
}

#[tokio::test(start_paused = true)]
async fn failing_pod_reads_create_nothing_and_are_retried() {
    use std::sync::atomic::Ordering;
    let registry = registry_with_namespace("default").await;
    let rs = create(&registry, "replicasets", "default", rs_manifest("web", 2)).await;
    for name in ["web-a", "web-b"] {
        create(
            &registry,
            "pods",
            "default",
            json!({"metadata": {"name": name, "labels": {"app": "web"},
                                "ownerReferences": [owner_ref("ReplicaSet", "apps/v1", &rs)]},
                   "spec": {"containers": [{"name": "web", "image": "nginx"}]}}),
        )
        .await;
    }
    let port = std::sync::Arc::new(TestPort::new(&registry));
    port.broken.store(true, Ordering::SeqCst);
    let stop = CancellationToken::new();
    tokio::spawn(super::run(port.clone(), stop.clone()));

    // Failing reads are not "no pods": nothing is created, the sync is retried.
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    assert_eq!(names(&registry, "pods", "default"), ["web-a", "web-b"]);
    let attempts = port.failed_reads.load(Ordering::SeqCst);
    assert!(attempts >= 10, "pod reads attempted {attempts} times");
    assert!(
        status(&registry, "web")["replicas"].is_null(),
        "no status from a failed sync"
    );

    // Once reads work again the retried sync sees both pods.
    port.broken.store(false, Ordering::SeqCst);
    eventually("status", || status(&registry, "web")["replicas"] == 2).await;
    assert_eq!(names(&registry, "pods", "default"), ["web-a", "web-b"]);
    stop.cancel();
}

/// What the controller builds from `rs`'s template, as JSON.
pub(crate) fn template_pod(rs: &Value) -> Value {
    let rs = crate::typed::decode(rs).unwrap();
    serde_json::to_value(super::pod_from_template(&rs)).unwrap()
}

/// The status the controller computes for `rs` over `pods`, as JSON.
pub(crate) fn status_of(rs: &Value, pods: &[Value], err: Option<&str>, now: i64) -> Value {
    let pods: Vec<_> = pods
        .iter()
        .map(|p| crate::typed::decode(p).unwrap())
        .collect();
    let typed_rs = crate::typed::decode(rs).unwrap();
    super::calculate_status(&typed_rs, &rs["status"], &pods, err, now)
}

/// A ReplicationController runs as a ReplicaSet would, its pods, events and status naming
/// it; a ReplicaSet whose selector also matches those pods does not take them.
#[tokio::test(start_paused = true)]
async fn replication_controllers_run_their_pods() {
    let registry = registry_with_namespace("default").await;
    let stop = CancellationToken::new();
    tokio::spawn(super::run_replication(cluster(&registry), stop.clone()));
    tokio::spawn(super::run(cluster(&registry), stop.clone()));
    let rc = create(
        &registry,
        "replicationcontrollers",
        "default",
        json!({
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "legacy"},
            "spec": {"replicas": 2,
                "template": {"metadata": {"labels": {"app": "legacy"}},
                             "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }),
    )
    .await;
    // Defaulted from the template, as upstream's SetDefaults_ReplicationController.
    assert_eq!(rc["spec"]["selector"], json!({"app": "legacy"}));
    assert_eq!(rc["metadata"]["labels"], json!({"app": "legacy"}));
    eventually("2 pods", || active_pods(&registry).len() == 2).await;
    for p in active_pods(&registry) {
        let r = &p["metadata"]["ownerReferences"][0];
        assert_eq!(r["kind"], "ReplicationController");
        assert_eq!(r["apiVersion"], "v1");
        assert_eq!(r["uid"], rc["metadata"]["uid"]);
        assert!(
            p["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("legacy-")
        );
    }
    let rc_status =
        || get(&registry, "replicationcontrollers", "default", "legacy").unwrap()["status"].clone();
    eventually("status", || rc_status()["replicas"] == 2).await;
    assert_eq!(rc_status()["observedGeneration"], 1);
    let created: Vec<Value> = list_events(&registry, "default")
        .into_iter()
        .filter(|e| e["reason"] == "SuccessfulCreate")
        .collect();
    assert_eq!(created.len(), 2);
    for e in &created {
        assert_eq!(e["involvedObject"]["kind"], "ReplicationController");
        assert_eq!(e["source"]["component"], "replication-controller");
    }
    // A ReplicaSet selecting the same pods leaves them to their controller.
    create(
        &registry,
        "replicasets",
        "default",
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "rival"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "legacy"}},
                "template": {"metadata": {"labels": {"app": "legacy"}},
                             "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }),
    )
    .await;
    // Scaling down through the spec deletes one.
    registry
        .update_with(
            info("replicationcontrollers"),
            "default",
            "legacy",
            false,
            |o| {
                o["spec"]["replicas"] = json!(1);
                Ok(true)
            },
        )
        .await
        .unwrap();
    eventually("1 pod", || active_pods(&registry).len() == 1).await;
    eventually("status 1", || rc_status()["replicas"] == 1).await;
    assert_eq!(rc_status()["observedGeneration"], 2);
    assert_eq!(
        active_pods(&registry)[0]["metadata"]["ownerReferences"][0]["kind"],
        "ReplicationController"
    );
    stop.cancel();
}

#[test]
fn a_replication_controller_reads_as_a_replica_set() {
    let rs = super::rs_from_rc(&json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "x", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"a": "b"}, "minReadySeconds": 5},
        "status": {"replicas": 2, "readyReplicas": 1}
    }))
    .unwrap();
    assert_eq!(rs.spec.selector.match_labels.unwrap()["a"], "b".to_string());
    assert_eq!(rs.spec.replicas, Some(3));
    assert_eq!(rs.spec.min_ready_seconds, Some(5));
    assert_eq!(rs.status.unwrap().ready_replicas, Some(1));
    // No selector never means "every pod".
    for spec in [json!({}), json!({"selector": {}})] {
        assert!(
            super::rs_from_rc(&json!({"apiVersion": "v1", "kind": "ReplicationController",
                "metadata": {"name": "x"}, "spec": spec}))
            .is_err()
        );
    }
}
