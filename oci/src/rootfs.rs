//! A container's root filesystem: an overlay of the image's layer directories (read-only,
//! already in overlay whiteout format) with a per-container writable layer, mounted at
//! `<bundle>/rootfs`; the writable layer is `<bundle>/fs/upper` and `<bundle>/fs/work`, so
//! removing the bundle removes it.
//!
//! The mount is in the node's mount namespace (the runtime copies it into the container's), so
//! a driver that dies leaves it mounted: [`leaked`] lists the bundles of a directory that are
//! still mounted, and [`remove`] unmounts and deletes one. All of this blocks (mount, file
//! system walks): call from a blocking thread.
//!
//! The kernel reads mount options from one page: with many layers the `lowerdir=` list may not
//! fit. Then, as containerd's `compactLowerdirOption` does, the mount runs on a thread of its
//! own whose working directory is the layers' common parent, with relative layer paths; if even
//! that does not fit, the error says so.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::Error;

/// The mount option budget (one page, the terminating NUL included).
const PAGE: usize = 4096;

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

/// The rootfs mount point of a bundle.
pub fn rootfs(bundle: &Path) -> PathBuf {
    bundle.join("rootfs")
}

fn check_layer(p: &Path) -> Result<(), Error> {
    let s = p.as_os_str().as_bytes();
    if !p.is_absolute() || s.contains(&b',') || s.contains(&b':') || s.contains(&b'=') {
        return Err(Error::Rootfs(format!(
            "layer directory {} must be an absolute path without ',', ':' or '='",
            p.display()
        )));
    }
    if !p.is_dir() {
        return Err(Error::Rootfs(format!(
            "layer directory {} does not exist",
            p.display()
        )));
    }
    Ok(())
}

/// The overlay's option string, lowerdirs given base layer first (OCI order) and listed
/// top-most first as overlayfs wants them; `relative_to` shortens every lowerdir under it.
fn options(layers: &[PathBuf], upper: &Path, work: &Path, relative_to: Option<&Path>) -> String {
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| match relative_to.and_then(|r| l.strip_prefix(r).ok()) {
            Some(rel) => rel.to_string_lossy().into_owned(),
            None => l.to_string_lossy().into_owned(),
        })
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    )
}

/// The deepest directory that contains every layer.
fn common_parent(layers: &[PathBuf]) -> Option<PathBuf> {
    let mut common = layers.first()?.parent()?.to_path_buf();
    for l in layers {
        while !l.starts_with(&common) {
            common = common.parent()?.to_path_buf();
        }
    }
    Some(common)
}

/// Mounts the overlay of `layers` (base first) at `<bundle>/rootfs`, creating the bundle's
/// directories (0700; the rootfs itself 0755 as an image root is).
pub fn mount(bundle: &Path, layers: &[PathBuf]) -> Result<PathBuf, Error> {
    if layers.is_empty() {
        return Err(Error::Rootfs("an image needs at least one layer".into()));
    }
    for l in layers {
        check_layer(l)?;
    }
    let upper = bundle.join("fs").join("upper");
    let work = bundle.join("fs").join("work");
    let root = rootfs(bundle);
    for d in [&upper, &work, &root] {
        std::fs::create_dir_all(d).map_err(io_err(format!("create {}", d.display())))?;
    }
    use std::os::unix::fs::PermissionsExt;
    for (d, mode) in [
        (bundle, 0o700),
        (&bundle.join("fs"), 0o700),
        (&upper, 0o755),
        (&root, 0o755),
    ] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode))
            .map_err(io_err(format!("chmod {}", d.display())))?;
    }
    let full = options(layers, &upper, &work, None);
    if full.len() < PAGE {
        return do_mount(&root, &full);
    }
    let Some(common) = common_parent(layers) else {
        return Err(Error::Rootfs(
            "layer directories have no common parent".into(),
        ));
    };
    let short = options(layers, &upper, &work, Some(&common));
    if short.len() >= PAGE {
        return Err(Error::Rootfs(format!(
            "{} layers: the overlay's options take {} bytes even with paths relative to {}, more than the kernel's {PAGE}",
            layers.len(),
            short.len(),
            common.display()
        )));
    }
    // The working directory is per process unless the thread unshares its filesystem
    // attributes: a thread of its own does, so the driver's threads keep theirs.
    let root2 = root.clone();
    std::thread::Builder::new()
        .name("oci-mount".into())
        .spawn(move || -> Result<PathBuf, Error> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)
                .map_err(|e| io_err("unshare filesystem attributes".into())(e.into()))?;
            std::env::set_current_dir(&common)
                .map_err(io_err(format!("chdir {}", common.display())))?;
            do_mount(&root2, &short)
        })
        .map_err(io_err("spawn mount thread".into()))?
        .join()
        .map_err(|_| Error::Rootfs("mount thread panicked".into()))?
}

