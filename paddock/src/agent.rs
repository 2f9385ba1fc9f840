//! `paddock agent`: a node of a cluster whose API server runs elsewhere (`paddock server`, or
//! another machine's `paddock up`). Connects with a kubeconfig (a `token:` or `tokenFile:`
//! user) or `--server` with `--token-file`/`$PADDOCK_TOKEN`/`--token`, runs the node
//! ([`crate::node`]) until SIGTERM/SIGINT, then stops its pods gracefully. The token is never
//! printed. A node with a client certificate of its own renews it while it runs
//! ([`crate::join::ClientCertificate`]).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::AgentArgs;
use crate::node;
use crate::server::{resolve_data_dir, wait_for_signal};

/// The environment variable holding the token for `--server`.
pub(crate) const TOKEN_ENV: &str = "PADDOCK_TOKEN";

pub(crate) async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let image_gc = args.images.gc_policy()?;
    let data_dir = resolve_data_dir(args.data_dir.clone())?;
    let name = args
        .node_name
        .clone()
        .unwrap_or_else(node::default_node_name);
    let (kubeconfig, own_certificate) = kubeconfig(&args, &data_dir, &name).await?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("building the client configuration")?;
    let serve = node::AgentAuth::from_config(&config).await?;
    let server_url = config.cluster_url.to_string();
    let client = match &own_certificate {
        Some(cert) => cert.client(config)?,
        None => agent::client::client(config).context("building the client")?,
    };
    // Renewing from the start: registering may wait long (for a pod CIDR) and the stored
    // certificate may be due already.
    let rotation = tokio_util::sync::CancellationToken::new();
    let _stop_rotation = rotation.clone().drop_guard();
    if let Some(cert) = own_certificate {
        tokio::spawn(cert.rotate(rotation.clone()));
    }
    client
        .apiserver_version()
        .await
        .with_context(|| format!("cannot reach the API server at {server_url}"))?;
    let node = node::start(
        client,
        node::NodeOptions {
            name: name.clone(),
            ip: args.node_ip,
            pod_cidr: args.pod_cidr.clone(),
            cluster_cidr: Some(args.cluster_cidr.clone()),
            isolate: !args.host_network_only,
            max_pods: args.max_pods,
            // The kubelet's `nodeLeaseRenewIntervalFraction` (0.25).
            lease_interval: std::time::Duration::from_secs(u64::from(
                args.node_lease_duration_seconds,
            ))
            .div_f64(4.0),
            default_runtime: args.default_runtime.clone(),
            images: data_dir.join("images"),
            image_gc,
            registries: crate::images::load_registries(
                args.images.registry_config.as_deref(),
                &data_dir,
            )?,
            root: data_dir.join("node"),
            serve_addr: std::net::SocketAddr::new(args.node_ip, args.port),
            serve,
            cluster_dns: args.dns.cluster_dns.clone(),
            cluster_domain: args.dns.cluster_domain.clone(),
            ingress_http_port: args.ingress.ingress_http_port,
            ingress_https_port: args.ingress.ingress_https_port,
        },
    )
    .await?;
    println!("node {name} joined {server_url}");
    let result = wait_for_signal().await;
    tracing::info!("shutting down");
    node.stop(std::time::Duration::from_secs(30)).await;
    result
}

/// Where the token for `--server` comes from.
enum TokenSource {
    /// `--token-file` (kube reads it, and re-reads it when it changes).
    File(PathBuf),
    /// `$PADDOCK_TOKEN` or `--token`.
    Value(String),
}

