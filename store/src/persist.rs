//! The redb layout and its binary encoding. redb only provides durability: memory is loaded from
//! it once at open and every committed batch is one write transaction.
//!
//! Tables:
//! - `objects`: `resource\0namespace\0name` -> `mod_rev (u64 LE) ++ JSON`;
//! - `log`: `revision` -> encoded [`Event`] (kind, key, object, prev) for watch-from-revision and
//!   lists at an older revision after a restart;
//! - `meta`: `"revision"` (latest committed) and `"compacted"` (highest dropped log revision).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;

use crate::state::{Entry, State, inner_key};
use crate::{Event, EventType, Key, Revision, StoreError};

const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// Creates the file with mode 0600 if it is missing, and makes an existing one 0600: it holds
/// every object, Secrets included, so only its owner may read it.
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// An open redb file.
pub(crate) struct Db {
    db: Database,
    path: PathBuf,
}

impl Db {
    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        backend_err(&self.path, e)
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens (or creates) the file and loads the state it holds.
    pub(crate) fn open(path: &Path) -> Result<(Db, State), StoreError> {
        make_private(path).map_err(|e| backend_err(path, e))?;
        let db = Database::create(path).map_err(|e| backend_err(path, e))?;
        sync_parent_dir(path)?;
        let db = Db {
            db,
            path: path.to_path_buf(),
        };
        // Create the tables on first use so the read below finds them.
        let txn = db.db.begin_write().map_err(|e| db.err(e))?;
        {
            txn.open_table(OBJECTS).map_err(|e| db.err(e))?;
            txn.open_table(LOG).map_err(|e| db.err(e))?;
            txn.open_table(META).map_err(|e| db.err(e))?;
        }
        txn.commit().map_err(|e| db.err(e))?;
        let state = db.load()?;
        Ok((db, state))
    }

    /// Opens the file again after a failure (see `writer.rs`), without loading it: the handle
    /// and the revision it last committed.
    pub(crate) fn reopen(path: &Path) -> Result<(Db, Revision), StoreError> {
        make_private(path).map_err(|e| backend_err(path, e))?;
        let db = Database::create(path).map_err(|e| backend_err(path, e))?;
        let db = Db {
            db,
            path: path.to_path_buf(),
        };
        let txn = db.db.begin_read().map_err(|e| db.err(e))?;
        let meta = txn.open_table(META).map_err(|e| db.err(e))?;
        let revision = meta
            .get(META_REVISION)
            .map_err(|e| db.err(e))?
            .map_or(0, |v| v.value());
        drop(meta);
        drop(txn);
        Ok((db, revision))
    }

    /// The logged events after `rev`, oldest first; `None` when the log no longer reaches back
    /// to `rev + 1`.
    pub(crate) fn events_after(
        &self,
        rev: Revision,
    ) -> Result<Option<Vec<Arc<Event>>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let log = txn.open_table(LOG).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in log.range(rev + 1..).map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            if k.value() != rev + 1 + out.len() as u64 {
                return Ok(None);
            }
            let ev = decode_event(k.value(), v.value()).map_err(|e| self.err(e))?;
            out.push(Arc::new(ev));
        }
        Ok(Some(out))
    }

    pub(crate) fn load(&self) -> Result<State, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let mut st = State::default();
        {
            let meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let get = |k: &str| -> Result<u64, StoreError> {
                Ok(meta
                    .get(k)
                    .map_err(|e| self.err(e))?
                    .map(|v| v.value())
                    .unwrap_or(0))
            };
            st.revision = get(META_REVISION)?;
            st.compacted = get(META_COMPACTED)?;
        }
        {
            let objects = txn.open_table(OBJECTS).map_err(|e| self.err(e))?;
            for row in objects.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let key = decode_key(k.value()).map_err(|e| self.err(e))?;
                let (mod_rev, obj) = decode_object(v.value()).map_err(|e| self.err(e))?;
                st.objects
                    .entry(key.resource)
                    .or_default()
                    .insert(inner_key(&key.namespace, &key.name), Entry { obj, mod_rev });
            }
        }
        {
            let log = txn.open_table(LOG).map_err(|e| self.err(e))?;
            let mut expect = st.compacted + 1;
            for row in log.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let rev = k.value();
                if rev != expect {
                    return Err(self.err(format!(
                        "event log has a gap: expected revision {expect}, found {rev}"
                    )));
                }
                let mut ev = decode_event(rev, v.value()).map_err(|e| self.err(e))?;
                share_current(&st, &mut ev);
                st.log.push_back(Arc::new(ev));
                expect += 1;
            }
            if expect != st.revision + 1 {
                return Err(self.err(format!(
                    "event log ends at revision {} but the store is at {}",
                    expect - 1,
                    st.revision
                )));
            }
        }
        Ok(st)
    }

    /// Makes one batch durable: its events (objects + log), the new revision and an optional
    /// compaction, in one transaction committed with `Durability::Immediate`.
    pub(crate) fn commit(
        &self,
        events: &[Arc<Event>],
        compact_to: Option<Revision>,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.err(e))?;
        {
            let mut objects = txn.open_table(OBJECTS).map_err(|e| self.err(e))?;
            let mut log = txn.open_table(LOG).map_err(|e| self.err(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let mut buf = Vec::new();
            for ev in events {
                let key = encode_key(&ev.key);
                let obj_json = serde_json::to_vec(&*ev.object).map_err(|e| self.err(e))?;
                match ev.kind {
                    EventType::Added | EventType::Modified => {
                        buf.clear();
                        buf.extend_from_slice(&ev.revision.to_le_bytes());
                        buf.extend_from_slice(&obj_json);
                        objects
                            .insert(key.as_slice(), buf.as_slice())
                            .map_err(|e| self.err(e))?;
                    }
                    EventType::Deleted => {
                        objects.remove(key.as_slice()).map_err(|e| self.err(e))?;
                    }
                }
                let prev_json = match &ev.prev {
                    Some(p) => Some(serde_json::to_vec(&**p).map_err(|e| self.err(e))?),
                    None => None,
                };
                let rec =
                    encode_event(ev, &obj_json, prev_json.as_deref()).map_err(|e| self.err(e))?;
                log.insert(ev.revision, rec.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            if let Some(last) = events.last() {
                meta.insert(META_REVISION, last.revision)
                    .map_err(|e| self.err(e))?;
            }
            if let Some(rev) = compact_to {
                log.retain_in(..=rev, |_, _| false)
                    .map_err(|e| self.err(e))?;
                meta.insert(META_COMPACTED, rev).map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
    }
}

/// Makes an event whose object is still the current state share the object's allocation, so a
/// reloaded log does not double the memory of recently written objects.
fn share_current(st: &State, ev: &mut Event) {
    if ev.kind == EventType::Deleted {
        return;
    }
    let entry = st
        .objects
        .get(&ev.key.resource)
        .and_then(|m| m.get(&inner_key(&ev.key.namespace, &ev.key.name)));
    if let Some(e) = entry
        && e.mod_rev == ev.revision
        && e.obj == ev.object
    {
        ev.object = e.obj.clone();
    }
}

/// A newly created file survives power loss only once its directory entry is durable too.
fn sync_parent_dir(path: &Path) -> Result<(), StoreError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| backend_err(path, format!("syncing the directory: {e}")))
}

fn backend_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{}: {e}", path.display()))
}

fn encode_key(key: &Key) -> Vec<u8> {
    let mut v = Vec::with_capacity(key.resource.len() + key.namespace.len() + key.name.len() + 2);
    v.extend_from_slice(key.resource.as_bytes());
    v.push(0);
    v.extend_from_slice(key.namespace.as_bytes());
    v.push(0);
    v.extend_from_slice(key.name.as_bytes());
    v
}

fn decode_key(b: &[u8]) -> Result<Key, String> {
    let s = std::str::from_utf8(b).map_err(|e| format!("object key is not UTF-8: {e}"))?;
    let mut parts = s.splitn(3, '\0');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(r), Some(ns), Some(n)) => Ok(Key::new(r, ns, n)),
        _ => Err(format!("malformed object key {s:?}")),
    }
}

