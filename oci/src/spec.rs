//! The OCI runtime spec (`config.json`) of one Kubernetes container, built as containerd's CRI
//! plugin builds it (`buildLinuxSpec` in `internal/cri/server/container_create.go`, on top of
//! `populateDefaultUnixSpec` in `pkg/oci/spec.go`, with the options of `internal/cri/opts`).
//!
//! Start at [`build`]: its steps follow containerd's option order, which matters (capabilities
//! are set from `capabilities.add/drop` before `privileged` replaces them with all; the seccomp
//! profile is computed from the final bounding set). What the kubelet decides before CRI (the
//! masked and read-only `/proc` paths per `procMount`, the seccomp profile per pod and
//! container, the user from the image) is the caller's, given in [`ContainerSpec`].
//!
//! Deliberate differences: an unknown capability name is refused with an error naming it
//! (containerd passes it on and runc ignores it with a warning); no SELinux/AppArmor labels;
//! no user namespaces.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxNamespace, LinuxNamespaceType, LinuxResources, LinuxSeccomp, Mount, Process, Root, Spec,
    User,
};

use crate::Error;

/// The `PATH` containerd gives a process whose environment sets none (`defaultUnixEnv`).
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// containerd's default capability set (`defaultUnixCaps`), in its order.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The paths the kubelet masks for `procMount: Default` (`securitycontext.DefaultMaskedPaths`);
/// containerd's CRI plugin applies what the kubelet sends, and nothing for a privileged container.
pub const DEFAULT_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths the kubelet makes read-only for `procMount: Default`
/// (`securitycontext.DefaultReadonlyPaths`).
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Everything [`build`] needs for one container (CRI's `ContainerConfig` after the kubelet).
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// The process's argv (`command`/`args` already combined with the image's
    /// ENTRYPOINT/CMD by the caller); must not be empty.
    pub args: Vec<String>,
    /// The image's `Env` (`K=V`), applied before [`ContainerSpec::env`].
    pub image_env: Vec<String>,
    /// The container's env (`K=V`, after `$(VAR)` expansion), overriding the image's.
    pub env: Vec<String>,
    /// `workingDir`, else the image's `WorkingDir`, else `/`.
    pub cwd: Option<String>,
    /// The pod's hostname (the `HOSTNAME` variable).
    pub hostname: String,
    /// `tty`.
    pub tty: bool,
    /// The user: uid, gid and the additional gids resolved from the image's `/etc/group`
    /// (containerd lists the primary gid among them).
    pub user: UserSpec,
    /// `supplementalGroups` (pod), merged into the additional gids as containerd does (a sorted
    /// union).
    pub supplemental_groups: Vec<u32>,
    /// The container's security settings.
    pub security: Security,
    /// Which namespaces the container joins.
    pub namespaces: Namespaces,
    /// Bind mounts (volumes, `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, the
    /// termination-log file), in any order: they are sorted by depth as containerd does.
    pub mounts: Vec<BindMount>,
    /// `linux.cgroupsPath` (from [`crate::cgroups::Layout::container_path`]).
    pub cgroups_path: String,
    /// The container's resources.
    pub resources: crate::cgroups::ContainerResources,
    /// `oomScoreAdj` as the kubelet computes it (`None`: unset).
    pub oom_score_adj: Option<i32>,
    /// Whether the node runs cgroup v2 only: containerd then gives an unprivileged container its
    /// own cgroup namespace.
    pub cgroup_v2: bool,
}

/// The process's user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSpec {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Additional gids.
    pub additional_gids: Vec<u32>,
}

/// A container's `securityContext` as CRI carries it.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// `privileged`: all capabilities, the host's devices, no masked or read-only paths,
    /// writable `/sys`, no seccomp.
    pub privileged: bool,
    /// `capabilities.add` (without the `CAP_` prefix; `ALL` allowed).
    pub caps_add: Vec<String>,
    /// `capabilities.drop` (as above).
    pub caps_drop: Vec<String>,
    /// `allowPrivilegeEscalation: false` → `noNewPrivileges` (the kubelet sends `NoNewPrivs`
    /// when it is false, or unset with `runAsNonRoot`… as it decides; the caller passes it).
    pub no_new_privs: bool,
    /// `readOnlyRootFilesystem`.
    pub read_only_rootfs: bool,
    /// The masked paths the kubelet sends ([`DEFAULT_MASKED_PATHS`] for `procMount: Default`,
    /// empty for `Unmasked`); `None` means none.
    pub masked_paths: Option<Vec<String>>,
    /// The read-only paths ([`DEFAULT_READONLY_PATHS`] for `procMount: Default`).
    pub readonly_paths: Option<Vec<String>>,
    /// The seccomp profile.
    pub seccomp: Seccomp,
    /// The AppArmor profile to run under (a `Localhost` profile's name; the runtime fails the
    /// start if the host has not loaded it).
    pub apparmor_profile: Option<String>,
}

