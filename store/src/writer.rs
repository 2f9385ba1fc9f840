//! The group-commit writer of the durable backend: one OS thread that drains queued requests,
//! plans them in order against memory (each successful write = the next revision), commits the
//! whole batch in ONE redb transaction with `Durability::Immediate`, then applies it to memory,
//! publishes the events, and only then answers the callers. Errors (conflicts too) are answered
//! after the commit as well, so no reply ever reveals a write that is not yet durable.
//!
//! A failed commit (a full disk, an I/O error) leaves memory as it was — nothing of the batch
//! was applied — and the redb handle poisoned ("Previous I/O error occurred"), so the writer
//! drops it and the store turns unhealthy ([`Shared::failure`]): writes are refused with the
//! reason until the file can be reopened. Reopening is tried on the next request at most once
//! a [`RETRY`], and only once the file system has [`MIN_FREE`] bytes available again; the
//! reopened file is reconciled with memory ([`reconcile`]) before writes resume.
//!
//! A plain thread (not a tokio task) because the commit blocks on fsync; it exits when every
//! sender is gone (the last `Store` dropped, or `close`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Duration, Instant};

use crate::persist::Db;
use crate::state::{Planner, WriteOp};
use crate::store::Shared;
use crate::{Event, Revision, StoreError};

/// Reply channel of one write.
pub(crate) type WriteReply = oneshot::Sender<Result<Arc<Value>, StoreError>>;

/// How often a failed store tries to reopen its file.
const RETRY: Duration = Duration::from_secs(1);
/// Free space the file system needs before a failed store tries again (a full disk is the
/// usual failure, and a commit on a disk that is still full would fail at once).
const MIN_FREE: u64 = 1024 * 1024;

/// A queued request.
pub(crate) enum Request {
    Write {
        op: WriteOp,
        reply: WriteReply,
    },
    Compact {
        rev: Revision,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Answers whether the store takes writes (trying to reopen a failed one first).
    Check {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// Starts the writer thread; `done` fires after the database is closed.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    db: Db,
    path: PathBuf,
    rx: mpsc::Receiver<Request>,
    done: oneshot::Sender<()>,
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || {
            let mut writer = Writer {
                shared: &shared,
                path,
                db: Some(db),
                retry_at: Instant::now(),
            };
            writer.run(rx);
            drop(writer);
            let _ = done.send(());
        })
        .map(|_| ())
        .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))
}

struct Writer<'a> {
    shared: &'a Shared,
    path: PathBuf,
    /// `None` after a failed commit, until the file is reopened.
    db: Option<Db>,
    /// No reopening before this.
    retry_at: Instant,
}

enum Outcome {
    Write(WriteReply, Result<Arc<Event>, StoreError>),
    Compact(oneshot::Sender<Result<(), StoreError>>),
    Check(oneshot::Sender<Result<(), StoreError>>),
}

impl Writer<'_> {
    fn run(&mut self, mut rx: mpsc::Receiver<Request>) {
        let max = self.shared.config.max_batch.max(1);
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.process(batch);
        }
    }

    fn process(&mut self, batch: Vec<Request>) {
        self.recover();
        let Some(db) = &self.db else {
            let reason = self.shared.failure().unwrap_or_default();
            let refused = || {
                StoreError::Backend(format!(
                    "{reason}; writes are refused until the store can be written again"
                ))
            };
            for req in batch {
                match req {
                    Request::Write { reply, .. } => {
                        let _ = reply.send(Err(refused()));
                    }
                    Request::Compact { reply, .. } | Request::Check { reply } => {
                        let _ = reply.send(Err(refused()));
                    }
                }
            }
            return;
        };
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        let mut compact_to: Option<Revision> = None;
        {
            // Only this thread mutates the state, so what we plan against stays current until
            // the commit below is applied.
            let st = self.shared.state.read();
            let mut planner = Planner::new(&st);
            for req in batch {
                match req {
                    Request::Write { op, reply } => {
                        let res = planner.plan(op);
                        if let Ok(ev) = &res {
                            events.push(ev.clone());
                        }
                        outcomes.push(Outcome::Write(reply, res));
                    }
                    Request::Compact { rev, reply } => {
                        compact_to = Some(compact_to.unwrap_or(0).max(rev));
                        outcomes.push(Outcome::Compact(reply));
                    }
                    Request::Check { reply } => outcomes.push(Outcome::Check(reply)),
                }
            }
            compact_to = compact_to
                .map(|r| r.min(planner.next))
                .filter(|r| *r > st.compacted);
        }
        let committed = if events.is_empty() && compact_to.is_none() {
            Ok(())
        } else {
            db.commit(&events, compact_to)
        };
        match committed {
            Ok(()) => {
                self.shared.apply(&events, compact_to);
                for o in outcomes {
                    match o {
                        Outcome::Write(reply, res) => {
                            let _ = reply.send(res.map(|ev| ev.object.clone()));
                        }
                        Outcome::Compact(reply) | Outcome::Check(reply) => {
                            let _ = reply.send(Ok(()));
                        }
                    }
                }
            }
            Err(e) => {
                // Nothing of the batch reached memory; the handle is poisoned after an I/O
                // error, so it goes, and the file is reopened once it can be written.
                tracing::error!(error = %e, "store commit failed; refusing writes until the store can be written again");
                let msg = backend_message(e);
                self.fail(msg.clone());
                for o in outcomes {
                    let err = StoreError::Backend(msg.clone());
                    match o {
                        Outcome::Write(reply, _) => {
                            let _ = reply.send(Err(err));
                        }
                        Outcome::Compact(reply) | Outcome::Check(reply) => {
                            let _ = reply.send(Err(err));
                        }
                    }
                }
            }
        }
    }

    fn fail(&mut self, reason: String) {
        self.db = None;
        self.shared.set_failure(Some(reason));
        self.retry_at = Instant::now() + RETRY;
    }

    /// Reopens the file of a failed store when it is time and there is room again.
    fn recover(&mut self) {
        if self.db.is_some() || Instant::now() < self.retry_at {
            return;
        }
        self.retry_at = Instant::now() + RETRY;
        if !space_available(&self.path) {
            return;
        }
        match Db::reopen(&self.path).and_then(|(db, rev)| {
            reconcile(self.shared, &db, rev)?;
            Ok(db)
        }) {
            Ok(db) => {
                tracing::info!(path = %self.path.display(), "store writable again");
                self.db = Some(db);
                self.shared.set_failure(None);
            }
            Err(e) => {
                tracing::warn!(error = %e, "store still not writable");
                self.shared.set_failure(Some(backend_message(e)));
            }
        }
    }
}

