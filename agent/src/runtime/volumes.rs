//! Volumes and the pod's `/etc` files: preparing each volume's content on the node at sandbox
//! creation ([`prepare`]), writing `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` for the
//! pod ([`write_etc_files`]), and turning a container's `volumeMounts` into the bind mounts its
//! mount namespace gets ([`plan_mounts`]).
//!
//! Mount points missing on the node are created before the container starts and recorded, so
//! stopping the sandbox removes them again; those under `/tmp` are made inside the container's
//! private `/tmp` instead.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::state::VolumeRecord;
use super::sys::MountOp;
use super::{HostPathType, MountConfig, RuntimeError, SandboxConfig, VolumeConfig, VolumeSource};

/// Checks that `p` is relative and has no `..` (subPath, projected file paths).
fn safe_relative(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> RuntimeError {
    RuntimeError::io(format!("{what} {}", path.display()), e)
}

/// Prepares every volume of the pod under `pod_dir/volumes`.
pub(crate) fn prepare(
    pod_dir: &Path,
    cfg: &SandboxConfig,
) -> Result<Vec<VolumeRecord>, RuntimeError> {
    cfg.volumes
        .iter()
        .map(|v| prepare_one(pod_dir, v))
        .collect()
}

fn prepare_one(pod_dir: &Path, v: &VolumeConfig) -> Result<VolumeRecord, RuntimeError> {
    let local = pod_dir.join("volumes").join(&v.name);
    match &v.source {
        VolumeSource::EmptyDir { memory } => {
            std::fs::create_dir_all(&local).map_err(|e| io_err("create", &local, e))?;
            // emptyDir is world-writable, as the kubelet makes it.
            std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o777))
                .map_err(|e| io_err("chmod", &local, e))?;
            Ok(VolumeRecord {
                name: v.name.clone(),
                path: local,
                force_read_only: false,
                memory: *memory,
            })
        }
        VolumeSource::HostPath { path, kind } => {
            // Worded as the kubelet's FailedMount event.
            check_host_path(path, *kind).map_err(|e| {
                RuntimeError::Volume(format!(
                    "MountVolume.SetUp failed for volume {:?} : {e}",
                    v.name
                ))
            })?;
            Ok(VolumeRecord {
                name: v.name.clone(),
                path: path.clone(),
                force_read_only: false,
                memory: false,
            })
        }
        VolumeSource::Files {
            files,
            default_mode,
        } => {
            std::fs::create_dir_all(&local).map_err(|e| io_err("create", &local, e))?;
            for f in files {
                if !safe_relative(&f.path) {
                    return Err(RuntimeError::Volume(format!(
                        "volume {:?}: invalid file path {:?}: must be relative and may not contain '..'",
                        v.name, f.path
                    )));
                }
                let target = local.join(&f.path);
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
                }
                std::fs::write(&target, &f.data).map_err(|e| io_err("write", &target, e))?;
                let mode = if f.mode == 0 { *default_mode } else { f.mode };
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(|e| io_err("chmod", &target, e))?;
            }
            Ok(VolumeRecord {
                name: v.name.clone(),
                path: local,
                force_read_only: true,
                memory: false,
            })
        }
    }
}

/// The kubelet's hostPath type check (pkg/volume/hostpath/host_path.go), creating the
/// `…OrCreate` kinds.
fn check_host_path(path: &Path, kind: HostPathType) -> Result<(), RuntimeError> {
    let meta = std::fs::metadata(path);
    let fail = |what: &str| {
        RuntimeError::Volume(format!(
            "hostPath type check failed: {} is not a {what}",
            path.display()
        ))
    };
    let missing = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    match kind {
        // containerd creates a missing bind source as a directory (0755) for an untyped hostPath.
        HostPathType::Unset => match meta {
            Err(e) if missing(&e) => std::fs::create_dir_all(path)
                .and_then(|()| {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                })
                .map_err(|e| io_err("create", path, e)),
            _ => Ok(()),
        },
        HostPathType::DirectoryOrCreate => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(fail("directory")),
            Err(e) if missing(&e) => {
                std::fs::create_dir_all(path).map_err(|e| io_err("create", path, e))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| io_err("chmod", path, e))
            }
            Err(e) => Err(io_err("stat", path, e)),
        },
        HostPathType::FileOrCreate => match meta {
            Ok(m) if !m.is_dir() => Ok(()),
            Ok(_) => Err(fail("file")),
            Err(e) if missing(&e) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(|_| ())
                .and_then(|()| {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                })
                .map_err(|e| io_err("create", path, e)),
            Err(e) => Err(io_err("stat", path, e)),
        },
        _ => {
            let ft = meta.ok().map(|m| m.file_type());
            // A missing path fails the same check (upstream `checkTypeInternal`).
            let is = |f: fn(&std::fs::FileType) -> bool| ft.as_ref().is_some_and(f);
            let (ok, what) = match kind {
                HostPathType::Directory => (is(std::fs::FileType::is_dir), "directory"),
                HostPathType::File => (is(std::fs::FileType::is_file), "file"),
                HostPathType::Socket => (is(FileTypeExt::is_socket), "socket file"),
                HostPathType::CharDevice => (is(FileTypeExt::is_char_device), "character device"),
                HostPathType::BlockDevice => (is(FileTypeExt::is_block_device), "block device"),
                _ => (true, ""),
            };
            if ok { Ok(()) } else { Err(fail(what)) }
        }
    }
}

