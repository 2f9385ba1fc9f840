//! [`Store`]: the handle every other crate uses. Reads (get, list, watch) are served from the
//! in-memory [`State`] under a read lock; writes go through [`Shared::apply`], either inline
//! (memory backend) or via the group-commit writer thread after a durable redb commit.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::persist::Db;
use crate::state::{Planner, State, WriteOp};
use crate::watch::Watchers;
use crate::writer::{self, Request};
use crate::{Event, Key, ListOptions, ListResult, Revision, StoreError, Watch, continue_token};

/// Tunables of a store. [`StoreConfig::default`] matches the documented behaviour.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Events a watcher may have buffered before it is ended as too slow (default 10,000).
    pub watch_buffer: usize,
    /// Automatic compaction keeps at least this many recent events (default 10,000)...
    pub keep_events: usize,
    /// ...or all events of this recent period, whichever keeps more (default 5 minutes).
    pub keep_for: Duration,
    /// How often automatic compaction runs, on tokio time (default 30 s; zero disables it).
    pub compaction_interval: Duration,
    /// Most writes committed in one redb transaction (default 1,024).
    pub max_batch: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            watch_buffer: 10_000,
            keep_events: 10_000,
            keep_for: Duration::from_secs(5 * 60),
            compaction_interval: Duration::from_secs(30),
            max_batch: 1024,
        }
    }
}

/// State shared by the handle, the writer thread and the compactor.
pub(crate) struct Shared {
    pub(crate) state: RwLock<State>,
    /// Locked after `state` when both are needed.
    pub(crate) watchers: Mutex<Watchers>,
    pub(crate) config: StoreConfig,
    /// Why the durable backend refuses writes (`None`: it takes them); see `writer.rs`.
    failure: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn new(state: State, config: StoreConfig) -> Shared {
        Shared {
            state: RwLock::new(state),
            watchers: Mutex::new(Watchers::new(config.watch_buffer)),
            config,
            failure: Mutex::new(None),
        }
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    pub(crate) fn set_failure(&self, reason: Option<String>) {
        *self.failure.lock() = reason;
    }

    /// Replaces memory with `state` (reloaded from the file) and ends every watch: the events
    /// between the two cannot be told, so watchers start over with a list.
    pub(crate) fn replace(&self, state: State) {
        let mut st = self.state.write();
        *st = state;
        self.watchers.lock().clear();
    }

    /// Applies committed events to memory, then publishes them. The watcher lock is taken before
    /// the state lock is released, so a watch registered after this sees the new revision and
    /// none of these events twice.
    pub(crate) fn apply(&self, events: &[Arc<Event>], compact_to: Option<Revision>) {
        let mut st = self.state.write();
        for ev in events {
            st.apply(ev);
        }
        if let Some(rev) = compact_to {
            st.compact(rev);
        }
        let mut watchers = self.watchers.lock();
        drop(st);
        for ev in events {
            watchers.publish(ev);
        }
    }

    fn write_inline(&self, op: WriteOp) -> Result<Arc<Value>, StoreError> {
        let ev = {
            let st = self.state.read();
            if st.closed {
                return Err(StoreError::Closed);
            }
            // The caller holds the backend's `write_lock`, so nothing changes between this
            // plan and the apply below.
            Planner::new(&st).plan(op)?
        };
        let obj = ev.object.clone();
        self.apply(std::slice::from_ref(&ev), None);
        Ok(obj)
    }
}

enum Backend {
    Memory {
        /// Serializes memory writes so planning and applying are one step.
        write_lock: Mutex<()>,
    },
    Durable {
        path: PathBuf,
        tx: Mutex<Option<mpsc::Sender<Request>>>,
        done: Mutex<Option<oneshot::Receiver<()>>>,
    },
}

struct Inner {
    shared: Arc<Shared>,
    backend: Backend,
    /// Set once the compactor task runs (it needs a tokio runtime, which a store built outside
    /// one only meets at its first write).
    compactor: AtomicBool,
}

/// The revisioned object store. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Store");
        match &self.inner.backend {
            Backend::Memory { .. } => d.field("backend", &"memory"),
            Backend::Durable { path, .. } => d.field("path", path),
        };
        d.field("revision", &self.revision()).finish()
    }
}

