//! A deduplicating work queue of object keys, shaped like client-go's `workqueue`: a key added
//! while queued is queued once; a key added while a worker processes it is queued again only
//! after that worker calls [`WorkQueue::done`], so one key is never reconciled concurrently.
//! Delayed adds ([`WorkQueue::add_after`]) and per-key exponential back-off
//! ([`WorkQueue::add_rate_limited`], reset by [`WorkQueue::forget`]) run on tokio's clock.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The queue; share it behind an `Arc`.
pub(crate) struct WorkQueue<K> {
    state: Mutex<State<K>>,
    notify: Notify,
    /// First back-off of [`WorkQueue::add_rate_limited`].
    base: Duration,
    /// Back-off ceiling.
    max: Duration,
}

struct State<K> {
    ready: VecDeque<K>,
    /// Keys waiting in `ready` or to be re-queued when their processing ends.
    dirty: HashSet<K>,
    processing: HashSet<K>,
    /// Delayed adds by due time (with a sequence number to keep equal instants apart).
    delayed: BTreeMap<(Instant, u64), K>,
    seq: u64,
    failures: HashMap<K, u32>,
}

impl<K: Eq + Hash + Clone> State<K> {
    /// Queues `key` unless already queued; whether a worker should be woken.
    fn add(&mut self, key: K) -> bool {
        if self.dirty.contains(&key) {
            return false;
        }
        self.dirty.insert(key.clone());
        if self.processing.contains(&key) {
            return false;
        }
        self.ready.push_back(key);
        true
    }

    /// Moves delayed keys that are due into the queue.
    fn promote_due(&mut self, now: Instant) {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.add(key);
        }
    }
}

impl<K: Eq + Hash + Clone> WorkQueue<K> {
    /// The back-off of client-go's `DefaultControllerRateLimiter` (per item: 5 ms doubling up
    /// to 1000 s), which the kube-controller-manager controllers use.
    pub(crate) fn controller_default() -> WorkQueue<K> {
        Self::new(Duration::from_millis(5), Duration::from_secs(1000))
    }

    /// An empty queue whose rate-limited re-adds back off from `base` doubling up to `max`.
    pub(crate) fn new(base: Duration, max: Duration) -> WorkQueue<K> {
        WorkQueue {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                delayed: BTreeMap::new(),
                seq: 0,
                failures: HashMap::new(),
            }),
            notify: Notify::new(),
            base,
            max,
        }
    }

    /// Queues `key` now.
    pub(crate) fn add(&self, key: K) {
        if self.state.lock().add(key) {
            self.notify.notify_one();
        }
    }

    /// Queues `key` once `delay` has passed.
    pub(crate) fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let mut st = self.state.lock();
        st.seq += 1;
        let seq = st.seq;
        st.delayed.insert((Instant::now() + delay, seq), key);
        drop(st);
        // A waiting worker recomputes its deadline.
        self.notify.notify_one();
    }

    /// Queues `key` after its next back-off (`base`·2ⁿ for the n-th consecutive failure).
    pub(crate) fn add_rate_limited(&self, key: K) {
        let delay = {
            let mut st = self.state.lock();
            let n = st.failures.entry(key.clone()).or_insert(0);
            let delay = self
                .base
                .checked_mul(1u32.checked_shl(*n).unwrap_or(u32::MAX))
                .map_or(self.max, |d| d.min(self.max));
            *n = n.saturating_add(1);
            delay
        };
        self.add_after(key, delay);
    }

    /// Clears the failure count of `key` (it reconciled successfully).
    pub(crate) fn forget(&self, key: &K) {
        self.state.lock().failures.remove(key);
    }

    /// Ends processing of `key`; re-queues it if it was added meanwhile.
    pub(crate) fn done(&self, key: &K) {
        let mut st = self.state.lock();
        st.processing.remove(key);
        if st.dirty.contains(key) {
            st.ready.push_back(key.clone());
            drop(st);
            self.notify.notify_one();
        }
    }

    /// The next key to process (marked as processing until [`WorkQueue::done`]), or `None`
    /// once `shutdown` is cancelled.
    pub(crate) async fn next(&self, shutdown: &CancellationToken) -> Option<K> {
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            let deadline = {
                let mut st = self.state.lock();
                st.promote_due(Instant::now());
                if let Some(key) = st.ready.pop_front() {
                    st.dirty.remove(&key);
                    st.processing.insert(key.clone());
                    let more = !st.ready.is_empty();
                    drop(st);
                    if more {
                        // Let another idle worker pick up the rest.
                        self.notify.notify_one();
                    }
                    return Some(key);
                }
                st.delayed.first_key_value().map(|((at, _), _)| *at)
            };
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = notified => {}
                _ = sleep => {}
            }
        }
    }

    /// Number of keys queued or delayed (tests, metrics).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let st = self.state.lock();
        st.ready.len() + st.delayed.len()
    }
}

