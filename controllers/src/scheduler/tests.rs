use std::sync::Arc;
use std::time::Duration;

use apiserver::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::filter::{self, NodeState};
use crate::testutil::*;

/// Creates node `name` with `labels`, `spec` and a Ready condition of `ready`.
async fn node(registry: &Registry, name: &str, labels: Value, spec: Value, ready: &str) {
    create(
        registry,
        "nodes",
        "",
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": name, "labels": labels}, "spec": spec}),
    )
    .await;
    set_node_status(
        registry,
        name,
        ready,
        json!({"cpu": "2", "memory": "4Gi", "pods": "110"}),
    )
    .await;
}

async fn set_node_status(registry: &Registry, name: &str, ready: &str, allocatable: Value) {
    registry
        .update_with(info("nodes"), "", name, true, |n| {
            n["status"] = json!({
                "capacity": allocatable.clone(),
                "allocatable": allocatable.clone(),
                "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady",
                                "lastHeartbeatTime": "2024-01-01T00:00:00Z",
                                "lastTransitionTime": "2024-01-01T00:00:00Z"}],
            });
            Ok(true)
        })
        .await
        .unwrap();
}

async fn pod(registry: &Registry, name: &str, spec: Value) -> Arc<Value> {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "image": "i"}]);
    }
    create(
        registry,
        "pods",
        "default",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}),
    )
    .await
}

