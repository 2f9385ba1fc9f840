//! `persistentvolumes`, `persistentvolumeclaims` and `storageclasses`: upstream
//! `printPersistentVolume`, `printPersistentVolumeClaim` and `printStorageClass`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, name, s, wide};

pub(super) const PV_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Capacity",
        "string",
        "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes",
    ),
    col(
        "Reclaim Policy",
        "string",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming",
    ),
    col(
        "Status",
        "string",
        "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase",
    ),
    col(
        "Claim",
        "string",
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding",
    ),
    col("StorageClass", "string", "StorageClass of the pv"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    col(
        "Reason",
        "string",
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.",
    ),
];

pub(super) const PVC_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    col(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    col(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1",
    ),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.",
    ),
];

pub(super) const SC_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Provisioner",
        "string",
        "Indicates the type of the provisioner.",
    ),
    col(
        "ReclaimPolicy",
        "string",
        "Indicates the type of the reclaim policy.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "Indicates how volume binding and provisioning should occur.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "Indicates whether the storage class allow volume expand.",
    ),
    AGE,
];

/// Upstream `helper.GetAccessModesAsString`: the modes present, in a fixed order.
fn access_modes(modes: &Value) -> String {
    let has = |m: &str| {
        modes
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(m)))
    };
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .into_iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The class of a volume or claim: the beta annotation first, then `spec.storageClassName`.
fn class(obj: &Value) -> String {
    obj["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"]
        .as_str()
        .unwrap_or_else(|| s(&obj["spec"]["storageClassName"]))
        .to_string()
}

/// A quantity cell: Go's zero Quantity prints `0`.
fn quantity(v: &Value) -> String {
    v.as_str().unwrap_or("0").to_string()
}

/// `Terminating` once deleted, the phase otherwise.
fn phase(obj: &Value) -> String {
    if obj["metadata"]["deletionTimestamp"].is_string() {
        "Terminating".into()
    } else {
        s(&obj["status"]["phase"]).to_string()
    }
}

fn unset_or(v: &Value) -> String {
    v.as_str().unwrap_or("<unset>").to_string()
}

/// Upstream `printPersistentVolume`.
pub(super) fn pv_row(p: &Rows, obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    let claim = if spec["claimRef"].is_object() {
        format!(
            "{}/{}",
            s(&spec["claimRef"]["namespace"]),
            s(&spec["claimRef"]["name"])
        )
    } else {
        String::new()
    };
    vec![
        name(obj).into(),
        quantity(&spec["capacity"]["storage"]).into(),
        access_modes(&spec["accessModes"]).into(),
        s(&spec["persistentVolumeReclaimPolicy"]).into(),
        phase(obj).into(),
        claim.into(),
        class(obj).into(),
        unset_or(&spec["volumeAttributesClassName"]).into(),
        s(&obj["status"]["reason"]).into(),
        p.age(obj).into(),
        unset_or(&spec["volumeMode"]).into(),
    ]
}

/// Upstream `printPersistentVolumeClaim`: capacity and access modes only once bound to a
/// volume.
pub(super) fn pvc_row(p: &Rows, obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    let volume = s(&spec["volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(&obj["status"]["capacity"]["storage"]),
            access_modes(&obj["status"]["accessModes"]),
        )
    };
    vec![
        name(obj).into(),
        phase(obj).into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        class(obj).into(),
        unset_or(&spec["volumeAttributesClassName"]).into(),
        p.age(obj).into(),
        unset_or(&spec["volumeMode"]).into(),
    ]
}

/// Upstream `printStorageClass`: `(default)` after the default class's name.
pub(super) fn sc_row(p: &Rows, obj: &Value) -> Vec<Value> {
    let mut n = name(obj).to_string();
    if api::admission::is_default_class(obj) {
        n.push_str(" (default)");
    }
    vec![
        n.into(),
        s(&obj["provisioner"]).into(),
        obj["reclaimPolicy"].as_str().unwrap_or("Delete").into(),
        obj["volumeBindingMode"]
            .as_str()
            .unwrap_or("Immediate")
            .into(),
        obj["allowVolumeExpansion"]
            .as_bool()
            .unwrap_or(false)
            .into(),
        p.age(obj).into(),
    ]
}
