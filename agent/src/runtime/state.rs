//! The runtime's on-disk state under its root directory, so a restarted agent finds what the
//! previous run left running ([`super::Runtime::list`]), plus `/proc` helpers to tell a live
//! process from a reused pid and to find a container's whole process tree.
//!
//! Layout: `sandboxes/<id>.json`, `containers/<id>.json` (removed when the process is gone),
//! `pods/<sandbox id>/` (volumes and `/etc` files), `logs/<pod uid>/<container>/<n>.log`,
//! `ipam/<ip>` (see [`super::net`]).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::RuntimeError;

/// A sandbox as recorded on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SandboxRecord {
    pub(crate) id: String,
    pub(crate) pod_uid: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) hostname: String,
    pub(crate) host_network: bool,
    pub(crate) isolated: bool,
    pub(crate) pod_ip: IpAddr,
    /// The namespace holder (PID 1 of the pod) and its start time, when isolated.
    pub(crate) holder: Option<ProcRef>,
    /// The node end of the pod's veth pair.
    pub(crate) veth: Option<String>,
    /// Whether an address was allocated from the pod CIDR (released at stop).
    pub(crate) allocated_ip: bool,
    /// Mount points this sandbox created on the node's filesystem, removed at stop.
    pub(crate) created_paths: Vec<PathBuf>,
    /// The prepared volumes.
    pub(crate) volumes: Vec<VolumeRecord>,
    /// Which sandbox of the pod this is (absent in records of older agents: the first).
    #[serde(default)]
    pub(crate) attempt: u32,
}

/// A prepared volume: where its content is on the node and how it must be mounted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VolumeRecord {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    /// configMap/secret/downwardAPI volumes are always read-only.
    pub(crate) force_read_only: bool,
    /// A memory-backed emptyDir (a tmpfs in the pod's mount namespace).
    pub(crate) memory: bool,
    /// A tmpfs mounted on `path` on the node (Secret, downwardAPI and projected volumes),
    /// unmounted when the sandbox stops.
    #[serde(default)]
    pub(crate) tmpfs: bool,
}

/// A container as recorded on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ContainerRecord {
    pub(crate) id: String,
    pub(crate) sandbox_id: String,
    pub(crate) pod_uid: String,
    pub(crate) name: String,
    pub(crate) restart_count: i32,
    pub(crate) process: ProcRef,
    /// The container's environment, for exec. Never written to disk: it holds resolved
    /// `secretKeyRef` values. A record read back (adoption after an agent restart) has none
    /// and takes the main process's own ([`proc_environ`]).
    #[serde(default, skip_serializing)]
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: PathBuf,
    pub(crate) started_at_ns: u128,
    pub(crate) log_path: PathBuf,
    /// Its termination-message settings (absent in records of older agents: none).
    #[serde(default)]
    pub(crate) termination: super::termination::Termination,
    /// Set for a container run from its image by runc: how to reach it (`runc exec`, and
    /// `runc delete` once it has ended).
    #[serde(default)]
    pub(crate) runc: Option<RuncRef>,
}

/// What a container start knows besides its sandbox and config, for [`ContainerRecord::started`].
pub(crate) struct Launch {
    pub(crate) pid: u32,
    pub(crate) started_at: std::time::SystemTime,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: PathBuf,
    pub(crate) log_path: PathBuf,
    pub(crate) termination: super::termination::Termination,
    pub(crate) runc: Option<RuncRef>,
}

impl ContainerRecord {
    /// The record of container `id` of `sandbox` whose main process has just started (host
    /// process or runc): the process is identified by pid and start time where `/proc` has it.
    pub(crate) fn started(
        id: String,
        sandbox: &SandboxRecord,
        cfg: &super::ContainerConfig,
        l: Launch,
    ) -> ContainerRecord {
        let process = ProcRef::of(l.pid).unwrap_or(ProcRef {
            pid: l.pid,
            start_ticks: 0,
        });
        let started_at_ns = l
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        ContainerRecord {
            id,
            sandbox_id: sandbox.id.clone(),
            pod_uid: sandbox.pod_uid.clone(),
            name: cfg.name.clone(),
            restart_count: cfg.restart_count,
            process,
            env: l.env,
            cwd: l.cwd,
            started_at_ns,
            log_path: l.log_path,
            termination: l.termination,
            runc: l.runc,
        }
    }
}

/// How to drive the runc that runs a container: its binary and its `--root` (state) dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RuncRef {
    pub(crate) bin: PathBuf,
    pub(crate) root: PathBuf,
}

/// A process identified robustly: its pid and its start time (in clock ticks since boot), so a
/// reused pid is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcRef {
    pub(crate) pid: u32,
    pub(crate) start_ticks: u64,
}

