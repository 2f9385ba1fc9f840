//! The node agent (paddock's kubelet): registers its Node, renews its Lease, watches the pods
//! bound to it through the Kubernetes API, runs them through a [`runtime::Runtime`], drives the
//! `probe` crate, and reports pod status and events back through the API.
//!
//! Start at [`start`] with an [`AgentConfig`]. Then: [`node`] (Node registration, status,
//! Lease), [`manager`] (the pod watch), [`pod`] (one worker per pod: the planner, the status
//! generator, the driver), [`events`] (the deduplicating recorder), [`backoff`]
//! (CrashLoopBackOff), [`images`] (the image manager: pull policy, pull back-off, their events;
//! [`images::StoreImages`] over the `image` crate's store), [`pod::image_run`] (a container of
//! the `runc` handler from its image and securityContext), [`server`] (the agent's own API for logs and exec, which the API server
//! proxies to, over TLS with the serving certificate of [`certificate`], renewed on the kubelet's
//! schedule of [`rotation`]), [`client`] (the bounded API client, and the one whose client
//! certificate a renewal replaces), [`runtime`] (how containers run), [`podnet`] (routes to the other nodes' pods, outbound NAT) and [`routing`] (the in-process fast path into
//! a service proxy on the same node: readiness at once, draining before a kill).
//!
//! # Running an agent
//! ```no_run
//! # async fn f(kubeconfig: &std::path::Path, dir: std::path::PathBuf)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
//! let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
//! let client = kube::Client::try_from(cfg)?;
//! let ip: std::net::IpAddr = "127.0.0.1".parse()?;
//! let mut net = agent::runtime::NodeNetwork::new(agent::runtime::net::PodCidr::parse("10.244.0.0/24")?);
//! net.node_ip = ip;
//! let runtime = agent::runtime::ProcessRuntime::new(dir.join("runtime"), net)?;
//! let mut config = agent::AgentConfig::new("node-1", client, Arc::new(runtime), dir, ip);
//! config.pod_cidr = "10.244.0.0/24".into();
//! // The agent API accepts the API server's client certificate (cluster CA) or this token.
//! config.serve_token = Some("a-long-random-token".into());
//! let agent = agent::start(config).await?;
//! // … on shutdown: stop every container, or `detach()` to leave them for the next agent.
//! agent.stop(std::time::Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```
//!
//! # Agent restart
//! A restarted agent neither orphans nor duplicates containers. At start it asks the runtime
//! for what a previous run left ([`runtime::Runtime::list`]). After the first complete listing
//! of its pods, a recovered sandbox whose pod (same UID) is still bound to this node is
//! **adopted**: its running containers become the current instances (restart counts and start
//! times kept; exits observed through the runtime), probes resume without resetting readiness
//! of containers started before the agent (the kubelet's restart grace). A recovered sandbox
//! whose pod is gone is **stopped** (containers SIGTERM → 2 s → SIGKILL, sandbox torn down).
//! Containers that exited while the agent was down are restarted per the restart policy.