impl Store {
    /// An empty in-memory store (tests, `--ephemeral`).
    pub fn memory() -> Store {
        Store::memory_with(StoreConfig::default())
    }

    /// An empty in-memory store with explicit tunables.
    pub fn memory_with(config: StoreConfig) -> Store {
        let store = Store {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared::new(State::default(), config)),
                backend: Backend::Memory {
                    write_lock: Mutex::new(()),
                },
                compactor: AtomicBool::new(false),
            }),
        };
        store.spawn_compactor();
        store
    }

    /// Opens the redb file at `path` (created if absent) and reloads its objects, revision and
    /// recent event log.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, StoreConfig::default()).await
    }

    /// [`Store::open`] with explicit tunables.
    pub async fn open_with(path: &Path, config: StoreConfig) -> Result<Store, StoreError> {
        let owned = path.to_path_buf();
        let (db, state) = tokio::task::spawn_blocking(move || Db::open(&owned))
            .await
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))??;
        tracing::info!(path = %path.display(), revision = state.revision, "store opened");
        let shared = Arc::new(Shared::new(state, config));
        let (tx, rx) = mpsc::channel(8192);
        let (done_tx, done_rx) = oneshot::channel();
        writer::spawn(shared.clone(), db, path.to_path_buf(), rx, done_tx)?;
        let store = Store {
            inner: Arc::new(Inner {
                shared,
                backend: Backend::Durable {
                    path: path.to_path_buf(),
                    tx: Mutex::new(Some(tx)),
                    done: Mutex::new(Some(done_rx)),
                },
                compactor: AtomicBool::new(false),
            }),
        };
        store.spawn_compactor();
        Ok(store)
    }

    /// Latest committed revision.
    pub fn revision(&self) -> Revision {
        self.inner.shared.state.read().revision
    }

    /// Highest compacted revision: lists and watches need a revision at or above it.
    pub fn compacted_revision(&self) -> Revision {
        self.inner.shared.state.read().compacted
    }

    /// Number of live watchers.
    pub fn watcher_count(&self) -> usize {
        self.inner.shared.watchers.lock().len()
    }

    /// The current object at `key`.
    pub fn get(&self, key: &Key) -> Option<Arc<Value>> {
        self.inner
            .shared
            .state
            .read()
            .entry(key)
            .map(|e| e.obj.clone())
    }

    /// Lists a resource (one namespace, or all with `None`), sorted by (namespace, name).
    ///
    /// With `limit`, returns one page plus a continue token encoding (revision, last key); the
    /// continued pages are consistent AT that revision (rebuilt from the event log by undoing
    /// later events), or `Gone` once it was compacted. `remaining` = items after this page.
    pub fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListResult, StoreError> {
        self.list_inner(resource, namespace, None, opts)
    }

    /// [`Store::list`] at exactly `revision` (Kubernetes `resourceVersionMatch=Exact`): `Gone`
    /// if it was compacted, `InvalidContinue` if it is newer than the store or differs from the
    /// continue token's revision.
    pub fn list_at(
        &self,
        resource: &str,
        namespace: Option<&str>,
        revision: Revision,
        opts: &ListOptions,
    ) -> Result<ListResult, StoreError> {
        self.list_inner(resource, namespace, Some(revision), opts)
    }

    fn list_inner(
        &self,
        resource: &str,
        namespace: Option<&str>,
        revision: Option<Revision>,
        opts: &ListOptions,
    ) -> Result<ListResult, StoreError> {
        let st = self.inner.shared.state.read();
        let (at, start) = match opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => {
                let (rev, start) = continue_token::decode(t, resource)?;
                if revision.is_some_and(|r| r != rev) {
                    return Err(StoreError::InvalidContinue(format!(
                        "the token is for revision {rev}, not {}",
                        revision.unwrap_or(0)
                    )));
                }
                (rev, Some(start))
            }
            None => (revision.unwrap_or(st.revision), None),
        };
        if at > st.revision {
            return Err(StoreError::InvalidContinue(format!(
                "revision {at} is newer than the store's {}",
                st.revision
            )));
        }
        st.check_available(at)?;
        let mut rows = st.items_at(resource, namespace, start.as_deref(), at);
        drop(st);
        let mut continue_token = None;
        let mut remaining = None;
        if let Some(limit) = opts.limit.filter(|l| *l > 0)
            && rows.len() > limit
        {
            remaining = Some((rows.len() - limit) as u64);
            rows.truncate(limit);
            continue_token = rows
                .last()
                .map(|(k, _)| continue_token::encode(at, resource, k));
        }
        Ok(ListResult {
            items: rows.into_iter().map(|(_, v)| v).collect(),
            revision: at,
            continue_token,
            remaining,
        })
    }

    /// Creates `obj` at `key`; `AlreadyExists` if the key is taken.
    pub async fn create(&self, key: Key, obj: Value) -> Result<Arc<Value>, StoreError> {
        self.write(WriteOp::Create { key, obj }).await
    }

    /// Replaces the object at `key`. `expected = Some(rv)`: fails with `Conflict` unless the
    /// current mod revision is `rv`. `NotFound` if absent.
    pub async fn update(
        &self,
        key: Key,
        obj: Value,
        expected: Option<Revision>,
    ) -> Result<Arc<Value>, StoreError> {
        self.write(WriteOp::Update { key, obj, expected }).await
    }

    /// Deletes the object at `key` (precondition as in [`Store::update`]) and returns its last
    /// state with `metadata.resourceVersion` = the deletion revision.
    pub async fn delete(
        &self,
        key: &Key,
        expected: Option<Revision>,
    ) -> Result<Arc<Value>, StoreError> {
        self.write(WriteOp::Delete {
            key: key.clone(),
            expected,
        })
        .await
    }

    async fn write(&self, op: WriteOp) -> Result<Arc<Value>, StoreError> {
        if !self.inner.compactor.load(Ordering::Relaxed) {
            self.spawn_compactor();
        }
        match &self.inner.backend {
            Backend::Memory { write_lock } => {
                let _serial = write_lock.lock();
                self.inner.shared.write_inline(op)
            }
            Backend::Durable { tx, .. } => request(tx, |reply| Request::Write { op, reply }).await,
        }
    }

    /// Whether the store takes writes: `Err` with the reason while the durable backend
    /// refuses them (after a failed commit, e.g. on a full disk). Asking a failed store makes
    /// it try to reopen its file (at most once a second, once there is room), so polling this
    /// (`/readyz`) also brings it back without a write. A closed store reports `Ok`: it is
    /// not broken, it is shutting down.
    pub async fn check(&self) -> Result<(), StoreError> {
        let Backend::Durable { tx, .. } = &self.inner.backend else {
            return Ok(());
        };
        if self.inner.shared.failure().is_none() {
            return Ok(());
        }
        match request(tx, |reply| Request::Check { reply }).await {
            Err(StoreError::Closed) => Ok(()),
            r => r,
        }
    }

    /// Events with revision `> after` for this resource (and namespace if `Some`): first the
    /// ones still in the log, then live ones. `Gone` if `after` is older than the log.
    pub fn watch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        after: Revision,
    ) -> Result<Watch, StoreError> {
        let st = self.inner.shared.state.read();
        st.check_available(after)?;
        let backlog: VecDeque<_> = st
            .log_after(after)
            .filter(|e| {
                e.key.resource == resource && namespace.is_none_or(|ns| e.key.namespace == ns)
            })
            .cloned()
            .collect();
        let rx = self.register(&st, resource, namespace);
        Ok(Watch::new(backlog, rx, after, self.watch_shared(&st)))
    }

    /// Atomically: the current items (all, sorted), their revision, and a watch starting right
    /// after that revision.
    pub fn list_and_watch(
        &self,
        resource: &str,
        namespace: Option<&str>,
    ) -> (Vec<Arc<Value>>, Revision, Watch) {
        let st = self.inner.shared.state.read();
        let rev = st.revision;
        let items = st
            .items_at(resource, namespace, None, rev)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let rx = self.register(&st, resource, namespace);
        let watch = Watch::new(VecDeque::new(), rx, rev, self.watch_shared(&st));
        (items, rev, watch)
    }

    /// Registers a watcher while the caller holds the state read lock (so no event is missed
    /// or duplicated); on a closed store the watch ends at once.
    fn register(
        &self,
        st: &State,
        resource: &str,
        namespace: Option<&str>,
    ) -> mpsc::Receiver<Arc<Event>> {
        if st.closed {
            return mpsc::channel(1).1;
        }
        self.inner
            .shared
            .watchers
            .lock()
            .register(resource, namespace)
    }

    fn watch_shared(&self, st: &State) -> Option<Arc<Shared>> {
        (!st.closed).then(|| self.inner.shared.clone())
    }

    /// Drops log entries `<= rev` (clamped to the current revision); lists and watches from
    /// older revisions then get `Gone`.
    pub async fn compact(&self, rev: Revision) -> Result<(), StoreError> {
        match &self.inner.backend {
            Backend::Memory { write_lock } => {
                let _serial = write_lock.lock();
                self.inner.shared.state.write().compact(rev);
                Ok(())
            }
            Backend::Durable { tx, .. } => {
                request(tx, |reply| Request::Compact { rev, reply }).await
            }
        }
    }

    /// Flushes queued writes, stops the writer and closes the file; ends every watch. Later
    /// writes fail with `Closed`; reads keep working on the last state.
    pub async fn close(&self) {
        if let Backend::Durable { tx, done, .. } = &self.inner.backend {
            drop(tx.lock().take());
            let done = done.lock().take();
            if let Some(done) = done {
                let _ = done.await;
            }
        }
        self.inner.shared.state.write().closed = true;
        self.inner.shared.watchers.lock().clear();
    }

    /// Starts the periodic compactor once, if a tokio runtime is at hand.
    fn spawn_compactor(&self) {
        let config = &self.inner.shared.config;
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no tokio runtime yet: automatic compaction starts at the first write");
            return;
        };
        if self.inner.compactor.swap(true, Ordering::Relaxed)
            || config.compaction_interval.is_zero()
        {
            return;
        }
        handle.spawn(compactor(Arc::downgrade(&self.inner), config.clone()));
    }
}

