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
}
