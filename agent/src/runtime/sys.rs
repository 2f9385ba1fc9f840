//! The only `unsafe` code of the runtime: what a child process does between `fork` and `exec`
//! (get back the open-file limit paddock started with, enter or create namespaces, set the
//! hostname, mount, change directory, become a session leader with a controlling terminal), the terminal-size ioctl for `kubectl exec -t`, and
//! `pidfd_open` for waiting on processes a previous agent started.
//!
//! Everything the child needs is prepared by the parent ([`ChildSetup`], all paths as
//! `CString`s, namespace files already open), so the child only makes system calls: no
//! allocation, no locks — what is allowed after `fork` in a multi-threaded process. When a step
//! fails the child writes which one ([`Step`]) to a report pipe before returning the error, so
//! the parent can name the cause (the `errno` alone comes back through `spawn`'s error).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::stat::Mode;

/// One filesystem operation in the child's (new) mount namespace.
#[derive(Debug)]
pub(crate) enum MountOp {
    /// `mount --make-rprivate /`, so nothing done here propagates to the node.
    MakePrivate,
    /// A bind mount of `src` on `dst`, then a read-only remount when asked. Every bind's
    /// source is opened (`O_PATH`) before the first operation runs and mounted through
    /// `/proc/self/fd/<n>`, so a tmpfs put on `/tmp` first does not hide a source under `/tmp`.
    Bind {
        /// Source path.
        src: CString,
        /// The source opened by the child (`-1` until then).
        src_fd: AtomicI32,
        /// Mount point.
        dst: CString,
        /// Remount read-only.
        read_only: bool,
    },
    /// A tmpfs on `dst` with mount options `opts`.
    Tmpfs {
        /// Mount point.
        dst: CString,
        /// Mount data (`mode=1777`).
        opts: CString,
    },
    /// A fresh procfs for the current PID namespace on `dst`.
    Proc {
        /// Mount point.
        dst: CString,
    },
    /// `mkdir path` (exists is fine), for mount points inside a tmpfs made here.
    Mkdir {
        /// The directory.
        path: CString,
    },
    /// Create an empty file (exists is fine), a mount point for a file bind.
    Touch {
        /// The file.
        path: CString,
    },
    /// `ln -s target path` (exists is fine), for the `/dev` links a container runtime makes.
    Symlink {
        /// What the link points to.
        target: CString,
        /// The link.
        path: CString,
    },
    /// A POSIX message queue filesystem (of the current IPC namespace) on `dst`.
    Mqueue {
        /// Mount point.
        dst: CString,
    },
}

/// Which step of [`ChildSetup`] failed in the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `setsid` / `TIOCSCTTY`.
    Terminal,
    /// Entering namespace number `n` of [`ChildSetup::join`].
    Join(usize),
    /// `unshare`.
    Unshare,
    /// `sethostname`.
    Hostname,
    /// Mount operation number `n` of [`ChildSetup::ops`].
    Op(usize),
    /// `chdir` to the working directory.
    Chdir,
}

impl Step {
    fn encode(self) -> u32 {
        let (kind, n) = match self {
            Step::Terminal => (1, 0),
            Step::Join(n) => (2, n),
            Step::Unshare => (3, 0),
            Step::Hostname => (4, 0),
            Step::Op(n) => (5, n),
            Step::Chdir => (6, 0),
        };
        (kind << 16) | (u32::try_from(n).unwrap_or(0xffff) & 0xffff)
    }

    /// Decodes what the child wrote (`None`: no step failed, so `exec` itself did).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Step> {
        let raw = u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?);
        let n = (raw & 0xffff) as usize;
        Some(match raw >> 16 {
            1 => Step::Terminal,
            2 => Step::Join(n),
            3 => Step::Unshare,
            4 => Step::Hostname,
            5 => Step::Op(n),
            6 => Step::Chdir,
            _ => return None,
        })
    }
}