fn do_mount(root: &Path, opts: &str) -> Result<PathBuf, Error> {
    nix::mount::mount(
        Some("overlay"),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts),
    )
    .map_err(|e| {
        Error::Rootfs(format!(
            "mount overlay at {}: {}",
            root.display(),
            std::io::Error::from(e)
        ))
    })?;
    Ok(root.to_path_buf())
}

/// Whether `path` is a mount point (listed in `/proc/self/mountinfo`).
pub fn is_mounted(path: &Path) -> bool {
    mount_points().iter().any(|m| m == path)
}

/// The mount points of this mount namespace (octal escapes decoded).
fn mount_points() -> Vec<PathBuf> {
    let Ok(s) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    s.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(p))))
        .collect()
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Unmounts the bundle's rootfs (if mounted; lazily when busy) and deletes the bundle with its
/// writable layer. Idempotent.
pub fn remove(bundle: &Path) -> Result<(), Error> {
    let root = rootfs(bundle);
    // Anything mounted under the rootfs first (deepest first), then the rootfs.
    let mut under: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(&root))
        .collect();
    under.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for m in under {
        if let Err(e) = nix::mount::umount2(&m, MntFlags::UMOUNT_NOFOLLOW) {
            if e == nix::errno::Errno::EBUSY {
                nix::mount::umount2(&m, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
                    .map_err(|e| io_err(format!("unmount {}", m.display()))(e.into()))?;
            } else if e != nix::errno::Errno::EINVAL && e != nix::errno::Errno::ENOENT {
                return Err(io_err(format!("unmount {}", m.display()))(e.into()));
            }
        }
    }
    if is_mounted(&root) {
        return Err(Error::Rootfs(format!(
            "{} is still mounted",
            root.display()
        )));
    }
    match std::fs::remove_dir_all(bundle) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("remove {}", bundle.display()))(e)),
    }
}

/// The bundles under `dir` (its subdirectories), mounted or not.
pub fn bundles(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// The bundles under `dir` whose rootfs is still mounted.
pub fn leaked(dir: &Path) -> Vec<PathBuf> {
    let mounts = mount_points();
    bundles(dir)
        .into_iter()
        .filter(|b| mounts.contains(&rootfs(b)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdirs_top_most_first_and_relative_when_asked() {
        let layers = vec![
            PathBuf::from("/s/layers/a/diff"),
            PathBuf::from("/s/layers/b/diff"),
        ];
        let o = options(
            &layers,
            Path::new("/b/fs/upper"),
            Path::new("/b/fs/work"),
            None,
        );
        assert_eq!(
            o,
            "lowerdir=/s/layers/b/diff:/s/layers/a/diff,upperdir=/b/fs/upper,workdir=/b/fs/work"
        );
        let common = common_parent(&layers).unwrap();
        assert_eq!(common, PathBuf::from("/s/layers"));
        let o = options(&layers, Path::new("/u"), Path::new("/w"), Some(&common));
        assert_eq!(o, "lowerdir=b/diff:a/diff,upperdir=/u,workdir=/w");
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/a\\040b"), b"/a b".to_vec());
        assert_eq!(unescape("/plain"), b"/plain".to_vec());
    }
}
