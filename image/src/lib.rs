//! OCI images for a paddock node: references, a content-addressed store under the data dir,
//! pulling from registries, unpacking layers into overlay lower dirs, the image config as the
//! kubelet uses it, and importing image archives.
//!
//! Where to start: [`reference`] (what a pod's `image:` means), then [`store::Store`] (the
//! on-disk layout and its guarantees), [`pull`] (the registry client and its auth flows),
//! [`unpack`] (layer tars → directories with overlay whiteouts), [`config`] (ENTRYPOINT/CMD and
//! the kubelet's command/args rule), [`import`] (OCI layouts and `docker save` archives), and
//! [`keyring`] (imagePullSecrets → credentials, matched as the kubelet matches them).
//!
//! The registry client is our own, on hyper + hyper-rustls (ring, the OS roots), not the
//! `oci-client` crate: oci-client brings reqwest, whose rustls default is aws-lc-rs (a C build
//! and a second crypto provider beside the workspace's ring), and it hides the parts this node
//! needs to control — which hosts may be plain HTTP, streaming each blob to a temporary file
//! while hashing it with bounded memory, and the exact errors the kubelet reports. hyper,
//! hyper-util and hyper-rustls are already in the build for kube.

pub mod config;
pub mod digest;
pub mod error;
pub mod import;
pub mod keyring;
pub mod manifest;
pub mod pull;
pub mod reference;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use error::Error;
pub use reference::Reference;
pub use store::Store;
