//! Upstream `pkg/controller/nodelifecycle/scheduler/rate_limited_queue.go`: the per-zone
//! queue of nodes waiting for a NoExecute taint, a unique priority queue by `process_at`
//! drained through a token bucket (client-go `flowcontrol.NewTokenBucketRateLimiter` with
//! burst 1, full when created; a rate of 0 never accepts). [`RateLimitedTimedQueue::try_process`]
//! is upstream's `Try`: each attempt, even one that finds the head not yet due, costs a token.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

/// Upstream `EvictionRateLimiterBurst`.
const BURST: f64 = 1.0;

/// A token bucket on tokio's clock (`golang.org/x/time/rate` as client-go uses it).
#[derive(Debug)]
pub(crate) struct TokenBucket {
    /// Tokens per second; `<= 0` never accepts (client-go `NewFakeNeverRateLimiter`).
    qps: f32,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `qps`.
    pub(crate) fn new(qps: f32) -> TokenBucket {
        TokenBucket {
            qps,
            tokens: BURST,
            last: Instant::now(),
        }
    }

    /// Upstream `TryAccept`: takes a token if one is there.
    pub(crate) fn try_accept(&mut self) -> bool {
        if self.qps <= 0.0 {
            return false;
        }
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * f64::from(self.qps)).min(BURST);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A value to process at a time (upstream `TimedValue`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimedValue {
    /// The node name.
    pub(crate) value: String,
    /// The node's uid.
    pub(crate) uid: String,
    /// When it was added.
    pub(crate) added_at: Instant,
    /// When it may be processed.
    pub(crate) process_at: Instant,
}

/// Upstream `RateLimitedTimedQueue` (its `UniqueQueue` inlined): a value is in it at most
/// once until removed; a value processed successfully stays in the set (so it is not added
/// again) until [`RateLimitedTimedQueue::remove`].
#[derive(Debug)]
pub(crate) struct RateLimitedTimedQueue {
    /// Ordered by `process_at`, then insertion (a heap upstream; few nodes here).
    queue: Vec<TimedValue>,
    set: HashSet<String>,
    limiter: TokenBucket,
}

impl RateLimitedTimedQueue {
    /// An empty queue at `qps`.
    pub(crate) fn new(qps: f32) -> RateLimitedTimedQueue {
        RateLimitedTimedQueue {
            queue: Vec::new(),
            set: HashSet::new(),
            limiter: TokenBucket::new(qps),
        }
    }

    fn head(&self) -> Option<TimedValue> {
        self.queue.iter().min_by_key(|v| v.process_at).cloned()
    }

    /// Upstream `Add`: queues `value` now unless it is in the set; whether it was added.
    pub(crate) fn add(&mut self, value: &str, uid: &str) -> bool {
        if self.set.contains(value) {
            return false;
        }
        let now = Instant::now();
        self.queue.push(TimedValue {
            value: value.to_string(),
            uid: uid.to_string(),
            added_at: now,
            process_at: now,
        });
        self.set.insert(value.to_string());
        true
    }

    /// Upstream `Remove`: drops `value` from the queue and the set; whether it was in the set.
    pub(crate) fn remove(&mut self, value: &str) -> bool {
        if !self.set.remove(value) {
            return false;
        }
        self.queue.retain(|v| v.value != value);
        true
    }

    /// Whether `value` is in the set (queued, or processed and not removed).
    #[cfg(test)]
    pub(crate) fn contains(&self, value: &str) -> bool {
        self.set.contains(value)
    }

    /// The values due and allowed by the limiter, in order (upstream `Try` before the
    /// action): each is taken out of the queue but kept in the set. Call
    /// [`RateLimitedTimedQueue::retry`] for those whose action failed.
    pub(crate) fn take_due(&mut self) -> Vec<TimedValue> {
        let mut out = Vec::new();
        while let Some(val) = self.head() {
            if !self.limiter.try_accept() {
                break;
            }
            if Instant::now() < val.process_at {
                break;
            }
            self.queue.retain(|v| v.value != val.value);
            out.push(val);
        }
        out
    }

    /// Upstream `Try`'s failure branch: `val` goes back, due after `wait` (+1 ns), unless it
    /// was removed meanwhile.
    pub(crate) fn retry(&mut self, mut val: TimedValue, wait: Duration) {
        if !self.set.contains(&val.value) || self.queue.iter().any(|v| v.value == val.value) {
            return;
        }
        val.process_at = Instant::now() + wait + Duration::from_nanos(1);
        self.queue.push(val);
    }

    /// Upstream `SwapLimiter`: a new bucket when the rate changes; a bucket replacing one
    /// that is empty starts empty too (burst 1).
    pub(crate) fn swap_limiter(&mut self, qps: f32) {
        if self.limiter.qps == qps {
            return;
        }
        let mut new = TokenBucket::new(qps);
        if qps > 0.0 && !self.limiter.try_accept() {
            new.try_accept();
        }
        self.limiter = new;
    }

    /// The limiter's rate.
    #[cfg(test)]
    pub(crate) fn qps(&self) -> f32 {
        self.limiter.qps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_per_period_and_unique_until_removed() {
        let mut q = RateLimitedTimedQueue::new(0.1);
        assert!(q.add("a", "1"));
        assert!(q.add("b", "2"));
        assert!(!q.add("a", "1"));
        // The bucket starts full: one now, the next 10 s later.
        let got: Vec<_> = q.take_due().into_iter().map(|v| v.value).collect();
        assert_eq!(got, ["a"]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(q.take_due().is_empty());
        tokio::time::sleep(Duration::from_secs(5)).await;
        let got: Vec<_> = q.take_due().into_iter().map(|v| v.value).collect();
        assert_eq!(got, ["b"]);
        // Processed values stay in the set until removed.
        assert!(!q.add("a", "1"));
        assert!(q.remove("a"));
        assert!(q.add("a", "1"));
        // A rate of 0 never lets anything through.
        q.swap_limiter(0.0);
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(q.take_due().is_empty());
        // Replacing an empty limiter starts the new one empty too.
        q.swap_limiter(0.1);
        assert!(q.take_due().is_empty());
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(q.take_due().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_values_come_back_after_their_wait() {
        let mut q = RateLimitedTimedQueue::new(100.0);
        q.add("a", "1");
        let v = q.take_due().pop().unwrap();
        q.retry(v, Duration::from_millis(50));
        // Looking at a head that is not due yet costs a token too, as upstream.
        assert!(q.take_due().is_empty());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(q.take_due().len(), 1);
        // A value removed while it was being processed is not put back.
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.add("b", "2");
        let v = q.take_due().pop().unwrap();
        q.remove("b");
        q.retry(v, Duration::ZERO);
        assert!(!q.contains("b"));
    }
}
