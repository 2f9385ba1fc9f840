//! One node per network namespace. A node owns its namespace's network: the pod bridge and the
//! pod CIDR behind it (every node hands out the same addresses from it), the service
//! addresses, the NodePorts. A second node there would give its pods the first one's pod IPs
//! and delete the bridge under them when it stops, so [`NetnsLock::acquire`] refuses to start
//! it and names the node that holds the namespace.
//!
//! The lock is an `flock` on `/run/paddock/net-<dev>-<inode>.lock`, named after the namespace
//! (the device and inode of `/proc/self/ns/net`), not after the data dir: two data dirs in one
//! namespace must collide, nodes in different namespaces of one host (as test labs run them)
//! never do. It is held for the process's life and the kernel drops it when the process dies,
//! so a crash leaves no stale lock; the file says who holds it (pid, node name, state dir) and
//! is removed on release. A file still naming someone at start was left by a killed node: if
//! that one ran on another state dir, the pods it left may still be on the bridge with
//! addresses this node's allocator does not know, which is logged as a warning.
//!
//! Only a node with pod namespaces (root, without `--host-network-only`) takes it: any other
//! node has no bridge, pod addresses or service addresses (its pods share the host's
//! network). Such a node competes only for ports: a NodePort another node holds fails to
//! bind, and its listener is retried (logged) while the other one has it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};

/// Where the lock files live: shared by every data dir of the host, on a tmpfs.
pub(crate) const LOCK_DIR: &str = "/run/paddock";

/// Who holds a namespace (the lock file's content).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Holder {
    pid: u32,
    node: String,
    state: PathBuf,
}

/// This process's claim on its network namespace; released on drop.
#[derive(Debug)]
pub(crate) struct NetnsLock {
    lock: Option<Flock<File>>,
    path: PathBuf,
    /// The last holder, when it ended without releasing the lock (killed) and ran on another
    /// state dir: the pods it left may still be plugged into the bridge with addresses this
    /// node's own allocator knows nothing of.
    crashed: Option<Holder>,
}

impl NetnsLock {
    /// Claims the calling process's network namespace for node `node` (state under `state`),
    /// or says which node holds it.
    pub(crate) async fn acquire(node: &str, state: &Path) -> anyhow::Result<NetnsLock> {
        let holder = Holder {
            pid: std::process::id(),
            node: node.to_string(),
            state: state.to_path_buf(),
        };
        let lock =
            tokio::task::spawn_blocking(move || Self::acquire_in(Path::new(LOCK_DIR), &holder))
                .await
                .context("network namespace lock")??;
        if let Some(h) = &lock.crashed {
            tracing::warn!(pid = h.pid, node = %h.node, state = %h.state.display(),
                "the last node in this network namespace did not stop cleanly and ran on \
                 another state dir: pods it left may still use addresses of the pod CIDR; \
                 start it again on its data dir to adopt or stop them");
        }
        Ok(lock)
    }

    fn acquire_in(dir: &Path, me: &Holder) -> anyhow::Result<NetnsLock> {
        private_dir(dir)?;
        let ns = std::fs::metadata("/proc/self/ns/net")
            .context("cannot identify this network namespace (/proc/self/ns/net)")?;
        let path = dir.join(format!("net-{}-{}.lock", ns.dev(), ns.ino()));
        // A releasing holder unlinks the file while locked: a lock won on a file that is no
        // longer the one at `path` is worthless, so take it again on the new file.
        for _ in 0..10 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(refusal(&path, read_holder(file)));
                }
                Err((_, e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            };
            let current = std::fs::symlink_metadata(&path).ok();
            let ours = lock.metadata().context("stat the lock file")?;
            if current.is_none_or(|m| m.ino() != ours.ino() || m.dev() != ours.dev()) {
                continue;
            }
            // A file still naming someone: its holder was killed (a release removes it).
            let mut previous = Vec::new();
            let _ = (&*lock).take(64 * 1024).read_to_end(&mut previous);
            let crashed = serde_json::from_slice::<Holder>(&previous)
                .ok()
                .filter(|h| h.state != me.state);
            std::io::Seek::rewind(&mut *lock).context("rewind the lock file")?;
            lock.set_len(0).context("truncate the lock file")?;
            lock.write_all(&serde_json::to_vec(me).context("encode the lock holder")?)
                .and_then(|()| lock.flush())
                .with_context(|| format!("cannot write {}", path.display()))?;
            return Ok(NetnsLock {
                lock: Some(lock),
                path,
                crashed,
            });
        }
        anyhow::bail!(
            "cannot take the network namespace lock {}: it keeps being replaced",
            path.display()
        )
    }
}

