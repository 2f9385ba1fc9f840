//! The kubelet's image manager [pkg/kubelet/images/image_manager.go `EnsureImageExists`,
//! `shouldPullImage`, `evalCRIPullErr`; pkg/kubelet/images/types.go]: before a container of an
//! image runtime starts, make sure its image is on the node — by the container's
//! `imagePullPolicy`, with a per-(pod, image) pull back-off of 10 s doubling to 300 s — and say
//! so with the kubelet's events and waiting reasons.
//!
//! [`ImageManager::ensure`] is the whole contract; the node's image store behind it is an
//! [`ImageService`] (references normalised, presence, pull). The result carries the events to
//! record (the caller owns the recorder) and, on failure, the container's waiting reason and
//! message, exactly as the kubelet sets them:
//!
//! | case | waiting reason | events |
//! |---|---|---|
//! | bad reference | `InvalidImageName` | Warning `InspectFailed` |
//! | `Never`, image absent | `ErrImageNeverPull` | Warning `ErrImageNeverPull` |
//! | present, no pull needed | — | Normal `Pulled` "already present on machine" |
//! | pull failed | `ErrImagePull` | Normal `Pulling`, Warning `Failed` |
//! | in back-off | `ImagePullBackOff` | Normal `BackOff` |
//! | pulled | — | Normal `Pulling`, Normal `Pulled` "Successfully pulled image …" |
//!
//! (The kubelet then adds Warning `Failed` "Error: <reason>" for every failure; so does the
//! caller.) The texts are the `image` crate's ([`image::kubelet`]), their one home.
//! [`StoreImages`] is the [`ImageService`] of a real node: the `image` crate's store and
//! puller, with the pod's imagePullSecrets matched through [`image::keyring`]. [`gc`] is the
//! kubelet's image garbage collection over that store.

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Container, Secret};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::events::EventType;

/// A pulled image, as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The image reference the runtime starts containers from (the kubelet's `imageRef`:
    /// the image ID, `sha256:…`).
    pub image_ref: String,
    /// The image's size in bytes (compressed layers and config, as containerd reports it).
    pub size: u64,
}

/// The node's image store, as the image manager needs it.
pub trait ImageService: Send + Sync {
    /// The reference with the default tag applied (`nginx` → `nginx:latest`); `Err(message)`
    /// when it is not a valid reference: the kubelet's whole `applyDefaultImageTag` message
    /// (`Failed to apply default image tag "…": …`).
    fn normalize(&self, image: &str) -> Result<String, String>;
    /// The image's reference if it is on this node.
    fn present<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, String>>;
    /// Pulls `image` with the credentials of the pod's `imagePullSecrets`; `Err` is the
    /// runtime's error text (it becomes the container's waiting message).
    fn pull<'a>(
        &'a self,
        image: &'a str,
        pull_secrets: &'a [Secret],
    ) -> BoxFuture<'a, Result<Pulled, String>>;
}

/// Why a container's image is not there: its waiting reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// `InvalidImageName`.
    InvalidImageName,
    /// `ErrImageNeverPull`.
    NeverPull,
    /// `ImagePullBackOff`.
    PullBackOff,
    /// `ErrImagePull`.
    Pull,
}

impl ImageError {
    /// The waiting reason the kubelet reports.
    pub fn reason(self) -> &'static str {
        match self {
            ImageError::InvalidImageName => "InvalidImageName",
            ImageError::NeverPull => "ErrImageNeverPull",
            ImageError::PullBackOff => "ImagePullBackOff",
            ImageError::Pull => "ErrImagePull",
        }
    }
}

/// An event [`ImageManager::ensure`] asks the caller to record on the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEvent {
    /// Normal or Warning.
    pub kind: EventType,
    /// The kubelet's reason.
    pub reason: &'static str,
    /// The kubelet's message.
    pub message: String,
}

/// What [`ImageManager::ensure`] found.
#[derive(Debug)]
pub struct Ensured {
    /// The events to record, in order.
    pub events: Vec<ImageEvent>,
    /// The image reference to run, or the waiting reason and message.
    pub result: Result<String, (ImageError, String)>,
}

/// Back-off of failed pulls (`flowcontrol.NewBackOff(10s, 300s)` in `NewKubeGenericRuntimeManager`).
const PULL_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const PULL_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The node's image manager: one per agent, shared by the pod workers.
pub struct ImageManager {
    service: Box<dyn ImageService>,
    /// Keyed `<pod uid>_<image>` as the kubelet keys it.
    backoff: Mutex<Backoff>,
}

impl ImageManager {
    /// A manager over `service`.
    pub fn new(service: Box<dyn ImageService>) -> Self {
        ImageManager {
            service,
            backoff: Mutex::new(Backoff::new(PULL_BACKOFF_INITIAL, PULL_BACKOFF_MAX)),
        }
    }

