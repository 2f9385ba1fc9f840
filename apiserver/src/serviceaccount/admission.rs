//! The ServiceAccount admission plugin on pod create (upstream
//! `plugin/pkg/admission/serviceaccount/admission.go`): the pod's service account defaults to
//! `default` and must exist (the `default` account is looked up a few times, the controller
//! may not have made it yet); unless `automountServiceAccountToken` says otherwise (the pod's
//! word over the account's) every container and init container mounts the projected
//! `kube-api-access-<random>` volume (token, `kube-root-ca.crt`, namespace) read-only at
//! [`TOKEN_MOUNT_PATH`]; the account's `imagePullSecrets` fill a pod that has none.

use std::time::Duration;

use api::status::ApiError;
use rand::Rng;
use serde_json::{Value, json};

use super::info;
use crate::registry::Registry;

/// Where the token volume is mounted (`DefaultAPITokenMountPath`).
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The token volume's name prefix (`ServiceAccountVolumeName`).
pub const VOLUME_PREFIX: &str = "kube-api-access-";
/// The ConfigMap with the cluster CA every namespace gets.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// The projected token's lifetime the plugin asks for (`WarnOnlyBoundTokenExpirationSeconds`).
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// The annotation that marks a mirror pod (left alone).
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// How often the `default` account is looked up before the pod is refused.
const DEFAULT_ATTEMPTS: u32 = 10;

/// The projected volume source of the token volume (`TokenVolumeSource`).
pub fn token_volume_source() -> Value {
    json!({
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
            {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    })
}

/// Upstream's `Validate` of a mirror pod (left unmodified): it may reference no service
/// account, no Secret and no ServiceAccountToken projection.
fn mirror_pod(obj: &Value) -> Result<(), ApiError> {
    let refuse = |msg: &str| Err(ApiError::forbidden(info("pods"), &resource_name(obj), msg));
    if obj
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return refuse("a mirror pod may not reference service accounts");
    }
    if crate::authz::node_graph::pod_references(obj).secrets {
        return refuse("a mirror pod may not reference secrets");
    }
    let projects_token = obj
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/projected/sources").and_then(Value::as_array))
        .flatten()
        .any(|s| s.get("serviceAccountToken").is_some_and(|t| !t.is_null()));
    if projects_token {
        return refuse("a mirror pod may not use ServiceAccountToken volume projections");
    }
    Ok(())
}

/// Admits the pod `obj` being created in `ns`.
pub async fn admit(registry: &Registry, ns: &str, obj: &mut Value) -> Result<(), ApiError> {
    if obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
    {
        return mirror_pod(obj);
    }
    if !obj.get("spec").is_some_and(Value::is_object) {
        // Validation reports the missing spec.
        return Ok(());
    }
    let sa_name = match obj
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(s) => s.to_string(),
        None => "default".to_string(),
    };
    obj["spec"]["serviceAccountName"] = json!(sa_name);
    let sa = lookup(registry, ns, &sa_name).await.map_err(|e| {
        ApiError::forbidden(
            info("pods"),
            &resource_name(obj),
            &format!(
                "error looking up service account {ns}/{sa_name}: {}",
                e.message
            ),
        )
    })?;
    if should_automount(&sa, obj) {
        mount_token(obj);
    }
    let has_pull_secrets = obj
        .pointer("/spec/imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !has_pull_secrets
        && let Some(ps) = sa
            .get("imagePullSecrets")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
    {
        obj["spec"]["imagePullSecrets"] = Value::Array(ps.clone());
    }
    Ok(())
}

/// The name admission errors carry: the pod's name, else its generateName, else `Unknown`.
fn resource_name(obj: &Value) -> String {
    for f in ["name", "generateName"] {
        if let Some(n) = obj
            .pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return n.to_string();
        }
    }
    "Unknown".to_string()
}

