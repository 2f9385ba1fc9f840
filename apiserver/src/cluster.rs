//! The controllers' port ([`api::cluster::Cluster`]) implemented in process for the
//! [`Registry`]: every call is the registry operation the matching HTTP verb would run
//! (create, PUT with its resourceVersion/uid preconditions, the `status` and `finalize`
//! subresources, delete with options, the `binding` subresource), without HTTP. Lists and
//! watches read the store as the `?watch` handler does; a watch that falls behind ends and
//! a compacted resourceVersion is `410 Gone`, both of which make the caller list again.
//!
//! It sits here, not in the binary, because the controllers' own tests run the controllers
//! against a real `Registry` and reach this adapter through their dev-dependency on this
//! crate; the controllers themselves depend only on the port.

use std::sync::Arc;

use api::cluster::{
    Binding, Cluster, DeleteOptions, Deleted, ObjectList, Subresource, WatchEvent, WatchStream,
};
use api::object::FieldValidation;
use api::registry::ResourceInfo;
use api::status::ApiError;
use serde_json::Value;
use store::{EventType, ListOptions};

use crate::registry::{Registry, UpdateMode, WriteOptions, store_error};

/// The options of an in-process write: no field manager (the default one), unknown fields
/// ignored (a controller writes back what it read).
fn write_options() -> WriteOptions {
    WriteOptions {
        field_validation: FieldValidation::Ignore,
        ..WriteOptions::default()
    }
}

#[async_trait::async_trait]
impl Cluster for Registry {
    async fn get(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        Registry::get(self, info, namespace, name)
    }

    async fn list(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
    ) -> Result<ObjectList, ApiError> {
        let ns = if info.namespaced { namespace } else { None };
        let list = self
            .store()
            .list(&info.store_resource(), ns, &ListOptions::default())
            .map_err(|e| store_error(info, "", e))?;
        Ok(ObjectList {
            items: list.items,
            resource_version: list.revision.to_string(),
        })
    }

    async fn watch(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        resource_version: &str,
    ) -> Result<WatchStream, ApiError> {
        let after = crate::registry::parse_rv(resource_version)?.unwrap_or(0);
        let ns = if info.namespaced { namespace } else { None };
        let watch = self
            .store()
            .watch(&info.store_resource(), ns, after)
            .map_err(|e| store_error(info, "", e))?;
        Ok(Box::pin(futures::stream::unfold(
            watch,
            |mut w| async move {
                let ev = w.next_shared().await?;
                let obj = ev.object.clone();
                let ev = match ev.kind {
                    EventType::Added => WatchEvent::Added(obj),
                    EventType::Modified => WatchEvent::Modified(obj),
                    EventType::Deleted => WatchEvent::Deleted(obj),
                };
                Some((Ok(ev), w))
            },
        )))
    }

    async fn create(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        Registry::create(self, info, namespace, obj, &write_options()).await
    }

    async fn update(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        obj: Value,
        subresource: Subresource,
    ) -> Result<Arc<Value>, ApiError> {
        let mode = match subresource {
            Subresource::Main => UpdateMode::Main,
            Subresource::Status => UpdateMode::Status,
            Subresource::Finalize => UpdateMode::Finalize,
            Subresource::Approval => UpdateMode::Approval,
        };
        self.update_checked(info, namespace, name, obj, &[], &write_options(), mode)
            .await
            .map(|(v, _, _)| v)
    }

    async fn delete(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        Registry::delete(self, info, namespace, name, opts).await
    }

    async fn bind(&self, namespace: &str, name: &str, binding: &Binding) -> Result<(), ApiError> {
        Registry::bind(self, namespace, name, binding, false).await
    }
}
