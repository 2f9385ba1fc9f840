//! The storage controllers over an in-memory registry: matching rules, phases and
//! annotations, reclaim, the WaitForFirstConsumer + local-path flow, protection and generic
//! ephemeral volumes.

use apiserver::Registry;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::testutil::*;

fn claim_obj(name: &str, spec: Value) -> Value {
    let mut s = json!({"accessModes": ["ReadWriteOnce"],
                       "resources": {"requests": {"storage": "1Gi"}}});
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
           "spec": s})
}

fn claim(name: &str, spec: Value) -> PersistentVolumeClaim {
    serde_json::from_value(claim_obj(name, spec)).unwrap()
}

fn volume_obj(name: &str, size: &str, extra: Value) -> Value {
    let mut s = json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": size},
                       "hostPath": {"path": format!("/data/{name}")},
                       "persistentVolumeReclaimPolicy": "Retain"});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    json!({"metadata": {"name": name}, "spec": s, "status": {"phase": "Available"}})
}

fn volume(name: &str, size: &str, extra: Value) -> PersistentVolume {
    serde_json::from_value(volume_obj(name, size, extra)).unwrap()
}

fn pinned(node: &str) -> Value {
    json!({"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}})
}

fn node(name: &str) -> Node {
    serde_json::from_value(json!({"metadata": {"name": name,
        "labels": {"kubernetes.io/hostname": name}}}))
    .unwrap()
}

fn matched<'a>(c: &PersistentVolumeClaim, vs: &'a [PersistentVolume]) -> Option<&'a str> {
    find_match(c, vs, None, false).and_then(|v| v.metadata.name.as_deref())
}

#[test]
fn smallest_fitting_volume_of_the_class_and_modes() {
    let vs = vec![
        volume("big", "10Gi", json!({})),
        volume("small", "500Mi", json!({})),
        volume("fit", "2Gi", json!({})),
        volume("rox", "1Gi", json!({"accessModes": ["ReadOnlyMany"]})),
        volume("fast", "1Gi", json!({"storageClassName": "fast"})),
    ];
    assert_eq!(matched(&claim("c", json!({})), &vs), Some("fit"));
    assert_eq!(
        matched(&claim("c", json!({"storageClassName": "fast"})), &vs),
        Some("fast")
    );
    assert_eq!(
        matched(&claim("c", json!({"accessModes": ["ReadOnlyMany"]})), &vs),
        Some("rox")
    );
    assert_eq!(
        matched(
            &claim("c", json!({"resources": {"requests": {"storage": "20Gi"}}})),
            &vs
        ),
        None
    );
    // Block claims only match Block volumes.
    assert_eq!(
        matched(&claim("c", json!({"volumeMode": "Block"})), &vs),
        None
    );
}

#[test]
fn selector_prebinding_and_bound_volumes() {
    let labelled: PersistentVolume = {
        let mut v = volume_obj("labelled", "5Gi", json!({}));
        v["metadata"]["labels"] = json!({"tier": "db"});
        serde_json::from_value(v).unwrap()
    };
    let vs = vec![volume("plain", "1Gi", json!({})), labelled];
    let sel = json!({"selector": {"matchLabels": {"tier": "db"}}});
    assert_eq!(matched(&claim("c", sel), &vs), Some("labelled"));
    // A volume bound to another claim is never a match; one pre-bound to this claim wins
    // over a smaller free one.
    let vs = vec![
        volume(
            "taken",
            "1Gi",
            json!({"claimRef": {"namespace": "default", "name": "other", "uid": "u"}}),
        ),
        volume(
            "mine",
            "5Gi",
            json!({"claimRef": {"namespace": "default", "name": "c"}}),
        ),
        volume("free", "2Gi", json!({})),
    ];
    assert_eq!(matched(&claim("c", json!({})), &vs), Some("mine"));
    assert_eq!(matched(&claim("d", json!({})), &vs), Some("free"));
    // Waiting for a first consumer: only a pre-bound volume.
    let d = claim("d", json!({}));
    assert!(find_match(&d, &vs, None, true).is_none());
    // Released volumes are not reused.
    let mut released = volume_obj("released", "1Gi", json!({}));
    released["status"]["phase"] = json!("Released");
    let vs: Vec<PersistentVolume> = vec![serde_json::from_value(released).unwrap()];
    assert_eq!(matched(&d, &vs), None);
}

#[test]
fn node_affinity_with_a_selected_node() {
    let vs = vec![
        volume("on-a", "1Gi", pinned("a")),
        volume("on-b", "1Gi", pinned("b")),
    ];
    let c = claim("c", json!({}));
    let on =
        |n: &str| find_match(&c, &vs, Some(&node(n)), false).and_then(|v| v.metadata.name.clone());
    assert_eq!(on("b").as_deref(), Some("on-b"));
    assert_eq!(on("c"), None);
    let labels =
        std::collections::BTreeMap::from([("kubernetes.io/hostname".to_string(), "a".to_string())]);
    assert!(node_affinity_allows(&vs[0], "a", &labels));
    assert!(!node_affinity_allows(&vs[1], "a", &labels));
}

