//! The probe engine: decides, exactly like the kubelet, when a container is started, ready, or
//! must be restarted. It knows nothing of pods beyond what a probe needs; the node agent drives
//! it.
//!
//! Where to start reading:
//! - [`spec`]: a `Probe` + `Container` become a [`ProbeSpec`] (defaults, handler, named ports).
//! - [`handler`]: the httpGet, tcpSocket, exec and grpc handlers with the kubelet's outputs.
//! - [`prober`]: one probe execution — retries on error, result mapping, events.
//! - [`worker`]: the per-(container, probe type) state machine and its tokio driver; results go
//!   to a [`ResultsCache`] whose changes stream to the agent, attempts to a [`ProbeHistory`].
//!   The agent's pod worker spawns a pod's workers ([`worker::spawn`]), feeds each its
//!   [`PodStatusView`] and reads the results back; it sets `started`/`ready` itself.
//!
//! Facts are taken from the upstream kubelet (`pkg/probe/…`, `pkg/kubelet/prober/…`); the
//! module docs name the files.

pub mod error;
pub mod expand;
pub mod handler;
pub mod history;
pub mod mailbox;
pub mod prober;
pub mod results;
pub mod spec;
pub mod types;
pub mod worker;

pub use error::HandlerError;
pub use handler::exec::{ExecError, ExecOutput, ExecRunner, ExecStatus};
pub use handler::host_exec::HostExecRunner;
pub use handler::{DEFAULT_USER_AGENT, HandlerEnv, HandlerOutput};
pub use history::{Attempt, ProbeHistory};
pub use prober::{ProbeRun, ProbeRunner, Prober};
pub use results::{ResultUpdate, ResultsCache, WorkerKey};
pub use spec::{Handler, HttpGetSpec, ProbeSpec, Scheme};
pub use types::{EventSink, EventType, HandlerResult, NoEvents, ProbeResult, ProbeType};
pub use worker::{
    ContainerState, ContainerStatusView, PodStatusView, WorkerConfig, WorkerHandle, WorkerParams,
};
