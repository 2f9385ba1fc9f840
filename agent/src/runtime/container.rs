//! [`ContainerRt`]: a container this agent knows (started or adopted), its record, whether it
//! runs isolated, its recorded exit, and its process tree (its group plus every process carrying
//! its marker). Shared by the process runtime, which starts and stops containers, and exec,
//! which runs commands in them.

use std::time::Duration;

use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncWrite;
use tokio::sync::{broadcast, watch};

use super::Exited;
use super::logs::Stream;
use super::state::{self, ContainerRecord};

/// The environment variable marking every process of a container.
pub const MARKER_ENV: &str = "PADDOCK_CONTAINER_ID";

/// A container known to this agent.
#[derive(Debug)]
pub(crate) struct ContainerRt {
    pub(crate) rec: ContainerRecord,
    pub(crate) isolated: bool,
    pub(super) exited: watch::Receiver<Option<Exited>>,
    pub(super) attach: Attach,
}

/// The container's input end for `kubectl attach`.
pub(crate) type StdinEnd = Pin<Box<dyn AsyncWrite + Send + Sync>>;

/// What `kubectl attach` reaches of a running container (CRI `Attach`).
pub(crate) struct Attach {
    /// The container's stdin (`spec.stdin`): a pipe, or its terminal's master end. Shared by
    /// the sessions; closed for good when a session's stdin ends with `stdinOnce`.
    pub(crate) stdin: Arc<tokio::sync::Mutex<Option<StdinEnd>>>,
    /// `spec.stdinOnce`.
    pub(crate) stdin_once: bool,
    /// The live output: the log copier holds the sender, so receivers end with the output.
    pub(crate) output: Option<broadcast::WeakSender<(Stream, Bytes)>>,
    /// The terminal's master end (a `tty` container from its image), for resizes.
    pub(crate) tty: Option<Arc<OwnedFd>>,
}

impl Attach {
    /// Nothing to attach to but what the copier feeds `output` (an adopted container: its
    /// stdin pipe died with the agent that started it).
    pub(crate) fn output_only(output: Option<&broadcast::Sender<(Stream, Bytes)>>) -> Attach {
        Attach {
            stdin: Arc::new(tokio::sync::Mutex::new(None)),
            stdin_once: false,
            output: output.map(broadcast::Sender::downgrade),
            tty: None,
        }
    }
}

impl std::fmt::Debug for Attach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attach")
            .field("stdin_once", &self.stdin_once)
            .field("tty", &self.tty.is_some())
            .finish_non_exhaustive()
    }
}

/// Chunks of live output kept for a slow attach client before it loses the oldest.
pub(crate) const ATTACH_BUFFER: usize = 256;

impl ContainerRt {
    pub(super) fn marker(&self) -> String {
        format!("{MARKER_ENV}={}", self.rec.id)
    }

    pub(crate) fn running(&self) -> bool {
        self.exited.borrow().is_none() && self.rec.process.alive()
    }

    pub(super) fn main_gone(&self) -> bool {
        self.exited.borrow().is_some() || !self.rec.process.alive()
    }

    /// Waits (briefly) until the exit has been recorded and the output followed to its end.
    pub(super) async fn settled(&self) {
        let mut rx = self.exited.clone();
        let _ = tokio::time::timeout(Duration::from_secs(2), rx.wait_for(|v| v.is_some())).await;
    }

    pub(super) async fn tree(&self) -> Vec<i32> {
        let pgid = i32::try_from(self.rec.process.pid).ok();
        state::tree_pids_shared(pgid, &self.marker(), self.rec.process.start_ticks).await
    }

    /// Whether the main process and everything it started are gone.
    pub(super) async fn gone(&self) -> bool {
        self.main_gone() && self.tree().await.is_empty()
    }

    pub(super) async fn signal_tree(&self, sig: Signal) {
        if !self.main_gone()
            && let Ok(pgid) = i32::try_from(self.rec.process.pid)
        {
            let _ = killpg(Pid::from_raw(pgid), sig);
        }
        for pid in self.tree().await {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}
