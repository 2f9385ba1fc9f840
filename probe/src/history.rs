//! [`ProbeHistory`]: the last attempts of one probe of one container — time, duration, result
//! and output of each — kept for `paddock why`, `describe` and the dashboard.
//!
//! Consecutive attempts that came out the same (same container, result and output) are kept as
//! one record with a repeat count and the first and last start: an idle, healthy probe costs one
//! record instead of a ring of identical ones (about 13 KiB per probe at the default capacity),
//! while every change — the failures before a restart, the successes before Ready — stays.

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
    /// Further attempts with the same outcome folded into this record (0: none). `duration`
    /// is then the longest of them.
    pub repeats: u32,
    /// Start of the newest folded attempt (`started_at` when none).
    pub last_started_at: SystemTime,
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
            repeats: 0,
            last_started_at: run.started_at,
        }
    }

    /// Whether `other` came out the same as this record (and so is folded into it).
    fn same_outcome(&self, other: &Attempt) -> bool {
        self.container_id == other.container_id
            && self.handler_result == other.handler_result
            && self.outcome == other.outcome
            && self.output == other.output
            && self.tries == other.tries
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

    /// Records an attempt: folded into the newest record when it came out the same, otherwise
    /// a new record, dropping the oldest when full.
    pub fn push(&self, attempt: Attempt) {
        if self.capacity == 0 {
            return;
        }
        let mut a = self.attempts.lock();
        if let Some(last) = a.back_mut()
            && last.same_outcome(&attempt)
        {
            last.repeats = last.repeats.saturating_add(1);
            last.last_started_at = attempt.started_at;
            last.duration = last.duration.max(attempt.duration);
            return;
        }
        if a.len() >= self.capacity {
            a.pop_front();
        }
        a.push_back(attempt);
    }

    /// All kept records, oldest first.
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
            repeats: 0,
            last_started_at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn repeated_outcomes_fold_into_one_record_and_changes_start_a_new_one() {
        let h = ProbeHistory::new(3);
        let at = |s: u64, ok: bool| Attempt {
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(s),
            last_started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(s),
            duration: Duration::from_millis(s),
            outcome: Ok(if ok {
                ProbeResult::Success
            } else {
                ProbeResult::Failure
            }),
            ..attempt(1)
        };
        for s in 1..=50 {
            h.push(at(s, true));
        }
        h.push(at(51, false));
        h.push(at(52, false));
        h.push(at(53, true));
        let recs = h.snapshot();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].repeats, 49);
        assert_eq!(
            recs[0].started_at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1)
        );
        assert_eq!(
            recs[0].last_started_at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(50)
        );
        assert_eq!(recs[0].duration, Duration::from_millis(50));
        assert_eq!(recs[1].repeats, 1);
        assert_eq!(recs[1].outcome, Ok(ProbeResult::Failure));
        assert_eq!(recs[2].repeats, 0);
        // Another container's attempt is never folded into this one's.
        h.push(Attempt {
            container_id: Arc::from("c2"),
            ..at(54, true)
        });
        assert_eq!(h.len(), 3);
        assert_eq!(h.last().map(|a| a.container_id), Some(Arc::from("c2")));
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
