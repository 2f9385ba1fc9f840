//! The container runtime: the [`Runtime`] trait the pod workers drive, and [`ProcessRuntime`],
//! which runs a container's `command` + `args` from the host's filesystem (the image is
//! recorded, not pulled).
//!
//! Start with [`Runtime`] (the CRI-shaped contract: sandbox = pod, then containers in it), then
//! [`process`] for the implementation. When the agent runs as root on Linux each pod gets its
//! own network, mount, UTS, IPC and PID namespaces (`isolate` and the one `unsafe` module,
//! `sys`); `hostNetwork: true` pods keep the node's network and UTS namespaces but still get
//! their own mount, IPC and PID namespaces, as in Kubernetes. Each isolated container also gets
//! a private `/dev` (a tmpfs with the node's null, zero, full, random, urandom, tty, ptmx and
//! pts, the pod's shm and an mqueue), where its termination-log file is mounted. Without root,
//! containers are plain host processes ("host mode": pod IP = node IP, no mounts, so no
//! termination-log file either — only the log fallback). Pod networking (bridge, veth, pod IP
//! allocation) is [`net`]; volumes and the pod's own `/etc/hosts`, `/etc/hostname`,
//! `/etc/resolv.conf` are `volumes`; container log
//! files in the CRI format are [`logs`]; `kubectl exec` and exec probes are [`exec`]; the
//! termination message an exit reports (`terminationMessagePath` / `terminationMessagePolicy`)
//! is [`termination`]. What a container start and exec share sits in two leaf modules both
//! use: `container` (a known container and its process tree) and `spawn` (resolving the program,
//! naming a failed spawn).
//!
//! Containers of pods whose runtime handler is `runc` run their image instead
//! ([`ContainerConfig::image_run`], `process/from_image.rs`): the same sandbox (namespaces, network,
//! volumes, `/etc` files), logs, stop and adoption, with the process started by the `oci`
//! crate's runc driver in an overlay of the image's layers.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod container;
mod error;
pub mod exec;
mod isolate;
pub mod logs;
pub mod net;
mod portforward;
pub mod process;
mod spawn;
mod state;
#[allow(unsafe_code)]
mod sys;
pub mod termination;
mod volumes;

pub use error::RuntimeError;
pub use exec::{ExecSession, Resizer};
pub use net::{NodeNetwork, PodCidr};
pub use process::ProcessRuntime;

/// The smallest grace period a container's kill gets (the kubelet's
/// `minimumGracePeriodInSeconds`: always a short window to exit on SIGTERM).
pub const MIN_KILL_GRACE: Duration = Duration::from_secs(2);

/// What the runtime needs to create a pod sandbox (the pod-level namespaces, network and
/// volumes), like CRI's `PodSandboxConfig`.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    /// The pod's `metadata.uid`.
    pub pod_uid: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's hostname (`spec.hostname`, else the pod name), written to `/etc/hostname`.
    pub hostname: String,
    /// `spec.hostNetwork`: share the node's network (and UTS) namespace.
    pub host_network: bool,
    /// The pod's volumes, resolved by the caller.
    pub volumes: Vec<VolumeConfig>,
    /// What goes into the pod's `/etc/resolv.conf` (empty: a copy of the node's).
    pub dns: DnsConfig,
    /// Extra `/etc/hosts` lines (`spec.hostAliases`): an IP and its names.
    pub extra_hosts: Vec<(String, Vec<String>)>,
    /// Which sandbox of the pod this is (CRI's `PodSandboxMetadata.attempt`): 0 for the first,
    /// one more each time a sandbox that went away is re-created.
    pub attempt: u32,
}

/// The pod's resolver configuration (`spec.dnsPolicy` / `spec.dnsConfig`, resolved by the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// `nameserver` lines.
    pub nameservers: Vec<String>,
    /// The `search` line.
    pub searches: Vec<String>,
    /// The `options` line (`ndots:5`, …).
    pub options: Vec<String>,
}

/// One pod volume.
#[derive(Debug, Clone)]
pub struct VolumeConfig {
    /// The volume's name, as `volumeMounts[].name` refers to it.
    pub name: String,
    /// Where its content comes from.
    pub source: VolumeSource,
}

