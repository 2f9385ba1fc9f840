//! The node's half of the local-path provisioner (what k3s's local-path-provisioner does in
//! helper pods on the node): the storage root `<data dir>/storage` (0700, reported to the
//! server in the Node annotation [`STORAGE_DIR_ANNOTATION`]), a volume's directory made on
//! its first mount ([`make_volume_dir`], mode 0777 as local-path's setup script
//! `mkdir -m 0777` makes it, so a container of any user can write its volume), and the
//! directory removed once its volume is released under the `Delete` reclaim policy
//! ([`run_reclaimer`], which then deletes the PersistentVolume, as the provisioner does).
//!
//! Only directories directly under this node's storage root are ever made or removed, and
//! never through a symbolic link: a volume path elsewhere is refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Preconditions};
use tokio_util::sync::CancellationToken;

/// The Node annotation in which the agent reports its storage root (read by the server's
/// local-path provisioner).
pub const STORAGE_DIR_ANNOTATION: &str = "paddock.dev/storage-dir";
/// The provisioner whose volumes this node makes and removes.
pub const PROVISIONER: &str = "rancher.io/local-path";
/// The annotation naming a local-path volume's node.
pub const NODE_ANNOTATION: &str = "local.path.provisioner/selected-node";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// How often released volumes are looked for.
const RECLAIM_PERIOD: Duration = Duration::from_secs(2);

/// The storage root of an agent whose data dir is `root_dir`.
pub fn storage_root(root_dir: &Path) -> PathBuf {
    root_dir.join("storage")
}

/// Why a volume directory is refused or could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The path is not a directory directly under the storage root.
    #[error("path {path:?} is not a volume directory under this node's storage root {root:?}")]
    OutsideRoot {
        /// The volume path.
        path: PathBuf,
        /// The node's storage root.
        root: PathBuf,
    },
    /// The path exists but is a symbolic link or not a directory.
    #[error("{0:?} exists and is not a directory")]
    NotADirectory(PathBuf),
    /// A file-system call failed.
    #[error("{what} {path:?}: {source}")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `path` is `<root>/<one plain component>` (no `..`, no nesting).
fn check_under_root(root: &Path, path: &Path) -> Result<(), StorageError> {
    let outside = || StorageError::OutsideRoot {
        path: path.to_path_buf(),
        root: root.to_path_buf(),
    };
    let name = path.file_name().ok_or_else(outside)?;
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::RootDir
            )
        });
    if !plain || path.parent() != Some(root) {
        return Err(outside());
    }
    Ok(())
}

/// Makes the storage root (0700) if missing; refuses a root that is a symbolic link.
fn ensure_root(root: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::symlink_metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(StorageError::NotADirectory(root.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io("create", root)),
        Err(e) => Err(io("inspect", root)(e)),
    }
}

/// Makes the volume directory `path` under `root` if it does not exist (0777, as
/// local-path's setup script); an existing directory is kept as it is (its data and mode).
/// Blocking: call from `spawn_blocking`.
pub fn make_volume_dir(root: &Path, path: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::PermissionsExt;
    check_under_root(root, path)?;
    ensure_root(root)?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => return Err(StorageError::NotADirectory(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("inspect", path)(e)),
    }
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Made meanwhile by another pod's start: check what it is.
            return match std::fs::symlink_metadata(path) {
                Ok(m) if m.is_dir() => Ok(()),
                _ => Err(StorageError::NotADirectory(path.to_path_buf())),
            };
        }
        Err(e) => return Err(io("create", path)(e)),
    }
    // Not umask's: the mode local-path gives its volumes.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
        .map_err(io("chmod", path))
}

/// Removes the volume directory `path` under `root` and everything in it, without following
/// symbolic links (a link inside is removed, not what it points to). Absent: nothing to do.
/// Blocking: call from `spawn_blocking`.
pub fn remove_volume_dir(root: &Path, path: &Path) -> Result<(), StorageError> {
    check_under_root(root, path)?;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("inspect", path)(e)),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(io("remove", path)),
        // A link or a file where the directory was: remove that entry only.
        Ok(_) => std::fs::remove_file(path).map_err(io("remove", path)),
    }
}

