//! Importing images without a registry: OCI image layout directories (`oci-layout`,
//! `index.json`, `blobs/`) and tar archives of them, and `docker save` archives
//! (`manifest.json` with `Config`, `RepoTags`, `Layers`). Everything copied is verified against
//! its digest on the way into the store (an OCI layout's blobs against their names, a docker
//! save's against the manifest this import writes for it), layers are unpacked and verified
//! against the config's diff-ids, and only then are the names recorded — the same guarantees as
//! a pull. An archive is first extracted under the store's `ingest/` (regular files,
//! directories and symlinks only, every name kept inside the extraction directory).
//!
//! Names: an OCI layout entry is named by its `io.containerd.image.name` annotation, else by
//! `org.opencontainers.image.ref.name` when that is a full reference; a bare tag there (what
//! `skopeo copy … oci:DIR:TAG` writes) needs the caller's base name (`NAME` → `NAME:TAG`).
//! A docker save entry is named by its `RepoTags`.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::ImageConfigFile;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, Document, Manifest, Platform};
use crate::reference::Reference;
use crate::store::{ImageRecord, LayerRecord, Store, chain_ids};

/// One image an import recorded.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The names recorded (normalised references).
    pub names: Vec<String>,
    /// The record.
    pub image: ImageRecord,
}

/// Imports `path` (a directory or a tar archive, possibly gzip-compressed). `base_name` names
/// OCI entries that carry only a tag. Blocking.
pub fn import_path(
    store: &Store,
    path: &Path,
    platform: &Platform,
    base_name: Option<&str>,
) -> Result<Vec<Imported>> {
    let meta = fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
    // What the import finds present or stores is leased until it is recorded.
    let store = &store.leased()?;
    if meta.is_dir() {
        return import_dir(store, path, platform, base_name);
    }
    let tmp = store.temp_dir()?;
    let res =
        extract_archive(path, &tmp).and_then(|()| import_dir(store, &tmp, platform, base_name));
    let _ = fs::remove_dir_all(&tmp);
    res
}

fn import_dir(
    store: &Store,
    dir: &Path,
    platform: &Platform,
    base_name: Option<&str>,
) -> Result<Vec<Imported>> {
    if dir.join("manifest.json").is_file() && !dir.join("index.json").is_file() {
        return import_docker_save(store, dir);
    }
    if dir.join("index.json").is_file() {
        // Docker ≥ 25 writes both; its manifest.json has the RepoTags, the blobs are OCI.
        if dir.join("manifest.json").is_file() {
            return import_docker_save(store, dir);
        }
        return import_oci(store, dir, platform, base_name);
    }
    Err(Error::Format(format!(
        "{}: neither an OCI image layout (index.json) nor a docker save archive (manifest.json)",
        dir.display()
    )))
}

/// A file inside `dir` named by an archive's own metadata, which must stay inside it.
fn inside(dir: &Path, rel: &str) -> Result<PathBuf> {
    let base = dir
        .canonicalize()
        .map_err(|e| Error::io("resolve", dir, e))?;
    let p = base.join(rel);
    let real = p.canonicalize().map_err(|e| Error::io("open", &p, e))?;
    if !real.starts_with(&base) {
        return Err(Error::Format(format!("{rel:?} points outside the archive")));
    }
    Ok(real)
}

fn blob_in_layout(dir: &Path, d: &Digest) -> Result<PathBuf> {
    inside(
        dir,
        &format!("blobs/{}/{}", d.algorithm().as_str(), d.hex()),
    )
}

/// Copies a file into the store, verified against `expected` (digest and size) if given.
fn copy_blob(
    store: &Store,
    src: &Path,
    what: &str,
    expected: Option<(&Digest, u64)>,
) -> Result<Digest> {
    if let Some((d, _)) = expected
        && store.claim_blob(d)?
    {
        return Ok(d.clone());
    }
    let mut w = store.blob_writer(what)?;
    if let Some((d, size)) = expected {
        w = w.expect(d, size);
    }
    let f = fs::File::open(src).map_err(|e| Error::io("open", src, e))?;
    let mut r = BufReader::with_capacity(256 << 10, f);
    loop {
        let buf = r.fill_buf().map_err(|e| Error::io("read", src, e))?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        w.write(buf)?;
        r.consume(n);
    }
    w.commit()
}

#[derive(Deserialize)]
struct OciIndex {
    manifests: Vec<Descriptor>,
}

