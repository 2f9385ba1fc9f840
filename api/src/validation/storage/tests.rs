//! Storage validation against upstream's messages and field paths (cases from
//! `pkg/apis/core/validation/validation_test.go` and `pkg/apis/storage/validation`).

use serde_json::{Value, json};

use super::*;
use crate::registry::by_kind;
use crate::status::FieldError;

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn pvc(storage: &str) -> Value {
    json!({
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": storage}},
            "storageClassName": "local-path",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Pending"},
    })
}

fn bound(mut c: Value, capacity: &str) -> Value {
    c["spec"]["volumeName"] = json!("pvc-1");
    c["status"] = json!({"phase": "Bound", "capacity": {"storage": capacity}});
    c
}

fn pv() -> Value {
    json!({
        "metadata": {"name": "v"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "1Gi"},
            "hostPath": {"path": "/data/v", "type": ""},
            "persistentVolumeReclaimPolicy": "Retain",
            "volumeMode": "Filesystem",
        },
    })
}

#[test]
fn claim_spec_rules() {
    assert!(
        validate_persistent_volume_claim(&pvc("1Gi"))
            .unwrap()
            .is_empty()
    );
    let mut c = pvc("0");
    c["spec"]["accessModes"] = json!([]);
    c["spec"]["volumeMode"] = json!("Raw");
    let got = messages(&validate_persistent_volume_claim(&c).unwrap());
    assert_eq!(
        got,
        [
            "spec.accessModes: Required value: at least 1 access mode is required",
            "spec.resources[storage]: Invalid value: \"0\": must be greater than zero",
            "spec.volumeMode: Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"",
        ]
    );
    let mut c = pvc("1Gi");
    c["spec"]["resources"] = json!({});
    c["spec"]["accessModes"] = json!(["ReadWriteOncePod", "ReadWriteOnce", "Sometimes"]);
    let got = messages(&validate_persistent_volume_claim(&c).unwrap());
    assert_eq!(
        got,
        [
            "spec.accessModes: Unsupported value: \"Sometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
            "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
            "spec.resources[storage]: Required value",
        ]
    );
}

