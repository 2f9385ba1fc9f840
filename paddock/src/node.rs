//! A node on this machine: the agent (process runtime; pods in their own namespaces when root)
//! and the service proxy, both talking to an API server only through a kube client — the same
//! code for `paddock up` (the in-process server over loopback HTTPS) and `paddock agent`
//! (a server elsewhere). A node started without a pod CIDR waits for the one the server's node
//! IPAM gives its Node; with pod namespaces and a cluster CIDR (`paddock agent`) it also runs
//! the pod network between nodes ([`agent::podnet`]: routes, outbound NAT,
//! `NetworkUnavailable`). A node with pod namespaces also answers cluster DNS on the
//! cluster DNS address (`--cluster-dns`), fed by the proxy's watches and by the agent's
//! readiness fast path ([`serve_dns`]); pods in the host's network keep the node's resolver.
//! Every node also runs the built-in Ingress controller ([`start_ingress`]: HTTP and HTTPS
//! listeners on the node's addresses and 127.0.0.1, fed by the same watches and fast path).
//! Start at [`start`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;

/// How to run a node.
#[derive(Debug, Clone)]
pub(crate) struct NodeOptions {
    /// The Node's name.
    pub(crate) name: String,
    /// The node's address (`InternalIP`, `hostIP`, where the agent API and NodePorts listen).
    pub(crate) ip: IpAddr,
    /// The node's pod CIDR (`None`: the one the server's node IPAM allocates to the Node).
    pub(crate) pod_cidr: Option<String>,
    /// The cluster CIDR: with pod namespaces, the node routes the other nodes' pod CIDRs and
    /// masquerades pod traffic leaving this network ([`agent::podnet`]). `None`: neither.
    pub(crate) cluster_cidr: Option<String>,
    /// Pods in their own namespaces (when root); false: every pod in the host's network.
    pub(crate) isolate: bool,
    /// The kubelet's `--max-pods`.
    pub(crate) max_pods: i64,
    /// How often the node's Lease is renewed (the kubelet's `nodeLeaseDurationSeconds` / 4).
    pub(crate) lease_interval: Duration,
    /// The handler of pods without a RuntimeClass (`--default-runtime`: `host` or `runc`;
    /// `None`: `runc` when the node can run images, else `host`).
    pub(crate) default_runtime: Option<String>,
    /// The image store (`<data dir>/images`, shared with `paddock image`).
    pub(crate) images: PathBuf,
    /// Image garbage collection's settings.
    pub(crate) image_gc: agent::images::gc::GcPolicy,
    /// The registry configuration (checked) and the CA bundles it names.
    pub(crate) registries: (image::registries::Registries, crate::images::EndpointsTls),
    /// The runtime's state, logs and volumes.
    pub(crate) root: PathBuf,
    /// Where the agent API listens (port 0 picks one).
    pub(crate) serve_addr: SocketAddr,
    /// Who the agent API lets in.
    pub(crate) serve: AgentAuth,
    /// The kubelet's `--cluster-dns`: where this node's DNS server answers, and the
    /// nameservers of `ClusterFirst` pods (only with pod namespaces).
    pub(crate) cluster_dns: Vec<IpAddr>,
    /// The kubelet's `--cluster-domain`.
    pub(crate) cluster_domain: String,
    /// Where the Ingress controller serves plain HTTP and HTTPS (on the node's address and
    /// 127.0.0.1); 0 turns one off.
    pub(crate) ingress_http_port: u16,
    /// See `ingress_http_port`.
    pub(crate) ingress_https_port: u16,
}

/// Who the node's agent API lets in: client certificates of the cluster CA the kubeconfig
/// trusts (the API server's), and the bearer token the node itself uses (from `token:` or
/// `tokenFile:`). The agent refuses to start with neither.
#[derive(Clone, Default)]
pub(crate) struct AgentAuth {
    token: Option<String>,
    client_ca: Option<Vec<rustls::pki_types::CertificateDer<'static>>>,
}

