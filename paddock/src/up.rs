//! `paddock up -f FILE…`: the main job. Starts the API server, the controllers and a node
//! agent for this machine in one process, applies the files the way
//! `kubectl apply --server-side` would (create or update; fields this command applied before and
//! no longer lists are removed), prints where the kubeconfig is, and runs until SIGTERM/SIGINT.
//!
//! Every document is checked before anything is applied, so a bad file changes nothing and the
//! error names the file, the document and the field.

use std::path::PathBuf;

use anyhow::Context;
use api::manifest::{self, Document};
use api::patch::PatchType;
use api::registry::ResourceInfo;
use apiserver::registry::{PatchOptions, WriteOptions};

use crate::cli::UpArgs;
use crate::server::{resolve_data_dir, wait_for_signal};

/// The field manager `paddock up` applies as (shown in managedFields).
pub(crate) const FIELD_MANAGER: &str = "paddock";

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Read and check everything first: a bad manifest must not half-apply.
    let docs = load(&args.files)?;

    let data_dir = resolve_data_dir(args.server.data_dir.clone())?;
    let config = apiserver::Config {
        listen: args.server.listen,
        data_dir: data_dir.clone(),
        memory_store: args.server.memory,
        advertise_host: None,
    };
    let server = apiserver::start(config).await.with_context(|| {
        format!(
            "cannot start the API server (data dir {})",
            data_dir.display()
        )
    })?;
    let controllers = controllers::start(server.registry());
    let node = match start_node(&server, &data_dir, &args).await {
        Ok(node) => node,
        Err(err) => {
            controllers.stop().await;
            server.shutdown().await;
            return Err(err);
        }
    };

    let applied = apply_all(&server.registry(), &docs).await;
    println!("export KUBECONFIG={}", server.kubeconfig_path().display());
    let result = match applied {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            wait_for_signal().await
        }
        Err(err) => Err(err),
    };
    tracing::info!("shutting down");
    // Pods first (graceful termination), then the proxy, then the control plane.
    node.agent.stop(std::time::Duration::from_secs(30)).await;
    node.proxy_stop.cancel();
    for task in node.proxy_tasks {
        let _ = task.await;
    }
    controllers.stop().await;
    server.shutdown().await;
    result
}

