//! The runtime driver: containers run by `runc` (Debian package `runc`) from OCI bundles under a
//! private directory, one process per operation, never a daemon or shim.
//!
//! Layout of the directory given to [`Runtime::new`] (0700): `state/` is runc's `--root` (its
//! per-container state, which outlives the driver), `bundles/<id>/` a container's bundle:
//! `config.json` (0600), `rootfs/` (the overlay, [`crate::rootfs`]), `fs/` (its writable
//! layer), `runc.log` (runc's own messages; the container's stdout/stderr go to the caller's
//! descriptors).
//!
//! Exit status without a shim: [`Runtime::new`] makes this process a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`), so when `runc run --detach` exits the container's init becomes our
//! child; its pidfd turns readable at exit and `waitid(P_PIDFD)` reaps it with its status. A
//! container adopted after a restart ([`Runtime::recover`]) is not our child: its end is seen
//! through the pidfd but its status is unknown (the caller reports `ContainerStatusUnknown`, as
//! the process runtime does). Whoever embeds this must therefore reap only the children it
//! spawned (tokio does) and accept that orphans of its other children are reparented to it.
//!
//! A `tty: true` container gets a terminal whose master end runc hands over on a console socket
//! ([`Container::console`]). Not yet: a terminal for exec, resizing, pausing, checkpoints.
//!
//! Start at [`Runtime::run`] (bundle, overlay, `runc run --detach`), then
//! [`Runtime::wait`], [`Runtime::stop`], [`Runtime::remove`], [`Runtime::exec`] and
//! [`Runtime::recover`].

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::unix::AsyncFd;
use tokio::process::Command;

use crate::Error;
use crate::cgroups::Layout;
use crate::spec::ContainerSpec;

/// The largest output [`Runtime::exec_sync`] keeps per stream (the rest is read and dropped).
pub const EXEC_SYNC_MAX_OUTPUT: usize = 1 << 20;

/// How long a timed-out exec's `runc exec` gets to reap the killed command, and its output
/// readers to finish after it ended.
const EXEC_REAP_GRACE: Duration = Duration::from_secs(5);

/// Numbers the pid files of concurrent [`Runtime::exec_sync`] calls.
static EXEC_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What [`Runtime::run`] needs.
#[derive(Debug)]
pub struct RunRequest {
    /// The container id (letters, digits, `-`, `_`, `.`; also its cgroup's leaf name).
    pub id: String,
    /// The image's layer directories, base layer first.
    pub layers: Vec<PathBuf>,
    /// What the runtime spec is built from.
    pub spec: ContainerSpec,
    /// The container's stdin (`None`: `/dev/null`).
    pub stdin: Option<OwnedFd>,
    /// Where its stdout goes (a log pipe or file).
    pub stdout: OwnedFd,
    /// Where its stderr goes.
    pub stderr: OwnedFd,
}

/// A running container.
#[derive(Debug)]
pub struct Container {
    /// Its id.
    pub id: String,
    /// Its init's pid, as the node sees it.
    pub pid: u32,
    /// Its cgroup (the spec's `linux.cgroupsPath`).
    pub cgroups_path: String,
    /// Whether it is our child (so its exit status can be collected).
    pub child: bool,
    /// For a `tty: true` container, its terminal's master end: read the output from it, write
    /// the input to it (the caller's stdio descriptors are then unused).
    pub console: Option<OwnedFd>,
    pidfd: AsyncFd<OwnedFd>,
}

/// How a container's init ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The exit code; 128 + signal when a signal killed it; 137 when unknown.
    pub code: i32,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// Whether the OOM killer killed a process of its cgroup (report `OOMKilled`).
    pub oom_killed: bool,
    /// False for an adopted container, whose status nobody could collect.
    pub known: bool,
}

/// runc's `state` / `list` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct State {
    /// The container id.
    pub id: String,
    /// Its init's pid (0 once stopped).
    #[serde(default)]
    pub pid: i64,
    /// `created`, `running`, `paused` or `stopped`.
    pub status: String,
    /// The bundle directory.
    #[serde(default)]
    pub bundle: String,
}

/// Drives `runc`; see the module docs.
#[derive(Debug, Clone)]
pub struct Runtime {
    runc: PathBuf,
    state: PathBuf,
    bundles: PathBuf,
    cgroups: Option<Layout>,
}

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty()
        || id.len() > 128
        || id.starts_with('.')
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(Error::Spec(format!("invalid container id {id:?}")));
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Runtime(format!("blocking task failed: {e}")))?
}

