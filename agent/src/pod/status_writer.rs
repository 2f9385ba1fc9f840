//! The port pod workers write status through ([`StatusWriter`]) and its API adapter
//! ([`ApiStatus`]: a merge patch of `status`, a DELETE with grace 0 and a UID precondition).

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Pod, PodStatus};

use super::port_error::PortError;

/// Where pod status goes and how a finished pod is removed.
pub trait StatusWriter: Send + Sync {
    /// Writes `status` as the pod's status.
    fn write<'a>(
        &'a self,
        pod: &'a Pod,
        status: &'a PodStatus,
    ) -> BoxFuture<'a, Result<(), PortError>>;
    /// Deletes the pod object (grace 0, UID precondition) once it is terminated here. An object
    /// already gone is [`PortError::NotFound`], one replaced by a pod of another UID
    /// [`PortError::Conflict`]; the caller treats both as done.
    fn delete<'a>(&'a self, pod: &'a Pod) -> BoxFuture<'a, Result<(), PortError>>;
}

/// [`StatusWriter`] through the API (merge patch of `status`; DELETE with grace 0).
#[derive(Clone)]
pub struct ApiStatus(pub kube::Client);

impl StatusWriter for ApiStatus {
    fn write<'a>(
        &'a self,
        pod: &'a Pod,
        status: &'a PodStatus,
    ) -> BoxFuture<'a, Result<(), PortError>> {
        Box::pin(async move {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let name = pod.metadata.name.as_deref().unwrap_or("");
            let api: kube::Api<Pod> = kube::Api::namespaced(self.0.clone(), ns);
            // Serialized straight from the status (a `json!` value tree would be a second,
            // bigger copy of it, held while the request waits for the client's limit).
            let patch = StatusPatch { status };
            api.patch_status(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .map(|_| ())
            .map_err(PortError::from)
        })
    }

    fn delete<'a>(&'a self, pod: &'a Pod) -> BoxFuture<'a, Result<(), PortError>> {
        Box::pin(async move {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let name = pod.metadata.name.as_deref().unwrap_or("");
            let api: kube::Api<Pod> = kube::Api::namespaced(self.0.clone(), ns);
            let dp = kube::api::DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(kube::api::Preconditions {
                    uid: pod.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            api.delete(name, &dp)
                .await
                .map(|_| ())
                .map_err(PortError::from)
        })
    }
}

/// The body of a status merge patch.
#[derive(Debug, serde::Serialize)]
struct StatusPatch<'a> {
    status: &'a PodStatus,
}