/// The node path of a volume (its `hostPath` or `local` path).
pub fn volume_path(pv: &PersistentVolume) -> Option<&str> {
    let spec = pv.spec.as_ref()?;
    spec.host_path
        .as_ref()
        .map(|h| h.path.as_str())
        .or_else(|| spec.local.as_ref().map(|l| l.path.as_str()))
}

/// Whether `pv` is a local-path volume of node `node`.
pub fn is_local_path_volume_of(pv: &PersistentVolume, node: &str) -> bool {
    let ann = pv.metadata.annotations.as_ref();
    let get = |k: &str| ann.and_then(|a| a.get(k)).map(String::as_str);
    get(PROVISIONED_BY) == Some(PROVISIONER) && get(NODE_ANNOTATION) == Some(node)
}

/// Whether the volume is to be deleted now: released (its claim gone) under `Delete`.
fn to_delete(pv: &PersistentVolume) -> bool {
    let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
    let delete = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        == Some("Delete");
    released && delete && pv.metadata.deletion_timestamp.is_none()
}

/// Deletes the directories of this node's released local-path volumes under `Delete`, then
/// the volumes, until `stop`.
pub async fn run_reclaimer(
    client: kube::Client,
    node: String,
    root: PathBuf,
    stop: CancellationToken,
) {
    let api: Api<PersistentVolume> = Api::all(client);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RECLAIM_PERIOD) => {}
        }
        let list = match api.list(&ListParams::default()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "listing PersistentVolumes for reclaim");
                continue;
            }
        };
        for pv in list
            .items
            .into_iter()
            .filter(|pv| is_local_path_volume_of(pv, &node) && to_delete(pv))
        {
            let name = pv.metadata.name.clone().unwrap_or_default();
            let Some(path) = volume_path(&pv).map(PathBuf::from) else {
                continue;
            };
            let r = root.clone();
            let p = path.clone();
            let removed = tokio::task::spawn_blocking(move || remove_volume_dir(&r, &p)).await;
            match removed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(volume = %name, error = %e, "not deleting the volume's directory");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(volume = %name, error = %e, "removing the volume's directory");
                    continue;
                }
            }
            tracing::info!(volume = %name, path = %path.display(), "deleted a released local-path volume");
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: pv.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            if let Err(e) = api.delete(&name, &params).await {
                tracing::debug!(volume = %name, error = %e, "deleting the PersistentVolume");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn volume_dirs_only_directly_under_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("storage");
        let vol = root.join("pvc-1_ns_data");
        make_volume_dir(&root, &vol).unwrap();
        let mode = std::fs::metadata(&vol).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o777);
        let root_mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o7777;
        assert_eq!(root_mode, 0o700);
        std::fs::write(vol.join("f"), b"x").unwrap();
        // A second mount keeps the data.
        make_volume_dir(&root, &vol).unwrap();
        assert!(vol.join("f").exists());
        for bad in [
            tmp.path().join("elsewhere"),
            root.join("a/b"),
            root.join(".."),
            root.clone(),
            PathBuf::from("/etc"),
        ] {
            assert!(
                matches!(
                    make_volume_dir(&root, &bad),
                    Err(StorageError::OutsideRoot { .. })
                ),
                "{bad:?}"
            );
            assert!(remove_volume_dir(&root, &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn removal_never_follows_links() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("storage");
        let outside = tmp.path().join("precious");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let vol = root.join("pvc-2_ns_data");
        make_volume_dir(&root, &vol).unwrap();
        std::os::unix::fs::symlink(&outside, vol.join("link")).unwrap();
        remove_volume_dir(&root, &vol).unwrap();
        assert!(!vol.exists());
        assert!(outside.join("keep").exists());
        // A volume path that is itself a link: the link goes, not its target.
        let linked = root.join("pvc-3_ns_data");
        std::os::unix::fs::symlink(&outside, &linked).unwrap();
        assert!(matches!(
            make_volume_dir(&root, &linked),
            Err(StorageError::NotADirectory(_))
        ));
        remove_volume_dir(&root, &linked).unwrap();
        assert!(outside.join("keep").exists());
        // Gone already: nothing to do.
        remove_volume_dir(&root, &vol).unwrap();
    }
}
