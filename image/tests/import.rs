//! Importing images without a registry: OCI layout directories, OCI archives and docker save
//! archives (the archives written by skopeo, a real client). Needs root and the Debian
//! packages skopeo and busybox-static.

mod support;

use std::process::Command;

use anyhow::{Result, bail};
use image::error::Error;
use image::import::import_path;
use image::manifest::Platform;
use support::*;

fn amd64() -> Platform {
    Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        variant: None,
    }
}

fn skopeo(args: &[&str]) -> Result<()> {
    let out = Command::new(need("skopeo", "skopeo")?)
        .arg("--insecure-policy")
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!("skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

#[test]
fn oci_layout_directory_named_by_annotation() -> Result<()> {
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(
        &layout,
        "1.0",
        Some("example.com/team/busybox:1.0"),
        &[busybox_image("amd64")?],
    )?;
    let store = store_in(work.path())?;
    let got = import_path(&store, &layout, &amd64(), None)?;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].names[0], "example.com/team/busybox:1.0");
    let rec = store
        .get("example.com/team/busybox:1.0")?
        .expect("recorded");
    let lower = store.lower_dirs(&rec);
    let out = Command::new(lower[0].join("bin/busybox"))
        .args(["echo", "imported"])
        .output()?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "imported\n");
    Ok(())
}

#[test]
fn oci_archive_from_skopeo_needs_a_base_name_for_a_bare_tag() -> Result<()> {
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "v2", None, &[busybox_image("amd64")?])?;
    let archive = work.path().join("busybox.tar");
    skopeo(&[
        "copy",
        "--quiet",
        &format!("oci:{}:v2", layout.display()),
        &format!("oci-archive:{}:v2", archive.display()),
    ])?;
    let store = store_in(work.path())?;
    let err = import_path(&store, &archive, &amd64(), None).unwrap_err();
    assert!(
        err.to_string().contains("named only by the tag \"v2\""),
        "{err}"
    );
    // A bad base name: the message says once what is wrong and where the tag came from,
    // also printed as a chain (as `paddock image import` prints it).
    let err = anyhow::Error::new(
        import_path(&store, &archive, &amd64(), Some("Team/busybox:1")).unwrap_err(),
    );
    assert_eq!(
        format!("{err:#}"),
        "couldn't parse image name \"Team/busybox:1:v2\": the base name \"Team/busybox:1\" (a repository without a tag) with the tag \"v2\" of the layout's org.opencontainers.image.ref.name: invalid reference format"
    );
    let got = import_path(&store, &archive, &amd64(), Some("busybox"))?;
    assert_eq!(got[0].names[0], "docker.io/library/busybox:v2");
    assert!(store.get("docker.io/library/busybox:v2")?.is_some());
    // The extraction directory is gone.
    assert_eq!(std::fs::read_dir(store.root().join("ingest"))?.count(), 0);
    Ok(())
}

#[test]
fn docker_save_archive_from_skopeo() -> Result<()> {
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "v3", None, &[busybox_image("amd64")?])?;
    let archive = work.path().join("saved.tar");
    skopeo(&[
        "copy",
        "--quiet",
        &format!("oci:{}:v3", layout.display()),
        &format!("docker-archive:{}:team/app:v3", archive.display()),
    ])?;
    let store = store_in(work.path())?;
    let got = import_path(&store, &archive, &amd64(), None)?;
    assert_eq!(got[0].names[0], "docker.io/team/app:v3");
    let rec = store.get("docker.io/team/app:v3")?.expect("recorded");
    let lower = store.lower_dirs(&rec);
    assert!(lower[0].join("bin/busybox").is_file());
    // The same layer content as the OCI import would give: one diff-id, whatever the format.
    let oci = import_path(
        &store,
        &{
            let l2 = work.path().join("layout2");
            write_layout(
                &l2,
                "x",
                Some("example.com/x:1"),
                &[busybox_image("amd64")?],
            )?;
            l2
        },
        &amd64(),
        None,
    )?;
    assert_eq!(oci[0].image.layers[0].diff_id, rec.layers[0].diff_id);
    Ok(())
}

