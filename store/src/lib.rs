//! Revisioned object store: the single source of truth behind the apiserver.
//!
//! One global, monotonically increasing revision (= Kubernetes `resourceVersion`); every
//! successful write gets its own revision (+1 each). All state is served from memory, like the
//! apiserver's watch cache or kine; the redb backend only makes writes durable and lets a restart
//! reload the objects and the recent event log.
//!
//! Start reading at [`Store`] (`store.rs`): the handle and every operation. Then:
//! - `state.rs`: the in-memory objects, the event log and how a write is planned (preconditions);
//! - `writer.rs`: the group-commit writer thread of the durable backend, and how it refuses
//!   writes after a failed commit (a full disk) and reopens the file once it can
//!   ([`Store::check`] reports it);
//! - `persist.rs`: the redb layout (`objects`, `log`, `meta` tables) and its binary encoding;
//! - `watch.rs`: watcher fan-out with bounded buffers;
//! - `continue_token.rs`: opaque `continue` tokens for paged lists.
//!
//! Values are JSON objects; the store writes `metadata.resourceVersion` (decimal string of the
//! object's mod revision) into every object it stores and returns, and knows nothing else about
//! Kubernetes.

mod continue_token;
mod error;
mod persist;
mod state;
mod store;
mod watch;
mod writer;

use std::sync::Arc;

use serde_json::Value;

pub use error::StoreError;
pub use store::{Store, StoreConfig};
pub use watch::Watch;

/// A global revision; its decimal form is the Kubernetes `resourceVersion`.
pub type Revision = u64;

/// Where an object lives.
///
/// `resource` is `group/plural` (`"pods"`, `"apps/deployments"`; the core group has no prefix),
/// `namespace` is `""` for cluster-scoped objects.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// `group/plural`, or just `plural` for the core group.
    pub resource: String,
    /// Namespace, `""` for cluster-scoped resources.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl Key {
    /// Builds a key from its three parts.
    pub fn new(
        resource: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Key {
        Key {
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was updated.
    Modified,
    /// The object was deleted.
    Deleted,
}

/// One change, as delivered to watchers and kept in the event log.
#[derive(Clone, Debug)]
pub struct Event {
    /// Added, Modified or Deleted.
    pub kind: EventType,
    /// The revision of this write.
    pub revision: Revision,
    /// The object's key.
    pub key: Key,
    /// The new state; for `Deleted` the last state with `metadata.resourceVersion` set to the
    /// deletion revision (as Kubernetes does).
    pub object: Arc<Value>,
    /// The state before this write (`None` for `Added`).
    pub prev: Option<Arc<Value>>,
}

impl Event {
    /// The previous state stamped with this event's revision: what Kubernetes sends as a
    /// `DELETED` event when an update moves an object out of a watch's selector.
    pub fn prev_at_revision(&self) -> Option<Value> {
        let mut prev = Value::clone(self.prev.as_deref()?);
        state::set_resource_version(&mut prev, self.revision).ok()?;
        Some(prev)
    }
}

/// Paging options of [`Store::list`].
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// At most this many items (`None` or `Some(0)` = all).
    pub limit: Option<usize>,
    /// The `continue` token of the previous page.
    pub continue_token: Option<String>,
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct ListResult {
    /// Items sorted by (namespace, name).
    pub items: Vec<Arc<Value>>,
    /// The revision the page is consistent at (the same for every page of one list).
    pub revision: Revision,
    /// Token for the next page, `None` on the last page.
    pub continue_token: Option<String>,
    /// How many items follow this page (set only when there is a next page).
    pub remaining: Option<u64>,
}

#[cfg(test)]
mod tests;
