use apiserver::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::testutil::*;

pub(crate) async fn running(
    run: fn(Registry, CancellationToken) -> futures::future::BoxFuture<'static, ()>,
) -> (Registry, CancellationToken) {
    let registry = registry_with_namespace("default").await;
    let stop = CancellationToken::new();
    tokio::spawn(run(registry.clone(), stop.clone()));
    (registry, stop)
}

fn run_endpoints(r: Registry, s: CancellationToken) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(super::run(cluster(&r), s))
}

/// A pod `name` labelled `app: web` with a container port `http` (8080/TCP) on `node-a`.
pub(crate) async fn web_pod(registry: &Registry, name: &str, ip: &str, ready: bool) {
    create(
        registry,
        "pods",
        "default",
        json!({"metadata": {"name": name, "labels": {"app": "web"}},
               "spec": {"nodeName": "node-a", "containers": [{"name": "web", "image": "nginx",
                        "ports": [{"name": "http", "containerPort": 8080}]}]}}),
    )
    .await;
    set_status(registry, name, ip, ready).await;
}

/// Sets the pod's IP, phase Running and its Ready condition.
pub(crate) async fn set_status(registry: &Registry, name: &str, ip: &str, ready: bool) {
    registry
        .update_with(info("pods"), "default", name, true, |p| {
            p["status"]["phase"] = json!("Running");
            p["status"]["podIP"] = json!(ip);
            p["status"]["podIPs"] = json!([{"ip": ip}]);
            p["status"]["conditions"] = json!([{"type": "Ready",
                "status": if ready { "True" } else { "False" },
                "lastTransitionTime": "2024-01-01T00:00:00Z", "lastProbeTime": null}]);
            Ok(true)
        })
        .await
        .unwrap();
}

pub(crate) fn web_service(extra: Value) -> Value {
    let mut svc = json!({"metadata": {"name": "web", "labels": {"team": "a"}},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                           {"name": "metrics", "port": 9090, "targetPort": 9091}]}});
    if let (Some(s), Some(e)) = (svc["spec"].as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    svc
}

fn endpoints(registry: &Registry) -> Option<std::sync::Arc<Value>> {
    get(registry, "endpoints", "default", "web")
}

