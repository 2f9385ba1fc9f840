//! The node's content-addressed image store, under `<data dir>/images/` (0700, files 0600):
//!
//! ```text
//! blobs/sha256/<hex>     manifests, indexes, configs, compressed layers — by digest
//! layers/sha256/<hex>/   each layer unpacked (an overlay lower dir) — by diff-id
//! ingest/                temporary files and directories being written
//! index.json             reference → image record (manifest, config, layers); last use
//! leases/<random>        content a pull or import is about to record (flock'd by its holder)
//! pins/<pod uid>         content the containers of a pod run from
//! lock                   flock'd while index.json, leases or pins are read-modified-written
//! ```
//!
//! The rule that makes it safe: nothing reaches its final name until it has been verified.
//! A blob is written under `ingest/`, hashed as it is written, compared with the digest and size
//! its descriptor names, synced, and only then renamed to `blobs/…`; a layer is unpacked into
//! `ingest/` and renamed into `layers/` only when its uncompressed stream hashed to the diff-id
//! the image config names. So a present blob or layer is a verified one, an interrupted pull
//! leaves only `ingest/` debris (swept at open), and the next pull reuses what was finished.
//! Records are written last, under the lock, after checking that their content is all there.
//! Processes (the agent and `paddock image …`) share a store through those renames and the lock;
//! within a process, concurrent pulls of one reference share one transfer ([`crate::pull`]).
//! Removing an image prunes the content no record, lease or pin names ([`lease`]), so a pull
//! racing a removal or the image GC, and a container whose image is removed, keep theirs.
//! [`Store::gc`] is the kubelet's image garbage collection over this store.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, Result};

pub mod lease;
pub use lease::Lease;

/// One image as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// What the reference resolved to at the registry (an index or a manifest): the digest
    /// in `status.containerStatuses[].imageID` (`name@<repo digest>`).
    pub repo_digest: Digest,
    /// The manifest for this node's platform.
    pub manifest: Digest,
    /// The config: the image ID (`sha256:…`, what `crictl images` shows as IMAGE ID).
    pub config: Digest,
    /// The layers, base first.
    pub layers: Vec<LayerRecord>,
    /// Bytes of config and compressed layers (what the kubelet reports as the image size).
    pub size: u64,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerRecord {
    /// The (compressed) blob's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// The uncompressed tar's digest, naming the unpacked directory.
    pub diff_id: Digest,
    /// The chain ID (the layer stack up to and including this one), as containerd names
    /// snapshots.
    pub chain_id: Digest,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    images: BTreeMap<String, ImageRecord>,
    /// Image ID → when a container last used it (Unix seconds), for garbage collection.
    #[serde(default)]
    last_used: BTreeMap<String, u64>,
}

/// What [`Store::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The image file system's use, in percent, when it started.
    pub usage_percent: u64,
    /// Bytes it set out to free (0 below the high threshold).
    pub to_free: u64,
    /// Bytes of the images it removed (their sizes, as the kubelet counts).
    pub freed: u64,
    /// The image IDs removed.
    pub removed: Vec<Digest>,
}

/// The kubelet's `freeSpace` choice: images not in use, least recently used first (never used
/// counts as oldest), until `to_free` bytes. `images` is (image ID, size, last used).
pub fn plan_gc(
    images: &[(Digest, u64, u64)],
    in_use: &BTreeSet<Digest>,
    to_free: u64,
) -> (Vec<Digest>, u64) {
    let mut candidates: Vec<&(Digest, u64, u64)> = images
        .iter()
        .filter(|(id, _, _)| !in_use.contains(id))
        .collect();
    candidates.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
    let (mut chosen, mut freed) = (Vec::new(), 0u64);
    for (id, size, _) in candidates {
        if freed >= to_free {
            break;
        }
        chosen.push(id.clone());
        freed += size;
    }
    (chosen, freed)
}

/// The image store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    root: Arc<PathBuf>,
    /// Set on a writer's handle ([`Store::leased`]).
    lease: Option<Lease>,
}

/// The chain IDs of a layer stack (OCI image spec: `ChainID(L0) = DiffID(L0)`,
/// `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::sha256_of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

