//! Unpacking archives written by GNU tar (a real producer) and hand-made hostile ones.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

use super::*;
use crate::digest::Digest;

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .expect("run tool (Debian packages tar, zstd, gzip)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn compress(tool: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(tool)
        .args(["-c", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} not found ({e}): install the Debian package {tool}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("join").expect("write");
    assert!(out.status.success());
    out.stdout
}

/// A tree with everything a layer can hold, archived by GNU tar with xattrs.
fn gnu_tar_layer() -> (tempfile::TempDir, Vec<u8>) {
    let src = tempfile::tempdir().expect("tempdir");
    let p = src.path();
    fs::create_dir(p.join("dir")).expect("mkdir");
    fs::write(p.join("dir/suid"), b"#!/bin/sh\n").expect("write");
    std::os::unix::fs::lchown(p.join("dir/suid"), Some(1234), Some(5678)).expect("chown");
    fs::set_permissions(p.join("dir/suid"), fs::Permissions::from_mode(0o4755)).expect("chmod");
    xattr::set(p.join("dir/suid"), "user.paddock", b"kept")
        .expect("user xattrs on the temp dir's file system");
    fs::hard_link(p.join("dir/suid"), p.join("dir/hard")).expect("link");
    std::os::unix::fs::symlink("../dir/suid", p.join("dir/sym")).expect("symlink");
    nix::unistd::mkfifo(&p.join("fifo"), Mode::from_bits_truncate(0o640)).expect("mkfifo");
    nix::sys::stat::mknod(
        &p.join("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .expect("mknod (needs root)");
    fs::create_dir(p.join("private")).expect("mkdir");
    fs::set_permissions(p.join("private"), fs::Permissions::from_mode(0o700)).expect("chmod");
    let tar = run(Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=user.*",
            "--numeric-owner",
            "-C",
        ])
        .arg(p)
        .args(["-cf", "-", "."]));
    (src, tar)
}

fn check_tree(dst: &Path) {
    let suid = fs::symlink_metadata(dst.join("dir/suid")).expect("suid");
    assert_eq!(
        suid.permissions().mode() & 0o7777,
        0o4755,
        "setuid kept (chmod after chown)"
    );
    assert_eq!((suid.uid(), suid.gid()), (1234, 5678));
    assert_eq!(
        xattr::get(dst.join("dir/suid"), "user.paddock").expect("getxattr"),
        Some(b"kept".to_vec())
    );
    assert_eq!(
        fs::metadata(dst.join("dir/hard")).expect("hard").ino(),
        suid.ino()
    );
    assert_eq!(
        fs::read_link(dst.join("dir/sym")).expect("sym"),
        Path::new("../dir/suid")
    );
    assert!(
        fs::symlink_metadata(dst.join("fifo"))
            .expect("fifo")
            .file_type()
            .is_fifo()
    );
    let null = fs::symlink_metadata(dst.join("null")).expect("null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(
        fs::metadata(dst.join("private"))
            .expect("private")
            .permissions()
            .mode()
            & 0o7777,
        0o700
    );
}

#[test]
fn gnu_tar_plain_gzip_and_zstd_layers_unpack_alike() {
    let (_src, tar) = gnu_tar_layer();
    let diff_id = Digest::sha256_of(&tar);
    for (name, blob) in [
        ("tar", tar.clone()),
        ("gzip", compress("gzip", &tar)),
        ("zstd", compress("zstd", &tar)),
    ] {
        let dst = tempfile::tempdir().expect("tempdir");
        let got = unpack_stream(std::io::Cursor::new(blob), dst.path(), name).expect(name);
        assert_eq!(
            got, diff_id,
            "{name}: the diff-id is the uncompressed tar's digest"
        );
        check_tree(dst.path());
    }
}

fn hand_tar(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        let mut h = tar::Header::new_old();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let f = &mut h.as_old_mut().name;
        f[..name.len()].copy_from_slice(name);
        let l = &mut h.as_old_mut().linkname;
        l[..link.len()].copy_from_slice(link);
        h.set_cksum();
        b.append(&h, std::io::empty()).expect("append");
    }
    b.into_inner().expect("tar")
}

#[test]
fn whiteout_naming_its_directory_or_parent_is_refused() {
    for name in [&b"a/.wh.."[..], b"a/.wh...", b"a/.wh."] {
        let dst = tempfile::tempdir().expect("tempdir");
        let t = hand_tar(&[(name, tar::EntryType::Regular, b"")]);
        let err = unpack_stream(std::io::Cursor::new(t), dst.path(), "l").unwrap_err();
        assert!(err.to_string().contains("invalid whiteout name"), "{err}");
    }
}

