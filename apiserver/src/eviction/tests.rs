use api::cluster::Binding;
use serde_json::json;
use store::Store;

use super::*;

async fn setup() -> Registry {
    let r = Registry::new(Store::memory());
    r.create(
        info("", "namespaces"),
        "",
        json!({"metadata": {"name": "d"}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    r
}

/// A pod labelled app=a, bound to n1 (so its deletion is graceful), in `phase`, ready or not.
async fn pod(r: &Registry, name: &str, phase: &str, ready: bool) {
    r.create(
        info("", "pods"),
        "d",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "labels": {"app": "a"}},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let binding = Binding {
        node: "n1".into(),
        ..Binding::default()
    };
    r.bind("d", name, &binding, false).await.unwrap();
    let (phase, ready) = (phase.to_string(), if ready { "True" } else { "False" });
    r.update_with(info("", "pods"), "d", name, true, |p| {
        p["status"]["phase"] = json!(phase);
        api::pod_condition::update(p, json!({"type": "Ready", "status": ready}));
        Ok(true)
    })
    .await
    .unwrap();
}

/// A PDB selecting app=a with the given status (observing generation 1).
async fn pdb(r: &Registry, name: &str, spec: Value, status: Value) {
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": {"app": "a"}});
    r.create(
        info("policy", "poddisruptionbudgets"),
        "d",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": name}, "spec": spec}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    r.update_with(
        info("policy", "poddisruptionbudgets"),
        "d",
        name,
        true,
        |o| {
            let mut st = status.clone();
            st["observedGeneration"] = json!(1);
            o["status"] = st;
            Ok(true)
        },
    )
    .await
    .unwrap();
}

fn eviction(name: &str) -> Eviction {
    Eviction::from_body(
        &json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}),
        false,
    )
    .unwrap()
}

fn get(r: &Registry, plural: &str, name: &str) -> Arc<Value> {
    let group = if plural == "pods" { "" } else { "policy" };
    r.get(info(group, plural), "d", name).unwrap()
}

fn condition<'a>(obj: &'a Value, type_: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn without_a_budget_the_pod_is_marked_and_deleted() {
    let r = setup().await;
    pod(&r, "p", "Running", true).await;
    let out = r.evict("d", "p", &eviction("p")).await.unwrap();
    assert!(matches!(out, Evicted::Success));
    let p = get(&r, "pods", "p");
    assert!(p["metadata"]["deletionTimestamp"].is_string());
    let c = condition(&p, "DisruptionTarget");
    assert_eq!(c["status"], "True");
    assert_eq!(c["reason"], "EvictionByEvictionAPI");
    assert_eq!(c["message"], "Eviction API: evicting");

    let e = r.evict("d", "p", &eviction("q")).await.unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "name in URL does not match name in Eviction object")
    );
    assert_eq!(
        r.evict("d", "gone", &eviction("gone"))
            .await
            .unwrap_err()
            .code,
        404
    );
}

