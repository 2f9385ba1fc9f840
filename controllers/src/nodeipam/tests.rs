//! The range allocator over the registry, under paused time.

use apiserver::Registry;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Config;
use crate::testutil::*;

async fn node(registry: &Registry, name: &str, spec: serde_json::Value) {
    create(
        registry,
        "nodes",
        "",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec}),
    )
    .await;
}

fn cidrs(registry: &Registry, name: &str) -> (String, Vec<String>) {
    let n = get(registry, "nodes", "", name).unwrap();
    let one = n["spec"]["podCIDR"].as_str().unwrap_or("").to_string();
    let all = n["spec"]["podCIDRs"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    (one, all)
}

fn start(registry: &Registry, cidr: &str, mask: u8) -> CancellationToken {
    let stop = CancellationToken::new();
    let config = Config::new(cidr.parse().unwrap(), mask).unwrap();
    tokio::spawn(super::run(cluster(registry), config, stop.clone()));
    stop
}

#[tokio::test(start_paused = true)]
async fn nodes_get_the_next_free_subnet_and_keep_their_own() {
    let registry = registry_with_namespace("default").await;
    // Allocated before this controller started: kept and never handed out again.
    node(
        &registry,
        "old",
        json!({"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}),
    )
    .await;
    let stop = start(&registry, "10.244.0.0/16", 24);
    node(&registry, "a", json!({})).await;
    eventually("a allocated", || !cidrs(&registry, "a").0.is_empty()).await;
    assert_eq!(
        cidrs(&registry, "a"),
        (
            "10.244.1.0/24".to_string(),
            vec!["10.244.1.0/24".to_string()]
        )
    );
    node(&registry, "b", json!({})).await;
    eventually("b allocated", || !cidrs(&registry, "b").0.is_empty()).await;
    assert_eq!(cidrs(&registry, "b").0, "10.244.2.0/24");
    assert_eq!(cidrs(&registry, "old").0, "10.244.0.0/24");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_range_says_so_and_a_deleted_node_frees_its_subnet() {
    let registry = registry_with_namespace("default").await;
    let stop = start(&registry, "10.0.0.0/30", 31);
    node(&registry, "a", json!({})).await;
    eventually("a allocated", || !cidrs(&registry, "a").0.is_empty()).await;
    node(&registry, "b", json!({})).await;
    eventually("b allocated", || !cidrs(&registry, "b").0.is_empty()).await;
    assert_eq!(cidrs(&registry, "a").0, "10.0.0.0/31");
    assert_eq!(cidrs(&registry, "b").0, "10.0.0.2/31");
    node(&registry, "c", json!({})).await;
    eventually("CIDRNotAvailable", || {
        list_events(&registry, "default").iter().any(|e| {
            e["reason"] == "CIDRNotAvailable"
                && e["type"] == "Warning"
                && e["message"] == "Node c status is now: CIDRNotAvailable"
                && e["involvedObject"]["name"] == "c"
        })
    })
    .await;
    assert!(cidrs(&registry, "c").0.is_empty());
    delete(&registry, "nodes", "", "a", None).await;
    // Retried with back-off, c gets a's subnet.
    eventually("c allocated", || cidrs(&registry, "c").0 == "10.0.0.0/31").await;
    stop.cancel();
}

#[test]
fn a_mask_that_does_not_fit_is_refused() {
    let err = Config::new("10.244.0.0/16".parse().unwrap(), 8).unwrap_err();
    assert!(
        err.contains("--node-cidr-mask-size 8 does not fit --cluster-cidr 10.244.0.0/16"),
        "{err}"
    );
    assert!(Config::new("10.0.0.0/8".parse().unwrap(), 25).is_err());
}
