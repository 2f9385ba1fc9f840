use apiserver::registry::{DeleteOptions, Deleted};
use serde_json::{Value, json};

use crate::testutil::*;

fn condition(ns: &Value, ty: &str) -> (String, String, String) {
    let c = ns["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        .unwrap_or_else(|| panic!("no {ty} condition in {ns}"));
    (
        c["status"].as_str().unwrap().to_string(),
        c["reason"].as_str().unwrap().to_string(),
        c["message"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(start_paused = true)]
async fn deleting_a_namespace_removes_its_content_then_itself() {
    let registry = registry_with_namespace("team").await;
    create(
        &registry,
        "namespaces",
        "",
        json!({"metadata": {"name": "other"}}),
    )
    .await;
    deployment_chain(&registry, "team").await;
    deployment_chain(&registry, "other").await;
    create(
        &registry,
        "configmaps",
        "team",
        json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}}),
    )
    .await;
    let stop = start(&registry);

    let ns = get(&registry, "namespaces", "", "team").unwrap();
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    let d = delete(&registry, "namespaces", "", "team", None).await;
    let Deleted::Pending(ns) = d else {
        panic!("a namespace with spec.finalizers stays until finalized")
    };
    assert_eq!(ns["status"]["phase"], "Terminating");

    eventually("namespace removed", || {
        get(&registry, "namespaces", "", "team").is_none()
    })
    .await;
    for plural in ["deployments", "replicasets", "pods", "configmaps"] {
        assert!(names(&registry, plural, "team").is_empty(), "{plural} left");
    }
    // Other namespaces are untouched.
    assert_eq!(names(&registry, "pods", "other").len(), 2);
    assert_eq!(names(&registry, "deployments", "other"), ["web"]);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn terminating_pods_and_finalizers_hold_the_namespace() {
    let registry = registry_with_namespace("team").await;
    // A pod bound to a node terminates gracefully; a configmap is held by a finalizer. (The
    // node exists: the pod garbage collector would force-delete an orphan's pod.)
    create(
        &registry,
        "nodes",
        "",
        json!({"metadata": {"name": "node1"}}),
    )
    .await;
    create(
        &registry,
        "pods",
        "team",
        json!({"metadata": {"name": "bound"},
               "spec": {"nodeName": "node1", "terminationGracePeriodSeconds": 30,
                        "containers": [{"name": "c", "image": "busybox"}]},
               "status": {"phase": "Running"}}),
    )
    .await;
    create(
        &registry,
        "configmaps",
        "team",
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]},
               "data": {"a": "1"}}),
    )
    .await;
    let stop = start(&registry);
    delete(&registry, "namespaces", "", "team", None).await;

    eventually("conditions report what remains", || {
        get(&registry, "namespaces", "", "team").is_some_and(|ns| {
            ns["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.len() == 5)
        })
    })
    .await;
    let ns = get(&registry, "namespaces", "", "team").unwrap();
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert_eq!(
        condition(&ns, "NamespaceContentRemaining"),
        (
            "True".into(),
            "SomeResourcesRemain".into(),
            "Some resources are remaining: configmaps. has 1 resource instances, pods. has 1 resource instances".into()
        )
    );
    assert_eq!(
        condition(&ns, "NamespaceFinalizersRemaining"),
        (
            "True".into(),
            "SomeFinalizersRemain".into(),
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances".into()
        )
    );
    assert_eq!(
        condition(&ns, "NamespaceDeletionContentFailure"),
        (
            "False".into(),
            "ContentDeleted".into(),
            "All content successfully deleted, may be waiting on finalization".into()
        )
    );
    assert_eq!(
        condition(&ns, "NamespaceDeletionDiscoveryFailure").1,
        "ResourcesDiscovered"
    );
    let pod = get(&registry, "pods", "team", "bound").unwrap();
    assert!(!pod["metadata"]["deletionTimestamp"].is_null());
    let cm = get(&registry, "configmaps", "team", "held").unwrap();
    assert!(!cm["metadata"]["deletionTimestamp"].is_null());

    // Still there a while later: nothing removed the pod or the finalizer.
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    assert!(get(&registry, "namespaces", "", "team").is_some());

    // The kubelet finishes the pod; the finalizer's owner releases the configmap.
    let opts = DeleteOptions {
        grace_period_seconds: Some(0),
        ..DeleteOptions::default()
    };
    registry
        .delete(info("pods"), "team", "bound", &opts)
        .await
        .unwrap();
    registry
        .update_with(info("configmaps"), "team", "held", false, |obj| {
            obj["metadata"]["finalizers"] = json!([]);
            Ok(true)
        })
        .await
        .unwrap();
    eventually("namespace removed", || {
        get(&registry, "namespaces", "", "team").is_none()
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn other_spec_finalizers_stay() {
    let registry = registry_with_namespace("team").await;
    registry
        .update_with_mode(
            info("namespaces"),
            "",
            "team",
            apiserver::registry::UpdateMode::Finalize,
            &apiserver::registry::WriteOptions::default(),
            &mut |obj: &mut Value| {
                obj["spec"]["finalizers"] = json!(["kubernetes", "example.com/z", "example.com/a"]);
                Ok(true)
            },
        )
        .await
        .unwrap();
    let stop = start(&registry);
    delete(&registry, "namespaces", "", "team", None).await;
    eventually("kubernetes finalizer removed", || {
        get(&registry, "namespaces", "", "team")
            .is_some_and(|ns| ns["spec"]["finalizers"] == json!(["example.com/a", "example.com/z"]))
    })
    .await;
    stop.cancel();
}

#[test]
fn condition_updates_keep_transition_time_unless_status_flips() {
    let mut ns = json!({"status": {"phase": "Terminating"}});
    assert!(super::update_conditions(&mut ns, &[]));
    assert_eq!(ns["status"]["conditions"].as_array().unwrap().len(), 5);
    assert!(
        !super::update_conditions(&mut ns, &[]),
        "no change the second time"
    );
    let before = ns["status"]["conditions"][3]["lastTransitionTime"].clone();
    ns["status"]["conditions"][3]["lastTransitionTime"] = json!("2000-01-01T00:00:00Z");
    let failing = super::failing_conditions(
        &["pods. has 2 resource instances".to_string()],
        &Default::default(),
        &["boom".to_string()],
    );
    assert!(super::update_conditions(&mut ns, &failing));
    let c = &ns["status"]["conditions"];
    assert_eq!(c[2]["status"], "True");
    assert_eq!(
        c[2]["message"],
        "Failed to delete all resource types, 1 remaining: boom"
    );
    assert_eq!(c[3]["status"], "True");
    assert_ne!(c[3]["lastTransitionTime"], "2000-01-01T00:00:00Z");
    assert!(before.is_string());
    // Same status, new message: the transition time stays.
    ns["status"]["conditions"][3]["lastTransitionTime"] = json!("2000-01-01T00:00:00Z");
    let failing = super::failing_conditions(
        &["pods. has 1 resource instances".to_string()],
        &Default::default(),
        &[],
    );
    assert!(super::update_conditions(&mut ns, &failing));
    assert_eq!(
        ns["status"]["conditions"][3]["lastTransitionTime"],
        "2000-01-01T00:00:00Z"
    );
    assert_eq!(
        ns["status"]["conditions"][3]["message"],
        "Some resources are remaining: pods. has 1 resource instances"
    );
}
