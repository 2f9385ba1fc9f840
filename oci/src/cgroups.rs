//! cgroups as the kubelet lays them out with its `cgroupfs` driver, on cgroup v1 and v2:
//! `/kubepods` (Guaranteed pods directly in it), `/kubepods/burstable`, `/kubepods/besteffort`,
//! then `pod<uid>` and, for each container, its id (the runtime spec's `linux.cgroupsPath`,
//! which the runtime creates and removes with the container).
//!
//! [`Layout`] creates the QoS and pod levels with the kubelet's values
//! (`ResourceConfigForPod` in `pkg/kubelet/cm/helpers_linux.go`); [`ContainerResources`] is what
//! the kubelet's `generateLinuxContainerResources` sends in CRI and containerd's
//! `WithResources` puts in the spec. [`Layout::oom_killed`] tells whether the kernel's OOM
//! killer killed a process of a cgroup (v1 `memory.oom_control`, v2 `memory.events`
//! `oom_kill`), read before the container's cgroup is removed, so the caller reports
//! `OOMKilled` (exit 137) as the kubelet does. The QoS class itself is the API server's
//! (`status.qosClass`, upstream `GetPodQOS`): [`QosClass::parse`] reads it.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

use crate::Error;

/// The CFS period the kubelet uses (`QuotaPeriod`, 100 ms).
pub const CFS_PERIOD_US: u64 = 100_000;
/// `MinShares`.
pub const MIN_SHARES: u64 = 2;
/// `MaxShares`.
pub const MAX_SHARES: u64 = 262_144;
/// `MinQuotaPeriod` (1 ms): the smallest quota the kubelet writes.
pub const MIN_QUOTA_US: i64 = 1_000;

/// The v1 hierarchies the pod level writes to (others are created by the runtime as needed).
const V1_POD_CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// A pod's QoS class (`status.qosClass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    /// `Guaranteed`.
    Guaranteed,
    /// `Burstable`.
    Burstable,
    /// `BestEffort`.
    BestEffort,
}

impl QosClass {
    /// Parses `status.qosClass`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Guaranteed" => Self::Guaranteed,
            "Burstable" => Self::Burstable,
            "BestEffort" => Self::BestEffort,
            _ => return None,
        })
    }

    /// The QoS level under `kubepods` (none for Guaranteed).
    fn dir(self) -> Option<&'static str> {
        match self {
            Self::Guaranteed => None,
            Self::Burstable => Some("burstable"),
            Self::BestEffort => Some("besteffort"),
        }
    }
}

/// The kubelet's `MilliCPUToShares`.
pub fn milli_cpu_to_shares(milli: i64) -> u64 {
    if milli <= 0 {
        return MIN_SHARES;
    }
    let shares = (milli as u64).saturating_mul(1024) / 1000;
    shares.clamp(MIN_SHARES, MAX_SHARES)
}

/// The kubelet's `MilliCPUToQuota` (0: no quota).
pub fn milli_cpu_to_quota(milli: i64, period: u64) -> i64 {
    if milli <= 0 {
        return 0;
    }
    let quota = milli.saturating_mul(period as i64) / 1000;
    quota.max(MIN_QUOTA_US)
}

/// The kubelet's `CpuSharesToCpuWeight` (cgroup v2).
pub fn shares_to_weight(shares: u64) -> u64 {
    ((shares.saturating_sub(2)) * 9999) / 262_142 + 1
}

/// One container's resources, as CRI's `LinuxContainerResources` carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerResources {
    /// `cpu.shares` (v2: converted to a weight by the runtime).
    pub cpu_shares: Option<u64>,
    /// CFS quota in µs (`None`: unlimited).
    pub cpu_quota: Option<i64>,
    /// CFS period in µs.
    pub cpu_period: Option<u64>,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
}