impl Runtime {
    /// A runtime keeping its state under `dir` (created 0700), running `runc` (a path, or a
    /// name looked up in `PATH`), with cgroups laid out by `cgroups` (`None`: the spec's
    /// `cgroupsPath` is used as given and OOM kills are not read). Makes this process a child
    /// subreaper (see the module docs).
    pub fn new(dir: &Path, runc: &Path, cgroups: Option<Layout>) -> Result<Self, Error> {
        let runc = if runc.components().count() > 1 {
            runc.to_path_buf()
        } else {
            find_in_path(runc).ok_or_else(|| {
                Error::Runtime(format!(
                    "{} not found in PATH (install the Debian package runc)",
                    runc.display()
                ))
            })?
        };
        use std::os::unix::fs::DirBuilderExt;
        let state = dir.join("state");
        let bundles = dir.join("bundles");
        for d in [dir, &state, &bundles] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .map_err(io_err(format!("create {}", d.display())))?;
        }
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| io_err("become a child subreaper".into())(e.into()))?;
        Ok(Self {
            runc,
            state,
            bundles,
            cgroups,
        })
    }

    /// The cgroup layout in use.
    pub fn cgroups(&self) -> Option<&Layout> {
        self.cgroups.as_ref()
    }

    /// A container's bundle directory.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.bundles.join(id)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.runc);
        c.arg("--root").arg(&self.state);
        c.kill_on_drop(false);
        c
    }

    /// Runs `runc <args>`, its output captured; an error carries runc's message.
    async fn runc(&self, args: &[&str]) -> Result<Vec<u8>, Error> {
        let out = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(io_err(format!("run {}", self.runc.display())))?;
        if !out.status.success() {
            return Err(Error::Runtime(format!(
                "runc {}: {}",
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(out.stdout)
    }

    /// Creates and starts a container: writes the bundle, mounts the overlay, then
    /// `runc run --detach` with the caller's stdio. On failure nothing is left behind.
    pub async fn run(&self, req: RunRequest) -> Result<Container, Error> {
        check_id(&req.id)?;
        let bundle = self.bundle(&req.id);
        if bundle.exists() {
            return Err(Error::Runtime(format!(
                "container {} already exists",
                req.id
            )));
        }
        let spec = crate::spec::build(&req.spec)?;
        let tty = req.spec.tty;
        let cgroups_path = req.spec.cgroups_path.clone();
        let b = bundle.clone();
        let layers = req.layers.clone();
        let prepared = blocking(move || {
            crate::rootfs::mount(&b, &layers)?;
            let json = serde_json::to_vec_pretty(&spec)
                .map_err(|e| Error::Spec(format!("serialize config.json: {e}")))?;
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let path = b.join("config.json");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io_err(format!("create {}", path.display())))?;
            f.write_all(&json)
                .map_err(io_err(format!("write {}", path.display())))?;
            Ok(())
        })
        .await;
        if let Err(e) = prepared {
            let b = bundle.clone();
            let _ = blocking(move || crate::rootfs::remove(&b)).await;
            return Err(e);
        }
        match self
            .create_start(
                &req.id,
                &bundle,
                tty,
                req.stdin,
                req.stdout,
                req.stderr,
                &cgroups_path,
            )
            .await
        {
            Ok(c) => Ok(c),
            Err(e) => {
                let _ = self.remove(&req.id).await;
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_start(
        &self,
        id: &str,
        bundle: &Path,
        tty: bool,
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
        cgroups_path: &str,
    ) -> Result<Container, Error> {
        let pid_file = bundle.join("pid");
        let log = bundle.join("runc.log");
        let mut cmd = self.cmd();
        cmd.arg("--log")
            .arg(&log)
            .arg("--log-format")
            .arg("json")
            .arg("run")
            .arg("--detach")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        // A terminal: runc connects to this socket and sends the pty's master end.
        let console_sock = tty.then(|| {
            let n = EXEC_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.state
                .join(format!("console-{}-{n}.sock", std::process::id()))
        });
        let listener = match &console_sock {
            Some(path) => {
                if path.as_os_str().len() >= 108 {
                    return Err(Error::Runtime(format!(
                        "console socket path {} is too long for a UNIX socket",
                        path.display()
                    )));
                }
                cmd.arg("--console-socket").arg(path);
                let l = std::os::unix::net::UnixListener::bind(path)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .and_then(tokio::net::UnixListener::from_std)
                    .map_err(io_err(format!("listen on {}", path.display())))?;
                Some(l)
            }
            None => None,
        };
        cmd.arg(id);
        cmd.stdin(stdin.map_or_else(Stdio::null, Stdio::from));
        cmd.stdout(Stdio::from(stdout));
        cmd.stderr(Stdio::from(stderr));
        let mut child = cmd
            .spawn()
            .map_err(io_err(format!("run {}", self.runc.display())))?;
        let mut console = None;
        let mut status = None;
        if let Some(l) = &listener {
            tokio::select! {
                conn = l.accept() => {
                    let conn = conn.map_err(io_err("accept on the console socket".into()))?;
                    let std = conn.0.into_std().map_err(io_err("console socket".into()))?;
                    console = Some(blocking(move || {
                        std.set_nonblocking(false)
                            .and_then(|()| crate::sys::recv_fd(&std))
                            .map_err(io_err("receive the container's terminal".into()))
                    }).await?);
                }
                st = child.wait() => status = Some(st),
            }
        }
        let status = match status {
            Some(st) => st,
            None => child.wait().await,
        }
        .map_err(io_err(format!("run {}", self.runc.display())));
        if let Some(path) = console_sock {
            let _ = blocking(move || Ok(std::fs::remove_file(path))).await;
        }
        let status = status?;
        if !status.success() {
            let log2 = log.clone();
            let msg = blocking(move || Ok(last_error(&log2)))
                .await
                .unwrap_or_default();
            return Err(Error::Runtime(format!("runc run {id}: {msg}")));
        }
        let pf = pid_file.clone();
        let pid: u32 = blocking(move || {
            std::fs::read_to_string(&pf)
                .map_err(io_err(format!("read {}", pf.display())))?
                .trim()
                .parse()
                .map_err(|_| Error::Runtime(format!("bad pid in {}", pf.display())))
        })
        .await?;
        // `runc run --detach` (create and start in one runc process, a third less CPU than
        // two) has exited, so the init is our child now: even if it has already ended, it stays
        // a zombie nobody else reaps until we do, so its pid cannot have been reused.
        let pidfd = open_pidfd(pid)?;
        Ok(Container {
            id: id.to_string(),
            pid,
            cgroups_path: cgroups_path.to_string(),
            child: true,
            console,
            pidfd,
        })
    }

    /// Waits for the container's init to end, reaps it (call it once per container, from one
    /// task, and fan the result out: a second call finds nothing to reap and reports the status
    /// unknown; a container never waited for stays a zombie of this process), and reads whether
    /// the OOM killer struck — so call it before [`Runtime::remove`] takes the cgroup away.
    pub async fn wait(&self, c: &Container) -> Exit {
        loop {
            match c.pidfd.readable().await {
                Ok(mut guard) => {
                    guard.clear_ready();
                    break;
                }
                Err(e) => {
                    tracing::warn!(id = %c.id, error = %e, "waiting on pidfd");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let proc = PathBuf::from(format!("/proc/{}", c.pid));
                    if !blocking(move || Ok(proc.exists())).await.unwrap_or(false) {
                        break;
                    }
                }
            }
        }
        let (code, signal, known) = if c.child {
            use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
            match waitid(
                Id::PIDFd(c.pidfd.get_ref().as_fd()),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
            ) {
                Ok(WaitStatus::Exited(_, code)) => (code, None, true),
                Ok(WaitStatus::Signaled(_, sig, _)) => (128 + sig as i32, Some(sig as i32), true),
                _ => (137, None, false),
            }
        } else {
            (137, None, false)
        };
        let layout = self.cgroups.clone();
        let path = c.cgroups_path.clone();
        let oom_killed = blocking(move || Ok(layout.is_some_and(|l| l.oom_killed(&path))))
            .await
            .unwrap_or(false);
        Exit {
            code,
            signal,
            oom_killed,
            known,
        }
    }

    /// runc's view of one container.
    pub async fn state(&self, id: &str) -> Result<State, Error> {
        check_id(id)?;
        let out = self.runc(&["state", id]).await?;
        serde_json::from_slice(&out).map_err(|e| Error::Runtime(format!("runc state {id}: {e}")))
    }

    /// Sends `signal` to the container's init, or to every process in it (`all`).
    pub async fn kill(
        &self,
        id: &str,
        signal: nix::sys::signal::Signal,
        all: bool,
    ) -> Result<(), Error> {
        check_id(id)?;
        let sig = (signal as i32).to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.push(id);
        args.push(&sig);
        self.runc(&args).await.map(|_| ())
    }

    /// SIGTERM, up to `grace` (tokio time) for the init to end, then SIGKILL to every process
    /// of the container; returns once the init is gone.
    pub async fn stop(&self, c: &Container, grace: Duration) -> Result<(), Error> {
        use nix::sys::signal::Signal;
        if self.kill(&c.id, Signal::SIGTERM, false).await.is_ok() {
            let ended = tokio::time::timeout(grace, c.pidfd.readable()).await;
            if matches!(ended, Ok(Ok(_))) {
                return Ok(());
            }
        }
        let _ = self.kill(&c.id, Signal::SIGKILL, true).await;
        let _ = c.pidfd.readable().await;
        Ok(())
    }

    /// Deletes the container (`runc delete --force`: its processes are killed and its cgroup
    /// removed), unmounts its root and deletes its bundle. Idempotent.
    pub async fn remove(&self, id: &str) -> Result<(), Error> {
        check_id(id)?;
        let bundle = self.bundle(id);
        let b = bundle.clone();
        let cg = blocking(move || Ok(read_cgroups_path(&b))).await?;
        if let Err(e) = self.runc(&["delete", "--force", id]).await {
            // Not known to runc (never created, or already deleted) is fine.
            if !e.to_string().contains("does not exist") && !e.to_string().contains("not exist") {
                tracing::debug!(id, error = %e, "runc delete");
            }
        }
        let layout = self.cgroups.clone();
        blocking(move || {
            if let (Some(l), Some(cg)) = (layout, cg) {
                l.remove(&cg)?;
            }
            crate::rootfs::remove(&bundle)
        })
        .await
    }

    /// Runs `argv` in the container (`runc exec`: the container's process settings —
    /// env, user, capabilities, no_new_privs, cwd — with these arguments), its stdio piped.
    pub fn exec(&self, id: &str, argv: &[String]) -> Result<tokio::process::Child, Error> {
        self.exec_with_pid_file(id, argv, None)
    }

    fn exec_with_pid_file(
        &self,
        id: &str,
        argv: &[String],
        pid_file: Option<&Path>,
    ) -> Result<tokio::process::Child, Error> {
        check_id(id)?;
        if argv.is_empty() {
            return Err(Error::Spec("exec: no command".into()));
        }
        let mut cmd = self.cmd();
        cmd.arg("exec");
        if let Some(p) = pid_file {
            cmd.arg("--pid-file").arg(p);
        }
        cmd.arg(id).args(argv);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd.spawn()
            .map_err(io_err(format!("run {}", self.runc.display())))
    }

    /// Runs `argv` in the container and collects its exit code and output (each stream
    /// bounded by [`EXEC_SYNC_MAX_OUTPUT`]); after `timeout` the command is killed and an
    /// error returned (CRI `ExecSync`).
    pub async fn exec_sync(
        &self,
        id: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<(i32, Vec<u8>, Vec<u8>), Error> {
        use tokio::io::AsyncReadExt;
        check_id(id)?;
        // The exec'd process's pid, to kill it at the timeout (killing `runc exec` would leave
        // it running in the container).
        let n = EXEC_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid_file = self
            .bundle(id)
            .join(format!("exec-{}-{n}.pid", std::process::id()));
        let mut child = self.exec_with_pid_file(id, argv, Some(&pid_file))?;
        drop(child.stdin.take());
        let out = child.stdout.take();
        let err = child.stderr.take();
        async fn bounded(r: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
            let mut buf = Vec::new();
            let Some(mut r) = r else { return buf };
            let mut chunk = [0u8; 8192];
            loop {
                match r.read(&mut chunk).await {
                    Ok(0) | Err(_) => return buf,
                    Ok(n) => {
                        let room = EXEC_SYNC_MAX_OUTPUT.saturating_sub(buf.len());
                        buf.extend_from_slice(&chunk[..n.min(room)]);
                    }
                }
            }
        }
        let out_task = tokio::spawn(bounded(out));
        let err_task = tokio::spawn(bounded(err));
        let waited = tokio::time::timeout(timeout, child.wait()).await;
        let timed_out = waited.is_err();
        if timed_out {
            // Kill the command itself (only once a pidfd showed its pid alive), then let
            // `runc exec` exit: killing runc instead would leave the command running. The
            // command's parent in runc's process tree is gone by then, so its zombie may come
            // to us (the subreaper); it is reaped here, or it would keep the container's cgroup
            // busy and make its removal fail.
            let pf = pid_file.clone();
            let pid = blocking(move || {
                Ok(std::fs::read_to_string(&pf)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok()))
            })
            .await
            .ok()
            .flatten();
            let pidfd = pid.and_then(|p| open_pidfd(p).ok());
            if pidfd.is_some() {
                // pidfd_send_signal has no nix wrapper: the pid is signalled right after the
                // pidfd showed it alive.
                if let Some(p) = pid {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if tokio::time::timeout(EXEC_REAP_GRACE, child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
            if let Some(fd) = pidfd {
                reap_if_ours(&fd).await;
            }
        }
        let pf = pid_file.clone();
        let _ = blocking(move || Ok(std::fs::remove_file(&pf))).await;
        // Output still held open by something the command left behind is not waited for long.
        let collect = |t: tokio::task::JoinHandle<Vec<u8>>| async move {
            let abort = t.abort_handle();
            match tokio::time::timeout(EXEC_REAP_GRACE, t).await {
                Ok(Ok(v)) => v,
                _ => {
                    abort.abort();
                    Vec::new()
                }
            }
        };
        let (o, e) = tokio::join!(collect(out_task), collect(err_task));
        match waited {
            Ok(st) => {
                let st = st.map_err(io_err("wait for runc exec".into()))?;
                use std::os::unix::process::ExitStatusExt;
                let code = st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
                Ok((code, o, e))
            }
            Err(_) => Err(Error::Runtime(format!(
                "command {argv:?} timed out after {timeout:?}"
            ))),
        }
    }

    /// After a restart: adopts every running container (their end is seen, their status
    /// is not), deletes stopped or half-created ones, and removes every bundle runc does not
    /// know (a driver killed mid-create: its overlay is unmounted, its cgroup removed).
    pub async fn recover(&self) -> Result<Vec<Container>, Error> {
        let out = self.runc(&["list", "--format", "json"]).await?;
        let states: Vec<State> = if out.trim_ascii().is_empty() || out.trim_ascii() == b"null" {
            Vec::new()
        } else {
            serde_json::from_slice(&out).map_err(|e| Error::Runtime(format!("runc list: {e}")))?
        };
        let mut adopted = Vec::new();
        for s in &states {
            let bundle = self.bundle(&s.id);
            let pidfd = (s.status == "running" && s.pid > 0)
                .then(|| open_pidfd(s.pid as u32).ok())
                .flatten();
            if let Some(pidfd) = pidfd {
                let b = bundle.clone();
                let cgroups_path = blocking(move || Ok(read_cgroups_path(&b)))
                    .await?
                    .unwrap_or_default();
                adopted.push(Container {
                    id: s.id.clone(),
                    pid: s.pid as u32,
                    cgroups_path,
                    child: false,
                    console: None,
                    pidfd,
                });
                continue;
            }
            self.remove(&s.id).await?;
        }
        let known: Vec<String> = states.iter().map(|s| s.id.clone()).collect();
        let dir = self.bundles.clone();
        let leftovers: Vec<String> = blocking(move || {
            Ok(crate::rootfs::bundles(&dir)
                .into_iter()
                .filter_map(|b| b.file_name().and_then(|n| n.to_str()).map(str::to_string))
                .filter(|n| !known.contains(n))
                .collect())
        })
        .await?;
        for id in leftovers {
            tracing::info!(id, "removing a container left half-created");
            self.remove(&id).await?;
        }
        Ok(adopted)
    }
}

/// Reaps an ended process if it is (or becomes, within a moment) our child; returns at once when
/// another process reaps it.
async fn reap_if_ours(fd: &AsyncFd<OwnedFd>) {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    let _ = tokio::time::timeout(EXEC_REAP_GRACE, fd.readable()).await;
    for _ in 0..50 {
        match waitid(
            Id::PIDFd(fd.get_ref().as_fd()),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
        ) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return,
            // Not our child (yet): its parent in runc may still be ending.
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn open_pidfd(pid: u32) -> Result<AsyncFd<OwnedFd>, Error> {
    let pid = i32::try_from(pid).map_err(|_| Error::Runtime(format!("bad pid {pid}")))?;
    crate::sys::async_pidfd(pid).map_err(io_err(format!("pidfd_open {pid}")))
}

fn read_cgroups_path(bundle: &Path) -> Option<String> {
    let data = std::fs::read(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
    v.pointer("/linux/cgroupsPath")?
        .as_str()
        .map(str::to_string)
}

/// The last error runc wrote to its JSON log.
fn last_error(log: &Path) -> String {
    let Ok(s) = std::fs::read_to_string(log) else {
        return "no runc log".into();
    };
    s.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("level").and_then(|l| l.as_str()) == Some("error"))
        .and_then(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| "failed (no message in runc's log)".into())
}

fn find_in_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
