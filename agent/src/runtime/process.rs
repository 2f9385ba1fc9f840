//! [`ProcessRuntime`]: containers as host processes, isolated per pod in Linux namespaces when
//! the agent is root (see `isolate`), in "host mode" otherwise.
//!
//! Each container is started in its own process group with a marker variable
//! (`PADDOCK_CONTAINER_ID=<id>`) in its environment, which every descendant inherits: the
//! container's process tree is its group plus every process carrying the marker, so a
//! descendant that called `setsid` is still found. Stopping sends SIGTERM to that tree, waits
//! the grace period, then SIGKILLs whatever is left and returns when nothing is. Finding a tree
//! walks `/proc`; concurrent searches (a node stopping many containers at once) share one walk
//! (`state::tree_pids_shared`).
//!
//! A container's stdout and stderr are FIFOs under the runtime's root (`containers/<id>.out`,
//! `.err`), which a copier thread of the agent reads into the CRI log file
//! ([`super::logs::spawn_copier`]). The container holds its ends open for reading and writing,
//! so the pipes outlive the agent: while no agent reads, a container that fills a pipe (64 KiB)
//! blocks in `write` — it neither dies of `SIGPIPE` nor fills the disk — and a restarted agent
//! opens the FIFOs again and copies on from there (only a line the dead agent had begun is
//! lost, as with containerd's CRI plugin). The agent reaps the main process and
//! records its exit; when the main process ends, whatever it left running goes too (as with a
//! container's PID namespace). State is written to disk so a restarted agent finds what it left
//! running ([`Runtime::list`]) and adopts it: sandboxes take new containers, containers keep
//! running and their output is copied again (their end is seen through a pidfd, not by
//! polling). Only an adopted container's exit code is lost (the new agent is not its parent):
//! it ends as `ContainerStatusUnknown`. A container's log files stay until its pod's logs are
//! removed (the pod is deleted) or an instance two restarts newer starts.
//!
//! Containers run from images (runtime handler `runc`) are started by `from_image` and are
//! otherwise handled as these are.
//!
//! Not yet (host containers): cgroups (resource limits, `OOMKilled`), volume mounts in host mode (they need a
//! mount namespace, so root), tty containers (output is logged as plain stdout).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use parking_lot::Mutex;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

pub use super::container::MARKER_ENV;
use super::container::{self, ContainerRt};
use super::exec::{self, ContainerExecRunner, ExecSession};
use super::isolate::{self, PidNs};
use super::logs::{self, CopierHandle, CopierInput, LogWriter, RotatePolicy};
use super::net::{self, Ipam, NodeNetwork};
use super::spawn::{find_in_path, resolve_program, spawn_error};

mod from_image;
mod sandbox;
mod start;
use super::state::{self, ContainerRecord, ProcRef, SandboxRecord};
use super::sys::{self, ChildSetup};
use super::termination::Termination;
use super::volumes;
use super::{
    ContainerConfig, ContainerId, Exited, Recovered, RecoveredContainer, Runtime, RuntimeError,
    Sandbox, SandboxConfig, Started,
};

/// The `PATH` a container gets when its env sets none (what container runtimes default to).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How often a stop checks whether the container's processes are gone.
const STOP_POLL: Duration = Duration::from_millis(20);

/// How long a SIGKILLed tree may take to disappear before stop reports an error.
const KILL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs containers as processes; see the module docs.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    root: PathBuf,
    node: NodeNetwork,
    isolated: bool,
    log_policy: Mutex<RotatePolicy>,
    ipam: Ipam,
    holder_bin: PathBuf,
    sandboxes: Mutex<HashMap<String, Arc<SandboxRt>>>,
    containers: Mutex<HashMap<ContainerId, Arc<ContainerRt>>>,
    bridge: net::Bridge,
    /// Containers from images (runc), once [`ProcessRuntime::enable_images`] set it up.
    images: std::sync::OnceLock<from_image::Images>,
    /// This runtime itself, for the bridge watcher (which must not keep it alive).
    me: std::sync::Weak<Shared>,
    /// During [`Shared::shutdown`], the pods whose containers are still stopping;
    /// [`NOT_STOPPING`] before.
    stopping: std::sync::atomic::AtomicUsize,
    /// Set when [`Shared::shutdown`] begins: a sandbox or container whose start was under way
    /// then (a pod worker finishing its step) is stopped again by whoever started it, since
    /// the shutdown's list of what to stop was taken without it.
    closing: std::sync::atomic::AtomicBool,
}

