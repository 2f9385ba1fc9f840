use apiserver::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::endpoints::tests::{running, set_status, web_pod, web_service};
use crate::meta;
use crate::testutil::{cluster, create, delete, eventually, info};

fn run_slices(r: Registry, s: CancellationToken) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(super::run(cluster(&r), s))
}

fn slices_of(registry: &Registry) -> Vec<Value> {
    crate::testutil::list(registry, "endpointslices", "default")
        .into_iter()
        .filter(|s| s["metadata"]["labels"][LABEL_SERVICE_NAME] == "web")
        .collect()
}

fn endpoint<'a>(slices: &'a [Value], pod: &str) -> Option<&'a Value> {
    slices
        .iter()
        .flat_map(|s| s["endpoints"].as_array().into_iter().flatten())
        .find(|e| e["targetRef"]["name"] == pod)
}

#[tokio::test(start_paused = true)]
async fn conditions_labels_and_owner() {
    let (registry, stop) = running(run_slices).await;
    create(
        &registry,
        "nodes",
        "",
        json!({"metadata": {"name": "node-a", "labels": {ZONE_LABEL: "z1"}}}),
    )
    .await;
    web_pod(&registry, "a", "10.244.0.2", true).await;
    web_pod(&registry, "b", "10.244.0.3", false).await;
    let svc = create(&registry, "services", "default", web_service(json!({}))).await;
    eventually("two endpoints", || {
        let s = slices_of(&registry);
        endpoint(&s, "a").is_some() && endpoint(&s, "b").is_some()
    })
    .await;
    let slices = slices_of(&registry);
    assert_eq!(slices.len(), 1, "{slices:?}");
    let s = &slices[0];
    assert!(meta::str(s, "name").starts_with("web-"));
    assert_eq!(s["addressType"], "IPv4");
    assert_eq!(s["metadata"]["labels"][LABEL_MANAGED_BY], CONTROLLER_NAME);
    assert_eq!(s["metadata"]["labels"]["team"], "a");
    assert_eq!(
        s["metadata"]["ownerReferences"][0]["uid"],
        svc["metadata"]["uid"]
    );
    assert_eq!(s["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert!(
        s["metadata"]["annotations"][crate::endpoints::LAST_CHANGE_TRIGGER_TIME].is_string(),
        "{s}"
    );
    let mut ports: Vec<i64> = s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    ports.sort();
    assert_eq!(ports, [8080, 9091]);
    let a = endpoint(&slices, "a").unwrap();
    assert_eq!(
        a["conditions"],
        json!({"ready": true, "serving": true, "terminating": false})
    );
    assert_eq!(a["addresses"], json!(["10.244.0.2"]));
    assert_eq!(a["nodeName"], "node-a");
    assert_eq!(a["zone"], "z1");
    assert_eq!(
        endpoint(&slices, "b").unwrap()["conditions"],
        json!({"ready": false, "serving": false, "terminating": false})
    );

    // A terminating pod stays, serving but not ready.
    delete(&registry, "pods", "default", "a", None).await;
    eventually("a terminating", || {
        endpoint(&slices_of(&registry), "a").is_some_and(|e| e["conditions"]["terminating"] == true)
    })
    .await;
    assert_eq!(
        endpoint(&slices_of(&registry), "a").unwrap()["conditions"],
        json!({"ready": false, "serving": true, "terminating": true})
    );
    set_status(&registry, "b", "10.244.0.3", true).await;
    eventually("b ready", || {
        endpoint(&slices_of(&registry), "b").is_some_and(|e| e["conditions"]["ready"] == true)
    })
    .await;
    assert_eq!(slices_of(&registry).len(), 1);
    // Settled: no further writes.
    let rv = slices_of(&registry)[0]["metadata"]["resourceVersion"].clone();
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    assert_eq!(
        slices_of(&registry)[0]["metadata"]["resourceVersion"],
        rv,
        "{:?}",
        slices_of(&registry)
    );
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn placeholder_and_split_by_port_mapping_and_size() {
    let (registry, stop) = running(run_slices).await;
    create(&registry, "services", "default", web_service(json!({}))).await;
    eventually("placeholder", || slices_of(&registry).len() == 1).await;
    let placeholder = slices_of(&registry)[0].clone();
    assert_eq!(placeholder["ports"], json!([]));
    assert!(
        placeholder["endpoints"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );

    // 150 pods with the `http` port and one without: three slices (100 + 50, and one for
    // the pod whose only resolved port is 9091).
    for i in 0..150 {
        web_pod(
            &registry,
            &format!("p{i:03}"),
            &format!("10.244.1.{}", i + 1),
            true,
        )
        .await;
    }
    create(
        &registry,
        "pods",
        "default",
        json!({"metadata": {"name": "bare", "labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": "nginx"}]}}),
    )
    .await;
    set_status(&registry, "bare", "10.244.2.1", true).await;
    eventually("all endpoints", || {
        let s = slices_of(&registry);
        s.iter()
            .map(|s| s["endpoints"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
            == 151
    })
    .await;
    let slices = slices_of(&registry);
    assert_eq!(
        slices.len(),
        3,
        "{:?}",
        slices.iter().map(|s| &s["ports"]).collect::<Vec<_>>()
    );
    let mut sizes: Vec<usize> = slices
        .iter()
        .map(|s| s["endpoints"].as_array().unwrap().len())
        .collect();
    sizes.sort();
    assert_eq!(sizes, [1, 50, 100]);
    // The placeholder was reused rather than deleted and recreated.
    assert!(
        slices
            .iter()
            .any(|s| s["metadata"]["name"] == placeholder["metadata"]["name"])
    );
    let bare = slices
        .iter()
        .find(|s| s["endpoints"].as_array().unwrap().len() == 1)
        .unwrap();
    assert_eq!(
        bare["ports"],
        json!([{"name": "metrics", "protocol": "TCP", "port": 9091}])
    );

    // Every pod goes: back to a single placeholder.
    for i in 0..150 {
        registry
            .update_with(info("pods"), "default", &format!("p{i:03}"), true, |p| {
                p["status"]["phase"] = json!("Failed");
                Ok(true)
            })
            .await
            .unwrap();
    }
    delete(&registry, "pods", "default", "bare", None).await;
    eventually("placeholder again", || {
        let s = slices_of(&registry);
        s.len() == 1 && s[0]["endpoints"].as_array().is_none_or(Vec::is_empty)
    })
    .await;
    stop.cancel();
}
