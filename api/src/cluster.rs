//! The port between the controllers and the cluster: the operations a controller performs on
//! API objects ([`Cluster`]), shaped like client-go's typed clients and kube-rs's `Api`
//! (get, list at a resourceVersion, watch from it, create, update with preconditions, the
//! `status`/`finalize` subresources, delete with options, and a pod's `binding`).
//!
//! It lives here, beside the resource table and `Status` errors it speaks in, so that the
//! controllers need neither the API server nor the store: the API server implements it for
//! its `Registry` (in process), the binary for a kube-rs client (out of process, so far
//! exercised by its test only). Objects
//! travel as JSON, as they do on the wire; a watch that ends or fails means "list again",
//! never "nothing is there".

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::BoxStream;
use serde_json::Value;

use crate::registry::ResourceInfo;
use crate::status::ApiError;

/// `propagationPolicy` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Leave dependents (adds the `orphan` finalizer).
    Orphan,
    /// Delete the owner now, dependents afterwards (the garbage collector).
    Background,
    /// Delete dependents first (adds the `foregroundDeletion` finalizer).
    Foreground,
}

impl Propagation {
    /// Parses the wire form (`Orphan`, `Background`, `Foreground`).
    pub fn parse(s: &str) -> Option<Propagation> {
        match s {
            "Orphan" => Some(Propagation::Orphan),
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            _ => None,
        }
    }

    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Orphan => "Orphan",
            Propagation::Background => "Background",
            Propagation::Foreground => "Foreground",
        }
    }
}

/// Options of a delete (`DeleteOptions`).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy` (or the legacy `orphanDependents`).
    pub propagation_policy: Option<Propagation>,
    /// `preconditions.uid`.
    pub preconditions_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub preconditions_resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// The outcome of a delete.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object is gone; its last state.
    Gone(Arc<Value>),
    /// The object stays with a `deletionTimestamp` until finalizers or its grace period end.
    Pending(Arc<Value>),
}

/// Which part of an object an update writes (the main resource or a subresource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// The object itself (`PUT .../{name}`); its `status` is kept for kinds with a status
    /// subresource.
    Main,
    /// `PUT .../{name}/status`.
    Status,
    /// A namespace's `PUT .../{name}/finalize` (only `spec.finalizers`).
    Finalize,
    /// A CertificateSigningRequest's `PUT .../{name}/approval` (only `status.conditions`).
    Approval,
}

/// The objects of a list and the resourceVersion the list is consistent at (where a watch
/// continues).
#[derive(Debug, Clone, Default)]
pub struct ObjectList {
    /// The items, sorted by namespace and name.
    pub items: Vec<Arc<Value>>,
    /// `metadata.resourceVersion` of the list.
    pub resource_version: String,
}

/// One change a watch reports.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// Created: the new object.
    Added(Arc<Value>),
    /// Changed: the new state.
    Modified(Arc<Value>),
    /// Deleted: the last state.
    Deleted(Arc<Value>),
}

/// The events of a watch. It ends (or yields an error, such as `410 Gone` when the
/// resourceVersion is too old) when the watcher must list again.
pub type WatchStream = BoxStream<'static, Result<WatchEvent, ApiError>>;

/// A `Binding` (`POST pods/{name}/binding`): the node a pod goes to.
#[derive(Debug, Clone, Default)]
pub struct Binding {
    /// `metadata.uid`: the pod must still have this uid.
    pub uid: Option<String>,
    /// `metadata.resourceVersion`: the pod must still be at this version.
    pub resource_version: Option<String>,
    /// `metadata.annotations`, copied onto the pod.
    pub annotations: BTreeMap<String, String>,
    /// `target.name`: the node.
    pub node: String,
}

/// The operations controllers perform on the cluster's objects. Every method may fail with
/// the `Status` the API would return (404 not found, 409 conflict, 5xx when the server or
/// its storage cannot answer); callers retry with back-off rather than assume an answer.
#[async_trait::async_trait]
pub trait Cluster: Send + Sync + std::fmt::Debug {
    /// The current object, or 404.
    async fn get(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError>;

    /// Every object of `info` (in `namespace`, or all with `None`) and the list's
    /// resourceVersion.
    async fn list(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
    ) -> Result<ObjectList, ApiError>;

    /// The changes to `info`'s objects after `resource_version` (from a list).
    async fn watch(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        resource_version: &str,
    ) -> Result<WatchStream, ApiError>;

    /// Creates `obj` (POST).
    async fn create(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        obj: Value,
    ) -> Result<Arc<Value>, ApiError>;

    /// Replaces the object or one of its subresources (PUT). A `metadata.resourceVersion`
    /// or `metadata.uid` in `obj` is a precondition: 409 when the stored object differs.
    async fn update(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        obj: Value,
        subresource: Subresource,
    ) -> Result<Arc<Value>, ApiError>;

    /// Deletes an object (DELETE with `opts`).
    async fn delete(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError>;

    /// Binds pod `namespace/name` to a node (`POST pods/{name}/binding`).
    async fn bind(&self, namespace: &str, name: &str, binding: &Binding) -> Result<(), ApiError>;
}

impl dyn Cluster {
    /// Read-modify-write with retry on conflict (client-go's `retry.RetryOnConflict` around
    /// a get and an update): `f` edits a copy of the current object and returns `Ok(false)`
    /// to skip the write (the current object is then returned). The write carries the read's
    /// resourceVersion, so a concurrent change makes it re-read instead of overwriting.
    pub async fn update_with<F>(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        subresource: Subresource,
        mut f: F,
    ) -> Result<Arc<Value>, ApiError>
    where
        F: FnMut(&mut Value) -> Result<bool, ApiError> + Send,
    {
        loop {
            let old = self.get(info, namespace, name).await?;
            let mut new = Value::clone(&old);
            if !f(&mut new)? {
                return Ok(old);
            }
            match self.update(info, namespace, name, new, subresource).await {
                Err(e) if is_conflict(&e) => continue,
                result => return result,
            }
        }
    }
}

/// Whether `e` is a 409 Conflict (the object changed since it was read), as opposed to
/// 409 AlreadyExists.
pub fn is_conflict(e: &ApiError) -> bool {
    e.code == 409 && e.reason == "Conflict"
}