/// [`Shared::stopping`] before a shutdown.
const NOT_STOPPING: usize = usize::MAX;

#[derive(Debug)]
struct SandboxRt {
    rec: SandboxRecord,
    /// The holder process when this agent started it (so it is reaped here).
    holder: tokio::sync::Mutex<Option<Child>>,
}

/// SIGKILLs what is left of a container whose main process is gone, until nothing is (bounded).
async fn kill_leftovers(pgid: Option<i32>, marker: &str, since: u64) {
    let deadline = Instant::now() + KILL_TIMEOUT;
    loop {
        let pids = state::tree_pids_shared(pgid, marker, since).await;
        if pids.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        tokio::time::sleep(STOP_POLL).await;
    }
}

fn from_ns(ns: u128) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let context = context.into();
    move |e| RuntimeError::io(context, e)
}

/// Opens a FIFO's read end without blocking (there may be no writer). Anything else (the raw
/// output file of a container an older agent started) is refused rather than replayed.
fn open_fifo_reader(path: &Path) -> Result<std::fs::File, RuntimeError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(io(format!("open {}", path.display())))?;
    let fifo = f
        .metadata()
        .map_err(io(format!("stat {}", path.display())))?
        .file_type()
        .is_fifo();
    if !fifo {
        return Err(RuntimeError::Config(format!(
            "{} is not a pipe (left by an older agent)",
            path.display()
        )));
    }
    Ok(f)
}

fn exited_from(status: std::io::Result<std::process::ExitStatus>) -> Exited {
    use std::os::unix::process::ExitStatusExt;
    let finished_at = SystemTime::now();
    let (exit_code, signal) = match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => (c, None),
            (None, Some(sig)) => (128 + sig, Some(sig)),
            (None, None) => (-1, None),
        },
        Err(_) => (-1, None),
    };
    Exited {
        exit_code,
        signal,
        finished_at,
        reason: if exit_code == 0 { "Completed" } else { "Error" }.to_string(),
        message: None,
    }
}

fn unknown_exit(message: &str) -> Exited {
    Exited {
        exit_code: 137,
        signal: None,
        finished_at: SystemTime::now(),
        reason: "ContainerStatusUnknown".to_string(),
        message: Some(message.to_string()),
    }
}

/// Completes an exit's message with the termination message (off the async threads: it reads
/// files) and removes the termination-log file.
async fn with_termination_message(
    exited: Exited,
    termination: Termination,
    log_path: PathBuf,
) -> Exited {
    let fallback = exited.clone();
    tokio::task::spawn_blocking(move || {
        let mut exited = exited;
        termination.complete(&mut exited, &log_path);
        termination.remove();
        exited
    })
    .await
    .unwrap_or(fallback)
}

