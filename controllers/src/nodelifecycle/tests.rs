//! The node lifecycle controller (with the taint eviction controller beside it, as in a
//! server) over the registry, under paused time: nodes whose kubelet stops renewing their
//! Lease, zones, and the taints and evictions that follow.

use std::time::Duration;

use apiserver::Registry;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Config;
use crate::testutil::*;

/// The Lease renewTime of heartbeat `n` (a clock of its own, so that renewals under paused
/// time still move forward).
fn renew_time(n: u64) -> String {
    let t = k8s_openapi::jiff::Timestamp::from_second(1_704_067_200 + i64::try_from(n).unwrap())
        .unwrap();
    api::time::rfc3339_micro(t)
}

async fn start(config: Config) -> (Registry, CancellationToken) {
    let registry = registry_with_namespace("default").await;
    create_namespace(&registry, "kube-node-lease").await;
    let stop = CancellationToken::new();
    tokio::spawn(super::run(cluster(&registry), config, stop.clone()));
    tokio::spawn(crate::tainteviction::run(cluster(&registry), stop.clone()));
    (registry, stop)
}

/// A node as the agent registers it: Ready, and its Lease.
async fn add_node(registry: &Registry, name: &str, labels: Value) {
    create(
        registry,
        "nodes",
        "",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}),
    )
    .await;
    post_status(registry, name, "True", 0).await;
    create(
        registry,
        "leases",
        "kube-node-lease",
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": name},
               "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                        "renewTime": renew_time(0)}}),
    )
    .await;
}

/// The kubelet posting its status: the four conditions with heartbeat `n`.
async fn post_status(registry: &Registry, name: &str, ready: &str, n: u64) {
    let hb = api::time::rfc3339(
        k8s_openapi::jiff::Timestamp::from_second(1_704_067_200 + i64::try_from(n).unwrap())
            .unwrap(),
    );
    registry
        .update_with(info("nodes"), "", name, true, |o| {
            let cond = |t: &str, s: &str, reason: &str| {
                json!({"type": t, "status": s, "reason": reason, "message": "kubelet says so",
                       "lastHeartbeatTime": hb, "lastTransitionTime": "2024-01-01T00:00:00Z"})
            };
            o["status"]["conditions"] = json!([
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID"),
                cond("Ready", ready, "KubeletReady"),
            ]);
            Ok(true)
        })
        .await
        .unwrap();
}

async fn renew(registry: &Registry, name: &str, n: u64) {
    registry
        .update_with(info("leases"), "kube-node-lease", name, false, |o| {
            o["spec"]["renewTime"] = json!(renew_time(n));
            Ok(true)
        })
        .await
        .unwrap();
}

/// A kubelet renewing `name`'s Lease every 10 s until `stop`.
fn kubelet(registry: &Registry, name: &str) -> CancellationToken {
    let stop = CancellationToken::new();
    let (registry, name, s) = (registry.clone(), name.to_string(), stop.clone());
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            tokio::select! {
                _ = s.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            }
            n += 10;
            renew(&registry, &name, n).await;
        }
    });
    stop
}