impl std::fmt::Debug for AgentAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentAuth")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("client_ca", &self.client_ca.as_ref().map(Vec::len))
            .finish()
    }
}

/// The largest token file read (tokens are a few hundred bytes; a JWT a few KiB).
const MAX_TOKEN_FILE: u64 = 64 * 1024;

impl AgentAuth {
    /// From the client configuration the node connects with.
    pub(crate) async fn from_config(config: &kube::Config) -> anyhow::Result<AgentAuth> {
        use secrecy::ExposeSecret;
        let token = match (&config.auth_info.token, &config.auth_info.token_file) {
            (Some(t), _) => Some(t.expose_secret().trim().to_string()),
            (None, Some(file)) => Some(read_token_file(std::path::Path::new(file)).await?),
            (None, None) => None,
        }
        .filter(|t| !t.is_empty());
        let client_ca = match (&config.root_cert, &config.root_cert_file) {
            (_, Some(file)) => {
                let pem = tokio::fs::read(file)
                    .await
                    .with_context(|| format!("reading CA bundle {}", file.display()))?;
                let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("CA bundle {}", file.display()))?;
                Some(certs)
            }
            (Some(ders), None) => Some(
                ders.iter()
                    .map(|d| rustls::pki_types::CertificateDer::from(d.clone()))
                    .collect(),
            ),
            (None, None) => None,
        }
        .filter(|c: &Vec<_>| !c.is_empty());
        Ok(AgentAuth { token, client_ca })
    }
}

