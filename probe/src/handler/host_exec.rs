//! [`HostExecRunner`]: runs probe commands as host processes, each in its own process group.
//!
//! When the command exits, or at the timeout, the whole group gets `SIGKILL`, so a
//! `sh -c 'sleep 10 & exit 1'` leaves no sleeper behind. A descendant that left the group
//! (`setsid`, a daemonizing double fork) but still holds the command's output pipes is found by
//! scanning `/proc/*/fd` for those pipes and killed too; the scan only runs when it can matter —
//! at a timeout, or when the pipes stay open after the group is gone — so the common path costs
//! one `killpg`. A descendant that left the group *and* closed its inherited stdout/stderr is not
//! found (nothing cheap marks it); the agent's container runtime (cgroup/PID namespace) is what
//! contains those.
//!
//! Running a spawned command to its end or its deadline is [`run_with_deadline`], shared with
//! the agent's exec in a container, which ends leftovers its own way through a [`Reaper`].

use std::ffi::OsString;
use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;
use std::time::Duration;

use futures::future::BoxFuture;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::exec::{ExecError, ExecOutput, ExecRunner, ExecStatus, MAX_EXEC_OUTPUT};

/// How long to wait for output pipes to close after the group was killed before hunting for
/// escaped descendants.
pub const PIPE_GRACE: Duration = Duration::from_millis(50);

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

    /// Starts commands with an empty environment (plus [`Self::env`] entries).
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

/// Reads `pipe` to its end, keeping at most [`MAX_EXEC_OUTPUT`] bytes in `keep` (the rest is
/// read and dropped, so the command never blocks on a full pipe).
pub async fn drain(pipe: Option<impl AsyncRead + Unpin>, keep: &mut Vec<u8>) {
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

/// The `pipe:[<inode>]` link names of our ends of the command's output pipes (the same pipes
/// as the command's ends), read while they are still open.
fn pipe_names(fds: &[RawFd]) -> Vec<String> {
    fds.iter()
        .filter_map(|fd| std::fs::metadata(format!("/proc/self/fd/{fd}")).ok())
        .map(|m| format!("pipe:[{}]", m.ino()))
        .collect()
}

/// Sends `SIGKILL` to every other process that holds one of `pipes` open.
async fn kill_pipe_holders(pipes: Vec<String>) {
    if pipes.is_empty() {
        return;
    }
    let _ = tokio::task::spawn_blocking(move || kill_pipe_holders_blocking(&pipes)).await;
}

/// Every process in `/proc` but this one: its pid and its `/proc/<pid>` directory (empty when
/// `/proc` cannot be read).
pub fn other_processes() -> impl Iterator<Item = (u32, std::path::PathBuf)> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(move |entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            (pid != me).then(|| (pid, entry.path()))
        })
}

fn kill_pipe_holders_blocking(pipes: &[String]) {
    for (pid, dir) in other_processes() {
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .is_some_and(|l| l.to_str().is_some_and(|l| pipes.iter().any(|p| p == l)))
        });
        if holds && let Ok(pid) = i32::try_from(pid) {
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
            msg: gofmt::errno_text(err),
        }
    }
}

/// The exit code the CRI reports: the process's own, or `128 + signal` when a signal ended it.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// How [`run_with_deadline`] ends what a command leaves behind: the host runner kills its
/// process group and hunts its pipes through `/proc/*/fd`; the agent's container exec kills
/// by the exec's marker.
pub trait Reaper {
    /// The deadline passed while the command ran: kill everything it started.
    fn timed_out(&mut self) -> impl Future<Output = ()> + Send;
    /// The command exited: kill what it left running in its group.
    fn exited(&mut self) -> impl Future<Output = ()> + Send;
    /// The output pipes stayed open [`PIPE_GRACE`] after that: kill whoever holds them.
    fn pipes_held(&mut self) -> impl Future<Output = ()> + Send;
}

/// Runs a spawned command to its end or to `deadline` (CRI `ExecSync`'s contract): reads its
/// stdout and stderr (at most [`MAX_EXEC_OUTPUT`] bytes, stdout first), and lets `reaper` end
/// whatever it left behind, so the call returns only when nothing it started runs on.
pub async fn run_with_deadline(
    child: &mut Child,
    deadline: Instant,
    reaper: &mut impl Reaper,
) -> ExecOutput {
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
        match exited {
            None => {
                reaper.timed_out().await;
                let _ = child.wait().await;
                ExecStatus::TimedOut
            }
            Some(s) => {
                reaper.exited().await;
                let code = s.map(exit_code).unwrap_or(-1);
                if !read_all {
                    let grace = deadline.min(Instant::now() + PIPE_GRACE);
                    if tokio::time::timeout_at(grace, &mut reading).await.is_err() {
                        // Someone outside the group still holds the pipes: find and kill.
                        reaper.pipes_held().await;
                        let _ = tokio::time::timeout_at(deadline, &mut reading).await;
                    }
                }
                ExecStatus::Exited(code)
            }
        }
    };
    out.extend_from_slice(&err);
    out.truncate(MAX_EXEC_OUTPUT);
    ExecOutput {
        status,
        output: out,
    }
}

/// [`Reaper`] of a host command: its process group, then the holders of its output pipes.
struct HostReaper {
    group: GroupGuard,
    fds: Vec<RawFd>,
}

impl Reaper for HostReaper {
    async fn timed_out(&mut self) {
        self.group.kill();
        kill_pipe_holders(pipe_names(&self.fds)).await;
    }

    async fn exited(&mut self) {
        self.group.kill();
    }

    async fn pipes_held(&mut self) {
        kill_pipe_holders(pipe_names(&self.fds)).await;
    }
}

impl HostExecRunner {
    async fn run_inner(&self, argv: &[String], timeout: Duration) -> Result<ExecOutput, ExecError> {
        let Some(program) = argv.first() else {
            return Err(ExecError::EmptyCommand);
        };
        let deadline = Instant::now() + timeout;
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
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|e| spawn_error(program, &e))?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        let group = GroupGuard {
            pgid: pid.map(Pid::from_raw),
        };
        let fds: Vec<RawFd> = [
            child.stdout.as_ref().map(|p| p.as_raw_fd()),
            child.stderr.as_ref().map(|p| p.as_raw_fd()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut reaper = HostReaper { group, fds };
        Ok(run_with_deadline(&mut child, deadline, &mut reaper).await)
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
