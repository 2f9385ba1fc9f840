//! `paddock agent`: a node of a cluster whose API server runs elsewhere (`paddock server`, or
//! another machine's `paddock up`). Connects with a kubeconfig (a `token:` or `tokenFile:` user)
//! or `--server`/`--token`, runs the node ([`crate::node`]) until SIGTERM/SIGINT, then stops
//! its pods gracefully.

use anyhow::Context;

use crate::cli::AgentArgs;
use crate::node;
use crate::server::{resolve_data_dir, wait_for_signal};

pub(crate) async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let kubeconfig = kubeconfig(&args)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("building the client configuration")?;
    let serve = node::AgentAuth::from_config(&config).await?;
    let server_url = config.cluster_url.to_string();
    let client = agent::client::client(config).context("building the client")?;
    client
        .apiserver_version()
        .await
        .with_context(|| format!("cannot reach the API server at {server_url}"))?;
    let data_dir = resolve_data_dir(args.data_dir.clone())?;
    let name = args
        .node_name
        .clone()
        .unwrap_or_else(node::default_node_name);
    let node = node::start(
        client,
        node::NodeOptions {
            name: name.clone(),
            ip: args.node_ip,
            pod_cidr: args.pod_cidr.clone(),
            isolate: !args.host_network_only,
            max_pods: args.max_pods,
            root: data_dir.join("node"),
            serve_addr: std::net::SocketAddr::new(args.node_ip, args.port),
            serve,
        },
    )
    .await?;
    println!("node {name} joined {server_url}");
    let result = wait_for_signal().await;
    tracing::info!("shutting down");
    node.stop(std::time::Duration::from_secs(30)).await;
    result
}

/// The kubeconfig to connect with: `--kubeconfig`, one made of `--server`/`--token`, or
/// `$KUBECONFIG`.
fn kubeconfig(args: &AgentArgs) -> anyhow::Result<kube::config::Kubeconfig> {
    if let (Some(server), Some(token)) = (&args.server, &args.token) {
        let mut cluster = serde_json::json!({ "server": server });
        if let Some(ca) = &args.certificate_authority {
            let ca = std::path::absolute(ca)
                .with_context(|| format!("certificate authority {}", ca.display()))?;
            cluster["certificate-authority"] = serde_json::json!(ca);
        }
        let doc = serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{ "name": "paddock", "cluster": cluster }],
            "users": [{ "name": "agent", "user": { "token": token } }],
            "contexts": [{ "name": "paddock", "context": { "cluster": "paddock", "user": "agent" } }],
            "current-context": "paddock",
        });
        return kube::config::Kubeconfig::from_yaml(&doc.to_string())
            .context("building a kubeconfig from --server and --token");
    }
    let path = match &args.kubeconfig {
        Some(p) => p.clone(),
        None => std::env::var_os("KUBECONFIG")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .context("no server given: pass --kubeconfig FILE, or --server URL --token TOKEN")?,
    };
    kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))
}