/// A `tokenFile:`'s token, trimmed; the file's content never appears in an error.
async fn read_token_file(path: &std::path::Path) -> anyhow::Result<String> {
    use tokio::io::AsyncReadExt;
    let f = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("reading token file {}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_TOKEN_FILE + 1)
        .read_to_end(&mut bytes)
        .await
        .with_context(|| format!("reading token file {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_TOKEN_FILE,
        "token file {} is larger than {MAX_TOKEN_FILE} bytes",
        path.display()
    );
    let token = String::from_utf8(bytes)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .with_context(|| format!("token file {} holds no token", path.display()))?;
    Ok(token)
}

/// A running node.
pub(crate) struct Node {
    agent: agent::AgentHandle,
    proxy_stop: tokio_util::sync::CancellationToken,
    proxy_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The pod network's task (routes, NAT, `NetworkUnavailable`), when it runs.
    podnet: Option<tokio::task::JoinHandle<()>>,
    /// Released (dropped) only once the pods and the proxy are gone.
    _netns: Option<crate::netns::NetnsLock>,
}

impl Node {
    /// Reads how far [`Node::stop`] is (pods still stopping), from another task.
    pub(crate) fn stop_progress(&self) -> agent::StopProgress {
        self.agent.stop_progress()
    }

    /// Stops the pods gracefully (within `budget`), then the proxy.
    pub(crate) async fn stop(self, budget: Duration) {
        self.agent.stop(budget).await;
        self.proxy_stop.cancel();
        for task in self.proxy_tasks {
            let _ = task.await;
        }
        if let Some(task) = self.podnet {
            let _ = task.await;
            // Its pods are gone: so go the routes to the others' and the NAT rules.
            agent::podnet::cleanup().await;
        }
    }
}

/// Starts the agent and the service proxy of a node.
pub(crate) async fn start(client: kube::Client, opts: NodeOptions) -> anyhow::Result<Node> {
    use agent::runtime::{NodeNetwork, PodCidr, ProcessRuntime};
    if opts.serve.client_ca.is_none() && opts.serve.token.is_some() {
        tracing::warn!(
            "the kubeconfig names no cluster CA: the agent API takes only the node's token, so the API server's logs and exec requests will be refused"
        );
    }
    let cluster_cidr = opts
        .cluster_cidr
        .as_deref()
        .map(|c| agent::podnet::Cidr::parse(c).with_context(|| format!("--cluster-cidr {c:?}")))
        .transpose()?;
    let pod_cidr_text = match &opts.pod_cidr {
        Some(c) => c.clone(),
        // The kubelet without --pod-cidr: the Node's spec.podCIDR, once the server gave one.
        None => {
            let machine = agent::node::MachineInfo::read(&opts.root);
            let id = agent::node::NodeIdentity {
                name: opts.name.clone(),
                ip: opts.ip,
                pod_cidr: String::new(),
                port: opts.serve_addr.port(),
                root_dir: opts.root.clone(),
                max_pods: opts.max_pods,
            };
            agent::node::await_pod_cidr(&client, &id, &machine)
                .await
                .context("waiting for this node's pod CIDR")?
        }
    };
    let pod_cidr =
        PodCidr::parse(&pod_cidr_text).with_context(|| format!("pod CIDR {pod_cidr_text:?}"))?;
    let mut network = NodeNetwork::new(pod_cidr);
    network.node_ip = opts.ip;
    network.isolated = opts.isolate;
    let isolated = network.isolated && nix::unistd::geteuid().is_root();
    if !nix::unistd::geteuid().is_root() {
        tracing::warn!("{}", WITHOUT_ROOT);
    }
    // With pod namespaces the node takes part in the pod network between nodes.
    let podnet = match (cluster_cidr, isolated) {
        (Some(cluster), true) => Some(
            agent::podnet::PodNetworkConfig::new(
                &opts.name,
                agent::podnet::Cidr::parse(&pod_cidr_text)?,
                cluster,
            )
            .with_context(|| format!("pod CIDR {pod_cidr_text}"))?,
        ),
        _ => None,
    };
    // A node with pod namespaces owns its network namespace's bridge, pod CIDR and service
    // addresses: one such node per namespace.
    let netns = if isolated {
        Some(crate::netns::NetnsLock::acquire(&opts.name, &opts.root).await?)
    } else {
        None
    };
    let runtime =
        ProcessRuntime::new(opts.root.clone(), network).context("starting the runtime")?;
    let images = enable_images(&runtime, &opts).await;
    let default_runtime = match (opts.default_runtime.as_deref(), &images) {
        (Some("runc"), Err(e)) => {
            anyhow::bail!("--default-runtime runc: this node cannot run images: {e:#}")
        }
        (Some(handler), _) => handler.to_string(),
        (None, Ok(_)) => "runc".to_string(),
        (None, Err(_)) => {
            // Said once, plainly, at start (enable_images has logged why).
            tracing::warn!(
                "pods without a runtimeClassName run their command as host processes on this node (the image is not pulled); run as root with the runc program installed to run images"
            );
            "host".to_string()
        }
    };
    tracing::info!(default_runtime = %default_runtime, "runtime of pods without a runtimeClassName");
    let mut config = agent::AgentConfig::new(
        &opts.name,
        client.clone(),
        Arc::new(runtime),
        opts.root.clone(),
        opts.ip,
    );
    config.images = images.ok();
    config.default_runtime = default_runtime;
    config.pod_cidr = pod_cidr_text;
    config.max_pods = opts.max_pods;
    config.lease_interval = opts.lease_interval;
    config.serve_addr = opts.serve_addr;
    config.serve_token = opts.serve.token.clone();
    config.serve_client_ca = opts.serve.client_ca.clone();

    // The proxy listens on 127.0.0.1 too, so LoadBalancer and NodePort services are reachable
    // at 127.0.0.1:port; ClusterIPs are held on a dummy interface only with pod namespaces.
    let node = proxy::NodeConfig {
        node_name: opts.name.clone(),
        node_ips: vec![opts.ip],
        loopback: true,
    };
    // The service addresses it adds are recorded in the node's state: a killed node's are
    // removed by the next start.
    let proxy = if isolated {
        proxy::Proxy::with_service_ip_record(node, opts.root.join("service-ips"))
    } else {
        proxy::Proxy::new(node, false)
    };
    // Cluster DNS only where pods have a network of their own: the proxy holds the cluster DNS
    // Service's address there (a Service without endpoints: held, never listened on), and
    // pods reach it through the node. Pods in the host's network keep the node's resolver.
    let dns_records = if isolated && !opts.cluster_dns.is_empty() {
        Some(Arc::new(
            dns::Records::new(&opts.cluster_domain)
                .with_context(|| format!("--cluster-domain {:?}", opts.cluster_domain))?,
        ))
    } else {
        None
    };
    config.cluster_dns = agent::pod::dns::ClusterDns {
        servers: if dns_records.is_some() {
            opts.cluster_dns.clone()
        } else {
            Vec::new()
        },
        domain: opts.cluster_domain.clone(),
    };
    // Agent and proxy share this process: readiness reaches routing without the API round
    // trip, and a pod is drained before its process is signalled.
    let ingress_router = ingress::Router::new();
    config.routing = Some(Arc::new(ProxyRouting(
        proxy.clone(),
        dns_records.clone(),
        ingress_router.clone(),
    )));
    let agent = agent::start(config)
        .await
        .context("starting the node agent")?;
    let proxy_stop = tokio_util::sync::CancellationToken::new();
    let podnet =
        podnet.map(|cfg| tokio::spawn(agent::podnet::run(client.clone(), cfg, proxy_stop.clone())));
    // The ingress controller and the cluster DNS ride on the proxy's Service and
    // EndpointSlice watches.
    let observer: Arc<dyn proxy::feed::Observer> = Arc::new(Observers(
        dns_records
            .clone()
            .map(|r| Arc::new(DnsFeed(r)) as Arc<dyn proxy::feed::Observer>)
            .into_iter()
            .chain([ingress_router.clone() as Arc<dyn proxy::feed::Observer>])
            .collect(),
    ));
    let ingress_addrs = proxy.load_balancer_ingress();
    let namespaces = dns_records.clone().map(|records| {
        tokio::spawn(watch_namespaces(
            client.clone(),
            records,
            proxy_stop.clone(),
        ))
    });
    let mut proxy_tasks = vec![
        tokio::spawn(proxy.clone().run(proxy_stop.clone())),
        tokio::spawn(proxy::feed::run_from_api_with(
            client.clone(),
            proxy,
            true,
            Some(observer),
            proxy_stop.clone(),
        )),
    ];
    proxy_tasks.extend(start_ingress(
        client,
        ingress_router,
        &opts,
        ingress_addrs,
        &proxy_stop,
    ));
    proxy_tasks.extend(namespaces);
    if let Some(records) = dns_records {
        proxy_tasks.push(tokio::spawn(serve_dns(
            records,
            opts.cluster_dns.clone(),
            proxy_stop.clone(),
        )));
    }
    Ok(Node {
        agent,
        proxy_stop,
        proxy_tasks,
        podnet,
        _netns: netns,
    })
}

/// What a node started by an ordinary user can and cannot do, said once at start (the
/// specific warnings follow where each thing is skipped).
const WITHOUT_ROOT: &str = "running without root: pods run as host processes of this user in this machine's network. \
Works as with root: the API and kubectl, controllers and scheduling, probes, restarts and rollouts, Endpoints and readiness, \
logs, exec and port-forward, NodePort and LoadBalancer Services on 127.0.0.1 and the node's address. \
Needs root: images (containers; pods fall back to their command as a host process), pod IPs and network namespaces \
(two pods listening on one port conflict), ClusterIPs (reach Services through NodePorts or `kubectl port-forward`), \
cluster DNS, volume mounts and Secret/ConfigMap/token volumes, CPU and memory limits (cgroups), \
and Ingress on ports below 1024 (use --ingress-http-port/--ingress-https-port)";

/// Sets the node up to run images (RuntimeClass handler `runc`): the image store, runc with
/// its state under `<root>/oci`, and the kubelet's `kubepods` cgroups. A node that cannot
/// (not root, no runc) says why once and runs host processes only.
async fn enable_images(
    runtime: &agent::runtime::ProcessRuntime,
    opts: &NodeOptions,
) -> anyhow::Result<Arc<agent::images::NodeImages>> {
    let attempt = async {
        let store = image::Store::open(&opts.images)
            .with_context(|| format!("opening the image store {}", opts.images.display()))?;
        let puller = crate::images::puller_with(store, &opts.registries.1)?;
        // runc cannot create a container without a cgroup hierarchy ("no cgroup mount found
        // in mountinfo"): such a node runs no images rather than failing every start.
        let cgroups = oci::cgroups::Layout::detect("/sys/fs/cgroup", "kubepods")
            .context("no cgroup hierarchy for containers")?;
        let cgroups = Some(cgroups);
        runtime
            .enable_images(
                &opts.root.join("oci"),
                std::path::Path::new("runc"),
                cgroups,
            )
            .await
            .context("setting up runc")?;
        anyhow::Ok(Arc::new(
            agent::images::NodeImages::new(
                agent::images::StoreImages::new(puller).with_registries(opts.registries.0.clone()),
                opts.root.join("seccomp"),
            )
            .with_gc_policy(opts.image_gc),
        ))
    };
    match attempt.await {
        Ok(i) => Ok(i),
        Err(e) => {
            tracing::warn!(
                "this node runs no images (RuntimeClass handler runc), only host processes: {e:#}"
            );
            Err(e)
        }
    }
}

/// Serves cluster DNS on `addrs` port 53 until `stop`, forwarding other names to the node's
/// resolvers (`/etc/resolv.conf`, less the cluster DNS addresses themselves). An address is
/// bound once the proxy holds it (as soon as it has seen the `kube-system/kube-dns` Service).
/// Most namespaces the cluster DNS tracks (beyond, a namespace without a Service answers
/// NXDOMAIN instead of NODATA).
const MAX_DNS_NAMESPACES: usize = 10_000;

/// Tells the cluster DNS which namespaces exist (CoreDNS answers NODATA for `<ns>.svc` and
/// resolves pod names only in namespaces that exist), until `stop`.
async fn watch_namespaces(
    client: kube::Client,
    records: Arc<dns::Records>,
    stop: tokio_util::sync::CancellationToken,
) {
    use futures::StreamExt as _;
    use k8s_openapi::api::core::v1::Namespace;
    use kube::runtime::{WatchStreamExt as _, watcher};
    let api: kube::Api<Namespace> = kube::Api::all(client);
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut known: std::collections::BTreeSet<String> = Default::default();
    let mut listing: Option<std::collections::BTreeSet<String>> = None;
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = stream.next() => ev,
        };
        let name = |n: &Namespace| n.metadata.name.clone().unwrap_or_default();
        match ev {
            None => return,
            Some(Err(e)) => tracing::debug!(error = %e, "cluster DNS: namespace watch"),
            Some(Ok(watcher::Event::Init)) => listing = Some(Default::default()),
            Some(Ok(watcher::Event::InitApply(n))) => {
                if let Some(l) = listing.as_mut().filter(|l| l.len() < MAX_DNS_NAMESPACES) {
                    l.insert(name(&n));
                }
            }
            Some(Ok(watcher::Event::InitDone)) => {
                let now = listing.take().unwrap_or_default();
                for gone in known.difference(&now) {
                    records.set_namespace(gone, false);
                }
                for ns in &now {
                    records.set_namespace(ns, true);
                }
                known = now;
            }
            Some(Ok(watcher::Event::Apply(n))) => {
                if known.len() < MAX_DNS_NAMESPACES {
                    records.set_namespace(&name(&n), true);
                    known.insert(name(&n));
                }
            }
            Some(Ok(watcher::Event::Delete(n))) => {
                records.set_namespace(&name(&n), false);
                known.remove(&name(&n));
            }
        }
    }
}