/// Where a volume's content comes from.
#[derive(Debug, Clone)]
pub enum VolumeSource {
    /// An empty directory that lives as long as the pod (`medium: Memory` → a tmpfs when
    /// isolated).
    EmptyDir {
        /// `medium: Memory`.
        memory: bool,
    },
    /// A path on the node.
    HostPath {
        /// The node path.
        path: PathBuf,
        /// `hostPath.type`, checked (and created for the `…OrCreate` kinds) at sandbox creation.
        kind: HostPathType,
    },
    /// A PersistentVolume's directory on the node (a `persistentVolumeClaim` or `ephemeral`
    /// volume whose claim is bound to a `hostPath` or `local` volume).
    Persistent {
        /// The node path.
        path: PathBuf,
        /// The volume's `hostPath.type` (`Directory` for `local` volumes, which must exist).
        kind: HostPathType,
        /// `persistentVolumeClaim.readOnly`: every mount of it is read-only.
        read_only: bool,
        /// A local-path volume: its directory is made under this storage root (see
        /// `crate::storage`) instead of by the hostPath type check.
        local_path_root: Option<PathBuf>,
    },
    /// Files computed by the caller (configMap, secret, downwardAPI, projected). Such volumes
    /// are always mounted read-only, as the kubelet does.
    Files {
        /// The files, with paths relative to the volume root.
        files: Vec<ProjectedFile>,
        /// `defaultMode` (each file carries its resolved mode; 0o644 upstream).
        default_mode: u32,
        /// Written on a tmpfs, never the node's disk (Secret, downwardAPI and projected
        /// volumes, as the kubelet's memory-medium emptyDir wrapper), which needs root; without
        /// it (host mode, where no volume is mounted anyway) nothing is written.
        memory: bool,
    },
}

/// `hostPath.type` (upstream `HostPathType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HostPathType {
    /// `""`: no check.
    #[default]
    Unset,
    /// Create an empty directory (0755) if nothing exists there.
    DirectoryOrCreate,
    /// A directory must exist.
    Directory,
    /// Create an empty file (0644) if nothing exists there.
    FileOrCreate,
    /// A file must exist.
    File,
    /// A UNIX socket must exist.
    Socket,
    /// A character device must exist.
    CharDevice,
    /// A block device must exist.
    BlockDevice,
}

impl HostPathType {
    /// Parses the API value (`""`, `DirectoryOrCreate`, …); `None` for an unknown value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "" => Self::Unset,
            "DirectoryOrCreate" => Self::DirectoryOrCreate,
            "Directory" => Self::Directory,
            "FileOrCreate" => Self::FileOrCreate,
            "File" => Self::File,
            "Socket" => Self::Socket,
            "CharDevice" => Self::CharDevice,
            "BlockDevice" => Self::BlockDevice,
            _ => return None,
        })
    }
}

/// One file of a [`VolumeSource::Files`] volume.
#[derive(Debug, Clone)]
pub struct ProjectedFile {
    /// Path relative to the volume root (`key` or `items[].path`); no `..`, not absolute.
    pub path: String,
    /// The content.
    pub data: Vec<u8>,
    /// File mode (`items[].mode`, else the volume's `defaultMode`), exactly (0 is 0).
    pub mode: u32,
}

/// A created pod sandbox; the caller keeps it and passes it back for containers and stop.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The runtime's id for it (stable across agent restarts).
    pub id: String,
    /// The pod IP (the node IP in host mode).
    pub pod_ip: IpAddr,
    /// Whether the pod shares the node's network.
    pub host_network: bool,
    /// Whether the pod has its own namespaces (false in host mode).
    pub isolated: bool,
}

/// What the runtime needs to start one container, like CRI's `ContainerConfig`.
#[derive(Debug, Clone, Default)]
pub struct ContainerConfig {
    /// The container's name.
    pub name: String,
    /// `command` + `args` after `$(VAR)` expansion; the first element is the program.
    pub argv: Vec<String>,
    /// The environment, in order (later entries win). Only this reaches the process, plus
    /// `PATH` (a default when unset), `HOSTNAME` and `HOME`, as a container runtime sets them.
    pub env: Vec<(String, String)>,
    /// `workingDir` (else `/` when isolated, the runtime root's pod dir in host mode).
    pub working_dir: Option<PathBuf>,
    /// `volumeMounts`.
    pub mounts: Vec<MountConfig>,
    /// The container's declared ports (used to report a port clash in host mode clearly).
    pub ports: Vec<PortConfig>,
    /// `stdin`: keep an open stdin pipe (else `/dev/null`).
    pub stdin: bool,
    /// `stdinOnce`.
    pub stdin_once: bool,
    /// `tty` (recorded; the process runtime logs a tty container's output as stdout).
    pub tty: bool,
    /// `image` (recorded, not pulled, by the process runtime).
    pub image: String,
    /// The instance number (0 for the first start); also names the log file.
    pub restart_count: i32,
    /// `terminationMessagePath` (the API server defaults it to `/dev/termination-log`); `None`
    /// or empty: no termination-log file, as upstream skips the mount for an empty path.
    pub termination_message_path: Option<PathBuf>,
    /// `terminationMessagePolicy`.
    pub termination_message_policy: TerminationMessagePolicy,
    /// Run from its image with runc (runtime handler `runc`) rather than from the host;
    /// `argv`, `env` and `working_dir` are then already in [`ImageRun::spec`].
    pub image_run: Option<Box<ImageRun>>,
}

