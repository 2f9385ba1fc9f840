//! Layer unpacking: a layer blob (tar, gzip or zstd, told apart by magic number as containerd's
//! `DecompressStream` does) into a directory that overlayfs can use as a lower dir, following
//! containerd's `archive.Apply` with `OverlayConvertWhiteout` (the overlay snapshotter's path):
//!
//! - every name is cleaned, and its parent resolved *inside* the layer directory
//!   ([`root_path`], containerd's `fs.RootPath`): `..` stops at the root, absolute names and
//!   symlinks (absolute or relative) are followed as if the layer directory were `/`, so no entry
//!   is created outside it; a hard link's target is resolved the same way;
//! - `.wh.<name>` becomes a character device 0:0 named `<name>` (owned as the whiteout was),
//!   `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory; a whiteout whose target
//!   would leave its directory is refused ("invalid whiteout name");
//! - ownership, modes (setuid/setgid/sticky included), times, xattrs (PAX `SCHILY.xattr.`),
//!   hard links, symlinks, devices and FIFOs are kept; an existing entry is replaced unless both
//!   are directories (then only the metadata is applied); directory times are set last.
//!
//! Memory is bounded: the stream is read through fixed buffers, file by file. The uncompressed
//! stream is hashed on the way, and its digest (the diff-id) returned for the caller to verify.
//! Needs root (devices, `trusted.` xattrs, chown), as containerd does.

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;

use crate::digest::{Algorithm, Digest, HashingReader};
use crate::error::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
const MAX_LINKS: usize = 255;

/// Unpacks the layer blob at `blob` into the (empty) directory `dest`; returns the diff-id.
/// Blocking. `layer` names the layer in errors.
pub fn unpack_layer(blob: &Path, dest: &Path, layer: &str) -> Result<Digest> {
    let file = fs::File::open(blob).map_err(|e| Error::io("open", blob, e))?;
    unpack_stream(BufReader::with_capacity(256 << 10, file), dest, layer)
}

/// Like [`unpack_layer`], from any buffered reader of the (possibly compressed) blob.
pub fn unpack_stream<R: BufRead>(mut input: R, dest: &Path, layer: &str) -> Result<Digest> {
    let err = |detail: String| Error::Unpack {
        layer: layer.to_string(),
        detail,
    };
    let magic = input
        .fill_buf()
        .map_err(|e| err(format!("reading: {e}")))?
        .get(..4)
        .map(|m| m.to_vec())
        .unwrap_or_default();
    let decompressed: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(
            ruzstd::decoding::StreamingDecoder::new(input)
                .map_err(|e| err(format!("zstd: {e}")))?,
        )
    } else {
        Box::new(input)
    };
    let mut hashing = HashingReader::new(decompressed, Algorithm::Sha256);
    let root = dest
        .canonicalize()
        .map_err(|e| Error::io("resolve", dest, e))?;
    {
        let mut archive = tar::Archive::new(&mut hashing);
        apply(&mut archive, &root).map_err(err)?;
    }
    // The diff-id covers the whole stream, trailing blocks included.
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| err(format!("reading: {e}")))?;
    Ok(hashing.finish().0)
}