async fn serve_dns(
    records: Arc<dns::Records>,
    addrs: Vec<IpAddr>,
    stop: tokio_util::sync::CancellationToken,
) {
    let upstream = match tokio::fs::read_to_string("/etc/resolv.conf").await {
        Ok(text) => dns::nameservers_from_resolv_conf(&text).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cluster DNS: no upstream resolvers");
            Vec::new()
        }),
        Err(e) => {
            tracing::warn!(error = %e, "cluster DNS: cannot read /etc/resolv.conf; no upstream resolvers");
            Vec::new()
        }
    };
    let upstream: Vec<SocketAddr> = upstream
        .into_iter()
        .filter(|a| !addrs.contains(&a.ip()))
        .collect();
    let config = dns::Config {
        forward: dns::ForwardConfig {
            servers: upstream,
            ..dns::ForwardConfig::default()
        },
        ..dns::Config::default()
    };
    let server = match dns::Server::new(records, config) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cluster DNS not started");
            return;
        }
    };
    let mut tasks = Vec::new();
    for ip in addrs {
        let server = server.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut said = false;
            loop {
                match dns::bind(SocketAddr::new(ip, 53)).await {
                    Ok((udp, tcp)) => {
                        tracing::info!(addr = %ip, "cluster DNS answering");
                        let metrics = serve_dns_metrics(server.clone(), ip, stop.clone());
                        tokio::join!(server.run(udp, tcp, stop), metrics);
                        return;
                    }
                    Err(e) if !said => {
                        tracing::info!(addr = %ip, error = %e, "cluster DNS waiting for its address");
                        said = true;
                    }
                    Err(_) => {}
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// The DNS server's metrics on `ip`:9153 (`GET /metrics`), as CoreDNS's `prometheus :9153`
/// serves them behind the `kube-dns` Service's `metrics` port. Not served when the port is
/// taken (logged).
async fn serve_dns_metrics(
    server: Arc<dns::Server>,
    ip: IpAddr,
    stop: tokio_util::sync::CancellationToken,
) {
    let listener = match tokio::net::TcpListener::bind(SocketAddr::new(ip, DNS_METRICS_PORT)).await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(addr = %ip, error = %e, "cluster DNS metrics not served");
            return;
        }
    };
    dns::metrics::serve(listener, server.metrics().clone(), stop).await;
}

/// CoreDNS's metrics port (the `kube-dns` Service's `metrics`).
const DNS_METRICS_PORT: u16 = 9153;

/// Starts the Ingress controller of the node: its listeners (plain HTTP and HTTPS on
/// `addrs`, the node's addresses with 127.0.0.1, at the `--ingress-*-port`s) and its watches
/// of Ingresses, IngressClasses and TLS Secrets, which also write each Ingress's load balancer
/// status. Nothing when both ports are 0.
fn start_ingress(
    client: kube::Client,
    router: Arc<ingress::Router>,
    opts: &NodeOptions,
    addrs: Vec<IpAddr>,
    stop: &tokio_util::sync::CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let at = |port: u16| -> Vec<SocketAddr> {
        if port == 0 {
            return Vec::new();
        }
        addrs.iter().map(|ip| SocketAddr::new(*ip, port)).collect()
    };
    let config = ingress::serve::ServeConfig {
        http: at(opts.ingress_http_port),
        https: at(opts.ingress_https_port),
        ..ingress::serve::ServeConfig::default()
    };
    if config.http.is_empty() && config.https.is_empty() {
        return Vec::new();
    }
    let serve = {
        let (router, stop) = (router.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = ingress::serve::run(router, config, stop).await {
                tracing::warn!(error = %e, "the ingress controller could not start");
            }
        })
    };
    let feed = tokio::spawn(ingress::feed::run_from_api(
        client,
        router,
        opts.name.clone(),
        Some(addrs),
        stop.clone(),
    ));
    vec![serve, feed]
}

