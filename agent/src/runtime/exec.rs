//! Running commands in a running container, like CRI `ExecSync` (exec probes:
//! [`ContainerExecRunner`]) and `Exec` (`kubectl exec`: [`ExecSession`]).
//!
//! The command gets the container's environment and working directory and, when the pod is
//! isolated, enters the container's own namespaces (its mount namespace with its volumes, and
//! the pod's network, UTS, IPC and PID namespaces) through the container's main process. It
//! runs in its own process group (its own session with a controlling terminal for `tty`) and
//! carries both the container's marker, so stopping the container ends it too, and its own,
//! so a probe timeout or a dropped session kills exactly its tree.

use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use probe::handler::host_exec::{Reaper, exit_code, run_with_deadline};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::container::ContainerRt;
use super::isolate::{self, PidNs};
use super::spawn::{resolve_program, spawn_error};
use super::state;
use super::sys::ChildSetup;
use super::{ContainerId, RuntimeError};

/// The environment variable marking the processes of one exec.
pub const EXEC_MARKER_ENV: &str = "PADDOCK_EXEC_ID";

static NEXT_EXEC: AtomicU64 = AtomicU64::new(1);

/// How a command's stdio is connected.
enum Io {
    /// Pipes (stdin piped or null).
    Pipes { stdin: bool },
    /// A pty: the slave end becomes stdin, stdout and stderr.
    Tty(OwnedFd),
}

/// Builds and spawns `argv` inside container `c`; returns the child and its exec marker.
async fn spawn_in(
    c: &ContainerRt,
    argv: &[String],
    io: Io,
) -> Result<(Child, String), RuntimeError> {
    let Some(program) = argv.first() else {
        return Err(RuntimeError::NoCommand);
    };
    if !c.running() {
        return Err(RuntimeError::ContainerNotRunning(c.rec.id.clone()));
    }
    let path_env = c
        .rec
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let marker = format!(
        "{}-{}",
        std::process::id(),
        NEXT_EXEC.fetch_add(1, Ordering::Relaxed)
    );
    // A container run from its image: `runc exec` enters it with its process settings (user,
    // capabilities, seccomp, cgroup) and resolves the program in its root; the exec's marker
    // goes in its environment so the tree walk finds it as for any exec.
    let mut cmd = if let Some(runc) = &c.rec.runc {
        let mut cmd = Command::new(&runc.bin);
        cmd.arg("--root")
            .arg(&runc.root)
            .arg("exec")
            .arg("--env")
            .arg(format!("{EXEC_MARKER_ENV}={marker}"))
            .arg(&c.rec.id)
            .args(argv)
            .env_clear()
            .env(EXEC_MARKER_ENV, &marker)
            .kill_on_drop(true);
        cmd
    } else {
        let program_path = resolve_program(program, &path_env, &c.rec.cwd, !c.isolated)?;
        let mut cmd = Command::new(&program_path);
        cmd.arg0(program)
            .args(&argv[1..])
            .env_clear()
            .envs(c.rec.env.iter().map(|(k, v)| (k, v)))
            .env(EXEC_MARKER_ENV, &marker)
            .kill_on_drop(true);
        cmd
    };
    let terminal = match io {
        Io::Pipes { stdin } => {
            cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0);
            false
        }
        Io::Tty(slave) => {
            let dup = |fd: &OwnedFd| {
                fd.try_clone()
                    .map_err(|e| RuntimeError::io("duplicate the pty", e))
            };
            cmd.stdin(Stdio::from(dup(&slave)?))
                .stdout(Stdio::from(dup(&slave)?))
                .stderr(Stdio::from(slave));
            true
        }
    };
    let cwd = super::volumes::cstr(&c.rec.cwd)?;
    let gone = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RuntimeError::ContainerNotRunning(c.rec.id.clone())
        } else {
            RuntimeError::Sandbox(format!("entering the container: {}", gofmt::errno_text(&e)))
        }
    };
    let (setup, pid_ns) = if c.rec.runc.is_some() {
        // runc enters the container itself; its working directory is the container's.
        (
            ChildSetup {
                terminal,
                ..ChildSetup::default()
            },
            PidNs::Inherit,
        )
    } else if c.isolated {
        let pid = c.rec.process.pid;
        (
            ChildSetup {
                terminal,
                join: isolate::join_pod(pid).map_err(gone)?,
                cwd: Some(cwd),
                ..ChildSetup::default()
            },
            PidNs::Join(isolate::open_ns(pid, "pid").map_err(gone)?),
        )
    } else {
        (
            ChildSetup {
                terminal,
                cwd: Some(cwd),
                ..ChildSetup::default()
            },
            PidNs::Inherit,
        )
    };
    let child = isolate::spawn(cmd, setup, pid_ns)
        .await
        .map_err(|e| spawn_error(program, &c.rec.cwd, &[], &[], e))?;
    Ok((child, marker))
}