fn ips(subset: &Value, field: &str) -> Vec<String> {
    subset[field]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["ip"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn ready_and_not_ready_addresses_with_named_ports() {
    let (registry, stop) = running(run_endpoints).await;
    web_pod(&registry, "a", "10.244.0.2", true).await;
    web_pod(&registry, "b", "10.244.0.3", false).await;
    // Finished and IP-less pods are left out.
    web_pod(&registry, "done", "10.244.0.9", true).await;
    registry
        .update_with(info("pods"), "default", "done", true, |p| {
            p["status"]["phase"] = json!("Succeeded");
            Ok(true)
        })
        .await
        .unwrap();
    create(
        &registry,
        "pods",
        "default",
        json!({"metadata": {"name": "noip", "labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": "nginx"}]}}),
    )
    .await;
    create(&registry, "services", "default", web_service(json!({}))).await;
    eventually("endpoints", || {
        endpoints(&registry).is_some_and(|e| !e["subsets"].is_null())
    })
    .await;
    let ep = endpoints(&registry).unwrap();
    let subsets = ep["subsets"].as_array().unwrap();
    assert_eq!(subsets.len(), 1, "{ep}");
    let s = &subsets[0];
    assert_eq!(ips(s, "addresses"), ["10.244.0.2"]);
    assert_eq!(ips(s, "notReadyAddresses"), ["10.244.0.3"]);
    let a = &s["addresses"][0];
    assert_eq!(a["nodeName"], "node-a");
    assert_eq!(a["targetRef"]["kind"], "Pod");
    assert_eq!(a["targetRef"]["name"], "a");
    let mut ports: Vec<(String, i64)> = s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["port"].as_i64().unwrap(),
            )
        })
        .collect();
    ports.sort();
    assert_eq!(ports, [("http".into(), 8080), ("metrics".into(), 9091)]);
    assert_eq!(ep["metadata"]["labels"], json!({"team": "a"}));
    // The first write is triggered by the pods' readiness and the service's creation: the
    // earliest of those (the pods' Ready transitions in 2024).
    assert_eq!(
        ep["metadata"]["annotations"][super::LAST_CHANGE_TRIGGER_TIME],
        "2024-01-01T00:00:00Z"
    );
    // Settled: no more writes.
    let rv = ep["metadata"]["resourceVersion"].clone();
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    assert_eq!(
        endpoints(&registry).unwrap()["metadata"]["resourceVersion"],
        rv
    );

    // Readiness flips move the address; a deleted pod leaves.
    set_status(&registry, "b", "10.244.0.3", true).await;
    eventually("b ready", || {
        endpoints(&registry).is_some_and(|e| ips(&e["subsets"][0], "addresses").len() == 2)
    })
    .await;
    delete(&registry, "pods", "default", "a", None).await;
    eventually("a gone (terminating pods are excluded)", || {
        endpoints(&registry).is_some_and(|e| ips(&e["subsets"][0], "addresses") == ["10.244.0.3"])
    })
    .await;
    // The service goes: so do its endpoints.
    delete(&registry, "services", "default", "web", None).await;
    eventually("endpoints deleted", || endpoints(&registry).is_none()).await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn publish_not_ready_and_unresolvable_ports() {
    let (registry, stop) = running(run_endpoints).await;
    web_pod(&registry, "a", "10.244.0.2", false).await;
    // No `http` port on this pod: only the numeric port is served by it.
    create(
        &registry,
        "pods",
        "default",
        json!({"metadata": {"name": "bare", "labels": {"app": "web"}},
               "spec": {"nodeName": "node-a", "containers": [{"name": "web", "image": "nginx"}]}}),
    )
    .await;
    set_status(&registry, "bare", "10.244.0.5", true).await;
    create(
        &registry,
        "services",
        "default",
        web_service(json!({"publishNotReadyAddresses": true, "clusterIP": "None"})),
    )
    .await;
    eventually("endpoints", || {
        endpoints(&registry).is_some_and(|e| e["subsets"].as_array().is_some_and(|s| s.len() == 2))
    })
    .await;
    let ep = endpoints(&registry).unwrap();
    assert_eq!(ep["metadata"]["labels"][super::HEADLESS], "");
    let subsets = ep["subsets"].as_array().unwrap();
    let both = subsets
        .iter()
        .find(|s| s["ports"].as_array().unwrap().len() == 1 && s["ports"][0]["port"] == 9091)
        .unwrap_or_else(|| panic!("{ep}"));
    assert_eq!(ips(both, "addresses"), ["10.244.0.2", "10.244.0.5"]);
    let http = subsets
        .iter()
        .find(|s| s["ports"][0]["port"] == 8080)
        .unwrap();
    // Not ready, but published.
    assert_eq!(ips(http, "addresses"), ["10.244.0.2"]);
    assert!(http["notReadyAddresses"].is_null());
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn services_without_selector_are_left_alone() {
    let (registry, stop) = running(run_endpoints).await;
    web_pod(&registry, "a", "10.244.0.2", true).await;
    let mut svc = web_service(json!({}));
    svc["spec"].as_object_mut().unwrap().remove("selector");
    create(&registry, "services", "default", svc).await;
    create(
        &registry,
        "endpoints",
        "default",
        json!({"metadata": {"name": "web"},
               "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let ep = endpoints(&registry).unwrap();
    assert_eq!(ips(&ep["subsets"][0], "addresses"), ["192.0.2.1"]);
    stop.cancel();
}

#[test]
fn repack_groups_ports_and_truncates() {
    let addr =
        |ip: &str| serde_json::from_value(json!({"ip": ip, "targetRef": {"uid": ip}})).unwrap();
    let port =
        |p: i64| Some(serde_json::from_value(json!({"port": p, "protocol": "TCP"})).unwrap());
    let json = |subsets: Vec<k8s_openapi::api::core::v1::EndpointSubset>| -> Vec<Value> {
        subsets
            .iter()
            .map(|s| serde_json::to_value(s).unwrap())
            .collect()
    };
    let raw = vec![
        (addr("10.0.0.2"), port(80), true),
        (addr("10.0.0.2"), port(81), true),
        (addr("10.0.0.1"), port(80), true),
        (addr("10.0.0.1"), port(81), true),
        (addr("10.0.0.3"), port(80), false),
    ];
    let subsets = json(super::repack_subsets(raw));
    assert_eq!(subsets.len(), 2, "{subsets:?}");
    let with3 = subsets
        .iter()
        .find(|s| !s["notReadyAddresses"].is_null())
        .unwrap();
    assert_eq!(ips(with3, "addresses"), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(with3["ports"], json!([{"port": 80, "protocol": "TCP"}]));

    let many: Vec<_> = (0..1200)
        .map(|i| {
            (
                addr(&format!("10.1.{}.{}", i / 256, i % 256)),
                port(80),
                i < 900,
            )
        })
        .collect();
    let mut subsets = super::repack_subsets(many);
    assert!(super::truncate(&mut subsets, 900, 300));
    let subsets = json(subsets);
    let total: usize = subsets
        .iter()
        .map(|s| ips(s, "addresses").len() + ips(s, "notReadyAddresses").len())
        .sum();
    assert_eq!(total, super::MAX_CAPACITY);
    assert_eq!(ips(&subsets[0], "addresses").len(), 900);
}