impl ContainerResources {
    /// From a container's `requests.cpu` / `limits.cpu` (millicores) and `limits.memory`
    /// (bytes), as `generateLinuxContainerResources` computes them.
    pub fn from_kubernetes(
        cpu_request_milli: Option<i64>,
        cpu_limit_milli: Option<i64>,
        memory_limit: Option<i64>,
    ) -> Self {
        let req = cpu_request_milli.unwrap_or(0);
        let lim = cpu_limit_milli.unwrap_or(0);
        let shares = if req == 0 && lim != 0 {
            milli_cpu_to_shares(lim)
        } else {
            milli_cpu_to_shares(req)
        };
        let quota = milli_cpu_to_quota(lim, CFS_PERIOD_US);
        Self {
            cpu_shares: Some(shares),
            cpu_quota: (quota != 0).then_some(quota),
            cpu_period: Some(CFS_PERIOD_US),
            memory_limit: memory_limit.filter(|m| *m > 0),
        }
    }

    /// The spec's `linux.resources` (containerd's `WithResources`: swap = the memory limit
    /// when the swap controller exists, so the container does not swap).
    pub fn to_oci(&self) -> LinuxResources {
        let mut r = LinuxResources::default();
        let mut cpu = LinuxCpu::default();
        cpu.set_shares(self.cpu_shares);
        cpu.set_quota(self.cpu_quota);
        cpu.set_period(self.cpu_period);
        r.set_cpu(Some(cpu));
        let mut mem = LinuxMemory::default();
        if let Some(limit) = self.memory_limit {
            mem.set_limit(Some(limit));
            if swap_controller() {
                mem.set_swap(Some(limit));
            }
        }
        r.set_memory(Some(mem));
        r
    }
}

fn swap_controller() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A pod's own cgroup values (`ResourceConfigForPod`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodResources {
    /// `cpu.shares`.
    pub cpu_shares: u64,
    /// CFS quota (µs), when every container has a CPU limit.
    pub cpu_quota: Option<i64>,
    /// Memory limit, when every container has one.
    pub memory_limit: Option<i64>,
    /// `--pod-max-pids` (none by default).
    pub pids_limit: Option<i64>,
}

/// One container's requests and limits, for [`PodResources::for_pod`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Requirements {
    /// `requests.cpu` in millicores.
    pub cpu_request_milli: Option<i64>,
    /// `limits.cpu` in millicores.
    pub cpu_limit_milli: Option<i64>,
    /// `limits.memory` in bytes.
    pub memory_limit: Option<i64>,
}

impl PodResources {
    /// The pod level: sums over the app containers (an init container's values count when
    /// larger, as they run alone), shares from requests, quota and memory only when every
    /// container declares a limit; BestEffort pods get the minimum shares.
    pub fn for_pod(qos: QosClass, app: &[Requirements], init: &[Requirements]) -> Self {
        let sum = |f: fn(&Requirements) -> Option<i64>| -> (i64, bool) {
            let mut total = 0i64;
            let mut all = !app.is_empty();
            for c in app {
                match f(c) {
                    Some(v) if v > 0 => total = total.saturating_add(v),
                    _ => all = false,
                }
            }
            let mut init_all = true;
            for c in init {
                match f(c) {
                    Some(v) if v > 0 => total = total.max(v),
                    _ => init_all = false,
                }
            }
            (total, all && init_all)
        };
        let (req, _) = sum(|c| c.cpu_request_milli.or(c.cpu_limit_milli));
        let (cpu_lim, cpu_all) = sum(|c| c.cpu_limit_milli);
        let (mem_lim, mem_all) = sum(|c| c.memory_limit);
        if qos == QosClass::BestEffort {
            return Self {
                cpu_shares: MIN_SHARES,
                ..Self::default()
            };
        }
        Self {
            cpu_shares: milli_cpu_to_shares(req),
            cpu_quota: cpu_all.then(|| milli_cpu_to_quota(cpu_lim, CFS_PERIOD_US)),
            memory_limit: mem_all.then_some(mem_lim),
            pids_limit: None,
        }
    }
}

/// Which cgroup hierarchy the node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Per-controller hierarchies under `/sys/fs/cgroup/<controller>` (also the hybrid layout,
    /// whose v2 tree is left alone).
    V1,
    /// The unified hierarchy at the root.
    V2,
}