fn node_of(registry: &Registry, name: &str) -> String {
    get(registry, "pods", "default", name).unwrap()["spec"]["nodeName"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn scheduled_condition(registry: &Registry, name: &str) -> Value {
    let p = get(registry, "pods", "default", name).unwrap();
    p["status"]["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == "PodScheduled"))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn running() -> (Registry, CancellationToken) {
    let registry = registry_with_namespace("default").await;
    let stop = CancellationToken::new();
    tokio::spawn(super::run(cluster(&registry), stop.clone()));
    (registry, stop)
}

async fn wait_bound(registry: &Registry, name: &str) -> String {
    eventually(&format!("{name} bound"), || {
        !node_of(registry, name).is_empty()
    })
    .await;
    node_of(registry, name)
}

async fn wait_unschedulable(registry: &Registry, name: &str) -> String {
    eventually(&format!("{name} unschedulable"), || {
        scheduled_condition(registry, name)["reason"] == "Unschedulable"
    })
    .await;
    let c = scheduled_condition(registry, name);
    assert_eq!(c["status"], "False");
    assert!(node_of(registry, name).is_empty());
    c["message"].as_str().unwrap().to_string()
}

fn events_for(registry: &Registry, name: &str, reason: &str) -> Vec<Value> {
    list_events(registry, "default")
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn binds_to_a_ready_node_with_condition_and_event() {
    let (registry, stop) = running().await;
    node(&registry, "node-1", json!({}), json!({}), "True").await;
    pod(&registry, "web-1", json!({})).await;
    assert_eq!(wait_bound(&registry, "web-1").await, "node-1");
    let c = scheduled_condition(&registry, "web-1");
    assert_eq!(c["status"], "True");
    assert!(c["lastTransitionTime"].is_string());
    eventually("Scheduled event", || {
        !events_for(&registry, "web-1", "Scheduled").is_empty()
    })
    .await;
    let ev = &events_for(&registry, "web-1", "Scheduled")[0];
    assert_eq!(
        ev["message"],
        "Successfully assigned default/web-1 to node-1"
    );
    assert_eq!(ev["type"], "Normal");
    assert_eq!(ev["reportingComponent"], "default-scheduler");
    assert_eq!(ev["action"], "Binding");
    // Pods for another scheduler, or already bound, are left alone.
    pod(&registry, "other", json!({"schedulerName": "my-scheduler"})).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(node_of(&registry, "other").is_empty());
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn no_nodes_then_a_node_appears() {
    let (registry, stop) = running().await;
    pod(&registry, "p", json!({})).await;
    let msg = wait_unschedulable(&registry, "p").await;
    assert_eq!(msg, "no nodes available to schedule pods");
    eventually("FailedScheduling event", || {
        !events_for(&registry, "p", "FailedScheduling").is_empty()
    })
    .await;
    assert_eq!(
        events_for(&registry, "p", "FailedScheduling")[0]["type"],
        "Warning"
    );
    node(&registry, "n1", json!({}), json!({}), "True").await;
    assert_eq!(wait_bound(&registry, "p").await, "n1");
    assert_eq!(scheduled_condition(&registry, "p")["status"], "True");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn not_ready_node_is_refused_until_ready() {
    let (registry, stop) = running().await;
    node(&registry, "n1", json!({}), json!({}), "False").await;
    pod(&registry, "p", json!({})).await;
    let msg = wait_unschedulable(&registry, "p").await;
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. \
         preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
    set_node_status(
        &registry,
        "n1",
        "True",
        json!({"cpu": "2", "memory": "4Gi", "pods": "110"}),
    )
    .await;
    assert_eq!(wait_bound(&registry, "p").await, "n1");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn node_selector_and_affinity() {
    let (registry, stop) = running().await;
    node(&registry, "a", json!({"disk": "hdd"}), json!({}), "True").await;
    node(
        &registry,
        "b",
        json!({"disk": "ssd", "zone": "2"}),
        json!({}),
        "True",
    )
    .await;
    pod(&registry, "sel", json!({"nodeSelector": {"disk": "ssd"}})).await;
    assert_eq!(wait_bound(&registry, "sel").await, "b");
    pod(
        &registry,
        "aff",
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["5"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}
        ]}}}}),
    )
    .await;
    assert_eq!(wait_bound(&registry, "aff").await, "a");
    pod(&registry, "none", json!({"nodeSelector": {"disk": "nvme"}})).await;
    let msg = wait_unschedulable(&registry, "none").await;
    assert_eq!(
        msg,
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
    // Labelling a node makes the pod schedulable.
    registry
        .update_with(info("nodes"), "", "a", false, |n| {
            n["metadata"]["labels"]["disk"] = json!("nvme");
            Ok(true)
        })
        .await
        .unwrap();
    assert_eq!(wait_bound(&registry, "none").await, "a");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn taints_tolerations_and_cordon() {
    let (registry, stop) = running().await;
    node(
        &registry,
        "n1",
        json!({}),
        json!({"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}),
        "True",
    )
    .await;
    pod(&registry, "plain", json!({})).await;
    let msg = wait_unschedulable(&registry, "plain").await;
    assert!(
        msg.starts_with(
            "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}."
        ),
        "{msg}"
    );
    pod(
        &registry,
        "tolerant",
        json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]}),
    )
    .await;
    assert_eq!(wait_bound(&registry, "tolerant").await, "n1");
    // A PreferNoSchedule taint does not filter; cordoning does.
    registry
        .update_with(info("nodes"), "", "n1", false, |n| {
            n["spec"] = json!({"unschedulable": true,
                "taints": [{"key": "soft", "effect": "PreferNoSchedule"}]});
            Ok(true)
        })
        .await
        .unwrap();
    pod(&registry, "cordoned", json!({})).await;
    let msg = wait_unschedulable(&registry, "cordoned").await;
    assert!(
        msg.starts_with("0/1 nodes are available: 1 node(s) were unschedulable."),
        "{msg}"
    );
    registry
        .update_with(info("nodes"), "", "n1", false, |n| {
            n["spec"]["unschedulable"] = json!(false);
            Ok(true)
        })
        .await
        .unwrap();
    assert_eq!(wait_bound(&registry, "cordoned").await, "n1");
    assert_eq!(wait_bound(&registry, "plain").await, "n1");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn resources_against_allocatable_and_freed_by_deletion() {
    let (registry, stop) = running().await;
    node(&registry, "n1", json!({}), json!({}), "True").await;
    let req = |cpu: &str| {
        json!({"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]})
    };
    pod(&registry, "big", req("1500m")).await;
    assert_eq!(wait_bound(&registry, "big").await, "n1");
    // 1500m of 2 cores is taken: 600m does not fit (preemption could help in principle).
    pod(&registry, "more", req("600m")).await;
    let msg = wait_unschedulable(&registry, "more").await;
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 Insufficient cpu. \
         preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
    // Larger than the node: cannot be resolved by preemption either.
    pod(&registry, "huge", req("3")).await;
    let msg = wait_unschedulable(&registry, "huge").await;
    assert!(
        msg.ends_with("1 Preemption is not helpful for scheduling."),
        "{msg}"
    );
    // Deleting the bound pod frees its requests.
    delete(&registry, "pods", "default", "big", None).await;
    if get(&registry, "pods", "default", "big").is_some() {
        // Bound pods are deleted gracefully; finish the deletion as the node agent would.
        registry
            .delete(
                info("pods"),
                "default",
                "big",
                &apiserver::registry::DeleteOptions {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    assert_eq!(wait_bound(&registry, "more").await, "n1");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn pod_count_and_host_ports() {
    let (registry, stop) = running().await;
    node(&registry, "n1", json!({}), json!({}), "True").await;
    set_node_status(
        &registry,
        "n1",
        "True",
        json!({"cpu": "2", "memory": "4Gi", "pods": "2"}),
    )
    .await;
    let port = |p: i64| {
        json!({"containers": [{"name": "c", "image": "i",
            "ports": [{"containerPort": 80, "hostPort": p}]}]})
    };
    pod(&registry, "p1", port(8080)).await;
    assert_eq!(wait_bound(&registry, "p1").await, "n1");
    pod(&registry, "p2", port(8080)).await;
    let msg = wait_unschedulable(&registry, "p2").await;
    assert!(
        msg.starts_with(
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
        ),
        "{msg}"
    );
    pod(&registry, "p3", port(8081)).await;
    assert_eq!(wait_bound(&registry, "p3").await, "n1");
    pod(&registry, "p4", json!({})).await;
    let msg = wait_unschedulable(&registry, "p4").await;
    assert!(
        msg.starts_with("0/1 nodes are available: 1 Too many pods."),
        "{msg}"
    );
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn bind_refuses_assigned_replaced_and_deleting_pods() {
    let registry = registry_with_namespace("default").await;
    let c = cluster(&registry);
    let p = pod(&registry, "p", json!({})).await;
    let before = registry.store().revision();
    super::bind(&c, "default", "p", crate::meta::uid(&p), "n1")
        .await
        .unwrap();
    assert_eq!(registry.store().revision(), before + 1, "one write");
    let bound = get(&registry, "pods", "default", "p").unwrap();
    assert_eq!(bound["spec"]["nodeName"], "n1");
    assert_eq!(scheduled_condition(&registry, "p")["status"], "True");
    let e = super::bind(&c, "default", "p", "", "n2").await.unwrap_err();
    assert_eq!(e.code, 409);
    assert!(
        e.message
            .ends_with("pod p is already assigned to node \"n1\""),
        "{}",
        e.message
    );

    // A pod replaced under the same name: the uid precondition refuses the binding.
    let q = pod(&registry, "q", json!({})).await;
    delete(&registry, "pods", "default", "q", None).await;
    pod(&registry, "q", json!({})).await;
    let e = super::bind(&c, "default", "q", crate::meta::uid(&q), "n1")
        .await
        .unwrap_err();
    assert_eq!(e.code, 409);
    assert!(
        e.message.contains("Precondition failed: UID"),
        "{}",
        e.message
    );
    assert!(get(&registry, "pods", "default", "q").unwrap()["spec"]["nodeName"].is_null());

    // A pod being deleted (it has a finalizer) is not assigned.
    let r = pod(&registry, "r", json!({})).await;
    registry
        .update_with(info("pods"), "default", "r", false, |o| {
            o["metadata"]["finalizers"] = json!(["test/keep"]);
            Ok(true)
        })
        .await
        .unwrap();
    delete(&registry, "pods", "default", "r", None).await;
    let e = super::bind(&c, "default", "r", crate::meta::uid(&r), "n1")
        .await
        .unwrap_err();
    assert_eq!(e.code, 409);
    assert!(
        e.message
            .ends_with("pod r is being deleted, cannot be assigned to a host")
    );
}

#[test]
fn filters_and_scores() {
    let typed =
        |v: Value| -> k8s_openapi::api::core::v1::Pod { serde_json::from_value(v).unwrap() };
    let node: k8s_openapi::api::core::v1::Node =
        serde_json::from_value(json!({"metadata": {"name": "n", "labels": {"a": "1"}},
        "spec": {"taints": [{"key": "k", "effect": "NoExecute"}]},
        "status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "10"},
                   "conditions": [{"type": "Ready", "status": "Unknown"}]}}))
        .unwrap();
    let state = NodeState::new(&node);
    let bare = typed(json!({"spec": {"containers": [{"name": "c"}]}}));
    assert_eq!(
        filter::filter(&bare, &filter::pod_requests(&bare).unwrap(), &state)
            .unwrap_err()
            .reasons,
        ["node(s) had untolerated taint {k: }"]
    );
    let tolerant = typed(json!({"spec": {"containers": [{"name": "c"}],
        "tolerations": [{"operator": "Exists"}]}}));
    assert!(filter::filter(&tolerant, &filter::pod_requests(&tolerant).unwrap(), &state).is_ok());
    let only_k = typed(json!({"spec": {"containers": [{"name": "c"}],
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute"}]}}));
    assert_eq!(
        filter::filter(&only_k, &filter::pod_requests(&only_k).unwrap(), &state)
            .unwrap_err()
            .reasons,
        ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
    );
    // Requests: init containers' peak, sidecars alongside, overhead.
    let p = typed(json!({"spec": {
        "initContainers": [
            {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
            {"name": "init", "resources": {"requests": {"cpu": "2"}}}],
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}}}],
        "overhead": {"cpu": "10m"}}}));
    let r = filter::pod_requests(&p).unwrap();
    assert_eq!(r["cpu"], 2110);
    assert_eq!(r["memory"], 64 * 1024 * 1024);
    // Quantities are summed before rounding, as upstream's `PodRequests` then `MilliValue`.
    let p = typed(json!({"spec": {"containers": [
        {"name": "a", "resources": {"requests": {"memory": "0.5"}}},
        {"name": "b", "resources": {"requests": {"memory": "0.5"}}}]}}));
    assert_eq!(filter::pod_requests(&p).unwrap()["memory"], 1);
    // Pod-level requests replace the containers' sum for cpu and memory.
    let p = typed(json!({"spec": {"resources": {"requests": {"cpu": "300m"}},
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "1"}}}]}}));
    let r = filter::pod_requests(&p).unwrap();
    assert_eq!((r["cpu"], r["nvidia.com/gpu"]), (300, 1));
    // A quantity that does not parse is an error naming the resource.
    let p = typed(
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "lots"}}}]}}),
    );
    let err = filter::pod_requests(&p).unwrap_err();
    assert!(
        matches!(&err, filter::RequestsError::Quantity(name, _) if name == "cpu"),
        "{err}"
    );
    // Scores fall as the node fills.
    let empty = filter::score(&bare, &state);
    let mut busy = NodeState::new(&node);
    busy.add_pod(&bare, &filter::pod_requests(&bare).unwrap());
    assert!(filter::score(&bare, &busy) < empty);
    let rejections = [
        filter::Rejection {
            code: filter::Code::Unschedulable,
            reasons: vec!["Insufficient cpu".into(), "Insufficient memory".into()],
        },
        filter::Rejection {
            code: filter::Code::Unresolvable,
            reasons: vec!["node(s) didn't match Pod's node affinity/selector".into()],
        },
    ];
    assert_eq!(
        filter::fit_error(2, &rejections, None),
        "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, \
         1 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are \
         available: 1 No preemption victims found for incoming pod, 1 Preemption is not \
         helpful for scheduling."
    );
}