/// Reads the files (folders, `-` for stdin) and checks every document client-side.
pub(crate) fn load(files: &[PathBuf]) -> anyhow::Result<Vec<(Document, &'static ResourceInfo)>> {
    let docs = manifest::read_paths(files)?;
    let mut checked = Vec::with_capacity(docs.len());
    let mut errors = Vec::new();
    for doc in docs {
        match manifest::check_document(&doc) {
            Ok((info, _defaulted)) => checked.push((doc, info)),
            Err(err) => errors.push(err.to_string()),
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("nothing was applied:\n  {}", errors.join("\n  "));
    }
    Ok(checked)
}

/// Server-side applies each checked document; returns kubectl-style result lines.
async fn apply_all(
    registry: &apiserver::Registry,
    docs: &[(Document, &'static ResourceInfo)],
) -> anyhow::Result<Vec<String>> {
    let opts = PatchOptions {
        write: WriteOptions {
            field_manager: Some(FIELD_MANAGER.to_string()),
            field_validation: api::object::FieldValidation::Strict,
            dry_run: false,
        },
        force: true,
    };
    let mut lines = Vec::with_capacity(docs.len());
    for (doc, info) in docs {
        let meta = &doc.value["metadata"];
        let name = meta["name"].as_str().unwrap_or_default();
        let namespace = if info.namespaced {
            meta["namespace"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
        } else {
            ""
        };
        let body = serde_json::to_vec(&doc.value)?;
        let (_, created, warnings) = apiserver::patch::patch(
            registry,
            info,
            namespace,
            name,
            PatchType::Apply,
            &body,
            None,
            &opts,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", doc.describe(), e.message))?;
        for w in warnings {
            tracing::warn!("{}: {w}", doc.describe());
        }
        let what = if info.group.is_empty() {
            format!("{}/{name}", info.singular)
        } else {
            format!("{}.{}/{name}", info.singular, info.group)
        };
        lines.push(format!(
            "{what} {}",
            if created { "created" } else { "applied" }
        ));
    }
    Ok(lines)
}

/// The local node: its agent and its service proxy.
struct Node {
    agent: agent::AgentHandle,
    proxy_stop: tokio_util::sync::CancellationToken,
    proxy_tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the local node: the agent with a process runtime (pods in their own namespaces when
/// root, host mode otherwise or with `--host-network-only`) and the service proxy, both talking
/// to the server over loopback HTTPS with the admin kubeconfig, exactly as a remote node would.
async fn start_node(
    server: &apiserver::RunningServer,
    data_dir: &std::path::Path,
    args: &UpArgs,
) -> anyhow::Result<Node> {
    use agent::runtime::{NodeNetwork, PodCidr, ProcessRuntime};
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path())
        .context("reading the kubeconfig the server wrote")?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("building the agent's client configuration")?;
    let client = kube::Client::try_from(config).context("building the agent's client")?;
    let node_name = args.node_name.clone().unwrap_or_else(default_node_name);
    let node_ip = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let pod_cidr = PodCidr::parse(POD_CIDR).context("pod CIDR")?;
    let mut network = NodeNetwork::new(pod_cidr);
    network.node_ip = node_ip;
    network.isolated = !args.host_network_only;
    let isolated = network.isolated && nix::unistd::geteuid().is_root();
    let root = data_dir.join("node");
    let runtime = ProcessRuntime::new(root.clone(), network).context("starting the runtime")?;
    let mut config = agent::AgentConfig::new(
        &node_name,
        client.clone(),
        std::sync::Arc::new(runtime),
        root,
        node_ip,
    );
    config.pod_cidr = POD_CIDR.to_string();
    config.max_pods = args.max_pods;
    config.serve_token = Some(server.token().to_string());

    // The proxy listens on 127.0.0.1 too, so LoadBalancer and NodePort services are reachable
    // at 127.0.0.1:port; ClusterIPs are held on a dummy interface only with pod namespaces.
    let node = proxy::NodeConfig {
        node_name: node_name.clone(),
        node_ips: vec![node_ip],
        loopback: true,
    };
    let proxy = proxy::Proxy::new(node, isolated);
    // Agent and proxy share this process: readiness reaches routing without the API round
    // trip, and a pod is drained before its process is signalled.
    config.routing = Some(std::sync::Arc::new(ProxyRouting(proxy.clone())));
    let agent = agent::start(config)
        .await
        .context("starting the node agent")?;
    let proxy_stop = tokio_util::sync::CancellationToken::new();
    let proxy_tasks = vec![
        tokio::spawn(proxy.clone().run(proxy_stop.clone())),
        tokio::spawn(proxy::feed::run_from_api(
            client,
            proxy,
            true,
            proxy_stop.clone(),
        )),
    ];
    Ok(Node {
        agent,
        proxy_stop,
        proxy_tasks,
    })
}

/// The agent's [`agent::routing::RoutingHook`] on the service proxy of the same process. A pod
/// is keyed by its uid (EndpointSlices carry it in `targetRef`), which is exact also for pods
/// that share the node's address; its connections are counted by its own IP when it has one.
struct ProxyRouting(std::sync::Arc<proxy::Proxy>);

impl agent::routing::RoutingHook for ProxyRouting {
    fn set_state(&self, pod: &agent::routing::PodEndpoint, state: agent::routing::RouteState) {
        use agent::routing::RouteState;
        let state = match state {
            RouteState::Ready => proxy::EndpointState::Ready,
            RouteState::NotReady => proxy::EndpointState::NotReady,
            RouteState::Draining => proxy::EndpointState::Draining,
        };
        self.0
            .set_endpoint_state(proxy::EndpointId::Pod(pod.uid.clone()), state);
    }

    fn forget(&self, pod: &agent::routing::PodEndpoint) {
        self.0
            .release_endpoint_state(proxy::EndpointId::Pod(pod.uid.clone()));
    }

    fn active_connections(&self, pod: &agent::routing::PodEndpoint) -> usize {
        if pod.own_ip {
            self.0.active_connections(pod.ip)
        } else {
            self.0.active_pod_connections(&pod.uid)
        }
    }
}

/// The local node's pod CIDR (the first /24 of the default cluster CIDR 10.244.0.0/16).
const POD_CIDR: &str = "10.244.0.0/24";

/// The node is named after the machine, lower-cased, as the kubelet does.
fn default_node_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.to_lowercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
