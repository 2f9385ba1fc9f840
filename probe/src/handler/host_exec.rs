//! [`HostExecRunner`]: runs probe commands as host processes, each in its own process group.
//!
//! When the command exits, or at the timeout, the whole group gets `SIGKILL`, so a
//! `sh -c 'sleep 10 & exit 1'` leaves no sleeper behind. A descendant that left the group
//! (`setsid`, a daemonizing double fork) is found through a marker variable the runner puts in
//! the command's environment (`PADDOCK_PROBE_EXEC=<id>`, inherited by every descendant) by
//! scanning `/proc`; the scan only runs when it can matter — at a timeout, or when the output
//! pipes stay open after the group is gone — so the common path costs one `killpg`.

use std::ffi::OsString;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::Instant;

use super::exec::{ExecError, ExecOutput, ExecRunner, ExecStatus, MAX_EXEC_OUTPUT};

/// Name of the environment variable that marks every process a probe command starts.
pub const MARKER_ENV: &str = "PADDOCK_PROBE_EXEC";

/// How long to wait for output pipes to close after the group was killed before hunting for
/// escaped descendants.
const PIPE_GRACE: Duration = Duration::from_millis(50);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Runs commands on the host, with optional extra environment and working directory.
#[derive(Debug, Clone, Default)]
pub struct HostExecRunner {
    env: Vec<(OsString, OsString)>,
    clear_env: bool,
    cwd: Option<std::path::PathBuf>,
}

impl HostExecRunner {
    /// A runner that inherits the agent's environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an environment variable to every command.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts commands with an empty environment (plus [`Self::env`] entries and the marker).
    pub fn clear_env(mut self) -> Self {
        self.clear_env = true;
        self
    }

    /// Runs commands in `dir`.
    pub fn current_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
}

/// Kills the process group when dropped (also when the probe future is dropped mid-run).
struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid {
            // ESRCH (group already empty) is the normal case.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn drain(pipe: Option<impl AsyncRead + Unpin>, keep: &mut Vec<u8>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let room = MAX_EXEC_OUTPUT.saturating_sub(keep.len());
                keep.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// Sends `SIGKILL` to every process whose environment holds `MARKER_ENV=marker`.
async fn kill_marked(marker: String) {
    let _ = tokio::task::spawn_blocking(move || kill_marked_blocking(&marker)).await;
}

fn kill_marked_blocking(marker: &str) {
    let needle = format!("{MARKER_ENV}={marker}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes())
            && let Ok(pid) = i32::try_from(pid)
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn spawn_error(program: &str, err: &std::io::Error) -> ExecError {
    if err.kind() == std::io::ErrorKind::NotFound && !program.contains('/') {
        ExecError::NotFound(program.to_string())
    } else {
        ExecError::Spawn {
            program: program.to_string(),
            msg: crate::gofmt::errno_text(err),
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

impl HostExecRunner {
    async fn run_inner(&self, argv: &[String], timeout: Duration) -> Result<ExecOutput, ExecError> {
        let Some(program) = argv.first() else {
            return Err(ExecError::EmptyCommand);
        };
        let deadline = Instant::now() + timeout;
        let marker = format!(
            "{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        let mut cmd = Command::new(program);
        cmd.args(&argv[1..])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if self.clear_env {
            cmd.env_clear();
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.env(MARKER_ENV, &marker);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|e| spawn_error(program, &e))?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        let mut group = GroupGuard {
            pgid: pid.map(Pid::from_raw),
        };
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = {
            let reading = async { tokio::join!(drain(stdout, &mut out), drain(stderr, &mut err)) };
            tokio::pin!(reading);
            let mut read_all = false;
            let exited = loop {
                tokio::select! {
                    s = child.wait() => break Some(s),
                    _ = &mut reading, if !read_all => read_all = true,
                    _ = tokio::time::sleep_until(deadline) => break None,
                }
            };
            // The command is done (or out of time): whatever it left behind in its group goes.
            group.kill();
            match exited {
                None => {
                    kill_marked(marker).await;
                    let _ = child.wait().await;
                    ExecStatus::TimedOut
                }
                Some(s) => {
                    let code = s.map(exit_code).unwrap_or(-1);
                    if !read_all {
                        let grace = deadline.min(Instant::now() + PIPE_GRACE);
                        if tokio::time::timeout_at(grace, &mut reading).await.is_err() {
                            // Someone outside the group still holds our pipes: hunt by marker.
                            kill_marked(marker).await;
                            let _ = tokio::time::timeout_at(deadline, &mut reading).await;
                        }
                    }
                    ExecStatus::Exited(code)
                }
            }
        };
        out.extend_from_slice(&err);
        out.truncate(MAX_EXEC_OUTPUT);
        Ok(ExecOutput {
            status,
            output: out,
        })
    }
}

impl ExecRunner for HostExecRunner {
    fn run<'a>(
        &'a self,
        argv: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, ExecError>> {
        Box::pin(self.run_inner(argv, timeout))
    }
}