#[tokio::test(start_paused = true)]
async fn least_allocated_node_wins() {
    let (registry, stop) = running().await;
    node(&registry, "a", json!({}), json!({}), "True").await;
    node(&registry, "b", json!({}), json!({}), "True").await;
    let req = json!({"containers": [{"name": "c", "image": "i",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]});
    pod(&registry, "first", req.clone()).await;
    let first = wait_bound(&registry, "first").await;
    // The other node is now the less allocated one.
    pod(&registry, "second", req).await;
    let second = wait_bound(&registry, "second").await;
    assert_ne!(first, second);
    stop.cancel();
}

/// A pod whose requests do not parse got into the store around validation (which refuses
/// it): the scheduler ignores it, as upstream's informer, unable to decode it, never shows
/// it; other pods are scheduled as usual.
#[tokio::test(start_paused = true)]
async fn pod_with_unparsable_requests_is_ignored() {
    let (registry, stop) = running().await;
    node(&registry, "a", json!({}), json!({}), "True").await;
    let bad = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bad", "namespace": "default", "uid": "u-bad"},
        "spec": {"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": "lots"}}}]}});
    registry
        .store()
        .create(store::Key::new("pods", "default", "bad"), bad)
        .await
        .unwrap();
    pod(
        &registry,
        "good",
        json!({"containers": [{"name": "c", "image": "i"}]}),
    )
    .await;
    wait_bound(&registry, "good").await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(node_of(&registry, "bad"), "");
    assert!(events_for(&registry, "bad", "FailedScheduling").is_empty());
    stop.cancel();
}

