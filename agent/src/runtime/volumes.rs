//! Volumes and the pod's `/etc` files: preparing each volume's content on the node at sandbox
//! creation ([`prepare`]), writing `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` for the
//! pod ([`write_etc_files`]), and turning a container's `volumeMounts` into the bind mounts its
//! mount namespace gets ([`plan_mounts`]).
//!
//! Mount points missing on the node are created before the container starts and recorded, so
//! stopping the sandbox removes them again; those under `/tmp` are made inside the container's
//! private `/tmp` instead.
//!
//! configMap, secret, downwardAPI and projected content is written in the kubelet's
//! `AtomicWriter` layout ([`write_atomic_payload`]); Secret, downwardAPI and projected volumes on
//! a tmpfs mounted on the node ([`unmount_volumes`] takes it down). A `subPath` is never joined
//! to a path here: the container's child opens it beneath the volume (`super::sys::open_sub_path`)
//! and mounts that very inode; [`plan_mounts`] only checks it beforehand where the agent can see
//! the volume's content, to give the kubelet's error early and the mount point's kind.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::state::VolumeRecord;
use super::sys::{MountOp, SubPath};
use super::{
    HostPathType, MountConfig, ProjectedFile, RuntimeError, SandboxConfig, VolumeConfig,
    VolumeSource,
};

/// Checks that `p` is relative and has no `..` (a subPath, before it is resolved).
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

/// Prepares every volume of the pod under `pod_dir/volumes`; `can_mount`: the runtime can
/// mount (root), so memory-backed volumes get their tmpfs.
pub(crate) fn prepare(
    pod_dir: &Path,
    cfg: &SandboxConfig,
    can_mount: bool,
) -> Result<Vec<VolumeRecord>, RuntimeError> {
    cfg.volumes
        .iter()
        .map(|v| prepare_one(pod_dir, v, can_mount))
        .collect()
}

fn prepare_one(
    pod_dir: &Path,
    v: &VolumeConfig,
    can_mount: bool,
) -> Result<VolumeRecord, RuntimeError> {
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
                tmpfs: false,
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
                tmpfs: false,
            })
        }
        VolumeSource::Persistent {
            path,
            kind,
            read_only,
            local_path_root,
        } => {
            let fail = |e: String| {
                RuntimeError::Volume(format!(
                    "MountVolume.SetUp failed for volume {:?} : {e}",
                    v.name
                ))
            };
            match local_path_root {
                Some(root) => {
                    crate::storage::make_volume_dir(root, path).map_err(|e| fail(e.to_string()))?
                }
                None => check_host_path(path, *kind).map_err(|e| fail(e.to_string()))?,
            }
            Ok(VolumeRecord {
                name: v.name.clone(),
                path: path.clone(),
                force_read_only: *read_only,
                memory: false,
                tmpfs: false,
            })
        }
        VolumeSource::Files { files, memory, .. } => {
            std::fs::create_dir_all(&local).map_err(|e| io_err("create", &local, e))?;
            // As the emptyDir the kubelet wraps these in: 0777 on disk, a tmpfs (1777) for
            // Secrets and the downward API, so their content never lands on the node's disk.
            std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o777))
                .map_err(|e| io_err("chmod", &local, e))?;
            let mut tmpfs = false;
            if *memory {
                if !can_mount {
                    // Nothing could show it to a container (host mode mounts no volumes), and
                    // a Secret must not be written to disk instead.
                    tracing::warn!(volume = %v.name, "host mode: the volume is not written (it needs a tmpfs, so root)");
                    return Ok(VolumeRecord {
                        name: v.name.clone(),
                        path: local,
                        force_read_only: true,
                        memory: false,
                        tmpfs: false,
                    });
                }
                nix::mount::mount(
                    Some(c"tmpfs"),
                    &local,
                    Some(c"tmpfs"),
                    nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
                    None::<&CStr>,
                )
                .map_err(|e| io_err("mount a tmpfs on", &local, e.into()))?;
                tmpfs = true;
            }
            write_atomic_payload(&local, files).map_err(|e| {
                RuntimeError::Volume(format!(
                    "MountVolume.SetUp failed for volume {:?} : {e}",
                    v.name
                ))
            })?;
            Ok(VolumeRecord {
                name: v.name.clone(),
                path: local,
                force_read_only: true,
                memory: false,
                tmpfs,
            })
        }
    }
}

