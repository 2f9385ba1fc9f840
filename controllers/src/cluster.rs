//! The controllers' port to the cluster: [`Cluster`] and its vocabulary (defined in
//! `api::cluster`, where the API server's registry can implement it, and re-exported here).
//! A controller holds a [`ClusterRef`] and never anything below it.
//!
//! Implementations: `apiserver::cluster` (the in-process registry, what the binary runs the
//! controllers on) and the binary's `kube_cluster` (a kube-rs client, for controllers out of
//! process; not yet behind a command). A controller's tests run it against the in-process
//! one over a memory store.

use std::sync::Arc;

pub use api::cluster::{
    Binding, Cluster, DeleteOptions, Deleted, ObjectList, Propagation, Subresource, WatchEvent,
    WatchStream, is_conflict,
};

/// A shared handle to the cluster, as controllers hold it.
pub type ClusterRef = Arc<dyn Cluster>;
