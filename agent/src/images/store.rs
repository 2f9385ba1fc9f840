//! [`StoreImages`]: the [`ImageService`] of a node — the `image` crate's [`image::Store`] under
//! the data dir and its [`image::pull::Puller`] (which deduplicates concurrent pulls of one
//! reference), credentials from the pod's imagePullSecrets through [`image::keyring`].

use futures::future::BoxFuture;
use image::keyring::Keyring;
use image::pull::{PullOptions, Puller};
use image::store::ImageRecord;
use image::{Reference, Store};
use k8s_openapi::api::core::v1::Secret;

use super::{ImageService, Pulled};

/// The node's image store and registry client.
#[derive(Debug, Clone)]
pub struct StoreImages {
    puller: Puller,
}

impl StoreImages {
    /// A service over `puller` (and the store it writes to).
    pub fn new(puller: Puller) -> Self {
        StoreImages { puller }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.puller.store()
    }

    /// The stored image a pod's `image:` names (normalised as containerd's CRI does), read off
    /// the async threads.
    pub async fn resolve(&self, image: &str) -> Result<Option<(Reference, ImageRecord)>, String> {
        let store = self.store().clone();
        let image = image.to_string();
        tokio::task::spawn_blocking(move || store.resolve(&image).map_err(|e| e.to_string()))
            .await
            .map_err(|e| format!("image store: {e}"))?
    }
}

/// The credentials of `secrets` for `repo`, as the kubelet builds its keyring from a pod's
/// imagePullSecrets (a Secret of another type, or one that does not parse, is skipped with a
/// log line as the kubelet does).
fn credentials(secrets: &[Secret], repo: &str) -> Vec<image::keyring::Credential> {
    let mut ring = Keyring::new();
    for s in secrets {
        let Some(data) = &s.data else { continue };
        let name = s.metadata.name.as_deref().unwrap_or("");
        let added = match (
            data.get(".dockerconfigjson"),
            data.get(".dockercfg"),
            s.type_.as_deref(),
        ) {
            (Some(d), _, Some("kubernetes.io/dockerconfigjson")) => {
                ring.add_docker_config_json(&d.0)
            }
            (_, Some(d), Some("kubernetes.io/dockercfg")) => ring.add_docker_cfg(&d.0),
            _ => continue,
        };
        if let Err(e) = added {
            tracing::warn!(secret = name, error = %e, "unable to parse the imagePullSecret");
        }
    }
    ring.lookup(repo)
}

impl ImageService for StoreImages {
    fn normalize(&self, image: &str) -> Result<String, String> {
        image::reference::kubelet_apply_default_tag(image)
    }

    fn present<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            Ok(self
                .resolve(image)
                .await?
                .map(|(_, rec)| rec.config.to_string()))
        })
    }

    fn pull<'a>(
        &'a self,
        image: &'a str,
        pull_secrets: &'a [Secret],
    ) -> BoxFuture<'a, Result<Pulled, String>> {
        Box::pin(async move {
            let reference = Reference::parse_docker_ref(image).map_err(|e| e.to_string())?;
            let opts = PullOptions {
                credentials: credentials(pull_secrets, &reference.name()),
                ..PullOptions::default()
            };
            match self.puller.pull(image, &opts).await {
                Ok(p) => Ok(Pulled {
                    image_ref: p.image.config.to_string(),
                    size: p.image.size,
                }),
                Err(e) => Err(image::kubelet::cri_pull_error(&reference, &e)),
            }
        })
    }
}
