//! The kubelet's resource metrics endpoint, `/metrics/resource`: CPU and memory of the node, of
//! each pod and of each running container, read from their cgroups, in the Prometheus text
//! format with the names, labels and timestamps of upstream's
//! `pkg/kubelet/metrics/collectors/resource_metrics.go` (metrics-server reads them).
//!
//! Start at [`collect`] (blocking: it reads cgroup files, so call it on the blocking pool) and
//! [`Snapshot::encode`]. The values are cadvisor's: CPU is the cgroup's cumulative usage
//! (v1 `cpuacct.usage`, v2 `cpu.stat` `usage_usec`), memory is the working set, usage minus
//! inactive file pages (v1 `memory.usage_in_bytes` − `memory.stat` `total_inactive_file`, v2
//! `memory.current` − `memory.stat` `inactive_file`, never below zero). A container's start
//! time is its cgroup's creation time, as cadvisor's container spec has it.
//!
//! Pods the node runs as host processes (RuntimeClass `paddock-host`) have no cgroup of
//! their own: they are left out, as the kubelet leaves out what cadvisor does not see.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use oci::cgroups::{Layout, Version};

use crate::pod::directory::PodEntry;

/// The content type of the scrape (the Prometheus text format the kubelet serves).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One cgroup's usage at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Cumulative CPU time in nanoseconds.
    pub cpu_ns: u64,
    /// Working set in bytes.
    pub working_set: u64,
    /// When it was read (milliseconds since the epoch).
    pub at_ms: u64,
}

/// A running container's usage.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStats {
    /// The container's name.
    pub name: String,
    /// When its cgroup was created (seconds since the epoch), if known.
    pub start_time: Option<f64>,
    /// Its usage.
    pub usage: Usage,
}

/// A pod's usage and its running containers'.
#[derive(Debug, Clone, PartialEq)]
pub struct PodStats {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The pod cgroup's usage.
    pub usage: Option<Usage>,
    /// Its running containers.
    pub containers: Vec<ContainerStats>,
}

