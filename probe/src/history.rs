//! [`ProbeHistory`]: the last attempts of one probe of one container — time, duration, result
//! and output of each — kept for `paddock why`, `describe` and the dashboard.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use crate::prober::ProbeRun;
use crate::types::{HandlerResult, ProbeResult};

/// Attempts kept per probe unless configured otherwise.
pub const DEFAULT_HISTORY: usize = 100;

/// One probe attempt as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Wall-clock start.
    pub started_at: SystemTime,
    /// Duration of all tries.
    pub duration: Duration,
    /// The container instance probed.
    pub container_id: Arc<str>,
    /// What the handler said (last try).
    pub handler_result: HandlerResult,
    /// The result the worker counted, or the error text when the result was discarded.
    pub outcome: Result<ProbeResult, String>,
    /// Output of the last try.
    pub output: String,
    /// Tries made (more than one only when the handler errored).
    pub tries: u8,
}

impl Attempt {
    /// Builds the record of `run` against `container_id` (taking its output, no copy).
    pub fn from_run(run: ProbeRun, container_id: Arc<str>) -> Self {
        Self {
            started_at: run.started_at,
            duration: run.duration,
            container_id,
            handler_result: run.handler_result,
            outcome: run.outcome.map_err(|e| e.to_string()),
            output: run.output,
            tries: run.tries,
        }
    }
}

/// A bounded ring of attempts, oldest dropped first. Cheap to share (`Arc`) between the worker
/// that writes and the agent that reads.
#[derive(Debug)]
pub struct ProbeHistory {
    capacity: usize,
    attempts: Mutex<VecDeque<Attempt>>,
}

impl ProbeHistory {
    /// An empty history keeping at most `capacity` attempts (allocates on first use).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            attempts: Mutex::new(VecDeque::new()),
        }
    }

    /// Records an attempt, dropping the oldest when full.
    pub fn push(&self, attempt: Attempt) {
        if self.capacity == 0 {
            return;
        }
        let mut a = self.attempts.lock();
        if a.len() >= self.capacity {
            a.pop_front();
        }
        a.push_back(attempt);
    }

    /// All kept attempts, oldest first.
    pub fn snapshot(&self) -> Vec<Attempt> {
        self.attempts.lock().iter().cloned().collect()
    }

    /// The newest attempt.
    pub fn last(&self) -> Option<Attempt> {
        self.attempts.lock().back().cloned()
    }

    /// Number of kept attempts.
    pub fn len(&self) -> usize {
        self.attempts.lock().len()
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most attempts kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(n: u8) -> Attempt {
        Attempt {
            started_at: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(u64::from(n)),
            container_id: Arc::from("c"),
            handler_result: HandlerResult::Success,
            outcome: Ok(ProbeResult::Success),
            output: String::new(),
            tries: n,
        }
    }

    #[test]
    fn keeps_the_newest_up_to_capacity() {
        let h = ProbeHistory::new(3);
        for n in 1..=5 {
            h.push(attempt(n));
        }
        let tries: Vec<u8> = h.snapshot().iter().map(|a| a.tries).collect();
        assert_eq!(tries, [3, 4, 5]);
        assert_eq!(h.last().map(|a| a.tries), Some(5));
    }
}