/// What a child does before `exec`, in this order.
#[derive(Debug, Default)]
pub(crate) struct ChildSetup {
    /// Become a session leader with stdin (a pty) as the controlling terminal.
    pub(crate) terminal: bool,
    /// Namespaces to enter (`setns`), in order.
    pub(crate) join: Vec<(OwnedFd, CloneFlags)>,
    /// Namespaces to create (`unshare`).
    pub(crate) unshare: Option<CloneFlags>,
    /// Hostname to set (in a new UTS namespace).
    pub(crate) hostname: Option<CString>,
    /// Filesystem operations (in a new mount namespace).
    pub(crate) ops: Vec<MountOp>,
    /// Ignore `SIGCHLD` (kept across `exec`): a PID-namespace init then never leaves zombies.
    pub(crate) ignore_sigchld: bool,
    /// Directory to change to (after entering the mount namespace, which resets it).
    pub(crate) cwd: Option<CString>,
    /// Write end of the report pipe (close-on-exec).
    pub(crate) report: Option<OwnedFd>,
}

impl ChildSetup {
    /// Whether the child needs nothing but a working directory: then it can be started with
    /// `posix_spawn` (a `vfork`-style clone sharing the agent's memory) instead of a `fork` that
    /// copies the page tables of the whole agent — the biggest cost of an exec probe on a node
    /// with many pods.
    pub(crate) fn only_cwd(&self) -> bool {
        !self.terminal
            && self.join.is_empty()
            && self.unshare.is_none()
            && self.hostname.is_none()
            && self.ops.is_empty()
            && !self.ignore_sigchld
    }
}

fn report(setup: &ChildSetup, step: Step, err: Errno) -> io::Error {
    if let Some(fd) = &setup.report {
        let _ = nix::unistd::write(fd, &step.encode().to_ne_bytes());
    }
    io::Error::from(err)
}

fn run_op(op: &MountOp) -> Result<(), Errno> {
    match op {
        MountOp::MakePrivate => mount(
            None::<&std::ffi::CStr>,
            c"/",
            None::<&std::ffi::CStr>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&std::ffi::CStr>,
        ),
        MountOp::Bind {
            src_fd,
            dst,
            read_only,
            ..
        } => {
            let mut buf = [0u8; 40];
            let src = fd_path(src_fd.load(Ordering::Relaxed), &mut buf);
            mount(
                Some(src),
                dst.as_c_str(),
                None::<&std::ffi::CStr>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&std::ffi::CStr>,
            )?;
            if *read_only {
                mount(
                    None::<&std::ffi::CStr>,
                    dst.as_c_str(),
                    None::<&std::ffi::CStr>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None::<&std::ffi::CStr>,
                )?;
            }
            Ok(())
        }
        MountOp::Tmpfs { dst, opts } => mount(
            Some(c"tmpfs"),
            dst.as_c_str(),
            Some(c"tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(opts.as_c_str()),
        ),
        MountOp::Proc { dst } => mount(
            Some(c"proc"),
            dst.as_c_str(),
            Some(c"proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&std::ffi::CStr>,
        ),
        MountOp::Mkdir { path } => {
            match nix::unistd::mkdir(path.as_c_str(), Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => Ok(()),
                Err(e) => Err(e),
            }
        }
        MountOp::Touch { path } => {
            let fd = nix::fcntl::open(
                path.as_c_str(),
                nix::fcntl::OFlag::O_CREAT
                    | nix::fcntl::OFlag::O_WRONLY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )?;
            drop(fd);
            Ok(())
        }
        MountOp::Symlink { target, path } => {
            match nix::unistd::symlinkat(target.as_c_str(), nix::fcntl::AT_FDCWD, path.as_c_str()) {
                Ok(()) | Err(Errno::EEXIST) => Ok(()),
                Err(e) => Err(e),
            }
        }
        MountOp::Mqueue { dst } => mount(
            Some(c"mqueue"),
            dst.as_c_str(),
            Some(c"mqueue"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&std::ffi::CStr>,
        ),
    }
}

/// Formats `/proc/self/fd/<fd>` into `buf` without allocating.
fn fd_path(fd: i32, buf: &mut [u8; 40]) -> &CStr {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 12];
    let mut n = fd.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"/")
}

fn open_sources(setup: &ChildSetup) -> io::Result<()> {
    for (i, op) in setup.ops.iter().enumerate() {
        if let MountOp::Bind { src, src_fd, .. } = op {
            let fd = nix::fcntl::open(
                src.as_c_str(),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| report(setup, Step::Op(i), e))?;
            // Closed at exec (close-on-exec).
            src_fd.store(std::os::fd::IntoRawFd::into_raw_fd(fd), Ordering::Relaxed);
        }
    }
    Ok(())
}

fn run_setup(setup: &ChildSetup) -> io::Result<()> {
    restore_nofile_limit();
    if setup.terminal {
        nix::unistd::setsid().map_err(|e| report(setup, Step::Terminal, e))?;
        // SAFETY: TIOCSCTTY on fd 0 (the pty slave std just dup'ed there) with an int argument.
        let rc = unsafe { nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) };
        if rc < 0 {
            return Err(report(setup, Step::Terminal, Errno::last()));
        }
    }
    for (i, (fd, flags)) in setup.join.iter().enumerate() {
        setns(fd, *flags).map_err(|e| report(setup, Step::Join(i), e))?;
    }
    if let Some(flags) = setup.unshare {
        unshare(flags).map_err(|e| report(setup, Step::Unshare, e))?;
    }
    if let Some(name) = &setup.hostname {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(name.as_bytes());
        nix::unistd::sethostname(name).map_err(|e| report(setup, Step::Hostname, e))?;
    }
    open_sources(setup)?;
    for (i, op) in setup.ops.iter().enumerate() {
        run_op(op).map_err(|e| report(setup, Step::Op(i), e))?;
    }
    if setup.ignore_sigchld {
        // SAFETY: setting a signal disposition to SIG_IGN installs no handler code.
        unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }
            .map_err(|e| report(setup, Step::Op(setup.ops.len()), e))?;
    }
    if let Some(dir) = &setup.cwd {
        nix::unistd::chdir(dir.as_c_str()).map_err(|e| report(setup, Step::Chdir, e))?;
    }
    Ok(())
}

