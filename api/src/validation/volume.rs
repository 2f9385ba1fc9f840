//! Volume and volumeMount validation (`ValidateVolumes`, `validateVolumeSource`,
//! `validateKeyToPath`, `validateDownwardAPIVolumeFile`, `validateProjectionSources`,
//! `ValidateVolumeMounts` and the path rules `validateLocalDescendingPath` /
//! `ValidateLocalNonReservedPath` / `validatePathNoBacksteps` in
//! `pkg/apis/core/validation/validation.go`), with upstream's messages and field paths —
//! including its quirks: a subPath error names `volumeMounts.subPath` without the index, and a
//! downwardAPI item's errors name `downwardAPI.path` without the item's index.
//!
//! Only the sources paddock can run are checked in depth (emptyDir, hostPath, gitRepo's
//! directory, secret, configMap, downwardAPI, projected); for the others only "exactly one
//! source" is checked here, and the node refuses them.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    DownwardAPIVolumeFile, KeyToPath, ProjectedVolumeSource, Volume, VolumeMount,
};
use serde_json::Value;

use super::{Errors, child, index, is_dns1123_label, is_qualified_name};
use crate::quantity::Quantity;
use crate::status::FieldError;

/// Upstream `fileModeErrorMsg`.
const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// The volume sources in the order `validateVolumeSource` checks them: (JSON field, the name
/// its "more than 1 volume type" error uses — upstream spells two of them differently).
const SOURCES: &[(&str, &str)] = &[
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

/// Upstream `supportedHostPathTypes`, sorted as `sets.List` returns them.
const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

/// Upstream `validVolumeDownwardAPIFieldPathExpressions`, sorted.
const DOWNWARD_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

/// Upstream `validContainerResourceFieldPathExpressions`, sorted.
const RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// Upstream `validatePathNoBacksteps`: no `..` element.
pub fn validate_path_no_backsteps(target: &str, path: &str) -> Errors {
    if target.split('/').any(|p| p == "..") {
        vec![FieldError::invalid(path, target, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

/// Upstream `validateLocalDescendingPath`: relative, no `..` element.
pub fn validate_local_descending_path(target: &str, path: &str) -> Errors {
    let mut errs = Errors::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(validate_path_no_backsteps(target, path));
    errs
}

/// Upstream `ValidateLocalNonReservedPath`: a local descending path that does not start with
/// `..` either (`..data` is the atomic writer's).
pub fn validate_local_non_reserved_path(target: &str, path: &str) -> Errors {
    let mut errs = validate_local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
    errs
}

fn validate_mode(mode: Option<i32>, path: &str) -> Errors {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(path, m, FILE_MODE_MSG)],
        _ => Vec::new(),
    }
}

/// Upstream `ValidateVolumes`: each volume's source, then its name (a DNS-1123 label, unique).
/// Returns the names of the volumes without errors — only those can be mounted, as upstream's
/// map of valid volumes.
pub fn validate_volumes(volumes: &[Volume], path: &str) -> (BTreeSet<String>, Errors) {
    let mut errs = Errors::new();
    let mut names = BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let vpath = index(path, i);
        let npath = child(&vpath, "name");
        let mut el = validate_volume_source(v, &vpath);
        if v.name.is_empty() {
            el.push(FieldError::required(npath.clone(), ""));
        } else {
            for msg in is_dns1123_label(&v.name) {
                el.push(FieldError::invalid(npath.clone(), v.name.as_str(), msg));
            }
        }
        if names.contains(&v.name) {
            el.push(FieldError::duplicate(npath, v.name.as_str()));
        }
        if el.is_empty() {
            names.insert(v.name.clone());
        } else {
            errs.append(&mut el);
        }
    }
    (names, errs)
}

/// Upstream `validateVolumeSource`: exactly one source, checked in upstream's order.
fn validate_volume_source(v: &Volume, path: &str) -> Errors {
    let mut errs = Errors::new();
    let json = serde_json::to_value(v).unwrap_or(Value::Null);
    let mut first = None;
    for (field, forbidden_name) in SOURCES {
        if json.get(*field).is_none_or(Value::is_null) {
            continue;
        }
        if first.is_some() {
            errs.push(FieldError::forbidden(
                child(path, forbidden_name),
                "may not specify more than 1 volume type",
            ));
        } else {
            first = Some(*field);
        }
    }
    let Some(source) = first else {
        errs.push(FieldError::required(path, "must specify a volume type"));
        return errs;
    };
    let spath = child(path, source);
    match source {
        "emptyDir" => {
            let limit = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref());
            if limit
                .and_then(|q| Quantity::parse(&q.0).ok())
                .is_some_and(|q| q.nanos() < 0)
            {
                errs.push(FieldError::forbidden(
                    child(&spath, "sizeLimit"),
                    "SizeLimit field must be a valid resource quantity",
                ));
            }
        }
        "hostPath" => {
            if let Some(h) = &v.host_path {
                if h.path.is_empty() {
                    errs.push(FieldError::required(child(&spath, "path"), ""));
                } else {
                    errs.extend(validate_path_no_backsteps(&h.path, &child(&spath, "path")));
                    if let Some(t) = h.type_.as_deref()
                        && !HOST_PATH_TYPES.contains(&t)
                    {
                        errs.push(FieldError::not_supported(
                            child(&spath, "type"),
                            t,
                            HOST_PATH_TYPES,
                        ));
                    }
                }
            }
        }
        "gitRepo" => {
            if let Some(g) = &v.git_repo {
                if g.repository.is_empty() {
                    errs.push(FieldError::required(child(&spath, "repository"), ""));
                }
                errs.extend(validate_local_descending_path(
                    g.directory.as_deref().unwrap_or(""),
                    &child(&spath, "directory"),
                ));
            }
        }
        "secret" => {
            if let Some(s) = &v.secret {
                if s.secret_name.as_deref().unwrap_or("").is_empty() {
                    errs.push(FieldError::required(child(&spath, "secretName"), ""));
                }
                errs.extend(validate_mode(s.default_mode, &child(&spath, "defaultMode")));
                errs.extend(validate_items(s.items.as_deref(), &spath));
            }
        }
        "configMap" => {
            if let Some(c) = &v.config_map {
                if c.name.is_empty() {
                    errs.push(FieldError::required(child(&spath, "name"), ""));
                }
                errs.extend(validate_mode(c.default_mode, &child(&spath, "defaultMode")));
                errs.extend(validate_items(c.items.as_deref(), &spath));
            }
        }
        "downwardAPI" => {
            if let Some(d) = &v.downward_api {
                errs.extend(validate_mode(d.default_mode, &child(&spath, "defaultMode")));
                for f in d.items.iter().flatten() {
                    // Upstream passes the source's path, not the item's.
                    errs.extend(validate_downward_api_file(f, &spath));
                }
            }
        }
        "projected" => {
            if let Some(p) = &v.projected {
                errs.extend(validate_projected(p, &spath));
            }
        }
        "persistentVolumeClaim" => {
            if let Some(c) = &v.persistent_volume_claim
                && c.claim_name.is_empty()
            {
                errs.push(FieldError::required(child(&spath, "claimName"), ""));
            }
        }
        "ephemeral" => {
            let tpath = child(&spath, "volumeClaimTemplate");
            match v
                .ephemeral
                .as_ref()
                .and_then(|e| e.volume_claim_template.as_ref())
            {
                None => errs.push(FieldError::required(tpath, "")),
                Some(t) => errs.extend(super::storage::validate_claim_spec(
                    &t.spec,
                    &child(&tpath, "spec"),
                )),
            }
        }
        _ => {}
    }
    errs
}

fn validate_items(items: Option<&[KeyToPath]>, spath: &str) -> Errors {
    let ipath = child(spath, "items");
    items
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, kp)| validate_key_to_path(kp, &index(&ipath, i)))
        .collect()
}

