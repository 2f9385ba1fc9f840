//! The one error type of the store; the apiserver maps each variant to a Kubernetes `Status`.

use crate::Revision;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not exist (HTTP 404).
    #[error("not found")]
    NotFound,
    /// A create hit an existing key (HTTP 409, reason AlreadyExists).
    #[error("already exists")]
    AlreadyExists,
    /// The resourceVersion precondition did not match the current mod revision (HTTP 409, reason Conflict).
    #[error("resourceVersion precondition failed: expected {expected}, current {actual}")]
    Conflict {
        /// The revision the caller expected.
        expected: Revision,
        /// The object's current mod revision.
        actual: Revision,
    },
    /// The requested revision was compacted away (HTTP 410, reason Expired/Gone).
    #[error("too old resource version: {requested} (oldest available: {oldest})")]
    Gone {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision that can still be listed at or watched from.
        oldest: Revision,
    },
    /// A continue token that does not decode or does not belong to this list (HTTP 400).
    #[error("invalid continue token: {0}")]
    InvalidContinue(String),
    /// The durable backend failed (I/O, corruption); the message names the file.
    #[error("storage backend: {0}")]
    Backend(String),
    /// The store was closed; no more writes are accepted.
    #[error("store is closed")]
    Closed,
    /// The value or key cannot be stored (not a JSON object, bad metadata, empty or NUL-containing key part).
    #[error("invalid object: {0}")]
    InvalidObject(String),
}
