//! How the binary runs the controllers in process: over the API server's registry (its
//! `api::cluster::Cluster` implementation) with the cluster CA as the CSR signer's authority,
//! under leader election.

use std::sync::Arc;

use apiserver::tls::ClusterCa;
use controllers::csrsigning::Authority;

/// The cluster CA as the signer's authority.
pub(crate) fn authority(ca: Arc<ClusterCa>) -> Arc<dyn Authority> {
    Arc::new(move |params, key: &rcgen::SubjectPublicKeyInfo, ttl| {
        ca.sign(params, key, ttl).map_err(|e| e.to_string())
    })
}

/// Starts the controllers over `server`'s registry, under leader election as
/// `<hostname>_<uuid>`.
pub(crate) fn start(
    server: &apiserver::RunningServer,
    options: controllers::Options,
) -> controllers::Controllers {
    controllers::start(
        Arc::new(server.registry()),
        authority(server.cluster_ca()),
        controllers::leader::identity(),
        options,
    )
}