/// Upstream `validateKeyToPath`.
fn validate_key_to_path(kp: &KeyToPath, path: &str) -> Errors {
    let mut errs = Errors::new();
    if kp.key.is_empty() {
        errs.push(FieldError::required(child(path, "key"), ""));
    }
    let ppath = child(path, "path");
    if kp.path.is_empty() {
        errs.push(FieldError::required(ppath.clone(), ""));
    }
    errs.extend(validate_local_non_reserved_path(&kp.path, &ppath));
    errs.extend(validate_mode(kp.mode, &child(path, "mode")));
    errs
}

/// Upstream `validateDownwardAPIVolumeFile`.
fn validate_downward_api_file(f: &DownwardAPIVolumeFile, path: &str) -> Errors {
    let mut errs = Errors::new();
    let ppath = child(path, "path");
    if f.path.is_empty() {
        errs.push(FieldError::required(ppath.clone(), ""));
    }
    errs.extend(validate_local_non_reserved_path(&f.path, &ppath));
    match (&f.field_ref, &f.resource_field_ref) {
        (Some(fr), other) => {
            errs.extend(validate_object_field_selector(
                &fr.api_version.clone().unwrap_or_default(),
                &fr.field_path,
                &child(path, "fieldRef"),
            ));
            if other.is_some() {
                errs.push(FieldError::invalid(
                    path,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                ));
            }
        }
        (None, Some(r)) => {
            let rpath = child(path, "resourceFieldRef");
            if r.container_name.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::required(child(&rpath, "containerName"), ""));
            }
            if r.resource.is_empty() {
                errs.push(FieldError::required(child(&rpath, "resource"), ""));
            } else if !RESOURCE_FIELD_PATHS.contains(&r.resource.as_str())
                && !r.resource.starts_with("requests.hugepages-")
                && !r.resource.starts_with("limits.hugepages-")
            {
                errs.push(FieldError::not_supported(
                    child(&rpath, "resource"),
                    r.resource.as_str(),
                    RESOURCE_FIELD_PATHS,
                ));
            }
        }
        (None, None) => errs.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        )),
    }
    errs.extend(validate_mode(f.mode, &child(path, "mode")));
    errs
}

