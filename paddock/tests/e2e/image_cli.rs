//! `paddock image import|ls|rm|pull` on a data dir, as a user runs them: an OCI layout built
//! here from busybox-static with GNU tar, a real registry (Debian's `docker-registry`) started
//! on loopback, and `skopeo` pushing to it.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use image::Digest;

use crate::images::{blob, tool};
use serde_json::json;

fn paddock(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paddock"))
        .arg("image")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("run paddock")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An OCI layout holding busybox, tagged `tag`.
fn busybox_layout(dir: &Path, tag: &str) {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::copy(tool("busybox", "busybox-static"), root.join("bin/busybox")).expect("copy");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("symlink");
    let layer = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .args(["-cf", "-", "bin"])
        .output()
        .expect("tar");
    assert!(layer.status.success());
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("mkdir");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("write");
    let l = blob(
        &layout,
        "application/vnd.oci.image.layer.v1.tar",
        &layer.stdout,
    );
    let config = json!({"architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [Digest::sha256_of(&layer.stdout).to_string()]}});
    let c = blob(
        &layout,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": [l]});
    let mut md = blob(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        m.to_string().as_bytes(),
    );
    md["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let index = json!({"schemaVersion": 2, "manifests": [md]});
    std::fs::write(layout.join("index.json"), index.to_string()).expect("write");
}

struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn registry(dir: &Path) -> (Registry, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let cfg = dir.join("registry.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: t\n",
            dir.join("registry").display()
        ),
    )
    .expect("write");
    let child = Command::new(tool("docker-registry", "docker-registry"))
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let reg = Registry(child);
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (reg, port);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("docker-registry did not listen on {port}");
}

#[test]
fn image_import_ls_pull_rm() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    busybox_layout(work.path(), "v1");
    let layout = work.path().join("layout");

    // A bare tag needs a name.
    let out = paddock(&data, &["import", layout.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("named only by the tag \"v1\""));
    let imported = ok(paddock(
        &data,
        &[
            "import",
            "--name",
            "example.com/tools/busybox",
            layout.to_str().expect("utf-8"),
        ],
    ));
    assert!(
        imported.starts_with("imported example.com/tools/busybox:v1"),
        "{imported}"
    );

    let ls = ok(paddock(&data, &["ls"]));
    let lines: Vec<&str> = ls.lines().collect();
    assert!(lines[0].starts_with("IMAGE"), "{ls}");
    assert!(
        lines[1].starts_with("example.com/tools/busybox   v1"),
        "{ls}"
    );

    // Pull the same image from a registry under another name.
    let (_reg, port) = registry(work.path());
    let push = Command::new(tool("skopeo", "skopeo"))
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://127.0.0.1:{port}/team/busybox:v1"))
        .output()
        .expect("skopeo");
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    // Two processes pulling into one store at once (the agent and a user, say): both finish,
    // sharing the content through the store's renames and lock.
    let spawn = |d: &Path| {
        Command::new(env!("CARGO_BIN_EXE_paddock"))
            .arg("image")
            .arg("--data-dir")
            .arg(d)
            .args(["pull", &format!("127.0.0.1:{port}/team/busybox:v1")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn paddock")
    };
    let (a, b) = (spawn(&data), spawn(&data));
    let (a, b) = (
        a.wait_with_output().expect("wait"),
        b.wait_with_output().expect("wait"),
    );
    let pulled = ok(a);
    ok(b);
    assert!(
        pulled.starts_with(&format!("pulled 127.0.0.1:{port}/team/busybox:v1")),
        "{pulled}"
    );
    let ids = ok(paddock(&data, &["ls", "-q"]));
    assert_eq!(ids.lines().count(), 1, "one image, two names: {ids}");

    let missing = paddock(
        &data,
        &["pull", &format!("127.0.0.1:{port}/team/busybox:v9")],
    );
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("not found"), "{err}");

    let rm = ok(paddock(&data, &["rm", "example.com/tools/busybox:v1"]));
    assert_eq!(rm.trim(), "Deleted: example.com/tools/busybox:v1");
    let ls = ok(paddock(&data, &["ls"]));
    assert!(!ls.contains("example.com"), "{ls}");
    assert!(
        ls.contains(&format!("127.0.0.1:{port}/team/busybox")),
        "{ls}"
    );
    let again = paddock(&data, &["rm", "example.com/tools/busybox:v1"]);
    assert!(!again.status.success());
}
