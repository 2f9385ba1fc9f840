//! Test support: a real registry (Debian's `docker-registry`) on loopback, pushed to with
//! `skopeo`, and OCI image layouts built here from Debian's `busybox-static`.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use image::Digest;
use serde_json::json;

/// Fails with the package to install when a tool is missing.
pub fn need(tool: &str, package: &str) -> Result<PathBuf> {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!("{tool} not found: install the Debian package `{package}` (apt-get install -y {package})")
}

/// A `docker-registry serve` child on 127.0.0.1, killed on drop.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
    pub creds: Option<(String, String)>,
    /// skopeo's `--dest-cert-dir` when the registry wants a client certificate.
    cert_dir: Option<PathBuf>,
}

impl Registry {
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts a registry; with `basic`, htpasswd auth for that user and password.
    pub fn start(basic: Option<(&str, &str)>) -> Result<Registry> {
        Self::start_with(basic.map(|(u, p)| Auth::Basic(u.to_string(), p.to_string())))
    }

    pub fn start_with(auth: Option<Auth>) -> Result<Registry> {
        Self::start_full(auth, None)
    }

    /// With `tls`, serves HTTPS with that (certificate PEM, key PEM).
    pub fn start_full(auth: Option<Auth>, tls: Option<(String, String)>) -> Result<Registry> {
        Self::start_inner(auth, tls, None)
    }

    /// Serves HTTPS with `tls` and requires a client certificate signed by `client_ca` (PEM);
    /// pushes present `push_identity` (certificate PEM, key PEM).
    pub fn start_mtls(
        tls: (String, String),
        client_ca: String,
        push_identity: (String, String),
    ) -> Result<Registry> {
        Self::start_inner(None, Some(tls), Some((client_ca, push_identity)))
    }