/// The VolumeBinding plugin: a pod whose claim is unbound and immediate waits with upstream's
/// message; a WaitForFirstConsumer claim gets the chosen node and the pod is bound once its
/// claim is; a bound claim's volume pins the pod to the volume's node.
#[tokio::test(start_paused = true)]
async fn volume_binding() {
    let (registry, stop) = running().await;
    node(
        &registry,
        "a",
        json!({"kubernetes.io/hostname": "a"}),
        json!({}),
        "True",
    )
    .await;
    node(
        &registry,
        "b",
        json!({"kubernetes.io/hostname": "b"}),
        json!({}),
        "True",
    )
    .await;
    let claim = |name: &str, class: &str| {
        json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
               "storageClassName": class, "resources": {"requests": {"storage": "1Gi"}}}})
    };
    let uses = |claim: &str| json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]});
    // Immediate and unbound: Pending with the PreFilter message.
    create(
        &registry,
        "persistentvolumeclaims",
        "default",
        claim("imm", ""),
    )
    .await;
    pod(&registry, "p1", uses("imm")).await;
    let msg = wait_unschedulable(&registry, "p1").await;
    assert_eq!(
        msg,
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
    // A missing claim.
    pod(&registry, "p2", uses("nope")).await;
    let msg = wait_unschedulable(&registry, "p2").await;
    assert!(
        msg.contains("persistentvolumeclaim \"nope\" not found"),
        "{msg}"
    );
    // WaitForFirstConsumer: the claim learns the node; the pod waits for the binding.
    create(
        &registry,
        "storageclasses",
        "",
        json!({"metadata": {"name": "wffc"}, "provisioner": "example.com/p",
               "volumeBindingMode": "WaitForFirstConsumer"}),
    )
    .await;
    create(
        &registry,
        "persistentvolumeclaims",
        "default",
        claim("late", "wffc"),
    )
    .await;
    pod(&registry, "p3", uses("late")).await;
    let mut selected = String::new();
    eventually("the selected node", || {
        selected = get(&registry, "persistentvolumeclaims", "default", "late").unwrap()["metadata"]
            ["annotations"]["volume.kubernetes.io/selected-node"]
            .as_str()
            .unwrap_or("")
            .to_string();
        !selected.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(node_of(&registry, "p3"), "", "bound before its claim");
    // A volume on the selected node is bound to the claim (as a provisioner would).
    create(
        &registry,
        "persistentvolumes",
        "",
        json!({"metadata": {"name": "pv-late"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/x"}, "storageClassName": "wffc",
            "claimRef": {"namespace": "default", "name": "late"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [selected.clone()]}]}]}}}}),
    )
    .await;
    registry
        .update_with(
            info("persistentvolumeclaims"),
            "default",
            "late",
            false,
            |c| {
                c["spec"]["volumeName"] = json!("pv-late");
                Ok(true)
            },
        )
        .await
        .unwrap();
    assert_eq!(wait_bound(&registry, "p3").await, selected);
    // A second pod of the now bound claim lands on the volume's node.
    pod(&registry, "p4", uses("late")).await;
    assert_eq!(wait_bound(&registry, "p4").await, selected);
    stop.cancel();
}