/// The `kubepods` hierarchy under a cgroup mount root.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `/sys/fs/cgroup`.
    pub root: PathBuf,
    /// v1 or v2.
    pub version: Version,
    /// The top level's name (`kubepods`).
    pub base: String,
}

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

fn write(path: &Path, value: &str) -> Result<(), Error> {
    std::fs::write(path, value).map_err(io_err(format!("write {value:?} to {}", path.display())))
}

impl Layout {
    /// Detects the node's hierarchy under `root` (`/sys/fs/cgroup`).
    pub fn detect(root: impl Into<PathBuf>, base: &str) -> Result<Self, Error> {
        let root = root.into();
        let version = if root.join("cgroup.controllers").exists() {
            Version::V2
        } else if root.join("memory").join("memory.limit_in_bytes").exists() {
            Version::V1
        } else {
            return Err(Error::Cgroups(format!(
                "no cgroup v2 hierarchy nor v1 memory controller under {}",
                root.display()
            )));
        };
        if base.is_empty() || base.contains('/') || base == ".." {
            return Err(Error::Cgroups(format!("invalid cgroup base name {base:?}")));
        }
        Ok(Self {
            root,
            version,
            base: base.to_string(),
        })
    }

    /// The pod's cgroup path (`/kubepods/burstable/pod<uid>`).
    pub fn pod_path(&self, qos: QosClass, pod_uid: &str) -> Result<String, Error> {
        check_name(pod_uid, "pod uid")?;
        Ok(match qos.dir() {
            Some(q) => format!("/{}/{q}/pod{pod_uid}", self.base),
            None => format!("/{}/pod{pod_uid}", self.base),
        })
    }

    /// The container's cgroup path (the spec's `linux.cgroupsPath`).
    pub fn container_path(
        &self,
        qos: QosClass,
        pod_uid: &str,
        container_id: &str,
    ) -> Result<String, Error> {
        check_name(container_id, "container id")?;
        Ok(format!("{}/{container_id}", self.pod_path(qos, pod_uid)?))
    }

    /// The directories a cgroup path has on this node (one per v1 hierarchy used here).
    fn dirs(&self, path: &str, controllers: &[&str]) -> Vec<PathBuf> {
        let rel = path.trim_start_matches('/');
        match self.version {
            Version::V2 => vec![self.root.join(rel)],
            Version::V1 => controllers
                .iter()
                .map(|c| self.root.join(c).join(rel))
                .filter(|d| d.parent().is_some())
                .collect(),
        }
    }