/// When the exec's first process started (clock ticks), to bound the tree scan; 0 if unknown.
fn started_ticks(pid: Option<u32>) -> u64 {
    pid.and_then(state::ProcRef::of)
        .map_or(0, |p| p.start_ticks)
}

/// SIGKILLs every process of an exec (its group and everything carrying its marker).
fn kill_exec(pgid: Option<u32>, marker: &str, since: u64) -> usize {
    let needle = format!("{EXEC_MARKER_ENV}={marker}");
    let pgid = pgid.and_then(|p| i32::try_from(p).ok());
    kill_all(&state::tree_pids(pgid, &needle, since))
}

fn kill_all(pids: &[i32]) -> usize {
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    pids.len()
}

/// [`kill_exec`] through a walk of `/proc` shared with concurrent callers.
async fn kill_exec_shared(pgid: Option<u32>, marker: &str, since: u64) -> usize {
    let needle = format!("{EXEC_MARKER_ENV}={marker}");
    let pgid = pgid.and_then(|p| i32::try_from(p).ok());
    kill_all(&state::tree_pids_shared(pgid, &needle, since).await)
}

/// Kills an exec's processes and waits (briefly) until they are gone, so a probe returns only
/// when nothing it started is left.
async fn kill_exec_and_wait(pgid: Option<u32>, marker: &str, since: u64) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while kill_exec_shared(pgid, marker, since).await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// SIGKILLs what is left of an exec whose first process exited. One `kill(-pgid)` that finds
/// nobody settles the common case with a system call instead of a walk over every process of
/// the node (which made probing O(pods²)); only when something was left does it fall back to
/// the full tree walk (which also skips zombies waiting for their new parent). Descendants that
/// left the group are hunted by the marker only when they hold the output pipes open (see
/// [`ContainerExecRunner`]) or at a timeout.
async fn kill_group_and_wait(pgid: Option<u32>, marker: &str, since: u64) {
    let Some(group) = pgid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    if killpg(Pid::from_raw(group), Signal::SIGKILL).is_ok() {
        kill_exec_and_wait(pgid, marker, since).await;
    }
}

/// Where exec finds a container by id: the process runtime's table of containers.
pub(crate) trait Containers: Send + Sync + std::fmt::Debug {
    /// The container `id`, if this agent knows it and it may still run.
    fn container(&self, id: &ContainerId) -> Option<Arc<ContainerRt>>;
}

/// Runs exec-probe commands in a container (CRI `ExecSync`).
#[derive(Debug)]
pub struct ContainerExecRunner {
    containers: Arc<dyn Containers>,
    id: ContainerId,
}

impl ContainerExecRunner {
    pub(crate) fn new(containers: Arc<dyn Containers>, id: ContainerId) -> Self {
        Self { containers, id }
    }

    async fn run_inner(
        &self,
        argv: &[String],
        timeout: Duration,
    ) -> Result<probe::ExecOutput, probe::ExecError> {
        use probe::ExecError;
        let deadline = Instant::now() + timeout;
        let c = self
            .containers
            .container(&self.id)
            .ok_or_else(|| ExecError::Runtime(format!("container {} not found", self.id)))?;
        let (mut child, marker) = spawn_in(&c, argv, Io::Pipes { stdin: false })
            .await
            .map_err(|e| match e {
                RuntimeError::NoCommand => ExecError::EmptyCommand,
                RuntimeError::ExecutableNotFound(p) => ExecError::NotFound(p),
                RuntimeError::NoSuchFile(program) => ExecError::Spawn {
                    program,
                    msg: "no such file or directory".into(),
                },
                RuntimeError::PermissionDenied(program) => ExecError::Spawn {
                    program,
                    msg: "permission denied".into(),
                },
                other => ExecError::Runtime(other.to_string()),
            })?;
        let pgid = child.id();
        let mut reaper = ExecReaper {
            pgid,
            since: started_ticks(pgid),
            marker,
        };
        Ok(run_with_deadline(&mut child, deadline, &mut reaper).await)
    }
}

/// [`Reaper`] of an exec probe: everything carrying the exec's marker.
struct ExecReaper {
    pgid: Option<u32>,
    since: u64,
    marker: String,
}

impl Reaper for ExecReaper {
    async fn timed_out(&mut self) {
        kill_exec_and_wait(self.pgid, &self.marker, self.since).await;
    }

    async fn exited(&mut self) {
        kill_group_and_wait(self.pgid, &self.marker, self.since).await;
    }

    async fn pipes_held(&mut self) {
        kill_exec_and_wait(None, &self.marker, self.since).await;
    }
}