/// The kubeconfig to connect with: `--kubeconfig`; with `--server`, the node's own client
/// certificate (joining with a bootstrap token and `--ca-cert-hash` first when it has none,
/// [`crate::join`]; then also its manager, which renews it) or a bearer token; or
/// `$KUBECONFIG`.
async fn kubeconfig(
    args: &AgentArgs,
    data_dir: &Path,
    node_name: &str,
) -> anyhow::Result<(
    kube::config::Kubeconfig,
    Option<std::sync::Arc<crate::join::ClientCertificate>>,
)> {
    if let Some(server) = &args.server {
        let bootstrap = match &args.ca_cert_hash {
            Some(hash) => Some(crate::join::Bootstrap {
                token: bootstrap_token(args).await?,
                ca_cert_hash: hash.trim().to_string(),
            }),
            None => None,
        };
        let no_token = args.token_file.is_none()
            && args.token.is_none()
            && std::env::var(TOKEN_ENV).map_or(true, |t| t.trim().is_empty());
        if (bootstrap.is_some() || no_token)
            && let Some((kc, cert)) =
                crate::join::node_credentials(server, data_dir, node_name, bootstrap).await?
        {
            return Ok((kc, Some(cert)));
        }
        let token = match (&args.token_file, &args.token) {
            (Some(f), _) => TokenSource::File(
                std::path::absolute(f).with_context(|| format!("token file {}", f.display()))?,
            ),
            (None, Some(t)) => {
                tracing::warn!(
                    "--token is visible to every user of this machine; use --token-file or ${TOKEN_ENV}"
                );
                TokenSource::Value(t.clone())
            }
            (None, None) => match std::env::var(TOKEN_ENV) {
                Ok(t) if !t.trim().is_empty() => TokenSource::Value(t.trim().to_string()),
                _ => anyhow::bail!(
                    "--server needs a token: --token-file FILE, ${TOKEN_ENV} or --token TOKEN"
                ),
            },
        };
        let ca = args
            .certificate_authority
            .as_deref()
            .map(|ca| {
                std::path::absolute(ca)
                    .with_context(|| format!("certificate authority {}", ca.display()))
            })
            .transpose()?;
        return Ok((server_kubeconfig(server, ca.as_deref(), token), None));
    }
    let path = match &args.kubeconfig {
        Some(p) => p.clone(),
        None => std::env::var_os("KUBECONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .with_context(|| {
                format!("no server given: pass --kubeconfig FILE, or --server URL with --token-file FILE or ${TOKEN_ENV}")
            })?,
    };
    let kc = kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    Ok((kc, None))
}

/// The bootstrap token of `--ca-cert-hash`: `--token-file`, `--token` or `$PADDOCK_TOKEN`.
async fn bootstrap_token(args: &AgentArgs) -> anyhow::Result<String> {
    let token = match (&args.token_file, &args.token) {
        (Some(f), _) => {
            // A bootstrap token is 23 bytes; the file's content never appears in an error.
            let len = tokio::fs::metadata(f)
                .await
                .with_context(|| format!("reading token file {}", f.display()))?
                .len();
            anyhow::ensure!(len <= 1024, "token file {} is too large", f.display());
            let bytes = tokio::fs::read(f)
                .await
                .with_context(|| format!("reading token file {}", f.display()))?;
            String::from_utf8(bytes).unwrap_or_default()
        }
        (None, Some(t)) => {
            tracing::warn!(
                "--token is visible to every user of this machine; use --token-file or ${TOKEN_ENV}"
            );
            t.clone()
        }
        (None, None) => std::env::var(TOKEN_ENV).unwrap_or_default(),
    };
    let token = token.trim().to_string();
    anyhow::ensure!(
        !token.is_empty(),
        "--ca-cert-hash needs a bootstrap token: --token-file FILE, ${TOKEN_ENV} or --token TOKEN"
    );
    Ok(token)
}

/// A kubeconfig for `server` with `token` (built as a value: the token is never serialized or
/// parsed, so no error message can carry it).
fn server_kubeconfig(
    server: &str,
    ca: Option<&Path>,
    token: TokenSource,
) -> kube::config::Kubeconfig {
    use kube::config::{AuthInfo, Cluster, Context, NamedAuthInfo, NamedCluster, NamedContext};
    let mut user = AuthInfo::default();
    match token {
        TokenSource::File(f) => user.token_file = Some(f.display().to_string()),
        TokenSource::Value(t) => user.token = Some(secrecy::SecretString::from(t)),
    }
    kube::config::Kubeconfig {
        clusters: vec![NamedCluster {
            name: "paddock".into(),
            cluster: Some(Cluster {
                server: Some(server.to_string()),
                certificate_authority: ca.map(|c| c.display().to_string()),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "agent".into(),
            auth_info: Some(user),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: "paddock".into(),
            context: Some(Context {
                cluster: "paddock".into(),
                user: Some("agent".into()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some("paddock".into()),
        ..kube::config::Kubeconfig::default()
    }
}