    /// Makes sure `container`'s image is on the node (`EnsureImageExists`).
    pub async fn ensure(
        &self,
        pod_uid: &str,
        container: &Container,
        pull_secrets: &[Secret],
    ) -> Ensured {
        let mut events = Vec::new();
        let shown = container.image.as_deref().unwrap_or("");
        let fail = |events, e: ImageError, msg: String| Ensured {
            events,
            result: Err((e, msg)),
        };
        let image = match self.service.normalize(shown) {
            Ok(i) => i,
            Err(msg) => {
                events.push(warning("InspectFailed", msg.clone()));
                return fail(events, ImageError::InvalidImageName, msg);
            }
        };
        let present = match self.service.present(&image).await {
            Ok(p) => p,
            Err(e) => {
                // `imagePullPrecheck`: the runtime could not be asked.
                let msg = format!("Failed to inspect image {shown:?}: {e}");
                events.push(warning("InspectFailed", msg.clone()));
                return fail(events, ImageError::Pull, msg);
            }
        };
        if !should_pull(container, present.is_some()) {
            return match present {
                Some(image_ref) => {
                    events.push(normal("Pulled", image::kubelet::already_present(shown)));
                    Ensured {
                        events,
                        result: Ok(image_ref),
                    }
                }
                None => {
                    let msg = image::kubelet::never_pull(shown);
                    events.push(warning("ErrImageNeverPull", msg.clone()));
                    fail(events, ImageError::NeverPull, msg)
                }
            };
        }
        let key = format!("{pod_uid}_{shown}");
        let now = Instant::now();
        if self.backoff.lock().in_backoff_since_update(&key, now) {
            let msg = image::kubelet::back_off(shown);
            events.push(normal("BackOff", msg.clone()));
            return fail(events, ImageError::PullBackOff, msg);
        }
        events.push(normal("Pulling", image::kubelet::pulling(shown)));
        let started = Instant::now();
        match self.service.pull(&image, pull_secrets).await {
            Err(e) => {
                events.push(warning("Failed", image::kubelet::pull_failed(shown, &e)));
                let at = Instant::now();
                self.backoff.lock().advance(&key, at, at);
                fail(events, ImageError::Pull, e)
            }
            Ok(pulled) => {
                // The kubelet prints the pull's own time and the time including waiting for
                // a pull slot; pulls here do not queue, so the two are the same.
                let took = started.elapsed();
                events.push(normal(
                    "Pulled",
                    image::kubelet::pulled(shown, took, took, pulled.size),
                ));
                self.backoff.lock().gc(Instant::now());
                Ensured {
                    events,
                    result: Ok(pulled.image_ref),
                }
            }
        }
    }
}

/// `shouldPullImage`: `Never` never pulls, `Always` always does, `IfNotPresent` when absent.
/// An unset policy (the API server always sets one) takes the API default: `Always` for a
/// `:latest` or untagged image, else `IfNotPresent`.
fn should_pull(container: &Container, present: bool) -> bool {
    let image = container.image.as_deref().unwrap_or("");
    let policy = match container.image_pull_policy.as_deref() {
        Some(p) if !p.is_empty() => p,
        _ => api::defaults::image_pull_policy(image),
    };
    match policy {
        "Never" => false,
        "Always" => true,
        "IfNotPresent" => !present,
        _ => false,
    }
}

fn normal(reason: &'static str, message: String) -> ImageEvent {
    ImageEvent {
        kind: EventType::Normal,
        reason,
        message,
    }
}

fn warning(reason: &'static str, message: String) -> ImageEvent {
    ImageEvent {
        kind: EventType::Warning,
        reason,
        message,
    }
}

pub mod gc;
mod store;
pub use store::{NODE_STATUS_MAX_IMAGES, StoreImages, node_status_images};

/// What a node needs to run containers from images: the image manager over the node's
/// store, the store itself (image configs and layer directories), and the kubelet's seccomp
/// profile directory (`Localhost` profiles are relative to it).
pub struct NodeImages {
    /// Pull policy, back-off, events.
    pub manager: ImageManager,
    /// The store and registry client.
    pub service: StoreImages,
    /// `<kubelet root>/seccomp`.
    pub seccomp_root: std::path::PathBuf,
    /// Image garbage collection's settings (the kubelet's flags).
    pub gc_policy: gc::GcPolicy,
    /// The images the node's containers use (never collected).
    pub in_use: std::sync::Arc<gc::InUse>,
}

impl NodeImages {
    /// Images of `service`'s store, seccomp profiles under `seccomp_root`, collected with the
    /// kubelet's default policy.
    pub fn new(service: StoreImages, seccomp_root: std::path::PathBuf) -> Self {
        NodeImages {
            manager: ImageManager::new(Box::new(service.clone())),
            service,
            seccomp_root,
            gc_policy: gc::GcPolicy::default(),
            in_use: std::sync::Arc::default(),
        }
    }

    /// With image garbage collection's settings.
    pub fn with_gc_policy(mut self, policy: gc::GcPolicy) -> Self {
        self.gc_policy = policy;
        self
    }
}

impl std::fmt::Debug for NodeImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeImages")
            .field("store", self.service.store())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