impl probe::ExecRunner for ContainerExecRunner {
    fn run<'a>(
        &'a self,
        argv: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<probe::ExecOutput, probe::ExecError>> {
        Box::pin(self.run_inner(argv, timeout))
    }
}

/// A `kubectl exec` session: the command's streams, its terminal size, and its exit code.
/// Dropping the session kills the command and everything it started.
pub struct ExecSession {
    /// The command's stdin (when asked for; with a tty, the terminal's input).
    pub stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    /// The command's stdout (with a tty, the terminal's output: stdout and stderr merged).
    pub stdout: Option<Pin<Box<dyn AsyncRead + Send>>>,
    /// The command's stderr (`None` with a tty).
    pub stderr: Option<Pin<Box<dyn AsyncRead + Send>>>,
    child: Child,
    pty: Option<Arc<OwnedFd>>,
    pgid: Option<u32>,
    since: u64,
    marker: String,
}

/// Changes an exec session's terminal size; usable while the session is being waited on.
#[derive(Debug, Clone)]
pub struct Resizer(Option<Arc<OwnedFd>>);

impl Resizer {
    /// Resizes the terminal `master` (none: a no-op).
    pub(crate) fn new(master: Option<Arc<OwnedFd>>) -> Resizer {
        Resizer(master)
    }

    /// Sets the terminal size (columns, rows); a no-op without a tty.
    pub fn resize(&self, width: u16, height: u16) -> Result<(), RuntimeError> {
        match &self.0 {
            Some(master) => super::sys::set_winsize(master, width, height)
                .map_err(|e| RuntimeError::io("resize the terminal", e)),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSession")
            .field("pid", &self.child.id())
            .field("tty", &self.pty.is_some())
            .finish_non_exhaustive()
    }
}

impl ExecSession {
    /// Sets the terminal size (columns, rows); a no-op without a tty.
    pub fn resize(&self, width: u16, height: u16) -> Result<(), RuntimeError> {
        self.resizer().resize(width, height)
    }

    /// A handle to resize the terminal while [`Self::wait`] holds the session.
    pub fn resizer(&self) -> Resizer {
        Resizer(self.pty.clone())
    }

    /// Waits for the command to exit; its exit code (`128 + signal` when killed, -1 if the
    /// wait itself failed).
    pub async fn wait(&mut self) -> i32 {
        match self.child.wait().await {
            Ok(status) => exit_code(status),
            Err(e) => {
                tracing::warn!(error = %e, "waiting for an exec'd command");
                -1
            }
        }
    }

    /// Kills the command and everything it started.
    pub fn kill(&self) {
        let _ = kill_exec(self.pgid, &self.marker, self.since);
    }
}

impl Drop for ExecSession {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads a pty master, turning the `EIO` it returns once the terminal's last user is gone
/// into end of file.
struct PtyReader(tokio::fs::File);

impl AsyncRead for PtyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

pub(crate) async fn start_session(
    containers: &dyn Containers,
    id: &ContainerId,
    argv: &[String],
    tty: bool,
    stdin: bool,
) -> Result<ExecSession, RuntimeError> {
    let c = containers
        .container(id)
        .ok_or_else(|| RuntimeError::ContainerNotFound(id.0.clone()))?;
    if tty {
        let pty = nix::pty::openpty(None, None)
            .map_err(|e| RuntimeError::io("open a pty", std::io::Error::from(e)))?;
        // Keep the slave out of other children: it goes to this one only.
        let master = pty.master;
        let (child, marker) = spawn_in(&c, argv, Io::Tty(pty.slave)).await?;
        let clone = |fd: &OwnedFd| {
            fd.try_clone()
                .map(|f| tokio::fs::File::from_std(std::fs::File::from(f)))
                .map_err(|e| RuntimeError::io("duplicate the pty", e))
        };
        let reader = clone(&master)?;
        let writer = clone(&master)?;
        let pgid = child.id();
        Ok(ExecSession {
            stdin: Some(Box::pin(writer)),
            stdout: Some(Box::pin(PtyReader(reader))),
            stderr: None,
            child,
            pty: Some(Arc::new(master)),
            pgid,
            since: started_ticks(pgid),
            marker,
        })
    } else {
        let (mut child, marker) = spawn_in(&c, argv, Io::Pipes { stdin }).await?;
        let pgid = child.id();
        Ok(ExecSession {
            stdin: child
                .stdin
                .take()
                .map(|w| Box::pin(w) as Pin<Box<dyn AsyncWrite + Send>>),
            stdout: child
                .stdout
                .take()
                .map(|r| Box::pin(r) as Pin<Box<dyn AsyncRead + Send>>),
            stderr: child
                .stderr
                .take()
                .map(|r| Box::pin(r) as Pin<Box<dyn AsyncRead + Send>>),
            child,
            pty: None,
            pgid,
            since: started_ticks(pgid),
            marker,
        })
    }
}
