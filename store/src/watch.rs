//! Watcher fan-out. Each watcher gets a bounded channel of `Arc<Event>` (no value is cloned per
//! watcher); a watcher whose buffer is full is dropped, so its [`Watch`] ends after draining what
//! it already has, instead of blocking writers or growing without bound. The caller re-watches
//! from the last revision it saw, as Kubernetes clients do after the server closes a slow watch.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::sync::mpsc;

use crate::store::Shared;
use crate::{Event, Revision};

struct Slot {
    namespace: Option<String>,
    tx: mpsc::Sender<Arc<Event>>,
}

/// All live watchers, by resource. Locked after the state lock, never before.
pub(crate) struct Watchers {
    by_resource: HashMap<String, Vec<Slot>>,
    capacity: usize,
}

impl Watchers {
    pub(crate) fn new(capacity: usize) -> Watchers {
        Watchers {
            by_resource: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds a watcher; events published from now on reach it.
    pub(crate) fn register(
        &mut self,
        resource: &str,
        namespace: Option<&str>,
    ) -> mpsc::Receiver<Arc<Event>> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let slots = self.by_resource.entry(resource.to_string()).or_default();
        // Watches dropped while their resource was quiet are only noticed here.
        slots.retain(|s| !s.tx.is_closed());
        slots.push(Slot {
            namespace: namespace.map(str::to_string),
            tx,
        });
        rx
    }

    /// Hands one committed event to every matching watcher; drops full and abandoned ones.
    pub(crate) fn publish(&mut self, ev: &Arc<Event>) {
        let Some(slots) = self.by_resource.get_mut(&ev.key.resource) else {
            return;
        };
        slots.retain(|s| {
            if s.namespace
                .as_ref()
                .is_some_and(|ns| *ns != ev.key.namespace)
            {
                return !s.tx.is_closed();
            }
            match s.tx.try_send(ev.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(
                        resource = %ev.key.resource,
                        revision = ev.revision,
                        "watcher fell too far behind; ending its watch"
                    );
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if slots.is_empty() {
            self.by_resource.remove(&ev.key.resource);
        }
    }

    /// Ends every watch (on close).
    pub(crate) fn clear(&mut self) {
        self.by_resource.clear();
    }

    /// Number of live watchers (tests, metrics).
    pub(crate) fn len(&self) -> usize {
        self.by_resource.values().map(Vec::len).sum()
    }
}

/// A stream of events for one resource (and namespace), in revision order.
///
/// Ends (`None`) when the store closes or this watcher fell more than the configured buffer
/// behind; re-watch from the last seen revision then.
pub struct Watch {
    backlog: VecDeque<Arc<Event>>,
    rx: mpsc::Receiver<Arc<Event>>,
    /// Live events at or below this revision were already in the backlog (or predate the watch).
    after: Revision,
    /// For [`Watch::bookmark_revision`]; `None` on a closed store.
    shared: Option<Arc<Shared>>,
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("backlog", &self.backlog.len())
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl Watch {
    pub(crate) fn new(
        backlog: VecDeque<Arc<Event>>,
        rx: mpsc::Receiver<Arc<Event>>,
        after: Revision,
        shared: Option<Arc<Shared>>,
    ) -> Watch {
        Watch {
            backlog,
            rx,
            after,
            shared,
        }
    }

    /// A revision safe to announce in a BOOKMARK event: `Some(r)` when every matching event up
    /// to `r` has already been returned by this watch (nothing is buffered), `None` otherwise
    /// or when the watch has ended.
    pub fn bookmark_revision(&self) -> Option<Revision> {
        let shared = self.shared.as_ref()?;
        // Lock order state -> watchers: once both are held, every event up to `revision` has
        // been published to the channels, and no later one can be.
        let st = shared.state.read();
        let _publishing = shared.watchers.lock();
        (self.backlog.is_empty() && self.rx.is_empty() && !self.rx.is_closed() && !st.closed)
            .then(|| st.revision.max(self.after))
    }

    /// The next event, or `None` when the watch ended.
    pub async fn next(&mut self) -> Option<Event> {
        self.next_shared().await.map(|e| Event::clone(&e))
    }

    /// Like [`Watch::next`] but without copying the event's key (cheapest for fan-out).
    pub async fn next_shared(&mut self) -> Option<Arc<Event>> {
        std::future::poll_fn(|cx| self.poll_shared(cx)).await
    }

    /// Poll form of [`Watch::next_shared`].
    pub fn poll_shared(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<Event>>> {
        if let Some(ev) = self.backlog.pop_front() {
            self.after = ev.revision;
            return Poll::Ready(Some(ev));
        }
        loop {
            match ready!(self.rx.poll_recv(cx)) {
                Some(ev) if ev.revision <= self.after => continue,
                Some(ev) => {
                    self.after = ev.revision;
                    return Poll::Ready(Some(ev));
                }
                None => return Poll::Ready(None),
            }
        }
    }
}

impl futures::Stream for Watch {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut()
            .poll_shared(cx)
            .map(|o| o.map(|e| Event::clone(&e)))
    }
}