#[test]
fn claim_updates() {
    // volumeName may be set once; a bound claim may grow.
    let old = pvc("1Gi");
    let mut new = old.clone();
    new["spec"]["volumeName"] = json!("pvc-1");
    assert!(
        validate_persistent_volume_claim_update(&new, &old)
            .unwrap()
            .is_empty()
    );
    let old = bound(pvc("1Gi"), "1Gi");
    let new = bound(pvc("2Gi"), "1Gi");
    assert!(
        validate_persistent_volume_claim_update(&new, &old)
            .unwrap()
            .is_empty()
    );
    // Equal sizes in other units are no change.
    let new = bound(pvc("1024Mi"), "1Gi");
    assert!(
        validate_persistent_volume_claim_update(&new, &old)
            .unwrap()
            .is_empty()
    );
    // Any other spec change is forbidden.
    let mut new = old.clone();
    new["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    let errs = validate_persistent_volume_claim_update(&new, &old).unwrap();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "spec");
    assert!(
        errs[0].to_string().starts_with(
            "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"
        ),
        "{}",
        errs[0]
    );
    // An unbound claim cannot change its size at all.
    let errs = validate_persistent_volume_claim_update(&pvc("2Gi"), &pvc("1Gi")).unwrap();
    assert_eq!(errs[0].field, "spec");
    // Shrinking to (or below) the status capacity is refused.
    let old = bound(pvc("3Gi"), "2Gi");
    let errs = validate_persistent_volume_claim_update(&bound(pvc("2Gi"), "2Gi"), &old).unwrap();
    assert_eq!(
        messages(&errs),
        ["spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"]
    );
    // Above it is allowed (recovering from a failed expansion).
    assert!(
        validate_persistent_volume_claim_update(&bound(pvc("2500Mi"), "2Gi"), &old)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn volume_rules() {
    assert!(validate_persistent_volume(&pv()).unwrap().is_empty());
    let mut v = pv();
    v["spec"]["accessModes"] = json!([]);
    v["spec"]["capacity"] = json!({});
    v["spec"]["persistentVolumeReclaimPolicy"] = json!("Shred");
    if let Some(s) = v["spec"].as_object_mut() {
        s.remove("hostPath");
    }
    assert_eq!(
        messages(&validate_persistent_volume(&v).unwrap()),
        [
            "spec.accessModes: Required value: must specify at least 1 access mode",
            "spec.capacity: Required value",
            "spec: Required value: must specify a volume type",
            "spec.persistentVolumeReclaimPolicy: Unsupported value: \"Shred\": supported values: \"Delete\", \"Recycle\", \"Retain\"",
        ]
    );
    let mut v = pv();
    v["spec"]["local"] = json!({"path": "/mnt/disk"});
    let got = messages(&validate_persistent_volume(&v).unwrap());
    assert_eq!(
        got,
        [
            "spec.local: Forbidden: may not specify more than 1 volume type",
            "spec.nodeAffinity: Required value: Local volume requires node affinity",
        ]
    );
    let mut v = pv();
    v["spec"]["hostPath"]["path"] = json!("/a/../etc");
    v["spec"]["capacity"] = json!({"storage": "-1"});
    let got = messages(&validate_persistent_volume(&v).unwrap());
    assert!(
        got.contains(
            &"spec.hostPath.path: Invalid value: \"/a/../etc\": must not contain '..'".to_string()
        ),
        "{got:?}"
    );
    assert!(
        got.contains(
            &"spec.capacity[storage]: Invalid value: \"-1\": must be greater than zero".to_string()
        ),
        "{got:?}"
    );
}

#[test]
fn volume_source_is_immutable() {
    let old = pv();
    let mut new = old.clone();
    new["spec"]["hostPath"]["path"] = json!("/data/w");
    let errs = validate_persistent_volume_update(&new, &old).unwrap();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .to_string()
            .starts_with("spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation\n")
    );
    // The reclaim policy and claimRef may change.
    let mut new = old.clone();
    new["spec"]["persistentVolumeReclaimPolicy"] = json!("Delete");
    new["spec"]["claimRef"] = json!({"namespace": "default", "name": "data"});
    assert!(
        validate_persistent_volume_update(&new, &old)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn storage_class_rules() {
    let sc = json!({"metadata": {"name": "fast"}, "provisioner": "rancher.io/local-path",
                    "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"});
    assert!(validate_storage_class(&sc).unwrap().is_empty());
    let bad = json!({"metadata": {"name": "fast"}, "provisioner": "",
                     "reclaimPolicy": "Recycle", "volumeBindingMode": "Later"});
    assert_eq!(
        messages(&validate_storage_class(&bad).unwrap()),
        [
            "provisioner: Required value",
            "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
            "volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"",
        ]
    );
    let mut new = sc.clone();
    new["provisioner"] = json!("other.io/x");
    new["parameters"] = json!({"a": "b"});
    new["reclaimPolicy"] = json!("Retain");
    assert_eq!(
        messages(&validate_storage_class_update(&new, &sc)),
        [
            "parameters: Forbidden: updates to parameters are forbidden.",
            "provisioner: Forbidden: updates to provisioner are forbidden.",
            "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
        ]
    );
}

#[test]
fn defaults_and_whole_object_errors() {
    // Through decode: the defaults upstream applies.
    let info = by_kind("v1", "PersistentVolume").unwrap();
    let d = crate::object::decode(info, pv_without_defaults(), Default::default()).unwrap();
    assert_eq!(d.value["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(d.value["spec"]["volumeMode"], "Filesystem");
    assert_eq!(d.value["status"]["phase"], "Pending");
    let info = by_kind("storage.k8s.io/v1", "StorageClass").unwrap();
    let d = crate::object::decode(
        info,
        json!({"metadata": {"name": "s"}, "provisioner": "x.io/y"}),
        Default::default(),
    )
    .unwrap();
    assert_eq!(d.value["reclaimPolicy"], "Delete");
    assert_eq!(d.value["volumeBindingMode"], "Immediate");
    let info = by_kind("v1", "PersistentVolumeClaim").unwrap();
    let d = crate::object::decode(info, pvc("1024Mi"), Default::default()).unwrap();
    assert_eq!(d.value["spec"]["resources"]["requests"]["storage"], "1Gi");
    // A 422 names the claim.
    let mut c = d.value.clone();
    c["spec"]["accessModes"] = json!([]);
    let err = crate::validation::validate_create(info, &c).unwrap_err();
    assert_eq!(err.code, 422);
    assert!(
        err.message.starts_with(
            "PersistentVolumeClaim \"data\" is invalid: spec.accessModes: Required value"
        ),
        "{}",
        err.message
    );
}

fn pv_without_defaults() -> Value {
    json!({"metadata": {"name": "v"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
        "hostPath": {"path": "/data/v"}}})
}

#[test]
fn ephemeral_templates_are_checked_as_claims() {
    let pod = json!({
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
                     "accessModes": ["ReadWriteOnce"]}}}},
                             {"name": "named", "persistentVolumeClaim": {"claimName": ""}}]},
    });
    let info = by_kind("v1", "Pod").unwrap();
    let d = crate::object::decode(info, pod, Default::default()).unwrap();
    let err = crate::validation::validate_create(info, &d.value).unwrap_err();
    assert!(
        err.message.contains(
            "spec.volumes[0].ephemeral.volumeClaimTemplate.spec.resources[storage]: Required value"
        ),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains("spec.volumes[1].persistentVolumeClaim.claimName: Required value"),
        "{}",
        err.message
    );
}