/// A container run from its image (runtime handler `runc`): what the pod worker resolved from
/// the image and the pod's spec; the runtime adds namespaces, mounts, cgroups and stdio.
#[derive(Debug, Clone, Default)]
pub struct ImageRun {
    /// The image's layer directories, base first (overlay lower dirs).
    pub layers: Vec<PathBuf>,
    /// args, image env, env, cwd, user, supplemental groups, security, resources, tty.
    pub spec: oci::spec::ContainerSpec,
    /// The pod's QoS class (`status.qosClass`; BestEffort when not yet set).
    pub qos: Option<oci::cgroups::QosClass>,
    /// The pod-level cgroup values.
    pub pod_resources: oci::cgroups::PodResources,
    /// `shareProcessNamespace`: the pod's PID namespace instead of the container's own.
    pub share_pid: bool,
    /// `hostPID`.
    pub host_pid: bool,
    /// `hostIPC`.
    pub host_ipc: bool,
}

/// `terminationMessagePolicy`: where a terminated container's message comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TerminationMessagePolicy {
    /// `File`: only the termination-log file.
    #[default]
    File,
    /// `FallbackToLogsOnError`: the end of the log when the file is empty and the container
    /// failed.
    FallbackToLogsOnError,
}

impl TerminationMessagePolicy {
    /// Parses the API value; anything but `FallbackToLogsOnError` is `File` (the default the
    /// API server sets, and what validation allows besides).
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("FallbackToLogsOnError") => Self::FallbackToLogsOnError,
            _ => Self::File,
        }
    }
}

/// One `volumeMounts` entry.
#[derive(Debug, Clone, Default)]
pub struct MountConfig {
    /// The volume's name.
    pub volume: String,
    /// `mountPath` (absolute).
    pub mount_path: PathBuf,
    /// `subPath` (relative, no `..`), already expanded for `subPathExpr`.
    pub sub_path: Option<String>,
    /// `readOnly`.
    pub read_only: bool,
}

/// One declared container port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortConfig {
    /// `containerPort`.
    pub container_port: u16,
    /// `protocol`: `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
}

/// A container's runtime id (CRI: status `containerID` is `paddock://<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(pub String);

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A started container.
#[derive(Debug, Clone)]
pub struct Started {
    /// Its id.
    pub id: ContainerId,
    /// The main process's pid (as the node sees it).
    pub pid: u32,
    /// When it started.
    pub started_at: SystemTime,
}

/// How a container's main process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exited {
    /// The exit code; `128 + signal` when killed by a signal.
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// When it ended.
    pub finished_at: SystemTime,
    /// `Completed` (exit 0), `Error`, `OOMKilled` (the kernel's OOM killer struck in the
    /// container's cgroup, image containers only), or `ContainerStatusUnknown` (an adopted process whose
    /// exit status was lost), as container statuses report.
    pub reason: String,
    /// The status message: the runtime's own message (if any), then, after `": "`, the
    /// termination message — the container's termination-log file (its last
    /// [`termination::MAX_CONTAINER_TERMINATION_MESSAGE_LENGTH`] bytes) or, for
    /// `FallbackToLogsOnError` when that is empty and the container failed, the end of its log
    /// ([`termination`]), as the kubelet's `convertToKubeContainerStatus` builds it.
    pub message: Option<String>,
}

/// Something a previous run of the agent left running, found by [`Runtime::list`].
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The sandbox (usable again with [`Runtime::start_container`] and [`Runtime::stop_sandbox`]).
    pub sandbox: Sandbox,
    /// The pod's uid.
    pub pod_uid: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// Whether the sandbox is still whole (its namespace holder is alive; always true in host
    /// mode). A broken sandbox should be stopped.
    pub alive: bool,
    /// Which sandbox of the pod it is (CRI's `attempt`).
    pub attempt: u32,
    /// Its containers that are still running.
    pub containers: Vec<RecoveredContainer>,
}

