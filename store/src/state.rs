//! The in-memory state every read is served from: objects by resource, the event log since the
//! last compaction, and the planning of writes (preconditions, revision assignment).
//!
//! Objects of one resource live in a `BTreeMap` keyed by `"<namespace>\0<name>"`: NUL sorts
//! before every other character, so the map order is exactly (namespace, name) and one namespace
//! is the contiguous range `["ns\0", "ns\x01")`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use serde_json::Value;

use crate::{Event, EventType, Key, Revision, StoreError};

/// A stored object and its mod revision.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) obj: Arc<Value>,
    pub(crate) mod_rev: Revision,
}

/// Everything a read needs; guarded by one `RwLock` in `Shared`.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Latest committed revision.
    pub(crate) revision: Revision,
    /// Highest compacted revision: the log holds exactly `compacted + 1 ..= revision`.
    pub(crate) compacted: Revision,
    /// resource -> "ns\0name" -> entry.
    pub(crate) objects: HashMap<String, BTreeMap<String, Entry>>,
    /// One event per revision, oldest first.
    pub(crate) log: VecDeque<Arc<Event>>,
    /// Set by `close`; writes then fail with `Closed`.
    pub(crate) closed: bool,
}

/// The map key of an object inside its resource: `"<namespace>\0<name>"`.
pub(crate) fn inner_key(namespace: &str, name: &str) -> String {
    let mut s = String::with_capacity(namespace.len() + 1 + name.len());
    s.push_str(namespace);
    s.push('\0');
    s.push_str(name);
    s
}

/// Range bounds of one namespace (or everything) in a resource map, starting after `start`.
/// Returns `None` when the range is empty (so `BTreeMap::range` never sees inverted bounds).
pub(crate) fn range_bounds(
    namespace: Option<&str>,
    start: Option<&str>,
) -> Option<(Bound<String>, Bound<String>)> {
    let (lo, hi) = match namespace {
        None => (Bound::Unbounded, Bound::Unbounded),
        Some(ns) => (
            Bound::Included(format!("{ns}\0")),
            Bound::Excluded(format!("{ns}\u{1}")),
        ),
    };
    let lo = match (start, lo) {
        (None, lo) => lo,
        (Some(s), Bound::Included(l)) if s < l.as_str() => Bound::Included(l),
        (Some(s), _) => Bound::Excluded(s.to_string()),
    };
    if let (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(h)) = (&lo, &hi)
        && l >= h
    {
        return None;
    }
    Some((lo, hi))
}

impl State {
    /// The current entry of a key.
    pub(crate) fn entry(&self, key: &Key) -> Option<&Entry> {
        self.objects
            .get(&key.resource)?
            .get(&inner_key(&key.namespace, &key.name))
    }

    /// Applies one committed event: objects, revision and log.
    pub(crate) fn apply(&mut self, ev: &Arc<Event>) {
        let k = inner_key(&ev.key.namespace, &ev.key.name);
        match ev.kind {
            EventType::Added | EventType::Modified => {
                self.objects
                    .entry(ev.key.resource.clone())
                    .or_default()
                    .insert(
                        k,
                        Entry {
                            obj: ev.object.clone(),
                            mod_rev: ev.revision,
                        },
                    );
            }
            EventType::Deleted => {
                if let Some(m) = self.objects.get_mut(&ev.key.resource) {
                    m.remove(&k);
                }
            }
        }
        self.revision = ev.revision;
        self.log.push_back(ev.clone());
    }

    /// Drops log entries `<= rev` (clamped to the current revision).
    pub(crate) fn compact(&mut self, rev: Revision) {
        let rev = rev.min(self.revision);
        while self.log.front().is_some_and(|e| e.revision <= rev) {
            self.log.pop_front();
        }
        self.compacted = self.compacted.max(rev);
    }

    /// Fails with `Gone` when `rev` is older than the log reaches.
    pub(crate) fn check_available(&self, rev: Revision) -> Result<(), StoreError> {
        if rev < self.compacted {
            return Err(StoreError::Gone {
                requested: rev,
                oldest: self.compacted,
            });
        }
        Ok(())
    }

    /// Log events with revision `> after` (caller checked `after >= compacted`).
    pub(crate) fn log_after(
        &self,
        after: Revision,
    ) -> impl DoubleEndedIterator<Item = &Arc<Event>> {
        let skip = usize::try_from(after.saturating_sub(self.compacted)).unwrap_or(usize::MAX);
        self.log.range(skip.min(self.log.len())..)
    }