fn apply<R: Read>(archive: &mut tar::Archive<R>, root: &Path) -> std::result::Result<(), String> {
    let mut dirs: Vec<(PathBuf, TimeSpec, TimeSpec)> = Vec::new();
    let entries = archive.entries().map_err(|e| format!("reading tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("reading tar: {e}"))?;
        // PAX global headers (git archive writes one) describe the archive, not a file:
        // containerd ignores them.
        if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let ctx = |e: String| format!("{name}: {e}");
        let cleaned = go_clean(&raw);
        let (ppath, base) = split(&cleaned);
        let ppath = root_path(root, &ppath).map_err(|e| ctx(e.to_string()))?;
        let path = join_base(&ppath, &base);
        if path == root {
            continue;
        }
        if ppath != root {
            mkparent(
                root,
                if base.as_os_str().is_empty() {
                    path.parent().unwrap_or(root)
                } else {
                    &ppath
                },
            )
            .map_err(|e| ctx(format!("creating parent directories: {e}")))?;
        }
        let header = entry.header().clone();
        let uid = header.uid().map_err(|e| ctx(e.to_string()))? as u32;
        let gid = header.gid().map_err(|e| ctx(e.to_string()))? as u32;
        // Whiteouts (validateWhiteout + OverlayConvertWhiteout).
        let base_s = base.as_os_str().as_bytes();
        if base_s == WHITEOUT_OPAQUE.as_bytes() {
            let dir = path.parent().unwrap_or(root);
            xattr::set(dir, "trusted.overlay.opaque", b"y")
                .map_err(|e| ctx(format!("setting trusted.overlay.opaque: {e}")))?;
            continue;
        }
        if let Some(orig) = base_s.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if orig.is_empty() || orig == b"." || orig == b".." {
                return Err(ctx(format!("invalid whiteout name: {}", base.display())));
            }
            let dir = path.parent().unwrap_or(root);
            let target = dir.join(OsStr::from_bytes(orig));
            remove_existing(&target, false).map_err(|e| ctx(e.to_string()))?;
            nix::sys::stat::mknod(&target, SFlag::S_IFCHR, Mode::empty(), 0)
                .map_err(|e| ctx(format!("creating the whiteout device: {e}")))?;
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                .map_err(|e| ctx(format!("chown: {e}")))?;
            continue;
        }
        let kind = header.entry_type();
        remove_existing(&path, kind.is_dir()).map_err(|e| ctx(e.to_string()))?;
        let mode = header.mode().map_err(|e| ctx(e.to_string()))? & 0o7777;
        match kind {
            tar::EntryType::Directory => {
                if !path.is_dir() {
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&path)
                        .map_err(|e| ctx(format!("mkdir: {e}")))?;
                }
            }
            // A GNU sparse file reads back expanded, as Go's tar reader gives it to containerd.
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| ctx(format!("create: {e}")))?;
                std::io::copy(&mut entry, &mut f).map_err(|e| ctx(format!("write: {e}")))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| ctx("symlink without a target".into()))?
                    .into_owned();
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(|e| ctx(format!("symlink: {e}")))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| ctx("hard link without a target".into()))?
                    .into_owned();
                let target = hardlink_root_path(root, &target).map_err(|e| ctx(e.to_string()))?;
                fs::hard_link(&target, &path)
                    .map_err(|e| ctx(format!("link to {}: {e}", target.display())))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind_flag = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0) as u64;
                let minor = header.device_minor().ok().flatten().unwrap_or(0) as u64;
                nix::sys::stat::mknod(
                    &path,
                    kind_flag,
                    Mode::from_bits_truncate(mode),
                    nix::sys::stat::makedev(major, minor),
                )
                .map_err(|e| ctx(format!("mknod: {e}")))?;
            }
            other => {
                return Err(ctx(format!(
                    "unhandled tar header type {}",
                    other.as_byte()
                )));
            }
        }
        // xattrs from PAX records, as containerd's setxattrs.
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                let Ok(key) = ext.key() else { continue };
                let Some(attr) = key.strip_prefix("SCHILY.xattr.") else {
                    continue;
                };
                if let Err(e) = xattr::set(&path, attr, ext.value_bytes()) {
                    if e.raw_os_error() == Some(nix::libc::EOPNOTSUPP) {
                        tracing::warn!(entry = %name, attr, "xattr not supported here; ignored");
                        continue;
                    }
                    return Err(ctx(format!("setxattr {attr}: {e}")));
                }
            }
        }
        // A hard link shares its target's inode, which already has its owner and mode. Unlike
        // containerd, whose Lchown of the link clears a setuid/setgid bit the target was given
        // (and whose handleLChmod looks the target up relative to its working directory, so
        // rarely restores it), the inode is left alone: a setuid binary with a second name
        // stays setuid.
        if kind != tar::EntryType::Link {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                .map_err(|e| ctx(format!("chown: {e}")))?;
        }
        // No mode for symlinks (Linux has no lchmod).
        if kind != tar::EntryType::Symlink && kind != tar::EntryType::Link {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|e| ctx(format!("chmod: {e}")))?;
        }
        let mtime = TimeSpec::new(header.mtime().unwrap_or(0) as i64, 0);
        if kind.is_dir() {
            dirs.push((path, mtime, mtime));
        } else {
            set_times(&path, mtime, mtime).map_err(|e| ctx(format!("setting times: {e}")))?;
        }
    }
    for (p, a, m) in dirs {
        set_times(&p, a, m).map_err(|e| format!("{}: setting times: {e}", p.display()))?;
    }
    Ok(())
}