/// paddock raises its own soft open-file limit to the hard one at start; a container gets
/// the limit paddock started with, as Go gives its children back theirs (a program that sizes
/// a `select` set or a close-everything loop by the soft limit would crawl at a million).
/// Processes started with `posix_spawn` (see [`ChildSetup::only_cwd`]) keep the raised one.
fn restore_nofile_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Some(soft) = accept::original_nofile_soft()
        && let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
    {
        // Best effort: a container is better started with the raised limit than not at all.
        let _ = setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard);
    }
}

/// Makes `cmd`'s child run `setup` between `fork` and `exec`.
pub(crate) fn install(cmd: &mut tokio::process::Command, setup: ChildSetup) {
    // SAFETY: the closure runs in the forked child. It only reads `setup` (prepared by the
    // parent: no allocation happens) and makes async-signal-safe system calls (setsid, ioctl,
    // setns, unshare, sethostname, mount, mkdir, open, close, symlink, signal, chdir, write).
    unsafe {
        cmd.pre_exec(move || run_setup(&setup));
    }
}

/// Sets the terminal size of the pty whose master is `master`.
pub(crate) fn set_winsize(master: &OwnedFd, cols: u16, rows: u16) -> io::Result<()> {
    let ws = nix::libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which is valid for the call.
    let rc = unsafe { nix::libc::ioctl(master.as_raw_fd(), nix::libc::TIOCSWINSZ, &ws) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pidfd for `pid` (`pidfd_open`, Linux 5.3) registered with tokio: it turns readable once
/// the process has ended, which lets the agent wait for a process it is not the parent of
/// without polling `/proc`. Must be called within the tokio runtime.
pub(crate) fn pidfd(pid: i32) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: pidfd_open takes a pid and a flags word and returns a new descriptor or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: an `OwnedFd` is a valid open descriptor, stays open until the `AsyncFd` drops it,
    // and always returns the same number from `as_raw_fd`.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_paths_are_formatted_without_allocation() {
        let mut buf = [0u8; 40];
        assert_eq!(fd_path(7, &mut buf), c"/proc/self/fd/7");
        assert_eq!(fd_path(1234567, &mut buf), c"/proc/self/fd/1234567");
    }

    #[test]
    fn steps_round_trip() {
        for s in [
            Step::Terminal,
            Step::Join(3),
            Step::Unshare,
            Step::Hostname,
            Step::Op(17),
            Step::Chdir,
        ] {
            assert_eq!(Step::decode(&s.encode().to_ne_bytes()), Some(s));
        }
        assert_eq!(Step::decode(&[1, 2]), None);
    }
}
