//! Pulls from a real registry (Debian's `docker-registry`) that the test starts on loopback,
//! with images built here and pushed by `skopeo`. Needs root (layer unpacking makes whiteout
//! devices and sets `trusted.` xattrs) and the Debian packages docker-registry, skopeo,
//! busybox-static and apache2-utils.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use anyhow::Result;
use image::config::container_args;
use image::error::Error;
use image::keyring::{Credential, Keyring};
use image::manifest::{self, Platform};
use image::pull::{EndpointTls, PullOptions, Puller};
use support::*;

fn amd64() -> Platform {
    Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        variant: None,
    }
}

fn opts() -> PullOptions {
    PullOptions {
        platform: amd64(),
        ..Default::default()
    }
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(p)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_tag_then_by_digest_and_run_the_entrypoint() -> Result<()> {
    let reg = Registry::start(None)?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "1.0", None, &[busybox_image("amd64")?])?;
    reg.push(&layout, "1.0", "test/busybox")?;

    let store = store_in(work.path())?;
    let puller = Puller::new(store.clone())?;
    let r = format!("{}/test/busybox:1.0", reg.host());
    let pulled = puller.pull(&r, &opts()).await?;
    assert_eq!(pulled.reference.to_string(), r);
    assert!(
        pulled.downloaded > 500_000,
        "busybox was transferred: {}",
        pulled.downloaded
    );
    assert_eq!(pulled.image.layers.len(), 1);

    // The layer is an overlay lower dir with the file, its mode and the symlink.
    let lower = store.lower_dirs(&pulled.image);
    let bb = lower[0].join("bin/busybox");
    assert_eq!(
        std::fs::read(&bb)?,
        std::fs::read(need("busybox", "busybox-static")?)?
    );
    assert_eq!(mode(&bb), 0o755);
    assert_eq!(
        std::fs::read_link(lower[0].join("bin/sh"))?,
        std::path::Path::new("busybox")
    );
    assert_eq!(mode(&lower[0].join("tmp")), 0o1777);
    let out = std::process::Command::new(&bb)
        .args(["echo", "from-the-layer"])
        .output()?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-the-layer\n");

    // The config as the kubelet uses it, found the way the agent will find it.
    let (_, found) = store.resolve(&r)?.expect("resolved");
    assert_eq!(found, pulled.image);
    assert!(store.resolve("never/pulled:1")?.is_none());
    let cfg = store.config(&found)?;
    let passwd = store
        .read_image_file(&found, "/etc/passwd", 1 << 20)?
        .expect("passwd");
    let user = image::config::ImageUser::parse("nobody").expect("user");
    assert_eq!(
        user.resolve(&String::from_utf8_lossy(&passwd), ""),
        Ok((65534, 65534))
    );
    assert_eq!(
        container_args(&[], &[], &cfg.config).unwrap(),
        ["/bin/sh", "-c", "echo hello"]
    );

    // Private store: 0700 dirs, 0600 blobs.
    assert_eq!(mode(store.root()), 0o700);
    assert_eq!(mode(&store.root().join("blobs/sha256")), 0o700);
    assert_eq!(mode(&store.blob_path(&pulled.image.config)), 0o600);
    assert_eq!(mode(&store.root().join("index.json")), 0o600);

    // By digest: the same image, nothing transferred but the manifest.
    let by_digest = format!("{}/test/busybox@{}", reg.host(), pulled.image.repo_digest);
    let again = Puller::new(store.clone())?
        .pull(&by_digest, &opts())
        .await?;
    assert_eq!(again.image, pulled.image);
    assert!(
        again.downloaded < 4096,
        "only the manifest: {}",
        again.downloaded
    );
    assert!(store.get(&by_digest)?.is_some());
    assert!(store.get(&r)?.is_some());
    assert!(store.get(&pulled.image.config.to_string())?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_arch_index_resolves_to_this_platform() -> Result<()> {
    let reg = Registry::start(None)?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    let arch_image = |arch: &'static str| -> Result<TestImage> {
        Ok(TestImage {
            arch,
            layers: vec![tar_layer(&[Entry::File(
                "arch",
                arch.as_bytes().to_vec(),
                0o644,
            )])?],
            entrypoint: vec!["/bin/true"],
            cmd: vec![],
        })
    };
    let index_digest = write_layout(
        &layout,
        "multi",
        None,
        &[
            arch_image("arm64")?,
            arch_image("amd64")?,
            arch_image("ppc64le")?,
        ],
    )?;
    reg.push(&layout, "multi", "test/multi")?;

    let store = store_in(work.path())?;
    let puller = Puller::new(store.clone())?;
    let r = format!("{}/test/multi:multi", reg.host());
    let pulled = puller.pull(&r, &opts()).await?;
    assert_eq!(
        pulled.image.repo_digest, index_digest,
        "imageID names the index"
    );
    assert_ne!(pulled.image.manifest, index_digest);
    let lower = store.lower_dirs(&pulled.image);
    assert_eq!(std::fs::read_to_string(lower[0].join("arch"))?, "amd64");
    assert_eq!(Platform::host().to_string(), "linux/amd64");

    let s390 = PullOptions {
        platform: Platform {
            architecture: "s390x".into(),
            os: "linux".into(),
            variant: None,
        },
        ..Default::default()
    };
    let err = puller.pull(&r, &s390).await.unwrap_err();
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no match for platform in manifest"),
        "{err}"
    );
    assert_eq!(err.kubelet_reason(), "ErrImagePull");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_a_pull_secret_and_a_wrong_password() -> Result<()> {
    let reg = Registry::start(Some(("alice", "s3cret")))?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "v1", None, &[busybox_image("amd64")?])?;
    reg.push(&layout, "v1", "private/app")?;
    let store = store_in(work.path())?;
    let puller = Puller::new(store.clone())?;
    let r = format!("{}/private/app:v1", reg.host());

    let anon = puller.pull(&r, &opts()).await.unwrap_err();
    assert!(matches!(anon, Error::Unauthorized { .. }), "{anon}");

    let wrong = PullOptions {
        credentials: vec![Credential {
            username: "alice".into(),
            password: "nope".into(),
        }],
        ..opts()
    };
    let err = puller.pull(&r, &wrong).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("401 Unauthorized"), "{err}");
    assert!(store.get(&r)?.is_none());

    // The credentials as an imagePullSecret carries them, matched by the kubelet's rules.
    let mut keyring = Keyring::new();
    let auth = base64_encode("alice:s3cret");
    keyring.add_docker_config_json(
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()).as_bytes(),
    )?;
    let good = PullOptions {
        // A wrong one first: the kubelet tries each in turn.
        credentials: [
            wrong.credentials.clone(),
            keyring.lookup(&format!("{}/private/app", reg.host())),
        ]
        .concat(),
        ..opts()
    };
    assert_eq!(good.credentials.len(), 2);
    let pulled = puller.pull(&r, &good).await?;
    assert!(store.get(&r)?.is_some());
    assert_eq!(pulled.image.layers.len(), 1);
    Ok(())
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_tag_and_repository_are_not_found() -> Result<()> {
    let reg = Registry::start(None)?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "v1", None, &[busybox_image("amd64")?])?;
    reg.push(&layout, "v1", "test/app")?;
    let puller = Puller::new(store_in(work.path())?)?;
    for r in [
        format!("{}/test/app:v2", reg.host()),
        format!("{}/test/nothing:v1", reg.host()),
    ] {
        let err = puller.pull(&r, &opts()).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!("failed to resolve reference {r:?}: {r}: not found")
        );
        assert_eq!(err.kubelet_reason(), "ErrImagePull");
    }
    let bad = puller.pull("Not/Valid", &opts()).await.unwrap_err();
    assert_eq!(bad.kubelet_reason(), "InvalidImageName");
    // Nothing listening: a network error, not a hang.
    let port = free_port()?;
    let err = puller
        .pull(&format!("127.0.0.1:{port}/x/y:1"), &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_layer_is_a_digest_mismatch_stores_nothing_and_the_next_pull_resumes()
-> Result<()> {
    let reg = Registry::start(None)?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "v1", None, &[busybox_image("amd64")?])?;
    reg.push(&layout, "v1", "test/corrupt")?;
    // The layer's digest, from the layout's manifest.
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let md = image::Digest::parse(idx["manifests"][0]["digest"].as_str().unwrap_or(""))?;
    let m: manifest::Manifest =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(md.hex()))?)?;
    let layer = m.layers[0].digest.clone();
    let file = reg.blob_file(&layer);
    let good = std::fs::read(&file)?;
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&file, &bad)?;

    let store = store_in(work.path())?;
    let puller = Puller::new(store.clone())?;
    let r = format!("{}/test/corrupt:v1", reg.host());
    let err = puller.pull(&r, &opts()).await.unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("expected {layer}")),
        "{err}"
    );
    assert!(!store.has_blob(&layer), "the corrupt layer was not stored");
    assert!(store.get(&r)?.is_none(), "no image recorded");
    assert_eq!(
        std::fs::read_dir(store.root().join("ingest"))?.count(),
        0,
        "no debris"
    );
    assert_eq!(
        std::fs::read_dir(store.root().join("layers/sha256"))?.count(),
        0
    );
    // The config and manifest were verified and kept: the retry reuses them.
    assert!(store.has_blob(&m.config.digest));

    std::fs::write(&file, &good)?;
    let pulled = puller.pull(&r, &opts()).await?;
    assert!(store.has_blob(&layer));
    assert_eq!(pulled.image.layers[0].digest, layer);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whiteouts_and_opaque_directories_become_overlay_markers() -> Result<()> {
    let reg = Registry::start(None)?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    let base = tar_layer(&[
        Entry::Dir("a", 0o755),
        Entry::File("a/keep", b"k".to_vec(), 0o644),
        Entry::File("a/gone", b"g".to_vec(), 0o644),
        Entry::Dir("d", 0o755),
        Entry::File("d/old", b"o".to_vec(), 0o644),
    ])?;
    let top = tar_layer(&[
        Entry::Dir("a", 0o755),
        Entry::File("a/.wh.gone", vec![], 0o644),
        Entry::Dir("d", 0o755),
        Entry::File("d/.wh..wh..opq", vec![], 0o644),
        Entry::File("d/new", b"n".to_vec(), 0o600),
        Entry::Hardlink("d/new-link", "d/new"),
    ])?;
    write_layout(
        &layout,
        "wh",
        None,
        &[TestImage {
            arch: "amd64",
            layers: vec![base, top],
            entrypoint: vec!["/x"],
            cmd: vec![],
        }],
    )?;
    reg.push(&layout, "wh", "test/wh")?;
    let store = store_in(work.path())?;
    let pulled = Puller::new(store.clone())?
        .pull(&format!("{}/test/wh:wh", reg.host()), &opts())
        .await?;
    let lower = store.lower_dirs(&pulled.image); // top first
    assert_eq!(lower.len(), 2);
    let (top_dir, base_dir) = (&lower[0], &lower[1]);
    assert!(base_dir.join("a/gone").is_file());
    let wh = std::fs::symlink_metadata(top_dir.join("a/gone"))?;
    assert!(wh.file_type().is_char_device(), "whiteout is a char device");
    assert_eq!(wh.rdev(), 0, "device 0:0");
    assert!(!top_dir.join("a/.wh.gone").exists());
    assert_eq!(
        xattr::get(top_dir.join("d"), "trusted.overlay.opaque")?,
        Some(b"y".to_vec())
    );
    assert!(!top_dir.join("d/.wh..wh..opq").exists());
    assert_eq!(mode(&top_dir.join("d/new")), 0o600);
    let (a, b) = (
        std::fs::metadata(top_dir.join("d/new"))?,
        std::fs::metadata(top_dir.join("d/new-link"))?,
    );
    assert_eq!(a.ino(), b.ino(), "hard link kept");
    // Read through the layers as the overlay shows them.
    let read = |p: &str| store.read_image_file(&pulled.image, p, 1 << 20);
    assert_eq!(read("/a/keep")?, Some(b"k".to_vec()));
    assert_eq!(read("/a/gone")?, None, "whited out");
    assert_eq!(read("/d/old")?, None, "hidden by the opaque directory");
    assert_eq!(read("/d/new")?, Some(b"n".to_vec()));
    assert_eq!(read("/nothing")?, None);
    assert!(read("/a/../etc/passwd").is_err());
    assert_eq!(
        pulled.image.layers[1].chain_id,
        image::store::chain_ids(&[
            pulled.image.layers[0].diff_id.clone(),
            pulled.image.layers[1].diff_id.clone()
        ])[1]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_cannot_write_outside_its_directory() -> Result<()> {
    let reg = Registry::start(None)?;
    let work = tempfile::tempdir()?;
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside)?;
    let layout = work.path().join("layout");
    let outside_abs: &'static str = Box::leak(outside.display().to_string().into_boxed_str());
    let evil = tar_layer(&[
        Entry::RawFile(b"../../../escape-dotdot".to_vec(), b"x".to_vec()),
        Entry::RawFile(
            format!("{outside_abs}/escape-abs").into_bytes(),
            b"x".to_vec(),
        ),
        Entry::Symlink("abs-link", outside_abs),
        Entry::RawFile(
            b"abs-link/escape-through-abs-symlink".to_vec(),
            b"x".to_vec(),
        ),
        Entry::Symlink("rel-link", "../../../../../../../../.."),
        Entry::RawFile(
            format!("rel-link{outside_abs}/escape-through-rel-symlink").into_bytes(),
            b"x".to_vec(),
        ),
    ])?;
    write_layout(
        &layout,
        "evil",
        None,
        &[TestImage {
            arch: "amd64",
            layers: vec![evil],
            entrypoint: vec!["/x"],
            cmd: vec![],
        }],
    )?;
    reg.push(&layout, "evil", "test/evil")?;
    let store = store_in(work.path())?;
    let pulled = Puller::new(store.clone())?
        .pull(&format!("{}/test/evil:evil", reg.host()), &opts())
        .await?;
    let dir = &store.lower_dirs(&pulled.image)[0];
    assert_eq!(
        std::fs::read_dir(&outside)?.count(),
        0,
        "nothing written outside"
    );
    // Every file the layer made, wherever it is under the test's directory, is in the layer.
    let mut found = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/tmp"), work.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let ft = e.file_type()?;
            if ft.is_dir() && d.starts_with(work.path()) {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().starts_with("escape-") {
                found.push(e.path());
            }
        }
    }
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(found.iter().all(|p| p.starts_with(dir)), "{found:?}");
    // containerd's semantics: each name is re-rooted inside the layer directory.
    assert!(dir.join("escape-dotdot").is_file());
    let inner = dir.join(outside_abs.trim_start_matches('/'));
    assert!(inner.join("escape-abs").is_file());
    assert!(inner.join("escape-through-abs-symlink").is_file());
    assert!(inner.join("escape-through-rel-symlink").is_file());
    // A hard link to a file outside resolves inside too, so it fails as containerd's does.
    let work2 = tempfile::tempdir()?;
    let target = work2.path().join("secret");
    std::fs::write(&target, "s")?;
    let link_out = tar_layer(&[Entry::Hardlink(
        "stolen",
        Box::leak(format!("../../../../../../..{}", target.display()).into_boxed_str()),
    )])?;
    let unpack_dir = tempfile::tempdir()?;
    let err =
        image::unpack::unpack_stream(std::io::Cursor::new(link_out), unpack_dir.path(), "test")
            .unwrap_err();
    assert!(err.to_string().contains("stolen"), "{err}");
    assert!(!unpack_dir.path().join("stolen").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_reference_share_one_transfer() -> Result<()> {
    let reg = Registry::start(None)?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "v1", None, &[busybox_image("amd64")?])?;
    reg.push(&layout, "v1", "test/shared")?;
    let puller = Puller::new(store_in(work.path())?)?;
    let r = format!("{}/test/shared:v1", reg.host());
    let o = opts();
    let (a, b, c) = tokio::join!(
        puller.pull(&r, &o),
        puller.pull(&r, &o),
        puller.pull(&r, &o)
    );
    let (a, b, c) = (a?, b?, c?);
    assert_eq!(a.image, b.image);
    assert_eq!(b.image, c.image);
    let later = puller.pull(&r, &o).await?;
    assert!(later.downloaded < 4096);
    // The registry saw one transfer: one manifest request for the three concurrent pulls (and
    // one for the later pull), and each blob (config, layer) fetched once.
    let manifests = "\"GET /v2/test/shared/manifests/v1 ";
    tokio::task::block_in_place(|| reg.wait_requests(manifests, 2))?;
    assert_eq!(reg.requests(manifests), 2);
    assert_eq!(reg.requests("\"GET /v2/test/shared/blobs/"), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_serves_docker_hub_names_without_the_internet() -> Result<()> {
    let mirror = Registry::start(None)?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "1.36", None, &[busybox_image("amd64")?])?;
    mirror.push(&layout, "1.36", "library/busybox")?;
    let store = store_in(work.path())?;
    let puller = Puller::new(store.clone())?;
    let with_mirror = PullOptions {
        mirrors: vec![format!("http://{}", mirror.host())],
        ..opts()
    };
    // Served by the mirror: docker.io itself is never asked (this machine has no internet).
    let pulled = puller.pull("busybox:1.36", &with_mirror).await?;
    assert_eq!(
        pulled.reference.to_string(),
        "docker.io/library/busybox:1.36"
    );
    assert!(store.get("docker.io/library/busybox:1.36")?.is_some());
    // Missing from the mirror, and the registry itself unreachable: the mirror's "not found"
    // is what is reported, not the connection failure.
    let dead = free_port()?;
    let err = puller
        .pull(
            &format!("127.0.0.1:{dead}/library/busybox:9.99"),
            &with_mirror,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_registry_verified_against_a_configured_ca() -> Result<()> {
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])?.self_signed(&key)?;
    let reg = Registry::start_full(None, Some((cert.pem(), key.serialize_pem())))?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "tls", None, &[busybox_image("amd64")?])?;
    reg.push(&layout, "tls", "secure/app")?;
    // Reached through an https:// endpoint, so the client must speak TLS and verify the
    // certificate. (The image's own registry is a dead loopback port: nothing leaves the
    // machine, not even a DNS query.)
    let via_https = PullOptions {
        mirrors: vec![format!("https://{}", reg.host())],
        ..opts()
    };
    let image = &format!("127.0.0.1:{}/secure/app:tls", free_port()?);
    let untrusting = Puller::new(store_in(work.path())?)?;
    let err = untrusting.pull(image, &via_https).await.unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");

    let pem = cert.pem();
    let trusting = Puller::with_extra_roots(store_in(work.path())?, &[pem.as_bytes()])?;
    let pulled = trusting.pull(image, &via_https).await?;
    assert_eq!(&pulled.reference.to_string(), image);
    assert!(pulled.downloaded > 500_000);
    Ok(())
}

/// `configs.<host>.tls` as containerd applies it: to that endpoint only. A registry that
/// requires a client certificate serves the pull that presents one from the configured CA's
/// signer, refuses one without it, and `insecure_skip_verify` accepts a certificate nothing
/// trusts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_and_skipped_verification_apply_per_endpoint() -> Result<()> {
    // A CA for the server and one for clients, each self-signed.
    let ca = |cn: &str| -> Result<(rcgen::Certificate, rcgen::KeyPair)> {
        let key = rcgen::KeyPair::generate()?;
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new())?;
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, cn.to_string());
        Ok((p.self_signed(&key)?, key))
    };
    let (server_ca, server_ca_key) = ca("registry CA")?;
    let (client_ca, client_ca_key) = ca("client CA")?;
    let (other_ca, other_ca_key) = ca("someone else")?;
    let leaf = |signer: &rcgen::Certificate,
                signer_key: &rcgen::KeyPair,
                names: Vec<String>|
     -> Result<(String, String)> {
        let key = rcgen::KeyPair::generate()?;
        let issuer = rcgen::Issuer::from_ca_cert_der(signer.der(), signer_key)?;
        let cert = rcgen::CertificateParams::new(names)?.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let server = leaf(&server_ca, &server_ca_key, vec!["127.0.0.1".into()])?;
    let client = leaf(&client_ca, &client_ca_key, vec!["node".into()])?;
    let stranger = leaf(&other_ca, &other_ca_key, vec!["node".into()])?;
    let reg = Registry::start_mtls(server, client_ca.pem(), client.clone())?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "mtls", None, &[busybox_image("amd64")?])?;
    reg.push(&layout, "mtls", "secure/app")?;
    let via_https = PullOptions {
        mirrors: vec![format!("https://{}", reg.host())],
        ..opts()
    };
    let image = &format!("127.0.0.1:{}/secure/app:mtls", free_port()?);
    // A store of its own for each client, so that nothing pulled before is reused.
    let stores = std::cell::Cell::new(0);
    let fresh = || -> Result<image::Store> {
        stores.set(stores.get() + 1);
        store_in(&work.path().join(format!("store{}", stores.get())))
    };
    let with = |tls: EndpointTls| -> Result<Puller> {
        let endpoints = BTreeMap::from([(reg.host(), tls)]);
        Ok(Puller::with_endpoint_tls(fresh()?, &endpoints)?)
    };
    let trusted = || EndpointTls {
        ca_pem: Some(server_ca.pem().into_bytes()),
        ..EndpointTls::default()
    };

    // The server is trusted, but no client certificate: the registry ends the handshake.
    let err = with(trusted())?.pull(image, &via_https).await.unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err}");
    assert!(refused_for_its_certificate(&err), "{err}");
    // A client certificate from a CA the registry does not accept: refused too.
    let err = with(EndpointTls {
        client_identity: Some((stranger.0.into_bytes(), stranger.1.into_bytes())),
        ..trusted()
    })?
    .pull(image, &via_https)
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err}");
    assert!(refused_for_its_certificate(&err), "{err}");
    // The right one: pulled.
    let good = (client.0.into_bytes(), client.1.into_bytes());
    let pulled = with(EndpointTls {
        client_identity: Some(good.clone()),
        ..trusted()
    })?
    .pull(image, &via_https)
    .await?;
    assert!(pulled.downloaded > 500_000);
    // The CA is this endpoint's only: configured for another host it does not help.
    let elsewhere = Puller::with_endpoint_tls(
        fresh()?,
        &BTreeMap::from([(
            "127.0.0.2:5000".to_string(),
            EndpointTls {
                client_identity: Some(good.clone()),
                ..trusted()
            },
        )]),
    )?;
    let err = elsewhere.pull(image, &via_https).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    // No CA, but verification skipped: the unknown server is accepted.
    let pulled = with(EndpointTls {
        client_identity: Some(good),
        insecure_skip_verify: true,
        ..EndpointTls::default()
    })?
    .pull(image, &via_https)
    .await?;
    assert!(pulled.downloaded > 500_000);
    // A key that is not PEM is an error when the client is built, naming the endpoint.
    let err = with(EndpointTls {
        client_identity: Some((server_ca.pem().into_bytes(), b"not a key".to_vec())),
        ..EndpointTls::default()
    })
    .expect_err("a bad key is refused");
    assert!(err.to_string().contains(&reg.host()), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_during_a_pull_leaves_nothing_and_the_next_pull_resumes() -> Result<()> {
    let reg = Registry::start(None)?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "v1", None, &[busybox_image("amd64")?])?;
    reg.push(&layout, "v1", "test/full")?;
    // Room for the manifest and config, not for busybox (about 1 MB compressed, 2 MB unpacked).
    let disk = Tmpfs::mount(&work.path().join("disk"), "600k")?;
    let store = store_in(&disk.0)?;
    let puller = Puller::new(store.clone())?;
    let r = format!("{}/test/full:v1", reg.host());
    let err = puller.pull(&r, &opts()).await.unwrap_err();
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert_eq!(err.kubelet_reason(), "ErrImagePull");
    assert!(store.get(&r)?.is_none());
    assert_eq!(
        std::fs::read_dir(store.root().join("ingest"))?.count(),
        0,
        "no debris"
    );
    assert_eq!(
        std::fs::read_dir(store.root().join("layers/sha256"))?.count(),
        0
    );
    disk.resize("64m")?;
    let pulled = puller.pull(&r, &opts()).await?;
    assert!(
        store.lower_dirs(&pulled.image)[0]
            .join("bin/busybox")
            .is_file()
    );
    Ok(())
}

