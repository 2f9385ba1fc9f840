//! `exec`: run an argv (not a shell) and judge by its exit code [pkg/probe/exec/exec.go].
//!
//! The command runs through an [`ExecRunner`], so the agent can run it inside a container's
//! namespaces with its environment (like CRI `ExecSync`); [`super::host_exec::HostExecRunner`]
//! runs it on the host. Exit 0 is success, any other exit a failure, both with the combined
//! output (stdout then stderr) capped at 10 KiB. A timeout is a failure with output
//! `command "<argv joined by spaces>" timed out`; a runner error is an error (retried, then
//! discarded by the prober).

use std::time::Duration;

use futures::future::BoxFuture;

use super::HandlerOutput;
use crate::error::HandlerError;
use crate::types::HandlerResult;
use gofmt::quote;

/// Most bytes of combined output a probe keeps (`maxReadLength = 10 KiB`).
pub const MAX_EXEC_OUTPUT: usize = 10 * 1024;

/// How an exec'd command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecStatus {
    /// It exited with this code (killed by signal `n`: `128 + n`, as runtimes report).
    Exited(i32),
    /// It was still running at the timeout and was killed with everything it started.
    TimedOut,
}

/// The result of running a probe command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// How it ended.
    pub status: ExecStatus,
    /// Stdout followed by stderr (runners may cap this at [`MAX_EXEC_OUTPUT`]).
    pub output: Vec<u8>,
}

/// Why a runner could not run a command.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The argv was empty.
    #[error("exec: no command")]
    EmptyCommand,
    /// The program was not found on `$PATH`.
    #[error("exec: {}: executable file not found in $PATH", quote(.0))]
    NotFound(String),
    /// Starting the process failed otherwise (Go's `fork/exec <path>: <errno>`).
    #[error("fork/exec {program}: {msg}")]
    Spawn {
        /// The program.
        program: String,
        /// The error text.
        msg: String,
    },
    /// The runtime could not run the command (container gone, namespace entry failed, …).
    #[error("{0}")]
    Runtime(String),
}

/// Runs probe commands; the agent implements this to run inside a container.
pub trait ExecRunner: Send + Sync {
    /// Runs `argv` (no shell) and kills it, and everything it started, after `timeout`.
    fn run<'a>(
        &'a self,
        argv: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, ExecError>>;
}

/// Runs `argv` through `runner` and maps the outcome as the kubelet's exec prober does.
pub async fn probe(runner: &dyn ExecRunner, argv: &[String], timeout: Duration) -> HandlerOutput {
    match runner.run(argv, timeout).await {
        Ok(ExecOutput { status, mut output }) => {
            output.truncate(MAX_EXEC_OUTPUT);
            let text = String::from_utf8_lossy(&output).into_owned();
            match status {
                ExecStatus::Exited(0) => HandlerOutput::new(HandlerResult::Success, text),
                ExecStatus::Exited(_) => HandlerOutput::new(HandlerResult::Failure, text),
                ExecStatus::TimedOut => HandlerOutput::new(
                    HandlerResult::Failure,
                    format!("command {} timed out", quote(&argv.join(" "))),
                ),
            }
        }
        Err(e) => HandlerOutput::error(HandlerResult::Unknown, HandlerError::Exec(e.to_string())),
    }
}