/// Several observers of the proxy's watches.
struct Observers(Vec<Arc<dyn proxy::feed::Observer>>);

impl proxy::feed::Observer for Observers {
    fn service(&self, svc: &k8s_openapi::api::core::v1::Service) {
        self.0.iter().for_each(|o| o.service(svc));
    }
    fn service_deleted(&self, namespace: &str, name: &str) {
        self.0
            .iter()
            .for_each(|o| o.service_deleted(namespace, name));
    }
    fn slice(&self, slice: &k8s_openapi::api::discovery::v1::EndpointSlice) {
        self.0.iter().for_each(|o| o.slice(slice));
    }
    fn slice_deleted(&self, namespace: &str, name: &str) {
        self.0.iter().for_each(|o| o.slice_deleted(namespace, name));
    }
}

/// The DNS server's records, fed by the proxy's Service and EndpointSlice watches.
struct DnsFeed(Arc<dns::Records>);

impl proxy::feed::Observer for DnsFeed {
    fn service(&self, svc: &k8s_openapi::api::core::v1::Service) {
        self.0.update_service(svc);
    }
    fn service_deleted(&self, namespace: &str, name: &str) {
        self.0.remove_service(namespace, name);
    }
    fn slice(&self, slice: &k8s_openapi::api::discovery::v1::EndpointSlice) {
        self.0.set_endpoint_slice(slice);
    }
    fn slice_deleted(&self, namespace: &str, name: &str) {
        self.0.remove_endpoint_slice(namespace, name);
    }
}

