//! Command-line definitions (clap derive). Each flag is defined once here; the subcommand
//! modules turn these raw values into validated settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run Kubernetes manifests without a cluster.
#[derive(Debug, Parser)]
#[command(name = "paddock", version, about)]
pub(crate) struct Cli {
    /// More logging (-v info, -vv debug, -vvv trace); PADDOCK_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the API server (control plane) on its own.
    Server(ServerArgs),
    /// Run everything in one process and apply the given manifests (the main job).
    Up(UpArgs),
    /// Run a node (agent and service proxy) of the cluster a server runs.
    Agent(AgentArgs),
    /// Manage the node's images: import, ls, rm, pull.
    Image(crate::images::ImageArgs),
}

/// `paddock agent` flags.
#[derive(Args)]
pub(crate) struct AgentArgs {
    /// The server's kubeconfig (what `paddock server` wrote; a `tokenFile:` user works too);
    /// or use --server with a token.
    #[arg(long, value_name = "FILE", conflicts_with = "server")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// The API server's URL (`https://HOST:PORT`), with --token-file, $PADDOCK_TOKEN or --token.
    #[arg(long, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// A file holding the bearer token for the API server (this agent's API accepts it too).
    #[arg(
        long,
        value_name = "FILE",
        requires = "server",
        conflicts_with = "token"
    )]
    pub(crate) token_file: Option<PathBuf>,
    /// The bearer token itself. Visible to every user of this machine in `ps`: prefer
    /// --token-file, or the environment variable PADDOCK_TOKEN (read when --server is given
    /// without either flag).
    #[arg(long, value_name = "TOKEN", requires = "server")]
    pub(crate) token: Option<String>,
    /// The server's CA certificate (PEM), with --server.
    #[arg(long, value_name = "FILE", requires = "server")]
    pub(crate) certificate_authority: Option<PathBuf>,
    /// Where the node keeps its runtime state, logs and volumes
    /// [default: /var/lib/paddock as root, $XDG_DATA_HOME/paddock otherwise].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Name of the node [default: this machine's host name].
    #[arg(long, value_name = "NAME")]
    pub(crate) node_name: Option<String>,
    /// The node's address: reported as InternalIP, where the agent API and NodePorts listen.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub(crate) node_ip: std::net::IpAddr,
    /// The node's pod CIDR (pod addresses come from it).
    #[arg(long, value_name = "CIDR", default_value = "10.244.0.0/24")]
    pub(crate) pod_cidr: String,
    /// Port of the agent API (logs, exec) on the node's address; 0 picks a free one.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub(crate) port: u16,
    /// Run every pod in the host's network (no pod namespaces), even as root.
    #[arg(long)]
    pub(crate) host_network_only: bool,
    /// Most pods the node takes (the kubelet's `--max-pods`).
    #[arg(long, value_name = "N", default_value_t = 110, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub(crate) max_pods: i64,
    /// The runtime of pods without a `runtimeClassName` (k3s's flag): `host` runs a
    /// container's `command` from the node, `runc` runs its image (as a RuntimeClass with
    /// handler `runc` does).
    #[arg(long, value_name = "runc|host", default_value = "host", value_parser = ["runc", "host"])]
    pub(crate) default_runtime: String,
}

/// `paddock up` flags.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Manifest files or folders to apply (`-` reads stdin); repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub(crate) files: Vec<PathBuf>,
    /// Name of the local node [default: this machine's host name].
    #[arg(long, value_name = "NAME")]
    pub(crate) node_name: Option<String>,
    /// Run every pod in the host's network (no pod namespaces), even as root.
    #[arg(long)]
    pub(crate) host_network_only: bool,
    /// Most pods the node takes (the kubelet's `--max-pods`).
    #[arg(long, value_name = "N", default_value_t = 110, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub(crate) max_pods: i64,
    /// The runtime of pods without a `runtimeClassName` (k3s's flag): `host` runs a
    /// container's `command` from the node, `runc` runs its image (as a RuntimeClass with
    /// handler `runc` does).
    #[arg(long, value_name = "runc|host", default_value = "host", value_parser = ["runc", "host"])]
    pub(crate) default_runtime: String,
}

/// The token never appears in debug output.
impl std::fmt::Debug for AgentArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentArgs")
            .field("kubeconfig", &self.kubeconfig)
            .field("server", &self.server)
            .field("token_file", &self.token_file)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("node_name", &self.node_name)
            .finish_non_exhaustive()
    }
}

/// Flags shared by every command that runs a server.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Where objects, certificates, the token and the kubeconfig live
    /// [default: /var/lib/paddock as root, $XDG_DATA_HOME/paddock otherwise].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Address to serve HTTPS on; port 0 picks a free port. Anything but loopback exposes the
    /// API (a root shell on this machine) to the network and is warned about; an unspecified
    /// address (0.0.0.0, ::) puts this machine's addresses into the serving certificate.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:6443")]
    pub(crate) listen: SocketAddr,
    /// The address clients and nodes reach the API server at: written into the kubeconfig and
    /// the serving certificate.
    #[arg(long, value_name = "IP")]
    pub(crate) advertise_address: Option<std::net::IpAddr>,
    /// Another name or address for the serving certificate; repeatable.
    #[arg(long = "tls-san", value_name = "NAME", value_parser = parse_san)]
    pub(crate) tls_san: Vec<String>,
    /// Keep objects in memory only (nothing survives a restart).
    #[arg(long)]
    pub(crate) memory: bool,
    /// Most client connections open at once; at the cap the idlest one is closed to make
    /// room [default: 1024, at most a quarter of the open-file limit].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_connections: Option<u32>,
}

/// A `--tls-san`: an IP address or a DNS name (`*.` wildcards allowed), lower-cased.
fn parse_san(s: &str) -> Result<String, String> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(s.to_string());
    }
    let name = s.to_ascii_lowercase();
    let bare = name.strip_prefix("*.").unwrap_or(&name);
    let problems = api::validation::is_dns1123_subdomain(bare);
    if problems.is_empty() {
        Ok(name)
    } else {
        Err(format!(
            "not an IP address or DNS name: {}",
            problems.join("; ")
        ))
    }
}
