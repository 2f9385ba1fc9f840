//! Namespaces: spawning a process inside a pod's namespaces, or creating the pod's namespace
//! holder (the "pause" role).
//!
//! The holder is `sleep infinity` started as PID 1 of a new PID namespace, in new network, UTS,
//! IPC and mount namespaces (network and UTS stay the node's for `hostNetwork` pods), with
//! `SIGCHLD` ignored so orphans in the pod are reaped by the kernel, a fresh `/proc`, a private
//! `/dev/shm`, memory-backed emptyDirs and the pod's `/etc/hosts`, `/etc/hostname` and
//! `/etc/resolv.conf` mounted in its mount namespace. Killing it ends every process of the pod
//! (the kernel kills a PID namespace with its init) and frees the namespaces.
//!
//! `unshare(CLONE_NEWPID)`/`setns` on a PID namespace only change where the caller's *children*
//! go, and only for the calling thread: [`spawn`] therefore forks from a short-lived thread that
//! first switched its PID namespace, so the new process is born in the pod's PID namespace
//! without an intermediate process. The other namespaces are entered in the child before
//! `exec` ([`super::sys`]); a container gets its own mount namespace copied from the pod's, with
//! a private `/tmp`, a private `/dev` as a container runtime makes it (the default devices, the
//! pod's `/dev/shm`), its volume mounts and its termination-log file (`super::termination`). A process that needs none of this (host mode: only a
//! working directory) is started with `posix_spawn`, which shares the agent's memory until
//! `exec` instead of copying its page tables as `fork` does — on a node with many pods that copy
//! was the largest cost of an exec probe. Every spawn runs on a short-lived thread with its own
//! filesystem attributes and umask 022, so containers get a container runtime's umask while the
//! agent keeps the 077 `paddock` sets for its own files.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use tokio::process::{Child, Command};

use super::sys::{ChildSetup, MountOp, Step};

/// Which PID namespace a new process is born in.
#[derive(Debug)]
pub(crate) enum PidNs {
    /// The agent's.
    Inherit,
    /// A new one (the process is its PID 1).
    New,
    /// An existing one (an open `/proc/<pid>/ns/pid`).
    Join(OwnedFd),
}

/// Opens `/proc/<pid>/ns/<name>` (close-on-exec).
pub(crate) fn open_ns(pid: u32, name: &str) -> std::io::Result<OwnedFd> {
    let path = format!("/proc/{pid}/ns/{name}");
    nix::fcntl::open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(std::io::Error::from)
}

/// The namespaces of `pid` to enter before exec: IPC, UTS, network, then mount (entering the
/// mount namespace last, since it changes the root the others' paths would resolve in — the
/// files are opened up front anyway).
pub(crate) fn join_pod(pid: u32) -> std::io::Result<Vec<(OwnedFd, CloneFlags)>> {
    Ok(vec![
        (open_ns(pid, "ipc")?, CloneFlags::CLONE_NEWIPC),
        (open_ns(pid, "uts")?, CloneFlags::CLONE_NEWUTS),
        (open_ns(pid, "net")?, CloneFlags::CLONE_NEWNET),
        (open_ns(pid, "mnt")?, CloneFlags::CLONE_NEWNS),
    ])
}

/// Why [`spawn`] failed: the OS error and, when a setup step failed, which one.
#[derive(Debug)]
pub(crate) struct SpawnError {
    pub(crate) error: std::io::Error,
    pub(crate) step: Option<Step>,
}

/// Spawns `cmd` with `setup` run in the child before exec, born in PID namespace `pid_ns`.
pub(crate) async fn spawn(
    mut cmd: Command,
    mut setup: ChildSetup,
    pid_ns: PidNs,
) -> Result<Child, SpawnError> {
    let plain = |error| SpawnError { error, step: None };
    let report_r = if matches!(pid_ns, PidNs::Inherit) && setup.only_cwd() {
        // No pre-exec code, so std uses posix_spawn (see `ChildSetup::only_cwd`).
        if let Some(cwd) = &setup.cwd {
            use std::os::unix::ffi::OsStrExt;
            cmd.current_dir(std::ffi::OsStr::from_bytes(cwd.as_bytes()));
        }
        None
    } else {
        let (report_r, report_w) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| plain(e.into()))?;
        setup.report = Some(report_w);
        super::sys::install(&mut cmd, setup);
        Some(report_r)
    };
    // Every spawn happens on a thread of its own: it gets its own filesystem attributes
    // (`unshare(CLONE_FS)`) with the container umask, which the child inherits — posix_spawn
    // has no umask attribute — while the agent's threads keep its private 077; and switching
    // PID namespace there changes only that thread's children.
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("paddock-spawn".into())
        .spawn(move || {
            let _enter = handle.enter();
            let prepared = nix::sched::unshare(CloneFlags::CLONE_FS)
                .map(|()| {
                    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
                        super::sys::CHILD_UMASK,
                    ));
                })
                .map_err(|e| std::io::Error::other(format!("unshare filesystem attributes: {e}")));
            let switched = prepared.and_then(|()| {
                match &pid_ns {
                    PidNs::New => nix::sched::unshare(CloneFlags::CLONE_NEWPID),
                    PidNs::Join(fd) => nix::sched::setns(fd, CloneFlags::CLONE_NEWPID),
                    PidNs::Inherit => Ok(()),
                }
                .map_err(|e| {
                    std::io::Error::other(format!(
                        "enter PID namespace: {}",
                        std::io::Error::from(e)
                    ))
                })
            });
            let res = switched.and_then(|()| cmd.spawn());
            // Dropping the command closes our copy of the report pipe's write end.
            drop(cmd);
            // The thread ends here; its changed namespaces and umask go with it.
            let _ = tx.send(res);
        });
    let result = match thread {
        Ok(_) => rx
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("spawn thread died"))),
        Err(e) => Err(e),
    };
    // The parent's copy of the write end was in the command's closure, dropped by now, and
    // the child's copy closed at exec (or exit), so this read sees EOF.
    let step = report_r.and_then(read_report);
    result.map_err(|error| SpawnError { error, step })
}