/// Everything one scrape reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The node (the root cgroup).
    pub node: Option<Usage>,
    /// The pods that have a cgroup.
    pub pods: Vec<PodStats>,
    /// Whether something could not be read.
    pub error: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The value of `key` in a flat-keyed file (`memory.stat`, `cpu.stat`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn single(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// cadvisor's working set: usage less the inactive file pages, at least zero.
fn working_set(usage: u64, inactive_file: Option<u64>) -> u64 {
    usage.saturating_sub(inactive_file.unwrap_or(0))
}

/// A v1 cgroup's usage from `cpuacct.usage`, `memory.usage_in_bytes` and `memory.stat`.
pub fn parse_v1(cpuacct_usage: &str, memory_usage: &str, memory_stat: &str) -> Option<(u64, u64)> {
    let cpu = single(cpuacct_usage)?;
    let mem = single(memory_usage)?;
    Some((
        cpu,
        working_set(mem, keyed(memory_stat, "total_inactive_file")),
    ))
}

/// A v2 cgroup's usage from `cpu.stat` (`usage_usec`), `memory.current` and `memory.stat`
/// (`inactive_file`).
pub fn parse_v2(cpu_stat: &str, memory_current: &str, memory_stat: &str) -> Option<(u64, u64)> {
    let cpu = keyed(cpu_stat, "usage_usec")?.saturating_mul(1000);
    let mem = single(memory_current)?;
    Some((cpu, working_set(mem, keyed(memory_stat, "inactive_file"))))
}

/// The root cgroup of a v2 node has no `memory.current`: libcontainer counts the machine's
/// used memory from `/proc/meminfo` (total − free) and its inactive file pages.
pub fn parse_meminfo(meminfo: &str) -> Option<u64> {
    let kb = |key: &str| {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    let used = kb("MemTotal")?.saturating_sub(kb("MemFree")?);
    Some(working_set(used, kb("Inactive(file)")).saturating_mul(1024))
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// The usage of cgroup `path` (`/kubepods/burstable/pod<uid>`, `/` for the root).
pub fn read_cgroup(layout: &Layout, path: &str) -> Option<Usage> {
    let rel = path.trim_start_matches('/');
    let (cpu_ns, working_set) = match layout.version {
        Version::V1 => {
            let cpu = layout.root.join("cpuacct").join(rel);
            let mem = layout.root.join("memory").join(rel);
            parse_v1(
                &read(&cpu.join("cpuacct.usage"))?,
                &read(&mem.join("memory.usage_in_bytes"))?,
                &read(&mem.join("memory.stat")).unwrap_or_default(),
            )?
        }
        Version::V2 => {
            let d = layout.root.join(rel);
            let cpu_stat = read(&d.join("cpu.stat"))?;
            match read(&d.join("memory.current")) {
                Some(current) => parse_v2(
                    &cpu_stat,
                    &current,
                    &read(&d.join("memory.stat")).unwrap_or_default(),
                )?,
                None if rel.is_empty() => (
                    keyed(&cpu_stat, "usage_usec")?.saturating_mul(1000),
                    parse_meminfo(&read(Path::new("/proc/meminfo"))?)?,
                ),
                None => return None,
            }
        }
    };
    Some(Usage {
        cpu_ns,
        working_set,
        at_ms: now_ms(),
    })
}

/// When cgroup `path` was created (its directory's modification time: a container's cgroup
/// gets no child directories), in seconds since the epoch.
fn created(layout: &Layout, path: &str) -> Option<f64> {
    let dir = layout.memory_dir(path);
    let t = std::fs::metadata(dir).ok()?.modified().ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs_f64())
}

/// The pod's cgroup, whichever QoS level holds it.
fn pod_cgroup(layout: &Layout, uid: &str) -> Option<String> {
    use oci::cgroups::QosClass;
    [
        QosClass::Guaranteed,
        QosClass::Burstable,
        QosClass::BestEffort,
    ]
    .into_iter()
    .filter_map(|q| layout.pod_path(q, uid).ok())
    .find(|p| layout.memory_dir(p).is_dir())
}

/// Reads the node's and `pods`' usage (`(namespace, name, entry)`). Blocking.
pub fn collect(layout: Option<&Layout>, pods: &[(String, String, PodEntry)]) -> Snapshot {
    let Some(layout) = layout else {
        // No cgroups on this node: nothing can be measured.
        return Snapshot {
            error: true,
            ..Snapshot::default()
        };
    };
    let mut snap = Snapshot {
        node: read_cgroup(layout, "/"),
        ..Snapshot::default()
    };
    if snap.node.is_none() {
        snap.error = true;
    }
    for (ns, name, entry) in pods {
        let Some(pod_path) = pod_cgroup(layout, &entry.uid) else {
            continue;
        };
        let mut containers = Vec::new();
        for (cname, c) in &entry.containers {
            let Some((id, _, true)) = &c.current else {
                continue;
            };
            let path = format!("{pod_path}/{}", id.0);
            if let Some(usage) = read_cgroup(layout, &path) {
                containers.push(ContainerStats {
                    name: cname.clone(),
                    start_time: created(layout, &path),
                    usage,
                });
            }
        }
        snap.pods.push(PodStats {
            namespace: ns.clone(),
            name: name.clone(),
            usage: read_cgroup(layout, &pod_path),
            containers,
        });
    }
    snap.pods
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    snap
}

/// A label value escaped as the text format wants it.
fn esc(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, stability: &str, help: &str, ty: &str) {
    let _ = writeln!(out, "# HELP {name} [{stability}] {help}");
    let _ = writeln!(out, "# TYPE {name} {ty}");
}

impl Snapshot {
    /// The Prometheus text of `/metrics/resource`, families in the kubelet's (sorted) order.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let secs = |ns: u64| ns as f64 / 1e9;
        let containers = || {
            self.pods.iter().flat_map(|p| {
                p.containers.iter().map(move |c| {
                    (
                        format!(
                            "container=\"{}\",namespace=\"{}\",pod=\"{}\"",
                            esc(&c.name),
                            esc(&p.namespace),
                            esc(&p.name)
                        ),
                        c,
                    )
                })
            })
        };
        let pod_labels = |p: &PodStats| {
            format!(
                "namespace=\"{}\",pod=\"{}\"",
                esc(&p.namespace),
                esc(&p.name)
            )
        };

        header(
            &mut out,
            "container_cpu_usage_seconds_total",
            "STABLE",
            "Cumulative cpu time consumed by the container in core-seconds",
            "counter",
        );
        for (l, c) in containers() {
            let _ = writeln!(
                out,
                "container_cpu_usage_seconds_total{{{l}}} {} {}",
                secs(c.usage.cpu_ns),
                c.usage.at_ms
            );
        }
        header(
            &mut out,
            "container_memory_working_set_bytes",
            "STABLE",
            "Current working set of the container in bytes",
            "gauge",
        );
        for (l, c) in containers() {
            let _ = writeln!(
                out,
                "container_memory_working_set_bytes{{{l}}} {} {}",
                c.usage.working_set, c.usage.at_ms
            );
        }
        header(
            &mut out,
            "container_start_time_seconds",
            "STABLE",
            "Start time of the container since unix epoch in seconds",
            "gauge",
        );
        for (l, c) in containers() {
            if let Some(t) = c.start_time.filter(|t| *t > 0.0) {
                let _ = writeln!(out, "container_start_time_seconds{{{l}}} {t}");
            }
        }
        if let Some(n) = &self.node {
            header(
                &mut out,
                "node_cpu_usage_seconds_total",
                "STABLE",
                "Cumulative cpu time consumed by the node in core-seconds",
                "counter",
            );
            let _ = writeln!(
                out,
                "node_cpu_usage_seconds_total {} {}",
                secs(n.cpu_ns),
                n.at_ms
            );
            header(
                &mut out,
                "node_memory_working_set_bytes",
                "STABLE",
                "Current working set of the node in bytes",
                "gauge",
            );
            let _ = writeln!(
                out,
                "node_memory_working_set_bytes {} {}",
                n.working_set, n.at_ms
            );
        }
        header(
            &mut out,
            "pod_cpu_usage_seconds_total",
            "STABLE",
            "Cumulative cpu time consumed by the pod in core-seconds",
            "counter",
        );
        for p in &self.pods {
            if let Some(u) = &p.usage {
                let _ = writeln!(
                    out,
                    "pod_cpu_usage_seconds_total{{{}}} {} {}",
                    pod_labels(p),
                    secs(u.cpu_ns),
                    u.at_ms
                );
            }
        }
        header(
            &mut out,
            "pod_memory_working_set_bytes",
            "STABLE",
            "Current working set of the pod in bytes",
            "gauge",
        );
        for p in &self.pods {
            if let Some(u) = &p.usage {
                let _ = writeln!(
                    out,
                    "pod_memory_working_set_bytes{{{}}} {} {}",
                    pod_labels(p),
                    u.working_set,
                    u.at_ms
                );
            }
        }
        let err = u8::from(self.error);
        header(
            &mut out,
            "resource_scrape_error",
            "STABLE",
            "1 if there was an error while getting container metrics, 0 otherwise",
            "gauge",
        );
        let _ = writeln!(out, "resource_scrape_error {err}");
        header(
            &mut out,
            "scrape_error",
            "ALPHA",
            "(Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise",
            "gauge",
        );
        let _ = writeln!(out, "scrape_error {err}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::directory::ContainerEntry;
    use crate::runtime::ContainerId;

    #[test]
    fn v1_working_set_subtracts_total_inactive_file() {
        let stat = "cache 100\ninactive_file 7\ntotal_inactive_file 4096\ntotal_rss 1\n";
        assert_eq!(
            parse_v1("123456789\n", "1052672\n", stat),
            Some((123_456_789, 1_048_576))
        );
        // Inactive pages above the usage: zero, not an underflow.
        assert_eq!(
            parse_v1("1\n", "10\n", "total_inactive_file 20\n"),
            Some((1, 0))
        );
        assert_eq!(parse_v1("x", "10", ""), None);
    }

    #[test]
    fn v2_parses_usage_usec_and_inactive_file() {
        let cpu = "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 0\n";
        let stat = "anon 4096\nfile 8192\nactive_file 4096\ninactive_file 4096\n";
        assert_eq!(parse_v2(cpu, "16384\n", stat), Some((2_500_000, 12_288)));
        assert_eq!(parse_v2("user_usec 1\n", "1", ""), None);
        let meminfo =
            "MemTotal:       16000 kB\nMemFree:         6000 kB\nInactive(file):   1000 kB\n";
        assert_eq!(parse_meminfo(meminfo), Some(9000 * 1024));
    }

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, s).expect("write");
    }

    fn entry(uid: &str, containers: &[(&str, &str, bool)]) -> PodEntry {
        PodEntry {
            uid: uid.into(),
            containers: containers
                .iter()
                .map(|(n, id, running)| {
                    (
                        n.to_string(),
                        ContainerEntry {
                            current: Some((ContainerId(id.to_string()), 0, *running)),
                            previous: None,
                            waiting: None,
                        },
                    )
                })
                .collect(),
            pod: None,
            status: None,
        }
    }

    /// A v2 tree: the node (root, no memory.current), a Burstable pod with a running and an
    /// exited container, and a host-process pod without a cgroup, which is left out.
    #[test]
    fn v2_tree_collects_and_encodes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        write(&root.join("cpu.stat"), "usage_usec 9000000\n");
        let pod = root.join("kubepods/burstable/podu1");
        write(&pod.join("cpu.stat"), "usage_usec 1500000\n");
        write(&pod.join("memory.current"), "3145728\n");
        write(&pod.join("memory.stat"), "inactive_file 1048576\n");
        write(&pod.join("c1/cpu.stat"), "usage_usec 1000000\n");
        write(&pod.join("c1/memory.current"), "2097152\n");
        write(&pod.join("c1/memory.stat"), "inactive_file 0\n");
        let l = Layout {
            root: root.to_path_buf(),
            version: Version::V2,
            base: "kubepods".into(),
        };
        let pods = vec![
            (
                "default".to_string(),
                "web".to_string(),
                entry("u1", &[("app", "c1", true), ("done", "c2", false)]),
            ),
            (
                "default".to_string(),
                "host".to_string(),
                entry("u2", &[("app", "h1", true)]),
            ),
        ];
        let snap = collect(Some(&l), &pods);
        assert_eq!(snap.pods.len(), 1, "{snap:?}");
        let p = &snap.pods[0];
        assert_eq!(
            p.usage.map(|u| (u.cpu_ns, u.working_set)),
            Some((1_500_000_000, 2_097_152))
        );
        assert_eq!(p.containers.len(), 1);
        assert_eq!(p.containers[0].usage.cpu_ns, 1_000_000_000);
        assert!(p.containers[0].start_time.is_some_and(|t| t > 0.0));
        let text = snap.encode();
        let at = p.containers[0].usage.at_ms;
        assert!(
            text.contains(&format!(
                "container_cpu_usage_seconds_total{{container=\"app\",namespace=\"default\",pod=\"web\"}} 1 {at}\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "container_memory_working_set_bytes{{container=\"app\",namespace=\"default\",pod=\"web\"}} 2097152 {at}\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(
                "pod_memory_working_set_bytes{namespace=\"default\",pod=\"web\"} 2097152 "
            )
        );
        assert!(text.contains(
            "# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total 9 "
        ));
        assert!(text.contains(
            "container_start_time_seconds{container=\"app\",namespace=\"default\",pod=\"web\"} "
        ));
        assert!(!text.contains("done"), "{text}");
        assert!(!text.contains("host"), "{text}");
        assert!(text.ends_with("scrape_error 0\n"), "{text}");
        // Without cgroups nothing is measured and the scrape says so.
        let none = collect(None, &pods);
        assert!(none.encode().ends_with("scrape_error 1\n"));
    }

    /// The real v1 hierarchy of this machine: the root cgroup's counters are readable and the
    /// CPU counter moves.
    #[test]
    fn v1_root_cgroup_reads_for_real() {
        let Ok(l) = Layout::detect("/sys/fs/cgroup", "kubepods") else {
            return;
        };
        if l.version != Version::V1 {
            return;
        }
        let a = read_cgroup(&l, "/").expect("root cgroup usage");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = read_cgroup(&l, "/").expect("root cgroup usage");
        assert!(b.cpu_ns > a.cpu_ns);
        assert!(b.working_set > 0);
    }
}