/// The kubelet's managed `/etc/hosts` (pkg/kubelet/kubelet_pods.go `managedHostsFileContent`,
/// `nodeHostsFileContent` for host-network pods). Not yet: the `<hostname>.<subdomain>…` form
/// for pods with `spec.subdomain` (the sandbox config carries no domain).
pub(crate) fn hosts_file(cfg: &SandboxConfig, pod_ip: &str) -> String {
    let mut s = String::new();
    if cfg.host_network {
        s.push_str("# Kubernetes-managed hosts file (host network).\n");
        s.push_str(&std::fs::read_to_string("/etc/hosts").unwrap_or_default());
    } else {
        s.push_str("# Kubernetes-managed hosts file.\n");
        s.push_str("127.0.0.1\tlocalhost\n");
        s.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
        s.push_str("fe00::0\tip6-localnet\n");
        s.push_str("fe00::0\tip6-mcastprefix\n");
        s.push_str("fe00::1\tip6-allnodes\n");
        s.push_str("fe00::2\tip6-allrouters\n");
        s.push_str(&format!("{pod_ip}\t{}\n", cfg.hostname));
    }
    if !cfg.extra_hosts.is_empty() {
        s.push_str("\n# Entries added by HostAliases.\n");
        // One line per hostname (upstream `hostsEntriesFromHostAliases`).
        for (ip, names) in &cfg.extra_hosts {
            for name in names {
                s.push_str(&format!("{ip}\t{name}\n"));
            }
        }
    }
    s
}

/// The pod's hostname: the node's for `hostNetwork` pods (they share its UTS namespace), else
/// the configured one.
pub(crate) fn pod_hostname(cfg: &SandboxConfig) -> String {
    if cfg.host_network {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| cfg.hostname.clone())
    } else {
        cfg.hostname.clone()
    }
}