    fn start_inner(
        auth: Option<Auth>,
        tls: Option<(String, String)>,
        mtls: Option<(String, (String, String))>,
    ) -> Result<Registry> {
        let bin = need("docker-registry", "docker-registry")?;
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let mut auth_yaml = String::new();
        let mut creds = None;
        match &auth {
            None => {}
            Some(Auth::Basic(u, p)) => {
                let htpasswd = need("htpasswd", "apache2-utils")?;
                let out = Command::new(htpasswd).args(["-Bbn", u, p]).output()?;
                if !out.status.success() {
                    bail!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
                }
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &out.stdout)?;
                auth_yaml = format!(
                    "auth:\n  htpasswd:\n    realm: paddock-test\n    path: {}\n",
                    file.display()
                );
                creds = Some((u.clone(), p.clone()));
            }
            Some(Auth::Token {
                realm,
                service,
                issuer,
                cert_pem,
            }) => {
                let file = dir.path().join("token-ca.pem");
                std::fs::write(&file, cert_pem)?;
                auth_yaml = format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    file.display()
                );
            }
        }
        let mut tls_yaml = String::new();
        if let Some((cert, key)) = tls {
            std::fs::write(dir.path().join("tls.crt"), cert)?;
            std::fs::write(dir.path().join("tls.key"), key)?;
            tls_yaml = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("tls.crt").display(),
                dir.path().join("tls.key").display()
            );
        }
        let mut cert_dir = None;
        if let Some((ca, (cert, key))) = mtls {
            std::fs::write(dir.path().join("client-ca.crt"), ca)?;
            tls_yaml.push_str(&format!(
                "    clientcas:\n      - {}\n",
                dir.path().join("client-ca.crt").display()
            ));
            // skopeo's certificate directory: `*.cert` with its `*.key`.
            let d = dir.path().join("certs.d");
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join("client.cert"), cert)?;
            std::fs::write(d.join("client.key"), key)?;
            cert_dir = Some(d);
        }
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: paddock-test\n{tls_yaml}{auth_yaml}",
            storage.display()
        );
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg_path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("starting docker-registry")?;
        let reg = Registry {
            port,
            dir,
            child,
            creds,
            cert_dir,
        };
        // Ready when it answers /v2/ at all (200 or 401); bounded.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(reg);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        bail!(
            "docker-registry did not listen on {port}: {}",
            std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default()
        )
    }

    /// Pushes `oci:<layout>:<tag>` to `<repo>:<tag>` with skopeo (all platforms of an index).
    pub fn push(&self, layout: &Path, tag: &str, repo: &str) -> Result<()> {
        let skopeo = need("skopeo", "skopeo")?;
        let mut cmd = Command::new(skopeo);
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            "--dest-tls-verify=false",
        ]);
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        if let Some(d) = &self.cert_dir {
            cmd.arg(format!("--dest-cert-dir={}", d.display()));
        }
        cmd.arg(format!("oci:{}:{tag}", layout.display()));
        cmd.arg(format!("docker://{}/{repo}:{tag}", self.host()));
        let out = cmd.output()?;
        if !out.status.success() {
            bail!(
                "skopeo copy failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Lines of the registry's access log containing `pattern` (`"GET /v2/…`).
    pub fn requests(&self, pattern: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("registry.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(pattern))
            .count()
    }

    /// Waits (bounded) until the access log shows `n` requests matching `pattern`: the log is
    /// written as each request completes, just after its client has the response.
    pub fn wait_requests(&self, pattern: &str, n: usize) -> Result<()> {
        for _ in 0..200 {
            if self.requests(pattern) >= n {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        bail!("the registry never logged {n} requests matching {pattern:?}")
    }

    /// The registry's file for a blob (to corrupt it).
    pub fn blob_file(&self, d: &Digest) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub enum Auth {
    Basic(String, String),
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert_pem: String,
    },
}

pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// One file in a test layer.
pub enum Entry {
    File(&'static str, Vec<u8>, u32),
    Dir(&'static str, u32),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
    /// A raw name, written byte for byte (for names the tar crate's builder would refuse).
    RawFile(Vec<u8>, Vec<u8>),
}

/// A tar layer (uncompressed).
pub fn tar_layer(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match e {
            Entry::File(name, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, &data[..])?;
            }
            Entry::Dir(name, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, name, std::io::empty())?;
            }
            Entry::Symlink(name, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, name, target)?;
            }
            Entry::Hardlink(name, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, name, target)?;
            }
            Entry::RawFile(name, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                let field = &mut h.as_old_mut().name;
                field.fill(0);
                field[..name.len()].copy_from_slice(name);
                h.set_cksum();
                b.append(&h, &data[..])?;
            }
        }
    }
    Ok(b.into_inner()?)
}

pub fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data)?;
    Ok(e.finish()?)
}

/// What one image of a layout holds.
pub struct TestImage {
    pub arch: &'static str,
    /// Uncompressed layer tars; pushed gzip-compressed.
    pub layers: Vec<Vec<u8>>,
    pub entrypoint: Vec<&'static str>,
    pub cmd: Vec<&'static str>,
}

/// Writes blobs into an OCI layout; returns the descriptor JSON.
fn put(dir: &Path, media_type: &str, data: &[u8]) -> Result<serde_json::Value> {
    let d = Digest::sha256_of(data);
    let p = dir.join("blobs/sha256").join(d.hex());
    std::fs::write(p, data)?;
    Ok(json!({"mediaType": media_type, "digest": d.to_string(), "size": data.len()}))
}

fn write_image(dir: &Path, img: &TestImage) -> Result<serde_json::Value> {
    let mut diff_ids = Vec::new();
    let mut layers = Vec::new();
    for l in &img.layers {
        diff_ids.push(Digest::sha256_of(l).to_string());
        layers.push(put(
            dir,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &gzip(l)?,
        )?);
    }
    let config = json!({
        "architecture": img.arch, "os": "linux",
        "config": {"Entrypoint": img.entrypoint, "Cmd": img.cmd, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config_desc = put(
        dir,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config)?,
    )?;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc, "layers": layers,
    });
    let mut desc = put(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest)?,
    )?;
    desc["platform"] = json!({"architecture": img.arch, "os": "linux"});
    Ok(desc)
}

/// An OCI image layout at `dir` with one entry tagged `tag`: a single image, or (with several)
/// an index of them. `name` (a full reference) goes in `io.containerd.image.name` if given.
pub fn write_layout(
    dir: &Path,
    tag: &str,
    name: Option<&str>,
    images: &[TestImage],
) -> Result<Digest> {
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut top = if images.len() == 1 {
        let mut d = write_image(dir, &images[0])?;
        d.as_object_mut().map(|o| o.remove("platform"));
        d
    } else {
        let mut manifests = Vec::new();
        for i in images {
            manifests.push(write_image(dir, i)?);
        }
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        put(
            dir,
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&index)?,
        )?
    };
    let mut ann = BTreeMap::new();
    ann.insert("org.opencontainers.image.ref.name", tag.to_string());
    if let Some(n) = name {
        ann.insert("io.containerd.image.name", n.to_string());
    }
    top["annotations"] = json!(ann);
    let digest = Digest::parse(top["digest"].as_str().unwrap_or_default())?;
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [top]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(digest)
}

/// The busybox image: `/bin/busybox` from busybox-static, `/bin/sh` → busybox, `/etc/passwd`.
pub fn busybox_layer() -> Result<Vec<u8>> {
    let bb = need("busybox", "busybox-static")?;
    let data = std::fs::read(bb)?;
    tar_layer(&[
        Entry::Dir("bin", 0o755),
        Entry::File("bin/busybox", data, 0o755),
        Entry::Symlink("bin/sh", "busybox"),
        Entry::Dir("etc", 0o755),
        Entry::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n".to_vec(),
            0o644,
        ),
        Entry::Dir("tmp", 0o1777),
    ])
}

pub fn busybox_image(arch: &'static str) -> Result<TestImage> {
    Ok(TestImage {
        arch,
        layers: vec![busybox_layer()?],
        entrypoint: vec!["/bin/sh"],
        cmd: vec!["-c", "echo hello"],
    })
}

pub fn store_in(dir: &Path) -> Result<image::Store> {
    Ok(image::Store::open(dir.join("images"))?)
}

/// A tmpfs mounted for one test, detached on drop.
pub struct Tmpfs(pub std::path::PathBuf);

impl Tmpfs {
    pub fn mount(dir: &std::path::Path, size: &str) -> Result<Tmpfs> {
        std::fs::create_dir_all(dir)?;
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size},mode=0700").as_str()),
        )
        .map_err(|e| anyhow::anyhow!("mounting a tmpfs (the tests run as root): {e}"))?;
        Ok(Tmpfs(dir.to_path_buf()))
    }

    pub fn resize(&self, size: &str) -> Result<()> {
        nix::mount::mount(
            None::<&str>,
            &self.0,
            None::<&str>,
            nix::mount::MsFlags::MS_REMOUNT,
            Some(format!("size={size}").as_str()),
        )?;
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// `n` bytes of incompressible, reproducible data.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; n];
    // Distinct seeds give distinct streams (xorshift needs a non-zero state).
    let mut x: u64 = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    data
}