impl Security {
    /// The settings of a container with no `securityContext` under `procMount: Default`.
    pub fn kubelet_default() -> Self {
        Self {
            masked_paths: Some(DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect()),
            readonly_paths: Some(
                DEFAULT_READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            ..Self::default()
        }
    }
}

/// `seccompProfile`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seccomp {
    /// `Unconfined` (also what the kubelet sends when nothing is set).
    #[default]
    Unconfined,
    /// `RuntimeDefault`: containerd's default profile ([`crate::seccomp::default_profile`]).
    RuntimeDefault,
    /// `Localhost`: an OCI seccomp JSON file (`localhostProfile`, relative to `root`).
    Localhost {
        /// The kubelet's seccomp directory (`<kubelet root>/seccomp`).
        root: PathBuf,
        /// `localhostProfile`: relative, without `..`.
        profile: String,
    },
}

/// Where one namespace of the container comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NsMode {
    /// The node's (`hostNetwork`, `hostIPC`, `hostPID`): no entry in the spec.
    #[default]
    Node,
    /// The pod's: the namespace file to join (`/proc/<holder pid>/ns/<kind>`).
    Pod(PathBuf),
    /// A new one for this container (only for the PID namespace).
    Container,
}

/// The container's namespaces. The mount namespace is always the container's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// Network: the pod's, or the node's for `hostNetwork`.
    pub network: NsMode,
    /// IPC: the pod's, or the node's for `hostIPC`.
    pub ipc: NsMode,
    /// UTS: the pod's (the node's for `hostNetwork`).
    pub uts: NsMode,
    /// PID: the container's own, the pod's for `shareProcessNamespace`, the node's for `hostPID`.
    pub pid: NsMode,
}

impl Namespaces {
    /// The usual pod: network, IPC and UTS of the pod's namespace holder `holder_pid`, its own
    /// PID namespace.
    pub fn pod(holder_pid: u32) -> Self {
        let ns = |k: &str| NsMode::Pod(PathBuf::from(format!("/proc/{holder_pid}/ns/{k}")));
        Self {
            network: ns("net"),
            ipc: ns("ipc"),
            uts: ns("uts"),
            pid: NsMode::Container,
        }
    }
}

/// Mount propagation of a bind mount (CRI `MountPropagation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Propagation {
    /// `None` (private).
    #[default]
    Private,
    /// `HostToContainer` (rslave).
    HostToContainer,
    /// `Bidirectional` (rshared).
    Bidirectional,
}

/// One bind mount into the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindMount {
    /// The node path (must exist: the caller creates volumes).
    pub host_path: PathBuf,
    /// The absolute path in the container.
    pub container_path: String,
    /// `readOnly`.
    pub read_only: bool,
    /// `mountPropagation`.
    pub propagation: Propagation,
}

fn sv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn mount(dst: &str, typ: &str, src: &str, opts: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dst));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(src)));
    m.set_options(Some(sv(opts)));
    m
}

/// containerd's `defaultMounts()` without `/run` (the CRI plugin applies `WithoutRunMount`).
fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    ]
}

/// `filepath.Clean` for the absolute container paths compared here.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The number of path parts containerd's `orderedMounts` sorts by.
fn parts(p: &str) -> usize {
    clean(p).split('/').filter(|s| !s.is_empty()).count()
}

/// Parses a capability name (`NET_ADMIN` or `CAP_NET_ADMIN`, any case).
pub fn parse_capability(name: &str) -> Result<Capability, Error> {
    let up = name.to_ascii_uppercase();
    let bare = up.strip_prefix("CAP_").unwrap_or(&up);
    bare.parse::<Capability>()
        .map_err(|_| Error::Spec(format!("unknown capability {name:?}")))
}

/// The capabilities this process has (`CapEff` of `/proc/self/status`), which containerd's
/// `WithAllCurrentCapabilities` gives a privileged container (`cap.Current`): a node that
/// runs its agent without some capability cannot hand it out.
pub fn all_capabilities() -> Vec<Capability> {
    let eff = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    capabilities_of_bitmap(eff)
}

