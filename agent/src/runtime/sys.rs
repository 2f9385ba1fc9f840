//! The only `unsafe` code of the runtime: what a child process does between `fork` and `exec`
//! (get back the open-file limit paddock started with, enter or create namespaces, set the
//! hostname, open each bind's source — a subPath beneath its volume with
//! `openat2(RESOLVE_BENEATH)`, [`open_sub_path`] — mount, change directory, become a session
//! leader with a controlling terminal), the terminal-size ioctl for `kubectl exec -t`, and
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
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::stat::Mode;

/// The umask of every process the runtime starts (containers, exec sessions, the pod's
/// holder): the conventional 022 a container runtime sets, whatever the agent's own (set on
/// the spawning thread, `super::isolate::spawn`).
pub(crate) const CHILD_UMASK: u32 = 0o022;

/// One filesystem operation in the child's (new) mount namespace.
#[derive(Debug)]
pub(crate) enum MountOp {
    /// `mount --make-rprivate /`, so nothing done here propagates to the node.
    MakePrivate,
    /// A bind mount of `src` on `dst`, then a read-only remount when asked. Every bind's
    /// source is opened (`O_PATH`) before the first operation runs and mounted through
    /// `/proc/self/fd/<n>`, so a tmpfs put on `/tmp` first does not hide a source under `/tmp`
    /// — and the inode mounted is the one that was checked.
    Bind {
        /// Source path (the volume's root when `sub_path` is set).
        src: CString,
        /// A subPath of the volume, resolved beneath `src` ([`open_sub_path`]).
        sub_path: Option<SubPath>,
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

/// A `volumeMounts[].subPath`, prepared by the parent so the child only makes system calls.
#[derive(Debug)]
pub(crate) struct SubPath {
    /// The relative path (no `..`, not absolute: checked before).
    pub(crate) path: CString,
    /// Each directory on the way, `(a, a)`, `(a/b, b)`, …: the prefix and its last name, to
    /// create what is missing one level at a time.
    pub(crate) steps: Vec<(CString, CString)>,
}

impl SubPath {
    /// Splits `path` (relative, no `..`) into the steps [`open_sub_path`] needs.
    pub(crate) fn new(path: &str) -> Option<SubPath> {
        let names: Vec<&str> = path
            .split('/')
            .filter(|n| !n.is_empty() && *n != ".")
            .collect();
        if names.is_empty() || names.contains(&"..") {
            return None;
        }
        let mut steps = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            steps.push((
                CString::new(names[..=i].join("/")).ok()?,
                CString::new(names[i]).ok()?,
            ));
        }
        Some(SubPath {
            path: CString::new(names.join("/")).ok()?,
            steps,
        })
    }
}

/// Why [`open_sub_path`] failed: the kubelet's two errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubPathError {
    /// It resolves out of the volume (a symlink to `/` or `..`), or cannot be opened:
    /// "failed to prepare subPath".
    Open(Errno),
    /// A missing directory could not be made inside the volume: "failed to create subPath
    /// directory".
    Create(Errno),
}

/// `openat2(root, path, O_PATH, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: symlinks are followed
/// only while they stay beneath `root` — an absolute one, or `..` above `root`, fails with
/// `EXDEV` (the kubelet's `safeOpenSubPath`, without its check-then-open race).
pub(crate) fn open_beneath(root: &OwnedFd, path: &CStr, flags: OFlag) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, path, how)
}