/// A container still running from a previous agent run.
#[derive(Debug, Clone)]
pub struct RecoveredContainer {
    /// Its id (works with [`Runtime::stop_container`], [`Runtime::wait_container`],
    /// [`Runtime::exec`] and [`Runtime::log_path`]).
    pub id: ContainerId,
    /// The container's name.
    pub name: String,
    /// The instance number it was started with.
    pub restart_count: i32,
    /// The main process's pid.
    pub pid: u32,
    /// When it started.
    pub started_at: SystemTime,
}

/// A container runtime. Object-safe: the agent holds an `Arc<dyn Runtime>`.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + std::fmt::Debug {
    /// Creates the pod sandbox: namespaces, network (pod IP), volumes, `/etc` files.
    async fn run_sandbox(&self, cfg: &SandboxConfig) -> Result<Sandbox, RuntimeError>;

    /// Kills anything still running in the sandbox (SIGKILL), unmounts, removes the veth, the
    /// namespaces and the pod's directories, and releases the pod IP. Idempotent.
    async fn stop_sandbox(&self, sandbox: &Sandbox) -> Result<(), RuntimeError>;

    /// Starts a container in the sandbox. The error names the cause (executable not found,
    /// permission denied, a port clash in host mode, …) in the runtime's words.
    async fn start_container(
        &self,
        sandbox: &Sandbox,
        cfg: &ContainerConfig,
    ) -> Result<Started, RuntimeError>;

    /// Resolves when the container's main process has exited; any number of waiters, before
    /// or after the exit. An unknown id resolves at once with reason `ContainerStatusUnknown`.
    async fn wait_container(&self, id: &ContainerId) -> Exited;

    /// SIGTERM to the container's whole process tree, then SIGKILL to whatever is left after
    /// `grace` (tokio time); returns when all of its processes are gone. Idempotent.
    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<(), RuntimeError>;

    /// A runner for exec probes: argv inside the container's namespaces, with its env and
    /// working directory (CRI `ExecSync`).
    fn exec_runner(&self, id: &ContainerId) -> Arc<dyn probe::ExecRunner>;

    /// `kubectl exec`: starts `argv` in the container's namespaces.
    async fn exec(
        &self,
        id: &ContainerId,
        argv: &[String],
        tty: bool,
        stdin: bool,
    ) -> Result<ExecSession, RuntimeError>;

    /// `kubectl port-forward`: a connection to `localhost:port` in the network namespace of
    /// pod `pod_uid`'s sandbox (the node's for a host-network pod), as containerd dials it.
    /// The error is the text the kubelet sends on the port's error stream.
    async fn port_forward(
        &self,
        pod_uid: &str,
        port: u16,
    ) -> Result<tokio::net::TcpStream, String> {
        let _ = (pod_uid, port);
        Err("port forwarding is not supported by this runtime".into())
    }

    /// `kubectl attach` (CRI `Attach`): the running container's output from now on, and its
    /// stdin when it has one.
    async fn attach(&self, id: &ContainerId) -> Result<AttachSession, RuntimeError> {
        Err(RuntimeError::ContainerNotFound(id.0.clone()))
    }

    /// The `kubepods` cgroup hierarchy its image containers run in, if any (host processes
    /// have no cgroup of their own).
    fn cgroups(&self) -> Option<oci::cgroups::Layout> {
        None
    }

    /// The container's current log file: CRI lines `<RFC3339Nano> stdout|stderr F|P <text>`.
    /// It is bounded as the kubelet bounds it (10 MiB, then rotated to `<path>.<timestamp>`,
    /// older rotated files gzipped, 5 files in all; see [`logs`]).
    fn log_path(&self, id: &ContainerId) -> PathBuf;

    /// The log file of instance `restart_count` of a pod's container, whether or not it is
    /// still running: an instance's files stay until [`Runtime::remove_pod_logs`] or until an
    /// instance two restarts newer starts (the kubelet keeps one dead instance per container).
    fn instance_log_path(&self, pod_uid: &str, container: &str, restart_count: i32) -> PathBuf;

    /// Deletes every log file of the pod (call when the pod object is gone for good).
    async fn remove_pod_logs(&self, pod_uid: &str) -> Result<(), RuntimeError>;

    /// The UIDs of the pods that have log files on this node (to remove those of pods deleted
    /// while the agent was not running).
    async fn pods_with_logs(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether the sandbox is still whole (CRI's `SANDBOX_READY`): its namespace holder lives.
    /// A sandbox that is not (the holder was killed, the machine rebooted) takes no new
    /// container; the pod worker kills what is left and makes a new one (`SandboxChanged`).
    async fn sandbox_ready(&self, _sandbox: &Sandbox) -> bool {
        true
    }

    /// Replaces the content of the sandbox's [`VolumeSource::Files`] volume `volume` in place
    /// (the atomic writer's `..data` swap), as the kubelet's periodic remount of projected
    /// volumes does: a refreshed service account token reaches running containers. Nothing
    /// changes when the content is the same, or where the volume was never written.
    async fn update_volume(
        &self,
        _sandbox: &Sandbox,
        _volume: &VolumeConfig,
    ) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// The restart count a container's next instance takes when no instance of it is known
    /// (the kubelet's `calcRestartCountByLogDir`): one more than the highest instance number
    /// among its log files, 0 when there are none.
    async fn restart_count_from_logs(&self, _pod_uid: &str, _container: &str) -> i32 {
        0
    }

    /// Sandboxes and containers left by a previous run of the agent (from the runtime's on-disk
    /// state), to adopt or to stop. Dead containers are forgotten.
    async fn list(&self) -> Result<Vec<Recovered>, RuntimeError>;

    /// Stops every container and sandbox this runtime knows, in memory and on disk (agent
    /// shutdown): SIGTERM, `grace`, SIGKILL, then the sandboxes are torn down.
    async fn shutdown(&self, grace: Duration) -> Result<(), RuntimeError>;

    /// [`Runtime::shutdown`] with each pod's own grace period where it is shorter:
    /// `pod_grace` maps pod UIDs to their `terminationGracePeriodSeconds`, and a pod's
    /// containers get the smaller of that and `grace` (at least [`MIN_KILL_GRACE`]), as the
    /// kubelet's node shutdown manager gives them (`nodeshutdown_manager_linux.go`).
    async fn shutdown_pods(
        &self,
        grace: Duration,
        pod_grace: &std::collections::HashMap<String, Duration>,
    ) -> Result<(), RuntimeError> {
        let _ = pod_grace;
        self.shutdown(grace).await
    }

    /// While [`Runtime::shutdown`] runs: how many pods (sandboxes) still have containers to
    /// stop, for a progress display; `None` before it starts, or when the runtime cannot say.
    fn pods_stopping(&self) -> Option<usize> {
        None
    }
}

/// A `kubectl attach` session ([`Runtime::attach`]).
#[derive(Debug)]
pub struct AttachSession {
    /// The output as the container writes it (a `tty` container's all as stdout); ends when
    /// the container's output does. A client slower than the container loses the oldest
    /// chunks ([`tokio::sync::broadcast`]'s lag), never holds the container up.
    pub output: tokio::sync::broadcast::Receiver<(logs::Stream, bytes::Bytes)>,
    /// The container's stdin (`spec.stdin`), shared with other sessions.
    pub stdin: Option<AttachStdin>,
    /// Resizes the container's terminal (a no-op without one).
    pub resizer: exec::Resizer,
}

/// A container's stdin as attach sessions share it.
pub struct AttachStdin {
    end: std::sync::Arc<tokio::sync::Mutex<Option<container::StdinEnd>>>,
    once: bool,
}

impl std::fmt::Debug for AttachStdin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachStdin")
            .field("once", &self.once)
            .finish_non_exhaustive()
    }
}

impl AttachStdin {
    pub(crate) fn new(
        end: std::sync::Arc<tokio::sync::Mutex<Option<container::StdinEnd>>>,
        once: bool,
    ) -> AttachStdin {
        AttachStdin { end, once }
    }

    /// Writes to the container's stdin; `false` once it is closed.
    pub async fn write(&self, data: &[u8]) -> bool {
        use tokio::io::AsyncWriteExt;
        let mut end = self.end.lock().await;
        let Some(w) = end.as_mut() else {
            return false;
        };
        if w.write_all(data).await.is_err() || w.flush().await.is_err() {
            *end = None;
            return false;
        }
        true
    }

    /// The session's input ended: with `stdinOnce` the container's stdin is closed for good
    /// (as CRI runtimes do); otherwise it stays open for the next session.
    pub async fn close(&self) {
        use tokio::io::AsyncWriteExt;
        if self.once
            && let Some(mut w) = self.end.lock().await.take()
        {
            let _ = w.shutdown().await;
        }
    }
}
