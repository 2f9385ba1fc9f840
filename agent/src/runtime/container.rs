//! [`ContainerRt`]: a container this agent knows (started or adopted), its record, whether it
//! runs isolated, its recorded exit, and its process tree (its group plus every process carrying
//! its marker). Shared by the process runtime, which starts and stops containers, and exec,
//! which runs commands in them.

use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use parking_lot::Mutex;
use tokio::process::ChildStdin;
use tokio::sync::watch;

use super::Exited;
use super::state::{self, ContainerRecord};

/// The environment variable marking every process of a container.
pub const MARKER_ENV: &str = "PADDOCK_CONTAINER_ID";

/// A container known to this agent.
#[derive(Debug)]
pub(crate) struct ContainerRt {
    pub(crate) rec: ContainerRecord,
    pub(crate) isolated: bool,
    pub(super) exited: watch::Receiver<Option<Exited>>,
    pub(super) _stdin: Mutex<Option<ChildStdin>>,
}

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
