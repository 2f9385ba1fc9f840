//! Controllers that run inside the server, shaped like kube-runtime's: a `reflector` lists a
//! resource from the store and then watches it from that revision (relisting when the watch
//! ends), feeding a deduplicating, rate-limited `queue` of object keys; workers reconcile one
//! key at a time, idempotently, from the current state, and requeue on failure.
//!
//! Start at [`start`] / [`run`], which run every controller; then [`gc`] (the garbage collector:
//! ownerReferences, foreground and orphan deletion), [`namespace`] (namespace termination) and
//! [`scheduler`] (binds pending pods to nodes). Events are written through `events`.

// The registry's read-modify-write callbacks return `Result<bool, ApiError>` by its API.
#![allow(clippy::result_large_err)]

mod events;
pub mod gc;
pub mod namespace;
mod pod;
mod queue;
mod reflector;
pub mod scheduler;
#[cfg(test)]
mod testutil;

use apiserver::Registry;

/// The shutdown signal [`run`] and each controller take (re-exported from `tokio-util`).
pub use tokio_util::sync::CancellationToken;

/// Why a reconcile attempt failed; the key is retried with exponential back-off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call through the registry failed.
    #[error(transparent)]
    Api(Box<api::status::ApiError>),
    /// An owner reference names a kind paddock does not serve.
    #[error("unable to resolve owner reference kind {kind} in {api_version}")]
    UnknownKind {
        /// `apiVersion` of the reference.
        api_version: String,
        /// `kind` of the reference.
        kind: String,
    },
    /// Namespace content remains that nothing is going to remove (no finalizer, no grace
    /// period): upstream's "unexpected items still remain" error.
    #[error("{0}")]
    ContentRemains(String),
}

impl From<api::status::ApiError> for Error {
    fn from(e: api::status::ApiError) -> Error {
        Error::Api(Box::new(e))
    }
}

/// The controllers running in the background, from [`start`].
#[derive(Debug)]
pub struct Controllers {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Controllers {
    /// Stops every controller and waits until they have stopped.
    pub async fn stop(self) {
        self.shutdown.cancel();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "controllers ended abnormally");
        }
    }
}

/// Starts every in-process controller on the current tokio runtime.
pub fn start(registry: Registry) -> Controllers {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(registry, shutdown.clone()));
    Controllers { shutdown, task }
}

/// Runs every in-process controller until `shutdown` is cancelled.
pub async fn run(registry: Registry, shutdown: CancellationToken) {
    tokio::join!(
        gc::run(registry.clone(), shutdown.clone()),
        namespace::run(registry.clone(), shutdown.clone()),
        scheduler::run(registry, shutdown),
    );
}

/// Small accessors over JSON objects shared by the controllers.
pub(crate) mod meta {
    use serde_json::Value;

    /// `metadata.<field>` as a string, `""` when absent.
    pub(crate) fn str<'a>(obj: &'a Value, field: &str) -> &'a str {
        obj["metadata"][field].as_str().unwrap_or("")
    }

    /// `metadata.uid`.
    pub(crate) fn uid(obj: &Value) -> &str {
        str(obj, "uid")
    }

    /// Whether `metadata.deletionTimestamp` is set.
    pub(crate) fn deleting(obj: &Value) -> bool {
        !obj["metadata"]["deletionTimestamp"].is_null()
    }

    /// Whether `metadata.finalizers` holds `finalizer`.
    pub(crate) fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
        obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|v| v.as_str() == Some(finalizer)))
    }

    /// Removes `finalizer` from `metadata.finalizers`; whether it was there.
    pub(crate) fn remove_finalizer(obj: &mut Value, finalizer: &str) -> bool {
        let Some(list) = obj["metadata"]["finalizers"].as_array_mut() else {
            return false;
        };
        let before = list.len();
        list.retain(|v| v.as_str() != Some(finalizer));
        before != list.len()
    }

    /// The current time as a Kubernetes RFC 3339 timestamp (seconds, UTC).
    pub(crate) fn now_rfc3339() -> String {
        apiserver::meta::rfc3339(apiserver::meta::now())
    }
}