/// Queues one request for the writer thread and waits for its answer (`Closed` once the
/// writer is gone).
async fn request<T>(
    tx: &Mutex<Option<mpsc::Sender<Request>>>,
    make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
) -> Result<T, StoreError> {
    let tx = tx.lock().clone().ok_or(StoreError::Closed)?;
    let (reply, rx) = oneshot::channel();
    tx.send(make(reply)).await.map_err(|_| StoreError::Closed)?;
    rx.await.map_err(|_| StoreError::Closed)?
}

/// Periodic compaction: keep at least the last `keep_events` events or the events of the last
/// `keep_for`, whichever keeps more. Each tick records (now, revision); once such a mark is
/// `keep_for` old, every event up to its revision is known to be older than that.
async fn compactor(store: Weak<Inner>, config: StoreConfig) {
    let mut marks: VecDeque<(Instant, Revision)> = VecDeque::new();
    let mut time_bound: Revision = 0;
    let mut tick = tokio::time::interval(config.compaction_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = store.upgrade() else {
            return;
        };
        let store = Store { inner };
        let (rev, compacted, closed) = {
            let st = store.inner.shared.state.read();
            (st.revision, st.compacted, st.closed)
        };
        if closed {
            return;
        }
        let now = Instant::now();
        marks.push_back((now, rev));
        while let Some(&(at, r)) = marks.front() {
            if now.duration_since(at) < config.keep_for {
                break;
            }
            time_bound = r;
            marks.pop_front();
        }
        let count_bound = rev.saturating_sub(config.keep_events as u64);
        let target = time_bound.min(count_bound);
        if target > compacted {
            tracing::debug!(target, "automatic compaction");
            if let Err(e) = store.compact(target).await {
                tracing::warn!(error = %e, "automatic compaction failed");
            }
        }
    }
}