fn import_oci(
    store: &Store,
    dir: &Path,
    platform: &Platform,
    base_name: Option<&str>,
) -> Result<Vec<Imported>> {
    let idx_path = dir.join("index.json");
    let bytes = read_small(&idx_path, manifest::MAX_MANIFEST_BYTES)?;
    let idx: OciIndex = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Format(format!("{}: invalid index: {e}", idx_path.display())))?;
    let mut out = Vec::new();
    for top in idx.manifests {
        // (base name, the layout's tag) when the name is made of both.
        let mut composed: Option<(&str, &str)> = None;
        let name = top
            .annotations
            .get("io.containerd.image.name")
            .cloned()
            .or_else(|| {
                top.annotations
                    .get("org.opencontainers.image.ref.name")
                    .map(|n| match base_name {
                        Some(b) if !n.contains(['/', ':', '@']) => {
                            composed = Some((b, n));
                            format!("{b}:{n}")
                        }
                        _ => n.clone(),
                    })
            });
        let Some(name) = name else {
            return Err(Error::Format(format!(
                "image {} in {} has no name (no io.containerd.image.name or org.opencontainers.image.ref.name annotation)",
                top.digest,
                dir.display()
            )));
        };
        if !name.contains(['/', ':', '@']) {
            return Err(Error::Format(format!(
                "image {} in {} is named only by the tag {name:?}: give a base name for it",
                top.digest,
                dir.display()
            )));
        }
        let reference = Reference::parse_docker_ref(&name).map_err(|reason| match composed {
            // Say where the name came from: the caller's base name gets the layout's tag.
            Some((base, tag)) => Error::Format(format!(
                "couldn't parse image name {}: the base name {} (a repository without a tag) with the tag {} of the layout's org.opencontainers.image.ref.name: {reason}",
                gofmt::quote(&name),
                gofmt::quote(base),
                gofmt::quote(tag),
            )),
            None => Error::InvalidReference {
                image: name.clone(),
                reason,
            },
        })?;
        let top_digest = copy_blob(
            store,
            &blob_in_layout(dir, &top.digest)?,
            &format!("manifest-{}", top.digest),
            Some((&top.digest, top.size)),
        )?;
        let doc = Document::parse(
            &store.read_blob(&top_digest, manifest::MAX_MANIFEST_BYTES)?,
            &top.media_type,
        )?;
        let (manifest_digest, m) = match doc {
            Document::Manifest(m) => (top_digest.clone(), m),
            Document::Index(i) => {
                let Some(d) = i.select(platform).cloned() else {
                    return Err(Error::NoMatchingPlatform {
                        digest: top_digest,
                        platform: platform.to_string(),
                    });
                };
                let md = copy_blob(
                    store,
                    &blob_in_layout(dir, &d.digest)?,
                    &format!("manifest-{}", d.digest),
                    Some((&d.digest, d.size)),
                )?;
                match Document::parse(
                    &store.read_blob(&md, manifest::MAX_MANIFEST_BYTES)?,
                    &d.media_type,
                )? {
                    Document::Manifest(m) => (md, m),
                    Document::Index(_) => {
                        return Err(Error::Format(format!(
                            "index entry {md} is itself an index"
                        )));
                    }
                }
            }
        };
        for d in std::iter::once(&m.config).chain(&m.layers) {
            copy_blob(
                store,
                &blob_in_layout(dir, &d.digest)?,
                &d.digest.to_string(),
                Some((&d.digest, d.size)),
            )?;
        }
        out.push(finish(store, &reference, top_digest, manifest_digest, &m)?);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn sniff_layer_type(p: &Path) -> Result<&'static str> {
    let mut magic = [0u8; 4];
    let mut f = fs::File::open(p).map_err(|e| Error::io("open", p, e))?;
    let n = f.read(&mut magic).map_err(|e| Error::io("read", p, e))?;
    Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        manifest::OCI_LAYER_GZIP
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        manifest::OCI_LAYER_ZSTD
    } else {
        manifest::OCI_LAYER_TAR
    })
}

fn import_docker_save(store: &Store, dir: &Path) -> Result<Vec<Imported>> {
    let mpath = dir.join("manifest.json");
    let entries: Vec<SaveEntry> =
        serde_json::from_slice(&read_small(&mpath, manifest::MAX_MANIFEST_BYTES)?).map_err(
            |e| {
                Error::Format(format!(
                    "{}: invalid docker save manifest: {e}",
                    mpath.display()
                ))
            },
        )?;
    let mut out = Vec::new();
    for e in entries {
        let cpath = inside(dir, &e.config)?;
        let csize = fs::metadata(&cpath)
            .map_err(|er| Error::io("stat", &cpath, er))?
            .len();
        let config = copy_blob(store, &cpath, "config", None)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let lp = inside(dir, l)?;
            let size = fs::metadata(&lp)
                .map_err(|er| Error::io("stat", &lp, er))?
                .len();
            let media_type = sniff_layer_type(&lp)?.to_string();
            let digest = copy_blob(store, &lp, &format!("layer {l}"), None)?;
            layers.push(Descriptor {
                media_type,
                digest,
                size,
                platform: None,
                annotations: Default::default(),
            });
        }
        // The manifest a registry would have served: written here, as containerd's import does.
        let m = Manifest {
            schema_version: 2,
            media_type: Some(manifest::OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: manifest::OCI_CONFIG.into(),
                digest: config.clone(),
                size: csize,
                platform: None,
                annotations: Default::default(),
            },
            layers,
            annotations: Default::default(),
        };
        let mbytes = serde_json::to_vec(&m)
            .map_err(|er| Error::Format(format!("encoding a manifest: {er}")))?;
        let md = store.put_blob("manifest", &mbytes, None)?;
        let tags = e.repo_tags.unwrap_or_default();
        if tags.is_empty() {
            return Err(Error::Format(format!(
                "image {config} in {} has no RepoTags: nothing to name it by",
                dir.display()
            )));
        }
        let mut imported: Option<Imported> = None;
        for t in tags {
            let r = Reference::parse_docker_ref(&t).map_err(|reason| Error::InvalidReference {
                image: t.clone(),
                reason,
            })?;
            let i = finish(store, &r, md.clone(), md.clone(), &m)?;
            match &mut imported {
                Some(prev) => prev.names.extend(i.names),
                None => imported = Some(i),
            }
        }
        out.extend(imported);
    }
    Ok(out)
}

