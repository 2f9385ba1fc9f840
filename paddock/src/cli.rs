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
}

/// `paddock agent` flags.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The server's kubeconfig (what `paddock server` wrote); or use --server and --token.
    #[arg(long, value_name = "FILE", conflicts_with = "server")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// The API server's URL (`https://HOST:PORT`).
    #[arg(long, value_name = "URL", requires = "token")]
    pub(crate) server: Option<String>,
    /// The bearer token for the API server (also required of the API server by this agent).
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
}

/// Flags shared by every command that runs a server.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Where objects, certificates, the token and the kubeconfig live
    /// [default: /var/lib/paddock as root, $XDG_DATA_HOME/paddock otherwise].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Address to serve HTTPS on; port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:6443")]
    pub(crate) listen: SocketAddr,
    /// Keep objects in memory only (nothing survives a restart).
    #[arg(long)]
    pub(crate) memory: bool,
    /// Most client connections open at once; at the cap the idlest one is closed to make
    /// room [default: 1024, at most a quarter of the open-file limit].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_connections: Option<u32>,
}