/// Upstream `validateObjectFieldSelector` with the downward API volume's expressions.
fn validate_object_field_selector(api_version: &str, field_path: &str, path: &str) -> Errors {
    if api_version.is_empty() {
        return vec![FieldError::required(child(path, "apiVersion"), "")];
    }
    if field_path.is_empty() {
        return vec![FieldError::required(child(path, "fieldPath"), "")];
    }
    // `fieldpath.SplitMaybeSubscriptedPath`: `metadata.labels['key']`.
    let subscripted = field_path
        .strip_suffix("']")
        .and_then(|p| p.split_once("['"));
    match subscripted {
        Some(("metadata.annotations", k)) => is_qualified_name(&k.to_ascii_lowercase())
            .into_iter()
            .map(|m| FieldError::invalid(path, k.to_ascii_lowercase(), m))
            .collect(),
        Some(("metadata.labels", k)) => is_qualified_name(k)
            .into_iter()
            .map(|m| FieldError::invalid(path, k, m))
            .collect(),
        Some((p, _)) => vec![FieldError::invalid(path, p, "does not support subscript")],
        None if !DOWNWARD_FIELD_PATHS.contains(&field_path) => vec![FieldError::not_supported(
            child(path, "fieldPath"),
            field_path,
            DOWNWARD_FIELD_PATHS,
        )],
        None => Vec::new(),
    }
}