    /// Items of a resource at revision `at` (must be available) in the given range, sorted, as
    /// (map key, object). Undoes later log events to go back in time.
    pub(crate) fn items_at(
        &self,
        resource: &str,
        namespace: Option<&str>,
        start: Option<&str>,
        at: Revision,
    ) -> Vec<(String, Arc<Value>)> {
        let Some((lo, hi)) = range_bounds(namespace, start) else {
            return Vec::new();
        };
        let current = self.objects.get(resource);
        let in_range = |k: &str| {
            (match &lo {
                Bound::Included(l) => k >= l.as_str(),
                Bound::Excluded(l) => k > l.as_str(),
                Bound::Unbounded => true,
            }) && (match &hi {
                Bound::Excluded(h) => k < h.as_str(),
                _ => true,
            })
        };
        if at >= self.revision {
            return current
                .map(|m| {
                    m.range((lo.clone(), hi.clone()))
                        .map(|(k, e)| (k.clone(), e.obj.clone()))
                        .collect()
                })
                .unwrap_or_default();
        }
        let mut snap: BTreeMap<String, Arc<Value>> = current
            .map(|m| {
                m.range((lo.clone(), hi.clone()))
                    .map(|(k, e)| (k.clone(), e.obj.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for ev in self.log_after(at).rev() {
            if ev.key.resource != resource {
                continue;
            }
            let k = inner_key(&ev.key.namespace, &ev.key.name);
            if !in_range(&k) {
                continue;
            }
            match (ev.kind, &ev.prev) {
                (EventType::Added, _) | (_, None) => {
                    snap.remove(&k);
                }
                (EventType::Modified | EventType::Deleted, Some(prev)) => {
                    snap.insert(k, prev.clone());
                }
            }
        }
        snap.into_iter().collect()
    }
}

/// A write as requested by a caller.
#[derive(Debug)]
pub(crate) enum WriteOp {
    Create {
        key: Key,
        obj: Value,
    },
    Update {
        key: Key,
        obj: Value,
        expected: Option<Revision>,
    },
    Delete {
        key: Key,
        expected: Option<Revision>,
    },
}

/// Plans a sequence of writes against the state plus the earlier writes of the same batch,
/// assigning consecutive revisions to the ones that succeed.
pub(crate) struct Planner<'a> {
    state: &'a State,
    overlay: HashMap<Key, Option<(Arc<Value>, Revision)>>,
    /// Revision of the last planned write.
    pub(crate) next: Revision,
}

impl<'a> Planner<'a> {
    pub(crate) fn new(state: &'a State) -> Planner<'a> {
        Planner {
            state,
            overlay: HashMap::new(),
            next: state.revision,
        }
    }

    fn current(&self, key: &Key) -> Option<(Arc<Value>, Revision)> {
        match self.overlay.get(key) {
            Some(v) => v.clone(),
            None => self.state.entry(key).map(|e| (e.obj.clone(), e.mod_rev)),
        }
    }

    /// Checks one write and, if it succeeds, returns its event (revision = previous + 1).
    pub(crate) fn plan(&mut self, op: WriteOp) -> Result<Arc<Event>, StoreError> {
        let rev = self.next + 1;
        let ev = match op {
            WriteOp::Create { key, mut obj } => {
                validate_key(&key)?;
                if self.current(&key).is_some() {
                    return Err(StoreError::AlreadyExists);
                }
                set_resource_version(&mut obj, rev)?;
                Event {
                    kind: EventType::Added,
                    revision: rev,
                    key,
                    object: Arc::new(obj),
                    prev: None,
                }
            }
            WriteOp::Update {
                key,
                mut obj,
                expected,
            } => {
                validate_key(&key)?;
                let (prev, actual) = self.current(&key).ok_or(StoreError::NotFound)?;
                check_precondition(expected, actual)?;
                set_resource_version(&mut obj, rev)?;
                Event {
                    kind: EventType::Modified,
                    revision: rev,
                    key,
                    object: Arc::new(obj),
                    prev: Some(prev),
                }
            }
            WriteOp::Delete { key, expected } => {
                validate_key(&key)?;
                let (prev, actual) = self.current(&key).ok_or(StoreError::NotFound)?;
                check_precondition(expected, actual)?;
                let mut last = Value::clone(&prev);
                set_resource_version(&mut last, rev)?;
                Event {
                    kind: EventType::Deleted,
                    revision: rev,
                    key,
                    object: Arc::new(last),
                    prev: Some(prev),
                }
            }
        };
        let after = match ev.kind {
            EventType::Deleted => None,
            _ => Some((ev.object.clone(), rev)),
        };
        self.overlay.insert(ev.key.clone(), after);
        self.next = rev;
        Ok(Arc::new(ev))
    }
}

fn check_precondition(expected: Option<Revision>, actual: Revision) -> Result<(), StoreError> {
    match expected {
        Some(expected) if expected != actual => Err(StoreError::Conflict { expected, actual }),
        _ => Ok(()),
    }
}

/// Rejects keys the map encoding cannot represent.
pub(crate) fn validate_key(key: &Key) -> Result<(), StoreError> {
    if key.resource.is_empty() || key.name.is_empty() {
        return Err(StoreError::InvalidObject(format!(
            "key needs a resource and a name: {key:?}"
        )));
    }
    if [&key.resource, &key.namespace, &key.name]
        .iter()
        .any(|p| p.contains('\0'))
    {
        return Err(StoreError::InvalidObject(format!(
            "key contains a NUL character: {key:?}"
        )));
    }
    Ok(())
}

/// Writes `metadata.resourceVersion = "<rev>"`, creating `metadata` if absent.
pub(crate) fn set_resource_version(obj: &mut Value, rev: Revision) -> Result<(), StoreError> {
    let Value::Object(map) = obj else {
        return Err(StoreError::InvalidObject(
            "the stored value must be a JSON object".into(),
        ));
    };
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    let Value::Object(meta) = meta else {
        return Err(StoreError::InvalidObject(
            "metadata must be a JSON object".into(),
        ));
    };
    meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    Ok(())
}