async fn running() -> (Registry, CancellationToken) {
    let registry = registry_with_namespace("default").await;
    let stop = CancellationToken::new();
    tokio::spawn(super::run(cluster(&registry), stop.clone()));
    (registry, stop)
}

fn phase(registry: &Registry, plural: &str, ns: &str, name: &str) -> String {
    get(registry, plural, ns, name)
        .and_then(|o| o["status"]["phase"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn has_event(registry: &Registry, reason: &str, message: &str) -> bool {
    list_events(registry, "default")
        .iter()
        .chain(list_events(registry, "").iter())
        .any(|e| {
            e["reason"] == reason && e["message"].as_str().is_some_and(|m| m.contains(message))
        })
}

async fn new_claim(registry: &Registry, name: &str, spec: Value) {
    let mut c = claim_obj(name, spec);
    c["metadata"].as_object_mut().unwrap().remove("uid");
    create(registry, "persistentvolumeclaims", "default", c).await;
}

#[tokio::test(start_paused = true)]
async fn static_binding_phases_and_retain() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "persistentvolumes",
        "",
        volume_obj("v1", "2Gi", json!({"storageClassName": ""})),
    )
    .await;
    new_claim(&registry, "data", json!({"storageClassName": ""})).await;
    eventually("the claim bound", || {
        phase(&registry, "persistentvolumeclaims", "default", "data") == "Bound"
            && phase(&registry, "persistentvolumes", "", "v1") == "Bound"
    })
    .await;
    let c = get(&registry, "persistentvolumeclaims", "default", "data").unwrap();
    assert_eq!(c["spec"]["volumeName"], "v1");
    assert_eq!(c["metadata"]["annotations"][ANN_BIND_COMPLETED], "yes");
    assert_eq!(c["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER], "yes");
    assert_eq!(c["status"]["capacity"]["storage"], "2Gi");
    assert_eq!(c["status"]["accessModes"], json!(["ReadWriteOnce"]));
    let v = get(&registry, "persistentvolumes", "", "v1").unwrap();
    assert_eq!(v["spec"]["claimRef"]["name"], "data");
    assert_eq!(v["spec"]["claimRef"]["uid"], c["metadata"]["uid"]);
    assert_eq!(v["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER], "yes");
    // Deleting the claim releases the volume; Retain keeps it.
    delete(&registry, "persistentvolumeclaims", "default", "data", None).await;
    eventually("the volume released", || {
        phase(&registry, "persistentvolumes", "", "v1") == "Released"
    })
    .await;
    assert!(get(&registry, "persistentvolumeclaims", "default", "data").is_none());
    // No class, no volume: upstream's FailedBinding.
    new_claim(&registry, "orphan", json!({"storageClassName": ""})).await;
    eventually("FailedBinding", || {
        has_event(
            &registry,
            "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set",
        )
    })
    .await;
    assert_eq!(
        phase(&registry, "persistentvolumeclaims", "default", "orphan"),
        "Pending"
    );
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn delete_policy_without_a_deleter_fails_the_volume() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "persistentvolumes",
        "",
        volume_obj(
            "v",
            "1Gi",
            json!({"storageClassName": "", "persistentVolumeReclaimPolicy": "Delete"}),
        ),
    )
    .await;
    new_claim(&registry, "data", json!({"storageClassName": ""})).await;
    eventually("bound", || {
        phase(&registry, "persistentvolumes", "", "v") == "Bound"
    })
    .await;
    delete(&registry, "persistentvolumeclaims", "default", "data", None).await;
    eventually("failed", || {
        phase(&registry, "persistentvolumes", "", "v") == "Failed"
    })
    .await;
    assert!(has_event(
        &registry,
        "VolumeFailedDelete",
        "no deletable volume plugin matched"
    ));
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn wait_for_first_consumer_then_local_path_provisioning() {
    let (registry, stop) = running().await;
    create(
        &registry,
        "storageclasses",
        "",
        json!({"metadata": {"name": "local-path"}, "provisioner": provisioner::PROVISIONER,
               "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}),
    )
    .await;
    create(
        &registry,
        "nodes",
        "",
        json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"},
               "annotations": {provisioner::STORAGE_DIR_ANNOTATION: "/var/lib/paddock/storage"}}}),
    )
    .await;
    new_claim(&registry, "data", json!({"storageClassName": "local-path"})).await;
    eventually("WaitForFirstConsumer", || {
        has_event(
            &registry,
            "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding",
        )
    })
    .await;
    assert!(list(&registry, "persistentvolumes", "").is_empty());
    // The scheduler picks n1 for a pod using the claim.
    registry
        .update_with(
            info("persistentvolumeclaims"),
            "default",
            "data",
            false,
            |c| {
                c["metadata"]["annotations"] = json!({ANN_SELECTED_NODE: "n1"});
                Ok(true)
            },
        )
        .await
        .unwrap();
    eventually("bound to a provisioned volume", || {
        phase(&registry, "persistentvolumeclaims", "default", "data") == "Bound"
    })
    .await;
    let c = get(&registry, "persistentvolumeclaims", "default", "data").unwrap();
    let uid = c["metadata"]["uid"].as_str().unwrap();
    let name = format!("pvc-{uid}");
    assert_eq!(c["spec"]["volumeName"], name.as_str());
    assert_eq!(
        c["metadata"]["annotations"][ANN_STORAGE_PROVISIONER],
        provisioner::PROVISIONER
    );
    assert_eq!(
        c["metadata"]["annotations"][ANN_BETA_STORAGE_PROVISIONER],
        provisioner::PROVISIONER
    );
    let v = get(&registry, "persistentvolumes", "", &name).unwrap();
    assert_eq!(
        v["spec"]["hostPath"],
        json!({"path": format!("/var/lib/paddock/storage/{name}_default_data"), "type": "DirectoryOrCreate"})
    );
    assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    assert_eq!(v["spec"]["storageClassName"], "local-path");
    assert_eq!(
        v["metadata"]["annotations"][ANN_PROVISIONED_BY],
        provisioner::PROVISIONER
    );
    assert_eq!(
        v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"],
        json!(["n1"])
    );
    assert_eq!(
        v["metadata"]["finalizers"],
        json!(["kubernetes.io/pv-protection"])
    );
    assert!(has_event(
        &registry,
        "ProvisioningSucceeded",
        &format!("Successfully provisioned volume {name}")
    ));
    // Released under Delete: left to the provisioner (the node's agent removes the
    // directory and the volume), not failed.
    delete(&registry, "persistentvolumeclaims", "default", "data", None).await;
    eventually("released", || {
        phase(&registry, "persistentvolumes", "", &name) == "Released"
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    assert_eq!(phase(&registry, "persistentvolumes", "", &name), "Released");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_claim_in_use_stays_until_its_pod_is_gone() {
    let (registry, stop) = running().await;
    new_claim(&registry, "data", json!({"storageClassName": ""})).await;
    create(
        &registry,
        "pods",
        "default",
        json!({"metadata": {"name": "user"}, "spec": {"nodeName": "n1",
            "containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}),
    )
    .await;
    delete(&registry, "persistentvolumeclaims", "default", "data", None).await;
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    let c = get(&registry, "persistentvolumeclaims", "default", "data").expect("still there");
    assert!(c["metadata"]["deletionTimestamp"].is_string());
    let opts = apiserver::registry::DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    registry
        .delete(info("pods"), "default", "user", &opts)
        .await
        .unwrap();
    eventually("the claim gone", || {
        get(&registry, "persistentvolumeclaims", "default", "data").is_none()
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn ephemeral_volumes_get_a_claim_owned_by_the_pod() {
    let (registry, stop) = running().await;
    let pod = create(
        &registry,
        "pods",
        "default",
        json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}}}}]}}),
    )
    .await;
    eventually("the claim", || {
        get(&registry, "persistentvolumeclaims", "default", "p-scratch").is_some()
    })
    .await;
    let c = get(&registry, "persistentvolumeclaims", "default", "p-scratch").unwrap();
    assert_eq!(
        c["metadata"]["ownerReferences"][0]["uid"],
        pod["metadata"]["uid"]
    );
    assert_eq!(c["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(c["metadata"]["labels"]["a"], "b");
    assert_eq!(c["spec"]["volumeMode"], "Filesystem");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn user_prebinding_and_lost_claims() {
    let (registry, stop) = running().await;
    // Two fitting volumes; the claim names the bigger one by volumeName.
    for (n, size) in [("small", "1Gi"), ("big", "5Gi")] {
        create(
            &registry,
            "persistentvolumes",
            "",
            volume_obj(n, size, json!({"storageClassName": ""})),
        )
        .await;
    }
    new_claim(
        &registry,
        "data",
        json!({"storageClassName": "", "volumeName": "big"}),
    )
    .await;
    eventually("bound to the named volume", || {
        phase(&registry, "persistentvolumeclaims", "default", "data") == "Bound"
    })
    .await;
    let c = get(&registry, "persistentvolumeclaims", "default", "data").unwrap();
    assert_eq!(c["spec"]["volumeName"], "big");
    // The user chose the volume: the claim is not marked bound by the controller.
    assert!(c["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER].is_null());
    assert_eq!(c["metadata"]["annotations"][ANN_BIND_COMPLETED], "yes");
    assert_eq!(
        phase(&registry, "persistentvolumes", "", "small"),
        "Available"
    );
    // The volume disappears under the bound claim (its protection finalizer removed by
    // hand): the claim is Lost.
    registry
        .update_with(info("persistentvolumes"), "", "big", false, |v| {
            v["metadata"]["finalizers"] = json!([]);
            Ok(true)
        })
        .await
        .unwrap();
    delete(&registry, "persistentvolumes", "", "big", None).await;
    eventually("lost", || {
        phase(&registry, "persistentvolumeclaims", "default", "data") == "Lost"
    })
    .await;
    assert!(has_event(
        &registry,
        "ClaimLost",
        "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
    ));
    stop.cancel();
}
