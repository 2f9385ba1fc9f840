//! Leases and pins: content that pruning (after `paddock image rm` or the agent's image GC)
//! keeps although no image record names it — yet, or any more. containerd's leases and its
//! containers' snapshot references play these parts there.
//!
//! - A **lease** covers a writer (a pull, an import) from before it looks for a blob or layer
//!   until its image is recorded. Without one, a prune in between deletes what the writer has
//!   just found present or just stored, and the record then fails ("disappeared before the
//!   image was recorded"). A writer gets one with [`Store::leased`]: a store handle whose
//!   [`Store::claim_blob`], [`Store::claim_layer`], blob commits and layer commits add the
//!   digest to its lease first. The lease is the file `leases/<random>` (one hex digest per
//!   line), flock'd shared by its holder for as long as the handle lives: a prune honours a
//!   lease file it cannot lock and deletes one it can (its holder died), so a killed pull pins
//!   nothing.
//! - A **pin** is durable: `pins/<name>` (a pod UID) lists the content of the images a pod's
//!   containers run from, their overlay lower dirs. The agent writes it before it builds a
//!   container's root and removes it with the pod's containers. It outlives the agent, whose
//!   containers keep running while it is down, so `paddock image rm` meanwhile removes the
//!   image's name and not the layers under a running container.
//!
//! Both are written and read under the store's lock, the one a prune holds: a digest added to
//! a lease before the writer looks for its content is either seen by a prune, or that prune
//! finished first and the writer finds the content missing and fetches it again.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};
use parking_lot::Mutex;

use super::{ImageRecord, Store, random_name};
use crate::digest::Digest;
use crate::error::{Error, Result};

pub(super) const LEASES: &str = "leases";
pub(super) const PINS: &str = "pins";
/// The most a lease or pin file may hold (about 15,000 digests; an image has fewer than 128
/// layers): bounds what a prune reads.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A writer's lease (see the module doc); released when the last store handle carrying it is
/// dropped.
#[derive(Debug, Clone)]
pub struct Lease(Arc<Mutex<Held>>);

#[derive(Debug)]
struct Held {
    path: PathBuf,
    /// The flock'd file; `None` once dropped.
    file: Option<Flock<fs::File>>,
    digests: BTreeSet<String>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let path = std::mem::take(&mut self.path);
        let file = self.file.take();
        let release = move || {
            let _ = fs::remove_file(&path);
            drop(file);
        };
        // Dropped with a pull's future, possibly on an async worker: unlink off it.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(release);
            }
            Err(_) => release(),
        }
    }
}

impl Lease {
    /// Adds `digests` (compared by hex, as prune compares file names). Takes the store's
    /// lock when something is new. Blocking.
    fn add(&self, store: &Store, digests: &[&Digest]) -> Result<()> {
        let mut held = self.0.lock();
        let new: Vec<String> = digests
            .iter()
            .map(|d| d.hex().to_string())
            .filter(|h| !held.digests.contains(h))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let _lock = store.lock()?;
        held.digests.extend(new);
        let text: String = held.digests.iter().map(|d| format!("{d}\n")).collect();
        let Held { path, file, .. } = &*held;
        let Some(file) = file else {
            return Err(Error::io(
                "write",
                path,
                std::io::ErrorKind::BrokenPipe.into(),
            ));
        };
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(Error::Format(format!(
                "lease {} would name more than {MAX_FILE_BYTES} bytes of digests",
                path.display()
            )));
        }
        // Rewritten in place: a rename would leave the flock on the old inode.
        file.set_len(0)
            .and_then(|()| file.write_all_at(text.as_bytes(), 0))
            .map_err(|e| Error::io("write", path, e))
    }
}

/// A pin's name must be one file name: a pod UID or similar.
fn check_pin_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::Format(format!("invalid pin name {name:?}")))
    }
}

/// One digest per line; at most [`MAX_FILE_BYTES`]; lines that are not hex are ignored.
fn read_digests(file: &mut fs::File, path: &Path, into: &mut BTreeSet<String>) -> Result<()> {
    let mut text = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| Error::io("read", path, e))?;
    into.extend(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string),
    );
    Ok(())
}

/// What an image's containers need of the store: its documents, config, blobs and layers.
fn image_digests(image: &ImageRecord) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = [&image.repo_digest, &image.manifest, &image.config]
        .into_iter()
        .map(|d| d.hex().to_string())
        .collect();
    for l in &image.layers {
        out.insert(l.digest.hex().to_string());
        out.insert(l.diff_id.hex().to_string());
    }
    out
}