/// A running, ready pod bound to `node` (with the default 300 s tolerations of admission).
async fn bound_pod(registry: &Registry, name: &str, node: &str) {
    create(
        registry,
        "pods",
        "default",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}}),
    )
    .await;
    registry
        .update_with(info("pods"), "default", name, true, |p| {
            p["status"]["phase"] = json!("Running");
            p["status"]["conditions"] = json!([
                {"type": "Ready", "status": "True", "lastProbeTime": null,
                 "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
            Ok(true)
        })
        .await
        .unwrap();
}

fn node_condition(registry: &Registry, node: &str, type_: &str) -> Value {
    let n = get(registry, "nodes", "", node).unwrap();
    n["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or(Value::Null)
}

fn ready(registry: &Registry, node: &str) -> String {
    node_condition(registry, node, "Ready")["status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn taints(registry: &Registry, node: &str) -> Vec<String> {
    let n = get(registry, "nodes", "", node).unwrap();
    n["spec"]["taints"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    format!(
                        "{}:{}",
                        t["key"].as_str().unwrap(),
                        t["effect"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn has_taint(registry: &Registry, node: &str, taint: &str) -> bool {
    taints(registry, node).iter().any(|t| t == taint)
}

fn pod_condition(registry: &Registry, pod: &str, type_: &str) -> Value {
    let Some(p) = get(registry, "pods", "default", pod) else {
        return Value::Null;
    };
    p["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Deleted, or terminating (nothing runs it any more to finish the deletion).
fn evicted(registry: &Registry, pod: &str) -> bool {
    get(registry, "pods", "default", pod)
        .is_none_or(|p| !p["metadata"]["deletionTimestamp"].is_null())
}

fn events_with(registry: &Registry, ns: &str, reason: &str) -> Vec<Value> {
    list_events(registry, ns)
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect()
}

const UNREACHABLE: &str = "node.kubernetes.io/unreachable:NoExecute";
const NOT_READY: &str = "node.kubernetes.io/not-ready:NoExecute";

#[tokio::test(start_paused = true)]
async fn a_silent_node_turns_unknown_after_the_grace_period_then_is_tainted_and_drained() {
    let (registry, stop) = start(Config::default()).await;
    add_node(&registry, "n1", json!({})).await;
    add_node(&registry, "n2", json!({})).await;
    let _n2 = kubelet(&registry, "n2");
    bound_pod(&registry, "web-1", "n1").await;
    bound_pod(&registry, "web-2", "n2").await;
    // n1's kubelet dies now: its lease was last renewed before the controller started.
    let died = Instant::now();

    // Not before the grace period (50 s).
    tokio::time::sleep(Duration::from_secs(49)).await;
    assert_eq!(ready(&registry, "n1"), "True");
    assert_eq!(pod_condition(&registry, "web-1", "Ready")["status"], "True");
    eventually("n1 Unknown", || ready(&registry, "n1") == "Unknown").await;
    let unknown_after = died.elapsed();
    assert!(
        unknown_after > Duration::from_secs(50) && unknown_after <= Duration::from_secs(56),
        "{unknown_after:?}"
    );
    for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = node_condition(&registry, "n1", t);
        assert_eq!(c["status"], "Unknown", "{c}");
        assert_eq!(c["reason"], "NodeStatusUnknown", "{c}");
        assert_eq!(c["message"], "Kubelet stopped posting node status.", "{c}");
        // The kubelet's last heartbeat is kept.
        assert_eq!(c["lastHeartbeatTime"], "2024-01-01T00:00:00Z", "{c}");
    }
    // The pods of n1 are not ready at once (the same pass); the others are untouched.
    let c = pod_condition(&registry, "web-1", "Ready");
    assert_eq!(c["status"], "False", "{c}");
    assert_ne!(c["lastTransitionTime"], "2024-01-01T00:00:00Z", "{c}");
    assert_eq!(pod_condition(&registry, "web-2", "Ready")["status"], "True");
    assert_eq!(ready(&registry, "n2"), "True");
    let ev = events_with(&registry, "default", "NodeNotReady");
    assert!(
        ev.iter().any(|e| e["involvedObject"]["kind"] == "Node"
            && e["message"] == "Node n1 status is now: NodeNotReady"
            && e["source"]["component"] == "node-controller"),
        "{ev:?}"
    );
    assert!(
        ev.iter().any(|e| e["involvedObject"]["kind"] == "Pod"
            && e["involvedObject"]["name"] == "web-1"
            && e["type"] == "Warning"
            && e["message"] == "Node is not ready"),
        "{ev:?}"
    );

    // The taint follows on the next pass, through the zone queue.
    eventually("n1 tainted", || has_taint(&registry, "n1", UNREACHABLE)).await;
    let tainted = Instant::now();
    assert!(!has_taint(&registry, "n1", NOT_READY));
    assert!(has_taint(
        &registry,
        "n1",
        "node.kubernetes.io/unreachable:NoSchedule"
    ));
    assert!(
        taints(&registry, "n2").is_empty(),
        "{:?}",
        taints(&registry, "n2")
    );
    let n1 = get(&registry, "nodes", "", "n1").unwrap();
    assert!(n1["spec"]["taints"][0]["timeAdded"].is_string(), "{n1}");

    // Evicted after the pod's 300 s toleration, not before.
    tokio::time::sleep(Duration::from_secs(299)).await;
    assert!(!evicted(&registry, "web-1"));
    eventually("web-1 evicted", || evicted(&registry, "web-1")).await;
    let after = tainted.elapsed();
    assert!(
        after >= Duration::from_secs(300) && after < Duration::from_secs(302),
        "{after:?}"
    );
    assert!(!evicted(&registry, "web-2"));
    if get(&registry, "pods", "default", "web-1").is_some() {
        let c = pod_condition(&registry, "web-1", "DisruptionTarget");
        assert_eq!(c["status"], "True", "{c}");
        assert_eq!(c["reason"], "DeletionByTaintManager", "{c}");
        assert_eq!(
            c["message"], "Taint manager: deleting due to NoExecute taint",
            "{c}"
        );
    }
    let ev = events_with(&registry, "default", "TaintManagerEviction");
    assert!(
        ev.iter()
            .any(|e| e["message"] == "Marking for deletion Pod default/web-1"
                && e["source"]["component"] == "taint-eviction-controller"),
        "{ev:?}"
    );

    // The kubelet comes back: Ready again, taints gone.
    post_status(&registry, "n1", "True", 1000).await;
    renew(&registry, "n1", 1000).await;
    eventually("n1 untainted", || taints(&registry, "n1").is_empty()).await;
    assert_eq!(ready(&registry, "n1"), "True");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_renewed_lease_alone_keeps_a_node_healthy() {
    let (registry, stop) = start(Config::default()).await;
    add_node(&registry, "n1", json!({})).await;
    add_node(&registry, "n2", json!({})).await;
    let _k1 = kubelet(&registry, "n1");
    let _k2 = kubelet(&registry, "n2");
    // The status heartbeat never moves (posted only on change), the lease does.
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(ready(&registry, "n1"), "True");
    assert_eq!(ready(&registry, "n2"), "True");
    assert!(taints(&registry, "n1").is_empty());
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_node_that_never_posted_status_gets_the_startup_grace() {
    let (registry, stop) = start(Config::default()).await;
    add_node(&registry, "n2", json!({})).await;
    let _k2 = kubelet(&registry, "n2");
    create(
        &registry,
        "nodes",
        "",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "fresh"}}),
    )
    .await;
    let created = Instant::now();
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(node_condition(&registry, "fresh", "Ready").is_null());
    eventually("fresh Unknown", || ready(&registry, "fresh") == "Unknown").await;
    let after = created.elapsed();
    assert!(
        after > Duration::from_secs(60) && after <= Duration::from_secs(66),
        "{after:?}"
    );
    for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = node_condition(&registry, "fresh", t);
        assert_eq!(c["status"], "Unknown", "{c}");
        assert_eq!(c["reason"], "NodeStatusNeverUpdated", "{c}");
        assert_eq!(c["message"], "Kubelet never posted node status.", "{c}");
    }
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn not_ready_gets_the_not_ready_taint_and_swaps_to_unreachable() {
    let (registry, stop) = start(Config::default()).await;
    add_node(&registry, "n1", json!({})).await;
    add_node(&registry, "n2", json!({})).await;
    let _k2 = kubelet(&registry, "n2");
    let k1 = kubelet(&registry, "n1");
    // The kubelet reports NotReady (its runtime is down) but keeps renewing.
    post_status(&registry, "n1", "False", 5).await;
    eventually("not-ready taint", || has_taint(&registry, "n1", NOT_READY)).await;
    assert!(has_taint(
        &registry,
        "n1",
        "node.kubernetes.io/not-ready:NoSchedule"
    ));
    // Then it stops: Unknown, and the taint is swapped at once.
    k1.cancel();
    eventually("unreachable taint", || {
        has_taint(&registry, "n1", UNREACHABLE) && !has_taint(&registry, "n1", NOT_READY)
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_zone_is_tainted_one_node_per_ten_seconds() {
    let (registry, stop) = start(Config::default()).await;
    let zone = json!({"topology.kubernetes.io/zone": "a"});
    let mut kubelets = Vec::new();
    for n in ["n1", "n2", "n3", "n4", "n5", "n6"] {
        add_node(&registry, n, zone.clone()).await;
        kubelets.push((n, kubelet(&registry, n)));
    }
    // Two of six die together: the zone stays Normal (0.1 nodes/s).
    for (n, k) in &kubelets {
        if *n == "n1" || *n == "n2" {
            k.cancel();
        }
    }
    let both =
        || has_taint(&registry, "n1", UNREACHABLE) && has_taint(&registry, "n2", UNREACHABLE);
    eventually("one tainted", || {
        has_taint(&registry, "n1", UNREACHABLE) || has_taint(&registry, "n2", UNREACHABLE)
    })
    .await;
    let first = Instant::now();
    assert!(!both());
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(!both(), "the second taint waits for the rate limit");
    eventually("both tainted", both).await;
    let gap = first.elapsed();
    assert!(
        gap >= Duration::from_secs(10) && gap < Duration::from_secs(11),
        "{gap:?}"
    );
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn nothing_is_tainted_when_every_zone_is_fully_disrupted() {
    let (registry, stop) = start(Config::default()).await;
    add_node(&registry, "n1", json!({})).await;
    add_node(&registry, "n2", json!({})).await;
    bound_pod(&registry, "web-1", "n1").await;
    // Both kubelets are gone (or the control plane is cut off from them).
    eventually("both Unknown", || {
        ready(&registry, "n1") == "Unknown" && ready(&registry, "n2") == "Unknown"
    })
    .await;
    // Pods are marked not ready, but no node is tainted and nothing is evicted.
    assert_eq!(
        pod_condition(&registry, "web-1", "Ready")["status"],
        "False"
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(
        !has_taint(&registry, "n1", UNREACHABLE),
        "{:?}",
        taints(&registry, "n1")
    );
    assert!(
        !has_taint(&registry, "n2", UNREACHABLE),
        "{:?}",
        taints(&registry, "n2")
    );
    assert!(!evicted(&registry, "web-1"));
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_partially_disrupted_small_zone_stops_tainting() {
    let (registry, stop) = start(Config::default()).await;
    let mut kubelets = Vec::new();
    for n in ["n1", "n2", "n3", "n4", "n5"] {
        add_node(&registry, n, json!({})).await;
        kubelets.push(kubelet(&registry, n));
    }
    // Four of five (≥ 0.55, more than 2) stop: PartialDisruption; with ≤ 50 nodes the
    // secondary rate is 0.
    for k in &kubelets[..4] {
        k.cancel();
    }
    eventually("four Unknown", || {
        ["n1", "n2", "n3", "n4"]
            .iter()
            .all(|n| ready(&registry, n) == "Unknown")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(300)).await;
    for n in ["n1", "n2", "n3", "n4"] {
        assert!(
            !has_taint(&registry, n, UNREACHABLE),
            "{n}: {:?}",
            taints(&registry, n)
        );
    }
    stop.cancel();
}

#[test]
fn zone_state_and_rates_as_upstream() {
    let c = super::Controller::new(
        std::sync::Arc::new(Registry::new(store::Store::memory())),
        Config::default(),
    );
    let cond = |s: &str| {
        Some(k8s_openapi::api::core::v1::NodeCondition {
            type_: "Ready".into(),
            status: s.into(),
            ..Default::default()
        })
    };
    use super::ZoneState::*;
    assert_eq!(
        c.compute_zone_state(&[cond("True"), cond("Unknown")]).1,
        Normal
    );
    assert_eq!(
        c.compute_zone_state(&[cond("False"), None]).1,
        FullDisruption
    );
    assert_eq!(
        c.compute_zone_state(&[
            cond("False"),
            cond("Unknown"),
            cond("Unknown"),
            cond("True")
        ])
        .1,
        PartialDisruption
    );
    // Two not-ready nodes never make a partial disruption.
    assert_eq!(
        c.compute_zone_state(&[cond("False"), cond("Unknown"), cond("True")])
            .1,
        Normal
    );
    assert_eq!(c.qps_for(PartialDisruption, 51), Some(0.01));
    assert_eq!(c.qps_for(PartialDisruption, 50), Some(0.0));
    assert_eq!(c.qps_for(FullDisruption, 3), Some(0.1));
    let mut q = super::RateLimitedTimedQueue::new(0.1);
    q.swap_limiter(0.01);
    assert!((q.qps() - 0.01).abs() < f32::EPSILON);

    let node = |labels: Value| -> k8s_openapi::api::core::v1::Node {
        serde_json::from_value(json!({"metadata": {"name": "n", "labels": labels}})).unwrap()
    };
    assert_eq!(super::zone_key(&node(json!({}))), "");
    assert_eq!(
        super::zone_key(&node(json!({"topology.kubernetes.io/region": "r",
                                     "failure-domain.beta.kubernetes.io/zone": "z"}))),
        "r:\u{0}:z"
    );
}

/// A node that came up with `spec.unschedulable` set (until uncordoned).
async fn cordon(registry: &Registry, name: &str, unschedulable: bool) {
    registry
        .update_with(info("nodes"), "", name, false, |o| {
            o["spec"]["unschedulable"] = json!(unschedulable);
            Ok(true)
        })
        .await
        .unwrap();
}

/// The kubelet's part for the pods bound to `node`: running, ready, with an address.
async fn run_pods_on(registry: &Registry, node: &str, first_ip: u8) -> Vec<String> {
    let mut names = Vec::new();
    let mut ip = first_ip;
    for p in list(registry, "pods", "default") {
        if p["spec"]["nodeName"] != node || !p["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let name = p["metadata"]["name"].as_str().unwrap().to_string();
        let addr = format!("10.244.0.{ip}");
        ip += 1;
        registry
            .update_with(info("pods"), "default", &name, true, |p| {
                p["status"]["phase"] = json!("Running");
                p["status"]["podIP"] = json!(addr);
                p["status"]["podIPs"] = json!([{"ip": addr}]);
                p["status"]["conditions"] = json!([
                    {"type": "Ready", "status": "True", "lastProbeTime": null,
                     "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
                Ok(true)
            })
            .await
            .unwrap();
        names.push(name);
    }
    names
}

fn endpoint_ips(registry: &Registry, field: &str) -> Vec<String> {
    get(registry, "endpoints", "default", "web").map_or_else(Vec::new, |e| {
        e["subsets"][0][field]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x["ip"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The whole control plane: the dead node's pod leaves the Service's ready addresses when the
/// node turns Unknown, is evicted after 300 s and replaced on the surviving node.
#[tokio::test(start_paused = true)]
async fn with_every_controller_a_dead_node_s_pod_leaves_the_endpoints_and_is_replaced() {
    let registry = registry_with_namespace("default").await;
    create_namespace(&registry, "kube-node-lease").await;
    add_node(&registry, "n1", json!({})).await;
    add_node(&registry, "n2", json!({})).await;
    for n in ["n1", "n2"] {
        registry
            .update_with(info("nodes"), "", n, true, |o| {
                let r = json!({"cpu": "2", "memory": "4Gi", "pods": "110"});
                o["status"]["capacity"] = r.clone();
                o["status"]["allocatable"] = r;
                Ok(true)
            })
            .await
            .unwrap();
    }
    cordon(&registry, "n2", true).await;
    let _k2 = kubelet(&registry, "n2");
    let stop = start_all(&registry);
    create(
        &registry,
        "services",
        "default",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    )
    .await;
    create(
        &registry,
        "replicasets",
        "default",
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    )
    .await;
    eventually("pod bound to n1", || {
        list(&registry, "pods", "default")
            .iter()
            .any(|p| p["spec"]["nodeName"] == "n1")
    })
    .await;
    let first = run_pods_on(&registry, "n1", 2).await;
    eventually("ready endpoint", || {
        endpoint_ips(&registry, "addresses") == ["10.244.0.2"]
    })
    .await;
    cordon(&registry, "n2", false).await;

    // n1's kubelet is gone (it never renewed its lease since the start).
    eventually("n1 Unknown", || ready(&registry, "n1") == "Unknown").await;
    eventually("out of the ready addresses", || {
        endpoint_ips(&registry, "addresses").is_empty()
            && endpoint_ips(&registry, "notReadyAddresses") == ["10.244.0.2"]
    })
    .await;
    // Still there until its toleration runs out; then replaced on n2.
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert!(!evicted(&registry, &first[0]));
    eventually("replacement on n2", || {
        list(&registry, "pods", "default")
            .iter()
            .any(|p| p["spec"]["nodeName"] == "n2" && p["metadata"]["deletionTimestamp"].is_null())
    })
    .await;
    assert!(evicted(&registry, &first[0]));
    run_pods_on(&registry, "n2", 9).await;
    eventually("the replacement serves", || {
        endpoint_ips(&registry, "addresses") == ["10.244.0.9"]
    })
    .await;
    stop.cancel();
}

/// Every controller with upstream's defaults (as a server runs them).
fn start_all(registry: &Registry) -> CancellationToken {
    crate::testutil::start(registry)
}

#[tokio::test(start_paused = true)]
async fn a_pod_bound_to_an_unknown_node_is_marked_not_ready_at_once() {
    let (registry, stop) = start(Config::default()).await;
    add_node(&registry, "n1", json!({})).await;
    add_node(&registry, "n2", json!({})).await;
    let _k2 = kubelet(&registry, "n2");
    eventually("n1 Unknown", || ready(&registry, "n1") == "Unknown").await;
    // A pod whose status says Ready is bound to n1 now (upstream's processPod).
    create(
        &registry,
        "pods",
        "default",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late"},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .await;
    registry
        .update_with(info("pods"), "default", "late", true, |p| {
            p["status"]["conditions"] = json!([
                {"type": "Ready", "status": "True", "lastProbeTime": null,
                 "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
            Ok(true)
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pod_condition(&registry, "late", "Ready")["status"], "True");
    let binding = crate::cluster::Binding {
        uid: None,
        resource_version: None,
        annotations: Default::default(),
        node: "n1".into(),
    };
    crate::cluster::Cluster::bind(&registry, "default", "late", &binding)
        .await
        .unwrap();
    eventually("late not ready", || {
        pod_condition(&registry, "late", "Ready")["status"] == "False"
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn conditions_and_cordoning_become_no_schedule_taints() {
    let (registry, stop) = start(Config::default()).await;
    add_node(&registry, "n1", json!({})).await;
    let _k1 = kubelet(&registry, "n1");
    cordon(&registry, "n1", true).await;
    eventually("unschedulable taint", || {
        has_taint(
            &registry,
            "n1",
            "node.kubernetes.io/unschedulable:NoSchedule",
        )
    })
    .await;
    registry
        .update_with(info("nodes"), "", "n1", true, |o| {
            for c in o["status"]["conditions"].as_array_mut().unwrap() {
                if c["type"] == "DiskPressure" {
                    c["status"] = json!("True");
                }
            }
            Ok(true)
        })
        .await
        .unwrap();
    eventually("disk-pressure taint", || {
        has_taint(
            &registry,
            "n1",
            "node.kubernetes.io/disk-pressure:NoSchedule",
        )
    })
    .await;
    cordon(&registry, "n1", false).await;
    post_status(&registry, "n1", "True", 7).await;
    eventually("taints gone", || taints(&registry, "n1").is_empty()).await;
    stop.cancel();
}
