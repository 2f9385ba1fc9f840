use apiserver::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::util::*;
use crate::testutil::*;

/// A registry with the ReplicaSet and Deployment controllers running.
pub(crate) async fn running() -> (Registry, CancellationToken) {
    let registry = registry_with_namespace("default").await;
    let stop = CancellationToken::new();
    tokio::spawn(crate::replicaset::run(cluster(&registry), stop.clone()));
    tokio::spawn(super::run(cluster(&registry), stop.clone()));
    (registry, stop)
}

fn manifest(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": image}]}}}
    })
}

fn deployment(registry: &Registry) -> Value {
    Value::clone(&get(registry, "deployments", "default", "web").unwrap())
}

/// ReplicaSets by revision.
fn sets(registry: &Registry) -> Vec<Value> {
    let mut v = list(registry, "replicasets", "default");
    v.sort_by_key(revision);
    v
}

fn rs_named(registry: &Registry, name: &str) -> Value {
    Value::clone(&get(registry, "replicasets", "default", name).unwrap())
}

fn rs_replicas(rs: &Value) -> i64 {
    rs["spec"]["replicas"].as_i64().unwrap()
}

/// Active pods of a ReplicaSet.
fn pods_of(registry: &Registry, rs: &Value) -> Vec<Value> {
    list(registry, "pods", "default")
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"])
        .collect()
}

/// Marks every not-ready pod of `default` Ready (long enough ago to be available).
pub(crate) async fn make_all_ready(registry: &Registry) {
    for p in list(registry, "pods", "default") {
        if crate::pod::typed::is_ready(&crate::typed::decode(&p).unwrap())
            || !p["metadata"]["deletionTimestamp"].is_null()
        {
            continue;
        }
        let name = p["metadata"]["name"].as_str().unwrap();
        let _ = registry
            .update_with(info("pods"), "default", name, true, |p| {
                p["status"]["phase"] = json!("Running");
                p["status"]["conditions"] = json!([{"type": "Ready", "status": "True",
                    "lastTransitionTime": "2024-01-01T00:00:00Z", "lastProbeTime": null}]);
                Ok(true)
            })
            .await;
    }
}

pub(crate) async fn set_template_image(registry: &Registry, image: &str) {
    registry
        .update_with(info("deployments"), "default", "web", false, |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
            Ok(true)
        })
        .await
        .unwrap();
}

/// kubectl's `rollout status` completion test (kubectl-wire §3.9).
fn rollout_done(d: &Value) -> bool {
    let n = |f: &str| d["status"][f].as_i64().unwrap_or(0);
    d["metadata"]["generation"].as_i64().unwrap() <= n("observedGeneration")
        && n("updatedReplicas") >= d["spec"]["replicas"].as_i64().unwrap()
        && n("replicas") <= n("updatedReplicas")
        && n("availableReplicas") >= n("updatedReplicas")
}

fn scaling_events(registry: &Registry) -> Vec<String> {
    let mut evs: Vec<Value> = list_events(registry, "default")
        .into_iter()
        .filter(|e| e["reason"] == "ScalingReplicaSet")
        .collect();
    evs.sort_by_key(|e| e["metadata"]["name"].as_str().unwrap().to_string());
    evs.iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

/// An annotation of a stored object.
fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}

/// The revision of a stored ReplicaSet (0 without one).
fn revision(rs: &Value) -> i64 {
    annotation(rs, REVISION).map_or(0, |r| r.parse().unwrap())
}

/// The condition `type_` of a stored deployment (null without one).
fn cond<'a>(d: &'a Value, type_: &str) -> &'a Value {
    let conditions = d["status"]["conditions"].as_array();
    conditions
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

