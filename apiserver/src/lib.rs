//! paddock's Kubernetes API server: the REST surface kubectl 1.32, the Python client and
//! kube-rs talk to, over HTTPS with a bearer token.
//!
//! Start at [`start`]: it opens the store, prepares credentials ([`tls`]), bootstraps the
//! system namespaces, binds, writes the kubeconfig ([`kubeconfig`]) and serves ([`server`])
//! the router of [`http`]. Resource requests are handled in [`rest`] (verbs, Tables),
//! [`watch`] (streams), [`patch`] and [`scale`]; all of them and the in-process controllers
//! write through the [`Registry`] ([`registry`], per-kind rules in [`strategy`], Service
//! address allocation in [`alloc`]; a pod's binding in `binding`). [`cluster`] is the
//! in-process side of the controllers' port: `api::cluster::Cluster` for the [`Registry`].
//! Discovery and OpenAPI documents are built once in [`discovery`] and [`openapi`]. Pod `log`/`exec`/`portforward`/`attach` are delegated to a
//! [`PodStreams`] handler the node side registers. Every authenticated request is authorized
//! by [`authz`] (RBAC, impersonation, the access reviews); the default RBAC policy is
//! reconciled at start.
//!
//! What the router and the handlers share lives in leaf modules that import none of them:
//! [`state`] (the per-server [`state::AppState`]), [`response`] (bodies and the error
//! `Status`), [`options`] (write, patch and delete options the registry and the strategies both
//! read) and [`table`] (the Table printers and their response encoding).

// ApiError (the shared Status type) is large; errors are rare, boxing buys nothing here.
#![allow(clippy::result_large_err)]

pub mod alloc;
#[cfg(test)]
mod apps_sets_tests;
pub mod authz;
#[cfg(test)]
mod batch_tests;
mod binding;
pub mod bootstrap_token;
pub mod cluster;
pub mod discovery;
pub mod event_ttl;
pub mod eviction;
pub mod http;
#[cfg(test)]
mod ingress_tests;
pub mod kubeconfig;
pub mod kubelet_proxy;
pub mod master_service;
pub mod meta;
pub mod metrics;
pub mod openapi;
pub mod options;
pub mod params;
pub mod patch;
pub mod registry;
pub mod resource_metrics;
pub mod resource_proxy;
pub mod response;
pub mod rest;
pub mod scale;
pub mod select;
pub mod server;
pub mod serviceaccount;
pub mod state;
#[cfg(test)]
mod storage_tests;
pub mod strategy;
pub mod table;
pub mod tls;
pub mod user;
pub mod watch;
pub mod x509;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub use registry::{
    DeleteOptions, Deleted, FieldValidation, PatchOptions, Propagation, Registry, UpdateMode,
    WriteOptions,
};