/// The pod's `/etc/resolv.conf` (a copy of the node's when no DNS settings are given).
pub(crate) fn resolv_conf(cfg: &SandboxConfig) -> String {
    let dns = &cfg.dns;
    if dns.nameservers.is_empty() && dns.searches.is_empty() && dns.options.is_empty() {
        return std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    }
    // containerd's order (parseDNSOptions): search, nameservers, options.
    let mut s = String::new();
    if !dns.searches.is_empty() {
        s.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for ns in &dns.nameservers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if !dns.options.is_empty() {
        s.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    s
}

/// Writes the pod's `/etc` files under `pod_dir/etc`; returns (node path, file in the pod).
pub(crate) fn write_etc_files(
    pod_dir: &Path,
    cfg: &SandboxConfig,
    pod_ip: &str,
) -> Result<Vec<(PathBuf, PathBuf)>, RuntimeError> {
    let etc = pod_dir.join("etc");
    std::fs::create_dir_all(&etc).map_err(|e| io_err("create", &etc, e))?;
    let files = [
        ("hosts", hosts_file(cfg, pod_ip)),
        ("hostname", format!("{}\n", pod_hostname(cfg))),
        ("resolv.conf", resolv_conf(cfg)),
    ];
    let mut out = Vec::new();
    for (name, content) in files {
        let path = etc.join(name);
        std::fs::write(&path, content).map_err(|e| io_err("write", &path, e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| io_err("chmod", &path, e))?;
        out.push((path, Path::new("/etc").join(name)));
    }
    Ok(out)
}

/// A path as a `CString` (paths with NUL bytes are rejected).
pub(crate) fn cstr(p: &Path) -> Result<CString, RuntimeError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| RuntimeError::Volume(format!("invalid path {:?}", p.display())))
}

/// The mount operations for a container's private mount namespace, and the mount points that
/// had to be created on the node (to be removed when the sandbox stops).
#[derive(Debug, Default)]
pub(crate) struct MountPlan {
    pub(crate) ops: Vec<MountOp>,
    /// (mount op index, description) to name a failing mount.
    pub(crate) labels: Vec<(usize, String)>,
    pub(crate) created: Vec<PathBuf>,
}

/// Plans a container's mounts: a private `/tmp`, then each `volumeMounts` entry.
pub(crate) fn plan_mounts(
    volumes: &[VolumeRecord],
    mounts: &[MountConfig],
) -> Result<MountPlan, RuntimeError> {
    let mut plan = MountPlan::default();
    plan.ops.push(MountOp::MakePrivate);
    plan.labels.push((0, "make / private".into()));
    plan.ops.push(MountOp::Tmpfs {
        dst: CString::from(c"/tmp"),
        opts: CString::from(c"mode=1777"),
    });
    plan.labels.push((1, "mount a private /tmp".into()));
    for m in mounts {
        let vol = volumes
            .iter()
            .find(|v| v.name == m.volume)
            .ok_or_else(|| RuntimeError::UnknownVolume(m.volume.clone()))?;
        if !m.mount_path.is_absolute() {
            return Err(RuntimeError::Volume(format!(
                "mount path {:?} must be absolute",
                m.mount_path.display()
            )));
        }
        let mut src = vol.path.clone();
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if !safe_relative(sub) {
                return Err(RuntimeError::Volume(format!(
                    "subPath {sub:?} must be a relative path without '..'"
                )));
            }
            src = src.join(sub);
            // The kubelet creates a missing subPath as a directory.
            if !vol.memory && std::fs::symlink_metadata(&src).is_err() {
                std::fs::create_dir_all(&src).map_err(|e| io_err("create subPath", &src, e))?;
            }
        }
        let is_file = std::fs::metadata(&src).is_ok_and(|m| !m.is_dir());
        let dst = &m.mount_path;
        if dst.starts_with("/tmp") {
            // Inside the private /tmp: create the mount point there, after the tmpfs.
            let mut acc = PathBuf::from("/tmp");
            let rel = dst.strip_prefix("/tmp").unwrap_or(Path::new(""));
            let comps: Vec<_> = rel.components().collect();
            for (i, c) in comps.iter().enumerate() {
                acc.push(c);
                let path = cstr(&acc)?;
                if is_file && i + 1 == comps.len() {
                    plan.ops.push(MountOp::Touch { path });
                } else {
                    plan.ops.push(MountOp::Mkdir { path });
                }
                plan.labels.push((
                    plan.ops.len() - 1,
                    format!("create mount point {}", acc.display()),
                ));
            }
        } else if std::fs::symlink_metadata(dst).is_err() {
            plan.created.push(create_mount_point(dst, is_file)?);
        }
        let read_only = m.read_only || vol.force_read_only;
        plan.ops.push(MountOp::Bind {
            src: cstr(&src)?,
            src_fd: std::sync::atomic::AtomicI32::new(-1),
            dst: cstr(dst)?,
            read_only,
        });
        plan.labels.push((
            plan.ops.len() - 1,
            format!("mount volume {:?} at {}", m.volume, dst.display()),
        ));
    }
    Ok(plan)
}

/// Creates a missing mount point on the node; returns the topmost path it created.
fn create_mount_point(dst: &Path, is_file: bool) -> Result<PathBuf, RuntimeError> {
    let mut top = dst.to_path_buf();
    while let Some(parent) = top.parent() {
        if parent.exists() {
            break;
        }
        top = parent.to_path_buf();
    }
    if is_file {
        if let Some(dir) = dst.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err("create mount point", dir, e))?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dst)
            .map_err(|e| io_err("create mount point", dst, e))?;
    } else {
        std::fs::create_dir_all(dst).map_err(|e| io_err("create mount point", dst, e))?;
    }
    Ok(top)
}

/// Removes mount points made by [`create_mount_point`] if nothing else was put there.
pub(crate) fn remove_mount_points(paths: &[PathBuf]) {
    for top in paths {
        remove_empty_tree(top);
    }
}