/// The named capabilities of a bitmap (unknown bits are skipped).
pub fn capabilities_of_bitmap(bits: u64) -> Vec<Capability> {
    CAP_BY_NUMBER
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1u64 << i) != 0)
        .filter_map(|(_, n)| parse_capability(n).ok())
        .collect()
}

/// Capability names by number (`linux/capability.h`).
const CAP_BY_NUMBER: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capability set after `capabilities.add/drop` (`WithCapabilities` of the CRI plugin):
/// `ALL` in add gives every capability, `ALL` in drop none, then the named ones are added and
/// dropped, in that order.
pub fn capabilities(add: &[String], drop: &[String]) -> Result<Vec<Capability>, Error> {
    let mut caps: Vec<Capability> = DEFAULT_CAPS
        .iter()
        .map(|c| parse_capability(c))
        .collect::<Result<_, _>>()?;
    let is_all = |c: &String| c.eq_ignore_ascii_case("ALL");
    if add.iter().any(is_all) {
        caps = all_capabilities();
    }
    if drop.iter().any(is_all) {
        caps.clear();
    }
    for c in add.iter().filter(|c| !is_all(c)) {
        let c = parse_capability(c)?;
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    for c in drop.iter().filter(|c| !is_all(c)) {
        let c = parse_capability(c)?;
        caps.retain(|x| *x != c);
    }
    Ok(caps)
}

/// containerd's `replaceOrAppendEnvValues`: an override replaces a default of the same key in
/// place, or is appended; `KEY` without `=` removes the default.
pub fn replace_or_append_env(defaults: &[String], overrides: &[String]) -> Vec<String> {
    let mut results: Vec<Option<String>> = defaults.iter().cloned().map(Some).collect();
    let index: std::collections::HashMap<&str, usize> = defaults
        .iter()
        .enumerate()
        .map(|(i, e)| (e.split_once('=').map_or(e.as_str(), |(k, _)| k), i))
        .collect();
    for v in overrides {
        match v.split_once('=') {
            None => {
                if let Some(&i) = index.get(v.as_str()) {
                    results[i] = None;
                }
            }
            Some((k, _)) => match index.get(k) {
                Some(&i) => results[i] = Some(v.clone()),
                None => results.push(Some(v.clone())),
            },
        }
    }
    results.into_iter().flatten().collect()
}

fn check_container_path(p: &str, what: &str) -> Result<(), Error> {
    if !p.starts_with('/') {
        return Err(Error::Spec(format!("{what} {p:?} is not an absolute path")));
    }
    Ok(())
}

/// The host's devices for a privileged container (containerd's `HostDevices`: every character
/// and block device under `/dev`, skipping `pts`, `shm`, `fd`, `mqueue` and `/dev/console`).
pub fn host_devices() -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    walk_devices(Path::new("/dev"), &mut out, 0);
    out
}

fn walk_devices(dir: &Path, out: &mut Vec<LinuxDevice>, depth: usize) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if depth > 8 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let path = e.path();
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = md.file_type();
        if ft.is_dir() {
            let name = e.file_name();
            if matches!(
                name.to_str(),
                Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
            ) {
                continue;
            }
            walk_devices(&path, out, depth + 1);
            continue;
        }
        if path == Path::new("/dev/console") {
            continue;
        }
        let typ = if ft.is_char_device() {
            LinuxDeviceType::C
        } else if ft.is_block_device() {
            LinuxDeviceType::B
        } else {
            continue;
        };
        let rdev = md.rdev();
        let mut d = LinuxDevice::default();
        d.set_path(path);
        d.set_typ(typ);
        d.set_major(nix::sys::stat::major(rdev) as i64);
        d.set_minor(nix::sys::stat::minor(rdev) as i64);
        d.set_file_mode(Some(md.mode() & 0o7777));
        d.set_uid(Some(md.uid()));
        d.set_gid(Some(md.gid()));
        out.push(d);
    }
}

