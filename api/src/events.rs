//! How a recorder writes a core/v1 Event, decided without I/O: client-go's legacy recorder
//! (`k8s.io/client-go/tools/record`), which the kubelet and kube-controller-manager use.
//!
//! - [`event_name`]: `<object name>.<unix nanoseconds in hex>` (`makeEvent`).
//! - [`event_key`]: what makes two events the same one (`getEventKey`).
//! - [`Correlator`]: the event correlator's deduplication (`events_cache.go` `eventLogger`):
//!   the first event under a key is created; each repeat becomes a patch of that event with
//!   `count + 1`, the new `lastTimestamp` and the message. The cache is an LRU of 4096 keys.
//!   After a write, [`Correlator::update_state`] records what the server returned.
//!
//! The recorder's other two stages, the aggregator (similar events with different messages
//! combined after 10 in 10 minutes) and the per-object spam filter (a token bucket), are not
//! implemented. Start at [`Correlator::observe`].

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

/// How many keys the correlator remembers (client-go's `maxLruCacheEntries`).
pub const MAX_LRU_CACHE_ENTRIES: usize = 4096;

/// The name of a new event about the object `object_name`, made at `at` (client-go's
/// `fmt.Sprintf("%v.%x", ref.Name, t.UnixNano())`).
pub fn event_name(object_name: &str, at: Timestamp) -> String {
    let nanos = at.as_nanosecond();
    // Go prints a negative number in hex with a sign, not in two's complement.
    if nanos < 0 {
        format!("{object_name}.-{:x}", nanos.unsigned_abs())
    } else {
        format!("{object_name}.{nanos:x}")
    }
}

/// The deduplication key of an event (client-go's `getEventKey`): source component and host,
/// the involved object's kind, namespace, name, field path, UID and API version, type,
/// reason and message, concatenated without separators as upstream does.
pub fn event_key(event: &Event) -> String {
    let source = event.source.as_ref();
    let o = &event.involved_object;
    [
        source.and_then(|s| s.component.as_deref()),
        source.and_then(|s| s.host.as_deref()),
        o.kind.as_deref(),
        o.namespace.as_deref(),
        o.name.as_deref(),
        o.field_path.as_deref(),
        o.uid.as_deref(),
        o.api_version.as_deref(),
        event.type_.as_deref(),
        event.reason.as_deref(),
        event.message.as_deref(),
    ]
    .into_iter()
    .map(Option::unwrap_or_default)
    .collect()
}

/// What is remembered of the last event written under a key (client-go's `eventLog`).
#[derive(Debug, Clone, PartialEq)]
struct EventLog {
    count: i32,
    first_timestamp: Option<Time>,
    name: String,
    resource_version: Option<String>,
}

impl EventLog {
    fn of(event: &Event) -> Self {
        Self {
            count: event.count.unwrap_or(0),
            first_timestamp: event.first_timestamp.clone(),
            name: event.metadata.name.clone().unwrap_or_default(),
            resource_version: event.metadata.resource_version.clone(),
        }
    }
}

/// What to write for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The event as it should stand on the server: for a repeat, renamed to the first one,
    /// with its `firstTimestamp`, `resourceVersion` and the count incremented.
    pub event: Event,
    /// For a repeat: the strategic-merge patch of the existing event (`count`,
    /// `lastTimestamp`, `message`). If that event is gone (NotFound), [`Observed::event`] is
    /// created instead, without its `resourceVersion`, as client-go's `recordEvent` does.
    /// `None`: create [`Observed::event`].
    pub patch: Option<Value>,
}

/// The event correlator's deduplication state: a least-recently-used map from
/// [`event_key`] to the last event written under it.
#[derive(Debug)]
pub struct Correlator {
    entries: HashMap<String, (EventLog, u64)>,
    /// Use stamp → key: the least recently used key first.
    order: BTreeMap<u64, String>,
    clock: u64,
    capacity: usize,
}

impl Default for Correlator {
    fn default() -> Self {
        Self::with_capacity(MAX_LRU_CACHE_ENTRIES)
    }
}

impl Correlator {
    /// A correlator remembering at most `capacity` keys (client-go uses
    /// [`MAX_LRU_CACHE_ENTRIES`]).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
            capacity: capacity.max(1),
        }
    }

    /// Decides how `event` (a new event as the recorder made it: its own name, `count: 1`,
    /// both timestamps now) is written (client-go's `eventObserve`), and remembers it.
    pub fn observe(&mut self, event: &Event) -> Observed {
        let key = event_key(event);
        let mut event = event.clone();
        let mut patch = None;
        if let Some(last) = self.get(&key).filter(|l| l.count > 0) {
            event.metadata.name = Some(last.name);
            event.metadata.resource_version = last.resource_version;
            event.first_timestamp = last.first_timestamp;
            event.count = Some(last.count + 1);
            patch = Some(repeat_patch(&event));
        }
        self.add(key, EventLog::of(&event));
        Observed { event, patch }
    }

    /// Records the event the server returned after a write (client-go's `updateState`), so
    /// the next repeat patches it under its stored name and resource version.
    pub fn update_state(&mut self, written: &Event) {
        self.add(event_key(written), EventLog::of(written));
    }

    /// The entry for `key`, now the most recently used.
    fn get(&mut self, key: &str) -> Option<EventLog> {
        self.clock += 1;
        let (log, stamp) = self.entries.get_mut(key)?;
        self.order.remove(stamp);
        *stamp = self.clock;
        self.order.insert(self.clock, key.to_string());
        Some(log.clone())
    }

    /// Stores `log` under `key` as the most recently used, evicting the least recently used
    /// key when full.
    fn add(&mut self, key: String, log: EventLog) {
        self.clock += 1;
        if let Some((_, stamp)) = self.entries.get(&key) {
            self.order.remove(stamp);
        } else if self.entries.len() >= self.capacity
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.entries.remove(&oldest);
        }
        self.order.insert(self.clock, key.clone());
        self.entries.insert(key, (log, self.clock));
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The patch client-go computes for a repeat: the two-way strategic-merge patch from the
/// event with `count` 0, `lastTimestamp` the Unix epoch and no message to `event`, i.e.
/// those three fields where they differ from those zero values.
fn repeat_patch(event: &Event) -> Value {
    let mut patch = Map::new();
    if let Some(count) = event.count.filter(|c| *c != 0) {
        patch.insert("count".into(), json!(count));
    }
    if let Some(last) = event
        .last_timestamp
        .as_ref()
        .filter(|t| t.0 != Timestamp::UNIX_EPOCH)
    {
        patch.insert("lastTimestamp".into(), json!(last));
    }
    if let Some(message) = event.message.as_deref().filter(|m| !m.is_empty()) {
        patch.insert("message".into(), json!(message));
    }
    Value::Object(patch)
}

#[cfg(test)]
mod tests;