fn set_times(p: &Path, atime: TimeSpec, mtime: TimeSpec) -> nix::Result<()> {
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &atime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
}

fn remove_existing(path: &Path, new_is_dir: bool) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && new_is_dir => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the missing directories from `root` down to `dir` (which is already resolved inside
/// `root`), mode 0755 as containerd's `mkparent`.
fn mkparent(root: &Path, dir: &Path) -> std::io::Result<()> {
    let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is not a directory",
                    cur.display()
                )));
            }
            Err(_) => fs::DirBuilder::new().mode(0o755).create(&cur)?,
        }
    }
    Ok(())
}

/// Go's `filepath.Clean` on a tar name, made relative (a leading `/` means the layer root).
fn go_clean(raw: &[u8]) -> PathBuf {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut leading_dotdots = 0usize;
    let absolute = raw.starts_with(b"/");
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() && !absolute {
                    leading_dotdots += 1;
                }
            }
            p => out.push(p),
        }
    }
    let mut p = PathBuf::new();
    for _ in 0..leading_dotdots {
        p.push("..");
    }
    for part in out {
        p.push(OsStr::from_bytes(part));
    }
    p
}

/// `filepath.Split` of a cleaned relative name: (directory part, last element).
fn split(p: &Path) -> (PathBuf, PathBuf) {
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(base)) => (parent.to_path_buf(), PathBuf::from(base)),
        // ".." or empty: no base element that names an entry.
        _ => (p.to_path_buf(), PathBuf::new()),
    }
}

/// `filepath.Join(ppath, filepath.Join("/", base))`: `..` as a base cannot climb.
fn join_base(ppath: &Path, base: &Path) -> PathBuf {
    if base.as_os_str().is_empty() || base == Path::new("..") || base == Path::new(".") {
        ppath.to_path_buf()
    } else {
        ppath.join(base)
    }
}

/// containerd's `fs.RootPath`: `rel` resolved under `root` as if `root` were `/` — `..` stops
/// at the root, symlinks are followed but re-rooted (absolute targets start again at `root`),
/// at most 255 of them.
pub fn root_path(root: &Path, rel: &Path) -> std::io::Result<PathBuf> {
    let mut pending: Vec<PathBuf> = rel
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    let mut cur = root.to_path_buf();
    let mut links = 0usize;
    while let Some(c) = pending.pop() {
        if c == Path::new("..") {
            if cur != root {
                cur.pop();
            }
            continue;
        }
        let next = cur.join(&c);
        match fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(std::io::Error::other("too many links"));
                }
                let target = fs::read_link(&next)?;
                if target.is_absolute() {
                    cur = root.to_path_buf();
                }
                for tc in target.components().rev() {
                    match tc {
                        Component::Normal(n) => pending.push(PathBuf::from(n)),
                        Component::ParentDir => pending.push(PathBuf::from("..")),
                        _ => {}
                    }
                }
            }
            _ => cur = next,
        }
    }
    Ok(cur)
}

/// containerd's `hardlinkRootPath`: the link target's directory resolved inside the root;
/// a target that still points outside becomes the root itself (and linking to it then fails).
fn hardlink_root_path(root: &Path, linkname: &[u8]) -> std::io::Result<PathBuf> {
    let cleaned = go_clean(linkname);
    let (ppath, base) = split(&cleaned);
    let ppath = root_path(root, &ppath)?;
    let target = join_base(&ppath, &base);
    if !target.starts_with(root) {
        return Ok(root.to_path_buf());
    }
    Ok(target)
}

#[cfg(test)]
mod tests;