/// k3s's `registries.yaml` semantics through [`image::registries::Registries`]: a Docker Hub
/// name served by a local mirror that wants basic auth (from `configs.<host>.auth`) and keeps
/// the image under another path (`rewrite`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registries_config_mirrors_rewrites_and_authenticates() -> Result<()> {
    let mirror = Registry::start(Some(("mirror-user", "mirror-pass")))?;
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "1.36", None, &[busybox_image("amd64")?])?;
    mirror.push(&layout, "1.36", "hub-mirror/busybox")?;
    let config = |auth: serde_json::Value| -> Result<image::registries::Registries> {
        let r: image::registries::Registries = serde_json::from_value(serde_json::json!({
            "mirrors": {"docker.io": {
                "endpoint": [format!("http://{}", mirror.host())],
                "rewrite": {"^library/(.*)$": "hub-mirror/$1"}}},
            "configs": {mirror.host(): {"auth": auth}},
        }))?;
        r.check()?;
        Ok(r)
    };
    let store = store_in(work.path())?;
    let puller = Puller::new(store.clone())?;
    let reference = image::Reference::parse_docker_ref("busybox:1.36")?;

    // A wrong password in the config: the mirror refuses, and docker.io is unreachable.
    let mut wrong = opts();
    config(serde_json::json!({"username": "mirror-user", "password": "nope"}))?
        .apply(&reference, &mut wrong);
    let err = puller.pull("busybox:1.36", &wrong).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");

    // `auth` (base64 of user:password) as a Docker config writes it.
    let mut right = opts();
    config(serde_json::json!({"auth": "bWlycm9yLXVzZXI6bWlycm9yLXBhc3M="}))?
        .apply(&reference, &mut right);
    let pulled = puller.pull("busybox:1.36", &right).await?;
    assert_eq!(
        pulled.reference.to_string(),
        "docker.io/library/busybox:1.36",
        "stored under its own name"
    );
    assert!(store.get("docker.io/library/busybox:1.36")?.is_some());
    assert!(
        mirror.requests("\"GET /v2/hub-mirror/busybox/manifests/1.36 ") >= 1,
        "asked for the rewritten path"
    );
    Ok(())
}

/// Whether a pull failed because the registry refused the client's certificate. In TLS 1.3
/// the client finishes its handshake before the server checks the certificate; the
/// registry's alert then ends the connection either while the request is being sent (the
/// alert is reported) or before the pooled connection was used at all.
fn refused_for_its_certificate(err: &Error) -> bool {
    let text = err.to_string();
    text.contains("BadCertificate") || text.contains("connection was not ready")
}