/// The agent's [`agent::routing::RoutingHook`] on the service proxy of the same process (and
/// the cluster DNS records, whose headless answers follow readiness the same way, and the
/// ingress controller's routes, which take only ready endpoints). A pod
/// is keyed by its uid (EndpointSlices carry it in `targetRef`), which is exact also for pods
/// that share the node's address; its connections are counted by its own IP when it has one.
struct ProxyRouting(
    Arc<proxy::Proxy>,
    Option<Arc<dns::Records>>,
    Arc<ingress::Router>,
);

impl agent::routing::RoutingHook for ProxyRouting {
    fn set_state(&self, pod: &agent::routing::PodEndpoint, state: agent::routing::RouteState) {
        use agent::routing::RouteState;
        let state = match state {
            RouteState::Ready => proxy::EndpointState::Ready,
            RouteState::NotReady => proxy::EndpointState::NotReady,
            RouteState::Draining => proxy::EndpointState::Draining,
        };
        if let Some(records) = &self.1 {
            records.set_endpoint_ready(
                dns::EndpointKey::Pod(pod.uid.clone()),
                state == proxy::EndpointState::Ready,
            );
        }
        self.2
            .set_pod_ready(&pod.uid, state == proxy::EndpointState::Ready);
        self.0
            .set_endpoint_state(proxy::EndpointId::Pod(pod.uid.clone()), state);
    }

    fn forget(&self, pod: &agent::routing::PodEndpoint) {
        if let Some(records) = &self.1 {
            records.clear_endpoint_ready(&dns::EndpointKey::Pod(pod.uid.clone()));
        }
        self.2.forget_pod(&pod.uid);
        self.0
            .release_endpoint_state(proxy::EndpointId::Pod(pod.uid.clone()));
    }

    fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.0.metrics().register(registry);
    }

    fn active_connections(&self, pod: &agent::routing::PodEndpoint) -> usize {
        if pod.own_ip {
            self.0.active_connections(pod.ip)
        } else {
            self.0.active_pod_connections(&pod.uid)
        }
    }
}

/// The node is named after the machine, lower-cased, as the kubelet does.
pub(crate) fn default_node_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.to_lowercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