/// Config checked, layers unpacked and verified, names recorded.
fn finish(
    store: &Store,
    reference: &Reference,
    repo_digest: Digest,
    manifest_digest: Digest,
    m: &Manifest,
) -> Result<Imported> {
    let config =
        ImageConfigFile::parse(&store.read_blob(&m.config.digest, manifest::MAX_CONFIG_BYTES)?)?;
    if config.rootfs.diff_ids.len() != m.layers.len() {
        return Err(Error::Format(format!(
            "image config lists {} diff-ids for {} layers",
            config.rootfs.diff_ids.len(),
            m.layers.len()
        )));
    }
    for (l, diff) in m.layers.iter().zip(&config.rootfs.diff_ids) {
        crate::pull::ensure_unpacked(store, l, diff)?;
    }
    let chains = chain_ids(&config.rootfs.diff_ids);
    let image = ImageRecord {
        repo_digest: repo_digest.clone(),
        manifest: manifest_digest,
        config: m.config.digest.clone(),
        layers: m
            .layers
            .iter()
            .zip(config.rootfs.diff_ids.iter().zip(chains))
            .map(|(l, (diff, chain))| LayerRecord {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                diff_id: diff.clone(),
                chain_id: chain,
            })
            .collect(),
        size: m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>(),
    };
    let mut names = vec![reference.to_string()];
    let pinned = reference.with_digest_only(repo_digest).to_string();
    if !names.contains(&pinned) {
        names.push(pinned);
    }
    store.record(&names, &image)?;
    Ok(Imported { names, image })
}

fn read_small(p: &Path, max: u64) -> Result<Vec<u8>> {
    let len = fs::metadata(p).map_err(|e| Error::io("stat", p, e))?.len();
    if len > max {
        return Err(Error::Format(format!(
            "{} is {len} bytes, over the {max} limit",
            p.display()
        )));
    }
    fs::read(p).map_err(|e| Error::io("read", p, e))
}

/// Extracts an image archive: regular files, directories and symlinks, every name resolved
/// inside `dest` (as layer unpacking does); anything else is refused.
fn extract_archive(path: &Path, dest: &Path) -> Result<()> {
    let f = fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut r = BufReader::with_capacity(256 << 10, f);
    let gz = r
        .fill_buf()
        .map_err(|e| Error::io("read", path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn Read> = if gz {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let root = dest
        .canonicalize()
        .map_err(|e| Error::io("resolve", dest, e))?;
    let bad = |detail: String| Error::Format(format!("{}: {detail}", path.display()));
    let mut ar = tar::Archive::new(input);
    for entry in ar
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| bad(format!("reading: {e}")))?;
        let name = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let mut rel = PathBuf::new();
        for c in name.components() {
            match c {
                std::path::Component::Normal(n) => rel.push(n),
                std::path::Component::CurDir => {}
                _ => return Err(bad(format!("entry {} leaves the archive", name.display()))),
            }
        }
        if rel.as_os_str().is_empty() {
            continue;
        }
        let parent = crate::unpack::root_path(&root, rel.parent().unwrap_or(Path::new("")))
            .map_err(|e| bad(format!("{}: {e}", name.display())))?;
        let Some(file_name) = rel.file_name() else {
            continue;
        };
        let target = parent.join(file_name);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .map_err(|e| Error::io("create directory", &parent, e))?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&target)
                .map_err(|e| Error::io("create directory", &target, e))?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let _ = fs::remove_file(&target);
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| Error::io("create", &target, e))?;
                std::io::copy(&mut entry, &mut out).map_err(|e| Error::io("write", &target, e))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| bad(e.to_string()))?
                    .ok_or_else(|| bad(format!("symlink {} without target", name.display())))?;
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| Error::io("symlink", &target, e))?;
            }
            other => {
                return Err(bad(format!(
                    "entry {} has type {:?}, not expected in an image archive",
                    name.display(),
                    other
                )));
            }
        }
    }
    Ok(())
}
