//! Storage through the registry: the admission plugins (DefaultStorageClass,
//! StorageObjectInUseProtection, PersistentVolumeClaimResize), the stored defaults and
//! status, and the local-path class every cluster gets.

use serde_json::json;
use store::Store;

use crate::registry::{Registry, WriteOptions};

fn info(group: &str, plural: &str) -> &'static api::registry::ResourceInfo {
    api::registry::lookup(group, "v1", plural).unwrap()
}

#[tokio::test]
async fn claims_default_class_protection_and_resize() {
    let r = Registry::new(Store::memory());
    crate::bootstrap(&r).await.unwrap();
    let sc = r
        .get(info("storage.k8s.io", "storageclasses"), "", "local-path")
        .unwrap();
    assert_eq!(sc["provisioner"], "rancher.io/local-path");
    assert_eq!(sc["volumeBindingMode"], "WaitForFirstConsumer");
    assert_eq!(sc["reclaimPolicy"], "Delete");
    assert_eq!(
        sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    let pvcs = info("", "persistentvolumeclaims");
    let c = r
        .create(
            pvcs,
            "default",
            json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                   "resources": {"requests": {"storage": "1Gi"}}}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(c["spec"]["storageClassName"], "local-path");
    assert_eq!(c["spec"]["volumeMode"], "Filesystem");
    assert_eq!(c["status"], json!({"phase": "Pending"}));
    assert_eq!(
        c["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    // Bound, then grown: local-path does not allow expansion (403, upstream's words).
    r.update_with(pvcs, "default", "data", true, |c| {
        c["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}});
        Ok(true)
    })
    .await
    .unwrap();
    let e = r
        .update_with(pvcs, "default", "data", false, |c| {
            c["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
            Ok(true)
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "persistentvolumeclaims \"data\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
    );
    // A volume gets its protection finalizer, phase and transition time.
    let v = r
        .create(
            info("", "persistentvolumes"),
            "",
            json!({"metadata": {"name": "v"}, "spec": {"accessModes": ["ReadWriteOnce"],
                   "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/srv/v"}}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        v["metadata"]["finalizers"],
        json!(["kubernetes.io/pv-protection"])
    );
    assert_eq!(v["status"]["phase"], "Pending");
    assert!(v["status"]["lastPhaseTransitionTime"].is_string());
    assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Retain");
}