impl Store {
    /// A handle on this store that leases what it claims and commits, until the last clone
    /// of it is dropped (see the module doc). Blocking.
    pub fn leased(&self) -> Result<Store> {
        let _lock = self.lock()?;
        let path = self.root.join(LEASES).join(random_name("lease"));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        let file = match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Ok(f) => f,
            Err((_, e)) => {
                let _ = fs::remove_file(&path);
                return Err(Error::io("lock", &path, e.into()));
            }
        };
        Ok(Store {
            root: self.root.clone(),
            lease: Some(Lease(Arc::new(Mutex::new(Held {
                path,
                file: Some(file),
                digests: BTreeSet::new(),
            })))),
        })
    }

    /// Leases `digests` when this handle carries a lease. Blocking.
    pub(super) fn lease_digests(&self, digests: &[&Digest]) -> Result<()> {
        match &self.lease {
            Some(l) => l.add(self, digests),
            None => Ok(()),
        }
    }

    /// Whether the blob is stored, leasing it first (so a prune cannot remove it before
    /// this handle's image is recorded). Blocking.
    pub fn claim_blob(&self, d: &Digest) -> Result<bool> {
        self.lease_digests(&[d])?;
        Ok(self.has_blob(d))
    }

    /// Whether the layer is unpacked, leasing it first. Blocking.
    pub fn claim_layer(&self, diff_id: &Digest) -> Result<bool> {
        self.lease_digests(&[diff_id])?;
        Ok(self.layer_dir(diff_id).is_dir())
    }

    /// Pins `image`'s content under `name` (added to what the pin already holds) when it is
    /// all present; an error naming what is missing otherwise. Blocking.
    pub fn pin(&self, name: &str, image: &ImageRecord) -> Result<()> {
        check_pin_name(name)?;
        let _lock = self.lock()?;
        for d in [&image.repo_digest, &image.manifest, &image.config] {
            if !self.has_blob(d) {
                return Err(Error::Format(format!(
                    "image {} was removed from the node's store (blob {d} is gone); pull it again",
                    image.config
                )));
            }
        }
        for l in &image.layers {
            if !self.layer_dir(&l.diff_id).is_dir() {
                return Err(Error::Format(format!(
                    "image {} was removed from the node's store (layer {} is gone); pull it again",
                    image.config, l.diff_id
                )));
            }
        }
        let path = self.root.join(PINS).join(name);
        let mut digests = BTreeSet::new();
        match fs::File::open(&path) {
            Ok(mut f) => read_digests(&mut f, &path, &mut digests)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("open", &path, e)),
        }
        let before = digests.len();
        digests.extend(image_digests(image));
        if digests.len() == before && before > 0 {
            return Ok(());
        }
        let text: String = digests.iter().map(|d| format!("{d}\n")).collect();
        self.write_atomically(&path, text.as_bytes())
    }

    /// Removes pin `name` (nothing if there is none), then the content that only it kept
    /// (an image removed while its containers ran). Blocking.
    pub fn unpin(&self, name: &str) -> Result<()> {
        check_pin_name(name)?;
        let path = self.root.join(PINS).join(name);
        self.with_index(|idx| {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(((), false)),
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
            self.prune_locked(idx, &BTreeSet::new())?;
            Ok(((), false))
        })
    }

    /// The names of the pins held. Blocking.
    pub fn pins(&self) -> Result<Vec<String>> {
        let dir = self.root.join(PINS);
        let rd = fs::read_dir(&dir).map_err(|e| Error::io("read directory", &dir, e))?;
        let mut out: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Everything live leases and pins hold, for a prune (which holds the lock); lease files
    /// whose holders died are removed on the way.
    pub(super) fn held_locked(&self) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        let dir = self.root.join(LEASES);
        let rd = fs::read_dir(&dir).map_err(|e| Error::io("read directory", &dir, e))?;
        for e in rd.flatten() {
            let path = e.path();
            let file = match fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("open", &path, e)),
            };
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                // Nobody holds it: its writer is gone.
                Ok(stale) => {
                    let _ = fs::remove_file(&path);
                    drop(stale);
                }
                Err((mut live, nix::errno::Errno::EWOULDBLOCK)) => {
                    read_digests(&mut live, &path, &mut out)?;
                }
                Err((_, e)) => return Err(Error::io("lock", &path, e.into())),
            }
        }
        let dir = self.root.join(PINS);
        let rd = fs::read_dir(&dir).map_err(|e| Error::io("read directory", &dir, e))?;
        for e in rd.flatten() {
            let path = e.path();
            match fs::File::open(&path) {
                Ok(mut f) => read_digests(&mut f, &path, &mut out)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("open", &path, e)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LayerRecord;

    /// An image whose blobs and layer are stored (not recorded).
    fn stored_image(store: &Store, seed: &str) -> ImageRecord {
        let put = |what: &str| {
            store
                .put_blob(what, format!("{what} {seed}").as_bytes(), None)
                .expect("put")
        };
        let (manifest, config, layer) = (put("manifest"), put("config"), put("layer"));
        let diff_id = Digest::sha256_of(format!("diff {seed}").as_bytes());
        let tmp = store.temp_dir().expect("temp");
        fs::write(tmp.join("file"), seed).expect("write");
        store.commit_layer(&tmp, &diff_id).expect("commit");
        ImageRecord {
            repo_digest: manifest.clone(),
            manifest,
            config,
            layers: vec![LayerRecord {
                digest: layer,
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                size: 1,
                diff_id: diff_id.clone(),
                chain_id: diff_id,
            }],
            size: 3,
        }
    }

    fn layer_present(store: &Store, image: &ImageRecord) -> bool {
        store.has_blob(&image.layers[0].digest)
            && store.layer_dir(&image.layers[0].diff_id).is_dir()
    }

    /// A second image made of the first's layer and documents of its own, written through
    /// `writer` the way a pull does: it finds the layer present, stores its config.
    fn second_image(writer: &Store, base: &ImageRecord) -> ImageRecord {
        let layer = &base.layers[0];
        assert!(writer.claim_blob(&layer.digest).expect("claim"));
        assert!(writer.claim_layer(&layer.diff_id).expect("claim"));
        let config = writer
            .put_blob("config", b"config second", None)
            .expect("put");
        let manifest = writer
            .put_blob("manifest", b"manifest second", None)
            .expect("put");
        ImageRecord {
            repo_digest: manifest.clone(),
            manifest,
            config,
            layers: base.layers.clone(),
            size: 3,
        }
    }

    #[test]
    fn a_pull_racing_a_removal_keeps_what_it_found_and_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("images")).expect("open");
        let old = stored_image(&store, "old");
        store.record(&["old".into()], &old).expect("record");

        // Without a lease the removal takes the shared layer and the new config from under
        // the writer, whose record then fails: the race this module closes.
        let unleased = second_image(&store, &old);
        store.remove("old", &BTreeSet::new()).expect("rm");
        assert!(!layer_present(&store, &old));
        let err = store
            .record(&["new".into()], &unleased)
            .expect_err("content gone");
        assert!(err.to_string().contains("disappeared"), "{err}");

        // With one, the same interleaving records the new image.
        let old = stored_image(&store, "old");
        store.record(&["old".into()], &old).expect("record");
        let writer = store.leased().expect("lease");
        let new = second_image(&writer, &old);
        store.remove("old", &BTreeSet::new()).expect("rm");
        assert!(layer_present(&store, &old), "the leased layer is kept");
        writer.record(&["new".into()], &new).expect("recorded");
        drop(writer);
        assert_eq!(
            fs::read_dir(store.root().join(LEASES))
                .expect("leases")
                .count(),
            0,
            "a dropped lease leaves no file"
        );
        assert!(store.get("new").expect("get").is_some());
    }

    #[test]
    fn a_lease_whose_holder_died_keeps_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("images")).expect("open");
        let img = stored_image(&store, "a");
        store.record(&["a".into()], &img).expect("record");
        // What a killed pull leaves: its lease file, with nobody holding its lock.
        let dead = store.root().join(LEASES).join("lease-dead");
        fs::write(
            &dead,
            format!(
                "{}\n{}\n",
                img.layers[0].digest.hex(),
                img.layers[0].diff_id.hex()
            ),
        )
        .expect("write");
        // A live one, held by another handle (another open file, as another process's).
        let live = store.leased().expect("lease");
        let other = stored_image(&store, "b");
        live.lease_digests(&[&other.layers[0].digest, &other.layers[0].diff_id])
            .expect("lease");
        store.remove("a", &BTreeSet::new()).expect("rm");
        assert!(!dead.exists(), "the dead lease file is removed");
        assert!(!layer_present(&store, &img), "and what it named is pruned");
        assert!(
            layer_present(&store, &other),
            "a live lease still keeps its content"
        );
    }

    #[test]
    fn a_pin_keeps_a_removed_images_layers_until_unpinned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("images")).expect("open");
        let img = stored_image(&store, "a");
        store.record(&["a".into()], &img).expect("record");
        store.pin("pod-uid-1", &img).expect("pin");
        store.pin("pod-uid-1", &img).expect("pinning twice is fine");
        assert_eq!(store.pins().expect("pins"), vec!["pod-uid-1".to_string()]);
        store.remove("a", &BTreeSet::new()).expect("rm");
        assert!(store.get("a").expect("get").is_none(), "the name is gone");
        assert!(
            layer_present(&store, &img),
            "the running container's layers are not"
        );
        assert!(store.has_blob(&img.config));
        store.unpin("pod-uid-1").expect("unpin");
        assert!(
            !layer_present(&store, &img),
            "unpinning prunes what only the pin kept"
        );
        assert!(!store.has_blob(&img.config));
        assert!(store.pins().expect("pins").is_empty());
        store.unpin("pod-uid-1").expect("unpinning twice is fine");
    }

    #[test]
    fn pins_refuse_missing_content_and_names_outside_their_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("images")).expect("open");
        let img = stored_image(&store, "a");
        store.record(&["a".into()], &img).expect("record");
        for bad in ["", "../x", "a/b", ".hidden", &"x".repeat(129)] {
            assert!(store.pin(bad, &img).is_err(), "{bad:?}");
            assert!(store.unpin(bad).is_err(), "{bad:?}");
        }
        store.remove("a", &BTreeSet::new()).expect("rm");
        let err = store.pin("pod", &img).expect_err("gone");
        assert!(
            err.to_string()
                .contains("was removed from the node's store"),
            "{err}"
        );
        assert!(store.pins().expect("pins").is_empty());
    }
}