/// The kubelet's `AtomicWriter` layout: the files in a timestamped directory
/// (`..2006_01_02_15_04_05.<random>`, 0755), `..data` a symlink to it, and each top-level name a
/// symlink into `..data` — so a later update can swap `..data` in one rename. File modes are
/// `items[].mode` or `defaultMode`, whatever the umask.
fn write_atomic_payload(dir: &Path, files: &[ProjectedFile]) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    let mut top: Vec<String> = Vec::new();
    for f in files {
        validate_payload_path(&f.path)?;
        let first = f
            .path
            .split('/')
            .find(|c| !c.is_empty() && *c != ".")
            .unwrap_or("");
        if !top.iter().any(|t| t == first) {
            top.push(first.to_string());
        }
    }
    let ts_dir = loop {
        let name = format!(
            "{}{}",
            k8s_openapi::jiff::Timestamp::now().strftime("..%Y_%m_%d_%H_%M_%S."),
            uuid::Uuid::new_v4().as_u128() as u32
        );
        match std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.join(&name))
        {
            Ok(()) => break name,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("unable to create new temp directory: {e}")),
        }
    };
    let ts_path = dir.join(&ts_dir);
    std::fs::set_permissions(&ts_path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("unable to set mode on new temp directory: {e}"))?;
    for f in files {
        let target = ts_path.join(&f.path);
        if let Some(parent) = target.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|e| format!("unable to create directory {}: {e}", parent.display()))?;
        }
        let mode = f.mode & 0o7777;
        write_mode(&target, &f.data, mode).map_err(|e| {
            format!(
                "unable to write file {} with mode {mode:o}: {e}",
                target.display()
            )
        })?;
    }
    let err = |e: std::io::Error| format!("unable to create symlinks in {}: {e}", dir.display());
    let old = std::fs::read_link(dir.join("..data")).ok();
    let _ = std::fs::remove_file(dir.join("..data_tmp"));
    std::os::unix::fs::symlink(&ts_dir, dir.join("..data_tmp")).map_err(err)?;
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).map_err(err)?;
    for name in &top {
        match std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name)) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            r => r.map_err(err)?,
        }
    }
    // An update: the previous payload, and names it had that the new one has not, go.
    if let Some(old) = old.filter(|o| *o != Path::new(&ts_dir)) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with("..") && !top.contains(&name) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let old = dir.join(old);
        if old.parent() == Some(dir) {
            let _ = std::fs::remove_dir_all(old);
        }
    }
    Ok(())
}

/// Rewrites a written Files volume with `files` unless it already holds exactly them (the
/// atomic writer's `shouldWritePayload`); a volume never written (host mode) is left alone.
pub(crate) fn update_atomic_payload(dir: &Path, files: &[ProjectedFile]) -> Result<(), String> {
    let data = dir.join("..data");
    if std::fs::symlink_metadata(&data).is_err() {
        return Ok(());
    }
    let same = files.iter().all(|f| {
        let p = data.join(&f.path);
        std::fs::read(&p).is_ok_and(|d| d == f.data)
            && std::fs::metadata(&p)
                .is_ok_and(|m| m.permissions().mode() & 0o7777 == f.mode & 0o7777)
    });
    if same {
        return Ok(());
    }
    write_atomic_payload(dir, files)
}

/// Writes `data` to a new file `path` created with `mode` (not widened by the umask), then
/// sets exactly `mode` (the umask may have narrowed it).
fn write_mode(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(data)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// The atomic writer's own check of a payload path (`validatePath`): relative, no `..`
/// element, not starting with `..` (its own names), names of at most 255 bytes, 4096 in all.
fn validate_payload_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err(format!("invalid path: must not be empty: {p:?}"));
    }
    if p.starts_with('/') {
        return Err(format!("invalid path: must be relative path: {p}"));
    }
    if p.len() > 4096 {
        return Err("invalid path: must be less than or equal to 4096 characters".into());
    }
    let items: Vec<&str> = p.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(format!("invalid path: must not contain '..': {p}"));
        }
        if item.len() > 255 {
            return Err(
                "invalid path: filenames must be less than or equal to 255 characters".into(),
            );
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(format!("invalid path: must not start with '..': {p}"));
    }
    Ok(())
}