fn read_report(fd: OwnedFd) -> Option<Step> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    let file = std::fs::File::from(fd);
    use std::io::Read;
    let mut file = file;
    while got < 4 {
        match file.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    if got == 4 { Step::decode(&buf) } else { None }
}

/// The holder's setup: new namespaces, hostname, `/proc`, `/dev/shm`, memory emptyDirs and
/// the pod's `/etc` files.
pub(crate) fn holder_setup(
    host_network: bool,
    hostname: &str,
    memory_dirs: &[&Path],
    etc_files: &[(std::path::PathBuf, std::path::PathBuf)],
) -> Result<ChildSetup, super::RuntimeError> {
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC;
    let mut name = None;
    if !host_network {
        flags |= CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS;
        name =
            Some(CString::new(hostname).map_err(|_| {
                super::RuntimeError::Sandbox(format!("invalid hostname {hostname:?}"))
            })?);
    }
    let mut ops = vec![
        MountOp::MakePrivate,
        MountOp::Proc {
            dst: CString::from(c"/proc"),
        },
    ];
    if Path::new("/dev/shm").is_dir() {
        ops.push(MountOp::Tmpfs {
            dst: CString::from(c"/dev/shm"),
            opts: CString::from(c"mode=1777"),
        });
    }
    for dir in memory_dirs {
        ops.push(MountOp::Tmpfs {
            dst: super::volumes::cstr(dir)?,
            opts: CString::from(c"mode=0777"),
        });
    }
    for (src, dst) in etc_files {
        // A node without the file (no /etc/hostname, say) has no mount point for it.
        if std::fs::metadata(dst).is_ok_and(|m| m.is_file()) {
            ops.push(MountOp::Bind {
                src: super::volumes::cstr(src)?,
                sub_path: None,
                src_fd: std::sync::atomic::AtomicI32::new(-1),
                dst: super::volumes::cstr(dst)?,
                read_only: false,
            });
        }
    }
    Ok(ChildSetup {
        unshare: Some(flags),
        hostname: name,
        ops,
        ignore_sigchld: true,
        cwd: Some(CString::from(c"/")),
        ..ChildSetup::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(s: &ChildSetup) -> CloneFlags {
        s.unshare.unwrap_or(CloneFlags::empty())
    }

    #[test]
    fn holder_plan_for_own_and_host_network_pods() {
        let etc = vec![(
            std::path::PathBuf::from("/var/lib/x/etc/hosts"),
            std::path::PathBuf::from("/etc/hosts"),
        )];
        let own = holder_setup(false, "web-0", &[Path::new("/v/mem")], &etc).expect("plan");
        assert!(flags(&own).contains(
            CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWUTS
        ));
        assert_eq!(own.hostname.as_deref(), Some(c"web-0"));
        assert!(own.ignore_sigchld, "PID 1 must not collect zombies");
        assert!(
            matches!(own.ops.first(), Some(MountOp::MakePrivate)),
            "private before any mount"
        );
        assert!(own.ops.iter().any(|o| matches!(o, MountOp::Proc { .. })));
        assert!(
            own.ops
                .iter()
                .any(|o| matches!(o, MountOp::Tmpfs { dst, .. } if dst.as_c_str() == c"/v/mem"))
        );
        let host = holder_setup(true, "ignored", &[], &etc).expect("plan");
        assert!(!flags(&host).intersects(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS));
        assert!(flags(&host).contains(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC));
        assert_eq!(host.hostname, None);
        assert!(holder_setup(false, "bad\0name", &[], &[]).is_err());
    }
}