impl ProcRef {
    /// The process `pid` as it is now (`None` if it does not exist).
    pub(crate) fn of(pid: u32) -> Option<Self> {
        let stat = ProcStat::read(pid)?;
        Some(Self {
            pid,
            start_ticks: stat.start_ticks,
        })
    }

    /// Whether this very process is still alive (not a zombie, not a reused pid).
    pub(crate) fn alive(&self) -> bool {
        ProcStat::read(self.pid)
            .is_some_and(|s| s.start_ticks == self.start_ticks && s.state != 'Z' && s.state != 'X')
    }
}

/// The fields of `/proc/<pid>/stat` the runtime uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcStat {
    pub(crate) state: char,
    pub(crate) pgrp: i32,
    pub(crate) start_ticks: u64,
}

impl ProcStat {
    pub(crate) fn read(pid: u32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Self::parse(&text)
    }

    /// Parses a `stat` line; the command name may contain spaces and parentheses, so fields
    /// are counted from the last `)`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields[0] is field 3 (state); pgrp is field 5; starttime is field 22.
        Some(Self {
            state: fields.first()?.chars().next()?,
            pgrp: fields.get(2)?.parse().ok()?,
            start_ticks: fields.get(19)?.parse().ok()?,
        })
    }
}

/// Which processes one caller looks for: those in process group `pgid` or carrying `marker` (a
/// `NAME=value` environment entry every descendant inherits). Processes started before `since`
/// (clock ticks since boot; a tree's root's start time) cannot carry the marker of that tree,
/// so their environment is not read for it: that keeps a walk cheap.
#[derive(Debug, Clone)]
pub(crate) struct TreeQuery {
    pub(crate) pgid: Option<i32>,
    pub(crate) marker: String,
    pub(crate) since: u64,
}

/// Live (non-zombie) processes matching `TreeQuery { pgid, marker, since }`, excluding the
/// agent itself, from a walk of `/proc` made now (blocking).
pub(crate) fn tree_pids(pgid: Option<i32>, marker: &str, since: u64) -> Vec<i32> {
    let q = TreeQuery {
        pgid,
        marker: marker.to_string(),
        since,
    };
    walk(std::slice::from_ref(&q)).pop().unwrap_or_default()
}

/// [`tree_pids`] for callers that may be many at once (a node stopping a thousand containers):
/// concurrent questions share one walk of `/proc` instead of one walk each, which made stopping
/// N containers O(N²). Every answer comes from a walk that began after the question was asked.
pub(crate) async fn tree_pids_shared(pgid: Option<i32>, marker: &str, since: u64) -> Vec<i32> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let q = TreeQuery {
        pgid,
        marker: marker.to_string(),
        since,
    };
    let start = {
        let mut b = WALKS.lock();
        b.pending.push((q.clone(), tx));
        !std::mem::replace(&mut b.walking, true)
    };
    if start {
        tokio::task::spawn_blocking(walker);
    }
    match rx.await {
        Ok(pids) => pids,
        // The walker is gone (runtime shutting down): answer alone.
        Err(_) => walk(std::slice::from_ref(&q)).pop().unwrap_or_default(),
    }
}

type Pending = Vec<(TreeQuery, tokio::sync::oneshot::Sender<Vec<i32>>)>;

struct Walks {
    pending: Pending,
    walking: bool,
}

static WALKS: parking_lot::Mutex<Walks> = parking_lot::const_mutex(Walks {
    pending: Vec::new(),
    walking: false,
});

/// Serves pending questions, a batch per walk, until none are left.
fn walker() {
    loop {
        let batch = {
            let mut b = WALKS.lock();
            if b.pending.is_empty() {
                b.walking = false;
                return;
            }
            std::mem::take(&mut b.pending)
        };
        let (queries, senders): (Vec<TreeQuery>, Vec<_>) = batch.into_iter().unzip();
        for (tx, pids) in senders.into_iter().zip(walk(&queries)) {
            let _ = tx.send(pids);
        }
    }
}

/// One walk of `/proc` answering every query.
fn walk(queries: &[TreeQuery]) -> Vec<Vec<i32>> {
    use std::collections::HashMap;
    let mut out = vec![Vec::new(); queries.len()];
    let mut by_pgid: HashMap<i32, Vec<usize>> = HashMap::new();
    let mut by_marker: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, q) in queries.iter().enumerate() {
        if let Some(g) = q.pgid {
            by_pgid.entry(g).or_default().push(i);
        }
        by_marker.entry(q.marker.as_bytes()).or_default().push(i);
    }
    let min_since = queries.iter().map(|q| q.since).min().unwrap_or(0);
    let mut in_group: Vec<usize> = Vec::new();
    for (pid, dir) in probe::handler::host_exec::other_processes() {
        let Some(stat) = ProcStat::read(pid) else {
            continue;
        };
        if stat.state == 'Z' || stat.state == 'X' {
            continue;
        }
        let Ok(ipid) = i32::try_from(pid) else {
            continue;
        };
        in_group.clear();
        if let Some(qs) = by_pgid.get(&stat.pgrp) {
            for &i in qs {
                out[i].push(ipid);
                in_group.push(i);
            }
        }
        if stat.start_ticks < min_since {
            continue;
        }
        let Ok(environ) = std::fs::read(dir.join("environ")) else {
            continue;
        };
        for var in environ.split(|b| *b == 0) {
            let Some(qs) = by_marker.get(var) else {
                continue;
            };
            for &i in qs {
                if stat.start_ticks >= queries[i].since && !in_group.contains(&i) {
                    out[i].push(ipid);
                    in_group.push(i);
                }
            }
        }
    }
    out
}

