//! [`RuntimeError`]: why a runtime call failed, worded like a container runtime's error.

use std::path::PathBuf;

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The argv was empty.
    #[error("no command specified")]
    NoCommand,
    /// The program was not found on the container's `$PATH` (as runc words it).
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    ExecutableNotFound(String),
    /// The program path does not exist.
    #[error("exec: \"{0}\": stat {0}: no such file or directory")]
    NoSuchFile(String),
    /// The program is not executable (or a directory on the path is not searchable).
    #[error("exec: \"{0}\": permission denied")]
    PermissionDenied(String),
    /// Starting the process failed otherwise.
    #[error("exec: \"{program}\": {message}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error text.
        message: String,
    },
    /// The working directory does not exist or is not usable.
    #[error("chdir to cwd (\"{}\") set in config.json failed: {message}", .path.display())]
    WorkingDir {
        /// `workingDir`.
        path: PathBuf,
        /// The OS error text.
        message: String,
    },
    /// Host mode: a declared port is already bound by another process on the node.
    #[error(
        "port {port}/{protocol} is already in use on the node (host network): listen {protocol_lower} 0.0.0.0:{port}: bind: address already in use"
    )]
    PortInUse {
        /// The port.
        port: u16,
        /// `TCP` or `UDP`.
        protocol: String,
        /// The protocol in Go's lower-case network name.
        protocol_lower: String,
    },
    /// A volume could not be prepared or mounted.
    #[error("{0}")]
    Volume(String),
    /// A subPath leads out of its volume (a symlink to `/`, `..`) or cannot be opened: the
    /// kubelet's words, which name no path (they could tell about the node's files). Like every
    /// [`RuntimeError::is_config_error`], the container is not created.
    #[error("failed to prepare subPath for volumeMount {volume:?} of container {container:?}")]
    SubPathOpen {
        /// The volumeMount's volume.
        volume: String,
        /// The container.
        container: String,
    },
    /// A missing subPath directory could not be made inside its volume (the kubelet's words).
    #[error(
        "failed to create subPath directory for volumeMount {volume:?} of container {container:?}"
    )]
    SubPathCreate {
        /// The volumeMount's volume.
        volume: String,
        /// The container.
        container: String,
    },
    /// A `volumeMounts` entry names a volume the sandbox does not have.
    #[error("volume \"{0}\" not found in the pod")]
    UnknownVolume(String),
    /// The image runtime (runc, the overlay, cgroups) failed; its words.
    #[error("{0}")]
    Oci(String),
    /// The sandbox id is unknown or the sandbox was already stopped.
    #[error("sandbox {0} not found")]
    SandboxNotFound(String),
    /// The container id is unknown (never started here, or removed).
    #[error("container {0} not found")]
    ContainerNotFound(String),
    /// The container is not running (exec into an exited container).
    #[error("container {0} is not running")]
    ContainerNotRunning(String),
    /// The pod CIDR has no free address left.
    #[error("failed to allocate a pod IP: no free address in {0}")]
    NoFreeIp(String),
    /// Setting up pod networking (bridge, veth, addresses) failed.
    #[error("failed to set up pod network: {0}")]
    Network(String),
    /// Creating or entering the pod's namespaces failed.
    #[error("failed to create pod sandbox: {0}")]
    Sandbox(String),
    /// Bad node network configuration.
    #[error("invalid node network configuration: {0}")]
    Config(String),
    /// Reading or writing the runtime's state, log or volume files failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    /// Whether the container could not even be configured (the kubelet's
    /// `CreateContainerConfigError`: no container is created, no restart is counted) rather
    /// than failing to start.
    pub fn is_config_error(&self) -> bool {
        matches!(self, Self::SubPathOpen { .. } | Self::SubPathCreate { .. })
    }

    /// An [`RuntimeError::Io`] with context.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