impl Drop for NetnsLock {
    fn drop(&mut self) {
        // Removed while still locked, so no one can have won a lock on it in between.
        if let Some(lock) = self.lock.take() {
            let same = match (std::fs::symlink_metadata(&self.path), lock.metadata()) {
                (Ok(at_path), Ok(ours)) => {
                    at_path.ino() == ours.ino() && at_path.dev() == ours.dev()
                }
                _ => false,
            };
            if same {
                let _ = std::fs::remove_file(&self.path);
            }
            drop(lock);
        }
    }
}

/// Creates `dir` (mode 0700) or checks that it is a real directory of this user: a lock there
/// must not be redirected through a symlink or a directory someone else controls.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("cannot stat {}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        anyhow::bail!(
            "refusing to keep locks in {}: not a directory owned by this user and writable only by it",
            dir.display()
        );
    }
    Ok(())
}

/// The holder the lock file names. It writes the file right after locking it: an empty file
/// is read again for a moment.
fn read_holder(file: File) -> Option<Holder> {
    for _ in 0..20 {
        let mut text = Vec::new();
        let read = (&file).take(64 * 1024).read_to_end(&mut text);
        if read.is_ok() && !text.is_empty() {
            return serde_json::from_slice(&text).ok();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        if std::io::Seek::rewind(&mut &file).is_err() {
            return None;
        }
    }
    None
}

fn refusal(path: &Path, holder: Option<Holder>) -> anyhow::Error {
    let who = match holder {
        Some(h) => format!(
            "node {:?} (pid {}, state in {})",
            h.node,
            h.pid,
            h.state.display()
        ),
        None => "another paddock node".to_string(),
    };
    anyhow::anyhow!(
        "{who} already runs in this network namespace and owns its pod bridge, pod addresses \
         and service addresses (lock {}); stop it first, or run this node in another network \
         namespace",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(node: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            node: node.into(),
            state: PathBuf::from(format!("/data/{node}/node")),
        }
    }

    #[test]
    fn a_second_claim_names_the_holder_and_a_released_lock_is_free_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let locks = dir.path().join("locks");
        let first = NetnsLock::acquire_in(&locks, &holder("a")).expect("first");
        let mode = std::fs::metadata(&locks).expect("dir").mode() & 0o777;
        assert_eq!(mode, 0o700);
        let file_mode = std::fs::metadata(&first.path).expect("file").mode() & 0o777;
        assert_eq!(file_mode, 0o600);
        // flock conflicts between open files of one process as between processes.
        let err = NetnsLock::acquire_in(&locks, &holder("b"))
            .expect_err("second claim in the same namespace")
            .to_string();
        let want = format!(
            "node \"a\" (pid {}, state in /data/a/node) already runs in this network namespace",
            std::process::id()
        );
        assert!(err.contains(&want), "{err}");
        assert!(err.contains(&first.path.display().to_string()), "{err}");
        let path = first.path.clone();
        drop(first);
        assert!(!path.exists(), "the lock file goes with its holder");
        let again = NetnsLock::acquire_in(&locks, &holder("b")).expect("free again");
        assert_eq!(again.path, path);
        assert_eq!(
            again.crashed, None,
            "a clean release leaves nothing to warn about"
        );
    }

    #[test]
    fn a_lock_file_left_by_a_killed_node_on_another_state_dir_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = NetnsLock::acquire_in(dir.path(), &holder("a")).expect("first");
        let path = first.path.clone();
        // Killed: the kernel drops the lock, the file stays.
        let mut killed = first;
        drop(killed.lock.take());
        drop(killed);
        assert!(path.exists());
        let same = NetnsLock::acquire_in(dir.path(), &holder("a")).expect("restart");
        assert_eq!(same.crashed, None, "its own state dir adopts what it left");
        let mut killed = same;
        drop(killed.lock.take());
        drop(killed);
        let other = NetnsLock::acquire_in(dir.path(), &holder("b")).expect("other");
        assert_eq!(other.crashed, Some(holder("a")));
        let text = std::fs::read_to_string(&path).expect("lock file");
        assert_eq!(
            serde_json::from_str::<Holder>(&text).expect("one holder"),
            holder("b")
        );
    }

    #[test]
    fn a_lock_dir_that_is_a_symlink_or_open_to_others_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("elsewhere");
        std::fs::create_dir(&target).expect("target");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = NetnsLock::acquire_in(&link, &holder("a")).expect_err("symlink");
        assert!(err.to_string().contains("refusing to keep locks"), "{err}");
        assert_eq!(std::fs::read_dir(&target).expect("dir").count(), 0);

        let open = dir.path().join("open");
        std::fs::create_dir(&open).expect("open");
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .expect("chmod");
        assert!(NetnsLock::acquire_in(&open, &holder("a")).is_err());
    }
}