/// The most of `/proc/<pid>/environ` read (the kernel bounds an environment to a quarter of
/// the stack limit; this is far above what a container is given).
const MAX_ENVIRON: u64 = 4 << 20;

/// The environment process `pid` was started with (`/proc/<pid>/environ`), in order; empty if
/// it cannot be read. What the runtime passed to `execve` for a container's main process, so
/// an adopted container's exec sessions get the same variables without the record keeping them.
pub(crate) fn proc_environ(pid: u32) -> Vec<(String, String)> {
    use std::io::Read;
    let mut raw = Vec::new();
    let read = std::fs::File::open(format!("/proc/{pid}/environ"))
        .and_then(|f| f.take(MAX_ENVIRON).read_to_end(&mut raw));
    if read.is_err() {
        return Vec::new();
    }
    raw.split(|b| *b == 0)
        .filter_map(|var| {
            let var = String::from_utf8_lossy(var);
            let (k, v) = var.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Writes `value` as JSON to `path` atomically, readable by its owner only: through a
/// temporary file of its own (two writers of one record never share one), removed again when
/// the write fails (a full disk leaves no `.tmp` files behind).
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RuntimeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let data = serde_json::to_vec_pretty(value).map_err(|e| {
        RuntimeError::io(
            format!("encode {}", path.display()),
            std::io::Error::other(e),
        )
    })?;
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}.{n}.tmp", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&data))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            RuntimeError::io(format!("write {}", path.display()), e)
        })
}

/// Creates `dir` (and missing parents) with mode 0700, and makes an existing one 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), RuntimeError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let err = |e| RuntimeError::io(format!("create {}", dir.display()), e);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let mode = std::fs::metadata(dir).map_err(err)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// Reads every `*.json` record in `dir` (unreadable ones are skipped with a warning).
pub(crate) fn read_all<T: for<'de> Deserialize<'de>>(dir: &Path) -> Vec<T> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read(&path).map(|b| serde_json::from_slice::<T>(&b)) {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "bad runtime state file")
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable runtime state file")
            }
        }
    }
    out
}

/// Reads one JSON record (`None` if absent or unreadable).
pub(crate) fn read_one<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_records_keep_no_env_on_disk_and_adoption_reads_the_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.json");
        let rec = ContainerRecord {
            id: "c".into(),
            sandbox_id: "s".into(),
            pod_uid: "u".into(),
            name: "n".into(),
            restart_count: 0,
            process: ProcRef::of(std::process::id()).expect("self"),
            env: vec![("PASSWORD".into(), "hunter2".into())],
            cwd: "/".into(),
            started_at_ns: 0,
            log_path: "/x".into(),
            termination: Default::default(),
            runc: None,
        };
        write_json(&path, &rec).expect("written");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            !text.contains("hunter2") && !text.contains("PASSWORD"),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back: ContainerRecord = read_one(&path).expect("read back");
        assert!(back.env.is_empty());
        // What adoption takes instead: the process's own environment.
        let env = proc_environ(std::process::id());
        let path_var = std::env::var("PATH").unwrap_or_default();
        assert!(
            env.iter().any(|(k, v)| k == "PATH" && *v == path_var),
            "{env:?}"
        );
    }

    #[test]
    fn stat_parse_handles_odd_names() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 1000 10";
        let s = ProcStat::parse(line).expect("parses");
        assert_eq!(s.state, 'S');
        assert_eq!(s.pgrp, 42);
        assert_eq!(s.start_ticks, 12345);
    }

    #[test]
    fn own_process_is_alive_and_reused_pid_is_not() {
        let me = ProcRef::of(std::process::id()).expect("self");
        assert!(me.alive());
        let other = ProcRef {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!other.alive());
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let fs = testkit::fs::SmallFs::new("64k").expect("tmpfs");
        let dir = fs.path();
        fs.fill().expect("fill");
        let big = "x".repeat(256 << 10);
        assert!(write_json(&dir.join("rec.json"), &big).is_err());
        let left: Vec<_> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["filler"]);
    }
}