impl ProcessRuntime {
    /// A runtime keeping its state, logs and volumes under `root`. Pods are isolated when
    /// `node.isolated` is set and the agent runs as root; otherwise they run in host mode.
    pub fn new(root: PathBuf, node: NodeNetwork) -> Result<Self, RuntimeError> {
        // The node's state is its owner's alone (0700), tightened if an older agent made it
        // looser: container records, logs and volume contents live here.
        for d in std::iter::once(root.clone())
            .chain(["sandboxes", "containers", "pods", "logs", "ipam"].map(|d| root.join(d)))
        {
            state::private_dir(&d)?;
        }
        let isolated = node.isolated && nix::unistd::geteuid().is_root();
        let holder_bin = find_in_path("sleep", DEFAULT_PATH).unwrap_or_else(|| "sleep".into());
        if isolated && !net::link_exists("lo") {
            return Err(RuntimeError::Config("no loopback device".into()));
        }
        Ok(Self {
            shared: Arc::new_cyclic(|me| Shared {
                ipam: Ipam::new(root.join("ipam"), node.pod_cidr),
                bridge: net::Bridge::new(node.bridge.clone(), node.pod_cidr),
                root,
                node,
                isolated,
                log_policy: Mutex::new(RotatePolicy::default()),
                holder_bin,
                sandboxes: Mutex::new(HashMap::new()),
                containers: Mutex::new(HashMap::new()),
                images: std::sync::OnceLock::new(),
                me: me.clone(),
                stopping: std::sync::atomic::AtomicUsize::new(NOT_STOPPING),
                closing: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// Whether pods get their own namespaces (root and isolation enabled).
    pub fn is_isolated(&self) -> bool {
        self.shared.isolated
    }

    /// Changes how container log files are bounded (default: 10 MiB, 5 files).
    pub fn set_log_policy(&self, policy: RotatePolicy) {
        *self.shared.log_policy.lock() = policy;
    }

    /// The runtime's root directory.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }
}

impl Shared {
    fn sandbox_path(&self, id: &str) -> PathBuf {
        self.root.join("sandboxes").join(format!("{id}.json"))
    }

    fn container_path(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(format!("{id}.json"))
    }

    fn output_fifo(&self, id: &str, which: &str) -> PathBuf {
        self.root.join("containers").join(format!("{id}.{which}"))
    }

    /// Creates a container's stdout and stderr FIFOs: the child's ends (opened for reading and
    /// writing, so the pipes live as long as the container, see the module docs) and the
    /// agent's non-blocking read ends.
    fn output_fifos(
        &self,
        id: &str,
    ) -> Result<([std::fs::File; 2], [std::fs::File; 2]), RuntimeError> {
        let mut child = Vec::new();
        let mut ours = Vec::new();
        for which in ["out", "err"] {
            let path = self.output_fifo(id, which);
            let _ = std::fs::remove_file(&path);
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| RuntimeError::io(format!("mkfifo {}", path.display()), e.into()))?;
            ours.push(open_fifo_reader(&path)?);
            child.push(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io(format!("open {}", path.display())))?,
            );
        }
        let pair = |v: Vec<std::fs::File>| -> Result<[std::fs::File; 2], RuntimeError> {
            v.try_into()
                .map_err(|_| RuntimeError::Config("output pipes".into()))
        };
        Ok((pair(child)?, pair(ours)?))
    }

    /// Opens a container instance's log file.
    fn log_writer(&self, log_path: &Path) -> Result<LogWriter, RuntimeError> {
        LogWriter::open(log_path, *self.log_policy.lock())
            .map_err(io(format!("open log {}", log_path.display())))
    }

    /// Starts copying a container's output into its log (adopted: from the FIFOs a previous
    /// agent made). `None` (logged) when there are no pipes to copy or no thread for it.
    fn start_copier(
        &self,
        id: &str,
        writer: LogWriter,
        pipes: Option<[std::fs::File; 2]>,
        tap: Option<tokio::sync::broadcast::Sender<(logs::Stream, bytes::Bytes)>>,
    ) -> Option<CopierHandle> {
        let started = (|| {
            let [stdout, stderr] = match pipes {
                Some(p) => p,
                None => [
                    open_fifo_reader(&self.output_fifo(id, "out"))?,
                    open_fifo_reader(&self.output_fifo(id, "err"))?,
                ],
            };
            logs::spawn_copier(CopierInput {
                stdout,
                stderr,
                writer,
                tap,
            })
            .map_err(io("start the log copier"))
        })();
        started
            .map_err(
                |e| tracing::warn!(container = id, error = %e, "container output is not logged"),
            )
            .ok()
    }

    /// Every state file of a container (record, output FIFOs).
    fn container_files(&self, id: &str) -> Vec<PathBuf> {
        let dir = self.root.join("containers");
        ["json", "out", "err"]
            .iter()
            .map(|ext| dir.join(format!("{id}.{ext}")))
            .collect()
    }

    fn pod_dir(&self, sandbox_id: &str) -> PathBuf {
        self.root.join("pods").join(sandbox_id)
    }

    /// Creates the node file a container instance's termination log is mounted from, under the
    /// pod's directory so the sandbox's teardown removes it too. The kubelet makes it 0666 for
    /// containers running as any user; every container here runs as root (the process runtime
    /// applies no `runAsUser`), so it is 0600, root's, like everything under the data dir.
    /// Like the kubelet, a file that cannot be created is logged and the container starts
    /// without the mount.
    fn termination_file(&self, sandbox_id: &str, container_id: &str) -> Option<PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let dir = self.pod_dir(sandbox_id).join("termination");
        let file = dir.join(container_id);
        let made = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&file)
            })
            .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(0o600)));
        match made {
            Ok(()) => Some(file),
            Err(e) => {
                tracing::error!(path = %file.display(), error = %e, "error on creating termination-log file");
                None
            }
        }
    }

    pub(crate) fn instance_log(&self, pod_uid: &str, container: &str, n: i32) -> PathBuf {
        self.root
            .join("logs")
            .join(pod_uid)
            .join(container)
            .join(format!("{n}.log"))
    }

    fn sandbox(&self, id: &str) -> Option<Arc<SandboxRt>> {
        if let Some(s) = self.sandboxes.lock().get(id) {
            return Some(s.clone());
        }
        let rec: SandboxRecord = state::read_one(&self.sandbox_path(id))?;
        let rt = Arc::new(SandboxRt {
            rec,
            holder: tokio::sync::Mutex::new(None),
        });
        Some(
            self.sandboxes
                .lock()
                .entry(id.to_string())
                .or_insert(rt)
                .clone(),
        )
    }

    pub(crate) fn container(&self, id: &ContainerId) -> Option<Arc<ContainerRt>> {
        if let Some(c) = self.containers.lock().get(id) {
            return Some(c.clone());
        }
        let rec: ContainerRecord = state::read_one(&self.container_path(&id.0))?;
        // Only a live process is adopted: a dead one's record is being cleaned up by whoever
        // followed it (adopting it again would replay the end of its output).
        if !rec.process.alive() {
            return None;
        }
        Some(self.adopt(rec))
    }

    /// Registers a container left by a previous agent run; its exit is noticed by polling.
    fn adopt(&self, mut rec: ContainerRecord) -> Arc<ContainerRt> {
        if rec.env.is_empty() {
            rec.env = state::proc_environ(rec.process.pid);
        }
        let isolated = self
            .sandbox(&rec.sandbox_id)
            .is_some_and(|s| s.rec.isolated);
        let (tx, rx) = watch::channel(None);
        let process = rec.process;
        let files = self.container_files(&rec.id);
        let id = ContainerId(rec.id.clone());
        let id_for_task = rec.id.clone();
        let termination = rec.termination.clone();
        let log_path = rec.log_path.clone();
        let runc = rec.runc.is_some().then(|| self.me.clone());
        // A log that cannot be opened now is retried at every write: the pipes are drained
        // whatever happens, so the container never blocks on them for good.
        let writer = self.log_writer(&rec.log_path).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "container log");
            LogWriter::closed(&rec.log_path, *self.log_policy.lock())
        });
        let (tap, _) = tokio::sync::broadcast::channel(container::ATTACH_BUFFER);
        let attach = container::Attach::output_only(Some(&tap));
        let copier = self.start_copier(&rec.id, writer, None, Some(tap));
        let rt = Arc::new(ContainerRt {
            rec,
            isolated,
            exited: rx,
            attach,
        });
        {
            let mut containers = self.containers.lock();
            if let Some(existing) = containers.get(&id) {
                return existing.clone();
            }
            containers.insert(id, rt.clone());
        }
        tokio::spawn(async move {
            let watch_exit = async {
                // The pidfd is opened before the identity check, so a reused pid cannot pass.
                let pidfd = i32::try_from(process.pid)
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
                    .and_then(sys::pidfd);
                match pidfd {
                    Ok(fd) => {
                        if process.alive() {
                            tokio::select! {
                                _ = fd.readable() => {}
                                _ = tx.closed() => {}
                            }
                        }
                    }
                    // No pidfd (an older kernel): look every 100 ms.
                    Err(_) => {
                        let mut tick = tokio::time::interval(Duration::from_millis(100));
                        loop {
                            tick.tick().await;
                            if !process.alive() || tx.is_closed() {
                                break;
                            }
                        }
                    }
                }
            };
            let marker = format!("{MARKER_ENV}={}", id_for_task);
            let watch_exit = async {
                watch_exit.await;
                kill_leftovers(
                    i32::try_from(process.pid).ok(),
                    &marker,
                    process.start_ticks,
                )
                .await;
            };
            watch_exit.await;
            if let Some(shared) = runc.and_then(|w| w.upgrade()) {
                shared.remove_image_container(&id_for_task).await;
            }
            if let Some(copier) = copier {
                copier.finish().await;
            }
            for f in files {
                let _ = std::fs::remove_file(f);
            }
            let exited =
                unknown_exit("The container's exit status was lost when the agent restarted");
            let _ = tx.send(Some(
                with_termination_message(exited, termination, log_path).await,
            ));
        });
        rt
    }

    /// Appends created mount points to the pod's list (removed at sandbox stop).
    fn note_mount_points(&self, sandbox_id: &str, paths: &[PathBuf]) -> Result<(), RuntimeError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.pod_dir(sandbox_id).join("mountpoints");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("open {}", path.display())))?;
        for p in paths {
            writeln!(f, "{}", p.display()).map_err(io(format!("write {}", path.display())))?;
        }
        Ok(())
    }

    fn prune_logs(&self, pod_uid: &str, container: &str, current: i32) {
        let dir = self.root.join("logs").join(pod_uid).join(container);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|s| s.split('.').next())
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if n < current - 1 || n > current {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    async fn wait_container(&self, id: &ContainerId) -> Exited {
        let Some(c) = self.container(id) else {
            return unknown_exit("The container could not be located");
        };
        let mut rx = c.exited.clone();
        let res = rx.wait_for(|v| v.is_some()).await.map(|v| v.clone());
        match res {
            Ok(Some(e)) => e,
            _ => unknown_exit("The container could not be located"),
        }
    }

    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<(), RuntimeError> {
        let Some(c) = self.container(id) else {
            return Ok(());
        };
        if c.gone().await {
            c.settled().await;
            return Ok(());
        }
        c.signal_tree(Signal::SIGTERM).await;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if c.gone().await {
                c.settled().await;
                return Ok(());
            }
            tokio::time::sleep(STOP_POLL.min(deadline - Instant::now())).await;
        }
        let deadline = Instant::now() + KILL_TIMEOUT;
        loop {
            c.signal_tree(Signal::SIGKILL).await;
            if c.gone().await {
                c.settled().await;
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::Sandbox(format!(
                    "container {id}: processes {:?} did not exit after SIGKILL",
                    c.tree().await
                )));
            }
            tokio::time::sleep(STOP_POLL).await;
        }
    }

    async fn list(&self) -> Result<Vec<Recovered>, RuntimeError> {
        let records: Vec<SandboxRecord> = state::read_all(&self.root.join("sandboxes"));
        let live: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        self.ipam.release_all_except(&live);
        let mut out = Vec::new();
        let mut attached = false;
        for rec in records {
            let Some(sb) = self.sandbox(&rec.id) else {
                continue;
            };
            let alive = sb.rec.holder.is_none_or(|h| h.alive());
            attached |= alive && sb.rec.veth.is_some();
            out.push(Recovered {
                sandbox: Sandbox {
                    id: rec.id.clone(),
                    pod_ip: rec.pod_ip,
                    host_network: rec.host_network,
                    isolated: rec.isolated,
                },
                pod_uid: rec.pod_uid.clone(),
                namespace: rec.namespace.clone(),
                name: rec.name.clone(),
                alive,
                attempt: rec.attempt,
                containers: Vec::new(),
            });
        }
        // Pods a previous agent left: the bridge may have gone while no one watched it.
        if self.isolated
            && attached
            && let Err(e) = self.ensure_bridge().await
        {
            tracing::warn!(error = %e, "cannot set up the pod bridge for the recovered pods");
        }
        for crec in state::read_all::<ContainerRecord>(&self.root.join("containers")) {
            if !crec.process.alive() {
                if !self
                    .containers
                    .lock()
                    .contains_key(&ContainerId(crec.id.clone()))
                {
                    for f in self.container_files(&crec.id) {
                        let _ = std::fs::remove_file(f);
                    }
                }
                continue;
            }
            let id = ContainerId(crec.id.clone());
            let Some(c) = self.container(&id) else {
                continue;
            };
            if let Some(r) = out.iter_mut().find(|r| r.sandbox.id == c.rec.sandbox_id) {
                r.containers.push(RecoveredContainer {
                    id,
                    name: c.rec.name.clone(),
                    restart_count: c.rec.restart_count,
                    pid: c.rec.process.pid,
                    started_at: from_ns(c.rec.started_at_ns),
                });
            }
        }
        Ok(out)
    }

    /// An error once the node is shutting down (see `closing`).
    fn refuse_when_closing(&self) -> Result<(), RuntimeError> {
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(RuntimeError::Sandbox("the node is shutting down".into()));
        }
        Ok(())
    }

    async fn shutdown(
        &self,
        grace: Duration,
        pod_grace: &HashMap<String, Duration>,
    ) -> Result<(), RuntimeError> {
        // Before the lists below are taken (see `closing`).
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.list().await?;
        // One group per pod, so that the pods still stopping can be counted
        // ([`Runtime::pods_stopping`]); all pods and their containers stop concurrently.
        let mut pods: HashMap<String, Vec<ContainerId>> = self
            .sandboxes
            .lock()
            .keys()
            .map(|id| (id.clone(), Vec::new()))
            .collect();
        for (id, c) in self.containers.lock().iter() {
            pods.entry(c.rec.sandbox_id.clone())
                .or_default()
                .push(id.clone());
        }
        self.stopping
            .store(pods.len(), std::sync::atomic::Ordering::Relaxed);
        let own: HashMap<String, Duration> = self
            .sandboxes
            .lock()
            .iter()
            .filter_map(|(id, sb)| Some((id.clone(), *pod_grace.get(&sb.rec.pod_uid)?)))
            .collect();
        let stops = pods.iter().map(|(sandbox, ids)| {
            let grace = own
                .get(sandbox)
                .map_or(grace, |g| (*g).min(grace))
                .max(super::MIN_KILL_GRACE.min(grace));
            async move {
                let stops = ids.iter().map(|id| self.stop_container(id, grace));
                let results = futures::future::join_all(stops).await;
                self.stopping
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                results
            }
        });
        let mut first_err = None;
        for r in futures::future::join_all(stops).await.into_iter().flatten() {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        let sandboxes: Vec<String> = self.sandboxes.lock().keys().cloned().collect();
        for id in sandboxes {
            if let Err(e) = self.stop_sandbox(&id).await {
                first_err.get_or_insert(e);
            }
        }
        if self.isolated {
            self.bridge.release().await;
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl exec::Containers for Shared {
    fn container(&self, id: &ContainerId) -> Option<Arc<ContainerRt>> {
        Shared::container(self, id)
    }
}

#[async_trait::async_trait]
impl Runtime for ProcessRuntime {
    async fn run_sandbox(&self, cfg: &SandboxConfig) -> Result<Sandbox, RuntimeError> {
        self.shared.refuse_when_closing()?;
        let sandbox = self.shared.run_sandbox(cfg).await?;
        if self.shared.refuse_when_closing().is_err() {
            // Made while the node stops, after its shutdown listed the sandboxes (or not):
            // stopping it here leaves no holder, mount or veth behind.
            let _ = self.shared.stop_sandbox(&sandbox.id).await;
            self.shared.refuse_when_closing()?;
        }
        Ok(sandbox)
    }

    async fn stop_sandbox(&self, sandbox: &Sandbox) -> Result<(), RuntimeError> {
        self.shared.stop_sandbox(&sandbox.id).await
    }

    async fn update_volume(
        &self,
        sandbox: &Sandbox,
        volume: &super::VolumeConfig,
    ) -> Result<(), RuntimeError> {
        let super::VolumeSource::Files { files, .. } = &volume.source else {
            return Ok(());
        };
        let dir = self
            .shared
            .pod_dir(&sandbox.id)
            .join("volumes")
            .join(&volume.name);
        let files = files.clone();
        tokio::task::spawn_blocking(move || super::volumes::update_atomic_payload(&dir, &files))
            .await
            .map_err(|e| RuntimeError::Volume(e.to_string()))?
            .map_err(RuntimeError::Volume)
    }

    async fn start_container(
        &self,
        sandbox: &Sandbox,
        cfg: &ContainerConfig,
    ) -> Result<Started, RuntimeError> {
        self.shared.refuse_when_closing()?;
        let started = self.shared.start_container(sandbox, cfg).await?;
        if self.shared.refuse_when_closing().is_err() {
            // As for a sandbox: a container of a host-mode pod has no holder whose end
            // would end it.
            let _ = self
                .shared
                .stop_container(&started.id, Duration::ZERO)
                .await;
            self.shared.refuse_when_closing()?;
        }
        Ok(started)
    }

    async fn wait_container(&self, id: &ContainerId) -> Exited {
        self.shared.wait_container(id).await
    }

    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<(), RuntimeError> {
        self.shared.stop_container(id, grace).await
    }

    fn exec_runner(&self, id: &ContainerId) -> Arc<dyn probe::ExecRunner> {
        Arc::new(ContainerExecRunner::new(self.shared.clone(), id.clone()))
    }

    async fn exec(
        &self,
        id: &ContainerId,
        argv: &[String],
        tty: bool,
        stdin: bool,
    ) -> Result<ExecSession, RuntimeError> {
        exec::start_session(self.shared.as_ref(), id, argv, tty, stdin).await
    }

    fn cgroups(&self) -> Option<oci::cgroups::Layout> {
        self.shared
            .images
            .get()
            .and_then(|i| i.runc.cgroups())
            .cloned()
    }

    fn log_path(&self, id: &ContainerId) -> PathBuf {
        match self.shared.container(id) {
            Some(c) => c.rec.log_path.clone(),
            None => self
                .shared
                .root
                .join("logs")
                .join("unknown")
                .join(format!("{id}.log")),
        }
    }

    fn instance_log_path(&self, pod_uid: &str, container: &str, restart_count: i32) -> PathBuf {
        self.shared.instance_log(pod_uid, container, restart_count)
    }

    async fn remove_pod_logs(&self, pod_uid: &str) -> Result<(), RuntimeError> {
        if pod_uid.is_empty() || pod_uid.contains('/') || pod_uid.contains("..") {
            return Ok(());
        }
        let dir = self.shared.root.join("logs").join(pod_uid);
        match tokio::fs::remove_dir_all(&dir).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RuntimeError::io(format!("remove {}", dir.display()), e))
            }
            _ => Ok(()),
        }
    }

    async fn pods_with_logs(&self) -> Vec<String> {
        let mut uids = Vec::new();
        let Ok(mut dir) = tokio::fs::read_dir(self.shared.root.join("logs")).await else {
            return uids;
        };
        while let Ok(Some(e)) = dir.next_entry().await {
            if let Some(uid) = e.file_name().to_str() {
                uids.push(uid.to_string());
            }
        }
        uids
    }

    async fn attach(&self, id: &ContainerId) -> Result<super::AttachSession, RuntimeError> {
        let c = self
            .shared
            .container(id)
            .ok_or_else(|| RuntimeError::ContainerNotFound(id.0.clone()))?;
        let output = c
            .attach
            .output
            .as_ref()
            .and_then(tokio::sync::broadcast::WeakSender::upgrade)
            .filter(|_| c.running())
            .ok_or_else(|| RuntimeError::ContainerNotRunning(id.0.clone()))?
            .subscribe();
        let stdin = c
            .attach
            .stdin
            .lock()
            .await
            .is_some()
            .then(|| super::AttachStdin::new(c.attach.stdin.clone(), c.attach.stdin_once));
        Ok(super::AttachSession {
            output,
            stdin,
            resizer: exec::Resizer::new(c.attach.tty.clone()),
        })
    }

    async fn port_forward(
        &self,
        pod_uid: &str,
        port: u16,
    ) -> Result<tokio::net::TcpStream, String> {
        // The pod's newest sandbox (a re-created one has a higher attempt).
        let sandbox = self
            .shared
            .sandboxes
            .lock()
            .values()
            .filter(|s| s.rec.pod_uid == pod_uid)
            .max_by_key(|s| s.rec.attempt)
            .cloned()
            .ok_or_else(|| format!("no sandbox of pod {pod_uid} on this node"))?;
        super::portforward::dial(&sandbox.rec, port).await
    }

    async fn sandbox_ready(&self, sandbox: &Sandbox) -> bool {
        self.shared.sandbox_ready(&sandbox.id).await
    }

    async fn restart_count_from_logs(&self, pod_uid: &str, container: &str) -> i32 {
        let dir = match self.shared.instance_log(pod_uid, container, 0).parent() {
            Some(d) => d.to_path_buf(),
            None => return 0,
        };
        tokio::task::spawn_blocking(move || logs::restart_count_from_dir(&dir))
            .await
            .unwrap_or(0)
    }

    async fn list(&self) -> Result<Vec<Recovered>, RuntimeError> {
        self.shared.list().await
    }

    async fn shutdown(&self, grace: Duration) -> Result<(), RuntimeError> {
        self.shared.shutdown(grace, &HashMap::new()).await
    }

    async fn shutdown_pods(
        &self,
        grace: Duration,
        pod_grace: &HashMap<String, Duration>,
    ) -> Result<(), RuntimeError> {
        self.shared.shutdown(grace, pod_grace).await
    }

    fn pods_stopping(&self) -> Option<usize> {
        match self
            .shared
            .stopping
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            NOT_STOPPING => None,
            n => Some(n),
        }
    }
}

#[cfg(test)]
mod tests;