/// Loads a `Localhost` seccomp profile: an OCI `LinuxSeccomp` JSON file under `root`.
pub fn load_localhost_profile(root: &Path, profile: &str) -> Result<LinuxSeccomp, Error> {
    let rel = Path::new(profile);
    if profile.is_empty()
        || rel.is_absolute()
        || rel.components().any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(Error::Spec(format!(
            "localhostProfile {profile:?} must be a relative path without \"..\""
        )));
    }
    let path = root.join(rel);
    let data = std::fs::read(&path).map_err(|e| Error::Io {
        context: format!("read seccomp profile {}", path.display()),
        source: e,
    })?;
    serde_json::from_slice(&data).map_err(|e| {
        Error::Spec(format!(
            "seccomp profile {} is not an OCI seccomp profile: {e}",
            path.display()
        ))
    })
}

/// Builds the runtime spec of one container; the root filesystem is `rootfs` beside
/// `config.json` in the bundle.
pub fn build(c: &ContainerSpec) -> Result<Spec, Error> {
    if c.args.is_empty() || c.args[0].is_empty() {
        return Err(Error::Spec("no command specified".into()));
    }
    let sec = &c.security;

    // Process: populateDefaultUnixSpec, then WithoutDefaultSecuritySettings (no rlimits),
    // WithProcessArgs, WithDefaultPathEnv, WithNewPrivileges, cwd, tty, env.
    let mut process = Process::default();
    process.set_terminal(Some(c.tty));
    process.set_args(Some(c.args.clone()));
    process.set_cwd(PathBuf::from(
        c.cwd.as_deref().filter(|s| !s.is_empty()).unwrap_or("/"),
    ));
    if let Some(cwd) = c.cwd.as_deref().filter(|s| !s.is_empty()) {
        check_container_path(cwd, "workingDir")?;
    }
    let mut env = vec![DEFAULT_PATH_ENV.to_string()];
    env = replace_or_append_env(&env, &[format!("HOSTNAME={}", c.hostname)]);
    let both: Vec<String> = c.image_env.iter().chain(&c.env).cloned().collect();
    env = replace_or_append_env(&env, &both);
    process.set_env(Some(env));
    process.set_rlimits(None);
    process.set_no_new_privileges(Some(sec.no_new_privs));
    process.set_apparmor_profile(sec.apparmor_profile.clone());
    process.set_oom_score_adj(c.oom_score_adj);

    let mut gids: Vec<u32> = c
        .user
        .additional_gids
        .iter()
        .chain(&c.supplemental_groups)
        .copied()
        .collect::<std::collections::BTreeSet<u32>>()
        .into_iter()
        .collect();
    gids.dedup();
    let mut user = User::default();
    user.set_uid(c.user.uid);
    user.set_gid(c.user.gid);
    user.set_additional_gids(if gids.is_empty() { None } else { Some(gids) });
    process.set_user(user);

    let caps: Vec<Capability> = if sec.privileged {
        all_capabilities()
    } else {
        capabilities(&sec.caps_add, &sec.caps_drop)?
    };
    let set: Capabilities = caps.iter().copied().collect::<HashSet<_>>();
    let mut lc = LinuxCapabilities::default();
    lc.set_bounding(Some(set.clone()));
    lc.set_effective(Some(set.clone()));
    lc.set_permitted(Some(set));
    lc.set_inheritable(None);
    // WithoutAmbientCaps.
    lc.set_ambient(None);
    process.set_capabilities(Some(lc));

    // Namespaces: defaultUnixNamespaces (pid, ipc, uts, mount, network) then WithPodNamespaces;
    // a namespace the pod shares with the node is removed.
    let mut namespaces = Vec::new();
    let ns = |typ: LinuxNamespaceType, path: Option<&PathBuf>| {
        let mut n = LinuxNamespace::default();
        n.set_typ(typ);
        n.set_path(path.cloned());
        n
    };
    for (typ, mode) in [
        (LinuxNamespaceType::Pid, &c.namespaces.pid),
        (LinuxNamespaceType::Ipc, &c.namespaces.ipc),
        (LinuxNamespaceType::Uts, &c.namespaces.uts),
    ] {
        match mode {
            NsMode::Node => {}
            NsMode::Pod(p) => namespaces.push(ns(typ, Some(p))),
            NsMode::Container => namespaces.push(ns(typ, None)),
        }
    }
    namespaces.push(ns(LinuxNamespaceType::Mount, None));
    match &c.namespaces.network {
        NsMode::Node => {}
        NsMode::Pod(p) => namespaces.push(ns(LinuxNamespaceType::Network, Some(p))),
        NsMode::Container => namespaces.push(ns(LinuxNamespaceType::Network, None)),
    }
    if c.cgroup_v2 && !sec.privileged {
        namespaces.push(ns(LinuxNamespaceType::Cgroup, None));
    }

    // Mounts: defaults (plus the cgroup mount), minus those a bind mount replaces, then the
    // bind mounts sorted by depth (`orderedMounts`, a stable sort).
    let mut binds = c.mounts.clone();
    for b in &binds {
        check_container_path(&b.container_path, "mount path")?;
    }
    binds.sort_by_key(|b| parts(&b.container_path));
    let mut defaults = default_mounts();
    defaults.push(mount(
        "/sys/fs/cgroup",
        "cgroup",
        "cgroup",
        &["nosuid", "noexec", "nodev", "relatime", "ro"],
    ));
    let replaced: HashSet<String> = binds.iter().map(|b| clean(&b.container_path)).collect();
    let mut mounts: Vec<Mount> = defaults
        .into_iter()
        .filter(|m| {
            let dst = clean(&m.destination().to_string_lossy());
            let under_dev = replaced.contains("/dev") && dst.starts_with("/dev/");
            !(replaced.contains(&dst) || under_dev)
        })
        .collect();
    let mut rootfs_propagation = None;
    for b in &binds {
        let mut opts = vec!["rbind".to_string()];
        match b.propagation {
            Propagation::Private => opts.push("rprivate".into()),
            Propagation::Bidirectional => {
                opts.push("rshared".into());
                rootfs_propagation = Some("rshared".to_string());
            }
            Propagation::HostToContainer => {
                opts.push("rslave".into());
                if rootfs_propagation.as_deref() != Some("rshared") {
                    rootfs_propagation = Some("rslave".to_string());
                }
            }
        }
        opts.push(if b.read_only { "ro" } else { "rw" }.into());
        let mut m = Mount::default();
        m.set_destination(PathBuf::from(&b.container_path));
        m.set_typ(Some("bind".into()));
        m.set_source(Some(b.host_path.clone()));
        m.set_options(Some(opts));
        mounts.push(m);
    }
    if sec.privileged {
        // WithWriteableSysfs, WithWriteableCgroupfs.
        for m in &mut mounts {
            let sys = matches!(m.typ().as_deref(), Some("sysfs" | "cgroup"));
            if let (true, Some(o)) = (sys, m.options().clone()) {
                m.set_options(Some(
                    o.into_iter()
                        .map(|x| if x == "ro" { "rw".to_string() } else { x })
                        .collect(),
                ));
            }
        }
    }

    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_sysctl(None);
    linux.set_namespaces(Some(namespaces));
    linux.set_rootfs_propagation(rootfs_propagation);
    linux.set_cgroups_path(Some(PathBuf::from(&c.cgroups_path)));
    let (masked, readonly) = if sec.privileged {
        (None, None)
    } else {
        (
            Some(sec.masked_paths.clone().unwrap_or_default()),
            Some(sec.readonly_paths.clone().unwrap_or_default()),
        )
    };
    linux.set_masked_paths(masked);
    linux.set_readonly_paths(readonly);
    let mut resources: LinuxResources = c.resources.to_oci();
    let mut deny = LinuxDeviceCgroup::default();
    deny.set_allow(sec.privileged);
    deny.set_access(Some("rwm".into()));
    resources.set_devices(Some(vec![deny]));
    linux.set_resources(Some(resources));
    linux.set_devices(if sec.privileged {
        Some(host_devices())
    } else {
        None
    });
    // Seccomp: none for a privileged container (WithSeccompUnconfined).
    let seccomp = match (&sec.seccomp, sec.privileged) {
        (_, true) | (Seccomp::Unconfined, _) => None,
        (Seccomp::RuntimeDefault, false) => Some(crate::seccomp::default_profile(&caps)),
        (Seccomp::Localhost { root, profile }, false) => {
            Some(load_localhost_profile(root, profile)?)
        }
    };
    linux.set_seccomp(seccomp);

    let mut root = Root::default();
    root.set_path(PathBuf::from("rootfs"));
    root.set_readonly(Some(sec.read_only_rootfs));

    let mut spec = Spec::default();
    spec.set_version("1.0.2-dev".to_string());
    spec.set_root(Some(root));
    spec.set_process(Some(process));
    spec.set_hostname(None);
    spec.set_mounts(Some(mounts));
    spec.set_linux(Some(linux));
    spec.set_annotations(None);
    Ok(spec)
}

#[cfg(test)]
mod tests;
