//! `paddock up -f FILE…`: the main job. Starts the API server, the controllers and a node
//! agent for this machine in one process, applies the files the way
//! `kubectl apply --server-side` would (create or update; fields this command applied before and
//! no longer lists are removed; each object `created`, `configured` or `unchanged` as kubectl
//! says), prints where the kubeconfig is, then what happens to the workloads
//! ([`crate::progress`]: a live view on a terminal, plain lines otherwise), and runs until
//! SIGTERM/SIGINT, then shows the stop.
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
use crate::node::{self, Node};
use crate::progress::{Progress, ViewConfig};
use crate::server::wait_for_signal;

/// The field manager `paddock up` applies as (shown in managedFields).
pub(crate) const FIELD_MANAGER: &str = "paddock";

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Read and check everything first: a bad manifest must not half-apply.
    let docs = load(&args.files)?;
    args.images.gc_policy()?;

    let options = args
        .server
        .controller_options()
        .map_err(anyhow::Error::msg)?;
    let (server, data_dir) = crate::server::start(&args.server).await?;
    let controllers = crate::control::start(&server, options);
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
    let mode = args.progress_mode();
    let mut progress = Progress::idle(mode);
    let result = match applied {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            progress = Progress::start(mode, client(&server).await, view_config(&args));
            wait_for_signal().await
        }
        Err(err) => Err(err),
    };
    tracing::info!("shutting down");
    // Pods first (graceful termination), then the proxy, then the control plane.
    progress.stopping_pods(node.stop_progress()).await;
    node.stop(std::time::Duration::from_secs(30)).await;
    progress.stopping_control_plane().await;
    controllers.stop().await;
    server.shutdown().await;
    progress.stopped().await;
    result
}

/// Where the live view says Services and Ingresses are reached: this node's address (the
/// node `paddock up` runs reports 127.0.0.1) and its Ingress ports.
fn view_config(args: &UpArgs) -> ViewConfig {
    ViewConfig {
        node_address: std::net::Ipv4Addr::LOCALHOST.to_string(),
        ingress_http_port: args.ingress.ingress_http_port,
        ingress_https_port: args.ingress.ingress_https_port,
    }
}

/// A client of this server as any other client (the kubeconfig it wrote).
async fn client(server: &apiserver::RunningServer) -> anyhow::Result<kube::Client> {
    let config = client_config(server).await?;
    kube::Client::try_from(config).context("building a client")
}

async fn client_config(server: &apiserver::RunningServer) -> anyhow::Result<kube::Config> {
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path())
        .context("reading the kubeconfig the server wrote")?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("building the client configuration")
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
            ..WriteOptions::default()
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
        let before = registry
            .get(api::registry::storage(info), namespace, name)
            .ok()
            .and_then(|o| resource_version(&o));
        let (after, created, warnings) = apiserver::patch::patch(
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
        // As `kubectl apply` words it: an apply that changed nothing keeps the version.
        let outcome = if created {
            "created"
        } else if before.is_some() && before == resource_version(&after) {
            "unchanged"
        } else {
            "configured"
        };
        lines.push(format!("{what} {outcome}"));
    }
    Ok(lines)
}

fn resource_version(o: &serde_json::Value) -> Option<String> {
    o.pointer("/metadata/resourceVersion")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

/// How long the local node's client certificate is valid (issued anew at every start).
const NODE_CERT_VALIDITY: std::time::Duration = apiserver::tls::LEAF_VALIDITY;

/// The local node's client configuration: the server's URL and CA, and a client certificate
/// of its own (`system:node:<name>` in `system:nodes`, as a joined node gets through its
/// CSR), issued directly by the cluster CA this process holds, as k3s does for its kubelet —
/// never the administrator's token.
async fn node_config(
    server: &apiserver::RunningServer,
    name: &str,
) -> anyhow::Result<kube::Config> {
    let admin = kube::config::Kubeconfig::read_from(server.kubeconfig_path())
        .context("reading the kubeconfig the server wrote")?;
    let url = admin
        .clusters
        .iter()
        .find_map(|c| c.cluster.as_ref()?.server.clone())
        .context("the server's kubeconfig names no server")?;
    let ca = server.cluster_ca();
    let user = format!("system:node:{name}");
    let (key, cert) = apiserver::x509::issue_client_certificate(
        &ca,
        &user,
        &["system:nodes".to_string()],
        NODE_CERT_VALIDITY,
    )
    .context("issuing the node's client certificate")?;
    let text = apiserver::kubeconfig::render_client_cert(&url, ca.cert_pem(), &user, &cert, &key);
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&text).context("the node's kubeconfig")?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("building the node's client configuration")
}

/// Starts the local node (see [`crate::node`]) with a client certificate of its own
/// ([`node_config`]), exactly as a joined node connects (its serving certificate comes through
/// a CSR the in-process approver and signer handle, its API trusts the cluster CA).
async fn start_node(
    server: &apiserver::RunningServer,
    data_dir: &std::path::Path,
    args: &UpArgs,
) -> anyhow::Result<Node> {
    let name = args
        .node_name
        .clone()
        .unwrap_or_else(node::default_node_name);
    let config = node_config(server, &name).await?;
    let serve = node::AgentAuth::from_config(&config).await?;
    let client = agent::client::client(config).context("building the agent's client")?;
    let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    node::start(
        client,
        node::NodeOptions {
            name,
            ip,
            // The first node CIDR of the cluster CIDR, as node IPAM would allocate it
            // (10.244.0.0/24 by default; `--node-cidr-mask-size 21` for more than 254 pods).
            pod_cidr: Some(first_pod_cidr(args)?),
            // One node: no routes to program; its pods' outbound traffic is left as it was.
            cluster_cidr: None,
            isolate: !args.host_network_only,
            max_pods: args.max_pods,
            // The kubelet's a quarter of `nodeLeaseDurationSeconds` (40 s), shortened to a
            // quarter of the grace period when that is shorter (the fast profile), so that
            // this node's own heartbeats never miss it.
            lease_interval: std::time::Duration::from_secs(10)
                .min(args.server.node_monitor_grace_period / 4),
            default_runtime: args.default_runtime.clone(),
            images: data_dir.join("images"),
            image_gc: args.images.gc_policy()?,
            registries: crate::images::load_registries(
                args.images.registry_config.as_deref(),
                data_dir,
            )?,
            root: data_dir.join("node"),
            serve_addr: std::net::SocketAddr::new(ip, 0),
            serve,
            cluster_dns: args.dns.cluster_dns.clone(),
            cluster_domain: args.dns.cluster_domain.clone(),
            ingress_http_port: args.ingress.ingress_http_port,
            ingress_https_port: args.ingress.ingress_https_port,
        },
    )
    .await
}

/// The first `--node-cidr-mask-size` subnet of `--cluster-cidr`: this node's pod CIDR.
fn first_pod_cidr(args: &UpArgs) -> anyhow::Result<String> {
    let mut set = controllers::nodeipam::cidrset::CidrSet::new(
        args.server.cluster_cidr,
        args.server.node_cidr_mask_size,
    )
    .map_err(|e| anyhow::anyhow!("--node-cidr-mask-size does not fit --cluster-cidr: {e}"))?;
    let cidr = set
        .allocate_next()
        .map_err(|e| anyhow::anyhow!("--cluster-cidr: {e}"))?;
    Ok(cidr.to_string())
}
