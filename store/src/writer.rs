//! The group-commit writer of the durable backend: one OS thread that drains queued requests,
//! plans them in order against memory (each successful write = the next revision), commits the
//! whole batch in ONE redb transaction with `Durability::Immediate`, then applies it to memory,
//! publishes the events, and only then answers the callers. Errors (conflicts too) are answered
//! after the commit as well, so no reply ever reveals a write that is not yet durable.
//!
//! A plain thread (not a tokio task) because the commit blocks on fsync; it exits when every
//! sender is gone (the last `Store` dropped, or `close`).

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::persist::Db;
use crate::state::{Planner, WriteOp};
use crate::store::Shared;
use crate::{Event, Revision, StoreError};

/// Reply channel of one write.
pub(crate) type WriteReply = oneshot::Sender<Result<Arc<Value>, StoreError>>;

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
}

/// Starts the writer thread; `done` fires after the database is closed.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    db: Db,
    rx: mpsc::Receiver<Request>,
    done: oneshot::Sender<()>,
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || {
            run(&shared, &db, rx);
            drop(db);
            let _ = done.send(());
        })
        .map(|_| ())
        .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))
}

fn run(shared: &Shared, db: &Db, mut rx: mpsc::Receiver<Request>) {
    let max = shared.config.max_batch.max(1);
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        process(shared, db, batch);
    }
}

enum Outcome {
    Write(WriteReply, Result<Arc<Event>, StoreError>),
    Compact(oneshot::Sender<Result<(), StoreError>>),
}

fn process(shared: &Shared, db: &Db, batch: Vec<Request>) {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut events = Vec::with_capacity(batch.len());
    let mut compact_to: Option<Revision> = None;
    {
        // Only this thread mutates the state, so what we plan against stays current until the
        // commit below is applied.
        let st = shared.state.read();
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
            shared.apply(&events, compact_to);
            for o in outcomes {
                match o {
                    Outcome::Write(reply, res) => {
                        let _ = reply.send(res.map(|ev| ev.object.clone()));
                    }
                    Outcome::Compact(reply) => {
                        let _ = reply.send(Ok(()));
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "store commit failed");
            let msg = e.to_string();
            for o in outcomes {
                let err = StoreError::Backend(msg.clone());
                match o {
                    Outcome::Write(reply, _) => {
                        let _ = reply.send(Err(err));
                    }
                    Outcome::Compact(reply) => {
                        let _ = reply.send(Err(err));
                    }
                }
            }
        }
    }
}
