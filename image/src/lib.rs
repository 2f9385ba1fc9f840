//! OCI images for a paddock node: references, a content-addressed store under the data dir,
//! pulling from registries, unpacking layers into overlay lower dirs, the image config as the
//! kubelet uses it, and importing image archives.
//!
//! Where to start: [`mod@reference`] (what a pod's `image:` means), then [`store::Store`] (the
//! on-disk layout and its guarantees), [`pull`] (the registry client and its auth flows),
//! [`unpack`] (layer tars → directories with overlay whiteouts), [`config`] (ENTRYPOINT/CMD and
//! the kubelet's command/args rule), [`import`] (OCI layouts and `docker save` archives), and
//! [`keyring`] (imagePullSecrets → credentials, matched as the kubelet matches them), and
//! [`kubelet`] (the kubelet's event texts and `imageID`), and [`registries`] (the node's
//! `registries.yaml`: mirrors, rewrites, endpoint auth and CAs).
//!
//! The registry client is our own, on hyper + hyper-rustls (ring, the OS roots), not the
//! `oci-client` crate. oci-client 0.18 sits on reqwest 0.13, whose `rustls` feature (oci-client's
//! default) brings aws-lc-rs — a C build and a second crypto provider beside the workspace's
//! ring; its `rustls-tls-no-provider` avoids that only by making every binary install a
//! process-wide `CryptoProvider`, and still adds reqwest as a second HTTP stack. hyper,
//! hyper-util and hyper-rustls are already in the build for kube, so the client costs about 900 lines
//! and no new transport, and it does what a node needs directly: plain HTTP only for loopback
//! (or configured) registries, each blob streamed to `ingest/` through a bounded channel while it
//! is hashed and, for layers, unpacked at the same time (`bench/image.sh`: pull + unpack of a
//! 100 MB image at 0.93–0.99× the time of `skopeo copy` without unpacking), and errors that map
//! straight to the kubelet's reasons. `cargo tree -i aws-lc-rs` prints nothing.

pub mod config;
pub mod digest;
pub mod error;
pub mod import;
pub mod keyring;
pub mod kubelet;
pub mod manifest;
pub mod pull;
pub mod reference;
pub mod registries;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use error::Error;
pub use reference::Reference;
pub use store::Store;