/// The account, looked up once, or [`DEFAULT_ATTEMPTS`] times 100–200 ms apart for
/// `default` (which the controller makes right after the namespace).
async fn lookup(registry: &Registry, ns: &str, name: &str) -> Result<Value, ApiError> {
    let attempts = if name == "default" {
        DEFAULT_ATTEMPTS
    } else {
        1
    };
    let interval = Duration::from_millis(rand::rng().random_range(100..200));
    let mut last = None;
    for i in 0..attempts {
        if i > 0 {
            tokio::time::sleep(interval).await;
        }
        match registry.get(info("serviceaccounts"), ns, name) {
            Ok(sa) => return Ok(Value::clone(&sa)),
            Err(e) => last = Some(e),
        }
    }
    let mut e = last.unwrap_or_else(|| ApiError::internal("no lookup"));
    // `errors.NewNotFound(api.Resource("serviceaccount"), name)`: the singular resource.
    if e.code == 404 {
        e.message = format!("serviceaccount \"{name}\" not found");
    }
    Err(e)
}

/// `shouldAutomount`: the pod's setting, else the account's, else true.
fn should_automount(sa: &Value, pod: &Value) -> bool {
    if let Some(b) = pod
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
    {
        return b;
    }
    sa.get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// `mountServiceAccountToken`: the volume (an existing `kube-api-access-*` one, or a new
/// name) mounted in every init container and container that has nothing at the mount path.
fn mount_token(pod: &mut Value) {
    let volumes: Vec<String> = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let volume = volumes
        .iter()
        .find(|n| n.starts_with(VOLUME_PREFIX))
        .cloned()
        .unwrap_or_else(|| crate::meta::generate_name(VOLUME_PREFIX));
    let mount = json!({"name": volume, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod["spec"].get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut() {
            let Some(c) = c.as_object_mut() else { continue };
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            if !mounts.is_array() {
                *mounts = json!([]);
            }
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            let existing = mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH));
            if !existing {
                mounts.push(mount.clone());
                needs_volume = true;
            }
        }
    }
    if needs_volume && !volumes.contains(&volume) {
        let spec = &mut pod["spec"];
        if !spec.get("volumes").is_some_and(Value::is_array) {
            spec["volumes"] = json!([]);
        }
        if let Some(v) = spec["volumes"].as_array_mut() {
            v.push(json!({"name": volume, "projected": token_volume_source()}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automount_pod_wins_over_account() {
        let sa_off = json!({"automountServiceAccountToken": false});
        let sa_any = json!({});
        let pod_on = json!({"spec": {"automountServiceAccountToken": true}});
        let pod_off = json!({"spec": {"automountServiceAccountToken": false}});
        let pod_any = json!({"spec": {}});
        assert!(should_automount(&sa_off, &pod_on));
        assert!(!should_automount(&sa_any, &pod_off));
        assert!(!should_automount(&sa_off, &pod_any));
        assert!(should_automount(&sa_any, &pod_any));
    }

    #[test]
    fn token_volume_in_every_container_as_upstream() {
        let mut pod = json!({"spec": {
            "initContainers": [{"name": "i"}],
            "containers": [
                {"name": "a"},
                {"name": "b", "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]},
            ],
            "volumes": [{"name": "mine", "emptyDir": {}}],
        }});
        mount_token(&mut pod);
        let vols = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 2);
        let name = vols[1]["name"].as_str().unwrap();
        assert!(name.starts_with(VOLUME_PREFIX) && name.len() == VOLUME_PREFIX.len() + 5);
        assert_eq!(vols[1]["projected"], token_volume_source());
        assert_eq!(
            vols[1]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        let want = json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
        assert_eq!(
            pod["spec"]["initContainers"][0]["volumeMounts"],
            json!([want])
        );
        assert_eq!(pod["spec"]["containers"][0]["volumeMounts"], json!([want]));
        // A container with its own volume at the path keeps it.
        assert_eq!(
            pod["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // Admitting again (an existing kube-api-access volume) adds nothing.
        let before = pod.clone();
        mount_token(&mut pod);
        assert_eq!(pod, before);
    }

    #[test]
    fn nothing_mounted_when_every_container_has_the_path() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "volumeMounts": [{"name": "x", "mountPath": TOKEN_MOUNT_PATH}]},
        ]}});
        mount_token(&mut pod);
        assert!(pod["spec"].get("volumes").is_none());
    }
}