/// Unmounts the tmpfs of every volume of a pod (`pod_dir/volumes/*`), before the directory is
/// removed: whatever was recorded, a sandbox that failed half-way may have mounted some.
pub(crate) fn unmount_volumes(pod_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(pod_dir.join("volumes")) else {
        return;
    };
    for e in entries.flatten() {
        // Not a mount point: EINVAL, nothing to do.
        let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
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
    /// (mount op index, volume, container) of the binds with a subPath, to word their
    /// failures as the kubelet does.
    pub(crate) sub_paths: Vec<(usize, String, String)>,
    pub(crate) created: Vec<PathBuf>,
}

/// Directories that are a fresh tmpfs in every container's mount namespace: mount points
/// under them are made there, never on the node.
const PRIVATE_ROOTS: [&str; 2] = ["/tmp", "/dev"];

/// The device nodes a container runtime puts in a container's `/dev` (the OCI default set),
/// bound from the node's.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The links a container runtime makes in `/dev` (runc's `defaultSymlinks`).
const DEV_LINKS: [(&str, &CStr); 4] = [
    ("fd", c"/proc/self/fd"),
    ("stdin", c"/proc/self/fd/0"),
    ("stdout", c"/proc/self/fd/1"),
    ("stderr", c"/proc/self/fd/2"),
];

impl MountPlan {
    fn push(&mut self, op: MountOp, label: String) {
        self.ops.push(op);
        self.labels.push((self.ops.len() - 1, label));
    }

    fn bind(
        &mut self,
        src: &Path,
        dst: &Path,
        read_only: bool,
        label: String,
    ) -> Result<(), RuntimeError> {
        self.bind_sub(src, None, dst, read_only, label)
    }

    /// A bind of `src`, or of `sub_path` resolved beneath it in the child.
    fn bind_sub(
        &mut self,
        src: &Path,
        sub_path: Option<SubPath>,
        dst: &Path,
        read_only: bool,
        label: String,
    ) -> Result<(), RuntimeError> {
        self.push(
            MountOp::Bind {
                src: cstr(src)?,
                sub_path,
                src_fd: std::sync::atomic::AtomicI32::new(-1),
                dst: cstr(dst)?,
                read_only,
            },
            label,
        );
        Ok(())
    }

    /// Creates `dst` (a file when `is_file`, else a directory) and its missing parents below
    /// `root`, inside the container's mount namespace.
    fn create_inside(
        &mut self,
        root: &Path,
        dst: &Path,
        is_file: bool,
    ) -> Result<(), RuntimeError> {
        let mut acc = root.to_path_buf();
        let rel = dst.strip_prefix(root).unwrap_or(Path::new(""));
        let comps: Vec<_> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            acc.push(c);
            let path = cstr(&acc)?;
            let op = if is_file && i + 1 == comps.len() {
                MountOp::Touch { path }
            } else {
                MountOp::Mkdir { path }
            };
            self.push(op, format!("create mount point {}", acc.display()));
        }
        Ok(())
    }

    /// A private `/dev` as a container runtime makes it: a tmpfs with the default device nodes
    /// (bound from the node), the node's `/dev/pts` and `/dev/ptmx` (so `kubectl exec -t`
    /// terminals resolve), the pod's `/dev/shm`, a `/dev/mqueue` of the pod's IPC namespace and
    /// the standard links.
    fn private_dev(&mut self) -> Result<(), RuntimeError> {
        let dev = Path::new("/dev");
        self.push(
            MountOp::Tmpfs {
                dst: CString::from(c"/dev"),
                opts: CString::from(c"mode=755,size=65536k"),
            },
            "mount a private /dev".into(),
        );
        for name in DEVICES.iter().chain(&["ptmx"]) {
            let node = dev.join(name);
            if std::fs::metadata(&node).is_ok() {
                self.create_inside(dev, &node, true)?;
                self.bind(
                    &node,
                    &node,
                    false,
                    format!("mount device {}", node.display()),
                )?;
            }
        }
        for name in ["pts", "shm"] {
            let dir = dev.join(name);
            if dir.is_dir() {
                self.create_inside(dev, &dir, false)?;
                self.bind(&dir, &dir, false, format!("mount {}", dir.display()))?;
            }
        }
        if std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.contains("\tmqueue\n")) {
            let dir = dev.join("mqueue");
            self.create_inside(dev, &dir, false)?;
            self.push(
                MountOp::Mqueue { dst: cstr(&dir)? },
                "mount /dev/mqueue".into(),
            );
        }
        let mut links: Vec<(&str, &CStr)> = DEV_LINKS.to_vec();
        if Path::new("/proc/kcore").exists() {
            links.push(("core", c"/proc/kcore"));
        }
        for (name, target) in links {
            let path = dev.join(name);
            self.push(
                MountOp::Symlink {
                    target: CString::from(target),
                    path: cstr(&path)?,
                },
                format!("create {}", path.display()),
            );
        }
        Ok(())
    }
}