/// Serves the pod subresources that need the node (`log`, `exec`, `portforward`,
/// `attach`), typically by streaming from the node agent. The API server resolves the path,
/// checks the token and loads the pod (404 if absent) before calling [`PodStreams::handle`]
/// with the whole request (WebSocket upgrades work: connections are served with upgrades).
pub trait PodStreams: Send + Sync + 'static {
    /// Answers `GET/POST …/pods/{name}/{subresource}` for `pod`.
    fn handle(
        &self,
        registry: Registry,
        pod: Arc<serde_json::Value>,
        subresource: &str,
        req: axum::extract::Request,
    ) -> futures::future::BoxFuture<'static, axum::response::Response>;
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:6443`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// Directory for the store, credentials and kubeconfig.
    pub data_dir: PathBuf,
    /// Keep objects in memory only (tests).
    pub memory_store: bool,
    /// Host name or address written into the kubeconfig and the certificate (defaults to
    /// the listen address, or 127.0.0.1 for an unspecified one).
    pub advertise_host: Option<String>,
    /// More names and addresses for the serving certificate (`--tls-san`, and this machine's
    /// addresses when listening on all of them).
    pub extra_sans: Vec<String>,
    /// Cap on open client connections (`None`: [`server::DEFAULT_MAX_CONNECTIONS`] bounded
    /// by the descriptor limit).
    pub max_connections: Option<usize>,
}

impl Config {
    /// The default listen address, `127.0.0.1:6443`.
    pub fn default_listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 6443))
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened.
    #[error("opening the store: {0}")]
    Store(#[from] store::StoreError),
    /// Credentials could not be created or loaded.
    #[error("credentials: {0}")]
    Tls(#[from] tls::TlsError),
    /// Binding the listen address failed.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Writing the kubeconfig failed.
    #[error("writing kubeconfig: {0}")]
    Kubeconfig(std::io::Error),
    /// Creating the system namespaces failed.
    #[error("bootstrapping namespaces: {0}")]
    Bootstrap(api::status::ApiError),
}

/// A running server.
pub struct RunningServer {
    addr: SocketAddr,
    kubeconfig: PathBuf,
    registry: Registry,
    token: String,
    ca: Arc<tls::ClusterCa>,
    sa_tokens: Arc<serviceaccount::TokenIssuer>,
    shutdown: tokio::sync::watch::Sender<bool>,
    state: Arc<state::AppState>,
    task: tokio::task::JoinHandle<()>,
}

/// The admin token never appears in debug output.
impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// Starts scraping the nodes' resource metrics every `resolution` (the
    /// `metrics.k8s.io` API and the HorizontalPodAutoscaler read them) until shutdown.
    pub fn start_resource_metrics(&self, resolution: std::time::Duration) {
        tokio::spawn(resource_metrics::run(
            self.state.clone(),
            resolution,
            self.state.shutdown.clone(),
        ));
    }

    /// The resource metrics the nodes' scrapes give.
    pub fn resource_metrics(&self) -> Arc<resource_metrics::MetricsSource> {
        self.state.resource_metrics.clone()
    }

    /// The bound address (with the real port).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `DATA_DIR/kubeconfig`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The object layer (for in-process controllers).
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// The admin bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The cluster CA (for the CSR signing controller).
    pub fn cluster_ca(&self) -> Arc<tls::ClusterCa> {
        self.ca.clone()
    }

    /// The service account token issuer (the legacy token controller signs with it).
    pub fn token_issuer(&self) -> Arc<serviceaccount::TokenIssuer> {
        self.sa_tokens.clone()
    }

    /// Registers the handler of `pods/{log,exec,portforward,attach}` (the node agent).
    pub fn set_pod_streams(&self, handler: Arc<dyn PodStreams>) {
        self.state.set_pod_streams(handler);
    }

    /// Graceful stop: readyz fails, no new connections, watches end, in-flight requests
    /// finish, then the store is closed.
    pub async fn shutdown(self) {
        self.state
            .stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        self.registry.store().close().await;
    }
}

/// The namespaces every cluster has.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// The RuntimeClass every paddock cluster has: pods that name it run their `command` as
/// host processes (the node's `host` runtime handler) instead of their image.
pub const HOST_RUNTIME_CLASS: &str = "paddock-host";
/// The runtime handler of [`HOST_RUNTIME_CLASS`].
pub const HOST_RUNTIME_HANDLER: &str = "host";

/// Creates the system namespaces, the [`HOST_RUNTIME_CLASS`] RuntimeClass, the
/// [`LOCAL_PATH_CLASS`] StorageClass and the [`api::PADDOCK_INGRESS_CLASS`] IngressClass
/// (default class, controller [`api::PADDOCK_INGRESS_CONTROLLER`]) that do not exist yet (an
/// existing one is left as the user made it, so a deleted default class comes back at the
/// next start, as k3s's does).
pub async fn bootstrap(registry: &Registry) -> Result<(), api::status::ApiError> {
    let info = strategy::namespaces();
    for ns in SYSTEM_NAMESPACES {
        let obj =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        create_missing(registry, info, ns, obj).await?;
    }
    let rc = api::registry::lookup("node.k8s.io", "v1", "runtimeclasses")
        .ok_or_else(|| api::status::ApiError::internal("runtimeclasses are not served"))?;
    let obj = serde_json::json!({
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": HOST_RUNTIME_CLASS},
        "handler": HOST_RUNTIME_HANDLER,
    });
    create_missing(registry, rc, HOST_RUNTIME_CLASS, obj).await?;
    let sc = api::registry::lookup("storage.k8s.io", "v1", "storageclasses")
        .ok_or_else(|| api::status::ApiError::internal("storageclasses are not served"))?;
    let obj = serde_json::json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": LOCAL_PATH_CLASS,
            "annotations": {api::admission::DEFAULT_CLASS_ANNOTATION: "true"},
        },
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    });
    create_missing(registry, sc, LOCAL_PATH_CLASS, obj).await?;
    let ic = api::registry::lookup(api::registry::NETWORKING_GROUP, "v1", "ingressclasses")
        .ok_or_else(|| api::status::ApiError::internal("ingressclasses are not served"))?;
    let obj = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {
            "name": api::PADDOCK_INGRESS_CLASS,
            "annotations": {
                api::validation::networking::DEFAULT_INGRESS_CLASS_ANNOTATION: "true",
            },
        },
        "spec": {"controller": api::PADDOCK_INGRESS_CONTROLLER},
    });
    create_missing(registry, ic, api::PADDOCK_INGRESS_CLASS, obj).await
}

/// The StorageClass every paddock cluster has, as k3s ships it: the default class,
/// provisioning node-local directories when a pod first uses a claim.
pub const LOCAL_PATH_CLASS: &str = "local-path";
/// The provisioner name of [`LOCAL_PATH_CLASS`] (the one k3s's local-path-provisioner uses).
pub const LOCAL_PATH_PROVISIONER: &str = "rancher.io/local-path";

/// Creates the cluster-scoped `obj` named `name` unless it exists.
async fn create_missing(
    registry: &Registry,
    info: &api::registry::ResourceInfo,
    name: &str,
    obj: serde_json::Value,
) -> Result<(), api::status::ApiError> {
    if registry.get(info, "", name).is_ok() {
        return Ok(());
    }
    match registry
        .create(info, "", obj, &WriteOptions::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

/// The router and its shared state over `registry`, for in-process use and tests
/// (`tower::ServiceExt::oneshot`). Send `true` on the returned sender to end watches.
pub fn app(
    registry: Registry,
    token: &str,
    server_address: &str,
) -> (
    axum::Router,
    Arc<state::AppState>,
    tokio::sync::watch::Sender<bool>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let state = Arc::new(state::AppState {
        registry,
        token: token.to_string(),
        discovery: discovery::Discovery::new(server_address),
        openapi: openapi::LazyOpenApi::default(),
        metrics: metrics::Metrics::default(),
        shutdown: rx,
        stopping: AtomicBool::new(false),
        streams: std::sync::RwLock::new(None),
        kubelet_tls: std::sync::OnceLock::new(),
        sa_tokens: std::sync::OnceLock::new(),
        resource_metrics: Arc::default(),
        x509: std::sync::OnceLock::new(),
    });
    // The documents take a moment to build: start now, off the runtime's workers.
    if tokio::runtime::Handle::try_current().is_ok() {
        let warm = state.clone();
        tokio::spawn(async move {
            let _ = warm.openapi.get().await;
        });
    }
    (http::router(state.clone()), state, tx)
}

/// The names the serving certificate covers.
fn sans(config: &Config) -> Vec<String> {
    let mut v = vec![
        "127.0.0.1".to_string(),
        "::1".to_string(),
        "localhost".to_string(),
    ];
    // What in-cluster clients dial (kubeadm's `apiserver` certificate names): the
    // `default/kubernetes` Service's ClusterIP and DNS names.
    v.extend(
        [
            master_service::KUBERNETES_SERVICE_IP,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .map(str::to_string),
    );
    let ip = config.listen.ip();
    if !ip.is_unspecified() {
        v.push(ip.to_string());
    }
    if let Some(h) = &config.advertise_host {
        v.push(h.clone());
    }
    v.extend(config.extra_sans.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
    v
}

/// Opens the store, prepares credentials, bootstraps namespaces, binds, writes the
/// kubeconfig and starts serving.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| {
        ServerError::Tls(tls::TlsError::Io {
            path: config.data_dir.display().to_string(),
            source,
        })
    })?;
    let store = if config.memory_store {
        store::Store::memory()
    } else {
        store::Store::open(&config.data_dir.join("store.redb")).await?
    };
    let creds = tls::Credentials::load_or_create(&config.data_dir, &sans(&config))?;
    let tls_config = creds.server_config()?;
    let registry = Registry::new(store);
    bootstrap(&registry).await.map_err(ServerError::Bootstrap)?;
    authz::bootstrap::ensure(&registry)
        .await
        .map_err(ServerError::Bootstrap)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let host = match &config.advertise_host {
        Some(h) => h.clone(),
        None if addr.ip().is_unspecified() => "127.0.0.1".to_string(),
        None => addr.ip().to_string(),
    };
    let host_port = if host.contains(':') {
        format!("[{host}]:{}", addr.port())
    } else {
        format!("{host}:{}", addr.port())
    };
    let endpoint_ip = host
        .parse::<std::net::IpAddr>()
        .unwrap_or_else(|_| std::net::IpAddr::from([127, 0, 0, 1]));
    if let Err(e) = master_service::reconcile(&registry, endpoint_ip, addr.port()).await {
        // Not fatal: e.g. a user service already holds 10.96.0.1.
        tracing::warn!(error = %e, "could not reconcile the default/kubernetes service");
    }
    if let Err(e) = master_service::ensure_cluster_dns(&registry).await {
        // Not fatal either: e.g. a user service already holds 10.96.0.10.
        tracing::warn!(error = %e, "could not create the kube-system/kube-dns service");
    }
    let (router, state, shutdown) = app(registry.clone(), &creds.token, &host_port);
    let _ = state.kubelet_tls.set(creds.kubelet_client_config()?);
    let _ = state
        .x509
        .set(Arc::new(x509::X509Authenticator::new(&creds.ca)?));
    let sa_tokens = Arc::new(serviceaccount::TokenIssuer::load_or_create(
        &config.data_dir,
    )?);
    let _ = state.sa_tokens.set(sa_tokens.clone());
    let kubeconfig = config.data_dir.join("kubeconfig");
    kubeconfig::write(
        &kubeconfig,
        &format!("https://{host_port}"),
        &creds.ca_pem,
        &creds.token,
    )
    .map_err(ServerError::Kubeconfig)?;
    tokio::spawn(event_ttl::run(registry.clone(), state.shutdown.clone()));
    // Before the listener serves: the Node authorizer decides from a listed graph.
    registry.start_node_graph(state.shutdown.clone());
    let task = tokio::spawn(server::serve(
        listener,
        tls_config,
        router,
        state.shutdown.clone(),
        config.max_connections,
    ));
    tracing::info!(%addr, "API server listening");
    Ok(RunningServer {
        addr,
        kubeconfig,
        registry,
        token: creds.token,
        ca: creds.ca,
        sa_tokens,
        shutdown,
        state,
        task,
    })
}