/// Opens the subPath of the volume whose root is `root` (opened by the caller), making missing
/// directories on the way as the kubelet's `SafeMakeDir` does (each one inside the volume, with
/// the volume root's mode whatever the umask). Allocation-free: runs between fork and exec.
pub(crate) fn open_sub_path(root: &OwnedFd, sub: &SubPath) -> Result<OwnedFd, SubPathError> {
    match open_beneath(root, &sub.path, OFlag::O_PATH) {
        Err(Errno::ENOENT) => {}
        other => return other.map_err(SubPathError::Open),
    }
    let mode = nix::sys::stat::fstat(root)
        .map(|st| Mode::from_bits_truncate(st.st_mode & 0o7777))
        .map_err(SubPathError::Create)?;
    let mut parent: Option<OwnedFd> = None;
    for (prefix, name) in &sub.steps {
        let dir = match open_beneath(root, prefix, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let at = parent.as_ref().unwrap_or(root);
                nix::sys::stat::mkdirat(at, name.as_c_str(), mode).map_err(SubPathError::Create)?;
                // Opened without following anything: a symlink swapped in meanwhile fails here.
                let how = OpenHow::new()
                    .flags(
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    )
                    .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
                let fd = openat2(at, name.as_c_str(), how).map_err(SubPathError::Create)?;
                nix::sys::stat::fchmod(&fd, mode).map_err(SubPathError::Create)?;
                fd
            }
            Err(e) => return Err(SubPathError::Open(e)),
        };
        parent = Some(dir);
    }
    parent.ok_or(SubPathError::Open(Errno::ENOENT))
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
    /// Opening the subPath of bind number `n` of [`ChildSetup::ops`] ([`SubPathError::Open`]).
    SubPathOpen(usize),
    /// Making a missing directory of that subPath ([`SubPathError::Create`]).
    SubPathCreate(usize),
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
            Step::SubPathOpen(n) => (7, n),
            Step::SubPathCreate(n) => (8, n),
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
            7 => Step::SubPathOpen(n),
            8 => Step::SubPathCreate(n),
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
        if let MountOp::Bind {
            src,
            sub_path,
            src_fd,
            ..
        } = op
        {
            let flags = match sub_path {
                // The volume's own path may be a symlink (a hostPath), as the kubelet allows.
                Some(_) => OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                None => OFlag::O_PATH | OFlag::O_CLOEXEC,
            };
            let mut fd = nix::fcntl::open(src.as_c_str(), flags, Mode::empty())
                .map_err(|e| report(setup, Step::Op(i), e))?;
            if let Some(sub) = sub_path {
                fd = open_sub_path(&fd, sub).map_err(|e| match e {
                    SubPathError::Open(e) => report(setup, Step::SubPathOpen(i), e),
                    SubPathError::Create(e) => report(setup, Step::SubPathCreate(i), e),
                })?;
            }
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
    use std::path::Path;

    #[test]
    fn fd_paths_are_formatted_without_allocation() {
        let mut buf = [0u8; 40];
        assert_eq!(fd_path(7, &mut buf), c"/proc/self/fd/7");
        assert_eq!(fd_path(1234567, &mut buf), c"/proc/self/fd/1234567");
    }

    #[test]
    fn sub_paths_resolve_beneath_their_volume_only() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let dir = tempfile::tempdir().expect("tempdir");
        let vol = dir.path().join("vol");
        std::fs::create_dir(&vol).expect("vol");
        std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        std::fs::create_dir(vol.join("inside")).expect("inside");
        std::fs::write(vol.join("file"), b"x").expect("file");
        symlink("/etc", vol.join("abs")).expect("abs");
        symlink("..", vol.join("up")).expect("up");
        symlink("inside", vol.join("rel")).expect("rel");
        symlink("../vol/inside", vol.join("around")).expect("around");
        let root = nix::fcntl::open(&vol, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
            .expect("root");
        let open = |p: &str| open_sub_path(&root, &SubPath::new(p).expect("subpath"));
        for escape in ["abs", "up", "up/vol", "abs/new-dir", "around"] {
            assert_eq!(
                open(escape).err(),
                Some(SubPathError::Open(Errno::EXDEV)),
                "{escape}"
            );
        }
        assert!(!Path::new("/etc/new-dir").exists());
        assert!(open("rel").is_ok(), "a link that stays inside is followed");
        assert!(open("inside").is_ok());
        assert!(open("./file").is_ok());
        assert_eq!(
            open("file/x").err(),
            Some(SubPathError::Open(Errno::ENOTDIR))
        );
        // Missing directories are made inside, with the volume's mode whatever the umask.
        open("new/deeper").expect("made");
        for d in ["new", "new/deeper"] {
            let mode = std::fs::metadata(vol.join(d))
                .expect(d)
                .permissions()
                .mode()
                & 0o7777;
            assert_eq!(mode, 0o777, "{d}");
        }
        assert!(open("rel/made-through-link").is_ok());
        assert!(vol.join("inside/made-through-link").is_dir());
        assert!(SubPath::new("a/../b").is_none());
        assert!(SubPath::new("").is_none());
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
            Step::SubPathOpen(4),
            Step::SubPathCreate(5),
        ] {
            assert_eq!(Step::decode(&s.encode().to_ne_bytes()), Some(s));
        }
        assert_eq!(Step::decode(&[1, 2]), None);
    }
}