/// `terminationMessagePath` as a container path: absolute and clean (upstream
/// `volumeutil.MakeAbsolutePath`, i.e. `filepath.Clean("/" + path)` on Linux).
pub(crate) fn absolute_clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Plans a container's mounts: a private `/tmp` and `/dev`, each `volumeMounts` entry, then the
/// termination-log file `(node file, container path)` if there is one (last, as upstream's
/// `makeMounts` appends it: a path inside a volume is made inside that volume).
pub(crate) fn plan_mounts(
    volumes: &[VolumeRecord],
    container: &str,
    mounts: &[MountConfig],
    termination: Option<(&Path, &Path)>,
) -> Result<MountPlan, RuntimeError> {
    let mut plan = MountPlan::default();
    plan.push(MountOp::MakePrivate, "make / private".into());
    plan.push(
        MountOp::Tmpfs {
            dst: CString::from(c"/tmp"),
            opts: CString::from(c"mode=1777"),
        },
        "mount a private /tmp".into(),
    );
    plan.private_dev()?;
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
        let sub_path = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => Some(
                SubPath::new(sub)
                    .filter(|_| safe_relative(sub))
                    .ok_or_else(|| RuntimeError::SubPathOpen {
                        volume: m.volume.clone(),
                        container: container.to_string(),
                    })?,
            ),
            None => None,
        };
        let is_file = match &sub_path {
            // What the subPath is decides the mount point's kind; what the child opens is what
            // gets mounted. A memory volume's content is only visible in the pod (a tmpfs
            // there): its subPaths are taken for directories here, and checked there.
            Some(sub) if !vol.memory => check_sub_path(&vol.path, sub, &m.volume, container)?,
            Some(_) => false,
            None => std::fs::metadata(&vol.path).is_ok_and(|m| !m.is_dir()),
        };
        let dst = &m.mount_path;
        if let Some(root) = PRIVATE_ROOTS
            .iter()
            .map(Path::new)
            .find(|r| dst.starts_with(r))
        {
            // Inside a private tmpfs: create the mount point there, after the tmpfs.
            plan.create_inside(root, dst, is_file)?;
        } else if std::fs::symlink_metadata(dst).is_err() {
            plan.created.push(create_mount_point(dst, is_file)?);
        }
        let read_only = m.read_only || vol.force_read_only;
        let label = format!("mount volume {:?} at {}", m.volume, dst.display());
        if sub_path.is_some() {
            plan.sub_paths
                .push((plan.ops.len(), m.volume.clone(), container.to_string()));
        }
        plan.bind_sub(&vol.path, sub_path, dst, read_only, label)?;
    }
    if let Some((file, path)) = termination {
        let dst = absolute_clean(path);
        // The deepest private tmpfs or volume the file lands in gets the mount point.
        let inside = PRIVATE_ROOTS
            .iter()
            .map(Path::new)
            .chain(mounts.iter().map(|m| m.mount_path.as_path()))
            .filter(|r| dst.starts_with(r) && dst != *r)
            .max_by_key(|r| r.components().count());
        match inside {
            Some(root) => plan.create_inside(root, &dst, true)?,
            None if std::fs::symlink_metadata(&dst).is_err() => {
                plan.created.push(create_mount_point(&dst, true)?);
            }
            None => {}
        }
        plan.bind(
            file,
            &dst,
            false,
            format!("mount the termination log at {}", dst.display()),
        )?;
    }
    Ok(plan)
}

