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
    registry_with(dir, "")
}

/// A registry with `http_extra` appended to its `http:` section (`  tls: …`).
fn registry_with(dir: &Path, http_extra: &str) -> (Registry, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let cfg = dir.join("registry.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: t\n{http_extra}",
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

/// A CA (certificate, key) for tests.
fn test_ca(cn: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, cn.to_string());
    (p.self_signed(&key).expect("self-signed"), key)
}

/// A leaf (certificate PEM, key PEM) for `names` signed by `ca`.
fn test_leaf(ca: &(rcgen::Certificate, rcgen::KeyPair), names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let issuer = rcgen::Issuer::from_ca_cert_der(ca.0.der(), &ca.1).expect("issuer");
    let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let cert = rcgen::CertificateParams::new(names)
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// `configs.<host>.tls` of registries.yaml with a registry that requires a client
/// certificate: `paddock image pull` presents the configured one (and the registry on
/// loopback is reached over HTTPS because it has TLS settings); without it the registry
/// refuses the handshake; half a client certificate is refused at start, naming the field.
#[test]
fn image_pull_presents_the_configured_client_certificate() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let data = dir.join("data");
    busybox_layout(dir, "v1");
    let server_ca = test_ca("registry CA");
    let client_ca = test_ca("client CA");
    let server = test_leaf(&server_ca, &["127.0.0.1"]);
    let client = test_leaf(&client_ca, &["node"]);
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let (server_crt, server_key) = (
        write("server.crt", &server.0),
        write("server.key", &server.1),
    );
    let client_ca_file = write("client-ca.crt", &client_ca.0.pem());
    let server_ca_file = write("server-ca.crt", &server_ca.0.pem());
    let (client_crt, client_key) = (
        write("client.crt", &client.0),
        write("client.key", &client.1),
    );
    let (_reg, port) = registry_with(
        dir,
        &format!(
            "  tls:\n    certificate: {server_crt}\n    key: {server_key}\n    clientcas:\n      - {client_ca_file}\n"
        ),
    );
    // skopeo's certificate directory for the push: `*.cert` with its `*.key`.
    let certs_d = dir.join("certs.d");
    std::fs::create_dir_all(&certs_d).expect("mkdir");
    std::fs::write(certs_d.join("client.cert"), &client.0).expect("write");
    std::fs::write(certs_d.join("client.key"), &client.1).expect("write");
    let push = Command::new(tool("skopeo", "skopeo"))
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ])
        .arg(format!("--dest-cert-dir={}", certs_d.display()))
        .arg(format!("oci:{}:v1", dir.join("layout").display()))
        .arg(format!("docker://127.0.0.1:{port}/team/busybox:v1"))
        .output()
        .expect("skopeo");
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    let image = format!("127.0.0.1:{port}/team/busybox:v1");
    let pull_into = |data: &Path, config: &str| {
        let file = write("registries.yaml", config);
        paddock(data, &["pull", "--registry-config", &file, &image])
    };
    let pull_with = |config: &str| pull_into(&data, config);

    // The server's CA but no client certificate: the registry ends the handshake.
    let out = pull_with(&format!(
        "configs:\n  \"127.0.0.1:{port}\":\n    tls:\n      ca_file: {server_ca_file}\n"
    ));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // In TLS 1.3 the client finishes its handshake before the server checks the (missing)
    // certificate; the registry's alert then ends the connection either while the request is
    // being sent (the alert is reported) or before the pooled connection was used at all.
    assert!(
        err.contains("https://127.0.0.1")
            && (err.contains("BadCertificate") || err.contains("connection was not ready")),
        "{err}"
    );

    // A certificate without its key: refused at start, the field named.
    let out = pull_with(&format!(
        "configs:\n  \"127.0.0.1:{port}\":\n    tls:\n      cert_file: {client_crt}\n"
    ));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("configs.127.0.0.1:{port}.tls.key_file")),
        "{err}"
    );

    // With the client certificate: pulled.
    let pulled = ok(pull_with(&format!(
        "configs:\n  \"127.0.0.1:{port}\":\n    tls:\n      ca_file: {server_ca_file}\n      cert_file: {client_crt}\n      key_file: {client_key}\n"
    )));
    assert!(pulled.starts_with(&format!("pulled {image}")), "{pulled}");

    // Verification skipped instead of the CA: pulled as well (into an empty store).
    let pulled = ok(pull_into(
        &dir.join("data2"),
        &format!(
            "configs:\n  \"127.0.0.1:{port}\":\n    tls:\n      insecure_skip_verify: true\n      cert_file: {client_crt}\n      key_file: {client_key}\n"
        ),
    ));
    assert!(pulled.starts_with(&format!("pulled {image}")), "{pulled}");
}