fn mkdir_private(p: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| Error::io("create directory", p, e))
}

fn random_name(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

impl Store {
    /// Opens (creating) the store at `root` (normally `<data dir>/images`), makes it private,
    /// and sweeps what an interrupted writer left in `ingest/`. Blocking: call from a blocking
    /// context.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root: PathBuf = root.into();
        for sub in [
            "",
            "blobs/sha256",
            "layers/sha256",
            "ingest",
            lease::LEASES,
            lease::PINS,
        ] {
            mkdir_private(&root.join(sub))?;
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("make private", &root, e))?;
        let store = Store {
            root: Arc::new(root),
            lease: None,
        };
        store.sweep_ingest();
        Ok(store)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    // Entries in ingest/ older than an hour belong to no live writer (a pull writes
    // continuously); younger ones may be another process's pull under way.
    fn sweep_ingest(&self) {
        let dir = self.root.join("ingest");
        let Ok(rd) = fs::read_dir(&dir) else { return };
        for e in rd.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            if old {
                let p = e.path();
                let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
                tracing::debug!(path = %p.display(), "removed stale ingest entry");
            }
        }
    }

    /// Where a verified blob lives.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    /// Whether the blob is stored (and so was verified).
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Reads a stored blob of at most `max` bytes.
    pub fn read_blob(&self, d: &Digest, max: u64) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let len = fs::metadata(&p)
            .map_err(|e| Error::io("stat", &p, e))?
            .len();
        if len > max {
            return Err(Error::Format(format!(
                "blob {d} is {len} bytes, over the {max} limit"
            )));
        }
        fs::read(&p).map_err(|e| Error::io("read", &p, e))
    }

    /// Where a layer's unpacked directory lives: an overlay lower dir.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root
            .join("layers")
            .join(diff_id.algorithm().as_str())
            .join(diff_id.hex())
    }

    /// The overlay `lowerdir` list for an image: top layer first, as overlayfs wants it.
    pub fn lower_dirs(&self, image: &ImageRecord) -> Vec<PathBuf> {
        image
            .layers
            .iter()
            .rev()
            .map(|l| self.layer_dir(&l.diff_id))
            .collect()
    }

    /// A fresh writer for one blob.
    pub fn blob_writer(&self, what: impl Into<String>) -> Result<BlobWriter> {
        let path = self.root.join("ingest").join(random_name("blob"));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        Ok(BlobWriter {
            store: self.clone(),
            what: what.into(),
            path,
            file: Some(std::io::BufWriter::with_capacity(256 << 10, file)),
            hasher: None,
            algorithm: Algorithm::Sha256,
            written: 0,
            limit: None,
        })
    }

    /// Stores `bytes`, verified against `expected` when given. Blocking.
    pub fn put_blob(&self, what: &str, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        if let Some(d) = expected
            && self.claim_blob(d)?
        {
            // Still verify the caller's bytes: a wrong manifest must not be "found" by name.
            let mut h = Hasher::new(d.algorithm());
            h.update(bytes);
            let actual = h.finish();
            if &actual != d {
                return Err(Error::DigestMismatch {
                    what: what.to_string(),
                    expected: d.clone(),
                    actual,
                });
            }
            return Ok(d.clone());
        }
        let mut w = self.blob_writer(what)?;
        if let Some(d) = expected {
            w = w.expect(d, bytes.len() as u64);
        }
        w.write(bytes)?;
        w.commit()
    }

    /// A temporary directory under `ingest/` for unpacking (renamed into place by
    /// [`Store::commit_layer`]).
    pub fn temp_dir(&self) -> Result<PathBuf> {
        let p = self.root.join("ingest").join(random_name("layer"));
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&p)
            .map_err(|e| Error::io("create directory", &p, e))?;
        Ok(p)
    }

    /// Moves a verified unpacked layer into place (dropping it if another writer won).
    pub fn commit_layer(&self, tmp: &Path, diff_id: &Digest) -> Result<()> {
        self.lease_digests(&[diff_id])?;
        let dst = self.layer_dir(diff_id);
        if dst.exists() {
            let _ = fs::remove_dir_all(tmp);
            return Ok(());
        }
        match fs::rename(tmp, &dst) {
            Ok(()) => Ok(()),
            Err(_) if dst.exists() => {
                let _ = fs::remove_dir_all(tmp);
                Ok(())
            }
            Err(e) => Err(Error::io("rename", tmp, e)),
        }
    }

    /// The store's lock (see the module doc), held until dropped. Blocking.
    fn lock(&self) -> Result<nix::fcntl::Flock<fs::File>> {
        let lock_path = self.root.join("lock");
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| Error::io("open", &lock_path, e))?;
        nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::io("lock", &lock_path, e.into()))
    }

    /// Replaces `path` with `bytes` (written under `ingest/`, synced, renamed).
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self.root.join("ingest").join(random_name("write"));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("write", &tmp, e))
            .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e)));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    fn with_index<T>(&self, f: impl FnOnce(&mut IndexFile) -> Result<(T, bool)>) -> Result<T> {
        let _lock = self.lock()?;
        let path = self.root.join("index.json");
        let mut index: IndexFile = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Format(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => IndexFile::default(),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let (out, changed) = f(&mut index)?;
        if changed {
            let bytes = serde_json::to_vec_pretty(&index)
                .map_err(|e| Error::Format(format!("encoding the image index: {e}")))?;
            self.write_atomically(&path, &bytes)?;
        }
        Ok(out)
    }

    /// Records `names` (normalised references) → `image`, after checking its content is all
    /// present. Blocking.
    pub fn record(&self, names: &[String], image: &ImageRecord) -> Result<()> {
        self.with_index(|idx| {
            for d in [&image.repo_digest, &image.manifest, &image.config] {
                if !self.has_blob(d) {
                    return Err(Error::Format(format!(
                        "blob {d} disappeared before the image was recorded (removed concurrently?); pull again"
                    )));
                }
            }
            for l in &image.layers {
                if !self.layer_dir(&l.diff_id).is_dir() {
                    return Err(Error::Format(format!(
                        "layer {} disappeared before the image was recorded; pull again",
                        l.diff_id
                    )));
                }
            }
            for n in names {
                idx.images.insert(n.clone(), image.clone());
            }
            Ok(((), true))
        })
    }

    /// The record for a normalised reference (`docker.io/library/busybox:latest`,
    /// `…@sha256:…`), or for an image ID (`sha256:…` of the config).
    pub fn get(&self, name: &str) -> Result<Option<ImageRecord>> {
        self.with_index(|idx| {
            let found = idx.images.get(name).cloned().or_else(|| {
                idx.images
                    .values()
                    .find(|r| r.config.to_string() == name)
                    .cloned()
            });
            Ok((found, false))
        })
    }

    /// The image a pod's `image:` names, if stored: the reference normalised as containerd's
    /// CRI does (`nginx` → `docker.io/library/nginx:latest`), or an image ID.
    pub fn resolve(
        &self,
        image: &str,
    ) -> Result<Option<(crate::reference::Reference, ImageRecord)>> {
        let r = crate::reference::Reference::parse_docker_ref(image).map_err(|reason| {
            Error::InvalidReference {
                image: image.to_string(),
                reason,
            }
        })?;
        Ok(self.get(&r.to_string())?.map(|rec| (r, rec)))
    }

    /// An image's config (Entrypoint, Cmd, Env, WorkingDir, User, diff-ids).
    pub fn config(&self, image: &ImageRecord) -> Result<crate::config::ImageConfigFile> {
        crate::config::ImageConfigFile::parse(
            &self.read_blob(&image.config, crate::manifest::MAX_CONFIG_BYTES)?,
        )
    }

    /// A file of the image's root file system as the overlay would show it (the topmost layer
    /// that has it; a whiteout or an opaque directory above hides the ones below), without
    /// mounting anything: how the agent reads `/etc/passwd` and `/etc/group` to resolve a
    /// `USER` name. `None` if absent; symlinks are not followed (an error), nor are files over
    /// `max` bytes read.
    pub fn read_image_file(
        &self,
        image: &ImageRecord,
        path: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>> {
        use std::os::unix::fs::FileTypeExt;
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.is_empty() || parts.contains(&"..") {
            return Err(Error::Format(format!(
                "{path:?} is not a plain absolute path"
            )));
        }
        for dir in self.lower_dirs(image) {
            let mut cur = dir.clone();
            let mut opaque_above = false;
            for (i, part) in parts.iter().enumerate() {
                cur.push(part);
                let meta = match fs::symlink_metadata(&cur) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) => return Err(Error::io("stat", &cur, e)),
                };
                let ft = meta.file_type();
                if ft.is_char_device() && meta.rdev() == 0 {
                    return Ok(None); // whited out here
                }
                let last = i + 1 == parts.len();
                if last {
                    if ft.is_symlink() {
                        return Err(Error::Format(format!("{path} is a symlink in the image")));
                    }
                    if !ft.is_file() {
                        return Ok(None);
                    }
                    if meta.len() > max {
                        return Err(Error::Format(format!("{path} is over {max} bytes")));
                    }
                    return fs::read(&cur)
                        .map(Some)
                        .map_err(|e| Error::io("read", &cur, e));
                }
                if !ft.is_dir() {
                    if ft.is_symlink() {
                        return Err(Error::Format(format!(
                            "{path}: {} is a symlink in the image",
                            parts[..=i].join("/")
                        )));
                    }
                    return Ok(None); // a file where a directory would be hides the rest
                }
                if xattr::get(&cur, "trusted.overlay.opaque")
                    .ok()
                    .flatten()
                    .is_some_and(|v| v == b"y")
                {
                    opaque_above = true;
                }
            }
            if opaque_above {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Notes that a container started from this image now (for [`Store::gc`]'s order).
    pub fn touch(&self, image_id: &Digest, unix_secs: u64) -> Result<()> {
        self.with_index(|idx| {
            idx.last_used.insert(image_id.to_string(), unix_secs);
            Ok(((), true))
        })
    }

    /// The capacity of the file system holding the store and the bytes available on it (to
    /// unprivileged users, as cAdvisor reports `imagefs.available`), available capped at
    /// capacity. Blocking.
    pub fn fs_usage(&self) -> Result<(u64, u64)> {
        let st = nix::sys::statvfs::statvfs(self.root.as_path())
            .map_err(|e| Error::io("statvfs", self.root.as_path(), e.into()))?;
        let frag = st.fragment_size() as u64;
        let capacity = st.blocks() as u64 * frag;
        Ok((
            capacity,
            (st.blocks_available() as u64 * frag).min(capacity),
        ))
    }

    /// The kubelet's image garbage collection: when the file system holding the store is at
    /// least `high`% used, remove images not in `in_use` (image IDs), least recently used
    /// first, until it would be at `low`% (the kubelet's defaults are 85 and 80). An error, as
    /// the kubelet's `FreeDiskSpaceFailed` event, when not enough could be freed.
    pub fn gc(&self, high: u64, low: u64, in_use: &BTreeSet<Digest>) -> Result<GcReport> {
        let (capacity, available) = self.fs_usage()?;
        if capacity == 0 {
            return Err(Error::Format(
                "invalid capacity 0 on image filesystem".into(),
            ));
        }
        let usage_percent = 100 - available * 100 / capacity;
        let mut report = GcReport {
            usage_percent,
            ..GcReport::default()
        };
        if usage_percent < high {
            return Ok(report);
        }
        report.to_free = (capacity * (100 - low.min(100)) / 100).saturating_sub(available);
        let images: Vec<(Digest, u64, u64)> = self.with_index(|idx| {
            let mut by_id: BTreeMap<Digest, (u64, u64)> = BTreeMap::new();
            for r in idx.images.values() {
                let used = idx
                    .last_used
                    .get(&r.config.to_string())
                    .copied()
                    .unwrap_or(0);
                by_id.insert(r.config.clone(), (r.size, used));
            }
            Ok((
                by_id.into_iter().map(|(id, (s, u))| (id, s, u)).collect(),
                false,
            ))
        })?;
        let (chosen, freed) = plan_gc(&images, in_use, report.to_free);
        for id in &chosen {
            self.remove(&id.to_string(), in_use)?;
        }
        report.freed = freed;
        report.removed = chosen;
        if freed < report.to_free {
            return Err(Error::Format(format!(
                "Failed to garbage collect required amount of images. Attempted to free {} bytes, but only found {freed} bytes eligible to free.",
                report.to_free
            )));
        }
        Ok(report)
    }

    /// Every name and its record.
    pub fn list(&self) -> Result<Vec<(String, ImageRecord)>> {
        self.with_index(|idx| Ok((idx.images.clone().into_iter().collect(), false)))
    }

    /// Removes a name (a reference, or an image ID: every name of that image), then the
    /// content no remaining record uses unless `keep` holds it (the agent passes what its
    /// containers use). Returns the names removed.
    pub fn remove(&self, name: &str, keep: &BTreeSet<Digest>) -> Result<Vec<String>> {
        let removed = self.with_index(|idx| {
            let mut names: Vec<String> = Vec::new();
            if idx.images.contains_key(name) {
                names.push(name.to_string());
            } else {
                names.extend(
                    idx.images
                        .iter()
                        .filter(|(_, r)| r.config.to_string() == name)
                        .map(|(n, _)| n.clone()),
                );
            }
            if names.is_empty() {
                return Err(Error::ImageNotKnown(name.to_string()));
            }
            // A record stored under both its tag and its digest goes with either name only
            // when no other name still points at it.
            for n in &names {
                idx.images.remove(n);
            }
            let live: BTreeSet<String> =
                idx.images.values().map(|r| r.config.to_string()).collect();
            idx.last_used.retain(|id, _| live.contains(id));
            self.prune_locked(idx, keep)?;
            Ok((names, true))
        })?;
        Ok(removed)
    }

    fn prune_locked(&self, idx: &IndexFile, keep: &BTreeSet<Digest>) -> Result<()> {
        let mut used: BTreeSet<String> = keep.iter().map(|d| d.hex().to_string()).collect();
        used.extend(self.held_locked()?);
        for r in idx.images.values() {
            used.insert(r.repo_digest.hex().to_string());
            used.insert(r.manifest.hex().to_string());
            used.insert(r.config.hex().to_string());
            for l in &r.layers {
                used.insert(l.digest.hex().to_string());
                used.insert(l.diff_id.hex().to_string());
            }
        }
        for sub in ["blobs/sha256", "layers/sha256"] {
            let dir = self.root.join(sub);
            let rd = fs::read_dir(&dir).map_err(|e| Error::io("read directory", &dir, e))?;
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if used.contains(&name) {
                    continue;
                }
                let p = e.path();
                let res = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
                res.map_err(|e| Error::io("remove", &p, e))?;
            }
        }
        Ok(())
    }
}

/// A blob being written: hashed as it is written, renamed into the store by
/// [`BlobWriter::commit`] only if it verifies, removed if dropped.
#[derive(Debug)]
pub struct BlobWriter {
    store: Store,
    what: String,
    path: PathBuf,
    file: Option<std::io::BufWriter<fs::File>>,
    hasher: Option<Hasher>,
    algorithm: Algorithm,
    written: u64,
    limit: Option<(Digest, u64)>,
}

impl BlobWriter {
    /// Requires the content to be exactly `size` bytes hashing to `digest`.
    pub fn expect(mut self, digest: &Digest, size: u64) -> Self {
        self.algorithm = digest.algorithm();
        self.limit = Some((digest.clone(), size));
        self
    }

    /// Appends bytes; refuses to grow past the expected size.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let algorithm = self.algorithm;
        let hasher = self.hasher.get_or_insert_with(|| Hasher::new(algorithm));
        self.written += data.len() as u64;
        if let Some((_, size)) = &self.limit
            && self.written > *size
        {
            return Err(Error::SizeMismatch {
                what: self.what.clone(),
                expected: *size,
                actual: self.written,
            });
        }
        hasher.update(data);
        let path = &self.path;
        match &mut self.file {
            Some(f) => f.write_all(data).map_err(|e| Error::io("write", path, e)),
            None => Err(Error::io(
                "write",
                path,
                std::io::ErrorKind::BrokenPipe.into(),
            )),
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Verifies, syncs and moves the blob into place; returns its digest.
    pub fn commit(mut self) -> Result<Digest> {
        let hasher = self
            .hasher
            .take()
            .unwrap_or_else(|| Hasher::new(self.algorithm));
        let actual = hasher.finish();
        if let Some((expected, size)) = &self.limit {
            if self.written != *size {
                return Err(Error::SizeMismatch {
                    what: self.what.clone(),
                    expected: *size,
                    actual: self.written,
                });
            }
            if &actual != expected {
                return Err(Error::DigestMismatch {
                    what: self.what.clone(),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let Some(buf) = self.file.take() else {
            return Err(Error::io(
                "commit",
                &self.path,
                std::io::ErrorKind::BrokenPipe.into(),
            ));
        };
        let file = buf
            .into_inner()
            .map_err(|e| Error::io("write", &self.path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io("sync", &self.path, e))?;
        drop(file);
        self.store.lease_digests(&[&actual])?;
        let dst = self.store.blob_path(&actual);
        fs::rename(&self.path, &dst).map_err(|e| Error::io("rename", &self.path, e))?;
        Ok(actual)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() || self.path.exists() {
            self.file = None;
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_renamed_into_place_only_when_it_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("images")).expect("open");
        let good = Digest::sha256_of(b"hello");
        let mut w = store.blob_writer("t").expect("writer").expect(&good, 5);
        w.write(b"hellO").expect("write");
        assert!(matches!(w.commit(), Err(Error::DigestMismatch { .. })));
        let mut w = store.blob_writer("t").expect("writer").expect(&good, 5);
        assert!(matches!(
            w.write(b"hello!"),
            Err(Error::SizeMismatch { .. })
        ));
        drop(w);
        let w = store.blob_writer("t").expect("writer").expect(&good, 5);
        assert!(matches!(w.commit(), Err(Error::SizeMismatch { .. })));
        assert!(!store.has_blob(&good));
        assert_eq!(
            fs::read_dir(store.root().join("ingest"))
                .expect("ingest")
                .count(),
            0
        );
        assert_eq!(
            store.put_blob("t", b"hello", Some(&good)).expect("put"),
            good
        );
        assert!(store.has_blob(&good));
        // A wrong body under a stored digest is still refused.
        assert!(store.put_blob("t", b"other", Some(&good)).is_err());
    }

    #[test]
    fn open_sweeps_stale_ingest_debris_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("images");
        let store = Store::open(&root).expect("open");
        let old = store.root().join("ingest/blob-old");
        let young = store.root().join("ingest/blob-young");
        fs::write(&old, b"partial").expect("write");
        fs::write(&young, b"partial").expect("write");
        let two_hours_ago = nix::sys::time::TimeSpec::new(
            (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs()
                - 7200) as i64,
            0,
        );
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &old,
            &two_hours_ago,
            &two_hours_ago,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .expect("utimensat");
        Store::open(&root).expect("reopen");
        assert!(!old.exists(), "an interrupted writer's file is swept");
        assert!(young.exists(), "a live writer's file is left alone");
        assert_eq!(
            fs::metadata(&root).expect("meta").permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn gc_removes_least_recently_used_images_not_in_use() {
        let d = |s: &str| Digest::sha256_of(s.as_bytes());
        let images = vec![
            (d("new"), 100, 300),
            (d("old"), 100, 100),
            (d("never"), 50, 0),
            (d("running"), 1000, 50),
        ];
        let in_use: BTreeSet<Digest> = [d("running")].into();
        assert_eq!(
            plan_gc(&images, &in_use, 120),
            (vec![d("never"), d("old")], 150)
        );
        assert_eq!(plan_gc(&images, &in_use, 0), (vec![], 0));
        let (all, freed) = plan_gc(&images, &in_use, 10_000);
        assert_eq!((all.len(), freed), (3, 250), "never the image in use");
    }

    #[test]
    fn gc_below_the_high_threshold_does_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("images")).expect("open");
        let r = store.gc(101, 100, &BTreeSet::new()).expect("gc");
        assert_eq!((r.to_free, r.freed, r.removed.len()), (0, 0, 0));
        assert!(r.usage_percent <= 100);
    }

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
    }
}