/// Resolves a subPath in the agent (for a volume whose content the agent sees) like the child
/// will: whether it is a file (the mount point must be one), or the kubelet's error when it
/// leads out of the volume. A missing subPath is a directory the child makes.
fn check_sub_path(
    root: &Path,
    sub: &SubPath,
    volume: &str,
    container: &str,
) -> Result<bool, RuntimeError> {
    let fail = |e: nix::errno::Errno| {
        tracing::warn!(%volume, %container, root = %root.display(), error = %e, "subPath refused");
        RuntimeError::SubPathOpen {
            volume: volume.to_string(),
            container: container.to_string(),
        }
    };
    let root_fd = nix::fcntl::open(
        root,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(fail)?;
    match super::sys::open_beneath(&root_fd, &sub.path, nix::fcntl::OFlag::O_PATH) {
        Ok(fd) => Ok(nix::sys::stat::fstat(&fd)
            .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFDIR)),
        Err(nix::errno::Errno::ENOENT) => Ok(false),
        Err(e) => Err(fail(e)),
    }
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
                    memory: false,
                },
            }],
            ..Default::default()
        };
        let vols = prepare(dir.path(), &cfg, false).expect("prepared");
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
                    memory: false,
                },
            }],
            ..Default::default()
        };
        assert!(prepare(dir.path(), &bad, false).is_err());
    }

    #[test]
    fn files_are_laid_out_as_the_atomic_writer_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = |path: &str, mode| ProjectedFile {
            path: path.into(),
            data: vec![0xff, 0, b'x'],
            mode,
        };
        write_atomic_payload(dir.path(), &[f("a/key", 0o400), f("b", 0), f("a/c", 0o644)])
            .expect("written");
        let data = std::fs::read_link(dir.path().join("..data")).expect("..data");
        let ts = data.to_str().expect("utf-8");
        assert!(ts.starts_with("..20") && ts.len() > 22, "{ts}");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode(&dir.path().join(ts)), 0o755);
        assert_eq!(
            std::fs::read_link(dir.path().join("a")).expect("a"),
            Path::new("..data/a")
        );
        assert_eq!(mode(&dir.path().join("a/key")), 0o400);
        assert_eq!(mode(&dir.path().join("b")), 0, "an explicit 0 stays 0");
        assert_eq!(
            std::fs::read(dir.path().join("a/c")).expect("c"),
            [0xff, 0, b'x']
        );
        for bad in ["..x", "/abs", "a/../b", ""] {
            assert!(
                write_atomic_payload(dir.path(), &[f(bad, 0o644)]).is_err(),
                "{bad}"
            );
        }
    }

    /// A plain volume `data` at `dir/vol`.
    fn data_volume(dir: &Path) -> VolumeRecord {
        VolumeRecord {
            name: "data".into(),
            path: dir.join("vol"),
            force_read_only: false,
            memory: false,
            tmpfs: false,
        }
    }

    #[test]
    fn a_sub_path_out_of_its_volume_is_the_kubelets_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vol = data_volume(dir.path());
        std::fs::create_dir_all(&vol.path).expect("vol");
        std::os::unix::fs::symlink("/etc", vol.path.join("link")).expect("link");
        std::fs::write(vol.path.join("file"), b"").expect("file");
        let mount = |sub: &str, at: &str| MountConfig {
            volume: "data".into(),
            mount_path: dir.path().join(at),
            sub_path: Some(sub.into()),
            read_only: false,
        };
        let err = plan_mounts(
            std::slice::from_ref(&vol),
            "app",
            &[mount("link", "m")],
            None,
        )
        .expect_err("escapes");
        assert_eq!(
            err.to_string(),
            "failed to prepare subPath for volumeMount \"data\" of container \"app\""
        );
        assert!(err.is_config_error());
        // A file subPath gets a file mount point; the child resolves it again and binds its fd.
        let plan = plan_mounts(
            std::slice::from_ref(&vol),
            "app",
            &[mount("file", "f")],
            None,
        )
        .expect("plan");
        // (Under /tmp: made as a file inside the container's private /tmp.)
        assert!(touches(&plan, &dir.path().join("f").display().to_string()));
        assert!(plan.ops.iter().any(|op| matches!(op, MountOp::Bind { sub_path: Some(s), .. } if s.path.as_c_str() == c"file")));
        assert_eq!(plan.sub_paths.len(), 1);
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
            tmpfs: false,
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
            "c",
            &[mount(&target), mount(&under_tmp)],
            None,
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
            "c",
            &[MountConfig {
                volume: "nope".into(),
                ..Default::default()
            }],
            None,
        )
        .expect_err("unknown volume");
        assert_eq!(err.to_string(), "volume \"nope\" not found in the pod");
    }

    fn touches(plan: &MountPlan, p: &str) -> bool {
        plan.ops
            .iter()
            .any(|op| matches!(op, MountOp::Touch { path } if path.as_bytes() == p.as_bytes()))
    }

    fn binds_to(plan: &MountPlan, p: &str) -> Vec<(String, bool)> {
        plan.ops
            .iter()
            .filter_map(|op| match op {
                MountOp::Bind {
                    src,
                    dst,
                    read_only,
                    ..
                } if dst.as_bytes() == p.as_bytes() => {
                    Some((src.to_string_lossy().into_owned(), *read_only))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn containers_get_a_private_dev_like_a_container_runtime_makes() {
        let plan = plan_mounts(&[], "c", &[], None).expect("plan");
        let tmpfs_at = plan
            .ops
            .iter()
            .position(|op| matches!(op, MountOp::Tmpfs { dst, .. } if dst.as_c_str() == c"/dev"));
        let tmpfs_at = tmpfs_at.expect("a /dev tmpfs");
        for dev in ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/tty"] {
            assert!(touches(&plan, dev), "{dev} mount point");
            assert_eq!(binds_to(&plan, dev), vec![(dev.to_string(), false)]);
        }
        assert_eq!(
            binds_to(&plan, "/dev/shm"),
            vec![("/dev/shm".to_string(), false)]
        );
        assert!(
            plan.ops
                .iter()
                .any(|op| matches!(op, MountOp::Symlink { target, path }
            if target.as_c_str() == c"/proc/self/fd" && path.as_c_str() == c"/dev/fd"))
        );
        // Every /dev entry comes after the tmpfs that holds it.
        let first_dev_entry = plan.ops.iter().position(
            |op| matches!(op, MountOp::Touch { path } if path.as_bytes().starts_with(b"/dev/")),
        );
        assert!(first_dev_entry > Some(tmpfs_at));
        // The node's /dev is not touched.
        assert!(plan.created.is_empty());
    }

    #[test]
    fn the_termination_log_is_mounted_last_and_its_mount_point_made_where_it_lands() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("term");
        std::fs::write(&file, b"").expect("file");
        let vol = data_volume(dir.path());
        std::fs::create_dir_all(&vol.path).expect("vol");
        let data = MountConfig {
            volume: "data".into(),
            mount_path: "/data".into(),
            ..Default::default()
        };
        let src = file.display().to_string();

        // The default path: made in the container's private /dev, bound read-write, last.
        let plan = plan_mounts(
            std::slice::from_ref(&vol),
            "c",
            std::slice::from_ref(&data),
            Some((&file, Path::new("/dev/termination-log"))),
        )
        .expect("plan");
        assert!(touches(&plan, "/dev/termination-log"));
        assert_eq!(
            binds_to(&plan, "/dev/termination-log"),
            vec![(src.clone(), false)]
        );
        assert!(
            matches!(plan.ops.last(), Some(MountOp::Bind { dst, .. }) if dst.as_c_str() == c"/dev/termination-log")
        );
        assert!(
            plan.labels
                .last()
                .is_some_and(|(i, l)| *i == plan.ops.len() - 1
                    && l == "mount the termination log at /dev/termination-log")
        );

        // Inside a volume: parents and file are made in the volume, after it is mounted.
        let plan = plan_mounts(
            std::slice::from_ref(&vol),
            "c",
            std::slice::from_ref(&data),
            Some((&file, Path::new("/data/logs/../msg/end"))),
        )
        .expect("plan");
        let vol_bind = plan
            .ops
            .iter()
            .position(|op| matches!(op, MountOp::Bind { dst, .. } if dst.as_c_str() == c"/data"));
        let mkdir = plan.ops.iter().position(
            |op| matches!(op, MountOp::Mkdir { path } if path.as_c_str() == c"/data/msg"),
        );
        assert!(vol_bind.is_some() && mkdir > vol_bind, "{:?}", plan.ops);
        assert!(touches(&plan, "/data/msg/end"));
        assert_eq!(binds_to(&plan, "/data/msg/end"), vec![(src.clone(), false)]);
        assert!(plan.created.is_empty());

        // Elsewhere and missing: a file mount point on the node, recorded for removal.
        let top = PathBuf::from(format!("/paddock-unit-term-{}", std::process::id()));
        let target = top.join("msg");
        let rel = target.strip_prefix("/").expect("absolute");
        let plan = plan_mounts(&[], "c", &[], Some((&file, rel))).expect("plan");
        assert!(target.is_file(), "relative paths are made absolute");
        assert_eq!(plan.created, vec![top.clone()]);
        assert_eq!(
            binds_to(&plan, &target.display().to_string()),
            vec![(src, false)]
        );
        remove_mount_points(&plan.created);
        assert!(!top.exists());
    }

    #[test]
    fn termination_paths_are_made_absolute_and_clean() {
        assert_eq!(absolute_clean(Path::new("dev/x")), PathBuf::from("/dev/x"));
        assert_eq!(
            absolute_clean(Path::new("/a/./b/../c")),
            PathBuf::from("/a/c")
        );
        assert_eq!(absolute_clean(Path::new("/../../x")), PathBuf::from("/x"));
    }
}