#[tokio::test]
async fn a_budget_without_room_refuses_with_429() {
    let r = setup().await;
    pod(&r, "p", "Running", true).await;
    pdb(&r, "b", json!({"minAvailable": 1}),
        json!({"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}))
        .await;
    let e = r.evict("d", "p", &eviction("p")).await.unwrap_err();
    assert_eq!(e.code, 429);
    assert_eq!(e.reason, "TooManyRequests");
    assert_eq!(
        e.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let status = e.to_status();
    assert_eq!(
        status["details"],
        json!({"causes": [{"reason": "DisruptionBudget",
            "message": "The disruption budget b needs 1 healthy pods and has 1 currently"}]})
    );
    assert!(get(&r, "pods", "p")["metadata"]["deletionTimestamp"].is_null());
}

#[tokio::test]
async fn a_budget_with_room_is_spent_and_records_the_pod() {
    let r = setup().await;
    pod(&r, "p", "Running", true).await;
    pdb(&r, "b", json!({"maxUnavailable": 1}),
        json!({"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2}))
        .await;
    assert!(matches!(
        r.evict("d", "p", &eviction("p")).await.unwrap(),
        Evicted::Success
    ));
    let b = get(&r, "poddisruptionbudgets", "b");
    assert_eq!(b["status"]["disruptionsAllowed"], 0);
    assert!(b["status"]["disruptedPods"]["p"].is_string());
    let c = condition(&b, "DisruptionAllowed");
    assert_eq!(
        (&c["status"], &c["reason"]),
        (&json!("False"), &json!("InsufficientPods"))
    );
    assert!(get(&r, "pods", "p")["metadata"]["deletionTimestamp"].is_string());
}

#[tokio::test]
async fn a_budget_not_yet_observed_asks_to_retry_later() {
    let r = setup().await;
    pod(&r, "p", "Running", true).await;
    pdb(&r, "b", json!({"minAvailable": 0}),
        json!({"disruptionsAllowed": 1, "currentHealthy": 1, "desiredHealthy": 0, "expectedPods": 1}))
        .await;
    r.update_with(
        info("policy", "poddisruptionbudgets"),
        "d",
        "b",
        false,
        |o| {
            o["spec"]["minAvailable"] = json!(1);
            Ok(true)
        },
    )
    .await
    .unwrap();
    let e = r.evict("d", "p", &eviction("p")).await.unwrap_err();
    assert_eq!(e.code, 429);
    let d = e.details.unwrap();
    assert_eq!(d.retry_after_seconds, Some(10));
    assert_eq!(
        d.causes[0].message,
        "The disruption budget b is still being processed by the server."
    );
}

#[tokio::test]
async fn two_budgets_are_a_failure_status() {
    let r = setup().await;
    pod(&r, "p", "Running", true).await;
    let st = json!({"disruptionsAllowed": 1, "currentHealthy": 1, "desiredHealthy": 0, "expectedPods": 1});
    pdb(&r, "b1", json!({"minAvailable": 0}), st.clone()).await;
    pdb(&r, "b2", json!({"minAvailable": 0}), st).await;
    let Evicted::Failure(e) = r.evict("d", "p", &eviction("p")).await.unwrap() else {
        panic!("expected a failure status");
    };
    assert_eq!(e.code, 500);
    assert_eq!(
        e.to_status(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            "code": 500})
    );
}

#[tokio::test]
async fn pending_and_unready_pods_and_dry_runs() {
    let r = setup().await;
    pdb(&r, "b", json!({"minAvailable": 1, "unhealthyPodEvictionPolicy": "IfHealthyBudget"}),
        json!({"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 3}))
        .await;
    // Pending: no budget check.
    pod(&r, "pending", "Pending", false).await;
    assert!(matches!(
        r.evict("d", "pending", &eviction("pending")).await.unwrap(),
        Evicted::Success
    ));
    // Running but unready while the budget is met: deleted without spending it.
    pod(&r, "unready", "Running", false).await;
    assert!(matches!(
        r.evict("d", "unready", &eviction("unready")).await.unwrap(),
        Evicted::Success
    ));
    assert!(get(&r, "pods", "unready")["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        get(&r, "poddisruptionbudgets", "b")["status"]["disruptionsAllowed"],
        0
    );
    // Healthy pod: refused; a dry run of it too, and a dry run writes nothing.
    pod(&r, "ready", "Running", true).await;
    let dry = Eviction::from_body(&json!({"metadata": {"name": "ready"}}), true).unwrap();
    assert_eq!(r.evict("d", "ready", &dry).await.unwrap_err().code, 429);
    r.update_with(
        info("policy", "poddisruptionbudgets"),
        "d",
        "b",
        true,
        |o| {
            o["status"]["disruptionsAllowed"] = json!(1);
            Ok(true)
        },
    )
    .await
    .unwrap();
    let before = r.store().revision();
    assert!(matches!(
        r.evict("d", "ready", &dry).await.unwrap(),
        Evicted::Success
    ));
    assert_eq!(r.store().revision(), before, "a dry run writes nothing");
}

#[tokio::test]
async fn unready_pods_under_always_allow_and_resource_version_preconditions() {
    let r = setup().await;
    pod(&r, "unready", "Running", false).await;
    let stale = Eviction::from_body(
        &json!({"apiVersion": "policy/v1beta1", "kind": "Eviction",
                "metadata": {"name": "unready"},
                "deleteOptions": {"preconditions": {"resourceVersion": "1"}}}),
        false,
    )
    .unwrap();
    let e = r.evict("d", "unready", &stale).await.unwrap_err();
    assert_eq!(e.code, 409);
    assert!(e.message.starts_with(
        "Operation cannot be fulfilled on Pod \"unready\": the ResourceVersion in the precondition (1) does not match"
    ), "{}", e.message);
    // Under the budget the precondition becomes the pod's current resourceVersion, as
    // upstream's setPreconditionsResourceVersion does.
    pdb(&r, "b", json!({"minAvailable": 2, "unhealthyPodEvictionPolicy": "AlwaysAllow"}),
        json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 2, "expectedPods": 2}))
        .await;
    assert!(matches!(
        r.evict("d", "unready", &eviction("unready")).await.unwrap(),
        Evicted::Success
    ));
    assert!(get(&r, "pods", "unready")["metadata"]["deletionTimestamp"].is_string());
    let bad = Eviction::from_body(&json!({"apiVersion": "v1", "kind": "Eviction"}), false);
    assert_eq!(bad.unwrap_err().code, 400);
}
