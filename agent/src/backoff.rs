//! Container restart back-off (CrashLoopBackOff): client-go's `flowcontrol.Backoff` as the
//! kubelet configures it [pkg/kubelet/kubelet.go; client-go/util/flowcontrol/backoff.go;
//! kuberuntime_manager.go `doBackOff`].
//!
//! Per (pod, container) key: the first restart is immediate and creates an entry of 10 s;
//! each later restart outside the window doubles it up to 300 s. A restart is held back while
//! `now − finishedAt < backoff`. The entry is reset when the exit happened more than 600 s after
//! the entry was last advanced (the container ran long enough). The image pull back-off
//! (`ImagePullBackOff`) is the same structure keyed by pod and image, tested against the last
//! failed pull ([`Backoff::in_backoff_since_update`]).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Initial back-off (`initialBackOff`).
pub const INITIAL: Duration = Duration::from_secs(10);
/// Maximum back-off (`MaxContainerBackOff`).
pub const MAX: Duration = Duration::from_secs(300);
/// An entry last advanced longer than this before the exit is reset.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: Instant,
}

/// Back-off entries of one pod's containers, keyed by container name.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(INITIAL, MAX)
    }
}

impl Backoff {
    /// Back-off starting at `initial`, capped at `max` (initial lowered to max if larger).
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial: initial.min(max),
            max,
            entries: HashMap::new(),
        }
    }

    fn expired(event: Instant, last_update: Instant) -> bool {
        event.saturating_duration_since(last_update) > RESET_AFTER
    }

    /// The remaining wait if a restart of `key`, whose last instance finished at `finished`, is
    /// held back at `now` (`IsInBackOffSince`).
    pub fn remaining(&self, key: &str, finished: Instant, now: Instant) -> Option<Duration> {
        let e = self.entries.get(key)?;
        if Self::expired(finished, e.last_update) {
            return None;
        }
        let since = now.saturating_duration_since(finished);
        (since < e.backoff).then(|| e.backoff - since)
    }

    /// The current back-off of `key` (for the `back-off 40s restarting …` message).
    pub fn current(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.backoff)
    }

    /// Records a restart of `key` at `now` (`Next`).
    pub fn advance(&mut self, key: &str, finished: Instant, now: Instant) {
        let backoff = match self.entries.get(key) {
            Some(e) if !Self::expired(finished, e.last_update) => (e.backoff * 2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                backoff,
                last_update: now,
            },
        );
    }

    /// Whether `key` was advanced less than its back-off before `now`
    /// (`IsInBackOffSinceUpdate`, the image pull back-off's test).
    pub fn in_backoff_since_update(&self, key: &str, now: Instant) -> bool {
        self.entries.get(key).is_some_and(|e| {
            !Self::expired(now, e.last_update)
                && now.saturating_duration_since(e.last_update) < e.backoff
        })
    }

    /// Drops the entries not advanced for longer than the reset period (`GC`).
    pub fn gc(&mut self, now: Instant) {
        self.entries
            .retain(|_, e| !Self::expired(now, e.last_update));
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_and_reset_after_ten_minutes() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        let mut delays = Vec::new();
        let mut t = t0;
        // A container that crashes at once every time: restart as soon as allowed.
        for _ in 0..9 {
            let finished = t;
            let wait = b.remaining("c", finished, finished).unwrap_or_default();
            delays.push(wait.as_secs());
            t = finished + wait;
            assert_eq!(b.remaining("c", finished, t), None);
            b.advance("c", finished, t);
        }
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
        // Ran for more than 600 s since the last restart: back to immediate, then 10 s.
        let finished = t + Duration::from_secs(601);
        assert_eq!(b.remaining("c", finished, finished), None);
        b.advance("c", finished, finished);
        assert_eq!(b.current("c"), Some(INITIAL));
        // Exactly 600 s is not enough to reset.
        let mut b2 = Backoff::default();
        b2.advance("c", t0, t0);
        b2.advance("c", t0, t0);
        let f = t0 + Duration::from_secs(600);
        assert_eq!(b2.remaining("c", f, f), Some(Duration::from_secs(20)));
    }
}