/// Upstream `validateProjectedVolumeSource` / `validateProjectionSources`: each source's
/// rules, paths unique across all sources.
fn validate_projected(p: &ProjectedVolumeSource, path: &str) -> Errors {
    let mut errs = validate_mode(p.default_mode, &child(path, "defaultMode"));
    let mut all_paths: BTreeSet<String> = BTreeSet::new();
    let mut note = |errs: &mut Errors, p: &str, value: &str| {
        if !p.is_empty() && !all_paths.insert(p.to_string()) {
            errs.push(FieldError::invalid(
                path,
                value,
                "conflicting duplicate paths",
            ));
        }
    };
    for (i, s) in p.sources.iter().flatten().enumerate() {
        let spath = index(&child(path, "sources"), i);
        let mut n = 0;
        let keyed = [
            s.secret
                .as_ref()
                .map(|x| ("secret", x.name.as_str(), x.items.as_deref())),
            s.config_map
                .as_ref()
                .map(|x| ("configMap", x.name.as_str(), x.items.as_deref())),
        ];
        for (field, name, items) in keyed.into_iter().flatten() {
            n += 1;
            let ppath = child(&spath, field);
            if name.is_empty() {
                errs.push(FieldError::required(child(&ppath, "name"), ""));
            }
            let ipath = child(&ppath, "items");
            for (j, kp) in items.into_iter().flatten().enumerate() {
                errs.extend(validate_key_to_path(kp, &index(&ipath, j)));
                note(&mut errs, &kp.path, name);
            }
        }
        if let Some(d) = &s.downward_api {
            n += 1;
            let ppath = child(&spath, "downwardAPI");
            for f in d.items.iter().flatten() {
                errs.extend(validate_downward_api_file(f, &ppath));
                note(&mut errs, &f.path, &f.path);
            }
        }
        if let Some(t) = &s.service_account_token {
            n += 1;
            let ppath = child(&spath, "serviceAccountToken");
            let secs = t.expiration_seconds.unwrap_or(3600);
            if secs < 10 * 60 {
                errs.push(FieldError::invalid(
                    child(&ppath, "expirationSeconds"),
                    secs,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if secs > 1 << 32 {
                errs.push(FieldError::invalid(
                    child(&ppath, "expirationSeconds"),
                    secs,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            // Upstream names the projected source's `path` here, not the token's.
            if t.path.is_empty() {
                errs.push(FieldError::required(child(path, "path"), ""));
            } else {
                errs.extend(validate_local_non_reserved_path(
                    &t.path,
                    &child(path, "path"),
                ));
            }
        }
        if let Some(b) = &s.cluster_trust_bundle {
            n += 1;
            let ppath = child(&spath, "clusterTrustBundle");
            if b.path.is_empty() {
                errs.push(FieldError::required(child(&ppath, "path"), ""));
            }
            errs.extend(validate_local_non_reserved_path(
                &b.path,
                &child(&ppath, "path"),
            ));
            note(&mut errs, &b.path, &b.path);
        }
        if n > 1 {
            errs.push(FieldError::forbidden(
                spath,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

/// Upstream `ValidateVolumeMounts` (the parts without volumeDevices): name, mountPath
/// (required, unique), subPath and subPathExpr as local descending paths and not both.
pub fn validate_volume_mounts(
    mounts: &[VolumeMount],
    volumes: &BTreeSet<String>,
    path: &str,
) -> Errors {
    let mut errs = Errors::new();
    let mut mount_points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let ipath = index(path, i);
        if m.name.is_empty() {
            errs.push(FieldError::required(child(&ipath, "name"), ""));
        }
        if !volumes.contains(&m.name) {
            errs.push(FieldError::not_found(
                child(&ipath, "name"),
                m.name.as_str(),
            ));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(child(&ipath, "mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.clone()) {
            errs.push(FieldError::invalid(
                child(&ipath, "mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
        let sub = m.sub_path.as_deref().unwrap_or("");
        if !sub.is_empty() {
            // Upstream names the list's path here, not the entry's.
            errs.extend(validate_local_descending_path(sub, &child(path, "subPath")));
        }
        let expr = m.sub_path_expr.as_deref().unwrap_or("");
        if !expr.is_empty() {
            if !sub.is_empty() {
                errs.push(FieldError::invalid(
                    child(&ipath, "subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(validate_local_descending_path(
                expr,
                &child(path, "subPathExpr"),
            ));
        }
    }
    errs
}