    /// The hierarchies mounted under the root on a v1 node: each controller's, named ones
    /// (`systemd`) and the hybrid layout's cgroup2 tree (`unified`), where runc also creates
    /// the container's cgroup.
    fn v1_hierarchies(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut out: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().join("cgroup.procs").exists())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        out.sort();
        out
    }

    /// Creates the `kubepods` and QoS levels (BestEffort gets the minimum shares) and the pod's
    /// cgroup with its values. Idempotent. Blocking (file writes): call from a blocking thread.
    pub fn ensure_pod(
        &self,
        qos: QosClass,
        pod_uid: &str,
        res: &PodResources,
    ) -> Result<String, Error> {
        let pod = self.pod_path(qos, pod_uid)?;
        let mut levels = vec![format!("/{}", self.base)];
        if let Some(q) = qos.dir() {
            levels.push(format!("/{}/{q}", self.base));
        }
        levels.push(pod.clone());
        for level in &levels {
            self.mkdir(level)?;
        }
        if qos == QosClass::BestEffort {
            self.set_cpu(&levels[1], MIN_SHARES, None)?;
        }
        self.set_cpu(&pod, res.cpu_shares, res.cpu_quota)?;
        if let Some(m) = res.memory_limit {
            match self.version {
                Version::V1 => write(
                    &self
                        .root
                        .join("memory")
                        .join(pod.trim_start_matches('/'))
                        .join("memory.limit_in_bytes"),
                    &m.to_string(),
                )?,
                Version::V2 => write(
                    &self
                        .root
                        .join(pod.trim_start_matches('/'))
                        .join("memory.max"),
                    &m.to_string(),
                )?,
            }
        }
        if let Some(p) = res.pids_limit {
            let dir = match self.version {
                Version::V1 => self.root.join("pids").join(pod.trim_start_matches('/')),
                Version::V2 => self.root.join(pod.trim_start_matches('/')),
            };
            write(&dir.join("pids.max"), &p.to_string())?;
        }
        Ok(pod)
    }

    fn mkdir(&self, path: &str) -> Result<(), Error> {
        match self.version {
            Version::V1 => {
                for d in self.dirs(path, &V1_POD_CONTROLLERS) {
                    std::fs::create_dir_all(&d)
                        .map_err(io_err(format!("create {}", d.display())))?;
                }
            }
            Version::V2 => {
                // Enable the controllers the levels below use, from the root down.
                let rel = path.trim_start_matches('/');
                let mut dir = self.root.clone();
                for part in rel.split('/') {
                    let available =
                        std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
                    let enable: Vec<String> = ["cpu", "memory", "pids", "cpuset", "io", "hugetlb"]
                        .iter()
                        .filter(|c| available.split_whitespace().any(|a| a == **c))
                        .map(|c| format!("+{c}"))
                        .collect();
                    if !enable.is_empty() {
                        write(&dir.join("cgroup.subtree_control"), &enable.join(" "))?;
                    }
                    dir = dir.join(part);
                    if !dir.exists() {
                        std::fs::create_dir(&dir)
                            .map_err(io_err(format!("create {}", dir.display())))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn set_cpu(&self, path: &str, shares: u64, quota: Option<i64>) -> Result<(), Error> {
        let rel = path.trim_start_matches('/');
        match self.version {
            Version::V1 => {
                let d = self.root.join("cpu").join(rel);
                write(&d.join("cpu.shares"), &shares.to_string())?;
                write(&d.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
                write(
                    &d.join("cpu.cfs_quota_us"),
                    &quota.unwrap_or(-1).to_string(),
                )?;
            }
            Version::V2 => {
                let d = self.root.join(rel);
                write(&d.join("cpu.weight"), &shares_to_weight(shares).to_string())?;
                let q = quota.map_or("max".to_string(), |q| q.to_string());
                write(&d.join("cpu.max"), &format!("{q} {CFS_PERIOD_US}"))?;
            }
        }
        Ok(())
    }

    /// Removes the pod's cgroup in every hierarchy (its containers' cgroups must be gone: the
    /// runtime removes them at delete). Missing directories are fine. Blocking.
    pub fn remove_pod(&self, qos: QosClass, pod_uid: &str) -> Result<(), Error> {
        let pod = self.pod_path(qos, pod_uid)?;
        self.remove(&pod)
    }

    /// Removes a cgroup (and any empty child cgroups left under it) in every hierarchy.
    pub fn remove(&self, path: &str) -> Result<(), Error> {
        let dirs = match self.version {
            Version::V2 => self.dirs(path, &[]),
            Version::V1 => {
                let h = self.v1_hierarchies();
                let refs: Vec<&str> = h.iter().map(String::as_str).collect();
                self.dirs(path, &refs)
            }
        };
        for d in dirs {
            remove_tree(&d)?;
        }
        Ok(())
    }

    /// The directory whose OOM counter tells about `path` (the memory hierarchy on v1).
    pub fn memory_dir(&self, path: &str) -> PathBuf {
        let rel = path.trim_start_matches('/');
        match self.version {
            Version::V1 => self.root.join("memory").join(rel),
            Version::V2 => self.root.join(rel),
        }
    }

    /// The number of processes the OOM killer killed in cgroup `path` (0 when unknown).
    pub fn oom_kills(&self, path: &str) -> u64 {
        let dir = self.memory_dir(path);
        let file = match self.version {
            Version::V1 => dir.join("memory.oom_control"),
            Version::V2 => dir.join("memory.events"),
        };
        std::fs::read_to_string(file)
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
            })
            .unwrap_or(0)
    }

    /// Whether the OOM killer killed a process of cgroup `path`.
    pub fn oom_killed(&self, path: &str) -> bool {
        self.oom_kills(path) > 0
    }

    /// The CFS quota written for cgroup `path` (µs; `None` when unlimited or unreadable).
    pub fn cpu_quota(&self, path: &str) -> Option<i64> {
        let rel = path.trim_start_matches('/');
        match self.version {
            Version::V1 => {
                std::fs::read_to_string(self.root.join("cpu").join(rel).join("cpu.cfs_quota_us"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
                    .filter(|q: &i64| *q > 0)
            }
            Version::V2 => std::fs::read_to_string(self.root.join(rel).join("cpu.max"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok(),
        }
    }

    /// The pods that have a cgroup here (QoS class and uid), for removing those of pods that
    /// are gone after a crash. Blocking.
    pub fn pods(&self) -> Vec<(QosClass, String)> {
        let top = match self.version {
            Version::V1 => self.root.join("memory").join(&self.base),
            Version::V2 => self.root.join(&self.base),
        };
        let mut out = Vec::new();
        for (qos, dir) in [
            (QosClass::Guaranteed, top.clone()),
            (QosClass::Burstable, top.join("burstable")),
            (QosClass::BestEffort, top.join("besteffort")),
        ] {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name();
                let Some(uid) = name.to_str().and_then(|n| n.strip_prefix("pod")) else {
                    continue;
                };
                if e.file_type().is_ok_and(|t| t.is_dir()) && check_name(uid, "pod uid").is_ok() {
                    out.push((qos, uid.to_string()));
                }
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    /// Whether cgroup `path` exists in any hierarchy.
    pub fn exists(&self, path: &str) -> bool {
        match self.version {
            Version::V2 => self.dirs(path, &[]).iter().any(|d| d.exists()),
            Version::V1 => {
                let h = self.v1_hierarchies();
                let refs: Vec<&str> = h.iter().map(String::as_str).collect();
                self.dirs(path, &refs).iter().any(|d| d.exists())
            }
        }
    }
}

/// `rmdir` of a cgroup and its child cgroups, deepest first (cgroup directories only hold
/// control files, which rmdir ignores).
fn remove_tree(dir: &Path) -> Result<(), Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(format!("read {}", dir.display()))(e)),
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("remove cgroup {}", dir.display()))(e)),
    }
}

fn check_name(s: &str, what: &str) -> Result<(), Error> {
    if s.is_empty()
        || s.len() > 128
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        || s.starts_with('.')
    {
        return Err(Error::Cgroups(format!("invalid {what} {s:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_conversions() {
        // Values from the kubelet's helpers_linux_test.go.
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(100), 102);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(500_000), 262_144);
        assert_eq!(milli_cpu_to_quota(0, 100_000), 0);
        assert_eq!(milli_cpu_to_quota(5, 100_000), 1000);
        assert_eq!(milli_cpu_to_quota(9, 100_000), 1000);
        assert_eq!(milli_cpu_to_quota(10, 100_000), 1000);
        assert_eq!(milli_cpu_to_quota(200, 100_000), 20_000);
        assert_eq!(milli_cpu_to_quota(500, 100_000), 50_000);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn container_resources_as_the_kubelet_sends_them() {
        let r = ContainerResources::from_kubernetes(Some(250), Some(500), Some(64 << 20));
        assert_eq!(r.cpu_shares, Some(256));
        assert_eq!(r.cpu_quota, Some(50_000));
        assert_eq!(r.cpu_period, Some(100_000));
        assert_eq!(r.memory_limit, Some(64 << 20));
        // Only a limit: the shares follow it.
        let r = ContainerResources::from_kubernetes(None, Some(1000), None);
        assert_eq!(r.cpu_shares, Some(1024));
        let none = ContainerResources::from_kubernetes(None, None, None);
        assert_eq!(none.cpu_shares, Some(2));
        assert_eq!(none.cpu_quota, None);
        assert_eq!(none.memory_limit, None);
    }

    #[test]
    fn pod_level_values() {
        let c = |r, l, m| Requirements {
            cpu_request_milli: r,
            cpu_limit_milli: l,
            memory_limit: m,
        };
        let g = PodResources::for_pod(
            QosClass::Guaranteed,
            &[
                c(Some(500), Some(500), Some(100)),
                c(Some(500), Some(500), Some(50)),
            ],
            &[],
        );
        assert_eq!(g.cpu_shares, 1024);
        assert_eq!(g.cpu_quota, Some(100_000));
        assert_eq!(g.memory_limit, Some(150));
        // One container without limits: no pod quota nor memory limit.
        let b = PodResources::for_pod(
            QosClass::Burstable,
            &[c(Some(100), Some(200), Some(100)), c(Some(100), None, None)],
            &[],
        );
        assert_eq!(b.cpu_shares, 204);
        assert_eq!(b.cpu_quota, None);
        assert_eq!(b.memory_limit, None);
        let be = PodResources::for_pod(QosClass::BestEffort, &[c(None, None, None)], &[]);
        assert_eq!(be.cpu_shares, 2);
    }

    /// cgroup v2 cannot be created on these machines (their cpu and memory controllers are
    /// bound to v1), so the v2 layout is checked on a directory tree shaped like one.
    #[test]
    fn v2_layout_on_a_tree() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        std::fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .expect("w");
        std::fs::write(root.join("cgroup.subtree_control"), "").expect("w");
        let l = Layout::detect(root, "kubepods").expect("detect");
        assert_eq!(l.version, Version::V2);
        // A real cgroupfs fills new directories with control files; here they are made as the
        // kernel would, ahead of the writes.
        for d in ["kubepods", "kubepods/burstable", "kubepods/burstable/podu"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
            std::fs::write(root.join(d).join("cgroup.controllers"), "cpu memory pids\n")
                .expect("w");
        }
        let pod = l
            .ensure_pod(
                QosClass::Burstable,
                "u",
                &PodResources {
                    cpu_shares: 1024,
                    cpu_quota: Some(50_000),
                    memory_limit: Some(1 << 30),
                    pids_limit: Some(64),
                },
            )
            .expect("ensure_pod");
        assert_eq!(pod, "/kubepods/burstable/podu");
        let read = |p: &str| std::fs::read_to_string(root.join(p)).expect(p);
        assert_eq!(
            read("cgroup.subtree_control"),
            "+cpu +memory +pids +cpuset +io"
        );
        assert_eq!(
            read("kubepods/burstable/cgroup.subtree_control"),
            "+cpu +memory +pids"
        );
        assert_eq!(read("kubepods/burstable/podu/cpu.weight"), "39");
        assert_eq!(read("kubepods/burstable/podu/cpu.max"), "50000 100000");
        assert_eq!(read("kubepods/burstable/podu/memory.max"), "1073741824");
        assert_eq!(read("kubepods/burstable/podu/pids.max"), "64");
        assert_eq!(l.cpu_quota(&pod), Some(50_000));
        assert_eq!(l.pods(), vec![(QosClass::Burstable, "u".to_string())]);
        std::fs::write(
            root.join("kubepods/burstable/podu/memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .expect("w");
        assert!(l.oom_killed(&pod));
        std::fs::write(
            root.join("kubepods/burstable/podu/memory.events"),
            "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
        )
        .expect("w");
        assert!(!l.oom_killed(&pod));
    }

    #[test]
    fn paths() {
        let l = Layout {
            root: "/sys/fs/cgroup".into(),
            version: Version::V1,
            base: "kubepods".into(),
        };
        assert_eq!(
            l.pod_path(QosClass::Guaranteed, "u1").unwrap(),
            "/kubepods/podu1"
        );
        assert_eq!(
            l.container_path(QosClass::Burstable, "u1", "c1").unwrap(),
            "/kubepods/burstable/podu1/c1"
        );
        assert_eq!(
            l.pod_path(QosClass::BestEffort, "u1").unwrap(),
            "/kubepods/besteffort/podu1"
        );
        assert!(l.pod_path(QosClass::BestEffort, "../x").is_err());
        assert!(l.container_path(QosClass::BestEffort, "u", "a/b").is_err());
        assert_eq!(QosClass::parse("Burstable"), Some(QosClass::Burstable));
        assert_eq!(QosClass::parse("burstable"), None);
    }
}
