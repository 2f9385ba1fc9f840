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
    /// The node's `registries.yaml` (mirrors, rewrites, endpoint credentials).
    registries: std::sync::Arc<image::registries::Registries>,
}

impl StoreImages {
    /// A service over `puller` (and the store it writes to).
    pub fn new(puller: Puller) -> Self {
        StoreImages {
            puller,
            registries: std::sync::Arc::default(),
        }
    }

    /// Pulls through the node's registry configuration (checked by the caller).
    pub fn with_registries(mut self, registries: image::registries::Registries) -> Self {
        self.registries = std::sync::Arc::new(registries);
        self
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
            let mut opts = PullOptions {
                credentials: credentials(pull_secrets, &reference.name()),
                ..PullOptions::default()
            };
            self.registries.apply(&reference, &mut opts);
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

/// How many images the Node's status lists (the kubelet's `--node-status-max-images`
/// default, `nodeStatusMaxImages`).
pub const NODE_STATUS_MAX_IMAGES: usize = 50;
/// How many names each of them shows (`MaxNamesPerImageInNodeStatus`).
const MAX_NAMES_PER_IMAGE_IN_NODE_STATUS: usize = 5;

/// `Node.status.images` as the kubelet's `Images` setter writes it from the runtime's image
/// list: one entry per image ID, largest first (`ByImageSize`), at most `max`; names are the
/// repo digests (`name@sha256:…`) then the repo tags (`name:tag`), at most
/// [`MAX_NAMES_PER_IMAGE_IN_NODE_STATUS`].
pub fn node_status_images(
    list: &[(String, ImageRecord)],
    max: usize,
) -> Vec<k8s_openapi::api::core::v1::ContainerImage> {
    use std::collections::BTreeMap;
    // image ID → (size, repo digests, repo tags), each set sorted for a stable status.
    type Names = (
        u64,
        std::collections::BTreeSet<String>,
        std::collections::BTreeSet<String>,
    );
    let mut by_id: BTreeMap<String, Names> = BTreeMap::new();
    for (name, rec) in list {
        let Ok(r) = Reference::parse(name) else {
            continue;
        };
        let e = by_id
            .entry(rec.config.to_string())
            .or_insert_with(|| (rec.size, Default::default(), Default::default()));
        e.1.insert(format!("{}@{}", r.name(), rec.repo_digest));
        if r.tag().is_some() {
            e.2.insert(r.to_string());
        }
    }
    let mut images: Vec<(String, Names)> = by_id.into_iter().collect();
    images.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    images.truncate(max);
    images
        .into_iter()
        .map(|(_, (size, digests, tags))| {
            let mut names: Vec<String> = digests.into_iter().chain(tags).collect();
            names.truncate(MAX_NAMES_PER_IMAGE_IN_NODE_STATUS);
            k8s_openapi::api::core::v1::ContainerImage {
                names: Some(names),
                size_bytes: Some(size as i64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use image::Digest;
    use image::store::{ImageRecord, LayerRecord};

    use super::*;

    fn record(config: &str, repo: &str, size: u64) -> ImageRecord {
        let d = |s: &str| Digest::sha256_of(s.as_bytes());
        ImageRecord {
            repo_digest: d(repo),
            manifest: d(repo),
            config: d(config),
            layers: vec![LayerRecord {
                digest: d("l"),
                media_type: String::new(),
                size: 1,
                diff_id: d("l"),
                chain_id: d("l"),
            }],
            size,
        }
    }

    #[test]
    fn node_status_images_as_the_kubelet_lists_them() {
        let nginx = record("nginx", "nginx-index", 300);
        let d = nginx.repo_digest.clone();
        let list = vec![
            (
                "docker.io/library/busybox:1".to_string(),
                record("busybox", "bb", 100),
            ),
            ("docker.io/library/nginx:1.25".to_string(), nginx.clone()),
            ("docker.io/library/nginx:latest".to_string(), nginx.clone()),
            (format!("docker.io/library/nginx@{d}"), nginx.clone()),
            (
                "reg.example:5000/app:v2".to_string(),
                record("app", "app", 200),
            ),
        ];
        let images = node_status_images(&list, NODE_STATUS_MAX_IMAGES);
        let names: Vec<Vec<String>> = images.iter().map(|i| i.names.clone().unwrap()).collect();
        assert_eq!(
            names,
            vec![
                vec![
                    format!("docker.io/library/nginx@{d}"),
                    "docker.io/library/nginx:1.25".to_string(),
                    "docker.io/library/nginx:latest".to_string(),
                ],
                vec![
                    format!("reg.example:5000/app@{}", Digest::sha256_of(b"app")),
                    "reg.example:5000/app:v2".to_string(),
                ],
                vec![
                    format!("docker.io/library/busybox@{}", Digest::sha256_of(b"bb")),
                    "docker.io/library/busybox:1".to_string(),
                ],
            ],
            "largest first, digests then tags"
        );
        assert_eq!(
            images
                .iter()
                .map(|i| i.size_bytes.unwrap())
                .collect::<Vec<_>>(),
            vec![300, 200, 100]
        );
        // Capped at max images, and at five names per image.
        assert_eq!(node_status_images(&list, 2).len(), 2);
        let many: Vec<(String, ImageRecord)> = (0..60)
            .map(|i| (format!("r/img:{i}"), record("one", "one", 5)))
            .chain((0..60).map(|i| (format!("r/x{i}:t"), record(&format!("c{i}"), "x", i))))
            .collect();
        let images = node_status_images(&many, NODE_STATUS_MAX_IMAGES);
        assert_eq!(images.len(), 50);
        assert!(images.iter().all(|i| i.names.as_ref().unwrap().len() <= 5));
        assert_eq!(images[0].size_bytes, Some(59));
    }
}