#[test]
fn symlink_loops_are_an_error_not_a_hang() {
    let dst = tempfile::tempdir().expect("tempdir");
    let t = hand_tar(&[
        (b"a", tar::EntryType::Symlink, b"b"),
        (b"b", tar::EntryType::Symlink, b"a"),
        (b"a/x", tar::EntryType::Regular, b""),
    ]);
    let err = unpack_stream(std::io::Cursor::new(t), dst.path(), "l").unwrap_err();
    assert!(err.to_string().contains("too many links"), "{err}");
}

#[test]
fn replacing_entries_follows_containerd() {
    // A file replaced by a directory, a directory merged with a directory, a symlink replaced
    // by a file (the file is written in place of the link, not through it).
    let dst = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let target = outside.path().join("victim");
    fs::write(&target, b"safe").expect("write");
    let t = hand_tar(&[
        (b"x", tar::EntryType::Regular, b""),
        (b"x", tar::EntryType::Directory, b""),
        (b"x/in", tar::EntryType::Regular, b""),
        (b"x", tar::EntryType::Directory, b""),
        (b"l", tar::EntryType::Symlink, target.as_os_str().as_bytes()),
        (b"l", tar::EntryType::Regular, b""),
    ]);
    unpack_stream(std::io::Cursor::new(t), dst.path(), "l").expect("unpack");
    assert!(dst.path().join("x/in").is_file());
    assert!(
        fs::symlink_metadata(dst.path().join("l"))
            .expect("l")
            .is_file()
    );
    assert_eq!(fs::read(&target).expect("read"), b"safe");
}

#[test]
fn go_clean_and_root_path() {
    assert_eq!(go_clean(b"/a/../b/./c/"), PathBuf::from("b/c"));
    assert_eq!(go_clean(b"../../x"), PathBuf::from("../../x"));
    assert_eq!(go_clean(b"a/../../x"), PathBuf::from("../x"));
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path().canonicalize().expect("canon");
    std::os::unix::fs::symlink("/etc", r.join("etc-link")).expect("symlink");
    assert_eq!(
        root_path(&r, Path::new("etc-link/passwd")).expect("rp"),
        r.join("etc/passwd")
    );
    assert_eq!(root_path(&r, Path::new("../../..")).expect("rp"), r);
}

#[test]
fn not_a_tar_is_an_error() {
    let dst = tempfile::tempdir().expect("tempdir");
    let err = unpack_stream(
        std::io::Cursor::new(vec![0x1f, 0x8b, 0, 0, 1, 2, 3]),
        dst.path(),
        "sha256:x",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to extract layer sha256:x"),
        "{err}"
    );
}

#[test]
fn pax_global_headers_are_ignored_and_sparse_files_expand() {
    // GNU tar with --sparse writes a sparse entry for a file with a hole; a global header
    // is added the way git archive does.
    let src = tempfile::tempdir().expect("tempdir");
    let f = fs::File::create(src.path().join("holey")).expect("create");
    f.set_len(1 << 20).expect("set_len");
    drop(f);
    fs::OpenOptions::new()
        .append(true)
        .open(src.path().join("holey"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"end"))
        .expect("append");
    let sparse = run(Command::new("tar")
        .args(["--sparse", "--format=gnu", "-C"])
        .arg(src.path())
        .args(["-cf", "-", "holey"]));
    let mut b = tar::Builder::new(Vec::new());
    let body = b"25 comment=paddock-test\n";
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XGlobalHeader);
    h.set_path("pax_global_header").expect("path");
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append(&h, &body[..]).expect("append");
    let mut global = b.into_inner().expect("tar");
    global.truncate(global.len() - 1024); // drop the end-of-archive blocks
    global.extend_from_slice(&sparse);
    let dst = tempfile::tempdir().expect("tempdir");
    unpack_stream(std::io::Cursor::new(global), dst.path(), "l").expect("unpack");
    assert!(!dst.path().join("pax_global_header").exists());
    let data = fs::read(dst.path().join("holey")).expect("read");
    assert_eq!(data.len(), (1 << 20) + 3);
    assert!(data.ends_with(b"end") && data[..1 << 20].iter().all(|&b| b == 0));
}