/// The message of a backend error (without `StoreError`'s "storage backend: " prefix, which
/// the refusal adds again).
fn backend_message(e: StoreError) -> String {
    match e {
        StoreError::Backend(m) => m,
        other => other.to_string(),
    }
}

/// Whether the file system of `path` has [`MIN_FREE`] bytes available (true when it cannot
/// tell: then reopening decides).
fn space_available(path: &Path) -> bool {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match nix::sys::statvfs::statvfs(dir) {
        Ok(st) => st.blocks_available().saturating_mul(st.fragment_size()) >= MIN_FREE,
        Err(_) => true,
    }
}

/// Brings memory and a reopened file (committed up to `file_rev`) back in step. Memory holds
/// exactly the acknowledged writes. A file at the same revision matches it. A file ahead holds
/// a batch whose commit reported an error but reached the disk (an fsync that failed late):
/// its events are applied and published now (their callers were told the writes failed, as
/// etcd's clients are after a timeout). A file behind memory lost acknowledged writes: writes
/// stay refused rather than build on it.
pub(crate) fn reconcile(shared: &Shared, db: &Db, file_rev: Revision) -> Result<(), StoreError> {
    let mem_rev = shared.state.read().revision;
    if file_rev == mem_rev {
        return Ok(());
    }
    if file_rev < mem_rev {
        return Err(StoreError::Backend(format!(
            "{}: the file is at revision {file_rev} but writes up to {mem_rev} were acknowledged; \
             refusing writes (restart to reload from the file)",
            db.path().display()
        )));
    }
    tracing::warn!(
        file_rev,
        mem_rev,
        "the store file holds writes whose commit reported an error; applying them"
    );
    match db.events_after(mem_rev)? {
        Some(events) if events.len() as u64 == file_rev - mem_rev => {
            shared.apply(&events, None);
        }
        _ => shared.replace(db.load()?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::state::State;
    use crate::{Key, Store, StoreConfig};

    /// A file with `n` configmaps written (revisions 1..=n), closed.
    async fn file_with(path: &Path, n: usize) {
        let s = Store::open(path).await.expect("open");
        for i in 0..n {
            let k = Key::new("configmaps", "default", format!("c{i}"));
            s.create(k, json!({"metadata": {"name": format!("c{i}")}}))
                .await
                .expect("create");
        }
        s.close().await;
    }

    #[tokio::test]
    async fn a_reopened_file_ahead_of_memory_is_applied_and_one_behind_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        file_with(&path, 3).await;
        let (db, file_rev) = Db::reopen(&path).expect("reopen");
        assert_eq!(file_rev, 3);
        let all = db.events_after(0).expect("log").expect("complete log");
        // Memory saw only the first write: the commit of the other two reported an error
        // but reached the file.
        let shared = Shared::new(State::default(), StoreConfig::default());
        shared.apply(&all[..1], None);
        let mut watch = shared.watchers.lock().register("configmaps", None);
        reconcile(&shared, &db, file_rev).expect("reconcile");
        assert_eq!(shared.state.read().revision, 3);
        let key = Key::new("configmaps", "default", "c2");
        assert_eq!(shared.state.read().entry(&key).map(|e| e.mod_rev), Some(3));
        let published: Vec<_> = std::iter::from_fn(|| watch.try_recv().ok())
            .map(|e| e.revision)
            .collect();
        assert_eq!(published, [2, 3], "watchers hear of them");
        // A file behind memory lost acknowledged writes: refused, memory untouched.
        let other = dir.path().join("older.redb");
        file_with(&other, 1).await;
        let (older, older_rev) = Db::reopen(&other).expect("reopen");
        let err = reconcile(&shared, &older, older_rev).unwrap_err();
        assert!(err.to_string().contains("refusing writes"), "{err}");
        assert_eq!(shared.state.read().revision, 3);
    }
}