/// A controller whose workers take keys from its queue (client-go's worker loop).
pub(crate) trait Reconciler: Send + Sync + 'static {
    /// The queued key.
    type Key: Eq + Hash + Clone + Send + Sync + std::fmt::Debug + 'static;
    /// The controller's queue.
    fn queue(&self) -> &WorkQueue<Self::Key>;
    /// Reconciles `key`; `Ok(Some(d))` looks at it again after `d`, an error retries it with
    /// back-off.
    fn reconcile(
        self: Arc<Self>,
        key: Self::Key,
    ) -> impl Future<Output = Result<Option<Duration>, crate::Error>> + Send;
    /// Takes a change of a watched object (and queues the keys it concerns); what [`drive`]
    /// feeds its reflectors into.
    fn observe(&self, change: crate::reflector::Change);
}

/// Runs a controller until `shutdown`: reflectors of `infos` feed [`Reconciler::observe`]
/// (which queues keys), `workers` loops reconcile them.
pub(crate) async fn drive<R: Reconciler>(
    cluster: &crate::cluster::ClusterRef,
    r: Arc<R>,
    infos: &[&'static api::registry::ResourceInfo],
    workers: usize,
    shutdown: &CancellationToken,
) {
    let mut tasks = tokio::task::JoinSet::new();
    let rx = crate::reflector::spawn_all(&mut tasks, cluster, infos, shutdown);
    let feeder = r.clone();
    crate::reflector::spawn_feeder(&mut tasks, rx, shutdown, move |c| feeder.observe(c));
    spawn_workers(&mut tasks, &r, workers, shutdown);
    while tasks.join_next().await.is_some() {}
}

/// Spawns `workers` worker loops of `r` onto `tasks`.
pub(crate) fn spawn_workers<R: Reconciler>(
    tasks: &mut tokio::task::JoinSet<()>,
    r: &Arc<R>,
    workers: usize,
    shutdown: &CancellationToken,
) {
    for _ in 0..workers {
        let r = r.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            while let Some(key) = r.queue().next(&shutdown).await {
                match r.clone().reconcile(key.clone()).await {
                    Ok(again) => {
                        r.queue().forget(&key);
                        if let Some(d) = again {
                            r.queue().add_after(key.clone(), d);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(?key, error = %e, "sync failed; retrying");
                        r.queue().add_rate_limited(key.clone());
                    }
                }
                r.queue().done(&key);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> WorkQueue<&'static str> {
        WorkQueue::new(Duration::from_millis(5), Duration::from_secs(1))
    }

    #[tokio::test(start_paused = true)]
    async fn dedups_and_requeues_after_done() {
        let q = queue();
        let stop = CancellationToken::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        assert_eq!(q.next(&stop).await, Some("a"));
        // Added while processing: not handed out again until done.
        q.add("a");
        assert_eq!(q.next(&stop).await, Some("b"));
        assert_eq!(q.len(), 0);
        q.done(&"a");
        assert_eq!(q.next(&stop).await, Some("a"));
        q.done(&"a");
        q.done(&"b");
        stop.cancel();
        assert_eq!(q.next(&stop).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_and_rate_limited() {
        let q = queue();
        let stop = CancellationToken::new();
        let start = Instant::now();
        q.add_after("late", Duration::from_secs(3));
        q.add_after("soon", Duration::from_secs(1));
        assert_eq!(q.next(&stop).await, Some("soon"));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(q.next(&stop).await, Some("late"));
        assert_eq!(start.elapsed(), Duration::from_secs(3));

        let t = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..10 {
            q.add_rate_limited("x");
            let before = Instant::now();
            assert_eq!(q.next(&stop).await, Some("x"));
            q.done(&"x");
            waits.push(before.elapsed().as_millis());
        }
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        q.forget(&"x");
        q.add_rate_limited("x");
        let before = Instant::now();
        assert_eq!(q.next(&stop).await, Some("x"));
        assert_eq!(before.elapsed(), Duration::from_millis(5));
        assert!(t.elapsed() > Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn wakes_a_waiting_worker() {
        let q = std::sync::Arc::new(queue());
        let stop = CancellationToken::new();
        let worker = {
            let q = q.clone();
            let stop = stop.clone();
            tokio::spawn(async move { q.next(&stop).await })
        };
        tokio::time::sleep(Duration::from_secs(10)).await;
        q.add("k");
        assert_eq!(worker.await.unwrap(), Some("k"));
    }
}
