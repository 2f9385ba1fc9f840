//! [`AppState`], what every request handler shares: the registry, credentials, discovery and
//! OpenAPI documents, the shutdown signal and the pod stream handler. A leaf module, so the
//! router ([`crate::http`]) and the handlers it calls ([`crate::rest`], [`crate::watch`]) all
//! depend on it rather than on each other.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::discovery::Discovery;
use crate::openapi::LazyOpenApi;
use crate::registry::Registry;

/// State shared by all requests.
pub struct AppState {
    /// The object layer.
    pub registry: Registry,
    /// The admin bearer token.
    pub token: String,
    /// Discovery documents.
    pub discovery: Discovery,
    /// Request metrics (`/metrics`).
    pub metrics: crate::metrics::Metrics,
    /// OpenAPI documents (built off the request path, once).
    pub openapi: LazyOpenApi,
    /// Flips to `true` at shutdown: watches end, `/readyz` fails.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Set once shutdown began.
    pub stopping: AtomicBool,
    /// Handler of `pods/{log,exec,portforward,attach}`, once the node side registered one.
    pub streams: std::sync::RwLock<Option<Arc<dyn crate::PodStreams>>>,
    /// How the default handler dials node agents (unset: it refuses, e.g. in router tests).
    pub kubelet_tls: std::sync::OnceLock<Arc<rustls::ClientConfig>>,
    /// The resource metrics (`metrics.k8s.io`) scraped from the nodes.
    pub resource_metrics: Arc<crate::resource_metrics::MetricsSource>,
    /// The service account token issuer (unset: no service account tokens are issued or
    /// accepted, e.g. in router tests).
    pub sa_tokens: std::sync::OnceLock<Arc<crate::serviceaccount::TokenIssuer>>,
    /// The x509 client-certificate authenticator (set by `start`; without it client
    /// certificates authenticate nobody).
    pub x509: std::sync::OnceLock<Arc<crate::x509::X509Authenticator>>,
}

impl AppState {
    /// The registered pod stream handler.
    pub fn pod_streams(&self) -> Option<Arc<dyn crate::PodStreams>> {
        self.streams.read().ok().and_then(|g| g.clone())
    }

    /// Registers (or replaces) the pod stream handler.
    pub fn set_pod_streams(&self, h: Arc<dyn crate::PodStreams>) {
        if let Ok(mut g) = self.streams.write() {
            *g = Some(h);
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("registry", &self.registry)
            .field("stopping", &self.stopping)
            .finish_non_exhaustive()
    }
}