fn decode_object(b: &[u8]) -> Result<(Revision, Arc<Value>), String> {
    let (rev, json) = b
        .split_first_chunk::<8>()
        .ok_or_else(|| "object record too short".to_string())?;
    let obj: Value =
        serde_json::from_slice(json).map_err(|e| format!("object record is not JSON: {e}"))?;
    Ok((u64::from_le_bytes(*rev), Arc::new(obj)))
}

/// `kind u8, then length-prefixed (u32 LE) resource, namespace, name, object JSON, then
/// has_prev u8 and the length-prefixed prev JSON`.
fn encode_event(ev: &Event, obj_json: &[u8], prev_json: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let mut v = Vec::with_capacity(obj_json.len() + prev_json.map_or(0, <[u8]>::len) + 64);
    v.push(match ev.kind {
        EventType::Added => 0,
        EventType::Modified => 1,
        EventType::Deleted => 2,
    });
    for part in [
        ev.key.resource.as_bytes(),
        ev.key.namespace.as_bytes(),
        ev.key.name.as_bytes(),
        obj_json,
    ] {
        put(&mut v, part)?;
    }
    match prev_json {
        Some(p) => {
            v.push(1);
            put(&mut v, p)?;
        }
        None => v.push(0),
    }
    Ok(v)
}

fn put(v: &mut Vec<u8>, part: &[u8]) -> Result<(), String> {
    let len = u32::try_from(part.len())
        .map_err(|_| format!("a stored value of {} bytes is too large", part.len()))?;
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(part);
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let (b, rest) = self.0.split_first().ok_or("event record truncated")?;
        self.0 = rest;
        Ok(*b)
    }

    fn part(&mut self) -> Result<&'a [u8], String> {
        let (len, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or("event record truncated")?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err("event record truncated".into());
        }
        let (part, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(part)
    }

    fn string(&mut self) -> Result<String, String> {
        let p = self.part()?;
        String::from_utf8(p.to_vec()).map_err(|e| format!("event key is not UTF-8: {e}"))
    }

    fn json(&mut self) -> Result<Arc<Value>, String> {
        let p = self.part()?;
        serde_json::from_slice(p)
            .map(Arc::new)
            .map_err(|e| format!("event object is not JSON: {e}"))
    }
}

fn decode_event(revision: Revision, b: &[u8]) -> Result<Event, String> {
    let mut r = Reader(b);
    let kind = match r.byte()? {
        0 => EventType::Added,
        1 => EventType::Modified,
        2 => EventType::Deleted,
        k => return Err(format!("unknown event kind {k} at revision {revision}")),
    };
    let key = Key::new(r.string()?, r.string()?, r.string()?);
    let object = r.json()?;
    let prev = match r.byte()? {
        0 => None,
        _ => Some(r.json()?),
    };
    Ok(Event {
        kind,
        revision,
        key,
        object,
        prev,
    })
}