#[test]
fn multi_arch_layout_imports_this_platform_and_a_tampered_blob_is_refused() -> Result<()> {
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    let img = |arch: &'static str| -> Result<TestImage> {
        Ok(TestImage {
            arch,
            layers: vec![tar_layer(&[Entry::File(
                "arch",
                arch.as_bytes().to_vec(),
                0o644,
            )])?],
            entrypoint: vec!["/x"],
            cmd: vec![],
        })
    };
    write_layout(
        &layout,
        "m",
        Some("example.com/multi:m"),
        &[img("arm64")?, img("amd64")?],
    )?;
    let store = store_in(work.path())?;
    let got = import_path(&store, &layout, &amd64(), None)?;
    let lower = store.lower_dirs(&got[0].image);
    assert_eq!(std::fs::read_to_string(lower[0].join("arch"))?, "amd64");

    // Tamper with a layer blob of a fresh layout: refused, nothing recorded.
    let l2 = work.path().join("layout2");
    write_layout(
        &l2,
        "t",
        Some("example.com/tampered:t"),
        &[busybox_image("amd64")?],
    )?;
    let store2 = store_in(&work.path().join("s2"))?;
    let mut biggest = None;
    for e in std::fs::read_dir(l2.join("blobs/sha256"))? {
        let e = e?;
        let len = e.metadata()?.len();
        if biggest.as_ref().is_none_or(|(l, _)| len > *l) {
            biggest = Some((len, e.path()));
        }
    }
    let (_, p) = biggest.expect("blobs");
    let mut b = std::fs::read(&p)?;
    let n = b.len() / 2;
    b[n] ^= 1;
    std::fs::write(&p, b)?;
    let err = import_path(&store2, &l2, &amd64(), None).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(store2.get("example.com/tampered:t")?.is_none());
    Ok(())
}

#[test]
fn remove_drops_the_name_and_unused_content_only() -> Result<()> {
    let work = tempfile::tempdir()?;
    let store = store_in(work.path())?;
    let a = work.path().join("a");
    write_layout(&a, "1", Some("example.com/a:1"), &[busybox_image("amd64")?])?;
    let b = work.path().join("b");
    write_layout(
        &b,
        "1",
        Some("example.com/b:1"),
        &[TestImage {
            arch: "amd64",
            layers: vec![
                busybox_layer()?,
                tar_layer(&[Entry::File("extra", b"e".to_vec(), 0o644)])?,
            ],
            entrypoint: vec!["/x"],
            cmd: vec![],
        }],
    )?;
    let ia = import_path(&store, &a, &amd64(), None)?.remove(0);
    let ib = import_path(&store, &b, &amd64(), None)?.remove(0);
    let shared = ia.image.layers[0].diff_id.clone();
    assert_eq!(
        shared, ib.image.layers[0].diff_id,
        "one busybox layer, shared"
    );
    let removed = store.remove("example.com/b:1", &Default::default())?;
    assert_eq!(removed, ["example.com/b:1"]);
    // Still named by its digest: content stays until every name is gone.
    assert!(store.layer_dir(&ib.image.layers[1].diff_id).is_dir());
    store.remove(&ib.image.config.to_string(), &Default::default())?;
    assert!(!store.layer_dir(&ib.image.layers[1].diff_id).exists());
    assert!(store.layer_dir(&shared).is_dir(), "a's layer stays");
    assert!(store.has_blob(&ia.image.config));
    assert!(matches!(
        store.remove("example.com/b:1", &Default::default()),
        Err(Error::ImageNotKnown(_))
    ));
    Ok(())
}

#[test]
fn gc_frees_the_least_recently_used_images_above_the_high_threshold() -> Result<()> {
    let work = tempfile::tempdir()?;
    let disk = Tmpfs::mount(&work.path().join("disk"), "32m")?;
    let store = store_in(&disk.0)?;
    let mut ids = Vec::new();
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        let layout = work.path().join(name);
        let layer = tar_layer(&[Entry::File("data", noise(1_100_000, i as u64 + 1), 0o644)])?;
        write_layout(
            &layout,
            "1",
            Some(&format!("example.com/{name}:1")),
            &[TestImage {
                arch: "amd64",
                layers: vec![layer],
                entrypoint: vec!["/x"],
                cmd: vec![],
            }],
        )?;
        ids.push(
            import_path(&store, &layout, &amd64(), None)?
                .remove(0)
                .image
                .config,
        );
    }
    // Shrink the file system around what is stored, to 90 % use.
    let st = nix::sys::statvfs::statvfs(&disk.0)?;
    let used = (st.blocks() - st.blocks_free()) as u64 * st.fragment_size() as u64;
    disk.resize(&format!("{}k", used * 10 / 9 / 1024 + 1))?;
    // a used long ago, b recently, c never, d running now.
    store.touch(&ids[0], 100)?;
    store.touch(&ids[1], 200)?;
    store.touch(&ids[3], 300)?;
    let in_use = [ids[3].clone()].into();
    let report = store.gc(85, 80, &in_use)?;
    assert!(report.usage_percent >= 85, "{report:?}");
    assert!(
        report.freed >= report.to_free && report.to_free > 0,
        "{report:?}"
    );
    assert_eq!(
        report.removed[0], ids[2],
        "the never-used image goes first: {report:?}"
    );
    assert!(!report.removed.contains(&ids[3]), "never the image in use");
    assert!(store.get("example.com/c:1")?.is_none());
    assert!(store.get("example.com/d:1")?.is_some());
    // Now below the threshold: nothing more to do.
    let again = store.gc(85, 80, &in_use)?;
    assert!(again.removed.is_empty(), "{again:?}");
    Ok(())
}