/// The pod template of a stored Deployment or ReplicaSet.
fn template(obj: &Value) -> k8s_openapi::api::core::v1::PodTemplateSpec {
    serde_json::from_value(obj["spec"]["template"].clone()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn creates_a_replica_set_named_by_hash_then_reports_available() {
    let (registry, stop) = running().await;
    let d = create(&registry, "deployments", "default", manifest(2, "nginx:1")).await;
    eventually("replica set", || sets(&registry).len() == 1).await;
    let rs = &sets(&registry)[0];
    let hash = rs["metadata"]["labels"][POD_TEMPLATE_HASH]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"],
        json!({"app": "web", POD_TEMPLATE_HASH: hash})
    );
    assert_eq!(
        rs["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH],
        hash
    );
    assert_eq!(
        rs["metadata"]["labels"],
        json!({"app": "web", POD_TEMPLATE_HASH: hash})
    );
    assert_eq!(annotation(rs, REVISION), Some("1"));
    assert_eq!(annotation(rs, DESIRED_REPLICAS), Some("2"));
    assert_eq!(annotation(rs, MAX_REPLICAS), Some("3"));
    let r = &rs["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&r["kind"], &r["uid"], &r["controller"]),
        (&json!("Deployment"), &d["metadata"]["uid"], &json!(true))
    );
    assert!(equal_ignore_hash(&template(rs), &template(&d)));
    eventually("2 pods", || pods_of(&registry, rs).len() == 2).await;
    for p in pods_of(&registry, rs) {
        assert_eq!(p["metadata"]["labels"][POD_TEMPLATE_HASH], hash);
    }
    eventually("status counts", || {
        let d = deployment(&registry);
        d["status"]["replicas"] == 2 && d["status"]["updatedReplicas"] == 2
    })
    .await;
    let cur = deployment(&registry);
    assert_eq!(annotation(&cur, REVISION), Some("1"));
    assert_eq!(cur["status"]["observedGeneration"], 1);
    assert_eq!(cur["status"]["unavailableReplicas"], 2);
    assert_eq!(cond(&cur, "Available")["reason"], MIN_UNAVAILABLE);
    assert_eq!(
        cond(&cur, "Available")["message"],
        "Deployment does not have minimum availability."
    );
    assert_eq!(cond(&cur, "Progressing")["status"], "True");
    assert!(!rollout_done(&cur));
    assert_eq!(
        scaling_events(&registry),
        [format!("Scaled up replica set web-{hash} from 0 to 2")]
    );

    make_all_ready(&registry).await;
    eventually("rollout done", || rollout_done(&deployment(&registry))).await;
    eventually("NewReplicaSetAvailable", || {
        cond(&deployment(&registry), "Progressing")["reason"] == NEW_RS_AVAILABLE
    })
    .await;
    let cur = deployment(&registry);
    assert_eq!(cur["status"]["availableReplicas"], 2);
    assert_eq!(cur["status"]["readyReplicas"], 2);
    assert!(cur["status"]["unavailableReplicas"].is_null());
    assert_eq!(cond(&cur, "Available")["reason"], MIN_AVAILABLE);
    assert_eq!(
        cond(&cur, "Progressing")["message"],
        format!("ReplicaSet \"web-{hash}\" has successfully progressed.")
    );
    // Available first, Progressing last, as upstream leaves them.
    let types: Vec<&str> = cur["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Available", "Progressing"]);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn rolling_update_steps_within_surge_and_unavailability() {
    let (registry, stop) = running().await;
    create(&registry, "deployments", "default", manifest(4, "nginx:1")).await;
    eventually("4 pods", || {
        sets(&registry).len() == 1 && pods_of(&registry, &sets(&registry)[0]).len() == 4
    })
    .await;
    make_all_ready(&registry).await;
    eventually("first rollout", || rollout_done(&deployment(&registry))).await;
    let old_name = sets(&registry)[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();

    set_template_image(&registry, "nginx:2").await;
    eventually("new replica set", || sets(&registry).len() == 2).await;
    let new_name = sets(&registry)[1]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(old_name, new_name);
    assert_eq!(
        annotation(&rs_named(&registry, &new_name), REVISION),
        Some("2")
    );
    // First step: surge 1 new, old down by maxUnavailable 1.
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    for rs in sets(&registry) {
        eprintln!(
            "DEBUG {} {} {}",
            rs["metadata"]["name"], rs["spec"]["replicas"], rs["status"]
        );
    }
    eprintln!("DEBUG {}", deployment(&registry)["status"]);
    // (A second sync surges again once the old set shrank: 3 old + 2 new = 4 + 1.)
    eventually("first step", || {
        rs_replicas(&rs_named(&registry, &new_name)) == 2
            && rs_replicas(&rs_named(&registry, &old_name)) == 3
    })
    .await;
    let mut steps = 0;
    loop {
        let (old, new) = (
            rs_named(&registry, &old_name),
            rs_named(&registry, &new_name),
        );
        // Never more than replicas + maxSurge pods wanted.
        assert!(rs_replicas(&old) + rs_replicas(&new) <= 5);
        if rs_replicas(&old) == 0 && rs_replicas(&new) == 4 {
            break;
        }
        // Nothing moves until new pods become ready.
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        assert_eq!(
            rs_replicas(&rs_named(&registry, &old_name)),
            rs_replicas(&old)
        );
        assert_eq!(
            rs_replicas(&rs_named(&registry, &new_name)),
            rs_replicas(&new)
        );
        eventually("new pods exist", || {
            pods_of(&registry, &rs_named(&registry, &new_name)).len() as i64 == rs_replicas(&new)
        })
        .await;
        make_all_ready(&registry).await;
        eventually("progress", || {
            let (o, n) = (
                rs_named(&registry, &old_name),
                rs_named(&registry, &new_name),
            );
            (rs_replicas(&o), rs_replicas(&n)) != (rs_replicas(&old), rs_replicas(&new))
        })
        .await;
        steps += 1;
        assert!(steps < 10);
    }
    assert!(steps >= 2, "{steps}");
    make_all_ready(&registry).await;
    eventually("rollout done", || rollout_done(&deployment(&registry))).await;
    let d = deployment(&registry);
    assert_eq!(annotation(&d, REVISION), Some("2"));
    assert_eq!(d["status"]["updatedReplicas"], 4);
    let events = scaling_events(&registry);
    assert!(
        events.contains(&format!("Scaled up replica set {new_name} from 0 to 1")),
        "{events:?}"
    );
    assert!(
        events.contains(&format!("Scaled down replica set {old_name} from 4 to 3")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.ends_with(&format!("{old_name} from 1 to 0"))),
        "{events:?}"
    );

    // Rolling back by reverting the template reuses the old set with revision max+1.
    set_template_image(&registry, "nginx:1").await;
    eventually("old set is new again", || {
        annotation(&rs_named(&registry, &old_name), REVISION) == Some("3")
    })
    .await;
    assert_eq!(sets(&registry).len(), 2);
    assert_eq!(
        annotation(&rs_named(&registry, &old_name), REVISION_HISTORY),
        Some("1")
    );
    eventually("deployment revision 3", || {
        annotation(&deployment(&registry), REVISION) == Some("3")
    })
    .await;
    for _ in 0..10 {
        make_all_ready(&registry).await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    eventually("rolled back", || {
        rs_replicas(&rs_named(&registry, &old_name)) == 4
            && rs_replicas(&rs_named(&registry, &new_name)) == 0
            && rollout_done(&deployment(&registry))
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn recreate_scales_old_to_zero_before_creating_the_new_set() {
    let (registry, stop) = running().await;
    let mut m = manifest(2, "nginx:1");
    m["spec"]["strategy"] = json!({"type": "Recreate"});
    create(&registry, "deployments", "default", m).await;
    eventually("2 pods", || {
        sets(&registry).len() == 1 && pods_of(&registry, &sets(&registry)[0]).len() == 2
    })
    .await;
    make_all_ready(&registry).await;
    eventually("rollout done", || rollout_done(&deployment(&registry))).await;
    let old_name = sets(&registry)[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    set_template_image(&registry, "nginx:2").await;
    eventually("new set at full size", || {
        sets(&registry).len() == 2 && rs_replicas(&sets(&registry)[1]) == 2
    })
    .await;
    assert_eq!(rs_replicas(&rs_named(&registry, &old_name)), 0);
    let events = scaling_events(&registry);
    let down = events
        .iter()
        .position(|e| e == &format!("Scaled down replica set {old_name} from 2 to 0"));
    let new_name = sets(&registry)[1]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let up = events
        .iter()
        .position(|e| e == &format!("Scaled up replica set {new_name} from 0 to 2"));
    assert!(down.is_some() && up.is_some() && down < up, "{events:?}");
    eventually("new pods", || {
        pods_of(&registry, &rs_named(&registry, &new_name)).len() == 2
    })
    .await;
    assert!(pods_of(&registry, &rs_named(&registry, &old_name)).is_empty());
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn old_sets_beyond_the_history_limit_are_deleted() {
    let (registry, stop) = running().await;
    let mut m = manifest(1, "v0");
    m["spec"]["revisionHistoryLimit"] = json!(1);
    create(&registry, "deployments", "default", m).await;
    for v in 1..=3 {
        eventually("pods", || !list(&registry, "pods", "default").is_empty()).await;
        make_all_ready(&registry).await;
        eventually("rollout done", || rollout_done(&deployment(&registry))).await;
        set_template_image(&registry, &format!("v{v}")).await;
        eventually("new set", || {
            sets(&registry).iter().any(|rs| revision(rs) == v + 1)
        })
        .await;
        for _ in 0..5 {
            make_all_ready(&registry).await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    make_all_ready(&registry).await;
    eventually("history trimmed", || {
        let revs: Vec<i64> = sets(&registry).iter().map(revision).collect();
        revs == [3, 4]
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn scaling_is_applied_to_the_active_set() {
    let (registry, stop) = running().await;
    create(&registry, "deployments", "default", manifest(2, "nginx:1")).await;
    eventually("set", || sets(&registry).len() == 1).await;
    make_all_ready(&registry).await;
    registry
        .update_with(info("deployments"), "default", "web", false, |d| {
            d["spec"]["replicas"] = json!(5);
            Ok(true)
        })
        .await
        .unwrap();
    eventually("scaled", || rs_replicas(&sets(&registry)[0]) == 5).await;
    let rs = &sets(&registry)[0];
    assert_eq!(annotation(rs, DESIRED_REPLICAS), Some("5"));
    assert_eq!(annotation(rs, MAX_REPLICAS), Some("7"));
    let name = rs["metadata"]["name"].as_str().unwrap();
    assert!(
        scaling_events(&registry).contains(&format!("Scaled up replica set {name} from 2 to 5"))
    );
    eventually("pods", || pods_of(&registry, rs).len() == 5).await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_stuck_rollout_exceeds_its_progress_deadline() {
    let (registry, stop) = running().await;
    let mut m = manifest(1, "nginx:1");
    m["spec"]["progressDeadlineSeconds"] = json!(30);
    create(&registry, "deployments", "default", m).await;
    eventually("progressing", || {
        let d = deployment(&registry);
        d["status"]["updatedReplicas"] == 1 && cond(&d, "Progressing")["reason"] == RS_UPDATED
    })
    .await;
    // Pretend the last progress was long ago (wall-clock time does not move in this test).
    registry
        .update_with(info("deployments"), "default", "web", true, |d| {
            for c in d["status"]["conditions"].as_array_mut().unwrap() {
                if c["type"] == "Progressing" {
                    c["lastUpdateTime"] = json!("2024-01-01T00:00:00Z");
                    c["reason"] = json!(RS_UPDATED);
                }
            }
            Ok(true)
        })
        .await
        .unwrap();
    eventually("timed out", || {
        cond(&deployment(&registry), "Progressing")["reason"] == TIMED_OUT
    })
    .await;
    let d = deployment(&registry);
    let c = cond(&d, "Progressing");
    assert_eq!(c["status"], "False");
    let rs = &sets(&registry)[0];
    assert_eq!(
        c["message"],
        format!(
            "ReplicaSet {:?} has timed out progressing.",
            rs["metadata"]["name"].as_str().unwrap()
        )
    );
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn pausing_holds_the_rollout_and_sets_conditions() {
    let (registry, stop) = running().await;
    create(&registry, "deployments", "default", manifest(2, "nginx:1")).await;
    eventually("set", || sets(&registry).len() == 1).await;
    make_all_ready(&registry).await;
    eventually("rollout done", || rollout_done(&deployment(&registry))).await;
    registry
        .update_with(info("deployments"), "default", "web", false, |d| {
            d["spec"]["paused"] = json!(true);
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
            Ok(true)
        })
        .await
        .unwrap();
    eventually("paused condition", || {
        cond(&deployment(&registry), "Progressing")["reason"] == PAUSED
    })
    .await;
    let c = cond(&deployment(&registry), "Progressing").clone();
    assert_eq!(
        (&c["status"], &c["message"]),
        (&json!("Unknown"), &json!("Deployment is paused"))
    );
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    assert_eq!(
        sets(&registry).len(),
        1,
        "a paused deployment does not roll out"
    );
    registry
        .update_with(info("deployments"), "default", "web", false, |d| {
            d["spec"]["paused"] = json!(false);
            Ok(true)
        })
        .await
        .unwrap();
    eventually("resumed and rolling", || sets(&registry).len() == 2).await;
    let d = deployment(&registry);
    let reason = cond(&d, "Progressing")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        [RESUMED, NEW_RS_CREATED, RS_UPDATED].contains(&reason.as_str()),
        "{reason}"
    );
    stop.cancel();
}