fn remove_empty_tree(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            if let Ok(entries) = std::fs::read_dir(p) {
                for e in entries.flatten() {
                    remove_empty_tree(&e.path());
                }
            }
            let _ = std::fs::remove_dir(p);
        }
        Ok(m) if m.len() == 0 => {
            let _ = std::fs::remove_file(p);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ProjectedFile;

    #[test]
    fn relative_paths_are_checked() {
        assert!(safe_relative("a/b"));
        assert!(!safe_relative("../a"));
        assert!(!safe_relative("/a"));
        assert!(!safe_relative("a/../../b"));
        assert!(!safe_relative(""));
    }

    #[test]
    fn host_path_types_as_upstream() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").expect("write");
        let err = check_host_path(&f, HostPathType::Directory).expect_err("file is no dir");
        assert_eq!(
            err.to_string(),
            format!(
                "hostPath type check failed: {} is not a directory",
                f.display()
            )
        );
        check_host_path(&f, HostPathType::File).expect("file");
        let d = dir.path().join("new/dir");
        check_host_path(&d, HostPathType::DirectoryOrCreate).expect("created");
        assert!(d.is_dir());
        let nf = dir.path().join("nf");
        check_host_path(&nf, HostPathType::FileOrCreate).expect("created");
        assert!(nf.is_file());
        let none = dir.path().join("none");
        assert_eq!(
            check_host_path(&none, HostPathType::Socket)
                .expect_err("missing")
                .to_string(),
            format!(
                "hostPath type check failed: {} is not a socket file",
                none.display()
            )
        );
        let untyped = dir.path().join("untyped/dir");
        check_host_path(&untyped, HostPathType::Unset).expect("created like containerd");
        assert!(untyped.is_dir());
    }

    #[test]
    fn files_volume_written_with_modes_and_forced_read_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = SandboxConfig {
            volumes: vec![VolumeConfig {
                name: "cfg".into(),
                source: VolumeSource::Files {
                    files: vec![
                        ProjectedFile {
                            path: "a/key".into(),
                            data: b"v".to_vec(),
                            mode: 0o600,
                        },
                        ProjectedFile {
                            path: "b".into(),
                            data: b"w".to_vec(),
                            mode: 0,
                        },
                    ],
                    default_mode: 0o644,
                },
            }],
            ..Default::default()
        };
        let vols = prepare(dir.path(), &cfg).expect("prepared");
        assert!(vols[0].force_read_only);
        let key = vols[0].path.join("a/key");
        assert_eq!(std::fs::read(&key).expect("read"), b"v");
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let bad = SandboxConfig {
            volumes: vec![VolumeConfig {
                name: "x".into(),
                source: VolumeSource::Files {
                    files: vec![ProjectedFile {
                        path: "../evil".into(),
                        data: vec![],
                        mode: 0,
                    }],
                    default_mode: 0o644,
                },
            }],
            ..Default::default()
        };
        assert!(prepare(dir.path(), &bad).is_err());
    }

    #[test]
    fn resolv_conf_in_containerd_order() {
        let cfg = SandboxConfig {
            dns: crate::runtime::DnsConfig {
                nameservers: vec!["10.96.0.10".into()],
                searches: vec![
                    "default.svc.cluster.local".into(),
                    "svc.cluster.local".into(),
                ],
                options: vec!["ndots:5".into()],
            },
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&cfg),
            "search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
    }

    #[test]
    fn hosts_file_names_the_pod_and_aliases() {
        let cfg = SandboxConfig {
            hostname: "web-0".into(),
            extra_hosts: vec![("10.1.2.3".into(), vec!["foo".into(), "bar".into()])],
            ..Default::default()
        };
        let h = hosts_file(&cfg, "10.244.0.7");
        assert!(h.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.244.0.7\tweb-0\n"));
        assert!(h.ends_with("# Entries added by HostAliases.\n10.1.2.3\tfoo\n10.1.2.3\tbar\n"));
    }

    #[test]
    fn mount_plan_creates_and_removes_missing_mount_points() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vol = VolumeRecord {
            name: "data".into(),
            path: dir.path().join("vol"),
            force_read_only: true,
            memory: false,
        };
        std::fs::create_dir_all(&vol.path).expect("vol");
        let top = PathBuf::from(format!("/paddock-unit-{}", std::process::id()));
        let target = top.join("deep/data");
        let under_tmp = dir.path().join("in-tmp/x");
        let mount = |p: &Path| MountConfig {
            volume: "data".into(),
            mount_path: p.to_path_buf(),
            sub_path: None,
            read_only: false,
        };
        let plan = plan_mounts(
            std::slice::from_ref(&vol),
            &[mount(&target), mount(&under_tmp)],
        )
        .expect("plan");
        assert!(target.is_dir());
        assert_eq!(plan.created, vec![top.clone()]);
        assert!(matches!(
            plan.ops.last(),
            Some(MountOp::Bind {
                read_only: true,
                ..
            })
        ));
        // Under /tmp the mount point is made inside the container's private /tmp instead.
        assert!(!under_tmp.exists());
        assert!(plan.ops.iter().any(|op| matches!(op, MountOp::Mkdir { path } if path.as_bytes() == under_tmp.as_os_str().as_bytes())));
        remove_mount_points(&plan.created);
        assert!(!top.exists());
        let err = plan_mounts(
            &[vol],
            &[MountConfig {
                volume: "nope".into(),
                ..Default::default()
            }],
        )
        .expect_err("unknown volume");
        assert_eq!(err.to_string(), "volume \"nope\" not found in the pod");
    }
}
