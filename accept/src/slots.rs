//! The open connections of one server: a semaphore for the cap, and per connection whether a
//! request is in flight and since when it is idle, so that the idlest connection can be
//! closed when the cap (or the descriptor limit) is reached. A connection's slot lives in
//! its socket ([`Tracked`]), so it is freed exactly when the descriptor is closed, also
//! after the socket was handed to an upgraded stream.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// While the cap is reached and the evicted connection has not closed yet, another idle one
/// is asked to close this often.
const EVICT_RETRY: Duration = Duration::from_millis(100);

/// What a connection is doing, as far as eviction and the idle timer care.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Activity {
    /// Requests in flight (until their response body is done).
    pub(crate) active: usize,
    /// When `active` last dropped to zero (or the connection was accepted).
    pub(crate) idle_since: Instant,
    /// Whether a request ever arrived.
    pub(crate) served: bool,
    /// Handed to an upgraded stream (or otherwise out of the server's hands): never evicted.
    pub(crate) detached: bool,
}

/// One connection's shared state.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// Read by the eviction and by the idle timer when it expires; changing it wakes no one
    /// (a notification per request start and end cost more than the timer's few re-checks).
    pub(crate) activity: Mutex<Activity>,
    /// Cancelled to ask the connection to close (it finishes what is in flight).
    pub(crate) evict: CancellationToken,
}

impl ConnState {
    /// Marks one request in flight until the returned guard drops.
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        {
            let mut a = self.activity.lock();
            a.active += 1;
            a.served = true;
        }
        Busy(self.clone())
    }

    /// The connection is no longer the server's to close (an upgrade took its socket).
    pub(crate) fn detach(&self) {
        self.activity.lock().detached = true;
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub(crate) struct Busy(Arc<ConnState>);

impl Busy {
    pub(crate) fn detach(&self) {
        self.0.detach();
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut a = self.0.activity.lock();
        a.active = a.active.saturating_sub(1);
        if a.active == 0 {
            a.idle_since = Instant::now();
        }
    }
}

/// The open connections of one server and its cap.
#[derive(Debug)]
pub(crate) struct Slots {
    permits: Arc<Semaphore>,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
}

impl Slots {
    pub(crate) fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            permits: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// A free slot; at the cap, asks the idlest connection to close and waits for a slot.
    pub(crate) async fn permit(&self) -> OwnedSemaphorePermit {
        loop {
            if let Ok(p) = self.permits.clone().try_acquire_owned() {
                return p;
            }
            self.evict_idlest();
            tokio::select! {
                p = self.permits.clone().acquire_owned() => {
                    // The semaphore is never closed.
                    if let Ok(p) = p {
                        return p;
                    }
                }
                _ = tokio::time::sleep(EVICT_RETRY) => {}
            }
        }
    }

    /// Asks the connection idle longest (nothing in flight, not detached) to close; false if
    /// every connection is busy.
    pub(crate) fn evict_idlest(&self) -> bool {
        let conns = self.conns.lock();
        let idlest = conns
            .values()
            .filter(|c| !c.evict.is_cancelled())
            .filter_map(|c| {
                let a = *c.activity.lock();
                (a.active == 0 && !a.detached).then_some((a.idle_since, c))
            })
            .min_by_key(|(since, _)| *since);
        match idlest {
            Some((_, c)) => {
                c.evict.cancel();
                true
            }
            None => false,
        }
    }

    /// Registers an accepted socket under `permit`.
    pub(crate) fn track<T>(self: &Arc<Self>, io: T, permit: OwnedSemaphorePermit) -> Tracked<T> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Mutex::new(Activity {
            active: 0,
            idle_since: Instant::now(),
            served: false,
            detached: false,
        });
        let state = Arc::new(ConnState {
            activity,
            evict: CancellationToken::new(),
        });
        self.conns.lock().insert(id, state.clone());
        Tracked {
            io,
            slot: Slot {
                slots: self.clone(),
                id,
                state,
                _permit: permit,
            },
        }
    }

    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.conns.lock().len()
    }
}

/// A connection's place under the cap; freed on drop.
#[derive(Debug)]
struct Slot {
    slots: Arc<Slots>,
    id: u64,
    state: Arc<ConnState>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.conns.lock().remove(&self.id);
    }
}

/// An accepted socket that holds its place under the server's connection cap until it is
/// closed (dropped), wherever it ends up (a TLS stream, an upgraded exec session).
#[derive(Debug)]
pub struct Tracked<T> {
    io: T,
    slot: Slot,
}

impl<T> Tracked<T> {
    /// The socket.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The socket, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Resolves when the server wants this connection closed (the cap was reached and it is
    /// the idlest). A server that speaks its own protocol should close it then.
    pub fn evicted(&self) -> impl Future<Output = ()> + Send + 'static {
        self.slot.state.evict.clone().cancelled_owned()
    }

    pub(crate) fn state(&self) -> &Arc<ConnState> {
        &self.slot.state
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