pub mod backoff;
pub mod certificate;
pub mod client;
pub mod configz;
pub mod events;
pub mod images;
pub mod manager;
pub mod metrics;
pub mod node;
pub mod pod;
pub mod podnet;
pub mod resource_stats;
pub mod rotation;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod storage;
pub mod token;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::events::EventRecorder;
use crate::pod::config::{ApiObjects, NodeFacts};
use crate::pod::directory::Directory;
use crate::pod::status_writer::ApiStatus;
use crate::pod::worker::Shared;

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// An API call failed (what the agent was doing, the error).
    #[error("{0}: {1}")]
    Api(&'static str, #[source] kube::Error),
    /// The runtime failed.
    #[error("runtime: {0}")]
    Runtime(#[from] runtime::RuntimeError),
    /// The agent's own API could not listen.
    #[error("agent API on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The probe TLS configuration could not be built.
    #[error("probe TLS configuration: {0}")]
    Tls(String),
    /// The agent API cannot be served safely (no authentication, bad TLS configuration).
    #[error(transparent)]
    Serve(#[from] server::ServeError),
    /// No serving certificate for the agent API.
    #[error("serving certificate: {0}")]
    Certificate(#[from] certificate::CertError),
}

/// How to run an agent.
#[derive(Clone)]
pub struct AgentConfig {
    /// The Node's name.
    pub node_name: String,
    /// A client for the API server (built by the caller, e.g. from the kubeconfig).
    pub client: kube::Client,
    /// The container runtime.
    pub runtime: Arc<dyn runtime::Runtime>,
    /// Lease renew interval (default 10 s).
    pub lease_interval: Duration,
    /// Node status computation interval (default 10 s).
    pub node_status_interval: Duration,
    /// The agent's data directory (reported as ephemeral storage).
    pub root_dir: PathBuf,
    /// The node's pod CIDR (empty: none).
    pub pod_cidr: String,
    /// The node's IP (`InternalIP`, `hostIP`).
    pub node_ip: IpAddr,
    /// Where the agent's API (logs, exec) listens; port 0 picks one. Its port is published in
    /// the Node's `status.daemonEndpoints.kubeletEndpoint.Port`.
    pub serve_addr: SocketAddr,
    /// Pod capacity reported in the Node's status (the kubelet's `--max-pods`, default 110).
    pub max_pods: i64,
    /// A bearer token the agent's API accepts.
    pub serve_token: Option<String>,
    /// The CA whose client certificates (group `system:masters`: the API server's) the agent's
    /// API accepts — the cluster CA from the kubeconfig. With neither this nor a token the
    /// agent refuses to start.
    pub serve_client_ca: Option<Vec<rustls::pki_types::CertificateDer<'static>>>,
    /// Where the agent API's serving key and certificate are kept (default `root_dir/pki`).
    pub pki_dir: PathBuf,
    /// A service proxy in the same process, told of readiness changes at once and of kills
    /// before they happen (draining); see [`routing`]. `None` (the default): routing follows
    /// the API only, as with a kubelet and kube-proxy.
    pub routing: Option<Arc<dyn routing::RoutingHook>>,
    /// Running containers from images (RuntimeClass handler `runc`); `None` (the default):
    /// host processes only. The runtime must run images too
    /// ([`runtime::ProcessRuntime::enable_images`]).
    pub images: Option<Arc<images::NodeImages>>,
    /// The runtime handler of pods without a `runtimeClassName`: `host` (the default) or
    /// `runc` (`paddock up --default-runtime`).
    pub default_runtime: String,
    /// The kubelet's `--cluster-dns` and `--cluster-domain` for pods' `/etc/resolv.conf`
    /// (default: no cluster DNS, so pods get the node's resolver).
    pub cluster_dns: pod::dns::ClusterDns,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("node_name", &self.node_name)
            .field("node_ip", &self.node_ip)
            .field("serve_addr", &self.serve_addr)
            .finish_non_exhaustive()
    }
}

impl AgentConfig {
    /// A configuration with the kubelet's default intervals, serving on `node_ip:0`.
    pub fn new(
        node_name: &str,
        client: kube::Client,
        runtime: Arc<dyn runtime::Runtime>,
        root_dir: PathBuf,
        node_ip: IpAddr,
    ) -> Self {
        Self {
            node_name: node_name.to_string(),
            client,
            runtime,
            lease_interval: Duration::from_secs(10),
            node_status_interval: Duration::from_secs(10),
            pod_cidr: String::new(),
            node_ip,
            serve_addr: SocketAddr::new(node_ip, 0),
            max_pods: node::MAX_PODS,
            serve_token: None,
            serve_client_ca: None,
            pki_dir: root_dir.join("pki"),
            root_dir,
            routing: None,
            images: None,
            default_runtime: "host".into(),
            cluster_dns: pod::dns::ClusterDns::default(),
        }
    }
}

/// A running agent.
#[derive(Debug)]
pub struct AgentHandle {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    addr: SocketAddr,
    runtime: Arc<dyn runtime::Runtime>,
    directory: Arc<Directory>,
    routing: routing::Routing,
}

impl AgentHandle {
    /// Where the agent's API listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The probe attempts of pod `namespace/name` on this node, per container and probe type.
    pub fn probe_histories(&self, namespace: &str, name: &str) -> pod::directory::ProbeHistories {
        self.directory.probe_histories(namespace, name)
    }

    /// Reads how far [`AgentHandle::stop`] is, from another task (a progress display).
    pub fn stop_progress(&self) -> StopProgress {
        StopProgress(self.runtime.clone())
    }

    /// Stops watching and heartbeating; containers keep running (a restarted agent adopts
    /// them).
    pub async fn detach(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// Stops the agent and every container it runs (SIGTERM, `grace`, SIGKILL). With a
    /// routing hook every pod is drained first (bounded by [`routing::DRAIN_LIMIT`]).
    pub async fn stop(self, grace: Duration) {
        let rt = self.runtime.clone();
        let routing = self.routing.clone();
        // Each pod's own grace period where shorter than the node's (read before the workers
        // detach and leave the directory).
        let pod_grace: std::collections::HashMap<String, Duration> = self
            .directory
            .entries()
            .into_iter()
            .filter_map(|(_, _, e)| {
                let seconds = e.pod?.spec.as_ref()?.termination_grace_period_seconds?;
                Some((
                    e.uid,
                    Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
                ))
            })
            .collect();
        self.detach().await;
        routing.drain_all().await;
        if let Err(e) = rt.shutdown_pods(grace, &pod_grace).await {
            tracing::warn!(error = %e, "runtime shutdown");
        }
    }
}

/// How far an agent's [`AgentHandle::stop`] is.
#[derive(Clone, Debug)]
pub struct StopProgress(Arc<dyn runtime::Runtime>);

impl StopProgress {
    /// The pods whose containers are still stopping; `None` until the runtime starts
    /// stopping them (or when it cannot say).
    pub fn pods_left(&self) -> Option<usize> {
        self.0.pods_stopping()
    }
}

/// Registers the Node, starts the heartbeat, the agent API and the pod watch.
pub async fn start(config: AgentConfig) -> Result<AgentHandle, AgentError> {
    let agent_started = tokio::time::Instant::now();
    let stop = CancellationToken::new();
    let directory = Arc::new(Directory::default());
    let machine = node::MachineInfo::read(&config.root_dir);
    let handler_env = probe::HandlerEnv::new(node::PROBE_USER_AGENT)
        .map_err(|e| AgentError::Tls(e.to_string()))?;
    // Fail closed before anything is requested or bound: the agent API runs commands as root.
    if config.serve_token.is_none() && config.serve_client_ca.is_none() {
        return Err(server::ServeError::NoAuthentication.into());
    }
    let serving = certificate::ServingCertificate::load_or_request(
        &config.client,
        config.pki_dir.clone(),
        certificate::Subject {
            node_name: config.node_name.clone(),
            addresses: vec![config.node_ip],
        },
    )
    .await?;
    let tls = server::tls_config(
        serving.clone(),
        config.serve_client_ca.as_deref(),
        config.serve_token.is_some(),
    )?;
    let listener = tokio::net::TcpListener::bind(config.serve_addr)
        .await
        .map_err(|source| AgentError::Listen {
            addr: config.serve_addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| AgentError::Listen {
        addr: config.serve_addr,
        source,
    })?;
    let identity = node::NodeIdentity {
        name: config.node_name.clone(),
        ip: config.node_ip,
        pod_cidr: config.pod_cidr.clone(),
        port: addr.port(),
        root_dir: config.root_dir.clone(),
        max_pods: config.max_pods,
    };
    let node_uid = node::register(&config.client, &identity, &machine).await?;
    node::renew_lease(
        &config.client,
        &config.node_name,
        &node_uid,
        node::lease_duration_seconds(config.lease_interval),
    )
    .await
    .map_err(|e| AgentError::Api("creating the node Lease", e))?;
    let recovered = config.runtime.list().await?;
    let events = EventRecorder::new(config.client.clone(), &config.node_name);
    let cap = node::capacity(&machine, config.max_pods);
    let q = |k: &str| {
        cap.get(k)
            .and_then(|q| api::quantity::Quantity::parse(&q.0).ok())
    };
    let metrics = Arc::new(metrics::AgentMetrics::new(config.routing.as_deref()));
    let apparmor = tokio::task::spawn_blocking(pod::admit::apparmor_enabled)
        .await
        .unwrap_or(false);
    if !apparmor {
        tracing::info!(
            "AppArmor is not enabled on this host: pods that ask for a profile are rejected, as the kubelet does"
        );
    }
    let shared = Shared {
        runtime: config.runtime.clone(),
        status: Arc::new(ApiStatus(config.client.clone())),
        objects: Arc::new(token::TokenCache::new(ApiObjects(config.client.clone()))),
        events,
        node: NodeFacts {
            host_ip: config.node_ip,
            node_name: config.node_name.clone(),
            cpu_milli: q("cpu").map_or(0, |q| q.milli_value()),
            memory: q("memory").map_or(0, |q| q.value()),
            storage: q("ephemeral-storage").map_or(0, |q| q.value()),
            storage_root: storage::storage_root(&config.root_dir),
            apparmor,
        },
        handler_env,
        agent_started,
        directory: directory.clone(),
        routing: routing::Routing::new(config.routing.clone()),
        images: config.images.clone(),
        default_runtime: config.default_runtime.clone(),
        cluster_dns: config.cluster_dns.clone(),
        metrics: metrics.clone(),
    };
    let shared_routing = shared.routing.clone();
    let shared_directory = directory.clone();
    let mut tasks = vec![
        tokio::spawn(node::heartbeat(
            config.client.clone(),
            identity,
            node_uid,
            config.lease_interval,
            config.node_status_interval,
            config.images.as_ref().map(|i| i.service.store().clone()),
            stop.clone(),
        )),
        tokio::spawn(server::serve(
            listener,
            server::ServerState {
                runtime: config.runtime.clone(),
                directory,
                token: config.serve_token.clone(),
                metrics,
                configz: Arc::new(configz::document(&config, addr)),
            },
            tls,
            stop.clone(),
        )),
        tokio::spawn(serving.rotate(config.client.clone(), stop.clone())),
        tokio::spawn(storage::run_reclaimer(
            config.client.clone(),
            config.node_name.clone(),
            storage::storage_root(&config.root_dir),
            stop.clone(),
        )),
    ];
    if let Some(images) = &config.images {
        let gc = images::gc::ImageGc::new(
            images.gc_policy,
            Box::new(images::gc::StoreFs(images.service.store().clone())),
            images.in_use.clone(),
            shared.events.clone(),
            &config.node_name,
        );
        tasks.push(tokio::spawn(Arc::new(gc).run(stop.clone())));
    }
    let mgr = manager::Manager::new(shared, recovered);
    tasks.push(tokio::spawn(mgr.run(
        config.client.clone(),
        config.node_name.clone(),
        stop.clone(),
    )));
    Ok(AgentHandle {
        stop,
        tasks,
        addr,
        runtime: config.runtime,
        directory: shared_directory,
        routing: shared_routing,
    })
}
